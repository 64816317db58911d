"""Targets from history: each node's pre-period trend, extended forward month by month.

Used to give the demo tree a believable plan, and by anyone who wants a first set of targets
from their own data ("keep growing like the last year did") before they type real ones.

Every month of history is the catalogue's own value (`Engine.values`), so a plan means what the
evaluated number means. One month is not: the month the subscriptions start in. The ARR bridge's
pieces read each customer's MRR at the start of the month (m0: ARR at start, and new-logo ARR is
"m0 = 0 and never any MRR before"); before the data's first day m0 is unknown, not zero, so that
month's new-logo ARR is the whole book the export starts with and its opening balance is 0. A plan
resting on it asked a year later for the whole book again as new logos. Such months are no history
for these metrics (`opening_known`).

Nor are the months before a flow's or a rate's first representative month (`_representative`): an
export that starts on a day holds only the rows dated from it, so a number dated by a later date
(deals closed in a month, of an export holding the deals created since its first day) ramps up over
the first months. The trial's Pipedrive export had 9 and 49 closed deals in its first two months
against 80–100 afterwards, and the year-on-year rule read a flat business as +34 %.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import date

import numpy as np

from .evaluate import Engine
from .metrics import CATALOGUE, Kind, Metric
from .periods import Period, parse_period, trailing
from .tree import Node, Target, Tree

MAX_MONTHLY_GROWTH = 0.06
# A customer-level aggregate that reads the MRR at the baseline date (m0, the month ends before P of a
# 3-month baseline, or whether the customer had MRR before): the opening balance and the bridge's moves.
_READS_OPENING = re.compile(r"\bc\.(?:m0|me\d+|had_before)\b")
# How many months before P's own the baseline date falls in: m0 is the end of P−1, of P−12 for "12m".
_BASELINE_MONTHS = {"previous": 0, "3m": 2, "12m": 11}


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


def opening_known(m: Metric, p: Period, first_day: date | None) -> bool:
    """Whether `p`'s value of `m` is the catalogue's definition: False when `m` reads customers' MRR
    at a baseline date before the subscriptions' first day (there it is unknown, and the catalogue's
    m0 = 0 makes every customer of the book new)."""
    if first_day is None or not any(s.customer_level and s.entity == "customers"
                                    and any(_READS_OPENING.search(a) for a in s.components.values())
                                    for s in m.sources):
        return True
    return p.shift(-_BASELINE_MONTHS.get(m.baseline, 0)).start > first_day


def _representative(series: dict[str, float]) -> str | None:
    """The first month (key) of a chronological volume series that is representative of the data:
    the first whose volume is at least half the median month. None when nothing is cut.

    Why the series' own volume and not the table's row count: the ramp is in the date a number is
    dated by (close dates lag the created dates the export was cut on), so a table counted by its
    created date looks whole while its closed deals are not. Why half the median: a month of a
    steady business rarely falls below half its typical month, while one the export covers partly
    (a mid-month start, or a sales cycle's worth of closes missing) does; a business growing at the
    plan's cap (6 %/month) for 24 months starts just above half its median month, so growth is not
    cut. Only leading months are cut: a low month later on is history (a slow December), not a
    partial export. A series with a
    negative month (a net change) is no volume and is left whole."""
    values = list(series.values())
    if len(values) < 3 or min(values) < 0:
        return None
    floor = float(np.median(values)) / 2
    first = next((k for k, v in series.items() if v >= floor), None)
    return first if first != next(iter(series)) else None


def _volumes(engine: Engine, node: Node, m: Metric, months: list[Period], values: dict[str, float | None],
             upto: Period) -> dict[str, float]:
    """The monthly volume (closed months up to `upto`) the node's value rests on: a flow's own value,
    a rate's denominator (the rows it is read over: a rate of a month holding few deals is no more
    representative). The rate's components come from the query `Engine.values` ran (cached)."""
    closed = tuple(p for p in months if p.is_complete(engine.as_of))
    keep = {p.key for p in closed if p <= upto}
    if m.kind is Kind.FLOW:
        return {p.key: float(v) for p in closed if p.key in keep and (v := values.get(p.key)) is not None}
    if m.kind is Kind.RATIO and m.ratio is not None and closed:
        df = engine.query(m.name, closed, filters=node.filter)
        if m.ratio[1] in df.columns:
            return {str(k): float(v) for k, v in zip(df["pkey"], df[m.ratio[1]], strict=True)
                    if str(k) in keep and v is not None and not (isinstance(v, float) and math.isnan(v))}
    return {}


def _pct(rate: float) -> str:
    """A growth rate the way the rule is read out: "+2.1 %"."""
    return f"{rate * 100:+.1f} %"


def plan_targets(engine: Engine, tree: Tree, baseline_end: Period, through: Period, history: int = 24,
                 window: int = 6, *, min_months: int = 1, mark: bool = False) -> Tree:
    """A copy of the tree whose monthly targets continue its history up to `baseline_end`.

    Flows: the same month a year earlier × the year-on-year growth of the `window` months ending
    at `baseline_end` (so quarter-end pushes and slow Decembers are in the plan); where no month
    a year earlier exists, the trailing `window`-month mean grown at the fitted monthly growth.
    Stocks: the last known level grown at the fitted monthly growth. Ratios: the trailing mean,
    which rates do not compound. Nothing after
    `baseline_end` feeds a target, so problems that start later show up against the plan. The
    month the subscriptions start in is no history for what reads the opening balance (new-logo
    ARR, ARR at start, NRR: see the module's doc), nor are, for flows and rates, the months before
    the first representative one (`_representative`).

    `min_months`: the fewest months with a value in the trailing window a target may rest on; a
    node with fewer keeps no number at all (never a made-up one). `mark=True` marks every target
    as a suggestion with its rule in words (`Target.suggested`), leaves out a flow's first,
    partly covered month, and gives a node with too little history an empty target saying why —
    what a workspace's suggested tree shows.
    """
    months = trailing(through, history + (through.start.year - baseline_end.start.year) * 12
                      + through.start.month - baseline_end.start.month)
    engine.prefetch_nodes([n for n in tree.nodes if n.metric in CATALOGUE], months)
    nodes = []
    for node in tree.nodes:
        target = _plan_node(engine, node, months, baseline_end, window, min_months, mark)
        nodes.append(node if target is None else replace(node, target=target))
    return replace(tree, nodes=tuple(nodes))


def _plan_node(engine: Engine, node: Node, months: list[Period], baseline_end: Period, window: int,
               min_months: int, mark: bool) -> Target | None:
    """The node's planned target (see `plan_targets`); None keeps the node's own."""
    m = CATALOGUE[node.metric]
    values = engine.values(node, months)
    known = {p.key: values[p.key] for p in months if p <= baseline_end and values.get(p.key) is not None}
    first_day = engine.coverage(m.table)[0]
    known = {k: v for k, v in known.items() if opening_known(m, parse_period(k), first_day)}
    if mark and m.kind is Kind.FLOW and first_day is not None:
        # a suggestion never rests on the month the data starts in: a part-month undercounts a flow
        known = {k: v for k, v in known.items() if parse_period(k).start >= first_day}
    volumes = _volumes(engine, node, m, months, values, baseline_end) if known and m.kind is not Kind.STOCK else {}
    start = _representative(dict(sorted(volumes.items())))
    if start is not None:
        known = {k: v for k, v in known.items() if k >= start}
    recent_keys = [p.key for p in trailing(baseline_end, window) if p.key in known]
    if not known or len(recent_keys) < min_months:
        if not mark:
            return None
        have = f"{len(recent_keys)} month{'s' if len(recent_keys) != 1 else ''}"
        return Target(suggested=f"no target: {have} with data in the {window} months up to {baseline_end.key}, "
                                f"{max(min_months, 1)} needed")
    unit = node.shown_unit
    recent = [known[k] for k in recent_keys]
    year_before = [known.get(p.shift(-12).key) for p in trailing(baseline_end, window)]
    yoy = None
    if m.kind is not Kind.RATIO and recent and all(v for v in year_before) and len(recent) == window:
        yoy = min(max(sum(recent) / sum(year_before), 1.0), 1 + 12 * MAX_MONTHLY_GROWTH)  # type: ignore[arg-type]
    growth = 0.0 if m.kind is Kind.RATIO else _growth(list(known.values())[-12:])
    by_period: list[tuple[str, float]] = []
    rule = ""
    for p in months:
        cutoff = min(p.previous(), baseline_end)
        past = [known[q.key] for q in trailing(cutoff, window) if q.key in known]
        if min_months > 1 and len(past) < min_months:
            continue
        last_year = known.get(p.shift(-12).key)
        span = f"trailing {min(len(past), window)} months"
        if m.kind is Kind.RATIO:
            target = float(np.mean(past)) if past else None
            rule = f"{span}' mean (a rate does not compound)"
        elif m.kind is Kind.STOCK and cutoff.key in known:
            ahead = (p.start.year - cutoff.start.year) * 12 + p.start.month - cutoff.start.month
            target = known[cutoff.key] * (1 + growth) ** ahead
            rule = f"last month's level, {_pct(growth)}/month"
        elif yoy is not None and last_year is not None:
            target = last_year * yoy
            rule = f"same month last year {_pct(yoy - 1)} (the last {window} months against a year earlier)"
        elif past:
            ahead = (p.start.year - cutoff.start.year) * 12 + p.start.month - cutoff.start.month
            target = float(np.mean(past)) * (1 + growth) ** (ahead + (len(past) - 1) / 2)
            rule = f"{span}, {_pct(growth)}/month"
        else:
            target = None
        if target is not None:
            by_period.append((p.key, _nice(target, unit)))
    if not by_period:
        return Target(suggested=f"no target: no month of history up to {baseline_end.key}") if mark else None
    if mark:  # months before enough history have no target at all, rather than the last month's
        return Target(by_period=tuple(by_period), suggested=rule)
    return Target(value=by_period[-1][1], by_period=tuple(by_period))
