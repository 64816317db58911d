"""Trees kept in a workspace: drafts, published trees, the active one, and every version with who/when/what.

Layout under `<workspace>/trees/` (the convention the main page relies on):

    <name>.yaml              a published tree: valid, selectable on the main page
    .active                  the name of the active tree (one line), opened by default
    drafts/<name>.yaml       a draft, saved with or without errors; never listed on the main page
    .history/<name>/v0001.yaml, v0002.yaml, …    every saved version, as written
    .history/<name>/log.jsonl                    one JSON line per version: who, when, action, summary

A tree with errors can be saved as a draft but neither published nor made active, so the main
page only ever lists trees that load. Versions are numbered by creating their file exclusively,
so two people saving at once get two versions, never one overwritten by the other.
"""

from __future__ import annotations

import difflib
import getpass
import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import KpiTreeError, Problem, SpecError
from .tree import Tree, dump_tree, parse_yaml, raw_without_lines, read_tree_text

ACTIVE_FILE = ".active"
DRAFTS_DIR = "drafts"
HISTORY_DIR = ".history"
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # with fullmatch: `$` would let "demo\n" through


def default_user() -> str:
    """Who is saving when nobody typed a name: $USER (or $USERNAME), else the system account, else
    "unknown" (a container started without a user name has only its account)."""
    name = os.environ.get("USER") or os.environ.get("USERNAME")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def file_name(text: str) -> str:
    """A safe file stem for a tree name: `Acme revenue tree` → `acme_revenue_tree`."""
    stem = re.sub(r"[^a-z0-9_-]+", "_", text.strip().lower()).strip("_-")[:64]
    return stem or "tree"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise KpiTreeError(
            f"invalid tree name {name!r}: use lower-case letters, digits, '_' or '-', "
            "up to 64 characters, e.g. 'acme_revenue'"
        )
    return name


@dataclass(frozen=True)
class Version:
    """One saved version: its number, when, who, what was done and what changed."""

    number: int
    at: str
    who: str
    action: str  # draft | publish | restore | import | suggest (a tree suggested from the data)
    summary: str
    valid: bool


@dataclass(frozen=True)
class Diff:
    """What changed between two versions: a sentence per change and the YAML line diff."""

    changes: list[str]
    text: str


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # unique per writer, thread or process
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def describe_changes(old_text: str | None, new_text: str) -> list[str]:
    """Sentences saying what changed between two tree files: nodes added, removed, moved, fields edited."""
    new = raw_without_lines(new_text) or {}
    new_nodes = {n.get("id"): n for n in new.get("nodes") or [] if isinstance(n, dict)}
    if old_text is None:
        return [f"created with {len(new_nodes)} node(s)"]
    old = raw_without_lines(old_text) or {}
    old_nodes = {n.get("id"): n for n in old.get("nodes") or [] if isinstance(n, dict)}

    def parents(nodes: dict) -> dict:
        return {c: pid for pid, n in nodes.items() for c in (n.get("children") or [])}

    out = []
    for key in ("name", "description", "grain", "dimensions"):
        if old.get(key) != new.get(key):
            out.append(f"tree {key}: {_fmt(old.get(key))} → {_fmt(new.get(key))}")
    added = [i for i in new_nodes if i not in old_nodes]
    removed = [i for i in old_nodes if i not in new_nodes]
    if added:
        out.append(f"added {', '.join(map(str, added))}")
    if removed:
        out.append(f"removed {', '.join(map(str, removed))}")
    p_old, p_new = parents(old_nodes), parents(new_nodes)
    for nid, node in new_nodes.items():
        if nid not in old_nodes:
            continue
        if p_old.get(nid) != p_new.get(nid):
            out.append(f"moved {nid} from under {p_old.get(nid)} to under {p_new.get(nid)}")
        before = old_nodes[nid]
        for key in dict.fromkeys([*before, *node]):
            if key in ("id", "children") or before.get(key) == node.get(key):
                continue
            out.append(f"{nid}: {key} {_fmt(before.get(key))} → {_fmt(node.get(key))}")
        if before.get("children") != node.get("children") and set(before.get("children") or []) == set(
            node.get("children") or []
        ):
            out.append(f"{nid}: children reordered")
    return out or ["no change"]


class TreeStore:
    """The trees of one workspace: drafts, published trees, the active pointer and the history."""

    def __init__(self, trees_dir: str | Path) -> None:
        self.root = Path(trees_dir)

    # --- where things are ---------------------------------------------------------------------

    def published_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.yaml"

    def draft_path(self, name: str) -> Path:
        return self.root / DRAFTS_DIR / f"{check_name(name)}.yaml"

    def _history(self, name: str) -> Path:
        return self.root / HISTORY_DIR / check_name(name)

    def published(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.yaml") if _NAME_RE.fullmatch(p.stem))

    def drafts(self) -> list[str]:
        folder = self.root / DRAFTS_DIR
        return sorted(p.stem for p in folder.glob("*.yaml") if _NAME_RE.fullmatch(p.stem)) if folder.is_dir() else []

    def names(self) -> list[str]:
        """Every tree of the workspace, published or draft, by name."""
        return sorted({*self.published(), *self.drafts()})

    def text(self, name: str) -> str:
        """The current text of a tree: its draft when there is one, else the published file."""
        for path in (self.draft_path(name), self.published_path(name)):
            if path.exists():
                text, problems = read_tree_text(path)
                if text is None:
                    raise SpecError(problems)
                return text
        raise KpiTreeError(f"no tree {name!r} in this workspace (trees: {', '.join(self.names()) or 'none'})")

    def load(self, name: str) -> tuple[Tree | None, list[Problem]]:
        """The tree's current version (draft first) and its problems (a file that cannot be read
        gives no tree and says why; nothing raises but an unknown name)."""
        path = self.draft_path(name) if self.draft_path(name).exists() else self.published_path(name)
        if not path.exists():
            raise KpiTreeError(f"no tree {name!r} in this workspace (trees: {', '.join(self.names()) or 'none'})")
        text, problems = read_tree_text(path)
        if text is None:
            return None, problems
        return parse_yaml(text, str(path))

    def files(self) -> list[TreeFile]:
        """Every tree file of the workspace, published and draft, each with its problems (`list_trees`)."""
        return list_trees(self.root)

    def save_text(self, entry: TreeFile, text: str, who: str) -> tuple[str, Version]:
        """Replaces a tree file with text a person fixed by hand, recorded as a new version; returns
        the tree's name and the version.

        A published file must come out without errors (the tree page lists only trees that load);
        a draft may keep errors but must hold a tree the Builder can open. A file whose name is no
        tree name is saved under a safe one (`file_name`) and the old file removed. Nothing is
        written when the text is refused: SpecError lists why.
        """
        name = check_name(entry.name if _NAME_RE.fullmatch(entry.name) else file_name(entry.name))
        tree, problems = parse_yaml(text, f"{name}.yaml")
        errors = [p for p in problems if p.severity == "error"]
        if tree is None or (entry.kind == "published" and errors):
            raise SpecError(errors or [Problem("the text holds no usable tree", file=f"{name}.yaml")])
        path = self.published_path(name) if entry.kind == "published" else self.draft_path(name)
        _atomic_write(path, text)
        if path.name != entry.path.name:
            self.delete_file(entry)
        return name, self._record(name, text, who, "fix by hand")

    def delete_file(self, entry: TreeFile) -> None:
        """Removes one tree file (a broken one, whatever its name); its history stays."""
        folder = self.root / DRAFTS_DIR if entry.kind == "draft" else self.root
        path = folder / entry.path.name
        if path.suffix != ".yaml" or path.parent.resolve() != folder.resolve():
            raise KpiTreeError(f"{entry.path.name!r} is not a tree file of this workspace")
        path.unlink(missing_ok=True)
        _forget(path)
        if (self.root / ACTIVE_FILE).exists() and self.active() is None:
            (self.root / ACTIVE_FILE).unlink(missing_ok=True)

    def has_draft(self, name: str) -> bool:
        return self.draft_path(name).exists()

    # --- the active tree ----------------------------------------------------------------------

    def active(self) -> str | None:
        """The active tree's name, when it is set and still published."""
        path = self.root / ACTIVE_FILE
        try:
            with open(path, "rb") as fh:  # a few bytes, whatever the file holds: it names one tree
                name = fh.read(128).decode("utf-8", errors="replace").strip()
        except OSError:
            return None
        return name if _NAME_RE.fullmatch(name) and self.published_path(name).exists() else None

    def activate(self, name: str) -> None:
        """Makes a published, valid tree the one the main page opens by default."""
        path = self.published_path(name)
        if not path.exists():
            raise KpiTreeError(f"tree {name!r} is not published; only a published (valid) tree can be active")
        _atomic_write(self.root / ACTIVE_FILE, name + "\n")

    # --- saving -------------------------------------------------------------------------------

    def save_draft(self, tree: Tree, name: str, who: str, action: str = "draft") -> Version:
        """Saves the tree as a draft (errors allowed) and records a version."""
        text = dump_tree(tree)
        _atomic_write(self.draft_path(name), text)
        return self._record(name, text, who, action)

    def publish(self, tree: Tree, name: str, who: str, *, activate: bool = True, action: str = "publish") -> Version:
        """Saves a valid tree where the main page lists it (and makes it active); refuses one with errors."""
        text = dump_tree(tree)
        _, problems = parse_yaml(text, f"{name}.yaml")
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise SpecError(errors)
        _atomic_write(self.published_path(name), text)
        self.draft_path(name).unlink(missing_ok=True)  # the draft is now the published tree
        version = self._record(name, text, who, action)
        if activate:
            self.activate(name)
        return version

    def delete(self, name: str) -> None:
        """Removes a tree's draft and published file; its history stays (restorable)."""
        self.draft_path(name).unlink(missing_ok=True)
        self.published_path(name).unlink(missing_ok=True)
        if (self.root / ACTIVE_FILE).exists() and self.active() is None:
            (self.root / ACTIVE_FILE).unlink(missing_ok=True)

    # --- history ------------------------------------------------------------------------------

    def _record(self, name: str, text: str, who: str, action: str) -> Version:
        folder = self._history(name)
        folder.mkdir(parents=True, exist_ok=True)
        versions = self.versions(name)
        previous = self.version_text(name, versions[-1].number) if versions else None
        number = (versions[-1].number if versions else 0) + 1
        while True:  # claim the number: exclusive create, so concurrent saves never share one
            try:
                fd = os.open(folder / f"v{number:04d}.yaml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                number += 1
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        _, problems = parse_yaml(text, None)
        version = Version(
            number=number,
            at=time.strftime("%Y-%m-%dT%H:%M:%S"),
            who=(who or "").strip() or default_user(),
            action=action,
            summary="; ".join(describe_changes(previous, text)),
            valid=not any(p.severity == "error" for p in problems),
        )
        with open(folder / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(version), ensure_ascii=False) + "\n")
        return version

    def versions(self, name: str) -> list[Version]:
        """Every recorded version of the tree, oldest first."""
        log = self._history(name) / "log.jsonl"
        if not log.exists():
            return []
        out = []
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                out.append(Version(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash: the version files are still there
        return sorted(out, key=lambda v: v.number)

    def version_text(self, name: str, number: int) -> str:
        path = self._history(name) / f"v{int(number):04d}.yaml"
        if not path.exists():
            raise KpiTreeError(f"tree {name!r} has no version {number}")
        return path.read_text(encoding="utf-8")

    def diff(self, name: str, a: int, b: int) -> Diff:
        """What changed from version `a` to version `b`."""
        old, new = self.version_text(name, a), self.version_text(name, b)
        lines = difflib.unified_diff(old.splitlines(), new.splitlines(), f"{name} v{a}", f"{name} v{b}", lineterm="")
        return Diff(describe_changes(old, new), "\n".join(lines))

    def restore(self, name: str, number: int, who: str) -> tuple[Tree | None, Version]:
        """Brings version `number` back as the current tree, recorded as a new version.

        A valid version of a published tree is published again (the main page shows it at once);
        otherwise it comes back as a draft.
        """
        text = self.version_text(name, number)
        tree, problems = parse_yaml(text, f"{name}.yaml")
        valid = tree is not None and not any(p.severity == "error" for p in problems)
        if valid and self.published_path(name).exists():
            version = self.publish(tree, name, who, activate=self.active() == name, action=f"restore v{number}")
        else:
            _atomic_write(self.draft_path(name), text)
            version = self._record(name, text, who, f"restore v{number}")
        return tree, version


@dataclass(frozen=True)
class TreeFile:
    """One tree file of a workspace, whether it loads, and why not.

    `name` is the file's stem (not always a valid tree name: a file copied in by hand may have any
    name); `kind` is "published" (trees/<name>.yaml) or "draft" (trees/drafts/<name>.yaml).
    """

    name: str
    path: Path
    kind: str
    tree: Tree | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        """Loads without an error: a published one is listed on the tree page."""
        return self.tree is not None and not self.errors

    @property
    def broken(self) -> bool:
        """Needs a person: a published file with errors, or any file the Builder cannot open."""
        return self.tree is None or (self.kind == "published" and bool(self.errors))

    def reason(self, limit: int = 3) -> str:
        """The first problems in one line each, for the list of broken trees."""
        shown = [p.message if p.line is None else f"line {p.line}: {p.message}" for p in self.errors[:limit]]
        more = len(self.errors) - limit
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


# Parsed tree files by (path, modification time, size): every page lists the trees on every rerun.
_PARSED: dict[tuple[str, int, int], tuple[Tree | None, tuple[Problem, ...]]] = {}
_PARSED_MAX = 256


def _forget(path: Path) -> None:
    for key in [k for k in _PARSED if k[0] == str(path)]:
        _PARSED.pop(key, None)


def _read(path: Path, valid_name: bool) -> tuple[Tree | None, tuple[Problem, ...]]:
    if path.is_symlink() or not path.is_file():
        return None, (Problem("not a regular file (a link or a folder): not read; delete it", file=path.name),)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        text, problems = read_tree_text(path)
        tree, found = (None, problems) if text is None else parse_yaml(text, path.name)
        if not valid_name:
            found = [Problem(f"the file name {path.name!r} is not a tree name (lower-case letters, digits, '_' "
                             "or '-', up to 64 characters): delete it, or save its tree under a new name",
                             file=path.name), *found]
            tree = None
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = (tree, tuple(found))
    return _PARSED[key]


def list_trees(trees_dir: str | Path) -> list[TreeFile]:
    """Every tree file of a workspace with its load problems, published first (the active one
    leading), then drafts, by name. Never raises for a file's content: a broken or hostile file is
    listed with the reason, so one bad file never stops a page (the tree page keeps `ok` published
    ones, the Builder lists the `broken` ones to fix or delete)."""
    root = Path(trees_dir)
    if not root.is_dir():
        return []
    active = TreeStore(root).active()
    out = []
    for kind, folder in (("published", root), ("draft", root / DRAFTS_DIR)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml"), key=lambda p: (p.stem != active or kind == "draft", p.name)):
            try:
                tree, problems = _read(path, bool(_NAME_RE.fullmatch(path.stem)))
            except OSError as exc:  # removed meanwhile, or unreadable
                tree, problems = None, (Problem(f"cannot read the file: {exc.strerror or exc}", file=path.name),)
            out.append(TreeFile(path.stem, path, kind, tree, problems))
    return out


def workspace_trees(trees_dir: str | Path) -> list[Path]:
    """Published trees of a workspace that load, the active one first, then by name (for the main page)."""
    return [f.path for f in list_trees(trees_dir) if f.kind == "published" and f.ok]


def summarize(versions: Iterable[Version]) -> list[dict[str, Any]]:
    """Rows for a history table, newest first."""
    return [
        {
            "version": v.number,
            "when": v.at.replace("T", " "),
            "who": v.who,
            "action": v.action,
            "valid": v.valid,
            "what changed": v.summary,
        }
        for v in sorted(versions, key=lambda v: -v.number)
    ]
