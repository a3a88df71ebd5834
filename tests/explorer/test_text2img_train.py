"""The Text to image chapter's Train tab: short real training runs of a tiny latent U-Net, through its buttons."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shiboken6
import torch
from PySide6.QtCore import QSettings

from explorer.chapters.text2img.backend import PipelineHolder
from explorer.chapters.text2img.train_tab import TrainTab
from explorer.chapters.text2img.training import PREVIEW_PROMPTS
from explorer.workers import WorkerPool
from models.device import set_torch_threads
from models.ldm import generate, load_ldm
from text2img_support import destroy_tab, tiny_pipeline

WAIT_MS = 30_000  # generous: the test machine may be busy


@pytest.fixture
def tab(qtbot):
    set_torch_threads(leave_for_gui=1)  # as the chapter does: a second thread per op crawls on a busy machine
    pipe = tiny_pipeline()
    holder = PipelineHolder(pipe, "shipped")
    tab = TrainTab(holder, WorkerPool(), "cpu")
    tab.data_count, tab.scratch_config = 64, pipe.unet.config  # tiny, quick runs
    tab.batch_spin.setValue(16)
    tab.resize(900, 600)
    tab.show()
    yield tab
    destroy_tab(tab)
    shiboken6.delete(holder)


def train(tab: TrainTab, qtbot, steps: int, scratch: bool = True) -> None:
    tab.start_buttons[not scratch].setChecked(True)
    tab.steps_spin.setValue(steps)
    tab.start_button.click()
    assert tab.running and not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)


def test_a_short_run_fills_the_curves_progress_and_captioned_samples(tab, qtbot):
    before = tab.sample_panels[0].image().copy()
    tab.lr_spin.setValue(5e-3)
    train(tab, qtbot, 30)
    session = tab.session
    assert session.step == 30 and not session.failed
    assert tab.progress.value() == 30 and tab.progress.maximum() == 30 and tab.progress.format() == "step %v of %m"
    x, mse = tab.curves.curves["mse"].getData()
    assert x[-1] == 30 and len(x) == len(session.steps) and np.all(mse > 0)
    loss = session.losses["loss"]
    assert tab.curves.curves["loss"].getData()[1][-1] == pytest.approx(loss[-1])
    assert len(loss) >= 2 and np.mean(loss[-3:]) < loss[0]  # the loss falls
    assert [probe.step for probe in session.probes] == [0, 30]  # the start, and after the last step
    for panel, image, (prompt, _) in zip(tab.sample_panels, session.probes[-1].images, PREVIEW_PROMPTS):
        assert prompt in panel.title_label.text().replace("\n", " ")
        assert panel.image().shape == (32, 32, 3) and np.array_equal(panel.image(), image)
    assert not np.array_equal(tab.sample_panels[0].image(), before)  # samples, not the grey placeholder
    assert "held out" in tab.sample_panels[-1].title_label.text()
    assert "step 30" in tab.sample_title.text() and "scenes/s" in tab.speed_label.text()
    assert "Finished at step 30" in tab.status.text()
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
    assert tab.resume_button.isEnabled() and tab.trained[1]["steps"] == stopped
    tab.resume_button.click()
    assert tab.running and tab.progress.maximum() == 5000
    qtbot.waitUntil(lambda: tab.session.step > stopped + 2, timeout=WAIT_MS)
    tab.stop_button.click()
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    steps = tab.session.steps
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # one count across the resume
    assert tab.session.step > stopped and tab.progress.value() == tab.session.step


def test_use_this_model_puts_the_trained_unet_in_the_pipeline_every_tab_uses(tab, qtbot):
    shipped = tab.holder.pipe
    train(tab, qtbot, 3)
    changes = []
    tab.holder.changed.connect(lambda: changes.append(tab.holder.origin))
    tab.use_button.click()
    assert changes == ["trained here (3 steps)"]
    pipe = tab.holder.pipe
    assert pipe.unet is not shipped.unet and pipe.clip is shipped.clip and pipe.vae is shipped.vae
    trained = tab.trained[0]
    assert pipe.unet is not trained  # resuming must not change the model in use
    for a, b in zip(pipe.unet.parameters(), trained.parameters()):
        assert torch.equal(a, b)
    prompts = [PREVIEW_PROMPTS[0][0]]
    assert not np.array_equal(generate(pipe, prompts, num_steps=3), generate(shipped, prompts, num_steps=3))


def test_save_writes_weights_that_load_with_a_card_and_a_bad_path_says_why(tab, qtbot, tmp_path):
    messages = []
    tab.message.connect(messages.append)
    assert tab.save(tmp_path / "x.safetensors") is None and "Train a model first" in messages[-1]
    train(tab, qtbot, 3)
    written = tab.save(tmp_path / "mine.safetensors")
    assert written is not None and written.is_file()
    model, meta = load_ldm(written)
    card = meta["card"]
    assert card["steps"] == 3 and card["start"] == "trained from scratch" and card["cpu_seconds"] > 0
    assert "batch 16" in card["optimizer"] and "make_shapes(64" in card["data"]
    assert model.config == tab.holder.pipe.unet.config
    for a, b in zip(model.state_dict().values(), tab.trained[0].state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())
    assert (tmp_path / "mine.md").is_file() and (tmp_path / "mine.json").is_file()
    (tmp_path / "file").write_text("not a folder")
    count = len(messages)
    assert tab.save(tmp_path / "file" / "w.safetensors") is None
    assert len(messages) == count + 1 and messages[-1].startswith("Could not save the weights")


def test_fine_tuning_trains_a_copy_of_the_unet_in_use(tab, qtbot):
    before = [p.detach().clone() for p in tab.holder.pipe.unet.parameters()]
    tab.lr_spin.setValue(1e-3)
    train(tab, qtbot, 2, scratch=False)
    assert tab.session.start == "fine-tuned from the U-Net in use (shipped)"
    for a, b in zip(before, tab.holder.pipe.unet.parameters()):
        assert torch.equal(a, b)  # trained a copy
    start = tab.session.probes[0].images  # the EMA starts as the U-Net in use: the same samples
    prompts = [prompt for prompt, _ in PREVIEW_PROMPTS]
    assert np.array_equal(start, generate(tab.holder.pipe, prompts, num_steps=10, seed=0, batch_size=len(prompts)))
    assert any(not torch.equal(a, b) for a, b in zip(before, tab.trained[0].parameters()))


def test_closing_while_training_is_clean(tab, qtbot):
    tab.start_buttons[False].setChecked(True)
    tab.steps_spin.setValue(5000)
    tab.start_button.click()
    qtbot.waitUntil(lambda: len(tab.session.steps) >= 1, timeout=WAIT_MS)
    tab.shutdown()
    assert tab.pool.stop_all(timeout_ms=5000)
    assert tab.holder.origin == "shipped" and tab.trained is None


def test_a_diverging_run_says_so_and_keeps_the_model_in_use(tab, qtbot, monkeypatch):
    from models import ldm

    def nan_loss(*args, **kwargs):
        value = torch.tensor(float("nan"), requires_grad=True)
        return {"loss": value, "mse": value.detach()}

    monkeypatch.setattr(ldm, "noise_loss", nan_loss)
    messages = []
    tab.message.connect(messages.append)
    train(tab, qtbot, 5)
    assert "Training stopped" in tab.status.text() and "smaller learning rate" in tab.status.text()
    assert len(messages) == 1 and "unchanged" in messages[0]
    assert tab.session.failed and tab.trained is None
    assert not tab.resume_button.isEnabled() and not tab.use_button.isEnabled() and tab.start_button.isEnabled()
    assert tab.holder.origin == "shipped"


def test_choosing_where_to_start_sets_the_learning_rate_and_settings_round_trip(tab, tmp_path):
    tab.start_buttons[False].setChecked(True)
    assert tab.lr_spin.value() == pytest.approx(1e-3)
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


def test_preparing_is_shown_while_the_scenes_are_encoded(tab, qtbot, monkeypatch):
    from models import ldm

    make_trainer = ldm.make_trainer

    def slow_make_trainer(*args, **kwargs):
        time.sleep(0.5)  # as the 5,000 scenes of the app take seconds
        return make_trainer(*args, **kwargs)

    monkeypatch.setattr(ldm, "make_trainer", slow_make_trainer)
    tab.start_buttons[False].setChecked(True)
    tab.steps_spin.setValue(2)
    tab.start_button.click()
    qtbot.waitUntil(lambda: tab.status.text().startswith("Preparing"), timeout=WAIT_MS)
    assert "64 scenes" in tab.status.text() and tab.progress.format() == "Preparing…"
    qtbot.waitUntil(lambda: not tab.running, timeout=WAIT_MS)
    assert tab.progress.format() == "step %v of %m" and tab.session.step == 2


def test_in_the_chapter_training_goes_on_in_other_tabs_and_stops_when_the_chapter_closes(qtbot, monkeypatch):
    from explorer.chapters.base import AppContext
    from explorer.chapters.text2img import TextToImageChapter, chapter as chapter_module
    from models.images import load_builtin

    pipe = tiny_pipeline()
    monkeypatch.setattr(chapter_module, "load_shipped", lambda device: (pipe, "shipped", ""))
    chapter = TextToImageChapter(AppContext(image=load_builtin("coffee"), workers=WorkerPool()))
    tab = chapter.train_tab
    tab.data_count, tab.scratch_config = 64, pipe.unet.config
    chapter.tabs.setCurrentIndex(chapter.TAB_TITLES.index("Train"))
    tab.start_buttons[False].setChecked(True)
    tab.batch_spin.setValue(16)
    tab.steps_spin.setValue(5000)
    tab.start_button.click()
    qtbot.waitUntil(lambda: len(tab.session.steps) >= 1, timeout=WAIT_MS)
    chapter.tabs.setCurrentIndex(chapter.TAB_TITLES.index("CLIP"))
    step = tab.session.step
    qtbot.waitUntil(lambda: tab.session.step > step + 2, timeout=WAIT_MS)  # still training
    assert tab.running and not tab.busy  # the chapter does not wait for training
    chapter.shutdown()
    assert chapter.context.workers.stop_all(timeout_ms=5000)
    assert not tab.running and chapter.holder.origin == "shipped"
    chapter.close()
    shiboken6.delete(chapter)
