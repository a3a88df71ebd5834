"""The Map tab: the AE-2D's and the VAE-2D's latent spaces side by side, to click and drag across."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from explorer.chapters.common import ViewJob, as_bool, read_setting
from explorer.chapters.latent.backend import (
    MAP_MODELS,
    MapData,
    ModelShelf,
    TestDigits,
    classify,
    decode_point,
    map_data,
    model_label,
)
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.latent_map import LatentMap, class_legend_html
from explorer.widgets.readout import ReadoutLabel
from explorer.workers import WorkerPool


VERDICT_DELAY_MS = 150  # the evaluator looks once the mouse rests: a drag pays for decodes only


class MapTab(QWidget):
    """Two maps of encoded fresh digits; a click or drag decodes the point under the mouse.

    Signals
    -------
    decoded(str)
        A point decode of that model reached the screen (for benchmarks and tests).
    """

    decoded = Signal(str)

    def __init__(self, shelf: ModelShelf, digits: TestDigits, pool: WorkerPool, evaluator: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shelf, self.digits, self.evaluator = shelf, digits, evaluator
        self.data: dict[str, MapData] = {}
        self.point_jobs = {name: ViewJob(pool, lambda image, n=name: self._show_point(n, image), name="Latent map") for name in MAP_MODELS}
        self.verdict_jobs = {name: ViewJob(pool, lambda text, n=name: self._show_verdict(n, text), name="Evaluator") for name in MAP_MODELS}
        self.map_jobs = {name: ViewJob(pool, lambda data, n=name: self._show_map(n, data), name="Latent map") for name in MAP_MODELS}
        self.verdict_timers: dict[str, QTimer] = {}
        for name in MAP_MODELS:
            timer = QTimer(self)
            timer.setSingleShot(True)
            timer.setInterval(VERDICT_DELAY_MS)
            timer.timeout.connect(lambda n=name: self._ask_evaluator(n))
            self.verdict_timers[name] = timer
        self._shown: dict[str, np.ndarray] = {}  # the decode on screen, per map
        self._build_controls()
        self._build_view()
        for name, latent_map in self.maps.items():
            latent_map.picked.connect(lambda x, y, n=name: self.decode_at(n, x, y))
            latent_map.set_marker(0.0, 0.0)
        self.grid_check.toggled.connect(self._show_grids)
        self.points_check.toggled.connect(self._show_points)
        self.grid_side_spin.valueChanged.connect(lambda _: self.refresh())
        shelf.changed.connect(self.refresh)

    def _build_controls(self) -> None:
        self.grid_check = QCheckBox("Grid of decodes behind the points (G)")
        self.grid_check.setToolTip("Decode a grid of codes over the whole map: what each region of the space holds")
        self.grid_side_spin = QSpinBox()
        self.grid_side_spin.setRange(4, 24)
        self.grid_side_spin.setValue(12)
        self.grid_side_spin.setSuffix(" codes a side")
        self.grid_side_spin.setKeyboardTracking(False)
        self.points_check = QCheckBox("Show the encoded digits")
        self.points_check.setChecked(True)
        hint = QLabel(
            f"Each dot is one of {len(self.digits.images)} fresh digits (never trained on) placed at its "
            "code, coloured by the digit it really is. <b>Click or drag</b> anywhere on a map to decode that point."
        )
        hint.setWordWrap(True)
        self.controls = QGroupBox("2-D maps")
        form = QFormLayout(self.controls)
        form.addRow(hint)
        form.addRow(self.points_check)
        form.addRow(self.grid_check)
        form.addRow("Grid", self.grid_side_spin)

    def _build_view(self) -> None:
        self.maps: dict[str, LatentMap] = {}
        self.panels: dict[str, ImagePanel] = {}
        self.readouts: dict[str, ReadoutLabel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(2, 2, 2, 2)
        legend = QLabel(class_legend_html())
        legend.setAlignment(Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(legend, 0, 0, 1, 2)
        for column, name in enumerate(MAP_MODELS):
            latent_map = LatentMap()
            panel = ImagePanel("decoded")
            panel.setFixedSize(120, 138)
            panel.view_box.setMouseEnabled(x=False, y=False)
            readout = ReadoutLabel(lines=3, margin=8, opaque=False)
            below = QHBoxLayout()
            below.addWidget(panel)
            below.addWidget(readout, 1)
            grid.addWidget(latent_map, 1, column)
            grid.addLayout(below, 2, column)
            grid.setColumnStretch(column, 1)
            self.maps[name], self.panels[name], self.readouts[name] = latent_map, panel, readout
        grid.setRowStretch(1, 1)

    def jobs(self) -> list[ViewJob]:
        return [*self.point_jobs.values(), *self.verdict_jobs.values(), *self.map_jobs.values()]

    # ------------------------------------------------------------------ updates
    def refresh(self) -> None:
        """Re-encode the digits and redecode the grid and the marked points with the models in use."""
        for name in MAP_MODELS:
            self.maps[name].set_title(f"{model_label(name)} ({self.shelf.slots[name].origin})")
            self.map_jobs[name].submit(map_data, self.shelf.model(name), self.digits.images, self.grid_side_spin.value())
            self.decode_at(name, *self.maps[name].marker_position())

    def decode_at(self, name: str, x: float, y: float) -> None:
        """Decode the code (x, y) of a 2-D model; the newest request wins."""
        self.maps[name].set_marker(x, y)
        self.point_jobs[name].submit(decode_point, self.shelf.model(name), np.array([x, y]))

    def _show_point(self, name: str, image: np.ndarray) -> None:
        self.panels[name].set_image(image)
        x, y = self.maps[name].marker_position()
        self.readouts[name].setText(f"z = ({x:.2f}, {y:.2f})")
        self._shown[name] = image
        if self.evaluator is not None:
            if self.verdict_jobs[name].immediate:
                self._ask_evaluator(name)
            else:
                self.verdict_timers[name].start()  # restarted by every decode of a drag
        self.decoded.emit(name)

    def _ask_evaluator(self, name: str) -> None:
        self.verdict_jobs[name].submit(classify, self.evaluator, self._shown[name])

    @property
    def waiting(self) -> bool:
        """Whether a verdict is still to be asked for."""
        return any(timer.isActive() for timer in self.verdict_timers.values())

    def shutdown(self) -> None:
        for timer in self.verdict_timers.values():
            timer.stop()

    def _show_verdict(self, name: str, text: str) -> None:
        x, y = self.maps[name].marker_position()
        self.readouts[name].setText(f"z = ({x:.2f}, {y:.2f})<br>The evaluator sees<br><b>{text}</b>")

    def _show_map(self, name: str, data: MapData) -> None:
        self.data[name] = data
        self.maps[name].set_points(data.codes, self.digits.labels)
        self._show_grids()

    def _show_grids(self) -> None:
        for name, data in self.data.items():
            self.maps[name].set_grid(data.grid if self.grid_check.isChecked() else None)

    def _show_points(self, visible: bool) -> None:
        for latent_map in self.maps.values():
            latent_map.set_points_visible(visible)

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("grid", self.grid_check.isChecked())
        settings.setValue("grid_size", self.grid_side_spin.value())
        settings.setValue("points", self.points_check.isChecked())

    def restore_settings(self, settings: QSettings) -> None:
        if (grid := read_setting(settings, "grid", as_bool)) is not None:
            self.grid_check.setChecked(grid)
        if (points := read_setting(settings, "points", as_bool)) is not None:
            self.points_check.setChecked(points)
        if (side := read_setting(settings, "grid_size", int, lambda v: 4 <= v <= 24)) is not None:
            self.grid_side_spin.setValue(side)
