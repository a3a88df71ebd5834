"""The "Model in use" box of a model chapter: what is loaded, Load weights…, Restore shipped."""

from __future__ import annotations

from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class ModelBox(QGroupBox):
    """A label that says which model is in use, and two buttons the chapter connects."""

    def __init__(self, title: str, load_tip: str, restore_tip: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.load_button = QPushButton("Load weights…")
        self.load_button.setToolTip(load_tip)
        self.restore_button = QPushButton("Restore shipped")
        self.restore_button.setToolTip(restore_tip)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        row = QHBoxLayout()
        row.addWidget(self.load_button)
        row.addWidget(self.restore_button)
        layout.addLayout(row)
