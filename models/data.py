"""Training data: generated digits, junk and coloured shapes, and the user's image folders.

Everything generated is deterministic by seed. Samples are drawn in blocks of
``BLOCK`` with one random stream per (seed, block), and every random number of a
block is drawn even when fewer samples are needed, so sample ``i`` depends only on
``(seed, i)``: ``make_digits(100, s)`` equals the first 100 of ``make_digits(1000, s)``.

- Digits: 28×28 grey, white on black like MNIST. Each is a digit of Pillow's
  bundled font, warped like handwriting (rotation, scale, aspect, shear, stroke
  width, a smooth elastic displacement field), sampled at 56×56 and averaged down
  (anti-aliased), and centred by its centre of mass.
- Junk: 28×28 grey images that are not digits (smooth blobs, scribbles, two digits
  drawn over each other, pixel noise, near-blank), for an evaluator's "not a digit" class.
- Shapes: 32×32 RGB, one shape of one colour on a different background colour,
  with an English caption ("a red circle on a blue background").
- Image folders: the user's images, resized and centre-cropped.

Large digit and junk sets are cached as .npz files (see ``cache_dir``).
Only numpy and Pillow are imported here; ``to_tensor`` imports torch when called.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from models.images import ImageLoadError, load_image

if TYPE_CHECKING:
    import torch

__all__ = [
    "BLOCK",
    "CACHE_MIN_COUNT",
    "COLORS",
    "COLOR_NAMES",
    "DIGITS_VERSION",
    "JUNK_KINDS",
    "JUNK_VERSION",
    "SHAPES",
    "FolderData",
    "ShapesData",
    "all_combinations",
    "article",
    "cache_dir",
    "caption",
    "load_image_folder",
    "make_digits",
    "make_junk",
    "make_shapes",
    "parse_caption",
    "to_tensor",
]

BLOCK: int = 500
"""Samples per random stream."""

CACHE_MIN_COUNT: int = 5000
"""By default, digit and junk sets at least this large are cached on disk."""

DIGITS_VERSION: int = 1
"""Part of the cache file name: bump it whenever the digits generated for a seed change."""

JUNK_VERSION: int = 1
"""As ``DIGITS_VERSION``, for junk."""

# Tags that keep the random streams of the different generators apart.
_DIGITS_TAG, _JUNK_TAG, _SHAPES_TAG = 1, 2, 3


def _block_rng(seed: int, tag: int, block: int, part: int = 0) -> np.random.Generator:
    """The random stream of one part of one block of one generator."""
    return np.random.default_rng([seed, tag, block, part])


def _block_sizes(count: int) -> list[tuple[int, int]]:
    """(block, how many of its samples are needed) for the first count samples."""
    return [(b, min(BLOCK, count - b * BLOCK)) for b in range(-(-count // BLOCK))]


def _check_count_and_seed(count: int, seed: int) -> None:
    if int(count) != count or count < 0:
        raise ValueError(f"count must be a whole number ≥ 0, not {count!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a whole number ≥ 0, not {seed!r}")


# =========================================================================== digits

_SUPER = 2  # digits are sampled at 2 × 28 per side, then averaged down (2×2 means)
_GLYPH_HEIGHT = 48  # height of a digit in the glyph bank, in pixels
_UNIT = _GLYPH_HEIGHT / 20  # bank pixels per output pixel: an unwarped digit is 20 px tall
_BANK_SIZE = 80  # side of one glyph image in the bank (zero border included)
_STROKES = (0, 1, 2)  # extra stroke widths in bank pixels (Pillow's stroke_width)
_GLYPHS = "0123456789I"  # the font's 1 has a long flag; a plain bar ("I") is the other common 1
_PLAIN_ONES = 0.4  # fraction of ones drawn as a plain bar
_ELASTIC_POINTS = 5  # control points per side of the elastic displacement field
_MAX_EXTENT = 20  # no digit's ink spans more pixels than this, across or down (as MNIST)


@cache
def _digit_font() -> ImageFont.FreeTypeFont | None:
    """Pillow's bundled scalable font at the size that makes digits 48 px tall, if there is one."""
    try:
        probe = ImageFont.load_default(size=100)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 takes no size; no FreeType
        return None
    if not isinstance(probe, ImageFont.FreeTypeFont):
        return None
    top, bottom = probe.getbbox("0123456789")[1::2]
    return ImageFont.load_default(size=round(100 * _GLYPH_HEIGHT / (bottom - top)))


def _draw_glyph(text: str, stroke: int) -> np.ndarray:
    """One character, white on black, centred on a _BANK_SIZE square; float32 in [0, 1]."""
    font = _digit_font()
    canvas = Image.new("L", (_BANK_SIZE, _BANK_SIZE), 0)
    if font is not None:
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
        origin = ((_BANK_SIZE - (right - left)) / 2 - left, (_BANK_SIZE - (bottom - top)) / 2 - top)
        draw = ImageDraw.Draw(canvas)
        draw.text(origin, text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    else:
        # Fallback: the small bitmap font, enlarged, thickened and smoothed.
        small = ImageFont.load_default()
        left, top, right, bottom = small.getbbox(text)
        bitmap = Image.new("L", (right - left + 2, bottom - top + 2), 0)
        ImageDraw.Draw(bitmap).text((1 - left, 1 - top), text, font=small, fill=255)
        factor = _GLYPH_HEIGHT / (bottom - top)
        size = (round(bitmap.width * factor), round(bitmap.height * factor))
        big = bitmap.resize(size, Image.Resampling.BICUBIC)
        big = big.filter(ImageFilter.MaxFilter(2 * stroke + 3))
        big = big.filter(ImageFilter.GaussianBlur(1.5))
        canvas.paste(big, ((_BANK_SIZE - big.width) // 2, (_BANK_SIZE - big.height) // 2))
    glyph = np.asarray(canvas, dtype=np.float32) / 255
    glyph[:2], glyph[-2:], glyph[:, :2], glyph[:, -2:] = 0, 0, 0, 0  # samples off the glyph read 0
    return glyph


def _shorten_flag(one: np.ndarray, keep: int = 6) -> None:
    """Cut the font's long flag of a one to ``keep`` px left of the stem (in place).

    Rotated and sheared, a one with a long flag reads as a seven.
    """
    stem_left = np.flatnonzero(one[np.flatnonzero(one.max(axis=1) > 0.5)[-1]] > 0.5)[0]
    ramp = np.clip((np.arange(one.shape[1]) - (stem_left - keep)) / 2 + 1, 0, 1)
    one *= ramp[None, :].astype(np.float32)


@cache
def _glyph_bank() -> tuple[np.ndarray, np.ndarray]:
    """Every glyph, ready for bilinear sampling, and each glyph's centre of mass.

    Returns
    -------
    bank : np.ndarray
        float32 (len(_GLYPHS) · len(_STROKES) · _BANK_SIZE², 4), read-only. Row
        ``(g · _BANK_SIZE + y) · _BANK_SIZE + x`` holds the coefficients of the bilinear
        patch of glyph g between pixels (x, y) and (x+1, y+1): at fractions (fx, fy)
        its value is ``c0 + fx·c1 + fy·(c2 + fx·c3)``. Glyph g is character
        ``_GLYPHS[g // len(_STROKES)]`` with stroke ``_STROKES[g % len(_STROKES)]``.
    centres : np.ndarray
        float32 (len(_GLYPHS) · len(_STROKES), 2): (x, y) in bank pixels.
    """
    glyphs = np.stack([_draw_glyph(c, s) for c in _GLYPHS for s in _STROKES])
    for s in range(len(_STROKES)):
        _shorten_flag(glyphs[_GLYPHS.index("1") * len(_STROKES) + s])
    grid = np.arange(_BANK_SIZE, dtype=np.float32)
    mass = glyphs.sum(axis=(1, 2))
    centres = np.stack([glyphs.sum(axis=1) @ grid / mass, glyphs.sum(axis=2) @ grid / mass], axis=1)

    right = np.roll(glyphs, -1, axis=2)  # the borders are zero, so rolling brings in zeros
    below = np.roll(glyphs, -1, axis=1)
    diagonal = np.roll(below, -1, axis=2)
    twist = diagonal - below - right + glyphs
    bank = np.stack([glyphs, right - glyphs, below - glyphs, twist], axis=-1)
    bank = bank.reshape(-1, 4)
    bank.flags.writeable = False
    return bank, centres.astype(np.float32)


@cache
def _smooth_basis(side: int, points: int) -> np.ndarray:
    """(side, points) weights that spread values at evenly spaced points smoothly along a row.

    Scaled so that ``basis @ noise @ basis.T`` of unit-variance noise has unit RMS.
    """
    pixels = (np.arange(side) + 0.5) / side
    centres = np.linspace(0, 1, points)
    weights = np.exp(-0.5 * ((pixels[:, None] - centres[None, :]) * (points - 1)) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    return (weights / np.sqrt((weights**2).sum(axis=1).mean())).astype(np.float32)


@dataclass(frozen=True)
class _DigitParams:
    """How each digit of a block is drawn (one array entry per digit)."""

    labels: np.ndarray  # digit 0–9
    plain: np.ndarray  # a one is drawn as a plain bar
    strokes: np.ndarray  # index into _STROKES
    angles: np.ndarray  # rotation, radians
    scales: np.ndarray  # height relative to 20 px
    aspects: np.ndarray  # width relative to the font's
    shears: np.ndarray  # x += shear · y
    shifts: np.ndarray  # (·, 2) centre of mass minus image centre (x, y), px
    elastic: np.ndarray  # RMS elastic displacement, px
    fields: np.ndarray  # (·, 2, points, points) unit-variance control values of the displacement

    @staticmethod
    def draw(rng: np.random.Generator, n: int = BLOCK) -> _DigitParams:
        return _DigitParams(
            labels=rng.integers(0, 10, n),
            plain=rng.random(n) < _PLAIN_ONES,
            strokes=rng.integers(0, len(_STROKES), n),
            angles=np.radians(rng.uniform(-15, 15, n)),
            scales=rng.uniform(0.8, 1.0, n),
            aspects=rng.uniform(0.8, 1.25, n),
            shears=rng.uniform(-0.25, 0.25, n),
            shifts=rng.uniform(-0.75, 0.75, (n, 2)),
            elastic=rng.uniform(0.3, 2.0, n),
            fields=rng.standard_normal((n, 2, _ELASTIC_POINTS, _ELASTIC_POINTS)).astype(np.float32),
        )

    def take(self, which: slice | np.ndarray) -> _DigitParams:
        """The parameters of some of the digits."""
        fields = dataclasses.fields(self)
        return _DigitParams(**{f.name: getattr(self, f.name)[which] for f in fields})


def _render_digits(p: _DigitParams) -> np.ndarray:
    """Draw the digits described by p: uint8 (n, 28, 28).

    A digit whose ink spans more than _MAX_EXTENT px (a large one, stretched by its
    elastic field) is drawn again, smaller, so that every digit keeps a margin.
    """
    value = _warp_digits(p)
    extent = _ink_extent(value) / _SUPER
    too_big = np.flatnonzero(extent > _MAX_EXTENT)
    if len(too_big):
        shrink = _MAX_EXTENT / extent[too_big]
        smaller = dataclasses.replace(
            p.take(too_big), scales=p.scales[too_big] * shrink, elastic=p.elastic[too_big] * shrink
        )
        value[too_big] = _warp_digits(smaller)

    # Centre of mass to the centre (plus the small random shift), then 2×2 means.
    value = _move_to(value, 14 * _SUPER + p.shifts * _SUPER)
    value = value[:, ::2, ::2] + value[:, 1::2, ::2] + value[:, ::2, 1::2] + value[:, 1::2, 1::2]
    return np.rint(value * (255 / 4)).astype(np.uint8)


def _ink_extent(images: np.ndarray) -> np.ndarray:
    """The longer side of each image's ink box, in pixels."""
    extents = []
    for axis in (1, 2):
        inked = (images > 0.25).any(axis=axis)
        first = inked.argmax(axis=1)
        last = inked.shape[1] - 1 - inked[:, ::-1].argmax(axis=1)
        extents.append(np.where(inked.any(axis=1), last - first + 1, 0))
    return np.maximum(*extents)


def _warp_digits(p: _DigitParams) -> np.ndarray:
    """The glyphs warped as p says, float32 (n, 56, 56) in [0, 1], each centred on its glyph."""
    n = len(p.labels)
    side = 28 * _SUPER
    bank, centres = _glyph_bank()
    character = np.where((p.labels == 1) & p.plain, _GLYPHS.index("I"), p.labels)
    glyph = character * len(_STROKES) + p.strokes

    # Output pixel centres, in pixels from the image centre, moved by the elastic field.
    basis = _smooth_basis(side, _ELASTIC_POINTS)
    field = basis @ p.fields @ basis.T
    field *= p.elastic[:, None, None, None].astype(np.float32)
    grid = (np.arange(side, dtype=np.float32) + 0.5) / _SUPER - 14
    x = grid[None, None, :] + field[:, 0]
    y = grid[None, :, None] + field[:, 1]

    # Inverse of (rotate · shear · scale): from output pixels back to bank pixels.
    cos, sin = np.cos(p.angles), np.sin(p.angles)
    rotate = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear = np.zeros((n, 2, 2))
    shear[:, 0, 0] = shear[:, 1, 1] = 1
    shear[:, 0, 1] = p.shears
    scale = np.zeros((n, 2, 2))
    scale[:, 0, 0] = p.scales * p.aspects
    scale[:, 1, 1] = p.scales
    inverse = (np.linalg.inv(rotate @ shear @ scale) * _UNIT).astype(np.float32)
    m = [[inverse[:, i, j, None, None] for j in range(2)] for i in range(2)]
    bx = m[0][0] * x + m[0][1] * y + centres[glyph, 0, None, None]
    by = m[1][0] * x + m[1][1] * y + centres[glyph, 1, None, None]

    # Bilinear sampling; coordinates off the glyph land in its zero border.
    np.clip(bx, 0, _BANK_SIZE - 1.001, out=bx)
    np.clip(by, 0, _BANK_SIZE - 1.001, out=by)
    x0, y0 = bx.astype(np.int32), by.astype(np.int32)  # floor, as both are ≥ 0
    bx -= x0  # now the fractions
    by -= y0
    index = y0 * _BANK_SIZE
    index += x0
    index += (glyph * _BANK_SIZE**2).astype(np.int32)[:, None, None]
    patch = np.take(bank, index, axis=0)
    value = patch[..., 3] * bx
    value += patch[..., 2]
    value *= by
    value += patch[..., 0]
    value += patch[..., 1] * bx
    return value


def _move_to(images: np.ndarray, targets: np.ndarray, reach: int = 8) -> np.ndarray:
    """Shift images by whole pixels (at most reach) to move their centres of mass to targets."""
    n, side = images.shape[:2]
    grid = np.arange(side, dtype=np.float32) + 0.5
    mass = np.maximum(images.sum(axis=(1, 2)), 1e-6)
    move_x = np.rint(targets[:, 0] - images.sum(axis=1) @ grid / mass)
    move_y = np.rint(targets[:, 1] - images.sum(axis=2) @ grid / mass)
    move_x = np.clip(move_x, -reach, reach).astype(int)
    move_y = np.clip(move_y, -reach, reach).astype(int)
    padded = np.pad(images, ((0, 0), (reach, reach), (reach, reach)))
    moved = np.empty_like(images)
    for i in range(n):
        top, left = reach - move_y[i], reach - move_x[i]
        moved[i] = padded[i, top : top + side, left : left + side]
    return moved


def _digits_block(seed: int, block: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    params = _DigitParams.draw(_block_rng(seed, _DIGITS_TAG, block)).take(slice(0, n))
    return _render_digits(params), params.labels.astype(np.int64)


def make_digits(
    count: int, seed: int = 0, cache: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Handwriting-like digits, white on black, 28×28, like MNIST.

    Parameters
    ----------
    count : int
        Number of digits.
    seed : int
        Random seed (≥ 0); digit i depends only on (seed, i).
    cache : bool or None
        Read and write a cache file in ``cache_dir()``; None: when count ≥ CACHE_MIN_COUNT.

    Returns
    -------
    images : np.ndarray
        uint8 (count, 28, 28).
    labels : np.ndarray
        int64 (count,), 0–9.
    """
    _check_count_and_seed(count, seed)

    def generate() -> dict[str, np.ndarray]:
        blocks = [_digits_block(seed, b, n) for b, n in _block_sizes(count)]
        return {
            "images": np.concatenate([b[0] for b in blocks] or [np.zeros((0, 28, 28), np.uint8)]),
            "labels": np.concatenate([b[1] for b in blocks] or [np.zeros(0, np.int64)]),
        }

    expected = {"images": ((count, 28, 28), np.uint8), "labels": ((count,), np.int64)}
    use_cache = count >= CACHE_MIN_COUNT if cache is None else cache
    name = f"digits-{DIGITS_VERSION}-{count}-{seed}.npz" if use_cache else None
    arrays = _cached(name, expected, generate)
    return arrays["images"], arrays["labels"]


# =========================================================================== junk

JUNK_KINDS: tuple[str, ...] = ("blobs", "scribbles", "two digits", "noise", "blank")
"""The kinds of junk, drawn in equal shares."""


def _junk_blobs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Smooth random blobs: smooth noise through a soft threshold. float32 (n, 28, 28) in [0, 1]."""
    points = rng.integers(3, 9, n)
    noise = rng.standard_normal((n, 8, 8)).astype(np.float32)
    threshold = rng.uniform(-0.3, 1.2, n).astype(np.float32)
    sharpness = rng.uniform(1.5, 8, n).astype(np.float32)
    peak = rng.uniform(0.4, 1.0, n).astype(np.float32)
    field = np.empty((n, 28, 28), np.float32)
    for k in np.unique(points):
        basis = _smooth_basis(28, k)
        which = points == k
        field[which] = basis @ noise[which, :k, :k] @ basis.T
    soft = 1 / (1 + np.exp(-sharpness[:, None, None] * (field - threshold[:, None, None])))
    return soft * peak[:, None, None]


def _junk_scribbles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random wandering strokes, 2 to 4 per image, drawn at 4× and averaged down."""
    images = np.empty((n, 28, 28), np.float32)
    for i in range(n):
        canvas = Image.new("L", (112, 112), 0)
        draw = ImageDraw.Draw(canvas)
        for _ in range(rng.integers(2, 5)):
            steps = rng.integers(10, 25)
            heading = rng.uniform(0, 2 * math.pi)
            turns = np.cumsum(rng.normal(0, 0.7, steps))  # smooth wandering
            step = rng.uniform(5, 12)
            xs = np.cumsum(step * np.cos(heading + turns))
            ys = np.cumsum(step * np.sin(heading + turns))
            start = rng.uniform(20, 92, 2)
            points = np.stack([xs - xs.mean() + start[0], ys - ys.mean() + start[1]], axis=1)
            points = np.clip(points, 4, 108)
            width = int(rng.integers(4, 13))
            brightness = int(rng.integers(150, 256))
            draw.line([tuple(p) for p in points], fill=brightness, width=width, joint="curve")
        images[i] = np.asarray(canvas.reduce(4), dtype=np.float32) / 255
    return images


def _junk_two_digits(seed: int, block: int, which: np.ndarray) -> np.ndarray:
    """Two different digits drawn over each other, 7–11 px apart.

    ``which`` are their places in the block.
    """
    first = _DigitParams.draw(_block_rng(seed, _JUNK_TAG, block, 10))
    second = _DigitParams.draw(_block_rng(seed, _JUNK_TAG, block, 11))
    second = dataclasses.replace(second, labels=(first.labels + 1 + second.labels % 9) % 10)
    first, second = _render_digits(first.take(which)), _render_digits(second.take(which))
    rng = _block_rng(seed, _JUNK_TAG, block, 12)
    distance = rng.uniform(7, 11, BLOCK)[which]
    # Mostly side by side (within 50° of horizontal): one over the other can hide a one.
    direction = rng.uniform(-0.28 * math.pi, 0.28 * math.pi, BLOCK)[which]
    moves = np.stack([distance * np.cos(direction), distance * np.sin(direction)], axis=1) / 2
    images = np.empty((len(which), 28, 28), np.float32)
    for i, move in enumerate(np.rint(moves).astype(int)):
        images[i] = np.maximum(_shifted(first[i], move), _shifted(second[i], -move)) / 255
    return images


def _shifted(image: np.ndarray, move: np.ndarray) -> np.ndarray:
    """image moved by (dx, dy) whole pixels, filled with zeros."""
    dx, dy = int(move[0]), int(move[1])
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _junk_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pixel noise: Gaussian around a random level, sparse bright dots, or uniform."""
    style = rng.integers(0, 3, n)
    level = rng.uniform(0.0, 0.8, (n, 1, 1))
    spread = rng.uniform(0.08, 0.45, (n, 1, 1))
    density = rng.uniform(0.03, 0.35, (n, 1, 1))
    gaussian = level + spread * rng.standard_normal((n, 28, 28))
    dots = (rng.random((n, 28, 28)) < density) * rng.uniform(0.5, 1.0, (n, 28, 28))
    uniform = rng.random((n, 28, 28)) * (level + 0.2)
    style = style[:, None, None]
    images = np.select([style == 0, style == 1], [gaussian, dots], uniform)
    return np.clip(images, 0, 1).astype(np.float32)


def _junk_blank(rng: np.random.Generator, n: int) -> np.ndarray:
    """Nearly empty: a dim level with faint noise."""
    level = rng.uniform(0, 0.15, (n, 1, 1))
    faint = rng.uniform(0, 0.03, (n, 1, 1)) * rng.standard_normal((n, 28, 28))
    return np.clip(level + faint, 0, 1).astype(np.float32)


def _junk_block(seed: int, block: int, n: int) -> np.ndarray:
    kinds = _block_rng(seed, _JUNK_TAG, block).integers(0, len(JUNK_KINDS), BLOCK)
    images = np.empty((BLOCK, 28, 28), np.float32)
    for k, kind in enumerate(JUNK_KINDS):
        which = np.flatnonzero(kinds == k)
        needed = which[which < n]
        rng = _block_rng(seed, _JUNK_TAG, block, 1 + k)
        # Every kind draws the same random numbers for a sample whatever n is: the cheap
        # kinds draw for the whole block, the slow ones draw sample after sample.
        if kind == "blobs":
            images[which] = _junk_blobs(rng, len(which))
        elif kind == "scribbles":
            images[needed] = _junk_scribbles(rng, len(needed))
        elif kind == "two digits":
            images[needed] = _junk_two_digits(seed, block, needed)
        elif kind == "noise":
            images[which] = _junk_noise(rng, len(which))
        else:
            images[which] = _junk_blank(rng, len(which))
    return np.rint(images[:n] * 255).astype(np.uint8)


def make_junk(count: int, seed: int = 0, cache: bool | None = None) -> np.ndarray:
    """Images that are not digits, 28×28 grey, for an evaluator's "not a digit" class.

    An equal mix of ``JUNK_KINDS``: smooth blobs, random scribbles, two digits drawn
    over each other 7–11 px apart, pixel noise (Gaussian, sparse dots, uniform) and
    near-blank images.

    Parameters
    ----------
    count : int
        Number of images.
    seed : int
        Random seed (≥ 0); image i depends only on (seed, i).
    cache : bool or None
        Read and write a cache file in ``cache_dir()``; None: when count ≥ CACHE_MIN_COUNT.

    Returns
    -------
    np.ndarray
        uint8 (count, 28, 28).
    """
    _check_count_and_seed(count, seed)

    def generate() -> dict[str, np.ndarray]:
        blocks = [_junk_block(seed, b, n) for b, n in _block_sizes(count)]
        return {"images": np.concatenate(blocks or [np.zeros((0, 28, 28), np.uint8)])}

    use_cache = count >= CACHE_MIN_COUNT if cache is None else cache
    name = f"junk-{JUNK_VERSION}-{count}-{seed}.npz" if use_cache else None
    return _cached(name, {"images": ((count, 28, 28), np.uint8)}, generate)["images"]


# =========================================================================== cache


def cache_dir() -> Path:
    """Where generated data sets are cached.

    ``$DIFFUSION_EXPLORER_CACHE/data`` when that variable is set, else
    ``$XDG_CACHE_HOME/diffusion-explorer/data`` (``~/.cache`` when XDG_CACHE_HOME is unset).
    """
    root = os.environ.get("DIFFUSION_EXPLORER_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "diffusion-explorer")
    return Path(root) / "data"


_Expected = dict[str, tuple[tuple[int, ...], type]]  # array name → (shape, dtype)


def _cached(
    name: str | None, expected: _Expected, generate: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The arrays of cache file ``name`` if it holds what is expected, else generate and write them.

    ``name`` None: no cache, just generate.
    """
    if name is None:
        return generate()
    path = cache_dir() / name
    arrays = _read_cache(path, expected)
    if arrays is None:
        arrays = generate()
        _write_cache(path, arrays)
    return arrays


def _read_cache(path: Path, expected: _Expected) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in expected}
    except Exception:  # noqa: BLE001 (missing, truncated, corrupt: all mean "generate again")
        return None
    for key, (shape, dtype) in expected.items():
        if arrays[key].shape != shape or arrays[key].dtype != dtype:
            return None
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays to path atomically; a cache that cannot be written is simply not written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, **arrays)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


# =========================================================================== shapes

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "heart")
"""Shape names; ``ShapesData.shape`` indexes this."""

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (245, 215, 50),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
"""Colour names and their RGB; each image moves each channel by at most ``_COLOR_JITTER``."""

COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
"""Colour names in order; ``ShapesData.color`` and ``.background`` index this."""

_COLOR_JITTER = 10
_SHAPE_SIZE = 32
_SHAPE_SUPER = 4  # shapes are drawn at 4× and averaged down
_STAR_INNER = 0.45  # inner radius of the star's points, relative to the outer
_CROSS_ARM = 0.36  # half the width of the cross's arms, relative to their length
# Rotations are drawn up to the shape's own symmetry (degrees); the heart stays upright.
_ROTATION: dict[str, tuple[float, float]] = {
    "circle": (0, 0),
    "square": (0, 90),
    "triangle": (0, 120),
    "star": (0, 72),
    "cross": (0, 90),
    "heart": (-20, 20),
}


@dataclass(frozen=True, eq=False)
class ShapesData:
    """Coloured shapes on coloured backgrounds, with captions.

    Attributes
    ----------
    images : np.ndarray
        uint8 (N, 32, 32, 3) RGB.
    shape : np.ndarray
        int64 (N,), index into ``SHAPES``.
    color : np.ndarray
        int64 (N,), index into ``COLOR_NAMES``: the shape's colour.
    background : np.ndarray
        int64 (N,), index into ``COLOR_NAMES``: never the shape's colour.
    captions : list of str
        "a red circle on a blue background", one per image.
    """

    images: np.ndarray
    shape: np.ndarray
    color: np.ndarray
    background: np.ndarray
    captions: list[str]

    def __len__(self) -> int:
        return len(self.images)


def caption(shape: str, color: str, background: str) -> str:
    """The caption of a shape, e.g. "an orange circle on a blue background"."""
    _check_combination(shape, color, background)
    return f"{article(color)} {color} {shape} on {article(background)} {background} background"


def article(word: str) -> str:
    """"an" before a vowel, else "a"."""
    return "an" if word[0] in "aeiou" else "a"


_CAPTION = re.compile(r"an? (\w+) (\w+) on an? (\w+) background")


def parse_caption(text: str) -> tuple[str, str, str]:
    """(shape, color, background) of a caption made by ``caption``; ValueError for anything else."""
    match = _CAPTION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"not a shape caption: {text!r}")
    color, shape, background = match.groups()
    _check_combination(shape, color, background)
    if text.strip().lower() != caption(shape, color, background):
        raise ValueError(f"not a shape caption: {text!r}")
    return shape, color, background


def _check_combination(shape: str, color: str, background: str) -> None:
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; the shapes are {', '.join(SHAPES)}")
    for name in (color, background):
        if name not in COLORS:
            raise ValueError(f"unknown colour {name!r}; the colours are {', '.join(COLOR_NAMES)}")
    if color == background:
        raise ValueError(f"the shape and the background are both {color}")


def all_combinations() -> list[tuple[str, str, str]]:
    """Every (shape, color, background) with the background differing from the colour."""
    return [(s, c, b) for s in SHAPES for c in COLOR_NAMES for b in COLOR_NAMES if b != c]


@cache
def _outline(shape: str) -> np.ndarray:
    """Vertices (k, 2) of a shape in its enclosing circle of radius 1 about (0, 0), y down."""
    if shape == "circle":
        turn = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        return np.stack([np.cos(turn), np.sin(turn)], axis=1)
    if shape == "square":
        turn = np.radians(45 + 90 * np.arange(4))
        return np.stack([np.cos(turn), np.sin(turn)], axis=1)
    if shape == "triangle":
        turn = np.radians(-90 + 120 * np.arange(3))
        return np.stack([np.cos(turn), np.sin(turn)], axis=1)
    if shape == "star":
        turn = np.radians(-90 + 36 * np.arange(10))
        radius = np.where(np.arange(10) % 2 == 0, 1.0, _STAR_INNER)
        return np.stack([radius * np.cos(turn), radius * np.sin(turn)], axis=1)
    if shape == "cross":
        a, t = 1.0, _CROSS_ARM
        quarter = np.array([(t, -a), (t, -t), (a, -t)])  # top arm's right edge, then a corner
        quarters = [quarter]
        for _ in range(3):  # each next quarter turned by 90°: (x, y) → (-y, x)
            quarters.append(np.stack([-quarters[-1][:, 1], quarters[-1][:, 0]], axis=1))
        return np.concatenate(quarters) / math.hypot(a, t)
    if shape == "heart":
        turn = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        x = 16 * np.sin(turn) ** 3
        y = -(13 * np.cos(turn) - 5 * np.cos(2 * turn) - 2 * np.cos(3 * turn) - np.cos(4 * turn))
        points = np.stack([x, y], axis=1)
        points -= (points.max(axis=0) + points.min(axis=0)) / 2
        return points / np.hypot(*points.T).max()
    raise ValueError(f"unknown shape {shape!r}")


def _shape_mask(shape: str, centre: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Coverage (32, 32) float32 in [0, 1] of one shape, drawn at 4× and averaged down."""
    big = _SHAPE_SIZE * _SHAPE_SUPER
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    cos, sin = math.cos(angle), math.sin(angle)
    outline = _outline(shape) @ np.array([[cos, sin], [-sin, cos]])
    points = (outline * radius + centre) * _SHAPE_SUPER
    draw.polygon([tuple(p) for p in points], fill=255)
    return np.asarray(canvas.reduce(_SHAPE_SUPER), dtype=np.float32) / 255


def _shapes_block(
    seed: int, block: int, n: int, combinations: np.ndarray | None
) -> tuple[np.ndarray, ...]:
    rng = _block_rng(seed, _SHAPES_TAG, block)
    if combinations is None:
        shape = rng.integers(0, len(SHAPES), BLOCK)
        color = rng.integers(0, len(COLORS), BLOCK)
        background = (color + 1 + rng.integers(0, len(COLORS) - 1, BLOCK)) % len(COLORS)
    else:
        shape, color, background = combinations[rng.integers(0, len(combinations), BLOCK)].T
    # Size: the enclosing circle's diameter is 40–80% of the side; it stays 1 px inside.
    radius = rng.uniform(0.2, 0.4, BLOCK) * _SHAPE_SIZE
    centre = radius[:, None] + 1 + rng.random((BLOCK, 2)) * (_SHAPE_SIZE - 2 - 2 * radius[:, None])
    turn = rng.random(BLOCK)
    jitter = rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, (BLOCK, 2, 3))

    palette = np.array(list(COLORS.values()))
    fill = np.clip(palette[color] + jitter[:, 0], 0, 255).astype(np.float32)
    back = np.clip(palette[background] + jitter[:, 1], 0, 255).astype(np.float32)
    images = np.empty((n, _SHAPE_SIZE, _SHAPE_SIZE, 3), np.uint8)
    for i in range(n):
        low, high = _ROTATION[SHAPES[shape[i]]]
        angle = math.radians(low + turn[i] * (high - low))
        mask = _shape_mask(SHAPES[shape[i]], centre[i], radius[i], angle)[..., None]
        images[i] = np.rint(back[i] + mask * (fill[i] - back[i]))
    return images, shape[:n], color[:n], background[:n]


def make_shapes(
    count: int, seed: int = 0, combinations: Iterable[tuple[str, str, str]] | None = None
) -> ShapesData:
    """Coloured shapes on coloured backgrounds, 32×32 RGB, with captions.

    Each image has one shape of ``SHAPES`` in one colour of ``COLORS`` on a different
    background colour. The shape's enclosing circle spans 40–80% of the side and lies
    fully inside; shapes other than the circle are rotated at random (the heart by at
    most 20°). Drawn at 4× and averaged down.

    Parameters
    ----------
    count : int
        Number of images.
    seed : int
        Random seed (≥ 0); image i depends only on (seed, i) (and the combinations).
    combinations : iterable of (shape, color, background) or None
        Draw only these combinations, equally often (to hold others out of training);
        None: any shape, any colour, any other background.

    Returns
    -------
    ShapesData
    """
    _check_count_and_seed(count, seed)
    allowed = None
    if combinations is not None:
        triples = sorted(set(map(tuple, combinations)))
        if not triples:
            raise ValueError("combinations is empty: there is nothing to draw")
        for triple in triples:
            _check_combination(*triple)
        allowed = np.array(
            [(SHAPES.index(s), COLOR_NAMES.index(c), COLOR_NAMES.index(b)) for s, c, b in triples]
        )
    blocks = [_shapes_block(seed, b, n, allowed) for b, n in _block_sizes(count)]
    if blocks:
        images, shape, color, background = (np.concatenate(parts) for parts in zip(*blocks))
    else:
        images = np.zeros((0, _SHAPE_SIZE, _SHAPE_SIZE, 3), np.uint8)
        shape = color = background = np.zeros(0, np.int64)
    shape, color, background = (a.astype(np.int64) for a in (shape, color, background))
    captions = [
        caption(SHAPES[s], COLOR_NAMES[c], COLOR_NAMES[b])
        for s, c, b in zip(shape, color, background)
    ]
    return ShapesData(images, shape, color, background, captions)


# =========================================================================== image folders


@dataclass(frozen=True, eq=False)
class FolderData:
    """The images of a folder, resized and centre-cropped to one size.

    Attributes
    ----------
    images : np.ndarray
        uint8 (N, size, size, 3) RGB, or (N, size, size) when loaded grey.
    names : list of str
        File name of each image.
    skipped : int
        Files that could not be read as images.
    skipped_names : list of str
        Their names.
    """

    images: np.ndarray
    names: list[str]
    skipped: int
    skipped_names: list[str]

    def __len__(self) -> int:
        return len(self.images)


def load_image_folder(folder: str | os.PathLike, size: int, grey: bool = False) -> FolderData:
    """Load every image file of a folder (not its sub-folders), resized and centre-cropped.

    Each image is scaled so that its shorter side is ``size`` and its middle square is
    kept. Files that cannot be read as images are skipped and counted; hidden files
    (names starting with ".") are ignored.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder.
    size : int
        Side of the square images, in pixels.
    grey : bool
        Convert to grey (luma) and return (N, size, size).

    Returns
    -------
    FolderData
        Images in file-name order.

    Raises
    ------
    ValueError
        The folder is missing or not a folder, holds no files, or none of its files is an image.
    """
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a whole number ≥ 1, not {size!r}")
    path = Path(folder)
    if not path.exists():
        raise ValueError(f"The folder {str(path)!r} does not exist.")
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is a file, not a folder.")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ValueError(f"The folder {str(path)!r} holds no files.")

    images: list[np.ndarray] = []
    names: list[str] = []
    skipped_names: list[str] = []
    first_error = ""
    for file in files:
        try:
            pixels = load_image(file).pixels
        except ImageLoadError as error:
            skipped_names.append(file.name)
            first_error = first_error or str(error)
            continue
        image = ImageOps.fit(Image.fromarray(pixels), (size, size), Image.Resampling.LANCZOS)
        images.append(np.asarray(image.convert("L") if grey else image, dtype=np.uint8))
        names.append(file.name)
    if not images:
        raise ValueError(
            f"None of the {len(files)} files in {str(path)!r} could be read as an image"
            f" ({first_error})."
        )
    return FolderData(np.stack(images), names, len(skipped_names), skipped_names)


# =========================================================================== torch


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images as a float32 tensor in [-1, 1], (N, C, H, W).

    Parameters
    ----------
    images : np.ndarray
        uint8 (N, H, W) grey or (N, H, W, C).

    Returns
    -------
    torch.Tensor
        float32 (N, 1, H, W) or (N, C, H, W); 0 becomes -1 and 255 becomes 1.
    """
    import torch

    array = np.asarray(images)
    if array.dtype != np.uint8:
        raise TypeError(f"to_tensor takes uint8 images, not {array.dtype}")
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4:
        array = array.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"to_tensor takes (N, H, W) or (N, H, W, C) images, not {array.shape}")
    values = np.ascontiguousarray(array, dtype=np.float32)  # a new, writable array
    values *= 2 / 255
    values -= 1
    return torch.from_numpy(values)
