"""The command line: exit codes, one-line errors, files written, nothing left on failure."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

import explorer
from explorer.cli import main
from explorer.export import VIDEO_EXTRA_MESSAGE
from models.images import load_builtin

REPO = Path(__file__).resolve().parents[2]
PREFIX = "diffusion-explorer: error: "


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def forward(out: Path, *extra: str, image: str = "checkerboard", frames: str = "4") -> list[str]:
    return ["export", "forward", "--image", image, "--frames", frames, "--out", str(out), *extra]


def python_env() -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def test_export_forward_to_a_folder(tmp_path, capsys):
    out = tmp_path / "frames"
    code, stdout, stderr = run(capsys, *forward(out, "--seed", "3"))
    assert code == 0 and stderr == ""
    assert stdout == f"Wrote 4 PNG frames to {out}; parameters in {out / 'params.json'}\n"
    pngs = sorted(out.glob("frame_*.png"))
    assert len(pngs) == 4
    clean = load_builtin("checkerboard").pixels
    np.testing.assert_array_equal(np.asarray(Image.open(pngs[0])), clean)
    last = np.asarray(Image.open(pngs[-1]))
    assert np.corrcoef(last.ravel(), clean.ravel())[0, 1] < 0.1  # t = T: mostly noise
    params = json.loads((out / "params.json").read_text())
    assert params == {
        "sequence": "forward", "image": "checkerboard", "image_path": None,
        "schedule": "linear", "timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02,
        "seed": 3, "t": [0, 333, 667, 1000], "frames": 4, "fps": 10.0, "format": "folder",
        "size": [512, 512],
    }


def test_export_forward_same_seed_same_frames(tmp_path, capsys):
    for name in ("a", "b"):
        assert run(capsys, *forward(tmp_path / name, "--seed", "9"))[0] == 0
    for a, b in zip(sorted((tmp_path / "a").glob("*.png")), sorted((tmp_path / "b").glob("*.png"))):
        assert a.read_bytes() == b.read_bytes()


def test_export_forward_gif_from_an_image_file(tmp_path, capsys):
    source = tmp_path / "photo.png"
    y, x = np.mgrid[0:30, 0:40]
    pixels = np.stack([x * 6, y * 8, (x + y) * 3], axis=2).astype(np.uint8)  # 1200 colours
    Image.fromarray(pixels).save(source)
    out = tmp_path / "run.gif"
    argv = forward(out, "--schedule", "cosine", "--timesteps", "50", "--fps", "5",
                   image=str(source), frames="6")
    code, stdout, _ = run(capsys, *argv)
    assert code == 0
    json_path = tmp_path / "run.json"
    assert stdout == f"Wrote 6 frames to {out} (GIF, 5 fps); parameters in {json_path}\n"
    with Image.open(out) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert len(frames) == 6 and frames[0].shape == (30, 40, 3)
    assert np.abs(frames[0].astype(int) - pixels).mean() < 8  # 256-colour palette
    params = json.loads((tmp_path / "run.json").read_text())
    assert params["image"] == "photo.png" and params["image_path"] == str(source)
    assert params["schedule"] == "cosine" and params["t"] == [0, 10, 20, 30, 40, 50]


def test_export_forward_contact_sheet(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    code, stdout, _ = run(capsys, *forward(out, "--sheet", frames="4"))
    assert code == 0 and stdout.startswith("Wrote a contact sheet of 4 frames")
    sheet = np.asarray(Image.open(out))
    gap = 8  # 512 / 64
    assert sheet.shape == (2 * 512 + gap, 2 * 512 + gap, 3)
    np.testing.assert_array_equal(sheet[:512, :512], load_builtin("checkerboard").pixels)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"--image": "no-such-picture"}, "Cannot open 'no-such-picture': the file does not exist"),
        ({"--frames": "1"}, "the number of frames must be at least 2, got 1"),
        ({"--frames": "0"}, "argument --frames: expected a number of at least 1"),
        ({"--frames": "12", "--timesteps": "10"}, "12 frames need at least 11 timesteps"),
        ({"--beta-start": "0.5", "--beta-end": "0.1"}, "beta_start must be smaller than beta_end"),
        ({"--beta-end": "1.5"}, "argument --beta-end: expected a number between 0 and 1"),
        ({"--schedule": "quadratic"}, "argument --schedule: invalid choice: 'quadratic'"),
        ({"--fps": "0"}, "argument --fps: expected a positive number"),
        ({"--seed": "x"}, "argument --seed: invalid int value"),
        ({"--out": "OUT.jpg"}, "unknown format '.jpg'"),
        ({"--out": "OUT.png"}, "is a single image: add --sheet"),
        ({"--out": "OUT.gif", "--sheet": None}, "contact sheet is written as a .png"),
        ({"--out": "missing/OUT.gif"}, "the folder '.*missing' does not exist"),
        ({"--out": "a-file/OUT.gif"}, "'.*a-file' is not a folder"),
        ({"--out": "a-file"}, "it is a file, not a folder"),
    ],
)
def test_export_errors_are_one_line_and_leave_nothing(tmp_path, capsys, options, words):
    (tmp_path / "a-file").write_text("keep me")
    options = {"--image": "checkerboard", "--frames": "3", "--out": "OUT.gif", **options}
    options["--out"] = str(tmp_path / options["--out"])
    argv = ["export", "forward"]
    for flag, value in options.items():
        argv += [flag] if value is None else [flag, value]
    code, stdout, stderr = run(capsys, *argv)
    assert code == 2 and stdout == ""
    assert stderr.startswith(PREFIX) and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert re.search(words, stderr), stderr
    assert set(os.listdir(tmp_path)) == {"a-file"}
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_a_damaged_image_file(tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    code, _, stderr = run(capsys, *forward(tmp_path / "out.gif", image=str(bad)))
    assert code == 2
    # The reason's wording belongs to models.images; here: named file, one line.
    assert stderr.startswith(f"{PREFIX}Cannot open 'broken.png': ") and stderr.count("\n") == 1
    assert set(os.listdir(tmp_path)) == {"broken.png"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /sys")
def test_permission_denied(capsys):
    code, _, stderr = run(capsys, *forward(Path("/sys/out.gif")))
    assert code == 2
    assert stderr == f"{PREFIX}Cannot write '/sys/out.gif': Permission denied\n"


def test_mp4_without_the_video_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio", None)
    code, _, stderr = run(capsys, *forward(tmp_path / "out.mp4"))
    assert code == 2 and stderr == f"{PREFIX}{VIDEO_EXTRA_MESSAGE}\n"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["exprot"], "argument COMMAND: invalid choice: 'exprot'"),
        (["export"], "the following arguments are required: SEQUENCE"),
        (["export", "sideways"], "invalid choice: 'sideways' (choose from 'forward', 'latent-walk', 'reverse', 'gan')"),
        (["export", "forward"], "the following arguments are required: --image, --frames, --out"),
        (["export", "forward", "--image", "coffee", "--frames", "3", "--out", "x", "--bogus"],
         "unrecognized arguments: --bogus"),
        (["screenshot"], "the following arguments are required: CHAPTER, --out"),
        (["screenshot", "pixels", "--out", "x.png", "--size", "big"], "expected WIDTHxHEIGHT"),
    ],
)
def test_usage_errors_are_one_line(capsys, argv, words):
    code, stdout, stderr = run(capsys, *argv)
    assert code == 2 and stdout == ""
    assert stderr.startswith(PREFIX) and stderr.count("\n") == 1
    assert words in stderr and "--help')" in stderr


def test_progress_bar_only_on_a_terminal(tmp_path, capsys, monkeypatch):
    assert run(capsys, *forward(tmp_path / "a"))[2] == ""  # not a terminal: quiet

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(forward(tmp_path / "b")) == 0
    text = terminal.getvalue()
    assert text.startswith("\r[") and text.endswith("] 4/4\n")
    assert text.count("\r") == 4


def test_version_and_help(capsys):
    code, stdout, _ = run(capsys, "--version")
    assert code == 0 and stdout == f"diffusion-explorer {explorer.__version__}\n"
    code, stdout, _ = run(capsys, "export", "forward", "--help")
    assert code == 0 and "--timesteps T" in stdout


def test_no_command_opens_the_application(tmp_path, monkeypatch):
    import explorer.app

    calls = []
    monkeypatch.setattr(explorer.app, "run_app", lambda argv: calls.append(argv) or 0)
    assert main([]) == 0
    image = tmp_path / "cat.png"
    Image.new("RGB", (4, 4)).save(image)
    assert main([str(image)]) == 0
    assert calls == [[], [str(image)]]


def test_unknown_chapter_lists_the_chapters(tmp_path, capsys):
    code, _, stderr = run(capsys, "screenshot", "nope", "--out", str(tmp_path / "x.png"))
    assert code == 2
    from explorer.chapters import chapter_names

    assert stderr == f"{PREFIX}unknown chapter 'nope' (choose from: {', '.join(chapter_names())})\n"
    assert chapter_names()[:2] == ["pixels", "noise"]
    assert os.listdir(tmp_path) == []


def test_screenshot_of_a_tab_the_chapter_does_not_have(tmp_path, capsys):
    code, _, stderr = run(capsys, "screenshot", "pixels", "--tab", "reverse", "--out", str(tmp_path / "x.png"))
    assert code == 2
    assert stderr == f"{PREFIX}chapter 'pixels' has no tab 'reverse' (tabs: it has none)\n"
    assert os.listdir(tmp_path) == []


def test_screenshot_of_a_tab(tmp_path):
    shots = {}
    for tab in (None, "interp"):
        out = tmp_path / f"latent-{tab}.png"
        result = subprocess.run(
            [sys.executable, "-m", "explorer", "screenshot", "latent", "--out", str(out)]
            + (["--tab", tab] if tab else []),
            cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=180,
        )
        assert result.returncode == 0, result.stderr
        with Image.open(out) as shot:
            shots[tab] = np.asarray(shot.convert("RGB"))
    assert shots[None].shape == shots["interp"].shape == (860, 1400, 3)
    assert (shots[None] != shots["interp"]).any(axis=2).mean() > 0.1  # another tab, not the first one


@pytest.mark.parametrize(
    ("out", "words"),
    [("x.jpg", "a screenshot is a PNG file"), ("missing/x.png", "does not exist")],
)
def test_screenshot_bad_destination(tmp_path, capsys, out, words):
    code, _, stderr = run(capsys, "screenshot", "pixels", "--out", str(tmp_path / out))
    assert code == 2 and words in stderr and stderr.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_python_dash_m_export_without_torch_or_qt(tmp_path):
    out = tmp_path / "run.apng"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "explorer", *forward(out, frames="3")],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Wrote 3 frames to {out} (APNG")
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert not {m for m in imported if m.split(".")[0] in ("torch", "PySide6", "pyqtgraph")}
    with Image.open(out) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert len(frames) == 3
    np.testing.assert_array_equal(frames[0], load_builtin("checkerboard").pixels)


def test_python_dash_m_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "explorer", *forward(tmp_path / "x.gif", image="nothing.png")],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"{PREFIX}Cannot open 'nothing.png': the file does not exist\n"
    assert os.listdir(tmp_path) == []


def test_screenshot_renders_a_png_of_the_requested_size(tmp_path):
    out = tmp_path / "pixels.png"
    result = subprocess.run(
        [sys.executable, "-m", "explorer", "screenshot", "pixels", "--out", str(out),
         "--size", "1000x700", "--image", "color-bars"],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == f"Wrote {out} (1000×700, chapter pixels)\n"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (1000, 700)
    assert os.listdir(tmp_path) == ["pixels.png"]
