"""Review: the weekly review (since last review, open actions, nodes due, notes) and snapshots
(save one, compare two or one with now).

Layout and calls into `kpitree.review` / `kpitree.snapshots` only: every number and sentence comes
from a core function a test calls. User text (names, decisions, owners, labels) reaches Markdown
only through `markdown_text`; tables are dataframe cells.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import streamlit as st

import ui
from kpitree.errors import KpiTreeError
from kpitree.history import default_user
from kpitree.plain import csv_text
from kpitree.plain import markdown_text as md
from kpitree.review import (
    SEED_SOURCE,
    Notes,
    action_rows,
    cadences,
    due_nodes,
    next_due,
    open_actions,
    record_review,
    reviews,
    since_last_review,
)
from kpitree.snapshots import (
    as_saved,
    compare,
    list_snapshots,
    save_snapshot,
    status_word,
    take_snapshot,
    tree_key,
)

st.set_page_config(page_title="Review · KPI Tree", page_icon="🌳", layout="wide")
S = st.session_state


def author() -> str:
    """Who is writing: the signed-in user, else the name typed in the sidebar (local mode)."""
    user = ui.current_user()
    if user is not None and not user.local:
        return user.name
    if "_kept_rv_who" not in S:
        ui.set_sticky("rv_who", default_user())
    return st.sidebar.text_input("Your name (kept with notes and snapshots)", **ui.sticky("rv_who")) or default_user()


def flash() -> None:
    kind, text = S.pop("rv_flash", (None, None))
    if kind == "ok":
        st.success(md(text), icon=":material/check:")
    elif kind:
        st.error(md(text), icon=":material/error:")


def act(what, ok: str) -> None:
    """Runs a write from a button callback; its result or its refusal is said on the next run."""
    try:
        what()
        S["rv_flash"] = ("ok", ok)
    except KpiTreeError as exc:
        S["rv_flash"] = ("error", str(exc))


def main() -> None:
    try:
        ws, engine, tree, period = ui.pick_tree_view()
    except KpiTreeError as exc:
        st.error(md(exc))
        return
    who = author()
    can_write = ui.may(ws, "edit")
    try:
        evaluation = ui.evaluation(ws, tree, period)
        explanation = ui.explanation(ws, tree, tree.root.id, period, "target", causes=True)
        now = take_snapshot(engine, tree, period, author=who, evaluation=evaluation, explanation=explanation)
    except KpiTreeError as exc:  # e.g. a tree whose metrics this workspace's data cannot compute
        st.error(f"**This tree cannot be evaluated for {period.key}**: {md(exc)}", icon=":material/error:")
        return
    st.markdown(f"### Review · {md(tree.name)} · {period.key}")
    st.caption(f"Workspace **{md(ws.name)}** · data as of {evaluation.as_of} · today {datetime.now(UTC).date()}")
    if not can_write:
        st.info("You can read this workspace's reviews and snapshots; writing notes, closing actions and saving "
                "snapshots needs an editor or owner (ask one of its owners on the Workspaces page).")
    flash()
    review_tab, snap_tab = st.tabs(["Weekly review", "Snapshots"])
    with review_tab:
        review(ws, tree, now, who, can_write)
    with snap_tab:
        snapshots(ws, tree, now, who, can_write)


def review(ws, tree, now, who: str, can_write: bool) -> None:
    today = datetime.now(UTC).date()
    notes_store = Notes(ws)
    notes, problems = notes_store.for_tree(tree_key(tree))
    past = reviews(ws, tree_key(tree))
    for p in problems:
        st.warning(md(p), icon=":material/warning:")

    st.markdown("#### Since last review")
    delta = since_last_review(ws, now)
    if delta is None:
        st.info("No review of this tree has been recorded yet. Record one at the end of this review "
                "(below): the next one opens with what changed since.")
    else:
        st.caption(f"Last review: {md(delta.before.title)}. {md(delta.summary())}")
        for n in delta.notes:
            st.caption(md(n))
        rows = delta.node_rows(only_changed=not st.toggle("Show every node", key="rv_all_nodes"))
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch", key="rv_delta")
        else:
            st.caption("No node changed status or target since.")
        causes_list(delta)

    st.markdown("#### Open actions")
    actions = open_actions(notes)
    if not actions:
        st.caption("No open action on this tree.")
    else:
        st.dataframe(action_rows(actions, today), hide_index=True, width="stretch", key="rv_actions")
        with st.form("rv_close", border=False):
            left, mid, right = st.columns([3, 3, 1], vertical_alignment="bottom")
            pick = left.selectbox("Action", [a.id for a in actions], key="rv_close_pick",
                                  format_func=lambda i: next(f"{a.node_label}: {a.decision}" for a in actions
                                                             if a.id == i))
            done = mid.text_input("What was done (optional)", key="rv_close_done")
            if right.form_submit_button("Close action", disabled=not can_write):
                act(lambda: notes_store.close(pick, user=ui.current_user(), author=who, closing=done),
                    "Action closed.")
                st.rerun()

    st.markdown("#### Due for review")
    statuses = {n.id: n.status for n in now.nodes}
    due = due_nodes(tree, statuses, notes, past, today)
    every = cadences(tree)
    defaulted = [c for c in every.values() if not c.declared]
    if defaulted:
        st.caption(f"{len(defaulted)} of {len(every)} nodes have no review cadence in the tree: they use "
                   f"{SEED_SOURCE}. Set `review:` on a node in the Builder to change it.")
    if due:
        st.dataframe([{"node": d.label, "owner": d.owner, "status": status_word(d.status),
                       "cadence": d.every + ("" if d.declared else " (seed default)"),
                       "last reviewed": str(d.last) if d.last else "never",
                       "due since": str(d.due_on)} for d in due],
                     hide_index=True, width="stretch", key="rv_due")
    else:
        st.caption("Nothing is due: every node was reviewed within its cadence.")

    st.markdown("#### Write a note")
    ids = [d.node for d in due] + [n.id for n in tree.walk() if n.id not in {d.node for d in due}]
    labels = {n.id: n.label for n in tree.nodes}
    with st.form("rv_note", clear_on_submit=True):
        node = st.selectbox("Node (due first)", ids, format_func=labels.get, key="rv_note_node")
        decision = st.text_input("Decision", key="rv_note_decision", placeholder="what will be done")
        owners = sorted({n.owner for n in tree.nodes if n.owner})
        left, right = st.columns(2)
        owner = left.selectbox("Owner of the action", owners, index=None, accept_new_options=True,
                               key="rv_note_owner", placeholder="the node's owner, or type a name")
        due_on = right.date_input("Due", value=None, key="rv_note_due", min_value=date(2000, 1, 1))
        text = st.text_area("Note (optional)", key="rv_note_text", height=80)
        if st.form_submit_button("Save note", type="primary", disabled=not can_write):
            node_owner = tree.node(node).owner
            when = due_on or next_due(today, every[node].every)
            act(lambda: notes_store.add(tree, node, decision=decision, owner=owner or node_owner, due=when, note=text,
                                        user=ui.current_user(), author=who),
                f"Note saved on {labels[node]}, due {when}.")
            st.rerun()
    st.caption("Without an owner the node's owner takes the action; without a date it is due at the node's next review.")

    st.markdown("#### Finish the review")
    st.caption(f"Records this review: the tree as it stands now ({now.period}) becomes what the next review compares "
               f"with, and the {len(due)} node(s) due count as reviewed today.")
    if st.button("Record this review", key="rv_record", disabled=not can_write):
        act(lambda: record_review(ws, now, [d.node for d in due], ui.current_user(), author=who),
            "Review recorded. The next review opens with what changed since.")
        st.rerun()
    if past:
        st.caption("Past reviews: " + md(", ".join(f"{s.when:%Y-%m-%d} ({s.created_by})" for s in past[:8])))


def causes_list(result) -> None:
    """The causes new, still open and resolved, each with its owner, where it sits and its sentence
    (still open ones folded: the news is what came and went)."""
    for title, items in result.cause_groups():
        lines = "\n".join(f"- **{md(c.label)}** ({md(c.owner)})"
                          + (f" · {md(c.where)}" if c.state == "open" and c.before_segment != c.after_segment else "")
                          + f": {md(c.sentence)}" for c in items)
        if title == "Still open":
            with st.expander(f"{title} ({len(items)})"):
                st.markdown(lines)
        else:
            st.markdown(f"**{title} ({len(items)})**\n{lines}")


def snapshots(ws, tree, now, who: str, can_write: bool) -> None:
    key = tree_key(tree)
    saved, problems = list_snapshots(ws, tree=key)
    for p in problems:
        st.warning(md(p), icon=":material/warning:")
    with st.form("rv_snap", clear_on_submit=True, border=False):
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        name = left.text_input("Snapshot name", key="rv_snap_name", placeholder="e.g. Board call October")
        if right.form_submit_button("Save snapshot", type="primary", disabled=not can_write):
            act(lambda: save_snapshot(ws, as_saved(now, name, who), ui.current_user()),
                f"Snapshot saved: {name.strip()} ({now.period}).")
            st.rerun()
    st.caption("Freezes every node's value, target and status for the period in view, and the cause sentences of "
               "the red path, with your name and the time. Kept in this workspace only.")
    if not saved:
        st.info("No snapshot of this tree yet.")
        return
    st.markdown("#### Compare")
    by_id = {s.id: s for s in saved}
    choices = ["now", *by_id]
    name_of = {"now": now.title, **{i: s.title for i, s in by_id.items()}}
    left, right = st.columns(2)
    before = left.selectbox("Before", list(by_id), key="rv_before", format_func=name_of.get)
    after = right.selectbox("After", choices, key="rv_after", format_func=name_of.get)
    result = compare(by_id[before], now if after == "now" else by_id[after])
    st.markdown(md(result.summary()))
    for n in result.notes:
        st.caption(md(n))
    only = not st.toggle("Show every node", key="rv_cmp_all")
    rows = result.node_rows(only_changed=only)
    st.dataframe(rows or [{"node": "no node changed status or target"}], hide_index=True, width="stretch",
                 key="rv_cmp_nodes")
    causes_list(result)
    header = ["node", "owner", "status before", "status after", "value before", "value after", "change",
              "what changed"]
    st.download_button("Download the comparison (CSV)", key="rv_cmp_csv", mime="text/csv",
                       file_name=f"compare-{key}-{result.before.period}-{result.after.period}.csv",
                       data=csv_text(header, ([r[h] for h in header] for r in result.node_rows())))
    st.markdown("#### Saved snapshots")
    st.dataframe([{"name": s.name, "kind": s.kind, "period": s.period, "taken": f"{s.when:%Y-%m-%d %H:%M} UTC",
                   "by": s.created_by, "red": sum(1 for n in s.nodes if n.status == "red"), "causes": len(s.causes)}
                  for s in saved], hide_index=True, width="stretch", key="rv_snaps")


main()
