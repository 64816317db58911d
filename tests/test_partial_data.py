"""A user's own data lacks tables, columns and periods: every number says what is missing, never a traceback.

One small demo data set is loaded once per session; a workspace holding only some of its tables is
a copy of that database with the other tables dropped (cached per subset), so hypothesis can try
many subsets cheaply. Every shipped template is evaluated and every node explained (children,
segments, red path, causes) on each.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpitree.cli import main as cli
from kpitree.demo import generate, write_demo
from kpitree.drill import drill_dimensions, segment_table
from kpitree.errors import KpiTreeError, QueryError
from kpitree.evaluate import NO_DATA, Engine, evaluate_tree
from kpitree.explain import NONE, explain_node
from kpitree.ingest import ingest
from kpitree.metrics import metric
from kpitree.tree import Tree, load_tree
from kpitree.workspace import Workspace

DEMO_TABLES = ("deals", "subscriptions", "leads", "activities", "spend", "quotas", "tickets", "events", "nps",
               "accounts")
TEMPLATES = (*sorted((ROOT / "data" / "trees").glob("*.yaml")), ROOT / "data" / "demo" / "tree.yaml")
EXPLICIT = (frozenset({"deals"}), frozenset({"subscriptions"}), frozenset({"leads"}), frozenset({"deals", "leads"}))


@pytest.fixture(scope="session")
def demo_csvs(tmp_path_factory) -> dict[str, Path]:
    """The demo's tables at a tenth of its size, as CSV files (one generation per session)."""
    out = tmp_path_factory.mktemp("demo_small")
    paths = write_demo(generate(seed=7, scale=0.1), out)
    return {p.name.split(".")[0]: p for p in paths if p.name != "scenario.json"}


@pytest.fixture(scope="session")
def subset_ws(tmp_path_factory, demo_csvs) -> Callable[[frozenset[str]], Workspace]:
    """`subset_ws({"deals"})` → a workspace holding only those demo tables (built once per subset)."""
    root = tmp_path_factory.mktemp("subsets")
    base = Workspace(root / "all", create=True)
    ingest(base, [demo_csvs[t] for t in DEMO_TABLES])
    made: dict[frozenset[str], Workspace] = {}

    def make(tables: frozenset[str]) -> Workspace:
        if tables not in made:
            ws = Workspace(root / ("_".join(sorted(tables)) or "empty"), create=True)
            shutil.copy(base.db_path, ws.db_path)
            con = duckdb.connect(str(ws.db_path))
            for t in DEMO_TABLES:
                if t not in tables:
                    con.execute(f'DROP TABLE "{t}"')
            con.close()
            made[tables] = ws
        return made[tables]

    return make


@pytest.fixture(scope="session")
def templates() -> list[Tree]:
    return [load_tree(p) for p in TEMPLATES]


def _check_workspace(ws: Workspace, templates: list[Tree]) -> None:
    """Every template evaluates and every node explains; a number without data says what to load."""
    engine = Engine(ws)
    for tree in templates:
        evaluation = evaluate_tree(engine, tree)
        for res in evaluation.nodes:
            node = tree.node(res.id)
            lacking = engine.missing(node)
            if lacking is not None:
                assert res.status == NO_DATA and res.value is None, (tree.name, res.id)
                needs = res.reason.split(" — ")[0]
                assert needs.startswith("needs ") and all(t in needs for t in lacking.tables), (res.id, res.reason)
                assert " — load " in res.reason or "map the column" in res.reason, res.reason
            result = explain_node(engine, tree, res.id, evaluation.period)
            json.dumps(result.to_dict())  # the command line's --format json
            assert result.text()
            said = " ".join([*result.sentences(), *(c.sentence for c in result.causes)])
            assert NONE not in said, said  # a column empty in every row is never named as a cause
            if res.value is None:
                assert result.reason == res.reason
                assert result.red_path[0].sentence.startswith(f"{res.label} has no data in {evaluation.period.key}")
            for step in result.red_path[1:]:  # past nodes without data, only numbers that have it are followed
                assert step.link == "over" or step.value is not None, (res.id, step)
            assert all(c.value is not None for c in result.causes), res.id
            for dim in drill_dimensions(engine, tree, node)[:1]:
                segment_table(engine, node, evaluation.period, evaluation.period.previous(), dim)


@pytest.mark.parametrize("tables", EXPLICIT, ids=lambda t: "+".join(sorted(t)))
def test_every_template_on_a_partial_workspace(subset_ws, templates, tables):
    _check_workspace(subset_ws(tables), templates)


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(tables=st.frozensets(st.sampled_from(DEMO_TABLES), min_size=1, max_size=len(DEMO_TABLES) - 1))
def test_every_template_on_any_subset_of_tables(subset_ws, templates, tables):
    _check_workspace(subset_ws(tables), templates)


def test_an_empty_workspace_says_to_load_data(subset_ws, templates):
    ws = subset_ws(frozenset())
    with pytest.raises(KpiTreeError, match="no data yet: load your files"):
        evaluate_tree(ws, templates[0])
    with pytest.raises(KpiTreeError, match="no data yet"):
        explain_node(ws, templates[0], templates[0].root.id)


def test_deals_only_red_path_steps_over_arr_to_the_levers(subset_ws):
    """ARR needs subscriptions; the path steps over New-logo ARR (no data either) to the bookings under it,
    New business ARR, judged on its own, and down to its lever."""
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    result = explain_node(subset_ws(frozenset({"deals"})), tree, "arr")
    assert result.value is None and result.gap is None
    assert result.reason == "needs subscriptions — load your billing export (Stripe or a subscriptions CSV)"
    path = [s.id for s in result.red_path]
    assert path[:3] == ["arr", "arr_new", "new_business_arr"] and len(path) >= 4
    assert result.red_path[1].link == "over" and "New-logo ARR has no data either" in result.red_path[1].sentence
    assert result.red_path[2].link == "own" and "judged on its own, as New-logo ARR has no data" in \
        result.red_path[2].sentence
    # reached past ARR, not listed as "red below ARR, which is without data"
    assert result.causes and not any("without data" in c.aside for c in result.causes)


def test_usage_views_say_what_to_load(subset_ws):
    from kpitree.usage import activity_heatmap, cohort_retention

    engine = Engine(subset_ws(frozenset({"deals"})))
    period = evaluate_tree(engine, load_tree(TEMPLATES[0])).period
    with pytest.raises(QueryError, match="needs events — load your product analytics events"):
        activity_heatmap(engine, period)
    with pytest.raises(QueryError, match="needs subscriptions — load your billing export"):
        cohort_retention(engine, period)


# --- a deals file without amounts -------------------------------------------------------------


@pytest.fixture(scope="module")
def amountless(tmp_path_factory, demo_csvs) -> tuple[Engine, Engine]:
    """The demo's deals loaded twice: as they are, and from a file with no amount columns."""
    import pandas as pd

    root = tmp_path_factory.mktemp("amountless")
    full = Workspace(root / "full", create=True)
    ingest(full, [demo_csvs["deals"]])
    frame = pd.read_csv(demo_csvs["deals"]).drop(columns=["amount", "services_amount"])
    path = root / "deals.csv"
    frame.to_csv(path, index=False)
    bare = Workspace(root / "bare", create=True)
    ingest(bare, [path])
    return Engine(full), Engine(bare)


AMOUNTS = ("new_arr", "new_business_arr", "expansion_arr", "avg_deal_size", "open_pipeline", "pipeline_velocity")
COUNTS = ("win_rate", "won_deals", "closed_deals", "opportunities_created", "sales_cycle_days", "open_deals")


def test_without_amounts_amount_metrics_have_no_data_and_counts_work(amountless):
    full, bare = amountless
    period = evaluate_tree(full, load_tree(TEMPLATES[0])).period
    for name in AMOUNTS:
        lacking = bare.missing(name)
        assert lacking is not None and lacking.columns == (("deals", "amount"),), name
        assert "needs the amount of deals, empty in every row" in lacking.reason()
        with pytest.raises(QueryError, match="amount of deals"):  # never $0
            bare.query(name, [period])
    for name in COUNTS:
        assert bare.missing(name) is None, name
        a, b = (e.query(name, [period])["value"].iloc[0] for e in (full, bare))
        assert a == pytest.approx(b), name


def test_without_amounts_the_tree_says_so_and_explains_through_the_rates(amountless):
    _, bare = amountless
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    evaluation = evaluate_tree(bare, tree)
    for node_id in ("new_business_arr", "avg_deal_size", "pipeline_velocity"):
        res = evaluation.node(node_id)
        assert res.status == NO_DATA and "amount of deals" in res.reason, node_id
    assert evaluation.node("win_rate").value is not None
    assert evaluation.node("closed_new_deals").value is not None
    result = explain_node(bare, tree, "new_business_arr", evaluation.period)
    assert result.red_path[-1].value is not None  # the path reaches a rate or a count that has data


# --- columns and periods a workspace lacks ---------------------------------------------------

DEALS = """\
deal_id,owner,segment,created_date,close_date,status,amount,deal_type
D1,,SMB,2026-01-05,,open,1000,new
D2,,SMB,2026-01-07,,open,2000,new
D3,Ann,,2026-01-09,2026-04-10,won,1500,new
D4,,SMB,2026-01-09,2026-04-12,lost,1500,new
D5,,Mid,2026-02-01,2026-04-20,won,3000,new
D6,,SMB,2026-02-03,2026-05-02,won,900,new
D7,,SMB,2026-03-04,2026-05-09,lost,800,new
"""


def test_periods_with_open_deals_but_no_closes_explain(load_ws):
    """Reference months with open deals and nothing closed once made explain fail with KeyError 'won_amount'."""
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    ws = load_ws(deals=DEALS)
    for period in ("2026-02", "2026-04", "2026-05"):
        for node in ("pipeline_velocity", "arr", "arr_new", "new_business_arr"):
            result = explain_node(ws, tree, node, period)
            json.dumps(result.to_dict())


def test_an_empty_or_mostly_empty_dimension_is_never_named(load_ws):
    engine = Engine(load_ws(deals=DEALS.replace(",Ann,", ",,")))  # no owner at all
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    node = tree.node("win_rate")
    assert "owner" not in drill_dimensions(engine, tree, node)  # empty in every row: not offered
    assert "channel" not in drill_dimensions(engine, tree, node)  # never filled in either
    result = explain_node(engine, tree, "win_rate", "2026-04")
    assert {d.dimension for d in result.dimensions} <= {"segment"}
    with pytest.raises(QueryError, match="cannot be split by owner"):
        segment_table(engine, node, result_period(result), result_period(result).previous(), "owner")


def result_period(result):
    from kpitree.periods import parse_period

    return parse_period(result.period)


def test_a_filter_on_a_column_no_table_has_is_no_data_with_a_reason(load_ws):
    from dataclasses import replace

    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    node = replace(tree.node("win_rate"), filter=(("plan", ("Pro",)),))
    engine = Engine(load_ws(deals=DEALS))
    lacking = engine.missing(node)
    assert lacking is not None and "cannot filter 'win_rate' on 'plan'" in lacking.reason()
    assert metric("win_rate").tables == ("deals",)


def test_a_period_outside_the_data_says_which_days_it_covers(load_ws):
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    evaluation = evaluate_tree(load_ws(deals=DEALS), tree, "2025-06")
    res = evaluation.node("win_rate")
    assert res.value is None and res.reason.startswith("the data covers deals from 2026-01-05 to ")


# --- the command line ------------------------------------------------------------------------


def test_cli_evaluate_and_explain_on_a_deals_only_workspace(subset_ws, capsys):
    ws = subset_ws(frozenset({"deals"}))
    tree = str(ROOT / "data" / "trees" / "revops.yaml")
    assert cli(["evaluate", "--workspace", str(ws.root), "--tree", tree]) == 0
    out = capsys.readouterr().out
    assert "needs subscriptions — load your billing export (Stripe or a subscriptions CSV)" in out
    assert cli(["explain", "--workspace", str(ws.root), "--tree", tree, "--node", "arr"]) == 0
    captured = capsys.readouterr()
    assert "ARR has no data in" in captured.out and "error" not in captured.err
    assert cli(["explain", "--workspace", str(ws.root), "--tree", tree, "--node", "arr", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reason"].startswith("needs subscriptions") and [s["id"] for s in data["red_path"][1:3]] == ["arr_new", "new_business_arr"]
    assert cli(["explain", "--workspace", str(ws.root), "--tree", tree, "--node", "ghost"]) == 2
    assert "no node 'ghost' in tree" in capsys.readouterr().err


# --- rows a definition picks that the data never has ------------------------------------------

WON_ONLY = """\
deal_id,owner,segment,created_date,close_date,status,amount,deal_type
D1,Ann,SMB,2026-01-05,2026-02-10,won,1000,new
D2,Bob,SMB,2026-01-07,2026-03-12,won,2000,new
D3,Ann,Mid,2026-02-09,2026-04-10,won,1500,new
"""


def test_no_expansion_deal_is_no_data_on_the_panels_as_in_the_suggestion(load_ws):
    """Expansion ARR of a CRM that never tags a deal as expansion is "no data" with the reason the
    suggested tree leaves it out for — the same words — and never $0; New business ARR keeps its value."""
    from kpitree.suggest import suggest_tree

    ws = load_ws(deals=DEALS)  # every deal is new business: no expansion deal at all
    engine = Engine(ws)
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    evaluation = evaluate_tree(engine, tree, "2026-04")
    res = evaluation.node("expansion_arr")
    assert res.status == NO_DATA and res.value is None
    assert res.reason.startswith("needs deals with deal_type = expansion — none of your deals has it "
                                 "(their deal_type: new); map the column of your deals file that holds deal_type")
    assert evaluation.node("new_business_arr").value == pytest.approx(1500 + 3000)  # the new deals won in April
    result = explain_node(engine, tree, "expansion_arr", "2026-04")
    assert result.reason == res.reason and result.value is None
    _, notes = suggest_tree(engine)
    left = {n.node: n.text for n in notes if n.kind == "left_out"}
    assert left["expansion_arr"] == f"Expansion ARR: left out — {res.reason}"


def test_won_deals_only_have_no_win_rate(load_ws):
    engine = Engine(load_ws(deals=WON_ONLY))
    lacking = engine.missing("win_rate")  # 100 % whatever the team does: not a number to steer by
    assert lacking is not None and lacking.items == ("deals.status = lost",)
    assert "needs deals with status = lost — none of your deals has it (their status: won)" in lacking.reason()
    # the pipeline open at a period's start holds deals won later: it picks no status, and has data
    assert all(engine.missing(n) is None for n in ("won_deals", "new_business_arr", "open_pipeline"))


def test_a_filter_value_no_row_has_is_no_data_with_the_values_there_are(load_ws):
    from dataclasses import replace

    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    engine = Engine(load_ws(deals=DEALS))
    enterprise = replace(tree.node("win_rate"), filter=(("segment", ("Enterprise",)),))
    lacking = engine.missing(enterprise)
    assert lacking is not None and not lacking.tables and not lacking.columns
    assert lacking.reason().startswith("needs deals with segment = Enterprise — none of your deals has it "
                                       "(their segment: Mid, SMB)")
    assert engine.missing(replace(enterprise, filter=(("segment", ("Enterprise", "SMB")),))) is None
