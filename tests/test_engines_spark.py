"""A workspace on Spark (local[2], the demo as Parquet) gives DuckDB's numbers, trees and explanation.

Marked `spark` (`pytest -m "not spark"` skips them for a quick run; `make test` and CI run them).
One Spark session for the module; the Parquet files are written from the demo's DuckDB file. Kept
short (each Spark statement costs a second or more): the catalogue in one batch over two closed
months, every shipped tree in the latest closed month (the demo's tree also in the running one).
"""

from __future__ import annotations

import pytest
from engine_fixtures import ROOT, close, demo_db, same_structure, spark_demo

from kpitree.engines.spark import LOCAL_CONFIG
from kpitree.errors import QueryError
from kpitree.evaluate import Engine, evaluate_tree
from kpitree.explain import explain_node
from kpitree.metrics import BUILTIN, metric
from kpitree.periods import Grain, period_containing
from kpitree.tree import load_tree
from kpitree.workspace import Workspace

pytestmark = pytest.mark.spark

TEMPLATES = ["revops", "seed003_revenue", "seed001_north_star", "team_executive", "team_sales",
             "team_customer_success", "team_product"]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    with spark_demo(tmp_path_factory.mktemp("spark")) as ws:
        yield Engine(Workspace(demo_db().parent)), Engine(ws)


def test_the_workspace_reads_spark(engines):
    local, remote = engines
    assert remote.workspace.engine_label() == "Spark (local[2], 10 table path(s))"
    assert remote.version.startswith("spark:") and "deals=18513@" in remote.version
    assert remote.as_of == local.as_of and remote.profile.rows == local.profile.rows
    # The test JVM has flags of its own (engine_fixtures); the workspace's session runs the app's SQL settings.
    conf = remote.workspace.remote.session().conf
    assert {k: conf.get(k) for k in LOCAL_CONFIG if k.startswith("spark.sql.")} == \
        {k: v for k, v in LOCAL_CONFIG.items() if k.startswith("spark.sql.")} != {}


def test_every_catalogue_metric_is_equal(engines):
    local, remote = engines
    month = period_containing(local.as_of, Grain.MONTH)
    periods = [month.shift(-2), month.shift(-1)]
    names = []
    for n in BUILTIN:
        try:
            if local.missing(n) is None:
                local.query(n, [month])
                names.append(n)
        except QueryError:  # needs a node's filter (a journey's steps)
            pass
    with remote.session():  # one batch, as a tree's evaluation sends (the running month: the trees' test)
        remote.prefetch([(n, ()) for n in names], periods)
    differ = [(n, k, x, y) for n in names
              for k, x, y in zip(local.query(n, periods)["pkey"], local.query(n, periods)["value"],
                                 remote.query(n, periods)["value"], strict=True)
              if not close(x, y, metric(n).unit)]
    assert len(names) > 40 and differ == []


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_node_of_every_shipped_tree_is_equal(engines, name):
    local, remote = engines
    tree = load_tree(ROOT / "data" / "trees" / f"{name}.yaml")
    for period in ("2026-10", "2026-11") if name == "revops" else ("2026-10",):  # short: one period but the demo's
        a, b = evaluate_tree(local, tree, period), evaluate_tree(remote, tree, period)
        for x, y in zip(a.nodes, b.nodes, strict=True):
            assert (x.id, x.status, close(x.value, y.value, x.unit), close(x.previous, y.previous, x.unit)) == \
                (y.id, y.status, True, True), (name, period, x.value, y.value)


def test_the_explanation_of_the_demos_red_arr_is_equal(engines):
    local, remote = engines
    tree = load_tree(ROOT / "data" / "demo" / "tree.yaml")
    a = explain_node(local, tree, "arr", "2026-10").to_dict()
    b = explain_node(remote, tree, "arr", "2026-10").to_dict()
    assert a["status"] == "red" and a["red_path"] and same_structure(a, b) == []
