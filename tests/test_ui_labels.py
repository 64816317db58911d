"""The Split by radio's labels: a column name as a reader says it, the column name kept as the value."""

from __future__ import annotations

import pytest

from ui import dimension_label


@pytest.mark.parametrize(("column", "label", "inline"), [
    ("deal_pipeline", "Deal pipeline", "deal pipeline"),  # trial 3: Zoho's Pipeline column
    ("lead_source", "Lead source", "lead source"),
    ("owner", "Owner", "owner"),
    ("owner × segment", "Owner × segment", "owner × segment"),  # a pair, as the explanation names it
    ("segment × csm", "Segment × CSM", "segment × CSM"),  # acronyms stay upper case
    ("utm_source", "UTM source", "UTM source"),
    ("leadSource", "Lead source", "lead source"),  # camelCase from an API export
    ("Deal Pipeline", "Deal pipeline", "deal pipeline"),
    ("campaign-source.v2", "Campaign source v2", "campaign source v2"),
])
def test_dimension_labels(column, label, inline):
    assert dimension_label(column) == label
    assert dimension_label(column, capital=False) == inline


def test_the_split_radio_shows_labels_and_keeps_the_column_in_the_url(tmp_path, monkeypatch):
    """Trial 3: the radio read `deal_pipeline`, `lead_source`. A `sales_region` column reads "Sales region";
    the widget's value and the link's `?split=` stay the column name, the heading says "By sales region"."""
    import csv

    from apptest_utils import failures, unescaped
    from conftest import ROOT
    from streamlit.testing.v1 import AppTest

    from kpitree.ingest import ingest
    from kpitree.workspace import Workspace

    source = ROOT / "tests" / "fixtures" / "trial" / "hubspot-deals-export-2026-12-06.csv"
    with source.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    regions = ("EMEA", "Americas", "APAC")  # an extra column the export carries: a split of its own
    rows = [[*rows[0], "Sales Region"], *([*r, regions[i % 3]] for i, r in enumerate(rows[1:]))]
    export = tmp_path / "deals-export.csv"
    with export.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    ingest(Workspace(tmp_path / "data" / "hub", create=True), [export])
    monkeypatch.setenv("KPITREE_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params.update({"ws": "hub", "node": "win_rate", "split": "sales_region"})
    at.run()
    assert not failures(at)
    split = at.radio(key="dim_win_rate")
    assert "Sales region" in split.options and "sales_region" not in split.options
    assert split.value == "sales_region" and at.query_params["split"] == "sales_region"
    assert any(unescaped(c.value).startswith("**By sales region** —") for c in at.caption)
    split.set_value("owner").run()
    assert at.query_params["split"] == "owner"
