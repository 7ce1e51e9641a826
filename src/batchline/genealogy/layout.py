"""A layered drawing of a trace: one column per level, material flowing left to right.

Plain Python over plain data (no Django), so that the page only writes SVG
elements at the positions computed here. Within a column, nodes are ordered by
the mean row of their neighbours in the column before (one barycentre sweep),
which keeps most edges from crossing without a layout library.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

BOX_W, BOX_H = 180, 48
GAP_X, GAP_Y, MARGIN = 70, 18, 12


@dataclass(frozen=True)
class Node:
    key: str
    column: int
    title: str
    subtitle: str
    href: str
    kind: str  # lot, batch, root


@dataclass(frozen=True)
class Box:
    node: Node
    x: int
    y: int
    w: int = BOX_W
    h: int = BOX_H


@dataclass(frozen=True)
class Line:
    x1: int
    y1: int
    x2: int
    y2: int
    label: str


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    boxes: list[Box]
    lines: list[Line]


def layered(nodes: Sequence[Node], edges: Sequence[tuple[str, str, str]]) -> Drawing:
    """Boxes and lines for ``nodes`` in their columns; ``edges`` are (from key, to key, label)."""
    columns: dict[int, list[Node]] = defaultdict(list)
    for node in nodes:
        columns[node.column].append(node)
    before: dict[str, list[str]] = defaultdict(list)
    for source, target, _label in edges:
        before[target].append(source)
    row: dict[str, float] = {}
    for column in sorted(columns):
        members = sorted(columns[column], key=lambda n: n.title)
        known = {n.key: [row[s] for s in before[n.key] if s in row] for n in members}
        members.sort(key=lambda n: (sum(known[n.key]) / len(known[n.key]) if known[n.key] else 0.0, n.title))
        for i, node in enumerate(members):
            row[node.key] = i
        columns[column] = members
    first = min(columns, default=0)
    boxes = {
        node.key: Box(
            node,
            MARGIN + (column - first) * (BOX_W + GAP_X),
            MARGIN + int(row[node.key]) * (BOX_H + GAP_Y),
        )
        for column, members in columns.items()
        for node in members
    }
    lines = [
        Line(
            boxes[s].x + BOX_W,
            boxes[s].y + BOX_H // 2,
            boxes[t].x,
            boxes[t].y + BOX_H // 2,
            label,
        )
        for s, t, label in edges
        if s in boxes and t in boxes
    ]
    width = MARGIN * 2 + (len(columns) * (BOX_W + GAP_X) - GAP_X if columns else 0)
    tallest = max((len(m) for m in columns.values()), default=0)
    height = MARGIN * 2 + max(0, tallest * (BOX_H + GAP_Y) - GAP_Y)
    return Drawing(width, height, list(boxes.values()), lines)
