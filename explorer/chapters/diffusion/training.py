"""Training the DDPM from the chapter: one resumable session, run by a worker generator.

The loop itself is ``models.training.Trainer.run`` (made by ``models.diffusion.make_trainer``);
this module adds what the Train tab shows between its snapshots: a few samples of the
averaged (EMA) weights and their loss against t on fresh digits, measured in small
pieces so that Stop never waits for more than one model call.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.chapters.common import tile, torch_threads_here

if TYPE_CHECKING:
    from models.diffusion import DiffusionModel, DiffusionRecipe
    from models.training import Trainer, TrainingSnapshot

PROBE_EVERY_S = 4.0  # previews and the loss against t, at most this often …
PROBE_SHARE = 0.25  # … and taking at most about this share of the time
PREVIEW_COUNT = 8  # samples of digits 0 … 7 (any digit for an unconditional model)
PREVIEW_STEPS = 10  # DDIM steps per preview
PREVIEW_SEED = 0
PROBE_TIMESTEPS = (0, 10, 30, 60, 100, 200, 350, 500, 700, 999)  # for T = 1000; scaled for other T
PROBE_SEED = 11


@dataclass(frozen=True)
class Probe:
    """What the averaged weights do at one step: samples, and the loss against t on fresh digits."""

    step: int
    preview: np.ndarray  # uint8 mosaic of PREVIEW_COUNT samples
    timesteps: list[int]
    losses: list[float]


def probe_timesteps(T: int) -> list[int]:
    return sorted({min(T - 1, t * T // 1000) for t in PROBE_TIMESTEPS})


@dataclass
class TrainingSession:
    """One model being trained from the chapter: resumable until the next Start.

    ``start_model`` is a copy of the model to fine-tune (None: from scratch, random weights);
    the trainer takes it over on its first run.
    """

    recipe: DiffusionRecipe
    start_model: DiffusionModel | None
    start: str  # in words: "fine-tuned from the shipped DDPM", "from scratch"
    device: Any
    probe_images: np.ndarray  # uint8 (n, 28, 28) fresh digits for the loss against t
    probe_labels: np.ndarray
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

    def trained_model(self) -> tuple[DiffusionModel, dict[str, Any]]:
        """A copy of the averaged (EMA) weights as they are now, and their meta with a card."""
        from models.diffusion import KIND, recipe_card

        trainer = self.trainer
        card = recipe_card(self.recipe, trainer, self.wall_s, self.device, "", "", "")
        card["recipe"] = "the Train tab of Diffusion Explorer's Diffusion chapter"
        card["description"] = (
            f"A DDPM on generated 28×28 digits, {self.start} in Diffusion Explorer: a U-Net predicts "
            "the noise in x_t." + (" The null class gives unconditional samples and classifier-free guidance."
                                   if trainer.model.null_class is not None else "")
        )
        card["start"] = self.start
        card["optimizer"] = (f"AdamW lr {self.recipe.lr:g} (warm-up {self.recipe.warmup_steps} steps, then constant), "
                             f"grad clip {self.recipe.grad_clip}, batch {self.recipe.batch_size}")
        card["final_losses"] = {key: round(values[-1], 4) for key, values in self.losses.items() if values}
        model = copy.deepcopy(trainer.ema.model).eval()
        meta = {"kind": KIND, "config": dataclasses.asdict(model.config), "card": card}
        return model, meta


def gui_recipe(config: Any, steps: int, batch_size: int, lr: float, data_count: int,
               fine_tune: bool) -> DiffusionRecipe:
    """The shipped recipe with the Train tab's numbers: a short warm-up, then a constant rate
    (so that Resume goes on at the same rate)."""
    from models.diffusion import SHIPPED_RECIPE

    warmup = min(50 if fine_tune else 200, max(1, steps // 5))
    return dataclasses.replace(
        SHIPPED_RECIPE, config=config, steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup,
        final_lr_fraction=1.0, data_count=data_count,
    )  # fmt: skip


def training_run(session: TrainingSession, steps: int) -> Iterator[str | TrainingSnapshot | Probe | None]:
    """Worker generator: build the trainer on first use (generating the digits), then train ``steps``.

    Yields a message string, training snapshots, a :class:`Probe` every few seconds and after
    the last step, and None between the pieces of a probe (a chance to stop).
    """
    from models.diffusion import make_trainer

    torch_threads_here()
    if session.trainer is None:
        yield f"Generating {session.recipe.data_count:,} training digits (cached after the first time)…"
        session.trainer = make_trainer(session.recipe, device=session.device, model=session.start_model)
        session.start_model = None  # the trainer has it now
        yield "Measuring the starting point…"
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
    """Sample the preview digits and measure the loss against t with the EMA weights, a model call at a time."""
    from models.diffusion import DEFAULT_GUIDANCE, loss_by_timestep, sample, to_uint8

    model = session.trainer.ema.model
    conditional = model.null_class is not None
    labels = np.arange(PREVIEW_COUNT) % 10 if conditional else None
    frame = None
    for frame in sample(model, "ddim", PREVIEW_STEPS, PREVIEW_COUNT, PREVIEW_SEED, labels,
                        guidance=DEFAULT_GUIDANCE if conditional else 1.0, parallel=False):  # weights change
        yield None
    preview = tile(to_uint8(frame.x_prev), PREVIEW_COUNT, gap=1, fill=90)
    timesteps = probe_timesteps(model.config.num_train_timesteps)
    labels = session.probe_labels if conditional else None
    losses = []
    for i, t in enumerate(timesteps):
        losses.append(float(loss_by_timestep(model, session.probe_images, [t], PROBE_SEED + i, labels)[0]))
        yield None
    result = Probe(session.step, preview, timesteps, losses)
    session.probes.append(result)
    yield result
