"""Snapshots on a copy of the demo workspace: saved, read back, compared; refused for a viewer;
damaged files named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from kpitree import access
from kpitree.evaluate import Engine
from kpitree.periods import parse_period
from kpitree.snapshots import (
    NotAllowed,
    SnapshotError,
    compare,
    list_snapshots,
    load_snapshot,
    save_snapshot,
    take_snapshot,
)
from kpitree.tree import load_tree
from kpitree.workspace import Workspace

PERIOD = parse_period("2026-10")


@pytest.fixture
def demo(tmp_path: Path, demo_copy: Workspace) -> Workspace:
    """A private copy of the demo workspace and of its revops tree."""
    shutil.copy(ROOT / "data" / "trees" / "revops.yaml", tmp_path / "revops.yaml")
    return demo_copy


def set_target(tree_file: Path, node: str, period: str, value: float) -> None:
    raw = yaml.safe_load(tree_file.read_text())
    item = next(n for n in raw["nodes"] if n["id"] == node)
    item["target"]["by_period"][period] = value
    tree_file.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_a_saved_snapshot_compared_with_now_after_a_target_change(demo, tmp_path):
    tree_file = tmp_path / "revops.yaml"
    engine = Engine(demo)
    before = take_snapshot(engine, load_tree(tree_file), PERIOD, name="Board call", author="maria")
    saved = save_snapshot(demo, before, access.LOCAL)
    assert Path(saved.file).parent == demo.root / "snapshots"
    assert not list((demo.root / "snapshots").glob(".tmp-*"))  # written through a temporary file, renamed

    # the plan tightens: sales cycle (new) must be 30 days, the demo's 48.7 days turn it red
    set_target(tree_file, "sales_cycle_days", "2026-10", 30.0)
    now = take_snapshot(engine, load_tree(tree_file), PERIOD)
    read_back = load_snapshot(demo, saved.id)
    assert read_back == saved
    result = compare(read_back, now)

    changed = {n.id: n for n in result.status_changes}
    assert set(changed) == {"sales_cycle_days"}
    cycle = changed["sales_cycle_days"]
    assert (cycle.before_status, cycle.after_status) == ("green", "red")
    assert cycle.what == "green → red; target 62.0 days → 30.0 days"
    assert cycle.change == pytest.approx(0.0)  # the value did not move: the target did

    new = result.causes_in("new")
    assert [c.id for c in new] == ["sales_cycle_days"]
    assert "Sales cycle (new)" in new[0].sentence
    assert not result.causes_in("resolved")
    assert {c.id for c in result.causes_in("open")} == {c.id for c in before.causes}  # every earlier cause stays
    assert {"win_rate", "avg_deal_size", "leads"} <= {c.id for c in before.causes}
    assert result.summary() == ("1 node changed status (1 worse); causes: 1 new, 0 resolved, "
                                f"{len(before.causes)} still open.")
    rows = result.node_rows(only_changed=True)
    assert rows == [{"node": "Sales cycle (new)", "owner": "Alex Romero (CRO)", "status before": "green",
                     "status after": "red", "value before": "48.7 days", "value after": "48.7 days",
                     "change": "0.0 d", "what changed": "green → red; target 62.0 days → 30.0 days"}]

    # and back: the cause is resolved against the later snapshot
    back = compare(now, read_back)
    assert [c.id for c in back.causes_in("resolved")] == ["sales_cycle_days"]


def test_loading_data_changes_the_snapshot(demo, tmp_path):
    """The other way a number moves: new data. Leads from a file of only Paid Search leads replace
    the table, so the leads count collapses and its cause moves."""
    from kpitree.ingest import ingest

    tree = load_tree(tmp_path / "revops.yaml")
    before = take_snapshot(Engine(demo), tree, PERIOD, name="Before the reload", author="maria")
    lines = ["lead_id,created_date,channel,owner,segment"] + [
        f"L{i},2026-10-{1 + i % 28:02d},Paid Search,Sam Ortiz,SMB" for i in range(40)]
    src = tmp_path / "leads.csv"
    src.write_text("\n".join(lines) + "\n")
    ingest(demo, [src])
    after = take_snapshot(Engine(demo), tree, PERIOD, name="After", author="maria")
    result = compare(before, after)
    leads = next(n for n in result.nodes if n.id == "leads")
    assert leads.before_value == 3566 and leads.after_value == 40
    assert leads.after_status == "red"
    assert any(n.status_changed for n in result.nodes)


def test_a_viewer_cannot_save_and_an_editor_can(demo, tmp_path):
    access.set_member(demo, "vera", "viewer")
    access.set_member(demo, "eddie", "editor")
    snap = take_snapshot(Engine(demo), load_tree(tmp_path / "revops.yaml"), PERIOD, name="x", author="vera")
    vera, eddie = access.User("vera"), access.User("eddie")
    with pytest.raises(NotAllowed, match="needs an editor or owner"):
        save_snapshot(demo, snap, vera)
    with pytest.raises(NotAllowed):
        save_snapshot(demo, snap, None)
    assert not (demo.root / "snapshots").exists()
    assert save_snapshot(demo, snap, eddie).file


def test_damaged_files_are_named_and_the_others_still_listed(demo, tmp_path):
    snap = take_snapshot(Engine(demo), load_tree(tmp_path / "revops.yaml"), PERIOD, name="Good", author="m")
    good = save_snapshot(demo, snap, access.LOCAL)
    folder = demo.root / "snapshots"
    (folder / "20260101-000000-abcdef.json").write_text("{not json")
    (folder / "20260102-000000-abcdef.json").write_text(json.dumps({"format": 1, "id": "20260102-000000-abcdef"}))
    (folder / "20260103-000000-abcdef.json").write_bytes(b"\xff\xfe")
    listed, problems = list_snapshots(demo)
    assert [s.id for s in listed] == [good.id]
    assert len(problems) == 3
    assert "20260101-000000-abcdef.json is not valid JSON (line 1)" in problems[0]
    assert all("Move or delete" in p for p in problems)
    with pytest.raises(SnapshotError, match="20260101-000000-abcdef.json"):
        load_snapshot(demo, "20260101-000000-abcdef")
    with pytest.raises(SnapshotError, match="pick one from the list"):
        load_snapshot(demo, "../../etc/passwd")  # an id from a link never becomes a path


def test_snapshots_stay_in_their_workspace(demo, tmp_path):
    other = Workspace(tmp_path / "data" / "other", create=True)
    snap = take_snapshot(Engine(demo), load_tree(tmp_path / "revops.yaml"), PERIOD, name="Mine", author="m")
    saved = save_snapshot(demo, snap, access.LOCAL)
    assert list_snapshots(other) == ([], [])
    with pytest.raises(SnapshotError):
        load_snapshot(other, saved.id)
    # a snapshots folder that is a link out of the workspace is refused, not followed
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (other.root / "snapshots").symlink_to(outside)
    with pytest.raises(SnapshotError, match="points outside the workspace"):
        save_snapshot(other, snap, access.LOCAL)
    assert not list(outside.iterdir())


def test_a_name_is_needed(demo, tmp_path):
    with pytest.raises(SnapshotError, match="Give the snapshot a name"):
        take_snapshot(Engine(demo), load_tree(tmp_path / "revops.yaml"), PERIOD, name="  ", author="m")


def test_every_status_is_a_word():
    """Every status the tree (evaluate) and the owners' list give a number is written in words on the Review
    page, the Owners page and their CSVs — "not judged" (a person's mean with no peers), never "not_judged"."""
    import dataclasses

    from kpitree import evaluate, owners
    from kpitree.snapshots import NodeState, Snapshot, status_word

    statuses = {evaluate.GREEN, evaluate.AMBER, evaluate.RED, evaluate.NO_TARGET, evaluate.NO_DATA,
                evaluate.MATURING, owners.TOO_FEW, owners.NOT_JUDGED}
    words = {s: status_word(s) for s in statuses}
    assert words[owners.NOT_JUDGED] == "not judged" and words[owners.TOO_FEW] == "too few to tell"
    assert words[evaluate.NO_TARGET] == "no target" and words[evaluate.RED] == "red" and status_word(None) == "—"
    assert not [w for w in words.values() if "_" in w], words
    # a person's number not judged in one snapshot, red in the next: the comparison says it in words
    node = NodeState("win_rate:Ann", "Win rate — Ann", "Ann", "lever", "percent", "weekly", owners.NOT_JUDGED,
                     0.2, None)
    before = Snapshot("20261101-000000-aaaaaa", "Before", "snapshot", "2026-11-01T00:00:00+00:00", "t", "ws", "t",
                      "T", "2026-10", "month", "2026-10-31", (node,))
    after = dataclasses.replace(before, id="20261108-000000-bbbbbb", nodes=(dataclasses.replace(node, status="red"),))
    row = compare(before, after).node_rows()[0]
    assert (row["status before"], row["status after"]) == ("not judged", "red")
