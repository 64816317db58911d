"""Calendar periods (week, month, quarter, year) and the arithmetic the metrics need.

A period runs from its first day to its last day inclusive. Periods are plain values so that
they can be cache keys and be bound as SQL parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from .errors import PeriodError


class Grain(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


# Matched with `fullmatch` (never `match` and `$`, which lets a trailing newline through); ASCII
# digits only (`\d` would take Arabic-Indic or full-width digits too).
_PATTERNS: list[tuple[re.Pattern[str], Grain]] = [
    (re.compile(r"(\d{4})-W(\d{1,2})", re.I | re.ASCII), Grain.WEEK),
    (re.compile(r"(\d{4})-(\d{1,2})", re.ASCII), Grain.MONTH),
    (re.compile(r"(\d{4})-Q([1-4])", re.I | re.ASCII), Grain.QUARTER),
    (re.compile(r"(\d{4})", re.ASCII), Grain.YEAR),
]


def _add_months(d: date, months: int) -> date:
    index = d.year * 12 + (d.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, order=True)
class Period:
    """A calendar period; `end` is the last day, inclusive."""

    start: date
    end: date
    grain: Grain

    @property
    def key(self) -> str:
        """The period as users write it: 2026-10, 2026-Q3, 2026-W41, 2026."""
        if self.grain is Grain.WEEK:
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.grain is Grain.MONTH:
            return f"{self.start.year}-{self.start.month:02d}"
        if self.grain is Grain.QUARTER:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.year}"

    def __str__(self) -> str:
        return self.key

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def end_exclusive(self) -> date:
        return self.end + timedelta(days=1)

    def shift(self, n: int) -> Period:
        """The period n steps later (n < 0: earlier) at the same grain."""
        if self.grain is Grain.WEEK:
            return period_containing(self.start + timedelta(weeks=n), Grain.WEEK)
        months = {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[self.grain]
        return period_containing(_add_months(self.start, n * months), self.grain)

    def previous(self) -> Period:
        return self.shift(-1)

    def same_last_year(self) -> Period:
        if self.grain is Grain.WEEK:
            return self.shift(-52)
        return period_containing(_add_months(self.start, -12), self.grain)

    def elapsed_fraction(self, as_of: date) -> float:
        """Share of the period that has passed by the end of day `as_of` (0..1)."""
        if as_of < self.start:
            return 0.0
        if as_of >= self.end:
            return 1.0
        return ((as_of - self.start).days + 1) / self.days

    def elapsed_days(self, as_of: date) -> int:
        """Whole days of the period that have passed by the end of day `as_of` (0..days): the x of a
        running period's planned path, in the same days as `elapsed_fraction`."""
        return max(0, min((as_of - self.start).days + 1, self.days))

    def months(self) -> list[Period]:
        """The calendar months the period overlaps, in order (a week may straddle two)."""
        out = [period_containing(self.start, Grain.MONTH)]
        while out[-1].end < self.end:
            out.append(out[-1].shift(1))
        return out

    def is_complete(self, as_of: date) -> bool:
        return as_of >= self.end


def period_containing(d: date, grain: Grain | str) -> Period:
    """The period of the given grain that contains day d."""
    grain = Grain(grain)
    if grain is Grain.WEEK:
        start = d - timedelta(days=d.weekday())
        return Period(start, start + timedelta(days=6), grain)
    if grain is Grain.MONTH:
        start = date(d.year, d.month, 1)
        return Period(start, _add_months(start, 1) - timedelta(days=1), grain)
    if grain is Grain.QUARTER:
        start = date(d.year, (d.month - 1) // 3 * 3 + 1, 1)
        return Period(start, _add_months(start, 3) - timedelta(days=1), grain)
    start = date(d.year, 1, 1)
    return Period(start, date(d.year, 12, 31), grain)


def parse_period(text: str) -> Period:
    """Reads `2026-10`, `2026-Q3`, `2026-W41` or `2026`; raises PeriodError with an example."""
    text = str(text).strip()
    if len(text) > 32:
        text = text[:32] + "…"
    for pattern, grain in _PATTERNS:
        m = pattern.fullmatch(text)
        if not m:
            continue
        year = int(m.group(1))
        try:
            if grain is Grain.WEEK:
                return period_containing(date.fromisocalendar(year, int(m.group(2)), 1), grain)
            if grain is Grain.MONTH:
                return period_containing(date(year, int(m.group(2)), 1), grain)
            if grain is Grain.QUARTER:
                return period_containing(date(year, (int(m.group(2)) - 1) * 3 + 1, 1), grain)
            return period_containing(date(year, 1, 1), grain)
        except ValueError as exc:
            raise PeriodError(f"invalid period {text!r}: {exc}") from None
    raise PeriodError(
        f"invalid period {text!r}: write a month 2026-10, a quarter 2026-Q3, "
        "a week 2026-W41 or a year 2026"
    )


def resolve_period(text: str | None, grain: Grain | str | None, as_of: date) -> Period:
    """A period from user input; with no text, the latest complete period of the grain."""
    if text:
        period = parse_period(text)
        if grain and Grain(grain) is not period.grain:
            raise PeriodError(
                f"period {text!r} is a {period.grain.value}, but --grain {Grain(grain).value} was given"
            )
        return period
    return latest_complete(as_of, Grain(grain or Grain.MONTH))


def latest_complete(as_of: date, grain: Grain | str) -> Period:
    """The last period of the grain that ended on or before `as_of`."""
    current = period_containing(as_of, grain)
    return current if current.is_complete(as_of) else current.previous()


def trailing(period: Period, n: int) -> list[Period]:
    """The n periods ending with `period`, oldest first."""
    return [period.shift(-i) for i in range(n - 1, -1, -1)]
