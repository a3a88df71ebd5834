"""The Text to image chapter as a whole: registration, the pipeline in use, loading a U-Net, tabs, export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QSettings

from explorer.chapters import chapter_names
from explorer.chapters.base import AppContext
from explorer.chapters.text2img import TextToImageChapter, chapter as chapter_module
from explorer.chapters.text2img.frames_tab import SamplingTab
from explorer.workers import WorkerPool
from models.diffusion import DiffusionConfig, DiffusionModel
from models.images import load_builtin
from models.ldm import save_ldm
from models.unet import UNetConfig
from text2img_support import tiny_pipeline

REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 30_000


def destroy(chapter: TextToImageChapter) -> None:
    chapter.shutdown()
    assert chapter.context.workers.stop_all()
    chapter.close()
    shiboken6.delete(chapter)


@pytest.fixture
def chapter(qtbot, monkeypatch):
    monkeypatch.setattr(chapter_module, "load_shipped", lambda device: (tiny_pipeline(), "shipped", ""))
    chapter = TextToImageChapter(AppContext(image=load_builtin("coffee"), workers=WorkerPool()))
    chapter.resize(1230, 780)
    chapter.show()
    qtbot.waitExposed(chapter)
    errors: list[str] = []  # any worker's error, reported after the test
    chapter.context.workers.errorOccurred.connect(errors.append)
    yield chapter
    destroy(chapter)
    assert not errors, errors


def messages_of(chapter: TextToImageChapter) -> list[str]:
    messages: list[str] = []
    chapter.statusMessage.connect(messages.append)
    return messages


def ldm_file(tmp_path: Path, context_dim: int = 16) -> Path:
    """A tiny latent U-Net that fits the tiny pipeline's CLIP (width 16) and VAE (4 channels)."""
    unet = UNetConfig(in_channels=4, image_size=8, channels=(8, 16), emb_dim=16, groups=4, attention_heads=2,
                      num_classes=None, context_dim=context_dim)
    return save_ldm(DiffusionModel(DiffusionConfig(unet=unet)), tmp_path / f"ldm{context_dim}", {"steps": 3})


def test_the_chapter_comes_after_diffusion_and_loads_without_torch():
    names = chapter_names()
    assert names.index("text2img") == names.index("diffusion") + 1
    code = (
        "import sys, explorer.chapters as c;"
        "assert c.chapter_entry('text2img').load().__name__ == 'TextToImageChapter';"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_text_to_image_tab_samples_when_shown_and_the_pipeline_is_described(qtbot, chapter):
    titles = [chapter.tabs.tabText(i) for i in range(chapter.tabs.count())]
    assert titles == list(chapter.TAB_TITLES)
    assert titles[-4:] == ["Text to image", "Two prompts", "Image to image", "Train"]
    chapter.tabs.setCurrentIndex(titles.index("Text to image"))
    assert chapter.pipeline_tab.active
    qtbot.waitUntil(lambda: not chapter.busy and chapter.pipeline_tab.complete(), timeout=WAIT_MS)
    assert "shipped" in chapter.model_label.text() and "cross-attention" in chapter.model_label.text()
    assert not chapter.restore_button.isEnabled()


def test_switching_tabs_shows_only_the_current_controls_and_runs_only_there(qtbot, chapter):
    for index, page in enumerate(chapter.tab_pages):
        chapter.tabs.setCurrentIndex(index)
        assert [p.controls.isVisible() for p in chapter.tab_pages] == [i == index for i in range(len(chapter.tab_pages))]
        assert page.active and sum(p.active for p in chapter.tab_pages) == 1
        sampling = [p for p in chapter.tab_pages if isinstance(p, SamplingTab)]
        assert all(not p.busy for p in sampling if p is not page)  # a hidden tab does not sample
        if page in sampling:
            qtbot.waitUntil(lambda page=page: not page.busy and page.complete(), timeout=WAIT_MS)
            job = chapter.export_job()
            assert job is not None and job.count == len(job.frames)


def test_export_follows_the_current_tab(qtbot, chapter):
    chapter.tabs.setCurrentIndex(chapter.tab_pages.index(chapter.pipeline_tab))
    qtbot.waitUntil(lambda: chapter.pipeline_tab.complete(), timeout=WAIT_MS)
    assert chapter.export_job().default_name.startswith("text2img-")
    chapter.tabs.setCurrentIndex(chapter.tab_pages.index(chapter.compare_tab))
    qtbot.waitUntil(lambda: chapter.compare_tab.complete(), timeout=WAIT_MS)
    assert chapter.export_job().default_name.startswith("two-prompts-")


def test_a_loaded_u_net_replaces_only_the_u_net_and_restore_brings_the_shipped_back(qtbot, chapter, tmp_path):
    shipped = chapter.holder.pipe
    chapter.tabs.setCurrentIndex(chapter.tab_pages.index(chapter.pipeline_tab))
    path = ldm_file(tmp_path)
    assert chapter.load_weights(path)
    pipe = chapter.holder.pipe
    assert pipe.unet is not shipped.unet and pipe.clip is shipped.clip and pipe.vae is shipped.vae
    assert pipe.names["unet"] == "ldm16" and chapter.holder.origin == f"loaded from {path.name}"
    assert f"loaded from {path.name}" in chapter.model_label.text() and chapter.restore_button.isEnabled()
    qtbot.waitUntil(lambda: chapter.pipeline_tab.complete() and not chapter.busy, timeout=WAIT_MS)
    assert chapter.pipeline_tab.worker_starts >= 2  # the current tab sampled again with the new U-Net
    chapter.restore_button.click()
    assert chapter.holder.pipe is shipped and not chapter.restore_button.isEnabled()


def test_bad_weights_leave_the_pipeline_in_use(chapter, tmp_path):
    messages = messages_of(chapter)
    pipe = chapter.holder.pipe
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not weights at all")
    assert not chapter.load_weights(broken)
    assert not chapter.load_weights(tmp_path / "missing.safetensors")
    assert not chapter.load_weights(ldm_file(tmp_path, context_dim=32))  # made for another CLIP
    assert chapter.holder.pipe is pipe
    assert len(messages) == 3 and all("unchanged" in m for m in messages)
    assert "32" in messages[2]


def test_the_tab_and_the_prompts_are_remembered(chapter, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    last = chapter.tabs.count() - 1
    chapter.tabs.setCurrentIndex(last)
    chapter.pipeline_tab.prompt_edit.setText("a green star")
    chapter.save_settings(settings)
    chapter.tabs.setCurrentIndex(0)
    chapter.pipeline_tab.prompt_edit.setText("")
    chapter.restore_settings(settings)
    assert chapter.tabs.currentIndex() == last
    assert chapter.pipeline_tab.prompt_edit.text() == "a green star"


def test_the_screenshot_command_renders_the_chapter(tmp_path):
    out = tmp_path / "t.png"
    result = subprocess.run([sys.executable, "-m", "explorer", "screenshot", "text2img", "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    from PIL import Image

    with Image.open(out) as picture:
        assert picture.size[0] > 800 and picture.size[1] > 500


def test_an_opened_image_becomes_the_image_to_image_source(chapter):
    from explorer.chapters.text2img.img2img_tab import square_rgb

    coffee = load_builtin("coffee")
    chapter.set_image(coffee)
    tab = chapter.img2img_tab
    assert tab.file_radio.isChecked() and tab.source_name == "coffee"
    np.testing.assert_array_equal(tab.source, square_rgb(coffee.pixels))
    np.testing.assert_array_equal(tab.source_panel.image(), tab.source)
    tab.scene_radio.click()  # back to the scene; the opened image stays one click away
    assert tab.source_name.startswith("scene ")
    tab.file_radio.click()
    assert tab.source_name == "coffee"
