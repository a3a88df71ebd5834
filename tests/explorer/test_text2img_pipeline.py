"""The Text to image tab: runs, the frame cache, playback without resampling, attention, prompts, export.

The tab is built on its own with the tiny untrained pipeline (30 steps take a blink);
what it shows is checked against ``models.ldm.generate_frames`` called directly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest

from explorer.chapters.text2img.backend import PipelineHolder
from explorer.chapters.text2img.frames_export import EXPORT_SCALE, text_frame_images, upscale_rgb
from explorer.chapters.text2img.frames_view import attention_rgb, channel_strip
from explorer.chapters.text2img.pipeline_tab import PipelineTab
from explorer.export import export_frames, params_path
from explorer.workers import WorkerPool
from models.ldm import generate_frames
from text2img_support import destroy_tab, tiny_pipeline

WAIT_MS = 30_000  # generous: the test machine may be busy
STEPS = 10


def assert_close_pictures(a: np.ndarray, b: np.ndarray) -> None:
    """uint8 pictures equal within one level: the test's own model calls run on the main thread, whose
    torch thread count may differ from the workers' (another summation order, float rounding)."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.fixture
def tab(qtbot):
    holder = PipelineHolder(tiny_pipeline(), "tiny test pipeline")
    tab = PipelineTab(holder, WorkerPool(), "cpu")
    tab.holder_ref = holder  # keep it alive as long as the tab
    tab.steps_spin.setValue(STEPS)
    tab.player.fps_spin.setValue(60)
    tab.resize(900, 700)
    tab.show()
    yield tab
    destroy_tab(tab)


def messages_of(tab) -> list[str]:
    messages: list[str] = []
    tab.message.connect(messages.append)
    return messages


def run(qtbot, tab: PipelineTab) -> None:
    """Make the tab current (starting its run) or start a run, and wait for the whole run."""
    if tab.active:
        tab.generate()
    else:
        tab.set_active(True)
    errors: list[str] = []
    tab.pool.errorOccurred.connect(errors.append)
    qtbot.waitUntil(lambda: bool(errors) or (not tab.busy and tab.complete()), timeout=WAIT_MS)
    assert not errors, errors
    tab.player.pause()


def test_a_run_caches_the_frames_generate_frames_makes(qtbot, tab):
    run(qtbot, tab)
    reference = list(generate_frames(tab.holder.pipe, "a red circle on a blue background", guidance=5.0,
                                     num_steps=STEPS, seed=0))
    assert [frame.index for frame in tab.run.frames] == list(range(STEPS))
    for kept, frame in zip(tab.run.frames, reference):
        np.testing.assert_allclose(kept.latents, frame.latents, atol=1e-4)
        assert_close_pictures(kept.image, frame.image)
    assert tab.player.available == STEPS + 1  # every step, then the final image
    tab.player.go_end()
    assert_close_pictures(tab.zt_panel.image(), reference[-1].final_image[0])
    assert "final" in tab.zt_title.text()
    assert tab.diagram.highlighted() == "decoder"


def test_the_same_seed_gives_identical_frames_and_another_seed_others(qtbot, tab):
    run(qtbot, tab)
    first = tab.run.frames
    run(qtbot, tab)
    second = tab.run.frames
    assert second is not first
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.latents, b.latents)
        np.testing.assert_array_equal(a.x0_image, b.x0_image)
    np.testing.assert_array_equal(first[-1].final_image, second[-1].final_image)
    tab.seed_spin.setValue(1)
    run(qtbot, tab)
    assert not np.array_equal(tab.run.frames[0].latents, first[0].latents)


def test_scrubbing_stepping_and_keys_show_cached_frames_without_sampling(qtbot, tab):
    run(qtbot, tab)
    starts, frames = tab.worker_starts, tab.run.frames
    tab.player.scrubber.setValue(3)
    assert tab.player.position == 3
    np.testing.assert_array_equal(tab.zt_panel.image(), frames[3].image[0])
    np.testing.assert_array_equal(tab.x0_panel.image(), frames[3].x0_image[0])
    np.testing.assert_array_equal(tab.strips["z_t"].image(), channel_strip(frames[3].latents[0]))
    np.testing.assert_array_equal(tab.strips["eps_text"].image(), channel_strip(frames[3].eps_text[0]))
    np.testing.assert_array_equal(tab.strips["eps_uncond"].image(), channel_strip(frames[3].eps_uncond[0]))
    np.testing.assert_array_equal(tab.strips["eps_guided"].image(), channel_strip(frames[3].eps_guided[0]))
    assert f"t = {frames[3].t}" in tab.zt_title.text()
    assert tab.diagram.highlighted() == "unet" and tab.diagram.index == 3
    window = tab.window()
    window.activateWindow()
    QTest.keyClick(window, Qt.Key.Key_Right)
    assert tab.player.position == 4
    QTest.keyClick(window, Qt.Key.Key_Left)
    QTest.keyClick(window, Qt.Key.Key_Left)
    assert tab.player.position == 2
    np.testing.assert_array_equal(tab.zt_panel.image(), frames[2].image[0])
    QTest.keyClick(window, Qt.Key.Key_End)
    assert tab.player.position == STEPS
    QTest.keyClick(window, Qt.Key.Key_Home)
    assert tab.player.position == 0
    QTest.keyClick(window, Qt.Key.Key_Space)  # play from the cache to the end
    assert tab.player.playing
    qtbot.waitUntil(lambda: not tab.player.playing, timeout=WAIT_MS)
    assert tab.player.position == STEPS
    assert tab.worker_starts == starts and tab.run.frames is frames and not tab.pool.active()


def test_typing_a_space_in_the_prompt_types_it(qtbot, tab):
    run(qtbot, tab)
    tab.prompt_edit.setFocus()
    tab.prompt_edit.setText("a red")
    QTest.keyClick(tab.prompt_edit, Qt.Key.Key_Space)
    assert tab.prompt_edit.text() == "a red " and not tab.player.playing


def test_one_attention_panel_per_word_titled_with_it_each_map_summing_to_one(qtbot, tab):
    run(qtbot, tab)
    words = ["a", "red", "circle", "on", "a", "blue", "background"]
    assert [panel.title_label.text() for panel in tab.word_panels] == words
    for position in (0, 5, STEPS):
        tab.player.show_position(position)
        maps = tab.attention_maps
        assert maps.shape == (len(words), 8, 8)
        np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, atol=1e-5)
    frame = tab.run.frames[5]
    tab.player.show_position(5)
    np.testing.assert_array_equal(tab.word_panels[1].image(), attention_rgb(frame.attention[0, 1], frame.x0_image[0]))
    tab.over_check.setChecked(False)  # the map on its own
    np.testing.assert_array_equal(tab.word_panels[1].image(), attention_rgb(frame.attention[0, 1]))


def test_an_unknown_word_is_named_struck_out_and_ignored(qtbot, tab):
    messages = messages_of(tab)
    tab.prompt_edit.setText("a red blorp circle")
    run(qtbot, tab)
    naming = [m for m in messages if "blorp" in m]
    assert naming and all("Unknown word" in m for m in naming)
    assert "blorp" in messages[0]  # said as the run starts
    assert ("blorp", "unknown") in tab.diagram.token_texts()
    assert [panel.title_label.text() for panel in tab.word_panels] == ["a", "red", "circle"]
    assert tab.run.frames[0].attention.shape[1] == 3


def test_an_empty_prompt_runs_unconditionally_and_says_so(qtbot, tab):
    messages = messages_of(tab)
    tab.prompt_edit.setText("")
    run(qtbot, tab)
    assert tab.run.complete and tab.run.spec.prompt == ""
    assert any("unconditional" in m for m in messages)
    assert tab.word_panels == [] and not tab.no_words.isHidden()
    assert "unconditional" in tab.vocabulary_label.text()  # the hint says so before any run


def test_a_setting_change_starts_a_new_run_after_a_pause(qtbot, tab):
    run(qtbot, tab)
    starts = tab.worker_starts
    tab.guidance_slider.setValue(7.3)  # continuous
    assert tab.stale
    qtbot.waitUntil(lambda: tab.worker_starts == starts + 1 and not tab.busy and tab.complete(), timeout=WAIT_MS)
    assert tab.run.spec.guidance == pytest.approx(7.3)


def test_export_writes_every_step_then_the_final_image(qtbot, tab, tmp_path):
    run(qtbot, tab)
    job = tab.export_job()
    assert job.count == STEPS + 1
    params = job.params
    assert params["prompt"] == "a red circle on a blue background" and params["guidance"] == 5.0
    assert params["steps"] == STEPS and params["sampler"] == "ddim" and params["seed"] == 0
    assert params["models"] == {"unet": "tiny"}
    out = export_frames(job.iter_frames(), tmp_path / "frames", job.params)
    files = sorted(out.glob("*.png"))
    assert len(files) == STEPS + 1
    last = np.asarray(Image.open(files[-1]).convert("RGB"))
    np.testing.assert_array_equal(last, upscale_rgb(tab.run.frames[-1].final_image[0], EXPORT_SCALE))
    first = np.asarray(Image.open(files[0]).convert("RGB"))
    np.testing.assert_array_equal(first, upscale_rgb(tab.run.frames[0].image[0], EXPORT_SCALE))
    written = json.loads(params_path(out).read_text())
    assert written["prompt"] == params["prompt"] and written["frames"] == STEPS + 1


def test_export_with_panels_and_of_a_stale_run_samples_the_same_pictures(qtbot, tab):
    run(qtbot, tab)
    tab.panels_check.setChecked(True)
    pictures = tab.export_job().frames
    assert pictures[0].shape == (32 * EXPORT_SCALE, 2 * 32 * EXPORT_SCALE + EXPORT_SCALE, 3)
    final = upscale_rgb(tab.run.frames[-1].final_image[0], EXPORT_SCALE)
    np.testing.assert_array_equal(pictures[-1][:, : 32 * EXPORT_SCALE], final)
    tab.stale = True  # as after a setting change not yet run: the job samples afresh, in its worker
    job = tab.export_job()
    assert callable(job.frames)
    fresh = list(job.iter_frames())
    assert len(fresh) == job.count
    for a, b in zip(fresh, pictures, strict=True):
        assert_close_pictures(a, b)


def test_text_frame_images_refuses_undecoded_or_incomplete_runs(tab):
    frames = list(generate_frames(tab.holder.pipe, "a star", num_steps=3, decode=False, attention=False))
    with pytest.raises(ValueError, match="decode"):
        text_frame_images(frames)
    frames = list(generate_frames(tab.holder.pipe, "a star", num_steps=3))
    assert len(text_frame_images(frames, scale=2)) == 4
    with pytest.raises(ValueError, match="incomplete"):
        text_frame_images(frames[:2])


def test_settings_are_remembered(qtbot, tab, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    tab.prompt_edit.setText("a yellow star")
    tab.negative_edit.setText("a red shape")
    tab.guidance_slider.setValue(9.5)
    tab.sampler_combo.setCurrentIndex(1)
    tab.seed_spin.setValue(42)
    tab.save_settings(settings)
    tab.prompt_edit.setText("x")
    tab.negative_edit.setText("")
    tab.seed_spin.setValue(0)
    tab.restore_settings(settings)
    spec = tab.run_spec()
    assert (spec.prompt, spec.negative, spec.guidance, spec.sampler, spec.seed, spec.steps) == (
        "a yellow star", "a red shape", 9.5, "ddpm", 42, STEPS)
    settings.setValue("pipeline/seed", "nonsense")
    tab.restore_settings(settings)
    assert tab.seed_spin.value() == 42


def test_the_diagram_shows_the_tokens_as_the_tokenizer_reads_them(tab):
    prompt = "a Red circle, on a blue background! " * 2 + "star qux"
    tokens = tab.holder.pipe.tokens(prompt)
    tab.prompt_edit.setText(prompt)
    tab._show_tokens()  # (as typing does)
    shown = tab.diagram.token_texts()
    assert shown[0] == ("<bos>", "special") and shown[-1] == ("<eos>", "special")
    assert [text for text, kind in shown if kind == "known"] == tokens.words
    assert [text for text, kind in shown if kind == "dropped"] == tokens.dropped == ["star"]
    assert [text for text, kind in shown if kind == "unknown"] == tokens.unknown == ["qux"]


def test_leaving_an_edited_prompt_starts_a_run_with_it_an_unedited_one_does_not(qtbot, tab):
    run(qtbot, tab)
    starts = tab.worker_starts
    tab.prompt_edit.editingFinished.emit()  # left without a change
    assert not tab.stale
    tab.prompt_edit.setText("a green star on a black background")
    tab.prompt_edit.editingFinished.emit()
    assert tab.stale
    qtbot.waitUntil(lambda: tab.worker_starts == starts + 1 and not tab.busy and tab.complete(), timeout=WAIT_MS)
    assert tab.run.spec.prompt == "a green star on a black background"
    assert [panel.title_label.text() for panel in tab.word_panels] == ["a", "green", "star", "on", "a", "black",
                                                                      "background"]
