"""What to do next: what-if overrides that recompute the tree, and targets solved backwards.

`what_if(source, tree, {"win_rate": 0.3})` sets a node's value and recomputes every ancestor
whose formula uses it, up to the root. A parent moves by exactly the change of its formula,
f(children after) − f(children before), so a tree whose measured values do not match their
formulas to the cent (a parent computed directly from rows) keeps that difference unchanged.
Influence links carry nothing arithmetically: the change stops there, and the result says where.

`back_solve(source, tree, "new_business_arr", "win_rate")` answers "what win rate would hit the
New business ARR target, everything else as it is?": closed form for sums (x = x0 + Δ / c) and for
products and quotients (x = x0 · (needed / now)^(1/e)), bisection for any other formula.
`solve_chain` follows exact links down from a node to a lever ("which win rate for the New ARR
target?"), and `needed_for_target` solves each exact child in turn.

`source` is an `Evaluation` (what the app already has on screen, so a slider costs no query) or a
workspace / engine, which is evaluated for the period first.

A running period is solved on one basis, *so far*: every number as it stands on the as-of day (a flow's
value to date, not its pace; a building-up rate period-to-date; a stock's level today) against the target
by now (`part_by_now`'s rule: a flow's target times the share of its plan done, a stock's or building-up
rate's `target_by_now`, a mean rate's target). That is the gap the tree colours and the explanation splits
over the children, and every number in it is one the data or the plan holds — solving for the period's end
would need a projection of ARR and NRR the app makes nowhere else. Mixing the two (flows at pace, NRR to
date, the opening balance, against the period's end target) answered a question nobody asked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .attribution import Formula
from .bridge import opening_child
from .errors import KpiTreeError
from .evaluate import Engine, Evaluation, NodeResult, evaluate_tree, flow_share
from .format import fmt, fmt_share
from .metrics import Kind, metric
from .periods import Period
from .tree import Tree
from .workspace import Workspace

Source = Evaluation | Workspace | Engine
BISECTION_STEPS = 200


def _evaluation(source: Source, tree: Tree, period: str | Period | None, grain: str | None) -> Evaluation:
    if isinstance(source, Evaluation):
        return source
    return evaluate_tree(source, tree, period, grain)


def _value(r: NodeResult) -> float | None:
    """The number a node is solved and moved on: its value as it stands — a closed period's value, a
    running period's value so far (a flow's to date, not its pace: see the module's docstring)."""
    return r.value


def running(evaluation: Evaluation) -> bool:
    """The evaluation's period is still running on its as-of day: solved on the so-far basis."""
    return not evaluation.complete and evaluation.period.start <= evaluation.as_of < evaluation.period.end


def pace_share(evaluation: Evaluation, tree: Tree, node_id: str) -> float | None:
    """The share a running flow's pace divides its value by (`evaluate.pace_of`: the share of its plan done
    by now, elapsed days where the plan has done nothing yet); None for a closed period or another kind."""
    node = tree.node(node_id)
    if not running(evaluation) or metric(node.metric).kind is not Kind.FLOW:
        return None
    share = flow_share(node, evaluation.period, evaluation.as_of)[0]
    return share if share > 0 else evaluation.period.elapsed_fraction(evaluation.as_of)


def goal_of(evaluation: Evaluation, tree: Tree, node_id: str) -> float | None:
    """The target a node's number is solved for: its target in a closed period; in a running one the target
    by now on the so-far basis — a flow's target times `pace_share` (its pace against the whole target,
    the same verdict), a stock's or building-up rate's `target_by_now`, a mean rate's target."""
    r = evaluation.node(node_id)
    share = pace_share(evaluation, tree, node_id)
    if share is not None and r.target is not None:
        return r.target * share
    return r.judged_target if running(evaluation) else r.target


def basis_words(evaluation: Evaluation, tree: Tree, node_id: str) -> str:
    """What a running period's "what it takes" is solved on, in words ("" for a closed period): the
    node's number so far against its target by now, the gap the tree colours, and how that reaches the
    period's own target — so nobody reads a number to date as the period's whole, or the other way round."""
    if not running(evaluation):
        return ""
    r = evaluation.node(node_id)
    goal, unit, day = goal_of(evaluation, tree, node_id), r.unit, evaluation.as_of.isoformat()
    last = evaluation.period.end.isoformat()  # inclusive
    head = (f"Solved on the numbers so far ({evaluation.period.key} is running, data as of {day}): "
            f"{r.label} {fmt(r.value, unit, compact=True)} so far against its target by now "
            f"{fmt(goal, unit, compact=True)} — the gap the tree colours. ")
    kinds = {metric(tree.node(c).metric).kind for c in Formula.parse(tree.node(node_id).formula).names} \
        if tree.node(node_id).formula else set()
    parts = ("Flows count what has happened so far, not their pace; rates are period-to-date. "
             if Kind.FLOW in kinds else "Rates are period-to-date. " if kinds else "")
    rest = (f"Closing it now and keeping to plan for the rest of the period reaches the {evaluation.period.key} "
            f"target of {fmt(r.target, unit, compact=True)} by {last}." if r.target is not None else "")
    return head + parts + rest


def _status_at(evaluation: Evaluation, tree: Tree, r: NodeResult, value: float | None) -> str:
    """`NodeResult.status_at` for a number on the so-far basis: a running flow's value to date is judged
    by its pace (value over `pace_share`), as evaluate judged it."""
    share = pace_share(evaluation, tree, r.id)
    return r.status_at(value / share if share and value is not None else value)


# --- what-if -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeChange:
    """One node before and after the what-if, and how it got its new value."""

    id: str
    label: str
    unit: str
    before: float | None
    after: float | None
    target: float | None  # what it is judged against: in a running period its target by now (`goal_of`)
    status_before: str
    status_after: str
    how: str  # override, formula, unchanged

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "unit": self.unit, "before": self.before, "after": self.after,
                "change": self.change, "target": self.target, "status_before": self.status_before,
                "status_after": self.status_after, "how": self.how}


@dataclass(frozen=True)
class WhatIf:
    """The tree with some values overridden and their exact consequences upward."""

    period: str
    overrides: tuple[tuple[str, float], ...]
    nodes: tuple[NodeChange, ...]  # tree order, root first
    stopped: tuple[tuple[str, str], ...]  # (changed child, parent) where an influence link stops the change
    notes: tuple[str, ...] = ()
    so_far: str = ""  # a running period's as-of day: every number is so far, against the target by now


    def node(self, node_id: str) -> NodeChange:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def to_dict(self) -> dict:
        return {"period": self.period, "overrides": dict(self.overrides), "nodes": [n.to_dict() for n in self.nodes],
                "stopped": [{"child": c, "parent": p} for c, p in self.stopped], "notes": list(self.notes),
                "so_far": self.so_far or None}

    def text(self) -> str:
        when = f" so far (to {self.so_far}, against the targets by now)" if self.so_far else ""
        lines = [f"What if, {self.period}{when}: " + ", ".join(f"{k} = {v:g}" for k, v in self.overrides)]
        for n in self.nodes:
            if n.how == "unchanged":
                continue
            lines.append(f"  {n.label}: {fmt(n.before, n.unit)} → {fmt(n.after, n.unit)} "
                         f"({n.status_before} → {n.status_after}; {n.how})")
        for child, parent in self.stopped:
            lines.append(f"  {parent} is linked to {child} by influence only: unchanged")
        lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)


def _status_after(evaluation: Evaluation, tree: Tree, r: NodeResult, value: float | None, how: str) -> str:
    """The node's status in the what-if. A number the what-if did not move keeps the status evaluate
    gave it; a moved one is judged by evaluate's own rule (`NodeResult.status_at`: the target it was
    judged against — the target by now while a period runs, a running flow on its pace —, its amber
    threshold, and a maturing cohort on its expected final value, or "maturing" without one, never red)."""
    return r.status if how == "unchanged" else _status_at(evaluation, tree, r, value)


def what_if(source: Source, tree: Tree, overrides: Mapping[str, float], period: str | Period | None = None,
            grain: str | None = None) -> WhatIf:
    """The tree recomputed upward through exact formulas after setting the given node values.

    Values are on the evaluation's basis: a running period's numbers so far (a flow's value to date, not
    its pace), so that ARR today moves by what new-logo ARR so far moves. Raises KeyError for an unknown
    node id. An overridden parent keeps the override even if its children changed too (the override is
    what the user asked to see).
    """
    for node_id in overrides:
        tree.node(node_id)
    evaluation = _evaluation(source, tree, period, grain)
    before = {r.id: _value(r) for r in evaluation.nodes}
    after = dict(before)
    how = {k: "unchanged" for k in before}
    for node_id, value in overrides.items():
        after[node_id] = float(value)
        how[node_id] = "override"
    stopped: list[tuple[str, str]] = []
    notes: list[str] = []
    for node in reversed(tree.walk()):  # children before parents
        changed = [c for c in node.children if after.get(c) != before.get(c)]
        if not changed:
            continue
        formula = Formula.parse(node.formula) if node.formula else None
        exact = set(formula.names) if formula else set()
        stopped.extend((c, node.id) for c in changed if c not in exact)
        if formula is None or not exact & set(changed) or node.id in overrides:
            continue
        old = {c: before.get(c) for c in formula.names}
        new = {c: after.get(c) for c in formula.names}
        parent = before.get(node.id)
        if parent is None or any(v is None for v in (*old.values(), *new.values())):
            notes.append(f"{node.label} cannot be recomputed: a child of its formula has no value")
            continue
        delta = float(formula(new)) - float(formula(old))
        if not math.isfinite(delta):
            notes.append(f"{node.label} cannot be recomputed: its formula divides by zero")
            continue
        after[node.id] = parent + delta
        how[node.id] = "formula"
    changes = []
    for r in evaluation.nodes:
        changes.append(NodeChange(r.id, r.label, r.unit, before[r.id], after[r.id],
                                  goal_of(evaluation, tree, r.id), r.status,
                                  _status_after(evaluation, tree, r, after[r.id], how[r.id]), how[r.id]))
    if stopped:
        notes.append("influence links carry no arithmetic: their parents are left unchanged")
    return WhatIf(evaluation.period.key, tuple((k, float(v)) for k, v in overrides.items()), tuple(changes),
                  tuple(dict.fromkeys(stopped)), tuple(dict.fromkeys(notes)),
                  evaluation.as_of.isoformat() if running(evaluation) else "")


# --- back-solving -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Solution:
    """The value a child needs, the others held, for its parent to reach a goal."""

    node: str
    child: str
    label: str
    unit: str
    goal: float
    goal_unit: str
    goal_from: str  # target, target by now (a running period, solved so far), or given
    parent_now: float
    current: float
    needed: float | None
    method: str  # additive, product, bisection, none
    feasible: bool
    note: str = ""
    so_far: str = ""  # a running period's as-of day: current, needed and goal are so far / by that day

    @property
    def change(self) -> float | None:
        return None if self.needed is None else self.needed - self.current

    @property
    def relative_change(self) -> float | None:
        if self.needed is None or not self.current:
            return None
        return self.needed / self.current - 1

    def to_dict(self) -> dict:
        return {"node": self.node, "child": self.child, "label": self.label, "unit": self.unit, "goal": self.goal,
                "goal_unit": self.goal_unit, "goal_from": self.goal_from, "parent_now": self.parent_now, "current": self.current,
                "needed": self.needed, "change": self.change, "relative_change": self.relative_change,
                "method": self.method, "feasible": self.feasible, "note": self.note, "so_far": self.so_far or None}

    def sentence(self) -> str:
        """"New-logo ARR: $3.42M → $14.84M (+334%) for $173.36M" — in a running period "New-logo ARR so far:
        … for $173.36M by 2026-11-20", so nobody reads a number to date as the period's whole."""
        label = f"{self.label} so far" if self.so_far else self.label
        if self.needed is None:
            return f"{label}: no value reaches the goal ({self.note})"
        rel = f" ({fmt_share(self.relative_change, signed=True)})" if self.relative_change is not None else ""
        by = f" by {self.so_far}" if self.so_far else ""
        return (f"{label}: {fmt(self.current, self.unit)} → {fmt(self.needed, self.unit)}{rel} "
                f"for {fmt(self.goal, self.goal_unit, compact=True)}{by}" + ("" if self.feasible else f" — {self.note}"))


def solve(formula: Formula, values: Mapping[str, float], child: str, needed: float) -> tuple[float | None, str, str]:
    """x such that formula(values with child = x) = needed: (x, method, note).

    Closed form for sums and for products/quotients; bisection on an expanding bracket otherwise
    (the root nearest the current value, as a person moving a slider would find it).
    """
    x0 = float(values[child])
    now = float(formula(values))
    if formula.kind == "additive":
        c = dict(formula.coefficients)[child]
        if c == 0:
            return None, "none", "the formula does not depend on this child"
        return x0 + (needed - now) / c, "additive", ""
    if formula.kind == "product" and x0 > 0 and now > 0 and needed > 0:
        e = dict(formula.exponents)[child]
        if e == 0:
            return None, "none", "the formula does not depend on this child"
        return x0 * (needed / now) ** (1 / e), "product", ""

    def g(x: float) -> float:
        return float(formula({**values, child: x})) - needed

    g0 = g(x0)
    if g0 == 0:
        return x0, "bisection", ""
    step = max(abs(x0), 1.0) * 0.01
    lo = hi = None
    for _ in range(80):
        for cand in (x0 - step, x0 + step):
            v = g(cand)
            if math.isfinite(v) and (v == 0 or (v > 0) != (g0 > 0)):
                lo, hi = (x0, cand) if cand > x0 else (cand, x0)
                break
        if lo is not None:
            break
        step *= 2
    if lo is None or hi is None:
        return None, "bisection", "no value of this child reaches the goal with the others held"
    glo = g(lo)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        gm = g(mid)
        if not math.isfinite(gm):
            break
        if gm == 0 or hi - lo <= 1e-12 * max(abs(mid), 1.0):
            lo = hi = mid
            break
        if (gm > 0) == (glo > 0):
            lo, glo = mid, gm
        else:
            hi = mid
    x = (lo + hi) / 2
    gx = g(x)
    if not math.isfinite(gx) or abs(gx) > 1e-6 * max(abs(needed), 1.0):
        # the sign changed across a pole (a division by zero), not through a root
        return None, "bisection", "no value of this child reaches the goal with the others held"
    return x, "bisection", ""


FAR_BEYOND = 10  # a child asked to grow past this many times its value is not a lever, it is arithmetic


def _feasible(unit: str, value: float | None, share: bool = True) -> tuple[bool, str]:
    if value is None:
        return False, "no solution"
    if unit == "percent" and share and not 0 <= value <= 1:
        return False, "outside 0–100 %: not reachable through this child alone"
    if unit == "percent" and value < 0:
        return False, "negative: not reachable through this child alone"
    if unit in ("count", "money", "days", "hours") and value < 0:
        return False, "negative: not reachable through this child alone"
    return True, ""


def back_solve(source: Source, tree: Tree, node_id: str, child_id: str, goal: float | None = None,
               period: str | Period | None = None, grain: str | None = None) -> Solution:
    """The value `child_id` needs, the other children held, for `node_id` to reach `goal` (default: target;
    in a running period the target by now, every number so far — see the module's docstring).

    The parent moves by its formula's change, so the parent's own measured value (not only the
    formula's) reaches the goal. Raises KpiTreeError when the child is not in the node's formula.
    """
    evaluation = _evaluation(source, tree, period, grain)
    return _solve_one(evaluation, tree, node_id, child_id, goal)


def _solve_one(evaluation: Evaluation, tree: Tree, node_id: str, child_id: str, goal: float | None) -> Solution:
    node = tree.node(node_id)
    child = tree.node(child_id)
    if not node.formula:
        raise KpiTreeError(f"{node.label} has no formula: its children are influences, nothing can be solved exactly")
    formula = Formula.parse(node.formula)
    if child_id not in formula.names:
        raise KpiTreeError(f"{child.label} is not in the formula of {node.label} ({node.formula}): "
                           "an influence link cannot be solved")
    opening = opening_child(tree, node)
    if opening is not None and opening.id == child_id:
        raise KpiTreeError(f"{child.label} is {node.label} at the end of the period before: it is already "
                           "history and cannot be changed — solve for one of the movements instead")
    parent = evaluation.node(node_id)
    goal_from = "given"
    so_far = evaluation.as_of.isoformat() if running(evaluation) else ""
    if goal is None:
        goal, goal_from = goal_of(evaluation, tree, node_id), "target by now" if so_far else "target"
    if goal is None:
        raise KpiTreeError(f"{node.label} has no target for {evaluation.period.key}: give a goal")
    values = {c: _value(evaluation.node(c)) for c in formula.names}
    parent_now = _value(parent)
    if parent_now is None or any(v is None for v in values.values()):
        lacking = [r for r in (parent, *(evaluation.node(c) for c in formula.names)) if _value(r) is None]
        why = "; ".join(f"{r.label} {r.reason}" if r.reason else f"{r.label} has no value" for r in lacking)
        raise KpiTreeError(f"{node.label}: nothing to solve from for {evaluation.period.key} — {why}")
    needed_formula = float(formula(values)) + (goal - parent_now)
    needed, method, note = solve(formula, values, child_id, needed_formula)  # type: ignore[arg-type]
    ok, why = _feasible(child.shown_unit, needed, metric(child.metric).share)
    current = float(values[child_id])  # type: ignore[arg-type]
    if ok and needed is not None and current > 0 and needed > FAR_BEYOND * current:
        # e.g. reactivation ARR $63k → $10M: arithmetic, not a plan anyone can act on
        ok, why = False, f"more than {FAR_BEYOND} times its current value: not reachable through this child alone"
    return Solution(node_id, child_id, child.label, child.shown_unit, float(goal), node.shown_unit, goal_from,
                    float(parent_now), float(values[child_id]), needed, method, ok and not note,  # type: ignore[arg-type]
                    note or why, so_far)


def needed_for_target(source: Source, tree: Tree, node_id: str, goal: float | None = None,
                      period: str | Period | None = None, grain: str | None = None) -> list[Solution]:
    """For each child in the node's formula: the value it alone would need for the node's goal."""
    evaluation = _evaluation(source, tree, period, grain)
    node = tree.node(node_id)
    if not node.formula:
        return []
    opening = opening_child(tree, node)  # last period's closing balance: nothing to change any more
    return [_solve_one(evaluation, tree, node_id, c, goal) for c in Formula.parse(node.formula).names
            if opening is None or c != opening.id]


def solve_chain(source: Source, tree: Tree, node_id: str, lever_id: str, goal: float | None = None,
                period: str | Period | None = None, grain: str | None = None) -> list[Solution]:
    """Down exact links from `node_id` to `lever_id`: what each step needs for the node's goal.

    E.g. New ARR target → New business ARR needed → win rate needed. Raises KpiTreeError if the
    path passes an influence link (nothing can be solved through correlation) or does not exist.
    """
    evaluation = _evaluation(source, tree, period, grain)
    path = _path(tree, node_id, lever_id)
    out: list[Solution] = []
    for parent, child in zip(path, path[1:], strict=False):
        sol = _solve_one(evaluation, tree, parent, child, goal)
        out.append(sol)
        if sol.needed is None:
            break
        goal = sol.needed
    return out


@dataclass(frozen=True)
class Slider:
    """A what-if slider for one node: its range, in the node's own unit, and what hits the target (in a
    running period on the so-far basis: `so_far` is the as-of day)."""

    node: str
    label: str
    unit: str
    parent: str  # the formula parent the change flows into
    current: float
    low: float
    high: float
    step: float
    needed: Solution | None  # this node's value for its formula parent's target, the others held
    so_far: str = ""

    @property
    def scale(self) -> float:
        """What the widget shows per unit of the node's value: 100 for percents, 1e-6 for millions of
        dollars, 1e-3 for thousands — so the slider reads "$3.12M", not 3119583."""
        if self.unit == "percent":
            return 100.0
        if self.unit in ("money", "money_per_day"):
            top = max(abs(self.low), abs(self.high))
            return 1e-6 if top >= 1_000_000 else 1e-3 if top >= 10_000 else 1.0
        return 1.0

    @property
    def format(self) -> str:
        """A printf format for `st.slider` over values scaled by `scale`: "$%.2fM", "%.1f%%", "%.0f"
        (counts whole), with as many decimals as the step needs."""
        step = self.step * self.scale
        decimals = 0 if step >= 1 or step <= 0 else min(4, -math.floor(math.log10(step) + 1e-9))
        if self.unit == "count":
            decimals = 0 if self.step >= 1 else decimals
        number = f"%.{decimals}f"
        if self.unit == "percent":
            return number + "%%"
        if self.unit in ("money", "money_per_day"):
            mark = {1e-6: "M", 1e-3: "k"}.get(self.scale, "")
            return f"${number}{mark}" + ("/day" if self.unit == "money_per_day" else "")
        suffix = {"days": " days", "hours": " h", "ratio": "×", "months": " mo", "minutes": " min"}.get(self.unit, "")
        return number + suffix

    def widget(self) -> dict[str, float | str]:
        """Keyword arguments for `st.slider`, in display units (see `scale`): min_value, max_value,
        value, step and format. `value_of` turns what the slider returns back into the node's unit."""
        k = self.scale
        return {"min_value": self.low * k, "max_value": self.high * k, "value": self.current * k,
                "step": self.step * k, "format": self.format}

    def value_of(self, shown: float) -> float:
        """The node's value for a slider position given in display units."""
        return shown / self.scale

    def text(self, value: float | None) -> str:
        """A value of this slider as the page writes it ("$3.12M", "20.8%", "48")."""
        return fmt(value, self.unit, compact=True)


def slider_for(source: Source, tree: Tree, node_id: str, period: str | Period | None = None,
               grain: str | None = None) -> Slider | None:
    """The range a what-if slider on `node_id` should offer, or None when no exact formula uses it
    (moving it would change nothing above: influence links carry no arithmetic).

    Rates slide over 0–100 % (further when a value is above 100 %, as NRR can be); other numbers from 0 (or the mirror of the largest value, if some are
    negative) to twice the largest of now, target and the value that would hit the parent's target,
    in 200 steps (whole steps for counts). `Slider.widget()` gives the page the same range in the
    units people read ("$3.12M", "20.8%").
    """
    evaluation = _evaluation(source, tree, period, grain)
    parent = tree.parent_of(node_id)
    if parent is None or not parent.formula or node_id not in Formula.parse(parent.formula).names:
        return None
    r = evaluation.node(node_id)
    current = _value(r)
    if current is None:
        return None
    try:
        needed: Solution | None = _solve_one(evaluation, tree, parent.id, node_id, None)
    except KpiTreeError:  # no target above, or a missing value: the slider still shows consequences
        needed = None
    goal = goal_of(evaluation, tree, node_id)
    points = [abs(v) for v in (current, goal, needed.needed if needed else None) if v is not None]
    if r.unit == "percent":  # shares up to 100 %; retention-like rates above it get room to move
        low, high, step = 0.0, 1.0 if max(points) <= 1 else math.ceil(2 * max(points) * 10) / 10, 0.001
    else:
        top = 2 * max(points) or 1.0
        low = -top if min(v for v in (current, goal) if v is not None) < 0 else 0.0
        high = top
        step = _nice_step((high - low) / 200)
        if r.unit == "count":  # people send 48 proposals, not 47.9
            step = max(step, 1.0)
        low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    return Slider(node_id, r.label, r.unit, parent.id, current, low, high, step, needed,
                  evaluation.as_of.isoformat() if running(evaluation) else "")


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`: slider steps people can read."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _path(tree: Tree, top: str, bottom: str) -> list[str]:
    tree.node(top)
    tree.node(bottom)
    chain = [bottom]
    while chain[-1] != top:
        parent = tree.parent_of(chain[-1])
        if parent is None:
            raise KpiTreeError(f"{bottom!r} is not below {top!r} in the tree")
        chain.append(parent.id)
    return chain[::-1]


__all__ = ["NodeChange", "Slider", "Solution", "WhatIf", "back_solve", "basis_words", "goal_of", "needed_for_target",
           "pace_share", "running", "slider_for", "solve", "solve_chain", "what_if"]
