"""DDPM sampling: ancestral steps through the learned reverse process (Ho et al. 2020).

The forward process adds noise, q(x_t | x₀) = N(√ᾱ_t·x₀, (1 − ᾱ_t)·I). Its
reverse, given x₀, is Gaussian too (eq. 6–7 of the paper):

    q(x_{t−1} | x_t, x₀) = N(μ̃_t(x_t, x₀), β̃_t·I)
    μ̃_t = √ᾱ_{t−1}·β_t / (1 − ᾱ_t) · x₀  +  √α_t·(1 − ᾱ_{t−1}) / (1 − ᾱ_t) · x_t
    β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t

The network does not know x₀, so each step puts in its guess x̂₀, made from the
predicted noise ε̂ (eq. 15), and draws x_{t−1} from that Gaussian. Each step adds
fresh noise, so the same model gives different samples for different seeds.

Shaped like diffusers' ``DDPMScheduler`` (same arguments, same timesteps, same
numbers for the same model output and noise)::

    scheduler = DDPMScheduler()
    scheduler.set_timesteps(1000)
    x = torch.randn(16, 1, 28, 28, generator=generator)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t), t, x, generator=generator).prev_sample
"""

from __future__ import annotations

import torch

from models.schedulers.common import NoiseScheduler, SchedulerOutput

VARIANCE_TYPES = ("fixed_small", "fixed_large")


class DDPMScheduler(NoiseScheduler):
    """The DDPM reverse process with fixed variances.

    Parameters
    ----------
    num_train_timesteps
        T, the number of noising steps the model was trained with.
    beta_start, beta_end, beta_schedule
        The β schedule: "linear", "scaled-linear", "cosine" or "sigmoid"
        (diffusers' "scaled_linear" and "squaredcos_cap_v2" are accepted too).
    prediction_type
        What the model predicts: "epsilon" (the noise), "sample" (x₀) or "v_prediction".
    clip_sample
        Clip x̂₀ to ±``clip_sample_range`` (the data range) before using it.
    variance_type
        "fixed_small" (σ² = β̃_t, the default) or "fixed_large" (σ² = β_t).
    timestep_spacing
        How ``set_timesteps(n)`` picks n of the T steps (diffusers' default "leading").
    """

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        prediction_type: str = "epsilon",
        clip_sample: bool = True,
        clip_sample_range: float = 1.0,
        variance_type: str = "fixed_small",
        timestep_spacing: str = "leading",
    ) -> None:
        if variance_type not in VARIANCE_TYPES:
            raise ValueError(f"unknown variance type {variance_type!r} (choose from: {', '.join(VARIANCE_TYPES)})")
        super().__init__(
            num_train_timesteps, beta_start, beta_end, beta_schedule,
            prediction_type, clip_sample, clip_sample_range, timestep_spacing,
        )
        self.variance_type = variance_type
        self.config["variance_type"] = variance_type

    def variance(self, t: int) -> float:
        """σ_t² of the step from t to the previous visited timestep."""
        prev_t = self.previous_timestep(t)
        abar_t, abar_prev = self.alpha_bar(t), self.alpha_bar(prev_t)
        beta_t = 1.0 - abar_t / abar_prev  # β of the whole jump t → prev_t (= β_t for single steps)
        if self.variance_type == "fixed_large":
            return beta_t
        return max((1.0 - abar_prev) / (1.0 - abar_t) * beta_t, 1e-20)  # β̃_t (eq. 7)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        variance_noise: torch.Tensor | None = None,
    ) -> SchedulerOutput:
        """One ancestral step: from x_t and the model's output to x_{t−1} (and x̂₀).

        The noise z of step 6 is drawn from ``generator`` exactly as diffusers
        draws it (so the same seed gives the same samples), or given as
        ``variance_noise``. The last step (t = 0) adds none.
        """
        t = int(timestep)
        prev_t = self.previous_timestep(t)

        # 1. ᾱ_t and ᾱ_{t−1} (1 before the first step), and the α_t, β_t of this jump
        abar_t, abar_prev = self.alpha_bar(t), self.alpha_bar(prev_t)
        alpha_t = abar_t / abar_prev  # α_t = ᾱ_t / ᾱ_{t−1}
        beta_t = 1.0 - alpha_t

        # 2. x̂₀ from the model's output: x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t  (eq. 15)
        pred_original_sample, _ = self.predict_original(model_output, t, sample)

        # 3. Clip x̂₀ to the data range
        pred_original_sample = self._clip(pred_original_sample)

        # 4. Coefficients of x̂₀ and x_t in the posterior mean μ̃_t  (eq. 7)
        x0_coeff = abar_prev**0.5 * beta_t / (1.0 - abar_t)
        xt_coeff = alpha_t**0.5 * (1.0 - abar_prev) / (1.0 - abar_t)

        # 5. μ̃_t(x_t, x̂₀)
        prev_sample = x0_coeff * pred_original_sample + xt_coeff * sample

        # 6. x_{t−1} = μ̃_t + σ_t·z, z ~ N(0, I), except at the last step
        if t > 0:
            noise = self._noise(model_output, generator, variance_noise)
            prev_sample = prev_sample + self.variance(t) ** 0.5 * noise

        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)
