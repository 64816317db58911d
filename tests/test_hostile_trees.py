"""Hostile tree files: each is refused with a clear message naming file, line and node, in bounded
time, without a traceback, and without writing anything; a workspace holding one lists it as broken
and keeps its good trees. Trees that pass validation evaluate (the validator runs the evaluator's checks).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT
from test_builder_page import ACME, DEALS, SUBSCRIPTIONS

from kpitree.errors import SpecError
from kpitree.history import TreeStore, list_trees, workspace_trees
from kpitree.metrics import Kind
from kpitree.periods import parse_period
from kpitree.tree import MAX_TREE_BYTES, load_tree, parse_yaml, validate_file

GOOD = ACME.lstrip("\n").replace("Acme revenue", "Good tree")  # line 1 is the name, as line numbers below count
LEAF = "    target: 2000\n"


def leaf(extra: str) -> str:
    """GOOD with lines added to its second node (`new_arr`, starting at line 10)."""
    return GOOD.replace(LEAF, LEAF + extra)


def custom_filter(sql: str) -> str:
    return GOOD.replace("metric: new_arr", 'metric: {aggregate: sum, table: deals, column: amount, filter: "' + sql + '"}')


def with_formula(formula: str) -> str:
    return GOOD.replace("    children: [new_arr]\n", f"    children: [new_arr]\n    formula: {formula}\n")


def chain(n: int) -> str:
    """A chain of n nodes, each the only child of the one before."""
    out = ["nodes:"]
    for i in range(n):
        out += [f"  - id: n{i}", "    metric: arr", "    owner: X", "    target: 1", f"    level: {min(i + 1, 5)}"]
        if i + 1 < n:
            out.append(f"    children: [n{i + 1}]")
    return "\n".join(out) + "\n"


BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
nodes: [*i]
"""


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expect: str  # words the error must contain
    line: int | None = None  # the line it must name, when the file has one to name
    node: str | None = None  # the node it must name


CASES = [
    Case("alias_bomb", BOMB, "anchors and aliases", line=1),
    Case("one_anchor", GOOD.replace("target: 5000", "target: &t 5000"), "anchors and aliases", line=8),
    Case("python_tag", GOOD + 'x: !!python/object/apply:os.system ["touch /tmp/kpitree_pwned"]\n', "YAML tag", line=16),
    Case("binary_tag", GOOD.replace("owner: Maria (CEO)", "owner: !!binary TWFyaWE="), "YAML tag", line=7),
    Case("nested_brackets", "nodes: " + "[" * 5000 + "]" * 5000 + "\n", "nest"),
    Case("nested_mappings", "nodes:\n  - " + "{a: " * 30 + "1" + "}" * 30 + "\n", "nested more than 24", line=2),
    Case("huge_file", GOOD + "description: " + "x" * MAX_TREE_BYTES + "\n", "the limit is 512 KB"),
    Case("too_many_nodes", chain(501), "the limit is 500"),
    Case("too_deep", chain(14).replace("level: 5", "level: 5\n    direction: higher"), "levels deep"),
    Case("filter_43_parentheses", custom_filter("(" * 43 + "status = 'won'" + ")" * 43), "nests parentheses 43 deep",
         line=13, node="new_arr"),
    Case("filter_450_nots", custom_filter("NOT " * 450 + "status = 'won'"), "too complex", line=13, node="new_arr"),
    Case("formula_5000_terms", with_formula(" + ".join(["new_arr"] * 5000)), "the limit is 1,000", line=10,
         node="arr"),
    Case("formula_150_terms", with_formula("new_arr" + "+1" * 150), "the limit is 100", line=10, node="arr"),
    Case("formula_30_parentheses", with_formula("(" * 30 + "new_arr" + ")" * 30), "nested more than 20", node="arr"),
    Case("formula_500_signs", with_formula("-" * 500 + "new_arr"), "nested more than 20", node="arr"),
    Case("formula_bool", with_formula("new_arr * True"), "not allowed", node="arr"),
    Case("formula_constant", with_formula("2 * 3"), "uses none of the children", node="arr"),  # explain IndexError
    Case("filter_mapping", leaf("    filter: {segment: {a: 1}}\n"), "each value is one piece of text", line=16,
         node="new_arr"),
    Case("filter_empty_list", leaf("    filter: {segment: []}\n"), "at least one value", node="new_arr"),
    Case("filter_null", leaf("    filter: {segment: null}\n"), "empty or non-finite", node="new_arr"),
    Case("filter_yes_no", leaf("    filter: {segment: No}\n"), "in quotes", node="new_arr"),
    Case("filter_nested_list", leaf("    filter: {segment: [[SMB]]}\n"), "one piece of text", node="new_arr"),
    Case("period_twice", GOOD.replace(LEAF, "    target: {by_period: {2026-1: 5, 2026-01: 6}}\n"), "twice",
         node="new_arr"),
    Case("period_bad", GOOD.replace(LEAF, "    target: {by_period: {2026-13: 5}}\n"), "invalid period", node="new_arr"),
    Case("period_list", GOOD.replace(LEAF, "    target: {by_period: [2026-01, 5]}\n"), "mapping of period",
         node="new_arr"),
    Case("target_nan", GOOD.replace(LEAF, "    target: .nan\n"), "must be a number", node="new_arr"),
    Case("target_inf", GOOD.replace(LEAF, "    target: {monthly: .inf}\n"), "must be a number", node="new_arr"),
    Case("target_overflow", GOOD.replace(LEAF, "    target: 1" + "0" * 400 + "\n"), "must be a number", node="new_arr"),
    Case("id_newline", GOOD.replace("id: new_arr", 'id: "new_arr\\n"'), "lower_snake_case", line=10),
    Case("nul_byte", GOOD + "\x00", "NUL bytes"),
    Case("impossible_date", GOOD + "description: 2026-02-30\n", "cannot be read"),
    Case("grain_list", GOOD + "grain: [month]\n", "grain"),
    Case("label_essay", GOOD.replace("label: New ARR", "label: " + "word " * 200), "at most 120 characters",
         line=11, node="new_arr"),
    Case("label_mapping", GOOD.replace("label: New ARR", "label: {a: [1, 2]}"), "label must be text", node="new_arr"),
    Case("children_twice", GOOD.replace("children: [new_arr]", "children: [new_arr, new_arr]"), "more than once",
         node="arr"),
    Case("huge_label", GOOD.replace("label: New ARR", "label: [" + ", ".join(["x" * 50] * 5000) + "]"),
         "label must be text", node="new_arr"),
    Case("no_nodes", "nodes: []\n", "non-empty `nodes:` list"),
]


def _deep(frames: int, fn):
    """Calls fn with `frames` frames already on the stack, as under Streamlit's script runner."""
    return fn() if frames == 0 else _deep(frames - 1, fn)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def store(tmp_path) -> TreeStore:
    store = TreeStore(tmp_path / "trees")
    store.publish(parse_yaml(GOOD, None)[0], "good", "fixture")
    return store


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_tree_is_refused_clearly_quickly_and_writes_nothing(case, store, tmp_path):
    started = time.perf_counter()
    tree, problems = _deep(300, lambda: parse_yaml(case.text, "hostile.yaml"))
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"{case.id} took {elapsed:.1f} s"
    errors = [p for p in problems if p.severity == "error"]
    hits = [p for p in errors if case.expect in p.message]
    assert hits, [str(p) for p in problems]
    assert all(p.file == "hostile.yaml" for p in problems)
    assert all(len(str(p)) < 700 for p in problems), max(problems, key=lambda p: len(str(p)))  # quoted, not dumped
    if case.line is not None:
        assert any(p.line == case.line for p in hits), [str(p) for p in hits]
    if case.node is not None:
        assert any(p.node == case.node for p in hits), [str(p) for p in hits]
    assert not Path("/tmp/kpitree_pwned").exists()

    # A person pasting it as the fix of a tree file: refused, nothing written.
    before = _snapshot(tmp_path)
    good = next(f for f in store.files() if f.name == "good")
    with pytest.raises(SpecError):
        store.save_text(good, case.text, "attacker")
    assert _snapshot(tmp_path) == before

    # The same text as a file in the workspace: listed as broken with the reason, the good tree still listed.
    path = tmp_path / "trees" / "hostile.yaml"
    path.write_text(case.text, encoding="utf-8")
    files = {f.name: f for f in list_trees(tmp_path / "trees")}
    assert files["hostile"].broken and case.expect in files["hostile"].reason(limit=50)
    assert workspace_trees(tmp_path / "trees") == [tmp_path / "trees" / "good.yaml"]
    with pytest.raises(SpecError, match="problem"):
        load_tree(path)


@pytest.mark.parametrize("case", [c for c in CASES if c.id in ("alias_bomb", "filter_43_parentheses",
                                                              "formula_5000_terms", "python_tag")], ids=lambda c: c.id)
def test_the_command_line_answers_a_hostile_file_in_one_clear_line(case, tmp_path):
    path = tmp_path / f"{case.id}.yaml"
    path.write_text(case.text, encoding="utf-8")
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "kpitree", "validate", str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert time.perf_counter() - started < 30
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr and case.expect in run.stdout


def test_files_that_cannot_be_read_are_named_not_raised(tmp_path):
    trees = tmp_path / "trees"
    trees.mkdir()
    (trees / "latin1.yaml").write_bytes("name: caf\xe9\nnodes: []\n".encode("latin-1"))
    (trees / "Bad Name.yaml").write_text(GOOD)
    (trees / "big.yaml").write_bytes(b"x" * (MAX_TREE_BYTES + 1))
    (trees / "link.yaml").symlink_to("/etc/hostname")
    files = {f.path.name: f for f in list_trees(trees)}
    assert "not UTF-8" in files["latin1.yaml"].reason()
    assert "is not a tree name" in files["Bad Name.yaml"].reason()
    assert "the limit is 512 KB" in files["big.yaml"].reason()
    assert "not a regular file" in files["link.yaml"].reason()
    assert all(f.broken for f in files.values()) and workspace_trees(trees) == []
    assert "not UTF-8" in validate_file(trees / "latin1.yaml")[0].message
    # a file with a bad name is saved under a safe one when fixed, and the old file goes
    store = TreeStore(trees)
    name, version = store.save_text(files["Bad Name.yaml"], GOOD, "fixer")
    assert name == "bad_name" and version.number == 1 and not (trees / "Bad Name.yaml").exists()
    assert workspace_trees(trees) == [trees / "bad_name.yaml"]
    store.delete_file(files["link.yaml"])
    assert not (trees / "link.yaml").exists() and Path("/etc/hostname").exists()
    (trees / ".active").write_bytes(b"\xff\xfe" + b"x" * 10_000_000)  # a garbled pointer: no active tree
    assert store.active() is None and workspace_trees(trees) == [trees / "bad_name.yaml"]


def test_period_keys_are_normalised_and_match(tmp_path):
    text = GOOD.replace(LEAF, "    target: {by_period: {2026-1: 5, ' 2026-11 ': 6, 2026-q3: 7, 2026-w5: 8}}\n")
    tree, problems = parse_yaml(text, "t.yaml")
    assert not [p for p in problems if p.severity == "error"], problems
    target = tree.node("new_arr").target
    assert dict(target.by_period) == {"2026-01": 5.0, "2026-11": 6.0, "2026-Q3": 7.0, "2026-W05": 8.0}
    assert target.for_period(parse_period("2026-01"), Kind.FLOW) == 5.0
    with pytest.raises(Exception, match="invalid period"):
        parse_period("2026-10\n2026-11")


# --- what validates, evaluates ---------------------------------------------------------------------

ODD_BUT_VALID = [
    leaf("    filter: {segment: [SMB, Enterprise]}\n"),
    leaf("    filter: {owner: 42}\n"),
    leaf("    filter: {created_date: 2026-08-01}\n"),
    leaf("    filter: {no_such_column: x}\n"),
    custom_filter("(" * 16 + "status = 'won'" + ")" * 16),
    with_formula("new_arr * 1.5 - 0 / 1"),
    GOOD.replace(LEAF, "    target: {by_period: {2026-9: 5, 2026-q3: 7}, monthly: 1000000}\n"),
]


@pytest.mark.parametrize("text", ODD_BUT_VALID, ids=range(len(ODD_BUT_VALID)))
def test_a_tree_that_validates_evaluates(text, load_ws):
    from kpitree.evaluate import evaluate_tree

    tree, problems = parse_yaml(text, "t.yaml")
    assert tree is not None and not [p for p in problems if p.severity == "error"], [str(p) for p in problems]
    ws = load_ws(deals=DEALS, subscriptions=SUBSCRIPTIONS)
    result = evaluate_tree(ws, tree, "2026-09")
    assert [n.id for n in result.nodes] == ["arr", "new_arr"]
