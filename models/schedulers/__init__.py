"""Samplers that turn a noise-predicting model into images, shaped like diffusers' schedulers.

- :class:`DDPMScheduler` (``ddpm.py``): ancestral sampling, one small noisy step at a time.
- :class:`DDIMScheduler` (``ddim.py``): deterministic (η = 0) jumps over many steps at once.

Both share :class:`~models.schedulers.common.NoiseScheduler`: the β tables (from
:func:`models.schedules.make_betas`), ``set_timesteps(n)``, ``timesteps`` and
``add_noise(x0, noise, t)``; ``step(model_output, t, sample, generator=None)``
returns a :class:`SchedulerOutput` ``(prev_sample, pred_original_sample)``.
"""

from __future__ import annotations

from models.schedulers.common import SchedulerOutput, NoiseScheduler, spaced_timesteps
from models.schedulers.ddim import DDIMScheduler
from models.schedulers.ddpm import DDPMScheduler

SAMPLERS = ("ddpm", "ddim")

__all__ = ["SAMPLERS", "DDIMScheduler", "DDPMScheduler", "NoiseScheduler", "SchedulerOutput",
           "make_scheduler", "spaced_timesteps"]


def make_scheduler(sampler: str, **config) -> NoiseScheduler:
    """A DDPM or DDIM scheduler by name (``"ddpm"``/``"ddim"``) with the given config."""
    if sampler == "ddpm":
        return DDPMScheduler(**config)
    if sampler == "ddim":
        return DDIMScheduler(**config)
    raise ValueError(f"unknown sampler {sampler!r} (choose from: {', '.join(SAMPLERS)})")
