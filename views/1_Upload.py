"""Upload: CRM and billing exports in, a data-quality report out, into this session's workspace.

Flow: pick (or create) a workspace → choose replace or append → drop files → see what each file
was recognised as → map any unrecognised file once (saved, reused) → load → report, with the
stage → open/won/lost table editable and saved per workspace. Layout and calls into `kpitree`
only; reading, mapping and checking are `kpitree.ingest`'s.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import streamlit as st

import ui
from kpitree import access
from kpitree.detect import not_a_segment, suggest_mapping, suggest_table
from kpitree.errors import KpiTreeError
from kpitree.ingest import LoadReport, detect_files, ingest, load_lock, preview_mapping, rejects_csv
from kpitree.plain import markdown_text as md
from kpitree.schema import TABLES
from kpitree.suggest import resuggest_active
from kpitree.vendors import (
    CENTS_HEADER,
    DERIVED,
    EXPORT_NAMES,
    LAYOUT,
    OMIT,
    FormDefaults,
    form_start,
    leave_out,
    left_out,
    mapped_headers,
    money_columns,
)
from kpitree.workspace import Workspace, create_workspace, safe_file_name

st.set_page_config(page_title="Upload · KPI Tree", page_icon="🌳", layout="wide")

# Excel workbooks are let through to be named and refused with what to do ("save it as 'CSV UTF-8'"): turned
# away by the uploader itself, the user read only "application/vnd.openxmlformats-… files are not allowed".
FILE_TYPES = ["csv", "tsv", "txt", "gz", "zip", "parquet", "xlsx", "xls"]
MODES = {
    "replace": "Replace — each table these files fill is swapped for their rows (loading twice changes nothing)",
    "append": "Append — add rows; a row whose id is already there replaces it; the same file is never added twice",
}
STATUSES = ["open", "won", "lost"]
AUTO, SKIP = "", "skip"
CHUNK = 8 << 20


def main() -> None:
    st.sidebar.title("KPI Tree")
    try:
        ws = ui.choose_workspace()
    except KpiTreeError as exc:
        st.error(md(exc))
        return
    st.title("Upload data")
    if ws is None:
        new_workspace_form(first=True)
        return
    with st.sidebar.expander("New workspace"):
        new_workspace_form(first=False)
    if not ui.may(ws, "load"):  # a viewer: the navigation hides this page, a link must not open it
        st.warning(f"You can view workspace **{md(ws.name)}** but not load data into it: ask one of its owners "
                   "to make you an editor (Workspaces page).")
        return
    st.caption(f"Into workspace **{md(ws.name)}** — only this browser session's choice; other workspaces are untouched. "
               f"{', '.join(EXPORT_NAMES[:-1])} and {EXPORT_NAMES[-1]} exports and the 'CRM Sales Opportunities' files "
               "are recognised by their headers; anything else is mapped once and remembered.")
    mode = st.radio("If a table already has data", list(MODES), format_func=MODES.get, key="upload_mode")
    files = st.file_uploader("CRM and billing exports (CSV, TSV, semicolon CSV, Parquet, .gz, .zip of CSVs)", type=FILE_TYPES,
                             accept_multiple_files=True, key="upload_files")
    if not files:
        st.session_state.pop("upload_report", None)
        st.session_state.pop(REJECTS, None)
        saved_mappings(ws)
        stage_map_editor(ws)
        return
    staged = stage_files(ws, files)
    chosen = choices()
    detections = detected(ws, staged, chosen)
    ready = show_detections(ws, staged, detections)
    if ready:
        loading = {d.file for d in detections if d.role != "skipped"}
        for file, said in (st.session_state.get(REJECTS) or {}).items():
            if said and file in loading:  # the mapping's preview said so: said again where the load is decided
                st.warning(f"{md(file)}: {md(said)}", icon=":material/warning:")
        label = f"Load {len(staged)} file{'s' if len(staged) > 1 else ''} into '{md(ws.name)}' ({mode})"
        if st.button(label, type="primary", key="load"):
            run_load(ws, staged, mode, chosen)
    report = st.session_state.get("upload_report")
    if report is not None and st.session_state.get("upload_report_ws") == ws.name:
        stale_targets(ws)
        show_report(ws, report)
        if st.session_state.get("upload_stage_saved"):
            if st.button("Load the same files again with the saved stage map", key="reload"):
                run_load(ws, staged, mode, chosen, reappend=True)
                st.rerun()
    saved_mappings(ws)
    stage_map_editor(ws)


# --- workspace -----------------------------------------------------------------------------------


def new_workspace_form(first: bool) -> None:
    if not ui.may(None, "create"):
        return
    if first:
        st.info(f"No workspace yet under {md(ui.data_dir())}: name one to start.")
    st.text_input("Workspace name", key="new_ws_name", placeholder="e.g. acme-q3")
    st.button("Create workspace", key="create_ws", on_click=_create_workspace)
    if st.session_state.get("create_ws_error"):
        st.error(md(st.session_state["create_ws_error"]))


def _create_workspace() -> None:
    name = (st.session_state.get("new_ws_name") or "").strip()
    try:
        if not ui.may(None, "create"):
            raise KpiTreeError("Sign in to create a workspace.")
        ws = create_workspace(ui.data_dir(), name)
        access.claim(ws, ui.current_user())  # a signed-in user owns what they create
    except KpiTreeError as exc:
        st.session_state["create_ws_error"] = str(exc)
        return
    st.session_state.pop("create_ws_error", None)
    ui.select_workspace(name)  # callbacks run before the picker is drawn, so this selects it
    st.query_params["ws"] = name


# --- files ---------------------------------------------------------------------------------------


def stage_files(ws: Workspace, files: list) -> list[Path]:
    """Writes this batch of uploads under the workspace's uploads/ folder once, with a progress bar."""
    signature = (ws.name, tuple((f.name, f.size, getattr(f, "file_id", "")) for f in files))
    if st.session_state.get("upload_sig") == signature and all(Path(p).exists()
                                                               for p in st.session_state["upload_paths"]):
        return [Path(p) for p in st.session_state["upload_paths"]]
    old = st.session_state.get("upload_dir")
    if old and not st.session_state.get("upload_loaded") and Path(old).is_dir():
        shutil.rmtree(old, ignore_errors=True)  # a batch that was never loaded is not kept
    folder = ws.new_upload_dir()
    total = max(sum(f.size for f in files), 1)
    done = 0
    bar = st.progress(0.0, text="Receiving files…")
    paths: list[Path] = []
    for f in files:
        name = safe_file_name(f.name)
        path = folder / name
        n = 1
        while path.exists():
            path = folder / f"{n}-{name}"
            n += 1
        f.seek(0)
        with open(path, "wb") as out:
            while chunk := f.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                bar.progress(min(done / total, 1.0), text=f"Saving {md(f.name)} ({done >> 20} of {total >> 20} MB)")
        paths.append(path)
    bar.empty()
    st.session_state.update(upload_sig=signature, upload_paths=[str(p) for p in paths], upload_dir=str(folder),
                            upload_loaded=False)
    st.session_state.pop("upload_report", None)
    st.session_state.pop("upload_stage_saved", None)
    return paths


def choices() -> dict:
    """The user's per-file choices (table or skip) and the batch's append switch, as the last run left them."""
    tables, skip = {}, set()
    for key, value in st.session_state.items():
        if isinstance(key, str) and key.startswith("choose::") and value and value != AUTO:
            name = key.split("::", 1)[1]
            if value == SKIP:
                skip.add(name)
            else:
                tables[name] = value
    return {"tables": tables, "skip": skip, "combine": bool(st.session_state.get("upload_combine"))}


def detected(ws: Workspace, staged: list[Path], chosen: dict) -> list:
    """What each file was recognised as; recomputed when the files, the choices or the saved mappings change."""
    version = (st.session_state.get("upload_sig"), tuple(map(str, staged)), tuple(sorted(ws.mappings())),
               tuple(sorted(chosen["tables"].items())), tuple(sorted(chosen["skip"])), chosen["combine"])
    if st.session_state.get("detect_version") != version:
        with st.spinner("Reading headers…"):
            st.session_state["detections"] = detect_files(ws, staged, **chosen)
        st.session_state["detect_version"] = version
    return st.session_state["detections"]


ROLES = {"side": "side file (joined in)", "ignored": "not loaded", "skipped": "skipped"}


def show_detections(ws: Workspace, staged: list[Path], detections: list) -> bool:
    """Per file: what it was taken for and why, with controls to change the table, skip it or map it.

    Returns True when every file can load (or is skipped) and no two files collide on one table.
    """
    st.subheader("What the files are")
    rows = [{"file": d.file, "recognised as": d.label or "—", "table": d.table or ROLES.get(d.role, "—"),
             "columns used": len(d.mapping), "unmapped columns": len(d.unmapped),
             "problem": "needs a mapping" if d.needs_mapping else (d.problem or d.conflict or "")} for d in detections]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="detections_table")
    if any(d.conflict for d in detections) or st.session_state.get("upload_combine"):
        st.checkbox("Append files of one table (several exports of the same table)", key="upload_combine")
    for d in detections:
        with st.container(border=True):
            file_controls(ws, staged, d)
    blocking = [d for d in detections if d.role != "skipped" and (d.problem or d.needs_mapping)]
    conflicts = [d for d in detections if d.conflict and not st.session_state.get("upload_combine")]
    if blocking or conflicts:
        st.info(f"{len(blocking) + len(conflicts)} file(s) need a decision above: choose a table, map the columns, "
                "or skip the file. The rest is ready.")
    return not blocking and not conflicts


def file_controls(ws: Workspace, staged: list[Path], d) -> None:
    """One file: its verdict and evidence, the table/skip choice, and its mapping (shown or to fill in)."""
    head, pick = st.columns([3, 2])
    target = d.table or ROLES.get(d.role, "needs a decision")
    head.markdown(f"**{md(d.file)}** → {md(target)}" + (f" — {md(d.label)}" if d.label and d.role != "skipped" else ""))
    if d.evidence:
        head.caption(md("Why: " + "; ".join(d.evidence[:8])))
    options = [AUTO, *TABLES, SKIP]
    labels = {AUTO: "as detected", SKIP: "skip this file"}
    pick.selectbox("Load as", options, format_func=lambda o: labels.get(o, f"table {o}"), key=f"choose::{d.file}",
                   help="Override the detected table, or leave the file out of this load")
    if d.conflict:
        st.warning(md(d.conflict))
    if d.role == "skipped":
        return
    if d.problem and not d.needs_mapping:
        st.error(md(d.problem))
        return
    editing = st.session_state.get(f"edit::{d.file}", False)
    if d.needs_mapping or editing:
        if d.problem:
            st.warning(md(d.problem))
        mapping_form(ws, staged, d)
        return
    if d.role in ("table", "side"):
        with st.expander(f"Columns of {md(d.file)}: {len(d.mapping)} used, {len(d.unmapped)} kept as extra text"):
            st.dataframe(pd.DataFrame({"column": list(d.mapping), "from the file's": list(d.mapping.values())}),
                         hide_index=True, key=f"mapping_{d.file}")
            for rule in d.rules:
                st.markdown(f"- {md(rule)}")
            if d.unmapped:
                st.caption(md("Kept as extra text columns: " + ", ".join(d.unmapped)))
            st.button("Change the mapping", key=f"edit_btn::{d.file}", on_click=_set, args=(f"edit::{d.file}", True))
    elif d.rules:
        st.caption(md("; ".join(d.rules)))


def _set(key: str, value) -> None:
    st.session_state[key] = value


def _keep_detected(file: str) -> None:
    """Back to the detected mapping: what the edited mapping's preview said it would reject no longer holds."""
    st.session_state[f"edit::{file}"] = False
    (st.session_state.get(REJECTS) or {}).pop(file, None)


FILL_OPTIONS = {
    ("deals", "status"): ("", "won", "lost", "open"),
    ("deals", "deal_type"): ("new", "expansion", "renewal", ""),
}


AS_DETECTED = "(derived, as detected)"


def column_choices(headers: list[str], table: str, defaults: dict[str, str | None], key: str,
                   derived: dict[str, str] | None = None) -> dict[str, str]:
    """One select per canonical column of `table` (the file's headers or none), three to a row.

    A column the recognised layout makes from several (`derived`: column → how) starts on
    AS_DETECTED and stays made that way unless the user picks a column; the layout's own entries
    (`layout:`) are carried through, so the saved mapping is the layout with the user's changes."""
    derived = derived or {}
    columns: dict[str, str] = {k: h for k, h in defaults.items() if h and k.startswith(LAYOUT)}
    cols = st.columns(3)
    for i, col in enumerate(TABLES[table].columns):
        label = f"{col.name} ({col.type.value}{', required' if col.required else ''})"
        if col.name == "status" and table == "deals":
            label = "status (open/won/lost; or leave empty and map stage, or set it below)"
        made = col.name in derived and DERIVED + col.name in defaults
        options = [AS_DETECTED, "—", *headers] if made else ["—", *headers]
        default = AS_DETECTED if made else defaults.get(col.name)
        choice = cols[i % 3].selectbox(label, options, index=options.index(default) if default in options else 0,
                                       key=f"{key}_{table}_{col.name}",
                                       help=f"As detected: {derived[col.name]}" if made else None)
        if choice == AS_DETECTED:
            columns[DERIVED + col.name] = str(defaults[DERIVED + col.name])
        elif choice != "—":
            columns[col.name] = choice
    made = [c for c in derived if DERIVED + c in columns]
    if made:
        st.caption(md("Derived as detected (kept unless you pick a column): "
                      + "; ".join(f"{c}: {derived[c]}" for c in made)))
    return columns


def omit_choices(headers: list[str], columns: dict[str, str], defaults: list[str], key: str,
                 why: dict[str, str] | None = None) -> dict[str, str]:
    """`columns` plus the file columns the user leaves out: not loaded, and so never a drill dimension
    (an unmapped column is otherwise kept as extra text, and one with a few values becomes a split)."""
    free = [h for h in headers if h not in mapped_headers(columns)]
    picked = st.multiselect("Leave these columns out (not loaded, never offered as a split)", free,
                            default=[h for h in defaults if h in free], key=f"{key}_omit",
                            help="Columns neither mapped nor left out are kept as extra text columns; one with a few "
                                 "values is offered as a drill dimension. A status or a period label is no segment.")
    flagged = {h: w for h, w in (why or {}).items() if h in picked}
    if flagged:
        st.caption(md("Left out because " + "; ".join(f"{h} is {w}" for h, w in flagged.items())
                      + " — remove it from the list to keep it."))
    return leave_out(columns, picked)


UNIT_WORDS = {"units": "currency units (33.00 is 33.00)", "cents": "cents (3300 is 33.00)"}


def unit_choices(table: str, columns: dict[str, str], saved: dict[str, str], key: str) -> dict[str, str]:
    """Each money column read from one file column: in currency units or in cents (divided by 100 when loaded).

    Starts on the saved mapping's unit, else cents when the header says so (`price_in_cents`), else units.
    Why: an export in cents (Close's `value`, 3130000 for $31,300) read as units made every amount 100× and
    an average deal of $1.26M (trial 4); a column made from several by a layout keeps the layout's rule."""
    money = [c for c in money_columns(table) if columns.get(c)]
    if not money:
        return {}
    units: dict[str, str] = {}
    cols = st.columns(min(len(money), 3))
    for i, col in enumerate(money):
        header = columns[col]
        start = saved.get(col) or ("cents" if CENTS_HEADER.search(header) else "units")
        units[col] = cols[i % 3].radio(f"{col} (from {md(header)}) is in", list(UNIT_WORDS), format_func=UNIT_WORDS.get,
                                       index=list(UNIT_WORDS).index(start) if start in UNIT_WORDS else 0,
                                       horizontal=True, key=f"{key}_unit_{col}")
    return units


def fill_choices(table: str, defaults: dict[str, str], key: str) -> dict[str, str]:
    """Constants and defaults: a won-deals file's status, the deal type a blank one counts as."""
    fill: dict[str, str] = {}
    wanted = [(c, opts) for (t, c), opts in FILL_OPTIONS.items() if t == table]
    if not wanted:
        return fill
    cols = st.columns(len(wanted))
    for (col, opts), box in zip(wanted, cols, strict=True):
        default = defaults.get(col, opts[0])
        label = {"status": "When the file has no status (or it is blank), every row is",
                 "deal_type": "A blank or missing deal type counts as"}[col]
        value = box.selectbox(label, opts, index=opts.index(default) if default in opts else 0,
                              format_func=lambda o: o or "— (no rule)", key=f"{key}_fill_{col}")
        if value:
            fill[col] = value
    return fill


PER_WORDS = {"": "per month (as it is)", "arr": "per year (divided by 12)",
             "per_cycle": "per billing cycle (divided by the months each bill covers)"}
PLAN_NAME = "the plan's name (annual / yearly 12, quarterly 3, else 1)"
REJECTS = "upload_rejects"  # file → what its mapping's preview said it would reject (shown again at the Load button)


def period_choices(table: str, columns: dict[str, str], headers: list[str], saved: dict, key: str
                   ) -> tuple[dict[str, str], dict[str, str]]:
    """(derive, columns): what period the mrr column's amounts cover, and for a price per billing cycle the column
    saying how many months each bill covers (none: the plan's name decides).

    Why: a billing export's price is what one bill charges — a yearly plan's is a year's. Trial E mapped Braintree's
    Price as MRR and every ARR was 11 times too high, with no way on this screen to say "per billing cycle"."""
    header = columns.get("mrr")
    if table != "subscriptions" or not header or any(k.startswith(LAYOUT) for k in columns):
        return {}, columns
    mine = saved.get("table") == table
    start = str((saved.get("derive") or {}).get("mrr") or "") if mine else ""
    left, right = st.columns(2)
    per = left.radio(f"mrr (from {md(header)}) is an amount", list(PER_WORDS), format_func=PER_WORDS.get,
                     index=list(PER_WORDS).index(start) if start in PER_WORDS else 0, key=f"{key}_per_mrr",
                     help="A billing export's price is what one bill charges: a yearly plan's is a year's")
    if per != "per_cycle":
        return ({"mrr": per} if per else {}), columns
    options = [PLAN_NAME, *(h for h in headers if h != header and h not in mapped_headers(columns))]
    was = (saved.get("columns") or {}).get("billing_months") if mine else None
    months = right.selectbox("The months each bill covers, from", options,
                             index=options.index(was) if was in options else 0, key=f"{key}_billing_months",
                             help="A column holding a number of months (12) or an interval (month, quarter, year); "
                                  "else the plan's name")
    return {"mrr": per}, ({**columns, "billing_months": months} if months != PLAN_NAME else columns)


def mapping_form(ws: Workspace, staged: list[Path], d) -> None:
    """Column → canonical field for a file, with guesses, constants, a preview, and a save."""
    key = d.header_key
    st.markdown(f"**Map the columns of {md(d.file)}**")
    width = len(d.headers)
    st.caption("The file's first rows, as they are:")
    st.dataframe(pd.DataFrame([(r + [""] * width)[:width] for r in d.sample], columns=d.headers),
                 hide_index=True, key=f"sample_{key}")
    tables = list(TABLES)
    first = d.chosen if d.chosen in TABLES else d.table or d.closest or suggest_table(d.headers, d.sample, d.file)
    table = st.selectbox("Canonical table", tables, index=tables.index(first), key=f"map_table_{key}")
    saved = ws.load_mapping(key) or {}
    start = form_defaults(d, table, saved)
    columns = column_choices(d.headers, table, start.columns, f"map_{key}", start.derived)
    # Lifecycle and period columns are left out unless the user keeps them (a saved choice is kept as saved).
    values = {h: [r[i] for r in d.sample if i < len(r)] for i, h in enumerate(d.headers)}
    why = {h: w for h in d.headers if h not in mapped_headers(columns) and (w := not_a_segment(h, values[h]))}
    omitted = left_out(saved.get("columns") or {}) if saved.get("table") == table else list(why)
    columns = omit_choices(d.headers, columns, omitted, f"map_{key}_{table}", why)
    fill = fill_choices(table, start.fill, f"map_{key}")
    units = unit_choices(table, columns, saved.get("units") or {} if saved.get("table") == table else {}, f"map_{key}")
    derive, columns = period_choices(table, columns, d.headers, saved, f"map_{key}")
    path = source_path(staged, d.file)
    preview = preview_mapping(path, table, columns, member=d.file if ":" in d.file else None,
                              stage_map=ws.stage_map(), fill=fill, units=units, derive=derive)
    st.session_state.setdefault(REJECTS, {})[d.file] = None if preview.error else preview.summary
    if preview.error:
        st.warning(f"With this mapping: {md(preview.error)}")
    else:
        cents = [c for c, u in units.items() if u == "cents"]
        checked = f"the first {preview.rows_read:,}" if preview.partial else f"{preview.rows_read:,}"
        st.caption(f"Preview: the first {len(preview.rows)} rows as they would load"
                   + (f" ({', '.join(cents)} divided by 100: the file writes cents)" if cents else "")
                   + (f"; {preview.rows_rejected:,} of {checked} rows would be rejected (the first "
                      f"{min(len(preview.rejected), 20)} below)" if preview.rows_rejected else
                      f"; all {checked} rows were checked: none would be rejected"))
        st.dataframe(pd.DataFrame(preview.rows), hide_index=True, key=f"preview_{key}")
        if preview.rejected:
            st.dataframe(pd.DataFrame([r.__dict__ for r in preview.rejected[:20]]), hide_index=True,
                         key=f"preview_rejects_{key}")
    if preview.summary and not preview.error:
        # Said before the save and the load, not after (trial E: 141 of 1,750 opportunities, 8 %, went at load
        # while the preview said "1 of 20 sample rows").
        st.warning(md(preview.summary), icon=":material/warning:")
    left, right = st.columns(2)
    left.button("Save this mapping", key=f"save_map_{key}", disabled=bool(preview.error), type="primary",
                on_click=_save_mapping, args=(ws, key, d.headers, table, columns, fill, d.file, units, derive))
    if st.session_state.get(f"edit::{d.file}"):
        right.button("Keep the detected mapping", key=f"cancel_map_{key}", on_click=_keep_detected, args=(d.file,))


def form_defaults(d, table: str, saved: dict) -> FormDefaults:
    """Where the mapping screen starts: the saved mapping, else exactly what detection reads (a
    recognised layout's columns, derived ones marked; a matched-by-name file's matched columns), else
    a guess from the headers (a file that needs a mapping)."""
    start = form_start(d.headers, table, saved)
    if start is not None:
        return start
    if d.table == table and not d.needs_mapping and d.mapping:
        return FormDefaults({c: h for c, h in d.mapping.items() if h in d.headers}, {}, {})
    return FormDefaults({c: h for c, h in suggest_mapping(d.headers, table, d.sample).items() if h}, {}, {})


def _save_mapping(ws: Workspace, key: str, headers: list[str], table: str, columns: dict[str, str],
                  fill: dict[str, str], file: str, units: dict[str, str] | None = None,
                  derive: dict[str, str] | None = None) -> None:
    ws.save_mapping(key, headers, table, columns, fill=fill, file=file, units=units or None, derive=derive or None)
    st.session_state[f"choose::{file}"] = AUTO  # the saved mapping now decides
    st.session_state.pop(f"edit::{file}", None)
    st.session_state.pop("detect_version", None)


def saved_mappings(ws: Workspace) -> None:
    """Every mapping this workspace saved: what it reads, and edit or delete it."""
    saved = ws.mappings()
    with st.expander(f"Saved mappings of '{md(ws.name)}' ({len(saved)})"):
        if not saved:
            st.caption("None yet: a mapping is saved when you map an unrecognised file or change a detected one.")
        for key, m in saved.items():
            table = m.get("table", "?")
            st.markdown(f"**{md(m.get('file') or 'a file')}** → {md(table)} · {len(m.get('headers', []))} columns · "
                        f"saved {md(m.get('saved_at', '?'))}")
            start = form_start(list(m.get("headers") or []), table, m) if table in TABLES else None
            derived = start.derived if start else {}
            unit = m.get("units") or {}
            per = (m.get("derive") or {}).get("mrr")
            rows = [{"column": c, "from the file's": h + (" (in cents)" if unit.get(c) == "cents" else "")
                     + (f" ({PER_WORDS[per]})" if c == "mrr" and per in PER_WORDS else "")}
                    for c, h in (m.get("columns") or {}).items() if not c.startswith((OMIT, LAYOUT, DERIVED))]
            rows += [{"column": c, "from the file's": f"derived, as detected: {how}"} for c, how in derived.items()]
            rows += [{"column": "(left out)", "from the file's": h} for h in left_out(m.get("columns") or {})]
            rows += [{"column": c, "from the file's": f"constant / default {v!r}"} for c, v in
                     (m.get("fill") or {}).items()]
            st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"saved_map_{key}")
            if st.session_state.get("_mapping_saved") == key:  # under the saved mapping, where the form closed
                st.success("Saved: the next load of files with these headers reads them this way — load the files "
                           "again (above) to apply it to the data already in the workspace.", icon=":material/check:")
            edit, delete = st.columns(2)
            if edit.toggle("Edit", key=f"saved_edit_{key}") and table in TABLES:
                headers = list(m.get("headers") or [])
                columns = column_choices(headers, table, m.get("columns") or {}, f"saved_{key}", derived)
                columns = omit_choices(headers, columns, left_out(m.get("columns") or {}), f"saved_{key}_{table}")
                fill = fill_choices(table, m.get("fill") or {}, f"saved_{key}")
                units = unit_choices(table, columns, m.get("units") or {}, f"saved_{key}")
                derive, columns = period_choices(table, columns, headers, m, f"saved_{key}")
                st.button("Save changes", key=f"saved_save_{key}", on_click=_save_changes,
                          args=(ws, key, headers, table, columns, fill, m.get("file"), units, derive))
            if delete.button("Delete", key=f"saved_delete_{key}"):
                ws.delete_mapping(key)
                st.session_state.pop("detect_version", None)
                st.rerun()


def _save_changes(ws: Workspace, key: str, headers: list[str], table: str, columns: dict[str, str],
                  fill: dict[str, str], file: str | None, units: dict[str, str] | None = None,
                  derive: dict[str, str] | None = None) -> None:
    """Saves an edited mapping before the page is drawn, so its table above the form shows what was saved
    and the confirmation sits beside it (drawn after the form, it showed below the fold, next to a table
    still listing the old mapping: trial 4 saw no confirmation)."""
    try:
        ws.save_mapping(key, headers, table, columns, fill=fill, file=file, units=units or None,
                        derive=derive or None)
    except (KpiTreeError, OSError) as exc:
        st.session_state["_mapping_saved"] = None
        st.toast(f"Not saved: {md(exc)}", icon=":material/error:")
        return
    st.session_state.pop("detect_version", None)
    st.session_state[f"saved_edit_{key}"] = False  # the form closes; the table shows the saved mapping
    st.session_state["_mapping_saved"] = key
    st.toast(f"Mapping of {md(file or 'a file')} saved", icon=":material/check:")


def source_path(staged: list[Path], shown: str) -> Path:
    """The staged file a detection came from (an archive member reports `archive.zip:member`)."""
    outer = shown.split(":", 1)[0]
    return next((p for p in staged if p.name == outer), staged[0])


# --- loading and the report ----------------------------------------------------------------------


def run_load(ws: Workspace, staged: list[Path], mode: str, chosen: dict, reappend: bool = False) -> None:
    if not ui.may(ws, "load"):  # checked again when it runs: a role can change between reruns
        st.error(f"You may not load data into workspace **{md(ws.name)}**.")
        return
    bar = st.progress(0.0, text="Starting…")
    try:
        report = ingest(ws, staged, mode=mode, reappend=reappend, **chosen,
                        on_progress=lambda f, msg: bar.progress(min(max(f, 0.0), 1.0), text=md(msg)))
    except KpiTreeError as exc:  # a bad file (LoadError) or a busy workspace
        bar.empty()
        st.error(f"{md(exc)}\n\nNothing was loaded: the workspace is exactly as it was.")
        st.session_state.pop("upload_report", None)
        return
    bar.empty()
    st.session_state.update(upload_report=report, upload_report_ws=ws.name, upload_loaded=True)
    st.session_state.pop("upload_stage_saved", None)
    from kpitree.suggest import first_tree  # a first load gives the workspace its own tree, from its data

    try:
        with load_lock(ws):  # one suggestion, even when a command-line load of this workspace ends at the same time
            made = first_tree(ws)
    except KpiTreeError as exc:  # another load held the workspace for minutes: the data is in, the tree can wait
        st.info(md(f"No tree was suggested yet: {exc}"))
        return
    if made is not None:
        (st.success if made.tree is not None else st.info)(md(made.message))
    elif report.tables:  # the workspace had its tree: were its suggested targets planned from other data?
        try:
            found = resuggest_active(ws, ui.engine_for(ws))
        except KpiTreeError as exc:
            st.info(md(f"Whether the tree's suggested targets still fit the new data could not be checked: {exc}"))
            return
        if found is not None and found.done.stale:  # kept with the flag: planned once per load, not per rerun
            st.session_state["upload_stale"] = (ws.name, found)


def stale_targets(ws: Workspace) -> None:
    """After a load that moved the data under the active tree's suggested targets: say so, and offer to plan
    them again from the data as it is now (targets typed by a person stay)."""
    ui.show_said("_resuggested")
    kept = st.session_state.get("upload_stale")
    if not kept or kept[0] != ws.name:
        return
    found = kept[1]  # what the load found (`run_load`); pressing Re-suggest plans again from the data as it is
    ui.resuggest_box(
        ws, found, prefix="upload", said="_resuggested",
        headline=f"**The suggested targets of tree {md(found.name)} were computed from the earlier data.**",
        after=" The tree page uses them now.", on_keep=_forget_stale, on_done=_forget_stale)


def _forget_stale() -> None:
    st.session_state.pop("upload_stale", None)


def show_report(ws: Workspace, report: LoadReport) -> None:
    st.subheader("Data-quality report")
    if report.tables:
        st.success(f"Loaded {report.rows_loaded:,} rows in {report.seconds:.1f} s — tables now: "
                   + ", ".join(f"{t} {n:,} rows" for t, n in report.tables.items()))
    else:
        st.info("Nothing new was loaded: every file was already in the workspace, skipped or not data — "
                "the files below say which. The workspace is as it was.")
    c = st.columns(5)
    c[0].metric("Files", len(report.files))
    c[1].metric("Rows read", f"{sum(f.rows_read for f in report.files):,}")
    c[2].metric("Rows loaded", f"{report.rows_loaded:,}")
    c[3].metric("Rows rejected", f"{report.rows_rejected:,}")
    c[4].metric("Rows skipped", f"{sum(f.rows_skipped for f in report.files):,}")
    summary = [{"file": f.file, "table": f.table or ROLES.get(f.role, "side file"), "recognised as": f.label,
                "read": f.rows_read,
                "loaded": f.rows_loaded, "rejected": f.rows_rejected, "skipped": f.rows_skipped,
                "duplicate ids": f.duplicate_ids, "dates": " … ".join(x for x in f.date_range if x) or "—"}
               for f in report.files]
    st.dataframe(pd.DataFrame(summary), hide_index=True, width="stretch", key="report_summary")
    if report.rows_rejected:
        st.download_button("Download rejected rows (CSV)", rejects_csv(report), file_name="rejected_rows.csv",
                           mime="text/csv", key="download_rejects")
    for i, f in enumerate(report.files):
        problems = bool(f.rows_rejected or f.warnings)
        if f.role in ("ignored", "skipped"):
            st.caption(md(f"{f.file}: not loaded — {f.label}"))
            continue
        with st.expander(f"{md(f.file)} → {f.table or 'side file'}: {f.rows_loaded:,} loaded, {f.rows_rejected:,} "
                         f"rejected" + (", warnings" if f.warnings else ""), expanded=problems):
            for w in f.warnings:
                st.warning(md(w))
            if f.rejected:
                st.markdown(f"**Rejected rows** ({f.rows_rejected:,}; first {len(f.rejected[:200])} shown)")
                st.dataframe(pd.DataFrame([{"line": r.line, "column": r.column, "reason": r.reason,
                                            "value": r.value} for r in f.rejected[:200]]),
                             hide_index=True, width="stretch", key=f"rejects_{i}")
            facts = []
            if f.skipped:
                facts.append("skipped on purpose: " + ", ".join(f"{n} {r}" for r, n in f.skipped.items()))
            if f.nulls:
                facts.append("empty values in key columns: " + ", ".join(f"{c} {n}" for c, n in f.nulls.items()))
            if f.duplicate_ids:
                facts.append(f"duplicate ids: {f.duplicate_ids} (later copies rejected)")
            if f.extra_columns:
                facts.append("unmapped columns kept as text: " + ", ".join(f.extra_columns))
            if f.missing_optional_columns:
                facts.append("not in the file: " + ", ".join(f.missing_optional_columns))
            facts.append(f"encoding {f.encoding}, delimiter {f.delimiter!r}")
            for line in facts + [f"rule: {r}" for r in f.rules]:
                st.markdown(f"- {md(line)}")
    stages = [dict(s, file=f.file) for f in report.files for s in f.stages]
    if stages:
        stage_table(ws, stages)


def stage_table(ws: Workspace, stages: list[dict]) -> None:
    """Stage → status as this load read it; edits are saved for the workspace and used by every later load."""
    st.subheader("Stages → open / won / lost")
    st.caption("'file' = the export's own won/lost flag or status; 'saved' = this workspace's stage map; "
               "'default' = the vendor's standard pipeline; 'guess' = read from the name. Change a status and save: "
               "the workspace remembers it (the export's own flags still win).")
    df = pd.DataFrame(stages)[["stage", "status", "source", "rows", "file"]]
    edited = st.data_editor(df, hide_index=True, width="stretch", key="stage_editor", disabled=["stage", "source",
                                                                                                 "rows", "file"],
                            column_config={"status": st.column_config.SelectboxColumn(options=STATUSES,
                                                                                      required=True)})
    changed = {str(a["stage"]): b["status"] for a, b in zip(df.to_dict("records"), edited.to_dict("records"),
                                                            strict=True)
               if a["status"] != b["status"] and a["stage"] is not None}
    if st.button("Save stage map", key="save_stages", disabled=not changed):
        ws.save_stage_map({**ws.stage_map(), **changed})
        st.session_state["upload_stage_saved"] = True
        st.success(f"Saved {len(changed)} stage(s) for workspace '{md(ws.name)}'. Load the files again to apply.")


def stage_map_editor(ws: Workspace) -> None:
    saved = ws.stage_map()
    with st.expander(f"Saved stage map of '{md(ws.name)}' ({len(saved)} stage{'s' if len(saved) != 1 else ''})"):
        df = pd.DataFrame({"stage": list(saved), "status": list(saved.values())}) if saved else pd.DataFrame(
            {"stage": pd.Series(dtype=str), "status": pd.Series(dtype=str)})
        edited = st.data_editor(df, num_rows="dynamic", hide_index=True, key="stage_map_editor",
                                column_config={"status": st.column_config.SelectboxColumn(options=STATUSES)})
        if st.button("Save", key="save_stage_map"):
            clean = {str(r["stage"]): r["status"] for r in edited.to_dict("records")
                     if r.get("stage") and r.get("status") in STATUSES}
            ws.save_stage_map(clean)
            st.success(f"Saved {len(clean)} stage(s).")


main()
