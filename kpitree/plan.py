"""Targets from history: each node's pre-period trend, extended forward month by month.

Used to give the demo tree a believable plan, and by anyone who wants a first set of targets
from their own data ("keep growing like the last year did") before they type real ones.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .evaluate import Engine
from .metrics import CATALOGUE, Kind
from .periods import Period, trailing
from .tree import Target, Tree

MAX_MONTHLY_GROWTH = 0.06


def _nice(value: float, unit: str) -> float:
    """Round a target the way a person would write it (3 significant digits, whole counts)."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    if unit == "percent":
        return round(value, 3)
    digits = 3 - int(math.floor(math.log10(abs(value)))) - 1
    rounded = round(value, digits)
    return float(round(rounded)) if abs(rounded) >= 10 else rounded


def _growth(values: list[float]) -> float:
    """Monthly growth from a log-linear fit; 0 when the series is not positive throughout."""
    ys = np.array(values, dtype=float)
    if len(ys) < 4 or (ys <= 0).any():
        return 0.0
    slope = np.polyfit(np.arange(len(ys)), np.log(ys), 1)[0]
    return float(min(max(math.expm1(slope), 0.0), MAX_MONTHLY_GROWTH))


def plan_targets(engine: Engine, tree: Tree, baseline_end: Period, through: Period, history: int = 24,
                 window: int = 6) -> Tree:
    """A copy of the tree whose monthly targets continue its history up to `baseline_end`.

    Flows: the same month a year earlier × the year-on-year growth of the `window` months ending
    at `baseline_end` (so quarter-end pushes and slow Decembers are in the plan); where no month
    a year earlier exists, the trailing `window`-month mean grown at the fitted monthly growth.
    Stocks: the last known level grown at the fitted monthly growth. Ratios: the trailing mean,
    which rates do not compound. Nothing after
    `baseline_end` feeds a target, so problems that start later show up against the plan.
    """
    months = trailing(through, history + (through.start.year - baseline_end.start.year) * 12
                      + through.start.month - baseline_end.start.month)
    nodes = []
    for node in tree.nodes:
        m = CATALOGUE[node.metric]
        values = engine.values(node, months)
        known = {p.key: values[p.key] for p in months if p <= baseline_end and values.get(p.key) is not None}
        if not known:
            nodes.append(node)
            continue
        unit = node.shown_unit
        recent = [known[p.key] for p in trailing(baseline_end, window) if p.key in known]
        year_before = [known.get(p.shift(-12).key) for p in trailing(baseline_end, window)]
        yoy = None
        if m.kind is not Kind.RATIO and recent and all(v for v in year_before) and len(recent) == window:
            yoy = min(max(sum(recent) / sum(year_before), 1.0), 1 + 12 * MAX_MONTHLY_GROWTH)  # type: ignore[arg-type]
        growth = 0.0 if m.kind is Kind.RATIO else _growth(list(known.values())[-12:])
        by_period: list[tuple[str, float]] = []
        for p in months:
            cutoff = min(p.previous(), baseline_end)
            past = [known[q.key] for q in trailing(cutoff, window) if q.key in known]
            last_year = known.get(p.shift(-12).key)
            if m.kind is Kind.RATIO:
                target = float(np.mean(past)) if past else None
            elif m.kind is Kind.STOCK and cutoff.key in known:
                ahead = (p.start.year - cutoff.start.year) * 12 + p.start.month - cutoff.start.month
                target = known[cutoff.key] * (1 + growth) ** ahead
            elif yoy is not None and last_year is not None:
                target = last_year * yoy
            elif past:
                ahead = (p.start.year - cutoff.start.year) * 12 + p.start.month - cutoff.start.month
                target = float(np.mean(past)) * (1 + growth) ** (ahead + (len(past) - 1) / 2)
            else:
                target = None
            if target is not None:
                by_period.append((p.key, _nice(target, unit)))
        if not by_period:
            nodes.append(node)
            continue
        nodes.append(replace(node, target=Target(value=by_period[-1][1], by_period=tuple(by_period))))
    return replace(tree, nodes=tuple(nodes))
