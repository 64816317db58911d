"""The shipped template trees: each validates and evaluates on the demo with every node on data."""

from __future__ import annotations

import pytest
from conftest import ROOT

from kpitree.evaluate import Engine, evaluate_tree
from kpitree.metrics import BENCHMARKS
from kpitree.tree import load_tree, validate_file
from kpitree.workspace import Workspace

TEMPLATES = ["revops", "seed003_revenue", "seed001_north_star", "team_executive", "team_sales", "team_customer_success",
             "team_product"]
EXPORTS = ROOT / "tests" / "fixtures" / "exports"
# A user's own exports, one table each: what every template must survive (evaluated and explained, no error)
OWN_DATA = {"deals only (Pipedrive)": ["deals-8421437-7.csv"], "deals only (HubSpot)":
            ["hubspot-crm-exports-all-deals-2026-11-02.csv"], "subscriptions only (Stripe)": ["subscriptions.csv"],
            "subscriptions only (Stripe API)": ["stripe_subscriptions_api.csv"]}


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


@pytest.mark.parametrize("name", ["revops", "team_executive"])
def test_the_north_star_is_exact_over_subscriptions_and_bookings_lead_it(name):
    """Issue 15: ARR is a formula over its opening balance and the movements (all from subscriptions);
    the bookings (from deals) hang under New-logo ARR, the part they lead, by an influence link that says so."""
    from kpitree.metrics import CATALOGUE

    tree = load_tree(ROOT / "data" / "trees" / f"{name}.yaml")
    arr = tree.root
    assert arr.metric == "arr" and arr.formula and arr.formula.split("=")[1].strip().startswith("arr_start")
    exact = {tree.node(c).metric for c in arr.children if c in arr.formula}
    assert all(CATALOGUE[m].tables == ("subscriptions",) for m in exact), exact
    bookings = tree.node(tree.node("arr_new").children[0])
    assert bookings.metric in ("new_arr", "new_business_arr") and not tree.node("arr_new").formula  # influence
    assert "leading indicator of new-logo ARR" in bookings.description
    assert "leading indicator" in tree.node("arr_new").description and tree.node("arr_start").description


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> dict[str, Workspace]:
    from kpitree.ingest import ingest

    made = {}
    for label, files in OWN_DATA.items():
        ws = Workspace(tmp_path_factory.mktemp("own") / "ws", create=True)
        ingest(ws, [EXPORTS / f for f in files])
        made[label] = ws
    return made


@pytest.mark.parametrize("label", list(OWN_DATA))
def test_every_template_evaluates_and_explains_on_one_table_of_own_data(own_data, label):
    """A deals-only or subscriptions-only workspace: every template evaluates, every number without data says
    what to load, and the north star's explanation (red path included) is given without an error."""
    from kpitree.explain import explain_node
    from kpitree.suggest import suggest_tree

    engine = Engine(own_data[label])
    period = "2026-10"
    for name in TEMPLATES:
        tree = load_tree(ROOT / "data" / "trees" / f"{name}.yaml")
        result = evaluate_tree(engine, tree, period)
        for n in result.nodes:
            if n.status == "no_data" and engine.missing(tree.node(n.id)) is not None:
                assert n.reason.startswith("needs ") and " — " in n.reason, (name, n.id, n.reason)
        explained = explain_node(engine, tree, tree.root.id, period)
        assert explained.red_path and explained.red_path[0].id == tree.root.id
    # and the default template gives this workspace a tree of its own, on data it has
    tree, _ = suggest_tree(engine)
    if "deals" in label:
        assert tree.root.metric in ("new_arr", "new_business_arr", "won_deals"), tree.root.metric
    else:
        assert tree.root.metric == "arr"
    from kpitree.evaluate import default_period

    values = evaluate_tree(engine, tree, default_period(engine))  # its latest complete month
    assert values.nodes[0].value is not None and values.nodes[0].status != "no_data"
