"""Altair charts for product usage: activity dots (accounts × weeks) and cohort retention.

Seed 002: "activity dots that create visual heatmaps" to spot accounts whose usage declines,
and retention by cohort. One blue scale carries the amount (red, amber and green stay reserved
for status); every chart is built from a `kpitree.usage` frame and can be checked as data.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from .format import fmt

INK = "#263238"
MUTED = "#607d8b"
BLUES = ["#e3eef7", "#1f5f8b"]  # empty → busiest, the accent colour of the other charts


def activity_dots_chart(frame: pd.DataFrame, title: str = "Activity by account and week",
                        measure: str = "active_days") -> alt.Chart:
    """One dot per account and week, sized and coloured by activity (`active_days`, `events` or
    `users`); accounts top to bottom in the frame's rank order, weeks left to right."""
    if measure not in ("active_days", "events", "users"):
        raise ValueError(f"measure must be active_days, events or users, got {measure!r}")
    data = frame.copy()
    data["week_label"] = pd.to_datetime(data["week"]).dt.strftime("%d %b")
    data["row"] = [f"{a} ({s})" if isinstance(s, str) and s else str(a)
                   for a, s in zip(data["account"], data["segment"], strict=True)]
    data["mrr_text"] = [fmt(v, "money") for v in data["mrr"]]
    order = list(dict.fromkeys(data.sort_values(["rank", "week"])["row"]))
    weeks = list(dict.fromkeys(data.sort_values("week")["week_label"]))
    top = max(int(data[measure].max()) if len(data) else 1, 1)
    return alt.Chart(data).mark_circle(stroke=MUTED, strokeWidth=0.5).encode(
        x=alt.X("week_label:O", sort=weeks, title="week starting", axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        size=alt.Size(f"{measure}:Q", scale=alt.Scale(domain=[0, top], range=[12, 260]), legend=None),
        color=alt.Color(f"{measure}:Q", scale=alt.Scale(domain=[0, top], range=BLUES),
                        title=measure.replace("_", " ")),
        tooltip=[alt.Tooltip("account:N"), alt.Tooltip("segment:N"), alt.Tooltip("mrr_text:N", title="MRR"),
                 alt.Tooltip("week:T", title="week of", format="%d %b %Y"), alt.Tooltip("active_days:Q", title="active days"),
                 alt.Tooltip("events:Q"), alt.Tooltip("users:Q", title="active users")],
    ).properties(title=title, height=alt.Step(22))


def cohort_chart(frame: pd.DataFrame, basis: str = "logo", title: str | None = None) -> alt.LayerChart:
    """Cohorts (rows, oldest on top) × months since start (columns), shaded by retention, with
    the rate written in each cell."""
    data = frame.copy()
    data["rate_text"] = [fmt(v, "percent") for v in data["rate"]]
    data["label"] = [f"{v * 100:.0f}" if pd.notna(v) else "" for v in data["rate"]]
    data["mrr_text"] = [fmt(v, "money") for v in data["mrr"]]
    what = "customers still paying" if basis == "logo" else "MRR kept (net)"
    rates = data["rate"].dropna()
    # The scale spans the rates shown, so 90 % and 99 % differ visibly; the legend says where it starts.
    top = max(1.0, float(rates.max())) if len(rates) else 1.0
    low = min(float(rates.min()), 0.9 * top) if len(rates) else 0.0
    base = alt.Chart(data).encode(
        x=alt.X("age:O", title="months since start"),
        y=alt.Y("cohort:O", title="cohort (first month)", sort="ascending"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("rate:Q", scale=alt.Scale(domain=[low, top], range=BLUES), title=what,
                        legend=alt.Legend(format=".0%")),
        tooltip=[alt.Tooltip("cohort:O"), alt.Tooltip("age:O", title="months since start"),
                 alt.Tooltip("rate_text:N", title=what), alt.Tooltip("active:Q", title="customers paying"),
                 alt.Tooltip("size:Q", title="cohort size"), alt.Tooltip("mrr_text:N", title="MRR")],
    )
    text = base.mark_text(fontSize=10).encode(
        text="label:N",
        color=alt.condition(alt.datum.rate > (low + top) / 2, alt.value("white"), alt.value(INK)),
    )
    return alt.layer(cells, text).properties(title=title or f"Retention by cohort — {what}", height=alt.Step(22))
