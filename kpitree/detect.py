"""Which canonical table a file nobody described belongs to, scored column by column.

A vendor layout (`vendors.py`) is recognised by its exact headers. Everything else is scored
against every canonical table: each table column looks for a header among its names and
synonyms, a match only counts when the sample values read as the column's type, and the table
with the best fit wins — not the first whose required columns happen to exist (a file with an
`account_id` column is not an accounts list when its other columns are a subscription's). The
fit carries its evidence so the user sees why, and what is missing.

Files that describe data rather than hold it (a data dictionary, a calendar helper table of a
BI tool) are recognised here too, so they are reported and skipped instead of blocking a load.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .schema import TABLES, ColumnType
from .vendors import normalise_header

# Per table and column: header names a person (or a tool) uses for it, most specific first.
# Names are compared after `normalise_header` (`Close Date` = `close_date` = `CloseDate` → `closedate`
# is also listed where tools write camel case). Generic names (`id`, `date`, `type` …) score less.
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "deals": {
        "deal_id": ("deal_id", "opportunity_id", "opp_id", "dealid", "opportunityid", "record_id", "deal_number",
                    "opportunity_number", "id", "deal", "opportunity", "mql_id"),
        "account_id": ("account_id", "accountid", "company_id", "customer_id", "account", "account_name", "company",
                       "customer", "organization", "organisation", "client", "seller_id"),
        "owner": ("owner", "deal_owner", "opportunity_owner", "sales_owner", "owner_name", "owner_id", "ownerid", "sales_rep",
                  "sales_agent", "rep", "sr_id", "sales_rep_id", "rep_id", "assigned_to", "sdr_id", "user"),
        "created_date": ("created_date", "createddate", "create_date", "created_at", "creation_date", "date_created",
                         "created_time", "created_on", "creation_time", "engage_date", "created", "opened"),
        "close_date": ("close_date", "closedate", "closed_date", "closed_at", "date_closed", "won_date", "won_at",
                       "closed_won_date", "closing_date", "closed", "close", "expected_close_date"),
        "stage": ("stage", "stagename", "deal_stage", "pipeline_stage", "stage_name", "sales_stage", "opportunity_stage",
                  "deal_phase", "phase"),
        "status": ("status", "deal_status", "outcome", "result", "won_lost", "state"),
        "amount": ("amount", "deal_value", "deal_amount", "amount_usd", "arr", "acv", "close_value", "arr_amount",
                   "contract_value", "value", "total"),
        "deal_type": ("deal_type", "opportunity_type", "dealtype", "type", "kind"),
        "segment": ("segment", "customer_segment", "market_segment", "business_segment", "tier", "size"),
        "channel": ("channel", "lead_source", "leadsource", "utm_source", "origin", "source", "traffic_source",
                    "campaign"),
        "services_amount": ("services_amount", "professional_services", "ps_amount"),
    },
    "subscriptions": {
        "customer_id": ("customer_id", "customerid", "subscriber_id", "account_id", "accountid", "account_code",
                        "customer_code", "customer", "account", "company", "client"),
        "start_date": ("start_date", "subscription_start", "started_at", "start_at", "signup_date", "signed_up_at",
                       "activated_at", "subscribed_at", "start", "started", "since"),
        "end_date": ("end_date", "ended_at", "expires_at", "expired_at", "expiration_date", "expiry_date",
                     "canceled_at", "cancelled_at", "cancel_date", "cancellation_date",
                     "churn_date", "churned_at", "end", "ended", "until"),
        "mrr": ("mrr", "mrr_amount", "monthly_recurring_revenue", "monthly_amount", "monthly_value", "monthly_price",
                "monthly_fee", "monthlycharges", "monthly_charges"),
        "plan": ("plan", "plan_name", "price_plan", "plan_id", "package", "product", "tier"),
        "segment": ("segment", "customer_segment", "market_segment", "cf_segment"),
        "channel": ("channel", "acquisition_channel", "lead_source", "utm_source", "origin", "source"),
    },
    "leads": {
        "lead_id": ("lead_id", "leadid", "mql_id", "prospect_id", "contact_id", "id"),
        "created_date": ("created_date", "createddate", "first_contact_date", "created_at", "date_created",
                         "submitted_at", "erstellt_am", "angelegt_am", "date_de_creation", "fecha_de_creacion",
                         "created"),
        "channel": ("channel", "lead_source", "leadsource", "utm_source", "origin", "source", "medium",
                    "utm_medium", "campaign", "kanal", "quelle", "canal"),
        "owner": ("owner", "lead_owner", "owner_id", "ownerid", "sdr", "sdr_id", "assigned_to", "verantwortlich",
                  "zustandig", "responsable"),
        "segment": ("segment", "customer_segment", "business_segment"),
        "mql_date": ("mql_date", "mql_at", "marketing_qualified_date", "became_mql_date", "mql_datum"),
        "sql_date": ("sql_date", "sql_at", "sales_qualified_date", "converted_date", "converteddate", "sql_datum"),
        "deal_id": ("deal_id", "opportunity_id", "converted_opportunity_id", "convertedopportunityid"),
    },
    "activities": {
        "activity_id": ("activity_id", "task_id", "event_id", "id"),
        "date": ("date", "activity_date", "activitydate", "occurred_at", "done_date", "completed_at", "when"),
        "owner": ("owner", "owner_id", "ownerid", "rep", "user", "assigned_to"),
        "type": ("type", "activity_type", "tasksubtype", "kind", "category"),
        "account_id": ("account_id", "accountid", "account", "company"),
    },
    "spend": {
        "month": ("month", "spend_month", "period", "date"),
        "channel": ("channel", "platform", "medium", "source", "campaign"),
        "amount": ("amount", "spend", "cost", "actual_cost", "actualcost", "ad_spend"),
    },
    "quotas": {
        "owner": ("owner", "rep", "sales_rep", "owner_name"),
        "period": ("period", "quarter", "month"),
        "quota": ("quota", "quota_amount", "target"),
    },
    "tickets": {
        "ticket_id": ("ticket_id", "case_id", "case_number", "ticket_number", "id"),
        "account_id": ("account_id", "accountid", "customer_id", "organization_id", "account", "company"),
        "opened_at": ("opened_at", "submitted_at", "created_at", "reported_at", "createddate", "opened", "created"),
        "resolved_at": ("resolved_at", "solved_at", "closed_at", "closeddate", "resolved", "closed"),
        "first_response_at": ("first_response_at", "first_reply_at", "first_responded_at", "first_reply_time"),
    },
    "events": {
        "user_id": ("user_id", "userid", "distinct_id", "anonymous_id", "user"),
        "account_id": ("account_id", "accountid", "company_id", "group_id", "account"),
        "timestamp": ("timestamp", "event_time", "occurred_at", "event_timestamp", "ts", "time"),
        "feature": ("feature", "event_name", "event", "action"),
    },
    "nps": {
        "account_id": ("account_id", "accountid", "customer_id", "account", "company"),
        "date": ("date", "responded_at", "survey_date", "response_date", "submitted_at"),
        "score": ("score", "nps_score", "nps", "rating", "likelihood_to_recommend"),
    },
    "accounts": {
        "account_id": ("account_id", "accountid", "company_id", "customer_id", "account", "id"),
        "name": ("name", "account_name", "company_name", "company"),
        "segment": ("segment", "customer_segment", "market_segment", "tier", "size"),
        "industry": ("industry", "sector", "vertical"),
        "csm": ("csm", "customer_success_manager", "account_manager", "success_manager"),
        "created_date": ("created_date", "createddate", "created_at", "signup_date", "customer_since"),
    },
    "timesheets": {
        "entry_id": ("entry_id", "timesheet_id", "id"),
        "date": ("date", "work_date", "entry_date"),
        "owner": ("owner", "consultant", "employee", "user"),
        "hours": ("hours", "duration_hours", "time_spent"),
        "billable": ("billable", "is_billable"),
        "account_id": ("account_id", "account", "client"),
        "project": ("project", "project_name"),
    },
}
# Names that say little on their own: they count, but cannot make a table on their own.
GENERIC = {"id", "date", "type", "kind", "name", "source", "value", "total", "created", "closed", "opened", "start",
           "end", "user", "account", "company", "customer", "client", "time", "event", "state", "period", "month",
           "category", "campaign", "size", "tier", "product", "plan", "since", "until", "when", "rep", "action",
           "started", "ended", "close", "resolved"}
# Close-date names that say the deal was won (a file of won deals has no status column).
WON_DATES = {"won_date", "won_at", "closed_won_date", "date_won"}
# Columns a lead link may be in: a deal's created date can come from the lead it came from.
LEAD_LINKS = ("mql_id", "lead_id", "leadid", "converted_lead_id")
# Of a table's columns: a second ARR column stands in for a missing MRR (ARR / 12).
ARR_NAMES = ("arr", "arr_amount", "annual_recurring_revenue", "annual_value", "annual_amount")


@dataclass(frozen=True)
class TableFit:
    """How well a file fits one canonical table: the columns found, what is missing, and why."""

    table: str
    score: float
    columns: dict[str, str]  # canonical column → file header
    missing: tuple[str, ...]  # required canonical columns no header (or rule) provides
    evidence: tuple[str, ...]  # "deal_id ← Id", for the user
    fill: dict[str, str] = field(default_factory=dict)  # canonical column → constant (or default for blanks)
    derive: dict[str, str] = field(default_factory=dict)  # canonical column → how it is derived (a rule name)
    rules: tuple[str, ...] = ()
    confident: bool = False  # at least one required column matched by a specific (not generic) name

    @property
    def complete(self) -> bool:
        return not self.missing


# --- value checks -------------------------------------------------------------------------------

_DATE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{4}-\d{1,2}\Z|\d{8}\Z|\d{9,13}\Z|"
    r"\d{1,2}[ -][A-Za-z]{3,9}[ -,]+\d{2,4}|[A-Za-z]{3,9}\.? \d{1,2},? \d{4})"
)
_NUMBER = re.compile(r"^\s*[(-]?\s*([A-Za-z]{3}|[$€£¥₹])?\s*[-(]?[0-9][0-9.,\s\u00a0']*\)?\s*([A-Za-z]{3}|[$€£¥₹])?\s*-?")


def _reads_as(kind: ColumnType, value: str) -> bool:
    if kind in (ColumnType.DATE, ColumnType.TIMESTAMP):
        return bool(_DATE.match(value))
    if kind in (ColumnType.MONEY, ColumnType.NUMBER, ColumnType.INTEGER):
        return bool(_NUMBER.fullmatch(value))
    return True


def _values_fit(kind: ColumnType, values: list[str]) -> bool:
    """True when most non-empty sample values read as the column's type (no values: no evidence against)."""
    filled = [v for v in values if v.strip()]
    if not filled:
        return True
    return sum(_reads_as(kind, v) for v in filled) >= 0.6 * len(filled)


def has_dates(headers: list[str], sample: list[list[str]]) -> bool:
    """True when some column's sample values read as dates (a snapshot without one cannot be dated)."""
    values = _column_values(headers, sample)
    return any(any(v.strip() for v in vs) and _values_fit(ColumnType.DATE, vs) for vs in values.values())


# --- scoring ----------------------------------------------------------------------------------------


def _column_values(headers: list[str], sample: list[list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {h: [] for h in headers}
    for row in sample:
        for h, v in zip(headers, row, strict=False):
            out[h].append(v)
    return out


def _stem(file_name: str) -> str:
    base = re.split(r"[:/\\]", file_name)[-1].split(".")[0]
    return normalise_header(base)


def _stem_names(table: str) -> set[str]:
    single = table[:-1] if table.endswith("s") else table
    return {table, single, f"{table}_export", f"{single}_export", f"export_{table}"}


_PREFIXED = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z][A-Za-z0-9_ ]*)\s*")


def attribute(header: str) -> str | None:
    """`subscriptions.customer_id` → `customer_id`: the column of an `object.attribute` header, or None.

    Billing and BI exports (Chargebee, Looker, dbt) name columns after their object; the attribute
    alone is what a person would call the column, so it is matched when the full name is not."""
    m = _PREFIXED.fullmatch(header)
    return normalise_header(m.group(2)) if m else None


def _prefix(headers: list[str]) -> str | None:
    """The object most headers are prefixed with (`subscriptions` of `subscriptions.mrr`, …), or None."""
    objects = [normalise_header(m.group(1)) for h in headers if (m := _PREFIXED.fullmatch(h))]
    top = max(set(objects), key=objects.count, default=None)
    return top if top and objects.count(top) * 2 >= len(headers) else None


def _header_keys(headers: list[str]) -> dict[str, str]:
    """Normalised name → header: full names first, then the attribute of an `object.attribute` header."""
    by_key: dict[str, str] = {}
    for h in headers:
        by_key.setdefault(normalise_header(h), h)
        by_key.setdefault(normalise_header(h).replace("_", ""), h)
    for h in headers:
        if (a := attribute(h)) is not None:
            by_key.setdefault(a, h)
            by_key.setdefault(a.replace("_", ""), h)
    return by_key


def fit_table(table: str, headers: list[str], sample: list[list[str]] | None = None,
              file_name: str = "") -> TableFit:
    """The best reading of the headers as `table`: which header is which column, and how sure that is."""
    by_key = _header_keys(headers)
    values = _column_values(headers, sample or [])
    t = TABLES[table]
    synonyms = SYNONYMS.get(table, {})
    taken: set[str] = set()
    columns: dict[str, str] = {}
    evidence: list[str] = []
    score = 0.0
    confident = False
    # Required columns choose first: `id` is a deal's id before it is anything else's.
    order = sorted(t.columns, key=lambda c: not c.required)
    for col in order:
        names = synonyms.get(col.name, (col.name,))
        if col.name not in names:
            names = (col.name, *names)
        for name in names:
            header = by_key.get(normalise_header(name)) or by_key.get(normalise_header(name).replace("_", ""))
            if header is None or header in taken:
                continue
            exact = col.name in (normalise_header(header), attribute(header))
            # A canonical name is the user's own statement; a synonym must also look like the data.
            if not exact and not _values_fit(col.type, values.get(header, [])):
                continue
            taken.add(header)
            columns[col.name] = header
            generic = normalise_header(name) in GENERIC
            weight = 3.0 if exact else 1.0 if generic else 2.0
            if col.required:
                weight *= 1.5
                confident = confident or not generic
            score += weight
            how = "" if exact else " (synonym)" if not generic else " (generic name)"
            evidence.append(f"{col.name} ← {header}{how}")
            break
    fill: dict[str, str] = {}
    derive: dict[str, str] = {}
    rules: list[str] = []
    if table == "deals":
        _deal_rules(columns, by_key, fill, derive, rules)
    if table == "subscriptions" and "mrr" not in columns:
        arr = next((by_key[n] for n in ARR_NAMES if n in by_key and by_key[n] not in taken), None)
        if arr:
            columns["mrr"] = arr
            derive["mrr"] = "arr"
            evidence.append(f"mrr ← {arr} ÷ 12")
            rules.append(f"mrr is {arr!r} ÷ 12 (the file has an annual amount, no monthly one)")
            score += 3.0
    missing = tuple(c for c in t.required if c not in columns and c not in fill and c not in derive
                    and not (table == "deals" and c == "status" and "stage" in columns))
    score -= 4.0 * len(missing)
    if _stem(file_name) in _stem_names(table):
        score += 3.0
        evidence.append(f"file name {file_name.split(':')[-1]!r}")
    prefix = _prefix(headers)
    if prefix and prefix in _stem_names(table):
        score += 3.0
        evidence.append(f"columns named {prefix}.…")
    # A key alone (`account_id`) says little: a churn log or a ticket list has one too.
    confident = confident and len(columns) >= 2
    if table == "subscriptions" and _billing_file(by_key):
        score += 3.0
        evidence.append("the file names subscriptions (a subscription id, or a plan beside a price)")
    if table == "accounts" and _billing_file(by_key):
        # Its customer id and created date fit accounts, and loaded as accounts it gives no ARR at all (trial E's
        # Braintree subscriptions, "2 used, 19 kept as extra text", nothing asked): the user decides.
        confident = False
        evidence.append("the file names subscriptions (a subscription id, or a plan beside a price): not read as "
                        "accounts without asking")
    return TableFit(table, score, columns, missing, tuple(evidence), fill, derive, tuple(rules), confident)


_SUBSCRIPTION_IDS = {"subscription_id", "subscriptionid", "subscription", "sub_id"}
_PLANS = {"plan", "plan_id", "plan_name", "plan_code", "price_id", "price_plan"}
_PRICES = {"price", "plan_price", "unit_price", "unit_amount", "plan_amount", "recurring_amount", "billing_amount"}


def _billing_file(by_key: dict[str, str]) -> bool:
    """The headers name subscriptions: a subscription id, or a plan beside its price."""
    keys = set(by_key)
    return bool(keys & _SUBSCRIPTION_IDS) or bool(keys & _PLANS and keys & _PRICES)


def _deal_rules(columns: dict[str, str], by_key: dict[str, str], fill: dict[str, str], derive: dict[str, str],
                rules: list[str]) -> None:
    """Constants and defaults a deals file without some columns still loads with, each stated."""
    close = columns.get("close_date")
    if "status" not in columns and "stage" not in columns and close and normalise_header(close) in WON_DATES:
        fill["status"] = "won"
        rules.append(f"every row is a won deal: the file has a won date ({close!r}) and no status or stage")
    link = next((by_key[n] for n in LEAD_LINKS if n in by_key), None)
    if link:
        columns["lead_link"] = link
        rules.append(f"each deal links to its lead by {link!r}: a leads file of the same load gives the lead its "
                     "deal_id (lead conversion) and the deal its channel where it has none")
    if "created_date" not in columns and close:
        derive["created_date"] = "lead" if link else "close"
        if link:
            rules.append(f"created_date: the linked lead's created date ({link!r} → the leads file of this load), "
                         f"else the close date ({close!r}); cycle lengths need both")
        else:
            rules.append(f"created_date: the file has none, so the close date ({close!r}) is used — "
                         "sales-cycle length is then 0")
    fill.setdefault("deal_type", "new")
    rules.append("a blank or missing deal_type counts as new business (change it in the file's mapping)")
    if "amount" not in columns:
        rules.append("no amount column: amount metrics (bookings, deal size) show 'no data'; counts and rates work")


def fit_tables(headers: list[str], sample: list[list[str]] | None = None, file_name: str = "") -> list[TableFit]:
    """Every canonical table's fit, best first (complete fits before incomplete ones of the same score)."""
    fits = [fit_table(t, headers, sample, file_name) for t in TABLES]
    return sorted(fits, key=lambda f: (-f.score, len(f.missing), f.table))


def best_fit(headers: list[str], sample: list[list[str]] | None = None, file_name: str = "") -> TableFit | None:
    """The table these headers fit best: the best complete and confident fit, else the closest one to report.

    A fit counts when it has at least half of its table's required columns. When none is complete
    and confident, the one that explains most columns is returned, so the user hears "looks like
    subscriptions but lacks start_date" rather than "accounts" because of a shared id.
    """
    fits = [f for f in fit_tables(headers, sample, file_name)
            if len(TABLES[f.table].required) - len(f.missing) >= max(1, (len(TABLES[f.table].required) + 1) // 2)]
    sure = [f for f in fits if f.complete and f.confident]
    if sure:
        return sure[0]
    return max(fits, key=lambda f: (len(f.columns), f.score), default=None)


# --- files that are not data ------------------------------------------------------------------------

_DICTIONARY = ({"table", "field", "description"}, {"column", "description"}, {"column_name", "description"},
               {"field", "description"}, {"field_name", "description"}, {"variable", "description"},
               {"field", "definition"}, {"column", "definition"}, {"attribute", "description"})
_CALENDAR = {"date_key", "day_of_week", "day_name", "month_name", "week_of_year", "is_weekend", "is_holiday",
             "fiscal_year", "fiscal_quarter", "quarter", "year", "day_of_month", "iso_week"}


def not_data(headers: Iterable[str]) -> str | None:
    """Why a file holds no business data (a data dictionary, a calendar table), or None."""
    names = {normalise_header(h) for h in headers}
    if len(names) <= 6 and any(d <= names for d in _DICTIONARY):
        return "a data dictionary (it describes columns; it holds no records)"
    if len(names & _CALENDAR) >= 3 and not names - _CALENDAR - {"date", "month", "week", "day", "month_number"}:
        return "a calendar (date dimension) table of a BI tool: it holds no business records"
    return None


_CHURN_DATES = {"churn_date", "churned_at", "churned_on", "cancellation_date", "cancelled_at", "canceled_at"}


def not_needed(headers: Iterable[str]) -> str | None:
    """Why a data file is recognised but not loaded (its facts come from another table), or None."""
    names = {normalise_header(h) for h in headers}
    starts = {"start_date", "started_at", "signup_date", "mrr", "mrr_amount", "month"}
    if names & _CHURN_DATES and not names & starts and len(names) <= 8:
        return ("a churn log: not needed, churn is read from the subscriptions' end dates (a billing export "
                "with start and end dates)")
    return None


# --- the mapping screen's first guesses -------------------------------------------------------------


def suggest_table(headers: list[str], sample: list[list[str]] | None = None, file_name: str = "") -> str:
    """The table to offer first for a file the user maps by hand."""
    return fit_tables(headers, sample, file_name)[0].table


def suggest_mapping(headers: list[str], table: str, sample: list[list[str]] | None = None) -> dict[str, str | None]:
    """For each column of `table`, the header that most likely holds it (or None), for the user to confirm.

    The scored fit first; a header spelled close to a column's name (`closedate_1`) after that.
    """
    fit = fit_table(table, headers, sample)
    taken = set(fit.columns.values())
    by_key = {**{a: h for h in headers if (a := attribute(h)) is not None}, **{normalise_header(h): h for h in headers}}
    out: dict[str, str | None] = {}
    for col in TABLES[table].columns:
        found = fit.columns.get(col.name)
        if found is None:
            free = [k for k, h in by_key.items() if h not in taken]
            close = difflib.get_close_matches(col.name, free, n=1, cutoff=0.75)
            found = by_key[close[0]] if close else None
            if found:
                taken.add(found)
        out[col.name] = found
    return out


# --- columns that are no segment -----------------------------------------------------------------

# A lifecycle column says where a row is in its life (a subscription goes from active to cancelled,
# a deal from open to won): splitting a number by it compares a thing with itself later, so every
# gap it shows is the lifecycle, not a segment. Names after `normalise_header` and the object prefix.
_LIFECYCLE_NAME = re.compile(
    r"(^|_)(status|stage|lifecycle|lifecyclestage|lifecycle_stage|outcome)$|^stage_|"
    # a status's label, id or type under any vendor's naming (Close's status_label / status_type / status_id)
    r"(^|_)(status|stage|deal_?stage|pipeline_?stage)_?(label|name|id|type|code|key|text|display)$|"
    r"^(is_?|has_?been_?)?(won|lost|closed|deleted|archived|active|inactive|churned|cancell?ed|converted|"
    r"expired|open)(_flag)?$", re.IGNORECASE)
# `state` is a lifecycle only with lifecycle values: it is just as often a region (a US state).
_LIFECYCLE_VALUES = frozenset({
    "active", "inactive", "cancelled", "canceled", "churned", "paused", "in_trial", "in trial", "trialing",
    "trial", "non_renewing", "non-renewing", "future", "open", "closed", "won", "lost", "closed won",
    "closed lost", "pending", "expired", "past_due", "past due", "unpaid", "incomplete", "incomplete_expired",
    "deleted", "archived", "draft", "ended", "terminated", "suspended", "renewed", "new", "converted",
})
# An outcome's reason (why a deal was lost or won, why a customer churned) exists only for the rows
# that reached that outcome: a split by it puts every other row in "(none)" and reads the outcome
# itself as a segment ("No budget deals: pipeline velocity $0/day against $0/day").
_OUTCOME_REASON = re.compile(
    r"(^|_)(lost|loss|won|win|close|closed|closing|churn|churned|cancel|cancell?ation|cancelled|canceled|"
    r"disqualif(y|ied|ication)|rejection|rejected|decline|declined)_?(reason|reasons|cause|detail|details|"
    r"code|category)$|(^|_)reason_?(lost|won|for_(loss|losing|churn|cancell?ation))$", re.IGNORECASE)
# A period label: one value per period, so a split by it is the time axis again.
_PERIOD_NAME = re.compile(
    r"(^|_)(fiscal_?(period|quarter|year|month|week)?|period|quarter|month|year|week|fy|fq)$|^(fiscal|fy)_|"
    r"^(close|closed|created|create|start|end|billing|booking|invoice|signup)_?(month|quarter|year|week|period)"
    r"(_?(label|name))?$",
    re.IGNORECASE)
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_PERIOD_VALUE = re.compile(  # numbers alone need a 4-digit year: "11-50" is a size band, not a period
    rf"(fy\s?\d{{2,4}}|\d{{4}})([-/ ]?(q[1-4]|h[12]|p\d{{1,2}}|w\d{{1,2}}))?|(q[1-4]|h[12])[-/ ]?(fy\s?)?'?\d{{2,4}}|"
    rf"({_MONTHS})[a-z]*\.?[-/ ]?'?\d{{2,4}}|\d{{4}}[-/ ]({_MONTHS})[a-z]*",
    re.IGNORECASE)


# How often something bills (Zuora's BillingPeriod, a plan's interval): a customer's plan, not a period label,
# though the column is named like one (`billing_period`).
_FREQUENCY_VALUES = frozenset({
    "month", "monthly", "quarter", "quarterly", "annual", "annually", "year", "yearly", "semi-annual",
    "semi_annual", "semiannual", "semi-annually", "week", "weekly", "day", "daily", "two years", "three years",
    "biennial", "eighteen months", "specific months", "specific weeks", "subscription term"})
# A yes/no flag: a split by it names its rows "False automatic customers" and "True …" — a property
# of each row, not a group anyone owns or acts on. Values after lower-casing; names that are flags.
_BOOLEAN_VALUES = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f", "0", "1", "0.0", "1.0", "on", "off",
                             "checked", "unchecked", "ja", "nein", "oui", "non", "si", "sí", "wahr", "falsch"})
_FLAG_NAME = re.compile(r"^(is|has|can|should|allow|allows|enable|enabled|auto)_|(_flag|_yn|_bool)$|"
                        r"^auto_?renew(al|s)?$|^opt_?(in|out)$", re.IGNORECASE)
# Free text a person types per row (a next step, a description, notes): every value is its own, so a
# split by it is one bar per sentence, and a few repeated phrases make no segment either.
_FREE_TEXT_NAME = re.compile(
    r"(^|_)(next_?steps?|descriptions?|desc|notes?|comments?|remarks?|summary|subject|memo|message|body|"
    r"free_?text|annotations?|observations?|feedback)$", re.IGNORECASE)


# A person the row is about or written to (Copper's Primary Contact, a deal's contact): one person per row or
# two, so a split by it names people ("Jane Roe deals"), not a group anyone owns; an owner is a canonical column.
_PERSON_NAME = re.compile(
    r"(^|_)(primary_|main_|key_|billing_|point_of_)?(contact|contacts|contact_person|contact_name|contact_email|"
    r"recipient|signatory|signer|champion|decision_maker|buyer_name)$|^(customer|contact|buyer|billing)_?"
    r"(e_?mail|phone|mobile)$", re.IGNORECASE)
# Free tags (Copper's and HubSpot's Tags, labels, keywords): a row carries several, one or none, typed as anyone
# liked, so a split by them counts a row under one arbitrary tag and the rest under "(none)".
_TAGS_NAME = re.compile(r"^((deal|opportunity|opp|account|company|contact|lead|customer|record)_)?"
                        r"(tags?|labels|keywords?|hashtags?)$", re.IGNORECASE)

# How a customer pays (the card's brand, last four digits, expiry, the payment method): a detail of each
# payment, not a group anyone owns or acts on — trial F's explanation named "Pro yearly × visa" as a cause.
_PAYMENT_NAME = re.compile(
    r"(^|_)(card|cc|credit_?card)_?(brand|type|last_?(four|4|digits)|last4|exp(iry|iration)?_?(month|year|date)?|"
    r"country|funding|fingerprint|issuer|network|holder(_name)?)$|"
    r"(^|_)payment_?(method|methods|method_?type|type|processor|provider|gateway|instrument|card|source)$|"
    r"(^|_)(pm|paypal)_?(type|email)$", re.IGNORECASE)


def _sentences(found: list[str]) -> bool:
    """Most values are phrases of five words or more: typed text, not category labels."""
    distinct = set(found)
    return len(distinct) >= 2 and sum(len(v.split()) >= 5 for v in distinct) * 2 >= len(distinct)


def not_a_segment(column: str, values: Iterable[str] | None = None) -> str | None:
    """Why an extra column must not be offered as a drill dimension (a lifecycle status or stage, a
    period label, a yes/no flag, free text, a contact person, free tags, a payment detail), or None.

    Judged by the column's name (`status`, `subscriptions.status`, `is_won`, `fiscal_period`,
    `close_month`, `auto_renew`, `next_step`, `description`, `primary_contact`, `tags` …) or, where the name says nothing, by its
    values: all of them lifecycle words (active / cancelled / in_trial …), all period labels (Q3-2025,
    FY26, Oct 2026), all true / false (yes / no), or mostly sentences."""
    name = attribute(column) or normalise_header(column)
    if name.startswith("subscriptions_") or name.startswith("customers_"):
        name = name.split("_", 1)[1]  # `subscriptions.status` stored as the extra column `subscriptions_status`
    found = [v.strip().lower() for v in (values or ()) if v and v.strip()]
    if _LIFECYCLE_NAME.search(name) or (name.endswith("state") and found and set(found) <= _LIFECYCLE_VALUES):
        return "a lifecycle status (a row moves from one value to the next), not a segment"
    if _OUTCOME_REASON.search(name):
        return "the reason for an outcome (only the rows that had it hold a value), not a segment"
    if _PAYMENT_NAME.search(name):
        return "a payment detail (how each customer pays: card brand, last four digits, method), not a segment"
    if _PERIOD_NAME.search(name) and not (found and set(found) <= _FREQUENCY_VALUES):
        return "a period label (one value per period), not a segment"
    if found and set(found) <= _LIFECYCLE_VALUES and len(set(found)) >= 2:
        return "a lifecycle status (a row moves from one value to the next), not a segment"
    if found and all(_PERIOD_VALUE.fullmatch(v) for v in found):
        return "a period label (one value per period), not a segment"
    # 0 / 1 alone is as often a count (seats, quantity) as a flag: a flag then only by its name.
    worded = bool(set(found) - {"0", "1", "0.0", "1.0"})
    if (found and set(found) <= _BOOLEAN_VALUES and (worded or _FLAG_NAME.search(name))) or \
            (_FLAG_NAME.search(name) and not found):
        return "a yes/no flag (true / false for each row), not a segment"
    if _FREE_TEXT_NAME.search(name) or (found and _sentences(found)):
        return "free text typed per row (next steps, descriptions, notes), not a segment"
    if _PERSON_NAME.search(name):
        return "a person each row names (a contact), not a segment"
    if _TAGS_NAME.search(name):
        return "free tags (a row has several, one or none), not a segment"
    return None
