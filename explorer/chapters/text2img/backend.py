"""What every tab of the Text to image chapter shares: the pipeline in use.

Nothing here imports torch at module level (see DESIGN.md): functions that run the
models import ``models.ldm`` inside and run on worker threads, numpy in, numpy out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

if TYPE_CHECKING:
    from explorer.chapters.common import ViewJob
    from explorer.workers import WorkerPool
    from models.ldm import TextToImage

MAX_SEED = 2**31 - 1
SAMPLERS = ("ddim", "ddpm")


class PipelineHolder(QObject):
    """The one text-to-image pipeline (CLIP, VAE, latent U-Net) every tab uses.

    ``changed`` fires when another one takes its place; ``origin`` says where it came
    from, in words ("shipped", "loaded from my-ldm.safetensors").
    """

    changed = Signal()

    def __init__(self, pipe: TextToImage, origin: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pipe, self.origin = pipe, origin
        self.shipped = (pipe, origin)

    def install(self, pipe: TextToImage, origin: str) -> None:
        self.pipe, self.origin = pipe, origin
        self.changed.emit()

    def restore(self) -> None:
        self.install(*self.shipped)

    @property
    def is_shipped(self) -> bool:
        return self.pipe is self.shipped[0]


def untrained_pipeline(device: Any = "cpu") -> TextToImage:
    """The shipped architecture with random weights (what the chapter shows when weights are missing)."""
    from models.clip import Clip
    from models.image_vae import ImageVAE
    from models.ldm import LDM_CONFIG, TextToImage
    from models.diffusion import DiffusionModel

    return TextToImage(Clip().to(device).eval(), ImageVAE().to(device).eval(),
                       DiffusionModel(LDM_CONFIG).to(device).eval(), {"unet": "untrained"})


def load_shipped(device: Any) -> tuple[TextToImage, str, str]:
    """The shipped pipeline, its origin and "" — or, when a file is missing or broken,
    an untrained pipeline and a sentence saying why."""
    from models.ldm import load_pipeline
    from models.weights import WeightsError

    try:
        return load_pipeline(device=device), "shipped", ""
    except (WeightsError, OSError) as error:
        return untrained_pipeline(device), "untrained (shipped weights missing)", \
            f"{error}. The text-to-image models are untrained."


class TextToImageTab(QWidget):
    """What the chapter expects of each tab; the defaults do nothing.

    A tab puts its views in itself and its controls in ``self.controls`` (a widget the
    chapter shows in the left column while the tab is current: ``self.control_layout``).

    Signals
    -------
    message(str)
        A sentence for the status bar.
    """

    message = Signal(str)

    def __init__(self, holder: PipelineHolder, pool: WorkerPool, device: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.holder, self.pool, self.device = holder, pool, device
        self.controls = QWidget()
        self.control_layout = QVBoxLayout(self.controls)
        self.control_layout.setContentsMargins(0, 0, 0, 0)
        self.active = False

    def jobs(self) -> list[ViewJob]:
        """The tab's view jobs (the chapter computes them on the spot while it is built)."""
        return []

    def refresh(self) -> None:
        """Recompute the views: the pipeline in use changed."""

    def set_active(self, active: bool) -> None:
        """The tab became the current one (or stopped being it): start or pause what only shows there."""
        self.active = active

    @property
    def busy(self) -> bool:
        """Whether something the tab shows is still being computed (other than jobs())."""
        return False

    def save_settings(self, settings: QSettings) -> None:
        """Store control values (``settings`` is inside the chapter's group)."""

    def restore_settings(self, settings: QSettings) -> None:
        """Restore what ``save_settings`` stored; ignore missing or invalid values."""

    def shutdown(self) -> None:
        """Stop timers and workers: the window is closing."""
