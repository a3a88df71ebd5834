"""What the Diffusion chapter's tab tests share: models, digits and a clean teardown."""

from __future__ import annotations

import shiboken6
import torch

from explorer.chapters.diffusion import backend
from models.diffusion import DiffusionConfig, DiffusionModel
from models.unet import UNetConfig


def tiny_model(conditional: bool = True, seed: int = 0) -> DiffusionModel:
    """An untrained U-Net small enough to sample 1000 steps in a second or two."""
    torch.manual_seed(seed)
    unet = UNetConfig(channels=(8, 16), emb_dim=16, groups=4, attention_heads=2,
                      num_classes=10 if conditional else None)
    model = DiffusionModel(DiffusionConfig(unet=unet)).eval()
    with torch.no_grad():  # its zeroed last layer would predict ε̂ = 0 everywhere
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def shipped_parts() -> tuple[DiffusionModel, dict, str, backend.FreshDigits]:
    """The shipped DDPM, its meta and origin, and the chapter's fresh digits."""
    from models.autoencoder import FRESH_SEED
    from models.data import make_digits
    from models.device import set_torch_threads

    set_torch_threads(leave_for_gui=1)  # as the chapter does: on a busy 2-core machine, 2 threads are 20× slower
    model, meta, origin, note = backend.load_shipped("cpu")
    assert not note, note
    images, labels = make_digits(backend.FRESH_COUNT, seed=FRESH_SEED, cache=True)
    return model, meta, origin, backend.FreshDigits(images, labels, FRESH_SEED)


def destroy_tab(tab: backend.DiffusionTab) -> None:
    """Stop the tab and delete it and its controls now (see tests/explorer/test_latent_chapter.py)."""
    tab.set_active(False)
    tab.shutdown()
    assert tab.pool.stop_all()
    tab.close()
    shiboken6.delete(tab.controls)
    shiboken6.delete(tab)
