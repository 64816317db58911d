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
