"""The GAN chapter's 2-D points tab: drive its real widgets and check weights, views and exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shiboken6
import torch
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtTest import QTest

from explorer.chapters.gan.points_tab import PointsTab
from explorer.export import export_frames, params_path
from explorer.widgets.gan_plane import LAYERS
from explorer.workers import WorkerPool
from models import gan2d
from models.gan2d import mean_distance_to_modes

WAIT_MS = 30_000  # generous: the machine may be busy


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what the chapter sets on a 2-core machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tab(qtbot):
    pool = WorkerPool()
    tab = PointsTab(pool, "cpu")
    tab.errors = []
    pool.errorOccurred.connect(tab.errors.append)
    tab.messages = []
    tab.message.connect(tab.messages.append)
    tab.controls.show()
    tab.resize(900, 700)
    tab.show()
    tab.set_active(True)
    wait_idle(qtbot, tab)
    yield tab
    destroy(tab)


def destroy(tab: PointsTab) -> None:
    """Stop the tab and delete its widgets now (see tests/explorer/test_latent_chapter.py)."""
    tab.shutdown()
    assert tab.pool.stop_all(timeout_ms=20_000)
    for widget in (tab, tab.controls):
        widget.close()
        shiboken6.delete(widget)


def wait_idle(qtbot, tab: PointsTab) -> None:
    qtbot.waitUntil(lambda: tab.worker is None, timeout=WAIT_MS)


def wait_steps(qtbot, tab: PointsTab, more: int) -> None:
    start = tab.session.trainer.step if tab.session.trainer is not None else 0
    qtbot.waitUntil(lambda: tab.session.trainer is not None and tab.session.trainer.step >= start + more, timeout=WAIT_MS)


def weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_first_view_shows_real_and_generated_points_and_d_heat_map(tab):
    plane = tab.plane
    assert len(plane.items["real"].points) == gan2d.Gan2DTrainer.SHOWN
    assert len(plane.items["fake"].points) == gan2d.Gan2DTrainer.SHOWN
    heat = plane.items["heat"].image
    assert heat.shape == (48, 48) and 0 <= heat.min() <= heat.max() <= 1
    x, _ = plane.items["manifold"].getData()
    assert len(x) == 26 * 33  # 13 + 13 lines of 33 points
    real = plane.items["real"].points
    assert mean_distance_to_modes(real, gan2d.ring_modes()) < 0.15  # the ring, by default


def test_step_d_button_changes_only_d_and_step_g_only_g(qtbot, tab):
    trainer = tab.session.trainer
    g0, d0 = weights(trainer.generator), weights(trainer.discriminator)
    qtbot.mouseClick(tab.step_d_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    assert same(weights(trainer.generator), g0) and not same(weights(trainer.discriminator), d0)
    assert (trainer.step, trainer.d_updates) == (0, 1)
    assert "D updates 1" in tab.readout.text()
    g1, d1 = weights(trainer.generator), weights(trainer.discriminator)
    qtbot.mouseClick(tab.step_g_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    assert same(weights(trainer.discriminator), d1) and not same(weights(trainer.generator), g1)
    assert (trainer.step, trainer.d_updates) == (1, 1)
    tab.d_steps_spin.setValue(3)
    qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    assert (trainer.step, trainer.d_updates) == (2, 4)
    assert tab.session.steps == [0, 1, 2]  # one curve point per step


def test_learning_rates_changed_during_a_run_take_effect(qtbot, tab):
    qtbot.mouseClick(tab.play_button, Qt.MouseButton.LeftButton)
    assert tab.playing and tab.play_button.text() == "Pause" and not tab.step_d_button.isEnabled()
    wait_steps(qtbot, tab, 3)
    tab.lr_d_spin.setValue(0.0)
    tab.lr_g_spin.setValue(0.0)
    assert tab.session.hyper.lr_d == 0.0 == tab.session.hyper.lr_g
    wait_steps(qtbot, tab, 2)  # the step under way when the rates changed has ended
    trainer = tab.session.trainer
    frozen_g, frozen_d = weights(trainer.generator), weights(trainer.discriminator)
    wait_steps(qtbot, tab, 5)
    assert same(weights(trainer.generator), frozen_g) and same(weights(trainer.discriminator), frozen_d)
    tab.lr_g_spin.setValue(1e-3)  # G learns again, D stays frozen
    wait_steps(qtbot, tab, 5)
    assert not same(weights(trainer.generator), frozen_g) and same(weights(trainer.discriminator), frozen_d)
    qtbot.waitUntil(lambda: len(tab.session.steps) >= 1, timeout=WAIT_MS)  # a snapshot with losses (1/20 s)
    tab.toggle_play()  # what Space does (a window-wide shortcut)
    wait_idle(qtbot, tab)
    assert not tab.playing and tab.play_button.text() == "Play" and tab.step_d_button.isEnabled()
    x, y = tab.curves.curves["d_loss"].getData()
    assert len(tab.session.steps) >= 1 and len(x) == len(tab.session.steps) and np.isfinite(y).all()


def test_an_injected_nan_pauses_training_with_an_explanation(qtbot, tab):
    tab.play()
    wait_steps(qtbot, tab, 2)
    tab.hyper.lr_g = float("nan")  # read at the next step: G's weights become NaN, then its loss
    qtbot.waitUntil(lambda: not tab.playing and tab.worker is None, timeout=WAIT_MS)
    assert "diverged" in tab.status.text() and "Reset" in tab.status.text()
    assert tab.plane.message.isVisible() and "Reset" in tab.plane.message.toPlainText()
    assert any("diverged" in m for m in tab.messages)
    assert not tab.play_button.isEnabled() and not tab.step_button.isEnabled()
    tab.play()  # refused, politely
    assert not tab.playing
    tab.lr_g_spin.setValue(5e-4)
    qtbot.mouseClick(tab.reset_button, Qt.MouseButton.LeftButton)  # the app goes on
    wait_idle(qtbot, tab)
    assert not tab.session.failed and not tab.plane.message.isVisible() and tab.play_button.isEnabled()
    tab.step()
    wait_idle(qtbot, tab)
    assert tab.session.trainer.step == 1 and tab.session.trainer.weights_finite()


def test_shutdown_during_training_is_clean(qtbot, tab):
    tab.play()
    wait_steps(qtbot, tab, 2)
    tab.shutdown()
    assert tab.pool.stop_all(timeout_ms=5000)
    assert not tab.playing and tab.errors == []
    tab.step()  # nothing starts after shutdown
    assert tab.worker is None


def test_layers_toggle_the_items_visibility(qtbot, tab):
    for name in LAYERS:
        tab.layer_boxes[name].setChecked(False)
        assert not tab.plane.items[name].isVisible()
        assert all(tab.plane.items[other].isVisible() for other in LAYERS if other != name)
        tab.layer_boxes[name].setChecked(True)
        assert tab.plane.items[name].isVisible()


def click_plane(tab: PointsTab, x: float, y: float) -> None:
    scene = tab.plane.view_box.mapViewToScene(QPointF(x, y))
    point = tab.plane.mapFromScene(scene)
    QTest.mouseClick(tab.plane.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)


def test_drawing_points_sets_the_drawn_distribution(qtbot, tab):
    tab.distribution_combo.setCurrentIndex(tab.distribution_combo.findData("drawn"))
    wait_idle(qtbot, tab)
    assert tab.plane.view_box.drawing and tab.clear_button.isVisibleTo(tab.controls)
    assert tab.plane.message.isVisible()  # "Click or drag here…"
    tab.play()
    assert not tab.playing and "Draw some points" in tab.messages[-1]
    for x, y in ((1.0, 1.0), (-1.0, 0.5), (0.0, -1.2)):
        click_plane(tab, x, y)
    assert tab.drawn.shape == (3, 2)
    assert np.allclose(tab.drawn, [[1.0, 1.0], [-1.0, 0.5], [0.0, -1.2]], atol=0.05)
    drawn_item = tab.plane.drawn_item.data
    assert len(drawn_item) == 3 and not tab.plane.message.isVisible()
    wait_idle(qtbot, tab)
    tab.step()
    wait_idle(qtbot, tab)
    trainer = tab.session.trainer
    assert trainer.distribution == "drawn" and trainer.step == 1
    assert mean_distance_to_modes(trainer.real_pool.numpy(), tab.drawn) < 0.1
    click_plane(tab, 1.5, -1.5)  # a point added while a trainer exists: its real data grows
    assert mean_distance_to_modes(trainer.real_pool.numpy(), np.array([[1.5, -1.5]])) < 0.1 or (
        np.linalg.norm(trainer.real_pool.numpy() - [1.5, -1.5], axis=1) < 0.2).any()  # fmt: skip
    qtbot.mouseClick(tab.clear_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    assert len(tab.drawn) == 0 and len(tab.plane.drawn_item.data) == 0


def test_export_job_holds_one_frame_per_k_steps(qtbot, tab, tmp_path):
    assert tab.export_job().count == 1  # the first view (step 0)
    tab.frame_every_spin.setValue(2)
    tab.reset()
    wait_idle(qtbot, tab)
    for _ in range(6):
        tab.step()
        wait_idle(qtbot, tab)
    job = tab.export_job()
    assert job.count == 4 and job.params["steps"] == [0, 2, 4, 6]
    assert job.params["distribution"] == "ring" and job.params["hyper"]["lr_d"] == tab.lr_d_spin.value()
    frames = list(job.iter_frames())
    assert len(frames) == 4 and frames[0].shape == (360, 360, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])  # the points moved
    out = export_frames(job.iter_frames(), tmp_path / "frames", job.params)
    assert len(list(out.glob("*.png"))) == 4
    assert json.loads(params_path(out).read_text())["steps"] == [0, 2, 4, 6]


def test_timelapse_memory_is_bounded(qtbot, tab, monkeypatch):
    monkeypatch.setattr("explorer.chapters.gan.points_tab.MAX_FRAMES", 4)
    tab.frame_every_spin.setValue(1)
    tab.reset()
    wait_idle(qtbot, tab)
    for _ in range(9):
        tab.step()
        wait_idle(qtbot, tab)
    assert len(tab.session.frames) <= 4 and tab.session.frame_every >= 2


def test_network_shape_change_builds_new_networks_and_says_so(qtbot, tab):
    assert "2-D noise space" in tab.layer_boxes["manifold"].toolTip()
    tab.width_spin.setValue(16)
    wait_idle(qtbot, tab)
    assert tab.session.trainer.generator.net[0].out_features == 16
    assert any("random weights" in m for m in tab.messages)
    tab.noise_dim_spin.setValue(3)
    wait_idle(qtbot, tab)
    assert "first two noise dimensions" in tab.layer_boxes["manifold"].toolTip()


def test_pretrained_pair_starts_trained_on_the_ring(qtbot, tab, monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSION_EXPLORER_CACHE", str(tmp_path))
    monkeypatch.setattr(gan2d, "PRETRAINED_STEPS", 40)
    monkeypatch.setattr(gan2d, "_pairs", {})
    tab.distribution_combo.setCurrentIndex(tab.distribution_combo.findData("moons"))
    tab.width_spin.setValue(16)
    wait_idle(qtbot, tab)
    qtbot.mouseClick(tab.pretrained_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    trainer = tab.session.trainer
    assert trainer.step == 40 and trainer.distribution == "ring" and tab.distribution == "ring"
    assert tab.width_spin.value() == 64 and "Pretrained pair loaded" in tab.status.text()
    assert list((tmp_path / "data").glob("gan2d-pair-*-ring-40.safetensors"))  # cached for the next session


def test_shutdown_while_the_pretrained_pair_trains_is_clean(qtbot, tab, monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSION_EXPLORER_CACHE", str(tmp_path))
    monkeypatch.setattr(gan2d, "PRETRAINED_STEPS", 100_000)  # far longer than the test
    monkeypatch.setattr(gan2d, "_pairs", {})
    tab.start_pretrained()
    qtbot.waitUntil(lambda: "step 50 of" in tab.status.text() or "step 100 of" in tab.status.text(), timeout=WAIT_MS)
    tab.shutdown()
    assert tab.pool.stop_all(timeout_ms=5000) and tab.errors == []
    assert not list((tmp_path / "data").glob("*.safetensors"))  # nothing half-trained was cached


def test_settings_round_trip(qtbot, tab, tmp_path):
    tab.lr_d_spin.setValue(0.0025)
    tab.loss_combo.setCurrentIndex(tab.loss_combo.findData("hinge"))
    tab.optimizer_combo.setCurrentIndex(tab.optimizer_combo.findData("sgd"))
    tab.d_steps_spin.setValue(2)
    tab.layer_boxes["manifold"].setChecked(False)
    tab.drawn = np.array([[0.5, 0.25]], dtype=np.float32)
    tab.distribution_combo.setCurrentIndex(tab.distribution_combo.findData("drawn"))
    wait_idle(qtbot, tab)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    tab.save_settings(settings)
    settings.sync()
    other = PointsTab(WorkerPool(), "cpu")
    try:
        other.restore_settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
        wait_idle(qtbot, other)
        assert other.hyper.lr_d == pytest.approx(0.0025) and other.hyper.loss == "hinge"
        assert other.hyper.optimizer == "sgd" and other.hyper.d_steps == 2
        assert not other.layer_boxes["manifold"].isChecked() and not other.plane.items["manifold"].isVisible()
        assert other.distribution == "drawn" and np.allclose(other.drawn, [[0.5, 0.25]])
        settings.setValue("points_lr_d", "garbage")  # ignored, no crash
        settings.setValue("points_drawn", "[[1, 2, 3]]")
        other.restore_settings(settings)
        wait_idle(qtbot, other)
    finally:
        destroy(other)


def test_leaving_the_tab_pauses_and_slow_speed_slows(qtbot, tab):
    tab.speed_combo.setCurrentIndex(0)  # 10 steps/s
    tab.play()
    qtbot.wait(1000)
    assert tab.session.trainer.max_steps_per_s == 10.0
    assert 1 <= tab.session.trainer.step <= 14
    tab.speed_combo.setCurrentIndex(tab.speed_combo.count() - 1)
    assert tab.session.trainer.max_steps_per_s is None  # full speed, at once
    tab.set_active(False)  # another tab: nobody watches the plane
    wait_idle(qtbot, tab)
    assert not tab.playing and not tab.space.isEnabled()


def test_render_frame_draws_each_layer_where_it_belongs():
    from explorer.widgets.gan_plane import FAKE_COLOR, REAL_COLOR, heat_lut, render_frame

    real, fake = np.array([[-1.0, 1.0]]), np.array([[1.0, -1.0]])
    heat = np.zeros((4, 4), dtype=np.float32)
    heat[3, :] = 1.0  # the top row of the plane: D says real
    frame = render_frame((-2.0, 2.0), real, fake, heat=heat, size=101)
    assert frame.shape == (101, 101, 3) and frame.dtype == np.uint8
    assert tuple(frame[25, 25]) == REAL_COLOR  # (-1, 1): a quarter from the left and the top
    assert tuple(frame[75, 75]) == FAKE_COLOR  # (1, -1)
    assert tuple(frame[2, 50]) == tuple(heat_lut()[255]) and tuple(frame[98, 50]) == tuple(heat_lut()[0])
    bare = render_frame((-2.0, 2.0), np.zeros((0, 2)), np.zeros((0, 2)), size=50)
    assert (bare == 255).all()  # no layer: white


def test_dragging_on_the_plane_draws_a_trail_of_points(qtbot, tab):
    tab.distribution_combo.setCurrentIndex(tab.distribution_combo.findData("drawn"))
    wait_idle(qtbot, tab)

    def where(x: float, y: float):
        return tab.plane.mapFromScene(tab.plane.view_box.mapViewToScene(QPointF(x, y)))

    viewport = tab.plane.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, where(-1.5, -1.0))
    for x in np.linspace(-1.5, 1.5, 40):
        qtbot.wait(12)  # pyqtgraph drops moves closer than 10 ms apart
        QTest.mouseMove(viewport, where(x, -1.0))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, where(1.5, -1.0))
    assert len(tab.drawn) >= 10
    assert np.allclose(tab.drawn[:, 1], -1.0, atol=0.05) and tab.drawn[:, 0].max() - tab.drawn[:, 0].min() > 2.0
    wait_idle(qtbot, tab)
