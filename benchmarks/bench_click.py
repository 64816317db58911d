"""Click latency of the tree page in a real browser at ~100k deals.

Builds a demo workspace at the requested size (all tables), starts the app on a free port,
opens it in Debian's Chromium and clicks tree boxes one after another; each time is from the
click until the selected node's panel heading shows. Also times the same page's core work
(evaluate + trend + segment split) without the browser, as the in-process baseline, so the
ratio tells how much Streamlit and the browser add. The server's CPU seconds per click (user +
system time of the Streamlit process, read from /proc) are printed too: on a shared, busy machine
wall time varies with the neighbours, CPU time much less. Run with KPITREE_WARM=0 to leave the
background warm-up's CPU out of the per-click figure.

Usage: python benchmarks/bench_click.py [--deals 100000] [--clicks 8] [--wait 0]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kpitree import evaluate as ev  # noqa: E402
from kpitree.demo import generate, write_demo  # noqa: E402
from kpitree.drill import drill_dimensions, segment_table  # noqa: E402
from kpitree.ingest import ingest  # noqa: E402
from kpitree.periods import parse_period  # noqa: E402
from kpitree.tree import load_tree  # noqa: E402
from kpitree.workspace import Workspace  # noqa: E402

CLICK_ORDER = ["New ARR", "New business ARR", "Win rate (new)", "Average deal size (new)", "Leads",
               "Logo churn rate", "Net revenue retention", "Closed new deals", "Pipeline coverage", "ARR"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_click(ws: Workspace, tree, node_id: str) -> None:
    """What one click computes, minus Streamlit: the tree, the node's trend and segment split."""
    engine = ev.Engine(ws)
    period = parse_period("2026-10")
    ev.evaluate_tree(engine, tree, period)
    ev.trend(engine, tree, node_id, period, 18)
    node = tree.node(node_id)
    dims = drill_dimensions(engine, tree, node)
    if dims:
        segment_table(engine, node, period, period.previous(), dims[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--clicks", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1,
                        help="click the same boxes this many times (later rounds: every cache warm)")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="seconds between the first load and the first click (a user reading the tree while "
                             "the app warms its caches in the background)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    probe = generate(seed=7, scale=1.0, tables=["deals"])
    scale = args.deals / len(probe.tables["deals"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = generate(seed=7, scale=scale)
        files = [p for p in write_demo(data, tmp / "csv", compress=True) if p.suffix == ".gz"]
        ws = Workspace(tmp / "data" / "demo", create=True)
        ingest(ws, files)
        print(f"workspace: {len(data.tables['deals']):,} deals, {len(data.tables['events']):,} events")
        tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")

        node_ids = {n.label: n.id for n in tree.nodes}
        core = []
        for label in CLICK_ORDER[: args.clicks]:
            ev._CACHE.clear()
            start = time.perf_counter()
            core_click(ws, tree, node_ids[label])
            core.append(time.perf_counter() - start)

        port = free_port()
        env = {**os.environ, "KPITREE_DATA_DIR": str(tmp / "data")}
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                 "--server.headless", "true"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.2)
            clicks, cpu = [], []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
                page = browser.new_page(viewport={"width": 1500, "height": 1400})
                start = time.perf_counter()
                page.goto(url)
                box = "[data-testid='stVegaLiteChart'] path[aria-label*='label: {}']"
                page.locator(box.format("ARR")).first.wait_for(timeout=60000)
                first_load = time.perf_counter() - start
                time.sleep(args.wait)
                first_cpu = cpu_seconds(proc.pid)
                for label in CLICK_ORDER[: args.clicks] * args.rounds:
                    start, used = time.perf_counter(), cpu_seconds(proc.pid)
                    page.locator(box.format(label)).first.click()
                    page.get_by_role("heading", name=label, exact=True).first.wait_for(timeout=30000)
                    page.wait_for_function(
                        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30000)
                    clicks.append(time.perf_counter() - start)
                    cpu.append(cpu_seconds(proc.pid) - used)
                    print(f"  {label}: {clicks[-1]:.2f} s, server CPU {cpu[-1]:.2f} s")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"first page load: {first_load:.2f} s (server CPU {first_cpu:.2f} s, with the app's start)")
    print(f"click → panel (browser, {len(clicks)} clicks, first {args.wait:g} s after load): "
          f"median {statistics.median(clicks):.2f} s, "
          f"max {max(clicks):.2f} s; server CPU per click: median {statistics.median(cpu):.3f} s, "
          f"mean {statistics.mean(cpu):.3f} s")
    print(f"core work per click (cold cache, no browser): median {statistics.median(core) * 1000:.0f} ms, "
          f"max {max(core) * 1000:.0f} ms")
    print(f"browser + Streamlit overhead: {statistics.median(clicks) / statistics.median(core):.1f}× the core work")


if __name__ == "__main__":
    main()
