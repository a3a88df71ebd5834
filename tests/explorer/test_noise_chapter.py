"""The Noise chapter: drive its real widgets and check the arrays and plots it shows."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt

from explorer.chapters.base import AppContext
import explorer.chapters.noise as noise_chapter
from explorer.chapters.noise import (
    BLOCK_VALUES,
    NoiseChapter,
    NoiseFrames,
    channel_histograms,
    pooled_histogram,
    run_parallel,
    split_rows,
    summed,
)
from explorer.export import export_frames, params_path
from explorer.widgets.readout import ReadoutLabel
from explorer.workers import WorkerPool
from models.images import LoadedImage
from models.noise import NOISE_KINDS, NoiseSource, psnr
from models.schedules import NoiseSchedule, forward_frames


def make_image(height: int = 96, width: int = 128, seed: int = 0, name: str = "test.png") -> LoadedImage:
    """Gradients plus a little texture, away from 0 and 255 so that noise is rarely clipped."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([40 + xx * 170 // width, 40 + yy * 170 // height, 40 + (xx + yy) % 170], axis=-1)
    pixels = np.clip(base + rng.integers(-10, 11, base.shape), 0, 255).astype(np.uint8)
    pixels.flags.writeable = False
    return LoadedImage(pixels=pixels, name=name, path=None)


@pytest.fixture
def chapter(qtbot):
    chapter = NoiseChapter(AppContext(image=make_image(), workers=WorkerPool()))
    qtbot.addWidget(chapter)
    chapter.resize(1220, 800)
    chapter.show()
    qtbot.waitExposed(chapter)
    yield chapter
    chapter.shutdown()
    assert not chapter.play_timer.isActive()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])


def set_strength(chapter: NoiseChapter, value: float) -> None:
    chapter.strength_slider.setValue(value)
    chapter.update_views()


def set_kind(chapter: NoiseChapter, kind: str) -> None:
    chapter.kind_combo.setCurrentIndex(chapter.kind_combo.findData(kind))


def show_diffusion(chapter: NoiseChapter) -> None:
    chapter.tabs.setCurrentIndex(chapter.DIFFUSION_TAB)


def set_t(chapter: NoiseChapter, t: int) -> None:
    chapter.t_slider.setValue(t)
    chapter.update_views()


def expected_xt(pixels: np.ndarray, seed: int, alpha_bar: float) -> np.ndarray:
    """x_t in closed form with plain numpy, shown with levels [−1, 1] → [0, 255]."""
    x0 = pixels.astype(np.float64) / 127.5 - 1.0
    eps = np.random.default_rng(seed).standard_normal(pixels.shape, dtype=np.float32).astype(np.float64)
    xt = math.sqrt(alpha_bar) * x0 + math.sqrt(1.0 - alpha_bar) * eps
    return np.rint(np.clip((xt + 1.0) * 127.5, 0, 255)).astype(np.uint8)


# ---------------------------------------------------------------------- part A: noise
def test_opens_on_the_context_image_with_clean_view(chapter):
    pixels = chapter.context.image.pixels
    assert chapter.tabs.currentIndex() == chapter.NOISE_TAB
    np.testing.assert_array_equal(chapter.clean_panel.image(), pixels)
    assert chapter.noisy_panel.image().shape == pixels.shape
    assert chapter.noisy_panel.image().dtype == np.uint8


def test_strength_zero_shows_the_clean_image(chapter):
    for kind in NOISE_KINDS:
        set_kind(chapter, kind)
        set_strength(chapter, 0.0)
        np.testing.assert_array_equal(chapter.noisy_panel.image(), chapter.clean_panel.image())
        assert np.all(chapter.noise_panel.image() == 128)
        assert chapter.psnr_label.text() == "PSNR ∞ dB"


def test_noisy_view_is_the_noise_source_applied_to_the_image(chapter):
    pixels = chapter.context.image.pixels
    clean = pixels.astype(np.float32) / 255
    for kind in NOISE_KINDS:
        set_kind(chapter, kind)
        set_strength(chapter, 0.3)
        noisy = NoiseSource(pixels.shape, chapter.seed).apply(clean, kind, 0.3)
        shown = chapter.noisy_panel.image().astype(int)
        assert np.abs(shown - np.rint(noisy * 255)).max() <= 1, kind
        assert np.count_nonzero(shown != pixels) > pixels.size // 10, kind
        # The noise view is noisy − clean as displayed, centred on mid-grey.
        np.testing.assert_array_equal(chapter.noise_panel.image().astype(int), np.clip(shown - pixels + 128, 0, 255))


def test_same_seed_different_strength_keeps_the_pattern(chapter):
    set_strength(chapter, 0.05)
    weak = chapter.noise_panel.image().astype(int) - 128
    set_strength(chapter, 0.1)
    strong = chapter.noise_panel.image().astype(int) - 128
    assert correlation(weak, strong) > 0.95
    assert np.abs(strong).mean() > 1.5 * np.abs(weak).mean()


def test_new_seed_changes_the_pattern(chapter, qtbot):
    set_strength(chapter, 0.1)
    before = chapter.noise_panel.image().astype(int)
    seed = chapter.seed
    qtbot.mouseClick(chapter.new_seed_button, Qt.MouseButton.LeftButton)
    assert chapter.seed != seed
    after = chapter.noise_panel.image().astype(int)
    assert abs(correlation(before, after)) < 0.1
    # Going back to the old seed brings the old pattern back.
    chapter.seed_spin.setValue(seed)
    np.testing.assert_array_equal(chapter.noise_panel.image(), before)


def test_psnr_label_matches_models_psnr(chapter):
    pixels = chapter.context.image.pixels
    clean = pixels.astype(np.float32) / 255
    for kind, strength in (("gaussian", 0.1), ("uniform", 0.2), ("salt-and-pepper", 0.05), ("poisson", 0.3)):
        set_kind(chapter, kind)
        set_strength(chapter, strength)
        noisy = NoiseSource(pixels.shape, chapter.seed).apply(clean, kind, strength)
        expected = psnr(clean, noisy)
        assert chapter.psnr_label.text() == f"PSNR {expected:.2f} dB"
        assert chapter.psnr_db == pytest.approx(expected, abs=1e-3)


def test_stronger_noise_lowers_psnr(chapter):
    values = []
    for strength in (0.02, 0.1, 0.3):
        set_strength(chapter, strength)
        values.append(chapter.psnr_db)
    assert values[0] > values[1] > values[2]


def test_histograms_show_what_the_views_show(chapter):
    set_strength(chapter, 0.2)
    for plot, image, pooled in (
        (chapter.clean_hist, chapter.clean_panel.image(), False),
        (chapter.noisy_hist, chapter.noisy_panel.image(), False),
        (chapter.noise_hist, chapter.noise_panel.image(), True),
    ):
        expected = pooled_histogram(image) if pooled else channel_histograms(image)
        for name, counts in expected.items():
            np.testing.assert_array_equal(plot.curves[name].yData, counts)
    # The noise histogram is centred on "no change".
    counts = chapter.noise_hist.curves["all"].yData
    assert abs(np.average(np.arange(256), weights=counts) - 128) < 3
    assert "all values" in chapter.noisy_hist.toolTip()  # a small image: every pixel counts
    assert "all values" in chapter.noise_hist.toolTip()


def test_histogram_height_follows_the_inner_bins(chapter):
    for strength in (0.02, 0.3, 0.05):
        set_strength(chapter, strength)
        for plot in (chapter.clean_hist, chapter.noise_hist, chapter.noisy_hist):
            inner = max(curve.yData[1:-1].max() for curve in plot.curves.values())
            assert 0.9 * plot.count_top <= 1.1 * inner <= 1.1 * plot.count_top  # refitted when off by 10 %
            assert plot.viewRange()[1] == [0, 1]  # the curves are scaled, the view stays


def test_band_histograms_add_up_to_the_whole_images():
    pixels = np.random.default_rng(2).integers(0, 256, (203, 77, 3), dtype=np.uint8)
    for step in (1, 5, 16):
        for bands in ([slice(0, 203)], [slice(0, 100), slice(100, 203)], [slice(0, 7), slice(7, 150), slice(150, 203)]):
            rgb = summed([channel_histograms(pixels[b], step, b.start * 77) for b in bands])
            pooled = summed([pooled_histogram(pixels[b], step, b.start * 77) for b in bands])
            for name, counts in channel_histograms(pixels, step).items():
                np.testing.assert_array_equal(rgb[name], counts)
            np.testing.assert_array_equal(pooled["all"], pooled_histogram(pixels, step)["all"])


def test_histograms_subsample_large_images():
    big = np.zeros((1024, 1024, 3), dtype=np.uint8)
    assert channel_histograms(big)["R"].sum() == 1024 * 1024 // 16  # every 16th pixel of a 1024² image
    assert pooled_histogram(big)["all"].sum() == math.ceil(big.size / 49)  # as many values as pixels above
    # Every channel is counted, whatever the step.
    for height in (512, 768, 1024):
        channels = np.broadcast_to(np.array([0, 1, 2], dtype=np.uint8), (height, 1024, 3))
        counts = pooled_histogram(channels)["all"]
        assert counts[0] > 0 and counts[1] > 0 and counts[2] > 0


def test_split_rows_covers_every_row_once():
    assert split_rows(10, 2) == [slice(0, 5), slice(5, 10)]
    assert split_rows(1, 2) == [slice(0, 1)]
    bands = split_rows(7, 3)
    assert len(bands) == 3 and bands[0].start == 0 and bands[-1].stop == 7
    assert all(a.stop == b.start and a.stop > a.start for a, b in zip(bands, bands[1:]))


def test_run_parallel_returns_results_in_order_and_raises_errors(qtbot):
    threads = set()

    def job(value):
        threads.add(threading.get_ident())
        return value * 2

    assert run_parallel([lambda v=v: job(v) for v in range(3)]) == [0, 2, 4]
    assert threading.get_ident() in threads  # the first job runs on the calling thread
    ran = []

    def failing():
        raise ValueError("bad band")

    with pytest.raises(ValueError, match="bad band"):
        run_parallel([lambda: ran.append("first"), failing, lambda: ran.append("third")])
    assert sorted(ran) == ["first", "third"]  # every job ran before the error came back
    assert run_parallel([]) == []


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_frames_are_the_same_in_one_band_or_several(monkeypatch, kind):
    pixels = make_image(203, 160).pixels  # bands and blocks that do not divide the rows
    together = NoiseFrames(pixels, seed=3)
    monkeypatch.setattr(noise_chapter, "PARALLEL_BANDS", 1)
    alone = NoiseFrames(pixels, seed=3)
    assert len(together._bands) == min(2, noise_chapter.os.cpu_count() or 1) and len(alone._bands) == 1
    assert together.noise(kind, 0.3) == pytest.approx(alone.noise(kind, 0.3), abs=1e-9)
    np.testing.assert_array_equal(together.noisy_u8, alone.noisy_u8)
    np.testing.assert_array_equal(together.noise_u8, alone.noise_u8)
    for name in "RGB":
        np.testing.assert_array_equal(together.noisy_counts[name], channel_histograms(alone.noisy_u8)[name])
    np.testing.assert_array_equal(together.noise_counts["all"], pooled_histogram(alone.noise_u8)["all"])
    together.diffusion(0.4)
    alone.diffusion(0.4)
    np.testing.assert_array_equal(together.xt_u8, alone.xt_u8)
    np.testing.assert_array_equal(together.xt_counts["all"], pooled_histogram(alone.xt_u8)["all"])


def test_readout_label_keeps_its_height_whatever_the_text(qtbot):
    label = ReadoutLabel(lines=1)
    qtbot.addWidget(label)
    height = label.height()
    label.setText("two<br>lines")
    assert label.height() == height and label.text() == "two<br>lines"
    table = "<table>" + "<tr><td>row</td></tr>" * 6 + "</table>"
    label.fit_height(table)  # a box for texts that always have these rows
    assert label.height() > 3 * height
    label.setText(table.replace("row", "another row"))
    assert label.height() == label.maximumHeight() == label.minimumHeight()


def test_kind_changes_the_strength_label(chapter):
    labels = set()
    for kind in NOISE_KINDS:
        set_kind(chapter, kind)
        labels.add(chapter.strength_label.text())
    assert len(labels) == len(NOISE_KINDS)


def test_dragging_the_slider_updates_through_the_throttle(chapter, qtbot):
    chapter.strength_slider.setValue(0.0)
    chapter.update_views()
    chapter.strength_slider.setValue(0.25)  # no direct update_views(): the throttle must deliver it
    qtbot.waitUntil(lambda: chapter.psnr_label.text() != "PSNR ∞ dB", timeout=2000)
    assert chapter.psnr_db < 20


# ---------------------------------------------------------------------- part B: forward diffusion
def test_t_zero_shows_the_clean_image(chapter):
    show_diffusion(chapter)
    set_t(chapter, 0)
    np.testing.assert_array_equal(chapter.xt_panel.image(), chapter.context.image.pixels)
    assert "x<sub>0</sub> = <b>1.0000</b>" in chapter.formula_label.text()


def test_t_equal_T_is_pure_noise_for_linear_1000(chapter):
    show_diffusion(chapter)
    assert chapter.schedule.schedule == "linear" and chapter.schedule.num_timesteps == 1000
    set_t(chapter, 1000)
    shown = chapter.xt_panel.image()
    assert abs(correlation(shown, chapter.context.image.pixels)) < 0.05
    eps = np.random.default_rng(chapter.seed).standard_normal(shown.shape, dtype=np.float32)
    assert correlation(shown, np.clip(eps, -1, 1)) > 0.95


@pytest.mark.parametrize("schedule", ["linear", "scaled-linear", "cosine", "sigmoid"])
def test_displayed_xt_is_the_closed_form(chapter, schedule):
    show_diffusion(chapter)
    chapter.schedule_combo.setCurrentIndex(chapter.schedule_combo.findData(schedule))
    chapter.seed_spin.setValue(7)
    reference = NoiseSchedule.from_config(schedule, 1000)
    for t in (1, 137, 500, 999):
        set_t(chapter, t)
        shown = chapter.xt_panel.image().astype(int)
        expected = expected_xt(chapter.context.image.pixels, 7, reference.alpha_bar(t)).astype(int)
        assert np.abs(shown - expected).max() <= 1
        assert np.count_nonzero(shown != expected) <= shown.size // 1000


def test_displayed_xt_matches_the_exported_frames(chapter):
    show_diffusion(chapter)
    pixels = chapter.context.image.pixels
    job = chapter.export_job()
    frames = list(job.iter_frames())
    for t, frame in zip(job.params["t"], frames):
        set_t(chapter, t)
        shown = chapter.xt_panel.image().astype(int)
        # The same frames, up to float rounding at exact ties (see xt_to_uint8).
        assert np.abs(shown - frame).max() <= 1
        assert np.count_nonzero(shown != frame) <= shown.size // 5000
    np.testing.assert_array_equal(frames[0], pixels)


def test_plots_hold_the_schedule_and_the_marker_sits_at_t(chapter):
    show_diffusion(chapter)
    for schedule, steps in (("linear", 1000), ("cosine", 250), ("sigmoid", 40)):
        chapter.schedule_combo.setCurrentIndex(chapter.schedule_combo.findData(schedule))
        chapter.timesteps_spin.setValue(steps)
        reference = NoiseSchedule.from_config(schedule, steps)
        np.testing.assert_array_equal(chapter.beta_curve.xData, np.arange(1, steps + 1))
        np.testing.assert_allclose(chapter.beta_curve.yData, reference.betas)
        np.testing.assert_allclose(chapter.alpha_bar_curve.yData, reference.alphas_cumprod)
        np.testing.assert_allclose(chapter.snr_curve.yData, reference.snr(), rtol=1e-12)
        assert len(chapter.snr_curve.yData) == steps
        assert chapter.t_slider.maximum() == steps
        set_t(chapter, steps // 3)
        assert [marker.value() for marker in chapter.markers] == [steps // 3] * 3
    assert chapter.snr_plot.getAxis("left").logMode


def test_formula_reads_out_the_current_numbers(chapter):
    show_diffusion(chapter)
    set_t(chapter, 300)
    abar = NoiseSchedule.from_config().alpha_bar(300)
    text = chapter.formula_label.text()
    assert "t = 300 of 1000" in text
    assert f"{math.sqrt(abar):.4f}" in text and f"{math.sqrt(1 - abar):.4f}" in text
    assert f"{abar:.5f}" in text
    assert f"{abar / (1 - abar):.4g}" in text


def test_cosine_disables_the_beta_range_and_says_why(chapter):
    show_diffusion(chapter)
    chapter.schedule_combo.setCurrentIndex(chapter.schedule_combo.findData("cosine"))
    assert not chapter.beta_start_spin.isEnabled() and not chapter.beta_end_spin.isEnabled()
    assert "cosine" in chapter.beta_start_spin.toolTip()
    chapter.schedule_combo.setCurrentIndex(chapter.schedule_combo.findData("linear"))
    assert chapter.beta_start_spin.isEnabled()


def test_beta_range_changes_the_schedule_and_a_bad_range_is_refused(chapter, qtbot):
    show_diffusion(chapter)
    chapter.beta_end_spin.setValue(0.04)
    assert chapter.schedule.beta_end == pytest.approx(0.04)
    assert chapter.beta_curve.yData[-1] == pytest.approx(0.04)
    with qtbot.waitSignal(chapter.statusMessage) as message:
        chapter.beta_start_spin.setValue(0.045)
    assert "β start" in message.args[0]
    assert chapter.schedule.beta_start == pytest.approx(1e-4)  # unchanged


def test_changing_T_keeps_t_the_same_fraction(chapter):
    show_diffusion(chapter)
    set_t(chapter, 500)
    chapter.timesteps_spin.setValue(100)
    assert chapter.t == 50
    assert chapter.xt_panel.image().shape == chapter.context.image.pixels.shape


def test_filmstrip_shows_evenly_spaced_frames_and_jumps_on_click(chapter, qtbot):
    show_diffusion(chapter)
    assert len(chapter.filmstrip_buttons) == chapter.FILMSTRIP_FRAMES == 8
    assert chapter.filmstrip_steps == [0, 143, 286, 429, 571, 714, 857, 1000]
    assert [b.text() for b in chapter.filmstrip_buttons] == [f"t={t}" for t in chapter.filmstrip_steps]
    assert all(not b.icon().isNull() for b in chapter.filmstrip_buttons)
    np.testing.assert_array_equal(chapter.filmstrip_frames[0], chapter.context.image.pixels[::2, ::2])
    qtbot.mouseClick(chapter.filmstrip_buttons[3], Qt.MouseButton.LeftButton)
    assert chapter.t == 429
    assert chapter.filmstrip_buttons[3].isChecked()
    np.testing.assert_array_equal(chapter.xt_panel.image()[::2, ::2], chapter.filmstrip_frames[3])


def test_filmstrip_is_not_recomputed_when_t_moves(chapter):
    show_diffusion(chapter)
    frames = chapter.filmstrip_frames
    set_t(chapter, 321)
    assert chapter.filmstrip_frames is frames
    chapter.seed_spin.setValue(chapter.seed + 1)
    assert chapter.filmstrip_frames is not frames


def test_play_runs_t_to_T_and_stops(chapter, qtbot):
    show_diffusion(chapter)
    chapter.PLAY_SECONDS = 0.3  # the test need not wait 3 s
    set_t(chapter, 200)
    qtbot.mouseClick(chapter.play_button, Qt.MouseButton.LeftButton)
    assert chapter.play_timer.isActive()
    assert "Pause" in chapter.play_button.text()
    qtbot.waitUntil(lambda: chapter.t > 200, timeout=2000)
    qtbot.waitUntil(lambda: not chapter.play_timer.isActive(), timeout=3000)
    assert chapter.t == 1000
    assert "Play" in chapter.play_button.text()
    expected = expected_xt(chapter.context.image.pixels, chapter.seed, chapter.schedule.alpha_bar(1000)).astype(int)
    assert np.abs(chapter.xt_panel.image().astype(int) - expected).max() <= 1
    # At T, Play starts again from 0.
    chapter.toggle_play()
    assert chapter.t < 1000
    chapter.toggle_play()  # pause
    assert not chapter.play_timer.isActive()


def test_play_pauses_when_pressed_again(chapter, qtbot):
    show_diffusion(chapter)
    set_t(chapter, 0)
    chapter.toggle_play()
    qtbot.waitUntil(lambda: chapter.t > 0, timeout=2000)
    chapter.toggle_play()
    t = chapter.t
    assert not chapter.play_timer.isActive() and t < 1000
    qtbot.wait(100)
    assert chapter.t == t


def test_keys_play_and_step_on_the_diffusion_tab(chapter, qtbot):
    show_diffusion(chapter)
    chapter.activateWindow()
    chapter.t_slider.setFocus()
    qtbot.waitUntil(chapter.t_slider.hasFocus, timeout=2000)
    set_t(chapter, 10)
    qtbot.keyClick(chapter.t_slider, Qt.Key.Key_Right)
    assert chapter.t == 11
    qtbot.keyClick(chapter.t_slider, Qt.Key.Key_Left)
    qtbot.keyClick(chapter.t_slider, Qt.Key.Key_Left)
    assert chapter.t == 9
    qtbot.keyClick(chapter.t_slider, Qt.Key.Key_Space)
    assert chapter.play_timer.isActive()
    qtbot.keyClick(chapter.t_slider, Qt.Key.Key_Space)
    assert not chapter.play_timer.isActive()


def test_keys_do_not_touch_t_on_the_noise_tab(chapter, qtbot):
    chapter.activateWindow()
    chapter.strength_slider.setFocus()
    qtbot.waitUntil(chapter.strength_slider.hasFocus, timeout=2000)
    t = chapter.t
    qtbot.keyClick(chapter.strength_slider, Qt.Key.Key_Space)
    qtbot.keyClick(chapter.strength_slider, Qt.Key.Key_Right)
    assert chapter.t == t and not chapter.play_timer.isActive()


def test_leaving_the_diffusion_tab_pauses(chapter):
    show_diffusion(chapter)
    chapter.toggle_play()
    chapter.tabs.setCurrentIndex(chapter.NOISE_TAB)
    assert not chapter.play_timer.isActive()


# ---------------------------------------------------------------------- chapter hooks
def test_settings_round_trip(chapter, qtbot, tmp_path):
    set_kind(chapter, "salt-and-pepper")
    chapter.strength_slider.setValue(0.35)
    chapter.seed_spin.setValue(1234)
    chapter.schedule_combo.setCurrentIndex(chapter.schedule_combo.findData("sigmoid"))
    chapter.beta_start_spin.setValue(0.0002)
    chapter.beta_end_spin.setValue(0.03)
    chapter.timesteps_spin.setValue(400)
    chapter.t_slider.setValue(123)
    chapter.tabs.setCurrentIndex(chapter.DIFFUSION_TAB)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.beginGroup("chapters/noise")
    chapter.save_settings(settings)
    settings.endGroup()
    settings.sync()

    again = NoiseChapter(AppContext(image=make_image(), workers=WorkerPool()))
    qtbot.addWidget(again)
    reread = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    reread.beginGroup("chapters/noise")
    again.restore_settings(reread)
    assert again.kind == "salt-and-pepper"
    assert again.strength == pytest.approx(0.35)
    assert again.seed == 1234
    assert again.schedule.schedule == "sigmoid"
    assert (again.schedule.beta_start, again.schedule.beta_end) == pytest.approx((0.0002, 0.03))
    assert again.schedule.num_timesteps == 400
    assert again.t == 123
    assert again.tabs.currentIndex() == again.DIFFUSION_TAB
    np.testing.assert_array_equal(again.xt_panel.image(), chapter.xt_panel.image())
    again.shutdown()


def test_restore_ignores_missing_and_bad_values(chapter, tmp_path):
    settings = QSettings(str(tmp_path / "bad.ini"), QSettings.Format.IniFormat)
    bad = {"kind": "sparkles", "strength": "loud", "seed": -5, "timesteps": 5, "t": "x", "tab": 9}
    for key, value in bad.items():
        settings.setValue(key, value)
    chapter.restore_settings(settings)
    assert chapter.kind == "gaussian" and chapter.seed == 0
    assert chapter.schedule.num_timesteps == 1000 and chapter.tabs.currentIndex() == chapter.NOISE_TAB


@pytest.mark.parametrize("shape", [(40, 30), (300, 500), (BLOCK_VALUES // 3 + 7, 2)])
def test_set_image_of_another_size(chapter, shape):
    image = make_image(*shape, seed=3, name="other.png")
    chapter.set_image(image)
    set_strength(chapter, 0.2)
    assert chapter.noisy_panel.image().shape == image.pixels.shape
    clean = image.pixels.astype(np.float32) / 255
    noisy = NoiseSource(image.pixels.shape, chapter.seed).apply(clean, "gaussian", 0.2)
    assert chapter.psnr_db == pytest.approx(psnr(clean, noisy), abs=1e-3)  # summed over many row blocks
    np.testing.assert_array_equal(chapter.clean_panel.image(), image.pixels)
    show_diffusion(chapter)
    set_t(chapter, 0)
    np.testing.assert_array_equal(chapter.xt_panel.image(), image.pixels)
    set_t(chapter, 400)
    expected = expected_xt(image.pixels, chapter.seed, chapter.schedule.alpha_bar(400)).astype(int)
    assert np.abs(chapter.xt_panel.image().astype(int) - expected).max() <= 1
    assert len(chapter.filmstrip_frames) == 8
    assert chapter.export_job().params["image"] == "other.png"


def test_export_job_is_the_forward_sequence_with_the_cli_parameters(chapter):
    chapter.seed_spin.setValue(5)
    chapter.schedule_combo.setCurrentIndex(chapter.schedule_combo.findData("cosine"))
    chapter.timesteps_spin.setValue(200)
    job = chapter.export_job()
    assert job.count == 32
    assert job.params == {  # the names of `diffusion-explorer export forward`
        "sequence": "forward",
        "image": "test.png",
        "image_path": None,
        "schedule": "cosine",
        "timesteps": 200,
        "beta_start": pytest.approx(1e-4),
        "beta_end": pytest.approx(0.02),
        "seed": 5,
        "t": job.params["t"],
    }
    assert job.params["t"][0] == 0 and job.params["t"][-1] == 200 and len(job.params["t"]) == 32
    frames = list(job.iter_frames())
    reference = [frame for _, frame in forward_frames(chapter.context.image.pixels, chapter.schedule, 32, 5)]
    assert len(frames) == 32
    for frame, expected in zip(frames, reference):
        np.testing.assert_array_equal(frame, expected)


def test_export_job_writes_a_sequence_with_its_parameters(chapter, tmp_path):
    chapter.timesteps_spin.setValue(50)
    job = chapter.export_job()
    out = export_frames(list(job.iter_frames()), tmp_path / "forward.gif", job.params)
    record = json.loads(params_path(out).read_text())
    assert record["frames"] == 32 and record["timesteps"] == 50 and record["t"][-1] == 50
    with Image.open(out) as gif:
        assert gif.n_frames == 32
        assert np.asarray(gif.convert("RGB")).shape == chapter.context.image.pixels.shape


def test_export_job_with_few_steps_has_at_most_T_plus_one_frames(chapter):
    chapter.timesteps_spin.setValue(10)
    job = chapter.export_job()
    assert job.count == 11 and job.params["t"] == list(range(11))


def test_shutdown_stops_play(chapter):
    show_diffusion(chapter)
    chapter.toggle_play()
    chapter.shutdown()
    assert not chapter.play_timer.isActive()
