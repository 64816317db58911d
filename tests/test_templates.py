"""The shipped template trees: each validates and evaluates on the demo with every node on data."""

from __future__ import annotations

import pytest
from conftest import ROOT

from kpitree.evaluate import Engine, evaluate_tree
from kpitree.metrics import BENCHMARKS
from kpitree.tree import load_tree, validate_file
from kpitree.workspace import Workspace

TEMPLATES = ["seed003_revenue", "seed001_north_star", "team_executive", "team_sales", "team_customer_success",
             "team_product"]


@pytest.fixture(scope="module")
def engine(demo_data_dir) -> Engine:
    return Engine(Workspace(demo_data_dir / "demo"))


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_validates_and_evaluates_on_the_demo(engine, name):
    path = ROOT / "data" / "trees" / f"{name}.yaml"
    assert validate_file(path) == []  # no errors, no warnings
    tree = load_tree(path)
    for period in ("2026-10", "2026-11"):  # the latest complete month and the running one
        result = evaluate_tree(engine, tree, period)
        idle = [(n.id, n.status) for n in result.nodes if n.status in ("no_data", "no_target")]
        assert idle == [], f"{name} {period}: {idle}"


def test_seed_003_has_its_four_levels_and_seed_002_views_their_metrics():
    levels = {n.level for n in load_tree(ROOT / "data" / "trees" / "seed003_revenue.yaml").nodes}
    assert levels == {1, 2, 3, 4}
    metrics = {name: {n.metric for n in load_tree(ROOT / "data" / "trees" / f"{name}.yaml").nodes} for name in TEMPLATES}
    assert {"arr", "nrr", "ltv_cac"} <= metrics["team_executive"]
    assert {"open_pipeline", "win_rate", "lead_to_opp_rate", "avg_deal_size"} <= metrics["team_sales"]
    assert {"health_score", "feature_adoption", "first_response_hours", "mttr_hours", "tickets_opened",
            "time_to_first_value_days", "nps"} <= metrics["team_customer_success"]
    assert {"mau", "dau", "dau_mau", "feature_adoption", "time_in_product_minutes",
            "journey_completion"} <= metrics["team_product"]
    assert {"magic_number", "roas", "win_rate", "cac"} <= metrics["seed001_north_star"]
    assert {"upsell_eligible_accounts", "at_risk_accounts", "renewals_due", "renewal_arr",
            "touches_per_rep_week", "health_checks_per_csm_week"} <= metrics["seed003_revenue"]


def test_seed_benchmarks_are_the_long_term_goals():
    ltv_cac = load_tree(ROOT / "data" / "trees" / "team_executive.yaml").node("ltv_cac")
    assert ltv_cac.target.value == BENCHMARKS["ltv_cac"].day90 == 3.0
    response = load_tree(ROOT / "data" / "trees" / "team_customer_success.yaml").node("first_response")
    assert (response.target.day90, response.target.month12) == (48.0, 24.0)
    stickiness = load_tree(ROOT / "data" / "trees" / "team_product.yaml").node("stickiness")
    assert stickiness.target.month12 == 0.8


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_offered_split_reads_columns_every_source_has(engine, name):
    """The node panel offers drill.drill_dimensions; a split must exist on every table the metric reads."""
    from kpitree.drill import drill_dimensions
    from kpitree.metrics import metric

    cols = {t: set(c) for t, c in engine.columns}
    tree = load_tree(ROOT / "data" / "trees" / f"{name}.yaml")
    for node in tree.nodes:
        tables = {s.table for s in metric(node.metric).sources}
        for dim in drill_dimensions(engine, tree, node):
            for t in tables:
                key = "customer_id" if t == "subscriptions" else "account_id"
                assert dim in cols[t] or (key in cols[t] and dim in cols["accounts"]), (node.id, dim, t)
