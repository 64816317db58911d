"""Speed of `explain_node` at 1M deals, against a plain pandas groupby doing the same segment split.

Builds (or reuses, with --workspace) a workspace of synthetic deals, then times, in one run:

- explain: `explain_node` for New business ARR (= closed deals × win rate × deal size, split over
  owner, segment and channel), cold (empty caches, as after a data load) and warm (the app's
  second click);
- pandas: the same split done the plain way on a DataFrame already in memory — won amount, won
  and decided deals per owner / segment / channel for the month and the previous one — i.e. only
  the segment table, none of the attribution, ranking or red path.

    python benchmarks/bench_explain.py [--deals 1000000] [--workspace DIR] [--repeat 5]

prints the timings and the ratio explain / pandas.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kpitree import evaluate  # noqa: E402
from kpitree import explain as explain_module  # noqa: E402
from kpitree.evaluate import Engine  # noqa: E402
from kpitree.explain import explain_node  # noqa: E402
from kpitree.ingest import load_frames  # noqa: E402
from kpitree.periods import parse_period  # noqa: E402
from kpitree.tree import Target, Tree, parse_yaml  # noqa: E402
from kpitree.workspace import Workspace  # noqa: E402

AS_OF = "2026-11-20"
PERIOD = "2026-10"
DIMENSIONS = ("owner", "segment", "channel")
TREE = """
name: bench
grain: month
dimensions: [owner, segment, channel]
nodes:
  - {id: new_business_arr, label: New business ARR, level: north_star, metric: new_business_arr, owner: CRO,
     target: 1, formula: new_business_arr = closed_new_deals * win_rate * avg_deal_size,
     children: [closed_new_deals, win_rate, avg_deal_size]}
  - {id: closed_new_deals, label: Closed new deals, level: lever, metric: closed_deals, filter: {deal_type: new},
     owner: Ops, target: 1}
  - {id: win_rate, label: Win rate (new), level: lever, metric: win_rate, filter: {deal_type: new}, owner: Sales,
     target: 1}
  - {id: avg_deal_size, label: Average deal size (new), level: lever, metric: avg_deal_size,
     filter: {deal_type: new}, owner: Pricing, target: 1}
"""


def synthetic_deals(n: int, seed: int = 1) -> pd.DataFrame:
    """n deals over ~3 years, 40 reps, 3 segments, 5 channels; one rep's win rate collapses in October."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 1030, n), unit="D")
    close = created + pd.to_timedelta(rng.gamma(2, 25, n).astype(int) + 1, unit="D")
    owners = np.array([f"Rep {i:02d}" for i in range(40)])
    owner = owners[rng.integers(0, 40, n)]
    won_p = np.where((owner == "Rep 07") & (close >= pd.Timestamp("2026-10-01")), 0.05, 0.3)
    status = np.where(close > pd.Timestamp(AS_OF), "open", np.where(rng.random(n) < won_p, "won", "lost"))
    return pd.DataFrame({
        "deal_id": np.char.add("D", np.arange(n).astype(str)),
        "account_id": np.char.add("A", rng.integers(0, 200_000, n).astype(str)),
        "owner": owner,
        "created_date": created.strftime("%Y-%m-%d"),
        "close_date": close.strftime("%Y-%m-%d"),
        "stage": "x",
        "status": status,
        "amount": rng.lognormal(10, 0.7, n).round(0),
        "deal_type": np.where(rng.random(n) < 0.8, "new", "expansion"),
        "segment": np.array(["SMB", "Mid-Market", "Enterprise"])[rng.integers(0, 3, n)],
        "channel": np.array(["Organic", "Paid Search", "Outbound", "Partner", "Events"])[rng.integers(0, 5, n)],
    })


def pandas_split(deals: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The plain way: filter the two months, group by each dimension, sum won amount and counts."""
    d = deals[(deals["deal_type"] == "new") & (deals["close_date"] >= "2026-09-01") & (deals["close_date"] <= "2026-10-31")]
    d = d.assign(month=d["close_date"].str[:7], won=d["status"] == "won", decided=d["status"].isin(["won", "lost"]),
                 won_amount=np.where(d["status"] == "won", d["amount"], 0.0))
    out = {}
    for dim in DIMENSIONS:
        g = d.groupby(["month", dim]).agg(won=("won", "sum"), decided=("decided", "sum"), amount=("won_amount", "sum"))
        g["win_rate"] = g["won"] / g["decided"]
        g["avg_deal_size"] = g["amount"] / g["won"]
        out[dim] = g
    return out


def planned(engine: Engine, tree: Tree) -> Tree:
    """Every month's target = September's value: October's collapse of one rep turns it red."""
    sep = parse_period("2026-09")
    nodes = []
    for node in tree.nodes:
        value = engine.values(node, [sep])[sep.key]
        by_period = tuple((k, value) for k in ("2026-07", "2026-08", "2026-09", "2026-10"))
        nodes.append(replace(node, target=Target(value=value, by_period=by_period)))
    return replace(tree, nodes=tuple(nodes))


def clear_caches() -> None:
    evaluate._CACHE.clear()
    explain_module._RESULTS.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--workspace", help="reuse (or create) this workspace instead of a temporary one")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    tree, problems = parse_yaml(TREE, "bench tree")
    assert tree is not None, problems
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workspace) if args.workspace else Path(tmp) / "ws"
        deals = synthetic_deals(args.deals)
        if not (root / "kpitree.duckdb").exists() and not any(root.glob("*.duckdb")):
            started = time.perf_counter()
            ws = Workspace(root, create=True)
            load_frames(ws, {"deals": deals})
            settings = ws.settings()
            settings.as_of = AS_OF
            ws.save_settings(settings)
            print(f"loaded {args.deals:,} deals in {time.perf_counter() - started:.1f} s")
        engine = Engine(Workspace(root))
        engine.coverage("deals")  # once per engine, as in the app
        tree = planned(engine, tree)

        cold, warm, walk, split = [], [], [], []
        warm_cpu, walk_warm_cpu = [], []
        result = None
        for _ in range(args.repeat):
            clear_caches()
            t = time.perf_counter()
            result = explain_node(engine, tree, "new_business_arr", PERIOD, causes=False)
            cold.append(time.perf_counter() - t)
            t, c = time.perf_counter(), time.process_time()
            explain_node(engine, tree, "new_business_arr", PERIOD, causes=False)
            warm.append(time.perf_counter() - t)
            warm_cpu.append(time.process_time() - c)
            clear_caches()
            t = time.perf_counter()
            explain_node(engine, tree, "new_business_arr", PERIOD)
            walk.append(time.perf_counter() - t)
            c = time.process_time()
            explain_node(engine, tree, "new_business_arr", PERIOD)
            walk_warm_cpu.append(time.process_time() - c)
            t = time.perf_counter()
            pandas_split(deals)
            split.append(time.perf_counter() - t)
    med = statistics.median
    assert result is not None
    print(f"explain New business ARR over {', '.join(DIMENSIONS)} at {args.deals:,} deals "
          f"(median of {args.repeat}): cold {med(cold) * 1000:.0f} ms, warm {med(warm) * 1000:.0f} ms")
    print(f"… warm, CPU seconds (time.process_time; the machine is shared): {med(warm_cpu):.3f} s")
    print(f"… with the walk over every cause (cold): {med(walk) * 1000:.0f} ms; warm CPU {med(walk_warm_cpu):.3f} s")
    print(f"pandas groupby, same segment split, data already in memory: {med(split) * 1000:.0f} ms")
    print(f"ratio explain / pandas: cold {med(cold) / med(split):.2f}×, warm {med(warm) / med(split):.2f}×")
    print("red path: " + " → ".join(s.id for s in result.red_path)
          + (f"; top segment {result.red_path[-1].top_segment.segment}" if result.red_path[-1].top_segment else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
