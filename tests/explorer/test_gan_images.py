"""The GAN chapter's Images tab: train a tiny DCGAN live and check what the views, the trainer and the export hold."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shiboken6
import torch
from PIL import Image
from PySide6.QtCore import QSettings, Qt

from explorer.chapters.gan.images_tab import (
    BATCH_SIZES,
    EXPORT_SCALE,
    GRID_GAP,
    GRID_SIDE,
    LOSS_NAMES,
    ImagesTab,
    coverage_shares,
)
from explorer.export import export_frames, params_path
from explorer.workers import WorkerPool
from models import gan
from models.device import set_torch_threads

REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 60_000  # generous: the test machine may be busy
DATA_COUNT, BATCH = 64, 16  # tiny training runs
GRID_PIXELS = GRID_SIDE * 28 + (GRID_SIDE - 1) * GRID_GAP


def destroy(widget) -> None:
    """Stop the tab's work and delete its widgets now (see tests/explorer/test_latent_chapter.py)."""
    widget.shutdown()
    pool = widget.pool if isinstance(widget, ImagesTab) else widget.context.workers
    assert pool.stop_all()
    widget.close()
    if isinstance(widget, ImagesTab):
        shiboken6.delete(widget.controls)  # on its own, outside a chapter's left column
    shiboken6.delete(widget)


@pytest.fixture
def tab(qtbot):
    """An Images tab of its own, tiny data and batches, shown and current."""
    set_torch_threads(leave_for_gui=1)  # as the chapter does
    tab = ImagesTab(WorkerPool(), torch.device("cpu"))
    tab.data_count, tab.coverage_samples = DATA_COUNT, 64
    tab.batch_combo.setCurrentIndex(BATCH_SIZES.index(BATCH))
    tab.messages = []
    tab.message.connect(tab.messages.append)
    tab.resize(900, 700)
    tab.show()
    qtbot.waitExposed(tab)
    yield tab
    destroy(tab)


def train_until(qtbot, tab: ImagesTab, step: int) -> None:
    """Wait until the tab has shown a snapshot of ``step`` or later."""
    qtbot.waitUntil(lambda: tab._latest is not None and tab._latest.step >= step, timeout=WAIT_MS)


def stop(qtbot, tab: ImagesTab) -> None:
    tab.stop()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)


def test_importing_the_tab_does_not_import_torch():
    code = "import sys, explorer.chapters.gan.images_tab, explorer.widgets.gan_images_coverage; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_losses_and_batch_sizes_are_the_backends():
    assert tuple(LOSS_NAMES) == gan.LOSSES
    assert set(BATCH_SIZES) >= {gan.GANHyper().batch_size}


def test_coverage_shares_reads_the_backends_answer():
    shares = np.zeros(11)
    shares[[1, 7, 10]] = [0.5, 0.25, 0.25]
    assert np.allclose(coverage_shares(shares), shares)
    assert np.allclose(coverage_shares(np.full(10, 0.05)), np.append(np.full(10, 0.05), 0.5))


def test_training_updates_grid_curves_histogram_and_coverage(tab, qtbot):
    before = tab.grid_panel.image().copy()
    tab.start()
    assert tab.running and not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
    train_until(qtbot, tab, 2)
    qtbot.waitUntil(lambda: len(tab.session.coverage_steps) > 0, timeout=WAIT_MS)  # measured at the first snapshot
    first = tab.grid_panel.image().copy()
    assert first.shape == (GRID_PIXELS, GRID_PIXELS)
    assert not np.array_equal(first, before)  # samples of the fixed noise replaced the blank (or shipped) grid
    step = tab.session.step
    train_until(qtbot, tab, step + 3)
    qtbot.waitUntil(lambda: not np.array_equal(tab.grid_panel.image(), first), timeout=WAIT_MS)  # G changed: pixels move
    stop(qtbot, tab)

    x, y = tab.curves.curves["d_loss"].getData()
    assert len(x) >= 2 and np.all(np.isfinite(y)) and x[-1] == tab.session.steps[-1] == tab._latest.step
    assert len(tab.curves.curves["g_loss"].getData()[0]) == len(x)
    real_x, real_y = tab.probabilities.real_curve.getData()
    assert len(real_x) == len(x) and np.all((real_y >= 0) & (real_y <= 1))
    assert set(tab.histogram.curves) == {"real", "fake"}
    assert all(curve.isVisible() for curve in tab.histogram.curves.values())
    _, counts = tab.histogram.curves["fake"].getData()
    assert counts.sum() == pytest.approx(1.0)  # shares of the last batch
    steps, line = tab.coverage.count_curve.getData()
    assert len(steps) >= 2 and np.all((line >= 0) & (line <= 1.0))
    assert all(share.shape == (11,) and share.sum() == pytest.approx(1.0) for share in tab.session.coverage_shares)
    assert "Step" in tab.progress.text() and "steps/s" in tab.progress.text()
    assert "Stopped at step" in tab.status.text()


def test_stop_then_resume_continues_the_step_count(tab, qtbot):
    tab.start()
    train_until(qtbot, tab, 2)
    stop(qtbot, tab)
    trainer, stopped_at = tab.session.trainer, tab._latest.step
    weights = [p.detach().clone() for p in trainer.model.generator.parameters()]
    assert tab.resume_button.isEnabled()
    tab.toggle()  # Space: resume
    assert tab.running
    train_until(qtbot, tab, stopped_at + 2)
    stop(qtbot, tab)
    assert tab.session.trainer is trainer  # the same networks went on
    steps = tab.session.steps
    assert steps == sorted(steps) and steps[-1] >= stopped_at + 2 and stopped_at in steps
    assert any(not torch.equal(a, b) for a, b in zip(weights, trainer.model.generator.parameters()))
    tab.toggle()  # Space again: resume once more
    assert tab.running
    tab.toggle()  # and stop
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)


def test_reset_while_training_forgets_the_run(tab, qtbot):
    tab.start()
    train_until(qtbot, tab, 1)
    tab.reset()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    assert tab.session is None and tab.export_job() is None and not tab.resume_button.isEnabled()
    assert len(tab.curves.curves["d_loss"].getData()[0] or []) == 0
    assert np.array_equal(tab.grid_panel.image(), tab._blank_grid())  # blank again (the tab is not current: no preview)
    tab.start()  # and a new run starts from step 0
    train_until(qtbot, tab, 1)
    stop(qtbot, tab)
    assert tab.session.steps[0] <= tab.session.steps[-1] and tab.frame_steps[0] == 0


def test_space_is_only_live_while_the_tab_is_current(tab):
    assert not tab.space.isEnabled()
    tab.set_active(True)
    assert tab.space.isEnabled()
    tab.set_active(False)
    assert not tab.space.isEnabled()


def test_hyper_parameters_changed_while_training_reach_the_trainer(tab, qtbot):
    tab.start()
    train_until(qtbot, tab, 1)
    trainer = tab.session.trainer
    tab.lr_d_spin.setValue(1e-3)
    tab.lr_g_spin.setValue(5e-4)
    tab.loss_combo.setCurrentIndex(tab.loss_combo.findData("hinge"))
    tab.d_steps_spin.setValue(2)
    tab.batch_combo.setCurrentIndex(BATCH_SIZES.index(32))
    hyper = trainer.hyper
    assert (hyper.lr_d, hyper.lr_g, hyper.loss, hyper.d_steps, hyper.batch_size) == (1e-3, 5e-4, "hinge", 2, 32)
    step, d_updates = trainer.step, trainer.d_updates
    train_until(qtbot, tab, step + 4)
    stop(qtbot, tab)
    # The running trainer used them: its optimisers hold the new rates, D now steps twice per G step.
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert trainer.d_updates - d_updates >= 2 * (trainer.step - step) - 1
    assert len(trainer.last_real_scores) == 32


def test_divergence_pauses_with_an_explanation_and_the_app_goes_on(tab, qtbot):
    tab.start()
    train_until(qtbot, tab, 1)
    qtbot.waitUntil(lambda: tab.samples is not None, timeout=WAIT_MS)
    tab.session.trainer.hyper.lr_g = math.inf  # injected through the trainer's live hyper-parameters
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    assert tab.banner.isVisible() and "diverged" in tab.banner_label.text()
    assert "learning rate" in tab.banner_label.text()
    assert [m for m in tab.messages if "diverged" in m] == tab.messages[-1:]  # one message
    assert tab.resume_button.isEnabled() and tab.start_button.isEnabled()
    shown = tab.grid_panel.image()
    assert np.array_equal(shown, tab._mosaic(tab.samples)) and shown.std() > 0  # the last good samples stay
    assert all(bool(torch.isfinite(p).all()) for p in tab.session.trainer.model.parameters())

    # Resume: the form's learning rate replaces the bad one, and training goes on.
    paused_at = tab.session.trainer.step
    tab.resume()
    assert not tab.banner.isVisible() and tab.session.trainer.hyper.lr_g == tab.lr_g_spin.value()
    train_until(qtbot, tab, paused_at + 1)
    stop(qtbot, tab)

    # Reset, then train again: a NaN weight this time.
    tab.banner_reset.click()
    assert not tab.banner.isVisible() and tab.session is None
    tab.start()
    train_until(qtbot, tab, 1)
    stop(qtbot, tab)  # (not while a step uses the weight)
    with torch.no_grad():
        next(tab.session.trainer.model.discriminator.parameters()).fill_(math.nan)
    tab.resume()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    assert tab.banner.isVisible() and "diverged" in tab.banner_label.text()
    assert tab.messages[-1].startswith("GAN training diverged")


def test_export_job_holds_the_captured_timelapse(tab, qtbot, tmp_path):
    assert tab.export_job() is None  # nothing trained yet
    tab.capture_every = 1
    tab.start()
    qtbot.waitUntil(lambda: len(tab.frame_steps) >= 3, timeout=WAIT_MS)
    stop(qtbot, tab)
    assert tab.frame_steps[0] == 0  # the untrained generator's samples come first
    job = tab.export_job()
    frames = list(job.iter_frames())
    assert job.count == len(frames) == len(tab.frame_steps) >= 2
    side = GRID_PIXELS * EXPORT_SCALE
    assert all(f.shape == (side, side, 3) and f.dtype == np.uint8 for f in frames)
    assert tab.frame_steps[-1] == tab._latest.step  # the last samples shown are in
    assert not np.array_equal(frames[0], frames[-1])
    params = job.params
    assert params["data"] == "digits" and params["steps"] == tab.session.step and params["seed"] == 0
    assert params["hyper"]["batch_size"] == BATCH and params["hyper"]["loss"] == "non-saturating"

    out = export_frames(job.iter_frames(), tmp_path / "timelapse.gif", job.params)  # as File → Export sequence
    with Image.open(out) as gif:
        assert gif.n_frames == job.count and gif.size == (side, side)
    written = json.loads(params_path(out).read_text())
    assert written["steps"] == tab.session.step and written["data"] == "digits"


def test_the_timelapse_keeps_at_most_max_frames(tab):
    tab.max_frames = 10
    tab.samples = np.zeros((64, 28, 28), np.uint8)
    for step in range(2000):  # as _on_snapshot decides
        if not tab.frame_steps or step - tab.frame_steps[-1] >= tab.capture_every:
            tab._capture(step)
    assert len(tab.frames) <= 10 and len(tab.frames) == len(tab.frame_steps)
    assert tab.capture_every > 20 and tab.frame_steps[0] == 0  # thinned evenly, the start kept


def test_a_bad_folder_gives_one_message(tab, qtbot, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    tab.set_folder(str(tmp_path))
    qtbot.waitUntil(lambda: len(tab.messages) > 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not tab.busy, timeout=WAIT_MS)
    assert len(tab.messages) == 1 and "Cannot use the folder" in tab.messages[0]
    assert tab.folder_images is None and "no usable images" in tab.folder_label.text()
    tab.source_combo.setCurrentIndex(tab.source_combo.findData("folder"))
    tab.start()
    assert not tab.running and "Choose a folder" in tab.messages[-1]


def test_training_on_a_folder_of_images(tab, qtbot, tmp_path):
    for i in range(5):
        Image.fromarray(np.full((40, 50, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    tab.set_folder(str(tmp_path))
    qtbot.waitUntil(lambda: tab.folder_images is not None, timeout=WAIT_MS)
    assert tab.folder_images.shape == (5, 28, 28) and tab.source == "folder"
    tab.start()
    train_until(qtbot, tab, 1)
    stop(qtbot, tab)
    assert tab.session.trainer.hyper.batch_size == 5  # 16 asked; only 5 images
    assert not tab.session.coverage_steps  # coverage is for digits only


def test_training_on_shapes_says_coverage_is_for_digits(tab, qtbot):
    tab.source_combo.setCurrentIndex(tab.source_combo.findData("shapes"))
    tab.start()
    train_until(qtbot, tab, 2)
    stop(qtbot, tab)
    assert tab.session.source == "shapes" and tab.session.trainer.images.shape == (DATA_COUNT, 28, 28)
    assert not tab.session.coverage_steps and "digits only" in tab.coverage.note.toPlainText()
    assert tab.export_job().params["data"] == "shapes"


def test_from_shipped_without_the_weights_says_so_and_trains_from_scratch(tab, qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(gan, "shipped_path", lambda name="dcgan-digits": tmp_path / "missing.safetensors")
    tab.shipped_radio.setChecked(True)
    tab.start()
    train_until(qtbot, tab, 1)
    stop(qtbot, tab)
    assert tab.session.origin == "random weights"
    assert any("could not be loaded" in m for m in tab.messages)


def test_from_shipped_shows_and_trains_the_shipped_pair(tab, qtbot, monkeypatch, tmp_path):
    model = gan.DCGAN(gan.DCGANConfig(), seed=3)
    path = gan.save_dcgan(model, tmp_path / "dcgan-digits.safetensors", {"description": "a stand-in"})
    monkeypatch.setattr(gan, "shipped_path", lambda name="dcgan-digits": path)
    tab.seed_spin.setValue(5)
    tab.set_active(True)  # shows the shipped samples of the fixed noise
    qtbot.waitUntil(lambda: not tab.busy and tab.grid_panel.image().std() > 0, timeout=WAIT_MS)
    expected = gan.generate(model, gan.fixed_noise(64, model.config.latent_dim, 5))
    assert np.array_equal(tab.grid_panel.image(), tab._mosaic(expected))
    assert "shipped generator" in tab.status.text()
    tab.shipped_radio.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: tab.session.trainer is not None, timeout=WAIT_MS)
    stop(qtbot, tab)
    trainer = tab.session.trainer
    assert tab.session.origin == "the shipped pair"
    # It started from those weights: each Adam update moves a weight by about the learning rate at most.
    reach = 2e-4 * 1.5 * (trainer.d_updates + 1)
    shipped = dict(model.named_parameters())
    assert all((p.detach() - shipped[name]).abs().max() <= reach for name, p in trainer.model.named_parameters())


def test_the_shipped_pair_covers_most_digit_classes(tab, qtbot):
    tab.shipped_radio.setChecked(True)
    tab.coverage_samples = 256
    tab.start()
    qtbot.waitUntil(lambda: tab.session is not None and len(tab.session.coverage_steps) > 0, timeout=WAIT_MS)
    stop(qtbot, tab)
    assert tab.session.origin == "the shipped pair"
    # The shipped generator makes most digits: the first coverage point shows them.
    assert tab.session.coverage_counts[0] >= 8
    assert tab.session.coverage_shares[0][10] < 0.6


def test_settings_round_trip(tab, qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    tab.lr_d_spin.setValue(4e-4)
    tab.lr_g_spin.setValue(1e-4)
    tab.loss_combo.setCurrentIndex(tab.loss_combo.findData("least-squares"))
    tab.d_steps_spin.setValue(3)
    tab.seed_spin.setValue(7)
    tab.shipped_radio.setChecked(True)
    tab.source_combo.setCurrentIndex(tab.source_combo.findData("shapes"))
    tab.save_settings(settings)
    settings.sync()
    other = ImagesTab(tab.pool, torch.device("cpu"))
    try:
        other.restore_settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
        assert other.lr_d_spin.value() == pytest.approx(4e-4) and other.lr_g_spin.value() == pytest.approx(1e-4)
        assert other.loss_combo.currentData() == "least-squares" and other.d_steps_spin.value() == 3
        assert other.batch_combo.currentData() == BATCH and other.seed_spin.value() == 7
        assert other.shipped_radio.isChecked() and other.source == "shapes"
        garbled = QSettings(str(tmp_path / "garbled.ini"), QSettings.Format.IniFormat)
        for key, value in {"images_lr_d": "fast", "images_loss": "zigzag", "images_batch": "7", "images_source": "moon"}.items():
            garbled.setValue(key, value)
        other.restore_settings(garbled)
        assert other.lr_d_spin.value() == pytest.approx(4e-4) and other.loss_combo.currentData() == "least-squares"
        assert other.batch_combo.currentData() == BATCH and other.source == "shapes"
    finally:
        destroy(other)


def test_closing_the_chapter_during_training_is_clean(qtbot):
    from explorer.chapters.base import AppContext
    from explorer.chapters.gan.chapter import GanChapter
    from models.images import load_builtin

    chapter = GanChapter(AppContext(image=load_builtin("coffee"), workers=WorkerPool()))
    try:
        chapter.resize(1230, 780)
        chapter.show()
        chapter.tabs.setCurrentIndex(chapter.IMAGES_TAB)
        tab = chapter.images_tab
        assert tab.space.isEnabled()
        tab.data_count = DATA_COUNT
        tab.batch_combo.setCurrentIndex(BATCH_SIZES.index(BATCH))
        with qtbot.waitActive(chapter):
            chapter.activateWindow()
        qtbot.keyClick(chapter, Qt.Key.Key_Space)  # starts a run
        assert tab.running
        train_until(qtbot, tab, 1)
        # Behind the other tab the run goes on undrawn; shown again, the tab catches up.
        chapter.tabs.setCurrentIndex(chapter.POINTS_TAB)
        drawn = len(tab.curves.curves["d_loss"].getData()[0])
        train_until(qtbot, tab, tab._latest.step + 2)
        assert len(tab.curves.curves["d_loss"].getData()[0]) == drawn
        chapter.tabs.setCurrentIndex(chapter.IMAGES_TAB)
        assert len(tab.curves.curves["d_loss"].getData()[0]) == len(tab.session.steps) > drawn
        assert tab.running
    finally:
        destroy(chapter)  # shutdown while training: every worker ends in time
