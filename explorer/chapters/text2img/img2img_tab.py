"""The Image to image tab: encode a picture, noise it to a strength, denoise it with a prompt.

The source is a shapes scene (by seed) or any image file, centre-cropped and resized to
32×32. The worker first shows the source's VAE round trip (what the latent can keep),
then samples only the last ``strength`` of the steps from the noised latent.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)
from superqt import QLabeledDoubleSlider

from explorer.chapters.base import ExportJob
from explorer.chapters.common import as_bool, read_setting, torch_threads_here
from explorer.chapters.diffusion.reverse_tab import titled
from explorer.chapters.text2img.backend import MAX_SEED
from explorer.chapters.text2img.frames_export import EXPORT_SCALE, text_frame_images
from explorer.chapters.text2img.frames_player import DEFAULT_PROMPT, FrameRun, RunSpec, export_pictures, run_text_frames
from explorer.chapters.text2img.frames_tab import SamplingTab
from explorer.chapters.text2img.pipeline_tab import fixed_panel
from explorer.widgets.readout import ReadoutLabel

SIDE = 32
DEFAULT_SCENE_SEED = 1000  # past the seeds the models' tests and figures use
DEFAULT_STRENGTH = 0.6
MIN_STRENGTH = 0.05


def square_rgb(pixels: np.ndarray, side: int = SIDE) -> np.ndarray:
    """An H×W×3 uint8 picture centre-cropped to a square and resized to side × side, as the command
    line's ``--init`` does (Pillow's ``ImageOps.fit``, Lanczos)."""
    from PIL import Image, ImageOps

    picture = Image.fromarray(np.ascontiguousarray(pixels[..., :3], dtype=np.uint8))
    return np.asarray(ImageOps.fit(picture, (side, side), Image.Resampling.LANCZOS), dtype=np.uint8).copy()


def run_image_to_image(pipe, spec: RunSpec) -> Iterator[tuple[str, np.ndarray | object]]:
    """Worker generator: ("roundtrip", the source encoded and decoded), then ("frame", TextFrame) per step."""
    torch_threads_here()
    import torch

    with torch.inference_mode():
        roundtrip = pipe.decode(pipe.encode_images(spec.init_image[None]))[0]
    yield "roundtrip", roundtrip
    frames = run_text_frames(pipe, spec)
    try:
        for frame in frames:
            yield "frame", frame
    finally:
        frames.close()  # now, on this thread, when the worker stops: it releases the pipeline


class ImageToImageTab(SamplingTab):
    """A shapes scene or an opened image, partly noised and denoised toward a prompt."""

    KEY = "img2img"
    SHOW_SAMPLER = False  # DDIM: the start's noise decides the result

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.run: FrameRun | None = None
        self.source: np.ndarray | None = None  # uint8 (32, 32, 3)
        self.source_name = ""
        self.file_source: tuple[np.ndarray, str] | None = None  # the last image file opened
        self._build_controls()
        self._build_views()
        self._on_source_kind_changed()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        source = QGroupBox("Source image")
        form = QFormLayout(source)
        self.scene_radio = QRadioButton("Shapes scene")
        self.scene_radio.setChecked(True)
        self.scene_radio.setToolTip("A generated scene like those the models learned from")
        self.scene_spin = QSpinBox()
        self.scene_spin.setRange(0, MAX_SEED)
        self.scene_spin.setValue(DEFAULT_SCENE_SEED)
        self.scene_spin.setKeyboardTracking(False)
        self.scene_spin.setToolTip("Which scene: make_shapes with this seed")
        self.file_radio = QRadioButton("Image file")
        self.file_radio.setToolTip("Any picture, centre-cropped and resized to 32×32")
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip("PNG, JPEG, GIF, BMP, TIFF, WebP: centre-cropped to a square, resized to 32×32")
        self.kinds = QButtonGroup(self)
        self.kinds.addButton(self.scene_radio)
        self.kinds.addButton(self.file_radio)
        scene_row = QHBoxLayout()
        scene_row.addWidget(self.scene_radio)
        scene_row.addWidget(self.scene_spin, 1)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_radio)
        file_row.addWidget(self.open_button, 1)
        form.addRow(scene_row)
        form.addRow(file_row)
        self.source_label = QLabel()
        self.source_label.setWordWrap(True)
        self.source_label.setStyleSheet("color: #555;")
        form.addRow(self.source_label)
        self.strength_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(MIN_STRENGTH, 1.0)
        self.strength_slider.setSingleStep(0.05)
        self.strength_slider.setDecimals(2)
        self.strength_slider.setValue(DEFAULT_STRENGTH)
        self.strength_slider.setToolTip("How much noise is added to the source's latent: 0.05 keeps it almost as "
                                        "it is, 1 starts from pure noise (plain text to image). Only the last "
                                        "strength × steps steps run")
        form.addRow("Strength", self.strength_slider)
        self.control_layout.addWidget(source)
        prompt = QGroupBox("Prompt")
        prompt_form = QFormLayout(prompt)
        self.prompt_edit = self._prompt_edit(DEFAULT_PROMPT, "What the source should become", "empty: unconditional")
        prompt_form.addRow("Prompt", self.prompt_edit)
        prompt_form.addRow(self._vocabulary_hint())
        self._sampling_rows(prompt_form)
        self.control_layout.addWidget(prompt)
        export = QGroupBox("Export")
        layout = QVBoxLayout(export)
        self.panels_check = QCheckBox("Export z_t | ẑ₀ side by side")
        self.panels_check.setToolTip("File → Export sequence (Ctrl+E): the run from the noised source to the "
                                     "result; with this, each frame shows z_t and ẑ₀ decoded")
        layout.addWidget(self.panels_check)
        self.control_layout.addWidget(export)
        self.scene_spin.valueChanged.connect(self._on_source_kind_changed)
        self.kinds.buttonClicked.connect(self._on_source_kind_changed)
        self.open_button.clicked.connect(self.open_image_dialog)
        self.strength_slider.valueChanged.connect(self._on_setting_changed)

    def _build_views(self) -> None:
        note = QLabel("The source is <b>encoded</b> to a latent, <b>noised</b> to the strength (as if at "
                      "step t of the schedule) and <b>denoised</b> with the prompt for the remaining steps: "
                      "a low strength keeps the layout, a high one keeps little.")
        note.setWordWrap(True)
        self.source_panel = fixed_panel(minimum=110)
        self.source_title = titled(self.source_panel)
        self.roundtrip_panel = fixed_panel(minimum=110)
        titled(self.roundtrip_panel).setText("its VAE round trip")  # (titled: level with its neighbours')
        self.start_panel = fixed_panel(minimum=110)
        self.start_title = titled(self.start_panel)
        self.zt_panel = fixed_panel(minimum=110)
        self.zt_title = titled(self.zt_panel)
        self.x0_panel = fixed_panel(minimum=110)
        self.x0_title = titled(self.x0_panel)
        self.result_panel = fixed_panel(minimum=110)
        titled(self.result_panel).setText("the result")
        grid = QGridLayout()
        grid.setSpacing(6)
        for i, panel in enumerate((self.source_panel, self.roundtrip_panel, self.start_panel,
                                   self.zt_panel, self.x0_panel, self.result_panel)):
            grid.addWidget(panel, i // 3, i % 3)
        self.readout = ReadoutLabel(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(note)
        layout.addLayout(grid, 1)
        layout.addWidget(self.readout)
        layout.addWidget(self.player)

    def prompt_edits(self) -> list[QLineEdit]:
        return [self.prompt_edit]

    # ------------------------------------------------------------------ the source
    def _on_source_kind_changed(self) -> None:
        if self.file_radio.isChecked() and self.file_source is None:
            self.open_image_dialog()
            if self.file_source is None:
                self.scene_radio.setChecked(True)
        if self.file_radio.isChecked() and self.file_source is not None:
            self.set_source(*self.file_source)
        else:
            from models.data import make_shapes

            scene = make_shapes(1, seed=self.scene_spin.value())
            self.set_source(scene.images[0], f"scene {self.scene_spin.value()}, {scene.captions[0]}")

    def set_source(self, pixels: np.ndarray, name: str) -> None:
        """Use ``pixels`` (uint8 H×W×3, resized to 32×32 if needed) as the source."""
        image = pixels if pixels.shape == (SIDE, SIDE, 3) else square_rgb(pixels)
        self.source, self.source_name = np.ascontiguousarray(image, dtype=np.uint8), name
        self.source_title.setText(f"source: {name.split(',')[0]}")
        self.source_label.setText(f"Source: {name} (32×32)")
        self.source_panel.setToolTip(f"The source: {name}")
        self.source_panel.set_image(self.source)
        self._on_setting_changed()

    def open_image_file(self, path: str | Path) -> bool:
        """Use an image file as the source; a file that cannot be read leaves the source as it is."""
        from models.images import ImageLoadError, load_image

        path = Path(path)
        try:
            pixels = load_image(path).pixels
        except ImageLoadError as error:
            self.message.emit(f"{error}. The source is unchanged.")
            return False
        self.use_image(pixels, path.name)
        return True

    def use_image(self, pixels: np.ndarray, name: str) -> None:
        """Make an opened picture (uint8 H×W×3) the source, centre-cropped and resized to 32×32."""
        self.file_source = (square_rgb(pixels), name)
        self.file_radio.setChecked(True)
        self.set_source(*self.file_source)

    def open_image_dialog(self) -> None:
        from models.images import IMAGE_FILE_FILTER

        path, _ = QFileDialog.getOpenFileName(self, "Open a source image", "", IMAGE_FILE_FILTER)
        if path:
            self.open_image_file(path)

    # ------------------------------------------------------------------ runs
    def run_spec(self) -> RunSpec:
        return RunSpec(prompt=self.prompt_edit.text(), guidance=self.guidance_slider.value(),
                       steps=self.steps_spin.value(), sampler="ddim", seed=self.seed_spin.value(),
                       init_image=self.source, strength=round(self.strength_slider.value(), 4))

    def _start_run(self, on_finished):
        spec = self.run_spec()
        self.run = FrameRun(spec, total=spec.expected_frames)
        self.result_panel.image_item.clear()  # not this run's result
        self.progress.setRange(0, spec.expected_frames)
        self.progress.setValue(0)
        self.progress.setFormat(f"{spec.expected_frames} of {spec.steps} steps: %v / %m")
        if note := self.prompt_note(spec.prompt):
            self.message.emit(note)
        return self.pool.start(run_image_to_image, self.holder.pipe, spec, on_yield=self._on_item,
                               on_finished=on_finished, name="Image to image")

    def _on_item(self, item) -> None:
        kind, value = item
        if kind == "roundtrip":
            self.roundtrip_panel.set_image(value)
            return
        run = self.run
        run.add(value)
        self.progress.setValue(len(run.frames))
        self.player.set_available(run.available, waiting=not run.complete)
        if len(run.frames) == 1:
            start = run.frames[0]
            self.start_title.setText(f"noised start (t = {start.t})")
            self.start_panel.set_image(start.image[0])
            self.player.show_position(0)
        if run.complete:
            self.result_panel.set_image(run.frames[-1].final_image[0])
            note = self.prompt_note(run.spec.prompt)
            self.message.emit(f"Image to image, {run.spec.describe()}: {run.total} of {run.spec.steps} steps in "
                              f"{run.seconds:.1f} s." + (f" {note}" if note else ""))

    def complete(self) -> bool:
        return self.run is not None and self.run.complete

    def show_position(self, position: int) -> None:
        found = self.run.at(position) if self.run is not None else None
        if found is None:
            return
        frame, final = found
        if final:
            self.zt_title.setText("z₀ decoded: the result")
            self.zt_panel.set_image(frame.final_image[0])
            self.x0_title.setText("ẑ₀ of the last step")
        else:
            self.zt_title.setText(f"z_t decoded (t = {frame.t})")
            self.zt_panel.set_image(frame.image[0])
            self.x0_title.setText(f"ẑ₀ decoded (t = {frame.t})")
        self.x0_panel.set_image(frame.x0_image[0])
        spec = self.run.spec
        where = "the result" if final else f"step {frame.index + 1} of {frame.total}, t = {frame.t}"
        self.readout.setText(f"<b>{where}</b> &nbsp; strength {spec.strength:.2f}: {frame.total} of "
                             f"{spec.steps} steps run, from t = {self.run.frames[0].t} &nbsp; guidance {spec.guidance:g}")
        self.player.label.setText("result" if final else f"step {frame.index + 1} / {frame.total}")

    # ------------------------------------------------------------------ export
    def export_job(self) -> ExportJob | None:
        """The run from the noised source to the result; the last frame is the result."""
        if self.source is None:
            return None
        fresh = self.run is not None and self.run.complete and not self.stale
        spec = self.run.spec if fresh else self.run_spec()
        panels = self.panels_check.isChecked()
        pipe = self.holder.pipe
        params = {
            "sequence": "reverse", "model": "shapes", **spec.params(pipe.names), "origin": self.holder.origin,
            "init": self.source_name, "panels": panels, "scale": EXPORT_SCALE,
            "frames_show": "z_t decoded from the noised source" + (" | ẑ₀ decoded" if panels else "")
            + ", then the result",
        }
        if fresh:
            frames = text_frame_images(self.run.frames, panels=panels, scale=EXPORT_SCALE)
        else:
            frames = functools.partial(export_pictures, pipe, spec, panels, EXPORT_SCALE)
        name = f"img2img-strength{spec.strength:.2f}-seed{spec.seed}"
        return ExportJob(frames=frames, count=spec.expected_frames + 1, params=params, default_name=name)

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        super().save_settings(settings)
        settings.setValue("img2img/scene", self.scene_spin.value())
        settings.setValue("img2img/strength", self.strength_slider.value())
        settings.setValue("img2img/panels", self.panels_check.isChecked())

    def restore_settings(self, settings: QSettings) -> None:
        if (panels := read_setting(settings, "img2img/panels", as_bool)) is not None:
            self.panels_check.setChecked(panels)
        for widget in (self.scene_spin, self.strength_slider):
            widget.blockSignals(True)
        if (strength := read_setting(settings, "img2img/strength", float, lambda v: MIN_STRENGTH <= v <= 1)) is not None:
            self.strength_slider.setValue(strength)
        scene = read_setting(settings, "img2img/scene", int, lambda v: 0 <= v <= MAX_SEED)
        if scene is not None:
            self.scene_spin.setValue(scene)
        for widget in (self.scene_spin, self.strength_slider):
            widget.blockSignals(False)
        if scene is not None and self.scene_radio.isChecked():
            self._on_source_kind_changed()
        super().restore_settings(settings)
