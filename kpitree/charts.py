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

from .evaluate import Evaluation, NodeResult
from .explain import RELATIVE_AS_AMOUNT
from .format import dimension_label, fmt, fmt_change, fmt_maturing
from .layout import LABEL_SIZE, LINE, OWNER_SIZE, VALUE_SIZE, Layout

# Status colours: a light fill to keep text readable, a strong outline to carry the status.
# "maturing" (a young cohort too early to judge) is neither good nor bad: a cool grey-blue.
STATUS_FILL = {"green": "#e3f1e4", "amber": "#fdf0cf", "red": "#f9dcdc", "no_target": "#eeeeee", "no_data": "#f7f7f7",
               "maturing": "#e7eef4"}
STATUS_STROKE = {"green": "#2e7d32", "amber": "#c98a00", "red": "#c62828", "no_target": "#9e9e9e", "no_data": "#bdbdbd",
                 "maturing": "#6f8ba0"}
STATUS_WORD = {"green": "on target", "amber": "near target", "red": "off target", "no_target": "no target",
               "no_data": "no data", "maturing": "maturing"}
INK = "#263238"
MUTED = "#607d8b"
ACCENT = "#1f5f8b"  # the one non-status colour for values


BASELINE_WORD = {"target": "target", "previous": "previous period", "last_year": "same period last year"}
DIMMED = 0.3  # opacity of what is off the red path while one is drawn


def change_text(value: float | None, baseline: float | None, unit: str) -> str:
    """A box's change against its baseline: percentage points for percents, else relative; "0%"
    rather than "−0%" when it rounds to nothing; the amount past ±1,000 % (`RELATIVE_AS_AMOUNT`)."""
    if value is None or baseline is None:
        return "—"
    if unit == "percent":
        pp = round((value - baseline) * 100, 1)
        return "0 pp" if pp == 0 else f"{'+' if pp > 0 else '−'}{abs(pp):.1f} pp"
    if baseline == 0:
        return "new" if value else "0%"
    if abs(value / baseline - 1) > RELATIVE_AS_AMOUNT:  # "+$158.37M", never "+15837156080%"
        return fmt_change(value - baseline, unit)
    rel = round((value - baseline) / abs(baseline) * 100)
    return "0%" if rel == 0 else f"{'+' if rel > 0 else '−'}{abs(rel)}%"


def box_value_line(n: NodeResult, versus: str = "target", baseline: float | None = None) -> str:
    """The number a box shows: `value / target` against the target ("~" marks a suggested target),
    else `value (change)` against the chosen period's value. A maturing cohort shows, against its
    target, the expected final value its colour was judged on ("≈24.8% / 24.4%", the legend says what
    "≈" means; its value so far is in the tooltip), or, too early to tell, "1.1% so far / 24.4%"."""
    value = fmt(n.value, n.unit, compact=True)
    if n.value is None:
        return "no data"
    if versus == "target":
        if n.maturing:
            value = f"{value} so far" if n.expected_final is None else "≈" + fmt(n.expected_final, n.unit, compact=True)
        if n.target is None:
            return f"{value} · no target"
        if n.target_by_now is not None:  # a running period's stock: where the plan is by today
            return f"{value} / {fmt(n.target_by_now, n.unit, compact=True)} by now"
        return f"{value} / {'~' if n.target_basis else ''}{fmt(n.target, n.unit, compact=True)}"
    return f"{value} ({change_text(n.compared, baseline, n.unit)})"


def _target_text(n: NodeResult) -> str:
    """The tooltip's target: the period's, its source when suggested, and in a running period the
    target by now a stock is judged against, with how it was made."""
    if n.target_basis:
        text = n.target_basis if n.target is None else f"{fmt(n.target, n.unit, compact=True)} — suggested: {n.target_basis}"
    else:
        text = fmt(n.target, n.unit, compact=True)
    if n.target_by_now is not None:
        text = f"{fmt(n.target_by_now, n.unit, compact=True)} by now ({n.by_now_basis}); period target {text}"
    return text


def tree_frame(layout: Layout, evaluation: Evaluation, versus: str = "target",
               baselines: dict[str, float | None] | None = None) -> pd.DataFrame:
    """One row per box with everything the tree chart draws and its tooltip says; `baselines` are
    the values each box is compared with when `versus` is a period (status stays against target)."""
    rows = []
    t = layout.text
    for n in evaluation.nodes:
        b = layout.boxes[n.id]
        shown = fmt(n.value, n.unit, compact=True)
        if n.pace is not None:
            shown += f" (pace {fmt(n.pace, n.unit, compact=True)})"
        if n.maturing:
            shown += f" so far — {fmt_maturing(n.expected_final, n.unit, n.completion)}"
        base = (baselines or {}).get(n.id) if versus != "target" else n.judged_target
        rows.append({
            "id": n.id, "label": n.label, "owner": n.owner, "status": n.status,
            "label_text": "\n".join(b.lines) if b.lines else n.label, "owner_text": b.owner if b.lines else n.owner,
            "status_text": STATUS_WORD[n.status], "value_text": shown,
            "target_text": _target_text(n),
            "line2": box_value_line(n, versus, base),
            "baseline_text": fmt(base, n.unit, compact=True) if versus != "target" else "",
            "previous_text": fmt(n.previous, n.unit, compact=True), "level": n.level,
            "link": "exact formula" if n.formula else ("influence" if n.children else "lever"),
            "x": b.x, "y": b.y, "x0": b.x0, "x1": b.x1, "y0": b.y0, "y1": b.y1,
            "lx": b.x0 + t.label_x, "ly": b.y0 + t.label_y - LINE[LABEL_SIZE] / 2 + 1,
            "vx": b.x0 + t.value_x, "vy": b.y0 + t.value_y, "ox": b.x0 + t.owner_x, "oy": b.y1 - (layout.box_h - t.owner_y),
            "fill": STATUS_FILL[n.status], "stroke": STATUS_STROKE[n.status],
            "on_path": False, "dim": False, "stroke_w": 2.0, "path_text": "—",
        })
    return pd.DataFrame(rows)


def tree_chart(layout: Layout, evaluation: Evaluation, selected: str | None = None, versus: str = "target",
               baselines: dict[str, float | None] | None = None) -> alt.LayerChart:
    """The whole tree as one clickable chart; the box layer carries the `node` selection.

    Every row carries `on_path` and `dim`: `with_path` sets them on a built spec to draw a red path
    (its boxes and links emphasised, the rest dimmed) without rebuilding the chart."""
    nodes = tree_frame(layout, evaluation, versus, baselines)
    edges = pd.DataFrame([{**s.__dict__, "on_path": False, "dim": False} for s in layout.segments],
                         columns=["parent", "child", "x", "y", "x2", "y2", "link", "on_path", "dim"])
    xs = alt.Scale(domain=[0, layout.width])
    ys = alt.Scale(domain=[layout.height, 0])
    x = alt.X("x:Q", scale=xs, axis=None)
    y = alt.Y("y:Q", scale=ys, axis=None)
    dash = alt.StrokeDash("link:N", scale=alt.Scale(domain=["formula", "influence"], range=[[1, 0], [5, 4]]),
                          legend=None)
    fade = alt.condition("datum.dim", alt.value(DIMMED), alt.value(1.0))
    edge_layer = alt.Chart(edges).mark_rule(color=MUTED, strokeWidth=1.4).encode(
        x=x, y=y, x2="x2:Q", y2="y2:Q", strokeDash=dash, opacity=fade)
    path_layer = alt.Chart(edges).transform_filter("datum.on_path").mark_rule(
        color=STATUS_STROKE["red"], strokeWidth=3.2).encode(x=x, y=y, x2="x2:Q", y2="y2:Q", strokeDash=dash)
    pick = alt.selection_point(
        fields=["id"], name="node", on="click", clear="dblclick",
        **({"value": [{"id": selected}]} if selected else {}),
    )
    tooltip = [
        alt.Tooltip("label:N", title="label"), alt.Tooltip("value_text:N", title="value"),
        alt.Tooltip("target_text:N", title="target"),
        alt.Tooltip("baseline_text:N" if versus != "target" else "previous_text:N",
                    title=BASELINE_WORD[versus] if versus != "target" else "previous"),
        alt.Tooltip("status_text:N", title="status (against target)"), alt.Tooltip("owner:N", title="owner"),
        alt.Tooltip("link:N", title="link to children"), alt.Tooltip("path_text:N", title="red path"),
    ]
    boxes = alt.Chart(nodes).mark_rect(cornerRadius=6, cursor="pointer").encode(
        x=alt.X("x0:Q", scale=xs, axis=None), x2="x1:Q",
        y=alt.Y("y0:Q", scale=ys, axis=None), y2="y1:Q",
        fill=alt.Fill("fill:N", scale=None),
        stroke=alt.condition(pick, alt.value(INK), alt.Stroke("stroke:N", scale=None)),
        strokeWidth=alt.condition(pick, alt.value(3.5), alt.StrokeWidth("stroke_w:Q", scale=None)),
        opacity=fade,
        tooltip=tooltip,
    ).add_params(pick)
    t = layout.text
    text = alt.Chart(nodes).encode(opacity=fade)
    px = _shrunk(layout.width)
    label = text.mark_text(fontWeight="bold", fontSize=px(LABEL_SIZE), color=INK, align=t.align, baseline="top",
                           lineBreak="\n", lineHeight=px(LINE[LABEL_SIZE]), limit=px(t.label_w + 2)).encode(
        x=alt.X("lx:Q", scale=xs, axis=None), y=alt.Y("ly:Q", scale=ys, axis=None), text="label_text:N")
    values = text.mark_text(fontSize=px(VALUE_SIZE), color=ACCENT, align=t.value_align, limit=px(t.value_w)).encode(
        x=alt.X("vx:Q", scale=xs, axis=None), y=alt.Y("vy:Q", scale=ys, axis=None), text="line2:N")
    owner = text.mark_text(fontSize=px(OWNER_SIZE), color=MUTED, align=t.align, limit=px(t.owner_w + 2)).encode(
        x=alt.X("ox:Q", scale=xs, axis=None), y=alt.Y("oy:Q", scale=ys, axis=None), text="owner_text:N")
    return alt.layer(edge_layer, path_layer, boxes, label, values, owner).properties(
        width=layout.width, height=layout.height,
    ).configure_view(stroke=None)


def _shrunk(laid_out: float):
    """Text sizes that shrink with the chart when a page draws it narrower than it was laid out for.

    A page stretches the tree to its column; a column narrower than the layout squeezes the boxes but
    not the text, so labels ran out of their boxes and over the links (the Builder's preview on a
    1280 px screen). Each size is an expression of the drawn width: the laid-out size at that width
    or wider (a wider column only widens the boxes), in proportion below it."""
    def px(size: float) -> alt.ExprRef:
        return alt.ExprRef(f"{size:g} * min(1, width / {laid_out:g})")
    return px


def path_ids(evaluation: Evaluation, node_id: str, below: Sequence[str] = ()) -> list[str]:
    """The boxes of a red path drawn on the tree: the north star down to `node_id` (its ancestors),
    then `below` (the node's own red path, from the explanation)."""
    parents = {n.id: n.parent for n in evaluation.nodes}
    chain = []
    current: str | None = node_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    out = list(reversed(chain))
    out += [i for i in below if i not in out]
    return out


def with_path(spec: dict, ids: Sequence[str]) -> dict:
    """The tree spec with the red path `ids` (root first) drawn: its boxes and the links between
    consecutive boxes get `on_path` (emphasised), everything else `dim`; no path, nothing dimmed.

    Only the datasets are copied: the cached spec is untouched and nothing is rebuilt."""
    on = set(ids)
    pairs = set(zip(ids, ids[1:], strict=False))
    heads = {p for p, _ in pairs}
    out = dict(spec)
    datasets = {}
    for name, rows in spec.get("datasets", {}).items():
        if rows and "parent" in rows[0]:
            # a piece of the link parent → child, or the parent's own trunk (child == parent)
            hit = [(r["parent"], r["child"]) in pairs or (r["parent"] == r["child"] and r["parent"] in heads)
                   for r in rows]
            rows = [{**r, "on_path": h, "dim": bool(on) and not h} for r, h in zip(rows, hit, strict=True)]
        elif rows and "id" in rows[0] and "stroke_w" in rows[0]:
            rows = [{**r, "on_path": r["id"] in on, "dim": bool(on) and r["id"] not in on,
                     "stroke_w": 3.5 if r["id"] in on else 2.0,
                     "path_text": ("on it" if r["id"] in on else "off it") if on else "—"} for r in rows]
        datasets[name] = rows
    out["datasets"] = datasets
    return out


def legend_html(versus: str, baseline_key: str | None = None) -> str:
    """A one-line legend for the tree (static text, no user input): status colours and the amber
    band, solid formula versus dashed influence links, suggested targets, and what the boxes'
    figures are compared with."""
    def swatch(status: str, word: str) -> str:
        return (f'<span style="display:inline-block;width:11px;height:11px;border-radius:3px;vertical-align:-1px;'
                f'background:{STATUS_FILL[status]};border:2px solid {STATUS_STROKE[status]}"></span>&nbsp;{word}')

    def line(dashed: bool) -> str:
        return (f'<span style="display:inline-block;width:24px;height:0;vertical-align:middle;'
                f'border-top:2px {"dashed" if dashed else "solid"} {MUTED}"></span>')

    against = ("figures: value / target; “~” marks a target suggested from history, not set" if versus == "target"
               else f"figures: value (change against {BASELINE_WORD[versus]}"
               + (f", {baseline_key}" if baseline_key else "") + "); colours still against target")
    parts = [swatch("red", "off target"), swatch("amber", "near: within the amber band (5 % unless set)"),
             swatch("green", "on target"), swatch("no_target", "no target / no data"),
             swatch("maturing", "maturing: too early to tell"),
             "“≈” a recent cohort still converting: its expected final value, which its colour is judged on",
             f"{line(False)} formula (parts add up)", f"{line(True)} influence",
             f'<span style="display:inline-block;width:24px;height:0;vertical-align:middle;'
             f'border-top:3px solid {STATUS_STROKE["red"]}"></span> red path', against]
    return ('<div style="font-size:0.8rem;color:#455a64;line-height:1.6">'
            + " &nbsp;·&nbsp; ".join(parts) + "</div>")


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


def trend_chart(df: pd.DataFrame, unit: str, title: str = "",
                reference: tuple[str, float] | None = None) -> alt.LayerChart:
    """Value over the last periods with the target as a dashed line (seed 002: lines for trends);
    `reference` (period key, value) is what the view compares with when that is not the target (the
    previous period, the same period last year): a dotted level and a ring on that period. A
    maturing cohort's period (an `expected` value, see `evaluate.trend`) gets a dotted stem from its
    value so far up to a ring at its expected final value."""
    data = df.copy()
    data["value_text"] = [fmt(v, unit) for v in data["value"]]
    data["target_text"] = [fmt(v, unit) for v in data["target"]]
    base = alt.Chart(data).encode(x=alt.X("period:O", title=None, axis=alt.Axis(labelAngle=-45)))
    fmt_axis = axis_format(unit, [*data["value"], *data["target"], *([reference[1]] if reference else [])])
    value = base.mark_line(point=True, color=ACCENT).encode(
        y=alt.Y("value:Q", title=None, axis=alt.Axis(format=fmt_axis)),
        tooltip=[alt.Tooltip("period:O"), alt.Tooltip("value_text:N", title="value"),
                 alt.Tooltip("target_text:N", title="target")],
    )
    target = base.mark_line(strokeDash=[6, 4], color=MUTED).encode(y="target:Q")
    layers = [value, target]
    if "expected" in data and data["expected"].notna().any():
        # a maturing cohort's value so far dips: a dotted stem up to a ring at its expected final value
        grown = data[data["expected"].notna()].copy()
        grown["expected_text"] = [fmt(v, unit) for v in grown["expected"]]
        stem = alt.Chart(grown).encode(x=alt.X("period:O"))
        layers.append(stem.mark_rule(strokeDash=[2, 2], color=ACCENT).encode(y="value:Q", y2="expected:Q"))
        layers.append(stem.mark_point(filled=False, size=70, color=ACCENT, strokeWidth=2).encode(
            y="expected:Q", tooltip=[alt.Tooltip("period:O"), alt.Tooltip("value_text:N", title="so far"),
                                     alt.Tooltip("expected_text:N", title="expected final (maturing)"),
                                     alt.Tooltip("target_text:N", title="target")]))
    if reference is not None:
        key, level = reference
        ref = pd.DataFrame({"period": [key], "level": [level], "text": [f"{key}: {fmt(level, unit)}"]})
        layers.append(alt.Chart(ref).mark_rule(strokeDash=[2, 3], color=INK, strokeWidth=1.5).encode(
            y="level:Q", tooltip=[alt.Tooltip("text:N", title="compared with")]))
        if key in set(data["period"]):
            layers.append(alt.Chart(ref).mark_point(size=140, color=INK, strokeWidth=2, filled=False).encode(
                x=alt.X("period:O"), y="level:Q"))
    return alt.layer(*layers).properties(height=220, title=title)


def is_gain(direction: str, gap: float | None) -> bool:
    """True when a node moved the good way against what it is compared with (beats its target)."""
    return gap is not None and (gap > 0 if direction == "higher" else gap < 0)


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
    y = alt.Y("segment:N", sort=order, title=dimension_label(dimension),
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


def waterfall_chart(start_label: str, start: float | None, steps: Sequence[tuple[str, float]], end_label: str,
                    unit: str, direction: str = "higher", zero: bool = True) -> alt.Chart:
    """Baseline → each child's contribution → actual (seed 002 / PRODUCT: waterfall = attribution).

    A step is coloured by what it does to the number given its direction (`direction` of the node
    whose value the bars add up to): green when it helps, red when it hurts — a fall in churn
    helps, and is not drawn red because it is negative. Without a baseline (no target anywhere)
    the steps are drawn from zero, without the two totals.

    `zero=False` for a bridge whose movements are small against its level (ARR $155M → ±$3M moves):
    the axis starts just below the lowest level the bars reach, so the movements are visible; the
    two totals are then drawn from that floor, and the axis's first label says where it starts."""
    rows = [] if start is None else [{"step": start_label, "lo": 0.0, "hi": start, "kind": "total", "amount": start}]
    level = 0.0 if start is None else start
    for name, delta in steps:
        helps = delta <= 0 if direction == "lower" else delta >= 0
        rows.append({"step": name, "lo": min(level, level + delta), "hi": max(level, level + delta),
                     "kind": "helps" if helps else "hurts", "amount": delta})
        level += delta
    if start is not None:
        rows.append({"step": end_label, "lo": 0.0, "hi": level, "kind": "total", "amount": level})
    data = pd.DataFrame(rows, columns=["step", "lo", "hi", "kind", "amount"])
    scale = alt.Scale()
    if not zero and start is not None and len(data) > 2:
        moves = data[data["kind"] != "total"]
        low, high = float(min(moves["lo"].min(), level, start)), float(max(moves["hi"].max(), level, start))
        span = max(high - low, abs(high) * 0.01, 1e-9)
        floor = low - span * 0.5
        data.loc[data["kind"] == "total", "lo"] = floor
        scale = alt.Scale(zero=False, domain=[floor, high + span * 0.15], nice=False)
    data["text"] = [fmt(a, unit, compact=True) if k == "total" else fmt_change(a, unit)
                    for a, k in zip(data["amount"], data["kind"], strict=True)]
    data["effect"] = [{"total": "level", "helps": "helps", "hurts": "hurts"}[k] for k in data["kind"]]
    order = list(data["step"])
    fmt_axis = axis_format(unit, [*data["lo"], *data["hi"]])
    # every bar named (no label dropped for overlap) and its amount written on it
    base = alt.Chart(data).encode(
        x=alt.X("step:N", sort=order, title=None,
                axis=alt.Axis(labelAngle=-35, labelOverlap=False, labelLimit=140, labelFontSize=11)))
    bars = base.mark_bar(size=24).encode(
        y=alt.Y("lo:Q", title=None, axis=alt.Axis(format=fmt_axis), scale=scale), y2="hi:Q",
        color=alt.Color("kind:N", scale=alt.Scale(domain=["total", "helps", "hurts"],
                                                  range=[MUTED, STATUS_STROKE["green"], STATUS_STROKE["red"]]),
                        legend=None),
        tooltip=[alt.Tooltip("step:N"), alt.Tooltip("text:N", title="amount"), alt.Tooltip("effect:N", title="effect")],
    )
    amounts = base.mark_text(dy=-7, fontSize=10, color=INK).encode(y="hi:Q", text="text:N")
    return alt.layer(bars, amounts).properties(height=260)
