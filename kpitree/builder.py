"""Editing a tree as pure functions: each takes a Tree and returns a new one (the builder page calls these).

Nothing here saves or validates on its own: the page validates the result after every edit
(`validate`), so an edit that breaks a seed-003 rule is allowed and shows up as a problem next
to its node, the way a consultant builds a tree live and fixes it as they go.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from datetime import date

from .custom import CustomMeasure, check_measure, register_measure
from .errors import KpiTreeError, Problem
from .metrics import CATALOGUE, Kind
from .tree import LEVELS, MAX_LABEL, Node, Target, Tree, WorkspaceColumns, formula_names, validate_tree

_ID_CLEAN = re.compile(r"[^a-z0-9_]+")
MAX_LEVEL = max(LEVELS.values())
NEW_LABEL = "New metric"  # what "Add child" calls a node until it is given a metric or a label
_NEW_ID = re.compile(r"new_metric(_\d+)?")


class BuilderError(KpiTreeError):
    """An edit that cannot be made at all (moving a node under itself, removing the north star)."""


def blank_tree(name: str = "New tree") -> Tree:
    """A tree with only its north star, to be filled in from the top down (seed 003: start at the top)."""
    return Tree(
        name=name, nodes=(Node(id="revenue", label="Revenue", level=1, metric="arr", owner="", review="weekly"),)
    )


def for_editing(tree: Tree, name: str) -> Tree:
    """The tree as the builder holds it: its problems name the file it will be saved to."""
    return dataclasses.replace(tree, source=f"{name}.yaml")


def new_id(tree: Tree, base: str) -> str:
    """A lower_snake_case id from `base` that no node of the tree uses yet."""
    stem = _ID_CLEAN.sub("_", base.strip().lower()).strip("_") or "node"
    if not stem[0].isalpha():
        stem = "n_" + stem
    stem = stem[:56]
    taken = {n.id for n in tree.nodes}
    if stem not in taken:
        return stem
    i = 2
    while f"{stem}_{i}" in taken:
        i += 1
    return f"{stem}_{i}"


def _replace(tree: Tree, nodes: Iterable[Node]) -> Tree:
    return dataclasses.replace(tree, nodes=tuple(nodes))


def _get(tree: Tree, node_id: str) -> Node:
    try:
        return tree.node(node_id)
    except KeyError:
        raise BuilderError(f"no node {node_id!r} in the tree (nodes: {', '.join(n.id for n in tree.nodes)})") from None


def subtree(tree: Tree, node_id: str) -> list[str]:
    """The node and everything below it, depth first (safe on trees with cycles)."""
    by_id = {n.id: n for n in tree.nodes}
    out: list[str] = []
    seen: set[str] = set()
    stack = [node_id]  # a stack, not recursion: a long chain of drafts never hits the recursion limit
    while stack:
        nid = stack.pop()
        if nid in seen or nid not in by_id:
            continue
        seen.add(nid)
        out.append(nid)
        stack.extend(reversed(by_id[nid].children))
    return out


def add_node(
    tree: Tree,
    parent_id: str,
    *,
    label: str = NEW_LABEL,
    node_id: str | None = None,
    metric: str | CustomMeasure = "",
    level: int | None = None,
    owner: str = "",
    target: Target | None = None,
) -> Tree:
    """The tree with a new child appended under `parent_id`, one level below it by default."""
    parent = _get(tree, parent_id)
    nid = node_id or new_id(tree, label)
    if any(n.id == nid for n in tree.nodes):
        raise BuilderError(f"a node with id {nid!r} already exists")
    node = Node(
        id=nid,
        label=label,
        level=level or min(parent.level + 1, MAX_LEVEL),
        metric="",
        owner=owner,
        target=target or Target(),
    )
    node = _with_metric(node, metric) if metric else node
    nodes = [dataclasses.replace(n, children=(*n.children, nid)) if n.id == parent_id else n for n in tree.nodes]
    # New nodes go after the parent's last descendant, so the YAML reads top-down like the tree.
    after = max(i for i, n in enumerate(nodes) if n.id in subtree(tree, parent_id))
    nodes.insert(after + 1, node)
    return _replace(tree, nodes)


def remove_node(tree: Tree, node_id: str, *, keep_children: bool = False) -> Tree:
    """The tree without the node: with its whole subtree, or with its children handed to its parent."""
    node = _get(tree, node_id)
    parent = tree.parent_of(node_id)
    if parent is None and not keep_children:
        raise BuilderError(f"{node_id!r} is the north star: start a new tree instead of removing the top")
    if parent is None and len(node.children) != 1:
        raise BuilderError(
            f"{node_id!r} is the north star; it can only be removed when exactly one child can take its place"
        )
    gone = {node_id} if keep_children else set(subtree(tree, node_id))
    out = []
    for n in tree.nodes:
        if n.id in gone:
            continue
        if parent is not None and n.id == parent.id:
            kids: list[str] = []
            for c in n.children:
                if c == node_id:
                    kids.extend(node.children if keep_children else ())
                else:
                    kids.append(c)
            n = dataclasses.replace(n, children=tuple(kids))
        out.append(n)
    return _replace(tree, out)


def move_node(tree: Tree, node_id: str, new_parent_id: str, *, index: int | None = None) -> Tree:
    """The tree with the node (and its subtree) re-parented; levels shift down when they must.

    A child sits below its parent, so when the new parent is on the node's level or lower, the
    whole subtree moves down by the difference (capped at the lowest level).
    """
    node = _get(tree, node_id)
    new_parent = _get(tree, new_parent_id)
    if new_parent_id in subtree(tree, node_id):
        raise BuilderError(f"cannot move {node_id!r} under {new_parent_id!r}: that node is inside its own subtree")
    if tree.parent_of(node_id) is None:
        raise BuilderError(f"{node_id!r} is the north star and has no parent to change")
    shift = max(0, new_parent.level + 1 - node.level)
    moved = set(subtree(tree, node_id))
    out = []
    for n in tree.nodes:
        if node_id in n.children:
            n = dataclasses.replace(n, children=tuple(c for c in n.children if c != node_id))
        if n.id == new_parent_id:
            kids = list(n.children)
            kids.insert(len(kids) if index is None else max(0, min(index, len(kids))), node_id)
            n = dataclasses.replace(n, children=tuple(kids))
        if shift and n.id in moved:
            n = dataclasses.replace(n, level=min(n.level + shift, MAX_LEVEL))
        out.append(n)
    return _replace(tree, out)


def reorder(tree: Tree, node_id: str, delta: int) -> Tree:
    """The tree with the node moved `delta` places among its siblings (left is negative)."""
    parent = tree.parent_of(node_id)
    if parent is None:
        return tree
    kids = list(parent.children)
    i = kids.index(node_id)
    j = max(0, min(len(kids) - 1, i + delta))
    kids.insert(j, kids.pop(i))
    return edit_node(tree, parent.id, children=tuple(kids))


def _with_metric(node: Node, metric: str | CustomMeasure) -> Node:
    if isinstance(metric, CustomMeasure):
        name = register_measure(metric) if not check_measure(metric) else ""
        return dataclasses.replace(node, metric=name, custom=metric)
    return dataclasses.replace(node, metric=metric, custom=None)


def _rename_in_formula(formula: str | None, old: str, new: str) -> str | None:
    if formula is None:
        return None
    return re.sub(rf"\b{re.escape(old)}\b", new, formula)


def edit_node(tree: Tree, node_id: str, **changes) -> Tree:
    """The tree with some of the node's fields changed (`id` renames every reference to it too).

    `metric` takes a catalogue name or a CustomMeasure; other keys are Node fields.
    """
    node = _get(tree, node_id)
    unknown = set(changes) - {f.name for f in dataclasses.fields(Node)}
    if unknown:
        raise BuilderError(f"unknown node field(s) {', '.join(sorted(unknown))}")
    metric = changes.pop("metric", None)
    changes.pop("custom", None)
    new = dataclasses.replace(node, **changes)
    if metric is not None:
        new = _with_metric(new, metric)
    if new.id == node.id:
        return _replace(tree, [new if n.id == node_id else n for n in tree.nodes])
    if any(n.id == new.id for n in tree.nodes):
        raise BuilderError(f"a node with id {new.id!r} already exists")
    out = []
    for n in tree.nodes:
        if n.id == node_id:
            n = dataclasses.replace(new, formula=_rename_in_formula(new.formula, node_id, new.id))
        elif node_id in n.children:
            n = dataclasses.replace(
                n,
                children=tuple(new.id if c == node_id else c for c in n.children),
                formula=_rename_in_formula(n.formula, node_id, new.id),
            )
        out.append(n)
    return _replace(tree, out)


def named(tree: Tree, node_id: str, label: str, id_base: str | None = None) -> tuple[Tree, str]:
    """(the tree with the node labelled `label`, the node's id now).

    A node still carrying the id "Add child" made up for it (`new_metric`, `new_metric_2`) takes an
    id from `id_base` (else the label) as well: trial E's user named a new node "Opportunities
    created" and found it still saved as `new_metric`, with nothing saying the id was a stand-in.
    An id that was typed or came from a file is never changed here (formulas and links use it)."""
    node = _get(tree, node_id)
    if not _NEW_ID.fullmatch(node.id) or not (id_base or label).strip():
        return edit_node(tree, node_id, label=label), node_id
    others = _replace(tree, [n for n in tree.nodes if n.id != node_id])
    new = new_id(others, id_base or label)
    return edit_node(tree, node_id, label=label, id=new), new


def is_new(node: Node) -> bool:
    """The node still has the label "Add child" gave it: picking a metric names it after the metric."""
    return node.label == NEW_LABEL


def edit_tree(tree: Tree, **changes) -> Tree:
    """The tree with its name, description, grain or default drill dimensions changed."""
    allowed = {"name", "description", "grain", "dimensions"}
    if set(changes) - allowed:
        raise BuilderError(f"only {', '.join(sorted(allowed))} can be changed on the tree itself")
    return dataclasses.replace(tree, **changes)


def set_target(tree: Tree, node_id: str, target: Target) -> Tree:
    return edit_node(tree, node_id, target=target)


def formula_children(node: Node) -> set[str]:
    """The children an exact formula uses (empty when there is none or it cannot be read)."""
    if not node.formula:
        return set()
    try:
        return formula_names(node.formula) & set(node.children)
    except (SyntaxError, ValueError):
        return set()


def validate(tree: Tree, columns: WorkspaceColumns | None = None) -> list[Problem]:
    """Every problem of the tree as it would be saved: seed-003 rules, technical rules, custom SQL.

    With `columns` (the workspace being edited for, `tree.workspace_columns`), drill dimensions are
    judged by that workspace's real columns: a tree suggested from it names its extra columns (a
    deal's `type`, a lead's `industry`) and must not come back with warnings about them.
    The page validates after every rerun; an unchanged tree is not validated twice.
    """
    frozen = None if columns is None else tuple(sorted((t, tuple(c)) for t, c in columns.items()))
    try:
        hash(tree)
    except TypeError:  # a filter value that is a list or mapping: fine to check, not to memoise
        return _in_editor_words(tree, validate_tree(tree, columns))
    return _in_editor_words(tree, _validate_cached(tree, frozen))


NO_METRIC = "no metric yet: pick one under Catalogue metric (type to find it), or switch to Custom measure"


def _in_editor_words(tree: Tree, problems: Iterable[Problem]) -> list[Problem]:
    """The problems as the editor says them: a node just added has no metric yet, which the file check
    calls "unknown metric '' (known: …)" followed by all 80 metric names (trial E: a wall of red under a
    node the user had not finished making)."""
    empty = {n.id for n in tree.nodes if not n.metric and n.custom is None}
    return [dataclasses.replace(p, message=NO_METRIC)
            if p.node in empty and p.key == "metric" and p.message.startswith("unknown metric ''") else p
            for p in problems]


@functools.lru_cache(maxsize=64)
def _validate_cached(tree: Tree, columns: tuple[tuple[str, tuple[str, ...]], ...] | None) -> tuple[Problem, ...]:
    return tuple(validate_tree(tree, None if columns is None else dict(columns)))


def errors_of(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def problems_by_node(problems: Iterable[Problem]) -> dict[str | None, list[Problem]]:
    """Problems grouped by the node they concern (None: the tree as a whole)."""
    out: dict[str | None, list[Problem]] = {}
    for p in problems:
        out.setdefault(p.node, []).append(p)
    return out


def metric_choices() -> list[tuple[str, str, str, str]]:
    """(name, label, definition, unit) of every catalogue metric a node may pick, by name."""
    return sorted(
        (m.name, m.label, m.definition, m.unit)
        for m in CATALOGUE.values()
        if not m.name.startswith("custom_") and not m.name.endswith("_running")
    )


def parent_choices(tree: Tree, node_id: str) -> list[str]:
    """Nodes the node may be moved under: every node outside its own subtree."""
    inside = set(subtree(tree, node_id))
    return [n.id for n in tree.nodes if n.id not in inside]


def drawable(tree: Tree) -> Tree:
    """The part of the tree a chart can draw: reachable from the root, known children, no cycles."""
    if not tree.nodes:
        return tree
    known = {n.id for n in tree.nodes}
    children = {c for n in tree.nodes for c in n.children}
    root = next((n for n in tree.nodes if n.id not in children), tree.nodes[0])
    keep = subtree(tree, root.id)
    seen: set[str] = set()
    out = []
    for nid in keep:
        n = tree.node(nid)
        kids = tuple(c for c in n.children if c in known and c not in seen and c in keep and c != nid)
        seen.add(nid)
        out.append(dataclasses.replace(n, children=kids))
    # Each child only under its first parent, so the layout never visits a node twice; a formula
    # still being typed (unreadable, too long) is drawn as influence links until it reads.
    placed: set[str] = set()
    fixed = []
    for n in out:
        kids = tuple(c for c in n.children if c not in placed)
        placed.update(kids)
        fixed.append(dataclasses.replace(n, children=kids, formula=n.formula if formula_children(n) else None,
                                         label=_cut(n.label), owner=_cut(n.owner)))
    return _replace(tree, fixed)


def _cut(text: str) -> str:
    """Text as a box can show it: at most MAX_LABEL characters (validation refuses longer ones; the
    layout's line wrapping grows much faster than the text, so a pasted essay must not reach it)."""
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def preview(engine, tree: Tree, period=None):
    """(drawable tree, Evaluation) for the live preview: real numbers when every metric is known.

    A tree that still has unknown metrics is drawn with grey "no data" boxes, so its shape shows
    while it is being built.
    """
    from .evaluate import NO_DATA, Evaluation, NodeResult, evaluate_tree, target_for
    from .periods import Grain, latest_complete

    draw = drawable(tree)
    if engine is not None and all(n.metric in CATALOGUE for n in draw.nodes):
        try:
            return draw, evaluate_tree(engine, draw, period)
        except (KpiTreeError, KeyError):
            pass
    try:
        as_of = engine.as_of
    except (AttributeError, KpiTreeError):  # no workspace, or one without data yet
        as_of = date.today()
    p = latest_complete(as_of, Grain(draw.grain if draw.grain in {g.value for g in Grain} else "month"))
    results = []
    for n in draw.walk():
        parent = draw.parent_of(n.id)
        results.append(
            NodeResult(
                id=n.id,
                label=n.label,
                metric=n.metric,
                level=n.level_name,
                owner=n.owner,
                value=None,
                target=target_for(n, p) if n.metric in CATALOGUE else n.target.for_period(p, Kind.FLOW),
                status=NO_DATA,
                previous=None,
                unit=n.shown_unit,
                direction=n.better,
                review=n.review,
                link="formula" if n.formula else "influence",
                formula=n.formula,
                parent=parent.id if parent else None,
                children=n.children,
                target_basis=n.target.suggested,
            )
        )
    return draw, Evaluation(p, as_of, results, True)
