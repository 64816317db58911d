"""Workspaces: create, switch, rename and delete the workspaces under the data directory.

Each browser session works in the workspace it picked (the sidebar picker, kept in the URL);
nothing here changes another session's choice. Deleting moves the workspace to the data
directory's `.trash` folder, from where an administrator can restore it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from kpitree.errors import KpiTreeError
from kpitree.workspace import Workspace, create_workspace, delete_workspace, list_workspaces, rename_workspace

st.set_page_config(page_title="Workspaces · KPI Tree", page_icon="🌳", layout="wide")


def main() -> None:
    st.sidebar.title("KPI Tree")
    try:
        current = ui.choose_workspace()
    except KpiTreeError as exc:
        st.error(str(exc))
        current = None
    st.title("Workspaces")
    root = ui.data_dir()
    st.caption(f"Under {root}. Each workspace is a folder with its own DuckDB file, trees, stage map and saved "
               "column mappings; it persists across restarts.")
    for key in ("ws_done", "ws_error"):
        if st.session_state.get(key):
            (st.success if key == "ws_done" else st.error)(st.session_state.pop(key))
    names = list_workspaces(root)
    if names:
        st.dataframe(pd.DataFrame([overview(Workspace(root / n), n == (current.name if current else None))
                                   for n in names]), hide_index=True, width="stretch", key="workspaces_table")
    left, middle, right = st.columns(3)
    with left.container(border=True):
        st.markdown("**Create**")
        st.text_input("Name", key="ws_new", placeholder="e.g. acme-q3")
        st.button("Create and switch to it", key="ws_create", on_click=_create, type="primary")
    if not names:
        return
    with middle.container(border=True):
        st.markdown("**Rename**")
        st.selectbox("Workspace", names, key="ws_rename_from",
                     index=names.index(current.name) if current and current.name in names else 0)
        st.text_input("New name", key="ws_rename_to")
        st.button("Rename", key="ws_rename", on_click=_rename)
    with right.container(border=True):
        st.markdown("**Delete**")
        st.selectbox("Workspace", names, key="ws_delete_name")
        st.text_input("Type its name to confirm", key="ws_delete_confirm")
        st.button("Delete", key="ws_delete", on_click=_delete)


def overview(ws: Workspace, current: bool) -> dict:
    loads = ws.loads(limit=1)
    counts = ws.row_counts()
    return {"workspace": ws.name + (" (this session)" if current else ""),
            "tables": ", ".join(f"{t} {n:,}" for t, n in counts.items()) or "empty",
            "last load": str(loads[0]["loaded_at"])[:16] if loads else "—",
            "saved mappings": len(ws.mappings()), "saved stages": len(ws.stage_map())}


def _switch(name: str) -> None:
    # Runs inside a callback, before the sidebar picker is drawn, so the picker follows.
    ui.select_workspace(name)
    st.query_params["ws"] = name


def _create() -> None:
    name = (st.session_state.get("ws_new") or "").strip()
    try:
        create_workspace(ui.data_dir(), name)
    except KpiTreeError as exc:
        st.session_state["ws_error"] = str(exc)
        return
    _switch(name)
    st.session_state["ws_done"] = f"Created workspace '{name}'; this session now works in it."


def _rename() -> None:
    old = st.session_state.get("ws_rename_from")
    new = (st.session_state.get("ws_rename_to") or "").strip()
    try:
        rename_workspace(ui.data_dir(), old, new)
    except KpiTreeError as exc:
        st.session_state["ws_error"] = str(exc)
        return
    if st.session_state.get("ws") == old:
        _switch(new)
    st.session_state["ws_done"] = f"Renamed '{old}' to '{new}'."


def _delete() -> None:
    name = st.session_state.get("ws_delete_name")
    if st.session_state.get("ws_delete_confirm") != name:
        st.session_state["ws_error"] = f"Type '{name}' to confirm deleting it."
        return
    try:
        where = delete_workspace(ui.data_dir(), name)
    except KpiTreeError as exc:
        st.session_state["ws_error"] = str(exc)
        return
    if st.session_state.get("ws") == name:
        st.session_state.pop("ws", None)
        st.query_params.pop("ws", None)
    st.session_state["ws_done"] = f"Deleted '{name}' (moved to {where}; an administrator can restore it)."


main()
