"""Usage views on tiny tables worked out by hand: activity dots, cohort retention, their charts."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import make_workspace
from test_catalogue import EVENTS
from test_metrics import SUBSCRIPTIONS

from kpitree.charts_usage import BLUES, activity_dots_chart, cohort_chart
from kpitree.errors import QueryError
from kpitree.evaluate import Engine
from kpitree.periods import parse_period
from kpitree.usage import activity_heatmap, cohort_retention, features, panel_charts

ACCOUNTS = """
account_id,name,segment,industry,csm,created_date
C1,Acme,SMB,Retail,Gina,2026-01-01
C2,Beta,SMB,Retail,Gina,2026-03-01
C3,Cobalt,SMB,Media,Hal,2026-02-01
C4,Delta,Enterprise,Energy,Hal,2026-05-01
C5,Echo,SMB,Media,Gina,2026-10-05
C6,Fox,SMB,Retail,Gina,2026-01-01
C7,Gulf,SMB,Retail,Hal,2026-11-01
C8,Hill,SMB,Media,Hal,2026-09-30
"""
OCT = parse_period("2026-10")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("usage"), subscriptions=SUBSCRIPTIONS, events=EVENTS, accounts=ACCOUNTS)
    s = ws.settings()
    s.as_of = "2026-11-20"
    ws.save_settings(s)
    return Engine(ws)


def test_activity_dots_by_mrr(engine):
    # Weeks of Oct 5, 12, 19, 26. Top MRR at Oct 31: C4 120, C1 100, C3 80.
    frame = activity_heatmap(engine, date(2026, 10, 31), weeks=4, limit=3)
    assert list(dict.fromkeys(frame["account"])) == ["Delta", "Acme", "Cobalt"]
    assert len(frame) == 3 * 4  # every dot, zeros included
    cell = frame.set_index(["account_id", "week"])
    # C4: u4 on Oct 29 (twice) and Oct 30 → 3 events, 1 user, 2 active days in the week of Oct 26.
    assert tuple(cell.loc[("C4", date(2026, 10, 26)), ["events", "users", "active_days"]]) == (3, 1, 2)
    assert tuple(cell.loc[("C3", date(2026, 10, 5)), ["events", "users", "active_days"]]) == (2, 1, 1)
    assert cell.loc[("C1", date(2026, 10, 12)), "events"] == 0
    assert cell.loc[("C4", date(2026, 10, 26)), "mrr"] == 120


def test_activity_dots_declining_first_and_by_segment(engine):
    # Active days in weeks Oct 5–12 vs Oct 19–26: C5 1 → 0 (falls most), then ties at 0 by MRR: C3.
    frame = activity_heatmap(engine, OCT, weeks=4, limit=2, order="decline")
    assert list(dict.fromkeys(frame["account_id"])) == ["C5", "C3"]
    enterprise = activity_heatmap(engine, OCT, weeks=4, where={"segment": "Enterprise"})
    assert set(enterprise["account_id"]) == {"C4"}
    with pytest.raises(QueryError, match="order must be"):
        activity_heatmap(engine, OCT, order="loudest")
    with pytest.raises(QueryError, match="cannot restrict accounts on 'plan'"):
        activity_heatmap(engine, OCT, where={"plan": "Pro"})


def test_cohort_retention_by_hand(engine):
    frame = cohort_retention(engine, OCT, cohorts=10)
    # Cohorts by first paying day: Jan C1, C6; Feb C3; Mar C2; May C4; Oct C5, C8 (C7 starts in Nov).
    sizes = frame.groupby("cohort")["size"].first().to_dict()
    assert sizes == {"2026-01": 2, "2026-02": 1, "2026-03": 1, "2026-05": 1, "2026-10": 2}
    jan = frame[frame["cohort"] == "2026-01"].set_index("age")
    # C6 pays Jan–May, stops (Jun 1), comes back Oct 20.
    assert list(jan["active"]) == [2, 2, 2, 2, 2, 1, 1, 1, 1, 2]
    assert jan.loc[5, "rate"] == 0.5 and jan.loc[9, "rate"] == 1.0
    mar = frame[frame["cohort"] == "2026-03"].set_index("age")  # C2 churns Oct 15
    assert list(mar["rate"]) == [1, 1, 1, 1, 1, 1, 1, 0]
    revenue = cohort_retention(engine, OCT, cohorts=10, basis="revenue").set_index(["cohort", "age"])
    assert revenue.loc[("2026-01", 9), "rate"] == pytest.approx((100 + 60) / (100 + 40))
    assert revenue.loc[("2026-02", 8), "rate"] == pytest.approx(80 / 50)  # C3 50 → 80 on Oct 1
    smb = cohort_retention(engine, OCT, cohorts=10, where={"segment": "Enterprise"})
    assert set(smb["cohort"]) == {"2026-05"}
    with pytest.raises(QueryError, match="basis must be"):
        cohort_retention(engine, OCT, basis="seats")


def test_features_and_panel_charts(engine):
    assert features(engine)[:2] == ["reports", "dashboards"]  # 5 and 4 events
    assert panel_charts("feature_adoption") == ("activity",)
    assert panel_charts("nrr") == ("cohort",)
    assert panel_charts("at_risk_accounts") == ("activity", "cohort")
    assert panel_charts("arr") == ()


def test_a_workspace_without_events_says_so(tmp_path):
    engine = Engine(make_workspace(tmp_path, subscriptions=SUBSCRIPTIONS))
    with pytest.raises(QueryError, match="needs events — load"):
        activity_heatmap(engine, OCT)


def test_charts_are_valid_vega_lite_in_the_non_status_colours(engine):
    dots = activity_dots_chart(activity_heatmap(engine, OCT, weeks=4, limit=3)).to_dict()  # validates
    assert dots["mark"]["type"] == "circle"
    assert dots["encoding"]["y"]["sort"] == ["Delta (Enterprise)", "Acme (SMB)", "Cobalt (SMB)"]
    assert dots["encoding"]["color"]["scale"]["range"] == BLUES
    cohorts = cohort_chart(cohort_retention(engine, OCT, cohorts=10), basis="revenue").to_dict()
    assert [layer["mark"]["type"] for layer in cohorts["layer"]] == ["rect", "text"]
    assert "MRR kept" in cohorts["title"]
    with pytest.raises(ValueError, match="measure must be"):
        activity_dots_chart(activity_heatmap(engine, OCT, weeks=4), measure="revenue")
