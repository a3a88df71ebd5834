"""The Images tab: a DCGAN trained live on digits, shapes or your images, with the failures made visible."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)

from explorer.chapters.base import ExportJob
from explorer.chapters.common import ViewJob, as_bool, read_setting, tile, torch_threads_here, upscale
from explorer.chapters.gan.tab import GanTab
from explorer.widgets.gan_images_coverage import FAKE_COLOR, REAL_COLOR, CoveragePlot, ProbabilityCurves
from explorer.widgets.histogram import HistogramPlot
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.loss_curves import LossCurves
from explorer.widgets.readout import ReadoutLabel
from explorer.workers import format_error

if TYPE_CHECKING:
    from models.gan import DCGAN, GANHyper, GANSnapshot, GANTrainer

GRID_SIDE = 8  # the sample grid: 8×8 fixed noise vectors
GRID_GAP, GRID_FILL = 2, 60
GRID_REDRAW_S = 0.25  # the grid redraws at most 4 times a second, curves and histogram twice
CURVES_REDRAW_S = 0.5
SNAPSHOT_S = 0.4  # how often the trainer reports (and renders the 64 fixed-noise samples: ~5 % of the time)
COVERAGE_EVERY_S = 5.0  # class coverage is measured in the worker this often, not every step...
COVERAGE_SHARE_OF_TIME = 0.05  # ...or less often, so that measuring takes at most this share of the time
COVERAGE_SAMPLES = 256
COVERED_SHARE = 0.02  # a digit class counts as covered when at least 2 % of the samples fall in it
RUN_STEPS = 10_000_000  # Start/Resume train until Stop
MAX_HISTORY = 4000  # curve points kept; beyond, every other one is dropped
MAX_FRAMES = 300  # timelapse frames kept; beyond, every other one is dropped and the interval doubles
CAPTURE_EVERY = 20  # steps between timelapse frames (doubles when the timelapse is thinned)
EXPORT_SCALE = 3  # timelapse frames are upscaled for slides
RATE_WINDOW_S = 5.0
HIST_EDGES = np.linspace(0.0, 1.0, 21)
SOURCES = {"digits": "Digits", "shapes": "Shapes (grey)", "folder": "Your folder"}
LOSS_NAMES = {  # models.gan.LOSSES, with what each one means
    "non-saturating": "Non-saturating (log)",
    "least-squares": "Least squares",
    "hinge": "Hinge",
}
BATCH_SIZES = (16, 32, 64, 128)
LR_RANGE = (1e-5, 1e-2)
SHIPPED = "dcgan-digits"


# ---------------------------------------------------------------------- what the worker yields
@dataclass
class Note:
    """A line for the status (``announce``: also for the status bar)."""

    text: str
    announce: bool = False


@dataclass
class Failed:
    """Training could not go on: bad data, or the losses or weights became NaN/Inf."""

    text: str
    diverged: bool


@dataclass
class FirstSamples:
    """The fixed noise through G before the first step: the timelapse's first frame."""

    samples: np.ndarray  # uint8 (64, 28, 28)


@dataclass
class CoveragePoint:
    """Shares of generated samples per digit class (0–9, then not confident) at ``step``."""

    step: int
    shares: np.ndarray  # float (11,)
    covered: int


@dataclass
class GanSession:
    """One model being trained from the tab: resumable until Start or Reset."""

    source: str
    folder: str | None
    images: np.ndarray | None  # the folder's images, already loaded; None: make them in the worker
    from_shipped: bool
    seed: int
    hyper: GANHyper
    device: Any
    data_count: int
    trainer: GANTrainer | None = None
    evaluator: Any = None  # the shipped evaluator, for class coverage (digits only)
    origin: str = ""  # "the shipped pair" / "random weights"
    steps: list[int] = field(default_factory=list)  # per snapshot, across resumes
    losses: dict[str, list[float]] = field(default_factory=dict)
    coverage_steps: list[int] = field(default_factory=list)
    coverage_shares: list[np.ndarray] = field(default_factory=list)
    coverage_counts: list[int] = field(default_factory=list)
    failed: str = ""  # why it cannot go on (bad data); a divergence only pauses it
    image_count: int = 0  # training images; the batch size never exceeds it
    coverage_samples: int = COVERAGE_SAMPLES

    @property
    def step(self) -> int:
        return 0 if self.trainer is None else self.trainer.step


# ---------------------------------------------------------------------- worker functions
def coverage_shares(result: Any) -> np.ndarray:
    """``models.gan.class_coverage``'s answer as 11 shares: digits 0–9, then not confident."""
    if isinstance(result, dict):
        digits = np.asarray(result.get("fractions", result.get("classes", result.get("histogram"))), dtype=np.float64)
        unsure = result.get("not_confident", result.get("unsure"))
        values = np.append(digits[:10], 1.0 - digits[:10].sum() if unsure is None else float(unsure))
    else:
        values = np.asarray(result, dtype=np.float64).ravel()
        if len(values) == 10:
            values = np.append(values, 0.0)
            if values.sum() <= 1.0 + 1e-6:
                values[10] = 1.0 - values.sum()
    total = values.sum()
    return values / total if total > 0 else values


def _initial_model(session: GanSession) -> tuple[DCGAN, Note | None]:
    """The shipped pair, or random weights (with a note when the shipped weights cannot be used)."""
    from models import gan
    from models.weights import WeightsError

    if session.from_shipped:
        try:
            model, _ = gan.load_dcgan(SHIPPED, device=session.device)
            session.origin = "the shipped pair"
            return model, None
        except (WeightsError, OSError) as error:
            note = Note(
                f"The shipped DCGAN could not be loaded ({format_error(error)}): starting from random weights.",
                announce=True,
            )
    else:
        note = None
    session.origin = "random weights"
    return gan.DCGAN(gan.DCGANConfig()).to(session.device), note


def _measure_coverage(trainer: GANTrainer, evaluator: Any, count: int, seed: int) -> CoveragePoint:
    from models import gan

    model = trainer.model
    modes = [module.training for module in model.modules()]
    try:
        shares = coverage_shares(gan.class_coverage(model, evaluator, count=count, seed=seed))
    finally:  # measuring must not leave BatchNorm in eval mode for the next steps
        for module, mode in zip(model.modules(), modes):
            module.training = mode
    return CoveragePoint(trainer.step, shares, int((shares[:10] >= COVERED_SHARE).sum()))


def training_run(session: GanSession, steps: int, noise_seed: int) -> Iterator[Any]:
    """Worker generator: build the trainer on first use, then train ``steps`` more G steps.

    Yields ``Note``, ``GANSnapshot`` and ``CoveragePoint`` items; a ``Failed`` item (and
    the end) when the data cannot be used or training diverges.
    """
    torch_threads_here()
    from models import gan
    from models.training import DivergedError

    if session.trainer is None:
        what = {"digits": "digits", "shapes": "shapes"}.get(session.source, "your images")
        yield Note(f"Preparing the training {what}…")
        try:
            images = session.images
            if images is None:
                images = gan.make_training_images(session.source, count=session.data_count, folder=session.folder)
        except (ValueError, OSError) as error:
            yield Failed(f"Cannot train on {what}: {error}", diverged=False)
            return
        model, note = _initial_model(session)
        if note is not None:
            yield note
        session.image_count = len(images)
        if session.hyper.batch_size > len(images):
            session.hyper.batch_size = len(images)
            yield Note(f"Only {len(images)} images: the batch size is {len(images)}.", announce=True)
        try:
            session.trainer = gan.GANTrainer(model, images, session.hyper, seed=session.seed, device=session.device)
        except ValueError as error:
            yield Failed(f"Cannot train on {what}: {error}", diverged=False)
            return
        if session.source == "digits":
            from models.evaluator import Evaluator
            from models.weights import WeightsError

            try:
                session.evaluator = Evaluator.load(None, session.device)
            except (WeightsError, OSError) as error:
                yield Note(f"No class coverage: the evaluator could not be loaded ({format_error(error)}).")
        yield Note(f"Training from {session.origin} on {len(images):,} images…")
    trainer = session.trainer
    noise = gan.fixed_noise(GRID_SIDE * GRID_SIDE, trainer.model.config.latent_dim, seed=noise_seed)
    if trainer.step == 0:
        yield FirstSamples(gan.generate(trainer.model, noise))
    next_coverage = -math.inf
    try:
        for snapshot in trainer.run(steps, snapshot_every_s=SNAPSHOT_S, fixed_noise=noise):
            yield snapshot
            if session.evaluator is not None and time.monotonic() >= next_coverage:
                began = time.monotonic()
                point = _measure_coverage(trainer, session.evaluator, session.coverage_samples, seed=noise_seed)
                cost = time.monotonic() - began
                next_coverage = began + max(COVERAGE_EVERY_S, cost / COVERAGE_SHARE_OF_TIME)
                yield point
    except DivergedError as error:
        yield Failed(str(error), diverged=True)
    except ValueError as error:  # a setting the trainer refuses
        yield Failed(f"The trainer refused a setting: {error}", diverged=False)


def shipped_preview(device: Any, seed: int) -> tuple[np.ndarray | None, str]:
    """Worker function: the shipped generator's samples from the fixed noise, or None and why not."""
    torch_threads_here()
    from models import gan
    from models.weights import WeightsError

    try:
        model, _ = gan.load_dcgan(SHIPPED, device=device)
    except (WeightsError, OSError) as error:
        return None, f"The shipped DCGAN is missing ({format_error(error)}): Start trains from random weights."
    samples = gan.generate(model, gan.fixed_noise(GRID_SIDE * GRID_SIDE, model.config.latent_dim, seed=seed))
    return samples, ""


def load_folder(folder: str, count: int) -> tuple[np.ndarray | None, str]:
    """Worker function: a folder's images as uint8 (N, 28, 28), or None and one sentence why not."""
    from models import gan

    try:
        images = gan.make_training_images("folder", count=count, folder=folder)
    except (ValueError, OSError) as error:
        return None, f"Cannot use the folder {Path(folder).name!r}: {error}"
    if len(images) == 0:
        return None, f"Cannot use the folder {Path(folder).name!r}: it holds no images."
    return images, ""


# ---------------------------------------------------------------------- the tab
class ImagesTab(GanTab):
    """Train a DCGAN live: the fixed-noise grid, D(x) histograms, curves and class coverage."""

    DATA_COUNT = 10_000  # training images (digits are cached on disk after the first run)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_count, self.coverage_samples = self.DATA_COUNT, COVERAGE_SAMPLES
        self.max_frames, self.capture_every = MAX_FRAMES, CAPTURE_EVERY
        self.session: GanSession | None = None
        self.worker = None
        self.folder: str | None = None
        self.folder_images: np.ndarray | None = None
        self._select_folder = True
        self.samples: np.ndarray | None = None  # the last good samples of the fixed noise
        self.frames: list[np.ndarray] = []  # timelapse: raw grid mosaics
        self.frame_steps: list[int] = []
        self.failure = ""
        self._stopping = self._closed = False
        self._rate_marks: list[tuple[float, int]] = []  # (time, step) of the last seconds' snapshots
        self._last_grid = self._last_curves = 0.0
        self._latest: GANSnapshot | None = None
        self._preview_wanted = True
        self.preview_job = ViewJob(self.pool, self._show_preview, name="GAN preview")
        self.folder_job = ViewJob(self.pool, self._folder_loaded, name="Folder")
        self._build_controls()
        self._build_view()
        self._build_shortcuts()
        self._connect()
        self.update_buttons()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        data_box = QGroupBox("Training images")
        self.source_combo = QComboBox()
        for key, label in SOURCES.items():
            self.source_combo.addItem(label, key)
        self.source_combo.setToolTip("What the generator learns to imitate (28×28 grey images)")
        self.folder_button = QPushButton("Choose folder…")
        self.folder_button.setToolTip("Train on the images of a folder (resized and centre-cropped to 28×28 grey)")
        self.folder_label = QLabel("No folder chosen")
        self.folder_label.setWordWrap(True)
        self.shipped_radio = QRadioButton("Shipped")
        self.shipped_radio.setToolTip("Start from the DCGAN shipped trained on digits")
        self.scratch_radio = QRadioButton("Scratch")
        self.scratch_radio.setToolTip("Start from random weights: watch digits appear out of noise")
        self.scratch_radio.setChecked(True)
        self.origin_group = QButtonGroup(self)
        self.origin_group.addButton(self.shipped_radio)
        self.origin_group.addButton(self.scratch_radio)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 9999)
        self.seed_spin.setToolTip(
            "Seed of the 64 fixed noise vectors shown in the grid (and of a new run's batches); "
            "a change applies at the next Start or Resume"
        )
        origin = QHBoxLayout()
        origin.addWidget(self.shipped_radio)
        origin.addWidget(self.scratch_radio)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_button)
        folder_row.addWidget(self.folder_label, 1)
        form = QFormLayout(data_box)
        form.addRow("Data", self.source_combo)
        form.addRow(folder_row)
        form.addRow("Start from", origin)
        form.addRow("Noise seed", self.seed_spin)

        hyper_box = QGroupBox("Hyper-parameters (live)")
        self.lr_d_spin = self._lr_spin("Discriminator learning rate (Adam)")
        self.lr_g_spin = self._lr_spin("Generator learning rate (Adam)")
        self.loss_combo = QComboBox()
        for key, label in LOSS_NAMES.items():
            self.loss_combo.addItem(label, key)
        self.loss_combo.setToolTip(
            "Non-saturating: G maximises log D(G(z)); least squares: D regresses 1/0; hinge: D's margin loss"
        )
        self.d_steps_spin = QSpinBox()
        self.d_steps_spin.setRange(1, 5)
        self.d_steps_spin.setToolTip("Discriminator updates before each generator update")
        self.batch_combo = QComboBox()
        for size in BATCH_SIZES:
            self.batch_combo.addItem(str(size), size)
        self.batch_combo.setCurrentIndex(BATCH_SIZES.index(64))
        self.batch_combo.setToolTip("Real and generated images per step")
        form = QFormLayout(hyper_box)
        form.addRow("LR D", self.lr_d_spin)
        form.addRow("LR G", self.lr_g_spin)
        form.addRow("Loss", self.loss_combo)
        form.addRow("D steps per G step", self.d_steps_spin)
        form.addRow("Batch size", self.batch_combo)

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("A new run from the chosen start (Space when nothing is running)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Pause training (Space)")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Go on training the same networks (Space)")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Forget this run: curves, coverage and timelapse")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button, self.reset_button):
            button.setMinimumWidth(10)
            buttons.addWidget(button)
        self.progress = ReadoutLabel(3)
        self.progress.setText("Step 0")
        self.control_layout.addWidget(data_box)
        self.control_layout.addWidget(hyper_box)
        self.control_layout.addLayout(buttons)
        self.control_layout.addWidget(self.progress)

    def _lr_spin(self, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setDecimals(5)
        spin.setRange(*LR_RANGE)
        spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        spin.setValue(2e-4)
        spin.setToolTip(f"{tip}; takes effect at the next step. Too high and training diverges")
        return spin

    def _build_view(self) -> None:
        self.grid_panel = ImagePanel("The same 64 noise vectors, as the generator maps them now")
        self.grid_panel.view_box.setMouseEnabled(x=False, y=False)
        self.grid_panel.setMinimumSize(220, 220)
        self.grid_panel.set_image(self._blank_grid())
        self.histogram = HistogramPlot(
            f"D(x) on the last batch: <span style='color:{REAL_COLOR}'>real</span> and "
            f"<span style='color:{FAKE_COLOR}'>generated</span> (0 = fake, 1 = real)"
        )
        self.histogram.set_count_top(0.5)
        self.histogram.setXRange(0.0, 1.0, padding=0.02)
        self.histogram.getPlotItem().getViewBox().disableAutoRange(axis="x")
        self.probabilities = ProbabilityCurves()
        self.curves = LossCurves([("d_loss", "D loss", "#9467bd"), ("g_loss", "G loss", "#2ca02c")])
        self.coverage = CoveragePlot()
        self._set_steps(0, 100)
        self.status = QLabel("Press Start (or Space) to train the DCGAN; change the hyper-parameters while it runs.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.banner = QFrame()
        self.banner.setFrameShape(QFrame.Shape.StyledPanel)
        self.banner.setStyleSheet("QFrame { background: #fde8e8; }")
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        self.banner_label.setTextFormat(Qt.TextFormat.RichText)
        self.banner_reset = QPushButton("Reset")
        self.banner_reset.setToolTip("Forget the diverged run; then Start again")
        banner = QHBoxLayout(self.banner)
        banner.setContentsMargins(6, 4, 6, 4)
        banner.addWidget(self.banner_label, 1)
        banner.addWidget(self.banner_reset)
        self.banner.hide()

        side = QVBoxLayout()
        side.addWidget(self.histogram, 1)
        side.addWidget(self.probabilities, 1)
        top = QHBoxLayout()
        top.addWidget(self.grid_panel, 5)
        top.addLayout(side, 4)
        bottom = QHBoxLayout()
        bottom.addWidget(self.curves, 1)
        bottom.addWidget(self.coverage, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top, 3)
        layout.addLayout(bottom, 2)
        layout.addWidget(self.banner)
        layout.addWidget(self.status)

    def _build_shortcuts(self) -> None:
        # Window-wide, enabled only while this tab is current (set_active).
        self.space = QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.toggle, context=Qt.ShortcutContext.WindowShortcut)
        self.space.setEnabled(False)

    def _connect(self) -> None:
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.reset_button.clicked.connect(self.reset)
        self.banner_reset.clicked.connect(self.reset)
        self.folder_button.clicked.connect(self.choose_folder)
        self.source_combo.currentIndexChanged.connect(self._on_source_changed)
        self.seed_spin.valueChanged.connect(self._on_seed_changed)
        for spin in (self.lr_d_spin, self.lr_g_spin):
            spin.valueChanged.connect(self.apply_hyper)
        self.d_steps_spin.valueChanged.connect(self.apply_hyper)
        self.loss_combo.currentIndexChanged.connect(self.apply_hyper)
        self.batch_combo.currentIndexChanged.connect(self.apply_hyper)

    def _blank_grid(self) -> np.ndarray:
        return tile(np.zeros((GRID_SIDE * GRID_SIDE, 28, 28), np.uint8), GRID_SIDE, GRID_GAP, GRID_FILL)

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        return self.worker is not None

    @property
    def busy(self) -> bool:
        return self.preview_job.busy or self.folder_job.busy  # training is not a view: nobody waits for it

    @property
    def source(self) -> str:
        return str(self.source_combo.currentData())

    def set_active(self, active: bool) -> None:
        super().set_active(active)
        self.space.setEnabled(active and not self._closed)
        if active and self._preview_wanted and self.session is None:
            self._request_preview()

    def hyper(self) -> GANHyper:
        """The hyper-parameters the form describes."""
        from models.gan import GANHyper

        return GANHyper(
            lr_d=float(self.lr_d_spin.value()),
            lr_g=float(self.lr_g_spin.value()),
            loss=str(self.loss_combo.currentData()),
            d_steps=int(self.d_steps_spin.value()),
            batch_size=int(self.batch_combo.currentData()),
        )

    def apply_hyper(self) -> None:
        """Write the form into the run's GANHyper: the trainer reads it at its next step."""
        if self.session is None:
            return
        live = self.session.hyper
        form = self.hyper()
        if self.session.image_count:
            form.batch_size = min(form.batch_size, self.session.image_count)
        for name in ("lr_d", "lr_g", "loss", "d_steps", "batch_size"):
            setattr(live, name, getattr(form, name))  # one attribute at a time: each write is atomic

    # ------------------------------------------------------------------ runs
    def toggle(self) -> None:
        """Space: stop a run, resume a stopped one, or start one."""
        if self.running:
            self.stop()
        elif self._resumable():
            self.resume()
        else:
            self.start()

    def start(self) -> None:
        """A new run from the chosen start, on the chosen data."""
        if self.running or self._closed:
            return
        source = self.source
        if source == "folder" and self.folder_images is None:
            self.message.emit("Choose a folder of images first (Choose folder…).")
            return
        self._forget_run()
        self.session = GanSession(
            source=source,
            folder=self.folder if source == "folder" else None,
            images=self.folder_images if source == "folder" else None,
            from_shipped=self.shipped_radio.isChecked(),
            seed=self.seed_spin.value(),
            hyper=self.hyper(),
            device=self.device,
            data_count=self.data_count,
            coverage_samples=self.coverage_samples,
        )
        if source != "digits":
            self.coverage.set_note("Class coverage is measured on digits only")
        self._run()

    def resume(self) -> None:
        """Go on training the same networks (the step count goes on)."""
        if self.running or self._closed or not self._resumable():
            return
        self._run()

    def stop(self) -> None:
        if self.worker is not None:
            self._stopping = True
            self.pool.stop(self.worker)

    def reset(self) -> None:
        """Stop, and forget the run: the next Start begins afresh."""
        self.stop()
        self._forget_run()
        self.session = None
        self.grid_panel.set_image(self._blank_grid())
        self.status.setText("Reset. Press Start (or Space) to train.")
        self.progress.setText("Step 0")
        self._preview_wanted = True
        if self.active:
            self._request_preview()
        self.update_buttons()

    def _forget_run(self) -> None:
        self.failure = ""
        self.banner.hide()
        self.samples = None
        self._latest = None
        self.frames, self.frame_steps = [], []
        self.capture_every = CAPTURE_EVERY
        self.curves.clear_curves()
        self.probabilities.clear_curves()
        self._set_steps(0, 100)
        self.coverage.set_history([], [], [])
        self.coverage.set_note("")
        self.histogram.set_histograms({})

    def _resumable(self) -> bool:
        session = self.session
        return session is not None and session.trainer is not None and not session.failed

    def _run(self) -> None:
        session = self.session
        self.apply_hyper()  # the form's values, whatever was written into the trainer's since
        self.failure = ""
        self.banner.hide()
        self.preview_job.cancel()
        self._preview_wanted = False
        self._stopping = False
        self._rate_marks = []
        self.worker = self.pool.start(
            training_run, session, RUN_STEPS, self.seed_spin.value(),
            on_yield=self._on_update, on_error=self._on_error, on_finished=self._on_finished, name="GAN training",
        )  # fmt: skip
        self.update_buttons()

    # ------------------------------------------------------------------ results (GUI thread)
    def _on_update(self, item: Any) -> None:
        if isinstance(item, Note):
            self.status.setText(item.text)
            if item.announce:
                self.message.emit(item.text)
        elif isinstance(item, Failed):
            self._on_failed(item)
        elif isinstance(item, CoveragePoint):
            self._on_coverage(item)
        elif isinstance(item, FirstSamples):
            self.samples = item.samples
            self.grid_panel.set_image(self._mosaic(item.samples))
            self._capture(0)
        else:
            self._on_snapshot(item)

    def _on_snapshot(self, snapshot: GANSnapshot) -> None:
        session = self.session
        session.steps.append(snapshot.step)
        for key in ("d_loss", "g_loss", "d_real", "d_fake"):
            if key in snapshot.losses:
                session.losses.setdefault(key, []).append(float(snapshot.losses[key]))
        if len(session.steps) > MAX_HISTORY:
            session.steps[:] = session.steps[::2]
            for values in session.losses.values():
                values[:] = values[::2]
        self._latest = snapshot
        now = time.monotonic()
        self._rate_marks.append((now, snapshot.step))
        while now - self._rate_marks[0][0] > RATE_WINDOW_S:
            self._rate_marks.pop(0)
        if snapshot.samples is not None:
            self.samples = snapshot.samples
            if not self.frame_steps or snapshot.step - self.frame_steps[-1] >= self.capture_every:
                self._capture(snapshot.step)
        if not self.isVisible():
            return  # training plays on behind another tab: drawn when this one shows again
        if self.samples is not None and now - self._last_grid >= GRID_REDRAW_S:
            self._last_grid = now
            self.grid_panel.set_image(self._mosaic(self.samples))
        if now - self._last_curves >= CURVES_REDRAW_S:
            self._last_curves = now
            self._redraw_curves()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        """Draw what a run did while another tab was shown."""
        super().showEvent(event)
        if self.session is not None and self._latest is not None:
            if self.samples is not None:
                self.grid_panel.set_image(self._mosaic(self.samples))
            self._redraw_curves()
            self._draw_coverage()

    def _set_steps(self, first: int, last: int) -> None:
        """The x range of every plot against steps."""
        self.curves.set_steps(first, last)
        self.probabilities.set_steps(first, last)
        self.coverage.set_steps(first, last)

    def _capture(self, step: int) -> None:
        self.frames.append(self._mosaic(self.samples))
        self.frame_steps.append(step)
        if len(self.frames) > self.max_frames:  # bounded memory: thin out, and capture half as often
            self.frames, self.frame_steps = self.frames[::2], self.frame_steps[::2]
            self.capture_every *= 2

    @staticmethod
    def _mosaic(samples: np.ndarray) -> np.ndarray:
        return tile(samples[: GRID_SIDE * GRID_SIDE], GRID_SIDE, GRID_GAP, GRID_FILL)

    def _redraw_curves(self) -> None:
        session, snapshot = self.session, self._latest
        if session is None or snapshot is None:
            return
        steps = session.steps
        if steps and steps[-1] > self.curves.plots["d_loss"].viewRange()[0][1]:
            self._set_steps(0, max(100, int(steps[-1] * 1.5)))  # grow the x range in jumps: fewer axis layouts
        self.curves.set_history(steps, session.losses)
        self.probabilities.set_history(steps, session.losses.get("d_real", []), session.losses.get("d_fake", []))
        real = np.histogram(np.asarray(snapshot.d_real_scores, dtype=np.float64), HIST_EDGES)[0]
        fake = np.histogram(np.asarray(snapshot.d_fake_scores, dtype=np.float64), HIST_EDGES)[0]
        shares = {"real": real / max(real.sum(), 1), "fake": fake / max(fake.sum(), 1)}
        top = max(0.25, math.ceil(max(shares["real"].max(), shares["fake"].max()) * 4) / 4)
        if top != self.histogram.count_top:
            self.histogram.set_count_top(top)
        self.histogram.set_histograms(shares, HIST_EDGES, {"real": REAL_COLOR, "fake": FAKE_COLOR})
        losses = snapshot.losses
        self.progress.setText(
            f"Step <b>{snapshot.step:,}</b> · {self.steps_per_second():,.1f} steps/s · "
            f"{snapshot.samples_per_second:,.0f} images/s<br>"
            f"D loss {losses.get('d_loss', math.nan):.3f} · G loss {losses.get('g_loss', math.nan):.3f}<br>"
            f"D(real) {losses.get('d_real', math.nan):.2f} · D(fake) {losses.get('d_fake', math.nan):.2f}"
        )

    def steps_per_second(self) -> float:
        """G steps per second over the last few seconds of snapshots."""
        marks = self._rate_marks
        if len(marks) < 2:
            return 0.0
        (t0, s0), (t1, s1) = marks[0], marks[-1]
        return (s1 - s0) / max(t1 - t0, 1e-9)

    def _on_coverage(self, point: CoveragePoint) -> None:
        session = self.session
        session.coverage_steps.append(point.step)
        session.coverage_shares.append(point.shares)
        session.coverage_counts.append(point.covered)
        if self.isVisible():
            self._draw_coverage()

    def _draw_coverage(self) -> None:
        session = self.session
        self.coverage.set_history(session.coverage_steps, session.coverage_shares, session.coverage_counts)

    def _on_failed(self, item: Failed) -> None:
        session = self.session
        self.failure = item.text
        if item.diverged:
            text = (
                f"<b>Training diverged at step {session.step:,} and is paused.</b> {item.text.rstrip('. ')}. "
                "A loss or a weight became NaN or infinite; the samples shown are the last good ones. "
                "Lower the learning rates and press <b>Resume</b>, or <b>Reset</b> to start afresh."
            )
            self.message.emit(f"GAN training diverged at step {session.step:,}: paused. Lower the learning rates, or Reset.")
        else:
            session.failed = item.text
            text = f"<b>Training stopped:</b> {item.text.rstrip('. ')}. Press <b>Reset</b>, then Start."
            self.message.emit(item.text)
        self.banner_label.setText(text)
        self.banner.show()
        self.status.setText("Training paused.")

    def _on_error(self, error: Exception) -> None:
        # The pool has put the error in the status bar already.
        if self.session is not None:
            self.session.failed = self.failure = format_error(error)
        self.banner_label.setText(f"<b>Training stopped:</b> {format_error(error)}. Press <b>Reset</b> to start again.")
        self.banner.show()

    def _on_finished(self) -> None:
        self.worker = None
        if self._closed:
            return  # the window is closing: start no more work
        if self.samples is not None:
            self.grid_panel.set_image(self._mosaic(self.samples))
        session = self.session
        if session is not None:
            self._redraw_curves()
            if not self.failure and session.trainer is not None and self._latest is not None:
                self._capture_last(self._latest.step)
                how = "Stopped" if self._stopping else "Finished"
                self.status.setText(
                    f"{how} at step {session.step:,}. <b>Resume</b> (Space) goes on with the same networks; "
                    "<b>Start</b> begins a new run; File → Export sequence writes the timelapse."
                )
        self.update_buttons()

    def _capture_last(self, step: int) -> None:
        if self.samples is not None and (not self.frame_steps or self.frame_steps[-1] < step):
            self._capture(step)

    def update_buttons(self) -> None:
        running = self.running
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(not running and self._resumable())
        for widget in (self.source_combo, self.folder_button, self.shipped_radio, self.scratch_radio, self.seed_spin):
            widget.setEnabled(not running)

    # ------------------------------------------------------------------ shipped preview and folders
    def _request_preview(self) -> None:
        self.preview_job.submit(shipped_preview, self.device, self.seed_spin.value())

    def _show_preview(self, result: tuple[np.ndarray | None, str]) -> None:
        samples, why = result
        if self.session is not None:
            return  # a run began meanwhile
        self._preview_wanted = False
        if samples is None:
            self.status.setText(why)
            return
        self.grid_panel.set_image(self._mosaic(samples))
        self.status.setText(
            "The shipped generator's samples from the 64 fixed noise vectors. Press <b>Start</b> (Space) to train: "
            "from random weights, watch the same vectors turn into digits."
        )

    def _on_seed_changed(self) -> None:
        if self.session is None and self.active:
            self._request_preview()

    def _on_source_changed(self) -> None:
        if self.source == "folder" and self.folder is None and self.isVisible():
            self.choose_folder()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of images to train on", self.folder or "")
        if folder:
            self.set_folder(folder)

    def set_folder(self, folder: str, select: bool = True) -> None:
        """Load a folder's images in a worker (then pick "Your folder" if ``select``); a bad folder gives one message."""
        self.folder = folder
        self._select_folder = select
        self.folder_images = None
        self.folder_label.setText(f"Loading {Path(folder).name}…")
        self.folder_job.submit(load_folder, folder, self.data_count)

    def _folder_loaded(self, result: tuple[np.ndarray | None, str]) -> None:
        images, why = result
        name = Path(self.folder or "").name
        if images is None:
            self.folder_label.setText(f"{name}: no usable images")
            self.message.emit(why)
            return
        self.folder_images = images
        self.folder_label.setText(f"{name}: {len(images):,} images")
        if not self._select_folder:
            return
        self.source_combo.setCurrentIndex(self.source_combo.findData("folder"))
        self.message.emit(f"{len(images):,} images from {name} ready: press Start to train on them.")

    # ------------------------------------------------------------------ export
    def export_job(self) -> ExportJob | None:
        """The training timelapse: the sample grid every few steps, upscaled, with the run's parameters."""
        session = self.session
        if session is None or not self.frames:
            return None
        frames = list(self.frames)

        def upscaled() -> Iterator[np.ndarray]:
            for frame in frames:
                yield upscale(frame, EXPORT_SCALE)

        hyper = dataclasses.asdict(session.hyper)
        params = {
            "chapter": "gan",
            "mode": "images",
            "data": session.source,
            "folder": session.folder,
            "start": "shipped" if session.from_shipped else "scratch",
            "origin": session.origin,
            "hyper": hyper,
            "seed": session.seed,
            "noise_seed": self.seed_spin.value(),
            "steps": session.step,
            "frame_steps": list(self.frame_steps),
            "capture_every": self.capture_every,
            "scale": EXPORT_SCALE,
        }
        return ExportJob(upscaled, len(frames), params, default_name="gan-images-timelapse")

    # ------------------------------------------------------------------ settings and shutdown
    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("images_source", self.source)
        settings.setValue("images_folder", self.folder or "")
        settings.setValue("images_shipped", self.shipped_radio.isChecked())
        settings.setValue("images_seed", self.seed_spin.value())
        settings.setValue("images_lr_d", self.lr_d_spin.value())
        settings.setValue("images_lr_g", self.lr_g_spin.value())
        settings.setValue("images_loss", str(self.loss_combo.currentData()))
        settings.setValue("images_d_steps", self.d_steps_spin.value())
        settings.setValue("images_batch", int(self.batch_combo.currentData()))

    def restore_settings(self, settings: QSettings) -> None:
        lr_ok = lambda v: LR_RANGE[0] <= v <= LR_RANGE[1]  # noqa: E731
        if (lr := read_setting(settings, "images_lr_d", float, lr_ok)) is not None:
            self.lr_d_spin.setValue(lr)
        if (lr := read_setting(settings, "images_lr_g", float, lr_ok)) is not None:
            self.lr_g_spin.setValue(lr)
        if (loss := read_setting(settings, "images_loss", str, lambda v: v in LOSS_NAMES)) is not None:
            self.loss_combo.setCurrentIndex(self.loss_combo.findData(loss))
        if (d_steps := read_setting(settings, "images_d_steps", int, lambda v: 1 <= v <= 5)) is not None:
            self.d_steps_spin.setValue(d_steps)
        if (batch := read_setting(settings, "images_batch", int, lambda v: v in BATCH_SIZES)) is not None:
            self.batch_combo.setCurrentIndex(BATCH_SIZES.index(batch))
        if (seed := read_setting(settings, "images_seed", int, lambda v: 0 <= v <= 9999)) is not None:
            self.seed_spin.setValue(seed)
        if (shipped := read_setting(settings, "images_shipped", as_bool)) is not None:
            (self.shipped_radio if shipped else self.scratch_radio).setChecked(True)
        folder = read_setting(settings, "images_folder", str, lambda v: bool(v) and Path(v).is_dir())
        source = read_setting(settings, "images_source", str, lambda v: v in SOURCES)
        if folder is not None:
            self.set_folder(folder, select=False)  # loads it again, quietly
        if source is not None and (source != "folder" or folder is not None):
            self.source_combo.blockSignals(True)  # no dialog while restoring
            self.source_combo.setCurrentIndex(self.source_combo.findData(source))
            self.source_combo.blockSignals(False)

    def shutdown(self) -> None:
        """Stop training and the jobs: the window is closing."""
        self._closed = True
        self.space.setEnabled(False)
        self.preview_job.cancel()
        self.folder_job.cancel()
        self.stop()
