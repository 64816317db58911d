"""Who to talk to: every owner with the numbers they own, which are red and why, and their open actions.

Seed 003: "when a number goes red, you know exactly where to look and who to talk to". This is the
list a founder takes into the Monday meeting: one entry per person, those with red numbers first,
each red number with the explanation's own sentence (`Snapshot.sentence_for`) and the actions
from review notes still open for them. It is built from a snapshot of now (or any saved one), so
the page, the CSV and a test all read the same figures.

An action's owner is matched to a node's owner as written, ignoring case and spacing; an action
given to somebody who owns no number still lists them (they have something to report on).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

from .format import fmt
from .plain import csv_text
from .review import Note, open_actions
from .snapshots import NodeState, Snapshot, status_word
from .tree import owner_missing

CSV_HEADER = ("owner", "number", "status", "value", "target", "why", "open actions")


@dataclass(frozen=True)
class OwnedNode:
    node: NodeState
    sentence: str  # why it is off ("" when on target)


@dataclass(frozen=True)
class OwnerEntry:
    owner: str
    nodes: tuple[OwnedNode, ...]
    actions: tuple[Note, ...]

    @property
    def red(self) -> list[OwnedNode]:
        return [n for n in self.nodes if n.node.status == "red"]

    @property
    def to_assign(self) -> bool:
        return owner_missing(self.owner)


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def owners(snapshot: Snapshot, notes: list[Note]) -> list[OwnerEntry]:
    """Every owner of a node in `snapshot` (and of an open action in `notes`), most red numbers first."""
    by_owner: dict[str, list[OwnedNode]] = {}
    names: dict[str, str] = {}
    for n in snapshot.nodes:
        key = _key(n.owner) or "(no owner)"
        names.setdefault(key, n.owner.strip() or "(no owner)")
        sentence = snapshot.sentence_for(n.id) if n.status in ("red", "amber") else ""
        by_owner.setdefault(key, []).append(OwnedNode(n, sentence))
    actions: dict[str, list[Note]] = {}
    for a in open_actions([x for x in notes if x.tree == snapshot.tree]):
        key = _key(a.owner)
        names.setdefault(key, a.owner)
        actions.setdefault(key, []).append(a)
    rank = {"red": 0, "amber": 1, "no_data": 2, "no_target": 3, "green": 4}
    entries = [OwnerEntry(names[k], tuple(sorted(by_owner.get(k, []), key=lambda o: rank.get(o.node.status, 5))),
                          tuple(actions.get(k, [])))
               for k in names]
    entries.sort(key=lambda e: (-len(e.red), -sum(1 for o in e.nodes if o.node.status == "amber"),
                                -len(e.actions), e.owner.casefold()))
    return entries


def _action_text(a: Note) -> str:
    return f"{a.decision} ({a.node_label}" + (f", due {a.due})" if a.due else ")")


def actions_text(entry: OwnerEntry, today: date | None = None) -> str:
    """The owner's open actions in one cell: "decision (node, due 2026-12-14) — overdue; …"."""
    return "; ".join(_action_text(a) + (" — overdue" if today and a.overdue(today) else "") for a in entry.actions)


def owner_rows(entries: list[OwnerEntry], today: date | None = None, red_only: bool = False) -> list[dict[str, str]]:
    """One row per owned number (red and amber first) plus one per owner with actions but no number:
    the table on the page and the CSV."""
    rows = []
    for e in entries:
        shown = [o for o in e.nodes if not red_only or o.node.status == "red"]
        # An action sits on the row of the number it is about; actions on numbers not listed here (another
        # owner's number, or one on target when only red ones are listed) go on the owner's first row.
        listed = {o.node.id for o in shown}
        elsewhere = dataclasses.replace(e, actions=tuple(a for a in e.actions if a.node not in listed))
        if not shown and (not red_only or e.actions):
            rows.append({"owner": e.owner, "number": "", "status": "", "value": "", "target": "", "why": "",
                         "open actions": actions_text(elsewhere, today)})
        for i, o in enumerate(shown):
            n = o.node
            own = dataclasses.replace(e, actions=tuple(a for a in e.actions if a.node == n.id)
                                      + (elsewhere.actions if i == 0 else ()))
            rows.append({"owner": e.owner, "number": n.label, "status": status_word(n.status),
                         "value": fmt(n.value, n.unit), "target": fmt(n.target, n.unit), "why": o.sentence,
                         "open actions": actions_text(own, today)})
    return rows


def owners_csv(entries: list[OwnerEntry], today: date | None = None, red_only: bool = False) -> str:
    """The owners' list as CSV, every cell neutralised for spreadsheets (`plain.csv_text`)."""
    rows = owner_rows(entries, today, red_only)
    return csv_text(CSV_HEADER, ([r[h] for h in CSV_HEADER] for r in rows))
