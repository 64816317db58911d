"""Review mode: which nodes are due by their cadence, a note per node with a decision, an owner and a
due date, and "since last review".

Seed 003 says "review weekly: the tree is not a document, it is a dashboard"; seed 002 gives each
level of a metric hierarchy its review frequency. A tree node's `review` key says how often it is
looked at; a node that leaves it out is reviewed as seed 002 says for its level (`SEED_CADENCE`),
and `cadences` says which nodes use that default, so the page can say so.

A *review* is recorded as a snapshot of kind "review" (`kpitree.snapshots`) that lists the nodes it
went through: the next review opens with the deltas against it (values and statuses then and now)
and the actions still open. A node was last reviewed at the latest review that went through it or
the latest note written on it, whichever is later; it is due once its cadence has passed since.

Notes live in `<workspace>/review/notes/<id>.json`, one file per note, written through a temporary
file and a rename (`snapshots.write_json`): each has who wrote it and when, and who closed its
action and when. They belong to one workspace and one tree (its file stem), and survive restarts
because nothing about them is kept in memory.
"""

from __future__ import annotations

import threading
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import access
from .snapshots import (
    ID_RE,
    MAX_NAME,
    Comparison,
    Snapshot,
    SnapshotError,
    as_saved,
    compare,
    list_snapshots,
    new_id,
    read_json,
    save_snapshot,
    tree_key,
    workspace_folder,
    writable,
    write_json,
)
from .tree import LEVELS, REVIEWS, Tree, read_tree_text, read_yaml

REVIEW_DIR = "review"
NOTES = "notes"
MAX_TEXT = 2000
# Seed 002, "Establishing a Metric Hierarchy": North Star weekly; Core KPIs weekly/monthly; supporting
# (diagnostic) metrics monthly/quarterly; operational metrics daily/weekly. Where the seed gives two,
# the more frequent one, as seed 003's rule 5 ("Review weekly") asks of the whole tree.
SEED_CADENCE = {"north_star": "weekly", "driver": "weekly", "core": "monthly", "operational": "weekly",
                "lever": "weekly"}
SEED_SOURCE = ("seed 002's metric hierarchy: north star weekly, drivers (core KPIs) weekly, core (supporting) "
               "metrics monthly, operational metrics and levers weekly")
_LOCK = threading.Lock()


# --- cadence ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cadence:
    node: str
    every: str  # daily, weekly, monthly, quarterly
    declared: bool  # False: the tree leaves it out and the seed's default for the level applies


def cadences(tree: Tree) -> dict[str, Cadence]:
    """Each node's review cadence, and whether the tree file states it (the parsed tree cannot tell:
    it fills a missing `review` with "monthly", so the file itself is read again)."""
    declared: frozenset[str] = frozenset()
    if tree.source:
        try:
            stamp = Path(tree.source).stat().st_mtime_ns
        except OSError:
            stamp = 0
        declared = _declared(str(tree.source), stamp)
    names = {v: k for k, v in LEVELS.items()}
    out = {}
    for n in tree.nodes:
        if n.id in declared or not tree.source:
            out[n.id] = Cadence(n.id, n.review, True)
        else:
            out[n.id] = Cadence(n.id, SEED_CADENCE.get(names.get(n.level, ""), "weekly"), False)
    return out


@lru_cache(maxsize=64)
def _declared(source: str, stamp: int) -> frozenset[str]:
    """Ids of the nodes whose `review` the tree file states (read once per file version: a page
    asks on every rerun)."""
    text, _ = read_tree_text(source)
    raw, _ = read_yaml(text, source) if text is not None else (None, [])
    items = raw.get("nodes") if isinstance(raw, dict) else None
    return frozenset(str(item.get("id")) for item in (items if isinstance(items, list) else ())
                     if isinstance(item, dict) and item.get("review") in REVIEWS)


def _due_date(text: str) -> date:
    """A due date typed on the command line; day-first or US forms are ambiguous, so only ISO is read."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise SnapshotError(f"--due must be a date written YYYY-MM-DD, e.g. 2026-11-15; got {text!r}") from None


def next_due(last: date, every: str) -> date:
    """The day a node reviewed on `last` is due again."""
    if every == "daily":
        return last + timedelta(days=1)
    if every == "weekly":
        return last + timedelta(days=7)
    months = 3 if every == "quarterly" else 1
    y, m = divmod(last.month - 1 + months, 12)
    year, month = last.year + y, m + 1
    return date(year, month, min(last.day, monthrange(year, month)[1]))


# --- notes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    id: str
    tree: str
    node: str
    node_label: str
    decision: str
    owner: str  # who does it
    due: str | None  # ISO date
    note: str
    written_by: str
    written_at: str  # ISO 8601 UTC
    closed_by: str | None = None
    closed_at: str | None = None
    closing: str = ""  # what was done, said when closing
    file: str | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def written(self) -> datetime:
        return datetime.fromisoformat(self.written_at)

    def overdue(self, today: date) -> bool:
        return self.open and self.due is not None and date.fromisoformat(self.due) < today

    def to_dict(self) -> dict:
        return {"format": 1, "id": self.id, "tree": self.tree, "node": self.node, "node_label": self.node_label,
                "decision": self.decision, "owner": self.owner, "due": self.due, "note": self.note,
                "written_by": self.written_by, "written_at": self.written_at, "closed_by": self.closed_by,
                "closed_at": self.closed_at, "closing": self.closing}


def _clean(text: Any, what: str, required: bool = False, limit: int = MAX_TEXT) -> str:
    value = " ".join(str(text or "").split()) if what != "note" else str(text or "").strip()
    if required and not value:
        raise SnapshotError(f"Write the {what}: " + {"decision": "what was decided, e.g. 'Dana reviews every "
                                                     "Enterprise deal over $50k before the proposal'.",
                                                     "owner": "who does it."}.get(what, "it cannot be empty."))
    if len(value) > limit:
        raise SnapshotError(f"The {what} has {len(value)} characters; keep it under {limit}.")
    return value


def _note_from(data: dict, path: Path) -> Note:
    hint = f"Move or delete {path.name} in {path.parent} (or restore it from a backup); the other notes still work."
    try:
        note = Note(id=str(data["id"]), tree=str(data["tree"]), node=str(data["node"]),
                    node_label=str(data.get("node_label") or data["node"]), decision=str(data["decision"]),
                    owner=str(data.get("owner") or ""), due=data.get("due") if isinstance(data.get("due"), str) else None,
                    note=str(data.get("note") or ""), written_by=str(data.get("written_by") or "unknown"),
                    written_at=str(data["written_at"]),
                    closed_by=data.get("closed_by") if isinstance(data.get("closed_by"), str) else None,
                    closed_at=data.get("closed_at") if isinstance(data.get("closed_at"), str) else None,
                    closing=str(data.get("closing") or ""), file=str(path))
        note.written  # noqa: B018 - dates that do not parse are refused here, not on a page
        if note.due is not None:
            date.fromisoformat(note.due)
        if note.closed_at is not None:
            datetime.fromisoformat(note.closed_at)
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"The review note file {path.name} is damaged ({type(exc).__name__}: {str(exc)[:80]}). "
                            f"{hint}") from None
    if not ID_RE.fullmatch(note.id) or path.stem != note.id:
        raise SnapshotError(f"The review note file {path.name} does not match its own id. {hint}")
    return note


class Notes:
    """The review notes of one workspace (all trees; `for_tree` picks one)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    def _dir(self, create: bool) -> Path:
        review = workspace_folder(self.ws, REVIEW_DIR, create=create)
        folder = review / NOTES
        if create:
            folder.mkdir(exist_ok=True)
        if folder.exists() and folder.resolve().parent != review:
            raise SnapshotError(f"The folder {folder} points outside the workspace; remove that link and try again.")
        return folder

    def all(self) -> tuple[list[Note], list[str]]:
        """Every readable note, oldest first, and one sentence per file that is not (naming it)."""
        folder = self._dir(create=False)
        if not folder.is_dir():
            return [], []
        notes, problems = [], []
        for path in sorted(folder.glob("*.json")):
            if path.name.startswith(".tmp-"):
                continue
            try:
                notes.append(_note_from(read_json(path, "review note"), path))
            except SnapshotError as exc:
                problems.append(str(exc))
        notes.sort(key=lambda n: (n.written_at, n.id))
        return notes, problems

    def for_tree(self, tree: str) -> tuple[list[Note], list[str]]:
        notes, problems = self.all()
        return [n for n in notes if n.tree == tree], problems

    def add(self, tree: Tree, node_id: str, *, decision: str, owner: str, due: date | None, note: str = "",
            user: access.User | None, author: str, now: datetime | None = None) -> Note:
        """Writes a note on `node_id` of `tree`; refused for a viewer, an unknown node, an empty
        decision or owner."""
        writable(self.ws, user)
        try:
            node = tree.node(node_id)
        except KeyError:
            raise SnapshotError(f"The tree {tree.name!r} has no node {node_id!r}: pick a node from the list.") from None
        when = now or datetime.now(UTC)
        item = Note(id=new_id(when), tree=tree_key(tree), node=node.id, node_label=node.label,
                    decision=_clean(decision, "decision", required=True),
                    owner=_clean(owner, "owner", required=True, limit=MAX_NAME),
                    due=due.isoformat() if due else None, note=_clean(note, "note"),
                    written_by=_clean(author, "name", limit=MAX_NAME) or "unknown",
                    written_at=when.isoformat(timespec="milliseconds"))
        with _LOCK:
            path = write_json(self._dir(create=True), f"{item.id}.json", item.to_dict())
        return Note(**{**item.__dict__, "file": str(path)})

    def close(self, note_id: str, *, user: access.User | None, author: str, closing: str = "",
              now: datetime | None = None) -> Note:
        """Closes a note's action (what was done optional); refused for a viewer or a closed action."""
        writable(self.ws, user)
        if not isinstance(note_id, str) or not ID_RE.fullmatch(note_id):
            raise SnapshotError("There is no such review note: pick one from the list.")
        with _LOCK:
            path = self._dir(create=False) / f"{note_id}.json"
            if not path.is_file():
                raise SnapshotError("That review note is no longer in this workspace (deleted meanwhile?): reload the page.")
            current = _note_from(read_json(path, "review note"), path)
            if not current.open:
                when_closed = (current.closed_at or "")[:16].replace("T", " ")
                raise SnapshotError(f"That action was already closed by {current.closed_by} at {when_closed} UTC.")
            when = now or datetime.now(UTC)
            done = Note(**{**current.__dict__, "closed_by": _clean(author, "name", limit=MAX_NAME) or "unknown",
                           "closed_at": when.isoformat(timespec="milliseconds"), "closing": _clean(closing, "note"),
                           "file": None})
            write_json(path.parent, path.name, done.to_dict())
        return Note(**{**done.__dict__, "file": str(path)})


# --- reviews ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    node: str
    label: str
    owner: str
    status: str
    every: str
    declared: bool
    last: date | None  # last reviewed (None: never)
    due_on: date

    def days_over(self, today: date) -> int:
        return (today - self.due_on).days


def reviews(ws: Any, tree: str) -> list[Snapshot]:
    """The recorded reviews of a tree, newest first (unreadable snapshot files are listed by
    `snapshots.list_snapshots`)."""
    return list_snapshots(ws, tree=tree, kind="review")[0]


def last_reviewed(tree: Tree, notes: list[Note], past: list[Snapshot]) -> dict[str, date]:
    """Per node, the day it was last reviewed: the latest review that went through it or note on it."""
    out: dict[str, date] = {}
    key = tree_key(tree)
    for snap in past:
        if snap.tree != key:
            continue
        day = snap.when.date()
        for nid in snap.reviewed:
            out[nid] = max(out.get(nid, day), day)
    for n in notes:
        if n.tree == key:
            day = n.written.date()
            out[n.node] = max(out.get(n.node, day), day)
    return out


def due_nodes(tree: Tree, statuses: dict[str, str], notes: list[Note], past: list[Snapshot], today: date,
              include_not_due: bool = False) -> list[Due]:
    """The nodes due for review on `today` by their cadence — never reviewed, or their cadence has
    passed since — red first, then by how long overdue. `statuses`: node id → status now."""
    every = cadences(tree)
    last = last_reviewed(tree, notes, past)
    rank = {"red": 0, "amber": 1, "no_data": 2, "no_target": 3, "green": 4}
    out = []
    for n in tree.walk():
        c = every[n.id]
        seen = last.get(n.id)
        due_on = next_due(seen, c.every) if seen else today
        if due_on <= today or include_not_due:
            out.append(Due(n.id, n.label, n.owner, statuses.get(n.id, ""), c.every, c.declared, seen, due_on))
    out.sort(key=lambda d: (d.due_on > today, rank.get(d.status, 5), d.due_on))
    return out


def record_review(ws: Any, now_snapshot: Snapshot, reviewed: list[str], user: access.User | None,
                  author: str, name: str | None = None, now: datetime | None = None) -> Snapshot:
    """Records that a review was held: the tree as it stands now, kept as a review snapshot listing
    the nodes it went through; the next review's "since last review" compares with it."""
    when = now or datetime.now(UTC)
    snap = as_saved(now_snapshot, name or f"Review {when:%Y-%m-%d}", author, kind="review", reviewed=reviewed,
                    now=when)
    return save_snapshot(ws, snap, user)


def since_last_review(ws: Any, now_snapshot: Snapshot) -> Comparison | None:
    """Values and statuses now against the last recorded review of the same tree (None before the first)."""
    past = reviews(ws, now_snapshot.tree)
    return compare(past[0], now_snapshot) if past else None


def open_actions(notes: list[Note]) -> list[Note]:
    """Actions not closed yet, the earliest due first (no due date last)."""
    return sorted((n for n in notes if n.open), key=lambda n: (n.due or "9999-12-31", n.written_at))


def action_rows(notes: list[Note], today: date) -> list[dict[str, str]]:
    """Rows for a table: node, decision, owner, due (overdue said), who wrote it and when, state."""
    rows = []
    for n in notes:
        state = "open" if n.open else f"closed by {n.closed_by} {n.closed_at[:10]}"
        if n.overdue(today):
            state = f"open, {(today - date.fromisoformat(n.due or '')).days} days overdue"
        rows.append({"node": n.node_label, "decision": n.decision, "owner": n.owner, "due": n.due or "—",
                     "state": state, "written": f"{n.written_by}, {n.written_at[:16].replace('T', ' ')} UTC",
                     "note": n.note, "done": n.closing})
    return rows


# --- command line: `python -m kpitree snapshot …` and `python -m kpitree review …` -------------------
# (kpitree/cli.py hooks these in with `add_review_commands(sub)` and handles their errors like every
# verb's: a KpiTreeError is one line on stderr and exit 2.) The command line acts as the server's own
# operator, like `ingest`: it may write in any workspace it can reach on disk.


def _view(args: Any) -> tuple[Any, Any, Tree, Any]:
    """(workspace, engine, tree, period) from --workspace, --tree and --period."""
    from .evaluate import Engine
    from .periods import resolve_period
    from .suggest import tree_for_workspace
    from .tree import load_tree
    from .workspace import Workspace

    ws = Workspace(args.workspace)
    tree = load_tree(args.tree or tree_for_workspace(ws))
    engine = Engine(ws)
    return ws, engine, tree, resolve_period(args.period, tree.grain, engine.as_of)


def _now(args: Any) -> tuple[Any, Tree, Snapshot]:
    from .snapshots import take_snapshot

    ws, engine, tree, period = _view(args)
    return ws, tree, take_snapshot(engine, tree, period, author=_by(args))


def _by(args: Any) -> str:
    from .history import default_user

    return getattr(args, "by", None) or default_user()


def _json(data: Any) -> None:
    import json
    import sys

    json.dump(data, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def _comparison_json(c: Comparison) -> dict:
    return {"before": c.before.title, "after": c.after.title, "summary": c.summary(), "notes": list(c.notes),
            "status_changes": [{"id": n.id, "label": n.label, "before": n.before_status, "after": n.after_status,
                                "before_value": n.before_value, "after_value": n.after_value,
                                "before_target": n.before_target, "after_target": n.after_target}
                               for n in c.status_changes],
            "causes": [{"id": x.id, "label": x.label, "owner": x.owner, "state": x.state, "where": x.where,
                        "sentence": x.sentence} for x in c.causes]}


def _print_comparison(c: Comparison) -> None:
    print(f"before: {c.before.title}\nafter:  {c.after.title}\n{c.summary()}")
    for note in c.notes:
        print(f"  note: {note}")
    for row in c.node_rows(only_changed=True):
        print(f"  {row['node']}: {row['what changed']} ({row['value before']} → {row['value after']}) — {row['owner']}")
    for title, items in c.cause_groups():
        print(f"{title}:")
        for x in items:
            print(f"  - {x.label} ({x.owner}): {x.sentence}")


def cmd_snapshot(args: Any) -> int:
    from .snapshots import as_saved, list_snapshots, load_snapshot, save_snapshot

    if args.action == "save":
        ws, _, now = _now(args)
        saved = save_snapshot(ws, as_saved(now, args.name, _by(args)), access.LOCAL)
        if args.format == "json":
            _json({**saved.to_dict(), "file": saved.file})
        else:
            red = sum(1 for n in saved.nodes if n.status == "red")
            print(f"saved snapshot {saved.id}: {saved.title} — {red} red, {len(saved.causes)} causes ({saved.file})")
        return 0
    if args.action == "list":
        from .workspace import Workspace

        ws = Workspace(args.workspace)
        key = None
        if args.tree:
            key = Path(args.tree).stem
        snaps, problems = list_snapshots(ws, tree=key)
        if args.format == "json":
            _json({"snapshots": [{"id": s.id, "name": s.name, "kind": s.kind, "tree": s.tree, "period": s.period,
                                  "created_at": s.created_at, "created_by": s.created_by} for s in snaps],
                   "problems": problems})
        else:
            for s in snaps:
                print(f"{s.id}  [{s.kind}] {s.tree}: {s.title}")
            for p in problems:
                print(f"warning: {p}")
            if not snaps:
                print(f"no snapshot in workspace {ws.name!r} yet")
        return 0
    # compare: the later side is a saved snapshot, or the tree now (--tree/--period, default the earlier one's period)
    from .workspace import Workspace

    before = load_snapshot(Workspace(args.workspace), args.before)
    if args.after == "now":
        args.period = args.period or before.period
        _, _, after = _now(args)
    else:
        after = load_snapshot(Workspace(args.workspace), args.after)
    result = compare(before, after)
    if args.format == "json":
        _json(_comparison_json(result))
    else:
        _print_comparison(result)
    return 0


def cmd_review(args: Any) -> int:
    from .owners import owners, owners_csv

    today = date.fromisoformat(args.today) if getattr(args, "today", None) else datetime.now(UTC).date()
    if args.action == "close":
        from .workspace import Workspace

        done = Notes(Workspace(args.workspace)).close(args.note_id, user=access.LOCAL, author=_by(args),
                                                       closing=args.done or "")
        if args.format == "json":
            _json(done.to_dict())
        else:
            print(f"closed: {done.node_label}: {done.decision} (by {done.closed_by})")
        return 0
    ws, tree, now = _now(args)
    key = tree_key(tree)
    store = Notes(ws)
    if args.action == "note":
        every = cadences(tree)
        if args.node not in every:
            raise SnapshotError(f"The tree {tree.name!r} has no node {args.node!r} (nodes: {', '.join(every)}).")
        due = _due_date(args.due) if args.due else next_due(today, every[args.node].every)
        note = store.add(tree, args.node, decision=args.decision, owner=args.owner or tree.node(args.node).owner,
                         due=due, note=args.note or "", user=access.LOCAL, author=_by(args))
        if args.format == "json":
            _json(note.to_dict())
        else:
            print(f"note {note.id} on {note.node_label}: {note.decision} — {note.owner}, due {note.due}")
        return 0
    notes, problems = store.for_tree(key)
    if args.action == "owners":
        from .evaluate import evaluate_tree
        from .owners import people_parts

        _, engine, _, period = _view(args)
        # "Reps (per owner)": each person the data names for the period with their own part, as on the page
        entries = owners(now, notes, tree, people_parts(engine, tree, evaluate_tree(engine, tree, period)))
        text = owners_csv(entries, today, red_only=not args.all)
        if args.csv:
            Path(args.csv).write_text(text, encoding="utf-8")
        if args.format == "json":
            from .owners import owner_rows

            _json({"period": now.period, "owners": owner_rows(entries, today, red_only=not args.all)})
        elif not args.csv:
            print(text, end="")
        else:
            print(f"wrote {args.csv}: {len(entries)} owners")
        return 0
    statuses = {n.id: n.status for n in now.nodes}
    past = reviews(ws, key)
    due = due_nodes(tree, statuses, notes, past, today)
    if args.action == "record":
        snap = record_review(ws, now, [d.node for d in due], access.LOCAL, author=_by(args))
        if args.format == "json":
            _json({"id": snap.id, "name": snap.name, "reviewed": list(snap.reviewed), "file": snap.file})
        else:
            print(f"recorded {snap.name} ({snap.id}): {len(snap.reviewed)} nodes reviewed, period {snap.period}")
        return 0
    delta = compare(past[0], now) if past else None
    actions = open_actions(notes)
    defaulted = sum(1 for c in cadences(tree).values() if not c.declared)
    if args.format == "json":
        _json({"tree": key, "period": now.period, "today": str(today),
               "since_last_review": _comparison_json(delta) if delta else None,
               "open_actions": [a.to_dict() for a in actions],
               "due": [{"id": d.node, "label": d.label, "owner": d.owner, "status": d.status, "cadence": d.every,
                        "cadence_declared": d.declared, "last_reviewed": str(d.last) if d.last else None,
                        "due_on": str(d.due_on)} for d in due],
               "problems": problems})
        return 0
    print(f"Review of {tree.name} — {now.period} (today {today})")
    if delta is None:
        print("Since last review: no review recorded yet (`review record` at the end of this one).")
    else:
        print("Since last review:")
        _print_comparison(delta)
    print(f"Open actions ({len(actions)}):")
    for a in actions:
        print(f"  {a.id}  {a.node_label}: {a.decision} — {a.owner}, due {a.due or '—'}"
              + (" (overdue)" if a.overdue(today) else ""))
    print(f"Due for review ({len(due)}):")
    for d in due:
        print(f"  [{d.status:>9}] {d.label} — {d.owner} ({d.every}{'' if d.declared else ', seed default'}; "
              f"last {d.last or 'never'})")
    if defaulted:
        print(f"{defaulted} node(s) have no review cadence in the tree and use {SEED_SOURCE}.")
    for p in problems:
        print(f"warning: {p}")
    return 0


def add_review_commands(sub: Any) -> None:
    """The `snapshot` and `review` verbs (see the section's comment)."""
    import argparse

    def common(p: argparse.ArgumentParser, view: bool = True) -> None:
        p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
        p.add_argument("--workspace", required=True, help="workspace directory")
        if view:
            p.add_argument("--tree", help="tree YAML file (default: the workspace's active tree)")
            p.add_argument("--period", help="period, e.g. 2026-10 (default: the latest complete one)")
        p.add_argument("--by", help="who is writing (default: your user name)")

    raw = argparse.RawDescriptionHelpFormatter
    snap = sub.add_parser("snapshot", help="save, list and compare snapshots of a tree (values, statuses, causes)",
                          description="Snapshots of a tree kept in the workspace.\n\nExamples:\n"
                          "  python -m kpitree snapshot save --workspace ws/demo --period 2026-10 --name 'Board call'\n"
                          "  python -m kpitree snapshot list --workspace ws/demo\n"
                          "  python -m kpitree snapshot compare --workspace ws/demo 20261207-091400-1a2b3c now",
                          formatter_class=raw)
    ssub = snap.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = ssub.add_parser("save", help="freeze the tree as it stands for a period")
    common(p)
    p.add_argument("--name", required=True, help="the snapshot's name, e.g. 'Board call October'")
    p = ssub.add_parser("list", help="the workspace's snapshots, newest first")
    common(p, view=False)
    p.add_argument("--tree", help="only this tree's (a tree file or its name)")
    p = ssub.add_parser("compare", help="two snapshots (or one and now) side by side")
    common(p)
    p.add_argument("before", help="snapshot id (from `snapshot list`)")
    p.add_argument("after", nargs="?", default="now", help="snapshot id, or now (default)")
    snap.set_defaults(func=cmd_snapshot)

    rev = sub.add_parser("review", help="the weekly review: due nodes, since last review, notes and actions, owners",
                         description="Review mode.\n\nExamples:\n"
                         "  python -m kpitree review show --workspace ws/demo\n"
                         "  python -m kpitree review note --workspace ws/demo --node win_rate --decision '…'\n"
                         "  python -m kpitree review close --workspace ws/demo NOTE_ID --done 'done on 3 Dec'\n"
                         "  python -m kpitree review record --workspace ws/demo\n"
                         "  python -m kpitree review owners --workspace ws/demo --csv monday.csv",
                         formatter_class=raw)
    rsub = rev.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = rsub.add_parser("show", help="since last review, open actions, nodes due by cadence")
    common(p)
    p.add_argument("--today", help="the review's date, YYYY-MM-DD (default today)")
    p = rsub.add_parser("note", help="write a note on a node: decision, owner, due date")
    common(p)
    p.add_argument("--node", required=True, help="node id")
    p.add_argument("--decision", required=True, help="what was decided")
    p.add_argument("--owner", help="who does it (default: the node's owner)")
    p.add_argument("--due", help="YYYY-MM-DD (default: the node's next review by its cadence)")
    p.add_argument("--note", help="what was said (optional)")
    p.add_argument("--today", help=argparse.SUPPRESS)
    p = rsub.add_parser("close", help="close an action (a note's id from `review show`)")
    common(p, view=False)
    p.add_argument("note_id")
    p.add_argument("--done", help="what was done (optional)")
    p = rsub.add_parser("record", help="record that the review was held (the next one compares with it)")
    common(p)
    p.add_argument("--today", help=argparse.SUPPRESS)
    p = rsub.add_parser("owners", help="who to talk to: owners, their red numbers and why, open actions (CSV)")
    common(p)
    p.add_argument("--all", action="store_true", help="every number, not only the red ones")
    p.add_argument("--csv", metavar="FILE", help="write the list as CSV to FILE (spreadsheet-safe cells)")
    p.add_argument("--today", help=argparse.SUPPRESS)
    rev.set_defaults(func=cmd_review)
