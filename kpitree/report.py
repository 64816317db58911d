"""The consultant's deliverable: one file that tells the whole story of a tree in one period.

`build_report` gathers what the tree page shows — the tree coloured by status (the page's own
`charts.tree_chart`, red path drawn), the red path and every cause with owners and sentences, each
red node's trend, waterfall and segment bars — plus what a reader needs to trust it: the data's
coverage, the loads and their rejected rows, which targets are set and which suggested, the
period, the baseline and the data date. `Report.html()` is one self-contained page (inline SVG and
CSS, no script, nothing fetched), `Report.pdf()` the same page printed, and the two CSV exports go
through `plain.csv_text` so no cell runs as a spreadsheet formula.

Everything here is computed by the same core functions the page calls, so the report and the page
never disagree; nothing imports Streamlit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from .charts import (
    STATUS_STROKE,
    is_gain,
    path_ids,
    segment_chart,
    spec_of,
    tree_chart,
    trend_chart,
    waterfall_chart,
    with_path,
    with_selection,
)
from .errors import KpiTreeError, QueryError
from .evaluate import Engine, Evaluation, NodeResult, evaluate_tree, trend
from .format import fmt, fmt_change
from .loads import latest_loads, stored_warnings
from .owners import carried_over, csv_number
from .periods import Period, resolve_period
from .plain import csv_text
from .tree import Tree, load_tree
from .workspace import Workspace

TREE_WIDTH = 960.0  # px the tree is laid out for: the report's text column
CHART_WIDTH = 640  # px of a node's charts (the page stretches them to its column; paper has a fixed one)
TREND_PERIODS = 18  # as on the page
SUFFIXES = (".html", ".htm", ".pdf")


@dataclass(frozen=True)
class Chart:
    """One chart of a node, drawn: what it shows in words, and its SVG."""

    kind: str  # trend, waterfall, segments
    title: str
    caption: str
    svg: str


@dataclass(frozen=True)
class NodeSection:
    """A charted node: its figures, its words, its charts and its segment table."""

    id: str
    label: str
    owner: str
    status: str
    figures: str  # "actual $4.27M · target $7.39M (set)"
    sentences: tuple[str, ...]
    charts: tuple[Chart, ...]
    segment_table: tuple[tuple[str, ...], ...] = ()  # header row first
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataRow:
    """One loaded table: rows, the days it covers, and its latest load."""

    table: str
    rows: int
    first: date | None
    last: date | None
    files: str
    loaded_at: str
    rejected: int
    warnings: tuple[str, ...] = ()  # what the latest load warned about, as stored with it


@dataclass
class Report:
    workspace: str
    tree_name: str
    tree_file: str
    period: Period
    versus: str
    baseline_key: str | None  # the period compared with; None against target
    evaluation: Evaluation
    explanation: object | None  # kpitree.explain.Explanation of the north star, causes walked
    tree_svg: str
    sections: list[NodeSection]
    data: list[DataRow]
    warnings: list[str]
    baselines: dict[str, float | None] = field(default_factory=dict)  # what each node is compared with
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0  # CPU seconds spent building it

    @property
    def as_of(self) -> date:
        return self.evaluation.as_of

    def html(self) -> str:
        from .report_html import render_html

        return render_html(self)

    def pdf(self) -> bytes:
        from .report_render import html_to_pdf

        return html_to_pdf(self.html())

    def node_values_csv(self) -> str:
        return node_values_csv(self)

    def causes_csv(self) -> str:
        return causes_csv(self)

    def file_stem(self) -> str:
        """A download name: `kpi-report-<workspace>-<period>` in safe characters."""
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in f"{self.workspace}-{self.period.key}")
        return f"kpi-report-{safe.strip('-')[:80]}"


# --- which tree ---------------------------------------------------------------------------------


def resolve_tree(ws: Workspace, tree: Tree | str | Path | None) -> Tree:
    """The tree to report: a Tree, a YAML file, a tree of the workspace or a template by name (the
    page's `tree` URL parameter), else the workspace's active tree."""
    from .history import workspace_trees
    from .suggest import template_path, tree_for_workspace

    if isinstance(tree, Tree):
        return tree
    if tree is None or str(tree).strip() == "":
        return load_tree(tree_for_workspace(ws))
    text = str(tree).strip()
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_tree(path)
    own = {p.stem: p for p in workspace_trees(ws.trees_dir)}
    if text in own:
        return load_tree(own[text])
    try:
        return load_tree(template_path(text))
    except KpiTreeError:
        names = ", ".join(sorted(own)) or "none published"
        raise KpiTreeError(f"no tree {text!r}: give a tree YAML file, a tree of workspace {ws.name!r} ({names}) "
                           "or a template name such as revops") from None


# --- building -----------------------------------------------------------------------------------


def build_report(workspace: Workspace | str | Path, tree: Tree | str | Path | None = None,
                 period: Period | str | None = None, grain: str | None = None, versus: str = "target", *,
                 engine: Engine | None = None, load_warnings: Sequence[str] = (), charts: bool = True,
                 explain: Callable[[str, bool], object] | None = None) -> Report:
    """Everything the report shows, computed once. `engine`: the page's cached engine (same numbers,
    no second read); `load_warnings`: warnings the caller has beyond those each load stored with it
    (the Upload page's report of a load just made); `explain`:
    `(node_id, causes) → Explanation` from the page's cache (a fifth of a report's work is explaining
    the red numbers, which the page has mostly done already)."""
    from .explain import VERSUS, explain_node
    from .layout import layout_tree
    from .warmup import baseline_period

    started = time.process_time()
    if versus not in VERSUS:
        raise KpiTreeError(f"--versus must be one of {', '.join(VERSUS)}; got {versus!r}")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    engine = engine or Engine(ws)
    the_tree = resolve_tree(ws, tree)
    if period is None or isinstance(period, str):
        period = resolve_period(period, grain if period else (grain or the_tree.grain), engine.as_of)
    evaluation = evaluate_tree(engine, the_tree, period)
    root = the_tree.root
    def explained(node_id: str, causes: bool):
        if explain is not None:
            return explain(node_id, causes)
        return explain_node(engine, the_tree, node_id, period, versus=versus, causes=causes,
                            evaluation=evaluation if causes else None)

    result = explained(root.id, True)
    baselines = _baselines(engine, the_tree, evaluation, versus)

    spec = spec_of(tree_chart(layout_tree(the_tree, max_width=TREE_WIDTH), evaluation, versus=versus,
                              baselines=baselines))
    drawn = with_path(with_selection(spec, "\x00none"), path_ids(evaluation, root.id, [s.id for s in result.red_path]))
    tree_svg = ""
    sections: list[NodeSection] = []
    if charts:
        from .report_render import svg_of

        tree_svg = svg_of(_undimmed(drawn))
    for node_id in charted_nodes(evaluation, result):
        why = result if node_id == root.id else explained(node_id, False)
        sections.append(_section(engine, the_tree, evaluation, node_id, period, versus, why, baselines, charts))
    report = Report(
        workspace=ws.name, tree_name=the_tree.name, tree_file=Path(the_tree.source).name if the_tree.source else "",
        period=period, versus=versus, baseline_key=None if versus == "target" else baseline_period(period, versus).key,
        evaluation=evaluation, explanation=result, tree_svg=tree_svg, sections=sections,
        data=_data_rows(ws, engine), warnings=[], baselines=baselines,
    )
    report.warnings = _warnings(report, engine, the_tree, load_warnings)
    report.seconds = time.process_time() - started
    return report


def charted_nodes(evaluation: Evaluation, explanation) -> list[str]:
    """The nodes that get charts: the red path, then every cause, then every other red node, each once
    (the order a reader walks the story in)."""
    out: list[str] = [s.id for s in explanation.red_path]
    out += [c.id for c in explanation.causes]
    out += [n.id for n in evaluation.nodes if n.status == "red"]
    return list(dict.fromkeys(out))


def _baselines(engine: Engine, tree: Tree, evaluation: Evaluation, versus: str) -> dict[str, float | None]:
    """What each box is compared with, as on the page's "Compare with"."""
    if versus == "previous":
        return {n.id: n.previous for n in evaluation.nodes}
    if versus == "last_year":
        return {n.id: n.value for n in evaluate_tree(engine, tree, evaluation.period.same_last_year()).nodes}
    return {n.id: n.target for n in evaluation.nodes}


def _drawn(chart) -> str:
    """A node chart as SVG at the report's width."""
    from .report_render import svg_of

    return svg_of({**spec_of(chart), "width": CHART_WIDTH})


def _undimmed(spec: dict) -> dict:
    """The red path drawn, nothing dimmed: on paper every box keeps its status colour readable."""
    out = dict(spec)
    out["datasets"] = {name: [{**r, "dim": False} if isinstance(r, dict) and "dim" in r else r for r in rows]
                       for name, rows in spec.get("datasets", {}).items()}
    return out


def target_source(n: NodeResult) -> str:
    """Where a node's target comes from, in words: set, suggested (with its rule), or none."""
    if n.target is None:
        return f"none ({n.target_basis.removeprefix('no target: ')})" if n.target_basis else "none"
    return f"suggested ~ ({n.target_basis})" if n.target_basis else "set"


def figures(n: NodeResult, versus: str, baseline: float | None, baseline_key: str | None) -> str:
    """A node's numbers in one line, the target's source included."""
    parts = [f"{'pace' if n.pace is not None else 'actual'} {fmt(n.compared, n.unit)}"]
    if n.pace is not None:
        parts.append(f"so far {fmt(n.value, n.unit)}")
    mark = "~" if n.target is not None and n.target_basis else ""
    parts.append(f"target {mark}{fmt(n.target, n.unit)} ({target_source(n)})")
    if n.target_by_now is not None:
        parts.append(f"target by now {fmt(n.target_by_now, n.unit)} ({n.by_now_basis})")
    if versus != "target":
        parts.append(f"{baseline_key} {fmt(baseline, n.unit)}")
    parts.append(f"previous {fmt(n.previous, n.unit)}")
    return " · ".join(parts)


def _section(engine: Engine, tree: Tree, evaluation: Evaluation, node_id: str, period: Period, versus: str,
             result, baselines: dict[str, float | None], charts: bool) -> NodeSection:
    from .warmup import baseline_period

    node = tree.node(node_id)
    res = evaluation.node(node_id)
    where = "target" if versus == "target" else baseline_period(period, versus).key
    base = res.target if versus == "target" else baselines.get(node_id)
    sentences = list(result.summary()) if res.value is not None else \
        [f"{res.label} has no data in {period.key}" + (f": {res.reason}." if res.reason else ".")]
    carried = carried_over(tree, res, period.key)  # an opening balance: made last period, no lever now
    if carried:
        sentences = [carried, *sentences[1:]]
    notes: list[str] = []
    drawn: list[Chart] = []
    table: tuple[tuple[str, ...], ...] = ()
    lacking = engine.missing(node)
    if charts and lacking is None:  # the page's order: ARR bridge, children waterfall, trend, segments
        if node.metric == "arr":
            bridge = _bridge_chart(engine, node, res, period)
            if isinstance(bridge, Chart):
                drawn.append(bridge)
            elif bridge:
                notes.append(bridge)
        steps = [(c.label, c.contribution) for c in result.children if c.contribution is not None
                 and not (c.link == "residual" and abs(c.contribution) <= 0.005 * abs(result.gap or 0))]
        if node.formula and steps:
            against = "its target" if versus == "target" else result.baseline_label
            caption = f"{result.children_heading()} (against {against})."
            note = result.children_note()
            drawn.append(Chart("waterfall", "Where the gap comes from", caption + (f" {note}" if note else ""),
                               _drawn(waterfall_chart(result.baseline_label, result.baseline, steps, "actual", res.unit,
                                                      direction=res.direction))))
        title = "Trend against target" if versus == "target" else f"Trend — dotted: {where}; dashed: target"
        reference = None if versus == "target" or base is None else (where, base)
        frame = trend(engine, tree, node_id, period, TREND_PERIODS)
        drawn.append(Chart("trend", title, f"{res.label}, the last {len(frame)} periods to {period.key}: value "
                           "(solid) and target (dashed).", _drawn(trend_chart(frame, res.unit, "", reference=reference))))
        segments = _segment_chart(engine, tree, node, res, period, versus, result)
        if segments is not None:
            chart, table = segments
            drawn.append(chart)
    elif lacking is not None:
        notes.append(f"No charts: {res.label} {lacking.reason()}.")
    notes.extend(result.notes)
    return NodeSection(node_id, res.label, res.owner, res.status, figures(res, versus, base, where), tuple(sentences),
                       tuple(drawn), table, tuple(dict.fromkeys(notes)))


def _bridge_chart(engine: Engine, node, res: NodeResult, period: Period) -> Chart | str:
    """The period's ARR bridge as on the page's ARR panel (start → movements → end), or why there is none."""
    from .bridge import arr_bridge

    try:
        bridge = arr_bridge(engine, period, tuple(node.filter))
    except QueryError as exc:
        return f"ARR bridge: {exc}."
    caption = (f"From {fmt(float(bridge.start), 'money', compact=True)} at the start of {period.key} to "
               f"{fmt(float(bridge.end), 'money', compact=True)} at its end, {fmt_change(float(bridge.net_new), 'money')} "
               "net: new logos, expansion and reactivation add, contraction and churn take away (12 × MRR). The axis starts near the lowest level, not at $0.")
    return Chart("bridge", f"ARR bridge {period.key}", caption, _drawn(waterfall_chart(
        "ARR at start", float(bridge.start), bridge.steps(), "ARR at end", "money", direction=res.direction,
        zero=False)))


def _segment_chart(engine: Engine, tree: Tree, node, res: NodeResult, period: Period, versus: str,
                   result) -> tuple[Chart, tuple[tuple[str, ...], ...]] | None:
    """The page's segment chart for the best dimension, and its table (the same rows, formatted)."""
    from .drill import drill_dimensions, segment_table
    from .explain import segment_display, segment_frame, segment_heading
    from .warmup import baseline_period

    dims = drill_dimensions(engine, tree, node)
    ranked = [d.dimension for d in result.dimensions if d.dimension in dims]
    dims = ranked + [d for d in dims if d not in ranked]
    if not dims:
        return None
    dim = dims[0]
    frame = segment_frame(result, dim)
    gain = is_gain(result.direction, result.gap)
    if frame is not None and not frame.empty:
        worst = [s for s, e in zip(frame["segment"], frame["explains"], strict=True) if e]
        caption = segment_heading(result, dim)
        shown = segment_display(result, dim)
        header = tuple(str(c) for c in shown.columns)
        rows = tuple(tuple("" if v is None else str(v) for v in row) for row in shown.itertuples(index=False))
        table = frame
    else:
        gain = False
        baseline = baseline_period(period, versus)
        try:
            table = segment_table(engine, node, period, baseline, dim)
        except QueryError:
            return None
        worst = [s for s, a in zip(table["segment"], table["adverse"], strict=True) if a > 0][:1]
        caption = f"By {dim} — {period.key} against {baseline.key}" + (
            " (segments have no targets: compared with the previous period)" if versus == "target" else "")
        money = res.unit in ("money", "money_per_day")
        header = (dim, period.key, baseline.key, "difference")
        rows = tuple((str(s), fmt(c, res.unit, compact=money), fmt(b, res.unit, compact=money), fmt_change(d, res.unit))
                     for s, c, b, d in zip(table["segment"], table["current"], table["baseline"], table["change"],
                                           strict=True))
    if table.empty:
        return None
    colour = STATUS_STROKE["green" if gain else "red"]
    svg = _drawn(segment_chart(table, res.unit, dim, worst, highlight_color=colour))
    return Chart("segments", f"By {dim}", caption.removeprefix(f"By {dim} — "), svg), (header, *rows)


def _data_rows(ws: Workspace, engine: Engine) -> list[DataRow]:
    """Each loaded table with its rows, the days it covers and its latest load (files, rejected rows)."""
    latest = latest_loads(ws)
    out = []
    for table in sorted(engine.loaded):
        first, last = engine.coverage(table)
        loads = latest.get(table, [])
        out.append(DataRow(table, int(engine.profile.rows.get(table, 0)), first, last,
                           ", ".join(str(x["file"]) for x in loads),
                           str(loads[0]["loaded_at"])[:16] if loads else "",
                           sum(int(x.get("rows_rejected") or 0) for x in loads),
                           tuple(w for x in loads for w in stored_warnings(x))))
    return out


def _warnings(report: Report, engine: Engine, tree: Tree, load_warnings: Sequence[str]) -> list[str]:
    """What a reader must know before trusting the numbers: rejected rows, numbers without data (and
    what to load), data that ends before the period does, a running period, suggested targets and
    numbers without an owner, and the latest load's own warnings when the caller has them."""
    from .metrics import metric
    from .suggest import missing_owners, suggested_targets

    # The page hands in its latest loads' warnings, which are the ones stored with those loads: each
    # is said once, with the stored ones' words; only a warning the loads did not store is "Latest load".
    stored = list(dict.fromkeys(w for row in report.data for w in row.warnings))
    out = [f"Latest load: {w}" for w in dict.fromkeys(load_warnings) if w not in stored]
    out += [f"When loaded, {w}" for w in stored]
    for row in report.data:
        if row.rejected:
            out.append(f"{row.rejected:,} row(s) of {row.files or row.table} were rejected when loaded into {row.table} "
                       "and are not counted.")
    for n in report.evaluation.nodes:
        if n.value is None:
            out.append(f"{n.label}: no data in {report.period.key}" + (f" — {n.reason}." if n.reason else "."))
    used = {t for node in tree.nodes for t in metric(node.metric).tables}
    for row in report.data:
        if row.table in used and row.last is not None and row.last < min(report.period.end, report.as_of):
            out.append(f"The {row.table} data ends on {row.last}, before {report.period.key} does "
                       f"({report.period.end}).")
    out.extend(_blanks(engine, used))
    if not report.evaluation.complete:
        root = report.evaluation.nodes[0]
        out.append(f"{report.period.key} is still running ({root.elapsed:.0%} elapsed on {report.as_of}): flows are "
                   "judged on pace.")
    suggested = [n for n in suggested_targets(tree) if n.target.is_set]
    if suggested:
        out.append(f"{len(suggested)} of {len(tree.nodes)} targets are suggested from the workspace's own history "
                   "(marked ~), not set by a person.")
    missing = missing_owners(tree)
    if missing:
        out.append(f"{len(missing)} number(s) have no named owner yet: " + ", ".join(n.label for n in missing) + ".")
    return list(dict.fromkeys(out))


BLANK_COLUMNS = {"amount": "a blank is unknown, not zero: sums and averages of amounts leave those rows out",
                 "owner": "they count under (none) in splits by owner", "segment": "they count under (none) in "
                 "splits by segment", "channel": "they count under (none) in splits by channel"}
BLANK_NOTED = 0.01  # a column blank in at least this share of rows (and filled in some) is worth a warning


def _blanks(engine: Engine, tables: set[str]) -> list[str]:
    """Columns the numbers read that are blank in part of the rows (an export's gaps the load kept)."""
    out = []
    for table in sorted(tables):
        rows = int(engine.profile.rows.get(table, 0))
        for column, effect in BLANK_COLUMNS.items():
            if not rows or not engine.profile.has(table, column):
                continue
            blank = rows - int(engine.profile.filled[table][column])
            if blank >= BLANK_NOTED * rows:
                out.append(f"{column} is blank in {blank:,} of {rows:,} {table} rows ({blank / rows:.0%}): {effect}.")
    return out


# --- CSV exports --------------------------------------------------------------------------------

NODE_COLUMNS = ("id", "label", "level", "owner", "status", "value", "pace", "target", "target_source", "previous",
                "baseline", "unit", "period", "as_of", "no_data_reason")
CAUSE_COLUMNS = ("rank", "kind", "id", "label", "owner", "status", "path", "dimension", "segment", "segment_share",
                 "sentence")


def node_values_csv(report: Report) -> str:
    """Every node's numbers, each as a person would type it in its unit (`owners.csv_number`: cents, not
    1025437.9199999998); user text neutralised for spreadsheets (`plain.csv_text`)."""
    rows = []
    for n in report.evaluation.nodes:
        base = report.baselines.get(n.id)
        value, pace, target, previous, base = (csv_number(x, n.unit) for x in (n.value, n.pace, n.target,
                                                                                n.previous, base))
        rows.append((n.id, n.label, n.level, n.owner, n.status, value, pace, target, target_source(n),
                     previous, base, n.unit, report.period.key, report.as_of.isoformat(), n.reason))
    return csv_text(NODE_COLUMNS, rows)


def causes_csv(report: Report) -> str:
    """The red path's steps, then every other cause, one row each with owner, path, top segment and sentence."""
    result = report.explanation
    rows = []
    if result is not None:
        rank = 0
        for step in result.red_path:
            rank += 1
            top = step.top_segment
            said = " ".join(x for x in (step.sentence, step.segment_sentence) if x)
            rows.append((rank, "red path", step.id, step.label, step.owner, step.status, "", top.dimension if top else "",
                         top.segment if top else "", csv_number(top.share, "percent") if top else None, said))
        lever = result.red_path[-1].id if result.red_path else None
        for c in result.causes:
            if c.id == lever and not c.also:
                continue
            rank += 1
            top = c.top_segment
            rows.append((rank, "cause" if c.reached else "red on its own", c.id, c.label, c.owner, c.status,
                         " → ".join(c.path_labels), top.dimension if top else "", top.segment if top else "",
                         csv_number(top.share, "percent") if top else None,
                         " ".join(c.sentences()) + (f" ({c.aside})" if c.aside else "")))
    return csv_text(CAUSE_COLUMNS, rows)


# --- files --------------------------------------------------------------------------------------


def check_out(path: str | Path) -> Path:
    """The output file: .html/.htm or .pdf, in a folder that exists (one sentence otherwise)."""
    out = Path(path)
    if out.suffix.lower() not in SUFFIXES:
        raise KpiTreeError(f"--out {str(path)!r}: a report is written as .html or .pdf (e.g. --out report.html)")
    if not out.parent.is_dir():
        raise KpiTreeError(f"--out {str(path)!r}: the folder {str(out.parent)!r} does not exist")
    return out


def write_report(report: Report, out: str | Path) -> Path:
    """Writes the report as HTML or PDF by the file's suffix (the PDF needs Chromium: see `report_render`)."""
    path = check_out(out)
    if path.suffix.lower() == ".pdf":
        data = report.pdf()
        path.write_bytes(data)
    else:
        path.write_text(report.html(), encoding="utf-8")
    return path
