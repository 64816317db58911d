"""Engine benchmark: 1M deals (+ subscriptions) — ingest and full-tree evaluation.

Prints ratios against baselines measured in the same run, because wall times on a shared
machine are noisy but ratios are not:
  ingest   vs a raw DuckDB `CREATE TABLE AS SELECT * FROM read_csv(...)` of the same files
  evaluate vs a straightforward pandas implementation of the same metrics (tests/reference.py)

Usage: python benchmarks/bench_engine.py [--deals 1000000] [--months 24]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import reference  # noqa: E402

from kpitree import evaluate as ev  # noqa: E402
from kpitree.demo import generate  # noqa: E402
from kpitree.ingest import ingest  # noqa: E402
from kpitree.periods import parse_period, trailing  # noqa: E402
from kpitree.tree import parse_yaml  # noqa: E402
from kpitree.workspace import Workspace  # noqa: E402

TREE = """
name: bench
nodes:
  - {id: arr, level: 1, metric: arr, owner: a, target: 1, children: [new_arr, nrr, open_pipeline]}
  - {id: new_arr, level: 2, metric: new_arr, owner: a, target: 1,
     children: [new_business_arr, expansion_arr, win_rate, avg_deal_size, sales_cycle_days, pipeline_velocity,
                closed_deals, opportunities_created]}
  - {id: nrr, level: 2, metric: nrr, owner: a, target: 1,
     children: [grr, expansion_rate, logo_churn_rate, mrr_churn, mrr_new, active_customers]}
  - {id: open_pipeline, level: 2, metric: open_pipeline, owner: a, target: 1}
  - {id: new_business_arr, level: 3, metric: new_business_arr, owner: a, target: 1}
  - {id: expansion_arr, level: 3, metric: expansion_arr, owner: a, target: 1}
  - {id: win_rate, level: 3, metric: win_rate, owner: a, target: 1}
  - {id: avg_deal_size, level: 3, metric: avg_deal_size, owner: a, target: 1}
  - {id: sales_cycle_days, level: 3, metric: sales_cycle_days, owner: a, target: 1}
  - {id: pipeline_velocity, level: 3, metric: pipeline_velocity, owner: a, target: 1}
  - {id: closed_deals, level: 3, metric: closed_deals, owner: a, target: 1}
  - {id: opportunities_created, level: 3, metric: opportunities_created, owner: a, target: 1}
  - {id: grr, level: 3, metric: grr, owner: a, target: 1}
  - {id: expansion_rate, level: 3, metric: expansion_rate, owner: a, target: 1}
  - {id: logo_churn_rate, level: 3, metric: logo_churn_rate, owner: a, target: 1}
  - {id: mrr_churn, level: 3, metric: mrr_churn, owner: a, target: 1}
  - {id: mrr_new, level: 3, metric: mrr_new, owner: a, target: 1}
  - {id: active_customers, level: 3, metric: active_customers, owner: a, target: 1}
"""


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args()

    probe = generate(seed=3, scale=1.0, tables=["deals", "subscriptions"])
    scale = args.deals / len(probe.tables["deals"])
    t_gen, data = timed(lambda: generate(seed=3, scale=scale, tables=["deals", "subscriptions"]))
    deals, subs = data.tables["deals"], data.tables["subscriptions"]
    print(f"generated {len(deals):,} deals and {len(subs):,} subscription rows in {t_gen:.1f} s (scale {scale:.1f})")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = [tmp / "deals.csv", tmp / "subscriptions.csv"]
        deals.to_csv(files[0], index=False)
        subs.to_csv(files[1], index=False)
        size = sum(f.stat().st_size for f in files) / 1e6
        print(f"CSV files: {size:.0f} MB")

        def raw_read() -> None:
            path = tmp / "raw.duckdb"
            path.unlink(missing_ok=True)
            con = duckdb.connect(str(path))
            for f in files:
                con.execute(f"CREATE TABLE {f.stem} AS SELECT * FROM read_csv('{f}')")
            con.close()

        def our_ingest() -> Workspace:
            ws = Workspace(tmp / "ws", create=True)
            ingest(ws, files)
            return ws

        t_raw, _ = timed(raw_read, repeat=2)
        t_ing, ws = timed(our_ingest, repeat=2)
        print(f"ingest: {t_ing:.2f} s vs raw DuckDB read_csv {t_raw:.2f} s → ratio {t_ing / t_raw:.2f}× "
              f"(target ≤ 1.5×)")

        tree, problems = parse_yaml(TREE)
        assert tree is not None and not [p for p in problems if p.severity == "error"], problems
        period = parse_period("2026-10")
        months = trailing(period, args.months)

        def evaluate_once():
            ev._CACHE.clear()
            return ev.evaluate_tree(ev.Engine(ws), tree, period)

        def evaluate_months():
            ev._CACHE.clear()
            engine = ev.Engine(ws)
            with engine.session():
                engine.prefetch_nodes(list(tree.nodes), months)  # what a trend view of every node runs
                return {n.id: engine.values(n, months) for n in tree.nodes}

        t_one, _ = timed(evaluate_once, repeat=3)
        t_all, ours = timed(evaluate_months, repeat=2)

        d, s = reference.prepare(deals, subs)

        def pandas_months():
            out = {}
            for p in months:
                out[p.key] = {**reference.deal_metrics(d, p.start, p.end), **reference.revenue_metrics(s, p.start, p.end)}
            return out

        t_pd, theirs = timed(pandas_months)
        k = months[-1].key
        assert abs(ours["new_arr"][k] - theirs[k]["new_arr"]) < 0.01
        assert abs(ours["arr"][k] - theirs[k]["arr"]) < 0.01
        print(f"evaluate one period ({len(tree.nodes)} nodes, cold cache): {t_one * 1000:.0f} ms (target < 500 ms)")
        print(f"evaluate {args.months} months × {len(tree.nodes)} nodes: {t_all:.2f} s vs pandas {t_pd:.2f} s "
              f"→ {t_pd / t_all:.1f}× faster (target ≥ 5×)")


if __name__ == "__main__":
    main()
