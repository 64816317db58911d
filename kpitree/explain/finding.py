"""Beside a mix shift, the segment whose own rate moved.

"Enterprise deals: a smaller share of the mix" explains an average deal size falling because fewer
big deals closed; a second problem in the same number (Mid-Market deals closing smaller) is a rate
effect the mix shift hides. `_rate_finding` names it, against the explanation's baseline or, when
nothing moved there, the same period last year.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..format import fmt_change
from ..tree import Node
from . import evidence as ev
from .cells import NodeData, _Session
from .model import ALSO_SHARE, PAIR_SEP, PSEUDO, Finding, SegmentPart
from .segments import _conditioned, _refine, _segment_parts, _SegmentAnalysis
from .view import _NodeView, _view
from .words import _describe, _noun, compare_words


def _rate_finding(session: _Session, node: Node, versus: str, main: _NodeView,
                  segments: _SegmentAnalysis) -> Finding | None:
    """For a ratio whose top segment is a mix shift: the segment whose own rate fell the most.

    "Enterprise deals: a smaller share of the mix" says the average deal size fell because fewer
    big deals closed — a cause upstream (win rate). A second problem in the same number, Mid-Market
    deals closing smaller, is a rate effect that the mix shift hides. Rates are compared with the
    explanation's own baseline; against a target, when none moved there, with the same period last
    year too, since the reference period may already carry a problem that began months ago.
    """
    top = segments.top
    if not segments.dimensions or segments.dimensions[0].method != "mix_rate" or main.gap is None:
        return None
    if top is None:
        # no segment stands out of its noise: "also" beside "within normal variation" would name, on
        # a second look at the same cells, what the first judged noise (a rep's sales cycle when an
        # upstream lead drop ages the deals that close)
        return None
    if top.mix is not None and top.rate is not None and abs(top.rate) >= abs(top.mix):
        return None  # the top segment already is a rate finding
    if main.adverse(main.gap) <= 0 or main.data.sets:
        return None
    ranked = [d.dimension for d in segments.dimensions if PAIR_SEP not in d.dimension]
    own_view = _view(session, node, versus, own=True)
    refs = own_view.data.ref_periods
    label = refs[0].key if len(refs) == 1 else f"average {refs[-1].key}…{refs[0].key}" if refs else "the baseline"
    candidates: list[tuple[_NodeView, str, str]] = [(own_view, versus, label)]
    ly = session.period.same_last_year()
    plan, frames = session._raw[node.id]
    if versus == "target" and ly in plan.ref and own_view.data.ref_periods != (ly,):
        # the reference may already carry a problem that began months ago: last year's rates do not
        candidates.append((_view(session, node, "last_year", data=NodeData.build(node, plan, frames, session, (ly,))),
                           "last_year", ly.key))
    best = None
    for view, mode, where in candidates:
        best = _top_rate(view, mode, ranked, main, segments.dimensions[0].bound)
        if best is not None:
            label = where
            break
    if best is None or (top is not None and best.dimension == top.dimension and best.segment == top.segment):
        return None
    who = _describe(best, _noun(main.data.cur_metric))
    own = best.own_rate if best.own_rate is not None else best.rate
    where = label if label.startswith("average") else f"in {label}"
    compared = compare_words(best.value, best.baseline, main.unit, "reference", where.replace("average ", "on average "))
    sentence = (f"Also {who}: {node.label} {compared} within their own segments, worth {fmt_change(own, main.unit)} "
                f"on the total, not a shift of mix. Owner: {node.owner}.")
    return Finding(best, label, sentence)


def _top_rate(view: _NodeView, mode: str, ranked: Sequence[str], main: _NodeView,
              bound: float = 0.0) -> SegmentPart | None:
    """The segment whose own (conditioned) rate moved most in the bad direction, over every single
    dimension (ties to the better-ranked one), by at least `ALSO_SHARE` of the node's gap and its
    amber band, and beyond its noise (`bound`); narrowed by a second dimension when one sub-segment
    carries most of it."""
    gap = main.gap or 0.0
    best, best_own = None, 0.0
    for d in [*ranked, *(d for d in view.data.distinct if d not in ranked)]:
        res = _segment_parts(view, mode, (d,))
        if res is None or res[0] != "mix_rate":
            continue
        for p in _conditioned(view, mode, d, res[1]):
            if p.segment in PSEUDO or p.rate is None or p.value is None or not p.baseline \
                    or view.data.unnamed(p.dimension, p.segment) or not ev.evident(p.rate_z, bound):
                continue
            own = main.adverse(p.own_rate if p.own_rate is not None else p.rate)
            if own < ALSO_SHARE * abs(gap) or main.adverse(p.value / p.baseline - 1.0) < main.amber:
                continue
            if own > best_own * (1 + 1e-9):
                best, best_own = p, own
    if best is None or view.gap is None:
        return best
    return _refine(view, mode, best, view.gap, "rate", bound)


