"""Noise with a fixed pattern per seed, and PSNR."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from models.noise import NOISE_KINDS, NoiseSource, poisson_peak, psnr

SHAPE = (64, 80, 3)


@pytest.fixture
def clean() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.2, 0.8, SHAPE).astype(np.float32)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_same_seed_gives_the_same_pattern(clean, kind):
    a = NoiseSource(SHAPE, seed=5).apply(clean, kind, 0.4)
    b = NoiseSource(SHAPE, seed=5).apply(clean, kind, 0.4)
    c = NoiseSource(SHAPE, seed=6).apply(clean, kind, 0.4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_strength_zero_is_the_clean_image(clean, kind):
    np.testing.assert_array_equal(NoiseSource(SHAPE, 1).apply(clean, kind, 0.0), clean)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_output_is_float32_clipped_and_written_into_out(clean, kind):
    out = np.empty(SHAPE, np.float32)
    result = NoiseSource(SHAPE, 2).apply(clean, kind, 1.0, out=out)
    assert result is out and result.dtype == np.float32
    assert result.min() >= 0.0 and result.max() <= 1.0
    assert not np.array_equal(result, clean)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_a_band_of_rows_gets_exactly_the_values_of_the_whole_image(clean, kind):
    source = NoiseSource(SHAPE, 7)
    whole = source.apply(clean, kind, 0.3)
    out = np.empty((13, *SHAPE[1:]), np.float32)
    for band in (slice(0, 13), slice(40, 53), slice(51, 64)):  # first, middle and last rows
        result = source.apply(clean[band], kind, 0.3, out=out, rows=band)
        assert result is out
        np.testing.assert_array_equal(result, whole[band])
    np.testing.assert_array_equal(source.apply(clean[-5:], kind, 0.3, rows=slice(-5, None)), whole[-5:])
    np.testing.assert_array_equal(source.apply(clean[9:10], kind, 0.0, rows=slice(9, 10)), clean[9:10])


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_bands_applied_from_two_threads_at_once_match_the_whole_image(clean, kind):
    whole = NoiseSource(SHAPE, 8).apply(clean, kind, 0.3)
    source = NoiseSource(SHAPE, 8)  # fresh: both threads ask for fields not drawn yet
    out = np.empty(SHAPE, np.float32)
    bands = (slice(0, 32), slice(32, 64))
    threads = [
        threading.Thread(target=source.apply, args=(clean[band], kind, 0.3), kwargs={"out": out[band], "rows": band})
        for band in bands
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_array_equal(out, whole)


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "poisson"])
def test_strength_changes_amplitude_not_pattern(kind):
    # Mid-grey so that clipping does not distort the pattern.
    clean = np.full(SHAPE, 0.5, np.float32)
    source = NoiseSource(SHAPE, 3)
    weak = source.apply(clean, kind, 0.02) - clean
    strong = source.apply(clean, kind, 0.1) - clean
    assert np.corrcoef(weak.ravel(), strong.ravel())[0, 1] > 0.999
    assert np.std(strong) == pytest.approx(5 * np.std(weak), rel=0.01)


def test_gaussian_noise_has_sigma_strength():
    clean = np.full((256, 256), 0.5, np.float32)
    noise = NoiseSource(clean.shape, 4).apply(clean, "gaussian", 0.05) - clean
    assert noise.mean() == pytest.approx(0.0, abs=0.002)
    assert noise.std() == pytest.approx(0.05, rel=0.02)


def test_uniform_noise_spans_the_half_width():
    clean = np.full((256, 256), 0.5, np.float32)
    noise = NoiseSource(clean.shape, 4).apply(clean, "uniform", 0.2) - clean
    assert noise.min() >= -0.2 - 1e-6 and noise.max() <= 0.2 + 1e-6
    assert noise.std() == pytest.approx(0.2 / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize("amount", [0.05, 0.3, 0.9])
def test_salt_and_pepper_hits_that_fraction_of_pixels(amount):
    clean = np.full((200, 200, 3), 0.5, np.float32)
    noisy = NoiseSource(clean.shape, 5).apply(clean, "salt-and-pepper", amount)
    hit = np.any(noisy != 0.5, axis=2)
    assert hit.mean() == pytest.approx(amount, abs=0.01)
    # A hit pixel is white or black in every channel; salt and pepper about equally.
    values = noisy[hit]
    assert np.all((values == 0.0) | (values == 1.0))
    assert np.all(values.min(axis=1) == values.max(axis=1))
    assert (values[:, 0] == 1.0).mean() == pytest.approx(0.5, abs=0.05)


def test_salt_and_pepper_hits_grow_with_amount():
    clean = np.full((100, 100, 3), 0.5, np.float32)
    source = NoiseSource(clean.shape, 6)
    few = np.any(source.apply(clean, "salt-and-pepper", 0.1) != 0.5, axis=2)
    many = np.any(source.apply(clean, "salt-and-pepper", 0.4) != 0.5, axis=2)
    assert np.all(many[few])  # the pixels hit at 0.1 are still hit at 0.4


def test_salt_and_pepper_on_grayscale():
    clean = np.full((100, 100), 0.5, np.float32)
    noisy = NoiseSource(clean.shape, 7).apply(clean, "salt-and-pepper", 0.5)
    assert set(np.unique(noisy)) == {0.0, 0.5, 1.0}


def test_poisson_noise_grows_with_brightness_and_strength():
    source = NoiseSource((128, 128), 8)
    dark = np.full((128, 128), 0.04, np.float32)
    bright = np.full((128, 128), 0.64, np.float32)
    # Shot noise: std = √(clean / peak) = strength·√clean.
    assert np.std(source.apply(bright, "poisson", 0.1)) == pytest.approx(0.08, rel=0.03)
    assert np.std(source.apply(dark, "poisson", 0.1)) == pytest.approx(0.02, rel=0.03)
    assert poisson_peak(1.0) == 1.0 and poisson_peak(0.1) == pytest.approx(100)
    assert poisson_peak(0.0) == math.inf
    black = np.zeros((128, 128), np.float32)
    np.testing.assert_array_equal(source.apply(black, "poisson", 1.0), black)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda s, c: s.apply(c, "pink", 0.1), "unknown noise kind 'pink'"),
        (lambda s, c: s.apply(c, "gaussian", 1.5), "between 0 and 1"),
        (lambda s, c: s.apply(c[:10], "gaussian", 0.1), "does not match"),
        (lambda s, c: s.apply(c[:10], "gaussian", 0.1, rows=slice(0, 12)), "does not match"),
        (lambda s, c: s.apply(c[:5], "gaussian", 0.1, rows=slice(0, 10, 2)), "step 1"),
        (lambda s, c: s.apply(c[:0], "gaussian", 0.1, rows=slice(70, 80)), "non-empty"),
    ],
)
def test_bad_arguments(clean, call, words):
    with pytest.raises(ValueError, match=words):
        call(NoiseSource(SHAPE, 0), clean)


def test_psnr_known_values():
    clean = np.zeros((10, 10), np.float32)
    assert psnr(clean, clean) == math.inf
    assert psnr(clean, clean + 0.1) == pytest.approx(20.0)
    assert psnr(clean, clean + 0.01) == pytest.approx(40.0)
    a = np.zeros((4, 4), np.uint8)
    b = a.copy()
    b[0, 0] = 255  # MSE = 255² / 16
    assert psnr(a, b, data_range=255) == pytest.approx(10 * math.log10(16))


def test_psnr_matches_a_float64_reference():
    rng = np.random.default_rng(10)
    a = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    assert psnr(a, b, data_range=255) == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-6)


def test_psnr_falls_as_noise_grows(clean):
    source = NoiseSource(SHAPE, 9)
    values = [psnr(clean, source.apply(clean, "gaussian", s)) for s in (0.01, 0.05, 0.2)]
    assert values[0] > values[1] > values[2]
