"""Real engines for the equality tests: a PostgreSQL server and a Spark session, started here.

Postgres: Debian's server binaries (`make test` installs the `postgresql` package when absent),
a cluster created with initdb in a temporary folder, started with pg_ctl on a free port and
stopped after; as root, the server runs as the `postgres` user (it refuses to run as root).
Spark: one local[2] session per test module. Both are plain context managers, imported by the
test modules (no conftest), so only the tests that need an engine start one.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kpitree.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
DEMO_DB = ROOT / "workspaces" / "demo" / "kpitree.duckdb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if not found:
        pytest.fail(f"PostgreSQL's {name} is missing: run the tests through `make test`, which installs the "
                    "postgresql package")
    return found


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server; yields its connection string (trust login, user kpitree)."""
    tmp = Path(tempfile.mkdtemp(prefix="kpitree-pg-"))
    data, port = tmp / "data", _free_port()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(tmp, "postgres")
        tmp.chmod(0o700)
    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            pytest.fail(f"{Path(args[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}")
    try:
        run(_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "kpitree", "--no-sync", "-E", "UTF8")
        run(_pg_bin("pg_ctl"), "-D", str(data), "-l", str(tmp / "server.log"), "-w", "-o",
            f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=64MB", "start")
        try:
            yield f"host=127.0.0.1 port={port} user=kpitree dbname=postgres"
        finally:
            run(_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remote_workspace(root: Path, engine: dict) -> Workspace:
    """A workspace whose settings point at an engine (nothing loaded locally)."""
    ws = Workspace(root, create=True)
    (ws.root / "workspace.json").write_text(json.dumps({"engine": engine}), encoding="utf-8")
    return ws


def demo_db() -> Path:
    if not DEMO_DB.exists():
        pytest.fail("the demo workspace is missing: run the tests through `make test`, which creates it")
    return DEMO_DB


# --- comparing results ---------------------------------------------------------------------------

MONEY_UNITS = frozenset({"money", "money_per_day"})
NOISE_FIELDS = frozenset({"interval", "z", "rate_z"})


def close(a: float | None, b: float | None, unit: str = "") -> bool:
    """Equal as the issue asks: money to the cent, everything else to 1e-9 (relative above 1)."""
    if a is None or b is None or a != a or b != b:
        return (a is None or a != a) == (b is None or b != b)
    if unit in MONEY_UNITS:
        return abs(a - b) < 0.005
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def same_structure(a: object, b: object, path: str = "") -> list[str]:
    """Where two JSON-like values differ (numbers compared with `close`); timings ignored."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key == "seconds":
                continue
            out += same_structure(a.get(key), b.get(key), f"{path}.{key}")
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in same_structure(x, y, f"{path}[{i}]")]
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool):
        # Within 1e-9 relative, or 1e-6 absolute: a residual is a difference of two sums of millions
        # ($0.27 of $13M ARR) whose float noise (5e-8) differs between two runs of DuckDB itself.
        if close(float(a), float(b)) or abs(a - b) < 1e-6:
            return []
        # The noise model (a segment's interval and z) subtracts sums of squared amounts (~1e14 on the demo:
        # `explain.evidence.share_var`, the history's spread), which keeps about 7 of the 16 digits: two
        # engines summing in another order agree there to 1e-6, not 1e-9 (z -16.0621892 vs -16.0621924).
        noise = path.rsplit(".", 1)[-1].split("[")[0] in NOISE_FIELDS
        return [] if noise and abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b)) else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


# The test JVM's own flags (the app's SQL settings are kept: `SparkRemote._start` still builds the
# workspace's session with them). A test module runs ~80 short statements in a fresh JVM, so much of
# its CPU is the C2 compiler optimising Catalyst code that runs a few times: stopping at C1 took
# test_engines_spark.py from 213-221 to 166 CPU-s (whole process tree, busy 2-core machine, runs
# interleaved with the old flags), and its peak memory from 1.59 to 1.30 GB with the serial
# collector. The app keeps the JVM's defaults, which pay off over a long session. Stopping at C1 also
# shrinks the JVM's default code cache (48 MB instead of 240): C1 compiles every hot method, the cache
# filled ("CodeCache is full. Compiler has been disabled", then "Out of space in CodeCache for
# adapters") and Spark refused every later query in one CI run of two; the cache is reserved back.
SPARK_TEST_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=240m"


def _start_spark_for_tests(master: str) -> None:
    """Starts this process's Spark context with the test JVM's flags, before the engine asks for it.

    JVM options only take effect when the JVM starts. The context gets the app's own settings
    (`spark.LOCAL_CONFIG`: the workspace's session, made by `SparkRemote._start` over this context,
    starts from them), so the tests run the app's SQL settings on a JVM tuned for short runs."""
    from pyspark.sql import SparkSession

    from kpitree.engines.spark import LOCAL_CONFIG

    java = f"{SPARK_TEST_JAVA_OPTIONS} {LOCAL_CONFIG.get('spark.driver.extraJavaOptions', '')}".strip()
    builder = SparkSession.builder.master(master).appName("kpitree-tests")
    for key, value in {**LOCAL_CONFIG, "spark.driver.extraJavaOptions": java}.items():
        builder = builder.config(key, value)
    builder.getOrCreate()


@contextmanager
def spark_demo(root: Path) -> Iterator[Workspace]:
    """The demo as Parquet files read by a Spark local[2] session; yields the workspace over them.

    One session per test module (starting one takes seconds of JVM start-up); its time limit is
    raised because a busy two-core machine makes Spark's per-statement overhead seconds long."""
    from kpitree.engines import EngineSettings, forget
    from kpitree.engines.load import to_parquet

    paths = to_parquet(demo_db(), root / "parquet")
    engine = {"kind": "spark", "master": "local[2]", "paths": {t: str(p) for t, p in paths.items()}}
    _start_spark_for_tests(engine["master"])
    ws = Workspace(root / "spark", create=True)
    (ws.root / "workspace.json").write_text(json.dumps({"engine": engine, "query_timeout": 900}), encoding="utf-8")
    try:
        yield ws
    finally:
        forget(EngineSettings.from_raw(engine))
        from pyspark import SparkContext

        if SparkContext._active_spark_context is not None:  # the JVM's memory back for the rest of the suite
            SparkContext._active_spark_context.stop()
