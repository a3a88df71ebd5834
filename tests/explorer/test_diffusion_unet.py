"""Inside the U-Net: the drawing matches UNet.blocks(), a clicked block shows its real feature maps, no wasted work."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shiboken6
import torch
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest

from explorer.chapters.diffusion import unet_tab as unet_module
from explorer.chapters.diffusion import backend
from explorer.chapters.diffusion.backend import ModelHolder, StepInput
from explorer.chapters.diffusion.unet_tab import GAP, TILE_SIDE, UNetTab, normalise
from explorer.widgets.stage_diagram import shape_text
from explorer.workers import WorkerPool
from models.data import make_digits
from models.diffusion import DiffusionConfig, DiffusionModel, load_ddpm
from models.unet import UNetConfig

WAIT_MS = 20_000  # generous: the test machine may be busy


@pytest.fixture(scope="module")
def shipped():
    model, meta = load_ddpm("ddpm-digits")
    return model.eval(), meta


@pytest.fixture
def tab(qtbot, shipped):
    """The tab on its own (the chapter's other tabs are not needed), 900×700 like the chapter's views."""
    images, labels = make_digits(4, seed=123)
    holder = ModelHolder(*shipped, "shipped")
    holder.changed.connect(lambda: tab.refresh())  # what the chapter does
    pool = WorkerPool()
    tab = UNetTab(holder, backend.FreshDigits(images, labels, 123), pool, "cpu")
    tab.resize(900, 700)
    tab.show()
    qtbot.waitExposed(tab)
    tab.refresh()
    qtbot.waitUntil(lambda: not tab.job.busy and tab.view is not None, timeout=WAIT_MS)
    yield tab
    qtbot.waitUntil(lambda: not tab.job.busy, timeout=WAIT_MS)
    tab.shutdown()
    assert pool.stop_all()
    tab.close()
    controls = tab.controls
    shiboken6.delete(tab)
    shiboken6.delete(controls)


def step_input(seed: int = 5, t: int = 600, label: int | None = 3) -> StepInput:
    x_t = np.random.default_rng(seed).standard_normal((28, 28)).astype(np.float32)
    return StepInput(x_t=x_t, t=t, label=label, guidance=2.0, index=7, total=50)


def direct_features(model: DiffusionModel, step: StepInput) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with torch.inference_mode():
        labels = None if step.label is None or model.null_class is None else torch.tensor([step.label])
        eps, maps = model(torch.from_numpy(step.x_t)[None, None], torch.tensor([step.t]), labels, return_features=True)
    return eps[0, 0].numpy(), {name: m[0].contiguous().numpy() for name, m in maps.items()}


def wait_idle(qtbot, tab: UNetTab) -> None:
    qtbot.waitUntil(lambda: not tab.job.busy, timeout=WAIT_MS)


def click_block(tab: UNetTab, name: str) -> None:
    QTest.mouseClick(tab.diagram, Qt.MouseButton.LeftButton, pos=tab.diagram.block_rect(name).center().toPoint())


def tiles_in(mosaic: np.ndarray, side: int) -> tuple[int, int]:
    """Rows and columns of ``side``-pixel tiles, ``GAP`` apart, in a mosaic."""
    return (mosaic.shape[0] + GAP) // (side + GAP), (mosaic.shape[1] + GAP) // (side + GAP)


def test_the_drawing_has_each_block_with_its_shape_and_each_skip(tab, shipped):
    blocks = shipped[0].unet.blocks()
    texts = tab.diagram.block_texts()
    assert list(texts) == [block["name"] for block in blocks]
    for block in blocks:
        assert texts[block["name"]].splitlines() == [block["name"], block["kind"], shape_text(block["out"])]
    assert tab.diagram.skip_arrows() == [(b["name"], b["skip_to"]) for b in blocks if b["skip_to"]]
    assert texts["middle"].splitlines()[1] == "res + self-attention + res"
    # The U: down blocks on the left going down, up blocks on the right at their partner's height.
    rects = {name: tab.diagram.block_rect(name) for name in texts}
    assert rects["down 1"].top() < rects["down 2"].top() < rects["middle"].top()
    for level in (1, 2):
        assert rects[f"down {level}"].center().y() == rects[f"up {level}"].center().y()
        assert rects[f"down {level}"].right() < rects["middle"].center().x() < rects[f"up {level}"].left()
    # The embedding (time + class: the shipped model is conditional) feeds every res block and nothing else.
    assert tab.diagram.conditional and tab.diagram.embedding_targets() == [
        b["name"] for b in blocks if "res" in b["kind"]]
    # No two boxes overlap, and all are inside the widget.
    boxes = list(rects.values())
    assert all(tab.diagram.rect().contains(box.toRect()) for box in boxes)
    assert not any(a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    # The combo lists the same blocks, in the same order.
    assert [tab.block_combo.itemData(i) for i in range(tab.block_combo.count())] == list(texts)


def test_clicking_a_block_shows_its_feature_maps_for_the_input(tab, qtbot, shipped):
    step = step_input()
    tab.set_active(True)
    tab.set_input(step)
    wait_idle(qtbot, tab)
    tab.channels_combo.setCurrentIndex(tab.channels_combo.findData(0))  # all channels
    click_block(tab, "down 1")
    assert tab.diagram.current == "down 1" and tab.block_combo.currentData() == "down 1"
    eps, maps = direct_features(shipped[0], step)
    expected = maps["down 1"]  # (48, 14, 14): the top level of a U-Net on 2×2 patches
    assert tab.shown_maps.shape == expected.shape == (48, 14, 14)
    np.testing.assert_allclose(tab.shown_maps, expected, atol=1e-4)
    mosaic = tab.feature_panel.image()
    rows, columns = tiles_in(mosaic, TILE_SIDE)  # 14×14 maps are drawn 2× as 28×28 tiles
    assert columns == tab.shown_columns and rows == math.ceil(48 / columns)
    first = mosaic[:TILE_SIDE, :TILE_SIDE][::2, ::2]
    np.testing.assert_array_equal(first, normalise(expected[:1], shared=False)[0])
    assert "48×14×14" in tab.feature_panel.title_label.text()
    # The whole network's input and output, for reference.
    np.testing.assert_allclose(tab.input_panel.image(), step.x_t)
    np.testing.assert_allclose(tab.output_panel.image(), eps, atol=1e-4)
    assert "step 8 of 50" in tab.input_label.text() and "t = 600" in tab.input_label.text()

    # Fewer channels, a shared scale, another block: all from the same pass, no new model call.
    tab.channels_combo.setCurrentIndex(tab.channels_combo.findData(16))
    assert tab.shown_maps.shape == (16, 14, 14)
    assert tiles_in(tab.feature_panel.image(), TILE_SIDE)[1] == tab.shown_columns
    tab.shared_check.setChecked(True)
    np.testing.assert_array_equal(tab.feature_panel.image()[:TILE_SIDE, :TILE_SIDE][::2, ::2],
                                  normalise(expected[:16], shared=True)[0])
    click_block(tab, "middle")
    assert not tab.job.busy
    np.testing.assert_allclose(tab.shown_maps, maps["middle"][:16], atol=1e-4)
    assert "Self-attention" in tab.hint_label.text()

    # Hovering a tile reads out that channel's numbers; a gap reads out nothing.
    pitch = 4 * 7 + GAP  # 7×7 maps are drawn 4× as 28×28 tiles
    tab.feature_panel.hovered.emit(pitch + 3, 3)
    text = tab.readout.text().replace("−", "-")
    assert text.startswith("channel 2 of 96:") and f"max {maps['middle'][1].max():.2f}," in text
    tab.feature_panel.hovered.emit(pitch - 1, 3)
    assert "Hover" in tab.readout.text()


def test_keys_move_the_selection_along_the_u(tab, qtbot):
    diagram = tab.diagram
    tab.select_block("down 1")
    diagram.setFocus()
    QTest.keyClick(diagram, Qt.Key.Key_Right)
    assert diagram.current == "up 1" and tab.block_combo.currentData() == "up 1"
    QTest.keyClick(diagram, Qt.Key.Key_Down)  # down the right side of the U: towards the middle
    assert diagram.current == "up 2"
    QTest.keyClick(diagram, Qt.Key.Key_Left)
    assert diagram.current == "down 2"
    QTest.keyClick(diagram, Qt.Key.Key_Down)
    assert diagram.current == "middle"
    QTest.keyClick(diagram, Qt.Key.Key_Tab)  # Tab follows the data: from the middle up the right
    assert diagram.current == "up 2"
    QTest.keyClick(diagram, Qt.Key.Key_Backtab)
    assert diagram.current == "middle"
    QTest.keyClick(diagram, Qt.Key.Key_End)
    assert diagram.current == "out" and tab.block_combo.currentData() == "out"
    tab.block_combo.setCurrentIndex(0)
    assert diagram.current == "conv in"


def test_an_input_while_the_tab_is_hidden_is_computed_only_when_it_opens(tab, qtbot, monkeypatch):
    calls: list[object] = []
    real = unet_module.look_inside

    def counted(model, source, blocks=None):
        calls.append((source, blocks))
        return real(model, source, blocks)

    monkeypatch.setattr(unet_module, "look_inside", counted)
    assert not tab.active
    assert "noised to t = 250" in tab.input_label.text()  # the default input, before the Reverse tab sends one
    for seed in range(5):  # the user plays the Reverse tab
        tab.set_input(step_input(seed=seed, t=900 - 100 * seed, label=None))
    QTest.qWait(50)
    assert calls == [] and not tab.job.busy
    tab.set_active(True)
    wait_idle(qtbot, tab)
    assert "t = 500" in tab.input_label.text() and "no digit" in tab.input_label.text()
    assert len(calls) == 1 and calls[0][0].t == 500
    assert calls[0][1] == tab.view.blocks  # the same model: its blocks are not worked out again
    np.testing.assert_allclose(tab.input_panel.image(), step_input(seed=4).x_t)
    tab.set_active(False)
    tab.set_active(True)  # nothing new: nothing to compute
    wait_idle(qtbot, tab)
    assert len(calls) == 1
    assert tab.fresh_button.isEnabled()
    tab.fresh_button.click()  # back to the default input
    wait_idle(qtbot, tab)
    assert len(calls) == 2 and calls[1][0] is tab.default_input and not tab.fresh_button.isEnabled()
    assert "noised to t = 250" in tab.input_label.text() and tab.view.features.t == 250


def test_settings_come_back(tab, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    tab.select_block("up 2")
    tab.channels_combo.setCurrentIndex(tab.channels_combo.findData(16))
    tab.shared_check.setChecked(True)
    tab.save_settings(settings)
    tab.select_block("conv in")
    tab.channels_combo.setCurrentIndex(tab.channels_combo.findData(0))
    tab.shared_check.setChecked(False)
    settings.sync()
    tab.restore_settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert tab.diagram.current == "up 2" and tab.block_combo.currentData() == "up 2"
    assert tab.channels_combo.currentData() == 16 and tab.shared_check.isChecked()
    settings.setValue("unet/block", "down 9")  # a block this model does not have, a bad count: ignored
    settings.setValue("unet/channels", "many")
    tab.restore_settings(settings)
    assert tab.diagram.current == "up 2" and tab.channels_combo.currentData() == 16


def test_another_model_is_redrawn_with_its_shapes(tab, qtbot):
    tab.set_active(True)
    tab.select_block("down 3")  # the tiny model has no "down 3": the selection moves to its first block
    config = DiffusionConfig(unet=UNetConfig(channels=(8, 16), emb_dim=32, groups=4, attention_heads=2, num_classes=None))
    tiny = DiffusionModel(config).eval()
    tab.set_input(step_input(label=7))
    tab.holder.install(tiny, {}, "a tiny test model")
    wait_idle(qtbot, tab)
    texts = tab.diagram.block_texts()
    assert list(texts) == ["conv in", "down 1", "down 2", "middle", "up 2", "up 1", "out"]
    assert texts["down 2"].endswith("16×14×14") and texts["middle"].endswith("16×14×14")
    assert texts["up 1"].endswith("8×28×28") and texts["conv in"].endswith("8×28×28")
    assert tab.diagram.skip_arrows() == [("conv in", "out"), ("down 1", "up 1"), ("down 2", "up 2")]
    assert not tab.diagram.conditional  # no class: the embedding is the timestep's alone
    assert tab.block_combo.count() == 7 and tab.diagram.current == "conv in"
    click_block(tab, "middle")
    _, maps = direct_features(tiny, step_input(label=None))  # an unconditional model ignores the label
    np.testing.assert_allclose(tab.shown_maps, maps["middle"], atol=1e-5)
    assert tab.shown_maps.shape == (16, 14, 14)


def test_hints_say_where_a_model_works_on_patches():
    from explorer.chapters.diffusion.unet_tab import block_hint
    from explorer.widgets.unet_diagram import layout_blocks
    from models.unet import UNet

    for patch, first in ((2, "cut into 2×2 patches"), (1, "turns the grey image into 16 maps")):
        blocks = layout_blocks(UNet(UNetConfig(channels=(16, 32), emb_dim=32, patch_size=patch)).blocks())
        by_name = {b.name: b for b in blocks}
        assert first in block_hint(by_name["conv in"], blocks)
        top = "The top level, 14×14: one position per 2×2 patch" if patch == 2 else "Full resolution, 28×28"
        assert top in block_hint(by_name["down 1"], blocks)
        assert "Halved to" in block_hint(by_name["down 2"], blocks)
