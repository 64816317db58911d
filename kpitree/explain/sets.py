"""Cause sets: for a sum, the one to three elements — at any depth of the drill dimensions combined —
that together explain its gap beyond noise (`localise`), instead of one dimension's top segment.

One dimension at a time names "Paid Search" when the gap is Paid Search *and* one rep's Enterprise
deals; a pair of dimensions names their crossing. `localise` searches every element of the lattice
(a rep; a segment × channel; one rep's deals in one segment from one channel), judges each by the
evidence of its leaves — counting noise from the cells' sums of squares, widened by how much each
element usually moves over the earlier periods the cells hold — names nothing in pure noise, names
a nested child (a rep inside its segment) only when its parent shows the change too, and gives
each element its exact part of the gap.

The leaves are the finest cells of the node's drill dimensions. Each leaf's expected value is its
baseline exactly as the segment tables have it: against a target, the target shared out by the
leaf's weight in the reference periods; against another period, its value then.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from .. import attribution as att
from ..localise import Localisation, localise
from . import evidence as ev
from .cells import NodeData
from .model import ALMOST_ALL, PAIR_SEP, SegmentPart
from .values import ValueFn
from .view import _NodeView

MAX_ELEMENTS = 3
MIN_MEMBER_SHARE = 0.05  # an element explaining less of the gap than this is no cause worth a conversation


def leaves(view: _NodeView, versus: str) -> pd.DataFrame | None:
    """The node's finest cells as `localise` reads them: one row per leaf (dimension values as
    strings), actual, expected, and the variance of actual − expected: counting noise now and in the
    baseline, widened by the leaf's own history (see `evidence.combine`)."""
    data = view.data
    m = data.cur_metric
    if data.sets or not data.dims or not m.additive or data.cur_metric is not data.ref_metric \
            or view.value is None or view.baseline is None:
        return None
    dims = data.distinct
    sp = data.split(dims)
    if sp is None or not sp.segments or not sp.cur_var:
        return None
    fn = ValueFn(m.value, m.components)
    v1 = np.nan_to_num(sp.value)
    v0 = np.nan_to_num(sp.ref_value)
    if versus == "target":
        weights = att.shares(v0) if np.abs(v0).sum() > 0 else att.shares(v1)
        if not weights.any():
            weights = np.full(len(v1), 1.0 / len(v1))
        expected = view.baseline * weights
    elif sp.ref is None:
        return None
    else:
        expected = v0
    variance = ev.delta_var(fn, sp.cur, sp.cur_var, m.components)
    if sp.ref is not None and sp.ref_var:
        var0 = ev.delta_var(fn, sp.ref, sp.ref_var, m.components)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(np.abs(v0) > 0, expected / v0, 0.0)
        k = max(len(data.ref_periods), 1)  # under the null, now's noise is the baseline's per period
        variance = np.fmax(variance, scale ** 2 * var0 * k) + scale ** 2 * var0
    if not ev.poisson_ok(m):  # a level carried over: only its history says how much it moves
        variance = np.zeros(len(v1))
    names = [s.split(PAIR_SEP) for s in sp.segments]
    cells = pd.DataFrame(names, columns=list(dims))
    cells["actual"], cells["expected"], cells["variance"] = v1, expected, variance
    if sp.history is not None:
        # Each leaf's usual wobble widens its counting noise, median-based so that a problem that began
        # a period or two ago is not taken for it (a mean over the periods, as `localise`'s own history
        # input does, would let last month's collapse hide this month's)
        shape = next(iter(sp.history.values())).shape
        per = np.asarray(fn({c: v.ravel() for c, v in sp.history.items()}), dtype="float64").reshape(shape)
        usual, count = ev.usual_sd(per)
        if not ev.poisson_ok(m):  # a level: no counting noise to stand in for a flat history
            usual = ev.level_floor(usual, ev.column_mean(per))
        k = max(len(data.ref_periods), 1)
        sd = ev.combine(np.sqrt(variance) if ev.poisson_ok(m) else None, (usual * np.sqrt(1.0 + 1.0 / k), count))
        if sd is not None:
            cells["variance"] = np.nan_to_num(sd) ** 2
    if not (cells["variance"] > 0).any():
        return None
    cells.attrs["total_sd"] = _total_sd(view, cells["variance"].to_numpy(float),
                                        per if sp.history is not None else None, max(len(data.ref_periods), 1))
    if sp.history is not None:
        cells.attrs["history"] = per  # periods × leaves, for each named element's own wobble
    return cells


def _inside(cells: pd.DataFrame, where: tuple[tuple[str, str], ...]) -> np.ndarray:
    inside = np.ones(len(cells), dtype=bool)
    for dim, value in where:
        inside &= cells[dim].astype(str).to_numpy() == value
    return inside


def _coarsest(cells: pd.DataFrame, where: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The element without each dimension that narrows nothing: one whose leaves are nearly all of the
    wider element's, now and in the baseline ("Enterprise × Direct" when 97 % of deals come Direct)."""
    while len(where) > 1:
        for i in range(len(where)):
            wider = where[:i] + where[i + 1:]
            a, b = _inside(cells, where), _inside(cells, wider)
            sums = [(float(cells.loc[a, c].sum()), float(cells.loc[b, c].sum())) for c in ("actual", "expected")]
            if all(w and n / w >= ALMOST_ALL for n, w in sums):
                where = wider
                break
        else:
            break
    return where


def _element_sd(cells: pd.DataFrame, where: tuple[tuple[str, str], ...], sd: float | None, k: int) -> float | None:
    """An element's noise widened by how much the element itself usually moves. Its leaves' noises
    summed assume they wobble independently; a channel's leads rise and fall together with the
    season, so the channel's own history can say its gap is ordinary where its leaves' could not
    (Outbound leads 19 % down read as 3.3 standard errors leaf by leaf, 1.9 as a channel)."""
    per = cells.attrs.get("history")
    if per is None or sd is None:
        return sd
    block = per[:, _inside(cells, where)]
    seen = np.isfinite(block).any(axis=1)
    series = np.where(seen, np.nansum(np.where(np.isfinite(block), block, 0.0), axis=1), np.nan)[:, None]
    usual, count = ev.usual_sd(series)
    out = ev.combine(np.array([sd]), (usual * math.sqrt(1.0 + 1.0 / k), count))
    return float(out[0]) if out is not None and np.isfinite(out[0]) else sd


def _total_sd(view: _NodeView, variance: np.ndarray, per: np.ndarray | None, k: int) -> float:
    """Noise of the node's own gap. A sum's leaves are judged one by one, but when the total itself is
    within normal variation the leaves that "explain" it are the usual churn of a business, not a
    cause: at a four-way depth some leaf always jumps (one customer's churn in a month like any other,
    a stock a rounding away from its target). The leaves' noise summed (counting noise widened by each
    leaf's history); for a level carried over (a stock), whose leaves' histories are mostly flat
    between a customer's rare jumps, at least how much the total itself usually moves. A flow's total
    history is not used: its month-to-month swing holds the seasonality a target already follows."""
    sd = math.sqrt(float(np.nansum(variance)))
    if per is not None and not ev.poisson_ok(view.data.cur_metric):
        total = np.where(np.isfinite(per).any(axis=1, keepdims=True), np.nansum(per, axis=1, keepdims=True), np.nan)
        usual, _count = ev.usual_sd(total)
        if np.isfinite(usual[0]):
            sd = max(sd, float(usual[0]) * math.sqrt(1.0 + 1.0 / k))
    return sd


def cause_set(view: _NodeView, versus: str) -> tuple[SegmentPart | None, Localisation, bool] | None:
    """The named elements as one SegmentPart (a set when several), or (None, …) when nothing stands
    out of the noise; None when the node is no sum over finest cells (ratios, catalogue batches). The
    flag: the node's whole gap is within the total's own normal variation."""
    cells = leaves(view, versus)
    if cells is None:
        return None
    data: NodeData = view.data
    result = localise(cells, list(data.distinct), max_elements=MAX_ELEMENTS)
    gap = view.gap or 0.0
    total_sd = cells.attrs.get("total_sd")
    if total_sd and abs(gap) < ev.Z_MIN * total_sd:  # the total is within its normal variation
        return None, result, True
    members = []
    claimed = np.zeros(len(cells), dtype=bool)
    named: list[tuple[tuple[str, str], ...]] = []
    for el in result.elements:
        where = _coarsest(cells, el.where)  # named at the level that says as much
        if where in named:  # two elements that both widen to the same one
            continue
        named.append(where)
        inside = _inside(cells, where)
        own = inside & ~claimed  # each element's part: the raw gap of its own leaves not claimed by an earlier one
        part = float((cells.loc[own, "actual"] - cells.loc[own, "expected"]).sum())
        if where == el.where:
            actual, expected = el.actual, el.expected
            sd0 = (el.high - el.low) / 3.92 if el.high > el.low else None
        else:
            actual, expected = (float(cells.loc[inside, c].sum()) for c in ("actual", "expected"))
            sd0 = math.sqrt(float(cells.loc[own, "variance"].sum())) or None
        claimed |= inside
        dims = PAIR_SEP.join(d for d, _ in where)
        name = PAIR_SEP.join(v for _, v in where)
        sd = _element_sd(cells, where, sd0, max(len(data.ref_periods), 1))
        members.append(SegmentPart(dims, name, part, part / gap if gap else None, actual, expected, sd=sd))
    # An element that went the other way (a channel that did better) offsets the gap: it is in the
    # segment tables, but a cause is what made the gap. An element whose own part is within its noise
    # (localise's matched filter can accept a weak second element next to a strong one) or too small
    # to talk about is not named either.
    members = [p for p in members if p.contribution * gap > 0 and abs(p.share or 0.0) >= MIN_MEMBER_SHARE
               and ev.evident(p.z, ev.Z_MIN)]
    if not members:
        return None, result, False
    if len(members) == 1:
        return members[0], result, False
    # The set reads as its largest element (what a table, a chart or an older reader of
    # `top_segment` shows), with every element, itself included, in `members`
    members.sort(key=lambda p: -abs(p.contribution))
    return replace(members[0], members=tuple(members)), result, False
