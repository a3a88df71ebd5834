"""The GAN chapter's 2-D plane (real and generated points, D's heat map, G's manifold,
gradient arrows; click or drag to draw points), its curves, and a numpy renderer for export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as fn
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QWidget

import explorer.widgets  # noqa: F401  (shared pyqtgraph options)

REAL_COLOR = (34, 139, 34)  # green: the data
FAKE_COLOR = (128, 60, 170)  # purple: the generator's samples
DRAWN_COLOR = (230, 120, 0)
MANIFOLD_COLOR = (120, 120, 120)
ARROW_COLOR = (200, 40, 40)
LAYERS = ("heat", "manifold", "real", "fake", "gradients")
LAYER_TITLES = {
    "heat": "D's output (heat map)",
    "manifold": "G's manifold",
    "real": "Real samples",
    "fake": "Generated samples",
    "gradients": "Gradients on generated",
}
ARROW_LENGTH = 0.15  # plane units of a typical (90th percentile) gradient arrow


def heat_lut() -> np.ndarray:
    """uint8 (256, 3): D says fake (0) light purple → unsure (0.5) white → real (1) light green."""
    t = np.linspace(0, 1, 256)[:, None]
    fake, white, real = np.array([196, 166, 232]), np.array([255, 255, 255]), np.array([150, 220, 150])
    lut = np.where(t < 0.5, fake + (white - fake) * (t / 0.5), white + (real - white) * ((t - 0.5) / 0.5))
    return lut.astype(np.uint8)


def polyline_arrays(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(L, P, 2) polylines as x, y and pyqtgraph's ``connect`` array (no link between lines)."""
    count, points = lines.shape[:2]
    connect = np.ones((count, points), dtype=np.int32)
    connect[:, -1] = 0
    return lines[..., 0].ravel(), lines[..., 1].ravel(), connect.ravel()


def arrow_segments(points: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """(n, 2) starts and gradients as (2n, 2) segment ends, scaled so that the 90th percentile
    arrow is ``ARROW_LENGTH`` long (directions and relative sizes kept)."""
    length = np.linalg.norm(gradients, axis=1)
    typical = float(np.percentile(length, 90)) if len(length) else 0.0
    scale = ARROW_LENGTH / typical if typical > 1e-12 else 0.0
    ends = points + np.clip(gradients * scale, -3 * ARROW_LENGTH, 3 * ARROW_LENGTH)
    segments = np.empty((2 * len(points), 2), dtype=np.float32)
    segments[0::2], segments[1::2] = points, ends
    return segments


class PointCloud(pg.GraphicsObject):
    """Many same-looking dots drawn with one ``QPainter.drawPoints`` call.

    A ScatterPlotItem builds a record per point in Python at every ``setData`` (~5 ms for 512
    points); here the positions go into a QPolygonF's memory through numpy.
    """

    def __init__(self, color: tuple[int, ...], size: float) -> None:
        super().__init__()
        self.pen = QPen(QColor(*color))
        self.pen.setWidthF(size)
        self.pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.pen.setCosmetic(True)  # pixels, whatever the zoom
        self.points = np.zeros((0, 2), dtype=np.float64)
        self._polygon = QPolygonF()
        self._rect = QRectF()

    def setData(self, pos: np.ndarray) -> None:  # noqa: N802 (pyqtgraph's name)
        points = np.asarray(pos, dtype=np.float64).reshape(-1, 2)
        points = points[np.isfinite(points).all(axis=1)]
        polygon = fn.create_qpolygonf(len(points))
        if len(points):  # (an empty polygon's buffer is read-only)
            fn.ndarray_from_qpolygonf(polygon)[:] = points
        self.prepareGeometryChange()
        self.points, self._polygon = points, polygon
        if len(points):
            low, high = points.min(axis=0), points.max(axis=0)
            self._rect = QRectF(low[0], low[1], high[0] - low[0], high[1] - low[1])
        else:
            self._rect = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        # Grown by the dots' radius in scene pixels, so that edge dots repaint whole.
        px, py = self.pixelVectors()
        pad_x = 0.0 if px is None else self.pen.widthF() * px.length()
        pad_y = 0.0 if py is None else self.pen.widthF() * py.length()
        return self._rect.adjusted(-pad_x, -pad_y, pad_x, pad_y)

    def paint(self, painter, *args) -> None:
        painter.setPen(self.pen)
        painter.drawPoints(self._polygon)


class _DrawingViewBox(pg.ViewBox):
    """A fixed view; while ``drawing`` a click adds a point and a drag adds a trail of them."""

    pointDrawn = Signal(float, float)
    SPACING = 0.06  # plane units between points of a dragged trail

    def __init__(self) -> None:
        super().__init__(enableMenu=False)
        self.drawing = False
        self._last: QPointF | None = None
        self.setMouseEnabled(x=False, y=False)

    def mouseClickEvent(self, ev) -> None:
        if self.drawing and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            point = self.mapSceneToView(ev.scenePos())
            self.pointDrawn.emit(point.x(), point.y())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if not (self.drawing and ev.button() == Qt.MouseButton.LeftButton):
            ev.ignore()
            return
        ev.accept()
        point = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self._last = None
        if self._last is None or (point - self._last).manhattanLength() >= self.SPACING:
            self._last = point
            self.pointDrawn.emit(point.x(), point.y())


class GanPlane(pg.PlotWidget):
    """The plane, with one item per layer (``items[name]``, see ``LAYERS``) that can be hidden.

    Signals
    -------
    pointDrawn(float, float)
        A point the user drew (only while ``set_drawing(True)``).
    """

    pointDrawn = Signal(float, float)

    def __init__(self, bounds: tuple[float, float], parent: QWidget | None = None) -> None:
        self.view_box = _DrawingViewBox()
        super().__init__(parent, viewBox=self.view_box)
        self.bounds = bounds
        low, high = bounds
        plot = self.getPlotItem()
        plot.hideButtons()
        plot.setAspectLocked(True)
        plot.setRange(xRange=bounds, yRange=bounds, padding=0.0)
        for name in ("bottom", "left"):
            plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        heat = pg.ImageItem(axisOrder="row-major")
        heat.setLookupTable(heat_lut())
        heat.setRect(QRectF(low, low, high - low, high - low))
        heat.setImage(np.full((2, 2), 0.5, dtype=np.float32), autoLevels=False, levels=(0.0, 1.0))
        # Scaling the small image up to the plane is the dearest part of a repaint: keep the
        # result as a pixmap, redrawn only when the heat map changes.
        heat.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.items: dict[str, pg.GraphicsObject] = {
            "heat": heat,
            # Thin lines without antialiasing: 500 arrows and 800 grid segments repaint ~20 times a second.
            "manifold": pg.PlotCurveItem(pen=pg.mkPen(MANIFOLD_COLOR, width=1), antialias=False),
            "real": PointCloud((*REAL_COLOR, 170), 5),
            "fake": PointCloud((*FAKE_COLOR, 200), 5),
            "gradients": pg.PlotCurveItem(pen=pg.mkPen(*ARROW_COLOR, 150, width=1), connect="pairs", antialias=False),
        }
        self.drawn_item = pg.ScatterPlotItem(size=8, pen=pg.mkPen("w"), brush=pg.mkBrush(*DRAWN_COLOR), symbol="o")
        for z, name in enumerate(LAYERS):
            self.items[name].setZValue(z)
            self.addItem(self.items[name])
        self.drawn_item.setZValue(len(LAYERS))
        self.addItem(self.drawn_item)
        self.message = pg.TextItem(anchor=(0.5, 0.5), color="#a00", fill=pg.mkBrush(255, 255, 255, 220))
        self.message.setZValue(len(LAYERS) + 1)
        self.message.setPos(0.5 * (low + high), 0.5 * (low + high))
        self.addItem(self.message)
        self.message.hide()
        self.view_box.pointDrawn.connect(self.pointDrawn)

    # ------------------------------------------------------------------ layers
    def set_layer_visible(self, name: str, visible: bool) -> None:
        self.items[name].setVisible(visible)

    def layer_visible(self, name: str) -> bool:
        return self.items[name].isVisible()

    def set_drawing(self, drawing: bool) -> None:
        """Clicks and drags add points (the cursor becomes a cross) or do nothing."""
        self.view_box.drawing = drawing
        self.setCursor(Qt.CursorShape.CrossCursor if drawing else Qt.CursorShape.ArrowCursor)

    def show_message(self, html: str) -> None:
        """A note over the middle of the plane ("" hides it)."""
        if html:
            self.message.setHtml(f"<div style='max-width: 300px; padding: 6px'>{html}</div>")
        self.message.setVisible(bool(html))

    # ------------------------------------------------------------------ data
    def set_points(self, real: np.ndarray | None = None, fake: np.ndarray | None = None) -> None:
        if real is not None:
            self.items["real"].setData(pos=real)
        if fake is not None:
            self.items["fake"].setData(pos=fake)

    def set_drawn(self, points: np.ndarray) -> None:
        self.drawn_item.setData(pos=np.asarray(points, dtype=np.float32).reshape(-1, 2))

    def set_heat(self, heat: np.ndarray) -> None:
        """D's realness in [0, 1], row 0 at the bottom of the plane."""
        self.items["heat"].setImage(heat, autoLevels=False, levels=(0.0, 1.0))

    def set_manifold(self, lines: np.ndarray) -> None:
        x, y, connect = polyline_arrays(lines)
        self.items["manifold"].setData(x, y, connect=connect)

    def set_gradients(self, points: np.ndarray, gradients: np.ndarray) -> None:
        segments = arrow_segments(points, gradients)
        self.items["gradients"].setData(segments[:, 0], segments[:, 1], connect="pairs")

    def clear_model(self) -> None:
        """Nothing of a model on show (before the first snapshot of a new one)."""
        self.items["fake"].setData(pos=np.zeros((0, 2)))
        self.items["manifold"].setData([], [])
        self.items["gradients"].setData([], [])
        self.set_heat(np.full((2, 2), 0.5, dtype=np.float32))


class SquareBox(QWidget):
    """Holds one widget as the largest square that fits, centred (the plane's axes are equal)."""

    def __init__(self, child: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.child = child
        child.setParent(self)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        side = min(self.width(), self.height())
        self.child.setGeometry((self.width() - side) // 2, (self.height() - side) // 2, side, side)
        super().resizeEvent(event)


class GanCurves(pg.GraphicsLayoutWidget):
    """Two plots: D's and G's losses; mean D(real) and D(fake). Updated in place (``set_history``)."""

    TERMS = (
        ("losses", "Losses", (("d_loss", "D loss", "#1f77b4"), ("g_loss", "G loss", "#ff7f0e"))),
        ("scores", "Mean D(x): how real D finds them", (("d_real", "D(real)", "#228b22"), ("d_fake", "D(fake)", "#803caa"))),
    )

    def __init__(self, vertical: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for i, (key, title, curves) in enumerate(self.TERMS):
            plot = self.addPlot(row=i if vertical else 0, col=0 if vertical else i)
            plot.setTitle(title, size="9pt")
            plot.setLabel("bottom", "step")
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.disableAutoRange()
            plot.setXRange(0, 100, padding=0.02)
            plot.setYRange(0, 1.0 if key == "scores" else 2.0, padding=0.02)
            legend = plot.addLegend(offset=(4, 4), labelTextSize="8pt")
            legend.setBrush(pg.mkBrush(255, 255, 255, 200))
            for name in ("bottom", "left"):
                plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            for name, label, color in curves:
                self.curves[name] = plot.plot(pen=pg.mkPen(color, width=2), name=label)
            self.plots[key] = plot

    def set_history(self, steps: Sequence[float], values: Mapping[str, Sequence[float]]) -> None:
        """Show ``values[name]`` against ``steps``; the ranges grow with the data."""
        x = np.asarray(steps, dtype=np.float64)
        for key, _, curves in self.TERMS:
            low, high = np.inf, -np.inf
            for name, _, _ in curves:
                y = np.asarray(values.get(name, ()), dtype=np.float64)[: len(x)]
                self.curves[name].setData(x[: len(y)], y)
                if len(y) and np.isfinite(y).any():
                    low, high = min(low, np.nanmin(y)), max(high, np.nanmax(y))
            plot = self.plots[key]
            if np.isfinite(low):
                (_, _), (shown_low, shown_high) = plot.viewRange()
                if key == "scores":
                    low, high = 0.0, 1.0
                if low < shown_low or high > shown_high:
                    span = max(high - low, 1e-6)
                    plot.setYRange(min(low, shown_low) - 0.05 * span, max(high, shown_high) + 0.05 * span, padding=0)
            if len(x) and x[-1] > plot.viewRange()[0][1]:
                plot.setXRange(x[0], x[0] + 2 * (x[-1] - x[0]) + 10, padding=0.02)

    def clear_curves(self) -> None:
        for curve in self.curves.values():
            curve.setData([], [])
        for key, plot in self.plots.items():
            plot.setXRange(0, 100, padding=0.02)
            plot.setYRange(0, 1.0 if key == "scores" else 2.0, padding=0.02)


# ---------------------------------------------------------------------- export (numpy only)
def render_frame(
    bounds: tuple[float, float],
    real: np.ndarray,
    fake: np.ndarray,
    heat: np.ndarray | None = None,
    manifold: np.ndarray | None = None,
    gradients: np.ndarray | None = None,
    size: int = 320,
) -> np.ndarray:
    """The plane as uint8 (size, size, 3) RGB, y up, the layers that are not None drawn in
    the plane's order (heat, manifold, real, fake, gradients). Pure numpy: runs in any thread."""
    low, high = bounds
    if heat is not None:
        rows = (np.arange(size) * heat.shape[0] // size)[::-1]  # image row 0 is the plane's top
        cols = np.arange(size) * heat.shape[1] // size
        index = np.clip(heat[rows][:, cols] * 255, 0, 255).astype(np.uint8)
        frame = heat_lut()[index]
    else:
        frame = np.full((size, size, 3), 255, dtype=np.uint8)

    def pixels(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = (points[:, 0] - low) / (high - low) * (size - 1)
        v = (high - points[:, 1]) / (high - low) * (size - 1)
        inside = (u >= 0) & (u <= size - 1) & (v >= 0) & (v <= size - 1)
        return np.round(v[inside]).astype(int), np.round(u[inside]).astype(int)

    def dots(points: np.ndarray, color: tuple[int, int, int], radius: int) -> None:
        r, c = pixels(points)
        for dr in range(-radius, radius + 1):
            for dc in range(-radius, radius + 1):
                frame[np.clip(r + dr, 0, size - 1), np.clip(c + dc, 0, size - 1)] = color

    def segments(starts: np.ndarray, ends: np.ndarray, color: tuple[int, int, int]) -> None:
        t = np.linspace(0, 1, 12)[:, None, None]
        dots((starts[None] + t * (ends - starts)[None]).reshape(-1, 2), color, 0)

    if manifold is not None and manifold.shape[1] > 1:
        segments(manifold[:, :-1].reshape(-1, 2), manifold[:, 1:].reshape(-1, 2), MANIFOLD_COLOR)
    dots(real, REAL_COLOR, 1)
    dots(fake, FAKE_COLOR, 1)
    if gradients is not None:
        ends = arrow_segments(fake, gradients)
        segments(ends[0::2], ends[1::2], ARROW_COLOR)
    return np.ascontiguousarray(frame)
