"""The Compare tab: the same model and the same starting noise, sampled with two or three settings side by side.

Each column shows its image at the same fraction of its run (one shared scrubber), a
strip with the timesteps its setting visits, and how long its run took. The runs go
one after the other in one worker (fewest steps first), so each time is its own.
"""

from __future__ import annotations

import random

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from explorer.chapters.base import ExportJob
from explorer.chapters.common import as_bool, read_setting
from explorer.chapters.diffusion.backend import MAX_SEED, SAMPLERS, DiffusionTab, visited_timesteps
from explorer.chapters.diffusion.frames import BUDGET_BYTES, FrameCache, RunSettings, StepRecord, run_many
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.readout import ReadoutLabel
from explorer.widgets.timestep_strip import TimestepStrip
from models.images import to_uint8

DEFAULT_COLUMNS = (("ddpm", 1000), ("ddim", 50), ("ddim", 10))
COLUMN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c")
SCRUB_TICKS = 1000  # the shared scrubber: 0 … 1000 thousandths of a run
DEBOUNCE_MS = 400
EXPORT_SCALE = 6  # each column 168×168
MAX_EXPORT_FRAMES = 201
MAX_GUIDANCE = 8.0


class CompareColumn(QWidget):
    """One setting's view: its image at the shared fraction, its timesteps, its progress and time."""

    def __init__(self, color: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panel = ImagePanel()
        self.panel.view_box.setMouseEnabled(x=False, y=False)
        self.panel.setMinimumSize(150, 150)
        self.strip = TimestepStrip(color)
        self.readout = ReadoutLabel(2)
        self.progress = QProgressBar()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.panel, 1)
        layout.addWidget(self.strip)
        layout.addWidget(self.readout)
        layout.addWidget(self.progress)


class CompareTab(DiffusionTab):
    """Two or three sampler settings side by side, from the same noise, kept in step."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.caches: dict[int, FrameCache] = {}
        self.runs: dict[int, RunSettings] = {}  # column -> its run's settings
        self.seconds: dict[int, float] = {}  # column -> time of its finished run
        self.worker = None
        self.stale = True
        self.playing = False
        self.fraction = 0.0
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(33)
        self.play_timer.timeout.connect(self._tick)
        self.restart_timer = QTimer(self)
        self.restart_timer.setSingleShot(True)
        self.restart_timer.setInterval(DEBOUNCE_MS)
        self.restart_timer.timeout.connect(self.generate)
        self._build_controls()
        self._build_views()
        self._build_shortcuts()
        self._connect()
        self._sync_controls()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        from models.diffusion import DEFAULT_GUIDANCE

        self.sampler_combos: list[QComboBox] = []
        self.steps_spins: list[QSpinBox] = []
        box = QGroupBox("Settings side by side")
        form = QFormLayout(box)
        for k, (sampler, steps) in enumerate(DEFAULT_COLUMNS):
            combo = QComboBox()
            combo.addItem("DDPM", "ddpm")
            combo.addItem("DDIM", "ddim")
            combo.setCurrentIndex(combo.findData(sampler))
            combo.setToolTip("DDPM adds fresh noise every step; DDIM (η = 0) adds none and keeps working "
                             "with far fewer steps")
            spin = QSpinBox()
            spin.setRange(10, 1000)
            spin.setValue(steps)
            spin.setKeyboardTracking(False)
            spin.setToolTip("Sampling steps (the model was trained with 1000); DDPM with fewer is the DDPM "
                            "scheduler skipping timesteps")
            self.sampler_combos.append(combo)
            self.steps_spins.append(spin)
            row = QHBoxLayout()
            row.addWidget(combo, 1)
            row.addWidget(spin, 1)
            if k == 2:
                self.third_check = QCheckBox()
                self.third_check.setChecked(True)
                self.third_check.setToolTip("Compare three settings (else two)")
                row.insertWidget(0, self.third_check)
            form.addRow(f"Column {k + 1}", row)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip("Every column starts from this seed's noise x_T")
        self.new_seed_button = QPushButton("New seed")
        self.new_seed_button.setToolTip("A random seed: new noise for every column")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.new_seed_button)
        form.addRow("Seed", seed_row)
        self.digit_combo = QComboBox()
        self.digit_combo.addItem("any (unconditional)", None)
        for digit in range(10):
            self.digit_combo.addItem(f"digit {digit}", digit)
        self.digit_combo.setToolTip("The digit to ask for; 'any' samples without a class")
        form.addRow("Digit", self.digit_combo)
        self.guidance_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.guidance_slider.setRange(0.0, MAX_GUIDANCE)
        self.guidance_slider.setSingleStep(0.1)
        self.guidance_slider.setDecimals(1)
        self.guidance_slider.setValue(DEFAULT_GUIDANCE)
        self.guidance_slider.setToolTip("Classifier-free guidance scale (with a digit)")
        form.addRow("Guidance", self.guidance_slider)
        self.generate_button = QPushButton("Run (Enter)")
        self.generate_button.setToolTip("Sample every column again")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop sampling; what is computed stays")
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.stop_button)
        form.addRow(buttons)
        self.progress = QProgressBar()
        form.addRow(self.progress)
        self.duration_spin = QSpinBox()
        self.duration_spin.setRange(1, 60)
        self.duration_spin.setValue(5)
        self.duration_spin.setSuffix(" s per run")
        self.duration_spin.setToolTip("Playback: how long the whole run takes on screen, every column alike")
        form.addRow("Playback", self.duration_spin)
        self.control_layout.addWidget(box)

    def _build_views(self) -> None:
        self.note = QLabel(
            "The same model and the same starting noise x<sub>T</sub>. The model learned all 1000 noise levels; "
            "a sampler may visit only some of them (the ticks) — DDIM's update jumps straight between "
            "them, so 50 or even 10 steps still make a digit.")
        self.note.setWordWrap(True)
        self.columns = [CompareColumn(color) for color in COLUMN_COLORS]
        row = QHBoxLayout()
        for column in self.columns:
            row.addWidget(column, 1)
        self.play_button = QToolButton()
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolTip("Play / pause (Space)")
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, SCRUB_TICKS)
        self.scrubber.setToolTip("Fraction of the run, the same for every column (← → step, Home / End)")
        self.fraction_label = ReadoutLabel(1)
        self.fraction_label.setFixedWidth(130)
        transport = QHBoxLayout()
        transport.addWidget(self.play_button)
        transport.addWidget(self.scrubber, 1)
        transport.addWidget(self.fraction_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.note)
        layout.addLayout(row, 1)
        layout.addLayout(transport)

    def _build_shortcuts(self) -> None:
        context = Qt.ShortcutContext.WindowShortcut
        keys = {
            Qt.Key.Key_Space: self.toggle_play,
            Qt.Key.Key_Right: lambda: self._nudge(+1),
            Qt.Key.Key_Left: lambda: self._nudge(-1),
            Qt.Key.Key_Home: lambda: self._jump(0.0),
            Qt.Key.Key_End: lambda: self._jump(1.0),
            Qt.Key.Key_Return: self.generate,
            Qt.Key.Key_Enter: self.generate,
        }
        self.shortcuts = [QShortcut(QKeySequence(key), self, action, context=context) for key, action in keys.items()]
        for shortcut in self.shortcuts:
            shortcut.setEnabled(False)

    def _connect(self) -> None:
        for combo, spin in zip(self.sampler_combos, self.steps_spins):
            combo.currentIndexChanged.connect(self._on_setting_changed)
            spin.valueChanged.connect(self._on_setting_changed)
        self.third_check.toggled.connect(self._on_setting_changed)
        self.seed_spin.valueChanged.connect(self._on_setting_changed)
        self.new_seed_button.clicked.connect(lambda: self.seed_spin.setValue(random.randint(0, 99_999)))
        self.digit_combo.currentIndexChanged.connect(self._on_setting_changed)
        self.guidance_slider.valueChanged.connect(self._on_setting_changed)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(self.stop)
        self.play_button.clicked.connect(self.toggle_play)
        self.scrubber.valueChanged.connect(self._on_scrubbed)

    # ------------------------------------------------------------------ settings → runs
    def column_count(self) -> int:
        return 3 if self.third_check.isChecked() else 2

    def column_settings(self) -> list[RunSettings]:
        """Each column's settings: its sampler and steps, the shared seed, digit and guidance."""
        digit = self.digit_combo.currentData() if self.holder.conditional else None
        guidance = self.guidance_slider.value() if digit is not None else 1.0
        return [
            RunSettings(sampler=self.sampler_combos[k].currentData(), steps=self.steps_spins[k].value(),
                        seed=self.seed_spin.value(), count=1, digit=digit, guidance=guidance)
            for k in range(self.column_count())
        ]

    def _sync_controls(self) -> None:
        for spin in self.steps_spins:
            spin.setMaximum(self.holder.num_train_timesteps)
        self.sampler_combos[2].setEnabled(self.third_check.isChecked())
        self.steps_spins[2].setEnabled(self.third_check.isChecked())
        self.digit_combo.setEnabled(self.holder.conditional)
        self.guidance_slider.setEnabled(self.holder.conditional and self.digit_combo.currentData() is not None)
        for k, column in enumerate(self.columns):
            column.setVisible(k < self.column_count())
            column.strip.set_range(self.holder.num_train_timesteps)

    def _on_setting_changed(self) -> None:
        self._sync_controls()
        self.stale = True
        if self.active:
            self.restart_timer.start()

    def generate(self) -> None:
        """Sample every column again (fewest steps first, one after the other)."""
        for spin in (*self.steps_spins, self.seed_spin):
            spin.interpretText()  # Enter reaches the shortcut, not the spin box being typed in
        self.restart_timer.stop()
        self._stop_worker()
        settings = self.column_settings()
        self.stale = False
        self.runs = dict(enumerate(settings))
        self.caches = {k: FrameCache(total=s.steps, budget=BUDGET_BYTES // len(settings)) for k, s in self.runs.items()}
        self.seconds = {}
        model = self.holder.model
        for k, run in self.runs.items():
            column = self.columns[k]
            column.strip.set_timesteps(visited_timesteps(model, run.sampler, run.steps))
            column.panel.set_title(f"{run.describe()}")
            column.progress.setRange(0, run.steps)
            column.progress.setValue(0)
            column.readout.setText("waiting for its turn…")
            column.strip.set_current(None)
        total = sum(s.steps for s in settings)
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m steps")
        order = sorted(self.runs.items(), key=lambda item: item[1].steps)
        self.worker = self.pool.start(run_many, model, order, on_yield=self._on_step,
                                      on_finished=self._on_run_finished, name="Compare samplers")
        self.stop_button.setEnabled(True)
        self.pause()
        self._set_fraction(1.0)  # while sampling, each column shows its newest step; then they play together

    def stop(self) -> None:
        self._stop_worker()
        self.stop_button.setEnabled(False)

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.pool.stop(self.worker)
            self.worker = None

    def _on_step(self, item: tuple[int, StepRecord]) -> None:
        k, step = item
        cache = self.caches[k]
        cache.add(step)
        self.columns[k].progress.setValue(cache.computed)
        self.progress.setValue(sum(c.computed for c in self.caches.values()))
        if cache.complete:
            self.seconds[k] = step.seconds
        if cache.computed == 1 or cache.complete or self.position(k) >= cache.computed - 1:
            self._show_column(k)

    def _on_run_finished(self) -> None:
        self.worker = None
        self.stop_button.setEnabled(False)
        if self.seconds and len(self.seconds) == len(self.runs):
            self._set_fraction(0.0)
            self.play()
            self.message.emit("Compare: " + ", ".join(
                f"{self.runs[k].describe()} {self.seconds[k]:.1f} s" for k in sorted(self.runs)) + ".")

    @property
    def busy(self) -> bool:
        return self.worker is not None

    # ------------------------------------------------------------------ the shared fraction
    def position(self, k: int) -> int:
        """Column k's position at the shared fraction: step 0 … steps − 1, or steps for the final image."""
        return int(round(self.fraction * self.runs[k].steps))

    def frame_of(self, k: int) -> tuple[StepRecord | None, bool]:
        """The step column k shows now (the latest computed if its position is not there yet) and
        whether it is the final image."""
        cache = self.caches[k]
        position = self.position(k)
        if position >= cache.total and cache.complete:
            return cache.last(), True
        return cache.get(min(position, cache.total - 1)), False

    def _show_column(self, k: int) -> None:
        column, cache = self.columns[k], self.caches[k]
        step, final = self.frame_of(k)
        if step is None:
            return
        column.panel.set_image(to_uint8(step.x_prev[0] if final else step.x_t[0]))
        column.strip.set_current(0 if final else step.t)
        where = "the final image" if final else f"step {step.index + 1} / {step.total}, t = {step.t}"
        late = "" if final or step.index == self.position(k) else " (computing…)"
        timing = (f"final image in <b>{self.seconds[k]:.2f} s</b>" if k in self.seconds
                  else f"computing: {cache.computed} / {cache.total} steps")
        column.readout.setText(f"{where}{late}<br>{timing}")

    def show_fraction(self) -> None:
        for k in self.runs:
            self._show_column(k)
        self.fraction_label.setText(f"{100 * self.fraction:.0f} % of each run")

    def _jump(self, fraction: float) -> None:
        self.pause()
        self._set_fraction(fraction)

    def _set_fraction(self, fraction: float) -> None:
        self.fraction = min(1.0, max(0.0, fraction))
        self.scrubber.blockSignals(True)
        self.scrubber.setValue(round(self.fraction * SCRUB_TICKS))
        self.scrubber.blockSignals(False)
        self.show_fraction()

    def _nudge(self, direction: int) -> None:
        """One step of the column with the most steps."""
        self.pause()
        most = max((run.steps for run in self.runs.values()), default=100)
        self._set_fraction(self.fraction + direction / most)

    def _on_scrubbed(self, value: int) -> None:
        self.pause()
        self._set_fraction(value / SCRUB_TICKS)

    def play(self) -> None:
        self.playing = True
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self.play_timer.start()

    def pause(self) -> None:
        self.playing = False
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_timer.stop()

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
            return
        if self.fraction >= 1.0:
            self._set_fraction(0.0)
        self.play()

    def _tick(self) -> None:
        if not self.runs:
            return
        if self.fraction >= 1.0:
            self.pause()
            return
        self._set_fraction(self.fraction + self.play_timer.interval() / 1000 / self.duration_spin.value())

    # ------------------------------------------------------------------ export
    def export_job(self) -> ExportJob | None:
        """The columns side by side at the same fractions of their runs (once every run is complete)."""
        if not self.runs or not all(cache.complete for cache in self.caches.values()):
            self.message.emit("Compare: let every column finish its run before exporting.")
            return None
        count = min(MAX_EXPORT_FRAMES, max(run.steps for run in self.runs.values()) + 1)
        frames = []
        for fraction in np.linspace(0.0, 1.0, count):
            parts = []
            for k, run in self.runs.items():
                cache = self.caches[k]
                position = int(round(fraction * run.steps))
                step = cache.last() if position >= run.steps else cache.get(position)
                image = to_uint8(step.x_prev[0] if position >= run.steps else step.x_t[0])
                parts.append(image.repeat(EXPORT_SCALE, axis=0).repeat(EXPORT_SCALE, axis=1))
                parts.append(np.full((parts[-1].shape[0], EXPORT_SCALE), 40, np.uint8))
            picture = np.concatenate(parts[:-1], axis=1)
            frames.append(np.ascontiguousarray(np.stack([picture] * 3, axis=-1)))
        first = self.runs[0]
        params = {
            "sequence": "compare",
            "model": self.holder.origin,
            "columns": [{"sampler": r.sampler, "steps": r.steps, "seconds": round(self.seconds.get(k, 0.0), 3)}
                        for k, r in self.runs.items()],
            "seed": first.seed,
            "digit": first.digit,
            "guidance": first.guidance if first.digit is not None else None,
            "frames_show": "each column's x_t at the same fraction of its run, left to right; last frame: the final images",
            "scale": EXPORT_SCALE,
        }
        name = "compare-" + "-".join(f"{r.sampler}{r.steps}" for r in self.runs.values()) + f"-seed{first.seed}"
        return ExportJob(frames=frames, count=len(frames), params=params, default_name=name)

    # ------------------------------------------------------------------ chapter hooks
    def refresh(self) -> None:
        self._stop_worker()
        self._sync_controls()
        self.stale = True
        if self.active:
            self.generate()

    def set_active(self, active: bool) -> None:
        super().set_active(active)
        for shortcut in self.shortcuts:
            shortcut.setEnabled(active)
        complete = self.caches and all(cache.complete for cache in self.caches.values())
        if active and (self.stale or not complete):
            self.generate()
        elif not active:
            self.pause()
            self.restart_timer.stop()
            if self.worker is not None:
                self._stop_worker()
                self.stale = True
            self.stop_button.setEnabled(False)

    def save_settings(self, settings: QSettings) -> None:
        for k in range(3):
            settings.setValue(f"compare/sampler{k}", self.sampler_combos[k].currentData())
            settings.setValue(f"compare/steps{k}", self.steps_spins[k].value())
        settings.setValue("compare/third", self.third_check.isChecked())
        settings.setValue("compare/seed", self.seed_spin.value())
        settings.setValue("compare/digit", -1 if self.digit_combo.currentData() is None else self.digit_combo.currentData())
        settings.setValue("compare/guidance", self.guidance_slider.value())
        settings.setValue("compare/duration", self.duration_spin.value())

    def restore_settings(self, settings: QSettings) -> None:
        widgets = [*self.sampler_combos, *self.steps_spins, self.third_check, self.seed_spin, self.digit_combo,
                   self.guidance_slider]
        for widget in widgets:
            widget.blockSignals(True)
        for k in range(3):
            if (sampler := read_setting(settings, f"compare/sampler{k}", str, lambda v: v in SAMPLERS)) is not None:
                self.sampler_combos[k].setCurrentIndex(self.sampler_combos[k].findData(sampler))
            maximum = self.steps_spins[k].maximum()
            if (steps := read_setting(settings, f"compare/steps{k}", int, lambda v: 10 <= v <= maximum)) is not None:
                self.steps_spins[k].setValue(steps)
        if (third := read_setting(settings, "compare/third", as_bool)) is not None:
            self.third_check.setChecked(third)
        if (seed := read_setting(settings, "compare/seed", int, lambda v: 0 <= v <= MAX_SEED)) is not None:
            self.seed_spin.setValue(seed)
        if (digit := read_setting(settings, "compare/digit", int, lambda v: -1 <= v <= 9)) is not None:
            self.digit_combo.setCurrentIndex(digit + 1)
        if (guidance := read_setting(settings, "compare/guidance", float, lambda v: 0 <= v <= MAX_GUIDANCE)) is not None:
            self.guidance_slider.setValue(guidance)
        for widget in widgets:
            widget.blockSignals(False)
        if (duration := read_setting(settings, "compare/duration", int, lambda v: 1 <= v <= 60)) is not None:
            self.duration_spin.setValue(duration)
        self._on_setting_changed()

    def shutdown(self) -> None:
        self.pause()
        self.restart_timer.stop()
        self._stop_worker()
