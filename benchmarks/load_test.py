"""Load test: many sessions clicking nodes on one server, as a team would.

Starts the app (`streamlit run app.py` on a free port, over a fresh copy of the demo workspace so
nothing is cached), opens N sessions and has each click nodes for a while, then prints what a team
would feel: errors, hangs, the median and p95 time from a click to its panel, and the server's
memory over time.

The sessions speak Streamlit's own websocket protocol (the protobuf messages a browser sends and
receives: `BackMsg.rerun_script` with the node selectbox's new value, then the page's elements up
to `script_finished`), not a browser: twenty Chromium tabs drawing Vega charts take both cores of
a small machine themselves, and the figure would measure the browsers, not the server. A click
here is what the Tree page's node selectbox (or a box click) sends; "click → panel" is the time
from sending it to the end of that rerun (the panel's heading, explanation, trend, segments and
usage charts all sent), and "heading" the time to the panel's heading.

    .venv/bin/python benchmarks/load_test.py                 # 20 sessions, 2 minutes
    .venv/bin/python benchmarks/load_test.py --sessions 8 --seconds 60 --think 0.5 2
    .venv/bin/python benchmarks/load_test.py --load-at 60    # and a command-line load of the deals half-way

With `--load-at`, a reader may see the old data, the new data, or one of the two clean messages
a load causes ("… replaced by a load … reload the page", "… a load is running …"); those are
counted apart from errors.

Exit status 1 when a session saw an error or a hang.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
NODE_PICKER = "Selected node (or click a box)"
HANG_SECONDS = 60.0  # a click with no finished rerun after this long counts as a hang
GIVE_UP_SECONDS = 180.0  # …and after this long the session stops waiting for it
RSS_EVERY = 5.0
LOAD_WORDS = re.compile(r"replaced by a load|a load is running")  # the clean messages of a load (workspace.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    """The process's resident memory (VmRSS) in MiB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Stats:
    clicks: list[tuple[float, float, float | None]] = field(default_factory=list)  # (at, to finish, to heading)
    cpu: dict[str, float] = field(default_factory=dict)  # server CPU seconds: total, after the first pages
    first_pages_done: float | None = None
    first_pages: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: set[str] = field(default_factory=set)
    load_messages: list[str] = field(default_factory=list)  # what readers were told while a load ran
    load: dict = field(default_factory=dict)
    hangs: list[str] = field(default_factory=list)


class Session:
    """One browser tab's conversation with the server: reruns out, page elements back."""

    def __init__(self, number: int, url: str, stats: Stats) -> None:
        self.number = number
        self.url = url
        self.stats = stats
        self.query = "ws=demo"
        self.picker_id: str | None = None
        self.options: list[str] = []
        self.running = False
        self.finished = asyncio.Event()
        self.heading_at: float | None = None
        self.expect_heading: str | None = None
        self.ws = None

    async def receive(self) -> None:
        async for frame in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(frame)
            kind = msg.WhichOneof("type")
            if kind == "delta":
                self._element(msg.delta)
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "session_status_changed":
                self.running = msg.session_status_changed.script_is_running
            elif kind == "script_finished":
                if msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    self.running = False
                    self.finished.set()

    def _element(self, delta) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type")
        if kind == "selectbox" and el.selectbox.label == NODE_PICKER:
            self.picker_id = el.selectbox.id
            self.options = list(el.selectbox.options)
        elif kind == "exception":
            self.stats.errors.append(f"session {self.number}: exception {el.exception.type}: "
                                     f"{el.exception.message[:200]}")
        elif kind == "alert":
            body = el.alert.body.strip().splitlines()[0][:200] if el.alert.body.strip() else ""
            if el.alert.format == el.alert.ERROR and LOAD_WORDS.search(body):
                self.stats.load_messages.append(body)
            elif el.alert.format == el.alert.ERROR:
                self.stats.errors.append(f"session {self.number}: error message: {body}")
            elif el.alert.format == el.alert.WARNING:
                self.stats.warnings.add(body)
        elif kind == "markdown" and self.expect_heading and el.markdown.body.startswith("#### "):
            shown = re.sub(r"\\(.)", r"\1", el.markdown.body)  # labels are shown Markdown-escaped
            if self.heading_at is None and self.expect_heading in shown:
                self.heading_at = time.monotonic()

    async def rerun(self, widget: tuple[str, str] | None = None) -> tuple[float, float | None] | None:
        """Sends a rerun (with the node picker's new value), waits for it to finish; its time
        and the time to the panel's heading, or None for a hang."""
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while self.running and time.monotonic() < deadline:  # a rerun the page started itself
            self.finished.clear()
            try:
                await asyncio.wait_for(self.finished.wait(), 1.0)
            except TimeoutError:
                pass
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        if widget is not None:
            w = state.widget_states.widgets.add()
            w.id, w.string_value = widget
        self.finished.clear()
        self.heading_at = None
        started = time.monotonic()
        await self.ws.send(msg.SerializeToString())
        try:
            await asyncio.wait_for(self.finished.wait(), HANG_SECONDS)
        except TimeoutError:
            self.stats.hangs.append(f"session {self.number}: no finished rerun {HANG_SECONDS:g} s after "
                                    f"{'a click on ' + widget[1] if widget else 'opening the page'}")
            try:
                await asyncio.wait_for(self.finished.wait(), GIVE_UP_SECONDS - HANG_SECONDS)
            except TimeoutError:
                return None
            return None
        done = time.monotonic()
        return done - started, (self.heading_at - started if self.heading_at else None)

    async def run(self, until: float, think: tuple[float, float], rng: random.Random, t0: float) -> None:
        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        async with connect(ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=60) as ws:
            self.ws = ws
            receiver = asyncio.create_task(self.receive())
            try:
                first = await self.rerun()
                if first is None:
                    return
                self.stats.first_pages.append(first[0])
                if not self.picker_id:
                    self.stats.errors.append(f"session {self.number}: the first page has no node picker")
                    return
                current = None
                while time.monotonic() < until:
                    await asyncio.sleep(rng.uniform(*think))
                    if time.monotonic() >= until:
                        break
                    choice = rng.choice([o for o in self.options if o != current] or self.options)
                    self.expect_heading = choice.split(" — ")[0]
                    at = time.monotonic() - t0
                    got = await self.rerun((self.picker_id, choice))
                    if got is None:
                        return
                    current = choice
                    self.stats.clicks.append((at, got[0], got[1]))
            finally:
                receiver.cancel()


async def load_later(at: float, workspace: Path, stats: Stats) -> None:
    """A command-line load of the demo's deals into the served workspace, `at` seconds in."""
    await asyncio.sleep(at)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kpitree", "ingest", "--workspace", str(workspace),
        str(ROOT / "data" / "demo" / "deals.csv.gz"), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    stats.load = {"at_s": at, "seconds": round(time.monotonic() - started, 1), "exit": proc.returncode,
                  "said": (err or out).decode(errors="replace").strip().splitlines()[-1:]}


async def drive(url: str, sessions: int, seconds: float, think: tuple[float, float], seed: int,
                pid: int, load_at: float | None = None, workspace: Path | None = None,
                ) -> tuple[Stats, list[tuple[float, float]]]:
    stats = Stats()
    memory: list[tuple[float, float]] = []
    t0 = time.monotonic()
    until = t0 + seconds

    async def sample() -> None:
        while True:
            value = rss_mib(pid)
            if value is not None:
                memory.append((time.monotonic() - t0, value))
            await asyncio.sleep(RSS_EVERY)

    sampler = asyncio.create_task(sample())
    rngs = [random.Random(seed + i) for i in range(sessions)]
    cpu_start = cpu_seconds(pid)

    async def one(i: int) -> None:
        await asyncio.sleep(rngs[i].uniform(0, 2))  # users arrive within two seconds
        try:
            await Session(i + 1, url, stats).run(until, think, rngs[i], t0)
        except Exception as exc:  # noqa: BLE001 - a dropped connection is an error of the run
            stats.errors.append(f"session {i + 1}: {type(exc).__name__}: {exc}")

    loader = [load_later(load_at, workspace, stats)] if load_at is not None and workspace is not None else []
    await asyncio.gather(*(one(i) for i in range(sessions)), *loader)
    sampler.cancel()
    cpu_end = cpu_seconds(pid)
    if cpu_start is not None and cpu_end is not None:
        stats.cpu["total"] = cpu_end - cpu_start
        stats.cpu["wall"] = time.monotonic() - t0
    value = rss_mib(pid)
    if value is not None:
        memory.append((time.monotonic() - t0, value))
    return stats, memory


def start_app(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "KPITREE_DATA_DIR": str(data_dir), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless",
         "true", "--server.address", "127.0.0.1", "--logger.level", "warning",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the app did not start: {proc.stderr.read().decode()[-2000:]}")


def report(stats: Stats, memory: list[tuple[float, float]], sessions: int, seconds: float,
           think: tuple[float, float]) -> dict:
    times = [c[1] for c in stats.clicks]
    headings = [c[2] for c in stats.clicks if c[2] is not None]
    out = {
        "sessions": sessions, "seconds": seconds, "think_seconds": list(think), "clicks": len(times),
        "errors": len(stats.errors), "hangs": len(stats.hangs),
        "click_to_panel_s": {"median": statistics.median(times) if times else None,
                             "p95": percentile(times, 0.95), "p99": percentile(times, 0.99),
                             "max": max(times, default=None)},
        "click_to_heading_s": {"median": statistics.median(headings) if headings else None,
                               "p95": percentile(headings, 0.95)},
        "first_page_s": {"median": statistics.median(stats.first_pages) if stats.first_pages else None,
                         "max": max(stats.first_pages, default=None)},
        "rss_mib": [(round(t), round(v)) for t, v in memory],
    }
    print(f"\n{sessions} sessions clicking for {seconds:g} s (think {think[0]:g}-{think[1]:g} s between clicks)")
    print(f"clicks: {len(times)}   errors: {len(stats.errors)}   hangs: {len(stats.hangs)}")
    if stats.cpu and times:
        per = stats.cpu["total"] / (len(times) + len(stats.first_pages))
        out["server_cpu_s"] = {"total": round(stats.cpu["total"], 1), "per_rerun": round(per, 3)}
        print(f"server CPU: {stats.cpu['total']:.0f} s over {stats.cpu['wall']:.0f} s of wall time "
              f"({stats.cpu['total'] / stats.cpu['wall']:.2f} cores busy), {per:.2f} s per rerun "
              f"(first pages and clicks); load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for line in (stats.errors + stats.hangs)[:20]:
        print(f"  ! {line}")
    if times:
        c = out["click_to_panel_s"]
        print(f"click -> panel (rerun finished): median {c['median']:.2f} s, p95 {c['p95']:.2f} s, "
              f"p99 {c['p99']:.2f} s, max {c['max']:.2f} s")
        by_minute: dict[int, list[float]] = {}
        for at, took, _ in stats.clicks:
            by_minute.setdefault(int(at // 30), []).append(took)
        print("  by 30 s window: " + ", ".join(f"{k * 30}-{k * 30 + 30}s median {statistics.median(v):.2f} "
                                               f"(n={len(v)})" for k, v in sorted(by_minute.items())))
    if headings:
        h = out["click_to_heading_s"]
        print(f"click -> panel heading: median {h['median']:.2f} s, p95 {h['p95']:.2f} s "
              f"(the clicked node's heading seen after {len(headings)} of {len(times)} clicks)")
    if stats.first_pages:
        f = out["first_page_s"]
        print(f"first page (fresh server, all sessions at once): median {f['median']:.2f} s, max {f['max']:.2f} s")
    if stats.load:
        out["load"] = {**stats.load, "messages": len(stats.load_messages)}
        print(f"command-line load at {stats.load['at_s']:g} s: took {stats.load['seconds']:g} s, exit "
              f"{stats.load['exit']} ({' '.join(stats.load['said'])[:160]}); readers told: "
              f"{len(stats.load_messages)} clean message(s) {sorted(set(stats.load_messages))[:2]}")
    if stats.warnings:
        print("warnings shown: " + "; ".join(sorted(stats.warnings)[:5]))
    if memory:
        print("server RSS (MiB) over time: " + ", ".join(f"{t:.0f}s {v:.0f}" for t, v in memory))
        late = [v for t, v in memory if t >= 60]
        if late:
            print(f"  after the first minute: {min(late):.0f}-{max(late):.0f} MiB (peak {max(v for _, v in memory):.0f})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--think", type=float, nargs=2, default=(0.5, 2.0), metavar=("MIN", "MAX"),
                    help="seconds a user reads between two clicks (uniform)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--url", help="drive a server already running (RSS is then not sampled)")
    ap.add_argument("--load-at", type=float, help="seconds in: load the demo's deals again from the command line")
    args = ap.parse_args(argv)
    source = ROOT / "workspaces" / "demo"
    if not args.url and not (source / "kpitree.duckdb").exists():
        raise SystemExit("the demo workspace is missing: run `make run` (or `python -m kpitree.demo_setup`) first")
    with tempfile.TemporaryDirectory(prefix="kpitree-load-") as tmp:
        proc = None
        if args.url:
            url, pid = args.url.rstrip("/"), -1
        else:
            shutil.copytree(source, Path(tmp) / "demo")
            port = free_port()
            proc = start_app(Path(tmp), port)
            url, pid = f"http://127.0.0.1:{port}", proc.pid
        try:
            served = None if args.url else Path(tmp) / "demo"
            stats, memory = asyncio.run(drive(url, args.sessions, args.seconds, tuple(args.think), args.seed, pid,
                                              args.load_at, served))
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    out = report(stats, memory, args.sessions, args.seconds, tuple(args.think))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 1 if stats.errors or stats.hangs or stats.load.get("exit", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
