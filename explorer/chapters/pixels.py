"""The Pixels chapter: an image is a matrix of numbers.

The chapter shows one array (the image at the chosen resolution, with the switched-off
channels set to zero) as a composite and as three channel panels: R, G, B, or luma,
HSV or YCbCr.  Hovering reads the numbers out; zooming in far enough writes them into
the pixel cells.  Everything here is plain numpy on uint8 arrays, fast enough to follow
a slider on a 1024×1024 image.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QFont, QFontMetricsF, QKeySequence, QPainter, QShortcut, QStaticText, QTransform
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGraphicsItem,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from explorer.chapters.base import AppContext, Chapter, ExportJob
from explorer.widgets.readout import ReadoutLabel
from explorer.widgets.histogram import CHANNEL_COLORS, HistogramPlot
from explorer.widgets.image_panel import ImagePanel, link_views

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings

    from models.images import LoadedImage

# Downsampling factors of the resolution slider (powers of two).
FACTORS: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
RGB_NAMES = ("R", "G", "B")


@dataclass(frozen=True)
class Split:
    """One way of splitting a colour image into channels."""

    key: str
    label: str  # combo box text
    channels: tuple[str, ...]  # short names, in panel order
    titles: tuple[str, ...]  # panel titles


SPLITS: tuple[Split, ...] = (
    Split("rgb", "R, G, B channels", RGB_NAMES, ("R — red", "G — green", "B — blue")),
    Split("luma", "Luma (greyscale)", ("Y′",), ("Y′ = 0.299 R + 0.587 G + 0.114 B (Rec. 601 luma)",)),
    Split(
        "hsv",
        "H, S, V (hue, saturation, value)",
        ("H", "S", "V"),
        ("H — hue (0–360° as 0–255)", "S — saturation", "V — value = max(R, G, B)"),
    ),
    Split(
        "ycbcr",
        "Y, Cb, Cr (as in JPEG)",
        ("Y", "Cb", "Cr"),
        ("Y — luma", "Cb — blue difference (128 = none)", "Cr — red difference (128 = none)"),
    ),
)
SPLIT_KEYS = tuple(split.key for split in SPLITS)

# Screen pixels a cell needs before its numbers are written into it.
NUMBERS_MIN_CELL_PX = 28.0  # one number
STACKED_MIN_CELL_PX = 40.0  # three stacked numbers (composite)
MAX_NUMBERS_PER_PANEL = 1600


# --------------------------------------------------------------------------- arrays


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# Pixels per row block in the conversions below: their temporaries stay in cache, which
# makes converting a 1024² image two to three times faster than in one go.
BLOCK_PIXELS = 32768


def _row_blocks(height: int, width: int) -> Iterator[slice]:
    rows = max(1, BLOCK_PIXELS // max(1, width))
    for top in range(0, height, rows):
        yield slice(top, min(top + rows, height))


def _planes_in_blocks(
    rgb: np.ndarray, convert: Callable[[np.ndarray], tuple[np.ndarray, ...]], count: int
) -> tuple[np.ndarray, ...]:
    """``convert`` (an RGB block → ``count`` uint8 planes) applied row block by row block."""
    height, width = rgb.shape[:2]
    planes = tuple(np.empty((height, width), np.uint8) for _ in range(count))
    for rows in _row_blocks(height, width):
        for plane, part in zip(planes, convert(rgb[rows])):
            plane[rows] = part
    return planes


def downsample(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Block-average ``factor``×``factor`` blocks of an H×W(×C) uint8 array.

    The result has ceil(H/factor) × ceil(W/factor) pixels; blocks cut by the right
    or bottom edge average the pixels they have.
    """
    if factor == 1:
        return pixels
    height, width = pixels.shape[:2]
    dtype = np.uint16 if factor * factor * 255 <= np.iinfo(np.uint16).max else np.uint32
    # Add up the k-th row, then the k-th column, of every block (k = 0 … factor − 1):
    # a few passes over strided views, ~6× faster than np.add.reduceat.
    rows = np.zeros((-(-height // factor), width, *pixels.shape[2:]), dtype)
    for k in range(factor):
        part = pixels[k::factor]
        rows[: len(part)] += part
    sums = np.zeros((rows.shape[0], -(-width // factor), *pixels.shape[2:]), dtype)
    for k in range(factor):
        part = rows[:, k::factor]
        sums[:, : part.shape[1]] += part
    heights = np.minimum(factor, height - np.arange(0, height, factor))
    widths = np.minimum(factor, width - np.arange(0, width, factor))
    counts = np.outer(heights, widths).astype(dtype)  # pixels per block
    if pixels.ndim == 3:
        counts = counts[:, :, None]
    return ((sums + counts // 2) // counts).astype(np.uint8)  # rounded mean


def upscale_nearest(pixels: np.ndarray, factor: int, size: tuple[int, int]) -> np.ndarray:
    """Repeat each pixel ``factor`` times each way, then crop to ``size`` = (H, W)."""
    big = np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)
    return np.ascontiguousarray(big[: size[0], : size[1]])


def mask_channels(rgb: np.ndarray, on: Sequence[bool]) -> np.ndarray:
    """The RGB array with switched-off channels set to zero (no copy when all are on)."""
    if all(on):
        return rgb
    out = rgb.copy()
    for index, keep in enumerate(on):
        if not keep:
            out[..., index] = 0
    return out


def _luma_block(rgb: np.ndarray) -> tuple[np.ndarray]:
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    return (_to_uint8(0.299 * r + 0.587 * g + 0.114 * b),)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma Y′ = 0.299 R + 0.587 G + 0.114 B, as uint8."""
    return _planes_in_blocks(rgb, _luma_block, 1)[0]


@functools.cache
def _hsv_tables() -> tuple[np.ndarray, np.ndarray]:
    """Hue and saturation bytes for every case, so that converting is looking up.

    With r, g, b whole numbers, hue depends only on which channel is largest (r, g or b:
    0, 2 or 4 sixths of a turn), the difference of the other two (g − b, b − r or r − g:
    −255 … 255) and the spread max − min (0 … 255); saturation on the spread and the
    value max. The tables are that float32 arithmetic done once for each case.

    Returns
    -------
    hue
        Flat table: ``hue[((largest · 511) + difference + 255) · 256 + spread]``.
    saturation
        Flat table: ``saturation[spread · 256 + value]``.
    """
    difference = np.arange(-255, 256, dtype=np.float32)[:, None]
    spread = np.arange(256, dtype=np.float32)[None, :]
    safe = np.where(spread == 0, 1.0, spread)
    hues = []
    for sixths in (0.0, 2.0, 4.0):
        hue = sixths + difference / safe  # in sixths of a turn, from the largest channel
        hue = np.where(spread == 0, 0.0, (hue / 6.0) % 1.0)
        hues.append(_to_uint8(hue * 255.0))
    value = spread  # 0 … 255 along the columns, the spread along the rows
    spreads = np.arange(256, dtype=np.float32)[:, None]
    saturation = np.where(value == 0, 0.0, spreads / np.where(value == 0, 1.0, value))
    return np.stack(hues).reshape(-1), _to_uint8(saturation * 255.0).reshape(-1)


def _hsv_block(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hue_table, saturation_table = _hsv_tables()
    r, g, b = (np.ascontiguousarray(rgb[..., i]) for i in range(3))
    value = np.maximum(np.maximum(r, g), b)
    spread = value - np.minimum(np.minimum(r, g), b)
    largest_r = value == r
    largest_g = (value == g) & ~largest_r  # r wins a tie, then g (as the hue formula reads)
    # Row of the hue table: 511 · largest + difference + 255, b largest unless said otherwise.
    index = np.subtract(r, g, dtype=np.int32)
    np.subtract(b, r, out=index, where=largest_g, dtype=np.int32)
    np.subtract(g, b, out=index, where=largest_r, dtype=np.int32)
    index += 2 * 511 + 255
    np.subtract(index, 511, out=index, where=largest_g)
    np.subtract(index, 2 * 511, out=index, where=largest_r)
    index <<= 8
    index |= spread
    saturation_index = spread.astype(np.int32)
    saturation_index <<= 8
    saturation_index |= value
    return np.take(hue_table, index), np.take(saturation_table, saturation_index), value


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue, saturation and value as uint8 planes; hue 0–360° is stored as 0–255 (like Pillow)."""
    return _planes_in_blocks(rgb, _hsv_block, 3)


def _ycbcr_block(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return _to_uint8(y), _to_uint8(cb), _to_uint8(cr)


def rgb_to_ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-range Y, Cb, Cr planes (JPEG's BT.601 formulas) as uint8."""
    return _planes_in_blocks(rgb, _ycbcr_block, 3)


def split_planes(rgb: np.ndarray, split: str) -> tuple[np.ndarray, ...]:
    """The H×W uint8 planes of ``rgb`` in the named split (see ``SPLITS``)."""
    if split == "rgb":
        return tuple(np.ascontiguousarray(rgb[..., i]) for i in range(3))
    if split == "luma":
        return (luma(rgb),)
    if split == "hsv":
        return rgb_to_hsv(rgb)
    if split == "ycbcr":
        return rgb_to_ycbcr(rgb)
    raise ValueError(f"unknown split {split!r} (choose from {', '.join(SPLIT_KEYS)})")


def _hue_colours(hue: np.ndarray) -> np.ndarray:
    """Fully saturated, fully bright RGB for uint8 hues (0–255 = one turn)."""
    sixths = hue.astype(np.float32) * (6.0 / 255.0)
    r = np.abs(sixths - 3.0) - 1.0
    g = 2.0 - np.abs(sixths - 2.0)
    b = 2.0 - np.abs(sixths - 4.0)
    return _to_uint8(np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0) * 255.0)


def _ycbcr_colours(cb: np.ndarray | None, cr: np.ndarray | None) -> np.ndarray:
    """RGB of mid-grey luma with one chroma plane (the other held at 128)."""
    shape = (cb if cb is not None else cr).shape
    db = cb.astype(np.float32) - 128.0 if cb is not None else np.zeros(shape, np.float32)
    dr = cr.astype(np.float32) - 128.0 if cr is not None else np.zeros(shape, np.float32)
    r = 128.0 + 1.402 * dr
    g = 128.0 - 0.344136 * db - 0.714136 * dr
    b = 128.0 + 1.772 * db
    return _to_uint8(np.stack([r, g, b], axis=-1))


@functools.cache
def _tint_table(split: str, index: int) -> np.ndarray:
    """The colour of each plane value 0 … 255 (256×3): tinting a plane is looking it up."""
    values = np.arange(256, dtype=np.uint8)
    if split == "hsv":
        return _hue_colours(values)
    return _ycbcr_colours(values, None) if index == 1 else _ycbcr_colours(None, values)


def tinted(plane: np.ndarray, split: str, index: int) -> np.ndarray:
    """How a channel plane is drawn in colour: R, G, B in their own colour, hue as hues,
    Cb and Cr as the colour they add to grey; other planes stay grey (H×W)."""
    if split == "rgb":
        out = np.zeros((*plane.shape, 3), np.uint8)
        out[..., index] = plane
        return out
    if (split, index) in (("hsv", 0), ("ycbcr", 1), ("ycbcr", 2)):
        return np.take(_tint_table(split, index), plane, axis=0)
    return plane


def histograms(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """256-bin counts of each of R, G, B."""
    counts = np.zeros((3, 256), np.intp)
    values = rgb.reshape(-1, 3)
    for start in range(0, len(values), BLOCK_PIXELS):  # in blocks: bincount's intp copy stays in cache
        block = values[start : start + BLOCK_PIXELS]
        for channel in range(3):
            counts[channel] += np.bincount(block[:, channel], minlength=256)
    return dict(zip(RGB_NAMES, counts))


def _size(nbytes: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def facts_html(array: np.ndarray, factor: int) -> str:
    """The facts panel text for the array on show."""
    height, width = array.shape[:2]
    channels = array.shape[2] if array.ndim == 3 else 1
    rows = [
        ("Shape", f"{height} × {width} × {channels}", "(H × W × C)"),
        ("dtype", str(array.dtype), "(0 … 255, 1 byte each)"),
        ("Value range", f"{int(array.min())} – {int(array.max())}", ""),
        ("Values", f"{array.size:,}", f"= {height} · {width} · {channels}"),
        ("Memory", _size(array.nbytes), f"({array.nbytes:,} bytes)" if array.nbytes >= 1024 else ""),
    ]
    # Always the same rows, so the panel keeps its height (no relayout while sliding).
    if factor > 1:
        rows.append(("Resolution", f"×{factor} smaller", f"({factor}×{factor} blocks)"))
    else:
        rows.append(("Resolution", "original", "(×1)"))
    cells = "".join(
        f"<tr><td style='color:#555; padding-right:8px'>{name}</td>"
        f"<td><b>{value}</b> <span style='color:#777'>{hint}</span></td></tr>"
        for name, value, hint in rows
    )
    return f"<table cellspacing='0' cellpadding='1'>{cells}</table>"


def hex_colour(rgb: Sequence[int]) -> str:
    """``#RRGGBB`` of an RGB triple."""
    return "#{:02X}{:02X}{:02X}".format(*(int(v) for v in rgb))


def _luminance(colour: np.ndarray) -> np.ndarray:
    """Perceived brightness of displayed cells (H×W grey or H×W×3 RGB), float32."""
    if colour.ndim == 2:
        return colour.astype(np.float32)
    return colour[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


# --------------------------------------------------------------------------- widgets


class _NumbersItem(QGraphicsItem):
    """Paints every number of a :class:`PixelNumbers` in one ``paint()`` call.

    The numbers keep their screen size at any zoom: each cell centre is mapped to device
    pixels and the text is drawn there, unscaled, from cached ``QStaticText``s. One
    pyqtgraph TextItem per cell (a text document each) cost 60–80 ms a frame while panning.
    """

    def __init__(self, numbers: PixelNumbers) -> None:
        super().__init__()
        self._numbers = numbers
        self._static: dict[int, tuple[QStaticText, float]] = {}  # value -> its prepared text, width
        self._line_height = QFontMetricsF(numbers.font).height()
        self.setZValue(10)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return self._numbers.cells_rect()

    def _text(self, value: int) -> tuple[QStaticText, float]:
        """The prepared text of ``value`` and its width in pixels."""
        hit = self._static.get(value)
        if hit is None:
            text = QStaticText(str(value))
            text.setTextFormat(Qt.TextFormat.PlainText)
            text.prepare(QTransform(), self._numbers.font)
            hit = self._static[value] = (text, text.size().width())
        return hit

    def paint(self, painter: QPainter, option, widget=None) -> None:  # noqa: D102 (Qt override)
        numbers = self._numbers
        if numbers.values is None or numbers.dark is None:
            return
        rows, cols = numbers.values.shape[:2]
        cells = numbers.values.reshape(rows * cols, -1).tolist()  # Python ints: faster to look up
        dark = numbers.dark.ravel().tolist()
        # View → device is a scale and a shift (no rotation in a ViewBox): map the centres with numpy.
        to_device = painter.transform()
        (row0, col0), factor = numbers.origin, numbers.factor
        xs = ((np.arange(col0, col0 + cols) + 0.5) * factor * to_device.m11() + to_device.dx()).tolist()
        ys = ((np.arange(row0, row0 + rows) + 0.5) * factor * to_device.m22() + to_device.dy()).tolist()
        line_height = self._line_height
        half_block = len(cells[0]) * line_height / 2
        painter.save()
        painter.resetTransform()
        painter.setFont(numbers.font)
        for colour, on_dark in ((Qt.GlobalColor.white, True), (Qt.GlobalColor.black, False)):
            painter.setPen(colour)
            for index, cell in enumerate(cells):
                if dark[index] != on_dark:
                    continue
                texts = [self._text(value) for value in cell]
                # A block of left-aligned lines, centred on the cell (as a text item lays them out).
                row, col = divmod(index, cols)
                left = xs[col] - max(width for _, width in texts) / 2
                top = ys[row] - half_block
                for text, _ in texts:
                    painter.drawStaticText(QPointF(left, top), text)
                    top += line_height
        painter.restore()


class PixelNumbers:
    """The numbers written into the visible pixel cells of one panel.

    Only cells whose centre is in view get their number, and none do while cells are too
    small to read or too many. One item paints them all (see :class:`_NumbersItem`).
    """

    def __init__(self, view_box: pg.ViewBox, stacked: bool) -> None:
        self.view_box = view_box
        self.stacked = stacked  # three numbers (R, G, B) per cell instead of one
        self.font = QFont()
        self.font.setPixelSize(9 if stacked else 11)
        self.values: np.ndarray | None = None  # the numbers of the cells on show
        self.dark: np.ndarray | None = None  # per cell on show: dark, so white text
        self.origin = (0, 0)  # (row, col) of the first cell on show
        self.factor = 1  # original pixels per cell side
        # What the numbers on show were made from: (values, colours, (factor, r0, r1, c0, c1)).
        self._source: tuple[np.ndarray, np.ndarray, tuple[int, ...]] | None = None
        self.item = _NumbersItem(self)
        self.item.hide()
        view_box.addItem(self.item, ignoreBounds=True)

    @property
    def min_cell_px(self) -> float:
        return STACKED_MIN_CELL_PX if self.stacked else NUMBERS_MIN_CELL_PX

    @property
    def shown(self) -> int:
        """How many cells show their numbers."""
        return 0 if self.values is None else self.values.shape[0] * self.values.shape[1]

    def cells(self) -> list[tuple[int, int]]:
        """(row, col) of the cells on show, row by row."""
        if self.values is None:
            return []
        (row0, col0), (rows, cols) = self.origin, self.values.shape[:2]
        return [(row, col) for row in range(row0, row0 + rows) for col in range(col0, col0 + cols)]

    def texts(self) -> list[str]:
        """The numbers on show, row by row (a cell's three numbers one per line)."""
        if self.values is None:
            return []
        cells = self.values.reshape(self.shown, -1)
        return ["\n".join(str(int(v)) for v in cell) for cell in cells]

    def centres(self) -> list[tuple[float, float]]:
        """Where each number is centred, in view coordinates (original pixels), row by row."""
        return [((col + 0.5) * self.factor, (row + 0.5) * self.factor) for row, col in self.cells()]

    def colours(self) -> list[str]:
        """Text colour of each number on show, row by row: white on dark cells, black on light ones."""
        if self.dark is None:
            return []
        return ["#ffffff" if dark else "#000000" for dark in self.dark.ravel()]

    def cells_rect(self) -> QRectF:
        """The cells on show, in view coordinates."""
        if self.values is None:
            return QRectF()
        (row0, col0), (rows, cols), f = self.origin, self.values.shape[:2], self.factor
        return QRectF(col0 * f, row0 * f, cols * f, rows * f)

    def hide(self) -> None:
        self._show(None, None, (0, 0), self.factor)

    def cell_px(self, factor: int) -> float:
        """Screen pixels across one cell of the displayed array."""
        units_per_px = self.view_box.viewPixelSize()[0]
        return factor / units_per_px if units_per_px > 0 else 0.0

    def update(self, values: np.ndarray | None, colours: np.ndarray | None, factor: int) -> None:
        """Write ``values`` (H×W, or H×W×3 when stacked) into the visible cells.

        ``colours`` is the displayed array, used to pick black or white text.
        """
        if values is None or colours is None or not self.view_box.isVisible():
            self.hide()
            return
        if self.cell_px(factor) < self.min_cell_px:
            self.hide()
            return
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        height, width = values.shape[:2]
        # Cells whose centre is in view (a number cut by the edge reads as a different number).
        c0, c1 = max(0, int(np.ceil(x0 / factor - 0.5))), min(width, int(np.floor(x1 / factor - 0.5)) + 1)
        r0, r1 = max(0, int(np.ceil(y0 / factor - 0.5))), min(height, int(np.floor(y1 / factor - 0.5)) + 1)
        if c1 <= c0 or r1 <= r0 or (c1 - c0) * (r1 - r0) > MAX_NUMBERS_PER_PANEL:
            self.hide()
            return
        cells = (factor, r0, r1, c0, c1)
        if self._source is not None:
            old_values, old_colours, old_cells = self._source
            if old_values is values and old_colours is colours and old_cells == cells:
                return  # the same numbers in the same cells: nothing to repaint
        self._show(values[r0:r1, c0:c1], _luminance(colours[r0:r1, c0:c1]) < 128.0, (r0, c0), factor)
        self._source = (values, colours, cells)

    def _show(self, values: np.ndarray | None, dark: np.ndarray | None, origin: tuple[int, int], factor: int) -> None:
        self._source = None
        if values is None and self.values is None:
            return  # hidden already
        self.item.prepareGeometryChange()  # the cells on show, hence the bounding rect, may change
        self.values, self.dark, self.origin, self.factor = values, dark, origin, factor
        self.item.setVisible(values is not None)
        self.item.update()


@dataclass
class _Rendered:
    """What the panels show for one (factor, channels, split, tinted) state."""

    composite: np.ndarray  # H×W×3 uint8, switched-off channels zeroed
    planes: tuple[np.ndarray, ...]  # the split's channels, H×W uint8
    displays: tuple[np.ndarray, ...]  # how each plane is drawn (grey or tinted)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (each counted once)."""
        arrays = {id(a): a for a in (self.composite, *self.planes, *self.displays)}
        return sum(a.nbytes for a in arrays.values())


def _as_bool(value: object, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return default


class PixelsChapter(Chapter):
    """An image is a matrix of numbers: channels, values, dimensions."""

    name = "pixels"
    title = "Pixels"
    explanation = (
        "<b>An image is a grid of numbers.</b> Each pixel holds three, from 0 to 255: how much "
        "<span style='color:#c00'>red</span>, <span style='color:#080'>green</span> and "
        "<span style='color:#00c'>blue</span> light to mix. The first panel is the image; the "
        "others show one channel each, dark where its number is small."
        "<br><br><b>Try this</b><ul style='margin-left:-20px'>"
        "<li>Hover over a panel to read the pixel's numbers.</li>"
        "<li>Scroll to zoom in until the numbers appear in the pixels.</li>"
        "<li>Switch a channel off and watch the colours change.</li>"
        "<li>Drag <i>Resolution</i>: blocks of pixels are averaged, so fewer numbers, less detail.</li>"
        "<li>Pick luma, HSV or YCbCr: other ways to split the same colours.</li></ul>"
        "<span style='color:#555'>Keys: R G B channels · T colour · [ ] resolution · S split · F fit</span>"
    )

    # Arrays of recently shown states kept for going back (a resolution or split dragged back
    # and forth): at most this many bytes, about eight states of a 1024² image.
    RENDER_CACHE_BYTES = 48 * 2**20

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._image: LoadedImage = context.image
        self._factor = 1
        self._split = "rgb"
        self._tinted = False
        self._on = [True, True, True]
        self._small: dict[int, np.ndarray] = {}  # factor -> downsampled image
        self._rgb: dict[int, tuple[np.ndarray, ...]] = {}  # factor -> its R, G, B planes
        self._histograms: dict[int, dict[str, np.ndarray]] = {}
        self._counted: tuple[int, tuple[bool, ...]] | None = None  # (factor, channels) of facts and histogram
        self._on_show: dict[ImagePanel, np.ndarray] = {}  # the array each panel shows
        self._rendered: dict[tuple, _Rendered] = {}
        self._hover_point: QPointF | None = None  # view coordinates (original pixels)
        self._fitted = True  # whole image in view; stays so on resizes until the user zooms or pans
        self._refit = False  # a panel changed size: fit again when the timer fires
        self._to_link: list[ImagePanel] = []  # panels shown again, linked once laid out
        self._keep_zoom: tuple[QPointF, float] | None = None  # centre and view units per screen pixel

        self._view_timer = QTimer(self)
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(0)
        self._view_timer.timeout.connect(self._after_view_change)

        self._build_controls()
        self._build_views()
        self._build_shortcuts()
        self._refresh(refit=True)

    # ----------------------------------------------------------------- building

    def _build_controls(self) -> None:
        channels = QGroupBox("Channels")
        form = QFormLayout(channels)
        self.split_combo = QComboBox()
        for split in SPLITS:
            self.split_combo.addItem(split.label, split.key)
        self.split_combo.currentIndexChanged.connect(self._on_split_changed)
        form.addRow("Split into", self.split_combo)

        toggles = QHBoxLayout()
        self.channel_boxes: list[QCheckBox] = []
        for name, colour in zip(RGB_NAMES, ("#c00", "#080", "#00c")):
            box = QCheckBox(name)
            box.setChecked(True)
            box.setToolTip(f"Show the {name} channel in the composite (key {name})")
            box.setStyleSheet(f"QCheckBox {{ color: {colour}; font-weight: 600; }}")
            box.toggled.connect(self._on_channels_changed)
            toggles.addWidget(box)
            self.channel_boxes.append(box)
        toggles.addStretch(1)
        form.addRow("On / off", toggles)

        self.tint_box = QCheckBox("Draw channels in colour (T)")
        self.tint_box.setToolTip("Show each channel in its own colour instead of as grey levels")
        self.tint_box.toggled.connect(self._on_tint_changed)
        form.addRow(self.tint_box)
        self.controls.addWidget(channels)

        resolution = QGroupBox("Resolution")
        column = QVBoxLayout(resolution)
        row = QHBoxLayout()
        self.resolution_slider = QSlider(Qt.Orientation.Horizontal)
        self.resolution_slider.setRange(0, len(FACTORS) - 1)
        self.resolution_slider.setPageStep(1)
        self.resolution_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.resolution_slider.setToolTip("Average blocks of pixels: ×2 halves each side ([ and ] keys)")
        self.resolution_slider.valueChanged.connect(self._on_resolution_changed)
        self.resolution_label = QLabel()
        self.resolution_label.setFixedWidth(self.resolution_label.fontMetrics().horizontalAdvance("×32") + 6)
        # Fixed both ways, a new text does not ask for a new layout.
        self.resolution_label.setText("×1")
        self.resolution_label.setFixedHeight(self.resolution_label.sizeHint().height())
        row.addWidget(self.resolution_slider, 1)
        row.addWidget(self.resolution_label)
        column.addLayout(row)
        method = QLabel("Block average: each new pixel is the mean of a block of old ones.")
        method.setWordWrap(True)
        method.setStyleSheet("color: #666;")
        column.addWidget(method)
        self.controls.addWidget(resolution)

        facts = QGroupBox("The array on show")
        # Its text changes with the resolution: in a box of fixed height (the table always has
        # the same rows), a new text repaints the box instead of re-laying out the window (~8 ms).
        self.facts_label = ReadoutLabel(margin=0, opaque=False)
        self.facts_label.fit_height(facts_html(np.zeros((1, 1, 3), np.uint8), 1))
        QVBoxLayout(facts).addWidget(self.facts_label)
        self.controls.addWidget(facts)

        inspector = QGroupBox("Pixel under the mouse")
        self.readout_label = QLabel()
        self.readout_label.setTextFormat(Qt.TextFormat.RichText)
        self.readout_label.setWordWrap(True)
        self.readout_label.setMinimumHeight(52)
        QVBoxLayout(inspector).addWidget(self.readout_label)
        self.controls.addWidget(inspector)
        self.controls.addStretch(1)

    def _build_views(self) -> None:
        self.composite_panel = ImagePanel("Composite")
        self.channel_panels = [ImagePanel(title) for title in SPLITS[0].titles]
        self.panels = [self.composite_panel, *self.channel_panels]
        self._grid = grid = QGridLayout()
        grid.setSpacing(6)
        for index, panel in enumerate(self.panels):
            grid.addWidget(panel, index // 2, index % 2)
            panel.graphics.scene().sigMouseMoved.connect(lambda pos, p=panel: self._on_mouse_moved(p, pos))
            panel.installEventFilter(self)
            panel.view_box.sigRangeChanged.connect(self._schedule_numbers)
            panel.view_box.sigResized.connect(self._on_resized)
            panel.view_box.sigRangeChangedManually.connect(self._on_zoomed_by_hand)
        grid.setRowStretch(0, 1)
        grid.setRowStretch(1, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        link_views(self.panels)
        self.numbers = [PixelNumbers(panel.view_box, stacked=(panel is self.composite_panel)) for panel in self.panels]
        for index, panel in enumerate(self.panels):
            # At once, so that the paint after a pan already has the cells that came into view.
            panel.view_box.sigRangeChanged.connect(lambda *_, i=index: self._update_panel_numbers(i))

        self.histogram = HistogramPlot("How many pixels hold each value")
        self.histogram.set_histograms({name: np.zeros(256) for name in RGB_NAMES}, colors=CHANNEL_COLORS)
        self.histogram.setFixedHeight(150)
        self.histogram.getPlotItem().vb.sigResized.connect(self._fit_histogram_height)
        self.histogram.setXRange(0, 256, padding=0.01)
        self.histogram.getPlotItem().vb.disableAutoRange(axis="x")

        layout = QVBoxLayout(self.views)
        layout.setContentsMargins(4, 6, 6, 6)
        layout.addLayout(grid, 1)
        layout.addWidget(self.histogram)

    def _build_shortcuts(self) -> None:
        def shortcut(key: str, slot) -> None:
            QShortcut(QKeySequence(key), self, slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

        for box, key in zip(self.channel_boxes, RGB_NAMES):
            shortcut(key, box.toggle)
        shortcut("T", self.tint_box.toggle)
        shortcut("[", lambda: self.resolution_slider.setValue(self.resolution_slider.value() - 1))
        shortcut("]", lambda: self.resolution_slider.setValue(self.resolution_slider.value() + 1))
        shortcut("S", lambda: self.split_combo.setCurrentIndex((self.split_combo.currentIndex() + 1) % len(SPLITS)))
        shortcut("F", self.fit_view)

    # ----------------------------------------------------------------- state

    @property
    def factor(self) -> int:
        """The current downsampling factor."""
        return self._factor

    @property
    def split(self) -> str:
        return self._split

    def small_image(self) -> np.ndarray:
        """The image at the current resolution (all channels on)."""
        if self._factor not in self._small:
            self._small[self._factor] = downsample(self._image.pixels, self._factor)
        return self._small[self._factor]

    def rendered(self) -> _Rendered:
        """Composite, split planes and their drawings for the current state (cached)."""
        key = (self._factor, tuple(self._on), self._split, self._tinted)
        hit = self._rendered.pop(key, None)
        if hit is None:
            composite = mask_channels(self.small_image(), self._on)
            if self._split == "rgb":  # the channels of the image at this resolution, or zeros
                planes = tuple(p if on else np.zeros_like(p) for p, on in zip(self._rgb_planes(), self._on))
            else:
                planes = split_planes(composite, self._split)
            displays = tuple(
                tinted(plane, self._split, i) if self._tinted else plane for i, plane in enumerate(planes)
            )
            hit = _Rendered(composite, planes, displays)
            # Least recently used first out, once the cache would hold more than its bytes.
            cached = sum(r.nbytes for r in self._rendered.values())
            while self._rendered and cached + hit.nbytes > self.RENDER_CACHE_BYTES:
                cached -= self._rendered.pop(next(iter(self._rendered))).nbytes
        self._rendered[key] = hit  # (again) the most recently used
        return hit

    def _rgb_planes(self) -> tuple[np.ndarray, ...]:
        """R, G and B of the image at this resolution as contiguous planes, made once per resolution."""
        if self._factor not in self._rgb:
            self._rgb[self._factor] = split_planes(self.small_image(), "rgb")
        return self._rgb[self._factor]

    def set_image(self, image: LoadedImage) -> None:
        """Show a newly opened image, keeping the chapter's settings."""
        self._image = image
        self._small.clear()
        self._rgb.clear()
        self._histograms.clear()
        self._counted = None
        self._rendered.clear()
        self._hover_point = None
        self._refresh(refit=True)

    def fit_view(self) -> None:
        """Show the whole image, and keep it fitted (resizes, split changes) until the user zooms."""
        self._fitted = True
        self.composite_panel.view_box.autoRange(padding=0.0)

    # ----------------------------------------------------------------- reactions

    def _on_split_changed(self, index: int) -> None:
        self._split = SPLITS[index].key
        self._refresh()

    def _on_channels_changed(self) -> None:
        self._on = [box.isChecked() for box in self.channel_boxes]
        self._refresh()

    def _on_tint_changed(self, checked: bool) -> None:
        self._tinted = checked
        self._refresh()

    def _on_resolution_changed(self, index: int) -> None:
        self._factor = FACTORS[index]
        self._refresh()

    def _on_mouse_moved(self, panel: ImagePanel, scene_pos: QPointF) -> None:
        if panel.view_box.sceneBoundingRect().contains(scene_pos):
            self._hover_point = panel.view_box.mapSceneToView(scene_pos)
        else:
            self._hover_point = None
        self._update_readout()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Leave and watched in self.panels:
            self._hover_point = None
            self._update_readout()
        return super().eventFilter(watched, event)

    def _schedule_numbers(self, *_: object) -> None:
        self._view_timer.start()

    def _on_resized(self) -> None:
        self._refit = self._fitted
        self._view_timer.start()

    def _on_zoomed_by_hand(self, *_: object) -> None:
        self._fitted = False

    def _set_shown(self, panel: ImagePanel, shown: bool) -> None:
        """Show or hide a channel panel; a hidden one is unlinked from the others.

        Linking works both ways in pyqtgraph: a view that reappears at a stale size would
        push a nonsense range onto the composite, so it is linked again only once laid out.
        """
        if shown == panel.isVisibleTo(self):
            return
        if shown:
            panel.show()
            self._to_link.append(panel)
            self._view_timer.start()
        else:
            panel.view_box.setXLink(None)
            panel.view_box.setYLink(None)
            panel.hide()

    def _after_view_change(self) -> None:
        lead = self.composite_panel.view_box
        for panel in self._to_link:
            if panel.isVisibleTo(self):
                panel.view_box.setXLink(lead)
                panel.view_box.setYLink(lead)
        self._to_link.clear()
        if self._keep_zoom is not None:
            (centre, units_per_px), self._keep_zoom = self._keep_zoom, None
            half_w, half_h = lead.width() * units_per_px / 2, lead.height() * units_per_px / 2
            lead.setRange(
                xRange=(centre.x() - half_w, centre.x() + half_w),
                yRange=(centre.y() - half_h, centre.y() + half_h),
                padding=0,
            )
        # Linked views with locked aspect ratios undo auto-ranging when any of them resizes,
        # so a fitted view is fitted again once the layout has settled.
        if self._refit and self._fitted:
            self.fit_view()
        self._refit = False
        self._update_numbers()

    # ----------------------------------------------------------------- display

    def _show(self, panel: ImagePanel, array: np.ndarray) -> None:
        """Display ``array`` so that each of its pixels covers factor × factor original pixels."""
        if self._on_show.get(panel) is array:
            return  # already on show (arrays are per factor): no new QImage, no repaint
        self._on_show[panel] = array
        # levels=None shows uint8 as it is; levels=(0, 255) would make pyqtgraph rescale a copy.
        panel.image_item.setImage(array, autoLevels=False, levels=None)
        panel.image_item.setTransform(QTransform.fromScale(self._factor, self._factor))

    def _refresh(self, refit: bool = False) -> None:
        small = self.small_image()
        shown = self.rendered()
        split = SPLITS[SPLIT_KEYS.index(self._split)]

        self._show(self.composite_panel, shown.composite)
        off = [name for name, on in zip(RGB_NAMES, self._on) if not on]
        self.composite_panel.set_title("Composite" + (f" — {', '.join(off)} off (set to 0)" if off else ""))
        if not self._fitted and any(
            panel.isVisibleTo(self) != (index < len(split.channels)) for index, panel in enumerate(self.channel_panels)
        ):  # the panels are about to change size: keep the hand-picked zoom and centre
            lead = self.composite_panel.view_box
            self._keep_zoom = (lead.viewRect().center(), lead.viewPixelSize()[0])
        for index, panel in enumerate(self.channel_panels):
            if index < len(split.channels):
                self._show(panel, shown.displays[index])
                title = split.titles[index]
                if split.key == "rgb" and not self._on[index]:
                    title += " (off: all 0)"
                panel.set_title(title)
            self._set_shown(panel, index < len(split.channels))
        self._grid.setRowStretch(1, 1 if len(split.channels) > 1 else 0)  # luma: one row of two
        if refit:
            self.fit_view()

        height, width = small.shape[:2]
        self.resolution_label.setText(f"×{self._factor}")
        self.resolution_slider.setToolTip(f"×{self._factor}: {width} × {height} pixels")
        # The facts and the histogram depend on the resolution and the channels only: a split
        # or tint change leaves them (and their repaint) alone.
        if (self._factor, tuple(self._on)) != self._counted:
            self._counted = (self._factor, tuple(self._on))
            self.facts_label.setText(facts_html(shown.composite, self._factor))
            self._show_histogram(small)

        self._update_readout()
        self._update_numbers()  # now, so that the next paint shows the numbers of the new arrays
        self._schedule_numbers()  # and again once the layout has settled

    def _show_histogram(self, small: np.ndarray) -> None:
        if self._factor not in self._histograms:
            self._histograms[self._factor] = histograms(small)
        counts = {name: c for name, c, on in zip(RGB_NAMES, self._histograms[self._factor].values(), self._on) if on}
        self.histogram.set_histograms(counts, colors=CHANNEL_COLORS)
        self._fit_histogram_height()
        height, width = small.shape[:2]
        self.histogram.setTitle(f"How many of the {height * width:,} pixels hold each value (0–255)", size="9pt")

    def _fit_histogram_height(self) -> None:
        """The height an auto-ranged view would take: 0 to the top count, padded both ways.

        Set by scaling the curves (``set_count_top``): changing the y range cost milliseconds.
        """
        shown = [curve.getData()[1] for curve in self.histogram.curves.values() if curve.isVisible()]
        if shown:
            top = max(int(counts.max()) for counts in shown)
            padding = top * self.histogram.getPlotItem().vb.suggestPadding(1)  # depends on the height
            self.histogram.set_count_top(top + padding, bottom=-padding)

    def _update_numbers(self) -> None:
        for index in range(len(self.panels)):
            self._update_panel_numbers(index)

    def _update_panel_numbers(self, index: int) -> None:
        """Write the numbers into the visible cells of panel ``index`` (0 is the composite)."""
        shown = self.rendered()
        if index == 0:
            self.numbers[0].update(shown.composite, shown.composite, self._factor)
        elif index - 1 < len(shown.planes):
            self.numbers[index].update(shown.planes[index - 1], shown.displays[index - 1], self._factor)
        else:
            self.numbers[index].hide()

    def _update_readout(self) -> None:
        small = self.small_image()
        point = self._hover_point
        x = int(np.floor(point.x() / self._factor)) if point is not None else -1
        y = int(np.floor(point.y() / self._factor)) if point is not None else -1
        height, width = small.shape[:2]
        if not (0 <= x < width and 0 <= y < height):
            self.readout_label.setText("<span style='color:#777'>Hover over an image to read its numbers.</span>")
            return
        rgb = small[y, x]
        values = " ".join(
            f"<span style='color:{c}'>{n}&nbsp;<b>{int(v)}</b></span>" + ("" if on else "&nbsp;(off)")
            for n, c, v, on in zip(RGB_NAMES, ("#c00", "#080", "#00c"), rgb, self._on)
        )
        swatch = f"<span style='background-color:{hex_colour(rgb)}'>&nbsp;&nbsp;&nbsp;&nbsp;</span>"
        lines = [
            f"x&nbsp;<b>{x}</b>, y&nbsp;<b>{y}</b> <span style='color:#777'>of {width} × {height}</span>",
            f"{values}&nbsp; {swatch} <b>{hex_colour(rgb)}</b>",
        ]
        if self._split != "rgb":
            split = SPLITS[SPLIT_KEYS.index(self._split)]
            planes = self.rendered().planes
            lines.append(
                "&nbsp; ".join(f"{name}&nbsp;<b>{int(plane[y, x])}</b>" for name, plane in zip(split.channels, planes))
            )
        self.readout_label.setText("<br>".join(lines))

    # ----------------------------------------------------------------- window hooks

    def export_job(self) -> ExportJob:
        """The image at every resolution, ×1 … ×32, each blown back up to full size."""
        pixels, on, image_name = self._image.pixels, tuple(self._on), self._image.name
        size = pixels.shape[:2]

        def frames() -> Iterator[np.ndarray]:
            for factor in FACTORS:
                yield upscale_nearest(mask_channels(downsample(pixels, factor), on), factor, size)

        params = {
            "chapter": self.name,
            "image": image_name,
            "factors": list(FACTORS),
            "downsampling": "block average",
            "upscaling": "nearest",
            "channels": "".join(n for n, keep in zip(RGB_NAMES, on) if keep),
        }
        name = f"{Path(image_name).stem}-resolutions"
        return ExportJob(frames=frames, count=len(FACTORS), params=params, default_name=name)

    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("split", self._split)
        settings.setValue("tinted", self._tinted)
        settings.setValue("channels", "".join(n for n, on in zip(RGB_NAMES, self._on) if on))
        settings.setValue("factor", self._factor)

    def restore_settings(self, settings: QSettings) -> None:
        split = settings.value("split", self._split)
        if split in SPLIT_KEYS:
            self.split_combo.setCurrentIndex(SPLIT_KEYS.index(split))
        self.tint_box.setChecked(_as_bool(settings.value("tinted"), self._tinted))
        channels = settings.value("channels")
        if isinstance(channels, str) and set(channels) <= set(RGB_NAMES):
            for box, name in zip(self.channel_boxes, RGB_NAMES):
                box.setChecked(name in channels)
        try:
            factor = int(settings.value("factor", self._factor))
        except (TypeError, ValueError):
            factor = self._factor
        if factor in FACTORS:
            self.resolution_slider.setValue(FACTORS.index(factor))

    def shutdown(self) -> None:
        self._view_timer.stop()
