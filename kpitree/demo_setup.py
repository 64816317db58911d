"""The `demo` command: demo data, loaded once to derive a plan, and a tree coloured by it.

Targets come from the demo's own pre-problem history (`plan.plan_targets`), so the tree turns
red where the planted problems bite and nowhere it would not in a real business.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

from .bridge import chain_targets
from .demo import generate, write_demo
from .evaluate import Engine
from .ingest import ingest
from .periods import Grain, period_containing
from .plan import plan_targets
from .tree import load_tree, save_tree
from .workspace import Workspace

TEMPLATE = Path(__file__).resolve().parent.parent / "data" / "trees" / "revops.yaml"


def write_demo_with_tree(out: Path, *, seed: int = 7, scale: float = 1.0, compress: bool = False,
                         template: Path = TEMPLATE) -> dict:
    """Writes the tables, scenario.json and tree.yaml (targets from history) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    data = generate(seed=seed, scale=scale)
    paths = write_demo(data, out, compress=compress)
    tables = [p for p in paths if p.name != "scenario.json"]
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws", create=True)
        ingest(ws, tables)
        engine = Engine(ws)
        first = min(date.fromisoformat(p.since) for p in data.problems)
        baseline_end = period_containing(first, Grain.MONTH).previous()
        through = period_containing(data.as_of, Grain.MONTH).shift(2)
        tree = plan_targets(engine, load_tree(template), baseline_end, through)
        # ARR's bridge over its opening balance keeps its identity in the plan (see kpitree.bridge)
        tree = chain_targets(tree, baseline_end)
    tree_path = out / "tree.yaml"
    save_tree(tree, tree_path)
    return {
        "out": str(out),
        "rows": {name: len(frame) for name, frame in data.tables.items()},
        "files": [str(p) for p in paths],
        "tree": str(tree_path),
        "problems": [json.loads(json.dumps(p.__dict__)) for p in data.problems],
    }
