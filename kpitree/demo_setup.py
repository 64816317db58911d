"""The `demo` command: demo data, loaded once to derive a plan, and a tree coloured by it.

Targets come from the demo's own pre-problem history (`plan.plan_targets`), so the tree turns
red where the planted problems bite and nowhere it would not in a real business; `chain_targets`
then keeps every formula of the tree on them (ARR's bridge, New business ARR's product, NRR's sum),
in every month and at every grain, so against target a gap splits over the children with nothing
left over.

The templates that carry the demo's plan (`PLANNED_TEMPLATES`) get it from `demo_plan` too:
`python -m kpitree.demo_setup` rewrites their targets — and only their targets — from the shipped
demo files, so the plan a template shows is the one this code makes from the data `make run` loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from .bridge import chain_targets
from .demo import generate, write_demo
from .evaluate import Engine
from .ingest import ingest
from .periods import Grain, period_containing
from .plan import plan_targets
from .tree import Tree, load_tree, save_tree
from .workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "data" / "trees" / "revops.yaml"
DEMO_DIR = ROOT / "data" / "demo"
# The templates whose targets are the demo's plan (the others keep their own numbers).
PLANNED_TEMPLATES = tuple(ROOT / "data" / "trees" / f"{name}.yaml"
                          for name in ("revops", "team_executive", "team_customer_success"))


def demo_plan(engine: Engine, template: Path | Tree, scenario: Mapping) -> Tree:
    """The template with the demo's plan: each node's history up to the month before the first planted
    problem, carried on to two months after the data's last day, and every formula kept on it.

    `scenario` is the demo's scenario (`DemoData.scenario()`, or scenario.json): its problems' start
    dates and its as-of day. The history ends before the problems, so they show up against the plan.
    A node whose target is a seed's long-term goal keeps it (and a formula over it leaves it whole).
    """
    first = min(date.fromisoformat(p["since"]) for p in scenario["problems"])
    baseline_end = period_containing(first, Grain.MONTH).previous()
    through = period_containing(date.fromisoformat(scenario["as_of"]), Grain.MONTH).shift(2)
    tree = template if isinstance(template, Tree) else load_tree(template)
    # a seed's long-term goal (90-day, 12-month: LTV/CAC at least 3:1) is the target, not a plan from history
    goals = {n.id: n.target for n in tree.nodes if n.target.day90 is not None or n.target.month12 is not None}
    tree = plan_targets(engine, tree, baseline_end, through)
    tree = dataclasses.replace(tree, nodes=tuple(
        dataclasses.replace(n, target=goals[n.id]) if n.id in goals else n for n in tree.nodes))
    # ARR's bridge over its opening balance, and every other formula, keep their identity (kpitree.bridge)
    return chain_targets(tree, baseline_end)


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
        tree = demo_plan(Engine(ws), template, json.loads(json.dumps(data.scenario(), default=str)))
    tree_path = out / "tree.yaml"
    save_tree(tree, tree_path)
    return {
        "out": str(out),
        "rows": {name: len(frame) for name, frame in data.tables.items()},
        "files": [str(p) for p in paths],
        "tree": str(tree_path),
        "problems": [json.loads(json.dumps(p.__dict__)) for p in data.problems],
    }


def with_targets_of(tree: Tree, planned: Tree) -> Tree:
    """`tree` with each node's target taken from the node of the same id in `planned` (nothing else)."""
    targets = {n.id: n.target for n in planned.nodes}
    return dataclasses.replace(tree, nodes=tuple(
        dataclasses.replace(n, target=targets[n.id]) if n.id in targets else n for n in tree.nodes))


def retarget_templates(demo_dir: Path = DEMO_DIR, templates: tuple[Path, ...] = PLANNED_TEMPLATES,
                       tree_yaml: Path | None = None) -> list[Path]:
    """Rewrites the targets of the templates that carry the demo's plan (and the demo's tree.yaml) from
    the demo files in `demo_dir`, as `demo_plan` makes them; the files written."""
    scenario = json.loads((demo_dir / "scenario.json").read_text())
    tables = sorted(p for p in demo_dir.iterdir() if p.name.endswith((".csv", ".csv.gz")))
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws", create=True)
        ingest(ws, tables)
        engine = Engine(ws)
        for path in templates:
            tree = load_tree(path)
            save_tree(with_targets_of(tree, demo_plan(engine, tree, scenario)), path)
            written.append(path)
        target = tree_yaml if tree_yaml is not None else demo_dir / "tree.yaml"
        if target.exists():
            tree = load_tree(target)
            save_tree(with_targets_of(tree, demo_plan(engine, tree, scenario)), target)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kpitree.demo_setup", description=(
        "Rewrite the targets of the templates that carry the demo's plan (and data/demo/tree.yaml) from the "
        "shipped demo files. Nothing but the targets changes."))
    parser.add_argument("--demo-dir", type=Path, default=DEMO_DIR, help="the demo files (scenario.json, tables)")
    args = parser.parse_args(argv)
    if not (args.demo_dir / "scenario.json").exists():
        print(f"no scenario.json in {args.demo_dir}: write the demo first (`python -m kpitree demo --out DIR`)",
              file=sys.stderr)
        return 2
    for path in retarget_templates(args.demo_dir):
        print(f"targets rewritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
