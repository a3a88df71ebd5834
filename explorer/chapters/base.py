"""What every chapter is: controls and a plain-words explanation on the left, views on the right."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from explorer.workers import WorkerPool
    from models.images import LoadedImage


@dataclass
class AppContext:
    """What the window shares with its chapters."""

    image: LoadedImage
    workers: WorkerPool
    device: str = "cpu"


@dataclass
class ExportJob:
    """A sequence of frames a chapter offers to File → Export sequence.

    ``frames`` is a list of H×W×3 uint8 arrays, or a callable that yields them
    (called in a worker thread, so it may be slow).
    """

    frames: list[np.ndarray] | Callable[[], Iterator[np.ndarray]]
    count: int
    params: dict = field(default_factory=dict)
    default_name: str = "sequence"

    def iter_frames(self) -> Iterator[np.ndarray]:
        return iter(self.frames) if isinstance(self.frames, list) else self.frames()


class Chapter(QWidget):
    """Base class of a chapter page.

    Subclasses fill ``self.controls`` (a vertical layout under the explanation)
    and give ``self.views`` a layout.  They must not import torch at module
    level: a model chapter loads it when it is first built.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    explanation: ClassVar[str] = ""

    statusMessage = Signal(str)

    SIDE_WIDTH = 320

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context

        explanation = QLabel(self.explanation)
        explanation.setObjectName("explanation")
        explanation.setWordWrap(True)
        explanation.setTextFormat(Qt.TextFormat.RichText)
        explanation.setStyleSheet(
            "QLabel#explanation { background: #f4f6fb; border: 1px solid #dde3ef;"
            " border-radius: 6px; padding: 8px; color: #222; }"
        )

        side = QWidget()
        self.controls = QVBoxLayout(side)
        self.controls.setContentsMargins(8, 8, 8, 8)
        self.controls.setSpacing(8)
        self.controls.addWidget(explanation)

        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedWidth(self.SIDE_WIDTH)

        self.views = QWidget()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        layout.addWidget(self.views, 1)

    # Hooks for the window; the defaults do nothing.
    def set_image(self, image: LoadedImage) -> None:
        """The user opened or dropped an image."""

    def export_job(self) -> ExportJob | None:
        """Frames for File → Export sequence, or None when there is nothing to export."""
        return None

    def save_settings(self, settings: QSettings) -> None:
        """Store control values (``settings`` is already inside this chapter's group)."""

    def restore_settings(self, settings: QSettings) -> None:
        """Restore what ``save_settings`` stored; ignore missing or invalid values."""

    def shutdown(self) -> None:
        """Stop timers and workers: the window is closing."""


class TabbedChapter(Chapter):
    """A chapter whose views are tabs, each page with its own controls.

    A page is a QWidget with a ``controls`` widget (shown in the left column while the
    page is current) and the methods ``set_active(bool)``, ``busy``,
    ``save_settings(settings)``, ``restore_settings(settings)`` and ``shutdown()``.
    Call :meth:`add_tabs` once, after the pages exist.
    """

    def add_tabs(self, pages: tuple[QWidget, ...], titles: tuple[str, ...]) -> None:
        from PySide6.QtWidgets import QTabWidget

        self.tab_pages = pages
        for page in pages:
            self.controls.addWidget(page.controls)
        self.tabs = QTabWidget()
        for page, title in zip(pages, titles):
            self.tabs.addTab(page, title)
        layout = QVBoxLayout(self.views)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs, 1)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self._on_tab_changed(self.tabs.currentIndex())

    def _on_tab_changed(self, index: int) -> None:
        for i, page in enumerate(self.tab_pages):
            page.controls.setVisible(i == index)
            page.set_active(i == index)

    @property
    def busy(self) -> bool:
        """Whether a tab is still computing what it shows."""
        return any(page.busy for page in self.tab_pages)

    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("tab", self.tabs.currentIndex())
        for page in self.tab_pages:
            page.save_settings(settings)

    def restore_settings(self, settings: QSettings) -> None:
        from explorer.chapters.common import read_setting

        for page in self.tab_pages:
            page.restore_settings(settings)
        if (tab := read_setting(settings, "tab", int, lambda v: 0 <= v < self.tabs.count())) is not None:
            self.tabs.setCurrentIndex(tab)

    def shutdown(self) -> None:
        for page in self.tab_pages:
            page.shutdown()
