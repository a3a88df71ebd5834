"""The CLIP tab: how well each image matches each prompt, the images nearest a prompt, and both on one map.

CLIP puts an image and a sentence in the same space: the cosine of their embeddings
says how well they match. The text-to-image U-Net reads the same text encoder's
per-token outputs, so what CLIP cannot tell apart, the generator cannot follow.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from explorer.chapters.common import ViewJob, read_setting, tile, torch_threads_here
from explorer.chapters.text2img.backend import MAX_SEED, TextToImageTab
from explorer.widgets.similarity_matrix import SimilarityMatrix
from models.data import COLOR_NAMES, COLORS, SHAPES, make_shapes

DEFAULT_PROMPTS = (
    "a red circle on a blue background",
    "a blue circle on a red background",
    "a green star",
    "a yellow shape",
    "a triangle on a black background",
)
DEFAULT_QUERY = "a red circle"
MAX_PROMPTS = 10
GRID_SIZES = (8, 12)
POOL_SIZE = 500
POOL_SEED = 12_000  # fresh scenes: no model of the chapter trains on this seed
NEAREST = 8
DEBOUNCE_MS = 300
THUMB_GAP = 4
# pyqtgraph symbols that look like each shape (a diamond stands in for the heart)
SHAPE_SYMBOLS = {"circle": "o", "square": "s", "triangle": "t1", "star": "star", "cross": "+", "heart": "d"}


@dataclass
class ClipView:
    """What the tab shows for one set of prompts, scenes and query (numpy, made in a worker)."""

    prompts: list[str]
    similarity: np.ndarray  # float32 (images, prompts): cosine of each image's and prompt's embedding
    query: str
    nearest: np.ndarray  # int (≤ NEAREST,): pool indices, most similar first
    nearest_scores: np.ndarray  # float32 (≤ NEAREST,): their similarities to the query
    image_points: np.ndarray  # float32 (pool, 2): the pool's image embeddings on the projection
    prompt_points: np.ndarray  # float32 (prompts, 2)
    query_point: np.ndarray | None  # float32 (2,), None without a query
    explained: tuple[float, float]  # share of the variance along each projection axis
    pool_embeddings: np.ndarray  # float32 (pool, E): kept for the next request with the same model
    clip: Any  # the model that made these embeddings


def project(points: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """PCA to 2-D: (N, 2) coordinates and the share of the variance on each axis."""
    centred = points - points.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    if len(axes) < 2:  # fewer than two points: pad the missing axis
        axes = np.concatenate([axes, np.zeros((2 - len(axes), points.shape[1]))])
    variance = singular**2
    share = variance / max(float(variance.sum()), 1e-12)
    share = np.concatenate([share, np.zeros(2)])[:2]
    return (centred @ axes.T).astype(np.float32), (float(share[0]), float(share[1]))


def clip_view(clip: Any, prompts: list[str], images: np.ndarray, pool_images: np.ndarray, query: str,
              pool_embeddings: np.ndarray | None = None) -> ClipView:
    """Embed prompts, scenes and the pool (unless given) and compute every view of the tab (worker)."""
    torch_threads_here()
    text = clip.embed_text(prompts) if prompts else np.zeros((0, clip.config.embed_dim), np.float32)
    image = clip.embed_images(images)
    pool = clip.embed_images(pool_images) if pool_embeddings is None else pool_embeddings
    if query.strip():
        query_embedding = clip.embed_text([query])
        scores = (pool @ query_embedding[0]).astype(np.float32)
        nearest = np.argsort(-scores, kind="stable")[:NEAREST]
        nearest_scores = scores[nearest]
    else:
        query_embedding = np.zeros((0, pool.shape[1]), np.float32)
        nearest, nearest_scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
    points, explained = project(np.concatenate([pool, text, query_embedding]))  # one PCA for every point
    return ClipView(
        prompts=list(prompts), similarity=(image @ text.T).astype(np.float32), query=query,
        nearest=nearest, nearest_scores=nearest_scores,
        image_points=points[: len(pool)], prompt_points=points[len(pool) : len(pool) + len(text)],
        query_point=points[-1] if len(query_embedding) else None, explained=explained,
        pool_embeddings=pool, clip=clip,
    )


class ClipTab(TextToImageTab):
    """Type prompts; see the similarity matrix with fresh scenes, the nearest scenes to a prompt, and a map."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.view: ClipView | None = None
        self.scene_pool = make_shapes(POOL_SIZE, seed=POOL_SEED)  # where the nearest images come from
        self.scenes = make_shapes(GRID_SIZES[0], seed=0)  # the matrix's rows
        self.job = ViewJob(self.pool, self._show, name="CLIP")
        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(DEBOUNCE_MS)
        self.debounce.timeout.connect(self.update_view)
        self._build_controls()
        self._build_views()
        self._connect()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        prompts_box = QGroupBox("Prompts (one per line)")
        prompts_layout = QVBoxLayout(prompts_box)
        self.prompts_edit = QPlainTextEdit("\n".join(DEFAULT_PROMPTS))
        self.prompts_edit.setToolTip(f"Each line is a prompt, a column of the matrix (at most {MAX_PROMPTS}). "
                                     "Unknown words are ignored, and named in the status bar.")
        self.prompts_edit.setFixedHeight(130)
        self.prompts_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        vocabulary = QLabel(f"Words it knows: a, an, on, background, shape; {', '.join(COLOR_NAMES)}; "
                            f"{', '.join(SHAPES)}.")
        vocabulary.setWordWrap(True)
        vocabulary.setStyleSheet("color: #555;")
        prompts_layout.addWidget(self.prompts_edit)
        prompts_layout.addWidget(vocabulary)

        scenes_box = QGroupBox("Scenes (the matrix's rows)")
        scenes_form = QFormLayout(scenes_box)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip("Seed of the fresh shapes scenes in the matrix")
        self.new_scenes_button = QPushButton("New scenes")
        self.new_scenes_button.setToolTip("Draw other scenes (a random seed)")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.new_scenes_button)
        scenes_form.addRow("Seed", seed_row)
        self.count_combo = QComboBox()
        for count in GRID_SIZES:
            self.count_combo.addItem(f"{count} scenes", count)
        self.count_combo.setToolTip("How many scenes (rows) the matrix has")
        scenes_form.addRow("Rows", self.count_combo)

        query_box = QGroupBox("Nearest images")
        query_form = QFormLayout(query_box)
        self.query_edit = QLineEdit(DEFAULT_QUERY)
        self.query_edit.setClearButtonEnabled(True)
        self.query_edit.setToolTip(f"A prompt: the {NEAREST} scenes of {POOL_SIZE} fresh ones whose "
                                   "embeddings are most similar to its embedding")
        query_form.addRow("Prompt", self.query_edit)

        self.control_layout.addWidget(prompts_box)
        self.control_layout.addWidget(scenes_box)
        self.control_layout.addWidget(query_box)

    def _build_views(self) -> None:
        self.note = QLabel(
            "CLIP turns a prompt and an image into unit vectors in one space; their cosine says how well they "
            "match. Each row is a scene, each column a prompt (outlined: the prompt CLIP picks for that scene). "
            "The U-Net of this chapter reads the same text encoder.")
        self.note.setWordWrap(True)
        self.matrix_title = QLabel("Similarity: scenes × prompts")
        self.matrix_title.setStyleSheet("font-weight: 600;")
        self.matrix = SimilarityMatrix()
        self.matrix.setMinimumSize(300, 260)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)

        self.map_title = QLabel("Images and prompts on one map (PCA of both embeddings)")
        self.map_title.setStyleSheet("font-weight: 600;")
        self.map = pg.PlotWidget()
        self.map.setMenuEnabled(False)
        self.map.setMinimumSize(300, 260)
        self.map.getPlotItem().hideButtons()
        for axis in ("left", "bottom"):
            self.map.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)
        self.image_dots = pg.ScatterPlotItem(size=8, pen=pg.mkPen("#00000080", width=0.8))
        self.prompt_marks = pg.ScatterPlotItem(size=16, symbol="x", brush=pg.mkBrush("#111"),
                                               pen=pg.mkPen("w", width=0.5))
        self.query_mark = pg.ScatterPlotItem(size=18, symbol="x", brush=pg.mkBrush("#ff2d95"),
                                             pen=pg.mkPen("w", width=0.5))
        for z, item in enumerate((self.image_dots, self.prompt_marks, self.query_mark)):
            item.setZValue(z)  # the marks above the dots (and the labels above both)
            self.map.addItem(item)
        self.map_labels: list[pg.TextItem] = []
        self.map_key = QLabel(f"Dots: {POOL_SIZE} fresh scenes (colour: the shape's colour; symbol: its shape). "
                              "✕: the prompts; pink ✕: the nearest-images prompt.")
        self.map_key.setWordWrap(True)
        self.map_key.setStyleSheet("color: #555;")

        self.nearest_title = QLabel()
        self.nearest_title.setStyleSheet("font-weight: 600;")
        self.nearest_view = pg.GraphicsLayoutWidget()
        self.nearest_view.ci.setContentsMargins(0, 0, 0, 0)
        self.nearest_box: pg.ViewBox = self.nearest_view.addViewBox(lockAspect=True, invertY=True)
        self.nearest_box.setMouseEnabled(x=False, y=False)
        self.nearest_box.setMenuEnabled(False)
        self.nearest_image = pg.ImageItem()
        self.nearest_box.addItem(self.nearest_image)
        self.nearest_labels: list[pg.TextItem] = []
        self.nearest_view.setFixedHeight(120)

        left = QVBoxLayout()
        left.addWidget(self.matrix_title)
        left.addWidget(self.matrix, 1)
        left.addWidget(self.legend)
        right = QVBoxLayout()
        right.addWidget(self.map_title)
        right.addWidget(self.map, 1)
        right.addWidget(self.map_key)
        top = QHBoxLayout()
        top.addLayout(left, 1)
        top.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.note)
        layout.addLayout(top, 1)
        layout.addWidget(self.nearest_title)
        layout.addWidget(self.nearest_view)

    def _connect(self) -> None:
        self.prompts_edit.textChanged.connect(self.debounce.start)
        self.query_edit.textChanged.connect(self.debounce.start)
        self.seed_spin.valueChanged.connect(self._make_scenes)
        self.count_combo.currentIndexChanged.connect(self._make_scenes)
        self.new_scenes_button.clicked.connect(lambda: self.seed_spin.setValue(random.randint(0, MAX_SEED)))

    # ------------------------------------------------------------------ input
    def prompts(self) -> list[str]:
        """The non-empty lines of the prompt list, at most MAX_PROMPTS."""
        lines = [line.strip() for line in self.prompts_edit.toPlainText().splitlines()]
        return [line for line in lines if line][:MAX_PROMPTS]

    def input_message(self) -> str:
        """One sentence about unknown words, over-long or too many prompts; "" when all is well."""
        lines = [line.strip() for line in self.prompts_edit.toPlainText().splitlines() if line.strip()]
        texts = [*lines[:MAX_PROMPTS], self.query_edit.text()]
        tokenizer = self.holder.pipe.clip.tokenizer
        tokens = [tokenizer(text) for text in texts]
        unknown = list(dict.fromkeys(word for t in tokens for word in t.unknown))
        parts = []
        if unknown:
            quoted = ", ".join(f"“{w}”" for w in unknown)
            parts.append(f"Unknown word{'s' if len(unknown) > 1 else ''} ignored: {quoted}.")
        long = [text for text, t in zip(texts, tokens) if t.dropped]
        if long:
            parts.append(f"Too long (only the first {tokenizer.max_tokens - 2} words are used): "
                         + "; ".join(f"“{text[:30]}…”" for text in long) + ".")
        if len(lines) > MAX_PROMPTS:
            parts.append(f"Only the first {MAX_PROMPTS} prompts are compared.")
        if not lines:
            parts.append("Type a prompt (one per line) to compare the scenes with.")
        return " ".join(parts)

    def _make_scenes(self) -> None:
        self.scenes = make_shapes(int(self.count_combo.currentData()), seed=self.seed_spin.value())
        self.update_view()

    # ------------------------------------------------------------------ the view
    def jobs(self) -> list[ViewJob]:
        return [self.job]

    @property
    def busy(self) -> bool:
        return self.job.busy or self.debounce.isActive()

    def refresh(self) -> None:
        self.update_view()

    def update_view(self) -> None:
        """Recompute every view from the prompts, scenes and query now (in a worker)."""
        self.debounce.stop()
        message = self.input_message()
        if message:
            self.message.emit(message)
        clip = self.holder.pipe.clip
        cached = self.view.pool_embeddings if self.view is not None and self.view.clip is clip else None
        self.job.submit(clip_view, clip, self.prompts(), self.scenes.images, self.scene_pool.images,
                        self.query_edit.text(), cached)

    def _show(self, view: ClipView) -> None:
        self.view = view
        self.matrix.set_matrix(view.similarity, self.scenes.images)
        self.legend.setText("  ".join(f"<b>{j + 1}</b>&nbsp;{_escape(p)}" for j, p in enumerate(view.prompts)))
        self._show_map(view)
        self._show_nearest(view)

    def _show_map(self, view: ClipView) -> None:
        pool = self.scene_pool
        brushes = [pg.mkBrush(*COLORS[COLOR_NAMES[c]]) for c in pool.color]
        symbols = [SHAPE_SYMBOLS[SHAPES[s]] for s in pool.shape]
        self.image_dots.setData(pos=view.image_points, brush=brushes, symbol=symbols,
                                data=list(pool.captions))
        self.prompt_marks.setData(pos=view.prompt_points)
        self.query_mark.setData(pos=[] if view.query_point is None else [view.query_point])
        for label in self.map_labels:
            self.map.removeItem(label)
        self.map_labels = []
        marks = [(f"{j + 1} {p}", point, "#111") for j, (p, point) in enumerate(zip(view.prompts, view.prompt_points))]
        if view.query_point is not None:
            marks.append((view.query, view.query_point, "#c2006b"))
        middle = float(np.median(view.image_points[:, 0])) if len(view.image_points) else 0.0
        for text, point, color in marks:
            # labels right of the middle extend to the left, so that none runs off the plot
            label = pg.TextItem(_short(text), color=color, anchor=(1, 1) if point[0] > middle else (0, 1),
                                fill=pg.mkBrush(255, 255, 255, 200))
            label.setZValue(3)
            label.setPos(float(point[0]), float(point[1]))
            self.map.addItem(label)
            self.map_labels.append(label)
        item = self.map.getPlotItem()
        item.setLabel("bottom", f"PC 1 ({view.explained[0]:.0%} of the variance)")
        item.setLabel("left", f"PC 2 ({view.explained[1]:.0%})")

    def _show_nearest(self, view: ClipView) -> None:
        for label in self.nearest_labels:
            self.nearest_box.removeItem(label)
        self.nearest_labels = []
        if not view.query.strip():
            self.nearest_title.setText("Nearest images: type a prompt on the left")
            self.nearest_image.clear()
            return
        self.nearest_title.setText(f"The {len(view.nearest)} of {POOL_SIZE} fresh scenes nearest to "
                                   f"“{view.query.strip()}” (cosine similarity)")
        images = self.scene_pool.images[view.nearest]
        channels = [tile(images[..., c], columns=NEAREST, gap=THUMB_GAP, fill=255) for c in range(3)]
        self.nearest_image.setImage(np.ascontiguousarray(np.stack(channels, axis=-1)), autoLevels=False)
        side = images.shape[1]
        for k, score in enumerate(view.nearest_scores):
            label = pg.TextItem(f"{score:.3f}", color="#222", anchor=(0.5, 0))
            label.setPos(k * (side + THUMB_GAP) + side / 2, side + 1)
            self.nearest_box.addItem(label)
            self.nearest_labels.append(label)
        width = NEAREST * (side + THUMB_GAP) - THUMB_GAP
        self.nearest_box.setRange(QRectF(0, 0, width, side + 12), padding=0.0)

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("clip/prompts", self.prompts_edit.toPlainText())
        settings.setValue("clip/query", self.query_edit.text())
        settings.setValue("clip/seed", self.seed_spin.value())
        settings.setValue("clip/rows", int(self.count_combo.currentData()))

    def restore_settings(self, settings: QSettings) -> None:
        prompts = read_setting(settings, "clip/prompts", _text)
        if prompts is not None:
            self.prompts_edit.setPlainText(prompts)
        query = read_setting(settings, "clip/query", _text)
        if query is not None:
            self.query_edit.setText(query)
        rows = read_setting(settings, "clip/rows", int, lambda n: n in GRID_SIZES)
        if rows is not None:
            self.count_combo.setCurrentIndex(GRID_SIZES.index(rows))
        seed = read_setting(settings, "clip/seed", int, lambda s: 0 <= s <= MAX_SEED)
        if seed is not None:
            self.seed_spin.setValue(seed)
        self.update_view()

    def shutdown(self) -> None:
        self.debounce.stop()
        self.job.cancel()


def _text(value: Any) -> str:
    """A stored text; TypeError for anything else (a missing key reads as None, and str(None) is "None")."""
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
