"""A 2-D latent map: points coloured by class, a marker you drag, and an optional grid of decodes behind."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsItem, QLabel, QVBoxLayout, QWidget

import explorer.widgets  # noqa: F401  (row-major image axis order)

# Ten classes, tab10 (Matplotlib's default cycle): distinct, and readable on white.
CLASS_COLORS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def class_legend_html(names: Sequence[str] = tuple("0123456789")) -> str:
    """One line of coloured squares and class names, for a QLabel above the maps."""
    items = (f"<span style='color:{CLASS_COLORS[i]}; font-size:15px'>■</span>&nbsp;{name}" for i, name in enumerate(names))
    return "&nbsp;&nbsp; ".join(items)


def map_bounds(codes: np.ndarray, padding: float = 0.08) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the extent of (N, 2) ``codes`` widened by ``padding`` of it on every side."""
    codes = np.asarray(codes, dtype=np.float64)
    low, high = codes.min(axis=0), codes.max(axis=0)
    pad = (high - low) * padding + 1e-6
    return float(low[0] - pad[0]), float(high[0] + pad[0]), float(low[1] - pad[1]), float(high[1] + pad[1])


class _PassiveScatter(pg.ScatterPlotItem):
    """Points that never take a click: a click on a point picks that place on the map."""

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph override)
        ev.ignore()


class _PickViewBox(pg.ViewBox):
    """A ViewBox where the left button picks a point (click or drag) instead of panning."""

    def __init__(self, on_pick, **kwargs) -> None:
        super().__init__(**kwargs)
        self._on_pick = on_pick

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph override)
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._on_pick(self.mapToView(ev.pos()))
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (pyqtgraph override)
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._on_pick(self.mapToView(ev.pos()))
        else:
            ev.ignore()


class LatentMap(QWidget):
    """A scatter of 2-D codes by class; clicking or dragging anywhere picks a point.

    The view range is fixed to the points' extent (padded), so the map stays put
    while you drag; :meth:`bounds` is that extent, which a grid of decodes covers.

    Signals
    -------
    picked(float, float)
        The latent point (z₁, z₂) under the mouse, on press and on every drag move.
    """

    picked = Signal(float, float)

    PADDING = 0.08  # of the points' extent, on every side

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title_label = QLabel(title)
        self.title_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title_label.setStyleSheet("font-weight: 600;")
        self.view_box = _PickViewBox(self._pick, enableMenu=False)
        self.plot_widget = pg.PlotWidget(viewBox=self.view_box)
        self.plot_widget.setMinimumSize(200, 200)
        self.plot_item: pg.PlotItem = self.plot_widget.getPlotItem()
        self.plot_item.hideButtons()
        self.plot_item.setLabel("bottom", "z₁")
        self.plot_item.setLabel("left", "z₂")
        self.view_box.setMouseEnabled(x=False, y=False)
        self.view_box.setCursor(Qt.CursorShape.CrossCursor)

        self.grid_item = pg.ImageItem()
        self.grid_item.setZValue(-10)
        self.grid_item.setOpacity(0.9)
        self.grid_item.setVisible(False)
        self.view_box.addItem(self.grid_item)
        # One item for all the points (the scene asks every item for its bounds on each mouse
        # move), drawn once into a pixmap so that the moving marker does not repaint them.
        self.scatter = _PassiveScatter(size=5, pen=None)
        self.scatter.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.view_box.addItem(self.scatter)
        self._brushes = [pg.mkBrush(color) for color in CLASS_COLORS]
        self.marker = _PassiveScatter(
            size=18, symbol="o", pen=pg.mkPen("#000000", width=2.5), brush=pg.mkBrush(255, 255, 255, 90)
        )
        self.marker.setZValue(10)
        self.view_box.addItem(self.marker)
        self._bounds = (-3.0, 3.0, -3.0, 3.0)
        self._point: tuple[float, float] | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title_label)
        layout.addWidget(self.plot_widget, 1)

    # ------------------------------------------------------------------ content
    def set_title(self, title: str) -> None:
        self.title_label.setText(title)

    def set_points(self, codes: np.ndarray, labels: np.ndarray) -> None:
        """Show (N, 2) ``codes`` coloured by ``labels`` (0–9) and fit the view to them."""
        codes = np.asarray(codes, dtype=np.float64)
        self.scatter.setData(codes[:, 0], codes[:, 1], brush=[self._brushes[int(label) % 10] for label in labels])
        self._bounds = x0, x1, y0, y1 = map_bounds(codes, self.PADDING)
        self.view_box.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.0)

    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1): the extent the map shows."""
        return self._bounds

    def set_grid(self, mosaic: np.ndarray | None) -> None:
        """Show a uint8 mosaic over :meth:`bounds` (its top row at the top), or hide it with None."""
        if mosaic is None:
            self.grid_item.setVisible(False)
            return
        x0, x1, y0, y1 = self._bounds
        # Row 0 of an image is drawn at the lowest y, and y grows upwards here: flip it.
        self.grid_item.setImage(np.ascontiguousarray(mosaic[::-1]), autoLevels=False, levels=(0, 255))
        self.grid_item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.grid_item.setVisible(True)

    def set_marker(self, x: float, y: float) -> None:
        self._point = (x, y)
        self.marker.setData([x], [y])

    def marker_position(self) -> tuple[float, float] | None:
        return self._point

    def set_points_visible(self, visible: bool) -> None:
        self.scatter.setVisible(visible)

    # ------------------------------------------------------------------ mouse
    def _pick(self, point: QPointF) -> None:
        self.set_marker(point.x(), point.y())
        self.picked.emit(point.x(), point.y())

    def viewport_position(self, x: float, y: float) -> QPoint:
        """Where the latent point (x, y) is on the plot's viewport (for mouse events)."""
        scene = self.view_box.mapViewToScene(QPointF(x, y))
        return self.plot_widget.mapFromScene(scene)
