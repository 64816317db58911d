"""The engine agrees with an independent pandas calculation on the demo data, to the cent."""

from __future__ import annotations

import pandas as pd
import pytest
import reference

from kpitree.evaluate import Engine
from kpitree.periods import parse_period
from kpitree.workspace import Workspace

PERIODS = ["2026-10", "2026-09", "2025-12", "2026-Q3", "2026-W41"]
DEAL_METRICS = ["new_business_arr", "expansion_arr", "new_arr", "won_deals", "closed_deals", "win_rate",
                "avg_deal_size", "sales_cycle_days", "opportunities_created", "open_pipeline", "open_deals",
                "pipeline_velocity"]
REVENUE_METRICS = ["mrr", "arr", "mrr_start", "mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction",
                   "mrr_churn", "active_customers", "nrr", "grr", "expansion_rate", "logo_churn_rate", "arpa"]


@pytest.fixture(scope="module")
def demo(demo_data_dir):
    ws = Workspace(demo_data_dir / "demo")
    with ws.connect() as con:
        deals = con.execute("SELECT * FROM deals").df()
        subs = con.execute("SELECT * FROM subscriptions").df()
    deals, subs = reference.prepare(deals, subs)
    return Engine(ws), deals, subs


def _close(got: float, want: float, name: str) -> None:
    if pd.isna(want):
        assert pd.isna(got), name
    elif name.endswith("arr") or name.startswith("mrr") or name in ("open_pipeline", "avg_deal_size", "arpa"):
        assert abs(got - want) < 0.005, f"{name}: {got} != {want}"
    else:
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("period", PERIODS)
def test_bookings_agree(demo, period):
    engine, deals, _ = demo
    p = parse_period(period)
    want = reference.deal_metrics(deals, p.start, p.end)
    for name in DEAL_METRICS:
        _close(engine.query(name, [p])["value"].iloc[0], want[name], name)
    filtered = reference.deal_metrics(deals, p.start, p.end, deal_type="new")
    got = engine.query("win_rate", [p], filters=(("deal_type", ("new",)),))["value"].iloc[0]
    _close(got, filtered["win_rate"], "win_rate")


@pytest.mark.parametrize("period", PERIODS)
def test_revenue_agrees(demo, period):
    engine, _, subs = demo
    p = parse_period(period)
    want = reference.revenue_metrics(subs, p.start, p.end)
    for name in REVENUE_METRICS:
        _close(engine.query(name, [p])["value"].iloc[0], want[name], name)
