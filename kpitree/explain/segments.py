"""Segment drill-down: each drill dimension's segments, their parts of the gap, and the ranking.

Additive metrics: each segment's value minus its baseline (against a target, the target shared out
by the segments' reference weights). Ratios: exact mix and rate effects (`attribution.mix_rate`),
rates conditioned on another dimension so a mix shift inside a channel is not read as the
channel's own rate. Other formulas: the component path. Dimensions are ranked Adtributor-style;
pairs are looked at when no single segment explains half the change; the top segment is narrowed
by a second dimension when one sub-segment carries most of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .. import attribution as att
from ..metrics import (
    Metric,
)
from .model import PAIR_SEP, PAIR_WHEN_TOP_BELOW, PSEUDO, REFINE_SHARE, DimensionRank, SegmentPart
from .values import ValueFn
from .view import _NodeView
from .words import _period_words


@dataclass(frozen=True)
class _SegmentAnalysis:
    dimensions: tuple[DimensionRank, ...]
    top: SegmentPart | None
    note: str = ""
    basis: tuple[str, str] = ("target", "")  # what a segment's baseline is: see `segment_basis`


def segment_basis(view: _NodeView) -> tuple[str, str]:
    """What a segment's baseline is, as (kind, where): ("period", "2026-09") against another period;
    against a target, ("share", "") for a sum (the target shared out by the segments' weights) or
    ("reference", "in 2026-05") for any other metric (the segment's own level in the reference)."""
    if view.versus != "target":
        return "period", view.base_key
    data = view.data
    if data.cur_metric.additive and data.cur_metric is data.ref_metric:
        return "share", ""
    return "reference", _period_words(tuple(p.key for p in data.ref_periods))


def _segment_parts(view: _NodeView, versus: str, dims: Sequence[str]) -> tuple[str, list[SegmentPart]] | None:
    """Each segment's contribution to the node's gap along `dims` (a dimension or a pair)."""
    data = view.data
    sp = data.split(dims)
    if sp is None or view.value is None or view.baseline is None or not sp.segments:
        return None
    target_mode = versus == "target"
    if sp.ref is None and not target_mode:
        return None
    n = len(sp.segments)
    m = data.cur_metric
    same = data.cur_metric is data.ref_metric
    gap = view.value - view.baseline
    zeros = np.zeros(n)
    c1 = sp.cur
    c0 = sp.ref if sp.ref is not None else {c: zeros for c in data.ref_metric.components}
    v1 = np.nan_to_num(sp.value)
    v0 = np.nan_to_num(sp.ref_value)
    mix = rate = w0 = w1 = None
    if m.additive and same:
        if target_mode:
            weights = att.shares(v0) if np.abs(v0).sum() > 0 else att.shares(v1)
            if not weights.any():
                weights = np.full(n, 1.0 / n)
            base = view.baseline * weights
        else:
            base = v0
        contrib = v1 - base
        method = "delta"
        surprise = att.js_surprise(att.shares(base), att.shares(v1))
        values, baselines = v1, base
    elif m.ratio and same and _is_ratio(m, c1):
        num, den = m.ratio
        n1, d1, n0, d0 = c1[num], c1[den], c0[num], c0[den]
        if d1.sum() == 0:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            r1, r0 = n1 / d1, n0 / d0
        w1 = d1 / d1.sum()
        if d0.sum() > 0:
            # against a target, segments keep their reference rates: the target's distance from the
            # reference level is no segment's doing and is reported as its own line (see PSEUDO)
            w0 = d0 / d0.sum()
        else:
            w0, r0 = w1, np.full(n, view.baseline if target_mode else np.nan)
        mr = att.mix_rate(w0, r0, w1, r1)
        contrib, mix, rate, w0 = mr.contribution, mr.mix, mr.rate, mr.w0
        method = "mix_rate"
        surprise = att.js_surprise(att.shares(n0), att.shares(n1)) + att.js_surprise(att.shares(d0), att.shares(d1))
        values, baselines = mr.r1, mr.r0
    elif same:
        comps = list(m.components)
        t0 = data.total("ref") or {c: 0.0 for c in comps}
        t1 = data.total("cur") or {c: 0.0 for c in comps}
        deltas = {c: c1[c] - c0[c] for c in comps}
        contrib, _ = att.component_path(ValueFn(m.value, m.components), comps, t0, t1, deltas)
        method = "component_path"
        surprise = sum((att.js_surprise(att.shares(c0[c]), att.shares(c1[c])) for c in comps), zeros)
        values, baselines = v1, v0
    else:  # a running-period variant against a closed-period reference: plain deltas, not exact
        contrib, method, surprise, values, baselines = v1 - v0, "delta", zeros, v1, v0
    contrib = np.nan_to_num(np.asarray(contrib, dtype="float64"))
    tiny = 1e-9 * max(abs(view.value), abs(view.baseline), 1e-12)
    parts = []
    for i, s in enumerate(sp.segments):
        parts.append(SegmentPart(sp.dimension, s, float(contrib[i]), float(contrib[i] / gap) if abs(gap) > tiny else None,
                                 _f(values[i]), _f(baselines[i]), _f(mix[i]) if mix is not None else None,
                                 _f(rate[i]) if rate is not None else None, float(surprise[i]),
                                 _f(w1[i]) if w1 is not None else None, _f(w0[i]) if w0 is not None else None))
    rest = gap - float(contrib.sum())
    if abs(rest) > 1e-9 * max(abs(gap), abs(view.value), 1.0):
        label = PSEUDO[0] if target_mode else PSEUDO[1]
        parts.append(SegmentPart(sp.dimension, label, rest, rest / gap if abs(gap) > tiny else None))
    return method, parts


def _is_ratio(m: Metric, comps: Mapping[str, np.ndarray]) -> bool:
    """The metric's value really is numerator / denominator (not, e.g., a running-period variant)."""
    num, den = m.ratio  # type: ignore[misc]
    n, d = float(comps[num].sum()), float(comps[den].sum())
    if d == 0:
        return True
    v = float(ValueFn(m.value, m.components)({c: float(comps[c].sum()) for c in m.components}))
    return bool(np.isclose(v, n / d, rtol=1e-9, atol=0.0))


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _power(p: SegmentPart, basis: str, gap: float) -> float:
    """How much of the gap a segment explains: its contribution, or for a ratio its rate effect only."""
    if not gap:
        return 0.0
    if basis == "rate" and p.rate is not None:
        part = p.own_rate if p.own_rate is not None else p.rate
    else:
        part = p.contribution
    return part / gap


def _rank(view: _NodeView, method: str, parts: list[SegmentPart], gap: float, basis: str) -> DimensionRank:
    real = [p for p in parts if p.segment not in PSEUDO]
    unnamed = tuple(p.segment for p in real if view.data.unnamed(p.dimension, p.segment))
    power = np.array([0.0 if p.segment in unnamed else _power(p, basis, gap) for p in real])
    surprise = np.array([p.surprise for p in real])
    cand = att.adtributor(power, surprise)
    chosen = tuple(real[i].segment for i in cand.chosen)
    ordered = sorted(parts, key=lambda p: -(p.share if p.share is not None else view.adverse(p.contribution)))
    return DimensionRank(parts[0].dimension if parts else "", method, basis, cand.explanatory_power, cand.surprise,
                         cand.score, cand.succeeded, chosen, tuple(ordered), unnamed)


def _dimension_order(d: DimensionRank) -> tuple:
    """Adtributor's verdict first, then succinctness (fewest segments), then surprise.

    Jensen–Shannon surprise is small for a large segment even when it changed a lot, so ranking on
    surprise alone prefers a small, correlated segment (an Enterprise-heavy channel) to the large
    one that holds the whole change (Enterprise): fewer segments explaining the change come first.
    """
    if d.succeeded:
        return (0, len(d.chosen), -d.surprise)
    gap = next((p.contribution / p.share for p in d.segments if p.share), 0.0)
    top = max((_power(p, d.basis, gap) for p in d.segments if p.segment not in PSEUDO and p.segment not in d.unnamed),
              default=0.0)
    return (1, 0, -top)


def _segments(view: _NodeView, versus: str) -> _SegmentAnalysis:
    """Ranks the node's dimensions (and pairs when no single dimension explains much).

    For a ratio metric, segments are first judged by their own rate effect — a segment whose share
    of the denominator moved (mix) has its cause in volumes upstream, not in this node's rate. Only
    when no dimension's rates explain the change is it judged on rate and mix together.
    """
    data = view.data
    gap = view.gap
    if gap is None or not data.dims:
        note = "" if data.dims or gap is None else "none of the tree's drill dimensions has a value in this metric's rows"
        return _SegmentAnalysis((), None, note, segment_basis(view))
    splits = {(d,): _segment_parts(view, versus, (d,)) for d in data.dims}
    splits = {k: v for k, v in splits.items() if v is not None and v[1]}
    if not splits:
        return _SegmentAnalysis((), None, basis=segment_basis(view))
    basis = "rate" if any(v[0] == "mix_rate" for v in splits.values()) else "contribution"
    if basis == "rate" and not data.sets:
        splits = {k: (v[0], _conditioned(view, versus, k[0], v[1])) if v[0] == "mix_rate" else v
                  for k, v in splits.items()}

    def ranked(items: dict) -> list[DimensionRank]:
        out = [_rank(view, method, parts, gap, basis) for method, parts in items.values()]
        if basis == "rate" and not any(r.succeeded for r in out):
            out = [_rank(view, method, parts, gap, "contribution") for method, parts in items.values()]
        return sorted(out, key=_dimension_order)

    ranks = ranked(splits)
    best_share = max((p.share or 0.0 for p in ranks[0].segments), default=0.0)
    if (best_share < PAIR_WHEN_TOP_BELOW or not ranks[0].succeeded) and not data.sets:
        for pair in att.pairs_of(data.dims):
            res = _segment_parts(view, versus, pair)
            if res is not None and res[1]:
                splits[pair] = res
        ranks = ranked(splits)
    return _SegmentAnalysis(tuple(ranks), _refine(view, versus, _top_segment(ranks, gap), gap, ranks[0].basis),
                            basis=segment_basis(view))


def _conditioned(view: _NodeView, versus: str, dim: str, parts: list[SegmentPart]) -> list[SegmentPart]:
    """Each segment's rate effect as it remains within the segments of another dimension.

    A ratio's rate effect per channel also holds every shift of mix *inside* the channel: when
    fewer Enterprise deals close, every channel's average deal size falls although no channel's
    Enterprise or SMB deals got smaller (Simpson's paradox). Summing the rate effects of the
    channel × segment cells over each channel keeps only what changed within both; of the other
    dimensions, the one that leaves the least rate effect in total conditions this one. Judging
    dimensions on these rates picks the segment whose own rate moved (Mid-Market deals closing
    smaller), not a dimension that merely carries another one's mix shift.
    """
    best: dict[str, float] | None = None
    best_total = abs(sum(p.rate or 0.0 for p in parts if p.segment not in PSEUDO))
    within = None
    for other in view.data.dims:
        if other == dim:
            continue
        res = _segment_parts(view, versus, (dim, other))
        if res is None or res[0] != "mix_rate":
            continue
        agg: dict[str, float] = {}
        for p in res[1]:
            if p.segment not in PSEUDO:
                head = p.segment.split(PAIR_SEP)[0]
                agg[head] = agg.get(head, 0.0) + (p.rate or 0.0)
        total = abs(sum(agg.values()))
        if total < best_total - 1e-12:
            best, best_total, within = agg, total, other
    if best is None:
        return parts
    return [p if p.segment in PSEUDO or p.rate is None else replace(p, own_rate=best.get(p.segment, 0.0), within=within)
            for p in parts]


def _top_segment(ranks: Sequence[DimensionRank], gap: float) -> SegmentPart | None:
    """Of the best dimension's chosen segments (Adtributor's set), the one that explains most."""
    if not ranks:
        return None
    best = ranks[0]
    pool = [p for p in best.segments if p.segment in best.chosen] or [
        p for p in best.segments if p.segment not in PSEUDO and p.segment not in best.unnamed]
    return max(pool, key=lambda p: _power(p, best.basis, gap)) if pool else None


def _refine(view: _NodeView, versus: str, top: SegmentPart | None, gap: float, basis: str) -> SegmentPart | None:
    """Narrows the top segment by a second dimension when one sub-segment carries most of it.

    "Enterprise" becomes "Enterprise × Dana Whitfield" when Dana's Enterprise deals hold at least
    `REFINE_SHARE` of Enterprise's part: same explanation, and it names who to talk to.
    """
    if top is None or PAIR_SEP in top.dimension or view.data.sets:
        return top
    own = _power(top, basis, gap)
    if own <= 0:
        return top
    best, best_power = top, 0.0
    for other in view.data.dims:
        if other == top.dimension:
            continue
        res = _segment_parts(view, versus, (top.dimension, other))
        if res is None:
            continue
        for p in res[1]:
            if p.segment.split(PAIR_SEP)[0] != top.segment or view.data.unnamed(p.dimension, p.segment):
                continue
            pw = _power(p, basis, gap)
            if pw >= REFINE_SHARE * own and pw > best_power:
                best, best_power = p, pw
    return best


