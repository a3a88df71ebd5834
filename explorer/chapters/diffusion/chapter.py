"""The Diffusion chapter: the model in use, and five tabs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QFileDialog, QWidget

from explorer.chapters.base import AppContext, ExportJob, TabbedChapter
from explorer.chapters.common import ViewJob
from explorer.chapters.diffusion.backend import FRESH_COUNT, ModelHolder, FreshDigits, load_shipped
from explorer.chapters.diffusion.compare_tab import CompareTab
from explorer.chapters.diffusion.objective_tab import ObjectiveTab
from explorer.chapters.diffusion.reverse_tab import ReverseTab
from explorer.chapters.diffusion.train_tab import TrainTab
from explorer.chapters.diffusion.unet_tab import UNetTab
from explorer.widgets.model_box import ModelBox
from models.data import make_digits


class DiffusionChapter(TabbedChapter):
    """A U-Net learns to predict noise; reverse diffusion removes it one step at a time."""

    name = "diffusion"
    title = "Diffusion"
    explanation = (
        "Training takes a digit, adds noise of a random strength t and asks a <b>U-Net</b> to "
        "predict that noise ε. Generating runs this backwards: start from pure noise x<sub>T</sub>, "
        "predict its noise ε̂, remove a little of it, and repeat down to t = 0. At every step the "
        "model also implies a guess of the clean image, x̂<sub>0</sub>."
        "<p><b>Try:</b> drag t in <i>Objective</i>; press <b>Space</b> in <i>Reverse</i> to play, "
        "<b>←/→</b> to step; ask for a digit and raise the guidance; compare DDPM-1000 with "
        "DDIM-10 in <i>Compare</i>; click a block in <i>Inside the U-Net</i>.</p>"
    )

    OBJECTIVE_TAB, REVERSE_TAB, COMPARE_TAB, UNET_TAB, TRAIN_TAB = range(5)
    TAB_TITLES = ("Objective", "Reverse", "Compare", "Inside the U-Net", "Train")

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        from models.autoencoder import FRESH_SEED
        from models.device import pick_device, set_torch_threads

        set_torch_threads(leave_for_gui=1)
        self.device = pick_device(context.device)
        model, meta, origin, note = load_shipped(self.device)
        self.holder = ModelHolder(model, meta, origin, self)
        images, labels = make_digits(FRESH_COUNT, seed=FRESH_SEED, cache=True)
        self.digits = FreshDigits(images, labels, FRESH_SEED)

        pool = context.workers
        self.objective_tab = ObjectiveTab(self.holder, self.digits, pool, self.device)
        self.reverse_tab = ReverseTab(self.holder, self.digits, pool, self.device)
        self.compare_tab = CompareTab(self.holder, self.digits, pool, self.device)
        self.unet_tab = UNetTab(self.holder, self.digits, pool, self.device)
        self.train_tab = TrainTab(self.holder, self.digits, pool, self.device)
        self.tab_pages = (self.objective_tab, self.reverse_tab, self.compare_tab, self.unet_tab, self.train_tab)

        self.model_box = ModelBox(
            "Model in use",
            load_tip="Use a DDPM saved by the Train tab or by 'diffusion-explorer train ddpm'",
            restore_tip="Put the shipped digits DDPM back in every tab",
        )
        self.model_label, self.load_button, self.restore_button = (
            self.model_box.label, self.model_box.load_button, self.model_box.restore_button)
        self.add_tabs(self.tab_pages, self.TAB_TITLES)
        self.controls.addWidget(self.model_box)
        self.controls.addStretch(1)
        for page in self.tab_pages:
            page.message.connect(self.statusMessage)
        self.reverse_tab.frameShown.connect(self.unet_tab.set_input)
        self.holder.changed.connect(self._on_model_changed)
        self.load_button.clicked.connect(self.load_weights_dialog)
        self.restore_button.clicked.connect(self.restore_shipped)

        with self._immediate():
            self._on_model_changed()
        if note:
            QTimer.singleShot(0, self, lambda: self.statusMessage.emit(note))

    # ------------------------------------------------------------------ the model in use
    def _on_model_changed(self) -> None:
        model = self.holder.model
        steps = self.holder.meta.get("card", {}).get("steps")
        trained = f", {steps:,} training steps" if steps else ""
        self.model_label.setText(
            f"<b>{self.holder.origin}</b>: U-Net of {model.unet.num_parameters() / 1e6:.2f} M parameters"
            f"{trained}; {'class-conditional' if self.holder.conditional else 'unconditional'}."
        )
        self.restore_button.setEnabled(not self.holder.is_shipped)
        for page in self.tab_pages:
            page.refresh()

    def load_weights(self, path: str | Path) -> bool:
        """Use the DDPM saved at ``path``; on any problem say why and keep the model in use."""
        from models.diffusion import load_ddpm
        from models.weights import WeightsError

        path = Path(path)
        try:
            model, meta = load_ddpm(path, device=self.device)
        except (WeightsError, OSError) as error:
            self.statusMessage.emit(f"{error}. The model in use is unchanged.")
            return False
        self.holder.install(model.eval(), meta, f"loaded from {path.name}")
        self.statusMessage.emit(f"Loaded {path.name}: every tab uses it now.")
        return True

    def load_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load DDPM weights", "", "Weights (*.safetensors);;All files (*)")
        if path:
            self.load_weights(path)

    def restore_shipped(self) -> None:
        self.holder.restore()
        self.statusMessage.emit("The shipped DDPM is back in every tab.")

    # ------------------------------------------------------------------ state for tests and benchmarks
    def jobs(self) -> list[ViewJob]:
        return [job for page in self.tab_pages for job in page.jobs()]

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """Compute the views here and now (while the chapter is built or restored), not in workers."""
        for job in self.jobs():
            job.immediate = True
        try:
            yield
        finally:
            for job in self.jobs():
                job.immediate = False

    @property
    def busy(self) -> bool:
        """Whether a view is still being computed (training and playback aside)."""
        return any(job.busy for job in self.jobs()) or super().busy

    # ------------------------------------------------------------------ Chapter hooks
    def export_job(self) -> ExportJob | None:
        """The Reverse tab's run (the Compare tab's when that one is open)."""
        if self.tabs.currentIndex() == self.COMPARE_TAB:
            return self.compare_tab.export_job()
        return self.reverse_tab.export_job()

    def restore_settings(self, settings: QSettings) -> None:
        with self._immediate():
            super().restore_settings(settings)
