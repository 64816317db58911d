"""Review mode: cadence (declared or seed default), due nodes, notes that survive a restart and stay
in their workspace, closing actions, and "since last review"."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import ROOT

from kpitree import access
from kpitree.evaluate import Engine
from kpitree.periods import parse_period
from kpitree.review import (
    Notes,
    action_rows,
    cadences,
    due_nodes,
    next_due,
    open_actions,
    record_review,
    since_last_review,
)
from kpitree.snapshots import NotAllowed, SnapshotError, take_snapshot
from kpitree.tree import load_tree
from kpitree.workspace import Workspace

TREE = ROOT / "data" / "trees" / "revops.yaml"
MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def demo(demo_copy: Workspace) -> Workspace:
    return demo_copy


def test_cadence_from_the_tree_or_the_seed_default_by_level(tmp_path):
    tree = load_tree(TREE)
    every = cadences(tree)
    assert all(c.declared for c in every.values())
    assert every["arr"].every == "weekly" and every["grr"].every == "monthly"
    # the same tree with `review` left out everywhere: seed 002's defaults by level, and said so
    text = "\n".join(line for line in TREE.read_text().splitlines() if not line.strip().startswith("review:"))
    bare = tmp_path / "bare.yaml"
    bare.write_text(text)
    every = cadences(load_tree(bare))
    assert not any(c.declared for c in every.values())
    assert every["arr"].every == "weekly"  # north star
    assert every["nrr"].every == "weekly"  # driver
    assert every["grr"].every == "monthly"  # core (supporting)
    assert every["win_rate"].every == "weekly"  # lever


def test_next_due_by_cadence():
    assert next_due(date(2026, 1, 31), "monthly") == date(2026, 2, 28)
    assert next_due(date(2026, 11, 30), "quarterly") == date(2027, 2, 28)
    assert next_due(date(2026, 12, 7), "weekly") == date(2026, 12, 14)
    assert next_due(date(2026, 12, 31), "daily") == date(2027, 1, 1)


def test_a_review_then_the_next_one_opens_with_what_changed(demo):
    tree = load_tree(TREE)
    engine = Engine(demo)
    now = take_snapshot(engine, tree, parse_period("2026-10"))
    statuses = {n.id: n.status for n in now.nodes}
    notes = Notes(demo)
    due = due_nodes(tree, statuses, [], [], MONDAY.date())
    assert len(due) == len(tree.nodes)  # never reviewed: everything is due, red first
    assert due[0].status == "red" and due[-1].status in ("green", "amber")
    assert since_last_review(demo, now) is None

    note = notes.add(tree, "win_rate", decision="Dana reviews every Enterprise deal over $50k", owner="Alex Romero (CRO)",
                     due=date(2026, 12, 14), note="Enterprise win rate 5.9%", user=access.LOCAL, author="maria",
                     now=MONDAY)
    record_review(demo, now, [d.node for d in due], access.LOCAL, author="maria", now=MONDAY)

    # a week and a day later: the weekly nodes are due again, the monthly ones are not
    later = date(2026, 12, 15)
    again = {d.node for d in due_nodes(tree, statuses, notes.for_tree("revops")[0],
                                       [s for s in _reviews(demo)], later)}
    assert "arr" in again and "win_rate" in again
    assert "grr" not in again and "sales_cycle_days" not in again  # monthly
    # and the next review opens with the deltas against the last one (next month's numbers here)
    november = take_snapshot(engine, tree, parse_period("2026-11"))
    delta = since_last_review(demo, november)
    assert delta is not None and delta.before.kind == "review" and delta.before.period == "2026-10"
    assert any("periods differ" in n for n in delta.notes)
    assert len(delta.nodes) == len(tree.nodes)
    assert [a.id for a in open_actions(notes.for_tree("revops")[0])] == [note.id]


def _reviews(ws):
    from kpitree.review import reviews

    return reviews(ws, "revops")


def test_closing_an_action(demo):
    tree = load_tree(TREE)
    notes = Notes(demo)
    note = notes.add(tree, "leads", decision="Move $20k from Paid Search to Events", owner="Lena Park (VP Marketing)",
                     due=date(2026, 12, 1), user=access.LOCAL, author="maria", now=MONDAY)
    rows = action_rows([note], date(2026, 12, 7))
    assert rows[0]["state"] == "open, 6 days overdue"
    closed = notes.close(note.id, user=access.LOCAL, author="lena", closing="Budget moved on 3 Dec")
    assert not closed.open and closed.closed_by == "lena"
    assert open_actions(notes.all()[0]) == []
    assert action_rows(notes.all()[0], date(2026, 12, 7))[0]["state"].startswith("closed by lena ")
    with pytest.raises(SnapshotError, match="already closed by lena"):
        notes.close(note.id, user=access.LOCAL, author="x")


def test_a_viewer_cannot_write_or_close_notes(demo):
    tree = load_tree(TREE)
    access.set_member(demo, "vera", "viewer")
    access.set_member(demo, "eddie", "editor")
    notes = Notes(demo)
    with pytest.raises(NotAllowed):
        notes.add(tree, "arr", decision="x", owner="y", due=None, user=access.User("vera"), author="vera")
    note = notes.add(tree, "arr", decision="x", owner="y", due=None, user=access.User("eddie"), author="eddie")
    with pytest.raises(NotAllowed):
        notes.close(note.id, user=access.User("vera"), author="vera")
    with pytest.raises(SnapshotError, match="Write the decision"):
        notes.add(tree, "arr", decision="  ", owner="y", due=None, user=access.LOCAL, author="m")
    with pytest.raises(SnapshotError, match="has no node"):
        notes.add(tree, "nope", decision="x", owner="y", due=None, user=access.LOCAL, author="m")


def test_notes_survive_a_restart_and_stay_in_their_workspace(demo, tmp_path):
    """A note written by one process is read by another (nothing kept in memory), and a second
    workspace sees none of the first one's notes."""
    other = tmp_path / "data" / "other"
    other.mkdir()
    script = textwrap.dedent(f"""
        from datetime import date
        from kpitree import access
        from kpitree.review import Notes
        from kpitree.tree import load_tree
        from kpitree.workspace import Workspace
        note = Notes(Workspace({str(demo.root)!r})).add(
            load_tree({str(TREE)!r}), "nrr", decision="Call the three SMB churners", owner="Priya Nair (VP Customer Success)",
            due=date(2026, 12, 11), user=access.LOCAL, author="priya")
        print(note.id)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    written = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                             check=True).stdout.strip()
    notes, problems = Notes(Workspace(demo.root)).all()
    assert problems == []
    assert [(n.id, n.node, n.written_by, n.due, n.open) for n in notes] == [
        (written, "nrr", "priya", "2026-12-11", True)]
    assert Notes(Workspace(other)).all() == ([], [])
    # and closed here, it reads closed in a new process
    Notes(demo).close(written, user=access.LOCAL, author="maria")
    check = textwrap.dedent(f"""
        from kpitree.review import Notes
        from kpitree.workspace import Workspace
        n = Notes(Workspace({str(demo.root)!r})).all()[0][0]
        print(n.closed_by, n.open)
    """)
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=120,
                         check=True).stdout.strip()
    assert out == "maria False"


def test_a_damaged_note_file_is_named(demo):
    tree = load_tree(TREE)
    notes = Notes(demo)
    notes.add(tree, "arr", decision="x", owner="y", due=None, user=access.LOCAL, author="m")
    (demo.root / "review" / "notes" / "20260101-000000-abcdef.json").write_text("[1, 2")
    good, problems = notes.all()
    assert len(good) == 1
    assert len(problems) == 1 and "20260101-000000-abcdef.json is not valid JSON" in problems[0]


# --- the Review page through AppTest ---------------------------------------------------------------


def _page(data_dir: Path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("KPITREE_DATA_DIR", str(data_dir))
    at = AppTest.from_file(str(ROOT / "views" / "5_Review.py"), default_timeout=120)
    at.query_params.update({"ws": "demo", "tree": "revops", "period": "2026-10"})
    return at


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_review_page_notes_a_review_and_snapshots(demo, monkeypatch):
    from apptest_utils import failures, unescaped

    at = _page(demo.root.parent, monkeypatch).run()
    assert not failures(at)
    assert at.markdown[0].value == "### Review · RevOps KPI tree · 2026-10"
    assert any("No review of this tree has been recorded yet" in unescaped(i.value) for i in at.info)
    due = next(d.value for d in at.dataframe if "due since" in d.value.columns)
    assert len(due) == len(load_tree(TREE).nodes) and due.iloc[0]["status"] == "red"

    at.selectbox(key="rv_note_node").set_value("win_rate")
    at.text_input(key="rv_note_decision").input("Dana reviews every Enterprise deal over $50k")
    _button(at, "Save note").click().run()
    assert not failures(at)
    assert any("Note saved on Win rate (new)" in unescaped(s.value) for s in at.success)
    actions = next(d.value for d in at.dataframe if "decision" in d.value.columns)
    assert actions.iloc[0]["owner"] == "Alex Romero (CRO)"  # no owner typed: the node's owner
    assert actions.iloc[0]["node"] == "Win rate (new)"

    _button(at, "Record this review").click().run()
    assert not failures(at)
    assert any("Last review: Review " in unescaped(c.value) for c in at.caption)
    due = [d.value for d in at.dataframe if "due since" in d.value.columns]
    assert not due  # everything was just reviewed

    at.text_input(key="rv_snap_name").input("Board call")
    _button(at, "Save snapshot").click().run()
    assert not failures(at)
    assert any("Snapshot saved: Board call (2026-10)" in unescaped(s.value) for s in at.success)
    # since last review (top of the page) and the comparison (snapshots tab): the same causes, still open
    folded = [e.label for e in at.expander]
    assert len(folded) == 2 and all(f.startswith("Still open (") for f in folded) and folded[0] == folded[1]
    assert not any(m.value.startswith("**New causes") for m in at.markdown)
    saved = next(d.value for d in at.dataframe if "kind" in d.value.columns)
    assert list(saved["kind"]) == ["snapshot", "review"] and saved["name"][0] == "Board call"

    _button(at, "Close action").click().run()
    assert any("Action closed." in unescaped(s.value) for s in at.success)
    assert any("No open action on this tree." in unescaped(c.value) for c in at.caption)


def test_review_page_for_a_viewer_writes_nothing(demo, monkeypatch, tmp_path):
    from apptest_utils import unescaped

    from kpitree import access as acc

    users = tmp_path / "users.yaml"
    users.write_text("users:\n  vera: {}\n")
    monkeypatch.setenv("KPITREE_USERS_FILE", str(users))
    acc.set_member(demo, "vera", "viewer")
    at = _page(demo.root.parent, monkeypatch)
    at.session_state[acc.SESSION_KEY] = "vera"
    at.run()
    assert not at.exception
    assert any("needs an editor or owner" in unescaped(i.value) for i in at.info)
    assert _button(at, "Save note").disabled and _button(at, "Record this review").disabled
    assert _button(at, "Save snapshot").disabled
    assert not (demo.root / "snapshots").exists() and not (demo.root / "review").exists()


# --- the command line ------------------------------------------------------------------------------


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    from kpitree.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_snapshot_and_review_verbs(demo, capsys, tmp_path):
    import csv
    import io
    import json

    ws = str(demo.root)
    code, out, _ = _cli(capsys, "snapshot", "save", "--workspace", ws, "--tree", str(TREE), "--period", "2026-10",
                        "--name", "Board call", "--by", "maria", "--format", "json")
    assert code == 0
    saved = json.loads(out)
    assert saved["name"] == "Board call" and saved["created_by"] == "maria" and saved["period"] == "2026-10"
    code, out, _ = _cli(capsys, "snapshot", "list", "--workspace", ws, "--format", "json")
    assert [s["id"] for s in json.loads(out)["snapshots"]] == [saved["id"]]
    code, out, _ = _cli(capsys, "snapshot", "compare", "--workspace", ws, "--tree", str(TREE), saved["id"], "now",
                        "--format", "json")
    result = json.loads(out)
    assert code == 0 and result["status_changes"] == [] and {c["state"] for c in result["causes"]} == {"open"}

    code, out, _ = _cli(capsys, "review", "note", "--workspace", ws, "--tree", str(TREE), "--node", "leads",
                        "--decision", "Move $20k from Paid Search to Events", "--owner", HOSTILE_OWNER, "--by", "maria",
                        "--format", "json")
    note = json.loads(out)
    assert code == 0 and note["owner"] == HOSTILE_OWNER and note["due"]  # no --due: the node's next review
    code, _, err = _cli(capsys, "review", "note", "--workspace", ws, "--tree", str(TREE), "--node", "leads",
                        "--decision", "y", "--due", "31/10/2025")  # day-first: one sentence, bad input, nothing written
    assert code == 2 and err.strip() == "error: --due must be a date written YYYY-MM-DD, e.g. 2026-11-15; got '31/10/2025'"
    code, out, _ = _cli(capsys, "review", "show", "--workspace", ws, "--tree", str(TREE), "--period", "2026-10",
                        "--format", "json")
    shown = json.loads(out)
    assert shown["since_last_review"] is None and [a["id"] for a in shown["open_actions"]] == [note["id"]]
    due = {d["id"] for d in shown["due"]}
    assert due == {n.id for n in load_tree(TREE).nodes} - {"leads"}  # the note just written counts as its review
    assert _cli(capsys, "review", "record", "--workspace", ws, "--tree", str(TREE), "--period", "2026-10")[0] == 0
    code, out, _ = _cli(capsys, "review", "show", "--workspace", ws, "--tree", str(TREE), "--period", "2026-10")
    assert "Since last review:\nbefore: Review " in out and "0 nodes changed status" in out
    assert "Due for review (0):" in out

    target = tmp_path / "monday.csv"
    code, out, _ = _cli(capsys, "review", "owners", "--workspace", ws, "--tree", str(TREE), "--period", "2026-10",
                        "--csv", str(target))
    table = list(csv.reader(io.StringIO(target.read_text())))
    assert code == 0 and table[0][0] == "owner"
    assert any(row[0] == "'" + HOSTILE_OWNER for row in table)  # an action's owner, neutralised
    code, out, _ = _cli(capsys, "review", "close", "--workspace", ws, note["id"], "--done", "moved", "--by", "lena")
    assert code == 0 and out.startswith("closed: Leads: Move $20k")

    # failures are one line and exit 2, never a traceback
    code, _, err = _cli(capsys, "review", "close", "--workspace", ws, note["id"])
    assert code == 2 and err.startswith("error: That action was already closed by lena")
    code, _, err = _cli(capsys, "snapshot", "compare", "--workspace", ws, "../../etc/passwd")
    assert code == 2 and "pick one from the list" in err
    code, _, err = _cli(capsys, "review", "note", "--workspace", ws, "--tree", str(TREE), "--node", "nope",
                        "--decision", "x")
    assert code == 2 and "has no node 'nope'" in err


HOSTILE_OWNER = '=HYPERLINK("x")'


def test_review_page_names_damaged_files(demo, monkeypatch):
    from apptest_utils import failures, unescaped

    (demo.root / "snapshots").mkdir()
    (demo.root / "snapshots" / "20260101-000000-abcdef.json").write_text("{oops")
    (demo.root / "review" / "notes").mkdir(parents=True)
    (demo.root / "review" / "notes" / "20260102-000000-abcdef.json").write_text('{"id": 3}')
    at = _page(demo.root.parent, monkeypatch).run()
    assert not failures(at)
    warnings = [unescaped(w.value) for w in at.warning]
    assert any("snapshot file 20260101-000000-abcdef.json is not valid JSON" in w and "Move or delete" in w
               for w in warnings)
    assert any("review note file 20260102-000000-abcdef.json is damaged" in w for w in warnings)
    assert any("No review of this tree has been recorded yet" in unescaped(i.value) for i in at.info)
