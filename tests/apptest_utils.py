"""One place that knows how to fake what the browser sends when a tree box is clicked."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest


def click_node(at: AppTest, node_id: str, chart_key: str = "tree") -> AppTest:
    """Reruns the app as if the user clicked `node_id` in the tree chart.

    AppTest cannot set a chart selection through session_state (the app would then receive a
    plain dict), so this sends the widget state the frontend sends: the chart's id with the
    selection as JSON.
    """
    chart = next(e for e in at.main if e.type == "vega_lite_chart"
                 and (e.key == chart_key or (e.key or "").startswith(f"{chart_key}_")))
    states = at._tree.get_widget_states()
    entry = states.widgets.add()
    entry.id = chart.proto.id
    entry.string_value = json.dumps({"selection": {"node": [{"id": node_id}]}})
    return at._run(states)


def failures(at: AppTest) -> list[str]:
    """Every failure the run met: exceptions Streamlit shows itself, and those the navigation
    (app.py) caught and showed in plain words with the traceback behind "Details for a developer"."""
    found = [str(e.value) for e in at.exception]
    for box in at.expander:
        if box.label == "Details for a developer":
            found += [str(c.value) for c in box.code]
    return found


def unescaped(markdown: str) -> str:
    """The text a reader sees of Markdown that `kpitree.plain.markdown_text` escaped."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)
