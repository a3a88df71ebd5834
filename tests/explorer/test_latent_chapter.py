"""The Latent space chapter: drive its real widgets and check the images, curves and files it makes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shiboken6
import torch
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtTest import QTest

from explorer.chapters.base import AppContext
from explorer.chapters.latent import LatentChapter
from explorer.chapters.common import upscale
from explorer.chapters.latent.backend import centre_drawing, grid_codes, latent_sample
from explorer.widgets.latent_map import CLASS_COLORS
from explorer.workers import WorkerPool
from models import autoencoder
from models.autoencoder import decode_latents, load_autoencoder, reconstruct_digits, save_autoencoder
from models.images import load_builtin

REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 20_000  # generous: the test machine may be busy


def destroy(chapter: LatentChapter) -> None:
    """Stop the chapter and delete its widgets now, while Python still holds their parts.

    Left to the garbage collector, a chapter's cycle may be freed in any order: a
    pyqtgraph item freed before its scene makes Qt call a pure virtual method.
    """
    chapter.shutdown()
    assert chapter.context.workers.stop_all()
    chapter.close()
    shiboken6.delete(chapter)


def make_chapter(pool: WorkerPool) -> LatentChapter:
    chapter = LatentChapter(AppContext(image=load_builtin("coffee"), workers=pool))
    chapter.train_tab.data_count, chapter.train_tab.batch_size = 256, 32  # tiny training runs
    chapter.resize(1230, 780)  # what the chapter gets in a 1400×860 window
    chapter.show()
    return chapter


@pytest.fixture(scope="module")
def shared(qapp):
    """One chapter for the tests that only look and pick (building one takes a second or two)."""
    chapter = make_chapter(WorkerPool())
    yield chapter
    destroy(chapter)


@pytest.fixture
def view(shared, qtbot):
    """The shared chapter, idle, on the Map tab."""
    shared.tabs.setCurrentIndex(shared.MAP_TAB)
    wait_idle(qtbot, shared)
    yield shared
    wait_idle(qtbot, shared)


@pytest.fixture
def chapter(qtbot):
    """A chapter of its own, for the tests that train or replace models."""
    chapter = make_chapter(WorkerPool())
    qtbot.waitExposed(chapter)
    wait_idle(qtbot, chapter)
    yield chapter
    destroy(chapter)


def wait_idle(qtbot, chapter: LatentChapter) -> None:
    qtbot.waitUntil(lambda: not chapter.busy, timeout=WAIT_MS)


def shown(panel) -> np.ndarray:
    return np.array(panel.image_item.image, copy=True)


def mouse_to(qtbot, latent_map, x: float, y: float) -> QPoint:
    return latent_map.viewport_position(x, y)


def test_importing_the_chapter_does_not_import_torch():
    code = (
        "import sys, explorer.chapters.latent, explorer.chapters as c;"
        "assert c.chapter_entry('latent').load().__name__ == 'LatentChapter';"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_diagram_shows_each_stage_shape_and_a_reconstruction(view, qtbot):
    view.tabs.setCurrentIndex(view.SIXTEEN_TAB)  # the diagram follows the tab's model
    assert view.diagram_combo.currentData() == "vae-16d"
    wait_idle(qtbot, view)
    texts = view.diagram.stage_texts()
    stages = view.shelf.model("vae-16d").stages()
    assert len(texts) == len(stages)
    assert any("latent z" in text and "16" in text for text in texts)
    assert "1×28×28" in texts[0] and "1×28×28" in texts[-1]
    parts = [box.property("part") for box in view.diagram.box_labels]
    assert parts[0] == "input" and parts[-1] == "output" and "latent" in parts
    assert parts.index("encoder") < parts.index("latent") < parts.index("decoder")
    assert view.diagram.output_label.pixmap() is not None and not view.diagram.output_label.pixmap().isNull()


def test_dragging_on_the_map_decodes_the_point_under_the_mouse(view, qtbot):
    latent_map = view.map_tab.maps["vae-2d"]
    panel = view.map_tab.panels["vae-2d"]
    viewport = latent_map.plot_widget.viewport()
    x0, x1, y0, y1 = latent_map.bounds()
    start = (x0 + 0.25 * (x1 - x0), y0 + 0.25 * (y1 - y0))
    end = (x0 + 0.75 * (x1 - x0), y0 + 0.7 * (y1 - y0))
    before = shown(panel)

    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, mouse_to(qtbot, latent_map, *start))
    for fraction in np.linspace(0.1, 1.0, 6):
        qtbot.wait(25)  # pyqtgraph drops mouse moves closer than 10 ms apart
        point = (start[0] + fraction * (end[0] - start[0]), start[1] + fraction * (end[1] - start[1]))
        QTest.mouseMove(viewport, mouse_to(qtbot, latent_map, *point))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, mouse_to(qtbot, latent_map, *end))
    wait_idle(qtbot, view)

    x, y = latent_map.marker_position()
    assert x == pytest.approx(end[0], abs=0.02 * (x1 - x0)) and y == pytest.approx(end[1], abs=0.02 * (y1 - y0))
    after = shown(panel)
    assert not np.array_equal(before, after)
    expected = decode_latents(view.shelf.model("vae-2d"), np.array([[x, y]], np.float32))[0]
    np.testing.assert_array_equal(after, expected)
    assert f"({x:.2f}, {y:.2f})" in view.map_tab.readouts["vae-2d"].text()


def test_a_click_on_the_autoencoder_map_decodes_there(view, qtbot):
    latent_map = view.map_tab.maps["ae-2d"]
    x0, x1, y0, y1 = latent_map.bounds()
    target = (x0 + 0.6 * (x1 - x0), y0 + 0.4 * (y1 - y0))
    with qtbot.waitSignal(view.map_tab.decoded, timeout=WAIT_MS, check_params_cb=lambda name: name == "ae-2d"):
        qtbot.mouseClick(latent_map.plot_widget.viewport(), Qt.MouseButton.LeftButton, pos=mouse_to(qtbot, latent_map, *target))
    x, y = latent_map.marker_position()
    assert (x, y) == pytest.approx(target, abs=0.02 * max(x1 - x0, y1 - y0))
    expected = decode_latents(view.shelf.model("ae-2d"), np.array([[x, y]], np.float32))[0]
    np.testing.assert_array_equal(shown(view.map_tab.panels["ae-2d"]), expected)


class TwoSureEvaluator:
    """Sees a 2 in anything, 90 % sure (stands in for the shipped evaluator)."""

    def digit_probabilities(self, images: np.ndarray) -> np.ndarray:
        probabilities = np.full((len(images), 11), 0.01)
        probabilities[:, 2] = 0.9
        return probabilities


def test_the_evaluator_says_what_a_decoded_point_looks_like(view, qtbot, monkeypatch):
    monkeypatch.setattr(view.map_tab, "evaluator", TwoSureEvaluator())
    view.map_tab.decode_at("vae-2d", 0.25, -0.5)
    wait_idle(qtbot, view)
    text = view.map_tab.readouts["vae-2d"].text()
    assert "(0.25, -0.50)" in text and "a 2 (90% sure)" in text


def test_keys_work_on_their_own_tab(view, qtbot):
    view.window().activateWindow()
    view.map_tab.maps["ae-2d"].plot_widget.setFocus()
    grid = view.map_tab.grid_check.isChecked()
    qtbot.keyClick(view.map_tab.maps["ae-2d"].plot_widget, Qt.Key.Key_G)
    assert view.map_tab.grid_check.isChecked() != grid
    seed = view.sixteen_tab.seed_spin.value()
    qtbot.keyClick(view.map_tab.maps["ae-2d"].plot_widget, Qt.Key.Key_R)  # R samples on the 16-D tab only
    assert view.sixteen_tab.seed_spin.value() == seed
    view.tabs.setCurrentIndex(view.SIXTEEN_TAB)
    view.sixteen_tab.z_panel.graphics.setFocus()
    qtbot.keyClick(view.sixteen_tab.z_panel.graphics, Qt.Key.Key_R)
    assert view.sixteen_tab.seed_spin.value() == seed + 1
    view.tabs.setCurrentIndex(view.INTERPOLATE_TAB)
    view.interpolate_tab.strip_panels["linear"].graphics.setFocus()
    pairs = set()
    for _ in range(3):
        qtbot.keyClick(view.interpolate_tab.strip_panels["linear"].graphics, Qt.Key.Key_P)
        pairs.add(view.interpolate_tab.pair())
    assert len(pairs) > 1
    wait_idle(qtbot, view)


def test_the_maps_place_each_digit_at_its_code_and_the_grid_decodes_the_whole_map(view, qtbot):
    model = view.shelf.model("ae-2d")
    latent_map = view.map_tab.maps["ae-2d"]
    codes = autoencoder.encode_digits(model, view.digits.images)
    xs, ys = latent_map.scatter.getData()
    np.testing.assert_allclose(np.c_[xs, ys], codes, rtol=1e-5, atol=1e-5)
    colours = [spot.brush().color().name() for spot in latent_map.scatter.points()]
    assert colours == [CLASS_COLORS[label] for label in view.digits.labels]

    view.map_tab.grid_check.setChecked(False)
    assert not latent_map.grid_item.isVisible()
    view.map_tab.grid_side_spin.setValue(6)
    view.map_tab.grid_check.setChecked(True)
    wait_idle(qtbot, view)
    assert latent_map.grid_item.isVisible()
    mosaic = latent_map.grid_item.image[::-1]  # stored bottom row first: y grows upwards
    assert mosaic.shape == (6 * 28, 6 * 28)
    tiles = decode_latents(model, grid_codes(latent_map.bounds(), 6))
    np.testing.assert_array_equal(mosaic[:28, :28], tiles[0])  # top left: lowest z₁, highest z₂
    np.testing.assert_array_equal(mosaic[-28:, -28:], tiles[-1])
    rect = latent_map.grid_item.mapRectToParent(latent_map.grid_item.boundingRect())
    x0, x1, y0, y1 = latent_map.bounds()
    assert (rect.left(), rect.right(), rect.top(), rect.bottom()) == pytest.approx((x0, x1, y0, y1), rel=1e-6)


def test_a_16d_slider_changes_the_decoded_image(view, qtbot):
    tab = view.sixteen_tab
    tab.zero_button.click()
    wait_idle(qtbot, view)
    before = shown(tab.z_panel)
    tab.sliders[2].setValue(2.5)
    wait_idle(qtbot, view)
    after = shown(tab.z_panel)
    assert not np.array_equal(before, after)
    z = np.zeros(16)
    z[2] = 2.5
    np.testing.assert_array_equal(after, decode_latents(view.shelf.model("vae-16d"), z[None])[0])


def test_a_random_sample_with_a_fixed_seed_is_reproducible(view, qtbot):
    tab = view.sixteen_tab
    tab.seed_spin.setValue(41)
    tab.random_sample()  # the next seed: 42
    wait_idle(qtbot, view)
    assert tab.seed_spin.value() == 42
    first_z, first_image = tab.z(), shown(tab.z_panel)
    np.testing.assert_allclose(first_z, np.clip(latent_sample(42, 16), -3, 3), atol=0.006)  # slider steps of 0.01
    tab.random_sample()
    wait_idle(qtbot, view)
    assert not np.array_equal(shown(tab.z_panel), first_image)
    tab.seed_spin.setValue(42)
    wait_idle(qtbot, view)
    np.testing.assert_array_equal(tab.z(), first_z)
    np.testing.assert_array_equal(shown(tab.z_panel), first_image)


def test_similar_images_spread_with_sigma_and_are_the_mean_decode_at_zero(view, qtbot):
    tab = view.sixteen_tab
    tab.pick_digit(3)
    tab.sigma_slider.setValue(0.0)
    wait_idle(qtbot, view)
    model = view.shelf.model("vae-16d")
    mean_decode = reconstruct_digits(model, view.digits.images[3:4])[0]
    np.testing.assert_array_equal(tab.mean_image, mean_decode)
    assert all(np.array_equal(image, mean_decode) for image in tab.variations)

    spreads = []
    for sigma in (0.3, 1.5):
        tab.sigma_slider.setValue(sigma)
        wait_idle(qtbot, view)
        spreads.append(np.abs(tab.variations.astype(float) - mean_decode).mean())
        assert tab.variations.std(axis=0).mean() > 0  # the variations differ from each other
    assert 0 < spreads[0] < spreads[1]
    assert f"{1.5:.2f}" in tab.variations_panel.title_label.text()


def test_a_digit_drawn_with_the_mouse_becomes_the_source(view, qtbot):
    tab = view.sixteen_tab
    view.tabs.setCurrentIndex(view.SIXTEEN_TAB)
    tab.pick_digit(2)
    canvas = tab.canvas
    points = [QPoint(canvas.width() // 2, int(canvas.height() * f)) for f in (0.2, 0.4, 0.6, 0.8)]
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=points[0])
    for point in points[1:]:
        qtbot.mouseMove(canvas, point)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=points[-1])
    wait_idle(qtbot, view)
    assert not canvas.is_empty()
    assert tab.picker_group.checkedId() == -1
    np.testing.assert_array_equal(shown(tab.source_panel), centre_drawing(canvas.image()))
    assert shown(tab.source_panel)[:, 12:16].sum() > shown(tab.source_panel)[:, :4].sum()  # a vertical stroke, centred

    tab.clear_button.click()
    wait_idle(qtbot, view)
    assert tab.picker_group.checkedId() == 2  # back to the digit picked before drawing
    np.testing.assert_array_equal(shown(tab.source_panel), view.digits.images[2])


def test_the_walk_ends_at_the_two_digits_reconstructions(view, qtbot):
    tab = view.interpolate_tab
    view.tabs.setCurrentIndex(view.INTERPOLATE_TAB)
    tab.set_pair(5, 17)
    tab.frames_spin.setValue(7)
    wait_idle(qtbot, view)
    model = view.shelf.model(tab.model_name())
    ends = reconstruct_digits(model, view.digits.images[[5, 17]])
    for mode in ("linear", "spherical"):
        frames = tab.walks.frames[mode]
        assert frames.shape == (7, 28, 28)
        assert np.abs(frames[0].astype(int) - ends[0]).mean() < 1.0
        assert np.abs(frames[-1].astype(int) - ends[1]).mean() < 1.0
        assert np.abs(frames[3].astype(int) - ends[0]).mean() > 1.0  # the middle is neither end
    assert tab.pair() == (5, 17)
    assert shown(tab.strip_panels["linear"]).shape == (28, 7 * 28 + 6 * 2)
    lengths = tab.walks.lengths
    assert lengths["linear"][50] < lengths["spherical"][50]  # a straight line cuts through the middle


def test_export_gives_the_chosen_walk_upscaled_with_its_parameters(view, qtbot):
    tab = view.interpolate_tab
    tab.set_pair(2, 9)
    tab.frames_spin.setValue(5)
    tab.mode_buttons["linear"].setChecked(True)
    wait_idle(qtbot, view)
    job = view.export_job()
    frames = list(job.iter_frames())
    assert job.count == len(frames) == 5
    assert frames[0].shape == (224, 224, 3) and frames[0].dtype == np.uint8
    for frame, small in zip(frames, tab.walks.frames["linear"]):
        np.testing.assert_array_equal(frame, upscale(small, 8))
    assert job.params["weights"] == tab.model_name()
    assert job.params["mode"] == "linear" and job.params["frames"] == 5
    assert job.params["digits"] == [2, 9] and job.params["seed"] == view.digits.seed
    json.dumps(job.params)  # what the export writes beside the frames


def test_a_few_training_steps_lower_the_loss_and_the_model_replaces_the_shipped_one(chapter, qtbot, tmp_path):
    tab = chapter.train_tab
    chapter.tabs.setCurrentIndex(chapter.TRAIN_TAB)
    tab.kind_buttons["vae"].setChecked(True)
    tab.latent_combo.setCurrentIndex(tab.latent_combo.findData(2))
    tab.steps_spin.setValue(30)
    shipped = chapter.shelf.model("vae-2d")
    tab.start_button.click()
    assert tab.running and not tab.start_button.isEnabled()
    qtbot.waitUntil(lambda: not tab.running, timeout=60_000)

    session = tab.session
    assert session.step == 30 and tab.progress.value() == 30
    recon = session.losses["recon"]
    assert session.steps[-1] == 30 and len(recon) == len(session.steps)
    trained = chapter.shelf.model("vae-2d")
    assert trained is not shipped and "trained here (30 steps)" in chapter.shelf.slots["vae-2d"].origin
    # Lower than where the same run began: the untrained model of the same seed.
    batch = autoencoder.to_tensor(chapter.digits.images[:200])
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        untrained = autoencoder.Autoencoder(session.config)
        before = autoencoder.autoencoder_loss(untrained.eval(), batch)["recon"].item()
        after = autoencoder.autoencoder_loss(trained.eval(), batch)["recon"].item()
    assert after < before
    assert recon[-1] < before
    wait_idle(qtbot, chapter)
    assert "trained here" in chapter.map_tab.maps["vae-2d"].title_label.text()
    assert not np.array_equal(shown(tab.preview_panel)[29:], np.zeros_like(shown(tab.preview_panel)[29:]))

    written = tab.save(tmp_path / "mine")
    assert written == tmp_path / "mine.safetensors" and written.is_file()
    loaded, meta = load_autoencoder(written)
    assert meta["card"]["steps"] == 30
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)

    chapter.restore_shipped()
    wait_idle(qtbot, chapter)
    assert chapter.shelf.model("vae-2d") is shipped
    assert chapter.load_weights(written)
    assert "loaded from mine.safetensors" in chapter.shelf.slots["vae-2d"].origin
    wait_idle(qtbot, chapter)


def test_stopping_training_is_clean_and_resume_goes_on_counting(chapter, qtbot):
    tab = chapter.train_tab
    tab.kind_buttons["ae"].setChecked(True)
    tab.steps_spin.setValue(100_000)
    tab.start()
    qtbot.waitUntil(lambda: len(tab.session.steps) > 0, timeout=60_000)  # a first snapshot
    tab.stop_button.click()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    wait_idle(qtbot, chapter)  # the views redraw with the new model
    assert chapter.context.workers.active() == []
    first = tab.session.step
    assert 0 < first < 100_000
    assert chapter.shelf.slots["ae-2d"].origin == f"trained here ({first} steps)"
    assert tab.resume_button.isEnabled()
    seen = len(tab.session.steps)

    tab.resume_button.click()
    qtbot.waitUntil(lambda: len(tab.session.steps) > seen, timeout=WAIT_MS)
    assert tab.session.steps[seen] > first  # the count goes on from where it stopped
    tab.stop()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    assert tab.session.step > first
    assert tab.progress.maximum() == 100_000 and tab.progress.value() == tab.session.step
    wait_idle(qtbot, chapter)


def test_a_diverging_run_says_so_and_keeps_the_model_in_use(chapter, qtbot, monkeypatch):
    def nan_loss(model, batch):
        losses = autoencoder_loss(model, batch)
        return {**losses, "loss": losses["loss"] * float("nan")}

    autoencoder_loss = autoencoder.autoencoder_loss
    monkeypatch.setattr(autoencoder, "autoencoder_loss", nan_loss)
    shipped = chapter.shelf.model("vae-2d")
    errors = []
    chapter.context.workers.errorOccurred.connect(errors.append)
    chapter.train_tab.steps_spin.setValue(20)
    chapter.train_tab.start()
    qtbot.waitUntil(lambda: not chapter.train_tab.running, timeout=60_000)
    assert chapter.shelf.model("vae-2d") is shipped
    assert "Training stopped" in chapter.train_tab.status.text() and "nan" in chapter.train_tab.status.text()
    assert len(errors) == 1 and "DivergedError" in errors[0]
    assert not chapter.train_tab.resume_button.isEnabled()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "mismatched", "missing config"])
def test_a_bad_weights_file_leaves_the_shipped_model_in_use(view, qtbot, tmp_path, damage):
    target = save_autoencoder(view.shelf.model("vae-2d"), tmp_path / "user")
    if damage == "garbage":
        target.write_bytes(b"this is not a safetensors file at all")
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "mismatched":
        other = save_autoencoder(view.shelf.model("vae-16d"), tmp_path / "other")
        shutil.copy(other, target)  # 16-D tensors, a 2-D config
    else:
        target.with_suffix(".json").unlink()
    messages = []
    view.statusMessage.connect(messages.append)
    slots = dict(view.shelf.slots)
    assert not view.load_weights(target)
    assert view.shelf.slots == slots
    assert len(messages) == 1 and "user.safetensors" in messages[0] and "unchanged" in messages[0]
    assert "shipped" in view.slots_label.text() and not view.restore_button.isEnabled()


def test_settings_round_trip(view, qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    view.tabs.setCurrentIndex(view.INTERPOLATE_TAB)
    view.map_tab.grid_check.setChecked(True)
    view.map_tab.grid_side_spin.setValue(9)
    view.sixteen_tab.seed_spin.setValue(7)
    view.sixteen_tab.sliders[0].setValue(1.25)
    view.sixteen_tab.sigma_slider.setValue(0.8)
    view.sixteen_tab.pick_digit(5)
    view.interpolate_tab.set_pair(11, 12)
    view.interpolate_tab.mode_buttons["linear"].setChecked(True)
    view.interpolate_tab.frames_spin.setValue(14)
    view.train_tab.kind_buttons["ae"].setChecked(True)
    view.train_tab.latent_combo.setCurrentIndex(1)
    view.train_tab.steps_spin.setValue(321)
    view.next_diagram_digit()
    wait_idle(qtbot, view)
    view.save_settings(settings)
    settings.sync()

    other = LatentChapter(AppContext(image=load_builtin("coffee"), workers=view.context.workers))
    other.restore_settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    try:
        assert other.tabs.currentIndex() == view.INTERPOLATE_TAB
        assert other.map_tab.grid_check.isChecked() and other.map_tab.grid_side_spin.value() == 9
        assert other.sixteen_tab.seed_spin.value() == 7
        np.testing.assert_allclose(other.sixteen_tab.z(), view.sixteen_tab.z(), atol=1e-4)
        assert other.sixteen_tab.sigma_slider.value() == pytest.approx(0.8)
        assert other.sixteen_tab.picker_group.checkedId() == 5
        assert other.interpolate_tab.pair() == (11, 12)
        assert other.interpolate_tab.mode == "linear" and other.interpolate_tab.frames_spin.value() == 14
        assert other.train_tab.kind_buttons["ae"].isChecked()
        assert other.train_tab.latent_combo.currentData() == 16 and other.train_tab.steps_spin.value() == 321
        assert other.diagram_index == 1
        wait_idle(qtbot, other)
    finally:
        destroy(other)


def test_garbled_settings_are_ignored(view, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    for key, value in {"tab": "9", "z": "1,2,nope", "seed": "-5", "pair": "1", "mode": "zigzag", "grid": "maybe"}.items():
        settings.setValue(key, value)
    before = (view.sixteen_tab.seed_spin.value(), view.sixteen_tab.z(), view.interpolate_tab.pair(), view.interpolate_tab.mode)
    view.restore_settings(settings)
    assert view.tabs.currentIndex() == view.MAP_TAB
    after = (view.sixteen_tab.seed_spin.value(), view.sixteen_tab.z(), view.interpolate_tab.pair(), view.interpolate_tab.mode)
    assert after[0] == before[0] and np.array_equal(after[1], before[1]) and after[2:] == before[2:]


def test_the_chapter_fits_a_laptop_screen(view):
    assert view.minimumSizeHint().width() <= 1100
    assert view.minimumSizeHint().height() <= 760


def test_the_digit_hint_follows_the_latent_size_and_matches_the_recipes(chapter):
    from explorer.chapters.latent.train_tab import LABEL_WEIGHT_2D
    from models.autoencoder import LABEL_WEIGHT_2D as RECIPE_LABEL_WEIGHT

    assert LABEL_WEIGHT_2D == RECIPE_LABEL_WEIGHT
    tab = chapter.train_tab
    tab.latent_combo.setCurrentIndex(tab.latent_combo.findData(16))
    assert tab.label_spin.value() == 0 and tab.config().label_weight == 0
    tab.latent_combo.setCurrentIndex(tab.latent_combo.findData(2))
    assert tab.config().label_weight == LABEL_WEIGHT_2D
