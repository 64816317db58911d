"""`--tree` takes a tree YAML file or the name of a workspace tree or template on every verb that opens a tree
(a trial's `evaluate --tree revops` said "cannot read tree file" while `report` took the name)."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from kpitree.cli import main
from kpitree.history import TreeStore
from kpitree.tree import load_tree


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def demo(demo_copy):
    return str(demo_copy.root)


@pytest.mark.parametrize("given", ["revops", str(ROOT / "data" / "trees" / "revops.yaml")])
def test_evaluate_takes_a_template_name_or_a_file(capsys, demo, given):
    code, out, err = run(capsys, "evaluate", "--workspace", demo, "--tree", given, "--period", "2026-10",
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)["period"] == "2026-10" and json.loads(out)["nodes"][0]["id"] == "arr"


def test_explain_and_snapshot_take_a_template_name(capsys, demo):
    code, out, err = run(capsys, "explain", "--workspace", demo, "--tree", "revops", "--node", "win_rate",
                         "--period", "2026-10", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["node"] == "win_rate"
    code, out, err = run(capsys, "snapshot", "save", "--workspace", demo, "--tree", "revops", "--period", "2026-10",
                         "--name", "Board call")
    assert code == 0, err
    code, out, err = run(capsys, "snapshot", "list", "--workspace", demo, "--tree", "revops", "--format", "json")
    assert code == 0, err
    assert [s["tree"] for s in json.loads(out)["snapshots"]] == ["revops"]
    # a filter by name: a tree that is gone still lists (nothing), never "no tree"
    code, out, err = run(capsys, "snapshot", "list", "--workspace", demo, "--tree", "gone", "--format", "json")
    assert code == 0 and json.loads(out)["snapshots"] == [], err


def test_a_workspace_tree_by_name(capsys, demo_copy):
    """A tree published in the workspace as "mine" (renamed) is found by its name."""
    import dataclasses

    tree = dataclasses.replace(load_tree(ROOT / "data" / "trees" / "revops.yaml"), name="Mine")
    TreeStore(demo_copy.trees_dir).publish(tree, "mine", "tester")
    code, text, err = run(capsys, "evaluate", "--workspace", str(demo_copy.root), "--tree", "mine", "--period",
                          "2026-10")
    assert code == 0 and text.startswith("Mine — 2026-10"), err


def test_an_unknown_tree_is_one_plain_line(capsys, demo):
    code, out, err = run(capsys, "evaluate", "--workspace", demo, "--tree", "nosuch", "--period", "2026-10")
    assert code == 2 and "Traceback" not in err
    assert "no tree 'nosuch': give a tree YAML file, a tree of workspace" in err and "revops" in err
