"""The Train tab: train the latent U-Net from the chapter, with live losses and samples for fixed prompts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
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
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.chapters.common import as_bool, read_setting
from explorer.chapters.text2img.backend import TextToImageTab
from explorer.chapters.text2img.training import (
    PREVIEW_PROMPTS,
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
LR_DEFAULTS = {True: 2e-4, False: 1e-3}  # fine-tune gently; from scratch, the shipped recipe's rate
PROGRESS_FORMAT = "step %v of %m"


class TrainTab(TextToImageTab):
    """Start, stop and resume one training run of the latent U-Net; "Use this model" puts it in every tab."""

    DATA_COUNT = 5_000  # training scenes, drawn and VAE-encoded at Start (a few seconds)
    BATCH_SIZE = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_count = self.DATA_COUNT
        self.scratch_config: DiffusionConfig | None = None  # None: the shipped architecture (LDM_CONFIG)
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
        self.start_buttons = {True: QRadioButton("The U-Net in use (fine-tune)"),
                              False: QRadioButton("Scratch (random weights)")}
        self.start_buttons[True].setToolTip("Go on training the latent U-Net every tab uses (the shipped one "
                                            "unless you loaded or trained another); it is copied, not changed")
        self.start_buttons[False].setToolTip("A new U-Net of the shipped architecture with random weights: "
                                             "coloured blobs after a few hundred steps, shapes much later")
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
        self.batch_spin.setToolTip("Scenes per step, each with its own prompt (sometimes partial or empty), "
                                   "random t and noise")
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-5, 1e-2)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setValue(LR_DEFAULTS[True])
        self.lr_spin.setToolTip("AdamW learning rate, after a short warm-up. Choosing where to start "
                                "sets a sensible one: 0.0002 to fine-tune, 0.001 from scratch")
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Begin a new run with these settings")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; Resume goes on from there")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Go on training the last run's U-Net, with its batch size and learning "
                                      "rate: to its target if it was stopped, else Steps more")
        self.progress = QProgressBar()
        self.progress.setFormat(PROGRESS_FORMAT)
        self.progress.setRange(0, self.steps_spin.value())
        self.progress.setValue(0)
        self.speed_label = QLabel(" ")
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Put the U-Net trained here (its running average) in every tab, with the "
                                   "same CLIP and VAE")
        self.save_button = QPushButton("Save weights…")
        self.save_button.setToolTip("Write the U-Net trained here: .safetensors, .json config and .md card "
                                    "(the chapter's Load weights… takes it back)")

        box = QGroupBox("Train the latent U-Net")
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
        self.note = QLabel()
        self.note.setWordWrap(True)
        self._describe_data()
        self.control_layout.addWidget(self.note)

    def _describe_data(self) -> None:
        self.note.setText(
            f"Training runs here, on this computer. Start draws {self.data_count:,} scenes and encodes them with "
            "the VAE once (several seconds); the U-Net learns in that latent space while CLIP and the VAE stay "
            "frozen. Samples use the running average of the weights (EMA). From scratch, colours come within a "
            "hundred steps, shapes later; the shipped U-Net trained far longer on 40,000 scenes (see its card "
            "in assets/weights)."
        )

    def _build_view(self) -> None:
        self.curves = LossCurves([
            ("loss", "Loss: min-SNR weighted (what is minimised)", "#1f77b4"),
            ("mse", "MSE (ε̂ − ε)², unweighted", "#ff7f0e"),
        ])  # fmt: skip
        self.curves.set_steps(0, self.steps_spin.value())
        self.sample_title = QLabel(f"Samples of the running average (DDIM-{PREVIEW_STEPS}, guidance 5, same seed)")
        self.sample_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_title.setStyleSheet("font-weight: 600;")
        self.sample_panels: list[ImagePanel] = []
        self.samples_box = QWidget()
        samples = QHBoxLayout(self.samples_box)
        samples.setContentsMargins(0, 0, 0, 0)
        samples.setSpacing(8)
        for prompt, held_out in PREVIEW_PROMPTS:
            # Broken by hand, not word-wrapped: a wrapping label's height-for-width would size the row.
            caption = "“" + prompt.replace(" on ", "\non ") + "”" + ("\n(held out of training)" if held_out else "")
            panel = ImagePanel(caption)
            panel.title_label.setStyleSheet("")
            # Room for three lines on every title, text at the bottom: the four images stay level.
            panel.title_label.setMinimumHeight(3 * panel.title_label.fontMetrics().lineSpacing() + 2)
            panel.title_label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom)
            panel.title_label.setToolTip("Never in the training data: can the U-Net combine the words anyway?"
                                         if held_out else "A combination in the training data")
            panel.view_box.setMouseEnabled(x=False, y=False)
            panel.setMinimumSize(80, 80)
            panel.set_image(np.full((32, 32, 3), 90, np.uint8))
            self.sample_panels.append(panel)
            samples.addWidget(panel, 1)
        self.status = QLabel("Choose where to start and press Start.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)

        for widget in (self.curves, self.samples_box):  # share the height by the stretch factors alone
            widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
            widget.setMinimumHeight(150)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.curves, 3)
        layout.addWidget(self.sample_title)
        layout.addWidget(self.samples_box, 2)
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
        """A new run: a copy of the U-Net in use, or random weights, trained for Steps steps."""
        import copy

        from models.ldm import LDM_CONFIG

        if self.running:
            return
        steps, pipe = self.steps_spin.value(), self.holder.pipe
        if self.fine_tune:
            model = copy.deepcopy(pipe.unet)
            for block in model.unet.cross_attentions().values():  # copied mid-sampling by another tab, maybe
                block.keep_weights, block.last_weights = False, None
            config, start = model.config, f"fine-tuned from the U-Net in use ({self.holder.origin})"
        else:
            model, config, start = None, self.scratch_config or LDM_CONFIG, "trained from scratch"
        recipe = gui_recipe(config, steps, self.batch_spin.value(), self.lr_spin.value(), self.data_count,
                            self.fine_tune)
        names = {key: value for key, value in pipe.names.items() if key != "unet"}
        self.session = TrainingSession(recipe, model, start, pipe.clip, pipe.vae, names, self.device, steps)
        self.trained = None
        self.curves.clear_curves()
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
        self.speed_label.setText(" ")
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
            self.progress.setFormat("Preparing…" if item.startswith("Preparing") else PROGRESS_FORMAT)
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
        self.speed_label.setText(f"{steps_per_s:.1f} steps/s · {item.samples_per_second:,.0f} scenes/s")
        losses = " · ".join(f"{key} {value:.4f}" for key, value in item.losses.items())
        self.status.setText(f"Step {item.step} of {item.total_steps}: {losses} · {session.wall_s:.0f} s of training")

    def _show_probe(self, probe: Probe) -> None:
        for panel, image in zip(self.sample_panels, probe.images):
            panel.set_image(image)
        self.sample_title.setText(f"Samples of the running average at step {probe.step} "
                                  f"(DDIM-{PREVIEW_STEPS}, guidance 5, same seed)")

    def _on_error(self, error: Exception) -> None:
        from models.training import DivergedError

        self._error = format_error(error)
        if self.session is not None:
            self.session.failed = self._error
        advice = " Try a smaller learning rate, or Start again." if isinstance(error, DivergedError) else ""
        self.status.setText(f"<b>Training stopped:</b> {error}. The model in use is unchanged.{advice}")
        self.message.emit(f"Training stopped: {error}. The model in use is unchanged.")

    def _on_finished(self) -> None:
        self.worker = None
        if self._closed:
            return  # the window is closing: do no more work
        session = self.session
        self.progress.setFormat(PROGRESS_FORMAT)
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
        """Put a copy of the U-Net trained here, with the CLIP and VAE it learned with, in every tab."""
        if self.trained is None or self.session is None:
            self.message.emit("Train a model first: there is nothing new to use.")
            return
        import copy

        from models.ldm import TextToImage

        model, card = self.trained
        steps = card["steps"]
        session = self.session
        names = {**session.names, "unet": f"trained here ({steps:,} steps)"}
        pipe = TextToImage(session.clip, session.vae, copy.deepcopy(model).eval(), names)
        self.holder.install(pipe, f"trained here ({steps:,} steps)")
        self.message.emit(f"The U-Net trained here ({steps:,} steps) is in use in every tab; "
                          "Restore shipped puts the shipped one back.")

    def save(self, path: str | Path) -> Path | None:
        """Write the U-Net trained here (weights, config, card); None when there is none or writing failed."""
        from models.ldm import save_ldm

        if self.trained is None:
            self.message.emit("Train a model first: there is nothing new to save.")
            return None
        model, card = self.trained
        try:
            written = save_ldm(model, path, card)
        except (OSError, ValueError) as error:
            self.message.emit(f"Could not save the weights: {format_error(error)}")
            return None
        self.message.emit(f"Saved {written.name} with its config and card.")
        return written

    def save_dialog(self) -> None:
        steps = self.trained[1]["steps"] if self.trained is not None else 0
        path, _ = QFileDialog.getSaveFileName(self, "Save latent U-Net weights",
                                              f"ldm-shapes-{steps}-steps.safetensors", "Weights (*.safetensors)")
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
