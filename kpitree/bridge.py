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
target = where the month opens and its target = the formula of its children's targets — so against
target the gap splits over the children with no residual, the carried-over shortfall being the
opening balance's part. Where a month opens is known for the months the data has closed or is in
(`known_openings`: last month's actual close), and is the plan's close of the month before after
that.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from .attribution import Formula
from .errors import QueryError
from .evaluate import Engine
from .metrics import CATALOGUE
from .periods import Grain, Period, parse_period, period_containing
from .plan import opening_known
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


def _months(keys: Iterable[str]) -> list[Period]:
    found = set()
    for k in keys:
        try:
            p = parse_period(k)
        except ValueError:
            continue
        if p.grain is Grain.MONTH:
            found.add(p)
    return sorted(found, key=lambda p: p.start)


def _kind(node: Node) -> str | None:
    """The node's metric kind ("flow", "stock", "ratio"); None for a metric the catalogue does not know."""
    m = CATALOGUE.get(node.metric)
    return m.kind.value if m is not None else None


def _formula_order(tree: Tree) -> list[Node]:
    """The tree's formula nodes whose every term is a node, each after the formula nodes it is made of."""
    ids = {n.id for n in tree.nodes}
    formulas: dict[str, Formula] = {}
    for n in tree.nodes:
        if not n.formula:
            continue
        try:
            f = Formula.parse(n.formula)
        except (SyntaxError, ValueError):
            continue
        if f.names and set(f.names) <= ids and n.id not in f.names:
            formulas[n.id] = f
    out: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done: a cycle (refused by validation) is cut, never looped

    def visit(nid: str) -> None:
        stack = [(nid, iter(formulas[nid].names))]
        state[nid] = 1
        while stack:
            cur, names = stack[-1]
            nxt = next((c for c in names if c in formulas and c not in state), None)
            if nxt is None:
                stack.pop()
                state[cur] = 2
                out.append(cur)
            else:
                state[nxt] = 1
                stack.append((nxt, iter(formulas[nxt].names)))

    for nid in formulas:
        if nid not in state:
            visit(nid)
    return [tree.node(i) for i in out]


def known_openings(engine: Engine, tree: Tree, through: Period) -> dict[str, dict[str, float]]:
    """Opening-balance node id → {month: its actual value}, for the months up to `through` whose opening
    the data knows: ARR at start of a month is ARR's actual close of the month before.

    What a suggestion passes `chain_targets` as `actual`, with `through` the month the data's as-of
    day is in. Why every closed month opens at its actual: a suggested target is "last month's level
    and the planned movements"; chained over the planned path instead, a business growing faster than
    the plan's capped growth carried a made-up shortfall from January into every month (trial E: ARR
    red all year while growing 5–10 %/month, Aug $30.4M against $36.2M, "carried over from the period
    before"). A month's shortfall is shown in the month it arose, not again in each month after.
    Why the running month too: its opening is already known (last month closed) and nothing this
    month can move it, so a target that opens elsewhere only re-shows last month's gap as this
    month's; and its ARR target is then last month's actual close plus this month's planned
    movements, which is what the running month is judged on (pacing, `evaluate.target_by_now`). The
    months after it are the plan ahead: their opening is not known, so they open at the plan's close.
    Months whose opening the data does not know (the month the subscriptions start in,
    `plan.opening_known`) are left out: they keep the plan's rule.
    """
    months = [m for m in _months(k for n in tree.nodes for k, _ in n.target.by_period) if m <= through]
    out: dict[str, dict[str, float]] = {}
    if not months:
        return out
    for node in tree.nodes:
        found = opening_child(tree, node)
        if found is None or found.metric not in CATALOGUE:
            continue
        metric = CATALOGUE[found.metric]
        first_day = engine.coverage(metric.table)[0]
        values = engine.values(found, months)
        known = {m.key: float(v) for m in months if (v := values.get(m.key)) is not None and math.isfinite(v)
                 and opening_known(metric, m, first_day)}
        if known:
            out[found.id] = known
    return out


def _anchor(month: Period, since: Period | None) -> bool:
    """Whether an opening balance keeps its own planned target in `month` instead of last month's
    closing target: each January of the history up to `since` (the last month the plan was fitted
    on). Why Januaries: the history's plan restarts from where the business stood once a year, not
    from two years of planned movements drifting from what happened; and a chain whole from a
    January holds for each of its quarters and its year. After `since` nothing restarts: the
    planned months open where the plan closed the month before (the last month of history too)."""
    return since is not None and month.start.month == 1 and month.start <= since.start


def _rounded(value: float, node: Node, places: int) -> float:
    """A derived target: money to `places` decimals (whole dollars), anything else to 10 (a rate)."""
    return round(value, places if node.shown_unit == "money" else 10)


def chain_targets(tree: Tree, since: Period | None = None, *, places: int = 0,
                  keep: Collection[str] = (), actual: Mapping[str, Mapping[str, float]] | None = None) -> Tree:
    """The tree with every formula node's plan made consistent with its formula, in every month and
    at every longer grain.

    Months (children before parents): parent(m) = formula(children(m)), money rounded to `places`
    decimals — so New business ARR's target is its closed deals × win rate × deal size targets, and
    against target its gap splits over them with no residual. A formula over the parent's own opening
    balance (ARR over ARR at start, MRR over MRR at start) is chained: opening(m) = parent(m − 1)
    in every month but the first one with a bridge and each January up to `since` (`_anchor`; every
    month but the first when None), so a stock opens each month where the plan closed the last. A
    month whose formula cannot be computed (a child without a target, an opening balance planned at
    nothing: the month the data starts) keeps the parent's own planned target; a parent whose target
    is a goal with no monthly plan (a benchmark, one typed number) keeps it whole.

    Quarters, years (and the weeks a stock's bridge plans, `_week_levels`): `_fit_longer` gives the
    rate children the targets the months imply, so each longer period's targets fit the formula too.
    Targets with no monthly plan, and a suggestion's rule (`Target.suggested`), are kept; a derived
    parent's rule says it follows its children.

    `keep`: nodes whose targets a person set (re-suggesting the others, `suggest.resuggest_targets`).
    They are never rewritten; a kept parent is not derived, its children still follow it (its opening
    balance opens at its targets where no actual is given, its rates fit its quarters), and a month where the person's number
    is not the formula of the suggestions keeps that residual: the plan disagrees, and says so.
    """
    nodes = {n.id: n for n in tree.nodes}
    kept = frozenset(keep)
    order = _formula_order(tree)
    for node in order:
        nodes.update(_chain_months(tree, nodes, nodes[node.id], since, places, kept, actual or {}))
    for node in order:  # a rate made of its children (NRR = GRR + expansion rate, CAC) takes theirs first
        if _kind(node) == "ratio" and node.id not in kept:
            nodes.update(_fit_longer(nodes, nodes[node.id], follow=True, kept=kept))
    for node in reversed(order):  # then parents first: a parent fixes its rates, which fix theirs
        nodes.update(_fit_longer(nodes, nodes[node.id], follow=False, kept=kept))
    return dataclasses.replace(tree, nodes=tuple(nodes[n.id] for n in tree.nodes))


def _chain_months(tree: Tree, nodes: Mapping[str, Node], node: Node, since: Period | None,
                  places: int, kept: frozenset[str] = frozenset(),
                  actual: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Node]:
    """The node (and its opening balance) with monthly targets from the formula (see `chain_targets`)."""
    if node.target.is_set and not _months(k for k, _ in node.target.by_period):
        return {}  # a goal typed as one number (LTV/CAC at least 3:1), not a monthly plan: it stands
    formula = Formula.parse(node.formula)  # type: ignore[arg-type]
    found = opening_child(tree, node)
    opening = nodes[found.id] if found is not None and found.id not in kept else None
    own = dict(node.target.by_period) if node.id in kept else None  # a person's plan: followed, not derived
    if own is not None and opening is None:
        return {}
    by_child = {n: dict(nodes[n].target.by_period) for n in formula.names}
    months = _months({k for plan in by_child.values() for k in plan} | set(own or ()))
    parent: dict[str, float] = {}
    start: dict[str, float] = dict(by_child[opening.id]) if opening is not None else {}
    known = dict((actual or {}).get(opening.id, {})) if opening is not None else {}
    chained: set[str] = set()  # months whose opening balance is last month's parent target
    anchors: list[str] = []
    for m in months:
        if opening is not None:
            prev = parent.get(m.previous().key)
            if m.key in known:  # the month opens where the business actually closed the month before
                start[m.key] = known[m.key]
            elif prev is not None and not _anchor(m, since):
                start[m.key] = prev
                chained.add(m.key)
        values = {n: (start.get(m.key) if opening is not None and n == opening.id else by_child[n].get(m.key))
                  for n in formula.names}
        if own is not None:
            if own.get(m.key) is not None:
                parent[m.key] = own[m.key]
        elif any(v is None for v in values.values()) or (opening is not None and not values[opening.id]):
            continue  # an opening balance planned at nothing (the month the data starts): no bridge yet
        else:
            value = float(formula(values))  # type: ignore[arg-type]
            if not math.isfinite(value):
                continue  # a ratio over a child planned at zero: the parent keeps its own target
            parent[m.key] = _rounded(value, node, places)
        if opening is not None and m.key in parent and m.key not in chained and m.key not in known:
            anchors.append(m.key)
    if not parent:
        return {}
    out: dict[str, Node] = {}
    # weeks run along the plan's monthly line, drawn only where the parent is the plan's own
    weeks = _week_levels(parent, start, chained, known) if opening is not None and own is None else {}
    actuals = sorted(k for k in known if k in parent)
    opens = ""
    if opening is not None and actuals:
        opens = (f"; it opens at last month's actual {node.label} through {actuals[-1]}"
                 + (", at last month's target after" if any(k > actuals[-1] for k in chained) else ""))
    closes = _period_closes(formula, opening.id, by_child, parent, known, node, places) \
        if opening is not None and own is None and known else {}
    if own is None:
        rest = [(k, v) for k, v in node.target.by_period if k not in parent and k not in weeks and k not in closes]
        rule, planned = f"{_in_words(formula, nodes)} over their targets{opens}", node.target.suggested
        if rest and planned and not planned.startswith("no target"):  # the months no formula could make
            kept_months = _months(k for k, _ in rest)
            where = f"{kept_months[0].key} to {kept_months[-1].key}" if len(kept_months) > 1 else \
                "".join(m.key for m in kept_months)
            rule += f" ({where}, where a term has no target: {planned})" if where else f" ({planned})"
        out[node.id] = dataclasses.replace(node, target=_with_plan(
            node.target, {**parent, **closes, **{k: _rounded(e, node, places) for k, (_, e) in weeks.items()}},
            rest, rule, keep_own=False))
    if opening is not None:
        plan = {k: v for k, v in start.items() if k in parent or k in by_child[opening.id]}
        for m in _months(plan):  # an opening balance's quarter or year opens with its first month
            for grain in (Grain.QUARTER, Grain.YEAR):
                whole = period_containing(m.start, grain)
                if whole.start == m.start:
                    plan[whole.key] = plan[m.key]
        last = _months(parent)[-1]
        for grain in (Grain.QUARTER, Grain.YEAR):  # the period after the plan opens at its last level
            whole = period_containing(last.shift(1).start, grain)
            if whole.start == last.shift(1).start and whole.key not in plan:
                plan[whole.key] = parent[last.key]
        plan.update({k: _rounded(b, opening, places) for k, (b, _) in weeks.items()})
        out[opening.id] = dataclasses.replace(opening, target=_with_plan(
            opening.target, plan, [], _opening_rule(node, actuals, sorted(chained), anchors),
            inside=True, keep_own=bool(anchors)))
    return out


def _period_closes(formula: Formula, opening: str, by_child: Mapping[str, Mapping[str, float]],
                   parent: Mapping[str, float], known: Mapping[str, float], node: Node, places: int
                   ) -> dict[str, float]:
    """Quarter or year key → the stock's target for it, where its months open at their actual (`known`):
    the period opens at the actual close before it and its months chain on the plan to its end.

    Why not the last month's target (a stock's quarter otherwise): that one opens at the actual close of
    the month before it, so the quarter's target would hold the first two months' actual movements, and
    the quarter's NRR that fits it would absorb them (trial E: a year's NRR target of 57 % over months
    planned at 98–99 %). Opened at its own actual opening and chained within, the quarter is judged like
    a month: where it started plus its planned movements."""
    out: dict[str, float] = {}
    for key in sorted(known):
        first = parse_period(key)
        for grain in (Grain.QUARTER, Grain.YEAR):
            whole = period_containing(first.start, grain)
            months = whole.months()
            if whole.start != first.start or not any(m.key in known for m in months[1:]):
                continue  # a period that starts elsewhere, or chained already: its last month's target is it
            level: float | None = known[key]
            for m in months:
                values = {n: (level if n == opening else by_child[n].get(m.key)) for n in formula.names}
                if m.key not in parent or any(v is None for v in values.values()):
                    level = None
                    break
                level = float(formula(values))  # type: ignore[arg-type]
                if not math.isfinite(level):
                    level = None
                    break
                level = _rounded(level, node, places)
            if level is not None:
                out[whole.key] = level
    return out


def _opening_rule(node: Node, actuals: list[str], chained: list[str], anchors: list[str]) -> str:
    """An opening balance's suggested rule in words: where each of its months opens."""
    parts = []
    if actuals:
        parts.append(f"{node.label}'s actual close of the month before through {actuals[-1]} (a known "
                     "number: no target missed earlier is carried over)")
    if chained:
        if actuals and any(k > actuals[-1] for k in chained):
            parts.append(f"after that, {node.label}'s target for the month before (the plan ahead)")
        elif not actuals:
            parts.append(f"{node.label}'s target for the period before")
    text = "; ".join(parts) or f"{node.label}'s target for the period before"
    if anchors:
        text += f"; where the plan restarts from the history ({', '.join(anchors)}): "
    return text


def _in_words(formula: Formula, nodes: Mapping[str, Node]) -> str:
    """A formula's right-hand side with its terms' labels ("ARR at start × NRR + New-logo ARR")."""
    text = re.sub(r"\b[A-Za-z_][A-Za-z0-9_]*\b",
                  lambda m: nodes[m.group(0)].label if m.group(0) in nodes else m.group(0), formula.expression)
    return text.replace(" * ", " × ").replace("*", " × ")


def _week_levels(parent: Mapping[str, float], start: Mapping[str, float], chained: set[str],
                 known: Collection[str] = ()) -> dict[str, tuple[float, float]]:
    """Week → (level at the end of the week before, level at its end) along the monthly bridge.

    A week's stock target is otherwise its month's end level, a whole month of movements ahead of the
    week's own seven days. Within a planned month the level moves in a straight line from the month's
    opening target to its closing one (flows are pro-rated by days the same way), so a week's bridge
    adds up: opening + its days' movements = its end. A week that starts in one month and ends in
    the next is kept when the later month opens where the earlier closed (a chained month); one whose
    later month opens at its actual (`known`) runs along that month's line drawn back over its first
    days, so the week opens near where the business stood, not at the plan's close it left behind.
    """
    def level(day, month: Period | None = None) -> float | None:
        m = month or period_containing(day, Grain.MONTH)
        if m.key not in parent or m.key not in start:
            return None
        done = ((day - m.start).days + 1) / m.days
        return start[m.key] + (parent[m.key] - start[m.key]) * done

    out: dict[str, tuple[float, float]] = {}
    months = _months(parent)
    if not months:
        return out
    week = period_containing(months[0].start, Grain.WEEK)
    while week.start <= months[-1].end:
        before, end = week.start - timedelta(days=1), week.end
        later = period_containing(end, Grain.MONTH)
        b, e = level(before), level(end)
        joined = period_containing(before, Grain.MONTH) == later or later.key in chained
        if not joined and later.key in known and week.start <= later.start:
            b, joined = level(before, later), True
        if b is not None and e is not None and joined:
            out[week.key] = (b, e)
        week = week.shift(1)
    return out


def _longer_periods(nodes: Mapping[str, Node], node: Node, formula: Formula) -> list[Period]:
    """The quarters and years whose every month has targets that fit the node's formula, the weeks
    that straddle two such months, and the weeks the node has a target of its own for (a stock's
    bridge, or a rate its parent fixed). A week inside one month needs nothing else: its flows are
    the month's pro-rated and its rates the month's, so a product or a ratio of them still fits."""
    own = dict(node.target.by_period)
    plans = {n: dict(nodes[n].target.by_period) for n in formula.names}
    tolerance = 0.51 if node.shown_unit == "money" else 1e-9  # a derived target is rounded (`_rounded`)
    months = set()
    for m in _months(own):  # months whose targets fit the formula: not the one a plan could not bridge
        values = {n: plan.get(m.key) for n, plan in plans.items()}
        if all(v is not None for v in values.values()) and math.isclose(
                float(formula(values)), own[m.key], rel_tol=1e-9, abs_tol=tolerance):  # type: ignore[arg-type]
            months.add(m.key)
    found: dict[str, Period] = {}
    for key in months:
        m = parse_period(key)
        for grain in (Grain.QUARTER, Grain.YEAR):
            whole = period_containing(m.start, grain)
            if all(p.key in months for p in whole.months()):
                found[whole.key] = whole
        week = period_containing(m.end, Grain.WEEK)  # the week that ends in the next month: pro-rated flows
        if week.end > m.end and m.shift(1).key in months:  # and mean rates no longer multiply to its bookings
            found[week.key] = week
    for key in own:
        p = parse_period(key)
        if p.grain is Grain.WEEK:
            found[key] = p
    return sorted(found.values(), key=lambda p: (p.start, p.grain.value))


def _fit_longer(nodes: Mapping[str, Node], node: Node, *, follow: bool,
                kept: frozenset[str] = frozenset()) -> dict[str, Node]:
    """Quarter, year and week targets that fit the node's formula, written as per-period keys.

    A longer period's targets made from monthly ones do not fit a formula by themselves: a quarter's
    win rate is its months' mean while closed deals add up, so closed × rate × size is not the sum
    of the months' bookings; a quarter's NRR compounded from its months is not what the months'
    bridge gives (a logo won in its first month is "new" for the quarter, yet expands or churns in
    the next two). `follow=True` (children first): a rate made of its children takes the formula of
    theirs. `follow=False`: where the parent's target does not fit,
    the rate terms get the targets that make it fit — in a product that starts with a flow
    (bookings = closed deals × win rate × deal size), each rate the ratio of the flows its months
    imply (won deals over closed deals, bookings over won deals: how the catalogue reads a quarter's
    rate); in a sum, its rate terms scaled alike (GRR and the expansion rate under NRR: no rate turns
    negative); otherwise the last rate term the formula is linear in is solved for (NRR under ARR). Flows add up their months and an opening balance has its own keys, so
    only rates need this; a formula without a rate term keeps its residual (none for sums of flows).
    """
    from .evaluate import target_for  # evaluate imports nothing from here; kept local to stay a leaf

    formula = Formula.parse(node.formula)  # type: ignore[arg-type]
    if _kind(node) is None or any(_kind(nodes[n]) is None for n in formula.names):
        return {}
    written: dict[str, dict[str, float]] = {}
    current = dict(nodes)

    def write(nid: str, key: str, value: float) -> None:
        written.setdefault(nid, {})[key] = round(value, 10)
        child = current[nid]
        plan = {**dict(child.target.by_period), key: round(value, 10)}
        said, note = child.target.suggested, f"; longer periods: what {node.label}'s monthly plan implies"
        if nid == node.id:
            note = "; longer periods: the formula over its children's"
        if said and not said.startswith("no target") and "; longer periods: " not in said:
            said += note  # a suggestion says its rule: a quarter's win rate is no longer its months' mean
        current[nid] = dataclasses.replace(child, target=dataclasses.replace(
            child.target, by_period=tuple(sorted(plan.items(), key=lambda kv: _order(kv[0]))), suggested=said))

    for period in _longer_periods(nodes, node, formula):
        goal = target_for(current[node.id], period)
        values = {n: target_for(current[n], period) for n in formula.names}
        if goal is None or any(v is None for v in values.values()):
            continue
        got = float(formula(values))  # type: ignore[arg-type]
        if not math.isfinite(got) or math.isclose(got, goal, rel_tol=1e-12, abs_tol=1e-9):
            continue
        if follow:
            write(node.id, period.key, got)
            continue
        for nid, value in _rates_that_fit(current, node, formula, period, goal, values, kept).items():
            write(nid, period.key, value)
    return {nid: current[nid] for nid in written}


def _rates_that_fit(nodes: Mapping[str, Node], node: Node, formula: Formula, period: Period, goal: float,
                    values: Mapping[str, float], kept: frozenset[str] = frozenset()) -> dict[str, float]:
    """Targets of the formula's rate terms for `period` that make it give `goal` (see `_fit_longer`);
    a rate a person set (`kept`) is never rewritten."""
    rates = [n for n in formula.names if _kind(nodes[n]) == "ratio" and n not in kept]
    if not rates:
        return {}
    factors = _factors(formula)
    if factors is not None:
        factors.sort(key=lambda n: _kind(nodes[n]) != "flow")  # the flow first, the rates as written
    if (factors is not None and _kind(node) == "flow" and formula.constant and len(rates) == len(factors) - 1
            and [_kind(nodes[n]) for n in factors] == ["flow"] + ["ratio"] * (len(factors) - 1)):
        weighted = _weighted_rates(nodes, node, factors, formula.constant, period)
        if weighted is not None:
            return weighted
    if formula.kind == "additive" and len(rates) > 1:
        coefficients = dict(formula.coefficients)
        part = sum(coefficients[n] * values[n] for n in rates)
        if part:  # every rate term scaled alike: NRR's shortfall is GRR's and expansion's in their proportion
            k = (goal - float(formula({**values, **dict.fromkeys(rates, 0.0)}))) / part  # type: ignore[arg-type]
            return {n: values[n] * k for n in rates}
    for rate in reversed(rates):
        at = [float(formula({**values, rate: x})) for x in (0.0, 1.0, 2.0)]  # type: ignore[arg-type]
        slope = at[1] - at[0]
        if not all(map(math.isfinite, at)) or slope == 0 or not math.isclose(at[2] - at[1], slope, rel_tol=1e-9):
            continue  # not linear in this rate (a ratio over it): try another
        return {rate: (goal - at[0]) / slope}
    return {}


def _factors(formula: Formula) -> list[str] | None:
    """The names of a product of names (and numbers), in the order written; None for any other formula
    (a name twice, a division, a sum)."""
    def walk(node: ast.AST) -> list[str] | None:
        if isinstance(node, ast.Name):
            return [node.id]
        if isinstance(node, ast.Constant):
            return []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            left, right = walk(node.left), walk(node.right)
            return None if left is None or right is None else left + right
        return None

    found = walk(ast.parse(formula.expression, mode="eval").body)
    if not found or len(set(found)) != len(found):
        return None
    return found


def _weighted_rates(nodes: Mapping[str, Node], node: Node, names: list[str], constant: float, period: Period
                    ) -> dict[str, float] | None:
    """parent = c × flow × rate₁ × … × rateₖ over a period: each rate the ratio of the running products
    its months imply, weighted by the share of each month the period covers — rate₁ = Σ f·flow·rate₁ /
    Σ f·flow, …, the last over the parent's own months. The product of these is the parent's target
    (Σ f × its months), exactly."""
    plans = {n: dict(nodes[n].target.by_period) for n in (node.id, *names)}
    sums = [0.0] * len(names)  # Σ f × (flow × rate₁ × … × rateᵢ)
    for month in period.months():
        if month.key not in plans[node.id]:
            return None
        f = ((min(month.end, period.end) - max(month.start, period.start)).days + 1) / month.days
        running = 1.0
        for i, n in enumerate(names):
            v = plans[n].get(month.key)
            if v is None:
                return None
            running *= v
            sums[i] += f * (running if i < len(names) - 1 else plans[node.id][month.key] / constant)
    if any(s == 0 for s in sums[:-1]):
        return None
    return {n: sums[i] / sums[i - 1] for i, n in enumerate(names) if i > 0}


def _order(key: str) -> tuple:
    """Per-period targets in time order; a quarter or year after the month it starts with."""
    p = parse_period(key)
    return (p.start, p.grain is not Grain.MONTH, p.grain.value)


def _with_plan(target: Target, plan: Mapping[str, float], extra: list[tuple[str, float]], rule: str,
               inside: bool = False, keep_own: bool = True) -> Target:
    """`target` with these per-period numbers, in time order. The suggestion's rule is `rule`, followed
    by (`inside`) or with in brackets the planned rule it rests on; `keep_own=False`: by `rule` alone,
    when no number of the plan rests on the planned one any more."""
    merged = dict(extra)
    merged.update(plan)

    by_period = tuple(sorted(merged.items(), key=lambda kv: _order(kv[0])))
    months = [v for k, v in by_period if parse_period(k).grain is Grain.MONTH]
    value = months[-1] if target.value is not None and months else target.value
    # a suggestion says its rule (`Target.suggested`): the bridge's, with the planned rule it rests on
    own = target.suggested
    if own and not own.startswith("no target"):
        suggested = (f"{rule}{own}" if inside else f"{rule} ({own})") if keep_own else rule
    else:
        suggested = own
    return dataclasses.replace(target, by_period=by_period, value=value, suggested=suggested)


def bridge_metrics() -> tuple[str, ...]:
    """The catalogue metrics a bridge reads (all from subscriptions)."""
    names = (START, *(m for m, _, _ in MOVES), END)
    assert all(n in CATALOGUE for n in names)
    return names
