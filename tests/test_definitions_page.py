"""The Definitions page through AppTest on the demo workspace."""

from __future__ import annotations

import pytest
from apptest_utils import unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest

PAGE = str(ROOT / "views" / "3_Definitions.py")


@pytest.fixture
def page(demo_data_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv("KPITREE_DATA_DIR", str(demo_data_dir))
    return AppTest.from_file(PAGE, default_timeout=60)


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def table_with(at: AppTest, column: str):
    """The first table on the page with that column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_opens_on_the_first_metric_with_a_worked_example(page):
    at = page.run()
    assert not at.exception
    assert "#### MRR" in texts(at)
    assert at.metric[0].label == "MRR · 2026-10"  # the latest complete month of the demo
    params = table_with(at, "this workspace")
    assert params.set_index("parameter").loc["gross_margin", "default"] == 0.8
    assert {"health_weight_usage", "health_weight_tickets", "health_weight_nps"} <= set(params["parameter"])


def test_ltv_cac_shows_formula_components_and_the_seed_benchmark(page):
    page.query_params["metric"] = "ltv_cac"
    at = page.run()
    assert not at.exception
    assert "#### LTV / CAC" in texts(at)
    assert at.code[0].value == "ltv / cac"
    assert any("at least 3 : 1" in i.value for i in at.info)
    components = table_with(at, "component")
    assert {"margin_mrr", "spend", "new_customers", "churned0", "base0"} <= set(components["component"])
    reads = table_with(at, "table").set_index("table")["columns"].to_dict()
    assert set(reads) == {"subscriptions", "spend", "deals"}
    assert at.metric[0].value.endswith("×")


def test_switching_metric_and_journey_steps(page):
    at = page.run()
    at.selectbox(key="def_group").set_value("Product usage").run()
    at.selectbox(key="def_metric").set_value("journey_completion").run()
    assert not at.exception
    steps = at.multiselect(key="features_journey_completion")
    assert len(steps.value) == 3
    assert at.metric[0].value.endswith("%")
    steps.set_value([]).run()  # no steps: the page says what the metric needs
    assert not at.exception
    assert any("needs its steps" in w.value for w in at.warning)
    assert at.query_params["metric"] in ("journey_completion", ["journey_completion"])


AMOUNTLESS = """\
deal_id,account_id,owner,created_date,close_date,status,deal_type,segment
D1,A1,Ann,2026-01-05,2026-02-10,won,new,SMB
D2,A2,Bob,2026-01-07,2026-02-12,lost,new,SMB
D3,A3,Ann,2026-02-09,2026-03-10,won,new,Mid
D4,A4,Bob,2026-03-09,2026-04-12,lost,new,SMB
D5,A5,Ann,2026-04-01,2026-05-20,won,new,Mid
D6,A6,Bob,2026-05-03,,open,new,SMB
"""


@pytest.mark.parametrize("name", ["new_business_arr", "expansion_arr", "win_rate"])
def test_a_deals_file_without_amounts_says_why_in_words(tmp_path, monkeypatch, name):
    """The worked example gives the reason a tree node gives (what is missing and what to load), not
    a list of table.column names."""
    from conftest import make_workspace

    from kpitree.evaluate import Engine

    ws = make_workspace(tmp_path, deals=AMOUNTLESS)
    lacking = Engine(ws).missing(name)
    monkeypatch.setenv("KPITREE_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["ws"] = ws.name
    at.query_params["metric"] = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="def_metric").value == name
    warnings = unescaped(" ".join(w.value for w in at.warning))
    if lacking is None:  # a count or a rate: computed without amounts
        assert name == "win_rate" and not warnings and at.metric[0].label.startswith("Win rate")
        return
    assert f"{lacking.reason()}." in warnings and "has no value on this workspace" in warnings
    assert "needs the amount of deals, empty in every row — map the column of your deals file" in warnings
    assert "deals.amount" not in warnings
    if name == "expansion_arr":  # no deal is an expansion either: said in the same words as on the tree
        assert "needs deals with deal_type = expansion — none of your deals has it (their deal_type: new)" in warnings


def test_opens_on_the_metric_of_the_node_in_view_and_follows_it(page):
    """The tree page records the metric of the node shown; Definitions opens there, and a later node
    in view wins over the metric picked on an earlier visit."""
    page.session_state["_viewing_metric"] = "win_rate"
    at = page.run()
    assert not at.exception
    assert at.selectbox(key="def_metric").value == "win_rate"
    at.selectbox(key="def_group").set_value("Product usage").run()
    assert at.selectbox(key="def_metric").value != "win_rate"  # the user's own pick stands on a rerun
    at.session_state["_viewing_metric"] = "logo_churn_rate"
    at.run()
    assert at.selectbox(key="def_metric").value == "logo_churn_rate"
