"""Streamlit glue shared by the pages: which workspace and tree this browser session uses.

Kept out of `kpitree/` on purpose: the core never imports Streamlit. Nothing here computes a
number; it only remembers choices, reads the URL and hands the core the right workspace.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from kpitree import access
from kpitree.charts import spec_of, tree_chart, with_path, with_selection
from kpitree.errors import KpiTreeError
from kpitree.evaluate import Engine, evaluate_tree
from kpitree.format import dimension_label as dimension_label  # the pages name splits with it
from kpitree.history import default_user, workspace_trees
from kpitree.periods import Period, parse_period, period_containing, trailing
from kpitree.plain import markdown_text
from kpitree.suggest import publish_resuggested, resuggest_active, resuggest_summary
from kpitree.tree import Tree, load_tree
from kpitree.workspace import Workspace, list_workspaces, validate_name

ROOT = Path(__file__).resolve().parent
TEMPLATES = ROOT / "data" / "trees"
DEFAULT_TREE = TEMPLATES / "revops.yaml"


def data_dir() -> Path:
    """Where workspaces live: $KPITREE_DATA_DIR, else ./workspaces beside the app."""
    return Path(os.environ.get("KPITREE_DATA_DIR", ROOT / "workspaces")).resolve()


def current_user() -> access.User | None:
    """Who uses this session (the local user when sign-in is off; None when nobody signed in)."""
    return access.current_user(data_dir(), st.session_state.get(access.SESSION_KEY))


def workspace_names() -> list[str]:
    """The workspaces this session's user may open (every one when sign-in is off)."""
    return access.visible_workspaces(list_workspaces(data_dir()), data_dir(), current_user())


def open_workspace(name: str) -> Workspace:
    """The named workspace under the data directory; a name can never point outside it, and a
    workspace the user is not a member of reads exactly like one that does not exist."""
    validate_name(name)
    path = (data_dir() / name).resolve()
    if path.parent != data_dir():
        raise KpiTreeError(f"invalid workspace name {name!r}")
    if not access.can(current_user(), path, "view"):
        raise KpiTreeError(f"Workspace {name!r} does not exist. Pick a workspace in the sidebar.")
    return Workspace(path)


def may(ws: Workspace | Path | None, action: str) -> bool:
    """Whether this session's user may `action` ("load", "save_tree", …) in `ws` (or its folder)."""
    if ws is None:
        return action == "create" and access.can(current_user(), None, action)
    return access.can(current_user(), ws, action)


def tree_paths(ws: Workspace | None) -> dict[str, Path]:
    """Trees a user can pick: the workspace's published trees (the active one first).

    The templates carry the demo company's targets and owners, so they are listed as they are only
    on the demo (whose plan they are). A user's workspace without a tree of its own gets one
    suggested from its data first (`suggest.first_tree`, once); other templates reach it through the
    Builder's "Suggest a tree from my data", never with the demo's numbers.
    """
    from kpitree.suggest import first_tree, is_demo

    out: dict[str, Path] = {}
    if ws is None:
        return {f"{p.stem} (template)": p for p in sorted(TEMPLATES.glob("*.yaml"))}
    demo = is_demo(ws)
    trees = workspace_trees(ws.trees_dir)
    if not trees and not demo and ws.tables():
        first_tree(ws)
        trees = workspace_trees(ws.trees_dir)
    for p in trees:
        out[f"{p.stem} (workspace)"] = p
    if demo:
        for p in sorted(TEMPLATES.glob("*.yaml")):
            out[f"{p.stem} (template)"] = p
    return out


@st.cache_resource(show_spinner=False, max_entries=16)
def _engine(path: str, version: str) -> Engine:
    return Engine(Workspace(path))


def version_of(ws: Workspace) -> str:
    """Data and settings together: a new gross margin must reach the metrics like new data."""
    settings = ws.root / "workspace.json"
    return f"{ws.data_version()}-{settings.stat().st_mtime_ns if settings.exists() else 0}"


def engine_for(ws: Workspace) -> Engine:
    """A cached engine, rebuilt whenever the workspace's data or settings change."""
    return _engine(str(ws.root), version_of(ws))


@st.cache_data(show_spinner=False, max_entries=64)
def _tree(path: str, mtime: float) -> Tree:
    return load_tree(path)


def tree_for(path: Path) -> Tree:
    return _tree(str(path), path.stat().st_mtime)


def chart(chart_obj, key: str, **kwargs):
    """Draws an Altair chart through its (unvalidated) spec: same picture, a fraction of the time."""
    return st.vega_lite_chart(spec_of(chart_obj), key=key, width=kwargs.pop("width", "stretch"), **kwargs)


def arrow_datasets(spec: dict) -> dict:
    """The spec with its datasets already in Arrow IPC bytes, the form Streamlit ships them in.

    Streamlit converts a dataset given as rows to Arrow on every rerun (a DataFrame per dataset);
    bytes it passes through as they are. Done once for a cached spec, a click skips that work."""
    from streamlit import dataframe_util

    datasets = spec.get("datasets")
    if not datasets:
        return spec
    return {**spec, "datasets": {name: rows if isinstance(rows, bytes) else
                                 dataframe_util.convert_anything_to_arrow_bytes(rows)
                                 for name, rows in datasets.items()}}


def view_key(ws: Workspace, tree: Tree, node: str, period, versus: str) -> tuple:
    """What a node's panel depends on: the workspace's data and settings, the tree file's version,
    the node, the period and the baseline. A chart built for one key serves every later click."""
    path = Path(tree.source)
    return (str(ws.root), version_of(ws), str(path), path.stat().st_mtime, node, period.key, versus)


@st.cache_data(show_spinner=False, max_entries=512)
def _cached_spec(key: tuple, _build: Callable[[], object]) -> dict:
    return arrow_datasets(spec_of(_build()))


@st.cache_data(show_spinner=False, max_entries=512)
def _cached_value(key: tuple, _build: Callable[[], object]):
    return _build()


def cached_value(key: tuple[Hashable, ...], build: Callable[[], object]):
    """`build()`, computed once per `key` (a `view_key` plus what else it depends on) and handed to
    each run as its own copy: the panel's per-node tables (segment frames, their display) cost a
    few milliseconds of pandas on every rerun otherwise."""
    return _cached_value(key, build)


def cached_chart(key: tuple[Hashable, ...], build: Callable[[], object], chart_key: str, **kwargs):
    """Draws the chart `build()` makes, built (with its data queries) and serialised once per `key`.

    Building an Altair chart and turning it into a spec costs 0.05–0.5 s of CPU per chart, most of
    a click's server time when many users click; the key (`view_key` plus what else the chart
    shows, such as the split dimension) names everything the chart depends on. An error raised by
    `build` is not cached: the next run tries again."""
    return st.vega_lite_chart(_cached_spec(key, build), key=chart_key, width=kwargs.pop("width", "stretch"), **kwargs)


@st.cache_data(show_spinner=False, max_entries=64)
def _evaluation(workspace: str, version: str, tree_path: str, tree_mtime: float, period: str):
    return evaluate_tree(_engine(workspace, version), _tree(tree_path, tree_mtime), parse_period(period))


def evaluation(ws: Workspace, tree: Tree, period):
    """The tree evaluated for the period, once per (workspace version, tree file version, period):
    each rerun otherwise walks every node's cached frames again (a tenth of a warm click's CPU)."""
    path = Path(tree.source)
    return _evaluation(str(ws.root), version_of(ws), str(path), path.stat().st_mtime, period.key)


@st.cache_data(show_spinner=False, max_entries=32)
def _baselines(workspace: str, version: str, tree_path: str, tree_mtime: float, period: str,
               versus: str) -> dict[str, float | None]:
    engine = _engine(workspace, version)
    tree = _tree(tree_path, tree_mtime)
    current = parse_period(period)
    if versus == "previous":
        return {n.id: n.previous for n in evaluate_tree(engine, tree, current).nodes}
    if versus == "last_year":
        return {n.id: n.value for n in evaluate_tree(engine, tree, current.same_last_year()).nodes}
    return {n.id: n.target for n in evaluate_tree(engine, tree, current).nodes}


def baselines(ws: Workspace, tree: Tree, period, versus: str) -> dict[str, float | None]:
    """What each node is compared with in this view ("Compare with"): its target, its value in the
    previous period, or in the same period last year. One dict for the boxes and the panel, so the
    page never mixes two baselines."""
    path = Path(tree.source)
    return _baselines(str(ws.root), version_of(ws), str(path), path.stat().st_mtime, period.key, versus)


@st.cache_data(show_spinner=False, max_entries=32)
def tree_spec(workspace: str, version: str, tree_path: str, tree_mtime: float, period: str, width: float,
              versus: str = "target") -> dict:
    """The tree chart's spec for one evaluation and baseline, built once and reused by every click."""
    from kpitree.layout import layout_tree

    engine = _engine(workspace, version)
    tree = _tree(tree_path, tree_mtime)
    evaluation = evaluate_tree(engine, tree, parse_period(period))
    compared = _baselines(workspace, version, tree_path, tree_mtime, period, versus) if versus != "target" else None
    return spec_of(tree_chart(layout_tree(tree, max_width=width), evaluation, versus=versus, baselines=compared))


@st.cache_data(show_spinner=False, max_entries=256)
def drawn_tree_spec(workspace: str, version: str, tree_path: str, tree_mtime: float, period: str, width: float,
                    versus: str, selected: str, path: tuple[str, ...]) -> dict:
    """`tree_spec` with the selected box and the red path drawn, its datasets in Arrow: what a click
    sends to the browser, built once per (view, node, path) instead of on every rerun."""
    spec = tree_spec(workspace, version, tree_path, tree_mtime, period, width, versus)
    return arrow_datasets(with_path(with_selection(spec, selected), list(path)))


@st.cache_data(show_spinner=False, max_entries=256)
def _explanation(workspace: str, version: str, tree_path: str, tree_mtime: float, node: str, period: str,
                 versus: str, causes: bool = False):
    try:
        from kpitree.explain import explain_node
    except ImportError:
        return None
    engine = _engine(workspace, version)
    # the walk over the causes reads the statuses of the view's own evaluation (cached): no second one
    evaluation = _evaluation(workspace, version, tree_path, tree_mtime, period) if causes else None
    return explain_node(engine, _tree(tree_path, tree_mtime), node, parse_period(period), versus=versus,
                        causes=causes, evaluation=evaluation)


def explanation(ws: Workspace, tree: Tree, node: str, period, versus: str, causes: bool = False):
    """The explanation of a node (None where the explanation engine is absent), cached per view.

    `causes=True` also walks every branch of the gap (the red-path box); a node's panel does not
    need it and stays fast.
    """
    path = Path(tree.source)
    return _explanation(str(ws.root), version_of(ws), str(path), path.stat().st_mtime, node, period.key, versus,
                        causes)


_WARMED: dict[tuple, threading.Thread] = {}
_WARMED_LOCK = threading.Lock()
_STATUS_FIRST = {"red": 0, "amber": 1, "green": 2}
_STOPS: dict[str, tuple[tuple, threading.Event]] = {}  # workspace → its latest warm-up's view and stop switch
_RUNNING = [0]  # pages being computed right now, in any session of this process


@contextmanager
def foreground() -> Iterator[None]:
    """Marks a page run: the background warm-up waits until no page is being computed."""
    with _WARMED_LOCK:
        _RUNNING[0] += 1
    try:
        yield
    finally:
        with _WARMED_LOCK:
            _RUNNING[0] -= 1


def _idle() -> bool:
    return _RUNNING[0] == 0


def stop_warm_ups(timeout: float = 10.0) -> None:
    """Stops every background warm-up and waits for them (each stops between two nodes).

    Runs at interpreter exit: a daemon thread killed inside DuckDB's C++ code aborts the process
    ("FATAL: exception not rethrown"), so the threads must be out of it before Python finalizes.
    """
    with _WARMED_LOCK:
        for _, stop in _STOPS.values():
            stop.set()
        threads = list(_WARMED.values())
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))


atexit.register(stop_warm_ups)


def warm_up(ws: Workspace, tree: Tree, evaluation, period, versus: str) -> threading.Thread | None:
    """Once per view (workspace data, tree, period, baseline), computes every node's panel in the
    background — the root, then red, amber and the rest, top levels first, then the root's walk
    over every cause — so the first click on each answers from cache (`kpitree.warmup.warm`).
    Off with KPITREE_WARM=0."""
    if os.environ.get("KPITREE_WARM", "1") == "0":
        return None
    try:
        from kpitree.warmup import warm
    except ImportError:
        return None
    path = Path(tree.source)
    key = (str(ws.root), version_of(ws), str(path), path.stat().st_mtime, period.key, versus)
    level = {n.id: i for i, n in enumerate(evaluation.nodes)}
    order = sorted((n for n in evaluation.nodes if n.id != tree.root.id),
                   key=lambda n: (_STATUS_FIRST.get(n.status, 3), level[n.id]))
    with _WARMED_LOCK:
        if key in _WARMED:
            return None
        while len(_WARMED) >= 32:
            _WARMED.pop(next(iter(_WARMED)))
        # one warm-up per workspace at a time: flipping through periods must not pile up threads
        previous = _STOPS.get(str(ws.root))
        if previous is not None:
            previous[1].set()
            _WARMED.pop(previous[0], None)  # coming back to that view warms it again (from cache, mostly)
        stop = threading.Event()
        _STOPS[str(ws.root)] = (key, stop)
        thread = threading.Thread(target=warm, args=(ws, tree, period, versus, [tree.root.id, *(n.id for n in order)]),
                                  kwargs={"idle": _idle, "stop": stop}, daemon=True, name="kpitree-warm")
        _WARMED[key] = thread
    thread.start()
    return thread


def param(name: str, default: str | None = None) -> str | None:
    """A query parameter, read once per session so the URL seeds the first view only."""
    key = f"_qp_{name}"
    if key not in st.session_state:
        st.session_state[key] = st.query_params.get(name, default)
    return st.session_state[key]


def sticky(key: str) -> dict:
    """Keyword arguments for a widget whose value should outlive pages.

    Streamlit starts a widget from its default when the user comes back from another page; the
    value the user last chose is kept beside it (updated by the widget's own change callback) and
    put back before the widget is drawn. Use `set_sticky` to change such a widget from code.
    """
    if _kept(key) in st.session_state:
        st.session_state[key] = st.session_state[_kept(key)]
    return {"key": key, "on_change": _remember, "args": (key,)}


def set_sticky(key: str, value) -> None:
    st.session_state[key] = value
    st.session_state[_kept(key)] = value


def _remember(key: str) -> None:
    st.session_state[_kept(key)] = st.session_state.get(key)


def _kept(key: str) -> str:
    return f"_kept_{key}"


def kept_value(key: str):
    """What the user last chose in sticky widget `key` (None if never)."""
    return st.session_state.get(_kept(key))


def select_workspace(name: str | None) -> None:
    """Makes `name` this session's workspace on every page (call before the picker is drawn)."""
    set_sticky("ws", name)


def choose_workspace(sidebar: bool = True) -> Workspace | None:
    """The workspace picker; the choice is this session's alone and stays in the URL.

    A link or a session pointing at a workspace that does not exist (or was renamed or deleted
    meanwhile) shows nothing until the user picks one: never another workspace's data.
    """
    names = workspace_names()
    where = st.sidebar if sidebar else st
    if not names:
        where.info(f"No workspace yet under {data_dir()}. Run `make run` for the demo, or load files on the Upload page.")
        return None
    kept = kept_value("ws")
    if _kept("ws") not in st.session_state:
        wanted = param("ws", "demo" if "demo" in names else names[0])
        if wanted not in names:
            st.warning(f"Workspace {markdown_text(repr(wanted))} does not exist. Pick a workspace in the sidebar.")
            wanted = None
        select_workspace(wanted)
    elif kept is not None and kept not in names:
        st.warning(f"Workspace {markdown_text(repr(kept))} was renamed or deleted. Pick a workspace in the sidebar.")
        select_workspace(None)
    name = where.selectbox("Workspace", names, index=None, placeholder="Pick a workspace", **sticky("ws"))
    if name is None:
        return None
    scope_view(name)
    st.query_params["ws"] = name
    return open_workspace(name)


# What a view of one workspace is made of: its period, tree, selected node, red path, splits and what-if
# sliders. Grain and baseline ("Compare with") are ways of reading any workspace and stay.
VIEW_KEYS = ("period", "_period_grain", "tree_pick", "selected", "node_pick", "show_path")
VIEW_PREFIXES = ("dim_", "whatif_")  # a split per node, a what-if slider per period and node
VIEW_PARAMS = ("period", "tree", "node", "split", "path")


def scope_view(name: str) -> None:
    """Forgets the view chosen in another workspace when this session moves to workspace `name`.

    A period, node or split means something in the workspace it was chosen in: the demo's 2026-10
    is not another workspace's latest complete month, so each workspace opens on its own (its
    latest complete period, its active tree, the north star). The URL seeds the first view of a
    session only: a pasted link's `?period=` still opens its workspace on that period.
    """
    seen = st.session_state.get("_view_ws")
    st.session_state["_view_ws"] = name
    if seen is None or seen == name:
        return
    kept = {_kept(k) for k in VIEW_KEYS}
    for key in list(st.session_state):
        if key in VIEW_KEYS or key in kept or str(key).startswith(VIEW_PREFIXES):
            del st.session_state[key]
    for p in VIEW_PARAMS:  # read once per session (`param`): the link's values are the first view's
        st.session_state[f"_qp_{p}"] = None
        st.query_params.pop(p, None)
    st.session_state["_split_seeded"] = True
    # the tree chart keeps the last box clicked in the other workspace: a fresh chart, no stale click
    st.session_state["_tree_generation"] = st.session_state.get("_tree_generation", 0) + 1
    st.session_state["_last_click"] = None


# --- page layout: the panel beside the tree, and actions that bring their result into view -------

PAGE_STYLE = """<style>
@media (min-width: 1100px) {
  .stMainBlockContainer { padding-left: 1.5rem; padding-right: 1.5rem; padding-top: 3.5rem; }
  /* the selected node's panel stays in view beside the tree, and scrolls on its own */
  div[data-testid="stColumn"]:has(.st-key-panel_pane) {
    position: sticky; top: 3.75rem; align-self: flex-start; max-height: calc(100vh - 4.25rem);
    overflow-y: auto; overflow-x: hidden; padding-right: 0.4rem; }
}
@media (max-width: 1099.98px) {
  /* too narrow for the tree (laid out for 440 px) beside the panel: the panel goes under the tree */
  div[data-testid="stHorizontalBlock"]:has(> div[data-testid="stColumn"] .st-key-panel_pane) { flex-wrap: wrap; }
  div[data-testid="stHorizontalBlock"]:has(> div[data-testid="stColumn"] .st-key-panel_pane) > div[data-testid="stColumn"] {
    min-width: 100%; }
}
.st-key-answer, .st-key-red_path_box { scroll-margin-top: 4.25rem; }
</style>"""


def page_style() -> None:
    """The tree page's layout rules (static CSS, no user text): less padding on wide screens and a
    panel column pinned beside the tree."""
    st.html(PAGE_STYLE)


def request_scroll(anchor: str) -> None:
    """Asks the next run to bring the container keyed `anchor` into view (after a click, an "Open"
    button or "Follow the red path", whose result may be out of sight)."""
    st.session_state["_scroll"] = (anchor, st.session_state.get("_scroll", ("", 0))[1] + 1)


def scroll_into_view() -> None:
    """Runs the pending `request_scroll`: scrolls the panel column (or the page, when the columns are
    stacked) so the anchor's top is in view. The anchor is a fixed key, never user text."""
    anchor, n = st.session_state.get("_scroll", ("", 0))
    if not anchor or st.session_state.get("_scrolled") == n:
        return
    st.session_state["_scrolled"] = n
    st.iframe(f"""<script>
const doc = window.parent.document;
function go(tries) {{
  const el = doc.querySelector('.st-key-{anchor}');
  if (!el) {{ if (tries > 0) setTimeout(() => go(tries - 1), 100); return; }}
  const pane = el.closest('[data-testid="stColumn"]');
  if (pane && getComputedStyle(pane).position === 'sticky' && pane.scrollHeight > pane.clientHeight + 2) {{
    pane.scrollTop += el.getBoundingClientRect().top - pane.getBoundingClientRect().top - 4;
  }}
  const top = el.getBoundingClientRect().top;
  if (top < 56 || top > window.parent.innerHeight - 160) el.scrollIntoView({{block: 'start'}});
}}
setTimeout(() => go(40), 60); // run {n}
</script>""", height=1)


GRAINS = ("month", "quarter", "week", "year")


def _grain_in_view(grains: tuple[str, ...]) -> str:
    """The grain the session is looking at when no grain was chosen by hand: the URL's, else the grain of
    the period in view (the URL's, else the one kept from the tree page), else month.

    Why: the tree page opened on `?grain=quarter&period=2026-Q4` keeps the period but not the grain
    (only a click on the radio keeps it), and a page link drops the URL: Owners then opened on 2026-11
    while Review, a page later, opened on 2026-Q4 (trial 4). The kept period says which grain it was."""
    for candidate in (param("grain"), param("period"), kept_value("period"), st.session_state.get("grain")):
        if candidate in grains:
            return str(candidate)
        try:
            found = parse_period(str(candidate)).grain.value if candidate else None
        except (KpiTreeError, ValueError):
            found = None
        if found in grains:
            return str(found)
    return "month" if "month" in grains else grains[0]


def pick_tree_view(grains: tuple[str, ...] = GRAINS) -> tuple[Workspace, Engine, Tree, Period]:
    """Workspace, tree and period for the Review and Owners pages: the tree page's sticky choices and URL
    keys, so moving between the pages keeps what was chosen."""
    st.sidebar.title("KPI Tree")
    ws = choose_workspace()
    if ws is None:
        st.stop()
    engine = engine_for(ws)
    paths = tree_paths(ws)
    if not paths:
        st.info("This workspace has no tree yet: open the Tree page or the Builder first.")
        st.stop()
    labels = list(paths)
    if "tree_pick" not in st.session_state:
        wanted = param("tree")
        st.session_state["tree_pick"] = next((k for k in labels if paths[k].stem == wanted), labels[0])
    if kept_value("tree_pick") not in (None, *labels):
        set_sticky("tree_pick", labels[0])
    label = st.sidebar.selectbox("Tree", labels, **sticky("tree_pick"))
    tree = tree_for(paths[label])
    st.query_params["tree"] = paths[label].stem
    if kept_value("grain") not in grains:
        set_sticky("grain", _grain_in_view(grains))
    grain = st.sidebar.radio("Grain", list(grains), horizontal=True, **sticky("grain"))
    current = period_containing(engine.as_of, grain)
    options = [p.key for p in reversed(trailing(current, 24 if grain != "week" else 26))]
    latest = current if current.is_complete(engine.as_of) else current.previous()
    if st.session_state.get("_period_grain") != grain:
        st.session_state["_period_grain"] = grain
        wanted = param("period")
        set_sticky("period", wanted if wanted in options else latest.key)
    period = st.sidebar.selectbox("Period", options, **sticky("period"))
    st.query_params["grain"] = grain
    st.query_params["period"] = period
    return ws, engine, tree, parse_period(period)


# --- suggested targets planned again --------------------------------------------------------------


def resuggest_box(ws: Workspace, found, *, prefix: str, headline: str, said: str, after: str,
                  on_keep: Callable[[], None], engine: Engine | None = None,
                  on_done: Callable[[], None] | None = None) -> None:
    """The offer to plan a tree's suggested targets again once the data moved under them — on Upload after
    the load, on Tree where the wrong colours show: the warning, a draft's pointer to the Builder, and the
    two buttons (`{prefix}_resuggest`, `{prefix}_keep_targets`). `said`: the session key the outcome is left
    under for the next run (`show_said`); `after`: what the success message adds; `engine`: the page's
    engine, else the workspace's at the click."""
    with st.container(border=True, key=f"{prefix}_stale_targets"):
        st.warning(f"{headline} {markdown_text(resuggest_summary(found.done))}", icon=":material/update:")
        if found.draft:
            st.info(f"Tree {markdown_text(found.name)} has a draft with edits not published yet: open it in the "
                    "**Builder** and press *Re-suggest targets from the current data* on its Targets tab, then save.")
            return
        left, right = st.columns(2)
        left.button("Re-suggest targets from the current data", key=f"{prefix}_resuggest", type="primary",
                    on_click=_resuggest, args=(ws, engine, said, after, on_done), width="stretch",
                    disabled=not may(ws, "save_tree"),
                    help="Publishes a new version of the tree (its history keeps this one, restorable in the Builder).")
        right.button("Keep the targets as they are", key=f"{prefix}_keep_targets", width="stretch", on_click=on_keep)


def _resuggest(ws: Workspace, engine: Engine | None, said: str, after: str,
               on_done: Callable[[], None] | None) -> None:
    """Publishes the active tree with its suggested targets planned again from the data as it is now."""
    user = current_user()
    who = user.name if user is not None and not user.local else (st.session_state.get("b_who") or default_user())
    try:
        found = resuggest_active(ws, engine if engine is not None else engine_for(ws))
        if found is None:
            raise KpiTreeError("the workspace has no active tree any more")
        number = publish_resuggested(ws, found, who)
    except KpiTreeError as exc:
        st.session_state[said] = ("error", markdown_text(f"Targets not re-suggested: {exc}"))
        return
    if on_done is not None:
        on_done()
    st.session_state[said] = (
        "success", markdown_text(f"Tree {found.name} v{number} published with its suggested targets planned again. "
                                 f"{resuggest_summary(found.done)}") + after)


def show_said(said: str) -> None:
    """Shows, once, the outcome a callback left under `said` (kind, message): st.success, st.error, …"""
    outcome = st.session_state.pop(said, None)
    if outcome is not None:
        getattr(st, outcome[0])(outcome[1])
