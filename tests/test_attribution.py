"""The attribution arithmetic: exact sums (property tests) and small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kpitree import attribution as att

positive = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
anyreal = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
PROPS = settings(max_examples=150, deadline=None)


def _close(total: float, parts: float, scale: float) -> bool:
    return abs(total - parts) <= 1e-9 * max(abs(total), scale * 1e-6, 1e-12)


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    ("new_arr = new_business_arr + expansion_arr", "additive"),
    ("nrr = grr + expansion_rate", "additive"),
    ("a - b + 2 * c - d / 4", "additive"),
    ("12 * mrr", "additive"),
    ("new_business_arr = closed_new_deals * win_rate * avg_deal_size", "product"),
    ("v = deals * asp * win_rate / cycle_days", "product"),
    ("a * (b + c)", "general"),
    ("a / (b - c)", "general"),
])
def test_kinds(text: str, kind: str) -> None:
    assert att.Formula.parse(text).kind == kind


def test_parse_rejects_anything_but_arithmetic() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        att.Formula.parse("a + f(b)")
    with pytest.raises(SyntaxError):
        att.Formula.parse("a +")


def test_product_exponents_and_coefficients() -> None:
    f = att.Formula.parse("v = 2 * d * asp * w / c")
    assert dict(f.exponents) == {"d": 1.0, "asp": 1.0, "w": 1.0, "c": -1.0}
    assert f.constant == 2.0
    g = att.Formula.parse("a - b + 2 * c - d / 4")
    assert dict(g.coefficients) == {"a": 1.0, "b": -1.0, "c": 2.0, "d": -0.25}


def test_division_by_zero_gives_inf_not_an_exception() -> None:
    f = att.Formula.parse("a / b")
    assert math.isinf(float(f({"a": 1.0, "b": 0.0})))


# --- hand-computed cases ------------------------------------------------------------------------


def test_additive_by_hand() -> None:
    # new_arr = nb + exp: nb 100 → 70 (−30), exp 20 → 25 (+5); gap = 95 − 120 = −25
    f = att.Formula.parse("new_arr = nb + exp")
    r = att.attribute(f, {"nb": 100, "exp": 20}, {"nb": 70, "exp": 25})
    assert r.method == "additive"
    assert r.part("nb") == pytest.approx(-30) and r.part("exp") == pytest.approx(5)
    assert r.total == pytest.approx(-25)


def test_lmdi_by_hand() -> None:
    # y = d × w × a: (100, 0.30, 1000) → (100, 0.15, 1200); y0 = 30000, y1 = 18000.
    # L(18000, 30000) = (18000 − 30000) / ln(18000/30000) = −12000 / −0.5108256 = 23491.3
    # win rate: 23491.3 × ln(0.5) = −16283.0; deal size: 23491.3 × ln(1.2) = 4283.0; deals: 0
    f = att.Formula.parse("y = d * w * a")
    r = att.attribute(f, {"d": 100, "w": 0.30, "a": 1000}, {"d": 100, "w": 0.15, "a": 1200})
    assert r.method == "lmdi"
    assert r.part("w") == pytest.approx(-16283.0, abs=0.5)
    assert r.part("a") == pytest.approx(4283.0, abs=0.5)
    assert r.part("d") == pytest.approx(0.0, abs=1e-9)
    assert r.part("w") + r.part("a") + r.part("d") == pytest.approx(-12000, rel=1e-12)


def test_lmdi_with_a_zero_factor_falls_back_to_shapley() -> None:
    # y = a × b: (2, 3) → (0, 5). Shapley: a: ½[(0·3 − 2·3) + (0·5 − 2·5)] = ½(−6 − 10) = −8;
    # b: ½[(2·5 − 2·3) + (0·5 − 0·3)] = ½(4 + 0) = 2; total −6
    f = att.Formula.parse("a * b")
    r = att.attribute(f, {"a": 2, "b": 3}, {"a": 0, "b": 5})
    assert r.method == "shapley" and "zero or negative" in r.note
    assert r.part("a") == pytest.approx(-8) and r.part("b") == pytest.approx(2)


def test_shapley_general_by_hand() -> None:
    # y = a × (b + c): (1, 1, 1) → (2, 3, 1); y0 = 2, y1 = 8. Orders a,b / b,a with c fixed (c's
    # marginal is 0 everywhere since c does not change). Exact Shapley over 3 players:
    # a: avg over subsets of {b, c} of Δ from a: S={}:(2·2 − 1·2)=2, {b}:(2·4 − 1·4)=4, {c}:2, {b,c}:4
    #    weights 1/3, 1/6, 1/6, 1/3 → 2/3 + 4/6 + 2/6 + 4/3 = 3
    # b: S={}:(1·4 − 2)=2, {a}:(2·4 − 2·2)=4, {c}:2, {a,c}:4 → 3; c: 0. 3 + 3 = 6 = 8 − 2
    f = att.Formula.parse("a * (b + c)")
    r = att.attribute(f, {"a": 1, "b": 1, "c": 1}, {"a": 2, "b": 3, "c": 1})
    assert r.method == "shapley"
    assert r.part("a") == pytest.approx(3) and r.part("b") == pytest.approx(3) and r.part("c") == pytest.approx(0)


def test_undefined_when_the_formula_divides_by_zero() -> None:
    f = att.Formula.parse("a / (b - c)")
    r = att.attribute(f, {"a": 1, "b": 2, "c": 1}, {"a": 1, "b": 2, "c": 2})
    assert r.method == "undefined" and r.parts == ()


def test_mix_rate_by_hand() -> None:
    # Two segments. Before: weights .5/.5, rates .2/.4 → R0 = .30. After: weights .8/.2, rates .2/.2
    # → R1 = .20. R̄ = .25. Rate: seg A .65 × 0 = 0; seg B .35 × (−.2) = −.07.
    # Mix: A (.3)(.2 − .25) = −.015; B (−.3)(.3 − .25) = −.015. Total −.07 − .03 = −.10 = R1 − R0.
    mr = att.mix_rate(np.array([.5, .5]), np.array([.2, .4]), np.array([.8, .2]), np.array([.2, .2]))
    assert mr.rate == pytest.approx([0.0, -0.07])
    assert mr.mix == pytest.approx([-0.015, -0.015])
    assert mr.contribution.sum() == pytest.approx(-0.10)


def test_mix_rate_new_segment_is_all_mix() -> None:
    # Segment B appears: no rate before, so it borrows its current rate; its part is mix only.
    mr = att.mix_rate(np.array([1.0, 0.0]), np.array([0.3, np.nan]), np.array([0.5, 0.5]), np.array([0.3, 0.1]))
    assert mr.rate[1] == 0.0
    assert mr.contribution.sum() == pytest.approx(0.2 - 0.3)


def test_js_surprise_and_adtributor_by_hand() -> None:
    # p = (.5, .5) → q = (.9, .1). Element 2: ½(.5 ln(.5/.3) + .1 ln(.1/.3)) = ½(.2554 − .1099) = .07278
    s = att.js_surprise(np.array([.5, .5]), np.array([.9, .1]))
    assert s[1] == pytest.approx(0.07278, abs=1e-4)
    assert (s >= 0).all()
    # elements by surprise: 2 (EP .8) joins and alone explains > 67 %: succeeded with one element
    cand = att.adtributor(np.array([0.2, 0.8]), s)
    assert cand.succeeded and cand.chosen == (1,)
    weak = att.adtributor(np.array([0.05, 0.05]), s)
    assert not weak.succeeded and weak.chosen == ()


def test_component_path_by_hand() -> None:
    # g = n / d over two segments: n 10 → 6 (A: 5 → 1, B: 5 → 5), d 20 → 20; g: .5 → .3.
    # Shapley on components: n's part = −.2, d's part 0. A changed n by −4 of −4: all −.2 to A.
    def g(c):
        return np.asarray(c["n"], dtype=float) / np.asarray(c["d"], dtype=float)

    parts, rest = att.component_path(g, ["n", "d"], {"n": 10, "d": 20}, {"n": 6, "d": 20},
                                     {"n": np.array([-4.0, 0.0]), "d": np.array([0.0, 0.0])})
    assert parts == pytest.approx([-0.2, 0.0]) and rest == 0.0


# --- properties --------------------------------------------------------------------------------


@PROPS
@given(st.lists(st.tuples(anyreal, anyreal), min_size=1, max_size=8), st.lists(anyreal, min_size=8, max_size=8))
def test_additive_parts_sum_to_the_change(pairs, coefs) -> None:
    names = [f"x{i}" for i in range(len(pairs))]
    text = " + ".join(f"({c:.6g}) * {n}" for c, n in zip(coefs, names, strict=False))
    f = att.Formula.parse(text)
    x0 = {n: p[0] for n, p in zip(names, pairs, strict=True)}
    x1 = {n: p[1] for n, p in zip(names, pairs, strict=True)}
    r = att.attribute(f, x0, x1)
    assert r.method == "additive"
    scale = sum(abs(c) * (abs(a) + abs(b)) for c, (a, b) in zip(coefs, pairs, strict=False))
    assert _close(r.total, sum(v for _, v in r.parts), scale)


@PROPS
@given(st.lists(st.tuples(positive, positive), min_size=2, max_size=6), st.lists(st.sampled_from([1, -1]), min_size=6,
                                                                                   max_size=6))
def test_lmdi_parts_sum_to_the_change(pairs, signs) -> None:
    names = [f"x{i}" for i in range(len(pairs))]
    expr = names[0]
    for n, s in zip(names[1:], signs, strict=False):
        expr += f" {'*' if s > 0 else '/'} {n}"
    f = att.Formula.parse(expr)
    assert f.kind == "product"
    x0 = {n: p[0] for n, p in zip(names, pairs, strict=True)}
    x1 = {n: p[1] for n, p in zip(names, pairs, strict=True)}
    r = att.attribute(f, x0, x1)
    assert r.method == "lmdi"
    y0, y1 = float(f(x0)), float(f(x1))
    assume(abs(y1 - y0) > 1e-6 * max(abs(y0), abs(y1)))
    assert abs(sum(v for _, v in r.parts) - r.total) <= 1e-9 * abs(r.total)


@PROPS
@given(st.lists(st.tuples(anyreal, anyreal), min_size=3, max_size=3))
def test_shapley_parts_sum_to_the_change_for_any_formula(pairs) -> None:
    f = att.Formula.parse("a * b - c * a + b")
    x0 = {n: p[0] for n, p in zip("abc", pairs, strict=True)}
    x1 = {n: p[1] for n, p in zip("abc", pairs, strict=True)}
    r = att.attribute(f, x0, x1)
    assert r.method == "shapley"
    scale = max(1.0, *(abs(v) for p in pairs for v in p)) ** 2
    assert _close(r.total, sum(v for _, v in r.parts), scale)


@PROPS
@given(st.lists(st.tuples(anyreal, anyreal), min_size=2, max_size=7))
def test_shapley_on_a_sum_is_the_deltas(pairs) -> None:
    names = [f"x{i}" for i in range(len(pairs))]
    f = att.Formula.parse(" + ".join(names))
    x0 = {n: p[0] for n, p in zip(names, pairs, strict=True)}
    x1 = {n: p[1] for n, p in zip(names, pairs, strict=True)}
    shapley = att.shapley_parts(f, names, x0, x1)
    deltas = att.additive_parts(f, x0, x1)
    for n in names:
        assert float(shapley[n]) == pytest.approx(float(deltas[n]), abs=1e-6)


@PROPS
@given(st.lists(st.tuples(st.floats(0.1, 1e4), st.floats(0.8, 1.25)), min_size=2, max_size=4))
def test_shapley_is_close_to_lmdi_for_products(pairs) -> None:
    # Both are exact; they split the interaction terms differently, by second-order amounts: with
    # every factor within −20 %…+25 %, the split differs by a few per cent of the parts at most.
    names = [f"x{i}" for i in range(len(pairs))]
    f = att.Formula.parse(" * ".join(names))
    x0 = {n: p[0] for n, p in zip(names, pairs, strict=True)}
    x1 = {n: p[0] * p[1] for n, p in zip(names, pairs, strict=True)}
    lmdi = att.lmdi_parts(f, x0, x1)
    shapley = att.shapley_parts(f, names, x0, x1)
    size = sum(abs(float(v)) for v in shapley.values())
    for n in names:
        assert abs(float(lmdi[n]) - float(shapley[n])) <= 0.05 * size + 1e-9 * abs(float(f(x0)))


def test_sampled_shapley_still_sums_exactly() -> None:
    names = [f"x{i}" for i in range(12)]
    f = att.Formula.parse(" * ".join(names[:6]) + " + " + " * ".join(names[6:]))
    rng = np.random.default_rng(1)
    x0 = {n: float(v) for n, v in zip(names, rng.uniform(0.5, 2, 12), strict=True)}
    x1 = {n: float(v) for n, v in zip(names, rng.uniform(0.5, 2, 12), strict=True)}
    r = att.attribute(f, x0, x1)
    assert r.method == "shapley_sampled"
    assert sum(v for _, v in r.parts) == pytest.approx(r.total, rel=1e-9)


@PROPS
@given(st.lists(st.tuples(positive, positive, positive, positive), min_size=1, max_size=12))
def test_mix_and_rate_sum_to_the_ratio_change(segments) -> None:
    n0 = np.array([s[0] for s in segments])
    d0 = np.array([s[0] + s[1] for s in segments])  # rates ≤ 1 like win rates, any ratio works
    n1 = np.array([s[2] for s in segments])
    d1 = np.array([s[2] + s[3] for s in segments])
    mr = att.mix_rate(d0 / d0.sum(), n0 / d0, d1 / d1.sum(), n1 / d1)
    change = n1.sum() / d1.sum() - n0.sum() / d0.sum()
    assert abs(mr.contribution.sum() - change) <= 1e-9 * max(abs(change), 1e-9)
    assert np.allclose(mr.rate + mr.mix, mr.contribution)


@PROPS
@given(st.lists(st.tuples(positive, positive), min_size=1, max_size=10))
def test_segment_deltas_sum_to_the_total_change(segments) -> None:
    v0 = np.array([s[0] for s in segments])
    v1 = np.array([s[1] for s in segments])
    target = float(v0.sum()) * 1.1
    base = target * att.shares(v0)  # the target shared out by reference weights
    assert (v1 - base).sum() == pytest.approx(v1.sum() - target, rel=1e-9, abs=1e-6)


@PROPS
@given(st.lists(st.tuples(positive, positive, positive, positive, positive, positive), min_size=1, max_size=8))
def test_cells_sum_per_cell(cells) -> None:
    f = att.Formula.parse("y = d * w * a")
    x0 = {"d": np.array([c[0] for c in cells]), "w": np.array([c[1] for c in cells]),
          "a": np.array([c[2] for c in cells])}
    x1 = {"d": np.array([c[3] for c in cells]), "w": np.array([c[4] for c in cells]),
          "a": np.array([c[5] for c in cells])}
    x1["w"][0] = 0.0  # a cell with no win: Shapley there, LMDI elsewhere
    parts, methods = att.attribute_cells(f, x0, x1)
    total = sum(parts.values())
    # Shapley visits mixed states (x0 for some factors, x1 for others): rounding is relative to them
    biggest = np.maximum(x0["d"], x1["d"]) * np.maximum(x0["w"], x1["w"]) * np.maximum(x0["a"], x1["a"])
    assert np.all(np.abs(total - (f(x1) - f(x0))) <= 1e-9 * biggest)
    assert methods.get("shapley") == 1
