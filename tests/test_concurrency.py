"""Many threads on one workspace, as the app runs them: `ui._engine` is one Engine shared by every
Streamlit session, overlapping reruns run on threads of their own, and the warm-up reads in the
background. Each thread must get its own cursor, never another's, and leave nothing behind when it
stops half-way; a load must still get in between the readers.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import ROOT

import kpitree.evaluate as evaluate_module
from kpitree.cache import clear_all
from kpitree.drill import drill_dimensions, segment_table
from kpitree.errors import KpiTreeError, QueryError
from kpitree.evaluate import Engine, default_period, evaluate_tree, trend
from kpitree.explain import explain_node
from kpitree.ingest import ingest
from kpitree.periods import parse_period
from kpitree.tree import load_tree, parse_yaml
from kpitree.usage import activity_heatmap, cohort_retention, panel_charts
from kpitree.warmup import baseline_period, warm
from kpitree.workspace import DataChanged, Workspace, WorkspaceBusy, _lock_for

TREE = ROOT / "data" / "trees" / "revops.yaml"
JOIN_SECONDS = 90.0  # a 2-core machine shared with others; a hang is far longer


class StopRerun(BaseException):
    """Stands in for Streamlit's StopException/RerunException: a BaseException raised in the
    script thread in the middle of a click when the user clicks again."""


@pytest.fixture(scope="module")
def demo(demo_data_dir):
    ws = Workspace(demo_data_dir / "demo")
    engine = Engine(ws)
    views = []
    for grain in ("week", "month", "quarter", "year"):
        p = default_period(engine, grain)
        views += [p, p.previous()]
    return ws, load_tree(TREE), views


def snapshot(evaluation) -> list[tuple]:
    return [(n.id, n.value, n.previous, n.status) for n in evaluation.nodes]


def same(a: list[tuple], b: list[tuple]) -> bool:
    """Equal up to float summation order (DuckDB sums doubles on two threads)."""
    def close(u, v):
        return (u is None and v is None) or (u is not None and v is not None
                                             and math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9))
    return len(a) == len(b) and all(x[0] == y[0] and x[3] == y[3] and close(x[1], y[1]) and close(x[2], y[2])
                                    for x, y in zip(a, b, strict=True))


def serial(ws: Workspace, tree, views) -> dict[str, list[tuple]]:
    out = {}
    for p in views:
        clear_all()
        out[p.key] = snapshot(evaluate_tree(Engine(ws), tree, p))
    return out


def run_threads(targets: list, timeout: float = JOIN_SECONDS) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"{len(stuck)} thread(s) still blocked after {timeout:g} s (a deadlock)"


def test_eight_threads_and_the_warm_up_on_one_engine_match_a_serial_run(demo):
    ws, tree, views = demo
    expected = serial(ws, tree, views)
    for _ in range(2):  # a fresh server each time: nothing cached, every thread hits the file
        clear_all()
        engine = Engine(ws)  # what ui._engine hands every session
        start = threading.Barrier(len(views) + 1)
        stop = threading.Event()
        results: dict[str, object] = {}

        def click(period, engine=engine, start=start, results=results):
            start.wait()
            try:
                with engine.session():  # an outer session, as a page holds one while it draws
                    got = snapshot(evaluate_tree(engine, tree, period))
                    trend(engine, tree, tree.root.id, period, 6)
                results[period.key] = got
            except BaseException as exc:  # noqa: BLE001 - reported below with the view
                results[period.key] = exc

        def warm_up(start=start, stop=stop):
            start.wait()
            warm(ws, tree, views[2], "target", [n.id for n in tree.nodes][:2], stop=stop)

        clicks = [lambda p=p: click(p) for p in views]
        try:
            run_threads([*clicks, warm_up])
        finally:
            stop.set()
        for p in views:
            got = results.get(p.key)
            assert not isinstance(got, BaseException), f"{p.key}: {type(got).__name__}: {got}"
            assert same(got, expected[p.key]), p.key
        assert _lock_for(ws.db_path).readers == 0


def test_a_thread_stopped_mid_click_does_not_poison_the_next(demo, monkeypatch):
    ws, tree, views = demo
    expected = serial(ws, tree, views[2:4])
    clear_all()
    engine = Engine(ws)
    real = evaluate_module.compute_many
    calls = [0]

    def stopped_on_second_query(con, q, names):
        calls[0] += 1
        if calls[0] == 2:
            raise StopRerun()
        return real(con, q, names)

    monkeypatch.setattr(evaluate_module, "compute_many", stopped_on_second_query)

    # In a thread of its own (the thread ends with the stop, as a stopped script thread does)…
    died: list[BaseException] = []

    def stopped_click():
        try:
            evaluate_tree(engine, tree, views[2])
        except BaseException as exc:  # noqa: BLE001 - the thread records how it ended
            died.append(exc)

    run_threads([stopped_click])
    assert calls[0] == 2 and isinstance(died[0], StopRerun)
    # …and in this thread, mid-session, with the same engine.
    calls[0] = 0
    with pytest.raises(StopRerun):
        evaluate_tree(engine, tree, views[2])
    monkeypatch.setattr(evaluate_module, "compute_many", real)

    # Nothing is left held: a load could take the file now, and the engine answers again.
    access = _lock_for(ws.db_path)
    assert access.readers == 0
    access.acquire(timeout=1)
    access.release()
    assert same(snapshot(evaluate_tree(engine, tree, views[2])), expected[views[2].key])
    other: dict[str, list[tuple]] = {}
    run_threads([lambda: other.setdefault("x", snapshot(evaluate_tree(engine, tree, views[3])))])
    assert same(other["x"], expected[views[3].key])


def test_a_query_stopped_by_the_time_limit_leaves_the_session_usable(demo, monkeypatch):
    ws, tree, views = demo
    expected = serial(ws, tree, views[:1])
    clear_all()
    engine = Engine(ws)
    real = evaluate_module.compute_many

    def endless(con, q, names):
        try:
            con.execute("SELECT count(*) FROM range(1000000000000) t(x) WHERE x % 7 = 3").fetchall()
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        return {}

    with engine.session():
        monkeypatch.setattr(evaluate_module, "compute_many", endless)
        monkeypatch.setitem(engine.settings.extra, "query_timeout", 0.3)
        started = time.monotonic()
        with pytest.raises(QueryError, match="took longer than 0.3 s"):
            engine.query("arr", [views[0]])
        assert time.monotonic() - started < 30
        monkeypatch.setattr(evaluate_module, "compute_many", real)
        monkeypatch.setitem(engine.settings.extra, "query_timeout", 30)
        # the same session, the same cursor: the interrupted query is gone, the next one runs
        assert same(snapshot(evaluate_tree(engine, tree, views[0])), expected[views[0].key])


def test_readers_do_not_wait_for_each_other(demo):
    ws, _, _ = demo
    holding, done = threading.Event(), threading.Event()
    seen: list[int] = []

    def long_reader():
        with ws.connect() as con:
            con.execute("SELECT count(*) FROM deals").fetchall()
            holding.set()
            done.wait(JOIN_SECONDS)

    def quick_reader():
        holding.wait(JOIN_SECONDS)
        with ws.connect() as con:
            seen.append(con.execute("SELECT count(*) FROM deals").fetchone()[0])
        done.set()

    started = time.monotonic()
    run_threads([long_reader, quick_reader])
    assert seen and seen[0] > 0
    assert time.monotonic() - started < JOIN_SECONDS / 2  # the quick one did not wait for the long one


def test_locks_belong_to_the_thread_that_took_them(tmp_path):
    access = _lock_for(tmp_path / "kpitree.duckdb")
    access.acquire(timeout=1)
    errors: list[BaseException] = []

    def release_elsewhere():
        try:
            access.release()
        except RuntimeError as exc:
            errors.append(exc)

    run_threads([release_elsewhere])
    assert errors, "another thread released this thread's write lock"
    access.release()
    # A writer waits for readers, and gives up with a message instead of hanging.
    ws = Workspace(tmp_path)
    duckdb.connect(str(ws.db_path)).close()  # an empty database file
    with ws.connect():
        failed: list[BaseException] = []

        def load():
            try:
                access.acquire(timeout=0.3)
                access.release()
            except KpiTreeError as exc:
                failed.append(exc)

        run_threads([load])
        assert failed and "busy" in str(failed[0])
        with pytest.raises(KpiTreeError, match="cannot be written while"):
            access.acquire(timeout=1)  # this thread reads: waiting would wait for itself
    assert access.readers == 0


DEALS_A = """deal_id,account_id,owner,created_date,close_date,status,amount,deal_type
D1,A1,Ann,2026-01-05,2026-02-10,won,1000,new
D2,A2,Bob,2026-01-06,2026-02-11,lost,2000,new
D3,A3,Ann,2026-01-07,2026-03-01,won,3000,new
"""
DEALS_B = DEALS_A + "D4,A4,Bob,2026-02-01,2026-03-05,won,4000,new\n"


def test_a_load_gets_in_while_threads_read(load_ws, tmp_path: Path):
    ws = load_ws(deals=DEALS_A)
    files = []
    for name, text in (("a", DEALS_A), ("b", DEALS_B)):
        folder = tmp_path / f"src_{name}"
        folder.mkdir()
        (folder / "deals.csv").write_text(text, encoding="utf-8")
        files.append(folder / "deals.csv")
    engine = Engine(ws)
    stop = threading.Event()
    seen: set[int] = set()
    errors: list[BaseException] = []

    def reader():
        while not stop.is_set():
            try:
                with engine.session(), ws.connect() as con:
                    seen.add(con.execute("SELECT count(*) FROM deals").fetchone()[0])
                    engine.coverage("deals")
            except BaseException as exc:  # noqa: BLE001 - collected and reported
                errors.append(exc)
                return

    def loads():
        try:
            for i in range(4):
                ingest(ws, [files[(i + 1) % 2]])
        finally:
            stop.set()

    run_threads([reader, reader, reader, loads])
    assert not errors, errors
    assert seen <= {3, 4} and seen
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM deals").fetchone()[0] == 3  # the last load's file


# --- a node's panel, as the Tree page computes it ---------------------------------------------------

PANEL_NODES = ["arr", "new_business_arr", "nrr", "win_rate", "leads", "reports_adoption"]  # every kind of panel


def panel(engine: Engine, tree, node_id: str, period, versus: str = "target") -> dict:
    """What the Tree page computes for a click on `node_id` (ui.explanation, trend, the segment
    table of the first drill dimension, the usage charts the metric shows), as plain values."""
    node = tree.node(node_id)
    res = explain_node(engine, tree, node_id, period, versus, causes=False)
    out: dict = {"explanation": {k: v for k, v in res.to_dict().items() if k != "seconds"}}
    out["trend"] = trend(engine, tree, node_id, period, 18)
    dims = drill_dimensions(engine, tree, node)
    if dims:
        out["segments"] = segment_table(engine, node, period, baseline_period(period, versus), dims[0])
    kinds = panel_charts(node.metric)
    if "activity" in kinds:
        out["activity"] = activity_heatmap(engine, period, order="decline")
    if "cohort" in kinds:
        out["cohort"] = cohort_retention(engine, period)
    return out


def assert_close(a, b, where: str = "") -> None:
    """Equal up to float summation order, through dicts, lists and frames.

    DuckDB's parallel sums add in any order; a share computed from differences of $100M-sized
    sums (ARR's bridge: start × NRR + new) keeps ~1e-8 of that noise. Mixed-up sessions would
    differ in the first digits, so 1e-6 (relative, or absolute near zero) still catches every mix-up."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-6, obj=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6), (where, a, b)
    else:
        assert a == b, (where, a, b)


def test_sessions_clicking_panels_at_once_match_a_serial_run(demo):
    """Twelve sessions click (two on each node: the same uncached view at once) while the tree is
    evaluated, the red path walked and the warm-up reads; every panel equals its serial twin."""
    ws, tree, views = demo
    period = views[2]  # the latest complete month
    expected = {}
    for node_id in PANEL_NODES:
        clear_all()
        expected[node_id] = panel(Engine(ws), tree, node_id, period)
    clear_all()
    expected_tree = snapshot(evaluate_tree(Engine(ws), tree, period))
    red = explain_node(Engine(ws), tree, tree.root.id, period, "target", causes=True).to_dict()
    red.pop("seconds")
    for _ in range(2):
        clear_all()
        engine = Engine(ws)
        jobs = [(node_id, k) for node_id in PANEL_NODES for k in range(2)]
        start = threading.Barrier(len(jobs) + 2)
        stop = threading.Event()
        got: dict = {}

        def click(job, engine=engine, start=start, got=got):
            start.wait()
            try:
                got[job] = panel(engine, tree, job[0], period)
            except BaseException as exc:  # noqa: BLE001 - reported below with the node
                got[job] = exc

        def whole_tree(engine=engine, start=start, got=got):
            start.wait()
            try:
                got["tree"] = snapshot(evaluate_tree(engine, tree, period))
                found = explain_node(engine, tree, tree.root.id, period, "target", causes=True).to_dict()
                found.pop("seconds")
                got["red"] = found
            except BaseException as exc:  # noqa: BLE001
                got["tree"] = exc

        def warm_up(start=start, stop=stop):
            start.wait()
            warm(ws, tree, period, "target", PANEL_NODES[::-1], stop=stop)

        try:
            run_threads([*(lambda j=j: click(j) for j in jobs), whole_tree, warm_up])
        finally:
            stop.set()
        for job in jobs:
            assert not isinstance(got[job], BaseException), f"{job}: {type(got[job]).__name__}: {got[job]}"
            assert_close(got[job], expected[job[0]], job[0])
        assert not isinstance(got["tree"], BaseException), got["tree"]
        assert same(got["tree"], expected_tree)
        assert_close(got["red"], red, "red path")
        assert _lock_for(ws.db_path).readers == 0



def test_a_cached_node_data_is_never_read_half_built(demo, monkeypatch):
    """A node's cells are cached and shared by every session's thread; their lazily found nested
    dimensions (reps inside segments) must not be seen empty by a thread arriving while another is
    still finding them: the reps would then be attributed without their segments (win rate's
    Dana Whitfield at −0.028209 instead of −0.028239 on the demo)."""
    import dataclasses

    from kpitree.explain import cells

    ws, tree, views = demo
    period = views[2]
    clear_all()
    session = cells._Session(Engine(ws), tree, period, cells.reference_periods(period, "target"))
    try:
        node = tree.node("win_rate")
        session.fetch([node])
        data = session.own(node)
    finally:
        session.close()
    expected = data.nested()
    assert expected, "the demo's win rate has reps nested in segments"
    kid = next(iter(expected))
    parents = data.parents(kid)
    fresh = dataclasses.replace(data, _nested=None, _parents={})  # as just built and cached
    found = cells.nested_dimensions

    def slow(*args, **kwargs):  # the first thread is still at work when the others arrive
        time.sleep(0.2)
        return found(*args, **kwargs)

    monkeypatch.setattr(cells, "nested_dimensions", slow)
    start = threading.Barrier(8)
    got: list = []

    def read():
        start.wait()
        got.append((fresh.nested(), fresh.parents(kid)))

    run_threads([read] * 8)
    assert got == [(expected, parents)] * 8


LOAD_TREE = """
name: loads
nodes:
  - id: new_arr
    level: 1
    metric: new_arr
    owner: CRO
    target: 5000
    children: [won]
  - id: won
    level: 2
    metric: won_deals
    owner: Sales
    target: 2
"""


def test_pages_read_old_or_new_data_while_loads_swap(load_ws, tmp_path: Path):
    """Readers doing what a page does (an Engine per data version, as `ui.engine_for` keeps them;
    the tree, then the root's explanation) while a load swaps the data four times: each rerun
    sees dataset A or dataset B whole, or says the data changed or a load runs; no other error,
    no hang, nothing held afterwards."""
    ws = load_ws(deals=DEALS_A)
    tree, problems = parse_yaml(LOAD_TREE)
    assert not [p for p in problems if p.severity == "error"]
    period = parse_period("2026-03")
    files = []
    for name, text in (("a", DEALS_A), ("b", DEALS_B)):
        folder = tmp_path / f"page_src_{name}"
        folder.mkdir()
        (folder / "deals.csv").write_text(text, encoding="utf-8")
        files.append(folder / "deals.csv")

    def rerun(engine: Engine) -> tuple:
        evaluation = evaluate_tree(engine, tree, period)
        res = explain_node(engine, tree, "new_arr", period, "target", causes=False)
        return snapshot(evaluation), res.value

    expected = []
    for f in files:
        ingest(ws, [f], mode="replace")
        clear_all()
        expected.append(rerun(Engine(ws)))
    assert expected[0] != expected[1]
    ingest(ws, [files[0]], mode="replace")

    engines: dict[str, Engine] = {}
    guard = threading.Lock()
    stop = threading.Event()
    seen: list[tuple] = []
    clean: list[str] = []
    errors: list[BaseException] = []

    def engine_for() -> Engine:
        with guard:
            version = ws.data_version()
            if version not in engines:
                engines[version] = Engine(Workspace(ws.root))
            return engines[version]

    def reader():
        while not stop.is_set():
            try:
                seen.append(rerun(engine_for()))
            except (DataChanged, WorkspaceBusy) as exc:
                clean.append(str(exc))
            except BaseException as exc:  # noqa: BLE001 - collected and reported
                errors.append(exc)
                return

    def loads():
        try:
            for i in range(4):
                ingest(ws, [files[(i + 1) % 2]], mode="replace")
                time.sleep(0.05)
        finally:
            stop.set()

    run_threads([reader, reader, reader, loads])
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    assert seen, "no rerun completed"
    for got in seen:
        assert any(same(got[0], e[0]) and got[1] == e[1] for e in expected), got
    for text in clean:
        assert "reload the page" in text, text
    assert _lock_for(ws.db_path).readers == 0


def test_sessions_asking_for_one_uncached_result_compute_it_once(demo, monkeypatch):
    """Eight first pages at once on a fresh server run each metric batch once (the others wait for
    it), not eight times on two cores; and the answers are the serial ones."""
    ws, tree, views = demo
    real = evaluate_module.compute_many
    calls: list[tuple] = []
    guard = threading.Lock()

    def counted(con, q, names):
        with guard:
            calls.append((q.periods, q.filters, tuple(names)))
        return real(con, q, names)

    monkeypatch.setattr(evaluate_module, "compute_many", counted)
    clear_all()
    expected = snapshot(evaluate_tree(Engine(ws), tree, views[2]))
    serial_calls = sorted(calls, key=repr)
    calls.clear()
    clear_all()
    engine = Engine(ws)
    start = threading.Barrier(8)
    got: list = []

    def first_page():
        start.wait()
        got.append(snapshot(evaluate_tree(engine, tree, views[2])))

    run_threads([first_page] * 8)
    assert len(got) == 8 and all(same(g, expected) for g in got)
    assert sorted(calls, key=repr) == serial_calls, f"{len(calls)} batches run for {len(serial_calls)} needed"


def test_a_result_is_computed_once_and_a_failed_or_slow_owner_does_not_block_the_others():
    from kpitree.cache import ResultCache

    cache = ResultCache(8)
    runs: list[int] = []
    start = threading.Barrier(6)

    def slow_run():
        runs.append(1)
        time.sleep(0.3)
        return 42

    out: list[int] = []
    run_threads([lambda: (start.wait(), out.append(cache.get_or_run("k", slow_run)))] * 6)
    assert out == [42] * 6 and len(runs) == 1

    # The first thread fails (a stopped rerun): a waiting one computes it instead.
    first, attempts = threading.Event(), []

    def failing_then_fine():
        attempts.append(1)
        if len(attempts) == 1:
            first.set()
            time.sleep(0.2)
            raise StopRerun()
        return 7

    results: list = []

    def ask():
        try:
            results.append(cache.get_or_run("f", failing_then_fine))
        except StopRerun:
            results.append("stopped")

    def ask_later():
        first.wait(JOIN_SECONDS)
        ask()

    run_threads([ask, ask_later])
    assert sorted(results, key=str) == [7, "stopped"] and len(attempts) == 2

    # A holder that never finishes only delays the others by the wait.
    held, release = threading.Event(), threading.Event()

    def holder():
        with cache.single("h"):
            held.set()
            release.wait(JOIN_SECONDS)

    waited: list[bool] = []

    def other():
        held.wait(JOIN_SECONDS)
        began = time.monotonic()
        with cache.single("h", wait=0.3) as got:
            waited.append((got, time.monotonic() - began < 5))
        release.set()

    run_threads([holder, other])
    assert waited == [(False, True)]


def test_a_command_line_load_gets_in_while_the_app_keeps_reading(load_ws, tmp_path: Path):
    """Three threads of 'the app' read back to back, so its database instance never closes on
    its own; a command-line load in another process still gets the file within seconds (its
    marker holds new reads back), readers see the old rows, then the new ones, or a clean busy
    message — and no marker is left behind."""
    import subprocess
    import sys

    ws = load_ws(deals=DEALS_A)
    folder = tmp_path / "cli_src"
    folder.mkdir()
    (folder / "deals.csv").write_text(DEALS_B, encoding="utf-8")
    stop = threading.Event()
    seen: set[int] = set()
    busy: list[str] = []
    errors: list[BaseException] = []

    # A relay: each reader leaves only once the next one is in (or after 0.5 s), so without the
    # marker the file is never free for a moment, as with twenty sessions clicking.
    turn = [threading.Event() for _ in range(3)]
    inside = [threading.Event() for _ in range(3)]
    turn[0].set()

    def reader(i: int):
        nxt = (i + 1) % 3
        while not stop.is_set():
            if not turn[i].wait(0.1):
                continue
            turn[i].clear()
            try:
                with ws.connect() as con:
                    inside[i].set()
                    seen.add(con.execute("SELECT count(*) FROM deals").fetchone()[0])
                    inside[nxt].clear()
                    turn[nxt].set()
                    inside[nxt].wait(0.5)
            except WorkspaceBusy as exc:
                busy.append(str(exc))
                turn[nxt].set()
            except BaseException as exc:  # noqa: BLE001 - collected and reported
                errors.append(exc)
                turn[nxt].set()
                return

    readers = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(3)]
    for t in readers:
        t.start()
    try:
        time.sleep(0.5)
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "kpitree", "ingest", "--workspace", str(ws.root),
                              str(folder / "deals.csv")], capture_output=True, text=True, timeout=120, cwd=ROOT)
        took = time.monotonic() - started
        time.sleep(0.5)
    finally:
        stop.set()
        for t in readers:
            t.join(JOIN_SECONDS)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not errors, errors
    assert seen == {3, 4}, seen
    assert took < 25, f"the load took {took:.0f} s: it waited for the app's readers"
    assert all("a load is running" in b for b in busy)
    assert not _lock_for(ws.db_path).marker.exists()
    assert _lock_for(ws.db_path).readers == 0


def test_the_warm_up_gives_up_quietly_on_a_broken_workspace(tmp_path):
    """A background thread has nobody to show a message to: a bad workspace.json (the page says
    what is wrong) ends the warm-up with nothing done, no exception in the thread."""
    import json

    from conftest import make_workspace

    ws = make_workspace(tmp_path, deals=DEALS_A)
    (ws.root / "workspace.json").write_text(json.dumps({"query_timeout": "abc"}), encoding="utf-8")
    tree = load_tree(TREE)
    assert warm(ws, tree, parse_period("2026-02"), "target", [tree.root.id]) == 0
    assert _lock_for(ws.db_path).readers == 0


def test_the_instance_lingers_a_moment_and_lets_go_for_a_load_or_a_new_file(load_ws, tmp_path: Path, monkeypatch):
    """Reads in a row open the workspace file once (an open costs 40-200 ms, a cursor 0.5 ms); the
    instance closes READ_LINGER_SECONDS after the last reader, at once for a load, and a file
    replaced behind it is read anew, never the old one."""
    import shutil

    import kpitree.workspace as workspace_module

    ws = load_ws(deals=DEALS_A)
    access = _lock_for(ws.db_path)
    with access:  # start from a closed instance
        pass
    opened: list[int] = []
    real_open = Workspace._open
    monkeypatch.setattr(Workspace, "_open", lambda self: opened.append(1) or real_open(self))
    for _ in range(5):
        with ws.connect() as con:
            assert con.execute("SELECT count(*) FROM deals").fetchone()[0] == 3
    assert len(opened) == 1 and access.open and access.readers == 0
    deadline = time.monotonic() + workspace_module.READ_LINGER_SECONDS + 5
    while access.open and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not access.open, "the instance did not close after the last reader"

    with ws.connect():
        pass
    assert access.open
    folder = tmp_path / "linger_src"
    folder.mkdir()
    (folder / "deals.csv").write_text(DEALS_B, encoding="utf-8")
    started = time.monotonic()
    ingest(ws, [folder / "deals.csv"])  # a load in this process: no wait for the lingering instance
    assert time.monotonic() - started < 30
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM deals").fetchone()[0] == 4

    # A file copied over the workspace's (by hand, a restore) while the instance lingers.
    spare = tmp_path / "spare.duckdb"
    duckdb.connect(str(spare)).execute("CREATE TABLE deals AS SELECT 1 AS deal_id").close()
    assert access.open
    shutil.copy(spare, ws.db_path)
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM deals").fetchone()[0] == 1
