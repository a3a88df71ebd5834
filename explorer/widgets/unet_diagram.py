"""A U-Net drawn as a U: blocks with their shapes, skip connections, and the embedding that feeds them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeyEvent, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from explorer.widgets.stage_diagram import shape_text

# (background, border) per part of the U.
STYLES = {
    "io": ("#ffffff", "#8a94a6"),
    "down": ("#e3edfb", "#5b8bd6"),
    "middle": ("#ffe9cc", "#e08a1e"),
    "up": ("#e2f4e4", "#4aa35a"),
    "embedding": ("#f1e6fa", "#9a5bc4"),
}
SKIP_COLOUR = "#7a7f8c"
SELECTED_COLOUR = "#d2392b"


@dataclass(frozen=True)
class Block:
    """One box of the drawing: a ``UNet.blocks()`` entry and where it sits."""

    name: str
    kind: str
    shape_in: tuple[int, ...]
    shape_out: tuple[int, ...]
    skip_to: str | None
    part: str  # io, down, middle or up
    column: int  # 0: down path (left), 1: middle, 2: up path (right)
    row: int  # 0 at the top (full resolution), deepest at the bottom

    @property
    def is_res(self) -> bool:
        """Whether the timestep (+ class) embedding joins this block."""
        return "res" in self.kind


def layout_blocks(blocks: Sequence[dict]) -> list[Block]:
    """Place ``UNet.blocks()`` entries on the U: the blocks before the middle go down the
    left, those after it come up the right, each at the row of the block it skips to/from."""
    names = [block["name"] for block in blocks]
    middle = next((i for i, block in enumerate(blocks) if block["name"] == "middle"), len(blocks) // 2)
    placed = []
    for i, block in enumerate(blocks):
        if i < middle:
            column, row = 0, i
        elif i == middle:
            column, row = 1, middle
        else:
            column, row = 2, len(names) - 1 - i
        part = "io" if i in (0, len(blocks) - 1) else "down" if i < middle else "middle" if i == middle else "up"
        placed.append(Block(block["name"], block["kind"], tuple(block["in"]), tuple(block["out"]),
                            block.get("skip_to"), part, column, row))
    return placed


class UNetDiagram(QWidget):
    """The U-Net's blocks as a U, with skip arrows across and the embedding feeding every res block.

    Click a block (or move with the arrow keys, Tab, Home and End) to select it.

    Signals
    -------
    selected(str)
        The name of the block just selected.
    """

    selected = Signal(str)

    MARGIN = 10
    SIDE = 64  # room left of the down path (x_t) and right of the up path (ε̂)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.blocks: list[Block] = []
        self.conditional = False
        self.embedding_dim = 0
        self.current: str | None = None
        self.hovered: str | None = None
        self._rects: dict[str, QRectF] = {}
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(560, 280)
        self.setToolTip("")
        self.setAccessibleName("U-Net architecture")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(880, 340)

    # ------------------------------------------------------------------ content
    def set_blocks(self, blocks: Sequence[dict], conditional: bool = False, embedding_dim: int = 0) -> None:
        """Draw ``UNet.blocks()`` entries; keep the selection when a block of that name is still there."""
        self.blocks = layout_blocks(blocks)
        self.conditional, self.embedding_dim = conditional, embedding_dim
        names = [block.name for block in self.blocks]
        if self.current not in names:
            self.current = names[0] if names else None
        self.hovered = None
        self._layout()
        self.update()

    def select(self, name: str) -> None:
        """Select the block called ``name`` (emits ``selected`` when it changes)."""
        if name == self.current or name not in self._rects:
            return
        self.current = name
        self.update()
        self.selected.emit(name)

    def block_rect(self, name: str) -> QRectF:
        """Where the block called ``name`` is drawn, in widget coordinates."""
        return QRectF(self._rects[name])

    def block_texts(self) -> dict[str, str]:
        """Each block's label as drawn (name, kind, output shape), for tests and screen readers."""
        return {block.name: self._label(block) for block in self.blocks}

    def skip_arrows(self) -> list[tuple[str, str]]:
        """The skip connections drawn: (from block, to block)."""
        names = {block.name for block in self.blocks}
        return [(block.name, block.skip_to) for block in self.blocks if block.skip_to in names]

    def embedding_targets(self) -> list[str]:
        """The blocks the embedding line feeds (every res block)."""
        return [block.name for block in self.blocks if block.is_res]

    def block_at(self, point: QPointF) -> str | None:
        return next((name for name, rect in self._rects.items() if rect.contains(point)), None)

    @staticmethod
    def _label(block: Block) -> str:
        return f"{block.name}\n{block.kind}\n{shape_text(block.shape_out)}"

    # ------------------------------------------------------------------ geometry
    def _layout(self) -> None:
        """Box rectangles for the current size: three columns, one row per level."""
        self._rects = {}
        if not self.blocks:
            return
        rows = max(block.row for block in self.blocks) + 1
        top = self.MARGIN
        bottom = self.height() - self.MARGIN - 26  # the embedding line runs under the middle block
        left, right = self.MARGIN + self.SIDE, self.width() - self.MARGIN - self.SIDE
        pitch = (bottom - top) / rows
        box_h = min(58.0, pitch - 12)
        box_w = min(190.0, (right - left) * 0.27)
        centres = (left + box_w / 2 + 8, (left + right) / 2, right - box_w / 2 - 8)
        for block in self.blocks:
            width = box_w * (1.25 if block.part == "middle" else 1.0)
            x, y = centres[block.column], top + pitch * (block.row + 0.5)
            self._rects[block.name] = QRectF(x - width / 2, y - box_h / 2, width, box_h)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._layout()

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#ffffff"))
        if not self.blocks:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No model")
            return
        font = QFont(self.font())
        font.setPixelSize(11)
        painter.setFont(font)
        self._paint_embedding(painter)
        self._paint_flow(painter)
        self._paint_skips(painter)
        for block in self.blocks:
            self._paint_block(painter, block)
        painter.end()

    def _paint_block(self, painter: QPainter, block: Block) -> None:
        rect = self._rects[block.name]
        background, border = STYLES[block.part]
        chosen = block.name == self.current
        fill = QColor(background)
        if block.name == self.hovered and not chosen:
            fill = fill.darker(108)
        pen = QPen(QColor(SELECTED_COLOUR if chosen else border), 3.0 if chosen else 1.5)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 6, 6)
        if chosen and self.hasFocus():
            painter.setPen(QPen(QColor(SELECTED_COLOUR), 1, Qt.PenStyle.DotLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(-4, -4, 4, 4), 8, 8)
        inner = rect.adjusted(4, 3, -4, -3)
        metrics = painter.fontMetrics()
        line = metrics.lineSpacing()
        painter.setPen(QColor("#1d2230"))
        bold = QFont(painter.font())
        bold.setBold(True)
        plain = painter.font()
        painter.setFont(bold)
        painter.drawText(QRectF(inner.x(), inner.y(), inner.width(), line), Qt.AlignmentFlag.AlignCenter, block.name)
        painter.setFont(plain)
        if inner.height() >= 3 * line:  # a short box (a small window) keeps the name and shape; the kind is in the tooltip
            kind = metrics.elidedText(block.kind, Qt.TextElideMode.ElideRight, int(inner.width()))
            painter.setPen(QColor("#4a5060"))
            painter.drawText(QRectF(inner.x(), inner.center().y() - line / 2, inner.width(), line),
                             Qt.AlignmentFlag.AlignCenter, kind)
        painter.setPen(QColor("#1d2230"))
        painter.drawText(QRectF(inner.x(), inner.bottom() - line, inner.width(), line), Qt.AlignmentFlag.AlignCenter,
                         shape_text(block.shape_out))

    def _paint_flow(self, painter: QPainter) -> None:
        """The main path: x_t → down the left → middle → up the right → ε̂, with resolution changes marked."""
        pen = QPen(QColor("#3b4252"), 1.4)
        painter.setPen(pen)
        order = [self._rects[block.name] for block in self.blocks]
        for i, (a, b) in enumerate(zip(order, order[1:])):
            first, second = self.blocks[i], self.blocks[i + 1]
            if first.column == second.column:  # straight down (left) or up (right)
                x = a.center().x()
                start, end = (QPointF(x, a.bottom()), QPointF(x, b.top())) if second.row > first.row else \
                    (QPointF(x, a.top()), QPointF(x, b.bottom()))
            elif second.column == 1:  # down the left to the middle
                start, end = QPointF(a.center().x(), a.bottom()), QPointF(b.left(), b.center().y())
                corner = QPointF(start.x(), end.y())
                painter.drawLine(QLineF(start, corner))
                start = corner
            else:  # from the middle up the right
                start, end = QPointF(a.right(), a.center().y()), QPointF(b.center().x(), b.bottom())
                corner = QPointF(end.x(), start.y())
                painter.drawLine(QLineF(start, corner))
                start = corner
            self._arrow(painter, start, end)
            size_a, size_b = first.shape_out[1:], second.shape_in[1:]
            # Where the resolution changes on the way, say by how much (the first up block's input is
            # already concatenated at the lower size, so compare sizes of the outputs).
            size_b = second.shape_out[1:] if first.column == second.column else size_b
            if size_a and size_b and size_a != size_b:
                note = "↓ ½" if size_b[0] < size_a[0] else "↑ ×2"
                mid = QPointF((start.x() + end.x()) / 2, (start.y() + end.y()) / 2)
                painter.setPen(QColor("#3b4252"))
                painter.drawText(QRectF(mid.x() + 5, mid.y() - 8, 40, 16),
                                 Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, note)
                painter.setPen(pen)
        first, last = order[0], order[-1]
        in_shape, out_shape = shape_text(self.blocks[0].shape_in), shape_text(self.blocks[-1].shape_out)
        reach = 22
        self._arrow(painter, QPointF(first.left() - reach, first.center().y()), QPointF(first.left(), first.center().y()))
        self._arrow(painter, QPointF(last.right(), last.center().y()), QPointF(last.right() + reach, last.center().y()))
        painter.setPen(QColor("#1d2230"))
        painter.drawText(QRectF(0, first.center().y() - 18, first.left() - reach - 1, 36),
                         Qt.AlignmentFlag.AlignCenter, f"x_t\n{in_shape}")
        painter.drawText(QRectF(last.right() + reach + 1, last.center().y() - 18, self.width() - last.right() - reach - 1, 36),
                         Qt.AlignmentFlag.AlignCenter, f"ε̂\n{out_shape}")

    def _paint_skips(self, painter: QPainter) -> None:
        """Skip connections: dashed arrows straight across the U, from a down block to its up partner."""
        pen = QPen(QColor(SKIP_COLOUR), 1.3, Qt.PenStyle.DashLine)
        arrows = self.skip_arrows()
        shapes = [shape_text(self._block(source).shape_out) for source, _ in arrows]
        room = min((self._rects[t].left() - self._rects[s].right() - 12 for s, t in arrows), default=0)
        # One wording for every skip: the longest that fits them all.
        form = next((f for f in ("skip: {}, concatenated", "skip {}", "{}")
                     if all(painter.fontMetrics().horizontalAdvance(f.format(shape)) <= room for shape in shapes)), "")
        for source, target in arrows:
            a, b = self._rects[source], self._rects[target]
            y = a.center().y() + a.height() * 0.22
            start, end = QPointF(a.right(), y), QPointF(b.left(), y)
            painter.setPen(pen)
            self._arrow(painter, start, end, colour=SKIP_COLOUR)
            painter.setPen(QColor(SKIP_COLOUR))
            label = form.format(shape_text(self._block(source).shape_out))
            painter.drawText(QRectF(start.x(), y - 16, end.x() - start.x(), 14), Qt.AlignmentFlag.AlignCenter, label)

    def _paint_embedding(self, painter: QPainter) -> None:
        """The timestep (+ class) embedding: a box under the down path, and a line to every res block."""
        fed = [block for block in self.blocks if block.is_res]
        targets = [self._rects[block.name] for block in fed]
        if not targets:
            return
        background, border = STYLES["embedding"]
        left_x = min(rect.left() for rect in targets) - 12
        right_x = max(rect.right() for rect in targets) + 12
        bus_y = self.height() - self.MARGIN - 8
        label = "t → embedding" + (" + class c" if self.conditional else "")
        if self.embedding_dim:
            label += f" ({self.embedding_dim})"
        pen = QPen(QColor(border), 1.2)
        painter.setPen(pen)
        painter.drawLine(QLineF(left_x, bus_y, right_x, bus_y))
        for block, rect in zip(fed, targets):
            if block.column == 0:
                painter.drawLine(QLineF(left_x, bus_y, left_x, rect.center().y()))
                self._arrow(painter, QPointF(left_x, rect.center().y()), QPointF(rect.left(), rect.center().y()),
                            colour=border, head=6)
            elif block.column == 2:
                painter.drawLine(QLineF(right_x, bus_y, right_x, rect.center().y()))
                self._arrow(painter, QPointF(right_x, rect.center().y()), QPointF(rect.right(), rect.center().y()),
                            colour=border, head=6)
            else:
                self._arrow(painter, QPointF(rect.center().x(), bus_y), QPointF(rect.center().x(), rect.bottom()),
                            colour=border, head=6)
        # The box sits on the line, in the free corner under the down path.
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(label) + 16
        box = QRectF(left_x + 18, bus_y - 20, width, 20)
        painter.setBrush(QColor(background))
        painter.drawRoundedRect(box, 5, 5)
        painter.setPen(QColor("#3d2452"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        painter.setPen(QColor(border))
        note = "feeds every res block"
        painter.drawText(QRectF(right_x - 18 - metrics.horizontalAdvance(note) - 4, bus_y - 18,
                                metrics.horizontalAdvance(note) + 4, 16), Qt.AlignmentFlag.AlignCenter, note)

    @staticmethod
    def _arrow(painter: QPainter, start: QPointF, end: QPointF, colour: str | None = None, head: float = 7.0) -> None:
        """A line from ``start`` to ``end`` with a filled head at ``end``."""
        painter.drawLine(QLineF(start, end))
        line = QLineF(end, start)
        if line.length() < 1:
            return
        unit = line.unitVector()
        direction = QPointF(unit.dx(), unit.dy())
        normal = QPointF(-direction.y(), direction.x())
        back = end + direction * head
        points = QPolygonF([end, back + normal * (head * 0.45), back - normal * (head * 0.45)])
        path = QPainterPath()
        path.addPolygon(points)
        painter.fillPath(path, QColor(colour) if colour else painter.pen().color())

    def _block(self, name: str) -> Block:
        return next(block for block in self.blocks if block.name == name)

    # ------------------------------------------------------------------ mouse and keyboard
    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        name = self.block_at(event.position())
        if name != self.hovered:
            self.hovered = name
            self.setCursor(Qt.CursorShape.PointingHandCursor if name else Qt.CursorShape.ArrowCursor)
            self.update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self.hovered is not None:
            self.hovered = None
            self.update()
        super().leaveEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        name = self.block_at(event.position())
        if name is not None and event.button() == Qt.MouseButton.LeftButton:
            self.setFocus(Qt.FocusReason.MouseFocusReason)
            self.select(name)
        super().mousePressEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            name = self.block_at(event.pos())
            if name is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), self._tooltip(self._block(name)), self)
            return True
        # Tab walks the blocks in the order the data flows; past either end it leaves the diagram.
        if event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
            step = -1 if event.key() == Qt.Key.Key_Backtab or event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
            if self._step(step):
                return True
        return super().event(event)

    def _tooltip(self, block: Block) -> str:
        lines = [f"<b>{block.name}</b>: {block.kind}",
                 f"in {shape_text(block.shape_in)} → out {shape_text(block.shape_out)} (channels × height × width)"]
        if block.skip_to:
            lines.append(f"its output also skips across to <i>{block.skip_to}</i>")
        if block.is_res:
            lines.append("the timestep" + (" and class" if self.conditional else "") + " embedding joins it")
        lines.append("Click to see its feature maps")
        return "<br>".join(lines)

    def _step(self, step: int) -> bool:
        """Select the next (+1) or previous (−1) block in data-flow order; False at either end."""
        names = [block.name for block in self.blocks]
        if self.current not in names:
            return False
        index = names.index(self.current) + step
        if not 0 <= index < len(names):
            return False
        self.select(names[index])
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if not self.blocks or self.current is None:
            super().keyPressEvent(event)
            return
        key = event.key()
        block = self._block(self.current)
        names = [b.name for b in self.blocks]
        index = names.index(block.name)
        target: str | None = None
        if key == Qt.Key.Key_Home:
            target = names[0]
        elif key == Qt.Key.Key_End:
            target = names[-1]
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            # Up and down follow the U on screen: down the left path is forward, down the right one is back.
            deeper = key == Qt.Key.Key_Down
            forward = deeper if block.column == 0 else not deeper if block.column == 2 else False
            if block.column == 1:  # from the middle, up goes back to where it came from
                target = names[index - 1] if not deeper else None
            else:
                step = 1 if forward else -1
                if 0 <= index + step < len(names):
                    target = names[index + step]
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            # Across the U: to the block at the same level on the other side (its skip partner).
            column = 0 if key == Qt.Key.Key_Left else 2
            same_row = [b for b in self.blocks if b.column == column and b.row == block.row]
            if block.column == 1:
                same_row = [self.blocks[index - 1 if column == 0 else index + 1]]
            target = same_row[0].name if same_row else None
        else:
            super().keyPressEvent(event)
            return
        if target is not None:
            self.select(target)
        event.accept()
