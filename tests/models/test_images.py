"""models.images: built-in images and loading any image file as 8-bit RGB (Qt-free)."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import images
from models.images import ImageLoadError, LoadedImage, load_image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# ----------------------------------------------------------------------------- helpers


def quadrants(width: int = 24, height: int = 16) -> np.ndarray:
    """Four flat colours (red, green / blue, white): exact in every lossless format."""
    out = np.zeros((height, width, 3), np.uint8)
    out[: height // 2, : width // 2] = RED
    out[: height // 2, width // 2 :] = GREEN
    out[height // 2 :, : width // 2] = BLUE
    out[height // 2 :, width // 2 :] = WHITE
    return out


def noisy_rgb(size: int = 96) -> Image.Image:
    """Incompressible pixels, so that cutting the file in half loses image data."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def encoded(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR (correct CRC) claiming width×height, with no pixel data."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data)
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_rgb(image: LoadedImage) -> None:
    pixels = image.pixels
    assert pixels.dtype == np.uint8
    assert pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.flags.c_contiguous
    assert not pixels.flags.writeable


def load_error(path: Path | str) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert "\n" not in message and message.count("Cannot open") == 1
    return message


# ------------------------------------------------------------------------ bad files


def _truncated_png(tmp_path: Path) -> Path:
    data = encoded(noisy_rgb(), "PNG")
    return write(tmp_path, "half.png", data[: len(data) // 2])


def _truncated_jpeg(tmp_path: Path) -> Path:
    data = encoded(noisy_rgb(), "JPEG", quality=95)
    return write(tmp_path, "half.jpg", data[: len(data) // 2])


def _png_cut_in_header(tmp_path: Path) -> Path:
    return write(tmp_path, "stub.png", encoded(noisy_rgb(), "PNG")[:30])


def _corrupt_png(tmp_path: Path) -> Path:
    data = bytearray(encoded(noisy_rgb(), "PNG"))
    start = data.index(b"IDAT") + 100
    data[start : start + 50] = bytes(50)  # wrong bytes: the chunk CRC no longer matches
    return write(tmp_path, "corrupt.png", bytes(data))


def _empty(tmp_path: Path) -> Path:
    return write(tmp_path, "empty.png", b"")


def _text(tmp_path: Path) -> Path:
    return write(tmp_path, "notes.txt", b"This is a shopping list, not a picture.\n" * 4)


def _text_named_png(tmp_path: Path) -> Path:
    return write(tmp_path, "fake.png", b"<html><body>404 not found</body></html>")


def _folder(tmp_path: Path) -> Path:
    path = tmp_path / "holiday.png"
    path.mkdir()
    return path


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "nowhere.png"


def _huge_pillow_error(tmp_path: Path) -> Path:
    return write(tmp_path, "huge.png", png_header_only(30000, 30000))


def _huge_own_limit(tmp_path: Path) -> Path:
    return write(tmp_path, "wide.png", png_header_only(9000, 8000))  # 72 MP: below Pillow's limits


BAD_FILES = [
    (_truncated_png, "half.png", ["truncated"]),
    (_truncated_jpeg, "half.jpg", ["truncated"]),
    (_png_cut_in_header, "stub.png", ["looks like a PNG file", "truncated"]),
    (_corrupt_png, "corrupt.png", ["damaged"]),
    (_empty, "empty.png", ["empty"]),
    (_text, "notes.txt", ["not an image"]),
    (_text_named_png, "fake.png", ["not an image"]),
    (_folder, "holiday.png", ["folder"]),
    (_missing, "nowhere.png", ["does not exist"]),
    (_huge_pillow_error, "huge.png", ["900 megapixels", "decompression bomb"]),
    (_huge_own_limit, "wide.png", ["9000×8000", "64-megapixel limit", "decompression bomb"]),
]


@pytest.mark.parametrize(
    ("make", "name", "words"), BAD_FILES, ids=[make.__name__[1:] for make, _, _ in BAD_FILES]
)
def test_bad_files_are_refused_with_a_message_naming_file_and_reason(
    tmp_path: Path, make, name: str, words: list[str]
) -> None:
    message = load_error(make(tmp_path))
    assert message.startswith(f"Cannot open '{name}': ")
    for word in words:
        assert word in message


def test_header_between_pillow_warning_and_error_limits_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "big.png", png_header_only(10000, 10000))  # 100 MP
    with pytest.warns(Image.DecompressionBombWarning):
        message = load_error(path)
    assert "decompression bomb" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning raised as an exception is refused too
        assert "decompression bomb" in load_error(path)


def test_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "secret.png", encoded(noisy_rgb(8), "PNG"))

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(images, "open", deny, raising=False)
    message = load_error(path)
    assert message.startswith("Cannot open 'secret.png': ")
    assert "permission denied" in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_file_without_read_permission_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.png", encoded(noisy_rgb(8), "PNG"))
    path.chmod(0)
    try:
        assert "permission denied" in load_error(path)
    finally:
        path.chmod(0o600)


def test_not_a_path_is_refused() -> None:
    with pytest.raises(ImageLoadError, match="not a file path"):
        load_image(12345)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "words"),
    [(RuntimeError("decoder exploded"), "decoder exploded"), (MemoryError(), "not enough memory")],
)
def test_unexpected_failures_become_image_load_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException, words: str
) -> None:
    path = write(tmp_path, "odd.png", encoded(noisy_rgb(8), "PNG"))

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(images.Image, "open", fail)
    message = load_error(path)
    assert message.startswith("Cannot open 'odd.png': ") and words in message


def test_image_load_error_is_a_value_error() -> None:
    assert issubclass(ImageLoadError, ValueError)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_no_file_handles_are_left_open(tmp_path: Path) -> None:
    paths = []
    for make, _, _ in BAD_FILES:
        folder = tmp_path / make.__name__
        folder.mkdir()
        paths.append(make(folder))
    good = write(tmp_path, "good.gif", encoded(Image.fromarray(quadrants()), "GIF"))
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        load_image(good)
        for path in paths:
            with pytest.raises(ImageLoadError):
                load_image(path)
    assert len(os.listdir("/proc/self/fd")) == before


# ----------------------------------------------------------------------- formats


FORMATS = [
    ("quadrants.png", {}, 0),
    ("quadrants.jpg", {"quality": 95, "subsampling": 0}, 12),
    ("quadrants.jpeg", {"quality": 95, "subsampling": 0}, 12),
    ("quadrants.gif", {}, 0),
    ("quadrants.bmp", {}, 0),
    ("quadrants.tif", {}, 0),
    ("quadrants.tiff", {"compression": "tiff_lzw"}, 0),
    ("quadrants.webp", {"lossless": True}, 0),
]


@pytest.mark.parametrize(("name", "options", "tolerance"), FORMATS, ids=[f[0] for f in FORMATS])
def test_every_format_round_trips(tmp_path: Path, name: str, options: dict, tolerance: int) -> None:
    expected = quadrants()
    path = tmp_path / name
    Image.fromarray(expected).save(path, **options)
    image = load_image(path)
    assert_rgb(image)
    assert image.name == name and image.path == path
    assert image.pixels.shape == expected.shape
    difference = np.abs(image.pixels.astype(int) - expected.astype(int))
    assert difference.max() <= tolerance
    assert image.notes == ()


# ------------------------------------------------------------------------- modes


def test_16_bit_is_stretched_over_the_full_range(tmp_path: Path) -> None:
    values = np.tile(np.arange(0, 4001, 8, dtype=np.uint16), (4, 1))  # 0..4000
    path = tmp_path / "depth.png"
    Image.fromarray(values).save(path)
    image = load_image(path)
    assert_rgb(image)
    assert image.original_mode == "I;16"
    grey = image.pixels[..., 0]
    assert np.array_equal(grey, image.pixels[..., 1]) and np.array_equal(grey, image.pixels[..., 2])
    assert grey.min() == 0 and grey.max() == 255
    assert abs(int(grey[0, 250]) - 127.5) <= 0.5  # 2000 is half way
    assert np.all(np.diff(grey[0].astype(int)) >= 0)
    assert image.notes == ("16-bit values 0–4000 scaled to 0–255",)


def test_big_endian_16_bit_tiff(tmp_path: Path) -> None:
    values = np.array([[100, 200, 300]], dtype=">u2")
    path = tmp_path / "be.tif"
    Image.frombytes("I;16B", (3, 1), values.tobytes()).save(path)
    image = load_image(path)
    assert image.original_mode == "I;16B"
    assert image.pixels[0, :, 0].tolist() == [0, 128, 255]
    assert image.notes == ("16-bit values 100–300 scaled to 0–255",)


def test_32_bit_integer_is_stretched(tmp_path: Path) -> None:
    values = np.array([[-1000, 34500, 70000]], dtype=np.int32)
    path = tmp_path / "counts.tif"
    Image.fromarray(values).save(path)
    image = load_image(path)
    assert image.original_mode == "I"
    assert image.pixels[0, :, 1].tolist() == [0, 128, 255]
    assert image.notes == ("32-bit integer values -1000–70000 scaled to 0–255",)


def test_float_is_stretched_and_nan_shown_black(tmp_path: Path) -> None:
    values = np.array([[-0.5, 0.75, 2.0, np.nan]], dtype=np.float32)
    path = tmp_path / "depth.tif"
    Image.fromarray(values).save(path)
    image = load_image(path)
    assert image.original_mode == "F"
    assert image.pixels[0, :, 2].tolist() == [0, 128, 255, 0]
    assert image.notes == (
        "floating-point values -0.5–2 scaled to 0–255;"
        " missing (not-a-number) values shown as black",
    )


def test_float_without_any_number_is_black(tmp_path: Path) -> None:
    path = tmp_path / "void.tif"
    Image.fromarray(np.full((2, 3), np.nan, np.float32)).save(path)
    image = load_image(path)
    assert image.pixels.shape == (2, 3, 3) and not image.pixels.any()
    assert image.notes == ("floating-point values are all missing (not a number): shown as black",)


@pytest.mark.parametrize(("value", "shown"), [(4000, 255), (100, 100), (0, 0)])
def test_constant_16_bit_keeps_its_clipped_value(tmp_path: Path, value: int, shown: int) -> None:
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((4, 4), value, np.uint16)).save(path)
    image = load_image(path)
    assert np.all(image.pixels == shown)
    assert image.notes == (f"16-bit values are all {value}: shown as {shown}",)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.array([[[255, 0, 0, 128], [0, 0, 255, 255], [0, 0, 0, 0]]], np.uint8)
    path = tmp_path / "glass.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = load_image(path)
    assert image.original_mode == "RGBA"
    half_red, blue, white = image.pixels[0].astype(int)
    assert half_red[0] == 255 and abs(half_red[1] - 127) <= 1 and abs(half_red[2] - 127) <= 1
    assert blue.tolist() == list(BLUE) and white.tolist() == list(WHITE)
    assert image.notes == ("transparency composited on a white background",)


def test_opaque_rgba_gets_no_transparency_note(tmp_path: Path) -> None:
    rgba = np.dstack([quadrants(), np.full((16, 24), 255, np.uint8)])
    path = tmp_path / "opaque.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = load_image(path)
    assert np.array_equal(image.pixels, quadrants()) and image.notes == ()


def test_la_is_composited_on_white(tmp_path: Path) -> None:
    path = tmp_path / "ghost.png"
    Image.fromarray(np.array([[[0, 0], [100, 255]]], np.uint8), "LA").save(path)
    image = load_image(path)
    assert image.original_mode == "LA"
    assert image.pixels[0].tolist() == [[255, 255, 255], [100, 100, 100]]
    assert "transparency composited on a white background" in image.notes


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparency(tmp_path: Path, suffix: str) -> None:
    palette_image = Image.new("P", (3, 1))
    palette_image.putpalette([0, 255, 0, 255, 0, 0, 0, 0, 255] + [0] * (3 * 253))
    palette_image.putdata([0, 1, 2])  # transparent green, red, blue
    path = tmp_path / f"sprite{suffix}"
    palette_image.save(path, transparency=0)
    image = load_image(path)
    assert image.original_mode == "P"
    assert image.pixels[0].tolist() == [list(WHITE), list(RED), list(BLUE)]
    assert image.notes == ("transparency composited on a white background",)


def test_palette_without_transparency(tmp_path: Path) -> None:
    path = tmp_path / "few.png"
    Image.fromarray(quadrants()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    image = load_image(path)
    assert image.original_mode == "P"
    assert np.array_equal(image.pixels, quadrants()) and image.notes == ()


@pytest.mark.parametrize(("suffix", "tolerance"), [(".tif", 0), (".jpg", 6)])
def test_cmyk_becomes_rgb(tmp_path: Path, suffix: str, tolerance: int) -> None:
    cmyk = np.zeros((8, 16, 4), np.uint8)
    cmyk[:, :8, 0] = 255  # left half: pure cyan ink; right half: no ink (white)
    path = tmp_path / f"print{suffix}"
    Image.fromarray(cmyk, "CMYK").save(path)
    image = load_image(path)
    assert image.original_mode == "CMYK"
    assert np.abs(image.pixels[4, 2].astype(int) - (0, 255, 255)).max() <= tolerance
    assert np.abs(image.pixels[4, 13].astype(int) - WHITE).max() <= tolerance
    assert image.notes == ("CMYK colours converted to RGB",)


def test_one_bit_and_greyscale(tmp_path: Path) -> None:
    bits = tmp_path / "bits.png"
    Image.fromarray(np.array([[True, False]])).convert("1").save(bits)
    grey = tmp_path / "grey.png"
    Image.fromarray(np.array([[77, 200]], np.uint8)).save(grey)
    one, l_mode = load_image(bits), load_image(grey)
    assert one.original_mode == "1" and one.pixels[0].tolist() == [[255] * 3, [0] * 3]
    assert l_mode.original_mode == "L" and l_mode.pixels[0].tolist() == [[77] * 3, [200] * 3]
    assert one.notes == () and l_mode.notes == ()


# -------------------------------------------------------------------- orientation


def _corner_marked(width: int = 40, height: int = 20) -> Image.Image:
    """Blue with a red 10×10 block at the stored top-left corner."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = BLUE
    pixels[:10, :10] = RED
    return Image.fromarray(pixels)


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize(("suffix", "tolerance"), [(".jpg", 40), (".png", 0)])
def test_exif_orientation_6_turns_the_image_upright(
    tmp_path: Path, suffix: str, tolerance: int
) -> None:
    path = tmp_path / f"phone{suffix}"
    _corner_marked().save(path, exif=_exif(6), **({"quality": 95} if suffix == ".jpg" else {}))
    image = load_image(path)
    assert image.pixels.shape == (40, 20, 3)  # width and height swapped
    # Orientation 6 means "rotate 90° clockwise to view": the stored top-left goes top-right.
    top_right, top_left = image.pixels[3, 17].astype(int), image.pixels[3, 2].astype(int)
    assert np.abs(top_right - RED).max() <= tolerance
    assert np.abs(top_left - BLUE).max() <= tolerance
    assert image.notes == ("turned upright using its EXIF orientation tag",)


def test_exif_orientation_1_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "straight.png"
    _corner_marked().save(path, exif=_exif(1))
    image = load_image(path)
    assert image.pixels.shape == (20, 40, 3) and image.notes == ()


# ------------------------------------------------------------------- animations


@pytest.mark.parametrize(
    ("name", "options"),
    [("anim.gif", {}), ("anim.webp", {"lossless": True}), ("anim.png", {})],
)
def test_animation_shows_the_first_frame(tmp_path: Path, name: str, options: dict) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, GREEN, BLUE)]
    path = tmp_path / name
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)
    image = load_image(path)
    assert np.all(image.pixels == RED)
    fmt = {"gif": "GIF", "webp": "WEBP", "png": "PNG"}[name.rsplit(".", 1)[1]]
    assert image.notes == (f"animated {fmt}: showing the first of 3 frames",)


def test_multi_page_tiff_shows_the_first_page(tmp_path: Path) -> None:
    pages = [Image.new("RGB", (8, 8), colour) for colour in (GREEN, RED)]
    path = tmp_path / "scan.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    image = load_image(path)
    assert np.all(image.pixels == GREEN)
    assert image.notes == ("multi-page TIFF: showing the first of 2 pages",)


# ----------------------------------------------------------------------- size limit


def test_large_png_is_downscaled_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "panorama.png"
    Image.new("RGB", (4100, 10), (10, 20, 30)).save(path)
    image = load_image(path)
    assert image.pixels.shape == (5, 2048, 3)
    assert np.all(image.pixels == (10, 20, 30))
    assert image.notes == ("downscaled from 4100×10 to 2048×5",)


def test_large_jpeg_is_downscaled_after_turning_upright(tmp_path: Path) -> None:
    path = tmp_path / "tall.jpg"
    Image.new("RGB", (5000, 40), (200, 100, 50)).save(path, quality=95, exif=_exif(6))
    image = load_image(path)
    assert image.pixels.shape == (2048, 16, 3)
    assert np.abs(image.pixels[1000, 8].astype(int) - (200, 100, 50)).max() <= 6
    assert image.notes == (
        "turned upright using its EXIF orientation tag",
        "downscaled from 40×5000 to 16×2048",
    )


def test_size_limit_follows_max_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_SIDE", 12)
    path = tmp_path / "small.bmp"
    Image.fromarray(quadrants()).save(path)
    image = load_image(path)
    assert image.pixels.shape == (8, 12, 3)
    assert image.notes == ("downscaled from 24×16 to 12×8",)


# ------------------------------------------------------------------------- built-ins


def test_builtin_names_list_photos_then_patterns() -> None:
    assert images.builtin_image_names() == [
        "coffee", "astronaut", "chelsea", "rocket", "color-bars", "gradients", "checkerboard",
    ]
    assert images.DEFAULT_IMAGE == "coffee"


@pytest.mark.parametrize("name", images.builtin_image_names())
def test_every_builtin_loads(name: str) -> None:
    image = images.load_builtin(name)
    assert_rgb(image)
    assert image.name == name and image.path is None and image.notes == ()
    assert 256 <= max(image.pixels.shape[:2]) <= 512
    assert image.pixels.std() > 20  # a real picture, not a flat fill
    assert images.load_builtin(name) is image  # cached


def test_builtin_photo_sizes() -> None:
    shapes = {name: images.load_builtin(name).pixels.shape for name in ("coffee", "astronaut")}
    assert shapes == {"coffee": (341, 512, 3), "astronaut": (512, 512, 3)}


def test_builtin_asset_files_are_small() -> None:
    folder = Path(images.__file__).resolve().parent.parent / "assets" / "images"
    for name in ("coffee", "astronaut", "chelsea", "rocket"):
        assert (folder / f"{name}.jpg").stat().st_size < 400_000
    credits = (folder.parent / "CREDITS.md").read_text(encoding="utf-8")
    for name in ("coffee", "astronaut", "chelsea", "rocket"):
        assert f"{name}.jpg" in credits


def test_gradients_ramp_from_0_to_255() -> None:
    pixels = images.load_builtin("gradients").pixels
    assert pixels.shape == (512, 512, 3)
    for row, colour in ((0, RED), (200, GREEN), (300, BLUE), (500, WHITE)):
        assert pixels[row, 0].tolist() == [0, 0, 0]
        assert pixels[row, 511].tolist() == list(colour)
    grey = pixels[400:, :, 0]
    assert np.array_equal(np.unique(grey), np.arange(256))
    assert np.all(np.diff(grey[0].astype(int)) >= 0)


def test_color_bars_hold_75_percent_bars() -> None:
    pixels = images.load_builtin("color-bars").pixels
    assert pixels.shape == (384, 512, 3)
    bars = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0),
            (191, 0, 191), (191, 0, 0), (0, 0, 191)]
    centres = [round((i + 0.5) * 512 / 7) for i in range(7)]
    assert [tuple(pixels[100, x].tolist()) for x in centres] == bars
    assert pixels[340, 130].tolist() == [255, 255, 255]  # 100 % white below


def test_checkerboard_alternates_black_and_white() -> None:
    pixels = images.load_builtin("checkerboard").pixels
    assert pixels.shape == (512, 512, 3)
    assert pixels[0, 0].tolist() == [255] * 3 and pixels[0, 32].tolist() == [0] * 3
    assert pixels[32, 32].tolist() == [255] * 3 and pixels[511, 511].tolist() == [255] * 3
    assert set(np.unique(pixels).tolist()) == {0, 255}
    assert (pixels[..., 0] == 255).mean() == 0.5


def test_unknown_builtin_is_refused() -> None:
    with pytest.raises(ImageLoadError, match="no built-in image.*coffee"):
        images.load_builtin("mona-lisa")


def test_open_image_takes_a_builtin_name_or_a_path(tmp_path: Path) -> None:
    assert images.open_image("chelsea") is images.load_builtin("chelsea")
    path = tmp_path / "mine.png"
    Image.fromarray(quadrants()).save(path)
    assert np.array_equal(images.open_image(path).pixels, quadrants())
    assert images.open_image(str(path)).name == "mine.png"
    with pytest.raises(ImageLoadError, match="does not exist"):
        images.open_image(tmp_path / "coffee")


def test_file_filter_lists_every_format() -> None:
    assert images.IMAGE_FILE_FILTER == (
        "Images (*.png *.jpg *.jpeg *.gif *.bmp *.tif *.tiff *.webp);;All files (*)"
    )


def test_importing_images_loads_neither_torch_nor_qt() -> None:
    code = (
        "import sys, models.images; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'pyqtgraph')]; "
        "assert not bad, bad"
    )
    root = Path(images.__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
