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
    declared: set[str] = set()
    if tree.source:
        text, _ = read_tree_text(tree.source)
        raw, _ = read_yaml(text, tree.source) if text is not None else (None, [])
        items = raw.get("nodes") if isinstance(raw, dict) else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and item.get("review") in REVIEWS:
                declared.add(str(item.get("id")))
    names = {v: k for k, v in LEVELS.items()}
    out = {}
    for n in tree.nodes:
        if n.id in declared or not tree.source:
            out[n.id] = Cadence(n.id, n.review, True)
        else:
            out[n.id] = Cadence(n.id, SEED_CADENCE.get(names.get(n.level, ""), "weekly"), False)
    return out


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
