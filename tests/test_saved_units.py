"""A mapping saved with a money column's unit ("cents") is applied on every later load of that header set."""

from __future__ import annotations

import pytest

from kpitree.errors import KpiTreeError
from kpitree.ingest import ingest
from kpitree.vendors import header_key
from kpitree.workspace import Workspace

HEADERS = ["Opp", "Rep", "Opened", "Closed", "Outcome", "Value"]
ROWS = """Opp,Rep,Opened,Closed,Outcome,Value
O1,Ann,2026-09-01,2026-10-03,won,1250000
O2,Ann,2026-09-02,2026-10-04,lost,990000
"""


def test_a_saved_unit_of_cents_divides_the_amounts(tmp_path):
    """$12,500.00 written as 1250000 cents: the saved mapping says so, and the deal loads at $12,500."""
    ws = Workspace(tmp_path / "ws", create=True)
    columns = {"deal_id": "Opp", "owner": "Rep", "created_date": "Opened", "close_date": "Closed",
               "status": "Outcome", "amount": "Value"}
    ws.save_mapping(header_key(HEADERS), HEADERS, "deals", columns, units={"amount": "cents"})
    path = tmp_path / "opps.csv"
    path.write_text(ROWS)
    ingest(ws, [path])
    with ws.connect() as con:
        amounts = sorted(r[0] for r in con.execute("SELECT amount FROM deals").fetchall())
    assert amounts == [9900.0, 12500.0]


def test_a_unit_is_cents_or_units(tmp_path):
    ws = Workspace(tmp_path / "ws", create=True)
    with pytest.raises(KpiTreeError, match="'cents' or 'units'"):
        ws.save_mapping(header_key(HEADERS), HEADERS, "deals", {"deal_id": "Opp"}, units={"amount": "pennies"})
