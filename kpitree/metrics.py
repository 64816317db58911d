"""The metric catalogue: each definition of PRODUCT.md as SQL components over canonical tables.

A metric is a handful of *components* (sums and counts) computed per period and, optionally,
per segment of one dimension, plus a value expression over those components. Keeping the
components (not only the value) is what makes explanations exact: a win rate is `won / decided`,
so a segment's effect on it splits into mix (its share of `decided`) and rate (its own ratio).

All periods asked for are computed in one query, joined against a small `P` relation of period
bounds; nothing is computed in Python loops over rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

import duckdb
import pandas as pd

from . import dialect as sql
from .errors import QueryError
from .periods import Period
from .schema import TABLES


class Kind(StrEnum):
    """How a metric behaves over time; decides pace in a running period."""

    FLOW = "flow"  # sums over the period: pro-rated by elapsed time while the period runs
    STOCK = "stock"  # a level at the end of the period: its latest value stands
    RATIO = "ratio"  # a rate: its value so far stands


@dataclass(frozen=True)
class Source:
    """One query feeding some components: the rows of `table` matched to each period by `on`."""

    table: str
    on: str  # join condition between P (period bounds) and t (the table)
    components: Mapping[str, str]  # component name → aggregate SQL over t
    customer_level: bool = False  # subscriptions: per-customer MRR at two dates, then aggregates


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    kind: Kind
    unit: str  # money, percent, count, days, hours, ratio, money_per_day, months
    direction: str  # higher / lower is better
    definition: str
    sources: tuple[Source, ...]
    value: str  # SQL over component names
    ratio: tuple[str, str] | None = None  # (numerator, denominator) for mix/rate splits
    additive: bool = False  # segment values add up to the total value
    baseline: str = "previous"  # which date m0 is taken at for customer-level metrics
    needs: tuple[str, ...] = ()  # extra tables, beside the sources', needed for a value
    running: str | None = None  # catalogue name of the definition used while the period runs

    @property
    def table(self) -> str:
        return self.sources[0].table

    @property
    def components(self) -> tuple[str, ...]:
        out: list[str] = []
        for s in self.sources:
            out.extend(c for c in s.components if c not in out)
        return tuple(out)

    @property
    def tables(self) -> tuple[str, ...]:
        out: list[str] = []
        for t in (*(s.table for s in self.sources), *self.needs):
            if t not in out:
                out.append(t)
        return tuple(out)


# --- building blocks -----------------------------------------------------------------------

CLOSED_IN_P = "t.close_date BETWEEN P.p_start AND P.p_end"
CREATED_IN_P = "t.created_date BETWEEN P.p_start AND P.p_end"
WON = "t.status = 'won'"
DECIDED = "t.status IN ('won', 'lost')"
OPEN_AT_START = "t.created_date <= P.p_start AND (t.status = 'open' OR t.close_date >= P.p_start)"


def _count(cond: str) -> str:
    return f"count(*) FILTER (WHERE {cond})"


def _sum(expr: str, cond: str) -> str:
    return f"sum({expr}) FILTER (WHERE {cond})"


def _deals(on: str, **components: str) -> Source:
    return Source("deals", on, components)


def _customers(**components: str) -> Source:
    """Aggregates over the per-customer (m0, m1, had_before) rows; see `_customer_cte`."""
    return Source("subscriptions", "", components, customer_level=True)


M0_POS = "c.m0 > 0"

CATALOGUE: dict[str, Metric] = {}


def _add(metric: Metric) -> None:
    CATALOGUE[metric.name] = metric


# Revenue (subscriptions) ---------------------------------------------------------------
_add(Metric("mrr", "MRR", Kind.STOCK, "money", "higher",
            "Σ mrr of subscriptions counting at the end of P (start ≤ day < end).",
            (_customers(mrr="sum(c.m1)"),), "mrr", additive=True))
_add(Metric("arr", "ARR", Kind.STOCK, "money", "higher", "12 × mrr at the end of P.",
            (_customers(mrr="sum(c.m1)"),), "12 * mrr", additive=True))
_add(Metric("mrr_start", "MRR at start", Kind.STOCK, "money", "higher",
            "Σ mrr counting at the end of P−1 (the opening balance of P).",
            (_customers(mrr0="sum(c.m0)"),), "mrr0", additive=True))
_add(Metric("arr_start", "ARR at start", Kind.STOCK, "money", "higher", "12 × MRR at the end of P−1.",
            (_customers(mrr0="sum(c.m0)"),), "12 * mrr0", additive=True))
_MOVES = {
    "mrr_new": ("New MRR", "higher", "Σ m1 of customers with m0 = 0 that never had MRR before.",
                "sum(c.m1) FILTER (WHERE c.m0 = 0 AND c.m1 > 0 AND NOT c.had_before)"),
    "mrr_reactivation": ("Reactivation MRR", "higher", "Σ m1 of customers with m0 = 0 that had MRR before.",
                         "sum(c.m1) FILTER (WHERE c.m0 = 0 AND c.m1 > 0 AND c.had_before)"),
    "mrr_expansion": ("Expansion MRR", "higher", "Σ (m1 − m0) where m1 > m0 > 0.",
                      "sum(c.m1 - c.m0) FILTER (WHERE c.m1 > c.m0 AND c.m0 > 0)"),
    "mrr_contraction": ("Contraction MRR", "lower", "Σ (m0 − m1) where 0 < m1 < m0.",
                        "sum(c.m0 - c.m1) FILTER (WHERE c.m1 < c.m0 AND c.m1 > 0)"),
    "mrr_churn": ("Churned MRR", "lower", "Σ m0 where m0 > 0 and m1 = 0.",
                  "sum(c.m0) FILTER (WHERE c.m0 > 0 AND c.m1 = 0)"),
}
for _name, (_label, _dir, _def, _agg) in _MOVES.items():
    _add(Metric(_name, _label, Kind.FLOW, "money", _dir, _def, (_customers(amount=_agg),), "amount", additive=True))
    _add(Metric(_name.replace("mrr_", "arr_"), _label.replace("MRR", "ARR"), Kind.FLOW, "money", _dir, "12 × " + _name + ".",
                (_customers(amount=_agg),), "12 * amount", additive=True))
_add(Metric("nrr", "Net revenue retention", Kind.RATIO, "percent", "higher",
            "Over customers with m0 > 0: Σ m1 / Σ m0.",
            (_customers(kept="sum(c.m1) FILTER (WHERE c.m0 > 0)", base="sum(c.m0) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("kept", "base"), ratio=("kept", "base")))
_add(Metric("grr", "Gross revenue retention", Kind.RATIO, "percent", "higher",
            "Over customers with m0 > 0: Σ min(m0, m1) / Σ m0.",
            (_customers(kept="sum(least(c.m0, c.m1)) FILTER (WHERE c.m0 > 0)",
                        base="sum(c.m0) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("kept", "base"), ratio=("kept", "base")))
_add(Metric("nrr_12m", "NRR (12 months)", Kind.RATIO, "percent", "higher",
            "As nrr, with m0 taken 12 months before the end of P.",
            (_customers(kept="sum(c.m1) FILTER (WHERE c.m0 > 0)", base="sum(c.m0) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("kept", "base"), ratio=("kept", "base"), baseline="12m"))
_add(Metric("grr_12m", "GRR (12 months)", Kind.RATIO, "percent", "higher",
            "As grr, with m0 taken 12 months before the end of P.",
            (_customers(kept="sum(least(c.m0, c.m1)) FILTER (WHERE c.m0 > 0)",
                        base="sum(c.m0) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("kept", "base"), ratio=("kept", "base"), baseline="12m"))
_add(Metric("expansion_rate", "Expansion rate", Kind.RATIO, "percent", "higher",
            "Σ (m1 − m0) where m1 > m0 > 0, over Σ m0 of customers with m0 > 0; nrr = grr + expansion_rate.",
            (_customers(expanded="sum(c.m1 - c.m0) FILTER (WHERE c.m1 > c.m0 AND c.m0 > 0)",
                        base="sum(c.m0) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("expanded", "base"), ratio=("expanded", "base")))
_add(Metric("logo_churn_rate", "Logo churn rate", Kind.RATIO, "percent", "lower",
            "Customers with m0 > 0 and m1 = 0, over customers with m0 > 0.",
            (_customers(churned="count(*) FILTER (WHERE c.m0 > 0 AND c.m1 = 0)",
                        base="count(*) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("churned", "base"), ratio=("churned", "base")))
_add(Metric("active_customers", "Active customers", Kind.STOCK, "count", "higher",
            "Customers with MRR > 0 at the end of P.",
            (_customers(customers="count(*) FILTER (WHERE c.m1 > 0)"),), "customers", additive=True))
_add(Metric("arpa", "ARPA", Kind.RATIO, "money", "higher", "mrr / active_customers at the end of P.",
            (_customers(mrr="sum(c.m1)", customers="count(*) FILTER (WHERE c.m1 > 0)"),),
            sql.safe_div("mrr", "customers"), ratio=("mrr", "customers")))

# Bookings (deals) ---------------------------------------------------------------------------
_add(Metric("new_business_arr", "New business ARR", Kind.FLOW, "money", "higher",
            "Σ amount of won deals with deal_type = new, by close_date in P.",
            (_deals(CLOSED_IN_P, amount=_sum("t.amount", f"{WON} AND t.deal_type = 'new'")),),
            "amount", additive=True))
_add(Metric("expansion_arr", "Expansion ARR", Kind.FLOW, "money", "higher",
            "Σ amount of won deals with deal_type = expansion (price increases included), by close_date in P.",
            (_deals(CLOSED_IN_P, amount=_sum("t.amount", f"{WON} AND t.deal_type = 'expansion'")),),
            "amount", additive=True))
_add(Metric("new_arr", "New ARR", Kind.FLOW, "money", "higher",
            "new_business_arr + expansion_arr.",
            (_deals(CLOSED_IN_P, amount=_sum("t.amount", f"{WON} AND t.deal_type IN ('new', 'expansion')")),),
            "amount", additive=True))
_add(Metric("won_deals", "Won deals", Kind.FLOW, "count", "higher", "Won deals closed in P.",
            (_deals(CLOSED_IN_P, won=_count(WON)),), "won", additive=True))
_add(Metric("closed_deals", "Closed deals", Kind.FLOW, "count", "higher",
            "Won + lost deals closed in P; won deals = closed_deals × win_rate.",
            (_deals(CLOSED_IN_P, decided=_count(DECIDED)),), "decided", additive=True))
_add(Metric("win_rate", "Win rate", Kind.RATIO, "percent", "higher",
            "Won deals / (won + lost deals), by close_date in P.",
            (_deals(CLOSED_IN_P, won=_count(WON), decided=_count(DECIDED)),),
            sql.safe_div("won", "decided"), ratio=("won", "decided")))
_add(Metric("avg_deal_size", "Average deal size", Kind.RATIO, "money", "higher",
            "Mean amount of won deals closed in P.",
            (_deals(CLOSED_IN_P, amount=_sum("t.amount", WON), won=_count(WON)),),
            sql.safe_div("amount", "won"), ratio=("amount", "won")))
_add(Metric("sales_cycle_days", "Sales cycle", Kind.RATIO, "days", "lower",
            "Mean days from created_date to close_date of won deals closed in P.",
            (_deals(CLOSED_IN_P, days=_sum(sql.days_between("t.created_date", "t.close_date"), WON), won=_count(WON)),),
            sql.safe_div("days", "won"), ratio=("days", "won")))
_add(Metric("opportunities_created", "Opportunities created", Kind.FLOW, "count", "higher",
            "Deals with created_date in P.",
            (_deals(CREATED_IN_P, opps="count(*)"),), "opps", additive=True))
_add(Metric("open_pipeline", "Open pipeline", Kind.STOCK, "money", "higher",
            "Σ amount of deals created on or before the start of P and still open at the start of P.",
            (_deals(OPEN_AT_START, amount="sum(t.amount)"),), "amount", additive=True))
_add(Metric("open_deals", "Open deals at start", Kind.STOCK, "count", "higher",
            "Deals created on or before the start of P and still open at the start of P.",
            (_deals(OPEN_AT_START, deals="count(*)"),), "deals", additive=True))
_QUOTA = Source(
    "quotas",
    "t.period_start <= P.p_end AND t.period_end >= P.p_start",
    {
        # A quota's period may be longer or shorter than P: its overlap is pro-rated by days.
        "quota": "sum(t.quota * (" + sql.days_between("greatest(t.period_start, P.p_start)",
                                                         "least(t.period_end, P.p_end)")
        + " + 1) / (" + sql.days_between("t.period_start", "t.period_end") + " + 1))",
    },
)
_add(Metric("quota", "Quota", Kind.FLOW, "money", "higher",
            "Σ quota of P (quotas of other lengths pro-rated by overlapping days).",
            (_QUOTA,), "quota", additive=True))
_add(Metric("pipeline_coverage", "Pipeline coverage", Kind.RATIO, "ratio", "higher",
            "open_pipeline / Σ quota of P; for the running period, open pipeline now / "
            "max(quota − won new_arr so far, 0).",
            (_deals(OPEN_AT_START, pipeline="sum(t.amount)"), _QUOTA),
            sql.safe_div("pipeline", "quota"), ratio=("pipeline", "quota"), running="pipeline_coverage_running"))
_add(Metric("pipeline_coverage_running", "Pipeline coverage (running period)", Kind.RATIO, "ratio", "higher",
            "Open pipeline now / max(quota of P − won new_arr so far in P, 0).",
            (_deals("t.created_date <= P.p_cut AND (t.status = 'open' OR t.close_date BETWEEN P.p_start AND P.p_cut)",
                    pipeline=_sum("t.amount", "t.status = 'open'"),
                    won=_sum("t.amount", f"{WON} AND t.deal_type IN ('new', 'expansion') AND t.close_date >= P.p_start")),
             _QUOTA),
            sql.safe_div("pipeline", "greatest(quota - won, 0)"), ratio=("pipeline", "quota")))
_VELOCITY = (
    _deals(OPEN_AT_START, open_deals="count(*)"),
    _deals(CLOSED_IN_P, won_amount=_sum("t.amount", WON), won=_count(WON), decided=_count(DECIDED),
           cycle_days=_sum(sql.days_between("t.created_date", "t.close_date"), WON)),
)
_add(Metric("pipeline_velocity", "Pipeline velocity", Kind.RATIO, "money_per_day", "higher",
            "(open deals at start of P × avg_deal_size × win_rate) / sales_cycle_days.",
            _VELOCITY,
            "(CAST(open_deals AS DOUBLE) * " + sql.safe_div("won_amount", "won") + " * "
            + sql.safe_div("won", "decided") + " / NULLIF(" + sql.safe_div("cycle_days", "won") + ", 0))"))
_add(Metric("ps_attach_rate", "PS attach rate", Kind.RATIO, "percent", "higher",
            "Share of won new deals closed in P with services_amount > 0.",
            (_deals(CLOSED_IN_P, attached=_count(f"{WON} AND t.deal_type = 'new' AND t.services_amount > 0"),
                    won=_count(f"{WON} AND t.deal_type = 'new'")),),
            sql.safe_div("attached", "won"), ratio=("attached", "won")))
_add(Metric("renewals_due", "Renewals due", Kind.FLOW, "count", "higher",
            "Deals with deal_type = renewal and close_date in P, any status.",
            (_deals(CLOSED_IN_P, due=_count("t.deal_type = 'renewal'")),), "due", additive=True))
_add(Metric("new_customers", "New customers", Kind.FLOW, "count", "higher",
            "Distinct account_id of won new deals closed in P.",
            (_deals(CLOSED_IN_P, customers=f"count(DISTINCT t.account_id) FILTER (WHERE {WON} AND t.deal_type = 'new')"),),
            "customers"))

# Acquisition (leads, spend) ------------------------------------------------------------
_LEADS_CREATED = "t.created_date BETWEEN P.p_start AND P.p_end"
_add(Metric("leads", "Leads", Kind.FLOW, "count", "higher", "Leads created in P.",
            (Source("leads", _LEADS_CREATED, {"leads": "count(*)"}),), "leads", additive=True))
_add(Metric("lead_to_opp_rate", "Lead → opportunity", Kind.RATIO, "percent", "higher",
            "Of leads created in P, the share with a deal_id.",
            (Source("leads", _LEADS_CREATED, {"converted": _count("t.deal_id IS NOT NULL"), "leads": "count(*)"}),),
            sql.safe_div("converted", "leads"), ratio=("converted", "leads")))
_add(Metric("mql_to_sql_rate", "MQL → SQL", Kind.RATIO, "percent", "higher",
            "Of leads with mql_date in P, the share with a sql_date.",
            (Source("leads", "t.mql_date BETWEEN P.p_start AND P.p_end",
                    {"sqls": _count("t.sql_date IS NOT NULL"), "mqls": "count(*)"}),),
            sql.safe_div("sqls", "mqls"), ratio=("sqls", "mqls")))
_add(Metric("sql_to_won_rate", "SQL → won", Kind.RATIO, "percent", "higher",
            "Of leads with sql_date in P, the share whose deal is won.",
            (Source("leads", "t.sql_date BETWEEN P.p_start AND P.p_end",
                    {"won": _count("t.deal_id IN (SELECT deal_id FROM deals WHERE status = 'won')"), "sqls": "count(*)"}),),
            sql.safe_div("won", "sqls"), ratio=("won", "sqls"), needs=("deals",)))
_add(Metric("spend", "Spend", Kind.FLOW, "money", "lower",
            "Σ spend.amount in P (monthly spend pro-rated by days for weeks).",
            (Source("spend", "t.month <= P.p_end AND " + sql.add_months("t.month", 1) + " > P.p_start",
                    {"spend": "sum(t.amount * (" + sql.days_between(
                        "greatest(t.month, P.p_start)", "least(" + sql.add_months("t.month", 1) + " - 1, P.p_end)")
                     + " + 1) / (" + sql.days_between("t.month", sql.add_months("t.month", 1)) + "))"}),),
            "spend", additive=True))

# Activity ---------------------------------------------------------------------------------
_ACT_IN_P = "t.date BETWEEN P.p_start AND P.p_end"
_add(Metric("activities", "Activities", Kind.FLOW, "count", "higher",
            "Activities in P (filter by type for calls, demos, proposals, health checks).",
            (Source("activities", _ACT_IN_P, {"activities": "count(*)"}),), "activities", additive=True))
_add(Metric("touches_per_rep_week", "Touches per rep per week", Kind.RATIO, "count", "higher",
            "Calls + emails in P per distinct owner with a call or email, per week of P.",
            (Source("activities", _ACT_IN_P,
                    {"touches": _count("t.type IN ('call', 'email')"),
                     "reps": "count(DISTINCT t.owner) FILTER (WHERE t.type IN ('call', 'email'))",
                     "weeks": "max(" + sql.days_between("P.p_start", "P.p_end") + " + 1) / 7.0"}),),
            "(CAST(touches AS DOUBLE) / NULLIF(reps, 0) / NULLIF(weeks, 0))"))


def register(m: Metric) -> str:
    """Adds a metric defined at run time (a tree's custom measure) and returns its name.

    Names of run-time metrics should be derived from their definition (e.g. a hash), so two
    trees never overwrite each other's measure with a different one under the same name.
    """
    existing = CATALOGUE.get(m.name)
    if existing is not None and existing != m:
        raise QueryError(f"metric {m.name!r} is already defined differently")
    CATALOGUE[m.name] = m
    return m.name


def metric(name: str) -> Metric:
    """The catalogue entry, or a QueryError naming close matches."""
    try:
        return CATALOGUE[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, CATALOGUE, n=3)
        hint = f" — did you mean {', '.join(close)}?" if close else ""
        raise QueryError(f"unknown metric {name!r}{hint}") from None


# --- SQL generation -------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricQuery:
    """What to compute: a metric, optional row filter and split, over some periods."""

    metric: str
    periods: tuple[Period, ...]
    as_of: date
    dimension: str | None = None
    filters: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (table, its columns) as loaded

    def columns_of(self, table: str) -> tuple[str, ...]:
        for name, cols in self.columns:
            if name == table:
                return cols
        return TABLES[table].column_names if table in TABLES else ()

    def with_metric(self, name: str) -> MetricQuery:
        return MetricQuery(name, self.periods, self.as_of, self.dimension, self.filters, self.columns)


def _periods_cte(periods: Sequence[Period], as_of: date) -> str:
    rows = []
    for p in periods:
        cut = min(p.end, as_of) if as_of >= p.start else p.end
        b_end = p.start - timedelta(days=1)
        b12 = p.end.replace(year=p.end.year - 1) if not (p.end.month == 2 and p.end.day == 29) else p.end - timedelta(days=366)
        rows.append(
            f"('{p.key}', {sql.date_literal(p.start)}, {sql.date_literal(p.end)}, {sql.date_literal(cut)}, "
            f"{sql.date_literal(b_end)}, {sql.date_literal(b12 if cut == p.end else b12 - (p.end - cut))})"
        )
    return f"P(pkey, p_start, p_end, p_cut, b_end, b12_end) AS (VALUES {', '.join(rows)})"


def _dimension_sql(q: MetricQuery, table: str) -> tuple[str, str]:
    """The segment expression for the table and any join it needs (accounts for account attributes)."""
    if q.dimension is None:
        return "'(all)'", ""
    cols = q.columns_of(table)
    dim = q.dimension
    if dim in cols:
        return f"COALESCE(CAST(t.{sql.quote_ident(dim)} AS VARCHAR), '(none)')", ""
    key = "customer_id" if table == "subscriptions" else "account_id"
    if key in cols and dim in q.columns_of("accounts"):
        join = f" LEFT JOIN accounts AS a ON a.account_id = t.{key}"
        return f"COALESCE(CAST(a.{sql.quote_ident(dim)} AS VARCHAR), '(none)')", join
    raise QueryError(f"cannot split {q.metric!r} by {dim!r}: table {table!r} has no such column")


def _filter_sql(q: MetricQuery, table: str, params: list[Any]) -> str:
    cols = q.columns_of(table)
    parts = []
    for col, values in q.filters:
        if col not in cols:
            raise QueryError(f"cannot filter {q.metric!r} on {col!r}: table {table!r} has no such column")
        marks = ", ".join("?" for _ in values)
        parts.append(f"CAST(t.{sql.quote_ident(col)} AS VARCHAR) IN ({marks})")
        params.extend(str(v) for v in values)
    return " AND ".join(parts) if parts else "TRUE"


def _customer_cte(q: MetricQuery, m: Metric, params: list[Any]) -> str:
    """The per-customer CTE named `c` for one metric, filtered by the query's filters."""
    return _customers_cte("c", q, m.baseline, True, params)


def _customers_cte(name: str, q: MetricQuery, baseline: str, filtered: bool, params: list[Any]) -> str:
    """Per period and customer: MRR at the end of P (m1), at the baseline date (m0), and whether
    the customer had MRR on some day up to the baseline (to tell new from reactivated).

    Only subscriptions alive at the baseline or later are joined to each period (an `end_date`
    after the baseline), so the join stays near "customers × periods" however long the history;
    "had MRR before" comes from each customer's first counting day, computed once.
    """
    dim, join = _dimension_sql(q, "subscriptions")
    first_where = _filter_sql(q, "subscriptions", params) if filtered else "TRUE"  # placeholders in SQL order
    where = _filter_sql(q, "subscriptions", params) if filtered else "TRUE"
    b = "P.b12_end" if baseline == "12m" else "P.b_end"
    counts_at = "t.start_date <= {d} AND (t.end_date IS NULL OR t.end_date > {d})"
    return (
        f"{name}_first AS (SELECT t.customer_id, min(t.start_date) AS first_day FROM subscriptions AS t "
        f"WHERE t.mrr > 0 AND (t.end_date IS NULL OR t.end_date > t.start_date) AND {first_where} "
        "GROUP BY t.customer_id), "
        f"{name}_live AS (SELECT P.pkey, t.customer_id, "
        # CASE inside sum() aggregates measurably faster than FILTER on DuckDB here.
        f"sum(CASE WHEN {counts_at.format(d='P.p_cut')} THEN t.mrr ELSE 0 END) AS m1, "
        f"sum(CASE WHEN {counts_at.format(d=b)} THEN t.mrr ELSE 0 END) AS m0, "
        f"{sql.value_at_latest(dim, 't.start_date') if q.dimension else dim} AS segment "
        f"FROM P JOIN subscriptions AS t ON t.start_date <= P.p_cut AND (t.end_date IS NULL OR t.end_date > {b})"
        f"{join} WHERE {where} GROUP BY ALL), "
        f"{name} AS (SELECT l.pkey, l.customer_id, l.m1, l.m0, l.segment, "
        f"COALESCE(f.first_day <= {b}, FALSE) AS had_before "
        f"FROM {name}_live AS l JOIN P ON P.pkey = l.pkey LEFT JOIN {name}_first AS f ON f.customer_id = l.customer_id)"
    )


_WORD = re.compile(r"\b[a-z_][a-z0-9_]*\b")


def build_batch_sql(q: MetricQuery, names: Sequence[str]) -> tuple[str, list[Any], dict[str, dict[str, str]]]:
    """One query computing several metrics that share periods, filter and split.

    Metrics reading the same rows (same table, join condition, filter) share one scan, and
    identical aggregates are computed once. Returns the SQL, its parameters, and per metric
    the map component name → result column (plus "value" → its value column).
    """
    params: list[Any] = []
    ctes = [_periods_cte(q.periods, q.as_of)]
    groups: dict[tuple, dict[str, str]] = {}  # source signature → aggregate SQL → alias
    columns: dict[str, dict[str, str]] = {}
    n = 0
    for name in names:
        m = metric(name)
        columns[name] = {}
        for src in m.sources:
            filtered = src.table == m.table
            key = (src.table, src.on, src.customer_level, m.baseline if src.customer_level else "", filtered)
            aggs = groups.setdefault(key, {})
            for comp, agg in src.components.items():
                if agg not in aggs:
                    aggs[agg] = f"k{n}"
                    n += 1
                columns[name][comp] = aggs[agg]
    aliases = [a for aggs in groups.values() for a in aggs.values()]
    selects = []
    for g, (key, aggs) in enumerate(groups.items()):
        table, on, customer_level, baseline, filtered = key
        # UNION ALL matches by position: every branch lists all aliases in one order.
        mine = {alias: agg for agg, alias in aggs.items()}
        cols = [f"COALESCE({mine[a]}, 0) AS {a}" if a in mine else f"0 AS {a}" for a in aliases]
        if customer_level:
            cte = f"c{g}"
            ctes.append(_customers_cte(cte, q, baseline, filtered, params))
            selects.append(f"SELECT c.pkey, c.segment, {', '.join(cols)} FROM {cte} AS c GROUP BY c.pkey, c.segment")
            continue
        dim, join = _dimension_sql(q, table)
        where = _filter_sql(q, table, params) if filtered else "TRUE"
        selects.append(
            f"SELECT P.pkey, {dim} AS segment, {', '.join(cols)} "
            f"FROM P JOIN {table} AS t ON {on}{join} WHERE {where} GROUP BY P.pkey, {dim}"
        )
    sums = ", ".join(f"sum({a}) AS {a}" for a in aliases)
    values = []
    for i, name in enumerate(names):
        mapping = columns[name]
        expr = _WORD.sub(lambda w, mp=mapping: mp.get(w.group(0), w.group(0)), metric(name).value)
        values.append(f"{expr} AS v{i}")
        mapping["value"] = f"v{i}"
    text = (
        f"WITH {', '.join(ctes)}, u AS ({' UNION ALL '.join(selects)}), "
        f"g AS (SELECT pkey, segment, {sums} FROM u GROUP BY pkey, segment) "
        f"SELECT pkey, segment, {', '.join(aliases)}, {', '.join(values)} FROM g ORDER BY pkey, segment"
    )
    return text, params, columns


def build_sql(q: MetricQuery) -> tuple[str, list[Any]]:
    """SQL for one metric: one row per (pkey, segment) with its components and `value`."""
    text, params, _ = build_batch_sql(q, [q.metric])
    return text, params


def compute_many(con: duckdb.DuckDBPyConnection, q: MetricQuery, names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Components and value per period (and segment) for each metric, from one query.

    Every asked period gets a row in the unsplit case; a period with no matching rows has zero
    components (and a value of 0 for sums, None for ratios).
    """
    names = list(dict.fromkeys(names))
    text, params, columns = build_batch_sql(q, names)
    try:
        raw = con.execute(text, params).df()
    except duckdb.Error as exc:
        raise QueryError(f"metrics {', '.join(names)}: {str(exc).splitlines()[0]}") from None
    if q.dimension is None:
        keys = pd.DataFrame({"pkey": [p.key for p in q.periods], "segment": "(all)"})
        raw = keys.merge(raw, on=["pkey", "segment"], how="left")
    out = {}
    for name in names:
        m = metric(name)
        mapping = columns[name]
        df = pd.DataFrame({"pkey": raw["pkey"], "segment": raw["segment"]})
        for comp in m.components:
            df[comp] = raw[mapping[comp]].fillna(0).astype("float64") if q.dimension is None else raw[mapping[comp]]
        df["value"] = raw[mapping["value"]].astype("float64")
        if q.dimension is None and m.additive:
            df["value"] = df["value"].fillna(0.0)
        out[name] = df
    return out


def compute(con: duckdb.DuckDBPyConnection, q: MetricQuery) -> pd.DataFrame:
    """Components and value per period (and segment) for one metric."""
    return compute_many(con, q, [q.metric])[q.metric]
