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

An owner written "Reps (per owner)" (what a suggested tree gives a rep-level lever: also "Deal owners
(per owner)", "Sales managers: A, B +2 (per manager)") is no person: every value of the data's `owner`
(`manager`, …) column owns their part of the number. `people_parts` splits such a number by that
column for the period (the same query as the tree page's Split by), and `owners` lists each person
found in the data with their own figure — a rate of rows among rows judged against the number's target by
the node's own rule (a win-rate target is every rep's), an amount shown as their share of the team's with
the team's colour (a team's target says nothing about one person's part) — instead of one pseudo-person.

A mean (average deal size, sales cycle: an amount or days over a count of rows) is not a rate: it depends
on what one sells. The team's $2.27M average deal size mixes Enterprise and SMB deals, so an SMB rep's
$191k is no shortfall (trial 4). A person's mean is compared with the team's value in the group they sell
in — the segment (channel, region, …) holding at least 95 % of their rows over the last six periods —
by the node's threshold and direction; where no such group exists, or they are the only one selling in
it, their figure is shown without a status (`NOT_JUDGED`), never against the team's target.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist
from typing import Any

from .bridge import opening_child
from .errors import KpiTreeError
from .evaluate import NO_TARGET, status_of
from .explain.evidence import _is_count  # the one test of a component that counts rows
from .format import dimension_label, fmt, fmt_share
from .metrics import Kind, metric
from .periods import Period, parse_period
from .plain import csv_text
from .review import Note, open_actions
from .snapshots import CauseState, NodeState, Snapshot, status_word
from .tree import Tree, owner_missing

CSV_HEADER = ("owner", "number", "status", "value", "target", "why", "open actions")
SUGGESTED = "~"  # before a target suggested from the workspace's history, not typed by a person (the tree's boxes)
# Decimals a number written to a CSV keeps, by unit: what a person would type. Sums of floats come out
# as 1025437.9199999998 (trial E's values CSV); money is kept to the cent, a rate (a fraction) to a
# hundredth of a percentage point, durations to a hundredth.
CSV_DECIMALS = {"money": 2, "money_per_day": 2, "count": 2, "score": 2, "percent": 4, "ratio": 4, "days": 2,
                "hours": 2, "months": 2, "minutes": 2}
OTHER_DECIMALS = 4  # a unit not listed (a custom measure's own)
OFF = ("red", "amber")
TOO_FEW = "too_few"  # a person's rate off its target on too few rows to tell from chance (`_evident`)
Z_MIN = 2.0  # standard errors a person's rate must be off its target by to carry the rule's red or amber
MIN_MEAN_ROWS = 5  # rows a person's mean (deal size, cycle days) needs before it is judged at all
NOT_JUDGED = "not_judged"  # a person's mean with no group of peers to compare it with (`_home_groups`)
NESTED_SHARE = 0.95  # a person sells in one group when it holds at least this share of their rows
HOME_PERIODS = 6  # periods (this one and those before) over which where a person sells is decided
MAX_GROUP_VALUES = 12  # a candidate group dimension with more values is no segmentation to compare within
RANK = {"red": 0, "amber": 1, TOO_FEW: 2, "no_data": 2, "no_target": 3, NOT_JUDGED: 3, "green": 4}


@dataclass(frozen=True)
class OwnedNode:
    node: NodeState
    sentence: str  # why it is off ("" when on target); a person's part always says its figures
    carried: bool = False  # an opening balance: last period's closing value, no lever of this one
    part_of: str = ""  # a person's part of a number owned per person: the tree's owner ("Reps (per owner)")
    suggested: bool = False  # its target was suggested from the data's history, not typed (a part's: its number's)

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

    @property
    def part_of(self) -> list[str]:
        """The per-person owners ("Reps (per owner)") whose numbers this person owns a part of."""
        return list(dict.fromkeys(o.part_of for o in self.nodes if o.part_of))


# --- numbers owned per person ("Reps (per owner)") ------------------------------------------------

_PER = re.compile(r"\(\s*per\s+([^()]+?)\s*\)\s*$", re.IGNORECASE)
_COLUMN_OF = {"rep": "owner", "reps": "owner", "person": "owner"}
# what a ratio's denominator counts, for "on 14 decided deals"
_COUNTS = {"decided": "decided deals", "won": "won deals", "priced": "won deals with an amount",
           "opps": "deals created", "base": "customers at the start", "customers": "customers"}


def _stands_out(hits: float, rows: float, target: float, higher: bool) -> bool:
    """A person's rate of rows among rows (won of decided) is off its target beyond chance: the one-sided
    binomial mid-p of doing this badly at the target rate is under 2.3 % (two standard errors). 0 of 1
    upsell against a 36 % target happens 64 % of the time: no red mark for it."""
    n, x = int(round(rows)), int(round(hits))
    if n <= 0 or not 0.0 < target < 1.0 or not 0 <= x <= n:
        return True  # nothing to weigh: the rule's verdict stands
    log_pmf = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(target)
               + (n - k) * math.log1p(-target) for k in range(n + 1)]
    pmf = [math.exp(v) for v in log_pmf]
    worse = sum(pmf[:x]) if higher else sum(pmf[x + 1:])
    return worse + pmf[x] / 2 < NormalDist().cdf(-Z_MIN)


def per_dimension(owner: str) -> str | None:
    """The data column whose every value owns a part of a number, from how the tree names its owner:
    "Reps (per owner)" → "owner", "Sales managers: Ana, Ben +2 (per manager)" → "manager"; None for a
    person or a role ("CEO — to assign", "Marcus Chen (AE lead)")."""
    found = _PER.search(owner or "")
    if found is None:
        return None
    column = "_".join(found.group(1).split()).casefold()
    return _COLUMN_OF.get(column, column)


@dataclass(frozen=True)
class PersonPart:
    """One person's part of a number owned per person, in the period."""

    person: str
    value: float | None
    target: float | None  # a rate's: the number's own (every rep's); a mean's: its group's value; an amount: None
    status: str  # a rate's own; an amount's part carries the team's
    volume: float | None = None  # a ratio's denominator: the deals (customers, …) the rate is over
    counted: str = ""  # what the volume counts: "decided deals"
    rate: bool = True  # a rate or mean (judged against the number's target); False: an amount (a share)
    share: float | None = None  # an amount's part of the team's total
    group: str = ""  # a mean compared within the group the person sells in: "SMB"
    group_by: str = ""  # that group's column as a reader says it: "segment"
    unjudged: str = ""  # a mean shown without a status: why, in a clause


@dataclass(frozen=True)
class PeopleSplit:
    """A number owned per person, split by its column: each person's part, or why it cannot be."""

    node: str
    dimension: str
    parts: tuple[PersonPart, ...] = ()
    why_not: str = ""  # no parts: what is missing, in a sentence


def people_parts(engine: Any, tree: Tree, evaluation: Any) -> dict[str, PeopleSplit]:
    """Per node owned per person (`per_dimension`), the people found in the data for the evaluation's
    period with their part: the node's metric split by that column, with the node's filter.

    A rate is judged against the node's own target by the node's rule (`NodeResult.status_at`: the
    threshold, a running stock's target by now, a maturing cohort alike) — a 28 % win-rate target is
    every rep's. An amount (a flow, a stock) has no per-person target here: the team's is not split
    by anything the tree says, so the part is shown as a share of the team's total and carries the team's
    status — a red total is every contributor's to discuss, and never drops off the red list.
    Rows without a value in the column (`(none)`) are nobody's part and are left out.
    """
    out: dict[str, PeopleSplit] = {}
    period = evaluation.period
    for node in tree.nodes:
        dim = per_dimension(node.owner)
        if dim is None:
            continue
        res = evaluation.node(node.id)
        why = _why_no_parts(engine, node, res, dim)
        if why:
            out[node.id] = PeopleSplit(node.id, dim, why_not=why)
            continue
        m = metric(node.metric)
        name = m.running if m.running and not period.is_complete(engine.as_of) else m.name
        try:
            df = engine.query(name, [period], dimension=dim, filters=node.filter)
        except KpiTreeError as exc:
            out[node.id] = PeopleSplit(node.id, dim, why_not=f"{node.label} cannot be split by {dim}: {exc}")
            continue
        period_rows = df[df.pkey == period.key]
        rate = m.kind == Kind.RATIO
        total = None if rate else float(period_rows["value"].sum())  # the team's, rows without an owner too
        rows = period_rows[period_rows.segment != "(none)"]
        parts = []
        homes = _home_groups(engine, tree, node, name, dim, period) if rate and is_mean(m) else None
        for _, r in rows.iterrows():
            value = None if r["value"] is None or r["value"] != r["value"] else float(r["value"])
            if value is None:
                continue  # in the data, but nothing of this number (a rep with no decided deal)
            if homes is not None:
                parts.append(_mean_part(m, res, str(r["segment"]), value, r, homes))
            elif rate:
                volume = float(r[m.ratio[1]]) if m.ratio and m.ratio[1] in r else None
                status = res.status_at(value)
                if status in OFF and not _evident(m, r, value, volume, res):
                    status = TOO_FEW  # 0 of 1 upsell is no red mark on a person (see `_evident`)
                parts.append(PersonPart(str(r["segment"]), value, res.judged_target, status, volume, _counted(m)))
            else:  # everybody's part of the team's amount carries the team's colour: a red total is theirs to discuss
                share = value / total if total else None
                parts.append(PersonPart(str(r["segment"]), value, None, res.status, share=share, rate=False))
        if not parts:
            out[node.id] = PeopleSplit(node.id, dim, why_not=f"no {dim} has a {node.label} in {period.key}")
            continue
        parts.sort(key=lambda p: (RANK.get(p.status, 5), p.person.casefold()))
        out[node.id] = PeopleSplit(node.id, dim, tuple(parts))
    return out


def is_mean(m: Any) -> bool:
    """A ratio whose denominator counts rows and whose numerator does not (an amount, days): a mean per row,
    which depends on which rows one has — average deal size, sales cycle. Win rate (rows among rows) and
    NRR (an amount over an amount) are not."""
    return bool(m.kind == Kind.RATIO and m.ratio and _is_count(m, m.ratio[1]) and not _is_count(m, m.ratio[0]))


@dataclass(frozen=True)
class HomeGroups:
    """Where each person sells, for comparing their mean with their peers'.

    `dimension` is the group column ("segment"; "" when none nests the people); `home` maps a person to the
    group holding ≥ `NESTED_SHARE` of their rows over `HOME_PERIODS` periods; `value` and `rows` are each
    group's team value and denominator in the period; `spread` the standard deviation of one row's value in
    a group, from how far its people's means stray from the group's period by period (`_spread`)."""

    dimension: str = ""
    home: dict[str, str] = dataclasses.field(default_factory=dict)
    value: dict[str, float] = dataclasses.field(default_factory=dict)
    rows: dict[str, float] = dataclasses.field(default_factory=dict)
    spread: dict[str, float] = dataclasses.field(default_factory=dict)  # a group's one-row standard deviation


def _home_groups(engine: Any, tree: Tree, node: Any, name: str, dim: str, period: Period) -> HomeGroups:
    """The group dimension the people of `dim` sell in (`HomeGroups`): of the node's drill dimensions (and
    `segment`), the one in which most people hold ≥ 95 % of their rows over the last six periods — reps
    nested in segments. Read with the catalogue's own queries: the metric split by the group, and split by
    person within each group value (a filter), so the figures are the tree page's."""
    m = metric(name)
    den = m.ratio[1] if m.ratio else None
    periods = [period]
    for _ in range(HOME_PERIODS - 1):
        periods.insert(0, periods[0].previous())
    wanted = [d for d in dict.fromkeys(("segment", *tree.dimensions_for(node), "region", "team", "channel")) if d != dim]
    best = HomeGroups()
    for group in engine.dimensions(node, wanted):
        try:
            by_group = engine.query(name, [period], dimension=group, filters=node.filter)
            values = [str(v) for v in engine.query(name, periods, dimension=group, filters=node.filter)
                      .segment.unique() if str(v) != "(none)"]
            if not 2 <= len(values) <= MAX_GROUP_VALUES or den is None:
                continue
            history = engine.query(name, periods, dimension=group, filters=node.filter)
            rows_in: dict[str, dict[str, float]] = {}
            spread: dict[str, float] = {}
            for value in values:
                within = engine.query(name, periods, dimension=dim, filters=(*node.filter, (group, (value,))))
                for person, n in within.groupby("segment")[den].sum().items():
                    if str(person) != "(none)" and n > 0:
                        rows_in.setdefault(str(person), {})[value] = float(n)
                sd = _spread(within[within.segment != "(none)"], history[history.segment == value], den)
                if sd is not None:
                    spread[value] = sd
        except KpiTreeError:
            continue  # a group this metric's rows cannot be filtered by (an account attribute): not a candidate
        home = {p: max(counts, key=counts.get) for p, counts in rows_in.items()
                if max(counts.values()) >= NESTED_SHARE * sum(counts.values())}
        if len(home) > len(best.home):
            now = by_group[(by_group.pkey == period.key) & (by_group.segment != "(none)")]
            best = HomeGroups(group, home,
                              {str(s): float(v) for s, v in zip(now.segment, now["value"], strict=True) if v == v},
                              {str(s): float(n) for s, n in zip(now.segment, now[den], strict=True) if n == n},
                              spread)
    return best


def _spread(cells: Any, group: Any, den: str) -> float | None:
    """The standard deviation of one row's value (one deal's amount, cycle days) in a group, from its
    people's means period by period: a mean of n rows strays from its group's by about σ/√n, so
    σ² ≈ Σ n·(person's mean − group's mean)² / (cells − periods). Real differences between people
    widen it, so a person flagged against it stands out of them too. None with fewer than 3 cells to spare."""
    means = {str(k): float(v) for k, v in zip(group.pkey, group["value"], strict=True) if v == v}
    total, cells_n, periods = 0.0, 0, set()
    for key, value, n in zip(cells.pkey, cells["value"], cells[den], strict=True):
        if value != value or not n or str(key) not in means:
            continue
        total += float(n) * (float(value) - means[str(key)]) ** 2
        cells_n += 1
        periods.add(str(key))
    free = cells_n - len(periods)
    return math.sqrt(total / free) if free >= 3 else None


def _mean_part(m: Any, res: Any, person: str, value: float, row: Any, homes: HomeGroups) -> PersonPart:
    """A person's mean against their group's value (`_home_groups`), by the node's threshold and direction —
    red or amber only beyond two standard errors of the difference (σ·√(1/n − 1/N): the person's n rows
    are part of the group's N) and on `MIN_MEAN_ROWS` rows, else too few to tell; without a group of peers
    to compare with, shown without a status and saying why."""
    volume = float(row[m.ratio[1]]) if m.ratio and m.ratio[1] in row else None
    base = PersonPart(person, value, None, NOT_JUDGED, volume, _counted(m))
    if not homes.dimension:
        return dataclasses.replace(base, unjudged="no segment the people each sell in alone was found")
    group = homes.home.get(person)
    said = dimension_label(homes.dimension, capital=False)
    if group is None:
        return dataclasses.replace(base, unjudged=f"they sell in more than one {said}")
    bench, rows = homes.value.get(group), homes.rows.get(group, 0.0)
    if bench is None or volume is None or rows - volume <= 0:
        return dataclasses.replace(base, group=group, group_by=said,
                                   unjudged=f"nobody else's {_counted(m) or 'rows'} in {group} to compare with")
    status = status_of(value, bench, res.direction, res.amber)
    sd = homes.spread.get(group)
    noise = sd * math.sqrt(max(1 / volume - 1 / rows, 0.0)) if sd is not None and volume > 0 else None
    if status in OFF and (volume < MIN_MEAN_ROWS or (noise is not None and abs(value - bench) < Z_MIN * noise)):
        status = TOO_FEW  # within what its own deals' spread makes of a mean of so few
    return dataclasses.replace(base, target=bench, status=status, group=group, group_by=said)


def _evident(m: Any, row: Any, value: float, volume: float | None, res: Any) -> bool:
    """A person's off-target rate stands out of the noise of its own rows: a rate of rows among rows by the
    binomial test against the target (`_stands_out`); a mean of amounts or days needs `MIN_MEAN_ROWS` rows."""
    target = res.judged_target
    if target is None or volume is None:
        return True
    num = m.ratio[0] if m.ratio else None
    counts = num is not None and all(_is_count(m, c) for c in m.ratio)
    if counts and num in row:
        return _stands_out(float(row[num]), volume, target, res.direction == "higher")
    return volume >= MIN_MEAN_ROWS


def _why_no_parts(engine: Any, node: Any, res: Any, dim: str) -> str:
    if res.value is None:
        return f"{node.label} has no data" + (f" ({res.reason})" if res.reason else "")
    if dim not in engine.dimensions(node, [dim]):
        return (f"the rows {node.label} reads have no {dim} with a value, so nobody's part can be told "
                f"(load or map a {dim} column)")
    return ""


def _counted(m: Any) -> str:
    """What a ratio's denominator counts ("decided deals"), for "on 14 decided deals"."""
    return _COUNTS.get(m.ratio[1], m.ratio[1].replace("_", " ")) if m.ratio else ""


def part_sentence(node: NodeState, part: PersonPart, dimension: str, causes: tuple[CauseState, ...] = ()) -> str:
    """A person's part in one sentence: "7.1% against 27.8% on 14 decided deals (the team: 26.6%)",
    or for an amount "$269.9k, 26% of the team's $1.05M (no target per owner)"; then the explanation's
    own sentence when it names this person as where the gap sits."""
    team = fmt(node.value, node.unit, compact=True)
    said = fmt(part.value, node.unit, compact=True)
    if part.rate:
        counted = re.sub(r"s\b", "", part.counted, count=1) if part.volume == 1 else part.counted  # 1 won deal
        on = f" on {part.volume:,.0f} {counted}" if part.volume is not None and counted else ""
        against = f" against {fmt(part.target, node.unit, compact=True)}" if part.target is not None else \
            " (no target)"
        text = f"{said}{against}{on} (the team: {team})."
        if part.group and part.target is not None:  # a mean, against its own group's
            text = (f"{said}{on}, against {fmt(part.target, node.unit, compact=True)} for {part.group} as a whole "
                    f"(an average is compared within the {part.group_by} one sells in: the team's {team} mixes them).")
        elif part.status == NOT_JUDGED:
            text = (f"{said}{on} (the team: {team}). Not judged: an average depends on where one sells, "
                    f"and {part.unjudged}, so the team's target is not theirs.")
        if part.status == TOO_FEW:
            text += " Too few to tell from chance: not a red mark on its own."
    else:
        share = f", {fmt_share(part.share)} of the team's {team}" if part.share is not None else ""
        against = f" against {fmt(node.target, node.unit, compact=True)}" if node.target is not None else ""
        team_status = f"the team's number is {status_word(node.status)}{against}; " if node.status != NO_TARGET else ""
        text = f"{said}{share} ({team_status}its target is not split per {dimension.replace('_', ' ')})."
    named = [c.sentence for c in causes if c.id == node.id and _names(c.segment, dimension, part.person)]
    return " ".join([text, *named])


def _names(segment: str | None, dimension: str, person: str) -> bool:
    """Whether a cause's segment ("owner: Dana Whitfield", "owner × segment: Dana Whitfield × SMB") is
    this person's."""
    if not segment or ": " not in segment:
        return False
    dims, _, values = segment.partition(": ")
    pairs = zip(dims.split(" × "), values.split(" × "), strict=False)
    return any(d == dimension and _key(v) == _key(person) for d, v in pairs)


def csv_number(value: object, unit: str | None) -> object:
    """A number as a person would type it in a CSV: rounded to its unit's decimals (`CSV_DECIMALS`), a
    whole number without ".0". Anything else is returned as it is, for `plain.csv_text` to write."""
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    rounded = round(value, CSV_DECIMALS.get(unit or "", OTHER_DECIMALS))
    if rounded == 0:
        return 0  # not "-0.0"
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def target_text(node: NodeState, suggested: bool, *, compact: bool = False) -> str:
    """The target marked as the tree's boxes mark it: "~$41,719,444" when it was suggested from the
    data's history, not typed by a person (trial E: the Owners CSV showed it bare)."""
    text = fmt(node.target, node.unit, compact=compact)
    return SUGGESTED + text if suggested and node.target is not None else text


def figures_text(o: OwnedNode) -> str:
    """"$38.71M / ~$41.72M": the number against its target, as its box on the tree page reads."""
    n = o.node
    if n.value is None:
        return "no data"
    return fmt(n.value, n.unit, compact=True) + (" · no target" if n.target is None
                                                 else " / " + target_text(n, o.suggested, compact=True))


def is_suggested(tree: Tree | None, node_id: str) -> bool:
    """The node's target in `tree` was suggested from the workspace's history (`Target.suggested`)."""
    if tree is None:
        return False
    try:
        return bool(tree.node(node_id).target.suggested)
    except KeyError:
        return False


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


def owners(snapshot: Snapshot, notes: list[Note], tree: Tree | None = None,
           people: dict[str, PeopleSplit] | None = None) -> list[OwnerEntry]:
    """Every owner of a node in `snapshot` (and of an open action in `notes`), most red numbers first.

    `tree` (the snapshot's tree) tells which nodes are opening balances (`carried_over`); without it
    none is recognised and an opening balance counts as any red number. `people` (`people_parts` of the
    same period) lists each person who owns a part of a number owned per person ("Reps (per owner)")
    with their part, instead of the pseudo-person; without it (a saved snapshot), or where a number
    cannot be split, the number stays under the name the tree gives, saying why.
    """
    by_owner: dict[str, list[OwnedNode]] = {}
    names: dict[str, str] = {}
    for n in snapshot.nodes:
        key = _key(n.owner) or "(no owner)"
        carried = carried_over(tree, n, snapshot.period) if tree is not None else None
        suggested = is_suggested(tree, n.id)
        split = (people or {}).get(n.id)
        if carried is None and split is not None and split.parts:
            for part in split.parts:
                person = _key(part.person)
                names.setdefault(person, part.person)
                own = dataclasses.replace(n, owner=part.person, value=part.value, target=part.target,
                                          status=part.status, previous=None)
                by_owner.setdefault(person, []).append(
                    OwnedNode(own, part_sentence(n, part, split.dimension, snapshot.causes), part_of=n.owner.strip(),
                              suggested=suggested))
            continue
        names.setdefault(key, n.owner.strip() or "(no owner)")
        if carried is not None:
            by_owner.setdefault(key, []).append(OwnedNode(n, carried, carried=True, suggested=suggested))
            continue
        sentence = snapshot.sentence_for(n.id) if n.status in OFF else ""
        if split is not None:  # owned per person, but nobody's part can be told
            sentence = " ".join(x for x in (sentence, f"Every {split.dimension.replace('_', ' ')} owns their "
                                                      f"part, but {split.why_not}.") if x)
        by_owner.setdefault(key, []).append(OwnedNode(n, sentence, suggested=suggested))
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
            status = ("not judged" if n.status == NOT_JUDGED else status_word(n.status)) \
                + (", carried over" if o.carried else "")
            rows.append({"owner": e.owner, "number": n.label, "status": status,
                         "value": fmt(n.value, n.unit), "target": target_text(n, o.suggested), "why": o.sentence,
                         "open actions": actions_text(own, today)})
    return rows


def owners_csv(entries: list[OwnerEntry], today: date | None = None, red_only: bool = False) -> str:
    """The owners' list as CSV, every cell neutralised for spreadsheets (`plain.csv_text`)."""
    rows = owner_rows(entries, today, red_only)
    return csv_text(CSV_HEADER, ([r[h] for h in CSV_HEADER] for r in rows))
