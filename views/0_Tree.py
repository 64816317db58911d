"""KPI Tree — the main screen: the whole tree, coloured by status, and why a node is red.

On a wide screen the tree and the selected node's answer sit side by side (the panel column stays
pinned in view and scrolls on its own), so a click on a box, an "Open" button or "Follow the red
path" always shows its result without scrolling; a narrow screen stacks them. One baseline per
view: "Compare with" sets every figure the page compares (box figures, the panel's delta, the
trend's reference, the segment tables and the sentences); status colours stay against target.

Layout and calls into `kpitree` only; every number comes from a core function. User text (labels,
owners, names, URL parameters) reaches Markdown only through `markdown_text`.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

import ui
from kpitree.bridge import arr_bridge
from kpitree.charts import (
    STATUS_STROKE,
    STATUS_WORD,
    is_gain,
    legend_html,
    path_ids,
    segment_chart,
    trend_chart,
    waterfall_chart,
)
from kpitree.charts_usage import activity_dots_chart, cohort_chart
from kpitree.drill import drill_dimensions, segment_table
from kpitree.errors import KpiTreeError, QueryError
from kpitree.evaluate import trend
from kpitree.explain import RELATIVE_AS_AMOUNT, segment_display, segment_frame, segment_heading
from kpitree.format import fmt, fmt_change, fmt_maturing
from kpitree.loads import latest_warnings
from kpitree.periods import Grain, parse_period, period_containing, trailing
from kpitree.plain import markdown_text as md
from kpitree.suggest import (
    missing_owners,
    resuggest_active,
    suggested_targets,
    why_no_tree,
)
from kpitree.usage import ACCOUNT_COLUMNS, activity_heatmap, cohort_retention, panel_charts
from kpitree.warmup import baseline_period
from kpitree.whatif import basis_words, goal_of, needed_for_target, running, slider_for, what_if
from ui_report import report_buttons

# px the tree is laid out for: its column on a 1280 px screen. Wider columns stretch the chart (boxes
# get wider, text stays put), so nothing drawn for this width is cut off on a wider screen.
TREE_WIDTH = 440.0
GRAINS = [g.value for g in (Grain.MONTH, Grain.QUARTER, Grain.WEEK, Grain.YEAR)]
VERSUS = {"target": "its target", "previous": "the previous period", "last_year": "the same period last year"}
BUTTON_CHARS = 30  # an "Open: …" button's label beyond this is cut (the full label is its tooltip)


def pick_tree(ws):
    """The tree picked in the sidebar; a tree file that does not load is named, with a link to the
    Builder, and another tree is shown instead (never a traceback)."""
    paths = ui.tree_paths(ws)
    if not paths:  # a workspace whose data supports no tree yet: say what to load (the app's own words, with
        st.info(why_no_tree(ws))  # `commands` in Markdown; it names shipped templates only)
        st.stop()
    labels = list(paths)
    wanted = ui.param("tree")
    default = next((k for k in labels if paths[k].stem == wanted), None)
    if default is None:
        default = next((k for k in labels if k.endswith("(workspace)")), f"{ui.DEFAULT_TREE.stem} (template)")
    if "tree_pick" not in st.session_state:
        st.session_state["tree_pick"] = default if default in labels else labels[0]
    if ui.kept_value("tree_pick") not in (None, *labels):  # a tree deleted meanwhile
        ui.set_sticky("tree_pick", labels[0])
    label = st.sidebar.selectbox("Tree", labels, **ui.sticky("tree_pick"))
    # the Builder opens the tree being looked at (the broken one, to fix it)
    st.session_state["_viewing_tree"] = ("workspace" if label.endswith("(workspace)") else "template", paths[label].stem)
    try:
        tree = ui.tree_for(paths[label])
    except (KpiTreeError, OSError) as exc:
        st.error(f"**The tree {md(label)} cannot be opened**: {md(exc)}", icon=":material/error:")
        st.page_link("views/2_Builder.py", label="Open it in the Builder to fix it", icon=":material/edit:")
        for other in labels:
            if other == label:
                continue
            try:
                tree = ui.tree_for(paths[other])
            except (KpiTreeError, OSError):
                continue
            st.caption(f"Showing **{md(other)}** instead.")
            label = other
            break
        else:
            st.info("No other tree of this workspace opens either: fix one in the Builder.")
            st.stop()
    st.query_params["tree"] = paths[label].stem
    return tree


def pick_period(engine) -> tuple[str, object]:
    grain = ui.param("grain", "month")
    if "grain" not in st.session_state:
        st.session_state["grain"] = grain if grain in GRAINS else "month"
    grain = st.sidebar.radio("Grain", GRAINS, horizontal=True, **ui.sticky("grain"))
    current = period_containing(engine.as_of, grain)
    options = [p.key for p in reversed(trailing(current, 24 if grain != "week" else 26))]
    latest = current if current.is_complete(engine.as_of) else current.previous()
    wanted = ui.param("period")
    if st.session_state.get("_period_grain") != grain:
        st.session_state["_period_grain"] = grain
        ui.set_sticky("period", wanted if wanted in options else latest.key)
    period = st.sidebar.selectbox("Period", options, **ui.sticky("period"),
                                  format_func=lambda k: k + (" (running)" if k == current.key and not
                                                             current.is_complete(engine.as_of) else ""))
    st.query_params["grain"] = grain
    st.query_params["period"] = period
    return grain, parse_period(period)


def main() -> None:
    st.sidebar.title("KPI Tree")
    try:
        ws = ui.choose_workspace()
        if ws is None:
            return
        engine = ui.engine_for(ws)
        tree = pick_tree(ws)
        grain, period = pick_period(engine)
    except KpiTreeError as exc:
        st.error(md(exc))
        return
    versus_default = ui.param("versus", "target")
    if "versus" not in st.session_state:
        st.session_state["versus"] = versus_default if versus_default in VERSUS else "target"
    versus = st.sidebar.radio("Compare with", list(VERSUS), format_func=lambda v: VERSUS[v], **ui.sticky("versus"),
                              help="Sets every comparison on the page: box figures, the panel's change, the trend's "
                                   "reference, segment tables and sentences. Colours stay against target.")
    st.query_params["versus"] = versus
    ui.page_style()
    with st.sidebar:  # the client's report of this very view (tree, period, baseline), for every role
        st.divider()
        report_buttons(ws, tree, period, grain, versus, engine=engine, load_warnings=_load_warnings(ws, shown=False))

    started = time.perf_counter()
    evaluation = ui.evaluation(ws, tree, period)
    took = time.perf_counter() - started
    try:  # which engine answered, and how long it took (issue 18); a remote one without its settings says so
        engine_words = f"{md(ws.engine_label())} answered in {took:.1f} s"
    except KpiTreeError as exc:
        engine_words = md(exc)
    root = evaluation.nodes[0]
    baselines = ({n.id: n.target for n in evaluation.nodes} if versus == "target"
                 else ui.baselines(ws, tree, period, versus))
    counts = {s: sum(1 for n in evaluation.nodes if n.status == s) for s in STATUS_WORD}
    state = "complete" if evaluation.complete else f"running, {root.elapsed:.0%} elapsed — flows shown at pace"
    st.markdown(f"### {md(tree.name)} · {period.key}")
    against = "" if versus == "target" else f" · comparing with {VERSUS[versus]} ({baseline_period(period, versus).key})"
    st.caption(f"Workspace **{md(ws.name)}** · data as of {evaluation.as_of} · period {state} · "
               f"{counts['red']} red, {counts['amber']} amber, {counts['green']} green, "
               f"{counts['no_target']} without target, {counts['no_data']} without data{against} · {engine_words}")
    _load_warnings(ws)
    _suggestions(tree)
    _stale_targets(ws, engine, tree)

    ids = [n.id for n in evaluation.nodes]
    if "selected" not in st.session_state:
        wanted = ui.param("node")
        if wanted and wanted not in ids:
            st.warning(f"Node {md(repr(wanted))} is not in tree {md(repr(tree.name))}; showing the north star.")
            wanted = None
        st.session_state["selected"] = wanted or root.id
    if st.session_state["selected"] not in ids:
        st.session_state["selected"] = root.id
    # The chart keeps its own selection: after the selectbox or an "Open" button chose another node, a
    # click on the box the chart still holds would send no change. A new key (a fresh chart showing the
    # chosen node) after every such choice keeps the two in step, so the last action always wins. The
    # click is read before the chart is drawn, so the chart already shows the clicked node's path.
    chart_key = f"tree_{st.session_state.get('_tree_generation', 0)}"
    clicked = _clicked(st.session_state.get(chart_key))
    if clicked and clicked != st.session_state.get("_last_click") and clicked in ids:
        st.session_state["selected"] = clicked
        ui.request_scroll("answer")
    st.session_state["_last_click"] = clicked
    if "show_path" not in st.session_state:  # "Follow the red path" is part of the view a link opens
        st.session_state["show_path"] = ui.param("path") == "1"
    node_id = st.session_state["selected"]
    st.session_state["node_pick"] = node_id
    st.query_params["node"] = node_id
    if st.session_state.get("show_path"):
        st.query_params["path"] = "1"
    else:
        st.query_params.pop("path", None)
    st.session_state["_viewing_metric"] = tree.node(node_id).metric  # Definitions opens on it
    result = ui.explanation(ws, tree, node_id, period, versus)

    tree_col, panel_col = st.columns([1, 1], gap="medium")
    with tree_col:
        st.html(legend_html(versus, None if versus == "target" else baseline_period(period, versus).key))
        drawn = path_ids(evaluation, node_id, [s.id for s in result.red_path] if result is not None else []) \
            if st.session_state.get("show_path") else []
        # built once per view, node and path (datasets already in Arrow): a click only sends it
        spec = ui.drawn_tree_spec(str(ws.root), ui.version_of(ws), tree.source, Path(tree.source).stat().st_mtime,
                                  period.key, TREE_WIDTH, versus, node_id, tuple(drawn))
        st.vega_lite_chart(spec, key=chart_key, on_select="rerun", selection_mode="node", width="stretch")
    with panel_col, st.container(key="panel_pane"):
        labels = {n.id: f"{n.label} — {STATUS_WORD[n.status]}" for n in evaluation.nodes}
        col_pick, col_path = st.columns([3, 2], vertical_alignment="bottom")
        col_pick.selectbox("Selected node (or click a box)", ids, key="node_pick", format_func=labels.get,
                           on_change=_picked)
        col_path.button("Follow the red path", key="red_path", type="primary", on_click=_follow, args=(root.id,),
                        width="stretch", help="From the north star down to the lever that explains most of the gap")
        _panel(ws, engine, tree, evaluation, node_id, period, versus, baselines, result)
        ui.scroll_into_view()
    ui.warm_up(ws, tree, evaluation, period, versus)


def _load_warnings(ws, shown: bool = True) -> list[str]:
    """The warnings of the data's latest loads (amounts in several currencies added as they are, …): they
    change the numbers on this page, so the page says so beside its data caption (once per data version)."""
    try:
        found = ui.cached_value(("load_warnings", str(ws.root), ui.version_of(ws)), lambda: latest_warnings(ws))
    except KpiTreeError:
        return []
    if found and shown:
        with st.expander(f"The latest loads raised {len(found)} warning(s) that change these numbers",
                         icon=":material/warning:"):
            for text in found:
                st.markdown(f"- {md(text)}")
            st.caption("Fix the files and load them again on the Upload page; the report carries these warnings too.")
    return found


def _suggestions(tree) -> None:
    """Targets that are still suggestions, and the numbers still without an owner (seed 003)."""
    suggested = [n for n in suggested_targets(tree) if n.target.is_set]
    if suggested:
        st.caption(f"{len(suggested)} of {len(tree.nodes)} targets are **suggested** from this workspace's own "
                   "history (marked “~” on the boxes): edit them in the Builder to make them yours.")
    missing = missing_owners(tree)
    if missing:
        with st.expander(f"{len(missing)} number(s) still need an owner — seed 003: every number has an owner"):
            for n in missing:
                st.markdown(f"- **{md(n.label)}** — {md(n.owner or 'nobody')}")
            st.caption("Name the person in the Builder (Owner), then Save & make active.")


def _stale_targets(ws, engine, tree) -> None:
    """After a reload that moved the data under the active tree's suggested targets (a stage re-mapped, trial
    4): the colours on this page judge the numbers against targets planned from the earlier data. Said here,
    where the wrong colours show, with the Upload page's offer to plan them again (`suggest.resuggest_active`,
    checked once per data version and tree file; targets a person typed stay)."""
    ui.show_said("_tree_resuggested")
    kind, stem = st.session_state.get("_viewing_tree", ("", ""))
    if kind != "workspace" or not any(n.target.suggested for n in tree.nodes):
        return
    key = ("stale_targets", str(ws.root), ui.version_of(ws), tree.source, Path(tree.source).stat().st_mtime)
    if st.session_state.get("_tree_keep_targets") == key:
        return
    try:
        found = ui.cached_value(key, lambda: resuggest_active(ws, engine))
    except KpiTreeError as exc:
        st.caption(md(f"Whether the tree's suggested targets still fit the data could not be checked: {exc}"))
        return
    if found is None or found.name != stem or not found.done.stale:
        return
    ui.resuggest_box(
        ws, found, prefix="tree", engine=engine, said="_tree_resuggested",
        headline=f"**The suggested targets of tree {md(found.name)} were computed from earlier data**: the colours "
                 "below judge the numbers against them.",
        after=" The colours below judge against them now.",
        on_keep=lambda: st.session_state.update(_tree_keep_targets=key))


def _clicked(event) -> str | None:
    selection = getattr(event, "selection", None) or (event.get("selection") if isinstance(event, dict) else None)
    picked = (selection or {}).get("node") if selection else None
    if isinstance(picked, list) and picked:
        return picked[0].get("id")
    return None


def _picked() -> None:
    _select(st.session_state["node_pick"])


def _follow(root_id: str) -> None:
    """"Follow the red path": the north star's path, drawn on the tree and listed in the panel."""
    st.session_state["show_path"] = True
    _select(root_id, anchor="red_path_box")


def _select(node_id: str, anchor: str = "answer") -> None:
    """A node chosen outside the chart: a fresh chart (new key) so that any box, clicked next, counts;
    the panel scrolls to show the result."""
    st.session_state["selected"] = node_id
    st.session_state["_tree_generation"] = st.session_state.get("_tree_generation", 0) + 1
    st.session_state["_last_click"] = None
    ui.request_scroll(anchor)


def _open_button(label: str, key: str, node_id: str) -> None:
    """"Open: <label>", cut to fit the column (the full label is the tooltip)."""
    short = label if len(label) <= BUTTON_CHARS else label[:BUTTON_CHARS - 1].rstrip() + "…"
    st.button(f"Open: {md(short)}", key=key, on_click=_select, args=(node_id,), help=md(f"Open {label}"),
              width="stretch")


def _red_path(ws, tree, period, versus, evaluation, selected: str) -> None:
    result = ui.explanation(ws, tree, tree.root.id, period, versus, causes=True)
    if result is None:
        st.info("The explanation engine is not installed in this build; use the segment charts below.")
        return
    adverse = result.gap is not None and (result.gap < 0 if result.direction == "higher" else result.gap > 0)
    unjudged = result.gap is None  # no data (or nothing to compare with): the path goes on below it
    name = md(result.label)
    with st.container(border=True, key="red_path_box"):
        sentences = result.sentences()
        empty = unjudged and len(sentences) <= 1 and not result.causes  # nothing below it to name
        judged = [n for n in evaluation.nodes if n.status in ("green", "amber", "red")] if empty else []
        if empty and not judged:
            st.markdown(f"**Red path — {name} cannot be judged here, and no part below it can either**")
        elif empty:
            st.markdown(f"**Red path — {name} cannot be judged here, and no part below it is off track on its own**")
        elif unjudged:
            st.markdown(f"**Red path — {name} cannot be judged here, so each part below it is judged on its own**")
        elif adverse:
            st.markdown("**Red path — where to look and who to talk to** "
                        + ("(drawn in red on the tree)" if selected == tree.root.id else
                           f"(the tree draws in red the way to {md(tree.node(selected).label)}, open above)"))
        else:
            st.markdown(f"**{name} did not fall short of {md(_against(result))}** — what moved it:")
        for i, sentence in enumerate(sentences, 1):
            st.markdown(f"{i}. {md(sentence)}")
        if empty and not judged:
            st.caption("No number in this tree has both data and a target for this period, so none can be off "
                       "track: type targets in the Builder, or compare with the previous period (sidebar).")
        elif empty:
            st.caption(f"{len(judged)} number(s) below it have a target and are on or near it; the others have no "
                       "target or no data, so they cannot be judged: type targets in the Builder.")
        lever = result.red_path[-1].id if result.red_path else None
        if (adverse or unjudged) and lever and lever != tree.root.id:
            _open_button(tree.node(lever).label, "open_lever", lever)
        others = [c for c in result.causes if c.id != lever or c.also]
        if others:
            what = "off on its own" if unjudged else f"with a material part of the {name} " \
                f"{'gap' if adverse else 'change'}, or red on its own"
            st.markdown(f"**Also off track** — every other lever {what}")
            for c in others:
                where = " → ".join(c.path_labels[1:]) or c.label
                said = c.sentences()[1:] if c.id == lever else c.sentences()
                aside = f" *({md(c.aside)}.)*" if c.aside else ""
                st.markdown(f"- **{md(where)}** ({STATUS_WORD.get(c.status, c.status)}): "
                            f"{md(' '.join(said))}{aside}")
                _open_button(c.label, f"open_cause_{c.id}", c.id)
        for _, why in result.unlisted:
            st.caption(md(why))
        st.button("Hide the red path", key="hide_path", type="tertiary", on_click=_hide_path,
                  help="Stop drawing it on the tree and listing it here")


def _hide_path() -> None:
    st.session_state["show_path"] = False


def _against(result) -> str:
    return "its target" if result.versus == "target" else result.baseline_label


def _panel(ws, engine, tree, evaluation, node_id, period, versus, baselines, result) -> None:
    node = tree.node(node_id)
    res = evaluation.node(node_id)
    base = baselines.get(node_id) if versus != "target" else res.judged_target
    where = "target" if versus == "target" else baseline_period(period, versus).key
    with st.container(key="answer"):
        st.markdown(f"#### {md(res.label)}")
        c = st.columns(2)
        delta = fmt_change(res.compared - base, res.unit, ascii_sign=True) + f" vs {where}" \
            if res.compared is not None and base is not None else None
        c[0].metric("Pace to period end" if res.pace is not None else "Actual", fmt(res.compared, res.unit, compact=True),
                    delta=delta, delta_color="normal" if res.direction == "higher" else "inverse")
        if versus == "target" and res.target_by_now is not None:  # a running period's stock
            c[1].metric("Target by now", fmt(res.target_by_now, res.unit, compact=True),
                        help=md(f"{res.by_now_basis}. Period target {fmt(res.target, res.unit)}."))
        elif versus == "target":
            c[1].metric("Target (suggested)" if res.target_basis and res.target is not None else "Target",
                        fmt(res.target, res.unit, compact=True), help=md(res.target_basis) if res.target_basis else None)
        else:
            c[1].metric(f"{where} ({VERSUS[versus].removeprefix('the ')})", fmt(base, res.unit, compact=True))
        target = "" if versus == "target" else f" · target {fmt(res.target, res.unit, compact=True)}"
        status = fmt_maturing(res.expected_final, res.unit, res.completion).capitalize() if res.maturing \
            else STATUS_WORD[res.status].capitalize()
        st.markdown(f"**{md(status)}** (status is against target{target}) · "
                    f"owner **{md(res.owner)}** · review {md(res.review)}")
        if node.description:
            st.caption(md(node.description))
        if res.value is None:
            st.info(f"**{md(res.label)} has no data in {period.key}**: "
                    + (f"{md(res.reason)}." if res.reason else "nothing to compute it from in this period."))
        for sentence in _summary(result) if res.value is not None else []:
            st.markdown(md(sentence))
        link = (f"Exact formula: `{node.formula.replace('`', chr(39))}`" if node.formula else
                "Influence links: children move this number but do not add up to it." if node.children else
                "A lever: the team acts on this number directly.")
        st.caption(link)
        if res.target_basis:
            st.caption(f"Target suggested from this workspace's own history: {md(res.target_basis)}. Editing it in the "
                       "Builder replaces the suggestion." if res.target is not None else
                       f"No target: {md(res.target_basis.removeprefix('no target: '))} — type one in the Builder.")
        how = result.how_computed() if result is not None else []
        if how:
            with st.expander("How this was computed"):
                for term in how:
                    st.markdown(f"- {md(term)}")
    if st.session_state.get("show_path"):
        _red_path(ws, tree, period, versus, evaluation, node_id)

    lacking = engine.missing(node)  # tables or columns this workspace does not have
    _what_next(tree, evaluation, node, period)
    if node.metric == "arr" and lacking is None:
        _bridge(engine, node, evaluation.node(node.id), period, ui.view_key(ws, tree, node_id, period, versus))
    _children(tree, evaluation, node, result, versus, baselines, where, ui.view_key(ws, tree, node_id, period, versus))
    if lacking is not None:
        return  # no segments or usage views to draw: the box above says what to load
    title = "Trend against target" if versus == "target" else f"Trend — dotted: {where}; dashed: target"
    reference = None if versus == "target" or base is None else (where, base)
    view = ui.view_key(ws, tree, node_id, period, versus)
    ui.cached_chart((*view, "trend"), lambda: trend_chart(trend(engine, tree, node_id, period, 18), res.unit, title,
                                                          reference=reference), "trend")
    top_segment = _segments(engine, tree, node, res, period, versus, result, view)
    _usage(engine, node, period, top_segment, view)


def _summary(result) -> list[str]:
    """The panel's words after its figures: the headline in plain words, the child that explains
    most, who at a lever, the segments named (`Explanation.summary`)."""
    return result.summary() if result is not None else []


def _slider_scale(unit: str, high: float) -> tuple[float, str]:
    """How a what-if slider shows a number: percents as %, large amounts in k or M (no `3119583`)."""
    if unit == "percent":
        return 100.0, "%.1f%%"
    money = "$" if unit in ("money", "money_per_day") else ""
    if high >= 2_000_000:
        return 1e-6, f"{money}%.2fM"
    if high >= 20_000:
        return 1e-3, f"{money}%.0fk"
    return 1.0, f"{money}%.0f" if unit in ("money", "count", "number", "score") or high >= 100 else "%.1f"


def _what_next(tree, evaluation, node, period) -> None:
    """Back-solving (what each formula child alone would need) and a what-if slider on this node. A running
    period is solved on one basis, the numbers so far against the targets by now (`kpitree.whatif`), and
    the expander says so."""
    try:
        solutions = needed_for_target(evaluation, tree, node.id) if node.formula and evaluation.node(node.id).target else []
    except KpiTreeError:  # a child without a value this period: nothing to solve from
        solutions = []
    slider = slider_for(evaluation, tree, node.id)
    if not solutions and slider is None:
        return
    res = evaluation.node(node.id)
    so_far = evaluation.as_of.isoformat() if running(evaluation) else ""
    with st.expander("What it takes — targets solved backwards, and what if", expanded=True):
        margin = _margin(evaluation, tree, node.id)
        if solutions and margin is not None:  # solving backwards would only propose cuts
            against = "its target by now " if so_far else ""
            st.markdown(f"**{md(node.label)} is on target**: {md(fmt(res.value, res.unit))}{' so far' if so_far else ''} "
                        f"against {against}{md(fmt(goal_of(evaluation, tree, node.id), res.unit))}, {md(margin)} — "
                        "nothing to close.")
        elif solutions:
            if so_far:
                st.markdown(f"**To be on the {md(node.label)} plan by {so_far}**, each child alone, the others as "
                            "they are:")
            else:
                st.markdown(f"**To reach the {md(node.label)} target**, each child alone, the others as they are:")
            for sol in solutions:
                st.markdown(f"- {md(sol.sentence())}")
        if solutions and so_far:
            st.caption(md(basis_words(evaluation, tree, node.id)))
        if slider is not None:
            _what_if_slider(tree, evaluation, node, period, slider, so_far)


def _what_if_slider(tree, evaluation, node, period, slider, so_far: str) -> None:
    """The what-if slider on this node and the tree it recomputes (numbers so far in a running period)."""
    scale, shown = _slider_scale(slider.unit, max(abs(slider.high), abs(slider.low)))
    value = st.slider(f"What if {md(slider.label)}{' so far' if so_far else ''} were…", min_value=slider.low * scale,
                      max_value=slider.high * scale, value=slider.current * scale,
                      step=slider.step * scale, format=shown,
                      key=f"whatif_{period.key}_{node.id}") / scale
    parent = md(tree.node(slider.parent).label)
    parent_margin = _margin(evaluation, tree, slider.parent)
    if parent_margin is not None:
        st.caption(f"{parent} is on target{' so far' if so_far else ''} ({md(parent_margin)}): this number need not "
                   "move for it.")
    elif slider.needed is not None:
        goal = f"to be on the {parent} plan by {so_far}" if so_far else f"for the {parent} target"
        st.caption(f"Needed {goal}: {md(slider.needed.sentence())}")
    if abs(value - slider.current) > slider.step * 1e-6:
        result = what_if(evaluation, tree, {node.id: value})
        rows = [{"node": n.label, "before": fmt(n.before, n.unit), "after": fmt(n.after, n.unit),
                 "status": f"{STATUS_WORD[n.status_before]} → {STATUS_WORD[n.status_after]}"}
                for n in result.nodes if n.how != "unchanged"]
        st.table(rows, hide_index=True)
        if so_far:
            st.caption(f"Numbers so far (to {so_far}), each judged against its target by now, as the tree colours "
                       "it; a flow's status is that of its pace.")
        for child, parent_id in result.stopped:
            st.caption(f"{md(tree.node(parent_id).label)} is linked to {md(tree.node(child).label)} by influence "
                       "only: left unchanged.")


def _bridge(engine, node, res, period, view: tuple) -> None:
    """The ARR bridge of the period as a waterfall (seed 002): ARR at its start, each movement of the
    subscriptions (new, expansion, reactivation, contraction, churn), ARR at its end — the catalogue's
    identity, to the cent (`kpitree.bridge`)."""
    try:
        bridge = ui.cached_value((*view, "arr_bridge"), lambda: arr_bridge(engine, period, tuple(node.filter)))
    except QueryError as exc:
        st.info(f"ARR bridge: {md(exc)}.")
        return
    st.markdown(f"**ARR bridge {period.key}** — from {md(fmt(float(bridge.start), 'money', compact=True))} at its "
                f"start to {md(fmt(float(bridge.end), 'money', compact=True))} at its end, "
                f"{md(fmt_change(float(bridge.net_new), 'money'))} net")
    ui.cached_chart((*view, "arr_bridge_chart"), lambda: waterfall_chart(
        "ARR at start", float(bridge.start), bridge.steps(), "ARR at end", "money", direction=res.direction, zero=False),
        "arr_bridge")
    st.caption("Each step is the subscriptions' movement over the period (12 × MRR): new logos, expansion and "
               "reactivation add, contraction and churn take away; the steps add up to ARR at the end to the cent. "
               "The axis starts near the lowest level, not at $0, so that the movements show.")


def _margin(evaluation, tree, node_id: str) -> str | None:
    """"$76,100 (+171%) better than target" when a node is at or better than the target it is solved for
    (`whatif.goal_of`: in a running period its target by now, on its number so far), else None."""
    res = evaluation.node(node_id)
    goal = goal_of(evaluation, tree, node_id)
    if goal is None or res.value is None:
        return None
    better = res.value - goal if res.direction == "higher" else goal - res.value
    if better < 0:
        return None
    if better == 0:
        return "exactly on it"
    rel = f" ({better / abs(goal):.0%})" if goal and res.unit != "percent" \
        and abs(better / goal) <= RELATIVE_AS_AMOUNT else ""  # past it, the amount says it
    return f"{fmt_change(better, res.unit).lstrip('+')}{rel} better than {'its target by now' if running(evaluation) else 'target'}"


def _usage(engine, node, period, top_segment, view: tuple) -> None:
    """Seed 002's activity dots and a cohort retention chart, on the nodes they explain."""
    kinds = panel_charts(node.metric)
    if not kinds:
        return
    try:
        if "activity" in kinds:
            where = {top_segment[0]: top_segment[1]} if top_segment and top_segment[0] in ACCOUNT_COLUMNS else None
            ui.cached_chart((*view, "activity", tuple(sorted((where or {}).items()))), lambda: activity_dots_chart(
                activity_heatmap(engine, period, order="decline", where=where)), "activity_dots")
        if "cohort" in kinds:  # depends on the period only: one chart for every node and baseline
            ui.cached_chart((*view[:4], period.key, "cohorts"), lambda: cohort_chart(cohort_retention(engine, period)),
                            "cohorts")
    except QueryError as exc:
        st.info(f"Usage charts: {md(exc)}.")


def _children(tree, evaluation, node, result, versus, baselines, where, view: tuple) -> None:
    if not node.children:
        st.markdown("**No children** — this is where action happens. See the segments below for who.")
        return
    exact = {c.id: c for c in result.children} if result is not None else {}
    share = result.share_column() if result is not None else "share of gap"
    # a residual of nothing is no step (it would read "$0.00" between the parts)
    steps = [(c.label, c.contribution) for c in exact.values() if c.contribution is not None
             and not (c.link == "residual" and abs(c.contribution) <= 0.005 * abs(result.gap or 0))]
    if node.formula and steps:
        st.markdown(f"**{md(result.children_heading())}** (against {md(_against(result))})")
        res = evaluation.node(node.id)
        ui.cached_chart((*view, "waterfall"), lambda: waterfall_chart(result.baseline_label, result.baseline, steps,
                                                                      "actual", res.unit, direction=res.direction),
                        "waterfall")
        note = result.children_note()
        if note:
            st.caption(md(note))
    rows = []
    for cid in node.children:
        ch = evaluation.node(cid)
        row = {"child": ch.label, "status": STATUS_WORD[ch.status], "value": fmt(ch.compared, ch.unit, compact=True)}
        if versus == "target":
            row["target"] = ("~" if ch.target_basis and ch.target is not None else "") + fmt(ch.target, ch.unit,
                                                                                          compact=True)
        else:
            row[where] = fmt(baselines.get(cid), ch.unit, compact=True)
        row[share] = result.child_cell(cid) if result is not None else "—"
        row["owner"] = ch.owner
        rows.append(row)
    st.table(rows, hide_index=True)
    lacking = [f"{evaluation.node(c).label} {evaluation.node(c).reason}" for c in node.children
               if evaluation.node(c).reason]
    if lacking:
        st.caption("Without data: " + md("; ".join(lacking)) + ".")


def _segments(engine, tree, node, res, period, versus, result, view: tuple) -> tuple[str, str] | None:
    """The segment chart and table, best dimension first; returns (dimension, segment) that hurts most."""
    dims = drill_dimensions(engine, tree, node)
    if result is not None:
        ranked = [d.dimension for d in result.dimensions if d.dimension in dims]
        dims = ranked + [d for d in dims if d not in ranked]
    if not dims:
        st.query_params.pop("split", None)
        st.info(f"No split by segment: none of the drill dimensions ({md(', '.join(tree.dimensions_for(node)))}) "
                "has a value in the rows this number reads. Load or map such a column (an owner, a segment, a "
                "channel) to see who and where.")
        return None
    key = f"dim_{node.id}"
    wanted = ui.param("split")  # a pasted link opens on the split it was made with (issue 17)
    if "_split_seeded" not in st.session_state:  # the URL seeds the first split drawn, once per session
        st.session_state["_split_seeded"] = True
        if key not in st.session_state and wanted in dims:
            st.session_state[key] = wanted
    # readable labels ("Deal pipeline"); the value, the widget state and ?split= stay the column name
    dim = st.radio("Split by", dims, key=key, horizontal=True, format_func=lambda d: md(ui.dimension_label(d)))
    st.query_params["split"] = dim
    frame = ui.cached_value((*view, "segment_frame", dim), lambda: segment_frame(result, dim)) \
        if result is not None else None
    gain = result is not None and is_gain(result.direction, result.gap)
    if frame is not None and not frame.empty:
        # the explanation's own comparison: the chart agrees with the sentences above, and a segment is
        # coloured exactly when the explanation names it (`explains`)
        table, worst = frame, [s for s, e in zip(frame["segment"], frame["explains"], strict=True) if e]
        by = md(ui.dimension_label(dim, capital=False))
        st.caption(segment_heading(result, dim, label=by).replace(f"By {by} — ", f"**By {by}** — ", 1))
        # the same rows, formatted and named for what they are
        shown = ui.cached_value((*view, "segment_display", dim), lambda: segment_display(result, dim))
    else:
        gain = False
        baseline = baseline_period(period, versus)
        table = segment_table(engine, node, period, baseline, dim)
        worst = [s for s, a in zip(table["segment"], table["adverse"], strict=True) if a > 0][:1]
        st.caption(f"**By {md(ui.dimension_label(dim, capital=False))}** — {period.key} against {baseline.key}"
                   + (" (segments have no targets: compared with the previous period)" if versus == "target" else ""))
        money = res.unit in ("money", "money_per_day")
        shown = {dim: list(table["segment"]), period.key: [fmt(v, res.unit, compact=money) for v in table["current"]],
                 baseline.key: [fmt(v, res.unit, compact=money) for v in table["baseline"]],
                 "difference": [fmt_change(v, res.unit) for v in table["change"]]}
    if table.empty:
        st.info("No rows for this split in these periods.")
        return None
    colour = STATUS_STROKE["green" if gain else "red"]
    ui.cached_chart((*view, "segments", dim), lambda: segment_chart(table, res.unit, dim, worst, highlight_color=colour),
                    "segments")
    st.table(shown, hide_index=True)
    return (dim, worst[0]) if worst and not gain else None


with ui.foreground():
    main()
