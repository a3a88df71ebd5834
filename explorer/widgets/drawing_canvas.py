"""A small canvas to draw a digit with the mouse: white strokes on black, like the training digits."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


class DrawingCanvas(QWidget):
    """A ``side``×``side`` grey image drawn with a soft round brush.

    The left button draws, the right button erases. The image is float
    values in [0, 1] kept at full resolution; ``image()`` gives it as uint8.

    Signals
    -------
    changed()
        The drawing changed (emitted for every brush stamp while drawing).
    strokeFinished()
        The mouse button was released after drawing.
    """

    changed = Signal()
    strokeFinished = Signal()

    def __init__(self, side: int = 28, scale: int = 6, brush_radius: float = 1.3, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self.scale = scale
        self.brush_radius = brush_radius
        self._values = np.zeros((side, side), dtype=np.float32)
        self._last: QPointF | None = None
        self._erasing = False
        self.setFixedSize(QSize(side * scale + 2, side * scale + 2))
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw a digit with the left mouse button; the right button erases")

    # ------------------------------------------------------------------ data
    def image(self) -> np.ndarray:
        """The drawing as uint8 (side, side), 0 = black."""
        return np.rint(self._values * 255).astype(np.uint8)

    def set_image(self, image: np.ndarray) -> None:
        """Show a uint8 (side, side) image (e.g. a digit to draw over)."""
        self._values = np.asarray(image, dtype=np.float32) / 255
        self.update()
        self.changed.emit()

    def clear(self) -> None:
        self._values[:] = 0
        self.update()
        self.changed.emit()

    def is_empty(self) -> bool:
        return not self._values.any()

    def stroke(self, points: list[tuple[float, float]]) -> None:
        """Draw a stroke through ``points`` given in image pixels (x, y), as the mouse would."""
        previous = None
        for x, y in points:
            self._stamp_line(previous or (x, y), (x, y), erase=False)
            previous = (x, y)
        self.update()
        self.changed.emit()

    # ------------------------------------------------------------------ drawing
    def _stamp_line(self, start: tuple[float, float], end: tuple[float, float], erase: bool) -> None:
        """Stamp the brush every quarter pixel from ``start`` to ``end``."""
        (x0, y0), (x1, y1) = start, end
        count = max(1, int(np.hypot(x1 - x0, y1 - y0) * 4))
        yy, xx = np.mgrid[0 : self.side, 0 : self.side].astype(np.float32) + 0.5
        for t in np.linspace(0.0, 1.0, count + 1):
            cx, cy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            distance = np.hypot(xx - cx, yy - cy)
            # Full ink inside the radius, fading to nothing one pixel further: anti-aliased strokes.
            ink = np.clip(self.brush_radius + 1.0 - distance, 0.0, 1.0)
            if erase:
                np.minimum(self._values, 1.0 - ink, out=self._values)
            else:
                np.maximum(self._values, ink, out=self._values)

    def _to_image(self, position: QPointF) -> tuple[float, float]:
        return (position.x() - 1) / self.scale, (position.y() - 1) / self.scale

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return super().mousePressEvent(event)
        self._erasing = event.button() == Qt.MouseButton.RightButton
        self._last = event.position()
        point = self._to_image(self._last)
        self._stamp_line(point, point, self._erasing)
        self.update()
        self.changed.emit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if self._last is None:
            return super().mouseMoveEvent(event)
        position = event.position()
        self._stamp_line(self._to_image(self._last), self._to_image(position), self._erasing)
        self._last = position
        self.update()
        self.changed.emit()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if self._last is None:
            return super().mouseReleaseEvent(event)
        self._last = None
        self.strokeFinished.emit()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        pixels = np.ascontiguousarray(self.image())
        picture = QImage(pixels.data, self.side, self.side, self.side, QImage.Format.Format_Grayscale8)
        painter = QPainter(self)
        painter.drawImage(QRectF(1, 1, self.side * self.scale, self.side * self.scale), picture)
        painter.setPen(QPen(QColor("#8a94a6"), 1))
        painter.drawRect(QRectF(0.5, 0.5, self.width() - 1, self.height() - 1))
        painter.end()
