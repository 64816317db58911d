"""The metric catalogue: each definition of PRODUCT.md as SQL components over canonical tables.

A metric is a handful of *components* (sums and counts) computed per period and, optionally,
per segment of one dimension, plus a value expression over those components. Keeping the
components (not only the value) is what makes explanations exact: a win rate is `won / decided`,
so a segment's effect on it splits into mix (its share of `decided`) and rate (its own ratio).

All periods asked for are computed in one query, joined against a small `P` relation of period
bounds; nothing is computed in Python loops over rows.

Components aggregate either raw rows of a canonical table or an *entity relation* (ENTITIES: MRR
per customer, sessions per user, journeys, first value, health per account) built in the same
query. A node's filter restricts every table of a metric that has the filtered column (ROAS of a
channel is that channel's new ARR over that channel's spend), except columns a source declares
`exempt` (feature adoption's population). Definitions with parameters (gross margin, health
weights) take the workspace's values through `MetricQuery.params` (see `metric_params`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

import duckdb
import pandas as pd

from . import dialect as sql
from . import health
from .detect import not_a_segment
from .errors import QueryError
from .health import Parameter
from .periods import Period, period_containing
from .schema import TABLES, ColumnType


class Kind(StrEnum):
    """How a metric behaves over time; decides pace in a running period."""

    FLOW = "flow"  # sums over the period: pro-rated by elapsed time while the period runs
    STOCK = "stock"  # a level at the end of the period: its latest value stands
    RATIO = "ratio"  # a rate: its value so far stands


@dataclass(frozen=True)
class Source:
    """One query feeding some components: the rows of `table` matched to each period by `on`.

    A customer-level source aggregates rows of a per-entity relation `c` (one row per period,
    segment and customer, account or user — see ENTITIES) instead of raw table rows; `entity`
    names which one. Components may use workspace parameters as `{name}` placeholders
    (see PARAMETERS), which are spliced in as number literals.
    """

    table: str
    on: str  # join condition between P (period bounds) and t (the table)
    components: Mapping[str, str]  # component name → aggregate SQL over t (or c)
    customer_level: bool = False  # aggregates over an entity relation `c`, by default per-customer MRR
    entity: str = "customers"  # which entity relation a customer-level source reads
    # Filter and split columns that do not apply here: the population a share is taken of
    # (feature adoption: accounts using feature X over accounts using anything).
    exempt: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cohort:
    """A rate over a cohort: its rows join on one day (`start`, the day the period is matched on)
    and complete it on a later one (`done`): a lead created in P that became an opportunity.

    Such a rate is not final while the cohort is young: a week's leads have not had the weeks a
    lead takes to become an opportunity. `maturity_sql` learns from earlier cohorts how long
    completion usually takes and how much of it has happened by each age (see there).
    """

    start: str  # SQL over t: the day a row joins the cohort
    done: str  # SQL over t (and `joins`): the day the row completed; NULL while it has not
    event: str  # the completing event in words ("became an opportunity")
    joins: str = ""  # joins `done` needs (the deal a lead became)
    needs: tuple[str, ...] = ()  # tables `done` reads beyond the metric's own: no maturity without them
    # A metric over an entity relation (journeys, first value) names columns of its rows (c) in
    # `start` and `done` instead: the relation already is one row per cohort member.
    # What the value is: "share" (of the cohort that completed so far: the expected final value is
    # value / completion) or "mean_lag" (the mean time to complete of those that did so far — young
    # rows that have not completed yet are left out, so it reads too short; see `Maturity.expected`).
    measure: str = "share"


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
    # how a ratio's monthly targets make a quarter's (see `Target.for_period`): mean for rates that
    # do not compound (win rate), compound for retention (a quarter keeps Π of its months), churn
    # for loss rates (1 − Π(1 − monthly)), sum for small per-period rates such as expansion
    rollup: str = "mean"
    cohort: Cohort | None = None  # a cohort rate, not final while its cohort is young (see `Cohort`)
    # a percent that is a part of its whole (win rate, churn): never above 100 %. NRR and the expansion
    # rate are not: a what-if asking 106 % of them asks something normal, not the impossible.
    share: bool = True

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
        """Every table a value needs: the sources', those their entity relations read, and `needs`."""
        out: list[str] = []
        entity_tables = [t for s in self.sources if s.customer_level for t in ENTITIES[s.entity].reads]
        for t in (*(s.table for s in self.sources), *entity_tables, *self.needs):
            if t not in out:
                out.append(t)
        return tuple(out)

    @property
    def parameters(self) -> tuple[str, ...]:
        """Workspace parameters the definition uses (gross margin, health weights…)."""
        found: list[str] = []
        for s in self.sources:
            texts = [s.on, *s.components.values()]
            for text in texts:
                found += [p for p in _PLACEHOLDER.findall(text) if p in PARAMETERS]
            if s.customer_level:
                found += list(ENTITIES[s.entity].parameters)
        return tuple(dict.fromkeys(found))


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
    """Aggregates over the per-customer (m0, m1, had_before) rows; see `_customers_cte`."""
    return Source("subscriptions", "", components, customer_level=True)


def _entity(name: str, table: str, **components: str) -> Source:
    """Aggregates over the rows of entity relation `name` (see ENTITIES), one per period and entity."""
    return Source(table, "", components, customer_level=True, entity=name)


def _spend_between(lo: str, hi: str) -> tuple[str, str]:
    """Join condition and pro-rated sum of monthly spend over the days lo..hi (SQL dates)."""
    nxt = sql.add_months("t.month", 1)
    on = f"t.month <= {hi} AND {nxt} > {lo}"
    agg = ("sum(t.amount * (" + sql.days_between(f"greatest(t.month, {lo})", f"least({nxt} - 1, {hi})")
           + " + 1) / (" + sql.days_between("t.month", nxt) + "))")
    return on, agg


M0_POS = "c.m0 > 0"

# Workspace parameters of the definitions: name → default, unit and meaning. Components refer
# to them as `{name}`; MetricQuery.params carries a workspace's values (see `metric_params`).
PARAMETERS: dict[str, Parameter] = {p.name: p for p in (
    Parameter("gross_margin", 0.8, "percent", "Gross margin on recurring revenue, used by LTV and CAC payback "
              "(workspace setting gross_margin)."),
    Parameter("session_gap_minutes", 30.0, "minutes", "Inactivity that ends a product session."),
    Parameter("journey_window_days", 14.0, "days", "Time a user has, from the journey's first step, to complete it."),
    *health.PARAMETERS,
)}
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")

CATALOGUE: dict[str, Metric] = {}


def _add(metric: Metric) -> None:
    if _PLACEHOLDER.search(metric.value):
        # The explanation evaluates value expressions on components in memory: parameters
        # belong in the components.
        raise ValueError(f"metric {metric.name}: parameters go in components, not in the value expression")
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
            sql.safe_div("kept", "base"), ratio=("kept", "base"), rollup="compound", share=False))
_add(Metric("grr", "Gross revenue retention", Kind.RATIO, "percent", "higher",
            "Over customers with m0 > 0: Σ min(m0, m1) / Σ m0.",
            (_customers(kept="sum(least(c.m0, c.m1)) FILTER (WHERE c.m0 > 0)",
                        base="sum(c.m0) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("kept", "base"), ratio=("kept", "base"), rollup="compound"))
_add(Metric("nrr_12m", "NRR (12 months)", Kind.RATIO, "percent", "higher",
            "As nrr, with m0 taken 12 months before the end of P.",
            (_customers(kept="sum(c.m1) FILTER (WHERE c.m0 > 0)", base="sum(c.m0) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("kept", "base"), ratio=("kept", "base"), baseline="12m", share=False))
_add(Metric("grr_12m", "GRR (12 months)", Kind.RATIO, "percent", "higher",
            "As grr, with m0 taken 12 months before the end of P.",
            (_customers(kept="sum(least(c.m0, c.m1)) FILTER (WHERE c.m0 > 0)",
                        base="sum(c.m0) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("kept", "base"), ratio=("kept", "base"), baseline="12m"))
_add(Metric("expansion_rate", "Expansion rate", Kind.RATIO, "percent", "higher",
            "Σ (m1 − m0) where m1 > m0 > 0, over Σ m0 of customers with m0 > 0; nrr = grr + expansion_rate.",
            (_customers(expanded="sum(c.m1 - c.m0) FILTER (WHERE c.m1 > c.m0 AND c.m0 > 0)",
                        base="sum(c.m0) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("expanded", "base"), ratio=("expanded", "base"), rollup="sum", share=False))
_add(Metric("logo_churn_rate", "Logo churn rate", Kind.RATIO, "percent", "lower",
            "Customers with m0 > 0 and m1 = 0, over customers with m0 > 0.",
            (_customers(churned="count(*) FILTER (WHERE c.m0 > 0 AND c.m1 = 0)",
                        base="count(*) FILTER (WHERE c.m0 > 0)"),),
            sql.safe_div("churned", "base"), ratio=("churned", "base"), rollup="churn"))
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
_add(Metric("closed_deals", "Decided deals (won + lost)", Kind.FLOW, "count", "higher",
            "Won + lost deals closed in P; won deals = closed_deals × win_rate.",
            (_deals(CLOSED_IN_P, decided=_count(DECIDED)),), "decided", additive=True))
_add(Metric("win_rate", "Win rate", Kind.RATIO, "percent", "higher",
            "Won deals / (won + lost deals), by close_date in P.",
            (_deals(CLOSED_IN_P, won=_count(WON), decided=_count(DECIDED)),),
            sql.safe_div("won", "decided"), ratio=("won", "decided")))
# A won deal whose export left the amount blank is of unknown size, not a $0 deal: the mean is over
# the won deals that have an amount (on complete data the same as over all won deals).
_add(Metric("avg_deal_size", "Average deal size", Kind.RATIO, "money", "higher",
            "Mean amount of won deals closed in P (those with an amount).",
            (_deals(CLOSED_IN_P, amount=_sum("t.amount", WON), priced=_count(WON + " AND t.amount IS NOT NULL")),),
            sql.safe_div("amount", "priced"), ratio=("amount", "priced")))
_add(Metric("sales_cycle_days", "Sales cycle", Kind.RATIO, "days", "lower",
            "Mean days from created_date to close_date of won deals closed in P.",
            (_deals(CLOSED_IN_P, days=_sum(sql.days_between("t.created_date", "t.close_date"), WON), won=_count(WON)),),
            sql.safe_div("days", "won"), ratio=("days", "won")))
_add(Metric("opportunities_created", "Opportunities created", Kind.FLOW, "count", "higher",
            "Deals with created_date in P.",
            (_deals(CREATED_IN_P, opps="count(*)"),), "opps", additive=True))
_add(Metric("opp_win_rate", "Opportunity → won", Kind.RATIO, "percent", "higher",
            "Of deals created in P, the share won so far. A cohort rate: while P's deals are younger than the usual "
            "time to be won (the age by which 90 % of earlier cohorts' wins happened), P is judged on its expected "
            "final value.",
            (_deals(CREATED_IN_P, won=_count(WON), opps="count(*)"),),
            sql.safe_div("won", "opps"), ratio=("won", "opps"),
            cohort=Cohort("t.created_date", f"CASE WHEN {WON} THEN t.close_date END", "was won")))
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


def _quota_ahead(day: str) -> Source:
    """Σ quota of the month starting on `day` (SQL date), quotas pro-rated by overlapping days.

    Pipeline coverage divides a stock (the pipeline on one day) by a flow (quota): over the quota
    of P it was 67× for a week, 18× for a month and 4× for a quarter of the same pipeline against
    one target. Over a fixed horizon (one month from the day the pipeline is taken) it means the
    same at every grain, and at month grain it is the month's quota, as before.
    """
    end = sql.add_days(sql.add_months(day, 1), -1)
    return Source("quotas", f"t.period_start <= {end} AND t.period_end >= {day}", {
        "quota": "sum(t.quota * (" + sql.days_between(f"greatest(t.period_start, {day})", f"least(t.period_end, {end})")
        + " + 1) / (" + sql.days_between("t.period_start", "t.period_end") + " + 1))",
    })


_add(Metric("pipeline_coverage", "Pipeline coverage", Kind.RATIO, "ratio", "higher",
            "open_pipeline / Σ quota of the month starting with P (quotas pro-rated by days): a fixed one-month "
            "horizon at every grain, so a week, a month and a quarter of the same pipeline read alike against one "
            "target. For the running period, open pipeline now / quota of the month starting today.",
            (_deals(OPEN_AT_START, pipeline="sum(t.amount)"), _quota_ahead("P.p_start")),
            sql.safe_div("pipeline", "quota"), ratio=("pipeline", "quota"), running="pipeline_coverage_running"))
_add(Metric("pipeline_coverage_running", "Pipeline coverage (running period)", Kind.RATIO, "ratio", "higher",
            "Open pipeline now / Σ quota of the month starting on the data's as-of day (the quota still ahead "
            "over the same one-month horizon as pipeline_coverage).",
            (_deals("t.created_date <= P.p_cut AND (t.status = 'open' OR t.close_date BETWEEN P.p_start AND P.p_cut)",
                    pipeline=_sum("t.amount", "t.status = 'open'")),
             _quota_ahead("P.p_cut")),
            sql.safe_div("pipeline", "quota"), ratio=("pipeline", "quota")))
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
# Cohort rates: a recent period's cohort has not had the time to convert (see `Cohort`).
_MATURING = (" A cohort rate: while P's {rows} are younger than the usual time to {event} (the age by which "
             "90 % of earlier cohorts' conversions happened), P is judged on its expected final value.")
# the deal a lead became: one row per deal id, so a duplicated id never counts a lead twice
_LEAD_DEAL = (" LEFT JOIN (SELECT deal_id, min(created_date) AS created_date, min(close_date) FILTER "
              "(WHERE status = 'won') AS won_date FROM deals GROUP BY deal_id) AS d ON d.deal_id = t.deal_id")
_add(Metric("lead_to_opp_rate", "Lead → opportunity", Kind.RATIO, "percent", "higher",
            "Of leads created in P, the share with a deal_id."
            + _MATURING.format(rows="leads", event="become an opportunity (the deal's created_date)"),
            (Source("leads", _LEADS_CREATED, {"converted": _count("t.deal_id IS NOT NULL"), "leads": "count(*)"}),),
            sql.safe_div("converted", "leads"), ratio=("converted", "leads"),
            cohort=Cohort("t.created_date", "CASE WHEN t.deal_id IS NOT NULL THEN d.created_date END",
                          "became an opportunity", _LEAD_DEAL, ("deals",))))
_add(Metric("mql_to_sql_rate", "MQL → SQL", Kind.RATIO, "percent", "higher",
            "Of leads with mql_date in P, the share with a sql_date."
            + _MATURING.format(rows="MQLs", event="become an SQL"),
            (Source("leads", "t.mql_date BETWEEN P.p_start AND P.p_end",
                    {"sqls": _count("t.sql_date IS NOT NULL"), "mqls": "count(*)"}),),
            sql.safe_div("sqls", "mqls"), ratio=("sqls", "mqls"),
            cohort=Cohort("t.mql_date", "t.sql_date", "became an SQL")))
_add(Metric("sql_to_won_rate", "SQL → won", Kind.RATIO, "percent", "higher",
            "Of leads with sql_date in P, the share whose deal is won."
            + _MATURING.format(rows="SQLs", event="be won (the deal's close_date)"),
            (Source("leads", "t.sql_date BETWEEN P.p_start AND P.p_end",
                    {"won": _count("t.deal_id IN (SELECT deal_id FROM deals WHERE status = 'won')"), "sqls": "count(*)"}),),
            sql.safe_div("won", "sqls"), ratio=("won", "sqls"), needs=("deals",),
            cohort=Cohort("t.sql_date", "d.won_date", "was won", _LEAD_DEAL, ("deals",))))
_SPEND_ON, _SPEND = _spend_between("P.p_start", "P.p_end")
_add(Metric("spend", "Spend", Kind.FLOW, "money", "lower",
            "Σ spend.amount in P (monthly spend pro-rated by days for weeks).",
            (Source("spend", _SPEND_ON, {"spend": _SPEND}),),
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
_add(Metric("health_checks_per_csm_week", "Health checks per CSM per week", Kind.RATIO, "count", "higher",
            "Health checks in P per distinct owner with a health check, per week of P.",
            (Source("activities", _ACT_IN_P,
                    {"checks": _count("t.type = 'health_check'"),
                     "csms": "count(DISTINCT t.owner) FILTER (WHERE t.type = 'health_check')",
                     "weeks": "max(" + sql.days_between("P.p_start", "P.p_end") + " + 1) / 7.0"}),),
            "(CAST(checks AS DOUBLE) / NULLIF(csms, 0) / NULLIF(weeks, 0))"))
_add(Metric("renewal_arr", "Renewal ARR", Kind.FLOW, "money", "higher",
            "Σ amount of won deals with deal_type = renewal, by close_date in P.",
            (_deals(CLOSED_IN_P, amount=_sum("t.amount", f"{WON} AND t.deal_type = 'renewal'")),),
            "amount", additive=True))

# Unit economics (spend, deals, subscriptions) -----------------------------------------------
# LTV's churn is the mean of the monthly logo churn rates of the three calendar months ending
# with P's last counted day (c.me1…c.me3: MRR at the ends of the three months before it).
_NEW_CUSTOMERS = f"count(DISTINCT t.account_id) FILTER (WHERE {WON} AND t.deal_type = 'new')"
_LTV_COMPONENTS = {
    "margin_mrr": "sum(c.m1) * {gross_margin}",
    "active": "count(*) FILTER (WHERE c.m1 > 0)",
    "churned0": "count(*) FILTER (WHERE c.me1 > 0 AND c.m1 = 0)", "base0": "count(*) FILTER (WHERE c.me1 > 0)",
    "churned1": "count(*) FILTER (WHERE c.me2 > 0 AND c.me1 = 0)", "base1": "count(*) FILTER (WHERE c.me2 > 0)",
    "churned2": "count(*) FILTER (WHERE c.me3 > 0 AND c.me2 = 0)", "base2": "count(*) FILTER (WHERE c.me3 > 0)",
}
_MEAN_CHURN = ("((" + " + ".join(sql.safe_div(f"churned{k}", f"base{k}") for k in range(3)) + ") / 3)")
_LTV = f"({sql.safe_div('margin_mrr', 'active')} / NULLIF({_MEAN_CHURN}, 0))"
_CAC = sql.safe_div("spend", "new_customers")
_SPEND_SOURCE = Source("spend", _SPEND_ON, {"spend": _SPEND})
_NEW_CUSTOMERS_SOURCE = _deals(CLOSED_IN_P, new_customers=_NEW_CUSTOMERS)
_add(Metric("ltv", "LTV", Kind.RATIO, "money", "higher",
            "arpa × gross_margin / the mean monthly logo_churn_rate of the 3 months ending with P.",
            (_customers(**_LTV_COMPONENTS),), _LTV, baseline="3m"))
_add(Metric("cac", "CAC", Kind.RATIO, "money", "lower",
            "spend / new_customers in P (a filter or split by channel takes both from that channel).",
            (_SPEND_SOURCE, _NEW_CUSTOMERS_SOURCE), _CAC, ratio=("spend", "new_customers")))
_add(Metric("ltv_cac", "LTV / CAC", Kind.RATIO, "ratio", "higher", "ltv / cac.",
            (_customers(**_LTV_COMPONENTS), _SPEND_SOURCE, _NEW_CUSTOMERS_SOURCE),
            f"({_LTV} / NULLIF({_CAC}, 0))", baseline="3m"))
_add(Metric("cac_payback_months", "CAC payback", Kind.RATIO, "months", "lower",
            "cac / (arpa × gross_margin): months of gross-margin revenue that pay back one customer's cost.",
            (_SPEND_SOURCE, _NEW_CUSTOMERS_SOURCE,
             _customers(margin_mrr="sum(c.m1) * {gross_margin}", active="count(*) FILTER (WHERE c.m1 > 0)")),
            f"({_CAC} / NULLIF({sql.safe_div('margin_mrr', 'active')}, 0))"))
_PREV_SPEND_ON, _PREV_SPEND = _spend_between("P.b_start", "P.b_end")
_add(Metric("magic_number", "Magic number", Kind.RATIO, "ratio", "higher",
            "(arr(P) − arr(P−1)) / spend(P−1).",
            (_customers(mrr1="sum(c.m1)", mrr0="sum(c.m0)"), Source("spend", _PREV_SPEND_ON, {"prev_spend": _PREV_SPEND})),
            "(12 * (CAST(mrr1 AS DOUBLE) - mrr0) / NULLIF(prev_spend, 0))"))
_add(Metric("roas", "ROAS", Kind.RATIO, "ratio", "higher",
            "new_arr / spend in P for the same rows: per channel when filtered or split by channel.",
            (_deals(CLOSED_IN_P, arr=_sum("t.amount", f"{WON} AND t.deal_type IN ('new', 'expansion')")),
             _SPEND_SOURCE),
            sql.safe_div("arr", "spend"), ratio=("arr", "spend")))

# Support and satisfaction (tickets, nps) --------------------------------------------------------
_RESOLVED_IN_P = f"{sql.day_of('t.resolved_at')} BETWEEN P.p_start AND P.p_end"
_RESPONDED_IN_P = f"{sql.day_of('t.first_response_at')} BETWEEN P.p_start AND P.p_end"
_add(Metric("tickets_opened", "Tickets opened", Kind.FLOW, "count", "lower", "Support tickets opened in P.",
            (Source("tickets", f"{sql.day_of('t.opened_at')} BETWEEN P.p_start AND P.p_end", {"tickets": "count(*)"}),),
            "tickets", additive=True))
_add(Metric("mttr_hours", "Mean time to resolution", Kind.RATIO, "hours", "lower",
            "Mean hours from opened_at to resolved_at of tickets resolved in P.",
            (Source("tickets", _RESOLVED_IN_P,
                    {"hours": _sum(sql.hours_between("t.opened_at", "t.resolved_at"), "t.resolved_at >= t.opened_at"),
                     "tickets": _count("t.resolved_at >= t.opened_at")}),),
            sql.safe_div("hours", "tickets"), ratio=("hours", "tickets")))
_add(Metric("first_response_hours", "First response time", Kind.RATIO, "hours", "lower",
            "Mean hours from opened_at to first_response_at of tickets first answered in P.",
            (Source("tickets", _RESPONDED_IN_P,
                    {"hours": _sum(sql.hours_between("t.opened_at", "t.first_response_at"),
                                   "t.first_response_at >= t.opened_at"),
                     "tickets": _count("t.first_response_at >= t.opened_at")}),),
            sql.safe_div("hours", "tickets"), ratio=("hours", "tickets")))
_add(Metric("nps", "NPS", Kind.RATIO, "score", "higher",
            "% of NPS answers in P scoring 9–10 minus % scoring 0–6 (−100 … 100).",
            (Source("nps", "t.date BETWEEN P.p_start AND P.p_end",
                    {"net": "count(*) FILTER (WHERE t.score >= 9) - count(*) FILTER (WHERE t.score <= 6)",
                     "promoters": _count("t.score >= 9"), "detractors": _count("t.score <= 6"),
                     "responses": "count(*)"}),),
            "(100.0 * CAST(net AS DOUBLE) / NULLIF(responses, 0))", ratio=("net", "responses")))

# Product usage (events) -------------------------------------------------------------------------
_DAY = sql.day_of("t.timestamp")
_EVENTS_IN_P = f"{_DAY} BETWEEN P.p_start AND P.p_end"
_DAU = Source("events", f"{_DAY} BETWEEN P.p_start AND P.p_cut",
              {"user_days": sql.count_distinct_pairs("t.user_id", _DAY),
               "days": "max(" + sql.days_between("P.p_start", "P.p_cut") + " + 1)"})


def _active_users(days: int) -> Source:
    return Source("events", f"{_DAY} BETWEEN {sql.add_days('P.p_cut', -(days - 1))} AND P.p_cut",
                  {"users": "count(DISTINCT t.user_id)"})


_add(Metric("dau", "Daily active users", Kind.RATIO, "count", "higher",
            "Mean over the days of P (so far) of the distinct users with an event that day.",
            (_DAU,), sql.safe_div("user_days", "days")))
_add(Metric("wau", "Weekly active users", Kind.STOCK, "count", "higher",
            "Distinct users with an event in the 7 days ending at the end of P.", (_active_users(7),), "users"))
_add(Metric("mau", "Monthly active users", Kind.STOCK, "count", "higher",
            "Distinct users with an event in the 30 days ending at the end of P.", (_active_users(30),), "users"))
_add(Metric("dau_mau", "DAU / MAU", Kind.RATIO, "percent", "higher", "dau / mau (stickiness).",
            (_DAU, _active_users(30)), f"({sql.safe_div('user_days', 'days')} / NULLIF(users, 0))"))
_add(Metric("feature_adoption", "Feature adoption", Kind.RATIO, "percent", "higher",
            "Accounts using the feature in P / accounts with any event in P. With filter {feature: X} that "
            "is feature X's adoption; with several or no features, the mean adoption over the features used.",
            (Source("events", _EVENTS_IN_P, {"pairs": sql.count_distinct_pairs("t.account_id", "t.feature"),
                                              "features": "count(DISTINCT t.feature)"}),
             Source("events", _EVENTS_IN_P, {"accounts": "count(DISTINCT t.account_id)"}, exempt=("feature",))),
            "(CAST(pairs AS DOUBLE) / NULLIF(greatest(features, 1) * accounts, 0))"))
_add(Metric("time_in_product_minutes", "Time in product", Kind.FLOW, "minutes", "higher",
            "Median over users active in P of their minutes in sessions started in P (a session ends after "
            "30 minutes without an event; it lasts from its first to its last event).",
            (_entity("sessions", "events", minutes=sql.median("c.minutes"), users="count(*)",
                     sessions="sum(c.sessions)", total_minutes="sum(c.minutes)"),),
            "minutes"))
# Journeys and first value are cohorts too: a user who started the journey yesterday has not had the
# 14 days to finish it, a customer who signed up yesterday has no first event yet (see `Cohort`).
_add(Metric("journey_completion", "Journey completion", Kind.RATIO, "percent", "higher",
            "Of users whose journey starts in P (first event of its first step), the share who use its "
            "steps in order within 14 days; the steps are the node's filter {feature: [first, second, …]}."
            + _MATURING.format(rows="journeys", event="be completed"),
            (_entity("journeys", "events", completed="count(*) FILTER (WHERE c.completed)", started="count(*)"),),
            sql.safe_div("completed", "started"), ratio=("completed", "started"),
            cohort=Cohort("c.cohort_start", "c.cohort_done", "completed the journey")))
_add(Metric("time_to_first_value_days", "Time to first value", Kind.RATIO, "days", "lower",
            "For customers whose first subscription starts in P, mean days from its start_date to the "
            "account's first event on or after it (customers with no event yet are left out). While P's "
            "customers are younger than the usual time to a first event (the age by which 90 % of earlier "
            "customers had theirs), the mean counts only the quick ones and reads too short: P is judged on "
            "its expected final mean (the days seen, and for each customer without an event yet the chance "
            "and the days earlier customers of that age still had ahead).",
            (_entity("first_value", "subscriptions", days="sum(c.days)", activated="count(c.days)",
                     started="count(*)"),),
            sql.safe_div("days", "activated"), ratio=("days", "activated"),
            cohort=Cohort("c.cohort_start", "c.cohort_done", "had a first event", measure="mean_lag")))

# Customer health (subscriptions, events, tickets, nps) -------------------------------------------
_add(Metric("health_score", "Customer health", Kind.RATIO, "score", "higher",
            "Mean health (0–100, from usage trend, tickets and NPS; see kpitree/health.py) of accounts "
            "with MRR > 0 at the end of P.",
            (_entity("health", "subscriptions", health="sum(c.health)", accounts="count(*)"),),
            sql.safe_div("health", "accounts"), ratio=("health", "accounts")))
_add(Metric("at_risk_accounts", "At-risk accounts", Kind.STOCK, "count", "lower",
            "Accounts with MRR > 0 at the end of P whose health is below 40.",
            (_entity("health", "subscriptions", at_risk="count(*) FILTER (WHERE c.health < {health_at_risk_below})"),),
            "at_risk", additive=True))
_add(Metric("upsell_eligible_accounts", "Upsell-eligible accounts", Kind.STOCK, "count", "higher",
            "Accounts with MRR > 0 at the end of P, health ≥ 70, usage not falling (active days in the last "
            "28 days ≥ their 28-day average before) and ≥ 3 features used in the last 28 days.",
            (_entity("health", "subscriptions",
                     eligible="count(*) FILTER (WHERE c.health >= {upsell_min_health} AND c.recent_days >= "
                              "c.earlier_days / 2.0 AND c.recent_features >= {upsell_min_features})"),),
            "eligible", additive=True))

# Professional services (timesheets) -------------------------------------------------------------
_BILLABLE = "lower(trim(CAST(t.billable AS VARCHAR))) IN ('yes', 'y', 'true', 't', '1', 'billable')"
_add(Metric("ps_utilization", "PS utilization", Kind.RATIO, "percent", "higher",
            "Billable hours / all hours logged in P (time tracking logs available time as billable or not).",
            (Source("timesheets", "t.date BETWEEN P.p_start AND P.p_end",
                    {"billable": _sum("t.hours", _BILLABLE), "hours": "sum(t.hours)"}),),
            sql.safe_div("billable", "hours"), ratio=("billable", "hours")))

BUILTIN: tuple[str, ...] = tuple(CATALOGUE)  # the catalogue's own metrics (register() adds more at run time)


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
    """What to compute: a metric, optional row filter and split, over some periods.

    `params` holds the workspace's values of definition parameters (gross margin, health
    weights…, see `metric_params`); a parameter not given takes its default.
    """

    metric: str
    periods: tuple[Period, ...]
    as_of: date
    dimension: str | None = None
    filters: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (table, its columns) as loaded
    params: tuple[tuple[str, float], ...] = ()

    def columns_of(self, table: str) -> tuple[str, ...]:
        for name, cols in self.columns:
            if name == table:
                return cols
        return TABLES[table].column_names if table in TABLES else ()

    def with_metric(self, name: str) -> MetricQuery:
        return MetricQuery(name, self.periods, self.as_of, self.dimension, self.filters, self.columns, self.params)

    def param(self, name: str) -> float:
        """The value of a definition parameter: the workspace's, else its default."""
        value = dict(self.params).get(name)
        return float(PARAMETERS[name].default if value is None else value)


def metric_params(settings: Any) -> tuple[tuple[str, float], ...]:
    """A workspace's parameter values for MetricQuery.params, from its Settings.

    `gross_margin` is a Settings field; the others are read from workspace.json's extra keys
    under their parameter names (e.g. "health_weight_nps": 0.4). Values that are not numbers are
    ignored (the default stands).
    """
    raw: dict[str, Any] = dict(getattr(settings, "extra", {}) or {})
    if getattr(settings, "gross_margin", None) is not None:
        raw["gross_margin"] = settings.gross_margin
    out = []
    for name in PARAMETERS:
        value = raw.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            out.append((name, float(value)))
    return tuple(out)


def _bind(text: str, q: MetricQuery) -> str:
    """SQL with each `{parameter}` replaced by the query's value as a number literal."""

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in PARAMETERS:
            return m.group(0)
        return sql.number_literal(q.param(m.group(1)))

    return _PLACEHOLDER.sub(one, text)


def periods_cte(periods: Sequence[Period], as_of: date) -> str:
    rows = []
    for p in periods:
        cut = min(p.end, as_of) if as_of >= p.start else p.end
        b_end = p.start - timedelta(days=1)
        b12 = p.end.replace(year=p.end.year - 1) if not (p.end.month == 2 and p.end.day == 29) else p.end - timedelta(days=366)
        rows.append(
            f"('{p.key}', {sql.date_literal(p.start)}, {sql.date_literal(p.end)}, {sql.date_literal(cut)}, "
            f"{sql.date_literal(b_end)}, {sql.date_literal(b12 if cut == p.end else b12 - (p.end - cut))}, "
            f"{sql.date_literal(p.previous().start)})"
        )
    # b_start (first day of P−1) comes last, so positional readers of the first six columns still work.
    return f"P(pkey, p_start, p_end, p_cut, b_end, b12_end, b_start) AS (VALUES {', '.join(rows)})"


def dimension_sql(q: MetricQuery, table: str) -> tuple[str, str]:
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


def filter_sql(q: MetricQuery, table: str, params: list[Any]) -> str:
    cols = q.columns_of(table)
    parts = []
    for col, values in q.filters:
        if col not in cols:
            raise QueryError(f"cannot filter {q.metric!r} on {col!r}: table {table!r} has no such column")
        marks = ", ".join("?" for _ in values)
        parts.append(f"CAST(t.{sql.quote_ident(col)} AS VARCHAR) IN ({marks})")
        params.extend(str(v) for v in values)
    return " AND ".join(parts) if parts else "TRUE"


def _filters_for(q: MetricQuery, table: str, exempt: Sequence[str] = ()) -> MetricQuery:
    """The query with only the filters that apply to `table`: those on its own columns, not exempt.

    A filter restricts every table of a metric that has its column (ROAS filtered by channel
    takes the channel's new ARR *and* spend; coverage filtered by owner the owner's pipeline
    *and* quota), like a split does.
    """
    cols = q.columns_of(table)
    kept = tuple((c, v) for c, v in q.filters if c in cols and c not in exempt)
    return q if kept == q.filters else replace(q, filters=kept)


def _check_filters(q: MetricQuery, m: Metric) -> None:
    """Every filter column must belong to some table the metric reads."""
    tables = [s.table for s in m.sources] + [t for s in m.sources if s.customer_level for t in ENTITIES[s.entity].reads]
    for col, _ in q.filters:
        if not any(col in q.columns_of(t) for t in tables):
            raise QueryError(f"cannot filter {q.metric!r} on {col!r}: table {m.table!r} has no such column")


def _month_ends_before_cut(n: int) -> list[str]:
    """SQL for the last days of the n calendar months before the month holding P's last counted day."""
    first = sql.month_start("P.p_cut")
    return [sql.add_days(first if k == 1 else sql.add_months(first, 1 - k), -1) for k in range(1, n + 1)]


def _customers_cte(name: str, q: MetricQuery, baseline: str, filtered: bool, params: list[Any],
                   split: Sequence[str] = ()) -> str:
    """Per period and customer: MRR at the end of P (m1), at the baseline date (m0), and whether
    the customer had MRR on some day up to the baseline (to tell new from reactivated).

    Only subscriptions alive at the baseline or later are joined to each period (an `end_date`
    after the baseline), so the join stays near "customers × periods" however long the history;
    "had MRR before" comes from each customer's first counting day, computed once. Baseline
    "3m" adds me1…me3, the MRR at the ends of the three months before the month of P's end (LTV).
    `split` adds one column per dimension, d0, d1, … (each customer's latest value), for
    `customer_cells_sql`.
    """
    if filtered:
        q = _filters_for(q, "subscriptions")
    dim, join = dimension_sql(q, "subscriptions")
    split_cols, split_carried = "", ""
    for i, d in enumerate(split):
        expr, j = dimension_sql(replace(q, dimension=d), "subscriptions")
        split_cols += f"{sql.value_at_latest(expr, 't.start_date')} AS d{i}, "
        split_carried += f"l.d{i}, "
        if j and j not in join:
            join += j
    first_where = filter_sql(q, "subscriptions", params) if filtered else "TRUE"  # placeholders in SQL order
    where = filter_sql(q, "subscriptions", params) if filtered else "TRUE"
    b = "P.b12_end" if baseline == "12m" else "P.b_end"
    counts_at = "t.start_date <= {d} AND (t.end_date IS NULL OR t.end_date > {d})"
    ends = _month_ends_before_cut(3) if baseline == "3m" else []
    earliest = f"least({b}, {ends[-1]})" if ends else b
    extra = "".join(f"sum(CASE WHEN {counts_at.format(d=e)} THEN t.mrr ELSE 0 END) AS me{k}, "
                    for k, e in enumerate(ends, 1))
    carried = "".join(f"l.me{k}, " for k in range(1, len(ends) + 1))
    return (
        f"{name}_first AS (SELECT t.customer_id, min(t.start_date) AS first_day FROM subscriptions AS t "
        f"WHERE t.mrr > 0 AND (t.end_date IS NULL OR t.end_date > t.start_date) AND {first_where} "
        "GROUP BY t.customer_id), "
        f"{name}_live AS (SELECT P.pkey, t.customer_id, "
        # CASE inside sum() aggregates measurably faster than FILTER on DuckDB here.
        f"sum(CASE WHEN {counts_at.format(d='P.p_cut')} THEN t.mrr ELSE 0 END) AS m1, "
        f"sum(CASE WHEN {counts_at.format(d=b)} THEN t.mrr ELSE 0 END) AS m0, {extra}"
        f"{split_cols}{sql.value_at_latest(dim, 't.start_date') if q.dimension else dim} AS segment "
        f"FROM P JOIN subscriptions AS t ON t.start_date <= P.p_cut AND (t.end_date IS NULL OR t.end_date > {earliest})"
        f"{join} WHERE {where} GROUP BY ALL), "
        f"{name} AS (SELECT l.pkey, l.customer_id, l.m1, l.m0, {carried}{split_carried}l.segment, "
        f"COALESCE(f.first_day <= {b}, FALSE) AS had_before "
        f"FROM {name}_live AS l JOIN P ON P.pkey = l.pkey LEFT JOIN {name}_first AS f ON f.customer_id = l.customer_id)"
    )


def customer_cells_sql(q: MetricQuery, m: Metric, dims: Sequence[str],
                       components: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
    """Per period and combination of `dims` (finest cells), per-customer components summed.

    For metrics over per-customer MRR movements whose aggregates add up over customers (counts
    and sums of m0/m1): one scan of the customers relation with each customer's latest value of
    every dimension, instead of one catalogue query per dimension. `components`: (alias, aggregate
    over `c`). Columns: pkey, d0…, the aliases.
    """
    params: list[Any] = []
    cte = _customers_cte("cx", q, m.baseline, True, params, split=dims)
    sel = "".join(f"c.d{i} AS d{i}, " for i in range(len(dims)))
    comps = ", ".join(f"COALESCE({_bind(agg, q)}, 0) AS {alias}" for alias, agg in components)
    group = ", ".join(["c.pkey", *(f"c.d{i}" for i in range(len(dims)))])
    text = (f"WITH {periods_cte(q.periods, q.as_of)}, {cte} SELECT c.pkey AS pkey, {sel}{comps} "
            f"FROM cx AS c GROUP BY {group}")
    return text, params


# --- entity relations: one row per period, segment and customer / account / user ----------------


def _segment_of(q: MetricQuery, table: str, order: str | None = None) -> tuple[str, str]:
    """The segment of an entity built from many rows: its value on the latest row when split."""
    dim, join = dimension_sql(q, table)
    if q.dimension is None or order is None:
        return dim, join
    return sql.value_at_latest(dim, order), join


def _first_value_cte(name: str, q: MetricQuery, m: Metric, params: list[Any]) -> str:
    """Per customer whose first subscription starts in P: days from its start to the first event."""
    qs = _filters_for(q, "subscriptions")
    qe = _filters_for(q, "events")
    seg, join = _segment_of(qs, "subscriptions", "t.start_date")
    where = filter_sql(qs, "subscriptions", params)
    first = (f"{name}_s AS (SELECT t.customer_id, min(t.start_date) AS first_day, {seg} AS segment "
             f"FROM subscriptions AS t{join} WHERE t.mrr > 0 AND (t.end_date IS NULL OR t.end_date > t.start_date) "
             f"AND {where} GROUP BY t.customer_id)")
    events_where = filter_sql(qe, "events", params)
    used = (f"{name}_f AS (SELECT s.customer_id, min(t.timestamp) AS first_event FROM {name}_s AS s "
            f"JOIN events AS t ON t.account_id = s.customer_id AND {sql.day_of('t.timestamp')} >= s.first_day "
            f"WHERE {events_where} GROUP BY s.customer_id)")
    rows = (f"{name} AS (SELECT P.pkey, s.customer_id, s.segment, "
            f"{sql.days_between('s.first_day', sql.day_of('f.first_event'))} AS days, "
            "s.first_day AS cohort_start, f.first_event AS cohort_done "  # for `maturity_sql`
            f"FROM P JOIN {name}_s AS s ON s.first_day BETWEEN P.p_start AND P.p_end "
            f"LEFT JOIN {name}_f AS f ON f.customer_id = s.customer_id)")
    return ", ".join((first, used, rows))


def _events_window(lo: str, hi: str) -> str:
    """Events between the first period's start (minus `lo` days) and the last period's end (plus `hi`)."""
    first = sql.add_days("(SELECT min(p_start) FROM P)", -lo)
    last = sql.add_days("(SELECT max(p_end) FROM P)", hi + 1)
    return f"t.timestamp >= {first} AND t.timestamp < {last}"


def _sessions_cte(name: str, q: MetricQuery, m: Metric, params: list[Any]) -> str:
    """Per period and user: minutes and count of the sessions that started in P.

    A session is a run of a user's events with no gap longer than `session_gap_minutes`; it
    lasts from its first to its last event. A filter or split on `feature` builds sessions
    from that feature's events only (time spent in that part of the product).
    """
    qe = _filters_for(q, "events")
    seg, join = dimension_sql(qe, "events")
    where = filter_sql(qe, "events", params)
    gap = sql.minutes_between("lag(e.ts) OVER w", "e.ts")
    return (
        f"{name}_e AS (SELECT t.user_id, t.timestamp AS ts, {seg} AS segment FROM events AS t{join} "
        f"WHERE t.user_id IS NOT NULL AND {_events_window(1, 1)} AND {where}), "
        f"{name}_g AS (SELECT e.user_id, e.segment, e.ts, CASE WHEN lag(e.ts) OVER w IS NULL OR {gap} > "
        f"{sql.number_literal(q.param('session_gap_minutes'))} THEN 1 ELSE 0 END AS starts FROM {name}_e AS e "
        "WINDOW w AS (PARTITION BY e.user_id, e.segment ORDER BY e.ts)), "
        f"{name}_n AS (SELECT g.user_id, g.segment, g.ts, sum(g.starts) OVER (PARTITION BY g.user_id, g.segment "
        f"ORDER BY g.ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session FROM {name}_g AS g), "
        f"{name}_x AS (SELECT n.user_id, n.segment, n.session, min(n.ts) AS first_ts, max(n.ts) AS last_ts "
        f"FROM {name}_n AS n GROUP BY n.user_id, n.segment, n.session), "
        f"{name} AS (SELECT P.pkey, x.user_id, x.segment, sum({sql.minutes_between('x.first_ts', 'x.last_ts')}) "
        f"AS minutes, count(*) AS sessions FROM P JOIN {name}_x AS x ON {sql.day_of('x.first_ts')} "
        "BETWEEN P.p_start AND P.p_end GROUP BY P.pkey, x.user_id, x.segment)"
    )


def journey_steps(q: MetricQuery, m: Metric) -> tuple[str, ...]:
    """The ordered steps of a journey metric: baked into a registered journey, else the feature filter."""
    if m.name in _JOURNEYS:
        return _JOURNEYS[m.name][0]
    steps = next((tuple(str(v) for v in values) for col, values in q.filters if col == "feature"), ())
    if len(steps) < 2:
        raise QueryError(f"{q.metric!r} needs its steps in order as the node's filter, e.g. "
                         "filter: {feature: [dashboards, reports, sharing]} (at least two)")
    return steps


def _journeys_cte(name: str, q: MetricQuery, m: Metric, params: list[Any]) -> str:
    """Per period and user who used the journey's first step in P: whether they then used every
    further step, in order, within the window from that first use."""
    steps = journey_steps(q, m)
    if q.dimension == "feature":
        raise QueryError(f"cannot split {q.metric!r} by feature: a journey spans several features")
    window = q.param("journey_window_days") if m.name not in _JOURNEYS else _JOURNEYS[m.name][1]
    qe = _filters_for(q, "events", exempt=("feature",))
    seg, join = dimension_sql(qe, "events")
    where = filter_sql(qe, "events", params)
    literals = [sql.string_literal(s) for s in steps]
    step = "CASE " + " ".join(f"WHEN t.feature = {lit} THEN {i}" for i, lit in enumerate(literals, 1)) + " END"
    ctes = [
        f"{name}_e AS (SELECT t.user_id, t.timestamp AS ts, {step} AS step, {seg} AS segment FROM events AS t{join} "
        f"WHERE t.user_id IS NOT NULL AND t.feature IN ({', '.join(literals)}) "
        f"AND {_events_window(0, int(window) + 1)} AND {where})",
        f"{name}_1 AS (SELECT P.pkey, e.user_id, e.segment, min(e.ts) AS t1, min(e.ts) AS t_last FROM P "
        f"JOIN {name}_e AS e ON e.step = 1 AND {sql.day_of('e.ts')} BETWEEN P.p_start AND P.p_end "
        "GROUP BY P.pkey, e.user_id, e.segment)",
    ]
    deadline = sql.plus_days("s.t1", window)
    for i in range(2, len(steps) + 1):
        ctes.append(
            f"{name}_{i} AS (SELECT s.pkey, s.user_id, s.segment, s.t1, min(e.ts) AS t_last FROM {name}_{i - 1} AS s "
            f"LEFT JOIN {name}_e AS e ON e.user_id = s.user_id AND e.segment = s.segment AND e.step = {i} "
            f"AND e.ts > s.t_last AND e.ts <= {deadline} GROUP BY s.pkey, s.user_id, s.segment, s.t1)"
        )
    # cohort_start/cohort_done: when the journey started and was completed, for `maturity_sql`
    ctes.append(f"{name} AS (SELECT pkey, user_id, segment, t_last IS NOT NULL AS completed, t1 AS cohort_start, "
                f"t_last AS cohort_done FROM {name}_{len(steps)})")
    return ", ".join(ctes)


def _health_cte(name: str, q: MetricQuery, m: Metric, params: list[Any]) -> str:
    """Per period and account with MRR > 0 at the end of P: its signals and health (see health.py)."""
    customers = _customers_cte(f"{name}_c", q, "previous", True, params)
    filters = {t: filter_sql(_filters_for(q, t), t, params) for t in ("events", "tickets", "nps")}
    return customers + ", " + _bind(health.account_signals_sql(name, f"{name}_c", filters), q)


@dataclass(frozen=True)
class Entity:
    """A per-entity relation customer-level sources aggregate over, and what it reads."""

    build: Callable[[str, MetricQuery, Metric, list[Any]], str]  # (cte name, query, metric, params) → CTEs
    reads: tuple[str, ...]  # tables
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # table → columns read
    parameters: tuple[str, ...] = ()


ENTITIES: dict[str, Entity] = {
    "customers": Entity(lambda n, q, m, p: _customers_cte(n, q, m.baseline, True, p), ("subscriptions",),
                        {"subscriptions": ("customer_id", "start_date", "end_date", "mrr")}),
    "first_value": Entity(_first_value_cte, ("subscriptions", "events"),
                          {"subscriptions": ("customer_id", "start_date", "end_date", "mrr"),
                           "events": ("account_id", "timestamp")}),
    "sessions": Entity(_sessions_cte, ("events",), {"events": ("user_id", "timestamp")}, ("session_gap_minutes",)),
    "journeys": Entity(_journeys_cte, ("events",), {"events": ("user_id", "timestamp", "feature")},
                       ("journey_window_days",)),
    "health": Entity(_health_cte, ("subscriptions", "events", "tickets", "nps"),
                     {"subscriptions": ("customer_id", "start_date", "end_date", "mrr"),
                      "events": ("account_id", "timestamp", "feature"), "tickets": ("account_id", "opened_at"),
                      "nps": ("account_id", "date", "score")},
                     tuple(p.name for p in health.PARAMETERS[:4])),
}
_JOURNEYS: dict[str, tuple[tuple[str, ...], float]] = {}  # registered journey metric → (steps, window days)


def journey_metric(steps: Sequence[str], window_days: float | None = None) -> str:
    """Registers the journey completion of these ordered features and returns its catalogue name.

    For trees that name their steps as node parameters (rather than the feature filter
    `journey_completion` reads): the name is derived from the steps and window, so the same
    journey always gets the same metric.
    """
    steps = tuple(str(s) for s in steps)
    if len(steps) < 2:
        raise QueryError(f"a journey needs at least two steps, got {list(steps)}")
    window = float(PARAMETERS["journey_window_days"].default if window_days is None else window_days)
    import hashlib

    digest = hashlib.sha1(repr((steps, window)).encode()).hexdigest()[:10]
    name = f"journey_{digest}"
    base = CATALOGUE["journey_completion"]
    label = "Journey " + " → ".join(steps)
    definition = (f"Of users who use {steps[0]} in P, the share who then use "
                  f"{', '.join(steps[1:])} in that order within {window:g} days.")
    _JOURNEYS[name] = (steps, window)
    return register(replace(base, name=name, label=label, definition=definition))


_IN_PERIOD = re.compile(r"(t\.([a-z_][a-z0-9_]*)|CAST\(t\.[a-z_][a-z0-9_]* AS DATE\)) BETWEEN P\.p_start AND P\.p_(?:end|cut)")


def period_join(on: str, table: str, periods: Sequence[Period]) -> str:
    """`on` (how a source's rows match the periods) with conditions it implies that DuckDB runs fast.

    `X BETWEEN P.p_start AND P.p_end` alone is a range join, which DuckDB runs as a merge or
    nested-loop join whose work grows with rows × periods. For a source matching rows by one day
    (a DATE column, or a timestamp's day), two conditions that every matching row already meets
    are added, so the rows matched are the same:
    - when every period is a whole calendar period of one grain and X is a DATE column, the
      equality `date_trunc(grain, X) = P.p_start`, run as a hash join (new business ARR over 18
      months: 0.23 → 0.05 s of CPU at 1M deals, 1.7 → 0.4 s at 10M; benchmarks/bench_scale.py);
    - the constant range from the first period's start to the last one's end, checked while the
      table is read (feature adoption over two months of 10M events: 0.43 → 0.21 s of CPU).
    Any other join condition is returned as it is.
    """
    found = _IN_PERIOD.fullmatch(on)
    if found is None or not periods or table not in TABLES:
        return on
    day, column = found.group(1), found.group(2)
    first, last = min(p.start for p in periods), max(p.end for p in periods)
    parts = [on, f"{day} BETWEEN {sql.date_literal(first)} AND {sql.date_literal(last)}"]
    grains = {p.grain for p in periods}
    is_date = column is not None and column in TABLES[table].column_names and \
        TABLES[table].column(column).type is ColumnType.DATE
    if is_date and len(grains) == 1 and all(period_containing(p.start, p.grain) == p for p in periods):
        parts.insert(0, f"CAST(date_trunc('{next(iter(grains)).value}', {day}) AS DATE) = P.p_start")
    return " AND ".join(parts)


_WORD = re.compile(r"\b[a-z_][a-z0-9_]*\b")


def build_batch_sql(q: MetricQuery, names: Sequence[str]) -> tuple[str, list[Any], dict[str, dict[str, str]]]:
    """One query computing several metrics that share periods, filter and split.

    Metrics reading the same rows (same table, join condition, filter) share one scan, and
    identical aggregates are computed once. Returns the SQL, its parameters, and per metric
    the map component name → result column (plus "value" → its value column).
    """
    params: list[Any] = []
    ctes = [periods_cte(q.periods, q.as_of)]
    groups: dict[tuple, dict[str, str]] = {}  # source signature → aggregate SQL → alias
    group_metric: dict[tuple, Metric] = {}
    columns: dict[str, dict[str, str]] = {}
    n = 0
    for name in names:
        m = metric(name)
        _check_filters(q, m)
        columns[name] = {}
        for src in m.sources:
            if src.customer_level:
                # The entity relation applies the filters to the tables it reads.
                key = (src.table, src.on, True, src.entity, m.baseline, q.filters,
                       m.name if m.name in _JOURNEYS or src.entity == "journeys" else "")
            else:
                key = (src.table, src.on, False, "", "", _filters_for(q, src.table, src.exempt).filters,
                       q.dimension in src.exempt)
            group_metric.setdefault(key, m)
            aggs = groups.setdefault(key, {})
            for comp, agg in src.components.items():
                agg = _bind(agg, q)
                if agg not in aggs:
                    aggs[agg] = f"k{n}"
                    n += 1
                columns[name][comp] = aggs[agg]
    aliases = [a for aggs in groups.values() for a in aggs.values()]
    selects = []
    for g, (key, aggs) in enumerate(groups.items()):
        table, on, customer_level, entity, _, filters, unsplit = key
        # UNION ALL matches by position: every branch lists all aliases in one order.
        mine = {alias: agg for agg, alias in aggs.items()}
        cols = [f"COALESCE({mine[a]}, 0) AS {a}" if a in mine else f"0 AS {a}" for a in aliases]
        if customer_level:
            cte = f"c{g}"
            ctes.append(ENTITIES[entity].build(cte, q, group_metric[key], params))
            selects.append(f"SELECT c.pkey, c.segment, {', '.join(cols)} FROM {cte} AS c GROUP BY c.pkey, c.segment")
            continue
        qt = replace(q, filters=filters)
        if unsplit:
            # A split on an exempt column: this source's totals stand beside every segment.
            where = filter_sql(qt, table, params)
            inner = (f"SELECT P.pkey, {', '.join(cols)} FROM P JOIN {table} AS t ON {period_join(on, table, q.periods)} "
                     f"WHERE {where} GROUP BY P.pkey")
            m = group_metric[key]
            qm = _filters_for(q, m.table)
            dim, join = dimension_sql(qm, m.table)
            seg_where = filter_sql(qm, m.table, params)
            selects.append(f"SELECT x.pkey, s.segment, {', '.join(aliases)} FROM ({inner}) AS x CROSS JOIN "
                           f"(SELECT DISTINCT {dim} AS segment FROM {m.table} AS t{join} WHERE {seg_where}) AS s")
            continue
        dim, join = dimension_sql(qt, table)
        where = filter_sql(qt, table, params)
        selects.append(
            f"SELECT P.pkey, {dim} AS segment, {', '.join(cols)} "
            f"FROM P JOIN {table} AS t ON {period_join(on, table, q.periods)}{join} WHERE {where} GROUP BY P.pkey, {dim}"
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


# --- maturity of cohort rates ------------------------------------------------------------------
#
# A cohort rate of a recent period is low only because its cohort is young (the demo's latest
# week: 1.1 % of its leads became opportunities so far, against 24.4 % for a mature month). How
# long completion takes is learned from the data, per node (its filter applies):
# - every completion seen gives a lag (done − start, in days); HORIZON_QUANTILE of them is the
#   horizon by which practically every completion has happened;
# - the reference cohorts are the rows that started between one horizon and a year plus a horizon
#   before the as-of day: their completions are all in the data. F(a), the share of their
#   completions that happened by age a, is the completion curve; its 90 % point is the usual lag;
# - a period is *maturing* while its youngest row is younger than the usual lag.
#
# A maturing period is judged on its expected final value = value / completion share, where the
# completion share is the mean of F(age) over the period's rows (each row at its own age: a week's
# Monday leads are older than its Sunday ones). This is the chain-ladder estimate: if every row
# completes with the same final probability p, the completions seen so far are p × Σ F(age), so
# p = completions seen / Σ F(age). It is the same comparison as putting the value beside earlier
# cohorts' value at the same age (value ≥ target × share ⇔ value / share ≥ target), but it is read
# against the node's own target, which is set on final values, and says what the number will
# become. Below MIN_HISTORY reference completions, below MIN_COMPLETION, or while the cohort counts
# for fewer than MIN_EFFECTIVE rows' worth of completed time (Σ F(age)), the estimate is noise and
# the period is shown as maturing without one ("too early to tell").
#
# Backtest on the demo (as-of days every 3 days, Feb–Sep 2026; the latest complete week and month
# then, as the data stood that day, against their final value now): with a completion share ≥ 0.5
# the expected value was within 5 % of the final one in all 57 maturing cases of lead → opportunity
# and 58 of MQL → SQL (mean error 0.2–0.9 pp); below 0.5 it was off by 10–50 % on average (a week's
# early conversions depend on its weekdays, which the pooled curve does not know), so a red or
# green from it would be a guess.
#
# Journeys and first value are cohorts of the same kind, read from their entity relation (one row per
# period and user or customer, with the day it joined and the day it completed). Journey completion is
# a share like the rates above. Time to first value is a mean over the customers who had a first event,
# so a young period leaves the slow ones out and reads too short (the demo on 20 November: November
# 4.1 days, October 9.0, against a mature September's 12.1 — green against an 11-day target); its
# expected final mean keeps the days seen and gives each customer without an event yet the chance left
# for its age, p (1 − F(a)) / (1 − p F(a)), times the earlier cohorts' mean time beyond a. Backtest on
# the demo as above (as-of days every 3 days, Feb–Sep 2026, the latest complete week and month and the
# running month, against their final values; data cut at each as-of day): journey completion,
# 170 cases with an expected value, mean error 5.2 % against 11.4 % for the value so far, a status other
# than the final one 40 times against 70, no red ↔ green swap from completion 0.8 up; time to
# first value, 99 cases, mean error 4.3 % against 36 % (the value so far was green in every case, 50 of
# them finally amber or red), red ↔ green swaps 9 against 21, unbiased (+0.2 %).

HORIZON_QUANTILE = 0.99  # the lag by which practically every completion has happened
USUAL_LAG_QUANTILE = 0.9  # "the usual conversion lag": 90 % of earlier cohorts' completions by then
MIN_HISTORY = 20  # reference completions needed to learn the curve (below, its 90 % point is one or two lags)
MIN_EFFECTIVE = 30.0  # Σ F(age) over the period's rows needed for an expected value (±8 pp at 25 %)
MIN_COMPLETION = 0.5  # completion share needed for an expected value (see the backtest above)
HISTORY_DAYS = 365  # how far back reference cohorts go: the curve follows a changing sales process
# an entity relation's (journeys, first value) reference rows are read back this far: a year and half a
# year of horizon (the demo's first events: 99 % within 56 days; journeys end with their 14-day window)
ENTITY_LOOKBACK_DAYS = HISTORY_DAYS + 183


@dataclass(frozen=True)
class Maturity:
    """How far a period's cohort of a cohort rate has come (see the notes above)."""

    maturing: bool  # the youngest row is younger than the usual lag
    completion: float | None  # share of the usual completions that happened by the rows' ages
    usual_lag: int | None  # days by which 90 % of earlier cohorts' completions happened
    history: int  # reference completions the curve was learned from
    effective: float  # Σ F(age) over the period's rows
    measure: str = "share"  # `Cohort.measure`
    # for a mean time to complete (derived from the curve, so left out of equality)
    done: int = field(default=0, compare=False)  # the period's rows completed by the as-of day
    pending: float = field(default=0.0, compare=False)  # how many of the others are expected to complete still
    pending_lag: float = field(default=0.0, compare=False)  # … and the sum of their expected days to complete

    def expected(self, value: float | None) -> float | None:
        """The value the cohort is expected to end at; None when mature or too early to tell.

        A share: value / completion. A mean time to complete ("mean_lag"): the rows completed so far
        keep their times, and each open row is expected to complete with the chance left for its age and
        then take the earlier cohorts' times beyond its age: (value × done + pending_lag) / (done + pending).
        """
        if not self.maturing or value is None or self.completion is None or self.completion <= 0:
            return None
        if self.history < MIN_HISTORY or self.effective < MIN_EFFECTIVE or self.completion < MIN_COMPLETION:
            return None
        if self.measure == "mean_lag":
            count = self.done + self.pending
            return (value * self.done + self.pending_lag) / count if count > 0 else None
        return min(value / self.completion, 1.0)  # a share of the cohort never passes 100 %


def maturity_sql(q: MetricQuery) -> tuple[str, list[Any]]:
    """SQL giving, per period of `q`, the maturity of its cohort (columns pkey, youngest, completion,
    effective, usual_lag, history, seen_lag); `q.metric` must be a cohort rate (`Metric.cohort`).

    All in one query over the metric's own table with the node's filters: the lags of every
    completion, the reference cohorts' completion curve as a cumulative share per lag day, and
    each period's rows grouped by age and matched to the curve with an ASOF join.
    """
    m = metric(q.metric)
    if m.cohort is None:
        raise QueryError(f"{m.label} is not a cohort rate")
    c, src = m.cohort, m.sources[0]
    params: list[Any] = []
    as_of = sql.date_literal(q.as_of)
    start, done = f"CAST({c.start} AS DATE)", f"CAST({c.done} AS DATE)"
    keys = ", ".join(sql.string_literal(p.key) for p in q.periods)
    if src.customer_level:
        # An entity relation is per period: its rows for the asked periods, and for reference the
        # rows of the calendar months back to a year and a horizon before the as-of day.
        months = [period_containing(q.as_of - timedelta(days=ENTITY_LOOKBACK_DAYS), "month")]
        while months[-1].end < q.as_of:
            months.append(months[-1].shift(1))
        periods = tuple(dict.fromkeys([*q.periods, *months]))
        references = ", ".join(sql.string_literal(p.key) for p in months)
        entity = ENTITIES[src.entity].build("ent", replace(q, periods=periods), m, params)
        head = f"WITH {periods_cte(periods, q.as_of)}, {entity}, "
        rows = (f"r AS (SELECT {start} AS s, {done} AS d FROM ent AS c WHERE c.pkey IN ({references}) "
                f"AND {start} <= {as_of}), ")
        members = f"SELECT c.pkey, {start} AS s, {done} AS d FROM ent AS c WHERE c.pkey IN ({keys})"
    else:
        where = filter_sql(_filters_for(q, src.table, src.exempt), src.table, params)
        head = f"WITH {periods_cte(q.periods, q.as_of)}, "
        rows = f"r AS (SELECT {start} AS s, {done} AS d FROM {src.table} AS t{c.joins} WHERE {where} AND {start} <= {as_of}), "
        members = "SELECT P.pkey, r.s, r.d FROM P JOIN r ON r.s BETWEEN P.p_start AND P.p_end"
    text = (
        f"{head}{rows}"
        f"lags AS (SELECT s, greatest({sql.days_between('s', 'd')}, 0) AS lag FROM r WHERE d <= {as_of}), "
        f"h AS (SELECT quantile_disc(lag, {HORIZON_QUANTILE}) AS horizon, "
        f"quantile_disc(lag, {USUAL_LAG_QUANTILE}) AS seen_lag FROM lags), "
        f"ref AS (SELECT lags.lag FROM lags, h WHERE {sql.days_between('lags.s', as_of)} "
        f"BETWEEN h.horizon AND h.horizon + {HISTORY_DAYS - 1}), "
        f"curve AS (SELECT quantile_disc(lag, {USUAL_LAG_QUANTILE}) AS usual_lag, count(*) AS history FROM ref), "
        # per lag day: the share of reference completions by then (F), and the sum and count of the
        # reference lags beyond it (a young row that has not completed yet will take one of those)
        "cdf AS (SELECT lag, CAST(sum(count(*)) OVER (ORDER BY lag) AS DOUBLE) / (SELECT count(*) FROM ref) AS share, "
        "sum(lag * count(*)) OVER (ORDER BY lag DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS tsum, "
        "sum(count(*)) OVER (ORDER BY lag DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS tn "
        "FROM ref GROUP BY lag), "
        "tot AS (SELECT sum(lag) AS tsum, count(*) AS tn FROM ref), "
        f"ages AS (SELECT x.pkey, {sql.days_between('x.s', as_of)} AS age, count(*) AS k, "
        f"count(*) FILTER (WHERE x.d <= {as_of}) AS kc FROM ({members}) AS x GROUP BY x.pkey, age), "
        "f AS (SELECT a.pkey, a.age, a.k, a.kc, COALESCE(cdf.share, 0) AS share, "
        "CASE WHEN cdf.lag IS NULL THEN tot.tsum ELSE COALESCE(cdf.tsum, 0) END AS tsum, "
        "CASE WHEN cdf.lag IS NULL THEN tot.tn ELSE COALESCE(cdf.tn, 0) END AS tn FROM ages AS a "
        "ASOF LEFT JOIN cdf ON a.age >= cdf.lag CROSS JOIN tot), "
        # p: the share of the cohort that completes in the end (chain ladder: completions seen / Σ F)
        "g AS (SELECT pkey, sum(kc) AS done, least(CAST(sum(kc) AS DOUBLE) / NULLIF(sum(k * share), 0), 1.0) AS p "
        "FROM f GROUP BY pkey), "
        # a row not completed at age a completes later with chance p(1 − F(a)) / (1 − p F(a)), and then
        # takes on average the reference lags beyond a (for `Maturity.expected` of a mean time)
        "w AS (SELECT f.pkey, f.k - f.kc AS open, CASE WHEN 1 - g.p * f.share > 0 "
        "THEN g.p * (1 - f.share) / (1 - g.p * f.share) ELSE 0 END AS chance, "
        "CAST(f.tsum AS DOUBLE) / NULLIF(f.tn, 0) AS later FROM f JOIN g ON g.pkey = f.pkey), "
        "pend AS (SELECT pkey, sum(open * chance) AS pending, sum(open * chance * COALESCE(later, 0)) AS pending_lag "
        "FROM w GROUP BY pkey) "
        "SELECT P.pkey, min(f.age) AS youngest, sum(f.k * f.share) / sum(f.k) AS completion, "
        "COALESCE(sum(f.k * f.share), 0) AS effective, any_value(curve.usual_lag) AS usual_lag, "
        "any_value(curve.history) AS history, any_value(h.seen_lag) AS seen_lag, COALESCE(sum(f.kc), 0) AS done, "
        "COALESCE(any_value(pend.pending), 0) AS pending, COALESCE(any_value(pend.pending_lag), 0) AS pending_lag "
        "FROM P LEFT JOIN f ON f.pkey = P.pkey LEFT JOIN pend ON pend.pkey = P.pkey CROSS JOIN curve CROSS JOIN h "
        f"WHERE P.pkey IN ({keys}) GROUP BY P.pkey"
    )
    return text, params


def compute_maturity(con: duckdb.DuckDBPyConnection, q: MetricQuery) -> dict[str, Maturity]:
    """Period key → the maturity of its cohort for the cohort rate `q.metric` (see `maturity_sql`).

    With too little history to learn the curve, a period is still maturing while its youngest row
    is younger than the 90 % lag of the completions seen at all (a workspace with a few weeks of
    leads), but has no expected value. With no completion seen at all, nothing is maturing.
    """
    text, params = maturity_sql(q)
    try:
        rows = con.execute(text, params).fetchall()
    except duckdb.Error as exc:
        raise QueryError(f"maturity of {metric(q.metric).label}: {str(exc).splitlines()[0]}") from None
    out = {}
    measure = metric(q.metric).cohort.measure  # type: ignore[union-attr]  # maturity_sql checked it
    for pkey, youngest, completion, effective, usual_lag, history, seen_lag, done, pending, pending_lag in rows:
        history = int(history or 0)
        lag = usual_lag if history >= MIN_HISTORY else seen_lag
        maturing = youngest is not None and lag is not None and youngest < lag
        out[pkey] = Maturity(maturing, None if completion is None or history < MIN_HISTORY else float(completion),
                             None if lag is None else int(lag), history, float(effective or 0.0), measure,
                             int(done or 0), float(pending or 0.0), float(pending_lag or 0.0))
    return out


# --- documentation: what each definition means, for the Definitions page and the CLI ----------

GROUPS: dict[str, tuple[str, ...]] = {
    "Revenue": ("mrr", "arr", "mrr_start", "arr_start", "mrr_new", "arr_new", "mrr_reactivation",
                "arr_reactivation", "mrr_expansion", "arr_expansion", "mrr_contraction", "arr_contraction",
                "mrr_churn", "arr_churn", "active_customers", "arpa"),
    "Retention": ("nrr", "grr", "nrr_12m", "grr_12m", "expansion_rate", "logo_churn_rate"),
    "Bookings and pipeline": ("new_business_arr", "expansion_arr", "new_arr", "renewal_arr", "won_deals",
                              "closed_deals", "win_rate", "avg_deal_size", "sales_cycle_days",
                              "opportunities_created", "opp_win_rate", "open_pipeline", "open_deals", "quota", "pipeline_coverage",
                              "pipeline_coverage_running", "pipeline_velocity", "renewals_due", "new_customers"),
    "Acquisition and efficiency": ("leads", "lead_to_opp_rate", "mql_to_sql_rate", "sql_to_won_rate", "spend", "cac",
                                   "ltv", "ltv_cac", "cac_payback_months", "magic_number", "roas"),
    "Activity": ("activities", "touches_per_rep_week", "health_checks_per_csm_week"),
    "Support and satisfaction": ("tickets_opened", "mttr_hours", "first_response_hours", "nps"),
    "Product usage": ("dau", "wau", "mau", "dau_mau", "feature_adoption", "time_in_product_minutes",
                      "journey_completion", "time_to_first_value_days"),
    "Customer health": ("health_score", "at_risk_accounts", "upsell_eligible_accounts"),
    "Professional services": ("ps_attach_rate", "ps_utilization"),
}

MRR_NOTATION = "m(c, d) = Σ mrr of c's subscriptions counting on day d; m₀ = m(c, end of P−1), m₁ = m(c, end of P)"
FORMULAS: dict[str, str] = {
    "mrr": "Σ_c m₁(c)", "arr": "12 × Σ_c m₁(c)", "mrr_start": "Σ_c m₀(c)", "arr_start": "12 × Σ_c m₀(c)",
    "mrr_new": "Σ m₁ over c with m₀ = 0, m₁ > 0, no MRR ever before",
    "mrr_reactivation": "Σ m₁ over c with m₀ = 0, m₁ > 0, MRR some day before",
    "mrr_expansion": "Σ (m₁ − m₀) over c with m₁ > m₀ > 0", "mrr_contraction": "Σ (m₀ − m₁) over c with 0 < m₁ < m₀",
    "mrr_churn": "Σ m₀ over c with m₀ > 0, m₁ = 0",
    "active_customers": "#{c : m₁(c) > 0}", "arpa": "mrr / active_customers",
    "nrr": "Σ_{m₀>0} m₁ / Σ_{m₀>0} m₀", "grr": "Σ_{m₀>0} min(m₀, m₁) / Σ_{m₀>0} m₀",
    "nrr_12m": "nrr with m₀ = m(c, end of P − 12 months)", "grr_12m": "grr with m₀ = m(c, end of P − 12 months)",
    "expansion_rate": "Σ_{m₁>m₀>0} (m₁ − m₀) / Σ_{m₀>0} m₀  (= nrr − grr)",
    "logo_churn_rate": "#{m₀ > 0, m₁ = 0} / #{m₀ > 0}",
    "new_business_arr": "Σ amount | won, new, close_date ∈ P", "expansion_arr": "Σ amount | won, expansion, close_date ∈ P",
    "new_arr": "new_business_arr + expansion_arr", "renewal_arr": "Σ amount | won, renewal, close_date ∈ P",
    "won_deals": "#{won, close_date ∈ P}", "closed_deals": "#{won or lost, close_date ∈ P}",
    "win_rate": "won_deals / closed_deals", "avg_deal_size": "Σ amount(won) / won deals with an amount",
    "sales_cycle_days": "Σ (close_date − created_date)(won) / won_deals",
    "opportunities_created": "#{created_date ∈ P}",
    "opp_win_rate": "#{won} / #{created_date ∈ P}",
    "open_pipeline": "Σ amount | created_date ≤ start(P), open at start(P)",
    "open_deals": "#{created_date ≤ start(P), open at start(P)}",
    "quota": "Σ quota × overlap(days) / days of the quota's period",
    "pipeline_coverage": "open_pipeline / Σ quota of [start(P), start(P) + 1 month)",
    "pipeline_coverage_running": "open pipeline now / Σ quota of [today, today + 1 month)",
    "pipeline_velocity": "open_deals × avg_deal_size × win_rate / sales_cycle_days",
    "ps_attach_rate": "#{won new, services_amount > 0} / #{won new}", "renewals_due": "#{renewal, close_date ∈ P}",
    "new_customers": "#distinct account_id | won new, close_date ∈ P",
    "leads": "#{created_date ∈ P}", "lead_to_opp_rate": "#{deal_id set} / #{created_date ∈ P}",
    "mql_to_sql_rate": "#{sql_date set} / #{mql_date ∈ P}", "sql_to_won_rate": "#{deal won} / #{sql_date ∈ P}",
    "spend": "Σ amount × days of the month in P / days of the month",
    "cac": "spend / new_customers",
    "ltv": "arpa × gross_margin / ((churn(M₀) + churn(M₋₁) + churn(M₋₂)) / 3),  M₀ = the month P ends in",
    "ltv_cac": "ltv / cac", "cac_payback_months": "cac / (arpa × gross_margin)",
    "magic_number": "(arr(P) − arr(P−1)) / spend(P−1)", "roas": "new_arr / spend  (same channel)",
    "activities": "#{date ∈ P}", "touches_per_rep_week": "#{call, email} / #owners / (days of P / 7)",
    "health_checks_per_csm_week": "#{health_check} / #owners / (days of P / 7)",
    "tickets_opened": "#{opened_at ∈ P}",
    "mttr_hours": "Σ (resolved_at − opened_at) / #{resolved_at ∈ P}",
    "first_response_hours": "Σ (first_response_at − opened_at) / #{first_response_at ∈ P}",
    "nps": "100 × (#{score ≥ 9} − #{score ≤ 6}) / #{date ∈ P}",
    "dau": "Σ_{d ∈ P} #users(d) / days of P", "wau": "#users in the 7 days ending at end(P)",
    "mau": "#users in the 30 days ending at end(P)", "dau_mau": "dau / mau",
    "feature_adoption": "#accounts using f in P / #accounts with any event in P  (mean over the features f)",
    "time_in_product_minutes": "median over active users u of Σ_{sessions s of u in P} (last(s) − first(s))",
    "journey_completion": "#{users doing steps 1 → … → k within the window} / #{users doing step 1 in P}",
    "time_to_first_value_days": "Σ (first event − first start_date) / #{customers starting in P, with an event}",
    "health_score": "mean over accounts with m₁ > 0 of health = Σ wᵢ scoreᵢ / Σ wᵢ  (usage, tickets, NPS)",
    "at_risk_accounts": "#{m₁ > 0, health < 40}",
    "upsell_eligible_accounts": "#{m₁ > 0, health ≥ 70, active days(28 d) ≥ earlier 28-day average, features ≥ 3}",
    "ps_utilization": "Σ hours(billable) / Σ hours",
}
for _n in ("arr_new", "arr_reactivation", "arr_expansion", "arr_contraction", "arr_churn"):
    FORMULAS[_n] = "12 × " + FORMULAS["mrr_" + _n[4:]]


@dataclass(frozen=True)
class Benchmark:
    """A value the seeds give as healthy: a 90-day and a 12-month goal (the same when one number)."""

    text: str
    day90: float
    month12: float
    source: str


BENCHMARKS: dict[str, Benchmark] = {
    "ltv_cac": Benchmark("at least 3 : 1", 3.0, 3.0, "seed 002: a healthy LTV/CAC ratio is at least 3:1"),
    "dau_mau": Benchmark("60 % within 90 days, 80 % within 12 months", 0.6, 0.8,
                         "seed 002: product usage targets"),
    "first_response_hours": Benchmark("< 48 h within 90 days, < 24 h within 12 months", 48.0, 24.0,
                                      "seed 002: customer success targets"),
    "feature_adoption": Benchmark("40 % within 90 days, 75 % within 12 months", 0.4, 0.75,
                                  "seed 002: user engagement targets"),
}

_MONTHLY_RATE = ("A rate over P that grows with P's length: a target given as one number is a monthly rate, and "
                 "a week's or a quarter's target is made from it ({how}).")
_NOTES: dict[str, str] = {
    "feature_adoption": "Filter {feature: X} applies to the numerator only: the population is every account "
                        "with an event in P. A split by feature gives each feature's adoption.",
    "journey_completion": "The steps are the node's filter {feature: [first, second, …]} in order; "
                          "`journey_metric(steps, window_days)` registers a journey with its steps built in.",
    "roas": "A filter or split by channel applies to new ARR and to spend alike.",
    "cac": "A filter or split by channel applies to spend and to new customers alike.",
    "ps_utilization": "Needs the optional timesheets table (entry_id, date, owner, hours, billable, account_id, "
                      "project).",
    "health_score": "Signals per account at the end of P: usage = active days in the last 28 days against the "
                    "28-day average of the 56 days before, 100 × min((recent + ½) / (earlier + ½), 1), 0 without any "
                    "use; tickets = 100 × max(1 − tickets in 90 days / 10, 0); NPS = 10 × mean answer in 180 days "
                    "(left out, weights rescaled, when the account has not answered).",
    "at_risk_accounts": "Health as for health_score; the threshold is the parameter health_at_risk_below.",
    "upsell_eligible_accounts": "Health as for health_score; thresholds are the upsell_* parameters.",
    "nrr": _MONTHLY_RATE.format(how="compounded: a quarter's target is the month's to the power 3"),
    "grr": _MONTHLY_RATE.format(how="compounded: a quarter's target is the month's to the power 3"),
    "logo_churn_rate": _MONTHLY_RATE.format(how="compounded: 1 % a month is 2.97 % a quarter, 0.23 % a week"),
    "expansion_rate": _MONTHLY_RATE.format(how="added up by days: 1 % a month is 3 % a quarter"),
    "pipeline_coverage": "The quota is that of the month starting with P whatever the grain, so one target judges "
                         "a week, a month and a quarter alike (over P's own quota a week read 67× and a quarter 4× "
                         "of the same pipeline).",
    "dau": "While P runs, the days so far. dau ≤ wau ≤ mau holds for weeks; for longer periods dau is a mean "
           "over all of P while wau and mau look at its end.",
}
_EXTRA_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {"sql_to_won_rate": {"deals": ("deal_id", "status")}}
_COLUMN = re.compile(r"\bt\.([a-z_][a-z0-9_]*)\b")


@dataclass(frozen=True)
class MetricDoc:
    """Everything the Definitions page says about one metric."""

    name: str
    label: str
    group: str
    kind: Kind
    unit: str
    direction: str
    definition: str
    formula: str
    columns: dict[str, tuple[str, ...]]  # table → columns read
    parameters: tuple[Parameter, ...]
    components: tuple[str, ...]
    benchmark: Benchmark | None
    note: str
    ratio: tuple[str, str] | None
    additive: bool


def describe(name: str) -> MetricDoc:
    """The metric's definition in words and symbols, what it reads and its parameters."""
    m = metric(name)
    columns: dict[str, list[str]] = {}
    for s in m.sources:
        cols = columns.setdefault(s.table, [])
        if s.customer_level:
            for table, read in ENTITIES[s.entity].columns.items():
                cols_t = columns.setdefault(table, [])
                cols_t += [c for c in read if c not in cols_t]
        for text in (s.on, *s.components.values()):
            for c in _COLUMN.findall(text):
                if c not in cols and (s.table not in TABLES or c in TABLES[s.table].column_names):
                    cols.append(c)
    for table, read in _EXTRA_COLUMNS.get(m.name, {}).items():
        columns.setdefault(table, [])
        columns[table] += [c for c in read if c not in columns[table]]
    group = next((g for g, names in GROUPS.items() if m.name in names), "Custom")
    return MetricDoc(
        name=m.name, label=m.label, group=group, kind=m.kind, unit=m.unit, direction=m.direction,
        definition=m.definition, formula=FORMULAS.get(m.name, m.value), columns={t: tuple(c) for t, c in columns.items()},
        parameters=tuple(PARAMETERS[p] for p in m.parameters), components=m.components,
        benchmark=BENCHMARKS.get(m.name), note=_NOTES.get(m.name, ""), ratio=m.ratio, additive=m.additive,
    )



# --- what a metric needs from a workspace ------------------------------------------------------
#
# A user's own data rarely has every table, and a table it has may lack a column (a deals export
# without amounts loads with `amount` empty) or the rows a definition picks (a CRM that never tags a
# deal as expansion). One rule decides everywhere — values, splits, explanations, usage charts, the
# command line, the tree suggested for a workspace — whether a number can be computed: the tables
# and columns it reads must be loaded and hold a value in some row, and the values it picks rows by
# must occur (`Profile`, `missing_data`). When they do not, the number is "no data" with a reason
# that says what to load, never $0 and never a query error.

# What to load for each canonical table, in a user's words.
LOAD_HINTS: dict[str, str] = {
    "deals": "your CRM's deals or opportunities export (HubSpot, Salesforce or a deals CSV)",
    "subscriptions": "your billing export (Stripe or a subscriptions CSV)",
    "leads": "your CRM's or marketing tool's leads export",
    "activities": "your CRM's activity log (calls, emails, meetings, demos)",
    "spend": "your marketing spend by month and channel",
    "quotas": "your sales quotas by owner and period",
    "tickets": "your support tool's tickets export (Zendesk, Intercom or a tickets CSV)",
    "events": "your product analytics events (Segment, Amplitude, Mixpanel or an events CSV)",
    "nps": "your NPS survey answers",
    "accounts": "your CRM's accounts (companies) export",
    "timesheets": "your time-tracking export",
}
# Columns a metric reads that may be empty in every row without leaving it undefined: no
# subscription has ended yet, no deal has closed yet.
MAY_BE_EMPTY = frozenset({("subscriptions", "end_date"), ("deals", "close_date")})
# Values a definition needs beyond those its SQL picks rows by: a win rate over won deals only is
# 100 % whatever the team does.
EXTRA_PICKS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "win_rate": (("deals", "status", ("lost",)),),
}
# Distinct values a profile keeps of a text column; one with more is a name or an id, not a set.
SMALL_VALUES = 60
_READS = re.compile(r'\bt\."?([A-Za-z_][A-Za-z0-9_]*)"?')
_PICK_EQUALS = re.compile(r"""\bt\."?([A-Za-z_][A-Za-z0-9_]*)"?\s*=\s*'([^']*)'""")
_PICK_IN = re.compile(r"""\bt\."?([A-Za-z_][A-Za-z0-9_]*)"?\s+IN\s*\(\s*('[^']*'(?:\s*,\s*'[^']*')*)\s*\)""",
                      re.IGNORECASE)

Values = Mapping[str, Mapping[str, tuple[str, ...]]]

# --- drill dimensions: which columns a number can be split by (Profile.dimensions) ------------
# An extra text column with more distinct values than this is a name or an id, not a split.
MAX_DIM_VALUES = 50
# Extra columns worth splitting by even when a small sample has nearly one value per row.
KNOWN_SPLITS = frozenset({
    "manager", "regional_office", "region", "team", "territory", "country", "industry", "product",
    "product_series", "plan", "lead_source", "source", "type", "deal_type", "feature", "csm",
    "business_segment", "segment", "tier",
})
# Column names that identify or describe one row (ids, keys, people's names, contact details, free
# text): a split by them has as many segments as rows, or is personal data. `forecastcategoryname`
# (a Salesforce picklist) ends in "name" but is a category: see _CATEGORY_WORDS.
_ROW_NAME = re.compile(
    r"(^|_)(id|ids|key|uuid|guid)$|^id_|(account|owner|lead|contact|user|deal|opportunity|campaign|customer|"
    r"record|parent|page|session|order|product)id$|name$|e_?mail|phone|mobile|fax|descr|subject|comment|note|summary|"
    r"^body$|message|address|street|zip|postal|url$|website|password|token", re.IGNORECASE)
_CATEGORY_WORDS = re.compile(r"category|type|stage|status", re.IGNORECASE)
_NUMBER = re.compile(r"^[+-]?[$€£]?\s*\d[\d,]*(\.\d*)?\s*%?$|^[+-]?\.\d+$")
_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T].*)?$|^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}$|^\d{4}-\d{2}$")


def row_identifying(column: str) -> bool:
    """The column's name says it identifies or describes one row (`*_id`, `id`, `*name`, email,
    phone, description…): never a drill dimension, whatever its values."""
    if _ROW_NAME.search(column) is None:
        return False
    return not (column.lower().endswith("name") and _CATEGORY_WORDS.search(column[:-4]) is not None)


def quantity_values(values: Iterable[str]) -> bool:
    """Every value is a number or a date ("0.0", "25000", "10%", "2024-02-06"): the column is a
    measure or a time, and splitting by it gives one segment per amount."""
    found = [v.strip() for v in values if v and v.strip()]
    return bool(found) and all(_NUMBER.match(v) or _DATE.match(v) for v in found)


@dataclass(frozen=True)
class Profile:
    """What a workspace holds: rows per loaded table, per column the rows that have a value, and
    the distinct values of its small text columns (deal types, activity types, managers).

    Empty text counts as no value. A column empty in every row counts as absent for every metric
    and split (`columns`), so a split by an owner nobody filled in is never offered. A column
    without listed values has too many to list, is not text, or was not read (`values` is optional):
    nothing is concluded from its values then.
    """

    rows: Mapping[str, int]
    filled: Mapping[str, Mapping[str, int]]
    values: Values = field(default_factory=dict)  # table → text column → its distinct values (small ones)

    def loaded(self, table: str) -> bool:
        """The table is loaded with rows (a table without rows counts as not loaded)."""
        return self.rows.get(table, 0) > 0

    def has(self, table: str, column: str) -> bool:
        """The table has the column and some row has a value in it."""
        return self.filled.get(table, {}).get(column, 0) > 0

    def exists(self, table: str, column: str) -> bool:
        """The table has the column, filled or not."""
        return column in self.filled.get(table, {})

    def share(self, table: str, column: str) -> float:
        """The share of the table's rows with a value in `column` (0 when absent or empty)."""
        rows = self.rows.get(table, 0)
        return self.filled.get(table, {}).get(column, 0) / rows if rows else 0.0

    def columns(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Per table, its columns that hold a value somewhere: `MetricQuery.columns` for a workspace."""
        return tuple((t, tuple(c for c, n in cols.items() if n > 0)) for t, cols in self.filled.items())

    def distinct(self, table: str, column: str) -> tuple[str, ...] | None:
        """The column's values, or None when they are not known (too many, not text, not read)."""
        return self.values.get(table, {}).get(column)

    def dimensions(self, table: str, *, lifecycle: bool = False) -> list[str]:
        """The table's own columns a number can be split by here: THE rule for drill dimensions,
        shared by the node panel (`Engine.dimensions`) and suggested trees (`suggest`).

        - a canonical dimension of the table (`schema.Table.dimensions`) that holds at least two
          values (one whose values are too many to list counts: a hundred owners still split);
        - an extra column (one the canonical table does not have) whose 2 to MAX_DIM_VALUES listed
          values are text, not numbers or dates (probability, seats, declared revenue are amounts),
          whose name does not identify or describe a row (`row_identifying`: ids, names, emails),
          and that is not mostly one value per row (at most one value per two filled rows), unless
          its name is a well-known split (manager, region, industry: KNOWN_SPLITS) on a small sample.

        Canonical columns that are not dimensions (status, stage, dates, amounts) are never offered,
        nor an extra column holding a lifecycle status or a period label (`detect.not_a_segment`: a
        customer moves from active to cancelled, so splitting ARR by it is no segment); `lifecycle=True`
        lists those too, for the note that says why they were left out.
        """
        spec = TABLES.get(table)
        canonical = spec.dimensions if spec is not None else ()
        known_columns = spec.column_names if spec is not None else ()
        out = []
        for column, filled in self.filled.get(table, {}).items():
            if not filled:
                continue
            values = self.distinct(table, column)
            if column in canonical:
                if values is None or len(values) >= 2:
                    out.append(column)
                continue
            if column in known_columns or values is None or not 2 <= len(values) <= MAX_DIM_VALUES:
                continue
            if row_identifying(column) or quantity_values(values):
                continue
            if not lifecycle and not_a_segment(column, values):
                continue
            if len(values) <= filled / 2 or column.lower() in KNOWN_SPLITS:
                out.append(column)
        return out

    def splits(self, table: str, dimension: str) -> bool:
        """The table's rows can be split by `dimension`: a drill dimension of its own, or, when the
        table has no value in that column, one of the accounts its rows link to. Mirrors
        `dimension_sql`, which reads the table's own filled column first."""
        if self.has(table, dimension):
            return dimension in self.dimensions(table)
        key = "customer_id" if table == "subscriptions" else "account_id"
        return self.has(table, key) and dimension in self.dimensions("accounts")

    def holds(self, table: str, column: str, wanted: Iterable[object]) -> bool:
        """Some row has one of the wanted values (True when the values are not known but some row
        has a value: only a listed set can show a value is absent)."""
        known = self.distinct(table, column)
        if known is None:
            return self.has(table, column)
        return any(str(w) in known for w in wanted)


def read_profile(con: duckdb.DuckDBPyConnection, columns: Mapping[str, Sequence[str]],
                 small: int = SMALL_VALUES) -> Profile:
    """Counts rows and non-empty values per column of each table and lists the distinct values of
    text columns with at most `small` of them (0: none): two queries per table at most."""
    rows: dict[str, int] = {}
    filled: dict[str, dict[str, int]] = {}
    values: dict[str, dict[str, tuple[str, ...]]] = {}
    text = {(t, c) for t, c in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                           "WHERE table_schema = 'main' AND data_type = 'VARCHAR'").fetchall()}
    for table, cols in columns.items():
        counts = []
        for c in cols:
            q = sql.quote_ident(c)
            if (table, c) in text:
                counts.append(f"count(NULLIF(trim({q}), ''))")
                counts.append(f"approx_count_distinct({q})" if small else "NULL")
            else:
                counts += [f"count({q})", "NULL"]
        try:
            got = con.execute(f"SELECT {', '.join(['count(*)', *counts])} FROM {sql.quote_ident(table)}").fetchone()
            rows[table] = int(got[0])
            filled[table] = {c: int(got[1 + 2 * i]) for i, c in enumerate(cols)}
            few = [c for i, c in enumerate(cols) if filled[table][c] and got[2 + 2 * i] is not None
                   and got[2 + 2 * i] <= small]
            values[table] = {}
            if few:
                lists = con.execute("SELECT " + ", ".join(
                    f"list(DISTINCT {sql.quote_ident(c)}) FILTER (WHERE trim({sql.quote_ident(c)}) <> '')"
                    for c in few) + f" FROM {sql.quote_ident(table)}").fetchone()
                values[table] = {c: tuple(sorted(str(v) for v in found))
                                 for c, found in zip(few, lists, strict=True) if len(found) <= small}
        except duckdb.Error as exc:
            raise QueryError(f"cannot read table {table!r}: {str(exc).splitlines()[0]}") from None
    return Profile(rows, filled, values)


def requirements(m: Metric) -> dict[str, tuple[str, ...]]:
    """Table → the columns a value of `m` reads that must hold a value in some row.

    Every table the metric needs is a key, even one it reads no named column of.
    """
    out: dict[str, list[str]] = {t: [] for t in m.tables}
    for table, read in describe(m.name).columns.items():
        out.setdefault(table, []).extend(c for c in read if c not in out[table])
    for s in m.sources:  # custom measures quote their columns: t."amount"
        for text in (s.on, *s.components.values()):
            out[s.table].extend(c for c in _READS.findall(text) if c not in out[s.table])
    return {t: tuple(c for c in cols if (t, c) not in MAY_BE_EMPTY) for t, cols in out.items()}


def picks(m: Metric) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(table, column, values) a value of `m` picks rows by (`t.deal_type = 'new'`, `t.type IN (…)`),
    and those its definition needs besides (`EXTRA_PICKS`): some row must hold one of the values."""
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for s in m.sources:
        if s.customer_level:  # reads an entity relation, not the table's rows
            continue
        for comp in s.components.values():
            out.extend((s.table, c, (v,)) for c, v in _PICK_EQUALS.findall(comp))
            for c, listed in _PICK_IN.findall(comp):
                out.append((s.table, c, tuple(re.findall(r"'([^']*)'", listed))))
    return tuple(dict.fromkeys([*out, *EXTRA_PICKS.get(m.name, ())]))


@dataclass(frozen=True)
class Absent:
    """Rows a number picks by a value that no row holds: deals with deal_type = 'expansion'."""

    table: str
    column: str
    wanted: tuple[str, ...]
    found: tuple[str, ...]  # the values the column does hold

    def words(self) -> str:
        """"needs deals with deal_type = expansion — none of your deals has it (their deal_type: new)"."""
        shown = ", ".join(self.found[:4]) + (f" and {len(self.found) - 4} more" if len(self.found) > 4 else "")
        return (f"needs {self.table} with {self.column} = {' or '.join(self.wanted)} — none of your {self.table} "
                f"has it (their {self.column}: {shown})")


@dataclass(frozen=True)
class Missing:
    """What a number lacks on a workspace: tables not loaded, columns absent or empty in every row,
    rows with the values it picks."""

    tables: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (table, column)
    problems: tuple[str, ...] = ()  # anything else, in words (a filter on a column no table has)
    absent: tuple[Absent, ...] = ()

    @property
    def items(self) -> tuple[str, ...]:
        """The missing tables, the missing columns as table.column, then the absent rows."""
        return (*self.tables, *(f"{t}.{c}" for t, c in self.columns),
                *(f"{a.table}.{a.column} = {' or '.join(a.wanted)}" for a in self.absent))

    def reason(self) -> str:
        """What is missing and what to load, e.g. "needs subscriptions — load your billing export
        (Stripe or a subscriptions CSV)"."""
        parts = []
        if self.tables:
            loads = _and([LOAD_HINTS.get(t, f"a {t} file") for t in self.tables])
            parts.append(f"needs {_and(self.tables)} — load {loads}")
        by_table: dict[str, list[str]] = {}
        for t, c in self.columns:
            by_table.setdefault(t, []).append(c)
        for t, cols in by_table.items():
            it, holds = ("it", "holds") if len(cols) == 1 else ("them", "hold")
            parts.append(f"needs the {_and(cols)} of {t}, empty in every row — map the column of your {t} file "
                         f"that {holds} {it} on the Upload page, or load a {t} export that has {it}")
        for a in self.absent:
            parts.append(f"{a.words()}; map the column of your {a.table} file that holds {a.column} on the Upload "
                         f"page, or load {a.table} that include them")
        return "; ".join([*parts, *self.problems])


def _and(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def missing_data(m: Metric, profile: Profile, filters: Sequence[tuple[str, Any]] = ()) -> Missing | None:
    """What `m` with these node filters lacks on a workspace with this profile; None when nothing.

    A table loaded without rows counts as not loaded. A filter column must hold values in every
    table of the metric that is meant to have it (its canonical columns) or has it: ROAS of a
    channel with the deals' channel left empty would be all deals over one channel's spend. The
    values the definition picks rows by (`picks`), and a filter's values in one table at least,
    must occur in the data (where the profile lists them): Expansion ARR of a CRM that never tags a
    deal as expansion is "no data", not $0.
    """
    need = {t: list(cols) for t, cols in requirements(m).items()}
    problems = []
    holders_of: dict[str, list[str]] = {}
    for col, _ in filters:
        holders = [t for t in need if col in profile.filled.get(t, {})
                   or (t in TABLES and col in TABLES[t].column_names)]
        holders_of[col] = holders
        if not holders:
            problems.append(f"cannot filter {m.name!r} on {col!r}: no table it reads ({', '.join(need)}) has such "
                            "a column — load or map one, or change the node's filter")
        for t in holders:
            if col not in need[t]:
                need[t].append(col)
    tables = tuple(t for t in need if not profile.loaded(t))
    columns = tuple((t, c) for t, cols in need.items() if t not in tables for c in cols if not profile.has(t, c))
    absent = [_absent(profile, t, c, wanted) for t, c, wanted in picks(m)
              if profile.has(t, c) and not profile.holds(t, c, wanted)]
    for col, wanted in filters:
        filled = [t for t in holders_of[col] if profile.has(t, col)]
        values = tuple(str(w) for w in (wanted if isinstance(wanted, (tuple, list)) else (wanted,)))
        if filled and len(filled) == len(holders_of[col]) and not any(profile.holds(t, col, values) for t in filled):
            absent.append(_absent(profile, filled[0], col, values))
    if tables or columns or problems or absent:
        return Missing(tables, columns, tuple(problems), tuple(dict.fromkeys(absent)))
    return None


def _absent(profile: Profile, table: str, column: str, wanted: tuple[str, ...]) -> Absent:
    return Absent(table, column, wanted, profile.distinct(table, column) or ())


@dataclass(frozen=True)
class Example:
    """A metric computed on a workspace for one period, with the components it is made of."""

    name: str
    period: Period
    value: float | None
    components: dict[str, float]
    missing: tuple[str, ...] = ()  # tables the workspace lacks, then table.column left empty
    filters: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    reason: str = ""  # what is missing and what to load


def worked_example(engine: Any, name: str, period: Period, filters: tuple = ()) -> Example:
    """The metric's value and components on an Engine's workspace for `period` (None when no data),
    computed with the workspace's own parameter values (gross margin, health weights…)."""
    m = metric(name)
    lacking = engine.missing(m, tuple(filters))
    if lacking is not None:
        return Example(name, period, None, {}, lacking.items, tuple(filters), lacking.reason())
    q = MetricQuery(name, (period,), engine.as_of, None, tuple(filters), engine.columns,
                    metric_params(engine.settings))
    with engine.workspace.connect() as con:
        df = compute(con, q)
    row = df.iloc[0]
    value = None if pd.isna(row["value"]) or not engine.covers(m, period) else float(row["value"])
    comps = {c: float(row[c]) for c in m.components}
    return Example(name, period, value, comps, (), tuple(filters))


def source_filters(m: Metric, src: Source, filters: tuple, columns: tuple = ()) -> tuple:
    """The node filters one source of a metric applies: those on its table's columns, minus its
    exempt ones — what `build_batch_sql` does, for other scans of the same sources."""
    q = MetricQuery(m.name, (), date.min, None, tuple(filters), tuple(columns))
    return _filters_for(q, src.table, src.exempt).filters
