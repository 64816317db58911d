"""`python -m kpitree`: the command line that tests, benchmarks and scripts rely on.

Every verb prints text for people or `--format json` for programs; expected failures (bad
files, bad trees, unknown periods) print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .access_cli import add_users_command
from .errors import KpiTreeError, ProblemsError
from .format import fmt, fmt_maturing
from .review import add_review_commands

EXIT_BAD_INPUT = 2


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo_setup import write_demo_with_tree

    out = Path(args.out)
    info = write_demo_with_tree(out, seed=args.seed, scale=args.scale, compress=args.compress)
    if args.format == "json":
        _print_json(info)
    else:
        print(f"wrote demo data set to {out} (seed {args.seed}, scale {args.scale}):")
        for name, rows in info["rows"].items():
            print(f"  {name}: {rows} rows")
        print(f"  tree: {info['tree']}")
        print(f"  planted problems: {len(info['problems'])} (see {out / 'scenario.json'})")
    return 0


def _file_values(pairs: list[str] | None, flag: str, form: str) -> dict[str, str]:
    """`FILE=VALUE` options by file name; a malformed one is a usage error naming the flag."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        file, sep, value = pair.partition("=")
        if not sep or not file.strip() or not value.strip():
            raise KpiTreeError(f"{flag} {pair!r}: expected {form}, e.g. {flag} deals.csv="
                               + ("deals" if "TABLE" in form else "deals-mapping.json"))
        out[Path(file.strip()).name if "/" in file else file.strip()] = value.strip()
    return out


class _Stages:
    """A long load's stages on stderr (`[ 42%] deals.csv: checking values`), so a 10-million-row load is not
    silent for minutes; stdout keeps only the report. Quiet for the first second (a small load prints
    nothing extra) and at most two lines a second; a wait for another load or program is always said."""

    def __init__(self, stream: Any = None, quiet_for: float = 1.0, every: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.quiet_for = quiet_for
        self.every = every  # --verbose: every stage, at once
        self.last = (0.0, "")
        self.shown = False

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if message == self.last[1]:
            return
        waiting = "waiting" in message or self.every
        if not waiting and (now - self.start < self.quiet_for or now - self.last[0] < 0.5):
            if not (fraction >= 1.0 and self.shown):
                return
        self.last = (now, message)
        self.shown = True
        print(f"[{min(max(fraction, 0.0), 1.0):4.0%}] {message}", file=self.stream, flush=True)


def cmd_ingest(args: argparse.Namespace) -> int:
    import tempfile

    from .ingest import ingest, load_lock, read_mapping, read_stage_map
    from .workspace import Workspace

    stages = read_stage_map(args.stage_map) if args.stage_map else {}
    files = [Path(f) for f in args.files]
    per_file = {"tables": _file_values(args.as_table, "--as", "FILE=TABLE"), "skip": set(args.skip or ()),
                "mappings": {f: read_mapping(m) for f, m in _file_values(args.map, "--map", "FILE=MAPPING.json").items()},
                "combine": args.combine}
    if args.dry_run and not Path(args.workspace).is_dir():
        with tempfile.TemporaryDirectory(prefix="kpitree-dry-") as tmp:  # nothing is created where asked
            report = ingest(Workspace(tmp), files, table=args.table, mode=args.mode, dry_run=True, stage_map=stages,
                            on_progress=_Stages(every=args.verbose), **per_file)
    elif args.dry_run:
        ws = Workspace(args.workspace)
        report = ingest(ws, files, table=args.table, mode=args.mode, dry_run=True, stage_map=stages,
                        on_progress=_Stages(every=args.verbose), **per_file)
    else:
        ws = Workspace(args.workspace, create=True)
        stages_out = _Stages(every=args.verbose)
        # One load of a workspace at a time (another command, the Upload page): this one waits, saying so.
        with load_lock(ws, on_wait=lambda msg: stages_out(0.0, msg)):
            report = ingest(ws, files, table=args.table, mode=args.mode, reappend=args.reappend, stage_map=stages,
                            on_progress=stages_out, **per_file)
            if stages:
                ws.save_stage_map({**ws.stage_map(), **stages})  # kept for later loads and the Upload page
            # A first load gives the workspace its own tree, suggested from its data. A workspace with a
            # published tree needs none: checked here so a reload does not import the metrics stack.
            if not any(ws.trees_dir.glob("*.yaml")):
                from .suggest import first_tree

                if (made := first_tree(ws)) is not None:
                    print(made.message, file=sys.stderr)
    if args.format == "json":
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .tree import validate_file

    problems = validate_file(args.tree)
    errors = [p for p in problems if p.severity == "error"]
    if args.format == "json":
        _print_json({"tree": args.tree, "valid": not errors,
                     "problems": [{**p.__dict__, "text": str(p)} for p in problems]})
    else:
        for p in problems:
            print(f"{p.severity}: {p}")
        print(f"{args.tree}: {'valid' if not errors else f'{len(errors)} error(s)'}"
              + (f", {len(problems) - len(errors)} warning(s)" if len(problems) > len(errors) else ""))
    return 0 if not errors else EXIT_BAD_INPUT


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_tree
    from .tree import load_tree
    from .workspace import Workspace

    ws = Workspace(args.workspace)
    tree = load_tree(args.tree or _active_tree(ws))
    started = time.perf_counter()
    result = evaluate_tree(ws, tree, args.period, args.grain)
    seconds = time.perf_counter() - started
    if args.format == "json":
        _print_json(result.to_dict())
        return 0
    state = "complete" if result.complete else f"running, {result.nodes[0].elapsed:.0%} elapsed"
    print(f"{tree.name} — {result.period.key} ({state}; data as of {result.as_of}; "
          f"{ws.engine_label()} answered in {seconds:.1f} s)")
    depth = {n.id: 0 for n in result.nodes}
    for n in result.nodes:
        if n.parent:
            depth[n.id] = depth[n.parent] + 1
        pace = f" (pace {fmt(n.pace, n.unit)})" if n.pace is not None else ""
        if n.maturing:  # a young cohort's rate: judged on its expected final value
            pace += f" ({fmt_maturing(n.expected_final, n.unit, n.completion)})"
        suggested = " (suggested)" if n.target is not None and n.target_basis else ""
        # a running period's stock is judged against where the plan is by now, not the period's end
        against = (f"target by now {fmt(n.target_by_now, n.unit)} ({result.period.key} target "
                   f"{fmt(n.target, n.unit)}{suggested})" if n.target_by_now is not None
                   else f"target {fmt(n.target, n.unit)}{suggested}")
        print(f"{'  ' * depth[n.id]}[{n.status:>9}] {n.label}: {fmt(n.value, n.unit)}{pace} "
              f"vs {against}, prev {fmt(n.previous, n.unit)} — {n.owner}")
        if n.by_now_basis:  # how the target by now was made
            print(f"{'  ' * depth[n.id]}{' ' * 12}{n.by_now_basis}")
        if n.reason:  # what is missing and what to load
            print(f"{'  ' * depth[n.id]}{' ' * 12}{n.reason}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain_node
    from .tree import load_tree
    from .workspace import Workspace

    ws = Workspace(args.workspace)
    tree = load_tree(args.tree or _active_tree(ws))
    try:
        tree.node(args.node)
    except KeyError as exc:  # an unknown node is the user's typo, said as such (not a bare key)
        raise KpiTreeError(str(exc.args[0])) from None
    result = explain_node(ws, tree, args.node, args.period, versus=args.versus, grain=args.grain)
    if args.format == "json":
        _print_json(result.to_dict())
    else:
        print(result.text())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report, check_out, write_report
    from .workspace import Workspace

    out = check_out(args.out)  # a bad name is said before minutes of work
    if out.suffix.lower() == ".pdf":
        from .report_render import PDF_MISSING, pdf_available

        if not pdf_available():
            raise KpiTreeError(PDF_MISSING)
    for extra in (args.values_csv, args.causes_csv):
        if extra and not Path(extra).parent.is_dir():
            raise KpiTreeError(f"{extra!r}: the folder {str(Path(extra).parent)!r} does not exist")
    ws = Workspace(args.workspace)
    report = build_report(ws, args.tree, args.period, args.grain, args.versus)
    write_report(report, out)
    written = {"report": str(out)}
    if args.values_csv:
        Path(args.values_csv).write_text(report.node_values_csv(), encoding="utf-8", newline="")
        written["values_csv"] = args.values_csv
    if args.causes_csv:
        Path(args.causes_csv).write_text(report.causes_csv(), encoding="utf-8", newline="")
        written["causes_csv"] = args.causes_csv
    if args.format == "json":
        _print_json({**written, "workspace": report.workspace, "tree": report.tree_name, "period": report.period.key,
                     "versus": report.versus, "as_of": report.as_of.isoformat(),
                     "charted_nodes": [s.id for s in report.sections],
                     "charts": sum(len(s.charts) for s in report.sections), "warnings": report.warnings,
                     "cpu_seconds": round(report.seconds, 2)})
    else:
        print(f"wrote {', '.join(written.values())}: {report.tree_name} — {report.period.key} against "
              f"{report.versus.replace('_', ' ')}, {len(report.sections)} number(s) charted, data as of "
              f"{report.as_of}")
    return 0


def _active_tree(ws: Any) -> Path:
    """The workspace's active tree when --tree is left out (an error says how to make one)."""
    from .suggest import tree_for_workspace

    return tree_for_workspace(ws)


def _resuggest(ws: Any, args: argparse.Namespace) -> int:
    """`suggest --targets`: the Builder's "Re-suggest targets from the current data", on the command line."""
    from .history import default_user
    from .suggest import publish_resuggested, resuggest_active

    found = resuggest_active(ws)
    if found is None:
        raise KpiTreeError(f"workspace {ws.name!r} has no active published tree to re-plan: run "
                           "`python -m kpitree suggest --workspace W --activate` first")
    version = publish_resuggested(ws, found, default_user())
    done = found.done
    if args.format == "json":
        _print_json({"workspace": ws.name, "tree": found.name, "version": version, "replanned": done.replanned,
                     "kept": done.kept, "month": done.month,
                     "changes": [{"id": c.id, "label": c.label, "before": c.before, "after": c.after}
                                 for c in done.changes]})
        return 0
    print(f"{found.name} v{version}: {done.replanned} suggested target(s) planned again from the data as it is now, "
          f"{done.kept} set by hand kept")
    for c in done.changes:
        print(f"  {c.label} ({done.month}): {fmt(c.before, c.unit)} → {fmt(c.after, c.unit)}")
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    from .history import TreeStore, default_user
    from .suggest import suggest_tree, template_path
    from .tree import dump_tree, save_tree
    from .workspace import Workspace

    ws = Workspace(args.workspace)
    if args.targets:
        return _resuggest(ws, args)
    path = template_path(args.template)
    tree, notes = suggest_tree(ws, path)
    saved, active = None, None
    if args.out:
        save_tree(tree, args.out)
        saved = str(args.out)
    if args.activate:
        version = TreeStore(ws.trees_dir).publish(tree, path.stem, default_user(), activate=True, action="suggest")
        active = f"{path.stem} v{version.number}"
    if args.format == "json":
        _print_json({"workspace": ws.name, "template": path.stem, "tree": tree.name, "north_star": tree.root.id,
                     "nodes": [n.id for n in tree.walk()], "saved": saved, "active": active,
                     "notes": [n.to_dict() for n in notes],
                     **({} if saved or active else {"yaml": dump_tree(tree)})})
        return 0
    lines = [f"{tree.name}: {len(tree.nodes)} numbers, north star {tree.root.label} — suggested from the data of "
             f"{ws.name!r}"] + [f"  - {n.text}" for n in notes]
    if saved:
        lines.append(f"saved to {saved}")
    if active:
        lines.append(f"published in the workspace and made active: {active} (the tree page opens it)")
    if saved or active:
        print("\n".join(lines))
    else:  # the YAML on stdout (redirect it to a file), what was done on stderr
        print("\n".join(lines) + "\nnothing saved: use --out FILE or --activate", file=sys.stderr)
        sys.stdout.write(dump_tree(tree))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kpitree",
        description="KPI Tree: from the north-star revenue number down to the levers, and why it is red.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str, example: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=f"{help_}\n\nExample:\n  {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
        return p

    p = add("demo", "write a realistic demo data set with planted problems and a matching tree",
            "python -m kpitree demo --out /tmp/demo --seed 7 --scale 1")
    p.add_argument("--out", required=True, help="directory to write the CSV files, scenario.json and tree.yaml into")
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
    p.add_argument("--scale", type=float, default=1.0, help="size multiplier (1 ≈ 20k deals)")
    p.add_argument("--compress", action="store_true", help="write .csv.gz files")
    p.set_defaults(func=cmd_demo)

    p = add("ingest", "load CSV or Parquet files into a workspace and print the data-quality report",
            "python -m kpitree ingest --workspace ws/acme deals.csv subscriptions.csv")
    p.add_argument("--workspace", required=True, help="workspace directory (created if missing)")
    p.add_argument("--table", help="canonical table for all files (default: detected from each header)")
    p.add_argument("--mode", choices=("replace", "append"), default="replace",
                   help="replace a table's rows (default) or append to them (same ids replaced)")
    p.add_argument("--stage-map", metavar="FILE",
                   help="CSV with columns stage,status (open/won/lost), or JSON {stage: status}: how your "
                        "pipeline's stages count; saved in the workspace after a successful load")
    p.add_argument("--dry-run", action="store_true",
                   help="read and check everything, print the report, write nothing")
    p.add_argument("--reappend", action="store_true",
                   help="with --mode append: load a file again even if its exact content was appended before "
                        "(its rows replace themselves by id), e.g. after correcting the stage map")
    p.add_argument("--as", dest="as_table", action="append", metavar="FILE=TABLE",
                   help="load FILE (matched by name) into TABLE instead of the detected one; repeatable")
    p.add_argument("--skip", action="append", metavar="FILE", help="leave FILE out of this load; repeatable")
    p.add_argument("--map", action="append", metavar="FILE=MAPPING.json",
                   help='read FILE with this mapping: {"table": "deals", "columns": {"deal_id": "Opp #", …}, '
                        '"fill": {"status": "won"}} (as the Upload page saves them); repeatable')
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print every stage of the load on stderr as it starts (by default a load that takes more "
                        "than a second prints its stages, at most two lines a second)")
    p.add_argument("--combine", action="store_true",
                   help="append several files of this load into one table (otherwise two files for one table "
                        "are refused, naming both)")
    p.add_argument("files", nargs="+", help="CSV or Parquet files (.csv, .tsv, .parquet, .csv.gz, .zip)")
    p.set_defaults(func=cmd_ingest)

    p = add("validate", "check a tree file against the seed-003 rules",
            "python -m kpitree validate data/trees/revops.yaml")
    p.add_argument("tree", help="tree YAML file")
    p.set_defaults(func=cmd_validate)

    p = add("suggest", "a tree that fits the workspace's data: a template cut down to what the data supports, "
                       "targets planned from its own history, owners from the data or roles to assign",
            "python -m kpitree suggest --workspace ws/acme --template revops --out acme.yaml --activate")
    p.add_argument("--workspace", required=True)
    p.add_argument("--template", default="revops",
                   help="template name (revops, seed003_revenue, team_sales, …) or a tree YAML file (default revops)")
    p.add_argument("--out", metavar="TREE.yaml", help="write the suggested tree to this file")
    p.add_argument("--activate", action="store_true",
                   help="publish it in the workspace as its active tree (the tree page opens it)")
    p.add_argument("--targets", action="store_true",
                   help="instead: plan the active tree's suggested targets again from the data as it is now (after "
                        "a corrected reload); targets set by hand stay; published as a new version")
    p.set_defaults(func=cmd_suggest)

    p = add("evaluate", "every node's value, target, status, previous value and owner",
            "python -m kpitree evaluate --workspace ws/demo --tree data/trees/revops.yaml --period 2026-10")
    p.add_argument("--workspace", required=True)
    p.add_argument("--tree", help="tree YAML file, or the name of a workspace tree or template "
                                  "(default: the workspace's active tree)")
    p.add_argument("--period", help="2026-10, 2026-Q3, 2026-W41 or 2026 (default: latest complete period)")
    p.add_argument("--grain", choices=("week", "month", "quarter", "year"), help="grain when --period is omitted")
    p.set_defaults(func=cmd_evaluate)

    p = add("explain", "why a node is off: children attribution, ranked segments, red path",
            "python -m kpitree explain --workspace ws/demo --tree data/trees/revops.yaml --node arr --period 2026-10")
    p.add_argument("--workspace", required=True)
    p.add_argument("--tree", help="tree YAML file, or the name of a workspace tree or template "
                                  "(default: the workspace's active tree)")
    p.add_argument("--node", required=True, help="node id")
    p.add_argument("--period", help="period (default: latest complete period)")
    p.add_argument("--grain", choices=("week", "month", "quarter", "year"))
    p.add_argument("--versus", choices=("target", "previous", "last_year"), default="target",
                   help="baseline to explain against (default target)")
    p.set_defaults(func=cmd_explain)

    p = add("report", "one self-contained report (HTML or PDF) of a tree in a period: the tree by status, the red "
                      "path and every cause with owners, each red number's charts, the data's coverage and warnings",
            "python -m kpitree report --workspace ws/demo --period 2026-10 --out report.html")
    p.add_argument("--workspace", required=True)
    p.add_argument("--tree", help="tree YAML file, or the name of a workspace tree or template "
                                  "(default: the workspace's active tree)")
    p.add_argument("--period", help="period (default: latest complete period)")
    p.add_argument("--grain", choices=("week", "month", "quarter", "year"), help="grain when --period is omitted")
    p.add_argument("--versus", choices=("target", "previous", "last_year"), default="target",
                   help="what figures and explanations compare with (default target; colours stay against target)")
    p.add_argument("--out", required=True, metavar="FILE.html|FILE.pdf",
                   help="report file: .html opens offline in any browser; .pdf is the same page printed by Chromium")
    p.add_argument("--values-csv", metavar="FILE.csv", help="also write every node's numbers as CSV")
    p.add_argument("--causes-csv", metavar="FILE.csv", help="also write the red path and every cause as CSV")
    p.set_defaults(func=cmd_report)
    add_users_command(sub)
    add_review_commands(sub)
    return parser


# verbs whose --tree is a filter by name, not a tree to open: a deleted tree's snapshots are still listed
_TREE_IS_A_FILTER = {("snapshot", "list")}


def _tree_file(args: argparse.Namespace) -> None:
    """--tree of every verb that opens a tree: a YAML file, or the name of a workspace tree or a template
    ("revops"), as the README says — looked up once, here, by `report.resolve_tree` (the lookup `report` and
    the pages' ?tree= use) and rewritten to its file, so that no verb reads "revops" as a path. `validate`
    takes its own file and has no workspace."""
    given = getattr(args, "tree", None)
    if not given or not getattr(args, "workspace", None) \
            or (args.command, getattr(args, "action", None)) in _TREE_IS_A_FILTER:
        return
    if Path(given).suffix.lower() in (".yaml", ".yml") or "/" in given or "\\" in given:
        return  # a file: the verb reads it, and says "cannot read tree file" when it is not there
    from .report import resolve_tree
    from .workspace import Workspace

    tree = resolve_tree(Workspace(args.workspace), given)
    if tree.source:
        args.tree = str(tree.source)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _tree_file(args)
        return args.func(args)
    except ProblemsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KpiTreeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyError as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        print("error: out of memory — nothing was changed by the step that failed; try a smaller file or a "
              "machine with more memory", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `python -m kpitree evaluate … | head` closed the pipe: not an error worth a traceback.
        sys.stderr.close()
        return 0
    except Exception as exc:  # a fault of ours: one plain line; the traceback only when asked for
        import os

        if os.environ.get("KPITREE_DEBUG"):
            raise
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        said = "A load writes its tables in one transaction, so the workspace holds either the old or the new data. " \
            if getattr(args, "command", None) == "ingest" else "Nothing was changed. "
        print(f"error: unexpected problem ({type(exc).__name__}: {first}). {said}Run again with KPITREE_DEBUG=1 "
              "to see the details for a developer.", file=sys.stderr)
        return 1
