"""The Objective tab: training made visible — one digit, one t, the true noise ε and the U-Net's guess ε̂."""

from __future__ import annotations

import random
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence, QShortcut
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
)
from superqt import QLabeledSlider

from explorer.chapters.common import ViewJob, as_bool, in_worker, read_setting, torch_threads_here
from explorer.chapters.diffusion.backend import MAX_SEED, DiffusionTab
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.readout import ReadoutLabel

if TYPE_CHECKING:
    from models.diffusion import DiffusionModel, NoisePrediction

EPS_LEVELS = (-3.0, 3.0)  # ε and ε̂: ±3 standard deviations, as the Reverse tab draws ε̂
IMAGE_LEVELS = (-1.0, 1.0)  # x₀ and x_t in model units
ERROR_LEVELS = (-1.0, 1.0)  # ε̂ − ε drawn 3× stronger than ε: it is small
CURVE_DIGITS = 64  # fresh digits per curve: within 8% of all 500's values, and a few seconds on a CPU
CURVE_SEED = 7
T_KEY_STEP = 10  # ← and → move t this much
PANELS = {
    "x0": "x₀: the clean digit",
    "noise": "ε: the true noise",
    "x_t": "x_t: what the U-Net sees",
    "eps_hat": "ε̂: the U-Net's guess",
    "error": "ε̂ − ε (contrast ×3)",
}


def curve_timesteps(T: int) -> list[int]:
    """Where the loss is measured: evenly over 0 … T−1, denser near 0 where it changes fastest."""
    even = np.linspace(0, T - 1, 24).round().astype(int)
    early = np.array([1, 2, 4, 8, 16]) * T // 1000
    return sorted({int(t) for t in np.concatenate([even, early]) if 0 <= t < T})


@dataclass(frozen=True)
class ObjectiveResult:
    """One digit noised to one t, and what the model made of it."""

    prediction: NoisePrediction
    abar: float  # ᾱ_t
    index: int  # the digit's index in the fresh digits
    label: int | None  # the label the model was given (its null class: none)


@in_worker
def objective_at(model: DiffusionModel, image: np.ndarray, index: int, t: int, seed: int,
                 label: int | None) -> ObjectiveResult:
    """Noise one uint8 digit (28, 28) to step t with seeded ε and ask the model for ε̂."""
    from models.diffusion import predict_noise

    prediction = predict_noise(model, image[None], t, seed, None if label is None else [label])
    abar = float(model.scheduler("ddpm").alphas_cumprod[t])
    return ObjectiveResult(prediction, abar, index, label)


def loss_curve(model: DiffusionModel, images: np.ndarray, labels: np.ndarray | None,
               timesteps: list[int], first: int = 0) -> Iterator[tuple[int, float]]:
    """Worker generator: (position, mean ‖ε̂ − ε‖²) for each timestep from ``first`` on, so it can stop between."""
    from models.diffusion import loss_by_timestep

    torch_threads_here()
    for i in range(first, len(timesteps)):
        t = timesteps[i]
        yield i, float(loss_by_timestep(model, images, [t], seed=CURVE_SEED + i, class_labels=labels)[0])


class ObjectiveTab(DiffusionTab):
    """Pick a digit and t; see x₀, ε, x_t, ε̂ and ε̂ − ε, the MSE, and the loss against t."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.curve_digits = CURVE_DIGITS
        self.index = 0  # the digit shown, an index into self.digits
        self.result: ObjectiveResult | None = None
        self.job = ViewJob(self.pool, self._show, name="Objective")
        self.curve_worker = None
        self.curve_key: tuple | None = None  # what the curve on show (or being computed) is of
        self.curve_t: list[int] = []
        self.curve_loss: list[float] = []
        # Finished curves: model -> {(label given, digits): (timesteps, losses)}; forgotten with the model.
        self._curves: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._build_controls()
        self._build_views()
        self._build_shortcuts()
        self._connect()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        self.class_combo = QComboBox()
        self.class_combo.addItem("any digit", None)
        for digit in range(10):
            self.class_combo.addItem(f"digit {digit}", digit)
        self.class_combo.setToolTip("Step through the fresh digits of this class only")
        self.previous_button = QPushButton("◀")
        self.previous_button.setToolTip("Previous fresh digit (Page Up)")
        self.previous_button.setShortcut(QKeySequence(Qt.Key.Key_PageUp))
        self.next_button = QPushButton("▶")
        self.next_button.setToolTip("Next fresh digit (Page Down)")
        self.next_button.setShortcut(QKeySequence(Qt.Key.Key_PageDown))
        for button in (self.previous_button, self.next_button):
            button.setFixedWidth(36)
        self.digit_label = QLabel()
        self.digit_label.setToolTip("Fresh digits: generated with a seed no model was trained on")
        self.t_slider = QLabeledSlider(Qt.Orientation.Horizontal)
        self.t_slider.setRange(0, 999)
        self.t_slider.setValue(300)
        self.t_slider.setPageStep(50)
        self.t_slider.setToolTip("The timestep: how much noise is mixed in. 0 is almost clean, T − 1 almost "
                                 f"pure noise (← and → move it by {T_KEY_STEP})")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip("Seed of the noise ε: the same seed gives the same ε")
        self.new_noise_button = QPushButton("New noise (N)")
        self.new_noise_button.setShortcut(QKeySequence(Qt.Key.Key_N))
        self.new_noise_button.setToolTip("Draw another ε (a random seed)")
        self.label_buttons = {True: QRadioButton("Given"), False: QRadioButton("Not given (null class)")}
        self.label_buttons[True].setToolTip("Class-conditional: the U-Net is told which digit it is")
        self.label_buttons[False].setToolTip("The U-Net gets the null class, as in unconditional "
                                            "generation (one training step in ten)")
        self.label_buttons[True].setChecked(True)
        self.label_group = QButtonGroup(self)
        for button in self.label_buttons.values():
            self.label_group.addButton(button)

        box = QGroupBox("The training objective")
        form = QFormLayout(box)
        digit_row = QHBoxLayout()
        digit_row.addWidget(self.class_combo, 1)
        digit_row.addWidget(self.previous_button)
        digit_row.addWidget(self.next_button)
        form.addRow("Digit", digit_row)
        form.addRow("", self.digit_label)
        form.addRow("t", self.t_slider)
        noise_row = QHBoxLayout()
        noise_row.addWidget(self.seed_spin, 1)
        noise_row.addWidget(self.new_noise_button)
        form.addRow("Noise seed", noise_row)
        labels = QVBoxLayout()
        for button in self.label_buttons.values():
            labels.addWidget(button)
        form.addRow("Label", labels)
        self.control_layout.addWidget(box)
        note = QLabel(
            "One training step does exactly this, for a batch of digits and a random t each: "
            "mix x₀ with ε, ask for ε̂, and lower the mean of (ε̂ − ε)²."
        )
        note.setWordWrap(True)
        self.control_layout.addWidget(note)

    def _build_views(self) -> None:
        self.equation = ReadoutLabel(1)
        self.equation.setToolTip("The forward jump: signal weight √ᾱ_t, noise weight √(1 − ᾱ_t); "
                                 "their squares add up to 1")
        font = self.equation.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.equation.setFont(font)
        self.panels = {key: ImagePanel(title) for key, title in PANELS.items()}
        row = QHBoxLayout()
        row.setSpacing(6)
        for panel in self.panels.values():
            panel.view_box.setMouseEnabled(x=False, y=False)
            panel.setMinimumSize(110, 130)
            row.addWidget(panel)

        self.plot = pg.PlotWidget()
        self.plot.setTitle("The model's loss against t: mean (ε̂ − ε)² on fresh digits", size="10pt")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLogMode(x=False, y=True)
        self.plot.setLabel("bottom", "t")
        self.plot.setLabel("left", "MSE (log scale)")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.curve = self.plot.plot(pen=pg.mkPen("#1f77b4", width=2), symbol="o", symbolSize=4,
                                    symbolBrush="#1f77b4", symbolPen=None)
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d62728", width=1.5))
        self.plot.addItem(self.marker)
        self.point = pg.ScatterPlotItem(size=9, brush=pg.mkBrush("#d62728"), pen=None)
        self.plot.addItem(self.point)
        self.plot.setMinimumHeight(150)
        self.hint = QLabel(
            "<b>Reading the curve</b> (red dot: the digit shown). The loss is largest at small t and "
            "falls to almost nothing at large t: for the shipped model about 0.72 at t = 0, 0.03 at t = 100, "
            "0.009 at t = 500, 0.001 at t = 700 and 0.0001 at t = T − 1 (all 500 fresh digits). "
            "Near t = 0 the noise is a faint film (√(1 − ᾱ_t) = 0.01 at t = 0) that cannot be told apart "
            "from the digit's own soft edges, so ε̂ is mostly a guess. Near t = T the image is "
            "almost all noise, x_t ≈ ε, and ε̂ ≈ x_t is nearly exact. A small ε-error is not a small "
            "image error there: the guess of the clean digit, x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t, "
            "multiplies it by √(1 − ᾱ_t)/√ᾱ_t, which is about 160 at t = T − 1."
        )
        self.hint.setWordWrap(True)
        self.hint.setTextFormat(Qt.TextFormat.RichText)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.equation)
        layout.addLayout(row, 3)
        layout.addWidget(self.plot, 3)
        layout.addWidget(self.hint)

    def _build_shortcuts(self) -> None:
        # Window-wide keys, enabled only while this tab is current (set_active).
        keys = {Qt.Key.Key_Left: lambda: self.nudge_t(-T_KEY_STEP), Qt.Key.Key_Right: lambda: self.nudge_t(T_KEY_STEP)}
        self.shortcuts = [QShortcut(QKeySequence(key), self, action, context=Qt.ShortcutContext.WindowShortcut)
                          for key, action in keys.items()]
        for shortcut in self.shortcuts:
            shortcut.setEnabled(False)

    def _connect(self) -> None:
        self.class_combo.currentIndexChanged.connect(self._on_class_changed)
        self.previous_button.clicked.connect(lambda: self.step_digit(-1))
        self.next_button.clicked.connect(lambda: self.step_digit(+1))
        self.t_slider.valueChanged.connect(self._on_t_changed)
        self.seed_spin.valueChanged.connect(self.update_view)
        self.new_noise_button.clicked.connect(self.new_noise)
        self.label_buttons[True].toggled.connect(self._on_label_choice)

    # ------------------------------------------------------------------ the digit, t and the noise
    @property
    def t(self) -> int:
        return self.t_slider.value()

    def set_t(self, t: int) -> None:
        self.t_slider.setValue(int(t))

    def nudge_t(self, delta: int) -> None:
        self.set_t(min(self.t_slider.maximum(), max(0, self.t + delta)))

    @property
    def label_given(self) -> bool:
        return self.holder.conditional and self.label_buttons[True].isChecked()

    def model_label(self) -> int | None:
        """The label the U-Net gets for the digit shown: its class, the null class, or none."""
        if not self.holder.conditional:
            return None
        return int(self.digits.labels[self.index]) if self.label_given else int(self.holder.model.null_class)

    def _candidates(self) -> np.ndarray:
        digit = self.class_combo.currentData()
        if digit is None:
            return np.arange(len(self.digits.labels))
        return np.flatnonzero(self.digits.labels == digit)

    def step_digit(self, direction: int) -> None:
        """The previous (−1) or next (+1) fresh digit of the chosen class, wrapping around."""
        candidates = self._candidates()
        if len(candidates) == 0:
            return
        if direction > 0:
            later = candidates[candidates > self.index]
            self.index = int(later[0] if len(later) else candidates[0])
        else:
            earlier = candidates[candidates < self.index]
            self.index = int(earlier[-1] if len(earlier) else candidates[-1])
        self.update_view()

    def set_digit(self, index: int) -> None:
        self.index = int(index) % len(self.digits.labels)
        self.update_view()

    def _on_class_changed(self) -> None:
        digit = self.class_combo.currentData()
        if digit is not None and self.digits.labels[self.index] != digit:
            self.step_digit(+1)
        else:
            self.update_view()

    def new_noise(self) -> None:
        self.seed_spin.setValue(random.randint(0, MAX_SEED))

    def _on_t_changed(self, t: int) -> None:
        self.marker.setValue(t)
        self.update_view()

    def _on_label_choice(self) -> None:
        self.update_view()
        self.update_curve()

    # ------------------------------------------------------------------ the view
    def jobs(self) -> list[ViewJob]:
        return [self.job]

    def refresh(self) -> None:
        T = self.holder.num_train_timesteps
        self.t_slider.blockSignals(True)
        self.t_slider.setRange(0, T - 1)
        self.t_slider.blockSignals(False)
        self.plot.setXRange(0, T - 1, padding=0.02)
        for button in self.label_buttons.values():
            button.setEnabled(self.holder.conditional)
        self.label_buttons[True].setText("Given" if self.holder.conditional else "Given (this model takes none)")
        self.update_view()
        self.update_curve()

    def update_view(self) -> None:
        label = self.model_label()
        digit = int(self.digits.labels[self.index])
        self.digit_label.setText(f"fresh digit no. {self.index + 1} of {len(self.digits.labels)}: a {digit}")
        self.job.submit(objective_at, self.holder.model, self.digits.images[self.index], self.index,
                        self.t, self.seed_spin.value(), label)

    def _show(self, result: ObjectiveResult) -> None:
        self.result = result
        p = result.prediction
        arrays = {"x0": p.x0[0], "noise": p.noise[0], "x_t": p.x_t[0], "eps_hat": p.eps_hat[0], "error": p.error[0]}
        levels = {"x0": IMAGE_LEVELS, "noise": EPS_LEVELS, "x_t": IMAGE_LEVELS, "eps_hat": EPS_LEVELS,
                  "error": ERROR_LEVELS}
        for key, panel in self.panels.items():
            panel.set_image(arrays[key], levels[key])
        signal, noise = np.sqrt(result.abar), np.sqrt(1.0 - result.abar)
        told = "no label" if result.label is None or result.label == self.holder.model.null_class \
            else f"label {result.label}"
        self.equation.setText(
            f"t = {p.t}:&nbsp; x<sub>t</sub> = <b>{signal:.3f}</b>·x₀ + <b>{noise:.3f}</b>·ε"
            f"&nbsp;&nbsp;&nbsp; ({told})&nbsp;&nbsp;&nbsp; MSE(ε̂, ε) = <b>{p.mse:.3g}</b>"
        )
        self.marker.setValue(p.t)
        self.point.setData([p.t], [np.log10(max(p.mse, 1e-12))])

    # ------------------------------------------------------------------ the loss against t
    def _curve_request(self) -> tuple[tuple, np.ndarray, np.ndarray | None]:
        count = min(self.curve_digits, len(self.digits.images))
        images = self.digits.images[-count:]  # the same fresh digits every time
        labels = None
        if self.holder.conditional:
            labels = self.digits.labels[-count:] if self.label_given \
                else np.full(count, self.holder.model.null_class)
        key = (self.holder.model, self.label_given, count)  # the model itself: an id may be reused
        return key, images, labels

    def update_curve(self) -> None:
        """Show the curve of the model in use; measure what is missing of it while the tab is shown."""
        key, images, labels = self._curve_request()
        if key != self.curve_key:
            self._stop_curve()
            self.curve_key = key
            if (done := self._curves.get(key[0], {}).get(key[1:])) is not None:
                self.curve_t, self.curve_loss = (list(v) for v in done)
            else:
                self.curve_t, self.curve_loss = curve_timesteps(self.holder.num_train_timesteps), []
            self._draw_curve()
        done = len(self.curve_loss)
        if done == len(self.curve_t) or not self.active or self.curve_worker is not None:
            return
        self.plot.setTitle("The model's loss against t: measuring…", size="10pt")
        worker = self.curve_worker = self.pool.start(
            loss_curve, self.holder.model, images, labels, list(self.curve_t), done,
            on_yield=lambda item: self._on_curve_point(key, item),
            on_finished=lambda: self._curve_finished(worker, key), name="Loss against t",
        )  # fmt: skip

    def _on_curve_point(self, key: tuple, item: tuple[int, float]) -> None:
        if key == self.curve_key and item[0] == len(self.curve_loss):
            self.curve_loss.append(item[1])
            self._draw_curve()

    def _curve_finished(self, worker: Any, key: tuple) -> None:
        if worker is not self.curve_worker:
            return  # an older run, stopped
        self.curve_worker = None
        if key == self.curve_key and len(self.curve_loss) == len(self.curve_t):
            self._curves.setdefault(key[0], {})[key[1:]] = (list(self.curve_t), list(self.curve_loss))
            self.plot.setTitle(f"The model's loss against t: mean (ε̂ − ε)² on {key[2]} fresh digits", size="10pt")

    def _draw_curve(self) -> None:
        n = len(self.curve_loss)
        self.curve.setData(self.curve_t[:n], np.maximum(self.curve_loss, 1e-12) if n else [])

    def _stop_curve(self) -> None:
        if self.curve_worker is not None:
            self.pool.stop(self.curve_worker)
            self.curve_worker = None

    def set_active(self, active: bool) -> None:
        super().set_active(active)
        for shortcut in self.shortcuts:
            shortcut.setEnabled(active)
        if active:
            self.update_curve()  # goes on where it stopped
        else:
            self._stop_curve()  # leave the cores to the tab on show

    @property
    def busy(self) -> bool:
        return self.curve_worker is not None

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("objective_t", self.t)
        settings.setValue("objective_seed", self.seed_spin.value())
        settings.setValue("objective_digit", self.index)
        settings.setValue("objective_class", self.class_combo.currentIndex())
        settings.setValue("objective_label", self.label_buttons[True].isChecked())

    def restore_settings(self, settings: QSettings) -> None:
        count = len(self.digits.labels)
        if (index := read_setting(settings, "objective_digit", int, lambda v: 0 <= v < count)) is not None:
            self.index = index
        if (choice := read_setting(settings, "objective_class", int, lambda v: 0 <= v < self.class_combo.count())) is not None:
            self.class_combo.blockSignals(True)
            self.class_combo.setCurrentIndex(choice)
            self.class_combo.blockSignals(False)
        if (given := read_setting(settings, "objective_label", as_bool)) is not None:
            self.label_buttons[given].setChecked(True)
        if (seed := read_setting(settings, "objective_seed", int, lambda v: 0 <= v <= MAX_SEED)) is not None:
            self.seed_spin.setValue(seed)
        if (t := read_setting(settings, "objective_t", int, lambda v: 0 <= v <= self.t_slider.maximum())) is not None:
            self.set_t(t)
        self.update_view()

    def shutdown(self) -> None:
        self.job.cancel()
        self._stop_curve()
