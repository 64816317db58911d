"""Segment comparisons for a node: what each rep / segment / channel did now and before.

This is the plain split the diagnostic bar charts draw; the explanation engine ranks and
decomposes the same numbers.
"""

from __future__ import annotations

import pandas as pd

from .errors import QueryError
from .evaluate import Engine
from .format import fmt, fmt_change
from .metrics import metric
from .periods import Period
from .tree import Node, Tree


def drill_dimensions(engine: Engine, tree: Tree, node: Node) -> list[str]:
    """The node's drill dimensions that every table its metric reads has a value of (or reaches via
    accounts); none when the node's value lacks data. A column empty in every row is never offered."""
    if engine.missing(node) is not None:
        return []
    return engine.dimensions(node, tree.dimensions_for(node))


def segment_table(engine: Engine, node: Node, period: Period, baseline: Period, dimension: str) -> pd.DataFrame:
    """Per segment: current value, baseline value, change, and volume (ratio denominators), worst first;
    segments with nothing (no value or zero) on both sides are left out.

    A QueryError saying what to load when the node lacks data, or that the dimension cannot split it.
    """
    m = metric(node.metric)
    lacking = engine.missing(node)
    if lacking is not None:
        raise QueryError(f"{node.label} {lacking.reason()}")
    if dimension not in engine.dimensions(node, [dimension]):
        raise QueryError(f"{node.label} cannot be split by {dimension}: no table it reads has a {dimension} "
                         "with a value (load or map that column)")
    df = engine.query(m.name, [baseline, period], dimension=dimension, filters=node.filter)
    now = df[df.pkey == period.key].set_index("segment")
    before = df[df.pkey == baseline.key].set_index("segment")
    segments = sorted(set(now.index) | set(before.index))
    out = pd.DataFrame({"segment": segments})
    out["current"] = [now["value"].get(s) for s in segments]
    out["baseline"] = [before["value"].get(s) for s in segments]
    if m.ratio:
        den = m.ratio[1]
        out["volume"] = [now[den].get(s, 0.0) for s in segments]
    # nothing on either side (no value, or zero: a CSM without new deals) says nothing about the change
    said = out["current"].fillna(0).astype("float64").ne(0) | out["baseline"].fillna(0).astype("float64").ne(0)
    out = out[said].reset_index(drop=True)
    out["change"] = out["current"].astype("float64") - out["baseline"].astype("float64")
    adverse = -out["change"] if node.better == "higher" else out["change"]
    out["adverse"] = adverse.fillna(0.0)
    return out.sort_values("adverse", ascending=False, kind="stable").reset_index(drop=True)


def display(table: pd.DataFrame, unit: str, dimension: str, period: Period, baseline: Period) -> pd.DataFrame:
    """`segment_table` as the page shows it: columns named for what they are — the dimension ("owner",
    not "segment"), the period ("2026-10") and the baseline period ("2026-09", not "before") — and
    numbers formatted (money compact, counts whole, no "±$0")."""
    money = unit in ("money", "money_per_day")
    return pd.DataFrame({
        dimension: table["segment"],
        period.key: [fmt(v, unit, compact=money) for v in table["current"]],
        baseline.key: [fmt(v, unit, compact=money) for v in table["baseline"]],
        "difference": [fmt_change(v, unit) for v in table["change"]],
    })
