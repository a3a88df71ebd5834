"""The Diffusion chapter's Objective tab: drive its widgets and check what the panels and the curve show."""

from __future__ import annotations

import re

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QSettings

from explorer.chapters.diffusion.backend import ModelHolder
from explorer.chapters.diffusion.objective_tab import ObjectiveTab, curve_timesteps
from explorer.workers import WorkerPool
from diffusion_support import shipped_parts

WAIT_MS = 20_000  # generous: the test machine may be busy


@pytest.fixture(scope="module")
def parts(qapp):
    return shipped_parts()


@pytest.fixture
def tab(parts, qtbot):
    model, meta, origin, digits = parts
    pool = WorkerPool()
    holder = ModelHolder(model, meta, origin)
    tab = ObjectiveTab(holder, digits, pool, "cpu")
    tab.curve_digits = 8  # a quick curve
    tab.job.immediate = True  # as the chapter builds it: the first view at once
    tab.refresh()
    tab.job.immediate = False
    tab.resize(900, 600)
    tab.show()
    yield tab
    tab.shutdown()
    assert pool.stop_all()
    tab.close()
    shiboken6.delete(tab)
    shiboken6.delete(holder)


def shown(tab: ObjectiveTab) -> dict[str, np.ndarray]:
    return {key: np.asarray(panel.image()) for key, panel in tab.panels.items()}


def mse_readout(tab: ObjectiveTab) -> float:
    return float(re.search(r"MSE\(ε̂, ε\) = <b>([0-9.e+-]+)</b>", tab.equation.text()).group(1))


def move_t(tab: ObjectiveTab, qtbot, t: int) -> None:
    tab.t_slider.setValue(t)
    qtbot.waitUntil(lambda: not tab.job.busy and tab.result is not None and tab.result.prediction.t == t,
                    timeout=WAIT_MS)


def alpha_bar(tab: ObjectiveTab, t: int) -> float:
    return float(tab.holder.model.scheduler("ddpm").alphas_cumprod[t])


def test_the_panels_show_the_closed_form_forward_jump(tab, qtbot):
    move_t(tab, qtbot, 420)
    images = shown(tab)
    abar = alpha_bar(tab, 420)
    expected = np.sqrt(abar) * images["x0"] + np.sqrt(1 - abar) * images["noise"]
    np.testing.assert_allclose(images["x_t"], expected, atol=1e-5)
    np.testing.assert_allclose(images["error"], images["eps_hat"] - images["noise"], atol=1e-6)
    digit = tab.digits.images[tab.index].astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(images["x0"], digit, atol=1e-6)
    assert abs(images["noise"].std() - 1) < 0.15  # ε ~ N(0, I)
    assert f"{np.sqrt(abar):.3f}" in tab.equation.text() and f"{np.sqrt(1 - abar):.3f}" in tab.equation.text()
    assert mse_readout(tab) == pytest.approx(float(np.mean(images["error"] ** 2)), rel=1e-2)


def test_dragging_t_changes_the_mse_and_the_images(tab, qtbot):
    move_t(tab, qtbot, 0)
    first, first_mse = shown(tab), mse_readout(tab)
    assert np.abs(first["x_t"] - first["x0"]).max() < 0.05  # t = 0: x_t ≈ x₀
    move_t(tab, qtbot, 900)
    later, later_mse = shown(tab), mse_readout(tab)
    np.testing.assert_array_equal(later["noise"], first["noise"])  # same seed, same ε
    assert np.abs(later["x_t"] - later["noise"]).mean() < 0.1  # almost pure noise now
    assert later_mse < first_mse / 10  # ε is easy to see at large t, nearly hidden at small t
    assert tab.marker.value() == 900


def test_arrow_keys_move_t_only_while_the_tab_is_current(tab, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    move_t(tab, qtbot, 300)
    tab.activateWindow()
    tab.set_active(False)
    QTest.keyClick(tab, Qt.Key.Key_Right)
    assert tab.t == 300
    tab.set_active(True)
    QTest.keyClick(tab, Qt.Key.Key_Right)
    QTest.keyClick(tab, Qt.Key.Key_Right)
    assert tab.t == 320
    QTest.keyClick(tab, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: not tab.job.busy and tab.result.prediction.t == 310, timeout=WAIT_MS)
    tab.set_active(False)


def test_new_noise_and_the_next_digit_of_a_class(tab, qtbot):
    move_t(tab, qtbot, 250)
    before = shown(tab)
    tab.new_noise_button.click()
    qtbot.waitUntil(lambda: not tab.job.busy and tab.result.prediction.noise is not None
                    and not np.array_equal(shown(tab)["noise"], before["noise"]), timeout=WAIT_MS)
    np.testing.assert_array_equal(shown(tab)["x0"], before["x0"])
    tab.class_combo.setCurrentIndex(tab.class_combo.findData(7))
    qtbot.waitUntil(lambda: not tab.job.busy and tab.result.index == tab.index, timeout=WAIT_MS)
    first = tab.index
    assert tab.digits.labels[first] == 7 and "a 7" in tab.digit_label.text()
    tab.next_button.click()
    qtbot.waitUntil(lambda: not tab.job.busy and tab.result.index == tab.index, timeout=WAIT_MS)
    assert tab.index > first and tab.digits.labels[tab.index] == 7
    expected = tab.digits.images[tab.index].astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(shown(tab)["x0"], expected, atol=1e-6)
    tab.previous_button.click()
    qtbot.waitUntil(lambda: not tab.job.busy and tab.result.index == first, timeout=WAIT_MS)


def test_the_label_can_be_withheld(tab, qtbot):
    move_t(tab, qtbot, 600)
    given = shown(tab)["eps_hat"]
    assert tab.result.label == int(tab.digits.labels[tab.index])
    tab.label_buttons[False].setChecked(True)
    qtbot.waitUntil(lambda: not tab.job.busy and tab.result.label == tab.holder.model.null_class, timeout=WAIT_MS)
    assert "no label" in tab.equation.text()
    assert not np.allclose(shown(tab)["eps_hat"], given)  # the U-Net's guess depends on the label


def test_the_loss_against_t_curve(tab, qtbot):
    tab.set_active(True)
    qtbot.waitUntil(lambda: not tab.busy, timeout=WAIT_MS)
    x, y = tab.curve.getData()
    timesteps = curve_timesteps(tab.holder.num_train_timesteps)
    assert list(x) == timesteps and len(timesteps) >= 20
    assert timesteps[0] == 0 and timesteps[-1] == tab.holder.num_train_timesteps - 1
    y = 10 ** y  # the plot is log-scaled
    np.testing.assert_allclose(y, tab.curve_loss, rtol=1e-6)
    assert y[0] > 0.3 and y[-1] < 0.01  # measured: the loss is large at t = 0, tiny at t = T − 1
    # Coming back to the tab with the same model measures nothing again.
    tab.set_active(False)
    tab.set_active(True)
    assert not tab.busy and len(tab.curve.getData()[0]) == len(timesteps)


def test_leaving_the_tab_pauses_the_curve_and_coming_back_finishes_it(tab, qtbot):
    from models.diffusion import loss_by_timestep

    tab.curve_digits = 16  # slow enough to catch half-way
    tab.set_active(True)
    qtbot.waitUntil(lambda: len(tab.curve_loss) >= 2, timeout=WAIT_MS)
    tab.set_active(False)
    qtbot.waitUntil(lambda: not tab.busy, timeout=WAIT_MS)
    paused = len(tab.curve_loss)
    assert 2 <= paused < len(tab.curve_t)
    qtbot.wait(200)
    assert len(tab.curve_loss) == paused  # nothing measured while away
    tab.set_active(True)
    qtbot.waitUntil(lambda: not tab.busy, timeout=WAIT_MS)
    assert len(tab.curve_loss) == len(tab.curve_t) == len(tab.curve.getData()[0])
    images, labels = tab.digits.images[-16:], tab.digits.labels[-16:]
    last = len(tab.curve_t) - 1
    expected = loss_by_timestep(tab.holder.model, images, [tab.curve_t[last]], seed=7 + last, class_labels=labels)
    assert tab.curve_loss[last] == pytest.approx(float(expected[0]), rel=1e-5)


def test_an_unconditional_model_in_use_takes_no_label_and_gets_its_own_curve(tab, qtbot):
    from models.diffusion import DiffusionConfig, DiffusionModel
    from models.unet import UNetConfig

    tab.set_active(True)
    qtbot.waitUntil(lambda: not tab.busy, timeout=WAIT_MS)
    shipped_curve = list(tab.curve_loss)
    model = DiffusionModel(DiffusionConfig(unet=UNetConfig(channels=(8, 16), emb_dim=16, num_classes=None))).eval()
    tab.holder.install(model, {}, "untrained test model")
    tab.refresh()  # what the chapter does when the model changes
    qtbot.waitUntil(lambda: not tab.job.busy and tab.result.label is None, timeout=WAIT_MS)
    assert not tab.label_buttons[True].isEnabled() and not tab.label_buttons[False].isEnabled()
    assert "no label" in tab.equation.text()
    qtbot.waitUntil(lambda: not tab.busy, timeout=WAIT_MS)
    assert len(tab.curve_loss) == len(tab.curve_t)
    assert tab.curve_loss != shipped_curve
    assert tab.curve_loss[-1] > 0.5  # untrained: ε̂ is nowhere near ε, even where ε is easy
    tab.holder.restore()
    tab.refresh()
    assert not tab.busy and tab.curve_loss == shipped_curve  # measured once per model
    assert tab.label_buttons[True].isEnabled()


def test_settings_round_trip(tab, qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    tab.seed_spin.setValue(1234)
    tab.set_digit(42)
    move_t(tab, qtbot, 77)
    tab.save_settings(settings)
    tab.seed_spin.setValue(1)
    tab.set_t(5)
    tab.set_digit(3)
    tab.restore_settings(settings)
    qtbot.waitUntil(lambda: not tab.job.busy and tab.result.prediction.t == 77 and tab.result.index == 42,
                    timeout=WAIT_MS)
    assert tab.seed_spin.value() == 1234
    settings.setValue("objective_t", "garbage")
    settings.setValue("objective_digit", 10_000)
    tab.restore_settings(settings)  # ignored
    assert tab.t == 77 and tab.index == 42
