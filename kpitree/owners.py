"""Who to talk to: every owner with the numbers they own, which are red and why, and their open actions.

Seed 003: "when a number goes red, you know exactly where to look and who to talk to". This is the
list a founder takes into the Monday meeting: one entry per person, those with red numbers first,
each red number with the explanation's own sentence (`Snapshot.sentence_for`) and the actions
from review notes still open for them.

An opening balance (ARR at start under ARR: `bridge.opening_child`) is last period's closing
value carried over: red against its target, it is nobody's lever this period, and the explanation
gives it no cause. `carried_over` says so in one sentence; the owner keeps it listed, marked
carried over, but it is not counted or ranked among the red numbers to act on. The review and the
report show the same node and should say the same through the same function. It is built from a snapshot of now (or any saved one), so
the page, the CSV and a test all read the same figures.

An action's owner is matched to a node's owner as written, ignoring case and spacing; an action
given to somebody who owns no number still lists them (they have something to report on).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

from .bridge import opening_child
from .format import fmt
from .periods import parse_period
from .plain import csv_text
from .review import Note, open_actions
from .snapshots import NodeState, Snapshot, status_word
from .tree import Tree, owner_missing

CSV_HEADER = ("owner", "number", "status", "value", "target", "why", "open actions")
OFF = ("red", "amber")
RANK = {"red": 0, "amber": 1, "no_data": 2, "no_target": 3, "green": 4}


@dataclass(frozen=True)
class OwnedNode:
    node: NodeState
    sentence: str  # why it is off ("" when on target)
    carried: bool = False  # an opening balance: last period's closing value, no lever of this one

    @property
    def to_act_on(self) -> bool:
        """Red or amber, and something this period can change."""
        return self.node.status in OFF and not self.carried


@dataclass(frozen=True)
class OwnerEntry:
    owner: str
    nodes: tuple[OwnedNode, ...]
    actions: tuple[Note, ...]

    @property
    def red(self) -> list[OwnedNode]:
        """The red numbers to act on (an opening balance carried over is not one)."""
        return [n for n in self.nodes if n.node.status == "red" and not n.carried]

    @property
    def amber(self) -> list[OwnedNode]:
        return [n for n in self.nodes if n.node.status == "amber" and not n.carried]

    @property
    def carried(self) -> list[OwnedNode]:
        """Opening balances off target: listed, but their gap was made the period before."""
        return [n for n in self.nodes if n.carried and n.node.status in OFF]

    @property
    def to_assign(self) -> bool:
        return owner_missing(self.owner)


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def carried_over(tree: Tree, node: NodeState, period: str) -> str | None:
    """The sentence for an opening balance (ARR at start), None for any other node.

    Its value is the closing value of the period before `period`; nothing done in `period` moves it,
    so whatever gap it has was made then, and the sentence says so instead of a cause. A node is an
    opening balance when its parent's exact formula uses it as such (`bridge.opening_child`, the rule
    the explanation and the what-if use), whatever its id.
    """
    parent = tree.parent_of(node.id)
    opening = opening_child(tree, parent) if parent is not None else None
    if parent is None or opening is None or opening.id != node.id:
        return None
    before = parse_period(period).previous().key
    if node.value is None:
        return (f"Carried over from {before}'s closing {parent.label}, which has no data; it is not a lever "
                f"this period.")
    said = fmt(node.value, node.unit, compact=True)
    if node.target is not None:
        said += f" against {fmt(node.target, node.unit, compact=True)}"
    gap = f" — the gap was made by the end of {before}" if node.status in OFF else ""
    return f"Carried over from {before}'s closing {parent.label}: {said}; it is not a lever this period{gap}."


def owners(snapshot: Snapshot, notes: list[Note], tree: Tree | None = None) -> list[OwnerEntry]:
    """Every owner of a node in `snapshot` (and of an open action in `notes`), most red numbers first.

    `tree` (the snapshot's tree) tells which nodes are opening balances (`carried_over`); without it
    none is recognised and an opening balance counts as any red number.
    """
    by_owner: dict[str, list[OwnedNode]] = {}
    names: dict[str, str] = {}
    for n in snapshot.nodes:
        key = _key(n.owner) or "(no owner)"
        names.setdefault(key, n.owner.strip() or "(no owner)")
        carried = carried_over(tree, n, snapshot.period) if tree is not None else None
        if carried is not None:
            by_owner.setdefault(key, []).append(OwnedNode(n, carried, carried=True))
            continue
        sentence = snapshot.sentence_for(n.id) if n.status in OFF else ""
        by_owner.setdefault(key, []).append(OwnedNode(n, sentence))
    actions: dict[str, list[Note]] = {}
    for a in open_actions([x for x in notes if x.tree == snapshot.tree]):
        key = _key(a.owner)
        names.setdefault(key, a.owner)
        actions.setdefault(key, []).append(a)
    # an opening balance after the numbers to act on, whatever its colour
    entries = [OwnerEntry(names[k], tuple(sorted(by_owner.get(k, []),
                                                 key=lambda o: (o.carried, RANK.get(o.node.status, 5)))),
                          tuple(actions.get(k, [])))
               for k in names]
    entries.sort(key=lambda e: (-len(e.red), -len(e.amber), -len(e.actions), e.owner.casefold()))
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
            status = status_word(n.status) + (", carried over" if o.carried else "")
            rows.append({"owner": e.owner, "number": n.label, "status": status,
                         "value": fmt(n.value, n.unit), "target": fmt(n.target, n.unit), "why": o.sentence,
                         "open actions": actions_text(own, today)})
    return rows


def owners_csv(entries: list[OwnerEntry], today: date | None = None, red_only: bool = False) -> str:
    """The owners' list as CSV, every cell neutralised for spreadsheets (`plain.csv_text`)."""
    rows = owner_rows(entries, today, red_only)
    return csv_text(CSV_HEADER, ([r[h] for h in CSV_HEADER] for r in rows))
