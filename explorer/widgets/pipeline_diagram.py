"""Stable Diffusion's pipeline drawn left to right, with the step on screen highlighted:

    prompt → tokens → CLIP text encoder → U-Net ×N in latent space → VAE decoder → image

One painted widget of fixed height: a new step repaints it alone (no layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

# (background, border) of each part: text side blue, latent orange, decoder green (as StageDiagram).
TEXT_STYLE = ("#e3edfb", "#5b8bd6")
LATENT_STYLE = ("#ffe9cc", "#e08a1e")
DECODER_STYLE = ("#e2f4e4", "#4aa35a")
HIGHLIGHT = "#d62728"
ARROW_WIDTH = 18.0

# How a token is drawn: text colour, border colour, struck out.
TOKEN_STYLES = {
    "special": ("#777777", "#bbbbbb", False),  # <bos>, <eos>
    "known": ("#1a1a1a", "#5b8bd6", False),
    "unknown": ("#c62828", "#c62828", True),  # not in the vocabulary: ignored
    "dropped": ("#999999", "#bbbbbb", True),  # beyond the token limit: ignored
}


@dataclass(frozen=True)
class Token:
    text: str
    kind: str  # a key of TOKEN_STYLES


class PipelineDiagram(QWidget):
    """The pipeline as boxes and arrows; the U-Net box (or the decoder, at the end) is highlighted.

    Fill it with :meth:`set_prompt`, :meth:`set_run`, :meth:`set_step` and :meth:`set_image`.
    """

    HEIGHT = 118

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = ""
        self.tokens: list[Token] = []
        self.steps, self.sampler, self.guidance = 30, "ddim", 5.0
        self.embedding_shape: tuple[int, ...] = (16, 64)
        self.latent_shape: tuple[int, ...] = (4, 8, 8)
        self.index: int | None = None  # the step on screen
        self.t: int | None = None
        self.total = 30  # steps the run takes (fewer than ``steps`` in image to image)
        self.final = False
        self.picture: QImage | None = None
        self.setFixedHeight(self.HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(560)

    # ------------------------------------------------------------------ state
    def set_prompt(self, prompt: str, tokens: Sequence[Token]) -> None:
        self.prompt, self.tokens = prompt, list(tokens)
        self.setToolTip(self._tooltip())
        self.update()

    def set_run(self, steps: int, sampler: str, guidance: float, total: int | None = None,
                embedding_shape: Sequence[int] = (16, 64), latent_shape: Sequence[int] = (4, 8, 8)) -> None:
        self.steps, self.sampler, self.guidance = steps, sampler, guidance
        self.total = steps if total is None else total
        self.embedding_shape, self.latent_shape = tuple(embedding_shape), tuple(latent_shape)
        self.update()

    def set_step(self, index: int | None, t: int | None, total: int, final: bool) -> None:
        """The step on screen (``final``: the decoded result)."""
        self.index, self.t, self.total, self.final = index, t, total, final
        self.update()

    def set_image(self, image: np.ndarray | None) -> None:
        """uint8 (h, w, 3) at the right end (None: blank)."""
        if image is None:
            self.picture = None
        else:
            rgb = np.ascontiguousarray(image, dtype=np.uint8)
            height, width, _ = rgb.shape
            self.picture = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        self.update()

    def highlighted(self) -> str | None:
        """The stage drawn highlighted: "unet", "decoder" or None (nothing on screen)."""
        if self.final:
            return "decoder"
        return "unet" if self.index is not None else None

    def token_texts(self) -> list[tuple[str, str]]:
        return [(token.text, token.kind) for token in self.tokens]

    def _tooltip(self) -> str:
        unknown = [t.text for t in self.tokens if t.kind == "unknown"]
        tip = ("The prompt is split into words (tokens); the CLIP text encoder turns them into one vector per "
               "token; the U-Net attends to those vectors at every step (cross-attention) while it removes "
               "noise from the latent z_t; the VAE decoder turns the final latent into pixels.")
        if unknown:
            tip += f" Struck out: not in the model's vocabulary, ignored ({', '.join(unknown)})."
        return tip

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        margin = 3.0
        height = self.height() - 2 * margin
        side = min(height, 96.0, 0.1 * self.width())
        boxes_width = self.width() - 2 * margin - side - 5 * ARROW_WIDTH
        weights = (1.2, 1.6, 1.05, 1.45, 1.05)
        unit = boxes_width / sum(weights)
        x = margin
        rects = []
        for weight in weights:
            rects.append(QRectF(x, margin, unit * weight, height))
            x += unit * weight + ARROW_WIDTH
        image_rect = QRectF(x, margin + (height - side) / 2, side, side)
        stage = self.highlighted()

        self._box(painter, rects[0], "Prompt", TEXT_STYLE, False)
        self._prompt(painter, rects[0])
        used = sum(token.kind in ("known", "special") for token in self.tokens)
        self._box(painter, rects[1], f"Tokens ({used})", TEXT_STYLE, False)
        self._tokens(painter, rects[1])
        self._box(painter, rects[2], "Text encoder", TEXT_STYLE, False)
        self._lines(painter, rects[2], ["CLIP (frozen)", f"→ {'×'.join(map(str, self.embedding_shape))}",
                                         "a vector per token"])
        self._box(painter, rects[3], f"U-Net ×{self.total} ↻", LATENT_STYLE, stage == "unet")
        self._unet(painter, rects[3])
        self._box(painter, rects[4], "VAE decoder", DECODER_STYLE, stage == "decoder")
        latent = "×".join(map(str, self.latent_shape))
        self._lines(painter, rects[4], [f"z₀ {latent}", "→ 32×32×3", "pixels"])
        for i, rect in enumerate(rects):
            end = image_rect.left() if i == len(rects) - 1 else rects[i + 1].left()
            label = "cross-attn" if i == 2 else ""
            self._arrow(painter, rect.right(), end, rect.center().y(), label)
        self._picture(painter, image_rect, stage == "decoder")
        painter.end()

    def _fonts(self) -> tuple[QFont, QFont]:
        title = QFont(self.font())
        title.setPixelSize(11)
        title.setBold(True)
        body = QFont(self.font())
        body.setPixelSize(10)
        return title, body

    def _box(self, painter: QPainter, rect: QRectF, title: str, style: tuple[str, str], lit: bool) -> None:
        background, border = style
        pen = QPen(QColor(HIGHLIGHT if lit else border), 3.0 if lit else 1.5)
        painter.setPen(pen)
        painter.setBrush(QColor(background))
        painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 5, 5)
        title_font, _ = self._fonts()
        painter.setFont(title_font)
        painter.setPen(QColor("#1a1a1a"))
        metrics = QFontMetricsF(title_font)
        text = metrics.elidedText(title, Qt.TextElideMode.ElideRight, rect.width() - 8)
        painter.drawText(QRectF(rect.left() + 4, rect.top() + 3, rect.width() - 8, 16),
                         Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)

    def _content(self, rect: QRectF) -> QRectF:
        return QRectF(rect.left() + 5, rect.top() + 20, rect.width() - 10, rect.height() - 24)

    def _prompt(self, painter: QPainter, rect: QRectF) -> None:
        _, body = self._fonts()
        painter.setFont(body)
        area = self._content(rect)
        if self.prompt.strip():
            painter.setPen(QColor("#1a1a1a"))
            text = f"“{self.prompt.strip()}”"
        else:
            painter.setPen(QColor("#777777"))
            text = "(empty: unconditional)"
        painter.drawText(area, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextWordWrap,
                         text)

    def _tokens(self, painter: QPainter, rect: QRectF) -> None:
        _, body = self._fonts()
        painter.setFont(body)
        metrics = QFontMetricsF(body)
        area = self._content(rect)
        chip_height = metrics.height() + 3
        x, y = area.left(), area.top()
        for i, token in enumerate(self.tokens):
            width = metrics.horizontalAdvance(token.text) + 8
            if x + width > area.right() and x > area.left():
                x, y = area.left(), y + chip_height + 3
            if y + chip_height > area.bottom():
                painter.setPen(QColor("#555555"))
                painter.drawText(QPointF(area.right() - metrics.horizontalAdvance("…"), area.bottom()), "…")
                return
            text_colour, border, struck = TOKEN_STYLES[token.kind]
            chip = QRectF(x, y, min(width, area.width()), chip_height)
            pen = QPen(QColor(border), 1.0)
            if token.kind == "unknown":
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.setBrush(QColor("#ffffff"))
            painter.drawRoundedRect(chip, 3, 3)
            font = QFont(body)
            font.setStrikeOut(struck)
            font.setItalic(token.kind == "special")
            painter.setFont(font)
            painter.setPen(QColor(text_colour))
            painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, token.text)
            x += width + 3

    def _lines(self, painter: QPainter, rect: QRectF, lines: Sequence[str]) -> None:
        _, body = self._fonts()
        painter.setFont(body)
        painter.setPen(QColor("#333333"))
        painter.drawText(self._content(rect), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter
                         | Qt.TextFlag.TextWordWrap, "\n".join(lines))

    def _unet(self, painter: QPainter, rect: QRectF) -> None:
        _, body = self._fonts()
        area = self._content(rect)
        latent = "×".join(map(str, self.latent_shape))
        if self.final:
            where = "done: z₀"
        elif self.index is None:
            where = "waiting…"
        else:
            where = f"step {self.index + 1}/{self.total}, t = {self.t}"
        lines = [f"latent z_t {latent}", f"{self.sampler.upper()}, guidance {self.guidance:g}", where]
        painter.setFont(body)
        painter.setPen(QColor("#333333"))
        text_area = QRectF(area.left(), area.top(), area.width(), area.height() - 12)
        painter.drawText(text_area, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter
                         | Qt.TextFlag.TextWordWrap, "\n".join(lines))
        # The loop's steps as ticks (a bar when there are too many), the one on screen in red.
        bar = QRectF(area.left(), area.bottom() - 8, area.width(), 8)
        total = max(1, self.total)
        done = total if self.final else (-1 if self.index is None else self.index)
        painter.setPen(Qt.PenStyle.NoPen)
        if total * 3 <= bar.width():
            pitch = bar.width() / total
            for i in range(total):
                colour = HIGHLIGHT if i == done and not self.final else ("#e08a1e" if i < done or self.final else "#f4d3a6")
                painter.setBrush(QColor(colour))
                painter.drawRect(QRectF(bar.left() + i * pitch, bar.top(), max(1.0, pitch - 1.0), bar.height()))
        else:
            painter.setBrush(QColor("#f4d3a6"))
            painter.drawRect(bar)
            filled = bar.width() * (total if self.final else max(0, done) + 1) / total
            painter.setBrush(QColor("#e08a1e"))
            painter.drawRect(QRectF(bar.left(), bar.top(), filled, bar.height()))
            if not self.final and done >= 0:
                painter.setBrush(QColor(HIGHLIGHT))
                painter.drawRect(QRectF(bar.left() + filled - 2, bar.top() - 1, 3, bar.height() + 2))

    def _arrow(self, painter: QPainter, start: float, end: float, y: float, label: str) -> None:
        colour = QColor("#666666")
        painter.setPen(QPen(colour, 1.5))
        painter.drawLine(QPointF(start + 1, y), QPointF(end - 5, y))
        painter.setBrush(colour)
        painter.drawPolygon(QPolygonF([QPointF(end - 1, y), QPointF(end - 7, y - 4), QPointF(end - 7, y + 4)]))
        if label:
            _, body = self._fonts()
            small = QFont(body)
            small.setPixelSize(9)
            painter.setFont(small)
            painter.save()
            painter.translate(start + ARROW_WIDTH / 2 + 3, y - 6)
            painter.rotate(-90)
            painter.drawText(QPointF(0, 0), label)
            painter.restore()

    def _picture(self, painter: QPainter, rect: QRectF, lit: bool) -> None:
        painter.setPen(QPen(QColor(HIGHLIGHT if lit else "#8a94a6"), 3.0 if lit else 1.0))
        painter.setBrush(QColor("#000000"))
        painter.drawRect(rect)
        if self.picture is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(rect.adjusted(2, 2, -2, -2), self.picture)


def prompt_tokens(prompt: str, vocabulary: Sequence[str], max_tokens: int) -> list[Token]:
    """Every word of ``prompt`` in order, as the tokenizer treats it: known, unknown (left out),
    dropped (beyond the limit), between <bos> and <eos>. Mirrors ``models.clip.Tokenizer``."""
    import re

    known = set(vocabulary)
    tokens = [Token("<bos>", "special")]
    kept = 0
    for word in re.findall(r"[a-z]+", prompt.lower()):
        if word not in known:
            tokens.append(Token(word, "unknown"))
        elif kept < max_tokens - 2:
            tokens.append(Token(word, "known"))
            kept += 1
        else:
            tokens.append(Token(word, "dropped"))
    tokens.append(Token("<eos>", "special"))
    return tokens
