"""The latent-diffusion VAE: 32×32×3 ↔ 8×8×4, its loss, its latent scale, its weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.data import make_shapes, to_tensor
from models.image_vae import (
    ImageVAE, ImageVAEConfig, latent_scale, load_image_vae, rgb_uint8, save_image_vae, vae_loss,
)

TINY = ImageVAEConfig(channels=(8, 8, 16))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_vae(seed: int = 0) -> ImageVAE:
    torch.manual_seed(seed)
    return ImageVAE(TINY)


def test_shapes_of_the_round_trip():
    model = tiny_vae().eval()
    images = to_tensor(make_shapes(3, seed=1).images)
    mean, logvar = model.encode(images)
    assert mean.shape == logvar.shape == (3, 4, 8, 8)
    assert TINY.latent_size == 8 and ImageVAEConfig().latent_size == 8
    decoded = model.decode(mean)
    assert decoded.shape == (3, 3, 32, 32)
    pictures = rgb_uint8(decoded)
    assert pictures.shape == (3, 32, 32, 3) and pictures.dtype == np.uint8 and pictures.flags.c_contiguous


def test_scaling_factor_makes_unit_variance_latents():
    model = tiny_vae().eval()
    images = to_tensor(make_shapes(200, seed=2).images)
    scale = latent_scale(model, images)
    model.config = ImageVAEConfig(channels=TINY.channels, scaling_factor=scale)
    with torch.no_grad():
        latents = model.to_latent(images)
        assert float(latents.std()) == pytest.approx(1.0, rel=1e-3)
        torch.testing.assert_close(model.from_latent(latents), model.decode(model.encode(images)[0]))


def test_a_few_steps_lower_the_loss():
    model = tiny_vae().train()
    images = to_tensor(make_shapes(32, seed=3).images)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(30):
        result = vae_loss(model, images)
        optimizer.zero_grad()
        result["loss"].backward()
        optimizer.step()
        losses.append(result["recon"].item())
        assert set(result) == {"loss", "recon", "kl"}
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_weights_round_trip(tmp_path):
    model = tiny_vae().eval()
    model.config = ImageVAEConfig(channels=TINY.channels, scaling_factor=1.7)
    path = save_image_vae(model, tmp_path / "vae", {"steps": 0})
    loaded, meta = load_image_vae(path)
    assert loaded.config.scaling_factor == 1.7 and meta["card"]["steps"] == 0
    images = to_tensor(make_shapes(2, seed=4).images)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval().to_latent(images), model.to_latent(images))
