"""What every tab of the Diffusion chapter shares: the model in use and the fresh digits.

Nothing here imports torch at module level (see DESIGN.md): functions that run the
model import ``models.diffusion`` inside and run on worker threads, numpy in, numpy out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

if TYPE_CHECKING:
    from explorer.chapters.common import ViewJob
    from explorer.workers import WorkerPool
    from models.diffusion import DiffusionModel

SHIPPED = "ddpm-digits"
FRESH_COUNT = 500  # fresh digits (never trained on) for the objective view
MAX_SEED = 2**31 - 1
SAMPLERS = ("ddpm", "ddim")


@dataclass(frozen=True)
class FreshDigits:
    """Fresh digits: ``make_digits(count, seed)``, uint8 (N, 28, 28) and their labels."""

    images: np.ndarray
    labels: np.ndarray
    seed: int


class ModelHolder(QObject):
    """The one DDPM every tab uses; ``changed`` fires when another one takes its place.

    ``origin`` says where it came from, in words ("shipped", "trained here (800 steps)").
    """

    changed = Signal()

    def __init__(self, model: DiffusionModel, meta: dict[str, Any], origin: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.meta, self.origin = model, meta, origin
        self.shipped = (model, meta, origin)

    def install(self, model: DiffusionModel, meta: dict[str, Any], origin: str) -> None:
        self.model, self.meta, self.origin = model, meta, origin
        self.changed.emit()

    def restore(self) -> None:
        self.install(*self.shipped)

    @property
    def is_shipped(self) -> bool:
        return self.model is self.shipped[0]

    @property
    def conditional(self) -> bool:
        """Whether the model takes a digit to draw (class labels)."""
        return self.model.null_class is not None

    @property
    def num_train_timesteps(self) -> int:
        return self.model.config.num_train_timesteps


def load_shipped(device: Any) -> tuple[DiffusionModel, dict[str, Any], str, str]:
    """The shipped DDPM, its meta, its origin and "" — or, when its file is missing or
    broken, an untrained model of the shipped architecture and a sentence saying why."""
    from models.diffusion import SHIPPED_RECIPE, DiffusionModel, load_ddpm
    from models.weights import WeightsError

    try:
        model, meta = load_ddpm(SHIPPED, device=device)
        return model.eval(), meta, "shipped", ""
    except (WeightsError, OSError) as error:
        model = DiffusionModel(SHIPPED_RECIPE.config).to(device).eval()
        return model, {}, "untrained (shipped weights missing)", f"{error}. The DDPM is untrained."


def visited_timesteps(model: DiffusionModel, sampler: str, steps: int) -> list[int]:
    """The timesteps a sampler with ``steps`` steps visits, first (noisiest) to last."""
    scheduler = model.scheduler(sampler)
    scheduler.set_timesteps(steps)
    return [int(t) for t in scheduler.timesteps]


@dataclass(frozen=True)
class StepInput:
    """What the U-Net saw at one reverse step, for one image: the Reverse tab's current frame."""

    x_t: np.ndarray  # float32 (28, 28), model units
    t: int
    label: int | None  # the digit asked for; None: unconditional
    guidance: float
    index: int  # step index in its run, 0 … total − 1
    total: int


class DiffusionTab(QWidget):
    """What the chapter expects of each tab; the defaults do nothing.

    A tab puts its views in itself and its controls in ``self.controls`` (a widget the
    chapter shows in the left column while the tab is current: ``self.control_layout``).

    Signals
    -------
    message(str)
        A sentence for the status bar.
    """

    message = Signal(str)

    def __init__(self, holder: ModelHolder, digits: FreshDigits, pool: WorkerPool, device: Any,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.holder, self.digits, self.pool, self.device = holder, digits, pool, device
        self.controls = QWidget()
        self.control_layout = QVBoxLayout(self.controls)
        self.control_layout.setContentsMargins(0, 0, 0, 0)
        self.active = False

    def jobs(self) -> list[ViewJob]:
        """The tab's view jobs (the chapter computes them on the spot while it is built)."""
        return []

    def refresh(self) -> None:
        """Recompute the views: the model in use changed."""

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
