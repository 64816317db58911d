"""A tree that fits a workspace's data: a template cut down to what the data supports, with targets
planned from the workspace's own history and owners taken from the data or left as roles to assign.

Templates ship with the demo company's plan (an ARR target of $204M, owners such as "Maria Chen
(CEO)"). None of that may reach a user's workspace, so a user's tree is always *suggested*:

1. **What the data holds** (`Engine.profile`, a `metrics.Profile`): rows per table, which columns
   have values, and the values of the small text columns (deal types, activity types, managers).
2. **Which nodes it supports**: the rule every panel uses (`Engine.missing`, `metrics.missing_data`):
   a node needs its metric's tables, the columns it reads, the values its filters and definition
   pick (no expansion deals → no Expansion ARR) — and, here, a value in at least one month. Nodes
   without data are left out, each with the reason its panel gives.
3. **Shape**: a left-out node's children move up to its nearest kept ancestor; when the north star
   itself is out, the highest node of the first branch that has data becomes the north star (ARR
   with subscriptions, bookings from deals alone, won deals or leads for a funnel without amounts).
   ARR's exact children (ARR at start, NRR, new-logo ARR: all subscriptions) go with it, so deals
   alone fall back to the bookings that lead them: New business ARR and its pipeline (under new-logo
   ARR), or — with expansion deals too, which sit under NRR — New ARR = new business + expansion.
   A formula that lost a child is dropped (the link turns to influence) — or, when it was a plain
   sum left with one term, the parent *is* that term and the term takes its place.
4. **Drill dimensions**: those the data fills, extra columns included (a manager, a region from a
   teams file); a dimension whose values are all empty is never offered.
5. **Targets** from `plan.plan_targets`, marked as suggestions with their rule in words; a node
   with too little history gets no number, and says so.
6. **Owners** from the data where it names them (sales managers, CSMs, reps for rep-level levers),
   else the template's role as a placeholder ("Head of Sales — to assign"), never its names.

`first_tree` gives a workspace its own active tree after its first load; the shipped demo keeps
the template's plan, which is its own (`is_demo`).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import re
import threading
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from .bridge import chain_targets, known_openings
from .detect import not_a_segment
from .errors import KpiTreeError, LoadError, QueryError, SpecError
from .evaluate import Engine
from .format import fmt
from .history import TreeStore, workspace_trees
from .metrics import CATALOGUE, Kind, Metric, Profile, picks
from .periods import Grain, Period, latest_complete, period_containing, trailing
from .plan import plan_targets
from .schema import TABLES
from .tree import MAX_LABEL, TO_ASSIGN, Node, Target, Tree, formula_expression, formula_names, load_tree
from .workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "data" / "trees"
DEFAULT_TEMPLATE = TEMPLATES / "revops.yaml"
DEMO_DEALS = ROOT / "data" / "demo" / "deals.csv.gz"
SUGGESTED_BY = "kpitree (suggested from the data)"
MIN_MONTHS = 3  # fewest months of history a suggested target may rest on
HISTORY_MONTHS = 24
PLAN_AHEAD = 12  # months of suggested targets after the last complete month
FIRST_TREE_WAIT_SECONDS = 20.0  # a page opening a workspace waits this long for a running load, then says so
# Which columns are drill dimensions is Profile.dimensions (metrics.py); this is only their order.
DIM_ORDER = ("owner", "manager", "regional_office", "region", "team", "segment", "channel", "csm", "industry",
             "plan", "product", "product_series", "deal_type", "type", "feature")
# A template owner's role (the part in parentheses) → the role a placeholder names.
ROLE_NAMES = {"cro": "Head of Sales", "vp sales": "Head of Sales", "vp customer success": "Head of Customer Success",
              "vp marketing": "Head of Marketing", "vp product": "Head of Product"}
# Roles by the metric's table, where a template owner names no role.
TABLE_ROLES = {"deals": "Head of Sales", "quotas": "Sales Ops", "activities": "Head of Sales",
               "subscriptions": "Head of Customer Success", "accounts": "Head of Customer Success",
               "nps": "Head of Customer Success", "leads": "Head of Marketing", "spend": "Head of Marketing",
               "tickets": "Head of Support", "events": "Head of Product"}
_SALES = ("sales", "cro", "ae", "sdr", "account exec", "revenue officer")
_SUCCESS = ("customer success", "csm", "renewal", "retention")


@dataclass(frozen=True)
class Note:
    """One thing the suggestion did, in words: a node left out, a formula dropped, an owner to assign."""

    kind: str  # left_out | north_star | merged | formula | dimensions | targets | owners
    text: str
    node: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- which nodes the data supports ------------------------------------------------------------


def _lacking(engine: Engine, node: Node) -> str | None:
    """Why the data cannot give this node a value, in the words its panel uses; None when it can."""
    try:
        found = engine.missing(node)
    except QueryError as exc:  # a metric the catalogue does not know
        return str(exc)
    return found.reason() if found is not None else None


def _no_value(engine: Engine, node: Node, months: list[Period]) -> bool:
    """True when the node has no value (or only zeros, for counts and amounts) in any month."""
    try:
        found = [v for v in engine.values(node, months).values() if v is not None]
    except (QueryError, KpiTreeError, duckdb.Error):
        return True
    if CATALOGUE[node.metric].kind is Kind.RATIO:
        return not found
    return not any(found)


# --- the shape of the suggested tree ----------------------------------------------------------


def _reshape(template: Tree, keep: set[str], notes: list[Note]) -> list[Node]:
    """The kept nodes, re-linked: children of a left-out node go to its nearest kept ancestor.

    When the north star is left out, the highest kept node of the first branch with data becomes
    the north star; kept nodes of other branches lose their link to it and are left out too.
    """
    order = template.walk()
    position = {n.id: i for i, n in enumerate(order)}
    root = template.root
    scope = {n.id for n in order}
    new_root = root
    if root.id not in keep:
        for branch in root.children:
            inside = _subtree(template, branch)
            kept = [template.node(i) for i in inside if i in keep]
            if kept:
                new_root = min(kept, key=lambda n: (n.level, position[n.id]))
                scope = set(inside)
                break
        else:
            raise KpiTreeError("nothing in this template can be computed from the workspace's data")
        for n in order:
            if n.id in keep and n.id not in scope:
                notes.append(Note("left_out", f"{n.label}: left out — it hangs under "
                                  f"{template.parent_of(n.id).label if template.parent_of(n.id) else 'the north star'}, "
                                  "which your data cannot compute", n.id))
    kept_ids = [n.id for n in order if n.id in keep and n.id in scope]

    def new_parent(node_id: str) -> str | None:
        if node_id == new_root.id:
            return None
        p = template.parent_of(node_id)
        while p is not None and p.id in scope:
            if p.id in kept_ids:
                return p.id
            p = template.parent_of(p.id)
        return new_root.id

    parent = {i: new_parent(i) for i in kept_ids}
    children: dict[str, list[str]] = {i: [] for i in kept_ids}
    for i in kept_ids:  # walk order: children keep the template's order
        if parent[i] is not None:
            children[parent[i]].append(i)  # type: ignore[index]
    shift = new_root.level - 1
    nodes = []
    for i in kept_ids:
        n = template.node(i)
        level = 1 if i == new_root.id else max(2, n.level - shift)
        nodes.append(dataclasses.replace(n, level=level, children=tuple(children[i])))
    return nodes


OPPORTUNITIES = ("opportunities", "Opportunities created", "opportunities_created")


def _with_opportunities(template: Tree, engine: Engine) -> Tree:
    """The template with Opportunities created under its decided new deals (an influence, like leads),
    when the deals have a created date and the template counts no opportunities of its own.

    Why: without a leads table nothing in the suggested tree counts the pipeline that is created, yet
    the deals export dates every deal's creation: a planted 56 % drop of Partner opportunities (trial E,
    November: 11 against 25–28 a month) was on no node, so no panel, review or explanation could show
    it. The count runs a sales cycle ahead of the deals decided, so it influences them (no formula), and
    keeps their filter (new business). Left out, quietly, when the data cannot count it: it is no node
    of the template to report missing."""
    nid, label, metric = OPPORTUNITIES
    if any(n.metric == metric for n in template.nodes) or nid in {n.id for n in template.nodes}:
        return template
    decided = next((n for n in template.walk() if n.metric == "closed_deals"), None)
    if decided is None:
        return template
    siblings = [template.node(c) for c in decided.children]
    node = Node(id=nid, label=label, level=min((c.level for c in siblings), default=decided.level + 1),
                metric=metric, owner=decided.owner, review=decided.review, filter=decided.filter,
                dimensions=("channel", "segment", "owner"),
                description="New deals created in the period: the pipeline the decided deals come from a sales "
                            "cycle later (an influence on them, not a share). Suggested from the deals' created "
                            "dates.")
    try:
        if engine.missing(node) is not None:
            return template
    except QueryError:
        return template
    nodes = []
    for n in template.nodes:
        nodes.append(dataclasses.replace(n, children=(nid, *n.children)) if n.id == decided.id else n)
        if n.id == decided.id:
            nodes.append(node)
    return dataclasses.replace(template, nodes=tuple(nodes))


# With the north star (ARR) out for lack of subscriptions, the bookings that lead its parts may sit in
# different branches (new-business deals under new-logo ARR, expansion deals under NRR's expansion rate):
# their sum, New ARR, is then the north star over both, as the bookings tree was before ARR became exact.
BOOKINGS = ("new_arr", "New ARR", ("new_business_arr", "expansion_arr"))


def _bookings_north_star(template: Tree, keep: set[str]) -> Tree:
    """The template under a New ARR = new business + expansion root, when the root is out and those two
    bookings are kept in different branches (and no New ARR node is); else the template itself.
    `keep` gains the new root."""
    metric, label, parts = BOOKINGS
    if template.root.id in keep or any(n.metric == metric and n.id in keep for n in template.nodes):
        return template
    tops = []
    for part in parts:
        found = [n for n in template.walk() if n.metric == part and not n.filter and n.id in keep]
        if not found:
            return template
        tops.append(found[0])
    branches = {_branch_of(template, n.id) for n in tops}
    if len(branches) < len(tops) or any(n.id == metric for n in template.nodes):
        return template
    first, level = tops[0], min(n.level for n in tops)  # the parts side by side under their sum
    tops = [dataclasses.replace(n, level=level) for n in tops]
    root = Node(id=metric, label=label, level=1, metric=metric, owner=first.owner, review=first.review,
                children=tuple(n.id for n in tops), formula=f"{metric} = {' + '.join(n.id for n in tops)}",
                description="Bookings of won new and expansion deals: the north star while the workspace has no "
                            "subscriptions to compute ARR from.")
    inside = {i for n in tops for i in _subtree(template, n.id)}
    keep.add(metric)
    moved = {n.id: n for n in tops}
    return dataclasses.replace(template, nodes=(root, *(moved.get(n.id, n) for n in template.nodes if n.id in inside)))


def _branch_of(tree: Tree, node_id: str) -> str:
    """The root's child whose subtree holds the node."""
    cur = tree.node(node_id)
    while (parent := tree.parent_of(cur.id)) is not None and parent.id != tree.root.id:
        cur = parent
    return cur.id


def _levels(nodes: list[Node]) -> list[Node]:
    """Levels closed up under the north star after nodes left: the highest child sits on level 2."""
    below = [n.level for n in nodes if n.level > 1]
    shift = min(below) - 2 if below else 0
    if shift <= 0:
        return nodes
    return [n if n.level == 1 else dataclasses.replace(n, level=n.level - shift) for n in nodes]


def _subtree(tree: Tree, node_id: str) -> list[str]:
    out = [node_id]
    for c in tree.node(node_id).children:
        out.extend(_subtree(tree, c))
    return out


def _is_plain_sum(formula: str) -> bool:
    import ast

    def ok(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return True
        return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and ok(node.left) and ok(node.right)

    try:
        return ok(ast.parse(formula_expression(formula), mode="eval").body)
    except (SyntaxError, RecursionError):
        return False


def _fix_formulas(nodes: list[Node], template: Tree, notes: list[Note]) -> list[Node]:
    """Formulas over children that are gone: a one-term sum collapses, any other turns to influence."""
    by_id = {n.id: n for n in nodes}
    changed = True
    while changed:
        changed = False
        for n in list(by_id.values()):
            if not n.formula:
                continue
            used = formula_names(n.formula)
            gone = sorted(used - set(n.children))
            if not gone:
                continue
            left = sorted(used & set(n.children))
            if _is_plain_sum(n.formula) and len(left) == 1 and set(n.children) == set(left):
                # parent = a + b with b absent from the data: the parent is a, so a takes its place
                term = by_id[left[0]]
                merged = dataclasses.replace(term, level=n.level, children=term.children)
                for p in by_id.values():
                    if n.id in p.children:
                        by_id[p.id] = dataclasses.replace(
                            p, children=tuple(term.id if c == n.id else c for c in p.children))
                del by_id[n.id]
                by_id[term.id] = merged
                labels = ", ".join(template.node(g).label for g in gone)
                notes.append(Note("merged", f"{n.label} = {' + '.join(sorted(used))}; without {labels} it is "
                                  f"{term.label} alone, which takes its place", term.id))
            else:
                by_id[n.id] = dataclasses.replace(n, formula=None)
                labels = ", ".join(template.node(g).label for g in gone)
                notes.append(Note("formula", f"{n.label}: formula {n.formula!r} dropped ({labels} left out); "
                                  "its children now influence it", n.id))
            changed = True
            break
    order = [n.id for n in nodes if n.id in by_id]
    return [by_id[i] for i in order]


def _north_star(nodes: list[Node], notes: list[Note]) -> list[Node]:
    """A funnel's north star is an outcome: closed deals (won + lost) become won deals."""
    root = next(n for n in nodes if n.level == 1)
    if root.metric != "closed_deals":
        return nodes
    won = dataclasses.replace(root, metric="won_deals", label="Won deals", formula=None, unit=None,
                              direction=None)
    notes.append(Note("north_star", f"{root.label} (won + lost) becomes Won deals: the outcome a funnel "
                      "without amounts is steered by", root.id))
    return [won if n.id == root.id else n for n in nodes]


# --- drill dimensions -------------------------------------------------------------------------


def not_segments(data: Profile, table: str) -> dict[str, str]:
    """The extra columns of `table` that `Profile.dimensions` would offer but that are no segment: a
    lifecycle status or a period label (`detect.not_a_segment`), with why. The trial's unmapped
    `subscriptions.status` became the first 'Split by' of ARR, and 'cancelled' explained its gap."""
    spec = TABLES.get(table)
    canonical = spec.dimensions if spec is not None else ()
    out = {}
    for column in data.dimensions(table, lifecycle=True) if data.loaded(table) else []:
        why = None if column in canonical else not_a_segment(column, data.distinct(table, column))
        if why:
            out[column] = why
    return out


def _node_dimensions(m: Metric, data: Profile) -> list[str]:
    """Dimensions every raw table of the metric can split by: `Profile.splits`, the rule the node
    panel (`Engine.dimensions`) applies too, so a suggested tree names only what the panel offers —
    less the lifecycle and period columns (`not_segments`), which are never a segment."""
    account_dims = [d for d in data.dimensions("accounts") if d not in not_segments(data, "accounts")] \
        if data.loaded("accounts") else []
    common: list[str] | None = None
    for table in dict.fromkeys(s.table for s in m.sources):
        left_out = not_segments(data, table)
        candidates = dict.fromkeys([*data.dimensions(table), *account_dims])
        dims = [d for d in candidates if d not in left_out and data.splits(table, d)]
        common = dims if common is None else [d for d in common if d in dims]
    return sorted(common or [], key=lambda d: (DIM_ORDER.index(d) if d in DIM_ORDER else len(DIM_ORDER), d))


def _dimensions(nodes: list[Node], data: Profile, notes: list[Note]) -> tuple[list[Node], tuple[str, ...]]:
    per_node = {n.id: _node_dimensions(CATALOGUE[n.metric], data) for n in nodes}
    everything = sorted({d for dims in per_node.values() for d in dims},
                        key=lambda d: (DIM_ORDER.index(d) if d in DIM_ORDER else len(DIM_ORDER), d))
    out = []
    for n in nodes:
        # a column the node keeps to one value (deal_type: new) splits it into one segment: not a split
        fixed = {col for col, v in n.filter if len(v) == 1}
        fixed |= {col for _, col, v in picks(CATALOGUE[n.metric]) if len(v) == 1}
        dims = [d for d in per_node[n.id] if d not in fixed]
        # the template's own order first, where the data has those dimensions
        ordered = [d for d in n.dimensions if d in dims] + [d for d in dims if d not in n.dimensions]
        if tuple(ordered) == tuple(everything):
            out.append(dataclasses.replace(n, dimensions=(), no_drill=False))
        else:
            out.append(dataclasses.replace(n, dimensions=tuple(ordered), no_drill=not ordered))
    empty = sorted({d for n in nodes for d in (*n.dimensions, "owner", "segment", "channel")} - set(everything))
    text = f"drill dimensions from your data: {', '.join(everything) or 'none'}"
    if empty:
        text += f" ({', '.join(empty)}: empty or a single value in your data, left out)"
    tables = {s.table for n in nodes for s in CATALOGUE[n.metric].sources} | {"accounts"}
    no_segment = {c: why for t in sorted(tables) for c, why in not_segments(data, t).items()}
    if no_segment:
        grouped: dict[str, list[str]] = {}
        for column, why in no_segment.items():
            grouped.setdefault(why, []).append(column)
        text += "; not offered as splits: " + "; ".join(f"{', '.join(cs)}: {why}" for why, cs in grouped.items())
    notes.append(Note("dimensions", text))
    return out, tuple(everything)


# --- owners -----------------------------------------------------------------------------------


def role_of(owner: str, metric: Metric | None = None) -> str:
    """The role a template owner names ("Alex Romero (CRO)" → "Head of Sales"), never the name."""
    found = re.search(r"\(([^()]*)\)\s*$", owner or "")
    if found:
        role = found.group(1).strip()
        named = ROLE_NAMES.get(role.lower())
        if named:
            return named
        if role.lower().startswith("vp "):
            return "Head of " + role[3:]
        head, _, detail = role.partition(", ")  # "PM, analytics" → "PM (analytics)"
        return (f"{head} ({detail})" if detail else head) or "Owner"
    if metric is not None:
        return TABLE_ROLES.get(metric.table, "Owner")
    return "Owner"


def _domain(owner: str, metric: Metric) -> str:
    role = role_of(owner, metric).lower()
    if any(w in role for w in _SUCCESS):
        return "success"
    if any(w in role for w in _SALES) or (metric.table in ("deals", "activities", "quotas")
                                           and "marketing" not in role and "ceo" not in role):
        return "sales"
    return "other"


def _people(names: tuple[str, ...], group: str, per: str) -> str:
    shown = ", ".join(names[:2]) + (f" +{len(names) - 2}" if len(names) > 2 else "")
    return f"{group}: {shown} (per {per})"


def _owners(nodes: list[Node], template: Tree, data: Profile, notes: list[Note]) -> list[Node]:
    """Owners from the data where it names them, else the template's role "— to assign".

    Levels are the template's (a lever stays a rep's number even when the tree above it shrank):
    rep-level levers go to the reps (or the one rep), numbers below the top two levels to the sales
    managers or CSMs the data names, the top numbers to one named person or a role.
    """
    managers = data.distinct("deals", "manager") if data.has("deals", "manager") else None
    csms = data.distinct("accounts", "csm") if data.has("accounts", "csm") else None
    out = []
    for n in nodes:
        m = CATALOGUE[n.metric]
        level = template.node(n.id).level if n.level > 1 else 1
        domain = _domain(n.owner, m)
        role = role_of(n.owner, m)
        owner = None
        reps_table = next((t for t in dict.fromkeys(s.table for s in m.sources)
                           if t in ("deals", "activities") and data.has(t, "owner")), None)
        if level >= 5 and domain in ("sales", "success") and reps_table and not n.children:
            reps = data.distinct(reps_table, "owner")
            if reps is not None and len(reps) == 1:
                owner = reps[0]
            elif domain == "sales":
                owner = "Reps (per owner)"
            else:  # success: check-ins are logged by CSMs, upsell deals by whoever owns them
                owner = "CSMs (per owner)" if reps_table == "activities" else "Deal owners (per owner)"
        elif domain == "sales" and managers:
            if len(managers) == 1:
                owner = managers[0]
            elif level >= 3:
                owner = _people(managers, "Sales managers", "manager")
        elif domain == "sales" and level >= 3 and data.has("deals", "owner"):
            reps = data.distinct("deals", "owner")
            if reps is not None and len(reps) == 1:
                owner = reps[0]  # a one-person sales team owns every sales number
        elif domain == "success" and csms:
            if len(csms) == 1:
                owner = csms[0]
            elif level >= 3:
                owner = _people(csms, "CSMs", "csm")
        if owner and len(owner) > MAX_LABEL:  # a name from the data longer than a box holds: a role instead
            owner = None
        out.append(dataclasses.replace(n, owner=owner or f"{role} — {TO_ASSIGN}"))
    missing = [n for n in out if n.owner_missing]
    if missing:
        notes.append(Note("owners", f"{len(missing)} of {len(out)} numbers have a role to assign instead of a "
                          f"person: {', '.join(f'{n.label} ({n.owner})' for n in missing)}"))
    named = [n for n in out if not n.owner_missing]
    if named:
        notes.append(Note("owners", "owners from your data: "
                          + "; ".join(f"{n.label}: {n.owner}" for n in named)))
    return out


# --- the whole suggestion ---------------------------------------------------------------------


def template_path(template: str | Path | None) -> Path:
    """A template by file or by name (`revops`, `team_sales`); an error lists the shipped ones."""
    if template is None:
        return DEFAULT_TEMPLATE
    path = Path(template)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    named = TEMPLATES / f"{Path(str(template)).stem}.yaml"
    if named.exists():
        return named
    shipped = ", ".join(sorted(p.stem for p in TEMPLATES.glob("*.yaml")))
    raise KpiTreeError(f"no template {str(template)!r}: use one of {shipped}, or a tree YAML file")


def _openings(engine: Engine, tree: Tree) -> dict[str, dict[str, float]]:
    """The actual opening balances (ARR at start) of the months up to the one the data's as-of day is in:
    where a suggested plan's months open (`bridge.known_openings` says why the running month too)."""
    try:
        return known_openings(engine, tree, period_containing(engine.as_of, Grain.MONTH))
    except (QueryError, duckdb.Error) as exc:  # said as what it is, never a traceback
        raise KpiTreeError(f"the targets could not be planned from this workspace's data ({exc})") from exc


def plan_window(as_of: date) -> tuple[Period, Period, list[Period]]:
    """(last complete month, last month planned, every month a suggestion reads or plans)."""
    baseline_end = latest_complete(as_of, Grain.MONTH)
    through = baseline_end.shift(PLAN_AHEAD)
    return baseline_end, through, trailing(through, HISTORY_MONTHS + PLAN_AHEAD)


def suggest_tree(source: Engine | Workspace, template: str | Path | Tree | None = None) -> tuple[Tree, list[Note]]:
    """(the tree that fits the workspace's data, what was done to the template to get it).

    Raises KpiTreeError when the workspace has no data, or nothing of the template fits it.
    """
    engine = source if isinstance(source, Engine) else Engine(source)
    base = template if isinstance(template, Tree) else load_tree(template_path(template))
    as_of = engine.as_of  # a workspace without data says so here
    base = _with_opportunities(base, engine)
    data = engine.profile
    notes: list[Note] = []
    baseline_end, through, months = plan_window(as_of)
    keep: set[str] = set()
    missing = {n.id: _lacking(engine, n) for n in base.walk()}
    try:  # one query per filter for every node the data may support; the plan reads the same cache
        engine.prefetch_nodes([n for n in base.nodes if missing[n.id] is None], months)
    except (QueryError, duckdb.Error):
        pass  # each node is then tried on its own below
    # a term of an exact formula whose parent the data supports stays even at zero in every month (no
    # customer ever reactivated): zero is its value, and leaving it out would cost the parent its identity
    terms = {t for n in base.nodes if n.formula and missing[n.id] is None for t in formula_names(n.formula)}
    for n in base.walk():
        why = missing[n.id]
        if why is None and _no_value(engine, n, months) and not (
                n.id in terms and CATALOGUE[n.metric].kind is not Kind.RATIO
                and any(v is not None for v in engine.values(n, months).values())):
            why = "no value in any month of your data"
        if why is None:
            keep.add(n.id)
        else:
            notes.append(Note("left_out", f"{n.label}: left out — {why}", n.id))
    if not keep:
        tables = ", ".join(f"{t} ({r:,} rows)" for t, r in data.rows.items()) or "no tables"
        raise KpiTreeError(f"nothing in template {base.name!r} can be computed from this workspace's data "
                           f"({tables}): load deals, subscriptions or leads on the Upload page "
                           "(`python -m kpitree ingest`), or build a tree by hand in the Builder")
    shaped = _bookings_north_star(base, keep)
    nodes = _reshape(shaped, keep, notes)
    nodes = _fix_formulas(nodes, shaped, notes)
    nodes = _north_star(_levels(nodes), notes)
    root = next(n for n in nodes if n.level == 1)
    if root.id != base.root.id or root.metric != base.root.metric:
        notes.insert(0, Note("north_star", f"north star: {root.label} (the template's {base.root.label} "
                             "needs data this workspace does not have)", root.id))
    nodes, dims = _dimensions(nodes, data, notes)
    nodes = _owners(nodes, shaped, data, notes)
    nodes = [dataclasses.replace(n, target=Target(), amber=n.amber) for n in nodes]  # never the template's numbers
    draft = Tree(name=base.name, nodes=tuple(nodes), grain=base.grain, dimensions=dims,
                 description="", source=None)
    planned = plan_targets(engine, draft, baseline_end, through, HISTORY_MONTHS, min_months=MIN_MONTHS, mark=True)
    # an exact north star over its opening balance (ARR at start) keeps its identity in the plan too:
    # ARR's target is the bridge of its children's, so its gap splits over them with no residual; every
    # month the data has closed or is in opens at last month's actual close (`known_openings`)
    openings = _openings(engine, planned)
    planned = chain_targets(planned, baseline_end, actual=openings)
    without = [n for n in planned.nodes if not n.target.is_set]
    opened = [(planned.node(i).label, max(known)) for i, known in openings.items() if known]
    notes.append(Note("targets", f"targets suggested from your own history up to {baseline_end.key} for "
                      f"{len(planned.nodes) - len(without)} of {len(planned.nodes)} numbers"
                      + (f"; no target for {', '.join(n.label for n in without)} (too little history)"
                         if without else "")
                      + "".join(f"; {label} is the actual in each month up to {last} (last month's close), so a "
                                "month is judged on what happened in it, not on a shortfall carried over from before"
                                for label, last in opened)))
    description = (f"Suggested on {date.today().isoformat()} from template {base.name!r} for the data of workspace "
                   f"{engine.workspace.name!r} (as of {as_of.isoformat()}). Targets are suggestions from its own "
                   f"history; owners ending in '{TO_ASSIGN}' are still to name." + _left_out_text(notes))
    return dataclasses.replace(planned, description=description), notes


def _left_out(notes: Iterable[Note]) -> dict[str, list[str]]:
    """Reason → labels of the nodes left out for it."""
    by_reason: dict[str, list[str]] = {}
    for x in notes:
        if x.kind == "left_out":
            label, _, reason = x.text.partition(": left out — ")
            by_reason.setdefault(reason or x.text, []).append(label)
    return by_reason


def _left_out_text(notes: list[Note]) -> str:
    """" Left out: ARR, NRR (needs subscriptions — …); …" — the left-out nodes grouped by reason."""
    by_reason = _left_out(notes)
    if not by_reason:
        return ""
    return " Left out: " + "; ".join(f"{', '.join(labels)} ({reason})" for reason, labels in by_reason.items()) + "."


def summary(notes: Iterable[Note]) -> list[str]:
    """The notes as a person reads them: what changed first, the left-out nodes grouped by reason."""
    notes = list(notes)
    lines = [x.text[0].upper() + x.text[1:] for x in notes if x.kind != "left_out"]
    lines += [f"Left out: {', '.join(labels)} — {reason}" for reason, labels in _left_out(notes).items()]
    return lines


# --- the workspace's own tree -----------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    """What `first_tree` did: the tree it published (None if it could not) and a sentence saying so."""

    name: str | None
    tree: Tree | None
    notes: tuple[Note, ...]
    message: str


def first_tree(ws: Workspace, template: str | Path | None = None, who: str = SUGGESTED_BY,
               wait: float = FIRST_TREE_WAIT_SECONDS) -> Made | None:
    """Gives a workspace without a published tree its own active tree, suggested from its data.

    None when there is nothing to do: the workspace already has a tree, or it holds the shipped
    demo (whose plan the templates carry). A suggestion that fails never fails the caller's load:
    the Made says what went wrong and what to do. Waits at most `wait` seconds for a load of the
    workspace that is running in another thread or process (that load suggests the tree itself).
    """
    from .ingest import load_lock  # here: ingest is the heavier module, and needs nothing from this one

    store = TreeStore(ws.trees_dir)
    if store.published() or is_demo(ws):
        return None
    path = template_path(template)
    # Checked and published under the workspace's load lock: a page opening the workspace and a load
    # ending at the same moment each found no tree and published one (v1 and v2). It is the lock a load
    # holds, so a tree is never suggested from half-swapped data either; a caller that holds it already
    # (the command line, around the load and this) takes it again instead of waiting for itself.
    with ExitStack() as held:
        try:
            held.enter_context(load_lock(ws, timeout=wait))
        except LoadError:  # a load kept the workspace all along: that load suggests the tree when it ends
            return Made(None, None, (), f"No tree was suggested yet: workspace {ws.name!r} is being loaded; its "
                                        "tree is suggested from the new data when the load ends — open it again then.")
        except OSError as exc:  # the lock file cannot be made: neither could the tree be saved
            return Made(None, None, (), f"No tree was suggested: workspace {ws.name!r} cannot be written to "
                                        f"({exc.strerror or exc}).")
        if store.published():
            return None
        try:
            tree, notes = suggest_tree(ws, path)
            version = store.publish(tree, path.stem, who, activate=True, action="suggest")
        except SpecError as exc:
            return Made(None, None, (), f"No tree was suggested: the suggestion did not validate ({exc}). "
                                        "Build one in the Builder.")
        except (KpiTreeError, duckdb.Error) as exc:
            return Made(None, None, (), f"No tree was suggested yet: {exc}")
    left = sum(1 for x in notes if x.kind == "left_out")
    to_assign = sum(1 for n in tree.nodes if n.owner_missing)
    message = (f"Workspace {ws.name!r} got its own tree '{path.stem}' (v{version.number}), suggested from its data: "
               f"{len(tree.nodes)} numbers with {tree.root.label} as north star"
               + (f", {left} template node(s) left out for lack of data" if left else "")
               + (f", {to_assign} owner(s) to assign" if to_assign else "")
               + ". Targets are suggestions from its own history — review them in the Builder.")
    return Made(path.stem, tree, tuple(notes), message)


def tree_for_workspace(ws: Workspace) -> Path:
    """The tree `evaluate` and `explain` use without --tree: the workspace's active one.

    The shipped demo without a tree of its own uses the default template (its plan). Anything
    else without an active tree is an error that says how to make one.
    """
    store = TreeStore(ws.trees_dir)
    active = store.active()
    if active is not None:
        return store.published_path(active)
    published = workspace_trees(ws.trees_dir)
    if published:
        return published[0]
    if is_demo(ws):
        return DEFAULT_TEMPLATE
    if not ws.tables():
        raise KpiTreeError(f"workspace {ws.name!r} has no data and no tree yet: load your exports first "
                           f"(`python -m kpitree ingest --workspace {ws.root} FILE…`); its first load suggests a "
                           "tree from them")
    raise KpiTreeError(
        f"workspace {ws.name!r} has no active tree yet: make one from its data with "
        f"`python -m kpitree suggest --workspace {ws.root} --activate`, or pass --tree FILE")


def why_no_tree(ws: Workspace) -> str:
    """Why the workspace has no tree to show, and what to do (for a page that has none to open)."""
    if not ws.tables():
        return (f"Workspace {ws.name!r} has no data yet: load your exports on the Upload page — it then gets a tree "
                "suggested from its data.")
    made = first_tree(ws)
    if made is not None and made.tree is None:
        return f"{made.message} Or build a tree by hand in the Builder."
    return f"Workspace {ws.name!r} has no published tree: make one in the Builder (Suggest a tree from my data)."


def missing_owners(tree: Tree) -> list[Node]:
    """Nodes nobody is named for yet (empty, or a role "— to assign"), in tree order."""
    return [n for n in tree.walk() if n.owner_missing]


def suggested_targets(tree: Tree) -> list[Node]:
    """Nodes whose target is still a suggestion (or says why there is none), in tree order."""
    return [n for n in tree.walk() if n.target.suggested]



# --- suggested targets planned again from the data as it is now -----------------------------------


@dataclass(frozen=True)
class TargetChange:
    """A suggested target whose plan moved with the data: its figure for the last complete month."""

    id: str
    label: str
    unit: str
    before: float | None
    after: float | None


@dataclass(frozen=True)
class Resuggested:
    """What `resuggest_targets` did: the tree with its suggested targets planned again, and what moved."""

    tree: Tree
    month: str  # the last complete month, whose figures `changes` compare
    replanned: int  # targets that were suggestions, planned again
    kept: int  # targets a person set (no `Target.suggested`), left exactly as they were
    changes: tuple[TargetChange, ...] = ()
    moved: int = 0  # suggested targets whose plan changed in any month (`changes` only lists the month's)

    @property
    def stale(self) -> bool:
        return self.moved > 0


def resuggest_targets(source: Engine | Workspace, tree: Tree) -> Resuggested:
    """The tree with every suggested target (`Target.suggested`: planned from the history, never typed)
    planned again from the data as it is now, by the rule that suggested it (`plan.plan_targets`, then an
    opening balance's bridge, `chain_targets`); a target a person set, and a custom measure's, stay.

    Why: a tree's targets are suggested once, from the data of its first load. After a file is re-mapped
    and reloaded (a stage read as won, trial 4) the data changes and the suggestions do not: win rate
    stayed planned at 100 % against 27 % actual. This plans them again; the caller saves the tree.
    """
    engine = source if isinstance(source, Engine) else Engine(source)
    baseline_end, through, _ = plan_window(engine.as_of)
    todo = [n for n in tree.nodes if n.target.suggested and n.metric in CATALOGUE]
    kept = sum(1 for n in tree.nodes if n.target.is_set and not n.target.suggested)
    if not todo:
        return Resuggested(tree, baseline_end.key, 0, kept)
    only = dataclasses.replace(tree, nodes=tuple(todo))
    try:
        planned = {n.id: n.target for n in plan_targets(engine, only, baseline_end, through, HISTORY_MONTHS,
                                                         min_months=MIN_MONTHS, mark=True).nodes}
    except duckdb.Error as exc:  # a node this data cannot compute: said, never a traceback
        raise KpiTreeError(f"the targets could not be planned from this workspace's data ({exc})") from exc
    merged = dataclasses.replace(tree, nodes=tuple(dataclasses.replace(n, target=planned[n.id])
                                                   if n.id in planned else n for n in tree.nodes))
    # a person's target is never rewritten, and what is re-suggested around it follows it (ARR typed by hand:
    # ARR at start opens at it)
    chained = {n.id: n for n in chain_targets(merged, baseline_end, actual=_openings(engine, merged),
                                              keep={n.id for n in tree.nodes if n.id not in planned}).nodes}
    nodes = tuple(chained[n.id] if n.id in planned else n for n in tree.nodes)  # a person's target stays
    changes, moved = [], 0
    for old, new in zip(tree.nodes, nodes, strict=True):
        if old.id not in planned or old.target == new.target:
            continue
        moved += 1
        before, after = (dict(x.target.by_period).get(baseline_end.key, x.target.value) for x in (old, new))
        if before != after:
            changes.append(TargetChange(old.id, old.label, old.shown_unit, before, after))
    return Resuggested(dataclasses.replace(tree, nodes=nodes), baseline_end.key, len(planned), kept,
                       tuple(changes), moved)


def resuggest_summary(done: Resuggested, limit: int = 4) -> str:
    """One sentence on what re-suggesting changed: "3 of 12 suggested targets change with the data (for
    2026-11: Win rate 100.0% → 27.0%, …); 2 targets set by hand stay as they are."."""
    def said(v: float | None, unit: str) -> str:
        return "no target" if v is None else fmt(v, unit, compact=True)

    kept = (f"; {done.kept} target{'s' if done.kept != 1 else ''} set by hand stay as they are" if done.kept
            else "")
    if not done.replanned:
        return f"No target of this tree is a suggestion from the data{kept}."
    if not done.stale:
        return f"The {done.replanned} suggested targets already match the data as it is now{kept}."
    shown = "; ".join(f"{c.label} {said(c.before, c.unit)} → {said(c.after, c.unit)}" for c in done.changes[:limit])
    more = f"; {len(done.changes) - limit} more" if len(done.changes) > limit else ""
    month = f" (for {done.month}: {shown}{more})" if shown else ""
    return (f"{done.moved} of {done.replanned} suggested targets change with the data as it is now{month}{kept}.")


@dataclass(frozen=True)
class ActiveResuggestion:
    """The workspace's active tree with its suggested targets planned again (`resuggest_targets`)."""

    name: str
    done: Resuggested
    draft: bool  # the tree has unsaved Builder edits (a draft): publishing here would replace them


def resuggest_active(ws: Workspace, engine: Engine | None = None) -> ActiveResuggestion | None:
    """`resuggest_targets` for the workspace's active published tree; None when it has none (the first
    load suggests one) or it cannot be read (the Builder lists a broken file with its problem)."""
    store = TreeStore(ws.trees_dir)
    name = store.active()
    if name is None or not store.published_path(name).exists():
        return None
    try:
        tree = load_tree(store.published_path(name))
    except KpiTreeError:
        return None
    done = resuggest_targets(engine or Engine(ws), tree)
    return ActiveResuggestion(name, done, store.draft_path(name).exists())


def publish_resuggested(ws: Workspace, found: ActiveResuggestion, who: str) -> int:
    """Publishes the active tree with its re-suggested targets as a new version (its history keeps the
    earlier one, restorable); the version's number. Refuses when the tree has a draft: publishing would
    drop the Builder edits saved in it."""
    if found.draft:
        raise KpiTreeError(f"tree {found.name!r} has a draft with edits not published yet: open it in the Builder "
                           "and press Re-suggest targets on its Targets tab, then save")
    return TreeStore(ws.trees_dir).publish(found.done.tree, found.name, who, action="re-suggest targets").number

# --- the shipped demo -------------------------------------------------------------------------

_DEMO_LOCK = threading.Lock()
_DEMO_DIGEST: dict[tuple[str, int], str] = {}
_DEMO_SEEN: dict[tuple[str, str], bool] = {}


def _demo_digest() -> str | None:
    """The content hash ingest records for the shipped demo's deals file (as `_digest` computes it)."""
    try:
        stamp = (str(DEMO_DEALS), DEMO_DEALS.stat().st_mtime_ns)
    except OSError:
        return None
    with _DEMO_LOCK:
        if stamp not in _DEMO_DIGEST:
            h = hashlib.blake2b(digest_size=16)
            with gzip.open(DEMO_DEALS, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    h.update(chunk)
            _DEMO_DIGEST.clear()
            _DEMO_DIGEST[stamp] = h.hexdigest()
        return _DEMO_DIGEST[stamp]


def is_demo(ws: Workspace) -> bool:
    """True when the workspace's deals are the shipped demo's (loaded by `make run`, or uploaded).

    The templates carry the demo's plan, so there — and only there — they are shown as they are.
    """
    key = (str(ws.root), ws.data_version())
    with _DEMO_LOCK:
        if key in _DEMO_SEEN:
            return _DEMO_SEEN[key]
    digest = _demo_digest()
    try:
        loads = ws.loads(limit=200)
    except (KpiTreeError, duckdb.Error):
        loads = []
    latest_deals = next((row for row in loads if row.get("table_name") == "deals"), None)
    found = bool(digest and latest_deals and latest_deals.get("content_hash") == digest)
    with _DEMO_LOCK:
        _DEMO_SEEN[key] = found
    return found


def template_choices() -> list[Path]:
    """The shipped templates, seed 003's first (the user's own method)."""
    return sorted(TEMPLATES.glob("*.yaml"), key=lambda p: (not p.stem.startswith("seed003"), p.stem))
