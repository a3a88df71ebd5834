"""A read-out label that repaints itself alone when its text changes every frame."""

from __future__ import annotations

import math

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ReadoutLabel(QWidget):
    """Text that changes every frame, in a box of fixed height whose size never follows the text.

    A plain QLabel's new text re-lays out every widget up to the window (word-wrapped
    explanations included): milliseconds per frame. Here the label has no layout
    above it, so a new text only repaints the label.

    Parameters
    ----------
    lines
        Lines of text the box is high enough for (see also :meth:`fit_height`).
    margin
        Pixels between the box's left and right edges and the text.
    opaque
        Fill the background, so that a new text does not repaint the widgets behind.
    """

    def __init__(
        self, lines: int = 1, parent: QWidget | None = None, *, margin: int = 4, opaque: bool = True
    ) -> None:
        super().__init__(parent)
        self.label = QLabel(self)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.setAutoFillBackground(opaque)
        self._lines = lines
        self._margin = margin
        self._sample: str | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._fit()

    def fit_height(self, sample: str) -> None:
        """Make the box as high as ``sample`` needs: for texts that always have the same lines (a table)."""
        self._sample = sample
        self._fit()

    def _fit(self) -> None:
        if self._sample is None:
            self.setFixedHeight(math.ceil(QFontMetrics(self.label.font()).lineSpacing() * 1.35 * self._lines) + 4)
        else:
            probe = QLabel()
            probe.setTextFormat(Qt.TextFormat.RichText)
            probe.setFont(self.label.font())
            probe.setText(self._sample)
            self.setFixedHeight(probe.sizeHint().height())

    def setText(self, text: str) -> None:  # noqa: N802 (QLabel's name)
        self.label.setText(text)

    def text(self) -> str:
        return self.label.text()

    def setFont(self, font) -> None:  # noqa: N802 (Qt's name)
        super().setFont(font)
        self.label.setFont(font)
        self._fit()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(100, self.height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.label.setGeometry(self.rect().adjusted(self._margin, 0, -self._margin, 0))
        super().resizeEvent(event)
