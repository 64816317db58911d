"""An outcome's reason is no segment (trial 2: Pipedrive's "Deal - Lost reason" became a split, and
the red path told the Head of Sales "No budget deals: Pipeline velocity $0/day against $0/day")."""

import pytest

from kpitree.detect import not_a_segment


@pytest.mark.parametrize("column", ["Deal - Lost reason", "deal_lost_reason", "Loss Reason", "Closed Lost Reason",
                                    "churn_reason", "Cancellation Reason", "reason_lost", "Won reason",
                                    "Disqualification reason"])
def test_an_outcome_reason_is_no_segment(column: str) -> None:
    assert "reason for an outcome" in (not_a_segment(column, ("No budget", "No decision", "Competitor")) or "")


@pytest.mark.parametrize("column", ["region", "Lead Source", "deal_pipeline", "Reason for purchase category x"])
def test_real_segments_stay(column: str) -> None:
    assert not_a_segment(column, ("A", "B")) is None


def test_a_mapping_saved_by_the_upload_page_is_reused_from_the_command_line(tmp_path) -> None:
    """The Upload page saves, beside `columns`, entries that start from the recognised layout
    (`layout:<vendor>:<i>`) and columns left out (`omit:<header>`); `--map` refused them as 'not a
    column of deals', so a mapping saved in the app could not be reused from the command line."""
    import csv
    import json
    import subprocess
    import sys
    from pathlib import Path

    from kpitree.ingest import read_mapping
    from kpitree.vendors import OMIT, form_start

    src = Path(__file__).parent / "fixtures" / "trial" / "pipedrive_deals_export.csv"
    with src.open(encoding="utf-8") as f:
        headers = next(csv.reader(f))
    mapping = tmp_path / "pipedrive.json"
    start = form_start(headers, "deals")  # what the screen opens on and saves when nothing is changed
    assert start is not None
    columns = {k: v for k, v in start.columns.items() if v}
    mapping.write_text(json.dumps({"table": "deals", "fill": start.fill,
                                   "columns": {**columns, f"{OMIT}Deal - Lost reason": "Deal - Lost reason"}}))
    read = read_mapping(mapping)
    assert f"{OMIT}Deal - Lost reason" in read["columns"]
    done = subprocess.run([sys.executable, "-m", "kpitree", "ingest", "--workspace", str(tmp_path / "ws"),
                           "--map", f"{src.name}={mapping}", str(src)], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tables: deals=43" in done.stdout and "Deal - Lost reason left out" in done.stdout
