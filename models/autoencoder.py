"""Autoencoders on 28×28 digits: a plain convolutional autoencoder and a VAE.

Read top to bottom: the config, the model (encoder → latent → decoder), the
loss, the trainer, the latent-space helpers (encode, decode, interpolate),
the quality measures, then saving, loading and the training recipes::

    x (1×28×28, in [-1, 1])
      → encoder: two strided convolutions and a dense layer
      → μ (and log σ² for a VAE)
      → z = μ (autoencoder) or z = μ + σ·ε, ε ~ N(0, I) (VAE)
      → decoder: a dense layer and two transposed convolutions
      → x̂ (1×28×28, in [-1, 1])

The autoencoder learns only to reconstruct, so it may put each digit anywhere
in the latent space and leave holes between them. The VAE also pays β·KL for
every code that strays from N(0, I), which packs the codes together and makes
every point of the space decode to something digit-like.

Run a recipe: ``python -m models.autoencoder train --name vae-16d --out DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.assets import asset_path
from models.data import make_digits, to_tensor
from models.training import Trainer, TrainingResult, TrainingSnapshot, endless_batches, train_steps
from models.weights import load_model, save_model

KIND = "autoencoder"
"""The ``kind`` of every autoencoder weights file."""

SHIPPED_AUTOENCODERS = ("ae-2d", "vae-2d", "vae-16d")

FRESH_SEED = 1_000_000
"""Digits drawn with this seed (and above) are never trained on by the recipes:
the quality measures and the default latent walk use them."""

QUALITY_GOALS = {"recon_accuracy": 0.95, "latent_knn_accuracy": 0.80}
"""Issue 3's goals: the 16-D VAE's reconstructions keep their digit; the 2-D VAE's map keeps classes apart."""

SIDE = 28  # digits are SIDE×SIDE grey images


# ---------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class AutoencoderConfig:
    """Everything needed to build an autoencoder (saved beside its weights)."""

    latent_dim: int = 2  # size of z: 2 to draw the latent map, 16 for better digits
    variational: bool = True  # a VAE (z sampled, KL term) or a plain autoencoder (z = μ)
    beta: float = 1.0  # weight of the KL term (a β-VAE); unused by the plain autoencoder
    width: int = 16  # channels of the first convolution; the second has 2·width
    hidden: int = 256  # units of the dense layer on each side of z
    label_weight: float = 0.0  # > 0: a linear digit classifier on μ joins the loss with this weight

    def __post_init__(self) -> None:
        for name in ("latent_dim", "width", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
                raise ValueError(f"{name} must be a whole number from 1 to 4096, not {value!r}")
        if not isinstance(self.variational, bool):
            raise ValueError(f"variational must be true or false, not {self.variational!r}")
        for name in ("beta", "label_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number ≥ 0, not {value!r}")

    @property
    def name(self) -> str:
        """A short name such as "vae-16d" or "ae-2d"."""
        return f"{'vae' if self.variational else 'ae'}-{self.latent_dim}d"


# ---------------------------------------------------------------------------
# Model


class AutoencoderOutput(NamedTuple):
    reconstruction: torch.Tensor  # (N, 1, 28, 28) in [-1, 1]
    mu: torch.Tensor  # (N, latent) the code's mean (the code itself for an autoencoder)
    logvar: torch.Tensor | None  # (N, latent) log σ², None for an autoencoder
    z: torch.Tensor  # (N, latent) the code that was decoded
    logits: torch.Tensor  # (N, 1, 28, 28) per-pixel ink logits; reconstruction = tanh(logits / 2)


class Autoencoder(nn.Module):
    """A convolutional autoencoder, variational when ``config.variational``."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        w, h, d = config.width, config.hidden, config.latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, w, 4, stride=2, padding=1),  # (N, 1, 28, 28) -> (N, w, 14, 14)
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),  # -> (N, 2w, 7, 7)
            nn.ReLU(),
            nn.Flatten(),  # -> (N, 2w·49)
            nn.Linear(2 * w * 49, h),  # -> (N, h)
            nn.ReLU(),
        )
        self.to_mu = nn.Linear(h, d)  # (N, h) -> (N, d)
        self.to_logvar = nn.Linear(h, d) if config.variational else None  # (N, h) -> (N, d)
        self.decoder = nn.Sequential(
            nn.Linear(d, h),  # (N, d) -> (N, h)
            nn.ReLU(),
            nn.Linear(h, 2 * w * 49),  # -> (N, 2w·49)
            nn.ReLU(),
            nn.Unflatten(1, (2 * w, 7, 7)),  # -> (N, 2w, 7, 7)
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1),  # -> (N, w, 14, 14)
            nn.ReLU(),
            nn.ConvTranspose2d(w, 1, 4, stride=2, padding=1),  # -> (N, 1, 28, 28) logits
        )
        # Only with label_weight > 0: which digit μ is, read by a straight line through the latent space.
        self.to_class = nn.Linear(d, 10) if config.label_weight > 0 else None  # (N, d) -> (N, 10)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, 1, 28, 28) images in [-1, 1] -> μ (N, latent), and log σ² (N, latent) or None."""
        features = self.encoder(x)  # (N, h)
        mu = self.to_mu(features)  # (N, d)
        if self.to_logvar is None:
            return mu, None
        # Clamped so that exp() can neither overflow nor vanish early in training.
        logvar = self.to_logvar(features).clamp(-12.0, 8.0)  # (N, d)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = μ + σ·ε with ε ~ N(0, I): a sample that gradients flow through (to μ and σ)."""
        std = torch.exp(0.5 * logvar)  # (N, d)
        return mu + std * torch.randn_like(std)  # (N, d)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent) codes -> (N, 1, 28, 28) ink logits."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent) codes -> (N, 1, 28, 28) images in [-1, 1]."""
        return torch.tanh(0.5 * self.decode_logits(z))  # = 2·sigmoid(logits) - 1

    def forward(self, x: torch.Tensor, sample: bool | None = None) -> AutoencoderOutput:
        """Encode, pick z, decode. ``sample`` (default: in training mode) draws z around μ."""
        mu, logvar = self.encode(x)  # (N, d), (N, d) or None
        sample = self.training if sample is None else sample
        z = self.reparameterize(mu, logvar) if sample and logvar is not None else mu  # (N, d)
        logits = self.decode_logits(z)  # (N, 1, 28, 28)
        return AutoencoderOutput(torch.tanh(0.5 * logits), mu, logvar, z, logits)

    def stages(self) -> list[tuple[str, tuple[int, ...]]]:
        """Each stage's tensor shape (one image, no batch axis), input to output, for a diagram."""
        w, h, d = self.config.width, self.config.hidden, self.config.latent_dim
        code = [("μ, log σ²", (2, d))] if self.config.variational else []
        return [
            ("input", (1, SIDE, SIDE)),
            ("conv 1", (w, 14, 14)),
            ("conv 2", (2 * w, 7, 7)),
            ("flatten", (2 * w * 49,)),
            ("encoder dense", (h,)),
            *code,
            ("latent z", (d,)),
            ("decoder dense", (h,)),
            ("dense", (2 * w * 49,)),
            ("reshape", (2 * w, 7, 7)),
            ("deconv 1", (w, 14, 14)),
            ("output", (1, SIDE, SIDE)),
        ]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


# ---------------------------------------------------------------------------
# Loss


def autoencoder_loss(model: Autoencoder, batch: torch.Tensor | tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    """{"loss", "recon", "kl"}: per-image means of loss = recon + β·KL (KL is 0 for an autoencoder).

    The reconstruction term is binary cross-entropy between the decoder's ink
    logits and the ink (x + 1) / 2, summed over the 784 pixels. These digits are
    nearly black and white, so this Bernoulli likelihood fits them: its gradient
    does not fade at the saturated pixels as MSE's does, which gives sharper
    strokes, and its scale (nats per image, like the KL term) is what makes β = 1
    the textbook VAE. With a per-pixel MSE, β would also have to stand in for an
    arbitrary noise σ.
    """
    x = batch if isinstance(batch, torch.Tensor) else batch[0]  # (N, 1, 28, 28) in [-1, 1]
    out = model(x)
    ink = (x + 1) / 2  # (N, 1, 28, 28) in [0, 1]
    bce = F.binary_cross_entropy_with_logits(out.logits, ink, reduction="none")  # (N, 1, 28, 28)
    recon = bce.flatten(1).sum(dim=1).mean()  # nats per image
    if out.logvar is None:
        kl = torch.zeros((), device=x.device)
    else:
        # KL(N(μ, σ²) || N(0, I)) in closed form, summed over the latent dimensions.
        kl_terms = -0.5 * (1 + out.logvar - out.mu.pow(2) - out.logvar.exp())  # (N, d)
        kl = kl_terms.sum(dim=1).mean()
    loss = recon + model.config.beta * kl if out.logvar is not None else recon
    terms = {"loss": loss, "recon": recon.detach(), "kl": kl.detach()}
    if model.to_class is not None and not isinstance(batch, torch.Tensor):
        # A label-aware (semi-supervised-style) autoencoder: μ must also tell the digit, in nats per image.
        label = F.cross_entropy(model.to_class(out.mu), batch[1])
        terms["loss"] = loss + model.config.label_weight * label
        terms["label"] = label.detach()
    return terms


# ---------------------------------------------------------------------------
# Training


def make_trainer(
    config: AutoencoderConfig,
    *,
    data_count: int = 20_000,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    model: Autoencoder | None = None,
) -> Trainer:
    """A Trainer for ``config`` (or for ``model``, to continue training it) on generated digits.

    The data are ``make_digits(data_count, seed)`` (sets of 5000 or more are cached),
    shuffled by ``seed``; a new model's initial weights are drawn from ``seed`` too.
    Optimiser: Adam. Stop by closing ``trainer.run(...)``; call it again to resume.
    """
    device = torch.device(device)
    if model is None:
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's RNG
            torch.manual_seed(seed)
            model = Autoencoder(config)
    model.to(device)
    images, labels = make_digits(data_count, seed=seed)
    if config.label_weight > 0:  # (B, 1, 28, 28), (B,)
        batches = endless_batches(to_tensor(images), torch.from_numpy(labels.astype(np.int64)),
                                  batch_size=batch_size, seed=seed)
    else:
        batches = endless_batches(to_tensor(images), batch_size=batch_size, seed=seed)  # (B, 1, 28, 28)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return Trainer(model, optimizer, autoencoder_loss, batches, device=device)


# ---------------------------------------------------------------------------
# The latent space: numpy in, numpy out


def encode_digits(model: Autoencoder, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """uint8 (N, 28, 28) digits -> float32 (N, latent): each digit's code mean μ."""
    images = _check_digits(images)
    model.eval()
    parts = []
    with torch.inference_mode():
        for begin in range(0, len(images), batch_size):
            x = to_tensor(images[begin : begin + batch_size]).to(model.device)  # (B, 1, 28, 28)
            mu, _ = model.encode(x)  # (B, d)
            parts.append(mu.float().cpu().numpy())
    if not parts:
        return np.zeros((0, model.config.latent_dim), np.float32)
    return np.ascontiguousarray(np.concatenate(parts))


def decode_latents(model: Autoencoder, z: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """float (N, latent) codes -> uint8 (N, 28, 28) images."""
    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2 or z.shape[1] != model.config.latent_dim:
        raise ValueError(f"expected codes of shape (N, {model.config.latent_dim}), got {z.shape}")
    model.eval()
    parts = []
    with torch.inference_mode():
        for begin in range(0, len(z), batch_size):
            codes = torch.from_numpy(z[begin : begin + batch_size]).to(model.device)  # (B, d)
            images = model.decode(codes)[:, 0]  # (B, 28, 28) in [-1, 1]
            parts.append(_to_uint8(images))
    if not parts:
        return np.zeros((0, SIDE, SIDE), np.uint8)
    return np.ascontiguousarray(np.concatenate(parts))


def reconstruct_digits(model: Autoencoder, images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) digits -> uint8 (N, 28, 28): decoded from their code means."""
    return decode_latents(model, encode_digits(model, images))


def lerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Straight-line interpolation: (D,) codes and a scalar t -> (D,); t of shape (T,) -> (T, D)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    s = np.asarray(t, np.float64)[..., None]  # (1,) or (T, 1)
    return a + s * (b - a)


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Spherical interpolation: the direction turns along the great circle, the length goes linearly.

    For codes of equal length this is the classic slerp, whose points all keep
    that length. A straight line instead cuts through the middle, where the
    codes are shorter than typical draws of a VAE's prior N(0, I). Codes at 0
    or pointing in the same or opposite directions fall back to ``lerp``.
    Shapes as ``lerp``.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if norm_a < 1e-12 or norm_b < 1e-12:
        return lerp(a, b, t)
    cos = float(np.clip(np.dot(a, b) / (norm_a * norm_b), -1.0, 1.0))
    omega = math.acos(cos)  # angle between a and b
    if math.sin(omega) < 1e-6:
        return lerp(a, b, t)
    s = np.asarray(t, np.float64)[..., None]  # (1,) or (T, 1)
    direction = (np.sin((1 - s) * omega) * a / norm_a + np.sin(s * omega) * b / norm_b) / math.sin(omega)
    length = norm_a + s * (norm_b - norm_a)
    return direction * length


def latent_walk(
    model: Autoencoder, image_a: np.ndarray, image_b: np.ndarray, frames: int, spherical: bool = False
) -> np.ndarray:
    """Decode ``frames`` evenly spaced codes from digit a's code to digit b's: uint8 (frames, 28, 28)."""
    if int(frames) != frames or frames < 1:
        raise ValueError(f"frames must be a whole number ≥ 1, not {frames!r}")
    codes = encode_digits(model, np.stack([image_a, image_b]))  # (2, d)
    t = np.linspace(0.0, 1.0, int(frames)) if frames > 1 else np.zeros(1)  # (frames,)
    path = (slerp if spherical else lerp)(codes[0], codes[1], t)  # (frames, d)
    return decode_latents(model, path)


def _check_digits(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"expected uint8 digits of shape (N, 28, 28), got {images.dtype} {images.shape}")
    return images


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """Tensor in [-1, 1] -> uint8 in [0, 255]."""
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


# ---------------------------------------------------------------------------
# Quality measures (on fresh digits, never trained on)


def latent_knn_accuracy(
    model: Autoencoder, fit_count: int = 5000, test_count: int = 2000, seed: int = FRESH_SEED, k: int = 5
) -> float:
    """Fraction of fresh digits whose k nearest codes (among other fresh digits) vote for their class.

    The first ``fit_count`` of ``make_digits(fit_count + test_count, seed)`` are the
    neighbours, the next ``test_count`` are classified. Ties go to the nearer class.
    """
    images, labels = make_digits(fit_count + test_count, seed=seed)
    codes = encode_digits(model, images).astype(np.float64)  # (fit + test, d)
    fit, test = codes[:fit_count], codes[fit_count:]
    fit_labels, test_labels = labels[:fit_count], labels[fit_count:]
    distances = (test**2).sum(1)[:, None] - 2 * test @ fit.T + (fit**2).sum(1)[None, :]  # (test, fit)
    nearest = np.argsort(distances, axis=1)[:, :k]  # (test, k), nearest first
    votes = np.zeros((len(test), 10))
    for rank in range(k):  # one vote per neighbour, plus a little more for nearer ones
        np.add.at(votes, (np.arange(len(test)), fit_labels[nearest[:, rank]]), 1 + (k - rank) * 1e-3)
    return float((votes.argmax(axis=1) == test_labels).mean())


def reconstruction_metrics(
    model: Autoencoder, count: int = 2000, seed: int = FRESH_SEED, evaluator: Any | None = None
) -> dict[str, float]:
    """recon_mse (per pixel, values in [0, 1]) on ``count`` fresh digits; with an evaluator also
    recon_accuracy (its label of the reconstruction is the true digit) and real_accuracy
    (the same on the digits themselves, for reference)."""
    images, labels = make_digits(count, seed=seed)
    recon = reconstruct_digits(model, images)
    diff = (recon.astype(np.float64) - images) / 255
    metrics = {"recon_mse": float((diff**2).mean())}
    if evaluator is not None:
        predicted = evaluator.digit_probabilities(recon).argmax(axis=1)
        metrics["recon_accuracy"] = float((predicted == labels).mean())
        metrics["real_accuracy"] = float((evaluator.digit_probabilities(images).argmax(axis=1) == labels).mean())
    return metrics


def load_evaluator(device: str | torch.device = "cpu") -> Any | None:
    """The shipped evaluator, or None while there is none (the metrics that need it are skipped)."""
    try:
        from models.evaluator import Evaluator
    except ImportError:
        return None
    try:
        return Evaluator.load(device=device)
    except (ValueError, OSError):  # WeightsError is a ValueError
        return None


def evaluator_id() -> str | None:
    """The first 12 hex digits of the shipped evaluator's SHA-256 (which evaluator measured), or None."""
    path = asset_path("weights", "evaluator.safetensors")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else None


def quality_metrics(
    model: Autoencoder,
    *,
    samples: int = 2000,
    knn_fit: int = 5000,
    seed: int = FRESH_SEED,
    evaluator: Any | None = None,
) -> dict[str, Any]:
    """recon_mse, recon_accuracy (with an evaluator), latent_knn_accuracy, and what they were measured on."""
    metrics: dict[str, Any] = reconstruction_metrics(model, samples, seed + 1, evaluator)
    metrics["latent_knn_accuracy"] = latent_knn_accuracy(model, knn_fit, samples, seed)
    metrics["fresh_digits"] = {"samples": samples, "knn_fit": knn_fit, "k": 5, "seed": seed}
    return metrics


# ---------------------------------------------------------------------------
# Saving and loading


def save_autoencoder(model: Autoencoder, path: str | os.PathLike, card: dict[str, Any] | None = None) -> Path:
    """Write NAME.safetensors, NAME.json and the NAME.md card; returns the .safetensors path."""
    return save_model(model, model.config, path, KIND, card)


def shipped_path(name: str) -> Path:
    """Where the shipped weights ``name`` (one of SHIPPED_AUTOENCODERS) live."""
    return asset_path("weights", f"{name}.safetensors")


def load_autoencoder(
    path_or_name: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[Autoencoder, dict[str, Any]]:
    """A shipped name ("vae-16d") or a weights path -> (model in eval mode, metadata).

    Raises ``WeightsError`` (one readable line) when the file cannot be used.
    """
    is_name = isinstance(path_or_name, str) and path_or_name in SHIPPED_AUTOENCODERS
    path = shipped_path(path_or_name) if is_name else Path(path_or_name)
    return load_model(path, Autoencoder, AutoencoderConfig, KIND, device)


# ---------------------------------------------------------------------------
# Training runs and the shipped recipes


@dataclass(frozen=True)
class Recipe:
    """How a shipped model is trained."""

    config: AutoencoderConfig
    steps: int
    batch_size: int = 128
    lr: float = 2e-3
    data_count: int = 60_000
    seed: int = 0


LABEL_WEIGHT_2D = 50.0
"""The 2-D models' label weight: without it, stroke thickness and width take both numbers of
the code and six digits share one region (5-NN accuracy 0.54); with it, 0.92."""

RECIPES: dict[str, Recipe] = {
    "ae-2d": Recipe(AutoencoderConfig(latent_dim=2, variational=False, label_weight=LABEL_WEIGHT_2D), steps=2000),
    "vae-2d": Recipe(AutoencoderConfig(latent_dim=2, variational=True, beta=1.0, label_weight=LABEL_WEIGHT_2D),
                     steps=2000),
    "vae-16d": Recipe(AutoencoderConfig(latent_dim=16, variational=True, beta=1.0), steps=2000),
}


def train_autoencoder(
    recipe: Recipe,
    out: str | os.PathLike,
    *,
    name: str | None = None,
    device: str | torch.device = "cpu",
    evaluate: bool = True,
    command: str = "",
    on_snapshot: Callable[[TrainingSnapshot], None] | None = None,
) -> TrainingResult:
    """Train ``recipe`` and save it as ``out/NAME.*`` with its card (and metrics when ``evaluate``).

    Ctrl+C stops the training cleanly: the steps done so far are saved, marked
    as interrupted in the card, and ``result.interrupted`` is True.
    """
    name = name or recipe.config.name
    torch.manual_seed(recipe.seed)  # the VAE's ε: the same recipe gives the same weights
    trainer = make_trainer(
        recipe.config, data_count=recipe.data_count, batch_size=recipe.batch_size,
        lr=recipe.lr, seed=recipe.seed, device=device,
    )
    losses, wall, interrupted = train_steps(trainer, recipe.steps, on_snapshot)
    model = trainer.model.eval()
    card: dict[str, Any] = {
        "description": _DESCRIPTIONS[recipe.config.variational].format(d=recipe.config.latent_dim)
        + (_LABEL_DESCRIPTION if recipe.config.label_weight else ""),
        "recipe": command or f"python -m models.autoencoder train --name {name} --out {out}",
        "data": f"make_digits({recipe.data_count}, seed={recipe.seed}), to_tensor (values in [-1, 1])",
        "optimizer": f"Adam, lr {recipe.lr}, batch {recipe.batch_size}",
        "steps": trainer.step,
        "epochs": round(trainer.step * recipe.batch_size / recipe.data_count, 2),
        "final_losses": {k: round(v, 3) for k, v in losses.items()},
        "loss": "recon = BCE(logits, (x+1)/2) summed per image; kl summed per image; loss = recon + beta*kl (nats)"
        + (f" + {recipe.config.label_weight:g} × cross-entropy of a linear digit classifier on μ"
           if recipe.config.label_weight else ""),
        "cpu_seconds": round(trainer.cpu_seconds, 1),
        "wall_seconds": round(wall, 1),
        "hardware": f"{torch.get_num_threads()} torch threads on {device}",
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if interrupted:
        card["interrupted"] = f"stopped by the user at step {trainer.step} of {recipe.steps}"
    if evaluate and not interrupted:
        card["metrics"] = _shipped_evaluator_metrics(model, device)
    path = save_autoencoder(model, Path(out) / name, card)
    return TrainingResult(path, model, trainer.step, losses, wall, trainer.cpu_seconds, interrupted, card)


_LABEL_DESCRIPTION = (
    " A linear digit classifier reads μ during training (label weight in the config), so the code must "
    "say which digit it is: the map is sorted by digit instead of by stroke thickness."
)

_DESCRIPTIONS = {
    False: "A convolutional autoencoder with a {d}-D latent, on generated 28×28 digits: "
    "it only learns to reconstruct, so its latent space has gaps between the digits.",
    True: "A convolutional variational autoencoder (VAE) with a {d}-D latent, on generated 28×28 "
    "digits: the KL term packs the codes around N(0, I), so nearby codes decode to similar digits.",
}


def _shipped_evaluator_metrics(model: Autoencoder, device: str | torch.device) -> dict[str, Any]:
    evaluator = load_evaluator(device)
    metrics = quality_metrics(model, evaluator=evaluator)
    if evaluator is not None:
        metrics["evaluator"] = f"evaluator.safetensors sha256 {evaluator_id()}"
    return metrics


def measure(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Measure saved weights again (e.g. once the evaluator exists) and rewrite their card's metrics."""
    model, meta = load_autoencoder(path, device)
    card = dict(meta["card"])
    card["metrics"] = _shipped_evaluator_metrics(model, device)
    save_autoencoder(model, path, card)
    return card["metrics"]


def main(argv: list[str] | None = None) -> int:
    """``python -m models.autoencoder train --name NAME --out DIR`` or ``measure WEIGHTS``."""
    parser = argparse.ArgumentParser(prog="python -m models.autoencoder", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a shipped recipe and save it with its card")
    train.add_argument("--name", choices=sorted(RECIPES), required=True)
    train.add_argument("--out", type=Path, required=True, help="folder for NAME.safetensors/.json/.md")
    train.add_argument("--steps", type=int, help="override the recipe's steps")
    train.add_argument("--device", default="cpu")
    train.add_argument("--no-eval", action="store_true", help="skip the quality metrics")
    again = commands.add_parser("measure", help="recompute the metrics in a weights file's card")
    again.add_argument("weights", nargs="+", help="weights paths or shipped names")
    args = parser.parse_args(argv)

    from models.device import set_torch_threads

    set_torch_threads()
    if args.command == "measure":
        for weights in args.weights:
            print(weights, measure(shipped_path(weights) if weights in SHIPPED_AUTOENCODERS else weights))
        return 0
    recipe = RECIPES[args.name]
    if args.steps is not None:
        recipe = dataclasses.replace(recipe, steps=args.steps)
    command = f"python -m models.autoencoder train --name {args.name} --out DIR" + (
        f" --steps {args.steps}" if args.steps is not None else ""
    )
    shown = [0.0]

    def report(snapshot: TrainingSnapshot) -> None:
        if snapshot.elapsed_s - shown[0] >= 10 or snapshot.done:
            shown[0] = snapshot.elapsed_s
            losses = ", ".join(f"{k} {v:.2f}" for k, v in snapshot.losses.items())
            print(f"step {snapshot.step}/{snapshot.total_steps}: {losses} "
                  f"({snapshot.samples_per_second:.0f} samples/s)", file=sys.stderr, flush=True)

    result = train_autoencoder(
        recipe, args.out, name=args.name, device=args.device, evaluate=not args.no_eval,
        command=command, on_snapshot=report,
    )
    print(f"Saved {result.path} after {result.steps} steps "
          f"({result.wall_s:.0f} s wall, {result.cpu_s:.0f} s CPU); metrics {result.card.get('metrics')}")
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
