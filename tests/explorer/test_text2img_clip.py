"""The CLIP tab: the similarity matrix is CLIP's, unknown words are named, nearest images, one projection."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from explorer.chapters.text2img.backend import PipelineHolder
from explorer.chapters.text2img.clip_tab import DEFAULT_PROMPTS, NEAREST, POOL_SIZE, ClipTab, project
from explorer.workers import WorkerPool
from text2img_support import destroy_tab, tiny_pipeline

WAIT_MS = 20_000


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


@pytest.fixture
def tab(qtbot, pipe):
    holder = PipelineHolder(pipe, "tiny")
    tab = ClipTab(holder, WorkerPool(), "cpu")
    tab.resize(900, 700)
    tab.show()
    qtbot.waitExposed(tab)
    tab.refresh()
    wait(qtbot, tab)
    yield tab
    wait(qtbot, tab)
    destroy_tab(tab)


def wait(qtbot, tab: ClipTab) -> None:
    qtbot.waitUntil(lambda: not tab.busy and tab.view is not None, timeout=WAIT_MS)


def test_matrix_is_image_embeddings_times_text_embeddings(tab, pipe):
    view = tab.view
    assert view.prompts == list(DEFAULT_PROMPTS)
    assert view.similarity.shape == (8, len(DEFAULT_PROMPTS))  # (images, prompts)
    expected = pipe.clip.embed_images(tab.scenes.images) @ pipe.clip.embed_text(list(DEFAULT_PROMPTS)).T
    np.testing.assert_allclose(view.similarity, expected, atol=1e-5)
    np.testing.assert_allclose(tab.matrix.heat.image, expected, atol=1e-5)  # what the heat map shows
    assert tab.matrix.thumbs.image.shape == (8 * 32, 32, 3)  # one thumbnail per row
    best_x, best_y = tab.matrix.best.getData()
    np.testing.assert_array_equal(best_x - 0.5, expected.argmax(axis=1))  # the best prompt of each image marked
    np.testing.assert_array_equal(best_y - 0.5, np.arange(8))
    assert "a green star" in tab.legend.text()


def test_twelve_new_scenes(qtbot, tab, pipe):
    first = tab.scenes.images.copy()
    tab.count_combo.setCurrentIndex(1)
    wait(qtbot, tab)
    assert tab.view.similarity.shape == (12, len(DEFAULT_PROMPTS))
    tab.new_scenes_button.click()
    wait(qtbot, tab)
    assert not np.array_equal(tab.scenes.images[:8], first)
    np.testing.assert_allclose(tab.view.similarity, pipe.clip.embed_images(tab.scenes.images)
                               @ pipe.clip.embed_text(list(DEFAULT_PROMPTS)).T, atol=1e-5)


def test_edited_prompts_and_an_unknown_word(qtbot, tab):
    with qtbot.waitSignal(tab.message, timeout=WAIT_MS) as signal:
        tab.prompts_edit.setPlainText("a purple heart\n\na red blorp on a zzz background")
    assert "“blorp”" in signal.args[0] and "“zzz”" in signal.args[0]
    wait(qtbot, tab)
    qtbot.waitUntil(lambda: tab.view.prompts == ["a purple heart", "a red blorp on a zzz background"],
                    timeout=WAIT_MS)
    assert tab.view.similarity.shape == (8, 2)


def test_nearest_images_sorted_by_similarity(qtbot, tab, pipe):
    tab.query_edit.setText("a blue square")
    qtbot.waitUntil(lambda: tab.view.query == "a blue square", timeout=WAIT_MS)
    wait(qtbot, tab)
    view = tab.view
    scores = pipe.clip.embed_images(tab.scene_pool.images) @ pipe.clip.embed_text(["a blue square"])[0]
    assert len(view.nearest) == NEAREST
    assert np.all(np.diff(view.nearest_scores) <= 0)  # best first
    np.testing.assert_allclose(view.nearest_scores, scores[view.nearest], atol=1e-5)
    np.testing.assert_allclose(view.nearest_scores[0], scores.max(), atol=1e-5)
    assert np.sum(scores > view.nearest_scores[-1] + 1e-5) < NEAREST  # nothing better was left out
    assert tab.nearest_image.image.shape == (32, NEAREST * 36 - 4, 3)
    assert [label.toPlainText() for label in tab.nearest_labels] == [f"{s:.3f}" for s in view.nearest_scores]


def test_projection_has_a_point_per_image_and_per_prompt(qtbot, tab):
    assert len(tab.image_dots.data) == POOL_SIZE
    assert len(tab.prompt_marks.data) == len(DEFAULT_PROMPTS)
    assert len(tab.query_mark.data) == 1
    tab.prompts_edit.setPlainText("a red shape\na green shape\na blue shape")
    qtbot.waitUntil(lambda: len(tab.view.prompts) == 3, timeout=WAIT_MS)
    wait(qtbot, tab)
    assert len(tab.prompt_marks.data) == 3
    assert [label.toPlainText() for label in tab.map_labels][:3] == ["1 a red shape", "2 a green shape",
                                                                      "3 a blue shape"]


def test_project_is_pca():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((50, 6)) * np.array([5, 2, 0.1, 0.1, 0.1, 0.1])
    projected, share = project(points)
    assert projected.shape == (50, 2) and share[0] > share[1] > 0.05 and sum(share) > 0.95
    np.testing.assert_allclose(np.abs(projected[:, 0]), np.abs(points[:, 0] - points[:, 0].mean()), atol=0.5)


def test_settings_round_trip(qtbot, tab, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    tab.prompts_edit.setPlainText("a star\na heart")
    tab.query_edit.setText("a white cross")
    tab.seed_spin.setValue(77)
    tab.save_settings(settings)
    tab.prompts_edit.setPlainText("x")
    tab.seed_spin.setValue(1)
    tab.restore_settings(settings)
    assert tab.prompts() == ["a star", "a heart"] and tab.seed_spin.value() == 77
    assert tab.query_edit.text() == "a white cross"
    qtbot.waitUntil(lambda: tab.view.prompts == ["a star", "a heart"], timeout=WAIT_MS)
    wait(qtbot, tab)
    tab.restore_settings(QSettings(str(tmp_path / "empty.ini"), QSettings.Format.IniFormat))  # nothing stored
    assert tab.prompts() == ["a star", "a heart"] and tab.query_edit.text() == "a white cross"
    wait(qtbot, tab)


def test_no_prompts_and_no_query(qtbot, tab):
    with qtbot.waitSignal(tab.message, timeout=WAIT_MS) as signal:
        tab.prompts_edit.setPlainText("\n  \n")
    assert "Type a prompt" in signal.args[0]
    tab.query_edit.clear()
    qtbot.waitUntil(lambda: tab.view.prompts == [] and tab.view.query == "", timeout=WAIT_MS)
    wait(qtbot, tab)
    assert tab.view.similarity.shape == (8, 0) and len(tab.view.nearest) == 0
    assert len(tab.prompt_marks.data) == 0 and len(tab.query_mark.data) == 0
    assert len(tab.image_dots.data) == POOL_SIZE
    assert "type a prompt" in tab.nearest_title.text()
