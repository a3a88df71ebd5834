"""The Train tab: train the DDPM from the chapter, with live losses, the loss against t and samples."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)

from explorer.chapters.common import as_bool, read_setting, tile
from explorer.chapters.diffusion.backend import DiffusionTab
from explorer.chapters.diffusion.training import (
    PREVIEW_COUNT,
    PREVIEW_STEPS,
    Probe,
    TrainingSession,
    gui_recipe,
    training_run,
)
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.loss_curves import LossCurves
from explorer.workers import format_error

if TYPE_CHECKING:
    from models.diffusion import DiffusionConfig, DiffusionModel
    from models.training import TrainingSnapshot

REDRAW_S = 0.5  # curves and read-outs redraw at most twice a second: the GUI thread shares the GIL with training
MAX_STEPS = 100_000
PROBE_DIGITS = 64  # fresh digits for the loss against t while training
LR_DEFAULTS = {True: 2e-4, False: 2e-3}  # fine-tune gently; from scratch, the shipped recipe's rate


class TrainTab(DiffusionTab):
    """Start, stop and resume one training run; "Use this model" puts its weights in every tab."""

    DATA_COUNT = 20_000  # training digits (cached on disk after the first run)
    BATCH_SIZE = 32

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_count = self.DATA_COUNT
        self.probe_digits = PROBE_DIGITS
        self.scratch_config: DiffusionConfig | None = None  # None: the architecture of the model in use
        self.session: TrainingSession | None = None
        self.trained: tuple[DiffusionModel, dict[str, Any]] | None = None  # what Use and Save take
        self.worker = None
        self._error = ""
        self._run_start = 0
        self._stopping = False
        self._closed = False
        self._last_redraw = 0.0
        self._last: TrainingSnapshot | None = None
        self._build_controls()
        self._build_view()
        self._connect()
        self.update_buttons()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        self.start_buttons = {True: QRadioButton("The model in use (fine-tune)"),
                              False: QRadioButton("Scratch (random weights)")}
        self.start_buttons[True].setToolTip("Go on training the model every tab shows (the shipped DDPM unless "
                                            "you loaded or trained another); it is copied, not changed")
        self.start_buttons[False].setToolTip("A new U-Net of the same architecture with random weights: "
                                             "digits appear after a few hundred steps")
        self.start_buttons[True].setChecked(True)
        self.start_group = QButtonGroup(self)
        for button in self.start_buttons.values():
            self.start_group.addButton(button)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, MAX_STEPS)
        self.steps_spin.setSingleStep(100)
        self.steps_spin.setValue(300)
        self.steps_spin.setToolTip("Optimisation steps for Start (and for each Resume of a finished run)")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(4, 256)
        self.batch_spin.setValue(self.BATCH_SIZE)
        self.batch_spin.setToolTip("Digits per step, each with its own random t and noise")
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-5, 1e-2)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setValue(LR_DEFAULTS[True])
        self.lr_spin.setToolTip("AdamW learning rate, after a short warm-up. Choosing where to start "
                                "sets a sensible one: 0.0002 to fine-tune, 0.002 from scratch")
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Begin a new run with these settings")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; Resume goes on from there")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Go on training the last run's model, with its batch size and learning rate: "
                                      "to its target if it was stopped, else Steps more")
        self.progress = QProgressBar()
        self.progress.setFormat("step %v of %m")
        self.progress.setRange(0, self.steps_spin.value())
        self.progress.setValue(0)
        self.speed_label = QLabel(" ")
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Put the weights trained here (their running average) in every tab")
        self.save_button = QPushButton("Save weights…")
        self.save_button.setToolTip("Write the weights trained here: .safetensors, .json config and .md card")

        box = QGroupBox("Train the DDPM")
        form = QFormLayout(box)
        starts = QVBoxLayout()
        for button in self.start_buttons.values():
            starts.addWidget(button)
        form.addRow("Start from", starts)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_spin)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(button)
        form.addRow(buttons)
        form.addRow(self.progress)
        form.addRow(self.speed_label)
        use = QHBoxLayout()
        use.addWidget(self.use_button)
        use.addWidget(self.save_button)
        form.addRow(use)
        self.control_layout.addWidget(box)
        note = QLabel(
            "Training runs here, on this computer: a few steps per second on a CPU. The samples and the loss "
            "against t use the running average of the weights (EMA). From scratch the loss falls fastest in the "
            "first hundred steps, but after 300 steps (batch 32) the samples are still rough strokes: the shipped "
            "model trained for 8,000 steps of 64 digits (its card in assets/weights says how)."
        )
        note.setWordWrap(True)
        self.control_layout.addWidget(note)

    def _build_view(self) -> None:
        self.curves = LossCurves([
            ("loss", "Loss: min-SNR weighted (what is minimised)", "#1f77b4"),
            ("mse", "MSE (ε̂ − ε)², unweighted", "#ff7f0e"),
        ])  # fmt: skip
        self.curves.set_steps(0, self.steps_spin.value())

        self.t_plot = pg.PlotWidget()
        self.t_plot.setTitle("Loss against t on fresh digits", size="10pt")
        self.t_plot.setMenuEnabled(False)
        self.t_plot.setMouseEnabled(x=False, y=False)
        self.t_plot.hideButtons()
        self.t_plot.setLogMode(x=False, y=True)
        self.t_plot.setLabel("bottom", "t")
        self.t_plot.showGrid(x=True, y=True, alpha=0.2)
        self.t_plot.setXRange(0, self.holder.num_train_timesteps - 1, padding=0.02)
        self.t_plot.setYRange(-4.5, 0.5, padding=0)  # log10: 0.00003 … 3
        self.t_plot.setLabel("left", "MSE (log scale)")
        self.t_plot.addLegend(offset=(-10, 10))
        self.first_t_curve = self.t_plot.plot(pen=pg.mkPen("#999999", width=1.5, style=Qt.PenStyle.DashLine),
                                              name="at the start")
        self.t_curve = self.t_plot.plot(pen=pg.mkPen("#1f77b4", width=2), symbol="o", symbolSize=5,
                                        symbolBrush="#1f77b4", symbolPen=None, name="now")
        self.preview_panel = ImagePanel(f"Samples of 0 … {PREVIEW_COUNT - 1} (DDIM-{PREVIEW_STEPS}, same seed), live")
        self.preview_panel.view_box.setMouseEnabled(x=False, y=False)
        self.preview_panel.set_image(tile(np.zeros((PREVIEW_COUNT, 28, 28), np.uint8), PREVIEW_COUNT, gap=1, fill=90))
        self.status = QLabel("Choose where to start and press Start.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.curves, 3)
        layout.addWidget(self.t_plot, 3)
        layout.addWidget(self.preview_panel, 2)
        layout.addWidget(self.status)

    def _connect(self) -> None:
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.use_button.clicked.connect(self.use_model)
        self.save_button.clicked.connect(self.save_dialog)
        self.start_buttons[True].toggled.connect(self._on_start_choice)

    def _on_start_choice(self, fine_tune: bool) -> None:
        self.lr_spin.setValue(LR_DEFAULTS[fine_tune])

    def refresh(self) -> None:
        self.t_plot.setXRange(0, self.holder.num_train_timesteps - 1, padding=0.02)

    # ------------------------------------------------------------------ runs
    @property
    def fine_tune(self) -> bool:
        return self.start_buttons[True].isChecked()

    @property
    def running(self) -> bool:
        return self.worker is not None

    @property
    def busy(self) -> bool:
        return False  # training is not a view: the chapter does not wait for it

    def start(self) -> None:
        """A new run: a copy of the model in use, or random weights, trained for Steps steps."""
        import copy

        if self.running:
            return
        steps = self.steps_spin.value()
        if self.fine_tune:
            model = copy.deepcopy(self.holder.model)
            config, start = model.config, f"fine-tuned from the model in use ({self.holder.origin})"
        else:
            model, config, start = None, self.scratch_config or self.holder.model.config, "trained from scratch"
        recipe = gui_recipe(config, steps, self.batch_spin.value(), self.lr_spin.value(), self.data_count,
                            self.fine_tune)
        count = min(self.probe_digits, len(self.digits.images))
        self.session = TrainingSession(recipe, model, start, self.device, self.digits.images[:count],
                                       self.digits.labels[:count], steps)
        self.trained = None
        self.curves.clear_curves()
        self.first_t_curve.setData([], [])
        self.t_curve.setData([], [])
        self._run(steps)

    def resume(self) -> None:
        """Go on with the last run: to its target if it was stopped early, else Steps more."""
        session = self.session
        if self.running or session is None or session.trainer is None or session.failed:
            return
        if session.step >= session.target:
            session.target = session.step + self.steps_spin.value()
        self._run(session.target - session.step)

    def stop(self) -> None:
        if self.worker is not None:
            self._stopping = True
            self.status.setText("Stopping…")
            self.pool.stop(self.worker)

    def _run(self, steps: int) -> None:
        session = self.session
        self._error, self._stopping, self._last = "", False, None
        self._run_start = session.step
        self.progress.setRange(0, session.target)
        self.progress.setValue(session.step)
        self.curves.set_steps(0, session.target)
        self.worker = self.pool.start(
            training_run, session, steps,
            on_yield=self._on_update, on_error=self._on_error, on_finished=self._on_finished, name="Training",
        )  # fmt: skip
        self.update_buttons()

    def _on_update(self, item: str | TrainingSnapshot | Probe | None) -> None:
        if item is None:
            return  # a probe in progress
        if isinstance(item, str):
            self.status.setText(item)
            return
        if isinstance(item, Probe):
            self._show_probe(item)
            return
        session = self.session
        session.steps.append(item.step)
        for key, value in item.losses.items():
            session.losses.setdefault(key, []).append(value)
        self._last = item
        now = time.monotonic()
        if now - self._last_redraw < REDRAW_S and not item.done:
            return
        self._last_redraw = now
        self._redraw()

    def _redraw(self) -> None:
        session, item = self.session, self._last
        self.curves.set_history(session.steps, session.losses)
        self.progress.setValue(session.step)
        if item is None:
            return
        steps_per_s = item.samples_per_second / session.recipe.batch_size
        self.speed_label.setText(f"{steps_per_s:.1f} steps/s · {item.samples_per_second:,.0f} digits/s")
        losses = " · ".join(f"{key} {value:.4f}" for key, value in item.losses.items())
        self.status.setText(f"Step {item.step} of {item.total_steps}: {losses} · {session.wall_s:.0f} s of training")

    def _show_probe(self, probe: Probe) -> None:
        self.preview_panel.set_image(probe.preview)
        self.preview_panel.set_title(f"Samples of 0 … {PREVIEW_COUNT - 1} at step {probe.step} "
                                     f"(DDIM-{PREVIEW_STEPS}, same seed)")
        losses = np.maximum(probe.losses, 1e-12)
        first = self.session.probes[0] if self.session is not None and self.session.probes else probe
        self.first_t_curve.setData(first.timesteps, np.maximum(first.losses, 1e-12))
        self.t_curve.setData(probe.timesteps, losses)
        self.t_plot.setTitle(f"Loss against t on {len(self.session.probe_images)} fresh digits: "
                             f"step {first.step} (dashed) and step {probe.step}", size="10pt")

    def _on_error(self, error: Exception) -> None:
        from models.training import DivergedError

        self._error = format_error(error)
        if self.session is not None:
            self.session.failed = self._error
        advice = " Try a smaller learning rate, or Start again." if isinstance(error, DivergedError) else ""
        self.status.setText(f"<b>Training stopped:</b> {error}. The model in use is unchanged.{advice}")

    def _on_finished(self) -> None:
        self.worker = None
        if self._closed:
            return  # the window is closing: do no more work
        session = self.session
        if session is not None:  # the last snapshots may not have been drawn yet
            self._redraw()
        if not self._error and session is not None and session.trainer is not None and session.step > self._run_start:
            self.trained = session.trained_model()
            how = "Stopped" if self._stopping and session.step < session.target else "Finished"
            self.status.setText(
                f"{how} at step {session.step} ({session.start}). <b>Use this model</b> puts it in every tab; "
                "<b>Save weights…</b> keeps it; <b>Resume</b> trains on."
            )
            self.message.emit(f"Training {how.lower()} at step {session.step}.")
        elif not self._error and self._stopping:
            self.status.setText("Stopped before the first step.")
        self.update_buttons()

    def update_buttons(self) -> None:
        session, running = self.session, self.running
        resumable = session is not None and session.trainer is not None and not session.failed
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(not running and resumable)
        self.use_button.setEnabled(not running and self.trained is not None)
        self.save_button.setEnabled(not running and self.trained is not None)
        for widget in (*self.start_buttons.values(), self.steps_spin, self.batch_spin, self.lr_spin):
            widget.setEnabled(not running)

    def shutdown(self) -> None:
        """Stop the run; nothing it trained is installed."""
        self._closed = True
        self.stop()

    # ------------------------------------------------------------------ the result
    def use_model(self) -> None:
        """Put a copy of the weights trained here in every tab."""
        if self.trained is None:
            self.message.emit("Train a model first: there is nothing new to use.")
            return
        import copy

        model, meta = self.trained
        steps = meta["card"]["steps"]
        self.holder.install(copy.deepcopy(model).eval(), meta, f"trained here ({steps:,} steps)")
        self.message.emit(f"The DDPM trained here ({steps:,} steps) is in use in every tab; "
                          "Restore shipped puts the shipped one back.")

    def save(self, path: str | Path) -> Path | None:
        """Write the weights trained here (weights, config, card); None when there are none or writing failed."""
        from models.diffusion import save_ddpm

        if self.trained is None:
            self.message.emit("Train a model first: there is nothing new to save.")
            return None
        model, meta = self.trained
        try:
            written = save_ddpm(model, path, meta["card"])
        except (OSError, ValueError) as error:
            self.message.emit(f"Could not save the weights: {format_error(error)}")
            return None
        self.message.emit(f"Saved {written.name} with its config and card.")
        return written

    def save_dialog(self) -> None:
        steps = self.trained[1]["card"]["steps"] if self.trained is not None else 0
        path, _ = QFileDialog.getSaveFileName(self, "Save weights", f"ddpm-digits-{steps}-steps.safetensors",
                                              "Weights (*.safetensors)")
        if path:
            self.save(path)

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("train_fine_tune", self.fine_tune)
        settings.setValue("train_steps", self.steps_spin.value())
        settings.setValue("train_batch", self.batch_spin.value())
        settings.setValue("train_lr", self.lr_spin.value())

    def restore_settings(self, settings: QSettings) -> None:
        if (fine_tune := read_setting(settings, "train_fine_tune", as_bool)) is not None:
            self.start_buttons[fine_tune].setChecked(True)
        if (steps := read_setting(settings, "train_steps", int, lambda v: 1 <= v <= MAX_STEPS)) is not None:
            self.steps_spin.setValue(steps)
        if (batch := read_setting(settings, "train_batch", int, lambda v: 4 <= v <= 256)) is not None:
            self.batch_spin.setValue(batch)
        if (lr := read_setting(settings, "train_lr", float, lambda v: 1e-5 <= v <= 1e-2)) is not None:
            self.lr_spin.setValue(lr)
