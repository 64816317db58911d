"""Shared fixtures: a fresh workspace loaded from inline CSV text, the way users load files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from kpitree.ingest import ingest
from kpitree.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.csv"
    path.write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    return path


def make_workspace(root: Path, **tables: str) -> Workspace:
    """A workspace under `root` holding exactly the given inline CSV tables."""
    ws = Workspace(root / "ws", create=True)
    src = root / "src"
    src.mkdir(exist_ok=True)
    ingest(ws, [_write(src, name, text) for name, text in tables.items()])
    return ws


@pytest.fixture
def load_ws(tmp_path: Path) -> Callable[..., Workspace]:
    """`load_ws(deals="deal_id,...\\nD1,...")` → a workspace holding exactly those tables."""
    return lambda **tables: make_workspace(tmp_path, **tables)
