"""The builder page through AppTest: build a seed-003 tree from scratch, edit, move, delete, validate, save, restore."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from apptest_utils import failures
from conftest import ROOT, make_workspace
from streamlit.testing.v1 import AppTest

from kpitree.history import TreeStore, workspace_trees
from kpitree.tree import load_tree

PAGE = str(ROOT / "views" / "2_Builder.py")
BLANK = "Blank tree (start at the top)"
DEALS = """
deal_id,account_id,owner,created_date,close_date,status,amount,deal_type,segment,channel
D1,A1,Ann,2026-08-01,2026-09-03,won,1000,new,SMB,Outbound
D2,A2,Ann,2026-08-02,2026-09-10,won,3000,expansion,Enterprise,Partner
D3,A3,Bob,2026-08-03,2026-10-20,lost,5000,new,Enterprise,Outbound
"""
SUBSCRIPTIONS = """
customer_id,start_date,end_date,mrr,segment
A1,2026-01-01,,100,SMB
A2,2026-02-01,,300,Enterprise
"""


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    make_workspace(tmp_path, deals=DEALS, subscriptions=SUBSCRIPTIONS)
    monkeypatch.setenv("KPITREE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("USER", "tester")
    return tmp_path


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["ws"] = "ws"  # make_workspace's folder; its CSV sources sit beside it in `src`
    return at.run()


def shown(markdown: str) -> str:
    """What a reader sees of Markdown the page escaped with `plain.markdown_text` (no backslashes)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def texts(at: AppTest) -> str:
    return shown("\n".join(
        [m.value for m in at.markdown]
        + [e.value for e in at.error]
        + [s.value for s in at.success]
        + [w.value for w in at.warning]
        + [i.value for i in at.info]
        + [c.value for c in at.caption]
    ))


def blank(at: AppTest) -> AppTest:
    at.selectbox(key="b_source").set_value(BLANK)
    return at.button(key="b_open").click().run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_build_a_seed_003_tree_from_scratch_and_make_it_active(data_dir):
    at = ok(blank(page()))
    assert at.session_state["b_tree"].node("revenue").owner == ""
    assert at.button(key="b_publish").disabled  # errors: no owner, no target
    assert "needs an owner" in texts(at) and "numeric target" in texts(at)

    at.text_input(key="b_owner").set_value("Maria (CEO)").run()
    at.number_input(key="b_t_value").set_value(600).run()
    ok(at)
    assert "Valid" in texts(at) and not at.button(key="b_publish").disabled

    # Level 2: a driver under the north star, with its own owner and target.
    at.button(key="b_add").click().run()
    assert at.selectbox(key="b_node").value == "new_metric"
    assert "needs an owner" in texts(at) and at.button(key="b_publish").disabled  # live validation of the new node
    at.text_input(key="b_label").set_value("New ARR").run()
    at.text_input(key="b_id").set_value("new_arr").run()
    at.selectbox(key="b_metric").set_value("new_arr").run()
    at.text_input(key="b_owner").set_value("Alex (CRO)").run()
    at.number_input(key="b_t_monthly").set_value(2000).run()
    ok(at)
    tree = at.session_state["b_tree"]
    assert tree.node("revenue").children == ("new_arr",)
    assert tree.node("new_arr").level == 2 and tree.node("new_arr").target.per_grain == (("monthly", 2000.0),)

    # A second driver, then move it under new_arr: re-parented one level lower.
    at.selectbox(key="b_node").set_value("revenue").run()
    at.button(key="b_add").click().run()
    at.text_input(key="b_id").set_value("won_deals").run()
    at.selectbox(key="b_metric").set_value("won_deals").run()
    at.text_input(key="b_owner").set_value("Alex (CRO)").run()
    at.number_input(key="b_t_value").set_value(3).run()
    at.selectbox(key="b_parent").set_value("new_arr").run()
    ok(at)
    tree = at.session_state["b_tree"]
    assert tree.node("new_arr").children == ("won_deals",) and tree.node("won_deals").level == 3

    # Save as a draft, then make it active: two versions, the second listed on the main page.
    at.text_input(key="b_name").set_value("acme").run()
    at.button(key="b_save_draft").click().run()
    ok(at)
    assert "acme v1 saved as a draft" in texts(at)
    at.button(key="b_publish").click().run()
    ok(at)
    assert "acme v2 published and made active" in texts(at)
    store = TreeStore(data_dir / "ws" / "trees")
    assert store.active() == "acme" and [v.who for v in store.versions("acme")] == ["tester", "tester"]
    saved = load_tree(store.published_path("acme"))
    assert [n.id for n in saved.walk()] == ["revenue", "new_arr", "won_deals"]
    assert saved.node("won_deals").owner == "Alex (CRO)"

    # Delete the lever, save; then restore version 2 from the history tab.
    at.selectbox(key="b_node").set_value("won_deals").run()
    at.button(key="b_remove").click().run()
    ok(at)
    assert "won_deals" not in {n.id for n in at.session_state["b_tree"].nodes}
    assert at.selectbox(key="b_node").value == "new_arr"
    at.button(key="b_publish").click().run()
    assert "removed won_deals" in store.versions("acme")[-1].summary
    at.selectbox(key="b_v_restore").set_value(2).run()
    at.button(key="b_restore").click().run()
    ok(at)
    assert "Restored acme v2 as v4" in texts(at)
    assert "won_deals" in {n.id for n in at.session_state["b_tree"].nodes}
    assert "won_deals" in {n.id for n in load_tree(store.published_path("acme")).nodes}


def test_errors_are_listed_next_to_their_node_and_block_activation(data_dir):
    at = ok(blank(page()))
    at.text_input(key="b_owner").set_value("CEO").run()
    at.number_input(key="b_t_value").set_value(1).run()
    at.button(key="b_add").click().run()
    at.radio(key="b_mode").set_value("custom").run()
    at.text_area(key="b_c_filter").set_value("status = 'won'; COPY deals TO '/tmp/x.csv'").run()
    ok(at)
    errors = [shown(e.value) for e in at.error]
    assert any("';' is not allowed" in e and e.startswith("line ") for e in errors), errors
    assert at.button(key="b_publish").disabled
    at.text_input(key="b_name").set_value("draft_only").run()
    at.button(key="b_save_draft").click().run()
    store = TreeStore(data_dir / "ws" / "trees")
    assert store.drafts() == ["draft_only"] and store.published() == []  # never on the main page
    at.text_area(key="b_c_filter").set_value("status = 'won'").run()
    at.text_input(key="b_owner").set_value("CRO").run()
    at.number_input(key="b_t_value").set_value(1000).run()
    ok(at)
    node = at.session_state["b_tree"].node("new_metric")
    assert node.metric.startswith("custom_") and node.custom.filter == "status = 'won'"
    assert not at.button(key="b_publish").disabled
    at.radio(key="b_mode").set_value("catalogue").run()
    assert ok(at).session_state["b_tree"].node("new_metric").custom is None
    at.radio(key="b_mode").set_value("custom").run()
    assert ok(at).session_state["b_tree"].node("new_metric").custom is not None


def test_formula_units_and_empty_id(data_dir):
    at = ok(blank(page()))
    at.text_input(key="b_owner").set_value("CEO").run()
    at.number_input(key="b_t_value").set_value(1).run()
    at.button(key="b_add").click().run()
    at.selectbox(key="b_metric").set_value("nrr").run()
    assert at.selectbox(key="b_node").value == "nrr"  # a node just added is named after its metric
    at.selectbox(key="b_node").set_value("revenue").run()
    at.text_input(key="b_formula").set_value("revenue = nrr + 1000").run()
    ok(at)
    assert "formula adds money and percent" not in texts(at)
    assert "formula gives percent but the node's unit is money" in texts(at)
    at.text_input(key="b_id").set_value("").run()
    assert "an id cannot be empty" in texts(at) and at.text_input(key="b_id").value == "revenue"


def test_the_seed_003_template_comes_first_and_opens_with_a_preview(data_dir):
    at = page()
    templates = [o for o in at.selectbox(key="b_source").options if o.endswith("(template)")]
    assert {f"{p.stem} (template)" for p in (ROOT / "data" / "trees").glob("*.yaml")} == set(templates)
    if any(t.startswith("seed003") for t in templates):
        assert templates[0].startswith("seed003")  # seed 003 is the user's own method: offered first
    for label in templates[:2]:  # every template validates and evaluates in test_builder.py
        at.selectbox(key="b_source").set_value(label)
        at.button(key="b_open").click().run()
        ok(at)
        assert [e for e in at.main if e.type == "vega_lite_chart"], label
        assert "**Live preview**" in texts(at)
        assert at.text_input(key="b_name").value == label.split(" (")[0]


def test_yaml_import_from_the_yaml_tab(data_dir):
    at = ok(blank(page()))
    text = (ROOT / "tests" / "fixtures" / "trees" / "valid" / "custom_measures.yaml").read_text()
    at.text_area(key="b_yaml_in").set_value(text).run()
    at.button(key="b_yaml_load").click().run()
    ok(at)
    tree = at.session_state["b_tree"]
    assert tree.name == "Custom measures" and tree.node("enterprise_bookings").custom is not None
    assert at.text_input(key="b_name").value == "custom_measures"


# --- issue 14: the Builder starts from the tree being viewed and keeps it across visits ----------------

ACME = """
name: Acme revenue
nodes:
  - id: arr
    label: ARR
    level: north_star
    metric: arr
    owner: Maria (CEO)
    target: 5000
    children: [new_arr]
  - id: new_arr
    label: New ARR
    level: driver
    metric: new_arr
    owner: Alex (CRO)
    target: 2000
"""


def publish(data_dir: Path, name: str, text: str, active: bool = True) -> TreeStore:
    from kpitree.tree import parse_yaml

    store = TreeStore(data_dir / "ws" / "trees")
    store.publish(parse_yaml(text, None)[0], name, "fixture", activate=active)
    return store


def test_builder_opens_the_viewed_tree_keeps_its_name_and_saves_a_new_version_of_it(data_dir):
    store = publish(data_dir, "other", ACME.replace("Acme revenue", "Other tree"))
    publish(data_dir, "acme", ACME, active=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({"ws": "ws", "tree": "acme"})
    at.run()
    assert not failures(at), failures(at)
    assert at.session_state["_viewing_tree"] == ("workspace", "acme")

    at.switch_page("views/2_Builder.py").run()
    assert not failures(at), failures(at)
    assert at.session_state["b_tree"].name == "Acme revenue"  # the tree being viewed, not the active one
    assert at.text_input(key="b_name").value == "acme" and at.text_input(key="b_title").value == "Acme revenue"

    at.selectbox(key="b_node").set_value("new_arr").run()
    at.number_input(key="b_t_value").set_value(2500).run()
    at.switch_page("views/0_Tree.py").run()  # a round trip through the tree page: Streamlit drops widget values
    at.switch_page("views/2_Builder.py").run()
    assert not failures(at), failures(at)
    assert at.text_input(key="b_name").value == "acme" and at.text_input(key="b_title").value == "Acme revenue"
    assert at.session_state["b_tree"].node("new_arr").target.value == 2500  # unsaved edit kept

    at.button(key="b_publish").click().run()
    assert not failures(at), failures(at)
    assert store.published() == ["acme", "other"]  # a new version of acme, no second tree
    assert [v.number for v in store.versions("acme")] == [1, 2]
    assert "new_arr: target 2000 → 2500" in store.versions("acme")[-1].summary


def test_viewing_another_tree_reopens_the_builder_on_it_unless_edits_are_unsaved(data_dir):
    publish(data_dir, "other", ACME.replace("Acme revenue", "Other tree"))
    publish(data_dir, "acme", ACME, active=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({"ws": "ws", "tree": "acme"})
    at.run()
    at.switch_page("views/2_Builder.py").run()
    assert at.session_state["b_tree"].name == "Acme revenue"
    at.switch_page("views/0_Tree.py").run()
    at.selectbox(key="tree_pick").set_value("other (workspace)").run()
    at.switch_page("views/2_Builder.py").run()
    assert not failures(at), failures(at)
    assert at.session_state["b_tree"].name == "Other tree" and at.text_input(key="b_name").value == "other"

    at.text_input(key="b_owner").set_value("Somebody else").run()  # an unsaved edit of "other"
    at.switch_page("views/0_Tree.py").run()
    at.selectbox(key="tree_pick").set_value("acme (workspace)").run()
    at.switch_page("views/2_Builder.py").run()
    assert at.session_state["b_tree"].name == "Other tree"  # the edit is not thrown away…
    assert "unsaved edits of **other** are kept" in texts(at)  # …and the page says how to switch


# --- issue 16: a broken tree file never stops the Builder; it is fixed or deleted there ------------

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nnodes: [*b, *b, *b]\n"
PARENS = ACME.replace("metric: new_arr", 'metric: {aggregate: sum, table: deals, column: amount, filter: "'
                      + "(" * 43 + "status = 'won'" + ")" * 43 + '"}')
DICT_FILTER = ACME.replace("    target: 2000\n", "    target: 2000\n    filter: {segment: {a: 1}}\n")


def test_broken_tree_files_are_listed_and_can_be_fixed_or_deleted(data_dir):
    store = publish(data_dir, "acme", ACME)
    trees = data_dir / "ws" / "trees"
    (trees / "bomb.yaml").write_text(BOMB)
    (trees / "parens.yaml").write_text(PARENS)
    (trees / "dict_filter.yaml").write_text(DICT_FILTER)
    (trees / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    at = page()
    assert not failures(at), failures(at)
    shown_files = "\n".join(t.value for t in at.text)
    assert "anchors and aliases" in shown_files and "nests parentheses 43 deep" in shown_files
    assert "filter segment: each value is one piece of text" in shown_files and "not UTF-8" in shown_files
    assert "4 tree file(s) in this workspace cannot be used" in " ".join(e.label for e in at.expander)
    assert at.session_state["b_tree"].name == "Acme revenue"  # the good tree still opens
    options = at.selectbox(key="b_source").options
    assert not any("bomb" in o for o in options) and "parens (workspace, published, has errors)" in options

    # Fix the dict filter as text: a wrong fix is refused with the problem, the right one saved.
    at.button(key="b_fix_published/dict_filter.yaml").click().run()
    assert "filter: {segment: {a: 1}}" in at.text_area(key="b_fix_text").value
    at.text_area(key="b_fix_text").set_value(DICT_FILTER.replace("{a: 1}", "[]")).run()
    at.button(key="b_fix_save").click().run()
    assert "still has problems" in texts(at) and "give at least one value" in texts(at)
    assert "{a: 1}" in (trees / "dict_filter.yaml").read_text()  # nothing written
    at.text_area(key="b_fix_text").set_value(DICT_FILTER.replace("{a: 1}", "Enterprise")).run()
    at.button(key="b_fix_save").click().run()
    assert not failures(at), failures(at)
    assert "trees/dict_filter.yaml fixed" in texts(at)
    assert "dict_filter" in [p.stem for p in workspace_trees(trees)]

    # Delete the alias bomb: asked first, then gone; the rest stays listed.
    at.button(key="b_del_published/bomb.yaml").click().run()
    assert "for good?" in texts(at) and (trees / "bomb.yaml").exists()
    at.button(key="b_del_yes_published/bomb.yaml").click().run()
    assert not failures(at), failures(at)
    assert not (trees / "bomb.yaml").exists() and "Deleted trees/bomb.yaml" in texts(at)
    assert "2 tree file(s) in this workspace cannot be used" in " ".join(e.label for e in at.expander)
    assert store.active() == "acme"


def test_user_text_is_shown_as_plain_text_never_as_markdown(data_dir):
    evil = ACME.replace("label: New ARR", "label: '![x](http://evil.test/p.png) [click](http://evil.test)'")
    evil = evil.replace("owner: Alex (CRO)", "owner: '**bold** <b>html</b>'")
    evil = evil.replace("    target: 2000\n", "    target: 2000\n    unit: '[u](http://evil.test)'\n")
    publish(data_dir, "acme", evil)
    at = page()
    assert not failures(at), failures(at)
    at.selectbox(key="b_node").set_value("new_arr").run()
    at.button(key="b_add").click().run()  # a flash message naming the node
    at.selectbox(key="b_node").set_value("new_arr").run()
    raw = [m.value for m in (*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success)]
    assert any("evil" in r for r in raw)  # the text is shown…
    assert not any("](http" in r or "**bold**" in r for r in raw), [r for r in raw if "evil" in r]  # …as text


def test_the_targets_grid_gives_every_number_room(data_dir):
    """Issue 14: the targets column showed "204" for 2,040,000. Each number column is sized for
    "1,000,000,000" and shown with thousands separators; the node stays pinned."""
    import json

    publish(data_dir, "acme", ACME.replace("target: 5000", "target: 2040000"))
    at = page()
    assert not failures(at), failures(at)
    grid = next(d for d in at.dataframe if "monthly" in d.proto.columns)
    columns = json.loads(grid.proto.columns)
    for field in ("value", "annual", "quarterly", "monthly", "weekly", "day90", "month12"):
        assert columns[field]["width"] >= 100 and columns[field]["type_config"]["format"] == "localized", field
    assert columns["node"]["pinned"] is True
    assert grid.value.set_index("node").loc["arr", "value"] == 2040000


def test_a_hostile_paste_is_refused_at_once_and_the_tree_in_the_editor_stays(data_dir):
    import time

    publish(data_dir, "acme", ACME)
    at = page()
    for text, expect in ((BOMB, "anchors and aliases"), (PARENS, "nests parentheses 43 deep"),
                         (DICT_FILTER, "filter segment: each value is one piece of text")):
        at.text_area(key="b_yaml_in").set_value(text).run()
        started = time.perf_counter()
        at.button(key="b_yaml_load").click().run()
        assert time.perf_counter() - started < 10
        assert not failures(at), failures(at)
        assert expect in texts(at)
        if text is BOMB:  # nothing usable: refused, the editor keeps acme
            assert at.session_state["b_tree"].name == "Acme revenue"
        elif text is PARENS:  # the measure is kept as written, with its error next to it: never made active
            assert at.button(key="b_publish").disabled
        else:  # a filter value the evaluator cannot bind is left out of the editor, and the page says so
            assert "left out of the editor" in texts(at) and at.session_state["b_tree"].node("new_arr").filter == ()
    assert TreeStore(data_dir / "ws" / "trees").published() == ["acme"]


def test_a_bare_builder_opens_the_tree_in_use_on_the_node_in_view(data_dir):
    """/Builder?ws=… (no tree in the link, nothing viewed yet) edits the tree the tree page opens by
    default, not the first template of the list; after the tree page showed a node, the Builder
    opens on that node."""
    publish(data_dir, "acme", ACME)  # the active tree
    at = page()
    ok(at)
    assert at.session_state["b_tree"].name == "Acme revenue" and at.session_state["b_node"] == "arr"

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({"ws": "ws", "node": "new_arr"})
    at.run()
    assert not failures(at), failures(at)
    at.switch_page("views/2_Builder.py").run()
    assert not failures(at), failures(at)
    assert at.session_state["b_tree"].name == "Acme revenue" and at.session_state["b_node"] == "new_arr"
