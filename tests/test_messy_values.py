"""Real, messy exports: amounts in several currencies and number forms, and one label spelled many ways.

Every expected value below is worked out by hand from the fixture files in `tests/fixtures/messy/`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import rows

from kpitree.evaluate import Engine
from kpitree.ingest import LoadReport, ingest
from kpitree.normalise import Merge, number_format, plan_merges
from kpitree.periods import parse_period
from kpitree.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
MESSY = ROOT / "tests" / "fixtures" / "messy"


def load(tmp_path: Path, *files: Path) -> tuple[Workspace, LoadReport]:
    ws = Workspace(tmp_path / "ws", create=True)
    return ws, ingest(ws, list(files))



def notes(report: LoadReport) -> list[str]:
    return [n for f in report.files for n in (*f.rules, *f.warnings)]


# --- amounts ---------------------------------------------------------------------------------------


def test_a_euro_amount_with_a_dot_group_is_thousands_and_mixed_currencies_are_named(tmp_path):
    ws, report = load(tmp_path, MESSY / "deals_currencies.csv")
    amounts = dict(rows(ws, "SELECT deal_id, amount FROM deals"))
    assert amounts["D2"] == 3400.0  # €3.400: a euro amount never has three decimals
    assert amounts["D1"] == 12500.0  # $12,500.00
    assert amounts["D3"] == 1250.5  # $1,250.50
    assert amounts["D4"] == 980.0
    currencies = [w for w in notes(report) if "mixes currencies" in w]
    assert currencies == ["'amount' mixes currencies — USD (first on line 2), EUR (first on line 3): amounts in "
                          "several currencies are added as they are: convert them first or load one currency "
                          "per workspace"]


def test_an_undecidable_value_follows_the_column_and_is_reported_with_its_line(tmp_path):
    ws, report = load(tmp_path, MESSY / "deals_currencies.csv")
    # D6 "3.400" has no symbol and the column is written 1,234.50 (six values show it): 3.4, with a warning
    assert rows(ws, "SELECT amount FROM deals WHERE deal_id = 'D6'") == [(3.4,)]
    either = [w for w in notes(report) if "could be read either way" in w]
    assert len(either) == 1
    assert "1 value(s) such as '3.400' (first on line 7)" in either[0]
    assert "read the US way" in either[0] and "3.400 = 3.4 " in either[0]


def test_a_european_column_reads_its_ambiguous_values_the_european_way(tmp_path):
    ws, report = load(tmp_path, MESSY / "deals_european.csv")
    amounts = dict(rows(ws, "SELECT deal_id, amount FROM deals"))
    assert amounts == {"E1": 1250.5, "E2": 3400.0, "E3": 12000.0, "E4": 980.0, "E5": 2000.0, "E6": 7.5}
    either = sorted(w for w in notes(report) if "could be read either way" in w)
    assert len(either) == 2
    assert "'3.400' (first on line 3)" in either[0] and "3.400 = 3,400 " in either[0]
    assert "'7,500' (first on line 7)" in either[1] and "7,500 = 7.5 " in either[1]
    assert not [w for w in notes(report) if "mixes currencies" in w]  # one currency: nothing to say


def test_a_column_with_no_telling_value_says_so(tmp_path):
    src = tmp_path / "deals.csv"
    src.write_text("deal_id,created_date,status,amount\nA,2026-09-01,open,3.400\nB,2026-09-02,open,12500\n",
                   encoding="utf-8")
    ws, report = load(tmp_path, src)
    assert rows(ws, "SELECT amount FROM deals ORDER BY deal_id") == [(3.4,), (12500.0,)]
    either = [w for w in notes(report) if "could be read either way" in w]
    assert len(either) == 1 and "line 2" in either[0] and "no value in the column shows its form" in either[0]


def test_plain_us_amounts_load_without_any_new_note(tmp_path):
    src = tmp_path / "deals.csv"
    src.write_text('deal_id,created_date,status,amount\nA,2026-09-01,open,"1,500"\nB,2026-09-02,open,12500.50\n'
                   'C,2026-09-03,open,"$2,000,000"\n', encoding="utf-8")
    ws, report = load(tmp_path, src)
    assert rows(ws, "SELECT amount FROM deals ORDER BY deal_id") == [(1500.0,), (12500.5,), (2000000.0,)]
    assert not [n for n in notes(report) if "amount" in n and ("either way" in n or "currenc" in n or "way (" in n)]


# --- labels ----------------------------------------------------------------------------------------


def test_country_spellings_merge_into_one_segment_that_sums_to_its_parts(tmp_path):
    ws, report = load(tmp_path, MESSY / "deals_currencies.csv")
    # US 12,500 + USA 1,250.50 + United States 980 + U.S. 2,000 + us 500 (open)
    assert rows(ws, "SELECT count(*), sum(amount) FROM deals WHERE segment = 'United States'") == [(5, 17230.5)]
    assert rows(ws, "SELECT DISTINCT segment FROM deals ORDER BY 1") == [("Germany",), ("United Kingdom",),
                                                                          ("United States",)]
    assert "merged spellings: segment: 'U.S.', 'US', 'USA', 'us' → 'United States' (4 rows)" in notes(report)
    assert "merged spellings: segment: 'UK' → 'United Kingdom' (1 row)" in notes(report)
    # owners are people: 'Ana Ruiz' and 'ana ruiz' stay two
    assert rows(ws, "SELECT count(DISTINCT owner) FROM deals") == [(3,)]
    # the merged segment is what a split by segment sees: won deals of 2026-09, US ones 12,500 + 1,250.50 + 980 + 2,000
    with ws.connect() as con:
        split = dict(con.execute("SELECT segment, sum(amount) FROM deals WHERE status = 'won' GROUP BY 1").fetchall())
    assert split == {"United States": 16730.5, "United Kingdom": 7003.4, "Germany": 3400.0}


def test_case_and_space_variants_merge_to_the_most_frequent_spelling(tmp_path):
    ws, report = load(tmp_path, MESSY / "deals_european.csv")
    assert rows(ws, "SELECT segment, count(*) FROM deals GROUP BY 1 ORDER BY 1") == [("Annual", 1), ("Monthly", 5)]
    assert rows(ws, "SELECT channel, count(*) FROM deals GROUP BY 1 ORDER BY 1") == [("Direct", 2), ("Partner", 4)]
    assert "merged spellings: segment: 'MONTHLY', 'monthly' → 'Monthly' (2 rows)" in notes(report)
    assert "merged spellings: channel: 'partner' → 'Partner' (1 row)" in notes(report)


def test_an_unmapped_country_column_is_merged_too(tmp_path):
    src = tmp_path / "deals.csv"
    src.write_text("deal_id,created_date,status,amount,billing_country\nA,2026-09-01,open,10,GB\n"
                   "B,2026-09-02,open,20,Great Britain\nC,2026-09-03,open,30,gb\nD,2026-09-04,open,40,France\n",
                   encoding="utf-8")
    ws, report = load(tmp_path, src)
    assert rows(ws, "SELECT billing_country, sum(amount) FROM deals GROUP BY 1 ORDER BY 1") == [
        ("France", 40.0), ("United Kingdom", 60.0)]


def test_the_billing_exports_country_column_becomes_one_name_per_country(tmp_path):
    # counted by hand in the file: US 33 + USA 17 + United States 12; GB 7 + United Kingdom 6 + UK 5; …
    ws, report = load(tmp_path, ROOT / "tests" / "fixtures" / "own_data" / "billing_subscriptions.csv")
    assert rows(ws, "SELECT country, count(*) FROM subscriptions GROUP BY 1 ORDER BY 1") == [
        ("Australia", 3), ("Canada", 10), ("France", 4), ("Germany", 11), ("Netherlands", 4), ("United Kingdom", 18),
        ("United States", 62), (None, 1)]
    assert rows(ws, "SELECT billing_period, count(*) FROM subscriptions GROUP BY 1 ORDER BY 1") == [
        ("annual", 53), ("monthly", 60)]
    assert "merged spellings: country: 'US', 'USA' → 'United States' (50 rows)" in notes(report)
    assert "merged spellings: billing_period: 'Monthly' → 'monthly' (2 rows)" in notes(report)


def test_plan_merges_rules():
    assert plan_merges({"US": 4}) == []  # a lone spelling is left as it is
    assert plan_merges({"US": 4, "Enterprise": 2}) == []
    assert plan_merges({"GB": 1, "Great Britain": 2, "UK": 3}) == [
        Merge("United Kingdom", ("GB", "Great Britain", "UK"), 6)]
    assert plan_merges({"monthly": 3, "Monthly": 3, "MONTHLY": 1}) == [Merge("Monthly", ("MONTHLY", "monthly"), 4)]
    assert plan_merges({"Mid  Market": 1, "mid market": 5}) == [Merge("mid market", ("Mid  Market",), 1)]
    assert plan_merges({"US": 1, "usa": 1}, countries=False) == []
    # where two spellings of a country meet, the lone codes beside them take their names too
    assert plan_merges({"US": 2, "USA": 1, "FR": 4, "Germany": 1}) == [
        Merge("France", ("FR",), 4), Merge("United States", ("US", "USA"), 3)]
    assert number_format(3, 1, default_european=True).european is False
    assert number_format(0, 0, default_european=True).european is True
    assert number_format(0, 0, default_european=False).decided is False


# --- the demo data does not move -------------------------------------------------------------------

# Recorded over the demo files (data/demo/*.csv.gz) with the ingest before merging and money forms existed.
DEMO_BEFORE = {
    ("leads", "2026-06"): 3088.0, ("leads", "2026-Q3"): 8802.0,
    ("new_arr", "2026-06"): 10399153.079999994, ("new_arr", "2026-Q3"): 23162025.96000001,
    ("won_deals", "2026-06"): 332.0, ("won_deals", "2026-Q3"): 931.0,
    ("avg_deal_size", "2026-06"): 53713.29397590369, ("avg_deal_size", "2026-Q3"): 47616.6819763695,
    ("mrr", "2026-06"): 11311929.870000008, ("mrr", "2026-Q3"): 12931479.690000003,
    ("win_rate", "2026-06"): 0.31861804222648754, ("win_rate", "2026-Q3"): 0.31623641304347827,
}


def _demo_values(ws: Workspace) -> dict[tuple[str, str], float]:
    engine = Engine(ws)
    return {(m, p): float(engine.query(m, [parse_period(p)])["value"].iloc[0]) for m, p in DEMO_BEFORE}


def test_the_demo_data_loads_exactly_as_before(tmp_path, demo_data_dir):
    files = sorted((ROOT / "data" / "demo").glob("*.csv.gz"))
    ws, report = load(tmp_path, *files)
    assert not [n for n in notes(report) if "merged spellings" in n or "either way" in n or "currenc" in n]
    fresh = _demo_values(ws)
    assert fresh == pytest.approx(DEMO_BEFORE, rel=1e-12)
    copy = tmp_path / "demo_copy"
    shutil.copytree(demo_data_dir / "demo", copy)
    assert _demo_values(Workspace(copy)) == pytest.approx(fresh, rel=1e-12)
    with ws.connect() as con:
        assert con.execute("SELECT count(DISTINCT segment), count(DISTINCT channel) FROM deals").fetchone() == (3, 6)
        assert con.execute("SELECT count(DISTINCT plan) FROM subscriptions").fetchone()[0] == 4
        assert con.execute("SELECT sum(amount) FROM deals").fetchone()[0] == pytest.approx(827971229.2599983)
