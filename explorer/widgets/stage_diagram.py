"""A model drawn as a row of boxes, one per stage, each with its tensor shape; an image at each end."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QWidget

# Box colours (background, border) for each part of an encoder–decoder model.
PART_STYLES = {
    "input": ("#ffffff", "#8a94a6"),
    "encoder": ("#e3edfb", "#5b8bd6"),
    "latent": ("#ffe9cc", "#e08a1e"),
    "decoder": ("#e2f4e4", "#4aa35a"),
    "output": ("#ffffff", "#8a94a6"),
}


def shape_text(shape: Sequence[int]) -> str:
    """(32, 14, 14) → "32×14×14"."""
    return "×".join(str(n) for n in shape)


def stage_parts(names: Sequence[str]) -> list[str]:
    """The part each stage belongs to: input, encoder, latent, decoder, output.

    The latent stage is the one named "latent …" (or the last "μ"/"mean" stage when none is);
    the stages just before it that name the mean or the spread belong to it too.
    """
    lowered = [name.lower() for name in names]
    latent = next((i for i, name in enumerate(lowered) if name.startswith("latent") or name.startswith("z")), None)
    if latent is None:
        latent = next((i for i, name in enumerate(lowered) if "μ" in name or "mean" in name), len(names) // 2)
    parts = []
    for i, name in enumerate(lowered):
        if i == 0 and "input" in name:
            parts.append("input")
        elif i == len(names) - 1 and "output" in name:
            parts.append("output")
        elif i == latent or (i < latent and any(key in name for key in ("μ", "σ", "mean", "logvar", "log σ", "spread"))):
            parts.append("latent")
        else:
            parts.append("encoder" if i < latent else "decoder")
    return parts


def grey_pixmap(image: np.ndarray, side: int) -> QPixmap:
    """A uint8 (H, W) grey image as a pixmap scaled to ``side`` pixels, without smoothing."""
    grey = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = grey.shape
    picture = QImage(grey.data, width, height, width, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(picture).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


class StageDiagram(QWidget):
    """input image → [stage boxes with shapes] → output image, in one row."""

    IMAGE_SIDE = 58

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.input_label = self._image_label("the input digit")
        self.output_label = self._image_label("its reconstruction: encode, then decode")
        self.box_labels: list[QLabel] = []
        self._stages: list[tuple[str, tuple[int, ...]]] | None = None
        self._font_px = 11
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(0)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.set_stages([])

    def _image_label(self, tooltip: str) -> QLabel:
        label = QLabel()
        label.setFixedSize(self.IMAGE_SIDE + 4, self.IMAGE_SIDE + 4)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setStyleSheet("QLabel { background: black; border: 1px solid #8a94a6; }")
        label.setToolTip(tooltip)
        return label

    def set_stages(self, stages: Sequence[tuple[str, Sequence[int]]]) -> None:
        """Show boxes for ``stages``: (name, shape) pairs from the input to the output."""
        stages = [(name, tuple(shape)) for name, shape in stages]
        if stages == self._stages:
            return
        self._stages = stages
        while self._row.count():
            item = self._row.takeAt(0)
            widget = item.widget()
            if widget is not None and widget not in (self.input_label, self.output_label):
                widget.deleteLater()
        self.box_labels = []
        self._row.addWidget(self.input_label)
        names = [name for name, _ in stages]
        for i, ((name, shape), part) in enumerate(zip(stages, stage_parts(names))):
            self._row.addWidget(self._arrow())
            background, border = PART_STYLES[part]
            # A zero-width space after each × lets a narrow box wrap a long shape.
            box = QLabel(f"<b>{name}</b><br>{shape_text(shape).replace('×', '×&#8203;')}")
            box.setAlignment(Qt.AlignmentFlag.AlignCenter)
            box.setTextFormat(Qt.TextFormat.RichText)
            box.setWordWrap(True)  # long names take two lines rather than widening the row
            box.setProperty("part", part)
            box.setProperty("style", (
                f"QLabel {{{{ background: {background}; border: 1.5px solid {border}; border-radius: 5px;"
                " padding: 2px 1px; font-size: {px}px; }}"
            ))  # fmt: skip
            box.setStyleSheet(box.property("style").format(px=self._font_px))
            # Never wider than the row allows: a narrow window clips a box rather than growing.
            box.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            box.setMinimumSize(40, 3 * box.fontMetrics().lineSpacing() + 8)
            box.setToolTip(f"{part}: {name}, a tensor of shape {shape_text(shape)} per image")
            self._row.addWidget(box, 1)
            self.box_labels.append(box)
        self._row.addWidget(self._arrow())
        self._row.addWidget(self.output_label)
        self._fit_font()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_font()

    def _fit_font(self) -> None:
        """Smaller text when the boxes get narrow (a small window), so that names still fit."""
        if not self.box_labels:
            return
        count = len(self.box_labels)
        per_box = (self.width() - 2 * (self.IMAGE_SIDE + 4) - (count + 1) * 9) / count
        px = 11 if per_box >= 60 else 10 if per_box >= 52 else 9
        if px != self._font_px or self.box_labels[0].styleSheet().find(f"{px}px") < 0:
            self._font_px = px
            for box in self.box_labels:
                box.setStyleSheet(box.property("style").format(px=px))

    @staticmethod
    def _arrow() -> QLabel:
        arrow = QLabel("›")
        arrow.setAlignment(Qt.AlignmentFlag.AlignCenter)
        arrow.setFixedWidth(9)
        arrow.setStyleSheet("color: #666; font-size: 16px;")
        arrow.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        return arrow

    def set_images(self, image: np.ndarray | None, reconstruction: np.ndarray | None) -> None:
        """Show uint8 (28, 28) images at both ends (None leaves one blank)."""
        for label, picture in ((self.input_label, image), (self.output_label, reconstruction)):
            if picture is None:
                label.clear()
            else:
                label.setPixmap(grey_pixmap(picture, self.IMAGE_SIDE))

    def stage_texts(self) -> list[str]:
        """The boxes' texts (name and shape), for tests and screen readers."""
        return [box.text().replace("&#8203;", "") for box in self.box_labels]
