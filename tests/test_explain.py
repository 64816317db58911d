"""Explanations on tiny hand-made tables (numbers worked out below), planted causes, and the CLI.

The hand data is a Simpson's paradox in miniature. New deals, September → October:
  Ann (SMB):        4 decided, 2 won × 10  →  4 decided, 2 won × 10   (unchanged)
  Bob (Enterprise): 4 decided, 2 won × 100 →  4 decided, 1 won × 100  (his win rate halves)
Totals: closed 8 → 8, won 4 → 3, win rate .5 → .375, amount 220 → 120, deal size 55 → 40.
Expansion: one 30 won each month. New ARR 250 → 150.
Over the totals, LMDI would blame deal size (55 → 40) for more than win rate; within owners or
segments, deal size did not move at all — Bob simply won fewer Enterprise deals. The engine
attributes within segments, so the whole −100 goes to win rate.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, make_workspace

from kpitree.evaluate import Engine, evaluate_tree
from kpitree.explain import PAIR_SEP, explain_node
from kpitree.tree import parse_yaml

DEALS = """
deal_id,account_id,owner,created_date,close_date,stage,status,amount,deal_type,segment,channel
S1,A1,Ann,2026-08-01,2026-09-05,Closed Won,won,10,new,SMB,Organic
S2,A2,Ann,2026-08-01,2026-09-06,Closed Won,won,10,new,SMB,Organic
S3,A3,Ann,2026-08-01,2026-09-07,Closed Lost,lost,10,new,SMB,Organic
S4,A4,Ann,2026-08-01,2026-09-08,Closed Lost,lost,10,new,SMB,Organic
S5,A5,Bob,2026-08-01,2026-09-05,Closed Won,won,100,new,Enterprise,Outbound
S6,A6,Bob,2026-08-01,2026-09-06,Closed Won,won,100,new,Enterprise,Outbound
S7,A7,Bob,2026-08-01,2026-09-07,Closed Lost,lost,100,new,Enterprise,Outbound
S8,A8,Bob,2026-08-01,2026-09-08,Closed Lost,lost,100,new,Enterprise,Outbound
S9,A9,Cy,2026-08-01,2026-09-10,Closed Won,won,30,expansion,SMB,Organic
O1,B1,Ann,2026-09-01,2026-10-05,Closed Won,won,10,new,SMB,Organic
O2,B2,Ann,2026-09-01,2026-10-06,Closed Won,won,10,new,SMB,Organic
O3,B3,Ann,2026-09-01,2026-10-07,Closed Lost,lost,10,new,SMB,Organic
O4,B4,Ann,2026-09-01,2026-10-08,Closed Lost,lost,10,new,SMB,Organic
O5,B5,Bob,2026-09-01,2026-10-05,Closed Won,won,100,new,Enterprise,Outbound
O6,B6,Bob,2026-09-01,2026-10-06,Closed Lost,lost,100,new,Enterprise,Outbound
O7,B7,Bob,2026-09-01,2026-10-07,Closed Lost,lost,100,new,Enterprise,Outbound
O8,B8,Bob,2026-09-01,2026-10-08,Closed Lost,lost,100,new,Enterprise,Outbound
O9,B9,Cy,2026-09-01,2026-10-10,Closed Won,won,30,expansion,SMB,Organic
X1,C1,Ann,2026-11-01,2026-11-20,Closed Lost,lost,10,new,SMB,Organic
"""


def tree_yaml(targets: dict[str, float] | None = None) -> str:
    # per-period targets (a plain number would be pro-rated by the days of the month for flows)
    t = {k: f"{{by_period: {{2026-09: {v}, 2026-10: {v}}}}}" for k, v in
         {"new_arr": 250, "nb": 220, "exp": 30, "closed": 8, "win_rate": 0.5, "asp": 55, **(targets or {})}.items()}
    return f"""
name: hand
grain: month
dimensions: [owner, segment]
nodes:
  - {{id: new_arr, label: New ARR, level: north_star, metric: new_arr, owner: CRO, target: {t['new_arr']},
     formula: new_arr = nb + exp, children: [nb, exp]}}
  - {{id: nb, label: New business ARR, level: driver, metric: new_business_arr, owner: CRO, target: {t['nb']},
     formula: nb = closed * win_rate * asp, children: [closed, win_rate, asp]}}
  - {{id: exp, label: Expansion ARR, level: driver, metric: expansion_arr, owner: CS, target: {t['exp']}}}
  - {{id: closed, label: Closed new deals, level: lever, metric: closed_deals, filter: {{deal_type: new}},
     owner: Sales ops, target: {t['closed']}}}
  - {{id: win_rate, label: Win rate, level: lever, metric: win_rate, filter: {{deal_type: new}}, owner: Head of sales,
     target: {t['win_rate']}}}
  - {{id: asp, label: Deal size, level: lever, metric: avg_deal_size, filter: {{deal_type: new}}, owner: Pricing,
     target: {t['asp']}}}
"""


def make_tree(targets: dict[str, float] | None = None):
    tree, problems = parse_yaml(tree_yaml(targets), "hand.yaml")
    assert tree is not None and not [p for p in problems if p.severity == "error"], problems
    return tree


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    ws = make_workspace(tmp_path_factory.mktemp("explain"), deals=DEALS)
    settings = ws.settings()
    settings.as_of = "2026-11-20"
    ws.save_settings(settings)
    return Engine(ws)


def part(result, child: str) -> float:
    return next(c.contribution for c in result.children if c.id == child)


# --- hand-computed ---------------------------------------------------------------------------


def test_values_agree_with_evaluate(engine: Engine) -> None:
    tree = make_tree()
    evaluation = evaluate_tree(engine, tree, "2026-10")
    for node in tree.nodes:
        r = explain_node(engine, tree, node.id, "2026-10", versus="previous")
        assert r.value == pytest.approx(evaluation.node(node.id).value)
        assert r.baseline == pytest.approx(evaluation.node(node.id).previous)


def test_additive_children_are_deltas(engine: Engine) -> None:
    # New ARR 250 → 150: new business 220 → 120 (−100), expansion 30 → 30 (0)
    r = explain_node(engine, make_tree(), "new_arr", "2026-10", versus="previous")
    assert r.method == "additive"
    assert part(r, "nb") == pytest.approx(-100)
    assert part(r, "exp") == pytest.approx(0)
    assert part(r, "residual") == pytest.approx(0, abs=1e-9)


def test_product_is_attributed_within_segments(engine: Engine) -> None:
    # Within Bob's cell: closed 4 → 4, win rate .5 → .25, deal size 100 → 100: the cell's −100 is
    # all win rate (LMDI); Ann's cell does not move. Over the totals LMDI would have said
    # win rate −47.5 and deal size −52.5 (L(120, 220) = 164.98; × ln .75 and × ln(40/55)).
    r = explain_node(engine, make_tree(), "nb", "2026-10", versus="previous")
    assert r.method.endswith("within segments by owner") or r.method.endswith("within segments by segment")
    assert part(r, "win_rate") == pytest.approx(-100, abs=1e-6)
    assert part(r, "asp") == pytest.approx(0, abs=1e-6)
    assert part(r, "closed") == pytest.approx(0, abs=1e-6)
    assert sum(c.contribution for c in r.children) == pytest.approx(r.gap, rel=1e-12)


def test_target_mode_uses_targets_as_children_baselines(engine: Engine) -> None:
    # Targets = September's values, so against target the split is the same as against September.
    r = explain_node(engine, make_tree(), "nb", "2026-10")
    assert r.baseline == 220 and r.gap == pytest.approx(-100)
    assert part(r, "win_rate") == pytest.approx(-100, abs=1e-6)
    assert next(c for c in r.children if c.id == "win_rate").baseline == 0.5
    # A parent target the children's targets do not multiply to: 8 × .5 × 55 = 220, target 250 →
    # the 30 the formula cannot see is the residual, and everything still adds up to the gap.
    r = explain_node(engine, make_tree({"nb": 250}), "nb", "2026-10")
    assert part(r, "residual") == pytest.approx(-30, abs=1e-6)
    assert sum(c.contribution for c in r.children) == pytest.approx(-130)
    assert dict(r.residual_detail)["baseline_vs_formula"] == pytest.approx(30)


def test_additive_segments_against_previous(engine: Engine) -> None:
    # New business ARR by owner: Ann 20 → 20 (0), Bob 200 → 100 (−100): Bob explains 100 %.
    r = explain_node(engine, make_tree(), "nb", "2026-10", versus="previous")
    by_owner = next(d for d in r.dimensions if d.dimension == "owner")
    bob = next(s for s in by_owner.segments if s.segment == "Bob")
    assert bob.contribution == pytest.approx(-100) and bob.share == pytest.approx(1.0)
    assert sum(s.contribution for s in by_owner.segments) == pytest.approx(r.gap)
    assert r.segments[0].segment in ("Bob", "Enterprise", f"Bob{PAIR_SEP}Enterprise")


def test_additive_segments_against_target_share_the_target(engine: Engine) -> None:
    # Target 200 shared by September's weights: Ann 200 × 20/220 = 18.18, Bob 181.82.
    # Contributions: Ann 20 − 18.18 = +1.82, Bob 100 − 181.82 = −81.82; together 120 − 200 = −80.
    r = explain_node(engine, make_tree({"nb": 200}), "nb", "2026-10")
    by_owner = {s.segment: s for s in next(d for d in r.dimensions if d.dimension == "owner").segments}
    assert by_owner["Ann"].contribution == pytest.approx(20 - 200 * 20 / 220)
    assert by_owner["Bob"].contribution == pytest.approx(100 - 200 * 200 / 220)
    assert by_owner["Bob"].baseline == pytest.approx(200 * 200 / 220)
    assert sum(s.contribution for s in by_owner.values()) == pytest.approx(-80)


def test_ratio_segments_split_into_mix_and_rate(engine: Engine) -> None:
    # Win rate by owner: weights .5/.5 both months; Ann .5 → .5, Bob .5 → .25.
    # Rate: Bob .5 × (−.25) = −.125, Ann 0; mix 0 (weights unchanged); total .375 − .5 = −.125.
    r = explain_node(engine, make_tree(), "win_rate", "2026-10", versus="previous")
    by_owner = {s.segment: s for s in next(d for d in r.dimensions if d.dimension == "owner").segments}
    assert by_owner["Bob"].rate == pytest.approx(-0.125) and by_owner["Bob"].mix == pytest.approx(0)
    assert by_owner["Ann"].rate == pytest.approx(0) and by_owner["Ann"].mix == pytest.approx(0)
    assert sum(s.contribution for s in by_owner.values()) == pytest.approx(r.gap)


def test_red_path_reaches_the_lever_and_four_deals_are_within_normal_variation(engine: Engine) -> None:
    """The children attribution is exact (the whole −100 is win rate), so the path reaches the lever;
    but Bob's 2 of 4 → 1 of 4 is no evidence of anything: his rate term −.125 is 0.57 standard errors
    by Fisher's exact test. No segment is named."""
    r = explain_node(engine, make_tree(), "new_arr", "2026-10")
    assert [s.id for s in r.red_path] == ["new_arr", "nb", "win_rate"]
    assert r.red_path[1].share == pytest.approx(1.0)
    last = r.red_path[-1]
    assert last.top_segment is None
    win = explain_node(engine, make_tree(), "win_rate", "2026-10")
    by_owner = {p.segment: p for p in next(d for d in win.dimensions if d.dimension == "owner").segments}
    assert by_owner["Bob"].rate == pytest.approx(-0.125)
    # four deals a side are judged by Fisher's exact test: of 8 deals 3 won, Bob's 4 drawn now;
    # P(0 won) = C(3,0)·C(5,4)/C(8,4) = 5/70, P(1 won) = C(3,1)·C(5,3)/70 = 30/70, so the one-sided
    # mid-p is 5/70 + 15/70 = 2/7: z = Φ⁻¹(2/7) = −0.566 (the normal law's ½ · √(.25/4 + .25/4) read −0.71)
    from statistics import NormalDist
    assert by_owner["Bob"].rate_z == pytest.approx(NormalDist().inv_cdf(2 / 7), rel=1e-6)
    words = r.sentences()
    assert words[-1] == ("Win rate: no segment stands out — each deal segment is within normal variation (its own "
                         "noise and history), so the shortfall is spread across them. Owner: Head of sales.")
    assert "explains 100% of the New business ARR shortfall" in words[2]


def test_to_dict_has_the_documented_shape(engine: Engine) -> None:
    d = explain_node(engine, make_tree(), "new_arr", "2026-10").to_dict()
    for key in ("node", "period", "versus", "value", "baseline", "children", "segments", "red_path"):
        assert key in d
    assert d["node"] == "new_arr" and d["period"] == "2026-10" and d["versus"] == "target"
    assert all({"id", "contribution", "share"} <= set(c) for c in d["children"])
    assert sum(c["contribution"] for c in d["children"]) == pytest.approx(d["value"] - d["baseline"])
    assert all({"dimension", "segment", "contribution", "share"} <= set(s) for s in d["segments"])
    for step in d["red_path"]:
        assert {"id", "owner", "status", "top_segment"} <= set(step)
    # the hand data's segments are a few deals each: within normal variation, nothing named (the named
    # segment's keys — z, interval, members — are checked in tests/test_evidence.py)
    assert d["red_path"][-1]["top_segment"] is None
    assert "within normal variation" in d["red_path"][-1]["segment_sentence"]
    json.dumps(d)  # JSON-safe throughout


def test_green_node_has_no_red_path(engine: Engine) -> None:
    r = explain_node(engine, make_tree({"nb": 100}), "nb", "2026-10")
    assert r.status == "green" and [s.id for s in r.red_path] == ["nb"]
    assert "gain" in r.text() or r.red_path[0].sentence


def test_no_data_period_says_so(engine: Engine) -> None:
    r = explain_node(engine, make_tree(), "nb", "2025-01")
    assert r.value is None and any("no data" in n for n in r.notes)
    assert r.to_dict()["children"] == [] or all(c["contribution"] is None for c in r.to_dict()["children"])


def test_unknown_node_and_versus(engine: Engine) -> None:
    with pytest.raises(KeyError):
        explain_node(engine, make_tree(), "nope", "2026-10")
    with pytest.raises(Exception, match="versus"):
        explain_node(engine, make_tree(), "nb", "2026-10", versus="yesterday")


def test_text_reads_well(engine: Engine) -> None:
    text = explain_node(engine, make_tree(), "nb", "2026-10").text()
    assert text.startswith("New business ARR: actual $120 against target $220 (−$100, −45%); off target.")
    assert "Red path:" in text and "Win rate" in text
    # the method comes last, in words, not in a heading
    how = text.split("How this was computed:")[1]
    assert "LMDI" in how and "Within each owner" in how and "lmdi" not in text.split("How this was computed:")[0]


# --- recovery of planted causes (demo business, one cause at a time) ---------------------------


def _bench():
    spec = importlib.util.spec_from_file_location("bench_recall", ROOT / "benchmarks" / "bench_recall.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_recall"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    br = _bench()
    root = tmp_path_factory.mktemp("planted")
    seed = 3
    base = br.base_tables(seed, 3.0)
    targets = br.counterfactual_tree(br.load(root, "clean", base))
    return br, root, seed, base, targets


@pytest.mark.parametrize("cause", ["win_rate", "leads", "churn", "discount", "cycle"])
def test_red_path_recovers_a_planted_cause(planted, cause: str) -> None:
    br, root, seed, base, targets = planted
    outcome = br.run(br.plant(base, cause, seed), root, targets=targets)
    assert outcome.hit, (outcome.scenario.name, outcome.path, outcome.top, outcome.explanation.sentences())


# --- command line ------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpitree", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_explain_json(engine: Engine, tmp_path: Path) -> None:
    tree = tmp_path / "tree.yaml"
    tree.write_text(tree_yaml(), encoding="utf-8")
    out = _cli("explain", "--workspace", str(engine.workspace.root), "--tree", str(tree), "--node", "new_arr",
               "--period", "2026-10", "--format", "json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["node"] == "new_arr" and d["value"] == pytest.approx(150) and d["baseline"] == pytest.approx(250)
    assert [c["id"] for c in d["children"]] == ["nb", "exp", "residual"]
    assert [s["id"] for s in d["red_path"]] == ["new_arr", "nb", "win_rate"]
    assert d["segments"] and d["segments"][0]["share"] >= d["segments"][-1]["share"]


def test_cli_unknown_node_exits_2_with_one_line(engine: Engine, tmp_path: Path) -> None:
    tree = tmp_path / "tree.yaml"
    tree.write_text(tree_yaml(), encoding="utf-8")
    out = _cli("explain", "--workspace", str(engine.workspace.root), "--tree", str(tree), "--node", "nope",
               "--period", "2026-10", "--format", "json")
    assert out.returncode == 2
    assert out.stderr.startswith("error:") and len(out.stderr.strip().splitlines()) == 1
    assert "nope" in out.stderr and out.stdout == ""


# --- value expressions in memory ----------------------------------------------------------------


def test_in_memory_values_match_sql_for_every_catalogue_metric() -> None:
    """Segments' values are computed from components in memory: same numbers as DuckDB's SQL."""
    import numpy as np

    from kpitree.explain import ValueFn, _duck_value
    from kpitree.metrics import CATALOGUE

    rng = np.random.default_rng(0)
    for m in CATALOGUE.values():
        comps = {c: rng.integers(0, 50, 40).astype(float) for c in m.components}
        mine = ValueFn(m.value, m.components)(comps)
        sql = _duck_value(m.value, comps)
        assert np.allclose(mine, sql, rtol=1e-12, equal_nan=True), m.name


def test_filtered_ratio_reads_every_source_with_the_filter(tmp_path: Path) -> None:
    """ROAS for one channel divides that channel's new ARR by that channel's spend, not all spend.

    October: Paid Search won 40 on spend 20 (ROAS 2), Organic won 100 on spend 80; September:
    Paid Search 30 on 10 (3). Explain must agree with evaluate: 2 against 3.
    """
    deals = DEALS.strip().splitlines()
    header = deals[0]
    rows = ["P1,D1,Ann,2026-08-01,2026-09-03,Closed Won,won,30,new,SMB,Paid Search",
            "P2,D2,Ann,2026-09-01,2026-10-03,Closed Won,won,40,new,SMB,Paid Search"]
    spend = ("month,channel,amount\n2026-09-01,Paid Search,10\n2026-09-01,Organic,90\n"
             "2026-10-01,Paid Search,20\n2026-10-01,Organic,80\n")
    ws = make_workspace(tmp_path, deals="\n".join([header, *deals[1:], *rows]) + "\n", spend=spend)
    settings = ws.settings()
    settings.as_of = "2026-11-20"
    ws.save_settings(settings)
    engine = Engine(ws)
    tree, problems = parse_yaml("""
name: roas
grain: month
dimensions: [owner]
nodes:
  - {id: roas, label: Paid Search ROAS, level: north_star, metric: roas, filter: {channel: Paid Search},
     owner: Growth, target: {by_period: {2026-10: 3}}}
""", "roas.yaml")
    assert tree is not None, problems
    r = explain_node(engine, tree, "roas", "2026-10", versus="previous")
    assert evaluate_tree(engine, tree, "2026-10").node("roas").value == pytest.approx(2.0)
    assert r.value == pytest.approx(2.0)
    assert r.baseline == pytest.approx(3.0)


# --- every cause of a red north star -----------------------------------------------------------


def _named(cause, dimension: str, segment: str) -> bool:
    """The cause's top segment (or its rate finding) is `segment` of `dimension`, alone or in a pair."""
    for part in (cause.top_segment, cause.also.segment if cause.also else None):
        if part is None:
            continue
        dims = part.dimension.split(PAIR_SEP)
        values = part.segment.split(PAIR_SEP) if len(dims) > 1 else [part.segment]
        if any(d == dimension and v == segment for d, v in zip(dims, values, strict=False)):
            return True
    return False


def test_demo_north_star_names_every_planted_problem(demo_data_dir) -> None:
    """Issue 6's bar: explaining the red ARR names each problem of scenario.json at its node."""
    from kpitree.tree import load_tree
    from kpitree.workspace import Workspace

    scenario = json.loads((ROOT / "data" / "demo" / "scenario.json").read_text())
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    result = explain_node(Engine(Workspace(demo_data_dir / "demo")), tree, "arr", "2026-10")
    assert result.status == "red"
    metric_of = {n.id: n.metric for n in tree.nodes}
    for problem in scenario["problems"]:
        hits = [c for c in result.causes if metric_of[c.id] == problem["node"]
                and _named(c, problem["dimension"], problem["segment"])]
        assert hits, (problem["id"], [(c.id, c.top_segment and c.top_segment.segment) for c in result.causes])
    # ARR is an exact bridge (start × NRR + new-logo + reactivation). Of its −$10.12M gap, 74 % is the
    # balance it started the month with, carried over from September: said, never followed nor a cause.
    # The path follows what arose in October, through bookings to the rep.
    path = [s.id for s in result.red_path]
    assert path[0] == "arr" and path[-2:] == ["new_business_arr", "win_rate"] and "arr_start" not in path
    assert "74% of the shortfall was carried over from the period before" in result.red_path[0].sentence
    assert "arr_start" not in {c.id for c in result.causes}
    assert "carried over" in dict(result.unlisted)["arr_start"]
    assert next(c for c in result.children if c.id == "arr_start").carried
    assert "Dana Whitfield" in result.red_path[-1].top_segment.segment
    win = next(c for c in result.causes if c.id == "win_rate")
    assert "Dana Whitfield" in win.top_segment.segment
    assert abs(win.top_segment.rate_z) >= 3  # binomial noise and her own history: far out of it
    assert next(c for c in result.to_dict()["causes"] if c["id"] == "win_rate")["path"] == path
    assert "Also off track" in result.text() and "Net revenue retention → Gross revenue retention → Logo churn rate" in result.text()


MIX_COPIES = 30
MIX_DEALS = "deal_id,account_id,owner,created_date,close_date,stage,status,amount,deal_type,segment,channel\n" + "".join(
    f"{month[0]}{i},A{month[0]}{i},{owner},2026-0{month[1] - 1}-01,2026-{month[1]:02d}-{10 + i % 15:02d},Closed Won,won,"
    f"{amount},new,{segment},{channel}\n"
    for month in (("S", 9), ("O", 10))
    for i, (owner, segment, channel, amount) in enumerate(
        # September: per channel 2 Enterprise deals of 100 and 4 SMB of 10 and 4 Mid-Market of 30.
        # October: 1 Enterprise deal per channel (a mix shift, no deal got smaller) and the
        # Mid-Market deals close at 20 instead of 30 (a rate effect of one segment). Each line 30
        # times over (MIX_COPIES): the averages are the same, and Enterprise's fall from 120 to 60
        # deals is far out of Poisson noise, where 4 to 2 was not (see tests/test_evidence.py).
        [("Eve", "Enterprise", ch, 100) for ch in ("A", "B") for _ in range(MIX_COPIES * (2 if month[0] == "S" else 1))]
        + [("Sam", "SMB", ch, 10) for ch in ("A", "B") for _ in range(4 * MIX_COPIES)]
        + [("Max", "Mid-Market", ch, 30 if month[0] == "S" else 20) for ch in ("A", "B") for _ in range(4 * MIX_COPIES)]))


def test_a_mix_shift_is_not_mistaken_for_a_channel_rate_and_the_hidden_rate_is_found(tmp_path: Path) -> None:
    """Average deal size, September → October (hand-computed).

    Sep: 4 × 100 + 8 × 10 + 8 × 30 = 720 over 20 deals = 36. Oct: 2 × 100 + 80 + 8 × 20 = 440 over
    18 = 24.44 (each deal 30 times over: same averages and weights). Per channel the average also falls (36 → 24.44), but within channel × segment no
    Enterprise or SMB deal changed: the channels' rate effects vanish once conditioned on segment,
    so segment is the dimension, its top part is Enterprise's smaller share of the mix, and the
    finding beside it is Mid-Market's own rate (30 → 20, −33 %).
    """
    ws = make_workspace(tmp_path, deals=MIX_DEALS)
    settings = ws.settings()
    settings.as_of = "2026-11-20"
    ws.save_settings(settings)
    tree, problems = parse_yaml("""
name: mix
grain: month
dimensions: [channel, segment]
nodes:
  - {id: asp, label: Deal size, level: north_star, metric: avg_deal_size, owner: Pricing, target: 36}
""", "mix.yaml")
    assert tree is not None, problems
    r = explain_node(Engine(ws), tree, "asp", "2026-10", versus="previous")
    assert r.value == pytest.approx(440 / 18)
    assert r.baseline == pytest.approx(36.0)
    assert r.dimensions[0].dimension == "segment"
    channel = next(d for d in r.dimensions if d.dimension == "channel")
    for p in channel.segments:
        if p.segment in ("A", "B"):
            assert p.rate == pytest.approx(r.gap / 2, abs=1e-9)  # unconditioned: the whole fall, per channel
            # within segment, only the channel's Mid-Market cell moved: mean weight × (20 − 30)
            assert p.within == "segment" and p.own_rate == pytest.approx((4 / 20 + 4 / 18) / 2 * -10)
    top = r.red_path[-1].top_segment
    assert top.segment == "Enterprise" and abs(top.mix) > abs(top.rate)
    also = r.causes[0].also if r.causes else None
    assert also is not None and also.segment.segment == "Mid-Market"
    assert also.segment.baseline == pytest.approx(30.0) and also.segment.value == pytest.approx(20.0)
    assert "Mid-Market deals" in also.sentence and "−33%" in also.sentence


def test_warm_caches_every_query_a_click_needs(demo_data_dir, monkeypatch) -> None:
    """After the background warm-up, a node's whole panel is computed without opening the database."""
    from kpitree.periods import parse_period
    from kpitree.tree import load_tree
    from kpitree.warmup import warm, warm_node
    from kpitree.workspace import Workspace

    ws = Workspace(demo_data_dir / "demo")
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    period = parse_period("2026-09")  # a period no other test explains: nothing cached yet
    engine = Engine(ws)
    evaluate_tree(engine, tree, period)
    engine.coverage("deals")
    # two panels and the root's walk over every cause; the unknown node is skipped
    assert warm(ws, tree, period, "target", ["arr", "logo_churn_rate", "no_such_node"]) == 3

    def refuse(*args, **kwargs):
        raise AssertionError("a warmed panel opened the database")

    monkeypatch.setattr(Workspace, "connect", refuse)
    monkeypatch.setattr(Workspace, "_open", refuse)
    warm_node(engine, tree, "logo_churn_rate", period, "target")  # explanation, trend, split, cohorts
    churn = explain_node(engine, tree, "logo_churn_rate", period, causes=False)
    assert churn.red_path and churn.value is not None
    root = explain_node(engine, tree, "arr", period)  # the walk over every branch: warmed by the root
    assert root.causes


def test_per_customer_children_each_keep_their_own_components(tmp_path) -> None:
    """nrr = grr + expansion_rate: the three share component names (`kept`, `base`) with other SQL; the
    children's values must be their own (the cells scan once gave both 100 % and a −100 pp residual)."""
    ws = make_workspace(tmp_path, **{"subscriptions.csv": (
        "customer_id,start_date,end_date,mrr,segment\n"
        "A,2026-01-01,2026-03-01,100,SMB\nA,2026-03-01,,120,SMB\n"  # expands 100 → 120
        "B,2026-01-01,2026-03-01,100,SMB\nB,2026-03-01,,50,SMB\n"  # contracts 100 → 50
        "C,2026-01-01,2026-03-01,100,Enterprise\n"  # churns
        "D,2026-01-01,,100,Enterprise\n")})  # stays
    settings = ws.settings()
    settings.as_of = "2026-04-10"  # March complete: judged against its whole target, not a running one's by now
    ws.save_settings(settings)
    tree, problems = parse_yaml("""
name: retention
grain: month
nodes:
  - {id: nrr, label: NRR, level: north_star, metric: nrr, owner: CS, target: 1.0, formula: nrr = grr + exp,
     children: [grr, exp]}
  - {id: grr, label: GRR, level: driver, metric: grr, owner: CS, target: 0.95}
  - {id: exp, label: Expansion rate, level: driver, metric: expansion_rate, owner: CS, target: 0.05}
""", "retention.yaml")
    assert not [p for p in problems if p.severity == "error"]
    result = explain_node(Engine(ws), tree, "nrr", "2026-03", versus="target")
    children = {c.id: c for c in result.children}
    # End of February: 400 of MRR; end of March: A 120, B 50, C 0, D 100.
    assert result.value == pytest.approx(270 / 400)
    assert children["grr"].value == pytest.approx(250 / 400)  # min(m0, m1): 100 + 50 + 0 + 100
    assert children["exp"].value == pytest.approx(20 / 400)
    residual = children.get("residual")
    assert residual is None or residual.contribution == pytest.approx(0, abs=1e-9)
    assert sum(c.contribution for c in result.children) == pytest.approx(result.value - 1.0)


@pytest.mark.parametrize("versus", ["target", "previous", "last_year"])
def test_the_walk_reads_a_given_evaluation_and_says_the_same(demo_data_dir, versus: str) -> None:
    """The page hands its evaluation to the walk over the causes (no second evaluation of the
    tree); without one the walk queries only the nodes it asks about. Both read as the tree does.
    (Compared as words and ids: DuckDB's parallel sums differ in the last bits from run to run.)"""
    from kpitree.cache import clear_all
    from kpitree.tree import load_tree
    from kpitree.workspace import Workspace

    def said(r) -> tuple:
        return r.text(), [c.id for c in r.causes], list(r.unlisted), [s.id for s in r.red_path]

    engine = Engine(Workspace(demo_data_dir / "demo"))
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    clear_all()
    alone = said(explain_node(engine, tree, "arr", "2026-10", versus=versus))
    clear_all()
    evaluation = evaluate_tree(engine, tree, "2026-10")
    assert said(explain_node(engine, tree, "arr", "2026-10", versus=versus, evaluation=evaluation)) == alone
    assert alone[1] or alone[2]  # the walk had red nodes to look at
    other = evaluate_tree(engine, tree, "2026-09")  # another period's evaluation is not used for this one
    assert said(explain_node(engine, tree, "arr", "2026-10", versus=versus, evaluation=other)) == alone


def test_a_ratio_beside_the_path_names_its_own_rate_not_a_reps_share_of_the_mix(demo_data_dir) -> None:
    """On the demo, fewer of Dana Whitfield's big deals close (her win rate fell: the red path's lever),
    so her share of the won deals falls and the average deal size with it; and Mid-Market deals close
    smaller (the demo's planted discount). Her share's fall is mostly Enterprise's share falling, and a
    rep carrying part of her segment's mix shift carries that shift's noise too: it is no cause of the
    average deal size (its cause is the win rate upstream). The cause names Mid-Market's own rate."""
    from kpitree.tree import load_tree
    from kpitree.workspace import Workspace

    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    result = explain_node(Engine(Workspace(demo_data_dir / "demo")), tree, "arr", "2026-10")
    metric_of = {n.id: n.metric for n in tree.nodes}
    size = next(c for c in result.causes if metric_of[c.id] == "avg_deal_size")
    assert size.top_segment is not None and size.top_segment.segment == "Mid-Market"
    assert size.top_segment.value < size.top_segment.baseline  # its deals closed smaller
    assert abs(size.top_segment.rate) > abs(size.top_segment.mix)  # its own rate, not its share
    assert "Dana Whitfield" not in size.sentence
    win = next(c for c in result.causes if c.id == result.red_path[-1].id)
    assert win.top_segment is not None  # the path's own lever keeps its segment


def test_a_gap_carried_over_whole_names_no_segment_of_the_level(demo_data_dir) -> None:
    """The demo's ARR in 2026-10 with what arose in October on plan: new-logo ARR, reactivation and NRR
    targets set to their actuals, ARR's target the bridge over them and the opening target. The whole
    gap is then the opening balance's, carried over from September. The red path says so and stops;
    no segment of ARR's level against the target's shares is named as the cause (a trial read
    "Acmesaas_US customers … explains 102 %" right after "it arose then")."""
    import yaml

    from kpitree.tree import load_tree
    from kpitree.workspace import Workspace

    engine = Engine(Workspace(demo_data_dir / "demo"))
    doc = yaml.safe_load((ROOT / "data" / "trees" / "revops.yaml").read_text())
    values = {n: evaluate_tree(engine, load_tree(ROOT / "data" / "trees" / "revops.yaml"), "2026-10").node(n).value
              for n in ("arr_new", "arr_reactivation", "nrr")}
    nodes = {n["id"]: n for n in doc["nodes"]}
    for n, v in values.items():
        nodes[n]["target"]["by_period"]["2026-10"] = v
    start = nodes["arr_start"]["target"]["by_period"]["2026-10"]
    nodes["arr"]["target"]["by_period"]["2026-10"] = start * values["nrr"] + values["arr_new"] + values["arr_reactivation"]
    tree, problems = parse_yaml(yaml.safe_dump(doc, sort_keys=False), "carried.yaml")
    assert tree is not None, [p for p in problems if p.severity == "error"]
    r = explain_node(engine, tree, "arr", "2026-10")
    assert r.adverse and r.status != "green"
    carried = next(c for c in r.children if c.id == "arr_start")
    assert carried.carried and carried.share == pytest.approx(1.0, abs=1e-6)
    assert [s.id for s in r.red_path] == ["arr"] and r.red_path[0].top_segment is None
    assert "carried over from the period before" in r.red_path[0].sentence
    assert all(c.id != "arr" or c.top_segment is None for c in r.causes)
    assert any("carried over from 2026-09" in n for n in r.to_dict()["notes"])


def test_an_opening_balance_at_its_target_is_not_said_to_carry_anything(demo_data_dir) -> None:
    """A suggested plan opens each closed month at last month's actual ARR: ARR at start is then on its
    target, and the text does not call it "carried over from the period before" (it read "0 % —
    carried over")."""
    import yaml

    from kpitree.tree import load_tree
    from kpitree.workspace import Workspace

    engine = Engine(Workspace(demo_data_dir / "demo"))
    path = ROOT / "data" / "trees" / "revops.yaml"
    start = evaluate_tree(engine, load_tree(path), "2026-10").node("arr_start").value
    doc = yaml.safe_load(path.read_text())
    next(n for n in doc["nodes"] if n["id"] == "arr_start")["target"]["by_period"]["2026-10"] = start
    tree, problems = parse_yaml(yaml.safe_dump(doc, sort_keys=False), "opening.yaml")
    assert tree is not None, [p for p in problems if p.severity == "error"]
    r = explain_node(engine, tree, "arr", "2026-10")
    assert next(c for c in r.children if c.id == "arr_start").carried
    assert "carried over" not in r.text() and "carried over" not in r.red_path[0].sentence


def test_a_level_within_its_own_normal_variation_names_no_segment(demo_data_dir) -> None:
    """The demo's ARR in 2026-10 against a target only 0.05 % above it (−$79k of $158M): a gap ARR makes
    every month. No segment of the level is named for it, in any dimension's line (a trial's control
    month read "Pro yearly × visa (−$980) explains more than the whole of the ARR gap")."""
    import yaml

    from kpitree.tree import load_tree
    from kpitree.workspace import Workspace

    engine = Engine(Workspace(demo_data_dir / "demo"))
    path = ROOT / "data" / "trees" / "revops.yaml"
    actual = evaluate_tree(engine, load_tree(path), "2026-10").node("arr").value
    doc = yaml.safe_load(path.read_text())
    next(n for n in doc["nodes"] if n["id"] == "arr")["target"]["by_period"]["2026-10"] = round(actual * 1.0005, 2)
    tree, problems = parse_yaml(yaml.safe_dump(doc, sort_keys=False), "quiet.yaml")
    assert tree is not None, [p for p in problems if p.severity == "error"]
    r = explain_node(engine, tree, "arr", "2026-10")
    assert r.adverse and r.red_path[0].top_segment is None
    for d in r.dimensions:
        assert "within ARR's own normal variation" in r.segment_sentence(d.dimension), d.dimension
        assert d.chosen == ()
