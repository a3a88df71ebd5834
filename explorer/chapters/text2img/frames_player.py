"""What the three sampling tabs share: a run's settings, the worker generators, the frame
cache and the transport bar (play, step, scrub).

A worker runs ``models.ldm.generate_frames`` and yields every :class:`~models.ldm.TextFrame`;
the tab keeps them all in a :class:`FrameRun` (a frame holds a few 8×8×4 float32 arrays
and two decoded 32×32 images: about 10 KB, so even 1000 steps fit easily). Playback,
stepping and the scrubber only read that cache: nothing is sampled again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QSlider, QSpinBox, QStyle, QToolButton, QWidget

from explorer.chapters.common import torch_threads_here
from explorer.widgets.readout import ReadoutLabel

if TYPE_CHECKING:
    from models.ldm import TextFrame, TextToImage

DEFAULT_PROMPT = "a red circle on a blue background"
DEBOUNCE_MS = 300  # a setting change starts a new run once the controls rest this long
LOCK_WAIT_S = 600.0  # an export waits for the tab's run (even DDPM-1000) to end or be stopped

# generate_frames switches the U-Net's cross-attention blocks into "keep the weights" mode for
# a whole run; two runs on one U-Net at once (a stopped run still finishing its step while the
# next begins) would switch it off under each other. One run at a time, then.
PIPELINE_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class RunSpec:
    """Everything that decides a run's frames: the same spec gives the same frames."""

    prompt: str = DEFAULT_PROMPT
    negative: str = ""
    guidance: float = 5.0
    steps: int = 30
    sampler: str = "ddim"
    seed: int = 0
    init_image: np.ndarray | None = None  # uint8 (32, 32, 3): image to image
    strength: float = 1.0  # image to image only

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``generate_frames`` (after the prompt)."""
        kwargs: dict[str, Any] = dict(negative=self.negative, guidance=self.guidance, num_steps=self.steps,
                                      sampler=self.sampler, seed=self.seed)
        if self.init_image is not None:
            kwargs.update(init_image=self.init_image, strength=self.strength)
        return kwargs

    @property
    def expected_frames(self) -> int:
        """Steps the run will take (image to image runs only the last ``strength`` of them)."""
        if self.init_image is None:
            return self.steps
        return max(1, round(self.steps * self.strength))

    def describe(self) -> str:
        """E.g. "DDIM-30, guidance 5"."""
        text = f"{self.sampler.upper()}-{self.steps}, guidance {self.guidance:g}"
        if self.init_image is not None:
            text += f", strength {self.strength:.2f}"
        return text

    def params(self, names: dict[str, str]) -> dict[str, Any]:
        """The settings as an export's parameters (the CLI's names), with the models used."""
        params: dict[str, Any] = {
            "prompt": self.prompt, "negative": self.negative, "guidance": self.guidance, "steps": self.steps,
            "sampler": self.sampler, "seed": self.seed, "models": dict(names),
        }
        if self.init_image is not None:
            params["strength"] = self.strength
        return params


def frames_of(pipe: TextToImage, spec: RunSpec) -> Iterator[TextFrame]:
    """``generate_frames`` for ``spec``; attention maps only when the prompt has words to attend to
    (``generate_frames`` fails on a wordless prompt's empty maps)."""
    from models.ldm import generate_frames

    words = pipe.tokens(spec.prompt).words
    return generate_frames(pipe, spec.prompt, attention=bool(words), **spec.kwargs())


def run_text_frames(pipe: TextToImage, spec: RunSpec) -> Iterator[TextFrame]:
    """Worker generator: the run's frames, as ``generate_frames`` makes them."""
    torch_threads_here()
    if not PIPELINE_LOCK.acquire(timeout=LOCK_WAIT_S):
        raise RuntimeError("another run still holds the pipeline")
    try:
        yield from frames_of(pipe, spec)
    finally:
        PIPELINE_LOCK.release()


def run_pair(pipe: TextToImage, specs: tuple[RunSpec, RunSpec]) -> Iterator[tuple[int, TextFrame]]:
    """Worker generator: two runs in step, as (0, frame), (1, frame), (0, next frame), …

    Two runs with one seed start from the very same z_T (one batch of two would give
    each image its own noise).
    """
    torch_threads_here()
    if not PIPELINE_LOCK.acquire(timeout=LOCK_WAIT_S):
        raise RuntimeError("another run still holds the pipeline")
    try:
        runs = [frames_of(pipe, spec) for spec in specs]
        for first, second in zip(*runs):
            yield 0, first
            yield 1, second
    finally:
        PIPELINE_LOCK.release()


@dataclass
class FrameRun:
    """The frames of one run, all of them, in order.

    Scrubber positions: 0 … len(frames) − 1 are the computed steps; once the run is
    complete, position ``total`` is the final image.
    """

    spec: RunSpec
    total: int
    frames: list[TextFrame] = field(default_factory=list)
    began: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0  # wall time until the last frame arrived

    def add(self, frame: TextFrame) -> None:
        self.total = frame.total
        self.frames.append(frame)
        self.seconds = time.perf_counter() - self.began

    @property
    def complete(self) -> bool:
        return bool(self.frames) and self.frames[-1].last

    @property
    def available(self) -> int:
        return len(self.frames) + (1 if self.complete else 0)

    def at(self, position: int) -> tuple[TextFrame, bool] | None:
        """The frame at ``position`` and whether it is the final image (None: nothing there yet)."""
        if not self.frames:
            return None
        position = max(0, min(position, self.available - 1))
        if position >= len(self.frames):
            return self.frames[-1], True
        return self.frames[position], False


class FramePlayer(QWidget):
    """Home, back, play/pause, forward, end, a scrubber, a read-out and a speed; reads no model.

    The tab says how many positions exist (:meth:`set_available`); the player moves
    between them and emits ``positionChanged``. While a run is still sampling, playing
    past the last frame waits for the next one.
    """

    positionChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.position = 0
        self.available = 0
        self.waiting = False  # more frames are coming
        self.playing = False
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        icon = QStyle.StandardPixmap
        self.home_button = self._tool(icon.SP_MediaSkipBackward, "First step (Home)")
        self.back_button = self._tool(icon.SP_MediaSeekBackward, "Step back (←): the cached frame, nothing is recomputed")
        self.play_button = self._tool(icon.SP_MediaPlay, "Play / pause (Space)")
        self.forward_button = self._tool(icon.SP_MediaSeekForward, "Step forward (→)")
        self.end_button = self._tool(icon.SP_MediaSkipForward, "The final image (End)")
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, 0)
        self.scrubber.setToolTip("Every computed step, then the final image: drag to look at any of them")
        self.label = ReadoutLabel(1, margin=2)
        self.label.setFixedWidth(130)
        self.fps_spin = QSpinBox()
        self.fps_spin.setRange(1, 60)
        self.fps_spin.setValue(12)
        self.fps_spin.setSuffix(" frames/s")
        self.fps_spin.setToolTip("Playback speed (from the cache)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in (self.home_button, self.back_button, self.play_button, self.forward_button, self.end_button):
            layout.addWidget(button)
            button.setAutoRaise(False)
        layout.addWidget(self.scrubber, 1)
        layout.addWidget(self.label)
        layout.addWidget(self.fps_spin)
        self.home_button.clicked.connect(self.go_home)
        self.back_button.clicked.connect(self.step_back)
        self.play_button.clicked.connect(self.toggle_play)
        self.forward_button.clicked.connect(self.step_forward)
        self.end_button.clicked.connect(self.go_end)
        self.scrubber.valueChanged.connect(self._on_scrubbed)
        self.fps_spin.valueChanged.connect(self._on_fps_changed)

    def _tool(self, icon: QStyle.StandardPixmap, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(self.style().standardIcon(icon))
        button.setToolTip(tip)
        return button

    def shortcuts(self, owner: QWidget, extra: dict[Qt.Key, Callable[[], None]]) -> list[QShortcut]:
        """Window-wide keys for ``owner`` (Space, ←, →, Home, End and ``extra``), disabled until
        the owner enables them (while its tab is current). A line edit with the focus keeps
        its own keys: Qt gives it the key first (ShortcutOverride)."""
        keys: dict[Qt.Key, Callable[[], None]] = {
            Qt.Key.Key_Space: self.toggle_play, Qt.Key.Key_Right: self.step_forward,
            Qt.Key.Key_Left: self.step_back, Qt.Key.Key_Home: self.go_home, Qt.Key.Key_End: self.go_end, **extra,
        }
        made = [QShortcut(QKeySequence(key), owner, action, context=Qt.ShortcutContext.WindowShortcut)
                for key, action in keys.items()]
        for shortcut in made:
            shortcut.setEnabled(False)
        return made

    # ------------------------------------------------------------------ what exists
    def reset(self) -> None:
        """A new run: nothing to show yet, more coming."""
        self.position, self.available, self.waiting = 0, 0, True
        self._set_scrubber()

    def set_available(self, available: int, waiting: bool) -> None:
        """``available`` positions exist; ``waiting``: more will come."""
        self.available, self.waiting = available, waiting
        self._set_scrubber()
        if not waiting and self.playing and self.position >= available - 1:
            self.pause()

    def _set_scrubber(self) -> None:
        self.scrubber.blockSignals(True)
        self.scrubber.setMaximum(max(0, self.available - 1))
        self.scrubber.setValue(self.position)
        self.scrubber.blockSignals(False)

    # ------------------------------------------------------------------ moving
    def show_position(self, position: int) -> None:
        """Go to ``position`` (clamped) and tell the tab."""
        if not self.available:
            return
        self.position = max(0, min(position, self.available - 1))
        self._set_scrubber()
        self.positionChanged.emit(self.position)

    def play(self) -> None:
        self.playing = True
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self.timer.start(round(1000 / self.fps_spin.value()))

    def pause(self) -> None:
        if not self.playing:
            return
        self.playing = False
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.timer.stop()

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
            return
        if self.available and self.position >= self.available - 1 and not self.waiting:
            self.show_position(0)  # at the end: play again from the start
        self.play()

    def _tick(self) -> None:
        if self.position < self.available - 1:
            self.show_position(self.position + 1)
        elif not self.waiting:
            self.pause()

    def step_forward(self) -> None:
        self.pause()
        self.show_position(self.position + 1)

    def step_back(self) -> None:
        self.pause()
        self.show_position(self.position - 1)

    def go_home(self) -> None:
        self.pause()
        self.show_position(0)

    def go_end(self) -> None:
        self.pause()
        self.show_position(self.available - 1)

    def _on_scrubbed(self, value: int) -> None:
        self.pause()
        self.show_position(value)

    def _on_fps_changed(self) -> None:
        if self.playing:
            self.timer.start(round(1000 / self.fps_spin.value()))


def export_pictures(pipe: TextToImage, spec: RunSpec, panels: bool, scale: int) -> Iterator[np.ndarray]:
    """Worker generator: a run sampled afresh (the same spec gives the same frames), as
    :func:`~explorer.chapters.text2img.frames_export.text_frame_images` pictures it."""
    from explorer.chapters.text2img.frames_export import text_frame_images

    frames = list(run_text_frames(pipe, spec))
    yield from text_frame_images(frames, panels=panels, scale=scale)
