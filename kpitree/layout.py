"""Where each box of the tree goes, sized to the width it is given, and what each box's text says.

A tidy, left-aligned layout: leaves take consecutive slots in depth-first order and a parent
sits level with its first child, so the root lands top-left (seed 002: the most critical number
top-left) and every subtree occupies a contiguous band. The tree is drawn beside the selected
node's panel, so it gets a column, not the page: the boxes shrink to fit it, in the first of
three shapes that keeps them at least `MIN_BOX_W` wide —

- `down`: levels top-down, every leaf side by side (small trees);
- `right`: levels left to right (a driver tree, as consultants draw them), leaves stacked;
- `indent`: an outline, one box per row indented by level (deep trees in a narrow column).

Labels wrap to two lines before they are cut (a cut label ends in "…"; the full one is in the
tooltip). Widths are estimated from font metrics (`text_width`, Helvetica's, which are wider
than the app's Source Sans, so an estimate that fits is a drawing that fits); the chart draws the
lines this module chose, and a test measures the drawn text in a browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .tree import Tree, formula_names

MIN_BOX_W = 150.0  # below this a value line ("$158.37M / $171.00M") no longer fits a centred box
MAX_BOX_W = 200.0
GAP_ACROSS = 10.0  # between neighbouring boxes of one level
GAP_LEVELS = 28.0  # between levels (room for the elbow of a link)
GAP_ROWS = 6.0  # between rows of the outline
INDENT = 22.0  # per level in the outline
MARGIN = 6.0
PAD = 7.0  # inside a box, left and right
LABEL_SIZE = 12.0  # bold
VALUE_SIZE = 11.5
OWNER_SIZE = 10.0
LINE = {LABEL_SIZE: 14.0, VALUE_SIZE: 14.0, OWNER_SIZE: 12.0}
VALUE_W = 128.0  # the outline's right-hand column: value and change
ELLIPSIS = "…"

# Helvetica advance widths (1/1000 em), regular and bold; other characters count as "m"-ish wide.
_NARROW = {"i": 222, "j": 222, "l": 222, "f": 278, "t": 278, "r": 333, " ": 278, ".": 278, ",": 278, ":": 278,
           ";": 278, "'": 191, "|": 260, "!": 278, "I": 278, "(": 333, ")": 333, "-": 333, "/": 278, "[": 278,
           "]": 278}
_NARROW_BOLD = {"i": 278, "j": 278, "l": 278, "f": 333, "t": 333, "r": 389, " ": 278, ".": 278, ",": 278,
                ":": 333, ";": 333, "'": 238, "|": 280, "!": 333, "I": 278, "(": 333, ")": 333, "-": 333,
                "/": 278, "[": 333, "]": 333}
_WIDE = {"m": 833, "w": 722, "M": 833, "W": 944, "%": 889, "@": 1015, "→": 1000, "—": 1000, "…": 1000, "×": 584,
         "&": 667}
_WIDE_BOLD = {"m": 889, "w": 778, "M": 833, "W": 944, "%": 889, "@": 975, "→": 1000, "—": 1000, "…": 1000,
              "×": 584, "&": 722}


def char_width(ch: str, bold: bool = False) -> float:
    """One character's advance in em (Helvetica's metrics, a safe over-estimate for Source Sans)."""
    narrow, wide = (_NARROW_BOLD, _WIDE_BOLD) if bold else (_NARROW, _WIDE)
    if ch in narrow:
        return narrow[ch] / 1000
    if ch in wide:
        return wide[ch] / 1000
    if ch.isupper():
        return (0.722 if bold else 0.667)
    if ch.isdigit() or ch in "$+±−~#*?":
        return 0.556 if ch != "−" else 0.584
    return 0.611 if bold else 0.556


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Estimated width in px of `text` at font `size` (px)."""
    return sum(char_width(ch, bold) for ch in text) * size


def cut(text: str, width: float, size: float, bold: bool = False) -> str:
    """`text`, ended with "…" where it would not fit in `width` px.

    One pass over the characters (the running sum of their widths is the width of each prefix, added
    in the same order as `text_width`, so the same prefix is chosen as by measuring each): a cut
    costs time linear in the label's length, not quadratic."""
    if text_width(text, size, bold) <= width:
        return text
    ellipsis = char_width(ELLIPSIS, bold)
    total, kept, keep = 0.0, 0.0, 0  # width of text[:i]; of text[:i].rstrip(); longest prefix that fits
    for i, ch in enumerate(text, 1):
        total += char_width(ch, bold)
        if not ch.isspace():
            kept = total
        if (kept + ellipsis) * size > width:
            break  # prefixes only grow: none further fits
        keep = i
    return text[:keep].rstrip() + ELLIPSIS


def wrap(text: str, width: float, size: float = LABEL_SIZE, bold: bool = True, lines: int = 2) -> tuple[str, ...]:
    """Greedy word wrap into at most `lines` lines of `width` px; the last line is cut with "…"
    when the text is longer still (a word longer than a line is cut too).

    Each line's width is kept as a running sum while words join it, so wrapping is linear in the
    label's length (measuring each longer candidate line anew took 68 s for a 9,000-character label)."""
    words = text.split()
    space = char_width(" ", bold)
    out: list[str] = []
    i = 0
    while i < len(words) and len(out) < lines:
        line = [words[i]]
        used = sum(char_width(ch, bold) for ch in words[i])
        i += 1
        while i < len(words):
            grown = used + space
            for ch in words[i]:
                grown += char_width(ch, bold)
            if grown * size > width:
                break
            line.append(words[i])
            used = grown
            i += 1
        out.append(" ".join(line))
    if i < len(words):
        out[-1] = f"{out[-1]} {' '.join(words[i:])}"
    out = [cut(line, width, size, bold) for line in out]
    return tuple(out) or ("",)


@dataclass(frozen=True)
class Box:
    id: str
    x: float  # centre
    y: float  # centre
    band: int  # index of the level band
    w: float
    h: float
    lines: tuple[str, ...] = ()  # the label as drawn, one entry per line
    owner: str = ""  # the owner as drawn (cut to the box)
    full: bool = True  # the label is drawn whole (not cut)

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
class TextSlots:
    """Where a box's texts go, relative to the box (px from its left edge and top), and how wide
    each may be: the chart places its text marks from these."""

    align: str  # left | center
    label_x: float
    label_y: float  # first line's baseline middle
    value_x: float
    value_y: float
    value_align: str
    value_w: float
    owner_x: float
    owner_y: float
    owner_w: float
    label_w: float


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]
    segments: list[Segment]
    width: float
    height: float
    orientation: str  # down | right | indent
    text: TextSlots = field(default=None)  # type: ignore[assignment]
    box_w: float = 0.0
    box_h: float = 0.0


def _slots(orientation: str, w: float, label_lines: int) -> tuple[TextSlots, float]:
    """Text positions inside a box of width `w`, and the box height they need."""
    label_h = LINE[LABEL_SIZE] * label_lines
    if orientation == "indent":
        label_w = w - 2 * PAD - VALUE_W - 6
        h = 5 + label_h + LINE[OWNER_SIZE] + 5
        return TextSlots("left", PAD, 5 + LINE[LABEL_SIZE] / 2, w - PAD, 5 + LINE[LABEL_SIZE] / 2, "right",
                         VALUE_W, PAD, h - 5 - LINE[OWNER_SIZE] / 2, w - 2 * PAD, label_w), h
    inner = w - 2 * PAD
    h = 5 + label_h + LINE[VALUE_SIZE] + LINE[OWNER_SIZE] + 5
    return TextSlots("center", w / 2, 5 + LINE[LABEL_SIZE] / 2, w / 2, 5 + label_h + LINE[VALUE_SIZE] / 2, "center",
                     inner, w / 2, h - 5 - LINE[OWNER_SIZE] / 2, inner, inner), h


def _labels(tree: Tree, width: float) -> dict[str, tuple[str, ...]]:
    return {n.id: wrap(n.label, width) for n in tree.nodes}


def layout_tree(tree: Tree, max_width: float = 1000.0, orientation: str | None = None) -> Layout:
    """Box positions, edge pieces and each box's text, the whole tree within `max_width` px when it
    can be (`orientation` None picks the first shape whose boxes are at least `MIN_BOX_W` wide)."""
    order = tree.walk()
    bands = {lvl: i for i, lvl in enumerate(sorted({n.level for n in order}))}
    depth = {tree.root.id: 0}
    for n in order:
        for c in n.children:
            depth[c] = depth[n.id] + 1
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
    levels = len(bands)
    fits = {
        "down": (max_width - 2 * MARGIN - (max(leaves, 1) - 1) * GAP_ACROSS) / max(leaves, 1),
        "right": (max_width - 2 * MARGIN - (levels - 1) * GAP_LEVELS) / levels,
        "indent": max_width - 2 * MARGIN - max(depth.values()) * INDENT,
    }
    def width(shape: str) -> float:
        w = fits[shape]
        return max(MIN_BOX_W, min(w, MAX_BOX_W)) if shape != "indent" else max(MIN_BOX_W + VALUE_W, w)

    def wrapped(shape: str) -> dict[str, tuple[str, ...]]:
        return _labels(tree, _slots(shape, width(shape), 1)[0].label_w)

    if orientation is None:  # the first shape whose boxes are wide enough and whose labels all fit
        orientation = next((o for o in ("down", "right") if fits[o] >= MIN_BOX_W and not any(
            line.endswith(ELLIPSIS) for lines in wrapped(o).values() for line in lines)), "indent")
    w = width(orientation)
    labels = wrapped(orientation)
    lines = max(len(v) for v in labels.values())
    text, h = _slots(orientation, w, lines)
    owners = {n.id: cut(n.owner or "", text.owner_w, OWNER_SIZE) for n in tree.nodes}

    def box(node_id: str, x: float, y: float, band: int, height: float = h) -> Box:
        drawn = labels[node_id]
        return Box(node_id, x, y, band, w, height, drawn, owners[node_id], not drawn[-1].endswith(ELLIPSIS)
                   or tree.node(node_id).label.endswith(ELLIPSIS))

    boxes: dict[str, Box] = {}
    top = MARGIN  # the outline's next row: each box as tall as its own label needs
    for n in order:
        if orientation == "indent":
            own = _slots(orientation, w, len(labels[n.id]))[1]
            boxes[n.id] = box(n.id, MARGIN + depth[n.id] * INDENT + w / 2, top + own / 2, bands[n.level], own)
            top += own + GAP_ROWS
        elif orientation == "down":
            x = MARGIN + slot[n.id] * (w + GAP_ACROSS) + w / 2
            boxes[n.id] = box(n.id, x, MARGIN + bands[n.level] * (h + GAP_LEVELS) + h / 2, bands[n.level])
        elif orientation == "right":
            y = MARGIN + slot[n.id] * (h + GAP_ACROSS) + h / 2
            boxes[n.id] = box(n.id, MARGIN + bands[n.level] * (w + GAP_LEVELS) + w / 2, y, bands[n.level])
    # the chart is as wide as the column it was laid out for, the boxes from its left: a page that
    # stretches the chart to a wider column then stretches it by that column's ratio only, never a
    # two-box tree to three times its boxes' width
    width = max(max(b.x1 for b in boxes.values()) + MARGIN, min(max_width, 2 * MAX_BOX_W + 2 * MARGIN + 400))
    height = max(b.y1 for b in boxes.values()) + MARGIN
    return Layout(boxes, _segments(tree, order, boxes, orientation), width, height, orientation, text, w, h)


def _segments(tree: Tree, order, boxes: dict[str, Box], orientation: str) -> list[Segment]:
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
        elif orientation == "right":
            mid = p.x1 + (min(k.x0 for _, k in kids) - p.x1) / 2
            segments.append(Segment(n.id, n.id, p.x1, p.y, mid, p.y, trunk))
            for c, k in kids:
                link = "formula" if c in exact else "influence"
                segments.append(Segment(n.id, c, mid, p.y, mid, k.y, link))
                segments.append(Segment(n.id, c, mid, k.y, k.x0, k.y, link))
        else:  # the outline: a trunk down the parent's left side, a step right into each child
            trunk_x = p.x0 + INDENT / 2
            for c, k in kids:
                link = "formula" if c in exact else "influence"
                segments.append(Segment(n.id, c, trunk_x, p.y1, trunk_x, k.y, link))
                segments.append(Segment(n.id, c, trunk_x, k.y, k.x0, k.y, link))
    return segments
