"""Reverse runs for the Reverse and Compare tabs: their settings, the worker generator, the frame cache.

The worker runs ``models.diffusion.sample`` and yields each step as float16 arrays
(:class:`StepRecord`); the GUI thread keeps them in a :class:`FrameCache` whose memory
is bounded: playback, scrubbing and stepping back read the cache and never recompute.

Memory bound: a frame holds four (N, 28, 28) float16 arrays (x_t, ε̂, x̂₀, x_{t−1}),
6.1 KB per image, so 16 images × 1000 DDPM steps would take 100 MB. The cache keeps at
most ``budget`` bytes (96 MB by default): past it, it keeps every 2nd step, then every
4th, … (``stride``), and always the last one. The std curves are kept for every step
(a few floats per step).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.chapters.common import torch_threads_here

if TYPE_CHECKING:
    from models.diffusion import DiffusionFrame, DiffusionModel

BUDGET_BYTES = 96 * 2**20  # the frame cache's memory bound per run (see the module docstring)
EXPORT_SCALE = 8  # exported 28×28 pictures become 224×224
FRAME_FIELDS = ("x_t", "eps_hat", "x0_hat", "x_prev")


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides a reverse run's frames: the same settings give the same frames."""

    sampler: str = "ddim"  # "ddpm" or "ddim"
    steps: int = 50
    eta: float = 0.0  # DDIM only
    seed: int = 0
    count: int = 1  # images sampled at once
    digit: int | None = None  # None: unconditional (the null class)
    guidance: float = 1.0  # used only with a digit

    @property
    def labels(self) -> list[int] | None:
        return None if self.digit is None else [self.digit] * self.count

    def describe(self) -> str:
        """E.g. "DDIM-50 (η 0.5)"."""
        eta = f" (η {self.eta:g})" if self.sampler == "ddim" and self.eta else ""
        return f"{self.sampler.upper()}-{self.steps}{eta}"

    def params(self) -> dict[str, Any]:
        """The settings as an export's parameters (the CLI's names)."""
        return {
            "sampler": self.sampler,
            "steps": self.steps,
            "eta": self.eta if self.sampler == "ddim" else None,
            "seed": self.seed,
            "images": self.count,
            "digit": self.digit,
            "guidance": self.guidance if self.digit is not None else None,
        }


@dataclass
class StepRecord:
    """One reverse step as the GUI keeps it: float16 (N, 28, 28) arrays and per-image stds."""

    index: int
    total: int
    t: int
    prev_t: int
    alpha_bar: float  # ᾱ_t
    x_t: np.ndarray
    eps_hat: np.ndarray
    x0_hat: np.ndarray
    x_prev: np.ndarray
    std_x: np.ndarray  # (N,) float32: std of x_t per image
    std_eps: np.ndarray  # (N,) float32: std of ε̂ per image
    seconds: float = 0.0  # wall time since the run began, at the end of this step

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in FRAME_FIELDS)

    @property
    def last(self) -> bool:
        return self.index == self.total - 1

    def update(self, image: int) -> np.ndarray:
        """x_{t−1} − x_t of one image, float32."""
        return self.x_prev[image].astype(np.float32) - self.x_t[image].astype(np.float32)


def record(frame: DiffusionFrame, alpha_bar: float, seconds: float) -> StepRecord:
    """A :class:`DiffusionFrame` as float16 arrays with its stds."""
    axes = tuple(range(1, frame.x_t.ndim))
    return StepRecord(
        index=frame.index, total=frame.total, t=frame.t, prev_t=frame.prev_t, alpha_bar=alpha_bar,
        **{name: getattr(frame, name).astype(np.float16) for name in FRAME_FIELDS},
        std_x=frame.x_t.std(axis=axes).astype(np.float32),
        std_eps=frame.eps_hat.std(axis=axes).astype(np.float32),
        seconds=seconds,
    )


def run_frames(model: DiffusionModel, settings: RunSettings) -> Iterator[StepRecord]:
    """Worker generator: the run's steps as :class:`StepRecord` (one per ``sample`` frame)."""
    torch_threads_here()
    from models import diffusion

    scheduler = model.scheduler(settings.sampler, eta=settings.eta if settings.sampler == "ddim" else 0.0)
    alphas = scheduler.alphas_cumprod.double().cpu().numpy()
    begin = time.perf_counter()
    for frame in diffusion.sample(model, scheduler, settings.steps, settings.count, settings.seed,
                                  settings.labels, settings.guidance):
        yield record(frame, float(alphas[frame.t]), time.perf_counter() - begin)


def run_many(model: DiffusionModel, runs: list[tuple[int, RunSettings]]) -> Iterator[tuple[int, StepRecord]]:
    """Worker generator: several runs one after the other, each step as (key, record).

    One after the other, not side by side, so that each run's time is its own.
    """
    for key, settings in runs:
        for step in run_frames(model, settings):
            yield key, step


def export_pictures(model: DiffusionModel, settings: RunSettings, image: int, panels: bool,
                    scale: int = EXPORT_SCALE) -> Iterator[np.ndarray]:
    """Worker generator: the run's pictures as H×W×3 uint8, as ``diffusion-explorer export reverse`` makes them.

    The run is sampled again (same seed, same frames) rather than read from the float16
    cache, so that the pictures are exactly those of the command line.
    """
    torch_threads_here()
    from models.diffusion import reverse_images, sample

    scheduler = model.scheduler(settings.sampler, eta=settings.eta if settings.sampler == "ddim" else 0.0)
    frames = sample(model, scheduler, settings.steps, settings.count, settings.seed, settings.labels,
                    settings.guidance)
    for picture in reverse_images(frames, panels=panels, scale=scale, image=image):
        yield np.ascontiguousarray(np.stack([picture] * 3, axis=-1))


@dataclass
class FrameCache:
    """The steps of one run, in memory of at most ``budget`` bytes.

    Steps are added in order. While they fit, every step is kept; past the budget the
    cache keeps only steps whose index is a multiple of ``stride`` (doubled as often as
    needed), plus the last step. :meth:`get` gives the kept step at or before an index.
    """

    total: int
    budget: int = BUDGET_BYTES
    stride: int = 1
    computed: int = 0  # steps received (kept or not)
    frames: dict[int, StepRecord] = field(default_factory=dict)
    t: list[int] = field(default_factory=list)  # every step's t, std of x_t and of ε̂ (N,)
    alpha_bar: list[float] = field(default_factory=list)
    std_x: list[np.ndarray] = field(default_factory=list)
    std_eps: list[np.ndarray] = field(default_factory=list)
    nbytes: int = 0

    def add(self, step: StepRecord) -> None:
        self.computed = step.index + 1
        self.t.append(step.t)
        self.alpha_bar.append(step.alpha_bar)
        self.std_x.append(step.std_x)
        self.std_eps.append(step.std_eps)
        if step.index % self.stride and not step.last:
            return
        self.frames[step.index] = step
        self.nbytes += step.nbytes
        while self.nbytes > self.budget and len(self.frames) > 2:
            self._thin()

    def _thin(self) -> None:
        self.stride *= 2
        newest = max(self.frames)
        for index in [i for i in self.frames if i % self.stride and i != newest and not self.frames[i].last]:
            self.nbytes -= self.frames.pop(index).nbytes

    @property
    def thinned(self) -> bool:
        return self.stride > 1

    @property
    def complete(self) -> bool:
        return self.computed == self.total

    def kept(self) -> list[int]:
        """Indices of the steps held, in order."""
        return sorted(self.frames)

    def get(self, index: int) -> StepRecord | None:
        """The kept step at ``index``, else the nearest kept one before it (None: nothing yet)."""
        if index in self.frames:
            return self.frames[index]
        earlier = [i for i in self.frames if i <= index]
        return self.frames[max(earlier)] if earlier else None

    def last(self) -> StepRecord | None:
        return self.frames[max(self.frames)] if self.frames else None

    def curves(self, image: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """t, std of x_t and std of ε̂ of one image, for every step received."""
        if not self.t:
            empty = np.zeros(0)
            return empty, empty, empty
        return (np.asarray(self.t, dtype=np.float64), np.asarray([s[image] for s in self.std_x], dtype=np.float64),
                np.asarray([s[image] for s in self.std_eps], dtype=np.float64))
