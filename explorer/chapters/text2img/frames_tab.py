"""The base of the three sampling tabs (Text to image, Two prompts, Image to image).

It owns what they do alike: the sampling controls (guidance, steps, sampler, seed,
Generate / Stop, progress), a debounced restart when a setting changes, one worker at a
time, the transport bar and its keys, activation, settings and shutdown. A subclass
builds its views, starts its run (:meth:`_start_run`) and shows a position (:meth:`show_position`).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
)
from superqt import QLabeledDoubleSlider

from explorer.chapters.common import read_setting
from explorer.chapters.text2img.backend import MAX_SEED, SAMPLERS, TextToImageTab
from explorer.chapters.text2img.frames_player import DEBOUNCE_MS, FramePlayer
from explorer.widgets.pipeline_diagram import Token, prompt_tokens

if TYPE_CHECKING:
    from explorer.workers import Worker

MAX_STEPS = 1000
RANDOM_SEED_MAX = 99_999
MAX_PROMPT_CHARS = 500


def vocabulary_text(words: tuple[str, ...]) -> str:
    """The words a prompt may use, for a hint (special tokens left out)."""
    return ", ".join(word for word in words if not word.startswith("<"))


class SamplingTab(TextToImageTab):
    """A tab that samples with ``generate_frames`` in a worker and plays the cached frames."""

    KEY = "sampling"  # prefix of this tab's settings
    SHOW_SAMPLER = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker = None
        self.stale = True  # what is on screen does not follow the controls and the pipeline
        self.worker_starts = 0  # runs started (tests count them: scrubbing never samples)
        self.generation = 0  # bumped by every run: a stopped run's late "finished" is ignored
        self.restart_timer = QTimer(self)
        self.restart_timer.setSingleShot(True)
        self.restart_timer.setInterval(DEBOUNCE_MS)
        self.restart_timer.timeout.connect(self.generate)
        self.player = FramePlayer()
        self.player.positionChanged.connect(self.show_position)
        self.shortcuts = self.player.shortcuts(self, {Qt.Key.Key_Return: self.generate,
                                                      Qt.Key.Key_Enter: self.generate})

    # ------------------------------------------------------------------ controls
    def _prompt_edit(self, text: str, tip: str, placeholder: str = "") -> QLineEdit:
        edit = QLineEdit(text)
        edit.setToolTip(tip)
        edit.setPlaceholderText(placeholder)
        edit.setClearButtonEnabled(True)
        edit.setMaxLength(MAX_PROMPT_CHARS)
        edit.setCursorPosition(0)  # show the prompt's start
        edit.editingFinished.connect(self._on_prompt_finished)
        edit.setProperty("ran", text)
        return edit

    def _vocabulary_hint(self) -> QLabel:
        self.vocabulary_label = QLabel()
        self.vocabulary_label.setWordWrap(True)
        self.vocabulary_label.setStyleSheet("color: #555; font-size: 11px;")
        self._show_vocabulary()
        return self.vocabulary_label

    def _show_vocabulary(self) -> None:
        words = vocabulary_text(self.holder.pipe.clip.tokenizer.vocabulary)
        self.vocabulary_label.setText(f"Empty prompt: unconditional (any scene). Other words are named and "
                                      f"ignored. Words it knows: <i>{words}</i>.")

    def _sampling_rows(self, form: QFormLayout) -> None:
        """Guidance, steps, sampler, seed, Generate / Stop and progress, as rows of ``form``."""
        from models.ldm import DEFAULT_GUIDANCE, DEFAULT_STEPS, MAX_GUIDANCE

        self.guidance_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.guidance_slider.setRange(0.0, MAX_GUIDANCE)
        self.guidance_slider.setSingleStep(0.1)
        self.guidance_slider.setDecimals(1)
        self.guidance_slider.setValue(DEFAULT_GUIDANCE)
        self.guidance_slider.setToolTip(
            "Classifier-free guidance g: ε̂ = ε̂(no text) + g·(ε̂(text) − ε̂(no text)). 0 ignores the prompt, "
            "1 is plain conditional sampling, more follows the prompt more strictly (and too much overshoots)")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, MAX_STEPS)
        self.steps_spin.setValue(DEFAULT_STEPS)
        self.steps_spin.setKeyboardTracking(False)
        self.steps_spin.setToolTip("Sampling steps (the U-Net learned 1000 noise levels); DDIM works well "
                                   "with 20–50, DDPM wants many more")
        self.sampler_combo = QComboBox()
        self.sampler_combo.addItem("DDIM", "ddim")
        self.sampler_combo.addItem("DDPM", "ddpm")
        self.sampler_combo.setToolTip("DDIM (η = 0) adds no noise between steps: the seed decides the image. "
                                      "DDPM adds fresh noise every step and needs many steps")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip("Seed of the starting noise z_T (and of DDPM's noise): the same seed and "
                                  "settings give the same frames")
        self.random_seed_button = QPushButton("Random")
        self.random_seed_button.setToolTip("A random seed: new noise, a new image")
        self.generate_button = QPushButton("Generate (Enter)")
        self.generate_button.setToolTip("Sample again with these settings")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop sampling; the steps computed so far stay")
        self.progress = QProgressBar()
        form.addRow("Guidance", self.guidance_slider)
        form.addRow("Steps", self.steps_spin)
        if self.SHOW_SAMPLER:
            form.addRow("Sampler", self.sampler_combo)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.random_seed_button)
        form.addRow("Seed", seed_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.stop_button)
        form.addRow(buttons)
        form.addRow(self.progress)
        self.guidance_slider.valueChanged.connect(self._on_setting_changed)
        self.steps_spin.valueChanged.connect(self._on_setting_changed)
        self.sampler_combo.currentIndexChanged.connect(self._on_setting_changed)
        self.seed_spin.valueChanged.connect(self._on_setting_changed)
        self.random_seed_button.clicked.connect(self.random_seed)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)

    def prompt_edits(self) -> list[QLineEdit]:
        """The tab's prompt fields (a run starts when one of them is edited and left)."""
        return []

    def tokens_of(self, prompt: str) -> list[Token]:
        tokenizer = self.holder.pipe.clip.tokenizer
        return prompt_tokens(prompt, tokenizer.vocabulary, tokenizer.max_tokens)

    def prompt_note(self, prompt: str, negative: str = "", label: str = "") -> str:
        """One sentence about a prompt: the words left out, or that it is empty (unconditional)."""
        parts = []
        if not prompt.strip():
            parts.append(f"{label}The prompt is empty: unconditional generation, any scene the model likes "
                         "(guidance has no text to push toward).")
        elif note := self.holder.pipe.tokens(prompt).message():
            parts.append(f"{label}{note}")
        if negative.strip() and (note := self.holder.pipe.tokens(negative).message()):
            parts.append(f"Negative prompt: {note}")
        return " ".join(parts)

    # ------------------------------------------------------------------ settings → runs
    def _on_prompt_finished(self) -> None:
        edit = self.sender()
        if isinstance(edit, QLineEdit) and edit.text() != edit.property("ran"):
            self._on_setting_changed()

    def _on_setting_changed(self) -> None:
        self.stale = True
        if self.active:
            self.restart_timer.start()

    def random_seed(self) -> None:
        self.seed_spin.setValue(random.randint(0, RANDOM_SEED_MAX))

    def generate(self) -> None:
        """Start a new run with the controls' settings (a running one stops)."""
        for spin in (self.steps_spin, self.seed_spin):
            spin.interpretText()  # Enter reaches the shortcut, not the spin box being typed in
        for edit in self.prompt_edits():
            edit.setProperty("ran", edit.text())
        self.restart_timer.stop()
        self._stop_worker()
        self.stale = False
        self.player.reset()
        self.generation += 1
        self.worker = self._start_run(functools.partial(self._on_run_finished, self.generation))
        self.worker_starts += 1
        self.stop_button.setEnabled(True)
        self.player.play()

    def _start_run(self, on_finished: Callable[[], None]) -> Worker:
        """Set up the run's cache and start its worker with ``on_finished``."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop sampling; the frames computed stay on the scrubber."""
        running = self.worker is not None
        self._stop_worker()
        if running:
            self.message.emit("Stopped: the steps computed so far stay on the scrubber.")

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.pool.stop(self.worker)
            self.worker = None
        self.player.set_available(self.player.available, waiting=False)
        self.stop_button.setEnabled(False)

    def _on_run_finished(self, generation: int) -> None:
        if generation != self.generation:
            return  # a run stopped earlier: the worker in use is a newer one
        self.worker = None
        self.player.set_available(self.player.available, waiting=False)
        self.stop_button.setEnabled(False)

    def show_position(self, position: int) -> None:
        """Show the cached frame at ``position`` (subclasses)."""

    def complete(self) -> bool:
        """Whether the cached run is whole (subclasses)."""
        return False

    # ------------------------------------------------------------------ chapter hooks
    @property
    def busy(self) -> bool:
        return self.worker is not None

    def refresh(self) -> None:
        """Another pipeline: what is cached is not its run; sample again (now if this tab shows)."""
        self._stop_worker()
        self._show_vocabulary()
        self.stale = True
        if self.active:
            self.generate()

    def set_active(self, active: bool) -> None:
        super().set_active(active)
        for shortcut in self.shortcuts:
            shortcut.setEnabled(active)
        if active and (self.stale or not self.complete()):
            self.generate()
        elif not active:
            self.player.pause()
            self.restart_timer.stop()
            if self.worker is not None:  # no sampling for a tab nobody looks at
                self._stop_worker()
                self.stale = True

    def save_settings(self, settings: QSettings) -> None:
        key = self.KEY
        settings.setValue(f"{key}/guidance", self.guidance_slider.value())
        settings.setValue(f"{key}/steps", self.steps_spin.value())
        settings.setValue(f"{key}/sampler", self.sampler_combo.currentData())
        settings.setValue(f"{key}/seed", self.seed_spin.value())
        settings.setValue(f"{key}/fps", self.player.fps_spin.value())
        for i, edit in enumerate(self.prompt_edits()):
            settings.setValue(f"{key}/prompt{i}", edit.text())

    def restore_settings(self, settings: QSettings) -> None:
        from models.ldm import MAX_GUIDANCE

        key = self.KEY
        widgets = [self.guidance_slider, self.steps_spin, self.sampler_combo, self.seed_spin, *self.prompt_edits()]
        for widget in widgets:
            widget.blockSignals(True)
        if (guidance := read_setting(settings, f"{key}/guidance", float, lambda v: 0 <= v <= MAX_GUIDANCE)) is not None:
            self.guidance_slider.setValue(guidance)
        if (steps := read_setting(settings, f"{key}/steps", int, lambda v: 1 <= v <= MAX_STEPS)) is not None:
            self.steps_spin.setValue(steps)
        if (sampler := read_setting(settings, f"{key}/sampler", str, lambda v: v in SAMPLERS)) is not None:
            self.sampler_combo.setCurrentIndex(self.sampler_combo.findData(sampler))
        if (seed := read_setting(settings, f"{key}/seed", int, lambda v: 0 <= v <= MAX_SEED)) is not None:
            self.seed_spin.setValue(seed)
        for i, edit in enumerate(self.prompt_edits()):
            text = settings.value(f"{key}/prompt{i}")
            if isinstance(text, str) and len(text) <= MAX_PROMPT_CHARS:
                edit.setText(text)
        for widget in widgets:
            widget.blockSignals(False)
        if (fps := read_setting(settings, f"{key}/fps", int, lambda v: 1 <= v <= 60)) is not None:
            self.player.fps_spin.setValue(fps)
        self._on_setting_changed()

    def shutdown(self) -> None:
        self.player.pause()
        self.restart_timer.stop()
        self._stop_worker()
