"""Multi-dimensional root-cause localisation with evidence: which elements (a rep; a segment × channel;
one rep's deals in one segment from one channel) explain an additive gap, each at its own depth.

Why not rank one dimension's segments by share (the old engine) or use a published method as is:
published localisers (RiskLoc, HotSpot, Squeeze, Adtributor) only see actual and forecast per leaf,
so they must guess what "abnormal" means from the spread of leaf deviations. Here the caller knows
each leaf's noise (Poisson counts, sums of squared amounts), so every candidate element is judged by
evidence: how many standard errors its change is, after the elements already chosen.

The search is a greedy, jointly refitted regression over the lattice of elements (all combinations
of dimension values, every depth). A candidate element e says "the leaves under e moved by the same
fraction δ_e of their expected amount". Its score is the drop in chi-square when δ_e is fitted to
the current residual (a matched filter: (Σ r·x/v)² / Σ x²/v, a z² that pools evidence over the
element's leaves). This makes the shallowest element win when a change is spread across its
children (the parent pools all their evidence) and a child win when the change lives in one child
only (the parent dilutes it). The z is skew-aware (a month of a few lognormal deals jumps up far
more often than a normal law says; see `_skewed_z2`) and widened by the element's usual
period-to-period variation when history is given. Candidates are accepted while their z clears a
Bonferroni bound (1 % family-wise, shared between depths, then between a depth's candidates), so
pure noise names nothing; descendants and ancestors of a chosen element are pruned; a child of a
nested dimension (a rep inside its segment) is only named when its parent shows the same change,
so a reshuffle between the reps of one segment that cancels inside the segment is never a cause.
Elements of either sign come back (a cause and an unrelated gain that hides it in the total).
Depth goes up to every dimension combined (up to four dimensions; three-way beyond).

Measured (benchmarks/bench_causesets.py, held-out seeds): see that script's docstring.

Parts are exact: each named element's part is the raw gap of its leaves not already claimed by an
earlier element, so the parts plus the residual are the total gap to the cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np
import pandas as pd

NESTED_SHARE = 0.95  # a child value "lives" in one parent value when ≥ 95 % of its amount is there
FAMILY_ALPHA = 0.01  # chance, over all candidates of one call, of naming an element in pure noise
HISTORY_PRIOR = 6.0  # pseudo-periods of the prior "the stated variance is right"
PHI_FLOOR = 1.0  # history widens a stated variance, never narrows it (heavy tails fool it)
PARENT_CARRIES = 0.5
DROP_SHAPE = 10.0  # deals' worth from which a drop is judged on the skewed law too
SKEW = 1.0  # skew of a leaf relative to a gamma amount with the same mean and variance  # a nested child must show ≥ this fraction of its change in its parent


@dataclass(frozen=True)
class Element:
    """One named cause: where it is, its amounts, its exact part of the gap and the evidence.

    `part` is the gap of this element's leaves not claimed by an earlier element; `low`/`high` is
    a 95 % interval of that part under the noise (history-inflated when history was given); `z` is
    the element's own gap (actual − expected) in standard errors, the figure to quote; the gate
    that named it is the skew-aware evidence of its proportional change (see the module)."""

    where: tuple[tuple[str, str], ...]
    actual: float
    expected: float
    part: float
    z: float
    low: float
    high: float


@dataclass(frozen=True)
class Localisation:
    """The cause set. `normal` (and no elements) when nothing stands out of the noise;
    `explained` is the named parts' share of the total gap (None when the gap is zero or nothing
    is named); `nested` maps a child dimension to the dimension it lives in."""

    elements: tuple[Element, ...]
    explained: float | None
    normal: bool
    nested: dict[str, str]


def nested_dimensions(cells: pd.DataFrame, dims: Sequence[str], *, actual: str = "actual",
                      expected: str = "expected") -> dict[str, str]:
    """Map each dimension whose every value lives (≥ 95 % of its amount) in one value of another
    dimension to that parent; when several qualify, the finest parent (most values) is kept, so
    rep → team rather than rep → region. Amount-weighted so a stray small deal in another segment
    does not break the hierarchy; a 1:1 relabelling (same number of values) is not nesting, nor is
    a dimension with a single value (every dimension would live in it)."""
    dims = list(dims)
    if cells.empty or len(dims) < 2:
        return {}
    weight = cells[actual].abs().to_numpy(float) + cells[expected].abs().to_numpy(float)
    if not np.isfinite(weight).all() or weight.sum() <= 0:
        weight = np.ones(len(cells))
    codes = {d: pd.factorize(cells[d].astype(str))[0] for d in dims}
    sizes = {d: int(codes[d].max()) + 1 for d in dims}
    out: dict[str, str] = {}
    for child in dims:
        best: str | None = None
        for parent in dims:
            if parent == child or sizes[parent] >= sizes[child] or sizes[parent] < 2:
                continue
            joint = np.zeros((sizes[child], sizes[parent]))
            np.add.at(joint, (codes[child], codes[parent]), weight)
            total = joint.sum(axis=1)
            has = total > 0
            if not has.any():
                continue
            share = joint[has].max(axis=1) / total[has]
            if (share >= NESTED_SHARE).all() and (best is None or sizes[parent] > sizes[best]):
                best = parent
        if best is not None:
            out[child] = best
    return out


@dataclass
class _Lattice:
    """Every candidate element, as a leaf → element index per cuboid (subset of dims)."""

    cuboids: list[tuple[int, ...]]      # dimension indexes of each cuboid
    leaf_elem: np.ndarray               # (n_leaves, n_cuboids) global element id
    elem_cuboid: np.ndarray             # (n_elems,) cuboid index of each element
    elem_leaf0: np.ndarray              # (n_elems,) one leaf of each element (to read its values)
    alive: np.ndarray                   # (n_elems,) candidate still eligible


def _lattice(codes: np.ndarray, max_depth: int) -> _Lattice:
    n_leaves, n_dims = codes.shape
    cuboids = [c for k in range(1, max_depth + 1) for c in combinations(range(n_dims), k)]
    leaf_elem = np.empty((n_leaves, len(cuboids)), dtype=np.int64)
    elem_cuboid, elem_leaf0 = [], []
    offset = 0
    for j, cub in enumerate(cuboids):
        key = np.zeros(n_leaves, dtype=np.int64)
        for d in cub:
            key = key * (int(codes[:, d].max()) + 1) + codes[:, d]
        uniq, first, local = np.unique(key, return_index=True, return_inverse=True)
        leaf_elem[:, j] = offset + local
        elem_cuboid.append(np.full(len(uniq), j))
        elem_leaf0.append(first)
        offset += len(uniq)
    elem_cuboid_a = np.concatenate(elem_cuboid)
    # An element whose leaf set equals a shallower one's (a rep × its own segment = the rep) is the
    # same cause; keep the shallowest so a cause is named at the level where it lives.
    rng = np.random.default_rng(12345)
    tag = rng.random((n_leaves, 2))
    sig = np.stack([np.bincount(leaf_elem.ravel(), weights=np.repeat(tag[:, i], len(cuboids)),
                                minlength=offset) for i in range(2)], axis=1)
    sig = np.round(sig, 9)
    _, first_of_sig = np.unique(sig, axis=0, return_index=True)
    alive = np.zeros(offset, dtype=bool)
    alive[first_of_sig] = True  # elements are ordered by depth, so the first is the shallowest
    return _Lattice(cuboids, leaf_elem, elem_cuboid_a, np.concatenate(elem_leaf0), alive)


def _overdispersion(history: pd.DataFrame, leaves: pd.DataFrame, dims: list[str], lat: _Lattice,
                    actual: str, expected: str, variance: str) -> np.ndarray:
    """Per element, how much more (or less) its gap usually moves than the stated variance says:
    its mean z² over earlier periods, shrunk towards 1, never below PHI_FLOOR: one whale deal in a
    past month makes a too-narrow-looking variance far more often than a too-wide one, so history
    only widens. Leaves the current period
    does not have are ignored: they belong to no candidate."""
    n_elems = len(lat.alive)
    hist = history[dims + ["period", actual, expected, variance]].copy()
    for d in dims:
        hist[d] = hist[d].astype(str)
    hist = hist.merge(leaves[dims].assign(_leaf=np.arange(len(leaves))), on=dims, how="inner")
    if hist.empty:
        return np.ones(n_elems)
    leaf_idx = hist["_leaf"].to_numpy(np.int64)
    periods, p_idx = np.unique(hist["period"].astype(str).to_numpy(), return_inverse=True)
    n_p = len(periods)
    gap = np.nan_to_num(hist[actual].to_numpy(float) - hist[expected].to_numpy(float))
    var = np.nan_to_num(hist[variance].to_numpy(float)).clip(min=0.0)
    elem = lat.leaf_elem[leaf_idx]  # (rows, n_cuboids)
    flat = (p_idx[:, None] * n_elems + elem).ravel()
    size = n_p * n_elems
    g = np.bincount(flat, weights=np.repeat(gap, elem.shape[1]), minlength=size).reshape(n_p, -1)
    v = np.bincount(flat, weights=np.repeat(var, elem.shape[1]), minlength=size).reshape(n_p, -1)
    seen = (np.bincount(flat, minlength=size) > 0).reshape(n_p, -1)
    floor = (float(var[var > 0].mean()) if (var > 0).any() else 1.0) * 1e-6
    z2 = np.where(seen, g**2 / np.maximum(v, floor), 0.0)
    # "Usual" variation: the element's largest month is left out (one whale deal is what the
    # skew-aware z already allows for; an element that moves every month still shows it).
    n = seen.sum(axis=0)
    trimmed = z2.sum(axis=0) - np.where(n >= 3, z2.max(axis=0), 0.0)
    phi = (HISTORY_PRIOR + trimmed) / (HISTORY_PRIOR + n - (n >= 3))
    return np.clip(phi, PHI_FLOOR, None)


def _skewed_z2(s: np.ndarray, info: np.ndarray) -> np.ndarray:
    """z² of the matched-filter statistic s (variance `info`), skew included.

    A month of deals is a Poisson number of lognormal sizes: with one or two deals expected, one
    big deal is several "standard errors" up far more often than a normal law says, while a drop
    can never go below zero. Treat each leaf as a gamma amount with its mean and variance (about
    the skew of a sum of lognormal deals with σ ≈ 0.8, times SKEW); the filter's normalised
    statistic 1 + s/info is then gamma-like with shape info / SKEW², and its Wilson-Hilferty
    cube-root transform gives a z that is the plain s/√info for large elements and much harder to
    reach upward for small ones (drops keep the plain z, see below). Below shape 1 (less than one typical deal expected) the transform
    fails, so the shape-1 z is shrunk by √shape: such an element can hardly ever be told from
    luck."""
    info = np.maximum(info, 1e-300)
    shape = info / SKEW**2
    c = 1.0 / (9.0 * np.maximum(shape, 1.0))  # the transform only holds from shape 1 up
    y = np.maximum(1.0 + s / info, 0.0)
    z = (np.cbrt(y) - (1.0 - c)) / np.sqrt(c)
    z = z * np.sqrt(np.minimum(shape, 1.0))  # below one deal's worth, evidence shrinks further
    z2 = np.where(np.isfinite(z), z**2, s**2 / info)
    # Downward, a gamma law calls an empty month impossible while a Poisson count of deals makes
    # it merely unlikely (e^-λ): below DROP_SHAPE deals' worth the plain z is the honest,
    # conservative one; above, the gamma's light lower tail holds and gives drops their due.
    return np.where((s > 0) | (shape >= DROP_SHAPE), z2, s**2 / info)


def localise(cells: pd.DataFrame, dims: Sequence[str], *, actual: str = "actual",
             expected: str = "expected", variance: str = "variance",
             history: pd.DataFrame | None = None, max_elements: int = 3) -> Localisation:
    """Name the set of elements (each at its own depth) that explains the gap actual − expected
    beyond noise, or nothing ("within normal variation")."""
    dims = list(dims)
    nested = nested_dimensions(cells, dims, actual=actual, expected=expected)
    if cells.empty or not dims:
        return Localisation((), None, True, nested)
    frame = cells[dims + [actual, expected, variance]].copy()
    for d in dims:
        frame[d] = frame[d].astype(str)
    frame = frame.groupby(dims, sort=False, as_index=False)[[actual, expected, variance]].sum()
    a = frame[actual].to_numpy(float)
    e = frame[expected].to_numpy(float)
    v = np.nan_to_num(frame[variance].to_numpy(float), nan=0.0).clip(min=0.0)
    a, e = np.nan_to_num(a), np.nan_to_num(e)
    gap = a - e
    total_gap = float(gap.sum())
    positive = v[v > 0]
    floor = (float(positive.mean()) if len(positive) else max(float(np.abs(gap).max()), 1.0)) * 1e-6
    v = np.maximum(v, floor)
    # Shape of a proportional change: the expected amount (the actual where nothing was expected).
    x = np.where(e != 0, np.abs(e), np.abs(a))
    x = np.where(x > 0, x, 1e-9)

    codes = np.stack([pd.factorize(frame[d])[0] for d in dims], axis=1)
    values = [pd.factorize(frame[d])[1] for d in dims]
    max_depth = len(dims) if len(dims) <= 4 else 3
    lat = _lattice(codes, max_depth)
    n_elems = len(lat.alive)
    n_cub = len(lat.cuboids)
    flat = lat.leaf_elem.ravel()

    def per_elem(w: np.ndarray) -> np.ndarray:
        return np.bincount(flat, weights=np.repeat(w, n_cub), minlength=n_elems)

    E_a, E_e, E_v = per_elem(a), per_elem(e), per_elem(v)
    E_xx = per_elem(x * x / v)
    phi = np.ones(n_elems)
    if history is not None and not history.empty and "period" in history.columns:
        phi = _overdispersion(history, frame, dims, lat, actual, expected, variance)

    # Nested dimensions: the parent element of each element with a nested child coordinate.
    dim_idx = {d: i for i, d in enumerate(dims)}
    cub_index = {c: j for j, c in enumerate(lat.cuboids)}
    parent_of = np.full(n_elems, -1)
    for child, parent in nested.items():
        ci, pi = dim_idx[child], dim_idx[parent]
        for j, cub in enumerate(lat.cuboids):
            if ci not in cub:
                continue
            up = tuple(sorted(set(cub) - {ci} | {pi}))
            if up not in cub_index:
                continue
            mine = lat.leaf_elem[:, j]
            parent_of[mine] = lat.leaf_elem[:, cub_index[up]]

    # The family-wise error is shared equally between depths, then between a depth's candidates:
    # 17 segments-or-reps-or-channels do not pay for the 144 leaves' multiple testing, which
    # matches where causes usually live (a segment, a channel, a rep) without barring the leaves.
    depth_of = np.array([len(c) for c in lat.cuboids])[lat.elem_cuboid]
    per_depth = np.bincount(depth_of[lat.alive], minlength=max_depth + 1)
    n_depths = int((per_depth > 0).sum())
    tests = np.maximum(per_depth[depth_of], 1) * max(n_depths, 1)
    bound2 = np.array([NormalDist().inv_cdf(1 - FAMILY_ALPHA / (2 * t)) for t in np.unique(tests)])
    bound2 = (bound2**2)[np.searchsorted(np.unique(tests), tests)]
    W = 1.0 / v
    has_parent = parent_of >= 0

    def inside_of(el: int) -> np.ndarray:
        return lat.leaf_elem[:, lat.elem_cuboid[el]] == el

    def related_of(el: int) -> np.ndarray:
        """The element, its ancestors and its descendants: one cause, one level."""
        bc = set(lat.cuboids[lat.elem_cuboid[el]])
        cubs = [j for j, c in enumerate(lat.cuboids) if bc <= set(c) or set(c) <= bc]
        out = np.zeros(n_elems, dtype=bool)
        out[np.unique(lat.leaf_elem[inside_of(el)][:, cubs])] = True
        return out

    def refit(els: list[int]) -> np.ndarray:
        """Residual after a joint weighted least-squares fit of each element's proportional change."""
        if not els:
            return gap.copy()
        X = np.column_stack([inside_of(e) * x for e in els])
        delta = np.linalg.lstsq(X.T @ (X * W[:, None]), X.T @ (gap * W), rcond=None)[0]
        return gap - X @ delta

    def pick(resid: np.ndarray, blocked: np.ndarray) -> int:
        """The eligible element with the most evidence in this residual, or -1."""
        s = per_elem(resid * x / v)
        score = _skewed_z2(s / phi, E_xx / phi)
        r_gap = per_elem(resid)
        ok = lat.alive & ~blocked & (score >= bound2)
        pg = np.where(has_parent, r_gap[np.maximum(parent_of, 0)], 0.0)
        carried = (np.sign(pg) == np.sign(r_gap)) & (np.abs(pg) >= PARENT_CARRIES * np.abs(r_gap))
        ok &= ~has_parent | carried
        return int(np.argmax(np.where(ok, score, -np.inf))) if ok.any() else -1

    def blocked_by(els: list[int]) -> np.ndarray:
        out = np.zeros(n_elems, dtype=bool)
        for e in els:
            out |= related_of(e)
        return out

    # Greedy forward selection on evidence, refitting the whole set after each pick.
    chosen: list[int] = []
    resid = gap
    while len(chosen) < max_elements:
        best = pick(resid, blocked_by(chosen))
        if best < 0:
            break
        chosen.append(best)
        resid = refit(chosen)
    member = np.column_stack([inside_of(e) for e in chosen]) if chosen else np.zeros((len(frame), 0), bool)

    elements: list[Element] = []
    claimed = np.zeros(len(frame), dtype=bool)
    for k, el in enumerate(chosen):
        own = member[:, k] & ~claimed
        claimed |= member[:, k]
        part = float(gap[own].sum())
        sd = float(np.sqrt(v[own].sum() * phi[el]))
        cub = lat.cuboids[lat.elem_cuboid[el]]
        leaf = lat.elem_leaf0[el]
        where = tuple((dims[d], str(values[d][codes[leaf, d]])) for d in cub)
        z = float((E_a[el] - E_e[el]) / np.sqrt(E_v[el] * phi[el]))
        elements.append(Element(where, float(E_a[el]), float(E_e[el]), part, z,
                                part - 1.96 * sd, part + 1.96 * sd))
    parts = sum(el.part for el in elements)
    explained = parts / total_gap if elements and total_gap != 0 else None
    return Localisation(tuple(elements), explained, not elements, nested)
