"""A load's warnings, kept with it and read back per table's latest load."""

from __future__ import annotations

import json

from kpitree.ingest import ingest
from kpitree.loads import latest_warnings, stored_warnings
from kpitree.workspace import Workspace

HEADER = "deal_id,account_id,owner,created_date,close_date,stage,status,amount,deal_type,segment,channel"


def test_only_the_latest_load_of_a_table_speaks(tmp_path):
    ws = Workspace(tmp_path / "ws", create=True)
    first = tmp_path / "deals.csv"
    first.write_text(f"{HEADER}\nD1,A1,Ann,2026-01-05,,Won,won,100,new,SMB,Organic\n")  # won, no close date
    ingest(ws, [first])
    assert any("no close_date" in w for w in latest_warnings(ws))
    fixed = tmp_path / "deals_fixed.csv"
    fixed.write_text(f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,100,new,SMB,Organic\n")
    ingest(ws, [fixed])  # replaces the table: the old file's warning no longer applies
    assert not any("no close_date" in w for w in latest_warnings(ws))


def test_a_damaged_or_old_record_has_no_warnings():
    assert stored_warnings({"file": "a.csv", "warnings": None}) == []
    assert stored_warnings({"file": "a.csv", "warnings": "not json"}) == []
    assert stored_warnings({"file": "a.csv", "warnings": json.dumps({"x": 1})}) == []
    assert stored_warnings({"file": "a.csv", "warnings": json.dumps(["blank amounts", 3])}) == ["a.csv: blank amounts"]
