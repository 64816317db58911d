"""Children attribution: the parent's gap over its formula's children, plus a residual.

Sums split by deltas. Products and other formulas are attributed within the segments of the
dimension that best explains the parent's change (LMDI per segment, Shapley where a factor is
zero), so a mix shift is not mistaken for a change of one factor (Simpson's paradox). Influence
children get their own status and change, never a share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import attribution as att
from ..bridge import opening_child
from ..evaluate import flow_share
from ..metrics import Kind, metric
from .cells import _Session
from .model import PAIR_SEP, ChildPart, Influence
from .view import _NodeView, _view


@dataclass(frozen=True)
class _Children:
    method: str | None
    parts: tuple[ChildPart, ...]
    influences: tuple[Influence, ...]
    residual: float | None
    residual_detail: tuple[tuple[str, float], ...]
    notes: tuple[str, ...]


def _children(session: _Session, parent: _NodeView, versus: str, cell_dim: tuple[str, ...] | None) -> _Children:
    """The parent's gap over its formula's children (+ residual), and its influence children.

    Product (and other non-additive) formulas are attributed within the segments of `cell_dim`,
    the single dimension that best explains the parent's own change: a mix shift along the
    dimension where the problem sits (one rep, one channel) would otherwise show up as a change
    of the ratio factors (deal size) over the totals — Simpson's paradox. Additive formulas need
    no segments: deltas are the same either way.
    """
    node = parent.node
    tree = session.tree
    kids = [tree.node(c) for c in node.children]
    views = {k.id: _view(session, k, versus) for k in kids}
    formula = att.Formula.parse(node.formula) if node.formula else None
    exact = set(formula.names) if formula else set()
    influences = tuple(_influence(views[k.id]) for k in kids if k.id not in exact)
    if formula is None:
        return _Children(None, (), influences, None, (), ())
    notes: list[str] = []
    x1: dict[str, float] = {}
    base: dict[str, float] = {}
    scale = _to_date(session, parent, formula.names, versus)
    if scale:
        said = ", ".join(views[n].node.label for n in scale)
        notes.append(f"{session.period.key} is still running: {said} enter{'s' if len(scale) == 1 else ''} "
                     f"{node.label}'s formula as far as {'it has' if len(scale) == 1 else 'they have'} come, "
                     "against the part of the target planned by now (the same verdict as at pace)")
    for n in formula.names:
        v = views[n]
        b = v.baseline
        if versus == "target" and b is None and v.ref_value is not None:
            b = v.ref_value
            notes.append(f"{v.node.label} has no target: its reference level stands in as its baseline")
        if v.value is None or b is None:
            if parent.gap is not None:  # else there is no change to attribute anyway
                notes.append(f"{v.node.label} has no value or baseline: the formula's change stays in the residual")
            return _undefined(parent, influences, notes)
        x1[n], base[n] = v.value * scale.get(n, 1.0), b * scale.get(n, 1.0)
    gap = parent.gap
    parts_by: dict[str, float] = {n: 0.0 for n in formula.names}
    cells: dict[str, list[tuple[str, float]]] = {n: [] for n in formula.names}
    joint = None
    opening = opening_child(tree, node)
    # A stock over its opening balance (ARR = ARR at start × NRR + …) is split over the totals: the
    # carried-over part is the opening balance's own shortfall, whatever columns the data has. Within
    # the segments of the best dimension it changed with them (an auto_renew column turned ARR at start,
    # $350k below target, into a +$161k part) and moved NRR's mix into the opening balance.
    if formula.kind != "additive" and cell_dim is not None and opening is None:
        joint = _within_segments(formula, views, base, cell_dim, scale)
    if joint is not None:
        seg_parts, rest, segs, methods = joint
        for n in formula.names:
            parts_by[n] = float(seg_parts[n].sum()) + rest[n]
            order = np.argsort(-np.abs(seg_parts[n]))[:5]
            cells[n] = [(segs[i], float(seg_parts[n][i])) for i in order]
        method = f"{' + '.join(sorted(methods))}, within segments by {PAIR_SEP.join(cell_dim)}"
    else:
        res = att.attribute(formula, base, x1)
        if res.note:
            notes.append(res.note)
        if res.method == "undefined":
            return _undefined(parent, influences, notes)
        parts_by.update(dict(res.parts))
        method = res.method
    parts = []
    for n in formula.names:
        v = views[n]
        c = parts_by[n]
        parts.append(ChildPart(n, v.node.label, v.node.owner, c, _share(c, gap), x1[n], base[n], v.unit,
                               v.status, "exact", tuple(cells[n]), v.maturing, v.expected_final,
                               opening is not None and n == opening.id))
    residual = None
    detail: tuple[tuple[str, float], ...] = ()
    if gap is not None:
        residual = gap - sum(parts_by.values())
        f1, f0 = float(formula(x1)), float(formula(base))
        detail = (("value_vs_formula", parent.value - f1), ("baseline_vs_formula", parent.baseline - f0))  # type: ignore[operator]
        parts.append(ChildPart("residual", "Residual (not in formula)", node.owner, residual, _share(residual, gap),
                               None, None, parent.unit, "", "residual"))
    return _Children(method, tuple(parts), influences, residual, detail, tuple(notes))


def _to_date(session: _Session, parent: _NodeView, names: Sequence[str], versus: str) -> dict[str, float]:
    """Per flow child of a running stock's formula, the share of its period planned by now.

    A running flow is judged on its pace (projected to the period's end) against its whole target,
    but a stock today holds the flows so far: ARR on 20 November = ARR at start × NRR so far + the
    new-logo ARR won so far. In the stock's formula the flow enters as far as it has come, against
    the part of its target planned by now (`evaluate.flow_share`, the share the pace divides by), so
    the parts add up to the gap the tree colours; the flow's own verdict is the same either way."""
    period, as_of = session.period, session.engine.as_of
    if versus != "target" or period.is_complete(as_of) or metric(parent.node.metric).kind is not Kind.STOCK:
        return {}
    out = {}
    for n in names:
        child = session.tree.node(n)
        if metric(child.metric).kind is Kind.FLOW:
            out[n] = flow_share(child, period, as_of)[0]
    return out


def _undefined(parent: _NodeView, influences: tuple[Influence, ...], notes: list[str]) -> _Children:
    """No attribution possible: the whole gap is the residual, said so in the notes."""
    gap = parent.gap
    parts: tuple[ChildPart, ...] = ()
    if gap is not None:
        parts = (ChildPart("residual", "Residual (not in formula)", parent.node.owner, gap, _share(gap, gap), None,
                           None, parent.unit, "", "residual"),)
    return _Children("undefined", parts, influences, gap, (), tuple(notes))


def _share(part: float, gap: float | None) -> float | None:
    if gap is None or gap == 0 or not math.isfinite(part):
        return None
    return part / gap


def _influence(v: _NodeView) -> Influence:
    return Influence(v.node.id, v.node.label, v.node.owner, v.status, v.value, v.baseline, v.gap, v.relative_gap,
                     v.bands, v.unit, v.maturing, v.expected_final)


def _within_segments(formula: att.Formula, views: Mapping[str, _NodeView], base: Mapping[str, float],
                     dims: tuple[str, ...], scale: Mapping[str, float] | None = None
                     ) -> tuple[dict[str, np.ndarray], dict[str, float], list[str], dict[str, int]] | None:
    """Attribution of reference → actual inside each segment of `dims`, plus baseline → reference.

    Per segment, each child moves from its reference-period value to its actual value (LMDI, or
    Shapley where a factor is zero); summed over segments this is f(actuals) − f(reference) when
    the formula holds segment by segment (Σ_s f(x_s) = f(X), e.g. deals × win rate × deal size =
    won amount in every segment — otherwise None, and the caller uses the totals). Against a
    target, the remaining f(reference) − f(targets) is attributed over the totals (`rest`); the
    reference period is chosen where the children were closest to their targets, so it is small.
    Together: f(actuals) − f(baselines), exactly.
    A rate with no denominator in a segment (no won deal, say) borrows its value from the other
    side or the total, which leaves f(x_s) unchanged because another factor is zero there.
    """
    splits = {}
    for n in formula.names:
        d = views[n].data
        if d.cur is None or d.ref is None or d.cur_metric is not d.ref_metric:
            return None
        sp = d.split(dims)
        if sp is None:
            return None
        splits[n] = sp
    segs = sorted(set().union(*(sp.segments for sp in splits.values())))
    if not segs:
        return None
    where = {s: i for i, s in enumerate(segs)}
    x1, x0, t1, t0 = {}, {}, {}, {}
    for n, sp in splits.items():
        idx = np.array([where[s] for s in sp.segments], dtype=np.int64)
        a1, a0 = np.full(len(segs), np.nan), np.full(len(segs), np.nan)
        a1[idx], a0[idx] = sp.value, sp.ref_value
        tot1, tot0 = views[n].value, views[n].ref_value
        if tot1 is None or tot0 is None:
            return None
        k = (scale or {}).get(n, 1.0)  # a running flow in a stock's formula: so far (see `_to_date`)
        a1, a0, tot1, tot0 = a1 * k, a0 * k, tot1 * k, tot0 * k
        if views[n].data.cur_metric.additive:  # a segment absent from a sum adds zero
            x1[n], x0[n] = np.nan_to_num(a1), np.nan_to_num(a0)
        else:  # a rate with no denominator: borrow it (another factor is zero there anyway)
            a1, a0 = np.where(np.isfinite(a1), a1, a0), np.where(np.isfinite(a0), a0, a1)
            x1[n], x0[n] = np.where(np.isfinite(a1), a1, tot1), np.where(np.isfinite(a0), a0, tot0)
        t1[n], t0[n] = tot1, tot0
    for cells, totals in ((x1, t1), (x0, t0)):
        whole = float(formula(totals))
        summed = float(np.sum(formula(cells)))
        if not math.isfinite(summed) or abs(summed - whole) > 1e-6 * max(abs(whole), 1.0):
            return None
    parts, methods = att.attribute_cells(formula, x0, x1)
    if not all(np.all(np.isfinite(v)) for v in parts.values()):
        return None
    rest = {n: 0.0 for n in formula.names}
    if any(base[n] != t0[n] for n in formula.names):
        leg = att.attribute(formula, base, t0)  # from the baselines (targets) to the reference level
        if leg.method == "undefined":
            return None
        rest = dict(leg.parts)
        methods = {**methods, f"{leg.method} (target → reference)": 1}
    return parts, rest, segs, methods


