"""The demo generator: deterministic, consistent across tables, planted problems visible, plan honest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpitree.demo import DEFAULT_AS_OF, DEFAULT_START, DemoData, generate, write_demo

START = DEFAULT_START.isoformat()
AS_OF = DEFAULT_AS_OF.isoformat()

# The canonical columns, spelled out here (not imported) so the test checks the spec itself.
EXPECTED_COLUMNS = {
    "accounts": ["account_id", "name", "segment", "industry", "csm", "created_date"],
    "deals": [
        "deal_id",
        "account_id",
        "owner",
        "created_date",
        "close_date",
        "stage",
        "status",
        "amount",
        "deal_type",
        "segment",
        "channel",
        "services_amount",
    ],  # fmt: skip
    "subscriptions": ["customer_id", "start_date", "end_date", "mrr", "plan", "segment", "channel"],
    "leads": ["lead_id", "created_date", "channel", "owner", "segment", "mql_date", "sql_date", "deal_id"],
    "activities": ["activity_id", "date", "owner", "type", "account_id"],
    "spend": ["month", "channel", "amount"],
    "quotas": ["owner", "period", "quota"],
    "tickets": ["ticket_id", "account_id", "opened_at", "resolved_at", "first_response_at"],
    "events": ["user_id", "account_id", "timestamp", "feature"],
    "nps": ["account_id", "date", "score"],
}
OPEN_STAGES = {"Discovery", "Demo", "Proposal", "Negotiation"}


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate()


@pytest.fixture(scope="module")
def small() -> DemoData:
    return generate(scale=0.2)


@pytest.fixture(scope="module")
def calm() -> DemoData:
    """The same business without the planted problems: what the plan describes."""
    return generate(plant_problems=False, tables=["deals", "subscriptions", "leads"])


def months(first: str, last: str) -> list[str]:
    return [str(p) for p in pd.period_range(first, last, freq="M")]


def month_end(month: str) -> str:
    return str(pd.Period(month, freq="M").end_time.date())


def mrr_at(subs: pd.DataFrame, day: str) -> pd.Series:
    """MRR per customer at the end of `day` (catalogue rule: start <= d < end)."""
    on = (subs["start_date"] <= day) & (subs["end_date"].isna() | (subs["end_date"] > day))
    return subs[on].groupby("customer_id")["mrr"].sum()


def logo_churn(subs: pd.DataFrame, month: str, segment: str) -> float:
    before = mrr_at(subs, month_end(str(pd.Period(month, freq="M") - 1)))
    after = mrr_at(subs, month_end(month)).reindex(before.index, fill_value=0.0)
    seg = subs.groupby("customer_id")["segment"].first().reindex(before.index)
    base = (before > 0) & (seg == segment)
    return float(((after == 0) & base).sum() / base.sum())


def closed(deals: pd.DataFrame) -> pd.DataFrame:
    out = deals[deals["status"] != "open"]
    return out.assign(month=out["close_date"].str[:7])


def win_rate(frame: pd.DataFrame) -> float:
    return float((frame["status"] == "won").mean())


# --- determinism and subsets -------------------------------------------------------------------


def test_same_seed_gives_identical_frames_and_another_seed_differs() -> None:
    wanted = ["deals", "leads", "subscriptions", "activities", "nps"]
    a = generate(seed=3, scale=0.3, tables=wanted)
    b = generate(seed=3, scale=0.3, tables=wanted)
    for name in wanted:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert a.scenario() == b.scenario()
    other = generate(seed=4, scale=0.3, tables=["deals"])
    assert not other.tables["deals"].equals(a.tables["deals"])


def test_a_subset_gives_the_same_deals_as_a_full_generation(demo: DemoData) -> None:
    subset = generate(tables=["subscriptions", "deals"])
    assert list(subset.tables) == ["deals", "subscriptions"]
    pd.testing.assert_frame_equal(subset.tables["deals"], demo.tables["deals"])
    pd.testing.assert_frame_equal(subset.tables["subscriptions"], demo.tables["subscriptions"])


def test_unknown_tables_and_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown demo table.*known: accounts"):
        generate(tables=["deals", "opportunities"])
    with pytest.raises(ValueError, match="scale must be positive"):
        generate(scale=0)
    with pytest.raises(ValueError, match="six months after start"):
        generate(start=DEFAULT_AS_OF, as_of=DEFAULT_AS_OF)


# --- shape ---------------------------------------------------------------------------------------


def test_every_table_has_exactly_the_canonical_columns(demo: DemoData) -> None:
    assert list(demo.tables) == list(EXPECTED_COLUMNS)
    for name, columns in EXPECTED_COLUMNS.items():
        assert list(demo.tables[name].columns) == columns, name


def test_volumes_at_scale_one(demo: DemoData) -> None:
    rows = {name: len(frame) for name, frame in demo.tables.items()}
    assert 2_500 <= rows["accounts"] <= 4_000
    assert 15_000 <= rows["deals"] <= 25_000
    assert 40_000 <= rows["leads"] <= 60_000
    assert 100_000 <= rows["activities"] <= 200_000
    assert 150_000 <= rows["events"] <= 300_000


def test_scale_is_roughly_linear(demo: DemoData, small: DemoData) -> None:
    ratio = len(small.tables["deals"]) / len(demo.tables["deals"])
    assert 0.2 * 0.7 <= ratio <= 0.2 * 1.3


def test_ids_are_unique_and_well_formed(demo: DemoData) -> None:
    t = demo.tables
    for name, column, prefix in [
        ("accounts", "account_id", "A"),
        ("deals", "deal_id", "D"),
        ("leads", "lead_id", "L"),
        ("activities", "activity_id", "AC"),
        ("tickets", "ticket_id", "T"),
    ]:
        ids = t[name][column]
        assert ids.is_unique, name
        assert ids.str.fullmatch(rf"{prefix}\d{{5,}}").all(), name


def test_roster_and_channels(demo: DemoData) -> None:
    reps = demo.scenario()["reps"]
    assert 8 <= len(reps["ae"]) <= 15
    assert set(reps["ae"].values()) == {"SMB", "Mid-Market", "Enterprise"}
    assert 3 <= demo.tables["accounts"]["csm"].dropna().nunique() <= 5
    assert demo.tables["leads"]["owner"].isin(reps["sdr"]).all()
    assert demo.tables["deals"]["channel"].nunique() >= 5
    assert set(demo.tables["spend"]["channel"]) == set(demo.tables["leads"]["channel"])


def test_activity_types_fit_each_role(demo: DemoData) -> None:
    reps = demo.scenario()["reps"]
    acts = demo.tables["activities"]
    by_type = acts.groupby("type")["owner"].agg(set)
    assert by_type["call"] | by_type["email"] <= set(reps["sdr"])
    assert by_type["meeting"] | by_type["demo"] | by_type["proposal"] <= set(reps["ae"])
    assert by_type["health_check"] <= set(reps["csm"])


# --- consistency ---------------------------------------------------------------------------------


def test_referential_integrity(demo: DemoData) -> None:
    t = demo.tables
    accounts = set(t["accounts"]["account_id"])
    assert set(t["deals"]["account_id"]) <= accounts
    assert set(t["subscriptions"]["customer_id"]) <= accounts
    assert set(t["leads"]["deal_id"].dropna()) <= set(t["deals"]["deal_id"])
    for name in ("activities", "tickets", "events", "nps"):
        assert set(t[name]["account_id"].dropna()) <= accounts, name
    # accounts agree with their deals and subscriptions
    seg = t["accounts"].set_index("account_id")["segment"]
    assert (t["deals"]["segment"].to_numpy() == seg.loc[t["deals"]["account_id"]].to_numpy()).all()
    assert (t["subscriptions"]["segment"].to_numpy() == seg.loc[t["subscriptions"]["customer_id"]].to_numpy()).all()
    # only customers have a CSM, and every customer has one
    customers = set(t["subscriptions"]["customer_id"])
    has_csm = set(t["accounts"].loc[t["accounts"]["csm"].notna(), "account_id"])
    assert has_csm == customers


def test_leads_flow_into_their_deals(demo: DemoData) -> None:
    leads, deals = demo.tables["leads"], demo.tables["deals"]
    assert leads["deal_id"].dropna().is_unique
    joined = leads.dropna(subset=["deal_id"]).merge(deals, on="deal_id", suffixes=("_lead", ""))
    assert (joined["channel_lead"] == joined["channel"]).all()
    assert (joined["segment_lead"] == joined["segment"]).all()
    assert (joined["deal_type"] == "new").all()
    assert (joined["created_date"] >= joined["sql_date"]).all()
    has_sql = leads.dropna(subset=["sql_date"])
    assert (has_sql["sql_date"] >= has_sql["mql_date"]).all()
    has_mql = leads.dropna(subset=["mql_date"])
    assert (has_mql["mql_date"] >= has_mql["created_date"]).all()
    # a funnel, not a wall: some leads stop at each step
    assert 0.3 < leads["mql_date"].notna().mean() < 0.7
    assert 0.1 < leads["deal_id"].notna().mean() < 0.35


def test_status_stage_and_dates_of_deals_agree(demo: DemoData) -> None:
    deals = demo.tables["deals"]
    won, lost, open_ = (deals[deals["status"] == s] for s in ("won", "lost", "open"))
    assert len(won) + len(lost) + len(open_) == len(deals)
    assert (won["stage"] == "Closed Won").all()
    assert (lost["stage"] == "Closed Lost").all()
    assert open_["stage"].isin(OPEN_STAGES).all()
    assert (won["close_date"] <= AS_OF).all() and (lost["close_date"] <= AS_OF).all()
    assert (open_["close_date"] > AS_OF).all()
    assert (deals["created_date"] <= deals["close_date"]).all()
    assert (deals["amount"] > 0).all() and (deals["services_amount"] >= 0).all()
    assert set(deals["deal_type"]) == {"new", "expansion", "renewal"}


def test_no_dates_outside_start_and_as_of(demo: DemoData) -> None:
    t = demo.tables
    date_columns = {
        "accounts": ["created_date"], "deals": ["created_date", "close_date"],
        "subscriptions": ["start_date", "end_date"], "leads": ["created_date", "mql_date", "sql_date"],
        "activities": ["date"], "spend": ["month"], "nps": ["date"],
        "tickets": ["opened_at", "resolved_at", "first_response_at"], "events": ["timestamp"],
    }  # fmt: skip
    for name, columns in date_columns.items():
        frame = t[name]
        if name == "deals":
            frame = frame[frame["status"] != "open"]
        for column in columns:
            values = frame[column].dropna()
            assert (values >= START).all(), (name, column)
            assert (values.str[:10] <= AS_OF).all(), (name, column)
            width = 19 if name in ("tickets", "events") else 10
            assert values.str.len().eq(width).all(), (name, column)
    assert t["quotas"]["period"].min() == START[:7]


def test_subscription_rows_never_overlap(demo: DemoData) -> None:
    subs = demo.tables["subscriptions"].sort_values(["customer_id", "start_date"])
    assert (subs["mrr"] > 0).all()
    assert ((subs["end_date"].isna()) | (subs["end_date"] > subs["start_date"])).all()
    prev_end = subs.groupby("customer_id")["end_date"].shift()
    follows = prev_end.notna() | subs.duplicated("customer_id", keep="first").eq(False)
    assert follows.all(), "a customer's earlier row is still open when the next starts"
    later = prev_end.notna()
    assert (subs.loc[later, "start_date"] >= prev_end[later]).all()


def test_each_won_new_deal_starts_a_subscription_at_its_price(demo: DemoData) -> None:
    deals, subs = demo.tables["deals"], demo.tables["subscriptions"]
    won_new = deals[(deals["status"] == "won") & (deals["deal_type"] == "new")]
    rows = won_new.merge(
        subs,
        left_on=["account_id", "close_date"],
        right_on=["customer_id", "start_date"],
        how="left",
        suffixes=("", "_sub"),
    )
    assert len(rows) == len(won_new) and rows["mrr"].notna().all()
    assert np.allclose(rows["mrr"], rows["amount"] / 12, atol=0.005)
    assert (rows["segment"] == rows["segment_sub"]).all() and (rows["channel"] == rows["channel_sub"]).all()


def test_won_expansions_replace_the_row_with_a_higher_mrr(demo: DemoData) -> None:
    deals, subs = demo.tables["deals"], demo.tables["subscriptions"]
    exp = deals[(deals["status"] == "won") & (deals["deal_type"] == "expansion")]
    new_row = exp.merge(subs, left_on=["account_id", "close_date"], right_on=["customer_id", "start_date"])
    old_row = exp.merge(subs, left_on=["account_id", "close_date"], right_on=["customer_id", "end_date"])
    assert len(new_row) == len(old_row) == len(exp)
    both = new_row[["deal_id", "amount", "mrr"]].merge(
        old_row[["deal_id", "mrr"]], on="deal_id", suffixes=("", "_before")
    )
    assert np.allclose(both["mrr"] - both["mrr_before"], both["amount"] / 12, atol=0.01)


def test_renewals_keep_mrr_unless_they_contract_and_lost_renewals_churn(demo: DemoData) -> None:
    deals, subs = demo.tables["deals"], demo.tables["subscriptions"]
    renewals = deals[(deals["deal_type"] == "renewal") & (deals["status"] != "open")]
    assert len(renewals) > 100
    for _, deal in renewals.head(300).iterrows():
        after = mrr_at(subs, deal["close_date"]).get(deal["account_id"], 0.0)
        if deal["status"] == "won":
            assert after == pytest.approx(deal["amount"] / 12, abs=0.01)
        else:
            assert after == 0.0


def test_customers_churn_contract_and_some_come_back(demo: DemoData) -> None:
    subs = demo.tables["subscriptions"].sort_values(["customer_id", "start_date"])
    last = subs.groupby("customer_id").tail(1)
    assert last["end_date"].notna().sum() > 200  # churned: last row ended, no follow-up
    gaps = subs.groupby("customer_id")["end_date"].shift().lt(subs["start_date"])
    assert gaps.sum() >= 5  # reactivated after a gap
    down = subs["mrr"] < subs.groupby("customer_id")["mrr"].shift()
    assert down.sum() > 50  # contractions


def test_segment_economics_look_like_saas(demo: DemoData) -> None:
    deals = demo.tables["deals"]
    early = closed(deals[deals["deal_type"] == "new"])
    early = early[early["month"].between("2025-01", "2026-06")]
    won = early[early["status"] == "won"]
    size = won.groupby("segment")["amount"].median()
    assert 5_000 <= size["SMB"] <= 15_000
    assert 20_000 <= size["Mid-Market"] <= 60_000
    assert 80_000 <= size["Enterprise"] <= 250_000
    cycle = (pd.to_datetime(won["close_date"]) - pd.to_datetime(won["created_date"])).dt.days
    median_cycle = cycle.groupby(won["segment"]).median()
    assert 20 <= median_cycle["SMB"] <= 40 and 90 <= median_cycle["Enterprise"] <= 150
    rates = early.groupby("segment").apply(win_rate)
    assert rates.between(0.18, 0.37).all(), rates.to_dict()


def test_quarter_end_push_and_slow_december(calm: DemoData) -> None:
    won = closed(calm.tables["deals"])
    won = won[(won["status"] == "won") & (won["deal_type"] == "new") & won["month"].between("2025-01", "2026-09")]
    month = won["close_date"].str[5:7].astype(int)
    assert (month % 3 == 0).mean() > 0.36  # a third would be flat; reps pull deals into quarter end
    day = won["close_date"].str[8:].astype(int)
    late, early = ((month == 12) & (day >= 15)).sum(), ((month == 12) & (day < 15)).sum()
    assert late / 17 < early / 14  # closes per day fall in the second half of December


def test_quotas_are_near_what_reps_normally_book(calm: DemoData, demo: DemoData) -> None:
    quotas = demo.tables["quotas"]
    won = closed(calm.tables["deals"])
    won = won[(won["status"] == "won") & (won["deal_type"] == "new")]
    h1 = months("2026-01", "2026-06")
    attainment = won[won["month"].isin(h1)]["amount"].sum() / quotas[quotas["period"].isin(h1)]["quota"].sum()
    assert 0.8 <= attainment <= 1.15
    assert set(quotas["owner"]) == set(demo.scenario()["reps"]["ae"])


# --- planted problems ----------------------------------------------------------------------------


def test_problems_are_listed_with_their_owner_segment_and_date(demo: DemoData) -> None:
    found = {p.id: p for p in demo.problems}
    assert len(found) >= 4
    expected = {
        "enterprise_rep_win_rate": ("owner", "Dana Whitfield", "win_rate", "2026-08-01"),
        "paid_search_lead_collapse": ("channel", "Paid Search", "leads", "2026-09-01"),
        "smb_churn_spike": ("segment", "SMB", "logo_churn_rate", "2026-09-01"),
        "mid_market_discounting": ("segment", "Mid-Market", "avg_deal_size", "2026-08-01"),
    }
    for pid, (dimension, segment, node, since) in expected.items():
        p = found[pid]
        assert (p.dimension, p.segment, p.node, p.since) == (dimension, segment, node, since)
        assert p.what and p.table in EXPECTED_COLUMNS
    assert generate(plant_problems=False, tables=["spend"]).problems == []


def test_planted_rep_win_rate_collapses(demo: DemoData) -> None:
    deals = closed(demo.tables["deals"])
    dana = deals[(deals["owner"] == "Dana Whitfield") & (deals["segment"] == "Enterprise")]
    before = win_rate(dana[dana["month"].isin(months("2026-02", "2026-06"))])
    after = win_rate(dana[dana["month"].isin(months("2026-08", "2026-10"))])
    assert after < 0.5 * before
    # the other Enterprise reps are fine
    others = deals[
        (deals["segment"] == "Enterprise") & (deals["deal_type"] == "new") & (deals["owner"] != "Dana Whitfield")
    ]
    assert win_rate(others[others["month"].isin(months("2026-08", "2026-10"))]) > 0.2


def test_planted_channel_lead_collapse(demo: DemoData) -> None:
    leads = demo.tables["leads"].assign(month=lambda x: x["created_date"].str[:7])
    per = leads.groupby(["channel", "month"]).size()
    assert per["Paid Search", "2026-10"] < 0.6 * per["Paid Search", "2026-06"]
    assert per["Organic", "2026-10"] > per["Organic", "2026-06"]
    spend = demo.tables["spend"].set_index(["channel", "month"])["amount"]
    assert spend["Paid Search", "2026-10-01"] > 0.9 * spend["Paid Search", "2026-06-01"]  # spend stays


def test_planted_smb_churn_spike(demo: DemoData) -> None:
    subs = demo.tables["subscriptions"]
    baseline = np.mean([logo_churn(subs, m, "SMB") for m in months("2026-01", "2026-06")])
    assert logo_churn(subs, "2026-10", "SMB") > 2 * baseline
    assert logo_churn(subs, "2026-10", "Mid-Market") < 2 * baseline


def test_planted_mid_market_discounting(demo: DemoData) -> None:
    deals = closed(demo.tables["deals"])
    won = deals[(deals["status"] == "won") & (deals["deal_type"] == "new")]
    mm = won[won["segment"] == "Mid-Market"]
    before = mm[mm["month"].isin(months("2026-02", "2026-06"))]["amount"].mean()
    after = mm[mm["month"].isin(months("2026-08", "2026-10"))]["amount"].mean()
    assert after < 0.8 * before
    smb = won[won["segment"] == "SMB"]
    smb_ratio = (
        smb[smb["month"].isin(months("2026-08", "2026-10"))]["amount"].mean()
        / smb[smb["month"].isin(months("2026-02", "2026-06"))]["amount"].mean()
    )
    assert smb_ratio > 0.85


def test_a_month_split_singles_out_the_planted_segments(demo: DemoData) -> None:
    """2026-10 vs 2026-06: the planted owner/segment moves its metric most (rate effect)."""
    deals = closed(demo.tables["deals"])

    def rate_effect(frame: pd.DataFrame, by: str, value: pd.Series) -> pd.Series:
        frame = frame.assign(value=value)
        a, b = frame[frame["month"] == "2026-06"], frame[frame["month"] == "2026-10"]
        share = b.groupby(by).size() / len(b)
        return (share * (b.groupby(by)["value"].mean() - a.groupby(by)["value"].mean())).dropna()

    by_owner = rate_effect(deals, "owner", (deals["status"] == "won").astype(float))
    assert by_owner.idxmin() == "Dana Whitfield"
    won = deals[deals["status"] == "won"]
    by_segment = rate_effect(won, "segment", won["amount"])
    assert by_segment.idxmin() == "Mid-Market"


# --- plan ----------------------------------------------------------------------------------------


def test_plan_covers_every_month_with_the_catalogue_names(demo: DemoData) -> None:
    plan = demo.scenario()["plan"]
    assert list(plan) == months(START[:7], f"{DEFAULT_AS_OF.year}-12")
    for values in plan.values():
        assert {"new_business_arr", "expansion_arr", "leads", "win_rate", "avg_deal_size", "mrr_churn"} <= set(values)
        assert 0.1 < values["win_rate"] < 0.6
    assert set(demo.scenario()["plan_by_segment"]["2026-10"]) == {"SMB", "Mid-Market", "Enterprise"}


def test_plan_is_what_the_business_does_without_problems(calm: DemoData) -> None:
    deals, leads, subs = calm.tables["deals"], calm.tables["leads"], calm.tables["subscriptions"]
    span = months("2025-07", "2026-10")
    plan = pd.DataFrame(calm.plan).T.loc[span]
    won = closed(deals)
    won = won[(won["status"] == "won") & won["month"].isin(span)]
    assert won[won["deal_type"] == "new"]["amount"].sum() == pytest.approx(plan["new_business_arr"].sum(), rel=0.1)
    assert won[won["deal_type"] == "expansion"]["amount"].sum() == pytest.approx(plan["expansion_arr"].sum(), rel=0.15)
    assert leads["created_date"].str[:7].isin(span).sum() == pytest.approx(plan["leads"].sum(), rel=0.05)
    assert mrr_at(subs, month_end("2026-10")).sum() == pytest.approx(plan.loc["2026-10", "mrr"], rel=0.1)


def test_the_problems_put_the_latest_month_well_below_plan(demo: DemoData) -> None:
    won = closed(demo.tables["deals"])
    october = won[(won["status"] == "won") & (won["deal_type"] == "new") & (won["month"] == "2026-10")]
    assert october["amount"].sum() < 0.85 * demo.plan["2026-10"]["new_business_arr"]


# --- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_write_demo_round_trip(small: DemoData, tmp_path: Path, compress: bool) -> None:
    paths = write_demo(small, tmp_path, compress=compress)
    suffix = ".csv.gz" if compress else ".csv"
    assert [p.name for p in paths] == [f"{name}{suffix}" for name in EXPECTED_COLUMNS] + ["scenario.json"]
    for name, frame in small.tables.items():
        back = pd.read_csv(tmp_path / f"{name}{suffix}", dtype=str, keep_default_na=False)
        assert len(back) == len(frame), name
        assert list(back.columns) == EXPECTED_COLUMNS[name]
    scenario = json.loads((tmp_path / "scenario.json").read_text(encoding="utf-8"))
    assert scenario == json.loads(json.dumps(small.scenario()))
    assert scenario["row_counts"]["deals"] == len(small.tables["deals"])
    if compress:  # the same data gives byte-identical archives
        again = write_demo(small, tmp_path / "again", compress=True)
        assert again[1].read_bytes() == paths[1].read_bytes()


# --- the plan the templates carry ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["revops", "team_executive", "team_customer_success"])
def test_the_templates_carry_the_plan_the_demo_makes(demo_data_dir, tmp_path: Path, name: str) -> None:
    """`python -m kpitree.demo_setup` writes the templates' targets from the shipped demo files: what they
    carry is what `demo_plan` makes from the data `make run` loads (no plan left behind by an older rule)."""
    from kpitree.demo_setup import ROOT, demo_plan, with_targets_of
    from kpitree.evaluate import Engine
    from kpitree.tree import load_tree, save_tree
    from kpitree.workspace import Workspace

    shipped = load_tree(ROOT / "data" / "trees" / f"{name}.yaml")
    scenario = json.loads((ROOT / "data" / "demo" / "scenario.json").read_text())
    planned = with_targets_of(shipped, demo_plan(Engine(Workspace(demo_data_dir / "demo")), shipped, scenario))
    save_tree(planned, tmp_path / "t.yaml")  # through YAML, as the file holds it
    again = load_tree(tmp_path / "t.yaml")
    assert {n.id: n.target for n in again.nodes} == {n.id: n.target for n in shipped.nodes}
    if "arr" in {n.id for n in again.nodes}:  # the plan keeps ARR's bridge: October opens where September closed
        arr = again.node("arr").target
        assert dict(again.node("arr_start").target.by_period)["2026-10"] == dict(arr.by_period)["2026-09"]


def test_retargeting_without_demo_files_says_what_to_do(tmp_path: Path, capsys) -> None:
    from kpitree.demo_setup import main

    assert main(["--demo-dir", str(tmp_path)]) == 2
    assert "no scenario.json in" in capsys.readouterr().err
