"""The words and numbers a first-time user reads (issue 14): comparisons, not arrows; counts whole;
no "−0%"; shares past 100 % as amounts with their offsetting parts; the method apart; one rule for
the segments named and the segments marked; every red lever named. Hand data: see test_explain."""

from __future__ import annotations

import pytest
from conftest import ROOT, make_workspace
from test_explain import DEALS, make_tree

from kpitree.evaluate import Engine, evaluate_tree
from kpitree.explain import (
    compare_words,
    explain_node,
    named_segments,
    relative_words,
    segment_columns,
    segment_display,
    segment_frame,
    segment_sentence,
)
from kpitree.format import fmt, fmt_change, fmt_relative, fmt_share


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    ws = make_workspace(tmp_path_factory.mktemp("wording"), deals=DEALS)
    settings = ws.settings()
    settings.as_of = "2026-11-20"
    ws.save_settings(settings)
    return Engine(ws)


# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "unit", "compact", "text"), [
    (47.9, "count", False, "48"),  # a target share of proposals: people send whole ones
    (3566.0, "count", False, "3,566"),
    (-0.0004, "percent", False, "0.0%"),  # no "-0.0%"
    (-0.2, "money", False, "-$0.20"),
    (-29.999999999999, "money", False, "-$30"),  # float noise off a whole number shows no cents
    (-0.001, "money", True, "$0.00"),
    (4_268_596, "money", True, "$4.27M"),
])
def test_fmt(value, unit, compact, text) -> None:
    assert fmt(value, unit, compact=compact) == text


@pytest.mark.parametrize(("value", "unit", "text"), [
    (0.0, "money", "$0"),  # not "±$0"
    (-0.2, "money", "−$0.20"),
    (-0.00004, "percent", "0.0 pp"),  # not "−0.0 pp"
    (-0.024, "percent", "−2.4 pp"),
    (0.4, "count", "0"),
    (-640.0, "count", "−640"),
])
def test_fmt_change_never_signs_nothing(value, unit, text) -> None:
    assert fmt_change(value, unit) == text


def test_shares_and_relative_gaps() -> None:
    assert fmt_share(-0.004) == "0%" and fmt_share(-0.42) == "−42%" and fmt_share(0.42, signed=True) == "+42%"
    assert fmt_relative(4_268_596, 7_390_000, "money") == "−42%"  # 4.27 / 7.39 − 1 = −0.4224
    assert fmt_relative(0.208, 0.232, "percent") == "−2.4 pp"  # percents differ in points
    assert fmt_relative(5.0, 0.0, "count") == "+5"  # no percentage of nothing


def test_a_comparison_reads_as_one_not_as_a_change_over_time() -> None:
    assert compare_words(4_268_596, 7_390_000, "money", "target") == "actual $4.27M against target $7.39M (−42%)"
    # 4.268596 / 7.270609 − 1 = −0.4129
    assert compare_words(4_268_596, 7_270_609, "money", "period", "2026-09") == "$4.27M against $7.27M in 2026-09 (−41%)"
    assert compare_words(30, 47.9, "count", "share") == "30 against a target share of 48 (−37%)"
    # $426,627 and $427,000 both round to $427k/day: the full numbers tell them apart
    assert compare_words(426_627, 427_000, "money_per_day", "target").startswith(
        "actual $426,627/day against target $427,000/day")


def test_a_huge_relative_change_reads_as_the_amount() -> None:
    """A $1 target made "$158.37M against target $1 (+$158.37M, +15837156080%)": past ±1,000 % the
    amount says it, once."""
    assert compare_words(158_371_560.8, 1, "money", "target") == "actual $158.37M against target $1 (+$158.37M)"
    assert compare_words(158_371_560.8, 1, "money", "target", amount=True) == \
        "actual $158.37M against target $1 (+$158.37M)"
    assert compare_words(82_870_000, 0.51, "money", "share") == "$82.87M against a target share of $0.51 (+$82.87M)"
    assert relative_words(110, 10, "count") == "+1000%"  # ×11 is still a percentage people read
    assert relative_words(111, 10, "count") == "+101"
    assert relative_words(-50, 1, "money") == "−$51"  # the other sign: an amount, as before
    assert relative_words(4_268_596, 7_390_000, "money") == "−42%"
    from kpitree.charts import change_text

    assert change_text(158_371_560.8, 1, "money") == "+$158.37M" and change_text(5, 4, "money") == "+25%"


def test_a_one_dollar_target_on_the_demo_reads_as_amounts(demo) -> None:
    from dataclasses import replace

    from kpitree.tree import Target

    engine, tree = demo
    tree = replace(tree, nodes=tuple(replace(n, target=Target(value=1.0)) if n.id == "arr" else n for n in tree.nodes))
    r = explain_node(engine, tree, "arr", "2026-10")
    text = " ".join([*r.sentences(), *r.summary()])
    assert "against target $1 (+$158.37M)" in text
    assert not any(len(word.rstrip("%),.;")) > 6 for word in text.split() if word.rstrip("),.;").endswith("%"))


# --- the explanation in words --------------------------------------------------------------------


def test_headline_says_actual_against_target_and_the_method_moves_out(engine: Engine) -> None:
    # New business ARR: 120 against 220; −100 is −45 % (120 / 220 − 1 = −0.4545).
    r = explain_node(engine, make_tree(), "nb", "2026-10")
    assert r.headline() == "New business ARR: actual $120 against target $220 (−$100, −45%); off target."
    assert r.children_heading() == "Share of the gap — the parts add up exactly to the whole"
    assert "lmdi" not in r.children_heading().lower()
    how = r.how_computed()
    assert any(h.startswith("LMDI") for h in how) and any(h.startswith("Within each") for h in how)
    assert len(how) == len(set(how))


def test_versus_previous_in_every_figure(engine: Engine) -> None:
    # Against September: 120 against 220 → −$100, −45 %; win rate 37.5 % against 50.0 % (−12.5 pp).
    r = explain_node(engine, make_tree(), "nb", "2026-10", versus="previous")
    assert r.headline() == ("New business ARR: $120 against $220 in 2026-09 (−$100, −45%); off target "
                            "(status is against target).")
    assert r.red_path[1].sentence.startswith("Win rate: 37.5% against 50.0% in 2026-09 (−12.5 pp)")
    assert "target" not in r.red_path[1].sentence
    assert segment_columns(r, "owner") == {"segment": "Owner", "current": "2026-10", "baseline": "2026-09",
                                           "change": "difference", "mix": "share of the mix",
                                           "share": "share of gap"}
    table = segment_display(r, "owner")
    assert list(table.columns) == ["Owner", "2026-10", "2026-09", "difference", "share of gap"]
    assert table.iloc[0].tolist() == ["Bob", "$100", "$200", "−$100", "100%"]
    assert all("2026-09" in h or "target" in h for h in r.how_computed()[:1])


def test_a_residual_from_targets_that_do_not_fit_the_formula_is_explained(engine: Engine) -> None:
    # Target 250 while the children's targets give 8 × .5 × 55 = 220: gap 120 − 250 = −130, of which
    # win rate −100 (77 %) and the residual −30 (23 %); the shares read, the residual is explained.
    r = explain_node(engine, make_tree({"nb": 250}), "nb", "2026-10")
    assert r.shares_readable() and r.child_cell("win_rate") == "77%" and r.child_cell("closed") == "0%"
    assert r.children_note() == (
        "The parts add up to the −$130 gap: Win rate −$100, the residual −$30. The residual is the targets not "
        "fitting the formula: the children's targets give New business ARR $220 (8 × 50.0% × $55), $30 less than "
        "its own $250 target — so the children, each against its own target, do not add up to the parent's gap.")


def test_shares_past_the_whole_are_amounts_with_what_offsets_them(engine: Engine) -> None:
    # Target 150 while the children's targets give 220: gap 120 − 150 = −30; win rate −100 (333 %)
    # and the residual +70 (−233 %) — unreadable as shares, so amounts and words.
    r = explain_node(engine, make_tree({"nb": 150}), "nb", "2026-10")
    assert not r.shares_readable()
    assert r.share_column() == "part of gap"
    assert (r.child_cell("win_rate"), r.child_cell("residual")) == ("−$100", "+$70")
    assert r.children_heading() == "Parts of the −$30 gap, as amounts — some parts offset others"
    note = r.children_note()
    assert note.startswith("The parts add up to the −$30 gap: Win rate −$100, offset by the residual +$70.")
    # the red path's step says the same with the offsetting part named
    assert r.red_path[1].sentence == ("Win rate: actual 37.5% against target 50.0% (−12.5 pp), −$100 on its own, more "
                                      "than the whole −$30 New business ARR shortfall (the others made up +$70; the "
                                      "largest offset: the residual +$70). Owner: Head of sales.")
    assert "give New business ARR $220 (8 × 50.0% × $55), $70 more than its own $150 target" in note


def test_segments_named_are_exactly_the_segments_marked(engine: Engine) -> None:
    # Target 200 shared by September's weights: Bob 181.82, Ann 18.18; Bob 100 − 181.82 = −81.82 of a
    # −80 gap (102 %), Ann +1.82 (−2 %). But Bob's 100 is one won deal: a compound Poisson sum. Under
    # "nothing changed" October's variance is his target share's own, 0.9091² × (100² + 100²) = 16,529
    # (two deals of 100 in September, scaled by 181.82 / 200) — more than the 100² of the one deal he
    # closed — and the share carries that much again: sd √33,058 = 181.8, so −81.82 is 0.45 (said "0.4")
    # errors — within normal variation. Nobody is named, nobody is marked, and the sentence says why.
    r = explain_node(engine, make_tree({"nb": 200}), "nb", "2026-10")
    bob = next(p for p in next(d for d in r.dimensions if d.dimension == "owner").segments if p.segment == "Bob")
    assert bob.sd == pytest.approx((2 * (200 / 220) ** 2 * 2 * 100**2) ** 0.5)
    assert named_segments(r, "owner") == []
    frame = segment_frame(r, "owner")
    assert frame.loc[frame["explains"], "segment"].tolist() == []
    assert segment_sentence(r, "owner") == ("By owner: within normal variation — no owner moved further than its own "
                                            "noise and history allow (the largest part, Bob's 102%, is 0.4 standard "
                                            "errors out).")
    table = segment_display(r, "owner")
    assert list(table.columns) == ["Owner", "actual", "target share", "difference", "part of gap"]
    assert table.iloc[0].tolist() == ["Bob", "$100", "$182", "−$81.82", "−$81.82"]


# --- the demo ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_data_dir):
    from kpitree.tree import load_tree
    from kpitree.workspace import Workspace

    return Engine(Workspace(demo_data_dir / "demo")), load_tree(ROOT / "data" / "trees" / "revops.yaml")


def _red_levers(engine, tree) -> set[str]:
    evaluation = evaluate_tree(engine, tree, "2026-10")
    return {n.id for n in evaluation.nodes if n.status == "red" and not tree.node(n.id).children}


@pytest.mark.parametrize("versus", ["target", "previous"])
def test_every_red_lever_is_in_the_red_path_or_also_off_track_or_said_why(demo, versus: str) -> None:
    engine, tree = demo
    red = _red_levers(engine, tree)
    # the levers issue 14 found missing are red on the demo — but MQL → SQL of a month whose MQLs are
    # still converting is judged on its expected final value (amber), no longer a false red
    assert "demos" in red and "mql_to_sql_rate" not in red
    assert evaluate_tree(engine, tree, "2026-10").node("mql_to_sql_rate").maturing
    r = explain_node(engine, tree, "arr", "2026-10", versus=versus)
    named = {s.id for s in r.red_path} | {c.id for c in r.causes}
    unlisted = {i for i, _ in r.unlisted}
    assert red == (named | unlisted) & red
    assert not named & unlisted
    if versus == "target":  # against the target every red lever is off track, but the opening balance: its
        # shortfall was carried over from September, said so and not followed
        assert red - {"arr_start"} <= named and unlisted == {"arr_start"}
        assert "carried over" in dict(r.unlisted)["arr_start"]
    else:
        assert all("red against its target" in why for _, why in r.unlisted)
        # a cause found below an unreached red node is not called red when it is not
        for c in r.causes:
            if c.aside and c.status != "red":
                assert c.aside.startswith("found under")
    assert [u["id"] for u in r.to_dict()["unlisted"]] == [i for i, _ in r.unlisted]


def test_demo_wording(demo) -> None:
    engine, tree = demo
    nb = explain_node(engine, tree, "new_business_arr", "2026-10")
    # $3.12M − $7.06M (688 × 23.2 % × $44,200: the plan keeps the formula) = −$3.94M, −56 % of the target
    assert nb.headline() == "New business ARR: actual $3.12M against target $7.06M (−$3.94M, −56%); off target."
    text = explain_node(engine, tree, "arr", "2026-10").text()
    assert "−0%" not in text and "±" not in text and "→ $" not in text
    # the children's targets make the parent's, so their parts are the whole gap and read as shares
    assert abs(nb.residual) < 1.0 and nb.shares_readable() and nb.children_note() is None
    proposals = explain_node(engine, tree, "proposals", "2026-10")
    assert "47.9" not in proposals.text()


def test_box_delta_and_segment_heading_follow_versus(engine: Engine) -> None:
    target = explain_node(engine, make_tree(), "nb", "2026-10")
    previous = explain_node(engine, make_tree(), "nb", "2026-10", versus="previous")
    assert target.delta() == "−$100 vs target" and target.delta(ascii_sign=True) == "-$100 vs target"
    assert previous.delta() == "−$100 vs 2026-09"
    from kpitree.explain import segment_heading

    # Bob's −100 (one won deal instead of two) is within normal variation: no bar is marked, and the
    # heading does not promise red ones
    assert segment_heading(previous, "owner") == "By owner — 2026-10 against 2026-09"
    # against the target, New business ARR's owners share the target by their September weights
    assert segment_heading(target, "owner").startswith(
        "By owner — 2026-10 against each owner's share of the target: its share in 2026-09, a month that went to plan")
    assert segment_heading(target, "owner", label="Owner").startswith("By Owner — 2026-10 against each Owner's share")


def test_drill_table_columns_are_named_for_what_they_are(engine: Engine) -> None:
    from kpitree.drill import display, segment_table
    from kpitree.periods import parse_period

    # New business ARR by owner, October against September: Bob 100 against 200, Ann 20 against 20.
    node = make_tree().node("nb")
    oct_, sep = parse_period("2026-10"), parse_period("2026-09")
    table = display(segment_table(engine, node, oct_, sep, "owner"), "money", "owner", oct_, sep)
    assert list(table.columns) == ["owner", "2026-10", "2026-09", "difference"]
    assert table.values.tolist() == [["Bob", "$100", "$200", "−$100"], ["Ann", "$20", "$20", "$0"]]


def test_every_demo_panel_names_what_it_marks_and_writes_numbers_plainly(demo) -> None:
    """Over every node of the demo: the segments a sentence names are exactly the bars marked, and no
    text carries "−0%", "±" or a count with a fraction."""
    import re

    engine, tree = demo
    for node in tree.nodes:
        r = explain_node(engine, tree, node.id, "2026-10", causes=False)
        words = " ".join([r.text(), *r.summary(), r.children_note() or ""])
        assert not re.search(r"[−-]0(\.0)?( pp|%)", words) and "±" not in words, node.id
        for d in r.dimensions:
            frame = segment_frame(r, d.dimension)
            marked = set(frame.loc[frame["explains"], "segment"])
            assert marked == set(named_segments(r, d.dimension)), (node.id, d.dimension)
            sentence = segment_sentence(r, d.dimension)
            assert all(f"{s} (" in sentence for s in marked), (node.id, sentence)
            if r.unit == "count":
                table = segment_display(r, d.dimension)
                assert not any("." in v for v in table.iloc[:, 1:3].to_numpy().ravel()), (node.id, d.dimension)


def test_a_dimension_reads_as_a_plural_noun() -> None:
    from kpitree.explain import _plural

    assert [_plural(d) for d in ("owner", "country", "billing_period", "day", "status")] == [
        "owners", "countries", "billing periods", "days", "status"]


def test_a_part_past_the_whole_gap_reads_as_an_amount() -> None:
    """The trial's noise-only ARR (−$6,178 against target): 'Mid-Market's 1202%' of the gap said
    nothing; past the whole gap a segment's part is its amount, within it its share."""
    from kpitree.explain.model import SegmentPart
    from kpitree.explain.tables import _part

    big = SegmentPart("segment", "Mid-Market", -74_250.0, 12.02, 4.08e6, 4.15e6)
    small = SegmentPart("segment", "SMB", -3_000.0, 0.4, 1.8e6, 1.84e6)
    assert _part(big, "money") == "−$74k"
    assert _part(small, "money") == "40%"


def test_a_ratio_s_table_says_each_segment_s_share_of_the_mix(engine: Engine) -> None:
    """A ratio's segment moves it by its rate and by its weight: a row reading "$56k against $56k, $0"
    while it carries 27 % of the gap (trial 4) is a segment whose share of the deals changed. The win
    rate's table shows each owner's share of the decided deals now and then."""
    r = explain_node(engine, make_tree(), "nb", "2026-10", versus="previous")
    win = explain_node(engine, make_tree(), r.red_path[1].id, "2026-10", versus="previous")  # Win rate
    table = segment_display(win, "owner")
    # by hand (DEALS): Bob won 1 of 4 decided deals in October against 2 of 4 in September, Ann 2 of 4
    # both months: each holds half the decided deals, then and now
    assert table is not None and list(table.columns)[-1] == "share of the mix"
    assert table.iloc[0].tolist() == ["Bob", "25.0%", "50.0%", "−25.0 pp", "100%", "50% (was 50%)"]
