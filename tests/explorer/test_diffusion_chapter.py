"""The Diffusion chapter as a whole: the model in use, loading and restoring weights, tabs, settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QSettings

from explorer.chapters import chapter_names
from explorer.chapters.base import AppContext
from explorer.chapters.diffusion import DiffusionChapter
from explorer.workers import WorkerPool
from models.diffusion import DiffusionConfig, DiffusionModel, save_ddpm
from models.images import load_builtin
from models.unet import UNetConfig

REPO = Path(__file__).resolve().parents[2]


def destroy(chapter: DiffusionChapter) -> None:
    """Stop the chapter and delete its widgets now (see tests/explorer/test_latent_chapter.py)."""
    chapter.shutdown()
    assert chapter.context.workers.stop_all()
    chapter.close()
    shiboken6.delete(chapter)


@pytest.fixture
def chapter(qtbot):
    chapter = DiffusionChapter(AppContext(image=load_builtin("coffee"), workers=WorkerPool()))
    chapter.resize(1230, 780)
    chapter.show()
    qtbot.waitExposed(chapter)
    yield chapter
    destroy(chapter)  # stops whatever still runs


def messages_of(chapter: DiffusionChapter) -> list[str]:
    messages: list[str] = []
    chapter.statusMessage.connect(messages.append)
    return messages


def tiny_model_file(tmp_path: Path) -> Path:
    config = DiffusionConfig(unet=UNetConfig(channels=(8, 16), emb_dim=32, groups=4, attention_heads=2))
    return save_ddpm(DiffusionModel(config), tmp_path / "tiny", {"steps": 7, "description": "a tiny test DDPM"})


def test_the_chapter_comes_after_latent_space_and_loads_without_torch():
    names = chapter_names()
    assert names.index("diffusion") > names.index("latent")
    code = (
        "import sys, explorer.chapters as c;"
        "assert c.chapter_entry('diffusion').load().__name__ == 'DiffusionChapter';"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_shipped_model_is_in_use_and_described(chapter):
    assert chapter.holder.origin == "shipped" and chapter.holder.is_shipped
    assert chapter.holder.conditional
    text = chapter.model_label.text()
    assert "shipped" in text and "1.03 M parameters" in text and "class-conditional" in text
    assert not chapter.restore_button.isEnabled()


def test_only_the_current_tabs_controls_show(chapter):
    for index, page in enumerate(chapter.tab_pages):
        chapter.tabs.setCurrentIndex(index)
        assert [p.controls.isVisible() for p in chapter.tab_pages] == [i == index for i in range(len(chapter.tab_pages))]
        assert page.active and sum(p.active for p in chapter.tab_pages) == 1


def test_a_broken_weights_file_leaves_the_model_in_use(chapter, tmp_path):
    messages = messages_of(chapter)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not weights at all")
    model = chapter.holder.model
    assert not chapter.load_weights(broken)
    assert chapter.holder.model is model
    assert len(messages) == 1 and "unchanged" in messages[0]
    assert not chapter.load_weights(tmp_path / "missing.safetensors")
    assert chapter.holder.model is model


def test_loaded_weights_reach_every_tab_and_restore_brings_the_shipped_back(chapter, tmp_path, qtbot):
    path = tiny_model_file(tmp_path)
    refreshed = []
    for page in chapter.tab_pages:
        page.refresh = lambda page=page: refreshed.append(page)  # count, don't compute
    assert chapter.load_weights(path)
    assert chapter.holder.model.config.unet.channels == (8, 16)
    assert chapter.holder.origin == f"loaded from {path.name}"
    assert "loaded from tiny.safetensors" in chapter.model_label.text() and "7 training steps" in chapter.model_label.text()
    assert chapter.restore_button.isEnabled()
    assert refreshed == list(chapter.tab_pages)
    chapter.restore_button.click()
    assert chapter.holder.is_shipped and chapter.holder.origin == "shipped"
    assert not chapter.restore_button.isEnabled()


def test_the_tab_is_remembered(chapter, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    chapter.tabs.setCurrentIndex(chapter.TRAIN_TAB)
    chapter.save_settings(settings)
    chapter.tabs.setCurrentIndex(0)
    chapter.restore_settings(settings)
    assert chapter.tabs.currentIndex() == chapter.TRAIN_TAB
    settings.setValue("tab", "nonsense")
    chapter.restore_settings(settings)
    assert chapter.tabs.currentIndex() == chapter.TRAIN_TAB
