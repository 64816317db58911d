"""Text that came from a user, shown and exported as data: never as Markdown, never as a formula.

Labels, owners, tree and workspace names, file cells and URL parameters are all typed by somebody
else. Streamlit renders most strings as Markdown, so a crafted label could fetch an outside image or
show a live link inside the app's own warning; a spreadsheet runs a cell that starts with `=`.
Every page and every CSV the app writes goes through this one module, so the rule lives in one place.
"""

from __future__ import annotations

import csv
import io
import math
import string
from collections.abc import Iterable, Sequence

# A spreadsheet treats a cell starting with one of these as a formula (OWASP's list; tab and CR
# because some programs strip them before deciding).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_ESCAPED = set(string.punctuation)


def markdown_text(value: object) -> str:
    """`value` as Markdown that shows exactly these characters: no link, image, emphasis, colour,
    emoji code, LaTeX or HTML. Line breaks become spaces (a label is one line)."""
    text = "" if value is None else str(value)
    text = " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text
    return "".join("\\" + ch if ch in _ESCAPED else ch for ch in text)


def spreadsheet_cell(value: object) -> str:
    """One exported cell a spreadsheet shows as text: a leading apostrophe before a formula start
    (also after leading spaces, which some spreadsheets skip). Numbers stay numbers: a negative
    amount is data, not a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, int):
        return str(value)
    text = str(value)
    stripped = text.lstrip(" ")
    if stripped[:1] in FORMULA_START or text[:1] in FORMULA_START:
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV with every field quoted and every cell neutralised: a CR or LF inside a cell stays inside
    its quotes, so no spreadsheet splits the record and finds a formula at the start of a line."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([spreadsheet_cell(h) for h in header])
    for row in rows:
        writer.writerow([spreadsheet_cell(c) for c in row])
    return out.getvalue()
