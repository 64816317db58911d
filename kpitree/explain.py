"""Why is it red? Children attribution, segment drill-down and the red path for one node.

`explain_node(workspace_or_engine, tree, node_id, period, versus=...)` answers "where to look and
who to talk to" for one node in one period, against its target, the previous period or the same
period last year. Everything adds up exactly; the arithmetic lives in `attribution`.

1. **Children attribution.** The parent's gap is split over the children of its formula, plus an
   explicit `residual` (the parent's own value or target differing from what its formula gives),
   so the parts add up to the parent's actual gap. Sums split by deltas. Products and other
   formulas are attributed *within segments* — LMDI per segment (Shapley where a factor is zero),
   summed — of the single dimension that best explains the parent's change: over the totals, a
   rep who stops winning Enterprise deals would show up as a smaller average deal size (fewer big
   deals in the mix), which is Simpson's paradox; within reps or segments it is win rate.
   Influence children (not in the formula) get their own status and change, never a share.
2. **Segment drill-down.** The node's metric split by each drill dimension (and pairs of them
   when no single one explains much); each segment's contribution to the gap, mix and rate
   effects for ratio metrics (exact, see `attribution.mix_rate`), dimensions ranked
   Adtributor-style by explanatory power, succinctness and surprise; the top segment is narrowed
   by a second dimension when one sub-segment carries most of it ("Enterprise × Dana Whitfield").
3. **Red path.** From the node down the child that explains most of the gap (exact links: the
   largest adverse part, if the child is itself off its baseline; influence links: the red child
   furthest beyond its amber band) to a lever, with its top segment, owners and one sentence each.

Baselines. Against the previous period or last year, every number is compared with its own value
then, segment by segment. Against a target, the parent's gap is value − target and its children's
baselines are their targets; segments have no targets, so their structure comes from a
*reference*: of the `REFERENCE_PERIODS` periods before and the same period last year, every one
in which the node (for a formula: its children) was within its amber band of target, pooled (the
single closest when none was) — periods that went to plan have the mix the plan assumed, whereas
the month just before may already carry a problem that began weeks ago, and pooling several
evens out a small segment's noise. Additive metrics then share the target
out over segments by their weight in the reference period (segment baseline = target × share);
ratio metrics keep each segment's reference weight and rate, and the distance between target and
reference level is reported as its own line, `(target vs reference level)`, which no segment owns.
Within-segment children attribution against a target runs from the reference period to now per
segment, plus target → reference over the totals (small by the choice of period): exact in sum.

Speed. A node and its children are read together: one SQL scan per (table, join condition) —
each node's filter moves into its aggregates' FILTER clause — grouped by the finest combination
of the drill dimensions, for the current period and the candidate reference periods at once;
every split (totals, a dimension, a pair) is then a `bincount` over those cells. Metrics whose
components do not add up over cells (per-customer MRR movements, DISTINCT counts) use the
catalogue's own query per dimension. Results are cached per workspace data version. The SQL is
built from the catalogue's building blocks in `metrics` (periods, dimension and filter SQL).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from . import attribution as att
from .cache import ResultCache
from .errors import KpiTreeError, QueryError
from .evaluate import Engine, Evaluation, status_of, target_for
from .format import fmt, fmt_change, fmt_relative, fmt_share
from .metrics import (
    Kind,
    Metric,
    MetricQuery,
    Source,
    customer_cells_sql,
    dimension_sql,
    filter_sql,
    metric,
    periods_cte,
    source_filters,
)
from .periods import Grain, Period, parse_period, resolve_period
from .tree import Node, Tree
from .workspace import Workspace

VERSUS = ("target", "previous", "last_year")
REFERENCE_PERIODS = {Grain.WEEK: 8, Grain.MONTH: 6, Grain.QUARTER: 4, Grain.YEAR: 1}  # candidates (+ last year)
ACCOUNT_DIMENSIONS = ("csm", "industry")  # customer metrics are also split by the account's CSM and industry
PAIR_WHEN_TOP_BELOW = 0.5  # look at pairs of dimensions when no single segment explains half the change
REFINE_SHARE = 0.75  # a sub-segment holding this share of the top segment's part names it more precisely
EXACT_FIRST_SHARE = 0.25  # follow an exact child before a red influence if it explains at least this share
ON_TARGET_BANDS = 0.25  # a child within a quarter of its amber band of its baseline is on target: not followed
TOP_SEGMENTS = 5  # segments per dimension in the flat `segments` list
BRANCH_SHARE = 0.15  # an exact child explaining this share of its parent's gap is a cause of its own
CONCENTRATED_SHARE = 0.5  # a cause whose top segment holds this share of its gap is listed before diffuse ones
NAMED_SHARE = 0.1  # a segment carrying this share of the gap is named as explaining it (words and red bars)
ALSO_SHARE = 0.1  # a segment's own rate effect worth this share of the node's gap is reported beside a mix shift
ALL = "\x00all"  # marks a rolled-up dimension in grouping-set results
PSEUDO = ("(target vs reference level)", "(not attributable)")  # parts of a change that no segment owns
PAIR_SEP = " × "
NONE = "(none)"  # the segment of rows without a value of the dimension (see `metrics.dimension_sql`)
# Rows without a value are named as a cause ("deals with no owner") only where at least this share
# of the rows has one: in a mostly empty column, "(none)" is the export's gap, not a finding.
NAMED_EMPTY_MIN_FILL = 0.5
STATUS_PHRASE = {"green": "on target", "amber": "only near its target", "red": "off target",
                 "no_target": "without a target", "no_data": "without data"}
METRIC_NOUNS = {"feature_adoption": "accounts", "health_score": "accounts", "at_risk_accounts": "accounts",
                "upsell_eligible_accounts": "accounts", "dau": "users", "wau": "users", "mau": "users",
                "dau_mau": "users", "time_in_product_minutes": "users", "journey_completion": "users",
                "time_to_first_value_days": "customers"}
NOUNS = {"deals": "deals", "leads": "leads", "subscriptions": "customers", "activities": "activities",
         "spend": "spend", "quotas": "quota", "tickets": "tickets", "events": "events", "nps": "responses"}


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentPart:
    """One segment's contribution to the node's change (mix + rate for ratio metrics)."""

    dimension: str
    segment: str
    contribution: float
    share: float | None  # of the node's gap; negative when the segment offsets it
    value: float | None = None
    baseline: float | None = None
    mix: float | None = None
    rate: float | None = None
    surprise: float = 0.0
    weight: float | None = None  # ratio metrics: the segment's share of the denominator now
    base_weight: float | None = None  # … and in the baseline
    own_rate: float | None = None  # ratio metrics: the rate effect left within another dimension's segments
    within: str | None = None  # … that dimension (see `_conditioned`)

    def to_dict(self) -> dict:
        return _clean({"dimension": self.dimension, "segment": self.segment, "contribution": self.contribution,
                       "share": self.share, "value": self.value, "baseline": self.baseline, "mix": self.mix,
                       "rate": self.rate, "weight": self.weight, "base_weight": self.base_weight,
                       "own_rate": self.own_rate, "within": self.within, "surprise": self.surprise})


@dataclass(frozen=True)
class DimensionRank:
    """A dimension (or a pair, `owner × segment`) judged Adtributor-style, with all its segments."""

    dimension: str
    method: str  # delta, mix_rate, component_path
    basis: str  # what explanatory power counts: contribution, or (ratio metrics) rate effect
    explanatory_power: float  # share of the change explained by the chosen segments
    surprise: float  # Jensen–Shannon surprise of the chosen segments
    score: float  # surprise per chosen segment: surprising and succinct first
    succeeded: bool  # the chosen segments explain more than Adtributor's 67 %
    chosen: tuple[str, ...]
    segments: tuple[SegmentPart, ...]  # best first
    unnamed: tuple[str, ...] = ()  # segments never named as a cause: "(none)" of a mostly empty column

    def to_dict(self) -> dict:
        return _clean({"dimension": self.dimension, "method": self.method, "basis": self.basis,
                       "explanatory_power": self.explanatory_power, "surprise": self.surprise,
                       "score": self.score, "succeeded": self.succeeded, "chosen": list(self.chosen),
                       "segments": [s.to_dict() for s in self.segments]})


@dataclass(frozen=True)
class ChildPart:
    """An exact child's part of the parent's gap (or the residual the formula does not cover)."""

    id: str
    label: str
    owner: str
    contribution: float
    share: float | None
    value: float | None
    baseline: float | None
    unit: str
    status: str
    link: str = "exact"  # exact, or residual
    by_segment: tuple[tuple[str, float], ...] = ()  # (segment, part) of the within-segment attribution

    def to_dict(self) -> dict:
        return _clean({"id": self.id, "label": self.label, "owner": self.owner, "link": self.link,
                       "contribution": self.contribution, "share": self.share, "value": self.value,
                       "baseline": self.baseline, "unit": self.unit, "status": self.status,
                       "by_segment": [{"segment": s, "contribution": c} for s, c in self.by_segment]})


@dataclass(frozen=True)
class Influence:
    """An influence child: its own status and change, which is not a share of the parent's gap."""

    id: str
    label: str
    owner: str
    status: str
    value: float | None
    baseline: float | None
    change: float | None
    relative_gap: float | None
    bands: float | None  # adverse relative gap in units of the child's amber band (≥ 1: red)
    unit: str

    def to_dict(self) -> dict:
        return _clean({"id": self.id, "label": self.label, "owner": self.owner, "link": "influence",
                       "status": self.status, "value": self.value, "baseline": self.baseline,
                       "change": self.change, "relative_gap": self.relative_gap, "bands": self.bands,
                       "unit": self.unit, "note": "influence link: the child's own change, not a share of the gap"})


@dataclass(frozen=True)
class _NodeFacts:
    """Who and where: a node of the explanation with its number and its baseline."""

    id: str
    label: str
    owner: str
    status: str
    value: float | None
    baseline: float | None
    unit: str


@dataclass(frozen=True)
class Step(_NodeFacts):
    """One step of the red path: a node, how it was reached, its top segment and a sentence."""

    link: str  # start, exact, influence; over (no data: stepped over), own (judged on its own, past such a node)
    share: float | None  # of the parent's gap (exact links)
    bands: float | None  # how far beyond its amber band (influence links)
    top_segment: SegmentPart | None
    sentence: str
    segment_sentence: str | None

    def to_dict(self) -> dict:
        top = None
        if self.top_segment is not None:
            top = _clean({"dimension": self.top_segment.dimension, "segment": self.top_segment.segment,
                          "share": self.top_segment.share, "contribution": self.top_segment.contribution,
                          "value": self.top_segment.value, "baseline": self.top_segment.baseline,
                          "mix": self.top_segment.mix, "rate": self.top_segment.rate})
        return _clean({"id": self.id, "label": self.label, "owner": self.owner, "status": self.status,
                       "value": self.value, "baseline": self.baseline, "unit": self.unit, "link": self.link,
                       "share": self.share, "bands": self.bands, "top_segment": top, "sentence": self.sentence,
                       "segment_sentence": self.segment_sentence})


@dataclass(frozen=True)
class Explanation:
    """Why one node is where it is in one period, against one baseline."""

    node: str
    label: str
    owner: str
    period: str
    grain: str
    versus: str
    baseline_label: str  # "target", or the baseline period's key
    value: float | None
    baseline: float | None
    gap: float | None
    status: str
    unit: str
    direction: str
    formula: str | None
    method: str | None  # how the children were attributed
    children: tuple[ChildPart, ...]
    influences: tuple[Influence, ...]
    residual: float | None
    residual_detail: tuple[tuple[str, float], ...]
    segments: tuple[SegmentPart, ...]
    dimensions: tuple[DimensionRank, ...]
    red_path: tuple[Step, ...]
    reference: tuple[str, ...]  # the period(s) segment structure comes from (weights, target shares)
    children_reference: tuple[str, ...]  # … and the within-segment children attribution
    causes: tuple[Cause, ...] = ()  # every lever where a material part of the gap sits, red path's first
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    reason: str = ""  # without a value: what is missing and what to load (see `Engine.no_data_reason`)
    unlisted: tuple[tuple[str, str], ...] = ()  # red nodes below it that no path or cause names: (id, why)
    how: tuple[str, ...] = ()  # "how this was computed": one sentence per method used (see `how_computed`)
    finding: Finding | None = None  # beside a mix shift, the segment whose own rate moved (named in words)

    @property
    def adverse(self) -> bool:
        """The node fell short of (or exceeded, when lower is better) what it is compared with."""
        return self.gap is not None and (self.gap < 0 if self.direction == "higher" else self.gap > 0)

    @property
    def gap_word(self) -> str:
        """"gap" when it fell short of its baseline, "gain" when it beat it."""
        return "gap" if self.adverse or self.gap is None else "gain"

    def headline(self) -> str:
        """The node in plain words: "New ARR: actual $4.27M against target $7.39M (−$3.12M, −42%); off
        target." — against the previous period: "… against $7.27M in 2026-09 (…)"; the status is always
        against the target, and says so."""
        if self.value is None:
            return f"{self.label}: no data in {self.period}" + (f" ({self.reason})." if self.reason else ".")
        if self.baseline is None:
            lacks = "no target" if self.versus == "target" else f"no value in {self.baseline_label} to compare with"
            return f"{self.label}: {fmt(self.value, self.unit)}, {lacks}."
        kind = "target" if self.versus == "target" else "period"
        said = compare_words(self.value, self.baseline, self.unit, kind, self.baseline_label, amount=True)
        status = STATUS_PHRASE.get(self.status, self.status)
        return f"{self.label}: {said}; {status}" + ("." if self.versus == "target" else " (status is against target).")

    def delta(self, *, ascii_sign: bool = False) -> str | None:
        """The box's delta against this explanation's baseline: "−$12.63M vs target", "+$3.19M vs
        2026-09" (None without one). `ascii_sign` for `st.metric`, which reads the sign for its colour."""
        if self.gap is None:
            return None
        against = "target" if self.versus == "target" else self.baseline_label
        return f"{fmt_change(self.gap, self.unit, ascii_sign=ascii_sign)} vs {against}"

    def how_computed(self) -> list[str]:
        """"How this was computed": one sentence per term the explanation used (deltas, LMDI, Shapley,
        the residual, reference periods, mix and rate), for an expander beside the plain words."""
        return list(self.how)

    def summary(self) -> list[str]:
        """The panel's words, plain first: the headline, the child that explains most (the red path's
        next step; at a lever, its top segment), the segments named along the best dimension, and a
        rate finding beside a mix shift."""
        out = [self.headline()]
        if len(self.red_path) > 1:
            out.append(self.red_path[1].sentence)
        elif self.red_path and self.red_path[0].segment_sentence:  # a lever: who, in its top segment
            out.append(self.red_path[0].segment_sentence)
        if self.dimensions and self.gap is not None:
            out.append(self.segment_sentence(self.dimensions[0].dimension))
        if self.finding is not None:
            out.append(self.finding.sentence)
        return out

    def segment_sentence(self, dimension: str) -> str:
        """The segments of `dimension` that explain the gap, in words (see `segment_sentence`)."""
        return segment_sentence(self, dimension)

    def shares_readable(self) -> bool:
        """The children's shares read as parts of one whole: each between 0 and 100 % (else they are
        shown as amounts, with the offsetting parts named — see `children_note`)."""
        return all(-0.005 <= c.share <= 1.005 for c in self.children if c.share is not None)

    def share_column(self) -> str:
        """The children table's column for the parts: "share of gap" ("share of the gain"), or "part of
        gap" when the shares do not read and the cells are amounts."""
        return ("share of " if self.shares_readable() else "part of ") + ("gap" if self.gap_word == "gap" else "the gain")

    def child_cell(self, child_id: str) -> str:
        """What the children table shows for a child: its share ("98%"), its amount ("−$2.24M") when
        the shares do not read, "influence" for an influence link, "—" for nothing to attribute."""
        if any(i.id == child_id for i in self.influences):
            return "influence"
        part = next((c for c in self.children if c.id == child_id), None)
        if part is None or part.share is None:
            return "—"
        return fmt_share(part.share) if self.shares_readable() else fmt_change(part.contribution, self.unit)

    def children_heading(self) -> str:
        """The heading over the waterfall, in plain words (the method is in `how_computed`)."""
        if not self.children or self.gap is None:
            return ""
        if self.shares_readable():
            return f"Share of the {self.gap_word} — the parts add up exactly to the whole"
        return (f"Parts of the {fmt_change(self.gap, self.unit)} {self.gap_word}, as amounts — some parts offset "
                "others")

    def children_note(self) -> str | None:
        """Words for parts that do not read as shares: the parts that make the gap, those that offset it,
        and why there is a residual (the children's targets do not give the parent's target by its
        formula, or the parent is measured apart from its children). None when the shares read."""
        if not self.children or self.gap is None:
            return None
        res = next((c for c in self.children if c.link == "residual"), None)
        material = res is not None and res.share is not None and abs(res.share) >= 0.05
        if self.shares_readable() and not material:
            return None
        sign = 1.0 if self.gap > 0 else -1.0
        named = [c for c in self.children if abs(c.contribution) > 1e-9 * max(abs(self.gap), 1.0)]
        making = sorted((c for c in named if c.contribution * sign > 0), key=lambda c: -abs(c.contribution))
        offsetting = sorted((c for c in named if c.contribution * sign < 0), key=lambda c: -abs(c.contribution))

        def listed(parts: list[ChildPart]) -> str:
            return ", ".join(f"{_child_name(c)} {fmt_change(c.contribution, self.unit)}" for c in parts)

        out = f"The parts add up to the {fmt_change(self.gap, self.unit)} {self.gap_word}: {listed(making)}"
        out += f", offset by {listed(offsetting)}." if offsetting else "."
        why = self._residual_reason() if material else ""
        return f"{out} {why}".strip()

    def _residual_reason(self) -> str:
        detail = dict(self.residual_detail)
        base_off, value_off = detail.get("baseline_vs_formula", 0.0), detail.get("value_vs_formula", 0.0)
        scale = max(abs(self.gap or 0.0), 1e-12)
        said = []
        if abs(base_off) >= 0.05 * scale and self.baseline is not None:
            computed = self.baseline - base_off
            expr = _formula_text(self.formula, {c.id: (c.baseline, c.unit) for c in self.children if c.link == "exact"})
            if self.versus == "target":
                said.append(f"The residual is the targets not fitting the formula: the children's targets give "
                            f"{self.label} {fmt(computed, self.unit, compact=True)}{f' ({expr})' if expr else ''}, "
                            f"{fmt(abs(base_off), self.unit, compact=True)} {'more' if base_off < 0 else 'less'} than "
                            f"its own {fmt(self.baseline, self.unit, compact=True)} target — so the children, each "
                            f"against its own target, do not add up to the parent's gap.")
            else:
                said.append(f"In {self.baseline_label}, {self.label} ({fmt(self.baseline, self.unit, compact=True)}) "
                            f"was not what its formula gave over its children then "
                            f"({fmt(computed, self.unit, compact=True)}): it is measured on its own.")
        if abs(value_off) >= 0.05 * scale and self.value is not None:
            said.append(f"{self.label} as measured ({fmt(self.value, self.unit, compact=True)}) is not what its "
                        f"formula gives over its children's values ({fmt(self.value - value_off, self.unit, compact=True)})"
                        ": it is measured on its own.")
        return " ".join(said)

    def sentences(self) -> list[str]:
        """The red path in plain words, one sentence per step, then the segment at the lever."""
        out = [s.sentence for s in self.red_path]
        if self.red_path and self.red_path[-1].segment_sentence:
            out.append(self.red_path[-1].segment_sentence)
        return out

    def to_dict(self) -> dict:
        return _clean({
            "node": self.node, "label": self.label, "owner": self.owner, "period": self.period,
            "grain": self.grain, "versus": self.versus, "baseline_label": self.baseline_label,
            "value": self.value, "baseline": self.baseline, "gap": self.gap, "status": self.status,
            "unit": self.unit, "direction": self.direction, "formula": self.formula, "method": self.method,
            "children": [c.to_dict() for c in self.children],
            "influences": [i.to_dict() for i in self.influences],
            "residual": self.residual,
            "residual_detail": {k: v for k, v in self.residual_detail},
            "segments": [s.to_dict() for s in self.segments],
            "dimensions": [d.to_dict() for d in self.dimensions],
            "red_path": [s.to_dict() for s in self.red_path],
            "sentences": self.sentences(),
            "causes": [c.to_dict() for c in self.causes],
            "reference": list(self.reference),
            "children_reference": list(self.children_reference),
            "notes": list(self.notes),
            "headline": self.headline(),
            "how": list(self.how),
            "unlisted": [{"id": i, "why": why} for i, why in self.unlisted],
            "reason": self.reason,
            "seconds": round(self.seconds, 4),
        })

    def text(self) -> str:
        """A readable multi-line explanation for the command line: plain words first, the method last."""
        lines = [f"{self.headline()} Owner: {self.owner}."]
        kind = "target" if self.versus == "target" else "period"
        if self.children:
            lines.append("")
            lines.append(f"{self.children_heading() or 'Children'}:")
            for c in self.children:
                cell = self.child_cell(c.id) if c.link == "exact" else (
                    fmt_share(c.share) if self.shares_readable() else fmt_change(c.contribution, self.unit))
                said = (f": {compare_words(c.value, c.baseline, c.unit, kind, self.baseline_label)}"
                        if c.link == "exact" else "")
                lines.append(f"  {cell:>8}  {_child_name(c).capitalize() if c.link == 'residual' else c.label}{said}")
            note = self.children_note()
            if note:
                lines.append(f"  {note}")
        if self.influences:
            lines.append("")
            lines.append("Influences (their own change, not a share of the gap):")
            for i in self.influences:
                said = compare_words(i.value, i.baseline, i.unit, kind, self.baseline_label)
                lines.append(f"  [{STATUS_PHRASE.get(i.status, i.status)}] {i.label}: {said}")
        if self.dimensions:
            lines.append("")
            lines.append("Segments (best dimension first):")
            for d in self.dimensions[:4]:
                lines.append(f"  {self.segment_sentence(d.dimension)}")
                frame = segment_display(self, d.dimension)
                if frame is not None:
                    col = frame.columns[2]
                    for row in frame.head(3).itertuples(index=False):
                        against = f"a {col} of {row[2]}" if col == "target share" else f"{row[2]} ({col})"
                        lines.append(f"    {row[4]:>7}  {row[0]}: {row[1]} against {against}, {row[3]}")
        if self.red_path:
            lines.append("")
            if self.gap is None and len(self.red_path) == 1:
                lines.append(f"Red path: nothing below {self.label} can be judged either.")
            elif self.gap is None:
                lines.append(f"Red path ({self.label} cannot be judged: the parts below it, each on its own):")
            else:
                lines.append("Red path:" if self.adverse else "No shortfall against this baseline; what moved it:")
            for n, sentence in enumerate(self.sentences(), 1):
                lines.append(f"  {n}. {sentence}")
        lever = self.red_path[-1].id if self.red_path else None
        others = [c for c in self.causes if c.id != lever or c.also]
        if others:
            lines.append("")
            lines.append("Also off track (every other lever with a material part of the gap, or red on its own):")
            for c in others:
                said = c.sentences()[1:] if c.id == lever else c.sentences()  # the path said the first already
                aside = f" ({c.aside})" if c.aside else ""
                lines.append(f"  - {' → '.join(c.path_labels[1:]) or c.label}{aside}: {' '.join(said)}")
        if self.unlisted:
            lines.append("")
            lines.append("Red, and not listed above:")
            lines.extend(f"  - {why}" for _, why in self.unlisted)
        for note in self.notes:
            lines.append(f"Note: {note}")
        if self.how:
            lines.append("")
            lines.append("How this was computed:")
            lines.extend(f"  - {h}" for h in self.how)
        return "\n".join(lines)


def _rank_of(result: Explanation, dimension: str) -> DimensionRank | None:
    return next((d for d in result.dimensions if d.dimension == dimension), None)


def _shown_parts(rank: DimensionRank) -> list[SegmentPart]:
    """A dimension's segments as tables show them: no pseudo-segment, none without a value (or with
    zero) on both sides — an AE in a per-SDR metric, a CSM without new deals, says nothing."""
    return [p for p in rank.segments if p.segment not in PSEUDO and (p.value is not None or p.baseline is not None)
            and not (not p.value and not p.baseline and not p.contribution)]  # nothing on either side


def named_segments(result: Explanation, dimension: str) -> list[str]:
    """The segments of `dimension` the explanation names as explaining its gap (or its gain), largest
    part first — the one rule for the words (`segment_sentence`) and the marked bars (`segment_frame`).

    Named: every segment carrying at least `NAMED_SHARE` of the gap in its direction, and the segments
    the sentences single out — the node's top segment (or its part along this dimension, for a pair
    such as "Enterprise × Dana Whitfield") and, beside a mix shift, the segment whose own rate moved.
    Never the "(none)" of a mostly empty column.
    """
    rank = _rank_of(result, dimension)
    if rank is None or result.gap is None:
        return []
    parts = {p.segment: p for p in _shown_parts(rank) if p.segment not in rank.unnamed}
    named = {s for s, p in parts.items() if p.share is not None and p.share >= NAMED_SHARE}
    singled = [result.red_path[0].top_segment if result.red_path else None,
               result.finding.segment if result.finding is not None else None]
    for top in singled:
        if top is None:
            continue
        for d, seg in zip(top.dimension.split(PAIR_SEP), top.segment.split(PAIR_SEP), strict=False):
            p = parts.get(seg)
            if d == dimension and p is not None and (p.share or 0.0) > 0:
                named.add(seg)
        pair = parts.get(top.segment) if top.dimension == dimension else None
        if pair is not None and (pair.share or 0.0) > 0:  # a table of the pair itself
            named.add(top.segment)
    return sorted(named, key=lambda s: -(parts[s].share or 0.0))


def _plural(dimension: str) -> str:
    """"owner" → "owners", "country" → "countries": a dimension is a column name, read as a noun."""
    word = dimension.replace("_", " ")
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word if word.endswith("s") else word + "s"


def segment_sentence(result: Explanation, dimension: str) -> str:
    """The segments `named_segments` marks, in words: "By owner: Dana Whitfield (73%) and Rafael Ortiz
    (19%) explain 92% of the New business ARR gap." — or that no segment carries a material part."""
    rank = _rank_of(result, dimension)
    if rank is None or result.gap is None:
        return ""
    named = named_segments(result, dimension)
    parts = {p.segment: p for p in rank.segments}
    what = f"the {result.label} {result.gap_word}"
    if not named:
        return f"By {dimension}: no {dimension} carries {NAMED_SHARE:.0%} of {what}; it is spread out."
    total = sum(parts[s].share or 0.0 for s in named)
    verb = "explain" if len(named) > 1 else "explains"
    if total > 1.005 or any((parts[s].share or 0.0) > 1.005 for s in named):
        # past the whole gap, shares stop reading as parts of it: amounts, and what offset them
        items = [f"{s} ({fmt_change(parts[s].contribution, result.unit)})" for s in named]
        listed = items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
        rest = result.gap - sum(parts[s].contribution for s in named)
        return (f"By {dimension}: {listed} {verb} more than the whole of {what} "
                f"({fmt_change(result.gap, result.unit)}; the other {_plural(dimension)} made up "
                f"{fmt_change(rest, result.unit)}).")
    items = [f"{s} ({fmt_share(parts[s].share)})" for s in named]
    listed = items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
    return f"By {dimension}: {listed} {verb} {fmt_share(total)} of {what}."


def segment_frame(result: Explanation, dimension: str) -> pd.DataFrame | None:
    """The explanation's segments along one dimension as a table (largest part of the gap first), with
    the same baselines as its sentences, so a chart drawn from it agrees with the words.

    Columns: segment, current, baseline, change (current − baseline), contribution (part of the
    gap; for ratios mix + rate), share (of the gap, or of the gain), adverse (contribution, positive
    when it hurts), explains (named by the sentences: `named_segments`). None when the dimension was
    not ranked.
    """
    rank = _rank_of(result, dimension)
    if rank is None:
        return None
    parts = _shown_parts(rank)
    sign = -1.0 if result.direction == "higher" else 1.0
    frame = pd.DataFrame({
        "segment": [p.segment for p in parts],
        "current": [p.value for p in parts],
        "baseline": [p.baseline for p in parts],
        "contribution": [p.contribution for p in parts],
        "share": [p.share for p in parts],
    }, columns=["segment", "current", "baseline", "contribution", "share"])
    frame["current"] = frame["current"].astype("float64")
    frame["baseline"] = frame["baseline"].astype("float64")
    frame["change"] = frame["current"] - frame["baseline"]
    frame["adverse"] = sign * frame["contribution"].astype("float64")
    named = set(named_segments(result, dimension))
    frame["explains"] = [s in named for s in frame["segment"]]
    # the part in the direction of the gap first: the worst for a shortfall, the best for a gain
    order = frame["adverse"] if result.gap_word == "gap" else -frame["adverse"]
    return frame.assign(_order=order).sort_values("_order", ascending=False, kind="stable").drop(
        columns="_order").reset_index(drop=True)


def segment_columns(result: Explanation, dimension: str) -> dict[str, str]:
    """What the segment table's columns are called, for what they are: the dimension itself ("owner",
    not "segment"), the actual ("actual", or the period), the baseline ("target share" for a sum
    against a target, "2026-05" — the reference — for a rate, "2026-09" against another period), the
    difference and the share of the gap."""
    rank = _rank_of(result, dimension)
    if result.versus != "target":
        current, baseline = result.period, result.baseline_label
    elif rank is not None and rank.method == "delta":
        current, baseline = "actual", "target share"
    else:
        refs = sorted(result.reference)
        current = "actual"
        baseline = (refs[0] if len(refs) == 1 else f"avg {refs[0]}…{refs[-1]}") if refs else "reference"
    return {"segment": dimension, "current": current, "baseline": baseline, "change": "difference",
            "share": f"share of {'the gain' if result.gap_word == 'gain' else 'gap'}"}


def segment_heading(result: Explanation, dimension: str) -> str:
    """What a segment chart compares with, in words, the same baseline as the sentences: "By owner —
    2026-10 against 2026-09", or against a target "… against the target shared out by each owner's
    weight in 2026-05 (periods that went to plan; segments have no targets of their own)"; with the
    marked bars named when some are."""
    marked = "; in red, those named as explaining the gap" if result.gap_word == "gap" else \
        "; in green, those named as explaining the gain"
    marked = marked if named_segments(result, dimension) else ""
    if result.versus != "target":
        return f"By {dimension} — {result.period} against {result.baseline_label}{marked}"
    rank = _rank_of(result, dimension)
    refs = _period_words(result.reference)
    against = (f"the target shared out by each {dimension}'s weight {refs}" if rank is not None and rank.method == "delta"
               else f"each {dimension}'s own level {refs}")
    return (f"By {dimension} — {result.period} against {against} (periods that went to plan; segments have no "
            f"targets of their own){marked}")


def segment_display(result: Explanation, dimension: str) -> pd.DataFrame | None:
    """`segment_frame` as the page shows it, every row, numbers formatted and columns named by
    `segment_columns`: counts whole, money compact, shares without "−0%"; a share past the whole
    (a segment that did more than the gap, others offsetting it) is written as the amount."""
    frame = segment_frame(result, dimension)
    if frame is None:
        return None
    names = segment_columns(result, dimension)
    unit = result.unit
    money = unit in ("money", "money_per_day")
    readable = all(v is None or v != v or -1.005 <= v <= 1.005 for v in frame["share"])
    share = [fmt_share(v) if readable or v is None or v != v else fmt_change(c, unit)
             for v, c in zip(frame["share"], frame["contribution"], strict=True)]
    share_name = names["share"] if readable else names["share"].replace("share of", "part of")
    return pd.DataFrame({
        names["segment"]: frame["segment"],
        names["current"]: [fmt(v, unit, compact=money) for v in frame["current"]],
        names["baseline"]: [fmt(v, unit, compact=money) for v in frame["baseline"]],
        names["change"]: [fmt_change(v, unit) for v in frame["change"]],
        share_name: share,
    })


def _child_name(c: ChildPart) -> str:
    return "the residual" if c.link == "residual" else c.label


def _formula_text(formula: str | None, values: Mapping[str, tuple[float | None, str]]) -> str:
    """`a = b * c` with b, c replaced by their numbers: "688 × 23.2% × $44,200" ("" when one is missing)."""
    if not formula or "=" not in formula:
        return ""
    rhs = formula.split("=", 1)[1]
    missing = False

    def number(m: re.Match) -> str:
        nonlocal missing
        name = m.group(0)
        if name not in values or values[name][0] is None:
            missing = True
            return name
        v, unit = values[name]
        return fmt(v, unit, compact=unit in ("money", "money_per_day") and abs(v) >= 1_000_000)

    text = re.sub(r"[A-Za-z_][A-Za-z_0-9]*", number, rhs)
    text = re.sub(r"\s*\*\s*", " × ", text)
    text = re.sub(r"\s*/\s*", " ÷ ", text)
    return "" if missing else " ".join(text.split())


def _clean(d: dict) -> dict:
    """JSON-safe: NaN/inf → None, numpy scalars → Python numbers."""
    out: dict = {}
    for k, v in d.items():
        if isinstance(v, (np.floating, float)):
            v = float(v)
            v = v if math.isfinite(v) else None
        elif isinstance(v, np.integer):
            v = int(v)
        elif isinstance(v, np.bool_):
            v = bool(v)
        out[k] = v
    return out


# --- metric value expressions, evaluated on components in memory -------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>[-+*/(),]))")
_FUNCS = {"nullif": "_nullif", "greatest": "_greatest", "least": "_least"}


def _nullif(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a == b, np.nan, a)


_CALLS: dict[str, Callable[..., np.ndarray]] = {"_nullif": _nullif, "_greatest": np.fmax, "_least": np.fmin}


def _translate(text: str) -> str | None:
    """The catalogue's value SQL (CAST … AS DOUBLE, NULLIF, greatest, + − × ÷) as a Python expression."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            return None
        tokens.append(m.group("num") or m.group("name") or m.group("op"))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(tokens):
        tok, low = tokens[i], tokens[i].lower()
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if low == "cast" and nxt == "(":
            out.append("(")
            stack.append("cast")
            i += 2
        elif low == "as" and stack and stack[-1] == "cast":
            i += 2  # drop `AS <type>`: every value is a float here
        elif low in _FUNCS and nxt == "(":
            out += [_FUNCS[low], "("]
            stack.append("call")
            i += 2
        elif tok == "(":
            out.append("(")
            stack.append("paren")
            i += 1
        elif tok == ")":
            if not stack:
                return None
            stack.pop()
            out.append(")")
            i += 1
        else:
            out.append(tok)
            i += 1
    return " ".join(out) if not stack else None


_PARSED: dict[str, ast.Expression | None] = {}


def _parsed(text: str) -> ast.Expression | None:
    if text not in _PARSED:
        translated = _translate(text)
        try:
            _PARSED[text] = ast.parse(translated, mode="eval") if translated is not None else None
        except SyntaxError:
            _PARSED[text] = None
    return _PARSED[text]


@dataclass(frozen=True)
class ValueFn:
    """A metric's value as a function of its components, evaluated with numpy (DuckDB as fallback)."""

    sql: str
    components: tuple[str, ...]

    def __call__(self, comps: Mapping[str, Any]) -> np.ndarray:
        env = {c: np.asarray(comps[c], dtype="float64") for c in self.components}
        tree = _parsed(self.sql)
        if tree is not None:
            try:
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    return np.asarray(att.evaluate(tree, env, calls=_CALLS, nan_on_zero=True), dtype="float64")
            except (ValueError, KeyError):
                pass
        return _duck_value(self.sql, env)


def _duck_value(expr: str, env: Mapping[str, np.ndarray]) -> np.ndarray:
    """Evaluates a value expression DuckDB's way on an in-memory frame of component values."""
    shape = np.broadcast(*env.values()).shape if env else ()
    frame = pd.DataFrame({k: np.broadcast_to(v, shape).ravel() for k, v in env.items()})
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.register("v", frame)
        out = con.execute(f"SELECT CAST({expr} AS DOUBLE) AS value FROM v").fetchnumpy()["value"]
    finally:
        con.close()
    return np.asarray(np.ma.filled(out, np.nan), dtype="float64").reshape(shape)


# --- data: one scan per source for a node and its children ---------------------------------------

_ADDITIVE = re.compile(r"^\s*(count\(\*\)|sum\()", re.IGNORECASE)
_RESULTS = ResultCache(256)


def _additive_agg(agg: str) -> bool:
    """Sums and counts add up over segments; DISTINCT counts and max() do not."""
    return bool(_ADDITIVE.match(agg)) and "distinct" not in agg.lower()


def available_dimensions(engine: Engine, tree: Tree, node: Node) -> tuple[str, ...]:
    """The node's drill dimensions every source table of its metric has a value of (or gets via
    accounts); a column empty in every row is no dimension (see `Engine.dimensions`)."""
    m = metric(node.metric)
    wanted = list(tree.dimensions_for(node))
    if m.table == "subscriptions" and "accounts" in engine.loaded:
        wanted += [d for d in ACCOUNT_DIMENSIONS if d not in wanted]
    return tuple(engine.dimensions(m, wanted))


@dataclass
class _Source:
    """One scan request for a node: a source of its metric (cells), or the whole metric (batch)."""

    node: str
    role: str  # cur, ref or both
    metric: Metric
    index: int  # which source of the metric (cells mode)
    filters: tuple
    dims: tuple[str, ...]
    periods: tuple[tuple[str, Period], ...]  # (label, period), label cur or ref
    mode: str  # cells: finest cells of additive components; batch: catalogue query per dimension

    @property
    def src(self) -> Source:
        return self.metric.sources[self.index]

    def key(self) -> tuple:
        if self.mode == "batch":
            return ("batch", tuple(self.filters), self.dims, self.periods)
        # rows of one table joined one way are read once, whatever each node filters: the filters
        # move into each node's aggregates (FILTER (WHERE …)), see `_run_cells`
        s = self.src
        if s.customer_level:  # one customers relation per baseline and filter, see `_run_cells`
            return ("customers", self.metric.baseline, self.where, self.dims, self.periods)
        return ("cells", s.table, s.on, self.dims, self.periods)

    where: tuple = ()  # the filters this source applies (cells mode): see `metrics.source_filters`


_FILTERED = re.compile(r"^(?P<agg>.+?) FILTER \(WHERE (?P<cond>.+)\)$", re.DOTALL)


def _with_filter(agg: str, cond: str) -> str:
    """`sum(x) FILTER (WHERE c)` → `sum(x) FILTER (WHERE (c) AND (cond))`; a plain aggregate gets one."""
    m = _FILTERED.match(agg.strip())
    if m:
        return f"{m['agg']} FILTER (WHERE ({m['cond']}) AND ({cond}))"
    return f"{agg} FILTER (WHERE {cond})"


def _cells_ok(m: Metric) -> bool:
    """Finest cells work when every component adds up over segments and is plain SQL over the rows.

    Not for per-customer (entity) sources, DISTINCT counts or max(), definitions with workspace
    parameters (the catalogue binds them), or sources exempt from some filter or split column:
    those take the catalogue's own query, one per dimension.
    """
    if m.parameters:
        return False
    return all((not s.customer_level or s.entity == "customers") and not s.exempt
               and all(_additive_agg(a) for a in s.components.values()) for s in m.sources)


def _compute_metrics(con: duckdb.DuckDBPyConnection, q: MetricQuery, names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The catalogue's own query for several metrics sharing periods, filter and split."""
    from . import metrics as catalogue

    many = getattr(catalogue, "compute_many", None)
    if many is not None:
        return many(con, q, list(names))
    return {n: catalogue.compute(con, MetricQuery(n, q.periods, q.as_of, q.dimension, q.filters, q.columns))
            for n in names}


def _period_totals(plan: _Plan, frames: dict[int, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """Per period key fetched (candidates and "cur"): the node's total components.

    A source without rows in a period (no deal closed in a month that had open deals) adds zeros:
    every component of the node's metrics is there for every period any source has.
    """
    out: dict[str, dict[str, float]] = {}
    for s in plan.sources:
        df = frames.get(id(s))
        if df is None:
            return {}
        if s.mode == "batch" and plan.dims:
            df = df[np.logical_and.reduce([df[d] == ALL for d in plan.dims])]
        comps = [c for c in df.columns if c != "pkey" and c not in plan.dims]
        for key, row in df.groupby("pkey")[comps].sum().iterrows():
            out.setdefault(str(key), {}).update({c: float(v) for c, v in row.items()})
    every = (*plan.cur_metric.components, *plan.ref_metric.components)
    for comps in out.values():
        for c in every:
            comps.setdefault(c, 0.0)
    return out


class _Session:
    """One explain call's access to the workspace: one connection, a memo of node data."""

    def __init__(self, engine: Engine, tree: Tree, period: Period, reference: Reference, hold: bool = True) -> None:
        self.engine = engine
        self.hold = hold
        self.tree = tree
        self.period = period
        self.reference = reference
        self.as_of = engine.as_of
        self.running = not period.is_complete(self.as_of)
        self.elapsed = period.elapsed_fraction(self.as_of)
        self.data: dict[str, NodeData] = {}  # reference chosen for the batch (its parent and children)
        self._own: dict[str, NodeData] = {}  # reference chosen by the node itself, for its segments
        self._raw: dict[str, tuple[_Plan, dict[int, pd.DataFrame]]] = {}
        self._totals: dict[str, dict[str, dict[str, float]]] = {}  # node → period key → components
        self._stack = ExitStack()
        self._con: duckdb.DuckDBPyConnection | None = None
        self.analyses: dict[str, _Analysis] = {}  # node id → its analysis (versus is fixed per session)
        self._partial: set[str] = set()  # nodes loaded without segments

    def close(self) -> None:
        self._stack.close()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The session's connection, opened on first use and held to the end; or, in the
        background (`hold=False`), one per query, so the workspace's lock is never held long
        while someone clicks."""
        if not self.hold:
            with self.engine.workspace.connect() as con:
                yield con
            return
        if self._con is None:
            self._con = self._stack.enter_context(self.engine.workspace.connect())
        yield self._con

    def _cached(self, key: tuple, run: Callable[[], Any]) -> Any:
        return _RESULTS.get_or_run((str(self.engine.workspace.db_path), self.engine.version, *key), run)

    def _execute(self, text: str, params: list[Any]) -> pd.DataFrame:
        def run() -> pd.DataFrame:
            try:
                with self.connection() as con:
                    return con.execute(text, params).df()
            except duckdb.Error as exc:
                raise QueryError(f"explain query failed: {str(exc).splitlines()[0]}") from None

        return self._cached(("sql", text, tuple(params)), run)

    def fetch(self, nodes: Sequence[Node]) -> None:
        """Loads every node not yet loaded, sharing one scan per (table, join, filter) among them.

        `nodes[0]` is the batch's parent: its closeness to target picks the reference period of
        every node loaded here, so that its children's segments share one structure. Only the
        parent and its formula's children need their segments; influence children are judged on
        their totals, so where segments cost a catalogue query per dimension they are loaded
        without (and again with segments if the walk goes on from them).
        """
        parent = nodes[0]
        full = {parent.id, *(att.Formula.parse(parent.formula).names if parent.formula else ())}
        todo = [n for n in dict.fromkeys(nodes) if n.id not in self.data or (n.id in self._partial and n.id in full)]
        if not todo:
            return
        plans: dict[str, _Plan] = {}
        groups: dict[tuple, list[_Source]] = {}
        for node in todo:
            try:
                plan = self._plan(node, totals_only=node.id not in full)
            except QueryError as exc:  # e.g. a filter on a column this workspace does not have
                plan = _Plan(node, metric(node.metric), metric(node.metric), (), (), str(exc), False)
            plans[node.id] = plan
            for r in plan.sources:
                groups.setdefault(r.key(), []).append(r)
        frames: dict[int, pd.DataFrame] = {}
        for members in groups.values():
            try:
                out = self._run_batch(members) if members[0].mode == "batch" else self._run_cells(members)
            except QueryError as exc:
                for r in members:
                    plans[r.node].note = str(exc)
                continue
            for r in members:
                frames[id(r)] = out[r.node, r.role, r.index]
        for node in todo:
            self._partial.discard(node.id)
            if plans[node.id].partial:
                self._partial.add(node.id)
            self._own.pop(node.id, None)
            self._raw[node.id] = (plans[node.id], frames)
            self._totals[node.id] = _period_totals(plans[node.id], frames)
        parent = nodes[0]
        # a product formula is attributed within segments from the reference period: pick the one
        # where its children were closest to their targets, so little is left between the two
        exact = [self.tree.node(c) for c in att.Formula.parse(parent.formula).names] if parent.formula else []
        chosen = self._choose(parent, judges=exact)
        for node in todo:
            self.data[node.id] = NodeData.build(node, plans[node.id], frames, self, chosen)

    def own(self, node: Node) -> NodeData:
        """The node's data with the reference it would choose itself (for its own segment drill-down)."""
        if node.id not in self._own:
            plan, frames = self._raw[node.id]
            chosen = self._choose(node)
            batch = self.data[node.id]
            same = chosen == batch.ref_periods or not self.reference.choose
            self._own[node.id] = batch if same else NodeData.build(node, plan, frames, self, chosen)
        return self._own[node.id]

    def _choose(self, parent: Node, judges: Sequence[Node] = ()) -> tuple[Period, ...]:
        """The reference period(s): fixed, or every candidate in which each of `judges` (default: the
        parent) was within its amber band of target; failing that, the one where they were closest
        to their targets — mean |ln(value / target)| over them."""
        ref = self.reference
        if not ref.choose:
            return ref.periods
        judges = [j for j in judges if j.id in self._totals] or [parent]
        best, best_gap = None, math.inf
        on_plan: list[Period] = []
        for p in ref.periods:  # most recent first; last year last
            gaps, within = [], True
            for j in judges:
                target = target_for(j, p)
                comps = self._totals.get(j.id, {}).get(p.key)
                m = metric(j.metric)
                value = float(ValueFn(m.value, m.components)(comps)) if comps is not None else None
                if value is None or not math.isfinite(value) or not target or value / target <= 0:
                    break
                gaps.append(abs(math.log(value / target)))
                amber = j.amber if j.amber is not None else self.engine.settings.amber_threshold
                within &= gaps[-1] <= math.log1p(amber)
            else:
                if within:
                    on_plan.append(p)
                if gaps and sum(gaps) / len(gaps) < best_gap - 1e-12:
                    best, best_gap = p, sum(gaps) / len(gaps)
        if on_plan:
            return tuple(on_plan)
        return (best,) if best is not None else ref.periods[-1:]

    def _plan(self, node: Node, totals_only: bool = False) -> _Plan:
        m = metric(node.metric)
        cur_m = metric(m.running) if self.running and m.running else m
        plan = _Plan(node, cur_m, m, (), (), "", False)
        lacking = self.engine.missing(node)
        if lacking is not None:
            plan.note = f"{node.label} {lacking.reason()}"
            return plan
        dims = available_dimensions(self.engine, self.tree, node)
        cells = _cells_ok(cur_m) and _cells_ok(m)
        if totals_only and not cells and dims:
            dims, plan.partial = (), True  # a catalogue query per dimension, for segments nobody reads
        plan.dims = dims
        plan.covered = self.engine.covers(m, self.period)
        ref = tuple(p for p in self.reference.periods if self.engine.covers(m, p))
        plan.ref = ref
        roles: list[tuple[str, Metric, tuple[tuple[str, Period], ...]]] = []
        if cur_m is m and ref:
            roles.append(("both", m, (*((p.key, p) for p in ref), ("cur", self.period))))
        else:
            roles.append(("cur", cur_m, (("cur", self.period),)))
            if ref:
                roles.append(("ref", m, tuple((p.key, p) for p in ref)))
        for role, mm, periods in roles:
            if not cells:
                plan.sources.append(_Source(node.id, role, mm, -1, node.filter, dims, periods, "batch"))
                continue
            for i, _ in enumerate(mm.sources):
                where = source_filters(mm, mm.sources[i], tuple(node.filter), self.engine.columns)
                plan.sources.append(_Source(node.id, role, mm, i, node.filter, dims, periods, "cells", where))
        return plan

    def _run_cells(self, members: list[_Source]) -> dict[tuple[str, str, int], pd.DataFrame]:
        """One SQL scan for all members (same table, join, filter, dimensions, periods), finest cells."""
        first = members[0]
        s = first.src
        dims = first.dims
        periods = [p for _, p in first.periods]
        labels = {p.key: label for label, p in first.periods}
        if s.customer_level:
            return self._run_customer_cells(members, labels)
        params: list[Any] = []

        def condition(r: _Source, into: list[Any]) -> str:
            q = MetricQuery(r.metric.name, tuple(periods), self.as_of, None, r.where, self.engine.columns)
            return filter_sql(q, s.table, into)

        aliases: list[tuple[_Source, str, str]] = []  # (member, component, alias)
        comps_sql: list[str] = []
        for r in members:
            for c, agg in r.src.components.items():
                alias = f"c{len(aliases)}"
                aliases.append((r, c, alias))
                if r.where:
                    agg = _with_filter(agg, condition(r, params))
                comps_sql.append(f"COALESCE({agg}, 0) AS {alias}")
        dim_alias = [f"d{i}" for i in range(len(dims))]
        q = MetricQuery(first.metric.name, tuple(periods), self.as_of, None, (), self.engine.columns)
        exprs, joins = [], []
        for d in dims:
            e, j = dimension_sql(MetricQuery(q.metric, q.periods, q.as_of, d, (), q.columns), s.table)
            exprs.append(e)
            if j and j not in joins:
                joins.append(j)
        wheres = list(dict.fromkeys(r.where for r in members))
        where = "TRUE"
        if all(wheres):  # every node filters: read only rows some node keeps
            where = " OR ".join(f"({condition(next(r for r in members if r.where == w), params)})" for w in wheres)
        sel_dims = "".join(f"{e} AS {a}, " for e, a in zip(exprs, dim_alias, strict=True))
        text = (f"WITH {periods_cte(periods, self.as_of)} "
                f"SELECT P.pkey AS pkey, {sel_dims}{', '.join(comps_sql)} "
                f"FROM P JOIN {s.table} AS t ON {s.on}{''.join(joins)} WHERE {where} "
                f"GROUP BY {', '.join(['P.pkey', *exprs])}")
        return _per_member(self._execute(text, params), members, aliases, labels)

    def _run_customer_cells(self, members: list[_Source], labels: dict[str, str]
                            ) -> dict[tuple[str, str, int], pd.DataFrame]:
        """Finest cells of per-customer MRR movements: one scan for every member and dimension.

        Members share baseline and filter (the batch key), so one customers relation serves all.
        """
        first = members[0]
        dims = first.dims
        q = MetricQuery(first.metric.name, tuple(p for _, p in first.periods), self.as_of, None, first.where,
                        self.engine.columns)
        # One alias per (member, component): nrr's `kept` is not grr's `kept` (same name, other SQL).
        aliases = [(r, c, f"c{i}") for i, (r, c) in enumerate((r, c) for r in members for c in r.src.components)]
        text, params = customer_cells_sql(q, first.metric, dims, [(a, r.src.components[c]) for r, c, a in aliases])
        return _per_member(self._execute(text, params), members, aliases, labels)

    def _compute(self, q: MetricQuery, names: Sequence[str]) -> dict[str, pd.DataFrame]:
        with self.connection() as con:
            return _compute_metrics(con, q, names)

    def _run_batch(self, members: list[_Source]) -> dict[tuple[str, str, int], pd.DataFrame]:
        """The catalogue's query, once for the totals and once per dimension, for all members' metrics.

        Used where finest cells cannot be summed (per-customer MRR movements, DISTINCT counts):
        each split is computed by the catalogue itself, as rows of grouping sets.
        """
        first = members[0]
        dims = first.dims
        periods = tuple(p for _, p in first.periods)
        labels = {p.key: label for label, p in first.periods}
        names = list(dict.fromkeys(r.metric.name for r in members))
        parts: dict[str, list[pd.DataFrame]] = {n: [] for n in names}
        for dim in (None, *dims):
            q = MetricQuery(names[0], periods, self.as_of, dim, tuple(first.filters), self.engine.columns,
                            getattr(self.engine, "params", ()))
            result = self._cached(("batch", tuple(names), q), lambda q=q: self._compute(q, names))
            for n in names:
                df = result[n].drop(columns="value").rename(columns={"segment": "__segment"})
                df = df.assign(**{d: (df["__segment"].astype(str) if d == dim else ALL) for d in dims})
                parts[n].append(df.drop(columns="__segment"))
        out: dict[tuple[str, str, int], pd.DataFrame] = {}
        for r in members:
            df = pd.concat(parts[r.metric.name], ignore_index=True)
            df["pkey"] = df["pkey"].map(labels)
            out[r.node, r.role, r.index] = df[["pkey", *dims, *r.metric.components]]
        return out


def _per_member(df: pd.DataFrame, members: list[_Source], aliases: list[tuple[_Source, str, str]],
                labels: dict[str, str]) -> dict[tuple[str, str, int], pd.DataFrame]:
    """Splits one cells query (columns pkey, d0…, aliases) into each member's frame: pkey as the
    member's period label, dimensions by name, its components by name."""
    dims = members[0].dims
    base = df.rename(columns={f"d{i}": d for i, d in enumerate(dims)})
    base["pkey"] = base["pkey"].map(labels)
    out: dict[tuple[str, str, int], pd.DataFrame] = {}
    for r in members:
        cols = {alias: c for (m_, c, alias) in aliases if m_ is r}
        out[r.node, r.role, r.index] = base[["pkey", *dims, *cols]].rename(columns=cols)
    return out


@dataclass
class _Plan:
    node: Node
    cur_metric: Metric
    ref_metric: Metric
    dims: tuple[str, ...]
    ref: tuple[Period, ...]
    note: str
    covered: bool
    sources: list[_Source] = field(default_factory=list)
    partial: bool = False  # loaded without its segments (see `_Session.fetch`)


@dataclass
class _Rows:
    """A role's rows: integer codes per dimension (−1: rolled up) and component values."""

    codes: dict[str, np.ndarray]
    comps: dict[str, np.ndarray]


@dataclass(frozen=True)
class Split:
    """A node's metric per segment of one dimension or a pair, current and reference side by side."""

    dimension: str
    segments: tuple[str, ...]
    cur: dict[str, np.ndarray]  # components per segment
    ref: dict[str, np.ndarray] | None
    value: np.ndarray  # current value per segment (nan where undefined)
    ref_value: np.ndarray  # reference value per segment (nan where undefined or absent)


@dataclass
class NodeData:
    """A node's metric components per finest cell (or per grouping set), current and reference.

    Dimension values are factorised once into integer codes shared by both sides, so that every
    split (totals, a dimension, a pair) is a `bincount` over the cells.
    """

    node: Node
    cur_metric: Metric
    ref_metric: Metric
    dims: tuple[str, ...]
    sets: bool
    labels: dict[str, np.ndarray]
    cur: _Rows | None
    ref: _Rows | None  # averaged over the reference periods
    ref_periods: tuple[Period, ...]
    note: str = ""
    blank: frozenset[str] = frozenset()  # dimensions whose "(none)" is never named (NAMED_EMPTY_MIN_FILL)

    @classmethod
    def build(cls, node: Node, plan: _Plan, frames: dict[int, pd.DataFrame], session: _Session,
              reference: tuple[Period, ...]) -> NodeData:
        """The node's cells, with the reference side averaged over `reference` (those it has data for)."""
        empty = cls(node, plan.cur_metric, plan.ref_metric, (), False, {}, None, None, (), plan.note)
        ref_periods = tuple(p for p in reference if p in plan.ref)
        ref_keys = {p.key for p in ref_periods}
        if not plan.sources or any(id(s) not in frames for s in plan.sources):
            return empty  # no data, or its query failed: the plan's note says why
        sets = any(s.mode == "batch" for s in plan.sources)
        dims = plan.dims
        per_role: dict[str, list[pd.DataFrame]] = {"cur": [], "ref": []}
        for s in plan.sources:
            df = frames[id(s)]
            if s.role in ("cur", "both"):
                per_role["cur"].append(df[df["pkey"] == "cur"])
            if s.role in ("ref", "both"):
                per_role["ref"].append(df[df["pkey"].isin(ref_keys)])
        cur_df = pd.concat(per_role["cur"], ignore_index=True) if plan.covered and per_role["cur"] else None
        ref_df = pd.concat(per_role["ref"], ignore_index=True) if ref_periods and per_role["ref"] else None
        labels: dict[str, np.ndarray] = {}
        codes: dict[str, dict[str, np.ndarray]] = {"cur": {}, "ref": {}}
        for d in dims:
            parts = [f[d].astype(str).to_numpy() for f in (cur_df, ref_df) if f is not None]
            both = np.concatenate(parts) if parts else np.array([], dtype=object)
            rolled = both == ALL
            code, uniq = pd.factorize(np.where(rolled, "", both))
            code = np.where(rolled, -1, code)
            # factorize numbered "" too if present; keep labels dense by re-factorising the real ones
            real = np.unique(code[code >= 0])
            remap = np.full(len(uniq) + 1, -1)
            remap[real] = np.arange(len(real))
            code = np.where(code >= 0, remap[np.maximum(code, 0)], -1)
            labels[d] = np.asarray(uniq, dtype=object)[real]
            n_cur = len(cur_df) if cur_df is not None else 0
            codes["cur"][d], codes["ref"][d] = code[:n_cur], code[n_cur:]
        comps_cur = list(plan.cur_metric.components)
        comps_ref = list(plan.ref_metric.components)

        def rows(df: pd.DataFrame | None, role: str, comps: list[str], scale: float) -> _Rows | None:
            if df is None:
                return None
            values = {c: (df[c].fillna(0.0).to_numpy(dtype="float64") * scale if c in df else np.zeros(len(df)))
                      for c in comps}
            return _Rows(codes[role], values)

        pace = 1.0
        if session.running and plan.cur_metric.kind is Kind.FLOW and session.elapsed > 0:
            pace = 1.0 / session.elapsed  # projected to the end of the period, as evaluate's pace
        cur = rows(cur_df, "cur", comps_cur, pace)
        ref = rows(ref_df, "ref", comps_ref, 1.0 / max(len(ref_periods), 1))
        blank = frozenset(d for d in dims if session.engine.fill(plan.cur_metric.table, d) < NAMED_EMPTY_MIN_FILL)
        return cls(node, plan.cur_metric, plan.ref_metric, dims, sets, labels, cur, ref, ref_periods, plan.note, blank)

    def unnamed(self, dimension: str, segment: str) -> bool:
        """The segment is rows without a value of a mostly empty dimension: never named as a cause."""
        return any(v == NONE and d in self.blank
                   for d, v in zip(dimension.split(PAIR_SEP), segment.split(PAIR_SEP), strict=False))

    def _rows(self, role: str) -> _Rows | None:
        return self.cur if role == "cur" else self.ref

    def _metric(self, role: str) -> Metric:
        return self.cur_metric if role == "cur" else self.ref_metric

    def total(self, role: str) -> dict[str, float] | None:
        rows = self._rows(role)
        if rows is None:
            return None
        if self.sets and self.dims:
            mask = np.logical_and.reduce([rows.codes[d] < 0 for d in self.dims])
            return {c: float(v[mask].sum()) for c, v in rows.comps.items()}
        return {c: float(v.sum()) for c, v in rows.comps.items()}

    def value(self, role: str) -> float | None:
        comps = self.total(role)
        if comps is None:
            return None
        m = self._metric(role)
        v = float(ValueFn(m.value, m.components)(comps))
        return v if math.isfinite(v) else None

    def _sums(self, dims: Sequence[str], role: str) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        rows = self._rows(role)
        sizes = [len(self.labels[d]) for d in dims]
        size = int(np.prod(sizes)) if sizes else 1
        if rows is None:
            return None
        if self.sets:
            if len(dims) != 1:
                return None
            mask = rows.codes[dims[0]] >= 0
            for d in self.dims:
                if d != dims[0]:
                    mask &= rows.codes[d] < 0
        else:
            mask = np.ones(len(next(iter(rows.comps.values()), [])), dtype=bool)
        key = np.zeros(int(mask.sum()), dtype=np.int64)
        for d, n in zip(dims, sizes, strict=True):
            key = key * n + rows.codes[d][mask]
        sums = {c: np.bincount(key, weights=v[mask], minlength=size) for c, v in rows.comps.items()}
        present = np.bincount(key, minlength=size) > 0
        return sums, present

    def split(self, dims: Sequence[str]) -> Split | None:
        """Components and values per segment of one dimension, or of a pair (finest cells only)."""
        if not dims or any(d not in self.dims for d in dims) or self.cur is None:
            return None
        cur = self._sums(dims, "cur")
        if cur is None:
            return None
        ref = self._sums(dims, "ref")
        present = cur[1] | (ref[1] if ref is not None else False)
        idx = np.flatnonzero(present)
        sizes = [len(self.labels[d]) for d in dims]
        names = []
        for k in idx:
            parts = []
            for d, n in zip(reversed(dims), reversed(sizes), strict=True):
                parts.append(str(self.labels[d][k % n]))
                k //= n
            names.append(PAIR_SEP.join(reversed(parts)))
        c1 = {c: v[idx] for c, v in cur[0].items()}
        c0 = {c: v[idx] for c, v in ref[0].items()} if ref is not None else None
        v1 = ValueFn(self.cur_metric.value, self.cur_metric.components)(c1) if len(idx) else np.zeros(0)
        if c0 is not None and len(idx):
            v0 = ValueFn(self.ref_metric.value, self.ref_metric.components)(c0)
            v0 = np.where(ref[1][idx], v0, np.nan)  # type: ignore[index]
        else:
            v0 = np.full(len(idx), np.nan)
        v1 = np.where(cur[1][idx], v1, np.nan)
        return Split(PAIR_SEP.join(dims), tuple(names), c1, c0, np.asarray(v1, dtype="float64"),
                     np.asarray(v0, dtype="float64"))


# --- one node: value, baseline, gap -----------------------------------------------------------


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


def _view(session: _Session, node: Node, versus: str, own: bool = False, data: NodeData | None = None) -> _NodeView:
    if data is None:
        data = session.own(node) if own else session.data[node.id]
    value = data.value("cur")
    ref_value = data.value("ref")
    target = target_for(node, session.period)
    amber = node.amber if node.amber is not None else session.engine.settings.amber_threshold
    status = status_of(value, target, node.better, amber)
    baseline = target if versus == "target" else ref_value
    base_key = "target" if versus == "target" else (data.ref_periods or session.reference.periods)[0].key
    return _NodeView(node, data, value, ref_value, target, baseline, status, node.shown_unit, node.better, amber,
                     versus, base_key)


# --- segments -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SegmentAnalysis:
    dimensions: tuple[DimensionRank, ...]
    top: SegmentPart | None
    note: str = ""
    basis: tuple[str, str] = ("target", "")  # what a segment's baseline is: see `segment_basis`


def segment_basis(view: _NodeView) -> tuple[str, str]:
    """What a segment's baseline is, as (kind, where): ("period", "2026-09") against another period;
    against a target, ("share", "") for a sum (the target shared out by the segments' weights) or
    ("reference", "in 2026-05") for any other metric (the segment's own level in the reference)."""
    if view.versus != "target":
        return "period", view.base_key
    data = view.data
    if data.cur_metric.additive and data.cur_metric is data.ref_metric:
        return "share", ""
    return "reference", _period_words(tuple(p.key for p in data.ref_periods))


def _segment_parts(view: _NodeView, versus: str, dims: Sequence[str]) -> tuple[str, list[SegmentPart]] | None:
    """Each segment's contribution to the node's gap along `dims` (a dimension or a pair)."""
    data = view.data
    sp = data.split(dims)
    if sp is None or view.value is None or view.baseline is None or not sp.segments:
        return None
    target_mode = versus == "target"
    if sp.ref is None and not target_mode:
        return None
    n = len(sp.segments)
    m = data.cur_metric
    same = data.cur_metric is data.ref_metric
    gap = view.value - view.baseline
    zeros = np.zeros(n)
    c1 = sp.cur
    c0 = sp.ref if sp.ref is not None else {c: zeros for c in data.ref_metric.components}
    v1 = np.nan_to_num(sp.value)
    v0 = np.nan_to_num(sp.ref_value)
    mix = rate = w0 = w1 = None
    if m.additive and same:
        if target_mode:
            weights = att.shares(v0) if np.abs(v0).sum() > 0 else att.shares(v1)
            if not weights.any():
                weights = np.full(n, 1.0 / n)
            base = view.baseline * weights
        else:
            base = v0
        contrib = v1 - base
        method = "delta"
        surprise = att.js_surprise(att.shares(base), att.shares(v1))
        values, baselines = v1, base
    elif m.ratio and same and _is_ratio(m, c1):
        num, den = m.ratio
        n1, d1, n0, d0 = c1[num], c1[den], c0[num], c0[den]
        if d1.sum() == 0:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            r1, r0 = n1 / d1, n0 / d0
        w1 = d1 / d1.sum()
        if d0.sum() > 0:
            # against a target, segments keep their reference rates: the target's distance from the
            # reference level is no segment's doing and is reported as its own line (see PSEUDO)
            w0 = d0 / d0.sum()
        else:
            w0, r0 = w1, np.full(n, view.baseline if target_mode else np.nan)
        mr = att.mix_rate(w0, r0, w1, r1)
        contrib, mix, rate, w0 = mr.contribution, mr.mix, mr.rate, mr.w0
        method = "mix_rate"
        surprise = att.js_surprise(att.shares(n0), att.shares(n1)) + att.js_surprise(att.shares(d0), att.shares(d1))
        values, baselines = mr.r1, mr.r0
    elif same:
        comps = list(m.components)
        t0 = data.total("ref") or {c: 0.0 for c in comps}
        t1 = data.total("cur") or {c: 0.0 for c in comps}
        deltas = {c: c1[c] - c0[c] for c in comps}
        contrib, _ = att.component_path(ValueFn(m.value, m.components), comps, t0, t1, deltas)
        method = "component_path"
        surprise = sum((att.js_surprise(att.shares(c0[c]), att.shares(c1[c])) for c in comps), zeros)
        values, baselines = v1, v0
    else:  # a running-period variant against a closed-period reference: plain deltas, not exact
        contrib, method, surprise, values, baselines = v1 - v0, "delta", zeros, v1, v0
    contrib = np.nan_to_num(np.asarray(contrib, dtype="float64"))
    tiny = 1e-9 * max(abs(view.value), abs(view.baseline), 1e-12)
    parts = []
    for i, s in enumerate(sp.segments):
        parts.append(SegmentPart(sp.dimension, s, float(contrib[i]), float(contrib[i] / gap) if abs(gap) > tiny else None,
                                 _f(values[i]), _f(baselines[i]), _f(mix[i]) if mix is not None else None,
                                 _f(rate[i]) if rate is not None else None, float(surprise[i]),
                                 _f(w1[i]) if w1 is not None else None, _f(w0[i]) if w0 is not None else None))
    rest = gap - float(contrib.sum())
    if abs(rest) > 1e-9 * max(abs(gap), abs(view.value), 1.0):
        label = PSEUDO[0] if target_mode else PSEUDO[1]
        parts.append(SegmentPart(sp.dimension, label, rest, rest / gap if abs(gap) > tiny else None))
    return method, parts


def _is_ratio(m: Metric, comps: Mapping[str, np.ndarray]) -> bool:
    """The metric's value really is numerator / denominator (not, e.g., a running-period variant)."""
    num, den = m.ratio  # type: ignore[misc]
    n, d = float(comps[num].sum()), float(comps[den].sum())
    if d == 0:
        return True
    v = float(ValueFn(m.value, m.components)({c: float(comps[c].sum()) for c in m.components}))
    return bool(np.isclose(v, n / d, rtol=1e-9, atol=0.0))


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _power(p: SegmentPart, basis: str, gap: float) -> float:
    """How much of the gap a segment explains: its contribution, or for a ratio its rate effect only."""
    if not gap:
        return 0.0
    if basis == "rate" and p.rate is not None:
        part = p.own_rate if p.own_rate is not None else p.rate
    else:
        part = p.contribution
    return part / gap


def _rank(view: _NodeView, method: str, parts: list[SegmentPart], gap: float, basis: str) -> DimensionRank:
    real = [p for p in parts if p.segment not in PSEUDO]
    unnamed = tuple(p.segment for p in real if view.data.unnamed(p.dimension, p.segment))
    power = np.array([0.0 if p.segment in unnamed else _power(p, basis, gap) for p in real])
    surprise = np.array([p.surprise for p in real])
    cand = att.adtributor(power, surprise)
    chosen = tuple(real[i].segment for i in cand.chosen)
    ordered = sorted(parts, key=lambda p: -(p.share if p.share is not None else view.adverse(p.contribution)))
    return DimensionRank(parts[0].dimension if parts else "", method, basis, cand.explanatory_power, cand.surprise,
                         cand.score, cand.succeeded, chosen, tuple(ordered), unnamed)


def _dimension_order(d: DimensionRank) -> tuple:
    """Adtributor's verdict first, then succinctness (fewest segments), then surprise.

    Jensen–Shannon surprise is small for a large segment even when it changed a lot, so ranking on
    surprise alone prefers a small, correlated segment (an Enterprise-heavy channel) to the large
    one that holds the whole change (Enterprise): fewer segments explaining the change come first.
    """
    if d.succeeded:
        return (0, len(d.chosen), -d.surprise)
    gap = next((p.contribution / p.share for p in d.segments if p.share), 0.0)
    top = max((_power(p, d.basis, gap) for p in d.segments if p.segment not in PSEUDO and p.segment not in d.unnamed),
              default=0.0)
    return (1, 0, -top)


def _segments(view: _NodeView, versus: str) -> _SegmentAnalysis:
    """Ranks the node's dimensions (and pairs when no single dimension explains much).

    For a ratio metric, segments are first judged by their own rate effect — a segment whose share
    of the denominator moved (mix) has its cause in volumes upstream, not in this node's rate. Only
    when no dimension's rates explain the change is it judged on rate and mix together.
    """
    data = view.data
    gap = view.gap
    if gap is None or not data.dims:
        note = "" if data.dims or gap is None else "none of the tree's drill dimensions has a value in this metric's rows"
        return _SegmentAnalysis((), None, note, segment_basis(view))
    splits = {(d,): _segment_parts(view, versus, (d,)) for d in data.dims}
    splits = {k: v for k, v in splits.items() if v is not None and v[1]}
    if not splits:
        return _SegmentAnalysis((), None, basis=segment_basis(view))
    basis = "rate" if any(v[0] == "mix_rate" for v in splits.values()) else "contribution"
    if basis == "rate" and not data.sets:
        splits = {k: (v[0], _conditioned(view, versus, k[0], v[1])) if v[0] == "mix_rate" else v
                  for k, v in splits.items()}

    def ranked(items: dict) -> list[DimensionRank]:
        out = [_rank(view, method, parts, gap, basis) for method, parts in items.values()]
        if basis == "rate" and not any(r.succeeded for r in out):
            out = [_rank(view, method, parts, gap, "contribution") for method, parts in items.values()]
        return sorted(out, key=_dimension_order)

    ranks = ranked(splits)
    best_share = max((p.share or 0.0 for p in ranks[0].segments), default=0.0)
    if (best_share < PAIR_WHEN_TOP_BELOW or not ranks[0].succeeded) and not data.sets:
        for pair in att.pairs_of(data.dims):
            res = _segment_parts(view, versus, pair)
            if res is not None and res[1]:
                splits[pair] = res
        ranks = ranked(splits)
    return _SegmentAnalysis(tuple(ranks), _refine(view, versus, _top_segment(ranks, gap), gap, ranks[0].basis),
                            basis=segment_basis(view))


def _conditioned(view: _NodeView, versus: str, dim: str, parts: list[SegmentPart]) -> list[SegmentPart]:
    """Each segment's rate effect as it remains within the segments of another dimension.

    A ratio's rate effect per channel also holds every shift of mix *inside* the channel: when
    fewer Enterprise deals close, every channel's average deal size falls although no channel's
    Enterprise or SMB deals got smaller (Simpson's paradox). Summing the rate effects of the
    channel × segment cells over each channel keeps only what changed within both; of the other
    dimensions, the one that leaves the least rate effect in total conditions this one. Judging
    dimensions on these rates picks the segment whose own rate moved (Mid-Market deals closing
    smaller), not a dimension that merely carries another one's mix shift.
    """
    best: dict[str, float] | None = None
    best_total = abs(sum(p.rate or 0.0 for p in parts if p.segment not in PSEUDO))
    within = None
    for other in view.data.dims:
        if other == dim:
            continue
        res = _segment_parts(view, versus, (dim, other))
        if res is None or res[0] != "mix_rate":
            continue
        agg: dict[str, float] = {}
        for p in res[1]:
            if p.segment not in PSEUDO:
                head = p.segment.split(PAIR_SEP)[0]
                agg[head] = agg.get(head, 0.0) + (p.rate or 0.0)
        total = abs(sum(agg.values()))
        if total < best_total - 1e-12:
            best, best_total, within = agg, total, other
    if best is None:
        return parts
    return [p if p.segment in PSEUDO or p.rate is None else replace(p, own_rate=best.get(p.segment, 0.0), within=within)
            for p in parts]


def _top_segment(ranks: Sequence[DimensionRank], gap: float) -> SegmentPart | None:
    """Of the best dimension's chosen segments (Adtributor's set), the one that explains most."""
    if not ranks:
        return None
    best = ranks[0]
    pool = [p for p in best.segments if p.segment in best.chosen] or [
        p for p in best.segments if p.segment not in PSEUDO and p.segment not in best.unnamed]
    return max(pool, key=lambda p: _power(p, best.basis, gap)) if pool else None


def _refine(view: _NodeView, versus: str, top: SegmentPart | None, gap: float, basis: str) -> SegmentPart | None:
    """Narrows the top segment by a second dimension when one sub-segment carries most of it.

    "Enterprise" becomes "Enterprise × Dana Whitfield" when Dana's Enterprise deals hold at least
    `REFINE_SHARE` of Enterprise's part: same explanation, and it names who to talk to.
    """
    if top is None or PAIR_SEP in top.dimension or view.data.sets:
        return top
    own = _power(top, basis, gap)
    if own <= 0:
        return top
    best, best_power = top, 0.0
    for other in view.data.dims:
        if other == top.dimension:
            continue
        res = _segment_parts(view, versus, (top.dimension, other))
        if res is None:
            continue
        for p in res[1]:
            if p.segment.split(PAIR_SEP)[0] != top.segment or view.data.unnamed(p.dimension, p.segment):
                continue
            pw = _power(p, basis, gap)
            if pw >= REFINE_SHARE * own and pw > best_power:
                best, best_power = p, pw
    return best


# --- children ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Children:
    method: str | None
    parts: tuple[ChildPart, ...]
    influences: tuple[Influence, ...]
    residual: float | None
    residual_detail: tuple[tuple[str, float], ...]
    notes: tuple[str, ...]


def _children(session: _Session, parent: _NodeView, versus: str, cell_dim: tuple[str] | None) -> _Children:
    """The parent's gap over its formula's children (+ residual), and its influence children.

    Product (and other non-additive) formulas are attributed within the segments of `cell_dim`,
    the single dimension that best explains the parent's own change: a mix shift along the
    dimension where the problem sits (one rep, one channel) would otherwise show up as a change
    of the ratio factors (deal size) over the totals — Simpson's paradox. Additive formulas need
    no segments: deltas are the same either way.
    """
    node = parent.node
    tree = session.tree
    kids = [tree.node(c) for c in node.children]
    views = {k.id: _view(session, k, versus) for k in kids}
    formula = att.Formula.parse(node.formula) if node.formula else None
    exact = set(formula.names) if formula else set()
    influences = tuple(_influence(views[k.id]) for k in kids if k.id not in exact)
    if formula is None:
        return _Children(None, (), influences, None, (), ())
    notes: list[str] = []
    x1: dict[str, float] = {}
    base: dict[str, float] = {}
    for n in formula.names:
        v = views[n]
        b = v.baseline
        if versus == "target" and b is None and v.ref_value is not None:
            b = v.ref_value
            notes.append(f"{v.node.label} has no target: its reference level stands in as its baseline")
        if v.value is None or b is None:
            if parent.gap is not None:  # else there is no change to attribute anyway
                notes.append(f"{v.node.label} has no value or baseline: the formula's change stays in the residual")
            return _undefined(parent, influences, notes)
        x1[n], base[n] = v.value, b
    gap = parent.gap
    parts_by: dict[str, float] = {n: 0.0 for n in formula.names}
    cells: dict[str, list[tuple[str, float]]] = {n: [] for n in formula.names}
    joint = None
    if formula.kind != "additive" and cell_dim is not None:
        joint = _within_segments(formula, views, base, cell_dim)
    if joint is not None:
        seg_parts, rest, segs, methods = joint
        for n in formula.names:
            parts_by[n] = float(seg_parts[n].sum()) + rest[n]
            order = np.argsort(-np.abs(seg_parts[n]))[:5]
            cells[n] = [(segs[i], float(seg_parts[n][i])) for i in order]
        method = f"{' + '.join(sorted(methods))}, within segments by {cell_dim[0]}"
    else:
        res = att.attribute(formula, base, x1)
        if res.note:
            notes.append(res.note)
        if res.method == "undefined":
            return _undefined(parent, influences, notes)
        parts_by.update(dict(res.parts))
        method = res.method
    parts = []
    for n in formula.names:
        v = views[n]
        c = parts_by[n]
        parts.append(ChildPart(n, v.node.label, v.node.owner, c, _share(c, gap), v.value, base[n], v.unit,
                               v.status, "exact", tuple(cells[n])))
    residual = None
    detail: tuple[tuple[str, float], ...] = ()
    if gap is not None:
        residual = gap - sum(parts_by.values())
        f1, f0 = float(formula(x1)), float(formula(base))
        detail = (("value_vs_formula", parent.value - f1), ("baseline_vs_formula", parent.baseline - f0))  # type: ignore[operator]
        parts.append(ChildPart("residual", "Residual (not in formula)", node.owner, residual, _share(residual, gap),
                               None, None, parent.unit, "", "residual"))
    return _Children(method, tuple(parts), influences, residual, detail, tuple(notes))


def _undefined(parent: _NodeView, influences: tuple[Influence, ...], notes: list[str]) -> _Children:
    """No attribution possible: the whole gap is the residual, said so in the notes."""
    gap = parent.gap
    parts: tuple[ChildPart, ...] = ()
    if gap is not None:
        parts = (ChildPart("residual", "Residual (not in formula)", parent.node.owner, gap, _share(gap, gap), None,
                           None, parent.unit, "", "residual"),)
    return _Children("undefined", parts, influences, gap, (), tuple(notes))


def _share(part: float, gap: float | None) -> float | None:
    if gap is None or gap == 0 or not math.isfinite(part):
        return None
    return part / gap


def _influence(v: _NodeView) -> Influence:
    return Influence(v.node.id, v.node.label, v.node.owner, v.status, v.value, v.baseline, v.gap, v.relative_gap,
                     v.bands, v.unit)


def _within_segments(formula: att.Formula, views: Mapping[str, _NodeView], base: Mapping[str, float],
                     dims: tuple[str, ...]
                     ) -> tuple[dict[str, np.ndarray], dict[str, float], list[str], dict[str, int]] | None:
    """Attribution of reference → actual inside each segment of `dims`, plus baseline → reference.

    Per segment, each child moves from its reference-period value to its actual value (LMDI, or
    Shapley where a factor is zero); summed over segments this is f(actuals) − f(reference) when
    the formula holds segment by segment (Σ_s f(x_s) = f(X), e.g. deals × win rate × deal size =
    won amount in every segment — otherwise None, and the caller uses the totals). Against a
    target, the remaining f(reference) − f(targets) is attributed over the totals (`rest`); the
    reference period is chosen where the children were closest to their targets, so it is small.
    Together: f(actuals) − f(baselines), exactly.
    A rate with no denominator in a segment (no won deal, say) borrows its value from the other
    side or the total, which leaves f(x_s) unchanged because another factor is zero there.
    """
    splits = {}
    for n in formula.names:
        d = views[n].data
        if d.cur is None or d.ref is None or d.cur_metric is not d.ref_metric:
            return None
        sp = d.split(dims)
        if sp is None:
            return None
        splits[n] = sp
    segs = sorted(set().union(*(sp.segments for sp in splits.values())))
    if not segs:
        return None
    where = {s: i for i, s in enumerate(segs)}
    x1, x0, t1, t0 = {}, {}, {}, {}
    for n, sp in splits.items():
        idx = np.array([where[s] for s in sp.segments], dtype=np.int64)
        a1, a0 = np.full(len(segs), np.nan), np.full(len(segs), np.nan)
        a1[idx], a0[idx] = sp.value, sp.ref_value
        tot1, tot0 = views[n].value, views[n].ref_value
        if tot1 is None or tot0 is None:
            return None
        if views[n].data.cur_metric.additive:  # a segment absent from a sum adds zero
            x1[n], x0[n] = np.nan_to_num(a1), np.nan_to_num(a0)
        else:  # a rate with no denominator: borrow it (another factor is zero there anyway)
            a1, a0 = np.where(np.isfinite(a1), a1, a0), np.where(np.isfinite(a0), a0, a1)
            x1[n], x0[n] = np.where(np.isfinite(a1), a1, tot1), np.where(np.isfinite(a0), a0, tot0)
        t1[n], t0[n] = tot1, tot0
    for cells, totals in ((x1, t1), (x0, t0)):
        whole = float(formula(totals))
        summed = float(np.sum(formula(cells)))
        if not math.isfinite(summed) or abs(summed - whole) > 1e-6 * max(abs(whole), 1.0):
            return None
    parts, methods = att.attribute_cells(formula, x0, x1)
    if not all(np.all(np.isfinite(v)) for v in parts.values()):
        return None
    rest = {n: 0.0 for n in formula.names}
    if any(base[n] != t0[n] for n in formula.names):
        leg = att.attribute(formula, base, t0)  # from the baselines (targets) to the reference level
        if leg.method == "undefined":
            return None
        rest = dict(leg.parts)
        methods = {**methods, f"{leg.method} (target → reference)": 1}
    return parts, rest, segs, methods


# --- the red path ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Analysis:
    view: _NodeView
    children: _Children
    segments: _SegmentAnalysis
    also: Finding | None = None
    unjudged: str = ""  # why the node has no gap, in words ("has no data in 2026-10: needs …")


def _analyse(session: _Session, node: Node, versus: str) -> _Analysis:
    if node.id not in session.analyses:
        session.analyses[node.id] = _analyse_node(session, node, versus)
    return session.analyses[node.id]


def _analyse_node(session: _Session, node: Node, versus: str) -> _Analysis:
    kids = [session.tree.node(c) for c in node.children]
    session.fetch([node, *kids])
    view = _view(session, node, versus)
    segments = _segments(_view(session, node, versus, own=True), versus)
    cell_dim = None
    if node.formula:
        exact = att.Formula.parse(node.formula).names
        common = [d for d in session.data[exact[0]].dims
                  if all(d in session.data[k].dims and not session.data[k].sets for k in exact)]
        ranked = [d.dimension for d in segments.dimensions if d.dimension in common]
        cell_dim = (ranked[0],) if ranked else None
    children = _children(session, view, versus, cell_dim)
    return _Analysis(view, children, segments, _rate_finding(session, node, versus, view, segments),
                     _unjudged(session, view, versus))


def _unjudged(session: _Session, view: _NodeView, versus: str) -> str:
    """Why a node cannot be judged (no value, or nothing to compare it with); empty when it can."""
    if view.value is None:
        reason = session.engine.no_data_reason(view.node, session.period)
        return f"has no data in {session.period.key}" + (f": {reason}" if reason else "")
    if view.baseline is None:
        if versus == "target":
            return f"has no target for {session.period.key}"
        return f"has no value in {session.reference.periods[0].key} to compare with"
    return ""


def _over(session: _Session, a: _Analysis, versus: str) -> list[tuple[tuple[str, ...], _Analysis]]:
    """The nearest descendants that can be judged, past nodes that cannot, each with the ids of the
    nodes stepped over on the way.

    Below a node without a gap (no data, no target): its children, and below any that have no gap
    either, theirs, and so on. Below a node with a gap: the same under each child without data only
    (a child with data but no target is judged by its parent's attribution as before). A workspace
    with deals but no subscriptions thus still walks from ARR down to New ARR and its levers.
    """
    out: list[tuple[tuple[str, ...], _Analysis]] = []
    seen = {a.view.node.id}

    def walk(x: _Analysis, via: tuple[str, ...]) -> None:
        for cid in x.view.node.children:
            if cid in seen:
                continue
            seen.add(cid)
            kid = _analyse(session, session.tree.node(cid), versus)
            if kid.view.gap is not None:
                out.append((via, kid))
            else:
                walk(kid, (*via, cid))

    if a.view.gap is None:
        walk(a, ())
        return out
    for cid in a.view.node.children:
        if cid not in seen and _view(session, session.tree.node(cid), versus).value is None:
            seen.add(cid)
            walk(_analyse(session, session.tree.node(cid), versus), (cid,))
    return out


def _worse(found: list[tuple[tuple[str, ...], _Analysis]]) -> list[tuple[tuple[str, ...], _Analysis]]:
    """Of the nodes `_over` found, those off their own baseline in the bad direction, worst first."""
    return sorted(((via, k) for via, k in found if (k.view.bands or 0.0) > 0), key=lambda x: -(x[1].view.bands or 0.0))


@dataclass(frozen=True)
class Finding:
    """A segment whose own rate moved, found beside a top segment that is a shift of mix."""

    segment: SegmentPart
    baseline_label: str  # the period its rate is compared with
    sentence: str

    def to_dict(self) -> dict:
        return {"segment": self.segment.to_dict(), "baseline_label": self.baseline_label, "sentence": self.sentence}


def _rate_finding(session: _Session, node: Node, versus: str, main: _NodeView,
                  segments: _SegmentAnalysis) -> Finding | None:
    """For a ratio whose top segment is a mix shift: the segment whose own rate fell the most.

    "Enterprise deals: a smaller share of the mix" says the average deal size fell because fewer
    big deals closed — a cause upstream (win rate). A second problem in the same number, Mid-Market
    deals closing smaller, is a rate effect that the mix shift hides. Rates are compared with the
    explanation's own baseline; against a target, when none moved there, with the same period last
    year too, since the reference period may already carry a problem that began months ago.
    """
    top = segments.top
    if not segments.dimensions or segments.dimensions[0].method != "mix_rate" or main.gap is None:
        return None
    if top is not None and top.mix is not None and top.rate is not None and abs(top.rate) >= abs(top.mix):
        return None  # the top segment already is a rate finding
    if main.adverse(main.gap) <= 0 or main.data.sets:
        return None
    ranked = [d.dimension for d in segments.dimensions if PAIR_SEP not in d.dimension]
    own_view = _view(session, node, versus, own=True)
    refs = own_view.data.ref_periods
    label = refs[0].key if len(refs) == 1 else f"average {refs[-1].key}…{refs[0].key}" if refs else "the baseline"
    candidates: list[tuple[_NodeView, str, str]] = [(own_view, versus, label)]
    ly = session.period.same_last_year()
    plan, frames = session._raw[node.id]
    if versus == "target" and ly in plan.ref and own_view.data.ref_periods != (ly,):
        # the reference may already carry a problem that began months ago: last year's rates do not
        candidates.append((_view(session, node, "last_year", data=NodeData.build(node, plan, frames, session, (ly,))),
                           "last_year", ly.key))
    best = None
    for view, mode, where in candidates:
        best = _top_rate(view, mode, ranked, main)
        if best is not None:
            label = where
            break
    if best is None or (top is not None and best.dimension == top.dimension and best.segment == top.segment):
        return None
    who = _describe(best, _noun(main.data.cur_metric))
    own = best.own_rate if best.own_rate is not None else best.rate
    where = label if label.startswith("average") else f"in {label}"
    compared = compare_words(best.value, best.baseline, main.unit, "reference", where.replace("average ", "on average "))
    sentence = (f"Also {who}: {node.label} {compared} within their own segments, worth {fmt_change(own, main.unit)} "
                f"on the total, not a shift of mix. Owner: {node.owner}.")
    return Finding(best, label, sentence)


def _top_rate(view: _NodeView, mode: str, ranked: Sequence[str], main: _NodeView) -> SegmentPart | None:
    """The segment whose own (conditioned) rate moved most in the bad direction, over every single
    dimension (ties to the better-ranked one), by at least `ALSO_SHARE` of the node's gap and its
    amber band; narrowed by a second dimension when one sub-segment carries most of it."""
    gap = main.gap or 0.0
    best, best_own = None, 0.0
    for d in [*ranked, *(d for d in view.data.dims if d not in ranked)]:
        res = _segment_parts(view, mode, (d,))
        if res is None or res[0] != "mix_rate":
            continue
        for p in _conditioned(view, mode, d, res[1]):
            if p.segment in PSEUDO or p.rate is None or p.value is None or not p.baseline \
                    or view.data.unnamed(p.dimension, p.segment):
                continue
            own = main.adverse(p.own_rate if p.own_rate is not None else p.rate)
            if own < ALSO_SHARE * abs(gap) or main.adverse(p.value / p.baseline - 1.0) < main.amber:
                continue
            if own > best_own * (1 + 1e-9):
                best, best_own = p, own
    if best is None or view.gap is None:
        return best
    return _refine(view, mode, best, view.gap, "rate")


# --- causes: every lever where a material part of the gap sits --------------------------------


@dataclass(frozen=True)
class Cause(_NodeFacts):
    """A lever where part of the gap sits, how it is reached from the explained node, and where in it."""

    path: tuple[str, ...]  # node ids from the explained node down to the lever
    weight: float  # product of the exact shares along the path (influence links count as 1): for ordering
    top_segment: SegmentPart | None
    sentence: str
    also: Finding | None = None
    reached: bool = True  # False: red, but below a parent on (or near) its baseline, so not part of its gap
    path_labels: tuple[str, ...] = ()  # the path in words
    aside: str = ""  # why an unreached cause is listed: "red below Gross revenue retention, which is on target"

    def sentences(self) -> list[str]:
        return [self.sentence, *([self.also.sentence] if self.also else [])]

    def to_dict(self) -> dict:
        return _clean({"path": list(self.path), "path_labels": list(self.path_labels), "id": self.id,
                       "label": self.label, "owner": self.owner,
                       "status": self.status, "value": self.value, "baseline": self.baseline, "unit": self.unit,
                       "weight": self.weight, "reached": self.reached, "aside": self.aside,
                       "top_segment": self.top_segment.to_dict() if self.top_segment is not None else None,
                       "sentence": self.sentence, "also": self.also.to_dict() if self.also else None})


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
        if i.bands is not None and i.bands > 0:
            out.append((i.id, "influence", None, ()))
    out.extend((k.view.node.id, "own", None, via) for via, k in _worse(_over(session, a, versus)))
    return out


def _off_baseline(session: _Session, c: ChildPart) -> bool:
    """The child itself moved beyond a quarter of its amber band in the bad direction."""
    kid = session.tree.node(c.id)
    amber = kid.amber if kid.amber is not None else session.engine.settings.amber_threshold
    own = (c.value - c.baseline) / abs(c.baseline) if c.baseline else c.value - c.baseline  # type: ignore[operator]
    return (-own if kid.better == "higher" else own) >= ON_TARGET_BANDS * amber


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
        elapsed = period.elapsed_fraction(engine.as_of)
        compared = value
        if not period.is_complete(engine.as_of) and metric(node.metric).kind is Kind.FLOW and value is not None \
                and elapsed > 0:
            compared = value / elapsed
        amber = node.amber if node.amber is not None else engine.settings.amber_threshold
        return status_of(compared, target_for(node, period), node.better, amber)


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
        exact = False
        for cid, link, part, via in _branches(session, a, versus):
            if cid in seen:
                continue
            seen.add(cid)
            seen.update(via)
            exact |= link == "exact"
            kid = _analyse(session, session.tree.node(cid), versus)
            visit(kid, (*path, *via, cid), weight * (part if part is not None else 1.0), root)
        if not exact and (len(path) > 1 or not out):  # the node itself, when nothing below carries its gap
            v = a.view
            if v.gap is None or v.adverse(v.gap) <= 0:
                return
            labels = tuple(session.tree.node(i).label for i in path)
            aside = aside_for(root, v.node)
            out.append(Cause(v.node.id, v.node.label, v.node.owner, v.status, v.value, v.baseline, v.unit, path,
                             weight, a.segments.top,
                             _segment_sentence(a) or _sentence(a, "start", None, None, versus), a.also, not aside,
                             labels, aside))

    visit(start, (start.view.node.id,), 1.0, None)
    # red against its target but not reached by the walk: listed too, saying why the walk did not reach it
    statuses.prefetch([n for n in _subtree(session.tree, start.view.node) if n.id not in seen])
    for node in _subtree(session.tree, start.view.node):
        if node.id in seen or statuses.status(node.id) != "red":
            continue
        seen.add(node.id)
        visit(_analyse(session, node, versus), _path_between(session.tree, start.view.node, node), 0.0, node)
    lever = red_path[-1] if red_path else None
    # every cause is listed: a reached one carries a material part of the gap, an unreached one is red
    out.sort(key=lambda c: (c.id != lever, not _concentrated(c), c.status != "red", not c.reached, -c.weight))
    return out


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
        if v.gap is None:
            why = f"red against its target, with nothing {_period_words((v.base_key,))} to compare it with"
        elif v.adverse(v.gap) <= 0:
            why = (f"red against its target, but {_node_compare(v)}: no worse, so no part of this change"
                   if versus != "target" else "red, but on the right side of its own baseline")
        else:
            why = "red, but below a part that is on its own baseline"
        out.append((node.id, f"{node.label}: {why}."))
    return out


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


Next = tuple[str, str, float | None, float | None, tuple[str, ...]]  # id, link, share, bands, stepped over


def _next_step(session: _Session, a: _Analysis, versus: str) -> Next | None:
    """The child that explains most of the gap: (id, link, share, bands, ids stepped over), or None
    at the end. Past a node without a gap, the descendant furthest off its own baseline."""
    view = a.view
    gap = view.gap
    if gap is None:
        worst = _worse(_over(session, a, versus))
        if not worst:
            return None
        via, kid = worst[0]
        return kid.view.node.id, "own", None, kid.view.bands, via
    if view.adverse(gap) <= 0:
        return None
    best_exact = None
    for c in a.children.parts:
        if c.link != "exact" or c.share is None or c.share <= 0 or c.value is None or c.baseline is None:
            continue
        if not _off_baseline(session, c):
            continue  # it weighs on the parent within segments, but is itself on (or near) its baseline
        if best_exact is None or c.share > best_exact.share:
            best_exact = c
    # influence children (and, past children without data, descendants judged on their own): the
    # red one furthest beyond its amber band; failing that (an amber parent, say), the one furthest
    # off in the bad direction
    candidates: list[tuple[str, str, float, tuple[str, ...]]] = [
        (i.id, "influence", i.bands, ()) for i in a.children.influences if i.bands is not None and i.bands > 0]
    candidates += [(k.view.node.id, "own", k.view.bands or 0.0, via) for via, k in _worse(_over(session, a, versus))]
    best_inf = max(candidates, key=lambda c: c[2], default=None)
    if best_inf is not None and best_inf[2] < 1 and best_exact is not None:
        best_inf = None  # an exact share beats an influence that is not even red
    if best_exact is not None and (best_exact.share >= EXACT_FIRST_SHARE or best_inf is None):  # type: ignore[operator]
        return best_exact.id, "exact", best_exact.share, None, ()
    if best_inf is not None:
        return best_inf[0], best_inf[1], None, best_inf[2], best_inf[3]
    return None


def _red_path(session: _Session, start: _Analysis, versus: str) -> list[tuple[_Analysis, str, float | None, float | None]]:
    """From `start` down the child that explains most of the gap to a lever; nodes without data on
    the way are steps of their own ("over"), saying what they lack."""
    path = [(start, "start", None, None)]
    seen = {start.view.node.id}
    cur = start
    while True:
        nxt = _next_step(session, cur, versus)
        if nxt is None or nxt[0] in seen:
            break
        cid, link, share, bands, via = nxt
        for vid in via:
            seen.add(vid)
            path.append((_analyse(session, session.tree.node(vid), versus), "over", None, None))
        seen.add(cid)
        cur = _analyse(session, session.tree.node(cid), versus)
        path.append((cur, link, share, bands))
    return path


# --- words ------------------------------------------------------------------------------------


def _gap_word(view: _NodeView) -> str:
    gap = view.gap or 0.0
    if view.adverse(gap) > 0:
        return "shortfall" if view.direction == "higher" else "excess"
    return "gain" if view.direction == "higher" else "improvement"


def _noun(m: Metric) -> str:
    """What a metric counts, for sentences: deals, leads, customers — or, for usage metrics read
    from events, the accounts or users they are about."""
    return METRIC_NOUNS.get(m.name) or NOUNS.get(m.table, "rows")


def _describe(segment: SegmentPart, noun: str) -> str:
    """`owner × segment` = `Dana × Enterprise` → "Enterprise deals owned by Dana"."""
    dims = segment.dimension.split(PAIR_SEP)
    vals = segment.segment.split(PAIR_SEP) if len(dims) > 1 else [segment.segment]
    if len(vals) != len(dims):
        return f"{segment.dimension} {segment.segment}"
    before, after = [], []
    for d, v in zip(dims, vals, strict=True):
        if v == NONE:
            after.append(f"with no {d}")
        elif d == "owner":
            after.append(f"owned by {v}")
        elif d == "csm":
            after.append(f"managed by {v}")
        else:  # segment, channel, industry, plan, type: an adjective
            before.append(v)
    return " ".join([*before, noun, *after]).strip()


def _explains(share: float | None, part: float | None, gap: float | None, unit: str, of: str,
              offset: Sequence[tuple[str, float]] = ()) -> str:
    """"explains 64% of the X shortfall"; past the whole of it, amounts read better than a share:
    "−7.2 pp on its own, more than the whole −3.0 pp X shortfall (the others made up +4.2 pp; the
    largest offset: Marcus Chen +1.1 pp)" — `offset` names the parts that went the other way."""
    if share is not None and share > 1.05 and part is not None and gap is not None:
        named = " and ".join(f"{name} {fmt_change(c, unit)}" for name, c in offset[:2])
        largest = f"; the largest offset{'s' if len(offset[:2]) > 1 else ''}: {named}" if named else ""
        return (f"{fmt_change(part, unit)} on its own, more than the whole {fmt_change(gap, unit)} {of} "
                f"(the others made up {fmt_change(gap - part, unit)}{largest})")
    return f"explains {fmt_share(share)} of the {of}"


def _period_words(keys: Sequence[str]) -> str:
    """("2026-05",) → "in 2026-05"; several → "on average in 2026-04, 2026-06 and 2026-07"."""
    keys = sorted(keys)
    if not keys:
        return "in the reference period"
    if len(keys) == 1:
        return f"in {keys[0]}"
    runs: list[list[str]] = []
    for k in keys:  # consecutive periods read as a range: "2026-04 to 2026-08"
        if runs and parse_period(runs[-1][-1]).shift(1).key == k:
            runs[-1].append(k)
        else:
            runs.append([k])
    parts = [x for r in runs for x in (r if len(r) < 3 else [f"{r[0]} to {r[-1]}"])]
    return "on average in " + (parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}")


def baseline_words(number: str, kind: str, where: str = "") -> str:
    """A baseline in words after "against": "target $7.39M", "$7.27M in 2026-09", "a target share of
    991", "31.9% in 2026-05" — a comparison, never an arrow that reads as a change over time."""
    if kind == "target":
        return f"target {number}"
    if kind == "share":
        return f"a target share of {number}"
    if kind == "period":
        return f"{number} in {where}"
    return f"{number} {where}".rstrip()


RELATIVE_AS_AMOUNT = 10.0
"""Beyond ±1,000 % a percentage stops meaning anything to a reader (a $1 target makes $158.37M read
"+15837156080%"): such a change is said as the amount ("+$158.37M")."""


def relative_words(value: float | None, baseline: float | None, unit: str) -> str:
    """`fmt_relative` ("−42%", "−2.4 pp"), or the amount itself where the relative change is past
    `RELATIVE_AS_AMOUNT`."""
    if value is not None and baseline and unit != "percent" and value == value and baseline == baseline \
            and abs(value / baseline - 1) > RELATIVE_AS_AMOUNT:
        return fmt_change(value - baseline, unit)
    return fmt_relative(value, baseline, unit)


def compare_words(value: float | None, baseline: float | None, unit: str, kind: str, where: str = "", *,
                  amount: bool = False) -> str:
    """"actual $4.27M against target $7.39M (−42%)"; "$4.27M against $7.27M in 2026-09 (−41%)".

    Money is compact; percents differ in points, other numbers in per cent (`amount` adds the
    difference itself: "(−$12.63M, −7%)")."""
    actual = "actual " if kind == "target" else ""
    money = unit in ("money", "money_per_day")
    if money and value is not None and baseline is not None and value != baseline \
            and fmt(value, unit, compact=True) == fmt(baseline, unit, compact=True):
        money = False  # close enough to read alike when rounded: the full numbers tell them apart
    text = f"{actual}{fmt(value, unit, compact=money)} against {baseline_words(fmt(baseline, unit, compact=money), kind, where)}"
    if value is None or baseline is None:
        return text
    rel = relative_words(value, baseline, unit)
    if amount and unit != "percent" and rel != fmt_change(value - baseline, unit):
        rel = f"{fmt_change(value - baseline, unit)}, {rel}"
    return f"{text} ({rel})"


def _node_compare(v: _NodeView, *, amount: bool = False) -> str:
    kind = "target" if v.versus == "target" else "period"
    return compare_words(v.value, v.baseline, v.unit, kind, v.base_key, amount=amount)


def _segment_compare(value: float | None, baseline: float | None, unit: str, basis: tuple[str, str]) -> str:
    return compare_words(value, baseline, unit, basis[0], basis[1])


def _sentence(a: _Analysis, link: str, share: float | None, parent: _Analysis | None, versus: str) -> str:
    v = a.view
    node = v.node
    against = "target" if versus == "target" else v.base_key
    phrase = STATUS_PHRASE.get(v.status, v.status.replace("_", " "))
    if link == "start" and v.value is None:
        return f"{node.label} {a.unjudged}. Owner: {node.owner}."
    if link == "start" and v.baseline is None:  # nothing to judge it against: say so, no "— (—; …)"
        lacks = "has no target" if versus == "target" else f"has no value in {against} to compare with"
        return f"{node.label} is {fmt(v.value, v.unit)} and {lacks}. Owner: {node.owner}."
    if link == "start":
        return f"{node.label}: {_node_compare(v, amount=True)}; {phrase}. Owner: {node.owner}."
    if link == "over":
        said = parent is not None and parent.unjudged == a.unjudged and parent.view.value is None
        lacks = "has no data either, for the same reason" if said else a.unjudged
        return f"{node.label} {lacks}; below it, each part is judged on its own. Owner: {node.owner}."
    assert parent is not None
    if link == "own":
        pv = parent.view
        lacks = "has no data" if pv.value is None else "has no target" if versus == "target" else "has no baseline"
        return (f"{node.label}: {_node_compare(v)}; {phrase}, judged on its own, as {pv.node.label} {lacks}. "
                f"Owner: {node.owner}.")
    if link == "exact":
        pv = parent.view
        part = share * pv.gap if share is not None and pv.gap is not None else None
        offset = sorted(((_child_name(c), c.contribution) for c in parent.children.parts
                         if pv.gap is not None and c.contribution * pv.gap < 0
                         and abs(c.contribution) >= 0.05 * abs(pv.gap)), key=lambda x: -abs(x[1]))
        explains = _explains(share, part, pv.gap, pv.unit, f"{pv.node.label} {_gap_word(pv)}", offset)
        return f"{node.label}: {_node_compare(v)}, {explains}. Owner: {node.owner}."
    return (f"{node.label}: {_node_compare(v)}; {phrase}. It influences {parent.view.node.label} but is not a share "
            f"of it. Owner: {node.owner}.")


def _segment_sentence(a: _Analysis) -> str | None:
    top = a.segments.top
    if top is None:
        return None
    v = a.view
    rank = next((d for d in a.segments.dimensions if d.dimension == top.dimension), None)
    offset = sorted(((p.segment, p.contribution) for p in (rank.segments if rank is not None else ())
                     if p.segment not in PSEUDO and v.gap is not None and p.contribution * v.gap < 0
                     and abs(p.contribution) >= 0.05 * abs(v.gap)), key=lambda x: -abs(x[1]))
    explains = _explains(top.share, top.contribution, v.gap, v.unit, f"{v.node.label} {_gap_word(v)}", offset)
    who = _describe(top, _noun(v.data.cur_metric))
    who = who[:1].upper() + who[1:]
    basis = a.segments.basis
    if top.mix is not None and top.rate is not None and abs(top.mix) > abs(top.rate) and top.weight is not None \
            and top.base_weight is not None:
        # mostly a shift of mix: the segment's weight moved, not its own rate
        more = "larger" if top.weight > top.base_weight else "smaller"
        then = "in the reference" if basis[0] == "share" else basis[1] if basis[0] == "reference" else f"in {basis[1]}"
        return (f"{who}: a {more} share of the mix ({fmt_share(top.weight)} now against {fmt_share(top.base_weight)} "
                f"{then}) at {fmt(top.value, v.unit, compact=True)}, {explains}. Owner: {v.node.owner}.")
    return (f"{who}: {v.node.label} {_segment_compare(top.value, top.baseline, v.unit, basis)}, {explains}. "
            f"Owner: {v.node.owner}.")


def _how(start: _Analysis, session: _Session, versus: str) -> tuple[str, ...]:
    """One sentence per method the explanation of `start` used, in the order a reader meets them."""
    v = start.view
    node = v.node
    out: list[str] = []
    if versus == "target":
        out.append(f"Gap: {node.label}'s value minus its target for {session.period.key}; the status colours are "
                   "always against the target.")
    else:
        out.append(f"Change: {node.label}'s value in {session.period.key} minus its value in {v.base_key}; the "
                   "status colours stay against the target.")
    method = start.children.method or ""
    if node.formula and method:
        out.append(f"Formula: {node.formula}. The children's parts add up exactly to the parent's "
                   f"{'gap' if versus == 'target' else 'change'}, with a residual for what the formula does not give.")
    if "additive" in method:
        out.append("Deltas: for a sum, each child's part is its own difference from its baseline.")
    if "lmdi" in method:
        out.append("LMDI (log-mean Divisia index): for a product or a ratio, each factor's part is the parent's "
                   "change weighted by how much that factor moved (its log ratio), so the parts add up exactly.")
    if "shapley" in method:
        out.append("Shapley values: where a factor is zero or the formula mixes sums and products, each child's "
                   "part is its average effect over every order in which the children could have changed.")
    if "within segments by" in method:
        dim = method.rsplit("within segments by ", 1)[1]
        refs = _period_words(tuple(p.key for p in session.data[node.id].ref_periods))
        out.append(f"Within each {dim}: the formula is split {dim} by {dim} from the children's level {refs} to "
                   f"now, so a change in the mix of {dim}s is not mistaken for a change of one factor (Simpson's "
                   "paradox).")
        if "(target → reference)" in method:
            out.append(f"Target → reference: the step from the children's targets to their level {refs} is "
                       "attributed over the totals and added to each child's part.")
    if method == "undefined":
        out.append("The formula could not split this change (a child has no value or baseline), so it all stays "
                   "in the residual.")
    residual = start.children.residual
    if residual is not None and v.gap and abs(residual) >= 0.005 * abs(v.gap):
        out.append("Residual: the part of the gap the formula over the children does not give — the parent measured "
                   "apart from its children, or targets that do not fit the formula.")
    if start.children.influences:
        names = ", ".join(i.label for i in start.children.influences)
        out.append(f"Influence links ({names}): they move {node.label} but do not add up to it, so each is judged "
                   f"on its own against its baseline and gets no share of the {'gap' if versus == 'target' else 'change'}.")
    if start.segments.dimensions:
        kind, where = start.segments.basis
        if kind == "share":
            refs = _period_words(tuple(p.key for p in session.own(node).ref_periods))
            out.append(f"Segments have no targets: the target is shared out over them by each segment's weight {refs} "
                       "(periods that went to plan), and a segment's part is its value minus its target share.")
        elif kind == "reference":
            out.append(f"Segments have no targets: each is compared with its own level {where} (periods that went to "
                       "plan); what separates that level from the target is no segment's doing and is reported as "
                       f"{PSEUDO[0]!r}.")
        else:
            out.append(f"Segments: each is compared with its own value in {where}.")
        if any(d.method == "mix_rate" for d in start.segments.dimensions):
            out.append("Mix and rate: for a ratio, a segment's part is its own rate moving (rate) plus its share of "
                       "the volume moving (mix); the two add up exactly.")
        gap = "gap" if versus == "target" else "change"
        out.append(f"Dimensions are ranked by how much of the {gap} a few segments explain and how surprising their "
                   f"change is (Adtributor); a segment carrying {NAMED_SHARE:.0%} of the {gap} or more is named, and "
                   "marked in the chart.")
    return tuple(out)


# --- entry point ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """Where baselines and segment structure come from: candidate periods, and how to use them."""

    periods: tuple[Period, ...]  # most recent first
    choose: bool  # pick the one where each batch's parent was closest to its target; else average all


def reference_periods(period: Period, versus: str, reference: str | int | None = None) -> Reference:
    """The periods that baselines and segment structure come from.

    Against the previous period or last year: that period. Against a target, segments and the
    cells of a product formula have no targets of their own, so they take their structure (shares,
    rates) from reference periods. By default (`reference=None`) these are, for each node and its
    children, the candidates (`REFERENCE_PERIODS` before, and the same period last year) in which
    the node was within its amber band of target, averaged — or the single closest one when none
    was: periods that went to plan have the mix the plan assumed, while the period just before
    may already carry a problem that began months ago. `reference="last_year"` forces last year;
    an integer k averages the k periods just before.
    """
    if versus == "previous":
        return Reference((period.previous(),), False)
    if versus == "last_year":
        return Reference((period.same_last_year(),), False)
    if reference == "last_year":
        return Reference((period.same_last_year(),), False)
    if isinstance(reference, int):
        return Reference(tuple(period.shift(-i) for i in range(1, reference + 1)), False)
    recent = tuple(period.shift(-i) for i in range(1, REFERENCE_PERIODS[period.grain] + 1))
    return Reference(tuple(dict.fromkeys((*recent, period.same_last_year()))), True)


def explain_node(workspace: Workspace | Engine, tree: Tree, node_id: str, period: str | Period | None = None,
                 versus: str = "target", grain: str | None = None, *, reference: str | int | None = None,
                 causes: bool = True, hold_connection: bool = True, evaluation: Evaluation | None = None
                 ) -> Explanation:
    """Why `node_id` is where it is in `period` against `versus` (target, previous or last_year).

    With no period, the latest complete period of the grain (default: the tree's grain).
    `reference` chooses where, against a target, segment structure comes from (see
    `reference_periods`). `causes=False` skips the walk over every branch (the red path only).
    `hold_connection=False` opens a connection per query (see `warmup`). `evaluation`: the tree
    already evaluated for this period (the page has it), whose statuses the walk over the causes
    reads instead of querying them. Raises KeyError for an unknown node.
    """
    import time

    started = time.perf_counter()
    node = tree.node(node_id)
    if versus not in VERSUS:
        raise KpiTreeError(f"versus must be one of {', '.join(VERSUS)}; got {versus!r}")
    engine = workspace if isinstance(workspace, Engine) else Engine(workspace)
    if period is None or isinstance(period, str):
        # a written period carries its own grain; the tree's grain only picks the default period
        period = resolve_period(period, grain if period else (grain or tree.grain), engine.as_of)
    session = _Session(engine, tree, period, reference_periods(period, versus, reference), hold_connection)
    try:
        start = _analyse(session, node, versus)
        path = _red_path(session, start, versus)
        ids = [a.view.node.id for a, *_ in path]
        found: list[Cause] = []
        unlisted: list[tuple[str, str]] = []
        if causes:
            statuses = _TreeStatus(session, evaluation)
            found = _causes(session, start, versus, ids, statuses)
            unlisted = _unlisted(session, start, versus, ids, found, statuses)
    finally:
        session.close()
    steps = []
    for i, (a, link, share, bands) in enumerate(path):
        parent = path[i - 1][0] if i else None
        is_last = i == len(path) - 1
        steps.append(Step(a.view.node.id, a.view.node.label, a.view.node.owner, a.view.status, a.view.value,
                          a.view.baseline, a.view.unit, link, share, bands, a.segments.top,
                          _sentence(a, link, share, parent, versus), _segment_sentence(a) if is_last else None))
    view = start.view
    segs: list[SegmentPart] = []
    for d in start.segments.dimensions:
        segs.extend([s for s in d.segments if (s.share or 0) > 0][:TOP_SEGMENTS])
    notes = [n for n in (session.data[node.id].note, start.segments.note, *start.children.notes) if n]
    if view.value is None and not session.data[node.id].note:
        notes.append(f"{node.label} {start.unjudged}")
    elif view.baseline is None:
        notes.append("no target set for this node" if versus == "target" else f"no data for the baseline of {node.label}")
    if session.running:
        notes.append(f"{period.key} is still running ({session.elapsed:.0%} elapsed): flows are compared at pace")
    baseline_label = "target" if versus == "target" else session.reference.periods[0].key
    return Explanation(
        node=node.id, label=node.label, owner=node.owner, period=period.key, grain=period.grain.value, versus=versus,
        baseline_label=baseline_label, value=view.value, baseline=view.baseline, gap=view.gap, status=view.status,
        unit=view.unit, direction=view.direction, formula=node.formula, method=start.children.method,
        children=start.children.parts, influences=start.children.influences, residual=start.children.residual,
        residual_detail=start.children.residual_detail, segments=tuple(segs), dimensions=start.segments.dimensions,
        red_path=tuple(steps), causes=tuple(found), reference=tuple(p.key for p in session.own(node).ref_periods),
        reason=engine.no_data_reason(node, period) if view.value is None else "",
        children_reference=tuple(p.key for p in session.data[node.id].ref_periods),
        notes=tuple(dict.fromkeys(notes)), seconds=time.perf_counter() - started, unlisted=tuple(unlisted),
        how=_how(start, session, versus), finding=start.also,
    )


__all__ = [
    "Cause", "ChildPart", "DimensionRank", "Explanation", "Finding", "Influence", "NodeData", "SegmentPart", "Step",
    "available_dimensions", "baseline_words", "compare_words", "explain_node", "named_segments", "reference_periods",
    "relative_words",
    "segment_basis", "segment_columns", "segment_display", "segment_frame", "segment_heading", "segment_sentence",
]
