"""A workspace's "data as of" day is the latest fact in its files that has happened, never a day to come."""

from __future__ import annotations

from datetime import date, timedelta

from conftest import make_workspace


def test_scheduled_dates_do_not_move_the_as_of_day_past_today(tmp_path):
    """A Recurly export lists a subscription that starts next week and one that ends next month; a deals
    export an open deal expected to close next month. None has happened: the data is as of the latest
    day that has (trial 3 read "data as of 2026-12-12" on 2026-12-07)."""
    today = date.today()
    past, soon, later = today - timedelta(days=30), today + timedelta(days=5), today + timedelta(days=40)
    ws = make_workspace(tmp_path, subscriptions=f"""customer_id,start_date,end_date,mrr
C1,{past - timedelta(days=60)},{later},100
C2,{past},,50
C3,{soon},,70
""", deals=f"""deal_id,owner,created_date,close_date,stage,status,amount
D1,Ann,{past - timedelta(days=10)},{past - timedelta(days=3)},Closed Won,won,1000
D2,Ann,{past - timedelta(days=2)},{later},Proposal,open,500
""")
    assert ws.as_of() == past  # C2's start: the latest thing that happened
