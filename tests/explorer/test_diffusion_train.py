"""The Diffusion chapter's Train tab: short real training runs driven through its buttons."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shiboken6
import torch
from PySide6.QtCore import QSettings

from explorer.chapters.diffusion.backend import ModelHolder
from explorer.chapters.diffusion.train_tab import TrainTab
from explorer.chapters.diffusion.training import PREVIEW_COUNT, probe_timesteps
from explorer.workers import WorkerPool
from models.diffusion import DiffusionConfig, load_ddpm, loss_by_timestep
from models.unet import UNetConfig
from diffusion_support import shipped_parts

WAIT_MS = 30_000  # generous: the test machine may be busy
TINY = DiffusionConfig(unet=UNetConfig(channels=(8, 16), emb_dim=16, attention_heads=2))


@pytest.fixture(scope="module")
def parts(qapp):
    return shipped_parts()


@pytest.fixture
def tab(parts, qtbot):
    model, meta, origin, digits = parts
    pool = WorkerPool()
    holder = ModelHolder(model, meta, origin)
    tab = TrainTab(holder, digits, pool, "cpu")
    tab.data_count, tab.probe_digits, tab.scratch_config = 64, 8, TINY  # tiny, quick runs
    tab.batch_spin.setValue(16)
    tab.resize(900, 600)
    tab.show()
    yield tab
    tab.shutdown()
    assert pool.stop_all()
    tab.close()
    shiboken6.delete(tab)
    shiboken6.delete(holder)


def train(tab: TrainTab, qtbot, steps: int, scratch: bool = True) -> None:
    tab.start_buttons[not scratch].setChecked(True)
    tab.steps_spin.setValue(steps)
    tab.start_button.click()
    assert tab.running and not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)


def test_a_short_run_from_scratch_fills_the_curves_progress_and_samples(tab, qtbot):
    train(tab, qtbot, 4)
    session = tab.session
    assert session.step == 4 and not session.failed
    assert tab.progress.value() == 4 and tab.progress.maximum() == 4
    x, y = tab.curves.curves["mse"].getData()
    assert x[-1] == 4 and len(x) == len(session.steps) and np.all(y > 0)
    assert tab.curves.curves["loss"].getData()[0][-1] == 4
    t, loss = tab.t_curve.getData()
    assert list(t) == probe_timesteps(1000)
    assert [probe.step for probe in session.probes] == [0, 4]  # the start, and after the last step
    assert tab.preview_panel.image().shape == (28, PREVIEW_COUNT * 29 - 1)
    assert tab.preview_panel.image().max() > 0  # samples, not the blank placeholder
    assert "step 4" in tab.preview_panel.title_label.text()
    assert "Finished at step 4" in tab.status.text()
    assert tab.use_button.isEnabled() and tab.save_button.isEnabled() and tab.resume_button.isEnabled()
    assert tab.holder.origin == "shipped"  # nothing is installed until asked


def test_stop_is_quick_and_resume_goes_on_counting(tab, qtbot):
    tab.start_buttons[False].setChecked(True)
    tab.steps_spin.setValue(5000)
    tab.start_button.click()
    qtbot.waitUntil(lambda: len(tab.session.steps) >= 2, timeout=WAIT_MS)
    began = time.monotonic()
    tab.stop_button.click()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    assert time.monotonic() - began < 2.0  # one small model call at most (generous for a busy machine)
    stopped = tab.session.step
    assert 0 < stopped < 5000 and "Stopped at step" in tab.status.text()
    assert tab.resume_button.isEnabled() and tab.trained[1]["card"]["steps"] == stopped
    tab.resume_button.click()
    assert tab.running and tab.progress.maximum() == 5000
    qtbot.waitUntil(lambda: tab.session.step > stopped + 2, timeout=WAIT_MS)
    tab.stop_button.click()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    steps = tab.session.steps
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # one count across the resume
    assert tab.session.step > stopped and tab.progress.value() == tab.session.step


def test_use_this_model_installs_a_copy_in_every_tab(tab, qtbot):
    train(tab, qtbot, 3)
    changes = []
    tab.holder.changed.connect(lambda: changes.append(tab.holder.origin))
    shipped = tab.holder.model
    tab.use_button.click()
    assert changes == ["trained here (3 steps)"]
    assert tab.holder.model is not shipped and tab.holder.model.config == TINY
    assert tab.holder.meta["card"]["steps"] == 3
    trained = tab.trained[0]
    assert tab.holder.model is not trained  # resuming must not change the model in use
    for a, b in zip(tab.holder.model.parameters(), trained.parameters()):
        assert torch.equal(a, b)


def test_save_writes_weights_whose_card_has_the_steps(tab, qtbot, tmp_path):
    assert tab.save(tmp_path / "x.safetensors") is None  # nothing trained yet
    train(tab, qtbot, 3)
    written = tab.save(tmp_path / "mine.safetensors")
    assert written is not None and written.is_file()
    model, meta = load_ddpm(written)
    card = meta["card"]
    assert card["steps"] == 3 and card["start"] == "trained from scratch" and card["cpu_seconds"] > 0
    assert "batch 16" in card["optimizer"]
    assert model.config == TINY
    for a, b in zip(model.state_dict().values(), tab.trained[0].state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())
    assert (tmp_path / "mine.md").is_file() and (tmp_path / "mine.json").is_file()


def test_fine_tuning_starts_from_the_model_in_use_and_leaves_it_alone(tab, qtbot, monkeypatch):
    from explorer.chapters.diffusion import training

    monkeypatch.setattr(training, "PREVIEW_STEPS", 3)  # the shipped U-Net: keep the previews short
    before = [p.detach().clone() for p in tab.holder.model.parameters()]
    tab.lr_spin.setValue(1e-3)
    train(tab, qtbot, 1, scratch=False)
    assert tab.session.start.startswith("fine-tuned from the model in use")
    start = tab.session.probes[0]
    expected = [loss_by_timestep(tab.holder.model, tab.session.probe_images, [t], seed=11 + i,
                                 class_labels=tab.session.probe_labels)[0] for i, t in enumerate(start.timesteps)]
    np.testing.assert_allclose(start.losses, expected, rtol=1e-4)  # the shipped weights' loss at step 0
    for a, b in zip(before, tab.holder.model.parameters()):
        assert torch.equal(a, b)  # trained a copy
    assert tab.trained[0].config == tab.holder.model.config


def test_closing_while_training_is_clean(tab, qtbot):
    tab.start_buttons[False].setChecked(True)
    tab.steps_spin.setValue(5000)
    tab.start_button.click()
    qtbot.waitUntil(lambda: len(tab.session.steps) >= 1, timeout=WAIT_MS)
    tab.shutdown()
    assert tab.pool.stop_all(timeout_ms=5000)
    assert tab.holder.origin == "shipped" and tab.trained is None


def test_a_diverging_run_says_so_and_keeps_the_model_in_use(tab, qtbot, monkeypatch):
    from models import diffusion

    def nan_loss(*args, **kwargs):
        value = torch.tensor(float("nan"), requires_grad=True)
        return {"loss": value, "mse": value.detach()}

    monkeypatch.setattr(diffusion, "diffusion_loss", nan_loss)
    train(tab, qtbot, 5)
    assert "Training stopped" in tab.status.text() and "smaller learning rate" in tab.status.text()
    assert tab.session.failed and tab.trained is None
    assert not tab.resume_button.isEnabled() and not tab.use_button.isEnabled() and tab.start_button.isEnabled()
    assert tab.holder.origin == "shipped"


def test_choosing_where_to_start_sets_the_learning_rate_and_settings_round_trip(tab, tmp_path):
    tab.start_buttons[False].setChecked(True)
    assert tab.lr_spin.value() == pytest.approx(2e-3)
    tab.start_buttons[True].setChecked(True)
    assert tab.lr_spin.value() == pytest.approx(2e-4)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    tab.start_buttons[False].setChecked(True)
    tab.steps_spin.setValue(1234)
    tab.batch_spin.setValue(48)
    tab.lr_spin.setValue(5e-4)
    tab.save_settings(settings)
    tab.start_buttons[True].setChecked(True)
    tab.steps_spin.setValue(10)
    tab.restore_settings(settings)
    assert not tab.fine_tune and tab.steps_spin.value() == 1234 and tab.batch_spin.value() == 48
    assert tab.lr_spin.value() == pytest.approx(5e-4)
    settings.setValue("train_batch", "lots")
    settings.setValue("train_lr", 5.0)
    tab.restore_settings(settings)  # ignored
    assert tab.batch_spin.value() == 48 and tab.lr_spin.value() == pytest.approx(5e-4)
