"""The evaluator: a small classifier that measures what the generators make.

Two small convolutional nets in one module, trained by our own recipe on fresh
generated data (``models.data``):

- digits, 1×28×28 grey: a digit head with 11 classes, 0–9 and ``JUNK`` = 10,
  "not a digit" (smooth blobs, scribbles, two digits over each other, pixel noise,
  near-blank: ``make_junk``). Without that class a classifier calls most of an
  untrained generator's noise a confident digit; with it, a "confident digit"
  means something.
- shapes, 3×32×32 RGB: shape, colour and background heads (``make_shapes``).

The 128-D penultimate layer of each net gives ``features`` for a Fréchet
distance (an FID for our data) between a set of images and fresh real data;
``real_digit_reference`` gives the same measure between two real sets of the
same size: the floor a generator can reach.

Typical use::

    evaluator = Evaluator.load()                    # the shipped weights, cached
    metrics = digit_metrics(evaluator, generated)   # uint8 (N, 28, 28)
    reference = real_digit_reference(evaluator, count=len(generated))
    fd = frechet_distance(evaluator.features(generated), reference["features"])
    # report fd next to reference["fd_real"]

Retrain: ``python -m models.evaluator --out assets/weights/evaluator``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from torch import nn

from models.assets import asset_path
from models.data import COLOR_NAMES, SHAPES, make_digits, make_junk, make_shapes, to_tensor
from models.device import cpu_cores, set_torch_threads
from models.training import Trainer, TrainingSnapshot, endless_batches
from models.weights import load_model, save_model

__all__ = [
    "CONFIDENCE",
    "EVAL_SEED",
    "JUNK",
    "REFERENCE_SEED",
    "SHAPE_HEADS",
    "TRAIN_SEED",
    "Evaluator",
    "EvaluatorConfig",
    "digit_metrics",
    "evaluation_metrics",
    "evaluator_loss",
    "frechet_distance",
    "main",
    "make_trainer",
    "real_digit_reference",
    "shipped_path",
    "soften",
    "train_evaluator",
]

JUNK: int = 10
"""The digit head's "not a digit" class."""

CONFIDENCE: float = 0.9
"""A digit is "confident" when its most likely class is 0–9 with at least this probability."""

SHAPE_HEADS: dict[str, tuple[str, ...]] = {"shape": SHAPES, "color": COLOR_NAMES, "background": COLOR_NAMES}
"""The shapes heads and the names of their classes."""

# Seeds of the generated data. Training uses TRAIN_SEED; the measurements use
# seeds no training run here touches, so they are always on fresh data.
TRAIN_SEED: int = 1000
EVAL_SEED: int = 2000
REFERENCE_SEED: int = 9000

_BATCH = 512  # images per forward pass in the public (numpy) methods


# =========================================================================== model


@dataclass(frozen=True)
class EvaluatorConfig:
    """Sizes of the two nets (the same for both)."""

    width: int = 16  # channels of the first conv block; the next two have 2 × width
    features: int = 128  # size of the penultimate layer (the Fréchet features)


class Trunk(nn.Module):
    """Three conv blocks (3×3 conv, batch norm, ReLU, 2×2 max pool) and a linear layer."""

    def __init__(self, channels: int, side: int, config: EvaluatorConfig) -> None:
        super().__init__()
        w = config.width
        self.block1 = _conv_block(channels, w)
        self.block2 = _conv_block(w, 2 * w)
        self.block3 = _conv_block(2 * w, 2 * w)
        self.fc = nn.Linear(2 * w * (side // 8) ** 2, config.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, S, S) in [-1, 1]; S = 28 for digits, 32 for shapes
        x = self.block1(x)  # (N, w, S/2, S/2)
        x = self.block2(x)  # (N, 2w, S/4, S/4)
        x = self.block3(x)  # (N, 2w, S/8, S/8): 3×3 for digits, 4×4 for shapes
        return F.relu(self.fc(x.flatten(1)))  # (N, features)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Evaluator(nn.Module):
    """A digit net (11 classes) and a shapes net (shape, colour, background heads).

    The tensor methods (``digit_logits``, ``shape_logits``, ``*_features``) take
    float (N, C, H, W) in [-1, 1] and are what training calls. The public methods
    take uint8 numpy images, run in batches without gradients and return numpy.
    """

    def __init__(self, config: EvaluatorConfig = EvaluatorConfig()) -> None:
        super().__init__()
        self.config = config
        self.card: dict[str, Any] = {}  # the model card of loaded weights
        self.digit_trunk = Trunk(1, 28, config)
        self.digit_head = nn.Linear(config.features, 11)
        self.shape_trunk = Trunk(3, 32, config)
        self.shape_heads = nn.ModuleDict(
            {name: nn.Linear(config.features, len(classes)) for name, classes in SHAPE_HEADS.items()}
        )

    # ----------------------------------------------------------------- tensors

    def digit_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.digit_trunk(x)  # (N, 1, 28, 28) -> (N, features)

    def digit_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.digit_head(self.digit_trunk(x))  # (N, 1, 28, 28) -> (N, 11)

    def shape_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.shape_trunk(x)  # (N, 3, 32, 32) -> (N, features)

    def shape_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.shape_trunk(x)  # (N, 3, 32, 32) -> (N, features)
        return {name: head(h) for name, head in self.shape_heads.items()}  # (N, classes) each

    # ------------------------------------------------------------------- numpy

    def digit_probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of digits.

        Parameters
        ----------
        images : np.ndarray
            uint8 (N, 28, 28), white on black.

        Returns
        -------
        np.ndarray
            float32 (N, 11): classes 0–9, then ``JUNK``.
        """
        _check_images(images, (28, 28), "digits")
        return self._in_batches(images, lambda x: self.digit_logits(x).softmax(dim=1))

    def shape_predictions(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Class probabilities of each shapes head.

        Parameters
        ----------
        images : np.ndarray
            uint8 (N, 32, 32, 3) RGB.

        Returns
        -------
        dict of str to np.ndarray
            ``"shape"``: float32 (N, len(SHAPES)); ``"color"``, ``"background"``:
            float32 (N, len(COLOR_NAMES)). Classes in the order of ``SHAPE_HEADS``.
        """
        _check_images(images, (32, 32, 3), "shapes")

        def probabilities(x: torch.Tensor) -> torch.Tensor:
            logits = self.shape_logits(x)
            return torch.cat([logits[name].softmax(dim=1) for name in SHAPE_HEADS], dim=1)

        joined = self._in_batches(images, probabilities)  # (N, 6 + 8 + 8)
        bounds = np.cumsum([0] + [len(classes) for classes in SHAPE_HEADS.values()])
        return {name: joined[:, a:b] for name, a, b in zip(SHAPE_HEADS, bounds[:-1], bounds[1:])}

    def features(self, images: np.ndarray) -> np.ndarray:
        """Penultimate-layer features for a Fréchet distance.

        Parameters
        ----------
        images : np.ndarray
            uint8 digits (N, 28, 28) or shapes (N, 32, 32, 3).

        Returns
        -------
        np.ndarray
            float64 (N, config.features).
        """
        if np.ndim(images) == 3:
            _check_images(images, (28, 28), "digits")
            features = self._in_batches(images, self.digit_features)
        else:
            _check_images(images, (32, 32, 3), "shapes")
            features = self._in_batches(images, self.shape_features)
        return features.astype(np.float64)

    def _in_batches(self, images: np.ndarray, function) -> np.ndarray:
        """function over uint8 images in batches of _BATCH, in eval mode, without gradients."""
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                parts = [
                    function(to_tensor(images[i : i + _BATCH]).to(device)).float().cpu().numpy()
                    for i in range(0, max(len(images), 1), _BATCH)  # one empty batch for no images
                ]
        finally:
            self.train(was_training)
        return np.concatenate(parts)

    # --------------------------------------------------------------- weights

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device = "cpu") -> Evaluator:
        """The evaluator saved at ``path``; None: the shipped one, cached per device.

        The shipped instance is shared by every caller: use it, do not train it.
        Raises ``WeightsError`` when the file cannot be used.
        """
        if path is None:
            return _shipped(str(torch.device(device)))
        model, meta = load_model(path, cls, EvaluatorConfig, "evaluator", device)
        model.card = meta.get("card", {})
        return model


def shipped_path() -> Path:
    """Where the shipped evaluator weights are."""
    return asset_path("weights", "evaluator.safetensors")


@functools.cache
def _shipped(device: str) -> Evaluator:
    return Evaluator.load(shipped_path(), device)


def _check_images(images: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape[1:] != shape:
        described = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"{what} must be uint8 (N, {', '.join(map(str, shape))}), not {described}")


# =========================================================================== metrics


class _DigitClassifier(Protocol):
    def digit_probabilities(self, images: np.ndarray) -> np.ndarray: ...


def digit_metrics(
    evaluator: _DigitClassifier,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    threshold: float = CONFIDENCE,
) -> dict[str, Any]:
    """How digit-like a set of images is, as the evaluator sees it.

    Parameters
    ----------
    evaluator
        An ``Evaluator`` (anything with ``digit_probabilities``).
    images : np.ndarray
        uint8 (N, 28, 28).
    labels : np.ndarray or None
        The digit each image should be (a class-conditional model): adds ``correct_fraction``.
    threshold : float
        Probability that makes a prediction confident.

    Returns
    -------
    dict
        ``count``; ``confident_fraction``: share whose most likely class is a digit 0–9
        with probability ≥ threshold; ``class_histogram``: 10 counts of the confident
        ones' digits; ``class_entropy``: entropy (nats) of that histogram, ln 10 ≈ 2.303
        when every digit is equally common, 0 when one digit (or none) is;
        ``junk_fraction``: share whose most likely class is ``JUNK``; and with labels,
        ``correct_fraction``: share confident and of their label.
    """
    probabilities = np.asarray(evaluator.digit_probabilities(images))  # (N, 11)
    predicted = probabilities.argmax(axis=1)  # (N,)
    confident = (probabilities.max(axis=1) >= threshold) & (predicted != JUNK)
    histogram = np.bincount(predicted[confident], minlength=10)[:10]
    shares = histogram[histogram > 0] / max(histogram.sum(), 1)
    count = len(probabilities)
    metrics: dict[str, Any] = {
        "count": count,
        "confident_fraction": float(confident.mean()) if count else 0.0,
        "class_entropy": float(-(shares * np.log(shares)).sum()) + 0.0,  # + 0.0: no "-0.0"
        "class_histogram": [int(c) for c in histogram],
        "junk_fraction": float((predicted == JUNK).mean()) if count else 0.0,
    }
    if labels is not None:
        correct = confident & (predicted == np.asarray(labels))
        metrics["correct_fraction"] = float(correct.mean()) if count else 0.0
    return metrics


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features.

    ``‖μa − μb‖² + tr(Σa) + tr(Σb) − 2·tr((Σa^½ Σb Σa^½)^½)``; the last trace is the
    sum of the square roots of the eigenvalues of the symmetric matrix Σa^½ Σb Σa^½,
    so no general matrix square root (and no scipy) is needed.

    Parameters
    ----------
    features_a, features_b : np.ndarray
        (Na, D) and (Nb, D), at least two rows each. The distance grows as the sets
        get smaller (the covariances are estimates): compare sets of the same size.

    Returns
    -------
    float
        ≥ 0; 0 for two identical sets.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two (N, D) feature sets with N ≥ 2 and the same D, not {a.shape} and {b.shape}")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)  # (D,)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)  # (D, D)
    root_a = _psd_sqrt(cov_a)  # (D, D), symmetric
    middle = root_a @ cov_b @ root_a  # (D, D), symmetric positive semi-definite
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)  # (D,)
    cross = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    distance = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    return max(float(distance), 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues → 0)."""
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T


@functools.lru_cache(maxsize=8)
def real_digit_reference(evaluator: Evaluator, count: int = 2000, seed: int = REFERENCE_SEED) -> dict[str, Any]:
    """The evaluator's measures on fresh real digits: what a perfect generator would score.

    Two disjoint sets of ``count`` real digits (the first and second half of
    ``make_digits(2 · count, seed)``). Deterministic; cached per process (the arrays
    are read-only).

    Returns
    -------
    dict
        ``digit_metrics`` of the first set (``confident_fraction``, ``class_entropy``,
        ``class_histogram``, ``junk_fraction``, ``count``), plus ``seed``;
        ``features``: float64 (count, D) of the first set, to compare a generated set of
        the same size with; ``mean``, ``cov``: their mean and covariance;
        ``fd_real``: the Fréchet distance between the two real sets, the floor.
    """
    images, _ = make_digits(2 * count, seed)
    first, second = images[:count], images[count:]
    features = evaluator.features(first)
    metrics = digit_metrics(evaluator, first)
    fd_real = frechet_distance(features, evaluator.features(second))
    mean, cov = features.mean(axis=0), np.cov(features, rowvar=False)
    for array in (features, mean, cov):
        array.flags.writeable = False
    return {**metrics, "seed": seed, "features": features, "mean": mean, "cov": cov, "fd_real": fd_real}


# =========================================================================== training


def evaluator_loss(model: Evaluator, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    """Cross-entropy of the digit head plus that of the three shapes heads.

    ``batch``: digits uint8 (B, 28, 28), their classes (B,) with 10 = junk, shapes
    uint8 (B', 32, 32, 3), their (shape, colour, background) classes (B', 3).
    Reports ``digit``, ``shapes`` (the sum of the heads) and each head's term.
    """
    digits, digit_classes, shapes, shape_classes = batch
    digit = F.cross_entropy(model.digit_logits(_unit(digits[:, None])), digit_classes)
    logits = model.shape_logits(_unit(shapes.permute(0, 3, 1, 2)))
    heads = {
        f"{name}_head": F.cross_entropy(logits[name], shape_classes[:, k]) for k, name in enumerate(SHAPE_HEADS)
    }
    shapes = sum(heads.values())
    return {"loss": digit + shapes, "digit": digit, "shapes": shapes, **heads}


def _unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) → float32 in [-1, 1], as ``models.data.to_tensor``."""
    return images.float() * (2 / 255) - 1


def make_trainer(
    config: EvaluatorConfig = EvaluatorConfig(),
    *,
    digits: int = 60_000,
    junk: int = 15_000,
    shapes: int = 20_000,
    batch_size: int = 96,
    shape_batch_size: int = 96,
    lr: float = 2e-3,
    seed: int = TRAIN_SEED,
    device: str | torch.device = "cpu",
) -> Trainer:
    """A Trainer for a fresh evaluator on generated digits, junk and shapes (seed ``seed``).

    Data stays uint8 until a batch is used (a few hundred MB less). Each step sees
    ``batch_size`` digits-or-junk and ``shape_batch_size`` shapes.
    """
    torch.manual_seed(seed)
    device = torch.device(device)
    model = Evaluator(config).to(device)
    digit_images, digit_labels = make_digits(digits, seed)
    digit_images = soften(digit_images, seed)
    junk_images = soften(make_junk(junk, seed), seed + 1)
    scenes = make_shapes(shapes, seed)
    grey = torch.from_numpy(np.concatenate([digit_images, junk_images]))  # (D + J, 28, 28) uint8
    grey_labels = torch.from_numpy(np.concatenate([digit_labels, np.full(junk, JUNK, np.int64)]))
    rgb = torch.from_numpy(scenes.images)  # (S, 32, 32, 3) uint8
    rgb_labels = torch.from_numpy(np.stack([scenes.shape, scenes.color, scenes.background], axis=1))  # (S, 3)
    batches = (
        grey_part + rgb_part
        for grey_part, rgb_part in zip(
            endless_batches(grey, grey_labels, batch_size=batch_size, seed=seed),
            endless_batches(rgb, rgb_labels, batch_size=shape_batch_size, seed=seed + 1),
        )
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    return Trainer(model, optimizer, evaluator_loss, batches, device=device)


def soften(images: np.ndarray, seed: int, fraction: float = 0.5) -> np.ndarray:
    """Blur, dim and add faint noise to a random ``fraction`` of grey images (a new array).

    Generated digits are often blurry and dim (a VAE's always are). Trained on
    sharp digits only, the digit head would call them junk, since smooth blobs
    are junk; softening digits and junk alike teaches it that softness says
    nothing about the class. Each chosen image gets a Gaussian blur of radius
    0.3–1.5 px, its brightness scaled by 0.5–1 and Gaussian noise of σ 0–12 grey levels.
    """
    rng = np.random.default_rng([seed, 78])
    n = len(images)
    chosen = np.flatnonzero(rng.random(n) < fraction)
    radius, gain, noise = rng.uniform(0.3, 1.5, n), rng.uniform(0.5, 1.0, n), rng.uniform(0, 12, n)
    softened = images.copy()
    for i in chosen:
        blurred = np.asarray(Image.fromarray(images[i]).filter(ImageFilter.GaussianBlur(float(radius[i]))), np.float32)
        value = blurred * gain[i] + noise[i] * rng.standard_normal((28, 28), dtype=np.float32)
        softened[i] = np.clip(np.rint(value), 0, 255).astype(np.uint8)
    return softened


def train_evaluator(trainer: Trainer, steps: int, decay_from: float = 0.7) -> Iterator[TrainingSnapshot]:
    """Run ``steps`` steps, the last ``1 − decay_from`` of them at a tenth of the learning rate."""
    first = round(steps * decay_from)
    yield from trainer.run(first)
    for group in trainer.optimizer.param_groups:
        group["lr"] /= 10
    yield from trainer.run(steps - first)


# =========================================================================== measurement


def evaluation_metrics(evaluator: Evaluator, seed: int = EVAL_SEED, count: int = 10_000) -> dict[str, Any]:
    """Everything the model card reports, on data generated with ``seed`` (never trained on).

    ``count`` fresh digits (and 2000 of them blurred or dimmed), ``count // 2`` junk
    images and shapes; 1000 each of uniform and Gaussian noise, smooth blobs and an
    untrained generator's outputs (none should be a confident digit); the
    Fréchet floor of 2000 vs 2000 real digits, and the distance of noise for scale.
    """
    digits, labels = make_digits(count, seed, cache=False)
    predicted = evaluator.digit_probabilities(digits).argmax(axis=1)
    junk_predicted = evaluator.digit_probabilities(make_junk(count // 2, seed, cache=False)).argmax(axis=1)
    scenes = make_shapes(count // 2, seed)
    shape_predicted = evaluator.shape_predictions(scenes.images)
    not_digits = _not_digits(1000, seed)
    reference = real_digit_reference(evaluator, 2000)
    noise_fd = frechet_distance(evaluator.features(not_digits["uniform noise"][:1000]), reference["features"][:1000])
    metrics: dict[str, Any] = {
        "digit_accuracy": float((predicted == labels).mean()),
        "digits_called_junk": float((predicted == JUNK).mean()),
        "junk_recall": float((junk_predicted == JUNK).mean()),
        "real_confident_fraction": digit_metrics(evaluator, digits)["confident_fraction"],
    }
    # Blurry or dim digits (what a VAE draws) are still digits.
    for name, changed in (
        ("blur_1px", _blur(digits[:2000], 1.0)),
        ("blur_1.5px", _blur(digits[:2000], 1.5)),
        ("half_brightness", digits[:2000] // 2),
    ):
        accuracy = evaluator.digit_probabilities(changed).argmax(axis=1) == labels[:2000]
        metrics[f"digit_accuracy_{name}"] = float(accuracy.mean())
    for name, images in not_digits.items():
        metrics[f"confident_fraction_{name.replace(' ', '_')}"] = digit_metrics(evaluator, images)["confident_fraction"]
    # A known limit, measured: the mean of two different digits often still reads as one digit.
    differ = labels[:1000] != labels[1000:2000]
    blends = ((digits[:1000][differ].astype(np.int32) + digits[1000:2000][differ]) // 2).astype(np.uint8)
    metrics["confident_fraction_two_digit_blends"] = digit_metrics(evaluator, blends)["confident_fraction"]
    for name, truth in (("shape", scenes.shape), ("color", scenes.color), ("background", scenes.background)):
        metrics[f"{name}_accuracy"] = float((shape_predicted[name].argmax(axis=1) == truth).mean())
    metrics["fd_real_2000"] = reference["fd_real"]
    metrics["fd_real_vs_uniform_noise_1000"] = noise_fd
    return metrics


def _blur(images: np.ndarray, radius: float) -> np.ndarray:
    """Grey images with a Gaussian blur of ``radius`` pixels."""
    filter_ = ImageFilter.GaussianBlur(float(radius))
    return np.stack([np.asarray(Image.fromarray(image).filter(filter_)) for image in images])


def _not_digits(count: int, seed: int) -> dict[str, np.ndarray]:
    """Images that must not be confident digits: noise, smooth blobs, an untrained generator's outputs."""
    rng = np.random.default_rng([seed, 77])
    uniform = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    gaussian = np.clip(127.5 + 64 * rng.standard_normal((count, 28, 28)), 0, 255).astype(np.uint8)
    # Smooth blobs: 4×4 to 7×7 random values, smoothly enlarged to 28×28.
    sides = rng.integers(4, 8, count)
    blobs = np.empty((count, 28, 28), np.uint8)
    for k in np.unique(sides):
        small = torch.from_numpy(rng.random(((sides == k).sum(), 1, k, k), dtype=np.float32))  # (n, 1, k, k)
        big = F.interpolate(small, size=(28, 28), mode="bicubic", align_corners=False)[:, 0]  # (n, 28, 28)
        blobs[sides == k] = np.clip(big.numpy() * 255, 0, 255).astype(np.uint8)
    return {
        "uniform noise": uniform,
        "gaussian noise": gaussian,
        "smooth blobs": blobs,
        "untrained generator": _untrained_generator(count, seed),
    }


def _untrained_generator(count: int, seed: int) -> np.ndarray:
    """What a freshly initialised DCGAN-style decoder draws from z ~ N(0, I): uint8 (count, 28, 28)."""
    with torch.random.fork_rng():  # leave the caller's random state alone
        torch.manual_seed(seed)
        return _draw_untrained(count)


def _draw_untrained(count: int) -> np.ndarray:
    decoder = nn.Sequential(
        nn.Linear(16, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),  # (N, 64, 7, 7)
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),  # (N, 32, 14, 14)
        nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Tanh(),  # (N, 1, 28, 28) in [-1, 1]
    )
    with torch.inference_mode():
        x = decoder(torch.randn(count, 16))[:, 0]  # (N, 28, 28)
    return ((x.numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


# =========================================================================== recipe


def main(argv: list[str] | None = None) -> int:
    """Train the evaluator by the recipe, measure it and save it with its card."""
    parser = argparse.ArgumentParser(prog="python -m models.evaluator", description=main.__doc__)
    parser.add_argument("--out", default="assets/weights/evaluator", help="weights path (without suffix)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=TRAIN_SEED)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    threads = set_torch_threads()
    counts = {"digits": 60_000, "junk": 15_000, "shapes": 20_000}
    batch_size, shape_batch_size, lr = 96, 96, 2e-3
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    trainer = make_trainer(
        **counts, batch_size=batch_size, shape_batch_size=shape_batch_size, lr=lr, seed=args.seed, device=args.device
    )
    data_s = time.perf_counter() - wall_start
    print(f"data ready in {data_s:.0f} s", file=sys.stderr)
    last = 0.0
    for snapshot in train_evaluator(trainer, args.steps):
        if snapshot.elapsed_s - last >= 10 or snapshot.done:
            last = snapshot.elapsed_s
            losses = " ".join(f"{k}={v:.4f}" for k, v in snapshot.losses.items() if k in ("loss", "digit", "shapes"))
            print(f"step {snapshot.step}/{snapshot.total_steps} {losses}", file=sys.stderr)
    wall_s = time.perf_counter() - wall_start
    cpu_s = time.process_time() - cpu_start
    evaluator: Evaluator = trainer.model  # type: ignore[assignment]
    evaluator.eval()
    metrics = evaluation_metrics(evaluator)
    card = {
        "description": (
            "Small CNN classifier that measures generated images: a digit head with 11 classes "
            "(0–9 and 10 = not a digit), shape / colour / background heads for the shapes data, "
            f"and {evaluator.config.features}-D penultimate features for a Fréchet distance."
        ),
        "data": (
            f"{counts['digits']} digits + {counts['junk']} junk (make_digits / make_junk, seed {args.seed}), "
            f"{counts['shapes']} shapes (make_shapes, seed {args.seed}); half of the digits and half of "
            "the junk softened once (soften: blur 0.3–1.5 px, brightness × 0.5–1, noise σ ≤ 12)"
        ),
        "steps": trainer.step,
        "batch": f"{batch_size} digits-or-junk + {shape_batch_size} shapes per step",
        "optimiser": f"AdamW lr {lr:g}, weight decay 1e-4, lr / 10 for the last 30% of the steps",
        "loss": "cross-entropy of the digit head + sum of the three shapes heads' cross-entropies",
        "final_losses": {name: round(values[-1], 5) for name, values in trainer.history.items()},
        "cpu_seconds_training": round(trainer.cpu_seconds, 1),
        "cpu_seconds_total": round(cpu_s, 1),
        "wall_seconds_total": round(wall_s, 1),
        "wall_seconds_data": round(data_s, 1),
        "machine": (
            f"{cpu_cores()} cores shared with other jobs (load average {os.getloadavg()[0]:.1f} at the end), "
            f"{threads} torch threads, device {args.device}"
        ),
        "measured_on": (
            f"fresh data, seed {EVAL_SEED} (digits, junk, shapes, noise); real-vs-real FD seed {REFERENCE_SEED}"
        ),
        "metrics": metrics,
        "notes": (
            "Compare Fréchet distances only between sets of the same size (the floor fd_real grows as "
            "sets shrink). The mean of two different digits is often still read as one confident digit "
            "(confident_fraction_two_digit_blends): read confident_fraction with the class entropy and the FD."
        ),
    }
    path = save_model(evaluator, evaluator.config, args.out, "evaluator", card)
    print(json.dumps({"weights": str(path), **{k: v for k, v in card.items() if k != "description"}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
