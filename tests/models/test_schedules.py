"""β schedules and the closed-form forward process: checked against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.schedules import (
    BETA_SCHEDULES,
    NoiseSchedule,
    forward_frames,
    frame_timesteps,
    make_betas,
    q_sample,
)


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
@pytest.mark.parametrize("T", [1, 10, 1000])
def test_alpha_bar_starts_at_one_and_falls(schedule, T):
    s = NoiseSchedule.from_config(schedule, T)
    assert s.alpha_bar(0) == 1.0
    assert s.betas.shape == s.alphas.shape == s.alphas_cumprod.shape == (T,)
    abar = np.array([s.alpha_bar(t) for t in range(T + 1)])
    assert np.all(np.diff(abar) < 0)
    assert np.all((abar > 0) & (abar <= 1))
    np.testing.assert_allclose(s.alphas, 1 - s.betas)
    np.testing.assert_allclose(s.alphas_cumprod, np.cumprod(1 - s.betas))
    assert s.alpha_bar(T) == s.alphas_cumprod[-1]


@pytest.mark.parametrize("schedule", ["linear", "scaled-linear", "sigmoid"])
def test_betas_stay_in_their_range(schedule):
    betas = make_betas(schedule, 500, 1e-4, 0.02)
    assert betas.min() >= 1e-4 - 1e-12 and betas.max() <= 0.02 + 1e-12
    assert np.all(np.diff(betas) > 0)


@pytest.mark.parametrize("schedule", ["linear", "scaled-linear"])
def test_endpoints_are_beta_start_and_end(schedule):
    betas = make_betas(schedule, 1000, 1e-4, 0.02)
    assert betas[0] == pytest.approx(1e-4, rel=1e-12)
    assert betas[-1] == pytest.approx(0.02, rel=1e-12)


def test_linear_is_evenly_spaced_and_scaled_linear_is_even_in_sqrt():
    np.testing.assert_allclose(np.diff(make_betas("linear", 100)), (0.02 - 1e-4) / 99)
    roots = np.sqrt(make_betas("scaled-linear", 100, 0.00085, 0.012))
    np.testing.assert_allclose(np.diff(roots), (0.012**0.5 - 0.00085**0.5) / 99)


def test_sigmoid_follows_its_formula():
    betas = make_betas("sigmoid", 7, 0.001, 0.03)
    x = np.linspace(-6, 6, 7)
    np.testing.assert_allclose(betas, 0.001 + (0.03 - 0.001) / (1 + np.exp(-x)))


def test_cosine_matches_nichol_and_dhariwal():
    T = 1000
    s = NoiseSchedule.from_config("cosine", T, 0.3, 0.5)  # the β range is ignored

    def f(t):
        return math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2

    expected_betas = [min(1 - f(t + 1) / f(t), 0.999) for t in range(T)]
    np.testing.assert_allclose(s.betas, expected_betas, rtol=1e-12)
    assert s.betas.max() == 0.999  # the cap bites at the very end
    # Away from the cap, ᾱ_t is the formula normalised by ᾱ(0).
    for t in (1, 10, 500, 900):
        assert s.alpha_bar(t) == pytest.approx(f(t) / f(0), rel=1e-9)


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
def test_snr_is_alpha_bar_over_one_minus(schedule):
    s = NoiseSchedule.from_config(schedule, 50)
    np.testing.assert_allclose(s.snr(), s.alphas_cumprod / (1 - s.alphas_cumprod))
    assert np.all(np.diff(s.snr()) < 0)


def test_schedule_arrays_are_read_only():
    s = NoiseSchedule.from_config()
    with pytest.raises(ValueError):
        s.betas[0] = 0.5


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("quadratic", 10), "unknown β schedule 'quadratic'"),
        (("linear", 0), "at least 1"),
        (("linear", 10, 0.02, 0.01), "smaller than beta_end"),
        (("linear", 10, 0.01, 0.01), "smaller than beta_end"),
        (("linear", 10, 0.0, 0.01), "beta_start must be between 0 and 1"),
        (("linear", 10, 0.01, 1.0), "beta_end must be between 0 and 1"),
        (("linear", 2.5), "whole number"),
    ],
)
def test_bad_arguments_give_readable_errors(args, words):
    with pytest.raises(ValueError, match=words) as info:
        NoiseSchedule.from_config(*args)
    assert "\n" not in str(info.value)


def test_alpha_bar_rejects_t_outside_range():
    s = NoiseSchedule.from_config("linear", 10)
    with pytest.raises(ValueError, match="between 0 and 10"):
        s.alpha_bar(11)


def test_q_sample_is_the_closed_form():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, (37, 53, 3)).astype(np.float32)
    eps = rng.standard_normal(x0.shape, dtype=np.float32)
    out = np.empty_like(x0)
    result = q_sample(x0, eps, 0.3, out=out)
    assert result is out and result.dtype == np.float32
    np.testing.assert_allclose(result, math.sqrt(0.3) * x0 + math.sqrt(0.7) * eps, atol=1e-6)
    np.testing.assert_array_equal(q_sample(x0, eps, 1.0), x0)
    np.testing.assert_array_equal(q_sample(x0, eps, 0.0), eps)


def test_q_sample_statistics():
    # x0 constant c: x_t ~ N(√ᾱ·c, 1 − ᾱ).
    rng = np.random.default_rng(1)
    x0 = np.full((512, 512), 0.5, np.float32)
    eps = rng.standard_normal(x0.shape, dtype=np.float32)
    xt = q_sample(x0, eps, 0.64)
    assert xt.mean() == pytest.approx(0.8 * 0.5, abs=0.01)
    assert xt.var() == pytest.approx(0.36, rel=0.02)


def test_frame_timesteps_are_even_and_end_at_T():
    assert frame_timesteps(1000, 5) == [0, 250, 500, 750, 1000]
    steps = frame_timesteps(1000, 7)
    assert steps[0] == 0 and steps[-1] == 1000
    assert max(np.diff(steps)) - min(np.diff(steps)) <= 1
    assert frame_timesteps(3, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="at least 2"):
        frame_timesteps(10, 1)
    with pytest.raises(ValueError, match="need at least 10 timesteps"):
        frame_timesteps(5, 11)


def test_forward_frames():
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    s = NoiseSchedule.from_config("linear", 100)
    frames = list(forward_frames(pixels, s, 6, seed=3))
    assert [t for t, _ in frames] == [0, 20, 40, 60, 80, 100]
    np.testing.assert_array_equal(frames[0][1], pixels)
    for _, frame in frames:
        assert frame.dtype == np.uint8 and frame.shape == pixels.shape
    # Each frame is x_t = √ᾱ·x0 + √(1−ᾱ)·ε for one fixed ε, mapped back to 0..255.
    x0 = pixels / 127.5 - 1
    eps = np.random.default_rng(3).standard_normal(pixels.shape, dtype=np.float32)
    t, frame = frames[2]
    abar = s.alpha_bar(t)
    expected = np.clip((math.sqrt(abar) * x0 + math.sqrt(1 - abar) * eps + 1) * 127.5, 0, 255)
    assert np.abs(frame - expected).max() <= 0.51
    # Correlation with the clean image falls as t grows.
    corr = [np.corrcoef(pixels.ravel(), f.ravel())[0, 1] for _, f in frames]
    assert all(a > b for a, b in zip(corr, corr[1:]))


def test_forward_frames_same_seed_same_frames():
    pixels = np.full((8, 8, 3), 100, np.uint8)
    s = NoiseSchedule.from_config("cosine", 50)
    a = [f for _, f in forward_frames(pixels, s, 3, seed=7)]
    b = [f for _, f in forward_frames(pixels, s, 3, seed=7)]
    c = [f for _, f in forward_frames(pixels, s, 3, seed=8)]
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa, fb)
    assert not np.array_equal(a[1], c[1])


def test_forward_frames_rejects_float_pixels():
    with pytest.raises(ValueError, match="uint8"):
        next(forward_frames(np.zeros((4, 4, 3)), NoiseSchedule.from_config(), 3, 0))
