"""`suggest --targets` re-plans the active tree's suggested targets from the data as it is now."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, make_workspace
from test_explain import DEALS


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpitree", *args], capture_output=True, text=True, cwd=ROOT)


def test_resuggest_needs_an_active_tree_then_publishes_a_new_version(tmp_path):
    ws = make_workspace(tmp_path, deals=DEALS)
    missing = _run("suggest", "--workspace", str(ws.root), "--targets")
    assert missing.returncode != 0 and "no active published tree" in missing.stderr
    assert "Traceback" not in missing.stderr
    first = _run("suggest", "--workspace", str(ws.root), "--activate")
    assert first.returncode == 0, first.stderr
    again = _run("suggest", "--workspace", str(ws.root), "--targets")
    assert again.returncode == 0, again.stderr
    assert "v2:" in again.stdout and "suggested target(s) planned again" in again.stdout
