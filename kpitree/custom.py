"""Custom measures: a node's `metric:` written as a mapping, checked and turned into a catalogue Metric.

```yaml
metric:
  aggregate: sum                 # sum | count | count_distinct | avg | min | max
  table: deals                   # a canonical table
  column: amount                 # the aggregated column (count may leave it out: rows)
  filter: "status = 'won' AND segment = 'Enterprise'"   # one DuckDB boolean expression over the row
  date_column: close_date        # which date puts a row in a period (default: the table's own)
  kind: flow                     # flow | stock | ratio (default: flow for sums/counts, ratio otherwise)
  unit: money                    # default: money for money columns, count otherwise
  label: Enterprise bookings     # optional
```

The filter is SQL written by whoever wrote the tree file, so it is checked twice. Here, with a
real SQL parser (sqlglot): exactly one expression, no `;`, no comments, no statements, no
subqueries or table references, no table functions, no qualified names (other schemas or
catalogs), only plain columns of the measure's own table and an allow-list of scalar functions;
the SQL that runs is regenerated from the checked expression tree, every column bound to the
measure's table. Then the workspace connection it runs on has external access disabled and its
configuration locked, and the Engine interrupts a query that runs past the time limit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from . import dialect as sql
from .metrics import CATALOGUE, Kind, Metric, Source, register
from .schema import TABLES, ColumnType

AGGREGATES = ("sum", "count", "count_distinct", "avg", "min", "max")
KINDS = tuple(k.value for k in Kind)
UNITS = ("money", "percent", "count", "days", "hours", "ratio", "money_per_day", "months")
MEASURE_KEYS = ("aggregate", "table", "column", "filter", "date_column", "kind", "unit", "label")
MAX_FILTER_CHARS = 2000
MAX_FILTER_NODES = 400
MAX_FILTER_NESTING = 16
EXAMPLE = "metric: {aggregate: sum, table: deals, column: amount, filter: \"status = 'won'\", date_column: close_date}"

_NUMERIC = (ColumnType.MONEY, ColumnType.NUMBER, ColumnType.INTEGER)
_DATES = (ColumnType.DATE, ColumnType.TIMESTAMP)


@dataclass(frozen=True)
class CustomMeasure:
    """A measure defined in the tree file, kept as written (also when invalid, for drafts)."""

    aggregate: str
    table: str
    column: str | None = None
    filter: str | None = None
    date_column: str | None = None
    kind: str | None = None
    unit: str | None = None
    label: str | None = None

    def to_yaml(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @property
    def resolved_kind(self) -> Kind:
        if self.kind in KINDS:
            return Kind(self.kind)
        return Kind.FLOW if self.aggregate in ("sum", "count", "count_distinct") else Kind.RATIO

    @property
    def resolved_unit(self) -> str:
        if self.unit:
            return self.unit
        if self.aggregate in ("count", "count_distinct"):
            return "count"
        table = TABLES.get(self.table)
        if table and self.column in table.column_names and table.column(self.column).type is ColumnType.MONEY:
            return "money"
        return "count"

    @property
    def resolved_date_column(self) -> str | None:
        if self.date_column:
            return self.date_column
        table = TABLES.get(self.table)
        return table.date_column if table else None

    @property
    def name(self) -> str:
        """`custom_<hash of the definition>`: the same definition always gets the same name."""
        text = json.dumps(self.to_yaml(), sort_keys=True, ensure_ascii=True)
        return "custom_" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def describe(self) -> str:
        what = "rows" if self.aggregate == "count" and not self.column else f"{self.column}"
        agg = self.aggregate.replace("_", " ")
        where = f" where {self.filter}" if self.filter else ""
        return f"Custom measure: {agg} of {self.table}.{what} by {self.resolved_date_column} in P{where}."


def measure_from_raw(raw: Any) -> tuple[CustomMeasure | None, list[tuple[str, str]]]:
    """The measure in a YAML mapping, and (key, message) problems about its shape."""
    problems: list[tuple[str, str]] = []
    if not isinstance(raw, dict):
        return None, [("metric", f"a custom measure is a mapping, e.g. {EXAMPLE}")]
    for key in raw:
        if key not in (*MEASURE_KEYS, "__line__", "__lines__"):
            problems.append((key, f"unknown custom-measure key {key!r} (allowed: {', '.join(MEASURE_KEYS)})"))
    values: dict[str, str | None] = {}
    for key in MEASURE_KEYS:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            problems.append((key, f"{key} must be text; got {value!r}"))
            value = str(value)
        values[key] = value
    if not values["aggregate"] or not values["table"]:
        problems.append(("metric", f"a custom measure needs at least aggregate and table, e.g. {EXAMPLE}"))
    measure = CustomMeasure(
        aggregate=values["aggregate"] or "", table=values["table"] or "", **{k: values[k] for k in MEASURE_KEYS[2:]}
    )
    return measure, problems


def check_measure(m: CustomMeasure) -> list[tuple[str, str]]:
    """Every (key, message) problem of a measure; empty when it is safe and complete."""
    problems: list[tuple[str, str]] = []
    if m.aggregate not in AGGREGATES:
        problems.append(("aggregate", f"aggregate {m.aggregate!r} is not one of {', '.join(AGGREGATES)}"))
    table = TABLES.get(m.table)
    if table is None:
        problems.append(("table", f"unknown table {m.table!r} (canonical tables: {', '.join(TABLES)})"))
        return problems
    cols = table.column_names
    if m.column is not None and m.column not in cols:
        problems.append(("column", f"unknown column {m.column!r} of {m.table} (columns: {', '.join(cols)})"))
    elif m.column is None and m.aggregate not in ("count",):
        problems.append(("column", f"aggregate {m.aggregate} needs a column of {m.table}, e.g. column: {cols[0]}"))
    elif (
        m.column is not None
        and m.aggregate in ("sum", "avg", "min", "max")
        and table.column(m.column).type not in _NUMERIC
    ):
        numeric = [c.name for c in table.columns if c.type in _NUMERIC]
        problems.append(
            (
                "column",
                f"{m.aggregate} needs a numeric column; {m.table}.{m.column} is "
                f"{table.column(m.column).type.value} (numeric: {', '.join(numeric) or 'none'})",
            )
        )
    date_col = m.resolved_date_column
    dates = [c.name for c in table.columns if c.type in _DATES]
    if date_col is None:
        problems.append(("date_column", f"table {m.table} has no date column, so its rows cannot be put in periods"))
    elif date_col not in cols or table.column(date_col).type not in _DATES:
        problems.append(
            (
                "date_column",
                f"date_column {date_col!r} is not a date column of {m.table} "
                f"(date columns: {', '.join(dates) or 'none'})",
            )
        )
    if m.kind is not None and m.kind not in KINDS:
        problems.append(("kind", f"kind {m.kind!r} is not one of {', '.join(KINDS)}"))
    if m.unit is not None and m.unit not in UNITS:
        problems.append(("unit", f"unit {m.unit!r} is not one of {', '.join(UNITS)}"))
    if m.filter is not None:
        _, errors = check_filter(m.filter, m.table)
        problems.extend(("filter", e) for e in errors)
    return problems


# --- the filter fragment ------------------------------------------------------------------------


def _classes(*names: str) -> tuple[type, ...]:
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


# What a filter may contain: row-level predicates, arithmetic, literals and plain scalar functions.
_LOGIC = ("And", "Or", "Not", "Xor")
_COMPARISONS = ("EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ", "Is", "In", "Between", "Like",
                "ILike")
_STRUCTURE = _classes(
    "Column", "Identifier", "Literal", "Boolean", "Null", "Paren", *_LOGIC, *_COMPARISONS,
    "Add", "Sub", "Mul", "Div", "IntDiv", "Mod", "Neg",
    "DataType", "DataTypeParam", "Var", "Interval", "Cast", "TryCast", "Case", "If",
)
_FUNCTIONS = _classes(
    "Coalesce",
    "Nullif",
    "Greatest",
    "Least",
    "Lower",
    "Upper",
    "Trim",
    "Length",
    "Abs",
    "Round",
    "Floor",
    "Ceil",
    "Extract",
    "Year",
    "Month",
    "Quarter",
    "Day",
    "DayOfWeek",
    "DayOfMonth",
    "Week",
    "TimestampTrunc",
    "DateTrunc",
    "CurrentDate",
    "StartsWith",
    "Contains",
    "RegexpLike",
    "Substring",
    "Concat",
    "DPipe",
    "TimeToStr",
    "DateDiff",
    "DateAdd",
    "DateSub",
)
_ALLOWED = _STRUCTURE + _FUNCTIONS
_PREDICATES = _classes(*_LOGIC, *_COMPARISONS, "StartsWith", "Contains", "RegexpLike", "Boolean")
# As DuckDB spells them (sqlglot's class names differ: strftime is TimeToStr, regexp_matches RegexpLike).
_FUNCTION_NAMES = (
    "lower",
    "upper",
    "trim",
    "length",
    "abs",
    "round",
    "floor",
    "ceil",
    "coalesce",
    "ifnull",
    "nullif",
    "greatest",
    "least",
    "extract",
    "year",
    "month",
    "quarter",
    "day",
    "dayofweek",
    "week",
    "date_trunc",
    "date_diff",
    "current_date",
    "starts_with",
    "contains",
    "regexp_matches",
    "substring",
    "concat",
    "strftime",
)


@contextmanager
def _quiet_parser():
    """sqlglot logs a warning when it falls back to a raw command; the check reports it instead."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _refusal(node: exp.Expression) -> str:
    """Why this part of the expression is refused, in words a tree author understands."""
    if isinstance(node, (exp.Select, exp.Subquery, exp.Union, exp.Query)) or isinstance(node, exp.Exists):
        return "subqueries are not allowed: a filter is a condition on one row of its own table"
    if isinstance(node, exp.Table):
        return f"table reference {node.sql('duckdb')!r} is not allowed: a measure reads only its own table"
    if isinstance(node, exp.AggFunc):
        return (
            f"aggregate {node.sql_name().lower()}() is not allowed in a filter: the filter selects rows, "
            "the measure's `aggregate:` sums or counts them"
        )
    if isinstance(node, exp.Anonymous):
        name = str(node.this).lower()
        return f"function {name}() is not allowed (allowed functions: {', '.join(_FUNCTION_NAMES)})"
    if isinstance(node, exp.Func):
        name = node.sql_name().lower()
        return (
            f"function {name}() is not allowed: table functions and system functions cannot be used "
            f"(allowed functions: {', '.join(_FUNCTION_NAMES)})"
        )
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        return "parameters such as ? or $1 are not allowed"
    if isinstance(node, exp.RawString):
        return "dollar-quoted strings are not allowed; use 'single quotes'"
    if isinstance(node, exp.Star):
        return "* is not allowed in a filter"
    return (
        f"{node.key.upper()} is not allowed in a filter: write one boolean expression over the row, e.g. status = 'won'"
    )


def check_filter(text: str, table: str) -> tuple[str | None, list[str]]:
    """The filter as safe SQL over the alias `t`, or None and the reasons it is refused."""
    if not isinstance(text, str) or not text.strip():
        return None, ["filter is empty; leave the key out to count every row"]
    if len(text) > MAX_FILTER_CHARS:
        return None, [f"filter is {len(text)} characters long; the limit is {MAX_FILTER_CHARS}"]
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
        return None, ["filter contains control characters"]
    depth = deepest = 0
    for ch in text:  # sqlglot parses and prints recursively: 43 nested parentheses exhaust the stack
        depth += ch == "("
        depth -= ch == ")"
        deepest = max(deepest, depth)
    if deepest > MAX_FILTER_NESTING:
        return None, [f"filter nests parentheses {deepest} deep; the limit is {MAX_FILTER_NESTING}"]
    try:
        return _check_parsed(text, table)
    except (RecursionError, MemoryError):
        return None, [f"filter is too complex to check (more than {MAX_FILTER_NODES} parts or too deeply nested); "
                      "split it into simpler conditions"]


def _check_parsed(text: str, table: str) -> tuple[str | None, list[str]]:
    """`check_filter` once the text is within the size limits."""
    columns = TABLES[table].column_names if table in TABLES else ()
    dialect = sqlglot.Dialect.get_or_raise("duckdb")
    try:
        tokens = dialect.tokenize(text)
    except SqlglotError as exc:
        return None, [f"filter cannot be read as SQL: {str(exc).splitlines()[0]}"]
    if any(t.token_type.name == "SEMICOLON" for t in tokens):
        return None, ["';' is not allowed: a filter is one expression, never several statements"]
    if any(t.comments for t in tokens) or not tokens:
        return None, ["comments (-- or /* */) are not allowed in a filter" if tokens else "filter is only a comment"]
    try:
        with _quiet_parser():
            parsed = sqlglot.parse(text, read="duckdb")
    except SqlglotError as exc:
        return None, [f"filter cannot be read as SQL: {str(exc).splitlines()[0]}"]
    parsed = [p for p in parsed if p is not None]
    if len(parsed) != 1:
        return None, ["a filter is exactly one expression"]
    root = parsed[0]
    errors: list[str] = []
    count = 0
    for node in root.walk():
        count += 1
        if not isinstance(node, _ALLOWED):
            errors.append(_refusal(node))
            break
        if isinstance(node, exp.Column):
            if not isinstance(node.this, exp.Identifier):
                errors.append(_refusal(node.this))
                break
            if node.table or node.args.get("db") or node.args.get("catalog"):
                errors.append(
                    f"qualified name {node.sql('duckdb')!r} is not allowed: write plain column names of "
                    f"{table} (no other tables, schemas or catalogs)"
                )
                break
            if node.name not in columns:
                errors.append(f"unknown column {node.name!r} in filter (columns of {table}: {', '.join(columns)})")
        if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest") or node.args.get("field")):
            errors.append("IN must list values, e.g. segment IN ('SMB', 'Mid-Market'); subqueries are not allowed")
            break
    if count > MAX_FILTER_NODES:
        errors.append(f"filter is too complex ({count} parts; the limit is {MAX_FILTER_NODES})")
    if errors:
        return None, errors
    inner = root.unnest() if isinstance(root, exp.Paren) else root
    if not isinstance(inner, _PREDICATES):
        return None, [f"filter must be a condition such as status = 'won', not {root.sql('duckdb')!r}"]
    bound = root.transform(lambda n: exp.column(n.name, table="t", quoted=True) if isinstance(n, exp.Column) else n)
    return bound.sql(dialect="duckdb"), []


# --- the catalogue metric ---------------------------------------------------------------------


def measure_metric(m: CustomMeasure) -> Metric:
    """The catalogue Metric computing the measure; the measure must have passed `check_measure`."""
    problems = check_measure(m)
    if problems:
        raise ValueError("; ".join(msg for _, msg in problems))
    cond = check_filter(m.filter, m.table)[0] if m.filter else None
    col = f"t.{sql.quote_ident(m.column)}" if m.column else None
    date = f"CAST(t.{sql.quote_ident(m.resolved_date_column or '')} AS DATE)"
    kind = m.resolved_kind
    on = f"{date} <= P.p_end" if kind is Kind.STOCK else f"{date} BETWEEN P.p_start AND P.p_end"

    def agg(expr: str, extra: str | None = None) -> str:
        where = " AND ".join(f"({c})" for c in (cond, extra) if c)
        return f"{expr} FILTER (WHERE {where})" if where else expr

    ratio = None
    additive = False
    if m.aggregate == "sum":
        components, value, additive = {"total": agg(f"sum(CAST({col} AS DOUBLE))")}, "total", True
    elif m.aggregate == "count":
        components, value, additive = {"total": agg(f"count({col or '*'})")}, "total", True
    elif m.aggregate == "count_distinct":
        components, value = {"total": agg(f"count(DISTINCT {col})")}, "total"
    elif m.aggregate == "avg":
        components = {"total": agg(f"sum(CAST({col} AS DOUBLE))", f"{col} IS NOT NULL"), "n": agg(f"count({col})")}
        value, ratio = sql.safe_div("total", "n"), ("total", "n")
    elif m.aggregate in ("min", "max"):
        components, value = {"total": agg(f"{m.aggregate}(CAST({col} AS DOUBLE))")}, "total"
    else:  # pragma: no cover - check_measure refuses other aggregates
        raise AssertionError(f"unhandled aggregate {m.aggregate!r}")
    return Metric(
        name=m.name,
        label=m.label or f"{m.aggregate} of {m.table}.{m.column or 'rows'}",
        kind=kind,
        unit=m.resolved_unit,
        direction="higher",
        definition=m.describe(),
        sources=(Source(m.table, on, components),),
        value=value,
        ratio=ratio,
        additive=additive,
    )


def register_measure(m: CustomMeasure) -> str:
    """Adds the measure to the catalogue (idempotent) and returns its metric name."""
    if m.name in CATALOGUE:
        return m.name
    return register(measure_metric(m))
