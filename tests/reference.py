"""An independent, straightforward pandas implementation of the revenue and bookings metrics.

Written from PRODUCT.md's definitions without looking at the SQL, it is the yardstick twice:
tests compare the engine with it to the cent, and the engine benchmark times it as the
"plain pandas" baseline.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd


def _d(x: date) -> pd.Timestamp:
    return pd.Timestamp(x)


def prepare(deals: pd.DataFrame | None, subs: pd.DataFrame | None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Parses date columns once (as a pandas user would after read_csv)."""
    if deals is not None:
        deals = deals.copy()
        for c in ("created_date", "close_date"):
            deals[c] = pd.to_datetime(deals[c])
        deals["amount"] = deals["amount"].astype(float)
    if subs is not None:
        subs = subs.copy()
        for c in ("start_date", "end_date"):
            subs[c] = pd.to_datetime(subs[c])
        subs["mrr"] = subs["mrr"].astype(float)
    return deals, subs


def deal_metrics(deals: pd.DataFrame, start: date, end: date, deal_type: str | None = None) -> dict[str, float]:
    """Bookings metrics for [start, end]; `deal_type` filters every metric like a node filter."""
    d = deals if deal_type is None else deals[deals["deal_type"] == deal_type]
    closed = d[(d["close_date"] >= _d(start)) & (d["close_date"] <= _d(end))]
    won = closed[closed["status"] == "won"]
    lost = closed[closed["status"] == "lost"]
    n_won, n_dec = len(won), len(won) + len(lost)
    opened = d[(d["created_date"] <= _d(start)) & ((d["status"] == "open") | (d["close_date"] >= _d(start)))]
    cycle = (won["close_date"] - won["created_date"]).dt.days
    out = {
        "new_business_arr": float(won.loc[won["deal_type"] == "new", "amount"].sum()),
        "expansion_arr": float(won.loc[won["deal_type"] == "expansion", "amount"].sum()),
        "won_deals": float(n_won),
        "closed_deals": float(n_dec),
        "win_rate": n_won / n_dec if n_dec else np.nan,
        "avg_deal_size": float(won["amount"].mean()) if n_won else np.nan,
        "sales_cycle_days": float(cycle.mean()) if n_won else np.nan,
        "opportunities_created": float(((d["created_date"] >= _d(start)) & (d["created_date"] <= _d(end))).sum()),
        "open_pipeline": float(opened["amount"].sum()),
        "open_deals": float(len(opened)),
    }
    out["new_arr"] = out["new_business_arr"] + out["expansion_arr"]
    rate = out["win_rate"]
    out["pipeline_velocity"] = (
        out["open_deals"] * out["avg_deal_size"] * rate / out["sales_cycle_days"]
        if n_won and out["sales_cycle_days"] else np.nan
    )
    return out


def _mrr_at(subs: pd.DataFrame, day: date) -> pd.Series:
    t = _d(day)
    live = subs[(subs["start_date"] <= t) & (subs["end_date"].isna() | (subs["end_date"] > t))]
    return live.groupby("customer_id")["mrr"].sum()


def revenue_metrics(subs: pd.DataFrame, start: date, end: date) -> dict[str, float]:
    """MRR and its movements between the end of the previous period and the end of this one."""
    m0 = _mrr_at(subs, start - timedelta(days=1))
    m1 = _mrr_at(subs, end)
    customers = m0.index.union(m1.index)
    m0 = m0.reindex(customers, fill_value=0.0)
    m1 = m1.reindex(customers, fill_value=0.0)
    before = subs[(subs["start_date"] <= _d(start - timedelta(days=1))) & (subs["mrr"] > 0)
                  & (subs["end_date"].isna() | (subs["end_date"] > subs["start_date"]))]
    had = customers.isin(before["customer_id"].unique())
    base = m0 > 0
    out = {
        "mrr": float(m1.sum()),
        "arr": float(12 * m1.sum()),
        "mrr_start": float(m0.sum()),
        "mrr_new": float(m1[(m0 == 0) & (m1 > 0) & ~had].sum()),
        "mrr_reactivation": float(m1[(m0 == 0) & (m1 > 0) & had].sum()),
        "mrr_expansion": float((m1 - m0)[(m1 > m0) & base].sum()),
        "mrr_contraction": float((m0 - m1)[(m1 < m0) & (m1 > 0)].sum()),
        "mrr_churn": float(m0[base & (m1 == 0)].sum()),
        "active_customers": float((m1 > 0).sum()),
    }
    b = m0[base].sum()
    out["nrr"] = float(m1[base].sum() / b) if b else np.nan
    out["grr"] = float(np.minimum(m0, m1)[base].sum() / b) if b else np.nan
    out["expansion_rate"] = float((m1 - m0)[(m1 > m0) & base].sum() / b) if b else np.nan
    out["logo_churn_rate"] = float((base & (m1 == 0)).sum() / base.sum()) if base.sum() else np.nan
    out["arpa"] = out["mrr"] / out["active_customers"] if out["active_customers"] else np.nan
    return out
