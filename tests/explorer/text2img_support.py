"""What the Text to image chapter's tests share: a tiny untrained pipeline and a clean teardown."""

from __future__ import annotations

import shiboken6
import torch

from models.clip import Clip, ClipConfig
from models.diffusion import DiffusionConfig, DiffusionModel
from models.image_vae import ImageVAE, ImageVAEConfig
from models.ldm import LDM_CONFIG, TextToImage
from models.unet import UNetConfig


def tiny_pipeline(seed: int = 0) -> TextToImage:
    """An untrained pipeline small enough to sample 30 steps in a blink; its outputs vary with the prompt."""
    torch.manual_seed(seed)
    clip = Clip(ClipConfig(width=16, layers=1, heads=2, image_channels=(8, 8, 16), embed_dim=16))
    vae = ImageVAE(ImageVAEConfig(channels=(8, 8, 16)))
    unet = UNetConfig(in_channels=4, image_size=8, channels=(8, 16), emb_dim=16, groups=4, attention_heads=2,
                      num_classes=None, context_dim=16)
    model = DiffusionModel(DiffusionConfig(unet=unet, beta_schedule=LDM_CONFIG.beta_schedule,
                                           beta_start=LDM_CONFIG.beta_start, beta_end=LDM_CONFIG.beta_end))
    with torch.no_grad():  # zero-initialised last layers would hide the prompt's effect
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return TextToImage(clip.eval(), vae.eval(), model.eval(), {"unet": "tiny"})


def destroy_tab(tab) -> None:
    """Stop the tab and delete it and its controls now (see tests/explorer/test_latent_chapter.py)."""
    tab.set_active(False)
    tab.shutdown()
    assert tab.pool.stop_all()
    tab.close()
    shiboken6.delete(tab.controls)
    shiboken6.delete(tab)
