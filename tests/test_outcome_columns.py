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
