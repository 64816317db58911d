"""The explanation's vocabulary: thresholds, pseudo-segments, and the parts it is made of.

Frozen dataclasses with `to_dict` (JSON-safe through `_clean`): a segment's part of the gap, a
ranked dimension, an exact child's part, an influence child, a red-path step, a rate finding and
a cause. `Explanation` itself is in `explanation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..periods import Grain

VERSUS = ("target", "previous", "last_year")
REFERENCE_PERIODS = {Grain.WEEK: 8, Grain.MONTH: 6, Grain.QUARTER: 4, Grain.YEAR: 1}  # candidates (+ last year)
ACCOUNT_DIMENSIONS = ("csm", "industry")  # customer metrics are also split by the account's CSM and industry
PAIR_WHEN_TOP_BELOW = 0.5  # look at pairs of dimensions when no single segment explains half the change
REFINE_SHARE = 0.75  # a sub-segment holding this share of the top segment's part names it more precisely
ALMOST_ALL = 0.9  # a segment this share of the whole (or a sub-segment of its segment) localises nothing
BY_NOW = "target by now"  # the baseline of a running stock or building-up rate: planned by the as-of day
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
                 "no_target": "without a target", "no_data": "without data",
                 "maturing": "maturing (its cohort is still too young to judge)"}
METRIC_NOUNS = {"feature_adoption": "accounts", "health_score": "accounts", "at_risk_accounts": "accounts",
                "upsell_eligible_accounts": "accounts", "dau": "users", "wau": "users", "mau": "users",
                "dau_mau": "users", "time_in_product_minutes": "users", "journey_completion": "users",
                "time_to_first_value_days": "customers"}
NOUNS = {"deals": "deals", "leads": "leads", "subscriptions": "customers", "activities": "activities",
         "spend": "spend", "quotas": "quota", "tickets": "tickets", "events": "events", "nps": "responses"}


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
    sd: float | None = None  # noise of `contribution`: its own data and its history (see `evidence`)
    rate_sd: float | None = None  # ratio metrics: noise of the rate effect
    members: tuple[SegmentPart, ...] = ()  # a cause set: its elements, each at its own depth
    parent: str | None = None  # a nested dimension's segment: the segment of the dimension it lives in

    @property
    def z(self) -> float | None:
        """The contribution in standard deviations of its noise (None without a noise model)."""
        return self.contribution / self.sd if self.sd else None

    @property
    def rate_z(self) -> float | None:
        """The (conditioned) rate effect in standard deviations of its noise."""
        rate = self.own_rate if self.own_rate is not None else self.rate
        return rate / self.rate_sd if rate is not None and self.rate_sd else None

    @property
    def own_part(self) -> float:
        """The contribution less the part of its rate effect that is another dimension's mix inside the
        segment (`within`, see `_conditioned`): when fewer Enterprise deals close, Partner's average
        deal size falls with no Partner deal any smaller, and that is Enterprise's volume, not Partner's."""
        if self.within is not None and self.own_rate is not None and self.rate is not None:
            return self.contribution - self.rate + self.own_rate
        return self.contribution

    def strength(self, basis: str) -> float | None:
        """The z of what the ranking counts: the (conditioned) rate effect (basis "rate") or the whole
        part, less any other dimension's mix inside it (`own_part`)."""
        if basis == "rate" and self.rate is not None:
            return self.rate_z
        return self.own_part / self.sd if self.sd else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """A 95 % interval of the contribution under its noise."""
        return (self.contribution - 1.96 * self.sd, self.contribution + 1.96 * self.sd) if self.sd else None

    def to_dict(self) -> dict:
        out = _clean({"dimension": self.dimension, "segment": self.segment, "contribution": self.contribution,
                      "share": self.share, "value": self.value, "baseline": self.baseline, "mix": self.mix,
                      "rate": self.rate, "weight": self.weight, "base_weight": self.base_weight,
                      "own_rate": self.own_rate, "within": self.within, "surprise": self.surprise,
                      "z": self.z, "rate_z": self.rate_z, "parent": self.parent})
        out["interval"] = [_clean({"v": v})["v"] for v in self.interval] if self.interval else None
        if self.members:
            out["members"] = [m.to_dict() for m in self.members]
        return out


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
    bound: float = 0.0  # the |z| a segment's effect must reach to be named (see `evidence.z_bound`)

    def evident(self, part: SegmentPart) -> bool:
        """The segment's effect stands out of its noise (always, without a noise model: a catalogue
        batch has no cells to judge noise from). A segment without one beside segments that have
        one (a pair cell too thin for a history: "Warm deals owned by Jonas Weber") is not: size
        alone is no evidence where evidence is what the others are judged by."""
        z = part.strength(self.basis)
        if z is None:
            return not any(p.strength(self.basis) is not None for p in self.segments if p.segment not in PSEUDO)
        return abs(z) >= self.bound

    def to_dict(self) -> dict:
        return _clean({"dimension": self.dimension, "method": self.method, "basis": self.basis,
                       "explanatory_power": self.explanatory_power, "surprise": self.surprise,
                       "score": self.score, "succeeded": self.succeeded, "chosen": list(self.chosen),
                       "bound": self.bound,
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
    maturing: bool = False  # a young cohort's rate: never followed on its own (see `view`)
    expected_final: float | None = None
    carried: bool = False  # the opening balance (ARR at start): the gap carried over from P−1, no cause of P's

    def to_dict(self) -> dict:
        return _clean({"id": self.id, "label": self.label, "owner": self.owner, "link": self.link,
                       "carried": self.carried,
                       "contribution": self.contribution, "share": self.share, "value": self.value,
                       "baseline": self.baseline, "unit": self.unit, "status": self.status,
                       "maturing": self.maturing, "expected_final": self.expected_final,
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
    maturing: bool = False  # a young cohort's rate: never followed on its own (see `view`)
    expected_final: float | None = None

    def to_dict(self) -> dict:
        return _clean({"id": self.id, "label": self.label, "owner": self.owner, "link": "influence",
                       "status": self.status, "value": self.value, "baseline": self.baseline,
                       "change": self.change, "relative_gap": self.relative_gap, "bands": self.bands,
                       "maturing": self.maturing, "expected_final": self.expected_final,
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
                          "mix": self.top_segment.mix, "rate": self.top_segment.rate, "z": self.top_segment.z,
                          "rate_z": self.top_segment.rate_z})
            full = self.top_segment.to_dict()
            top["interval"] = full["interval"]
            if "members" in full:
                top["members"] = full["members"]
        return _clean({"id": self.id, "label": self.label, "owner": self.owner, "status": self.status,
                       "value": self.value, "baseline": self.baseline, "unit": self.unit, "link": self.link,
                       "share": self.share, "bands": self.bands, "top_segment": top, "sentence": self.sentence,
                       "segment_sentence": self.segment_sentence})


@dataclass(frozen=True)
class Finding:
    """A segment whose own rate moved, found beside a top segment that is a shift of mix."""

    segment: SegmentPart
    baseline_label: str  # the period its rate is compared with
    sentence: str

    def to_dict(self) -> dict:
        return {"segment": self.segment.to_dict(), "baseline_label": self.baseline_label, "sentence": self.sentence}


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

