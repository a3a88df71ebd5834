"""Plots of the GAN chapter's Images tab: class coverage over time, and D(real) / D(fake) over time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem, QWidget

import explorer.widgets  # noqa: F401  (shared pyqtgraph options)

# One colour per digit 0–9 (tab10), then grey for "not a confident digit".
CLASS_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
UNSURE_COLOR = "#d9d9d9"
REAL_COLOR, FAKE_COLOR = "#1f77b4", "#d62728"


def _quiet_plot(plot: pg.PlotItem) -> None:
    """No mouse, menu or auto-range; axes cached (see LossCurves)."""
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.disableAutoRange()
    plot.hideButtons()
    for name in ("bottom", "left", "right"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


class CoveragePlot(pg.PlotWidget):
    """What share of generated digits falls in each class, stacked, against the training step.

    Bands from the bottom: digits 0–9 (the evaluator's confident predictions), then
    grey for samples it could not read as any digit. A black line counts the classes
    covered (right axis, 0–10): when the generator collapses onto a few digits the
    bands of the others thin out and the line drops.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        plot = self.getPlotItem()
        _quiet_plot(plot)
        legend = " ".join(f"<span style='color:{c}'>{d}</span>" for d, c in enumerate(CLASS_COLORS))
        plot.setTitle(
            f"Coverage {legend} <span style='color:#aaaaaa'>unsure</span> · black: classes",
            size="9pt",
        )
        plot.setLabel("bottom", "step")
        plot.setLabel("left", "share of samples")
        plot.showAxis("right")
        right = plot.getAxis("right")
        right.setScale(10.0)  # the count line is drawn as count / 10 on the 0–1 axis
        right.setTicks([[(v / 10, str(v)) for v in (0, 2, 4, 6, 8, 10)]])
        plot.setYRange(0.0, 1.0, padding=0.03)  # room for the count line at 10 classes
        plot.setXRange(0, 1, padding=0.0)
        self.setMinimumHeight(110)
        self._edges = [pg.PlotCurveItem(pen=pg.mkPen(None)) for _ in range(12)]  # cumulative boundaries
        for edge in self._edges:
            # In the scene (drawing nothing), so that Qt owns and deletes them with the plot: left
            # to Python, a garbage collection on a worker thread could delete them there.
            plot.addItem(edge)
        self.bands: list[pg.FillBetweenItem] = []
        for i, color in enumerate((*CLASS_COLORS, UNSURE_COLOR)):
            brush = pg.mkBrush(color)
            band = pg.FillBetweenItem(self._edges[i], self._edges[i + 1], brush=brush)
            self.bands.append(band)
            plot.addItem(band)
        self.count_curve = plot.plot(pen=pg.mkPen("k", width=2))
        self.steps = np.zeros(0)
        self.counts = np.zeros(0)
        self.note = pg.TextItem("", color="#555555", anchor=(0.5, 0.5))
        plot.addItem(self.note, ignoreBounds=True)
        self.note.setPos(0.5, 0.5)

    def set_history(self, steps: Sequence[float], fractions: Sequence[np.ndarray], counts: Sequence[int]) -> None:
        """``fractions[i]``: 11 shares (digits 0–9, then not confident) measured at ``steps[i]``."""
        self.steps = np.asarray(steps, dtype=np.float64)
        self.counts = np.asarray(counts, dtype=np.float64)
        if len(self.steps) == 0:
            for edge in self._edges:
                edge.setData([], [])
            self.count_curve.setData([], [])
            return
        shares = np.asarray(fractions, dtype=np.float64).reshape(len(self.steps), 11)
        stacked = np.concatenate([np.zeros((len(self.steps), 1)), np.cumsum(shares, axis=1)], axis=1)
        x = self.steps if len(self.steps) > 1 else np.array([self.steps[0], self.steps[0] + 1])
        for i, edge in enumerate(self._edges):
            y = stacked[:, i] if len(self.steps) > 1 else np.repeat(stacked[:, i], 2)
            edge.setData(x, y)
        self.count_curve.setData(x, (self.counts if len(self.steps) > 1 else np.repeat(self.counts, 2)) / 10.0)
        (_, shown_last), _ = self.getPlotItem().viewRange()
        if x[-1] > shown_last:
            self.set_steps(0, float(x[-1]))
        self.note.setText("")

    def set_steps(self, first: float, last: float) -> None:
        """The x range (the steps of the run)."""
        self.getPlotItem().setXRange(first, max(last, first + 1), padding=0.02)

    def set_note(self, text: str) -> None:
        """A line in the middle of an empty plot (e.g. why there is nothing to show)."""
        self.note.setText(text)
        (x0, x1), _ = self.getPlotItem().viewRange()
        self.note.setPos((x0 + x1) / 2, 0.5)


class ProbabilityCurves(pg.PlotWidget):
    """Mean D(real) and D(fake) against the training step, on a fixed 0–1 axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        plot = self.getPlotItem()
        _quiet_plot(plot)
        plot.setTitle(
            f"Mean <span style='color:{REAL_COLOR}'>D(real)</span> and "
            f"<span style='color:{FAKE_COLOR}'>D(fake)</span>",
            size="10pt",
        )
        plot.setLabel("bottom", "step")
        plot.setYRange(0.0, 1.0, padding=0.02)
        plot.setXRange(0, 1, padding=0.02)
        self.real_curve = plot.plot(pen=pg.mkPen(REAL_COLOR, width=2))
        self.fake_curve = plot.plot(pen=pg.mkPen(FAKE_COLOR, width=2))
        half = pg.InfiniteLine(0.5, angle=0, pen=pg.mkPen("#999999", width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
        plot.addItem(half, ignoreBounds=True)

    def set_steps(self, first: float, last: float) -> None:
        self.getPlotItem().setXRange(first, max(last, first + 1), padding=0.02)

    def set_history(self, steps: Sequence[float], real: Sequence[float], fake: Sequence[float]) -> None:
        x = np.asarray(steps, dtype=np.float64)
        self.real_curve.setData(x[: len(real)], np.asarray(real, dtype=np.float64))
        self.fake_curve.setData(x[: len(fake)], np.asarray(fake, dtype=np.float64))

    def clear_curves(self) -> None:
        self.real_curve.setData([], [])
        self.fake_curve.setData([], [])
