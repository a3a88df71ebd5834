"""The GAN chapter as a whole: its place, its tabs, settings and a clean close."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QSettings

from explorer.chapters import chapter_names
from explorer.chapters.base import AppContext
from explorer.chapters.gan import GanChapter
from explorer.workers import WorkerPool
from models.images import load_builtin

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def chapter(qtbot):
    chapter = GanChapter(AppContext(image=load_builtin("coffee"), workers=WorkerPool()))
    chapter.resize(1230, 780)
    chapter.show()
    qtbot.waitExposed(chapter)
    yield chapter
    chapter.shutdown()
    assert chapter.context.workers.stop_all()
    chapter.close()
    shiboken6.delete(chapter)


def test_the_chapter_sits_between_latent_space_and_diffusion_and_loads_without_torch():
    names = chapter_names()
    assert names.index("latent") + 1 == names.index("gan") == names.index("diffusion") - 1
    code = (
        "import sys, explorer.chapters as c;"
        "assert c.chapter_entry('gan').load().__name__ == 'GanChapter';"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_only_the_current_tabs_controls_show(chapter):
    for index in range(chapter.tabs.count()):
        chapter.tabs.setCurrentIndex(index)
        assert [page.controls.isVisible() for page in chapter.tab_pages] == [i == index for i in range(2)]
        assert [page.active for page in chapter.tab_pages] == [i == index for i in range(2)]


def test_export_comes_from_the_current_tab(chapter):
    chapter.points_tab.export_job = lambda: "points"
    chapter.images_tab.export_job = lambda: "images"
    chapter.tabs.setCurrentIndex(chapter.IMAGES_TAB)
    assert chapter.export_job() == "images"
    chapter.tabs.setCurrentIndex(chapter.POINTS_TAB)
    assert chapter.export_job() == "points"


def test_the_tab_is_remembered(chapter, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    chapter.tabs.setCurrentIndex(chapter.IMAGES_TAB)
    chapter.save_settings(settings)
    chapter.tabs.setCurrentIndex(chapter.POINTS_TAB)
    chapter.restore_settings(settings)
    assert chapter.tabs.currentIndex() == chapter.IMAGES_TAB
    settings.setValue("tab", 7)
    chapter.restore_settings(settings)
    assert chapter.tabs.currentIndex() == chapter.IMAGES_TAB
