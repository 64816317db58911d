"""Planted cause sets in an additive amount, scored per element (F1): kpitree.localise beside
RiskLoc (Kalander, arXiv 2205.10004) and Adtributor (Bhagwan et al., NSDI 2014) on the same cases.

Each case is one month of won-deal amounts over 8 reps × 3 segments × 6 channels (144 leaves).
A leaf's deal count is Poisson with a rate from rep, segment and channel factors (many leaves see
0-3 deals a month); deal sizes are lognormal with σ drawn in [0.5, 1.0] per case around a
segment's typical size. Six earlier months of the same business are the history: the expected
amount of a leaf is its six-month mean (a forecast with its own error, as in practice), and the
variance the caller hands in is what a caller can compute from that history: (1 + 1/6) ×
(mean deal count, at least 0.5) × the segment's mean squared deal size.

Planted anomalies change the deal rate or the deal size of one element by a factor chosen so the
element's expected change is 4-9 standard errors of its noise (below that no method can tell a
cause from luck, and the case would measure the dice), and only where that takes at most a
doubling or a fall of at most 80 % (a business change, not a freak): a rep, a segment, a channel, a pair
(segment × channel, rep × channel, rep × segment) or one leaf (a rep's deals in one segment from
one channel, picked among the busier leaves). Cases: 1/6 have no cause, 5/12 one element,
5/12 two elements at independent depths. A named element counts when its dimensions and values
equal a planted element's exactly (a segment named for a planted segment × channel is wrong).

    python benchmarks/bench_causesets.py [--cases 60] [--seed 1000]

Seeds: development used seeds 1-80 (--seed 1); reported figures use --seed 1000 (cases seeded
1000, 1001, ...), never looked at while tuning. `--scales` sets the deal volume: at scale 1 (about
$12M a month, 0-5 deals a leaf) only depth-1 and depth-2 elements can carry a visible change, at
scale 10 and 100 every depth is planted.

RiskLoc here is written from the paper (deviation 2(f−v)/(f+v), cutoff from the sixth smallest and
largest deviation, weights, high risk − low risk ≥ 0.5, explanatory-power threshold 2 %), without
its optional element pruning. It does what the paper reports on low-noise data (scale 100) and
names noise where leaves hold a few Poisson deals.

Held-out figures (2026-12-07, seeds 1000-1059, element F1 / precision / recall, cases without a
cause that named something):
    scale 1:   localise 0.809 / 0.851 / 0.770, 0/10   RiskLoc 0.000 (722 false)  Adtributor 0.323
    scale 10:  localise 0.884 / 0.953 / 0.824, 0/14   RiskLoc 0.036              Adtributor 0.197
    scale 100: localise 0.992 / 1.000 / 0.985, 0/16   RiskLoc 0.619 / 0.968 / 0.455   Adtributor 0.154
localise takes 10-13 ms of CPU a case with history, 5-7 ms without.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kpitree.localise import localise  # noqa: E402

DIMS = ("rep", "segment", "channel")
REPS = ("Avery", "Blake", "Casey", "Devon", "Emery", "Finley", "Gray", "Kendall")
SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
CHANNELS = ("Inbound", "Outbound", "Partner", "Events", "Referral", "Marketplace")
SIZE = {"SMB": 9_000.0, "Mid-Market": 35_000.0, "Enterprise": 120_000.0}
RATE = {"SMB": 4.0, "Mid-Market": 2.0, "Enterprise": 0.7}
HISTORY = 6

Where = tuple[tuple[str, str], ...]


@dataclass
class Case:
    seed: int
    cells: pd.DataFrame        # rep, segment, channel, actual, expected, variance
    history: pd.DataFrame      # period + the same columns
    planted: list[Where]


def _grid() -> pd.DataFrame:
    idx = pd.MultiIndex.from_product([REPS, SEGMENTS, CHANNELS], names=list(DIMS))
    return idx.to_frame(index=False)


def _month(rng: np.random.Generator, lam: np.ndarray, mu: np.ndarray, sigma: float,
           size_factor: np.ndarray) -> np.ndarray:
    """Amount per leaf: a Poisson number of lognormal deals (vectorised over all deals)."""
    counts = rng.poisson(lam)
    leaf = np.repeat(np.arange(len(lam)), counts)
    deals = rng.lognormal(mu[leaf], sigma) * size_factor[leaf]
    return np.bincount(leaf, weights=deals, minlength=len(lam))


def make_case(seed: int, scale: float = 1.0) -> Case:
    rng = np.random.default_rng(seed)
    grid = _grid()
    n = len(grid)
    sigma = float(rng.uniform(0.5, 1.0))
    rep_f = dict(zip(REPS, rng.lognormal(0.0, 0.4, len(REPS)), strict=True))
    ch_f = dict(zip(CHANNELS, rng.lognormal(0.0, 0.5, len(CHANNELS)), strict=True))
    lam = (grid["segment"].map(RATE) * grid["rep"].map(rep_f) * grid["channel"].map(ch_f)).to_numpy()
    lam = scale * lam * rng.lognormal(0.0, 0.3, n)  # leaf-level idiosyncrasy
    size = grid["segment"].map(SIZE).to_numpy()
    mu = np.log(size) - sigma**2 / 2  # lognormal with mean = the segment's typical size
    ones = np.ones(n)
    hist = np.stack([_month(rng, lam, mu, sigma, ones) for _ in range(HISTORY)])
    expected = hist.mean(axis=0)
    msq = size**2 * np.exp(sigma**2)  # E[X²] of a lognormal with mean `size`
    # What a caller can compute: the leaf's usual deal count (amount / typical size, at least 0.5)
    # × the mean squared deal size, plus the forecast's own error (a six-month mean).
    variance = (1 + 1 / HISTORY) * np.maximum(expected / size, 0.5) * msq

    n_planted = int(rng.choice([0, 1, 2], p=[1 / 6, 5 / 12, 5 / 12]))
    planted: list[Where] = []
    lam_now, size_now = lam.copy(), ones.copy()
    used = np.zeros(n, dtype=bool)
    depth = int(rng.integers(1, 4))
    for attempt in range(400):
        if len(planted) == n_planted:
            break
        if attempt % 40 == 39:  # this depth has no element big enough for a visible change
            depth = int(rng.integers(1, 4))
        cub = [DIMS[i] for i in sorted(rng.choice(3, size=depth, replace=False))]
        leaf = int(rng.integers(n))
        where = tuple((d, str(grid.at[leaf, d])) for d in cub)
        mask = np.logical_and.reduce([grid[d].to_numpy() == v for d, v in where])
        if (mask & used).any():
            continue
        delta = rng.uniform(-0.7, -0.3) if rng.random() < 0.5 else rng.uniform(0.4, 1.0)
        mean_amt = float((lam * size)[mask].sum())
        if abs(delta) * mean_amt < 4.0 * np.sqrt(variance[mask].sum()):
            continue  # under 4 standard errors nobody can tell this change from luck
        if rng.random() < 0.5:
            lam_now[mask] *= 1 + delta  # more or fewer deals
        else:
            size_now[mask] *= 1 + delta  # bigger or smaller deals
        used |= mask
        planted.append(where)
        depth = int(rng.integers(1, 4))
    actual = _month(rng, lam_now, mu, sigma, size_now)
    cells = grid.assign(actual=actual, expected=expected, variance=variance)
    # History as the caller would build it: each earlier month against the mean of the others.
    others = (hist.sum(axis=0) - hist) / (HISTORY - 1)
    h_var = (1 + 1 / (HISTORY - 1)) * np.maximum(others / size, 0.5) * msq
    history = pd.concat([grid.assign(period=f"h{p}", actual=hist[p], expected=others[p],
                                     variance=h_var[p]) for p in range(HISTORY)], ignore_index=True)
    return Case(seed, cells, history, planted)


# --- RiskLoc (Kalander 2022), written from the paper's description --------------------------------

def riskloc(cells: pd.DataFrame, dims: list[str], *, risk_threshold: float = 0.5,
            pep_threshold: float = 0.02, n_remove: int = 5) -> list[Where]:
    """Weighted-risk search: leaves split into abnormal/normal by a cutoff on the relative
    deviation 2(f−v)/(f+v), weighted by distance from the cutoff; layer by layer, the element with
    the highest explanatory power whose risk (weighted abnormal share minus a proportional-change
    term) clears the threshold is taken, its leaves removed, and the search repeats while the
    abnormal leaves still hold ≥ 2 % of the explanatory power."""
    df = cells[dims].copy()
    real = cells["actual"].to_numpy(float)
    pred = cells["expected"].to_numpy(float)
    gap_total = real.sum() - pred.sum()
    ep = (real - pred) / gap_total if gap_total != 0 else np.zeros(len(real))
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.nan_to_num(2 * (pred - real) / (pred + real))
    uniq = np.unique(dev)
    lo = uniq[: n_remove + 1].max()
    hi = uniq[-(n_remove + 1):].min()
    cutoff = -min(lo, hi, key=abs)
    abnormal = dev > cutoff if cutoff >= 0 else dev < cutoff
    weight = np.abs(cutoff - dev)
    weight[(real == 0) & (pred == 0)] = 0
    weight = np.where(abnormal, np.abs(dev), weight).clip(max=1.0)
    if ep[abnormal].sum() < 0:
        ep = -ep
    threshold = ep[abnormal].sum() * pep_threshold
    df = df.assign(ep=ep, ab=abnormal.astype(int), w=weight, real=real, pred=pred, dev=dev)
    found: list[Where] = []
    while len(df) and df.loc[df["ab"] == 1, "ep"].sum() >= threshold:
        best = None
        for layer in range(1, len(dims) + 1):
            best_ep = threshold
            for cub in combinations(dims, layer):
                r = _risk_table(df, list(cub))
                r = r[(r["ab"] > 0) & (r["ep"] > best_ep) & (r["risk"] >= risk_threshold)]
                if len(r):  # the highest-EP element of this cuboid that is risky enough
                    top = r["ep"].idxmax()
                    key = top if isinstance(top, tuple) else (top,)
                    best, best_ep = tuple(zip(cub, map(str, key), strict=True)), r.at[top, "ep"]
            if best is not None:
                break
        if best is None:
            break
        found.append(best)
        keep = ~np.logical_and.reduce([df[d].to_numpy() == v for d, v in best])
        df = df[keep]
    return found


def _risk_table(df: pd.DataFrame, cub: list[str]) -> pd.DataFrame:
    """Per element of a cuboid: EP, abnormal count, and risk = high − low (vectorised)."""
    nz = (df["real"] != 0) & (df["pred"] != 0)
    t = df.assign(w_ab=df["w"] * df["ab"], w_no=df["w"] * (1 - df["ab"]),
                  r_nz=df["real"].where(nz, 0.0), p_nz=df["pred"].where(nz, 0.0),
                  adev=df["dev"].abs().where(nz, 0.0), nz=nz.astype(int))
    g = t.groupby(cub)
    agg = g[["ep", "ab", "w_ab", "w_no", "r_nz", "p_nz", "adev", "nz"]].sum()
    high = agg["w_ab"] / (agg["w_ab"] + agg["w_no"] + 1)
    # low risk: how well a proportional change of the element's forecast fits its leaves
    ratio = (g["r_nz"].transform("sum") / g["p_nz"].transform("sum")).fillna(0.0)
    aa = t["p_nz"] * ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.nan_to_num(2 * (aa - t["r_nz"]) / (aa + t["r_nz"])).__abs__()
    d_sum = pd.Series(np.where(nz, d, 0.0), index=t.index).groupby([t[c] for c in cub]).sum()
    w1 = d_sum / agg["nz"].where(agg["nz"] > 0)
    w2 = agg["adev"] / agg["nz"].where(agg["nz"] > 0)
    low = (w1 / w2.where(w2 != 0)).fillna(0.0)
    return agg.assign(risk=high - low)


# --- Adtributor (Bhagwan et al. 2014): per dimension, by surprise ---------------------------------

def adtributor(cells: pd.DataFrame, dims: list[str], *, t_eep: float = 0.1, t_ep: float = 0.67,
               k: int = 3) -> list[Where]:
    """Per dimension, values with explanatory power ≥ 10 % taken by surprise (JS divergence)
    until they explain 67 %; the dimensions with the most surprise (up to k) are reported.
    It only ever names single-dimension elements."""
    total_a, total_f = cells["actual"].sum(), cells["expected"].sum()
    gap = total_a - total_f
    if gap == 0:
        return []
    cands = []
    for d in dims:
        g = cells.groupby(d)[["actual", "expected"]].sum()
        p = g["expected"] / total_f
        q = g["actual"] / total_a
        with np.errstate(divide="ignore", invalid="ignore"):
            sp = np.nan_to_num(0.5 * (p * np.log(2 * p / (p + q)) + q * np.log(2 * q / (p + q))))
        ep = (g["actual"] - g["expected"]) / gap
        order = np.argsort(-np.asarray(sp))
        chosen, explained, surprise = [], 0.0, 0.0
        for i in order:
            if ep.iloc[i] > t_eep:
                chosen.append(((d, str(g.index[i])),))
                explained += ep.iloc[i]
                surprise += float(np.asarray(sp)[i])
                if explained > t_ep:
                    break
        if chosen and explained > t_ep:
            cands.append((surprise, chosen))
    cands.sort(key=lambda c: -c[0])
    return [w for _, ws in cands[:k] for w in ws][:k]


def ours(case: Case) -> list[Where]:
    loc = localise(case.cells, list(DIMS), history=case.history)
    return [el.where for el in loc.elements]


def ours_no_history(case: Case) -> list[Where]:
    return [el.where for el in localise(case.cells, list(DIMS)).elements]


METHODS = {
    "localise": ours,
    "localise (no history)": ours_no_history,
    "RiskLoc": lambda c: riskloc(c.cells, list(DIMS)),
    "RiskLoc (first 3)": lambda c: riskloc(c.cells, list(DIMS))[:3],
    "Adtributor": lambda c: adtributor(c.cells, list(DIMS)),
}


def score(cases: list[Case], method) -> dict[str, float]:
    tp = fp = fn = 0
    clean_named = 0
    cpu = 0.0
    misses: list[str] = []
    for case in cases:
        t0 = time.process_time()
        named = {tuple(w) for w in method(case)}
        cpu += time.process_time() - t0
        truth = set(case.planted)
        tp += len(named & truth)
        fp += len(named - truth)
        fn += len(truth - named)
        clean_named += bool(not truth and named)
        if named != truth:
            misses.append(f"seed {case.seed}: planted {sorted(truth)} named {sorted(named)}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn,
            "clean_named": clean_named, "cpu_ms": 1000 * cpu / len(cases), "misses": misses}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1000, help="first seed (development used 1-199)")
    ap.add_argument("--scales", default="1,10,100",
                    help="deal volumes to run (1: about 500 deals a month over 144 leaves)")
    ap.add_argument("--show", default="", help="print the misses of this method")
    args = ap.parse_args(argv)
    for scale in (float(x) for x in args.scales.split(",")):
        cases = [make_case(args.seed + i, scale) for i in range(args.cases)]
        n_clean = sum(not c.planted for c in cases)
        n_el = sum(len(c.planted) for c in cases)
        depths = np.bincount([len(w) for c in cases for w in c.planted], minlength=4)[1:]
        deals = float(np.mean([c.cells["expected"].sum() for c in cases])) / 1e6
        print(f"\nscale {scale:g}: {len(cases)} cases (seeds {args.seed}-{args.seed + len(cases) - 1}), "
              f"{n_clean} without a cause, {n_el} planted elements (depth 1/2/3: "
              f"{'/'.join(map(str, depths))}), expected amount ≈ ${deals:.1f}M a month")
        print(f"{'method':24} {'F1':>6} {'prec':>6} {'recall':>6}  tp  fp  fn  named-in-clean  ms/case (CPU)")
        for name, method in METHODS.items():
            r = score(cases, method)
            print(f"{name:24} {r['f1']:6.3f} {r['precision']:6.3f} {r['recall']:6.3f} {r['tp']:3d} "
                  f"{r['fp']:3d} {r['fn']:3d}  {r['clean_named']:3d}/{n_clean:<3d}        {r['cpu_ms']:7.1f}",
                  flush=True)
            if name == args.show:
                print("\n".join(r["misses"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
