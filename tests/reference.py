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


# --- the catalogue added for issue 8: unit economics, support, usage, health -----------------------
# Written from the definitions (PRODUCT.md and kpitree/health.py's docstring), with pandas only.


def prepare_more(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Parses the date and time columns of spend, tickets, nps, events, activities and timesheets."""
    out = dict(tables)
    parse = {"spend": ["month"], "tickets": ["opened_at", "resolved_at", "first_response_at"], "nps": ["date"],
             "events": ["timestamp"], "activities": ["date"], "timesheets": ["date"]}
    for name, cols in parse.items():
        if name in out:
            frame = out[name].copy()
            for c in cols:
                frame[c] = pd.to_datetime(frame[c])
            out[name] = frame
    return out


def _days(a: date, b: date) -> pd.DatetimeIndex:
    return pd.date_range(_d(a), _d(b), freq="D")


def spend_between(spend: pd.DataFrame, start: date, end: date, channel: str | None = None) -> float:
    """Monthly spend pro-rated to the days of [start, end] it covers."""
    s = spend if channel is None else spend[spend["channel"] == channel]
    total = 0.0
    for month, amount in zip(s["month"], s["amount"], strict=True):
        days = pd.date_range(month, month + pd.offsets.MonthEnd(0), freq="D")
        inside = ((days >= _d(start)) & (days <= _d(end))).sum()
        total += float(amount) * inside / len(days)
    return total


def _month_end(d: pd.Timestamp) -> pd.Timestamp:
    return d + pd.offsets.MonthEnd(0)


def unit_economics(deals: pd.DataFrame, subs: pd.DataFrame, spend: pd.DataFrame, start: date, end: date,
                   prev_start: date, gross_margin: float = 0.8, channel: str | None = None) -> dict[str, float]:
    """ltv, cac, ltv_cac, cac_payback_months, magic_number and roas for P = [start, end]."""
    d = deals if channel is None else deals[deals["channel"] == channel]
    s = subs if channel is None else subs[subs["channel"] == channel]
    closed = d[(d["close_date"] >= _d(start)) & (d["close_date"] <= _d(end)) & (d["status"] == "won")]
    new_customers = closed.loc[closed["deal_type"] == "new", "account_id"].nunique()
    new_arr = float(closed.loc[closed["deal_type"].isin(["new", "expansion"]), "amount"].sum())
    spend_p = spend_between(spend, start, end, channel)
    m1 = _mrr_at(s, end)
    arpa = m1[m1 > 0].sum() / (m1 > 0).sum() if (m1 > 0).any() else np.nan
    rates = []
    month_end = _d(end)
    for _ in range(3):
        before = _month_end(month_end.replace(day=1) - pd.Timedelta(days=1))
        a = _mrr_at(s, before.date())
        b = _mrr_at(s, month_end.date()).reindex(a.index, fill_value=0.0)
        base = a > 0
        rates.append((base & (b == 0)).sum() / base.sum() if base.sum() else np.nan)
        month_end = before
    churn = float(np.mean(rates))
    ltv = arpa * gross_margin / churn if churn else np.nan
    cac = spend_p / new_customers if new_customers else np.nan
    prev_arr = 12 * _mrr_at(s, start - timedelta(days=1)).sum()
    prev_spend = spend_between(spend, prev_start, start - timedelta(days=1), channel)
    return {
        "ltv": ltv, "cac": cac, "ltv_cac": ltv / cac if cac else np.nan,
        "cac_payback_months": cac / (arpa * gross_margin) if arpa else np.nan,
        "magic_number": (12 * m1.sum() - prev_arr) / prev_spend if prev_spend else np.nan,
        "roas": new_arr / spend_p if spend_p else np.nan,
        "renewal_arr": float(closed.loc[closed["deal_type"] == "renewal", "amount"].sum()),
    }


def support_metrics(tickets: pd.DataFrame, nps: pd.DataFrame, start: date, end: date) -> dict[str, float]:
    """tickets_opened, mttr_hours, first_response_hours and nps for [start, end]."""
    lo, hi = _d(start), _d(end) + pd.Timedelta(days=1)
    hours = {}
    for name, col in (("mttr_hours", "resolved_at"), ("first_response_hours", "first_response_at")):
        t = tickets[(tickets[col] >= lo) & (tickets[col] < hi) & (tickets[col] >= tickets["opened_at"])]
        hours[name] = float(((t[col] - t["opened_at"]).dt.total_seconds() / 3600).mean()) if len(t) else np.nan
    answers = nps[(nps["date"] >= lo) & (nps["date"] < hi)]["score"]
    return {
        "tickets_opened": float(((tickets["opened_at"] >= lo) & (tickets["opened_at"] < hi)).sum()),
        **hours,
        "nps": 100 * ((answers >= 9).mean() - (answers <= 6).mean()) if len(answers) else np.nan,
    }


def active_users(events: pd.DataFrame, start: date, end: date) -> dict[str, float]:
    """dau (mean daily users over P), wau and mau (distinct users in the 7 / 30 days ending at end)."""
    day = events["timestamp"].dt.normalize()
    in_p = events[(day >= _d(start)) & (day <= _d(end))]
    daily = in_p.groupby(in_p["timestamp"].dt.normalize())["user_id"].nunique()
    dau = daily.reindex(_days(start, end), fill_value=0).mean()

    def last(n: int) -> float:
        return float(events.loc[(day > _d(end) - pd.Timedelta(days=n)) & (day <= _d(end)), "user_id"].nunique())

    wau, mau = last(7), last(30)
    return {"dau": float(dau), "wau": wau, "mau": mau, "dau_mau": dau / mau if mau else np.nan}


def feature_adoption(events: pd.DataFrame, start: date, end: date, feature: str | None = None) -> float:
    """Accounts using `feature` in P / accounts with any event in P (mean over features when None)."""
    day = events["timestamp"].dt.normalize()
    in_p = events[(day >= _d(start)) & (day <= _d(end))]
    accounts = in_p["account_id"].nunique()
    if feature is not None:
        return in_p.loc[in_p["feature"] == feature, "account_id"].nunique() / accounts
    per_feature = in_p.groupby("feature")["account_id"].nunique()
    return float((per_feature / accounts).mean())


def sessions(events: pd.DataFrame, gap_minutes: float = 30.0) -> pd.DataFrame:
    """One row per session (user, first and last timestamp): a new session after a longer gap."""
    e = events.sort_values(["user_id", "timestamp"])
    gap = e.groupby("user_id")["timestamp"].diff()
    new = gap.isna() | (gap > pd.Timedelta(minutes=gap_minutes))
    sid = new.cumsum()
    return e.groupby(sid).agg(user_id=("user_id", "first"), first=("timestamp", "min"), last=("timestamp", "max"))


def time_in_product(events: pd.DataFrame, start: date, end: date) -> float:
    """Median over users of their minutes in sessions that start in P."""
    s = sessions(events)
    s = s[(s["first"].dt.normalize() >= _d(start)) & (s["first"].dt.normalize() <= _d(end))]
    minutes = ((s["last"] - s["first"]).dt.total_seconds() / 60).groupby(s["user_id"]).sum()
    return float(minutes.median()) if len(minutes) else np.nan


def journey_completion(events: pd.DataFrame, steps: list[str], start: date, end: date, window_days: int = 14) -> float:
    """Of users whose first step-1 event in P starts the journey, the share doing the other steps
    in order within the window."""
    day = events["timestamp"].dt.normalize()
    first = events[(events["feature"] == steps[0]) & (day >= _d(start)) & (day <= _d(end))]
    state = first.groupby("user_id")["timestamp"].min().rename("t1").reset_index()
    started = len(state)
    state["last"] = state["t1"]
    for step in steps[1:]:
        e = events.loc[events["feature"] == step, ["user_id", "timestamp"]]
        m = state.merge(e, on="user_id")
        m = m[(m["timestamp"] > m["last"]) & (m["timestamp"] <= m["t1"] + pd.Timedelta(days=window_days))]
        state = m.groupby(["user_id", "t1"])["timestamp"].min().rename("last").reset_index()
    return len(state) / started if started else np.nan


def time_to_first_value(subs: pd.DataFrame, events: pd.DataFrame, start: date, end: date) -> float:
    """For customers whose first (non-empty, paying) subscription starts in P: mean days to the
    first event on or after that day."""
    ok = subs[(subs["mrr"] > 0) & (subs["end_date"].isna() | (subs["end_date"] > subs["start_date"]))]
    first = ok.groupby("customer_id")["start_date"].min()
    first = first[(first >= _d(start)) & (first <= _d(end))].rename("day0").reset_index()
    m = first.merge(events[["account_id", "timestamp"]], left_on="customer_id", right_on="account_id")
    m = m[m["timestamp"].dt.normalize() >= m["day0"]]
    firsts = m.groupby("customer_id").agg(day0=("day0", "first"), ts=("timestamp", "min"))
    days = (firsts["ts"].dt.normalize() - firsts["day0"]).dt.days
    return float(days.mean()) if len(days) else np.nan


def health(subs: pd.DataFrame, events: pd.DataFrame, tickets: pd.DataFrame, nps: pd.DataFrame, end: date,
           weights: tuple[float, float, float] = (0.5, 0.2, 0.3), ticket_cap: float = 10.0) -> pd.DataFrame:
    """Per account with MRR > 0 at `end`: usage, ticket and NPS scores and health (health.py's rules)."""
    m1 = _mrr_at(subs, end)
    out = pd.DataFrame(index=m1[m1 > 0].index)
    t_end = _d(end)
    day = events["timestamp"].dt.normalize()
    recent = events[(day > t_end - pd.Timedelta(days=28)) & (day <= t_end)]
    earlier = events[(day > t_end - pd.Timedelta(days=84)) & (day <= t_end - pd.Timedelta(days=28))]
    r = recent.assign(day=day).drop_duplicates(["account_id", "day"]).groupby("account_id").size()
    e = earlier.assign(day=day).drop_duplicates(["account_id", "day"]).groupby("account_id").size()
    out["recent"] = r.reindex(out.index, fill_value=0)
    out["earlier"] = e.reindex(out.index, fill_value=0)
    out["features"] = recent.groupby("account_id")["feature"].nunique().reindex(out.index, fill_value=0)
    ratio = np.minimum((out["recent"] + 0.5) / (out["earlier"] / 2 + 0.5), 1.0)
    out["usage"] = np.where(out["recent"] + out["earlier"] == 0, 0.0, 100 * ratio)
    opened = tickets["opened_at"].dt.normalize()
    k = tickets[(opened > t_end - pd.Timedelta(days=90)) & (opened <= t_end)].groupby("account_id").size()
    out["tickets"] = 100 * np.maximum(1 - k.reindex(out.index, fill_value=0) / ticket_cap, 0)
    n = nps[(nps["date"] > t_end - pd.Timedelta(days=180)) & (nps["date"] <= t_end)].groupby("account_id")["score"].mean()
    out["nps"] = 10 * n.reindex(out.index)
    w_u, w_t, w_n = weights
    has = out["nps"].notna()
    out["health"] = (w_u * out["usage"] + w_t * out["tickets"] + w_n * out["nps"].fillna(0)) / (w_u + w_t + w_n * has)
    return out


def health_metrics(frame: pd.DataFrame) -> dict[str, float]:
    eligible = (frame["health"] >= 70) & (frame["recent"] >= frame["earlier"] / 2) & (frame["features"] >= 3)
    return {"health_score": float(frame["health"].mean()), "at_risk_accounts": float((frame["health"] < 40).sum()),
            "upsell_eligible_accounts": float(eligible.sum())}


def ps_utilization(timesheets: pd.DataFrame, start: date, end: date) -> float:
    t = timesheets[(timesheets["date"] >= _d(start)) & (timesheets["date"] <= _d(end))]
    billable = t["billable"].astype(str).str.strip().str.lower().isin(["yes", "y", "true", "t", "1", "billable"])
    return float(t.loc[billable, "hours"].sum() / t["hours"].sum())


def checks_per_csm_week(activities: pd.DataFrame, start: date, end: date) -> float:
    a = activities[(activities["date"] >= _d(start)) & (activities["date"] <= _d(end)) & (activities["type"] == "health_check")]
    return len(a) / a["owner"].nunique() / (((end - start).days + 1) / 7)
