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


# --- issue 8: unit economics, support, usage and health against pandas ---------------------------

MORE_PERIODS = ["2026-10", "2026-09", "2026-Q3"]


@pytest.fixture(scope="module")
def more(demo):
    engine, deals, subs = demo
    with engine.workspace.connect() as con:
        tables = {t: con.execute(f"SELECT * FROM {t}").df() for t in ("spend", "tickets", "nps", "events", "activities")}
    return engine, deals, subs, reference.prepare_more(tables)


def _value(engine, name, period, filters=()):
    return engine.query(name, [period], filters=filters)["value"].iloc[0]


@pytest.mark.parametrize("period", MORE_PERIODS)
def test_unit_economics_agree(more, period):
    engine, deals, subs, t = more
    p = parse_period(period)
    want = reference.unit_economics(deals, subs, t["spend"], p.start, p.end, p.previous().start)
    for name in ("ltv", "cac", "ltv_cac", "cac_payback_months", "magic_number", "roas", "renewal_arr"):
        assert _value(engine, name, p) == pytest.approx(want[name], rel=1e-9), name


@pytest.mark.parametrize("channel", ["Paid Search", "Partner"])
def test_per_channel_economics_take_spend_of_the_channel_too(more, channel):
    engine, deals, subs, t = more
    p = parse_period("2026-10")
    want = reference.unit_economics(deals, subs, t["spend"], p.start, p.end, p.previous().start, channel=channel)
    f = (("channel", (channel,)),)
    for name in ("roas", "cac", "ltv", "ltv_cac", "magic_number"):
        assert _value(engine, name, p, f) == pytest.approx(want[name], rel=1e-9), name
    split = engine.query("roas", [p], dimension="channel").set_index("segment")["value"]
    assert split[channel] == pytest.approx(want["roas"], rel=1e-9)


@pytest.mark.parametrize("period", ["2026-10", "2026-W41"])
def test_support_and_activity_agree(more, period):
    engine, _, _, t = more
    p = parse_period(period)
    want = reference.support_metrics(t["tickets"], t["nps"], p.start, p.end)
    for name, expected in want.items():
        assert _value(engine, name, p) == pytest.approx(expected, rel=1e-9), name
    assert _value(engine, "health_checks_per_csm_week", p) == pytest.approx(
        reference.checks_per_csm_week(t["activities"], p.start, p.end), rel=1e-9)


@pytest.mark.parametrize("period", ["2026-10", "2026-W41"])
def test_product_usage_agrees(more, period):
    engine, _, subs, t = more
    p = parse_period(period)
    ev = t["events"]
    for name, expected in reference.active_users(ev, p.start, p.end).items():
        assert _value(engine, name, p) == pytest.approx(expected, rel=1e-9), name
    assert _value(engine, "feature_adoption", p) == pytest.approx(reference.feature_adoption(ev, p.start, p.end))
    got = _value(engine, "feature_adoption", p, (("feature", ("reports",)),))
    assert got == pytest.approx(reference.feature_adoption(ev, p.start, p.end, "reports"))
    assert _value(engine, "time_in_product_minutes", p) == pytest.approx(reference.time_in_product(ev, p.start, p.end))
    steps = ["dashboards", "reports", "sharing"]
    got = _value(engine, "journey_completion", p, (("feature", tuple(steps)),))
    assert got == pytest.approx(reference.journey_completion(ev, steps, p.start, p.end))
    assert _value(engine, "time_to_first_value_days", p) == pytest.approx(
        reference.time_to_first_value(subs, ev, p.start, p.end))


def test_health_agrees(more):
    engine, _, subs, t = more
    p = parse_period("2026-10")
    frame = reference.health(subs, t["events"], t["tickets"], t["nps"], p.end)
    for name, expected in reference.health_metrics(frame).items():
        assert _value(engine, name, p) == pytest.approx(expected, rel=1e-9), name


def test_ps_utilization_agrees_on_the_demo_timesheets(tmp_path):
    from kpitree.demo import generate
    from kpitree.ingest import load_frames

    sheets = generate(scale=0.2, tables=["timesheets"]).tables["timesheets"]
    ws = Workspace(tmp_path / "ps", create=True)
    load_frames(ws, {"timesheets": sheets})
    engine = Engine(ws)
    frame = reference.prepare_more({"timesheets": sheets})["timesheets"]
    for period in ("2026-10", "2025-12"):
        p = parse_period(period)
        assert _value(engine, "ps_utilization", p) == pytest.approx(reference.ps_utilization(frame, p.start, p.end))
