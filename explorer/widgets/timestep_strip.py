"""A strip over the training timesteps T−1 … 0 with a tick at each one a sampler visits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem, QWidget

import explorer.widgets  # noqa: F401  (shared pyqtgraph options)


class TimestepStrip(pg.PlotWidget):
    """Ticks at the visited timesteps, noisiest (T−1) on the left, and a marker at the current one.

    Parameters
    ----------
    color
        Colour of the ticks.
    """

    def __init__(self, color: str = "#1f77b4", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setFixedHeight(62)
        plot = self.getPlotItem()
        plot.hideAxis("left")
        plot.setLabel("bottom", "t")
        plot.getAxis("bottom").setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plot.invertX(True)  # time runs left to right: from pure noise (T−1) to the image (0)
        plot.setYRange(0, 1, padding=0)
        self.ticks = plot.plot(pen=pg.mkPen(color, width=1), connect="pairs")
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d62728", width=2.5))
        self.marker.setVisible(False)
        plot.addItem(self.marker)
        self.set_range(1000)

    def set_range(self, num_train_timesteps: int) -> None:
        self.getPlotItem().setXRange(0, num_train_timesteps - 1, padding=0.01)

    def set_timesteps(self, timesteps: Sequence[int]) -> None:
        """Draw a tick at each visited timestep."""
        t = np.repeat(np.asarray(timesteps, dtype=np.float64), 2)
        y = np.tile([0.0, 1.0], len(timesteps))
        self.ticks.setData(t, y)

    def timesteps(self) -> list[int]:
        """The timesteps drawn (one per tick)."""
        x, _ = self.ticks.getData()
        return [] if x is None else [int(v) for v in x[::2]]

    def set_current(self, t: int | None) -> None:
        """Mark timestep ``t`` (None: no marker)."""
        self.marker.setVisible(t is not None)
        if t is not None:
            self.marker.setValue(t)
