"""The few SQL constructs that differ between engines, kept in one place.

Metric SQL is meant to run unchanged on a distributed engine later (Trino, Spark, BigQuery,
Snowflake, Postgres). Everything else in `metrics.py` is ANSI SQL with FILTER clauses; what is
engine-specific is spelled here so that a port is one file.

Everything here is written in DuckDB's dialect, the one SQL the catalogue is generated in. A
workspace on another engine (PostgreSQL, Spark) gets the same statements translated by
`kpitree.engines.transpile` (sqlglot, plus a few rewrites on the parsed tree: `max_by`, ASOF joins,
`GROUP BY ALL`, exact percentiles), so a construct added here needs a translation only when
sqlglot does not carry it over; `tests/test_engines_*.py` compare every metric on each engine.
"""

from __future__ import annotations

from datetime import date


def date_literal(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def days_between(start_sql: str, end_sql: str) -> str:
    """Whole days from start to end (DuckDB: date subtraction gives an integer)."""
    return f"date_diff('day', {start_sql}, {end_sql})"


def hours_between(start_sql: str, end_sql: str) -> str:
    return f"(epoch({end_sql}) - epoch({start_sql})) / 3600.0"


def value_at_latest(value_sql: str, order_sql: str) -> str:
    """The value of the row with the greatest order key (Trino/Spark: max_by; BigQuery: ARRAY_AGG)."""
    return f"max_by({value_sql}, {order_sql})"


def add_months(date_sql: str, months: int) -> str:
    sign = "-" if months < 0 else "+"
    return f"CAST({date_sql} {sign} INTERVAL {abs(int(months))} MONTH AS DATE)"


def safe_div(num: str, den: str) -> str:
    return f"(CAST({num} AS DOUBLE) / NULLIF({den}, 0))"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def add_days(date_sql: str, days: int) -> str:
    """The date `days` later (earlier when negative)."""
    sign = "-" if days < 0 else "+"
    return f"CAST({date_sql} {sign} INTERVAL {abs(int(days))} DAY AS DATE)"


def month_start(date_sql: str) -> str:
    """The first day of the month holding the date."""
    return f"CAST(date_trunc('month', {date_sql}) AS DATE)"


def week_start(date_sql: str) -> str:
    """The Monday of the ISO week holding the date."""
    return f"CAST(date_trunc('week', {date_sql}) AS DATE)"


def day_of(timestamp_sql: str) -> str:
    """The calendar day of a timestamp."""
    return f"CAST({timestamp_sql} AS DATE)"


def minutes_between(start_sql: str, end_sql: str) -> str:
    return f"(epoch({end_sql}) - epoch({start_sql})) / 60.0"


def median(value_sql: str) -> str:
    """The median of a column (the ANSI ordered-set aggregate; Trino: approx_percentile)."""
    return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {value_sql})"


def count_distinct_pairs(a_sql: str, b_sql: str) -> str:
    """Distinct (a, b) pairs, NULLs ignored (BigQuery: COUNT(DISTINCT FORMAT('%t', (a, b))))."""
    return f"count(DISTINCT CASE WHEN {a_sql} IS NOT NULL AND {b_sql} IS NOT NULL THEN ({a_sql}, {b_sql}) END)"


def number_literal(value: float) -> str:
    """A finite number as an SQL literal (parameters of definitions are spliced in as literals)."""
    v = float(value)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"a metric parameter must be a finite number, got {value!r}")
    return repr(v)


def plus_days(timestamp_sql: str, days: float) -> str:
    """A timestamp `days` later (whole days)."""
    return f"({timestamp_sql} + INTERVAL {int(round(days))} DAY)"


def string_literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"
