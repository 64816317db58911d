"""A workspace on PostgreSQL gives the numbers, trees and explanations of the same data in DuckDB.

The demo (scale 1) is copied from its DuckDB file into a throwaway Postgres server; one workspace
reads the file, one reads Postgres through `engine: postgres`, and every catalogue metric, every
node of every shipped tree and the explanation of the demo's red ARR are compared (money to the
cent, everything else to 1e-9).
"""

from __future__ import annotations

import json
import os
from datetime import date

import psycopg
import pytest
from engine_fixtures import ROOT, close, demo_db, postgres_server, remote_workspace, same_structure

from kpitree.engines import EngineSettings, EngineUnavailable
from kpitree.engines.load import to_postgres
from kpitree.errors import KpiTreeError, QueryError
from kpitree.evaluate import Engine, evaluate_tree
from kpitree.explain import explain_node
from kpitree.metrics import BUILTIN, metric
from kpitree.periods import Grain, period_containing
from kpitree.tree import load_tree
from kpitree.workspace import Workspace

ENV = "KPITREE_TEST_PG_DSN"
TEMPLATES = ["revops", "seed003_revenue", "seed001_north_star", "team_executive", "team_sales",
             "team_customer_success", "team_product"]


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as dsn:
        to_postgres(demo_db(), dsn, "demo")
        os.environ[ENV] = dsn
        try:
            yield dsn
        finally:
            os.environ.pop(ENV, None)


@pytest.fixture(scope="module")
def engines(pg, tmp_path_factory):
    root = tmp_path_factory.mktemp("pgws")
    remote = remote_workspace(root / "pg", {"kind": "postgres", "dsn_env": ENV, "schema": "demo"})
    return Engine(Workspace(demo_db().parent)), Engine(remote)


def test_the_workspace_reads_postgres_and_keys_its_cache_on_the_engine_and_data(engines):
    local, remote = engines
    assert remote.workspace.remote is not None and "PostgreSQL (schema demo" in remote.workspace.engine_label()
    assert ENV in remote.workspace.engine_label() and "password" not in remote.workspace.engine_label()
    assert remote.version.startswith("postgres:") and "deals=18513@" in remote.version
    assert remote.as_of == local.as_of
    assert remote.loaded == local.loaded
    assert remote.profile.rows == local.profile.rows


def test_every_catalogue_metric_is_equal(engines):
    local, remote = engines
    month = period_containing(local.as_of, Grain.MONTH)
    # Two closed months and the running one, in the period groups the trees' evaluations below send
    # (2026-10: [09, 10]; 2026-11: [10] closed and [11] running), so those find every unfiltered
    # metric cached and send only their filtered nodes and maturities.
    groups = [[month.shift(-2), month.shift(-1)], [month.shift(-1)], [month]]
    names = [n for n in BUILTIN if local.missing(n) is None and not _needs_a_filter(local, n, month)]
    assert len(names) > 40
    with remote.session():  # the batches a tree's evaluation sends
        for group in groups:
            remote.prefetch([(n, ()) for n in names], group)
    differ = []
    for name in names:
        for group in groups:
            a, b = local.query(name, group), remote.query(name, group)
            assert list(a["pkey"]) == list(b["pkey"]), name
            for key, x, y in zip(a["pkey"], a["value"], b["value"], strict=True):
                if not close(x, y, metric(name).unit):
                    differ.append((name, key, x, y))
    assert differ == []


def _needs_a_filter(engine: Engine, name: str, month) -> bool:
    """A metric computed only with a node's filter (a journey's steps)."""
    try:
        engine.query(name, [month])
    except QueryError:
        return True
    return False


def test_split_by_segment_is_equal(engines):
    local, remote = engines
    month = period_containing(local.as_of, Grain.MONTH).shift(-1)
    for name in ("new_arr", "win_rate", "mrr", "nrr"):
        a = local.query(name, [month], dimension="segment")
        b = remote.query(name, [month], dimension="segment")
        assert list(a["segment"]) == list(b["segment"])
        assert all(close(x, y, metric(name).unit) for x, y in zip(a["value"], b["value"], strict=True)), name


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_node_of_every_shipped_tree_is_equal(engines, name):
    local, remote = engines
    tree = load_tree(ROOT / "data" / "trees" / f"{name}.yaml")
    for period in ("2026-10", "2026-11"):
        a, b = evaluate_tree(local, tree, period), evaluate_tree(remote, tree, period)
        assert [n.id for n in a.nodes] == [n.id for n in b.nodes]
        for x, y in zip(a.nodes, b.nodes, strict=True):
            assert (x.status, close(x.value, y.value, x.unit), close(x.previous, y.previous, x.unit)) == \
                (y.status, True, True), (name, period, x.id, x.value, y.value)


def test_the_explanation_of_the_demos_red_arr_is_equal(engines):
    local, remote = engines
    tree = load_tree(ROOT / "data" / "demo" / "tree.yaml")
    assert evaluate_tree(local, tree, "2026-10").node("arr").status == "red"
    a = explain_node(local, tree, "arr", "2026-10").to_dict()
    b = explain_node(remote, tree, "arr", "2026-10").to_dict()
    assert a["red_path"] and same_structure(a, b) == []


def test_the_data_version_follows_the_rows(pg, engines):
    _, remote = engines
    before = remote.workspace.data_version()
    with psycopg.connect(pg, autocommit=True) as con:
        con.execute("INSERT INTO demo.nps (account_id, date, score) VALUES ('X', DATE '2026-11-21', 9)")
        try:
            after = remote.workspace.data_version()
        finally:
            con.execute("DELETE FROM demo.nps WHERE account_id = 'X'")
    assert after != before and "nps=5037@2026-11-21" in after
    assert remote.workspace.data_version() == before


def test_custom_sql_cannot_write_through_the_engine(engines):
    _, remote = engines
    with remote.workspace.connect() as con, pytest.raises(KpiTreeError, match="read-only"):
        con.execute("CREATE TABLE demo.x AS SELECT 1 AS a")


def test_a_wrong_connection_is_one_plain_message_without_the_secret(tmp_path, pg):
    os.environ["KPITREE_TEST_BAD_DSN"] = f"postgresql://kpitree:hunter2secret@127.0.0.1:{_closed_port()}/postgres"
    try:
        ws = remote_workspace(tmp_path / "bad", {"kind": "postgres", "dsn_env": "KPITREE_TEST_BAD_DSN"})
        with pytest.raises(EngineUnavailable) as info:
            ws.remote.check()
        assert "cannot connect to PostgreSQL" in str(info.value) and "hunter2secret" not in str(info.value)
        with pytest.raises(KpiTreeError, match="environment variable KPITREE_TEST_UNSET is not set"):
            remote_workspace(tmp_path / "unset", {"kind": "postgres", "dsn_env": "KPITREE_TEST_UNSET"}).remote.check()
    finally:
        os.environ.pop("KPITREE_TEST_BAD_DSN", None)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


@pytest.mark.parametrize("raw, message", [
    ({"kind": "oracle"}, "must be one of duckdb, parquet, postgres, spark"),
    ({"kind": "postgres"}, "needs \"dsn_env\""),
    ({"kind": "postgres", "dsn_env": "postgresql://u:p@h/db"}, "the name of an environment variable"),
    ({"kind": "postgres", "dsn_env": "X", "schema": "a; drop"}, "a schema name"),
    ({"kind": "spark", "master": "http://evil"}, "local\\[\\*\\]"),
    ({"kind": "spark", "paths": {"secrets": "/etc"}}, "unknown tables"),
    ({"kind": "spark", "password": "x"}, "unknown keys"),
])
def test_engine_settings_are_checked_with_a_message(tmp_path, raw, message):
    with pytest.raises(KpiTreeError, match=message):
        EngineSettings.from_raw(raw)
    ws = Workspace(tmp_path / "w", create=True)
    (ws.root / "workspace.json").write_text(json.dumps({"engine": raw}))
    with pytest.raises(KpiTreeError, match=message):
        ws.settings()


def test_settings_round_trip_and_default_to_the_local_file(tmp_path):
    raw = {"kind": "spark", "master": "local[2]", "paths": {"deals": "/data/deals.parquet"}}
    assert EngineSettings.from_raw(raw).to_raw() == raw
    ws = Workspace(tmp_path / "w", create=True)
    assert ws.remote is None and ws.engine_label().startswith("DuckDB")
    assert date.fromisoformat("2026-11-20")  # the demo's as-of date, used above
