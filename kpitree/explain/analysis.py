"""One node analysed: its view, its children's parts, its segments and its rate finding.

`_analyse` is memoised per session (the red path and the walk over the causes meet the same
nodes). `_over` steps past nodes that cannot be judged (no data, no target) to the nearest
descendants that can, so a workspace without subscriptions still walks from ARR to New ARR.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import attribution as att
from ..evaluate import RED
from ..format import fmt
from ..tree import Node
from .cells import _Session
from .children import _Children, _children
from .finding import _rate_finding
from .model import PAIR_SEP, Finding
from .segments import _SegmentAnalysis, _segments
from .view import _NodeView, _view


@dataclass(frozen=True)
class _Analysis:
    view: _NodeView
    children: _Children
    segments: _SegmentAnalysis
    also: Finding | None = None
    unjudged: str = ""  # why the node has no gap, in words ("has no data in 2026-10: needs …")


def _analyse(session: _Session, node: Node, versus: str) -> _Analysis:
    if node.id not in session.analyses:
        session.analyses[node.id] = _analyse_node(session, node, versus)
    return session.analyses[node.id]


def _analyse_node(session: _Session, node: Node, versus: str) -> _Analysis:
    kids = [session.tree.node(c) for c in node.children]
    session.fetch([node, *kids])
    view = _view(session, node, versus)
    segments = _segments(_view(session, node, versus, own=True), versus)
    if view.maturing and view.status != RED:
        # a young cohort's gap is not final: judged on its expected final value, which is not red
        expected = f", expected to end near {fmt(view.expected_final, view.unit)}" if view.expected_final is not None else ""
        segments = _SegmentAnalysis((), None, f"{node.label} is maturing (its cohort is still young{expected}): "
                                    "no segment is named for a gap that is not final", segments.basis)
    cell_dim = None
    if node.formula:
        exact = att.Formula.parse(node.formula).names
        common = [d for d in session.data[exact[0]].dims
                  if all(d in session.data[k].dims and not session.data[k].sets for k in exact)]
        ranked = [d.dimension for d in segments.dimensions if d.dimension in common]
        cell_dim = (ranked[0],) if ranked else None
        top = segments.top
        if top is not None and all(d in common for d in top.dimension.split(PAIR_SEP)):
            # where the node's own change was found (a rep, or one rep's Enterprise deals): within
            # those cells a mix shift there is not mistaken for a change of a factor elsewhere
            cell_dim = tuple(top.dimension.split(PAIR_SEP))
    children = _children(session, view, versus, cell_dim)
    carried = next((c for c in children.parts if c.carried), None)
    if carried is not None and segments.top is not None and view.gap is not None and view.adverse(view.gap) > 0 \
            and view.adverse(carried.contribution) >= (1.0 - 1e-6) * view.adverse(view.gap):
        # A level whose whole gap was carried over (ARR opened the month below plan, and what arose this
        # month was on plan or better): its segments against the target's shares are last months'
        # doing, and naming one read as a cause beside "it arose then, so the path follows what arose in
        # this period" ("Acmesaas_US customers explains 102 %" in a trial)
        segments = replace(segments, top=None, note=(
            f"the whole {node.label} gap was carried over from {session.period.previous().key}, where it arose: "
            "no segment of this period is named for it"))
    return _Analysis(view, children, segments, _rate_finding(session, node, versus, view, segments),
                     _unjudged(session, view, versus))


def _unjudged(session: _Session, view: _NodeView, versus: str) -> str:
    """Why a node cannot be judged (no value, or nothing to compare it with); empty when it can."""
    if view.value is None:
        reason = session.engine.no_data_reason(view.node, session.period)
        return f"has no data in {session.period.key}" + (f": {reason}" if reason else "")
    if view.baseline is None:
        if versus == "target":
            return f"has no target for {session.period.key}"
        return f"has no value in {session.reference.periods[0].key} to compare with"
    return ""


def _over(session: _Session, a: _Analysis, versus: str) -> list[tuple[tuple[str, ...], _Analysis]]:
    """The nearest descendants that can be judged, past nodes that cannot, each with the ids of the
    nodes stepped over on the way.

    Below a node without a gap (no data, no target): its children, and below any that have no gap
    either, theirs, and so on. Below a node with a gap: the same under each child without data only
    (a child with data but no target is judged by its parent's attribution as before). A workspace
    with deals but no subscriptions thus still walks from ARR down to New ARR and its levers.
    """
    out: list[tuple[tuple[str, ...], _Analysis]] = []
    seen = {a.view.node.id}

    def walk(x: _Analysis, via: tuple[str, ...]) -> None:
        for cid in x.view.node.children:
            if cid in seen:
                continue
            seen.add(cid)
            kid = _analyse(session, session.tree.node(cid), versus)
            if kid.view.gap is not None:
                out.append((via, kid))
            else:
                walk(kid, (*via, cid))

    if a.view.gap is None:
        walk(a, ())
        return out
    for cid in a.view.node.children:
        if cid not in seen and _view(session, session.tree.node(cid), versus).value is None:
            seen.add(cid)
            walk(_analyse(session, session.tree.node(cid), versus), (cid,))
    return out


def _worse(found: list[tuple[tuple[str, ...], _Analysis]]) -> list[tuple[tuple[str, ...], _Analysis]]:
    """Of the nodes `_over` found, those off their own baseline in the bad direction, worst first."""
    return sorted(((via, k) for via, k in found if (k.view.bands or 0.0) > 0 and not k.view.maturing),
                  key=lambda x: -(x[1].view.bands or 0.0))

