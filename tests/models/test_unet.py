"""The U-Net noise predictor: shapes, conditioning, feature maps, the block list."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.unet import UNet, UNetConfig, timestep_embedding

TINY = UNetConfig(channels=(8, 16, 16), emb_dim=32)


def _unet(config: UNetConfig = TINY, seed: int = 0) -> UNet:
    """A U-Net whose zero-initialised output layers are randomised, so inputs show in the output."""
    torch.manual_seed(seed)
    model = UNet(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and not module.weight.any():
                nn.init.normal_(module.weight, std=0.2)
    return model


def test_predicts_noise_of_the_input_shape():
    model = _unet()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        eps = model(x, torch.tensor([0, 500, 999]))
        same_t = model(x, 500)
    assert eps.shape == (3, 1, 28, 28) and eps.dtype == torch.float32
    assert torch.isfinite(eps).all()
    torch.testing.assert_close(same_t[1], eps[1])


def test_a_fresh_unet_predicts_zero_noise():
    assert not UNet(TINY)(torch.randn(2, 1, 28, 28), 10).any()


def test_timestep_embedding_is_sinusoidal():
    emb = timestep_embedding(torch.tensor([0, 7]), 8)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0]))
    torch.testing.assert_close(emb[1, 0], torch.cos(torch.tensor(7.0)))  # the fastest frequency is 1


def test_timestep_and_class_change_the_prediction():
    model = _unet()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        base = model(x, 100, torch.tensor([3, 3]))
        other_t = model(x, 900, torch.tensor([3, 3]))
        other_class = model(x, 100, torch.tensor([7, 7]))
    assert not torch.allclose(base, other_t)
    assert not torch.allclose(base, other_class)


def test_no_label_means_the_null_class():
    model = _unet()
    x = torch.randn(2, 1, 28, 28)
    assert model.config.null_class == 10
    with torch.no_grad():
        torch.testing.assert_close(model(x, 50), model(x, 50, torch.tensor([10, 10])))


def test_unconditional_config_has_no_class_embedding():
    model = _unet(UNetConfig(channels=(8, 16), emb_dim=32, num_classes=None))
    assert model.class_emb is None and model.config.null_class is None
    assert model(torch.randn(1, 1, 28, 28), 3).shape == (1, 1, 28, 28)


def test_features_are_named_like_the_blocks_with_their_shapes():
    model = _unet()
    blocks = model.blocks()
    with torch.no_grad():
        eps, features = model(torch.randn(2, 1, 28, 28), 10, return_features=True)
    assert list(features) == [b["name"] for b in blocks]
    for block in blocks:
        assert features[block["name"]].shape == (2, *block["out"])
    torch.testing.assert_close(features["out"], eps)


def test_blocks_describe_the_architecture_at_28x28():
    blocks = UNet(UNetConfig(channels=(24, 48, 96))).blocks()
    by_name = {b["name"]: b for b in blocks}
    assert [b["name"] for b in blocks] == [
        "conv in", "down 1", "down 2", "down 3", "middle", "up 3", "up 2", "up 1", "out"]
    assert by_name["conv in"]["in"] == (1, 28, 28)
    assert by_name["down 2"]["out"] == (48, 14, 14)
    assert by_name["middle"]["out"] == (96, 7, 7) and "self-attention" in by_name["middle"]["kind"]
    assert by_name["up 3"]["in"] == (96 + 96, 7, 7)  # middle + the skip of down 3
    assert by_name["up 1"]["in"] == (24 + 24, 28, 28)  # upsampled + the skip of down 1
    assert by_name["out"]["out"] == (1, 28, 28)
    assert by_name["down 1"]["skip_to"] == "up 1"


def test_cross_attention_only_with_a_context_dim():
    plain = _unet()
    assert plain.mid_cross is None
    with pytest.raises(ValueError, match="no cross-attention"):
        plain(torch.randn(1, 1, 28, 28), 1, context=torch.randn(1, 4, 12))
    model = _unet(UNetConfig(channels=(8, 16), emb_dim=32, context_dim=12))
    assert "cross-attention" in model.blocks()[3]["kind"]
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        a = model(x, 1, context=torch.randn(1, 4, 12))
        b = model(x, 1, context=torch.randn(1, 4, 12))
    assert not torch.allclose(a, b)


def test_attention_weights_can_be_kept_for_drawing():
    model = _unet()
    model.mid_attn.keep_weights = True
    with torch.no_grad():
        kept = model(torch.ones(1, 1, 28, 28), 5)
    assert model.mid_attn.last_weights.shape == (1, 4, 49, 49)
    torch.testing.assert_close(model.mid_attn.last_weights.sum(-1), torch.ones(1, 4, 49))
    model.mid_attn.keep_weights = False
    with torch.no_grad():
        torch.testing.assert_close(model(torch.ones(1, 1, 28, 28), 5), kept, atol=1e-5, rtol=1e-5)


def test_patches_keep_the_image_shape_and_halve_the_grid():
    model = _unet(UNetConfig(channels=(16, 32), emb_dim=32, patch_size=2))
    assert model.conv_in.in_channels == 4 and model.conv_out.out_channels == 4
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        eps, features = model(x, 10, return_features=True)
    assert eps.shape == (2, 1, 28, 28)
    assert features["down 1"].shape == (2, 16, 14, 14) and features["middle"].shape == (2, 32, 7, 7)
    by_name = {b["name"]: b for b in model.blocks()}
    assert by_name["conv in"]["in"] == (1, 28, 28) and by_name["out"]["out"] == (1, 28, 28)
    assert by_name["down 1"]["out"] == (16, 14, 14) and "2×2 patches" in by_name["conv in"]["kind"]


@pytest.mark.parametrize("config, message", [
    (dict(channels=(12, 16)), "multiple of 8"),
    (dict(channels=(8, 16, 16, 16)), "does not halve"),
    (dict(channels=(8, 16), patch_size=3), "patches"),
    (dict(channels=(8, 16, 16), patch_size=2), "does not halve"),
    (dict(channels=()), "at least one level"),
])
def test_bad_configs_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        UNetConfig(**config)


def test_shipped_size():
    from models.diffusion import SHIPPED_RECIPE

    model = UNet(SHIPPED_RECIPE.config.unet)
    assert 0.8e6 < model.num_parameters() < 1.5e6
