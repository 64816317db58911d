"""Who to talk to: the owners' list from a snapshot and the review notes, its CSV, and the page."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from apptest_utils import failures, unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from kpitree import access
from kpitree.evaluate import Engine
from kpitree.format import fmt
from kpitree.owners import CSV_HEADER, carried_over, owner_rows, owners, owners_csv
from kpitree.periods import parse_period
from kpitree.review import Notes
from kpitree.snapshots import take_snapshot
from kpitree.tree import load_tree
from kpitree.workspace import Workspace

HOSTILE = '=HYPERLINK("x")'
MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def demo(demo_copy: Workspace) -> Workspace:
    return demo_copy


def test_owners_red_first_with_sentences_and_actions(demo):
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    now = take_snapshot(Engine(demo), tree, parse_period("2026-10"))
    notes = Notes(demo)
    notes.add(tree, "win_rate", decision="Dana reviews Enterprise deals", owner="alex romero  (CRO)",
              due=date(2026, 12, 1), user=access.LOCAL, author="maria", now=MONDAY)
    entries = owners(now, notes.all()[0], tree)
    reds = [len(e.red) for e in entries]
    assert reds == sorted(reds, reverse=True) and entries[0].owner == "Alex Romero (CRO)"  # most red first
    assert sum(reds) == sum(1 for n in now.nodes if n.status == "red") - 1  # ARR at start is carried over
    alex = entries[0]
    assert {o.node.id for o in alex.nodes} == {n.id for n in tree.nodes if n.owner == "Alex Romero (CRO)"}
    assert [a.decision for a in alex.actions] == ["Dana reviews Enterprise deals"]  # matched across case and spaces
    win = next(o for o in alex.nodes if o.node.id == "win_rate")
    assert win.node.status == "red"
    assert win.sentence == next(c.sentence for c in now.causes if c.id == "win_rate")  # the cause's own words
    assert "Dana Whitfield" in win.sentence
    # a red node above the causes gets its step of the red path
    arr = next(o for e in entries for o in e.nodes if o.node.id == "arr")
    assert arr.sentence.startswith("ARR: actual $158.37M against target ")
    green = [o for e in entries for o in e.nodes if o.node.status == "green"]
    assert green and not any(o.sentence for o in green)
    rows = owner_rows(entries, date(2026, 12, 7), red_only=True)
    assert {r["status"] for r in rows if r["number"]} == {"red", "red, carried over"}
    assert rows[0]["owner"] == "Alex Romero (CRO)"
    acted = [r for r in rows if r["open actions"]]  # on the row of the number the action is about
    assert [(r["number"], r["open actions"]) for r in acted] == [
        ("Win rate (new)", "Dana reviews Enterprise deals (Win rate (new), due 2026-12-01) — overdue")]
    assert sum(1 for r in rows if r["number"]) == sum(reds) + 1  # and the opening balance, marked


def test_the_opening_balance_is_carried_over_not_a_red_number_to_act_on(demo):
    """ARR at start is September's closing ARR: red against its target, but nothing done in October moves
    it. It is listed for its owner, marked, with one sentence saying so — not counted or ranked as red."""
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    now = take_snapshot(Engine(demo), tree, parse_period("2026-10"))
    start = now.node("arr_start")
    assert start is not None and start.status == "red" and start.value is not None and start.target is not None
    assert not now.sentence_for("arr_start")  # the explanation gives it no cause
    entries = owners(now, [], tree)
    maria = next(e for e in entries if e.owner == "Maria Chen (CEO)")
    assert [o.node.id for o in maria.red] == ["arr"] and [o.node.id for o in maria.carried] == ["arr_start"]
    carried = maria.carried[0]
    assert carried.sentence == carried_over(tree, start, "2026-10") == (
        f"Carried over from 2026-09's closing ARR: {fmt(start.value, 'money', compact=True)} against "
        f"{fmt(start.target, 'money', compact=True)}; it is not a lever this period — the gap was made by the "
        "end of 2026-09.")
    # September's closing ARR is the data's; its target is the plan's (read above: the templates get re-planned)
    assert carried.sentence.startswith("Carried over from 2026-09's closing ARR: $155.18M against $")
    assert [o.node.id for o in maria.nodes].index("arr_start") > [o.node.id for o in maria.nodes].index("arr")
    rows = [r for r in owner_rows(entries, red_only=True) if r["owner"] == "Maria Chen (CEO)"]
    assert [(r["number"], r["status"]) for r in rows] == [("ARR", "red"), ("ARR at start", "red, carried over")]
    assert rows[1]["why"] == carried.sentence
    # every other node is no opening balance
    assert [n.id for n in now.nodes if carried_over(tree, n, "2026-10") is not None] == ["arr_start"]
    assert carried_over(tree, start, "2026-Q4").startswith("Carried over from 2026-Q3's closing ARR")
    # without the tree nothing is recognised: ARR at start counts as red (the CLI before it passes the tree)
    assert "arr_start" in [o.node.id for e in owners(now, []) for o in e.red]


def test_a_hostile_owner_is_neutralised_in_the_csv(demo, tmp_path):
    raw = yaml.safe_load((ROOT / "data" / "trees" / "revops.yaml").read_text())
    next(n for n in raw["nodes"] if n["id"] == "leads")["owner"] = HOSTILE
    path = tmp_path / "revops.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    tree = load_tree(path)
    now = take_snapshot(Engine(demo), tree, parse_period("2026-10"))
    notes = Notes(demo)
    notes.add(tree, "leads", decision="-1 from budget", owner=HOSTILE, due=None, user=access.LOCAL, author="m")
    text = owners_csv(owners(now, notes.all()[0]))
    table = list(csv.reader(io.StringIO(text)))
    assert tuple(table[0]) == CSV_HEADER
    hostile = [r for r in table if HOSTILE in r[0]]
    assert hostile and all(r[0] == "'" + HOSTILE for r in hostile)
    assert any(r[6].startswith("'-1 from budget") for r in hostile)
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in table for cell in row)


def _page(data_dir: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("KPITREE_DATA_DIR", str(data_dir))
    at = AppTest.from_file(str(ROOT / "views" / "6_Owners.py"), default_timeout=120)
    at.query_params.update({"ws": "demo", "tree": "revops", "period": "2026-10"})
    return at


def test_owners_page(demo, monkeypatch):
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    Notes(demo).add(tree, "leads", decision="Move $20k from Paid Search to Events", owner="Lena Park (VP Marketing)",
                    due=date(2026, 12, 11), user=access.LOCAL, author="maria", now=MONDAY)
    at = _page(demo.root.parent, monkeypatch).run()
    assert not failures(at)
    texts = [unescaped(m.value) for m in at.markdown]
    assert texts[0] == "### Who to talk to · RevOps KPI tree · 2026-10"
    heads = [t for t in texts if t.startswith("#### ")]
    now = take_snapshot(Engine(demo), tree, parse_period("2026-10"))
    listed = {n.owner for n in now.nodes if n.status == "red"} | {"Lena Park (VP Marketing)"}  # red, or an action
    assert heads[0] == "#### Alex Romero (CRO)" and {h[5:] for h in heads} == listed
    assert len(listed) < len({n.owner for n in tree.nodes})  # somebody has nothing red: not on the Monday list
    # each number against its target, as its box on the tree page reads, before the sentence
    assert any(re.match(r":red-badge\[red\] \*\*Win rate \(new\)\*\* · [\d.]+% / [\d.]+% — ", t)
               and "Dana Whitfield" in t for t in texts)
    assert "**Open actions:** Move $20k from Paid Search to Events (Leads, due 2026-12-11)" in texts
    alex = [n for n in tree.nodes if n.owner == "Alex Romero (CRO)"]
    assert any(f"of {len(alex)} numbers red" in unescaped(c.value) for c in at.caption)
    start = now.node("arr_start")
    assert any(t.startswith(":red-badge[red] :gray-badge[carried over] **ARR at start** · $")
               and t.endswith(f" — {carried_over(tree, start, '2026-10')}") for t in texts)
    maria = [n for n in tree.nodes if n.owner == "Maria Chen (CEO)"]
    assert any(c.startswith(f"1 of {len(maria)} numbers red · 1 carried over, not a lever this period")
               for c in (unescaped(c.value) for c in at.caption))
    reds = sum(1 for n in now.nodes if n.status == "red") - 1
    assert any(f"{reds} red numbers to act on (and 1 carried over)" in unescaped(c.value) for c in at.caption)
    at.toggle(key="ow_red_only").set_value(False).run()
    heads = [unescaped(m.value) for m in at.markdown if m.value.startswith("#### ")]
    assert {h[5:] for h in heads} == {n.owner for n in tree.nodes}  # everybody, red or not


def test_review_and_owners_pages_in_chromium(demo, browser):
    """Both pages in a real browser at 1280 px, after a note and a recorded review: no error box, nothing
    cut off; screenshots kept (tests/artifacts/page_review_1280.png, page_owners_1280.png) to look at."""
    from browser_wait import settle
    from clipping import PAGE_CLIPPED
    from conftest import ARTIFACTS, running_app

    from kpitree.review import record_review

    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    engine = Engine(demo)
    last_month = take_snapshot(engine, tree, parse_period("2026-09"))
    record_review(demo, last_month, [n.id for n in tree.nodes], access.LOCAL, author="maria",
                  now=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    Notes(demo).add(tree, "win_rate", decision="Dana reviews every Enterprise deal over $50k",
                    owner="Alex Romero (CRO)", due=date(2026, 12, 14), user=access.LOCAL, author="maria",
                    now=datetime(2026, 11, 30, 9, 5, tzinfo=UTC))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_app(demo.root.parent, KPITREE_WARM="0") as url:
        context = browser.new_context(viewport={"width": 1280, "height": 2400})
        page = context.new_page()
        try:
            for name, marker in (("Review", "Since last review"), ("Owners", "Who to talk to")):
                page.goto(f"{url}/{name}?ws=demo&tree=revops&period=2026-10")
                page.get_by_text(marker).first.wait_for(timeout=90_000)
                settle(page)  # the run over and the page still for a moment: no fixed sleep (tests/browser_wait.py)
                page.screenshot(path=str(ARTIFACTS / f"page_{name.lower()}_1280.png"), full_page=True)
                body = page.inner_text("body")
                assert "Traceback" not in body and "unexpected problem" not in body, name
                assert page.locator("[data-testid='stException']").count() == 0, name
                assert not page.evaluate(PAGE_CLIPPED), name
            assert "Alex Romero (CRO)" in page.inner_text("body")
        finally:
            context.close()


def test_an_action_sits_on_the_row_of_its_number():
    from kpitree.owners import OwnedNode, OwnerEntry
    from kpitree.review import Note
    from kpitree.snapshots import NodeState

    def state(node_id: str, label: str) -> NodeState:
        return NodeState(node_id, label, "Alex", "driver", "percent", "weekly", "red", 0.2, 0.25)

    def note(node_id: str, label: str, decision: str) -> Note:
        return Note(f"n-{node_id}", "revops", node_id, label, decision, "Alex", "2026-12-14", "", "maria",
                    "2026-12-01T09:00:00+00:00")

    entry = OwnerEntry("Alex", (OwnedNode(state("arr_new", "New-logo ARR"), "why 1"),
                                OwnedNode(state("win_rate", "Win rate"), "why 2")),
                       (note("win_rate", "Win rate", "Coach Dana"), note("leads", "Leads", "Shift budget")))
    rows = owner_rows([entry])
    assert [(r["number"], r["open actions"]) for r in rows] == [
        ("New-logo ARR", "Shift budget (Leads, due 2026-12-14)"),  # not listed here: on the owner's first row
        ("Win rate", "Coach Dana (Win rate, due 2026-12-14)"),
    ]


# --- numbers owned per person ("Reps (per owner)", trial 3) ----------------------------------------

# October 2026, new deals closed: Ana 3 won (10k, 20k, 30k) + 1 lost; Ben 1 won (40k) + 4 lost; Cy 1 won
# (20k) + 1 lost; one won deal (5k) without an owner. An open deal created in November makes October complete.
PER_PERSON_DEALS = """deal_id,owner,created_date,close_date,status,amount,deal_type,segment
D01,Ana Silva,2026-09-01,2026-10-03,won,10000,new,SMB
D02,Ana Silva,2026-09-02,2026-10-04,won,20000,new,SMB
D03,Ana Silva,2026-09-03,2026-10-05,won,30000,new,Enterprise
D04,Ana Silva,2026-09-04,2026-10-06,lost,,new,SMB
D05,Ben Okoro,2026-09-05,2026-10-07,won,40000,new,Enterprise
D06,Ben Okoro,2026-09-06,2026-10-08,lost,,new,SMB
D07,Ben Okoro,2026-09-07,2026-10-09,lost,,new,SMB
D08,Ben Okoro,2026-09-08,2026-10-10,lost,,new,Enterprise
D09,Ben Okoro,2026-09-09,2026-10-11,lost,,new,SMB
D10,Cy Tan,2026-09-10,2026-10-12,won,20000,new,SMB
D11,Cy Tan,2026-09-11,2026-10-13,lost,,new,Enterprise
D12,,2026-09-12,2026-10-14,won,5000,new,SMB
D13,Ana Silva,2026-11-05,,open,15000,new,SMB
"""
PER_PERSON_TREE = {
    "name": "Per person", "grain": "month", "dimensions": ["owner", "segment"],
    "nodes": [
        {"id": "new_business_arr", "label": "New business ARR", "level": "north_star", "metric": "new_business_arr",
         "owner": "Deal owners (per owner)", "review": "weekly", "target": {"by_period": {"2026-10": 150000}},
         "children": ["win_rate"]},
        {"id": "win_rate", "label": "Win rate (new)", "level": "lever", "metric": "win_rate",
         "filter": {"deal_type": "new"}, "owner": "Reps (per owner)", "review": "weekly", "target": 0.45},
    ]}


@pytest.fixture
def per_person(load_ws, tmp_path) -> tuple[Workspace, object]:
    ws = load_ws(deals=PER_PERSON_DEALS)
    path = ws.trees_dir / "per_person.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(PER_PERSON_TREE, sort_keys=False))
    return ws, load_tree(path)


@pytest.mark.parametrize(("owner", "column"), [
    ("Reps (per owner)", "owner"), ("Deal owners (per owner)", "owner"), ("CSMs (per owner)", "owner"),
    ("Sales managers: Ana Silva, Ben Okoro +2 (per manager)", "manager"), ("CSMs: A, B (per csm)", "csm"),
    ("Reps (per rep)", "owner"), ("Regional leads (per sales region)", "sales_region"),
    ("Marcus Chen (AE lead)", None), ("CEO — to assign", None), ("Omar Haddad (PM, analytics)", None), ("", None),
])
def test_an_owner_per_column_is_recognised(owner, column):
    from kpitree.owners import per_dimension

    assert per_dimension(owner) == column


def test_each_rep_found_in_the_data_owns_their_part(per_person):
    """Hand-checked: Ana 3/4 = 75 % (green against 45 %), Cy 1/2 = 50 % (green), Ben 1/5 = 20 % (below the
    amber band of 45 % − 2.25 pp, but at a 45 % win rate 1 or fewer of 5 happens by chance: mid-p 0.55⁵ +
    ½ · 5 · 0.45 · 0.55⁴ = 15 %, so too few to tell, not red); the team 6/12 = 50 %. New business ARR $125k is the team's, red against
    $150k; its target is not split, so each part is a share in the team's colour: Ana $60k = 48 %, Ben $40k
    = 32 %, Cy $20k = 16 % of $125k (the 5k deal without an owner is nobody's part)."""
    from kpitree.owners import people_parts

    ws, tree = per_person
    engine = Engine(ws)
    period = parse_period("2026-10")
    now = take_snapshot(engine, tree, period)
    from kpitree.evaluate import evaluate_tree

    split = people_parts(engine, tree, evaluate_tree(engine, tree, period))
    win = split["win_rate"]
    assert win.dimension == "owner" and not win.why_not
    assert [(p.person, p.value, p.target, p.status, p.volume) for p in win.parts] == [
        ("Ben Okoro", 0.2, 0.45, "too_few", 5.0), ("Ana Silva", 0.75, 0.45, "green", 4.0),
        ("Cy Tan", 0.5, 0.45, "green", 2.0)]
    arr = split["new_business_arr"]
    assert [(p.person, p.value, p.target, p.status) for p in arr.parts] == [
        ("Ana Silva", 60000.0, None, "red"), ("Ben Okoro", 40000.0, None, "red"), ("Cy Tan", 20000.0, None, "red")]
    assert [round(p.share, 3) for p in arr.parts] == [0.48, 0.32, 0.16]
    assert now.node("win_rate").value == 0.5 and now.node("new_business_arr").value == 125000

    entries = owners(now, [], tree, split)
    assert [e.owner for e in entries] == ["Ana Silva", "Ben Okoro", "Cy Tan"]  # one red part each; no pseudo-person
    ben = entries[1]
    assert [len(ben.red), ben.part_of] == [1, ["Deal owners (per owner)", "Reps (per owner)"]]
    win_ben = next(o for o in ben.nodes if o.node.id == "win_rate")
    assert win_ben.sentence == ("20.0% against 45.0% on 5 decided deals (the team: 50.0%). Too few to tell from "
                                "chance: not a red mark on its own.")
    cy = entries[2]
    assert next(o for o in cy.nodes if o.node.id == "new_business_arr").sentence == (
        "$20k, 16% of the team's $125k (the team's number is red against $150k; its target is not split per owner).")
    rows = owner_rows(entries, red_only=True)
    assert [(r["owner"], r["number"], r["status"], r["value"], r["target"]) for r in rows] == [
        ("Ana Silva", "New business ARR", "red", "$60,000", "—"), ("Ben Okoro", "New business ARR", "red", "$40,000", "—"),
        ("Cy Tan", "New business ARR", "red", "$20,000", "—")]
    # without the split (a saved snapshot), the tree's own words stay
    assert {e.owner for e in owners(now, [], tree)} == {"Reps (per owner)", "Deal owners (per owner)"}


def test_a_rep_with_one_deal_reads_in_the_singular_and_a_cause_naming_them_is_theirs():
    from kpitree.owners import PersonPart, part_sentence
    from kpitree.snapshots import CauseState, NodeState

    node = NodeState("win_rate", "Win rate (new)", "Reps (per owner)", "lever", "percent", "weekly", "red", 0.25,
                     0.3)
    part = PersonPart("Dana Whitfield", 0.0, 0.3, "red", 1.0, "decided deals")
    cause = CauseState("win_rate", "Win rate (new)", "Reps (per owner)", "red", "Dana's deals explain 70%.",
                       segment="owner × segment: Dana  whitfield × Enterprise")
    other = CauseState("win_rate", "Win rate (new)", "Reps (per owner)", "red", "Not Dana.",
                       segment="owner: Ben Okoro")
    assert part_sentence(node, part, "owner", (cause, other)) == (
        "0.0% against 30.0% on 1 decided deal (the team: 25.0%). Dana's deals explain 70%.")


def test_a_number_owned_per_column_the_data_lacks_stays_with_its_group_and_says_why(per_person):
    from kpitree.evaluate import evaluate_tree
    from kpitree.owners import people_parts

    ws, tree = per_person
    node = tree.node("win_rate")
    tree = _with_owner(tree, "win_rate", "Sales managers: A, B (per manager)")
    engine = Engine(ws)
    period = parse_period("2026-10")
    split = people_parts(engine, tree, evaluate_tree(engine, tree, period))
    assert split["win_rate"].parts == () and "no manager with a value" in split["win_rate"].why_not
    entries = owners(take_snapshot(engine, tree, period), [], tree, split)
    group = next(e for e in entries if e.owner == "Sales managers: A, B (per manager)")
    assert [o.node.id for o in group.nodes] == [node.id]
    assert "Every manager owns their part, but the rows Win rate (new) reads have no manager" in group.nodes[0].sentence


def _with_owner(tree, node_id: str, owner: str):
    """The tree with one node's owner changed (a tree YAML a user wrote by hand)."""
    data = yaml.safe_load(Path(tree.source).read_text())
    for n in data["nodes"]:
        if n["id"] == node_id:
            n["owner"] = owner
    path = Path(tree.source).with_name("changed.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_tree(path)



def owners_page(ws, monkeypatch) -> AppTest:
    """The app opened on `ws`'s per_person tree in 2026-10, switched to the Owners page."""
    monkeypatch.setenv("KPITREE_DATA_DIR", str(ws.root.parent))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"ws": ws.name, "tree": "per_person", "period": "2026-10"})
    at.run()
    at.switch_page("views/6_Owners.py").run()
    return at

def test_owners_page_names_the_reps_not_the_pseudo_person(per_person, monkeypatch):
    ws, _ = per_person
    at = owners_page(ws, monkeypatch)
    assert not failures(at)
    texts = [unescaped(m.value) for m in at.markdown]
    heads = [t[5:] for t in texts if t.startswith("#### ")]
    assert heads == ["Ana Silva", "Ben Okoro", "Cy Tan"]  # each has a part of the red New business ARR
    assert not any("Win rate (new)" in t for t in texts)  # Ben's 1 of 5 is too few to tell: not on the red list
    assert not any("per owner" in h for h in heads)
    # New business ARR ($125k against $150k) is the tree's one red number: its 3 parts are red (Ben's 1 of 5 won is
    # too few to tell)
    assert any("3 owners · 1 red number to act on · 3 people's own parts red · 0 open actions" in unescaped(c.value)
               for c in at.caption)
    assert any("their own part of the numbers owned by Deal owners (per owner), Reps (per owner)" in unescaped(c.value)
               for c in at.caption)
    at.toggle(key="ow_red_only").set_value(False).run()
    texts = [unescaped(m.value) for m in at.markdown]
    assert ":green-badge[green] **Win rate (new)** (their part) — 75.0% against 45.0% on 4 decided deals (the team: " \
           "50.0%)." in texts
    assert ":gray-badge[too few to tell] **Win rate (new)** (their part) — 20.0% against 45.0% on 5 decided deals " \
           "(the team: 50.0%). Too few to tell from chance: not a red mark on its own." in texts


def test_one_red_part_is_counted_in_the_singular(load_ws, monkeypatch):
    """Ana wins 3 of 4, Ben 0 of 8: the team's win rate 3/12 = 25 % is red against 45 %, and so is New business
    ARR ($60k against $150k, Maria's). Ben's own 0 of 8 is red beyond chance (0.55⁸ / 2 = 0.4 %), Ana's 75 % green:
    one person's part is red — "1 person's own part red", never "1 people's own parts red"."""
    deals = ["deal_id,owner,created_date,close_date,status,amount,deal_type,segment",
             *(line for line in PER_PERSON_DEALS.splitlines()[1:5]),
             *(f"B{i},Ben Okoro,2026-09-0{i},2026-10-1{i},lost,,new,SMB" for i in range(1, 9))]
    ws = load_ws(deals="\n".join(deals) + "\n")
    tree = yaml.safe_load(yaml.safe_dump(PER_PERSON_TREE))
    tree["nodes"][0]["owner"] = "Maria Chen (CRO)"
    path = ws.trees_dir / "per_person.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    at = owners_page(ws, monkeypatch)
    assert not failures(at)
    captions = [unescaped(c.value) for c in at.caption]
    assert any("· 2 red numbers to act on · 1 person's own part red · 0 open actions" in c for c in captions), \
        captions
    assert any(c.startswith("1 of 1 number red") for c in captions), captions  # Maria's one number, or Ben's part
    assert not any("1 people's" in c or "1 red numbers" in c or "of 1 numbers" in c for c in captions)


def test_a_person_s_rate_is_red_only_beyond_chance():
    """One-sided binomial mid-p against the target rate, red or amber kept below 2.3 % (two standard errors).
    0 of 19 won against 33 %: 0.67¹⁹ / 2 = 0.025 % → red stays. 0 of 1 upsell against 36 %: 0.64 / 2 = 32 %
    → too few to tell. Churn (lower is better) 3 of 10 against 5 %: P(X > 3) + ½ P(X = 3) = 0.0010 + 0.0052
    = 0.6 % → stays."""
    from kpitree.owners import _stands_out

    assert _stands_out(0, 19, 0.33, higher=True)
    assert not _stands_out(0, 1, 0.36, higher=True)
    assert _stands_out(3, 10, 0.05, higher=False)
    assert not _stands_out(1, 10, 0.05, higher=False)  # 1 of 10 churned against 5 %: 40 % + ½ · 31 %


def test_review_owners_on_the_command_line_names_the_reps_too(per_person):
    """`review owners` lists what the page lists: each rep's part, not "Reps (per owner)" as a person."""
    import subprocess
    import sys

    ws, tree = per_person
    out = subprocess.run([sys.executable, "-m", "kpitree", "review", "owners", "--workspace", str(ws.root),
                          "--tree", str(tree.source), "--period", "2026-10", "--all"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    owners_listed = {line.split('","')[0].strip('"') for line in out.splitlines()[1:]}
    assert {"Ana Silva", "Ben Okoro", "Cy Tan"} <= owners_listed
    assert not any("per owner" in o for o in owners_listed)
    assert '"Ben Okoro","Win rate (new)","too few to tell"' in out


SUGGESTED_TREE = """
name: Suggested
nodes:
  - id: new_business_arr
    label: New business ARR
    level: north_star
    metric: new_business_arr
    owner: Maria Chen (CEO)
    review: weekly
    target:
      by_period: {"2026-09": 250000}
      suggested: "last month's level, +6.0 %/month"
    children: [win_rate]
  - id: win_rate
    label: Win rate
    level: driver
    metric: win_rate
    owner: Alex Romero (CRO)
    review: weekly
    target: 0.9
"""
SUGGESTED_DEALS = """
deal_id,account_id,owner,created_date,close_date,status,amount,deal_type
D1,A1,Ann,2026-08-01,2026-09-03,won,100000,new
D2,A2,Ann,2026-08-02,2026-09-10,won,82057.10,new
D3,A3,Bob,2026-08-03,2026-09-12,lost,5000,new
"""


def test_a_suggested_target_is_marked_as_the_tree_marks_it(load_ws, monkeypatch):
    """Trial E: the tree's box read "$38.71M / ~$41.72M" (suggested from the data's history) while the Owners
    page and its CSV showed the same target bare ("$41,719,444"). Hand-checked: New business ARR 2026-09 =
    $100,000 + $82,057.10 = $182,057 against a suggested $250,000; win rate 2 of 3 = 66.7 % against a typed 90 %."""
    ws = load_ws(deals=SUGGESTED_DEALS)
    path = ws.trees_dir / "suggested.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SUGGESTED_TREE)
    tree = load_tree(path)
    entries = owners(take_snapshot(Engine(ws), tree, parse_period("2026-09")), [], tree)
    rows = {r["number"]: r for r in csv.DictReader(io.StringIO(owners_csv(entries, date(2026, 12, 7))))}
    assert (rows["New business ARR"]["value"], rows["New business ARR"]["target"]) == ("$182,057", "~$250,000")
    assert (rows["Win rate"]["value"], rows["Win rate"]["target"]) == ("66.7%", "90.0%")  # typed: no mark
    monkeypatch.setenv("KPITREE_DATA_DIR", str(ws.root.parent))
    at = AppTest.from_file(str(ROOT / "views" / "6_Owners.py"), default_timeout=120)
    at.query_params.update({"ws": ws.name, "tree": "suggested", "period": "2026-09"})
    at.run()
    at.toggle(key="ow_red_only").set_value(False).run()
    assert not failures(at)
    texts = [unescaped(m.value) for m in at.markdown]
    assert any("**New business ARR** · $182k / ~$250k" in t for t in texts), texts
    assert any("**Win rate** · 66.7% / 90.0%" in t for t in texts), texts
    assert any("A target marked ~ was suggested from the workspace's own history" in unescaped(c.value)
               for c in at.caption)
