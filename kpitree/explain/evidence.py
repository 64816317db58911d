"""Evidence before size: how far each segment's effect stands out of the noise its own data implies.

A segment that explains 90 % of a gap is no cause when its change is the wobble of three deals. So
every candidate effect gets a standard deviation from two sources, and the larger one counts:

- **Its own data.** Counts are Poisson (a count's variance is the count); a sum of amounts is a
  compound Poisson sum (its variance is the sum of the squared amounts, which the cells query reads
  beside each sum); a ratio's rate by the delta method — for a count denominator whose rows hold the
  numerator's (won ⊂ decided, won amount ⊂ won deals) that is the binomial p(1−p)/n for a win rate
  and the sample variance over n for an average deal size; a share of the mix is multinomial. A rate
  of a few hundred rows or fewer is judged by Fisher's exact test instead (`exact_z`): 0 of 19
  won is far rarer than the normal law says.
- **Its own history.** How much the segment usually moves from one period to the next, over the
  earlier periods the cells already hold: 1.4826 × the median absolute deviation of its
  period-to-period differences / √2. Median-based so that a problem that began two months ago (one
  step in the series) does not count as the segment's usual wobble. Five differences make a noisy
  estimate (it is 2× too wide one time in ten), so it is pooled with the counting noise as with
  `HISTORY_PRIOR` periods' worth of prior weight — the way `localise` shrinks its overdispersion —
  and only ever widens it: a segment that wobbles more than its counts imply gets a wider band,
  a quiet history never narrows the counting noise.

- **A change that began earlier.** The reference months are those the node went to plan in, so a
  segment whose trouble began a month or two ago while the total stayed on plan (one rep among twenty)
  carries its bad months in its reference. This period and such a run, each month of it out the same
  way, are pooled against the segment's own months before the run (`sustained`, `sustained_log`).

A level carried over from period to period (a stock: ARR, customers) is no Poisson draw; only its
history speaks for its noise. A denominator that is itself an amount (MRR retention) has no simple
count model; its rows (customers) do: Var(n / d) = Σ (n_i − r d_i)² / d², from the sums of squares and
of products the cells query reads. Without a noise model or history, an effect has no z and is
judged by size alone, as before.

The bar. An effect is evident when |z| ≥ `Z_MIN` (2: the usual two standard errors) and beyond the
Bonferroni bound for the number of segments judged at once (family-wise 5 %), because one click
compares a few dozen segments: at z ≥ 2 alone, pure noise over 40 owners names two of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..metrics import Kind, Metric

Z_MIN = 2.0  # never evident below two standard errors
FAMILY_ALPHA = 0.05  # chance, per node and click, of calling pure noise evident
MIN_HISTORY = 4  # earlier periods needed (3 differences) before history says how much a segment moves
MAD_SD = 1.4826  # median absolute deviation → standard deviation for a normal law
EXACT_MAX_ROWS = 400  # rows now up to which a rate of rows among rows is judged by Fisher's exact test
MIN_SPREAD_ROWS = 10.0  # rows a segment needs before its own spread speaks for the typical one
HISTORY_PRIOR = 6.0  # pseudo-periods of weight the counting noise has against the history's estimate
MAX_RUN = 2  # earlier periods a segment's change may have begun in, judged with this one (`sustained`)
RUN_EACH_Z = 1.0  # each earlier period of such a run stands this far out, the same way as now


def z_bound(candidates: int) -> float:
    """The |z| an effect must reach when `candidates` segments are judged at once."""
    if candidates <= 1:
        return Z_MIN
    return max(Z_MIN, NormalDist().inv_cdf(1.0 - FAMILY_ALPHA / (2.0 * candidates)))


def evident(z: float | None, bound: float) -> bool:
    """Stands out of the noise (an effect without a z — no noise model — is judged on size alone)."""
    return z is None or abs(z) >= bound


def _is_count(m: Metric, comp: str) -> bool:
    """The component counts rows (its variance is itself), rather than summing an amount."""
    for s in m.sources:
        agg = s.components.get(comp)
        if agg is not None:
            return agg.strip().lower().startswith("count(")
    return False


def poisson_ok(m: Metric) -> bool:
    """Counting noise applies: a flow or rate of rows in the period, not a level carried over."""
    return m.kind is not Kind.STOCK


def usual_sd(series: np.ndarray) -> tuple[np.ndarray, int]:
    """Per column (segment) of `series` (periods × segments, oldest first): its usual period-to-period
    standard deviation, robust to one step (nan where fewer than `MIN_HISTORY` periods have values)."""
    series = np.asarray(series, dtype="float64")
    if series.ndim != 2 or series.shape[0] < MIN_HISTORY:
        return np.full(series.shape[-1] if series.ndim == 2 else 0, np.nan), 0
    diffs = np.diff(series, axis=0)
    enough = np.isfinite(diffs).sum(axis=0) >= MIN_HISTORY - 1
    mad = _nanmedian(np.abs(diffs - _nanmedian(diffs)))
    return np.where(enough, MAD_SD * mad / math.sqrt(2.0), np.nan), diffs.shape[0]


def _nanmedian(a: np.ndarray) -> np.ndarray:
    """Median of each column, ignoring nan (nan for an empty column): sorted once, vectorised —
    `np.nanmedian` loops in Python over columns and explain asks for thousands of them."""
    s = np.sort(a, axis=0)  # nan sorts last
    n = np.isfinite(a).sum(axis=0)
    cols = np.arange(a.shape[1])
    lo = s[np.maximum((n - 1) // 2, 0), cols]
    hi = s[np.maximum(n // 2, 0), cols]
    return np.where(n > 0, (lo + hi) / 2, np.nan)


def column_mean(a: np.ndarray) -> np.ndarray:
    """Mean of each column over its finite values (nan for none), without numpy's empty-slice warning."""
    ok = np.isfinite(a)
    n = ok.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, np.where(ok, a, 0.0).sum(axis=0) / n, np.nan)


def level_floor(usual: np.ndarray, level: np.ndarray) -> np.ndarray:
    """A level's usual wobble, at least the typical one relative to its size: a stock segment whose
    history happens to be flat (no customer moved for months) would otherwise make any move look
    like infinite evidence. The floor is the median, over the segments, of wobble / level."""
    level = np.abs(np.asarray(level, dtype="float64"))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.asarray(usual, dtype="float64") / level
    ok = np.isfinite(rel) & (rel > 0)
    if not ok.any():
        return usual
    return np.fmax(usual, float(np.median(rel[ok])) * level)


def combine(noise: np.ndarray | None, hist: tuple[np.ndarray, int] | None) -> np.ndarray | None:
    """The counting noise widened by the history (pooled, see the module's docstring); either alone
    where only one is known; None where neither is."""
    if noise is None and hist is None:
        return None
    if hist is None:
        out = np.asarray(noise, dtype="float64")
    elif noise is None:
        out = np.asarray(hist[0], dtype="float64")
    else:
        n = np.asarray(noise, dtype="float64")
        h, k = np.asarray(hist[0], dtype="float64"), hist[1]
        pooled = np.sqrt((HISTORY_PRIOR * n ** 2 + k * h ** 2) / (HISTORY_PRIOR + k))
        out = np.where(np.isfinite(h), np.fmax(n, pooled), n)
    return np.where(np.isfinite(out) & (out > 0), out, np.nan)


def gradient(fn: Callable[[Mapping[str, np.ndarray]], np.ndarray], comps: Mapping[str, np.ndarray],
             names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """∂value/∂component per segment, by a relative forward step (values are sums and ratios)."""
    base = np.asarray(fn(comps), dtype="float64")
    out = {}
    for c in names:
        x = np.asarray(comps[c], dtype="float64")
        h = np.maximum(np.abs(x) * 1e-6, 1e-6)
        moved = np.asarray(fn({**comps, c: x + h}), dtype="float64")
        out[c] = np.nan_to_num((moved - base) / h)
    return out


def delta_var(fn: Callable[[Mapping[str, np.ndarray]], np.ndarray], comps: Mapping[str, np.ndarray],
              var: Mapping[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """Var(fn(components)) per segment by the delta method: Σ (∂fn/∂c)² Var c, the components taken as
    independent (a component without a noise variance adds none)."""
    grad = gradient(fn, comps, names)
    return sum((grad[c] ** 2 * np.asarray(var.get(c, 0.0), dtype="float64") for c in names),
               np.zeros(np.shape(next(iter(comps.values())))))


@dataclass(frozen=True)
class RatioNoise:
    """Standard deviations of a ratio's rate and mix terms per segment (nan where unknown)."""

    rate: np.ndarray | None
    mix: np.ndarray | None


def ratio_var(n: np.ndarray, d: np.ndarray, var_n: np.ndarray, var_d: np.ndarray,
              cov: np.ndarray | None = None, rate: np.ndarray | None = None) -> np.ndarray:
    """Var(n / d) by the delta method. For a count denominator whose rows hold the numerator's,
    Cov(n, d) = n · Var(d) / d (= n for plain counts): win rate p(1−p)/d, deal size s²/d. For two
    sums, `cov` is Σ n_i d_i over the rows: Σ (n_i − r d_i)² / d² (NRR: the customers that moved).

    `rate`: the rows' spread around that rate instead of their own (the null hypothesis' common rate):
    one Enterprise customer that churned has GRR 0 % and no spread around its own 0 %, but around the
    94 % its segment usually keeps it is one whole customer's worth of noise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = n / d if rate is None else rate
        cov = n * var_d / d if cov is None else cov
        v = (var_n - 2.0 * r * cov + r * r * var_d) / (d * d)
    return np.where(d > 0, np.maximum(v, 0.0), np.nan)


def spread_floor(unit: np.ndarray, rows: np.ndarray, r0: np.ndarray, r1: np.ndarray,
                 min_rows: float = MIN_SPREAD_ROWS) -> np.ndarray:
    """An average amount's per-row variance, at least the segments' typical relative spread times
    the larger of its two means squared.

    Deal sizes spread in proportion to their size (lognormal, σ 0.5-1 in real books): a cell of
    two deals cannot say how much its deals vary, and one $335k deal where three $65k ones were
    read as nine standard errors. The typical coefficient of variation is the median row's (segments
    with at least `min_rows` rows, weighted by their rows: a few bespoke deals do not set the spread
    of three hundred standard ones); judged at the larger mean, a cell whose average jumped is held to
    the spread its new level implies (the null hypothesis keeps the spread relative, not absolute).
    """
    unit = np.asarray(unit, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.fmax(np.abs(np.nan_to_num(r0)), np.abs(np.nan_to_num(r1)))
        mean = (np.abs(np.nan_to_num(r0)) + np.abs(np.nan_to_num(r1))) / 2
        cv2 = unit / (mean * mean)
    typical = typical_spread(cv2, rows, min_rows)
    return unit if typical is None else np.fmax(unit, typical * level * level)


def typical_spread(spread: np.ndarray, rows: np.ndarray, min_rows: float = MIN_SPREAD_ROWS) -> float | None:
    """The spread of the median row: over segments with at least `min_rows` rows and a positive
    spread, weighted by their rows (None when there is no such segment)."""
    spread, rows = np.asarray(spread, dtype="float64"), np.asarray(rows, dtype="float64")
    ok = np.isfinite(spread) & (spread > 0) & (rows >= min_rows)
    if not ok.any():
        return None
    order = np.argsort(spread[ok])
    weight = np.cumsum(rows[ok][order])
    return float(spread[ok][order][np.searchsorted(weight, weight[-1] / 2)])


def binomial_floor(unit: np.ndarray, hits: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A rate of rows among rows (won among decided): its per-row variance at least p̃(1 − p̃), with
    p̃ = (hits + 1) / (rows + 2) over both sides together. At 0 of 1 against 1 of 1 the observed
    p(1 − p) is zero on both sides and any change read as infinite evidence ("Upsell win rate 0 %
    against 100 %" named as a cause); under "nothing changed" both sides share one rate, and a
    handful of rows cannot pin it to 0 or 1 (Laplace's rule of succession)."""
    hits = np.asarray(hits, dtype="float64")
    rows = np.asarray(rows, dtype="float64")
    p = (np.nan_to_num(hits) + 1.0) / (np.nan_to_num(rows) + 2.0)
    return np.fmax(np.asarray(unit, dtype="float64"), p * (1.0 - p))


def exact_z(hits: np.ndarray, rows: np.ndarray, ref_hits: np.ndarray, ref_rows: np.ndarray,
            max_rows: int = EXACT_MAX_ROWS) -> np.ndarray:
    """Per segment, Fisher's exact test of hits/rows now against ref_hits/ref_rows (one-sided mid-p,
    toward the observed change) as a signed z; nan where a side is empty or rows exceed `max_rows`
    (there the normal law is already close).

    A rate of a few rows is skewed: a rep's 0 of 19 won against 33 % before has a chance of 0.0005
    (z 3.3), where the normal law's p(1 − p)/n reads 2.6 standard errors and called it noise. The
    reference's own rows are in the table, so its noise is counted too (unlike a test against a
    known rate)."""
    x1, n1 = np.rint(np.nan_to_num(hits)), np.rint(np.nan_to_num(rows))
    x0, n0 = np.rint(np.nan_to_num(ref_hits)), np.rint(np.nan_to_num(ref_rows))
    out = np.full(len(x1), np.nan)
    use = (n1 > 0) & (n0 > 0) & (n1 <= max_rows) & (x1 >= 0) & (x1 <= n1) & (x0 >= 0) & (x0 <= n0)
    if not use.any():
        return out
    # log k! for every k a table here needs, once: lgamma per term in Python doubled a warm explain
    logfact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, int((n1 + n0)[use].max()) + 1)))))

    def lchoose(n: int, k: np.ndarray) -> np.ndarray:
        return logfact[n] - logfact[k] - logfact[n - k]

    for i in np.flatnonzero(use):
        a, n, b, m = int(x1[i]), int(n1[i]), int(x0[i]), int(n0[i])
        big_n, k = n + m, a + b
        support = np.arange(max(0, n - (big_n - k)), min(k, n) + 1)
        logp = lchoose(k, support) + lchoose(big_n - k, n - support)
        pmf = np.exp(logp - logp.max())
        pmf /= pmf.sum()
        at = pmf[support == a].sum()
        if a * m < b * n:  # fewer hits than the reference's rate says: the lower tail, mid-p
            out[i] = NormalDist().inv_cdf(min(max(pmf[support < a].sum() + at / 2, 1e-300), 0.5))
        elif a * m > b * n:
            out[i] = -NormalDist().inv_cdf(min(max(pmf[support > a].sum() + at / 2, 1e-300), 0.5))
        else:
            out[i] = 0.0
    return out


def rate_z(hits: np.ndarray, rows: np.ndarray, ref_hits: np.ndarray, ref_rows: np.ndarray) -> np.ndarray:
    """`exact_z` where the rows are few, the two-proportion normal z (pooled rate) where they are many."""
    z = exact_z(hits, rows, ref_hits, ref_rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p0 = hits / rows, ref_hits / ref_rows
        p = (hits + ref_hits) / (rows + ref_rows)
        normal = (p1 - p0) / np.sqrt(p * (1.0 - p) * (1.0 / rows + 1.0 / ref_rows))
    return np.where(np.isfinite(z), z, np.where(np.isfinite(normal), normal, np.nan))


@dataclass(frozen=True)
class Run:
    """A change that began before this period: per segment, the z of this period and the `length`
    periods before it pooled against the periods before those (nan where there is no such run), and
    each segment's rate over the periods before the run (its own baseline)."""

    z: np.ndarray
    length: np.ndarray
    base: np.ndarray


def _best_run(periods: int, n: int, max_run: int, each: float,
              test: Callable[[int], tuple[np.ndarray, list[np.ndarray], Callable[[], np.ndarray]]]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per segment, the strongest run and its length (nan / 0 without one). For each run length with
    `MIN_HISTORY` periods before it, `test(run)` gives now's z and each run period's z against the periods
    before the run, and how to get the pooled z; a run counts when every one is `each` out the same way."""
    best, length = np.full(n, np.nan), np.zeros(n, dtype=np.int64)
    for run in range(1, max_run + 1):
        if periods - run < MIN_HISTORY:
            break
        now, earlier, pooled = test(run)
        ok = np.isfinite(now) & (np.abs(now) >= each)
        for zt in earlier:
            ok &= np.isfinite(zt) & (np.sign(zt) == np.sign(now)) & (np.abs(zt) >= each)
        if not ok.any():
            continue
        z = pooled()
        better = ok & np.isfinite(z) & (np.abs(z) > np.abs(np.nan_to_num(best)))
        best, length = np.where(better, z, best), np.where(better, run, length)
    return best, length


def sustained(hits: np.ndarray, rows: np.ndarray, hist_hits: np.ndarray, hist_rows: np.ndarray,
              max_run: int = MAX_RUN, each: float = RUN_EACH_Z) -> Run:
    """A rate that changed one or two periods ago and stayed changed, judged as one change.

    The reference periods are chosen where the node was on plan; one rep among twenty who stopped
    winning in September barely moves the total, so September and October are "on plan" and sit in
    the rep's reference — 8 % won now against 30 % reads 2.6 standard errors, where against the rep's
    own months before September (41 %) three months at 8 % are far out. A run counts only when every
    period of it stands `each` standard errors out the same way as now (a period or two picked for
    being bad by chance rarely are), and the segment's history before it must have `MIN_HISTORY`
    periods. `hist_*`: periods (rows, oldest first) × segments."""
    periods = hist_hits.shape[0] if hist_hits.ndim == 2 else 0

    def test(run: int) -> tuple[np.ndarray, list[np.ndarray], Callable[[], np.ndarray]]:
        before = periods - run
        bx, bn = hist_hits[:before].sum(axis=0), hist_rows[:before].sum(axis=0)
        earlier = [rate_z(hist_hits[t], hist_rows[t], bx, bn) for t in range(before, periods)]
        return rate_z(hits, rows, bx, bn), earlier, lambda: rate_z(
            hits + hist_hits[before:].sum(axis=0), rows + hist_rows[before:].sum(axis=0), bx, bn)

    best, length = _best_run(periods, len(hits), max_run, each, test)
    base = np.full(len(hits), np.nan)
    for run in range(1, max_run + 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = hist_hits[:periods - run].sum(axis=0) / hist_rows[:periods - run].sum(axis=0)
        base = np.where(length == run, rate, base)
    return Run(best, length, base)


def sustained_log(cur: tuple[np.ndarray, np.ndarray, np.ndarray], hist: tuple[np.ndarray, np.ndarray, np.ndarray],
                  max_run: int = MAX_RUN, each: float = RUN_EACH_Z) -> np.ndarray:
    """`sustained` for an average amount, on the log scale (`log_z`): this period and a run of one or two
    before it, each of them `each` standard errors out the same way, pooled against the periods before
    the run and widened by how much the segment moved in those only. `cur`: (Σ ln x, Σ (ln x)², n) per
    segment now; `hist`: the same per earlier period (rows, oldest first). The signed z, nan without a
    run. A discount that began two months ago sat in the reference months that were on plan in total."""
    periods = hist[0].shape[0] if hist[0].ndim == 2 else 0

    def test(run: int) -> tuple[np.ndarray, list[np.ndarray], Callable[[], np.ndarray]]:
        before = periods - run
        base = tuple(h[:before].sum(axis=0) for h in hist)
        earlier = [log_z(tuple(h[t] for h in hist), base, min_rows=2.0)  # type: ignore[arg-type]
                   for t in range(before, periods)]
        pooled = tuple(c + h[before:].sum(axis=0) for c, h in zip(cur, hist, strict=True))
        return log_z(cur, base), earlier, lambda: log_z(  # type: ignore[arg-type]
            pooled, base, history=(hist[0][:before], hist[2][:before]),  # type: ignore[arg-type]
            widen=math.sqrt(1.0 / (run + 1) + 1.0 / before))

    return _best_run(periods, len(cur[2]), max_run, each, test)[0]


def log_z(cur: tuple[np.ndarray, np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray, np.ndarray],
          min_rows: float = MIN_SPREAD_ROWS, history: tuple[np.ndarray, np.ndarray] | None = None,
          k: int = 1, widen: float | None = None) -> np.ndarray:
    """Per segment, the two-sample z of mean ln(amount) now against the reference, from (Σ ln x,
    Σ (ln x)², n) on each side, the spread pooled (the null: one distribution), Student's t turned into
    a z (Fisher's approximation), widened by `history` (Σ ln x and n per earlier period and segment)
    as every other effect is by its own (`combine`); nan where a side has fewer than `min_rows`
    amounts — three deals cannot say what their spread is, and the raw amounts' noise judges them.

    Deal sizes are lognormal-like: a discount takes a share off every deal, which the log scale sees
    whole, while the mean of the raw amounts drowns it in one whale's noise. One whale, the other
    way, moves the raw mean and barely the log one, so the log test never names it."""
    (l1, q1, n1), (l0, q0, n0) = ([np.asarray(a, dtype="float64") for a in side] for side in (cur, ref))
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, m0 = l1 / n1, l0 / n0
        ss = np.maximum(q1 - n1 * m1 * m1, 0.0) + np.maximum(q0 - n0 * m0 * m0, 0.0)
        s2 = ss / (n1 + n0 - 2.0)
        # a cell of a few deals cannot say how much sizes spread: at least the typical segment's
        # (weighted by rows, those with MIN_SPREAD_ROWS or more), as `spread_floor` does on raw amounts
        typical = typical_spread(s2, n1 + n0)
        if typical is not None:
            s2 = np.fmax(s2, typical)
        t = (m1 - m0) / np.sqrt(s2 * (1.0 / n1 + 1.0 / n0))
        z = student_z(t, n1 + n0 - 2.0)
        if history is not None:  # widened by how much the segment's mean ln(amount) usually moves
            hl, hn = (np.asarray(a, dtype="float64") for a in history)
            usual, count = usual_sd(np.where(hn > 0, hl / hn, np.nan))
            counted = np.abs(m1 - m0) / np.abs(z)
            spread = math.sqrt(1.0 + 1.0 / max(k, 1)) if widen is None else widen
            sd = combine(np.where(np.isfinite(counted) & (counted > 0), counted, np.nan), (usual * spread, count))
            z = np.where(np.isfinite(sd) & (sd > 0), (m1 - m0) / sd, z) if sd is not None else z
    return np.where((n1 >= min_rows) & (n0 >= min_rows) & np.isfinite(z), z, np.nan)


def student_z(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Student's t with `df` degrees of freedom as the z of the same tail (Fisher's approximation).

    Two averages of a handful of rows know their spread badly: five similar small deals against one
    large deal read six standard errors on the normal law, yet with 4 degrees of freedom that is a
    chance of 1 in 150 (z 2.4), not one in a billion."""
    t = np.asarray(t, dtype="float64")
    df = np.maximum(np.asarray(df, dtype="float64"), 1.0)
    return t * (1.0 - 1.0 / (4.0 * df)) / np.sqrt(1.0 + t * t / (2.0 * df))


def share_var(d: np.ndarray, var_d: np.ndarray) -> np.ndarray:
    """Var(d_s / Σd) per segment: multinomial w(1−w)/D for counts, in general
    [(1−w)² Var d_s + w² Var(rest)] / D²."""
    total, total_var = float(d.sum()), float(var_d.sum())
    if total <= 0:
        return np.full(len(d), np.nan)
    w = d / total
    return ((1.0 - w) ** 2 * var_d + w * w * np.maximum(total_var - var_d, 0.0)) / (total * total)
