"""β schedules and the closed-form forward diffusion process (numpy only).

The forward process of DDPM (Ho et al. 2020) adds a little Gaussian noise at
each of T steps:

    q(x_t | x_{t-1}) = N(x_t; √(1 − β_t)·x_{t-1}, β_t·I)

With α_t = 1 − β_t and ᾱ_t = ∏_{s ≤ t} α_s, any step can be reached from the
clean image in one jump (eq. 4 of the paper):

    q(x_t | x_0) = N(x_t; √ᾱ_t·x_0, (1 − ᾱ_t)·I)
    x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε,   ε ~ N(0, I)

Array indices follow diffusers: ``betas[k]`` is the β of diffusers' timestep
``k`` (0-based), so ``alphas_cumprod[T - 1]`` is the last, noisiest step.
:meth:`NoiseSchedule.alpha_bar` counts steps from 1 and adds t = 0, the clean
image, so a slider can run over 0 … T.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BETA_SCHEDULES = ("linear", "scaled-linear", "cosine", "sigmoid")

# Nichol & Dhariwal clip β below 1 so the last steps do not divide by ~0.
COSINE_MAX_BETA = 0.999
# Offset s of the cosine schedule: keeps β_1 from being vanishingly small.
COSINE_OFFSET = 0.008


def _validate(schedule: str, num_timesteps: int, beta_start: float, beta_end: float) -> None:
    if schedule not in BETA_SCHEDULES:
        raise ValueError(
            f"unknown β schedule {schedule!r} (choose from: {', '.join(BETA_SCHEDULES)})"
        )
    if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, (int, np.integer)):
        raise ValueError(f"the number of timesteps must be a whole number, got {num_timesteps!r}")
    if num_timesteps < 1:
        raise ValueError(f"the number of timesteps must be at least 1, got {num_timesteps}")
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value}")
    if beta_start >= beta_end:
        raise ValueError(
            f"beta_start must be smaller than beta_end, got {beta_start} and {beta_end}"
        )


def cosine_alpha_bar(t: np.ndarray | float) -> np.ndarray | float:
    """ᾱ(t) of the cosine schedule for t in [0, 1] (before normalising by ᾱ(0)).

    ᾱ(t) = cos²( (t + s) / (1 + s) · π/2 ),  s = 0.008   (Nichol & Dhariwal, eq. 17)
    """
    t = np.asarray(t, dtype=np.float64)
    return np.cos((t + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2


def make_betas(
    schedule: str, num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> np.ndarray:
    """β_1 … β_T of a named schedule, float64, length ``num_timesteps``.

    Parameters
    ----------
    schedule
        One of :data:`BETA_SCHEDULES`. ``"cosine"`` ignores the β range.
    num_timesteps
        T, at least 1.
    beta_start, beta_end
        First and last β, with 0 < beta_start < beta_end < 1.

    Raises
    ------
    ValueError
        With a readable message for an unknown schedule or a bad range.
    """
    _validate(schedule, num_timesteps, beta_start, beta_end)
    T = int(num_timesteps)
    if schedule == "linear":
        # β_t evenly spaced from beta_start to beta_end (DDPM).
        return np.linspace(beta_start, beta_end, T, dtype=np.float64)
    if schedule == "scaled-linear":
        # √β evenly spaced, then squared (Stable Diffusion's "scaled_linear").
        return np.linspace(beta_start**0.5, beta_end**0.5, T, dtype=np.float64) ** 2
    if schedule == "cosine":
        # β_t = 1 − ᾱ(t/T) / ᾱ((t−1)/T), clipped at 0.999 (diffusers' "squaredcos_cap_v2").
        steps = np.arange(T + 1, dtype=np.float64) / T
        abar = cosine_alpha_bar(steps)
        return np.minimum(1.0 - abar[1:] / abar[:-1], COSINE_MAX_BETA)
    # sigmoid: β_t = sigmoid(x_t)·(beta_end − beta_start) + beta_start, x evenly in [−6, 6].
    x = np.linspace(-6.0, 6.0, T, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-x)) * (beta_end - beta_start) + beta_start


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class NoiseSchedule:
    """A β schedule with its derived α and ᾱ (all float64, length T, read-only).

    Build one with :meth:`from_config`.
    """

    schedule: str
    num_timesteps: int
    beta_start: float
    beta_end: float
    betas: np.ndarray
    alphas: np.ndarray
    alphas_cumprod: np.ndarray

    @classmethod
    def from_config(
        cls,
        schedule: str = "linear",
        num_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
    ) -> NoiseSchedule:
        """Compute β, α = 1 − β and ᾱ = cumprod(α) for a named schedule."""
        betas = make_betas(schedule, num_timesteps, beta_start, beta_end)
        alphas = 1.0 - betas  # α_t = 1 − β_t
        alphas_cumprod = np.cumprod(alphas)  # ᾱ_t = ∏_{s ≤ t} α_s
        return cls(
            schedule=schedule,
            num_timesteps=int(num_timesteps),
            beta_start=float(beta_start),
            beta_end=float(beta_end),
            betas=_readonly(betas),
            alphas=_readonly(alphas),
            alphas_cumprod=_readonly(alphas_cumprod),
        )

    def alpha_bar(self, t: int) -> float:
        """ᾱ at step t in 0 … T: 1.0 at t = 0 (clean), else ``alphas_cumprod[t - 1]``."""
        if not 0 <= t <= self.num_timesteps:
            raise ValueError(f"t must be between 0 and {self.num_timesteps}, got {t}")
        return 1.0 if t == 0 else float(self.alphas_cumprod[t - 1])

    def snr(self) -> np.ndarray:
        """Signal-to-noise ratio per step, SNR_t = ᾱ_t / (1 − ᾱ_t), length T."""
        return self.alphas_cumprod / (1.0 - self.alphas_cumprod)


def q_sample(
    x0: np.ndarray, eps: np.ndarray, alpha_bar: float, out: np.ndarray | None = None
) -> np.ndarray:
    """Jump from x_0 to x_t in closed form: x_t = √ᾱ·x_0 + √(1 − ᾱ)·ε.

    Parameters
    ----------
    x0, eps
        Clean image and unit Gaussian noise of the same shape (float32 is fastest).
    alpha_bar
        ᾱ_t in [0, 1].
    out
        Optional float32 buffer of the same shape to write into (no allocation).

    Returns
    -------
    np.ndarray
        x_t as float32 (``out`` when given).
    """
    if not 0.0 <= alpha_bar <= 1.0:
        raise ValueError(f"alpha_bar must be between 0 and 1, got {alpha_bar}")
    if x0.shape != eps.shape:
        raise ValueError(f"x0 and eps differ in shape: {x0.shape} and {eps.shape}")
    if out is None:
        out = np.empty(x0.shape, dtype=np.float32)
    signal = np.float32(math.sqrt(alpha_bar))  # √ᾱ
    noise = np.float32(math.sqrt(1.0 - alpha_bar))  # √(1 − ᾱ)
    # Row by row so the temporary √ᾱ·x_0 stays in cache: no full-size allocation.
    rows_x0 = x0.reshape(x0.shape[0], -1) if x0.ndim > 1 else x0.reshape(1, -1)
    rows_eps = eps.reshape(rows_x0.shape)
    rows_out = out.reshape(rows_x0.shape)
    chunk = max(1, 65536 // max(1, rows_x0.shape[1]))
    scratch = np.empty((chunk, rows_x0.shape[1]), dtype=np.float32)
    for start in range(0, rows_x0.shape[0], chunk):
        stop = min(start + chunk, rows_x0.shape[0])
        part = scratch[: stop - start]
        np.multiply(rows_eps[start:stop], noise, out=rows_out[start:stop])
        np.multiply(rows_x0[start:stop], signal, out=part)
        np.add(rows_out[start:stop], part, out=rows_out[start:stop])
    return out


def frame_timesteps(num_timesteps: int, num_frames: int) -> list[int]:
    """``num_frames`` evenly spaced steps from 0 (clean) to T (noisiest), rounded, distinct."""
    if num_frames < 2:
        raise ValueError(f"the number of frames must be at least 2, got {num_frames}")
    if num_frames > num_timesteps + 1:
        raise ValueError(
            f"{num_frames} frames need at least {num_frames - 1} timesteps, got {num_timesteps}"
        )
    return [int(t) for t in np.rint(np.linspace(0, num_timesteps, num_frames))]


def forward_frames(
    pixels: np.ndarray, schedule: NoiseSchedule, num_frames: int, seed: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(t, x_t as uint8)`` at ``num_frames`` evenly spaced t from 0 to T.

    One ε (seeded) is shared by all frames, so the sequence shows the same noise
    growing. Works in [−1, 1]: x_0 = pixels / 127.5 − 1. The first frame (t = 0)
    is ``pixels`` exactly.
    """
    if pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, got {pixels.dtype}")
    steps = frame_timesteps(schedule.num_timesteps, num_frames)
    x0 = pixels.astype(np.float32)
    x0 *= np.float32(1 / 127.5)
    x0 -= np.float32(1.0)  # x_0 in [−1, 1]
    eps = np.random.default_rng(seed).standard_normal(pixels.shape, dtype=np.float32)
    xt = np.empty_like(x0)
    for t in steps:
        if t == 0:
            yield 0, pixels.copy()
            continue
        q_sample(x0, eps, schedule.alpha_bar(t), out=xt)
        # Back to 0 … 255: (x_t + 1)·127.5, clipped (x_t can leave [−1, 1]).
        xt += np.float32(1.0)
        xt *= np.float32(127.5)
        np.clip(xt, 0.0, 255.0, out=xt)
        np.rint(xt, out=xt)
        yield t, xt.astype(np.uint8)
