"""Values, targets and red/amber/green status for every node of a tree in a period.

Status rules (PRODUCT.md): a closed period compares value to target in the node's direction —
green at or better than target, amber within the threshold (default 5 %), red beyond. A running
period uses pace: flows are pro-rated by the share of the period's plan done by now (its months'
targets, else elapsed time; `flow_share`), stocks and ratios use their latest value.
No target gives grey "no_target" (never silently green); no data gives "no_data".

A running period's stock (ARR, customers) is a level today, while its target is the level planned for
the period's last day: it is judged against the *target by now* (`target_by_now`), the level on the
plan's path from the opening level (the previous period's target, else its close) through the monthly
targets inside the period to the period's target. Rates that build up over the period (NRR and GRR
compound, logo churn and the expansion rate add up; `Metric.rollup`) are period-to-date while it runs
and are judged against the part of their target planned by now. Rates that are means (win rate,
conversion, deal size) stand as they are: half a quarter's win rate is no smaller than a whole one's.
Stocks taken at the period's start (ARR at start, open pipeline) are whole on its first day.

A cohort rate (lead → opportunity, MQL → SQL) of a period whose cohort is younger than the usual
conversion lag is not final: it is *maturing*, and its status is judged on its expected final value
(`metrics.Maturity`), or is "maturing" when there is too little history to expect one — never red
only because the week's leads have had no time to convert.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date

import duckdb
import pandas as pd

from .attribution import Formula
from .cache import ResultCache
from .errors import KpiTreeError, QueryError
from .format import fmt
from .metrics import (
    CATALOGUE,
    Kind,
    Maturity,
    Metric,
    MetricQuery,
    Missing,
    Profile,
    compute_many,
    compute_maturity,
    metric,
    metric_params,
    missing_data,
    read_profile,
)
from .periods import Grain, Period, latest_complete, parse_period, resolve_period, trailing
from .schema import TABLES
from .targets import path_level, rate_by_now, rate_scale
from .tree import Node, Tree
from .workspace import QUERY_TIMEOUT_SECONDS, QueryTimeout, Workspace

GREEN, AMBER, RED, NO_TARGET, NO_DATA = "green", "amber", "red", "no_target", "no_data"
MATURING = "maturing"  # a young cohort with too little history for an expected final value
DEFAULT_AMBER = 0.05


def status_of(value: float | None, target: float | None, direction: str, amber: float = DEFAULT_AMBER) -> str:
    """Green at or better than target, amber within `amber` (relative to |target|), else red."""
    if value is None or pd.isna(value):
        return NO_DATA
    if target is None or pd.isna(target):
        return NO_TARGET
    band = abs(target) * amber
    if direction == "lower":
        if value <= target:
            return GREEN
        return AMBER if value <= target + band else RED
    if value >= target:
        return GREEN
    return AMBER if value >= target - band else RED


def judge(value: float | None, target: float | None, direction: str, amber: float = DEFAULT_AMBER,
          grown: Maturity | None = None, pace: float | None = None) -> tuple[str, float | None]:
    """(status, expected final value) of a node's number against the target it is judged against.

    The one rule evaluate and the what-if use: a running flow is judged on its pace, a maturing cohort
    on its expected final value (`Maturity.expected`), and a maturing cohort with too little history
    to expect one is MATURING — never red for a cohort that has not had the time to convert.
    """
    compared = pace if pace is not None else value
    expected = grown.expected(value) if grown is not None else None
    status = status_of(expected if expected is not None else compared, target, direction, amber)
    if grown is not None and grown.maturing and expected is None and status not in (NO_TARGET, NO_DATA):
        status = MATURING
    return status, expected


# judging inputs kept on a NodeResult for `status_at`, not part of what an evaluation reports
_NOT_REPORTED = ("amber", "grown")


@dataclass
class NodeResult:
    id: str
    label: str
    metric: str
    level: str
    owner: str
    value: float | None
    target: float | None
    status: str
    previous: float | None
    unit: str
    direction: str
    review: str
    pace: float | None = None  # value projected to the end of a running period (flows)
    elapsed: float = 1.0  # share of the period elapsed at as_of
    link: str = "influence"  # how the node relates to its children: formula or influence
    formula: str | None = None
    parent: str | None = None
    children: tuple[str, ...] = ()
    target_basis: str | None = None  # a suggested target's rule in words (Target.suggested)
    reason: str = ""  # without a value: what is missing and what to load (see `Engine.no_data_reason`)
    # A cohort rate whose cohort is younger than its usual conversion lag: not final yet. Its status
    # is judged on `expected_final` (None: too little history, status "maturing"); see `metrics.Maturity`.
    maturing: bool = False
    expected_final: float | None = None
    completion: float | None = None  # share of the usual conversions that happened by the cohort's age
    usual_lag: int | None = None  # days by which 90 % of earlier cohorts' conversions happened
    # A running period's stock or building-up rate is judged against where the plan says it should be
    # on the as-of day, not against the period's end target (`target`); `by_now_basis` says how that
    # number was made, in words. None for closed periods, flows and rates that are means.
    target_by_now: float | None = None
    by_now_basis: str = ""
    amber: float = DEFAULT_AMBER  # the threshold it was judged with: the node's, else the workspace's
    grown: Maturity | None = field(default=None, repr=False, compare=False)  # a cohort rate's maturity

    @property
    def judged_target(self) -> float | None:
        """The target the status was decided against: the target by now while a stock runs, else `target`."""
        return self.target_by_now if self.target_by_now is not None else self.target

    def status_at(self, value: float | None) -> str:
        """The status this node would have at `value` (read as `compared`: a running flow's pace), by
        evaluate's own rule (`judge`) against the same target, threshold and maturity — for a what-if."""
        return judge(value, self.judged_target, self.direction, self.amber, self.grown)[0]

    @property
    def compared(self) -> float | None:
        """The value as it stands, or its pace while running (flows): what the period has done."""
        return self.pace if self.pace is not None else self.value

    @property
    def judged(self) -> float | None:
        """The number the status was decided on: the expected final value of a maturing cohort,
        else `compared`."""
        return self.expected_final if self.maturing and self.expected_final is not None else self.compared

    @property
    def gap(self) -> float | None:
        """How far the judged number is from the target it is judged against (`judged_target`; None for a
        maturing node without an expected value)."""
        target = self.judged_target
        if self.judged is None or target is None or (self.maturing and self.expected_final is None):
            return None
        return self.judged - target


@dataclass
class Evaluation:
    period: Period
    as_of: date
    nodes: list[NodeResult]
    complete: bool

    def node(self, node_id: str) -> NodeResult:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def to_dict(self) -> dict:
        return {
            "period": self.period.key,
            "grain": self.period.grain.value,
            "as_of": self.as_of.isoformat(),
            "complete": self.complete,
            "nodes": [_clean({k: v for k, v in asdict(n).items() if k not in _NOT_REPORTED}) for n in self.nodes],
        }


def _clean(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, float) and pd.isna(v):
            v = None
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


# --- computing metrics with a small per-workspace cache -----------------------------------

_CACHE = ResultCache(512)
# Tables that describe a state lasting until it changes, not events on a day.
STATE_TABLES = frozenset({"subscriptions", "quotas", "accounts"})


def _profile(workspace: Workspace, columns: dict[str, list[str]]) -> Profile:
    """Rows and filled columns of every loaded table (see `metrics.Profile`)."""
    if not columns:
        return Profile({}, {})
    with workspace.connect() as con:
        return read_profile(con, columns)


class Engine:
    """Computes metric queries on one workspace, caching results until the data changes."""

    def __init__(self, workspace: Workspace) -> None:
        self.settings = workspace.settings()  # checked: a bad number in workspace.json is a message here
        self.version = workspace.data_version()
        # Everything computed with this Engine reads this version under these settings' time limit,
        # whoever opens the cursor (its own queries, the explanation's, the usage charts').
        self.workspace = workspace = workspace.pinned(self.version, self.settings)
        cols = workspace.columns()
        self.profile = _profile(workspace, cols)
        # Splits and filters see only columns with a value somewhere (an owner nobody filled in is
        # no dimension); `missing` says what a metric lacks. Tables without rows count as not loaded.
        self.columns = self.profile.columns()
        self.loaded = {t for t in cols if self.profile.rows.get(t, 0) > 0}
        self._missing: dict[tuple, Missing | None] = {}
        self.params = metric_params(self.settings)
        self._as_of = workspace.as_of()
        self._coverage: dict[str, tuple[date | None, date | None]] | None = None
        # Per thread (an Engine is shared by every Streamlit session): the open session's cursor.
        self._local = threading.local()

    @property
    def as_of(self) -> date:
        if self._as_of is None:
            raise KpiTreeError(f"workspace {self.workspace.name!r} has no data yet: load your files on the Upload "
                               "page, or run `python -m kpitree ingest --workspace W FILE…`")
        return self._as_of

    def has_tables(self, m: Metric) -> bool:
        return all(t in self.loaded for t in m.tables)

    def missing(self, what: Node | Metric | str, filters: tuple = ()) -> Missing | None:
        """What a node's (or a metric's, with these filters) value lacks here; None when nothing.

        The one check behind every "no data" a user sees: tables not loaded, columns absent or
        empty in every row (`metrics.missing_data`). `Missing.reason()` says what to load.
        """
        if isinstance(what, Node):
            m, filters = metric(what.metric), tuple(what.filter)
        else:
            m = what if isinstance(what, Metric) else metric(what)
        key = (m.name, tuple(filters))
        if key not in self._missing:
            found = missing_data(m, self.profile, filters)
            if found is None and m.running:  # the running-period variant reads the same rows, or more
                found = missing_data(metric(m.running), self.profile, filters)
            self._missing[key] = found
        return self._missing[key]

    def dimensions(self, what: Node | Metric | str, wanted: Sequence[str]) -> list[str]:
        """Of `wanted`, the dimensions every table of the metric can be split by here: a drill
        dimension (`Profile.dimensions`: at least two values, no ids, names or amounts) of the
        table itself or of the accounts it links to, so the panel offers what a suggested tree names."""
        m = what if isinstance(what, Metric) else metric(what.metric if isinstance(what, Node) else what)
        names = {m.name, *([m.running] if m.running else [])}
        tables = {s.table for n in names for s in metric(n).sources}
        return [d for d in dict.fromkeys(wanted) if all(self.splits(t, d) for t in tables)]

    def splits(self, table: str, dimension: str) -> bool:
        """The table's rows can be split by `dimension` (what `metrics.dimension_sql` will use)."""
        return self.profile.splits(table, dimension)

    def fill(self, table: str, dimension: str) -> float:
        """The share of the table's rows with a value of `dimension` (own column, else the account's)."""
        if self.profile.has(table, dimension):
            return self.profile.share(table, dimension)
        key = "customer_id" if table == "subscriptions" else "account_id"
        return self.profile.share(table, key) * self.profile.share("accounts", dimension)

    def coverage(self, table: str) -> tuple[date | None, date | None]:
        """First and last day the table has data for (open deals' future close dates excluded)."""
        if self._coverage is None:
            found: dict[str, tuple[date | None, date | None]] = {}  # published whole: other threads read it
            parts = []
            for name in self.loaded:
                col = TABLES[name].date_column
                if name == "deals":
                    parts.append("SELECT 'deals', min(created_date), max(greatest(created_date, "
                                 "CASE WHEN status <> 'open' THEN close_date END)) FROM deals")
                elif name == "quotas":
                    parts.append("SELECT 'quotas', min(period_start), max(period_end) FROM quotas")
                elif col:
                    parts.append(f'SELECT \'{name}\', min(CAST("{col}" AS DATE)), max(CAST("{col}" AS DATE)) FROM "{name}"')
            if parts:
                with self.session():
                    for name, lo, hi in self._connection().execute(" UNION ALL ".join(parts)).fetchall():
                        found[name] = (lo, hi)
            self._coverage = found
        return self._coverage.get(table, (None, None))

    def covers(self, m: Metric, period: Period) -> bool:
        lo, hi = self.coverage(m.table)
        if lo is None or hi is None:
            return False
        # Stocks at the end of the period only need data that started before it ends, and a state
        # table (subscriptions, quotas, accounts) holds until the data's as-of date. A flow or rate
        # over a log of events (leads, deals, tickets …) has no value after the log's last day: a
        # leads export that ends in May says nothing about September, it does not say zero.
        last = max(hi, self.as_of) if m.kind is Kind.STOCK or m.table in STATE_TABLES else hi
        return period.start <= last and period.end >= lo

    @contextmanager
    def session(self) -> Iterator[None]:
        """Shares one cursor among this thread's queries inside the block (a click runs many).

        Per thread: every Streamlit session, overlapping reruns (each on a thread of its own) and
        the warm-up may use one Engine at once, so each thread keeps its own cursor and never
        touches another's; the cursors read the workspace side by side (`Workspace.connect`).
        The cursor opens only when a query misses the cache, so a fully cached click never
        touches the database file, and closes when the outermost block ends however it ends (a
        rerun Streamlit stops raises through here), so the thread's next click starts clean.
        """
        local = self._local
        if getattr(local, "stack", None) is not None:
            yield
            return
        local.stack = ExitStack()
        try:
            yield
        finally:
            stack, local.stack, local.con = local.stack, None, None
            stack.close()

    def _in_session(self) -> bool:
        return getattr(self._local, "stack", None) is not None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """This thread's session cursor, opened on first use (inside `session()` only)."""
        local = self._local
        if not self._in_session():
            raise RuntimeError("Engine._connection outside Engine.session()")
        if getattr(local, "con", None) is None:
            local.con = local.stack.enter_context(self.workspace.connect())
        return local.con

    def _key(self, q: MetricQuery) -> tuple:
        return (str(self.workspace.db_path), self.version, q)

    def _run(self, q: MetricQuery, names: list[str]) -> dict[str, pd.DataFrame]:
        if self._in_session():
            return self._timed(self._connection(), q, names)
        with self.workspace.connect() as con:
            return self._timed(con, q, names)

    def _timed(self, con: duckdb.DuckDBPyConnection, q: MetricQuery, names: list[str]) -> dict[str, pd.DataFrame]:
        """Runs the batch; every statement is under the workspace's time limit (`workspace.Cursor`:
        custom SQL can be slow), and a stop names the metrics."""
        try:
            return compute_many(con, q, names)
        except QueryTimeout:
            limit = float(self.settings.extra.get("query_timeout", QUERY_TIMEOUT_SECONDS))
            raise QueryTimeout(f"metrics {', '.join(names)} took longer than {limit:g} s and were stopped: choose a "
                               "shorter period, or raise \"query_timeout\" (seconds) in the workspace's "
                               "workspace.json") from None

    def prefetch(self, requests: list[tuple[str, tuple]], periods: list[Period] | tuple[Period, ...], *,
                 dimension: str | None = None) -> None:
        """Computes many (metric, filters) pairs at once: one query per distinct filter."""
        by_filter: dict[tuple, list[str]] = {}
        for name, filters in requests:
            q = MetricQuery(name, tuple(periods), self.as_of, dimension, tuple(filters), self.columns, self.params)
            if self._key(q) in _CACHE:
                continue
            by_filter.setdefault(tuple(filters), []).append(name)
        for filters, names in by_filter.items():
            q = MetricQuery(names[0], tuple(periods), self.as_of, dimension, filters, self.columns, self.params)
            # One thread runs a batch; sessions asking for the same one meanwhile wait for it and
            # find their metrics cached (twenty first pages at once run it once, not twenty times).
            with _CACHE.single(("batch", self._key(q), tuple(names))):
                names = [n for n in names if self._key(q.with_metric(n)) not in _CACHE]
                if not names:
                    continue
                q = q.with_metric(names[0])
                frames = self._run(q, names)
                for name, df in frames.items():
                    _CACHE.put(self._key(q.with_metric(name)), df)

    def query(
        self,
        metric_name: str,
        periods: list[Period] | tuple[Period, ...],
        *,
        dimension: str | None = None,
        filters: tuple = (),
    ) -> pd.DataFrame:
        """Components and value per period (and segment); a QueryError saying what to load when the
        metric lacks data here (see `missing`)."""
        lacking = self.missing(metric_name, tuple(filters))
        if lacking is not None:
            raise QueryError(f"{metric(metric_name).label} {lacking.reason()}")
        q = MetricQuery(metric_name, tuple(periods), self.as_of, dimension, tuple(filters), self.columns, self.params)
        return _CACHE.get_or_run(self._key(q), lambda: self._run(q, [metric_name])[metric_name])

    def requests(self, nodes: list[Node], periods: list[Period]) -> dict[tuple[Period, ...], list[tuple[str, tuple]]]:
        """The queries `values` will run for these nodes, grouped by period set (for prefetch)."""
        out: dict[tuple[Period, ...], list[tuple[str, tuple]]] = {}
        running = tuple(p for p in periods if not p.is_complete(self.as_of))
        closed = tuple(p for p in periods if p.is_complete(self.as_of))
        for node in nodes:
            m = metric(node.metric)
            if self.missing(node) is not None:
                continue
            if closed:
                out.setdefault(closed, []).append((m.name, node.filter))
            if running:
                out.setdefault(running, []).append((m.running or m.name, node.filter))
        return out

    def prefetch_nodes(self, nodes: list[Node], periods: list[Period]) -> None:
        for group, reqs in self.requests(nodes, periods).items():
            self.prefetch(reqs, group)

    def values(self, node: Node, periods: list[Period]) -> dict[str, float | None]:
        """The node's value for each period (None where the data does not cover it)."""
        m = metric(node.metric)
        if self.missing(node) is not None:
            return {p.key: None for p in periods}
        out: dict[str, float | None] = {}
        running = tuple(p for p in periods if not p.is_complete(self.as_of))
        closed = tuple(p for p in periods if p.is_complete(self.as_of))
        for group, name in ((closed, m.name), (running, m.running or m.name)):
            if not group:
                continue
            df = self.query(name, group, filters=node.filter)
            for key, value in zip(df["pkey"], df["value"], strict=True):
                out[key] = None if pd.isna(value) else float(value)
        for p in periods:
            if not self.covers(m, p):
                out[p.key] = None
        return out

    def maturity(self, node: Node, period: Period) -> Maturity | None:
        """How far the period's cohort of a cohort rate has come (`metrics.Maturity`); None for other
        metrics, or when the day a row completes is not in the data (a lead's deal needs deals)."""
        return self.maturities(node, [period]).get(period.key)

    def maturities(self, node: Node, periods: Sequence[Period]) -> dict[str, Maturity]:
        """`maturity` of several periods from one query (empty when the node is no cohort rate)."""
        m = metric(node.metric)
        if m.cohort is None or self.missing(node) is not None or not all(t in self.loaded for t in m.cohort.needs):
            return {}
        q = MetricQuery(m.name, tuple(periods), self.as_of, None, tuple(node.filter), self.columns, self.params)

        def run() -> dict[str, Maturity]:
            if self._in_session():
                return compute_maturity(self._connection(), q)
            with self.workspace.connect() as con:
                return compute_maturity(con, q)

        return _CACHE.get_or_run(("maturity", *self._key(q)), run)

    def no_data_reason(self, node: Node, period: Period) -> str:
        """Why the node has no value for the period, in words a user can act on: what to load, or
        which days the data covers. Empty when the data is there and the value is simply undefined
        (a win rate with no deal decided)."""
        lacking = self.missing(node)
        if lacking is not None:
            return lacking.reason()
        m = metric(node.metric)
        if not self.covers(m, period):
            spans = []
            for t in dict.fromkeys(m.tables):
                lo, hi = self.coverage(t)
                spans.append(f"{t} from {lo} to {hi}" if lo and hi else f"no dated {t}")
            return f"the data covers {', '.join(spans)} only"
        return ""


def target_for(node: Node, period: Period) -> float | None:
    """The node's target for the period (`Target.for_period` with the metric's kind and rollup).

    A per-period rate that is not a mean — NRR and GRR compound, logo churn and expansion rate grow
    with the period's length — given as one number is a monthly rate: a week's or a quarter's target
    is made from it month by month like monthly targets are (a 1 % monthly churn target is 0.2 % for
    a week and 3 % for a quarter), not the same 1 % against a week's 0.2 % churn (a false green) or a
    quarter's 3 % (a false red). Targets given for the period itself or for its grain stand.
    """
    m = CATALOGUE[node.metric]
    target = node.target
    if m.kind is Kind.RATIO and m.rollup != "mean" and period.grain is not Grain.MONTH:
        monthly = dict(target.per_grain).get("monthly", target.value)
        given = dict(target.by_period)
        if monthly is not None and period.key not in given and _GRAIN_FIELD[period.grain] not in dict(target.per_grain):
            months = period.months()
            filled = {p.key: given.get(p.key, monthly) for p in months}
            target = replace(target, by_period=tuple(sorted({**given, **filled}.items())))
    return target.for_period(period, m.kind, m.rollup)


_GRAIN_FIELD = {Grain.WEEK: "weekly", Grain.MONTH: "monthly", Grain.QUARTER: "quarterly", Grain.YEAR: "annual"}


# Stocks taken at the start of the period (the opening balance, the pipeline open on its first day):
# whole from the period's first day, so a running period judges them against the period's target.
# Every other stock is a level at the end of P (at the as-of day while P runs). A new stock metric
# must be placed here or not (tests/test_running_stock.py lists them).
OPENING_STOCKS = frozenset({"mrr_start", "arr_start", "open_pipeline", "open_deals"})


@dataclass(frozen=True)
class ByNow:
    """A running period's target by now and how it was made, in words."""

    value: float
    basis: str


def target_by_now(node: Node, period: Period, as_of: date, opening: float | None,
                  tree: Tree | None = None) -> ByNow | None:
    """Where the plan says the node should be at the end of day `as_of` in the running `period`; None
    when the period is not running or the node is judged against its period target (flows, which are
    paced instead; mean rates; stocks taken at the period's start; no target).

    A stock: on the plan's own path from the previous period's target (without one, from `opening`, the
    level at the end of the previous period, and said; without either, the path starts at the first
    monthly target) through the node's own monthly targets inside the period to the period's target,
    straight between two points, so on 20 November the year's ARR is judged two thirds of the way from
    October's target to November's. The plan's path, not the actual close: a stock that closed October
    $10M short of plan is still short on 1 November, not on plan again because the month restarted.
    A stock that is an exact formula of its children (ARR = ARR at start × NRR + new-logo ARR +
    reactivation ARR, given `tree`) is that formula over their targets by now (`part_by_now`), so the
    tree's gap and the explanation's parts of it add up in a running period as in a closed one. A rate that builds up over the period (`Metric.rollup` compound,
    churn or sum): the part of the period's target planned by now — the monthly targets' shape when
    every month of the period has one, else elapsed days (see `targets.rate_by_now`).
    """
    if not period.start <= as_of < period.end:
        return None
    m = CATALOGUE[node.metric]
    target = target_for(node, period)
    if target is None:
        return None
    unit = node.shown_unit
    days, done = period.days, period.elapsed_days(as_of)
    if m.kind is Kind.STOCK and m.name not in OPENING_STOCKS:
        composed = _formula_by_now(node, period, as_of, tree) if tree is not None and node.formula else None
        if composed is not None:
            return composed
        prev = period.previous()
        start_word = f"the {prev.key} target"
        planned = target_for(node, prev)
        if planned is not None:
            opening = planned
        else:
            start_word = f"the {prev.key} close"  # the plan has no point there: the level it started from
        given = dict(node.target.by_period)
        points, words = ([(0, opening)], [start_word]) if opening is not None else ([], [])
        for month in period.months():
            if month.end < period.end and month.key in given:
                points.append(((month.end - period.start).days + 1, given[month.key]))
                words.append(f"the {month.key} target")
        points.append((days, target))
        words.append(f"the {period.key} target")
        if done < points[0][0] or len(points) < 2:
            return None  # nothing to start from before the as-of day: the period's target stands
        level, i = path_level(points, done)
        (d0, v0), (d1, v1) = points[i], points[i + 1]
        return ByNow(level, f"{fmt(level, unit, compact=True)} planned by {as_of.isoformat()}: {words[i]} "
                            f"{fmt(v0, unit, compact=True)} → {words[i + 1]} {fmt(v1, unit, compact=True)}, "
                            f"{done - d0} of {d1 - d0} days in")
    if m.kind is Kind.RATIO and m.rollup != "mean":
        share, how = _planned_share(period, as_of, [
            (mo, rate_scale(x, m.rollup) if x is not None else None)
            for mo, x in ((mo, _monthly_rate(node, mo)) for mo in period.months())])
        planned = rate_by_now(target, m.rollup, share)
        if planned is None:
            return None
        verb = "compounds to" if m.rollup == "compound" else "adds up to"
        return ByNow(planned, f"{fmt(planned, unit, compact=True)} planned by {as_of.isoformat()}: what the "
                              f"{period.key} target {fmt(target, unit, compact=True)} {verb} over {share:.0%} of "
                              f"its course ({how}; {done} of {days} days in)")
    return None


def _planned_share(period: Period, as_of: date, monthly: Sequence[tuple[Period, float | None]]
                   ) -> tuple[float, str]:
    """The share of a running period's plan done by the end of day `as_of`, and how it was read: the
    shape of the months' own planned amounts (`monthly`, on a scale where months add up) when every
    month of the period has one, else elapsed days. A plan that expects $12M of new ARR in September
    and $5M in October is not a straight line through the year."""
    share, how = period.elapsed_fraction(as_of), "by elapsed days"
    if monthly and all(x is not None for _, x in monthly):
        def covered(mo: Period, last: date) -> float:
            return max(0, (min(mo.end, last) - max(mo.start, period.start)).days + 1) / mo.days
        whole = sum(covered(mo, period.end) * x for mo, x in monthly)  # type: ignore[operator]
        # months all of one sign (retention below 100 % decays: its logs are negative); a plan
        # that gains in some months and loses in others has no share-of-the-year shape
        if whole != 0 and (all(x >= 0 for _, x in monthly) or all(x <= 0 for _, x in monthly)):  # type: ignore[operator]
            share = sum(covered(mo, as_of) * x for mo, x in monthly) / whole  # type: ignore[operator]
            how = "by the monthly targets"
    return share, how


def flow_share(node: Node, period: Period, as_of: date) -> tuple[float, str]:
    """The share of a running period's flow target planned by `as_of` (`_planned_share` over the
    months' given targets): a flow's pace is its value over this share, its target by now the
    period's target times it."""
    given = dict(node.target.by_period)
    months = period.months()
    monthly = [(mo, given.get(mo.key)) for mo in months] if len(months) > 1 else []
    return _planned_share(period, as_of, monthly)


def pace_of(node: Node, period: Period, as_of: date, value: float | None) -> float | None:
    """A running flow's value projected to the period's end: over the share of its plan done by now
    (`flow_share`; elapsed days where the plan has done nothing yet); None for a closed period or another kind."""
    elapsed = period.elapsed_fraction(as_of)
    if value is None or period.is_complete(as_of) or CATALOGUE[node.metric].kind is not Kind.FLOW or elapsed <= 0:
        return None
    share = flow_share(node, period, as_of)[0]
    return value / share if share > 0 else value / elapsed


def part_by_now(node: Node, period: Period, as_of: date, tree: Tree | None = None) -> float | None:
    """A node's target as it stands on the as-of day of a running period, whatever its kind: a flow's
    period target times the share planned by now (`flow_share`), a stock's or building-up rate's
    `target_by_now`, else (a mean rate, a stock taken at the start) the period's target."""
    target = target_for(node, period)
    if target is None or not period.start <= as_of < period.end:
        return target
    if CATALOGUE[node.metric].kind is Kind.FLOW:
        return target * flow_share(node, period, as_of)[0]
    by_now = target_by_now(node, period, as_of, None, tree)
    return by_now.value if by_now is not None else target


PLAN_FITS = 1e-4  # a plan whose children's targets give its own within this share keeps its formula


def _formula_by_now(node: Node, period: Period, as_of: date, tree: Tree) -> ByNow | None:
    """A stock that is an exact formula of its children: the formula over their targets by now (None
    when a child has no target, the formula cannot be read, or the plan does not keep the formula at the
    period's end — a quarter whose children's targets give $17.11M where its own says $16.68M would be
    planned past its own end; there the plan's path stands)."""
    try:
        formula = Formula.parse(node.formula or "")
    except (SyntaxError, ValueError):
        return None
    parts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for name in formula.names:
        try:
            child = tree.node(name)
        except KeyError:
            return None
        planned, end = part_by_now(child, period, as_of, tree), target_for(child, period)
        if planned is None or end is None:
            return None
        parts[name], ends[name] = planned, end
    target = target_for(node, period)
    if target is None or not math.isclose(float(formula(ends)), target, rel_tol=PLAN_FITS, abs_tol=1.0):
        return None
    level = float(formula(parts))

    def named(found: re.Match) -> str:
        child = tree.node(found.group(0)) if found.group(0) in parts else None
        return f"{child.label} {fmt(parts[child.id], child.shown_unit, compact=True)}" if child else found.group(0)

    said = re.sub(r"[A-Za-z_]\w*", named, formula.expression).replace("*", "×")
    return ByNow(level, f"{fmt(level, node.shown_unit, compact=True)} planned by {as_of.isoformat()}: the formula "
                        f"over its parts' targets by now, {said}")


def _monthly_rate(node: Node, month: Period) -> float | None:
    """A building-up rate's own target for a calendar month: given for the month, or as the monthly
    rate (`monthly`, or the one number); None when the plan says nothing about the month itself."""
    t = node.target
    given = dict(t.by_period).get(month.key)
    if given is not None:
        return given
    monthly = dict(t.per_grain).get("monthly")
    return monthly if monthly is not None else t.value


def evaluate_tree(workspace: Workspace | Engine, tree: Tree, period: Period | str | None = None,
                  grain: str | None = None) -> Evaluation:
    """Every node's value, target, status and previous value for the period.

    With no period, the latest complete period of the grain (default: the tree's grain).
    """
    engine = workspace if isinstance(workspace, Engine) else Engine(workspace)
    as_of = engine.as_of
    if period is None or isinstance(period, str):
        period = resolve_period(period, grain if period else (grain or tree.grain), as_of)
    prev = period.previous()
    complete = period.is_complete(as_of)
    elapsed = period.elapsed_fraction(as_of)
    amber_default = engine.settings.amber_threshold
    results = []
    with engine.session():
        engine.prefetch_nodes(list(tree.nodes), [prev, period])
        engine.coverage(CATALOGUE[tree.root.metric].table)  # all tables' coverage, same connection
    for node in tree.walk():
        vals = engine.values(node, [prev, period])
        value = vals.get(period.key)
        pace = pace_of(node, period, as_of, value)
        target = target_for(node, period)
        by_now = None if complete else target_by_now(node, period, as_of, vals.get(prev.key), tree)
        amber = node.amber if node.amber is not None else amber_default
        with engine.session():
            grown = engine.maturity(node, period) if value is not None else None
        maturing = grown is not None and grown.maturing
        status, expected = judge(value, by_now.value if by_now is not None else target, node.better, amber, grown,
                                 pace)
        parent = tree.parent_of(node.id)
        results.append(NodeResult(
            id=node.id, label=node.label, metric=node.metric, level=node.level_name, owner=node.owner,
            value=value, target=target, status=status, previous=vals.get(prev.key), unit=node.shown_unit,
            direction=node.better, review=node.review, pace=pace, elapsed=round(elapsed, 4),
            link="formula" if node.formula else "influence", formula=node.formula,
            parent=parent.id if parent else None, children=node.children, target_basis=node.target.suggested,
            reason=engine.no_data_reason(node, period) if value is None else "",
            maturing=maturing, expected_final=expected,
            completion=grown.completion if maturing and grown is not None else None,
            usual_lag=grown.usual_lag if maturing and grown is not None else None,
            target_by_now=by_now.value if by_now is not None else None,
            by_now_basis=by_now.basis if by_now is not None else "", amber=amber, grown=grown,
        ))
    return Evaluation(period, as_of, results, complete)


def trend(engine: Engine, tree: Tree, node_id: str, period: Period, n: int = 18) -> pd.DataFrame:
    """The node's value and target over the n periods ending with `period` (for the trend chart), for
    a cohort rate the expected final value of its maturing periods, and for a running period's stock or
    building-up rate its target by now (`target_by_now`; None elsewhere)."""
    node = tree.node(node_id)
    periods = trailing(period, n)
    with engine.session():
        values = engine.values(node, [period.previous(), *periods] if n < 2 else periods)
        grown = engine.maturities(node, periods)
    expected = {k: g.expected(values.get(k)) for k, g in grown.items()}
    by_now = {p.key: target_by_now(node, p, engine.as_of, values.get(p.previous().key), tree) for p in periods
              if not p.is_complete(engine.as_of)}
    frame = pd.DataFrame({
        "period": [p.key for p in periods],
        "start": [p.start for p in periods],
        "value": [values.get(p.key) for p in periods],
        "target": [target_for(node, p) for p in periods],
        # a maturing cohort's expected final value (the latest periods of a lead → opportunity rate)
        "expected": [expected.get(p.key) for p in periods],
        # where the plan is on the as-of day, beside the period's end target (a running stock)
        "target_by_now": [b.value if (b := by_now.get(p.key)) is not None else None for p in periods],
    })
    # Periods before the data and the plan begin are no history: eighteen years of blanks before
    # a 2026-only workspace made the axis run from 2009. The last period always stays.
    known = frame["value"].notna() | frame["target"].notna()
    first = int(known.to_numpy().argmax()) if known.any() else len(frame) - 1
    return frame.iloc[first:].reset_index(drop=True)


def default_period(engine: Engine, grain: str = "month") -> Period:
    return latest_complete(engine.as_of, Grain(grain))


__all__ = [
    "AMBER", "GREEN", "MATURING", "NO_DATA", "NO_TARGET", "OPENING_STOCKS", "RED", "ByNow", "Engine", "Evaluation",
    "NodeResult", "evaluate_tree", "flow_share", "pace_of", "parse_period", "part_by_now", "status_of",
    "target_by_now", "target_for", "trend",
]
