"""Snapshots: a tree's values, statuses, targets and causes frozen at a period, kept in its workspace.

Why: a consultant leaves the client a record of the diagnostic call, and a team running the weekly
review needs "what did it look like last time?" — the live tree only ever shows now. A snapshot is
what the tree page showed (every node's value, target and status, the red path and every cause
sentence from `explain_node` on the north star) with a name, who took it and when.

Where: `<workspace>/snapshots/<id>.json`, one file per snapshot, written to a temporary file in
the same folder and renamed over, so a reader never sees half a file and two people saving at once
never overwrite each other (each gets its own id). The folder is the workspace's own: it moves with
a rename, goes to the trash with a delete, and a path is only ever built from the workspace's
folder and an id this module made (checked against `ID_RE`), never from a user's text.

Compare: two snapshots, or a snapshot and now (`take_snapshot` without saving), side by side —
which nodes changed status, which causes are new, resolved or still open. Causes are matched by
the lever they sit at (node id): the same lever with a different top segment is still open, and
says where it moved.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import access
from .errors import KpiTreeError
from .format import fmt, fmt_change
from .periods import Period
from .tree import Tree

SNAPSHOT_DIR = "snapshots"
FORMAT = 1
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024  # a 500-node tree with every cause is ~1 MB; more is not ours
MAX_NAME = 120
ID_RE = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
KINDS = ("snapshot", "review", "now")
STATUS_ORDER = {"red": 0, "amber": 1, "no_data": 2, "no_target": 3, "green": 4}
_WRITE_LOCK = threading.Lock()


class SnapshotError(KpiTreeError):
    """A snapshot that cannot be saved or read; the message names the file and what to do."""


class NotAllowed(SnapshotError):
    """The user may read this workspace but not write to it."""


@dataclass(frozen=True)
class NodeState:
    """One node as it stood: what the tree page showed in its box."""

    id: str
    label: str
    owner: str
    level: str
    unit: str
    review: str
    status: str
    value: float | None
    target: float | None
    previous: float | None = None
    parent: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "owner": self.owner, "level": self.level, "unit": self.unit,
                "review": self.review, "status": self.status, "value": self.value, "target": self.target,
                "previous": self.previous, "parent": self.parent}


@dataclass(frozen=True)
class CauseState:
    """A lever where part of the north star's gap sat, in words, with the segment it sat in."""

    id: str
    label: str
    owner: str
    status: str
    sentence: str
    path: tuple[str, ...] = ()
    path_labels: tuple[str, ...] = ()
    segment: str | None = None  # "owner × segment: Dana Whitfield × Enterprise"
    reached: bool = True  # False: red, but below a parent on its baseline (listed apart)

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "owner": self.owner, "status": self.status,
                "sentence": self.sentence, "path": list(self.path), "path_labels": list(self.path_labels),
                "segment": self.segment, "reached": self.reached}


@dataclass(frozen=True)
class PathStep:
    """One step of the red path: the node and the sentence the tree page shows for it."""

    id: str
    sentence: str
    segment_sentence: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "sentence": self.sentence, "segment_sentence": self.segment_sentence}


@dataclass(frozen=True)
class Snapshot:
    id: str
    name: str
    kind: str  # snapshot (saved by hand), review (taken when a review was recorded), now (not saved)
    created_at: str  # ISO 8601, UTC
    created_by: str
    workspace: str
    tree: str  # the tree file's stem: which tree this was
    tree_name: str
    period: str
    grain: str
    as_of: str  # the data's date when it was taken
    nodes: tuple[NodeState, ...]
    causes: tuple[CauseState, ...] = ()
    red_path: tuple[PathStep, ...] = ()
    reviewed: tuple[str, ...] = ()  # review snapshots: the nodes the review went through
    file: str | None = field(default=None, compare=False)  # where it was read from (None: not saved)

    @property
    def when(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def title(self) -> str:
        """How a picker names it: "Monday review · 2026-10 · 2026-12-07 09:14 by maria"."""
        if self.kind == "now":
            return f"Now · {self.period}"
        return f"{self.name} · {self.period} · {self.when:%Y-%m-%d %H:%M} UTC by {self.created_by}"

    def node(self, node_id: str) -> NodeState | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def sentence_for(self, node_id: str) -> str:
        """Why this node is where it is, in the explanation's words: its cause sentence when it is a
        lever where part of the gap sits, else its red-path sentence, else the causes below it."""
        cause = next((c for c in self.causes if c.id == node_id), None)
        if cause is not None:
            return cause.sentence
        step = next((s for s in self.red_path if s.id == node_id), None)
        if step is not None:
            return " ".join(s for s in (step.sentence, step.segment_sentence) if s)
        below = [c.label for c in self.causes if node_id in c.path[:-1]]
        if below:
            return "Causes below it: " + ", ".join(below) + "."
        return ""

    def to_dict(self) -> dict:
        return {"format": FORMAT, "id": self.id, "name": self.name, "kind": self.kind,
                "created_at": self.created_at, "created_by": self.created_by, "workspace": self.workspace,
                "tree": self.tree, "tree_name": self.tree_name, "period": self.period, "grain": self.grain,
                "as_of": self.as_of, "nodes": [n.to_dict() for n in self.nodes],
                "causes": [c.to_dict() for c in self.causes], "red_path": [s.to_dict() for s in self.red_path],
                "reviewed": list(self.reviewed)}


# --- taking one -------------------------------------------------------------------------------------


def tree_key(tree: Tree) -> str:
    """Which tree a snapshot or note belongs to: its file's stem (the name pages and URLs use)."""
    if tree.source:
        return Path(tree.source).stem
    return re.sub(r"[^a-z0-9_-]+", "_", tree.name.lower()).strip("_") or "tree"


def new_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def check_name(name: str) -> str:
    """A snapshot's name as typed, trimmed; refused when empty or too long (said how)."""
    text = " ".join(str(name or "").split())
    if not text:
        raise SnapshotError("Give the snapshot a name, e.g. 'Board call October' or 'Before the price change'.")
    if len(text) > MAX_NAME:
        raise SnapshotError(f"The snapshot's name has {len(text)} characters; keep it under {MAX_NAME}.")
    return text


def _segment(part: Any) -> str | None:
    if part is None:
        return None
    return f"{part.dimension}: {part.segment}"


def take_snapshot(engine: Any, tree: Tree, period: Period, *, name: str = "Now", author: str = "",
                  kind: str = "now", evaluation: Any = None, explanation: Any = None,
                  reviewed: Iterable[str] = (), now: datetime | None = None) -> Snapshot:
    """The tree as it stands for `period`: every node's value, target and status, and the red path
    and causes of the north star (`explain_node(..., causes=True)`, against target).

    Pass the page's cached `evaluation` / `explanation` to skip computing them again; neither is
    changed. Nothing is written: `save_snapshot` does that.
    """
    from .evaluate import evaluate_tree

    if kind not in KINDS:
        raise SnapshotError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    name = check_name(name)
    evaluation = evaluation if evaluation is not None else evaluate_tree(engine, tree, period)
    if explanation is None:
        from .explain import explain_node

        explanation = explain_node(engine, tree, tree.root.id, evaluation.period, versus="target", causes=True,
                                   evaluation=evaluation)
    nodes = tuple(NodeState(n.id, n.label, n.owner, n.level, n.unit, n.review, n.status, _num(n.value),
                            _num(n.target), _num(n.previous), n.parent) for n in evaluation.nodes)
    causes = tuple(CauseState(c.id, c.label, c.owner, c.status, " ".join(c.sentences()), tuple(c.path),
                              tuple(c.path_labels), _segment(c.top_segment), bool(c.reached))
                   for c in getattr(explanation, "causes", ()) or ())
    path = tuple(PathStep(s.id, s.sentence, s.segment_sentence) for s in getattr(explanation, "red_path", ()) or ())
    when = now or datetime.now(UTC)
    workspace = getattr(getattr(engine, "workspace", None), "name", "") or ""
    return Snapshot(id=new_id(when), name=name, kind=kind, created_at=when.isoformat(timespec="milliseconds"),
                    created_by=author or "unknown", workspace=workspace, tree=tree_key(tree),
                    tree_name=tree.name, period=evaluation.period.key, grain=evaluation.period.grain.value,
                    as_of=str(evaluation.as_of), nodes=nodes, causes=causes, red_path=path,
                    reviewed=tuple(reviewed))


def as_saved(snapshot: Snapshot, name: str, author: str, kind: str = "snapshot", reviewed: Iterable[str] = (),
             now: datetime | None = None) -> Snapshot:
    """`snapshot` (usually of now, built from the page's cached figures) named, signed and stamped
    with a fresh id and time, ready for `save_snapshot`."""
    when = now or datetime.now(UTC)
    author = " ".join(str(author or "").split())[:MAX_NAME] or "unknown"
    return Snapshot(**{**snapshot.__dict__, "id": new_id(when), "name": check_name(name), "kind": kind,
                       "created_at": when.isoformat(timespec="milliseconds"), "created_by": author,
                       "reviewed": tuple(reviewed), "file": None})


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and out not in (float("inf"), float("-inf")) else None


# --- keeping them in the workspace -------------------------------------------------------------------


def workspace_folder(ws: Any, name: str, create: bool) -> Path:
    """`<workspace>/<name>`, refused if it (or a link in it) leads outside the workspace's folder."""
    root = Path(ws.root).resolve()
    folder = root / name
    if create:
        folder.mkdir(exist_ok=True)
    resolved = folder.resolve()
    if resolved.parent != root:
        raise SnapshotError(f"The folder {name!r} of workspace {root.name!r} points outside the workspace; "
                            f"remove that link ({folder}) and try again.")
    return resolved


def writable(ws: Any, user: access.User | None) -> None:
    """Raises NotAllowed unless `user` may write snapshots and notes in `ws` (editor or owner)."""
    if not access.can(user, ws, "edit"):
        raise NotAllowed(f"You can read workspace {Path(ws.root).name!r} but not write to it: saving a snapshot "
                         "or a review note needs an editor or owner. Ask one of its owners (Workspaces page).")


def write_json(folder: Path, file_name: str, data: dict) -> Path:
    """Writes `data` to `folder/file_name` through a temporary file in the same folder and a rename:
    a reader sees the old file or the new one, never half of one."""
    text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        target = folder / file_name
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def save_snapshot(ws: Any, snapshot: Snapshot, user: access.User | None) -> Snapshot:
    """Keeps `snapshot` in the workspace (as a `snapshot`, or a `review` it was taken as); returns it
    with its file. Refused for a viewer."""
    writable(ws, user)
    kind = "snapshot" if snapshot.kind == "now" else snapshot.kind
    saved = Snapshot(**{**snapshot.__dict__, "kind": kind, "workspace": Path(ws.root).name, "file": None})
    with _WRITE_LOCK:
        folder = workspace_folder(ws, SNAPSHOT_DIR, create=True)
        path = write_json(folder, f"{saved.id}.json", saved.to_dict())
    return Snapshot(**{**saved.__dict__, "file": str(path)})


def read_json(path: Path, what: str) -> dict:
    """A JSON object from `path`; SnapshotError naming the file and what to do otherwise."""
    hint = f"Move or delete {path.name} in {path.parent} (or restore it from a backup); everything else still works."
    try:
        size = path.stat().st_size
        if size > MAX_SNAPSHOT_BYTES:
            raise SnapshotError(f"The {what} file {path.name} is {size / 1e6:.0f} MB, more than a {what} can be. {hint}")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise SnapshotError(f"The {what} file {path.name} is not UTF-8 text. {hint}") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"The {what} file {path.name} is not valid JSON (line {exc.lineno}). {hint}") from None
    except OSError as exc:
        raise SnapshotError(f"The {what} file {path.name} cannot be read ({exc.strerror or exc}). {hint}") from None
    if not isinstance(data, dict):
        raise SnapshotError(f"The {what} file {path.name} does not hold a {what} (not a JSON object). {hint}")
    return data


def _text(data: dict, key: str, path: Path, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise SnapshotError(f"The snapshot file {path.name} has no readable {key!r}. Move or delete it in "
                            f"{path.parent} (or restore it from a backup); the other snapshots still work.")
    return value


def snapshot_from_dict(data: dict, path: Path) -> Snapshot:
    """A snapshot read back; SnapshotError naming the file for anything that is not one of ours."""
    hint = f"Move or delete it in {path.parent} (or restore it from a backup); the other snapshots still work."
    if data.get("format") != FORMAT:
        raise SnapshotError(f"The snapshot file {path.name} is of format {data.get('format')!r}, not {FORMAT}: it was "
                            f"not written by this version of KPI Tree. {hint}")
    try:
        nodes = tuple(NodeState(str(n["id"]), str(n["label"]), str(n.get("owner") or ""), str(n.get("level") or ""),
                                str(n.get("unit") or ""), str(n.get("review") or ""), str(n["status"]),
                                _num(n.get("value")), _num(n.get("target")), _num(n.get("previous")),
                                n.get("parent") if isinstance(n.get("parent"), str) else None)
                      for n in data["nodes"])
        causes = tuple(CauseState(str(c["id"]), str(c.get("label") or c["id"]), str(c.get("owner") or ""),
                                  str(c.get("status") or ""), str(c.get("sentence") or ""),
                                  tuple(str(p) for p in c.get("path") or ()),
                                  tuple(str(p) for p in c.get("path_labels") or ()),
                                  c.get("segment") if isinstance(c.get("segment"), str) else None,
                                  bool(c.get("reached", True)))
                       for c in data.get("causes") or ())
        steps = tuple(PathStep(str(s["id"]), str(s.get("sentence") or ""),
                               s.get("segment_sentence") if isinstance(s.get("segment_sentence"), str) else None)
                      for s in data.get("red_path") or ())
        reviewed = tuple(str(r) for r in data.get("reviewed") or ())
        snap = Snapshot(id=_text(data, "id", path), name=_text(data, "name", path), kind=_text(data, "kind", path),
                        created_at=_text(data, "created_at", path), created_by=_text(data, "created_by", path, ""),
                        workspace=_text(data, "workspace", path, ""), tree=_text(data, "tree", path),
                        tree_name=_text(data, "tree_name", path, ""), period=_text(data, "period", path),
                        grain=_text(data, "grain", path, ""), as_of=_text(data, "as_of", path, ""),
                        nodes=nodes, causes=causes, red_path=steps, reviewed=reviewed, file=str(path))
        snap.when  # noqa: B018 - a date that does not parse is refused here, not on the page
    except SnapshotError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotError(f"The snapshot file {path.name} is damaged ({type(exc).__name__}: "
                            f"{str(exc)[:80]}). {hint}") from None
    if snap.kind not in KINDS or not ID_RE.fullmatch(snap.id) or path.stem != snap.id:
        raise SnapshotError(f"The snapshot file {path.name} does not match its own id or kind. {hint}")
    return snap


def load_snapshot(ws: Any, snapshot_id: str) -> Snapshot:
    """One saved snapshot of `ws` by id (an id from a link is checked before any path is built)."""
    if not isinstance(snapshot_id, str) or not ID_RE.fullmatch(snapshot_id):
        raise SnapshotError(f"There is no snapshot {str(snapshot_id)[:40]!r} in this workspace: pick one from the list.")
    path = workspace_folder(ws, SNAPSHOT_DIR, create=False) / f"{snapshot_id}.json"
    if not path.is_file():
        raise SnapshotError(f"There is no snapshot {snapshot_id!r} in this workspace (deleted meanwhile?): pick one "
                            "from the list.")
    return snapshot_from_dict(read_json(path, "snapshot"), path)


def list_snapshots(ws: Any, tree: str | None = None, kind: str | None = None
                   ) -> tuple[list[Snapshot], list[str]]:
    """The workspace's saved snapshots, newest first (of one tree, one kind when given), and one
    sentence per file that cannot be read — naming the file and what to do; the others are listed."""
    folder = workspace_folder(ws, SNAPSHOT_DIR, create=False)
    if not folder.is_dir():
        return [], []
    out: list[Snapshot] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith(".tmp-"):
            continue
        try:
            snap = snapshot_from_dict(read_json(path, "snapshot"), path)
        except SnapshotError as exc:
            problems.append(str(exc))
            continue
        if (tree is None or snap.tree == tree) and (kind is None or snap.kind == kind):
            out.append(snap)
    out.sort(key=lambda s: (s.created_at, s.id), reverse=True)
    return out, problems


# --- comparing two -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeChange:
    id: str
    label: str
    owner: str
    unit: str
    before_status: str | None  # None: not in the earlier tree
    after_status: str | None
    before_value: float | None
    after_value: float | None
    before_target: float | None
    after_target: float | None

    @property
    def status_changed(self) -> bool:
        return self.before_status != self.after_status

    @property
    def change(self) -> float | None:
        if self.before_value is None or self.after_value is None:
            return None
        return self.after_value - self.before_value

    @property
    def what(self) -> str:
        """What changed, in words: "green → red; target 15.00× → 20.00×"."""
        if self.before_status is None:
            return "new in the tree"
        if self.after_status is None:
            return "no longer in the tree"
        parts = []
        if self.status_changed:
            parts.append(f"{status_word(self.before_status)} → {status_word(self.after_status)}")
        if self.before_target != self.after_target:
            parts.append(f"target {fmt(self.before_target, self.unit)} → {fmt(self.after_target, self.unit)}")
        return "; ".join(parts) or "same status"


@dataclass(frozen=True)
class CauseChange:
    id: str
    label: str
    owner: str
    state: str  # new, open (still), resolved
    sentence: str  # the later sentence (the earlier one for a resolved cause)
    before_segment: str | None = None
    after_segment: str | None = None

    @property
    def where(self) -> str:
        if self.state == "open" and self.before_segment != self.after_segment:
            return f"now {self.after_segment or 'no single segment'} (was {self.before_segment or 'no single segment'})"
        return (self.after_segment if self.state != "resolved" else self.before_segment) or ""


@dataclass(frozen=True)
class Comparison:
    before: Snapshot
    after: Snapshot
    nodes: tuple[NodeChange, ...]
    causes: tuple[CauseChange, ...]
    notes: tuple[str, ...] = ()

    @property
    def status_changes(self) -> list[NodeChange]:
        return [n for n in self.nodes if n.status_changed]

    def causes_in(self, state: str) -> list[CauseChange]:
        return [c for c in self.causes if c.state == state]

    def summary(self) -> str:
        """One line: "3 nodes changed status (2 worse); causes: 1 new, 2 resolved, 4 still open."."""
        changed = self.status_changes
        worse = sum(1 for n in changed if n.before_status and n.after_status
                    and STATUS_ORDER.get(n.after_status, 9) < STATUS_ORDER.get(n.before_status, 9))
        counts = {s: len(self.causes_in(s)) for s in ("new", "resolved", "open")}
        head = (f"{len(changed)} node{'s' if len(changed) != 1 else ''} changed status"
                + (f" ({worse} worse)" if changed else ""))
        return (f"{head}; causes: {counts['new']} new, {counts['resolved']} resolved, "
                f"{counts['open']} still open.")

    def node_rows(self, only_changed: bool = False) -> list[dict[str, str]]:
        """Rows for a table or CSV: one per node, what changed first, then status and value before and
        after (`before`/`after` are named by `headings`). `only_changed`: nodes whose status changed,
        or whose target changed within one period (across two periods each has its own target)."""
        same_period = self.before.period == self.after.period
        rows = []
        for n in self.nodes:
            if only_changed and not n.status_changed and not (same_period and n.before_target != n.after_target):
                continue
            rows.append({"node": n.label, "what changed": n.what if same_period else _status_only(n),
                         "status before": status_word(n.before_status), "status after": status_word(n.after_status),
                         "value before": fmt(n.before_value, n.unit), "value after": fmt(n.after_value, n.unit),
                         "change": fmt_change(n.change, n.unit) if n.change is not None else "—",
                         "owner": n.owner})
        return rows

    def headings(self) -> tuple[str, str]:
        """What "before" and "after" are: "Board call · 2026-10 · 2026-12-07 09:14 UTC by maria"."""
        return self.before.title, self.after.title

    def cause_groups(self) -> list[tuple[str, list[CauseChange]]]:
        """The causes as the page lists them: new, still open, resolved (empty groups left out)."""
        groups = [("New causes", self.causes_in("new")), ("Still open", self.causes_in("open")),
                  ("Resolved", self.causes_in("resolved"))]
        return [(title, items) for title, items in groups if items]

    def cause_rows(self) -> list[dict[str, str]]:
        order = {"new": 0, "open": 1, "resolved": 2}
        return [{"cause": {"new": "new", "open": "still open", "resolved": "resolved"}[c.state], "lever": c.label,
                 "owner": c.owner, "where": c.where, "sentence": c.sentence}
                for c in sorted(self.causes, key=lambda c: order[c.state])]


def _status_only(n: NodeChange) -> str:
    if n.before_status is None or n.after_status is None or not n.status_changed:
        return n.what if n.before_status is None or n.after_status is None else "same status"
    return f"{status_word(n.before_status)} → {status_word(n.after_status)}"


STATUS_WORDS = {"no_target": "no target", "no_data": "no data", "too_few": "too few to tell",
                "not_judged": "not judged", None: "—"}


def status_word(status: str | None) -> str:
    """A status as the Review and Owners pages and their CSVs write it: "no target", "not judged" (a person's
    mean with no peers to compare it with, `owners.NOT_JUDGED`), "too few to tell"; red, amber, green and
    maturing as they are. Every status a snapshot can hold is a word here, never "not_judged"."""
    return STATUS_WORDS.get(status, status.replace("_", " ") if status else "—")


def compare(before: Snapshot, after: Snapshot) -> Comparison:
    """`before` and `after` side by side: every node's status and value in both (nodes of either
    tree), and each cause (by lever) new in `after`, resolved since `before`, or still open."""
    notes = []
    if before.tree != after.tree:
        notes.append(f"These are two different trees ({before.tree_name or before.tree} and "
                     f"{after.tree_name or after.tree}): only nodes with the same id are compared.")
    if before.period != after.period:
        notes.append(f"The periods differ ({before.period} and {after.period}): a change of status may be the month, "
                     "not the business.")
    b_nodes = {n.id: n for n in before.nodes}
    a_nodes = {n.id: n for n in after.nodes}
    order = [n.id for n in after.nodes] + [i for i in b_nodes if i not in a_nodes]
    nodes = []
    for nid in order:
        b, a = b_nodes.get(nid), a_nodes.get(nid)
        ref = a or b
        assert ref is not None
        nodes.append(NodeChange(nid, ref.label, ref.owner, ref.unit, b.status if b else None, a.status if a else None,
                                b.value if b else None, a.value if a else None, b.target if b else None,
                                a.target if a else None))
    b_causes = {c.id: c for c in before.causes}
    a_causes = {c.id: c for c in after.causes}
    causes = []
    for cid, c in a_causes.items():
        old = b_causes.get(cid)
        causes.append(CauseChange(cid, c.label, c.owner, "open" if old else "new", c.sentence,
                                  old.segment if old else None, c.segment))
    for cid, c in b_causes.items():
        if cid not in a_causes:
            causes.append(CauseChange(cid, c.label, c.owner, "resolved", c.sentence, c.segment, None))
    return Comparison(before, after, tuple(nodes), tuple(causes), tuple(notes))
