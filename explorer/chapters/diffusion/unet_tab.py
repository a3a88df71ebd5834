"""Inside the U-Net: the architecture as a U, and the feature maps of the block you click, at the current step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from explorer.chapters.common import ViewJob, as_bool, in_worker, read_setting, tile
from explorer.chapters.diffusion.backend import DiffusionTab, StepInput
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.readout import ReadoutLabel
from explorer.widgets.stage_diagram import shape_text
from explorer.widgets.unet_diagram import Block, UNetDiagram
from models.images import EPS_RANGE

CHANNEL_CHOICES = ((16, "first 16"), (32, "first 32"), (0, "all"))  # 0: every channel
DEFAULT_CHANNELS = 32
DEFAULT_SEED = 0
# The default input is a fresh digit noised to T/4 (t = 250 of 1000): with the linear schedule the digit
# is still plain to see there (at T/2 only √ᾱ ≈ 0.28 of it is left), so early maps show its strokes.
DEFAULT_T_FRACTION = 4
TILE_SIDE = 28  # smaller maps are enlarged to about this many pixels, so that every grid reads alike
GAP = 2  # pixels between the tiles (at the enlarged size)


# ---------------------------------------------------------------------- what the worker computes
@dataclass(frozen=True)
class DefaultInput:
    """The input before the Reverse tab sends one: a fresh digit noised to ``t`` with a seeded ε."""

    image: np.ndarray  # uint8 (28, 28)
    digit: int  # what the digit is
    t: int
    seed: int


@dataclass
class UNetFeatures:
    """One forward pass on one image, as numpy: its input, output and every block's feature maps."""

    x_t: np.ndarray  # float32 (H, W), model units
    eps_hat: np.ndarray  # float32 (H, W): the network's output ε̂ for this pass
    maps: dict[str, np.ndarray]  # block name -> float32 (C, h, w)
    t: int
    label: int | None  # the class the pass was given (None: none)


@dataclass
class UNetView:
    """The architecture (``UNet.blocks()``) and, when asked, the feature maps of one input."""

    model: Any  # the model they are of
    blocks: list[dict]
    conditional: bool
    embedding_dim: int
    features: UNetFeatures | None


@in_worker
def look_inside(model: Any, source: StepInput | DefaultInput | None, blocks: list[dict] | None = None) -> UNetView:
    """The U-Net's blocks (unless already known), and (unless ``source`` is None) one forward
    pass with its feature maps."""
    import torch

    unet = model.unet
    conditional = model.null_class is not None
    with torch.inference_mode():
        # blocks() runs the model once with hooks on: only for a model not seen before.
        blocks = unet.blocks() if blocks is None else blocks
        if source is None:
            return UNetView(model, blocks, conditional, unet.config.emb_dim, None)
        device = model.device
        if isinstance(source, DefaultInput):
            generator = torch.Generator().manual_seed(source.seed)
            x0 = torch.as_tensor(source.image, dtype=torch.float32)[None, None] / 127.5 - 1.0  # (1, 1, 28, 28)
            noise = torch.randn(x0.shape, generator=generator)
            x_t = model.scheduler("ddpm").add_noise(x0, noise, torch.tensor([source.t]))
            t, label = source.t, source.digit
        else:
            x_t = torch.as_tensor(np.asarray(source.x_t, dtype=np.float32))[None, None]  # (1, 1, H, W)
            t, label = source.t, source.label
        label = label if conditional else None
        labels = None if label is None else torch.tensor([label], dtype=torch.long, device=device)
        tt = torch.tensor([t], dtype=torch.long, device=device)
        eps, maps = model(x_t.to(device), tt, labels, return_features=True)  # (1, 1, H, W), {name: (1, C, h, w)}

    def numpy(tensor: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(tensor[0].float().cpu().numpy())

    features = UNetFeatures(numpy(x_t)[0], numpy(eps)[0], {name: numpy(m) for name, m in maps.items()}, int(t), label)
    return UNetView(model, blocks, conditional, unet.config.emb_dim, features)


# ---------------------------------------------------------------------- pictures (numpy, GUI thread)
def normalise(maps: np.ndarray, shared: bool) -> np.ndarray:
    """float (K, h, w) maps as uint8, each stretched min…max on its own, or all on one scale.

    A flat map (max = min) is mid-grey.
    """
    maps = np.asarray(maps, dtype=np.float32)
    axes = None if shared else (1, 2)
    low = maps.min(axis=axes, keepdims=True) if maps.size else np.zeros((1, 1, 1), np.float32)
    high = maps.max(axis=axes, keepdims=True) if maps.size else np.zeros((1, 1, 1), np.float32)
    span = high - low
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.5)
    return np.rint(scaled * 255).astype(np.uint8)


def grid_columns(count: int, aspect: float) -> int:
    """Columns that make ``count`` square tiles largest in a panel ``aspect`` (width / height) wide;
    of equally large layouts, the one with the fewest empty places."""
    if count <= 0:
        return 1

    def fit(columns: int) -> tuple[float, int]:
        rows = math.ceil(count / columns)
        return min(aspect / columns, 1.0 / rows), -(rows * columns - count)

    return max(range(1, count + 1), key=lambda columns: (round(fit(columns)[0], 9), fit(columns)[1]))


def block_hint(block: Block, blocks: list[Block]) -> str:
    """What a reader should notice in this block's maps, in plain words."""
    size = block.shape_out[1] if len(block.shape_out) > 1 else 0
    full = blocks[0].shape_in[1] if blocks and len(blocks[0].shape_in) > 1 else size
    patch = max(1, full // size) if size else 1
    res = f"{size}×{size}"
    top = blocks[0].shape_out[1] if blocks and len(blocks[0].shape_out) > 1 else full  # side of the top level
    if block is blocks[0] and top < full:
        cut = full // top
        text = (f"The image is cut into {cut}×{cut} patches, each one position of {cut * cut} pixel values, and the "
                f"first convolution turns that {res} grid into {block.shape_out[0]} maps (patches make every later "
                "convolution cheaper). Most look like the noisy digit itself: brightened, darkened, or as edges.")
    elif block is blocks[0]:
        text = (f"The first convolution turns the grey image into {block.shape_out[0]} maps. Most look like the "
                "noisy digit itself: brightened, darkened, or as edges. Nothing is understood yet.")
    elif block is blocks[-1]:
        text = ("The output ε̂: the noise the network sees in x<sub>t</sub>. The sampler removes a share of it "
                "to take one step towards a clean digit.")
    elif block.part == "down" and patch == 1:
        text = (f"Full resolution, {res}: maps of small edges and strokes of the noisy digit. Each pixel here "
                "sees only the few pixels around it.")
    elif block.part == "down" and size == top:
        text = (f"The top level, {res}: one position per {patch}×{patch} patch of pixels. Maps of small edges and "
                "strokes of the noisy digit; each position sees only the few patches around it.")
    elif block.part == "down":
        text = (f"Halved to {res}: each position sums up a {patch}×{patch} patch of the image, so strokes get "
                "thicker and the noise starts to average out.")
    elif block.part == "middle":
        text = (f"The bottom, {res}: the coarsest picture, one position per {patch}×{patch} patch. "
                "Self-attention lets every position look at every other one, so here the network sees the "
                "whole digit at once: what it is and where.")
    else:
        partner = next((b.name for b in blocks if b.skip_to == block.name), "the down path")
        text = (f"On the way back up, at {res}: the coarse result from below is joined with the skip from "
                f"<i>{partner}</i>, which carries across the fine detail the bottom lost. Compare the two.")
    return text + (" <p>Step the Reverse tab: near t = T the maps are mostly noise; near t = 0 they are "
                   "clean strokes.</p>")


# ---------------------------------------------------------------------- the tab
class UNetTab(DiffusionTab):
    """The U-Net as a U; click a block to see its feature maps for the Reverse tab's current frame."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        first = self.digits.images[0]
        self.default_input = DefaultInput(first, int(self.digits.labels[0]), self.holder.num_train_timesteps // DEFAULT_T_FRACTION,
                                          DEFAULT_SEED)
        self.step: StepInput | None = None  # the Reverse tab's frame, once one came
        self.view: UNetView | None = None  # the latest result
        self.shown_maps = np.zeros((0, 0, 0), np.float32)  # the channels in the grid, float (K, h, w)
        self.shown_columns = 1
        self.block_channels = 0  # channels of the block shown (all of them, not only those in the grid)
        self._tile = TILE_SIDE
        self._stale = True  # the feature maps on screen are not those of the current model and input
        self.job = ViewJob(self.pool, self._show_view, name="Inside the U-Net")
        self._build_controls()
        self._build_view()
        self._connect()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        self.block_combo = QComboBox()
        self.block_combo.setToolTip("The block whose feature maps are shown (or click a block in the drawing; "
                                    "arrow keys and Tab move along it)")
        # Long block descriptions must not widen the side panel: the popup still shows them whole.
        self.block_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.block_combo.setMinimumContentsLength(20)
        self.hint_label = QLabel()
        self.hint_label.setWordWrap(True)
        self.hint_label.setTextFormat(Qt.TextFormat.RichText)
        block_box = QGroupBox("Block")
        block_layout = QVBoxLayout(block_box)
        block_layout.addWidget(self.block_combo)
        block_layout.addWidget(self.hint_label)

        self.channels_combo = QComboBox()
        for count, text in CHANNEL_CHOICES:
            self.channels_combo.addItem(text, count)
        self.channels_combo.setCurrentIndex(self.channels_combo.findData(DEFAULT_CHANNELS))
        self.channels_combo.setToolTip("How many of the block's channels to draw, in order")
        self.shared_check = QCheckBox("One scale for all channels")
        self.shared_check.setToolTip("Off: each map stretched from its own minimum (black) to maximum (white), "
                                     "to see its pattern. On: one scale for all, to see which channels are strong.")
        maps_box = QGroupBox("Feature maps")
        form = QFormLayout(maps_box)
        form.addRow("Channels", self.channels_combo)
        form.addRow(self.shared_check)

        self.input_label = QLabel()
        self.input_label.setWordWrap(True)
        self.input_label.setTextFormat(Qt.TextFormat.RichText)
        self.fresh_button = QPushButton("Look at a fresh digit instead")
        self.fresh_button.setToolTip("A fresh test digit noised to T/4, until the Reverse tab shows another frame")
        input_box = QGroupBox("Input")
        input_layout = QVBoxLayout(input_box)
        input_layout.addWidget(self.input_label)
        input_layout.addWidget(self.fresh_button)

        self.control_layout.addWidget(block_box)
        self.control_layout.addWidget(maps_box)
        self.control_layout.addWidget(input_box)

    def _build_view(self) -> None:
        self.diagram = UNetDiagram()
        self.input_panel = ImagePanel("input x_t")
        self.output_panel = ImagePanel("output ε̂")
        for panel in (self.input_panel, self.output_panel):
            panel.setFixedSize(150, 168)
            panel.setToolTip("x_t: grey −1 … 1" if panel is self.input_panel else "ε̂: grey −3 … 3")
        self.feature_panel = ImagePanel("feature maps")
        for panel in (self.input_panel, self.output_panel, self.feature_panel):
            panel.view_box.setMouseEnabled(x=False, y=False)
        self.readout = ReadoutLabel(1)
        self.readout.setText("Hover over a map to read its numbers.")
        pair = QVBoxLayout()
        pair.addWidget(self.input_panel)
        pair.addWidget(self.output_panel)
        pair.addStretch(1)
        grid = QVBoxLayout()
        grid.addWidget(self.feature_panel, 1)
        grid.addWidget(self.readout)
        bottom = QHBoxLayout()
        bottom.addLayout(pair)
        bottom.addLayout(grid, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.diagram, 5)
        layout.addLayout(bottom, 5)

    def _connect(self) -> None:
        self.diagram.selected.connect(self._on_diagram_selected)
        self.block_combo.currentIndexChanged.connect(self._on_combo_changed)
        self.channels_combo.currentIndexChanged.connect(self.show_block)
        self.shared_check.toggled.connect(self.show_block)
        self.feature_panel.hovered.connect(self._on_hover)
        self.fresh_button.clicked.connect(self.use_fresh_digit)

    # ------------------------------------------------------------------ the chapter's interface
    def jobs(self) -> list[ViewJob]:
        return [self.job]

    def refresh(self) -> None:
        """A new model: redraw the architecture; recompute the maps now if the tab is open, else when it opens."""
        self.default_input = DefaultInput(self.default_input.image, self.default_input.digit,
                                          self.holder.num_train_timesteps // DEFAULT_T_FRACTION, DEFAULT_SEED)
        self._stale = True
        self._submit(with_features=self.active)

    def set_active(self, active: bool) -> None:
        super().set_active(active)
        if active and self._stale:
            self._submit(with_features=True)

    def set_input(self, step: StepInput) -> None:
        """The Reverse tab shows another frame: look inside at it (now if the tab is open, else later)."""
        self.step = step
        self._stale = True
        if self.active:  # else nothing, not even a label's text: this comes every frame while the Reverse tab plays
            self._submit(with_features=True)

    def use_fresh_digit(self) -> None:
        """Look at the default input (a fresh digit at T/4) until the Reverse tab sends another frame."""
        self.step = None
        self._stale = True
        if self.active:
            self._submit(with_features=True)

    # ------------------------------------------------------------------ computing
    def source(self) -> StepInput | DefaultInput:
        """The input the maps are computed for: the Reverse tab's frame, or the default digit."""
        return self.step if self.step is not None else self.default_input

    def _submit(self, with_features: bool) -> None:
        if with_features:
            self._stale = False
        self._describe_input()
        model = self.holder.model
        known = self.view.blocks if self.view is not None and self.view.model is model else None
        self.job.submit(look_inside, model, self.source() if with_features else None, known)

    def _show_view(self, view: UNetView) -> None:
        blocks_changed = self.view is None or view.blocks != self.view.blocks or view.conditional != self.view.conditional
        if view.features is None and self.view is not None and not blocks_changed:
            view.features = self.view.features if not self._stale else None
        self.view = view
        if blocks_changed:
            self.diagram.set_blocks(view.blocks, view.conditional, view.embedding_dim)
            self._fill_combo()
        self.show_block()

    def _fill_combo(self) -> None:
        self.block_combo.blockSignals(True)
        self.block_combo.clear()
        for block in self.diagram.blocks:
            self.block_combo.addItem(f"{block.name}: {block.kind}, {shape_text(block.shape_out)}", block.name)
        self.block_combo.setCurrentIndex(max(0, self.block_combo.findData(self.diagram.current)))
        self.block_combo.blockSignals(False)

    # ------------------------------------------------------------------ choosing a block
    def select_block(self, name: str) -> None:
        """Show the maps of the block called ``name`` (in the drawing and the combo too)."""
        for widget in (self.diagram, self.block_combo):  # each tells the other otherwise: show once
            widget.blockSignals(True)
        self.diagram.select(name)
        self.block_combo.setCurrentIndex(max(0, self.block_combo.findData(self.diagram.current)))
        for widget in (self.diagram, self.block_combo):
            widget.blockSignals(False)
        self.show_block()

    def _on_diagram_selected(self, name: str) -> None:
        self.select_block(name)

    def _on_combo_changed(self, index: int) -> None:
        if index >= 0:
            self.select_block(self.block_combo.itemData(index))

    def current_block(self) -> Block | None:
        return next((b for b in self.diagram.blocks if b.name == self.diagram.current), None)

    # ------------------------------------------------------------------ showing
    def show_block(self) -> None:
        """Draw the selected block's maps from the latest result (no model call)."""
        block = self.current_block()
        self.hint_label.setText(block_hint(block, self.diagram.blocks) if block else "")
        features = self.view.features if self.view is not None else None
        if block is None or features is None or block.name not in features.maps:
            self.shown_maps = np.zeros((0, 0, 0), np.float32)
            self.feature_panel.set_title(f"{block.name}: feature maps appear when this tab is open" if block else "")
            return
        self.input_panel.set_image(features.x_t, levels=(-1.0, 1.0))
        self.input_panel.set_title(f"input x_t, t = {features.t}")
        self.output_panel.set_image(features.eps_hat, levels=(-EPS_RANGE, EPS_RANGE))
        self.output_panel.set_title("output ε̂")
        maps = features.maps[block.name]
        limit = self.channels_combo.currentData() or len(maps)
        self.shown_maps = maps[:limit]
        self.block_channels = len(maps)
        count, height, _ = self.shown_maps.shape
        factor = max(1, TILE_SIDE // height)
        self._tile = height * factor
        pictures = normalise(self.shown_maps, self.shared_check.isChecked())
        pictures = np.repeat(np.repeat(pictures, factor, axis=1), factor, axis=2)
        size = self.feature_panel.graphics.size()
        aspect = size.width() / size.height() if size.height() > 50 else 2.0
        self.shown_columns = grid_columns(count, aspect)
        self.feature_panel.set_image(tile(pictures, self.shown_columns, gap=GAP, fill=255))
        scale = "one scale for all" if self.shared_check.isChecked() else "each on its own scale"
        self.feature_panel.set_title(f"{block.name}: {shape_text(maps.shape)} — channels 1–{count} of {len(maps)}, "
                                     f"{scale}")

    def _describe_input(self) -> None:
        step = self.step
        if step is None:
            source = self.default_input
            asked = f", asked for a {source.digit}" if self.holder.conditional else ""
            text = (f"A fresh {source.digit} noised to t = {source.t} (seed {source.seed}){asked}. "
                    "Play or step the <i>Reverse</i> tab to look inside at its frames.")
        else:
            if step.label is None or not self.holder.conditional:
                asked = "no digit asked for"
            else:
                asked = f"asked for a {step.label}"
                if step.guidance != 1.0:
                    asked += (f"; the maps are of the pass told the digit (the Reverse tab mixes its ε̂ with "
                              f"the no-digit pass, guidance {step.guidance:g})")
            text = f"The <i>Reverse</i> tab's frame: step {step.index + 1} of {step.total}, t = {step.t}, {asked}."
        self.input_label.setText(text)
        self.fresh_button.setEnabled(step is not None)

    def channel_at(self, column: int, row: int) -> int | None:
        """The channel of the grid tile under pixel (column, row), or None over a gap or outside."""
        if column < 0 or row < 0 or not len(self.shown_maps):
            return None
        pitch = self._tile + GAP
        (tile_row, y), (tile_column, x) = divmod(row, pitch), divmod(column, pitch)
        index = tile_row * self.shown_columns + tile_column
        if x >= self._tile or y >= self._tile or tile_column >= self.shown_columns or index >= len(self.shown_maps):
            return None
        return index

    def _on_hover(self, column: int, row: int) -> None:
        channel = self.channel_at(column, row)
        if channel is None:
            self.readout.setText("Hover over a map to read its numbers.")
            return
        values = self.shown_maps[channel]
        text = (f"channel {channel + 1} of {self.block_channels}: min {values.min():.2f}, mean {values.mean():.2f}, "
                f"max {values.max():.2f}, spread (std) {values.std():.2f}")
        self.readout.setText(text.replace("-", "−"))

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        if self.diagram.current is not None:
            settings.setValue("unet/block", self.diagram.current)
        settings.setValue("unet/channels", self.channels_combo.currentData())
        settings.setValue("unet/shared_scale", self.shared_check.isChecked())

    def restore_settings(self, settings: QSettings) -> None:
        if (block := read_setting(settings, "unet/block", str, lambda v: self.block_combo.findData(v) >= 0)) is not None:
            self.select_block(block)
        if (count := read_setting(settings, "unet/channels", int, lambda v: self.channels_combo.findData(v) >= 0)) is not None:
            self.channels_combo.setCurrentIndex(self.channels_combo.findData(count))
        if (shared := read_setting(settings, "unet/shared_scale", as_bool)) is not None:
            self.shared_check.setChecked(shared)

    def shutdown(self) -> None:
        self.job.cancel()
