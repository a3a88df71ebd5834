"""Export round trips: write frames in every format, read them back."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from explorer.export import (
    VIDEO_EXTRA_MESSAGE,
    ExportError,
    contact_sheet,
    export_format,
    export_frames,
    iter_export,
    params_path,
)

try:
    import imageio.v2 as imageio
    import imageio_ffmpeg  # noqa: F401
except ImportError:  # the video extra is optional
    imageio = None

needs_video = pytest.mark.skipif(imageio is None, reason="needs the video extra")

FILE_FORMATS = ["a.gif", "a.webp", "a.apng", "a.mp4"]


def make_frames(count: int = 5, shape: tuple[int, ...] = (24, 32, 3)) -> list[np.ndarray]:
    """Distinct smooth frames (animated formats merge identical neighbours)."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    frames = []
    for i in range(count):
        base = (x * 6 + y * 3 + i * 40) % 256
        if len(shape) == 3:
            frame = np.stack([base, (base + 85) % 256, 255 - base], axis=2)
        else:
            frame = base
        frames.append(frame.astype(np.uint8))
    return frames


def read_animation(path: Path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)]


def as_rgb(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 3 else np.repeat(frame[:, :, None], 3, axis=2)


def listing(folder: Path) -> set[str]:
    return set(os.listdir(folder))


@pytest.mark.parametrize("shape", [(24, 32, 3), (24, 32)])
def test_folder_of_pngs_round_trip(tmp_path, shape):
    frames = make_frames(4, shape)
    out = export_frames(frames, tmp_path / "frames", {"seed": 1})
    assert out == tmp_path / "frames"
    assert listing(tmp_path) == {"frames"}
    names = sorted(listing(out))
    assert names == ["frame_0000.png", "frame_0001.png", "frame_0002.png", "frame_0003.png",
                     "params.json"]
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"frame_{i:04d}.png")), frame)


def test_existing_folder_gets_new_frames_and_loses_stale_ones(tmp_path):
    out = tmp_path / "frames"
    export_frames(make_frames(6), out, {})
    (out / "notes.txt").write_text("mine")
    frames = make_frames(3, (24, 32))
    export_frames(frames, out, {})
    assert listing(out) == {"frame_0000.png", "frame_0001.png", "frame_0002.png",
                            "params.json", "notes.txt"}
    np.testing.assert_array_equal(np.asarray(Image.open(out / "frame_0002.png")), frames[2])
    assert json.loads((out / "params.json").read_text())["frames"] == 3


@pytest.mark.parametrize("name", ["a.webp", "a.apng"])
@pytest.mark.parametrize("shape", [(24, 32, 3), (24, 32)])
def test_lossless_animations_round_trip(tmp_path, name, shape):
    frames = make_frames(5, shape)
    export_frames(frames, tmp_path / name, {}, fps=20)
    back = read_animation(tmp_path / name)
    assert len(back) == 5
    for got, want in zip(back, frames):
        np.testing.assert_array_equal(got, as_rgb(want))
    with Image.open(tmp_path / name) as im:
        assert im.info.get("loop") == 0
        if name.endswith(".apng"):  # Pillow reads no duration back from WebP
            assert im.info["duration"] == pytest.approx(50, abs=1)


@pytest.mark.parametrize("shape", [(24, 32, 3), (24, 32)])
def test_gif_round_trip(tmp_path, shape):
    frames = make_frames(5, shape)
    export_frames(frames, tmp_path / "a.gif", {}, fps=10)
    back = read_animation(tmp_path / "a.gif")
    assert len(back) == 5 and back[0].shape == (24, 32, 3)
    for got, want in zip(back, frames):
        # 256 colours per frame: close, exact for grey.
        assert np.abs(got.astype(int) - as_rgb(want)).mean() < 4
    with Image.open(tmp_path / "a.gif") as im:
        assert im.info["duration"] == 100 and im.info["loop"] == 0


def test_gif_keeps_a_palette_per_frame(tmp_path):
    # Two frames with entirely different colours: one shared palette would ruin one.
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = np.arange(256).reshape(16, 16)
    blue = red[..., ::-1].copy()
    export_frames([red, blue], tmp_path / "a.gif", {})
    back = read_animation(tmp_path / "a.gif")
    for got, want in zip(back, [red, blue]):
        assert np.abs(got.astype(int) - want).max() <= 2


@needs_video
@pytest.mark.parametrize("shape", [(24, 32, 3), (23, 31, 3), (24, 32)])
def test_mp4_round_trip(tmp_path, shape):
    frames = make_frames(6, shape)
    export_frames(frames, tmp_path / "a.mp4", {}, fps=12)
    reader = imageio.get_reader(tmp_path / "a.mp4", format="FFMPEG")
    try:
        back = [frame for frame in reader]
        assert reader.get_meta_data()["fps"] == pytest.approx(12)
    finally:
        reader.close()
    assert len(back) == 6
    # Odd sizes are padded by one row/column to be even (yuv420p needs it).
    assert back[0].shape == (shape[0] + shape[0] % 2, shape[1] + shape[1] % 2, 3)
    first = back[0][: shape[0], : shape[1]]
    assert np.abs(first.astype(int) - as_rgb(frames[0])).mean() < 8


def test_contact_sheet(tmp_path):
    frames = make_frames(5, (24, 32, 3))
    out = export_frames(frames, tmp_path / "sheet.png", {"seed": 3}, sheet=True)
    sheet = np.asarray(Image.open(out))
    gap = 2
    # 5 frames → 3 columns, 2 rows.
    assert sheet.shape == (2 * 24 + gap, 3 * 32 + 2 * gap, 3)
    np.testing.assert_array_equal(sheet[:24, :32], frames[0])
    np.testing.assert_array_equal(sheet[24 + gap :, 32 + gap : 64 + gap], frames[4])
    assert np.all(sheet[24 : 24 + gap] == 255)  # the gap is white
    assert np.all(sheet[24 + gap :, 2 * (32 + gap) :] == 255)  # the empty sixth cell
    assert json.loads((tmp_path / "sheet.json").read_text())["format"] == "sheet"
    assert listing(tmp_path) == {"sheet.png", "sheet.json"}


def test_contact_sheet_grey_and_square():
    frames = make_frames(9, (10, 10))
    sheet = contact_sheet(frames)
    assert sheet.shape == (3 * 10 + 2 * 2, 3 * 10 + 2 * 2)


def test_params_json_beside_the_output(tmp_path):
    params = {"image": "coffee", "seed": np.int64(7), "t": np.array([0, 500, 1000]),
              "schedule": "linear"}
    export_frames(make_frames(3), tmp_path / "a.gif", params, fps=8)
    text = (tmp_path / "a.json").read_text()
    record = json.loads(text)
    assert record == {"image": "coffee", "seed": 7, "t": [0, 500, 1000], "schedule": "linear",
                      "format": "gif", "frames": 3, "fps": 8, "size": [32, 24]}
    assert text == json.dumps(record, indent=2, sort_keys=True) + "\n"


def test_params_path():
    assert params_path("out/a.gif") == Path("out/a.json")
    assert params_path("out/a.MP4") == Path("out/a.json")
    assert params_path("out/frames") == Path("out/frames/params.json")
    assert params_path("s.png", sheet=True) == Path("s.json")


def test_progress_counts_frames_and_ends_after_writing(tmp_path):
    steps = []
    for count in iter_export(make_frames(4), tmp_path / "a.apng", {}):
        steps.append((count, (tmp_path / "a.apng").exists()))
    assert steps == [(1, False), (2, False), (3, False), (4, True)]


def test_frames_may_come_from_a_generator(tmp_path):
    export_frames(iter(make_frames(3)), tmp_path / "f", {})
    assert len(list((tmp_path / "f").glob("frame_*.png"))) == 3


def test_overwrites_an_existing_file(tmp_path):
    (tmp_path / "a.webp").write_bytes(b"old")
    export_frames(make_frames(2), tmp_path / "a.webp", {})
    assert len(read_animation(tmp_path / "a.webp")) == 2


@pytest.mark.parametrize("name", ["frames", *FILE_FORMATS, "sheet.png"])
def test_closing_early_leaves_nothing(tmp_path, name):
    if name.endswith(".mp4") and imageio is None:
        pytest.skip("needs the video extra")
    export = iter_export(make_frames(5), tmp_path / name, {}, sheet=name == "sheet.png")
    assert next(export) == 1
    assert next(export) == 2
    export.close()
    assert listing(tmp_path) == set()


def test_closing_early_keeps_an_existing_folder_as_it_was(tmp_path):
    out = tmp_path / "frames"
    export_frames(make_frames(2), out, {})
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    export = iter_export(make_frames(5, (24, 32)), out, {})
    next(export)
    export.close()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("name", ["frames", "a.gif", "a.webp", "sheet.png"])
def test_mixed_sizes_are_refused_and_leave_nothing(tmp_path, name):
    frames = make_frames(3) + make_frames(1, (20, 32, 3))
    with pytest.raises(ExportError, match="Frame 4 is 32×20 RGB but frame 1 is 32×24 RGB"):
        export_frames(frames, tmp_path / name, {}, sheet=name == "sheet.png")
    assert listing(tmp_path) == set()


def test_an_error_in_the_frame_source_leaves_nothing(tmp_path):
    def frames():
        yield from make_frames(2)
        raise ValueError("model diverged")

    with pytest.raises(ValueError, match="model diverged"):
        export_frames(frames(), tmp_path / "a.gif", {})
    assert listing(tmp_path) == set()


@pytest.mark.parametrize(
    ("frames", "words"),
    [
        ([], "no frames"),
        ([np.zeros((4, 4, 3), np.float32)], "float32 values; frames must be uint8"),
        ([np.zeros((4, 4, 4), np.uint8)], "H×W×3"),
        ([make_frames(1)[0], make_frames(1, (24, 32))[0]], "32×24 grey but frame 1 is 32×24 RGB"),
    ],
)
def test_bad_frames(tmp_path, frames, words):
    with pytest.raises(ExportError, match=words):
        export_frames(frames, tmp_path / "a.gif", {})
    assert listing(tmp_path) == set()


def test_unwritable_destinations(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (a_file / "a.gif", "is not a folder"),
        (a_file / "frames", "is not a folder"),
        (tmp_path / "missing" / "a.gif", "the folder .* does not exist"),
        (a_file, "it is a file, not a folder"),  # no suffix: a folder is expected
    ]
    for out, words in cases:
        with pytest.raises(ExportError, match=words) as info:
            export_frames(make_frames(2), out, {})
        assert str(out) in str(info.value) and "\n" not in str(info.value)
    assert listing(tmp_path) == {"file"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /sys")
def test_permission_denied_is_an_export_error():
    # Tests may run as root, where chmod does not stop writes; sysfs refuses everyone.
    with pytest.raises(ExportError, match=r"Cannot write '/sys/a\.gif': Permission denied"):
        export_frames(make_frames(2), "/sys/a.gif", {})
    assert not Path("/sys/a.gif").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="Permission denied"):
            export_frames(make_frames(2), locked / "a.gif", {})
    finally:
        locked.chmod(0o700)


def test_output_has_ordinary_permissions(tmp_path):
    export_frames(make_frames(2), tmp_path / "a.gif", {})
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert (tmp_path / "a.gif").stat().st_mode == plain.stat().st_mode


def test_mp4_without_the_video_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import raises ImportError
    with pytest.raises(ExportError) as info:
        export_frames(make_frames(2), tmp_path / "a.mp4", {})
    assert str(info.value) == VIDEO_EXTRA_MESSAGE
    assert listing(tmp_path) == set()


@pytest.mark.parametrize(
    ("out", "sheet", "words"),
    [
        ("a.png", False, "single image: ask for a contact sheet"),
        ("a.jpg", False, "unknown format '.jpg'"),
        ("a.gif", True, "contact sheet is written as a .png"),
    ],
)
def test_unknown_formats(tmp_path, out, sheet, words):
    with pytest.raises(ExportError, match=words):
        export_frames(make_frames(2), tmp_path / out, {}, sheet=sheet)
    assert listing(tmp_path) == set()


def test_export_format_names(tmp_path):
    assert export_format(tmp_path) == "folder"
    assert export_format("x/new-folder") == "folder"
    assert [export_format(n) for n in FILE_FORMATS] == ["gif", "webp", "apng", "mp4"]
    assert export_format("s.PNG", sheet=True) == "sheet"


@pytest.mark.parametrize("fps", [0, -1, float("nan")])
def test_bad_fps(tmp_path, fps):
    with pytest.raises(ExportError, match="positive number"):
        export_frames(make_frames(2), tmp_path / "a.gif", {}, fps=fps)
