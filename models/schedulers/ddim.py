"""DDIM sampling: big deterministic jumps with the same trained model (Song et al. 2021).

DDIM keeps DDPM's training (the same ε-prediction network) but samples with a
different reverse process, one whose marginals q(x_t | x₀) are unchanged. With
x̂₀ predicted from ε̂, one step from t to any earlier step t' (eq. 12 of the paper):

    x_{t'} = √ᾱ_{t'}·x̂₀  +  √(1 − ᾱ_{t'} − σ_t²)·ε̂  +  σ_t·z
             "predicted x₀"   "direction pointing to x_t"   "random noise"

    σ_t(η) = η·√((1 − ᾱ_{t'}) / (1 − ᾱ_t))·√(1 − ᾱ_t / ᾱ_{t'})        (eq. 16)

η = 0 adds no noise: the same x_T always gives the same image, and 20–50 steps
are enough. η = 1 is DDPM's ancestral sampling over the same (skipped) steps.

Shaped like diffusers' ``DDIMScheduler``: ``step(model_output, t, sample, eta, ...)``
gives the same numbers for the same model output and noise.
"""

from __future__ import annotations

import torch

from models.schedulers.common import NoiseScheduler, SchedulerOutput


class DDIMScheduler(NoiseScheduler):
    """The DDIM sampler.

    Parameters
    ----------
    num_train_timesteps, beta_start, beta_end, beta_schedule, prediction_type,
    clip_sample, clip_sample_range, timestep_spacing
        As :class:`~models.schedulers.ddpm.DDPMScheduler`.
    eta
        η, the default stochasticity of ``step`` (0 = deterministic DDIM, 1 = DDPM-like).
    set_alpha_to_one
        After the last step use ᾱ = 1 (the clean image), as diffusers does by default;
        False uses ᾱ_0.
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
        timestep_spacing: str = "leading",
        eta: float = 0.0,
        set_alpha_to_one: bool = True,
    ) -> None:
        if not 0.0 <= eta:
            raise ValueError(f"eta must be at least 0, got {eta}")
        super().__init__(
            num_train_timesteps, beta_start, beta_end, beta_schedule,
            prediction_type, clip_sample, clip_sample_range, timestep_spacing,
        )
        self.eta = float(eta)
        self.final_alpha_cumprod = 1.0 if set_alpha_to_one else float(self.alphas_cumprod64[0])
        self.config.update(eta=self.eta, set_alpha_to_one=bool(set_alpha_to_one))

    def alpha_bar(self, t: int) -> float:
        """ᾱ_t; after the last step (t = −1) the final ᾱ (1 unless set_alpha_to_one=False)."""
        return self.final_alpha_cumprod if t < 0 else float(self.alphas_cumprod64[t])

    def variance(self, t: int, prev_t: int) -> float:
        """σ_t² / η² = (1 − ᾱ_{t'}) / (1 − ᾱ_t) · (1 − ᾱ_t / ᾱ_{t'})  (eq. 16)."""
        abar_t, abar_prev = self.alpha_bar(t), self.alpha_bar(prev_t)
        return (1.0 - abar_prev) / (1.0 - abar_t) * (1.0 - abar_t / abar_prev)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        eta: float | None = None,
        use_clipped_model_output: bool = False,
        generator: torch.Generator | None = None,
        variance_noise: torch.Tensor | None = None,
    ) -> SchedulerOutput:
        """One DDIM step from x_t to x_{t'}, t' the next visited timestep.

        ``eta`` overrides the scheduler's η for this step. The noise z (only when
        η > 0) is drawn from ``generator`` as diffusers draws it, or given as
        ``variance_noise``.
        """
        eta = self.eta if eta is None else float(eta)
        t = int(timestep)

        # 1. The previous step t' (the next one visited) and ᾱ_t, ᾱ_{t'}
        prev_t = self.previous_timestep(t)
        abar_t, abar_prev = self.alpha_bar(t), self.alpha_bar(prev_t)

        # 2. x̂₀ = (x_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t   ("predicted x₀" of eq. 12) and ε̂
        pred_original_sample, pred_epsilon = self.predict_original(model_output, t, sample)

        # 3. Clip x̂₀ to the data range
        pred_original_sample = self._clip(pred_original_sample)

        # 4. σ_t(η)  (eq. 16)
        std_dev_t = eta * self.variance(t, prev_t) ** 0.5

        # 5. Optionally recompute ε̂ from the clipped x̂₀ (as in Glide)
        if use_clipped_model_output:
            pred_epsilon = (sample - abar_t**0.5 * pred_original_sample) / (1.0 - abar_t) ** 0.5

        # 6. "Direction pointing to x_t": √(1 − ᾱ_{t'} − σ_t²)·ε̂
        direction = (1.0 - abar_prev - std_dev_t**2) ** 0.5 * pred_epsilon

        # 7. x_{t'} = √ᾱ_{t'}·x̂₀ + direction  (+ σ_t·z when η > 0)  (eq. 12)
        prev_sample = abar_prev**0.5 * pred_original_sample + direction
        if eta > 0:
            noise = self._noise(model_output, generator, variance_noise)
            prev_sample = prev_sample + std_dev_t * noise

        return SchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)
