"""Load images as H×W×3 uint8 RGB arrays: the built-in ones and any file Pillow reads.

Every Pillow mode becomes 8-bit RGB: 16-bit, 32-bit integer and float data are
stretched over 0–255 using their actual minimum and maximum, transparency is
composited on white, EXIF orientation is applied, and very large images are
downscaled. Each such change is reported as a plain sentence in
``LoadedImage.notes``. Anything that cannot be shown raises ``ImageLoadError``
with one readable line naming the file and the reason; no other exception
escapes ``load_image``.

Only numpy and Pillow are used (no torch, no Qt).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from models.assets import asset_path

__all__ = [
    "DEFAULT_IMAGE",
    "IMAGE_FILE_FILTER",
    "MAX_PIXELS",
    "MAX_SIDE",
    "ImageLoadError",
    "LoadedImage",
    "builtin_image_names",
    "load_builtin",
    "load_image",
    "open_image",
]

MAX_SIDE: int = 2048
"""Images with a longer side are downscaled to this (with a note)."""

MAX_PIXELS: int = 64_000_000
"""Images whose header claims more pixels are refused before decoding."""

DEFAULT_IMAGE: str = "coffee"

IMAGE_FILE_FILTER: str = (
    "Images (*.png *.jpg *.jpeg *.gif *.bmp *.tif *.tiff *.webp);;All files (*)"
)

_PHOTOS: dict[str, str] = {
    "coffee": "coffee.jpg",
    "astronaut": "astronaut.jpg",
    "chelsea": "chelsea.jpg",
    "rocket": "rocket.jpg",
}
_PATTERNS: tuple[str, ...] = ("color-bars", "gradients", "checkerboard")

# First bytes of the formats we read, to tell "damaged PNG" from "not an image".
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


class ImageLoadError(ValueError):
    """An image could not be loaded; ``str(err)`` is one line naming the file and the reason."""


@dataclass(frozen=True)
class LoadedImage:
    """An image ready to show.

    Attributes
    ----------
    pixels : np.ndarray
        H×W×3 uint8, C-contiguous, read-only.
    name : str
        File name (``"cat.png"``) or built-in name (``"coffee"``).
    path : Path or None
        The file it came from; None for built-ins.
    notes : tuple of str
        Plain sentences about what loading changed, for the status bar.
    original_mode : str
        Pillow mode of the source (``"RGB"``, ``"I;16"``, ``"P"``, ...).
    """

    pixels: np.ndarray
    name: str
    path: Path | None
    notes: tuple[str, ...] = ()
    original_mode: str = "RGB"


# --------------------------------------------------------------------------- files


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Load an image file as 8-bit RGB.

    Parameters
    ----------
    path : str or os.PathLike
        PNG, JPEG, GIF (first frame), BMP, TIFF, WebP or any other format Pillow reads.

    Returns
    -------
    LoadedImage

    Raises
    ------
    ImageLoadError
        The only exception raised: missing, unreadable, empty, truncated, corrupt
        or non-image files, folders, and decompression bombs.
    """
    try:
        file = Path(os.fspath(path))
    except TypeError:
        raise ImageLoadError(f"Cannot open {path!r}: it is not a file path") from None
    name = file.name or str(file)
    try:
        return _load_file(file, name)
    except ImageLoadError:
        raise
    except MemoryError:
        raise _error(name, "there is not enough memory to decode it") from None
    # The contract is "ImageLoadError only": any other failure inside Pillow's
    # many decoders becomes a readable message rather than a traceback.
    except Exception as exc:  # noqa: BLE001
        raise _error(name, f"it could not be read as an image ({_detail(exc)})") from exc


def _load_file(file: Path, name: str) -> LoadedImage:
    if file.is_dir():
        raise _error(name, "it is a folder, not an image file")
    try:
        handle = open(file, "rb")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        raise _error(name, "the file does not exist") from None
    except PermissionError:
        raise _error(name, "permission denied: the file cannot be read") from None
    except IsADirectoryError:
        raise _error(name, "it is a folder, not an image file") from None
    except OSError as exc:
        raise _error(name, f"the file cannot be read ({_detail(exc)})") from None
    with handle:
        head = handle.read(16)
        if not head:
            raise _error(name, "the file is empty")
        handle.seek(0)
        try:
            with Image.open(handle) as im:
                rgb, notes, mode = _decode(im, name)
        except ImageLoadError:  # a ValueError itself: keep it from the handlers below
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _error(name, _bomb_reason(str(exc))) from None
        except UnidentifiedImageError:
            kind = _signature(head)
            if kind is None:
                reason = "it is not an image file (or not a format that can be read)"
            else:
                reason = (
                    f"it looks like a {kind} file but is truncated, damaged"
                    " or of a kind that cannot be read"
                )
            raise _error(name, reason) from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as exc:
            raise _error(name, _damage_reason(exc)) from None
    return LoadedImage(_frozen(rgb), name, file, tuple(notes), mode)


def _decode(im: Image.Image, name: str) -> tuple[np.ndarray, list[str], str]:
    """Decode the first frame of an open image to RGB; return (pixels, notes, mode)."""
    width, height = im.size
    if width * height > MAX_PIXELS:
        claim = f"{width}×{height} pixels ({width * height / 1e6:,.0f} megapixels)"
        raise _error(name, _bomb_reason(claim))
    mode = im.mode
    notes: list[str] = []
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        im.seek(0)
        if im.format == "TIFF":
            notes.append(f"multi-page TIFF: showing the first of {frames} pages")
        else:
            notes.append(f"animated {im.format or 'image'}: showing the first of {frames} frames")

    target = _fit(width, height)
    if target != (width, height) and im.format == "JPEG":
        im.draft(None, target)  # decode at 1/2, 1/4 or 1/8 scale: much cheaper
    im.load()

    orientation = _orientation(im)
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        im = ImageOps.exif_transpose(im)
        notes.append("turned upright using its EXIF orientation tag")
        if orientation >= 5:  # 5–8 turn by a quarter: width and height swap
            width, height = height, width

    rgb, more = _to_rgb(im)
    notes += more
    new_size = _fit(width, height)
    if rgb.size != new_size:
        rgb = rgb.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if new_size != (width, height):
        notes.append(
            f"downscaled from {width}×{height} to {new_size[0]}×{new_size[1]}"
        )
    return np.asarray(rgb, dtype=np.uint8), notes, mode


def _to_rgb(im: Image.Image) -> tuple[Image.Image, list[str]]:
    """Convert any Pillow mode to RGB; return (image, notes)."""
    mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;"):
        return _scale_numeric(im)
    if mode == "CMYK":
        return im.convert("RGB"), ["CMYK colours converted to RGB"]
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            flat = Image.alpha_composite(white, rgba).convert("RGB")
            return flat, ["transparency composited on a white background"]
        return rgba.convert("RGB"), []
    return im.convert("RGB"), []


def _scale_numeric(im: Image.Image) -> tuple[Image.Image, list[str]]:
    """Stretch 16-bit, 32-bit integer or float data over 0–255 using its own min..max."""
    mode = im.mode
    try:
        data = np.asarray(im)
    except (TypeError, ValueError):  # an exotic I;xx layout numpy cannot view
        data = np.asarray(im.convert("I"))
    if mode == "F":
        kind, fmt = "floating-point values", "{:.4g}"
    elif mode.startswith("I;16"):
        kind, fmt = "16-bit values", "{:d}"
    else:
        kind, fmt = "32-bit integer values", "{:d}"

    # float32 is precise enough here: the result has only 256 levels.
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        if not finite.any():
            black = Image.new("RGB", (data.shape[1], data.shape[0]))
            return black, [f"{kind} are all missing (not a number): shown as black"]
        values = np.where(finite, data, np.nan).astype(np.float32, copy=False)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        missing = not finite.all()
    else:
        values = data.astype(np.float32)
        low, high = int(data.min()), int(data.max())
        missing = False
    if high > low:
        scaled = (values - np.float32(low)) * np.float32(255.0 / (high - low))
        note = f"{kind} {fmt.format(low)}–{fmt.format(high)} scaled to 0–255"
    else:  # a constant image: keep its value where it fits in 0–255
        shown = int(np.rint(np.clip(low, 0, 255)))
        scaled = np.full(values.shape, shown, np.float32)
        note = f"{kind} are all {fmt.format(low)}: shown as {shown}"
    if missing:
        note += "; missing (not-a-number) values shown as black"
    grey = np.rint(np.nan_to_num(scaled, nan=0.0)).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB"), [note]


def _fit(width: int, height: int) -> tuple[int, int]:
    """Size that fits within MAX_SIDE, keeping the aspect ratio."""
    longest = max(width, height)
    if longest <= MAX_SIDE:
        return width, height
    scale = MAX_SIDE / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _orientation(im: Image.Image) -> int | None:
    try:
        return im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 (a broken EXIF block just means "no orientation")
        return None


def _signature(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    for prefix, kind in _SIGNATURES:
        if head.startswith(prefix):
            return kind
    return None


def _bomb_reason(claim: str) -> str:
    pixels = re.search(r"\((\d+) pixels\)", claim)
    if pixels:  # Pillow's own DecompressionBombError/Warning text
        claim = f"{int(pixels.group(1)) / 1e6:,.0f} megapixels"
    return (
        f"it claims to be {claim}, more than the {MAX_PIXELS / 1e6:.0f}-megapixel limit,"
        " so it was refused as a possible decompression bomb"
    )


def _damage_reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if "truncated" in text or "end of file" in text or isinstance(exc, EOFError):
        return "the file is truncated"
    return f"the file is damaged or not a valid image ({_detail(exc)})"


def _detail(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _error(name: str, reason: str) -> ImageLoadError:
    return ImageLoadError(f"Cannot open '{name}': {reason}")


def _frozen(pixels: np.ndarray) -> np.ndarray:
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    pixels.setflags(write=False)
    return pixels


# ------------------------------------------------------------------------ built-ins


def builtin_image_names() -> list[str]:
    """Names of the built-in images: photographs first, then generated test patterns."""
    return [*_PHOTOS, *_PATTERNS]


@cache
def load_builtin(name: str) -> LoadedImage:
    """Load a built-in photograph or draw a test pattern (cached; pixels are read-only).

    Raises
    ------
    ImageLoadError
        For an unknown name or a missing asset file.
    """
    if name in _PHOTOS:
        try:
            file = asset_path("images", _PHOTOS[name])
        except FileNotFoundError as exc:
            raise ImageLoadError(f"Cannot open built-in image '{name}': {exc}") from None
        photo = load_image(file)
        return LoadedImage(photo.pixels, name, None, photo.notes, photo.original_mode)
    draw = {"color-bars": _color_bars, "gradients": _gradients, "checkerboard": _checkerboard}
    if name in draw:
        return LoadedImage(_frozen(draw[name]()), name, None)
    known = ", ".join(builtin_image_names())
    raise ImageLoadError(f"Cannot open '{name}': there is no built-in image of that name ({known})")


def open_image(name_or_path: str | os.PathLike) -> LoadedImage:
    """A built-in image when given one of ``builtin_image_names()`` as a str, else a file."""
    if isinstance(name_or_path, str) and name_or_path in builtin_image_names():
        return load_builtin(name_or_path)
    return load_image(name_or_path)


def _color_bars() -> np.ndarray:
    """SMPTE-like colour bars, 384×512.

    75 % bars on top, a reverse strip, then -I, white, +Q, black and PLUGE.
    """
    height, width = 384, 512
    out = np.zeros((height, width, 3), np.uint8)
    top, middle = 256, 288  # rows: bars 0–255, reverse strip 256–287, bottom 288–383
    edges = np.linspace(0, width, 8).round().astype(int)  # 7 equal bars
    bars = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0),
            (191, 0, 191), (191, 0, 0), (0, 0, 191)]
    strip = [(0, 0, 191), (0, 0, 0), (191, 0, 191), (0, 0, 0),
             (0, 191, 191), (0, 0, 0), (191, 191, 191)]
    for i, (bar, rev) in enumerate(zip(bars, strip)):
        out[:top, edges[i]:edges[i + 1]] = bar
        out[top:middle, edges[i]:edges[i + 1]] = rev
    # Bottom row: -I, 100 % white, +Q, black, PLUGE (black, +4 %, +8 %), black.
    # Full-range RGB has nothing below black, so PLUGE steps up instead of down.
    bottom = [(0, 33, 76), (255, 255, 255), (50, 0, 106), (0, 0, 0),
              (0, 0, 0), (10, 10, 10), (20, 20, 20), (0, 0, 0)]
    quarter = [round(width * k * 5 / 28) for k in (1, 2, 3)]  # 5/4 of a bar each
    cuts = [0, *quarter, edges[5], edges[5] + 24, edges[5] + 48, edges[6], width]
    for colour, left, right in zip(bottom, cuts[:-1], cuts[1:]):
        out[middle:, left:right] = colour
    return out


def _gradients() -> np.ndarray:
    """Red, green, blue and grey ramps 0..255 left to right, 128 rows each, 512×512."""
    ramp = (np.arange(512) // 2).astype(np.uint8)  # each level 2 pixels wide
    out = np.zeros((512, 512, 3), np.uint8)
    for band, channels in enumerate(([0], [1], [2], [0, 1, 2])):
        rows = slice(band * 128, (band + 1) * 128)
        for c in channels:
            out[rows, :, c] = ramp
    return out


def _checkerboard() -> np.ndarray:
    """Black and white 32-pixel squares, white at the top left, 512×512."""
    y, x = np.mgrid[0:512, 0:512]
    white = ((y // 32 + x // 32) % 2 == 0)
    return np.repeat((white * 255).astype(np.uint8)[:, :, None], 3, axis=2)


# Model units: the generators work on images in [−1, 1].
EPS_RANGE = 3.0  # predicted noise ε̂ is drawn with −3 … 3 mapped to black … white


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Model units in [−1, 1] -> uint8 0 … 255 (clipped, rounded); needs no torch."""
    return np.clip(np.rint((np.asarray(images, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
