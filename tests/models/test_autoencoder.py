"""Autoencoder and VAE: shapes, loss, training, stop/resume, the latent helpers, shipped weights."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models.autoencoder import (
    LABEL_WEIGHT_2D,
    QUALITY_GOALS,
    SHIPPED_AUTOENCODERS,
    Autoencoder,
    AutoencoderConfig,
    autoencoder_loss,
    decode_latents,
    encode_digits,
    latent_knn_accuracy,
    latent_walk,
    lerp,
    load_autoencoder,
    make_trainer,
    reconstruct_digits,
    reconstruction_metrics,
    save_autoencoder,
    shipped_path,
    slerp,
)
from models.data import make_digits, to_tensor
from models.weights import WeightsError, weights_files

REPO = Path(__file__).resolve().parents[2]
TINY = dict(width=4, hidden=16)  # a model that trains in a blink
# Measured on the shipped weights (200 digits of seed 1_000_001): ae-2d 0.032, vae-2d 0.034,
# vae-16d 0.0063 mean squared error per pixel (values in [0, 1]); the limits leave some room.
MSE_LIMITS = {"ae-2d": 0.045, "vae-2d": 0.045, "vae-16d": 0.012}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run faster on one thread, and a busy machine does not stall them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fresh_digits() -> tuple[np.ndarray, np.ndarray]:
    return make_digits(200, seed=1_000_001)


def layer_shapes(model: Autoencoder, x: torch.Tensor) -> list[tuple[int, ...]]:
    """The shape after every non-activation layer, as a forward pass really makes them."""
    shapes = [tuple(x.shape[1:])]
    h = x
    for layer in model.encoder:
        h = layer(h)
        if not isinstance(layer, nn.ReLU):
            shapes.append(tuple(h.shape[1:]))
    mu, logvar = model.encode(x)
    if logvar is not None:
        shapes.append(tuple(torch.stack([mu, logvar], dim=1).shape[1:]))
    shapes.append(tuple(mu.shape[1:]))
    h = mu
    for layer in model.decoder:
        h = layer(h)
        if not isinstance(layer, nn.ReLU):
            shapes.append(tuple(h.shape[1:]))
    return shapes


@pytest.mark.parametrize("config", [
    AutoencoderConfig(latent_dim=2, variational=False),
    AutoencoderConfig(latent_dim=16, variational=True),
    AutoencoderConfig(latent_dim=3, width=8, hidden=32),
])
def test_stages_are_the_shapes_a_forward_pass_makes(config):
    model = Autoencoder(config)
    stages = model.stages()
    assert [shape for _, shape in stages] == layer_shapes(model, torch.zeros(2, 1, 28, 28))
    names = [name for name, _ in stages]
    assert names[0] == "input" and names[-1] == "output" and len(set(names)) == len(names)
    assert dict(stages)["latent z"] == (config.latent_dim,)
    assert ("μ, log σ²" in names) == config.variational


def test_forward_shapes_range_and_sampling():
    torch.manual_seed(0)
    x = to_tensor(make_digits(4, seed=5)[0])  # (4, 1, 28, 28)
    vae = Autoencoder(AutoencoderConfig(latent_dim=5, **TINY))
    out = vae.eval()(x)
    assert out.reconstruction.shape == out.logits.shape == (4, 1, 28, 28)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (4, 5)
    assert out.reconstruction.min() >= -1 and out.reconstruction.max() <= 1
    torch.testing.assert_close(out.z, out.mu)  # eval mode decodes the mean
    torch.testing.assert_close(out.reconstruction, vae.decode(out.z))
    assert not torch.allclose(vae.train()(x).z, out.mu)  # training samples around it

    ae = Autoencoder(AutoencoderConfig(latent_dim=2, variational=False, **TINY))
    out = ae.train()(x)
    assert out.logvar is None and ae.to_logvar is None
    torch.testing.assert_close(out.z, out.mu)


def test_loss_is_recon_plus_beta_kl():
    torch.manual_seed(0)
    x = to_tensor(make_digits(8, seed=5)[0])
    vae = Autoencoder(AutoencoderConfig(latent_dim=4, beta=2.5, **TINY))
    torch.manual_seed(1)
    losses = autoencoder_loss(vae, x)
    torch.manual_seed(1)
    out = vae(x)
    ink = (x + 1) / 2
    recon = nn.functional.binary_cross_entropy_with_logits(out.logits, ink, reduction="sum") / 8
    kl = 0.5 * (out.mu**2 + out.logvar.exp() - 1 - out.logvar).sum() / 8
    torch.testing.assert_close(losses["recon"], recon.detach())
    torch.testing.assert_close(losses["kl"], kl.detach())
    torch.testing.assert_close(losses["loss"], recon + 2.5 * kl)
    assert losses["kl"] > 0

    ae = Autoencoder(AutoencoderConfig(variational=False, beta=7.0, **TINY))
    losses = autoencoder_loss(ae, (x, torch.zeros(8)))  # (images, labels) batches work too
    assert losses["kl"] == 0 and losses["loss"] == losses["recon"]


def test_a_few_training_steps_lower_the_loss():
    trainer = make_trainer(AutoencoderConfig(latent_dim=2, **TINY), data_count=256, batch_size=32, lr=5e-3)
    first = trainer.compute_loss(trainer.model, next(trainer.batches))["loss"].item()
    snapshots = list(trainer.run(60))
    assert snapshots[-1].done and trainer.step == 60
    assert snapshots[-1].losses["loss"] < 0.8 * first
    assert set(snapshots[-1].losses) == {"loss", "recon", "kl"}


def test_the_same_seed_gives_the_same_model_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a = make_trainer(AutoencoderConfig(**TINY), data_count=64, batch_size=16, seed=3).model
    b = make_trainer(AutoencoderConfig(**TINY), data_count=64, batch_size=16, seed=3).model
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_stop_mid_run_and_resume_continues():
    trainer = make_trainer(AutoencoderConfig(latent_dim=2, **TINY), data_count=256, batch_size=32)
    run = trainer.run(100_000)
    first = next(run)  # about 100 ms of training
    run.close()  # what the Stop button does
    stopped = trainer.step
    assert 0 < first.step == stopped < 100_000 and not trainer.model.training
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    adam_steps = trainer.optimizer.state[next(trainer.model.parameters())]["step"].item()
    assert adam_steps == stopped

    snapshots = list(trainer.run(5))
    assert snapshots[-1].step == stopped + 5 == trainer.step
    assert trainer.optimizer.state[next(trainer.model.parameters())]["step"].item() == stopped + 5
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, weights[k])]
    assert changed  # the same model went on learning


def test_config_is_checked():
    for bad in (dict(latent_dim=0), dict(latent_dim=2.5), dict(beta=-1.0), dict(beta=float("nan")),
                dict(width=0), dict(variational="yes")):
        with pytest.raises(ValueError):
            AutoencoderConfig(**bad)
    assert AutoencoderConfig(latent_dim=16).name == "vae-16d"
    assert AutoencoderConfig(variational=False).name == "ae-2d"


# ---------------------------------------------------------------------------
# Interpolation


def test_lerp_and_slerp_end_points_and_shapes():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    t = np.linspace(0, 1, 7)
    for interpolate in (lerp, slerp):
        path = interpolate(a, b, t)
        assert path.shape == (7, 16)
        np.testing.assert_allclose(path[0], a, atol=1e-12)
        np.testing.assert_allclose(path[-1], b, atol=1e-12)
        np.testing.assert_allclose(interpolate(a, b, 0.0), a, atol=1e-12)
        assert interpolate(a, b, 0.5).shape == (16,)
    np.testing.assert_allclose(lerp(a, b, 0.5), (a + b) / 2)


def test_slerp_keeps_the_norm_and_moves_evenly():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)  # equal lengths: every point keeps that length
    path = slerp(a, b, np.linspace(0, 1, 9))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a))
    assert np.linalg.norm(lerp(a, b, 0.5)) < 0.9 * np.linalg.norm(a)  # a straight line cuts inside
    angles = np.arccos(np.clip(np.sum(path[1:] * path[:-1], 1) / np.linalg.norm(a) ** 2, -1, 1))
    np.testing.assert_allclose(angles, angles[0])  # equal turns per step

    c = 3 * rng.standard_normal(16)  # different lengths: the length goes linearly
    lengths = np.linalg.norm(slerp(a, c, np.linspace(0, 1, 5)), axis=1)
    np.testing.assert_allclose(lengths, np.linspace(np.linalg.norm(a), np.linalg.norm(c), 5))


def test_slerp_falls_back_to_lerp_when_there_is_no_plane():
    a = np.array([1.0, 2.0])
    for b in (2 * a, -a, np.zeros(2)):
        np.testing.assert_allclose(slerp(a, b, np.linspace(0, 1, 4)), lerp(a, b, np.linspace(0, 1, 4)))


# ---------------------------------------------------------------------------
# Shipped weights


@pytest.fixture(scope="module")
def shipped() -> dict[str, tuple[Autoencoder, dict]]:
    return {name: load_autoencoder(name) for name in SHIPPED_AUTOENCODERS}


def test_shipped_weights_are_small_and_carry_their_card(shipped):
    expected = {"ae-2d": (2, False), "vae-2d": (2, True), "vae-16d": (16, True)}
    for name, (model, meta) in shipped.items():
        tensors, config, card = weights_files(shipped_path(name))
        assert tensors.stat().st_size < 5_000_000 and config.is_file() and card.is_file()
        assert (model.config.latent_dim, model.config.variational) == expected[name]
        assert not model.training
        info = meta["card"]
        assert info["steps"] > 0 and info["cpu_seconds"] > 0 and info["wall_seconds"] > 0
        assert "python -m models.autoencoder train --name " + name in info["recipe"]
        metrics = info["metrics"]
        assert 0 <= metrics["latent_knn_accuracy"] <= 1 and 0 < metrics["recon_mse"] < MSE_LIMITS[name]
        assert "## Metrics" in card.read_text()
    recon_accuracy = shipped["vae-16d"][1]["card"]["metrics"].get("recon_accuracy")
    assert recon_accuracy is None or recon_accuracy >= QUALITY_GOALS["recon_accuracy"]


def test_the_2d_vae_meets_the_knn_goal(shipped):
    assert shipped["vae-2d"][1]["card"]["metrics"]["latent_knn_accuracy"] >= QUALITY_GOALS["latent_knn_accuracy"]
    assert shipped["vae-2d"][0].config.label_weight == LABEL_WEIGHT_2D
    assert latent_knn_accuracy(shipped["vae-2d"][0], fit_count=1000, test_count=500) >= QUALITY_GOALS["latent_knn_accuracy"]


def test_the_label_term_is_a_digit_classifier_on_mu():
    torch.manual_seed(0)
    plain = Autoencoder(AutoencoderConfig(latent_dim=2))
    assert plain.to_class is None and not any(k.startswith("to_class") for k in plain.state_dict())
    model = Autoencoder(AutoencoderConfig(latent_dim=2, label_weight=10.0)).eval()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    labels = torch.arange(8) % 10
    terms = autoencoder_loss(model, (x, labels))
    with torch.no_grad():
        expected_label = torch.nn.functional.cross_entropy(model.to_class(model.encode(x)[0]), labels)
    assert terms["label"] == pytest.approx(expected_label.item(), rel=1e-5)
    without = autoencoder_loss(model, x)  # images alone: no label term
    assert "label" not in without


def test_a_label_weight_trains_on_labelled_batches():
    trainer = make_trainer(AutoencoderConfig(latent_dim=2, label_weight=20.0), data_count=512, batch_size=64)
    first = next(trainer.run(1)).losses
    losses = [s.losses for s in trainer.run(40)]
    assert "label" in first and losses[-1]["label"] < first["label"]


@pytest.mark.parametrize("name", SHIPPED_AUTOENCODERS)
def test_shipped_weights_reconstruct_fresh_digits(shipped, fresh_digits, name):
    model, _ = shipped[name]
    images, _ = fresh_digits
    recon = reconstruct_digits(model, images)
    assert recon.dtype == np.uint8 and recon.shape == images.shape
    mse = (((recon.astype(float) - images) / 255) ** 2).mean()
    assert mse < MSE_LIMITS[name]
    assert reconstruction_metrics(model, 200, 1_000_001)["recon_mse"] == pytest.approx(mse)


def test_encode_and_decode_take_and_give_numpy(shipped, fresh_digits):
    model, _ = shipped["vae-16d"]
    images, _ = fresh_digits
    codes = encode_digits(model, images[:10])
    assert codes.dtype == np.float32 and codes.shape == (10, 16) and codes.flags.c_contiguous
    np.testing.assert_array_equal(encode_digits(model, images[:10]), codes)  # means: no sampling
    decoded = decode_latents(model, codes)
    assert decoded.dtype == np.uint8 and decoded.shape == (10, 28, 28)
    assert decode_latents(model, np.zeros((0, 16))).shape == (0, 28, 28)
    with pytest.raises(ValueError, match="uint8 digits"):
        encode_digits(model, images.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(N, 16\)"):
        decode_latents(model, np.zeros((3, 2)))


@pytest.mark.parametrize("spherical", [False, True])
def test_walk_end_points_decode_like_the_inputs(shipped, fresh_digits, spherical):
    model, _ = shipped["vae-16d"]
    images, labels = fresh_digits
    a, b = images[0], images[int(np.flatnonzero(labels != labels[0])[0])]
    walk = latent_walk(model, a, b, 9, spherical=spherical)
    assert walk.dtype == np.uint8 and walk.shape == (9, 28, 28)
    ends = reconstruct_digits(model, np.stack([a, b]))
    assert np.abs(walk[[0, -1]].astype(int) - ends).max() <= 1  # the same codes, decoded
    for frame, image in ((walk[0], a), (walk[-1], b)):
        assert (((frame.astype(float) - image) / 255) ** 2).mean() < MSE_LIMITS["vae-16d"]
    middle = walk[4].astype(float)
    assert np.abs(middle - walk[0]).mean() > 5 and np.abs(middle - walk[-1]).mean() > 5


def test_the_2d_maps_separate_some_classes(shipped):
    # A quick version of the shipped metric (5000 + 2000 digits, in the card). Chance is 0.1;
    # the first two principal components of the pixels give 0.44.
    for name in ("ae-2d", "vae-2d"):
        assert latent_knn_accuracy(shipped[name][0], fit_count=1000, test_count=500) > 0.5


# ---------------------------------------------------------------------------
# Bad weights


@pytest.fixture
def saved(tmp_path) -> Path:
    model = Autoencoder(AutoencoderConfig(latent_dim=3, **TINY))
    return save_autoencoder(model, tmp_path / "tiny", {"steps": 0})


def test_save_and_load_round_trip(saved):
    model, meta = load_autoencoder(saved)
    assert model.config == AutoencoderConfig(latent_dim=3, **TINY)
    assert meta["kind"] == "autoencoder" and meta["card"] == {"steps": 0}


def test_truncated_weights(saved):
    saved.write_bytes(saved.read_bytes()[:100])
    with pytest.raises(WeightsError, match="tiny.safetensors.*truncated"):
        load_autoencoder(saved)


def test_weights_that_do_not_fit_their_config(saved):
    config_path = weights_files(saved)[1]
    meta = json.loads(config_path.read_text())
    meta["config"]["latent_dim"] = 4
    config_path.write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="has shape"):
        load_autoencoder(saved)
    meta["config"]["variational"] = False
    config_path.write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="unexpected to_logvar"):
        load_autoencoder(saved)
    meta["config"]["latent_dim"] = -1
    config_path.write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="config does not fit"):
        load_autoencoder(saved)
    meta["kind"] = "evaluator"
    config_path.write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="not a autoencoder|not an autoencoder"):
        load_autoencoder(saved)


def test_missing_weights(tmp_path):
    with pytest.raises(WeightsError, match="missing"):
        load_autoencoder(tmp_path / "nothing.safetensors")
    with pytest.raises(WeightsError):
        load_autoencoder("vae-99d")  # not a shipped name: read as a path


def test_importing_the_module_loads_no_qt():
    code = "import sys, models.autoencoder; print(any(m.startswith(('PySide6', 'pyqtgraph', 'superqt', 'explorer')) for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_kl_has_the_closed_form_of_a_gaussian():
    # KL(N(μ, σ²) || N(0, 1)) = (μ² + σ² − 1 − ln σ²) / 2 per dimension, e.g. μ = 1, σ = 1: 0.5.
    model = Autoencoder(AutoencoderConfig(latent_dim=1, **TINY))
    with torch.no_grad():
        model.to_mu.weight.zero_()
        model.to_mu.bias.fill_(1.0)
        model.to_logvar.weight.zero_()
        model.to_logvar.bias.fill_(math.log(4.0))  # σ = 2: (1 + 4 − 1 − ln 4) / 2
    losses = autoencoder_loss(model, torch.zeros(3, 1, 28, 28))
    assert losses["kl"].item() == pytest.approx((1 + 4 - 1 - math.log(4)) / 2, rel=1e-5)
