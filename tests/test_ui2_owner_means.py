"""A person's mean (average deal size, sales cycle) is compared within the segment they sell in, never
with the team's target (trial 4: every SMB rep red on deal size, "$191k against $2.27M")."""

from __future__ import annotations

import pytest
import yaml

from kpitree.evaluate import Engine, evaluate_tree
from kpitree.metrics import metric
from kpitree.owners import NOT_JUDGED, TOO_FEW, is_mean, owner_rows, owners, people_parts
from kpitree.periods import parse_period
from kpitree.snapshots import take_snapshot
from kpitree.tree import load_tree

# October 2026, won deals. SMB: Ana 5 × $4k, Ben 5 × $8k; Enterprise: Cy 5 × $100k, Dee 1 × $40k; Eve sells
# in both (one SMB $6k, one Enterprise $90k). SMB = $66k / 11 = $6k; Enterprise = $630k / 7 = $90k; the team
# $696k / 18 = $38,667 against a $50k target: red, but that mixes segments. Ana and Cy also lost one deal each
# (no amount: no part of a mean), so win rates are Ana 5/6, Cy 5/6, everyone else 100 %.
_HEAD = "deal_id,owner,created_date,close_date,status,amount,deal_type,segment\n"
_OCT = [("Ana Silva", 4000, "SMB")] * 5 + [("Ben Okoro", 8000, "SMB")] * 5 + [("Cy Tan", 100000, "Enterprise")] * 5 \
    + [("Dee Park", 40000, "Enterprise"), ("Eve Moss", 6000, "SMB"), ("Eve Moss", 90000, "Enterprise")]
# September: Ana and Ben one $6k SMB deal each, exactly September's SMB mean (used by the spread test only)
_SEP = [("Ana Silva", 6000, "SMB"), ("Ben Okoro", 6000, "SMB")]


def _deals(september: bool, extra: tuple = ()) -> str:
    rows = [f"O{i:02d},{o},2026-09-01,2026-10-{i + 1:02d},won,{a},new,{s}"
            for i, (o, a, s) in enumerate([*_OCT, *extra])]
    if september:
        rows += [f"S{i:02d},{o},2026-08-01,2026-09-{i + 1:02d},won,{a},new,{s}" for i, (o, a, s) in enumerate(_SEP)]
    rows += ["L01,Ana Silva,2026-09-01,2026-10-20,lost,,new,SMB", "L02,Cy Tan,2026-09-01,2026-10-21,lost,,new,Enterprise"]
    rows.append("N01,Ana Silva,2026-11-05,,open,15000,new,SMB")  # October is complete
    return _HEAD + "\n".join(rows) + "\n"


TREE = {
    "name": "Means", "grain": "month", "dimensions": ["owner", "segment"],
    "nodes": [
        {"id": "avg_deal_size", "label": "Average deal size", "level": "north_star", "metric": "avg_deal_size",
         "owner": "Reps (per owner)", "review": "weekly", "target": 50000, "children": ["win_rate"]},
        {"id": "win_rate", "label": "Win rate", "level": "lever", "metric": "win_rate",
         "owner": "Reps (per owner)", "review": "weekly", "target": 0.45},
    ]}


def _split(load_ws, september: bool, extra: tuple = ()):
    ws = load_ws(deals=_deals(september, extra))
    path = ws.trees_dir / "means.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(TREE, sort_keys=False))
    tree = load_tree(path)
    engine = Engine(ws)
    period = parse_period("2026-10")
    evaluation = evaluate_tree(engine, tree, period)
    return tree, engine, period, evaluation, people_parts(engine, tree, evaluation)


@pytest.mark.parametrize(("name", "mean"), [("avg_deal_size", True), ("sales_cycle_days", True),
                                            ("win_rate", False), ("nrr", False), ("new_business_arr", False)])
def test_a_mean_is_an_amount_or_days_over_a_count_of_rows(name, mean):
    assert is_mean(metric(name)) is mean


def test_a_reps_mean_is_judged_against_their_own_segment_not_the_team_target(load_ws):
    tree, engine, period, evaluation, split = _split(load_ws, september=False)
    assert evaluation.node("avg_deal_size").value == pytest.approx(696000 / 18)
    assert evaluation.node("avg_deal_size").status == "red"
    parts = {p.person: p for p in split["avg_deal_size"].parts}
    got = {k: (p.value, p.target, p.status, p.group) for k, p in parts.items()}
    assert got == {
        "Ana Silva": (4000.0, 6000.0, "red", "SMB"),  # a third under SMB's $6k on 5 deals (no history: no spread)
        "Ben Okoro": (8000.0, 6000.0, "green", "SMB"),
        "Cy Tan": (100000.0, 90000.0, "green", "Enterprise"),  # 11 % over Enterprise
        "Dee Park": (40000.0, 90000.0, TOO_FEW, "Enterprise"),  # 1 deal: too few to tell
        "Eve Moss": (48000.0, None, NOT_JUDGED, ""),  # half SMB, half Enterprise: no segment of her own
    }
    now = take_snapshot(engine, tree, period, evaluation=evaluation)
    entries = owners(now, [], tree, split)
    ana = next(o for e in entries if e.owner == "Ana Silva" for o in e.nodes if o.node.id == "avg_deal_size")
    assert ana.sentence == ("$4,000 on 5 won deals with an amount, against $6,000 for SMB as a whole (an average is "
                            "compared within the segment one sells in: the team's $39k mixes them).")
    eve = next(o for e in entries if e.owner == "Eve Moss" for o in e.nodes if o.node.id == "avg_deal_size")
    assert eve.sentence == ("$48k on 2 won deals with an amount (the team: $39k). Not judged: an average depends on "
                            "where one sells, and they sell in more than one segment, so the team's target is not "
                            "theirs.")
    assert not eve.to_act_on and "50" not in eve.sentence
    red = [(r["owner"], r["number"], r["target"]) for r in owner_rows(entries, red_only=True)]
    assert ("Ana Silva", "Average deal size", "$6,000") in red
    assert not any(o == "Ben Okoro" and n == "Average deal size" for o, n, _ in red)  # was red against $50k


def test_a_gap_within_the_spread_of_the_segments_deals_is_too_few_to_tell(load_ws):
    """With September (Ana and Ben $6k each, September's SMB mean) the SMB cells stray from their month's mean
    by: Ana Oct 5·(4k−6k)² = 20M, Ben Oct 5·(8k−6k)² = 20M, Eve Oct 1·0, Ana and Ben Sep 0: σ² = 40M / (5 cells
    − 2 months) → σ = $3,651.5. Ana's mean is 5 of SMB's 11 October deals: the standard error of her gap is
    σ·√(1/5 − 1/11) = $1,206, and her $2,000 gap is under two of them: too few to tell, not red."""
    *_, split = _split(load_ws, september=True)
    ana = next(p for p in split["avg_deal_size"].parts if p.person == "Ana Silva")
    assert (ana.value, ana.target, ana.status) == (4000.0, 6000.0, TOO_FEW)


def test_the_only_rep_in_a_segment_has_nobody_to_be_compared_with(load_ws):
    """Fay sells alone in Mid-Market ($20k × 5): her mean is Mid-Market's, so it is shown without a status."""
    *_, split = _split(load_ws, september=False, extra=(("Fay Lund", 20000, "Mid-Market"),) * 5)
    fay = next(p for p in split["avg_deal_size"].parts if p.person == "Fay Lund")
    assert (fay.value, fay.target, fay.status, fay.group) == (20000.0, None, NOT_JUDGED, "Mid-Market")
    assert fay.unjudged == "nobody else's won deals with an amount in Mid-Market to compare with"


def test_a_rate_of_rows_among_rows_is_still_every_reps_target(load_ws):
    """Win rate is no mean: every rep's own against the number's 45 % (83 % or 100 % here: all green)."""
    *_, split = _split(load_ws, september=False)
    assert {(p.target, p.status, p.group) for p in split["win_rate"].parts} == {(0.45, "green", "")}

