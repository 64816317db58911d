"""Crash trials: `kill -9` a command-line load at random moments; the workspace must hold either the old
or the new data, and open.

A workspace is loaded with one demo data set (the old state); a second data set (another seed) is then
loaded into copies of it, once to the end (the new state, per mode), and N more times killed with
SIGKILL: half of them after a random delay within the full load's duration, half at a random moment
of the swap (after the load says "writing the workspace", within the swap's measured duration). After each kill the copy is opened the
way the app opens it (read-only, sandboxed) and every canonical table is fingerprinted (row count and
an order-free hash of every row); the result must equal the old or the new state. Finally a load
into the crashed copy must run to the end (a killed load leaves no lock behind).

    .venv/bin/python benchmarks/crash_trials.py [--trials 20] [--scale 1] [--seed 16]

Prints one line per trial and the totals; exits 1 if any trial left a state that is neither.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kpitree.schema import TABLES  # noqa: E402
from kpitree.workspace import Workspace  # noqa: E402


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "kpitree", *args]


def run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cli(*args), cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed: {proc.stderr.strip()}")
    return proc


SWAP = "writing the workspace"


class Stages:
    """The stage lines a load prints (`--verbose`), with when each arrived, read as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.started = time.perf_counter()
        self.seen: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            with self._cond:
                self.seen.append((time.perf_counter() - self.started, line.rstrip()))
                self._cond.notify_all()
        with self._cond:
            self.seen.append((time.perf_counter() - self.started, "(ended)"))
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: any(text in m or m == "(ended)" for _, m in self.seen), timeout)

    def when(self, text: str) -> float:
        with self._cond:
            return next(t for t, m in self.seen if text in m)

    def last(self) -> str:
        with self._cond:
            stages = [m[7:] for _, m in self.seen if m.startswith("[")]
        return stages[-1] if stages else "(before its first stage)"

    def __str__(self) -> str:
        return "\n".join(m for _, m in self.seen)


def start(ws: Path, mode: str, files: list[str]) -> tuple[subprocess.Popen, Stages]:
    proc = subprocess.Popen(cli("ingest", "--workspace", str(ws), "--mode", mode, "--combine", "--verbose", *files),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, Stages(proc)


def fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    """Every canonical table: rows and the sum of each row's hash (same rows in any order, same sum)."""
    ws = Workspace(root)
    with ws.connect() as con:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = 'main'").fetchall()}
        out = {}
        for name in TABLES:
            if name in present:
                n, h = con.execute(f'SELECT count(*), sum(hash(CAST(t AS VARCHAR)))::HUGEINT FROM "{name}" AS t'
                                   ).fetchone()
                out[name] = (int(n), int(h or 0))
        return out


def leftovers(root: Path) -> int:
    """Half-written `__new_*` tables a killed load left (never read; the next load drops them: a trial whose
    reload leaves any is counted as broken)."""
    with Workspace(root).connect() as con:
        return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '\\_\\_new\\_%' "
                           "ESCAPE '\\'").fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--scale", type=float, default=1.0, help="demo size (1 ≈ 20k deals, 250k events)")
    parser.add_argument("--seed", type=int, default=16, help="seed of the random kill moments")
    parser.add_argument("--keep", help="keep the data and workspaces in this directory")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kpitree-crash-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        old_dir, new_dir = work / "old", work / "new"
        for seed, out in ((7, old_dir), (8, new_dir)):
            if not out.exists():
                run("demo", "--out", str(out), "--seed", str(seed), "--scale", str(args.scale))
        old_files = sorted(map(str, old_dir.glob("*.csv")))
        new_files = sorted(map(str, new_dir.glob("*.csv")))
        base = work / "base"
        shutil.rmtree(base, ignore_errors=True)
        run("ingest", "--workspace", str(base), *old_files)
        old = fingerprint(base)

        # The new state, the full load's duration and when its swap starts, per mode.
        expected: dict[str, dict] = {}
        duration: dict[str, float] = {}
        swap: dict[str, float] = {}
        for mode in ("replace", "append"):
            full = work / f"full-{mode}"
            shutil.rmtree(full, ignore_errors=True)
            shutil.copytree(base, full)
            proc, lines = start(full, mode, new_files)
            proc.wait()
            if proc.returncode != 0:
                raise SystemExit(f"the full load failed: {lines}")
            duration[mode] = time.perf_counter() - lines.started
            swap[mode] = duration[mode] - lines.when(SWAP)
            expected[mode] = fingerprint(full)
            assert expected[mode] != old, "the new data set must differ from the old"
        print(f"old state: {sum(n for n, _ in old.values()):,} rows in {len(old)} tables; full load of the new "
              f"data: replace {duration['replace']:.2f} s (swap {swap['replace']:.2f} s), append "
              f"{duration['append']:.2f} s (swap {swap['append']:.2f} s)")
        print(f"{'trial':>5} {'mode':8} {'kill at':>8} {'stage reached':44} {'state':6} {'open':>7} {'left':>4} "
              f"{'reload':>7}")

        counts = {"old": 0, "new": 0, "finished": 0, "BROKEN": 0}
        for trial in range(1, args.trials + 1):
            mode = "replace" if trial % 2 else "append"
            ws = work / f"trial-{trial:02d}"
            shutil.rmtree(ws, ignore_errors=True)
            shutil.copytree(base, ws)
            proc, lines = start(ws, mode, new_files)
            if trial % 4 in (1, 2):  # anywhere in the load
                time.sleep(rng.uniform(0.02, duration[mode]))
            else:  # within the swap, which writes the workspace file
                lines.wait_for(SWAP, timeout=600)
                time.sleep(rng.uniform(0.0, swap[mode]))
            finished = proc.poll() is not None
            if not finished:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_at = time.perf_counter() - lines.started
            reached = lines.last()[:44]
            t0 = time.perf_counter()
            try:
                got = fingerprint(ws)
                opened = f"{time.perf_counter() - t0:.2f} s"
                state = "old" if got == old else "new" if got == expected[mode] else "BROKEN"
                left = leftovers(ws)
            except Exception as exc:  # a trial reports what it found, never stops the rest
                opened, state, left = f"no: {type(exc).__name__}", "BROKEN", -1
            # A killed load leaves no lock and no state that stops the next load.
            t0 = time.perf_counter()
            reload = subprocess.run(cli("ingest", "--workspace", str(ws), *new_files[:1]), cwd=ROOT,
                                    capture_output=True, text=True)
            reloaded = f"{time.perf_counter() - t0:.1f} s" if reload.returncode == 0 else "FAILED"
            if reload.returncode != 0 or leftovers(ws):
                state = "BROKEN"
            counts["finished" if finished and state == "new" else state] += 1
            print(f"{trial:>5} {mode:8} {killed_at:7.2f}s {reached:44} {state:6} {opened:>7} {left:>4} {reloaded:>7}"
                  + ("  (finished before the kill)" if finished else ""), flush=True)
            if not args.keep:
                shutil.rmtree(ws, ignore_errors=True)
        print(f"\n{args.trials} kills: {counts['old']} old state, {counts['new']} new state, "
              f"{counts['finished']} finished before the kill, {counts['BROKEN']} broken")
        return 1 if counts["BROKEN"] else 0


if __name__ == "__main__":
    sys.exit(main())
