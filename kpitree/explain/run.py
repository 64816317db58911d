"""`explain_node`: the entry point — a session over the workspace, the analysis, the path and the causes."""

from __future__ import annotations

import time

from ..errors import KpiTreeError
from ..evaluate import Engine, Evaluation
from ..periods import Period, resolve_period
from ..tree import Tree
from ..workspace import Workspace
from .analysis import _analyse
from .causes import _causes, _TreeStatus, _unlisted
from .cells import _Session, reference_periods
from .explanation import Explanation
from .model import BY_NOW, TOP_SEGMENTS, VERSUS, Cause, SegmentPart, Step
from .path import _red_path
from .sentences import _how, _segment_sentence, _sentence


def explain_node(workspace: Workspace | Engine, tree: Tree, node_id: str, period: str | Period | None = None,
                 versus: str = "target", grain: str | None = None, *, reference: str | int | None = None,
                 causes: bool = True, hold_connection: bool = True, evaluation: Evaluation | None = None
                 ) -> Explanation:
    """Why `node_id` is where it is in `period` against `versus` (target, previous or last_year).

    With no period, the latest complete period of the grain (default: the tree's grain).
    `reference` chooses where, against a target, segment structure comes from (see
    `reference_periods`). `causes=False` skips the walk over every branch (the red path only).
    `hold_connection=False` opens a connection per query (see `warmup`). `evaluation`: the tree
    already evaluated for this period (the page has it), whose statuses the walk over the causes
    reads instead of querying them. Raises KeyError for an unknown node.
    """

    started = time.perf_counter()
    node = tree.node(node_id)
    if versus not in VERSUS:
        raise KpiTreeError(f"versus must be one of {', '.join(VERSUS)}; got {versus!r}")
    engine = workspace if isinstance(workspace, Engine) else Engine(workspace)
    if period is None or isinstance(period, str):
        # a written period carries its own grain; the tree's grain only picks the default period
        period = resolve_period(period, grain if period else (grain or tree.grain), engine.as_of)
    session = _Session(engine, tree, period, reference_periods(period, versus, reference), hold_connection)
    try:
        start = _analyse(session, node, versus)
        path = _red_path(session, start, versus)
        ids = [a.view.node.id for a, *_ in path]
        found: list[Cause] = []
        unlisted: list[tuple[str, str]] = []
        if causes:
            statuses = _TreeStatus(session, evaluation)
            found = _causes(session, start, versus, ids, statuses)
            unlisted = _unlisted(session, start, versus, ids, found, statuses)
    finally:
        session.close()
    steps = []
    for i, (a, link, share, bands) in enumerate(path):
        parent = path[i - 1][0] if i else None
        is_last = i == len(path) - 1
        steps.append(Step(a.view.node.id, a.view.node.label, a.view.node.owner, a.view.status, a.view.value,
                          a.view.baseline, a.view.unit, link, share, bands, a.segments.top,
                          _sentence(a, link, share, parent, versus), _segment_sentence(a) if is_last else None))
    view = start.view
    segs: list[SegmentPart] = []
    for d in start.segments.dimensions:
        segs.extend([s for s in d.segments if (s.share or 0) > 0][:TOP_SEGMENTS])
    notes = [n for n in (session.data[node.id].note, start.segments.note, *start.children.notes) if n]
    if view.value is None and not session.data[node.id].note:
        notes.append(f"{node.label} {start.unjudged}")
    elif view.baseline is None:
        notes.append("no target set for this node" if versus == "target" else f"no data for the baseline of {node.label}")
    if session.running:
        notes.append(f"{period.key} is still running ({session.elapsed:.0%} elapsed): flows are compared at pace, "
                     "stocks and rates that build up with the target planned by now")
    baseline_label = (view.base_key if view.base_key == BY_NOW else "target") if versus == "target" \
        else session.reference.periods[0].key
    return Explanation(
        node=node.id, label=node.label, owner=node.owner, period=period.key, grain=period.grain.value, versus=versus,
        baseline_label=baseline_label, value=view.value, baseline=view.baseline, gap=view.gap, status=view.status,
        unit=view.unit, direction=view.direction, formula=node.formula, method=start.children.method,
        children=start.children.parts, influences=start.children.influences, residual=start.children.residual,
        residual_detail=start.children.residual_detail, segments=tuple(segs), dimensions=start.segments.dimensions,
        red_path=tuple(steps), causes=tuple(found), reference=tuple(p.key for p in session.own(node).ref_periods),
        reason=engine.no_data_reason(node, period) if view.value is None else "",
        children_reference=tuple(p.key for p in session.data[node.id].ref_periods),
        notes=tuple(dict.fromkeys(notes)), seconds=time.perf_counter() - started, unlisted=tuple(unlisted),
        how=_how(start, session, versus), finding=start.also, maturing=view.maturing,
        expected_final=view.expected_final,
    )


