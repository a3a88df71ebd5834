"""A DCGAN on 28×28 grey digits: a generator and a discriminator trained against each other.

The generator G turns a noise vector z into an image; the discriminator D looks at
an image and says how real it thinks it is (a logit). Training alternates:

1. ``step_d``: D learns to tell real images from G's (G held fixed);
2. ``step_g``: G learns to make images that D calls real (D held fixed).

Typical use::

    model = DCGAN(DCGANConfig(), seed=0)
    trainer = GANTrainer(model, make_training_images("digits"), GANHyper())
    for snapshot in trainer.run(steps=2000):       # resumable; close it to stop
        print(snapshot.step, snapshot.losses)
    images = generate(model, fixed_noise(16, model.config.latent_dim))  # uint8 (16, 28, 28)

The trainer reads its ``GANHyper`` at every step, so a GUI may change the learning
rates, the loss, the discriminator steps or the batch size while training runs.
A loss or weight that turns NaN or infinite raises ``DivergedError``; the net that
was being updated is put back as it was before that step.

Retrain the shipped model: ``diffusion-explorer train gan --out assets/weights``.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.assets import asset_path
from models.training import DivergedError, TrainingResult
from models.weights import WeightsError, load_model, save_model

__all__ = [
    "DEFAULT_STEPS",
    "EVAL_SEED",
    "KIND",
    "LOSSES",
    "QUALITY_GOALS",
    "SHIPPED_DCGANS",
    "SOURCES",
    "DCGAN",
    "DCGANConfig",
    "DivergedError",
    "GANHyper",
    "GANSnapshot",
    "GANTrainer",
    "WeightsError",
    "capture_steps",
    "class_coverage",
    "d_probabilities",
    "fixed_noise",
    "generate",
    "load_dcgan",
    "make_training_images",
    "quality_metrics",
    "sample_grid",
    "save_dcgan",
    "shipped_path",
    "train_dcgan",
    "training_timelapse",
]

KIND = "dcgan"
LOSSES: tuple[str, ...] = ("non-saturating", "least-squares", "hinge")
SOURCES: tuple[str, ...] = ("digits", "shapes", "folder")
SHIPPED_DCGANS: tuple[str, ...] = ("dcgan-digits",)
DEFAULT_STEPS = 3000  # G steps of the shipped recipe
EVAL_SEED = 2000  # noise seed of quality_metrics (no training run uses it)

QUALITY_GOALS: dict[str, float] = {
    "confident_ratio": 0.6,  # confident_fraction ≥ 0.6 × real_confident_fraction
    "class_entropy": 0.9 * math.log(10),  # nats
    "fd_ratio": 5.0,  # fd ≤ 5 × fd_real
}


# =========================================================================== model


@dataclass(frozen=True)
class DCGANConfig:
    """Sizes of the two nets."""

    latent_dim: int = 64  # size of the noise vector z
    width: int = 32  # base channels: G goes 4w → w → 1, D goes 1 → w → 2w
    image_size: int = 28  # side of the (grey) images; must be a multiple of 4

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.width < 1:
            raise ValueError(f"latent_dim and width must be ≥ 1, not {self.latent_dim} and {self.width}")
        if self.image_size < 4 or self.image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, not {self.image_size}")


class Generator(nn.Module):
    """z (N, latent_dim) → images (N, 1, S, S) in [-1, 1]."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        w, s = config.width, config.image_size // 4
        self.side = s
        self.fc = nn.Linear(config.latent_dim, 4 * w * s * s, bias=False)
        self.bn0 = nn.BatchNorm2d(4 * w)
        self.up1 = nn.ConvTranspose2d(4 * w, w, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.up2 = nn.ConvTranspose2d(w, 1, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(len(z), -1, self.side, self.side)  # (N, 4w, S/4, S/4)
        x = F.relu(self.bn0(x))
        x = F.relu(self.bn1(self.up1(x)))  # (N, w, S/2, S/2)
        return torch.tanh(self.up2(x))  # (N, 1, S, S)


class Discriminator(nn.Module):
    """images (N, 1, S, S) → logits (N,): high means "real".

    No batch norm (a real and a fake batch go through separately, and batch
    statistics would let D tell them apart by the batch instead of the image);
    spectral norm keeps D smooth, which keeps training stable.
    """

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        w, s = config.width, config.image_size // 4
        sn = nn.utils.parametrizations.spectral_norm
        self.conv1 = sn(nn.Conv2d(1, w, 4, stride=2, padding=1))
        self.conv2 = sn(nn.Conv2d(w, 2 * w, 4, stride=2, padding=1))
        self.fc = sn(nn.Linear(2 * w * s * s, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), 0.2)  # (N, w, S/2, S/2)
        x = F.leaky_relu(self.conv2(x), 0.2)  # (N, 2w, S/4, S/4)
        return self.fc(x.flatten(1)).squeeze(1)  # (N,)


class DCGAN(nn.Module):
    """A generator and a discriminator, built from a ``DCGANConfig``.

    ``seed`` makes the initial weights reproducible without touching the global RNG.
    """

    def __init__(self, config: DCGANConfig = DCGANConfig(), seed: int | None = None) -> None:
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.generator = Generator(config)
            self.discriminator = Discriminator(config)
            self.apply(_dcgan_init)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of G and D."""
        return {
            "generator": sum(p.numel() for p in self.generator.parameters()),
            "discriminator": sum(p.numel() for p in self.discriminator.parameters()),
        }


def _dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        weight = module.parametrizations.weight.original if hasattr(module, "parametrizations") else module.weight
        nn.init.normal_(weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# =========================================================================== losses


def d_loss(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on real and fake logits (N,)."""
    if loss == "non-saturating":  # −log σ(D(x)) − log(1 − σ(D(G(z))))
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "least-squares":  # ½(D(x) − 1)² + ½D(G(z))²
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    if loss == "hinge":  # max(0, 1 − D(x)) + max(0, 1 + D(G(z)))
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")


def g_loss(loss: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the logits (N,) of its images."""
    if loss == "non-saturating":  # −log σ(D(G(z))): strong gradients while D wins
        return F.softplus(-fake).mean()
    if loss == "least-squares":  # ½(D(G(z)) − 1)²
        return 0.5 * ((fake - 1) ** 2).mean()
    if loss == "hinge":  # −D(G(z))
        return -fake.mean()
    raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")


def d_probabilities(logits: torch.Tensor, loss: str = "non-saturating") -> torch.Tensor:
    """D's outputs as a "how real" score in [0, 1], whatever the loss.

    Non-saturating: σ(logit). Least squares (targets 0 and 1): the output clipped to
    [0, 1]. Hinge (targets −1 and 1): (output clipped to [−1, 1] + 1) / 2.
    """
    if loss == "least-squares":
        return logits.clamp(0, 1)
    if loss == "hinge":
        return (logits.clamp(-1, 1) + 1) / 2
    return torch.sigmoid(logits)


# =========================================================================== training


@dataclass
class GANHyper:
    """Training settings, read at every step (change them while training runs)."""

    lr_d: float = 2e-4
    lr_g: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's; β1 = 0.5 as in the DCGAN paper
    loss: str = "non-saturating"  # one of LOSSES
    d_steps: int = 1  # discriminator steps per generator step
    batch_size: int = 64


@dataclass
class GANSnapshot:
    """What a GAN training run shows between steps (plain data, safe to pass between threads)."""

    step: int  # generator steps done in total, across resumes
    total_steps: int  # the step this run ends at
    losses: dict[str, float]  # means since the last snapshot: d_loss, g_loss, d_real, d_fake
    samples: np.ndarray | None  # uint8 (n, 28, 28) from the fixed noise
    d_real_scores: np.ndarray  # float32 (batch,): D's scores of the last real batch, in [0, 1]
    d_fake_scores: np.ndarray  # float32 (batch,): D's scores of the last generated batch
    elapsed_s: float  # wall time of this run so far
    samples_per_second: float  # images through G per second since the last snapshot
    done: bool = False


class GANTrainer:
    """Alternating D and G updates of a ``DCGAN`` on uint8 (N, S, S) images.

    Each net has its own Adam; noise and batches come from one generator seeded
    with ``seed``, so the same seed and the same steps give the same weights.
    """

    def __init__(
        self,
        model: DCGAN,
        images: np.ndarray,
        hyper: GANHyper | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        images = np.asarray(images)
        side = model.config.image_size
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (side, side):
            raise ValueError(f"training images must be uint8 (N, {side}, {side}), not {images.dtype} {images.shape}")
        if len(images) < 2:
            raise ValueError(f"a GAN needs at least 2 training images, got {len(images)}")
        self.device = torch.device(device) if device is not None else model.device
        self.model = model.to(self.device)
        self.hyper = hyper if hyper is not None else GANHyper()
        self.seed = seed
        self.step = 0  # generator steps done
        self.d_updates = 0  # discriminator steps done
        self.cpu_seconds = 0.0  # process CPU time spent in run(), across resumes
        self.history: dict[str, list[float]] = {}  # per snapshot, for curves
        self.images = torch.from_numpy(np.array(images, copy=True)).to(self.device)  # uint8 (N, S, S)
        self.rng = torch.Generator(device="cpu").manual_seed(seed)
        self.opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=self.hyper.lr_d, betas=self.hyper.betas)
        self.opt_g = torch.optim.Adam(model.generator.parameters(), lr=self.hyper.lr_g, betas=self.hyper.betas)
        self.last_real_scores = np.zeros(0, np.float32)
        self.last_fake_scores = np.zeros(0, np.float32)

    # ----------------------------------------------------------------- steps

    def step_d(self) -> dict[str, float]:
        """One discriminator update (G unchanged, its batch-norm statistics included).

        Returns ``d_loss`` and ``d_real`` / ``d_fake``: D's mean scores of the batches.
        """
        hyper = self._checked_hyper()
        model = self.model
        model.train()
        real = self._real_batch(hyper.batch_size)  # (B, 1, S, S)
        z = self._noise(hyper.batch_size)  # (B, latent)
        with torch.no_grad(), _frozen_stats(model.generator):
            fake = model.generator(z)  # (B, 1, S, S), no gradient into G
        real_logits = model.discriminator(real)  # (B,)
        fake_logits = model.discriminator(fake)  # (B,)
        loss = d_loss(hyper.loss, real_logits, fake_logits)
        self._check_loss(loss, "discriminator")
        self._update(self.opt_d, model.discriminator, loss, hyper.lr_d, hyper.betas, "discriminator")
        self.d_updates += 1
        real_p = d_probabilities(real_logits.detach(), hyper.loss)
        fake_p = d_probabilities(fake_logits.detach(), hyper.loss)
        self.last_real_scores = real_p.float().cpu().numpy()
        self.last_fake_scores = fake_p.float().cpu().numpy()
        return {"d_loss": float(loss.detach()), "d_real": float(real_p.mean()), "d_fake": float(fake_p.mean())}

    def step_g(self) -> dict[str, float]:
        """One generator update (D's weights unchanged).

        Returns ``g_loss`` and ``d_fake``: D's mean score of the generated batch before the update.
        """
        hyper = self._checked_hyper()
        model = self.model
        model.train()
        z = self._noise(hyper.batch_size)  # (B, latent)
        # gradients flow through D to G, not into D; D's spectral-norm vectors stay as they were
        with _no_grad_params(model.discriminator), _frozen_stats(model.discriminator):
            fake_logits = model.discriminator(model.generator(z))  # (B,)
        loss = g_loss(hyper.loss, fake_logits)
        self._check_loss(loss, "generator")
        self._update(self.opt_g, model.generator, loss, hyper.lr_g, hyper.betas, "generator")
        fake_p = d_probabilities(fake_logits.detach(), hyper.loss)
        return {"g_loss": float(loss.detach()), "d_fake": float(fake_p.mean())}

    def train_step(self) -> dict[str, float]:
        """``hyper.d_steps`` discriminator steps, then one generator step; ``.step`` goes up by 1.

        Returns the means of the D steps (``d_loss``, ``d_real``, ``d_fake``) and ``g_loss``.
        """
        d_steps = self._checked_hyper().d_steps
        sums = {"d_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
        for _ in range(d_steps):
            for key, value in self.step_d().items():
                sums[key] += value
        result = {key: value / d_steps for key, value in sums.items()}
        result["g_loss"] = self.step_g()["g_loss"]
        self.step += 1
        return result

    # ------------------------------------------------------------------- run

    def run(
        self,
        steps: int,
        snapshot_every_s: float = 0.25,
        fixed_noise: torch.Tensor | None = None,
    ) -> Iterator[GANSnapshot]:
        """Train ``steps`` more generator steps, yielding a snapshot at least every ``snapshot_every_s``.

        The snapshot's samples are G's images of ``fixed_noise`` (default: 64
        vectors of seed 0), so the same vectors are seen improving. Stop by closing
        the generator; ``run()`` again resumes from ``.step``. Raises ``DivergedError``.
        """
        noise = fixed_noise if fixed_noise is not None else _default_noise(self.model.config.latent_dim)
        end = self.step + steps
        start = last = time.perf_counter()
        cpu_start = time.process_time()
        sums: dict[str, float] = {}
        count = images = 0
        try:
            while self.step < end:
                batch = self.hyper.batch_size
                losses = self.train_step()
                images += batch
                count += 1
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + value
                now = time.perf_counter()
                if now - last >= snapshot_every_s or self.step == end:
                    means = {key: total / count for key, total in sums.items()}
                    for key, value in means.items():
                        self.history.setdefault(key, []).append(value)
                    yield GANSnapshot(
                        step=self.step,
                        total_steps=end,
                        losses=means,
                        samples=generate(self.model, noise),
                        d_real_scores=self.last_real_scores.copy(),
                        d_fake_scores=self.last_fake_scores.copy(),
                        elapsed_s=now - start,
                        samples_per_second=images / max(now - last, 1e-9),
                        done=self.step == end,
                    )
                    last, sums, count, images = time.perf_counter(), {}, 0, 0
        finally:
            self.cpu_seconds += time.process_time() - cpu_start

    # --------------------------------------------------------------- helpers

    def _checked_hyper(self) -> GANHyper:
        h = self.hyper
        if h.loss not in LOSSES:
            raise ValueError(f"unknown loss {h.loss!r}: choose one of {', '.join(LOSSES)}")
        if int(h.d_steps) != h.d_steps or h.d_steps < 1:
            raise ValueError(f"d_steps must be a whole number ≥ 1, not {h.d_steps!r}")
        if int(h.batch_size) != h.batch_size or not 2 <= h.batch_size <= len(self.images):
            raise ValueError(f"batch_size must be between 2 and {len(self.images)}, not {h.batch_size!r}")
        return h

    def _real_batch(self, size: int) -> torch.Tensor:
        index = torch.randint(len(self.images), (size,), generator=self.rng)
        batch = self.images[index.to(self.images.device)]  # uint8 (B, S, S)
        return (batch.float() / 127.5 - 1).unsqueeze(1)  # (B, 1, S, S) in [-1, 1]

    def _noise(self, size: int) -> torch.Tensor:
        z = torch.randn(size, self.model.config.latent_dim, generator=self.rng)  # (B, latent)
        return z.to(self.device)

    def _check_loss(self, loss: torch.Tensor, net: str) -> None:
        if not torch.isfinite(loss):
            raise DivergedError(
                f"the {net}'s loss became {float(loss.detach())} at step {self.step + 1}: training diverged "
                "(a learning rate too high, or a weight that overflowed). Reset, or lower the learning rates."
            )

    def _update(self, optimizer: torch.optim.Optimizer, net: nn.Module, loss: torch.Tensor,
                lr: float, betas: tuple[float, float], name: str) -> None:
        """One Adam step on ``net``; its weights are put back if the step makes any of them NaN/Inf."""
        if not math.isfinite(lr):
            raise DivergedError(f"the {name}'s learning rate is {lr}: training cannot go on; "
                                "set a finite learning rate, or reset")
        if lr < 0:
            raise ValueError(f"the {name}'s learning rate must be ≥ 0, not {lr}")
        for group in optimizer.param_groups:  # read the settings now: they may have changed
            group["lr"] = lr
            group["betas"] = tuple(betas)
        params = [p for p in net.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in params]
        state = {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[p].items()}
                 for p in params if p in optimizer.state}
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        try:
            optimizer.step()
            finite = all(bool(torch.isfinite(p).all()) for p in params)
        except RuntimeError:  # e.g. a learning rate that overflows float32
            finite = False
        if not finite:
            with torch.no_grad():
                for p, old in zip(params, before):
                    p.copy_(old)
            optimizer.state.clear()
            optimizer.state.update(state)
            raise DivergedError(
                f"the {name}'s weights became NaN or infinite at step {self.step + 1}: training diverged "
                "(a learning rate too high). The weights are back as they were before that step; "
                "lower the learning rate, or reset."
            )


class _frozen_stats:
    """Run a module in train mode without changing its buffers (batch-norm statistics, spectral-norm vectors)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.saved = {name: b.clone() for name, b in self.module.named_buffers()}

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for name, b in self.module.named_buffers():
                b.copy_(self.saved[name])


class _no_grad_params:
    """Keep gradients off a module's parameters (they still flow through it)."""

    def __init__(self, module: nn.Module) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad]

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for p in self.params:
            p.requires_grad_(True)


# =========================================================================== sampling


def fixed_noise(count: int, latent_dim: int, seed: int = 0) -> torch.Tensor:
    """``count`` noise vectors (count, latent_dim) from N(0, I), the same for the same seed."""
    return torch.randn(count, latent_dim, generator=torch.Generator().manual_seed(seed))


def _default_noise(latent_dim: int) -> torch.Tensor:
    return fixed_noise(64, latent_dim)


def generate(model: DCGAN, z: torch.Tensor | np.ndarray, batch_size: int = 512) -> np.ndarray:
    """G's images of the noise vectors ``z`` (N, latent_dim), as uint8 (N, S, S).

    G runs in eval mode (batch norm uses its running statistics), so an image
    depends only on its own vector; the model's mode is restored afterwards.
    """
    z = torch.as_tensor(np.asarray(z) if isinstance(z, np.ndarray) else z, dtype=torch.float32)
    if z.ndim != 2 or z.shape[1] != model.config.latent_dim:
        raise ValueError(f"noise must be (N, {model.config.latent_dim}), not {tuple(z.shape)}")
    generator = model.generator
    was_training = generator.training
    generator.eval()
    try:
        with torch.inference_mode():
            parts = [generator(z[i : i + batch_size].to(model.device)) for i in range(0, len(z), batch_size)]
    finally:
        generator.train(was_training)
    side = model.config.image_size
    if not parts:
        return np.zeros((0, side, side), np.uint8)
    x = torch.cat(parts)[:, 0]  # (N, S, S) in [-1, 1]
    return np.ascontiguousarray(((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy())


# =========================================================================== quality


def class_coverage(model: DCGAN, evaluator: Any, count: int = 256, seed: int = 0) -> np.ndarray:
    """Which digits G makes: float64 (11,) shares of ``count`` samples, summing to 1.

    Entries 0–9: share of samples the evaluator puts confidently (p ≥ 0.9) in that
    digit class; entry 10: share not confidently a digit (junk or unsure). Mode
    collapse shows as a few tall entries.
    """
    from models.evaluator import digit_metrics

    images = generate(model, fixed_noise(count, model.config.latent_dim, seed))
    metrics = digit_metrics(evaluator, images)
    histogram = np.asarray(metrics["class_histogram"], dtype=np.float64) / max(count, 1)
    return np.append(histogram, max(0.0, 1.0 - histogram.sum()))


def quality_metrics(model: DCGAN, samples: int = 256, seed: int = EVAL_SEED, evaluator: Any = None) -> dict[str, Any]:
    """The evaluator's verdict on ``samples`` digits from G.

    Keys: ``confident_fraction``, ``real_confident_fraction``, ``class_entropy`` (nats),
    ``class_histogram``, ``junk_fraction``, ``fd``, ``fd_real`` (Fréchet distance to
    real digits, and between two real sets of the same size), ``samples``, ``seed``,
    with ``goals`` and ``meets_goals``.
    """
    from models.evaluator import Evaluator, digit_metrics, frechet_distance, real_digit_reference

    evaluator = evaluator or Evaluator.load()
    images = generate(model, fixed_noise(samples, model.config.latent_dim, seed))
    metrics = digit_metrics(evaluator, images)
    reference = real_digit_reference(evaluator, count=samples)
    report: dict[str, Any] = {
        "samples": samples,
        "seed": seed,
        "confident_fraction": metrics["confident_fraction"],
        "real_confident_fraction": reference["confident_fraction"],
        "class_entropy": metrics["class_entropy"],
        "class_histogram": [int(c) for c in metrics["class_histogram"]],
        "junk_fraction": metrics["junk_fraction"],
        "fd": frechet_distance(evaluator.features(images), reference["features"]),
        "fd_real": reference["fd_real"],
    }
    report["goals"] = {
        "confident_fraction": round(QUALITY_GOALS["confident_ratio"] * report["real_confident_fraction"], 4),
        "class_entropy": round(QUALITY_GOALS["class_entropy"], 4),
        "fd": round(QUALITY_GOALS["fd_ratio"] * report["fd_real"], 4),
    }
    report["meets_goals"] = {
        "confident_fraction": bool(report["confident_fraction"] >= report["goals"]["confident_fraction"]),
        "class_entropy": bool(report["class_entropy"] >= report["goals"]["class_entropy"]),
        "fd": bool(report["fd"] <= report["goals"]["fd"]),
    }
    return report


# =========================================================================== weights


def shipped_path(name: str = "dcgan-digits") -> Path:
    """Where the shipped weights ``name`` live."""
    return asset_path("weights", f"{name}.safetensors")


def save_dcgan(model: DCGAN, path: str | os.PathLike, card: dict[str, Any] | None = None) -> Path:
    """Write ``path``.safetensors, .json (config and card) and the .md card."""
    return save_model(model, model.config, path, KIND, card)


def load_dcgan(path_or_name: str | os.PathLike = "dcgan-digits",
               device: str | torch.device = "cpu") -> tuple[DCGAN, dict[str, Any]]:
    """A shipped name ("dcgan-digits") or a weights path → (model in eval mode, metadata).

    Raises ``WeightsError`` (one readable line) when the file cannot be used.
    """
    name = str(path_or_name)
    path = shipped_path(name) if name in SHIPPED_DCGANS else Path(path_or_name)
    return load_model(path, DCGAN, DCGANConfig, KIND, device)


# =========================================================================== data


def make_training_images(source: str = "digits", count: int = 20_000, folder: str | os.PathLike | None = None,
                         seed: int = 0) -> np.ndarray:
    """Training images as uint8 (N, 28, 28), white-ish shapes on dark, values 0–255.

    Parameters
    ----------
    source : str
        ``"digits"`` (``models.data.make_digits``, cached), ``"shapes"`` (the coloured
        shapes turned grey and resized to 28×28) or ``"folder"`` (every image of
        ``folder``, grey, resized and centre-cropped; ``count`` is ignored).
    count : int
        Number of generated images.

    Raises
    ------
    ValueError
        An unknown source, no folder, or a folder without images (one readable line).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown image source {source!r}: choose one of {', '.join(SOURCES)}")
    if source == "folder":
        if folder is None:
            raise ValueError("choose a folder of images to train on")
        from models.data import load_image_folder

        images = load_image_folder(folder, 28, grey=True).images
        if len(images) < 2:
            raise ValueError(f"a GAN needs at least 2 images; the folder holds {len(images)}")
        return images
    return _generated_images(source, int(count), int(seed))


@functools.lru_cache(maxsize=4)
def _generated_images(source: str, count: int, seed: int) -> np.ndarray:
    from models.data import make_digits, make_shapes

    if source == "digits":
        images = make_digits(count, seed)[0]
    else:
        from PIL import Image

        rgb = make_shapes(count, seed).images  # uint8 (N, 32, 32, 3)
        grey = (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
        images = np.stack([
            np.asarray(Image.fromarray(g).resize((28, 28), Image.Resampling.LANCZOS)) for g in grey
        ])
    images = np.ascontiguousarray(images)
    images.flags.writeable = False  # shared by every caller
    return images


# =========================================================================== the shipped recipe


@dataclass(frozen=True)
class Recipe:
    """How the shipped DCGAN is trained (``diffusion-explorer train gan``)."""

    config: DCGANConfig = DCGANConfig()
    steps: int = DEFAULT_STEPS  # generator steps
    batch_size: int = 64
    lr_d: float = 2e-4
    lr_g: float = 2e-4
    loss: str = "non-saturating"
    d_steps: int = 1
    data_count: int = 60_000
    seed: int = 0  # of the data, the initial weights and the noise

    def hyper(self) -> GANHyper:
        return GANHyper(lr_d=self.lr_d, lr_g=self.lr_g, loss=self.loss, d_steps=self.d_steps,
                        batch_size=self.batch_size)


def train_dcgan(
    recipe: Recipe,
    out: str | os.PathLike,
    *,
    name: str = "dcgan-digits",
    device: str | torch.device = "cpu",
    evaluate: bool = True,
    eval_samples: int = 256,
    command: str = "",
    on_snapshot: Any = None,
) -> TrainingResult:
    """Train ``recipe`` on digits and save ``out/NAME.*`` with its card (metrics when ``evaluate``).

    Ctrl+C stops cleanly: the steps done so far are saved and marked as interrupted.
    ``on_snapshot(snapshot, trainer)`` is called for every snapshot (progress, probes).
    """
    model = DCGAN(recipe.config, seed=recipe.seed)
    images = make_training_images("digits", recipe.data_count, seed=recipe.seed)
    trainer = GANTrainer(model, images, recipe.hyper(), seed=recipe.seed, device=device)
    start = time.perf_counter()
    losses: dict[str, float] = {}
    interrupted = False
    try:
        for snapshot in trainer.run(recipe.steps, snapshot_every_s=1.0):
            losses = snapshot.losses
            if on_snapshot is not None:
                on_snapshot(snapshot, trainer)
    except KeyboardInterrupt:
        if trainer.step == 0:
            raise
        interrupted = True
    wall = time.perf_counter() - start
    model.eval()
    counts = model.parameter_counts()
    card: dict[str, Any] = {
        "description": "A small DCGAN on generated 28×28 digits: a generator (a linear layer to "
        f"{4 * recipe.config.width}×7×7, then two transposed convolutions up to 28×28, batch norm and ReLU "
        "between them, tanh at the end) "
        "against a discriminator (two strided convolutions with leaky ReLU and a linear logit, "
        "all spectrally normalised).",
        "recipe": command or f"diffusion-explorer train gan --steps {recipe.steps} --out {out}",
        "data": f"make_digits({recipe.data_count}, seed={recipe.seed}), values in [-1, 1]",
        "loss": recipe.loss,
        "optimizer": f"Adam betas (0.5, 0.999), lr D {recipe.lr_d}, lr G {recipe.lr_g}, "
        f"batch {recipe.batch_size}, {recipe.d_steps} D step(s) per G step",
        "steps": trainer.step,
        "final_losses": {k: round(v, 3) for k, v in losses.items()},
        "cpu_seconds": round(trainer.cpu_seconds, 1),
        "wall_seconds": round(wall, 1),
        "hardware": f"{torch.get_num_threads()} torch threads on {device}",
        "parameters": {**counts, "total": sum(counts.values())},
    }
    if interrupted:
        card["interrupted"] = f"stopped by the user at step {trainer.step} of {recipe.steps}"
    if evaluate and not interrupted:
        card["metrics"] = card_metrics(model, eval_samples)
    path = save_dcgan(model, Path(out) / name, card)
    return TrainingResult(path, model, trainer.step, losses, wall, trainer.cpu_seconds, interrupted, card)


def card_metrics(model: DCGAN, samples: int = 256) -> dict[str, Any]:
    """The numbers of ``quality_metrics`` that go in the model card."""
    report = quality_metrics(model, samples)
    keys = ("samples", "seed", "confident_fraction", "real_confident_fraction", "class_entropy", "fd", "fd_real")
    entry = {k: round(report[k], 4) if isinstance(report[k], float) else report[k] for k in keys}
    entry["meets_goals"] = all(report["meets_goals"].values())
    return entry


# =========================================================================== timelapse


def capture_steps(steps: int, every: int) -> list[int]:
    """The steps a timelapse shows: 0 (before training), every ``every``-th, and the last."""
    if steps < 1 or every < 1:
        raise ValueError(f"steps and every must be ≥ 1, not {steps} and {every}")
    shown = list(range(0, steps + 1, every))
    return shown if shown[-1] == steps else [*shown, steps]


def sample_grid(images: np.ndarray, columns: int = 8, scale: int = 2, gap: int = 2) -> np.ndarray:
    """uint8 (N, h, w) samples as one grey mosaic, ``columns`` wide, each enlarged ``scale`` times."""
    big = images.repeat(scale, axis=1).repeat(scale, axis=2)  # (N, h·scale, w·scale)
    count, h, w = big.shape
    rows = -(-count // columns)
    mosaic = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap), 40, np.uint8)  # dark grey gaps
    for i, image in enumerate(big):
        row, column = divmod(i, columns)
        mosaic[gap + row * (h + gap): gap + row * (h + gap) + h, gap + column * (w + gap): gap + column * (w + gap) + w] = image
    return mosaic


def training_timelapse(steps: int, every: int, seed: int = 0, samples: int = 64, source: str = "digits",
                       config: DCGANConfig = DCGANConfig(), hyper: GANHyper | None = None,
                       data_count: int = 20_000, device: str | torch.device = "cpu") -> Iterator[tuple[int, np.ndarray]]:
    """Train a DCGAN from scratch and yield (step, uint8 (samples, S, S) of the fixed noise) at ``capture_steps``.

    Deterministic by ``seed`` (weights, noise, batches, the fixed noise).
    """
    model = DCGAN(config, seed=seed)
    trainer = GANTrainer(model, make_training_images(source, data_count), hyper or GANHyper(), seed=seed, device=device)
    noise = fixed_noise(samples, config.latent_dim, seed)
    for step in capture_steps(steps, every):
        while trainer.step < step:
            trainer.train_step()
        yield step, generate(model, noise)
