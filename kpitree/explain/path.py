"""The red path: from the node down the child that explains most of the gap, to a lever.

Exact links: the largest adverse share, if the child is itself off its baseline; influence links
(and descendants judged on their own past a node without data): the red child furthest beyond its
amber band. An exact child explaining `EXACT_FIRST_SHARE` of the gap is followed first.
"""

from __future__ import annotations

from .analysis import _analyse, _Analysis, _over, _worse
from .causes import _bands, _off_baseline
from .cells import _Session
from .model import EXACT_FIRST_SHARE

Next = tuple[str, str, float | None, float | None, tuple[str, ...]]  # id, link, share, bands, stepped over


def _next_step(session: _Session, a: _Analysis, versus: str) -> Next | None:
    """The child that explains most of the gap: (id, link, share, bands, ids stepped over), or None
    at the end. Past a node without a gap, the descendant furthest off its own baseline."""
    view = a.view
    gap = view.gap
    if gap is None:
        worst = _worse(_over(session, a, versus))
        if not worst:
            return None
        via, kid = worst[0]
        return kid.view.node.id, "own", None, kid.view.bands, via
    if view.adverse(gap) <= 0:
        return None
    best_exact = None
    for c in a.children.parts:
        if c.link != "exact" or c.share is None or c.share <= 0 or c.value is None or c.baseline is None:
            continue
        if not _off_baseline(session, c):
            continue  # it weighs on the parent within segments, but is itself on (or near) its baseline
        if best_exact is None or c.share > best_exact.share:
            best_exact = c
    # influence children (and, past children without data, descendants judged on their own): the
    # red one furthest beyond its amber band; failing that (an amber parent, say), the one furthest
    # off in the bad direction
    candidates: list[tuple[str, str, float, tuple[str, ...]]] = [
        (i.id, "influence", i.bands, ()) for i in a.children.influences
        if i.bands is not None and i.bands > 0 and not i.maturing]
    if best_exact is None:
        # no exact child carries an adverse part while off its own target — a product split within the
        # segments of the dimension where the change sits can give a red win rate a favourable part (the
        # others' rates rose) — so its red children are judged as influences are: how far off they are
        candidates += [(c.id, "exact", bands, ()) for c in a.children.parts
                       if c.link == "exact" and _off_baseline(session, c) and (bands := _bands(session, c)) is not None]
    candidates += [(k.view.node.id, "own", k.view.bands or 0.0, via) for via, k in _worse(_over(session, a, versus))]
    best_inf = max(candidates, key=lambda c: c[2], default=None)
    if best_inf is not None and best_inf[2] < 1 and best_exact is not None:
        best_inf = None  # an exact share beats an influence that is not even red
    if best_exact is not None and (best_exact.share >= EXACT_FIRST_SHARE or best_inf is None):  # type: ignore[operator]
        return best_exact.id, "exact", best_exact.share, None, ()
    if best_inf is not None:
        share = next((c.share for c in a.children.parts if c.id == best_inf[0]), None) if best_inf[1] == "exact" else None
        return best_inf[0], best_inf[1], share, best_inf[2], best_inf[3]
    return None


def _red_path(session: _Session, start: _Analysis, versus: str) -> list[tuple[_Analysis, str, float | None, float | None]]:
    """From `start` down the child that explains most of the gap to a lever; nodes without data on
    the way are steps of their own ("over"), saying what they lack."""
    path = [(start, "start", None, None)]
    if start.view.maturing:  # a young cohort's gap is not final: no path starts from it
        return path
    seen = {start.view.node.id}
    cur = start
    while True:
        nxt = _next_step(session, cur, versus)
        if nxt is None or nxt[0] in seen:
            break
        cid, link, share, bands, via = nxt
        for vid in via:
            seen.add(vid)
            path.append((_analyse(session, session.tree.node(vid), versus), "over", None, None))
        seen.add(cid)
        cur = _analyse(session, session.tree.node(cid), versus)
        path.append((cur, link, share, bands))
    return path


