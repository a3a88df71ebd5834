"""The 2-D points tab: a generator and a discriminator duel on the plane, as in GAN Lab."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.chapters.base import ExportJob
from explorer.chapters.common import as_bool, read_setting, torch_threads_here
from explorer.chapters.gan.tab import GanTab
from explorer.widgets.gan_plane import LAYER_TITLES, LAYERS, GanCurves, GanPlane, SquareBox, render_frame
from explorer.widgets.readout import ReadoutLabel
from explorer.workers import WorkerPool, format_error

if TYPE_CHECKING:
    from models.gan2d import Gan2DHyper, Gan2DSnapshot, Gan2DTrainer

PLANE = (-2.0, 2.0)  # = models.gan2d.PLANE (not imported: that would load torch with this module)
DISTRIBUTIONS = (  # (key, title) as models.gan2d.DISTRIBUTION_TITLES
    ("ring", "Ring of 8 Gaussians"),
    ("grid", "5 × 5 grid of Gaussians"),
    ("line", "A line"),
    ("moons", "Two moons"),
    ("spiral", "Spiral"),
    ("drawn", "Draw your own"),
)
SPEEDS = (("Slow: 10 steps/s", 10.0), ("Medium: 50 steps/s", 50.0), ("Fast", 0.0))
REDRAW_MS = 50  # at most 20 redraws a second; snapshots in between only add to the curves
HEAT_EVERY = 2  # while playing, the heat map (the dearest view to compute and repaint) every other snapshot
SNAPSHOT_EVERY_S = 1 / 20  # each snapshot costs the worker a few ms (heat map, manifold, gradients)
MAX_FRAMES = 240  # timelapse frames kept; when full, every other one goes and the interval doubles
MAX_CURVE_POINTS = 4000  # curve history; when full, every other point goes
EXPORT_SIZE = 360


@dataclass
class Session:
    """One G and D on one distribution, from their random (or pretrained) start: what Reset forgets.

    ``trainer`` is built by the first worker that needs it (networks are torch objects).
    """

    hyper: Gan2DHyper
    distribution: str
    drawn: np.ndarray  # float32 (m, 2), the user's points
    seed: int = 0
    max_steps_per_s: float = 0.0
    trainer: Gan2DTrainer | None = None
    pretrained: bool = False
    views: frozenset = frozenset(LAYERS)  # the layers on show: what snapshots compute while playing
    failed: str = ""
    announced: bool = False  # the pretrained pair's arrival was said
    steps: list[int] = field(default_factory=list)  # curve history, one entry per snapshot
    losses: dict[str, list[float]] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)  # newest heat, manifold, (fake, gradients)
    frames: list[tuple] = field(default_factory=list)  # (step, real, fake, heat, manifold, gradients) for export
    frame_every: int = 20
    next_frame: int = 0

    def ensure_trainer(self) -> Gan2DTrainer:
        """The trainer (worker threads only: it builds torch networks), with the newest drawing."""
        if self.trainer is None:
            from models.gan2d import Gan2DTrainer, pretrained_pair

            trainer = Gan2DTrainer(self.hyper, self.distribution, self.drawn, seed=self.seed)
            if self.pretrained:
                trainer.load_pair(pretrained_pair("ring"))
            trainer.max_steps_per_s = self.max_steps_per_s or None
            trainer.views, trainer.heat_every = self.views, HEAT_EVERY
            trainer.drawn_count = len(self.drawn)
            self.trainer = trainer
        self.sync_real()
        return self.trainer

    def sync_real(self) -> None:
        """Give the trainer the points drawn since it was built (numpy only: any thread)."""
        trainer, drawn = self.trainer, self.drawn
        if trainer is not None and self.distribution == "drawn" and getattr(trainer, "drawn_count", -1) != len(drawn):
            trainer.set_real("drawn", drawn)  # one assignment of a new pool: safe while another thread trains
            trainer.drawn_count = len(drawn)


# ---------------------------------------------------------------------- worker functions
def play_run(session: Session) -> Any:
    """Worker generator: train until stopped, a snapshot at most every 1/30 s."""
    torch_threads_here()
    trainer = session.ensure_trainer()
    yield trainer.snapshot()
    yield from trainer.run(None, snapshot_every_s=SNAPSHOT_EVERY_S)


def single_step(session: Session, kind: str) -> Gan2DSnapshot:
    """Worker: one "d", "g" or full ("step") update, then a snapshot (losses of that update)."""
    torch_threads_here()
    trainer = session.ensure_trainer()
    if kind == "d":
        losses = trainer.d_step()
    elif kind == "g":
        losses = trainer.g_step()
    else:
        losses = trainer.train_step()
    return trainer.snapshot(losses)


def view_of(session: Session) -> Any:
    """Worker generator: a snapshot of the session as it is (first view, or after a change
    while paused); then the optimisers, so that the first step does not wait for them."""
    torch_threads_here()
    if session.pretrained and session.trainer is None:
        from models.gan2d import PRETRAINED_STEPS, pretrained_pair_progress

        for done in pretrained_pair_progress("ring"):  # trained on first use: stoppable
            yield f"Training the pretrained pair once (then it is cached): step {done} of {PRETRAINED_STEPS}…"
    trainer = session.ensure_trainer()
    yield trainer.snapshot()
    trainer.prepare()


class PointsTab(GanTab):
    """Train a small GAN on 2-D points and watch every part of it."""

    def __init__(self, pool: WorkerPool, device: Any, parent: QWidget | None = None) -> None:
        super().__init__(pool, device, parent)
        from models.gan2d import Gan2DHyper

        self.hyper = Gan2DHyper()
        self.drawn = np.zeros((0, 2), dtype=np.float32)
        self.worker = None  # the one job that touches the trainer (play, a step, a view)
        self.playing = False
        self._job_kind = ""
        self._latest: Gan2DSnapshot | None = None  # not drawn yet
        self._want_view = False  # a view was asked for while a job ran
        self._after_job: list = []  # what to do when the running job has ended
        self._closed = False
        self._quiet = False
        self._view_shown = False  # the running view job has delivered its snapshot
        self._shown_real: np.ndarray | None = None
        self._dirty: set[str] = set()  # views with news since the last redraw
        self._build_controls()
        self._build_view()
        self._connect()
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self._redraw)
        self.session = self._new_session()
        self._quiet = True
        self.apply_hyper()  # the tooltips that follow the form
        self._quiet = False
        self.request_view()
        self.update_buttons()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        self.distribution_combo = QComboBox()
        for key, title in DISTRIBUTIONS:
            self.distribution_combo.addItem(title, key)
        self.distribution_combo.setToolTip("The real data. Changing it starts G and D again from random weights.")
        self.clear_button = QPushButton("Clear drawing")
        self.clear_button.setToolTip("Remove the points you drew")
        self.draw_hint = QLabel("Click or drag on the plane to add points.")
        self.draw_hint.setWordWrap(True)
        data = QGroupBox("Data")
        data_layout = QVBoxLayout(data)
        data_layout.addWidget(self.distribution_combo)
        row = QHBoxLayout()
        row.addWidget(self.draw_hint, 1)
        row.addWidget(self.clear_button)
        data_layout.addLayout(row)

        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Train continuously: D steps, then a G step, again and again (Space)")
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("One training step: D steps per G step updates of D, then one of G (→)")
        self.step_d_button = QPushButton("D step only")
        self.step_d_button.setToolTip("One discriminator update; the generator stays as it is")
        self.step_g_button = QPushButton("G step only")
        self.step_g_button.setToolTip("One generator update; the discriminator stays as it is")
        self.speed_combo = QComboBox()
        for title, value in SPEEDS:
            self.speed_combo.addItem(title, value)
        self.speed_combo.setCurrentIndex(len(SPEEDS) - 1)
        self.speed_combo.setToolTip("Slow it down to watch each step")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Forget this run: G and D start again from random weights")
        self.pretrained_button = QPushButton("Start from a pretrained pair")
        self.pretrained_button.setToolTip(
            "G and D already trained 1,200 steps on the ring (trained on first use, a few seconds, then cached)"
        )
        self.readout = ReadoutLabel(lines=2)
        train = QGroupBox("Train")
        grid = QGridLayout(train)
        grid.addWidget(self.play_button, 0, 0)
        grid.addWidget(self.step_button, 0, 1)
        grid.addWidget(self.step_d_button, 1, 0)
        grid.addWidget(self.step_g_button, 1, 1)
        grid.addWidget(QLabel("Speed"), 2, 0)
        grid.addWidget(self.speed_combo, 2, 1)
        grid.addWidget(self.reset_button, 3, 0)
        grid.addWidget(self.pretrained_button, 4, 0, 1, 2)
        grid.addWidget(self.readout, 5, 0, 1, 2)

        def lr_spin(tip: str) -> QDoubleSpinBox:
            spin = QDoubleSpinBox()
            spin.setDecimals(5)
            spin.setRange(0.0, 1.0)
            spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
            spin.setValue(1e-3)
            spin.setToolTip(tip)
            return spin

        self.lr_d_spin = lr_spin("Discriminator's learning rate (0 freezes D); takes effect at the next step")
        self.lr_g_spin = lr_spin("Generator's learning rate (0 freezes G); takes effect at the next step")
        self.optimizer_combo = QComboBox()
        self.optimizer_combo.addItem("Adam", "adam")
        self.optimizer_combo.addItem("SGD", "sgd")
        self.optimizer_combo.setToolTip("Switching starts the optimisers' state afresh (the weights stay)")
        self.loss_combo = QComboBox()
        for title, key, tip in (
            ("Non-saturating (log)", "non-saturating", "D: −log D(x) − log(1 − D(G(z))); G: −log D(G(z))"),
            ("Least squares", "least-squares", "D: (D(x) − 1)² + D(G(z))²; G: (D(G(z)) − 1)²"),
            ("Hinge", "hinge", "D: max(0, 1 − D(x)) + max(0, 1 + D(G(z))); G: −D(G(z))"),
        ):
            self.loss_combo.addItem(title, key)
            self.loss_combo.setItemData(self.loss_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.loss_combo.setToolTip("The game's losses; D(x) on the heat map is D's output read as “how real”")
        self.d_steps_spin = QSpinBox()
        self.d_steps_spin.setRange(1, 10)
        self.d_steps_spin.setToolTip("Discriminator updates before each generator update")
        self.noise_dim_spin = QSpinBox()
        self.noise_dim_spin.setRange(1, 8)
        self.noise_dim_spin.setValue(2)
        self.noise_dim_spin.setToolTip("Size of z. Changing it builds new networks (random weights)")
        self.noise_kind_combo = QComboBox()
        self.noise_kind_combo.addItem("Gaussian N(0, 1)", "gaussian")
        self.noise_kind_combo.addItem("Uniform U(−1, 1)", "uniform")
        self.noise_kind_combo.setToolTip("Where z is drawn from")
        self.width_spin = QSpinBox()
        self.width_spin.setRange(2, 256)
        self.width_spin.setValue(64)
        self.width_spin.setToolTip("Units per hidden layer of G and D. Changing it builds new networks")
        self.depth_spin = QSpinBox()
        self.depth_spin.setRange(0, 5)
        self.depth_spin.setValue(2)
        self.depth_spin.setToolTip("Hidden layers of G and D. Changing it builds new networks")
        hyper = QGroupBox("Hyper-parameters (live)")
        form = QFormLayout(hyper)
        form.addRow("Learning rate D", self.lr_d_spin)
        form.addRow("Learning rate G", self.lr_g_spin)
        form.addRow("Optimiser", self.optimizer_combo)
        form.addRow("Loss", self.loss_combo)
        form.addRow("D steps per G step", self.d_steps_spin)
        form.addRow("Noise size", self.noise_dim_spin)
        form.addRow("Noise kind", self.noise_kind_combo)
        form.addRow("Width", self.width_spin)
        form.addRow("Depth", self.depth_spin)

        self.layer_boxes: dict[str, QCheckBox] = {}
        layers = QGroupBox("Show")
        layer_grid = QGridLayout(layers)
        for i, name in enumerate(LAYERS):
            box = QCheckBox(LAYER_TITLES[name])
            box.setChecked(True)
            self.layer_boxes[name] = box
            layer_grid.addWidget(box, i, 0, 1, 2)
        self.layer_boxes["heat"].setToolTip("Green: D says real; purple: D says generated; white: D is unsure")
        self.layer_boxes["gradients"].setToolTip("Where the generator wants to move each sample: −∂loss_G/∂x")
        self.frame_every_spin = QSpinBox()
        self.frame_every_spin.setRange(1, 10_000)
        self.frame_every_spin.setValue(20)
        self.frame_every_spin.setToolTip("File → Export sequence: the view captured every this many steps while training")
        self.frame_every_spin.setSuffix(" steps")
        layer_grid.addWidget(QLabel("Timelapse: a frame every"), len(LAYERS), 0)
        layer_grid.addWidget(self.frame_every_spin, len(LAYERS), 1)
        for box in (data, train, hyper, layers):
            self.control_layout.addWidget(box)
        for combo in self.controls.findChildren(QComboBox):  # the left column is 320 px wide
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)

    def _build_view(self) -> None:
        self.plane = GanPlane(PLANE)
        self.plane_box = SquareBox(self.plane)
        self.plane_box.setMinimumSize(300, 300)
        self.curves = GanCurves(vertical=True)
        self.curves.setMinimumWidth(220)
        self.status = QLabel("Press Play (Space) to train, or step D and G one at a time.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        top = QHBoxLayout()
        top.addWidget(self.plane_box, 3)
        top.addWidget(self.curves, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top, 1)
        layout.addWidget(self.status)
        self.space = QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.toggle_play, context=Qt.ShortcutContext.WindowShortcut)
        self.right = QShortcut(QKeySequence(Qt.Key.Key_Right), self, self.step, context=Qt.ShortcutContext.WindowShortcut)
        for shortcut in (self.space, self.right):
            shortcut.setEnabled(False)

    def _connect(self) -> None:
        self.play_button.clicked.connect(self.toggle_play)
        self.step_button.clicked.connect(self.step)
        self.step_d_button.clicked.connect(self.step_d)
        self.step_g_button.clicked.connect(self.step_g)
        self.reset_button.clicked.connect(self.reset)
        self.pretrained_button.clicked.connect(self.start_pretrained)
        self.clear_button.clicked.connect(self.clear_drawing)
        self.distribution_combo.currentIndexChanged.connect(self._on_distribution_changed)
        self.speed_combo.currentIndexChanged.connect(self._on_speed_changed)
        self.plane.pointDrawn.connect(self.add_point)
        for spin in (self.lr_d_spin, self.lr_g_spin):
            spin.valueChanged.connect(self.apply_hyper)
        for widget in (self.d_steps_spin, self.noise_dim_spin, self.width_spin, self.depth_spin):
            widget.valueChanged.connect(self.apply_hyper)
        for combo in (self.optimizer_combo, self.loss_combo, self.noise_kind_combo):
            combo.currentIndexChanged.connect(self.apply_hyper)
        for name, box in self.layer_boxes.items():
            box.toggled.connect(lambda on, name=name: self.show_layer(name, on))
        self._on_distribution_changed()

    # ------------------------------------------------------------------ state
    @property
    def distribution(self) -> str:
        return str(self.distribution_combo.currentData())

    @property
    def busy(self) -> bool:
        """A view being computed (training is not a view: nobody waits for it)."""
        return self.worker is not None and self._job_kind == "view" and self._latest is None and not self._view_shown

    def _new_session(self, pretrained: bool = False) -> Session:
        return Session(
            hyper=self.hyper,
            distribution=self.distribution,
            drawn=self.drawn.copy(),
            max_steps_per_s=float(self.speed_combo.currentData()),
            pretrained=pretrained,
            frame_every=self.frame_every_spin.value(),
            views=frozenset(n for n in LAYERS if self.plane.layer_visible(n)),
        )

    def _ready(self) -> bool:
        """Whether there is data to train on (a drawn distribution needs points)."""
        return self.distribution != "drawn" or len(self.drawn) > 0

    def apply_hyper(self) -> None:
        """Copy the form into the hyper-parameters the trainer reads at every step."""
        hyper = self.hyper
        hyper.lr_d, hyper.lr_g = self.lr_d_spin.value(), self.lr_g_spin.value()
        hyper.optimizer = str(self.optimizer_combo.currentData())
        hyper.loss = str(self.loss_combo.currentData())
        hyper.d_steps = self.d_steps_spin.value()
        hyper.noise_kind = str(self.noise_kind_combo.currentData())
        new_shape = (hyper.noise_dim, hyper.width, hyper.depth) != (
            self.noise_dim_spin.value(), self.width_spin.value(), self.depth_spin.value())  # fmt: skip
        hyper.noise_dim, hyper.width, hyper.depth = self.noise_dim_spin.value(), self.width_spin.value(), self.depth_spin.value()
        if new_shape and not self._quiet:
            self.message.emit("New network shape: G and D start again from random weights.")
        manifold_tip = (
            "G applied to a regular grid of the 2-D noise space"
            if hyper.noise_dim == 2
            else f"G applied to a grid of the first two noise dimensions (the other {hyper.noise_dim - 2} held at 0)"
            if hyper.noise_dim > 2
            else "G applied to a line of the 1-D noise space"
        )
        self.layer_boxes["manifold"].setToolTip(manifold_tip)
        if not self.playing and not self._quiet:
            self.request_view()  # the heat map (loss), the manifold (noise) or new networks

    def show_layer(self, name: str, shown: bool) -> None:
        """Show or hide a layer; a hidden one is not computed while training plays."""
        self.plane.set_layer_visible(name, shown)
        views = frozenset(n for n in LAYERS if self.plane.layer_visible(n))
        self.session.views = views
        if self.session.trainer is not None:
            self.session.trainer.views = views  # one assignment: safe while the worker reads it
        if shown and not self.playing:
            self.request_view()

    def _on_speed_changed(self) -> None:
        value = float(self.speed_combo.currentData())
        self.session.max_steps_per_s = value
        if self.session.trainer is not None:
            self.session.trainer.max_steps_per_s = value or None

    def _on_distribution_changed(self) -> None:
        drawing = self.distribution == "drawn"
        self.plane.set_drawing(drawing)
        self.clear_button.setVisible(drawing)
        self.draw_hint.setVisible(drawing)
        self.plane.set_drawn(self.drawn if drawing else np.zeros((0, 2)))
        if hasattr(self, "session"):
            self.reset(keep_playing=True)

    # ------------------------------------------------------------------ drawing
    def add_point(self, x: float, y: float) -> None:
        """A point drawn on the plane: the drawn distribution grows (G and D keep learning)."""
        if self.distribution != "drawn":
            return
        low, high = PLANE
        point = np.clip(np.array([[x, y]], dtype=np.float32), low, high)
        self.drawn = np.concatenate([self.drawn, point])
        self.plane.set_drawn(self.drawn)
        self.session.drawn = self.drawn.copy()
        self.plane.show_message("")
        if self.session.trainer is not None:
            self.session.sync_real()
            self.plane.set_points(real=self.session.trainer.shown_real())
        else:
            self.request_view()
        self.update_buttons()

    def clear_drawing(self) -> None:
        self.drawn = np.zeros((0, 2), dtype=np.float32)
        self.plane.set_drawn(self.drawn)
        self.reset()

    # ------------------------------------------------------------------ jobs
    def _start(self, function: Any, *args: Any, kind: str, yields: bool = False) -> bool:
        if self.worker is not None or self._closed:
            return False
        self._job_kind = kind
        self._view_shown = False
        callbacks = {"on_yield": self._on_snapshot} if yields else {"on_returned": self._on_snapshot}
        self.worker = self.pool.start(
            function, *args, **callbacks, on_error=self._on_error, on_finished=self._on_finished, name="2-D GAN"
        )
        self.redraw_timer.start()
        self.update_buttons()
        return True

    def request_view(self) -> None:
        """Show the session as it is, soon (after the running job, if any)."""
        if not self._ready():
            self.plane.clear_model()
            self.plane.set_points(real=np.zeros((0, 2)))
            self.plane.show_message("Click or drag here to draw the real data.")
            return
        if self.session.failed:
            return  # nothing to show but the divergence, until Reset
        if self.playing or not self._start(view_of, self.session, kind="view", yields=True):
            self._want_view = not self.playing

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if self.playing:
            return
        if self.session.failed:
            self.message.emit("Training diverged: press Reset to start again.")
            return
        if not self._ready():
            self.message.emit("Draw some points first: click or drag on the plane.")
            return
        if self.worker is not None:  # a view or a step: play when it ends
            self._after_job.append(self.play)
            return
        self.playing = True
        self._start(play_run, self.session, kind="play", yields=True)
        self.status.setText("Training: D steps, then a G step, again and again. <b>Space</b> pauses.")

    def pause(self) -> None:
        self._after_job = [action for action in self._after_job if getattr(action, "is_reset", False)]
        if self.playing and self.worker is not None:
            self.pool.stop(self.worker)
        if self.playing and not self.session.failed:
            self.status.setText("Paused. <b>Space</b> plays on; the step buttons move D and G one update at a time.")
        self.playing = False
        self.update_buttons()

    def step(self) -> None:
        self._single("step")

    def step_d(self) -> None:
        self._single("d")

    def step_g(self) -> None:
        self._single("g")

    def _single(self, kind: str) -> None:
        if self.playing or self.session.failed or not self._ready():
            if not self._ready():
                self.message.emit("Draw some points first: click or drag on the plane.")
            return
        if not self._start(single_step, self.session, kind, kind=kind):
            self._after_job.append(lambda: self._single(kind))

    def reset(self, keep_playing: bool = False, pretrained: bool = False) -> None:
        """G and D start again (random weights, or the pretrained pair); curves and timelapse cleared."""
        was_playing = self.playing and keep_playing
        self.pause()
        if self.worker is not None:  # the old session's job ends on its own; ignore what it sends
            action = lambda: self._reset_now(was_playing, pretrained)  # noqa: E731
            action.is_reset = True  # survives the old job's error
            self._after_job.append(action)
            return
        self._reset_now(was_playing, pretrained)

    def _reset_now(self, play: bool, pretrained: bool) -> None:
        self.session = self._new_session(pretrained)
        self._latest, self._dirty = None, set()
        self.curves.clear_curves()
        self.plane.clear_model()
        self.plane.show_message("")
        self.readout.setText("step 0")
        if pretrained:
            self.status.setText("Loading the pretrained pair (the first time it is trained: a few seconds)…")
        else:
            self.status.setText("New G and D with random weights. Press Play (Space) or step them.")
        self.request_view()
        if play:
            self.play()
        self.update_buttons()

    def start_pretrained(self) -> None:
        """The ring, with G and D already trained (default hyper-parameters)."""
        defaults = type(self.hyper)()
        self._set_form(defaults)
        index = self.distribution_combo.findData("ring")
        if self.distribution_combo.currentIndex() != index:
            self.distribution_combo.blockSignals(True)
            self.distribution_combo.setCurrentIndex(index)
            self.distribution_combo.blockSignals(False)
            self._on_distribution_changed_quietly()
        self.reset(pretrained=True)

    def _on_distribution_changed_quietly(self) -> None:
        self.plane.set_drawing(False)
        self.clear_button.setVisible(False)
        self.draw_hint.setVisible(False)
        self.plane.set_drawn(np.zeros((0, 2)))

    def _set_form(self, hyper: Gan2DHyper) -> None:
        widgets = (self.lr_d_spin, self.lr_g_spin, self.optimizer_combo, self.loss_combo, self.d_steps_spin,
                   self.noise_dim_spin, self.noise_kind_combo, self.width_spin, self.depth_spin)  # fmt: skip
        for widget in widgets:
            widget.blockSignals(True)
        self.lr_d_spin.setValue(hyper.lr_d)
        self.lr_g_spin.setValue(hyper.lr_g)
        for combo, value in ((self.optimizer_combo, hyper.optimizer), (self.loss_combo, hyper.loss),
                             (self.noise_kind_combo, hyper.noise_kind)):  # fmt: skip
            combo.setCurrentIndex(max(0, combo.findData(value)))
        self.d_steps_spin.setValue(hyper.d_steps)
        self.noise_dim_spin.setValue(hyper.noise_dim)
        self.width_spin.setValue(hyper.width)
        self.depth_spin.setValue(hyper.depth)
        for widget in widgets:
            widget.blockSignals(False)
        self._quiet = True  # no view request, no message from here
        self.apply_hyper()
        self._quiet = False

    # ------------------------------------------------------------------ results (GUI thread)
    def _on_snapshot(self, snapshot: Gan2DSnapshot | str) -> None:
        if isinstance(snapshot, str):  # progress in words
            self.status.setText(snapshot)
            return
        session = self.session
        if snapshot.losses:
            session.steps.append(snapshot.step)
            for key in ("d_loss", "g_loss", "d_real", "d_fake"):
                values = session.losses.setdefault(key, [])
                last = values[-1] if values else np.nan
                values.append(snapshot.losses.get(key, last))  # a G step alone has no D loss
            if len(session.steps) > MAX_CURVE_POINTS:
                session.steps = session.steps[::2]
                session.losses = {key: values[::2] for key, values in session.losses.items()}
        for name in ("heat", "manifold", "gradients"):  # the newest of each, drawn at the next redraw
            value = getattr(snapshot, name)
            if value is not None:
                session.last[name] = (snapshot.fake, value) if name == "gradients" else value
                self._dirty.add(name)
        if snapshot.step >= session.next_frame:
            self._capture(snapshot)
        if session.pretrained and not session.announced:
            session.announced = True
            self.status.setText(f"Pretrained pair loaded ({snapshot.step} steps on the ring). Press Play to go on.")
        for note in snapshot.notes:
            self.message.emit(note)
        self._latest = snapshot
        if not self.playing:
            self._redraw()
            self._view_shown = True

    def _capture(self, snapshot: Gan2DSnapshot) -> None:
        session = self.session
        last = session.last
        gradients = snapshot.gradients if snapshot.gradients is not None else None
        session.frames.append((snapshot.step, snapshot.real, snapshot.fake, last.get("heat"), last.get("manifold"), gradients))
        if len(session.frames) > MAX_FRAMES:  # bounded memory: keep every other one, capture half as often
            session.frames = session.frames[::2]
            session.frame_every *= 2
        session.next_frame = snapshot.step + session.frame_every

    def _redraw(self) -> None:
        snapshot, self._latest = self._latest, None
        if snapshot is None:
            if self.worker is None:
                self.redraw_timer.stop()
            return
        plane = self.plane
        if self.distribution == "drawn" and len(self.drawn) == 0:
            plane.clear_model()
            return
        if snapshot.real is not self._shown_real:  # the same array while the data is the same
            plane.set_points(real=snapshot.real)
            self._shown_real = snapshot.real
        plane.set_points(fake=snapshot.fake)
        last, dirty, self._dirty = self.session.last, self._dirty, set()
        if "heat" in dirty:
            plane.set_heat(last["heat"])
        if "manifold" in dirty:
            plane.set_manifold(last["manifold"])
        if "gradients" in dirty:
            plane.set_gradients(*last["gradients"])
        self.curves.set_history(self.session.steps, self.session.losses)
        rate = f" · {snapshot.steps_per_second:,.0f} steps/s" if self.playing and snapshot.steps_per_second else ""
        losses = snapshot.losses
        scores = f" · D(real) {losses['d_real']:.2f} · D(fake) {losses['d_fake']:.2f}" if "d_real" in losses else ""
        self.readout.setText(f"step {snapshot.step} · D updates {snapshot.d_updates}{rate}<br>{scores.lstrip(' ·')}")

    def _on_error(self, error: Exception) -> None:
        from models.training import DivergedError

        self.playing = False
        self._after_job = [action for action in self._after_job if getattr(action, "is_reset", False)]
        if isinstance(error, DivergedError):
            self.session.failed = str(error)
            text = (
                f"<b>Training diverged and was paused:</b> {error}. The numbers grew until they were no "
                "longer numbers (NaN or infinite). Press <b>Reset</b> to start again, perhaps with smaller "
                "learning rates or another loss."
            )
            self.status.setText(text)
            self.plane.show_message("Training diverged (NaN or Inf).<br>Press <b>Reset</b> to start again.")
            self.message.emit(f"Training diverged: {error}. Press Reset to start again.")
        else:
            self.status.setText(f"<b>Stopped:</b> {format_error(error)}")
            self.message.emit(f"2-D GAN: {format_error(error)}")

    def _on_finished(self) -> None:
        self.worker = None
        self.playing = False
        if self._closed:
            self.redraw_timer.stop()
            return
        self._redraw()
        pending, self._after_job = self._after_job, []
        for action in pending:
            action()
        if self._want_view and self.worker is None:
            self._want_view = False
            self.request_view()
        self.update_buttons()

    def update_buttons(self) -> None:
        failed = bool(self.session.failed) if hasattr(self, "session") else False
        self.play_button.setText("Pause" if self.playing else "Play")
        for button in (self.step_button, self.step_d_button, self.step_g_button):
            button.setEnabled(not self.playing and not failed)
        self.play_button.setEnabled(not failed)

    # ------------------------------------------------------------------ chapter hooks
    def set_active(self, active: bool) -> None:
        super().set_active(active)
        for shortcut in (self.space, self.right):
            shortcut.setEnabled(active)
        if not active:
            self.pause()  # the plane is not on show: no training nobody watches

    def export_job(self) -> ExportJob | None:
        """The timelapse of the plane captured while training (the layers now shown)."""
        frames = list(self.session.frames)
        if not frames:
            self.message.emit("Nothing to export yet: train a little first (Play or Step).")
            return None
        shown = {name: self.plane.layer_visible(name) for name in LAYERS}

        def render() -> Any:
            for step, real, fake, heat, manifold, gradients in frames:
                yield render_frame(
                    PLANE,
                    real if shown["real"] else np.zeros((0, 2)),
                    fake if shown["fake"] else np.zeros((0, 2)),
                    heat if shown["heat"] else None,
                    manifold if shown["manifold"] else None,
                    gradients if shown["gradients"] and shown["fake"] else None,
                    size=EXPORT_SIZE,
                )

        hyper = {key: value for key, value in vars(self.hyper).items()}
        params = {
            "mode": "2d",
            "distribution": self.session.distribution,
            "drawn_points": self.session.drawn.round(3).tolist() if self.session.distribution == "drawn" else None,
            "seed": self.session.seed,
            "pretrained": self.session.pretrained,
            "hyper": hyper,
            "every": self.session.frame_every,
            "steps": [frame[0] for frame in frames],
            "layers": [name for name in LAYERS if shown[name]],
        }
        return ExportJob(render, len(frames), params, default_name=f"gan-2d-{self.session.distribution}")

    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("points_distribution", self.distribution)
        settings.setValue("points_drawn", json.dumps(self.drawn.round(4).tolist()))
        for key in ("lr_d", "lr_g", "optimizer", "loss", "d_steps", "noise_dim", "noise_kind", "width", "depth"):
            settings.setValue(f"points_{key}", getattr(self.hyper, key))
        settings.setValue("points_speed", self.speed_combo.currentIndex())
        settings.setValue("points_frame_every", self.frame_every_spin.value())
        for name, box in self.layer_boxes.items():
            settings.setValue(f"points_show_{name}", box.isChecked())

    def restore_settings(self, settings: QSettings) -> None:
        from models.gan2d import LOSSES, NOISE_KINDS, OPTIMIZERS, Gan2DHyper

        hyper = Gan2DHyper(**vars(self.hyper))
        checks = {
            "lr_d": (float, lambda v: 0 <= v <= 1), "lr_g": (float, lambda v: 0 <= v <= 1),
            "optimizer": (str, lambda v: v in OPTIMIZERS), "loss": (str, lambda v: v in LOSSES),
            "d_steps": (int, lambda v: 1 <= v <= 10), "noise_dim": (int, lambda v: 1 <= v <= 8),
            "noise_kind": (str, lambda v: v in NOISE_KINDS), "width": (int, lambda v: 2 <= v <= 256),
            "depth": (int, lambda v: 0 <= v <= 5),
        }  # fmt: skip
        for key, (kind, valid) in checks.items():
            if (value := read_setting(settings, f"points_{key}", kind, valid)) is not None:
                setattr(hyper, key, value)
        self._set_form(hyper)
        if (drawn := read_setting(settings, "points_drawn", _points)) is not None:
            self.drawn = drawn
        if (speed := read_setting(settings, "points_speed", int, lambda v: 0 <= v < len(SPEEDS))) is not None:
            self.speed_combo.setCurrentIndex(speed)
        if (every := read_setting(settings, "points_frame_every", int, lambda v: 1 <= v <= 10_000)) is not None:
            self.frame_every_spin.setValue(every)
        for name, box in self.layer_boxes.items():
            if (shown := read_setting(settings, f"points_show_{name}", as_bool)) is not None:
                box.setChecked(shown)
        keys = [key for key, _ in DISTRIBUTIONS]
        distribution = read_setting(settings, "points_distribution", str, lambda v: v in keys)
        index = self.distribution_combo.findData(distribution or self.distribution)
        if index != self.distribution_combo.currentIndex():
            self.distribution_combo.setCurrentIndex(index)  # resets
        else:
            self._on_distribution_changed()

    def shutdown(self) -> None:
        self._closed = True
        self._after_job.clear()
        self.redraw_timer.stop()
        if self.worker is not None:
            self.pool.stop(self.worker)
        self.playing = False


def _points(value: Any) -> np.ndarray:
    """Drawn points from their JSON text: float32 (m, 2) inside the plane."""
    points = np.asarray(json.loads(value), dtype=np.float32).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise ValueError("drawn points must be numbers")
    return np.clip(points, *PLANE)
