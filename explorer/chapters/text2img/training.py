"""Training the latent U-Net from the chapter: one resumable session, run by a worker generator.

The loop itself is ``models.training.Trainer.run`` (made by ``models.ldm.make_trainer``, which
draws the training scenes and encodes them with the VAE once, at setup); this module adds
what the Train tab shows between its snapshots: samples of the averaged (EMA) weights for a
few fixed prompts, made a denoising step at a time so that Stop never waits for more than
one model call.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.chapters.common import torch_threads_here

if TYPE_CHECKING:
    from models.clip import Clip
    from models.diffusion import DiffusionModel
    from models.image_vae import ImageVAE
    from models.ldm import LDMRecipe, TextToImage
    from models.training import Trainer, TrainingSnapshot

PROBE_EVERY_S = 4.0  # samples at most this often …
PROBE_SHARE = 0.25  # … and taking at most about this share of the time
PREVIEW_STEPS = 10  # DDIM steps per preview
PREVIEW_SEED = 0
# (prompt, held out of training?): three combinations the U-Net sees, one it never sees.
PREVIEW_PROMPTS: tuple[tuple[str, bool], ...] = (
    ("a red circle on a white background", False),
    ("a yellow star on a black background", False),
    ("a green square on a blue background", False),
    ("a red circle on a blue background", True),
)


@dataclass(frozen=True)
class Probe:
    """What the averaged weights draw at one step: one final image per preview prompt."""

    step: int
    images: np.ndarray  # uint8 (len(PREVIEW_PROMPTS), 32, 32, 3)


@dataclass
class TrainingSession:
    """One latent U-Net being trained from the chapter: resumable until the next Start.

    ``start_model`` is a copy of the U-Net to fine-tune (None: from scratch, random weights);
    the trainer takes it over on its first run. ``clip`` and ``vae`` are the frozen parts it
    learns with (and the ones "Use this model" pairs it with).
    """

    recipe: LDMRecipe
    start_model: DiffusionModel | None
    start: str  # in words: "fine-tuned from the U-Net in use (shipped)", "trained from scratch"
    clip: Clip
    vae: ImageVAE
    names: dict[str, str]  # the pipeline's part names (clip, vae)
    device: Any
    target: int  # the step this run aims at
    trainer: Trainer | None = None
    steps: list[int] = field(default_factory=list)  # per snapshot, across resumes
    losses: dict[str, list[float]] = field(default_factory=dict)
    probes: list[Probe] = field(default_factory=list)
    wall_s: float = 0.0  # training time, across resumes
    failed: str = ""  # the error that ended it, if any

    @property
    def step(self) -> int:
        return 0 if self.trainer is None else self.trainer.step

    def ema_pipeline(self) -> TextToImage:
        """The frozen CLIP and VAE with the averaged U-Net as it is now (shared, not copied)."""
        from models.ldm import TextToImage

        return TextToImage(self.clip, self.vae, self.trainer.ema.model, {**self.names, "unet": "training"})

    def trained_model(self) -> tuple[DiffusionModel, dict[str, Any]]:
        """A copy of the averaged (EMA) weights as they are now, and a card saying how they were made."""
        import torch

        from models.clip import HELD_OUT, seen_combinations

        recipe, trainer = self.recipe, self.trainer
        model = copy.deepcopy(trainer.ema.model).eval()
        card = {
            "description": "A latent diffusion U-Net (ε-prediction) with cross-attention on the CLIP text "
            f"encoder's tokens, in the 8×8×4 latent space of the shapes VAE, {self.start} in Diffusion "
            "Explorer.",
            "recipe": "the Train tab of Diffusion Explorer's Text to image chapter",
            "start": self.start,
            "clip": self.names.get("clip", ""),
            "vae": self.names.get("vae", ""),
            "data": f"make_shapes({recipe.data_count}, seed={recipe.seed}) over the seen combinations "
            f"({len(seen_combinations())}; {len(HELD_OUT)} held out), encoded once by the VAE",
            "objective": f"ε-prediction, min-SNR weight γ = {recipe.min_snr_gamma}; prompts empty with p = "
            f"{recipe.prompt_dropout}, partial with p = {recipe.partial_fraction}",
            "optimizer": f"AdamW lr {recipe.lr:g} (warm-up {recipe.warmup_steps} steps, then constant), "
            f"grad clip {recipe.grad_clip}, batch {recipe.batch_size}; EMA {recipe.ema_decay} (the saved weights)",
            "steps": trainer.step,
            "epochs": round(trainer.step * recipe.batch_size / recipe.data_count, 2),
            "cpu_seconds": round(trainer.cpu_seconds, 1),
            "wall_seconds": round(self.wall_s, 1),
            "hardware": f"{torch.get_num_threads()} torch threads on {torch.device(self.device)}",
            "parameters": sum(p.numel() for p in model.parameters()),
            "final_losses": {key: round(values[-1], 4) for key, values in self.losses.items() if values},
        }
        return model, card


def gui_recipe(config: Any, steps: int, batch_size: int, lr: float, data_count: int,
               fine_tune: bool) -> LDMRecipe:
    """The shipped recipe with the Train tab's numbers: a short warm-up, then a constant rate
    (so that Resume goes on at the same rate)."""
    from models.ldm import LDMRecipe

    warmup = min(50 if fine_tune else 200, max(1, steps // 5))
    return dataclasses.replace(
        LDMRecipe(), config=config, steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup,
        final_lr_fraction=1.0, data_count=data_count,
    )  # fmt: skip


def training_run(session: TrainingSession, steps: int) -> Iterator[str | TrainingSnapshot | Probe | None]:
    """Worker generator: build the trainer on first use (drawing and encoding the scenes), then train ``steps``.

    Yields message strings, training snapshots, a :class:`Probe` every few seconds and after
    the last step, and None between the denoising steps of a probe (a chance to stop).
    """
    from models.ldm import make_trainer

    torch_threads_here()
    if session.trainer is None:
        yield (f"Preparing: drawing {session.recipe.data_count:,} scenes and encoding them with the VAE "
               "(once per run)…")
        session.trainer = make_trainer(session.recipe, clip=session.clip, vae=session.vae, device=session.device,
                                       model=session.start_model)
        session.start_model = None  # the trainer has it now
        yield "Sampling the starting point…"
        yield from probe(session)
        yield "Training…"
    began = time.perf_counter()
    next_probe = time.monotonic() + PROBE_EVERY_S
    run = session.trainer.run(steps)
    try:
        for snapshot in run:
            session.wall_s += time.perf_counter() - began
            yield snapshot
            began = time.perf_counter()
            if snapshot.done or time.monotonic() >= next_probe:
                started = time.monotonic()
                yield from probe(session)
                spent = time.monotonic() - started
                next_probe = time.monotonic() + max(PROBE_EVERY_S, spent * (1 - PROBE_SHARE) / PROBE_SHARE)
                began = time.perf_counter()
    finally:
        run.close()  # ends the trainer's run now, on this thread (its CPU time is counted)


def probe(session: TrainingSession) -> Iterator[Probe | None]:
    """Sample the preview prompts with the EMA weights (DDIM, default guidance), a step at a time."""
    from models.ldm import DEFAULT_GUIDANCE, generate_frames

    prompts = [prompt for prompt, _ in PREVIEW_PROMPTS]
    frame = None
    for frame in generate_frames(session.ema_pipeline(), prompts, guidance=DEFAULT_GUIDANCE,
                                 num_steps=PREVIEW_STEPS, seed=PREVIEW_SEED, batch=len(prompts), decode=False,
                                 attention=False, parallel=False):  # the weights change between previews
        yield None
    result = Probe(session.step, frame.final_image)
    session.probes.append(result)
    yield result
