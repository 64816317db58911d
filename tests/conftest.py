"""Shared fixtures: a fresh workspace loaded from inline CSV text, the way users load files."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kpitree.ingest import ingest
from kpitree.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
# AppTest pages run in this process: no background warm-up threads outliving their test (the real
# app in `running_app` keeps it on)
os.environ.setdefault("KPITREE_WARM", "0")


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.csv"
    path.write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    return path


def rows(ws: Workspace, sql: str) -> list[tuple]:
    """Every row `sql` reads in the workspace."""
    with ws.connect() as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """An empty workspace (a test module's own `ws` fixture, where it has one, wins)."""
    return Workspace(tmp_path / "ws", create=True)


def make_workspace(root: Path, **tables: str) -> Workspace:
    """A workspace under `root` holding exactly the given inline CSV tables."""
    ws = Workspace(root / "ws", create=True)
    src = root / "src"
    src.mkdir(exist_ok=True)
    ingest(ws, [_write(src, name, text) for name, text in tables.items()])
    return ws


def copy_demo(root: Path) -> Workspace:
    """`root`/demo: a copy of the shipped demo workspace (built by `make demo-workspace`); tests never
    touch the real one."""
    source = ROOT / "workspaces" / "demo"
    if not (source / "kpitree.duckdb").exists():
        pytest.fail("the demo workspace is missing: run the tests through `make test`, which creates it")
    shutil.copytree(source, root / "demo")
    return Workspace(root / "demo")


@pytest.fixture
def demo_copy(tmp_path: Path) -> Workspace:
    """A private copy of the demo workspace, free to write snapshots and notes to."""
    return copy_demo(tmp_path / "data")


@pytest.fixture
def load_ws(tmp_path: Path) -> Callable[..., Workspace]:
    """`load_ws(deals="deal_id,...\\nD1,...")` → a workspace holding exactly those tables."""
    return lambda **tables: make_workspace(tmp_path, **tables)


# --- the app in a real browser ---------------------------------------------------------------

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> Path:
    """A data directory holding a copy of the shipped demo workspace (tests never touch the real one)."""
    root = tmp_path_factory.mktemp("data")
    copy_demo(root)
    return root


@contextmanager
def running_app(data_dir: Path, **env: str) -> Iterator[str]:
    """`streamlit run app.py` on a free port over `data_dir`; yields its URL, stops it after."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--logger.level", "warning"],
        # No file watcher: an edit elsewhere in the tree during a run would reload modules under live sessions.
        cwd=ROOT, env={**os.environ, "KPITREE_DATA_DIR": str(data_dir), "KPITREE_WARM": "1",
                       "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"the app did not start: {proc.stderr.read().decode()[-2000:]}")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def app_url(demo_data_dir) -> Iterator[str]:
    """The app over a copy of the demo workspace, for the whole session: the one server every browser
    test talks to (a server start and its first, cold run cost seconds each on a 2-core machine). A test
    that writes gets a workspace of its own in the same data directory (`own_workspace`); every cache
    and the Engine are per workspace path, so a new workspace is as uncached as a new server.
    $USER names who saves a tree version (the Builder test checks it)."""
    with running_app(demo_data_dir, USER="browser-test") as url:
        yield url


@pytest.fixture
def own_workspace(demo_data_dir) -> Callable[..., str]:
    """`own_workspace("switch")` → the name of a new copy of the demo workspace in the session app's data
    directory ("switch-1", then "switch-2" on a retry: never one an earlier attempt left half-written)."""
    source = ROOT / "workspaces" / "demo"

    def make(stem: str, ignore: Callable | None = None) -> str:
        if not (source / "kpitree.duckdb").exists():
            pytest.fail("the demo workspace is missing: run the tests through `make test`, which creates it")
        n = 1
        while (demo_data_dir / f"{stem}-{n}").exists():
            n += 1
        shutil.copytree(source, demo_data_dir / f"{stem}-{n}", ignore=ignore)
        return f"{stem}-{n}"

    return make


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1500, "height": 1600})
    pg = context.new_page()
    yield pg
    context.close()
