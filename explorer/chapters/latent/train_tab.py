"""The Train tab: train an autoencoder or a VAE from the chapter, with live curves and reconstructions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
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
    QWidget,
)

from explorer.chapters.common import read_setting, tile
from explorer.chapters.latent.backend import (
    ModelShelf,
    Slot,
    TestDigits,
    TrainingSession,
    model_label,
    training_run,
)
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.loss_curves import LossCurves
from explorer.workers import WorkerPool, format_error

if TYPE_CHECKING:
    from models.autoencoder import AutoencoderConfig
    from models.training import TrainingSnapshot

PREVIEW_DIGITS = 8  # fresh digits reconstructed live
REDRAW_S = 0.5  # curves and read-outs redraw at most twice a second: the GUI thread shares the GIL with training
MAX_STEPS = 100_000
LABEL_WEIGHT_2D = 50.0  # the shipped 2-D recipes' (models.autoencoder.LABEL_WEIGHT_2D; a test keeps them equal)
KL_TITLE = "KL divergence (nats)"


class TrainTab(QWidget):
    """Start, stop and resume one training run; when it ends its model goes on the shelf.

    Signals
    -------
    message(str)
        A sentence for the status bar.
    """

    message = Signal(str)

    DATA_COUNT = 20_000  # training digits (cached on disk after the first run)
    BATCH_SIZE = 128

    def __init__(self, shelf: ModelShelf, digits: TestDigits, pool: WorkerPool, device: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shelf, self.digits, self.pool, self.device = shelf, digits, pool, device
        self.data_count, self.batch_size = self.DATA_COUNT, self.BATCH_SIZE
        self.preview_digits = digits.images[-PREVIEW_DIGITS:]
        self.session: TrainingSession | None = None
        self.trained: Slot | None = None  # the last model trained here: what Save weights writes
        self.worker = None
        self._error = ""
        self._run_start = 0
        self._stopping = False
        self._closed = False
        self._last_redraw = 0.0
        self._build_controls()
        self._build_view()
        self._connect()
        self.update_buttons()

    def _build_controls(self) -> None:
        self.kind_buttons = {"vae": QRadioButton("VAE"), "ae": QRadioButton("Autoencoder")}
        self.kind_buttons["vae"].setChecked(True)
        self.kind_group = QButtonGroup(self)
        for button in self.kind_buttons.values():
            self.kind_group.addButton(button)
        self.latent_combo = QComboBox()
        self.latent_combo.addItem("2 (a map)", 2)
        self.latent_combo.addItem("16", 16)
        self.beta_spin = QDoubleSpinBox()
        self.beta_spin.setRange(0.0, 20.0)
        self.beta_spin.setSingleStep(0.25)
        self.beta_spin.setValue(1.0)
        self.beta_spin.setToolTip("Weight of the KL term. 0: codes may spread anywhere; larger packs them tighter (blurrier digits)")
        self.label_spin = QDoubleSpinBox()
        self.label_spin.setRange(0.0, 500.0)
        self.label_spin.setSingleStep(10.0)
        self.label_spin.setDecimals(0)
        self.label_spin.setValue(LABEL_WEIGHT_2D)
        self.label_spin.setToolTip(
            "Weight of a small digit classifier that reads the code during training. 0: the code learns only "
            "to reconstruct, and in 2-D stroke thickness takes over the map; 50 (the shipped 2-D models) sorts "
            "the map by digit")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(10, MAX_STEPS)
        self.steps_spin.setSingleStep(100)
        self.steps_spin.setValue(1000)
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train a new model from random weights")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Go on training the last run's model")
        self.progress = QProgressBar()
        self.progress.setFormat("step %v of %m")
        self.progress.setRange(0, self.steps_spin.value())
        self.progress.setValue(0)
        self.save_button = QPushButton("Save weights…")
        self.save_button.setToolTip("Write the model trained here: .safetensors, .json config and .md card")
        kinds = QHBoxLayout()
        for button in self.kind_buttons.values():
            kinds.addWidget(button)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(button)
        self.controls = QGroupBox("Train a model")
        form = QFormLayout(self.controls)
        form.addRow("Kind", kinds)
        form.addRow("Latent size", self.latent_combo)
        form.addRow("β (KL weight)", self.beta_spin)
        form.addRow("Digit hint", self.label_spin)
        form.addRow("Steps", self.steps_spin)
        form.addRow(buttons)
        form.addRow(self.progress)
        form.addRow(self.save_button)
        note = QLabel("When it stops, your model replaces the one of its kind in every tab.")
        note.setWordWrap(True)
        form.addRow(note)

    def _build_view(self) -> None:
        self.curves = LossCurves([("recon", "Reconstruction (nats per digit)", "#1f77b4"), ("kl", KL_TITLE, "#d62728")])
        self.curves.set_steps(0, self.steps_spin.value())
        self.preview_panel = ImagePanel("Fresh digits (top) and their reconstructions (bottom), live")
        self.preview_panel.view_box.setMouseEnabled(x=False, y=False)
        self.preview_panel.setMinimumHeight(120)
        blank = np.zeros_like(self.preview_digits)
        self.preview_panel.set_image(tile(np.concatenate([self.preview_digits, blank]), PREVIEW_DIGITS, gap=1, fill=90))
        self.status = QLabel("Choose a kind and press Start.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.curves, 3)
        layout.addWidget(self.preview_panel, 2)
        layout.addWidget(self.status)

    def _connect(self) -> None:
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.save_button.clicked.connect(self.save_dialog)
        for widget in self.kind_buttons.values():
            widget.toggled.connect(self.update_buttons)
        self.latent_combo.currentIndexChanged.connect(self.update_buttons)
        self.latent_combo.currentIndexChanged.connect(self._default_label_weight)
        self.beta_spin.valueChanged.connect(self.update_buttons)
        self.label_spin.valueChanged.connect(self.update_buttons)

    # ------------------------------------------------------------------ runs
    def config(self) -> AutoencoderConfig:
        """The model the form describes."""
        from models.autoencoder import AutoencoderConfig

        variational = self.kind_buttons["vae"].isChecked()
        return AutoencoderConfig(
            latent_dim=int(self.latent_combo.currentData()),
            variational=variational,
            beta=float(self.beta_spin.value()) if variational else 0.0,
            label_weight=float(self.label_spin.value()),
        )

    def _default_label_weight(self) -> None:
        """The shipped recipes' digit hint: 50 for a 2-D map, none for 16-D."""
        self.label_spin.setValue(LABEL_WEIGHT_2D if self.latent_combo.currentData() == 2 else 0.0)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        """Train a new model of the chosen kind from random weights for Steps steps."""
        if self.running:
            return
        steps = self.steps_spin.value()
        self.session = TrainingSession(self.config(), self.device, self.data_count, self.batch_size, self.preview_digits, steps)
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
            self.pool.stop(self.worker)

    def _run(self, steps: int) -> None:
        session = self.session
        self._error, self._stopping = "", False
        self._run_start = session.step
        self.progress.setRange(0, session.target)
        self.progress.setValue(session.step)
        self.curves.set_steps(0, session.target)
        title = KL_TITLE if session.config.variational else "KL: none (a plain autoencoder has no KL term)"
        self.curves.plots["kl"].setTitle(title, size="10pt")
        self.worker = self.pool.start(
            training_run, session, steps,
            on_yield=self._on_update, on_error=self._on_error, on_finished=self._on_finished, name="Training",
        )  # fmt: skip
        self.update_buttons()

    def _on_update(self, item: str | TrainingSnapshot) -> None:
        if isinstance(item, str):
            self.status.setText(item)
            return
        session = self.session
        session.steps.append(item.step)
        for key, value in item.losses.items():
            session.losses.setdefault(key, []).append(value)
        if item.preview is not None:
            self.preview_panel.set_image(item.preview)
        now = time.monotonic()
        if now - self._last_redraw < REDRAW_S and not item.done:
            return
        self._last_redraw = now
        self.curves.set_history(session.steps, session.losses)
        self.progress.setValue(item.step)
        losses = " · ".join(f"{key} {value:.2f}" for key, value in item.losses.items())
        self.status.setText(
            f"{model_label(session.config.name)}, step {item.step} of {item.total_steps}: {losses} · "
            f"{item.samples_per_second:,.0f} digits/s · {item.elapsed_s:.0f} s"
        )

    def _on_error(self, error: Exception) -> None:
        from models.training import DivergedError

        self._error = format_error(error)
        if self.session is not None:
            self.session.failed = self._error
        advice = " Try a smaller β, or Start again." if isinstance(error, DivergedError) else ""
        self.status.setText(f"<b>Training stopped:</b> {error}. The model in use is unchanged.{advice}")

    def _on_finished(self) -> None:
        self.worker = None
        if self._closed:
            return  # the window is closing: start no more work
        session = self.session
        if session is not None:  # the last snapshots may not have been drawn yet
            self.curves.set_history(session.steps, session.losses)
            self.progress.setValue(session.step)
        if not self._error and session is not None and session.trainer is not None and session.step > self._run_start:
            self.trained = session.trained_slot()
            self.shelf.install(self.trained)
            how = "stopped" if self._stopping and session.step < session.target else "finished"
            self.status.setText(
                f"Training {how} at step {session.step}: your {model_label(self.trained.name)} is in use in every tab. "
                "<b>Save weights…</b> keeps it; <b>Restore shipped</b> puts the shipped one back."
            )
            self.message.emit(f"Your {model_label(self.trained.name)} ({session.step} steps) replaces the one in use.")
        self.update_buttons()

    def update_buttons(self) -> None:
        session, running = self.session, self.running
        resumable = session is not None and session.trainer is not None and not session.failed
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        # Resume goes on with the last run's model: only while the form still describes it.
        self.resume_button.setEnabled(not running and resumable and session.config == self.config())
        self.save_button.setEnabled(not running and self.trained is not None)
        for widget in (*self.kind_buttons.values(), self.latent_combo, self.label_spin, self.steps_spin):
            widget.setEnabled(not running)
        self.beta_spin.setEnabled(not running and self.kind_buttons["vae"].isChecked())

    def shutdown(self) -> None:
        """Stop the run; what it trained is not installed any more."""
        self._closed = True
        self.stop()

    # ------------------------------------------------------------------ saving
    def save(self, path: str | Path) -> Path | None:
        """Write the model trained here (weights, config, card); None when there is none or writing failed."""
        from models.autoencoder import save_autoencoder

        if self.trained is None:
            self.message.emit("Train a model first: there is nothing new to save.")
            return None
        try:
            written = save_autoencoder(self.trained.model, path, self.trained.meta["card"])
        except (OSError, ValueError) as error:
            self.message.emit(f"Could not save the weights: {format_error(error)}")
            return None
        self.message.emit(f"Saved {written.name} with its config and card.")
        return written

    def save_dialog(self) -> None:
        name = self.trained.name if self.trained is not None else "autoencoder"
        path, _ = QFileDialog.getSaveFileName(self, "Save weights", f"{name}.safetensors", "Weights (*.safetensors)")
        if path:
            self.save(path)

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("train_kind", "vae" if self.kind_buttons["vae"].isChecked() else "ae")
        settings.setValue("train_latent", int(self.latent_combo.currentData()))
        settings.setValue("train_beta", self.beta_spin.value())
        settings.setValue("train_label_weight", self.label_spin.value())
        settings.setValue("train_steps", self.steps_spin.value())

    def restore_settings(self, settings: QSettings) -> None:
        if (kind := read_setting(settings, "train_kind", str, lambda v: v in self.kind_buttons)) is not None:
            self.kind_buttons[kind].setChecked(True)
        if (latent := read_setting(settings, "train_latent", int, lambda v: self.latent_combo.findData(v) >= 0)) is not None:
            self.latent_combo.setCurrentIndex(self.latent_combo.findData(latent))
        if (beta := read_setting(settings, "train_beta", float, lambda v: 0.0 <= v <= 20.0)) is not None:
            self.beta_spin.setValue(beta)
        if (label := read_setting(settings, "train_label_weight", float, lambda v: 0.0 <= v <= 500.0)) is not None:
            self.label_spin.setValue(label)
        if (steps := read_setting(settings, "train_steps", int, lambda v: 10 <= v <= MAX_STEPS)) is not None:
            self.steps_spin.setValue(steps)
