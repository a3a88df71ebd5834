"""The Image to image tab: the source (a scene or a file), its round trip, strength, the run, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.chapters.text2img.backend import PipelineHolder
from explorer.chapters.text2img.frames_export import EXPORT_SCALE, upscale_rgb
from explorer.chapters.text2img.img2img_tab import DEFAULT_SCENE_SEED, ImageToImageTab, square_rgb
from explorer.workers import WorkerPool
from models.data import make_shapes
from text2img_support import destroy_tab, tiny_pipeline

WAIT_MS = 30_000


def assert_close_pictures(a: np.ndarray, b: np.ndarray) -> None:
    """uint8 pictures equal within one level: the test's own model calls run on the main thread, whose
    torch thread count may differ from the workers' (another summation order, float rounding)."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.fixture
def tab(qtbot):
    holder = PipelineHolder(tiny_pipeline(), "tiny test pipeline")
    tab = ImageToImageTab(holder, WorkerPool(), "cpu")
    tab.holder_ref = holder
    tab.steps_spin.setValue(10)
    tab.strength_slider.setValue(0.5)
    tab.player.fps_spin.setValue(60)
    tab.resize(900, 700)
    tab.show()
    yield tab
    destroy_tab(tab)


def run(qtbot, tab: ImageToImageTab) -> None:
    if tab.active:
        tab.generate()
    else:
        tab.set_active(True)
    errors: list[str] = []
    tab.pool.errorOccurred.connect(errors.append)
    qtbot.waitUntil(lambda: bool(errors) or (not tab.busy and tab.complete()), timeout=WAIT_MS)
    assert not errors, errors
    tab.player.pause()


def test_the_source_is_a_shapes_scene_by_seed(qtbot, tab):
    scene = make_shapes(1, seed=DEFAULT_SCENE_SEED)
    np.testing.assert_array_equal(tab.source, scene.images[0])
    np.testing.assert_array_equal(tab.source_panel.image(), scene.images[0])
    assert scene.captions[0] in tab.source_name
    tab.scene_spin.setValue(DEFAULT_SCENE_SEED + 1)
    np.testing.assert_array_equal(tab.source, make_shapes(1, seed=DEFAULT_SCENE_SEED + 1).images[0])


def test_strength_one_half_of_ten_steps_runs_five_from_the_source_noised(qtbot, tab):
    run(qtbot, tab)
    pipe, frames = tab.holder.pipe, tab.run.frames
    assert len(frames) == 5 and tab.player.available == 6
    # The start: the source's latent noised to the 6th of the 10 timesteps with the seed's noise.
    scheduler = pipe.unet.scheduler("ddim", eta=0.0, clip_sample=False)
    scheduler.set_timesteps(10)
    t0 = int(scheduler.timesteps[5])
    assert frames[0].t == t0
    with torch.inference_mode():
        z0 = pipe.encode_images(tab.source[None])
        noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(0))
        start = scheduler.add_noise(z0, noise, torch.full((1,), t0, dtype=torch.long)).numpy()
    np.testing.assert_allclose(frames[0].latents, start, atol=1e-4)
    # The round trip and the noised start are shown; the result at the end.
    with torch.inference_mode():
        roundtrip = pipe.decode(pipe.encode_images(tab.source[None]))[0]
    assert_close_pictures(tab.roundtrip_panel.image(), roundtrip)
    np.testing.assert_array_equal(tab.start_panel.image(), frames[0].image[0])
    np.testing.assert_array_equal(tab.result_panel.image(), frames[-1].final_image[0])
    starts = tab.worker_starts
    tab.player.scrubber.setValue(2)
    np.testing.assert_array_equal(tab.zt_panel.image(), frames[2].image[0])
    assert tab.worker_starts == starts


def test_an_image_file_becomes_a_centre_cropped_32_pixel_source(qtbot, tab, tmp_path):
    wide = np.full((40, 80, 3), 255, np.uint8)
    wide[:, 10:70] = (250, 10, 10)  # the centre square (columns 20 … 59) is red, the sides white
    path = tmp_path / "wide.png"
    Image.fromarray(wide).save(path)
    assert tab.open_image_file(path)
    assert tab.source.shape == (32, 32, 3) and tab.file_radio.isChecked()
    np.testing.assert_array_equal(tab.source, np.broadcast_to(np.array([250, 10, 10], np.uint8), (32, 32, 3)))
    np.testing.assert_array_equal(square_rgb(wide), tab.source)
    assert tab.source_name == "wide.png"
    run(qtbot, tab)
    assert tab.run.spec.init_image is tab.source


def test_a_bad_image_file_says_so_once_and_keeps_the_source(qtbot, tab, tmp_path):
    messages: list[str] = []
    tab.message.connect(messages.append)
    before = tab.source.copy()
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"this is not a PNG")
    assert not tab.open_image_file(bad)
    assert len(messages) == 1 and "not-an-image.png" in messages[0] and "unchanged" in messages[0]
    np.testing.assert_array_equal(tab.source, before)
    assert tab.scene_radio.isChecked()
    assert not tab.open_image_file(tmp_path / "missing.png")
    np.testing.assert_array_equal(tab.source, before)


def test_export_ends_with_the_result(qtbot, tab):
    run(qtbot, tab)
    job = tab.export_job()
    assert job.count == 6 and job.params["strength"] == 0.5 and job.params["init"] == tab.source_name
    assert job.frames[-1].shape == (32 * EXPORT_SCALE, 32 * EXPORT_SCALE, 3)
    np.testing.assert_array_equal(job.frames[-1], upscale_rgb(tab.run.frames[-1].final_image[0], EXPORT_SCALE))
