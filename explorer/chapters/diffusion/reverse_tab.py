"""The Reverse tab: an image comes out of pure noise one step at a time; play, pause, step back, look inside.

A worker samples (``frames.run_frames``) and fills a :class:`~explorer.chapters.diffusion.frames.FrameCache`;
playback, stepping and the scrubber only read that cache. The scrubber's positions are
the computed steps, plus the final image x₀ once the run is complete.
"""

from __future__ import annotations

import bisect
import functools
import math
import random

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QPen, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGraphicsRectItem,
    QGridLayout,
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
)
from superqt import QLabeledDoubleSlider

from explorer.chapters.base import ExportJob
from explorer.chapters.common import as_bool, read_setting, tile
from explorer.chapters.diffusion.backend import MAX_SEED, SAMPLERS, DiffusionTab, StepInput
from explorer.chapters.diffusion.frames import (
    BUDGET_BYTES,
    EXPORT_SCALE,
    FrameCache,
    RunSettings,
    StepRecord,
    export_pictures,
    run_frames,
)
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.readout import ReadoutLabel
from models.images import EPS_RANGE, to_uint8

GRID_COUNTS = (1, 4, 9, 16)
DEFAULT_STEPS = {"ddpm": 1000, "ddim": 50}
DEBOUNCE_MS = 300  # a setting change starts a new run once the controls rest this long
CURVES_EVERY_MS = 100  # the std curves follow a running sampler at most this often
GRID_GAP = 2
MAX_GUIDANCE = 8.0


def titled(panel: ImagePanel) -> ReadoutLabel:
    """Give ``panel`` a title that changes every frame without laying the tab out again
    (a QLabel's new text would: milliseconds per frame with six panels)."""
    panel.title_label.hide()
    title = ReadoutLabel(1, opaque=False)
    title.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    title.label.setStyleSheet("font-weight: 600;")
    panel.layout().insertWidget(0, title)
    return title


class ReverseTab(DiffusionTab):
    """Reverse diffusion from seeded noise, frame by frame, with x_t, ε̂, x̂₀ and the update.

    Signals
    -------
    frameShown(StepInput)
        What the U-Net saw at the step on screen, for the selected image.
    """

    frameShown = Signal(object)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.budget = BUDGET_BYTES
        self.cache: FrameCache | None = None
        self.run: RunSettings | None = None  # the settings of the run in the cache
        self.worker = None
        self.position = 0  # on screen: step index, or cache.total for the final image
        self.selected = 0  # the image of the grid the big panels follow
        self.stale = True  # the cache does not show the current settings and model
        self.playing = False
        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._tick)
        self.restart_timer = QTimer(self)
        self.restart_timer.setSingleShot(True)
        self.restart_timer.setInterval(DEBOUNCE_MS)
        self.restart_timer.timeout.connect(self.generate)
        self.curves_timer = QTimer(self)
        self.curves_timer.setSingleShot(True)
        self.curves_timer.setInterval(CURVES_EVERY_MS)
        self.curves_timer.timeout.connect(self._draw_curves)
        self._build_controls()
        self._build_views()
        self._build_shortcuts()
        self._connect()
        self._sync_controls()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        self.sampler_combo = QComboBox()
        self.sampler_combo.addItem("DDIM", "ddim")
        self.sampler_combo.addItem("DDPM", "ddpm")
        self.sampler_combo.setToolTip("DDPM: the ancestral sampler the model was trained for. DDIM: the same "
                                      "model, a different update that stays good with far fewer steps (deterministic with η = 0)")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(10, 1000)
        self.steps_spin.setValue(DEFAULT_STEPS["ddim"])
        self.steps_spin.setKeyboardTracking(False)
        self.steps_spin.setToolTip(
            "Sampling steps, 10 … T (the model's 1000 training steps). DDPM typically takes all 1000; "
            "DDPM with fewer steps is the DDPM scheduler skipping timesteps (it gets noisy). DDIM works "
            "well with 20–50.")
        self.eta_spin = QDoubleSpinBox()
        self.eta_spin.setRange(0.0, 1.0)
        self.eta_spin.setSingleStep(0.1)
        self.eta_spin.setDecimals(2)
        self.eta_spin.setKeyboardTracking(False)
        self.eta_spin.setToolTip("DDIM's η: 0 adds no noise (the same noise always gives the same image), "
                                 "1 adds as much as DDPM")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip("Seed of the starting noise x_T and of every step's noise: the same seed "
                                  "and settings give the same frames")
        self.new_seed_button = QPushButton("New seed")
        self.new_seed_button.setToolTip("A random seed: new noise, a new image")
        self.count_combo = QComboBox()
        for count in GRID_COUNTS:
            self.count_combo.addItem(f"{count} image{'s' if count > 1 else ''}", count)
        self.count_combo.setCurrentIndex(1)
        self.count_combo.setToolTip("Sample several images at once; click one in the grid to follow it")
        self.digit_combo = QComboBox()
        self.digit_combo.addItem("any (unconditional)", None)
        for digit in range(10):
            self.digit_combo.addItem(f"digit {digit}", digit)
        self.digit_combo.setToolTip("The digit to ask for (class-conditional generation); "
                                    "'any' samples without a class")
        self.guidance_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.guidance_slider.setRange(0.0, MAX_GUIDANCE)
        self.guidance_slider.setSingleStep(0.1)
        self.guidance_slider.setDecimals(1)
        self.guidance_slider.setToolTip(
            "Classifier-free guidance g: ε̂ = ε̂(no class) + g·(ε̂(digit) − ε̂(no class)). "
            "0 ignores the digit, 1 is plain conditional sampling, higher pushes harder towards it")
        self.generate_button = QPushButton("Generate (Enter)")
        self.generate_button.setToolTip("Sample again from the seed's noise with these settings")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop sampling; the steps computed so far stay")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.panels_check = QCheckBox("Export x_t | ε̂ | x̂₀ side by side")
        self.panels_check.setToolTip("File → Export sequence (Ctrl+E): each frame shows the three panels, "
                                     "not x_t alone")

        box = QGroupBox("Sampling")
        form = QFormLayout(box)
        form.addRow("Sampler", self.sampler_combo)
        form.addRow("Steps", self.steps_spin)
        form.addRow("DDIM η", self.eta_spin)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.new_seed_button)
        form.addRow("Seed", seed_row)
        form.addRow("Images", self.count_combo)
        form.addRow("Digit", self.digit_combo)
        form.addRow("Guidance", self.guidance_slider)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.stop_button)
        form.addRow(buttons)
        form.addRow(self.progress)
        self.control_layout.addWidget(box)
        export = QGroupBox("Export")
        export_layout = QVBoxLayout(export)
        export_layout.addWidget(self.panels_check)
        note = QLabel("File → Export sequence (Ctrl+E) saves the selected image's run, noise to digit.")
        note.setWordWrap(True)
        export_layout.addWidget(note)
        self.control_layout.addWidget(export)

    def _build_views(self) -> None:
        self.grid_panel = ImagePanel()
        self.grid_panel.view_box.setMouseEnabled(x=False, y=False)
        self.grid_title = titled(self.grid_panel)
        self.selection = QGraphicsRectItem()
        pen = QPen(pg.mkColor("#d62728"), 2)
        pen.setCosmetic(True)
        self.selection.setPen(pen)
        self.grid_panel.view_box.addItem(self.selection)
        self.panels = {name: ImagePanel() for name in ("x_t", "eps_hat", "x0_hat", "update")}
        self.titles = {name: titled(panel) for name, panel in self.panels.items()}
        for panel in self.panels.values():
            panel.view_box.setMouseEnabled(x=False, y=False)
            panel.setMinimumSize(120, 120)
        small = QGridLayout()
        small.setSpacing(6)
        for i, panel in enumerate(self.panels.values()):
            small.addWidget(panel, i // 2, i % 2)
        top = QHBoxLayout()
        top.addWidget(self.grid_panel, 1)
        top.addLayout(small, 1)

        self.readout = ReadoutLabel(1)

        self.curves = pg.PlotWidget()
        self.curves.setTitle("Noise left in x_t and predicted ε̂: std against t", size="10pt")
        self.curves.setMenuEnabled(False)
        self.curves.setMouseEnabled(x=False, y=False)
        self.curves.hideButtons()
        self.curves.setLabel("bottom", "t (pure noise on the left, the image at t = 0 on the right)")
        self.curves.showGrid(x=True, y=True, alpha=0.2)
        self.curves.getPlotItem().invertX(True)
        self.curves.setXRange(0, 999, padding=0.01)
        self.curves.setYRange(0, 1.6, padding=0)
        self.curves.addLegend(offset=(10, -10))  # bottom left: the curves stay above 0.3
        self.std_x_curve = self.curves.plot(pen=pg.mkPen("#1f77b4", width=2), name="std of x_t")
        self.std_eps_curve = self.curves.plot(pen=pg.mkPen("#ff7f0e", width=2), name="std of ε̂")
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d62728", width=1.5))
        self.curves.addItem(self.marker)
        self.curves.setMinimumHeight(150)

        icon = QStyle.StandardPixmap
        self.home_button = self._tool(icon.SP_MediaSkipBackward, "First step (Home)")
        self.back_button = self._tool(icon.SP_MediaSeekBackward, "Step back (←): the cached frame, nothing is recomputed")
        self.play_button = self._tool(icon.SP_MediaPlay, "Play / pause (Space)")
        self.forward_button = self._tool(icon.SP_MediaSeekForward, "Step forward (→)")
        self.end_button = self._tool(icon.SP_MediaSkipForward, "Last computed step (End)")
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, 0)
        self.scrubber.setToolTip("Every computed step, then the final image; drag to look at any of them")
        self.fps_spin = QSpinBox()
        self.fps_spin.setRange(1, 60)
        self.fps_spin.setValue(20)
        self.fps_spin.setSuffix(" frames/s")
        self.fps_spin.setToolTip("Playback speed (from the cache; past the computed steps it waits for the sampler)")
        self.position_label = ReadoutLabel(1, margin=2)
        self.position_label.setFixedWidth(150)
        transport = QHBoxLayout()
        for button in (self.home_button, self.back_button, self.play_button, self.forward_button, self.end_button):
            transport.addWidget(button)
        transport.addWidget(self.scrubber, 1)
        transport.addWidget(self.position_label)
        transport.addWidget(self.fps_spin)
        self.cache_label = QLabel()
        self.cache_label.setStyleSheet("color: #555;")
        self.cache_label.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top, 5)
        layout.addWidget(self.readout)
        layout.addWidget(self.curves, 3)
        layout.addLayout(transport)
        layout.addWidget(self.cache_label)

    def _tool(self, icon: QStyle.StandardPixmap, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(self.style().standardIcon(icon))
        button.setToolTip(tip)
        return button

    def _build_shortcuts(self) -> None:
        # Window-wide keys, enabled only while this tab is current (set_active).
        context = Qt.ShortcutContext.WindowShortcut
        keys = {
            Qt.Key.Key_Space: self.toggle_play,
            Qt.Key.Key_Right: self.step_forward,
            Qt.Key.Key_Left: self.step_back,
            Qt.Key.Key_Home: self.go_home,
            Qt.Key.Key_End: self.go_end,
            Qt.Key.Key_Return: self.generate,
            Qt.Key.Key_Enter: self.generate,
        }
        self.shortcuts = [QShortcut(QKeySequence(key), self, action, context=context) for key, action in keys.items()]
        for shortcut in self.shortcuts:
            shortcut.setEnabled(False)

    def _connect(self) -> None:
        self.sampler_combo.currentIndexChanged.connect(self._on_sampler_changed)
        self.steps_spin.valueChanged.connect(self._on_setting_changed)
        self.eta_spin.valueChanged.connect(self._on_setting_changed)
        self.seed_spin.valueChanged.connect(self._on_setting_changed)
        self.count_combo.currentIndexChanged.connect(self._on_setting_changed)
        self.digit_combo.currentIndexChanged.connect(self._on_digit_changed)
        self.guidance_slider.valueChanged.connect(self._on_setting_changed)
        self.new_seed_button.clicked.connect(self.new_seed)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(self.stop)
        self.home_button.clicked.connect(self.go_home)
        self.back_button.clicked.connect(self.step_back)
        self.play_button.clicked.connect(self.toggle_play)
        self.forward_button.clicked.connect(self.step_forward)
        self.end_button.clicked.connect(self.go_end)
        self.scrubber.valueChanged.connect(self._on_scrubbed)
        self.fps_spin.valueChanged.connect(self._on_fps_changed)
        self.grid_panel.graphics.scene().sigMouseClicked.connect(self._on_grid_clicked)

    # ------------------------------------------------------------------ settings → runs
    def run_settings(self) -> RunSettings:
        """The settings the controls show."""
        sampler = self.sampler_combo.currentData()
        digit = self.digit_combo.currentData() if self.holder.conditional else None
        return RunSettings(
            sampler=sampler,
            steps=self.steps_spin.value(),
            eta=self.eta_spin.value() if sampler == "ddim" else 0.0,
            seed=self.seed_spin.value(),
            count=self.count_combo.currentData(),
            digit=digit,
            guidance=self.guidance_slider.value() if digit is not None else 1.0,
        )

    def _sync_controls(self) -> None:
        """Enable what applies: η for DDIM, digit and guidance for a conditional model."""
        from models.diffusion import DEFAULT_GUIDANCE

        if not hasattr(self, "_guidance_set"):
            self.guidance_slider.blockSignals(True)
            self.guidance_slider.setValue(DEFAULT_GUIDANCE)
            self.guidance_slider.blockSignals(False)
            self._guidance_set = True
        self.steps_spin.setMaximum(self.holder.num_train_timesteps)
        self.eta_spin.setEnabled(self.sampler_combo.currentData() == "ddim")
        conditional = self.holder.conditional
        self.digit_combo.setEnabled(conditional)
        self.guidance_slider.setEnabled(conditional and self.digit_combo.currentData() is not None)
        tip = "" if conditional else "This model is unconditional: it takes no digit."
        self.digit_combo.setStatusTip(tip)

    def _on_sampler_changed(self) -> None:
        self.steps_spin.blockSignals(True)
        self.steps_spin.setValue(min(DEFAULT_STEPS[self.sampler_combo.currentData()], self.steps_spin.maximum()))
        self.steps_spin.blockSignals(False)
        self._on_setting_changed()

    def _on_digit_changed(self) -> None:
        self._on_setting_changed()

    def _on_setting_changed(self) -> None:
        self._sync_controls()
        self.stale = True
        if self.active:
            self.restart_timer.start()

    def new_seed(self) -> None:
        self.seed_spin.setValue(random.randint(0, 99_999))

    def generate(self) -> None:
        """Start a new run with the controls' settings (the old one stops)."""
        for spin in (self.steps_spin, self.eta_spin, self.seed_spin):
            spin.interpretText()  # Enter reaches the shortcut, not the spin box being typed in
        self.restart_timer.stop()
        self._stop_worker()
        settings = self.run_settings()
        self.run, self.stale = settings, False
        self.cache = FrameCache(total=settings.steps, budget=self.budget)
        self.position = 0
        self.selected = min(self.selected, settings.count - 1)
        self.grid_panel.setVisible(settings.count > 1)
        self.std_x_curve.setData([], [])
        self.std_eps_curve.setData([], [])
        self.curves.setXRange(0, self.holder.num_train_timesteps - 1, padding=0.01)
        self.progress.setRange(0, settings.steps)
        self.progress.setValue(0)
        self.progress.setFormat(f"{settings.describe()}: %v / %m steps")
        self._set_scrubber(0)
        self.cache_label.setText("")
        self._described_stride = 1
        self.worker = self.pool.start(
            run_frames, self.holder.model, settings,
            on_yield=self._on_step, on_finished=self._on_run_finished, name="Reverse diffusion",
        )
        self._update_buttons()
        self.play()

    def stop(self) -> None:
        """Stop sampling; the steps computed stay on the scrubber."""
        self._stop_worker()
        self._update_buttons()
        if self.cache is not None and not self.cache.complete:
            self.message.emit(f"Stopped after {self.cache.computed} of {self.cache.total} steps.")

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.pool.stop(self.worker)
            self.worker = None

    def _on_step(self, step: StepRecord) -> None:
        cache = self.cache
        cache.add(step)
        self.progress.setValue(cache.computed)
        self._set_scrubber(self.available() - 1)
        if not self.curves_timer.isActive():
            self.curves_timer.start()
        if cache.computed == 1:
            self.show_position(0)
        if cache.complete:
            count = self.run.count
            self.message.emit(f"{self.run.describe()}: {count} image{'s' if count > 1 else ''} in {step.seconds:.1f} s.")
        if cache.complete or cache.stride != self._described_stride:
            self._describe_cache()  # not every step: a new text lays the label out again

    def _on_run_finished(self) -> None:
        self.worker = None
        self._draw_curves()
        self._update_buttons()

    def _describe_cache(self) -> None:
        cache = self.cache
        self._described_stride = cache.stride
        text = f"Frame cache: {cache.nbytes / 2**20:.1f} MB of {cache.budget / 2**20:.0f} MB (float16)"
        if cache.thinned:
            text += (f"; past the bound it keeps every {cache.stride}th step (and the last): "
                     "the scrubber shows the nearest kept one")
        self.cache_label.setText(text + ".")

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def available(self) -> int:
        """Positions on the scrubber: the computed steps, plus the final image once complete."""
        if self.cache is None:
            return 0
        return self.cache.computed + (1 if self.cache.complete else 0)

    def _set_scrubber(self, maximum: int) -> None:
        self.scrubber.blockSignals(True)
        self.scrubber.setMaximum(max(0, maximum))
        self.scrubber.setValue(self.position)
        self.scrubber.blockSignals(False)

    # ------------------------------------------------------------------ playback (reads the cache only)
    def play(self) -> None:
        self.playing = True
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self.play_timer.start(round(1000 / self.fps_spin.value()))

    def pause(self) -> None:
        if not self.playing:
            return  # (stepping calls this every frame: no icon to repaint)
        self.playing = False
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_timer.stop()

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
            return
        if self.cache is not None and self.position >= self.available() - 1 and self.cache.complete:
            self.show_position(0)  # at the end: play again from the start
        self.play()

    def _on_fps_changed(self) -> None:
        if self.playing:
            self.play_timer.start(round(1000 / self.fps_spin.value()))

    def _tick(self) -> None:
        if self.cache is None:
            return
        following = self._next(self.position)
        if following is not None:
            self.show_position(following)
        elif self.cache.complete or self.worker is None:
            self.pause()  # the end (or a stopped run); else wait for the sampler

    def _next(self, position: int) -> int | None:
        """The next position that holds a frame of its own (kept steps, then the final image)."""
        cache = self.cache
        kept = cache.kept()
        i = bisect.bisect_right(kept, position)
        if i < len(kept) and kept[i] < cache.total:
            return kept[i]
        if cache.complete and position < cache.total:
            return cache.total
        return None

    def _previous(self, position: int) -> int | None:
        kept = self.cache.kept()
        i = bisect.bisect_left(kept, min(position, self.cache.total))
        return kept[i - 1] if i > 0 else None

    def step_forward(self) -> None:
        self.pause()
        if self.cache is not None and (following := self._next(self.position)) is not None:
            self.show_position(following)

    def step_back(self) -> None:
        self.pause()
        if self.cache is not None and (previous := self._previous(self.position)) is not None:
            self.show_position(previous)

    def go_home(self) -> None:
        self.pause()
        if self.available():
            self.show_position(0)

    def go_end(self) -> None:
        self.pause()
        if self.available():
            self.show_position(self.available() - 1)

    def _on_scrubbed(self, value: int) -> None:
        self.pause()
        self.show_position(value)

    # ------------------------------------------------------------------ what is on screen
    def show_position(self, position: int) -> None:
        """Show step ``position`` (``cache.total``: the final image) from the cache."""
        cache = self.cache
        if cache is None or not self.available():
            return
        position = max(0, min(position, self.available() - 1))
        final = position == cache.total
        step = cache.last() if final else cache.get(position)
        if step is None:
            return
        self.position = position if final else step.index
        self.scrubber.blockSignals(True)
        self.scrubber.setValue(self.position)
        self.scrubber.blockSignals(False)
        self._show_step(step, final)

    def _show_step(self, step: StepRecord, final: bool) -> None:
        i = self.selected
        number = f"step {step.index + 1} of {step.total}"
        if final:
            self.titles["x_t"].setText("x₀: the final image")
            self.panels["x_t"].set_image(to_uint8(step.x_prev[i]))
        else:
            self.titles["x_t"].setText(f"x_t  (t = {step.t}, step {step.index + 1}/{step.total})")
            self.panels["x_t"].set_image(to_uint8(step.x_t[i]))
        self.titles["eps_hat"].setText(f"predicted noise ε̂  (t = {step.t})")
        self.panels["eps_hat"].set_image(to_uint8(step.eps_hat[i].astype(np.float32) / EPS_RANGE))
        self.titles["x0_hat"].setText(f"predicted clean x̂₀  (t = {step.t})")
        self.panels["x0_hat"].set_image(to_uint8(step.x0_hat[i]))
        update = step.update(i)
        reach = max(float(np.abs(update).max()), 1e-6)
        landing = "x₀" if step.prev_t < 0 else f"t = {step.prev_t}"
        self.titles["update"].setText(f"update: t = {step.t} → {landing}")
        self.panels["update"].set_image(to_uint8(update / reach))
        if self.grid_panel.isVisible() or step.x_t.shape[0] > 1:
            self._show_grid(step, final)
        t_text = "done" if final else f"{step.t}"
        alpha = 1.0 if final else step.alpha_bar
        x = step.x_prev[i] if final else step.x_t[i]
        self.readout.setText(
            f"<b>t = {t_text}</b> &nbsp; ᾱ_t = {alpha:.4f} &nbsp; std of x_t = {float(x.astype(np.float32).std()):.3f}"
            f" &nbsp; std of ε̂ = {float(self.cache.std_eps[step.index][i]):.3f} &nbsp; ({number}"
            f"{', the final image' if final else ''}; ε̂ drawn ±{EPS_RANGE:g}, the update ±{reach:.2g})"
        )
        self.marker.setValue(0 if final else step.t)
        self.position_label.setText("x₀, the end" if final else f"step {step.index + 1} / {step.total}")
        self.frameShown.emit(StepInput(
            x_t=np.ascontiguousarray(step.x_t[i], dtype=np.float32), t=step.t,
            label=self.run.digit, guidance=self.run.guidance, index=step.index, total=step.total))

    def _show_grid(self, step: StepRecord, final: bool) -> None:
        images = to_uint8(step.x_prev if final else step.x_t)
        columns = math.isqrt(images.shape[0])
        self.grid_panel.set_image(tile(images, columns, gap=GRID_GAP, fill=90))
        self.grid_title.setText(f"{'x₀' if final else f'x_t at t = {step.t}'} of every image (click one)")
        row, column = divmod(self.selected, columns)
        size = images.shape[1] + GRID_GAP
        self.selection.setRect(QRectF(column * size - 1, row * size - 1, size - GRID_GAP + 2, size - GRID_GAP + 2))

    def _draw_curves(self) -> None:
        if self.cache is None:
            return
        t, std_x, std_eps = self.cache.curves(self.selected)
        self.std_x_curve.setData(t, std_x)
        self.std_eps_curve.setData(t, std_eps)
        if len(t):
            top = max(1.2, float(max(std_x.max(), std_eps.max())) * 1.1)
            self.curves.setYRange(0, top, padding=0)

    def select_image(self, index: int) -> None:
        """Make the big panels and the curves follow image ``index`` of the grid."""
        if self.run is None or not 0 <= index < self.run.count:
            return
        self.selected = index
        self._draw_curves()
        self.show_position(self.position)

    def _on_grid_clicked(self, event) -> None:
        x, y = self.grid_panel.pixel_at(event.scenePos())
        if x < 0 or self.run is None:
            return
        size = 28 + GRID_GAP
        columns = math.isqrt(self.run.count)
        column, row = x // size, y // size
        if column < columns and row < columns:
            self.select_image(row * columns + column)

    def _update_buttons(self) -> None:
        running = self.worker is not None
        self.stop_button.setEnabled(running)

    # ------------------------------------------------------------------ export
    def export_job(self) -> ExportJob | None:
        """The selected image's run, noise to digit (steps + 1 frames), as the CLI's ``export reverse`` makes it."""
        settings = self.run if self.run is not None and not self.stale else self.run_settings()
        panels = self.panels_check.isChecked()
        image = min(self.selected, settings.count - 1)
        model = self.holder.model
        scheduler = model.scheduler(settings.sampler, eta=settings.eta)
        scheduler.set_timesteps(settings.steps)
        params = {
            "sequence": "reverse",
            "model": self.holder.origin,
            **settings.params(),
            "image": image,
            "schedule": model.config.beta_schedule,
            "train_timesteps": model.config.num_train_timesteps,
            "t": [int(t) for t in scheduler.timesteps],
            "frames_show": "x_t at each t, then the final image"
            + (" | predicted noise ε̂ (−3…3) | predicted x̂₀" if panels else ""),
            "panels": panels,
            "scale": EXPORT_SCALE,
        }
        name = f"reverse-{settings.sampler}{settings.steps}-seed{settings.seed}"
        frames = functools.partial(export_pictures, model, settings, image, panels, EXPORT_SCALE)
        return ExportJob(frames=frames, count=settings.steps + 1, params=params, default_name=name)

    # ------------------------------------------------------------------ chapter hooks
    def refresh(self) -> None:
        """Another model: the cached run is not its run; sample again (now if this tab shows)."""
        self._stop_worker()
        self._sync_controls()
        self.stale = True
        if self.active:
            self.generate()

    def set_active(self, active: bool) -> None:
        super().set_active(active)
        for shortcut in self.shortcuts:
            shortcut.setEnabled(active)
        if active and (self.stale or self.cache is None or not self.cache.complete):
            self.generate()
        elif not active:
            self.pause()
            self.restart_timer.stop()
            if self.worker is not None:  # no sampling for a tab nobody looks at
                self._stop_worker()
                self.stale = True
            self._update_buttons()

    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("reverse/sampler", self.sampler_combo.currentData())
        settings.setValue("reverse/steps", self.steps_spin.value())
        settings.setValue("reverse/eta", self.eta_spin.value())
        settings.setValue("reverse/seed", self.seed_spin.value())
        settings.setValue("reverse/images", self.count_combo.currentData())
        settings.setValue("reverse/digit", -1 if self.digit_combo.currentData() is None else self.digit_combo.currentData())
        settings.setValue("reverse/guidance", self.guidance_slider.value())
        settings.setValue("reverse/fps", self.fps_spin.value())
        settings.setValue("reverse/panels", self.panels_check.isChecked())

    def restore_settings(self, settings: QSettings) -> None:
        widgets = [self.sampler_combo, self.steps_spin, self.eta_spin, self.seed_spin, self.count_combo,
                   self.digit_combo, self.guidance_slider]
        for widget in widgets:
            widget.blockSignals(True)
        if (sampler := read_setting(settings, "reverse/sampler", str, lambda v: v in SAMPLERS)) is not None:
            self.sampler_combo.setCurrentIndex(self.sampler_combo.findData(sampler))
        if (steps := read_setting(settings, "reverse/steps", int, lambda v: 10 <= v <= self.steps_spin.maximum())) is not None:
            self.steps_spin.setValue(steps)
        if (eta := read_setting(settings, "reverse/eta", float, lambda v: 0 <= v <= 1)) is not None:
            self.eta_spin.setValue(eta)
        if (seed := read_setting(settings, "reverse/seed", int, lambda v: 0 <= v <= MAX_SEED)) is not None:
            self.seed_spin.setValue(seed)
        if (count := read_setting(settings, "reverse/images", int, lambda v: v in GRID_COUNTS)) is not None:
            self.count_combo.setCurrentIndex(GRID_COUNTS.index(count))
        if (digit := read_setting(settings, "reverse/digit", int, lambda v: -1 <= v <= 9)) is not None:
            self.digit_combo.setCurrentIndex(digit + 1)
        if (guidance := read_setting(settings, "reverse/guidance", float, lambda v: 0 <= v <= MAX_GUIDANCE)) is not None:
            self.guidance_slider.setValue(guidance)
        for widget in widgets:
            widget.blockSignals(False)
        if (fps := read_setting(settings, "reverse/fps", int, lambda v: 1 <= v <= 60)) is not None:
            self.fps_spin.setValue(fps)
        if (panels := read_setting(settings, "reverse/panels", as_bool)) is not None:
            self.panels_check.setChecked(panels)
        self._on_setting_changed()

    def shutdown(self) -> None:
        self.pause()
        self.restart_timer.stop()
        self.curves_timer.stop()
        self._stop_worker()
