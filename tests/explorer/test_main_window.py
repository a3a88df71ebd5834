"""The shell: chapters, menus and keys, images in, settings, export, workers and closing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

from explorer.chapters import CHAPTERS
from explorer.chapters.base import ExportJob
from explorer.main_window import MainWindow
from models.images import DEFAULT_IMAGE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings) -> MainWindow:
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()


def status_text(window: MainWindow) -> str:
    return window.statusBar().currentMessage()


def test_opens_on_a_builtin_image_and_the_first_chapter(window):
    assert window.context.image.name == DEFAULT_IMAGE
    assert window.current_chapter().name == CHAPTERS[0].name
    assert window.sidebar.count() == len(CHAPTERS)
    assert DEFAULT_IMAGE in window.image_label.text()


def test_ctrl_number_switches_chapter(window, qtbot):
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.current_chapter().name == CHAPTERS[1].name
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.current_chapter().name == CHAPTERS[0].name


def test_every_chapter_explains_itself(window):
    for entry in CHAPTERS:
        chapter = window.show_chapter(entry.name)
        assert chapter.title == entry.title
        assert len(chapter.explanation) > 80, f"{entry.name} needs a plain-words explanation"


def test_opening_a_file_reaches_every_built_chapter(window, tmp_path):
    window.show_chapter("noise")
    path = tmp_path / "square.png"
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[..., 1] = 200
    Image.fromarray(pixels).save(path)
    assert window.open_image(path)
    assert window.context.image.name == "square.png"
    np.testing.assert_array_equal(window.context.image.pixels, pixels)
    assert "square.png" in status_text(window)
    assert window.recent_files()[0] == str(path.resolve())
    assert window.settings.value("lastFolder") == str(tmp_path.resolve())


def test_a_bad_file_gives_one_message_and_keeps_the_image(window, tmp_path):
    before = window.context.image
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    assert not window.open_image(bad)
    assert window.context.image is before
    assert "notes.png" in status_text(window)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(good)
    assert window.open_image(good)  # still usable afterwards


def test_dropping_an_image_file_opens_it(window, tmp_path):
    path = tmp_path / "dropped.png"
    Image.fromarray(np.full((16, 16, 3), 77, np.uint8)).save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.context.image.name == "dropped.png"
    assert int(window.context.image.pixels[0, 0, 0]) == 77


def test_geometry_chapter_and_recent_files_survive_a_restart(qtbot, settings, tmp_path):
    first = MainWindow(settings)
    qtbot.addWidget(first)
    first.resize(790, 560)  # inside the offscreen 800×600 screen
    first.show()
    first.show_chapter("noise")
    path = tmp_path / "kept.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    first.open_image(path)
    size = first.size()
    first.close()

    second = MainWindow(settings)
    qtbot.addWidget(second)
    assert second.current_chapter().name == "noise"
    assert second.size() == size
    assert size.height() == 560
    assert second.recent_files() == [str(path.resolve())]
    second.close()


def test_device_setting_is_kept(window):
    window.set_device("cpu")
    assert window.settings.value("device") == "cpu"
    assert window.context.device == "cpu"


def test_about_names_versions_and_device(window):
    text = window.about_text()
    for word in ("Diffusion Explorer", "Python", "PySide6", "pyqtgraph", "NumPy", "PyTorch", "Device", "CPU"):
        assert word in text


def test_export_writes_the_chapter_sequence(window, qtbot, tmp_path):
    frames = [np.full((12, 10, 3), value, np.uint8) for value in (0, 100, 200)]
    job = ExportJob(frames=frames, count=3, params={"what": "test"})
    out = tmp_path / "seq.gif"
    window.start_export(job, out)
    # The worker may finish before a signal blocker could connect: wait on the outcome.
    qtbot.waitUntil(lambda: window._export_worker is None, timeout=10000)
    with Image.open(out) as gif:
        assert gif.n_frames == 3
        assert gif.size == (10, 12)
    assert out.with_suffix(".json").exists()
    assert "Exported 3 frames" in status_text(window)
    assert not window.progress.isVisible()


def test_stopping_an_export_leaves_nothing(window, qtbot, tmp_path):
    def slow_frames():
        for value in range(1000):
            time.sleep(0.01)
            yield np.full((8, 8, 3), value % 256, np.uint8)

    out = tmp_path / "never"
    worker = window.start_export(ExportJob(frames=slow_frames, count=1000), out)
    qtbot.waitUntil(lambda: window.progress.value() > 2, timeout=3000)
    with qtbot.waitSignal(worker.finished, timeout=1000):
        window.cancel_button.click()
    assert list(tmp_path.iterdir()) == []
    assert "stopped" in status_text(window)


def test_a_worker_error_reaches_the_status_bar_and_the_app_goes_on(window, qtbot):
    def broken():
        yield 1
        raise ValueError("the model exploded")

    window.workers.start(broken)
    qtbot.waitUntil(lambda: not window.workers.active(), timeout=5000)
    assert "the model exploded" in status_text(window)
    window.show_chapter("noise")
    assert window.current_chapter().name == "noise"


def test_closing_the_window_while_a_worker_runs_is_clean(qtbot, settings):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()

    def forever():
        while True:
            time.sleep(0.01)
            yield

    worker = window.workers.start(forever)
    qtbot.wait(50)  # let it start running
    with qtbot.waitSignal(worker.finished, timeout=2000):
        window.close()
    assert window.workers.active() == []


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    import os

    env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_the_window_appears_without_importing_torch(tmp_path):
    code = f"""
import os, sys
os.environ["DIFFUSION_EXPLORER_SETTINGS"] = {str(tmp_path / "s.ini")!r}
from explorer.main_window import MainWindow, ensure_application
app = ensure_application()
window = MainWindow()
window.show()
window.show_chapter("pixels"); window.show_chapter("noise")
app.processEvents()
print("torch" in sys.modules)
window.close()
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_importing_models_loads_no_qt():
    code = """
import sys, pkgutil, importlib, models
for module in pkgutil.iter_modules(models.__path__):
    if not module.name.startswith("_"):
        importlib.import_module("models." + module.name)
print(sorted(name for name in sys.modules if name.split(".")[0] in {"PySide6", "shiboken6", "pyqtgraph", "superqt", "qtpy", "explorer"}))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
