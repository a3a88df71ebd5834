"""The evaluator: shipped accuracy on fresh data, junk, Fréchet distance, metrics, bad weights."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from models.data import make_digits, make_junk, make_shapes
from models.evaluator import (
    JUNK,
    Evaluator,
    EvaluatorConfig,
    digit_metrics,
    frechet_distance,
    make_trainer,
    real_digit_reference,
    shipped_path,
)
from models.weights import WeightsError, weights_files

FRESH_SEED = 4242  # no training run uses it


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator.load()


@pytest.fixture(scope="module")
def fresh_digits() -> tuple[np.ndarray, np.ndarray]:
    return make_digits(500, FRESH_SEED, cache=False)


def test_shipped_evaluator_is_cached_and_described(evaluator):
    assert Evaluator.load() is evaluator
    assert evaluator.card["metrics"]["digit_accuracy"] >= 0.99
    assert not evaluator.training


def test_shipped_evaluator_reads_fresh_digits(evaluator, fresh_digits):
    images, labels = fresh_digits
    probabilities = evaluator.digit_probabilities(images)
    assert probabilities.shape == (500, 11) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert (probabilities.argmax(axis=1) == labels).mean() >= 0.98


def test_junk_is_not_a_digit(evaluator):
    junk = make_junk(300, FRESH_SEED, cache=False)
    predicted = evaluator.digit_probabilities(junk).argmax(axis=1)
    assert (predicted == JUNK).mean() >= 0.95


def test_noise_is_not_a_confident_digit(evaluator):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)
    grey = np.clip(127.5 + 64 * rng.standard_normal((300, 28, 28)), 0, 255).astype(np.uint8)
    for images in (noise, grey, np.zeros((10, 28, 28), np.uint8)):
        metrics = digit_metrics(evaluator, images)
        assert metrics["confident_fraction"] <= 0.02
        assert metrics["junk_fraction"] >= 0.9


def test_shapes_heads_read_fresh_shapes(evaluator):
    scenes = make_shapes(300, FRESH_SEED)
    predictions = evaluator.shape_predictions(scenes.images)
    assert predictions["shape"].shape == (300, 6) and predictions["color"].shape == (300, 8)
    for name, truth in (("shape", scenes.shape), ("color", scenes.color), ("background", scenes.background)):
        assert (predictions[name].argmax(axis=1) == truth).mean() >= 0.97, name


def test_features_shapes_and_bad_input(evaluator, fresh_digits):
    images, _ = fresh_digits
    features = evaluator.features(images[:7])
    assert features.shape == (7, EvaluatorConfig().features) and features.dtype == np.float64
    assert evaluator.features(make_shapes(3, 0).images).shape == (3, EvaluatorConfig().features)
    assert evaluator.digit_probabilities(images[:0]).shape == (0, 11)
    with pytest.raises(ValueError, match="uint8"):
        evaluator.digit_probabilities(images.astype(np.float32))
    with pytest.raises(ValueError, match="28, 28"):
        evaluator.digit_probabilities(np.zeros((2, 32, 32), np.uint8))


def test_frechet_distance_of_a_set_with_itself_is_zero(evaluator, fresh_digits):
    features = evaluator.features(fresh_digits[0])
    assert frechet_distance(features, features) == pytest.approx(0, abs=1e-6 * np.trace(np.cov(features.T)))


def test_real_vs_real_is_small_next_to_real_vs_noise(evaluator):
    reference = real_digit_reference(evaluator, count=300, seed=FRESH_SEED)
    assert real_digit_reference(evaluator, count=300, seed=FRESH_SEED) is reference  # cached
    assert reference["features"].shape == (300, EvaluatorConfig().features)
    assert not reference["features"].flags.writeable
    assert reference["confident_fraction"] >= 0.9 and reference["class_entropy"] > 2.2
    noise = np.random.default_rng(1).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    junk = make_junk(300, FRESH_SEED + 1, cache=False)
    fd_noise = frechet_distance(evaluator.features(noise), reference["features"])
    fd_junk = frechet_distance(evaluator.features(junk), reference["features"])
    assert 0 < reference["fd_real"] < 0.1 * fd_noise
    assert reference["fd_real"] < 0.2 * fd_junk


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    # For diagonal Gaussians: Σ (μa − μb)² + (σa − σb)² over dimensions.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200_000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    b = rng.standard_normal((200_000, 3)) * [3.0, 2.0, 1.0] + [1.0, 1.0, 1.0]
    expected = (1 + 0 + 4) + (4 + 0 + 0.25)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.01)
    assert frechet_distance(b, a) == pytest.approx(frechet_distance(a, b), rel=1e-9)


def test_frechet_distance_with_rotated_correlated_gaussians():
    # Same covariance, shifted mean: the distance is the squared shift, whatever Σ is.
    rng = np.random.default_rng(1)
    mixing = rng.standard_normal((4, 4))
    a = rng.standard_normal((100_000, 4)) @ mixing
    shift = np.array([1.0, -2.0, 0.0, 0.5])
    assert frechet_distance(a, a + shift) == pytest.approx((shift**2).sum(), rel=1e-6)
    with pytest.raises(ValueError, match="same D"):
        frechet_distance(a, a[:, :3])


class KnownProbabilities:
    """Stands in for an evaluator: returns fixed probabilities whatever the images."""

    def __init__(self, probabilities: np.ndarray) -> None:
        self.probabilities = probabilities

    def digit_probabilities(self, images: np.ndarray) -> np.ndarray:
        return self.probabilities


def one_hot(classes: list[int], p: float = 1.0) -> np.ndarray:
    rows = np.full((len(classes), 11), (1 - p) / 10)
    rows[np.arange(len(classes)), classes] = p
    return rows


def test_digit_metrics_on_known_probabilities():
    probabilities = np.concatenate([
        one_hot([3, 3, 7, 7]),  # confident 3, 3, 7, 7
        one_hot([5], p=0.85),  # a 5, but not confident
        one_hot([JUNK, JUNK]),  # junk
        one_hot([JUNK], p=0.5),  # junk, not confident
    ])
    metrics = digit_metrics(KnownProbabilities(probabilities), np.zeros((8, 28, 28), np.uint8),
                            labels=np.array([3, 3, 7, 1, 5, 0, 0, 0]))
    assert metrics["count"] == 8
    assert metrics["confident_fraction"] == pytest.approx(4 / 8)
    assert metrics["class_histogram"] == [0, 0, 0, 2, 0, 0, 0, 2, 0, 0]
    assert metrics["class_entropy"] == pytest.approx(math.log(2))
    assert metrics["junk_fraction"] == pytest.approx(3 / 8)
    assert metrics["correct_fraction"] == pytest.approx(3 / 8)


def test_digit_metrics_entropy_bounds():
    uniform = digit_metrics(KnownProbabilities(one_hot(list(range(10)) * 3)), np.zeros((30, 28, 28), np.uint8))
    assert uniform["class_entropy"] == pytest.approx(math.log(10))
    assert uniform["confident_fraction"] == 1 and uniform["junk_fraction"] == 0
    none = digit_metrics(KnownProbabilities(one_hot([JUNK] * 4)), np.zeros((4, 28, 28), np.uint8))
    assert none["class_entropy"] == 0 and none["confident_fraction"] == 0
    assert none["class_histogram"] == [0] * 10


def test_corrupt_evaluator_file_raises_weights_error(tmp_path):
    for name, damage in (
        ("truncated", lambda p: p.write_bytes(p.read_bytes()[:100])),
        ("garbage", lambda p: p.write_bytes(b"not weights" * 50)),
    ):
        folder = tmp_path / name
        folder.mkdir()
        for source in weights_files(shipped_path()):
            shutil.copy(source, folder / source.name)
        damage(folder / "evaluator.safetensors")
        with pytest.raises(WeightsError, match="evaluator.safetensors"):
            Evaluator.load(folder / "evaluator.safetensors")
    with pytest.raises(WeightsError, match="missing"):
        Evaluator.load(tmp_path / "nothing-here.safetensors")


def test_importing_the_evaluator_loads_no_qt():
    code = (
        "import sys, models.evaluator; "
        "bad = [m for m in sys.modules if m.split('.')[0] in {'PySide6', 'pyqtgraph', 'superqt', 'explorer'}]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_a_few_training_steps_lower_the_loss():
    trainer = make_trainer(EvaluatorConfig(width=8, features=32), digits=600, junk=200, shapes=400,
                           batch_size=64, shape_batch_size=32, lr=3e-3, seed=5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net: threads only cost, and a lot on a busy machine
    try:
        snapshots = list(trainer.run(40))
    finally:
        torch.set_num_threads(threads)
    assert snapshots[-1].done and set(snapshots[-1].losses) >= {"loss", "digit", "shapes", "shape_head"}
    first, last = trainer.history["loss"][0], trainer.history["loss"][-1]
    assert last < 0.8 * first
