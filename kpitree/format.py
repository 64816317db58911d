"""Numbers as people read them, one formatter for the CLI, the app and the explanations."""

from __future__ import annotations

import math


def fmt(value: float | None, unit: str, *, compact: bool = False) -> str:
    """`1234567` money → `$1.23M` (compact) or `$1,234,567`; percent stored as a fraction."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "percent":
        return f"{value * 100:.1f}%"
    if unit in ("money", "money_per_day"):
        suffix = "/day" if unit == "money_per_day" else ""
        sign = "-" if value < 0 else ""
        v = abs(value)
        if compact and v >= 1_000_000:
            return f"{sign}${v / 1_000_000:.2f}M{suffix}"
        if compact and v >= 10_000:
            return f"{sign}${v / 1_000:.0f}k{suffix}"
        if v < 100 and v != int(v):
            return f"{sign}${v:,.2f}{suffix}"
        return f"{sign}${v:,.0f}{suffix}"
    if unit == "days":
        return f"{value:.1f} d" if compact else f"{value:.1f} days"
    if unit == "hours":
        return f"{value:.1f} h" if compact else f"{value:.1f} hours"
    if unit == "ratio":
        return f"{value:.2f}×"
    if unit == "months":
        return f"{value:.1f} mo"
    if unit == "minutes":
        return f"{value:.1f} min"
    if unit == "score":
        return f"{value:.0f}"
    if abs(value) < 100 and value != int(value):
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def fmt_change(value: float | None, unit: str, *, ascii_sign: bool = False) -> str:
    """A signed difference: percentage points for percents, otherwise the unit with a sign.

    `ascii_sign` writes "-" instead of "−", for widgets that read the sign to pick a colour.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    sign = "+" if value > 0 else ("-" if ascii_sign else "−") if value < 0 else "±"
    if unit == "percent":
        return f"{sign}{abs(value) * 100:.1f} pp"
    return sign + fmt(abs(value), unit, compact=True)
