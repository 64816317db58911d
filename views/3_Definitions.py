"""Definitions: every catalogue metric in words and symbols, what it reads, its parameters, a
worked example on the chosen workspace and the seeds' benchmark.

Layout and calls into `kpitree` only; every number comes from a core function.
"""

from __future__ import annotations

import streamlit as st

import ui
from kpitree import usage
from kpitree.errors import KpiTreeError
from kpitree.format import fmt
from kpitree.metrics import CATALOGUE, GROUPS, MRR_NOTATION, PARAMETERS, describe, metric_params, worked_example
from kpitree.periods import latest_complete
from kpitree.plain import markdown_text

st.set_page_config(page_title="Definitions · KPI Tree", page_icon="🌳", layout="wide")

KIND_WORDS = {"flow": "a flow (adds up over the period; pro-rated while it runs)",
              "stock": "a stock (a level at the end of the period)",
              "ratio": "a rate or ratio (its value so far stands while the period runs)"}
STEP_METRICS = {"journey_completion": 3, "feature_adoption": 1}  # metrics whose example takes features


def main() -> None:
    st.sidebar.title("KPI Tree")
    try:
        ws = ui.choose_workspace()
        engine = ui.engine_for(ws) if ws is not None else None
    except KpiTreeError as exc:
        st.error(markdown_text(exc))
        ws = engine = None
    st.markdown("### Metric definitions")
    st.caption("Every metric a tree node can use: what it means, how it is computed and from which columns, "
               "the parameters it depends on, and its value on this workspace for the latest complete month.")
    name = _pick_metric()
    _definition(name)
    _example(engine, name)
    _parameters(ws)
    with st.expander("All metrics", expanded=False):
        rows = []
        for group, names in GROUPS.items():
            for n in names:
                d = describe(n)
                rows.append({"metric": n, "label": d.label, "group": group, "unit": d.unit, "better": d.direction,
                             "definition": d.definition, "reads": ", ".join(d.columns),
                             "benchmark": d.benchmark.text if d.benchmark else ""})
        st.dataframe(rows, hide_index=True, width="stretch", key="all_metrics")


def _pick_metric() -> str:
    """The metric a link names, else the one of the tree node the user was looking at (set by the
    tree page each time a node is shown), else the first; a later node in view wins over the
    metric picked on an earlier visit, since that is what the user came to read about."""
    wanted = ui.param("metric")
    viewing = st.session_state.get("_viewing_metric")
    if viewing in CATALOGUE and viewing != st.session_state.get("_def_seen_metric"):
        st.session_state["_def_seen_metric"] = viewing
        wanted = viewing
        st.session_state.pop("def_group", None)
        st.session_state.pop("def_metric", None)
    groups = list(GROUPS)
    if "def_group" not in st.session_state:
        st.session_state["def_group"] = next((g for g, ns in GROUPS.items() if wanted in ns), groups[0])
    left, right = st.columns([1, 2])
    group = left.selectbox("Group", groups, key="def_group")
    names = list(GROUPS[group])
    if st.session_state.get("def_metric") not in names:
        st.session_state["def_metric"] = wanted if wanted in names else names[0]
    name = right.selectbox("Metric", names, key="def_metric", format_func=lambda n: f"{CATALOGUE[n].label} — {n}")
    st.query_params["metric"] = name
    return name


def _definition(name: str) -> None:
    d = describe(name)
    st.markdown(f"#### {d.label}")
    st.markdown(f"`{d.name}` · {KIND_WORDS[d.kind.value]} · unit **{d.unit}** · **{d.direction}** is better")
    st.markdown(f"**In words.** {d.definition}")
    st.markdown("**In symbols.**")
    st.code(d.formula, language=None)
    if "subscriptions" in d.columns:
        st.caption(MRR_NOTATION)
    if d.note:
        st.caption(d.note)
    left, right = st.columns(2)
    with left:
        st.markdown("**Reads**")
        st.dataframe([{"table": t, "columns": ", ".join(c)} for t, c in d.columns.items()], hide_index=True,
                     width="stretch", key="reads")
    with right:
        st.markdown("**Parameters**")
        if d.parameters:
            st.dataframe([{"parameter": p.name, "default": p.default, "meaning": p.description} for p in d.parameters],
                         hide_index=True, width="stretch", key="metric_params")
        else:
            st.markdown("None: the definition is fixed.")
    if d.benchmark:
        st.info(f"Seed benchmark: **{d.benchmark.text}** ({d.benchmark.source}).")


def _example(engine, name: str) -> None:
    st.markdown("**Worked example**")
    if engine is None:
        st.info("Choose a workspace with data to see this metric computed on it.")
        return
    period = latest_complete(engine.as_of, "month")
    filters: tuple = ()
    if name in STEP_METRICS and "events" in engine.loaded:
        options = usage.features(engine)
        chosen = st.multiselect("Features (in order)" if name == "journey_completion" else "Feature",
                                options, default=options[: STEP_METRICS[name]], key=f"features_{name}")
        if chosen:
            filters = (("feature", tuple(chosen)),)
    try:
        ex = worked_example(engine, name, period, filters)
    except KpiTreeError as exc:
        st.warning(markdown_text(exc))
        return
    d = describe(name)
    if ex.missing:  # the reason a tree node on it gives, word for word (`metrics.Missing.reason`)
        st.warning(f"**{d.label} has no value on this workspace**: {markdown_text(ex.reason)}. A tree node on it shows "
                   "“no data” with the same reason.")
        return
    st.metric(f"{d.label} · {period.key}", fmt(ex.value, d.unit))
    st.dataframe([{"component": c, "value": fmt(v, "")} for c, v in ex.components.items()], hide_index=True,
                 width="stretch", key="components")
    st.caption(f"Workspace data as of {engine.as_of}; components are the sums and counts the value is made of"
               + (f"; filter {markdown_text(dict(ex.filters))}" if ex.filters else "") + ".")


def _parameters(ws) -> None:
    st.markdown("#### Parameters of the definitions")
    values = dict(metric_params(ws.settings())) if ws is not None else {}
    st.dataframe([{"parameter": p.name, "default": p.default, "this workspace": values.get(p.name, p.default),
                   "unit": p.unit, "meaning": p.description} for p in PARAMETERS.values()],
                 hide_index=True, width="stretch", key="all_params")
    st.caption("Set a workspace's values in its workspace.json (e.g. \"gross_margin\": 0.75, \"health_weight_nps\": 0.4).")


main()
