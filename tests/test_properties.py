"""Identities that must hold on any data: the MRR bridge, NRR ≥ GRR, segment splits add up."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpitree.metrics import MetricQuery, compute
from kpitree.periods import parse_period

BASE = date(2026, 1, 1)
PERIODS = (parse_period("2026-03"), parse_period("2026-04"), parse_period("2026-Q2"))

subscription = st.tuples(
    st.sampled_from(["C1", "C2", "C3", "C4", "C5"]),
    st.integers(0, 180),  # start offset in days
    st.one_of(st.none(), st.integers(0, 120)),  # length in days, None = active
    st.sampled_from([0.0, 10.0, 25.5, 100.0, 333.33]),
    st.sampled_from(["SMB", "Mid-Market", "Enterprise"]),
)


def _connection(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    frame = pd.DataFrame(
        [
            {
                "customer_id": c,
                "start_date": BASE + timedelta(days=s),
                "end_date": None if n is None else BASE + timedelta(days=s + n),
                "mrr": m,
                "plan": "p",
                "segment": seg,
                "channel": "x",
            }
            for c, s, n, m, seg in rows
        ]
    )
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute(
        "CREATE TABLE subscriptions AS SELECT customer_id, CAST(start_date AS DATE) AS start_date, "
        "CAST(end_date AS DATE) AS end_date, CAST(mrr AS DOUBLE) AS mrr, plan, segment, channel FROM frame"
    )
    return con


def _values(con, name: str, dimension: str | None = None) -> pd.DataFrame:
    return compute(con, MetricQuery(name, PERIODS, date(2026, 12, 31), dimension))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(subscription, min_size=1, max_size=14))
def test_mrr_bridge_identity(rows):
    con = _connection(rows)
    v = {n: _values(con, n).set_index("pkey")["value"] for n in
         ("mrr", "mrr_start", "mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churn")}
    for p in PERIODS:
        k = p.key
        bridge = (v["mrr_start"][k] + v["mrr_new"][k] + v["mrr_reactivation"][k] + v["mrr_expansion"][k]
                  - v["mrr_contraction"][k] - v["mrr_churn"][k])
        assert bridge == pytest.approx(v["mrr"][k], abs=1e-6)
        # m0 of P is the MRR at the end of the period before.
        assert v["mrr_start"][k] == pytest.approx(_values(con, "mrr").set_index("pkey")["value"].get(
            p.previous().key, v["mrr_start"][k]), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(subscription, min_size=1, max_size=14))
def test_nrr_at_least_grr_and_rates_in_range(rows):
    con = _connection(rows)
    nrr = _values(con, "nrr").set_index("pkey")["value"]
    grr = _values(con, "grr").set_index("pkey")["value"]
    churn = _values(con, "logo_churn_rate").set_index("pkey")["value"]
    exp = _values(con, "expansion_rate").set_index("pkey")["value"]
    for k in nrr.index:
        if pd.isna(nrr[k]):
            assert pd.isna(grr[k])
            continue
        assert nrr[k] >= grr[k] - 1e-12
        assert 0 <= grr[k] <= 1 + 1e-12 and 0 <= churn[k] <= 1
        assert nrr[k] == pytest.approx(grr[k] + exp[k])


@settings(max_examples=25, deadline=None)
@given(st.lists(subscription, min_size=1, max_size=14))
def test_segment_split_sums_to_total(rows):
    con = _connection(rows)
    for name in ("mrr", "mrr_churn", "mrr_new", "active_customers"):
        total = _values(con, name).set_index("pkey")["value"]
        split = _values(con, name, "segment").groupby("pkey")["value"].sum()
        for k in total.index:
            assert split.get(k, 0.0) == pytest.approx(total[k], abs=1e-6)


# --- explain: the named parts and the unexplained remainder are the gap ----------------------------

deal_row = st.tuples(
    st.integers(3, 10),  # month
    st.sampled_from(["Ann", "Bob", "Cy", "Di"]),
    st.sampled_from(["SMB", "Enterprise"]),
    st.sampled_from(["Organic", "Paid", "Partner"]),
    st.sampled_from(["won", "won", "lost"]),
    st.floats(100, 50_000),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(deal_row, min_size=20, max_size=160), st.floats(0.5, 1.5))
def test_explained_parts_and_remainder_add_up_to_the_gap(rows, plan):
    """Any deals, any target: along every dimension (and pair) the segments' parts plus the part no
    segment owns are the gap; a named cause set's first element's part is exactly its own gap as
    the segment tables have it (the elements' parts are disjoint pieces of the leaves' gaps)."""
    import tempfile
    from pathlib import Path

    from kpitree.evaluate import Engine
    from kpitree.explain import explain_node
    from kpitree.ingest import load_frames
    from kpitree.tree import parse_yaml
    from kpitree.workspace import Workspace

    frame = pd.DataFrame([{
        "deal_id": f"D{i}", "account_id": f"A{i}", "owner": owner, "created_date": f"2026-{m:02d}-01",
        "close_date": f"2026-{m:02d}-{10 + i % 15}", "stage": status, "status": status, "amount": round(amount, 2),
        "deal_type": "new", "segment": segment, "channel": channel}
        for i, (m, owner, segment, channel, status, amount) in enumerate(rows)])
    october = frame[(frame["close_date"].str.startswith("2026-10")) & (frame["status"] == "won")]["amount"].sum()
    target = round(max(october, 1000.0) * plan, 2)
    months = ", ".join(f"2026-{m:02d}: {target}" for m in range(3, 11))
    tree, problems = parse_yaml(f"""
name: p
grain: month
dimensions: [owner, segment, channel]
nodes:
  - {{id: nb, label: NB, level: north_star, metric: new_business_arr, owner: X, target: {{by_period: {{{months}}}}},
     formula: nb = closed * win_rate * asp, children: [closed, win_rate, asp]}}
  - {{id: closed, label: Closed, level: lever, metric: closed_deals, owner: X, target: 10}}
  - {{id: win_rate, label: Win rate, level: lever, metric: win_rate, owner: X, target: 0.5}}
  - {{id: asp, label: Deal size, level: lever, metric: avg_deal_size, owner: X, target: 5000}}
""", "p.yaml")
    assert tree is not None, problems
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws", create=True)
        load_frames(ws, {"deals": frame})
        s = ws.settings()
        s.as_of = "2026-11-20"
        ws.save_settings(s)
        engine = Engine(ws)
        for node in ("nb", "win_rate"):
            r = explain_node(engine, tree, node, "2026-10", causes=False)
            if r.gap is None:
                continue
            scale = max(abs(r.gap), abs(r.value or 0.0), 1.0)
            for d in r.dimensions:
                assert sum(p.contribution for p in d.segments) == pytest.approx(r.gap, abs=1e-9 * scale), d.dimension
            for step in r.red_path:
                top = step.top_segment
                if top is None or not top.members:
                    continue
                first = top.members[0]
                rank = next((d for d in r.dimensions if d.dimension == first.dimension), None)
                if rank is not None and step.id == r.node:
                    table = next(p for p in rank.segments if p.segment == first.segment)
                    assert first.contribution == pytest.approx(table.contribution, abs=1e-9 * scale)
