"""The Diffusion chapter's Compare tab: settings side by side from the same noise, kept in step."""

from __future__ import annotations

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QSettings

from explorer.chapters.diffusion.backend import ModelHolder, visited_timesteps
from explorer.chapters.diffusion.backend import FreshDigits
from explorer.chapters.diffusion.compare_tab import CompareTab
from explorer.workers import WorkerPool
from models import diffusion
from models.diffusion import to_uint8
from diffusion_support import destroy_tab, tiny_model

WAIT_MS = 30_000




@pytest.fixture
def tab(qtbot):
    holder = ModelHolder(tiny_model(), {}, "tiny test model")
    digits = FreshDigits(np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.int64), 0)
    tab = CompareTab(holder, digits, WorkerPool(), "cpu")
    tab.holder_ref = holder
    tab.steps_spins[0].setValue(40)  # DDPM-40, DDIM-50 → 20, DDIM-10: quick
    tab.steps_spins[1].setValue(20)
    tab.resize(900, 600)
    tab.show()
    yield tab
    destroy_tab(tab)


def run(qtbot, tab: CompareTab) -> None:
    if tab.active:
        tab.generate()
    else:
        tab.set_active(True)
    qtbot.waitUntil(lambda: not tab.busy and tab.caches and all(c.complete for c in tab.caches.values()),
                    timeout=WAIT_MS)
    tab.pause()


def test_defaults_are_ddpm_1000_ddim_50_ddim_10(qtbot):
    holder = ModelHolder(tiny_model(), {}, "tiny")
    tab = CompareTab(holder, None, WorkerPool(), "cpu")
    assert [s.describe() for s in tab.column_settings()] == ["DDPM-1000", "DDIM-50", "DDIM-10"]
    assert not tab.busy  # nothing runs before the tab is shown
    tab.shutdown()
    shiboken6.delete(tab.controls)
    shiboken6.delete(tab)


def test_each_column_visits_the_timesteps_of_its_setting(qtbot, tab):
    run(qtbot, tab)
    model = tab.holder.model
    for k, (sampler, steps) in enumerate((("ddpm", 40), ("ddim", 20), ("ddim", 10))):
        expected = visited_timesteps(model, sampler, steps)
        assert tab.columns[k].strip.timesteps() == expected
        assert tab.caches[k].t == expected  # what the run really visited
        assert f"{sampler.upper()}-{steps}" in tab.columns[k].panel.title_label.text()
    assert tab.columns[2].strip.timesteps()[0] > 850 and tab.columns[2].strip.timesteps()[-1] < 100


def test_one_scrubber_keeps_the_columns_at_the_same_fraction(qtbot, tab):
    run(qtbot, tab)
    tab.scrubber.setValue(500)  # half of every run
    for k, steps in enumerate((40, 20, 10)):
        position = steps // 2
        step = tab.caches[k].frames[position]
        assert np.array_equal(tab.columns[k].panel.image(), to_uint8(step.x_t[0]))
        assert tab.columns[k].strip.marker.value() == step.t
        assert f"step {position + 1} / {steps}" in tab.columns[k].readout.text()
    tab.scrubber.setValue(1000)  # the end: the final images, each with its time
    model = tab.holder.model
    for k, (sampler, steps) in enumerate((("ddpm", 40), ("ddim", 20), ("ddim", 10))):
        final = tab.caches[k].last().x_prev[0]
        assert np.array_equal(tab.columns[k].panel.image(), to_uint8(final))
        assert "final image in" in tab.columns[k].readout.text() and k in tab.seconds
        if sampler == "ddim":  # deterministic: the same image as generate() makes
            made = diffusion.generate(model, "ddim", steps, count=1, seed=0)[0]
            assert np.abs(tab.columns[k].panel.image().astype(int) - made.astype(int)).max() <= 1
    # Same noise x_T in every column.
    first = [tab.caches[k].frames[0].x_t[0] for k in range(3)]
    assert np.array_equal(first[0], first[1]) and np.array_equal(first[1], first[2])


def test_play_runs_every_column_to_its_end(qtbot, tab):
    run(qtbot, tab)
    tab.duration_spin.setValue(1)
    tab._jump(0.0)
    tab.toggle_play()
    assert tab.playing
    qtbot.waitUntil(lambda: not tab.playing, timeout=WAIT_MS)
    assert tab.fraction == 1.0 and tab.scrubber.value() == 1000


def test_two_columns_and_an_edited_setting(qtbot, tab):
    tab.third_check.setChecked(False)
    tab.sampler_combos[0].setCurrentIndex(tab.sampler_combos[0].findData("ddim"))
    tab.steps_spins[0].setValue(15)
    run(qtbot, tab)
    assert sorted(tab.runs) == [0, 1] and not tab.columns[2].isVisible()
    assert tab.runs[0].describe() == "DDIM-15" and tab.caches[0].computed == 15


def test_a_new_model_restarts_the_runs(qtbot, tab):
    run(qtbot, tab)
    before = tab.caches[2].last().x_prev.copy()
    other = tiny_model(conditional=False, seed=3)
    tab.holder.install(other, {}, "another tiny model")
    tab.refresh()  # the chapter's reaction to holder.changed
    assert tab.busy and not tab.digit_combo.isEnabled()
    qtbot.waitUntil(lambda: not tab.busy and all(c.complete for c in tab.caches.values()), timeout=WAIT_MS)
    made = diffusion.generate(other, "ddim", 10, count=1, seed=0)[0]
    assert np.abs(to_uint8(tab.caches[2].last().x_prev[0]).astype(int) - made.astype(int)).max() <= 1
    assert not np.array_equal(before, tab.caches[2].last().x_prev)


def test_stop_keeps_what_is_computed(qtbot, tab):
    tab.steps_spins[0].setValue(1000)
    tab.set_active(True)
    qtbot.waitUntil(lambda: 0 in tab.caches and tab.caches[0].computed >= 3, timeout=WAIT_MS)
    tab.stop()
    qtbot.waitUntil(lambda: not tab.pool.active(), timeout=WAIT_MS)
    assert not tab.busy and not tab.caches[0].complete
    assert tab.caches[2].complete and tab.caches[1].complete  # the short runs went first
    assert tab.export_job() is None  # nothing to export until every column is complete


def test_export_job_puts_the_columns_side_by_side(qtbot, tab):
    run(qtbot, tab)
    job = tab.export_job()
    frames = list(job.iter_frames())
    assert job.count == len(frames) == 41  # the longest run's steps + 1
    assert frames[0].shape == (168, 3 * 168 + 2 * 6, 3)
    last = frames[-1][::6, ::6, 0]
    assert np.array_equal(last[:, :28], to_uint8(tab.caches[0].last().x_prev[0]))
    assert [c["steps"] for c in job.params["columns"]] == [40, 20, 10] and job.params["seed"] == 0


def test_settings_round_trip(qtbot, tab, tmp_path):
    tab.sampler_combos[2].setCurrentIndex(tab.sampler_combos[2].findData("ddpm"))
    tab.steps_spins[2].setValue(100)
    tab.third_check.setChecked(False)
    tab.seed_spin.setValue(9)
    path = str(tmp_path / "s.ini")
    settings = QSettings(path, QSettings.Format.IniFormat)
    tab.save_settings(settings)
    settings.sync()
    other = CompareTab(tab.holder, tab.digits, tab.pool, "cpu")
    other.restore_settings(QSettings(path, QSettings.Format.IniFormat))
    assert [s.describe() for s in other.column_settings()] == ["DDPM-40", "DDIM-20"]
    assert other.sampler_combos[2].currentData() == "ddpm" and other.steps_spins[2].value() == 100
    assert other.seed_spin.value() == 9 and not other.busy
    other.shutdown()
    shiboken6.delete(other.controls)
    shiboken6.delete(other)
