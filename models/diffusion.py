"""Denoising diffusion on digits: train a U-Net to predict noise, then sample frame by frame.

Training (Ho et al. 2020, algorithm 1): take a clean digit x₀ in [−1, 1], a
timestep t and noise ε, jump to x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, and teach the U-Net
to say what ε was: loss = w(t)·‖ε − ε̂(x_t, t, class)‖². The label is replaced by
the null class one time in ten, so the same network also learns the unconditional
model that classifier-free guidance needs (Ho & Salimans 2022).

Sampling (algorithm 2, or DDIM's jumps) is a generator that yields one
:class:`DiffusionFrame` per step, so the application, the command line and the
tests run the same loop::

    model, meta = load_ddpm("ddpm-digits")
    for frame in sample(model, "ddim", num_steps=50, batch=16, seed=0, class_labels=[3] * 16):
        show(frame.x_t, frame.eps_hat, frame.x0_hat)
    digits = to_uint8(frame.x_prev)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from models.assets import asset_path
from models.images import EPS_RANGE, to_uint8  # noqa: F401 (part of this module's API)
from models.data import make_digits, to_tensor
from models.parallel import batch_parallel
from models.schedulers import DDIMScheduler, DDPMScheduler, NoiseScheduler
from models.training import Trainer, TrainingResult, TrainingSnapshot, endless_batches
from models.unet import UNet, UNetConfig
from models.weights import load_model, save_model

KIND = "ddpm"
SHIPPED_DDPMS = ("ddpm-digits",)
DEFAULT_GUIDANCE = 2.0  # classifier-free guidance scale used for conditional samples
EVAL_SEED = 5000  # seeds of the sampling noise in the quality metrics (no training uses them)
QUALITY_GOALS = {
    "confident_ratio": 0.85,  # confident_fraction ≥ 0.85 × real_confident_fraction
    "fd_ratio": 3.0,  # fd ≤ 3 × fd_real
    "class_entropy": 0.95 * math.log(10),  # nats
    "conditional_accuracy": 0.95,
}


# =========================================================================== model


@dataclass(frozen=True)
class DiffusionConfig:
    """The noise predictor and the forward process it was trained with."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: str = "epsilon"

    def __post_init__(self) -> None:
        if isinstance(self.unet, dict):  # read back from JSON
            object.__setattr__(self, "unet", UNetConfig(**self.unet))


class DiffusionModel(nn.Module):
    """A U-Net noise predictor with the noise schedule it was trained on."""

    def __init__(self, config: DiffusionConfig = DiffusionConfig()) -> None:
        super().__init__()
        self.config = config
        self.unet = UNet(config.unet)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | int,
        class_labels: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        return_features: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """ε̂ (and feature maps): see :meth:`UNet.forward`."""
        return self.unet(x, t, class_labels, context, return_features)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def null_class(self) -> int | None:
        return self.config.unet.null_class

    def scheduler(self, sampler: str = "ddim", eta: float = 0.0, **overrides: Any) -> NoiseScheduler:
        """A DDPM or DDIM scheduler with this model's training schedule.

        DDPM clips x̂₀ to [−1, 1] (its step uses only x̂₀ and x_t); DDIM does not by
        default: its step also uses ε̂, which would then disagree with the clipped x̂₀,
        and with classifier-free guidance that mismatch spoils the digits (conditional
        accuracy 0.55 instead of 1.0 at guidance 2 in our measurements).
        """
        config = dict(
            num_train_timesteps=self.config.num_train_timesteps,
            beta_schedule=self.config.beta_schedule,
            beta_start=self.config.beta_start,
            beta_end=self.config.beta_end,
            prediction_type=self.config.prediction_type,
            clip_sample=sampler == "ddpm",
        )
        config.update(overrides)
        if sampler == "ddpm":
            if eta != 0.0:
                raise ValueError("η is a DDIM setting; DDPM always adds its full noise")
            return DDPMScheduler(**config)
        if sampler == "ddim":
            return DDIMScheduler(eta=eta, **config)
        raise ValueError(f"unknown sampler {sampler!r} (choose from: ddpm, ddim)")


# =========================================================================== training


@dataclass(frozen=True)
class DiffusionRecipe:
    """How the shipped digits DDPM is trained (every number of its card)."""

    config: DiffusionConfig = field(default_factory=DiffusionConfig)
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 200
    final_lr_fraction: float = 0.05  # cosine decay to this fraction of lr
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    min_snr_gamma: float | None = 5.0  # loss weight min(SNR, γ)/SNR (Hang et al. 2023); None: plain MSE
    ema_decay: float = 0.999
    class_dropout: float = 0.1  # share of labels replaced by the null class (for guidance)
    data_count: int = 60_000
    seed: int = 0
    channels_last: bool = True  # faster convolutions on CPU


SHIPPED_RECIPE = DiffusionRecipe(DiffusionConfig(unet=UNetConfig(channels=(48, 96), patch_size=2)))


class EMA:
    """An exponential moving average of a model's weights: smoother samples than the raw weights.

    ``decay`` ramps up as (1 + n)/(10 + n) early on, so a short run is not dominated by
    its random start.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.model = _copy_model(model)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.model.parameters(), model.parameters()):
            average.lerp_(current.detach(), 1.0 - decay)  # avg ← decay·avg + (1 − decay)·current
        for average, current in zip(self.model.buffers(), model.buffers()):
            average.copy_(current)


def _copy_model(model: DiffusionModel) -> DiffusionModel:
    copy = DiffusionModel(model.config).to(model.device)
    copy.load_state_dict(model.state_dict())
    copy.requires_grad_(False)
    return copy.eval()


def diffusion_loss(
    model: DiffusionModel,
    batch: tuple[torch.Tensor, torch.Tensor],
    alphas_cumprod: torch.Tensor,
    class_dropout: float = 0.1,
    min_snr_gamma: float | None = 5.0,
) -> dict[str, torch.Tensor]:
    """The DDPM objective on a batch of (digits in [−1, 1], labels).

    Returns ``loss`` (min-SNR weighted when ``min_snr_gamma`` is set: what is minimised)
    and ``mse`` (plain ‖ε − ε̂‖² per pixel); :func:`loss_by_timestep` gives the loss against t.
    """
    x0, labels = batch  # (B, 1, 28, 28), (B,)
    t, noise, abar, x_t = noised(x0, alphas_cumprod)
    null = model.null_class
    if null is not None:
        drop = torch.rand(len(x0), device=x0.device) < class_dropout
        labels = torch.where(drop, torch.full_like(labels, null), labels)  # some learn "no class"
    else:
        labels = None
    eps_hat = model(x_t, t, labels)  # (B, 1, 28, 28)
    return noise_loss(eps_hat, noise, abar, min_snr_gamma)


def noised(x0: torch.Tensor, alphas_cumprod: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A random t per sample and the forward jump: (t (B,), ε, ᾱ_t (B, 1, 1, 1), x_t)."""
    n = x0.shape[0]
    t = torch.randint(0, alphas_cumprod.shape[0], (n,), device=x0.device)  # t ~ U{0, …, T−1}
    noise = torch.randn_like(x0)  # ε ~ N(0, I)
    abar = alphas_cumprod.to(x0.device)[t].view(n, 1, 1, 1)  # ᾱ_t
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise  # forward jump (eq. 4)
    return t, noise, abar, x_t


def noise_loss(eps_hat: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor,
               min_snr_gamma: float | None) -> dict[str, torch.Tensor]:
    """``loss``: ‖ε − ε̂‖² per sample, min-SNR weighted when ``min_snr_gamma`` is set; ``mse``: unweighted."""
    n = noise.shape[0]
    per_sample = (eps_hat - noise).pow(2).mean(dim=(1, 2, 3))  # (B,)
    mse = per_sample.mean()
    if min_snr_gamma is None:
        return {"loss": mse, "mse": mse.detach()}
    snr = abar.view(n) / (1 - abar.view(n))  # SNR_t = ᾱ_t / (1 − ᾱ_t)
    weight = snr.clamp(max=min_snr_gamma) / snr  # easy, low-noise steps count less
    return {"loss": (weight * per_sample).mean(), "mse": mse.detach()}


def make_trainer(
    recipe: DiffusionRecipe = SHIPPED_RECIPE,
    *,
    device: str | torch.device = "cpu",
    model: DiffusionModel | None = None,
    ema: EMA | None = None,
) -> Trainer:
    """A Trainer for ``recipe`` (or for ``model``, to continue training it) on generated digits.

    AdamW with warm-up and cosine decay, gradient clipping, and an EMA of the
    weights (``trainer.ema``, updated after every step). The data are
    ``make_digits(recipe.data_count, recipe.seed)``; the initial weights and the batch
    order follow ``recipe.seed``; t, ε and the label dropout come from torch's global
    generator (:func:`train_ddpm` seeds it with ``recipe.seed``).
    Stop by closing ``trainer.run(...)``; call it again to resume.
    """
    device = torch.device(device)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            model = DiffusionModel(recipe.config)
    model.to(device)
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    images, labels = make_digits(recipe.data_count, seed=recipe.seed)
    x0 = to_tensor(images).contiguous(memory_format=memory_format)  # (N, 1, 28, 28) in [−1, 1]
    batches = endless_batches(x0, torch.from_numpy(labels.astype(np.int64)),
                              batch_size=recipe.batch_size, seed=recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    ema = ema or EMA(model, recipe.ema_decay)
    trainer = Trainer(model, optimizer, _loss_function(recipe), batches, device=device)

    def before_step(opt, args, kwargs) -> None:
        if recipe.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        for group in opt.param_groups:
            group["lr"] = learning_rate(recipe, trainer.step)

    optimizer.register_step_pre_hook(before_step)
    optimizer.register_step_post_hook(lambda opt, args, kwargs: ema.update(model))
    trainer.ema = ema  # type: ignore[attr-defined]
    return trainer


def _loss_function(recipe: DiffusionRecipe) -> Callable:
    scheduler = DDPMScheduler(
        recipe.config.num_train_timesteps, recipe.config.beta_start, recipe.config.beta_end,
        recipe.config.beta_schedule,
    )
    alphas_cumprod = scheduler.alphas_cumprod  # (T,) float32

    def compute_loss(model: DiffusionModel, batch) -> dict[str, torch.Tensor]:
        return diffusion_loss(model, batch, alphas_cumprod, recipe.class_dropout, recipe.min_snr_gamma)

    return compute_loss


def learning_rate(recipe: DiffusionRecipe, step: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``final_lr_fraction·lr`` at ``recipe.steps``."""
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = min(1.0, (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps))
    low = recipe.final_lr_fraction
    return recipe.lr * (low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def loss_by_timestep(model: DiffusionModel, images: np.ndarray, timesteps: Sequence[int], seed: int = 0,
                     class_labels: np.ndarray | None = None) -> np.ndarray:
    """Plain noise-prediction MSE at each of ``timesteps`` on uint8 digits (N, 28, 28): the loss against t."""
    generator = torch.Generator().manual_seed(seed)
    x0 = to_tensor(images).to(model.device)
    scheduler = model.scheduler("ddpm")
    labels = None if class_labels is None else torch.as_tensor(class_labels, dtype=torch.long, device=model.device)
    losses = []
    model.eval()
    for t in timesteps:
        noise = torch.randn(x0.shape, generator=generator).to(model.device)
        tt = torch.full((len(x0),), int(t), dtype=torch.long, device=model.device)
        x_t = scheduler.add_noise(x0, noise, tt)
        losses.append(float((model(x_t, tt, labels) - noise).pow(2).mean()))
    return np.array(losses, dtype=np.float64)


@dataclass
class NoisePrediction:
    """The training objective on some digits at one t, as numpy float32 (N, H, W) arrays."""

    t: int
    x0: np.ndarray  # the clean digits in [−1, 1]
    noise: np.ndarray  # the true ε
    x_t: np.ndarray  # √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε
    eps_hat: np.ndarray  # the U-Net's guess of ε
    mse: float  # mean of (ε̂ − ε)²

    @property
    def error(self) -> np.ndarray:
        """ε̂ − ε: what the loss squares."""
        return self.eps_hat - self.noise


def predict_noise(model: DiffusionModel, images: np.ndarray, t: int, seed: int = 0,
                  class_labels: Sequence[int] | np.ndarray | None = None) -> NoisePrediction:
    """Noise uint8 digits (N, 28, 28) to step t with seeded ε and let the model guess ε."""
    generator = torch.Generator().manual_seed(int(seed))
    x0 = to_tensor(np.asarray(images)).to(model.device)  # (N, 1, 28, 28)
    noise = torch.randn(x0.shape, generator=generator).to(model.device)
    n = x0.shape[0]
    tt = torch.full((n,), int(t), dtype=torch.long, device=model.device)
    labels = _labels(model, class_labels, n, model.device)
    model.eval()
    with torch.inference_mode():
        x_t = model.scheduler("ddpm").add_noise(x0, noise, tt)
        eps_hat = model(x_t, tt, labels)
    return NoisePrediction(int(t), _numpy(x0), _numpy(noise), _numpy(x_t), _numpy(eps_hat),
                           float((eps_hat - noise).pow(2).mean()))


# =========================================================================== sampling


@dataclass
class DiffusionFrame:
    """One reverse step, as plain numpy (safe to hand to another thread).

    Image arrays are float32, C-contiguous, (N, H, W) for grey or (N, H, W, C),
    in the model's units ([−1, 1] for data; x_t and ε̂ go beyond).
    """

    index: int  # 0 … total − 1
    total: int  # number of steps of this run
    t: int  # the timestep this step starts from
    prev_t: int  # the timestep it lands on (−1: the end, the clean image)
    x_t: np.ndarray  # the sample entering the step
    eps_hat: np.ndarray  # the (guided) predicted noise ε̂
    x0_hat: np.ndarray  # the predicted clean image x̂₀ (clipped as the scheduler uses it)
    x_prev: np.ndarray  # the sample after the step, x_{t−1}; the final image on the last frame
    features: dict[str, np.ndarray] | None = None  # U-Net feature maps (N, C, h, w) when asked

    @property
    def update(self) -> np.ndarray:
        """What the step changed: x_{t−1} − x_t."""
        return self.x_prev - self.x_t

    @property
    def last(self) -> bool:
        return self.index == self.total - 1


def sample(
    model: DiffusionModel,
    scheduler: NoiseScheduler | str,
    num_steps: int,
    batch: int,
    seed: int,
    class_labels: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    guidance: float = 1.0,
    record_features: bool = False,
    eta: float | None = None,
    parallel: bool = True,
) -> Iterator[DiffusionFrame]:
    """Reverse diffusion from seeded noise: one :class:`DiffusionFrame` per step.

    Parameters
    ----------
    model
        The noise predictor (its device is used).
    scheduler
        A scheduler (``set_timesteps(num_steps)`` is called on it) or "ddpm"/"ddim".
    num_steps
        Steps to take, 1 … T.
    batch
        Images sampled at once.
    seed
        Seeds one ``torch.Generator`` (on the CPU) that draws x_T and every step's noise,
        as diffusers' pipelines draw them: the same seed gives identical frames.
    class_labels
        A digit per image (0–9) for class-conditional sampling; None samples
        unconditionally (the null class).
    guidance
        Classifier-free guidance scale g: ε̂ = ε̂_uncond + g·(ε̂_cond − ε̂_uncond), both
        branches in one batched call. 1 is plain conditional sampling.
    record_features
        Add the U-Net's feature maps (of the conditional branch) to each frame.
    eta
        DDIM's η when ``scheduler`` is given by name.
    parallel
        Call the U-Net as a frozen graph on slices of the batch in parallel threads
        (:mod:`models.parallel`): the same ε̂, about twice as fast on 2 cores. Tracing
        costs about half a second each time the weights change, so a model sampled
        between training steps (the Train tab's previews) is better called directly.
    """
    if isinstance(scheduler, str):
        scheduler = model.scheduler(scheduler, eta=eta or 0.0)
    elif eta is not None:
        raise ValueError("η belongs to the scheduler: make it with model.scheduler('ddim', eta=...)")
    if batch < 1:
        raise ValueError(f"the batch must hold at least one image, got {batch}")
    scheduler.set_timesteps(num_steps)
    device = model.device
    labels = _labels(model, class_labels, batch, device)
    uncond = None if labels is None or model.null_class is None else torch.full_like(labels, model.null_class)
    guided = labels is not None and uncond is not None and guidance != 1.0
    generator = torch.Generator().manual_seed(int(seed))
    cfg = model.config.unet
    shape = (batch, cfg.in_channels, cfg.image_size, cfg.image_size)
    model.eval()
    with torch.inference_mode():
        x = torch.randn(shape, generator=generator).to(device) * scheduler.init_noise_sigma  # x_T ~ N(0, I)
    timesteps = [int(t) for t in scheduler.timesteps]
    fast = parallel and not record_features  # feature maps come from the module's own call
    with batch_parallel(model.unet, threads=None if fast else 1) as fast_unet:

        def predict(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None):
            """ε̂, and the feature maps when they are recorded."""
            if record_features:
                return model(x, t, labels, return_features=True)
            return (fast_unet if fast else model.unet)(x, t, labels, None), None

        for index, t in enumerate(timesteps):
            with torch.inference_mode():
                tt = torch.full((batch,), t, dtype=torch.long, device=device)
                if guided:
                    # One call for both branches: (2B, C, H, W) with labels then the null class.
                    eps_both, feats = predict(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([labels, uncond]))
                    eps_cond, eps_uncond = eps_both.chunk(2)
                    eps = eps_uncond + guidance * (eps_cond - eps_uncond)
                    feats = {k: v[:batch] for k, v in feats.items()} if feats else None
                else:
                    eps, feats = predict(x, tt, labels)
                step = scheduler.step(eps, t, x, generator=generator)
                frame = DiffusionFrame(
                    index=index, total=len(timesteps), t=t, prev_t=scheduler.previous_timestep(t),
                    x_t=_numpy(x), eps_hat=_numpy(eps), x0_hat=_numpy(step.pred_original_sample),
                    x_prev=_numpy(step.prev_sample),
                    features={k: v.float().cpu().numpy() for k, v in feats.items()} if feats else None,
                )
                x = step.prev_sample
            yield frame


def _labels(model: DiffusionModel, class_labels, batch: int, device: torch.device) -> torch.Tensor | None:
    if class_labels is None:
        return None
    if model.null_class is None:
        raise ValueError("this model is unconditional: it takes no class labels")
    labels = torch.as_tensor(np.asarray(class_labels), dtype=torch.long).reshape(-1)
    if labels.numel() == 1:
        labels = labels.expand(batch)
    if labels.numel() != batch:
        raise ValueError(f"got {labels.numel()} class labels for a batch of {batch}")
    if ((labels < 0) | (labels > model.null_class)).any():
        raise ValueError(f"class labels must be 0 … {model.null_class - 1} (or {model.null_class}: no class)")
    return labels.to(device)


def _numpy(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) tensor -> float32 C-contiguous (N, H, W) for one channel, else (N, H, W, C)."""
    x = x.float().cpu()
    array = x[:, 0] if x.shape[1] == 1 else x.permute(0, 2, 3, 1)
    return np.ascontiguousarray(array.numpy(), dtype=np.float32)


PANELS = ("x_t", "eps_hat", "x0_hat")


def frame_panels(frame: DiffusionFrame, image: int = 0, final: bool = False) -> list[np.ndarray]:
    """uint8 (H, W) pictures of one image of a frame: x_t (or the final x₀), ε̂, x̂₀.

    x_t and x̂₀ map [−1, 1] to 0 … 255; ε̂ maps [−3, 3] (``EPS_RANGE``).
    """
    first = frame.x_prev[image] if final else frame.x_t[image]
    return [to_uint8(first), to_uint8(frame.eps_hat[image] / EPS_RANGE), to_uint8(frame.x0_hat[image])]


def reverse_images(frames: Iterator[DiffusionFrame], panels: bool = False, scale: int = 1,
                   image: int = 0) -> Iterator[np.ndarray]:
    """The pictures of a reverse run for an export: x_t of every step, then the final image.

    So ``steps + 1`` uint8 pictures, from pure noise to the digit. With ``panels``, each is
    x_t | ε̂ | x̂₀ side by side (the final one: x₀ | the last ε̂ | the last x̂₀), one dark
    pixel apart; every picture is enlarged ``scale`` times (nearest neighbour).
    """
    frame = None
    for frame in frames:
        yield _picture(frame_panels(frame, image), panels, scale)
    if frame is not None:
        yield _picture(frame_panels(frame, image, final=True), panels, scale)


def _picture(parts: list[np.ndarray], panels: bool, scale: int) -> np.ndarray:
    if panels:
        gap = np.full((parts[0].shape[0], 1), 40, np.uint8)
        picture = np.concatenate([parts[0], gap, parts[1], gap, parts[2]], axis=1)
    else:
        picture = parts[0]
    return np.ascontiguousarray(picture.repeat(scale, axis=0).repeat(scale, axis=1))


def generate(
    model: DiffusionModel,
    sampler: str = "ddim",
    num_steps: int = 50,
    count: int = 16,
    seed: int = 0,
    class_labels: Sequence[int] | np.ndarray | None = None,
    guidance: float = 1.0,
    eta: float = 0.0,
    batch_size: int = 128,
) -> np.ndarray:
    """``count`` finished digits as uint8 (count, 28, 28), sampled ``batch_size`` at a time.

    Batch ``i`` uses seed ``seed + i``.
    """
    parts = []
    labels = None if class_labels is None else np.asarray(class_labels).reshape(-1)
    for i, begin in enumerate(range(0, count, batch_size)):
        n = min(batch_size, count - begin)
        part_labels = None if labels is None else labels[begin : begin + n]
        frame = None
        for frame in sample(model, model.scheduler(sampler, eta=eta), num_steps, n, seed + i,
                            part_labels, guidance):
            pass
        parts.append(to_uint8(frame.x_prev))
    return np.concatenate(parts) if parts else np.zeros((0, 28, 28), np.uint8)


# =========================================================================== weights


def save_ddpm(model: DiffusionModel, path: str | os.PathLike, card: dict[str, Any] | None = None) -> Path:
    """Write ``path``.safetensors/.json/.md (kind "ddpm")."""
    model = _copy_model(model).to(memory_format=torch.contiguous_format).cpu()
    return save_model(model, model.config, path, KIND, card)


def load_ddpm(path_or_name: str | os.PathLike = "ddpm-digits",
              device: str | torch.device = "cpu") -> tuple[DiffusionModel, dict[str, Any]]:
    """A DDPM saved by :func:`save_ddpm`, or a shipped one by name; raises ``WeightsError``.

    The weights come channels-last: about 20% faster convolutions on a CPU.
    """
    path = shipped_path(str(path_or_name)) if str(path_or_name) in SHIPPED_DDPMS else Path(path_or_name)
    model, meta = load_model(path, DiffusionModel, DiffusionConfig, KIND, device)
    return model.to(memory_format=torch.channels_last), meta


def shipped_path(name: str = "ddpm-digits") -> Path:
    return asset_path("weights", f"{name}.safetensors")


def save_checkpoint(trainer: Trainer, path: str | os.PathLike) -> Path:
    """Model, EMA and AdamW state in one safetensors file (no pickle), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in trainer.model.state_dict().items()}
    tensors |= {f"ema.{k}": v.detach().contiguous().cpu() for k, v in trainer.ema.model.state_dict().items()}
    for i, p in enumerate(trainer.model.parameters()):
        state = trainer.optimizer.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                tensors[f"adam.{i}.{key}"] = state[key].detach().contiguous().cpu()
    meta = {"step": str(trainer.step), "ema_updates": str(trainer.ema.updates),
            "cpu_seconds": repr(trainer.cpu_seconds)}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load_checkpoint(trainer: Trainer, path: str | os.PathLike) -> None:
    """Restore what :func:`save_checkpoint` wrote into a trainer made by :func:`make_trainer`."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(path))
    device = next(trainer.model.parameters()).device
    trainer.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    trainer.ema.model.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    step = int(meta["step"])
    for i, p in enumerate(trainer.model.parameters()):
        if f"adam.{i}.exp_avg" in tensors:
            trainer.optimizer.state[p] = {
                "step": torch.tensor(float(step)),
                "exp_avg": tensors[f"adam.{i}.exp_avg"].to(device),
                "exp_avg_sq": tensors[f"adam.{i}.exp_avg_sq"].to(device),
            }
    trainer.step = step
    trainer.ema.updates = int(meta["ema_updates"])
    trainer.cpu_seconds = float(meta["cpu_seconds"])


# =========================================================================== the recipe


def train_ddpm(
    recipe: DiffusionRecipe = SHIPPED_RECIPE,
    out: str | os.PathLike = "runs/ddpm",
    *,
    name: str = "ddpm-digits",
    device: str | torch.device = "cpu",
    evaluate: bool = True,
    eval_samples: int = 256,
    command: str = "",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every_s: float = 300.0,
    on_snapshot: Callable[[TrainingSnapshot], None] | None = None,
) -> TrainingResult:
    """Train ``recipe`` and save its EMA weights as ``out/NAME.*`` with the card.

    With ``checkpoint``, the model, EMA and optimiser are saved there every
    ``checkpoint_every_s`` seconds and a run resumes from it when it exists.
    Ctrl+C stops cleanly: the weights trained so far are saved, marked interrupted.
    """
    torch.manual_seed(recipe.seed)  # t, ε and label dropout: the same recipe gives the same weights
    trainer = make_trainer(recipe, device=device)
    if checkpoint is not None and Path(checkpoint).is_file():
        load_checkpoint(trainer, checkpoint)
        torch.manual_seed(recipe.seed + trainer.step)
    start = time.perf_counter()
    last_save = start
    losses: dict[str, float] = {}
    interrupted = False
    try:
        for snapshot in trainer.run(recipe.steps - trainer.step):
            losses = snapshot.losses
            if on_snapshot is not None:
                on_snapshot(snapshot)
            if checkpoint is not None and time.perf_counter() - last_save > checkpoint_every_s:
                save_checkpoint(trainer, checkpoint)
                last_save = time.perf_counter()
    except KeyboardInterrupt:
        if trainer.step == 0:
            raise
        interrupted = True
    if checkpoint is not None:
        save_checkpoint(trainer, checkpoint)
    wall = time.perf_counter() - start
    model = trainer.ema.model
    card = recipe_card(recipe, trainer, wall, device, command, name, out)
    if interrupted:
        card["interrupted"] = f"stopped by the user at step {trainer.step} of {recipe.steps}"
    elif evaluate:
        card["metrics"] = card_metrics(model, samples=eval_samples)
    path = save_ddpm(model, Path(out) / name, card)
    return TrainingResult(path, model, trainer.step, losses, wall, trainer.cpu_seconds, interrupted, card)


def recipe_card(recipe: DiffusionRecipe, trainer: Trainer, wall_s: float, device, command: str,
                name: str, out) -> dict[str, Any]:
    """The training part of the model card."""
    model = trainer.model
    return {
        "description": "A class-conditional DDPM on generated 28×28 digits: a U-Net predicts the noise "
        "in x_t. The null class (label 10) gives unconditional samples and classifier-free guidance.",
        "recipe": command or f"diffusion-explorer train ddpm --out {out} --name {name}",
        "data": f"make_digits({recipe.data_count}, seed={recipe.seed}), values in [-1, 1]",
        "objective": "ε-prediction MSE, t ~ U{0..999}"
        + (f", min-SNR weight min(SNR, {recipe.min_snr_gamma})/SNR" if recipe.min_snr_gamma else "")
        + f"; labels replaced by the null class with p = {recipe.class_dropout}",
        "optimizer": f"AdamW lr {recipe.lr} (warm-up {recipe.warmup_steps} steps, cosine to "
        f"{recipe.final_lr_fraction:g}×), weight decay {recipe.weight_decay}, grad clip {recipe.grad_clip}, "
        f"batch {recipe.batch_size}",
        "ema": f"decay {recipe.ema_decay} (the saved weights)",
        "steps": trainer.step,
        "epochs": round(trainer.step * recipe.batch_size / recipe.data_count, 2),
        "cpu_seconds": round(trainer.cpu_seconds, 1),
        "wall_seconds": round(wall_s, 1),
        "hardware": f"{torch.get_num_threads()} torch threads on {torch.device(device)}",
        "parameters": sum(p.numel() for p in model.parameters()),
    }


# =========================================================================== quality


def quality_metrics(
    model: DiffusionModel,
    sampler: str = "ddim",
    num_steps: int = 50,
    samples: int = 256,
    *,
    eta: float = 0.0,
    guidance: float = DEFAULT_GUIDANCE,
    seed: int = EVAL_SEED,
    evaluator=None,
    conditional: bool = True,
    batch_size: int = 128,
) -> dict[str, Any]:
    """The evaluator's verdict on ``samples`` unconditional (and conditional) digits.

    Keys: ``confident_fraction``, ``real_confident_fraction``, ``class_entropy`` (nats),
    ``class_histogram``, ``junk_fraction``, ``fd``, ``fd_real`` (Fréchet distance to
    real digits, and between two real sets of the same size), ``conditional_accuracy``
    (share of guided class-conditional samples confidently of the asked digit, digits
    0–9 in turn), with ``goals`` and ``meets_goals``, and the sampling settings.
    """
    from models.evaluator import Evaluator, digit_metrics, frechet_distance, real_digit_reference

    evaluator = evaluator or Evaluator.load()
    start = time.perf_counter()
    images = generate(model, sampler, num_steps, samples, seed, None, 1.0, eta, batch_size)
    report: dict[str, Any] = {"sampler": sampler, "steps": num_steps, "eta": eta, "samples": samples}
    metrics = digit_metrics(evaluator, images)
    reference = real_digit_reference(evaluator, count=samples)
    report["confident_fraction"] = metrics["confident_fraction"]
    report["real_confident_fraction"] = reference["confident_fraction"]
    report["class_entropy"] = metrics["class_entropy"]
    report["class_histogram"] = metrics["class_histogram"]
    report["junk_fraction"] = metrics["junk_fraction"]
    report["fd"] = frechet_distance(evaluator.features(images), reference["features"])
    report["fd_real"] = reference["fd_real"]
    if conditional and model.null_class is not None:
        labels = np.arange(samples) % 10
        guided = generate(model, sampler, num_steps, samples, seed + 10_000, labels, guidance, eta, batch_size)
        conditional = digit_metrics(evaluator, guided, labels)
        report["conditional_accuracy"] = conditional["correct_fraction"]
        report["conditional_confident_fraction"] = conditional["confident_fraction"]
        report["guidance"] = guidance
    report["sampling_seconds"] = round(time.perf_counter() - start, 1)
    report["goals"] = {
        "confident_fraction": round(QUALITY_GOALS["confident_ratio"] * report["real_confident_fraction"], 4),
        "fd": round(QUALITY_GOALS["fd_ratio"] * report["fd_real"], 4),
        "class_entropy": round(QUALITY_GOALS["class_entropy"], 4),
        "conditional_accuracy": QUALITY_GOALS["conditional_accuracy"],
    }
    report["meets_goals"] = {
        "confident_fraction": report["confident_fraction"] >= report["goals"]["confident_fraction"],
        "fd": report["fd"] <= report["goals"]["fd"],
        "class_entropy": report["class_entropy"] >= report["goals"]["class_entropy"],
    }
    if "conditional_accuracy" in report:
        report["meets_goals"]["conditional_accuracy"] = report["conditional_accuracy"] >= QUALITY_GOALS["conditional_accuracy"]
    return report


CARD_SAMPLERS = (("ddpm", 1000), ("ddim", 50), ("ddim", 20), ("ddim", 10))


def card_metrics(model: DiffusionModel, samples: int = 256, evaluator=None,
                 samplers: Sequence[tuple[str, int]] = CARD_SAMPLERS) -> dict[str, Any]:
    """:func:`quality_metrics` for DDPM-1000, DDIM-50, DDIM-20 and DDIM-10, flattened for the card."""
    return {f"{sampler}-{steps}": card_entry(quality_metrics(model, sampler, steps, samples, evaluator=evaluator))
            for sampler, steps in samplers}


def card_entry(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a :func:`quality_metrics` report that go in the model card."""
    keys = ("samples", "confident_fraction", "real_confident_fraction", "class_entropy", "fd", "fd_real",
            "conditional_accuracy", "conditional_confident_fraction", "guidance", "sampling_seconds")
    return {k: round(report[k], 4) if isinstance(report[k], float) else report[k] for k in keys if k in report}
