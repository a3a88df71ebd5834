"""An image view: a title above a pyqtgraph ViewBox showing one array."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

import explorer.widgets  # noqa: F401  (row-major image axis order)


class ImagePanel(QWidget):
    """A titled, zoomable view of one image array.

    Arrays are row-major H×W (grey) or H×W×3 (RGB), uint8 or float32.
    Levels stay fixed (no auto-levels) so that live frames do not flicker.

    Signals
    -------
    hovered(int, int)
        Pixel column and row under the mouse, or (-1, -1) when it leaves the image.
    """

    hovered = Signal(int, int)

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title_label = QLabel(title)
        self.title_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title_label.setStyleSheet("font-weight: 600;")
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.ci.setContentsMargins(0, 0, 0, 0)
        self.view_box: pg.ViewBox = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view_box.setMenuEnabled(False)
        self.image_item = pg.ImageItem()
        self.view_box.addItem(self.image_item)
        self._shape: tuple[int, ...] = ()
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title_label)
        layout.addWidget(self.graphics, 1)

    def set_title(self, title: str) -> None:
        self.title_label.setText(title)

    def set_image(self, array: np.ndarray, levels: tuple[float, float] | None = (0, 255)) -> None:
        """Show ``array`` with fixed ``levels``; the view refits when the shape changes."""
        if array.dtype == np.uint8 and levels is not None and tuple(levels) == (0, 255):
            levels = None  # uint8 shown as it is: pyqtgraph skips a rescaled copy per frame
        self.image_item.setImage(array, autoLevels=False, levels=levels)
        if array.shape[:2] != self._shape[:2]:
            self.view_box.autoRange(padding=0.0)
        self._shape = array.shape

    def image(self) -> np.ndarray | None:
        """The array currently displayed."""
        return self.image_item.image

    def pixel_at(self, scene_pos: QPointF) -> tuple[int, int]:
        """Column and row of the pixel under a scene position, or (-1, -1)."""
        if not self._shape or not self.view_box.sceneBoundingRect().contains(scene_pos):
            return -1, -1
        point = self.view_box.mapSceneToView(scene_pos)
        x, y = int(np.floor(point.x())), int(np.floor(point.y()))
        height, width = self._shape[:2]
        if 0 <= x < width and 0 <= y < height:
            return x, y
        return -1, -1

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        self.hovered.emit(*self.pixel_at(scene_pos))

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.hovered.emit(-1, -1)
        super().leaveEvent(event)


def link_views(panels: Sequence[ImagePanel]) -> None:
    """Make panels pan and zoom together (the first one leads)."""
    lead = panels[0].view_box
    for panel in panels[1:]:
        panel.view_box.setXLink(lead)
        panel.view_box.setYLink(lead)
