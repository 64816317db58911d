"""Queries a workspace cannot run away with: every path under the time limit and the memory ceiling,
settings checked with a message naming workspace.json and the key, workspace names matched whole.

The slow workspace is a hostile database file: its canonical tables are views that spend a
third of a second on a scalar subquery before they return a row, so every statement on them — a
metric batch, an explanation scan, a usage chart, coverage, as-of — is slow for certain, and a
time limit of 0.05 s must stop each one with the same clean message, leaving nothing held.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import duckdb
import pytest
from conftest import ROOT, make_workspace
from test_catalogue import EVENTS
from test_metrics import DEALS, SUBSCRIPTIONS
from test_usage import ACCOUNTS

from kpitree.cache import clear_all
from kpitree.drill import segment_table
from kpitree.errors import KpiTreeError, QueryError
from kpitree.evaluate import Engine, evaluate_tree, trend
from kpitree.explain import explain_node
from kpitree.periods import parse_period
from kpitree.tree import parse_yaml
from kpitree.usage import activity_heatmap, cohort_retention
from kpitree.workspace import (
    DB_MEMORY_LIMIT,
    DB_THREADS,
    QueryTimeout,
    Workspace,
    _lock_for,
    create_workspace,
    list_workspaces,
    validate_name,
    workspace_path,
)

SLOW = "(SELECT sum(x % 7) FROM range(100000000) AS t(x)) >= 0"  # ~0.35 s on one core, every statement
LIMIT = 0.05
STOPPED_WITHIN = 10.0  # seconds: the slow statement alone takes 0.35 s; a limit not applied takes minutes
OCT, SEP = parse_period("2026-10"), parse_period("2026-09")
TREE = """
name: t
nodes:
  - id: new_arr
    level: 1
    metric: new_arr
    owner: CRO
    target: 40000
    children: [won]
  - id: won
    level: 2
    metric: won_deals
    owner: Sales
    target: 3
"""


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """A workspace whose canonical tables are slow views over the real rows, and its Engine
    (built under the default limit, then given a 0.05 s one)."""
    ws = make_workspace(tmp_path_factory.mktemp("slow"), deals=DEALS, subscriptions=SUBSCRIPTIONS, events=EVENTS,
                        accounts=ACCOUNTS)
    ws.save_settings(ws.settings().__class__(as_of="2026-11-20"))
    with _lock_for(ws.db_path):  # the writer's side: the app's instance (if it lingers) lets go of the file
        con = duckdb.connect(str(ws.db_path))
        for table in ("deals", "subscriptions", "events", "accounts"):
            con.execute(f'ALTER TABLE "{table}" RENAME TO "_real_{table}"')
            con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM "_real_{table}" WHERE {SLOW}')
        con.close()
    tree, problems = parse_yaml(TREE)
    assert not [p for p in problems if p.severity == "error"]
    clear_all()
    engine = Engine(ws)
    engine.settings.extra["query_timeout"] = LIMIT  # the engine's own settings: what its cursors read
    return ws, engine, tree


def _stopped(call) -> QueryError:
    """Runs a path that must hit the limit: a QueryError saying so, soon, and nothing left held."""
    clear_all()
    started = time.monotonic()
    with pytest.raises(QueryError) as caught:
        call()
    assert time.monotonic() - started < STOPPED_WITHIN
    text = str(caught.value)
    assert f"took longer than {LIMIT:g} s" in text and "query_timeout" in text and "workspace.json" in text, text
    assert "Traceback" not in text and "INTERRUPT" not in text
    return caught.value


PATHS = {
    "metric batch (evaluate_tree)": lambda ws, e, t: evaluate_tree(e, t, OCT),
    "trend": lambda ws, e, t: trend(e, t, "new_arr", OCT, 6),
    "explanation": lambda ws, e, t: explain_node(e, t, "new_arr", OCT, "previous"),
    "segment table": lambda ws, e, t: segment_table(e, t.node("new_arr"), OCT, SEP, "segment"),
    "usage: activity dots": lambda ws, e, t: activity_heatmap(e, OCT, weeks=4),
    "usage: cohorts": lambda ws, e, t: cohort_retention(e, OCT),
    "coverage": lambda ws, e, t: Engine.coverage(_fresh_coverage(e), "deals"),
}


def _fresh_coverage(engine: Engine) -> Engine:
    engine._coverage = None  # computed once per Engine: make this call compute it
    return engine


@pytest.mark.parametrize("path", list(PATHS))
def test_every_query_path_is_stopped_by_the_time_limit(slow, path):
    ws, engine, tree = slow
    _stopped(lambda: PATHS[path](ws, engine, tree))
    assert _lock_for(ws.db_path).readers == 0
    # the same engine's next statement runs (a fast one, under the same 0.05 s limit)
    with engine.workspace.connect() as con:
        assert con.execute('SELECT count(*) FROM "_real_deals"').fetchone()[0] > 0


def test_as_of_and_a_plain_workspace_read_are_stopped_too(slow):
    ws, _, _ = slow
    settings = ws.settings()
    settings.extra["query_timeout"] = LIMIT
    settings.as_of = None  # as_of then reads the data's latest date: a query on every table
    ws.save_settings(settings)
    try:
        fresh = Workspace(ws.root)
        _stopped(fresh.as_of)
        _stopped(fresh.row_counts)
    finally:
        settings.extra.pop("query_timeout")
        settings.as_of = "2026-11-20"
        ws.save_settings(settings)
    assert _lock_for(ws.db_path).readers == 0


def test_a_metric_batch_names_its_metrics(slow):
    _, engine, _ = slow
    clear_all()
    with pytest.raises(QueryTimeout, match=r"metrics new_arr took longer than 0\.05 s"):
        engine.query("new_arr", [OCT])


def test_a_huge_cross_join_is_stopped(demo_data_dir):
    ws = Workspace(demo_data_dir / "demo")
    settings = ws.settings()
    settings.extra["query_timeout"] = 0.5
    engine = Engine.__new__(Engine)  # only the pinned workspace matters here
    engine.workspace = ws.pinned(ws.data_version(), settings)
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="took longer than 0.5 s"), engine.workspace.connect() as con:
        con.execute("SELECT count(*) FROM deals a, deals b, deals c WHERE a.amount + b.amount > c.amount").fetchall()
    assert time.monotonic() - started < STOPPED_WITHIN
    assert _lock_for(ws.db_path).readers == 0


def test_lazy_relations_are_refused_on_a_workspace_cursor(demo_data_dir):
    with Workspace(demo_data_dir / "demo").connect() as con, pytest.raises(AttributeError, match="time limit"):
        con.sql("SELECT 1")


def test_memory_ceiling_and_threads_are_set_and_locked(demo_data_dir):
    with Workspace(demo_data_dir / "demo").connect() as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        assert int(threads) == DB_THREADS
        number, unit = limit.split()
        assert math.isclose(float(number) * {"MiB": 1 << 20, "GiB": 1 << 30}[unit], DB_MEMORY_LIMIT, rel_tol=0.01)
        assert DB_MEMORY_LIMIT <= 4 << 30
        for statement in ("SET memory_limit = '100GB'", "SET threads = 64", "SET max_temp_directory_size = '1TB'"):
            with pytest.raises(duckdb.Error, match="lock"):
                con.execute(statement)


# --- numeric settings -----------------------------------------------------------------------------

BAD = [
    ("query_timeout", "abc"), ("query_timeout", 0), ("query_timeout", -5), ("query_timeout", float("nan")),
    ("query_timeout", float("inf")), ("query_timeout", 1e12), ("query_timeout", True), ("query_timeout", [30]),
    ("amber_threshold", -0.1), ("amber_threshold", 2), ("amber_threshold", "5%"), ("gross_margin", 1.5),
    ("health_ticket_cap", 0), ("health_weight_nps", -1), ("health_at_risk_below", 400), ("as_of", "yesterday"),
    ("as_of", 20261031),
]


@pytest.mark.parametrize("key, value", BAD, ids=[f"{k}={v!r}" for k, v in BAD])
def test_a_bad_number_in_workspace_json_is_a_message_naming_the_file_and_key(tmp_path, key, value):
    ws = make_workspace(tmp_path, deals=DEALS)
    # NaN and Infinity are what Python's json writes for them (and what a hand edit may hold)
    (ws.root / "workspace.json").write_text(json.dumps({key: value}), encoding="utf-8")
    with pytest.raises(KpiTreeError) as caught:
        Engine(ws)
    text = str(caught.value)
    assert "workspace.json" in text and f'"{key}"' in text, text
    # the listing still works (the page that shows the workspace can say what is wrong)
    assert ws.tables() == ["deals"]
    with pytest.raises(KpiTreeError, match=key):
        ws.settings()


def test_good_numbers_pass_and_saving_a_bad_one_is_refused(tmp_path):
    ws = make_workspace(tmp_path, deals=DEALS)
    (ws.root / "workspace.json").write_text(json.dumps({"query_timeout": 12, "amber_threshold": 0.1,
                                                        "health_ticket_cap": 5, "gross_margin": 0.7}))
    engine = Engine(ws)
    assert engine.settings.extra["query_timeout"] == 12 and engine.settings.amber_threshold == 0.1
    settings = ws.settings()
    settings.extra["query_timeout"] = "soon"
    with pytest.raises(KpiTreeError, match="query_timeout"):
        ws.save_settings(settings)
    assert json.loads((ws.root / "workspace.json").read_text())["query_timeout"] == 12  # unchanged


def test_workspace_json_that_is_not_json_is_a_message(tmp_path):
    ws = make_workspace(tmp_path, deals=DEALS)
    (ws.root / "workspace.json").write_text('{"query_timeout": 30,\n oops}', encoding="utf-8")
    with pytest.raises(KpiTreeError, match=r"workspace\.json is not valid JSON \(line 2\)"):
        Engine(ws)
    (ws.root / "workspace.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(KpiTreeError, match="one JSON object"):
        Engine(ws)


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path):
    ws = make_workspace(tmp_path, deals=DEALS)
    (ws.root / "workspace.json").write_text(json.dumps({"query_timeout": "abc"}), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "kpitree", "evaluate", "--workspace", str(ws.root), "--tree",
                          str(ROOT / "data" / "trees" / "revops.yaml")], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "query_timeout" in out.stderr and "workspace.json" in out.stderr


# --- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["demo\n", "demo\r\n", "\ndemo", "demo\x00", ".hidden", "..", "a/b", "x" * 65, ""])
def test_workspace_names_are_matched_whole(tmp_path, name):
    with pytest.raises(KpiTreeError, match="invalid workspace name"):
        validate_name(name)
    with pytest.raises(KpiTreeError):
        create_workspace(tmp_path, name)
    with pytest.raises(KpiTreeError):
        workspace_path(tmp_path, name)


def test_a_second_demo_with_a_trailing_newline_is_not_listed(tmp_path):
    create_workspace(tmp_path, "demo")
    (tmp_path / "demo\n").mkdir()  # made by hand (or by an older version)
    assert list_workspaces(tmp_path) == ["demo"]
