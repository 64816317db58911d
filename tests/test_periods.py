from __future__ import annotations

from datetime import date

import pytest

from kpitree.errors import PeriodError
from kpitree.periods import Grain, latest_complete, parse_period, period_containing, trailing


@pytest.mark.parametrize(
    "text, start, end, grain",
    [
        ("2026-10", date(2026, 10, 1), date(2026, 10, 31), Grain.MONTH),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28), Grain.MONTH),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29), Grain.MONTH),
        ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30), Grain.QUARTER),
        ("2026-q4", date(2026, 10, 1), date(2026, 12, 31), Grain.QUARTER),
        ("2026-W41", date(2026, 10, 5), date(2026, 10, 11), Grain.WEEK),
        ("2026-W01", date(2025, 12, 29), date(2026, 1, 4), Grain.WEEK),
        ("2026", date(2026, 1, 1), date(2026, 12, 31), Grain.YEAR),
    ],
)
def test_parse_period(text, start, end, grain):
    p = parse_period(text)
    assert (p.start, p.end, p.grain) == (start, end, grain)
    assert parse_period(p.key) == p


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "26-10", "October", "2026-W60", "", "2026-10\n2026-11",
                                  "2026-1\u0660", "\uff12\uff10\uff12\uff16-10", "2026-10x", "2026-" + "1" * 5000])
def test_bad_period_names_the_forms(text):
    with pytest.raises(PeriodError, match="invalid period"):
        parse_period(text)


def test_shift_previous_and_last_year():
    assert parse_period("2026-01").previous().key == "2025-12"
    assert parse_period("2026-Q1").previous().key == "2025-Q4"
    assert parse_period("2026-W01").previous().key == "2025-W52"
    assert parse_period("2026-10").same_last_year().key == "2025-10"
    assert parse_period("2026-Q3").shift(2).key == "2027-Q1"
    assert [p.key for p in trailing(parse_period("2026-02"), 3)] == ["2025-12", "2026-01", "2026-02"]


def test_elapsed_and_latest_complete():
    p = parse_period("2026-11")
    assert p.elapsed_fraction(date(2026, 11, 15)) == pytest.approx(15 / 30)
    assert p.elapsed_fraction(date(2026, 12, 2)) == 1.0
    assert p.elapsed_fraction(date(2026, 10, 2)) == 0.0
    assert latest_complete(date(2026, 11, 20), "month").key == "2026-10"
    assert latest_complete(date(2026, 11, 30), "month").key == "2026-11"
    assert latest_complete(date(2026, 11, 20), "quarter").key == "2026-Q3"
    assert period_containing(date(2026, 11, 20), "week").key == "2026-W47"


def test_keys_are_normalised_and_surrounding_space_ignored():
    assert [parse_period(t).key for t in ("2026-1", " 2026-11 ", "2026-q3", "2026-w5", "2026-10\n")] == [
        "2026-01", "2026-11", "2026-Q3", "2026-W05", "2026-10"]


def test_elapsed_days_and_months():
    """The x of a running period's planned path (`evaluate.target_by_now`), in the days of `elapsed_fraction`."""
    year = parse_period("2026")
    assert year.elapsed_days(date(2026, 1, 1)) == 1
    assert year.elapsed_days(date(2026, 11, 15)) == 319  # 304 days to 31 October, then 15
    assert year.elapsed_days(date(2025, 12, 31)) == 0 and year.elapsed_days(date(2027, 3, 1)) == 365
    assert year.elapsed_days(date(2026, 11, 15)) / year.days == pytest.approx(year.elapsed_fraction(date(2026, 11, 15)))
    assert [m.key for m in parse_period("2026-Q4").months()] == ["2026-10", "2026-11", "2026-12"]
    assert [m.key for m in parse_period("2026-W44").months()] == ["2026-10", "2026-11"]  # 26 Oct – 1 Nov
    assert [m.key for m in parse_period("2026-02").months()] == ["2026-02"]
