"""A report as one HTML page: inline CSS and SVG, no script, no font or image fetched.

Every piece of user text (tree, node and workspace names, owners, segment values, file names, the
sentences that quote them) goes through `esc` (html.escape); the SVGs come from Vega's own SVG
writer, which escapes the text it draws. The page prints as it shows (the PDF is this page).
"""

from __future__ import annotations

from html import escape

from .charts import STATUS_FILL, STATUS_STROKE, STATUS_WORD, legend_html
from .format import fmt

CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans",sans-serif;color:#263238;
 margin:0 auto;max-width:1010px;padding:24px 20px 48px;line-height:1.45;font-size:14px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid #cfd8dc;padding-bottom:3px}
h2,h3{break-after:avoid;page-break-after:avoid}
h3{font-size:16px;margin:18px 0 6px}.meta{color:#546e7a;margin:2px 0}
nav{font-size:13px;margin:10px 0}nav a{color:#1f5f8b;margin-right:14px}
svg{max-width:100%;height:auto;display:block}
figure{margin:10px 0 14px;break-inside:avoid;page-break-inside:avoid}
figcaption{font-size:12.5px;color:#455a64;margin-bottom:4px}figcaption b{color:#263238}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600;border:2px solid}
.node{border-top:1px solid #eceff1;padding-top:4px;break-before:auto}
.node h3{break-after:avoid;page-break-after:avoid}
.figures{font-size:13px;color:#1f5f8b}.owner{font-weight:600}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 12px;width:100%}
th,td{border-bottom:1px solid #e0e0e0;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f5f7f8}td.n{text-align:right;white-space:nowrap}
tr{break-inside:avoid;page-break-inside:avoid}
.warn li{margin:2px 0}.note{font-size:12.5px;color:#546e7a}
ol.path li,ul.causes li{margin:4px 0}
footer{margin-top:28px;font-size:12px;color:#607d8b}
@page{size:A4;margin:14mm 12mm}
@media print{body{padding:0;max-width:none}nav{display:none}a{color:inherit;text-decoration:none}}
"""


def esc(value: object) -> str:
    """User text as HTML text or attribute value: `<`, `>`, `&` and both quotes escaped."""
    return escape("" if value is None else str(value), quote=True)


def _badge(status: str) -> str:
    return (f'<span class="badge" style="background:{STATUS_FILL.get(status, "#eee")};'
            f'border-color:{STATUS_STROKE.get(status, "#999")}">{esc(STATUS_WORD.get(status, status))}</span>')


def _anchor(node_id: str) -> str:
    return "node-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in node_id)


def _table(header, rows, numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{esc(c)}</td>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report) -> str:
    ev = report.evaluation
    period = report.period
    counts = {s: sum(1 for n in ev.nodes if n.status == s) for s in STATUS_WORD}
    root = ev.nodes[0]
    state = "complete" if ev.complete else f"running, {root.elapsed:.0%} elapsed — flows judged on pace"
    against = ("their targets" if report.versus == "target" else
               f"{'the previous period' if report.versus == 'previous' else 'the same period last year'} "
               f"({report.baseline_key}); colours stay against target")
    title = f"{report.tree_name} · {period.key}"
    charted = {s.id for s in report.sections}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>KPI report — {esc(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1>",
        f'<p class="meta">Workspace <b>{esc(report.workspace)}</b> · tree <b>{esc(report.tree_name)}</b>'
        + (f" ({esc(report.tree_file)})" if report.tree_file else "")
        + f" · period <b>{esc(period.key)}</b> ({esc(period.start)} to {esc(period.end)}, {esc(state)})</p>",
        f'<p class="meta">Figures compared with {esc(against)} · data as of <b>{esc(report.as_of)}</b> · '
        f"report made {esc(report.generated_at.strftime('%Y-%m-%d %H:%M UTC'))}</p>",
        f'<p class="meta">{counts["red"]} red, {counts["amber"]} amber, {counts["green"]} green, '
        f'{counts["no_target"]} without target, {counts["no_data"]} without data.</p></header>',
        '<nav><a href="#tree">Tree</a><a href="#red-path">Red path and causes</a><a href="#nodes">Red numbers and causes</a>'
        '<a href="#data">Data and quality</a><a href="#values">Every number</a></nav>',
        '<section id="tree"><h2>The tree</h2>', legend_html(report.versus, report.baseline_key),
        f'<figure class="tree">{report.tree_svg}</figure></section>',
        _red_path(report, charted),
        _nodes(report),
        _data(report),
        _values(report, charted),
        _footer(report),
        "</body></html>",
    ]
    return "\n".join(parts)


def _link(label: str, node_id: str, charted: set[str]) -> str:
    return f'<a href="#{esc(_anchor(node_id))}">{esc(label)}</a>' if node_id in charted else esc(label)


def _red_path(report, charted: set[str]) -> str:
    result = report.explanation
    out = ['<section id="red-path"><h2>Red path — where to look and who to talk to</h2>']
    if result is None:
        out.append("<p>No explanation for this period.</p></section>")
        return "".join(out)
    out.append(f"<p><b>{esc(result.headline())}</b> Owner: <span class=owner>{esc(result.owner)}</span>.</p>")
    if result.red_path:
        out.append('<ol class="path">')
        for step in result.red_path:
            said = " ".join(x for x in (step.sentence, step.segment_sentence) if x)
            out.append(f"<li>{_link(step.label, step.id, charted)} {_badge(step.status)} — owner "
                       f"<span class=owner>{esc(step.owner)}</span>: {esc(said)}</li>")
        out.append("</ol>")
    lever = result.red_path[-1].id if result.red_path else None
    others = [c for c in result.causes if c.id != lever or c.also]
    if others:
        out.append("<h3>Every other cause</h3><ul class=causes>")
        for c in others:
            where = " → ".join(c.path_labels[1:]) or c.label
            said = c.sentences()[1:] if c.id == lever else c.sentences()
            aside = f" <i>({esc(c.aside)}.)</i>" if c.aside else ""
            out.append(f"<li><b>{_link(where, c.id, charted)}</b> {_badge(c.status)} — owner "
                       f"<span class=owner>{esc(c.owner)}</span>: {esc(' '.join(said))}{aside}</li>")
        out.append("</ul>")
    if result.unlisted:
        out.append('<ul class="note">' + "".join(f"<li>{esc(why)}</li>" for _, why in result.unlisted) + "</ul>")
    out.append("</section>")
    return "".join(out)


def _nodes(report) -> str:
    out = ['<section id="nodes"><h2>The red numbers and the causes, one by one</h2>']
    if not report.sections:
        out.append("<p>No number is off target in this period.</p>")
    for s in report.sections:
        out.append(f'<section class="node" id="{esc(_anchor(s.id))}" data-charts="{len(s.charts)}">'
                   f"<h3>{esc(s.label)} {_badge(s.status)}</h3>")
        out.append(f'<p>Owner <span class=owner>{esc(s.owner)}</span> · <span class="figures">{esc(s.figures)}'
                   "</span></p>")
        out.extend(f"<p>{esc(x)}</p>" for x in s.sentences)
        for c in s.charts:
            out.append(f'<figure class="chart chart-{esc(c.kind)}"><figcaption><b>{esc(c.title)}</b> — '
                       f"{esc(c.caption)}</figcaption>{c.svg}</figure>")
        if s.segment_table:
            header, *rows = s.segment_table
            out.append(_table(header, rows, numeric=set(range(1, len(header)))))
        out.extend(f'<p class="note">{esc(n)}</p>' for n in s.notes)
        out.append("</section>")
    out.append("</section>")
    return "".join(out)


def _data(report) -> str:
    rows = [(d.table, f"{d.rows:,}", d.first or "—", d.last or "—", d.files or "—", d.loaded_at or "—",
             f"{d.rejected:,}") for d in report.data]
    out = ['<section id="data"><h2>Data and quality</h2>',
           f"<p>Data as of {esc(report.as_of)} (the latest day with data). Each table, the days it covers and its "
           "latest load:</p>",
           _table(("table", "rows", "first day", "last day", "latest load (files)", "loaded (UTC)", "rejected rows"),
                  rows, numeric={1, 6}),
           "<h3>Quality warnings</h3>"]
    if report.warnings:
        out.append('<ul class="warn">' + "".join(f"<li>{esc(w)}</li>" for w in report.warnings) + "</ul>")
    else:
        out.append("<p>None: every number has data, every target is set, every number has an owner.</p>")
    out.append("</section>")
    return "".join(out)


def _values(report, charted: set[str]) -> str:
    from .report import target_source

    compare = report.versus != "target"
    header = ["number", "status", "value", "target", "target source",
              *([report.baseline_key or "baseline"] if compare else []), "previous", "owner"]
    body = []
    for n in report.evaluation.nodes:
        mark = "~" if n.target is not None and n.target_basis else ""
        value = fmt(n.value, n.unit) + (f" (pace {fmt(n.pace, n.unit)})" if n.pace is not None else "")
        cells = [_link(n.label, n.id, charted), _badge(n.status), esc(value), esc(mark + fmt(n.target, n.unit)),
                 esc(target_source(n))]
        if compare:
            cells.append(esc(fmt(report.baselines.get(n.id), n.unit)))
        cells += [esc(fmt(n.previous, n.unit)), esc(n.owner)]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return (f'<section id="values"><h2>Every number</h2><p>Targets marked ~ are suggested from the workspace\'s own '
            f"history, not set by a person.</p><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
            "</table></section>")


def _footer(report) -> str:
    how = list(report.explanation.how_computed()) if report.explanation is not None else []
    items = "".join(f"<li>{esc(h)}</li>" for h in how)
    return (f"<footer><b>How this was computed</b><ul>{items}</ul>"
            "<p>Made by KPI Tree from the workspace's own data; this file needs no network to open.</p></footer>")
