"""The sentences of the explanation: one per red-path step, the segment at the lever, and "how this was computed"."""

from __future__ import annotations

import math

from ..format import fmt, fmt_change, fmt_share
from .analysis import _Analysis
from .cells import _Session
from .model import NAMED_SHARE, PAIR_SEP, PSEUDO, STATUS_PHRASE, ChildPart, SegmentPart
from .view import _NodeView
from .words import (
    _child_name,
    _describe,
    _explains,
    _gap_word,
    _node_compare,
    _noun,
    _period_words,
    _plural,
    _segment_compare,
    compare_words,
)


def _sentence(a: _Analysis, link: str, share: float | None, parent: _Analysis | None, versus: str) -> str:
    """The step's sentence; a maturing cohort rate says so, with the value it is expected to end at."""
    said = _step_sentence(a, link, share, parent, versus)
    v = a.view
    if not v.maturing or " Owner: " not in said:
        return said
    expected = (f"; it is expected to end near {fmt(v.expected_final, v.unit)}" if v.expected_final is not None
                else "; too early to expect a final value")
    head, owner = said.rsplit(" Owner: ", 1)
    return f"{head.rstrip('.')} — maturing: its cohort is still young{expected}, so it is no cause on its own. " \
           f"Owner: {owner}"


def _node_compare_child(c: ChildPart, v: _NodeView) -> str:
    """A child's part compared with its baseline, the way its parent's comparison reads."""
    kind = "target" if v.versus == "target" else "period"
    return compare_words(c.value, c.baseline, c.unit, kind, v.base_key)


def _step_sentence(a: _Analysis, link: str, share: float | None, parent: _Analysis | None, versus: str) -> str:
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
        carried = next((c for c in a.children.parts if c.carried and c.share is not None and v.gap), None)
        said = ""
        if carried is not None and v.adverse(carried.contribution) > 0 and not (
                carried.value is not None and carried.baseline is not None
                and math.isclose(carried.value, carried.baseline, rel_tol=1e-6, abs_tol=0.5)):
            # past the whole gap (others offset it) a share stops reading as a part: the amount instead
            part = (f"{fmt_share(carried.share)} of the {_gap_word(v)}" if carried.share <= 1.05 else
                    f"{fmt_change(carried.contribution, v.unit)}, more than the whole {_gap_word(v)},")
            said = (f" {part} was carried over from the period before "
                    f"({carried.label} {_node_compare_child(carried, v)}): it arose then, so the path follows "
                    "what arose in this period.")
        return f"{node.label}: {_node_compare(v, amount=True)}; {phrase}.{said} Owner: {node.owner}."
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
    if link == "exact" and (share is None or share <= 0):
        # followed for being off its own target, not for its part (see `path._next_step`)
        pv = parent.view
        part = f" (its part of the gap, within the {parent.children.method.rsplit(' by ', 1)[-1]} segments, is " \
            f"{fmt_change(share * pv.gap, pv.unit)}: others in them made up for it)" \
            if share is not None and pv.gap is not None and parent.children.method and " by " in parent.children.method \
            else ""
        return (f"{node.label}: {_node_compare(v)}; {phrase}, the part of {pv.node.label} furthest off its target"
                f"{part}. Owner: {node.owner}.")
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
    v = a.view
    if top is None and a.segments.normal and v.gap is not None and v.adverse(v.gap) > 0:
        noun = _noun(v.data.cur_metric)
        return (f"{v.node.label}: no segment stands out — each {_singular(noun)} segment "
                f"is within normal variation (its own noise and history), so the {_gap_word(v)} is spread across "
                f"them. Owner: {v.node.owner}.")
    if top is None:
        return None
    if top.members:
        return _set_sentence(a, top)
    rank = next((d for d in a.segments.dimensions if d.dimension == top.dimension), None)
    against = top.contribution if v.gap is not None and top.contribution * v.gap <= 0 else v.gap  # a hidden loss
    offset = sorted(((p.segment, p.contribution) for p in (rank.segments if rank is not None else ())
                     if p.segment not in PSEUDO and against is not None and p.contribution * against < 0
                     and abs(p.contribution) >= 0.05 * abs(against)), key=lambda x: -abs(x[1]))
    explains = _explains(top.share, top.contribution, v.gap, v.unit, f"{v.node.label} {_gap_word(v)}", offset)
    who = _describe(top, _noun(v.data.cur_metric)) + _across(a, top)
    if not any(who.startswith(v) for v in top.segment.split(PAIR_SEP)):  # never re-case the user's own text
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


def _singular(noun: str) -> str:
    """"activities" → "activity", "deals" → "deal"."""
    if noun.endswith("ies"):
        return noun[:-3] + "y"
    return noun[:-1] if noun.endswith("s") else noun


NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _across(a: _Analysis, top: SegmentPart) -> str:
    """", across all three owners": the segment's change is carried by every one of the reps (CSMs)
    nested in it, so it is named at its own level rather than by any one of them."""
    if PAIR_SEP in top.dimension or top.members:
        return ""
    data = a.view.data
    for child, parent in data.nested().items():
        if parent != top.dimension:
            continue
        kids = [c for c, p in data.parents(child).items() if p == top.segment]
        rank = next((d for d in a.segments.dimensions if d.dimension == child), None)
        if rank is None or len(kids) < 2:
            continue
        parts = {p.segment: p.contribution for p in rank.segments}
        if all(parts.get(k, 0.0) * top.contribution > 0 for k in kids):
            n = len(kids)
            if n == 2:
                return f", across both {_plural(child)}"
            return f", across all {NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else n} {_plural(child)}"
    return ""


def _set_sentence(a: _Analysis, top: SegmentPart) -> str:
    """A cause set in words: each element at its own depth, with its part of the gap and its evidence."""
    v = a.view
    noun = _noun(v.data.cur_metric)
    items = []
    for m in top.members:
        said = _segment_compare(m.value, m.baseline, v.unit, a.segments.basis)
        z = f"; {abs(m.z):.1f} standard errors" if m.z is not None else ""
        items.append(f"{_describe(m, noun)} ({said}: {fmt_change(m.contribution, v.unit)}, "
                     f"{fmt_share(m.share)} of the {_gap_word(v)}{z})")
    listed = f"{', '.join(items[:-1])} and {items[-1]}"
    count = NUMBER_WORDS[len(items)] if len(items) < len(NUMBER_WORDS) else str(len(items))
    share = sum(m.share or 0.0 for m in top.members)
    return (f"{count.capitalize()} places together explain {fmt_share(share)} of the {v.node.label} "
            f"{_gap_word(v)}: {listed}. Owner: {v.node.owner}.")


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
        bound = start.segments.dimensions[0].bound
        if bound:
            out.append(f"Evidence before size: each segment's change is compared with the noise of its own data (counts "
                       "as Poisson, amounts by their spread, rates as binomial, by the exact test for a few hundred rows) "
                       "and with how much it usually moves "
                       f"from period to period; one less than {bound:.1f} standard errors out either way (two, raised for the number of "
                       "segments compared at once) is within normal variation and never named, however large its "
                       "share. A dimension nested in another (each rep selling in one segment) is judged within its "
                       "parent, so a reshuffle among one segment's reps is not a cause.")
        top = start.segments.top
        if top is not None and top.members:
            out.append("Cause set: for a sum, the one to three places — at any depth of the dimensions combined — that "
                       "together stand out of the noise are named, each with its own part of the gap (localisation "
                       "over every combination of the dimensions, as the multi-dimensional root-cause methods do).")
    return tuple(out)


