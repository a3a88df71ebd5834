"""What the GAN chapter expects of each of its tabs; the defaults do nothing."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from explorer.chapters.base import ExportJob
from explorer.workers import WorkerPool


class GanTab(QWidget):
    """A tab puts its views in itself and its controls in ``self.controls`` (shown in the
    chapter's left column while the tab is current; fill ``self.control_layout``).

    Signals
    -------
    message(str)
        A sentence for the status bar.
    """

    message = Signal(str)

    def __init__(self, pool: WorkerPool, device: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pool, self.device = pool, device
        self.controls = QWidget()
        self.control_layout = QVBoxLayout(self.controls)
        self.control_layout.setContentsMargins(0, 0, 0, 0)
        self.active = False

    def set_active(self, active: bool) -> None:
        """The tab became the current one (or stopped being it): pause what only shows here."""
        self.active = active

    @property
    def busy(self) -> bool:
        """Whether a view is still being computed (a training run that plays on aside)."""
        return False

    def export_job(self) -> ExportJob | None:
        """The training timelapse for File → Export sequence, or None."""
        return None

    def save_settings(self, settings: QSettings) -> None:
        """Store control values (``settings`` is inside the chapter's group)."""

    def restore_settings(self, settings: QSettings) -> None:
        """Restore what ``save_settings`` stored; ignore missing or invalid values."""

    def shutdown(self) -> None:
        """Stop timers and training: the window is closing."""
