"""A deal export that leaves some amounts blank: a blank is an unknown amount, not a $0 deal."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpitree.evaluate import Engine
from kpitree.ingest import ingest
from kpitree.periods import parse_period
from kpitree.workspace import Workspace

HUBSPOT = Path(__file__).resolve().parent / "fixtures" / "exports" / "hubspot-crm-exports-all-deals-2026-11-02.csv"


@pytest.fixture
def ws(tmp_path) -> Workspace:
    text = HUBSPOT.read_text(encoding="utf-8")
    # Acme's won deal of 2026-09 without its amount, as a CRM exports a deal nobody priced
    text = text.replace('"Ana Ruiz","24000","24000","USD"', '"Ana Ruiz","","","USD"', 1)
    src = tmp_path / "deals.csv"
    src.write_text(text, encoding="utf-8")
    ws = Workspace(tmp_path / "ws", create=True)
    report = ingest(ws, [src])
    assert any("no value in 'Amount" in w and "unknown, not $0" in w for f in report.files for w in f.warnings)
    return ws


def value(ws: Workspace, metric: str, period: str) -> float:
    return float(Engine(ws).query(metric, [parse_period(period)])["value"].iloc[0])


def test_a_blank_amount_loads_as_unknown_and_stays_out_of_the_average(ws):
    with ws.connect() as con:
        amount = con.execute("SELECT amount FROM deals WHERE deal_id = '189164774901'").fetchone()[0]
    assert amount is None
    # won in 2026-09 with an amount: Globex 6,000, Wayne 9,000, Tyrell 4,500 (Acme's is blank)
    assert value(ws, "avg_deal_size", "2026-09") == pytest.approx((6000 + 9000 + 4500) / 3)
    assert value(ws, "won_deals", "2026-09") == 4  # a count still includes the deal without an amount
