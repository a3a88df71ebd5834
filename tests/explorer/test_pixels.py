"""The Pixels chapter: drive its real widgets and check the arrays and plots it shows."""

from __future__ import annotations

import colorsys
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from explorer.chapters.base import AppContext
from explorer.chapters.pixels import (
    FACTORS,
    PixelsChapter,
    downsample,
    hex_colour,
    histograms,
    luma,
    rgb_to_hsv,
    rgb_to_ycbcr,
    tinted,
    upscale_nearest,
)
from explorer.workers import WorkerPool
from models.images import LoadedImage

SPLIT_INDEX = {"rgb": 0, "luma": 1, "hsv": 2, "ycbcr": 3}


def make_image(height: int = 512, width: int = 512, seed: int = 0, name: str = "test.png") -> LoadedImage:
    """Smooth gradients plus noise, so every channel differs and block means are not trivial."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], axis=-1)
    noisy = np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
    noisy.flags.writeable = False
    return LoadedImage(pixels=noisy, name=name, path=None)


def solid_colours(colours: list[tuple[int, int, int]], cell: int = 4) -> LoadedImage:
    """One row of solid squares, ``cell`` pixels each."""
    row = np.repeat(np.array(colours, np.uint8)[None, :, :], cell, axis=1)
    pixels = np.repeat(row, cell, axis=0)
    pixels.flags.writeable = False
    return LoadedImage(pixels=pixels, name="colours.png", path=None)


@pytest.fixture
def image() -> LoadedImage:
    return make_image()


def open_chapter(qtbot, image: LoadedImage) -> PixelsChapter:
    chapter = PixelsChapter(AppContext(image=image, workers=WorkerPool()))
    qtbot.addWidget(chapter)
    chapter.resize(1400 - 180, 860 - 60)
    chapter.show()
    qtbot.waitExposed(chapter)
    return chapter


@pytest.fixture
def chapter(qtbot, image):
    chapter = open_chapter(qtbot, image)
    yield chapter
    chapter.shutdown()


def click(qtbot, box) -> None:
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(6, box.height() // 2))


def shown(panel) -> np.ndarray:
    return panel.image_item.image


def hover(panel, x: float, y: float) -> None:
    """Move the mouse over view point (x, y) of ``panel`` (original-pixel coordinates)."""
    scene_point = panel.view_box.mapViewToScene(QPointF(x, y))
    widget_point = panel.graphics.mapFromScene(scene_point)
    QTest.mouseMove(panel.graphics.viewport(), widget_point)
    # Offscreen, a synthetic move may not reach the scene; emitting its signal is what a move does.
    panel.graphics.scene().sigMouseMoved.emit(scene_point)


# --------------------------------------------------------------------------- pure array functions


def test_downsample_averages_blocks_and_keeps_partial_edge_blocks():
    pixels = np.arange(25, dtype=np.uint8).reshape(5, 5)
    small = downsample(pixels, 2)
    assert small.shape == (3, 3) and small.dtype == np.uint8
    assert small[0, 0] == (0 + 1 + 5 + 6) // 4  # 3
    assert small[0, 2] == 7  # right edge: a 2×1 block, mean 6.5 rounded half up
    assert small[2, 2] == 24  # corner: a single pixel
    assert downsample(pixels, 1) is pixels


def test_downsample_matches_reshape_mean_when_sizes_divide(image):
    expected = np.rint(image.pixels.reshape(128, 4, 128, 4, 3).mean(axis=(1, 3)))
    # Ties are rounded up (integer rounding), numpy's rint rounds them to even: allow 1.
    assert np.abs(downsample(image.pixels, 4).astype(int) - expected).max() <= 1


def test_upscale_nearest_restores_the_original_size():
    small = np.array([[1, 2], [3, 4]], np.uint8)
    big = upscale_nearest(small, 3, (5, 4))
    assert big.shape == (5, 4)
    assert big[:3, :3].tolist() == [[1] * 3] * 3 and big[4, 3] == 4


def test_hsv_and_ycbcr_agree_with_reference_implementations():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    hue, sat, val = rgb_to_hsv(rgb)
    for y, x in np.ndindex(rgb.shape[:2]):
        h, s, v = colorsys.rgb_to_hsv(*(rgb[y, x] / 255.0))
        assert abs(int(hue[y, x]) - round(h * 255)) <= 1 or {int(hue[y, x]), round(h * 255)} == {0, 255}
        assert abs(int(sat[y, x]) - round(s * 255)) <= 1
        assert int(val[y, x]) == round(v * 255)
    pillow = np.asarray(Image.fromarray(rgb).convert("YCbCr")).astype(int)
    ours = np.stack(rgb_to_ycbcr(rgb), axis=-1).astype(int)
    assert np.abs(ours - pillow).max() <= 1


def _hsv_by_the_formula(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float32 HSV formula the chapter's tables are made from, applied pixel by pixel."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    value = np.maximum(np.maximum(r, g), b)
    spread = value - np.minimum(np.minimum(r, g), b)
    safe = np.where(spread == 0, 1.0, spread)
    hue = np.where(value == r, (g - b) / safe, np.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = np.where(spread == 0, 0.0, (hue / 6.0) % 1.0)
    saturation = np.where(value == 0, 0.0, spread / np.where(value == 0, 1.0, value))

    def to_uint8(values):
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)

    return to_uint8(hue * 255.0), to_uint8(saturation * 255.0), value.astype(np.uint8)


def test_hsv_tables_give_the_formula_for_every_colour():
    every = np.arange(2**24, dtype=np.uint32)
    for start in range(0, every.size, 2**20):  # all 16.7 million colours, a million at a time
        colours = every[start : start + 2**20]
        rgb = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=-1).astype(np.uint8)
        rgb = rgb.reshape(1024, 1024, 3)
        for ours, formula in zip(rgb_to_hsv(rgb), _hsv_by_the_formula(rgb)):
            np.testing.assert_array_equal(ours, formula)


def test_conversions_in_row_blocks_match_one_go():
    rgb = np.random.default_rng(3).integers(0, 256, (301, 257, 3), dtype=np.uint8)  # several blocks, a ragged one
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))

    def to_uint8(values):
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)

    np.testing.assert_array_equal(luma(rgb), to_uint8(0.299 * r + 0.587 * g + 0.114 * b))
    y, cb, cr = rgb_to_ycbcr(rgb)
    np.testing.assert_array_equal(cb, to_uint8(128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b))
    np.testing.assert_array_equal(cr, to_uint8(128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b))
    np.testing.assert_array_equal(y, luma(rgb))
    counts = histograms(rgb)
    for index, name in enumerate("RGB"):
        np.testing.assert_array_equal(counts[name], np.bincount(rgb[..., index].ravel(), minlength=256))


def test_downsample_matches_block_sums_for_any_size_and_factor():
    rng = np.random.default_rng(4)
    for shape in ((5, 5), (37, 41, 3), (100, 3, 3), (1, 1, 3), (64, 96, 3)):
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        for factor in FACTORS[1:]:
            rows, cols = np.arange(0, shape[0], factor), np.arange(0, shape[1], factor)
            sums = np.add.reduceat(np.add.reduceat(pixels, rows, axis=0, dtype=np.uint32), cols, axis=1)
            counts = np.outer(np.diff(np.append(rows, shape[0])), np.diff(np.append(cols, shape[1])))
            counts = counts[:, :, None] if pixels.ndim == 3 else counts
            np.testing.assert_array_equal(downsample(pixels, factor), (sums + counts // 2) // counts)


def test_tinting_hue_and_chroma_planes_is_a_table_look_up():
    plane = np.random.default_rng(5).integers(0, 256, (40, 30), dtype=np.uint8)
    sixths = plane.astype(np.float32) * (6.0 / 255.0)
    rgb = np.stack([np.abs(sixths - 3.0) - 1.0, 2.0 - np.abs(sixths - 2.0), 2.0 - np.abs(sixths - 4.0)], axis=-1)
    np.testing.assert_array_equal(tinted(plane, "hsv", 0), np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8))
    cb = tinted(plane, "ycbcr", 1).astype(int)
    cr = tinted(plane, "ycbcr", 2).astype(int)
    d = plane.astype(np.float32) - 128.0
    np.testing.assert_array_equal(cb[..., 2], np.clip(np.rint(128.0 + 1.772 * d), 0, 255))
    np.testing.assert_array_equal(cr[..., 0], np.clip(np.rint(128.0 + 1.402 * d), 0, 255))
    assert (cb[..., 0] == 128).all() and (cr[..., 2] == 128).all()
    assert tinted(plane, "hsv", 2) is plane  # value stays grey


def test_hex_colour():
    assert hex_colour((200, 130, 40)) == "#C88228"


# --------------------------------------------------------------------------- views


def test_opens_on_the_context_image_as_composite_and_rgb_channels(chapter, image):
    assert np.array_equal(shown(chapter.composite_panel), image.pixels)
    for index, panel in enumerate(chapter.channel_panels):
        assert np.array_equal(shown(panel), image.pixels[..., index])
        assert panel.isVisible()
    assert [panel.title_label.text()[0] for panel in chapter.channel_panels] == ["R", "G", "B"]


def test_switching_a_channel_off_zeroes_it_in_composite_panel_and_histogram(qtbot, chapter, image):
    green = chapter.channel_boxes[1]
    click(qtbot, green)
    assert not green.isChecked()

    composite = shown(chapter.composite_panel)
    assert not composite[..., 1].any()
    assert np.array_equal(composite[..., 0], image.pixels[..., 0])
    assert np.array_equal(composite[..., 2], image.pixels[..., 2])
    assert not shown(chapter.channel_panels[1]).any()
    assert "off" in chapter.channel_panels[1].title_label.text()
    assert "G off" in chapter.composite_panel.title_label.text()

    curves = chapter.histogram.curves
    assert not curves["G"].isVisible() and curves["R"].isVisible() and curves["B"].isVisible()

    click(qtbot, green)
    assert np.array_equal(shown(chapter.composite_panel), image.pixels)
    assert curves["G"].isVisible()


def test_tinted_channels_keep_only_their_own_colour(qtbot, chapter, image):
    click(qtbot, chapter.tint_box)
    for index, panel in enumerate(chapter.channel_panels):
        tinted = shown(panel)
        assert tinted.shape == image.pixels.shape
        assert np.array_equal(tinted[..., index], image.pixels[..., index])
        assert not np.delete(tinted, index, axis=-1).any()


def test_luma_split_shows_one_rec601_panel(qtbot, chapter, image):
    chapter.split_combo.setCurrentIndex(SPLIT_INDEX["luma"])
    r, g, b = (image.pixels[..., i].astype(np.float64) for i in range(3))
    expected = np.rint(0.299 * r + 0.587 * g + 0.114 * b)
    assert np.abs(shown(chapter.channel_panels[0]).astype(int) - expected).max() <= 1
    assert chapter.channel_panels[0].title_label.text().startswith("Y′")
    assert chapter.channel_panels[1].isHidden() and chapter.channel_panels[2].isHidden()


def test_hsv_split_of_known_colours(qtbot):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (128, 128, 128), (255, 128, 0)]
    chapter = open_chapter(qtbot, solid_colours(colours))
    chapter.split_combo.setCurrentIndex(SPLIT_INDEX["hsv"])
    hsv = np.stack([shown(panel)[0, ::4] for panel in chapter.channel_panels], axis=-1)
    assert hsv.tolist() == [
        [0, 255, 255], [85, 255, 255], [170, 255, 255], [0, 0, 255], [0, 0, 0], [0, 0, 128], [21, 255, 255]
    ]
    assert [panel.title_label.text()[0] for panel in chapter.channel_panels] == ["H", "S", "V"]

    click(qtbot, chapter.tint_box)  # hue drawn as colours: pure red, green, blue
    assert shown(chapter.channel_panels[0])[0, 0:12:4].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    chapter.shutdown()


def test_ycbcr_split_of_known_colours(qtbot):
    chapter = open_chapter(qtbot, solid_colours([(255, 255, 255), (0, 0, 0), (255, 0, 0), (0, 0, 255)]))
    chapter.split_combo.setCurrentIndex(SPLIT_INDEX["ycbcr"])
    ycc = np.stack([shown(panel)[0, ::4] for panel in chapter.channel_panels], axis=-1)
    assert ycc.tolist() == [[255, 128, 128], [0, 128, 128], [76, 85, 255], [29, 255, 107]]
    chapter.shutdown()


def test_histograms_count_every_value(chapter, image):
    for index, name in enumerate("RGB"):
        x, y = chapter.histogram.curves[name].getData()
        assert np.array_equal(y, np.bincount(image.pixels[..., index].ravel(), minlength=256))


# --------------------------------------------------------------------------- resolution and facts


def test_facts_describe_the_array(chapter):
    text = chapter.facts_label.text()
    for fact in ("512 × 512 × 3", "uint8", "786,432", "768.0 KiB"):
        assert fact in text
    # The table always has the same rows, in a box that does not change size with them.
    height = chapter.facts_label.height()
    assert height >= chapter.facts_label.label.sizeHint().height()
    chapter.resolution_slider.setValue(FACTORS.index(32))
    assert "16 × 16 × 3" in chapter.facts_label.text() and chapter.facts_label.height() == height


def test_going_back_to_a_state_reuses_its_arrays_within_the_cache_budget(chapter):
    first = chapter.rendered()
    for index in (1, 2, 3, 0):  # split changes, back to R, G, B
        chapter.split_combo.setCurrentIndex(index)
    assert chapter.rendered() is first
    assert sum(r.nbytes for r in chapter._rendered.values()) <= chapter.RENDER_CACHE_BYTES
    chapter.RENDER_CACHE_BYTES = first.nbytes  # room for one state only: a new one evicts the others
    chapter.tint_box.setChecked(True)
    assert list(chapter._rendered) == [(1, (True, True, True), "rgb", True)]
    chapter.tint_box.setChecked(False)
    # Channel planes are the image's own at this resolution, or zeros when switched off.
    chapter.split_combo.setCurrentIndex(0)
    chapter.channel_boxes[1].setChecked(False)
    red, green, blue = chapter.rendered().planes
    assert red is first.planes[0] and blue is first.planes[2] and not green.any()


def test_histogram_height_is_the_auto_range_of_the_visible_counts(qtbot, chapter, image):
    plot = chapter.histogram
    pad = plot.getPlotItem().vb.suggestPadding(1)
    for on in ((True, True, True), (False, True, True), (True, False, False)):
        for box, checked in zip(chapter.channel_boxes, on):
            box.setChecked(checked)
        top = max(curve.getData()[1].max() for curve in plot.curves.values() if curve.isVisible())
        assert plot.count_top == pytest.approx(top * (1 + pad))
        assert plot.count_bottom == pytest.approx(-top * pad)
        assert plot.viewRange()[1] == [0, 1]  # scaled curves, a fixed view


def test_resolution_slider_shrinks_the_array_but_not_the_view(qtbot, chapter, image):
    view = chapter.composite_panel.view_box
    before = view.viewRange()
    chapter.resolution_slider.setValue(FACTORS.index(4))

    assert chapter.factor == 4 and chapter.resolution_label.text() == "×4"
    composite = shown(chapter.composite_panel)
    assert composite.shape == (128, 128, 3)
    assert np.array_equal(composite, downsample(image.pixels, 4))
    assert shown(chapter.channel_panels[0]).shape == (128, 128)
    facts = chapter.facts_label.text()
    assert "128 × 128 × 3" in facts and "49,152" in facts
    # Same on-screen size: each displayed pixel covers 4×4 original pixels.
    item = chapter.composite_panel.image_item
    assert item.mapRectToParent(item.boundingRect()).width() == 512
    assert np.allclose(view.viewRange(), before)
    x, y = chapter.histogram.curves["R"].getData()
    assert y.sum() == 128 * 128

    chapter.resolution_slider.setValue(len(FACTORS) - 1)
    assert shown(chapter.composite_panel).shape == (16, 16, 3) and "16 × 16 × 3" in chapter.facts_label.text()


def test_resolution_keeps_channel_toggles_and_split(qtbot, chapter, image):
    click(qtbot, chapter.channel_boxes[0])
    chapter.split_combo.setCurrentIndex(SPLIT_INDEX["luma"])
    chapter.resolution_slider.setValue(FACTORS.index(2))
    small = downsample(image.pixels, 2).copy()
    small[..., 0] = 0
    assert np.array_equal(shown(chapter.composite_panel), small)
    g, b = small[..., 1].astype(float), small[..., 2].astype(float)
    assert np.abs(shown(chapter.channel_panels[0]).astype(int) - np.rint(0.587 * g + 0.114 * b)).max() <= 1


# --------------------------------------------------------------------------- inspector


def test_hovering_reads_out_the_pixel(qtbot, chapter, image):
    panel = chapter.channel_panels[1]
    hover(panel, 100.5, 40.5)
    text = chapter.readout_label.text()
    r, g, b = image.pixels[40, 100]
    assert "x&nbsp;<b>100</b>" in text and "y&nbsp;<b>40</b>" in text
    for value in (r, g, b):
        assert f"<b>{value}</b>" in text
    assert hex_colour((r, g, b)) in text

    chapter.split_combo.setCurrentIndex(SPLIT_INDEX["hsv"])  # the split's values join the read-out
    hue = rgb_to_hsv(image.pixels[40:41, 100:101])[0][0, 0]
    assert f"H&nbsp;<b>{hue}</b>" in chapter.readout_label.text()

    chapter.resolution_slider.setValue(FACTORS.index(8))  # the same spot now lies in cell (12, 5)
    text = chapter.readout_label.text()
    assert "x&nbsp;<b>12</b>" in text and "y&nbsp;<b>5</b>" in text and "of 64 × 64" in text
    assert hex_colour(downsample(image.pixels, 8)[5, 12]) in text

    hover(panel, -20.0, 40.0)  # beside the image
    assert "Hover" in chapter.readout_label.text()


def test_pixel_numbers_appear_only_when_zoomed_in(qtbot, chapter, image):
    numbers = chapter.numbers
    assert all(not n.texts() for n in numbers)

    chapter.composite_panel.view_box.setRange(xRange=(10, 16), yRange=(20, 24), padding=0)
    qtbot.waitUntil(lambda: bool(numbers[1].texts()))
    red = numbers[1]
    (x0, x1), (y0, y1) = red.view_box.viewRange()
    cols = range(int(np.ceil(x0 - 0.5)), int(np.floor(x1 - 0.5)) + 1)
    rows = range(int(np.ceil(y0 - 0.5)), int(np.floor(y1 - 0.5)) + 1)
    assert red.texts() == [str(image.pixels[y, x, 0]) for y in rows for x in cols]
    assert red.item.isVisible() and red.centres()[0] == (cols[0] + 0.5, rows[0] + 0.5)
    assert red.centres()[-1] == (cols[-1] + 0.5, rows[-1] + 0.5)
    y, x = rows[0], cols[0]
    assert numbers[0].texts()[0] == "\n".join(str(v) for v in image.pixels[y, x])
    assert red.shown == len(cols) * len(rows)
    view = chapter.composite_panel.view_box
    view.setRange(xRange=(x0 + 1, x1 + 1), yRange=(y0, y1), padding=0)  # pan one pixel right
    qtbot.waitUntil(lambda: red.texts()[0] == str(image.pixels[rows[0], cols[1], 0]))
    assert red.centres()[-1] == (cols[-1] + 1.5, rows[-1] + 0.5)  # a new column came in
    assert red.shown == len(cols) * len(rows)
    view.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
    qtbot.waitUntil(lambda: red.texts()[0] == str(image.pixels[rows[0], cols[0], 0]))

    chapter.resolution_slider.setValue(FACTORS.index(2))  # bigger cells, fewer numbers
    qtbot.waitUntil(lambda: len(red.texts()) < len(cols) * len(rows))
    small = downsample(image.pixels, 2)
    assert str(small[int(np.ceil(y0 / 2 - 0.5)), int(np.ceil(x0 / 2 - 0.5)), 0]) == red.texts()[0]
    assert red.centres()[0][0] % 2 == 1  # the centre of a 2×2 cell

    chapter.fit_view()
    qtbot.waitUntil(lambda: not red.texts())
    assert not red.item.isVisible() and red.shown == 0
    chapter.resolution_slider.setValue(0)
    chapter.composite_panel.view_box.setRange(xRange=(30, 36), yRange=(20, 24), padding=0)
    qtbot.waitUntil(lambda: bool(red.texts()))
    # One painting item per panel, however often the numbers come and go.
    items = red.view_box.addedItems + red.view_box.childGroup.childItems()
    assert sum(isinstance(item, type(red.item)) for item in items) == 1


def test_pixel_numbers_are_painted_in_their_cells(qtbot, chapter, image):
    chapter.composite_panel.view_box.setRange(xRange=(10, 16), yRange=(20, 24), padding=0)
    qtbot.waitUntil(lambda: bool(chapter.numbers[1].texts()))
    red = chapter.numbers[1]
    assert red.item.boundingRect() == red.cells_rect()
    (col0, row0), (col1, row1) = red.cells()[0][::-1], red.cells()[-1][::-1]
    assert red.cells_rect().getCoords() == (col0, row0, col1 + 1, row1 + 1)
    # Rendered, the panel differs from the bare image inside the cells: the numbers are drawn.
    panel = chapter.channel_panels[0]
    with_numbers = panel.graphics.grab().toImage()
    red.item.hide()
    without = panel.graphics.grab().toImage()
    red.item.show()
    assert with_numbers != without


def test_number_colour_follows_the_cell_brightness(qtbot):
    chapter = open_chapter(qtbot, solid_colours([(0, 0, 0), (255, 255, 255)], cell=4))
    chapter.composite_panel.view_box.setRange(xRange=(0, 8), yRange=(0, 4), padding=0)
    qtbot.waitUntil(lambda: bool(chapter.numbers[1].texts()))
    red = chapter.numbers[1]
    colours = dict(zip(red.texts(), red.colours()))
    assert colours == {"0": "#ffffff", "255": "#000000"}
    chapter.shutdown()


# --------------------------------------------------------------------------- window hooks


def test_set_image_shows_the_new_image(qtbot, chapter):
    chapter.resolution_slider.setValue(FACTORS.index(2))
    other = make_image(300, 200, seed=5, name="other.png")
    chapter.set_image(other)
    assert np.array_equal(shown(chapter.composite_panel), downsample(other.pixels, 2))
    assert "150 × 100 × 3" in chapter.facts_label.text()
    x, y = chapter.histogram.curves["B"].getData()
    assert y.sum() == 150 * 100


def test_settings_round_trip(qtbot, chapter, tmp_path):
    chapter.split_combo.setCurrentIndex(SPLIT_INDEX["ycbcr"])
    click(qtbot, chapter.tint_box)
    click(qtbot, chapter.channel_boxes[2])
    chapter.resolution_slider.setValue(FACTORS.index(8))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.beginGroup("chapters/pixels")
    chapter.save_settings(settings)
    settings.endGroup()
    settings.sync()

    again = open_chapter(qtbot, make_image())
    reread = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    reread.beginGroup("chapters/pixels")
    again.restore_settings(reread)
    assert again.split == "ycbcr" and again.tint_box.isChecked() and again.factor == 8
    assert [box.isChecked() for box in again.channel_boxes] == [True, True, False]
    assert np.array_equal(shown(again.composite_panel), shown(chapter.composite_panel))
    again.shutdown()


def test_restore_ignores_bad_values(qtbot, chapter, tmp_path):
    settings = QSettings(str(tmp_path / "bad.ini"), QSettings.Format.IniFormat)
    for key, value in (("split", "cmyk"), ("tinted", "perhaps"), ("channels", "XYZ"), ("factor", "seven")):
        settings.setValue(key, value)
    chapter.restore_settings(settings)
    assert chapter.split == "rgb" and not chapter.tint_box.isChecked() and chapter.factor == 1
    assert all(box.isChecked() for box in chapter.channel_boxes)


def test_export_job_steps_through_the_resolutions(qtbot, chapter, image):
    click(qtbot, chapter.channel_boxes[1])
    job = chapter.export_job()
    frames = list(job.iter_frames())
    assert job.count == len(frames) == len(FACTORS)
    assert all(frame.shape == image.pixels.shape and frame.dtype == np.uint8 for frame in frames)
    masked = image.pixels.copy()
    masked[..., 1] = 0
    assert np.array_equal(frames[0], masked)
    assert np.array_equal(frames[2][::4, ::4], downsample(masked, 4))
    assert job.params["image"] == "test.png" and job.params["factors"] == list(FACTORS)
    assert job.params["channels"] == "RB" and job.default_name == "test-resolutions"


def test_letter_keys_toggle_channels_tint_and_resolution(qtbot, chapter):
    chapter.activateWindow()
    chapter.split_combo.setFocus()
    qtbot.waitUntil(chapter.isActiveWindow)
    QTest.keyClick(chapter.split_combo, Qt.Key.Key_G)
    assert not chapter.channel_boxes[1].isChecked()
    QTest.keyClick(chapter.split_combo, Qt.Key.Key_T)
    assert chapter.tint_box.isChecked()
    QTest.keyClick(chapter.split_combo, Qt.Key.Key_BracketRight)
    assert chapter.factor == 2
    assert chapter.split == "rgb"  # the letters went to the shortcuts, not the combo box


def test_layout_renders_at_window_size(chapter, tmp_path):
    picture = chapter.grab()
    assert (picture.width(), picture.height()) == (1220, 800)
    for panel in chapter.panels:
        assert panel.graphics.width() > 300 and panel.graphics.height() > 200
    assert chapter.readout_label.isVisible() and chapter.facts_label.isVisible()


def test_importing_the_chapter_does_not_import_torch():
    code = "import sys, explorer.chapters.pixels; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def test_fitted_view_refits_when_the_split_changes_the_layout_but_a_hand_zoom_stays(qtbot, chapter):
    view = chapter.composite_panel.view_box
    chapter.split_combo.setCurrentIndex(SPLIT_INDEX["luma"])  # two tall panels instead of four
    qtbot.waitUntil(lambda: np.allclose(view.viewRange()[0], (0, 512), atol=0.5))  # fills the width

    centre = view.mapViewToScene(QPointF(256, 256))
    viewport = chapter.composite_panel.graphics.viewport()
    point = QPointF(chapter.composite_panel.graphics.mapFromScene(centre))
    wheel = QWheelEvent(
        point, viewport.mapToGlobal(point), QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(viewport, wheel)  # zoom in by hand
    (x0, x1), (y0, y1) = view.viewRange()
    assert x1 - x0 < 400
    units_per_px, centre = view.viewPixelSize()[0], ((x0 + x1) / 2, (y0 + y1) / 2)

    chapter.split_combo.setCurrentIndex(SPLIT_INDEX["rgb"])  # back to four smaller panels
    qtbot.waitUntil(lambda: chapter.channel_panels[1].isVisible())
    qtbot.wait(20)  # let the layout settle and any refit run
    (x0, x1), (y0, y1) = view.viewRange()
    assert np.isclose(view.viewPixelSize()[0], units_per_px, rtol=0.02)  # same zoom
    assert np.allclose(((x0 + x1) / 2, (y0 + y1) / 2), centre, atol=2)  # same centre
    assert all(np.allclose(panel.view_box.viewRange(), view.viewRange(), atol=1) for panel in chapter.panels)
