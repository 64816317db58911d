"""One node as this explanation compares it: value, baseline (target or an earlier period), gap, status.

A cohort rate whose latest cohort is still young (this week's leads have not had the weeks a lead
takes to become an opportunity) is *maturing* (`evaluate.NodeResult.maturing`): its status is judged
on its expected final value as the tree judges it, or is "maturing" when there is too little history
to expect one; such a node never starts a red path or becomes a cause on its own (see `path`,
`causes`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..evaluate import Engine, judge, target_by_now, target_for
from ..metrics import Kind
from ..periods import Period
from ..tree import Node, Tree
from .cells import NodeData, _Session
from .model import BY_NOW


@dataclass
class _NodeView:
    """A node's numbers as this explanation compares them."""

    node: Node
    data: NodeData
    value: float | None
    ref_value: float | None
    target: float | None
    baseline: float | None
    status: str
    unit: str
    direction: str
    amber: float
    versus: str = "target"
    base_key: str = "target"  # "target", or the period the baseline is the value of
    maturing: bool = False  # a young cohort: its value is not final (see the module's docstring)
    expected_final: float | None = None  # … the value it is expected to end at (None: too early to tell)
    paced: bool = False  # a running flow: `value` is its pace, projected to the period's end

    @property
    def against(self) -> str:
        """The node's baseline in words, before its number: "target", or "" (the period follows)."""
        return "target " if self.versus == "target" else ""

    @property
    def gap(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        return self.value - self.baseline

    def adverse(self, amount: float) -> float:
        """Positive when `amount` (a change of this node) is bad news."""
        return -amount if self.direction == "higher" else amount

    @property
    def relative_gap(self) -> float | None:
        if self.gap is None or not self.baseline:
            return None
        return self.gap / abs(self.baseline)

    @property
    def bands(self) -> float | None:
        """Adverse relative gap in units of the amber band: ≥ 1 means beyond amber, i.e. red."""
        rel = self.relative_gap
        if rel is None:
            return None
        return self.adverse(rel) / max(self.amber, 1e-9)


def judged_target(engine: Engine, tree: Tree, node: Node, period: Period) -> float | None:
    """The target the node is judged against, as `evaluate` judges it: in a running period, a stock
    (on the plan's path, or the formula of its parts' targets by now) or a rate that builds up against
    where the plan is by now, else the period's target (a running flow is judged on its pace). The
    explanation explains the same gap the tree colours, not the gap to the period's end."""
    target = target_for(node, period)
    if target is None or period.is_complete(engine.as_of):
        return target
    prev = period.previous()
    # the previous close only counts where the plan has no point there (`target_by_now`): no query otherwise
    opening = engine.values(node, [prev]).get(prev.key) if target_for(node, prev) is None else None
    by_now = target_by_now(node, period, engine.as_of, opening, tree)
    return by_now.value if by_now is not None else target


def _view(session: _Session, node: Node, versus: str, own: bool = False, data: NodeData | None = None) -> _NodeView:
    if data is None:
        data = session.own(node) if own else session.data[node.id]
    value = data.value("cur")
    ref_value = data.value("ref")
    target = judged_target(session.engine, session.tree, node, session.period)
    amber = node.amber if node.amber is not None else session.engine.settings.amber_threshold
    grown = session.engine.maturity(node, session.period) if value is not None else None
    maturing = grown is not None and grown.maturing
    status, expected = judge(value, target, node.better, amber, grown)  # evaluate's one rule
    baseline = target if versus == "target" else ref_value
    base_key = "target" if versus == "target" else (data.ref_periods or session.reference.periods)[0].key
    if versus == "target" and session.running and target is not None and target != target_for(node, session.period):
        base_key = BY_NOW  # a running stock or building-up rate: said "target by now"
    paced = session.running and data.cur_metric.kind is Kind.FLOW
    return _NodeView(node, data, value, ref_value, target, baseline, status, node.shown_unit, node.better, amber,
                     versus, base_key, maturing, expected, paced)


