"""The Text to image tab: the pipeline drawn as Stable Diffusion's is drawn, one step at a time.

prompt → tokens → CLIP text encoder → U-Net loop in the VAE's 8×8×4 latent space → VAE
decoder → image. For the step on screen: the 4 channels of z_t, z_t and ẑ₀ decoded, the
three noise predictions of classifier-free guidance and each word's cross-attention map.
A worker samples (``frames_player.run_text_frames``) and every frame is cached, so play,
step and scrub never sample again.
"""

from __future__ import annotations

import functools

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from explorer.chapters.base import ExportJob
from explorer.chapters.common import as_bool, read_setting
from explorer.chapters.diffusion.reverse_tab import titled
from explorer.chapters.text2img.frames_export import EXPORT_SCALE, text_frame_images
from explorer.chapters.text2img.frames_player import DEFAULT_PROMPT, FrameRun, RunSpec, export_pictures, run_text_frames
from explorer.chapters.text2img.frames_tab import SamplingTab
from explorer.chapters.text2img.frames_view import ATTENTION_TOP, LATENT_REACH, attention_rgb, channel_strip
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.pipeline_diagram import PipelineDiagram
from explorer.widgets.readout import ReadoutLabel

STRIPS = {  # name -> (title, tooltip) of a row of 4 channel maps
    "z_t": ("z_t: the latent's 4 channels", "The noisy latent the U-Net sees at this step, channel by channel"),
    "eps_uncond": ("ε̂∅: without the text", "The U-Net's noise prediction given no text (or the negative prompt)"),
    "eps_text": ("ε̂text: with the text", "The U-Net's noise prediction given the prompt"),
    "eps_guided": ("guided ε̂ (the step uses it)", "Classifier-free guidance: ε̂ = ε̂∅ + g·(ε̂text − ε̂∅); "
                   "g = 1 is ε̂text, larger overshoots it away from ε̂∅"),
}


def fixed_panel(title: str = "", minimum: int = 60) -> ImagePanel:
    panel = ImagePanel(title)
    panel.view_box.setMouseEnabled(x=False, y=False)
    panel.setMinimumSize(minimum, minimum)
    return panel


class PipelineTab(SamplingTab):
    """Text to image from a prompt, step by step, with everything the U-Net sees and predicts."""

    KEY = "pipeline"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.run: FrameRun | None = None
        self.attention_maps: np.ndarray | None = None  # float32 (words, 8, 8) on screen
        self.word_panels: list[ImagePanel] = []
        self._build_controls()
        self._build_views()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        box = QGroupBox("Prompt")
        form = QFormLayout(box)
        self.prompt_edit = self._prompt_edit(DEFAULT_PROMPT, "What to draw, in the words of the captions the "
                                             "model learned from (e.g. a yellow star on a blue background)",
                                             "empty: unconditional")
        self.negative_edit = self._prompt_edit("", "What to steer away from: guidance pushes from this prompt "
                                               "toward the prompt (instead of from no text at all)",
                                               "nothing (the empty prompt)")
        form.addRow("Prompt", self.prompt_edit)
        form.addRow("Negative", self.negative_edit)
        form.addRow(self._vocabulary_hint())
        self.prompt_edit.textEdited.connect(self._show_tokens)
        self.control_layout.addWidget(box)
        sampling = QGroupBox("Sampling")
        self._sampling_rows(QFormLayout(sampling))
        self.control_layout.addWidget(sampling)
        export = QGroupBox("Export")
        layout = QVBoxLayout(export)
        self.panels_check = QCheckBox("Export z_t | ẑ₀ side by side")
        self.panels_check.setToolTip("File → Export sequence (Ctrl+E): each frame shows z_t and ẑ₀ decoded, "
                                     "not z_t alone; the last frame is the final image")
        layout.addWidget(self.panels_check)
        self.control_layout.addWidget(export)

    def _build_views(self) -> None:
        self.diagram = PipelineDiagram()
        self.zt_panel = fixed_panel(minimum=120)
        self.zt_title = titled(self.zt_panel)
        self.x0_panel = fixed_panel(minimum=120)
        self.x0_title = titled(self.x0_panel)
        self.zt_panel.setToolTip("The noisy latent z_t the U-Net sees at this step, put through the VAE decoder")
        self.x0_panel.setToolTip("ẑ₀: the clean latent this step's noise prediction implies, decoded: what the "
                                 "image is becoming")
        self.strips = {name: fixed_panel(title, 36) for name, (title, _) in STRIPS.items()}
        for name, (_, tip) in STRIPS.items():
            self.strips[name].setToolTip(tip)
        strips = QVBoxLayout()
        strips.setSpacing(2)
        for panel in self.strips.values():
            panel.title_label.setStyleSheet("font-weight: 600; font-size: 11px;")
            strips.addWidget(panel, 1)
        legend = QLabel(f"Channel maps: blue −{LATENT_REACH:g} · white 0 · red +{LATENT_REACH:g}")
        legend.setStyleSheet("color: #555; font-size: 11px;")
        strips.addWidget(legend)
        top = QGridLayout()
        top.setSpacing(6)
        top.addWidget(self.zt_panel, 0, 0)
        top.addWidget(self.x0_panel, 0, 1)
        top.addLayout(strips, 0, 2)
        top.setColumnStretch(0, 3)
        top.setColumnStretch(1, 3)
        top.setColumnStretch(2, 4)

        self.attention_header = QLabel()
        self.attention_header.setStyleSheet("font-weight: 600;")
        self.over_check = QCheckBox("over ẑ₀")
        self.over_check.setChecked(True)
        self.over_check.setToolTip("Draw each word's map over the decoded ẑ₀ (in grey), or on its own")
        self.over_check.toggled.connect(lambda: self.show_position(self.player.position))
        attention_legend = QLabel(f"black: none · red: an even share · white: {ATTENTION_TOP:g}× that or more")
        attention_legend.setStyleSheet("color: #555; font-size: 11px;")
        header = QHBoxLayout()
        header.addWidget(self.attention_header, 1)
        header.addWidget(attention_legend)
        header.addWidget(self.over_check)
        self.words_row = QHBoxLayout()
        self.words_row.setSpacing(4)
        self.no_words = QLabel("No words to attend to: the empty prompt is unconditional.")
        self.no_words.setStyleSheet("color: #555;")
        self.words_row.addWidget(self.no_words)
        words = QWidget()
        words.setLayout(self.words_row)
        words.setMinimumHeight(96)

        self.readout = ReadoutLabel(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.diagram)
        layout.addLayout(top, 5)
        layout.addLayout(header)
        layout.addWidget(words, 2)
        layout.addWidget(self.readout)
        layout.addWidget(self.player)

    def prompt_edits(self) -> list[QLineEdit]:
        return [self.prompt_edit, self.negative_edit]

    # ------------------------------------------------------------------ runs
    def run_spec(self) -> RunSpec:
        """The settings the controls show."""
        return RunSpec(prompt=self.prompt_edit.text(), negative=self.negative_edit.text(),
                       guidance=self.guidance_slider.value(), steps=self.steps_spin.value(),
                       sampler=self.sampler_combo.currentData(), seed=self.seed_spin.value())

    def _show_tokens(self) -> None:
        self.diagram.set_prompt(self.prompt_edit.text(), self.tokens_of(self.prompt_edit.text()))

    def _start_run(self, on_finished):
        spec = self.run_spec()
        self.run = FrameRun(spec, total=spec.expected_frames)
        pipe = self.holder.pipe
        self._show_tokens()
        unet = pipe.unet.config.unet
        self.diagram.set_run(spec.steps, spec.sampler, spec.guidance, spec.expected_frames,
                             embedding_shape=(pipe.clip.config.max_tokens, pipe.clip.config.width),
                             latent_shape=(unet.in_channels, unet.image_size, unet.image_size))
        self.diagram.set_step(None, None, spec.expected_frames, False)
        self.diagram.set_image(None)
        self._make_word_panels(pipe.tokens(spec.prompt).words)
        self.progress.setRange(0, spec.expected_frames)
        self.progress.setValue(0)
        self.progress.setFormat(f"{spec.sampler.upper()}-{spec.steps}: %v / %m steps")
        if note := self.prompt_note(spec.prompt, spec.negative):
            self.message.emit(note)
        return self.pool.start(run_text_frames, pipe, spec, on_yield=self._on_frame,
                               on_finished=on_finished, name="Text to image")

    def _make_word_panels(self, words: list[str]) -> None:
        """One small panel per prompt word, titled with the word."""
        if [panel.title_label.text() for panel in self.word_panels] == words:
            return
        for panel in self.word_panels:
            self.words_row.removeWidget(panel)
            panel.deleteLater()
        self.word_panels = []
        for word in words:
            panel = fixed_panel(word, 36)
            panel.setToolTip(f"Where “{word}” looks: the U-Net's cross-attention to this word over the "
                             "8×8 latent positions, averaged over heads and blocks (black: none, dim red: an even "
                             f"share, white: {ATTENTION_TOP:g}× an even share or more)")
            self.words_row.addWidget(panel, 1)
            self.word_panels.append(panel)
        self.no_words.setVisible(not words)

    def _on_frame(self, frame) -> None:
        run = self.run
        run.add(frame)
        self.progress.setValue(len(run.frames))
        self.player.set_available(run.available, waiting=not run.complete)
        if len(run.frames) == 1:
            self.player.show_position(0)
        if run.complete:
            note = self.prompt_note(run.spec.prompt, run.spec.negative)
            self.message.emit(f"{run.spec.describe()}: {run.seconds:.1f} s." + (f" {note}" if note else ""))

    def complete(self) -> bool:
        return self.run is not None and self.run.complete

    # ------------------------------------------------------------------ what is on screen
    def show_position(self, position: int) -> None:
        """Show step ``position`` (``total``: the final image) from the cache."""
        found = self.run.at(position) if self.run is not None else None
        if found is None:
            return
        frame, final = found
        i = 0
        if final:
            self.zt_title.setText("z₀ decoded: the final image")
            self.zt_panel.set_image(frame.final_image[i])
            self.x0_title.setText("ẑ₀ of the last step, decoded")
            latent = frame.prev_latents[i]
        else:
            self.zt_title.setText(f"z_t decoded (t = {frame.t})")
            self.zt_panel.set_image(frame.image[i])
            self.x0_title.setText(f"ẑ₀ decoded (t = {frame.t})")
            latent = frame.latents[i]
        self.x0_panel.set_image(frame.x0_image[i])
        self.strips["z_t"].set_image(channel_strip(latent))
        self.strips["eps_uncond"].set_image(channel_strip(frame.eps_uncond[i]))
        self.strips["eps_text"].set_image(channel_strip(frame.eps_text[i]))
        self.strips["eps_guided"].set_image(channel_strip(frame.eps_guided[i]))
        self._show_attention(frame, final)
        self.diagram.set_step(frame.index, frame.t, frame.total, final)
        self.diagram.set_image(frame.final_image[i] if final else frame.x0_image[i])
        text_effect = float(np.abs(frame.eps_text[i] - frame.eps_uncond[i]).mean())
        where = "the final image" if final else f"step {frame.index + 1} of {frame.total}, t = {frame.t}"
        self.readout.setText(
            f"<b>{where}</b> &nbsp; guidance g = {self.run.spec.guidance:g} &nbsp; std of z_t = "
            f"{float(latent.std()):.2f} &nbsp; mean |ε̂text − ε̂∅| = {text_effect:.3f} (what the words change)")
        self.player.label.setText("final image" if final else f"step {frame.index + 1} / {frame.total}")

    def _show_attention(self, frame, final: bool) -> None:
        step = "the last step" if final else f"step {frame.index + 1} (t = {frame.t})"
        if frame.attention is None or not self.word_panels:
            self.attention_maps = None
            self.attention_header.setText("Cross-attention")
            return
        self.attention_header.setText(f"Cross-attention at {step}")
        self.attention_header.setToolTip("Where each word looks: the U-Net's attention to it over the 8×8 "
                                         "latent positions")
        maps = frame.attention[0, : len(self.word_panels)]
        self.attention_maps = maps
        base = (frame.final_image if final else frame.x0_image)[0] if self.over_check.isChecked() else None
        for panel, weights in zip(self.word_panels, maps):
            panel.set_image(attention_rgb(weights, base))

    # ------------------------------------------------------------------ export
    def export_job(self) -> ExportJob | None:
        """The run on screen (or the controls' run, sampled afresh), noise to image, as the CLI's
        ``export reverse --model shapes`` makes it; the last frame is the final image."""
        fresh = self.run is not None and self.run.complete and not self.stale
        spec = self.run.spec if fresh else self.run_spec()
        panels = self.panels_check.isChecked()
        pipe = self.holder.pipe
        tokens = pipe.tokens(spec.prompt)
        params = {
            "sequence": "reverse", "model": "shapes", **spec.params(pipe.names), "origin": self.holder.origin,
            "tokens": tokens.words, "unknown_words": tokens.unknown, "panels": panels, "scale": EXPORT_SCALE,
            "frames_show": "z_t decoded at each step" + (" | ẑ₀ decoded" if panels else "")
            + ", then the final image",
        }
        if fresh:
            params["t"] = [frame.t for frame in self.run.frames]
            frames = text_frame_images(self.run.frames, panels=panels, scale=EXPORT_SCALE)
        else:
            frames = functools.partial(export_pictures, pipe, spec, panels, EXPORT_SCALE)
        name = f"text2img-{spec.sampler}{spec.steps}-seed{spec.seed}"
        return ExportJob(frames=frames, count=spec.expected_frames + 1, params=params, default_name=name)

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        super().save_settings(settings)
        settings.setValue("pipeline/panels", self.panels_check.isChecked())
        settings.setValue("pipeline/over", self.over_check.isChecked())

    def restore_settings(self, settings: QSettings) -> None:
        if (panels := read_setting(settings, "pipeline/panels", as_bool)) is not None:
            self.panels_check.setChecked(panels)
        if (over := read_setting(settings, "pipeline/over", as_bool)) is not None:
            self.over_check.setChecked(over)
        super().restore_settings(settings)
