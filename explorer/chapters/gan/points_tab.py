"""PLACEHOLDER: the PointsTab is being written."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout

from explorer.chapters.gan.tab import GanTab


class PointsTab(GanTab):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        QVBoxLayout(self).addWidget(QLabel("Coming soon"))
