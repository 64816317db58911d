"""Warming a view's caches in the background, so the first click on each node answers fast.

The tree page shows, for the node clicked, its explanation, trend, best segment split and usage
charts. Computed on the first click, nodes over per-customer or per-user data take the better
part of a second at 100k deals; computed while the user reads the tree, every click afterwards
answers from cache. Each step goes through the same core function the page calls, so the
results land in the same caches (keyed by workspace data version, not by Engine).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from .drill import drill_dimensions, segment_table
from .errors import KpiTreeError
from .evaluate import Engine, trend
from .explain import explain_node, segment_frame
from .periods import Period
from .tree import Tree
from .usage import activity_heatmap, cohort_retention, panel_charts
from .workspace import DataChanged, Workspace

TREND_PERIODS = 18  # what the node panel draws
IDLE_POLL_SECONDS = 0.05


def baseline_period(period: Period, versus: str) -> Period:
    """The period segment charts compare with: last year's, or else the previous one (segments
    have no targets)."""
    return period.same_last_year() if versus == "last_year" else period.previous()


def warm_node(engine: Engine, tree: Tree, node_id: str, period: Period, versus: str, *, causes: bool = False,
              hold_connection: bool = True) -> None:
    """Everything the node's panel computes: explanation, trend, best split (a query only where the
    explanation has no segments of that dimension, as on the panel), usage charts."""
    node = tree.node(node_id)
    result = explain_node(engine, tree, node_id, period, versus, causes=causes, hold_connection=hold_connection)
    trend(engine, tree, node_id, period, TREND_PERIODS)
    dims = drill_dimensions(engine, tree, node)
    ranked = [d.dimension for d in result.dimensions if d.dimension in dims] + dims
    frame = segment_frame(result, ranked[0]) if ranked else None
    if ranked and (frame is None or frame.empty):  # the panel's fallback: a query of its own
        segment_table(engine, node, period, baseline_period(period, versus), ranked[0])
    kinds = panel_charts(node.metric)
    if "activity" in kinds:
        activity_heatmap(engine, period, order="decline")
    if "cohort" in kinds:
        cohort_retention(engine, period)


def warm(workspace: Workspace, tree: Tree, period: Period, versus: str, node_ids: Sequence[str],
         stop: threading.Event | None = None, idle: Callable[[], bool] | None = None) -> int:
    """Warms the panels of `node_ids` in order, then the root's walk over every cause.

    For a background thread: it reads beside the clicks (each thread has its own cursors; see
    `Workspace.connect`) and holds the workspace only for one node at a time, so a load waits at
    most one node for it; between nodes it waits while `idle()` says a page is being computed, so
    it takes no CPU from a click. The root's walk comes last: by then its queries are the panels'
    own, cached. Returns how many steps it completed. Errors are the foreground's to report (the
    same call fails there, with its message), so here they are skipped.
    """
    try:
        engine = Engine(workspace)
    except KpiTreeError:  # a bad workspace.json, no data, a load running: the page says which
        return 0
    done = 0
    steps = [(node_id, False) for node_id in node_ids] + [(tree.root.id, True)]
    for node_id, causes in steps:
        while idle is not None and not idle() and not (stop is not None and stop.is_set()):
            time.sleep(IDLE_POLL_SECONDS)
        if stop is not None and stop.is_set():
            break
        try:
            with engine.session():  # one cursor for the node's metric queries, given back after it
                warm_node(engine, tree, node_id, period, versus, causes=causes)
            done += 1
        except DataChanged:  # a load replaced the data: these results would never be asked for
            break
        except Exception:  # noqa: BLE001 - a background warm-up must never take the app down
            continue
    return done
