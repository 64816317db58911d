"""The data: one SQL scan per source for a node and its children, as finest cells.

A node and its children are read together: one scan per (table, join condition) — each node's
filter moves into its aggregates' FILTER clause — grouped by the finest combination of the drill
dimensions, for the current period and the candidate reference periods at once. Every split
(totals, a dimension, a pair) is then a `bincount` over those cells (`NodeData.split`). Metrics
whose components do not add up over cells (per-customer MRR movements, DISTINCT counts) use the
catalogue's own query per dimension (grouping-set rows, marked `ALL`). Results are cached per
workspace data version (`_RESULTS`). `reference_periods` says where, against a target, segment
structure comes from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd

from .. import attribution as att
from ..cache import ResultCache
from ..errors import QueryError
from ..evaluate import Engine, flow_share, target_for
from ..localise import nested_dimensions
from ..metrics import (
    Kind,
    Metric,
    MetricQuery,
    Source,
    customer_cells_sql,
    dimension_sql,
    filter_sql,
    metric,
    periods_cte,
    source_filters,
)
from ..periods import Period
from ..tree import Node, Tree
from . import evidence as ev
from .model import ACCOUNT_DIMENSIONS, ALL, NAMED_EMPTY_MIN_FILL, NONE, PAIR_SEP, REFERENCE_PERIODS
from .values import ValueFn

if TYPE_CHECKING:
    from .analysis import _Analysis

_CELL_DIM = re.compile(r"d\d+")  # a cells query's dimension columns (d0, d1, …)
WOBBLE_PERIODS = 6  # recent earlier periods (at least) that say how much each segment usually moves
HISTORY_PERIODS = 12  # earlier periods read for a change that began a period or two ago (`evidence.sustained`)
_ADDITIVE = re.compile(r"^\s*(count\(\*\)|sum\()", re.IGNORECASE)
_RESULTS = ResultCache(1024)  # query results and built node cells, per data version


def _additive_agg(agg: str) -> bool:
    """Sums and counts add up over segments; DISTINCT counts and max() do not."""
    return bool(_ADDITIVE.match(agg)) and "distinct" not in agg.lower()


def available_dimensions(engine: Engine, tree: Tree, node: Node) -> tuple[str, ...]:
    """The node's drill dimensions every source table of its metric has a value of (or gets via
    accounts); a column empty in every row is no dimension (see `Engine.dimensions`)."""
    m = metric(node.metric)
    wanted = list(tree.dimensions_for(node))
    if m.table == "subscriptions" and "accounts" in engine.loaded:
        wanted += [d for d in ACCOUNT_DIMENSIONS if d not in wanted]
    return tuple(engine.dimensions(m, wanted))


@dataclass
class _Source:
    """One scan request for a node: a source of its metric (cells), or the whole metric (batch)."""

    node: str
    role: str  # cur, ref or both
    metric: Metric
    index: int  # which source of the metric (cells mode)
    filters: tuple
    dims: tuple[str, ...]
    periods: tuple[tuple[str, Period], ...]  # (label, period), label cur or ref
    mode: str  # cells: finest cells of additive components; batch: catalogue query per dimension

    @property
    def src(self) -> Source:
        return self.metric.sources[self.index]

    def key(self) -> tuple:
        if self.mode == "batch":
            return ("batch", tuple(self.filters), self.dims, self.periods)
        # rows of one table joined one way are read once, whatever each node filters: the filters
        # move into each node's aggregates (FILTER (WHERE …)), see `_run_cells`
        s = self.src
        if s.customer_level:  # one customers relation per baseline and filter, see `_run_cells`
            return ("customers", self.metric.baseline, self.where, self.dims, self.periods)
        return ("cells", s.table, s.on, self.dims, self.periods)

    where: tuple = ()  # the filters this source applies (cells mode): see `metrics.source_filters`


_FILTERED = re.compile(r"^(?P<agg>.+?) FILTER \(WHERE (?P<cond>.+)\)$", re.DOTALL)


def _with_filter(agg: str, cond: str) -> str:
    """`sum(x) FILTER (WHERE c)` → `sum(x) FILTER (WHERE (c) AND (cond))`; a plain aggregate gets one."""
    m = _FILTERED.match(agg.strip())
    if m:
        return f"{m['agg']} FILTER (WHERE ({m['cond']}) AND ({cond}))"
    return f"{agg} FILTER (WHERE {cond})"


SQ = "__sq"  # suffix of a sum component's sum of squared terms


CROSS = "__x"  # suffix of a ratio numerator's sum of products with its denominator, per row

# An average amount per row (won amount / won deals): per cell, the sum of ln(amount), of its square
# and the count of positive amounts, for the log-scale test of a proportional change (`evidence.log_z`)
LOG, LOG2, LOGN = "__ln", "__ln2", "__lnn"
LOG_SUFFIXES = (LOG, LOG2, LOGN)


def _logs(r: _Source, aliases: list[tuple[_Source, str, str]]) -> list[tuple[str, str]]:
    """(alias, aggregate) of the log sums of a ratio whose numerator sums an amount over the rows its
    denominator counts (an average deal size); none for any other metric."""
    ratio = r.metric.ratio
    if not ratio or ratio[0] not in r.src.components or ratio[1] not in r.src.components:
        return []
    num, den = r.src.components[ratio[0]], r.src.components[ratio[1]]
    parts = _sum_parts(num)
    if parts is None or not den.strip().lower().startswith("count("):
        return []
    x, cond = parts
    alias = next((a for m_, c, a in aliases if m_ is r and c == ratio[0]), None)
    if alias is None:
        return []
    where = f"({x}) > 0" + (f" AND ({cond})" if cond else "")
    return [(f"{alias}{LOG}", f"sum(ln({x})) FILTER (WHERE {where})"),
            (f"{alias}{LOG2}", f"sum(ln({x}) * ln({x})) FILTER (WHERE {where})"),
            (f"{alias}{LOGN}", f"count(*) FILTER (WHERE {where})")]


def _significant(x: np.ndarray, digits: int = 12) -> np.ndarray:
    """`x` rounded to `digits` significant digits (nan and zero kept)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(np.isfinite(x) & (x != 0), np.floor(np.log10(np.abs(x))), 0.0)
        scale = 10.0 ** (digits - 1 - mag)
        return np.where(np.isfinite(x), np.round(x * scale) / scale, x)


def _sum_parts(agg: str) -> tuple[str, str] | None:
    """`sum(x) [FILTER (WHERE c)]` → (x, c or ""); None for anything else."""
    m = _FILTERED.match(agg.strip())
    body, cond = (m["agg"], m["cond"]) if m else (agg.strip(), "")
    if not body.lower().startswith("sum(") or not body.endswith(")"):
        return None
    depth = 0
    for i, ch in enumerate(body[3:], 3):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return (body[4:i], cond) if i == len(body) - 1 else None
    return None


def _cross(num: str, den: str) -> str | None:
    """Σ n_i · d_i over the rows both count in, for a ratio of two sums (NRR: kept / base per
    customer): with Σ n² and Σ d², the delta method's Var(n / d) = Σ (n_i − r d_i)² / d²."""
    a, b = _sum_parts(num), _sum_parts(den)
    if a is None or b is None:
        return None
    conds = [c for c in (a[1], b[1]) if c]
    where = f" FILTER (WHERE {' AND '.join(f'({c})' for c in conds)})" if conds else ""
    return f"sum(({a[0]}) * ({b[0]})){where}"


def _squared(agg: str) -> str | None:
    """`sum(x) [FILTER (…)]` → `sum((x) * (x)) [FILTER (…)]`: the variance of a sum of a Poisson
    number of rows is the sum of their squares (a compound Poisson sum). None for a count, whose
    variance is the count itself."""
    text = agg.strip()
    if not text.lower().startswith("sum("):
        return None
    depth, end = 0, -1
    for i, ch in enumerate(text[3:], 3):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            end = i
            break
    if end < 0:
        return None
    inner, rest = text[4:end], text[end + 1:]
    return f"sum(({inner}) * ({inner})){rest}"


def _cells_ok(m: Metric) -> bool:
    """Finest cells work when every component adds up over segments and is plain SQL over the rows.

    Not for per-customer (entity) sources, DISTINCT counts or max(), definitions with workspace
    parameters (the catalogue binds them), or sources exempt from some filter or split column:
    those take the catalogue's own query, one per dimension.
    """
    if m.parameters:
        return False
    return all((not s.customer_level or s.entity == "customers") and not s.exempt
               and all(_additive_agg(a) for a in s.components.values()) for s in m.sources)


def _compute_metrics(con: duckdb.DuckDBPyConnection, q: MetricQuery, names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The catalogue's own query for several metrics sharing periods, filter and split."""
    from .. import metrics as catalogue

    many = getattr(catalogue, "compute_many", None)
    if many is not None:
        return many(con, q, list(names))
    return {n: catalogue.compute(con, MetricQuery(n, q.periods, q.as_of, q.dimension, q.filters, q.columns))
            for n in names}


ON_PLAN_Z = 1.0  # a period off its target by less than its own standard error went to plan (at 2, months
# that already carried a segment's problem passed for on plan and hid it: the demo's Mid-Market discount)


def _total_sd(m: Metric, comps: dict[str, float]) -> float | None:
    """The standard deviation of a period's total value from its components' counting noise (a count's
    variance is itself, a sum's its squared terms: `SQ`), by the delta method; None for a level carried
    over (a stock has no counting noise) or where the components say nothing."""
    if not ev.poisson_ok(m) or not m.components:
        return None
    names = tuple(m.components)
    values = {c: np.array([comps.get(c, 0.0)]) for c in names}
    var = {c: comps.get(f"{c}{SQ}", comps.get(c, 0.0) if ev._is_count(m, c) else 0.0) for c in names}
    if m.ratio and all(c in values for c in m.ratio) and ev._is_count(m, m.ratio[1]):
        num, den = m.ratio
        v = ev.ratio_var(values[num], values[den], np.array([var[num]]), np.array([var[den]]))
        out = float(v[0]) if v.size else math.nan
    else:
        out = float(ev.delta_var(ValueFn(m.value, m.components), values, {c: np.array([v]) for c, v in var.items()},
                                 names)[0])
    return math.sqrt(out) if math.isfinite(out) and out > 0 else None


def _period_totals(plan: _Plan, frames: dict[int, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """Per period key fetched (candidates and "cur"): the node's total components.

    A source without rows in a period (no deal closed in a month that had open deals) adds zeros:
    every component of the node's metrics is there for every period any source has.
    """
    out: dict[str, dict[str, float]] = {}
    for s in plan.sources:
        df = frames.get(id(s))
        if df is None:
            return {}
        if s.mode == "batch" and plan.dims:
            df = df[np.logical_and.reduce([df[d] == ALL for d in plan.dims])]
        # components and a sum's squared terms (its noise, for `_total_sd`); a count's noise is itself
        comps = [c for c in df.columns if c != "pkey" and c not in plan.dims]
        keys, at = np.unique(df["pkey"].astype(str).to_numpy(), return_inverse=True)
        table = df[comps].to_numpy(dtype="float64", na_value=0.0) if comps else np.zeros((len(df), 0))
        sums = [np.bincount(at, weights=table[:, j], minlength=len(keys)) for j in range(len(comps))]
        for i, key in enumerate(keys):
            out.setdefault(str(key), {}).update({c: float(sums[j][i]) for j, c in enumerate(comps)})
    every = (*plan.cur_metric.components, *plan.ref_metric.components)
    for comps in out.values():
        for c in every:
            comps.setdefault(c, 0.0)
    return out


class _Session:
    """One explain call's access to the workspace: one connection, a memo of node data."""

    def __init__(self, engine: Engine, tree: Tree, period: Period, reference: Reference, hold: bool = True) -> None:
        self.engine = engine
        self.hold = hold
        self.tree = tree
        self.period = period
        self.reference = reference
        self.as_of = engine.as_of
        self.running = not period.is_complete(self.as_of)
        self.elapsed = period.elapsed_fraction(self.as_of)
        self.data: dict[str, NodeData] = {}  # reference chosen for the batch (its parent and children)
        self._own: dict[str, NodeData] = {}  # reference chosen by the node itself, for its segments
        self._raw: dict[str, tuple[_Plan, dict[int, pd.DataFrame]]] = {}
        self._totals: dict[str, dict[str, dict[str, float]]] = {}  # node → period key → components
        self._stack = ExitStack()
        self._con: duckdb.DuckDBPyConnection | None = None
        self.analyses: dict[str, _Analysis] = {}  # node id → its analysis (versus is fixed per session)
        self._partial: set[str] = set()  # nodes loaded without segments

    def close(self) -> None:
        self._stack.close()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The session's connection, opened on first use and held to the end; or, in the
        background (`hold=False`), one per query, so the workspace's lock is never held long
        while someone clicks."""
        if not self.hold:
            with self.engine.workspace.connect() as con:
                yield con
            return
        if self._con is None:
            self._con = self._stack.enter_context(self.engine.workspace.connect())
        yield self._con

    def _cached(self, key: tuple, run: Callable[[], Any]) -> Any:
        return _RESULTS.get_or_run((str(self.engine.workspace.db_path), self.engine.version, *key), run)

    def _execute(self, text: str, params: list[Any]) -> pd.DataFrame:
        def run() -> pd.DataFrame:
            try:
                with self.connection() as con:
                    df = con.execute(text, params).df()
            except duckdb.Error as exc:
                raise QueryError(f"explain query failed: {str(exc).splitlines()[0]}") from None
            # DuckDB returns a parallel aggregate's groups in any order: sorted (once, then cached), the
            # same data gives the same segment order, the same ties and the same sentences on every run
            keys = [c for c in df.columns if c == "pkey" or _CELL_DIM.fullmatch(c)]
            df = df.sort_values(keys, kind="stable", ignore_index=True) if keys else df
            # … and a parallel sum's last bits differ from run to run: twelve significant digits are
            # more than any amount or count needs, and make the same data give the same numbers
            for c in df.columns:
                if c not in keys and pd.api.types.is_float_dtype(df[c]):
                    df[c] = _significant(df[c].to_numpy(dtype="float64"))
            return df

        return self._cached(("sql", text, tuple(params)), run)

    def fetch(self, nodes: Sequence[Node]) -> None:
        """Loads every node not yet loaded, sharing one scan per (table, join, filter) among them.

        `nodes[0]` is the batch's parent: its closeness to target picks the reference period of
        every node loaded here, so that its children's segments share one structure. Only the
        parent and its formula's children need their segments; influence children are judged on
        their totals, so where segments cost a catalogue query per dimension they are loaded
        without (and again with segments if the walk goes on from them).
        """
        parent = nodes[0]
        full = {parent.id, *(att.Formula.parse(parent.formula).names if parent.formula else ())}
        todo = [n for n in dict.fromkeys(nodes) if n.id not in self.data or (n.id in self._partial and n.id in full)]
        if not todo:
            return
        plans: dict[str, _Plan] = {}
        groups: dict[tuple, list[_Source]] = {}
        for node in todo:
            try:
                plan = self._plan(node, totals_only=node.id not in full)
            except QueryError as exc:  # e.g. a filter on a column this workspace does not have
                plan = _Plan(node, metric(node.metric), metric(node.metric), (), (), str(exc), False)
            plans[node.id] = plan
            for r in plan.sources:
                groups.setdefault(r.key(), []).append(r)
        frames: dict[int, pd.DataFrame] = {}
        for members in groups.values():
            try:
                out = self._run_batch(members) if members[0].mode == "batch" else self._run_cells(members)
            except QueryError as exc:
                for r in members:
                    plans[r.node].note = str(exc)
                continue
            for r in members:
                frames[id(r)] = out[r.node, r.role, r.index]
        for node in todo:
            self._partial.discard(node.id)
            if plans[node.id].partial:
                self._partial.add(node.id)
            self._own.pop(node.id, None)
            self._raw[node.id] = (plans[node.id], frames)
            self._totals[node.id] = _period_totals(plans[node.id], frames)
        parent = nodes[0]
        # a product formula is attributed within segments from the reference period: pick the one
        # where its children were closest to their targets, so little is left between the two
        exact = [self.tree.node(c) for c in att.Formula.parse(parent.formula).names] if parent.formula else []
        chosen = self._choose(parent, judges=exact)
        for node in todo:
            self.data[node.id] = self.build(node, plans[node.id], frames, chosen)

    def own(self, node: Node) -> NodeData:
        """The node's data with the reference it would choose itself (for its own segment drill-down)."""
        if node.id not in self._own:
            plan, frames = self._raw[node.id]
            chosen = self._choose(node)
            batch = self.data[node.id]
            same = chosen == batch.ref_periods or not self.reference.choose
            self._own[node.id] = batch if same else self.build(node, plan, frames, chosen)
        return self._own[node.id]

    def build(self, node: Node, plan: _Plan, frames: dict[int, pd.DataFrame], reference: tuple[Period, ...]
              ) -> NodeData:
        """`NodeData.build`, kept across clicks like the queries it reads: the same node, plan and
        reference over the same data version give the same cells (a third of a warm click otherwise)."""
        key = ("node", self.node_key(node), self.period.key, str(self.as_of), self.running, self.elapsed,
               tuple(p.key for p in reference), tuple(s.key() + (s.role, s.index) for s in plan.sources), plan.note)
        if any(id(s) not in frames for s in plan.sources):
            return NodeData.build(node, plan, frames, self, reference)
        return self._cached(key, lambda: NodeData.build(node, plan, frames, self, reference))

    @staticmethod
    def node_key(node: Node) -> Any:
        """The node itself where it hashes (a frozen dataclass), else its repr."""
        try:
            hash(node)
            return node
        except TypeError:
            return repr(node)

    def _choose(self, parent: Node, judges: Sequence[Node] = ()) -> tuple[Period, ...]:
        """The reference period(s): fixed, or every candidate in which each of `judges` (default: the
        parent) was within its amber band of target; failing that, the one where they were closest
        to their targets — mean |ln(value / target)| over them."""
        ref = self.reference
        if not ref.choose:
            return ref.periods
        judges = [j for j in judges if j.id in self._totals] or [parent]
        best, best_gap = None, math.inf
        on_plan: list[Period] = []
        for p in ref.periods:  # most recent first; last year last
            gaps, within = [], True
            for j in judges:
                target = target_for(j, p)
                comps = self._totals.get(j.id, {}).get(p.key)
                m = metric(j.metric)
                value = float(ValueFn(m.value, m.components)(comps)) if comps is not None else None
                if value is None or not math.isfinite(value) or not target or value / target <= 0:
                    break
                gaps.append(abs(math.log(value / target)))
                within &= self._on_plan(j, value, target, comps)  # type: ignore[arg-type]
            else:
                if within:
                    on_plan.append(p)
                if gaps and sum(gaps) / len(gaps) < best_gap - 1e-12:
                    best, best_gap = p, sum(gaps) / len(gaps)
        if on_plan:
            return tuple(on_plan)
        return (best,) if best is not None else ref.periods[-1:]

    def _on_plan(self, judge: Node, value: float, target: float, comps: dict[str, float]) -> bool:
        """The period went to plan: within the amber band, or off the target by less than `ON_PLAN_Z` times the
        total's own counting noise. A churn rate of 2.4 % over 600 customers moves 0.6 pp from chance alone;
        an amber band of a tenth of it (0.24 pp) let one month in six count as on plan, and a segment judged
        against one month's handful of churns could not stand out (13 churned where 5 were usual: 2.2
        standard errors against that month, 3.9 against the year)."""
        amber = judge.amber if judge.amber is not None else self.engine.settings.amber_threshold
        if abs(math.log(value / target)) <= math.log1p(amber):
            return True
        sd = _total_sd(metric(judge.metric), comps)
        return sd is not None and abs(value - target) <= ON_PLAN_Z * sd

    def _plan(self, node: Node, totals_only: bool = False) -> _Plan:
        m = metric(node.metric)
        cur_m = metric(m.running) if self.running and m.running else m
        plan = _Plan(node, cur_m, m, (), (), "", False)
        lacking = self.engine.missing(node)
        if lacking is not None:
            plan.note = f"{node.label} {lacking.reason()}"
            return plan
        dims = available_dimensions(self.engine, self.tree, node)
        cells = _cells_ok(cur_m) and _cells_ok(m)
        if totals_only and not cells and dims:
            dims, plan.partial = (), True  # a catalogue query per dimension, for segments nobody reads
        plan.dims = dims
        plan.covered = self.engine.covers(m, self.period)
        wanted = self.reference.periods if not cells else (*self.reference.periods, *self.reference.history)
        ref = tuple(p for p in dict.fromkeys(wanted) if self.engine.covers(m, p))
        plan.ref = ref
        roles: list[tuple[str, Metric, tuple[tuple[str, Period], ...]]] = []
        if cur_m is m and ref:
            roles.append(("both", m, (*((p.key, p) for p in ref), ("cur", self.period))))
        else:
            roles.append(("cur", cur_m, (("cur", self.period),)))
            if ref:
                roles.append(("ref", m, tuple((p.key, p) for p in ref)))
        for role, mm, periods in roles:
            if not cells:
                plan.sources.append(_Source(node.id, role, mm, -1, node.filter, dims, periods, "batch"))
                continue
            for i, _ in enumerate(mm.sources):
                where = source_filters(mm, mm.sources[i], tuple(node.filter), self.engine.columns)
                plan.sources.append(_Source(node.id, role, mm, i, node.filter, dims, periods, "cells", where))
        return plan

    def _run_cells(self, members: list[_Source]) -> dict[tuple[str, str, int], pd.DataFrame]:
        """One SQL scan for all members (same table, join, filter, dimensions, periods), finest cells."""
        first = members[0]
        s = first.src
        dims = first.dims
        periods = [p for _, p in first.periods]
        labels = {p.key: label for label, p in first.periods}
        if s.customer_level:
            return self._run_customer_cells(members, labels)
        params: list[Any] = []

        def condition(r: _Source, into: list[Any]) -> str:
            q = MetricQuery(r.metric.name, tuple(periods), self.as_of, None, r.where, self.engine.columns)
            return filter_sql(q, s.table, into)

        aliases: list[tuple[_Source, str, str]] = []  # (member, component, alias)
        comps_sql: list[str] = []
        for r in members:
            for c, agg in r.src.components.items():
                alias = f"c{len(aliases)}"
                aliases.append((r, c, alias))
                squared = _squared(agg)  # a sum's noise: the sum of its squared terms (see `_Rows.var`)
                for text, name in ((agg, alias), (squared, f"{alias}{SQ}")):
                    if text is None:
                        continue
                    if r.where:  # each copy binds its own parameters, in the order they appear
                        text = _with_filter(text, condition(r, params))
                    comps_sql.append(f"COALESCE({text}, 0) AS {name}")
            for alias, text in [*_crosses(r, aliases), *_logs(r, aliases)]:
                if r.where:
                    text = _with_filter(text, condition(r, params))
                comps_sql.append(f"COALESCE({text}, 0) AS {alias}")
        dim_alias = [f"d{i}" for i in range(len(dims))]
        q = MetricQuery(first.metric.name, tuple(periods), self.as_of, None, (), self.engine.columns)
        exprs, joins = [], []
        for d in dims:
            e, j = dimension_sql(MetricQuery(q.metric, q.periods, q.as_of, d, (), q.columns), s.table)
            exprs.append(e)
            if j and j not in joins:
                joins.append(j)
        wheres = list(dict.fromkeys(r.where for r in members))
        where = "TRUE"
        if all(wheres):  # every node filters: read only rows some node keeps
            where = " OR ".join(f"({condition(next(r for r in members if r.where == w), params)})" for w in wheres)
        sel_dims = "".join(f"{e} AS {a}, " for e, a in zip(exprs, dim_alias, strict=True))
        text = (f"WITH {periods_cte(periods, self.as_of)} "
                f"SELECT P.pkey AS pkey, {sel_dims}{', '.join(comps_sql)} "
                f"FROM P JOIN {s.table} AS t ON {s.on}{''.join(joins)} WHERE {where} "
                f"GROUP BY {', '.join(['P.pkey', *exprs])}")
        return _per_member(self._execute(text, params), members, aliases, labels)

    def _run_customer_cells(self, members: list[_Source], labels: dict[str, str]
                            ) -> dict[tuple[str, str, int], pd.DataFrame]:
        """Finest cells of per-customer MRR movements: one scan for every member and dimension.

        Members share baseline and filter (the batch key), so one customers relation serves all.
        """
        first = members[0]
        dims = first.dims
        q = MetricQuery(first.metric.name, tuple(p for _, p in first.periods), self.as_of, None, first.where,
                        self.engine.columns)
        # One alias per (member, component): nrr's `kept` is not grr's `kept` (same name, other SQL).
        aliases = [(r, c, f"c{i}") for i, (r, c) in enumerate((r, c) for r in members for c in r.src.components)]
        wanted = [(a, r.src.components[c]) for r, c, a in aliases]
        wanted += [(f"{a}{SQ}", sq) for a, agg in list(wanted) if (sq := _squared(agg)) is not None]
        wanted += [x for r in members for x in _crosses(r, aliases)]
        text, params = customer_cells_sql(q, first.metric, dims, wanted)
        return _per_member(self._execute(text, params), members, aliases, labels)

    def _compute(self, q: MetricQuery, names: Sequence[str]) -> dict[str, pd.DataFrame]:
        with self.connection() as con:
            return _compute_metrics(con, q, names)

    def _run_batch(self, members: list[_Source]) -> dict[tuple[str, str, int], pd.DataFrame]:
        """The catalogue's query, once for the totals and once per dimension, for all members' metrics.

        Used where finest cells cannot be summed (per-customer MRR movements, DISTINCT counts):
        each split is computed by the catalogue itself, as rows of grouping sets.
        """
        first = members[0]
        dims = first.dims
        periods = tuple(p for _, p in first.periods)
        labels = {p.key: label for label, p in first.periods}
        names = list(dict.fromkeys(r.metric.name for r in members))
        parts: dict[str, list[pd.DataFrame]] = {n: [] for n in names}
        for dim in (None, *dims):
            q = MetricQuery(names[0], periods, self.as_of, dim, tuple(first.filters), self.engine.columns,
                            getattr(self.engine, "params", ()))
            result = self._cached(("batch", tuple(names), q), lambda q=q: self._compute(q, names))
            for n in names:
                df = result[n].drop(columns="value").rename(columns={"segment": "__segment"})
                df = df.assign(**{d: (df["__segment"].astype(str) if d == dim else ALL) for d in dims})
                parts[n].append(df.drop(columns="__segment"))
        out: dict[tuple[str, str, int], pd.DataFrame] = {}
        for r in members:
            df = pd.concat(parts[r.metric.name], ignore_index=True)
            df["pkey"] = df["pkey"].map(labels)
            df = df.sort_values(["pkey", *dims], kind="stable", ignore_index=True)  # any order in, one order out
            out[r.node, r.role, r.index] = df[["pkey", *dims, *r.metric.components]]
        return out


def _crosses(r: _Source, aliases: list[tuple[_Source, str, str]]) -> list[tuple[str, str]]:
    """(alias, aggregate) of the member's ratio cross product, when its numerator and denominator are
    both sums of this source (see `_cross`)."""
    ratio = r.metric.ratio
    if not ratio or ratio[0] not in r.src.components or ratio[1] not in r.src.components:
        return []
    text = _cross(r.src.components[ratio[0]], r.src.components[ratio[1]])
    alias = next((a for m_, c, a in aliases if m_ is r and c == ratio[0]), None)
    return [(f"{alias}{CROSS}", text)] if text is not None and alias is not None else []


def _per_member(df: pd.DataFrame, members: list[_Source], aliases: list[tuple[_Source, str, str]],
                labels: dict[str, str]) -> dict[tuple[str, str, int], pd.DataFrame]:
    """Splits one cells query (columns pkey, d0…, aliases) into each member's frame: pkey as the
    member's period label, dimensions by name, its components by name."""
    dims = members[0].dims
    base = df.rename(columns={f"d{i}": d for i, d in enumerate(dims)})
    base["pkey"] = base["pkey"].map(labels)
    out: dict[tuple[str, str, int], pd.DataFrame] = {}
    for r in members:
        cols = {alias: c for (m_, c, alias) in aliases if m_ is r}
        cols.update({f"{alias}{suffix}": f"{c}{suffix}" for alias, c in list(cols.items())
                     for suffix in (SQ, CROSS, *LOG_SUFFIXES) if f"{alias}{suffix}" in base})
        out[r.node, r.role, r.index] = base[["pkey", *dims, *cols]].rename(columns=cols)
    return out


@dataclass
class _Plan:
    node: Node
    cur_metric: Metric
    ref_metric: Metric
    dims: tuple[str, ...]
    ref: tuple[Period, ...]
    note: str
    covered: bool
    sources: list[_Source] = field(default_factory=list)
    partial: bool = False  # loaded without its segments (see `_Session.fetch`)


@dataclass
class _Rows:
    """A role's rows: integer codes per dimension (−1: rolled up), component values, and each
    component's noise variance per cell (a count's is the count, a sum's the sum of its squared
    terms: Poisson and compound Poisson); `period` indexes `NodeData.history` (history rows only)."""

    codes: dict[str, np.ndarray]
    comps: dict[str, np.ndarray]
    var: dict[str, np.ndarray] = field(default_factory=dict)
    period: np.ndarray | None = None


@dataclass(frozen=True)
class Split:
    """A node's metric per segment of one dimension or a pair, current and reference side by side."""

    dimension: str
    segments: tuple[str, ...]
    cur: dict[str, np.ndarray]  # components per segment
    ref: dict[str, np.ndarray] | None
    value: np.ndarray  # current value per segment (nan where undefined)
    ref_value: np.ndarray  # reference value per segment (nan where undefined or absent)
    cur_var: dict[str, np.ndarray] = field(default_factory=dict)  # noise variance of each component
    ref_var: dict[str, np.ndarray] = field(default_factory=dict)  # … of the reference average
    history: dict[str, np.ndarray] | None = None  # components per earlier period (rows) and segment
    run_history: dict[str, np.ndarray] | None = None  # … over every earlier period read (`HISTORY_PERIODS`)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Two code columns over the same rows group them alike: as many distinct pairs as values of each."""
    if len(a) == 0:
        return False
    pairs = a.astype(np.int64) * (int(b.max()) + 2) + (b.astype(np.int64) + 1)
    n = len(np.unique(pairs))
    return n == len(np.unique(a)) == len(np.unique(b))


@dataclass
class NodeData:
    """A node's metric components per finest cell (or per grouping set), current and reference.

    Dimension values are factorised once into integer codes shared by both sides, so that every
    split (totals, a dimension, a pair) is a `bincount` over the cells.
    """

    node: Node
    cur_metric: Metric
    ref_metric: Metric
    dims: tuple[str, ...]
    sets: bool
    labels: dict[str, np.ndarray]
    cur: _Rows | None
    ref: _Rows | None  # averaged over the reference periods
    ref_periods: tuple[Period, ...]
    note: str = ""
    blank: frozenset[str] = frozenset()  # dimensions whose "(none)" is never named (NAMED_EMPTY_MIN_FILL)
    hist: _Rows | None = None  # every earlier period fetched, one row per period and cell
    history: tuple[Period, ...] = ()  # … those periods, oldest first
    wobble_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rows of `history`
    # that say how much a segment usually moves (`_wobble_rows`)
    _nested: dict[str, str] | None = field(default=None, repr=False)
    _parents: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _twins: dict[str, str] | None = field(default=None, repr=False)

    def twins(self) -> dict[str, str]:
        """Dimensions that split this node's rows exactly as an earlier one does — each value of one is
        one value of the other: `created_by` and `modified_by` beside `owner`, `plan_code` beside `plan`
        beside `segment` in real exports — as twin → the earlier one. A twin says nothing its first
        does not, yet each split judged raises the bar every segment must clear (`evidence.z_bound`) and
        the same answer was listed three times. Published in one assignment, as `nested`."""
        found = self._twins
        if found is None:
            found = {}
            roles = [r for r in (self.cur, self.ref, self.hist) if r is not None]
            if not self.sets and len(self.dims) > 1 and roles:
                codes = {d: np.concatenate([r.codes[d] for r in roles]) for d in self.dims}
                for i, d in enumerate(self.dims):
                    first = next((f for f in self.dims[:i] if f not in found and _same_partition(codes[f], codes[d])),
                                 None)
                    if first is not None:
                        found[d] = first
            self._twins = found
        return found

    @property
    def distinct(self) -> tuple[str, ...]:
        """The drill dimensions without their twins (see `twins`): the splits the explanation judges."""
        twins = self.twins()
        return tuple(d for d in self.dims if d not in twins)

    def parents(self, child: str) -> dict[str, str]:
        """For a nested dimension: each of its values → the parent value holding most of its rows."""
        parent = self.nested().get(child)
        if parent is None:
            return {}
        found = self._parents.get(child)
        if found is None:  # computed whole, then published (see `nested`)
            best: dict[str, tuple[float, str]] = {}
            sp = self.split((child, parent))
            if sp is not None:
                weight = np.sum([np.abs(v) for v in sp.cur.values()], axis=0)
                if sp.ref is not None:
                    weight = weight + np.sum([np.abs(v) for v in sp.ref.values()], axis=0)
                for name, w in zip(sp.segments, weight, strict=True):
                    c, p = name.split(PAIR_SEP)
                    if c not in best or w > best[c][0]:
                        best[c] = (float(w), p)
            found = self._parents[child] = {c: p for c, (_, p) in best.items()}
        return found

    def nested(self) -> dict[str, str]:
        """Dimensions that live inside another one in this node's rows — each rep sells in one
        segment, each CSM covers one segment's accounts — as child → parent (`localise.nested_dimensions`:
        ≥ 95 % of every child value's rows, weighted by their components, in one parent value).

        Built into a local and published in one assignment: a NodeData is cached (`_Session.build`) and
        read by every session's thread at once, and one that saw a half-built answer (an empty dict set
        before the work) would attribute the reps without their segments — other numbers than serial."""
        found = self._nested
        if found is None:
            found = {}
            rows = self.cur
            if rows is not None and not self.sets and len(self.dims) > 1 and rows.comps:
                weight = np.sum([np.abs(v) for v in rows.comps.values()], axis=0)
                frame = pd.DataFrame({d: self.labels[d][rows.codes[d]] for d in self.dims})
                frame["actual"], frame["expected"] = weight, 0.0
                found = nested_dimensions(frame, self.dims)
            self._nested = found
        return found

    @classmethod
    def build(cls, node: Node, plan: _Plan, frames: dict[int, pd.DataFrame], session: _Session,
              reference: tuple[Period, ...]) -> NodeData:
        """The node's cells, with the reference side averaged over `reference` (those it has data for)."""
        empty = cls(node, plan.cur_metric, plan.ref_metric, (), False, {}, None, None, (), plan.note)
        ref_periods = tuple(p for p in reference if p in plan.ref)
        ref_keys = {p.key for p in ref_periods}
        if not plan.sources or any(id(s) not in frames for s in plan.sources):
            return empty  # no data, or its query failed: the plan's note says why
        sets = any(s.mode == "batch" for s in plan.sources)
        dims = plan.dims
        history = tuple(sorted(plan.ref, key=lambda p: p.start)) if not sets else ()
        pool_keys = {p.key for p in plan.ref}  # every earlier period fetched: the reference is some of them
        per_role: dict[str, list[pd.DataFrame]] = {"cur": [], "pool": []}
        for s in plan.sources:
            df = frames[id(s)]
            if s.role in ("cur", "both"):
                per_role["cur"].append(df[df["pkey"] == "cur"])
            if s.role in ("ref", "both"):
                per_role["pool"].append(df[df["pkey"].isin(pool_keys)])
        cur_df = pd.concat(per_role["cur"], ignore_index=True) if plan.covered and per_role["cur"] else None
        pool_df = pd.concat(per_role["pool"], ignore_index=True) if plan.ref and per_role["pool"] else None
        ref_mask = pool_df["pkey"].isin(ref_keys).to_numpy() if pool_df is not None and ref_periods else None
        labels: dict[str, np.ndarray] = {}
        codes: dict[str, dict[str, np.ndarray]] = {"cur": {}, "ref": {}, "hist": {}}
        for d in dims:
            parts = [f[d].astype(str).to_numpy() for f in (cur_df, pool_df) if f is not None]
            both = np.concatenate(parts) if parts else np.array([], dtype=object)
            rolled = both == ALL
            code, uniq = pd.factorize(np.where(rolled, "", both))
            code = np.where(rolled, -1, code)
            # factorize numbered "" too if present; keep labels dense by re-factorising the real ones
            real = np.unique(code[code >= 0])
            remap = np.full(len(uniq) + 1, -1)
            remap[real] = np.arange(len(real))
            code = np.where(code >= 0, remap[np.maximum(code, 0)], -1)
            labels[d] = np.asarray(uniq, dtype=object)[real]
            n_cur = len(cur_df) if cur_df is not None else 0
            codes["cur"][d], pooled = code[:n_cur], code[n_cur:]
            codes["hist"][d] = pooled
            if ref_mask is not None:
                codes["ref"][d] = pooled[ref_mask]
        comps_cur = list(plan.cur_metric.components)
        comps_ref = list(plan.ref_metric.components)

        def rows(df: pd.DataFrame | None, role: str, comps: list[str], scale: float,
                 mask: np.ndarray | None = None) -> _Rows | None:
            if df is None:
                return None
            noise = [] if sets else [f"{c}{SQ}" if f"{c}{SQ}" in df else c for c in comps]
            wanted = list(dict.fromkeys([*comps, *noise]))
            table = df.reindex(columns=wanted).to_numpy(dtype="float64", na_value=0.0)
            if mask is not None:
                table = table[mask]
            at = {c: i for i, c in enumerate(wanted)}
            values = {c: table[:, at[c]] * scale for c in comps}
            var = {c: table[:, at[n]] * scale ** 2 for c, n in zip(comps, noise, strict=True)} if noise else {}
            for c in comps:
                if not sets and f"{c}{CROSS}" in df:
                    cross = df[f"{c}{CROSS}"].to_numpy(dtype="float64", na_value=0.0)
                    var[f"{c}{CROSS}"] = (cross[mask] if mask is not None else cross) * scale ** 2
                for suffix in LOG_SUFFIXES if not sets else ():
                    if f"{c}{suffix}" in df:  # sums like the components: scaled as they are, not squared
                        col = df[f"{c}{suffix}"].to_numpy(dtype="float64", na_value=0.0)
                        var[f"{c}{suffix}"] = (col[mask] if mask is not None else col) * scale
            return _Rows(codes[role], values, var)

        pace = 1.0
        if session.running and plan.cur_metric.kind is Kind.FLOW:
            share = flow_share(node, session.period, session.as_of)[0]
            pace = 1.0 / share if share > 0 else 1.0  # projected to the end of the period, as evaluate's pace
        cur = rows(cur_df, "cur", comps_cur, pace)
        ref = rows(pool_df if ref_mask is not None else None, "ref", comps_ref, 1.0 / max(len(ref_periods), 1),
                   ref_mask)
        hist = rows(pool_df if history else None, "hist", comps_ref, 1.0)
        if hist is not None and pool_df is not None:
            order = {p.key: i for i, p in enumerate(history)}
            hist.period = pool_df["pkey"].map(order).to_numpy(dtype=np.int64)
        blank = frozenset(d for d in dims if session.engine.fill(plan.cur_metric.table, d) < NAMED_EMPTY_MIN_FILL)
        history = history if hist is not None else ()
        return cls(node, plan.cur_metric, plan.ref_metric, dims, sets, labels, cur, ref, ref_periods, plan.note, blank,
                   hist, history, _wobble_rows(history, session.period, session.reference.periods))

    def unnamed(self, dimension: str, segment: str) -> bool:
        """The segment is rows without a value of a mostly empty dimension: never named as a cause."""
        return any(v == NONE and d in self.blank
                   for d, v in zip(dimension.split(PAIR_SEP), segment.split(PAIR_SEP), strict=False))

    def _rows(self, role: str) -> _Rows | None:
        return self.cur if role == "cur" else self.ref if role == "ref" else self.hist

    def _metric(self, role: str) -> Metric:
        return self.cur_metric if role == "cur" else self.ref_metric

    def total(self, role: str) -> dict[str, float] | None:
        rows = self._rows(role)
        if rows is None:
            return None
        if self.sets and self.dims:
            mask = np.logical_and.reduce([rows.codes[d] < 0 for d in self.dims])
            return {c: float(v[mask].sum()) for c, v in rows.comps.items()}
        return {c: float(v.sum()) for c, v in rows.comps.items()}

    def value(self, role: str) -> float | None:
        comps = self.total(role)
        if comps is None:
            return None
        m = self._metric(role)
        v = float(ValueFn(m.value, m.components)(comps))
        return v if math.isfinite(v) else None

    def _sums(self, dims: Sequence[str], role: str) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        rows = self._rows(role)
        sizes = [len(self.labels[d]) for d in dims]
        size = int(np.prod(sizes)) if sizes else 1
        if rows is None:
            return None
        if role == "hist":  # one block of segments per earlier period
            key = np.zeros(len(rows.period), dtype=np.int64) if rows.period is not None else None
            if key is None:
                return None
            for d, n in zip(dims, sizes, strict=True):
                key = key * n + rows.codes[d]
            n_p = len(self.history)
            key = rows.period * size + key
            sums = {c: np.bincount(key, weights=v, minlength=n_p * size).reshape(n_p, size)
                    for c, v in [*rows.comps.items(),
                                 *((c, v) for c, v in rows.var.items() if c.endswith(LOG_SUFFIXES))]}
            return sums, np.ones(size, dtype=bool)
        if self.sets:
            if len(dims) != 1:
                return None
            mask = rows.codes[dims[0]] >= 0
            for d in self.dims:
                if d != dims[0]:
                    mask &= rows.codes[d] < 0
        else:
            mask = np.ones(len(next(iter(rows.comps.values()), [])), dtype=bool)
        key = np.zeros(int(mask.sum()), dtype=np.int64)
        for d, n in zip(dims, sizes, strict=True):
            key = key * n + rows.codes[d][mask]
        sums = {c: np.bincount(key, weights=v[mask], minlength=size) for c, v in rows.comps.items()}
        sums.update({f"{c}{SQ}": np.bincount(key, weights=v[mask], minlength=size) for c, v in rows.var.items()})
        present = np.bincount(key, minlength=size) > 0
        return sums, present

    def split(self, dims: Sequence[str]) -> Split | None:
        """Components and values per segment of one dimension, or of a pair (finest cells only)."""
        if not dims or any(d not in self.dims for d in dims) or self.cur is None:
            return None
        cur = self._sums(dims, "cur")
        if cur is None:
            return None
        ref = self._sums(dims, "ref")
        present = cur[1] | (ref[1] if ref is not None else False)
        idx = np.flatnonzero(present)
        sizes = [len(self.labels[d]) for d in dims]
        names = []
        for k in idx:
            parts = []
            for d, n in zip(reversed(dims), reversed(sizes), strict=True):
                parts.append(str(self.labels[d][k % n]))
                k //= n
            names.append(PAIR_SEP.join(reversed(parts)))
        c1 = {c: v[idx] for c, v in cur[0].items() if not c.endswith(SQ)}
        c0 = {c: v[idx] for c, v in ref[0].items() if not c.endswith(SQ)} if ref is not None else None
        var1 = {c[:-len(SQ)]: v[idx] for c, v in cur[0].items() if c.endswith(SQ)}
        var0 = {c[:-len(SQ)]: v[idx] for c, v in ref[0].items() if c.endswith(SQ)} if ref is not None else {}
        hist = self._sums(dims, "hist")
        run_history = {c: v[:, idx] for c, v in hist[0].items()} if hist is not None else None
        history = {c: v[self.wobble_rows] for c, v in run_history.items()} if run_history is not None else None
        v1 = ValueFn(self.cur_metric.value, self.cur_metric.components)(c1) if len(idx) else np.zeros(0)
        if c0 is not None and len(idx):
            v0 = ValueFn(self.ref_metric.value, self.ref_metric.components)(c0)
            v0 = np.where(ref[1][idx], v0, np.nan)  # type: ignore[index]
        else:
            v0 = np.full(len(idx), np.nan)
        v1 = np.where(cur[1][idx], v1, np.nan)
        return Split(PAIR_SEP.join(dims), tuple(names), c1, c0, np.asarray(v1, dtype="float64"),
                     np.asarray(v0, dtype="float64"), var1, var0, history, run_history)


def _wobble_rows(history: tuple[Period, ...], period: Period, candidates: tuple[Period, ...]) -> np.ndarray:
    """The rows of `history` that say how much a segment usually moves: the recent `WOBBLE_PERIODS` (at
    least the reference candidates' span) and the candidates themselves (the same period last year).

    The older periods are read for the run tests only, which compare a change with the months before
    it. As the usual wobble they cost more than they gave: a rep's swings of a year ago (15 of 19 won,
    then 5 of 10) widened her noise until 1 of 18 won against her usual half was within it, and a
    year of tiny cells' wobble, each only ever widening its counting noise, hid a planted rep's lost
    Enterprise deals in a cause set."""
    recent = {period.shift(-i) for i in range(1, max(REFERENCE_PERIODS[period.grain], WOBBLE_PERIODS) + 1)}
    keep = recent | set(candidates)
    return np.array([i for i, p in enumerate(history) if p in keep], dtype=np.int64)


@dataclass(frozen=True)
class Reference:
    """Where baselines and segment structure come from: candidate periods, and how to use them."""

    periods: tuple[Period, ...]  # most recent first
    choose: bool  # pick the one where each batch's parent was closest to its target; else average all
    history: tuple[Period, ...] = ()  # earlier periods read for how much a segment moves, and since when


def reference_periods(period: Period, versus: str, reference: str | int | None = None) -> Reference:
    """The periods that baselines and segment structure come from.

    Against the previous period or last year: that period. Against a target, segments and the
    cells of a product formula have no targets of their own, so they take their structure (shares,
    rates) from reference periods. By default (`reference=None`) these are, for each node and its
    children, the candidates (`REFERENCE_PERIODS` before, and the same period last year) in which
    the node was within its amber band of target, averaged — or the single closest one when none
    was: periods that went to plan have the mix the plan assumed, while the period just before
    may already carry a problem that began months ago. `reference="last_year"` forces last year;
    an integer k averages the k periods just before.
    """
    history = tuple(period.shift(-i) for i in range(1, max(REFERENCE_PERIODS[period.grain], HISTORY_PERIODS) + 1))
    if versus == "previous":
        return Reference((period.previous(),), False, history)
    if versus == "last_year":
        return Reference((period.same_last_year(),), False, history)
    if reference == "last_year":
        return Reference((period.same_last_year(),), False, history)
    if isinstance(reference, int):
        return Reference(tuple(period.shift(-i) for i in range(1, reference + 1)), False, history)
    recent = tuple(period.shift(-i) for i in range(1, REFERENCE_PERIODS[period.grain] + 1))
    return Reference(tuple(dict.fromkeys((*recent, period.same_last_year()))), True, history)

