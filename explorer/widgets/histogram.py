"""A histogram plot whose curves are created once and updated in place."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QGraphicsItem, QWidget

import explorer.widgets  # noqa: F401

CHANNEL_COLORS = {"R": "#d62728", "G": "#2ca02c", "B": "#1f77b4", "L": "#444444"}


class HistogramPlot(pg.PlotWidget):
    """Step histograms of 256 bins (or any bin edges) per named channel."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(title, size="9pt")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.getPlotItem().hideAxis("left")
        for name in ("bottom", "left", "top", "right"):
            # A curve's repaint region touches the axis beside it; cached, the axis is
            # copied from a pixmap instead of laying out its tick labels again (~0.5 ms).
            self.getPlotItem().getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setMinimumHeight(90)
        self.curves: dict[str, pg.PlotCurveItem | pg.PlotDataItem] = {}
        self.count_top: float | None = None  # see set_count_top
        self.count_bottom = 0.0
        self._count_transform: QTransform | None = None

    def set_count_top(self, top: float, bottom: float = 0.0) -> None:
        """Show counts from ``bottom`` to ``top`` by scaling the curves; the view's y range stays 0–1.

        A y range that changes with the data costs ~2 ms a frame (the axes are laid out
        again and every curve is re-processed), a scaled curve only repaints. Meant for
        plots with the y axis hidden, as here: its numbers would read 0–1.
        """
        if self.count_top is None:
            self.getPlotItem().vb.disableAutoRange(axis="y")
            self.setYRange(0, 1, padding=0)
        self.count_top, self.count_bottom = float(top), float(bottom)
        scale = 1.0 / max(self.count_top - self.count_bottom, 1e-12)
        self._count_transform = QTransform(1.0, 0.0, 0.0, scale, 0.0, -self.count_bottom * scale)
        for curve in self.curves.values():
            curve.setTransform(self._count_transform)

    def set_histograms(
        self,
        counts: Mapping[str, np.ndarray],
        edges: np.ndarray | None = None,
        colors: Mapping[str, str] = CHANNEL_COLORS,
    ) -> None:
        """Show one step curve per entry; channels missing from ``counts`` are hidden."""
        for name, values in counts.items():
            x = edges if edges is not None else np.arange(len(values) + 1, dtype=np.float32)
            curve = self.curves.get(name)
            if curve is None:
                color = colors.get(name, "#444444")
                brush = pg.mkColor(color)
                brush.setAlpha(50)
                # Steps are horizontal and vertical lines: antialiasing costs ~15 ms and buys nothing.
                # A bare PlotCurveItem: a PlotDataItem around it re-processes the data on every
                # update (~0.2 ms per curve a frame) for features a histogram does not use.
                pen = pg.mkPen(color, width=1.2)
                curve = pg.PlotCurveItem(
                    x, values, stepMode="center", fillLevel=0, pen=pen, brush=brush, antialias=False
                )
                self.addItem(curve)
                self.curves[name] = curve
                if self._count_transform is not None:
                    curve.setTransform(self._count_transform)
            curve.setData(x, values)
            curve.setVisible(True)
        for name, curve in self.curves.items():
            if name not in counts:
                curve.setVisible(False)
