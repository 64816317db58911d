"""Segment comparisons for a node: what each rep / segment / channel did now and before.

This is the plain split the diagnostic bar charts draw; the explanation engine ranks and
decomposes the same numbers.
"""

from __future__ import annotations

import pandas as pd

from .evaluate import Engine
from .metrics import metric
from .periods import Period
from .schema import TABLES
from .tree import Node, Tree


def drill_dimensions(engine: Engine, tree: Tree, node: Node) -> list[str]:
    """The node's drill dimensions that every table its metric reads has (or reaches via accounts)."""
    m = metric(node.metric)
    cols = dict(engine.columns)
    account_cols = set(cols.get("accounts", ()))

    def has(table: str, dim: str) -> bool:
        table_cols = set(cols.get(table, TABLES[table].column_names if table in TABLES else ()))
        key = "customer_id" if table == "subscriptions" else "account_id"
        return dim in table_cols or (key in table_cols and dim in account_cols)

    tables = [s.table for s in m.sources]
    return [d for d in tree.dimensions_for(node) if all(has(t, d) for t in tables)]


def segment_table(engine: Engine, node: Node, period: Period, baseline: Period, dimension: str) -> pd.DataFrame:
    """Per segment: current value, baseline value, change, and volume (ratio denominators), worst first."""
    m = metric(node.metric)
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
    out = out[out["current"].notna() | out["baseline"].notna()].reset_index(drop=True)  # no value on either side
    out["change"] = out["current"].astype("float64") - out["baseline"].astype("float64")
    adverse = -out["change"] if node.better == "higher" else out["change"]
    out["adverse"] = adverse.fillna(0.0)
    return out.sort_values("adverse", ascending=False, kind="stable").reset_index(drop=True)
