"""The Two prompts tab: two prompts from the very same noise, side by side, kept in step.

Both runs use one seed, so they start from the same z_T; only the words differ. One
worker samples them in step (``frames_player.run_pair``); a curve shows how far apart
the two latents drift, step by step.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from explorer.chapters.base import ExportJob
from explorer.chapters.common import as_bool, read_setting
from explorer.chapters.diffusion.reverse_tab import titled
from explorer.chapters.text2img.frames_export import EXPORT_SCALE, side_by_side, text_frame_images
from explorer.chapters.text2img.frames_player import DEFAULT_PROMPT, FrameRun, RunSpec, run_pair
from explorer.chapters.text2img.frames_tab import SamplingTab
from explorer.chapters.text2img.frames_view import channel_strip
from explorer.chapters.text2img.pipeline_tab import fixed_panel
from explorer.widgets.readout import ReadoutLabel

SECOND_PROMPT = "a yellow star on a blue background"
COLORS = ("#1f77b4", "#ff7f0e")


def latent_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square difference of two latents (0: the same)."""
    return float(np.sqrt(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2)))


def pair_pictures(runs: tuple[list, list], panels: bool, scale: int) -> list[np.ndarray]:
    """Both runs' pictures side by side (see ``text_frame_images``), the final images last."""
    left, right = (text_frame_images(frames, panels=panels, scale=scale) for frames in runs)
    return [side_by_side(a, b, 2 * scale) for a, b in zip(left, right)]


def export_pair(pipe, specs: tuple[RunSpec, RunSpec], panels: bool, scale: int) -> Iterator[np.ndarray]:
    """Worker generator: both runs sampled afresh, pictured side by side."""
    frames: tuple[list, list] = ([], [])
    for k, frame in run_pair(pipe, specs):  # (run to its end: the pipeline is released here)
        frames[k].append(frame)
    yield from pair_pictures(frames, panels, scale)


class CompareTab(SamplingTab):
    """Two prompts, one seed: the same starting noise becomes two different pictures."""

    KEY = "compare"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.runs: tuple[FrameRun, FrameRun] | None = None
        self._build_controls()
        self._build_views()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        box = QGroupBox("Two prompts, the same noise")
        form = QFormLayout(box)
        self.prompt_edits_ = [
            self._prompt_edit(DEFAULT_PROMPT, "The left picture's prompt", "empty: unconditional"),
            self._prompt_edit(SECOND_PROMPT, "The right picture's prompt: change one word and compare",
                              "empty: unconditional"),
        ]
        self.negative_edit = self._prompt_edit("", "What both runs steer away from", "nothing")
        form.addRow("Left", self.prompt_edits_[0])
        form.addRow("Right", self.prompt_edits_[1])
        form.addRow("Negative", self.negative_edit)
        form.addRow(self._vocabulary_hint())
        self.control_layout.addWidget(box)
        sampling = QGroupBox("Sampling (both)")
        self._sampling_rows(QFormLayout(sampling))
        self.control_layout.addWidget(sampling)
        export = QGroupBox("Export")
        layout = QVBoxLayout(export)
        self.panels_check = QCheckBox("Export z_t | ẑ₀ of each prompt")
        self.panels_check.setToolTip("File → Export sequence (Ctrl+E): both runs side by side; with this, "
                                     "each run shows z_t and ẑ₀ decoded")
        layout.addWidget(self.panels_check)
        self.control_layout.addWidget(export)

    def _build_views(self) -> None:
        note = QLabel("Both prompts start from the <b>same noise z<sub>T</sub></b> (one seed) and use the same "
                      "sampler: only the words differ. Big: ẑ₀ decoded, what each picture is becoming.")
        note.setWordWrap(True)
        grid = QGridLayout()
        grid.setSpacing(6)
        self.headers: list[QLabel] = []
        self.big_panels, self.big_titles, self.zt_panels, self.zt_titles = [], [], [], []
        self.strips, self.final_panels = [], []
        for k, color in enumerate(COLORS):
            header = QLabel()
            header.setAlignment(Qt.AlignmentFlag.AlignCenter)
            header.setStyleSheet(f"color: {color}; font-weight: 700;")
            header.setWordWrap(True)
            big = fixed_panel(minimum=150)
            zt = fixed_panel(minimum=70)
            final = fixed_panel(minimum=70)
            titled(final).setText("final image")  # (titled: level with z_t's title)
            strip = fixed_panel("z_t: 4 channels", 30)
            self.headers.append(header)
            self.big_panels.append(big)
            self.big_titles.append(titled(big))
            self.zt_panels.append(zt)
            self.zt_titles.append(titled(zt))
            self.final_panels.append(final)
            self.strips.append(strip)
            column = 2 * k
            grid.addWidget(header, 0, column, 1, 2)
            grid.addWidget(big, 1, column, 1, 2)
            grid.addWidget(zt, 2, column)
            grid.addWidget(final, 2, column + 1)
            grid.addWidget(strip, 3, column, 1, 2)
        grid.setRowStretch(1, 5)
        grid.setRowStretch(2, 3)
        grid.setRowStretch(3, 1)

        self.curve_plot = pg.PlotWidget()
        self.curve_plot.setMenuEnabled(False)
        self.curve_plot.setMouseEnabled(x=False, y=False)
        self.curve_plot.hideButtons()
        self.curve_plot.setTitle("How far apart the two latents are: RMS of z_t(left) − z_t(right), per step",
                                 size="9pt")
        self.curve_plot.setLabel("bottom", "step")
        self.curve_plot.showGrid(x=True, y=True, alpha=0.2)
        self.curve_plot.setFixedHeight(130)
        self.distance_curve = self.curve_plot.plot(pen=pg.mkPen("#444", width=2), symbol="o", symbolSize=4)
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d62728", width=1.5))
        self.curve_plot.addItem(self.marker)

        self.readout = ReadoutLabel(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(note)
        layout.addLayout(grid, 1)
        layout.addWidget(self.curve_plot)
        layout.addWidget(self.readout)
        layout.addWidget(self.player)

    def prompt_edits(self) -> list[QLineEdit]:
        return [*self.prompt_edits_, self.negative_edit]

    # ------------------------------------------------------------------ runs
    def run_specs(self) -> tuple[RunSpec, RunSpec]:
        """The two runs the controls describe: the same seed and settings, two prompts."""
        common = dict(negative=self.negative_edit.text(), guidance=self.guidance_slider.value(),
                      steps=self.steps_spin.value(), sampler=self.sampler_combo.currentData(),
                      seed=self.seed_spin.value())
        return (RunSpec(prompt=self.prompt_edits_[0].text(), **common),
                RunSpec(prompt=self.prompt_edits_[1].text(), **common))

    def _start_run(self, on_finished):
        specs = self.run_specs()
        self.runs = (FrameRun(specs[0], specs[0].steps), FrameRun(specs[1], specs[1].steps))
        for header, spec in zip(self.headers, specs):
            header.setText(f"“{spec.prompt}”" if spec.prompt.strip() else "(empty prompt: unconditional)")
        for panel in self.final_panels:
            panel.image_item.clear()
        self.distances: list[float] = []  # per step both runs have
        self.distance_curve.setData([], [])
        self.curve_plot.setXRange(1, max(2, specs[0].steps), padding=0.02)
        self.progress.setRange(0, 2 * specs[0].steps)
        self.progress.setValue(0)
        self.progress.setFormat(f"{specs[0].sampler.upper()}-{specs[0].steps}: %v / %m steps (both)")
        notes = [self.prompt_note(spec.prompt, label=f"{side}: ") for spec, side in zip(specs, ("Left", "Right"))]
        if note := " ".join(n for n in notes if n):
            self.message.emit(note)
        return self.pool.start(run_pair, self.holder.pipe, specs, on_yield=self._on_frame,
                               on_finished=on_finished, name="Two prompts")

    def _on_frame(self, item) -> None:
        k, frame = item
        self.runs[k].add(frame)
        a, b = self.runs
        self.progress.setValue(len(a.frames) + len(b.frames))
        if k == 1:  # both have this step now
            distances = self.distances
            distances.append(latent_distance(a.frames[len(distances)].latents, b.frames[len(distances)].latents))
            self.distance_curve.setData(np.arange(1, len(distances) + 1), distances)
            self.curve_plot.setYRange(0.0, max(0.05, 1.1 * max(distances)), padding=0)
            self.player.set_available(self.available(), waiting=not self.complete())
            if len(b.frames) == 1:
                self.player.show_position(0)
            if self.complete():
                for panel, run in zip(self.final_panels, self.runs):
                    panel.set_image(run.frames[-1].final_image[0])
                self.message.emit(f"{a.spec.describe()}, both prompts: {b.seconds:.1f} s.")

    def available(self) -> int:
        if self.runs is None:
            return 0
        steps = min(len(run.frames) for run in self.runs)
        return steps + (1 if self.complete() else 0)

    def complete(self) -> bool:
        return self.runs is not None and all(run.complete for run in self.runs)

    # ------------------------------------------------------------------ what is on screen
    def show_position(self, position: int) -> None:
        if self.runs is None or not self.available():
            return
        shown = []
        for k, run in enumerate(self.runs):
            frame, final = run.at(position)
            if final:
                self.big_titles[k].setText("the final image")
                self.big_panels[k].set_image(frame.final_image[0])
                self.zt_titles[k].setText("z₀ decoded")
                self.zt_panels[k].set_image(frame.final_image[0])
                latent = frame.prev_latents[0]
            else:
                self.big_titles[k].setText(f"ẑ₀ decoded (t = {frame.t})")
                self.big_panels[k].set_image(frame.x0_image[0])
                self.zt_titles[k].setText(f"z_t decoded (t = {frame.t})")
                self.zt_panels[k].set_image(frame.image[0])
                latent = frame.latents[0]
            self.strips[k].set_image(channel_strip(latent))
            shown.append((frame, final, latent))
        (frame, final, a), (_, _, b) = shown
        distance = latent_distance(a, b)
        self.marker.setValue(frame.total if final else frame.index + 1)
        where = "the final images" if final else f"step {frame.index + 1} of {frame.total}, t = {frame.t}"
        self.readout.setText(f"<b>{where}</b> &nbsp; RMS distance between the two latents = {distance:.3f}"
                             " &nbsp; (0 at the start: the same noise)")
        self.player.label.setText("final images" if final else f"step {frame.index + 1} / {frame.total}")

    # ------------------------------------------------------------------ export
    def export_job(self) -> ExportJob | None:
        """Both runs side by side, noise to image; the last frame shows the two final images."""
        fresh = self.complete() and not self.stale
        specs = (self.runs[0].spec, self.runs[1].spec) if fresh else self.run_specs()
        panels = self.panels_check.isChecked()
        pipe = self.holder.pipe
        params = {
            "sequence": "reverse", "model": "shapes", **specs[0].params(pipe.names), "origin": self.holder.origin,
            "prompt": [spec.prompt for spec in specs], "panels": panels, "scale": EXPORT_SCALE,
            "frames_show": "left | right prompt, each z_t decoded" + (" | ẑ₀ decoded" if panels else "")
            + ", from the same noise; then the final images",
        }
        if fresh:
            frames = pair_pictures((self.runs[0].frames, self.runs[1].frames), panels, EXPORT_SCALE)
        else:
            frames = functools.partial(export_pair, pipe, specs, panels, EXPORT_SCALE)
        name = f"two-prompts-{specs[0].sampler}{specs[0].steps}-seed{specs[0].seed}"
        return ExportJob(frames=frames, count=specs[0].steps + 1, params=params, default_name=name)

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        super().save_settings(settings)
        settings.setValue("compare/panels", self.panels_check.isChecked())

    def restore_settings(self, settings: QSettings) -> None:
        if (panels := read_setting(settings, "compare/panels", as_bool)) is not None:
            self.panels_check.setChecked(panels)
        super().restore_settings(settings)
