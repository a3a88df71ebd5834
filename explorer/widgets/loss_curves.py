"""Training curves: one small plot per loss term, updated in place while a model trains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

import explorer.widgets  # noqa: F401  (shared pyqtgraph options)


class LossCurves(pg.GraphicsLayoutWidget):
    """Plots side by side, one curve each, keyed by the loss name.

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
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("bottom", "step")
            self.plots[key] = plot
            self.curves[key] = plot.plot(pen=pg.mkPen(color, width=2))

    def set_history(self, steps: Sequence[float], values: Mapping[str, Sequence[float]]) -> None:
        """Show ``values[key]`` against ``steps`` on each plot (missing keys are cleared)."""
        x = np.asarray(steps, dtype=np.float64)
        for key, curve in self.curves.items():
            y = values.get(key)
            if y is None or len(y) == 0:
                curve.setData([], [])
            else:
                curve.setData(x[: len(y)], np.asarray(y, dtype=np.float64))

    def clear_curves(self) -> None:
        for curve in self.curves.values():
            curve.setData([], [])
