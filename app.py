"""KPI Tree — the entry point: who is using the app, which pages they may open, and the page they opened.

`st.navigation` replaces the folder-derived names ("app", "1 Upload"): each page is named for what it
does, and the tree page keeps the root URL, so `?ws=…&tree=…&node=…` links keep working.

Sign-in (`kpitree.access`) is off without a users file, and then nothing here changes: every page
is listed. With it on, a session nobody signed in to gets only the sign-in page, so no other page
can be reached, not even by its URL; a signed-in user gets the pages their role in the session's
workspace allows (a viewer has no Upload and no Builder). Each page still checks `access.can` for
what it does, because the workspace can change on the page itself.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

import ui
from kpitree import access
from kpitree.errors import page_failure
from kpitree.plain import markdown_text
from kpitree.workspace import list_workspaces

HERE = Path(__file__).parent / "views"

TREE = st.Page(HERE / "0_Tree.py", title="Tree", icon=":material/account_tree:", default=True)
UPLOAD = st.Page(HERE / "1_Upload.py", title="Upload", icon=":material/upload_file:", url_path="Upload")
BUILDER = st.Page(HERE / "2_Builder.py", title="Builder", icon=":material/edit:", url_path="Builder")
DEFINITIONS = st.Page(HERE / "3_Definitions.py", title="Definitions", icon=":material/menu_book:",
                      url_path="Definitions")
WORKSPACES = st.Page(HERE / "4_Workspaces.py", title="Workspaces", icon=":material/folder:", url_path="Workspaces")
REVIEW = st.Page(HERE / "5_Review.py", title="Review", icon=":material/event_available:", url_path="Review")
OWNERS = st.Page(HERE / "6_Owners.py", title="Owners", icon=":material/groups:", url_path="Owners")
PAGES = [TREE, UPLOAD, BUILDER, DEFINITIONS, WORKSPACES, REVIEW, OWNERS]
EDITING = (UPLOAD, BUILDER)  # pages that change a workspace: editors and owners only


def show_failure(exc: Exception, where: str) -> None:
    """A failure nobody caught, in plain words; the traceback only behind 'Details for a developer'."""
    logging.getLogger("kpitree").exception("%s failed", where)
    message, detail = page_failure(exc)
    st.error(markdown_text(message), icon=":material/error:")
    with st.expander("Details for a developer"):
        st.code(detail, language=None)


# --- who is this -----------------------------------------------------------------------------------


def providers() -> list[str | None]:
    """Identity providers configured for `st.login` (`[auth]` in secrets.toml); [None] for one unnamed."""
    try:
        if not st.secrets.load_if_toml_exists() or "auth" not in st.secrets:
            return []
        auth = st.secrets["auth"]
    except Exception:  # noqa: BLE001 - unreadable secrets: no provider, never a crash
        return []
    named = [str(k) for k, v in auth.items() if hasattr(v, "keys")]
    return named or [None]


def signed_in(users: access.UsersFile, idps: list[str | None]) -> access.User | None:
    """The signed-in user of this session (kept under access.SESSION_KEY), or None."""
    name = st.session_state.get(access.SESSION_KEY)
    if isinstance(name, str) and name in users.accounts:
        return users.accounts[name].user()
    st.session_state.pop(access.SESSION_KEY, None)  # removed from the users file since: signed out
    if idps and st.user.get("is_logged_in"):
        user = access.provider_user(users, st.user.get("email"), st.user.get("email_verified", True))
        st.session_state[access.SESSION_KEY] = user.name
        return user
    return None


def sign_in_page(users: access.UsersFile | None, idps: list[str | None], problem: str | None) -> None:
    st.title("Sign in to KPI Tree")
    if problem:
        st.error(markdown_text(problem), icon=":material/lock:")
        if idps and st.user.get("is_logged_in"):
            st.button("Sign out", key="signout_provider", on_click=sign_out)
        return
    with_password = users is not None and any(a.password for a in users.accounts.values())
    if not with_password and not idps:
        st.error("Nobody can sign in to this server yet: no user has a password and no identity provider is "
                 "set up. Whoever runs it adds one with `python -m kpitree users add NAME --admin`.",
                 icon=":material/lock:")
    if with_password:
        with st.form("sign_in"):
            name = st.text_input("User name", key="signin_name", autocomplete="username")
            password = st.text_input("Password", type="password", key="signin_password",
                                     autocomplete="current-password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if submitted:
            try:
                user = access.sign_in(users, name, password)
            except access.AccessError as exc:
                st.error(markdown_text(exc), icon=":material/lock:")
            else:
                st.session_state[access.SESSION_KEY] = user.name
                st.rerun()
    for idp in idps:
        if st.button(f"Sign in with {idp or 'your identity provider'}", key=f"signin_idp_{idp or ''}"):
            try:
                st.login(idp) if idp else st.login()
            except Exception as exc:  # noqa: BLE001 - e.g. Authlib missing, [auth] incomplete
                logging.getLogger("kpitree").warning("st.login failed: %s", exc)
                st.error("Sign-in through the identity provider is not set up completely on this server "
                         f"({markdown_text(type(exc).__name__)}): whoever runs it checks `[auth]` in "
                         ".streamlit/secrets.toml and installs Authlib (`pip install 'Authlib>=1.3.2'`).")
    if users is not None and users.problems:
        st.caption(f"{len(users.problems)} entr{'y' if len(users.problems) == 1 else 'ies'} of the users file "
                   "cannot be used; an administrator sees which with `python -m kpitree users check`.")


def sign_out() -> None:
    st.session_state.pop(access.SESSION_KEY, None)
    if st.user.get("is_logged_in"):
        st.logout()


# --- which pages -----------------------------------------------------------------------------------


def session_workspace(visible: list[str]) -> str | None:
    """The workspace this session works in, as the sidebar picker will choose it (ui.choose_workspace)."""
    kept = ui.kept_value("ws") if ui._kept("ws") in st.session_state else st.query_params.get("ws")
    if kept is None and ui._kept("ws") not in st.session_state:
        kept = "demo" if "demo" in visible else (visible[0] if visible else None)
    return kept if kept in visible else None


def pages_for(user: access.User) -> list:
    """Every page for the local user; without Upload and Builder for whoever may not change the
    session's workspace (or, before one is picked, any workspace they can see)."""
    if user.local or user.admin:
        return PAGES
    root = ui.data_dir()
    visible = access.visible_workspaces(list_workspaces(root), root, user)
    current = session_workspace(visible)
    editable = [current] if current else visible
    if any(access.can(user, root / name, "load") for name in editable):
        return PAGES
    return [p for p in PAGES if p not in EDITING]


def user_box(user: access.User) -> None:
    with st.sidebar:
        st.caption(f"Signed in as {markdown_text(user.label)}" + (" (administrator)" if user.admin else ""))
        st.button("Sign out", key="signout", on_click=sign_out)


def choose_pages() -> tuple[list, access.User | None]:
    """The pages this session may open and its user (None: only the sign-in page)."""
    idps = providers()
    try:
        users = access.load_users(ui.data_dir())
    except access.UsersFileError as exc:
        logging.getLogger("kpitree").error("%s", exc)
        problem = ("The users file of this server cannot be read, so nobody can sign in. Whoever runs the "
                   "server sees why with `python -m kpitree users check`.")
        return [st.Page(lambda: sign_in_page(None, [], problem), title="Sign in", url_path="signin")], None
    if users is None and not idps:
        return PAGES, access.LOCAL  # sign-in is off: the single-user local mode
    problem = None
    user = None
    if users is None:  # a provider is configured but nobody is allowed yet: closed, never open to all
        problem = ("Sign-in through an identity provider is configured, but this server has no users file "
                   "yet: whoever runs it adds users with `python -m kpitree users add EMAIL --admin`.")
    else:
        try:
            user = signed_in(users, idps)
        except access.AccessError as exc:
            problem = str(exc)
    if user is None:
        return [st.Page(lambda: sign_in_page(users, idps, problem), title="Sign in", url_path="signin")], None
    return pages_for(user), user


st.set_page_config(page_title="KPI Tree", page_icon="🌳", layout="wide")
try:
    allowed, who = choose_pages()
except Exception as exc:  # st.stop/st.rerun are BaseExceptions and pass through
    show_failure(exc, "sign-in")
    st.stop()
page = st.navigation(allowed)
if who is not None and not who.local:
    user_box(who)
try:
    page.run()
except Exception as exc:  # st.stop/st.rerun are BaseExceptions and pass through
    show_failure(exc, f"page {page.title}")
