"""PLACEHOLDER: the UNetTab is being written."""

from __future__ import annotations

from PySide6.QtCore import Signal  # noqa: F401
from PySide6.QtWidgets import QLabel, QVBoxLayout

from explorer.chapters.base import ExportJob  # noqa: F401
from explorer.chapters.diffusion.backend import DiffusionTab, StepInput  # noqa: F401


class UNetTab(DiffusionTab):
    def set_input(self, step: StepInput) -> None:
        pass

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        QVBoxLayout(self).addWidget(QLabel("Coming soon"))
