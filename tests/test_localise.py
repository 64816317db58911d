"""Hand-checked cases for kpitree.localise: evidence before size, causes named at the level where
they live, sets of causes, and parts that add up to the gap exactly."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kpitree.localise import Element, Localisation, localise, nested_dimensions

# Reps are nested in segments (two to four reps each); every rep sells in every channel.
TEAMS = {"SMB": ["Ana", "Ben", "Cai", "Dee"], "Mid-Market": ["Eli", "Fay", "Gus"],
         "Enterprise": ["Hal", "Ivy"]}
CHANNELS = ["Inbound", "Outbound", "Partner", "Events"]
DIMS = ["rep", "segment", "channel"]


def grid(deals: float = 50.0, size: float = 1000.0) -> pd.DataFrame:
    """Leaf cells with `deals` expected deals of `size` each; Poisson-like variance (deals × size²)."""
    rows = [(rep, seg, ch) for seg, reps in TEAMS.items() for rep in reps for ch in CHANNELS]
    cells = pd.DataFrame(rows, columns=DIMS)
    cells["expected"] = deals * size
    cells["variance"] = deals * size**2
    cells["actual"] = cells["expected"]
    return cells


def noisy(cells: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return cells.assign(actual=cells["actual"] + rng.normal(0, np.sqrt(cells["variance"])))


def scale(cells: pd.DataFrame, factor: float, **where: str) -> pd.DataFrame:
    mask = np.ones(len(cells), dtype=bool)
    for d, v in where.items():
        mask &= (cells[d] == v).to_numpy()
    out = cells.copy()
    out.loc[mask, "actual"] = out.loc[mask, "actual"] * factor
    return out


def names(loc: Localisation) -> set[tuple[tuple[str, str], ...]]:
    return {el.where for el in loc.elements}


def test_nested_dimensions_found_from_the_data() -> None:
    assert nested_dimensions(grid(), DIMS) == {"rep": "segment"}
    # one stray small deal of Ana's in Mid-Market does not break the hierarchy (≥ 95 % of amount)
    stray = pd.DataFrame([("Ana", "Mid-Market", "Inbound", 500.0, 500.0, 1.0)], columns=[*DIMS, "expected",
                                                                                          "variance", "actual"])
    assert nested_dimensions(pd.concat([grid(), stray]), DIMS) == {"rep": "segment"}
    # a dimension with one value is nobody's parent; channels live in every segment
    assert nested_dimensions(grid().assign(region="EU"), [*DIMS, "region"]) == {"rep": "segment"}


def test_pure_noise_names_nothing() -> None:
    # The family-wise false-alarm rate is 1 % per call: 100 months of pure noise name at most a
    # few (a binomial(100, 0.01) exceeds 4 with probability 0.003).
    named = 0
    for seed in range(100):
        loc = localise(noisy(grid(), seed), DIMS)
        assert loc.normal == (not loc.elements)
        assert (loc.explained is None) == (not loc.elements)
        named += not loc.normal
    assert named <= 4


def test_a_planted_segment_by_channel_is_found_at_that_depth() -> None:
    cells = scale(noisy(grid(), 1), 0.6, segment="Mid-Market", channel="Partner")
    loc = localise(cells, DIMS)
    assert names(loc) == {(("segment", "Mid-Market"), ("channel", "Partner"))}
    (el,) = loc.elements
    mask = (cells["segment"] == "Mid-Market") & (cells["channel"] == "Partner")
    assert el.part == cells.loc[mask, "actual"].sum() - cells.loc[mask, "expected"].sum()
    assert el.expected == 3 * 50_000 and el.z < -4 and el.low < el.part < el.high < 0


def test_a_change_spread_across_the_reps_of_a_segment_is_named_as_the_segment() -> None:
    cells = noisy(grid(), 2)
    for rep, factor in zip(TEAMS["Mid-Market"], [0.75, 0.8, 0.7], strict=True):
        cells = scale(cells, factor, rep=rep)
    loc = localise(cells, DIMS)
    assert names(loc) == {(("segment", "Mid-Market"),)}
    assert loc.nested == {"rep": "segment"}


def test_one_rep_alone_is_named_as_the_rep() -> None:
    loc = localise(scale(noisy(grid(), 3), 0.5, rep="Fay"), DIMS)
    assert names(loc) == {(("rep", "Fay"),)}


def test_a_rep_mix_shift_that_cancels_inside_its_segment_is_not_a_cause() -> None:
    # Hal loses 30 % of Enterprise, Ivy wins exactly that: Enterprise as a whole did not move.
    cells = noisy(grid(), 4)
    hal = cells["rep"] == "Hal"
    ivy = cells["rep"] == "Ivy"
    moved = 0.3 * cells.loc[hal, "expected"].to_numpy()
    cells.loc[hal, "actual"] -= moved
    cells.loc[ivy, "actual"] += moved
    loc = localise(cells, DIMS)
    assert loc.normal and not loc.elements, loc


def test_few_deals_moving_much_is_noise_many_deals_moving_little_is_named() -> None:
    # Three deals a month falling 50 % is within normal variation (z ≈ −0.7 with lognormal sizes,
    # E[X²] = 1.6 × mean²); 3,000 deals falling 10 % is not (z ≈ −4.3).
    rows = [("Small", ch, 3 * 10_000.0 / 4, 3 / 4 * 10_000.0**2 * 1.6) for ch in CHANNELS]
    rows += [("Large", ch, 3000 * 10_000.0 / 4, 3000 / 4 * 10_000.0**2 * 1.6) for ch in CHANNELS]
    cells = pd.DataFrame(rows, columns=["segment", "channel", "expected", "variance"])
    cells["actual"] = cells["expected"] * np.where(cells["segment"] == "Small", 0.5, 0.9)
    loc = localise(cells, ["segment", "channel"])
    assert names(loc) == {(("segment", "Large"),)}


def test_two_planted_elements_are_named_as_a_set() -> None:
    cells = scale(noisy(grid(), 5), 0.5, segment="SMB", channel="Partner")
    cells = scale(cells, 1.4, rep="Gus")
    loc = localise(cells, DIMS)
    assert names(loc) == {(("segment", "SMB"), ("channel", "Partner")), (("rep", "Gus"),)}
    gap = (cells["actual"] - cells["expected"]).sum()
    assert loc.explained == sum(el.part for el in loc.elements) / gap


def test_a_cause_hidden_in_the_total_by_an_unrelated_gain_is_still_named() -> None:
    cells = scale(noisy(grid(), 6), 0.6, channel="Events")
    gain = cells.loc[cells["channel"] == "Events", "expected"].sum() * 0.4 / 4
    cells.loc[(cells["segment"] == "SMB") & (cells["channel"] == "Inbound"), "actual"] += gain
    loc = localise(cells, DIMS)
    assert (("channel", "Events"),) in names(loc)
    assert (("segment", "SMB"), ("channel", "Inbound")) in names(loc)


def test_history_widens_an_element_that_always_moves_this_much() -> None:
    # Partner swings ±30 % every month: this month's −30 % is its usual variation, not a cause.
    rng = np.random.default_rng(7)
    months = []
    for p in range(8):
        month = scale(noisy(grid(), 100 + p), float(1 + rng.choice([-0.3, 0.3])), channel="Partner")
        months.append(month.assign(period=f"2026-{p + 1:02d}"))
    history = pd.concat(months, ignore_index=True)
    now = scale(noisy(grid(), 8), 0.7, channel="Partner")
    assert names(localise(now, DIMS)) == {(("channel", "Partner"),)}
    assert localise(now, DIMS, history=history).normal


def test_empty_and_degenerate_inputs() -> None:
    empty = grid().iloc[:0]
    assert localise(empty, DIMS) == Localisation((), None, True, {})
    zero = grid().assign(actual=0.0, expected=0.0, variance=0.0)
    assert localise(zero, DIMS).normal


def test_fast_on_8_reps_3_segments_6_channels() -> None:
    rows = [(f"r{r}", s, c) for r in range(8) for s in ("a", "b", "c") for c in range(6)]
    cells = pd.DataFrame(rows, columns=DIMS).astype(str)
    cells["expected"], cells["variance"] = 5e4, 5e7
    cells["actual"] = cells["expected"]
    cells = scale(noisy(cells, 9), 0.5, rep="r3", channel="2")
    localise(cells, DIMS)  # warm
    t0 = time.process_time()
    for _ in range(10):
        loc = localise(cells, DIMS)
    assert (time.process_time() - t0) / 10 < 0.1
    assert names(loc) == {(("rep", "r3"), ("channel", "2"))}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), factor=st.floats(0.2, 2.5),
       depth=st.integers(0, 3), max_elements=st.integers(1, 3))
def test_parts_plus_residual_add_up_to_the_gap(seed: int, factor: float, depth: int,
                                               max_elements: int) -> None:
    rng = np.random.default_rng(seed)
    cells = grid()
    cells["expected"] = rng.lognormal(10, 1, len(cells))
    cells["variance"] = cells["expected"] * rng.uniform(500, 5000)
    cells = noisy(cells, seed)
    leaf = cells.iloc[int(rng.integers(len(cells)))]
    cells = scale(cells, factor, **{d: leaf[d] for d in DIMS[:depth]})
    loc = localise(cells, DIMS, max_elements=max_elements)
    claimed = np.zeros(len(cells), dtype=bool)
    for el in loc.elements:
        assert isinstance(el, Element) and len(el.where) >= 1
        assert [d for d, _ in el.where] == [d for d in DIMS if d in dict(el.where)]
        claimed |= np.logical_and.reduce([cells[d] == v for d, v in el.where])
    residual = (cells["actual"] - cells["expected"])[~claimed].sum()
    gap = (cells["actual"] - cells["expected"]).sum()
    assert abs(sum(el.part for el in loc.elements) + residual - gap) <= 1e-9 * max(abs(gap), 1.0) + 1e-6
    assert len(loc.elements) <= max_elements
    assert loc.normal == (not loc.elements)
