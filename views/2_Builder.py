"""Tree builder: start from a template or from scratch, edit nodes with live validation, targets, YAML, history.

Seed 003's method on one screen: start at the top, give every metric an owner, a number as a
target and a connection to the level above. Every edit goes through `kpitree.builder` (pure
functions on the Tree), is validated at once, and the problems are listed next to their node; a
tree with errors can be saved as a draft but not made the active tree. Layout and calls into
`kpitree` only.
"""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

import ui
from kpitree import builder as b
from kpitree import targets as tg
from kpitree.charts import STATUS_WORD, spec_of, tree_chart, with_selection
from kpitree.custom import AGGREGATES, KINDS, UNITS, CustomMeasure
from kpitree.errors import KpiTreeError, SpecError
from kpitree.history import TreeFile, TreeStore, default_user, file_name, summarize
from kpitree.layout import layout_tree
from kpitree.metrics import CATALOGUE
from kpitree.plain import markdown_text as md
from kpitree.schema import TABLES
from kpitree.suggest import (
    is_demo,
    resuggest_summary,
    resuggest_targets,
    suggest_tree,
    suggested_targets,
    summary,
    template_choices,
)
from kpitree.tree import (
    DIRECTIONS,
    LEVELS,
    MAX_FORMULA_CHARS,
    MAX_LABEL,
    MAX_TEXT,
    MAX_TREE_BYTES,
    REVIEWS,
    Tree,
    dump_tree,
    parse_yaml,
    workspace_columns,
)
from kpitree.workspace import Workspace

st.set_page_config(page_title="Builder · KPI Tree", page_icon="🌳", layout="wide")

S = st.session_state
DEFAULT = "(metric's own)"
NO_PARENT = "(none: north star)"
BLANK = "Blank tree (start at the top)"
PREVIEW_WIDTH = 440.0  # the preview column at 1280 px, as the tree page lays out for its column: full-size text
METRICS = {name: (label, definition, unit) for name, label, definition, unit in b.metric_choices()}
NODE_FIELDS = (
    "id",
    "label",
    "level",
    "owner",
    "review",
    "unit",
    "direction",
    "amber",
    "dimensions",
    "formula",
    "description",
    "metric",
    "parent",
    "mode",
)
DEFAULT_MEASURE = CustomMeasure(aggregate="sum", table="deals", column="amount", filter="status = 'won'")
CUSTOM_FIELDS = ("aggregate", "table", "column", "filter", "date_column", "kind", "unit", "label")
# The targets grid (full width, under the editor and preview): every number column wide enough for
# "100,000,000" (it was cut to "204"), the node pinned if a narrow window scrolls it sideways; the
# whole grid fits 1,050 px (a 1,500 px window).
TARGET_WIDTH = 100
TARGET_COLUMNS = {
    "node": st.column_config.TextColumn("node", pinned=True, width=100),
    "label": st.column_config.TextColumn("label", width=130),
    "unit": st.column_config.TextColumn("unit", width=56),
    **{f: st.column_config.NumberColumn(f.replace("day90", "90-day").replace("month12", "12-month"), format="localized",
                                        width=TARGET_WIDTH, help=tg.FIELD_HELP[f]) for f in tg.TARGET_FIELDS},
    "periods": st.column_config.NumberColumn("periods", width=60, help="per-period targets (Targets tab)"),
}


# --- state -------------------------------------------------------------------------------------


def tree() -> Tree:
    return S["b_tree"]


_SHOWN_ID = re.compile(r"\(([a-z][a-z0-9_]*)\)\s*$")


def selected() -> str | None:
    """The id of the node being edited.

    The Node picker's value travels between browser and server as its shown text ("⛔ New metric
    (new_metric)"), which holds the label and the problem mark. When an edit changes that text while
    the browser still holds the old one (a Label typed, then the Owner at once), Streamlit hands the
    old text back instead of an id: its trailing "(id)" still names the node (trial E: the Owner
    edit failed with "no node ' ⛔ New metric (new_metric)' in the tree")."""
    value, t = S.get("b_node"), S.get("b_tree")
    if t is None or not isinstance(value, str) or value in {n.id for n in t.nodes}:
        return value
    found = _SHOWN_ID.search(value)
    return found.group(1) if found and found.group(1) in {n.id for n in t.nodes} else value


def flash(kind: str, message: str) -> None:
    S["_b_flash"] = (kind, message)


def sources(store: TreeStore | None) -> dict[str, tuple[str, str]]:
    """Label → (kind, name) of everything a tree can start from: templates, workspace trees, blank.

    A workspace tree whose current file the editor cannot open (broken or hostile) is not offered
    here: `broken_files` lists it with its problem, to fix as text or delete."""
    out: dict[str, tuple[str, str]] = {}
    if store is not None:
        files = store.files()
        usable = {f.name for f in files if f.tree is not None}
        current = {f.name: f for f in files if f.kind == "published"} | {f.name: f for f in files if f.kind == "draft"}
        active = store.active()
        for name in store.names():
            if name not in usable or current[name].tree is None:
                continue
            state = "draft" if store.has_draft(name) else "published"
            mark = ", active" if active == name else ", has errors" if current[name].broken else ""
            out[f"{name} (workspace, {state}{mark})"] = ("workspace", name)
    for path in sorted(ui.TEMPLATES.glob("*.yaml"), key=lambda p: (not p.stem.startswith("seed003"), p.stem)):
        out[f"{path.stem} (template)"] = ("template", path.stem)
    out[BLANK] = ("blank", "")
    return out


def load(new: Tree, name: str, origin: str) -> None:
    """Puts a tree in the editor (from a template, the workspace, a file or a restore).

    The file name and title are kept beside their widgets (`ui.set_sticky`): Streamlit forgets a
    widget's value when the user visits another page, and a Builder that came back without the
    name saved a second tree instead of a new version of the one being edited."""
    S["b_tree"] = b.for_editing(new, name)
    ui.set_sticky("b_name", name)
    ui.set_sticky("b_title", new.name)
    S["b_origin"] = origin
    S["b_node"] = S["b_tree"].root.id if S["b_tree"].nodes else None
    S["_b_saved"] = dump_tree(S["b_tree"])
    sync_form()


def unsaved() -> bool:
    """The editor holds edits not saved since the tree was opened or last saved."""
    return "b_tree" in S and dump_tree(S["b_tree"]) != S.get("_b_saved")


def wanted_source(choices: dict[str, tuple[str, str]]) -> str | None:
    """The source the Builder should start from: the URL's `tree` (a link into the Builder), else
    the tree the user was viewing on the tree page (`_viewing_tree`, set there), else the tree the
    tree page opens by default (the workspace's active tree, else the default template), so a
    Builder opened by its bare URL edits the tree in use, not the first template of the list."""
    linked = st.query_params.get("tree")
    if linked:
        found = next((k for k, v in choices.items() if v[1] == linked and v[0] == "workspace"), None)
        found = found or next((k for k, v in choices.items() if v[1] == linked), None)
        if found:
            return found
    viewing = S.get("_viewing_tree")
    found = next((k for k, v in choices.items() if v == tuple(viewing or ())), None)
    if found:
        return found
    active = next((k for k, v in choices.items() if v[0] == "workspace" and k.endswith(", active)")), None)
    return active or next((k for k, v in choices.items() if v == ("template", ui.DEFAULT_TREE.stem)), None)


def open_source(store: TreeStore | None, ws: Workspace | None = None) -> None:
    kind, name = sources(store).get(S.get("b_source"), ("blank", ""))
    S["_b_viewed"] = S.get("_viewing_tree")
    try:
        if kind == "blank":
            load(b.blank_tree("New tree"), "new_tree", "a blank tree")
            return
        if kind == "template" and ws is not None and not is_demo(ws) and ws.tables():
            # a template carries the demo company's targets and owners: on a user's data it is suggested
            suggest_from_data(ws, name)
            return
        if kind == "workspace" and store is not None:
            loaded, problems = store.load(name)
        else:
            path = ui.TEMPLATES / f"{name}.yaml"
            loaded, problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except KpiTreeError as exc:
        flash("error", md(str(exc)))
        return
    if loaded is None:
        flash("error", "This tree cannot be opened: " + md("; ".join(str(p) for p in problems[:5])))
        return
    load(loaded, name, f"{kind} {name}")
    in_view = S.get("selected")  # the node open on the tree page, when this is the tree it showed
    if (kind, name) == tuple(S.get("_viewing_tree") or ()) and in_view in {n.id for n in S["b_tree"].nodes}:
        S["b_node"] = in_view
        sync_form()
    errors = b.errors_of(problems)
    if errors:  # what the file holds that could not be read is not in the editor: say what it was
        flash("warning", md(f"{name} has {len(errors)} error(s); what could not be read is left out of the editor:")
              + "\n\n" + "\n".join(f"- {md(p)}" for p in errors[:10]))


def suggest_from_data(ws: Workspace, template: str | None = None) -> None:
    """Puts a tree suggested from the workspace's data in the editor, with what was done to the template."""
    template = template or S.get("b_suggest_template") or "revops"
    try:
        suggested, notes = suggest_tree(ui.engine_for(ws), template)
    except KpiTreeError as exc:
        flash("error", md(f"No tree suggested from {template}: {exc}"))
        return
    load(suggested, template, f"a suggestion from template {template} for this workspace's data")
    flash("success", f"**Suggested from the data of {md(ws.name)}** (template {md(template)}) — review it, then "
                     "**Save & make active**:\n\n" + "\n".join(f"- {md(line)}" for line in summary(notes)))


def import_yaml(text: str, origin: str) -> None:
    loaded, problems = parse_yaml(text, origin)
    if loaded is None:
        flash("error", md(f"{origin} is not a usable tree: " + "; ".join(str(p) for p in problems[:5])))
        return
    load(loaded, file_name(loaded.name), origin)
    S["_b_saved"] = None  # imported, not saved in the workspace yet
    errors = b.errors_of(problems)
    # What could not be read was left out of the editor (a filter value that is a mapping, a bad
    # period): say so here, since the tree in the editor no longer shows it.
    flash(
        "warning" if errors else "success",
        md(f"Imported {origin}: {len(loaded.nodes)} nodes" + (f", {len(errors)} error(s) to fix" if errors else ""))
        + ("; what could not be read is left out of the editor:\n\n" if errors else "")
        + "\n".join(f"- {md(p)}" for p in errors[:10]),
    )


def import_upload() -> None:
    upload = S.get("b_upload")
    if upload is None:
        return
    data = upload.getvalue()
    if len(data) > MAX_TREE_BYTES:
        flash("error", md(f"{upload.name} is {len(data) / 1024:,.0f} KB; a tree file is at most "
                          f"{MAX_TREE_BYTES // 1024} KB. Nothing was imported."))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        flash("error", md(f"{upload.name} is not UTF-8 text (byte {exc.start}): save it as UTF-8 and import it again."))
        return
    import_yaml(text, upload.name)


def import_pasted() -> None:
    if str(S.get("b_yaml_in") or "").strip():
        import_yaml(S["b_yaml_in"], "pasted YAML")


def sync_form() -> None:
    """Writes the selected node's fields into the form widgets (after a selection or structural change)."""
    t = S.get("b_tree")
    nid = selected()
    if t is None or nid is None or nid not in {n.id for n in t.nodes}:
        return
    n = t.node(nid)
    parent = t.parent_of(nid)
    S.update(
        {
            "b_id": n.id,
            "b_label": n.label,
            "b_level": n.level_name if n.level in LEVELS.values() else "north_star",
            "b_owner": n.owner,
            "b_review": n.review,
            "b_unit": n.unit or DEFAULT,
            "b_direction": n.direction or DEFAULT,
            "b_amber": n.amber,
            "b_dimensions": list(n.dimensions),
            "b_formula": n.formula or "",
            "b_description": n.description,
            "b_parent": parent.id if parent else NO_PARENT,
            "b_mode": "custom" if n.custom is not None else "catalogue",
            # a node without a catalogue metric shows an empty box, not the last node's metric (trial E:
            # "New business ARR" shown while validation said "unknown metric ''"); a custom one keeps
            # the metric to switch back to
            "b_metric": n.metric if n.metric in METRICS else S.get("b_metric") if n.custom is not None else None,
        }
    )
    for field, value in tg.target_fields(n.target).items():
        S[f"b_t_{field}"] = value
    measure = n.custom or DEFAULT_MEASURE
    choices = {"aggregate": AGGREGATES, "table": tuple(TABLES), "kind": ("", *KINDS), "unit": ("", *UNITS)}
    for field in CUSTOM_FIELDS:
        value = getattr(measure, field) or ""
        # A hand-written value outside a select box's choices falls back; validation still names it.
        S[f"b_c_{field}"] = value if field not in choices or value in choices[field] else choices[field][0]
    S["_b_form_for"] = nid


# --- callbacks: every edit is one call into kpitree.builder -------------------------------------


def edit(field: str) -> None:
    t, nid, value = tree(), selected(), S[f"b_{field}"]
    try:
        if field == "id":
            new_id = str(value).strip()
            if not new_id:
                raise KpiTreeError("an id cannot be empty")
            t = b.edit_node(t, nid, id=new_id)
            S["b_node"] = new_id
        elif field == "level":
            t = b.edit_node(t, nid, level=LEVELS[value])
        elif field == "label":
            # a node still called new_metric takes its id from the label it is given
            t, renamed = b.named(t, nid, str(value).strip())
            if renamed != nid:
                S["b_node"] = renamed
                field = "id"
        elif field in ("owner", "review", "description"):
            t = b.edit_node(t, nid, **{field: str(value).strip() if field != "description" else value})
        elif field in ("unit", "direction"):
            t = b.edit_node(t, nid, **{field: None if value == DEFAULT else value})
        elif field == "amber":
            t = b.edit_node(t, nid, amber=value)
        elif field == "dimensions":
            t = b.edit_node(t, nid, dimensions=tuple(value))
        elif field == "formula":
            t = b.edit_node(t, nid, formula=str(value).strip() or None)
        elif field == "metric":
            if value is None:  # the box was cleared: the node keeps its metric
                sync_form()
                return
            fresh = b.is_new(t.node(nid))
            t = b.edit_node(t, nid, metric=value)
            if fresh and value in METRICS:  # a node just added is named after the metric picked for it
                t, renamed = b.named(t, nid, METRICS[value][0], value)
                S["b_node"], field = renamed, "id"
        elif field == "mode":
            current = t.node(nid).custom
            measure = current or (
                custom_from_form() if S.get("b_c_aggregate") and S.get("b_c_table") else DEFAULT_MEASURE
            )
            t = b.edit_node(t, nid, metric=measure if value == "custom" else S.get("b_metric") or "arr")
        elif field == "parent":
            if value != NO_PARENT:
                t = b.move_node(t, nid, value)
    except KpiTreeError as exc:
        flash("error", md(str(exc)))
        sync_form()
        return
    S["b_tree"] = t
    if field in ("id", "parent", "mode"):
        sync_form()


def custom_from_form() -> CustomMeasure:
    values = {f: (str(S.get(f"b_c_{f}") or "").strip() or None) for f in CUSTOM_FIELDS}
    return CustomMeasure(aggregate=values.pop("aggregate") or "", table=values.pop("table") or "", **values)


def edit_custom() -> None:
    S["b_tree"] = b.edit_node(tree(), selected(), metric=custom_from_form())


def edit_target(field: str) -> None:
    t, nid = tree(), selected()
    target = tg.with_fields(t.node(nid).target, **{field: S[f"b_t_{field}"]})
    S["b_tree"] = b.set_target(t, nid, target)


def select_node() -> None:
    sync_form()


def add_child() -> None:
    parent = selected()
    t = b.add_node(tree(), parent, label=b.NEW_LABEL)
    S["b_tree"] = t
    S["b_node"] = t.node(parent).children[-1]
    sync_form()
    flash("info", f"Added {md(S['b_node'])} under its parent: give it a metric (it takes the metric's name), "
                  "an owner and a target.")


def remove() -> None:
    t, nid = tree(), selected()
    parent = t.parent_of(nid)
    try:
        S["b_tree"] = b.remove_node(t, nid, keep_children=bool(S.get("b_keep_children")))
    except KpiTreeError as exc:
        flash("error", md(str(exc)))
        return
    S["b_node"] = parent.id if parent else S["b_tree"].root.id
    sync_form()
    flash(
        "info",
        f"Removed {md(nid)}" + (" (its children moved up)" if S.get("b_keep_children") else " and everything below it"),
    )


def reorder(delta: int) -> None:
    S["b_tree"] = b.reorder(tree(), selected(), delta)


def refused(store: TreeStore) -> bool:
    """Checked again inside every callback that writes: the buttons are disabled for a viewer, but a
    role can change between reruns and a callback must not trust the page it was drawn on."""
    if ui.may(store.root.parent, "save_tree"):
        return False
    flash("error", "Not saved: you can view this workspace's trees but not change them. Ask one of its owners "
                   "to make you an editor (Workspaces page).")
    return True


def recorded_user() -> str:
    """The name written in a tree's history: the signed-in user's when sign-in is on (not typed)."""
    user = ui.current_user()
    if user is not None and not user.local:
        return user.name
    return S.get("b_who") or default_user()


def save(store: TreeStore, publish: bool) -> None:
    if refused(store):
        return
    name = file_name(S.get("b_name") or tree().name)
    t = b.edit_tree(tree(), name=S.get("b_title") or tree().name)
    who = recorded_user()
    try:
        version = store.publish(t, name, who) if publish else store.save_draft(t, name, who)
    except SpecError as exc:
        flash("error", "Not made active — fix these first:\n\n" + "\n".join(f"- {md(p)}" for p in exc.problems[:20]))
        return
    except KpiTreeError as exc:
        flash("error", md(str(exc)))
        return
    S["b_tree"] = t
    ui.set_sticky("b_name", name)
    S["_b_saved"] = dump_tree(t)
    what = "published and made active — the tree page opens it by default" if publish else "saved as a draft"
    flash("success", md(f"{name} v{version.number} {what} ({version.summary})."))


def restore(store: TreeStore) -> None:
    if refused(store):
        return
    name = file_name(S.get("b_name") or "")
    number = int(S["b_v_restore"])
    try:
        restored, version = store.restore(name, number, recorded_user())
    except KpiTreeError as exc:
        flash("error", md(str(exc)))
        return
    if restored is not None:
        load(restored, name, f"version {number}")
    flash("success", md(f"Restored {name} v{number} as v{version.number} ({version.action})."))


def import_targets_csv() -> None:
    upload = S.get("b_csv")
    if upload is None:
        flash("warning", "Choose a CSV with columns node, period, target first.")
        return
    try:
        text = upload.getvalue().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        flash("error", md(f"{upload.name} is not UTF-8 text (byte {exc.start}): save it as UTF-8 CSV."))
        return
    t, problems = tg.import_targets_csv(tree(), text, upload.name)
    if problems:
        flash("error", "Nothing imported:\n\n" + "\n".join(f"- {md(p)}" for p in problems[:20]))
        return
    S["b_tree"] = t
    sync_form()
    flash("success", md(f"Imported targets from {upload.name}."))


def resuggest(engine) -> None:
    """Plans the editor's suggested targets again from the workspace's data as it is now (a person's stay)."""
    try:
        done = resuggest_targets(engine, tree())
    except KpiTreeError as exc:
        flash("error", md(f"Targets not re-suggested: {exc}"))
        return
    S["b_tree"] = done.tree
    sync_form()
    said = md(resuggest_summary(done))
    if done.stale:
        flash("success", said + " **Save & make active** to keep them (the history keeps the earlier version).")
    else:
        flash("info", said)


def spread(engine) -> None:
    try:
        t, result = tg.spread_node(
            engine, tree(), selected(), float(S["b_spread_total"]), int(S["b_spread_year"]), S["b_spread_method"]
        )
    except (KpiTreeError, ValueError) as exc:
        flash("error", md(str(exc)))
        return
    S["b_tree"] = t
    note = f" ({result.note})" if result.note else ""
    flash(
        "success",
        f"Spread {S['b_spread_total']:,.0f} over the 12 months of {S['b_spread_year']} "
        f"by {result.method.replace('_', ' ')}{note}.",
    )


# --- broken tree files: listed, fixed as text, or deleted -----------------------------------------


def _where(f: TreeFile) -> str:
    return "trees/" + ("drafts/" if f.kind == "draft" else "") + f.path.name


def _same(a: TreeFile, key: tuple[str, str] | None) -> bool:
    return key is not None and (a.kind, a.path.name) == tuple(key)


def start_fix(f: TreeFile) -> None:
    S["b_fixing"] = (f.kind, f.path.name)
    S.pop("b_confirm_delete", None)
    data = f.path.read_bytes() if f.path.is_file() and not f.path.is_symlink() else b""
    S["b_fix_text"] = data.decode("utf-8", errors="replace")


def open_broken(f: TreeFile) -> None:
    """Opens a published tree that has errors in the editor, to fix it with the form."""
    if f.tree is not None:
        load(f.tree, file_name(f.name), f"workspace {f.name} (with errors)")


def save_fix(store: TreeStore, f: TreeFile) -> None:
    if refused(store):
        return
    try:
        name, version = store.save_text(f, str(S.get("b_fix_text") or ""), recorded_user())
    except SpecError as exc:
        flash("error", f"Not saved — {md(_where(f))} still has problems:\n\n"
                       + "\n".join(f"- {md(p)}" for p in exc.problems[:20]))
        return
    except (KpiTreeError, OSError) as exc:
        flash("error", md(f"Not saved: {exc}"))
        return
    S.pop("b_fixing", None)
    flash("success", md(f"{_where(f)} fixed: saved as {name} v{version.number} ({version.summary})."))


def ask_delete(f: TreeFile) -> None:
    S["b_confirm_delete"] = (f.kind, f.path.name)


def delete_broken(store: TreeStore, f: TreeFile) -> None:
    if refused(store):
        return
    try:
        store.delete_file(f)
    except (KpiTreeError, OSError) as exc:
        flash("error", md(f"Not deleted: {exc}"))
        return
    for key in ("b_confirm_delete", "b_fixing"):
        if _same(f, S.get(key)):
            S.pop(key, None)
    flash("success", md(f"Deleted {_where(f)}; its saved versions stay in the history."))


def broken_files(store: TreeStore) -> None:
    """Tree files of this workspace that cannot be used, each with its problem: fix it as text, open
    it in the editor (when it has a tree at all) or delete it. A broken or hostile file never stops
    the Builder, and the tree page skips it (`history.list_trees`)."""
    bad = [f for f in store.files() if f.broken]
    if not bad:
        S.pop("b_fixing", None)
        return
    with st.expander(f"{len(bad)} tree file(s) in this workspace cannot be used: fix or delete them", icon=":material/error:",
                     expanded=True):
        for f in bad:
            key = f"{f.kind}/{f.path.name}"
            st.markdown(f"**{md(_where(f))}** ({f.kind})")
            st.text(f.reason())
            c = st.columns(3)
            c[0].button("Edit as text", key=f"b_fix_{key}", on_click=start_fix, args=(f,), width="stretch")
            c[1].button("Open in the editor", key=f"b_openbad_{key}", on_click=open_broken, args=(f,),
                        disabled=f.tree is None, width="stretch",
                        help="Only a file that still holds a tree (with errors) opens in the form.")
            c[2].button("Delete", key=f"b_del_{key}", on_click=ask_delete, args=(f,), width="stretch")
            if _same(f, S.get("b_confirm_delete")):
                st.warning(f"Delete {md(_where(f))} for good? Its saved versions stay in the history.")
                d = st.columns(2)
                d[0].button("Yes, delete it", key=f"b_del_yes_{key}", on_click=delete_broken, args=(store, f),
                            type="primary", width="stretch")
                d[1].button("Keep it", key=f"b_del_no_{key}", on_click=lambda: S.pop("b_confirm_delete", None),
                            width="stretch")
        fixing = next((f for f in bad if _same(f, S.get("b_fixing"))), None)
        if fixing is not None:
            if fixing.path.stat().st_size > MAX_TREE_BYTES:
                st.error(f"{md(_where(fixing))} is too big to edit here (limit {MAX_TREE_BYTES // 1024} KB): delete it.")
                return
            st.text_area(f"Text of {md(_where(fixing))}", key="b_fix_text", height=320)
            c = st.columns(2)
            c[0].button("Save the fixed file", key="b_fix_save", on_click=save_fix, args=(store, fixing),
                        type="primary", width="stretch",
                        help="A published tree must come out without errors; a draft must hold a tree.")
            c[1].button("Cancel", key="b_fix_cancel", on_click=lambda: S.pop("b_fixing", None), width="stretch")


# --- layout ---------------------------------------------------------------------------------------


def main() -> None:
    st.sidebar.title("KPI Tree")
    try:
        ws = ui.choose_workspace()
    except KpiTreeError as exc:
        st.error(md(exc))
        return
    store = TreeStore(ws.trees_dir) if ws is not None else None
    engine = None
    if ws is not None:
        try:
            engine = ui.engine_for(ws)
        except KpiTreeError:
            engine = None
    user = ui.current_user()
    if user is not None and not user.local:  # signed in: the history records who, nobody types it
        S["b_who"] = user.name
    elif "b_who" not in S:
        S["b_who"] = default_user()
    st.sidebar.text_input("Your name (recorded in the history)", key="b_who",
                          disabled=user is not None and not user.local)
    S["_b_readonly"] = ws is not None and not ui.may(ws, "save_tree")
    if S["_b_readonly"]:
        st.info(f"You can view the trees of workspace **{md(ws.name)}** and try changes here, but not save "
                "them: ask one of its owners to make you an editor (Workspaces page).")
    choices = sources(store)
    wanted = wanted_source(choices)
    if ui.kept_value("b_source") not in choices:
        ui.set_sticky("b_source", wanted or next(iter(choices)))
    viewed_now = S.get("_viewing_tree") != S.get("_b_viewed") and wanted is not None
    if "b_tree" in S and viewed_now:
        # the user looked at another tree on the tree page since the Builder last opened one
        if unsaved():
            flash("info", f"You were viewing **{md(wanted)}**; your unsaved edits of **{md(ui.kept_value('b_name'))}** are "
                          "kept. Save them, or pick the tree under Start from and press Open.")
            S["_b_viewed"] = S.get("_viewing_tree")
        else:
            ui.set_sticky("b_source", wanted)
            open_source(store, ws)
    st.sidebar.selectbox("Start from", list(choices), **ui.sticky("b_source"))
    st.sidebar.button("Open", key="b_open", on_click=open_source, args=(store, ws), width="stretch")
    if ws is not None and engine is not None:
        names = [p.stem for p in template_choices()]
        if S.get("b_suggest_template") not in names:
            S["b_suggest_template"] = "revops" if "revops" in names else names[0]
        st.sidebar.selectbox("Template for a suggestion", names, key="b_suggest_template",
                             help="Kept: the nodes your data can compute. Targets: planned from your own "
                                  "history. Owners: from your data, or a role to assign.")
        st.sidebar.button("Suggest a tree from my data", key="b_suggest", on_click=suggest_from_data, args=(ws,),
                          width="stretch")
    upload = st.sidebar.file_uploader("…or import a tree YAML", type=["yaml", "yml"], key="b_upload")
    st.sidebar.button("Import YAML", key="b_import", on_click=import_upload, disabled=upload is None)
    if "b_tree" not in S:
        open_source(store, ws)
    if "b_tree" not in S:  # the source could not be opened (its problem is shown): start blank
        load(b.blank_tree("New tree"), "new_tree", "a blank tree")
    if S.get("_b_form_for") != selected():
        sync_form()

    t = tree()
    # drill dimensions are judged by this workspace's columns: its own suggested tree validates clean
    columns = workspace_columns(engine.profile) if engine is not None else None
    problems = b.validate(t, columns)
    errors = b.errors_of(problems)
    by_node = b.problems_by_node(problems)

    st.title("Tree builder")
    st.caption(
        "Seed 003: start at the top · every metric needs an owner · a number as target · a connection to the "
        f"level above · review weekly. Editing **{md(S.get('b_origin', ''))}** in workspace "
        f"**{md(ws.name) if ws else '—'}**."
    )
    if "_b_flash" in S:
        kind, message = S.pop("_b_flash")
        getattr(st, kind)(message)
    if store is not None:
        broken_files(store)

    top = st.columns([3, 2, 2, 2])
    top[0].text_input("Tree name", max_chars=MAX_TEXT, **ui.sticky("b_title"))
    top[1].text_input("File name in the workspace", help="trees/<name>.yaml", **ui.sticky("b_name"))
    with top[2]:
        st.write("")
        st.button(
            "Save draft",
            key="b_save_draft",
            on_click=save,
            args=(store, False),
            disabled=store is None or S.get("_b_readonly", False),
            help="Drafts may have errors; they never show on the tree page.",
            width="stretch",
        )
    with top[3]:
        st.write("")
        st.button(
            "Save & make active",
            key="b_publish",
            on_click=save,
            args=(store, True),
            type="primary",
            disabled=store is None or bool(errors) or S.get("_b_readonly", False),
            width="stretch",
            help="Fix every error first." if errors else "The tree page opens the active tree by default.",
        )

    left, right = st.columns([4, 6])
    with left:
        tabs = st.tabs(["Node", "Targets", "YAML", "History"])
        with tabs[0]:
            node_form(t, by_node, engine)
        with tabs[1]:
            targets_tab(t, engine)
        with tabs[2]:
            yaml_tab(t)
        with tabs[3]:
            history_tab(store)
    with right:
        preview(t, engine)
        problems_panel(t, problems)
    targets_grid(t)


def node_form(t: Tree, by_node: dict, engine=None) -> None:
    ids = [n.id for n in t.nodes]
    if selected() not in ids:
        S["b_node"] = ids[0]
        sync_form()

    def label_of(nid: str) -> str:
        mark = "⛔ " if any(p.severity == "error" for p in by_node.get(nid, [])) else ("⚠️ " if by_node.get(nid) else "")
        depth = 0
        p = t.parent_of(nid)
        while p is not None and depth < 6:
            depth, p = depth + 1, t.parent_of(p.id)
        return f"{'  ' * depth}{mark}{t.node(nid).label} ({nid})"

    # The picker's value travels as its shown text, which an edit can change (the label, the ⛔ mark):
    # when it did, the selection is set again before the widget is drawn, so the browser is sent the
    # new text; otherwise the browser's old text matches no option and the picker jumps to the north star.
    shown = label_of(selected())
    if S.get("_b_node_shown") != shown or S.get("b_node") != selected():
        S["b_node"] = selected()
    st.selectbox("Node", ids, key="b_node", format_func=label_of, on_change=select_node)
    S["_b_node_shown"] = label_of(S["b_node"])
    n = t.node(S["b_node"])
    # two by two: four buttons in a row of the editor's column were cut to "Add …" at 1280 px
    c = st.columns(2) + st.columns(2)
    c[0].button("Add child", key="b_add", on_click=add_child, width="stretch")
    c[1].button("Remove", key="b_remove", on_click=remove, width="stretch")
    c[2].button("↑ Earlier", key="b_up", on_click=reorder, args=(-1,), width="stretch",
                help="Move before the sibling listed above it")
    c[3].button("↓ Later", key="b_down", on_click=reorder, args=(1,), width="stretch",
                help="Move after the sibling listed below it")
    st.checkbox("When removing, keep its children (they move up to its parent)", key="b_keep_children")

    for p in by_node.get(n.id, []):
        (st.error if p.severity == "error" else st.warning)(md(f"line {p.line}: {p.message}" if p.line else p.message))

    c = st.columns(2)
    c[0].text_input("Label", key="b_label", on_change=edit, args=("label",), max_chars=MAX_LABEL)
    c[1].text_input("Id", key="b_id", on_change=edit, args=("id",), help="lower_snake_case, unique in the tree",
                    max_chars=64)
    c = st.columns(2)
    c[0].selectbox("Level", list(LEVELS), key="b_level", on_change=edit, args=("level",))
    parents = [NO_PARENT] if t.parent_of(n.id) is None else b.parent_choices(t, n.id)
    c[1].selectbox(
        "Parent (move under)",
        parents,
        key="b_parent",
        on_change=edit,
        args=("parent",),
        disabled=t.parent_of(n.id) is None,
    )
    st.text_input("Owner", key="b_owner", on_change=edit, args=("owner",), placeholder="who owns this number?",
                  max_chars=MAX_LABEL)

    st.radio(
        "Metric",
        ["catalogue", "custom"],
        key="b_mode",
        horizontal=True,
        on_change=edit,
        args=("mode",),
        format_func={"catalogue": "From the catalogue", "custom": "Custom measure"}.get,
    )
    if S["b_mode"] == "catalogue":
        st.selectbox(
            "Catalogue metric",
            list(METRICS),
            key="b_metric",
            on_change=edit,
            args=("metric",),
            format_func=lambda m: f"{METRICS[m][0]} ({m})",
            placeholder="Choose the metric this node measures",
        )
        if S["b_metric"] in METRICS:
            label, definition, unit = METRICS[S["b_metric"]]
            st.caption(f"**{label}** — {definition} Unit: {unit}; kind: {CATALOGUE[S['b_metric']].kind.value}.")
        else:
            st.caption(f"{len(METRICS)} metrics: type in the box to find one (the list shows the first dozen "
                       "until you type).")
    else:
        custom_form()

    c = st.columns(3)
    units = [DEFAULT, *UNITS, *([n.unit] if n.unit and n.unit not in UNITS else [])]
    c[0].selectbox("Unit", units, key="b_unit", on_change=edit, args=("unit",))
    c[1].selectbox("Better when", [DEFAULT, *DIRECTIONS], key="b_direction", on_change=edit, args=("direction",))
    c[2].selectbox("Review", list(REVIEWS), key="b_review", on_change=edit, args=("review",))

    st.markdown("**Target** — seed 003: not a range, a number")
    if n.target.suggested:
        st.caption(f"Suggested from this workspace's history — {md(n.target.suggested)}. Typing a number "
                   "replaces the suggestion.")
    c = st.columns(4)
    for i, field in enumerate(tg.TARGET_FIELDS):
        c[i % 4].number_input(
            field.replace("day90", "90-day").replace("month12", "12-month").capitalize(),
            key=f"b_t_{field}",
            value=None,
            step=None,
            format="%g",
            on_change=edit_target,
            args=(field,),
            help=tg.FIELD_HELP[field],
        )
    st.caption(f"{len(n.target.by_period)} per-period target(s) — edit them on the Targets tab.")
    c = st.columns(2)
    c[0].number_input(
        "Amber band (fraction, e.g. 0.05)",
        key="b_amber",
        value=None,
        min_value=0.0,
        max_value=0.99,
        step=0.01,
        format="%g",
        on_change=edit,
        args=("amber",),
    )
    table = CATALOGUE[n.metric].table if n.metric in CATALOGUE else None
    if engine is not None and n.metric in CATALOGUE:
        # what this workspace can split the number by (the rule the tree page's panel uses)
        here = [*engine.profile.dimensions(table), *engine.profile.dimensions("accounts")]
        options = sorted({*engine.dimensions(n.metric, here), *n.dimensions})
    else:
        options = sorted(
            {*(TABLES[table].dimensions if table else ()), *(TABLES[table].column_names if table else ()), *n.dimensions}
        )
    c[1].multiselect(
        "Drill dimensions (empty: the tree's)", options, key="b_dimensions", on_change=edit, args=("dimensions",)
    )
    parent = t.parent_of(n.id)
    if parent is not None:
        exact = parent.formula is not None and n.id in b.formula_children(parent)
        st.caption(
            f"Link to its parent **{md(parent.label)}**: "
            + (
                f"exact — part of {md(parent.formula)}"
                if exact
                else "influence — it moves the parent without adding up to it (give the parent a formula to make it exact)"
            )
        )
    kids = ", ".join(n.children) or "no children"
    st.text_input(
        f"Link to the children ({md(kids)}): exact formula, or empty for influence links",
        key="b_formula",
        on_change=edit,
        args=("formula",),
        placeholder="e.g. new_arr = new_business_arr + expansion_arr",
        max_chars=MAX_FORMULA_CHARS,
    )
    st.text_area("Description", key="b_description", on_change=edit, args=("description",), height=68)


def custom_form() -> None:
    c = st.columns(3)
    c[0].selectbox("Aggregate", list(AGGREGATES), key="b_c_aggregate", on_change=edit_custom)
    c[1].selectbox("Table", list(TABLES), key="b_c_table", on_change=edit_custom)
    c[2].text_input("Column", key="b_c_column", on_change=edit_custom, placeholder="amount (empty: count rows)")
    st.text_area(
        "Filter (one SQL condition on the row)",
        key="b_c_filter",
        on_change=edit_custom,
        height=68,
        placeholder="status = 'won' AND segment = 'Enterprise'",
    )
    c = st.columns(4)
    c[0].text_input("Date column", key="b_c_date_column", on_change=edit_custom, placeholder="table's default")
    c[1].selectbox("Kind", ["", *KINDS], key="b_c_kind", on_change=edit_custom, format_func=lambda k: k or "default")
    c[2].selectbox("Unit", ["", *UNITS], key="b_c_unit", on_change=edit_custom, format_func=lambda u: u or "default")
    c[3].text_input("Label", key="b_c_label", on_change=edit_custom)
    table = S.get("b_c_table")
    if table in TABLES:
        st.caption(
            f"Columns of {table}: {', '.join(TABLES[table].column_names)}. The filter runs sandboxed: "
            "one expression, plain columns, no subqueries, files or statements."
        )


def targets_grid(t: Tree) -> None:
    """Every node's targets in one grid, across the page's full width: in the editor's column its
    ten columns were cut ("204" for 2,040,000) or hidden behind a sideways scroll."""
    st.markdown("**Every node's targets** — edit in the grid (per-period targets on the Targets tab)")
    rows = pd.DataFrame(tg.target_rows(t))
    grid_key = "b_grid_" + str(abs(hash(tuple(map(tuple, rows.astype(str).values.tolist())))))
    edited = st.data_editor(
        rows, key=grid_key, hide_index=True, width="stretch", disabled=["node", "label", "unit", "periods"],
        column_config=TARGET_COLUMNS,
    )
    if not edited.equals(rows):
        S["b_tree"] = tg.apply_target_rows(t, edited.to_dict("records"))
        S["_b_form_for"] = None  # the form shows the new targets after the rerun
        st.rerun()


def targets_tab(t: Tree, engine) -> None:
    st.caption("The grid of every node's targets is below, across the page.")
    if engine is not None:
        planned = suggested_targets(t)
        st.button("Re-suggest targets from the current data", key="b_resuggest", on_click=resuggest, args=(engine,),
                  disabled=not planned, width="stretch",
                  help=(f"{len(planned)} of {len(t.nodes)} targets are suggestions from the data's history: plan them "
                        "again from the data loaded now (after a corrected reload). Targets you typed stay."
                        if planned else "No target of this tree is a suggestion from the data: every one was typed."))
    nid = selected()
    st.markdown(f"**Per-period targets of {md(t.node(nid).label)}** (2026-10, 2026-Q4, 2026-W41, 2026)")
    periods = pd.DataFrame(tg.period_rows(t, nid), columns=["period", "target"])
    pkey = f"b_periods_{nid}_" + str(abs(hash(tuple(map(tuple, periods.astype(str).values.tolist())))))
    edited = st.data_editor(
        periods,
        key=pkey,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        column_config={
            "period": st.column_config.TextColumn("period"),
            "target": st.column_config.NumberColumn("target", format="localized", width=TARGET_WIDTH),
        },
    )
    if not edited.equals(periods):
        new, problems = tg.apply_period_rows(t, nid, edited.to_dict("records"))
        for p in problems:
            st.error(md(p))
        if not problems:
            S["b_tree"] = new
            st.rerun()

    with st.expander("Spread an annual target over the months"):
        c = st.columns(3)
        if "b_spread_year" not in S:
            S["b_spread_year"] = tg.next_year(engine)
        c[0].number_input("Annual target", key="b_spread_total", value=None, step=None, format="%g")
        c[1].number_input("Year", key="b_spread_year", min_value=2000, max_value=2100, step=1)
        c[2].radio(
            "Shape",
            list(tg.METHODS),
            key="b_spread_method",
            format_func={"even": "evenly", "last_year": "like last year"}.get,
        )
        st.button("Spread", key="b_spread", on_click=spread, args=(engine,), disabled=S.get("b_spread_total") is None)

    with st.expander("Import or export targets as CSV (node, period, target)"):
        st.file_uploader("Targets CSV", type=["csv"], key="b_csv")
        c = st.columns(2)
        c[0].button("Import targets", key="b_csv_import", on_click=import_targets_csv)
        c[1].download_button(
            "Download targets CSV",
            tg.targets_csv(t),
            file_name=f"{file_name(S.get('b_name') or 'tree')}_targets.csv",
            mime="text/csv",
            key="b_csv_export",
        )


def yaml_tab(t: Tree) -> None:
    text = dump_tree(b.edit_tree(t, name=S.get("b_title") or t.name))
    st.download_button(
        "Export YAML",
        text,
        file_name=f"{S.get('b_name') or 'tree'}.yaml",
        mime="application/x-yaml",
        key="b_export",
        help="The same file `python -m kpitree validate/evaluate` reads.",
    )
    st.code(text, language="yaml", line_numbers=True)
    st.text_area("Paste a tree YAML to load it", key="b_yaml_in", height=120)
    st.button("Load pasted YAML", key="b_yaml_load", on_click=import_pasted)


def history_tab(store: TreeStore | None) -> None:
    name = file_name(S.get("b_name") or "")
    versions = store.versions(name) if store is not None else []
    if not versions:
        st.info(f"No saved versions of {md(name)} yet: save a draft or make it active.")
        return
    st.dataframe(pd.DataFrame(summarize(versions)), hide_index=True, width="stretch", key="b_history")
    numbers = [v.number for v in versions]
    c = st.columns(2)
    if S.get("b_v_from") not in numbers:
        S["b_v_from"] = numbers[-2] if len(numbers) > 1 else numbers[-1]
    if S.get("b_v_to") not in numbers:
        S["b_v_to"] = numbers[-1]
    c[0].selectbox("Compare version", numbers, key="b_v_from", format_func=lambda v: f"v{v}")
    c[1].selectbox("with version", numbers, key="b_v_to", format_func=lambda v: f"v{v}")
    diff = store.diff(name, S["b_v_from"], S["b_v_to"])
    for change in diff.changes:
        st.markdown(f"- {md(change)}")
    if diff.text:
        with st.expander("YAML diff"):
            st.code(diff.text, language="diff")
    c = st.columns([2, 1])
    if S.get("b_v_restore") not in numbers:
        S["b_v_restore"] = numbers[-1]
    c[0].selectbox("Restore version", numbers, key="b_v_restore", format_func=lambda v: f"v{v}")
    with c[1]:
        st.write("")
        st.button("Restore", key="b_restore", on_click=restore, args=(store,), width="stretch")


@st.cache_data(show_spinner=False, max_entries=32)
def preview_spec(workspace: str, version: str, text: str, _tree: Tree, _engine) -> tuple[dict, str, dict]:
    """The preview chart's spec, its period and status counts; built once per tree text and data version."""
    draw, evaluation = b.preview(_engine, _tree)
    counts = {s: sum(1 for n in evaluation.nodes if n.status == s) for s in STATUS_WORD}
    return spec_of(tree_chart(layout_tree(draw, max_width=PREVIEW_WIDTH), evaluation)), evaluation.period.key, counts


def preview(t: Tree, engine) -> None:
    version = engine.version if engine is not None else "none"
    spec, period, counts = preview_spec(
        str(getattr(engine, "workspace", None) and engine.workspace.root), version, dump_tree(t), t, engine
    )
    st.markdown(f"**Live preview** · {period} · " + ", ".join(f"{counts[s]} {w}" for s, w in STATUS_WORD.items()))
    st.vega_lite_chart(with_selection(spec, selected()), key="b_preview", width="stretch")


def problems_panel(t: Tree, problems: list) -> None:
    errors = b.errors_of(problems)
    warnings = [p for p in problems if p.severity != "error"]
    if not problems:
        st.success("Valid: every metric has an owner, a target and a connection to the level above.")
        return
    st.markdown(
        f"**{len(errors)} error(s), {len(warnings)} warning(s)**"
        + (" — save as a draft now, make it active once the errors are fixed." if errors else "")
    )
    for nid, items in b.problems_by_node(problems).items():
        where = f"{t.node(nid).label} ({nid})" if nid in {n.id for n in t.nodes} else (nid or "tree")
        for p in items:
            icon = "⛔" if p.severity == "error" else "⚠️"
            line = f" · line {p.line}" if p.line else ""
            st.markdown(f"{icon} **{md(where)}**{line}: {md(p.message)}")


main()
