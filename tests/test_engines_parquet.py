"""DuckDB over Parquet (`engine: parquet`) and the translation rules, checked on DuckDB itself."""

from __future__ import annotations

import json

import duckdb
import pytest
import sqlglot
from engine_fixtures import ROOT, close, demo_db, same_structure

from kpitree.engines import EngineSettings, forget
from kpitree.engines.load import to_parquet
from kpitree.engines.transpile import _asof, _fix_group, translate
from kpitree.errors import KpiTreeError
from kpitree.evaluate import Engine, evaluate_tree
from kpitree.explain import explain_node
from kpitree.tree import load_tree
from kpitree.workspace import Workspace

TEMPLATES = ["revops", "seed003_revenue", "seed001_north_star", "team_executive", "team_sales",
             "team_customer_success", "team_product"]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    root = tmp_path_factory.mktemp("pq")
    paths = to_parquet(demo_db(), root / "files")
    raw = {"kind": "parquet", "paths": {t: str(p) for t, p in paths.items()}}
    ws = Workspace(root / "ws", create=True)
    (ws.root / "workspace.json").write_text(json.dumps({"engine": raw}))
    yield Engine(Workspace(demo_db().parent)), Engine(ws)
    forget(EngineSettings.from_raw(raw))


def test_every_node_of_every_shipped_tree_and_the_red_arr_explanation_are_equal(engines):
    local, remote = engines
    assert remote.workspace.engine_label() == "DuckDB over Parquet (10 table path(s))"
    assert remote.version.startswith("parquet:") and remote.as_of == local.as_of
    for name in TEMPLATES:
        tree = load_tree(ROOT / "data" / "trees" / f"{name}.yaml")
        for period in ("2026-10", "2026-11"):
            a, b = evaluate_tree(local, tree, period), evaluate_tree(remote, tree, period)
            assert [(n.id, n.status) for n in a.nodes] == [(n.id, n.status) for n in b.nodes]
            assert all(close(x.value, y.value, x.unit) for x, y in zip(a.nodes, b.nodes, strict=True)), name
    tree = load_tree(ROOT / "data" / "demo" / "tree.yaml")
    a, b = (explain_node(e, tree, "arr", "2026-10").to_dict() for e in engines)
    assert a["status"] == "red" and same_structure(a, b) == []


def test_sql_reads_only_the_configured_files(engines):
    _, remote = engines
    with remote.workspace.connect() as con:
        for sql in ("SELECT * FROM read_csv('/etc/passwd')", "COPY deals TO '/tmp/x.csv'",
                    "SET enable_external_access = true"):
            with pytest.raises(KpiTreeError):
                con.execute(sql)


@pytest.mark.parametrize("master", ["sc://spark.internal:15002/;token=abc123", "spark://ann:pw@host:7077"])
def test_a_master_url_never_carries_a_credential(master):
    with pytest.raises(KpiTreeError, match="must not hold a credential") as info:
        EngineSettings.from_raw({"kind": "spark", "master": master})
    assert "abc123" not in str(info.value) and "pw@" not in str(info.value)


def test_a_missing_path_is_a_plain_message(tmp_path):
    raw = {"kind": "parquet", "paths": {"deals": str(tmp_path / "nowhere.parquet")}}
    ws = Workspace(tmp_path / "ws", create=True)
    (ws.root / "workspace.json").write_text(json.dumps({"engine": raw}))
    with pytest.raises(KpiTreeError, match="no Parquet file or folder at"):
        ws.remote.check()
    forget(EngineSettings.from_raw(raw))


# --- translation rules: the rewritten SQL, run on DuckDB, gives what the original gives --------------

_DATA = """
CREATE TABLE ages AS SELECT * FROM (VALUES ('a', 0), ('a', 3), ('a', 9), ('b', 5), ('b', 40)) AS t(pkey, age);
CREATE TABLE cdf AS SELECT * FROM (VALUES (1, 0.2), (4, 0.5), (9, 0.9), (30, 1.0)) AS t(lag, share);
CREATE TABLE k AS SELECT * FROM (VALUES ('a', 1, 0.1), ('a', 5, 0.6), ('b', 2, 0.3)) AS t(pkey, lag, share);
"""


def _rewritten(sql: str) -> str:
    return sqlglot.parse_one(sql, read="duckdb").transform(_fix_group).transform(_asof).sql(dialect="duckdb")


@pytest.mark.parametrize("sql", [
    "SELECT a.pkey, a.age, cdf.share FROM ages AS a ASOF LEFT JOIN cdf ON a.age >= cdf.lag ORDER BY ALL",
    "SELECT a.pkey, a.age, k.share FROM ages AS a ASOF LEFT JOIN k ON a.pkey = k.pkey AND a.age >= k.lag "
    "ORDER BY ALL",
    "SELECT a.pkey, a.age, c.share FROM ages AS a ASOF JOIN cdf AS c ON c.lag <= a.age ORDER BY ALL",
    "SELECT pkey, '(all)' AS segment, count(*) AS n FROM ages GROUP BY ALL ORDER BY ALL",
    "SELECT pkey, '(all)' AS segment, sum(age) AS s FROM ages GROUP BY pkey, '(all)' ORDER BY ALL",
    "SELECT count(*) AS n, max(age) AS m FROM ages GROUP BY ALL",
])
def test_rewrites_keep_the_meaning(sql):
    con = duckdb.connect()
    con.execute(_DATA)
    rewritten = _rewritten(sql)
    assert " ASOF " not in rewritten.upper() and "GROUP BY ALL" not in rewritten.upper()
    assert con.execute(rewritten).fetchall() == con.execute(sql).fetchall()


def test_postgres_and_spark_spellings():
    pg = translate("SELECT max_by(v, d) FILTER (WHERE x > ?) FROM t GROUP BY ALL", [1], "postgres")
    assert pg == ("SELECT (ARRAY_AGG(v ORDER BY d DESC NULLS LAST) FILTER(WHERE (x > 1) AND NOT d IS NULL))[1] "
                  "FROM t")
    spark = translate("SELECT quantile_disc(lag, 0.9), percentile_cont(0.5) WITHIN GROUP (ORDER BY m), "
                      "count(DISTINCT CASE WHEN a IS NOT NULL THEN (a, b) END) FROM t WHERE d >= ?",
                      [__import__("datetime").date(2026, 1, 1)], "spark")
    assert "PERCENTILE_DISC(0.9) WITHIN GROUP (ORDER BY lag" in spark and "PERCENTILE(m, 0.5)" in spark
    assert "STRUCT(a, b)" in spark and "CAST('2026-01-01' AS DATE)" in spark
    with pytest.raises(KpiTreeError, match="parameters"):
        translate("SELECT ? + ?", [1], "postgres")
