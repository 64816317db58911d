"""`Explanation`: the answer for one node, its words for the panel and the command line, and its JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..format import fmt, fmt_change, fmt_share
from .model import STATUS_PHRASE, Cause, ChildPart, DimensionRank, Finding, Influence, SegmentPart, Step, _clean
from .tables import segment_display, segment_sentence
from .words import _child_name, _formula_text, compare_words


@dataclass(frozen=True)
class Explanation:
    """Why one node is where it is in one period, against one baseline."""

    node: str
    label: str
    owner: str
    period: str
    grain: str
    versus: str
    baseline_label: str  # "target", "target by now" (a running stock or rate), or the baseline period's key
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
    maturing: bool = False  # a young cohort's rate: judged on `expected_final` (see `view`)
    expected_final: float | None = None

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
        if self.maturing and self.expected_final is not None:
            status = (f"maturing — its cohort is still young, expected to end near "
                      f"{fmt(self.expected_final, self.unit)}: {status}")
        return f"{self.label}: {said}; {status}" + ("." if self.versus == "target" else " (status is against target).")

    def delta(self, *, ascii_sign: bool = False) -> str | None:
        """The box's delta against this explanation's baseline: "−$12.63M vs target", "+$3.19M vs
        2026-09" (None without one). `ascii_sign` for `st.metric`, which reads the sign for its colour."""
        if self.gap is None:
            return None
        return f"{fmt_change(self.gap, self.unit, ascii_sign=ascii_sign)} vs {self.baseline_label}"

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
        res = next((c for c in self.children if c.link == "residual"), None)
        if self.shares_readable() and res is not None and res.share is not None and abs(res.share) > 0.01:
            # never claim the formula covers the gap when a material part of it is outside the formula
            return (f"Share of the {self.gap_word} — with the residual ({fmt_share(res.share)}, what the formula over "
                    "the children does not give), the parts add up to the whole")
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
            "maturing": self.maturing, "expected_final": self.expected_final,
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
                # an opening balance at its target (a suggested plan opens at last month's actual) carries nothing
                said += " — carried over from the period before" if c.carried and not (
                    c.value is not None and c.baseline is not None
                    and math.isclose(c.value, c.baseline, rel_tol=1e-6, abs_tol=0.5)) else ""
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
