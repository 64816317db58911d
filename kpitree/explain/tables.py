"""The segment table and its sentence: what the page's chart and words show along one dimension.

`named_segments` is the one rule for both: a segment is named when it carries `NAMED_SHARE` of the
gap, or when the sentences single it out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from ..format import dimension_label, fmt, fmt_change, fmt_share
from .model import NAMED_SHARE, NONE, PAIR_SEP, PSEUDO, DimensionRank, SegmentPart
from .words import _period_words, _plural

if TYPE_CHECKING:
    from .explanation import Explanation


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
    Never the "(none)" of a mostly empty column, nor a segment whose change is within its normal
    variation (see `evidence`), however large its share.
    """
    rank = _rank_of(result, dimension)
    if rank is None or result.gap is None:
        return []
    parts = {p.segment: p for p in _shown_parts(rank) if p.segment not in rank.unnamed}
    named = {s for s, p in parts.items() if p.share is not None and p.share >= NAMED_SHARE and rank.evident(p)}
    singled = [result.red_path[0].top_segment if result.red_path else None,
               result.finding.segment if result.finding is not None else None]
    singled = [m for top in singled if top is not None for m in (top.members or (top,))]
    if any(top.contribution * result.gap < 0 for top in singled):
        named = set()  # a loss hidden by gains (`segments._hidden`): the words name the loss, not the gains
    for top in singled:
        if top is None:
            continue
        hidden = top.contribution * result.gap < 0
        for d, seg in zip(top.dimension.split(PAIR_SEP), top.segment.split(PAIR_SEP), strict=False):
            p = parts.get(seg)
            if d == dimension and p is not None and ((p.share or 0.0) > 0 or hidden):
                named.add(seg)
        pair = parts.get(top.segment) if top.dimension == dimension else None
        if pair is not None and (pair.share or 0.0) > 0:  # a table of the pair itself
            named.add(top.segment)
    return sorted(named, key=lambda s: -(parts[s].share or 0.0))


def segment_sentence(result: Explanation, dimension: str) -> str:
    """The segments `named_segments` marks, in words: "By owner: Dana Whitfield (73%) and Rafael Ortiz
    (19%) explain 92% of the New business ARR gap." — or that no segment carries a material part."""
    rank = _rank_of(result, dimension)
    if rank is None or result.gap is None:
        return ""
    named = named_segments(result, dimension)
    parts = {p.segment: p for p in rank.segments}
    what = f"the {result.label} {result.gap_word}"
    if not named and math.isinf(rank.bound):  # a level whose whole gap is within its own normal variation
        return (f"By {dimension}: the whole {result.label} {result.gap_word} is within {result.label}'s own normal "
                f"variation, so no {dimension} is named for it.")
    if not named:
        large = [p for p in _shown_parts(rank) if (p.share or 0.0) >= NAMED_SHARE and p.segment not in rank.unnamed]
        if large:  # large enough to name, but not out of its noise
            p = max(large, key=lambda p: p.share or 0.0)
            z = abs(p.strength(rank.basis) or 0.0)
            return (f"By {dimension}: within normal variation — no {dimension} moved further than its own noise "
                    f"and history allow (the largest part, {p.segment}'s {_part(p, result.unit)}, is {z:.1f} standard "
                    "errors out).")
        whole = [p for p in rank.segments if p.segment in rank.unnamed and p.segment != NONE]
        if whole:  # one segment is nearly all of the node (`segments._almost_all`)
            return (f"By {dimension}: {whole[0].segment} is nearly all of {result.label}, so this split cannot say "
                    "where the gap sits.")
        return f"By {dimension}: no {dimension} carries {NAMED_SHARE:.0%} of {what}; it is spread out."
    total = sum(parts[s].share or 0.0 for s in named)
    verb = "explain" if len(named) > 1 else "explains"
    if any(parts[s].contribution * result.gap < 0 for s in named):  # a loss the total does not show
        items = [f"{s} ({fmt_change(parts[s].contribution, result.unit)})" for s in named]
        listed = items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
        return (f"By {dimension}: {listed} lost beyond its normal variation, hidden in {what} "
                f"({fmt_change(result.gap, result.unit)}) by the other {_plural(dimension)}' gains.")
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


def _part(p: SegmentPart, unit: str) -> str:
    """A segment's part of the gap as a share, or as an amount once it is past the whole gap (a share
    of 1202 % of a gap that others offset says nothing)."""
    return fmt_share(p.share) if p.share is not None and p.share <= 1.05 else fmt_change(p.contribution, unit)


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
        "weight": [p.weight for p in parts],
        "base_weight": [p.base_weight for p in parts],
    }, columns=["segment", "current", "baseline", "contribution", "share", "weight", "base_weight"])
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
    return {"segment": dimension_label(dimension), "current": current, "baseline": baseline, "change": "difference",
            "mix": "share of the mix",
            "share": f"share of {'the gain' if result.gap_word == 'gain' else 'gap'}"}


def segment_heading(result: Explanation, dimension: str, label: str | None = None) -> str:
    """What a segment chart compares with, in words, the same baseline as the sentences: "By owner —
    2026-10 against 2026-09", or against a target "By owner — 2026-10 against each owner's share of the
    target: its share in 2026-09, a month that went to plan"; with the marked bars named when some are.
    `label`: the dimension as the page shows it (default: its name). Segments have no targets of their
    own, and a trial read the old "target shared out by each segment's weight in the average of …
    (periods that went to plan; segments have no targets of their own)" twice without following it."""
    by = label or dimension
    marked = "; in red, those named as explaining the gap" if result.gap_word == "gap" else \
        "; in green, those named as explaining the gain"
    marked = marked if named_segments(result, dimension) else ""
    if result.versus != "target":
        return f"By {by} — {result.period} against {result.baseline_label}{marked}"
    rank = _rank_of(result, dimension)
    refs = _period_words(result.reference)
    went = "a month that went to plan" if len(result.reference) == 1 else "months that went to plan"
    if rank is not None and rank.method == "delta":
        return f"By {by} — {result.period} against each {by}'s share of the target: its share {refs}, {went}{marked}"
    return f"By {by} — {result.period} against each {by}'s usual level: {refs}, {went}{marked}"


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
    shown = pd.DataFrame({
        names["segment"]: frame["segment"],
        names["current"]: [fmt(v, unit, compact=money) for v in frame["current"]],
        names["baseline"]: [fmt(v, unit, compact=money) for v in frame["baseline"]],
        names["change"]: [fmt_change(v, unit) for v in frame["change"]],
        share_name: share,
    })
    if frame["weight"].notna().any():
        # a ratio's segment moves it by its rate and by its weight: "$56k against $56k, $0" carrying 27 % of
        # the gap is a segment whose share of the deals changed, and the table says so
        shown[names["mix"]] = [_weights(w, b) for w, b in zip(frame["weight"], frame["base_weight"], strict=True)]
    return shown


def _weights(now: float | None, then: float | None) -> str:
    if now is None or now != now:
        return ""
    return fmt_share(now) if then is None or then != then else f"{fmt_share(now)} (was {fmt_share(then)})"
