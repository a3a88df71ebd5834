"""DDPM and DDIM schedulers: the papers' closed forms, and diffusers' numbers for the same inputs."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.schedulers import DDIMScheduler, DDPMScheduler, SchedulerOutput, make_scheduler, spaced_timesteps
from models.schedules import NoiseSchedule, make_betas, q_sample

REFERENCE = Path(__file__).parent / "data" / "diffusers_reference.npz"
SHAPE = (2, 1, 6, 6)


def _randn(seed: int, shape=SHAPE, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


# --------------------------------------------------------------------------- tables and timesteps


@pytest.mark.parametrize("schedule", ["linear", "scaled-linear", "cosine", "sigmoid"])
def test_tables_come_from_make_betas(schedule):
    scheduler = DDPMScheduler(beta_schedule=schedule)
    betas = make_betas(schedule, 1000)
    np.testing.assert_allclose(scheduler.betas.numpy(), betas, rtol=1e-6)
    np.testing.assert_allclose(scheduler.alphas_cumprod64, NoiseSchedule.from_config(schedule).alphas_cumprod)
    assert len(scheduler) == 1000


def test_diffusers_schedule_names_are_accepted():
    assert DDIMScheduler(beta_schedule="squaredcos_cap_v2").config["beta_schedule"] == "cosine"
    assert DDPMScheduler(beta_schedule="scaled_linear").config["beta_schedule"] == "scaled-linear"
    with pytest.raises(ValueError, match="unknown β schedule 'quadratic'"):
        DDPMScheduler(beta_schedule="quadratic")


def test_leading_spacing_is_diffusers_default():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(50)
    assert scheduler.timesteps.tolist() == list(range(980, -1, -20))
    assert scheduler.timesteps.dtype == torch.int64
    assert [scheduler.previous_timestep(t) for t in (980, 20, 0)] == [960, 0, -1]


def test_trailing_and_linspace_spacing():
    assert spaced_timesteps(1000, 10, "trailing").tolist() == list(range(999, 0, -100))
    assert spaced_timesteps(1000, 3, "linspace").tolist() == [999, 500, 0]
    assert spaced_timesteps(1000, 1000, "leading").tolist() == list(range(999, -1, -1))


def test_default_timesteps_are_every_training_step():
    scheduler = DDPMScheduler(num_train_timesteps=10)
    assert scheduler.timesteps.tolist() == list(range(9, -1, -1))


@pytest.mark.parametrize("steps", [0, 1001, 2.5, True])
def test_bad_step_counts_are_refused(steps):
    with pytest.raises(ValueError, match="sampling steps"):
        DDPMScheduler().set_timesteps(steps)


def test_step_refuses_a_timestep_it_will_not_visit():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(10)
    with pytest.raises(ValueError, match="timestep 5 is not one of the 10 steps"):
        scheduler.step(torch.zeros(SHAPE), 5, torch.zeros(SHAPE))


def test_make_scheduler_by_name():
    assert isinstance(make_scheduler("ddpm"), DDPMScheduler)
    assert make_scheduler("ddim", eta=0.5).eta == 0.5
    with pytest.raises(ValueError, match="unknown sampler"):
        make_scheduler("euler")


# --------------------------------------------------------------------------- closed forms


def test_add_noise_is_the_forward_jump():
    scheduler = DDPMScheduler(beta_schedule="cosine")
    x0, noise = _randn(0).clamp(-1, 1), _randn(1)
    t = torch.tensor([3, 700])
    noisy = scheduler.add_noise(x0, noise, t)
    for i in range(2):
        abar = NoiseSchedule.from_config("cosine").alpha_bar(int(t[i]) + 1)  # the Noise chapter counts from 1
        expected = q_sample(x0[i].numpy(), noise[i].numpy(), abar)
        np.testing.assert_allclose(noisy[i].numpy(), expected, atol=1e-5)  # float32 table


def test_ddpm_step_is_the_posterior_mean_plus_noise():
    scheduler = DDPMScheduler(clip_sample=False)
    scheduler.set_timesteps(1000)
    t = 500
    x_t, eps, z = _randn(2), _randn(3), _randn(4)
    abar, abar_prev = scheduler.alphas_cumprod64[t], scheduler.alphas_cumprod64[t - 1]
    beta = scheduler.betas64[t]
    x0 = (x_t - math.sqrt(1 - abar) * eps) / math.sqrt(abar)  # eq. 15
    mean = (math.sqrt(abar_prev) * beta / (1 - abar)) * x0 + (
        math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar)) * x_t  # eq. 7
    sigma = math.sqrt((1 - abar_prev) / (1 - abar) * beta)
    out = scheduler.step(eps, t, x_t, variance_noise=z)
    torch.testing.assert_close(out.pred_original_sample, x0)
    torch.testing.assert_close(out.prev_sample, mean + sigma * z)


def test_ddpm_last_step_adds_no_noise_and_clips_x0():
    scheduler = DDPMScheduler()
    x_t, eps = _randn(5, scale=3.0), _randn(6)
    first = scheduler.step(eps, 0, x_t, generator=torch.Generator().manual_seed(0))
    second = scheduler.step(eps, 0, x_t, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(first.prev_sample, second.prev_sample)
    assert first.pred_original_sample.abs().max() <= 1.0
    # ᾱ_{−1} = 1: the last step lands on x̂₀ itself
    torch.testing.assert_close(first.prev_sample, first.pred_original_sample)


def test_ddpm_noise_follows_the_generator():
    scheduler = DDPMScheduler()
    x_t, eps = _randn(7), _randn(8)
    a = scheduler.step(eps, 999, x_t, generator=torch.Generator().manual_seed(1)).prev_sample
    b = scheduler.step(eps, 999, x_t, generator=torch.Generator().manual_seed(1)).prev_sample
    c = scheduler.step(eps, 999, x_t, generator=torch.Generator().manual_seed(2)).prev_sample
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError, match="either a generator or variance_noise"):
        scheduler.step(eps, 999, x_t, generator=torch.Generator(), variance_noise=eps)


def test_ddim_eta0_is_eq12_and_deterministic():
    scheduler = DDIMScheduler(clip_sample=False)
    scheduler.set_timesteps(50)
    t, t_prev = 500, 480
    x_t, eps = _randn(9), _randn(10)
    abar, abar_prev = scheduler.alphas_cumprod64[t], scheduler.alphas_cumprod64[t_prev]
    x0 = (x_t - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
    expected = math.sqrt(abar_prev) * x0 + math.sqrt(1 - abar_prev) * eps  # eq. 12 with σ = 0
    a = scheduler.step(eps, t, x_t, generator=torch.Generator().manual_seed(1))
    b = scheduler.step(eps, t, x_t, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a.prev_sample, expected)
    torch.testing.assert_close(a.prev_sample, b.prev_sample)


def test_ddim_eta1_over_every_step_is_ddpm():
    """η = 1 with no skipped steps gives σ² = β̃_t and DDPM's posterior mean (Song et al., §4.1)."""
    ddim, ddpm = DDIMScheduler(clip_sample=False, eta=1.0), DDPMScheduler(clip_sample=False)
    x_t, eps, z = _randn(11), _randn(12), _randn(13)
    for t in (999, 400, 1):
        a = ddim.step(eps, t, x_t, variance_noise=z).prev_sample
        b = ddpm.step(eps, t, x_t, variance_noise=z).prev_sample
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_step_output_unpacks_like_a_tuple():
    out = DDIMScheduler().step(_randn(14), 999, _randn(15))
    assert isinstance(out, SchedulerOutput)
    prev_sample, pred_original_sample = out
    assert prev_sample is out.prev_sample and pred_original_sample is out.pred_original_sample


# --------------------------------------------------------------------------- diffusers


def _reference() -> tuple[dict, np.lib.npyio.NpzFile]:
    data = np.load(REFERENCE)
    return json.loads(str(data["meta"])), data


def _reference_script():
    spec = importlib.util.spec_from_file_location("make_diffusers_reference", REFERENCE.parent.parent / "make_diffusers_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ours(sampler: str, config: dict):
    return (DDPMScheduler if sampler == "ddpm" else DDIMScheduler)(**config)


def test_reference_was_made_by_diffusers():
    meta, _ = _reference()
    assert meta["diffusers"] and len(meta["step_cases"]) >= 30


@pytest.mark.parametrize("index", range(39))
def test_steps_match_diffusers_reference(index):
    meta, data = _reference()
    case = meta["step_cases"][index]
    scheduler = _ours(case["sampler"], case["config"])
    scheduler.set_timesteps(case["steps"])
    timesteps = data[f"step{index}/timesteps"]
    np.testing.assert_array_equal(scheduler.timesteps.numpy(), timesteps)
    # ᾱ in float64 (ours) vs float32 (diffusers') differ in the 7th digit, which
    # 1/(1 − ᾱ_t) amplifies near t = 0 over 1000 single steps.
    tol = 5e-4 if case["steps"] == 1000 else 5e-5
    for k, j in enumerate(data[f"step{index}/indices"]):
        out = scheduler.step(
            torch.from_numpy(data[f"step{index}/model_output"][k]), int(timesteps[j]),
            torch.from_numpy(data[f"step{index}/sample"][k]),
            generator=torch.Generator().manual_seed(1000 * index + int(j)), **case["kwargs"],
        )
        np.testing.assert_allclose(out.prev_sample.numpy(), data[f"step{index}/prev_sample"][k], atol=tol, rtol=tol)
        np.testing.assert_allclose(out.pred_original_sample.numpy(), data[f"step{index}/pred_original_sample"][k],
                                   atol=tol, rtol=tol)


def test_whole_chains_match_diffusers_reference():
    toy_model = _reference_script().toy_model
    meta, data = _reference()
    for i, chain in enumerate(meta["chains"]):
        scheduler = _ours(chain["sampler"], chain["config"])
        scheduler.set_timesteps(chain["steps"])
        generator = torch.Generator().manual_seed(7 + i)
        x = torch.randn(tuple(meta["shape"]), generator=generator)
        for t in scheduler.timesteps:
            x = scheduler.step(toy_model(x, int(t)), t, x, generator=generator, **chain["kwargs"]).prev_sample
        np.testing.assert_allclose(x.numpy(), data[f"chain{i}/final"], atol=1e-4, rtol=1e-4)


def test_add_noise_matches_diffusers_reference():
    _, data = _reference()
    noisy = DDPMScheduler(beta_schedule="cosine").add_noise(
        torch.from_numpy(data["add_noise/x0"]), torch.from_numpy(data["add_noise/noise"]),
        torch.from_numpy(data["add_noise/timesteps"]),
    )
    np.testing.assert_allclose(noisy.numpy(), data["add_noise/noisy"], atol=1e-5)  # cumprod in float64 vs float32


@pytest.mark.parametrize("sampler, eta", [("ddpm", None), ("ddim", 0.0), ("ddim", 0.7)])
def test_matches_live_diffusers(sampler, eta):
    diffusers = pytest.importorskip("diffusers")
    ours = _ours(sampler, {"beta_schedule": "scaled-linear"})
    theirs = getattr(diffusers, f"{sampler.upper()}Scheduler")(beta_schedule="scaled_linear")
    ours.set_timesteps(25)
    theirs.set_timesteps(25)
    torch.testing.assert_close(ours.timesteps, theirs.timesteps)
    kwargs = {} if eta is None else {"eta": eta}
    x_ours = x_theirs = _randn(20)
    g_ours, g_theirs = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for t in ours.timesteps:
        eps = 0.5 * torch.tanh(x_ours)
        x_ours = ours.step(eps, t, x_ours, generator=g_ours, **kwargs).prev_sample
        x_theirs = theirs.step(0.5 * torch.tanh(x_theirs), t, x_theirs, generator=g_theirs, **kwargs).prev_sample
    torch.testing.assert_close(x_ours, x_theirs, atol=1e-4, rtol=1e-4)
