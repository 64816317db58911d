"""Merging dimension values that mean the same thing, and telling money formats apart.

Why: a segment chart is only as good as its labels. Real exports spell one thing several ways
("US", "USA", "United States", "U.S."; "monthly", "Monthly ", "MONTHLY"), and every spelling
becomes its own bar, so each part looks smaller than it is and none of them is wrong enough to
notice. The load merges them once, at load time, and lists every merge in the load report, so
nothing changes silently and the charts downstream never need to know.

What is merged, and what is not:

* values equal after case folding and collapsing whitespace merge to their most frequent spelling;
* names and codes of the ~30 most common countries (`COUNTRIES`) merge to one display name, but only
  where a column really holds two spellings of one country (a lone "US" stays "US"); in such a
  column every recognised country takes its display name ("AU" → "Australia");
* ids and people (owners, CSMs) are never merged: two people may share a name in different cases,
  and an id's case can matter. The caller decides which columns go through here.

Everything here is a pure function over `value → row count`: the SQL step in `ingest` counts the
values, asks for the merges, and applies them as a lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Display name → the spellings read as that country (compared after `_country_key`: case, dots,
# spaces and hyphens ignored). ISO 3166 alpha-2 and alpha-3 codes plus common names; a code that
# is also an ordinary word in a segment column (e.g. "IN", "IT") is still only merged when another
# spelling of the same country is in the column.
COUNTRIES: dict[str, tuple[str, ...]] = {
    "United States": ("US", "USA", "United States", "United States of America", "America", "U.S.", "U.S.A."),
    "United Kingdom": ("UK", "GB", "GBR", "United Kingdom", "Great Britain", "Britain", "U.K."),
    "Germany": ("DE", "DEU", "Germany", "Deutschland"),
    "France": ("FR", "FRA", "France"),
    "Spain": ("ES", "ESP", "Spain", "España", "Espana"),
    "Italy": ("IT", "ITA", "Italy", "Italia"),
    "Netherlands": ("NL", "NLD", "Netherlands", "The Netherlands", "Holland", "Nederland"),
    "Belgium": ("BE", "BEL", "Belgium"),
    "Switzerland": ("CH", "CHE", "Switzerland", "Schweiz", "Suisse"),
    "Austria": ("AT", "AUT", "Austria", "Österreich"),
    "Ireland": ("IE", "IRL", "Ireland"),
    "Portugal": ("PT", "PRT", "Portugal"),
    "Sweden": ("SE", "SWE", "Sweden", "Sverige"),
    "Norway": ("NO", "NOR", "Norway", "Norge"),
    "Denmark": ("DK", "DNK", "Denmark", "Danmark"),
    "Finland": ("FI", "FIN", "Finland", "Suomi"),
    "Poland": ("PL", "POL", "Poland", "Polska"),
    "Czechia": ("CZ", "CZE", "Czechia", "Czech Republic"),
    "Canada": ("CA", "CAN", "Canada"),
    "Mexico": ("MX", "MEX", "Mexico", "México"),
    "Brazil": ("BR", "BRA", "Brazil", "Brasil"),
    "Argentina": ("AR", "ARG", "Argentina"),
    "Australia": ("AU", "AUS", "Australia"),
    "New Zealand": ("NZ", "NZL", "New Zealand"),
    "Japan": ("JP", "JPN", "Japan"),
    "China": ("CN", "CHN", "China", "PRC"),
    "India": ("IN", "IND", "India"),
    "Singapore": ("SG", "SGP", "Singapore"),
    "South Korea": ("KR", "KOR", "South Korea", "Korea", "Republic of Korea"),
    "Israel": ("IL", "ISR", "Israel"),
    "United Arab Emirates": ("AE", "ARE", "UAE", "United Arab Emirates"),
    "South Africa": ("ZA", "ZAF", "South Africa"),
}


def _country_key(value: str) -> str:
    return re.sub(r"[\s.\-]+", "", value).casefold()


_COUNTRY_OF: dict[str, str] = {_country_key(s): name for name, spellings in COUNTRIES.items() for s in spellings}


def _case_key(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip().casefold()


@dataclass(frozen=True)
class Merge:
    """Spellings read as `target`; `rows` is how many rows changed label."""

    target: str
    sources: tuple[str, ...]
    rows: int

    def describe(self, column: str) -> str:
        shown = ", ".join(repr(s) for s in self.sources)
        return f"{column}: {shown} → {self.target!r} ({self.rows} row{'s' if self.rows != 1 else ''})"


def plan_merges(counts: dict[str, int], *, countries: bool = True) -> list[Merge]:
    """The merges for one column, given each distinct value and its row count.

    A group of spellings (same country, or same text up to case and whitespace) with two or more
    members becomes one `Merge`: a country group takes its display name, any other the most
    frequent spelling (ties: the one that is not all lower case, then the first in sort order). In a
    column with such a country group, every other country spelling takes its display name too.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for value in counts:
        if value is None or not str(value).strip():
            continue
        country = _COUNTRY_OF.get(_country_key(value)) if countries else None
        key = ("country", country) if country else ("text", _case_key(value))
        groups.setdefault(key, []).append(value)
    # A column where two spellings of one country meet is a country column: there every country takes
    # its display name, so `AU` does not sit beside `Canada`. Elsewhere a lone `US` is someone's label.
    country_column = any(kind == "country" and len(members) > 1 for (kind, _), members in groups.items())
    merges = []
    for (kind, name), members in sorted(groups.items()):
        if len(members) < 2 and not (country_column and kind == "country" and members[0] != name):
            continue
        if kind == "country":
            target = name
        else:
            target = max(sorted(members), key=lambda s: (counts[s], s != s.lower(), -sorted(members).index(s)))
        sources = tuple(sorted(s for s in members if s != target))
        merges.append(Merge(target, sources, sum(counts[s] for s in sources)))
    return merges


def lookup(merges: list[Merge]) -> dict[str, str]:
    """`spelling → target` for every spelling that changes."""
    return {s: m.target for m in merges for s in m.sources}


# --- money formats ------------------------------------------------------------------------------

# Symbols and codes of currencies whose home locales write 1.234,50 (a decimal comma). `€3.400` is
# three thousand four hundred: nobody prices in thousandths of a euro.
COMMA_DECIMAL_CURRENCIES = ("€", "EUR", "zł", "PLN", "Kč", "CZK", "kr", "SEK", "NOK", "DKK", "Ft", "HUF",
                            "₽", "RUB", "₺", "TRY", "lei", "RON", "₴", "UAH")
# The same currency written as a symbol or a code is one currency, named by its code.
CURRENCY_CODES = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW", "₽": "RUB",
                  "zł": "PLN", "Kč": "CZK", "Ft": "HUF", "₺": "TRY", "₴": "UAH"}


def currency_code(marker: str | None) -> str | None:
    """`$` → USD, `eur` → EUR; None for no marker."""
    if not marker:
        return None
    return CURRENCY_CODES.get(marker, marker.upper())


@dataclass(frozen=True)
class NumberFormat:
    """How one column writes its numbers, from counts of the values whose form decides it."""

    european: bool  # ambiguous values (3.400, 3,400) are read the European way
    decided: bool  # False: no value decided it, the default was taken
    mixed: bool  # both forms appear in the column


def number_format(us: int, eu: int, *, default_european: bool) -> NumberFormat:
    """The column's majority form; a tie or no evidence takes the file's default (semicolon files: European)."""
    if us == eu:
        return NumberFormat(default_european, us > 0, us > 0)
    return NumberFormat(eu > us, True, us > 0 and eu > 0)
