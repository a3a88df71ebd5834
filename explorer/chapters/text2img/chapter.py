"""The Text to image chapter: the pipeline in use (CLIP, VAE, latent U-Net), and its tabs."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QFileDialog, QWidget

from explorer.chapters.base import AppContext, ExportJob, TabbedChapter
from explorer.chapters.common import ViewJob
from explorer.chapters.text2img.backend import PipelineHolder, load_shipped
from explorer.widgets.model_box import ModelBox

if TYPE_CHECKING:
    from models.images import LoadedImage

# The tabs in order: (title, the chapter's attribute for it, "module:Class" in this package).
# Each class is built as Class(holder, pool, device).
TABS: tuple[tuple[str, str, str], ...] = (
    ("CLIP", "clip_tab", "clip_tab:ClipTab"),
    ("Text to image", "pipeline_tab", "pipeline_tab:PipelineTab"),
    ("Two prompts", "compare_tab", "compare_tab:CompareTab"),
    ("Image to image", "img2img_tab", "img2img_tab:ImageToImageTab"),
    ("Train", "train_tab", "train_tab:TrainTab"),
)


class TextToImageChapter(TabbedChapter):
    """Text → CLIP embedding → a U-Net denoising in a VAE's latent space, guided by the words."""

    name = "text2img"
    title = "Text to image"
    explanation = (
        "Stable Diffusion in miniature. The <b>prompt</b> is split into words (<b>tokens</b>); a "
        "<b>CLIP text encoder</b> turns them into one vector each. A <b>U-Net</b> starts from noise in "
        "the small <b>latent space</b> of a VAE (8×8×4 numbers for a 32×32 picture) and removes it step by "
        "step, looking at the words through <b>cross-attention</b>. <b>Classifier-free guidance</b> "
        "predicts the noise with and without the text and pushes past the difference. The <b>VAE "
        "decoder</b> turns the last latent into pixels."
        "<p><b>Try:</b> press <b>Space</b> to play, <b>←/→</b> to step; raise the guidance from 0; type a "
        "word the model does not know; watch where “red” and “circle” look; change one word in "
        "<i>Two prompts</i>; turn a scene (or a picture opened with File → Open image) into another in "
        "<i>Image to image</i>; retrain the U-Net in <i>Train</i>.</p>"
    )

    TAB_TITLES = tuple(title for title, _, _ in TABS)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        from models.device import pick_device, set_torch_threads

        set_torch_threads(leave_for_gui=1)
        self.device = pick_device(context.device)
        pipe, origin, note = load_shipped(self.device)
        self.holder = PipelineHolder(pipe, origin, self)

        pages = []
        for _, attribute, where in TABS:
            module, class_name = where.split(":")
            page_class = getattr(importlib.import_module(f"{__package__}.{module}"), class_name)
            page = page_class(self.holder, context.workers, self.device)
            setattr(self, attribute, page)
            pages.append(page)
        self.tab_pages = tuple(pages)
        with self._immediate():  # views complete when first shown (no tab is current yet: none samples)
            for page in self.tab_pages:
                page.refresh()

        self.model_box = ModelBox(
            "Pipeline in use",
            load_tip="Use a latent U-Net saved by 'diffusion-explorer train ldm' (CLIP and the VAE stay)",
            restore_tip="Put the shipped latent U-Net back in every tab",
        )
        self.model_label, self.load_button, self.restore_button = (
            self.model_box.label, self.model_box.load_button, self.model_box.restore_button)
        self.add_tabs(self.tab_pages, self.TAB_TITLES)
        self.controls.addWidget(self.model_box)
        self.controls.addStretch(1)
        for page in self.tab_pages:
            page.message.connect(self.statusMessage)
        self.holder.changed.connect(self._on_pipeline_changed)
        self.load_button.clicked.connect(self.load_weights_dialog)
        self.restore_button.clicked.connect(self.restore_shipped)
        self._describe_pipeline()
        if note:
            QTimer.singleShot(0, self, lambda: self.statusMessage.emit(note))

    # ------------------------------------------------------------------ the pipeline in use
    def _describe_pipeline(self) -> None:
        pipe = self.holder.pipe
        millions = pipe.unet.unet.num_parameters() / 1e6
        names = ", ".join(f"{part}: {name}" for part, name in pipe.names.items())
        self.model_label.setText(f"<b>{self.holder.origin}</b>: latent U-Net of {millions:.2f} M parameters "
                                 f"with cross-attention ({names}).")
        self.restore_button.setEnabled(not self.holder.is_shipped)

    def _on_pipeline_changed(self) -> None:
        self._describe_pipeline()
        for page in self.tab_pages:
            page.refresh()

    def load_weights(self, path: str | Path) -> bool:
        """Use the latent U-Net saved at ``path`` (the CLIP and VAE stay); on any problem say why."""
        from models.ldm import TextToImage, load_ldm
        from models.weights import WeightsError

        path = Path(path)
        pipe = self.holder.pipe
        try:
            unet, _ = load_ldm(path, device=self.device)
            context = unet.config.unet.context_dim
            if context != pipe.clip.config.width:
                raise WeightsError(f"{path.name} attends to text vectors of {context} numbers, but this CLIP "
                                   f"gives {pipe.clip.config.width}")
            if unet.config.unet.in_channels != pipe.vae.config.latent_channels:
                raise WeightsError(f"{path.name} works on latents of {unet.config.unet.in_channels} channels, but "
                                   f"the VAE's have {pipe.vae.config.latent_channels}")
        except (WeightsError, OSError) as error:
            self.statusMessage.emit(f"{error}. The pipeline in use is unchanged.")
            return False
        names = {**pipe.names, "unet": path.stem}
        self.holder.install(TextToImage(pipe.clip, pipe.vae, unet.eval(), names), f"loaded from {path.name}")
        self.statusMessage.emit(f"Loaded {path.name}: every tab uses its U-Net now.")
        return True

    def load_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load latent U-Net weights", "",
                                              "Weights (*.safetensors);;All files (*)")
        if path:
            self.load_weights(path)

    def restore_shipped(self) -> None:
        self.holder.restore()
        self.statusMessage.emit("The shipped pipeline is back in every tab.")

    # ------------------------------------------------------------------ chapter hooks
    def jobs(self) -> list[ViewJob]:
        return [job for page in self.tab_pages for job in page.jobs()]

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """Compute the tabs' views here and now (while the chapter is built or restored), not in workers."""
        for job in self.jobs():
            job.immediate = True
        try:
            yield
        finally:
            for job in self.jobs():
                job.immediate = False

    @property
    def busy(self) -> bool:
        """Whether a view or a run is still being computed (playback aside)."""
        return any(job.busy for job in self.jobs()) or super().busy

    def restore_settings(self, settings: QSettings) -> None:
        with self._immediate():
            super().restore_settings(settings)

    def set_image(self, image: LoadedImage) -> None:
        """File → Open image (or a drop): the Image to image tab's source from now on."""
        self.img2img_tab.use_image(image.pixels, image.name)

    def export_job(self) -> ExportJob | None:
        """The current tab's run."""
        page = self.tab_pages[self.tabs.currentIndex()]
        export = getattr(page, "export_job", None)
        return export() if export is not None else None
