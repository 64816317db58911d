"""Altair specs for the tree, trends, segment comparisons and waterfalls.

Seed 002's rules: the most critical number top-left, 3–4 colours, and red/amber/green used only
for status. Charts are plain Altair objects built from core results, so tests can check them as
data (`chart.to_dict()`) without a browser.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import altair as alt
import pandas as pd

from .evaluate import Evaluation
from .format import fmt, fmt_change
from .layout import Layout

# Status colours: a light fill to keep text readable, a strong outline to carry the status.
STATUS_FILL = {"green": "#e3f1e4", "amber": "#fdf0cf", "red": "#f9dcdc", "no_target": "#eeeeee", "no_data": "#f7f7f7"}
STATUS_STROKE = {"green": "#2e7d32", "amber": "#c98a00", "red": "#c62828", "no_target": "#9e9e9e", "no_data": "#bdbdbd"}
STATUS_WORD = {"green": "on target", "amber": "near target", "red": "off target", "no_target": "no target",
               "no_data": "no data"}
INK = "#263238"
MUTED = "#607d8b"
ACCENT = "#1f5f8b"  # the one non-status colour for values


def tree_frame(layout: Layout, evaluation: Evaluation) -> pd.DataFrame:
    """One row per box with everything the tree chart draws and its tooltip says."""
    rows = []
    for n in evaluation.nodes:
        b = layout.boxes[n.id]
        shown = fmt(n.value, n.unit, compact=True)
        if n.pace is not None:
            shown += f" (pace {fmt(n.pace, n.unit, compact=True)})"
        rows.append({
            "id": n.id, "label": n.label, "owner": n.owner, "status": n.status,
            "status_text": STATUS_WORD[n.status], "value_text": shown,
            "target_text": (n.target_basis if n.target is None else f"{fmt(n.target, n.unit, compact=True)} — "
                            f"suggested: {n.target_basis}") if n.target_basis else fmt(n.target, n.unit, compact=True),
            "line2": f"{fmt(n.value, n.unit, compact=True)} / {fmt(n.target, n.unit, compact=True)}"
            + (" suggested" if n.target_basis and n.target is not None else ""),
            "previous_text": fmt(n.previous, n.unit, compact=True), "level": n.level,
            "link": "exact formula" if n.formula else ("influence" if n.children else "lever"),
            "x": b.x, "y": b.y, "x0": b.x0, "x1": b.x1, "y0": b.y0, "y1": b.y1,
            "fill": STATUS_FILL[n.status], "stroke": STATUS_STROKE[n.status],
        })
    return pd.DataFrame(rows)


def tree_chart(layout: Layout, evaluation: Evaluation, selected: str | None = None) -> alt.LayerChart:
    """The whole tree as one clickable chart; the box layer carries the `node` selection."""
    nodes = tree_frame(layout, evaluation)
    edges = pd.DataFrame([s.__dict__ for s in layout.segments])
    x = alt.X("x:Q", scale=alt.Scale(domain=[0, layout.width]), axis=None)
    y = alt.Y("y:Q", scale=alt.Scale(domain=[layout.height, 0]), axis=None)
    base_edges = alt.Chart(edges).encode(
        x=x, y=y, x2="x2:Q", y2="y2:Q",
        strokeDash=alt.StrokeDash("link:N", scale=alt.Scale(domain=["formula", "influence"],
                                                             range=[[1, 0], [5, 4]]), legend=None),
    )
    edge_layer = base_edges.mark_rule(color=MUTED, strokeWidth=1.4)
    pick = alt.selection_point(
        fields=["id"], name="node", on="click", clear="dblclick",
        **({"value": [{"id": selected}]} if selected else {}),
    )
    tooltip = [
        alt.Tooltip("label:N", title="label"), alt.Tooltip("value_text:N", title="value"),
        alt.Tooltip("target_text:N", title="target"), alt.Tooltip("previous_text:N", title="previous"),
        alt.Tooltip("status_text:N", title="status"), alt.Tooltip("owner:N", title="owner"),
        alt.Tooltip("link:N", title="link to children"),
    ]
    boxes = alt.Chart(nodes).mark_rect(cornerRadius=6, cursor="pointer").encode(
        x=alt.X("x0:Q", scale=alt.Scale(domain=[0, layout.width]), axis=None), x2="x1:Q",
        y=alt.Y("y0:Q", scale=alt.Scale(domain=[layout.height, 0]), axis=None), y2="y1:Q",
        fill=alt.Fill("fill:N", scale=None),
        stroke=alt.condition(pick, alt.value(INK), alt.Stroke("stroke:N", scale=None)),
        strokeWidth=alt.condition(pick, alt.value(3.5), alt.value(2)),
        tooltip=tooltip,
    ).add_params(pick)
    text = alt.Chart(nodes).encode(x=x, y=y)
    label = text.mark_text(fontWeight="bold", fontSize=12, dy=-15, color=INK, limit=layout_box_text(layout)).encode(
        text="label:N")
    values = text.mark_text(fontSize=12, dy=2, color=ACCENT, limit=layout_box_text(layout)).encode(text="line2:N")
    owner = text.mark_text(fontSize=10, dy=18, color=MUTED, limit=layout_box_text(layout)).encode(text="owner:N")
    return alt.layer(edge_layer, boxes, label, values, owner).properties(
        width=layout.width, height=layout.height,
    ).configure_view(stroke=None)


def with_selection(spec: dict, node_id: str | None) -> dict:
    """The tree spec with `node_id` pre-selected, without rebuilding the chart.

    Building and serialising the Altair tree costs a few hundred milliseconds, more than the
    rest of a click; the UI keeps one spec per evaluation and only swaps the selected box.
    """
    out = dict(spec)
    params = []
    for param in spec.get("params", []):
        if param.get("name") == "node":
            param = {k: v for k, v in param.items() if k != "value"}
            if node_id:
                param["value"] = [{"id": node_id}]
        params.append(param)
    out["params"] = params
    return out


def spec_of(chart: alt.TopLevelMixin) -> dict:
    """The Vega-Lite dict of a chart; schema validation is left to the tests (it is slow)."""
    return chart.to_dict(validate=False)


def layout_box_text(layout: Layout) -> float:
    box = next(iter(layout.boxes.values()))
    return box.w - 12


def axis_format(unit: str, values: Sequence[float | None] = ()) -> str:
    """A d3 format for a value axis. SI suffixes only for large numbers: below 1 they read as
    milli ("200m" for 0.2 leads), so counts and small amounts get plain decimals."""
    if unit == "percent":
        return ".1%"
    finite = [abs(float(v)) for v in values if v is not None and v == v]
    large = bool(finite) and max(finite) >= 10_000
    if unit.startswith("money"):
        return "$,.3s" if large else "$,.2~f"
    return ",.3~s" if large else ",.2~f"


def trend_chart(df: pd.DataFrame, unit: str, title: str = "") -> alt.LayerChart:
    """Value over the last periods with the target as a dashed line (seed 002: lines for trends)."""
    data = df.copy()
    data["value_text"] = [fmt(v, unit) for v in data["value"]]
    data["target_text"] = [fmt(v, unit) for v in data["target"]]
    base = alt.Chart(data).encode(x=alt.X("period:O", title=None, axis=alt.Axis(labelAngle=-45)))
    fmt_axis = axis_format(unit, [*data["value"], *data["target"]])
    value = base.mark_line(point=True, color=ACCENT).encode(
        y=alt.Y("value:Q", title=None, axis=alt.Axis(format=fmt_axis)),
        tooltip=[alt.Tooltip("period:O"), alt.Tooltip("value_text:N", title="value"),
                 alt.Tooltip("target_text:N", title="target")],
    )
    target = base.mark_line(strokeDash=[6, 4], color=MUTED).encode(y="target:Q")
    return alt.layer(value, target).properties(height=220, title=title)


def is_gain(direction: str, gap: float | None) -> bool:
    """True when a node moved the good way against what it is compared with (beats its target)."""
    return gap is not None and (gap > 0 if direction == "higher" else gap < 0)


def gain_segments(frame: pd.DataFrame, chosen: Sequence[str]) -> pd.DataFrame:
    """An explanation's segment frame (worst first) re-read for a gain: the segments that carried the
    gain first, and those the explanation names marked as explaining it, so the chart and table
    show the segments its sentence names instead of only the ones that held it back."""
    out = frame.sort_values("adverse", ascending=True, kind="stable").reset_index(drop=True)
    out["explains"] = [s in chosen and a < 0 for s, a in zip(out["segment"], out["adverse"], strict=True)]
    return out


def segment_chart(df: pd.DataFrame, unit: str, dimension: str, highlight: Sequence[str] = (),
                  top: int = 12, highlight_color: str = STATUS_STROKE["red"]) -> alt.Chart:
    """Segments' current value (bar) against their baseline (tick); the explaining ones in red
    (in `highlight_color`: green when they explain a gain)."""
    data = df.copy().head(top)
    data["current_text"] = [fmt(v, unit) for v in data["current"]]
    data["baseline_text"] = [fmt(v, unit) for v in data["baseline"]]
    data["change_text"] = [fmt_change(v, unit) for v in data["change"]]
    data["role"] = ["explains" if s in highlight else "other" for s in data["segment"]]
    order = list(data["segment"])
    fmt_axis = axis_format(unit, [*data["current"], *data["baseline"]])
    # a segment that fell to zero has no bar to colour: its name and baseline tick carry the colour too
    marked = json.dumps([s for s in order if s in highlight])
    y = alt.Y("segment:N", sort=order, title=dimension,
              axis=alt.Axis(labelColor=alt.ExprRef(f"indexof({marked}, datum.value) >= 0 ? "
                                                   f"'{highlight_color}' : '{MUTED}'"),
                            labelFontWeight=alt.ExprRef(f"indexof({marked}, datum.value) >= 0 ? 'bold' : 'normal'")))
    bars = alt.Chart(data).mark_bar().encode(
        y=y, x=alt.X("current:Q", title=None, axis=alt.Axis(format=fmt_axis)),
        color=alt.Color("role:N", scale=alt.Scale(domain=["explains", "other"], range=[highlight_color, "#90a4ae"]),
                        legend=None),
        tooltip=[alt.Tooltip("segment:N"), alt.Tooltip("current_text:N", title="now"),
                 alt.Tooltip("baseline_text:N", title="baseline"), alt.Tooltip("change_text:N", title="change")],
    )
    ticks = alt.Chart(data).mark_tick(thickness=2, size=20).encode(
        y=y, x="baseline:Q",
        color=alt.Color("role:N", scale=alt.Scale(domain=["explains", "other"], range=[highlight_color, INK]),
                        legend=None))
    return alt.layer(bars, ticks).properties(height=alt.Step(26))


def waterfall_chart(start_label: str, start: float, steps: Sequence[tuple[str, float]], end_label: str,
                    unit: str) -> alt.Chart:
    """Baseline → each child's contribution → actual (seed 002 / PRODUCT: waterfall = attribution)."""
    rows = [{"step": start_label, "lo": 0.0, "hi": start, "kind": "total", "amount": start}]
    level = start
    for name, delta in steps:
        rows.append({"step": name, "lo": min(level, level + delta), "hi": max(level, level + delta),
                     "kind": "up" if delta >= 0 else "down", "amount": delta})
        level += delta
    rows.append({"step": end_label, "lo": 0.0, "hi": level, "kind": "total", "amount": level})
    data = pd.DataFrame(rows)
    data["text"] = [fmt(a, unit) if k == "total" else fmt_change(a, unit) for a, k in zip(data["amount"], data["kind"],
                                                                                           strict=True)]
    order = list(data["step"])
    fmt_axis = axis_format(unit, [*data["lo"], *data["hi"]])
    return alt.Chart(data).mark_bar(size=28).encode(
        x=alt.X("step:N", sort=order, title=None, axis=alt.Axis(labelAngle=-20)),
        y=alt.Y("lo:Q", title=None, axis=alt.Axis(format=fmt_axis)), y2="hi:Q",
        color=alt.Color("kind:N", scale=alt.Scale(domain=["total", "up", "down"],
                                                  range=[MUTED, ACCENT, "#c62828"]), legend=None),
        tooltip=[alt.Tooltip("step:N"), alt.Tooltip("text:N", title="amount")],
    ).properties(height=240)
