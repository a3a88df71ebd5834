"""The Diffusion chapter's Reverse tab: runs, the frame cache, playback, stepping back, export.

The tab is built on its own with a tiny untrained U-Net (sampling takes milliseconds);
what it shows is checked against ``models.diffusion.sample`` called directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtTest import QTest

from explorer.chapters.diffusion.backend import ModelHolder, StepInput
from explorer.chapters.diffusion.backend import FreshDigits
from explorer.chapters.diffusion.frames import FrameCache, RunSettings, record
from explorer.chapters.diffusion.reverse_tab import ReverseTab
from explorer.workers import WorkerPool
from models import diffusion
from models.diffusion import DiffusionModel, reverse_images, to_uint8
from diffusion_support import destroy_tab, tiny_model

WAIT_MS = 30_000  # generous: the test machine may be busy
FRAME_BYTES = 4 * 28 * 28 * 2  # one image's step in the cache: four float16 arrays




def reference(model: DiffusionModel, settings: RunSettings) -> list[diffusion.DiffusionFrame]:
    """The run's frames from models.diffusion.sample, called directly."""
    eta = settings.eta if settings.sampler == "ddim" else None
    return list(diffusion.sample(model, settings.sampler, settings.steps, settings.count, settings.seed,
                                 settings.labels, settings.guidance, eta=eta))


@pytest.fixture
def tab(qtbot):
    holder = ModelHolder(tiny_model(), {}, "tiny test model")
    digits = FreshDigits(np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.int64), 0)
    tab = ReverseTab(holder, digits, WorkerPool(), "cpu")
    tab.holder_ref = holder  # keep it alive as long as the tab
    tab.steps_spin.setValue(10)
    tab.count_combo.setCurrentIndex(0)  # one image
    tab.fps_spin.setValue(60)
    tab.resize(900, 700)
    tab.show()
    yield tab
    destroy_tab(tab)


def run(qtbot, tab: ReverseTab) -> None:
    """Make the tab current (starting its run) or start a run, and wait for the whole run."""
    if tab.active:
        tab.generate()
    else:
        tab.set_active(True)
    qtbot.waitUntil(lambda: not tab.busy and tab.cache is not None and tab.cache.complete, timeout=WAIT_MS)
    tab.pause()


def cached_x_t(tab: ReverseTab) -> list[np.ndarray]:
    return [tab.cache.frames[i].x_t for i in tab.cache.kept()]


def test_a_run_caches_every_step_as_sample_makes_it(qtbot, tab):
    run(qtbot, tab)
    frames = reference(tab.holder.model, tab.run)
    assert tab.cache.kept() == list(range(10))
    for frame in frames:
        kept = tab.cache.frames[frame.index]
        assert kept.x_t.dtype == np.float16 and kept.t == frame.t
        np.testing.assert_allclose(kept.x_t, frame.x_t, atol=2e-3 * max(1.0, float(np.abs(frame.x_t).max())))
    # The final position shows x0 exactly as the CLI would picture it (from float16: ±1 level).
    tab.go_end()
    assert tab.position == 10
    shown = tab.panels["x_t"].image().astype(int)
    assert np.abs(shown - to_uint8(frames[-1].x_prev[0]).astype(int)).max() <= 1
    assert "final" in tab.titles["x_t"].text()


def test_same_seed_and_settings_give_identical_frames(qtbot, tab):
    tab.sampler_combo.setCurrentIndex(tab.sampler_combo.findData("ddpm"))  # stochastic steps: the seed decides
    tab.steps_spin.setValue(10)
    tab.seed_spin.setValue(7)
    run(qtbot, tab)
    first = cached_x_t(tab)
    run(qtbot, tab)
    again = cached_x_t(tab)
    assert len(first) == len(again) == 10
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    tab.seed_spin.setValue(8)
    run(qtbot, tab)
    assert not np.array_equal(cached_x_t(tab)[0], first[0])


def test_ddim_with_eta_zero_is_deterministic(qtbot, tab):
    """η = 0 adds no noise after x_T: the final image is the one generate() makes; η = 1 differs."""
    tab.eta_spin.setValue(0.0)
    run(qtbot, tab)
    final = tab.cache.last().x_prev[0].astype(np.float32)
    made = diffusion.generate(tab.holder.model, "ddim", 10, count=1, seed=0, eta=0.0)[0]
    assert np.abs(to_uint8(final).astype(int) - made.astype(int)).max() <= 1
    tab.eta_spin.setValue(1.0)
    run(qtbot, tab)
    noisy = tab.cache.last().x_prev[0].astype(np.float32)
    assert np.abs(noisy - final).max() > 0.05


def test_stepping_back_shows_the_cached_frame_and_never_samples_again(qtbot, tab, monkeypatch):
    calls = []
    real_sample = diffusion.sample

    def counting(*args, **kwargs):
        calls.append(1)
        yield from real_sample(*args, **kwargs)

    monkeypatch.setattr(diffusion, "sample", counting)
    shown: list[StepInput] = []
    tab.frameShown.connect(shown.append)
    run(qtbot, tab)
    assert len(calls) == 1
    tab.go_end()
    for expected in range(9, -1, -1):
        tab.step_back()
        assert tab.position == expected
        step = tab.cache.frames[expected]
        assert np.array_equal(tab.panels["x_t"].image(), to_uint8(step.x_t[0]))
        assert f"t = {step.t}" in tab.titles["x_t"].text()
        assert f"{expected + 1}/10" in tab.titles["x_t"].text()
        assert tab.scrubber.value() == expected
        assert tab.position_label.text() == f"step {expected + 1} / 10"
        assert shown[-1].t == step.t and shown[-1].index == expected and shown[-1].total == 10
        assert np.array_equal(shown[-1].x_t, step.x_t[0].astype(np.float32))
    tab.step_back()  # at the first step already
    assert tab.position == 0
    tab.scrubber.setValue(4)
    assert tab.position == 4 and np.array_equal(tab.panels["x0_hat"].image(), to_uint8(tab.cache.frames[4].x0_hat[0]))
    tab.step_forward()
    tab.go_home()
    assert tab.position == 0
    # Playing reads the cache too: it plays to the final image and stops.
    tab.toggle_play()
    qtbot.waitUntil(lambda: not tab.playing, timeout=WAIT_MS)
    assert tab.position == 10
    assert len(calls) == 1


def test_the_scrubber_spans_the_computed_steps(qtbot, tab):
    tab.sampler_combo.setCurrentIndex(tab.sampler_combo.findData("ddpm"))  # 1000 steps: stop it midway
    assert tab.steps_spin.value() == 1000
    tab.set_active(True)
    qtbot.waitUntil(lambda: tab.cache is not None and tab.cache.computed >= 5, timeout=WAIT_MS)
    tab.stop()
    qtbot.waitUntil(lambda: not tab.pool.active(), timeout=WAIT_MS)
    computed = tab.cache.computed
    assert 5 <= computed < 1000 and not tab.cache.complete
    assert tab.scrubber.maximum() == computed - 1  # no final image yet
    assert tab.progress.value() == computed
    tab.go_end()
    assert tab.position == computed - 1
    tab.step_forward()  # nothing further was computed
    assert tab.position == computed - 1
    tab.steps_spin.setValue(10)
    qtbot.waitUntil(lambda: tab.cache.total == 10 and tab.cache.complete and not tab.busy, timeout=WAIT_MS)
    assert tab.scrubber.maximum() == 10  # 10 steps, then the final image


def test_the_frame_cache_stays_within_its_memory_bound(qtbot, tab):
    tab.budget = 12 * FRAME_BYTES  # room for 12 of the run's 100 steps
    tab.steps_spin.setValue(100)
    run(qtbot, tab)
    cache = tab.cache
    assert cache.computed == 100 and cache.nbytes <= tab.budget
    assert cache.thinned and cache.stride >= 8
    kept = cache.kept()
    assert kept[0] == 0 and kept[-1] == 99 and all(i % cache.stride == 0 for i in kept[:-1])
    assert len(cache.t) == 100  # the std curves keep every step
    assert len(tab.std_x_curve.getData()[0]) == 100
    assert f"every {cache.stride}th step" in tab.cache_label.text()
    tab.show_position(kept[1] + 1)  # a step not kept: the nearest kept one before it
    assert tab.position == kept[1]
    assert np.array_equal(tab.panels["x_t"].image(), to_uint8(cache.frames[kept[1]].x_t[0]))
    tab.go_home()
    tab.step_forward()
    assert tab.position == kept[1]


def test_frame_cache_thins_to_every_other_step_then_every_fourth():
    model = tiny_model()
    frames = reference(model, RunSettings(steps=20))
    cache = FrameCache(total=20, budget=6 * FRAME_BYTES)
    for frame in frames:
        cache.add(record(frame, 0.5, 0.0))
        assert cache.nbytes <= cache.budget
    assert cache.stride == 4 and cache.kept() == [0, 4, 8, 12, 16, 19]
    assert cache.get(7).index == 4 and cache.get(19).index == 19 and cache.complete


def test_guidance_and_digit_are_disabled_for_an_unconditional_model(qtbot, tab):
    tab.digit_combo.setCurrentIndex(4)  # digit 3
    assert tab.digit_combo.isEnabled() and tab.guidance_slider.isEnabled()
    assert tab.run_settings().digit == 3 and tab.run_settings().guidance == pytest.approx(diffusion.DEFAULT_GUIDANCE)
    run(qtbot, tab)
    conditional_final = tab.cache.last().x_prev.copy()
    unconditional = tiny_model(conditional=False, seed=1)
    tab.holder.install(unconditional, {}, "tiny unconditional")
    tab.refresh()  # what the chapter does on holder.changed
    assert not tab.digit_combo.isEnabled() and not tab.guidance_slider.isEnabled()
    assert tab.busy  # the model changed: a new run started at once
    qtbot.waitUntil(lambda: not tab.busy and tab.cache.complete, timeout=WAIT_MS)
    assert tab.run.digit is None and tab.run.guidance == 1.0
    expected = reference(unconditional, tab.run)[-1].x_prev
    np.testing.assert_allclose(tab.cache.last().x_prev.astype(np.float32), expected, rtol=2e-3, atol=1e-2)
    assert not np.allclose(conditional_final, tab.cache.last().x_prev)


def test_a_setting_change_starts_one_new_run_after_the_controls_rest(qtbot, tab, monkeypatch):
    run(qtbot, tab)
    calls = []
    real_sample = diffusion.sample

    def counting(*args, **kwargs):
        calls.append(args[2])
        yield from real_sample(*args, **kwargs)

    monkeypatch.setattr(diffusion, "sample", counting)
    for steps in (11, 12, 13, 14):  # typing or spinning: one run for the last value
        tab.steps_spin.setValue(steps)
    assert not tab.busy
    qtbot.waitUntil(lambda: calls == [14] and not tab.busy and tab.cache.complete, timeout=WAIT_MS)
    assert tab.scrubber.maximum() == 14


def test_the_grid_follows_the_clicked_image(qtbot, tab):
    tab.count_combo.setCurrentIndex(tab.count_combo.findData(4))
    run(qtbot, tab)
    assert tab.grid_panel.isVisible() and tab.grid_panel.image().shape == (58, 58)
    tab.go_home()
    shown: list[StepInput] = []
    tab.frameShown.connect(shown.append)
    # Click the bottom-right cell (image 3) with the mouse.
    view = tab.grid_panel.view_box
    target = tab.grid_panel.graphics.mapFromScene(view.mapViewToScene(QPointF(44, 44)))
    QTest.mouseClick(tab.grid_panel.graphics.viewport(), Qt.MouseButton.LeftButton, pos=target)
    qtbot.waitUntil(lambda: tab.selected == 3, timeout=WAIT_MS)
    step = tab.cache.frames[0]
    assert np.array_equal(tab.panels["x_t"].image(), to_uint8(step.x_t[3]))
    assert np.array_equal(shown[-1].x_t, step.x_t[3].astype(np.float32))
    rect = tab.selection.rect()
    assert rect.left() < 44 < rect.right() and rect.top() < 44 < rect.bottom()
    assert np.allclose(tab.std_x_curve.getData()[1], [s[3] for s in tab.cache.std_x])


def test_export_job_gives_the_cli_pictures(qtbot, tab):
    tab.seed_spin.setValue(5)
    tab.digit_combo.setCurrentIndex(3)  # digit 2
    run(qtbot, tab)
    job = tab.export_job()
    assert job.count == 11
    frames = list(job.iter_frames())
    assert len(frames) == 11 and frames[0].shape == (224, 224, 3) and frames[0].dtype == np.uint8
    cli = list(reverse_images(iter(reference(tab.holder.model, tab.run)), panels=False, scale=8))
    assert all(np.array_equal(f[..., 0], c) for f, c in zip(frames, cli))
    assert np.abs(frames[-1][::8, ::8, 0].astype(int) - to_uint8(tab.cache.last().x_prev[0]).astype(int)).max() <= 1
    params = job.params
    assert params["sampler"] == "ddim" and params["steps"] == 10 and params["eta"] == 0.0
    assert params["seed"] == 5 and params["digit"] == 2 and params["guidance"] == pytest.approx(2.0)
    assert params["model"] == "tiny test model" and len(params["t"]) == 10
    tab.panels_check.setChecked(True)
    panels = list(tab.export_job().iter_frames())
    assert len(panels) == 11 and panels[0].shape == (224, (3 * 28 + 2) * 8, 3)


def test_keys_work_while_the_tab_is_current(qtbot, tab):
    run(qtbot, tab)
    tab.activateWindow()
    qtbot.waitUntil(lambda: tab.isActiveWindow(), timeout=5000)
    QTest.keyClick(tab, Qt.Key.Key_End)
    assert tab.position == 10
    QTest.keyClick(tab, Qt.Key.Key_Left)
    assert tab.position == 9
    QTest.keyClick(tab, Qt.Key.Key_Home)
    assert tab.position == 0
    QTest.keyClick(tab, Qt.Key.Key_Right)
    assert tab.position == 1
    QTest.keyClick(tab, Qt.Key.Key_Space)
    assert tab.playing
    QTest.keyClick(tab, Qt.Key.Key_Space)
    assert not tab.playing
    # Enter in a spin box being typed in: the run takes the typed value.
    tab.seed_spin.setFocus()
    tab.seed_spin.lineEdit().selectAll()
    QTest.keyClicks(tab.seed_spin, "17")
    QTest.keyClick(tab.seed_spin, Qt.Key.Key_Return)
    assert tab.run.seed == 17 and tab.busy
    qtbot.waitUntil(lambda: not tab.busy, timeout=WAIT_MS)
    tab.go_end()
    tab.set_active(False)  # another tab: the keys are theirs
    QTest.keyClick(tab, Qt.Key.Key_Home)
    assert tab.position == 10


def test_settings_round_trip(qtbot, tab, tmp_path):
    tab.sampler_combo.setCurrentIndex(tab.sampler_combo.findData("ddpm"))
    tab.steps_spin.setValue(200)
    tab.seed_spin.setValue(42)
    tab.count_combo.setCurrentIndex(tab.count_combo.findData(9))
    tab.digit_combo.setCurrentIndex(8)
    tab.guidance_slider.setValue(3.5)
    tab.panels_check.setChecked(True)
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    tab.save_settings(settings)
    settings.sync()
    other_holder = ModelHolder(tiny_model(), {}, "tiny")
    other = ReverseTab(other_holder, tab.digits, tab.pool, "cpu")
    other.restore_settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    got = other.run_settings()
    assert (got.sampler, got.steps, got.seed, got.count, got.digit) == ("ddpm", 200, 42, 9, 7)
    assert got.guidance == pytest.approx(3.5) and other.panels_check.isChecked() and not other.eta_spin.isEnabled()
    assert not other.busy  # not current: nothing runs
    other.shutdown()
    shiboken6.delete(other.controls)
    shiboken6.delete(other)


def test_in_the_chapter_only_the_current_tab_samples_and_exports(qtbot):
    from explorer.chapters.base import AppContext
    from explorer.chapters.diffusion.chapter import DiffusionChapter
    from models.images import load_builtin

    chapter = DiffusionChapter(AppContext(image=load_builtin("coffee"), workers=WorkerPool()))
    try:
        chapter.resize(1230, 780)
        chapter.show()
        chapter.holder.install(tiny_model(), {}, "tiny test model")  # every tab follows; sampling is quick
        reverse, compare = chapter.reverse_tab, chapter.compare_tab
        assert reverse.cache is None and compare.caches == {}  # not shown yet: nothing sampled
        reverse.steps_spin.setValue(10)
        reverse.count_combo.setCurrentIndex(0)
        seen: list[StepInput] = []
        reverse.frameShown.connect(seen.append)
        chapter.tabs.setCurrentIndex(chapter.REVERSE_TAB)
        qtbot.waitUntil(lambda: not reverse.busy and reverse.cache is not None and reverse.cache.complete,
                        timeout=WAIT_MS)
        assert seen and seen[0].total == 10
        assert reverse.controls.isVisible() and not compare.controls.isVisible()
        job = chapter.export_job()
        assert job.count == 11 and job.params["model"] == "tiny test model"
        chapter.activateWindow()
        qtbot.waitUntil(chapter.isActiveWindow, timeout=5000)
        reverse.pause()
        QTest.keyClick(chapter, Qt.Key.Key_Home)
        assert reverse.position == 0
        chapter.tabs.setCurrentIndex(chapter.COMPARE_TAB)
        assert not reverse.busy and compare.busy  # the Compare tab samples now, the Reverse tab is idle
        QTest.keyClick(chapter, Qt.Key.Key_End)  # the Compare tab's End: the Reverse tab stays put
        assert reverse.position == 0 and compare.fraction == 1.0
        compare.stop()
        assert chapter.export_job() is None  # Compare's, and its runs are not complete
    finally:
        chapter.shutdown()
        assert chapter.context.workers.stop_all(timeout_ms=WAIT_MS)  # the other tabs' views too
        chapter.close()
        shiboken6.delete(chapter)
