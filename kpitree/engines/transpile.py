"""DuckDB SQL, as `metrics.py` generates it, translated for another engine with sqlglot.

Why sqlglot and not Ibis: the catalogue is already SQL text (generated once, in one module, and
run as is on DuckDB), so a transpiler keeps one definition and one code path; Ibis would mean
re-expressing 40 metric definitions as expression trees, a second source of truth to keep equal.
sqlglot parses DuckDB's dialect and writes Postgres' and Spark's; the few constructs it does not
carry over are rewritten here on the parsed tree, never by string replacement:

- `GROUP BY ALL` becomes the list of non-aggregate projections (Postgres has no GROUP BY ALL);
- a constant in `GROUP BY` (`'(all)'` when a metric is not split) is dropped: Postgres refuses it
  and grouping by a constant groups nothing;
- `max_by(v, o)` (Postgres has none) becomes the first of `array_agg(v ORDER BY o DESC)` over
  the rows with an order key;
- `approx_count_distinct` on Postgres becomes an exact distinct count (it only decides whether a
  column has few enough values to list);
- an `ASOF JOIN … ON x.k >= y.k` (DuckDB's; neither Postgres nor Spark has one) becomes a range
  join on `y.k <= x.k < the next y.k`, the next key taken with `lead()` over the right side;
- `any_value` on Postgres 15 (which lacks it) becomes `min` (any value is a right answer);
- on Spark, a number written with a decimal point is a DOUBLE (Spark would make it a DECIMAL and
  cut divisions by it to six places), and DuckDB's `quantile_*` are the exact percentiles;
- query parameters (`?`) are spliced in as typed literals, so every driver gets plain SQL.

Parsing a large batch costs milliseconds; the parsed tree of each statement text is kept
(`_parsed`), so a statement that runs again with other parameters is only copied and written.
"""

from __future__ import annotations

import datetime
import threading
from collections import OrderedDict
from typing import Any

import sqlglot
from sqlglot import exp

from ..errors import QueryError

DIALECTS = {"postgres": "postgres", "spark": "spark"}

_CACHE_SIZE = 512
_cache: OrderedDict[str, exp.Expression] = OrderedDict()
_lock = threading.Lock()


def _parsed(sql: str) -> exp.Expression:
    with _lock:
        tree = _cache.get(sql)
        if tree is not None:
            _cache.move_to_end(sql)
            return tree
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise QueryError(f"this query cannot be translated for the workspace's engine: {str(exc).splitlines()[0]}"
                         ) from None
    with _lock:
        _cache[sql] = tree
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return tree


def literal(value: Any) -> exp.Expression:
    """A parameter as a typed SQL literal (dates and timestamps cast, so comparisons keep their type)."""
    if isinstance(value, datetime.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, datetime.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if value is None or isinstance(value, (bool, int, float, str)):
        return exp.convert(value)
    raise QueryError(f"a query parameter of type {type(value).__name__} cannot be sent to the engine")


def _fix_group(node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.Select):
        return node
    group = node.args.get("group")
    if group is None:
        return node
    if group.args.get("all"):
        keys = [e.unalias().copy() for e in node.expressions
                if not e.find(exp.AggFunc) and not isinstance(e.unalias(), exp.Literal)]
        if keys:
            group.set("all", None)
            group.set("expressions", keys)
        else:  # only aggregates: one row, as DuckDB gives
            node.set("group", None)
    else:
        kept = [e for e in group.expressions if not isinstance(e, exp.Literal)]
        if kept:
            group.set("expressions", kept)
    return node


def _latest(arg_max: exp.ArgMax, where: exp.Expression | None) -> exp.Expression:
    """max_by(v, o) [FILTER (WHERE c)] as Postgres' (array_agg(v ORDER BY o DESC) FILTER (...))[1]."""
    value, order = arg_max.this.copy(), arg_max.expression.copy()
    keep: exp.Expression = exp.Not(this=exp.Is(this=order.copy(), expression=exp.Null()))
    if where is not None:
        keep = exp.and_(exp.Paren(this=where.copy()), keep)
    agg = exp.ArrayAgg(this=exp.Order(this=value, expressions=[exp.Ordered(this=order, desc=True)]))
    first = sqlglot.parse_one("(x)[1]", read="postgres")
    first.this.set("this", exp.Filter(this=agg, expression=exp.Where(this=keep)))
    return first


def _asof(node: exp.Expression) -> exp.Expression:
    """`A ASOF [LEFT] JOIN B ON a.k >= b.k [AND a.e = b.e …]` as a plain join matching each A row
    with the B row of the greatest key at most a.k (of equal keys, one): the right side gains the
    next key (`lead` over B's key, per the equality columns) and the join becomes a range."""
    if not isinstance(node, exp.Join) or (node.args.get("method") or "").upper() != "ASOF":
        return node
    right = node.this
    alias = right.alias_or_name
    conds = list(node.args["on"].flatten()) if isinstance(node.args.get("on"), exp.And) else [node.args.get("on")]
    keys: list[exp.Expression] = []
    ineq = None
    for cond in conds:
        if isinstance(cond, exp.EQ):
            side = cond.this if cond.this.table == alias else cond.expression
            keys.append(exp.column(side.name))
        elif isinstance(cond, (exp.GTE, exp.LTE)) and ineq is None:
            ineq = cond
        else:
            raise QueryError("this ASOF join cannot be translated for the workspace's engine")
    if ineq is None:
        raise QueryError("an ASOF join without an inequality cannot be translated for the workspace's engine")
    # normalise to left_key >= right_key
    left_key, right_key = (ineq.this, ineq.expression) if isinstance(ineq, exp.GTE) else (ineq.expression, ineq.this)
    if right_key.table != alias:
        raise QueryError("this ASOF join cannot be translated for the workspace's engine")
    source = right.copy()
    source.set("alias", None)
    window = exp.Window(this=exp.Anonymous(this="lead", expressions=[exp.column(right_key.name)]),
                        partition_by=keys or None,
                        order=exp.Order(expressions=[exp.Ordered(this=exp.column(right_key.name))]))
    sub = exp.select(exp.Star(), exp.alias_(window, "_asof_next")).from_(source).subquery(alias)
    nxt = exp.column("_asof_next", table=alias)
    upper = exp.Paren(this=exp.or_(exp.Is(this=nxt, expression=exp.Null()), exp.LT(this=left_key.copy(),
                                                                                    expression=nxt.copy())))
    on = exp.and_(*[c.copy() for c in conds], upper)
    return exp.Join(this=sub, side=node.args.get("side"), on=on)


def _postgres(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
        return exp.Min(this=node.this.this.copy())  # min ignores NULLs too
    if isinstance(node, exp.AnyValue):
        return exp.Min(this=node.this.copy())
    if isinstance(node, exp.Filter) and isinstance(node.this, exp.ArgMax):
        return _latest(node.this, node.expression.this)
    if isinstance(node, exp.ArgMax):
        return _latest(node, None)
    if isinstance(node, exp.ApproxDistinct):
        return exp.Count(this=exp.Distinct(expressions=[node.this.copy()]))
    return node


def _spark(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Literal) and not node.is_string and any(ch in node.this for ch in ".eE") \
            and not isinstance(node.parent, (exp.Cast, exp.DataType)):
        # Spark reads 7.0 as DECIMAL(2,1), and an integer over it as a decimal cut to 6 places
        # (touches per rep per week came out 1e-7 off); DuckDB's arithmetic on it is floating point
        return exp.cast(node.copy(), "DOUBLE")
    if isinstance(node, exp.PercentileDisc) and node.args.get("expression") is not None \
            and not isinstance(node.parent, exp.WithinGroup):
        # DuckDB's quantile_disc(x, q): Spark takes only the ordered-set form
        order = exp.Order(expressions=[exp.Ordered(this=node.this.copy())])
        return exp.WithinGroup(this=exp.Anonymous(this="percentile_disc", expressions=[node.expression.copy()]),
                               expression=order)
    if isinstance(node, exp.PercentileCont) and node.args.get("expression") is not None \
            and not isinstance(node.parent, exp.WithinGroup):
        return exp.Anonymous(this="percentile", expressions=[node.this.copy(), node.expression.copy()])
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.PercentileCont):
        # exact, as DuckDB's (sqlglot would write Spark's approximate percentile)
        order = node.expression.expressions[0].this.copy()
        return exp.Anonymous(this="percentile", expressions=[order, node.this.this.copy()])
    if isinstance(node, exp.Tuple) and not isinstance(node.parent, (exp.In, exp.Values)):
        return exp.Anonymous(this="struct", expressions=[e.copy() for e in node.expressions])
    return node


def translate(sql: str, params: Any, dialect: str) -> str:
    """`sql` (DuckDB's dialect, `?` parameters) as one statement for `dialect`, parameters spliced in."""
    if dialect not in DIALECTS:
        raise QueryError(f"no SQL translation for engine {dialect!r}")
    tree = _parsed(sql).copy()
    values = list(params or [])
    if values:
        holders = list(tree.find_all(exp.Placeholder))
        if len(holders) != len(values):
            raise QueryError(f"the query has {len(holders)} parameters but {len(values)} were given")
        for holder, value in zip(holders, values, strict=True):
            holder.replace(literal(value))
    tree = tree.transform(_fix_group).transform(_asof)
    if dialect == "postgres":
        tree = tree.transform(_postgres)
    else:
        tree = tree.transform(_spark)
    return tree.sql(dialect=DIALECTS[dialect])
