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
    the rate written in each cell.

    Built for speed as well as looks (the load test found it the costliest chart of a click): one
    dataset of only the columns drawn, shared by both layers, and encodings given as plain
    Vega-Lite dicts so Altair does not wrap and re-validate every channel."""
    what = "customers still paying" if basis == "logo" else "MRR kept (net)"
    rates = frame["rate"]
    known = rates.notna()
    data = pd.DataFrame({
        "cohort": frame["cohort"], "age": frame["age"], "rate": rates.where(known, None),
        "active": frame["active"], "size": frame["size"],
        "rate_text": [fmt(v, "percent") for v in rates],
        "label": (rates * 100).round().map("{:.0f}".format).where(known, ""),
        "mrr_text": [fmt(v, "money") for v in frame["mrr"]],
    })
    # The scale spans the rates shown, so 90 % and 99 % differ visibly; the legend says where it starts.
    top = max(1.0, float(rates.max())) if known.any() else 1.0
    low = min(float(rates.min()), 0.9 * top) if known.any() else 0.0
    xy = {"x": {"field": "age", "type": "ordinal", "title": "months since start"},
          "y": {"field": "cohort", "type": "ordinal", "title": "cohort (first month)", "sort": "ascending"}}
    cells = {"mark": {"type": "rect"}, "encoding": {
        **xy,
        "color": {"field": "rate", "type": "quantitative", "scale": {"domain": [low, top], "range": BLUES},
                  "title": what, "legend": {"format": ".0%"}},
        "tooltip": [{"field": "cohort", "type": "ordinal"},
                    {"field": "age", "type": "ordinal", "title": "months since start"},
                    {"field": "rate_text", "type": "nominal", "title": what},
                    {"field": "active", "type": "quantitative", "title": "customers paying"},
                    {"field": "size", "type": "quantitative", "title": "cohort size"},
                    {"field": "mrr_text", "type": "nominal", "title": "MRR"}]}}
    text = {"mark": {"type": "text", "fontSize": 10}, "encoding": {
        **xy, "text": {"field": "label", "type": "nominal"},
        "color": {"condition": {"test": f"datum.rate > {(low + top) / 2!r}", "value": "white"}, "value": INK}}}
    layers = [alt.Chart(mark=part["mark"], encoding=alt.FacetedEncoding(**part["encoding"])) for part in (cells, text)]
    return alt.LayerChart(data=data, layer=layers, title=title or f"Retention by cohort — {what}",
                          height={"step": 22})
