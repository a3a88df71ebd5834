"""Training curves: one small plot per loss term, updated in place while a model trains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem, QWidget

import explorer.widgets  # noqa: F401  (shared pyqtgraph options)


class LossCurves(pg.GraphicsLayoutWidget):
    """Plots side by side, one curve each, keyed by the loss name.

    The ranges do not follow every new point: the x range is set per run
    (:meth:`set_steps`) and the y range changes only when the values leave it
    or shrink to a small part of it, because redrawing the axes (and grid lines,
    so there are none) is most of the cost of a repaint while a model trains.

    Parameters
    ----------
    terms
        (key, title, colour) for each plot, e.g. ``("recon", "Reconstruction", "#1f77b4")``.
    """

    def __init__(self, terms: Sequence[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for column, (key, title, color) in enumerate(terms):
            plot = self.addPlot(row=0, col=column)
            plot.setTitle(title, size="10pt")
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.disableAutoRange()
            plot.hideButtons()
            plot.setLabel("bottom", "step")
            for name in ("bottom", "left"):
                # Copied from a pixmap when only the curve changed, not laid out again.
                plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self.plots[key] = plot
            self.curves[key] = plot.plot(pen=pg.mkPen(color, width=2))

    def set_steps(self, first: float, last: float) -> None:
        """The x range of every plot: the steps of the run."""
        for plot in self.plots.values():
            plot.setXRange(first, max(last, first + 1), padding=0.02)

    def set_history(self, steps: Sequence[float], values: Mapping[str, Sequence[float]]) -> None:
        """Show ``values[key]`` against ``steps`` on each plot (missing keys are cleared)."""
        x = np.asarray(steps, dtype=np.float64)
        for key, curve in self.curves.items():
            y = values.get(key)
            if y is None or len(y) == 0:
                curve.setData([], [])
                continue
            y = np.asarray(y, dtype=np.float64)
            curve.setData(x[: len(y)], y)
            self._fit_y(self.plots[key], float(np.nanmin(y)), float(np.nanmax(y)))
        if len(x) and x[-1] > self.plots[next(iter(self.plots))].viewRange()[0][1]:
            self.set_steps(x[0], x[-1])  # a run longer than announced

    @staticmethod
    def _fit_y(plot: pg.PlotItem, low: float, high: float) -> None:
        (_, _), (shown_low, shown_high) = plot.viewRange()
        span = max(high - low, 1e-6)
        inside = shown_low <= low and high <= shown_high
        if not inside or (shown_high - shown_low) > 3 * span:
            plot.setYRange(low - 0.1 * span, high + 0.1 * span, padding=0.0)

    def clear_curves(self) -> None:
        for curve in self.curves.values():
            curve.setData([], [])
