"""Write a sequence of frames as PNG files, an animation, a video or a contact sheet.

One module serves every chapter and the command line. The output path picks
the format:

=====================================  ===========================================
``OUT``                                written
=====================================  ===========================================
an existing folder, or no suffix       ``OUT/frame_0000.png`` … and ``OUT/params.json``
``.gif`` / ``.webp`` / ``.apng``       a looping animation, and ``OUT`` with ``.json``
``.mp4``                               H.264 video (needs the ``video`` extra)
``.png`` with ``sheet=True``           one contact-sheet image of all frames
=====================================  ===========================================

Writing is atomic: everything goes to a temporary file or folder next to the
destination and is renamed into place at the end. On an error, or when the
generator is closed early (a worker stopped), the temporary output is removed
and nothing is left behind. Uses numpy and Pillow; imageio only for MP4; no Qt.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

EXPORT_FORMATS = ("folder", "gif", "webp", "apng", "mp4", "sheet")
"""Format names, as recorded in the parameters JSON."""

FRAME_NAME = "frame_{:04d}.png"
# zlib level 3: about 3× faster than Pillow's default 6 on noisy frames, ~5 % larger.
PNG_COMPRESS_LEVEL = 3
PARAMS_NAME = "params.json"
VIDEO_EXTRA_MESSAGE = "MP4 export needs the video extra: pip install 'diffusion-explorer[video]'"

_FILE_SUFFIXES = {".gif": "gif", ".webp": "webp", ".apng": "apng", ".mp4": "mp4"}
_FRAME_FILE = re.compile(r"frame_\d{4,}\.png")


class ExportError(Exception):
    """An export failed; ``str(err)`` is one readable line."""


# ---------------------------------------------------------------------------
# Public API


def export_format(out: str | os.PathLike, sheet: bool = False) -> str:
    """The format ``out`` asks for: one of :data:`EXPORT_FORMATS`.

    Raises
    ------
    ExportError
        For a suffix that is not an export format.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if sheet:
        if suffix != ".png":
            raise ExportError(f"A contact sheet is written as a .png file, not '{out}'")
        return "sheet"
    if out.is_dir() or not suffix:
        return "folder"
    if suffix in _FILE_SUFFIXES:
        return _FILE_SUFFIXES[suffix]
    if suffix == ".png":
        raise ExportError(
            f"'{out}' names a single image: ask for a contact sheet, "
            "or give a folder for numbered PNG frames"
        )
    raise ExportError(
        f"Cannot export to '{out}': unknown format '{suffix}' "
        "(use a folder, .gif, .webp, .apng, .mp4, or .png for a contact sheet)"
    )


def params_path(out: str | Path, sheet: bool = False) -> Path:
    """Where the parameters JSON goes: ``OUT/params.json`` or ``OUT`` with suffix ``.json``."""
    out = Path(out)
    if export_format(out, sheet) == "folder":
        return out / PARAMS_NAME
    return out.with_suffix(".json")


def iter_export(
    frames: Iterable[np.ndarray],
    out: str | Path,
    params: dict,
    *,
    fps: float = 10.0,
    sheet: bool = False,
) -> Iterator[int]:
    """Export ``frames`` to ``out``, yielding the number of frames handled so far.

    The last value (the frame count) is yielded only once the output and its
    parameters JSON are in place, so a generator closed before that leaves
    nothing behind.

    Parameters
    ----------
    frames
        uint8 frames, all H×W (grey) or all H×W×3 (RGB), of one size. Consumed
        one at a time, so a generator works.
    out
        Destination; its form picks the format (see the module docstring).
    params
        Recorded in the JSON beside the output, with ``format``, ``frames``,
        ``fps`` and ``size`` (width, height) added.
    fps
        Frames per second of animations and video.
    sheet
        Write a contact-sheet PNG (``out`` must end in ``.png``).

    Raises
    ------
    ExportError
        Unknown format, unwritable destination, bad or mismatched frames, or a
        missing video extra. Nothing is left behind.
    """
    out = Path(out)
    fmt = export_format(out, sheet)
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ExportError(f"Frames per second must be a positive number, got {fps!r}")
    if fmt == "mp4":
        _require_video_extra()
    _check_json(params)
    _check_destination(out, fmt)

    folder = fmt == "folder"
    # An existing folder receives a temporary subfolder (only it must be writable).
    home = out if folder and out.is_dir() else out.parent
    temporaries: list[Path] = []
    writer: _Writer | None = None
    done = False
    try:
        with _writing(out):
            tmp = _reserve(home, out.name, out.suffix, folder=folder)
            temporaries.append(tmp)
            writer = _WRITERS[fmt](tmp, fps)
        count, first = 0, None
        for frame, last in _with_last(frames):
            frame = _checked_frame(frame, count, first)
            first = frame if first is None else first
            with _writing(out):
                writer.add(frame)
            count += 1
            if not last:
                yield count
        if count == 0:
            raise ExportError("There are no frames to export")
        record = {**params, "format": fmt, "frames": count, "fps": fps,
                  "size": [first.shape[1], first.shape[0]]}
        text = json.dumps(record, indent=2, sort_keys=True, default=_json_value) + "\n"
        with _writing(out):
            writer.finish()
            if folder:
                (tmp / PARAMS_NAME).write_text(text, encoding="utf-8")
                _commit_folder(tmp, out)
            else:
                json_out = params_path(out, sheet)
                tmp_json = _reserve(json_out.parent, json_out.name, ".json", folder=False)
                temporaries.append(tmp_json)
                tmp_json.write_text(text, encoding="utf-8")
                os.replace(tmp, out)
                os.replace(tmp_json, json_out)
        done = True
        yield count
    finally:
        if not done:
            if writer is not None:
                writer.abort()
            for path in temporaries:
                _remove(path)


def export_frames(
    frames: Iterable[np.ndarray],
    out: str | Path,
    params: dict,
    *,
    fps: float = 10.0,
    sheet: bool = False,
) -> Path:
    """Run :func:`iter_export` to the end; return ``out`` as a Path."""
    for _ in iter_export(frames, out, params, fps=fps, sheet=sheet):
        pass
    return Path(out)


# ---------------------------------------------------------------------------
# Checks


def _require_video_extra() -> None:
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise ExportError(VIDEO_EXTRA_MESSAGE) from None


def _check_json(params: dict) -> None:
    try:
        json.dumps(params, default=_json_value)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"The export parameters cannot be saved as JSON ({exc})") from None


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _check_destination(out: Path, fmt: str) -> None:
    parent = out.parent
    if not parent.exists():
        raise ExportError(f"Cannot write '{out}': the folder '{parent}' does not exist")
    if not parent.is_dir():
        raise ExportError(f"Cannot write '{out}': '{parent}' is not a folder")
    if fmt == "folder" and out.exists() and not out.is_dir():
        raise ExportError(f"Cannot write frames into '{out}': it is a file, not a folder")
    if fmt != "folder" and out.is_dir():
        raise ExportError(f"Cannot write '{out}': it is a folder")


def _checked_frame(frame: np.ndarray, index: int, first: np.ndarray | None) -> np.ndarray:
    """The frame as a C-contiguous uint8 H×W or H×W×3 array, or ExportError."""
    frame = np.asarray(frame)
    number = index + 1
    if frame.dtype != np.uint8:
        raise ExportError(
            f"Frame {number} holds {frame.dtype} values; frames must be uint8 (0–255)"
        )
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)) or 0 in frame.shape:
        raise ExportError(
            f"Frame {number} has shape {frame.shape}; frames must be H×W (grey) or H×W×3 (RGB)"
        )
    if first is not None and frame.shape != first.shape:
        raise ExportError(
            f"Frame {number} is {_describe(frame)} but frame 1 is {_describe(first)}: "
            "all frames must have the same size"
        )
    return np.ascontiguousarray(frame)


def _describe(frame: np.ndarray) -> str:
    kind = "grey" if frame.ndim == 2 else "RGB"
    return f"{frame.shape[1]}×{frame.shape[0]} {kind}"


# ---------------------------------------------------------------------------
# Temporary output


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    """Turn file-system and encoder failures into one readable ExportError."""
    try:
        yield
    except ExportError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ExportError(f"Cannot write '{out}': {reason}") from exc
    except (ValueError, KeyError, RuntimeError) as exc:  # encoders (Pillow, ffmpeg)
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ExportError(f"Cannot write '{out}': {detail}") from exc


def _reserve(home: Path, name: str, suffix: str, *, folder: bool) -> Path:
    """Create a hidden temporary file or folder in ``home``, ending in ``suffix``.

    Made with the usual permissions (not mkstemp's 0600), since it is renamed
    into the user's output.
    """
    while True:
        path = home / f".{name}.{secrets.token_hex(4)}.part{suffix}"
        try:
            if folder:
                path.mkdir()
            else:
                path.open("xb").close()
            return path
        except FileExistsError:
            continue


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _commit_folder(tmp: Path, out: Path) -> None:
    """Move the finished frames folder into place."""
    if not out.exists():
        os.replace(tmp, out)
        return
    # An existing folder: replace its earlier frames (all, so none of a longer
    # earlier export lingers), keep anything else the user put there.
    new = {p.name for p in tmp.iterdir()}
    for old in out.iterdir():
        if _FRAME_FILE.fullmatch(old.name) and old.name not in new and old.is_file():
            old.unlink()
    for name in sorted(new):
        os.replace(tmp / name, out / name)
    tmp.rmdir()


def _with_last(items: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    """Yield (item, is_last) pairs, looking one item ahead."""
    iterator = iter(items)
    try:
        previous = next(iterator)
    except StopIteration:
        return
    for item in iterator:
        yield previous, False
        previous = item
    yield previous, True


# ---------------------------------------------------------------------------
# Writers: add(frame) per frame, finish() writes the temporary output, abort() on failure.


class _Writer:
    def __init__(self, tmp: Path, fps: float):
        self.tmp = tmp
        self.fps = fps

    def add(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _FolderWriter(_Writer):
    """Numbered PNG files, written as frames arrive."""

    count = 0

    def add(self, frame: np.ndarray) -> None:
        path = self.tmp / FRAME_NAME.format(self.count)
        Image.fromarray(frame).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        self.count += 1


class _AnimationWriter(_Writer):
    """GIF, WebP or APNG through Pillow's save_all (frames kept until finish)."""

    def __init__(self, tmp: Path, fps: float):
        super().__init__(tmp, fps)
        self.images: list[Image.Image] = []

    def add(self, frame: np.ndarray) -> None:
        self.images.append(Image.fromarray(frame))

    def options(self) -> dict[str, Any]:
        raise NotImplementedError

    def finish(self) -> None:
        first, *rest = self.images
        first.save(
            self.tmp,
            save_all=True,
            append_images=rest,
            duration=round(1000 / self.fps),  # milliseconds per frame
            loop=0,  # forever
            **self.options(),
        )


class _GifWriter(_AnimationWriter):
    def add(self, frame: np.ndarray) -> None:
        image = Image.fromarray(frame)
        if image.mode == "RGB":
            # Each frame gets its own 256-colour palette, not one shared palette.
            if image.getcolors(256) is not None:  # few colours: an exact palette
                image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
            else:
                # Fast octree: ~40× faster than Pillow's default median cut on a
                # 1024² noisy frame (20 ms vs 0.9 s), ~1 level more mean error.
                image = image.quantize(256, method=Image.Quantize.FASTOCTREE)
        self.images.append(image)

    def options(self) -> dict[str, Any]:
        # Identical consecutive frames are merged (Pillow), as in any GIF encoder.
        return {"format": "GIF", "disposal": 2, "optimize": False}


class _WebpWriter(_AnimationWriter):
    def options(self) -> dict[str, Any]:
        # Lossless at the fastest effort: noisy frames barely compress anyway.
        return {"format": "WEBP", "lossless": True, "quality": 0, "method": 0}


class _ApngWriter(_AnimationWriter):
    def options(self) -> dict[str, Any]:
        return {"format": "PNG", "compress_level": PNG_COMPRESS_LEVEL}


class _SheetWriter(_Writer):
    """All frames on one PNG, in rows, with thin white gaps."""

    def __init__(self, tmp: Path, fps: float):
        super().__init__(tmp, fps)
        self.frames: list[np.ndarray] = []

    def add(self, frame: np.ndarray) -> None:
        self.frames.append(frame)

    def finish(self) -> None:
        sheet = Image.fromarray(contact_sheet(self.frames))
        sheet.save(self.tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


class _VideoWriter(_Writer):
    """H.264 MP4 through imageio-ffmpeg; odd sizes padded to even (yuv420p needs it)."""

    def __init__(self, tmp: Path, fps: float):
        super().__init__(tmp, fps)
        self.writer = None

    def add(self, frame: np.ndarray) -> None:
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        if self.writer is None:
            import imageio.v2 as imageio

            self.writer = imageio.get_writer(
                self.tmp,
                format="FFMPEG",
                mode="I",
                fps=self.fps,
                codec="libx264",
                pixelformat="yuv420p",
                quality=8,  # crf 10: noise needs a high bitrate to stay noise
                macro_block_size=1,  # sizes are already even; never resize
                ffmpeg_log_level="error",
            )
        self.writer.append_data(frame)

    def finish(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()

    def abort(self) -> None:
        try:
            self.finish()
        except Exception:  # noqa: BLE001 (the partial file is deleted anyway)
            pass


_WRITERS: dict[str, type[_Writer]] = {
    "folder": _FolderWriter,
    "gif": _GifWriter,
    "webp": _WebpWriter,
    "apng": _ApngWriter,
    "mp4": _VideoWriter,
    "sheet": _SheetWriter,
}


def contact_sheet(frames: list[np.ndarray], background: int = 255) -> np.ndarray:
    """Tile equally sized frames in an about-square grid, row by row, with thin gaps."""
    count = len(frames)
    height, width = frames[0].shape[:2]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    gap = max(2, round(min(height, width) / 64))
    shape = (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap)
    sheet = np.full(shape + frames[0].shape[2:], background, dtype=np.uint8)
    for index, frame in enumerate(frames):
        top = (index // columns) * (height + gap)
        left = (index % columns) * (width + gap)
        sheet[top : top + height, left : left + width] = frame
    return sheet
