"""The ARR bridge of a period: ARR at the start → new, expansion, reactivation, contraction, churn → ARR at the end.

Why a module of its own: the bridge is the exact decomposition of the north star (issue 15, "an
exact north star"). The catalogue already defines every piece (`arr_start`, the `arr_*` movements,
`arr`, all 12 × the MRR ones, from one per-customer relation), and its identity
arr(P) = arr(P−1) + new + expansion + reactivation − contraction − churn holds customer by
customer. This module only *reads* those metrics through the Engine (so a filter or a running
period means exactly what it means on a tree node) and lays them out as a bridge whose steps add
up to the end to the cent; it redefines nothing.

It also keeps a tree's plan consistent with that identity (`chain_targets`): a node whose exact
formula uses its own opening balance (ARR over ARR at start) gets, month by month, the opening
target = its own target of the month before and its target = the formula of its children's
targets — so against target the gap splits over the children with no residual, the carried-over
shortfall being the opening balance's part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from .attribution import Formula
from .errors import QueryError
from .evaluate import Engine
from .metrics import CATALOGUE
from .periods import Grain, Period, parse_period, period_containing
from .tree import Node, Target, Tree

CENT = Decimal("0.01")
# (catalogue metric, label, sign in the bridge), in the order a bridge is read
MOVES: tuple[tuple[str, str, int], ...] = (
    ("arr_new", "New", 1),
    ("arr_expansion", "Expansion", 1),
    ("arr_reactivation", "Reactivation", 1),
    ("arr_contraction", "Contraction", -1),
    ("arr_churn", "Churn", -1),
)
START, END = "arr_start", "arr"
# A stock and its opening balance in the catalogue: the value at the end of P−1.
OPENING = {"arr": "arr_start", "mrr": "mrr_start"}
BRIDGE_FORMULA = "arr = arr_start + arr_new + arr_expansion + arr_reactivation - arr_contraction - arr_churn"
NRR_FORMULA = "arr = arr_start * nrr + arr_new + arr_reactivation"


def cents(value: float | None) -> Decimal:
    """A catalogue amount in whole cents (None, no movement at all, is zero)."""
    return Decimal(repr(float(value or 0.0))).quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Bridge:
    """One period's ARR bridge in cents: `start + Σ sign × move = end` (checked by `unexplained`)."""

    period: str
    start: Decimal
    moves: tuple[tuple[str, str, Decimal], ...]  # (metric, label, amount ≥ 0 as the catalogue gives it)
    end: Decimal

    def signed(self) -> list[tuple[str, Decimal]]:
        """(label, signed amount) per movement: contraction and churn negative."""
        sign = {m: s for m, _, s in MOVES}
        return [(label, amount * sign[m]) for m, label, amount in self.moves]

    def steps(self) -> list[tuple[str, float]]:
        """The movements as a waterfall draws them: (label, signed amount in money)."""
        return [(label, float(amount)) for label, amount in self.signed()]

    @property
    def unexplained(self) -> Decimal:
        """end − (start + movements): zero for data in whole cents (the catalogue's identity)."""
        return self.end - self.start - sum((a for _, a in self.signed()), Decimal(0))

    @property
    def net_new(self) -> Decimal:
        return sum((a for _, a in self.signed()), Decimal(0))

    def to_dict(self) -> dict:
        return {"period": self.period, "start": float(self.start), "end": float(self.end),
                "moves": [{"metric": m, "label": label, "amount": float(a)} for m, label, a in self.moves],
                "net_new": float(self.net_new), "unexplained": float(self.unexplained)}


def arr_bridge(engine: Engine, period: Period | str, filters: tuple = ()) -> Bridge:
    """The ARR bridge of `period` from the catalogue's metrics (one batched query).

    A QueryError says what to load when the workspace has no subscriptions. `filters` are a
    node's filter, as on a tree node (a segment, a plan).
    """
    p = parse_period(period) if isinstance(period, str) else period
    names = [START, *(m for m, _, _ in MOVES), END]
    lacking = engine.missing(END, tuple(filters))
    if lacking is not None:
        raise QueryError(f"The ARR bridge {lacking.reason()}")
    engine.prefetch([(n, tuple(filters)) for n in names], [p])
    values: dict[str, float | None] = {}
    for n in names:
        frame = engine.query(n, [p], filters=tuple(filters))
        row = frame[frame["pkey"] == p.key]
        values[n] = None if row.empty or row["value"].isna().all() else float(row["value"].iloc[0])
    if values[END] is None and values[START] is None:
        raise QueryError(f"The ARR bridge has no value in {p.key}: the subscriptions do not cover it")
    return Bridge(p.key, cents(values[START]), tuple((m, label, cents(values[m])) for m, label, _ in MOVES),
                  cents(values[END]))


# --- a plan that keeps the identity ------------------------------------------------------------


def opening_child(tree: Tree, node: Node) -> Node | None:
    """The node's child holding its opening balance (ARR at start under ARR), when its formula uses it."""
    opening = OPENING.get(node.metric)
    if opening is None or not node.formula:
        return None
    names = set(Formula.parse(node.formula).names)
    for cid in node.children:
        child = tree.node(cid)
        if child.metric == opening and cid in names and child.filter == node.filter:
            return child
    return None


def _months_of(period: Period) -> list[Period]:
    month, out = period_containing(period.start, Grain.MONTH), []
    while month.start <= period.end:
        out.append(month)
        month = month.shift(1)
    return out


def _months(keys: list[str]) -> list[Period]:
    found = []
    for k in keys:
        try:
            p = parse_period(k)
        except ValueError:
            continue
        if p.grain is Grain.MONTH:
            found.append(p)
    return sorted(found, key=lambda p: p.start)


def chain_targets(tree: Tree, since: Period | None = None, *, places: int = 0) -> Tree:
    """The tree with every opening-balance formula's plan made consistent (see the module's doc).

    For each month m (in order) where every formula child has a target: parent(m) =
    formula(children(m)), rounded to `places` decimals, and, from the second month after `since`
    on (every month but the first when None), opening(m) = parent(m−1). Up to the month after
    `since` — history the plan was fitted on, and the month that starts from its last level — the
    opening balance keeps its own planned target, so the plan starts from where the business stood
    and the past is not a sum of two years of planned movements drifting from what happened. Quarters and years of the opening balance
    get their own keys (the parent's target at the end of the month before them), since a stock's
    longer-period target is otherwise its last month's. Targets with no monthly plan, and a
    suggestion's rule (`Target.suggested`), are kept; the parent's rule says it follows its children.
    """
    nodes = {n.id: n for n in tree.nodes}
    for node in tree.nodes:
        opening = opening_child(tree, node)
        if opening is None:
            continue
        formula = Formula.parse(node.formula)  # type: ignore[arg-type]
        kids = {n: nodes[n] for n in formula.names}
        by_child = {n: dict(k.target.by_period) for n, k in kids.items()}
        months = _months(sorted({k for plan in by_child.values() for k in plan}))
        parent: dict[str, float] = {}
        start: dict[str, float] = dict(by_child[opening.id])
        chained: set[str] = set()  # months whose opening balance is last month's parent target
        for m in months:
            prev = parent.get(m.previous().key)
            if prev is not None and (since is None or m.previous().start > since.end):
                start[m.key] = prev
                chained.add(m.key)
            values = {n: (start.get(m.key) if n == opening.id else by_child[n].get(m.key)) for n in formula.names}
            if any(v is None for v in values.values()) or not values[opening.id]:
                continue  # an opening balance planned at nothing (the month the data starts): no bridge yet
            parent[m.key] = round(float(formula(values)), places)  # type: ignore[arg-type]
        if not parent:
            continue
        longer: dict[str, float] = {}
        for key in parent:
            p = parse_period(key)
            nxt = p.shift(1)
            for grain in (Grain.QUARTER, Grain.YEAR):
                whole = period_containing(nxt.start, grain)
                if whole.start == nxt.start:  # this month ends the period before `whole`
                    longer[whole.key] = parent[key]
        weeks = _week_levels(parent, start, chained)
        keep_parent = [(k, v) for k, v in node.target.by_period if k not in parent and k not in weeks
                       and parse_period(k).grain is not Grain.MONTH]
        nodes[node.id] = dataclasses.replace(node, target=_with_plan(
            node.target, {**parent, **{k: round(e, places) for k, (_, e) in weeks.items()}}, keep_parent,
            f"{Formula.parse(node.formula).expression} over the children's targets"))  # type: ignore[arg-type]
        start_plan = {k: v for k, v in start.items() if k in parent or k in dict(opening.target.by_period)}
        start_plan.update(longer)
        start_plan.update({k: round(b, places) for k, (b, _) in weeks.items()})
        own = f"up to {since.shift(1).key}: " if since is not None else "in its first month: "
        nodes[opening.id] = dataclasses.replace(opening, target=_with_plan(
            opening.target, start_plan, [], f"{node.label}'s target for the period before; {own}", inside=True))
        whole = [k for k in longer if all(m.key in chained for m in _months_of(parse_period(k)))]
        nodes.update(_implied_rates(nodes, nodes[node.id], formula, [*whole, *weeks]))
    return dataclasses.replace(tree, nodes=tuple(nodes[n.id] for n in tree.nodes))


def _week_levels(parent: Mapping[str, float], start: Mapping[str, float], chained: set[str]
                 ) -> dict[str, tuple[float, float]]:
    """Week → (level at the end of the week before, level at its end) along the monthly bridge.

    A week's stock target is otherwise its month's end level, a whole month of movements ahead of the
    week's own seven days. Within a planned month the level moves in a straight line from the month's
    opening target to its closing one (flows are pro-rated by days the same way), so a week's bridge
    adds up: opening + its days' movements = its end. A week that starts in one month and ends in
    the next is kept only when the later month opens where the earlier closed (a chained month).
    """
    def level(day) -> float | None:
        m = period_containing(day, Grain.MONTH)
        if m.key not in parent or m.key not in start:
            return None
        done = ((day - m.start).days + 1) / m.days
        return start[m.key] + (parent[m.key] - start[m.key]) * done

    out: dict[str, tuple[float, float]] = {}
    months = sorted((parse_period(k) for k in parent), key=lambda p: p.start)
    if not months:
        return out
    week = period_containing(months[0].start, Grain.WEEK)
    while week.start <= months[-1].end:
        before, end = week.start - timedelta(days=1), week.end
        b, e = level(before), level(end)
        joined = period_containing(before, Grain.MONTH) == period_containing(end, Grain.MONTH) or \
            period_containing(end, Grain.MONTH).key in chained
        if b is not None and e is not None and joined:
            out[week.key] = (b, e)
        week = week.shift(1)
    return out


def _implied_rates(nodes: Mapping[str, Node], parent: Node, formula: Formula, periods: list[str]
                   ) -> dict[str, Node]:
    """Quarter and year targets of the formula's rate children (NRR) that the monthly plan implies.

    A quarter's NRR target compounded from its months is not what the months' bridge gives for the
    quarter (a logo won in its first month is "new" for the quarter, yet expands or churns in the
    next two), so ARR's quarter target would not be the formula of its children's: a residual. The
    rate each such child needs for the quarter — the formula solved for it, the other children at
    their quarter targets, ARR at its own — is written as the child's target for that quarter.
    Flows add up their months and the opening balance has its own keys, so only rates need this;
    weeks likewise, along the straight line `_week_levels` draws through each month.
    """
    from .evaluate import target_for  # evaluate imports nothing from here; kept local to stay a leaf

    rates = [n for n in formula.names if CATALOGUE[nodes[n].metric].kind.value == "ratio"]
    out: dict[str, Node] = {}
    for rate in rates:
        implied: dict[str, float] = {}
        for key in periods:  # only periods the monthly bridge covers whole (history keeps its compounded rate)
            q = parse_period(key)
            goal = target_for(parent, q)
            values = {n: target_for(nodes[n], q) for n in formula.names if n != rate}
            if goal is None or any(v is None for v in values.values()):
                continue
            at0, at1 = float(formula({**values, rate: 0.0})), float(formula({**values, rate: 1.0}))
            if at1 != at0:  # linear in the rate: f = at0 + rate × (at1 − at0)
                implied[key] = round((goal - at0) / (at1 - at0), 10)
        if implied:
            child = nodes[rate]
            kept = [(k, v) for k, v in child.target.by_period if k not in implied]
            out[rate] = dataclasses.replace(child, target=dataclasses.replace(child.target, by_period=tuple(
                sorted([*kept, *implied.items()], key=lambda kv: _order(kv[0])))))
    return out


def _order(key: str) -> tuple:
    """Per-period targets in time order; a quarter or year after the month it starts with."""
    p = parse_period(key)
    return (p.start, p.grain is not Grain.MONTH, p.grain.value)


def _with_plan(target: Target, plan: Mapping[str, float], extra: list[tuple[str, float]], rule: str,
               inside: bool = False) -> Target:
    """`target` with these per-period numbers, in time order."""
    merged = dict(extra)
    merged.update(plan)

    by_period = tuple(sorted(merged.items(), key=lambda kv: _order(kv[0])))
    months = [v for k, v in by_period if parse_period(k).grain is Grain.MONTH]
    value = months[-1] if target.value is not None and months else target.value
    # a suggestion says its rule (`Target.suggested`): the bridge's, with the planned rule it rests on
    own = target.suggested
    suggested = (f"{rule}{own}" if inside else f"{rule} ({own})") if own and not own.startswith("no target") else own
    return dataclasses.replace(target, by_period=by_period, value=value, suggested=suggested)


def bridge_metrics() -> tuple[str, ...]:
    """The catalogue metrics a bridge reads (all from subscriptions)."""
    names = (START, *(m for m, _, _ in MOVES), END)
    assert all(n in CATALOGUE for n in names)
    return names
