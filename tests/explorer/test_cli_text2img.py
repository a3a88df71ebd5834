"""The command line's text-to-image commands: export reverse --model shapes, train clip|ldm, eval ldm|clip.

Every test uses a tiny untrained pipeline saved to a temporary folder (never the shipped weights).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.cli import main
from text2img_support import tiny_pipeline

PREFIX = "diffusion-explorer: error: "
PROMPT = "a red circle on a blue background"


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """The commands' torch on one thread: tiny models on a busy 2-core machine ran up to 9× slower on two."""
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setattr("models.device.set_torch_threads", lambda leave_for_gui=0: torch.set_num_threads(1) or 1)
    yield
    torch.set_num_threads(threads)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict[str, Path]:
    """The tiny pipeline's three models saved as weights files."""
    from models.clip import save_clip
    from models.image_vae import save_image_vae
    from models.ldm import save_ldm

    pipe = tiny_pipeline()
    folder = tmp_path_factory.mktemp("weights")
    return {"clip": save_clip(pipe.clip, folder / "clip-tiny", {"steps": 0}),
            "vae": save_image_vae(pipe.vae, folder / "vae-tiny", {"steps": 0}),
            "unet": save_ldm(pipe.unet, folder / "ldm-tiny", {"steps": 0})}


def weights_options(parts: dict[str, Path]) -> list[str]:
    return ["--weights", str(parts["unet"]), "--clip", str(parts["clip"]), "--vae", str(parts["vae"])]


def export(parts: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["export", "reverse", "--model", "shapes", *weights_options(parts), "--steps", "4", "--device", "cpu",
            "--out", str(out), *extra]


def pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


def loaded_pipeline(parts: dict[str, Path]):
    from models.ldm import load_pipeline

    return load_pipeline(parts["unet"], parts["clip"], parts["vae"])


def test_export_to_a_folder_ends_with_the_final_image(parts, tmp_path, capsys):
    from models.ldm import generate_frames

    out = tmp_path / "frames"
    code, stdout, stderr = run(capsys, *export(parts, out, "--prompt", PROMPT, "--seed", "3", "--scale", "2"))
    assert code == 0 and stderr == ""
    assert stdout.startswith(f"Wrote 5 PNG frames to {out}")
    frames = pngs(out)
    assert len(frames) == 5 and all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
    run_frames = list(generate_frames(loaded_pipeline(parts), PROMPT, guidance=5.0, num_steps=4, seed=3,
                                      attention=False))  # the maps' explicit softmax may move a value by 1
    np.testing.assert_array_equal(frames[-1][::2, ::2], run_frames[-1].final_image[0])  # the final image last
    np.testing.assert_array_equal(frames[0][::2, ::2], run_frames[0].image[0])  # step order
    np.testing.assert_array_equal(frames[2][::2, ::2], run_frames[2].image[0])
    params = json.loads((out / "params.json").read_text())
    assert params["model"] == "shapes" and params["prompt"] == PROMPT and params["guidance"] == 5.0
    assert params["words"] == PROMPT.split() and params["unknown_words"] == []
    assert params["t"] == [f.t for f in run_frames] and params["frames"] == 5 and params["seed"] == 3
    assert params["weights"]["clip"] == str(parts["clip"])


def test_same_seed_same_files(parts, tmp_path, capsys):
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert run(capsys, *export(parts, tmp_path / name, "--prompt", "a green star", "--seed", seed))[0] == 0
    a, b, c = (sorted((tmp_path / name).glob("frame_*.png")) for name in "abc")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert a[-1].read_bytes() != c[-1].read_bytes()


def test_unknown_words_warn_and_still_export(parts, tmp_path, capsys):
    out = tmp_path / "run.gif"
    code, stdout, stderr = run(capsys, *export(parts, out, "--prompt", "a red blorp", "--negative", "zzz"))
    assert code == 0 and out.is_file()
    lines = stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("diffusion-explorer: warning: ") for line in lines)
    assert "“blorp”" in lines[0] and "--prompt" in lines[0] and "“zzz”" in lines[1]
    with Image.open(out) as gif:
        assert gif.n_frames == 5
    assert json.loads(out.with_suffix(".json").read_text())["unknown_words"] == ["blorp"]


def test_panels_and_image_to_image(parts, tmp_path, capsys):
    from models.data import make_shapes

    scene = tmp_path / "scene.png"
    Image.fromarray(make_shapes(1, seed=4).images[0]).resize((64, 48)).save(scene)  # not square: cropped
    out = tmp_path / "i2i"
    code, _, stderr = run(capsys, *export(parts, out, "--prompt", "a star", "--init", str(scene), "--strength", "0.5",
                                          "--panels", "--scale", "3", "--steps", "6"))
    assert code == 0 and stderr == ""
    frames = pngs(out)
    assert len(frames) == 3 + 1  # round(6 · 0.5) steps, then the final image
    assert frames[0].shape == (96, 2 * 96 + 3, 3)  # z_t decoded | ẑ₀ decoded
    params = json.loads((out / "params.json").read_text())
    assert params["strength"] == 0.5 and params["init"] == str(scene) and len(params["t"]) == 3


@pytest.mark.parametrize("extra, words", [
    (["--guidance", "16"], "--guidance must be between 0 and 15"),
    (["--init", "NOT_AN_IMAGE", "--strength", "0.5"], "NOT_AN_IMAGE"),
    (["--init", "coffee", "--strength", "0"], "--strength must be more than 0"),
    (["--init", "coffee", "--strength", "1.5"], "--strength must be more than 0"),
    (["--strength", "0.5"], "--strength needs --init"),
    (["--digit", "3"], "--digit is for --model digits"),
])
def test_bad_input_is_one_line_and_writes_nothing(parts, tmp_path, capsys, extra, words):
    if extra[:2] == ["--init", "NOT_AN_IMAGE"]:
        bad = tmp_path / "broken.png"
        bad.write_text("not a picture")
        extra = ["--init", str(bad), *extra[2:]]
        words = "broken.png"
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, *export(parts, out, "--prompt", PROMPT, *extra))
    assert code == 2 and stdout == ""
    assert stderr.startswith(PREFIX) and stderr.count("\n") == 1 and words in stderr
    assert list(tmp_path.iterdir()) == ([tmp_path / "broken.png"] if "broken" in words else [])


def test_missing_weights_is_one_line_and_writes_nothing(parts, tmp_path, capsys):
    out = tmp_path / "out"
    argv = export(parts, out, "--prompt", PROMPT)
    argv[argv.index("--clip") + 1] = str(tmp_path / "missing.safetensors")
    code, stdout, stderr = run(capsys, *argv)
    assert code == 2 and stdout == "" and stderr.startswith(PREFIX) and stderr.count("\n") == 1
    assert "missing" in stderr and not out.exists()


def test_prompt_is_for_shapes_only(tmp_path, capsys):
    code, _, stderr = run(capsys, "export", "reverse", "--prompt", "a star", "--out", str(tmp_path / "x"))
    assert code == 2 and "--prompt is for --model shapes" in stderr and not (tmp_path / "x").exists()


def test_train_clip_writes_weights_that_load(tmp_path, capsys):
    from models.clip import load_clip

    code, stdout, stderr = run(capsys, "train", "clip", "--steps", "3", "--batch", "16", "--data", "64", "--no-eval",
                               "--device", "cpu", "--out", str(tmp_path))
    assert code == 0, stderr
    assert stdout.startswith("Trained clip-shapes for 3 steps")
    model, meta = load_clip(tmp_path / "clip-shapes.safetensors")
    assert meta["card"]["steps"] == 3 and model.embed_text(["a red circle"]).shape == (1, 64)


def test_train_ldm_vae_then_unet(parts, tmp_path, capsys):
    from models.image_vae import load_image_vae
    from models.ldm import generate, load_ldm, load_pipeline

    code, stdout, stderr = run(capsys, "train", "ldm", "--part", "vae", "--steps", "3", "--batch-size", "8",
                               "--data", "32", "--no-eval", "--device", "cpu", "--out", str(tmp_path), "--name", "v")
    assert code == 0, stderr
    assert stdout.startswith("Trained v for 3 steps")
    vae, meta = load_image_vae(tmp_path / "v.safetensors")
    assert meta["card"]["steps"] == 3 and vae.config.scaling_factor > 0

    code, stdout, stderr = run(capsys, "train", "ldm", "--steps", "3", "--batch-size", "8", "--data", "32",
                               "--no-eval", "--device", "cpu", "--clip", str(parts["clip"]),
                               "--vae", str(tmp_path / "v.safetensors"), "--out", str(tmp_path))
    assert code == 0, stderr
    assert stdout.startswith("Trained ldm-shapes for 3 steps")
    unet, meta = load_ldm(tmp_path / "ldm-shapes.safetensors")
    assert meta["card"]["steps"] == 3 and unet.config.unet.context_dim == 16  # the tiny CLIP's width
    pipe = load_pipeline(tmp_path / "ldm-shapes.safetensors", parts["clip"], tmp_path / "v.safetensors")
    assert generate(pipe, ["a red circle"], num_steps=2).shape == (1, 32, 32, 3)

    # --init goes on from those weights: the new card adds the earlier steps
    code, stdout, stderr = run(capsys, "train", "ldm", "--steps", "2", "--warmup", "1", "--batch-size", "8",
                               "--data", "32", "--no-eval", "--device", "cpu", "--clip", str(parts["clip"]),
                               "--vae", str(tmp_path / "v.safetensors"), "--init", str(tmp_path / "ldm-shapes.safetensors"),
                               "--out", str(tmp_path / "more"))
    assert code == 0, stderr
    _, meta = load_ldm(tmp_path / "more" / "ldm-shapes.safetensors")
    assert meta["card"]["steps"] == 2 and meta["card"]["total_steps"] == 5 and "went on from" in meta["card"]["init"]

    # ... and a run that goes on from that one counts the whole chain
    code, _, stderr = run(capsys, "train", "ldm", "--steps", "1", "--warmup", "1", "--batch-size", "8",
                          "--data", "32", "--no-eval", "--device", "cpu", "--clip", str(parts["clip"]),
                          "--vae", str(tmp_path / "v.safetensors"),
                          "--init", str(tmp_path / "more" / "ldm-shapes.safetensors"), "--out", str(tmp_path / "again"))
    assert code == 0, stderr
    _, again = load_ldm(tmp_path / "again" / "ldm-shapes.safetensors")
    assert again["card"]["total_steps"] == 6
    assert again["card"]["total_cpu_seconds"] > meta["card"]["total_cpu_seconds"]


def test_train_ldm_errors(parts, tmp_path, capsys):
    code, _, stderr = run(capsys, "train", "ldm", "--part", "vae", "--clip", str(parts["clip"]), "--out", str(tmp_path))
    assert code == 2 and "--part vae takes none" in stderr
    code, _, stderr = run(capsys, "train", "ldm", "--clip", str(tmp_path / "nothing.safetensors"),
                          "--out", str(tmp_path / "o"))
    assert code == 2 and stderr.startswith(PREFIX) and stderr.count("\n") == 1 and not (tmp_path / "o").exists()
    code, _, stderr = run(capsys, "train", "clip", "--batch", "64", "--data", "32", "--out", str(tmp_path / "o"))
    assert code == 2 and "larger than the data" in stderr


def test_eval_clip_and_ldm_print_json(parts, capsys):
    code, stdout, stderr = run(capsys, "eval", "clip", "--weights", str(parts["clip"]), "--images", "20",
                               "--device", "cpu")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert 0 <= report["accuracy"] <= 1 and {"seen", "held_out", "goal", "meets_goal"} <= set(report)

    code, stdout, stderr = run(capsys, "eval", "ldm", *weights_options(parts), "--samples", "4", "--steps", "2",
                               "--zero-shot-images", "20", "--device", "cpu")
    assert code == 0, stderr
    report = json.loads(stdout)
    for key in ("prompt_fidelity", "real_fidelity", "clip_zero_shot_accuracy"):
        for suffix in ("", "_seen", "_held_out"):
            assert 0 <= report[key + suffix] <= 1
    assert report["goals"] == {"prompt_fidelity": 0.9, "clip_zero_shot_accuracy": 0.95}
    assert report["prompt_fidelity_by_shape"] and all(0 <= v <= 1 for v in report["prompt_fidelity_by_shape"].values())
    code, _, stderr = run(capsys, "eval", "ldm", *weights_options(parts), "--guidance", "20")
    assert code == 2 and "--guidance must be between 0 and 15" in stderr
