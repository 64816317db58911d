"""Every lever where a material part of the gap sits, and the red nodes nobody named.

The red path follows one child; a north star is usually red for more than one reason. `_causes`
walks every branch that carries `BRANCH_SHARE` of its parent's gap (and red influences) down to
where it sits; `_unlisted` says why any red node below is still not named. `_TreeStatus` judges
nodes against their targets the way the tree page does, querying only what it must.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..bridge import opening_child
from ..evaluate import Evaluation, judge, pace_of
from ..format import fmt_share
from ..tree import Node, Tree
from .analysis import _analyse, _Analysis, _over, _worse
from .cells import _Session
from .model import BRANCH_SHARE, CONCENTRATED_SHARE, ON_TARGET_BANDS, STATUS_PHRASE, Cause, ChildPart, SegmentPart
from .sentences import _segment_sentence, _sentence
from .view import _view, judged_target
from .words import _describe, _node_compare, _noun, _period_words


def _branches(session: _Session, a: _Analysis, versus: str) -> list[tuple[str, str, float | None, tuple[str, ...]]]:
    """Every child worth following, with the nodes stepped over to reach it: exact children that
    explain `BRANCH_SHARE` of the gap and are themselves off their baseline, then influence children
    off in the bad direction (worst first), then, past children without data, the descendants off
    on their own. Below a node without a gap: every descendant past it that is off on its own."""
    view = a.view
    if view.gap is None:
        return [(k.view.node.id, "own", None, via) for via, k in _worse(_over(session, a, versus))]
    if view.adverse(view.gap) <= 0:
        return []
    out: list[tuple[str, str, float | None, tuple[str, ...]]] = []
    for c in sorted(a.children.parts, key=lambda c: -(c.share or 0.0)):
        if c.link != "exact" or c.share is None or c.share < BRANCH_SHARE or c.value is None or c.baseline is None:
            continue
        if _off_baseline(session, c):
            out.append((c.id, "exact", c.share, ()))
    for i in sorted(a.children.influences, key=lambda i: -(i.bands or 0.0)):
        if i.bands is not None and i.bands > 0 and not i.maturing:
            out.append((i.id, "influence", None, ()))
    out.extend((k.view.node.id, "own", None, via) for via, k in _worse(_over(session, a, versus)))
    return out


def _off_baseline(session: _Session, c: ChildPart) -> bool:
    """The child itself moved beyond a quarter of its amber band in the bad direction (a maturing
    cohort's rate has not moved: its cohort is young)."""
    if c.maturing or c.carried:  # a young cohort has not moved yet; an opening balance moved last period
        return False
    bands = _bands(session, c)
    return bands is not None and bands >= ON_TARGET_BANDS


def _bands(session: _Session, c: ChildPart) -> float | None:
    """How many amber bands the child is off its baseline in the bad direction (negative: the good one);
    relative to the baseline, or its raw difference where the baseline is zero."""
    if c.value is None or c.baseline is None:
        return None
    kid = session.tree.node(c.id)
    amber = kid.amber if kid.amber is not None else session.engine.settings.amber_threshold
    own = (c.value - c.baseline) / abs(c.baseline) if c.baseline else c.value - c.baseline
    signed = -own if kid.better == "higher" else own
    return signed / amber if amber else math.copysign(math.inf, signed) if signed else 0.0


class _TreeStatus:
    """Each node's status against its target as the tree shows it (`evaluate_tree`'s rule: a flow
    of a running period judged at pace), computed only for the nodes asked about.

    The walk asks about the red nodes it did not reach and their parents: with the app's evaluation
    at hand (`explain_node(evaluation=…)`) that costs nothing. Without it (the command line, a cold
    start), a node the explanation has loaded already is judged on the value it loaded (the same
    value `evaluate_tree` computes, paced the same way in a running period: `_view`); only the
    others are queried, batched, with `evaluate_tree`'s own queries (same periods, same cache keys).
    Evaluating the whole tree for this took a third of a cold explanation of the north star."""

    def __init__(self, session: _Session, evaluation: Evaluation | None) -> None:
        self.session = session
        usable = evaluation is not None and evaluation.period == session.period
        self.known: dict[str, str] = {n.id: n.status for n in evaluation.nodes} if usable else {}  # type: ignore[union-attr]

    def prefetch(self, nodes: Sequence[Node]) -> None:
        """One batch for every node not yet known (and the parents the words may name)."""
        engine, period = self.session.engine, self.session.period
        wanted = {n.id: n for n in nodes}
        for n in nodes:
            parent = self.session.tree.parent_of(n.id)
            if parent is not None:
                wanted[parent.id] = parent
        todo = {i: n for i, n in wanted.items() if i not in self.known and self._loaded(i) is None}
        if todo:
            with engine.session():
                engine.prefetch_nodes(list(todo.values()), [period.previous(), period])

    def status(self, node_id: str) -> str:
        if node_id not in self.known:
            self.known[node_id] = self._status(self.session.tree.node(node_id))
        return self.known[node_id]

    def _loaded(self, node_id: str) -> str | None:
        """The status from the value the explanation loaded for the node (None if it has none)."""
        data = self.session.data.get(node_id)
        if data is None or data.value("cur") is None:
            return None
        return _view(self.session, data.node, "target", data=data).status

    def _status(self, node: Node) -> str:
        loaded = self._loaded(node.id)
        if loaded is not None:
            return loaded
        engine, period = self.session.engine, self.session.period
        value = engine.values(node, [period.previous(), period]).get(period.key)
        pace = pace_of(node, period, engine.as_of, value)  # evaluate's own
        amber = node.amber if node.amber is not None else engine.settings.amber_threshold
        grown = engine.maturity(node, period) if value is not None else None
        return judge(value, judged_target(engine, self.session.tree, node, period), node.better, amber, grown,
                     pace)[0]


def _causes(session: _Session, start: _Analysis, versus: str, red_path: Sequence[str],
            statuses: _TreeStatus) -> list[Cause]:
    """Walks every branch that carries a material part of the gap down to where it sits.

    The red path follows one child; a north star is usually red for more than one reason (a rep
    losing Enterprise deals *and* a segment churning). A node whose gap is not split exactly over
    followed children (a lever, or a node explained only by influences) is a cause, with its top
    segment and, beside a mix shift, the segment whose own rate moved. Red nodes the walk did not
    reach — red below a parent that is on target, like a churn spike among small customers that
    revenue retention does not show yet — are causes too, marked `reached=False`. The red path's
    lever comes first, then those whose top segment holds most of the gap, red before amber, reached
    before not, larger weights first. None is cut: a red lever left out of "also off track" read as
    on track (`_unlisted` names, with the reason, any red node still not named).
    """
    out: list[Cause] = []
    seen = {start.view.node.id}

    def aside_for(root: Node | None, node: Node) -> str:
        """Why a cause the walk from `start` did not reach is listed: red (against its target) below a
        parent that is not part of this comparison's gap — said of the red node the walk started from,
        and of any cause found below it."""
        if root is None:
            return ""
        parent = session.tree.parent_of(root.id)
        if parent is None:
            return "red on its own"
        if versus == "target":
            why = (f"red below {parent.label}, which is {STATUS_PHRASE.get(statuses.status(parent.id), 'not off')}"
                   f": not yet part of the {start.view.node.label} gap")
        else:
            why = f"red below {parent.label}, which did not fall back against {session.reference.periods[0].key}"
        return why if node.id == root.id else f"found under {root.label}, itself {why}"

    def visit(a: _Analysis, path: tuple[str, ...], weight: float, root: Node | None) -> None:
        exact, before, named_below = False, len(out), False
        for cid, link, part, via in _branches(session, a, versus):
            if cid in seen:  # reached already (a red node listed on its own first): named there, or not
                named_below |= any(c.id == cid and c.top_segment is not None for c in out)
                continue
            seen.add(cid)
            seen.update(via)
            exact |= link == "exact"
            kid = _analyse(session, session.tree.node(cid), versus)
            visit(kid, (*path, *via, cid), weight * (part if part is not None else 1.0), root)
        if not exact and (len(path) > 1 or not out):  # the node itself, when nothing below carries its gap
            v = a.view
            if v.gap is None or v.adverse(v.gap) <= 0 or v.maturing:  # a young cohort is no cause on its own
                return
            if a.segments.top is None and (named_below or any(c.top_segment is not None for c in out[before:])):
                # an influence below already names where it sits (GRR's churned Enterprise customers, found
                # by logo churn): "GRR: no segment stands out" beside it read as a contradiction
                return
            labels = tuple(session.tree.node(i).label for i in path)
            aside = aside_for(root, v.node)
            top, said = a.segments.top, _segment_sentence(a)
            if red_path and v.node.id != red_path[-1] and _mix_shift(top):
                top, said = None, _mix_sentence(a, top)  # type: ignore[arg-type]
            out.append(Cause(v.node.id, v.node.label, v.node.owner, v.status, v.value, v.baseline, v.unit, path,
                             weight, top, said or _sentence(a, "start", None, None, versus), a.also, not aside,
                             labels, aside))

    visit(start, (start.view.node.id,), 1.0, None)
    # red against its target but not reached by the walk: listed too, saying why the walk did not reach it
    statuses.prefetch([n for n in _subtree(session.tree, start.view.node) if n.id not in seen])
    for node in _subtree(session.tree, start.view.node):
        if node.id in seen or statuses.status(node.id) != "red" or _carried(session.tree, node):
            continue
        seen.add(node.id)
        visit(_analyse(session, node, versus), _path_between(session.tree, start.view.node, node), 0.0, node)
    lever = red_path[-1] if red_path else None
    # every cause is listed: a reached one carries a material part of the gap, an unreached one is red
    out.sort(key=lambda c: (c.id != lever, not _concentrated(c), c.status != "red", not c.reached, -c.weight))
    return out


def _mix_shift(top: SegmentPart | None) -> bool:
    """A ratio's top segment whose part is mostly a shift of mix: its share of the denominator moved
    (fewer of Dana's deals among those won), not its own rate. Beside the red path such a segment is
    no cause of this node: what moved is a volume upstream (a win rate, a lead count) that the walk
    judges where it lives, and a rep's or a channel's share of a few dozen won deals reshuffles from
    month to month far more than its counting noise says."""
    return (top is not None and not top.members and top.mix is not None and top.rate is not None
            and abs(top.mix) > abs(top.rate))


def _mix_sentence(a: _Analysis, top: SegmentPart) -> str:
    """The cause's words when its largest segment is a shift of mix: the node's change, and that no
    segment's own rate moved enough to name."""
    v = a.view
    who = _describe(top, _noun(v.data.cur_metric))
    return (f"{v.node.label}: {_node_compare(v)}, mostly a shift of mix between segments (the largest: {who}, "
            f"{fmt_share(top.base_weight)} → {fmt_share(top.weight)} of the total), not a change in any segment's "
            f"own {v.node.label}: its cause is in the volumes upstream. Owner: {v.node.owner}.")


def _unlisted(session: _Session, start: _Analysis, versus: str, red_path: Sequence[str],
              causes: Sequence[Cause], statuses: _TreeStatus) -> list[tuple[str, str]]:
    """The red nodes below `start` that neither the red path nor a cause names, each with why: against
    the previous period or last year, a node red against its target that did not get worse."""
    listed = {*red_path, *(c.id for c in causes), *(i for c in causes for i in c.path)}
    out = []
    for node in _subtree(session.tree, start.view.node):
        if node.id in listed or statuses.status(node.id) != "red":
            continue
        v = _analyse(session, node, versus).view
        if _carried(session.tree, node):
            why = ("red against its target, but carried over: the balance the period started with, whose shortfall "
                   "arose the period before — not part of what went wrong in this one")
        elif v.gap is None:
            why = f"red against its target, with nothing {_period_words((v.base_key,))} to compare it with"
        elif v.adverse(v.gap) <= 0:
            why = (f"red against its target, but {_node_compare(v)}: no worse, so no part of this change"
                   if versus != "target" else "red, but on the right side of its own baseline")
        else:
            why = "red, but below a part that is on its own baseline"
        out.append((node.id, f"{node.label}: {why}."))
    return out


def _carried(tree: Tree, node: Node) -> bool:
    """The node is its parent's opening balance (ARR at start under ARR): no cause of this period."""
    parent = tree.parent_of(node.id)
    opening = opening_child(tree, parent) if parent is not None else None
    return opening is not None and opening.id == node.id


def _concentrated(c: Cause) -> bool:
    """Its top segment holds most of its gap: a finding to act on, not a spread-out drift."""
    return c.top_segment is not None and (c.top_segment.share or 0.0) >= CONCENTRATED_SHARE


def _subtree(tree: Tree, node: Node) -> list[Node]:
    """`node`'s descendants, depth first in the order the tree lists them."""
    out: list[Node] = []
    for c in node.children:
        kid = tree.node(c)
        if kid not in out:
            out.append(kid)
            out.extend(k for k in _subtree(tree, kid) if k not in out)
    return out


def _path_between(tree: Tree, top: Node, node: Node) -> tuple[str, ...]:
    path = [node.id]
    while path[-1] != top.id:
        parent = tree.parent_of(path[-1])
        if parent is None:
            break
        path.append(parent.id)
    return tuple(reversed(path))


