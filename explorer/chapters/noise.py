"""The Noise chapter: classic image noise, then the forward diffusion process.

Part A adds Gaussian, uniform, salt-and-pepper or Poisson noise of a chosen
strength to the image (clean | noise | noisy, with histograms and PSNR).
Part B jumps straight to any step t of DDPM's forward process,
x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, for a chosen β schedule.

The slider path is the hot loop. :class:`NoiseFrames` keeps every buffer
preallocated per image and fills the displayed uint8 arrays in row blocks that
stay in cache, two bands of rows at once when a second core is free; the chapter
only hands them to the views.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, QSize, Qt, QThreadPool, QTimer
from PySide6.QtGui import QIcon, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QFormLayout,
    QGraphicsItem,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider, QLabeledSlider
from superqt.utils import QSignalThrottler

from explorer.chapters.base import AppContext, Chapter, ExportJob
from explorer.widgets.histogram import CHANNEL_COLORS, HistogramPlot
from explorer.widgets.image_panel import ImagePanel, link_views
from explorer.widgets.readout import ReadoutLabel
from models.noise import NOISE_KINDS, NoiseSource
from models.schedules import BETA_SCHEDULES, NoiseSchedule, forward_frames, frame_timesteps, q_sample

if TYPE_CHECKING:
    from models.images import LoadedImage

T = TypeVar("T")

NOISE_LABELS = {
    "gaussian": "Gaussian",
    "uniform": "Uniform",
    "salt-and-pepper": "Salt and pepper",
    "poisson": "Poisson (shot noise)",
}
STRENGTH_LABELS = {
    "gaussian": "σ, the standard deviation (image values run 0–1)",
    "uniform": "Half-width a: values move by up to ±a",
    "salt-and-pepper": "Amount: the fraction of pixels hit",
    "poisson": "Strength = 1/√photons (1 = a single photon)",
}
SCHEDULE_LABELS = {
    "linear": "Linear (DDPM)",
    "scaled-linear": "Scaled linear (Stable Diffusion)",
    "cosine": "Cosine (improved DDPM)",
    "sigmoid": "Sigmoid",
}
COSINE_TOOLTIP = (
    "The cosine schedule derives β from ᾱ(t) = cos²((t/T + s)/(1 + s)·π/2),\n"
    "so it has no β range to set."
)

# Histograms count about this many pixels (every n-th pixel in reading order): plenty for
# 256 bins, while counting all of a 1024² image would cost a tenth of the frame budget.
HISTOGRAM_SAMPLES = 65536
# Values per row block in the conversions: a few float32 blocks (192 KB each) stay in cache,
# and a block is at most the band models.noise.NoiseSource.apply works on, so it takes one go.
BLOCK_VALUES = 49152
# Bands of rows computed at once on a slider move, one on the GUI thread and the others on
# Qt's pool (see run_parallel): the GUI thread does half the work when a second core is free.
PARALLEL_BANDS = min(2, os.cpu_count() or 1)
MAX_SEED = 2**31 - 1
# The x_t histogram in x_t's own units: display value v shows x_t = v/127.5 − 1.
XT_EDGES = (np.arange(257, dtype=np.float64) - 0.5) / 127.5 - 1.0


# ---------------------------------------------------------------------- numpy side
def histogram_step(pixels: np.ndarray) -> int:
    """Count every ``step``-th pixel, so that about :data:`HISTOGRAM_SAMPLES` are counted."""
    return max(1, (pixels.shape[0] * pixels.shape[1]) // HISTOGRAM_SAMPLES)


def channel_histograms(pixels: np.ndarray, step: int | None = None, start: int = 0) -> dict[str, np.ndarray]:
    """256-bin R, G, B counts of a uint8 H×W×3 image from every ``step``-th pixel (default :func:`histogram_step`).

    ``start`` is the index of the first pixel when ``pixels`` are a band of a larger
    image: the band's counts are then those of the same pixels as the whole image's.
    """
    step = step or histogram_step(pixels)
    sample = pixels.reshape(-1, 3)[-start % step :: step]
    # One bincount per uint8 channel is faster than one over offset uint16 values.
    return {name: np.bincount(sample[:, c], minlength=256) for c, name in enumerate("RGB")}


def pooled_step(pixel_step: int) -> int:
    """Step over the flat values that counts as many values as ``pixel_step`` counts pixels.

    3·step + 1 is never a multiple of 3, which would count a single channel.
    """
    return 1 if pixel_step == 1 else 3 * pixel_step + 1


def pooled_histogram(pixels: np.ndarray, step: int | None = None, start: int = 0) -> dict[str, np.ndarray]:
    """256-bin counts of all channels' values together (``{"all": counts}``), one value in :func:`pooled_step`.

    ``start``: as for :func:`channel_histograms` (a pixel index).
    """
    value_step = pooled_step(step or histogram_step(pixels))
    values = pixels.reshape(-1)[-start * pixels.shape[-1] % value_step :: value_step]
    return {"all": np.bincount(values, minlength=256)}


def summed(counts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The histograms of several bands added up, name by name."""
    return {name: sum(band[name] for band in counts) for name in counts[0]}


def row_blocks(rows: slice, row_values: int) -> Iterator[slice]:
    """The ``rows`` (a slice with start and stop) in slices holding about :data:`BLOCK_VALUES` values each."""
    step = max(1, BLOCK_VALUES // max(1, row_values))
    for start in range(rows.start, rows.stop, step):
        yield slice(start, min(start + step, rows.stop))


def split_rows(height: int, parts: int) -> list[slice]:
    """``height`` rows in at most ``parts`` bands of (nearly) equal size, none empty."""
    edges = np.linspace(0, height, min(parts, height) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def run_parallel(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """The results of ``jobs``, the first run here and the others on Qt's global thread pool.

    numpy lets go of the GIL in its loops, so bands of an image computed this way take
    two cores when two are free. A job that finds no free pool thread runs here; an
    exception in any job is raised here once all have ended.
    """
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []
    started: list[threading.Event] = []

    def run(index: int, done: threading.Event | None = None) -> None:
        try:
            results[index] = jobs[index]()
        except BaseException as error:  # noqa: BLE001 (raised again below, on this thread)
            errors.append(error)
        finally:
            if done is not None:
                done.set()

    pool = QThreadPool.globalInstance()
    for index in range(1, len(jobs)):
        done = threading.Event()
        if pool.tryStart(functools.partial(run, index, done)):
            started.append(done)
        else:
            run(index)
    if jobs:
        run(0)
    for done in started:
        done.wait()
    if errors:
        raise errors[0]
    return results


def xt_to_uint8(xt: np.ndarray, out: np.ndarray) -> None:
    """Show x_t with fixed levels, −1 → 0 and +1 → 255, clipped and rounded; ``xt`` is overwritten.

    The values of :func:`models.schedules.forward_frames` in one pass fewer:
    x·127.5 + 128 truncated is (x + 1)·127.5 rounded half up. Float rounding near
    a tie makes about one value in 10⁴ differ from the export by one level.
    """
    np.multiply(xt, np.float32(127.5), out=xt)
    np.add(xt, np.float32(128.0), out=xt)
    np.clip(xt, np.float32(0.0), np.float32(255.5), out=out, casting="unsafe")


@dataclass
class _BlockBuffers:
    """Scratch arrays for one row block at a time (a band of NoiseFrames has its own)."""

    values: np.ndarray  # float32: the noisy block, or x_t
    difference: np.ndarray  # float32: noisy − clean
    centred: np.ndarray  # int16: the noise view before clipping

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> _BlockBuffers:
        return cls(np.empty(shape, np.float32), np.empty(shape, np.float32), np.empty(shape, np.int16))

    def rows(self, count: int) -> _BlockBuffers:
        """The buffers cut to ``count`` rows."""
        return _BlockBuffers(self.values[:count], self.difference[:count], self.centred[:count])


class NoiseFrames:
    """The arrays the chapter shows for one image, computed in place (numpy, no widgets).

    Parameters
    ----------
    pixels
        H×W×3 uint8 image.
    seed
        Seed of the noise patterns: :class:`models.noise.NoiseSource` for part A,
        and ε for part B drawn as :func:`models.schedules.forward_frames` draws it,
        so x_t matches the exported sequence.
    """

    def __init__(self, pixels: np.ndarray, seed: int) -> None:
        height, width, channels = pixels.shape
        self.pixels = pixels
        self.clean = pixels.astype(np.float32)
        self.clean *= np.float32(1 / 255)  # [0, 1] for NoiseSource
        self.x0 = pixels.astype(np.float32)
        self.x0 *= np.float32(1 / 127.5)
        self.x0 -= np.float32(1.0)  # [−1, 1], as forward_frames computes it
        self.noisy_u8 = np.empty_like(pixels)
        self.noise_u8 = np.empty_like(pixels)  # noisy_u8 − pixels + 128, clipped
        self._pixels_less_128 = pixels.astype(np.int16) - np.int16(128)
        self.xt_u8 = np.empty_like(pixels)
        # Bands of rows computed at once (see run_parallel), each with its own block buffers.
        block_rows = min(height, max(1, BLOCK_VALUES // (width * channels)))
        self._bands = [
            (rows, _BlockBuffers.empty((block_rows, width, channels))) for rows in split_rows(height, PARALLEL_BANDS)
        ]
        self.histogram_step = histogram_step(pixels)
        self.noisy_counts: dict[str, np.ndarray] = {}  # filled by noise()
        self.noise_counts: dict[str, np.ndarray] = {}
        self.xt_counts: dict[str, np.ndarray] = {}  # filled by diffusion()
        self.seed = -1
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """New random patterns (the slow part: ~100 ms of random draws for 1024²)."""
        self.seed = int(seed)
        self.source = NoiseSource(self.pixels.shape, self.seed)
        self.eps = np.random.default_rng(self.seed).standard_normal(self.pixels.shape, dtype=np.float32)

    def _blocks(self, band: slice, buffers: _BlockBuffers) -> Iterator[tuple[slice, _BlockBuffers]]:
        """The band's row blocks, each with buffers cut to its size."""
        for rows in row_blocks(band, self.pixels[0].size):
            yield rows, buffers.rows(rows.stop - rows.start)

    def noise(self, kind: str, strength: float) -> float:
        """Fill ``noisy_u8``, ``noise_u8`` and their histograms; return the PSNR of the noisy image in dB.

        ``noisy_counts`` and ``noise_counts`` are :func:`channel_histograms` of ``noisy_u8`` and
        :func:`pooled_histogram` of ``noise_u8``, counted band by band with the rest.
        """
        jobs = [functools.partial(self._noise_band, rows, buffers, kind, strength) for rows, buffers in self._bands]
        squared_errors, noisy_counts, noise_counts = zip(*run_parallel(jobs))
        self.noisy_counts, self.noise_counts = summed(noisy_counts), summed(noise_counts)
        mse = sum(squared_errors) / self.pixels.size
        return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)

    def _noise_band(
        self, band: slice, buffers: _BlockBuffers, kind: str, strength: float
    ) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Fill a band of ``noisy_u8`` and ``noise_u8``; return its sum of squared errors and histograms.

        Block by block, everything is done while the block is in cache: the noise
        (``NoiseSource.apply`` on the block's rows), the squared error for the PSNR,
        the displayed uint8 image and the noise view. A full-size float image written
        and read back again would cost several milliseconds more.
        """
        squared_error = 0.0
        for rows, block in self._blocks(band, buffers):
            clean = self.clean[rows]
            noisy = self.source.apply(clean, kind, strength, out=block.values, rows=rows)
            # PSNR from the float difference (models.noise.psnr's formula, which the tests
            # check against), summed block by block.
            np.subtract(noisy, clean, out=block.difference)
            flat = block.difference.reshape(-1)
            squared_error += float(np.dot(flat, flat))
            noisy_u8 = self.noisy_u8[rows]
            np.multiply(noisy, np.float32(255.0), out=noisy)
            np.rint(noisy, out=noisy_u8, casting="unsafe")  # noisy is in [0, 1]: nothing to clip
            # The noise as you see it: displayed noisy − displayed clean, centred on mid-grey.
            np.subtract(noisy_u8, self._pixels_less_128[rows], out=block.centred, dtype=np.int16)
            np.clip(block.centred, np.int16(0), np.int16(255), out=self.noise_u8[rows], casting="unsafe")
        first = band.start * self.pixels.shape[1]  # the band's first pixel
        return (
            squared_error,
            channel_histograms(self.noisy_u8[band], self.histogram_step, first),
            pooled_histogram(self.noise_u8[band], self.histogram_step, first),
        )

    def diffusion(self, alpha_bar: float) -> None:
        """Fill ``xt_u8`` with x_t = √ᾱ·x₀ + √(1−ᾱ)·ε for this ᾱ, and ``xt_counts`` (its pooled histogram)."""
        jobs = [functools.partial(self._diffusion_band, rows, buffers, alpha_bar) for rows, buffers in self._bands]
        self.xt_counts = summed(run_parallel(jobs))

    def _diffusion_band(self, band: slice, buffers: _BlockBuffers, alpha_bar: float) -> dict[str, np.ndarray]:
        for rows, block in self._blocks(band, buffers):
            q_sample(self.x0[rows], self.eps[rows], alpha_bar, out=block.values)
            xt_to_uint8(block.values, self.xt_u8[rows])
        return pooled_histogram(self.xt_u8[band], self.histogram_step, band.start * self.pixels.shape[1])

    def thumbnails(self, alpha_bars: Sequence[float], side: int) -> list[np.ndarray]:
        """x_t for each ᾱ on every n-th pixel (longest side ≤ ``side``): the same x₀ and ε as the big view."""
        stride = max(1, math.ceil(max(self.pixels.shape[:2]) / side))
        x0 = np.ascontiguousarray(self.x0[::stride, ::stride])
        eps = np.ascontiguousarray(self.eps[::stride, ::stride])
        frames = []
        for alpha_bar in alpha_bars:
            xt = q_sample(x0, eps, alpha_bar)
            frame = np.empty(x0.shape, dtype=np.uint8)
            xt_to_uint8(xt, frame)
            frames.append(frame)
        return frames


# ---------------------------------------------------------------------- widget helpers
HISTOGRAM_COLORS = {**CHANNEL_COLORS, "all": "#444444"}


def prepare_histogram(
    plot: HistogramPlot, names: Sequence[str] = ("R", "G", "B"), edges: np.ndarray | None = None
) -> None:
    """Create the curves (R, G, B or "all") as plain lines over fixed x limits.

    Filled, antialiased steps cost milliseconds per repaint, and a refitted
    x range re-lays out the axis on every frame.
    """
    plot.set_histograms({name: np.zeros(256) for name in names}, edges, HISTOGRAM_COLORS)
    for name, curve in plot.curves.items():
        curve.setFillLevel(None)
        curve.setBrush(None)
        curve.setPen(pg.mkPen(HISTOGRAM_COLORS[name], width=1))
    plot.disableAutoRange()
    low, high = (edges[0], edges[-1]) if edges is not None else (0, 256)
    plot.setXRange(low, high, padding=0.02)
    plot.setYRange(0, 1, padding=0)


def show_histograms(plot: HistogramPlot, counts: dict[str, np.ndarray], edges: np.ndarray | None = None) -> None:
    """Show ``counts`` with the height fitted to the inner bins, so clipped end bins do not flatten the rest.

    The height is refitted only when it is off by more than 10 %: steadier while dragging.
    It is set by scaling the curves (:meth:`HistogramPlot.set_count_top`), not the y range.
    """
    plot.set_histograms(counts, edges)
    inner = max(int(values[1:-1].max()) for values in counts.values())
    if inner == 0:
        inner = max(int(values.max()) for values in counts.values())
    top = max(inner, 1) * 1.1
    shown = plot.count_top
    if shown is None or not 0.9 * shown <= top <= 1.1 * shown:
        plot.set_count_top(top)


def histogram_tooltip(step: int) -> str:
    counted = "all values" if step == 1 else f"one value in {step}"
    return (
        f"How many values fall in each bin (counting {counted}).\n"
        "The height fits the values between the ends: values clipped at the\n"
        "ends pile up in the end bins, which may run off the top."
    )


def fit_on_resize(lead: ImagePanel, followers: Sequence[ImagePanel] = ()) -> Callable[[], None]:
    """Refit ``lead`` (and the views linked to it) to its image on every resize, until the user pans or zooms.

    ``ImagePanel.set_image`` fits the view once, at the size the panel has then,
    which is wrong for a panel not laid out yet (a hidden tab). Returns a function
    that re-arms the fitting (call it for a new image).
    """
    manual = [False]

    def fit(*_) -> None:
        if not manual[0] and lead.image() is not None:
            lead.view_box.autoRange(padding=0.0)

    def zoomed(*_) -> None:
        manual[0] = True

    lead.view_box.sigResized.connect(fit)
    for panel in (lead, *followers):
        panel.view_box.sigRangeChangedManually.connect(zoomed)

    def rearm() -> None:
        manual[0] = False
        fit()

    return rearm


def to_qimage(pixels: np.ndarray) -> QImage:
    """A QImage that owns a copy of an H×W×3 uint8 array."""
    height, width = pixels.shape[:2]
    data = np.ascontiguousarray(pixels)
    return QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


# ---------------------------------------------------------------------- the chapter
class NoiseChapter(Chapter):
    """Noise and the forward diffusion process, live on the current image."""

    name = "noise"
    title = "Noise"
    explanation = (
        "<b>Noise</b> is a random change added to every pixel. <i>Gaussian</i> noise adds a "
        "bell-curve number whose spread is σ; <i>uniform</i> noise adds any number within ±a; "
        "<i>salt and pepper</i> turns some pixels white or black; <i>Poisson</i> noise is the "
        "grain of a photo taken with few photons. PSNR says how close the noisy image still "
        "is to the clean one: higher is closer."
        "<p><b>Forward diffusion</b> is how diffusion models are trained: over T small steps, "
        "each adding a little Gaussian noise (β<sub>t</sub>), the image fades into pure noise. "
        "A shortcut reaches any step t at once: "
        "x<sub>t</sub> = √ᾱ<sub>t</sub>·x<sub>0</sub> + √(1−ᾱ<sub>t</sub>)·ε.</p>"
        "<p><b>Try:</b> drag σ and watch the histogram spread; the seed keeps the pattern. "
        "In Forward diffusion press <b>Space</b> to play t up to T, ← → to step, click a "
        "filmstrip frame to jump there, and compare how fast the linear and the cosine "
        "schedules wipe out the picture.</p>"
    )

    FILMSTRIP_FRAMES = 8
    FILMSTRIP_SIDE = 96  # longest side of a thumbnail, pixels
    EXPORT_FRAMES = 32
    PLAY_SECONDS = 3.0
    PLAY_INTERVAL_MS = 33
    THROTTLE_MS = 16  # at most ~60 recomputations a second while a slider is dragged

    NOISE_TAB, DIFFUSION_TAB = 0, 1

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._image: LoadedImage = context.image
        self.frames: NoiseFrames | None = None  # built by set_image
        self._schedule = NoiseSchedule.from_config()
        self._play_step = 1
        self.psnr_db = math.inf
        self.filmstrip_steps: list[int] = []
        self.filmstrip_frames: list[np.ndarray] = []

        self._build_controls()
        self._build_noise_tab()
        self._build_diffusion_tab()
        views = QVBoxLayout(self.views)
        views.setContentsMargins(4, 4, 4, 4)
        views.addWidget(self.tabs)

        self.play_timer = QTimer(self)
        self.play_timer.setInterval(self.PLAY_INTERVAL_MS)
        self.play_timer.timeout.connect(self._play_tick)
        # Trailing: a drag recomputes at most every THROTTLE_MS, and the last value always lands.
        self._throttle = QSignalThrottler(QSignalThrottler.EmissionPolicy.Trailing, self)
        self._throttle.setTimeout(self.THROTTLE_MS)
        self._throttle.triggered.connect(self.update_views)

        self._build_shortcuts()
        self._connect()
        self.strength_label.setText(STRENGTH_LABELS[self.kind])
        self._rebuild_schedule()
        self._on_tab_changed(self.tabs.currentIndex())
        self.set_image(context.image)

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        self.kind_combo = QComboBox()
        for kind in NOISE_KINDS:
            self.kind_combo.addItem(NOISE_LABELS[kind], kind)
        self.strength_label = QLabel()
        self.strength_label.setWordWrap(True)
        self.strength_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(0.0, 1.0)
        self.strength_slider.setDecimals(3)
        self.strength_slider.setSingleStep(0.01)
        self.strength_slider.setValue(0.1)
        self.psnr_label = ReadoutLabel()
        font = self.psnr_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.psnr_label.setFont(font)
        self.psnr_label.setToolTip(
            "Peak signal-to-noise ratio: 10·log10(1 / mean squared error), values in 0–1.\n"
            "∞ without noise; around 20 dB the noise is plain to see."
        )
        noise_box = QGroupBox("Noise")
        form = QVBoxLayout(noise_box)
        form.addWidget(QLabel("Kind"))
        form.addWidget(self.kind_combo)
        form.addWidget(self.strength_label)
        form.addWidget(self.strength_slider)
        form.addWidget(self.psnr_label)

        self.schedule_combo = QComboBox()
        for schedule in BETA_SCHEDULES:
            self.schedule_combo.addItem(SCHEDULE_LABELS[schedule], schedule)
        self.timesteps_spin = QSpinBox()
        self.timesteps_spin.setRange(10, 1000)
        self.timesteps_spin.setSingleStep(10)
        self.timesteps_spin.setValue(1000)
        self.timesteps_spin.setKeyboardTracking(False)
        self.beta_start_spin = self._beta_spin(1e-5, 0.05, 1e-4, 1e-4)
        self.beta_end_spin = self._beta_spin(1e-4, 0.5, 0.02, 1e-3)
        self.t_slider = QLabeledSlider(Qt.Orientation.Horizontal)
        self.t_slider.setRange(0, 1000)
        self.t_slider.setValue(0)
        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play t from here to T in about 3 s (Space); press again to pause")
        self.step_back_button = QPushButton("◀")
        self.step_back_button.setToolTip("t − 1 (Left arrow)")
        self.step_button = QPushButton("▶")
        self.step_button.setToolTip("t + 1 (Right arrow)")
        for button in (self.step_back_button, self.step_button):
            button.setFixedWidth(36)
        play_row = QHBoxLayout()
        play_row.addWidget(self.step_back_button)
        play_row.addWidget(self.play_button, 1)
        play_row.addWidget(self.step_button)

        diffusion_box = QGroupBox("Forward diffusion")
        form_b = QFormLayout(diffusion_box)
        form_b.addRow("β schedule", self.schedule_combo)
        form_b.addRow("Steps T", self.timesteps_spin)
        form_b.addRow("β start", self.beta_start_spin)
        form_b.addRow("β end", self.beta_end_spin)
        form_b.addRow(QLabel("Step t (Space plays, ← → step)"))
        form_b.addRow(self.t_slider)
        form_b.addRow(play_row)

        self.control_pages = QStackedWidget()
        self.control_pages.addWidget(noise_box)
        self.control_pages.addWidget(diffusion_box)

        # One seed for both parts: the same seed always gives the same pattern.
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setKeyboardTracking(False)
        self.new_seed_button = QPushButton("New seed")
        self.new_seed_button.setToolTip("Draw a new random pattern")
        seed_box = QGroupBox("Random pattern (both tabs)")
        seed_box.setToolTip("The same seed gives the same noise: the sliders change its strength, not its pattern.")
        seed_row = QHBoxLayout(seed_box)
        seed_row.addWidget(QLabel("Seed"))
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.new_seed_button)

        self.controls.addWidget(self.control_pages)
        self.controls.addWidget(seed_box)
        self.controls.addStretch(1)

    @staticmethod
    def _beta_spin(low: float, high: float, value: float, step: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setDecimals(5)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setValue(value)
        spin.setKeyboardTracking(False)
        return spin

    def _build_noise_tab(self) -> None:
        self.clean_panel = ImagePanel("clean")
        self.noise_panel = ImagePanel("noise (grey = 0)")
        self.noise_panel.setToolTip(
            "noisy − clean as displayed, around mid-grey: grey (128) is no change,\n"
            "brighter went up, darker went down."
        )
        self.noisy_panel = ImagePanel("noisy")
        link_views([self.clean_panel, self.noise_panel, self.noisy_panel])
        self._refit_noise_views = fit_on_resize(self.clean_panel, [self.noise_panel, self.noisy_panel])
        self.clean_hist = HistogramPlot("clean")
        self.noise_hist = HistogramPlot("noise, all channels (128 = 0)")
        self.noisy_hist = HistogramPlot("noisy")
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(2, 2, 2, 2)
        pairs = (
            (self.clean_panel, self.clean_hist),
            (self.noise_panel, self.noise_hist),
            (self.noisy_panel, self.noisy_hist),
        )
        for column, (panel, hist) in enumerate(pairs):
            prepare_histogram(hist, ("all",) if hist is self.noise_hist else ("R", "G", "B"))
            hist.setMaximumHeight(180)
            grid.addWidget(panel, 0, column)
            grid.addWidget(hist, 1, column)
            grid.setColumnStretch(column, 1)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        self.tabs = QTabWidget()
        self.tabs.addTab(page, "Noise")

    def _build_diffusion_tab(self) -> None:
        self.formula_label = ReadoutLabel(lines=2)
        self.xt_panel = ImagePanel("x_t (clipped to ±1)")
        self.xt_panel.setToolTip("Fixed levels: x_t = −1 is black, +1 is white; values beyond are clipped.")
        self._refit_xt_view = fit_on_resize(self.xt_panel)
        self.xt_hist = HistogramPlot("x_t values, all channels (−1 … 1)")
        prepare_histogram(self.xt_hist, ("all",), XT_EDGES)
        self.xt_hist.setMaximumHeight(130)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumWidth(150)
        self.beta_plot = self.plots.addPlot(row=0, col=0, title="β<sub>t</sub>: noise added at step t")
        self.alpha_bar_plot = self.plots.addPlot(row=1, col=0, title="ᾱ<sub>t</sub>: signal kept")
        self.snr_plot = self.plots.addPlot(row=2, col=0, title="SNR<sub>t</sub> = ᾱ/(1−ᾱ), log scale")
        self.snr_plot.setLogMode(x=False, y=True)
        self.snr_plot.setLabel("bottom", "t")
        self.beta_curve = self.beta_plot.plot(pen=pg.mkPen("#1f77b4", width=2))
        self.alpha_bar_curve = self.alpha_bar_plot.plot(pen=pg.mkPen("#2ca02c", width=2))
        self.snr_curve = self.snr_plot.plot(pen=pg.mkPen("#d62728", width=2))
        for curve in (self.beta_curve, self.alpha_bar_curve, self.snr_curve):
            # Drawn once into a pixmap (until the schedule changes): the moving marker no
            # longer repaints 1000 antialiased points per plot.
            curve.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.markers: list[pg.InfiniteLine] = []
        for plot in (self.beta_plot, self.alpha_bar_plot, self.snr_plot):
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.disableAutoRange()  # set with the schedule: a moving marker must not refit (or repaint grids)
            for axis in ("left", "bottom"):
                # The marker's repaint region touches the axes: copy them from a pixmap.
                plot.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            marker = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#ff7f0e", width=2))
            plot.addItem(marker)
            self.markers.append(marker)
        self.alpha_bar_plot.setXLink(self.beta_plot)
        self.snr_plot.setXLink(self.beta_plot)

        self.filmstrip_buttons: list[QToolButton] = []
        filmstrip = QWidget()
        strip = QHBoxLayout(filmstrip)
        strip.setContentsMargins(0, 0, 0, 0)
        strip.setSpacing(2)
        for _ in range(self.FILMSTRIP_FRAMES):
            button = QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(self.FILMSTRIP_SIDE, self.FILMSTRIP_SIDE))
            button.setAutoRaise(True)
            button.setCheckable(True)
            button.clicked.connect(lambda _=False, b=button: self._jump_to(int(b.property("t"))))
            strip.addWidget(button)
            self.filmstrip_buttons.append(button)
        strip.addStretch(1)
        strip_scroll = QScrollArea()  # a narrow window scrolls the filmstrip instead of growing
        strip_scroll.setWidget(filmstrip)
        strip_scroll.setWidgetResizable(True)
        strip_scroll.setFrameShape(QFrame.Shape.NoFrame)
        strip_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scrollbar_height = strip_scroll.horizontalScrollBar().sizeHint().height()
        strip_scroll.setFixedHeight(filmstrip.sizeHint().height() + scrollbar_height)
        strip_title = QLabel("Filmstrip: x<sub>t</sub> at evenly spaced t (click one to jump there)")
        strip_title.setWordWrap(True)

        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.addWidget(self.formula_label, 0, 0, 1, 2)
        grid.addWidget(self.xt_panel, 1, 0)
        grid.addWidget(self.xt_hist, 2, 0)
        grid.addWidget(self.plots, 1, 1, 2, 1)
        grid.addWidget(strip_title, 3, 0, 1, 2)
        grid.addWidget(strip_scroll, 4, 0, 1, 2)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        grid.setRowStretch(1, 1)
        self.tabs.addTab(page, "Forward diffusion")

    def _build_shortcuts(self) -> None:
        # Enabled on the forward-diffusion tab only (see _on_tab_changed).
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        self._shortcuts = [
            QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.toggle_play, context=context),
            QShortcut(QKeySequence(Qt.Key.Key_Left), self, lambda: self.step(-1), context=context),
            QShortcut(QKeySequence(Qt.Key.Key_Right), self, lambda: self.step(1), context=context),
        ]

    def _connect(self) -> None:
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.kind_combo.currentIndexChanged.connect(self._on_kind_changed)
        self.strength_slider.valueChanged.connect(self._throttle.throttle)
        self.seed_spin.valueChanged.connect(self._on_seed_changed)
        self.new_seed_button.clicked.connect(self.new_seed)
        self.schedule_combo.currentIndexChanged.connect(self._on_schedule_changed)
        self.timesteps_spin.valueChanged.connect(self._on_schedule_changed)
        self.beta_start_spin.valueChanged.connect(self._on_schedule_changed)
        self.beta_end_spin.valueChanged.connect(self._on_schedule_changed)
        self.t_slider.valueChanged.connect(self._throttle.throttle)
        self.play_button.clicked.connect(self.toggle_play)
        self.step_back_button.clicked.connect(lambda: self.step(-1))
        self.step_button.clicked.connect(lambda: self.step(1))

    # ------------------------------------------------------------------ state
    @property
    def kind(self) -> str:
        return self.kind_combo.currentData()

    @property
    def strength(self) -> float:
        return float(self.strength_slider.value())

    @property
    def seed(self) -> int:
        return self.seed_spin.value()

    @property
    def schedule(self) -> NoiseSchedule:
        return self._schedule

    @property
    def t(self) -> int:
        return self.t_slider.value()

    # ------------------------------------------------------------------ updates
    def update_views(self) -> None:
        """Recompute and show the current tab now (the slider path without the throttle)."""
        self._throttle.cancel()
        if self.frames is None:
            return
        if self.tabs.currentIndex() == self.NOISE_TAB:
            self.update_noise_views()
        else:
            self.update_diffusion_views()

    def update_noise_views(self) -> None:
        """Part A: the noise and the noisy image, their histograms and the PSNR."""
        frames = self.frames
        self.psnr_db = frames.noise(self.kind, self.strength)
        self.noise_panel.set_image(frames.noise_u8)
        self.noisy_panel.set_image(frames.noisy_u8)
        show_histograms(self.noise_hist, frames.noise_counts)
        show_histograms(self.noisy_hist, frames.noisy_counts)
        self.psnr_label.setText("PSNR ∞ dB" if math.isinf(self.psnr_db) else f"PSNR {self.psnr_db:.2f} dB")

    def update_diffusion_views(self) -> None:
        """Part B: x_t at the slider's t, its histogram, the formula and the markers at t."""
        frames, t = self.frames, self.t
        alpha_bar = self._schedule.alpha_bar(t)
        frames.diffusion(alpha_bar)
        self.xt_panel.set_image(frames.xt_u8)
        show_histograms(self.xt_hist, frames.xt_counts, XT_EDGES)
        for marker in self.markers:
            marker.setValue(t)
        self.formula_label.setText(self._formula(t, alpha_bar))
        nearest = min(range(len(self.filmstrip_steps)), key=lambda i: abs(self.filmstrip_steps[i] - t))
        for i, button in enumerate(self.filmstrip_buttons):
            button.setChecked(i == nearest)

    def _formula(self, t: int, alpha_bar: float) -> str:
        signal, noise = math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)
        beta = "—" if t == 0 else f"{self._schedule.betas[t - 1]:.5f}"
        if alpha_bar >= 1.0:
            snr = "∞"
        elif alpha_bar <= 0.0:
            snr = "0"
        else:
            ratio = alpha_bar / (1.0 - alpha_bar)
            snr = f"{ratio:.4g} ({10 * math.log10(ratio):+.1f} dB)"
        return (
            f"<span style='font-size:15px'>x<sub>{t}</sub> = <b>{signal:.4f}</b>·x<sub>0</sub> + "
            f"<b>{noise:.4f}</b>·ε</span><br>"
            f"t = {t} of {self._schedule.num_timesteps}, β<sub>t</sub> = {beta}, "
            f"ᾱ<sub>t</sub> = {alpha_bar:.5f}, √ᾱ<sub>t</sub> = {signal:.4f}, "
            f"√(1−ᾱ<sub>t</sub>) = {noise:.4f}, SNR = {snr}"
        )

    def _update_filmstrip(self) -> None:
        """Thumbnails of x_t at evenly spaced t (only when the image, seed or schedule change)."""
        if self.frames is None:
            return
        self.filmstrip_steps = frame_timesteps(self._schedule.num_timesteps, self.FILMSTRIP_FRAMES)
        alpha_bars = [self._schedule.alpha_bar(t) for t in self.filmstrip_steps]
        self.filmstrip_frames = self.frames.thumbnails(alpha_bars, self.FILMSTRIP_SIDE)
        for button, t, frame in zip(self.filmstrip_buttons, self.filmstrip_steps, self.filmstrip_frames):
            button.setIcon(QIcon(QPixmap.fromImage(to_qimage(frame))))
            button.setText(f"t={t}")
            button.setProperty("t", t)
            button.setToolTip(f"Jump to t = {t}")

    def _update_curves(self) -> None:
        schedule = self._schedule
        steps = np.arange(1, schedule.num_timesteps + 1, dtype=np.float64)
        # The log axis needs SNR > 0; ᾱ of these schedules stays far above this floor anyway.
        snr = np.maximum(schedule.snr(), 1e-12)
        self.beta_curve.setData(steps, schedule.betas)
        self.alpha_bar_curve.setData(steps, schedule.alphas_cumprod)
        self.snr_curve.setData(steps, snr)
        for plot, low, high in (
            (self.beta_plot, 0.0, float(schedule.betas.max())),
            (self.alpha_bar_plot, 0.0, 1.0),
            (self.snr_plot, math.log10(snr.min()), math.log10(snr.max())),  # a log axis ranges in decades
        ):
            plot.setXRange(0, schedule.num_timesteps, padding=0.02)
            plot.setYRange(low, high, padding=0.05)

    # ------------------------------------------------------------------ reactions
    def _on_tab_changed(self, index: int) -> None:
        self.control_pages.setCurrentIndex(index)
        for shortcut in self._shortcuts:
            shortcut.setEnabled(index == self.DIFFUSION_TAB)
        if index != self.DIFFUSION_TAB:
            self.pause()
        self.update_views()

    def _on_kind_changed(self) -> None:
        self.strength_label.setText(STRENGTH_LABELS[self.kind])
        self._throttle.throttle()

    def _on_seed_changed(self) -> None:
        if self.frames is not None:
            self.frames.reseed(self.seed)
            self._update_filmstrip()
        self.update_views()

    def _on_schedule_changed(self) -> None:
        self._rebuild_schedule()
        self.update_views()

    def _rebuild_schedule(self) -> None:
        name = self.schedule_combo.currentData()
        uses_range = name != "cosine"
        for spin in (self.beta_start_spin, self.beta_end_spin):
            spin.setEnabled(uses_range)
            spin.setToolTip("" if uses_range else COSINE_TOOLTIP)
        start, end = self.beta_start_spin.value(), self.beta_end_spin.value()
        if uses_range and start >= end:
            self.statusMessage.emit(f"β start ({start:g}) must be below β end ({end:g}): the schedule is unchanged.")
            return
        old_steps = self._schedule.num_timesteps
        steps = self.timesteps_spin.value()
        self._schedule = NoiseSchedule.from_config(name, steps, start, end)
        if steps != old_steps:
            # Keep t the same fraction of the way to pure noise.
            t = min(round(self.t * steps / old_steps), steps)
            self.t_slider.blockSignals(True)
            self.t_slider.setMaximum(steps)
            self.t_slider.setValue(t)
            self.t_slider.blockSignals(False)
        self._update_curves()
        self._update_filmstrip()

    def _jump_to(self, t: int) -> None:
        self.pause()
        self.t_slider.setValue(t)
        self.update_views()

    # ------------------------------------------------------------------ play and step
    def toggle_play(self) -> None:
        """Play t from its value to T in about PLAY_SECONDS (from 0 when at T), or pause."""
        if self.play_timer.isActive():
            self.pause()
            return
        steps = self._schedule.num_timesteps
        if self.t >= steps:
            self.t_slider.setValue(0)
        ticks = self.PLAY_SECONDS * 1000 / self.PLAY_INTERVAL_MS
        self._play_step = max(1, math.ceil((steps - self.t) / ticks))
        self.play_button.setText("⏸ Pause")
        self.play_timer.start()

    def pause(self) -> None:
        self.play_timer.stop()
        self.play_button.setText("▶ Play")

    def step(self, delta: int) -> None:
        """Move t by ``delta`` (the arrow keys); pauses playing."""
        self.pause()
        self.t_slider.setValue(min(max(self.t + delta, 0), self._schedule.num_timesteps))

    def _play_tick(self) -> None:
        steps = self._schedule.num_timesteps
        self.t_slider.setValue(min(self.t + self._play_step, steps))
        self.update_views()
        if self.t >= steps:
            self.pause()

    # ------------------------------------------------------------------ Chapter hooks
    def set_image(self, image: LoadedImage) -> None:
        self._image = image
        self.frames = NoiseFrames(image.pixels, self.seed)
        self.clean_panel.set_image(image.pixels)
        show_histograms(self.clean_hist, channel_histograms(image.pixels, self.frames.histogram_step))
        step = self.frames.histogram_step
        for hist in (self.clean_hist, self.noisy_hist):
            hist.setToolTip(histogram_tooltip(step))
        for hist in (self.noise_hist, self.xt_hist):
            hist.setToolTip(histogram_tooltip(pooled_step(step)))
        self._update_filmstrip()
        self.update_views()
        self._refit_noise_views()
        self._refit_xt_view()

    def export_job(self) -> ExportJob:
        """The forward-diffusion sequence from t = 0 to T, as ``diffusion-explorer export forward`` makes it."""
        schedule, seed, image = self._schedule, self.seed, self._image
        count = min(self.EXPORT_FRAMES, schedule.num_timesteps + 1)

        def frames() -> Iterator[np.ndarray]:
            for _, frame in forward_frames(image.pixels, schedule, count, seed):
                yield frame

        # The names of `diffusion-explorer export forward`; the export adds "frames".
        params = {
            "sequence": "forward",
            "image": image.name,
            "image_path": str(image.path) if image.path else None,
            "schedule": schedule.schedule,
            "timesteps": schedule.num_timesteps,
            "beta_start": schedule.beta_start,
            "beta_end": schedule.beta_end,
            "seed": seed,
            "t": frame_timesteps(schedule.num_timesteps, count),
        }
        stem = image.name.rsplit(".", 1)[0]
        return ExportJob(frames=frames, count=count, params=params, default_name=f"forward-{stem}-{schedule.schedule}")

    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("kind", self.kind)
        settings.setValue("strength", self.strength)
        settings.setValue("seed", self.seed)
        settings.setValue("schedule", self._schedule.schedule)
        settings.setValue("timesteps", self.timesteps_spin.value())
        settings.setValue("beta_start", self.beta_start_spin.value())
        settings.setValue("beta_end", self.beta_end_spin.value())
        settings.setValue("t", self.t)
        settings.setValue("tab", self.tabs.currentIndex())

    def restore_settings(self, settings: QSettings) -> None:
        def read(key: str, kind: type, valid: Callable[[object], bool]) -> object | None:
            try:
                value = kind(settings.value(key))
            except (TypeError, ValueError):
                return None  # missing or not a number
            return value if valid(value) else None

        if (kind := read("kind", str, lambda v: v in NOISE_KINDS)) is not None:
            self.kind_combo.setCurrentIndex(NOISE_KINDS.index(kind))
        if (strength := read("strength", float, lambda v: 0.0 <= v <= 1.0)) is not None:
            self.strength_slider.setValue(strength)
        if (seed := read("seed", int, lambda v: 0 <= v <= MAX_SEED)) is not None:
            self.seed_spin.setValue(seed)
        if (schedule := read("schedule", str, lambda v: v in BETA_SCHEDULES)) is not None:
            self.schedule_combo.setCurrentIndex(BETA_SCHEDULES.index(schedule))
        for key, spin in (("beta_end", self.beta_end_spin), ("beta_start", self.beta_start_spin)):
            if (value := read(key, float, lambda v, s=spin: s.minimum() <= v <= s.maximum())) is not None:
                spin.setValue(value)
        if (steps := read("timesteps", int, lambda v: 10 <= v <= 1000)) is not None:
            self.timesteps_spin.setValue(steps)
        if (t := read("t", int, lambda v: 0 <= v <= self._schedule.num_timesteps)) is not None:
            self.t_slider.setValue(t)
        if (tab := read("tab", int, lambda v: 0 <= v < self.tabs.count())) is not None:
            self.tabs.setCurrentIndex(tab)
        self.update_views()

    def shutdown(self) -> None:
        self.pause()
        self._throttle.cancel()
        self._throttle.flush(restart_timer=False)  # nothing pending: this just stops its timer

    def new_seed(self) -> None:
        """Draw a fresh random seed: a new pattern."""
        self.seed_spin.setValue(int(np.random.default_rng().integers(0, MAX_SEED)))
