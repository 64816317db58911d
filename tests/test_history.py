"""Trees in a workspace: drafts vs published, the active pointer, versions with who/when/what, diff, restore."""

from __future__ import annotations

import threading

import pytest

from kpitree import builder as b
from kpitree.errors import KpiTreeError, SpecError
from kpitree.history import TreeStore, describe_changes, file_name, workspace_trees
from kpitree.tree import Target, dump_tree, load_tree, parse_yaml

VALID = """
name: Acme revenue
nodes:
  - id: arr
    level: north_star
    metric: arr
    owner: CEO
    review: weekly
    target: 1200000
    children: [new_arr]
  - id: new_arr
    level: driver
    metric: new_arr
    owner: CRO
    target: 100000
"""


@pytest.fixture
def tree():
    return parse_yaml(VALID, None)[0]


@pytest.fixture
def store(tmp_path):
    return TreeStore(tmp_path / "ws" / "trees")


def test_draft_with_errors_is_saved_but_never_published(store, tree):
    broken = b.edit_node(tree, "new_arr", owner="")
    version = store.save_draft(broken, "acme", "ana")
    assert (version.number, version.who, version.action, version.valid) == (1, "ana", "draft", False)
    assert store.drafts() == ["acme"] and store.published() == []
    with pytest.raises(SpecError, match="needs an owner"):
        store.publish(broken, "acme", "ana")
    assert workspace_trees(store.root) == [] and store.active() is None
    assert store.load("acme")[0].node("new_arr").owner == ""


def test_publish_makes_it_active_and_listed_first(store, tree):
    store.publish(tree, "zeta", "ana")
    store.publish(b.edit_tree(tree, name="Alpha"), "alpha", "ben", activate=False)
    assert store.active() == "zeta"
    assert [p.stem for p in workspace_trees(store.root)] == ["zeta", "alpha"]  # active first, not by name
    store.activate("alpha")
    assert [p.stem for p in workspace_trees(store.root)] == ["alpha", "zeta"]
    assert load_tree(store.published_path("alpha")).name == "Alpha"
    with pytest.raises(KpiTreeError, match="not published"):
        store.activate("ghost")
    # A hand-edited published file that no longer loads is left out of the main page's list.
    store.published_path("zeta").write_text(VALID.replace("owner: CRO", "owner: ''"))
    assert [p.stem for p in workspace_trees(store.root)] == ["alpha"]


def test_versions_record_who_when_what(store, tree, monkeypatch):
    monkeypatch.setenv("USER", "svc-user")
    store.save_draft(tree, "acme", "")
    t2 = b.set_target(
        b.add_node(tree, "new_arr", label="Leads", metric="leads", owner="CMO", target=Target(value=500)),
        "arr",
        Target(value=1_500_000),
    )
    store.publish(t2, "acme", "Ana")
    t3 = b.move_node(b.edit_node(t2, "leads", owner="Lena"), "leads", "arr")
    store.save_draft(t3, "acme", "Ben")
    versions = store.versions("acme")
    assert [(v.number, v.who, v.action) for v in versions] == [
        (1, "svc-user", "draft"),
        (2, "Ana", "publish"),
        (3, "Ben", "draft"),
    ]
    assert versions[0].summary == "created with 2 node(s)"
    assert "added leads" in versions[1].summary and "arr: target 1200000 → 1500000" in versions[1].summary
    assert "moved leads from under new_arr to under arr" in versions[2].summary
    assert "leads: owner 'CMO' → 'Lena'" in versions[2].summary
    assert all(len(v.at) == 19 for v in versions)
    diff = store.diff("acme", 1, 3)
    assert "added leads" in diff.changes
    assert "+  owner: Lena" in diff.text and diff.text.startswith("--- acme v1")


def test_restore_brings_a_version_back_and_records_it(store, tree):
    store.publish(tree, "acme", "ana")
    changed = b.edit_node(tree, "new_arr", owner="Somebody else")
    store.publish(changed, "acme", "ben")
    restored, version = store.restore("acme", 1, "cleo")
    assert restored.node("new_arr").owner == "CRO"
    assert (version.number, version.who, version.action) == (3, "cleo", "restore v1")
    assert load_tree(store.published_path("acme")).node("new_arr").owner == "CRO"  # live again
    assert store.active() == "acme"
    assert "new_arr: owner 'Somebody else' → 'CRO'" in version.summary
    with pytest.raises(KpiTreeError, match="no version 9"):
        store.restore("acme", 9, "cleo")


def test_restoring_an_invalid_version_gives_a_draft(store, tree):
    store.save_draft(b.edit_node(tree, "arr", owner=""), "acme", "ana")
    store.publish(tree, "acme", "ana")
    restored, version = store.restore("acme", 1, "ana")
    assert store.has_draft("acme") and version.valid is False
    assert load_tree(store.published_path("acme")).node("arr").owner == "CEO"  # the live tree is untouched


def test_concurrent_saves_get_distinct_versions(store, tree):
    def save(i: int) -> None:
        store.save_draft(b.edit_node(tree, "arr", owner=f"owner {i}"), "acme", f"user{i}")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = sorted(v.number for v in store.versions("acme"))
    assert numbers == list(range(1, 9))


def test_names_are_safe(store, tree):
    assert file_name("Acme Revenue / Q3!") == "acme_revenue_q3"
    for bad in ("../etc", "Acme", ".hidden", ""):
        with pytest.raises(KpiTreeError, match="invalid tree name"):
            store.save_draft(tree, bad, "ana")


def test_describe_changes_on_identical_text():
    assert describe_changes(VALID, VALID) == ["no change"]
    assert describe_changes(VALID, dump_tree(parse_yaml(VALID, None)[0])) != []
