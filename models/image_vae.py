"""The latent-diffusion VAE: 32×32×3 images to an 8×8×4 latent and back.

    image (N, 3, 32, 32) ─► encoder ─► mean, log-variance (N, 4, 8, 8) ─► z × scaling ─► latent U-Net
    latent (N, 4, 8, 8) ─► ÷ scaling ─► decoder ─► image (N, 3, 32, 32)

Stable Diffusion's VAE maps 512×512×3 to 64×64×4: 48 times fewer numbers, so
diffusion runs where each step is cheap. Ours makes the same cut (3072 → 256
numbers, 12×) for our 32×32 scenes. The KL weight is tiny, as in Stable Diffusion:
the latent stays a faithful, roughly Gaussian map of the image, not a prior to
sample from directly; ``scaling_factor`` (1 / the std of the training latents)
brings it to unit variance, the scale the noise schedule assumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.assets import asset_path
from models.data import make_shapes, to_tensor
from models.images import to_uint8
from models.training import Trainer, TrainingResult, endless_batches, train_steps
from models.weights import load_model, save_model

KIND = "image-vae"
SHIPPED_NAME = "vae-shapes"
EVAL_SEED = 8000


@dataclass(frozen=True)
class ImageVAEConfig:
    in_channels: int = 3
    image_size: int = 32
    latent_channels: int = 4
    channels: tuple[int, ...] = (24, 48, 96)  # widths at 32×32, 16×16, 8×8: two halvings
    kl_weight: float = 1e-5  # per latent number, against the per-pixel MSE (1e-3 blurred stars into squares)
    scaling_factor: float = 1.0  # set after training: 1 / std of the latents of the training images

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** (len(self.channels) - 1)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.SiLU())


class ImageVAE(nn.Module):
    def __init__(self, config: ImageVAEConfig = ImageVAEConfig()) -> None:
        super().__init__()
        self.config = config
        ch = config.channels
        encoder: list[nn.Module] = [_block(config.in_channels, ch[0])]
        for c_prev, c in zip(ch, ch[1:]):
            encoder += [nn.Conv2d(c_prev, c, 3, stride=2, padding=1), _block(c, c)]  # halve the side
        encoder.append(nn.Conv2d(ch[-1], 2 * config.latent_channels, 1))  # mean and log-variance
        self.encoder = nn.Sequential(*encoder)
        decoder: list[nn.Module] = [_block(config.latent_channels, ch[-1]), _block(ch[-1], ch[-1])]
        for c_prev, c in zip(ch[::-1], ch[-2::-1]):
            decoder += [nn.Upsample(scale_factor=2.0, mode="nearest"), _block(c_prev, c)]  # double the side
        decoder.append(nn.Conv2d(ch[0], config.in_channels, 3, padding=1))
        self.decoder = nn.Sequential(*decoder)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 3, 32, 32) in [−1, 1] -> mean, log-variance (N, 4, 8, 8), unscaled."""
        mean, logvar = self.encoder(images).chunk(2, dim=1)
        return mean, logvar.clamp(-20, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """unscaled z (N, 4, 8, 8) -> images (N, 3, 32, 32), about [−1, 1]."""
        return self.decoder(z)

    def to_latent(self, images: torch.Tensor) -> torch.Tensor:
        """What the U-Net sees: the mean latent × scaling_factor (N, 4, 8, 8)."""
        return self.encode(images)[0] * self.config.scaling_factor

    def from_latent(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode what the U-Net made: images (N, 3, 32, 32)."""
        return self.decode(latents / self.config.scaling_factor)


def rgb_uint8(images: torch.Tensor) -> np.ndarray:
    """Images (N, 3, H, W) in [−1, 1] -> uint8 (N, H, W, 3), C-contiguous."""
    return np.ascontiguousarray(to_uint8(images.detach().float().permute(0, 2, 3, 1).cpu().numpy()))


def vae_loss(model: ImageVAE, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """MSE per pixel + kl_weight × KL per latent number (N(mean, σ²) against N(0, I))."""
    mean, logvar = model.encode(images)
    z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
    recon = F.mse_loss(model.decode(z), images)
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
    return {"loss": recon + model.config.kl_weight * kl, "recon": recon.detach(), "kl": kl.detach()}


@dataclass(frozen=True)
class ImageVAERecipe:
    config: ImageVAEConfig = ImageVAEConfig()
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    data_count: int = 30_000
    seed: int = 0


def make_trainer(recipe: ImageVAERecipe = ImageVAERecipe(), *, device: str | torch.device = "cpu") -> Trainer:
    """Adam with a cosine decay on every combination of shapes (the VAE names nothing, so none is held out)."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = ImageVAE(recipe.config).to(device)
    images = to_tensor(make_shapes(recipe.data_count, seed=recipe.seed).images)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.steps, eta_min=recipe.lr * 0.05)
    optimizer.register_step_post_hook(lambda opt, args, kwargs: schedule.step())
    return Trainer(model, optimizer, vae_loss, endless_batches(images, batch_size=recipe.batch_size,
                                                                seed=recipe.seed), device=device)


@torch.no_grad()
def latent_scale(model: ImageVAE, images: torch.Tensor) -> float:
    """1 / std of the mean latents of ``images``: makes the latents unit-variance."""
    return float(1.0 / model.encode(images.to(model.device))[0].std())


@torch.no_grad()
def reconstruction_metrics(model: ImageVAE, count: int = 1000, seed: int = EVAL_SEED, evaluator=None) -> dict[str, Any]:
    """MSE (in [−1, 1] units) on fresh scenes and, with the evaluator, how often all three of
    shape, colour and background survive the round trip."""
    data = make_shapes(count, seed=seed)
    x = to_tensor(data.images).to(model.device)
    recon = model.decode(model.encode(x)[0])
    result: dict[str, Any] = {"recon_mse": float(F.mse_loss(recon, x)), "images": count}
    if evaluator is not None:
        predicted = evaluator.shape_predictions(rgb_uint8(recon))
        right = ((predicted["shape"].argmax(1) == data.shape) & (predicted["color"].argmax(1) == data.color)
                 & (predicted["background"].argmax(1) == data.background))
        result["recon_fidelity"] = float(right.mean())
    return result


def save_image_vae(model: ImageVAE, path: str | os.PathLike, card: dict[str, Any] | None = None) -> Path:
    return save_model(model.cpu(), model.config, path, KIND, card)


def load_image_vae(path_or_name: str | os.PathLike = SHIPPED_NAME,
                   device: str | torch.device = "cpu") -> tuple[ImageVAE, dict[str, Any]]:
    """The shipped shapes VAE by name, or one saved by :func:`save_image_vae`; raises ``WeightsError``."""
    path = asset_path("weights", f"{SHIPPED_NAME}.safetensors") if str(path_or_name) == SHIPPED_NAME \
        else Path(path_or_name)
    return load_model(path, ImageVAE, ImageVAEConfig, KIND, device)


def train_image_vae(recipe: ImageVAERecipe = ImageVAERecipe(), out: str | os.PathLike = "runs/vae-shapes", *,
                    name: str = SHIPPED_NAME, device: str | torch.device = "cpu", evaluate: bool = True,
                    command: str = "", on_snapshot=None) -> TrainingResult:
    """Train, measure the latent scale, and save ``out/NAME.*`` with its card."""
    torch.manual_seed(recipe.seed)
    trainer = make_trainer(recipe, device=device)
    losses, wall, interrupted = train_steps(trainer, recipe.steps, on_snapshot)
    model: ImageVAE = trainer.model.eval()  # type: ignore[assignment]
    scale = latent_scale(model, to_tensor(make_shapes(2000, seed=recipe.seed).images))
    model.config = replace(model.config, scaling_factor=round(scale, 5))
    card = {
        "description": "A convolutional VAE from 32×32×3 shapes scenes to an 8×8×4 latent (Stable Diffusion's "
        "recipe in miniature: a tiny KL weight and a scaling factor to unit variance).",
        "recipe": command or f"diffusion-explorer train ldm --part vae --out {out}",
        "data": f"make_shapes({recipe.data_count}, seed={recipe.seed}), values in [-1, 1]",
        "loss": f"MSE per pixel + {recipe.config.kl_weight:g} × KL per latent number",
        "optimizer": f"Adam lr {recipe.lr}, cosine to 5%, batch {recipe.batch_size}",
        "steps": trainer.step,
        "cpu_seconds": round(trainer.cpu_seconds, 1),
        "wall_seconds": round(wall, 1),
        "hardware": f"{torch.get_num_threads()} torch threads on {torch.device(device)}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_losses": {k: round(v, 5) for k, v in losses.items()},
    }
    if interrupted:
        card["interrupted"] = f"stopped by the user at step {trainer.step} of {recipe.steps}"
    elif evaluate:
        from models.evaluator import Evaluator

        card["metrics"] = reconstruction_metrics(model, evaluator=Evaluator.load())
    path = save_image_vae(model, Path(out) / name, card)
    return TrainingResult(path, model, trainer.step, losses, wall, trainer.cpu_seconds, interrupted, card)
