"""Weights round trip, and every way a weights file can be bad."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from models.weights import WeightsError, load_model, read_meta, save_model, weights_files


@dataclass(frozen=True)
class TinyConfig:
    width: int = 4


class Tiny(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.layer = nn.Linear(3, config.width)


def load(path, kind="tiny"):
    return load_model(path, Tiny, TinyConfig, kind)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = Tiny(TinyConfig(width=5))
    path = save_model(model, TinyConfig(width=5), tmp_path / "tiny", "tiny", {"steps": 10, "metrics": {"acc": 0.5}})
    return model, path


def test_round_trip_keeps_values_config_and_card(saved):
    model, path = saved
    loaded, meta = load(path)
    assert loaded.layer.weight.shape == (5, 3)
    torch.testing.assert_close(loaded.layer.weight, model.layer.weight)
    assert meta["config"] == {"width": 5}
    assert meta["card"]["metrics"] == {"acc": 0.5}
    card = weights_files(path)[2].read_text()
    assert "## Metrics" in card and "acc: 0.5" in card and "steps: 10" in card
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.json", "tiny.md", "tiny.safetensors"]
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in path.parent.iterdir())


def test_truncated_file(saved):
    _, path = saved
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(WeightsError, match="tiny.safetensors.*truncated or not a safetensors"):
        load(path)


def test_not_a_safetensors_file(saved):
    _, path = saved
    path.write_bytes(b"\x80\x04 pickle? no thanks" * 10)
    with pytest.raises(WeightsError, match="truncated or not a safetensors"):
        load(path)


def test_shape_mismatch(saved):
    _, path = saved
    meta_path = weights_files(path)[1]
    meta = json.loads(meta_path.read_text())
    meta["config"]["width"] = 7
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match=r"layer.bias has shape \(5,\), the model needs \(7,\)"):
        load(path)


def test_non_finite_values(tmp_path):
    model = Tiny(TinyConfig())
    with torch.no_grad():
        model.layer.bias[0] = float("nan")
    path = save_model(model, TinyConfig(), tmp_path / "nan", "tiny")
    with pytest.raises(WeightsError, match="NaN or infinite"):
        load(path)


def test_wrong_kind_and_missing_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(WeightsError, match="holds a tiny model, not a vae"):
        load(path, kind="vae")
    with pytest.raises(WeightsError, match="config file .* is missing"):
        load(tmp_path / "nothing.safetensors")
    weights_files(path)[1].write_text("{not json")
    with pytest.raises(WeightsError, match="unreadable"):
        read_meta(path)


def test_missing_tensor(tmp_path):
    class Other(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.other = nn.Linear(3, 4)

    path = save_model(Other(TinyConfig()), TinyConfig(), tmp_path / "other", "tiny")
    with pytest.raises(WeightsError, match="missing layer.bias, layer.weight, unexpected other.bias"):
        load(path)
