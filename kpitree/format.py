"""Numbers as people read them, one formatter for the CLI, the app and the explanations.

Counts are whole numbers (a target shared out over segments may be 47.9 proposals, but people
send 48); a change that rounds to nothing is written without a sign ("$0", not "±$0" or "−$0"),
and so is a share that rounds to zero ("0%", not "−0%").
"""

from __future__ import annotations

import math
import re

MINUS = "−"


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: float | None, unit: str, *, compact: bool = False) -> str:
    """`1234567` money → `$1.23M` (compact) or `$1,234,567`; percent stored as a fraction; counts whole."""
    if _missing(value):
        return "—"
    assert value is not None
    if unit == "percent":
        return _unsigned_zero(f"{value * 100:.1f}%")
    if unit in ("money", "money_per_day"):
        suffix = "/day" if unit == "money_per_day" else ""
        sign = "-" if value < 0 else ""
        v = abs(value)
        if compact and v >= 1_000_000:
            text = f"${v / 1_000_000:.2f}M{suffix}"
        elif compact and v >= 10_000:
            text = f"${v / 1_000:.0f}k{suffix}"
        elif v < 100 and abs(v - round(v)) > 1e-9 * max(v, 1.0):  # cents, unless float noise off a whole
            text = f"${v:,.2f}{suffix}"
        else:
            text = f"${v:,.0f}{suffix}"
        return (sign if _nonzero(text) else "") + text
    if unit == "days":
        return _unsigned_zero(f"{value:.1f} d" if compact else f"{value:.1f} days")
    if unit == "hours":
        return _unsigned_zero(f"{value:.1f} h" if compact else f"{value:.1f} hours")
    if unit == "ratio":
        return _unsigned_zero(f"{value:.2f}×")
    if unit == "months":
        return _unsigned_zero(f"{value:.1f} mo")
    if unit == "minutes":
        return _unsigned_zero(f"{value:.1f} min")
    if unit in ("score", "count"):
        return _unsigned_zero(f"{value:,.0f}")
    if abs(value) < 100 and value != int(value):
        return _unsigned_zero(f"{value:,.1f}")
    return _unsigned_zero(f"{value:,.0f}")


def fmt_change(value: float | None, unit: str, *, ascii_sign: bool = False) -> str:
    """A signed difference: percentage points for percents, otherwise the unit with a sign.

    A difference that rounds to nothing has no sign ("0.0 pp", "$0"). `ascii_sign` writes "-"
    instead of "−", for widgets that read the sign to pick a colour.
    """
    if _missing(value):
        return "—"
    assert value is not None
    text = f"{abs(value) * 100:.1f} pp" if unit == "percent" else fmt(abs(value), unit, compact=True)
    if not _nonzero(text):
        return text
    return ("+" if value > 0 else "-" if ascii_sign else MINUS) + text


def fmt_share(value: float | None, *, signed: bool = False) -> str:
    """A fraction as a whole percent, "−" for negatives, never "−0%"; `signed` adds "+" to gains."""
    if _missing(value):
        return "—"
    assert value is not None
    text = f"{abs(value):.0%}"
    if not _nonzero(text):
        return text
    return (MINUS if value < 0 else "+" if signed else "") + text


SMALL_CHANGE = 0.0095
"""Below this a relative change as a whole percent would read 0% or 1%: it keeps one decimal."""
NOISE = 1e-9  # a ratio of two equal sums computed apart can be off by float noise: that is no change


def fmt_relative(value: float | None, baseline: float | None, unit: str) -> str:
    """How far `value` is from `baseline`, as people say it: "−2.4 pp" for percents, "−42%" otherwise
    (the amount when the baseline is zero or of the other sign, where a percentage means nothing).
    A change under 1% keeps a decimal ("−0.5%"; "<0.1%" below 0.05%), never "0%" for one that is not nothing."""
    if _missing(value) or _missing(baseline):
        return "—"
    assert value is not None and baseline is not None
    if unit == "percent" or not baseline or (value < 0 < baseline) or (baseline < 0 < value):
        return fmt_change(value - baseline, unit)
    change = value / baseline - 1
    size = abs(change)
    if NOISE < size < SMALL_CHANGE:
        # Beside an amount ("(−$51k, 0%)" in the trial) a 0% says the gap is nothing: one decimal instead.
        text = f"{size:.1%}"
        return (MINUS if change < 0 else "+") + text if _nonzero(text) else "<0.1%"
    return fmt_share(change, signed=True)


def _nonzero(text: str) -> bool:
    """The written number has a digit other than zero (so a sign in front of it means something)."""
    return any(ch in "123456789" for ch in text)


def _unsigned_zero(text: str) -> str:
    """"-0.0%" → "0.0%": a value that rounds to zero carries no sign."""
    return text.lstrip("-") if text.startswith("-") and not _nonzero(text) else text


def fmt_maturing(expected: float | None, unit: str, completion: float | None = None) -> str:
    """What a maturing cohort rate says beside its value: "maturing — expected ≈ 23.8% (85% of the
    usual conversions so far)"; without an expected value (too little history, or too few
    conversions due yet): "maturing — too early to tell", with the share when known."""
    text = "maturing — too early to tell" if _missing(expected) else \
        f"maturing — expected ≈ {fmt(expected, unit, compact=True)}"
    if not _missing(completion):
        text += f" ({fmt_share(completion)} of the usual conversions so far)"
    return text


ACRONYMS = frozenset({"ae", "arr", "crm", "csm", "id", "mrr", "nps", "sdr", "sku", "utm", "vat"})
PAIR = " × "  # how the explanation names a pair of dimensions (`explain.model.PAIR_SEP`)


def dimension_label(dimension: str, capital: bool = True) -> str:
    """A split's column name as a reader says it: `deal_pipeline` → "Deal pipeline", `owner × segment` →
    "Owner × segment", `csm` → "CSM" (`capital=False` for the middle of a sentence: "By deal pipeline").

    Only what the user reads changes: widgets keep the column name as their value, so the URL's
    `?split=` and every query still use it.
    """
    parts = []
    for part in dimension.split(PAIR):
        spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", part.strip())  # leadSource → lead Source
        words = [w for w in re.split(r"[\s_.-]+", spaced) if w]
        parts.append(" ".join(w.upper() if w.lower() in ACRONYMS else w.lower() for w in words) or part)
    text = PAIR.join(parts)
    return text[:1].upper() + text[1:] if capital else text
