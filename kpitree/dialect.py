"""The few SQL constructs that differ between engines, kept in one place.

Metric SQL is meant to run unchanged on a distributed engine later (Trino, Spark, BigQuery,
Snowflake, Postgres). Everything else in `metrics.py` is ANSI SQL with FILTER clauses; what is
engine-specific is spelled here so that a port is one file.
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
    return f"CAST({date_sql} + INTERVAL {int(months)} MONTH AS DATE)"


def safe_div(num: str, den: str) -> str:
    return f"(CAST({num} AS DOUBLE) / NULLIF({den}, 0))"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
