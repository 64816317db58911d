"""Workspaces: create, switch, rename and delete the workspaces under the data directory, and, when
sign-in is on, say who may open each one.

Each browser session works in the workspace it picked (the sidebar picker, kept in the URL);
nothing here changes another session's choice. Deleting moves the workspace to the data
directory's `.trash` folder, from where an administrator can restore it.

An owner can also point a workspace at a SQL engine instead of its DuckDB file (PostgreSQL or
Spark, `kpitree.engines`): the form checks the connection before saving, and says plainly what
failed; the connection string itself stays in an environment variable, never in the workspace.

With sign-in on (`kpitree.access`), the list holds only the workspaces the user is a member of;
renaming, deleting and the members are for owners. Every action checks the user's role again
when it runs, not only when the button is drawn: a role can change between the two.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

import ui
from kpitree import access
from kpitree.engines import EngineSettings, forget, remote_for
from kpitree.errors import KpiTreeError
from kpitree.plain import markdown_text
from kpitree.workspace import Workspace, create_workspace, delete_workspace, list_workspaces, rename_workspace

st.set_page_config(page_title="Workspaces · KPI Tree", page_icon="🌳", layout="wide")


def main() -> None:
    st.sidebar.title("KPI Tree")
    user = ui.current_user()
    if user is None:
        st.warning("Sign in to see your workspaces.")
        return
    try:
        current = ui.choose_workspace()
    except KpiTreeError as exc:
        st.error(markdown_text(exc))
        current = None
    st.title("Workspaces")
    root = ui.data_dir()
    team = not user.local
    st.caption(markdown_text(f"Under {root}. Each workspace is a folder with its own DuckDB file, trees, stage map "
                             "and saved column mappings; it persists across restarts.")
               + (" You see the workspaces you are a member of." if team and not user.admin else ""))
    for key in ("ws_done", "ws_error"):
        if st.session_state.get(key):
            (st.success if key == "ws_done" else st.error)(markdown_text(st.session_state.pop(key)))
    names = access.visible_workspaces(list_workspaces(root), root, user)
    here = current.name if current else None
    if names:
        # st.table wraps a long cell (the tables and their row counts) instead of cutting it off
        st.table(pd.DataFrame([overview(Workspace(root / n), n == here, access.role_of(user, root / n) if team
                                        else None) for n in names]).set_index("workspace"))
    owned = [n for n in names if access.can(user, root / n, "delete")]
    left, middle, right = st.columns(3)
    with left.container(border=True):
        st.markdown("**Create**")
        st.text_input("Name", key="ws_new", placeholder="e.g. acme-q3")
        st.button("Create and switch to it", key="ws_create", on_click=_create, type="primary")
        if team:
            st.caption("You will be its owner.")
    if not owned:
        if names and team:
            st.caption("Renaming, deleting and members are for a workspace's owners.")
        return
    with middle.container(border=True):
        st.markdown("**Rename**")
        st.selectbox("Workspace", owned, key="ws_rename_from", index=owned.index(here) if here in owned else 0)
        st.text_input("New name", key="ws_rename_to")
        st.button("Rename", key="ws_rename", on_click=_rename)
    with right.container(border=True):
        st.markdown("**Delete**")
        st.selectbox("Workspace", owned, key="ws_delete_name")
        st.text_input("Type its name to confirm", key="ws_delete_confirm")
        st.button("Delete", key="ws_delete", on_click=_delete)
    engine_section(root, owned, here)
    if team:
        members_section(root, owned, here)


def overview(ws: Workspace, current: bool, role: str | None = None) -> dict:
    row = {"workspace": ws.name + (" (this session)" if current else "")}
    if role is not None:
        row["your role"] = role
    try:
        engine = ws.engine_settings()
    except KpiTreeError:
        engine = EngineSettings()  # broken settings: the Tree page names the file and the key
    if engine.remote:
        # Not counted here: listing workspaces must not connect to (or start) every engine
        tables, last = f"in {engine.kind} (see below)", "—"
    else:
        loads = ws.loads(limit=1)
        tables = ", ".join(f"{t} {n:,}" for t, n in ws.row_counts().items()) or "empty"
        last = str(loads[0]["loaded_at"])[:16] if loads else "—"
    return {**row, "engine": engine.kind, "tables": tables, "last load": last,
            "saved mappings": len(ws.mappings()), "saved stages": len(ws.stage_map())}


ENGINE_KINDS = {"duckdb": "DuckDB file (loaded on the Upload page)", "postgres": "PostgreSQL",
                "spark": "Apache Spark"}


def engine_section(root: Path, owned: list[str], here: str | None) -> None:
    """Where a workspace's data lives: its DuckDB file, or a Postgres schema or Spark tables."""
    st.subheader("Data engine")
    st.caption("Point a workspace at the tables your team already has. PostgreSQL: the name of an environment "
               "variable holding the connection string (set where the app runs; it is never stored) and the "
               "schema of the canonical tables or views. Spark: a master URL (local[*], spark://host:7077, "
               "sc://host:15002 for Spark Connect) and a database, or one Parquet/Delta path per table.")
    name = st.selectbox("Workspace", owned, key="eng_ws", index=owned.index(here) if here in owned else 0)
    try:
        current = Workspace(root / name).engine_settings()
    except KpiTreeError as exc:
        st.error(markdown_text(exc))
        current = EngineSettings()
    st.caption(markdown_text(f"Now: {ENGINE_KINDS[current.kind]}."))
    kinds = list(ENGINE_KINDS)
    kind = st.radio("Engine", kinds, index=kinds.index(current.kind), format_func=ENGINE_KINDS.get,
                    horizontal=True, key=f"eng_kind_{name}")
    if kind == "postgres":
        left, right = st.columns(2)
        left.text_input("Environment variable with the connection string", value=current.dsn_env,
                        placeholder="KPITREE_PG_DSN", key=f"eng_dsn_env_{name}")
        right.text_input("Schema", value=current.schema or "public", key=f"eng_schema_{name}")
    elif kind == "spark":
        left, right = st.columns(2)
        left.text_input("Master URL", value=current.master or "local[*]", key=f"eng_master_{name}")
        right.text_input("Database (or leave empty and give paths)", value=current.database,
                         key=f"eng_database_{name}")
        st.text_area("Table paths, one per line: table = path", key=f"eng_paths_{name}",
                     value="\n".join(f"{t} = {p}" for t, p in current.paths),
                     placeholder="deals = s3a://warehouse/deals/\nsubscriptions = /data/subscriptions.parquet")
    st.button("Check the connection and save", key="eng_save", on_click=_save_engine, args=(name, kind),
              type="primary")


def members_section(root: Path, owned: list[str], here: str | None) -> None:
    """Who may open a workspace the user owns: viewers read, editors also load data and save trees,
    owners also rename, delete and choose the members."""
    st.subheader("Members")
    st.caption("A viewer reads the tree; an editor also loads data and saves trees; an owner also renames, "
               "deletes and chooses the members. New users are added on the server: "
               "`python -m kpitree users add NAME`.")
    name = st.selectbox("Workspace", owned, key="mem_ws", index=owned.index(here) if here in owned else 0)
    table = access.members(root / name)
    users = access.load_users(root)
    accounts = users.accounts if users else {}
    if table:
        st.dataframe(pd.DataFrame([{"user": u, "name": accounts[u].display if u in accounts else "(no such user)",
                                    "role": r} for u, r in sorted(table.items())]),
                     hide_index=True, width="stretch", key="members_table")
    else:
        st.caption("No members yet: only administrators see it.")
    for problem in access.member_problems(root / name):
        st.warning(markdown_text(problem))
    add, remove = st.columns(2)
    with add.container(border=True):
        st.selectbox("User", sorted(accounts), key="mem_user", index=None, placeholder="Pick a user")
        st.selectbox("Role", access.ROLES, key="mem_role", index=0)
        st.button("Give this role", key="mem_grant", on_click=_grant)
    if table:
        with remove.container(border=True):
            st.selectbox("Member", sorted(table), key="mem_remove_user", index=None, placeholder="Pick a member")
            st.button("Remove from the workspace", key="mem_remove", on_click=_revoke)


# --- actions (callbacks: they run before the page is drawn again) ---------------------------------


def _allowed(name: str | None, action: str) -> bool:
    """Checks the role when the action runs; says so when it is not allowed."""
    user = ui.current_user()
    if name and name in list_workspaces(ui.data_dir()) and access.can(user, ui.data_dir() / name, action):
        return True
    st.session_state["ws_error"] = f"You may not do that in workspace '{name}': ask one of its owners."
    return False


def _switch(name: str) -> None:
    # Runs inside a callback, before the sidebar picker is drawn, so the picker follows.
    ui.select_workspace(name)
    st.query_params["ws"] = name


def _create() -> None:
    name = (st.session_state.get("ws_new") or "").strip()
    user = ui.current_user()
    if not access.can(user, None, "create"):
        st.session_state["ws_error"] = "Sign in to create a workspace."
        return
    try:
        ws = create_workspace(ui.data_dir(), name)
        access.claim(ws, user)
    except KpiTreeError as exc:
        st.session_state["ws_error"] = str(exc)
        return
    _switch(name)
    st.session_state["ws_done"] = f"Created workspace '{name}'; this session now works in it."


def _rename() -> None:
    old = st.session_state.get("ws_rename_from")
    new = (st.session_state.get("ws_rename_to") or "").strip()
    if not _allowed(old, "rename"):
        return
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
    if not _allowed(name, "delete"):
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


def _change_member(name: str | None, who: str | None, role: str | None) -> None:
    if not who:
        st.session_state["ws_error"] = "Pick a user first."
        return
    if not _allowed(name, "manage_members"):
        return
    try:
        access.set_member(ui.data_dir() / name, who, role)
    except KpiTreeError as exc:
        st.session_state["ws_error"] = str(exc)
        return
    st.session_state["ws_done"] = (f"{who} is now {role} of '{name}'." if role
                                   else f"{who} is no longer a member of '{name}'.")


def _engine_raw(name: str, kind: str) -> dict:
    """The form's fields as workspace.json's "engine" entry (checked by EngineSettings.from_raw)."""
    get = st.session_state.get
    if kind == "postgres":
        return {"kind": kind, "dsn_env": (get(f"eng_dsn_env_{name}") or "").strip(),
                "schema": (get(f"eng_schema_{name}") or "").strip() or "public"}
    if kind == "spark":
        paths = {}
        for number, line in enumerate((get(f"eng_paths_{name}") or "").splitlines(), 1):
            if not line.strip():
                continue
            table, sep, path = line.partition("=")
            if not sep or not table.strip() or not path.strip():
                raise KpiTreeError(f"table paths, line {number}: write it as table = path, e.g. deals = /data/deals/")
            paths[table.strip()] = path.strip()
        return {"kind": kind, "master": (get(f"eng_master_{name}") or "").strip() or "local[*]",
                "database": (get(f"eng_database_{name}") or "").strip(), "paths": paths}
    return {"kind": "duckdb"}


def _save_engine(name: str, kind: str) -> None:
    """Checks the engine answers and holds canonical tables, then saves; a plain message otherwise
    (the driver's first line, with any password blanked; never a traceback)."""
    if not _allowed(name, "rename"):
        return
    ws = Workspace(ui.data_dir() / name)
    try:
        engine = EngineSettings.from_raw(_engine_raw(name, kind), "the form")
        started = time.perf_counter()
        found = ""
        if engine.remote:
            remote = remote_for(engine)
            try:
                found = remote.check()
            except KpiTreeError:
                forget(engine)  # a fixed variable or server gets a fresh try next time
                raise
        settings = ws.settings()
        old = ws.engine_settings()
        if engine.remote:
            settings.extra["engine"] = engine.to_raw()
        else:
            settings.extra.pop("engine", None)
        ws.save_settings(settings)
        if old != engine and old.remote:
            forget(old)
    except KpiTreeError as exc:
        st.session_state["ws_error"] = f"Not saved: {exc}"
        return
    seconds = time.perf_counter() - started
    st.session_state["ws_done"] = (f"'{name}' now reads {found} (checked in {seconds:.1f} s)." if engine.remote
                                   else f"'{name}' reads its own DuckDB file again.")


def _grant() -> None:
    _change_member(st.session_state.get("mem_ws"), st.session_state.get("mem_user"), st.session_state.get("mem_role"))


def _revoke() -> None:
    _change_member(st.session_state.get("mem_ws"), st.session_state.get("mem_remove_user"), None)


main()
