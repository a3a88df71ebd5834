"""The latent-space commands: train ae|vae, export latent-walk, eval vae."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

import explorer.cli
from explorer.cli import main
from models.autoencoder import (
    FRESH_SEED, Autoencoder, AutoencoderConfig, load_autoencoder, reconstruct_digits, save_autoencoder,
)
from models.data import make_digits

REPO = Path(__file__).resolve().parents[2]
PREFIX = "diffusion-explorer: error: "
QUICK_TRAIN = ["--data", "256", "--batch-size", "32", "--no-eval", "--device", "cpu"]


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """The commands set torch to use every core; put back what the tests had."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def python_env() -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def corrupt(tmp_path) -> Path:
    """A weights file cut short, beside an intact config."""
    path = tmp_path / "broken.safetensors"
    save_autoencoder(Autoencoder(AutoencoderConfig(width=4, hidden=8)), path, {})
    path.write_bytes(path.read_bytes()[:200])
    return path


# ---------------------------------------------------------------------------
# train


def test_train_vae_writes_loadable_weights_and_a_card(tmp_path, capsys):
    out = tmp_path / "models"
    code, stdout, stderr = run(capsys, "train", "vae", "--latent", "3", "--beta", "0.5", "--steps", "5",
                               "--out", str(out), *QUICK_TRAIN)
    assert code == 0 and stderr == ""  # no progress bar when stderr is not a terminal
    weights = out / "vae-3d.safetensors"
    assert stdout.startswith("Trained vae-3d for 5 steps (") and stdout.endswith(f"; weights in {weights}\n")
    assert "loss " in stdout and "recon " in stdout and "kl " in stdout
    assert sorted(p.name for p in out.iterdir()) == ["vae-3d.json", "vae-3d.md", "vae-3d.safetensors"]
    model, meta = load_autoencoder(weights)
    assert (model.config.latent_dim, model.config.variational, model.config.beta) == (3, True, 0.5)
    assert meta["card"]["steps"] == 5 and meta["card"]["cpu_seconds"] >= 0
    assert "metrics" not in meta["card"]  # --no-eval


def test_train_ae_with_a_name_and_a_progress_bar(tmp_path, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code = main(["train", "ae", "--steps", "5", "--name", "mine", "--out", str(tmp_path), *QUICK_TRAIN])
    assert code == 0 and capsys.readouterr().out.startswith("Trained mine for 5 steps")
    assert terminal.getvalue().startswith("\r[") and terminal.getvalue().endswith("] 5/5\n")
    model, _ = load_autoencoder(tmp_path / "mine.safetensors")
    assert not model.config.variational and model.config.latent_dim == 2


def test_ctrl_c_stops_training_and_saves_what_was_trained(tmp_path, capsys, monkeypatch):
    def interrupt(self, count):
        raise KeyboardInterrupt

    monkeypatch.setattr(explorer.cli._Progress, "update", interrupt)
    code, stdout, stderr = run(capsys, "train", "vae", "--steps", "100000", "--out", str(tmp_path), *QUICK_TRAIN)
    assert code == 130 and stderr == ""
    assert stdout.startswith("Stopped at step ") and "of 100000" in stdout
    _, meta = load_autoencoder(tmp_path / "vae-2d.safetensors")
    steps = meta["card"]["steps"]
    assert 0 < steps < 100000 and meta["card"]["interrupted"].endswith(f"step {steps} of 100000")


@pytest.mark.parametrize(("argv", "words"), [
    (["train"], "the following arguments are required: MODEL"),
    (["train", "gan2"], "invalid choice: 'gan2'"),
    (["train", "vae"], "the following arguments are required: --out"),
    (["train", "ae", "--beta", "2", "--out", "x"], "unrecognized arguments: --beta"),
    (["train", "vae", "--beta", "-1", "--out", "x"], "argument --beta: expected a number of at least 0"),
    (["train", "vae", "--latent", "0", "--out", "x"], "argument --latent: expected a number of at least 1"),
    (["train", "vae", "--device", "tpu", "--out", "x"], "argument --device: invalid choice"),
])
def test_train_usage_errors_are_one_line(capsys, argv, words):
    code, stdout, stderr = run(capsys, *argv)
    assert code == 2 and stdout == ""
    assert stderr.startswith(PREFIX) and stderr.count("\n") == 1 and words in stderr


def test_train_into_a_file_fails_before_training(tmp_path, capsys):
    (tmp_path / "a-file").write_text("keep me")
    code, stdout, stderr = run(capsys, "train", "vae", "--out", str(tmp_path / "a-file"), *QUICK_TRAIN)
    assert code == 2 and stdout == ""
    assert stderr == f"{PREFIX}cannot write into '{tmp_path / 'a-file'}': it is a file, not a folder\n"
    assert os.listdir(tmp_path) == ["a-file"]


# ---------------------------------------------------------------------------
# export latent-walk


def walk(out: Path, *extra: str) -> list[str]:
    return ["export", "latent-walk", "--out", str(out), *extra]


def test_latent_walk_to_a_folder(tmp_path, capsys):
    out = tmp_path / "walk"
    code, stdout, stderr = run(capsys, *walk(out, "--frames", "5", "--scale", "2", "--seed", "3"))
    assert code == 0 and stderr == ""
    assert stdout == f"Wrote 5 PNG frames to {out}; parameters in {out / 'params.json'}\n"
    frames = [np.asarray(Image.open(p)) for p in sorted(out.glob("frame_*.png"))]
    assert len(frames) == 5 and frames[0].shape == (56, 56)

    params = json.loads((out / "params.json").read_text())
    digits = params.pop("digits")
    assert params == {
        "sequence": "latent-walk", "weights": "vae-16d", "latent_dim": 16, "variational": True,
        "seed": 3, "spherical": False, "interpolation": "lerp", "scale": 2,
        "frames": 5, "fps": 10.0, "format": "folder", "size": [56, 56],
    }
    images, labels = make_digits(200, seed=FRESH_SEED + 3)
    first, second = digits["indices"]
    assert digits["labels"] == [labels[first], labels[second]] and labels[first] != labels[second]
    model, _ = load_autoencoder("vae-16d")
    ends = reconstruct_digits(model, images[[first, second]]).repeat(2, axis=1).repeat(2, axis=2)
    assert np.abs(frames[0].astype(int) - ends[0]).max() <= 1
    assert np.abs(frames[-1].astype(int) - ends[1]).max() <= 1


def test_latent_walk_gif_between_chosen_digits(tmp_path, capsys):
    out = tmp_path / "walk.gif"
    code, stdout, _ = run(capsys, *walk(out, "--frames", "7", "--digits", "3", "8", "--spherical",
                                       "--weights", "vae-2d"))
    assert code == 0 and stdout.startswith(f"Wrote 7 frames to {out} (GIF, 10 fps)")
    with Image.open(out) as gif:
        frames = [np.asarray(frame.convert("L")) for frame in ImageSequence.Iterator(gif)]
    assert len(frames) == 7 and frames[0].shape == (112, 112)  # --scale 4 by default
    block = frames[0][:4, :4]
    assert (block == block[0, 0]).all()  # nearest-neighbour enlargement
    params = json.loads(out.with_suffix(".json").read_text())
    assert params["digits"]["labels"] == [3, 8] and params["spherical"] and params["interpolation"] == "slerp"
    assert params["weights"] == "vae-2d" and params["latent_dim"] == 2


def test_latent_walk_same_seed_same_frames(tmp_path, capsys):
    for name in ("a", "b"):
        assert run(capsys, *walk(tmp_path / name, "--frames", "3", "--seed", "11"))[0] == 0
    for a, b in zip(sorted((tmp_path / "a").glob("*.png")), sorted((tmp_path / "b").glob("*.png"))):
        assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(("extra", "words"), [
    (["--frames", "1"], "a walk needs at least 2 frames, got 1"),
    (["--digits", "3", "12"], "argument --digits: invalid choice: 12"),
    (["--scale", "0"], "argument --scale: expected a number of at least 1"),
    (["--weights", "nowhere.safetensors"], "Cannot load 'nowhere.safetensors'"),
])
def test_latent_walk_errors_leave_nothing(tmp_path, capsys, extra, words):
    code, stdout, stderr = run(capsys, *walk(tmp_path / "out.gif", *extra))
    assert code == 2 and stdout == "" and words in stderr
    assert stderr.startswith(PREFIX) and stderr.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_corrupt_weights_one_line_exit_2_nothing_written(tmp_path, capsys, corrupt):
    before = sorted(os.listdir(tmp_path))
    for argv in (walk(tmp_path / "out.gif", "--weights", str(corrupt)),
                 walk(tmp_path / "frames", "--weights", str(corrupt)),
                 ["eval", "vae", "--weights", str(corrupt), "--samples", "10"],
                 ["eval", "vae", "--map-weights", str(corrupt), "--samples", "10"]):
        code, stdout, stderr = run(capsys, *argv)
        assert code == 2 and stdout == ""
        assert stderr.startswith(PREFIX) and stderr.count("\n") == 1
        assert "Cannot load 'broken.safetensors': the file is truncated" in stderr
        assert sorted(os.listdir(tmp_path)) == before


# ---------------------------------------------------------------------------
# eval vae


def test_eval_vae_prints_the_metrics_as_json(capsys):
    code, stdout, stderr = run(capsys, "eval", "vae", "--samples", "100", "--knn-fit", "300")
    assert code == 0
    report = json.loads(stdout)
    assert {"recon_accuracy", "recon_mse", "latent_knn_accuracy", "goals", "meets_goals", "counts"} <= set(report)
    assert report["goals"] == {"recon_accuracy": 0.95, "latent_knn_accuracy": 0.80}
    assert report["counts"] == {"samples": 100, "knn_fit": 300, "k": 5}
    assert 0 < report["recon_mse"] < 0.02 and 0.3 < report["latent_knn_accuracy"] <= 1  # chance: 0.1
    assert report["recon_accuracy"] is None or 0.8 < report["recon_accuracy"] <= 1
    assert report["weights"] == "vae-16d" and report["map_weights"] == "vae-2d"


@pytest.mark.slow
def test_eval_vae_with_the_default_counts(capsys):
    code, stdout, _ = run(capsys, "eval", "vae")
    report = json.loads(stdout)
    assert code == 0 and report["counts"] == {"samples": 2000, "knn_fit": 5000, "k": 5}
    assert report["meets_goals"]["recon_accuracy"]
    # The 2-D VAE's map misses its goal (≈ 0.55 against 0.80): see tests/models/test_autoencoder.py.
    assert report["latent_knn_accuracy"] > 0.5


def test_model_commands_import_torch_only_when_they_run():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "explorer", "train", "vae", "--help"],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and "--beta B" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert not {m for m in imported if m.split(".")[0] in ("torch", "PySide6")}
