"""A heat map of similarities, images × prompts: thumbnails as row headers, numbered prompt columns."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QWidget

import explorer.widgets  # noqa: F401  (row-major image axis order)

HEADER_GAP = 0.08  # between the thumbnails and the first column, in cells


class SimilarityMatrix(pg.GraphicsLayoutWidget):
    """Cosine similarities (N images, P prompts) as coloured cells, each with its value.

    Row i is headed by image i's thumbnail, column j by the number j + 1 (the prompt's
    place in the list); each row's largest value is outlined: the prompt CLIP picks for
    that image. Colours span the matrix's own range (the colour bar gives it).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.plot: pg.PlotItem = self.addPlot()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.showAxis("top")
        self.plot.getAxis("top").setStyle(tickLength=0)
        self.plot.getAxis("top").setLabel("prompt")
        self.heat = pg.ImageItem()
        self.thumbs = pg.ImageItem()
        self.plot.addItem(self.heat)
        self.plot.addItem(self.thumbs)
        self.best = pg.ScatterPlotItem(symbol="s", pxMode=False, size=0.92, brush=None,
                                       pen=pg.mkPen("#ff2d95", width=3))
        self.plot.addItem(self.best)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), interactive=False, width=12,
                                        label="cosine similarity")
        self.colorbar.setImageItem(self.heat)
        self.addItem(self.colorbar)
        self.labels: list[pg.TextItem] = []
        self.values = np.zeros((0, 0), np.float32)

    def set_matrix(self, values: np.ndarray, thumbnails: np.ndarray) -> None:
        """Show ``values`` float (N, P) with uint8 ``thumbnails`` (N, h, w, 3) heading the rows."""
        values = np.asarray(values, dtype=np.float32)
        self.values = values
        count, prompts = values.shape
        for label in self.labels:
            self.plot.removeItem(label)
        self.labels = []
        if count == 0 or prompts == 0:
            self.heat.clear()
            self.thumbs.clear()
            self.best.setData([], [])
            return
        low, high = float(values.min()), float(values.max())
        if high - low < 1e-6:
            low, high = low - 0.05, high + 0.05
        self.colorbar.setLevels((low, high))
        self.heat.setImage(values, autoLevels=False, levels=(low, high))
        self.heat.setRect(QRectF(0, 0, prompts, count))
        self.thumbs.setImage(np.ascontiguousarray(np.concatenate(list(thumbnails), axis=0)), autoLevels=False)
        self.thumbs.setRect(QRectF(-1 - HEADER_GAP, 0, 1, count))
        best = values.argmax(axis=1)
        self.best.setData(best + 0.5, np.arange(count) + 0.5)
        middle = (low + high) / 2
        for i in range(count):
            for j in range(prompts):
                color = "#111" if values[i, j] > middle else "#eee"  # viridis: light above the middle
                label = pg.TextItem(f"{values[i, j]:.2f}", color=color, anchor=(0.5, 0.5))
                label.setPos(j + 0.5, i + 0.5)
                self.plot.addItem(label)
                self.labels.append(label)
        self.plot.getAxis("top").setTicks([[(j + 0.5, str(j + 1)) for j in range(prompts)]])
        self.plot.setRange(xRange=(-1 - HEADER_GAP, prompts), yRange=(0, count), padding=0.02)
