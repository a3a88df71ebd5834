"""The Two prompts tab: two prompts from the same noise, kept in step, exported side by side."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.chapters.text2img.backend import PipelineHolder
from explorer.chapters.text2img.compare_tab import CompareTab, latent_distance
from explorer.chapters.text2img.frames_export import EXPORT_SCALE, upscale_rgb
from explorer.workers import WorkerPool
from models.ldm import generate_frames
from text2img_support import destroy_tab, tiny_pipeline

WAIT_MS = 30_000
STEPS = 8


def assert_close_pictures(a: np.ndarray, b: np.ndarray) -> None:
    """uint8 pictures equal within one level: the test's own model calls run on the main thread, whose
    torch thread count may differ from the workers' (another summation order, float rounding)."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.fixture
def tab(qtbot):
    holder = PipelineHolder(tiny_pipeline(), "tiny test pipeline")
    tab = CompareTab(holder, WorkerPool(), "cpu")
    tab.holder_ref = holder
    tab.steps_spin.setValue(STEPS)
    tab.player.fps_spin.setValue(60)
    tab.resize(900, 700)
    tab.show()
    yield tab
    destroy_tab(tab)


def run(qtbot, tab: CompareTab) -> None:
    if tab.active:
        tab.generate()
    else:
        tab.set_active(True)
    errors: list[str] = []
    tab.pool.errorOccurred.connect(errors.append)
    qtbot.waitUntil(lambda: bool(errors) or (not tab.busy and tab.complete()), timeout=WAIT_MS)
    assert not errors, errors
    tab.player.pause()


def test_both_prompts_start_from_the_same_noise_and_end_differently(qtbot, tab):
    run(qtbot, tab)
    left, right = tab.runs
    assert left.spec.prompt != right.spec.prompt and left.spec.seed == right.spec.seed
    assert len(left.frames) == len(right.frames) == STEPS
    np.testing.assert_array_equal(left.frames[0].latents, right.frames[0].latents)  # the same z_T
    assert not np.array_equal(left.frames[-1].final_image, right.frames[-1].final_image)
    # Each run is the run generate_frames makes for its prompt alone.
    alone = list(generate_frames(tab.holder.pipe, right.spec.prompt, num_steps=STEPS, seed=right.spec.seed))
    assert_close_pictures(alone[-1].final_image, right.frames[-1].final_image)
    # The distance curve: one point per step, 0 at the start, growing apart.
    _, distances = tab.distance_curve.getData()
    assert len(distances) == STEPS and distances[0] == 0.0 and distances[-1] > 0.0


def test_one_scrubber_moves_both_columns_from_the_cache(qtbot, tab):
    run(qtbot, tab)
    starts = tab.worker_starts
    left, right = tab.runs
    tab.player.scrubber.setValue(3)
    for k, run_ in enumerate((left, right)):
        np.testing.assert_array_equal(tab.big_panels[k].image(), run_.frames[3].x0_image[0])
        np.testing.assert_array_equal(tab.zt_panels[k].image(), run_.frames[3].image[0])
        np.testing.assert_array_equal(tab.final_panels[k].image(), run_.frames[-1].final_image[0])
    distance = latent_distance(left.frames[3].latents[0], right.frames[3].latents[0])
    assert f"{distance:.3f}" in tab.readout.text()
    tab.player.go_end()
    assert tab.player.position == STEPS
    for k, run_ in enumerate((left, right)):
        np.testing.assert_array_equal(tab.big_panels[k].image(), run_.frames[-1].final_image[0])
    assert tab.worker_starts == starts and not tab.pool.active()


def test_an_unknown_word_on_one_side_is_named_with_its_side(qtbot, tab):
    messages: list[str] = []
    tab.message.connect(messages.append)
    tab.prompt_edits_[1].setText("a yellow zork")
    run(qtbot, tab)
    assert any(m.startswith("Right: ") and "zork" in m for m in messages)
    assert not any("Left:" in m for m in messages)


def test_export_shows_both_runs_side_by_side_the_final_images_last(qtbot, tab):
    run(qtbot, tab)
    job = tab.export_job()
    assert job.count == STEPS + 1 and job.params["prompt"] == [r.spec.prompt for r in tab.runs]
    pictures = job.frames
    assert len(pictures) == STEPS + 1
    side = 32 * EXPORT_SCALE
    last = pictures[-1]
    assert last.shape == (side, 2 * side + 2 * EXPORT_SCALE, 3)
    np.testing.assert_array_equal(last[:, :side], upscale_rgb(tab.runs[0].frames[-1].final_image[0], EXPORT_SCALE))
    np.testing.assert_array_equal(last[:, -side:], upscale_rgb(tab.runs[1].frames[-1].final_image[0], EXPORT_SCALE))
    tab.stale = True  # a run to come: sampled afresh in the export's worker, the same pictures
    fresh = list(tab.export_job().iter_frames())
    for a, b in zip(fresh, pictures, strict=True):
        assert_close_pictures(a, b)
