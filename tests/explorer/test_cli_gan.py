"""The command line's GAN commands: export gan (2d, images), train gan, eval gan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.cli import main

PREFIX = "diffusion-explorer: error: "


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    from models.gan import DCGAN, DCGANConfig, save_dcgan

    return save_dcgan(DCGAN(DCGANConfig(latent_dim=8, width=4), seed=0),
                      tmp_path_factory.mktemp("weights") / "tiny", {"steps": 0})


def test_export_gan_2d_frames_and_params(tmp_path, capsys):
    out = tmp_path / "plane"
    code, stdout, stderr = run(capsys, "export", "gan", "--mode", "2d", "--steps", "5", "--every", "2",
                               "--seed", "3", "--size", "96", "--out", str(out))
    assert code == 0 and stderr == ""
    assert stdout.startswith(f"Wrote 4 PNG frames to {out}")  # steps 0, 2, 4 and 5
    frames = pngs(out)
    assert len(frames) == 4 and frames[0].shape == (96, 96, 3)
    params = json.loads((out / "params.json").read_text())
    assert params["mode"] == "2d" and params["frame_steps"] == [0, 2, 4, 5] and params["seed"] == 3
    assert params["distribution"] == "ring"
    assert not np.array_equal(frames[0], frames[-1])  # training moved something
    from explorer.widgets.gan_plane import render_frame
    from models.gan2d import PLANE, Gan2DHyper, Gan2DTrainer

    trainer = Gan2DTrainer(Gan2DHyper(), distribution="ring", seed=3)
    for _ in range(5):
        trainer.train_step()
    snapshot = trainer.snapshot()
    # The picture the app's 2-D tab exports for the same state.
    np.testing.assert_array_equal(frames[-1], render_frame(PLANE, snapshot.real, snapshot.fake, snapshot.heat, size=96))

    again = tmp_path / "again"
    assert run(capsys, "export", "gan", "--mode", "2d", "--steps", "5", "--every", "2",
               "--seed", "3", "--size", "96", "--out", str(again))[0] == 0
    assert all(np.array_equal(a, b) for a, b in zip(frames, pngs(again)))  # same seed, same frames


def test_export_gan_images_same_seed_same_frames(tmp_path, capsys):
    args = ["export", "gan", "--mode", "images", "--steps", "2", "--every", "1", "--samples", "4", "--seed", "1"]
    out = tmp_path / "digits"
    code, stdout, _ = run(capsys, *args, "--out", str(out))
    assert code == 0 and "Wrote 3 PNG frames" in stdout
    frames = pngs(out)
    assert len(frames) == 3 and frames[0].ndim == 2  # a grey grid of 4 samples, 2× enlarged
    assert frames[0].shape == (2 + 58, 2 + 4 * 58)
    assert not np.array_equal(frames[0], frames[1])
    params = json.loads((out / "params.json").read_text())
    assert params["mode"] == "images" and params["frame_steps"] == [0, 1, 2] and params["samples"] == 4
    again = tmp_path / "again"
    assert run(capsys, *args, "--out", str(again))[0] == 0
    assert all(np.array_equal(a, b) for a, b in zip(frames, pngs(again)))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mode", "3d", "--steps", "4"], "invalid choice: '3d'"),
        (["--mode", "2d"], "required: --steps"),
        (["--mode", "2d", "--steps", "0"], "--steps"),
        (["--mode", "2d", "--steps", "4", "--every", "9"], "--every (9) is larger than --steps (4)"),
        (["--mode", "2d", "--steps", "4", "--seed", "-1"], "--seed must be at least 0"),
        (["--mode", "images", "--steps", "4", "--samples", "999"], "--samples is at most 256"),
    ],
)
def test_export_gan_bad_arguments(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "export", "gan", *argv, "--out", str(out))
    assert code == 2 and stdout == ""
    assert stderr.startswith(PREFIX) and message in stderr and stderr.count("\n") == 1
    assert not out.exists()


def test_export_gan_single_png_needs_sheet(tmp_path, capsys):
    code, _, stderr = run(capsys, "export", "gan", "--mode", "2d", "--steps", "2", "--out", str(tmp_path / "a.png"))
    assert code == 2 and "--sheet" in stderr and stderr.count("\n") == 1


def test_eval_gan_prints_the_metrics(tiny_weights, capsys):
    code, stdout, stderr = run(capsys, "eval", "gan", "--weights", str(tiny_weights), "--samples", "12",
                               "--device", "cpu")
    assert code == 0, stderr
    report = json.loads(stdout)
    for key in ("confident_fraction", "real_confident_fraction", "class_entropy", "fd", "fd_real"):
        assert isinstance(report[key], float)
    assert set(report["goals"]) == set(report["meets_goals"]) == {"confident_fraction", "class_entropy", "fd"}
    assert report["samples"] == 12 and report["weights"] == str(tiny_weights)
    assert report["meets_goals"]["fd"] is False  # an untrained generator is far from digits


def test_eval_gan_bad_weights_and_samples(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    code, _, stderr = run(capsys, "eval", "gan", "--weights", str(bad))
    assert code == 2 and stderr.startswith(PREFIX) and "config file" in stderr and stderr.count("\n") == 1
    code, _, stderr = run(capsys, "eval", "gan", "--samples", "3")
    assert code == 2 and "--samples must be at least 10" in stderr


def test_train_gan_writes_weights_and_card(tmp_path, capsys):
    from models.gan import load_dcgan

    code, stdout, stderr = run(capsys, "train", "gan", "--steps", "2", "--data", "64", "--batch-size", "8",
                               "--no-eval", "--device", "cpu", "--name", "mini", "--out", str(tmp_path))
    assert code == 0, stderr
    assert "Trained mini for 2 steps" in stdout
    model, meta = load_dcgan(tmp_path / "mini.safetensors")
    assert meta["card"]["steps"] == 2 and meta["card"]["cpu_seconds"] >= 0
    assert "batch 8" in meta["card"]["optimizer"] and (tmp_path / "mini.md").read_text().startswith("# mini")
    code, _, stderr = run(capsys, "train", "gan", "--batch-size", "100", "--data", "50", "--out", str(tmp_path))
    assert code == 2 and "--batch-size" in stderr
