"""CSV → canonical DuckDB tables, with a data-quality report and an all-or-nothing swap.

Files are read by a private in-memory DuckDB connection (it alone may touch the file system and
it only ever runs SQL written here), coerced into the canonical types in SQL, and written into
the workspace as `__new_<table>`. Only when every file of the load succeeded are the new tables
swapped in, in one transaction: a failed load leaves the workspace exactly as it was.
"""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from .errors import LoadError
from .schema import TABLES, Column, ColumnType, Table, guess_table
from .workspace import META_TABLE, Workspace, _lock_for

MAX_REJECT_DETAILS = 1000
SNAPSHOT_COLUMNS = {"customer_id", "month", "mrr"}

# Synonyms seen in CRM exports, lower-cased, for the enumerated canonical columns.
_STATUS_SYNONYMS = {
    "won": "won", "closed won": "won", "closedwon": "won", "closed-won": "won", "win": "won",
    "lost": "lost", "closed lost": "lost", "closedlost": "lost", "closed-lost": "lost",
    "open": "open", "in progress": "open", "active": "open", "pending": "open",
}
_DEAL_TYPE_SYNONYMS = {
    "new": "new", "new business": "new", "newbusiness": "new", "new customer": "new",
    "new logo": "new", "expansion": "expansion", "upsell": "expansion", "upgrade": "expansion",
    "cross-sell": "expansion", "cross sell": "expansion", "existingbusiness": "expansion",
    "existing business": "expansion", "existing customer - upgrade": "expansion",
    "price increase": "expansion", "renewal": "renewal", "renew": "renewal",
}
_ACTIVITY_SYNONYMS = {
    "phone call": "call", "calls": "call", "emails": "email", "meetings": "meeting",
    "health check": "health_check", "health-check": "health_check", "check-in": "health_check",
    "demos": "demo", "proposals": "proposal",
}


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
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)
    nulls: dict[str, int] = field(default_factory=dict)
    duplicate_ids: int = 0
    date_range: tuple[str | None, str | None] = (None, None)
    warnings: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    files: list[FileReport]
    tables: dict[str, int]  # table → rows after the load
    mode: str
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        lines = []
        for f in self.files:
            lines.append(
                f"{f.file} → {f.table} ({f.source}): {f.rows_read} read, {f.rows_loaded} loaded, "
                f"{f.rows_rejected} rejected"
            )
            if f.date_range[0]:
                lines.append(f"  dates {f.date_range[0]} … {f.date_range[1]}")
            for r in f.rejected[:10]:
                col = f", column {r.column!r}" if r.column else ""
                lines.append(f"  line {r.line}{col}: {r.reason}")
            if f.rows_rejected > 10:
                lines.append(f"  … and {f.rows_rejected - 10} more rejected rows")
            if f.extra_columns:
                lines.append(f"  extra columns kept as text: {', '.join(f.extra_columns)}")
            if f.duplicate_ids:
                lines.append(f"  duplicate ids: {f.duplicate_ids} (later copies rejected)")
            for w in f.warnings:
                lines.append(f"  warning: {w}")
        lines.append("tables: " + ", ".join(f"{t}={n}" for t, n in self.tables.items()))
        return "\n".join(lines)


def normalise_header(name: str) -> str:
    """`Close Date` → `close_date`: canonical names are matched case- and space-insensitively."""
    out = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip().lstrip("\ufeff")).strip("_").lower()
    return out or "column"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- coercion expressions (DuckDB SQL over a VARCHAR value) --------------------------------


def _date_expr(v: str, day_first: bool) -> str:
    """ISO first (with or without time/zone), then d/m/y or m/d/y as the column's values showed."""
    parts = f"regexp_extract({v}, '^\\s*(\\d{{1,2}})[/.\\-](\\d{{1,2}})[/.\\-](\\d{{2,4}})', ['a', 'b', 'y'])"
    day, month = ("a", "b") if day_first else ("b", "a")
    year = f"CAST({parts}.y AS INTEGER)"
    year = f"(CASE WHEN {year} < 100 THEN 2000 + {year} ELSE {year} END)"
    dm = (
        f"try(make_date({year}, CAST({parts}.{month} AS INTEGER), CAST({parts}.{day} AS INTEGER)))"
    )
    slashed = f"CASE WHEN regexp_matches({v}, '^\\s*\\d{{1,2}}[/.\\-]\\d{{1,2}}[/.\\-]\\d{{2,4}}') THEN {dm} END"
    ymd = f"TRY_CAST(replace(regexp_extract({v}, '^\\s*(\\d{{4}}/\\d{{1,2}}/\\d{{1,2}})', 1), '/', '-') AS DATE)"
    month_only = f"CASE WHEN regexp_matches(trim({v}), '^\\d{{4}}-\\d{{1,2}}$') THEN TRY_CAST(trim({v}) || '-01' AS DATE) END"
    return f"COALESCE(TRY_CAST(trim({v}) AS DATE), {ymd}, {slashed}, {month_only})"


def _timestamp_expr(v: str, day_first: bool) -> str:
    return f"COALESCE(TRY_CAST(trim({v}) AS TIMESTAMP), CAST({_date_expr(v, day_first)} AS TIMESTAMP))"


def _number_expr(v: str) -> str:
    """Currency symbols, spaces, thousands separators, decimal commas and (negatives)."""
    s = f"regexp_replace(trim({v}), '[^0-9,.()\\-]', '', 'g')"
    neg = f"(starts_with({s}, '(') OR starts_with({s}, '-'))"
    digits = f"regexp_replace({s}, '[()\\-]', '', 'g')"
    eu = f"replace(replace({digits}, '.', ''), ',', '.')"
    us = f"replace({digits}, ',', '')"
    choose = (
        f"CASE WHEN strpos({digits}, ',') > 0 AND strpos({digits}, '.') > 0 THEN "
        f"  (CASE WHEN regexp_extract({digits}, '([.,])[0-9]*$', 1) = ',' THEN {eu} ELSE {us} END) "
        f"WHEN strpos({digits}, ',') > 0 THEN "
        f"  (CASE WHEN regexp_matches({digits}, '^\\d{{1,3}}(,\\d{{3}})+$') THEN {us} "
        f"   ELSE replace({digits}, ',', '.') END) "
        f"ELSE {digits} END"
    )
    slow = f"(CASE WHEN {neg} THEN -1 ELSE 1 END) * TRY_CAST({choose} AS DOUBLE)"
    return f"COALESCE(TRY_CAST(trim({v}) AS DOUBLE), {slow})"


def _enum_expr(v: str, synonyms: dict[str, str]) -> str:
    cases = " ".join(f"WHEN {_lit(k)} THEN {_lit(val)}" for k, val in synonyms.items())
    low = f"lower(trim({v}))"
    return f"(CASE {low} {cases} ELSE {low} END)"


def _text_expr(v: str) -> str:
    return f"NULLIF(trim({v}), '')"


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


def _value_expr(table: Table, col: Column, v: str, day_first: bool) -> str:
    if col.type in (ColumnType.DATE,):
        expr = _date_expr(v, day_first)
        if table.name == "spend" and col.name == "month":
            expr = f"CAST(date_trunc('month', {expr}) AS DATE)"
        return expr
    if col.type is ColumnType.TIMESTAMP:
        return _timestamp_expr(v, day_first)
    if col.type in (ColumnType.MONEY, ColumnType.NUMBER):
        return _number_expr(v)
    if col.type is ColumnType.INTEGER:
        return f"TRY_CAST(round({_number_expr(v)}) AS BIGINT)"
    if col.name == "status" and table.name == "deals":
        return _enum_expr(v, _STATUS_SYNONYMS)
    if col.name == "deal_type":
        return _enum_expr(v, _DEAL_TYPE_SYNONYMS)
    if col.name == "type" and table.name == "activities":
        return _enum_expr(v, _ACTIVITY_SYNONYMS)
    return _text_expr(v)


_EXAMPLES = {
    ColumnType.DATE: "a date such as 2026-10-31, 10/31/2026 or 31.10.2026",
    ColumnType.TIMESTAMP: "a date and time such as 2026-10-31 14:05:00",
    ColumnType.MONEY: "an amount such as 1234.50, $1,234.50 or 1.234,50 €",
    ColumnType.NUMBER: "a number such as 12.5",
    ColumnType.INTEGER: "a whole number such as 9",
}


# --- reading -------------------------------------------------------------------------------


def _read_raw(reader: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, str]:
    """Loads the file as text columns into temp table `raw`; returns (encoding, delimiter)."""
    last_error: Exception | None = None
    for encoding in ("utf-8", "latin-1"):
        try:
            reader.execute("DROP TABLE IF EXISTS raw")
            reader.execute("DROP TABLE IF EXISTS rejects")
            reader.execute("DROP TABLE IF EXISTS reject_scan")
            reader.execute(
                "CREATE TEMP TABLE raw AS SELECT *, row_number() OVER () AS __rn FROM read_csv(?, "
                "all_varchar = true, header = true, store_rejects = true, ignore_errors = true, "
                "rejects_table = 'rejects', rejects_scan = 'reject_scan', "
                "encoding = ?, sample_size = 20480)",
                [str(path), encoding],
            )
            bad_bytes = reader.execute(
                "SELECT count(*) FROM rejects WHERE error_type = 'INVALID ENCODING'"
            ).fetchone()[0]
            if bad_bytes and encoding == "utf-8":
                continue
            sniff = reader.execute("SELECT delimiter FROM reject_scan LIMIT 1").fetchone()
            return encoding, (sniff[0] if sniff else ",")
        except duckdb.Error as exc:
            last_error = exc
            if "unicode" not in str(exc).lower() and "encoding" not in str(exc).lower():
                break
    message = str(last_error).split("\n")[0] if last_error else "unknown error"
    raise LoadError(f"{path.name}: cannot read as CSV: {message}")


def _structural_rejects(reader: duckdb.DuckDBPyConnection) -> list[RejectedRow]:
    rows = reader.execute(
        "SELECT line, column_name, error_type, error_message, csv_line FROM rejects ORDER BY line"
    ).fetchall()
    out = []
    for line, column, kind, message, raw in rows:
        reason = f"{str(kind).lower().replace('_', ' ')}: {str(message).splitlines()[0]}"
        out.append(RejectedRow(int(line) if line is not None else None, column, reason, (raw or "")[:200]))
    return out


def _record_lines(path: Path, encoding: str, delimiter: str) -> list[int]:
    """Physical line where each data record starts (records may span lines inside quotes)."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    lines: list[int] = []
    with opener(path, "rt", encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter or ",")
        start = 1
        for i, _ in enumerate(reader):
            if i > 0:
                lines.append(start)
            start = reader.line_num + 1
    return lines


# --- the load ------------------------------------------------------------------------------


@dataclass
class _Prepared:
    table: str
    temp: str
    report: FileReport


def _detect(path: Path, headers: list[str], forced: str | None) -> tuple[Table, str]:
    normalised = {normalise_header(h) for h in headers}
    if forced:
        if forced not in TABLES:
            raise LoadError(f"{path.name}: unknown table {forced!r} (known: {', '.join(TABLES)})")
        if forced == "subscriptions" and SNAPSHOT_COLUMNS <= normalised and "start_date" not in normalised:
            return TABLES["subscriptions"], "snapshots"
        return TABLES[forced], "canonical"
    if SNAPSHOT_COLUMNS <= normalised and "start_date" not in normalised:
        return TABLES["subscriptions"], "snapshots"
    name = guess_table(sorted(normalised), path.name)
    if name is None:
        hint = "; ".join(f"{t.name}: {', '.join(t.required)}" for t in TABLES.values())
        raise LoadError(
            f"{path.name}: cannot tell which table this file is from its header "
            f"({', '.join(headers[:12])}). Each table needs its required columns — {hint}"
        )
    return TABLES[name], "canonical"


def _prepare(reader: duckdb.DuckDBPyConnection, path: Path, forced: str | None, index: int) -> _Prepared:
    if not path.exists():
        raise LoadError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise LoadError(f"{path.name}: the file is empty")
    encoding, delimiter = _read_raw(reader, path)
    headers = [c for c in reader.sql("SELECT * FROM raw LIMIT 0").columns if c != "__rn"]
    table, source = _detect(path, headers, forced)
    by_norm: dict[str, str] = {}
    duplicates = []
    for h in headers:
        n = normalise_header(h)
        if n in by_norm:
            duplicates.append(h)
        by_norm.setdefault(n, h)
    if source == "snapshots":
        by_norm["start_date"] = by_norm.pop("month")
    missing = [c for c in table.required if c not in by_norm]
    if missing:
        raise LoadError(
            f"{path.name}: missing required column(s) {', '.join(repr(m) for m in missing)} for table "
            f"{table.name!r} (the file has: {', '.join(headers[:20])})"
        )
    report = FileReport(file=path.name, table=table.name, source=source)
    report.rows_read = reader.execute("SELECT count(*) FROM raw").fetchone()[0]
    structural = _structural_rejects(reader)
    report.rows_read += len(structural)
    if report.rows_read == 0:
        raise LoadError(f"{path.name}: the file has a header but no data rows")
    if duplicates:
        report.warnings.append(f"duplicated column names, the first of each was used: {', '.join(duplicates)}")

    # Day-first dates are chosen per file when some value can only be read that way (31/10/2026).
    date_cols = [c for c in table.columns if c.type in (ColumnType.DATE, ColumnType.TIMESTAMP) and c.name in by_norm]
    day_first = False
    if date_cols:
        checks = " + ".join(
            f"count(*) FILTER (WHERE TRY_CAST(regexp_extract({_q(by_norm[c.name])}, "
            f"'^\\s*(\\d{{1,2}})[/.\\-]\\d{{1,2}}[/.\\-]\\d{{2,4}}', 1) AS INTEGER) > 12)"
            for c in date_cols
        )
        us_checks = " + ".join(
            f"count(*) FILTER (WHERE TRY_CAST(regexp_extract({_q(by_norm[c.name])}, "
            f"'^\\s*\\d{{1,2}}[/.\\-](\\d{{1,2}})[/.\\-]\\d{{2,4}}', 1) AS INTEGER) > 12)"
            for c in date_cols
        )
        eu, us = reader.execute(f"SELECT {checks}, {us_checks} FROM raw").fetchone()
        day_first = eu > 0 and us == 0 or (eu == 0 and us == 0 and delimiter == ";")
        if eu > 0 and us > 0:
            report.warnings.append("dates mix day-first and month-first forms; read as month-first (US)")

    checks: list[str] = []
    for col in table.columns:
        if col.name not in by_norm:
            if not col.required:
                report.missing_optional_columns.append(col.name)
            continue
        raw = _q(by_norm[col.name])
        present = f"NULLIF(trim({raw}), '') IS NOT NULL"
        label = _lit(col.name)
        if col.required:
            checks.append(f"WHEN NOT ({present}) THEN [{label}, 'missing value', NULL]")
        if col.type in _EXAMPLES:
            checks.append(
                f"WHEN {present} AND {_q('v_' + col.name)} IS NULL THEN "
                f"[{label}, 'cannot read ' || {raw} || ' as {_EXAMPLES[col.type]}', {raw}]"
            )
        if col.allowed:
            allowed = ", ".join(_lit(a) for a in col.allowed)
            checks.append(
                f"WHEN {_q('v_' + col.name)} IS NOT NULL AND {_q('v_' + col.name)} NOT IN ({allowed}) THEN "
                f"[{label}, {raw} || ' is not one of {', '.join(col.allowed)}', {raw}]"
            )
        if col.non_negative:
            checks.append(
                f"WHEN {_q('v_' + col.name)} < 0 THEN [{label}, 'negative value ' || {raw} || ' is not allowed', {raw}]"
            )
    extra = [h for n, h in by_norm.items() if n not in table.column_names and h not in duplicates]
    extra = [h for h in extra if not (source == "snapshots" and normalise_header(h) == "month")]
    report.extra_columns = [normalise_header(h) for h in extra]

    # Typed values are computed once (v_* columns) and checked against the raw text.
    typed_cols = ", ".join(
        f"{_value_expr(table, c, _q(by_norm[c.name]), day_first)} AS {_q('v_' + c.name)}"
        for c in table.columns
        if c.name in by_norm
    )
    reason = f"CASE {' '.join(checks)} END" if checks else "NULL"
    reader.execute("DROP TABLE IF EXISTS checked")
    reader.execute(
        f"CREATE TEMP TABLE checked AS SELECT *, {reason} AS __why FROM (SELECT *, {typed_cols} FROM raw)"
    )
    key = table.key[0] if table.key else None

    value_rejects = reader.execute(
        f"SELECT __rn, __why[1], __why[2], __why[3] FROM checked WHERE __why IS NOT NULL ORDER BY __rn LIMIT {MAX_REJECT_DETAILS}"
    ).fetchall()
    rejected_count = reader.execute("SELECT count(*) FROM checked WHERE __why IS NOT NULL").fetchone()[0]
    dup_rows: list[tuple] = []
    dup_count = 0
    if key:
        reader.execute(
            f"CREATE OR REPLACE TEMP TABLE dups AS SELECT __rn, {_q('v_' + key)} AS k, first_rn FROM ("
            f"SELECT __rn, {_q('v_' + key)}, min(__rn) OVER (PARTITION BY {_q('v_' + key)}) AS first_rn "
            f"FROM checked WHERE __why IS NULL) WHERE __rn > first_rn"
        )
        dup_count = reader.execute("SELECT count(*) FROM dups").fetchone()[0]
        dup_rows = reader.execute(f"SELECT __rn, k, first_rn FROM dups ORDER BY __rn LIMIT {MAX_REJECT_DETAILS}").fetchall()

    # DuckDB numbers records, not physical lines; map both to the line a text editor shows.
    # Only done when there is something to point at.
    physical: list[int] = []
    good_records: list[int] = []
    if value_rejects or dup_rows or structural:
        physical = _record_lines(path, encoding, delimiter)
        bad = {r.line - 1 for r in structural if r.line is not None}
        good_records = [k for k in range(1, len(physical) + 1) if k not in bad]

    def line_of(rn: int) -> int | None:
        if 0 < rn <= len(good_records):
            return physical[good_records[rn - 1] - 1]
        return None

    for r in structural:
        if r.line is not None and 0 < r.line - 1 <= len(physical):
            r.line = physical[r.line - 2]
    rejected = list(structural)
    for rn, column, why, value in value_rejects:
        rejected.append(RejectedRow(line_of(rn), column, why, value))
    for rn, k, first in dup_rows:
        rejected.append(
            RejectedRow(line_of(rn), key, f"duplicate {key} {k!r}, first seen on line {line_of(first)}; kept the first", k)
        )
    rejected.sort(key=lambda r: (r.line is None, r.line or 0))
    report.rejected = rejected[:MAX_REJECT_DETAILS]
    report.rows_rejected = len(structural) + rejected_count + dup_count
    report.duplicate_ids = dup_count
    report.rows_loaded = report.rows_read - report.rows_rejected
    if report.rows_loaded <= 0:
        first = report.rejected[0] if report.rejected else None
        detail = f" — first: line {first.line}, column {first.column!r}: {first.reason}" if first else ""
        raise LoadError(f"{path.name}: no row could be loaded into {table.name!r}{detail}")

    temp = f"good_{index}"
    dup_filter = "AND __rn NOT IN (SELECT __rn FROM dups)" if key else ""
    columns_sql = ", ".join(
        [
            *(
                (
                    f"{_q('v_' + c.name)} AS {_q(c.name)}"
                    if c.name in by_norm
                    else f"CAST(NULL AS {c.type.sql_type}) AS {_q(c.name)}"
                )
                for c in table.columns
            ),
            *(f"{_text_expr(_q(h))} AS {_q(normalise_header(h))}" for h in extra),
        ]
    )
    reader.execute(f"CREATE TEMP TABLE {temp} AS SELECT {columns_sql} FROM checked WHERE __why IS NULL {dup_filter}")
    if source == "snapshots":
        reader.execute(
            f"UPDATE {temp} SET start_date = CAST(date_trunc('month', start_date) AS DATE), "
            f"end_date = CAST(date_trunc('month', start_date) + INTERVAL 1 MONTH AS DATE)"
        )
    if table.name == "quotas":
        start, end = _quota_period_exprs("period")
        reader.execute(f"CREATE OR REPLACE TEMP TABLE {temp} AS SELECT *, {start} AS period_start, {end} AS period_end FROM {temp}")
        bad = reader.execute(f"SELECT count(*) FROM {temp} WHERE period_start IS NULL").fetchone()[0]
        if bad:
            raise LoadError(f"{path.name}: {bad} quota row(s) have a period that is not 2026-10, 2026-Q4, 2026 or a date")
    _quality(reader, table, temp, report)
    return _Prepared(table.name, temp, report)


def _quality(reader: duckdb.DuckDBPyConnection, table: Table, temp: str, report: FileReport) -> None:
    """Nulls, date range and warnings that change what the metrics will say."""
    important = [c.name for c in table.columns if not c.required and c.name in (*table.key, *table.dimensions, "close_date", "account_id", "end_date")]
    if important:
        counts = reader.execute(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {_q(c)} IS NULL)" for c in important) + f" FROM {temp}"
        ).fetchone()
        report.nulls = {c: int(n) for c, n in zip(important, counts, strict=True) if n}
    if table.date_column:
        lo, hi = reader.execute(f"SELECT min({_q(table.date_column)}), max({_q(table.date_column)}) FROM {temp}").fetchone()
        report.date_range = (str(lo) if lo is not None else None, str(hi) if hi is not None else None)
    if table.name == "deals":
        n = reader.execute(f"SELECT count(*) FROM {temp} WHERE status <> 'open' AND close_date IS NULL").fetchone()[0]
        if n:
            report.warnings.append(f"{n} won/lost deal(s) have no close_date and are left out of bookings metrics")
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


def ingest(
    workspace: Workspace,
    paths: list[str | Path],
    *,
    table: str | None = None,
    mode: str = "replace",
    max_reject_share: float = 0.5,
) -> LoadReport:
    """Loads files into the workspace; all or nothing. Returns the data-quality report.

    `mode="replace"` swaps each table for the files' content (loading the same file twice gives
    the same data); `mode="append"` adds rows, and rows whose id is already there replace the old.
    """
    if mode not in ("replace", "append"):
        raise LoadError(f"unknown mode {mode!r}: use 'replace' or 'append'")
    if not paths:
        raise LoadError("no files given")
    started = time.perf_counter()
    reader = duckdb.connect(config={"threads": 2})
    try:
        prepared = [_prepare(reader, Path(p), table, i) for i, p in enumerate(paths)]
        for p in prepared:
            r = p.report
            if r.rows_read >= 10 and r.rows_rejected / r.rows_read > max_reject_share:
                raise LoadError(
                    f"{r.file}: {r.rows_rejected} of {r.rows_read} rows rejected — is this the right file "
                    f"for {r.table!r}? First problem: line {r.rejected[0].line}, column "
                    f"{r.rejected[0].column!r}: {r.rejected[0].reason}"
                )
        tables = _swap_in(reader, workspace, prepared, mode)
    finally:
        reader.close()
    return LoadReport([p.report for p in prepared], tables, mode, time.perf_counter() - started)


def _swap_in(reader: duckdb.DuckDBPyConnection, workspace: Workspace, prepared: list[_Prepared], mode: str) -> dict[str, int]:
    """Writes `__new_<table>` into the workspace file, then swaps all of them in one transaction."""
    workspace.root.mkdir(parents=True, exist_ok=True)
    by_table: dict[str, list[_Prepared]] = {}
    for p in prepared:
        by_table.setdefault(p.table, []).append(p)
    counts: dict[str, int] = {}
    with _lock_for(workspace.db_path):
        reader.execute(f"ATTACH {_lit(str(workspace.db_path))} AS ws")
        try:
            existing = {
                r[0]
                for r in reader.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'ws' AND table_schema = 'main'"
                ).fetchall()
            }
            for name, parts in by_table.items():
                union = " UNION ALL BY NAME ".join(f"SELECT * FROM {p.temp}" for p in parts)
                source = f"({union})"
                key = TABLES[name].key
                if mode == "append" and name in existing:
                    source = f"(SELECT * FROM ws.main.{_q(name)} UNION ALL BY NAME SELECT * FROM {source})"
                if key:
                    # The last copy of an id wins: a newer file's row replaces an older one.
                    source = (
                        f"(SELECT * EXCLUDE (__ord) FROM (SELECT *, row_number() OVER () AS __ord FROM {source}) "
                        f"QUALIFY row_number() OVER (PARTITION BY {_q(key[0])} ORDER BY __ord DESC) = 1)"
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
                for name in by_table:
                    reader.execute(f"DROP TABLE IF EXISTS ws.main.{_q(name)}")
                    reader.execute(f"ALTER TABLE ws.main.{_q('__new_' + name)} RENAME TO {_q(name)}")
                for p in prepared:
                    reader.execute(
                        f"INSERT INTO ws.main.{META_TABLE} VALUES (?, ?, now()::TIMESTAMP, ?, ?, ?)",
                        [p.table, p.report.file, p.report.rows_loaded, p.report.rows_rejected, mode],
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
            reader.execute("DETACH ws")
    return counts


def load_frames(workspace: Workspace, frames: dict[str, object], *, mode: str = "replace") -> LoadReport:
    """Loads in-memory pandas frames through exactly the same path as files (used by demo/tests)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, frame in frames.items():
            path = Path(tmp) / f"{name}.csv"
            buf = io.StringIO()
            frame.to_csv(buf, index=False)  # type: ignore[attr-defined]
            path.write_text(buf.getvalue(), encoding="utf-8")
            paths.append(path)
        return ingest(workspace, paths, mode=mode)
