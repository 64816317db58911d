"""Targets in bulk: a grid of every node's targets, per-period rows, CSV import, and spreading a year.

Spreading an annual target to months (seed 003 asks for annual, quarterly and monthly targets)
works evenly or by last year's shape, read from the workspace through the Engine. How a year is
spread depends on the metric's kind:

- flow (bookings, leads): the months add up to the annual total;
- ratio (win rate, NRR): every month carries the annual rate, or last year's seasonal swing
  around it, so the months average to the annual rate;
- stock (ARR, customers): the annual number is the level at year end; months climb to it from
  the last level, in equal steps or in last year's steps.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import Problem
from .metrics import CATALOGUE, Kind
from .periods import parse_period
from .plain import FORMULA_START, csv_text
from .tree import Target, Tree, normalise_period_key

GRAIN_FIELDS = ("annual", "quarterly", "monthly", "weekly")
TARGET_FIELDS = ("value", *GRAIN_FIELDS, "day90", "month12")
FIELD_HELP = {
    "value": "one number: per month for flows, the level itself for stocks and rates",
    "annual": "per year",
    "quarterly": "per quarter",
    "monthly": "per month",
    "weekly": "per week",
    "day90": "90-day goal (seed 002)",
    "month12": "12-month goal (seed 002)",
}
METHODS = ("even", "last_year")


def _clean_number(value: Any) -> float | None:
    """A typed target as a finite number; None for empty (and for NaN, ±inf, overflow: no target
    is better than one no period can meet). ValueError for text that is no number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value) if not isinstance(value, int) or abs(value) < 10**300 else math.inf
    else:
        text = str(value).strip().replace(",", "").replace("$", "").replace("_", "").replace(" ", "")
        if not text:
            return None
        if len(text) > 40:
            raise ValueError(f"{text[:20]}… is not a number")
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    return number if math.isfinite(number) else None


def target_fields(t: Target) -> dict[str, float | None]:
    """Field → number (None when unset) for the grid: value, per grain, 90-day, 12-month."""
    grains = dict(t.per_grain)
    return {"value": t.value, **{g: grains.get(g) for g in GRAIN_FIELDS}, "day90": t.day90, "month12": t.month12}


def with_fields(t: Target, **values: float | None) -> Target:
    """The target with some fields set (None clears one); per-period targets are kept."""
    unknown = set(values) - set(TARGET_FIELDS)
    if unknown:
        raise ValueError(f"unknown target field(s) {', '.join(sorted(unknown))} (fields: {', '.join(TARGET_FIELDS)})")
    current = {**target_fields(t), **values}
    if current == target_fields(t):
        return t  # unchanged: a suggested target stays marked as one
    return Target(
        value=current["value"],
        by_period=t.by_period,
        per_grain=tuple((g, float(current[g])) for g in GRAIN_FIELDS if current[g] is not None),  # type: ignore[arg-type]
        day90=current["day90"],
        month12=current["month12"],
    )


def target_rows(tree: Tree) -> list[dict[str, Any]]:
    """One row per node (tree order) with its target fields, for `st.data_editor`."""
    rows = []
    for n in tree.walk() if tree.nodes else []:
        rows.append(
            {
                "node": n.id,
                "label": n.label,
                "unit": n.shown_unit,
                **target_fields(n.target),
                "periods": len(n.target.by_period),
            }
        )
    seen = {r["node"] for r in rows}
    for n in tree.nodes:  # nodes not yet connected to the tree still get a row
        if n.id not in seen:
            rows.append(
                {
                    "node": n.id,
                    "label": n.label,
                    "unit": n.shown_unit,
                    **target_fields(n.target),
                    "periods": len(n.target.by_period),
                }
            )
    return rows


def apply_target_rows(tree: Tree, rows: Iterable[Mapping[str, Any]]) -> Tree:
    """The tree with the grid's target fields written back (rows are matched by `node`)."""
    by_node = {str(r["node"]): r for r in rows}
    nodes = []
    for n in tree.nodes:
        row = by_node.get(n.id)
        if row is not None:
            values = {f: _clean_number(row.get(f)) for f in TARGET_FIELDS if f in row}
            n = dataclasses.replace(n, target=with_fields(n.target, **values))
        nodes.append(n)
    return dataclasses.replace(tree, nodes=tuple(nodes))


def period_rows(tree: Tree, node_id: str) -> list[dict[str, Any]]:
    """The node's per-period targets as rows (period, target), in period order."""
    return [{"period": k, "target": v} for k, v in sorted(tree.node(node_id).target.by_period)]


def set_period_targets(tree: Tree, node_id: str, values: Mapping[str, float], *, replace: bool = False) -> Tree:
    """The tree with per-period targets merged into (or replacing) the node's."""
    node = tree.node(node_id)
    merged = {} if replace else dict(node.target.by_period)
    merged.update({str(k): float(v) for k, v in values.items()})
    by_period = tuple(sorted(merged.items()))
    # a person's numbers replace a suggestion: the "suggested" mark goes with it
    target = dataclasses.replace(node.target, by_period=by_period,
                                 suggested=node.target.suggested if by_period == node.target.by_period else None)
    return dataclasses.replace(
        tree, nodes=tuple(dataclasses.replace(n, target=target) if n.id == node_id else n for n in tree.nodes)
    )


def apply_period_rows(tree: Tree, node_id: str, rows: Iterable[Mapping[str, Any]]) -> tuple[Tree, list[Problem]]:
    """The tree with the node's per-period targets replaced by the rows; bad rows are reported, not kept."""
    values: dict[str, float] = {}
    problems = []
    for i, row in enumerate(rows, start=1):
        key = str(row.get("period") or "").strip()
        if not key or key.lower() == "nan":
            continue
        try:
            period = parse_period(key)
            number = _clean_number(row.get("target"))
        except Exception as exc:  # noqa: BLE001 - reported to the user
            problems.append(Problem(f"row {i}: {exc}", node=node_id, key="target.by_period"))
            continue
        if number is None:
            problems.append(
                Problem(f"row {i}: period {key} has no target number", node=node_id, key="target.by_period")
            )
            continue
        values[period.key] = number
    return set_period_targets(tree, node_id, values, replace=True), problems


def import_targets_csv(tree: Tree, text: str, source: str = "targets.csv") -> tuple[Tree, list[Problem]]:
    """The tree with targets from a CSV of `node, period, target` rows; every bad row named by its line.

    `period` is a period (2026-10, 2026-Q3, 2026-W41, 2026) or a target field (annual, quarterly,
    monthly, weekly, value, day90, month12). Targets may be written 1,200,000 or $1.2e6 or 25%.
    Nothing is applied when any row is bad, so a half-imported plan never goes live.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return tree, [Problem("the CSV is empty; expected a header node,period,target", file=source, line=1)]
    missing = [c for c in ("node", "period", "target") if c not in header]
    if missing:
        return tree, [
            Problem(
                f"the CSV needs columns node, period, target; missing {', '.join(missing)} "
                f"(header: {', '.join(header)})",
                file=source,
                line=1,
            )
        ]
    col = {c: header.index(c) for c in ("node", "period", "target")}
    ids = {n.id for n in tree.nodes}
    problems: list[Problem] = []
    periods: dict[str, dict[str, float]] = {}
    fields: dict[str, dict[str, float]] = {}
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            problems.append(Problem(f"expected {len(header)} values, got {len(row)}", file=source, line=line))
            continue
        node, period, raw = (_cell(row[col[c]]) for c in ("node", "period", "target"))
        if node not in ids:
            problems.append(
                Problem(
                    f"unknown node {node!r} (nodes: {', '.join(sorted(ids))})", file=source, line=line, column="node"
                )
            )
            continue
        try:
            number = _clean_number(raw)
        except ValueError:
            number = None
        if number is None:
            problems.append(
                Problem(
                    f"target must be a number such as 1200000 or 25%, got {raw!r}",
                    file=source,
                    line=line,
                    column="target",
                    node=node,
                )
            )
            continue
        if period.lower() in TARGET_FIELDS:
            fields.setdefault(node, {})[period.lower()] = number
            continue
        try:
            key = normalise_period_key(period)
        except Exception as exc:  # noqa: BLE001 - reported to the user
            problems.append(
                Problem(
                    f"{exc} (or a field: {', '.join(TARGET_FIELDS)})",
                    file=source,
                    line=line,
                    column="period",
                    node=node,
                )
            )
            continue
        periods.setdefault(node, {})[key] = number
    if problems:
        return tree, problems
    for node, values in periods.items():
        tree = set_period_targets(tree, node, values)
    for node, values in fields.items():
        tree = dataclasses.replace(
            tree,
            nodes=tuple(
                dataclasses.replace(n, target=with_fields(n.target, **values)) if n.id == node else n
                for n in tree.nodes
            ),
        )
    return tree, []


def targets_csv(tree: Tree) -> str:
    """Every target of the tree as `node, period, target` CSV (what `import_targets_csv` reads),
    written through `plain.csv_text` like every CSV the app offers (quoted, spreadsheet-safe)."""
    rows: list[tuple[str, str, float]] = []
    for n in tree.nodes:
        rows.extend((n.id, f, v) for f, v in target_fields(n.target).items() if v is not None)
        rows.extend((n.id, k, v) for k, v in n.target.by_period)
    return csv_text(["node", "period", "target"], rows)


def _cell(text: str) -> str:
    """A CSV cell as typed: without the apostrophe `plain.spreadsheet_cell` puts before a formula start."""
    text = text.strip()
    if text.startswith("'") and text[1:2] in FORMULA_START:
        text = text[1:]
    return text.strip()


# --- spreading a year to months ---------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Monthly targets for one year, and how they were made (the method may fall back to even)."""

    months: dict[str, float]
    method: str
    note: str = ""


def _months(year: int) -> list[str]:
    return [f"{year}-{m:02d}" for m in range(1, 13)]


def spread_annual(
    total: float,
    year: int,
    kind: Kind,
    method: str = "even",
    last_year: list[float | None] | None = None,
    start: float | None = None,
) -> Spread:
    """Monthly targets for `year` from an annual one.

    `last_year` holds the metric's monthly values of the year before (12 values; for a stock, 13:
    the December before that first), used by method `last_year`; `start` is a stock's level
    before the year (default: the last known level, else the target itself).
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    keys = _months(year)
    shape = list(last_year or [])
    usable = shape and all(v is not None and not math.isnan(v) for v in shape)
    note = ""
    if method == "last_year" and not usable:
        note = "last year's data does not cover every month: spread evenly instead"
        method = "even"
    if kind is Kind.FLOW:
        weights = [1.0] * 12
        if method == "last_year":
            weights = [float(v) for v in shape[-12:]]  # type: ignore[arg-type]
            if sum(weights) <= 0 or min(weights) < 0:
                weights, method, note = [1.0] * 12, "even", "last year's values do not add up to a positive total"
        s = sum(weights)
        return Spread({k: total * w / s for k, w in zip(keys, weights, strict=True)}, method, note)
    if kind is Kind.RATIO:
        if method == "last_year":
            vals = [float(v) for v in shape[-12:]]  # type: ignore[arg-type]
            mean = sum(vals) / 12
            if mean > 0:
                return Spread({k: total * v / mean for k, v in zip(keys, vals, strict=True)}, method, note)
            note, method = "last year's mean is zero: the annual rate is used for every month", "even"
        return Spread(dict.fromkeys(keys, float(total)), method, note)
    if kind is Kind.STOCK:
        if start is None:
            known = [float(v) for v in shape if v is not None and not math.isnan(v)]
            start = known[-1] if known else float(total)
        steps = [1.0] * 12
        if method == "last_year":
            if len(shape) >= 13:
                steps = [float(b) - float(a) for a, b in zip(shape[-13:-1], shape[-12:], strict=True)]  # type: ignore[arg-type]
            if len(shape) < 13 or sum(steps) <= 0 or min(steps) < 0:
                steps, method = [1.0] * 12, "even"
                note = "last year's level did not rise every month: equal steps instead"
        s = sum(steps)
        out, level = {}, float(start)
        for k, step in zip(keys, steps, strict=True):
            level += (total - start) * step / s
            out[k] = level
        out[keys[-1]] = float(total)
        return Spread(out, method, note)
    raise AssertionError(f"unhandled kind {kind!r}")


def next_year(engine) -> int:
    """The year a plan is usually made for: the one after the workspace's data (this year's next without data)."""
    from datetime import date

    from .errors import KpiTreeError

    try:
        return engine.as_of.year + 1
    except (AttributeError, KpiTreeError):
        return date.today().year + 1


def last_year_values(engine, tree: Tree, node_id: str, year: int) -> list[float | None]:
    """The node's monthly values of the year before `year` (a stock also gets the December before)."""
    from .periods import parse_period as _p

    node = tree.node(node_id)
    kind = CATALOGUE[node.metric].kind
    periods = [_p(k) for k in _months(year - 1)]
    if kind is Kind.STOCK:
        periods = [_p(f"{year - 2}-12"), *periods]
    with engine.session():
        values = engine.values(node, periods)
    return [values.get(p.key) for p in periods]


def spread_node(engine, tree: Tree, node_id: str, total: float, year: int, method: str = "even") -> tuple[Tree, Spread]:
    """The tree with `node_id`'s months of `year` set from an annual target, and the spread used."""
    node = tree.node(node_id)
    if node.metric not in CATALOGUE:
        raise ValueError(f"node {node_id!r} has no known metric yet: pick one before spreading its target")
    kind = CATALOGUE[node.metric].kind
    shape = last_year_values(engine, tree, node_id, year) if engine is not None else None
    spread = spread_annual(total, year, kind, method, shape)
    return set_period_targets(tree, node_id, spread.months), spread


# --- a running period's target by now ----------------------------------------------------------------
#
# A period's target is where the plan wants the number at the period's end. Early in a running year,
# ARR (a level on the as-of day) set against December's level is red by most of the year's planned
# growth though it may be exactly on plan. So a running period's stock is judged against the level
# planned for the as-of day: a path from the opening level through the monthly targets inside the
# period to the period's target, straight between two points (`path_level`). A rate that builds up
# over the period — retention compounds month by month, churn and expansion add up — is likewise
# period-to-date while it runs (NRR from the period's start to today), and is judged against the part
# of its target planned by now (`rate_by_now`). Flows use pace instead; other rates stand as they are.


def path_level(points: Sequence[tuple[int, float]], day: int) -> tuple[float, int]:
    """The level planned for `day` (days since the opening) on a path of (day, level) points in day
    order, straight between two points; and the index of the point the segment used starts at."""
    if not points:
        raise ValueError("a path needs at least one point")
    if day <= points[0][0]:
        return points[0][1], 0
    for i, ((d0, v0), (d1, v1)) in enumerate(zip(points[:-1], points[1:], strict=True)):
        if day <= d1:
            return v0 + (v1 - v0) * (day - d0) / (d1 - d0), i
    return points[-1][1], len(points) - 1


def rate_scale(value: float, rollup: str) -> float | None:
    """A rate on the scale on which its months add up (`Metric.rollup`): compound → log x, churn →
    −log(1 − x), sum → x; None for a value the scale cannot take (a retention ≤ 0, a churn ≥ 100 %)."""
    if rollup == "compound":
        return math.log(value) if value > 0 else None
    if rollup == "churn":
        return -math.log1p(-value) if value < 1 else None
    if rollup == "sum":
        return value
    raise ValueError(f"rollup {rollup!r} does not build up over a period")


def rate_by_now(target: float, rollup: str, share: float) -> float | None:
    """The part of a building-up rate's period target planned by now, when `share` (0..1) of it is
    (on the `rate_scale` where months add up): a 102.9 % NRR year is 101.4 % halfway, a 12 % churn
    year 6.2 %."""
    scaled = rate_scale(target, rollup)
    if scaled is None:
        return None
    part = scaled * share
    if rollup == "compound":
        return math.exp(part)
    if rollup == "churn":
        return -math.expm1(-part)
    return part
