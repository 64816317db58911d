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
    """The node's drill dimensions that its metric's table (or the accounts table) really has."""
    m = metric(node.metric)
    cols = dict(engine.columns)
    table_cols = set(cols.get(m.table, TABLES[m.table].column_names))
    key = "customer_id" if m.table == "subscriptions" else "account_id"
    account_cols = set(cols.get("accounts", ())) if key in table_cols else set()
    return [d for d in tree.dimensions_for(node) if d in table_cols or d in account_cols]


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
    out["change"] = out["current"].astype("float64") - out["baseline"].astype("float64")
    adverse = -out["change"] if node.better == "higher" else out["change"]
    out["adverse"] = adverse.fillna(0.0)
    return out.sort_values("adverse", ascending=False, kind="stable").reset_index(drop=True)
