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
from . import evidence as ev
from .cells import CROSS, LOG_SUFFIXES, NodeData, Split
from .model import (
    ALMOST_ALL,
    NAMED_SHARE,
    PAIR_SEP,
    PAIR_WHEN_TOP_BELOW,
    PSEUDO,
    REFINE_SHARE,
    DimensionRank,
    SegmentPart,
)
from .sets import cause_set
from .values import ValueFn
from .view import _NodeView
from .words import _period_words


@dataclass(frozen=True)
class _SegmentAnalysis:
    dimensions: tuple[DimensionRank, ...]
    top: SegmentPart | None
    note: str = ""
    basis: tuple[str, str] = ("target", "")  # what a segment's baseline is: see `segment_basis`
    normal: bool = False  # segments were ranked, and none stood out of its noise: "within normal variation"


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


def _segment_parts(view: _NodeView, versus: str, dims: Sequence[str], *, evidence: bool = True
                   ) -> tuple[str, list[SegmentPart]] | None:
    """Each segment's contribution to the node's gap along `dims` (a dimension or a pair), with the
    noise of each (`evidence=False`: the parts alone, for sums over them that need none)."""
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
    sd = rate_sd = None
    parents: list[str | None] = [None] * n
    k = max(len(data.ref_periods), 1)  # a baseline averaged over k periods has 1/k of one period's noise
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
        sd = _additive_sd(data, sp, base, v0, k) if evidence else None
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
        wbar = (mr.w0 + mr.w1) / 2
        centred = (mr.r0 + mr.r1) / 2 - (mr.total0 + mr.total1) / 2
        parent = data.nested().get(dims[0]) if len(dims) == 1 and d0.sum() > 0 else None
        nested = _nested_terms(data, dims[0], parent, sp, mr) if parent is not None else None
        inherited = None
        if nested is not None:  # a child dimension: its mix is judged within its parent's segments
            rate, mix, wbar, centred, parents, inherited = nested
            contrib = rate + mix
        rate_sd, mix_sd = (_ratio_sd(data, sp, m, wbar, centred, k, d0.sum() > 0, inherited) if evidence
                           else (None, None))
        if rate_sd is not None or mix_sd is not None:
            sd = np.sqrt(np.nan_to_num(rate_sd if rate_sd is not None else 0.0) ** 2
                         + np.nan_to_num(mix_sd if mix_sd is not None else 0.0) ** 2)
            sd = np.where(sd > 0, sd, np.nan)
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
        if evidence:
            # a formula over counts (pipeline velocity): its segment's own value against the noise of its
            # components and how much that value usually moves; the part of the gap carries the same evidence
            value_sd = _formula_sd(sp, m, k)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.abs(np.asarray(sp.value) - np.asarray(sp.ref_value)) / value_sd if value_sd is not None else None
                sd = (np.where(np.isfinite(z) & (z > 0), np.abs(np.asarray(contrib, dtype="float64")) / z, np.nan)
                      if z is not None else None)
        if evidence:
            # a segment whose own value did not move ($0/day then and now) is no cause of anything, whatever
            # part the component path gives it: as far within its noise as a number can say (z 0), never
            # judged by size alone
            v_now, v_then = np.asarray(sp.value, dtype="float64"), np.asarray(sp.ref_value, dtype="float64")
            still = np.isfinite(v_now) & np.isfinite(v_then) & np.isclose(v_now, v_then, rtol=1e-9, atol=1e-12)
            if still.any():
                sd = np.where(still, np.finfo("float64").max, sd if sd is not None else np.nan)
    else:  # a running-period variant against a closed-period reference: plain deltas, not exact
        contrib, method, surprise, values, baselines = v1 - v0, "delta", zeros, v1, v0
    contrib = np.nan_to_num(np.asarray(contrib, dtype="float64"))
    tiny = 1e-9 * max(abs(view.value), abs(view.baseline), 1e-12)
    parts = []
    for i, s in enumerate(sp.segments):
        parts.append(SegmentPart(sp.dimension, s, float(contrib[i]), float(contrib[i] / gap) if abs(gap) > tiny else None,
                                 _f(values[i]), _f(baselines[i]), _f(mix[i]) if mix is not None else None,
                                 _f(rate[i]) if rate is not None else None, float(surprise[i]),
                                 _f(w1[i]) if w1 is not None else None, _f(w0[i]) if w0 is not None else None,
                                 sd=_f(sd[i]) if sd is not None else None,
                                 rate_sd=_f(rate_sd[i]) if rate_sd is not None else None, parent=parents[i]))
    rest = gap - float(contrib.sum())
    if abs(rest) > 1e-9 * max(abs(gap), abs(view.value), 1.0):
        label = PSEUDO[0] if target_mode else PSEUDO[1]
        parts.append(SegmentPart(sp.dimension, label, rest, rest / gap if abs(gap) > tiny else None))
    return method, parts


def _series(fn: ValueFn, history: dict[str, np.ndarray]) -> np.ndarray:
    """A value per earlier period (rows) and segment (columns) from the split's history."""
    shape = next(iter(history.values())).shape
    flat = {c: v.ravel() for c, v in history.items()}
    return np.asarray(fn(flat), dtype="float64").reshape(shape)


def _additive_sd(data: NodeData, sp: Split, base: np.ndarray, v0: np.ndarray, k: int) -> np.ndarray | None:
    """Noise of each segment's value − baseline for a sum: counting noise now and in the baseline
    (a target share carries its reference's noise, scaled), widened by the segment's history."""
    m = data.cur_metric
    fn = ValueFn(m.value, m.components)
    noise = None
    if ev.poisson_ok(m) and sp.cur_var:
        var = ev.delta_var(fn, sp.cur, sp.cur_var, m.components)
        if sp.ref is not None and sp.ref_var:
            var0 = ev.delta_var(fn, sp.ref, sp.ref_var, m.components)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(np.abs(v0) > 0, base / v0, 0.0)
            # under "nothing changed" this period's noise is the baseline's own, per period: a segment
            # expected to close one deal that closed none has a Poisson sd of 1, not of 0
            var = np.fmax(var, scale ** 2 * var0 * k) + scale ** 2 * var0
        noise = np.sqrt(var)
    hist = None
    if sp.history is not None:
        series = _series(fn, sp.history)
        usual, count = ev.usual_sd(series)
        if not ev.poisson_ok(m):  # a level: no counting noise to stand in for a flat history
            usual = ev.level_floor(usual, ev.column_mean(series))
        hist = (usual * math.sqrt(1.0 + 1.0 / k), count)
    return ev.combine(noise, hist)


def _formula_sd(sp: Split, m: Metric, k: int) -> np.ndarray | None:
    """Noise of each segment's value now − reference for a formula over sums and counts (pipeline
    velocity): its components' counting noise carried through the formula (delta method), now and in
    the reference, widened by the value's history. History alone let a pair cell of a deal or two a
    month, whose value sat still for months, read seven standard errors for one deal that slipped."""
    fn = ValueFn(m.value, m.components)
    noise = None
    if ev.poisson_ok(m) and sp.cur_var and sp.ref is not None and sp.ref_var:
        var1 = ev.delta_var(fn, sp.cur, sp.cur_var, m.components)
        var0 = ev.delta_var(fn, sp.ref, sp.ref_var, m.components)
        # under "nothing changed" this period's noise is at least one reference period's
        noise = np.sqrt(np.fmax(var1, var0 * k) + var0)
    hist = None
    if sp.history is not None:
        usual, count = ev.usual_sd(_series(fn, sp.history))
        hist = (usual * math.sqrt(1.0 + 1.0 / k), count)
    return ev.combine(noise, hist)


def _ratio_sd(data: NodeData, sp: Split, m: Metric, wbar: np.ndarray, centred: np.ndarray, k: int,
              has_ref: bool, inherited: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Noise of each segment's rate term w̄ (r1 − r0) and mix term (w1 − w0)(r̄ − R̄) of a ratio.

    `inherited`: for a dimension nested in another, the noise of the part of its parent segment's
    mix each child carries (see `_nested_terms`); it adds to the child's own mix noise."""
    num, den = m.ratio  # type: ignore[misc]
    rate_noise = mix_noise = log_sd = None
    run_effect = None  # a rate of rows among rows with a reference: its rate effect, for `_run_sd`
    cross = f"{num}{CROSS}"
    summed = not ev._is_count(m, den) and cross in sp.cur_var  # a ratio of two sums: Σ n·d read too
    if ev.poisson_ok(m) and (ev._is_count(m, den) or summed) and sp.cur_var:
        n1, d1 = sp.cur[num], sp.cur[den]
        if summed:
            sp = replace(sp, cur_var={**sp.cur_var, "__cov": sp.cur_var[cross]},
                         ref_var={**sp.ref_var, "__cov": sp.ref_var.get(cross, np.zeros(len(d1)))})
        var_r = np.nan_to_num(ev.ratio_var(n1, d1, sp.cur_var[num], sp.cur_var[den], sp.cur_var.get("__cov")))
        var_w = np.nan_to_num(ev.share_var(d1, sp.cur_var[den]))
        amounts = ev._is_count(m, den) and not ev._is_count(m, num)  # an average amount per row
        binomial = ev._is_count(m, den) and ev._is_count(m, num)  # a rate of rows among rows (win rate)
        if has_ref and sp.ref is not None and sp.ref_var:
            n0, d0 = sp.ref[num], sp.ref[den]
            var_r0 = np.nan_to_num(ev.ratio_var(n0, d0, sp.ref_var[num], sp.ref_var[den], sp.ref_var.get("__cov")))
            # Per row, the spread is read from whichever side shows more of it: three deals that all
            # happen to be small say little about how much deal sizes vary, the reference's many say
            # more (the null hypothesis is that nothing changed, spread included)
            rows0 = d0 * k  # the reference is an average over k periods' rows
            with np.errstate(divide="ignore", invalid="ignore"):
                unit = np.fmax(var_r * d1, var_r0 * rows0)
                if amounts:
                    unit = ev.spread_floor(unit, d1 + rows0, n0 / d0, n1 / d1)
                if binomial:
                    unit = ev.binomial_floor(unit, n1 + n0 * k, d1 + rows0)
                if summed:  # each side's rows around the common rate too (see `ratio_var`)
                    common = (n1 + n0 * k) / (d1 + rows0)
                    unit = np.fmax(unit, np.fmax(
                        np.nan_to_num(ev.ratio_var(n1, d1, sp.cur_var[num], sp.cur_var[den], sp.cur_var["__cov"],
                                                   common)) * d1,
                        np.nan_to_num(ev.ratio_var(n0, d0, sp.ref_var[num], sp.ref_var[den], sp.ref_var["__cov"],
                                                   common)) * rows0))
                var_r = np.where(d1 > 0, unit / d1, 0.0) + np.where(rows0 > 0, unit / rows0, 0.0)
            var_w = var_w + np.nan_to_num(ev.share_var(d0, sp.ref_var[den]))
        elif binomial:  # this period alone: 0 of 1 is no certainty either
            with np.errstate(divide="ignore", invalid="ignore"):
                var_r = np.where(d1 > 0, ev.binomial_floor(var_r * d1, n1, d1) / d1, 0.0)
        rate_noise = np.abs(wbar) * np.sqrt(var_r)
        if amounts and has_ref and sp.ref is not None:
            # an average of a few amounts against another: Student's t, not the normal law (`student_z`)
            with np.errstate(divide="ignore", invalid="ignore"):
                effect = np.abs(wbar * (n1 / d1 - sp.ref[num] / sp.ref[den]))
                z = ev.student_z(effect / rate_noise, d1 + sp.ref[den] * k - 2.0)
                rate_noise = np.where(np.isfinite(z) & (z > 0), effect / z, rate_noise)
        logs = [f"{num}{suffix}" for suffix in LOG_SUFFIXES]
        if amounts and has_ref and sp.ref is not None and all(c in sp.cur_var and c in sp.ref_var for c in logs):
            # an average amount: the log scale's evidence where it is the stronger, same direction
            hist = sp.history
            z = ev.log_z(tuple(sp.cur_var[c] for c in logs), tuple(sp.ref_var[c] * k for c in logs),
                         history=(hist[logs[0]], hist[logs[2]]) if hist is not None and logs[0] in hist
                         and logs[2] in hist else None, k=k)
            with np.errstate(divide="ignore", invalid="ignore"):
                change = n1 / d1 - sp.ref[num] / sp.ref[den]
                by_log = np.abs(wbar * change) / np.abs(z)
            log_sd = np.where(np.isfinite(by_log) & (by_log > 0) & (np.sign(z) == np.sign(change)), by_log, np.nan)
            long = sp.run_history
            if long is not None and all(c in long for c in logs):
                # a change that began a period or two ago, against the periods before it (`sustained_log`)
                run = ev.sustained_log(tuple(sp.cur_var[c] for c in logs), tuple(long[c] for c in logs))
                with np.errstate(divide="ignore", invalid="ignore"):
                    by_run = np.abs(wbar * change) / np.abs(run)
                by_run = np.where(np.isfinite(by_run) & (by_run > 0) & (np.sign(run) == np.sign(change)), by_run, np.nan)
                log_sd = np.fmin(log_sd, by_run)
        if binomial and has_ref and sp.ref is not None:
            # a few rows: the exact test's evidence, as the sd that gives it (see `evidence.exact_z`)
            z = ev.exact_z(n1, d1, sp.ref[num] * k, sp.ref[den] * k)
            with np.errstate(divide="ignore", invalid="ignore"):
                run_effect = np.abs(wbar * (n1 / d1 - sp.ref[num] / sp.ref[den]))
                exact = run_effect / np.abs(z)
            rate_noise = np.where(np.isfinite(exact) & (exact > 0), exact, rate_noise)
        mix_noise = np.abs(centred) * np.sqrt(var_w)
        if inherited is not None:
            mix_noise = np.sqrt(mix_noise ** 2 + np.nan_to_num(inherited) ** 2)
    rate_hist = mix_hist = None
    if sp.history is not None:
        hn, hd = sp.history[num], sp.history[den]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(hd > 0, hn / hd, np.nan)
            total = hd.sum(axis=1, keepdims=True)
            w = np.where(total > 0, hd / total, np.nan)
        widen = math.sqrt(1.0 + 1.0 / k)
        (usual_r, count), (usual_w, _) = ev.usual_sd(r), ev.usual_sd(w)
        rate_hist = (np.abs(wbar) * usual_r * widen, count)
        mix_hist = (np.abs(centred) * usual_w * widen, count)
    rate_sd = ev.combine(rate_noise, rate_hist)
    if run_effect is not None and sp.run_history is not None and rate_sd is not None:
        run_sd = _run_sd(sp, num, den, run_effect)
        rate_sd = np.where(np.isfinite(run_sd) & (run_sd > 0) & (run_sd < rate_sd), run_sd, rate_sd)
    if log_sd is not None and rate_sd is not None:  # the log scale's, history included, where it is stronger
        rate_sd = np.where(np.isfinite(log_sd) & (log_sd < rate_sd), log_sd, rate_sd)
    return rate_sd, ev.combine(mix_noise, mix_hist)


def _run_sd(sp: Split, num: str, den: str, effect: np.ndarray) -> np.ndarray:
    """The rate effect's sd as a change that began a period or two ago gives it (`evidence.sustained`):
    this period and the run's pooled against the segment's own periods before the run, widened by how
    much the segment moved in those periods only — the step itself is no wobble. nan where no run."""
    hn, hd = sp.run_history[num], sp.run_history[den]  # type: ignore[index]
    cur_n, cur_d = sp.cur[num], sp.cur[den]
    run = ev.sustained(cur_n, cur_d, hn, hd)
    out = np.full(len(cur_d), np.nan)
    periods = hn.shape[0]
    for length in sorted({int(x) for x in run.length[np.isfinite(run.z)]}):
        seg = np.isfinite(run.z) & (run.length == length)
        before = periods - length
        with np.errstate(divide="ignore", invalid="ignore"):
            usual, count = ev.usual_sd(np.where(hd[:before] > 0, hn[:before] / hd[:before], np.nan))
            pooled = (cur_n + hn[before:].sum(axis=0)) / (cur_d + hd[before:].sum(axis=0))
            delta = np.abs(pooled - run.base)
            sd = ev.combine(delta / np.abs(run.z), (usual * math.sqrt(1.0 / (length + 1) + 1.0 / before), count))
            z = delta / sd if sd is not None else np.full(len(cur_d), np.nan)
            out = np.where(seg & np.isfinite(z) & (z > 0), effect / z, out)
    return out


def _nested_terms(data: NodeData, child: str, parent: str, sp: Split, mr: att.MixRate
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str | None], np.ndarray] | None:
    """Rate and mix of a child dimension (reps) judged within its parent (their segments).

    R = Σ_g W_g R_g and R_g = Σ_i ω_i r_i: a rep's part is its rate W̄_g ω̄_i (r1 − r0), its mix
    *within* its segment W̄_g (ω1 − ω0)(r̄_i − R̄_g), and its share ω̄_i of the segment's own mix. A
    reshuffle among one segment's reps whose sizes are alike then weighs next to nothing, where the
    flat mix (w1 − w0)(r̄_i − R̄) of one big-deal rep losing share to another is large and cancels
    only in the sum. Exact: the parts still add up to R1 − R0.

    The last array is the noise of the share of its segment's mix each child carries: a segment's
    share of the volume moving is judged as the parent dimension judges it (its counts, widened by
    its history), and a rep who carries 40 % of it inherits 40 % of that noise too — without it a
    rep looked three standard errors out for a segment-level mix shift within normal variation.
    """
    pair = data.split((child, parent))
    den = data.cur_metric.ratio[1]  # type: ignore[index]
    if pair is None:
        return None
    weight: dict[str, tuple[float, str]] = {}
    for name, a, b in zip(pair.segments, pair.cur[den], pair.ref[den] if pair.ref is not None else pair.cur[den],
                          strict=True):
        c, p = name.split(PAIR_SEP)
        if c not in weight or a + b > weight[c][0]:
            weight[c] = (a + b, p)
    groups = [weight.get(s, (0.0, None))[1] for s in sp.segments]
    n = len(sp.segments)
    rate, mix, wbar, centred, inherited = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    w0, w1, r0, r1 = mr.w0, mr.w1, mr.r0, mr.r1
    names = sorted({g for g in groups if g is not None})
    idx = {g: np.array([i for i in range(n) if groups[i] == g]) for g in names}
    gw0 = np.array([w0[idx[g]].sum() for g in names])
    gw1 = np.array([w1[idx[g]].sum() for g in names])
    with np.errstate(divide="ignore", invalid="ignore"):
        gr0 = np.array([(w0[idx[g]] * r0[idx[g]]).sum() for g in names]) / gw0
        gr1 = np.array([(w1[idx[g]] * r1[idx[g]]).sum() for g in names]) / gw1
    top = att.mix_rate(gw0, gr0, gw1, gr1)
    if any(g is None for g in groups):
        return None
    group_mix_sd = _group_mix_sd(data, parent, names)
    for j, g in enumerate(names):
        i = idx[g]
        big_w = (top.w0[j] + top.w1[j]) / 2
        if top.w0[j] > 0 and top.w1[j] > 0:
            inner = att.mix_rate(w0[i] / top.w0[j], r0[i], w1[i] / top.w1[j], r1[i])
            rate[i] = big_w * inner.rate
            mix[i] = big_w * inner.mix
            share = (inner.w0 + inner.w1) / 2
            centred[i] = (inner.r0 + inner.r1) / 2 - (inner.total0 + inner.total1) / 2
        else:  # the segment appeared or vanished: all of it is its mix
            share = (w0[i] + w1[i]) / max(float((w0[i] + w1[i]).sum()), 1e-300)
            centred[i] = 0.0
        share = share / max(float(share.sum()), 1e-300)
        mix[i] += share * top.mix[j]
        inherited[i] = share * group_mix_sd[j]
        wbar[i] = big_w * share
    return rate, mix, wbar, centred, list(groups), inherited


def _group_mix_sd(data: NodeData, parent: str, names: list[str]) -> np.ndarray:
    """The noise of each parent segment's own mix term, judged as the parent dimension's split is
    (counting noise widened by how much the segment's share usually moves), in `names` order; zero
    where the parent's split is not there."""
    out = np.zeros(len(names))
    sp = data.split((parent,))
    m = data.cur_metric
    if sp is None or sp.ref is None or not sp.segments:
        return out
    num, den = m.ratio  # type: ignore[misc]
    n1, d1, n0, d0 = sp.cur[num], sp.cur[den], sp.ref[num], sp.ref[den]
    if d1.sum() <= 0 or d0.sum() <= 0:
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        mr = att.mix_rate(d0 / d0.sum(), n0 / d0, d1 / d1.sum(), n1 / d1)
    wbar = (mr.w0 + mr.w1) / 2
    centred = (mr.r0 + mr.r1) / 2 - (mr.total0 + mr.total1) / 2
    _rate_sd, mix_sd = _ratio_sd(data, sp, m, wbar, np.nan_to_num(centred), max(len(data.ref_periods), 1), True)
    if mix_sd is None:
        return out
    where = {s: i for i, s in enumerate(sp.segments)}
    for j, g in enumerate(names):
        if g in where:
            out[j] = float(np.nan_to_num(mix_sd[where[g]]))
    return out


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
        part = p.own_part
    return part / gap


def _almost_all(p: SegmentPart, real: Sequence[SegmentPart]) -> bool:
    """The segment is nearly the whole node, now and in the baseline: "USD (99 %) explains 99 %" of
    an ARR gap localises nothing. Its share of the denominator for a ratio, of the value for a sum."""
    if p.weight is not None and p.base_weight is not None:
        now, then = p.weight, p.base_weight
    else:
        t1 = sum(abs(q.value or 0.0) for q in real)
        t0 = sum(abs(q.baseline or 0.0) for q in real)
        if not t1 or not t0:
            return False
        now, then = abs(p.value or 0.0) / t1, abs(p.baseline or 0.0) / t0
    return min(now, then) >= ALMOST_ALL


def _rank(view: _NodeView, method: str, parts: list[SegmentPart], gap: float, basis: str,
          bound: float = 0.0) -> DimensionRank:
    """One dimension judged Adtributor-style on the segments whose effect stands out of its noise:
    a segment within normal variation explains nothing, however large its share."""
    real = [p for p in parts if p.segment not in PSEUDO]
    unnamed = tuple(p.segment for p in real if view.data.unnamed(p.dimension, p.segment) or _almost_all(p, real))
    judge = DimensionRank("", method, basis, 0.0, 0.0, 0.0, False, (), tuple(parts), (), bound)
    power = np.array([0.0 if p.segment in unnamed or not judge.evident(p) else _power(p, basis, gap) for p in real])
    surprise = np.array([p.surprise for p in real])
    cand = att.adtributor(power, surprise)
    chosen = tuple(real[i].segment for i in cand.chosen)
    ordered = sorted(parts, key=lambda p: -(p.share if p.share is not None else view.adverse(p.contribution)))
    return DimensionRank(parts[0].dimension if parts else "", method, basis, cand.explanatory_power, cand.surprise,
                         cand.score, cand.succeeded, chosen, tuple(ordered), unnamed, bound)


def _evidence(d: DimensionRank, gap: float) -> float:
    """How strongly the dimension's chosen (else its best evident adverse) segments stand out: Σ z²."""
    pool = [p for p in d.segments if p.segment in d.chosen] or [
        p for p in d.segments if p.segment not in PSEUDO and p.segment not in d.unnamed and d.evident(p)
        and _power(p, d.basis, gap) > 0]
    return sum((p.strength(d.basis) or 0.0) ** 2 for p in pool)


def _dimension_order(d: DimensionRank) -> tuple:
    """Evidence first (a dimension with a segment beyond its noise), Adtributor's verdict, then
    succinctness (fewest segments), then the evidence itself (Σ z² of the chosen), then surprise.

    Jensen–Shannon surprise is small for a large segment even when it changed a lot, so ranking on
    surprise alone prefers a small, correlated segment (an Enterprise-heavy channel) to the large
    one that holds the whole change (Enterprise): fewer segments explaining the change come first.
    Between dimensions whose segments explain alike, the one whose change is further out of its noise
    wins: five standard errors in Mid-Market beat one rep's two.
    """
    gap = next((p.contribution / p.share for p in d.segments if p.share), 0.0)
    evidence = _evidence(d, gap)
    some = any(d.evident(p) and _power(p, d.basis, gap) > 0 for p in d.segments
               if p.segment not in PSEUDO and p.segment not in d.unnamed)
    if d.succeeded:
        return (0, 0, len(d.chosen), -evidence, -d.surprise)
    top = max((_power(p, d.basis, gap) for p in d.segments if p.segment not in PSEUDO and p.segment not in d.unnamed
               and d.evident(p)), default=0.0)
    return (0 if some else 1, 1, 0, -top, -evidence)


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
    splits = {(d,): _segment_parts(view, versus, (d,)) for d in data.distinct}
    splits = {k: v for k, v in splits.items() if v is not None and v[1]}
    if not splits:
        return _SegmentAnalysis((), None, basis=segment_basis(view))
    bound = ev.z_bound(sum(1 for _, parts in splits.values() for p in parts if p.segment not in PSEUDO))
    basis = "rate" if any(v[0] == "mix_rate" for v in splits.values()) else "contribution"
    if basis == "rate" and not data.sets:
        splits = {k: (v[0], _conditioned(view, versus, k[0], v[1])) if v[0] == "mix_rate" else v
                  for k, v in splits.items()}

    by_rate: list[DimensionRank] = []

    def ranked(items: dict) -> list[DimensionRank]:
        # pairs are many more candidates than single dimensions: their bar counts them all
        every = ev.z_bound(sum(1 for _, parts in items.values() for p in parts if p.segment not in PSEUDO))
        bars = {k: bound if len(k) == 1 else every for k in items}
        out = [_rank(view, method, parts, gap, basis, bars[k]) for k, (method, parts) in items.items()]
        if basis == "rate" and not any(r.succeeded for r in out):
            by_rate[:] = sorted((r for r in out if PAIR_SEP not in r.dimension), key=_dimension_order)
            out = [_rank(view, method, parts, gap, "contribution", bars[k]) for k, (method, parts) in items.items()]
        return sorted(out, key=_dimension_order)

    ranks = ranked(splits)
    best_share = max((p.share or 0.0 for p in ranks[0].segments), default=0.0)
    if (best_share < PAIR_WHEN_TOP_BELOW or not ranks[0].succeeded) and not data.sets:
        for pair in att.pairs_of(data.distinct):
            res = _segment_parts(view, versus, pair)
            if res is not None and res[1]:
                splits[pair] = res
        splits = _sized_by_evidence(splits)
        ranks = ranked(splits)
    found = cause_set(view, versus) if ranks[0].method == "delta" else None
    if found is not None:  # a sum: the set of elements, each at its own depth (see `sets`)
        top = found[0]
    else:
        top = _refine(view, versus, _top_segment(ranks, gap), gap, ranks[0].basis, bound)
        top = _lift(view, versus, top, ranks, gap)
        if top is None and by_rate and _rate_found(by_rate[0], gap):
            # nothing stood out on rate and mix together (the mix is noise, or upstream's doing), but a
            # segment's own rate did: the node's own cause (a segment's deals closing smaller)
            top = _top_segment(by_rate, gap)
        if top is None or view.adverse(gap) <= 0:  # nothing to explain, or a gain: a loss under it first
            top = _hidden(view, [*by_rate, *ranks], gap) or top
    # "within normal variation" only where it is true of every split: a stock's cause set (no counting
    # noise) can find nothing while a dimension's own segment stands out by its history (Mid-Market, 3.1
    # standard errors) and that dimension's line names it — the words must not say both. A flow's cause set
    # judges the total's own noise first: a gap inside it is within normal variation, whatever one leaf did.
    # A level (a stock) whose whole gap is within the total's own normal variation is no place to name
    # a segment either: a trial's control month read "Pro yearly × visa (−$980) explains more than the
    # whole of the ARR gap" — one customer of a flat cell, in a gap the total makes every month.
    judged_by_set = found is not None and (ev.poisson_ok(data.cur_metric) or found[2])
    if found is not None and found[2] and not ev.poisson_ok(data.cur_metric):
        ranks = [replace(r, bound=math.inf, chosen=()) for r in ranks]  # each line says the total is quiet
    standing = not judged_by_set and any(r.evident(p) and (p.share or 0.0) >= NAMED_SHARE for r in ranks
                                         for p in r.segments if p.segment not in PSEUDO and p.segment not in r.unnamed)
    normal = top is None and not standing and any(p.sd is not None for r in ranks for p in r.segments)
    return _SegmentAnalysis(tuple(ranks), top, _twins_note(data), basis=segment_basis(view), normal=normal)


def _twins_note(data: NodeData) -> str:
    """Which columns were judged as another one because they split the rows exactly alike (`NodeData.twins`)."""
    by_first: dict[str, list[str]] = {}
    for twin, first in data.twins().items():
        by_first.setdefault(first, []).append(twin)
    said = [f"{' and '.join(twins)} split{'s' if len(twins) == 1 else ''} the rows exactly as {first} does: "
            f"judged once, as {first}" for first, twins in by_first.items()]
    return "; ".join(said)


def _sized_by_evidence(splits: dict) -> dict:
    """Where some splits have a noise model (the single dimensions' histories), a split with none at
    all (pairs of a formula metric, whose thin cells have no history) is not judged by size alone:
    its segments get z 0. "Warm deals owned by Jonas Weber: $0/day against $1,795/day in one month"
    was named while every single dimension was within its noise."""
    if not any(p.sd is not None for _, parts in splits.values() for p in parts):
        return splits
    huge = float(np.finfo("float64").max)
    return {k: (method, [p if p.segment in PSEUDO or p.sd is not None else replace(p, sd=huge) for p in parts])
            if all(p.sd is None for p in parts) else (method, parts) for k, (method, parts) in splits.items()}


def _rate_found(r: DimensionRank, gap: float) -> bool:
    """A segment's own rate stands out of its noise and carries a material part of the gap, though
    Adtributor's set did not reach its share (the rest of the gap is mix, whose cause is upstream):
    the rate finding is this node's own cause, and judging on rate and mix together would bury it."""
    return any(p.segment not in PSEUDO and p.segment not in r.unnamed and r.evident(p)
               and _power(p, r.basis, gap) >= att.EEP_THRESHOLD for p in r.segments)


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
    for other in view.data.distinct:
        if other == dim:
            continue
        res = _segment_parts(view, versus, (dim, other), evidence=False)
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
        p for p in best.segments if p.segment not in PSEUDO and p.segment not in best.unnamed and best.evident(p)
        and _power(p, best.basis, gap) > 0]
    return max(pool, key=lambda p: _power(p, best.basis, gap)) if pool else None


def _hidden(view: _NodeView, ranks: Sequence[DimensionRank], gap: float) -> SegmentPart | None:
    """A loss the total does not show: one segment's own change beyond its noise, adverse and larger
    than the node's whole adverse gap, because other segments made it up (Mid-Market's deals closing
    at half their size while Enterprise's grew, the average on target). The total is no reason to
    stay silent about it: the loss is real and has an owner; the gain that hid it may not last.
    Single dimensions only (a pair's cells are too many to search without a gap to explain). A ratio's
    segments are judged on their own rate too (`ranks` holds the rate-basis ranking first): Mid-Market's
    deals at half their size stood 7 standard errors out on rate while its growing share of the deals
    (the mix) offset half of it, leaving the whole part within noise."""
    best, best_z = None, 0.0
    room = max(view.adverse(gap), 0.0)
    for r in ranks:
        if PAIR_SEP in r.dimension:
            continue
        for p in r.segments:
            if p.segment in PSEUDO or p.segment in r.unnamed or not r.evident(p):
                continue
            z = p.strength(r.basis)
            part = _power(p, r.basis, 1.0)
            if z is None or view.adverse(part) <= room or abs(z) <= best_z:
                continue
            best, best_z = p, abs(z)
    return best


def _lift(view: _NodeView, versus: str, top: SegmentPart | None, ranks: Sequence[DimensionRank],
          gap: float) -> SegmentPart | None:
    """A cause is named at the level where it lives: a rep (a child of a nested dimension) gives way
    to its segment when the segment carries at least as much of the gap, with at least as much
    evidence — "Mid-Market, across all three reps" beats any one of them."""
    if top is None or top.parent is None or PAIR_SEP in top.dimension:
        return top
    parent_dim = view.data.nested().get(top.dimension)
    rank = next((r for r in ranks if r.dimension == parent_dim), None)
    if rank is None:
        return top
    up = next((p for p in rank.segments if p.segment == top.parent), None)
    basis = ranks[0].basis
    if up is None or not rank.evident(up) or _power(up, basis, gap) < _power(top, basis, gap):
        return top
    mine, theirs = abs(top.strength(basis) or 0.0), abs(up.strength(rank.basis) or 0.0)
    return up if theirs >= mine else top


def _same_rows(sub: SegmentPart, whole: SegmentPart) -> bool:
    """The sub-segment holds the same numbers as the segment it narrows, now and in the baseline: the
    second dimension follows the first (each plan sold in one segment) and names nothing more precisely
    ("SMB Starter (Monthly) customers" for SMB, whose customers are all on Starter (Monthly))."""
    pairs = ((sub.value, whole.value), (sub.baseline, whole.baseline), (sub.weight, whole.weight),
             (sub.base_weight, whole.base_weight), (sub.contribution, whole.contribution))
    return all((a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9,
                                                                                             abs_tol=1e-12))
               for a, b in pairs)


def _nearly_all_of(sub: SegmentPart, whole: SegmentPart) -> bool:
    """The sub-segment is nearly all of the segment it narrows, now and in the baseline (its share of
    the denominator for a ratio, of the value for a sum): "Enterprise Annual USD customers" said no
    more than "Enterprise Annual", whose customers nearly all pay in dollars."""
    if sub.weight is not None and whole.weight and sub.base_weight is not None and whole.base_weight:
        now, then = sub.weight / whole.weight, sub.base_weight / whole.base_weight
    elif sub.value is not None and whole.value and sub.baseline is not None and whole.baseline:
        now, then = sub.value / whole.value, sub.baseline / whole.baseline
    else:
        return False
    return min(now, then) >= ALMOST_ALL


def _refine(view: _NodeView, versus: str, top: SegmentPart | None, gap: float, basis: str,
            bound: float = 0.0) -> SegmentPart | None:
    """Narrows the top segment by a second dimension when one sub-segment carries most of it.

    "Enterprise" becomes "Enterprise × Dana Whitfield" when Dana's Enterprise deals hold at least
    `REFINE_SHARE` of Enterprise's part: same explanation, and it names who to talk to. The narrowing
    is a question asked only once the segment stood out (`bound`), among its own sub-segments, so its
    evidence bar counts those alone (hierarchical testing): a sub-segment beyond it, or, with no noise
    model (`bound` 0), any.
    """
    if top is None or PAIR_SEP in top.dimension or view.data.sets:
        return top
    own = _power(top, basis, gap)
    if own <= 0:
        return top
    inside: list[SegmentPart] = []
    for other in view.data.distinct:
        if other == top.dimension:
            continue
        res = _segment_parts(view, versus, (top.dimension, other))
        if res is None:
            continue
        inside += [p for p in res[1] if p.segment.split(PAIR_SEP)[0] == top.segment
                   and not view.data.unnamed(p.dimension, p.segment)]
    sub_bound = ev.z_bound(len(inside)) if bound else 0.0
    best, best_power = top, 0.0
    for p in inside:
        if not ev.evident(p.strength(basis), sub_bound) or _same_rows(p, top) or _nearly_all_of(p, top):
            continue
        pw = _power(p, basis, gap)
        if pw > best_power and (pw >= REFINE_SHARE * own or _rest_is_noise(p, top, basis, gap)):
            best, best_power = p, pw
    return best


def _effect(p: SegmentPart, basis: str) -> tuple[float, float | None]:
    """The part the ranking counts and its standard deviation (None without a noise model)."""
    if basis == "rate" and p.rate is not None:
        return p.rate, p.rate_sd
    return p.contribution, p.sd


def _rest_is_noise(sub: SegmentPart, top: SegmentPart, basis: str, gap: float) -> bool:
    """The segment without this sub-segment is within its noise, and the sub-segment stands out at
    least as far as the whole segment: the cause lives in the sub-segment even when it holds only half
    of the segment's part. One rep of three whose win rate fell from 28 % to 4 % carried 55 % of
    Enterprise's fall at 4.9 standard errors; the other two reps' 45 % was 1.5 standard errors of
    their own noise, and "Enterprise" named the segment for one person's problem. The rest's noise is
    the segment's less the sub-segment's (independent rows): counting rows twice would hide it."""
    (whole, sd_whole), (part, sd_part) = _effect(top, basis), _effect(sub, basis)
    z_whole, z_part = top.strength(basis), sub.strength(basis)
    if not sd_whole or not sd_part or z_whole is None or z_part is None or abs(z_part) < abs(z_whole):
        return False
    rest = whole - part
    if (rest >= 0) != (gap >= 0) and rest != 0:  # the rest of the segment went the other way: no cause there
        return True
    sd_rest = math.sqrt(sd_whole ** 2 - sd_part ** 2) if sd_whole > sd_part else sd_whole
    return abs(rest) < ev.Z_MIN * sd_rest


