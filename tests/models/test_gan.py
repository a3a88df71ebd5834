"""The DCGAN: separate D and G steps, live hyper-parameters, divergence, snapshots, weights, data."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from models.gan import (
    LOSSES,
    DCGAN,
    DCGANConfig,
    DivergedError,
    GANHyper,
    GANTrainer,
    class_coverage,
    fixed_noise,
    generate,
    load_dcgan,
    make_training_images,
    quality_metrics,
    save_dcgan,
    shipped_path,
)
from models.weights import WeightsError

TINY = DCGANConfig(latent_dim=8, width=4)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return make_training_images("digits", 256)


def tiny_trainer(digits: np.ndarray, **hyper) -> GANTrainer:
    return GANTrainer(DCGAN(TINY, seed=0), digits, GANHyper(batch_size=16, **hyper), seed=0)


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


def test_shapes_and_parameter_count():
    model = DCGAN(seed=0)
    images = model.generator(torch.randn(5, 64))
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1
    assert model.discriminator(images).shape == (5,)
    total = sum(model.parameter_counts().values())
    assert 200_000 < total < 1_000_000
    assert model.device == torch.device("cpu")


def test_same_seed_same_weights():
    a, b = DCGAN(TINY, seed=3), DCGAN(TINY, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c = DCGAN(TINY, seed=4)
    assert not torch.equal(a.generator.fc.weight, c.generator.fc.weight)


def test_step_d_changes_only_the_discriminator(digits):
    trainer = tiny_trainer(digits)
    g, d = state(trainer.model.generator), state(trainer.model.discriminator)
    result = trainer.step_d()
    assert set(result) == {"d_loss", "d_real", "d_fake"}
    assert 0 <= result["d_real"] <= 1 and 0 <= result["d_fake"] <= 1
    assert changed(g, trainer.model.generator) == set()  # batch-norm statistics included
    assert "conv1.parametrizations.weight.original" in changed(d, trainer.model.discriminator)
    assert trainer.step == 0


def test_step_g_changes_only_the_generator(digits):
    trainer = tiny_trainer(digits)
    g, d = state(trainer.model.generator), state(trainer.model.discriminator)
    result = trainer.step_g()
    assert set(result) == {"g_loss", "d_fake"}
    assert {"fc.weight", "up1.weight", "up2.weight"} <= changed(g, trainer.model.generator)
    assert changed(d, trainer.model.discriminator) == set()  # spectral-norm vectors included


def test_train_step_runs_d_steps_then_one_g_step(digits):
    trainer = tiny_trainer(digits, d_steps=3)
    losses = trainer.train_step()
    assert set(losses) == {"d_loss", "d_real", "d_fake", "g_loss"}
    assert trainer.step == 1 and trainer.d_updates == 3
    trainer.hyper.d_steps = 1  # read at the next step
    trainer.train_step()
    assert trainer.step == 2 and trainer.d_updates == 4


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains(digits, loss):
    trainer = tiny_trainer(digits, loss=loss)
    for _ in range(2):
        losses = trainer.train_step()
    assert all(math.isfinite(v) for v in losses.values())


def test_learning_rate_change_takes_effect_at_the_next_step(digits):
    trainer = tiny_trainer(digits)
    trainer.train_step()
    trainer.hyper.lr_g = 0.0  # frozen
    before = state(trainer.model.generator)
    trainer.step_g()
    assert torch.equal(trainer.model.generator.fc.weight, before["fc.weight"])
    assert trainer.opt_g.param_groups[0]["lr"] == 0.0
    trainer.hyper.lr_g = 1e-2
    trainer.step_g()
    assert (trainer.model.generator.fc.weight - before["fc.weight"]).abs().max() > 1e-4


def test_loss_and_batch_size_changes_take_effect(digits):
    trainer = tiny_trainer(digits, loss="hinge")
    trainer.step_d()
    assert len(trainer.last_real_scores) == 16
    trainer.hyper.batch_size = 8
    trainer.hyper.loss = "least-squares"
    before = trainer.d_updates
    trainer.step_d()
    assert len(trainer.last_real_scores) == 8 and trainer.d_updates == before + 1
    trainer.hyper.loss = "wasserstein"
    with pytest.raises(ValueError, match="unknown loss"):
        trainer.step_d()


def test_a_nan_weight_raises_diverged_error(digits):
    trainer = tiny_trainer(digits)
    trainer.train_step()
    with torch.no_grad():
        trainer.model.discriminator.fc.parametrizations.weight.original[0, 0] = float("nan")
    with pytest.raises(DivergedError, match="diverged"):
        trainer.train_step()


def test_a_huge_learning_rate_raises_and_restores_the_weights(digits):
    trainer = tiny_trainer(digits)
    trainer.train_step()
    trainer.hyper.lr_g = 1e300  # finite as a float, overflows the float32 weights
    before = state(trainer.model.generator)
    with pytest.raises(DivergedError, match="NaN or infinite"):
        trainer.step_g()
    params = {k for k, _ in trainer.model.generator.named_parameters()}
    assert all(torch.equal(v, before[k]) for k, v in trainer.model.generator.state_dict().items() if k in params)
    trainer.hyper.lr_g = float("inf")
    with pytest.raises(DivergedError, match="learning rate"):
        trainer.step_g()
    trainer.hyper.lr_g = -1.0
    with pytest.raises(ValueError, match="≥ 0"):
        trainer.step_g()
    trainer.hyper.lr_g = 2e-4  # training can go on from the restored weights
    assert math.isfinite(trainer.train_step()["g_loss"])


def test_run_yields_samples_from_the_fixed_noise_and_resumes(digits):
    trainer = tiny_trainer(digits)
    noise = fixed_noise(6, TINY.latent_dim, seed=1)
    snapshots = list(trainer.run(3, snapshot_every_s=0.0, fixed_noise=noise))
    assert [s.step for s in snapshots] == [1, 2, 3]
    last = snapshots[-1]
    assert last.done and last.total_steps == 3
    assert last.samples.shape == (6, 28, 28) and last.samples.dtype == np.uint8
    assert np.array_equal(last.samples, generate(trainer.model, noise))
    assert set(last.losses) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert last.d_real_scores.shape == (16,) and last.d_fake_scores.shape == (16,)
    assert last.samples_per_second > 0
    run = trainer.run(5, snapshot_every_s=0.0)
    first = next(run)
    run.close()  # stopping is closing the generator
    assert first.step == 4 and first.total_steps == 8 and first.samples.shape == (64, 28, 28)
    assert trainer.step == 4
    assert [s.step for s in trainer.run(1)] == [5]
    assert len(trainer.history["g_loss"]) == 5


def test_same_seed_same_training(digits):
    a, b = tiny_trainer(digits), tiny_trainer(digits)
    for _ in range(2):
        a.train_step()
        b.train_step()
    assert torch.equal(a.model.generator.up2.weight, b.model.generator.up2.weight)


def test_generate_takes_numpy_and_checks_the_shape():
    model = DCGAN(TINY, seed=0)
    z = fixed_noise(3, TINY.latent_dim, seed=2)
    assert torch.equal(z, fixed_noise(3, TINY.latent_dim, seed=2))
    assert np.array_equal(generate(model, z), generate(model, z.numpy()))
    with pytest.raises(ValueError, match="noise must be"):
        generate(model, torch.zeros(2, 5))


def test_save_load_round_trip_and_corrupt_files(tmp_path):
    model = DCGAN(TINY, seed=0)
    path = save_dcgan(model, tmp_path / "tiny", {"steps": 1})
    loaded, meta = load_dcgan(path)
    assert loaded.config == TINY and meta["card"]["steps"] == 1 and meta["kind"] == "dcgan"
    z = fixed_noise(4, TINY.latent_dim)
    assert np.array_equal(generate(model, z), generate(loaded, z))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError, match="truncated"):
        load_dcgan(path)
    with pytest.raises(WeightsError, match="missing"):
        load_dcgan(tmp_path / "nothing.safetensors")


def test_make_training_images_sources(tmp_path):
    from PIL import Image

    digits = make_training_images("digits", 32)
    assert digits.shape == (32, 28, 28) and digits.dtype == np.uint8
    assert make_training_images("digits", 32) is digits  # cached
    shapes = make_training_images("shapes", 8)
    assert shapes.shape == (8, 28, 28) and shapes.dtype == np.uint8 and shapes.std() > 10
    for i in range(3):
        Image.new("RGB", (40, 30), (80 * i, 100, 20)).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    folder = make_training_images("folder", folder=tmp_path)
    assert folder.shape == (3, 28, 28) and folder.dtype == np.uint8
    with pytest.raises(ValueError, match="folder"):
        make_training_images("folder")
    with pytest.raises(ValueError, match="unknown image source"):
        make_training_images("faces")


def test_trainer_refuses_bad_images():
    with pytest.raises(ValueError, match="uint8"):
        GANTrainer(DCGAN(TINY), np.zeros((4, 32, 32), np.uint8))


class _FakeEvaluator:
    """Calls every image a confident 3, and gives features from the pixels."""

    def digit_probabilities(self, images: np.ndarray) -> np.ndarray:
        p = np.zeros((len(images), 11), np.float32)
        p[:, 3] = 1
        return p

    def features(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1)[:, ::49].astype(np.float64)


def test_class_coverage_shows_collapse():
    coverage = class_coverage(DCGAN(TINY, seed=0), _FakeEvaluator(), count=20)
    assert coverage.shape == (11,) and coverage[3] == 1 and coverage.sum() == pytest.approx(1)


def test_quality_metrics_keys(monkeypatch):
    import models.evaluator as evaluator_module

    fake = _FakeEvaluator()
    monkeypatch.setattr(evaluator_module, "real_digit_reference", lambda ev, count: {
        "confident_fraction": 0.9, "features": fake.features(make_training_images("digits", count)), "fd_real": 1.0})
    report = quality_metrics(DCGAN(TINY, seed=0), samples=16, evaluator=fake)
    for key in ("confident_fraction", "real_confident_fraction", "class_entropy", "fd", "fd_real"):
        assert isinstance(report[key], float)
    assert report["confident_fraction"] == 1.0 and report["class_entropy"] == 0.0
    assert report["meets_goals"] == {"confident_fraction": True, "class_entropy": False,
                                     "fd": report["fd"] <= 5.0}


@pytest.mark.skipif(not shipped_path().exists(), reason="the shipped DCGAN is not trained yet")
def test_shipped_weights_make_digit_like_images():
    model, meta = load_dcgan()
    assert meta["card"]["steps"] > 0 and "recipe" in meta["card"]
    images = generate(model, fixed_noise(64, model.config.latent_dim, seed=5))
    ink = (images > 127).mean(axis=(1, 2))  # share of bright pixels per image
    assert 0.04 < np.median(ink) < 0.35  # strokes on black, like the real digits
    real = make_training_images("digits", 64)
    assert abs(np.median(ink) - np.median((real > 127).mean(axis=(1, 2)))) < 0.08
    assert images.reshape(64, -1).std(axis=0).mean() > 20  # varied, not one image


@pytest.mark.slow
def test_shipped_weights_meet_the_quality_goals():
    model, _ = load_dcgan()
    report = quality_metrics(model, 256)
    assert all(report["meets_goals"].values()), report


def test_shipped_files_are_readable_by_everyone():
    if not shipped_path().exists():
        pytest.skip("the shipped DCGAN is not trained yet")
    for suffix in (".safetensors", ".json", ".md"):
        mode = os.stat(shipped_path().with_suffix(suffix)).st_mode
        assert mode & 0o444 == 0o444
    assert shipped_path().stat().st_size < 5_000_000
