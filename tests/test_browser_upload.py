"""The Upload page in Chromium: drop real exports on the uploader, load them, read the report."""

from __future__ import annotations

import pytest
from conftest import ARTIFACTS, ROOT
from playwright.sync_api import expect

from kpitree.workspace import Workspace, create_workspace, delete_workspace

EXPORTS = ROOT / "tests" / "fixtures" / "exports"


@pytest.mark.flaky(reruns=2)  # a real browser on a shared 2-core machine
def test_upload_exports_and_see_the_report(page, app_url, demo_data_dir):
    # A workspace of its own, so the demo other browser tests read stays as it is.
    if (demo_data_dir / "upload-test").exists():  # a retry after a failed attempt starts over
        delete_workspace(demo_data_dir, "upload-test")
    create_workspace(demo_data_dir, "upload-test")
    page.goto(f"{app_url}/Upload?ws=upload-test")
    uploader = page.get_by_test_id("stFileUploaderDropzoneInput")
    uploader.wait_for(state="attached", timeout=60000)
    uploader.set_input_files([str(EXPORTS / "hubspot-crm-exports-all-deals-2026-11-02.csv"),
                              str(EXPORTS / "subscriptions.csv")])
    load = page.get_by_role("button", name="Load 2 files into 'upload-test' (replace)")
    load.wait_for(timeout=30000)
    main = page.get_by_test_id("stMain")
    assert "HubSpot deals export" in main.inner_text() and "Stripe subscriptions export" in main.inner_text()
    load.click()
    page.get_by_text("Loaded 13 rows").wait_for(timeout=30000)
    body = main.inner_text()
    assert "Data-quality report" in body and "Stages → open / won / lost" in body
    assert "'#09 WON' → won" in body  # the guessed stage is called out
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(ARTIFACTS / "upload_report.png"), full_page=True)
    ws = Workspace(demo_data_dir / "upload-test")
    assert ws.row_counts() == {"deals": 8, "subscriptions": 5}


OWN = ROOT / "tests" / "fixtures" / "own_data"


@pytest.mark.flaky(reruns=2)
def test_upload_a_batch_skip_one_file_override_another(page, app_url, demo_data_dir):
    """A billing batch nobody here generated: the snapshot is skipped, the churn log is recognised and left out,
    the ticket export is first read as the wrong table and then set right, and the report says it all."""
    if (demo_data_dir / "own-data").exists():  # a retry after a failed attempt starts over
        delete_workspace(demo_data_dir, "own-data")
    create_workspace(demo_data_dir, "own-data")
    page.goto(f"{app_url}/Upload?ws=own-data")
    uploader = page.get_by_test_id("stFileUploaderDropzoneInput")
    uploader.wait_for(state="attached", timeout=60000)
    files = ["billing_subscriptions.csv", "churn_events.csv", "tickets_export.csv", "telco_churn.csv"]
    uploader.set_input_files([str(OWN / f) for f in files])
    main = page.get_by_test_id("stMain")
    page.get_by_text("It has no date column at all").first.wait_for(timeout=30000)

    def choose(file: str, option: str) -> None:
        # One "Load as" box per file, in the order of the upload; wait for the rerun to show the choice.
        box = page.get_by_test_id("stSelectbox").filter(has_text="Load as").nth(files.index(file))
        box.click()
        page.get_by_role("option", name=option, exact=True).click()
        expect(page.get_by_role("option", name=option, exact=True)).to_have_count(0, timeout=30000)

    choose("tickets_export.csv", "table nps")
    page.get_by_text("missing required column(s) 'score' for table 'nps'").first.wait_for(timeout=30000)
    choose("tickets_export.csv", "table tickets")
    expect(page.get_by_text("for table 'nps'")).to_have_count(0, timeout=30000)
    choose("telco_churn.csv", "skip this file")
    load = page.get_by_role("button", name="Load 4 files into 'own-data' (replace)")
    load.wait_for(timeout=30000)
    load.click()
    page.get_by_text("Loaded 252 rows").wait_for(timeout=30000)
    page.get_by_text("telco_churn.csv: not loaded — skipped at your request").wait_for(timeout=30000)
    body = main.inner_text()
    assert "telco_churn.csv: not loaded — skipped at your request" in body
    assert "churn_events.csv: not loaded" in body
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(ARTIFACTS / "upload_own_data.png"), full_page=True)
    assert Workspace(demo_data_dir / "own-data").row_counts() == {"subscriptions": 113, "tickets": 139}
