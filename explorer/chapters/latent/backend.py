"""What the Latent space chapter computes: numpy helpers, and model calls that run in workers.

Nothing here imports torch at module level: the functions that run a model
import ``models.autoencoder`` inside (they run on worker threads, numpy in,
numpy out), so the chapter's modules load without torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, Signal

from explorer.widgets.latent_map import LatentMap, map_bounds
from explorer.chapters.common import in_worker, tile, torch_threads_here, upscale

if TYPE_CHECKING:
    from models.autoencoder import Autoencoder, AutoencoderConfig
    from models.training import Trainer, TrainingSnapshot

MAP_MODELS = ("ae-2d", "vae-2d")  # the two maps, side by side
SIXTEEN = "vae-16d"  # the model of the 16-D tab
TEST_COUNT = 1000  # fresh digits for the maps, the pickers and the interpolation
MAX_SEED = 2**31 - 1
PREVIEW_EVERY_S = 1.0  # reconstructions shown while training, at most this often


def model_label(name: str) -> str:
    """"vae-16d" → "VAE-16D"."""
    return name.upper()


@dataclass(frozen=True)
class TestDigits:
    """Fresh digits (never trained on) that every tab shows: ``make_digits(count, seed)``."""

    images: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray  # int (N,)
    seed: int

    def of_class(self, digit: int) -> np.ndarray:
        """Indices of the digits of one class."""
        return np.flatnonzero(self.labels == digit)


# ---------------------------------------------------------------------- numpy helpers
def grid_codes(bounds: tuple[float, float, float, float], side: int) -> np.ndarray:
    """(side², 2) codes at the centres of a side×side grid over ``bounds``, top row (highest z₂) first."""
    x0, x1, y0, y1 = bounds
    xs = x0 + (np.arange(side) + 0.5) * (x1 - x0) / side
    ys = y1 - (np.arange(side) + 0.5) * (y1 - y0) / side
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)


def centre_drawing(image: np.ndarray, box: int = 20) -> np.ndarray:
    """Frame a drawn digit as the training digits are framed.

    The ink is scaled into a ``box``-pixel square and centred by its centre of
    mass on a 28×28 black image. A blank drawing stays blank.
    """
    rows, columns = np.nonzero(image > 10)
    if len(rows) == 0:
        return np.zeros((28, 28), np.uint8)
    crop = image[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    scale = box / max(crop.shape)
    height, width = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.LANCZOS), dtype=np.float64)
    total = small.sum()
    cy = (small.sum(axis=1) @ np.arange(height)) / total if total else height / 2
    cx = (small.sum(axis=0) @ np.arange(width)) / total if total else width / 2
    top = int(np.clip(round(13.5 - cy), 0, 28 - height))
    left = int(np.clip(round(13.5 - cx), 0, 28 - width))
    out = np.zeros((28, 28), np.uint8)
    out[top : top + height, left : left + width] = np.clip(np.rint(small), 0, 255)
    return out


def latent_sample(seed: int, dim: int) -> np.ndarray:
    """z ~ N(0, I) from ``seed``: the same seed, the same sample."""
    return np.random.default_rng(seed).standard_normal(dim)


# ---------------------------------------------------------------------- model calls (worker threads)
@in_worker
def decode_point(model: Autoencoder, point: np.ndarray) -> np.ndarray:
    """One code → its uint8 (28, 28) decode: one decoder call."""
    from models.autoencoder import decode_latents

    return decode_latents(model, np.asarray(point, np.float32)[None])[0]


@in_worker
def classify(evaluator: Any, image: np.ndarray) -> str:
    """What the evaluator sees in a uint8 (28, 28) image, in words."""
    probabilities = evaluator.digit_probabilities(image[None])[0]
    best = int(probabilities.argmax())
    certainty = f"{probabilities[best]:.0%}"
    return f"not a digit ({certainty} sure)" if best == 10 else f"a {best} ({certainty} sure)"


@in_worker
def reconstruct(model: Autoencoder, image: np.ndarray) -> np.ndarray:
    """A uint8 (28, 28) digit decoded from its code mean."""
    from models.autoencoder import reconstruct_digits

    return reconstruct_digits(model, image[None])[0]


@dataclass
class MapData:
    """One 2-D map: where the test digits land, and what a grid over that extent decodes to."""

    codes: np.ndarray  # (N, 2) code means
    bounds: tuple[float, float, float, float]  # (x0, x1, y0, y1)
    grid: np.ndarray  # uint8 mosaic of decodes over bounds, top row first


@in_worker
def map_data(model: Autoencoder, images: np.ndarray, grid_side: int) -> MapData:
    """Encode the test digits and decode a ``grid_side``² grid over their extent."""
    from models.autoencoder import decode_latents, encode_digits

    codes = encode_digits(model, images)  # (N, 2)
    bounds = map_bounds(codes, LatentMap.PADDING)
    grid = decode_latents(model, grid_codes(bounds, grid_side))  # (side², 28, 28)
    return MapData(codes, bounds, tile(grid, grid_side))


@in_worker
def similar_images(
    model: Autoencoder, source: np.ndarray, sigma: float, seed: int, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the code mean μ of ``source``, μ decoded, ``count`` decodes of μ + σ·ε with ε seeded)."""
    from models.autoencoder import decode_latents, encode_digits

    mean = encode_digits(model, source[None])[0].astype(np.float64)  # (d,)
    noise = np.random.default_rng(seed).standard_normal((count, mean.size))  # (count, d)
    images = decode_latents(model, np.vstack([mean[None], mean + sigma * noise]))  # (1 + count, 28, 28)
    return mean, images[0], images[1:]


@dataclass
class Walks:
    """Linear and spherical walks between two digits' codes."""

    frames: dict[str, np.ndarray]  # mode -> uint8 (frames, 28, 28), as models.autoencoder.latent_walk makes them
    t: np.ndarray  # (101,) fine steps from 0 to 1
    lengths: dict[str, np.ndarray]  # mode -> ‖z‖ at each t
    latent_dim: int


@in_worker
def interpolations(model: Autoencoder, image_a: np.ndarray, image_b: np.ndarray, frames: int) -> Walks:
    """Encode both digits, walk between their code means both ways, decode ``frames`` steps of each."""
    from models.autoencoder import decode_latents, encode_digits, lerp, slerp

    codes = encode_digits(model, np.stack([image_a, image_b])).astype(np.float64)  # (2, d)
    steps, fine = np.linspace(0.0, 1.0, frames), np.linspace(0.0, 1.0, 101)
    walks = {"linear": lerp, "spherical": slerp}
    return Walks(
        frames={mode: decode_latents(model, walk(codes[0], codes[1], steps)) for mode, walk in walks.items()},
        t=fine,
        lengths={mode: np.linalg.norm(walk(codes[0], codes[1], fine), axis=1) for mode, walk in walks.items()},
        latent_dim=codes.shape[1],
    )


def walk_frames(model: Autoencoder, image_a: np.ndarray, image_b: np.ndarray, frames: int, spherical: bool, scale: int) -> Iterator[np.ndarray]:
    """The exported walk: ``models.autoencoder.latent_walk`` frames, upscaled to RGB."""
    from models.autoencoder import latent_walk

    torch_threads_here()  # runs in the export worker
    for frame in latent_walk(model, image_a, image_b, frames, spherical=spherical):
        yield upscale(frame, scale)


# ---------------------------------------------------------------------- models in use
@dataclass
class Slot:
    """A model the chapter uses, and where it came from."""

    name: str  # "vae-2d"
    model: Autoencoder
    meta: dict[str, Any]
    origin: str  # "shipped", "trained here (800 steps)", "loaded from my.safetensors", ...

    @property
    def shipped(self) -> bool:
        return self.origin == "shipped"


class ModelShelf(QObject):
    """The models every tab uses, by name ("ae-2d", "vae-2d", "vae-16d", ...).

    ``changed`` is emitted when a model is replaced, so that each tab redraws.
    """

    changed = Signal()

    def __init__(self, shipped: dict[str, Slot], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.shipped = dict(shipped)
        self.slots = dict(shipped)

    def model(self, name: str) -> Autoencoder:
        return self.slots[name].model

    def names(self) -> list[str]:
        return list(self.slots)

    def install(self, slot: Slot) -> None:
        """Use ``slot``'s model wherever a model of its name is shown."""
        self.slots[slot.name] = slot
        self.changed.emit()

    def restore(self) -> None:
        """Back to the shipped models only."""
        self.slots = dict(self.shipped)
        self.changed.emit()

    def all_shipped(self) -> bool:
        return self.slots.keys() == self.shipped.keys() and all(self.slots[n] is s for n, s in self.shipped.items())


def load_shipped(name: str, device: Any) -> tuple[Slot, str]:
    """The shipped model ``name``, and "" — or, when its files are missing or broken, an
    untrained model of the same config and a sentence saying why."""
    from models.autoencoder import Autoencoder, AutoencoderConfig, load_autoencoder
    from models.weights import WeightsError

    try:
        model, meta = load_autoencoder(name, device=device)
        return Slot(name, model, meta, "shipped"), ""
    except (WeightsError, OSError) as error:
        latent = int(name.split("-")[1].rstrip("d"))
        model = Autoencoder(AutoencoderConfig(latent_dim=latent, variational=name.startswith("vae")))
        return Slot(name, model.to(device).eval(), {}, "untrained (shipped weights missing)"), f"{error}."


# ---------------------------------------------------------------------- training
@dataclass
class TrainingSession:
    """One model being trained from the chapter: resumable until the next Start."""

    config: AutoencoderConfig
    device: Any
    data_count: int
    batch_size: int
    preview_images: np.ndarray  # uint8 (n, 28, 28) shown with their reconstructions
    target: int  # the step this run aims at
    trainer: Trainer | None = None
    steps: list[int] = field(default_factory=list)  # per snapshot, across resumes
    losses: dict[str, list[float]] = field(default_factory=dict)
    failed: str = ""  # the error that ended it, if any

    @property
    def step(self) -> int:
        return 0 if self.trainer is None else self.trainer.step

    def preview(self, model: Autoencoder) -> np.ndarray:
        """The preview digits (top row) over their reconstructions (bottom row)."""
        from models.autoencoder import reconstruct_digits

        recon = reconstruct_digits(model, self.preview_images)
        return tile(np.concatenate([self.preview_images, recon]), len(self.preview_images), gap=1, fill=90)

    def trained_slot(self) -> Slot:
        """A copy of the model as it is now (resuming trains the original, not the one on show)."""
        import copy

        trainer = self.trainer
        losses = {key: round(values[-1], 3) for key, values in self.losses.items() if values}
        kind = "VAE" if self.config.variational else "plain autoencoder"
        card = {
            "description": f"A {kind} with a {self.config.latent_dim}-D latent, trained in "
            "Diffusion Explorer's Latent space chapter.",
            "data": f"make_digits({self.data_count}, seed=0), values in [-1, 1]",
            "optimizer": f"Adam, batch {self.batch_size}",
            "steps": trainer.step,
            "final_losses": losses,
            "cpu_seconds": round(trainer.cpu_seconds, 1),
        }
        meta = {"kind": "autoencoder", "config": dataclasses.asdict(self.config), "card": card}
        model = copy.deepcopy(trainer.model).eval()
        return Slot(self.config.name, model, meta, f"trained here ({trainer.step} steps)")


def training_run(session: TrainingSession, steps: int) -> Iterator[str | TrainingSnapshot]:
    """Worker generator: build the trainer on first use (generating the digits), then train ``steps``."""
    torch_threads_here()
    if session.trainer is None:
        from models.autoencoder import make_trainer

        yield f"Generating {session.data_count:,} training digits…"
        session.trainer = make_trainer(
            session.config, data_count=session.data_count, batch_size=session.batch_size, device=session.device
        )
        yield "Training…"
    yield from session.trainer.run(steps, preview=session.preview, preview_every_s=PREVIEW_EVERY_S)
