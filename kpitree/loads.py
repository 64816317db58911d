"""What the latest load of each table warned about, as the workspace keeps it.

Why a module of its own: the Upload page shows a load's warnings once, when the file goes in; the
tree page, the report and the command line read them later from `_kpitree_loads.warnings` (a JSON
list per file), so a mixed-currency total or a column left blank is still said weeks after the load.
"""

from __future__ import annotations

import json

from .workspace import Workspace


def stored_warnings(load: dict) -> list[str]:
    """One load's warnings, each prefixed with its file; loads recorded before warnings were kept have none."""
    text = load.get("warnings")
    if not text:
        return []
    try:
        found = json.loads(text)
    except ValueError:
        return []
    file = load.get("file") or load.get("table_name")
    return [f"{file}: {w}" for w in found if isinstance(w, str)] if isinstance(found, list) else []


def latest_loads(ws: Workspace, limit: int = 200) -> dict[str, list[dict]]:
    """Per table, the rows of its latest load (several files loaded at once count as one load)."""
    latest: dict[str, list[dict]] = {}
    for load in ws.loads(limit):  # newest first
        rows = latest.setdefault(load["table_name"], [])
        if not rows or load["loaded_at"] == rows[0]["loaded_at"]:
            rows.append(load)
    return latest


def latest_warnings(ws: Workspace) -> list[str]:
    """Every warning of each table's latest load, tables in name order, without repeats."""
    latest = latest_loads(ws)
    return list(dict.fromkeys(w for table in sorted(latest) for load in latest[table] for w in stored_warnings(load)))
