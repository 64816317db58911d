"""Suggested targets planned again from the data as it is now (trial 4: after a re-mapped reload, win rate
stayed planned at 100 % against 27 %), keeping the targets a person set."""

from __future__ import annotations

import dataclasses

import pytest

from kpitree.evaluate import Engine
from kpitree.history import TreeStore
from kpitree.ingest import ingest
from kpitree.suggest import first_tree, resuggest_summary, resuggest_targets
from kpitree.tree import Target, load_tree

MONTHS = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]


def deals(won_per_month: int) -> str:
    """Four new deals closed in each month May–November 2026, `won_per_month` of them won ($10k each), the
    rest lost; one open deal created in December."""
    rows = ["deal_id,owner,created_date,close_date,status,amount,deal_type"]
    for m in MONTHS:
        for i in range(4):
            status = "won" if i < won_per_month else "lost"
            rows.append(f"D{m}-{i},Ann,{m}-01,{m}-{10 + i},{status},10000,new")
    rows.append("OPEN,Ann,2026-12-01,,open,10000,new")
    return "\n".join(rows) + "\n"


@pytest.fixture
def reloaded(load_ws, tmp_path):
    """A workspace whose first load read 3 of 4 deals a month as won (a stage mapped wrongly), its suggested tree with
    the average deal size target typed by a person, then the corrected file loaded: 1 of 4 won a month."""
    ws = load_ws(deals=deals(3))
    made = first_tree(ws)
    assert made is not None and made.tree is not None
    store = TreeStore(ws.trees_dir)
    tree = load_tree(store.published_path(made.name))
    assert tree.node("win_rate").target.suggested
    typed = dataclasses.replace(tree.node("avg_deal_size"), target=Target(value=12345.0))
    tree = dataclasses.replace(tree, nodes=tuple(typed if n.id == "avg_deal_size" else n for n in tree.nodes))
    store.publish(tree, made.name, "tester")
    fixed = tmp_path / "fixed" / "deals.csv"
    fixed.parent.mkdir()
    fixed.write_text(deals(1))
    ingest(ws, [fixed])
    return ws, load_tree(store.published_path(made.name))


def test_suggested_targets_follow_the_corrected_data_and_typed_ones_stay(reloaded):
    """Win rate, a rate, is planned at the mean of the six months before the month (May–October): 3/4 = 75 %
    on the first load, 1/4 = 25 % after the corrected one. The typed $12,345 stays, and stays typed."""
    ws, tree = reloaded
    assert dict(tree.node("win_rate").target.by_period)["2026-11"] == 0.75
    done = resuggest_targets(Engine(ws), tree)
    win = done.tree.node("win_rate").target
    assert dict(win.by_period)["2026-11"] == 0.25 and win.suggested
    assert done.tree.node("avg_deal_size").target == Target(value=12345.0)
    assert done.kept == 1 and done.stale and done.month == "2026-11"
    change = next(c for c in done.changes if c.id == "win_rate")
    assert (change.before, change.after) == (0.75, 0.25)
    assert "Win rate (new) 75.0% → 25.0%" in resuggest_summary(done)
    assert resuggest_summary(done).endswith("; 1 target set by hand stay as they are.")
    again = TreeStore(ws.trees_dir)
    again.publish(done.tree, "again", "tester", activate=False)  # valid: the store refuses a tree with errors
    assert load_tree(again.published_path("again")).node("win_rate").target == win


def test_targets_already_planned_from_this_data_are_not_stale(reloaded):
    ws, tree = reloaded
    once = resuggest_targets(Engine(ws), tree)
    twice = resuggest_targets(Engine(ws), once.tree)
    assert not twice.stale and twice.changes == () and twice.tree == once.tree
    assert resuggest_summary(twice).startswith(f"The {twice.replanned} suggested targets already match the data")


def test_a_tree_with_only_typed_targets_has_nothing_to_resuggest(reloaded):
    ws, tree = reloaded
    typed = dataclasses.replace(tree, nodes=tuple(dataclasses.replace(n, target=Target(value=1.0)) for n in tree.nodes))
    done = resuggest_targets(Engine(ws), typed)
    assert (done.replanned, done.kept, done.stale, done.tree) == (0, len(tree.nodes), False, typed)
    assert resuggest_summary(done).startswith("No target of this tree is a suggestion from the data")
