"""What the DDPM and DDIM schedulers share: β tables, timestep spacing, add_noise, the output.

The β schedules themselves come from :func:`models.schedules.make_betas` (the
Noise chapter's numpy formulas); here they become torch tables indexed like
diffusers': ``alphas_cumprod[t]`` for t = 0 … T − 1, t = T − 1 the noisiest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.schedules import BETA_SCHEDULES, make_betas

# diffusers' names for our schedules, so a config copied from diffusers works unchanged.
SCHEDULE_ALIASES = {"scaled_linear": "scaled-linear", "squaredcos_cap_v2": "cosine"}
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


@dataclass
class SchedulerOutput:
    """One reverse step: x_{t−1} and the x̂₀ it was computed from.

    Unpacks like diffusers' ``return_dict=False`` tuple:
    ``prev_sample, pred_original_sample = scheduler.step(...)``.
    """

    prev_sample: torch.Tensor  # x_{t−1}, same shape as the sample
    pred_original_sample: torch.Tensor  # x̂₀ predicted at step t

    def __iter__(self):
        return iter((self.prev_sample, self.pred_original_sample))


def schedule_name(beta_schedule: str) -> str:
    """Our name for a β schedule given in our spelling or diffusers'."""
    name = SCHEDULE_ALIASES.get(beta_schedule, beta_schedule)
    if name not in BETA_SCHEDULES:
        choices = ", ".join(BETA_SCHEDULES)
        raise ValueError(f"unknown β schedule {beta_schedule!r} (choose from: {choices})")
    return name


def spaced_timesteps(num_train_timesteps: int, num_inference_steps: int, spacing: str) -> np.ndarray:
    """The timesteps a sampler visits, from noisiest to cleanest (int64), as diffusers spaces them.

    - ``"leading"`` (diffusers' default): 0, k, 2k, … with k = T // n, reversed;
      the last visited step is t = 0 and the first is below T − 1.
    - ``"trailing"``: T − 1, T − 1 − T/n, …: starts at the noisiest step.
    - ``"linspace"``: n steps rounded from an even spacing of [0, T − 1].
    """
    T, n = num_train_timesteps, num_inference_steps
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= T:
        raise ValueError(f"the number of sampling steps must be a whole number from 1 to {T}, got {n!r}")
    if spacing == "leading":
        return (np.arange(n) * (T // n))[::-1].astype(np.int64)
    if spacing == "trailing":
        return (np.round(np.arange(T, 0, -T / n)) - 1).astype(np.int64)
    if spacing == "linspace":
        return np.linspace(0, T - 1, n).round()[::-1].astype(np.int64)
    raise ValueError(f"unknown timestep spacing {spacing!r} (choose from: {', '.join(TIMESTEP_SPACINGS)})")


class NoiseScheduler:
    """β, α and ᾱ tables, the timesteps to visit and the forward jump; subclasses add ``step``."""

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        prediction_type: str = "epsilon",
        clip_sample: bool = True,
        clip_sample_range: float = 1.0,
        timestep_spacing: str = "leading",
    ) -> None:
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"unknown prediction type {prediction_type!r} (choose from: {', '.join(PREDICTION_TYPES)})")
        if timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(
                f"unknown timestep spacing {timestep_spacing!r} (choose from: {', '.join(TIMESTEP_SPACINGS)})"
            )
        self.config = dict(
            num_train_timesteps=int(num_train_timesteps),
            beta_start=float(beta_start),
            beta_end=float(beta_end),
            beta_schedule=schedule_name(beta_schedule),
            prediction_type=prediction_type,
            clip_sample=bool(clip_sample),
            clip_sample_range=float(clip_sample_range),
            timestep_spacing=timestep_spacing,
        )
        self.num_train_timesteps = int(num_train_timesteps)
        self.prediction_type = prediction_type
        self.clip_sample = bool(clip_sample)
        self.clip_sample_range = float(clip_sample_range)
        self.timestep_spacing = timestep_spacing
        betas = make_betas(self.config["beta_schedule"], self.num_train_timesteps, beta_start, beta_end)
        # Tables in float64 (the step coefficients are read from them as Python floats)
        # and float32 tensors for add_noise.
        self.betas64 = betas  # β_t
        self.alphas_cumprod64 = np.cumprod(1.0 - betas)  # ᾱ_t = ∏_{s ≤ t} (1 − β_s)
        self.betas = torch.from_numpy(betas).float()
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.from_numpy(self.alphas_cumprod64).float()
        self.init_noise_sigma = 1.0  # x_T ~ N(0, I)
        self.set_timesteps(self.num_train_timesteps)

    def __len__(self) -> int:
        return self.num_train_timesteps

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        """Choose how many steps sampling takes; ``timesteps`` then lists them, noisiest first."""
        steps = spaced_timesteps(self.num_train_timesteps, num_inference_steps, self.timestep_spacing)
        self.num_inference_steps = int(num_inference_steps)
        self.timesteps = torch.from_numpy(steps.copy()).to(device)
        self._previous = {int(t): int(p) for t, p in zip(steps, [*steps[1:], -1])}

    def previous_timestep(self, timestep: int | torch.Tensor) -> int:
        """The step sampling visits after ``timestep`` (−1 after the last one)."""
        t = int(timestep)
        if t not in self._previous:
            raise ValueError(f"timestep {t} is not one of the {self.num_inference_steps} steps set by set_timesteps")
        return self._previous[t]

    def alpha_bar(self, t: int) -> float:
        """ᾱ_t as a float64; t = −1 means before the first step (ᾱ = 1, the clean image)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod64[t])

    def scale_model_input(self, sample: torch.Tensor, timestep: int | None = None) -> torch.Tensor:
        """The model sees x_t unscaled (kept for diffusers' loop shape)."""
        return sample

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Forward jump x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, one t per sample (DDPM eq. 4)."""
        abar = self.alphas_cumprod.to(original_samples.device, original_samples.dtype)[timesteps.to(original_samples.device)]
        abar = abar.reshape(-1, *([1] * (original_samples.ndim - 1)))  # (N, 1, 1, 1)
        return abar.sqrt() * original_samples + (1.0 - abar).sqrt() * noise

    def predict_original(self, model_output: torch.Tensor, t: int, sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x̂₀ and ε̂ from the model's output at step t, before any clipping."""
        abar = self.alpha_bar(t)
        a, b = abar**0.5, (1.0 - abar) ** 0.5  # √ᾱ_t, √(1 − ᾱ_t)
        if self.prediction_type == "epsilon":
            x0 = (sample - b * model_output) / a  # x̂₀ = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t  (DDPM eq. 15)
            return x0, model_output
        if self.prediction_type == "sample":
            return model_output, (sample - a * model_output) / b
        # v = √ᾱ·ε − √(1−ᾱ)·x₀  (Salimans & Ho): x̂₀ = √ᾱ·x_t − √(1−ᾱ)·v, ε̂ = √ᾱ·v + √(1−ᾱ)·x_t
        return a * sample - b * model_output, a * model_output + b * sample

    def _clip(self, x0: torch.Tensor) -> torch.Tensor:
        return x0.clamp(-self.clip_sample_range, self.clip_sample_range) if self.clip_sample else x0

    def _noise(
        self, like: torch.Tensor, generator: torch.Generator | None, variance_noise: torch.Tensor | None
    ) -> torch.Tensor:
        """z ~ N(0, I) drawn as diffusers' randn_tensor draws it (on the generator's device), or given."""
        if variance_noise is not None:
            if generator is not None:
                raise ValueError("pass either a generator or variance_noise, not both")
            return variance_noise
        device = generator.device if generator is not None else like.device
        return torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype).to(like.device)
