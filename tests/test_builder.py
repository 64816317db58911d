"""Builder core: each validation rule's failing fixture, templates, lossless YAML, and the pure edit functions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpitree import builder as b
from kpitree.cli import main as cli
from kpitree.custom import CustomMeasure
from kpitree.evaluate import Engine, evaluate_tree
from kpitree.metrics import CATALOGUE
from kpitree.tree import Node, Target, dump_tree, load_tree, parse_yaml
from kpitree.workspace import Workspace

FIXTURES = ROOT / "tests" / "fixtures" / "trees"
TEMPLATES = sorted((ROOT / "data" / "trees").glob("*.yaml"))
BAD = sorted([*(FIXTURES / "invalid").glob("*.yaml"), *(FIXTURES / "hostile").glob("*.yaml")])
VALID = sorted((FIXTURES / "valid").glob("*.yaml"))
MARK = "<-- here"


def expectation(path: Path) -> tuple[str, str, int]:
    """(message part, node, line) a fixture declares: its header and the line carrying the marker."""
    text = path.read_text(encoding="utf-8")
    expect = re.search(r"^# expect: (.+)$", text, re.M).group(1)
    node = re.search(r"^# node: (.+)$", text, re.M).group(1)
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if MARK in row and not row.startswith("#"))
    return expect, node, line


def strip(tree):
    return [Node(**{**n.__dict__, "line": None}) for n in tree.nodes]


@pytest.mark.parametrize("path", BAD, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_rule_has_a_failing_fixture_naming_node_and_line(path):
    expect, node, line = expectation(path)
    problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))[1]
    hits = [p for p in problems if p.severity == "error" and expect in p.message]
    assert hits, [str(p) for p in problems]
    assert any(p.node == node and p.line == line for p in hits), [str(p) for p in hits]
    assert f"line {line}" in str(hits[0]) and path.name in str(hits[0])


def test_fixtures_cover_every_rule():
    names = {p.stem for p in BAD}
    assert len(BAD) >= 35
    for rule in (
        "missing_owner",
        "missing_target",
        "target_is_a_range",
        "duplicate_id",
        "cycle",
        "unknown_child",
        "unknown_metric",
        "formula_uses_non_child",
        "formula_adds_money_and_percent",
        "not_connected",
        "custom_unknown_table",
        "custom_unknown_column",
        "read_csv_passwd",
        "copy_to_file",
    ):
        assert rule in names


@pytest.mark.parametrize("name", ["read_csv_passwd", "copy_to_file", "comment_hides_statement"])
def test_cli_validate_and_evaluate_refuse_hostile_trees(name, capsys, tmp_path):
    path = FIXTURES / "hostile" / f"{name}.yaml"
    _, node, line = expectation(path)
    assert cli(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert f"line {line}" in out and f"node {node!r}" in out
    assert cli(["evaluate", "--workspace", str(tmp_path), "--tree", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"line {line}" in err and "custom measure" in err


@pytest.mark.parametrize("path", [*TEMPLATES, *VALID], ids=lambda p: p.stem)
def test_templates_validate_against_rules_and_schema(path):
    import jsonschema
    import yaml

    tree, problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    assert tree is not None and not [p for p in problems if p.severity == "error"], [str(p) for p in problems]
    schema = json.loads((ROOT / "schemas" / "tree.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)
    jsonschema.validate(yaml.safe_load(dump_tree(tree)), schema)


def test_templates_and_custom_measures_evaluate_on_demo_data(demo_data_dir):
    engine = Engine(Workspace(demo_data_dir / "demo"))
    for path in [*TEMPLATES, *VALID]:
        tree = load_tree(path)
        result = evaluate_tree(engine, tree, "2026-10")
        assert len(result.nodes) == len(tree.nodes), path
        with_data = [n for n in result.nodes if n.status != "no_data"]
        assert len(with_data) >= len(result.nodes) / 2, (path, [(n.id, n.status) for n in result.nodes])
    custom = evaluate_tree(engine, load_tree(FIXTURES / "valid" / "custom_measures.yaml"), "2026-10")
    total, ent, other = (custom.node(i).value for i in ("new_arr", "enterprise_bookings", "other_bookings"))
    assert ent > 0 and other > 0
    assert ent + other == pytest.approx(total)  # the custom measures split new_arr exactly
    assert custom.node("enterprise_bookings").target == 3_000_000


@pytest.mark.parametrize("path", [*TEMPLATES, *VALID], ids=lambda p: p.stem)
def test_yaml_round_trip_is_lossless(path):
    tree = load_tree(path)
    again, problems = parse_yaml(dump_tree(tree), None)
    assert not [p for p in problems if p.severity == "error"]
    assert strip(again) == strip(tree)
    assert (again.name, again.grain, again.dimensions, again.description) == (
        tree.name,
        tree.grain,
        tree.dimensions,
        tree.description,
    )
    assert dump_tree(again) == dump_tree(tree)


# --- edits ---------------------------------------------------------------------------------------


@pytest.fixture
def small():
    """The fixture trees' valid base: revenue → (new_arr = new_business_arr + expansion_arr), nrr."""
    text = (FIXTURES / "invalid" / "missing_owner.yaml").read_text(encoding="utf-8")
    text = text.replace("  # <-- here", "").replace("    target: 20000\n", "    owner: CSM lead\n    target: 20000\n")
    return b.for_editing(parse_yaml(text, None)[0], "small")


def test_small_fixture_is_valid(small):
    assert b.errors_of(b.validate(small)) == []


def test_add_node_goes_under_its_parent_one_level_down(small):
    t = b.add_node(
        small, "nrr", label="Logo churn rate", metric="logo_churn_rate", owner="CSM lead", target=Target(value=0.01)
    )
    node = t.node("logo_churn_rate")
    assert node.level == t.node("nrr").level + 1
    assert t.node("nrr").children == ("logo_churn_rate",)
    assert [n.id for n in t.nodes].index("logo_churn_rate") == [n.id for n in t.nodes].index("nrr") + 1
    assert b.errors_of(b.validate(t)) == []
    again = b.add_node(t, "nrr", label="Logo churn rate")
    assert again.node("nrr").children == ("logo_churn_rate", "logo_churn_rate_2")
    assert any("needs an owner" in p.message and p.node == "logo_churn_rate_2" for p in b.validate(again))


def test_remove_node_with_or_without_its_subtree(small):
    gone = b.remove_node(small, "new_arr")
    assert {n.id for n in gone.nodes} == {"revenue", "nrr"}
    kept = b.remove_node(small, "new_arr", keep_children=True)
    assert kept.node("revenue").children == ("new_business_arr", "expansion_arr", "nrr")
    with pytest.raises(b.BuilderError, match="north star"):
        b.remove_node(small, "revenue")


def test_move_reparents_and_shifts_levels(small):
    moved = b.move_node(small, "expansion_arr", "nrr")
    assert moved.node("nrr").children == ("expansion_arr",)
    assert "expansion_arr" not in moved.node("new_arr").children
    # new_arr's formula still names expansion_arr: the live validation says so next to the node.
    assert any(p.node == "new_arr" and "not children" in p.message for p in b.validate(moved))
    down = b.move_node(small, "nrr", "new_business_arr")
    assert down.node("nrr").level == down.node("new_business_arr").level + 1
    with pytest.raises(b.BuilderError, match="inside its own subtree"):
        b.move_node(small, "new_arr", "expansion_arr")
    assert b.parent_choices(small, "new_arr") == ["revenue", "nrr"]


def test_edit_and_rename_update_every_reference(small):
    t = b.edit_node(small, "expansion_arr", id="upsell_arr", owner="Priya")
    assert t.node("new_arr").children == ("new_business_arr", "upsell_arr")
    assert t.node("new_arr").formula == "new_arr = new_business_arr + upsell_arr"
    assert t.node("upsell_arr").owner == "Priya"
    assert b.errors_of(b.validate(t)) == []
    with pytest.raises(b.BuilderError, match="already exists"):
        b.edit_node(small, "nrr", id="revenue")
    with pytest.raises(b.BuilderError, match="unknown node field"):
        b.edit_node(small, "nrr", colour="red")


def test_reorder_siblings(small):
    assert b.reorder(small, "nrr", -1).node("revenue").children == ("nrr", "new_arr")
    assert b.reorder(small, "revenue", 1) == small


def test_live_validation_flags_units_and_custom_sql(small):
    t = b.edit_node(small, "revenue", formula="revenue = new_arr + nrr")
    assert any("adds money and percent" in p.message for p in b.problems_by_node(b.validate(t))["revenue"])
    t = b.edit_node(small, "revenue", formula="revenue = new_arr * nrr")
    assert not [p for p in b.validate(t) if p.key == "formula"]
    bad = CustomMeasure("sum", "deals", "amount", "amount > 0; DROP TABLE deals")
    t = b.edit_node(small, "expansion_arr", metric=bad)
    assert t.node("expansion_arr").metric == "" and t.node("expansion_arr").custom == bad
    hit = [p for p in b.validate(t) if p.node == "expansion_arr"]
    assert hit and "';' is not allowed" in hit[0].message and hit[0].line is not None
    good = CustomMeasure("count", "deals", filter="status = 'won'")
    t = b.edit_node(small, "expansion_arr", metric=good)
    assert t.node("expansion_arr").metric.startswith("custom_")
    assert parse_yaml(dump_tree(t), None)[0].node("expansion_arr").custom == good


def test_blank_tree_lists_the_seed_003_gaps():
    problems = b.validate(b.blank_tree())
    assert {p.message.split(" (")[0] for p in problems} == {
        "every metric needs an owner",
        "every metric needs a numeric target",
    }


def test_preview_draws_trees_with_errors(small, demo_data_dir):
    engine = Engine(Workspace(demo_data_dir / "demo"))
    draw, ev = b.preview(engine, small)
    assert [n.id for n in ev.nodes] == [n.id for n in draw.walk()] and ev.nodes[0].value is not None
    broken = b.edit_node(
        b.add_node(small, "nrr", label="Ghost"),
        "new_arr",
        children=("new_business_arr", "expansion_arr", "missing", "revenue"),
    )
    draw, ev = b.preview(engine, broken)
    assert {n.status for n in ev.nodes} == {"no_data"}  # an unknown metric: shape only
    assert "missing" not in draw.node("new_arr").children and "revenue" not in draw.node("new_arr").children


OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "move", "edit", "target", "custom"]), st.integers(0, 50), st.integers(0, 50)
    ),
    max_size=8,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_sequence_of_edits_round_trips(small, ops):
    t = small
    for op, i, j in ops:
        ids = [n.id for n in t.nodes]
        a, c = ids[i % len(ids)], ids[j % len(ids)]
        try:
            if op == "add":
                t = b.add_node(t, a, label=f"Node {i}", metric="leads", owner="x", target=Target(value=float(j)))
            elif op == "remove":
                t = b.remove_node(t, a, keep_children=bool(j % 2))
            elif op == "move":
                t = b.move_node(t, a, c)
            elif op == "edit":
                t = b.edit_node(t, a, owner=f"owner {j}", review="weekly", amber=0.1 if j % 2 else None)
            elif op == "target":
                t = b.set_target(t, a, Target(per_grain=(("annual", float(j)),), by_period=(("2026-10", 1.5),)))
            else:
                t = b.edit_node(t, a, metric=CustomMeasure("sum", "deals", "amount", f"amount > {j}"))
        except b.BuilderError:
            continue
        again, _ = parse_yaml(dump_tree(t), None)
        assert strip(again) == strip(t)


def test_preview_without_a_workspace_shows_the_shape(small):
    draw, ev = b.preview(None, small)
    assert [n.id for n in ev.nodes] == ["revenue", "new_arr", "new_business_arr", "expansion_arr", "nrr"]
    assert {n.status for n in ev.nodes} == {"no_data"} and ev.nodes[0].target == 1_200_000
    assert b.formula_children(small.node("new_arr")) == {"new_business_arr", "expansion_arr"}


def test_validation_knows_the_workspace_columns_and_caches_per_workspace(small):
    """A drill dimension only the workspace has is a typo for the schema, not for that workspace;
    the cached validation keeps the two apart."""
    deals_node = next(n for n in small.nodes if n.metric and n.metric in CATALOGUE
                      and CATALOGUE[n.metric].table == "deals")
    t = b.edit_node(small, deals_node.id, dimensions=("forecast_category",))
    warned = [p for p in b.validate(t) if "drill dimension" in p.message]
    assert [p.node for p in warned] == [deals_node.id]
    here = {"deals": ("deal_id", "account_id", "forecast_category"), "accounts": ("account_id", "tier")}
    assert not [p for p in b.validate(t, here) if "drill dimension" in p.message]
    joined = b.edit_node(small, deals_node.id, dimensions=("tier",))  # on the accounts the deals link to
    assert not [p for p in b.validate(joined, here) if "drill dimension" in p.message]
    elsewhere = {"deals": ("deal_id", "forecast_category"), "accounts": ("account_id", "tier")}
    assert [p for p in b.validate(joined, elsewhere) if "drill dimension" in p.message]  # no account_id here
    assert [p.node for p in b.validate(t) if "drill dimension" in p.message] == [deals_node.id]


def test_a_very_deep_draft_never_hits_the_recursion_limit():
    """A draft may be any shape while it is built: walking a 3,000-node chain uses no recursion."""
    from kpitree.tree import Node, Tree

    nodes = tuple(Node(id=f"n{i}", label=f"N{i}", level=min(i + 1, 5), metric="arr", owner="x",
                       children=(f"n{i + 1}",) if i < 2999 else ()) for i in range(3000))
    tree = Tree(name="deep", nodes=nodes)
    assert len(b.subtree(tree, "n0")) == 3000 and len(tree.walk()) == 3000
    assert len(b.drawable(tree).nodes) == 3000
    problems = b.validate(tree)
    assert any("limit is 500" in p.message for p in problems)


@pytest.mark.parametrize("formula", ["revenue = (((x", "revenue = " + "+".join(["x"] * 600), "revenue = x ** 2"])
def test_a_formula_being_typed_never_breaks_the_preview(formula):
    from kpitree.layout import layout_tree

    t = b.add_node(b.blank_tree(), "revenue", label="x")
    t = b.edit_node(t, "revenue", formula=formula)
    drawn = b.drawable(t)
    assert drawn.node("revenue").formula is None  # drawn as influence until it reads
    assert {s.link for s in layout_tree(drawn).segments} == {"influence"}
    assert any("formula" in p.key for p in b.validate(t) if p.key)


def test_a_pasted_essay_as_label_is_cut_before_the_layout():
    """layout_tree's wrapping grows much faster than the text (9,000 characters took 68 s here): the
    preview draws at most MAX_LABEL characters of a label or owner; validation refuses longer ones."""
    import time

    from kpitree.layout import layout_tree
    from kpitree.tree import MAX_LABEL

    essay = "word " * 4_000
    t = b.add_node(b.blank_tree(), "revenue", label=essay, owner=essay)
    started = time.perf_counter()
    drawn = b.drawable(t)
    layout_tree(drawn, max_width=760)
    assert time.perf_counter() - started < 5
    assert max(len(n.label) for n in drawn.nodes) <= MAX_LABEL and len(drawn.nodes[1].owner) <= MAX_LABEL
    assert any("at most 120 characters" in p.message for p in b.validate(t))
