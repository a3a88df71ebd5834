"""The Interpolate tab: walk from one digit's code to another's, in a straight line or around the sphere."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.chapters.base import ExportJob
from explorer.chapters.common import ViewJob, read_setting, tile
from explorer.chapters.latent.backend import (
    SIXTEEN,
    ModelShelf,
    TestDigits,
    Walks,
    interpolations,
    model_label,
    walk_frames,
)
from explorer.widgets.image_panel import ImagePanel
from explorer.workers import WorkerPool

MODES = ("linear", "spherical")
WALK_COLORS = {"linear": "#1f77b4", "spherical": "#ff7f0e"}
EXPORT_SCALE = 8  # exported frames are 224×224


class InterpolateTab(QWidget):
    """Two fresh digits, the walks between their codes, and how long the codes are on the way."""

    def __init__(self, shelf: ModelShelf, digits: TestDigits, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shelf, self.digits = shelf, digits
        self.walks: Walks | None = None
        self.job = ViewJob(pool, self._show_walks, name="Interpolation")
        self._build_controls()
        self._build_view()
        self._connect()

    def _build_controls(self) -> None:
        self.model_combo = QComboBox()
        self.class_combos: dict[str, QComboBox] = {}
        self.variant_spins: dict[str, QSpinBox] = {}
        for end, digit in (("a", 3), ("b", 8)):
            combo = QComboBox()
            for label in range(10):
                combo.addItem(f"digit {label}", label)
            combo.setCurrentIndex(digit)
            spin = QSpinBox()
            spin.setPrefix("no. ")
            spin.setKeyboardTracking(False)
            spin.setToolTip("Which of the fresh digits of this class")
            self.class_combos[end], self.variant_spins[end] = combo, spin
            self._fit_variants(end)
        self.random_pair_button = QPushButton("Random pair (P)")
        self.random_pair_button.setToolTip("Two fresh digits of different classes")
        self.mode_buttons = {"linear": QRadioButton("Linear"), "spherical": QRadioButton("Spherical")}
        self.mode_buttons["linear"].setToolTip("z = (1 − t)·a + t·b: a straight line")
        self.mode_buttons["spherical"].setToolTip("Along a great circle: the codes keep a typical length")
        self.mode_buttons["spherical"].setChecked(True)
        self.mode_group = QButtonGroup(self)
        for button in self.mode_buttons.values():
            self.mode_group.addButton(button)
        self.frames_spin = QSpinBox()
        self.frames_spin.setRange(2, 32)
        self.frames_spin.setValue(10)
        self.frames_spin.setKeyboardTracking(False)
        self.controls = QGroupBox("Interpolation")
        form = QFormLayout(self.controls)
        form.addRow("Model", self.model_combo)
        for end, title in (("a", "From"), ("b", "To")):
            row = QHBoxLayout()
            row.addWidget(self.class_combos[end], 1)
            row.addWidget(self.variant_spins[end])
            form.addRow(title, row)
        form.addRow(self.random_pair_button)
        form.addRow("Frames", self.frames_spin)
        modes = QHBoxLayout()
        for button in self.mode_buttons.values():
            modes.addWidget(button)
        form.addRow("Export", modes)
        note = QLabel("File → Export sequence (Ctrl+E) saves the chosen walk as frames, GIF or video.")
        note.setWordWrap(True)
        form.addRow(note)

    def _build_view(self) -> None:
        self.end_panels = {"a": ImagePanel("from"), "b": ImagePanel("to")}
        for panel in self.end_panels.values():
            panel.setFixedSize(100, 118)
        self.strip_panels = {
            "linear": ImagePanel("Linear: z = (1 − t)·a + t·b"),
            "spherical": ImagePanel("Spherical: along the great circle from a to b"),
        }
        for panel in (*self.end_panels.values(), *self.strip_panels.values()):
            panel.view_box.setMouseEnabled(x=False, y=False)
        ends = QHBoxLayout()
        ends.addStretch(1)
        ends.addWidget(self.end_panels["a"])
        arrow = QLabel("→  encode both, walk between the two codes, decode each step  →")
        arrow.setStyleSheet("color: #555;")
        ends.addWidget(arrow)
        ends.addWidget(self.end_panels["b"])
        ends.addStretch(1)

        self.length_plot = pg.PlotWidget()
        self.length_plot.setTitle("How long the code is along the walk: ‖z‖", size="10pt")
        self.length_plot.setMenuEnabled(False)
        self.length_plot.setMouseEnabled(x=False, y=False)
        self.length_plot.hideButtons()
        self.length_plot.setLabel("bottom", "t (0 = from, 1 = to)")
        self.length_plot.showGrid(x=True, y=True, alpha=0.2)
        self.length_plot.addLegend(offset=(-10, -10))  # bottom right, below the spherical walk
        self.length_curves = {
            mode: self.length_plot.plot(pen=pg.mkPen(WALK_COLORS[mode], width=2), name=mode) for mode in MODES
        }
        self.typical_length = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen("#777777", width=1.5, style=Qt.PenStyle.DashLine),
            label="typical ‖z‖ of a VAE's z ~ N(0, I): √d",
            labelOpts={"position": 0.25, "color": "#555555", "anchors": [(0.5, 0), (0.5, 0)]},  # below the line
        )
        self.length_plot.addItem(self.typical_length)
        self.note = QLabel()
        self.note.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(ends)
        layout.addWidget(self.strip_panels["linear"], 2)
        layout.addWidget(self.strip_panels["spherical"], 2)
        layout.addWidget(self.length_plot, 3)
        layout.addWidget(self.note)

    def _connect(self) -> None:
        self.model_combo.currentIndexChanged.connect(self.update_walks)
        for end in "ab":
            self.class_combos[end].currentIndexChanged.connect(lambda _, e=end: self._on_class_changed(e))
            self.variant_spins[end].valueChanged.connect(self.update_walks)
        self.random_pair_button.clicked.connect(self.random_pair)
        self.frames_spin.valueChanged.connect(self.update_walks)
        self.shelf.changed.connect(self.refresh)

    def jobs(self) -> list[ViewJob]:
        return [self.job]

    def refresh(self) -> None:
        """Refill the model list (models come and go) and recompute."""
        current = self.model_name()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for name in self.shelf.names():
            self.model_combo.addItem(model_label(name), name)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(current)))
        self.model_combo.blockSignals(False)
        self.update_walks()

    # ------------------------------------------------------------------ the two digits
    def model_name(self) -> str:
        return self.model_combo.currentData() or SIXTEEN

    @property
    def mode(self) -> str:
        return "spherical" if self.mode_buttons["spherical"].isChecked() else "linear"

    def _fit_variants(self, end: str) -> None:
        spin = self.variant_spins[end]
        spin.blockSignals(True)
        spin.setRange(1, len(self.digits.of_class(self.class_combos[end].currentData())))
        spin.blockSignals(False)

    def _on_class_changed(self, end: str) -> None:
        self._fit_variants(end)
        self.update_walks()

    def pair(self) -> tuple[int, int]:
        """The two ends' indices into the fresh digits."""
        a, b = (self.digits.of_class(self.class_combos[end].currentData())[self.variant_spins[end].value() - 1] for end in "ab")
        return int(a), int(b)

    def set_pair(self, index_a: int, index_b: int) -> None:
        """Choose the two ends by their indices into the fresh digits."""
        for end, index in (("a", index_a), ("b", index_b)):
            digit = int(self.digits.labels[index])
            combo, spin = self.class_combos[end], self.variant_spins[end]
            combo.blockSignals(True)
            combo.setCurrentIndex(combo.findData(digit))
            combo.blockSignals(False)
            self._fit_variants(end)
            spin.blockSignals(True)
            spin.setValue(int(np.searchsorted(self.digits.of_class(digit), index)) + 1)
            spin.blockSignals(False)
        self.update_walks()

    def random_pair(self) -> None:
        rng = np.random.default_rng()
        a = int(rng.integers(len(self.digits.labels)))
        others = np.flatnonzero(self.digits.labels != self.digits.labels[a])
        self.set_pair(a, int(rng.choice(others)))

    # ------------------------------------------------------------------ the walks
    def update_walks(self) -> None:
        index_a, index_b = self.pair()
        for end, index in (("a", index_a), ("b", index_b)):
            self.end_panels[end].set_image(self.digits.images[index])
        model = self.shelf.model(self.model_name())
        self.job.submit(interpolations, model, self.digits.images[index_a], self.digits.images[index_b], self.frames_spin.value())

    def _show_walks(self, walks: Walks) -> None:
        self.walks = walks
        for mode in MODES:
            frames = walks.frames[mode]
            self.strip_panels[mode].set_image(tile(frames, len(frames), gap=2, fill=90))
            self.length_curves[mode].setData(walks.t, walks.lengths[mode])
        typical = math.sqrt(walks.latent_dim)
        self.typical_length.setValue(typical)
        top = max(typical, *(float(lengths.max()) for lengths in walks.lengths.values()))
        self.length_plot.setYRange(0.0, 1.1 * top, padding=0.0)
        self.note.setText(
            f"{len(walks.frames['linear'])} frames with the {model_label(self.model_name())}. The end frames are the "
            "two digits' reconstructions; between them the decoder shows what it makes of codes no digit had. "
            "A straight line cuts through the middle, where codes are shorter than those a VAE was trained on; "
            "the spherical walk keeps their length."
        )

    def export_job(self) -> ExportJob:
        """The chosen walk, each frame 224×224, as ``export latent-walk`` would make it."""
        name, mode, count = self.model_name(), self.mode, self.frames_spin.value()
        index_a, index_b = self.pair()
        model, image_a, image_b = self.shelf.model(name), self.digits.images[index_a], self.digits.images[index_b]

        def frames():
            return walk_frames(model, image_a, image_b, count, mode == "spherical", EXPORT_SCALE)

        params = {
            "weights": name,
            "weights_origin": self.shelf.slots[name].origin,
            "mode": mode,
            "frames": count,
            "seed": self.digits.seed,
            "digits": [index_a, index_b],
            "labels": [int(self.digits.labels[index_a]), int(self.digits.labels[index_b])],
            "digits_from": f"make_digits({len(self.digits.labels)}, seed={self.digits.seed})",
        }
        return ExportJob(frames=frames, count=count, params=params, default_name=f"latent-walk-{name}-{mode}")

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("interp_model", self.model_name())
        settings.setValue("pair", ",".join(str(i) for i in self.pair()))
        settings.setValue("mode", self.mode)
        settings.setValue("frames", self.frames_spin.value())

    def restore_settings(self, settings: QSettings) -> None:
        def ints(text: object) -> list[int]:
            return [int(part) for part in str(text).split(",")]

        count = len(self.digits.labels)
        if (name := read_setting(settings, "interp_model", str, lambda v: self.model_combo.findData(v) >= 0)) is not None:
            self.model_combo.setCurrentIndex(self.model_combo.findData(name))
        if (mode := read_setting(settings, "mode", str, lambda v: v in MODES)) is not None:
            self.mode_buttons[mode].setChecked(True)
        if (frames := read_setting(settings, "frames", int, lambda v: 2 <= v <= 32)) is not None:
            self.frames_spin.setValue(frames)
        if (pair := read_setting(settings, "pair", ints, lambda v: len(v) == 2 and all(0 <= i < count for i in v))) is not None:
            self.set_pair(*pair)
