"""The command line's diffusion commands: export reverse, train ddpm, eval ddpm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence
from torch import nn

from explorer.cli import main

REPO = Path(__file__).resolve().parents[2]
PREFIX = "diffusion-explorer: error: "


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A tiny random DDPM (output layers randomised, so it draws something)."""
    from models.diffusion import DiffusionConfig, DiffusionModel, save_ddpm
    from models.unet import UNetConfig

    torch.manual_seed(0)
    model = DiffusionModel(DiffusionConfig(unet=UNetConfig(channels=(8, 16), emb_dim=32)))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and not module.weight.any():
                nn.init.normal_(module.weight, std=0.1)
    return save_ddpm(model, tmp_path_factory.mktemp("weights") / "tiny", {"steps": 0})


def reverse(weights: Path, out: Path, *extra: str) -> list[str]:
    return ["export", "reverse", "--weights", str(weights), "--steps", "4", "--device", "cpu",
            "--out", str(out), *extra]


def pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


def test_export_reverse_to_a_folder(weights, tmp_path, capsys):
    from models.diffusion import load_ddpm, sample, to_uint8

    out = tmp_path / "frames"
    code, stdout, stderr = run(capsys, *reverse(weights, out, "--seed", "2", "--digit", "7", "--scale", "2"))
    assert code == 0 and stderr == ""
    assert stdout.startswith(f"Wrote 5 PNG frames to {out}")
    frames = pngs(out)
    assert len(frames) == 5 and all(f.shape == (56, 56) and f.dtype == np.uint8 for f in frames)
    model, _ = load_ddpm(weights)
    steps = list(sample(model, "ddim", 4, 1, seed=2, class_labels=[7], guidance=2.0))
    np.testing.assert_array_equal(frames[0][::2, ::2], to_uint8(steps[0].x_t[0]))  # pure noise first
    np.testing.assert_array_equal(frames[2][::2, ::2], to_uint8(steps[2].x_t[0]))  # step order
    np.testing.assert_array_equal(frames[-1][::2, ::2], to_uint8(steps[-1].x_prev[0]))  # the final image last
    params = json.loads((out / "params.json").read_text())
    assert params["sequence"] == "reverse" and params["sampler"] == "ddim"
    assert params["t"] == [750, 500, 250, 0] and params["steps"] == 4 and params["frames"] == 5
    assert params["seed"] == 2 and params["digit"] == 7 and params["guidance"] == 2.0 and params["eta"] == 0.0


def test_export_reverse_same_seed_same_frames(weights, tmp_path, capsys):
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert run(capsys, *reverse(weights, tmp_path / name, "--sampler", "ddpm", "--seed", seed))[0] == 0
    a, b, c = pngs(tmp_path / "a"), pngs(tmp_path / "b"), pngs(tmp_path / "c")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[-1], c[-1])


def test_export_reverse_panels_gif(weights, tmp_path, capsys):
    out = tmp_path / "run.gif"
    code, stdout, _ = run(capsys, *reverse(weights, out, "--panels", "--scale", "1", "--eta", "0.5"))
    assert code == 0 and "5 frames" in stdout
    with Image.open(out) as gif:
        assert gif.size == (3 * 28 + 2, 28)
        assert sum(1 for _ in ImageSequence.Iterator(gif)) >= 2  # identical frames may merge
    params = json.loads(out.with_suffix(".json").read_text())
    assert params["panels"] is True and params["eta"] == 0.5 and params["format"] == "gif"


@pytest.mark.parametrize("extra, words", [
    (["--sampler", "ddpm", "--eta", "0.5"], "--eta is a DDIM setting"),
    (["--guidance", "3"], "--guidance needs --digit"),
    (["--steps", "1001"], "--steps is at most 1000"),
    (["--scale", "65"], "--scale is at most 64"),
])
def test_export_reverse_errors_are_one_line_and_leave_nothing(weights, tmp_path, capsys, extra, words):
    out = tmp_path / "frames"
    code, stdout, stderr = run(capsys, *reverse(weights, out, *extra))
    assert code == 2 and stdout == ""
    assert stderr.startswith(PREFIX) and words in stderr and stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_export_reverse_with_missing_or_corrupt_weights(weights, tmp_path, capsys):
    code, _, stderr = run(capsys, *reverse(tmp_path / "nothing.safetensors", tmp_path / "out"))
    assert code == 2 and stderr.startswith(PREFIX) and stderr.count("\n") == 1
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(weights.read_bytes()[:64])
    (tmp_path / "broken.json").write_text(weights.with_suffix(".json").read_text())
    code, _, stderr = run(capsys, *reverse(broken, tmp_path / "out"))
    assert code == 2 and "truncated" in stderr
    assert not (tmp_path / "out").exists()


def test_train_ddpm_saves_weights_and_card(tmp_path, capsys):
    out = tmp_path / "trained"
    code, stdout, stderr = run(capsys, "train", "ddpm", "--steps", "2", "--batch-size", "4", "--data", "32",
                               "--no-eval", "--device", "cpu", "--name", "mini", "--out", str(out))
    assert code == 0, stderr
    assert stdout.startswith("Trained mini for 2 steps")
    meta = json.loads((out / "mini.json").read_text())
    assert meta["kind"] == "ddpm" and meta["card"]["steps"] == 2
    assert "cpu_seconds" in meta["card"] and (out / "mini.md").is_file()


def test_train_ddpm_refuses_a_file_as_folder(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, stderr = run(capsys, "train", "ddpm", "--out", str(target))
    assert code == 2 and "it is a file" in stderr


def test_eval_ddpm_prints_the_metrics_as_json(weights, capsys):
    code, stdout, stderr = run(capsys, "eval", "ddpm", "--weights", str(weights), "--steps", "2",
                               "--samples", "10", "--device", "cpu")
    assert code == 0, stderr
    report = json.loads(stdout)
    for key in ("confident_fraction", "real_confident_fraction", "class_entropy", "fd", "fd_real",
                "conditional_accuracy", "goals", "meets_goals"):
        assert key in report
    assert 0 <= report["confident_fraction"] <= 1 and report["samples"] == 10


def test_eval_ddpm_needs_ten_samples(weights, capsys):
    code, _, stderr = run(capsys, "eval", "ddpm", "--weights", str(weights), "--samples", "3")
    assert code == 2 and "at least 10" in stderr


def test_default_guidance_matches_the_backend():
    from explorer import cli
    from models.diffusion import DEFAULT_GUIDANCE

    assert cli._DEFAULT_GUIDANCE == DEFAULT_GUIDANCE


def test_parsing_the_diffusion_commands_imports_no_torch():
    code = ("import sys; from explorer.cli import build_parser; "
            "build_parser().parse_args(['export', 'reverse', '--out', 'x']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)
