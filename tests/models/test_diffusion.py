"""Diffusion training and sampling: the objective, the frame generator, weights, quality."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from models.data import make_digits
from models.diffusion import (
    SHIPPED_RECIPE,
    DiffusionConfig,
    DiffusionFrame,
    DiffusionModel,
    DiffusionRecipe,
    generate,
    learning_rate,
    load_checkpoint,
    load_ddpm,
    loss_by_timestep,
    make_trainer,
    predict_noise,
    sample,
    save_checkpoint,
    save_ddpm,
    to_uint8,
)
from models.unet import UNetConfig
from models.weights import WeightsError

TINY = DiffusionConfig(unet=UNetConfig(channels=(8, 16, 16), emb_dim=32))
TINY_RECIPE = DiffusionRecipe(TINY, steps=15, batch_size=16, lr=5e-3, warmup_steps=5, data_count=256)


@pytest.fixture(scope="module")
def model() -> DiffusionModel:
    """A tiny random model whose zero-initialised output layers are randomised."""
    torch.manual_seed(0)
    model = DiffusionModel(TINY).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and not module.weight.any():
                nn.init.normal_(module.weight, std=0.1)
    return model


# --------------------------------------------------------------------------- training


def test_a_few_steps_lower_the_loss():
    images, labels = make_digits(64, seed=123)
    timesteps = [50, 300, 700]
    trainer = make_trainer(TINY_RECIPE)
    before = loss_by_timestep(trainer.model, images, timesteps, class_labels=labels)
    torch.manual_seed(0)
    snapshots = list(trainer.run(TINY_RECIPE.steps))
    after = loss_by_timestep(trainer.model, images, timesteps, class_labels=labels)
    assert snapshots[-1].done and trainer.step == TINY_RECIPE.steps
    assert set(snapshots[-1].losses) == {"loss", "mse"}
    assert after.mean() < 0.8 * before.mean()
    assert trainer.ema.updates == TINY_RECIPE.steps


def test_ema_trails_the_weights():
    trainer = make_trainer(dataclasses.replace(TINY_RECIPE, ema_decay=0.9))
    torch.manual_seed(0)
    list(trainer.run(3))
    raw = trainer.model.unet.conv_in.weight
    ema = trainer.ema.model.unet.conv_in.weight
    assert not torch.equal(raw, ema)
    assert not ema.requires_grad


def test_learning_rate_warms_up_then_decays():
    recipe = dataclasses.replace(SHIPPED_RECIPE, steps=1000, warmup_steps=100, lr=1e-3, final_lr_fraction=0.1)
    assert learning_rate(recipe, 0) == pytest.approx(1e-5)
    assert learning_rate(recipe, 99) == pytest.approx(1e-3)
    assert learning_rate(recipe, 550) == pytest.approx(0.55e-3)
    assert learning_rate(recipe, 1000) == pytest.approx(1e-4)


def test_checkpoint_resumes_model_ema_and_optimiser(tmp_path):
    trainer = make_trainer(TINY_RECIPE)
    list(trainer.run(3))
    path = save_checkpoint(trainer, tmp_path / "run.safetensors")
    resumed = make_trainer(TINY_RECIPE)
    load_checkpoint(resumed, path)
    assert resumed.step == 3 and resumed.ema.updates == 3
    for a, b in zip(trainer.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(trainer.ema.model.unet.conv_in.weight, resumed.ema.model.unet.conv_in.weight)
    list(resumed.run(2))
    assert resumed.step == 5


def test_predict_noise_shows_the_objective(model):
    images, labels = make_digits(3, seed=1)
    shown = predict_noise(model, images, t=400, seed=2, class_labels=labels)
    abar = model.scheduler("ddpm").alphas_cumprod64[400]
    np.testing.assert_allclose(shown.x0, images / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(shown.x_t, np.sqrt(abar) * shown.x0 + np.sqrt(1 - abar) * shown.noise, atol=1e-5)
    assert shown.eps_hat.shape == (3, 28, 28) and shown.t == 400
    assert shown.mse == pytest.approx(float((shown.error ** 2).mean()), rel=1e-5)
    np.testing.assert_array_equal(predict_noise(model, images, 400, seed=2, class_labels=labels).noise, shown.noise)


# --------------------------------------------------------------------------- sampling


def test_one_frame_per_step_with_the_schedulers_timesteps(model):
    frames = list(sample(model, "ddim", num_steps=5, batch=3, seed=0))
    assert len(frames) == 5
    assert [f.index for f in frames] == list(range(5)) and all(f.total == 5 for f in frames)
    assert [f.t for f in frames] == [800, 600, 400, 200, 0]
    assert [f.prev_t for f in frames] == [600, 400, 200, 0, -1]
    assert frames[-1].last and not frames[0].last
    for frame in frames:
        assert isinstance(frame, DiffusionFrame)
        for array in (frame.x_t, frame.eps_hat, frame.x0_hat, frame.x_prev):
            assert array.shape == (3, 28, 28) and array.dtype == np.float32 and array.flags.c_contiguous
    for before, after in zip(frames, frames[1:]):
        np.testing.assert_array_equal(before.x_prev, after.x_t)  # frames chain
    np.testing.assert_allclose(frames[0].update, frames[0].x_prev - frames[0].x_t)


def test_first_frame_is_seeded_gaussian_noise_and_last_is_the_clean_x0(model):
    frames = list(sample(model, "ddim", num_steps=4, batch=2, seed=9))
    expected = torch.randn((2, 1, 28, 28), generator=torch.Generator().manual_seed(9))[:, 0].numpy()
    np.testing.assert_array_equal(frames[0].x_t, expected)
    # DDIM's last step lands on ᾱ = 1: the final image is x̂₀
    np.testing.assert_allclose(frames[-1].x_prev, frames[-1].x0_hat, atol=1e-6)


def test_the_models_ddpm_clips_x0_and_its_ddim_does_not(model):
    assert model.scheduler("ddpm").clip_sample and not model.scheduler("ddim").clip_sample
    ddpm = next(iter(sample(model, "ddpm", 10, 2, seed=0)))
    ddim = next(iter(sample(model, "ddim", 10, 2, seed=0)))
    assert np.abs(ddpm.x0_hat).max() <= 1.0 < np.abs(ddim.x0_hat).max()  # x̂₀ at t = 900 is far out


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_same_seed_same_frames_other_seed_other_frames(model, sampler):
    def run(seed):
        return list(sample(model, model.scheduler(sampler, **({"eta": 0.5} if sampler == "ddim" else {})),
                           num_steps=6, batch=2, seed=seed, class_labels=[1, 2], guidance=2.0))

    a, b, c = run(4), run(4), run(5)
    for x, y in zip(a, b):
        for field in ("x_t", "eps_hat", "x0_hat", "x_prev"):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field))
    assert not np.array_equal(a[-1].x_prev, c[-1].x_prev)


def test_the_parallel_unet_call_gives_the_frames_of_the_plain_call(model):
    def run(parallel):
        return list(sample(model, "ddpm", 8, 5, seed=2, class_labels=[1, 2, 3, 4, 5], guidance=2.0, parallel=parallel))

    for fast, plain in zip(run(True), run(False)):
        np.testing.assert_allclose(fast.eps_hat, plain.eps_hat, atol=1e-4)
        np.testing.assert_allclose(fast.x_prev, plain.x_prev, atol=1e-4)


def test_ddim_eta0_is_deterministic_given_x_T(model):
    """Only x_T is random: the same seed gives the same path however the generator is used afterwards."""
    eta0 = list(sample(model, model.scheduler("ddim", eta=0.0), 5, 2, seed=1))
    eta1 = list(sample(model, model.scheduler("ddim", eta=1.0), 5, 2, seed=1))
    np.testing.assert_array_equal(eta0[0].x_t, eta1[0].x_t)
    assert not np.array_equal(eta0[-1].x_prev, eta1[-1].x_prev)


def test_guidance_extrapolates_from_unconditional_to_conditional(model):
    def eps(guidance, labels=(4, 4)):
        return next(iter(sample(model, "ddim", 3, 2, seed=0, class_labels=labels, guidance=guidance))).eps_hat

    uncond = next(iter(sample(model, "ddim", 3, 2, seed=0))).eps_hat
    cond = eps(1.0)
    np.testing.assert_allclose(eps(0.0), uncond, atol=1e-5)
    np.testing.assert_allclose(eps(3.0), uncond + 3.0 * (cond - uncond), atol=1e-4)
    np.testing.assert_array_equal(eps(1.0, 4), cond)  # one label for the whole batch


def test_features_of_each_step_when_asked(model):
    frame = next(iter(sample(model, "ddpm", 2, 2, seed=0, class_labels=[0, 1], guidance=2.0,
                             record_features=True)))
    assert frame.features["middle"].shape == (2, 16, 7, 7)
    assert set(frame.features) == {b["name"] for b in model.unet.blocks()}
    assert next(iter(sample(model, "ddpm", 2, 2, seed=0))).features is None


def test_bad_labels_are_refused(model):
    with pytest.raises(ValueError, match="got 3 class labels for a batch of 2"):
        next(iter(sample(model, "ddim", 2, 2, 0, class_labels=[1, 2, 3])))
    with pytest.raises(ValueError, match="class labels must be 0 … 9"):
        next(iter(sample(model, "ddim", 2, 2, 0, class_labels=[1, 11])))
    with pytest.raises(ValueError, match="η is a DDIM setting"):
        model.scheduler("ddpm", eta=0.5)


def test_generate_gives_uint8_digits_in_batches(model):
    images = generate(model, "ddim", 2, count=5, seed=0, batch_size=2)
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8
    first_batch = generate(model, "ddim", 2, count=2, seed=0, batch_size=2)
    np.testing.assert_array_equal(images[:2], first_batch)


def test_to_uint8():
    np.testing.assert_array_equal(to_uint8(np.array([-1.5, -1.0, 0.0, 1.0, 2.0])), [0, 0, 128, 255, 255])


def test_our_loop_matches_diffusers_with_the_same_unet(model):
    diffusers = pytest.importorskip("diffusers")
    ours = list(sample(model, model.scheduler("ddpm"), 10, 2, seed=3))[-1].x_prev
    scheduler = diffusers.DDPMScheduler()
    scheduler.set_timesteps(10)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn((2, 1, 28, 28), generator=generator)
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(model(x, t), t, x, generator=generator).prev_sample
    np.testing.assert_allclose(ours, x[:, 0].numpy(), atol=1e-4)


# --------------------------------------------------------------------------- weights


def test_save_and_load_round_trip(model, tmp_path):
    path = save_ddpm(model, tmp_path / "tiny", {"steps": 0})
    loaded, meta = load_ddpm(path)
    assert loaded.config == model.config and meta["kind"] == "ddpm"
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, 3, torch.tensor([2])), model(x, 3, torch.tensor([2])))
    assert (tmp_path / "tiny.md").read_text().startswith("# tiny")


def test_corrupt_weights_are_a_weights_error(model, tmp_path):
    path = save_ddpm(model, tmp_path / "tiny")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError, match="truncated"):
        load_ddpm(path)
    with pytest.raises(WeightsError, match="does not exist|missing"):
        load_ddpm(tmp_path / "nothing.safetensors")


def test_shipped_model_loads_and_samples_digits():
    model, meta = load_ddpm("ddpm-digits")
    assert meta["card"]["steps"] > 0 and "metrics" in meta["card"]
    frames = list(sample(model, "ddim", 10, 2, seed=0, class_labels=[3, 8], guidance=2.0))
    final = to_uint8(frames[-1].x_prev)
    assert final.shape == (2, 28, 28)
    assert 0.03 < (final > 128).mean() < 0.5  # strokes on a dark background, like the data


@pytest.mark.slow
def test_shipped_model_meets_the_quality_goals_with_ddim50():
    from models.diffusion import quality_metrics

    model, _ = load_ddpm("ddpm-digits")
    report = quality_metrics(model, "ddim", 50, samples=256)
    assert report["conditional_accuracy"] >= 0.95
    assert report["class_entropy"] >= report["goals"]["class_entropy"]
    assert report["fd"] <= report["goals"]["fd"]
    assert report["confident_fraction"] >= report["goals"]["confident_fraction"]
