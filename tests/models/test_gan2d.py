"""The 2-D GAN: distributions, separate D and G steps, live hyper-parameters, divergence, views, quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import gan2d
from models.gan2d import (
    DISTRIBUTIONS,
    LOSSES,
    PLANE,
    Gan2DHyper,
    Gan2DTrainer,
    generator_gradients,
    heat_map,
    manifold,
    mean_distance_to_modes,
    noise_grid,
    ring_modes,
    sample,
)
from models.training import DivergedError


def weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks: one thread is fastest, and a busy machine's spinning OpenMP team is slow."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def trainer() -> Gan2DTrainer:
    return Gan2DTrainer(Gan2DHyper(batch_size=64, width=32), "ring", seed=0)


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_distributions_are_seeded_float32_points_in_the_plane(name):
    drawn = np.array([[0.5, 0.5], [-1.0, 0.2]])
    a = sample(name, 500, np.random.default_rng(3), drawn)
    b = sample(name, 500, np.random.default_rng(3), drawn)
    assert a.shape == (500, 2) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert a.min() >= PLANE[0] and a.max() <= PLANE[1]
    assert a.std(axis=0).min() > 0.02  # spread out, not one point


def test_ring_has_eight_modes_and_drawn_sticks_to_the_drawing():
    ring = sample("ring", 4000, np.random.default_rng(0))
    assert mean_distance_to_modes(ring, ring_modes()) < 0.1
    nearest = np.linalg.norm(ring[:, None] - ring_modes()[None], axis=-1).argmin(1)
    assert np.bincount(nearest, minlength=8).min() > 350  # every mode is used
    drawn = np.array([[1.0, 1.0], [-1.0, -0.5]])
    points = sample("drawn", 1000, np.random.default_rng(0), drawn)
    assert mean_distance_to_modes(points, drawn) < 0.1
    with pytest.raises(ValueError, match="draw some points"):
        sample("drawn", 10, np.random.default_rng(0), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="unknown distribution"):
        sample("square", 10, np.random.default_rng(0))


def test_d_step_changes_only_d_and_g_step_only_g(trainer):
    g0, d0 = weights(trainer.generator), weights(trainer.discriminator)
    out = trainer.d_step()
    assert set(out) == {"d_loss", "d_real", "d_fake"}
    assert same(weights(trainer.generator), g0) and not same(weights(trainer.discriminator), d0)
    assert (trainer.step, trainer.d_updates) == (0, 1)
    g1, d1 = weights(trainer.generator), weights(trainer.discriminator)
    out = trainer.g_step()
    assert set(out) == {"g_loss", "d_fake"}
    assert same(weights(trainer.discriminator), d1) and not same(weights(trainer.generator), g1)
    assert (trainer.step, trainer.d_updates) == (1, 1)


def test_train_step_does_d_steps_then_one_g_step(trainer):
    trainer.hyper.d_steps = 3
    trainer.train_step()
    assert (trainer.step, trainer.d_updates) == (1, 3)
    trainer.hyper.d_steps = 1  # read at the next step
    trainer.train_step()
    assert (trainer.step, trainer.d_updates) == (2, 4)


def test_learning_rate_changed_during_a_run_takes_effect_on_the_next_step(trainer):
    run = trainer.run(steps=None, snapshot_every_s=0.0)
    next(run)
    trainer.hyper.lr_d = trainer.hyper.lr_g = 0.0  # freeze both
    frozen_g, frozen_d = weights(trainer.generator), weights(trainer.discriminator)
    next(run)
    assert same(weights(trainer.generator), frozen_g) and same(weights(trainer.discriminator), frozen_d)
    trainer.hyper.lr_g = 1e-3  # G moves again, D stays frozen
    next(run)
    assert not same(weights(trainer.generator), frozen_g) and same(weights(trainer.discriminator), frozen_d)
    run.close()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_optimizer_and_loss_changes_take_effect(trainer, optimizer):
    trainer.train_step()
    trainer.hyper.optimizer = optimizer
    trainer.hyper.loss = "hinge"
    trainer.train_step()
    assert trainer.opt_d.kind == optimizer == trainer.opt_g.kind
    # Hinge: D's loss is max(0, 1 - D(x)) + max(0, 1 + D(G(z))) ≥ 0 and its realness is clipped to [0, 1].
    out = trainer.d_step()
    assert out["d_loss"] >= 0 and 0 <= out["d_real"] <= 1


def test_each_loss_trains(trainer):
    for loss in LOSSES:
        trainer.hyper.loss = loss
        out = trainer.train_step()
        assert all(np.isfinite(v) for v in out.values())


def test_architecture_change_rebuilds_the_networks_and_says_so(trainer):
    trainer.train_step()
    trainer.hyper.width, trainer.hyper.noise_dim, trainer.hyper.noise_kind = 16, 3, "uniform"
    trainer.train_step()
    assert trainer.generator.net[0].in_features == 3 and trainer.generator.net[0].out_features == 16
    assert trainer.fixed_noise.shape == (Gan2DTrainer.SHOWN, 3) and trainer.fixed_noise.abs().max() <= 1
    snapshot = trainer.snapshot()
    assert any("New networks" in note for note in snapshot.notes)
    assert trainer.snapshot().notes == ()  # said once


def test_injected_nan_raises_diverged_and_keeps_the_weights(trainer):
    trainer.train_step()
    with torch.no_grad():
        trainer.generator.net[0].weight[0, 0] = float("nan")
    d_before = weights(trainer.discriminator)
    with pytest.raises(DivergedError, match="loss became nan"):
        trainer.train_step()
    assert same(weights(trainer.discriminator), d_before)  # the bad step changed nothing
    assert not trainer.weights_finite()


def test_nan_learning_rate_diverges_on_the_following_step(trainer):
    trainer.hyper.lr_d = float("nan")
    trainer.d_step()  # the update makes D's weights NaN
    with pytest.raises(DivergedError):
        trainer.d_step()
    trainer = Gan2DTrainer(Gan2DHyper(batch_size=64, width=32, lr_g=float("nan")), "ring", seed=0)
    trainer.g_step()
    with pytest.raises(DivergedError, match="generator's output"):
        trainer.snapshot()  # never a view of NaN points


def test_views_have_the_documented_shapes_and_meaning(trainer):
    heat = heat_map(trainer, 16)
    assert heat.shape == (16, 16) and heat.dtype == np.float32 and 0 <= heat.min() <= heat.max() <= 1
    lines = manifold(trainer, lines=5, points=9)
    assert lines.shape == (10, 9, 2)
    # The manifold of a 2-D noise is G applied to the grid: the first line's points are G of it.
    grid = noise_grid("gaussian", 2, 5, 9)
    with torch.no_grad():
        expected = trainer.generator(torch.from_numpy(grid[0])).numpy()
    assert np.allclose(lines[0], expected, atol=1e-6)
    trainer.hyper.noise_dim = 1
    trainer.train_step()
    assert manifold(trainer, lines=5, points=9).shape == (1, 9, 2)


def test_gradients_point_where_d_says_real(trainer):
    for _ in range(30):  # D learns where the ring is
        trainer.d_step()
    z = trainer.fixed_noise[:64]
    points, gradients = generator_gradients(trainer, z)
    assert points.shape == gradients.shape == (64, 2)
    # A small move along the gradient raises D's output at every point (first order).
    with torch.no_grad():
        before = trainer.discriminator(torch.from_numpy(points))
        after = trainer.discriminator(torch.from_numpy(points + 1e-3 * gradients / np.linalg.norm(gradients, axis=1, keepdims=True)))
    assert (after > before).float().mean() > 0.95


def test_run_yields_snapshots_and_stops_at_the_end(trainer):
    snapshots = list(trainer.run(steps=20, snapshot_every_s=0.0))
    assert len(snapshots) == 20 and snapshots[-1].done and snapshots[-1].step == 20
    last = snapshots[-1]
    assert last.fake.shape == (Gan2DTrainer.SHOWN, 2) and last.real.shape == (Gan2DTrainer.SHOWN, 2)
    assert set(last.losses) == {"d_loss", "d_real", "d_fake", "g_loss"}


def test_ring_quality_improves_in_a_few_hundred_steps():
    """A real check: the generated points move onto the ring's modes (seeded, ~1 s)."""
    trainer = Gan2DTrainer(Gan2DHyper(batch_size=64, width=32), "ring", seed=0)
    before = mean_distance_to_modes(trainer.snapshot().fake, ring_modes())
    for _ in range(300):
        trainer.train_step()
    after = mean_distance_to_modes(trainer.snapshot().fake, ring_modes())
    assert before > 1.0 and after < 0.6 * before


def test_pretrained_pair_is_trained_once_cached_and_loads(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSION_EXPLORER_CACHE", str(tmp_path))
    monkeypatch.setattr(gan2d, "_pairs", {})
    pair = gan2d.pretrained_pair("ring", steps=40)
    assert gan2d.pretrained_pair("ring", steps=40) is pair  # kept for the session
    (cached,) = (tmp_path / "data").glob("gan2d-pair-*-ring-40.safetensors")
    monkeypatch.setattr(gan2d, "_pairs", {})
    again = gan2d.pretrained_pair("ring", steps=40)  # a new session: read from the cache
    assert again is not pair and same_state(again["generator"], pair["generator"])
    assert same_state(again["discriminator"], pair["discriminator"])
    assert again["hyper"] == pair["hyper"] and again["steps"] == 40
    cached.write_bytes(b"junk")  # a broken cache file: trained again, no error
    monkeypatch.setattr(gan2d, "_pairs", {})
    assert same_state(gan2d.pretrained_pair("ring", steps=40)["generator"], pair["generator"])
    trainer = Gan2DTrainer(Gan2DHyper(width=16, lr_d=0.5), "ring", seed=3)
    trainer.load_pair(pair)
    assert trainer.hyper.width == 64 and trainer.hyper.lr_d == pair["hyper"]["lr_d"] and trainer.step == 40
    assert same(weights(trainer.generator), list(pair["generator"].values()))
    trainer.train_step()  # and trains on


def test_timelapse_snapshots_every_k_steps():
    snapshots = list(gan2d.timelapse(steps=10, every=4, hyper=Gan2DHyper(batch_size=32, width=16)))
    assert [s.step for s in snapshots] == [0, 4, 8, 10] and snapshots[-1].done
    assert all(s.heat is not None and s.manifold is not None and s.gradients is not None for s in snapshots)
    assert not np.array_equal(snapshots[0].fake, snapshots[-1].fake)


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_optimizer_matches_torch_optim(kind):
    torch.manual_seed(0)
    mine = [torch.randn(4, 3), torch.randn(3)]
    theirs = [p.clone().requires_grad_(True) for p in mine]
    reference = torch.optim.Adam(theirs, lr=0.01, betas=(0.5, 0.999)) if kind == "adam" else torch.optim.SGD(theirs, lr=0.01)
    optimizer = gan2d.Optimizer(kind, mine)
    for _ in range(5):
        grads = [torch.randn_like(p) for p in mine]
        optimizer.step(grads, 0.01)
        for p, g in zip(theirs, grads):
            p.grad = g.clone()
        reference.step()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(mine, theirs))
