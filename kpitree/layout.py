"""Where each box of the tree goes: one band per level, the north star top-left, no overlaps.

A tidy, left-aligned layout: leaves take consecutive slots in depth-first order and a parent
sits level with its first child, so the root lands top-left (seed 002: the most critical number
top-left) and every subtree occupies a contiguous band. Levels run top-down while every leaf
fits side by side in the width available; a wider tree turns to levels running left to right
(a driver tree, as consultants draw them), which grows downwards — the direction a web page
scrolls — so a 60-node tree stays readable and no two boxes ever overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

from .tree import Tree, formula_names

BOX_W = 180.0
BOX_H = 62.0
GAP_ACROSS = 14.0  # between neighbouring boxes of one level
GAP_LEVELS = 40.0  # between levels
MARGIN = 6.0


@dataclass(frozen=True)
class Box:
    id: str
    x: float  # centre
    y: float  # centre
    band: int  # index of the level band
    w: float = BOX_W
    h: float = BOX_H

    @property
    def x0(self) -> float:
        return self.x - self.w / 2

    @property
    def x1(self) -> float:
        return self.x + self.w / 2

    @property
    def y0(self) -> float:
        return self.y - self.h / 2

    @property
    def y1(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True)
class Segment:
    """One straight piece of an elbow edge between a parent and a child."""

    parent: str
    child: str
    x: float
    y: float
    x2: float
    y2: float
    link: str  # formula | influence


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]
    segments: list[Segment]
    width: float
    height: float
    orientation: str  # down | right


def layout_tree(tree: Tree, max_width: float = 1000.0, orientation: str | None = None) -> Layout:
    """Box positions and edge pieces; `orientation` None picks `down` when the leaves fit."""
    order = tree.walk()
    bands = {lvl: i for i, lvl in enumerate(sorted({n.level for n in order}))}
    slot: dict[str, int] = {}
    leaves = 0

    def place(node_id: str) -> int:
        nonlocal leaves
        node = tree.node(node_id)
        if node.children:
            slot[node_id] = [place(c) for c in node.children][0]
        else:
            slot[node_id] = leaves
            leaves += 1
        return slot[node_id]

    place(tree.root.id)
    across_down = max(leaves, 1) * (BOX_W + GAP_ACROSS) - GAP_ACROSS + 2 * MARGIN
    if orientation is None:
        orientation = "down" if across_down <= max_width else "right"
    boxes: dict[str, Box] = {}
    for n in order:
        along = MARGIN + bands[n.level] * ((BOX_H if orientation == "down" else BOX_W) + GAP_LEVELS)
        if orientation == "down":
            x = MARGIN + slot[n.id] * (BOX_W + GAP_ACROSS) + BOX_W / 2
            boxes[n.id] = Box(n.id, x, along + BOX_H / 2, bands[n.level])
        else:
            y = MARGIN + slot[n.id] * (BOX_H + GAP_ACROSS) + BOX_H / 2
            boxes[n.id] = Box(n.id, along + BOX_W / 2, y, bands[n.level])
    width = max(b.x1 for b in boxes.values()) + MARGIN
    height = max(b.y1 for b in boxes.values()) + MARGIN

    segments: list[Segment] = []
    for n in order:
        if not n.children:
            continue
        p = boxes[n.id]
        exact = formula_names(n.formula) if n.formula else set()
        kids = [(c, boxes[c]) for c in n.children]
        trunk = "formula" if exact else "influence"
        if orientation == "down":
            mid = p.y1 + (min(k.y0 for _, k in kids) - p.y1) / 2
            segments.append(Segment(n.id, n.id, p.x, p.y1, p.x, mid, trunk))
            for c, k in kids:
                link = "formula" if c in exact else "influence"
                # Each child gets its own pieces, so a dashed link never hides under a solid one.
                segments.append(Segment(n.id, c, p.x, mid, k.x, mid, link))
                segments.append(Segment(n.id, c, k.x, mid, k.x, k.y0, link))
        else:
            mid = p.x1 + (min(k.x0 for _, k in kids) - p.x1) / 2
            segments.append(Segment(n.id, n.id, p.x1, p.y, mid, p.y, trunk))
            for c, k in kids:
                link = "formula" if c in exact else "influence"
                segments.append(Segment(n.id, c, mid, p.y, mid, k.y, link))
                segments.append(Segment(n.id, c, mid, k.y, k.x0, k.y, link))
    return Layout(boxes, segments, width, height, orientation)
