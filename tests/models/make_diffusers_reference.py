"""Write tests/models/data/diffusers_reference.npz: diffusers' scheduler outputs for fixed inputs.

Run once with diffusers installed (``pip install diffusers``)::

    python tests/models/make_diffusers_reference.py

``test_schedulers.py`` checks our DDPM and DDIM schedulers against these numbers
without needing diffusers. Each case stores its configuration (JSON), the
timesteps after ``set_timesteps``, random model outputs and samples, and for a
few steps the ``prev_sample`` and ``pred_original_sample`` diffusers returns with
a ``torch.Generator`` seeded by ``seed + step index`` (our schedulers draw their
noise the same way). A chain case runs a whole sampling loop with a fixed toy
"model", and ``add_noise`` cases compare the forward jump.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).parent / "data" / "diffusers_reference.npz"
SHAPE = (2, 1, 6, 6)


def step_cases() -> list[dict]:
    """(sampler, scheduler config, step kwargs, number of inference steps) per case."""
    cases = []
    for schedule in ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"):
        for steps in (1000, 50, 10):
            cases.append({"sampler": "ddpm", "config": {"beta_schedule": schedule}, "steps": steps, "kwargs": {}})
    for prediction in ("sample", "v_prediction"):
        cases.append({"sampler": "ddpm", "config": {"prediction_type": prediction}, "steps": 50, "kwargs": {}})
    cases.append({"sampler": "ddpm", "config": {"clip_sample": False}, "steps": 20, "kwargs": {}})
    cases.append({"sampler": "ddpm", "config": {"variance_type": "fixed_large"}, "steps": 20, "kwargs": {}})
    cases.append({"sampler": "ddpm", "config": {"timestep_spacing": "trailing"}, "steps": 20, "kwargs": {}})
    for schedule in ("linear", "scaled_linear", "squaredcos_cap_v2"):
        for spacing in ("leading", "trailing"):
            for eta in (0.0, 0.5, 1.0):
                cases.append({"sampler": "ddim", "config": {"beta_schedule": schedule, "timestep_spacing": spacing},
                              "steps": 50 if eta != 0.5 else 10, "kwargs": {"eta": eta}})
    cases.append({"sampler": "ddim", "config": {"set_alpha_to_one": False}, "steps": 10, "kwargs": {"eta": 0.0}})
    cases.append({"sampler": "ddim", "config": {"clip_sample": False}, "steps": 10, "kwargs": {"eta": 0.0}})
    cases.append({"sampler": "ddim", "config": {"prediction_type": "v_prediction"}, "steps": 10,
                  "kwargs": {"eta": 0.3}})
    cases.append({"sampler": "ddim", "config": {}, "steps": 10,
                  "kwargs": {"eta": 0.0, "use_clipped_model_output": True}})
    return cases


def checked_indices(count: int) -> list[int]:
    """Which steps of a run are stored: a spread, always the first and the last two."""
    return sorted({0, 1, count // 3, count // 2, (2 * count) // 3, count - 2, count - 1} & set(range(count)))


def toy_model(x: torch.Tensor, t: int) -> torch.Tensor:
    """A fixed stand-in for a U-Net: smooth in x and t, so a chain stays finite."""
    return 0.7 * torch.tanh(x) + 0.01 * (t / 100.0) * torch.cos(3 * x)


def main() -> None:
    import diffusers
    from diffusers import DDIMScheduler, DDPMScheduler

    arrays: dict[str, np.ndarray] = {}
    cases = step_cases()
    for i, case in enumerate(cases):
        cls = DDPMScheduler if case["sampler"] == "ddpm" else DDIMScheduler
        scheduler = cls(**case["config"])
        scheduler.set_timesteps(case["steps"])
        timesteps = scheduler.timesteps.numpy()
        indices = checked_indices(len(timesteps))
        inputs = torch.Generator().manual_seed(100 + i)
        outputs, samples, prev, x0 = [], [], [], []
        for j in indices:
            model_output = torch.randn(SHAPE, generator=inputs) * 1.2
            sample = torch.randn(SHAPE, generator=inputs) * 1.5
            result = scheduler.step(model_output, timesteps[j], sample,
                                    generator=torch.Generator().manual_seed(1000 * i + j), **case["kwargs"])
            outputs.append(model_output), samples.append(sample)
            prev.append(result.prev_sample), x0.append(result.pred_original_sample)
        arrays[f"step{i}/timesteps"] = timesteps
        arrays[f"step{i}/indices"] = np.array(indices, dtype=np.int64)
        arrays[f"step{i}/model_output"] = torch.stack(outputs).numpy()
        arrays[f"step{i}/sample"] = torch.stack(samples).numpy()
        arrays[f"step{i}/prev_sample"] = torch.stack(prev).numpy()
        arrays[f"step{i}/pred_original_sample"] = torch.stack(x0).numpy()

    # Whole chains: x_T from a seeded generator, the same generator for every step's noise.
    chains = [("ddpm", {}, 50, {}), ("ddim", {}, 20, {"eta": 0.0}), ("ddim", {}, 20, {"eta": 1.0})]
    for i, (sampler, config, steps, kwargs) in enumerate(chains):
        scheduler = (DDPMScheduler if sampler == "ddpm" else DDIMScheduler)(**config)
        scheduler.set_timesteps(steps)
        generator = torch.Generator().manual_seed(7 + i)
        x = torch.randn(SHAPE, generator=generator)
        for t in scheduler.timesteps:
            x = scheduler.step(toy_model(x, int(t)), t, x, generator=generator, **kwargs).prev_sample
        arrays[f"chain{i}/final"] = x.numpy()

    # add_noise, one timestep per sample
    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    generator = torch.Generator().manual_seed(3)
    x0 = torch.rand((4, *SHAPE[1:]), generator=generator) * 2 - 1
    noise = torch.randn((4, *SHAPE[1:]), generator=generator)
    timesteps = torch.tensor([0, 10, 500, 999])
    arrays["add_noise/x0"], arrays["add_noise/noise"] = x0.numpy(), noise.numpy()
    arrays["add_noise/timesteps"] = timesteps.numpy()
    arrays["add_noise/noisy"] = scheduler.add_noise(x0, noise, timesteps).numpy()

    meta = {"diffusers": diffusers.__version__, "torch": torch.__version__, "shape": SHAPE,
            "step_cases": cases,
            "chains": [{"sampler": s, "config": c, "steps": n, "kwargs": k} for s, c, n, k in chains]}
    arrays["meta"] = np.array(json.dumps(meta))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"Wrote {OUT} ({len(cases)} step cases, {len(chains)} chains) with diffusers {diffusers.__version__}")


if __name__ == "__main__":
    main()
