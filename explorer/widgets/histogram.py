"""A histogram plot whose curves are created once and updated in place."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

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
        self.setMinimumHeight(90)
        self.curves: dict[str, pg.PlotDataItem] = {}

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
                curve = self.plot(
                    stepMode="center", fillLevel=0, pen=pg.mkPen(color, width=1.2), brush=brush, antialias=False
                )
                self.curves[name] = curve
            curve.setData(x, values)
            curve.setVisible(True)
        for name, curve in self.curves.items():
            if name not in counts:
                curve.setVisible(False)
