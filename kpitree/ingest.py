"""Files → canonical DuckDB tables, with a data-quality report and an all-or-nothing swap.

A load runs in four steps, each of which can refuse a file with a message naming it (and the
line and column where that applies):

1. *Open*: archives (.zip, .gz) are unpacked under size limits, binary files are refused, the
   text is made UTF-8 (BOM, UTF-16, Windows-1252/Latin-1, even mixed line by line), and the
   delimiter and header are read in Python from the first bytes, so a 10,000-column or
   one-huge-line file is refused before any parser runs.
2. *Map*: the header decides the layout (a user's saved mapping, a known vendor export, or
   canonical names; `vendors.py`), i.e. which column is read as what.
3. *Read and check*: a private in-memory DuckDB connection (it alone touches the file system
   and only runs SQL written here) reads every cell as text with an explicit dialect, coerces
   it in SQL (dates, money, booleans, stage names), and sorts rows into loaded, rejected (with
   line, column and reason) and skipped on purpose.
4. *Swap*: the new tables are written into the workspace as `__new_<table>` and swapped in,
   all of them in one transaction, only when every file succeeded: a failed load leaves the
   workspace exactly as it was.

Files are only ever parsed as data, never executed or evaluated.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import duckdb

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from .detect import TableFit, best_fit, fit_table, has_dates, not_data, not_needed
from .errors import LoadError
from .normalise import (
    COMMA_DECIMAL_CURRENCIES,
    NumberFormat,
    currency_code,
    lookup,
    number_format,
    plan_merges,
)
from .plain import csv_text
from .schema import TABLES, ColumnType
from .vendors import (
    CENTS_HEADER,
    DERIVED,
    LAYOUT,
    OMIT,
    SIDE_COLUMNS,
    SNAPSHOT_COLUMNS,
    STAGE_DEFAULTS,
    UNITS,
    VENDOR_SIDES,
    Headers,
    Input,
    Kind,
    Mapping,
    canonical_mapping,
    detect_vendor,
    header_key,
    money_columns,
    normalise_header,
    snapshot_mapping,
    vendor_mapping,
)
from .workspace import DB_MEMORY_LIMIT, DB_THREADS, META_TABLE, Workspace, _lock_for

__all__ = [
    "Detection", "FileReport", "LoadReport", "RejectedRow", "UnrecognisedFile", "detect_files", "ingest",
    "load_frames", "normalise_header", "preview_mapping", "rejects_csv",
]

# Limits: a file beyond them is refused with a message, never half-read.
MAX_REJECT_DETAILS = 10_000  # rejected rows listed per file (all are counted)
MAX_REJECT_REASONS = 3  # the commonest reasons rows were rejected, said per file
# A reason that rejects this share of a file's rows (or more), or this many rows, is said as a warning of its own,
# before the row-by-row list: 141 Copper opportunities with Status 'Abandoned' were 8 % of a file, rejected one by one.
REJECT_REASON_SHARE = 0.01
REJECT_REASON_ROWS = 25
PREVIEW_CHECK_ROWS = 50_000  # a mapping preview checks this many rows, so its reject counts are the file's
MAX_COLUMNS = 1000
MAX_LINE_BYTES = 1 << 20  # one CSV row
MAX_UNPACKED_BYTES = 4 << 30  # all members of one archive together, or one .gz
MAX_ZIP_MEMBERS = 200
MAX_ZIP_RATIO = 200  # uncompressed ÷ compressed size; text CSVs stay far below
RATIO_FLOOR = 10 << 20  # below this many unpacked bytes the ratio is not judged (small files compress well)
SAMPLE_BYTES = 256 << 10
ATTACH_WAIT_SECONDS = 30.0  # a load waits this long for another process to let go of the workspace file
LOAD_WAIT_SECONDS = 600.0  # … and this long for another load of the same workspace to finish
LOAD_LOCK_FILE = ".load.lock"
YEARS = (1900, 2100)
MAX_AMOUNT = 1e15  # a money value at or beyond this is refused (sums of 1e308 overflow to infinity)
ARCHIVE_MEMBER_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet")  # a zip's README.txt is not data
FOOTER = re.compile(r"^[\s\"']*(grand totals?\b|total\b|confidential information|copyright|©|\(c\)\s*\d{4})", re.I)
BINARY_MAGIC = {
    b"%PDF": "a PDF document", b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"PAR1": "a Parquet file",
    b"SQLite format 3": "an SQLite database", b"\xd0\xcf\x11\xe0": "an old Excel (.xls) or Office document",
    b"\x7fELF": "a program", b"MZ\x90\x00": "a Windows program",
}
# Dates that record something that happened (a future value is suspicious, not impossible).
FACT_DATES = {
    "deals": ("created_date",), "leads": ("created_date",), "activities": ("date",), "tickets": ("opened_at",),
    "events": ("timestamp",), "nps": ("date",), "subscriptions": ("start_date",),
}
Progress = Callable[[float, str], None]


# --- the report ------------------------------------------------------------------------------


@dataclass
class RejectedRow:
    line: int | None
    column: str | None
    reason: str
    value: str | None = None


@dataclass
class FileReport:
    """What one file contributed, and everything a user should know about its quality."""

    file: str
    table: str
    source: str = "canonical"
    label: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    footer_rows: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)  # output column → file column(s)
    extra_columns: list[str] = field(default_factory=list)  # unmapped columns, kept as text
    missing_optional_columns: list[str] = field(default_factory=list)
    nulls: dict[str, int] = field(default_factory=dict)
    duplicate_ids: int = 0
    date_range: tuple[str | None, str | None] = (None, None)
    stages: list[dict] = field(default_factory=list)  # deals: stage, status, source, rows
    rules: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    delimiter: str = ","
    role: str = "table"  # table, side (joined into others' rows), ignored (recognised, not loaded) or skipped
    evidence: list[str] = field(default_factory=list)  # why it was read as this table (headers matched)
    # The commonest reasons rows were rejected: (column, reason, rows, first line), most rows first.
    reject_reasons: list[tuple[str | None, str, int, int | None]] = field(default_factory=list)


@dataclass
class LoadReport:
    files: list[FileReport]
    tables: dict[str, int]  # table → rows after the load (a dry run: rows each table would get from these files)
    mode: str
    seconds: float = 0.0
    dry_run: bool = False  # checked and reported, nothing written

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    def summary(self) -> str:
        lines = []
        for f in self.files:
            if f.role in ("ignored", "skipped"):
                lines.append(f"{f.file}: not loaded — {f.label}")
                continue
            target = f.table or "side file"
            lines.append(
                f"{f.file} → {target} ({f.label or f.source}): {f.rows_read} read, {f.rows_loaded} loaded, "
                f"{f.rows_rejected} rejected" + (f", {f.rows_skipped} skipped" if f.rows_skipped else "")
            )
            if f.date_range[0]:
                lines.append(f"  dates {f.date_range[0]} … {f.date_range[1]}")
            for reason, n in f.skipped.items():
                lines.append(f"  skipped {n}: {reason}")
            for r in f.rejected[:10]:
                col = f", column {r.column!r}" if r.column else ""
                lines.append(f"  line {r.line}{col}: {r.reason}")
            if f.rows_rejected > 10:
                lines.append(f"  … and {f.rows_rejected - 10} more rejected rows")
            if f.extra_columns:
                lines.append(f"  unmapped columns kept as text: {', '.join(f.extra_columns)}")
            if f.nulls:
                lines.append("  empty values: " + ", ".join(f"{c}={n}" for c, n in f.nulls.items()))
            if f.duplicate_ids:
                lines.append(f"  duplicate ids: {f.duplicate_ids} (later copies rejected)")
            for r in f.rules:
                lines.append(f"  rule: {r}")
            for w in f.warnings:
                lines.append(f"  warning: {w}")
        lines.append("tables: " + ", ".join(f"{t}={n}" for t, n in self.tables.items()))
        if self.dry_run:
            lines.append("dry run: every row was read and checked; nothing was written to the workspace")
        return "\n".join(lines)


class MissingColumns(LoadError):
    """The file was read as a table but lacks some of its required columns: a mapping can fix that."""


class UnrecognisedFile(LoadError):
    """No saved mapping, vendor layout or canonical table fits the header: the file needs a mapping."""

    def __init__(self, file: str, headers: list[str], message: str, page_hint: str = "", cli_hint: str = "") -> None:
        super().__init__(f"{message} {cli_hint}".strip())
        self.file = file
        self.headers = headers
        self.reason = message
        self.page_hint = page_hint

    def on_page(self) -> str:
        """The message as the Upload page says it: its own controls ('Load as'), not command-line flags."""
        return f"{self.reason} {self.page_hint}".strip()


def _unrecognised_hints(name: str) -> tuple[str, str]:
    """What to do about a file no layout or table fits: on the Upload page, and on the command line."""
    page = ("Choose its table with 'Load as' and map its columns once (the mapping is saved and reused), or skip "
            "the file.")
    arg = shlex.quote(name)
    cli = (f"Name its table with --as {arg}=TABLE, give its mapping with --map {arg}=MAPPING.json (the JSON the "
           f"Upload page saves), or leave it out with --skip {arg}.")
    return page, cli


def rejects_csv(report: LoadReport) -> str:
    """Every rejected row of the load as CSV (file, line, column, reason, value), safe to open in a spreadsheet.

    Written by `plain.csv_text`, the app's one CSV writer: every field quoted (a CR or LF in a cell
    stays inside it) and a cell that would start a formula gets a leading apostrophe.
    """
    rows = ((f.file, r.line, r.column, r.reason, r.value) for f in report.files for r in f.rejected)
    return csv_text(["file", "line", "column", "reason", "value"], rows)


# --- coercion expressions (DuckDB SQL over a VARCHAR value) ------------------------------------
# Each takes the cell's text already trimmed (`_text_of`: the t_* columns): a trim costs as much as a
# cast over a million values, and these expressions named it a dozen times.


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _date_expr(v: str, day_first: bool) -> str:
    """ISO first (with or without time/zone), then d/m/y or m/d/y as the file showed, epochs, month names."""
    parts = f"regexp_extract({v}, '^\\s*(\\d{{1,2}})[/.\\-](\\d{{1,2}})[/.\\-](\\d{{2,4}})', ['a', 'b', 'y'])"
    day, month = ("a", "b") if day_first else ("b", "a")
    year = f"CAST({parts}.y AS INTEGER)"
    year = f"(CASE WHEN {year} < 100 THEN 2000 + {year} ELSE {year} END)"
    dm = f"try(make_date({year}, CAST({parts}.{month} AS INTEGER), CAST({parts}.{day} AS INTEGER)))"
    slashed = f"CASE WHEN regexp_matches({v}, '^\\s*\\d{{1,2}}[/.\\-]\\d{{1,2}}[/.\\-]\\d{{2,4}}') THEN {dm} END"
    ymd = f"TRY_CAST(replace(regexp_extract({v}, '^\\s*(\\d{{4}}/\\d{{1,2}}/\\d{{1,2}})', 1), '/', '-') AS DATE)"
    month_only = (f"CASE WHEN regexp_matches({v}, '^\\d{{4}}-\\d{{1,2}}$') "
                  f"THEN TRY_CAST({v} || '-01' AS DATE) END")
    # API exports: Unix seconds (Stripe) or milliseconds (HubSpot); compact 20261031.
    epoch = (f"CASE WHEN regexp_full_match({v}, '\\d{{9,10}}') THEN CAST(to_timestamp(CAST({v} AS BIGINT)) "
             f"AS DATE) WHEN regexp_full_match({v}, '\\d{{12,13}}') THEN "
             f"CAST(to_timestamp(CAST({v} AS BIGINT) / 1000) AS DATE) "
             f"WHEN regexp_full_match({v}, '\\d{{8}}') THEN CAST(try_strptime({v}, '%Y%m%d') AS DATE) END")
    named = (f"CAST(try_strptime(regexp_replace({v}, ',?\\s+\\d{{1,2}}:\\d{{2}}.*$', ''), "
             f"['%b %d, %Y', '%d %b %Y', '%B %d, %Y', '%d %B %Y', '%d-%b-%Y', '%d-%b-%y']) AS DATE)")
    return f"COALESCE({_iso(v, 'DATE')}, {ymd}, {slashed}, {month_only}, {epoch}, {named})"


def _iso(v: str, sql_type: str) -> str:
    """DuckDB's own cast, for ISO values only: it reads `03/06/24` as the year 3, not as 2024."""
    return f"CASE WHEN substr({v}, 5, 1) = '-' THEN TRY_CAST({v} AS {sql_type}) END"


def _timestamp_expr(v: str, day_first: bool) -> str:
    return f"COALESCE({_iso(v, 'TIMESTAMP')}, CAST({_date_expr(v, day_first)} AS TIMESTAMP))"


def _number_expr(v: str, european: bool = False) -> str:
    """Currency symbols or codes, spaces, thousands separators, decimal commas and (negatives).

    Anything else (letters, a `k` suffix, two numbers) makes the value unreadable, so it is
    rejected with its line rather than read as a different number. A value that could be either
    form (3.400, 3,400) is decided by its own currency when that is a comma-decimal one (€3.400 is
    3,400) and otherwise by the column's majority form (`european`, from `_money_votes`).
    """
    code = "([A-Za-z]{3}|kr|Kr|zł|Kč|Ft|Fr\\.?)"  # USD, EUR, kr, zł … before or after the number
    bare = (f"regexp_replace(regexp_replace(regexp_replace({v}, '\\.-$', ''), '^{code}\\s*|\\s*{code}$', ''), "
            f"'[\\s$€£¥₹₩₽¤\u00a0\u202f'']', '', 'g')")
    ok = f"regexp_full_match({bare}, '[(-]?[0-9.,]*[0-9][0-9.,]*\\)?-?')"
    s = f"regexp_replace({bare}, '[^0-9,.()\\-]', '', 'g')"
    neg = f"(starts_with({s}, '(') OR starts_with({s}, '-') OR ends_with({s}, '-'))"
    digits = f"regexp_replace({s}, '[()\\-]', '', 'g')"
    eu = f"replace(replace({digits}, '.', ''), ',', '.')"
    us = f"replace({digits}, ',', '')"
    choose = (
        f"CASE WHEN strpos({digits}, ',') > 0 AND strpos({digits}, '.') > 0 THEN "
        f"  (CASE WHEN regexp_extract({digits}, '([.,])[0-9]*$', 1) = ',' THEN {eu} ELSE {us} END) "
        f"WHEN strpos({digits}, ',') > 0 THEN "
        f"  (CASE WHEN regexp_matches({digits}, '^\\d{{1,3}}(,\\d{{3}})+$') THEN {us} "
        f"   ELSE replace({digits}, ',', '.') END) "
        f"WHEN regexp_matches({digits}, '^\\d{{1,3}}(\\.\\d{{3}}){{2,}}$') THEN replace({digits}, '.', '') "
        f"WHEN regexp_full_match({digits}, '\\d{{1,3}}\\.\\d{{3}}') AND "
        f"({'true' if european else 'false'} OR regexp_matches({v}, {_lit(EU_SYMBOL_RE)})) "
        f"THEN replace({digits}, '.', '') "
        f"ELSE {digits} END"
    )
    if european:  # 3,400 in a column written 1.234,50 is three point four
        choose = (f"CASE WHEN regexp_full_match({digits}, '\\d{{1,3}},\\d{{3}}') THEN replace({digits}, ',', '.') "
                  f"ELSE {choose} END")
    # A real amount is short: 40 characters cannot overflow a double, so the slow path is always finite.
    slow = (f"CASE WHEN {ok} AND length({bare}) <= 40 THEN (CASE WHEN {neg} THEN -1 ELSE 1 END) * "
            f"TRY_CAST({choose} AS DOUBLE) END")
    # DuckDB's own cast reads NaN, inf and 1e309 (→ inf): none of them is an amount, and one NaN in a sum makes
    # the month's total NaN (shown as $0), so a non-finite value is unreadable like any other.
    fast = f"TRY_CAST({v} AS DOUBLE)"
    # A CASE, not COALESCE(fast, slow): DuckDB hoists the slow path's repeated parts (three regex
    # replaces) out of a COALESCE and runs them on every value; a CASE's ELSE runs only where it is needed.
    if european:  # DuckDB reads 3.400 as 3.4: in a European column it is a thousands group
        return (f"CASE WHEN isfinite({fast}) AND NOT regexp_full_match({v}, '[-+]?\\d{{1,3}}\\.\\d{{3}}') "
                f"THEN {fast} ELSE {slow} END")
    return f"CASE WHEN isfinite({fast}) THEN {fast} ELSE {slow} END"


# Which form a money column is written in (see `_money_votes`); RE2 patterns over the trimmed text.
EU_SYMBOL_RE = "(" + "|".join(re.escape(c) if not c.isascii() else f"\\b{c}\\b" for c in COMMA_DECIMAL_CURRENCIES) + ")"
US_FORM_RE = r"\d,\d{3}\.\d|\d\.\d{1,2}([^\d.,]|$)|\d,\d{3},\d{3}"
EU_FORM_RE = r"\d\.\d{3},\d|\d,\d{1,2}([^\d.,]|$)|\d\.\d{3}\.\d{3}"
AMBIGUOUS_DOT_RE = r"^[^\d]*\d{1,3}\.\d{3}[^\d.,]*$"
AMBIGUOUS_COMMA_RE = r"^[^\d]*\d{1,3},\d{3}[^\d.,]*$"
CURRENCY_RE = r"([$€£¥₹₩₽₺₴]|zł|Kč|\bkr\b|\bFt\b|\b[A-Z]{3}\b)"


def _currency_expr(t: str) -> str:
    """The value's currency symbol or code as written (NULL for a plain number: no regex on those)."""
    return (f"CASE WHEN TRY_CAST({t} AS DOUBLE) IS NULL THEN "
            f"NULLIF(regexp_extract({t}, {_lit(CURRENCY_RE)}, 1), '') END")


def _money_votes(texts: dict[str, str], names: list[str]) -> list[str]:
    """Per number column five aggregates: values in US form, in European form, ambiguous `3.400`
    (no comma-decimal currency on it), ambiguous `3,400`, and the distinct currencies written."""
    out = []
    for n in names:
        t = texts[n]
        # Most values are plain numbers DuckDB reads (12500.00, 3.400): for those the form is told by where
        # the one dot is, without a regex (four regexes over a million amounts cost a fifth of the load).
        plain = f"TRY_CAST({t} AS DOUBLE) IS NOT NULL"
        dot = f"strpos({t}, '.')"
        after = f"(length({t}) - {dot})"
        before = f"({dot} - 1 - CASE WHEN left({t}, 1) IN ('-', '+') THEN 1 ELSE 0 END)"
        sep = f"(contains({t}, '.') OR contains({t}, ','))"
        eu_dot = (f"regexp_matches({t}, {_lit(AMBIGUOUS_DOT_RE)}) AND regexp_matches({t}, {_lit(EU_SYMBOL_RE)})")
        out += [
            f"count(*) FILTER (WHERE CASE WHEN {plain} THEN {dot} > 0 AND {after} BETWEEN 1 AND 2 "
            f"ELSE {sep} AND regexp_matches({t}, {_lit(US_FORM_RE)}) END)",
            f"count(*) FILTER (WHERE NOT {plain} AND {sep} AND (regexp_matches({t}, {_lit(EU_FORM_RE)}) OR ({eu_dot})))",
            f"count(*) FILTER (WHERE CASE WHEN {plain} THEN {dot} > 0 AND {after} = 3 AND {before} BETWEEN 1 AND 3 "
            f"ELSE contains({t}, '.') AND regexp_matches({t}, {_lit(AMBIGUOUS_DOT_RE)}) "
            f"AND NOT regexp_matches({t}, {_lit(EU_SYMBOL_RE)}) END)",
            f"count(*) FILTER (WHERE contains({t}, ',') AND regexp_matches({t}, {_lit(AMBIGUOUS_COMMA_RE)}))",
            f"list(DISTINCT {_currency_expr(t)}) FILTER (WHERE {_currency_expr(t)} IS NOT NULL)",
        ]
    return out


_TRUE = ("true", "t", "yes", "y", "1", "x", "won", "closed")
_FALSE = ("false", "f", "no", "n", "0", "")


def _bool_expr(v: str) -> str:
    low = f"lower({v})"
    return (f"(CASE WHEN {low} IN ({', '.join(map(_lit, _TRUE))}) THEN true "
            f"WHEN {low} IN ({', '.join(map(_lit, _FALSE))}) THEN false END)")


def _enum_expr(v: str, synonyms: tuple[tuple[str, str], ...]) -> str:
    low = f"lower({v})"
    if not synonyms:
        return low
    cases = " ".join(f"WHEN {_lit(k)} THEN {_lit(val)}" for k, val in synonyms)
    return f"(CASE {low} {cases} ELSE {low} END)"


def _stage_key_expr(v: str) -> str:
    # Whitespace runs (RE2's \s: space, tab, LF, FF, CR) become one space; a name without a run (nearly
    # all) skips the regex, which cost more than the rest of the stage's handling over a million rows.
    runs = " OR ".join([f"contains({v}, '  ')"] + [f"contains({v}, chr({c}))" for c in (9, 10, 12, 13)])
    return f"(CASE WHEN {runs} THEN regexp_replace(lower({v}), '\\s+', ' ', 'g') ELSE lower({v}) END)"


def _quota_period_exprs(v: str) -> tuple[str, str]:
    """Start and end date of a quota's period written 2026-10, 2026-Q4, 2026 or as a date."""
    t = f"upper(trim({v}))"
    start = (
        f"CASE WHEN regexp_matches({t}, '^\\d{{4}}-\\d{{1,2}}$') THEN TRY_CAST({t} || '-01' AS DATE) "
        f"WHEN regexp_matches({t}, '^\\d{{4}}-Q[1-4]$') THEN "
        f"  make_date(CAST(left({t}, 4) AS INTEGER), (CAST(right({t}, 1) AS INTEGER) - 1) * 3 + 1, 1) "
        f"WHEN regexp_matches({t}, '^\\d{{4}}$') THEN make_date(CAST({t} AS INTEGER), 1, 1) "
        f"ELSE date_trunc('month', TRY_CAST({t} AS DATE)) END"
    )
    end = (
        f"CASE WHEN regexp_matches({t}, '^\\d{{4}}-Q[1-4]$') THEN CAST(({start}) + INTERVAL 3 MONTH AS DATE) - 1 "
        f"WHEN regexp_matches({t}, '^\\d{{4}}$') THEN CAST(({start}) + INTERVAL 1 YEAR AS DATE) - 1 "
        f"ELSE CAST(({start}) + INTERVAL 1 MONTH AS DATE) - 1 END"
    )
    return f"CAST(({start}) AS DATE)", f"CAST(({end}) AS DATE)"


_EXAMPLES = {
    Kind.DATE: "a date such as 2026-10-31, 10/31/2026 or 31.10.2026",
    Kind.TIMESTAMP: "a date and time such as 2026-10-31 14:05:00",
    Kind.NUMBER: "an amount such as 1234.50, $1,234.50 or 1.234,50 €",
    Kind.INTEGER: "a whole number such as 9",
    Kind.BOOL: "true/false (or yes/no, 1/0)",
}


def _typed_expr(inp: Input, t: str, day_first: bool, european: bool = False) -> str:
    match inp.kind:
        case Kind.TEXT:
            return t
        case Kind.DATE:
            return _date_expr(t, day_first)
        case Kind.TIMESTAMP:
            return _timestamp_expr(t, day_first)
        case Kind.NUMBER:
            return _number_expr(t, european)
        case Kind.INTEGER:
            return f"TRY_CAST(round({_number_expr(t)}) AS BIGINT)"
        case Kind.BOOL:
            return _bool_expr(t)
        case Kind.ENUM:
            value = _enum_expr(t, inp.synonyms)
            if inp.allowed and inp.lenient:
                allowed = ", ".join(map(_lit, inp.allowed))
                return f"(CASE WHEN {value} IN ({allowed}) THEN {value} END)"
            return value
    raise AssertionError(f"unhandled input kind {inp.kind}")


def _connect(threads: int = DB_THREADS) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB for reading files, under the same ceilings as a workspace's instance.

    Why: DuckDB's default is 80 % of the machine's memory and every core; a 1 GB upload next to the
    app's own instances could take the box from every user. Under the ceiling it spills to the
    load's temporary folder instead (set by `ingest`)."""
    return duckdb.connect(config={"threads": threads, "memory_limit": f"{DB_MEMORY_LIMIT // (1 << 20)}MiB"})


# --- step 1: open -----------------------------------------------------------------------------


@dataclass
class _Source:
    name: str  # as the user knows it: deals.csv, or export.zip:deals.csv
    path: Path  # plain UTF-8 text on disk
    headers: list[str]
    delimiter: str
    encoding: str
    digest: str = ""
    notes: list[str] = field(default_factory=list)
    lines: tuple[Path, int] | None = None  # (file, its physical lines), counted while hashing it


def _open_all(paths: list[Path], work: Path, progress: Progress | None = None) -> list[_Source]:
    out: list[_Source] = []
    for i, path in enumerate(paths):
        if progress:
            progress(0.05 + 0.1 * i / max(len(paths), 1), f"opening {path.name}")
        out.extend(_open(path, work))
    return out


def _open(path: Path, work: Path) -> list[_Source]:
    if not path.exists():
        raise LoadError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise LoadError(f"{path.name}: the file is empty")
    with open(path, "rb") as fh:
        magic = fh.read(8)
    lower = path.name.lower()
    if magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _open_zip(path, work)
    if magic.startswith(b"\x1f\x8b"):
        inner = path.name[:-3] if lower.endswith(".gz") else path.name + ".csv"
        plain = _unique(work, inner)
        with open(plain, "wb") as out:
            _gunzip(path, out, path.name, MAX_UNPACKED_BYTES)
        return [_data_source(plain, path.name, work)]
    if lower.endswith((".zip", ".gz", ".gzip")):
        raise LoadError(f"{path.name}: named like an archive, but it is not a valid {lower.rsplit('.', 1)[1]} file")
    return [_data_source(path, path.name, work)]


def _data_source(path: Path, name: str, work: Path) -> _Source:
    """A plain file: Parquet is turned into CSV text first, so both go through one mapping and one check."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        return _text_source(_parquet_to_csv(path, work, name), name, work, parquet=True)
    if name.lower().endswith(".parquet"):
        raise LoadError(f"{name}: named like a Parquet file, but it is not one (it does not start with PAR1)")
    return _text_source(path, name, work)


def _parquet_to_csv(path: Path, work: Path, name: str) -> Path:
    """A Parquet file's rows as CSV text (every value as DuckDB writes it: ISO dates, `nan` for NaN, which the
    checks then reject like any unreadable value), after its metadata passed the same limits as a CSV."""
    con = _connect()
    try:
        try:
            source = f"read_parquet({_lit(str(path))})"
            columns = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            rows = con.execute(f"SELECT num_rows FROM parquet_file_metadata({_lit(str(path))})").fetchone()[0]
            size = con.execute(f"SELECT sum(total_uncompressed_size) FROM parquet_metadata({_lit(str(path))})"
                               ).fetchone()[0]
        except duckdb.Error as exc:
            raise LoadError(f"{name}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
        if len(columns) > MAX_COLUMNS:
            raise LoadError(f"{name}: {len(columns)} columns; at most {MAX_COLUMNS} are accepted — refused")
        if size and size > MAX_UNPACKED_BYTES:
            raise LoadError(f"{name}: unpacks to {size // (1 << 20)} MB, more than the "
                            f"{MAX_UNPACKED_BYTES // (1 << 20)} MB limit — refused")
        if not rows:
            raise LoadError(f"{name}: the file has columns but no rows")
        out = _unique(work, Path(name).stem + ".csv")
        text = ", ".join(f"CAST({_q(c[0])} AS VARCHAR) AS {_q(c[0])}" for c in columns)
        try:
            con.execute(f"COPY (SELECT {text} FROM {source}) TO {_lit(str(out))} (HEADER, DELIMITER ',', "
                        "FORCE_QUOTE *)")
        except duckdb.Error as exc:
            raise LoadError(f"{name}: cannot read the Parquet file's rows ({str(exc).splitlines()[0][:200]})"
                            ) from None
        return out
    finally:
        con.close()


def _unique(work: Path, name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name.replace("\\", "/")).name) or "file.csv"
    path = work / safe
    n = 1
    while path.exists():
        path = work / f"{n}_{safe}"
        n += 1
    return path


def _copy_limited(src, dst, name: str, limit: int, packed: Callable[[], int] | None = None) -> int:
    """Copies at most `limit` bytes; with `packed` (compressed bytes read so far) also refuses, while
    streaming, an expansion beyond MAX_ZIP_RATIO, so a bomb is stopped after megabytes, not gigabytes."""
    written = 0
    while chunk := src.read(1 << 20):
        written += len(chunk)
        if written > limit:
            raise LoadError(f"{name}: unpacks to more than {limit // (1 << 20)} MB — refused "
                            "(a compression bomb, or an export too large to load at once)")
        if packed is not None and written > RATIO_FLOOR and written > MAX_ZIP_RATIO * max(packed(), 1):
            raise LoadError(f"{name}: expands more than {MAX_ZIP_RATIO}:1 ({written // max(packed(), 1)}:1 after "
                            f"{written >> 20} MB) — refused as a compression bomb; nothing was loaded")
        dst.write(chunk)
    return written


def _gunzip(path: Path, out, name: str, limit: int) -> int:
    import gzip

    try:
        with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as src:
            return _copy_limited(src, out, name, limit, packed=raw.tell)
    except (OSError, EOFError, zlib.error) as exc:
        raise LoadError(f"{name}: not a readable gzip file ({exc})") from None


def _unsafe_member(name: str) -> bool:
    n = name.replace("\\", "/")
    return n.startswith("/") or bool(re.match(r"^[A-Za-z]:", n)) or ".." in n.split("/") or "\x00" in n


def _open_zip(path: Path, work: Path) -> list[_Source]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise LoadError(f"{path.name}: not a readable zip file ({exc})") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
            raise LoadError(f"{path.name}: this is an Excel workbook, not CSV: save it as 'CSV UTF-8' and upload that")
        bad = [n for n in names if _unsafe_member(n)]
        if bad:
            raise LoadError(f"{path.name}: refused: member {bad[0]!r} has a path outside the archive "
                            "(absolute or with '..'); nothing was loaded")
        if len(infos) > MAX_ZIP_MEMBERS:
            raise LoadError(f"{path.name}: {len(infos)} members; at most {MAX_ZIP_MEMBERS} are accepted")
        declared = sum(i.file_size for i in infos)
        if declared > MAX_UNPACKED_BYTES:
            raise LoadError(f"{path.name}: unpacks to {declared // (1 << 20)} MB, more than the "
                            f"{MAX_UNPACKED_BYTES // (1 << 20)} MB limit — refused")
        for i in infos:
            if i.file_size > RATIO_FLOOR and i.file_size > MAX_ZIP_RATIO * max(i.compress_size, 1):
                raise LoadError(
                    f"{path.name}: member {i.filename!r} would expand {i.file_size // max(i.compress_size, 1)}:1 "
                    f"(to {i.file_size // (1 << 20)} MB) — refused as a zip bomb")
        out: list[_Source] = []
        skipped: list[str] = []
        budget = MAX_UNPACKED_BYTES
        for info in infos:
            member = info.filename
            base = member.replace("\\", "/").rsplit("/", 1)[-1]
            if info.is_dir() or member.startswith("__MACOSX/") or base.startswith(".") or not base:
                continue
            low = base.lower()
            if not low.endswith(ARCHIVE_MEMBER_SUFFIXES):
                skipped.append(member)
                continue
            if info.flag_bits & 0x1:
                raise LoadError(f"{path.name}: member {member!r} is encrypted; unzip it first")
            shown = f"{path.name}:{member}"
            plain = _unique(work, base[:-3] if low.endswith(".gz") else base)
            try:
                with zf.open(info) as src, open(plain, "wb") as dst:
                    if low.endswith(".gz"):
                        raw = _unique(work, base)
                        with open(raw, "wb") as tmp:
                            _copy_limited(src, tmp, shown, min(budget, info.file_size + 1024))
                        budget -= _gunzip(raw, dst, shown, budget)
                    else:
                        budget -= _copy_limited(src, dst, shown, min(budget, info.file_size + 1024))
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error, EOFError) as exc:
                raise LoadError(f"{shown}: cannot unpack this member ({exc}) — a damaged archive; nothing was "
                                "loaded") from None
            if plain.stat().st_size == 0:
                raise LoadError(f"{shown}: the file is empty")
            out.append(_data_source(plain, shown, work))
    if not out:
        listing = ", ".join(names[:10]) or "none"
        raise LoadError(f"{path.name}: the zip holds no CSV file (members: {listing})")
    if skipped:
        out[0].notes.append(f"{path.name}: members that are not CSV were ignored: {', '.join(skipped[:10])}")
    return out


def _refuse_binary(head: bytes, name: str) -> None:
    for magic, what in BINARY_MAGIC.items():
        if head.startswith(magic):
            raise LoadError(f"{name}: this is {what}, not a CSV file; nothing was loaded")
    nul = head.find(b"\x00")
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    if nul >= 0 or controls > max(8, len(head) // 100):
        where = nul if nul >= 0 else next(i for i, b in enumerate(head) if b < 9 or 13 < b < 32)
        raise LoadError(f"{name}: this is a binary file, not CSV text (control bytes from byte {where}); "
                        "nothing was loaded")


def _transcode(path: Path, work: Path, name: str) -> tuple[Path, str, list[str]]:
    """Rewrites a non-UTF-8 file as UTF-8, line by line: UTF-8 where a line is valid, else the file's legacy
    encoding (Windows-1252/Latin-1, or Shift-JIS when the bytes say so). Always says so in a warning: a
    wrong guess shows as odd letters in names, and the user should look."""
    latin: list[int] = []
    sample = bytearray()
    with open(path, "rb") as src:
        for n, raw in enumerate(src, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                latin.append(n)
                if len(sample) < SAMPLE_BYTES:
                    sample += raw
    legacy = _legacy_encoding(bytes(sample), name, latin[0] if latin else 1)
    out = _unique(work, path.stem + ".utf8.csv")
    utf8_lines = 0
    with open(path, "rb") as src, open(out, "w", encoding="utf-8", newline="") as dst:
        for n, raw in enumerate(src, start=1):
            try:
                text = raw.decode("utf-8")
                if not raw.isascii():
                    utf8_lines += 1
            except UnicodeDecodeError:
                text = _decode_legacy(raw, legacy, name, n)
            dst.write(text)
    shown = ", ".join(map(str, latin[:5])) + (" …" if len(latin) > 5 else "")
    what = {"cp932": "Shift-JIS (Japanese)", "cp1252": "Windows-1252/Latin-1"}[legacy]
    if latin and utf8_lines:
        notes = [f"mixed encodings: {len(latin)} line(s) are not UTF-8 (lines {shown}) and were read as "
                 f"{what}, the rest as UTF-8 — check accented names on those lines"]
        encoding = f"mixed utf-8 / {what.lower()}"
    else:
        notes = [f"the file is not UTF-8: read as {what} ({len(latin)} line(s) with such characters, lines {shown})"
                 " — check names with accents or other scripts; save as 'CSV UTF-8' to be sure"]
        encoding = "shift-jis (cp932)" if legacy == "cp932" else "windows-1252 (latin-1)"
    return out, encoding, notes


_CJK = re.compile("[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")


def _legacy_encoding(sample: bytes, name: str, first_line: int) -> str:
    """`cp1252` or `cp932` for the lines that are not UTF-8; a LoadError for another double-byte encoding.

    Latin text in Windows-1252 has its accented letters one by one among ASCII, and bytes 0x81–0x9F are
    rare punctuation; Shift-JIS text decodes to kana and kanji, with lead bytes mostly in 0x81–0x9F.
    Chinese and Korean encodings have high bytes in pairs that Windows-1252 would turn into nonsense: they
    are refused with what to do rather than loaded as wrong letters.
    """
    high = [b for b in sample if b >= 0x80]
    if not high:
        return "cp1252"
    try:
        decoded = sample.decode("cp932")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None:
        non_ascii = [c for c in decoded if ord(c) >= 0x80]
        cjk = sum(1 for c in non_ascii if _CJK.match(c))
        leads = sum(1 for b in high if 0x81 <= b <= 0x9F)
        if cjk >= max(1, 0.8 * len(non_ascii)) and leads >= 0.3 * len(high) / 2:
            return "cp932"
    paired = sum(1 for a, b in zip(sample, sample[1:], strict=False) if a >= 0x80 and b >= 0x80)
    if len(high) >= 4 and 2 * paired >= 0.6 * len(high):
        raise LoadError(f"{name}, line {first_line}: the text is not UTF-8 and its characters look like a Chinese, "
                        "Japanese or Korean encoding that cannot be told apart safely — save the file as "
                        "'CSV UTF-8' and load it again; nothing was loaded")
    return "cp1252"


def _decode_legacy(raw: bytes, encoding: str, name: str, line: int) -> str:
    """One line in the file's legacy encoding; Windows-1252's five unused bytes fall back to Latin-1."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "cp1252":
            return raw.decode("latin-1")
        raise LoadError(f"{name}, line {line}: byte {exc.start + 1} of the line is neither UTF-8 nor "
                        "Shift-JIS (the rest of the file is Shift-JIS) — save the file as 'CSV UTF-8' and load it "
                        "again; nothing was loaded") from None


def _utf16(path: Path, work: Path, name: str) -> Path:
    """A file that starts with a UTF-16 mark, as UTF-8; broken UTF-16 (a cut-off file, a lone surrogate) is
    refused naming the line, never loaded as replacement characters."""
    out = _unique(work, path.stem + ".utf8.csv")
    line = 1
    decoder = codecs.getincrementaldecoder("utf-16")()
    with open(path, "rb") as src, open(out, "w", encoding="utf-8", newline="") as dst:
        while True:
            chunk = src.read(1 << 20)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # The lines before the bad bytes: decoded again (in the file's byte order) only to count them.
                order = "utf-16-be" if "be" in (exc.encoding or "").lower() else "utf-16-le"
                line += exc.object[:exc.start].decode(order, errors="ignore").count("\n")
                raise LoadError(f"{name}, line {line}: the file starts as UTF-16 but is not valid UTF-16 there "
                                f"({exc.reason}) — a cut-off or damaged file; export it again; nothing was loaded"
                                ) from None
            dst.write(text)
            line += text.count("\n")
            if not chunk:
                return out


def _normalise_newlines(path: Path, work: Path) -> Path:
    out = _unique(work, path.stem + ".lf.csv")
    with open(path, encoding="utf-8", newline=None) as src, open(out, "w", encoding="utf-8", newline="\n") as dst:
        shutil.copyfileobj(src, dst)
    return out


def _digest(path: Path, name: str, count: list[int] | None = None) -> str:
    """The content hash (append mode skips a file loaded before), checking every byte for NUL on the way.

    The binary check at opening sees the first 256 KB only; a NUL further on would load as part of a
    value (and truncate it in some programs), so it refuses the file here, naming its line."""
    h = hashlib.blake2b(digest_size=16)
    offset, lines, last = 0, 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
            if (nul := chunk.find(b"\x00")) >= 0:
                _refuse_nul(path, name, offset + nul)
            offset += len(chunk)
            if count is not None:  # the line count `_Lines` needs, without reading the file again
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    if count is not None:
        count.append(lines + (last != b"\n"))
    return h.hexdigest()


def _refuse_nul(path: Path, name: str, at: int) -> None:
    line = 1
    with open(path, "rb") as fh:
        left = at
        while left > 0 and (chunk := fh.read(min(left, 1 << 22))):
            line += chunk.count(b"\n")
            left -= len(chunk)
    raise LoadError(f"{name}, line {line}: a NUL byte (byte {at:,} of the file): this is a damaged or binary "
                    "file, not CSV text — export it again; nothing was loaded")


def _text_source(path: Path, name: str, work: Path, parquet: bool = False) -> _Source:
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    size = path.stat().st_size
    encoding = "utf-8"
    notes: list[str] = []
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        path = _utf16(path, work, name)
        encoding = "utf-16"
        with open(path, "rb") as fh:
            head = fh.read(SAMPLE_BYTES)
        size = path.stat().st_size
    _refuse_binary(head, name)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8 (with BOM)"
    complete = size <= len(head)
    cut = head if complete else head[: head.rfind(b"\n") + 1]
    if not cut.strip():
        if complete:
            raise LoadError(f"{name}: the file has no header line (only blank lines)")
        raise LoadError(f"{name}: line 1 is longer than {SAMPLE_BYTES >> 10} KB: not a CSV header "
                        "(a header is one short line of column names) — refused")
    try:
        text = cut.decode("utf-8-sig")
    except UnicodeDecodeError:
        path, encoding, notes = _transcode(path, work, name)
        with open(path, "rb") as fh:
            head = fh.read(SAMPLE_BYTES)
        cut = head if path.stat().st_size <= len(head) else head[: head.rfind(b"\n") + 1]
        text = cut.decode("utf-8-sig")
    delimiter, headers = _sniff(text, name)
    if parquet:
        encoding = "parquet"
        notes.append("read from Parquet: a line number is the row's number + 1 (line 1 is the header)")
    return _Source(name, path, headers, delimiter, encoding, notes=notes)


def _sniff(text: str, name: str) -> tuple[str, list[str]]:
    """The delimiter whose split gives the most rows with the header's column count, and the header."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    best: tuple[tuple[int, int], str, list[str]] | None = None
    prefer_tab = name.lower().endswith((".tsv", ".tab", ".tsv.gz"))
    for delim in ("\t", ",", ";", "|") if prefer_tab else (",", ";", "\t", "|"):
        try:
            rows = []
            for row in csv.reader(io.StringIO(text), delimiter=delim):
                rows.append(row)
                if len(rows) >= 50:
                    break
        except csv.Error:
            continue
        while rows and not any(c.strip() for c in rows[0]):
            rows.pop(0)
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(1 for r in rows[1:] if len(r) == width), width)
        if best is None or score > best[0]:
            best = (score, delim, rows[0])
    if best is None:
        first = text.strip().splitlines()[0] if text.strip() else ""
        raise LoadError(f"{name}: line 1 is a single column ({first[:80]!r}): the values are not separated by "
                        "comma, semicolon, tab or pipe, or this is not a CSV file")
    _, delim, header = best
    if len(header) > MAX_COLUMNS:
        raise LoadError(f"{name}: line 1 has {len(header)} columns; at most {MAX_COLUMNS} are accepted "
                        "(is this a pivoted or transposed export?) — refused")
    headers = [h.strip().lstrip("\ufeff").strip() or f"column_{i + 1}" for i, h in enumerate(header)]
    return delim, headers


# --- step 2: map ------------------------------------------------------------------------------


def _resolve(src: _Source, forced: str | None, workspace: Workspace | None, sides: set[str],
             given: dict | None = None) -> Mapping:
    """The mapping of a file: one given for it, a forced table, a saved mapping, a vendor layout, then the best fit.

    `forced` is a table chosen by the user; `given` a mapping (as saved: table, columns, fill, derive)
    handed in for this file alone.
    """
    headers = src.headers
    norm = Headers(headers).by_key
    snapshot = set(SNAPSHOT_COLUMNS) <= set(norm) and "start_date" not in norm
    if given is not None:
        return _saved(given, norm, src.name, source="given", label="your mapping")
    saved = workspace.load_mapping(header_key(headers)) if workspace is not None else None
    if saved and saved.get("table") in TABLES and saved["table"] == (forced or saved["table"]):
        return _saved(saved, norm, src.name, source="saved", label=f"saved mapping → {saved['table']}")
    if forced:
        if forced not in TABLES:
            raise LoadError(f"{src.name}: unknown table {forced!r} (known: {', '.join(TABLES)})")
        vendor = detect_vendor(headers)
        if vendor:
            m = vendor_mapping(vendor, headers, sides)
            if m.table == forced:
                if m.refuse:
                    raise LoadError(f"{src.name}: {m.label}: {m.refuse}")
                return _with_evidence(m, vendor)
        if forced == "subscriptions" and snapshot:
            return snapshot_mapping({c: norm[c] for c in norm})
        return _fit_mapping(fit_table(forced, headers, _sample(src, 50), src.name))
    vendor = detect_vendor(headers)
    if vendor:
        m = _with_evidence(vendor_mapping(vendor, headers, sides), vendor)
        if m.refuse:
            raise LoadError(f"{src.name}: {m.label}: {m.refuse}")
        return _unless_incomplete(src, m)
    reason = not_data(headers)
    if reason:
        return Mapping("not_data", f"not data: {reason}", "", {}, {}, ignore=True,
                       evidence=(f"headers {', '.join(headers[:8])}",))
    reason = not_needed(headers)
    if reason:
        return Mapping("not_data", f"recognised: {reason}", "", {}, {}, ignore=True,
                       evidence=(f"headers {', '.join(headers[:8])}",))
    if snapshot:
        return snapshot_mapping({c: norm[c] for c in norm})
    fit = best_fit(headers, _sample(src, 50), src.name)
    if fit is not None and fit.complete and fit.confident:
        return _fit_mapping(fit)
    shown = f"{', '.join(headers[:12])}{' …' if len(headers) > 12 else ''}"
    hints = _unrecognised_hints(src.name)
    if fit is not None and fit.missing:
        found = "; ".join(fit.evidence[:6])
        lacks = ", ".join(repr(c) for c in fit.missing)
        extra = ""
        if fit.table == "subscriptions" and "start_date" in fit.missing and not has_dates(src.headers, _sample(src, 20)):
            extra = (" It has no date column at all: a snapshot with one row per customer cannot show MRR over "
                     "time — export subscriptions with start and end dates, or one row per customer and month.")
        raise UnrecognisedFile(src.name, headers, f"{src.name}: looks like {fit.table!r} ({found}) but lacks "
                                                  f"required column(s) {lacks}.{extra}", *hints)
    if fit is not None:
        weak = "only one of its columns matched" if len(fit.columns) < 2 else "only by generic column names"
        raise UnrecognisedFile(src.name, headers, f"{src.name}: might be {fit.table!r} ({'; '.join(fit.evidence[:6])})"
                                                  f", but {weak} — confirm the table or skip the file.", *hints)
    hint = "; ".join(f"{t.name}: {', '.join(t.required)}" for t in TABLES.values())
    raise UnrecognisedFile(src.name, headers, f"{src.name}: cannot tell which table this file is from its header "
                                              f"({shown}) — the tables and their required columns: {hint}.", *hints)


def _unless_incomplete(src: _Source, m: Mapping) -> Mapping:
    """A vendor layout, unless the file lacks a column the layout needs and its columns fit a table
    by name completely: the file then is not that vendor's export (a column of the same name is no
    signature), and it loads as what it is, saying why. Otherwise the layout stands, and the check
    that follows says what the file lacks."""
    if not m.table or m.ignore:
        return m
    try:
        _check_mapping(src, m)
        return m
    except MissingColumns as exc:
        fit = best_fit(src.headers, _sample(src, 50), src.name)
        if fit is None or not (fit.complete and fit.confident):
            return m
        lacks = str(exc).split("missing required column(s) ", 1)[-1].split(" for table", 1)[0]
        out = _fit_mapping(fit)
        return replace(out, evidence=(f"not read as a {m.label}: it lacks {lacks}", *out.evidence))
    except LoadError:
        return m


def _with_evidence(m: Mapping, vendor: str) -> Mapping:
    used = [c for i in m.inputs.values() for c in i.columns][:8]
    return replace(m, evidence=(f"{m.label}: recognised by its headers {', '.join(used)}",))


def _fit_mapping(fit: TableFit) -> Mapping:
    """A scored fit as a mapping (canonical when every column has its canonical name), with its evidence."""
    exact = all(normalise_header(h) == c for c, h in fit.columns.items()) and not fit.derive
    source = "canonical" if exact else "guessed"
    label = f"canonical {fit.table}" if exact else f"{fit.table} (columns matched by name)"
    m = canonical_mapping(fit.table, fit.columns, source=source, label=label, fill=fit.fill, derive=fit.derive,
                          rules=fit.rules)
    return replace(m, evidence=fit.evidence)


def _saved(saved: dict, norm: dict[str, str], file: str, *, source: str, label: str) -> Mapping:
    """A mapping as saved (table, columns, fill, derive), its headers found case- and order-insensitively."""
    table = saved.get("table")
    if table not in TABLES:
        raise LoadError(f"{file}: the mapping names table {table!r} (known: {', '.join(TABLES)})")
    columns = {}
    for k, v in (saved.get("columns") or {}).items():
        if not v:
            continue
        if normalise_header(str(v)) not in norm:
            raise LoadError(f"{file}: the mapping reads column {v!r} for {k!r}, but the file has no such column "
                            f"(it has: {', '.join(list(norm.values())[:20])})")
        columns[k] = norm[normalise_header(str(v))]
    return canonical_mapping(table, columns, source=source, label=label, fill=saved.get("fill"),
                             derive=saved.get("derive"), units=saved.get("units"))


def _canonical_columns(table: str, norm: dict[str, str]) -> dict[str, str]:
    return {c.name: norm[c.name] for c in TABLES[table].columns if c.name in norm}


ENGINE_NAMES = {"postgres": "PostgreSQL", "spark": "Spark", "parquet": "Parquet files"}


def _kept_warnings(warnings: Sequence[str]) -> str | None:
    """A load's warnings as stored beside it: a JSON list, at most 50 of at most 500 characters each
    (a file can raise thousands of one kind; the Upload page showed them all at the time)."""
    if not warnings:
        return None
    kept = [w[:500] for w in warnings[:50]]
    if len(warnings) > 50:
        kept.append(f"… and {len(warnings) - 50} more warning(s)")
    return json.dumps(kept, ensure_ascii=False)


_STAGE_NAMES = frozenset({"stage", "stagename", "deal_stage", "dealstage", "pipeline_stage", "stage_name", "phase",
                          "sales_stage", "opportunity_stage", "deal_phase"})


def _unmapped_stage(headers: list[str], m: Mapping) -> str | None:
    """A column of the file that holds a deal stage and that the mapping does not read, if any: the
    message then names it instead of saying the file has no stage."""
    used = {c.strip().lower() for k, i in m.inputs.items() if not k.startswith("left_out_") for c in i.columns}
    for h in headers:
        key = normalise_header(h)
        if h.strip().lower() not in used and (key in _STAGE_NAMES or key.endswith("_stage")):
            return h
    return None


def _check_mapping(src: _Source, m: Mapping) -> list[str]:
    """Refuses a file that lacks a required column or names a used column twice; returns warnings."""
    if m.table:
        t = TABLES[m.table]
        missing = []
        for col in t.required:
            if col == "status" and m.table == "deals":
                flags = set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.text)?\}", m.file_status or ""))
                if not (flags & set(m.inputs) or m.stage_input or "status" in m.fields):
                    stage = _unmapped_stage(src.headers, m)
                    missing.append(f"'status': map the file's {stage!r} column as stage (open, won or lost is "
                                   "read from it by the stage map)" if stage else
                                   "'status' (or a 'stage' to read it from)")
                continue
            f = m.fields.get(col)
            refs = set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.text)?\}", f.sql)) if f else set()
            if f is None or (refs and not refs & set(m.inputs)):
                missing.append(repr(col))
        if missing:
            what = f"looks like a {m.label} but has" if m.source not in ("canonical", "saved", "guessed", "given") else ""
            raise MissingColumns(f"{src.name}: {what}{' ' if what else ''}missing required column(s) "
                                 f"{', '.join(missing)} for table {m.table!r} (the file has: "
                                 f"{', '.join(src.headers[:20])})")
    warnings = []
    seen: dict[str, list[int]] = {}
    for i, h in enumerate(src.headers):
        seen.setdefault(h.strip().lower(), []).append(i + 1)
    used = {c.strip().lower() for k, i in m.inputs.items() if not k.startswith("left_out_") for c in i.columns}
    for h, positions in seen.items():
        if len(positions) < 2:
            continue
        shown = src.headers[positions[0] - 1]
        where = " and ".join(map(str, positions))
        if h in used:
            raise LoadError(f"{src.name}: column {shown!r} appears {len(positions)} times (columns {where}): "
                            "rename one so it is clear which holds the data — nothing was loaded")
        warnings.append(f"column {shown!r} appears {len(positions)} times (columns {where}); the first is kept")
    return warnings


# --- step 3: read and check -------------------------------------------------------------------


class _Lines:
    """Physical line numbers (what an editor shows) of records; computed only when a message needs one.

    When the file has one line per record (no blank lines, no line breaks inside quotes) a line
    is a record number plus the rejected records before it; otherwise the file is scanned once.
    """

    def __init__(self, src: _Source) -> None:
        self.src = src
        self.records: int | None = None  # records DuckDB saw (rows read + structural rejects), set by the reader
        self._simple: bool | None = None
        self._starts: list[int] | None = None
        self._blank: set[int] = set()

    def _is_simple(self) -> bool:
        if self._simple is None:
            if self.src.lines is not None and self.src.lines[0] == self.src.path:
                lines = self.src.lines[1]  # counted while hashing (the file read is the one hashed)
            else:
                lines, last = 0, b"\n"
                with open(self.src.path, "rb") as fh:
                    while chunk := fh.read(1 << 22):
                        lines += chunk.count(b"\n")
                        last = chunk[-1:]
                lines += last != b"\n"
            self._simple = self.records is not None and lines == self.records + 1
        return self._simple

    def _scan(self) -> list[int]:
        if self._starts is None:
            starts: list[int] = []
            csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
            with open(self.src.path, encoding="utf-8-sig", newline="", errors="replace") as fh:
                reader = csv.reader(fh, delimiter=self.src.delimiter)
                start = 1
                try:
                    for i, row in enumerate(reader):
                        if i > 0:
                            starts.append(start)
                            if not row:
                                self._blank.add(i)
                        start = reader.line_num + 1
                except csv.Error:
                    pass
            self._starts = starts
        return self._starts

    def of_duck_line(self, line: int | None) -> int | None:
        """DuckDB numbers records (the header is 1); map to the physical line the record starts on."""
        if line is None or self._is_simple():
            return line
        starts = self._scan()
        if not 2 <= line <= len(starts) + 1:
            return line
        return starts[line - 2]

    def row_mapper(self, structural: set[int]) -> Callable[[int], int | None]:
        """Maps a row number of the rows read (1-based) to its physical line; looks at the file on first use."""
        good: list[int] = []
        skipped = sorted(structural)

        def line_of(rn: int) -> int | None:
            if self._is_simple():
                line = rn + 1
                for s in skipped:
                    if s <= line:
                        line += 1
                    else:
                        break
                return line
            starts = self._scan()
            if not good:
                good.extend(k for k in range(1, len(starts) + 1) if k not in self._blank and (k + 1) not in structural)
            return starts[good[rn - 1] - 1] if 0 < rn <= len(good) else None

        return line_of


@dataclass
class _Prepared:
    table: str
    temp: str
    report: FileReport
    mapping: Mapping
    digest: str


def _read_raw(reader: duckdb.DuckDBPyConnection, src: _Source, raw: str, work: Path, limit: int | None = None,
              aggregates: list[str] | tuple[str, ...] = ()) -> tuple[list[RejectedRow], set[int], int, _Lines, tuple]:
    """Reads the file once: its structural rejects, its record count and `aggregates` over its cells (c0…cN,
    text), as (rejects, their lines, footer rows, line numbers, (count, *aggregates)).

    `raw` is then a view that reads the same records again, in the file's order, when asked: the
    rows are typed and checked straight from the file, never stored as text first (a table of every
    cell as text cost as much as the typing and checking together)."""
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(src.headers))) + "}"

    def scan(rejects: bool) -> str:
        kept = ("store_rejects = true, rejects_table = 'rejects', rejects_scan = 'reject_scans', " if rejects
                else "")
        text = (f"read_csv({_lit(str(src.path))}, auto_detect = false, header = true, delim = {_lit(src.delimiter)}, "
                f"quote = '\"', escape = '\"', columns = {columns}, {kept}ignore_errors = true, "
                f"max_line_size = {MAX_LINE_BYTES}, strict_mode = true, encoding = 'utf-8')")
        if limit:  # a preview: stop reading after the first rows
            text = f"(SELECT * FROM {text} LIMIT {int(limit)})"
        return text

    values: tuple = (0,)
    for attempt in range(2):
        reader.execute("DROP TABLE IF EXISTS rejects")
        reader.execute("DROP TABLE IF EXISTS reject_scans")
        try:
            # A table of one row, not a SELECT: DuckDB keeps the rejected lines only for a statement that writes.
            reader.execute(f"CREATE OR REPLACE TEMP TABLE {raw}_counts AS SELECT "
                           f"{', '.join(['count(*)', *aggregates])} FROM {scan(True)}")
            values = reader.execute(f"SELECT * FROM {raw}_counts").fetchone()
        except duckdb.Error as exc:
            if "invalid state" in str(exc) and not attempt:
                # Mixed line endings (CRLF rows, LF footer) confuse the strict parser: normalise, then retry.
                src.path = _normalise_newlines(src.path, work)
                continue
            raise LoadError(f"{src.name}: cannot read as CSV: {str(exc).splitlines()[0]}") from None
        bad_encoding = reader.execute(
            "SELECT count(*) FROM rejects WHERE error_type = 'INVALID ENCODING'").fetchone()[0]
        if not bad_encoding or attempt:
            break
        # The first bytes were UTF-8, later ones are not: re-read as transcoded text.
        src.path, src.encoding, notes = _transcode(src.path, work, src.name)
        src.notes.extend(notes)
    lines = _Lines(src)
    rows = reader.execute(
        "SELECT line, column_name, error_type, error_message, csv_line FROM rejects ORDER BY line, error_type"
    ).fetchall()
    structural: list[RejectedRow] = []
    seen: set[int] = set()
    footer = 0
    trailing = _trailing_footer(src) if rows else set()
    for line, column, kind, message, text in rows:
        line = int(line) if line is not None else None
        if line in seen:
            continue
        seen.add(line)
        text = text or ""
        if kind == "LINE SIZE OVER MAXIMUM":
            size = re.search(r"Actual Size:\s*(\d+)", message or "")
            actual = f" ({int(size.group(1)) >> 10} KB)" if size else ""
            raise LoadError(f"{src.name}: line {lines.of_duck_line(line)} is longer than {MAX_LINE_BYTES >> 10} KB"
                            f"{actual}: refused — a CSV row this long means a broken or non-CSV file")
        if kind == "UNQUOTED VALUE" and "\n" in text.strip("\r\n"):
            raise LoadError(f"{src.name}, line {lines.of_duck_line(line)}: a quote opened on this line is never "
                            "closed, so the rest of the file cannot be split into rows; fix the quote (or export "
                            "again) and load again")
        if text.strip() in trailing or (FOOTER.match(text.strip()) and not re.search(r"\d{4}-\d{2}-\d{2}", text)):
            footer += 1
            continue
        structural.append(RejectedRow(line, _header_of(src, column), _structural_reason(kind, message),
                                      text.strip()[:200]))
    lines.records = values[0] + len(seen)
    for r in structural:
        r.line = lines.of_duck_line(r.line)
    # The same records again: the rows the first read rejected are skipped the same way (the count is
    # compared after the second read).
    reader.execute(f"DROP TABLE IF EXISTS {raw}_counts")
    reader.execute(f"CREATE OR REPLACE TEMP VIEW {raw} AS SELECT * FROM {scan(False)}")
    return structural, {line for line in seen if line is not None}, footer, lines, values


FOOTER_REASON = ("report footer lines, not data (totals, 'Generated By', copyright and confidentiality notes "
                 "after the last row)")
FOOTER_TAIL_BYTES = 64 << 10  # a report footer is a few short lines: the file's last 64 KB hold it
FOOTER_MAX_LINES = 12


def _trailing_footer(src: _Source) -> set[str]:
    """The lines (stripped) of a report footer at the end of the file: blocks of short lines, each block
    after a blank line, up to the last data row.

    A Salesforce report export ends with a blank line, 'Grand Totals (N records)', the copyright,
    'Confidential Information', 'Generated By: <user> <date>' and the company name; they are not rows,
    and their wording changes with the org and the language, so the shape (short lines after a blank
    line at the end) says it, not the words. A line is short when it has fewer fields than the header
    and at most a quarter of them (at least two) filled."""
    ncols = len(src.headers)
    with open(src.path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - FOOTER_TAIL_BYTES))
        tail = fh.read().decode("utf-8", errors="replace").splitlines()
    if size > FOOTER_TAIL_BYTES and tail:
        tail = tail[1:]  # the first line of the tail may be cut

    def short(line: str) -> bool:
        try:
            cells = next(csv.reader([line], delimiter=src.delimiter))
        except (csv.Error, StopIteration):
            return False
        return len(cells) < ncols and sum(1 for c in cells if c.strip()) <= max(2, ncols // 4)

    found: list[str] = []
    end = len(tail)
    while end and not tail[end - 1].strip():
        end -= 1
    while end:
        start = end
        while start and tail[start - 1].strip():
            start -= 1
        block = tail[start:end]
        if not start or len(found) + len(block) > FOOTER_MAX_LINES or not all(short(x) for x in block):
            break  # no blank line above it (the data), too long, or a row of data: the footer ends here
        found.extend(x.strip() for x in block)
        end = start
        while end and not tail[end - 1].strip():
            end -= 1
    return set(found) if ncols > 1 else set()


def _header_of(src: _Source, column: str | None) -> str | None:
    if column and re.fullmatch(r"c\d+", column) and int(column[1:]) < len(src.headers):
        return src.headers[int(column[1:])]
    return None


def _structural_reason(kind: str, message: str | None) -> str:
    counts = re.search(r"Expected Number of Columns:\s*(\d+)\s*Found:\s*(\d+)", message or "")
    if kind == "TOO MANY COLUMNS" and counts:
        return (f"{counts.group(2)} values where the header has {counts.group(1)} columns "
                "(an unquoted delimiter inside a value?)")
    if kind == "MISSING COLUMNS" and counts:
        return f"only {counts.group(2)} values where the header has {counts.group(1)} columns"
    if kind == "UNQUOTED VALUE":
        return "a quote in this row is not closed or not at the start of a value"
    return f"{str(kind).lower().replace('_', ' ')}: {str(message).splitlines()[0] if message else ''}"


def _fill(template: str, m: Mapping, extra: dict[str, str] | None = None) -> str:
    """Expands `{input}`, `{input.text}`, `{=field}` and `{@macro:input}` in a mapping template."""

    def sub(match: re.Match) -> str:
        token = match.group(1)
        if extra and token in extra:
            return extra[token]
        if token.startswith("="):
            return _q("f_" + token[1:])
        if token.startswith("@"):
            macro, name = token[1:].split(":", 1)
            if name not in m.inputs:
                return "NULL"
            start, end = _quota_period_exprs(_q("t_" + name))
            return {"period_start": start, "period_end": end}[macro]
        name, _, part = token.partition(".")
        if name not in m.inputs:
            return "NULL"
        return _q(("t_" if part == "text" else "i_") + name)

    return re.sub(r"\{([=@]?[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z_0-9]+|\.text)?)\}", sub, template)


def _text_of(inp: Input, pos: dict[str, int]) -> str:
    cols = [f"NULLIF(trim(c{pos[c]}), '')" for c in inp.columns]
    return cols[0] if len(cols) == 1 else f"COALESCE({', '.join(cols)})"


def _which_column(inp: Input, pos: dict[str, int]) -> str:
    if len(inp.columns) == 1:
        return _lit(inp.columns[0])
    cases = " ".join(f"WHEN NULLIF(trim(c{pos[c]}), '') IS NOT NULL THEN {_lit(c)}" for c in inp.columns)
    return f"(CASE {cases} END)"


def _status_fields(m: Mapping, stage_map: dict[str, str]) -> list[str]:
    """Select items for a deal's status and where it came from (file, saved, default, guess).

    The file's own flags win; then the workspace's saved stage map, the built-in defaults, and last
    a guess from the stage's name. The map is a MAP literal looked up by the normalised stage name,
    not a table joined: a join does not keep the rows in the file's order, which numbers them.
    """
    file = _fill(m.file_status, m) if m.file_status else "NULL"
    items = [f"{file} AS f___file_status"]
    if not m.stage_input:
        return items + ["f___file_status AS f_status",
                        "CASE WHEN f___file_status IS NOT NULL THEN 'file' END AS f___status_source"]
    rows = {k: (v, "default") for k, v in STAGE_DEFAULTS.items()}
    rows.update({k: (v, "saved") for k, v in stage_map.items()})
    key = "inp.__stage_key"
    status = "MAP {" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, (v, _) in rows.items()) + f"}}[{key}]"
    source = "MAP {" + ", ".join(f"{_lit(k)}: {_lit(w)}" for k, (_, w) in rows.items()) + f"}}[{key}]"
    guess = (f"(CASE WHEN {key} IS NULL THEN NULL WHEN regexp_matches({key}, '\\b(won|win)\\b') THEN 'won' "
             f"WHEN regexp_matches({key}, '\\b(lost|lose|dead|disqualified)\\b') THEN 'lost' ELSE 'open' END)")
    items += [f"COALESCE(f___file_status, {status}, {guess}) AS f_status",
              f"CASE WHEN f___file_status IS NOT NULL THEN 'file' WHEN {status} IS NOT NULL THEN {source} "
              "WHEN f_status IS NOT NULL THEN 'guess' END AS f___status_source"]
    return items


def _day_first_votes(texts: dict[str, str], names: list[str]) -> list[str]:
    """Per date column two counts (aggregates over the file's cells): first parts above 12, second parts above 12."""

    def over_12(t: str, group: str) -> str:
        slashed = f"substr({t}, 2, 1) IN ('/', '.', '-') OR substr({t}, 3, 1) IN ('/', '.', '-')"
        pattern = ("'^\\s*(\\d{1,2})[/.\\-]\\d{1,2}[/.\\-]\\d{2,4}'" if group == "first"
                   else "'^\\s*\\d{1,2}[/.\\-](\\d{1,2})[/.\\-]\\d{2,4}'")
        return (f"count(*) FILTER (WHERE CASE WHEN {slashed} THEN "
                f"TRY_CAST(regexp_extract({t}, {pattern}, 1) AS INTEGER) END > 12)")

    return [item for n in names for item in (over_12(texts[n], "first"), over_12(texts[n], "second"))]


def _day_first(m: Mapping, names: list[str], row: tuple, european: bool, report: FileReport) -> dict[str, bool]:
    """Per date column: is `03/06/2024` the 3rd of June? Decided by the values above 12 in that column.

    A column is day-first when some first parts exceed 12 and no second part does; a column with no
    such value follows the file's other date columns, else the separator (semicolon files are European).
    """
    if not names:
        return {}
    votes = {n: (row[2 * k], row[2 * k + 1]) for k, n in enumerate(names)}
    eu_any = any(eu > 0 and us == 0 for eu, us in votes.values())
    us_any = any(us > 0 and eu == 0 for eu, us in votes.values())
    out: dict[str, bool] = {}
    for n, (eu, us) in votes.items():
        label = m.inputs[n].label
        if eu > 0 and us > 0:
            out[n] = False
            report.warnings.append(f"{label!r}: dates mix day-first and month-first forms; read as month-first (US)")
        elif eu > 0:
            out[n] = True
            report.rules.append(f"{label!r}: dates are day-first (31/10/2026): some day values are above 12")
        elif us > 0:
            out[n] = False
        else:
            out[n] = (eu_any and not us_any) or (european and not us_any)
    return out


@dataclass
class _Money:
    """What the first read found in one number column (`_money_votes`), and the form it is read in."""

    form: NumberFormat
    us: int
    eu: int
    ambiguous_dot: int
    ambiguous_comma: int
    currencies: list[str]
    default_european: bool


def _number_formats(m: Mapping, names: list[str], row: tuple, european: bool,
                    report: FileReport) -> dict[str, _Money]:
    """Per number column, its majority form (US 1,234.50 or European 1.234,50)."""
    out: dict[str, _Money] = {}
    for k, n in enumerate(names):
        us, eu, dot, comma, currencies = row[5 * k:5 * k + 5]
        form = number_format(int(us), int(eu), default_european=european)
        out[n] = _Money(form, int(us), int(eu), int(dot), int(comma), sorted(currencies or []), european)
        if form.european and form.decided:
            report.rules.append(f"{m.inputs[n].label!r}: amounts are written the European way (1.234,50): "
                                f"{eu} value(s) show it")
    return out


def _money_notes(reader: duckdb.DuckDBPyConnection, checked: str, inp: Input, t: str, money: _Money,
                 line_of: Callable[[int], int | None], report: FileReport, currencies_said: bool = False) -> None:
    """Warnings with line numbers for a number column whose values are not all read one certain way
    (its symbols' currencies only where the file's currency column has not said them already)."""
    label = inp.label
    form = money.form
    rows = "__skip IS NULL"
    if len({currency_code(c) for c in money.currencies}) > 1 and not currencies_said:
        found = reader.execute(
            f"SELECT cur, min(__rn) FROM (SELECT {_currency_expr(t)} AS cur, __rn FROM {checked} WHERE {rows}) "
            "WHERE cur IS NOT NULL GROUP BY 1").fetchall()
        first: dict[str, int] = {}
        for cur, rn in found:
            code = currency_code(cur)
            first[code] = min(first.get(code, rn), rn)
        named = ", ".join(f"{c} (first on line {line_of(rn)})" for c, rn in sorted(first.items(), key=lambda x: x[1]))
        report.warnings.append(f"{label!r} mixes currencies — {named}: amounts in several currencies "
                               "are added as they are: convert them first or load one currency per workspace")
    if form.mixed:
        report.warnings.append(f"{label!r}: {money.us} value(s) are written the US way (1,234.50) and {money.eu} "
                               "the European way (1.234,50); each was read by its own form")
    way = "the European way" if form.european else "the US way"
    why = (f"like the rest of the column ({money.eu if form.european else money.us} value(s) show it)" if form.decided
           else "as no value in the column shows its form" + (" (the file is semicolon-separated)"
                                                             if money.default_european else ""))
    checks = []
    if money.ambiguous_dot:
        checks.append(AMBIGUOUS_DOT_RE)
    if money.ambiguous_comma and (form.european or money.eu or money.default_european):
        checks.append(AMBIGUOUS_COMMA_RE)
    for pattern in checks:
        n, rn, example = reader.execute(
            f"SELECT count(*), min(__rn), arg_min({t}, __rn) FROM {checked} WHERE {rows} AND "
            f"regexp_matches({t}, {_lit(pattern)}) AND NOT regexp_matches({t}, {_lit(EU_SYMBOL_RE)})").fetchone()
        if not n:
            continue
        value = reader.execute(f"SELECT {_number_expr('$1', form.european)}", [example]).fetchone()[0]
        shown = f"{value:,.2f}".rstrip("0").rstrip(".") if value is not None else "unreadable"
        report.warnings.append(
            f"{label!r}: {n} value(s) such as {example!r} (first on line {line_of(rn)}) could be read either way; "
            f"read {way} {why}: {example} = {shown} — check them")


def _reject_reasons_said(report: FileReport) -> str | None:
    """The reasons that reject many rows, in one sentence with the share of the file they take ("8.1 % of the
    rows (141 of 1,750) are rejected for one reason: …"), or None when rejects are a few scattered rows."""
    if not report.rows_read:
        return None
    big = [(col, why, n, line) for col, why, n, line in report.reject_reasons
           if n >= REJECT_REASON_ROWS or n / report.rows_read >= REJECT_REASON_SHARE]
    if not big:
        return None
    total = sum(n for _, _, n, _ in big)
    parts = [f"column {col!r}: {why} — {n:,} row(s), first on line {line}" if col else
             f"{why} — {n:,} row(s), first on line {line}" for col, why, n, line in big]
    share = 100 * total / report.rows_read
    reasons = "one reason" if len(big) == 1 else f"{len(big)} reasons"
    return (f"{share:.1f} % of the rows ({total:,} of {report.rows_read:,}) are rejected for {reasons}: "
            + "; ".join(parts) + " — if they belong in the data, map that value (for a status, load the column as "
            "the stage: the stage map decides open / won / lost per value) or correct the file, then load again")


def _prepare(reader: duckdb.DuckDBPyConnection, src: _Source, m: Mapping, index: int, work: Path,
             stage_map: dict[str, str], sides_present: set[str], limit: int | None = None,
             step: Callable[[float, str], None] | None = None) -> _Prepared:
    step = step or (lambda _f, _m: None)
    raw, cells = f"raw_{index}", f"cells_{index}"
    header_warnings = _check_mapping(src, m)
    pos = {}
    for i, h in enumerate(src.headers):
        pos.setdefault(h, i)
    # Inputs: text (t_*) and typed (i_*) values, once per row.
    texts = {name: _text_of(inp, pos) for name, inp in m.inputs.items()}
    date_inputs = [n for n, i in m.inputs.items() if i.kind in (Kind.DATE, Kind.TIMESTAMP)]
    votes = _day_first_votes(texts, date_inputs)
    number_inputs = [n for n, i in m.inputs.items() if i.kind is Kind.NUMBER]
    money_votes = _money_votes(texts, number_inputs)
    # Facts are aggregates that skip empty values (string_agg, bool_and …), so a blank row, whose every
    # text is NULL, changes none of them: they are computed over every record, in the read that counts them.
    fact_names = list(m.facts)
    as_text = {f"{n}.text": t for n, t in texts.items()}
    facts_sql = [_fill(m.facts[n], m, as_text) for n in fact_names]
    step(0.0, "reading")
    structural, structural_lines, footer, lines, values = _read_raw(reader, src, raw, work, limit,
                                                                    [*votes, *money_votes, *facts_sql])
    step(0.35, "checking values")
    table = TABLES.get(m.table)
    report = FileReport(file=src.name, table=m.table, source=m.source, label=m.label, encoding=src.encoding,
                        delimiter={"\t": "tab"}.get(src.delimiter, src.delimiter), footer_rows=footer,
                        role="table" if m.table else "side", evidence=list(m.evidence))
    report.warnings.extend(src.notes + header_warnings)
    rows_raw = values[0]
    report.rows_read = rows_raw + len(structural)
    if report.rows_read == 0:
        raise LoadError(f"{src.name}: the file has a header but no data rows")
    day_first = _day_first(m, date_inputs, values[1:1 + len(votes)], src.delimiter == ";", report)
    money_start = 1 + len(votes)
    formats = _number_formats(m, number_inputs, values[money_start:money_start + len(money_votes)],
                              src.delimiter == ";", report)
    # An AND chain stops at the first filled cell, so it costs next to nothing on real rows.
    blank = "(" + " AND ".join(f"(c{i} IS NULL OR trim(c{i}) = '')" for i in range(len(src.headers))) + ")"
    if fact_names:
        facts = dict(zip(fact_names, values[1 + len(votes) + len(money_votes):], strict=True))
        m = m.refine(m, facts) if m.refine else m
    report.rules.extend(m.rules)
    report.warnings.extend(m.cautions)
    report.mapping = m.describe()
    used = m.used_columns
    extras: list[tuple[int, str]] = []  # unmapped columns, kept as text under a normalised name
    names_taken = set(table.column_names if table is not None else ()) | set(m.fields)
    seen_headers: set[str] = set()
    for i, h in enumerate(src.headers):
        if h in used or h.strip().lower() in seen_headers:
            continue
        seen_headers.add(h.strip().lower())
        n = normalise_header(h)
        while n in names_taken:
            n += "_file"
        names_taken.add(n)
        extras.append((i, n))
    # Raw columns still needed: unmapped ones (kept), and those of multi-column inputs (named in rejects).
    keep = sorted({i for i, _ in extras} | {pos[c] for inp in m.inputs.values() if len(inp.columns) > 1
                                            for c in inp.columns})
    # Records are numbered by their place in a table that keeps the file's order (`rowid`): the checked
    # rows' own table, read straight from the file — or, when a side file is joined in (a join does not
    # keep the order), a table of the text read first.
    numbered_first = bool(m.joins)
    source = raw
    if numbered_first:
        source = f"{raw}_text"
        reader.execute(f"CREATE OR REPLACE TEMP TABLE {source} AS SELECT * FROM {raw}")
    select = [*(["rowid + 1 AS __rn"] if numbered_first else []), f"{blank} AS __blank", *(f"c{i}" for i in keep)]
    # Typed values read the trimmed texts one query level up: named in the same SELECT, DuckDB would
    # repeat a text's trim inside every use (a date's fallbacks name it a dozen times).
    typed: list[str] = []
    ids = [c.name for c in table.columns if c.required and c.type is ColumnType.ID] if table is not None else []
    key_input = m.fields[ids[0]].input if ids and ids[0] in m.fields else None
    totals = None
    if key_input in m.inputs:
        # A spreadsheet's totals row: no id, and its first filled cell says so (`,TOTAL (active),,…`).
        # Tested in the skip's CASE, only on rows without an id (a regex on every row cost a tenth of the load).
        firsts = list(range(min(3, len(src.headers))))
        select.extend(f"c{i} AS __first_{i}" for i in firsts)
        first = "lower(concat_ws('|', " + ", ".join(f"__first_{i}" for i in firsts) + "))"
        totals = f"{_q('t_' + key_input)} IS NULL AND regexp_matches({first}, '^\\s*(grand )?totals?\\b')"
    for name, inp in m.inputs.items():
        select.append(f"{texts[name]} AS {_q('t_' + name)}")
        european = formats[name].form.european if name in formats else False
        typed.append(f"{_typed_expr(inp, _q('t_' + name), day_first.get(name, False), european)} AS {_q('i_' + name)}")

    # Fields: the output columns, computed from inputs (and side tables) in order.
    fields = []
    joins = ""
    if m.table == "deals" and "status" not in m.fields:
        fields += _status_fields(m, stage_map)
        if m.stage_input:
            typed.append(f"{_stage_key_expr(_q('t_' + m.stage_input))} AS __stage_key")
    for name, f in m.fields.items():
        expr = _fill(f.sql, m)
        if table is not None and name in table.column_names:
            expr = f"CAST({expr} AS {table.column(name).type.sql_type})"
        fields.append(f"{expr} AS {_q('f_' + name)}")
    for j in m.joins:
        joins += f" LEFT JOIN side_{j.side} AS {j.alias} ON {_fill(j.on, m)}"
        if j.side not in sides_present:
            reader.execute(f"CREATE TEMP TABLE IF NOT EXISTS side_{j.side} ("
                           + ", ".join(f"{_q(c)} {t}" for c, t in SIDE_COLUMNS[j.side].items()) + ")")

    # Checks: the first problem of a row is its reason; skips are rows left out on purpose.
    checks: list[str] = []
    for name, inp in m.inputs.items():
        t, v, col = _q("t_" + name), _q("i_" + name), _which_column(inp, pos)
        if inp.required:
            checks.append(f"WHEN {t} IS NULL THEN [{_lit(inp.columns[0])}, 'missing value', NULL]")
        if inp.kind in (Kind.NUMBER, Kind.INTEGER):
            checks.append(f"WHEN {t} IS NOT NULL AND {v} IS NULL AND NOT isfinite(TRY_CAST(trim({t}) AS DOUBLE)) "
                          f"THEN [{col}, {t} || ' is not a finite number (NaN, infinity or beyond ±1.8e308): "
                          f"expected {_EXAMPLES[inp.kind]}', {t}]")
        if inp.kind in _EXAMPLES:
            checks.append(f"WHEN {t} IS NOT NULL AND {v} IS NULL THEN "
                          f"[{col}, 'cannot read ' || {t} || ' as {_EXAMPLES[inp.kind]}', {t}]")
        if inp.kind is Kind.ENUM and inp.allowed and not inp.lenient:
            allowed = ", ".join(map(_lit, inp.allowed))
            checks.append(f"WHEN {v} NOT IN ({allowed}) THEN "
                          f"[{col}, {t} || ' is not one of {', '.join(inp.allowed)}', {t}]")
    for c in m.checks:
        inp = m.inputs.get(c.input)
        col = _lit(inp.columns[0]) if inp else _lit(c.input)
        checks.append(f"WHEN {_fill(c.sql, m)} THEN [{col}, {_fill(c.reason, m)}, NULL]")
    if table is not None:
        for col in table.columns:
            if col.name == "status" and m.table == "deals":
                f_input = "status" if "status" in m.inputs else m.stage_input
            elif col.name in m.fields:
                f_input = m.fields[col.name].input
            else:
                continue
            inp = m.inputs.get(f_input) if f_input else None
            label = _lit(inp.columns[0]) if inp else _lit(col.name)
            shown = _q("t_" + f_input) if inp else "NULL"
            v = _q("f_" + col.name)
            if col.required:
                checks.append(f"WHEN {v} IS NULL THEN [{label}, 'missing value', {shown}]")
            if col.allowed:
                allowed = ", ".join(map(_lit, col.allowed))
                checks.append(f"WHEN {v} NOT IN ({allowed}) THEN "
                              f"[{label}, coalesce({shown}, {v}) || ' is not one of {', '.join(col.allowed)}', "
                              f"{shown}]")
            if col.type in (ColumnType.MONEY, ColumnType.NUMBER):
                # A finite input can still overflow in a mapping's arithmetic (1e308 × 12 months).
                checks.append(f"WHEN NOT isfinite({v}) THEN [{label}, 'value ' || coalesce({shown}, "
                              f"CAST({v} AS VARCHAR)) || ' is not a finite number', {shown}]")
            if col.type is ColumnType.MONEY:
                # 1e308 is finite, but two of them sum to infinity: no real amount comes near a quadrillion.
                checks.append(f"WHEN abs({v}) >= {MAX_AMOUNT:.0e} THEN [{label}, 'amount ' || coalesce({shown}, "
                              f"CAST({v} AS VARCHAR)) || ' is beyond ±1e15: not a real amount', {shown}]")
            if col.type is ColumnType.ID:
                # `D1` and `D1` + a line break would be two deals counted twice, and look the same everywhere.
                checks.append(f"WHEN regexp_matches({v}, '[\\x00-\\x1f\\x7f]') THEN [{label}, 'the id contains a "
                              f"line break, tab or other control character', {shown}]")
            if col.non_negative:
                checks.append(f"WHEN {v} < 0 THEN [{label}, 'negative value ' || "
                              f"coalesce({shown}, CAST({v} AS VARCHAR)) || ' is not allowed', {shown}]")
            if col.type in (ColumnType.DATE, ColumnType.TIMESTAMP):
                checks.append(f"WHEN year({v}) NOT BETWEEN {YEARS[0]} AND {YEARS[1]} THEN "
                              f"[{label}, 'date ' || CAST(CAST({v} AS DATE) AS VARCHAR) || ' is outside "
                              f"{YEARS[0]}–{YEARS[1]}', {shown}]")
    skips = [("__blank", "empty row")] + [(_fill(s, m), reason) for s, reason in m.skip]
    if totals:
        skips.append((totals, "a totals row, not a record"))
    skip_sql = "CASE " + " ".join(f"WHEN {s} THEN {_lit(r)}" for s, r in skips) + " END"
    reason = f"CASE {' '.join(checks)} END" if checks else "NULL"
    checked = f"checked_{index}"
    # Only what later steps read is stored: raw columns kept as extras, the inputs that notes, warnings
    # and the stage table look at, every output field, and the verdict.
    refs = {r for n in m.notes for r in re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.text)?)\}", n.sql)}
    lenient = {n for n, i in m.inputs.items() if i.kind is Kind.ENUM and i.lenient}
    stored = [f"c{i}" for i, _ in extras]
    for name in m.inputs:
        if name == m.stage_input or name in lenient or f"{name}.text" in refs or name in formats:
            stored.append(_q("t_" + name))
        if name in lenient or name in refs:
            stored.append(_q("i_" + name))
    outputs = ["f_status", "f___status_source"] if m.table == "deals" and "status" not in m.fields else []
    outputs += [_q("f_" + name) for name in m.fields]
    reader.execute(
        f"CREATE OR REPLACE TEMP TABLE {cells} AS SELECT "
        f"{', '.join([*(['__rn'] if numbered_first else []), *stored, *outputs])}, __skip, "
        f"CASE WHEN __skip IS NULL THEN {reason} END AS __why "
        f"FROM (SELECT *, {skip_sql} AS __skip FROM "
        f"(SELECT inp.*, {', '.join(fields)} FROM (SELECT *, {', '.join(typed)} FROM "
        f"(SELECT {', '.join(select)} FROM {source})) AS inp{joins}))"
    )
    reader.execute(f"DROP VIEW IF EXISTS {raw}")
    reader.execute(f"DROP TABLE IF EXISTS {raw}_text")
    stored_rows = reader.execute(f"SELECT count(*) FROM {cells}").fetchone()[0]
    if stored_rows != rows_raw:  # the second read did not see what the first did
        raise LoadError(f"{src.name}: the file changed while it was read ({rows_raw} records, then {stored_rows}); "
                        "nothing was loaded — load it again when it is complete")
    reader.execute(f"CREATE OR REPLACE TEMP VIEW {checked} AS SELECT "
                   f"{'' if numbered_first else 'rowid + 1 AS __rn, '}* FROM {cells}")

    skipped = dict(reader.execute(
        f"SELECT __skip, count(*) FROM {checked} WHERE __skip IS NOT NULL AND __skip <> 'empty row' GROUP BY 1"
    ).fetchall())
    report.skipped = {str(k): int(v) for k, v in skipped.items()}
    if footer:
        # Read, skipped on purpose and said once: 'read = loaded + rejected + skipped' holds on the page.
        report.skipped[FOOTER_REASON] = footer
        report.rows_read += footer
    blank_rows = reader.execute(f"SELECT count(*) FROM {checked} WHERE __skip = 'empty row'").fetchone()[0]
    report.rows_read -= blank_rows
    report.rows_skipped = sum(report.skipped.values())
    good = "__skip IS NULL AND __why IS NULL"
    key = (table.key[0] if table is not None and table.key else None) or m.key
    key_col = _q("f_" + key) if key and key in m.fields else None
    value_rejects = reader.execute(
        f"SELECT __rn, __why[1], __why[2], __why[3] FROM {checked} WHERE __skip IS NULL AND __why IS NOT NULL "
        f"ORDER BY __rn LIMIT {MAX_REJECT_DETAILS}"
    ).fetchall()
    rejected_count = reader.execute(
        f"SELECT count(*) FROM {checked} WHERE __skip IS NULL AND __why IS NOT NULL").fetchone()[0]
    dups = f"dups_{index}"
    dup_rows: list[tuple] = []
    dup_count = 0
    skipped_dup_warning = None
    if key_col:
        # One grouping finds the first line of every id seen twice (usually none): a window over every row
        # (sorting a million ids) cost more than the rest of the checks.
        reader.execute(
            f"CREATE OR REPLACE TEMP TABLE {dups} AS WITH twice AS (SELECT {key_col} AS k, min(__rn) AS first_rn "
            f"FROM {checked} WHERE {good} AND {key_col} IS NOT NULL GROUP BY 1 HAVING count(*) > 1) "
            f"SELECT c.__rn, twice.k, twice.first_rn FROM {checked} AS c JOIN twice ON c.{key_col} = twice.k "
            f"WHERE {good.replace('__', 'c.__')} AND c.__rn > twice.first_rn"
        )
        dup_count = reader.execute(f"SELECT count(*) FROM {dups}").fetchone()[0]
        dup_rows = reader.execute(f"SELECT __rn, k, first_rn FROM {dups} ORDER BY __rn LIMIT {MAX_REJECT_DETAILS}"
                                  ).fetchall()
        # An id twice among rows left out on purpose (trial F's duplicate line was a subscription in trial, left
        # out twice): nothing loaded changes, but the file holds a duplicate line, and the user is told.
        skipped_twice = reader.execute(
            f"SELECT count(*), min(k), min(first_rn), min(second_rn) FROM (SELECT {key_col} AS k, min(__rn) AS first_rn, "
            f"max(__rn) AS second_rn FROM {checked} WHERE __skip IS NOT NULL AND __skip <> 'empty row' "
            f"AND {key_col} IS NOT NULL GROUP BY 1 HAVING count(*) > 1)").fetchone()
        skipped_dup_warning = skipped_twice if skipped_twice and skipped_twice[0] else None

    line_of = lines.row_mapper(structural_lines)
    if skipped_dup_warning:
        n, k, first, second = skipped_dup_warning
        report.warnings.append(f"{n} {key} value(s) appear more than once among the rows left out on purpose (first: "
                               f"{k!r} on lines {line_of(first)} and {line_of(second)}): the file holds duplicate "
                               "lines; nothing loaded changes, but check the export")
    # A layout with a currency column has said the currencies already, with row counts (one warning, not three).
    said = any(c.startswith("amounts are in several currencies") for c in m.cautions)
    for name, fmt in formats.items():
        _money_notes(reader, checked, m.inputs[name], _q("t_" + name), fmt, line_of, report, currencies_said=said)
    rejected = list(structural)
    for rn, column, why, value in value_rejects:
        rejected.append(RejectedRow(line_of(rn), column, why, value))
    key_label = m.fields[key].input if key and key in m.fields else key
    key_label = m.inputs[key_label].columns[0] if key_label in m.inputs else key
    for rn, k, first in dup_rows:
        rejected.append(RejectedRow(line_of(rn), key_label,
                                    f"duplicate {key} {k!r}, first seen on line {line_of(first)}; kept the first", k))
    rejected.sort(key=lambda r: (r.line is None, r.line or 0))
    report.rejected = rejected[:MAX_REJECT_DETAILS]
    report.rows_rejected = len(structural) + rejected_count + dup_count
    report.duplicate_ids = dup_count
    if rejected_count:
        groups = reader.execute(
            f"SELECT __why[1], __why[2], count(*), min(__rn) FROM {checked} WHERE __skip IS NULL AND __why IS NOT NULL "
            f"GROUP BY 1, 2 ORDER BY 3 DESC, 4 LIMIT {MAX_REJECT_REASONS}").fetchall()
        report.reject_reasons = [(col, why, int(n), line_of(rn)) for col, why, n, rn in groups]
        said = _reject_reasons_said(report)
        if said:
            report.warnings.append(said)
    _refuse_guessed_duplicates(src, m, key, key_label, dup_count, rows_raw)
    report.rows_loaded = report.rows_read - report.rows_rejected - report.rows_skipped
    if report.rows_loaded <= 0:
        first_bad = report.rejected[0] if report.rejected else None
        detail = (f" — first: line {first_bad.line}, column {first_bad.column!r}: {first_bad.reason}"
                  if first_bad else "")
        if report.rows_skipped and not report.rows_rejected:
            detail = " — every row was skipped: " + ", ".join(f"{n} {r}" for r, n in report.skipped.items())
        raise LoadError(f"{src.name}: no row could be loaded into {m.table or m.side!r}{detail}")

    # The rows to load: canonical columns in canonical types, then extra fields, then unmapped columns.
    out_cols: list[str] = []
    names: set[str] = set()
    dup_filter = f" AND __rn NOT IN (SELECT __rn FROM {dups})" if key_col and dup_count else ""
    merged = _dimension_merges(reader, checked, good + dup_filter, _mergeable(table, m, extras), report)
    if table is not None:
        for col in table.columns:
            src_sql = f"f_{col.name}" if col.name in m.fields or (col.name == "status" and m.table == "deals") else None
            value = merged.get(col.name) or (_q(src_sql) if src_sql else "NULL")
            out_cols.append(f"CAST({value} AS {col.type.sql_type}) AS {_q(col.name)}")
            names.add(col.name)
            if col.name not in report.mapping and not col.required:
                report.missing_optional_columns.append(col.name)
    for name in m.fields:
        if name not in names:
            out_cols.append(f"{_q('f_' + name)} AS {_q(name)}")
            names.add(name)
    for i, n in extras:
        value = merged.get(n) or f"NULLIF(trim(c{i}), '')"
        out_cols.append(f"{value} AS {_q(n)}")
    report.extra_columns = [n for _, n in extras]
    step(0.8, "collecting the rows to load")
    temp, numbered = f"good_{index}", f"numbered_{index}"
    # The rows to load are a view over the checked rows, not a copy: the swap writes them into the
    # workspace straight from there (a copy cost a third of the load's writing). A leads file is
    # changed in place later (`_link_leads_to_deals`) and a side file is joined into others: those
    # two stay tables.
    kind = "TABLE" if m.table == "leads" or m.side else "VIEW"
    reader.execute(f"CREATE OR REPLACE TEMP {kind} {numbered} AS SELECT {', '.join(out_cols)}, __rn FROM {checked} "
                   f"WHERE {good}{dup_filter}")
    loaded = good + dup_filter
    _quality(reader, m, numbered, checked, loaded, report, lines.row_mapper(structural_lines))
    if m.table == "deals":
        report.stages = [
            {"stage": s, "status": st, "source": so, "rows": int(n)}
            for s, st, so, n in reader.execute(
                f"SELECT t_{m.stage_input}, f_status, f___status_source, count(*) FROM {checked} WHERE {good} "
                "GROUP BY ALL ORDER BY 4 DESC LIMIT 200"
            ).fetchall()
        ] if m.stage_input else []
        guessed = [s for s in report.stages if s["source"] == "guess"]
        if guessed:
            shown = ", ".join(f"{s['stage']!r} → {s['status']} ({s['rows']})" for s in guessed[:8])
            report.warnings.append(f"stages not in the stage map, read by their name: {shown}; correct them in the "
                                   "stage table of the Upload page")
    if m.side:
        cols = ", ".join(_q(c) for c in SIDE_COLUMNS[m.side])
        reader.execute(f"CREATE OR REPLACE TEMP TABLE side_{m.side} AS SELECT {cols} FROM {numbered}")
    if kind == "TABLE":
        reader.execute(f"ALTER TABLE {numbered} DROP COLUMN __rn")
        reader.execute(f"ALTER TABLE {numbered} RENAME TO {temp}")
        reader.execute(f"DROP VIEW IF EXISTS {checked}")
        reader.execute(f"DROP TABLE IF EXISTS {cells}")
    else:  # the checked rows stay until the load ends: the view reads them
        reader.execute(f"CREATE OR REPLACE TEMP VIEW {temp} AS SELECT * EXCLUDE (__rn) FROM {numbered}")
    return _Prepared(m.table, temp, report, m, src.digest)


# Dimension columns whose spellings are merged (`normalise.plan_merges`): labels a chart splits by. Never
# people (owner, csm: two people may share a name), ids, or columns with a fixed set of values (deal_type).
MERGED_DIMENSIONS = ("segment", "channel", "plan", "industry")
# Unmapped columns kept as text that are labels of the same kind (a `country` or `region` column).
MERGED_EXTRA = re.compile(r"(^|_)(country|region|territory|market|geo|plan|tier|segment|channel|industry|"
                          r"billing_period|billing_cycle|interval|frequency)(_|$)")
MAX_MERGE_VALUES = 5000  # more distinct values than this is free text, not a dimension: left alone


def _mergeable(table, m: Mapping, extras: list[tuple[int, str]]) -> dict[str, str]:
    """Output column → the SQL of its text, for the columns whose spellings are merged."""
    out: dict[str, str] = {}
    if table is not None:
        for name in MERGED_DIMENSIONS:
            if name in table.dimensions and name in m.fields and table.column(name).type is ColumnType.TEXT \
                    and not table.column(name).allowed:
                out[name] = f"CAST({_q('f_' + name)} AS VARCHAR)"
    for i, n in extras:
        if MERGED_EXTRA.search(n):
            out[n] = f"NULLIF(trim(c{i}), '')"
    return out


def _dimension_merges(reader: duckdb.DuckDBPyConnection, checked: str, rows: str, columns: dict[str, str],
                      report: FileReport) -> dict[str, str]:
    """Column → SQL reading its merged value, for the columns with spellings to merge; each merge is a rule
    of the report. One scan counts every column's values."""
    if not columns:
        return {}
    names = list(columns)
    counted = reader.execute(
        "SELECT " + ", ".join(f"approx_count_distinct({columns[n]})" for n in names) + f" FROM {checked} WHERE {rows}"
    ).fetchone()
    small = [n for n, k in zip(names, counted, strict=True) if 1 < (k or 0) <= MAX_MERGE_VALUES]
    if not small:
        return {}
    maps = reader.execute("SELECT " + ", ".join(f"histogram({columns[n]})" for n in small)
                          + f" FROM {checked} WHERE {rows}").fetchone()
    out: dict[str, str] = {}
    for n, counts in zip(small, maps, strict=True):
        merges = plan_merges(dict(counts or {}))
        if not merges:
            continue
        report.rules.extend("merged spellings: " + mg.describe(n) for mg in merges)
        table = lookup(merges)
        literal = "MAP {" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in table.items()) + "}"
        out[n] = f"COALESCE({literal}[{columns[n]}], {columns[n]})"
    return out


# Share of rows whose id repeats beyond which a table guessed from column names is the wrong table.
GUESS_DUPLICATES = 0.02


def _refuse_guessed_duplicates(src: _Source, m: Mapping, key: str | None, key_label: str | None, dups: int,
                               rows: int) -> None:
    """A table guessed from column names (no layout, no mapping) under which many rows repeat the key is
    the wrong table: a Close opportunities file read as leads lost 240 rows as 'duplicate lead_id' (a
    lead has many opportunities). It is refused, naming the file and what to do, not loaded short."""
    if m.source != "guessed" or not key or not rows or dups < max(2, GUESS_DUPLICATES * rows):
        return
    raise LoadError(
        f"{src.name}: read as {m.table!r} from its column names (a guess), but {dups:,} of {rows:,} rows repeat "
        f"a {key} in {key_label!r}, which {m.table} has once per row — the file is probably another table "
        f"(one row per something else). Nothing was loaded from it. Choose its table (command line: --as "
        f"{src.name}=TABLE, or --map {src.name}=MAPPING.json; Upload page: 'Load as' and the mapping), or leave "
        f"it out (--skip {src.name}).")


def _quality(reader: duckdb.DuckDBPyConnection, m: Mapping, temp: str, checked: str, loaded: str,
             report: FileReport, line_of: Callable[[int], int | None]) -> None:
    """Nulls, date range, notes and warnings that change what the metrics will say."""
    table = TABLES.get(m.table)

    def first_line(cond: str, where: str = temp) -> tuple[int, int | None]:
        n, rn = reader.execute(f"SELECT count(*), min(__rn) FROM {where} WHERE {cond}").fetchone()
        return int(n), (line_of(rn) if rn else None)

    for note in m.notes:
        n, line = first_line(f"({loaded}) AND ({_fill(note.sql, m)})", checked)
        if n:
            report.warnings.append(note.message.format(n=n, line=line))
    for name, inp in m.inputs.items():
        if inp.kind is Kind.ENUM and inp.lenient:
            t, v = _q("t_" + name), _q("i_" + name)
            values, n = reader.execute(
                f"SELECT string_agg(DISTINCT {t}, ', ' ORDER BY {t}), count(*) FROM {checked} "
                f"WHERE ({loaded}) AND {t} IS NOT NULL AND {v} IS NULL").fetchone()
            if n:
                fallback = "counted as new business" if name == "deal_type" else "left empty"
                report.warnings.append(f"{n} row(s) have a {inp.label!r} value that is not "
                                       f"{', '.join(inp.allowed)} ({values}): {fallback}")

    if table is None:
        return
    watched = (*table.key, *table.dimensions, "close_date", "account_id", "end_date")
    # A column the file does not have is said once, as "not in the file", not also as empty in every row.
    important = [c.name for c in table.columns if not c.required and c.name in watched
                 and c.name not in report.missing_optional_columns]
    if important:
        counts = reader.execute(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {_q(c)} IS NULL)" for c in important) + f" FROM {temp}"
        ).fetchone()
        report.nulls = {c: int(n) for c, n in zip(important, counts, strict=True) if n}
    if table.date_column:
        d = _q(table.date_column)
        lo, hi = reader.execute(f"SELECT min({d}), max({d}) FROM {temp}").fetchone()
        report.date_range = (str(lo) if lo is not None else None, str(hi) if hi is not None else None)
    today = date.today() + timedelta(days=1)
    for col in FACT_DATES.get(table.name, ()):
        n, line = first_line(f"CAST({_q(col)} AS DATE) > DATE '{today.isoformat()}'")
        if n:
            report.warnings.append(f"{n} row(s) have a {col} after today (first on line {line}): they count from that "
                                   "day on, and do not move the data's as-of date (the latest day that has happened)")
    if table.name == "deals":
        n, won, lost, lost_all = reader.execute(
            f"SELECT count(*) FILTER (WHERE status <> 'open' AND close_date IS NULL), count(*) FILTER (WHERE status "
            f"= 'won' AND close_date IS NULL), count(*) FILTER (WHERE status = 'lost' AND close_date IS NULL), "
            f"count(*) FILTER (WHERE status = 'lost') FROM {temp}").fetchone()
        if n:
            report.warnings.append(f"{n} won/lost deal(s) have no close_date and are left out of bookings metrics"
                                   + _one_sided_close(m, won, lost, lost_all))
        n, line = first_line("status <> 'open' AND close_date > current_date + 1")
        if n:
            report.warnings.append(f"{n} won/lost deal(s) close after today (first on line {line})")
        n = reader.execute(f"SELECT count(*) FROM {temp} WHERE close_date < created_date").fetchone()[0]
        if n:
            report.warnings.append(f"{n} deal(s) close before they were created; their cycle length is negative")
        n = reader.execute(f"SELECT count(*) FROM {temp} WHERE deal_type IS NULL").fetchone()[0]
        if n:
            report.warnings.append(f"{n} deal(s) have no deal_type and count in neither new business nor expansion ARR")
    if table.name == "subscriptions":
        n = reader.execute(f"SELECT count(*) FROM {temp} WHERE end_date < start_date").fetchone()[0]
        if n:
            report.warnings.append(f"{n} subscription(s) end before they start and never count")
    report.warnings.extend(_cents_warnings(reader, m, table.name, temp))


def _one_sided_close(m: Mapping, won: int, lost: int, lost_all: int) -> str:
    """Most lost deals without a close date while won ones have theirs: the close date is a won date (Close's
    date_won), so rates over closed deals count the wins alone (the trial's win rate read 100 %)."""
    if not lost or won * 10 > lost or lost * 2 < lost_all:
        return ""
    f = m.fields.get("close_date")
    src = m.inputs.get(f.input) if f is not None and f.input else None
    read = f" ({src.columns[0]!r})" if src is not None else ""
    return (f" — {lost} of the {lost_all} lost deals have none{read}, so win rates count the won deals alone: map "
            "close_date to the date each deal closed, won or lost (a lost date column where there is one)")


# A typical amount above these looks like cents read as units (a median deal of $1M, a median MRR of
# $100k are rare, and with every amount a multiple of 100 rarer still).
CENTS_SUSPECT = {("deals", "amount"): 1_000_000, ("subscriptions", "mrr"): 100_000}


def _cents_warnings(reader: duckdb.DuckDBPyConnection, m: Mapping, table: str, temp: str) -> list[str]:
    """Money read as units that looks like cents: a header that says cents, or every amount a multiple of
    100 with a typical amount beyond belief. A warning, not a division: a company of $1M deals exists, and
    the user says which it is (the mapping's unit)."""
    out = []
    for name in money_columns(table):
        f = m.fields.get(name)
        if f is None or re.search(r"/\s*100(\.0)?\b", f.sql):
            continue  # not loaded, or already divided (a layout's cents, a mapping's unit)
        src = m.inputs.get(f.input) if f.input else None
        header = src.columns[0] if src is not None else name
        col = _q(name)
        n, whole, median = reader.execute(
            f"SELECT count({col}), count({col}) FILTER (WHERE {col} = round({col})), median({col}) FROM {temp} "
            f"WHERE {col} > 0").fetchone()
        if not n:
            continue
        twin = _formatted_twin(reader, temp, header, col)
        fix = (f"if {header!r} is in cents, say so in the mapping (units: {name} = cents; on the command line "
               f'"units": {{"{name}": "cents"}} in the --map file) and load it again')
        if CENTS_HEADER.search(header) and m.source in ("given", "saved"):
            out.append(f"{name} comes from {header!r}, whose name says cents, but is read as whole currency units "
                       f"(the mapping says units): check it")
        elif CENTS_HEADER.search(header):
            out.append(f"{name} comes from {header!r}, whose name says cents, and is read as whole currency units: "
                       + fix)
        elif twin:
            out.append(f"{name} looks 100 times too large: {header!r} is 100 × the amount the file's {twin!r} shows "
                       f"(cents) — {fix}")
        elif whole == n and median is not None and median > CENTS_SUSPECT.get((table, name), float("inf")):
            out.append(f"{name} looks 100 times too large: every value of {header!r} is a whole number and the "
                       f"median is {median:,.0f} — amounts exported in cents? {fix}")
    return out


def _formatted_twin(reader: duckdb.DuckDBPyConnection, temp: str, header: str, col: str) -> str | None:
    """The file's display copy of a money column (Close's `value_formatted` "$31,300" beside `value`
    3130000), when the column is 100 × what it shows in most rows: the column is in cents."""
    cols = {r[0] for r in reader.execute(f"DESCRIBE {temp}").fetchall()}
    base = normalise_header(header)
    twin = next((c for c in (f"{base}_formatted", f"formatted_{base}", f"{base}_display") if c in cols), None)
    if twin is None:
        return None
    shown = f"TRY_CAST(nullif(regexp_replace({_q(twin)}, '[^0-9.\\-]', '', 'g'), '') AS DOUBLE)"
    n, hits = reader.execute(
        f"SELECT count(*), count(*) FILTER (WHERE abs({col} - 100 * {shown}) <= 100) FROM {temp} "
        f"WHERE {col} > 0 AND {shown} > 0").fetchone()
    return twin if n and hits >= 0.9 * n else None


# --- step 4: swap -----------------------------------------------------------------------------


def _swap_in(reader: duckdb.DuckDBPyConnection, workspace: Workspace, prepared: list[_Prepared], mode: str,
             skip_loaded: bool = True, on_wait: Callable[[str], None] | None = None) -> dict[str, int]:
    """Writes `__new_<table>` into the workspace file, then swaps all of them in one transaction.

    Under the workspace's load lock (another load's swap first), with the file to itself in this
    process (the pages' readers let go first) and attached read-write (another program that has it
    open, the app in another server, is waited for)."""
    workspace.root.mkdir(parents=True, exist_ok=True)
    by_table: dict[str, list[_Prepared]] = {}
    for p in prepared:
        if p.table:
            by_table.setdefault(p.table, []).append(p)
    counts: dict[str, int] = {}
    with load_lock(workspace, on_wait), _lock_for(workspace.db_path):
        _attach(reader, workspace, on_wait)
        try:
            existing = {
                r[0]
                for r in reader.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_catalog = 'ws' AND table_schema = 'main'"
                ).fetchall()
            }
            for stale in sorted(t for t in existing if t.startswith("__new_")):
                # Half-written by a load that was killed before its swap (never read): space given back.
                reader.execute(f"DROP TABLE IF EXISTS ws.main.{_q(stale)}")
            if mode == "append" and skip_loaded and META_TABLE in existing:
                _skip_loaded_files(reader, by_table)
            for name, parts in list(by_table.items()):
                if not parts:
                    del by_table[name]
                    continue
                union = " UNION ALL BY NAME ".join(f"SELECT * FROM {p.temp}" for p in parts)
                source = f"({union})"
                keys = {TABLES[name].key[0] if TABLES[name].key else p.mapping.key for p in parts}
                key = keys.pop() if len(keys) == 1 else None
                if mode == "append" and name in existing:
                    source = f"(SELECT * FROM ws.main.{_q(name)} UNION ALL BY NAME SELECT * FROM {source})"
                if key and (len(parts) > 1 or (mode == "append" and name in existing)):
                    # The last copy of an id wins: a newer file's row replaces an older one (each file
                    # has no duplicates of its own by now).
                    probe = reader.sql(f"SELECT * FROM {source} LIMIT 0").columns
                    if key in probe:
                        source = (
                            f"(SELECT * EXCLUDE (__ord) FROM (SELECT *, row_number() OVER () AS __ord FROM {source}) "
                            f"QUALIFY {_q(key)} IS NULL OR "
                            f"row_number() OVER (PARTITION BY {_q(key)} ORDER BY __ord DESC) = 1)"
                        )
                reader.execute(f"DROP TABLE IF EXISTS ws.main.{_q('__new_' + name)}")
                reader.execute(f"CREATE TABLE ws.main.{_q('__new_' + name)} AS SELECT * FROM {source}")
                counts[name] = reader.execute(f"SELECT count(*) FROM ws.main.{_q('__new_' + name)}").fetchone()[0]
            reader.execute("BEGIN TRANSACTION")
            try:
                reader.execute(
                    f"CREATE TABLE IF NOT EXISTS ws.main.{META_TABLE} (table_name VARCHAR, file VARCHAR, "
                    "loaded_at TIMESTAMP, rows_loaded BIGINT, rows_rejected BIGINT, mode VARCHAR)"
                )
                reader.execute(f"ALTER TABLE ws.main.{META_TABLE} ADD COLUMN IF NOT EXISTS source VARCHAR")
                reader.execute(f"ALTER TABLE ws.main.{META_TABLE} ADD COLUMN IF NOT EXISTS content_hash VARCHAR")
                # The load's quality warnings stay with it, so a report written weeks later still says them.
                reader.execute(f"ALTER TABLE ws.main.{META_TABLE} ADD COLUMN IF NOT EXISTS warnings VARCHAR")
                for name in by_table:
                    reader.execute(f"DROP TABLE IF EXISTS ws.main.{_q(name)}")
                    reader.execute(f"ALTER TABLE ws.main.{_q('__new_' + name)} RENAME TO {_q(name)}")
                for p in prepared:
                    if p.table in by_table and p in by_table[p.table]:
                        reader.execute(
                            f"INSERT INTO ws.main.{META_TABLE} (table_name, file, loaded_at, rows_loaded, "
                            "rows_rejected, mode, source, content_hash, warnings) "
                            "VALUES (?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?)",
                            [p.table, p.report.file, p.report.rows_loaded, p.report.rows_rejected, mode,
                             p.report.source, p.digest, _kept_warnings(p.report.warnings)],
                        )
                reader.execute("COMMIT")
            except Exception:
                reader.execute("ROLLBACK")
                raise
        except duckdb.Error as exc:
            raise LoadError(f"could not write the workspace: {str(exc).splitlines()[0]}") from None
        finally:
            for name in by_table:
                try:
                    reader.execute(f"DROP TABLE IF EXISTS ws.main.{_q('__new_' + name)}")
                except duckdb.Error:
                    pass
            try:
                reader.execute("DETACH ws")
            except duckdb.Error:
                pass  # the reader closes right after, which lets go of the file as well
    return counts


def _attach(reader: duckdb.DuckDBPyConnection, workspace: Workspace,
            on_wait: Callable[[str], None] | None = None) -> None:
    """Attaches the workspace file read-write, waiting while another process (the app, a load) has it open."""
    wait = ATTACH_WAIT_SECONDS
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            reader.execute(f"ATTACH {_lit(str(workspace.db_path))} AS ws")
            return
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower():
                raise LoadError(f"could not open the workspace file of {workspace.name!r}: "
                                f"{str(exc).splitlines()[0]}; nothing was loaded") from None
            if on_wait and not told:
                told = True
                on_wait(f"workspace {workspace.name!r} is open in another program (the app, or a command); "
                        f"waiting up to {wait:g} s for it to let go…")
            if time.monotonic() > deadline:
                raise LoadError(f"workspace {workspace.name!r} is in use by another program (the app or another "
                                f"load) and stayed busy for {wait:g} s; nothing was loaded — try again when it is "
                                "idle") from None
            time.sleep(0.2)


def _skip_loaded_files(reader: duckdb.DuckDBPyConnection, by_table: dict[str, list[_Prepared]]) -> None:
    """Append mode: a file whose exact content is already in the table is not added again."""
    cols = {r[0] for r in reader.execute(
        f"SELECT column_name FROM information_schema.columns WHERE table_catalog = 'ws' AND table_name = '{META_TABLE}'"
    ).fetchall()}
    if "content_hash" not in cols:
        return
    for name, parts in by_table.items():
        keep = []
        for p in parts:
            when = reader.execute(
                f"SELECT max(loaded_at) FROM ws.main.{META_TABLE} WHERE table_name = ? AND content_hash = ?",
                [name, p.digest],
            ).fetchone()[0]
            if when is None:
                keep.append(p)
            else:
                p.report.warnings.append(f"this exact file was already appended to {name!r} on {when:%Y-%m-%d %H:%M}; "
                                         "not added again (it would count twice)")
                p.report.rows_skipped += p.report.rows_loaded
                p.report.skipped["already loaded"] = p.report.rows_loaded
                p.report.rows_loaded = 0
        by_table[name] = keep


# --- one load at a time per workspace ------------------------------------------------------------


class _HeldLock:
    def __init__(self, fd: int, thread: int) -> None:
        self.fd, self.thread, self.depth = fd, thread, 1


_held: dict[Path, _HeldLock] = {}
_held_guard = threading.Lock()


@contextmanager
def load_lock(workspace: Workspace, on_wait: Callable[[str], None] | None = None,
              timeout: float | None = None) -> Iterator[None]:
    """Holds the workspace's load lock (`<workspace>/.load.lock`, an `flock`): one load at a time, across
    processes and threads.

    Why: two appends at once would each read the table, add their rows and swap, and DuckDB lets only
    one of them have the file; the other failed. With the lock the second waits (saying so through
    `on_wait`) and then appends to what the first wrote. The kernel drops the lock when its process
    ends, even by `kill -9`, so a crashed load never blocks the next. The same thread may take it again
    (the command line holds it around the load and the first tree; `ingest` takes it for the swap).
    """
    timeout = LOAD_WAIT_SECONDS if timeout is None else timeout
    if fcntl is None:  # no flock on this platform: DuckDB's own file lock still keeps the swap whole
        yield
        return
    workspace.root.mkdir(parents=True, exist_ok=True)
    path = workspace.root / LOAD_LOCK_FILE
    me = threading.get_ident()
    with _held_guard:
        held = _held.get(path)
        if held is not None and held.thread == me:
            held.depth += 1
            mine = held
        else:
            mine = None
    if mine is not None:
        try:
            yield
        finally:
            with _held_guard:
                mine.depth -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another load"
            if on_wait:
                on_wait(f"another load of workspace {workspace.name!r} is running ({holder}); waiting for it "
                        "to finish…")
            deadline = time.monotonic() + timeout
            while True:
                time.sleep(0.2)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LoadError(f"workspace {workspace.name!r}: another load ({holder}) was still running "
                                        f"after {timeout:g} s; nothing was loaded — try again when it has finished"
                                        ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%H:%M:%S')}".encode(), 0)
        with _held_guard:
            _held[path] = _HeldLock(fd, me)
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(path, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --- the load ---------------------------------------------------------------------------------


def _match(name: str, wanted: dict[str, object] | set[str] | None) -> object:
    """The entry for a file given by name: its full name (`a.zip:b.csv`), base name or archive member name."""
    if not wanted:
        return None
    keys = [name, Path(name.split(":", 1)[0]).name, name.rsplit(":", 1)[-1], Path(name.rsplit(":", 1)[-1]).name]
    for k in keys:
        if k in wanted:
            return wanted[k] if isinstance(wanted, dict) else True
    return None


def _batch_sides(sources: list[_Source], table: str | None, tables: dict[str, str] | None) -> set[str]:
    """The side tables a batch provides (a User export, the CRM sample's lists), so the files joining them
    are mapped with them; a file the user sent to a table of their choice provides none."""
    return {VENDOR_SIDES[v] for s in sources if not (table or _match(s.name, tables))
            and (v := detect_vendor(s.headers)) in VENDOR_SIDES}


def _plan(sources: list[_Source], table: str | None, workspace: Workspace | None,
          tables: dict[str, str] | None = None, given: dict[str, dict] | None = None,
          combine: bool = False) -> list[Mapping]:
    """Every file's mapping, with the side files each needs known first.

    Two files meant for one table are refused unless `combine` says to append them (two exports of
    one table are rarer than two files mis-taken for one).
    """
    sides = _batch_sides(sources, table, tables)

    def resolve(s: _Source) -> Mapping:
        m = _resolve(s, _match(s.name, tables) or table, workspace, sides, _match(s.name, given))
        # Every leads file is also a side table: a won-deals file joins it for its lead's date and channel.
        return replace(m, side="leads") if m.table == "leads" and not m.side else m

    mappings = [resolve(s) for s in sources]
    consumers = {j.side for m in mappings for j in m.joins}
    loads = any(m.table and not m.ignore for m in mappings)
    for i, (s, m) in enumerate(zip(sources, mappings, strict=True)):
        if m.side and not m.table and m.side not in consumers:
            if not loads:
                raise LoadError(f"{s.name}: this is the {m.side.replace('_', ' ')} list of the "
                                f"{m.label.split(':')[0].split(' (')[0]!r} layout; it only adds to the files it is "
                                "joined into — load it together with that file")
            mappings[i] = replace(m, ignore=True, label=f"{m.label} — not needed: nothing in this load joins it")
    by_table: dict[str, list[str]] = {}
    for s, m in zip(sources, mappings, strict=True):
        if m.table and not m.ignore:
            by_table.setdefault(m.table, []).append(s.name)
    clash = {t: names for t, names in by_table.items() if len(names) > 1}
    if clash and not combine:
        t, names = next(iter(clash.items()))
        raise LoadError(f"{' and '.join(names)} would all load into {t!r}: to append them into one table say so "
                        "(--combine on the command line, 'Append files of one table' on the Upload page); otherwise "
                        "choose another table for one of them (--as FILE=TABLE) or skip it (--skip FILE)")
    return mappings


def ingest(
    workspace: Workspace,
    paths: list[str | Path],
    *,
    table: str | None = None,
    mode: str = "replace",
    max_reject_share: float = 0.5,
    on_progress: Progress | None = None,
    reappend: bool = False,
    dry_run: bool = False,
    stage_map: dict[str, str] | None = None,
    tables: dict[str, str] | None = None,
    skip: set[str] | None = None,
    mappings: dict[str, dict] | None = None,
    combine: bool = False,
) -> LoadReport:
    """Loads files into the workspace; all or nothing. Returns the data-quality report.

    Per file, by name (`deals.csv`, or `export.zip:deals.csv`): `tables` chooses its table, `skip`
    leaves it out, `mappings` gives its mapping (as saved: table, columns, fill, derive). Two files
    for one table are appended only with `combine`.

    `dry_run` reads and checks everything and reports as a load would, but writes nothing (the
    tables' counts are then what these files alone would load). `stage_map` (stage → open, won
    or lost) adds to the workspace's saved stage map for this load only.

    `mode="replace"` swaps each table for the files' content (loading the same file twice gives
    the same data); `mode="append"` adds rows, rows whose id is already there replace the old,
    and a file whose exact content was appended before is not added again (unless `reappend`,
    e.g. to reload with a corrected stage map: its rows then replace themselves by id).
    `on_progress(fraction, message)` is called as the load goes.
    """
    if mode not in ("replace", "append"):
        raise LoadError(f"unknown mode {mode!r}: use 'replace' or 'append'")
    if not paths:
        raise LoadError("no files given")
    engine = workspace.engine_settings()
    if engine.remote:  # an upload here would fill a local file nothing reads
        raise LoadError(f"workspace {workspace.name!r} reads its data from {ENGINE_NAMES.get(engine.kind, engine.kind)}: "
                        "load the tables there, or remove the engine from the workspace's settings (Workspaces page) "
                        "to load files")
    started = time.perf_counter()
    progress = on_progress or (lambda _f, _m: None)
    reader = _connect()
    try:
        with tempfile.TemporaryDirectory(prefix="kpitree-load-") as tmp:
            work = Path(tmp)
            # An in-memory database does not spill by default: a load larger than memory would fail; with a
            # folder of the load's own it writes what does not fit there (removed with the folder).
            reader.execute(f"SET temp_directory = {_lit(str(work / 'spill'))}")
            sources = _open_all([Path(p) for p in paths], work, progress)
            for what, named in (("a table choice", tables), ("skip", skip), ("a mapping", mappings)):
                stray = [n for n in (named or ()) if not any(_match(s.name, {n}) for s in sources)]
                if stray:
                    raise LoadError(f"{what} names {', '.join(map(repr, stray))}, which is not among the files of "
                                    f"this load ({', '.join(s.name for s in sources)})")
            skipped = [s for s in sources if _match(s.name, skip)]
            sources = [s for s in sources if not _match(s.name, skip)]
            plan = _plan(sources, table, workspace, tables, mappings, combine)
            if not any(m.table and not m.ignore for m in plan):
                said = [f"{s.name} is {m.label}" for s, m in zip(sources, plan, strict=True)]
                said += [f"{s.name} is skipped" for s in skipped]
                raise LoadError("nothing to load: " + "; ".join(said))
            stages = {**workspace.stage_map(), **normalise_stage_map(stage_map or {})}
            order = sorted(range(len(sources)), key=lambda i: _load_order(plan[i]))
            sides_present: set[str] = set()
            prepared: dict[int, _Prepared] = {}
            for k, i in enumerate(order):
                src = sources[i]
                base, span = 0.15 + 0.7 * k / len(order), 0.7 / len(order)
                progress(base, f"reading {src.name} ({k + 1} of {len(order)})")
                counted: list[int] = []
                src.digest = _digest(src.path, src.name, counted)
                src.lines = (src.path, counted[0])
                if plan[i].ignore:
                    m = plan[i]
                    why = "not loaded — " + (m.label.split(": ", 1)[1] if m.source == "not_data" else m.label)
                    prepared[i] = _Prepared("", "", FileReport(src.name, "", m.source, m.label, warnings=[why],
                                                               role="ignored", evidence=list(m.evidence)),
                                            m, src.digest)
                    continue

                def step(f: float, msg: str, b: float = base, s: float = span, n: str = src.name) -> None:
                    progress(b + s * f, f"{n}: {msg}")

                prepared[i] = _prepare(reader, src, plan[i], i, work, stages, sides_present, step=step)
                if plan[i].side:
                    sides_present.add(plan[i].side)
            ordered = [prepared[i] for i in range(len(sources))]
            _link_leads_to_deals(reader, ordered)
            for p in ordered:
                r = p.report
                if r.rows_read >= 10 and r.rows_rejected / r.rows_read > max_reject_share:
                    first = r.rejected[0]
                    raise LoadError(
                        f"{r.file}: {r.rows_rejected} of {r.rows_read} rows rejected — is this the right file "
                        f"for {r.table!r}? First problem: line {first.line}, column {first.column!r}: {first.reason}"
                    )
            if dry_run:
                counts: dict[str, int] = {}
                for p in ordered:
                    if p.table:
                        counts[p.table] = counts.get(p.table, 0) + p.report.rows_loaded
            else:
                progress(0.9, "writing the workspace")
                counts = _swap_in(reader, workspace, ordered, mode, skip_loaded=not reappend,
                                  on_wait=lambda msg: progress(0.9, msg))
    except duckdb.Error as exc:  # SQL of ours failing on odd data: said as a failed load, never a traceback
        raise LoadError(f"the files could not be read ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); "
                        "nothing was loaded — the workspace is as it was") from None
    except OSError as exc:  # the temporary folder full, a file vanished while it was read
        raise LoadError(f"the load stopped: {exc.strerror or exc} ({exc.filename or 'temporary files'}); nothing "
                        "was loaded — the workspace is as it was") from None
    finally:
        reader.close()
    progress(1.0, "done")
    reports = [p.report for p in ordered] + [
        FileReport(s.name, "", "skipped", "skipped at your request", warnings=["not loaded: you chose to skip it"],
                   role="skipped")
        for s in skipped]
    return LoadReport(reports, counts, mode, round(time.perf_counter() - started, 3), dry_run)


def _link_leads_to_deals(reader: duckdb.DuckDBPyConnection, prepared: list[_Prepared]) -> None:
    """Deals that name their lead give that lead its deal_id, so lead conversion can be counted.

    A won-deals file of a marketing funnel links each deal to the lead it came from (`mql_id`); the
    leads file itself has no deal column.
    """
    deals = [p for p in prepared if p.table == "deals" and "lead_id" in p.mapping.fields]
    leads = [p for p in prepared if p.table == "leads"]
    for lp in leads:
        linked = 0
        for dp in deals:
            before = reader.execute(f"SELECT count(deal_id) FROM {lp.temp}").fetchone()[0]
            reader.execute(f"UPDATE {lp.temp} SET deal_id = d.deal_id FROM {dp.temp} AS d "
                           f"WHERE {lp.temp}.deal_id IS NULL AND d.lead_id = {lp.temp}.lead_id")
            linked += reader.execute(f"SELECT count(deal_id) FROM {lp.temp}").fetchone()[0] - before
        if linked:
            files = ", ".join(dp.report.file for dp in deals)
            lp.report.rules.append(f"deal_id: {linked} lead(s) given the deal that names them ({files})")


def _load_order(m: Mapping) -> int:
    """Side files before the tables that are also side files (they may join one), before the rest."""
    return 0 if m.side and not m.table else 1 if m.side else 2


def normalise_stage_map(mapping: dict[str, str]) -> dict[str, str]:
    """Stage names as the loader compares them (lower case, single spaces) → open, won or lost."""
    bad = {k: v for k, v in mapping.items() if str(v).strip().lower() not in ("open", "won", "lost")}
    if bad:
        raise LoadError(f"stage map: a status must be open, won or lost, not {bad}")
    return {re.sub(r"\s+", " ", str(k).strip().lower()): str(v).strip().lower()
            for k, v in mapping.items() if str(k).strip()}


def read_stage_map(path: str | Path) -> dict[str, str]:
    """A stage map file: CSV with columns stage,status (a header row), or a JSON object stage → status.

    Errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"{path.name}: cannot read the stage map: {exc}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LoadError(f"{path.name}, line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}") from None
        if not isinstance(raw, dict):
            raise LoadError(f"{path.name}: expected an object of stage → open/won/lost")
        return normalise_stage_map({str(k): str(v) for k, v in raw.items()})
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["stage", "status"]:
        raise LoadError(f"{path.name}, line 1: the header must be stage,status")
    out: dict[str, str] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < 2 or row[1].strip().lower() not in ("open", "won", "lost"):
            shown = row[1] if len(row) > 1 else ""
            raise LoadError(f"{path.name}, line {n}, column 'status': {shown!r} is not open, won or lost")
        out[row[0]] = row[1]
    return normalise_stage_map(out)


def read_mapping(path: str | Path) -> dict:
    """A mapping file: JSON `{"table": …, "columns": {canonical: header}, "fill": {…}, "derive": {…}}`.

    The same shape the Upload page saves, so a saved mapping can be reused from the command line.
    Errors name the file and what is wrong.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise LoadError(f"{path.name}: cannot read the mapping: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise LoadError(f"{path.name}, line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise LoadError(f"{path.name}: not a UTF-8 text file") from None
    example = '{"table": "deals", "columns": {"deal_id": "Opp #", "created_date": "Opened"}, "fill": {"status": "won"}}'
    if not isinstance(raw, dict) or raw.get("table") not in TABLES:
        raise LoadError(f"{path.name}: a mapping names its table ({', '.join(TABLES)}), e.g. {example}")
    columns = raw.get("columns") or {}
    known = set(TABLES[raw["table"]].column_names) | {"lead_link", "billing_months"}
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise LoadError(f"{path.name}: 'columns' maps canonical column → the file's header, e.g. {example}")
    saved = tuple(c for c in columns if c.startswith((OMIT, LAYOUT, DERIVED)))  # the Upload page's own entries
    unknown = sorted(set(columns) - known - set(saved)) + sorted(set(raw.get("fill") or {}) - known)
    if unknown:
        raise LoadError(f"{path.name}: {', '.join(map(repr, unknown))} is not a column of {raw['table']!r} "
                        f"(its columns: {', '.join(TABLES[raw['table']].column_names)})")
    units = raw.get("units") or {}
    money = money_columns(raw["table"])
    if not isinstance(units, dict) or any(k not in money or str(v).lower() not in UNITS for k, v in units.items()):
        which = ", ".join(money) or f"none in {raw['table']!r}"
        first = (money or ("amount",))[0]
        raise LoadError(f"{path.name}: 'units' says whether a money column ({which}) is in cents or units, "
                        f'e.g. "units": {{"{first}": "cents"}}')
    return {"table": raw["table"], "columns": columns, "fill": dict(raw.get("fill") or {}),
            "derive": dict(raw.get("derive") or {}), "units": {k: str(v).lower() for k, v in units.items()}}


# --- what the upload page asks before and instead of a load -------------------------------------


@dataclass
class Detection:
    """What a file was recognised as, before any row is loaded."""

    file: str
    table: str | None = None
    source: str | None = None
    label: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    sample: list[list[str]] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    header_key: str | None = None
    problem: str | None = None
    needs_mapping: bool = False
    role: str = "table"  # table, side (joined into another file's rows), ignored (not data / not needed), skipped
    evidence: list[str] = field(default_factory=list)  # which headers matched what
    chosen: str | None = None  # the table the user chose for it, if any
    missing: list[str] = field(default_factory=list)  # required columns the chosen or guessed table lacks
    conflict: str | None = None  # another file of the batch goes to the same table
    closest: str | None = None  # for a file that needs a mapping: the table it fits best (offered first)


def detect_files(workspace: Workspace | None, paths: list[str | Path], *, table: str | None = None,
                 tables: dict[str, str] | None = None, skip: set[str] | None = None, combine: bool = False
                 ) -> list[Detection]:
    """Per file (zip members included): the layout and mapping a load would use, and a few sample rows.

    Takes the same per-file choices as `ingest` (`tables`, `skip`, `combine`). Reads only the first
    bytes of each file; problems are returned per file, not raised.
    """
    out: list[Detection] = []
    with tempfile.TemporaryDirectory(prefix="kpitree-detect-") as tmp:
        work = Path(tmp)
        sources: list[_Source] = []
        for p in map(Path, paths):
            try:
                sources.extend(_open(p, work))
            except LoadError as exc:
                out.append(Detection(file=p.name, problem=str(exc)))
        sides = _batch_sides(sources, table, tables)
        for src in sources:
            d = Detection(file=src.name, headers=src.headers, header_key=header_key(src.headers),
                          sample=_sample(src, 5), chosen=_match(src.name, tables) or table)
            if _match(src.name, skip):
                d.role, d.label = "skipped", "skipped at your request"
                out.append(d)
                continue
            try:
                m = _resolve(src, d.chosen, workspace, sides)
            except UnrecognisedFile as exc:
                d.problem, d.needs_mapping = exc.on_page(), True
                fit = best_fit(src.headers, _sample(src, 50), src.name)
                if fit is not None:
                    d.evidence, d.missing, d.closest = list(fit.evidence), list(fit.missing), fit.table
                out.append(d)
                continue
            except LoadError as exc:
                d.problem = str(exc)
                out.append(d)
                continue
            d.table, d.source, d.label = m.table, m.source, m.label
            d.role = "ignored" if m.ignore else "side" if not m.table else "table"
            d.mapping = m.describe()
            d.unmapped = [h for h in src.headers if h not in m.used_columns]
            d.rules = list(m.rules)
            d.evidence = list(m.evidence)
            try:
                _check_mapping(src, m)
            except MissingColumns as exc:
                d.problem, d.needs_mapping = str(exc), True
                if m.table:
                    d.missing = list(fit_table(m.table, src.headers, _sample(src, 50), src.name).missing)
            except LoadError as exc:
                d.problem = str(exc)
            out.append(d)
    by_table: dict[str, list[Detection]] = {}
    for d in out:
        if d.role == "table" and d.table:
            by_table.setdefault(d.table, []).append(d)
    for t, group in by_table.items():
        if len(group) > 1:
            names = " and ".join(d.file for d in group)
            for d in group:
                d.conflict = (f"{names} all go to {t!r}: they are appended into one table" if combine else
                              f"{names} would all load into {t!r}: tick 'Append files of one table', or choose "
                              "another table for one of them, or skip it")
    return out


def _sample(src: _Source, n: int) -> list[list[str]]:
    rows: list[list[str]] = []
    with open(src.path, encoding="utf-8-sig", newline="", errors="replace") as fh:
        try:
            for i, row in enumerate(csv.reader(fh, delimiter=src.delimiter)):
                if i > 0 and row:
                    rows.append(row)
                if len(rows) >= n:
                    break
        except csv.Error:
            pass
    return rows


@dataclass
class MappingPreview:
    """A proposed mapping tried on the file (its first `PREVIEW_CHECK_ROWS` rows): the first rows as they would
    load, and every problem — the rejected rows and, before any load, how many go and why (`summary`)."""

    rows: list[dict]
    rejected: list[RejectedRow]
    rows_read: int
    error: str | None = None
    rows_rejected: int = 0
    reasons: list[tuple[str | None, str, int, int | None]] = field(default_factory=list)
    partial: bool = False  # only the first PREVIEW_CHECK_ROWS rows were checked

    @property
    def summary(self) -> str | None:
        """'8.1 % of rows (141 of 1,750) would be rejected: column 'Status': Abandoned is not one of …'."""
        if not self.rows_rejected or not self.rows_read:
            return None
        share = 100 * self.rows_rejected / self.rows_read
        of = f"{self.rows_rejected:,} of the first {self.rows_read:,}" if self.partial else \
            f"{self.rows_rejected:,} of {self.rows_read:,}"
        why = "; ".join(f"column {col!r}: {reason} ({n:,} row(s), first on line {line})" if col else
                        f"{reason} ({n:,} row(s), first on line {line})" for col, reason, n, line in self.reasons)
        return f"{share:.1f} % of rows ({of}) would be rejected with this mapping" + (f": {why}" if why else "")


def preview_mapping(path: str | Path, table: str, columns: dict[str, str], *, rows: int = 20,
                    stage_map: dict[str, str] | None = None, member: str | None = None,
                    fill: dict[str, str] | None = None, units: dict[str, str] | None = None,
                    derive: dict[str, str] | None = None) -> MappingPreview:
    """Runs `canonical column → header` (and `fill`'s constants, `units`' cents, `derive`'s derivations) over the
    file's first `PREVIEW_CHECK_ROWS` rows, as a load would read them: a money column the mapping says is in cents
    previews divided by 100, as it will load; the first `rows` are returned, and every reject is counted.

    `member` picks one file of an archive by the name `detect_files` reported (`export.zip:deals.csv`).
    """
    m = canonical_mapping(table, {k: v for k, v in columns.items() if v}, source="saved", label="proposed mapping",
                          fill=fill, units=units, derive=derive)
    reader = _connect(threads=1)
    try:
        with tempfile.TemporaryDirectory(prefix="kpitree-preview-") as tmp:
            work = Path(tmp)
            sources = _open(Path(path), work)
            src = next((x for x in sources if x.name == member), sources[0])
            try:
                p = _prepare(reader, src, m, 0, work, stage_map or {}, set(), limit=max(rows, PREVIEW_CHECK_ROWS))
            except LoadError as exc:
                return MappingPreview([], [], 0, str(exc))
            except duckdb.Error as exc:  # odd values our SQL did not expect: said, never a traceback on the page
                return MappingPreview([], [], 0, f"{src.name}: these rows could not be read with this mapping "
                                                 f"({str(exc).splitlines()[0][:200]})")
            df = reader.execute(f"SELECT * FROM {p.temp} LIMIT {int(rows)}").fetchdf()
            r = p.report
            return MappingPreview(df.astype(object).where(df.notna(), None).to_dict("records"), r.rejected,
                                  r.rows_read, rows_rejected=r.rows_rejected, reasons=list(r.reject_reasons),
                                  partial=r.rows_read >= PREVIEW_CHECK_ROWS)
    finally:
        reader.close()


def load_frames(workspace: Workspace, frames: dict[str, object], *, mode: str = "replace") -> LoadReport:
    """Loads in-memory pandas frames through exactly the same path as files (used by demo/tests)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, frame in frames.items():
            path = Path(tmp) / f"{name}.csv"
            buf = io.StringIO()
            frame.to_csv(buf, index=False)  # type: ignore[attr-defined]
            path.write_text(buf.getvalue(), encoding="utf-8")
            paths.append(path)
        return ingest(workspace, paths, mode=mode)

