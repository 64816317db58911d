"""Values, targets and red/amber/green status for every node of a tree in a period.

Status rules (PRODUCT.md): a closed period compares value to target in the node's direction —
green at or better than target, amber within the threshold (default 5 %), red beyond. A running
period uses pace: flows are pro-rated by elapsed time, stocks and ratios use their latest value.
No target gives grey "no_target" (never silently green); no data gives "no_data".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date

import duckdb
import pandas as pd

from .cache import ResultCache
from .errors import KpiTreeError, QueryError
from .metrics import CATALOGUE, Kind, Metric, MetricQuery, compute_many, metric, metric_params
from .periods import Grain, Period, latest_complete, parse_period, resolve_period, trailing
from .schema import TABLES
from .tree import Node, Tree
from .workspace import Workspace, _lock_for

GREEN, AMBER, RED, NO_TARGET, NO_DATA = "green", "amber", "red", "no_target", "no_data"
DEFAULT_AMBER = 0.05
QUERY_TIMEOUT_SECONDS = 30.0  # per query; a workspace may set "query_timeout" in workspace.json


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

    @property
    def compared(self) -> float | None:
        """The number the status was decided on: pace while running (flows), else the value."""
        return self.pace if self.pace is not None else self.value

    @property
    def gap(self) -> float | None:
        if self.compared is None or self.target is None:
            return None
        return self.compared - self.target


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
            "nodes": [_clean(asdict(n)) for n in self.nodes],
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


class Engine:
    """Computes metric queries on one workspace, caching results until the data changes."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.version = workspace.data_version()
        cols = workspace.columns()
        self.columns = tuple((t, tuple(c)) for t, c in cols.items())
        self.loaded = set(cols)
        self.settings = workspace.settings()
        self.params = metric_params(self.settings)
        self._as_of = workspace.as_of()
        self._coverage: dict[str, tuple[date | None, date | None]] | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._session = False
        self._lock = _lock_for(workspace.db_path)  # the same lock `Workspace.connect` takes

    @property
    def as_of(self) -> date:
        if self._as_of is None:
            raise KpiTreeError(f"workspace {self.workspace.name!r} has no data yet: load CSV files first")
        return self._as_of

    def has_tables(self, m: Metric) -> bool:
        return all(t in self.loaded for t in m.tables)

    def coverage(self, table: str) -> tuple[date | None, date | None]:
        """First and last day the table has data for (open deals' future close dates excluded)."""
        if self._coverage is None:
            self._coverage = {}
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
                        self._coverage[name] = (lo, hi)
        return self._coverage.get(table, (None, None))

    def covers(self, m: Metric, period: Period) -> bool:
        lo, hi = self.coverage(m.table)
        if lo is None or hi is None:
            return False
        # Stocks at the end of the period only need data that started before it ends.
        return period.start <= max(hi, self.as_of) and period.end >= lo

    @contextmanager
    def session(self) -> Iterator[None]:
        """Shares one connection among the queries inside the block (a click runs many).

        The connection opens only when a query misses the cache, so a fully cached click never
        touches the database file.
        """
        if self._session:
            yield
            return
        self._session = True
        try:
            yield
        finally:
            self._session = False
            if self._con is not None:
                self._con.close()
                self._con = None
                self._lock.release()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._lock.acquire()
            try:
                self._con = self.workspace._open()
            except BaseException:
                self._lock.release()
                raise
        return self._con

    def _key(self, q: MetricQuery) -> tuple:
        return (str(self.workspace.db_path), self.version, q)

    def _run(self, q: MetricQuery, names: list[str]) -> dict[str, pd.DataFrame]:
        if self._session:
            return self._timed(self._connection(), q, names)
        with self.workspace.connect() as con:
            return self._timed(con, q, names)

    def _timed(self, con: duckdb.DuckDBPyConnection, q: MetricQuery, names: list[str]) -> dict[str, pd.DataFrame]:
        """Runs the query, interrupting it after the workspace's time limit (custom SQL can be slow)."""
        limit = float(self.settings.extra.get("query_timeout", QUERY_TIMEOUT_SECONDS))
        timer = threading.Timer(limit, con.interrupt)
        timer.start()
        try:
            return compute_many(con, q, names)
        except QueryError as exc:
            if "interrupt" in str(exc).lower():
                raise QueryError(f"metrics {', '.join(names)} took longer than {limit:g} s "
                                 "and were stopped (query_timeout in workspace.json)") from None
            raise
        finally:
            timer.cancel()

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
        q = MetricQuery(metric_name, tuple(periods), self.as_of, dimension, tuple(filters), self.columns, self.params)
        return _CACHE.get_or_run(self._key(q), lambda: self._run(q, [metric_name])[metric_name])

    def requests(self, nodes: list[Node], periods: list[Period]) -> dict[tuple[Period, ...], list[tuple[str, tuple]]]:
        """The queries `values` will run for these nodes, grouped by period set (for prefetch)."""
        out: dict[tuple[Period, ...], list[tuple[str, tuple]]] = {}
        running = tuple(p for p in periods if not p.is_complete(self.as_of))
        closed = tuple(p for p in periods if p.is_complete(self.as_of))
        for node in nodes:
            m = metric(node.metric)
            if not self.has_tables(m):
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
        if not self.has_tables(m):
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


def target_for(node: Node, period: Period) -> float | None:
    m = CATALOGUE[node.metric]
    return node.target.for_period(period, m.kind, m.rollup)


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
        m = CATALOGUE[node.metric]
        vals = engine.values(node, [prev, period])
        value = vals.get(period.key)
        pace = None
        if not complete and m.kind is Kind.FLOW and value is not None and elapsed > 0:
            pace = value / elapsed
        target = target_for(node, period)
        compared = pace if pace is not None else value
        status = status_of(compared, target, node.better, node.amber if node.amber is not None else amber_default)
        parent = tree.parent_of(node.id)
        results.append(NodeResult(
            id=node.id, label=node.label, metric=node.metric, level=node.level_name, owner=node.owner,
            value=value, target=target, status=status, previous=vals.get(prev.key), unit=node.shown_unit,
            direction=node.better, review=node.review, pace=pace, elapsed=round(elapsed, 4),
            link="formula" if node.formula else "influence", formula=node.formula,
            parent=parent.id if parent else None, children=node.children,
        ))
    return Evaluation(period, as_of, results, complete)


def trend(engine: Engine, tree: Tree, node_id: str, period: Period, n: int = 18) -> pd.DataFrame:
    """The node's value and target over the n periods ending with `period` (for the trend chart)."""
    node = tree.node(node_id)
    periods = trailing(period, n)
    with engine.session():
        values = engine.values(node, periods)
    return pd.DataFrame({
        "period": [p.key for p in periods],
        "start": [p.start for p in periods],
        "value": [values.get(p.key) for p in periods],
        "target": [target_for(node, p) for p in periods],
    })


def default_period(engine: Engine, grain: str = "month") -> Period:
    return latest_complete(engine.as_of, Grain(grain))


__all__ = [
    "AMBER", "GREEN", "NO_DATA", "NO_TARGET", "RED", "Engine", "Evaluation", "NodeResult", "evaluate_tree",
    "parse_period", "status_of", "target_for", "trend",
]
