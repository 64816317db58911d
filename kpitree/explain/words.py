"""Plain words shared by every sentence: comparisons, baselines, periods, nouns, segment descriptions."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ..format import fmt, fmt_change, fmt_relative, fmt_share
from ..metrics import (
    Metric,
)
from ..periods import parse_period
from .model import BY_NOW, METRIC_NOUNS, NONE, NOUNS, PAIR_SEP, ChildPart, SegmentPart
from .view import _NodeView


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
    if part is not None and gap is not None and part * gap <= 0 and part != 0:
        # a loss the total does not show (see `segments._hidden`): what hid it, not a negative share
        named = " and ".join(f"{name} {fmt_change(c, unit)}" for name, c in offset[:2])
        largest = f"; the largest: {named}" if named else ""
        return (f"{fmt_change(part, unit)} on its own, hidden in the total by gains elsewhere (the others made up "
                f"{fmt_change(gap - part, unit)}{largest})")
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
    """A baseline in words after "against": "target $7.39M", "target by now $173.36M", "$7.27M in
    2026-09", "a target share of 991", "31.9% in 2026-05" — a comparison, never an arrow that reads as
    a change over time."""
    if kind == "target":
        return f"{BY_NOW} {number}" if where == BY_NOW else f"target {number}"
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
                  amount: bool = False, actual: str = "actual") -> str:
    """"actual $4.27M against target $7.39M (−42%)"; "$4.27M against $7.27M in 2026-09 (−41%)".

    Money is compact; percents differ in points, other numbers in per cent (`amount` adds the
    difference itself: "(−$12.63M, −7%)"); `actual` names the value against a target ("pace" for a
    running flow's projection)."""
    actual = f"{actual} " if kind == "target" else ""
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
    return compare_words(v.value, v.baseline, v.unit, kind, v.base_key, amount=amount,
                         actual="pace" if v.paced else "actual")


def _segment_compare(value: float | None, baseline: float | None, unit: str, basis: tuple[str, str]) -> str:
    return compare_words(value, baseline, unit, basis[0], basis[1])


def _plural(dimension: str) -> str:
    """"owner" → "owners", "country" → "countries": a dimension is a column name, read as a noun."""
    word = dimension.replace("_", " ")
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word if word.endswith("s") else word + "s"
