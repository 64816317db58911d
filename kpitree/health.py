"""Customer health: a 0–100 score per paying account from usage trend, support tickets and NPS.

The score is a weighted mean of three signal scores, each 0–100, computed at the end of a period
(its last day, or today while it runs):

- **usage** — active days (days with any product event) in the last 28 days against the account's
  own 28-day average over the 56 days before: 100 × min((recent + ½) / (earlier + ½), 1). Steady
  or growing use scores 100; use that fades scores less; no use at all in the 84 days scores 0.
  The ½ day keeps accounts that use the product a few times a month from swinging between 0 and
  100 on chance alone.
- **tickets** — support tickets opened in the last 90 days: 100 × max(1 − tickets / cap, 0), with
  `health_ticket_cap` (default 10) tickets scoring 0.
- **nps** — 10 × the account's mean NPS answer (0–10) in the last 180 days; an account that has
  not answered has no NPS signal, and the weights of the other two are scaled up instead.

health = (w_usage × usage + w_tickets × tickets + w_nps × nps) / (w_usage + w_tickets + w_nps),
leaving out w_nps for accounts without an answer. Default weights: usage 0.5, tickets 0.2, NPS 0.3.
An account is *at risk* below 40, and *upsell-eligible* when it is healthy (≥ 70), its usage is
not falling (recent active days ≥ its earlier 28-day average) and it used at least 3 different
features in the last 28 days.

Every number here is a workspace parameter (`workspace.json`) with the default above; the SQL is
generated from them in `account_signals_sql` and read by the catalogue's `health_score`,
`at_risk_accounts` and `upsell_eligible_accounts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import dialect as sql

RECENT_DAYS = 28  # the usage window the trend compares…
EARLIER_DAYS = 56  # …with the account's average over this many days before it
TICKET_DAYS = 90
NPS_DAYS = 180
USAGE_SMOOTHING = 0.5  # active days added to both sides of the usage ratio


@dataclass(frozen=True)
class Parameter:
    """A number a metric definition depends on, set per workspace (workspace.json) with a default."""

    name: str
    default: float
    unit: str
    description: str


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("health_weight_usage", 0.5, "weight", "Weight of the usage-trend score in the health score."),
    Parameter("health_weight_tickets", 0.2, "weight", "Weight of the support-ticket score in the health score."),
    Parameter("health_weight_nps", 0.3, "weight", "Weight of the NPS score in the health score (accounts "
              "without an NPS answer in 180 days leave it out)."),
    Parameter("health_ticket_cap", 10.0, "count", "Tickets opened in 90 days at which the ticket score reaches 0."),
    Parameter("health_at_risk_below", 40.0, "score", "An active account whose health is below this is at risk."),
    Parameter("upsell_min_health", 70.0, "score", "Least health of an upsell-eligible account."),
    Parameter("upsell_min_features", 3.0, "count", "Least distinct features used in the last 28 days by an "
              "upsell-eligible account."),
)


def usage_score_sql(recent: str, earlier: str) -> str:
    """Usage-trend score 0–100 from recent active days and active days in the 56 days before."""
    k = repr(float(USAGE_SMOOTHING))
    r, e = f"COALESCE({recent}, 0)", f"COALESCE({earlier}, 0)"
    return (f"(CASE WHEN {r} + {e} = 0 THEN 0.0 ELSE 100.0 * least(({r} + {k}) / "
            f"({e} * {RECENT_DAYS / EARLIER_DAYS!r} + {k}), 1.0) END)")


def ticket_score_sql(tickets: str) -> str:
    return "(100.0 * greatest(1.0 - COALESCE(" + tickets + ", 0) / {health_ticket_cap}, 0.0))"


def nps_score_sql(mean_score: str) -> str:
    """10 × the mean answer; NULL when the account has not answered (no signal)."""
    return f"(10.0 * {mean_score})"


def health_sql(usage: str, tickets: str, nps: str) -> str:
    """The weighted mean of the three signal scores, NPS left out where it is NULL."""
    return (
        "((({health_weight_usage}) * " + usage + " + ({health_weight_tickets}) * " + tickets
        + " + COALESCE(({health_weight_nps}) * " + nps + ", 0)) / NULLIF(({health_weight_usage}) + "
        "({health_weight_tickets}) + CASE WHEN " + nps + " IS NULL THEN 0 ELSE ({health_weight_nps}) END, 0))"
    )


def account_signals_sql(name: str, customers: str, filters: dict[str, str]) -> str:
    """CTEs ending in `name`: one row per period and active account with its signals and scores.

    `customers` is the name of a per-customer CTE (pkey, customer_id, m1, m0, segment, …);
    `filters` holds, per signal table (events, tickets, nps), a SQL condition over its alias `t`.
    Parameters appear as `{name}` placeholders, replaced by the catalogue with the workspace's values.
    """
    day = sql.day_of("t.timestamp")
    recent_from = sql.add_days("P.p_cut", -(RECENT_DAYS - 1))
    usage = (
        f"{name}_u AS (SELECT P.pkey, t.account_id, "
        f"count(DISTINCT {day}) FILTER (WHERE {day} >= {recent_from}) AS recent_days, "
        f"count(DISTINCT {day}) FILTER (WHERE {day} < {recent_from}) AS earlier_days, "
        f"count(DISTINCT t.feature) FILTER (WHERE {day} >= {recent_from}) AS recent_features "
        f"FROM P JOIN events AS t ON {day} BETWEEN {sql.add_days('P.p_cut', -(RECENT_DAYS + EARLIER_DAYS - 1))} "
        f"AND P.p_cut WHERE {filters.get('events', 'TRUE')} GROUP BY P.pkey, t.account_id)"
    )
    opened = sql.day_of("t.opened_at")
    tickets = (
        f"{name}_t AS (SELECT P.pkey, t.account_id, count(*) AS tickets FROM P JOIN tickets AS t "
        f"ON {opened} BETWEEN {sql.add_days('P.p_cut', -(TICKET_DAYS - 1))} AND P.p_cut "
        f"WHERE {filters.get('tickets', 'TRUE')} GROUP BY P.pkey, t.account_id)"
    )
    nps = (
        f"{name}_n AS (SELECT P.pkey, t.account_id, avg(t.score) AS nps_mean, count(*) AS answers FROM P "
        f"JOIN nps AS t ON t.date BETWEEN {sql.add_days('P.p_cut', -(NPS_DAYS - 1))} AND P.p_cut "
        f"WHERE {filters.get('nps', 'TRUE')} GROUP BY P.pkey, t.account_id)"
    )
    usage_score = usage_score_sql("u.recent_days", "u.earlier_days")
    ticket_score = ticket_score_sql("k.tickets")
    nps_score = nps_score_sql("n.nps_mean")
    scored = (
        f"{name}_s AS (SELECT c.pkey, c.customer_id, c.segment, c.m1, "
        f"COALESCE(u.recent_days, 0) AS recent_days, COALESCE(u.earlier_days, 0) AS earlier_days, "
        f"COALESCE(u.recent_features, 0) AS recent_features, COALESCE(k.tickets, 0) AS tickets, "
        f"n.nps_mean, {usage_score} AS usage_score, {ticket_score} AS ticket_score, {nps_score} AS nps_score "
        f"FROM {customers} AS c "
        f"LEFT JOIN {name}_u AS u ON u.pkey = c.pkey AND u.account_id = c.customer_id "
        f"LEFT JOIN {name}_t AS k ON k.pkey = c.pkey AND k.account_id = c.customer_id "
        f"LEFT JOIN {name}_n AS n ON n.pkey = c.pkey AND n.account_id = c.customer_id WHERE c.m1 > 0)"
    )
    final = (f"{name} AS (SELECT s.*, {health_sql('s.usage_score', 's.ticket_score', 's.nps_score')} AS health "
             f"FROM {name}_s AS s)")
    return ", ".join((usage, tickets, nps, scored, final))
