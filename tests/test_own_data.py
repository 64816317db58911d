"""Exports nobody here generated (tests/fixtures/own_data, written from vendors' documented headers):
each file is recognised or clearly refused, loads with at most a table choice, and reads right."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import ROOT, rows

from kpitree.errors import LoadError
from kpitree.ingest import detect_files, ingest

OWN = ROOT / "tests" / "fixtures" / "own_data"
SALESFORCE = sorted(OWN.glob("sf_*.csv"))
BILLING = [OWN / f for f in ("billing_subscriptions.csv", "churn_events.csv", "tickets_export.csv",
                             "data_dictionary.csv", "dim_date.csv")]
OLIST = [OWN / "olist_closed_deals_dataset.csv", OWN / "olist_marketing_qualified_leads_dataset.csv"]




# What a person would say each file is (EXPECTED.md): a table, or why it is not loaded.
EXPECTED = {
    "sf_Opportunity.csv": "deals", "sf_Lead.csv": "leads", "sf_Account.csv": "accounts", "sf_Campaign.csv": "spend",
    "sf_User.csv": "side", "sf_OpportunityHistory.csv": "ignored", "sf_Contact.csv": "ignored",
    "sf_CampaignMember.csv": "ignored", "billing_subscriptions.csv": "subscriptions", "churn_events.csv": "ignored",
    "tickets_export.csv": "tickets", "olist_marketing_qualified_leads_dataset.csv": "leads",
    "olist_closed_deals_dataset.csv": "deals", "leads_eu.csv": "leads", "data_dictionary.csv": "ignored",
    "dim_date.csv": "ignored", "telco_churn.csv": "needs a decision",
}


def test_every_file_is_recognised_as_a_person_would():
    got = {}
    for d in detect_files(None, sorted(OWN.glob("*.csv"))):
        got[d.file] = "needs a decision" if d.problem else d.table if d.role == "table" else d.role
        if d.role == "table":
            assert d.evidence, d.file  # the user sees why
    assert got == EXPECTED


def test_salesforce_objects_load_together_with_names_managers_and_segments(ws):
    report = ingest(ws, SALESFORCE)
    assert report.tables == {"accounts": 70, "spend": 8, "leads": 150, "deals": 126}
    assert dict(rows(ws, "SELECT status, count(*) FROM deals GROUP BY 1")) == {"won": 33, "lost": 72, "open": 21}
    # OwnerId → the user's name, and the manager above them, from the User export.
    assert rows(ws, "SELECT owner, manager FROM deals WHERE deal_id = '0065g00000eFm88AAC'")[0][1] == "Dana Whitfield"
    assert not rows(ws, "SELECT owner FROM deals WHERE owner LIKE '005%'")
    assert rows(ws, "SELECT count(*) FROM deals WHERE segment IS NOT NULL")[0][0] > 100  # from the Account file
    # A blank Type counts as new business, by a rule the report states.
    assert rows(ws, "SELECT count(*) FROM deals WHERE deal_type IS NULL") == [(0,)]
    opps = next(f for f in report.files if f.file == "sf_Opportunity.csv")
    assert any("blank or unrecognised 'Type' counts as new business" in r for r in opps.rules)
    assert any("several currencies" in w for w in opps.warnings)  # USD, EUR and GBP are not added silently
    assert rows(ws, "SELECT created_date::VARCHAR FROM deals WHERE deal_id = '0065g00000eFm88AAC'") == [
        ("2024-01-09",)]
    leads = next(f for f in report.files if f.file == "sf_Lead.csv")
    assert leads.rows_loaded == 150 and rows(ws, "SELECT count(*) FROM leads WHERE deal_id IS NOT NULL")[0][0] > 0
    ignored = {f.file for f in report.files if f.role == "ignored"}
    assert ignored == {"sf_OpportunityHistory.csv", "sf_Contact.csv", "sf_CampaignMember.csv"}


def test_opportunity_export_alone_keeps_owner_ids_and_says_how_to_name_them(ws):
    f = ingest(ws, [OWN / "sf_Opportunity.csv"]).files[0]
    assert f.rows_loaded == 126
    assert any("load the User export" in r for r in f.rules)


def test_billing_export_with_its_own_names(ws):
    report = ingest(ws, BILLING)
    assert report.tables == {"subscriptions": 113, "tickets": 139}
    subs = next(f for f in report.files if f.file == "billing_subscriptions.csv")
    assert subs.skipped == {"a totals row, not a record": 1} and subs.rows_rejected == 0
    # Two-digit years are this century, month-first as the column shows (01/24/24 exists).
    assert rows(ws, "SELECT min(start_date), max(start_date) FROM subscriptions") == [
        (date(2024, 1, 11), date(2025, 9, 29))]
    # MRR is the monthly column, the TOTAL row's own figure for what is active at the end.
    active = rows(ws, "SELECT round(sum(mrr), 2) FROM subscriptions WHERE end_date IS NULL")[0][0]
    assert active == pytest.approx(77853.61)
    notes = {f.file: " ".join(f.warnings) for f in report.files if f.role == "ignored"}
    assert "churn log" in notes["churn_events.csv"] and "data dictionary" in notes["data_dictionary.csv"]
    assert "calendar" in notes["dim_date.csv"]
    tickets = next(f for f in report.files if f.file == "tickets_export.csv")
    assert tickets.duplicate_ids == 1 and tickets.mapping["resolved_at"] == "closed_at"


def test_won_deals_funnel_without_amounts(ws):
    report = ingest(ws, OLIST)
    assert report.tables == {"deals": 42, "leads": 116}
    deals = next(f for f in report.files if f.file == "olist_closed_deals_dataset.csv")
    text = " ".join(deals.rules)
    assert "every row is a won deal" in text and "linked lead's created date" in text and "no amount" in text
    assert dict(rows(ws, "SELECT status, count(*) FROM deals GROUP BY 1")) == {"won": 42}
    assert rows(ws, "SELECT count(amount), count(DISTINCT owner), count(channel) FROM deals") == [(0, 4, 42)]
    # The created date and channel come from the MQL each deal links to.
    linked = rows(ws, "SELECT count(*) FROM deals d JOIN leads l ON l.lead_id = d.deal_id "
                      "WHERE d.created_date = l.created_date AND d.channel IS NOT DISTINCT FROM l.channel")[0][0]
    assert linked == 42
    # ... and each MQL that became a deal knows it: lead conversion can be counted.
    assert rows(ws, "SELECT count(*) FROM leads WHERE deal_id IS NOT NULL") == [(42,)]
    mqls = next(f for f in report.files if f.file == OLIST[1].name)
    assert any("42 lead(s) given the deal that names them" in r for r in mqls.rules)


def test_won_deals_alone_take_the_close_date_and_say_so(ws):
    f = ingest(ws, [OLIST[0]]).files[0]
    assert f.rows_loaded == 42
    assert rows(ws, "SELECT count(*) FROM deals WHERE created_date = close_date") == [(42,)]


def test_european_funnel_reads_day_first_per_column(ws):
    f = ingest(ws, [OWN / "leads_eu.csv"]).files[0]
    assert f.rows_loaded == 138 and f.encoding != "utf-8"
    assert rows(ws, "SELECT min(created_date), max(created_date) FROM leads") == [
        (date(2024, 1, 1), date(2025, 8, 31))]
    assert rows(ws, "SELECT owner FROM leads WHERE lead_id = 'L-2024-0001'") == [("Sophie Groß",)]


def test_snapshot_without_dates_is_refused_with_what_it_lacks(ws):
    with pytest.raises(LoadError, match=r"telco_churn\.csv: looks like 'subscriptions'.* lacks required column\(s\) "
                                        r"'start_date'\. It has no date column at all"):
        ingest(ws, [OWN / "telco_churn.csv"])
    assert ws.tables() == []


def test_two_files_for_one_table_are_refused_unless_combined(ws, tmp_path):
    other = tmp_path / "more_leads.csv"
    other.write_text("lead_id,created_date,channel\nX1,2024-05-01,Web\n", encoding="utf-8")
    with pytest.raises(LoadError, match=r"leads_eu\.csv and more_leads\.csv would all load into 'leads'"):
        ingest(ws, [OWN / "leads_eu.csv", other])
    assert ingest(ws, [OWN / "leads_eu.csv", other], combine=True).tables == {"leads": 139}


def test_a_table_choice_and_a_given_mapping_per_file(ws, tmp_path):
    mapping = {"table": "deals", "columns": {"deal_id": "mql_id", "close_date": "won_date", "owner": "sdr_id"},
               "fill": {"status": "won", "deal_type": "expansion"}, "derive": {"created_date": "close"}}
    f = ingest(ws, [OLIST[0]], mappings={"olist_closed_deals_dataset.csv": mapping}).files[0]
    assert f.source == "given" and f.rows_loaded == 42
    assert rows(ws, "SELECT DISTINCT deal_type, status FROM deals") == [("expansion", "won")]
    # --as: the churn log read as subscriptions is refused for what it lacks, naming the file.
    with pytest.raises(LoadError, match=r"churn_events\.csv: missing required column\(s\) 'start_date', 'mrr'"):
        ingest(ws, [OWN / "churn_events.csv"], tables={"churn_events.csv": "subscriptions"})


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpitree", *args], cwd=ROOT, capture_output=True, text=True)


def test_command_line_as_skip_map_and_combine(tmp_path):
    ws = str(tmp_path / "w")
    run = cli("ingest", "--workspace", ws, *map(str, BILLING), str(OWN / "telco_churn.csv"))
    assert run.returncode == 2 and "telco_churn.csv" in run.stderr and "--skip telco_churn.csv" in run.stderr
    # The command line names its own flags, not the Upload page's 'Load as' box.
    assert "--as telco_churn.csv=TABLE" in run.stderr and "Load as" not in run.stderr
    run = cli("ingest", "--workspace", ws, *map(str, BILLING), str(OWN / "telco_churn.csv"), "--skip",
              "telco_churn.csv", "--format", "json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["tables"] == {"subscriptions": 113, "tickets": 139}
    assert {f["file"]: f["role"] for f in report["files"]}["telco_churn.csv"] == "skipped"
    mapping = tmp_path / "olist.json"
    mapping.write_text(json.dumps({"table": "deals", "columns": {"deal_id": "mql_id", "close_date": "won_date"},
                                   "fill": {"status": "won"}, "derive": {"created_date": "close"}}))
    run = cli("ingest", "--workspace", ws, str(OLIST[0]), "--map", f"olist_closed_deals_dataset.csv={mapping}")
    assert run.returncode == 0, run.stderr
    assert "your mapping" in run.stdout
    run = cli("ingest", "--workspace", ws, str(OWN / "tickets_export.csv"), "--as", "tickets_export.csv=nps")
    assert run.returncode == 2 and "missing required column(s) 'score' for table 'nps'" in run.stderr
    run = cli("ingest", "--workspace", ws, str(OWN / "tickets_export.csv"), "--as", "tickets.csv")
    assert run.returncode == 2 and "expected FILE=TABLE" in run.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"table": "deals", "columns": {"deal_idd": "mql_id"}}')
    run = cli("ingest", "--workspace", ws, str(OLIST[0]), "--map", f"olist_closed_deals_dataset.csv={bad}")
    assert run.returncode == 2 and "'deal_idd' is not a column of 'deals'" in run.stderr


def test_the_command_line_names_a_file_choice_that_matches_nothing(tmp_path):
    run = cli("ingest", "--workspace", str(tmp_path / "w"), str(OWN / "leads_eu.csv"), "--skip", "leads.csv")
    assert run.returncode == 2 and "'leads.csv', which is not among the files of this load" in run.stderr


def test_saved_mapping_round_trip_with_constants(ws):
    from kpitree.vendors import header_key

    d = detect_files(ws, [OWN / "churn_events.csv"], tables={"churn_events.csv": "nps"})[0]
    assert d.chosen == "nps" and d.needs_mapping and d.missing == ["date", "score"]
    headers = d.headers
    ws.save_mapping(header_key(headers), headers, "nps", {"account_id": "account_id", "date": "churn_date"},
                    fill={}, file="churn_events.csv")
    saved = ws.mappings()[header_key(headers)]
    assert saved["file"] == "churn_events.csv" and saved["fill"] == {}
    again = detect_files(ws, [OWN / "churn_events.csv"], tables={"churn_events.csv": "nps"})[0]
    assert again.source == "saved" and again.problem and "score" in again.problem
    ws.delete_mapping(header_key(headers))
    assert ws.mappings() == {}


@pytest.mark.parametrize("text, expected", [
    ("03/06/24", date(2024, 3, 6)), ("12/31/99", date(2099, 12, 31)), ("2024-01-22T16:14:25.000+0000",
                                                                       date(2024, 1, 22)),
])
def test_two_digit_years_are_this_century(ws, tmp_path, text, expected):
    path = tmp_path / "leads.csv"
    path.write_text(f"lead_id,created_date\nL1,{text}\nL2,01/24/24\n", encoding="utf-8")
    ingest(ws, [path])
    assert rows(ws, "SELECT created_date FROM leads WHERE lead_id = 'L1'") == [(expected,)]


def test_day_month_order_is_decided_per_column(ws, tmp_path):
    path = Path(tmp_path) / "leads.csv"
    # created_date is day-first (31/01), mql_date month-first (01/31): each column decides for itself.
    path.write_text("lead_id,created_date,mql_date\nL1,31/01/2024,01/31/2024\nL2,05/02/2024,02/05/2024\n",
                    encoding="utf-8")
    ingest(ws, [path])
    assert rows(ws, "SELECT created_date, mql_date FROM leads WHERE lead_id = 'L2'") == [
        (date(2024, 2, 5), date(2024, 2, 5))]


def test_a_log_that_ends_early_is_no_data_after_its_last_day_not_zero(ws):
    from kpitree.evaluate import Engine
    from kpitree.metrics import metric
    from kpitree.periods import parse_period

    ingest(ws, OLIST)  # the MQLs end in May 2018, the won deals run to October
    engine = Engine(ws)
    assert engine.covers(metric("leads"), parse_period("2018-05"))
    assert not engine.covers(metric("leads"), parse_period("2018-09"))
    assert engine.covers(metric("opportunities_created"), parse_period("2018-09"))
