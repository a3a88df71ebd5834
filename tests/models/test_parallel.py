"""Batch-parallel U-Net calls: the same noise prediction as the module, weights followed, threads ended."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from models.parallel import batch_parallel, frozen_graph
from models.unet import UNet, UNetConfig


def _unet(**changes) -> UNet:
    torch.manual_seed(0)
    model = UNet(UNetConfig(channels=(8, 16), emb_dim=32, **changes)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, std=0.2)
    return model


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("batch", [1, 2, 5, 16])
def test_the_parallel_call_predicts_what_the_module_does(threads, batch):
    model = _unet()
    x, t = torch.randn(batch, 1, 28, 28), torch.randint(0, 1000, (batch,))
    labels = torch.arange(batch) % 11
    with torch.inference_mode(), batch_parallel(model, threads) as call:
        for y in (labels, None):
            torch.testing.assert_close(call(x, t, y, None), model(x, t, y), atol=1e-5, rtol=1e-5)


def test_text_context_goes_through():
    model = _unet(num_classes=None, context_dim=12, patch_size=2)
    x, t, context = torch.randn(4, 1, 28, 28), torch.full((4,), 300), torch.randn(4, 5, 12)
    with torch.inference_mode(), batch_parallel(model, 2) as call:
        torch.testing.assert_close(call(x, t, None, context), model(x, t, None, context), atol=1e-5, rtol=1e-5)


def test_changed_weights_are_followed():
    model = _unet()
    x, t = torch.randn(4, 1, 28, 28), torch.full((4,), 500)
    with batch_parallel(model, 2) as call:
        with torch.inference_mode():
            before = call(x, t, None, None)
        with torch.no_grad():
            model.conv_in.weight.mul_(2.0)  # as an optimiser step or an EMA update does
        with torch.inference_mode():
            after = call(x, t, None, None)
            torch.testing.assert_close(after, model(x, t, None))
    assert not torch.allclose(before, after)


def test_a_training_module_is_called_as_it_is():
    model = _unet().train()
    x = torch.randn(2, 1, 28, 28)
    assert frozen_graph(model, (x, torch.zeros(2, dtype=torch.long), None, None)) is None
    with torch.no_grad(), batch_parallel(model, 2) as call:
        torch.testing.assert_close(call(x, torch.zeros(2, dtype=torch.long), None, None), model(x, 0))
    assert model.training


def test_workers_end_with_the_block_and_the_thread_count_is_kept():
    threads_before = set(threading.enumerate())
    count = torch.get_num_threads()
    with batch_parallel(_unet(), 2) as call, torch.inference_mode():
        call(torch.randn(4, 1, 28, 28), torch.full((4,), 1), None, None)
        assert len(set(threading.enumerate()) - threads_before) == 2
    assert set(threading.enumerate()) == threads_before
    assert torch.get_num_threads() == count
