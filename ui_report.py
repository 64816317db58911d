"""Streamlit buttons that hand over the report of the view on screen: HTML, PDF and two CSVs.

Thin on purpose: `kpitree.report` builds everything; this only asks for it once per view (a
"Prepare" click, since a report takes a few seconds), keeps the files for this session while the
view stays the same, and offers them as downloads. Every failure is one plain sentence.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from kpitree.errors import KpiTreeError
from kpitree.plain import markdown_text as md


def _view(workspace, tree, period, versus: str) -> tuple:
    """What a prepared report depends on: the workspace's data, the tree file's version, period, baseline."""
    source = Path(tree.source) if tree.source else None
    mtime = source.stat().st_mtime if source is not None and source.exists() else 0.0
    return (str(workspace.root), workspace.data_version(), str(source), mtime, period.key, versus)


def _prepare(workspace, tree, period, grain, versus, engine, load_warnings) -> dict:
    """The report's files; the PDF only where Chromium is installed (else the sentence saying so).

    The numbers and explanations come from the page's own caches (`ui`), so the report says exactly
    what the page shows and the nodes the page (or its warm-up) explained are not explained again."""
    import ui
    from kpitree.report import build_report
    from kpitree.report_render import PDF_MISSING, pdf_available

    def explain(node_id: str, causes: bool):
        found = ui.explanation(workspace, tree, node_id, period, versus, causes=causes)
        if found is None:  # no explanation engine in this build: the report computes its own
            from kpitree.explain import explain_node

            found = explain_node(engine or ui.engine_for(workspace), tree, node_id, period, versus=versus,
                                 causes=causes)
        return found

    report = build_report(workspace, tree, period, grain, versus, engine=engine or ui.engine_for(workspace),
                          load_warnings=load_warnings, explain=explain)
    html = report.html()
    files = {"stem": report.file_stem(), "html": html.encode("utf-8"), "values": report.node_values_csv(),
             "causes": report.causes_csv(), "pdf": None, "pdf_problem": None, "seconds": report.seconds}
    if not pdf_available():
        files["pdf_problem"] = PDF_MISSING[:1].upper() + PDF_MISSING[1:] + "."
        return files
    try:
        from kpitree.report_render import html_to_pdf

        files["pdf"] = html_to_pdf(html)
    except KpiTreeError as exc:
        files["pdf_problem"] = f"No PDF this time: {exc}."
    return files


def report_buttons(workspace, tree, period, grain: str | None = None, versus: str = "target", *, engine=None,
                   load_warnings=(), key: str = "report") -> None:
    """"Prepare the report", then download buttons for the report (HTML, PDF) and the CSVs of node values
    and causes. `engine`: the page's cached engine (the same numbers the page shows, nothing read twice)."""
    slot = f"_{key}_files"
    view = _view(workspace, tree, period, versus)
    kept = st.session_state.get(slot)
    if kept is None or kept.get("view") != view:
        if not st.button("Prepare the report", key=f"{key}_prepare", icon=":material/description:",
                         help="One file for the client: the tree, the red path and every cause with owners, each red "
                              "number's charts, the data's coverage and warnings. Opens offline; also as PDF and CSV."):
            return
        with st.spinner("Building the report (a few seconds)…"):
            try:
                kept = {**_prepare(workspace, tree, period, grain, versus, engine, tuple(load_warnings)), "view": view}
            except KpiTreeError as exc:
                st.error(f"The report could not be made: {md(exc)}", icon=":material/error:")
                return
            except Exception as exc:  # a fault of ours: a sentence, never a traceback
                first = str(exc).splitlines()[0][:200] if str(exc) else ""
                st.error(f"The report could not be made ({md(type(exc).__name__)}: {md(first)}). The page above "
                         "is unaffected; try again, or use `python -m kpitree report` on the command line.",
                         icon=":material/error:")
                return
        st.session_state[slot] = kept
    stem = kept["stem"]
    # One under the other: the page puts this in the sidebar, where four columns left room for the icons only.
    st.download_button("Report (HTML)", kept["html"], file_name=f"{stem}.html", mime="text/html",
                       key=f"{key}_html", icon=":material/download:", on_click="ignore",
                       help="Opens offline in any browser; nothing is fetched")
    if kept["pdf"] is not None:
        st.download_button("Report (PDF)", kept["pdf"], file_name=f"{stem}.pdf", mime="application/pdf",
                           key=f"{key}_pdf", icon=":material/download:", on_click="ignore")
    st.download_button("Node values (CSV)", kept["values"], file_name=f"{stem}-values.csv", mime="text/csv",
                       key=f"{key}_values", icon=":material/download:", on_click="ignore")
    st.download_button("Causes (CSV)", kept["causes"], file_name=f"{stem}-causes.csv", mime="text/csv",
                       key=f"{key}_causes", icon=":material/download:", on_click="ignore")
    if kept["pdf_problem"]:
        st.caption(md(kept["pdf_problem"]))
