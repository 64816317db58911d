"""Data behind the usage views: activity dots (accounts × weeks), cohort retention, account health.

Each function returns a small tidy DataFrame computed in SQL on the workspace (DuckDB), ready for
`charts_usage`; nothing loops over rows in Python. Results are cached per workspace data version.

- `activity_heatmap` — per account and week: events, active users, active days ("activity
  dots", seed 002): the accounts with the most MRR, or those whose usage fell most.
- `cohort_retention` — per monthly cohort of new customers and month since start: customers
  still paying (logo retention) or MRR kept (revenue retention).
- `account_health` — per active account: the health signals and score of `kpitree.health`.
- `features` — the product features in the events, most used first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

import pandas as pd

from . import dialect as sql
from .cache import ResultCache
from .errors import KpiTreeError, QueryError
from .metrics import MetricQuery, Missing, _health_cte, metric, metric_params, periods_cte
from .periods import Grain, Period, period_containing

_CACHE = ResultCache(64)
ACCOUNT_COLUMNS = ("segment", "industry", "csm")  # what `where` may restrict on (accounts table)
USAGE_METRICS = ("dau", "wau", "mau", "dau_mau", "feature_adoption", "time_in_product_minutes", "journey_completion",
                 "time_to_first_value_days", "health_score", "at_risk_accounts", "upsell_eligible_accounts")
RETENTION_METRICS = ("nrr", "grr", "nrr_12m", "grr_12m", "logo_churn_rate", "mrr_churn", "arr_churn",
                     "expansion_rate", "ltv", "active_customers")


def panel_charts(metric_name: str) -> tuple[str, ...]:
    """Which usage views fit a node's metric: "activity" (dots), "cohort" (retention), both or none."""
    out = []
    if metric_name in USAGE_METRICS:
        out.append("activity")
    if metric_name in RETENTION_METRICS or metric_name in ("health_score", "at_risk_accounts"):
        out.append("cohort")
    return tuple(out)


def _cached(engine: Any, key: tuple, run: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    return _CACHE.get_or_run((str(engine.workspace.db_path), engine.version, *key), run)


def _query(engine: Any, text: str, params: list[Any]) -> pd.DataFrame:
    """The query's frame, on the engine's cursor: under the workspace's time limit and memory
    ceiling (`workspace.Cursor`); a QueryError (a timeout's own message) on failure."""
    with engine.workspace.connect() as con:
        try:
            return con.execute(text, params).df()
        except KpiTreeError:  # stopped by the time limit or the memory ceiling: already in words
            raise
        except Exception as exc:  # duckdb.Error: shown to the user as one clean message
            raise QueryError(f"usage query failed: {str(exc).splitlines()[0]}") from None


def _require(engine: Any, *tables: str) -> None:
    """A QueryError saying what to load when a table is missing (or loaded without rows)."""
    missing = tuple(t for t in tables if t not in engine.loaded)
    if missing:
        raise QueryError(f"this view {Missing(missing, ()).reason()}")


def _account_where(engine: Any, where: Mapping[str, str] | None, params: list[Any], alias: str = "a") -> str:
    """Conditions on account attributes (segment, industry, csm) from the accounts table."""
    if not where:
        return "TRUE"
    cols = dict(engine.columns).get("accounts", ())
    parts = []
    for col, value in where.items():
        if col not in ACCOUNT_COLUMNS or col not in cols:
            raise QueryError(f"cannot restrict accounts on {col!r}: use one of {', '.join(ACCOUNT_COLUMNS)} "
                             "with an accounts table loaded")
        parts.append(f"CAST({alias}.{sql.quote_ident(col)} AS VARCHAR) = ?")
        params.append(str(value))
    return " AND ".join(parts)


def features(engine: Any) -> list[str]:
    """The features named in the events, most used first."""
    _require(engine, "events")
    df = _cached(engine, ("features",), lambda: _query(
        engine, "SELECT feature, count(*) AS n FROM events WHERE feature IS NOT NULL GROUP BY feature "
        "ORDER BY n DESC, feature", []))
    return [str(f) for f in df["feature"]]


def activity_heatmap(engine: Any, end: date | Period, *, weeks: int = 12, limit: int = 25, order: str = "mrr",
                     where: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per account and ISO week (the `weeks` weeks ending with the one holding `end`): events,
    active users and active days, zeros included, so a chart draws every dot.

    `order="mrr"` shows the `limit` accounts with the most MRR at `end` (accounts with events if no
    subscriptions are loaded); `order="decline"` those whose active days fell most from the first
    half of the window to the second. `where` restricts accounts by segment, industry or csm
    (e.g. the segment a node's explanation points at). Columns: account_id, account, segment,
    mrr, week (Monday), events, users, active_days, rank (1 = top row).
    """
    if order not in ("mrr", "decline"):
        raise QueryError(f"order must be 'mrr' or 'decline', got {order!r}")
    _require(engine, "events")
    last_day = end.end if isinstance(end, Period) else end
    last_day = min(last_day, engine.as_of)
    last_week = period_containing(last_day, Grain.WEEK)
    mondays = [last_week.start - timedelta(weeks=k) for k in range(weeks - 1, -1, -1)]
    key = ("heatmap", last_day, weeks, limit, order, tuple(sorted((where or {}).items())))
    return _cached(engine, key, lambda: _heatmap(engine, mondays, last_day, limit, order, where))


def _heatmap(engine: Any, mondays: list[date], last_day: date, limit: int, order: str,
             where: Mapping[str, str] | None) -> pd.DataFrame:
    params: list[Any] = []
    has_accounts = "accounts" in engine.loaded
    has_subs = "subscriptions" in engine.loaded
    first, mid = mondays[0], mondays[len(mondays) // 2]
    day = sql.day_of("t.timestamp")
    weeks_cte = "W(week) AS (VALUES " + ", ".join(f"({sql.date_literal(m)})" for m in mondays) + ")"
    use = (f"u AS (SELECT t.account_id, {sql.week_start(day)} AS week, count(*) AS events, "
           f"count(DISTINCT t.user_id) AS users, count(DISTINCT {day}) AS active_days FROM events AS t "
           f"WHERE t.account_id IS NOT NULL AND {day} BETWEEN {sql.date_literal(first)} AND "
           f"{sql.date_literal(last_day)} GROUP BY t.account_id, {sql.week_start(day)})")
    counts = (f"t.start_date <= {sql.date_literal(last_day)} AND (t.end_date IS NULL OR t.end_date > "
              f"{sql.date_literal(last_day)})")
    if has_subs:
        base = (f"b AS (SELECT t.customer_id AS account_id, sum(t.mrr) AS mrr FROM subscriptions AS t "
                f"WHERE {counts} GROUP BY t.customer_id HAVING sum(t.mrr) > 0)")
    else:
        base = "b AS (SELECT DISTINCT account_id, CAST(NULL AS DOUBLE) AS mrr FROM u)"
    acct_join = " LEFT JOIN accounts AS a ON a.account_id = b.account_id" if has_accounts else ""
    name = "COALESCE(a.name, b.account_id)" if has_accounts and "name" in dict(engine.columns)["accounts"] \
        else "b.account_id"
    seg = "CAST(a.segment AS VARCHAR)" if has_accounts and "segment" in dict(engine.columns)["accounts"] \
        else "CAST(NULL AS VARCHAR)"
    cond = _account_where(engine, where, params) if has_accounts else ("TRUE" if not where else None)
    if cond is None:
        raise QueryError("cannot restrict accounts without an accounts table loaded")
    trend = (f"d AS (SELECT account_id, sum(active_days) FILTER (WHERE week < {sql.date_literal(mid)}) AS before_days, "
             f"sum(active_days) FILTER (WHERE week >= {sql.date_literal(mid)}) AS after_days FROM u GROUP BY account_id)")
    rank_by = ("COALESCE(b.mrr, 0) DESC" if order == "mrr"
               else "COALESCE(d.before_days, 0) - COALESCE(d.after_days, 0) DESC, COALESCE(b.mrr, 0) DESC")
    picked = (f"p AS (SELECT b.account_id, {name} AS account, {seg} AS segment, b.mrr, "
              f"row_number() OVER (ORDER BY {rank_by}, b.account_id) AS rank FROM b{acct_join} "
              f"LEFT JOIN d ON d.account_id = b.account_id WHERE {cond})")
    text = (f"WITH {weeks_cte}, {use}, {base}, {trend}, {picked} "
            "SELECT p.account_id, p.account, p.segment, p.mrr, W.week, COALESCE(u.events, 0) AS events, "
            "COALESCE(u.users, 0) AS users, COALESCE(u.active_days, 0) AS active_days, p.rank "
            f"FROM p CROSS JOIN W LEFT JOIN u ON u.account_id = p.account_id AND u.week = W.week "
            f"WHERE p.rank <= {int(limit)} ORDER BY p.rank, W.week")
    df = _query(engine, text, params)
    df["week"] = pd.to_datetime(df["week"]).dt.date
    for c in ("events", "users", "active_days", "rank"):
        df[c] = df[c].astype("int64")
    return df


def _month_ends(first: date, last: date) -> list[date]:
    out = []
    p = period_containing(first, Grain.MONTH)
    while p.end <= last:
        out.append(p.end)
        p = p.shift(1)
    return out


def cohort_retention(engine: Any, end: Period | date, *, cohorts: int = 12, basis: str = "logo",
                     where: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per monthly cohort (customers whose first subscription starts that month) and age in
    months: how many still pay at that month's end and how much MRR they pay.

    Cohorts are the `cohorts` months ending with the last complete month at `end`; age 0 is the
    end of the cohort's own month. `basis="logo"`: rate = customers paying / cohort size;
    `basis="revenue"`: rate = MRR / the cohort's MRR at age 0 (net revenue retention). Columns:
    cohort (YYYY-MM), age, size, active, mrr, rate.
    """
    if basis not in ("logo", "revenue"):
        raise QueryError(f"basis must be 'logo' or 'revenue', got {basis!r}")
    _require(engine, "subscriptions")
    last = end.end if isinstance(end, Period) else end
    last = min(last, engine.as_of)
    last_month = period_containing(last, Grain.MONTH)
    if last_month.end > last:
        last_month = last_month.previous()
    first_month = last_month.shift(-(cohorts - 1))
    key = ("cohorts", first_month.key, last_month.key, basis, tuple(sorted((where or {}).items())))
    return _cached(engine, key, lambda: _cohorts(engine, first_month, last_month, basis, where))


def _cohorts(engine: Any, first_month: Period, last_month: Period, basis: str,
             where: Mapping[str, str] | None) -> pd.DataFrame:
    params: list[Any] = []
    ends = _month_ends(first_month.start, last_month.end)
    has_accounts = "accounts" in engine.loaded
    join = " LEFT JOIN accounts AS a ON a.account_id = f.customer_id" if has_accounts and where else ""
    cond = _account_where(engine, where, params) if where else "TRUE"
    counts = "t.start_date <= M.d AND (t.end_date IS NULL OR t.end_date > M.d)"
    text = (
        "WITH M(d) AS (VALUES " + ", ".join(f"({sql.date_literal(d)})" for d in ends) + "), "
        "f AS (SELECT t.customer_id, min(t.start_date) AS first_day FROM subscriptions AS t WHERE t.mrr > 0 "
        "AND (t.end_date IS NULL OR t.end_date > t.start_date) GROUP BY t.customer_id), "
        f"c AS (SELECT f.customer_id, {sql.month_start('f.first_day')} AS cohort FROM f{join} WHERE f.first_day "
        f"BETWEEN {sql.date_literal(first_month.start)} AND {sql.date_literal(last_month.end)} AND {cond}), "
        "s AS (SELECT cohort, count(*) AS size FROM c GROUP BY cohort), "
        "o AS (SELECT c.cohort, M.d, c.customer_id, sum(CASE WHEN " + counts + " THEN t.mrr ELSE 0 END) AS mrr "
        "FROM c JOIN M ON M.d >= c.cohort JOIN subscriptions AS t ON t.customer_id = c.customer_id "
        "GROUP BY c.cohort, M.d, c.customer_id) "
        "SELECT o.cohort, o.d, s.size, count(*) FILTER (WHERE o.mrr > 0) AS active, sum(o.mrr) AS mrr "
        "FROM o JOIN s ON s.cohort = o.cohort GROUP BY o.cohort, o.d, s.size ORDER BY o.cohort, o.d"
    )
    df = _query(engine, text, params)
    if df.empty:
        return pd.DataFrame(columns=["cohort", "age", "size", "active", "mrr", "rate"])
    cohort = pd.to_datetime(df["cohort"])
    at = pd.to_datetime(df["d"])
    df["age"] = (at.dt.year - cohort.dt.year) * 12 + at.dt.month - cohort.dt.month
    df["cohort"] = cohort.dt.strftime("%Y-%m")
    if basis == "logo":
        df["rate"] = df["active"] / df["size"]
    else:
        start = df[df["age"] == 0].set_index("cohort")["mrr"]
        df["rate"] = df["mrr"] / df["cohort"].map(start).where(lambda s: s > 0)
    df["size"] = df["size"].astype("int64")
    df["active"] = df["active"].astype("int64")
    return df[["cohort", "age", "size", "active", "mrr", "rate"]].reset_index(drop=True)


def account_health(engine: Any, period: Period, *, filters: tuple = (), limit: int | None = None) -> pd.DataFrame:
    """Per account with MRR > 0 at the end of `period`: signals, signal scores and health, least
    healthy first (the at-risk list), with the workspace's health parameters."""
    m = metric("health_score")
    lacking = engine.missing(m, tuple(filters))
    if lacking is not None:
        raise QueryError(f"account health {lacking.reason()}")
    params_values = metric_params(engine.settings)
    q = MetricQuery("health_score", (period,), engine.as_of, None, tuple(filters), engine.columns, params_values)
    key = ("health", period, tuple(filters), limit, params_values)

    def run() -> pd.DataFrame:
        params: list[Any] = []
        cte = _health_cte("h", q, m, params)
        text = (f"WITH {periods_cte([period], engine.as_of)}, {cte} "
                "SELECT h.customer_id AS account_id, h.m1 AS mrr, h.recent_days, h.earlier_days, h.recent_features, "
                "h.tickets, h.nps_mean, h.usage_score, h.ticket_score, h.nps_score, h.health FROM h "
                "ORDER BY h.health, h.customer_id" + (f" LIMIT {int(limit)}" if limit else ""))
        return _query(engine, text, params)

    return _cached(engine, key, run)
