"""Who to talk to: every owner with the numbers they own, which are red and why, and their open
actions — the list a founder takes into the Monday meeting, also as CSV.

Layout and calls into `kpitree.owners` only (built from a snapshot of now: the same figures as the
tree page and the review). User text reaches Markdown only through `markdown_text`; the CSV goes
through `kpitree.plain.csv_text` (`owners.owners_csv`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

import ui
from kpitree.errors import KpiTreeError
from kpitree.owners import actions_text, figures_text, owners, owners_csv, people_parts
from kpitree.plain import markdown_text as md
from kpitree.review import Notes
from kpitree.snapshots import status_word, take_snapshot, tree_key

st.set_page_config(page_title="Owners · KPI Tree", page_icon="🌳", layout="wide")


# the words are `status_word`'s, the ones the list's CSV and the Review page write
STATUS_BADGE = {s: f":{colour}-badge[{status_word(s)}]" for s, colour in (
    ("red", "red"), ("amber", "orange"), ("green", "green"), ("no_target", "gray"), ("no_data", "gray"),
    ("maturing", "gray"), ("too_few", "gray"), ("not_judged", "gray"))}
CARRIED_BADGE = ":gray-badge[carried over]"


def _count(n: int, one: str, many: str) -> str:
    """"1 red number", "3 red numbers": a count and its noun in the number it takes."""
    return f"{n} {one if n == 1 else many}"


def main() -> None:
    try:
        ws, engine, tree, period = ui.pick_tree_view()
    except KpiTreeError as exc:
        st.error(md(exc))
        return
    today = datetime.now(UTC).date()
    try:
        evaluation = ui.evaluation(ws, tree, period)
        explanation = ui.explanation(ws, tree, tree.root.id, period, "target", causes=True)
        now = take_snapshot(engine, tree, period, evaluation=evaluation, explanation=explanation)
        people = people_parts(engine, tree, evaluation)  # "Reps (per owner)": each rep in the data, their part
    except KpiTreeError as exc:  # e.g. a tree whose metrics this workspace's data cannot compute
        st.error(f"**This tree cannot be evaluated for {period.key}**: {md(exc)}", icon=":material/error:")
        return
    notes, problems = Notes(ws).for_tree(tree_key(tree))
    entries = owners(now, notes, tree, people)
    st.markdown(f"### Who to talk to · {md(tree.name)} · {period.key}")
    # the tree's red numbers (a number owned per person counts once, however many people's parts are red)
    carried_ids = {o.node.id for e in entries for o in e.carried}
    reds = len({n.id for n in now.nodes if n.status == "red"} - carried_ids)
    parts = sum(1 for e in entries for o in e.red if o.part_of)
    carried = len(carried_ids)
    actions = sum(len(e.actions) for e in entries)
    own_parts = _count(parts, "person's own part", "people's own parts")
    st.caption(f"Workspace **{md(ws.name)}** · data as of {evaluation.as_of} · {_count(len(entries), 'owner', 'owners')} · "
               f"{_count(reds, 'red number', 'red numbers')} to act on" + (f" (and {carried} carried over)" if carried else "")
               + (f" · {own_parts} red" if parts else "")
               + f" · {_count(actions, 'open action', 'open actions')}")
    for p in problems:
        st.warning(md(p), icon=":material/warning:")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    red_only = left.toggle("Red numbers only", key="ow_red_only", value=True)
    right.download_button("Download the list (CSV)", key="ow_csv", mime="text/csv", width="stretch",
                          file_name=f"owners-{tree_key(tree)}-{period.key}.csv",
                          data=owners_csv(entries, today, red_only=red_only))
    for e in entries:
        shown = [o for o in e.nodes if not red_only or o.node.status == "red"]
        if red_only and not shown and not e.actions:
            continue
        with st.container(border=True):
            st.markdown(f"#### {md(e.owner)}" + (" · owner still to assign" if e.to_assign else ""))
            st.caption(f"{len(e.red)} of {_count(len(e.nodes), 'number', 'numbers')} red"
                       + (f" · {len(e.carried)} carried over, not a lever this period" if e.carried else "")
                       + (" · their own part of the numbers owned by " + md(", ".join(e.part_of)) if e.part_of else "")
                       + f" · {len(e.actions)} open action" + ("" if len(e.actions) == 1 else "s"))
            for o in shown:
                n = o.node
                line = f"{STATUS_BADGE.get(n.status, '')}" + (f" {CARRIED_BADGE}" if o.carried else "") \
                    + f" **{md(n.label)}**" + (" (their part)" if o.part_of else f" · {md(figures_text(o))}")
                if o.sentence:
                    line += f" — {md(o.sentence)}"
                st.markdown(line)
            if e.actions:
                st.markdown("**Open actions:** " + md(actions_text(e, today)))
    st.caption("Red first; each red number with the explanation's sentence (the cause where it sits, else its step "
               "on the red path). An opening balance (ARR at start) is last period's closing value: listed, marked "
               "carried over, but not counted among the red numbers to act on. A number the tree gives to “Reps (per "
               "owner)” is every rep's: each person the data names for the period is listed with their own part — a "
               "rate (won of decided) against the number's target; an average (deal size, cycle days) against the "
               "segment they sell in, since the team's target mixes segments (not judged when they sell in several "
               "or alone); an amount as a share of the team's, in the team's colour. A target marked ~ was suggested "
               "from the workspace's own history, not typed by a person (as on the tree page). Actions come from "
               "review notes (Review page).")


main()
