"""Saving and loading model weights: safetensors + a JSON config + a model card.

A model ``NAME`` in a folder is three files, each written atomically:

- ``NAME.safetensors``: the tensors (never pickle: loading runs no code);
- ``NAME.json``: ``{"kind": ..., "config": {...}, "card": {...}}``, enough to rebuild it;
- ``NAME.md``: the model card for people (recipe, steps, CPU time, metrics).

Loading checks that the tensor names and shapes are the ones the config's
model has and that every value is finite; anything else is a ``WeightsError``
with one readable line, and the caller keeps the model it had.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

FORMAT_VERSION = 1

ModelT = TypeVar("ModelT", bound=nn.Module)


class WeightsError(ValueError):
    """A weights file that cannot be used; ``str()`` is one readable line."""


def weights_files(path: str | os.PathLike) -> tuple[Path, Path, Path]:
    """The (.safetensors, .json, .md) paths for ``path`` given with or without a suffix."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in {".safetensors", ".json", ".md"} else path
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json"), stem.with_suffix(".md")


def save_model(
    model: nn.Module,
    config: Any,
    path: str | os.PathLike,
    kind: str,
    card: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights, its frozen-dataclass ``config`` and its card.

    Parameters
    ----------
    path
        Where to write, with or without the ``.safetensors`` suffix; the folder is created.
    kind
        What the model is (``"vae"``, ``"evaluator"``, ...): checked when loading.
    card
        Recipe, steps, CPU time, metrics: stored in the JSON and rendered as the ``.md``.
    """
    tensors_path, config_path, card_path = weights_files(path)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    card = dict(card or {})
    tensors = {name: value.detach().to("cpu").contiguous() for name, value in model.state_dict().items()}
    meta = {"format_version": FORMAT_VERSION, "kind": kind, "config": dataclasses.asdict(config), "card": card}

    _atomic_write(tensors_path, lambda tmp: save_file(tensors, str(tmp), metadata={"kind": kind}))
    _atomic_write(config_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n"))
    _atomic_write(card_path, lambda tmp: tmp.write_text(render_card(tensors_path.stem, kind, config, card)))
    return tensors_path


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON beside a weights file (kind, config, card)."""
    tensors_path, config_path, _ = weights_files(path)
    name = tensors_path.name
    try:
        meta = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"Cannot load '{name}': its config file {config_path.name} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsError(f"Cannot load '{name}': its config file is unreadable ({error})") from None
    if not isinstance(meta, dict) or "config" not in meta or "kind" not in meta:
        raise WeightsError(f"Cannot load '{name}': its config file has no 'kind' and 'config'")
    return meta


def load_model(
    path: str | os.PathLike,
    build: Callable[[Any], ModelT],
    config_class: type,
    kind: str,
    device: str | torch.device = "cpu",
) -> tuple[ModelT, dict[str, Any]]:
    """Rebuild a model saved by ``save_model`` and return it with its metadata.

    ``build(config)`` makes the model from ``config_class(**saved_config)``.
    Raises ``WeightsError`` (only) when anything does not fit.
    """
    tensors_path, _, _ = weights_files(path)
    name = tensors_path.name
    meta = read_meta(tensors_path)
    if meta["kind"] != kind:
        raise WeightsError(f"Cannot load '{name}': it holds a {meta['kind']} model, not a {kind}")
    try:
        config = config_class(**meta["config"])
        model = build(config)
    except (TypeError, ValueError) as error:
        raise WeightsError(f"Cannot load '{name}': its config does not fit this version ({error})") from None

    if not tensors_path.is_file():
        raise WeightsError(f"Cannot load '{name}': the file does not exist")
    try:
        tensors = load_file(str(tensors_path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsError(f"Cannot load '{name}': the file is truncated or not a safetensors file ({error})") from None

    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        detail = ", ".join(
            part
            for part in (
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
            )
            if part
        )
        raise WeightsError(f"Cannot load '{name}': its tensors do not match the model ({detail})")
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise WeightsError(
                f"Cannot load '{name}': tensor {key} has shape {tuple(value.shape)}, "
                f"the model needs {tuple(expected[key].shape)}"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise WeightsError(f"Cannot load '{name}': tensor {key} holds NaN or infinite values")
    model.load_state_dict(tensors)
    return model.to(device).eval(), meta


def render_card(name: str, kind: str, config: Any, card: dict[str, Any]) -> str:
    """The model card as Markdown: what it is, how it was trained, how good it is."""
    lines = [f"# {name}", "", f"Kind: `{kind}`", ""]
    if card.get("description"):
        lines += [str(card["description"]), ""]
    lines += ["## Config", ""] + [f"- `{k}`: {v}" for k, v in dataclasses.asdict(config).items()] + [""]
    training = {k: v for k, v in card.items() if k not in {"description", "metrics"}}
    if training:
        lines += ["## Training", ""] + [f"- {k}: {_format_value(v)}" for k, v in training.items()] + [""]
    if card.get("metrics"):
        lines += ["## Metrics", ""] + [f"- {k}: {_format_value(v)}" for k, v in card["metrics"].items()] + [""]
    return "\n".join(lines)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format_value(v)}" for k, v in value.items())
    return str(value)


def _atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; weights are ordinary files
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
