"""Which tool exported a file, and how its columns become canonical columns.

A `Mapping` says, for one file layout, which of the file's columns are read as what (`Input`)
and how each output column is computed from them (`Field`, a small SQL template). `ingest`
turns a mapping into SQL; nothing here touches data. Layouts known by their headers:

- HubSpot deals export, Zoho CRM deals export, Salesforce opportunities report, Pipedrive deals
  export → `deals`;
- Salesforce object exports with API field names (Data Loader, Workbench, `sf data export`):
  Opportunity → `deals`, Lead → `leads`, Account → `accounts`, Campaign → `spend`, User as a side
  file naming owners and their managers; OpportunityHistory, Contact and CampaignMember are
  recognised and not needed;
- Stripe subscriptions export (Dashboard labels or API field names) → `subscriptions`;
- Chargebee subscriptions export (`subscriptions.customer_id`, `subscriptions.mrr` … headers) → `subscriptions`;
- Recurly subscriptions export (`account_code`, `plan_code`, `unit_amount`, `expires_at` …) → `subscriptions`;
- Chargify / Maxio subscriptions export (`state`, `product_price_in_cents`, `current_period_ends_at` …) →
  `subscriptions`; Close opportunities export (`status_type`, `value` in cents, `value_period` …) → `deals`;
- Freshsales (Freshworks CRM) deals export (`Sales owner`, `Deal stage`, `Base currency amount` …) → `deals`;
- Dynamics 365 Sales opportunities export (`(Do Not Modify) Opportunity`, `Est. Revenue`, `Actual Close Date` …)
  → `deals`; Zuora rate plan charges data source (`RatePlanCharge.MRR`, `RatePlanCharge.EffectiveStartDate` …,
  one row per charge segment) → `subscriptions`;
- Paddle Billing subscriptions written out from its API (`billing_cycle.interval`, `first_billed_at`,
  `items[0].price.unit_price.amount` in the currency's lowest unit …) → `subscriptions`;
- Lemon Squeezy subscriptions export (`variant_id`, `renews_at`, `ends_at` …; no price: its variants export beside
  it gives price and interval by `variant_id`, or an `mrr` column) → `subscriptions`;
- Braintree subscriptions export (`Plan ID`, `Price` per billing cycle, `First Billing Date`, `Paid Through Date` …)
  → `subscriptions`; Copper CRM opportunities export (`Copper ID`, Status Open / Won / Lost / Abandoned …) → `deals`;
- Insightly opportunities export (`OPPORTUNITY_STATE`, `BID_AMOUNT` by `BID_TYPE` …) → `deals`;
- the "CRM Sales Opportunities" sample (`sales_pipeline.csv` → `deals`, `accounts.csv` →
  `accounts`, with `products.csv` and `sales_teams.csv` as side files joined into deals).

Header text is a display label that users rename and that varies by vendor version
(/work/notes/vendor_exports.md), so headers are matched by `normalise_header` against alias
lists, and missing optional columns are fine. Anything else is scored against every canonical
table (`detect.py`), or maps by a mapping a user saved for that exact header set (`header_key`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from .errors import LoadError
from .schema import TABLES, ColumnType

# --- value vocabularies ----------------------------------------------------------------------

# Lower-cased synonyms of the enumerated canonical columns, as CRM exports write them.
STATUS_SYNONYMS = {
    "won": "won", "closed won": "won", "closedwon": "won", "closed-won": "won", "win": "won",
    "lost": "lost", "closed lost": "lost", "closedlost": "lost", "closed-lost": "lost",
    "open": "open", "in progress": "open", "active": "open", "pending": "open",
    # Copper's fourth status: closed without a sale (and without a loss recorded) — a deal that went nowhere.
    "abandoned": "lost",
}
DEAL_TYPE_SYNONYMS = {
    "new": "new", "new business": "new", "newbusiness": "new", "new customer": "new",
    "new logo": "new", "expansion": "expansion", "upsell": "expansion", "upgrade": "expansion",
    "cross-sell": "expansion", "cross sell": "expansion", "existingbusiness": "expansion",
    "existing business": "expansion", "existing customer - upgrade": "expansion",
    "price increase": "expansion", "renewal": "renewal", "renew": "renewal",
    # Salesforce's default Type picklist: a replacement or downgrade re-contracts an existing
    # customer without growing it, which is what a renewal is here (inference, see report rules).
    "existing customer - replacement": "renewal", "existing customer - downgrade": "renewal",
}
ACTIVITY_SYNONYMS = {
    "phone call": "call", "calls": "call", "emails": "email", "meetings": "meeting",
    "health check": "health_check", "health-check": "health_check", "check-in": "health_check",
    "demos": "demo", "proposals": "proposal",
}
INTERVAL_SYNONYMS = {
    "month": "month", "monthly": "month", "year": "year", "yearly": "year", "annual": "year",
    "annually": "year", "week": "week", "weekly": "week", "day": "day", "daily": "day",
}
# Default stage → status of each vendor's out-of-the-box pipeline (keys: `stage_key`). Sources:
# HubSpot default "Sales Pipeline" labels and internal ids, Salesforce default StageName
# picklist, Pipedrive default pipeline, CRM Sales Opportunities deal_stage values (notes §1-5).
STAGE_DEFAULTS: dict[str, str] = {
    **{s: "open" for s in (
        "appointment scheduled", "appointmentscheduled", "qualified to buy", "qualifiedtobuy",
        "presentation scheduled", "presentationscheduled", "decision maker bought-in",
        "decisionmakerboughtin", "contract sent", "contractsent",
        "prospecting", "qualification", "needs analysis", "value proposition", "id. decision makers",
        "perception analysis", "proposal/price quote", "negotiation/review",
        "lead in", "qualified", "contact made", "demo scheduled", "proposal made", "negotiations started",
        "engaging",
        # Zoho CRM's default Deals stages (the open ones; "Closed Won" / "Closed Lost" are above).
        "identify decision makers",
    )},
    # Zoho CRM's third closing stage: lost, to a competitor (written with and without the hyphen).
    **{s: "lost" for s in ("closed-lost to competition", "closed lost to competition", "closed - lost to competition")},
    **{k: v for k, v in STATUS_SYNONYMS.items()},
}
# Stripe's zero-decimal currencies: amounts are already whole units (Stripe docs, "Zero-decimal currencies").
ZERO_DECIMAL_CURRENCIES = (
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
)


def stage_key(stage: str) -> str:
    """How stage names are compared: lower case, single spaces (`Closed  Won ` → `closed won`)."""
    return re.sub(r"\s+", " ", stage.strip().lower())


def normalise_header(name: str) -> str:
    """`Close Date` → `close_date`: headers are matched case-, space- and punctuation-insensitively."""
    out = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip().lstrip("\ufeff")).strip("_").lower()
    return out or "column"


def header_key(headers: Iterable[str]) -> str:
    """A stable key of a header set (order and case ignored): names a saved mapping."""
    names = sorted({normalise_header(h) for h in headers})
    return hashlib.sha256("\x1f".join(names).encode()).hexdigest()[:16]


# --- the mapping model -----------------------------------------------------------------------


class Kind(StrEnum):
    """How an input's text is read."""

    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    NUMBER = "number"
    INTEGER = "integer"
    BOOL = "bool"
    ENUM = "enum"

    @classmethod
    def of(cls, t: ColumnType) -> Kind:
        return {
            ColumnType.ID: cls.TEXT, ColumnType.TEXT: cls.TEXT, ColumnType.DATE: cls.DATE,
            ColumnType.TIMESTAMP: cls.TIMESTAMP, ColumnType.MONEY: cls.NUMBER, ColumnType.NUMBER: cls.NUMBER,
            ColumnType.INTEGER: cls.INTEGER,
        }[t]


@dataclass(frozen=True)
class Input:
    """One value read from the file: the first non-empty of `columns`, read as `kind`.

    A value that is present but unreadable rejects the row, naming the column. An ENUM maps
    `synonyms` then checks `allowed`: unknown values reject the row, or with `lenient` become
    empty and are listed in the report's warnings.
    """

    columns: tuple[str, ...]
    kind: Kind = Kind.TEXT
    required: bool = False
    synonyms: tuple[tuple[str, str], ...] = ()
    allowed: tuple[str, ...] = ()
    lenient: bool = False

    @property
    def label(self) -> str:
        return " / ".join(self.columns)


@dataclass(frozen=True)
class Field:
    """An output column: SQL over inputs (`{name}` typed, `{name.text}` as text) and earlier fields (`{=name}`)."""

    sql: str
    input: str | None = None  # the input named in messages about this field
    note: str | None = None  # how the value is made, when it is not simply a file column (shown to the user)


@dataclass(frozen=True)
class Check:
    """A row rule beyond the canonical ones: rows where `sql` is true are rejected with `reason` (SQL text)."""

    sql: str
    input: str
    reason: str


@dataclass(frozen=True)
class Note:
    """A warning counted over the loaded rows: `message` gets `{n}` and `{line}` (first such row)."""

    sql: str
    message: str


@dataclass(frozen=True)
class Join:
    """A side file joined into each row: `LEFT JOIN <side table> AS alias ON <on>` (`on` is a template)."""

    side: str
    alias: str
    on: str


# Columns a side file offers to the rows that join it; absent side files join as empty tables.
SIDE_COLUMNS: dict[str, dict[str, str]] = {
    "products": {"product_key": "VARCHAR", "list_price": "DOUBLE", "series": "VARCHAR"},
    "sales_teams": {"sales_agent": "VARCHAR", "manager": "VARCHAR", "regional_office": "VARCHAR"},
    "accounts": {"account_id": "VARCHAR", "segment": "VARCHAR", "industry": "VARCHAR"},
    # Every leads file of a load: a won-deals file that links to its lead takes the lead's date and channel.
    "leads": {"lead_id": "VARCHAR", "created_date": "DATE", "channel": "VARCHAR"},
    # A Salesforce User export: OwnerId → the owner's name, and the manager above each owner.
    "users": {"user_id": "VARCHAR", "user_name": "VARCHAR", "manager_id": "VARCHAR"},
    # A Lemon Squeezy variants export: the price (cents) and billing interval its subscriptions carry no copy of.
    "variants": {"variant_id": "VARCHAR", "price_cents": "DOUBLE", "interval": "VARCHAR", "interval_count": "DOUBLE",
                 "variant_name": "VARCHAR"},
}


@dataclass(frozen=True)
class Mapping:
    """How one file layout becomes rows of a canonical table (or of a side table)."""

    source: str  # canonical, snapshots, saved, hubspot, zoho, freshsales, dynamics, close, copper, insightly, chargify, paddle, zuora, braintree, salesforce, pipedrive, stripe, chargebee, recurly, crm_sample
    label: str
    table: str  # canonical table; "" for a side file
    inputs: dict[str, Input]
    fields: dict[str, Field]
    file_status: str | None = None  # deals: SQL giving open/won/lost from the file's own flags
    stage_input: str | None = None  # deals: input whose values go through the stage map
    checks: tuple[Check, ...] = ()
    notes: tuple[Note, ...] = ()
    skip: tuple[tuple[str, str], ...] = ()  # (SQL, reason): rows left out on purpose, not errors
    joins: tuple[Join, ...] = ()
    side: str | None = None  # the side table this file provides (products, sales_teams, accounts)
    key: str | None = None  # row identity for duplicates/append when the table has none
    rules: tuple[str, ...] = ()  # the assumptions made, in words, for the report
    cautions: tuple[str, ...] = ()  # what the data itself does to the numbers (warnings, kept with the load)
    facts: dict[str, str] = field(default_factory=dict)  # SQL aggregates over inputs, for `refine`
    refine: Callable[[Mapping, dict], Mapping] | None = None
    ignore: bool = False  # documentation that travels with the data (a data dictionary): not loaded
    evidence: tuple[str, ...] = ()  # why the file was read this way (headers matched), for the user
    refuse: str | None = None  # why this layout cannot load the file as it is, and what to do (the load says so)

    @property
    def used_columns(self) -> set[str]:
        return {c for i in self.inputs.values() for c in i.columns}

    def describe(self) -> dict[str, str]:
        """Output column → the file column(s) it comes from, for the report and the UI."""
        out = {}
        for name, f in self.fields.items():
            refs = set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.text)?\}", f.sql))
            src = self.inputs.get(f.input) if f.input else None
            if f.note:
                out[name] = f.note
            elif src is not None:
                out[name] = src.label
            elif not refs or refs & set(self.inputs):
                out[name] = "derived"
        if self.table == "deals" and "status" not in out:
            parts = [self.inputs[self.stage_input].label + " (stage map)"] if self.stage_input else []
            out["status"] = " / ".join(["file flags", *parts]) if self.file_status else (parts[0] if parts else "")
        return out


class Headers:
    """The file's headers, found by alias (`normalise_header` comparison, first alias first)."""

    def __init__(self, headers: list[str]) -> None:
        self.headers = headers
        self.by_key: dict[str, str] = {}
        for h in headers:
            self.by_key.setdefault(normalise_header(h), h)

    def find(self, *aliases: str) -> tuple[str, ...]:
        out: list[str] = []
        for a in aliases:
            h = self.by_key.get(normalise_header(a))
            if h is not None and h not in out:
                out.append(h)
        return tuple(out)

    def has(self, *aliases: str) -> bool:
        return bool(self.find(*aliases))

    def count_prefix(self, pattern: str) -> int:
        return sum(1 for h in self.headers if re.match(pattern, h.strip(), re.IGNORECASE))


def _inputs(h: Headers, spec: dict[str, tuple]) -> dict[str, Input]:
    """`{name: (kind, aliases, **options)}` → the inputs whose columns the file has."""
    out = {}
    for name, (kind, aliases, *opts) in spec.items():
        cols = h.find(*aliases)
        if cols:
            out[name] = Input(cols, kind, **(opts[0] if opts else {}))
    return out


_DEAL_TYPE = {"synonyms": tuple(DEAL_TYPE_SYNONYMS.items()), "allowed": ("new", "expansion", "renewal"),
              "lenient": True}
_SEGMENT = ("Segment", "Customer Segment", "Market Segment", "Account Segment", "segment (metadata)")


def _deal_notes(m: Mapping) -> tuple[Note, ...]:
    notes = []
    if "amount" in m.inputs:
        notes.append(Note("{amount.text} IS NULL",
                          f"{{n}} deal(s) have no value in {m.inputs['amount'].label!r}: loaded without an "
                          "amount, so sums and averages of amounts leave them out (a blank is unknown, not "
                          "$0; counts and rates still include them) (first on line {line})"))
    return tuple(notes)


def _vendor_deals(source: str, label: str, h: Headers, spec: dict[str, tuple], fields: dict[str, Field],
                  rules: list[str], file_status: str | None = None, stage_input: str | None = "stage",
                  **extra) -> Mapping:
    inputs = _inputs(h, spec)
    # Rules about one column start with its name: a mapping that reads that column another way
    # (`_overlay`) drops them, so the report never says "no deal type column" over a mapped one.
    if "deal_type" not in inputs:
        fields = {**fields, "deal_type": Field("'new'", note="constant 'new'")}
        rules = [*rules, "deal_type: the export has no deal type column: every deal is counted as new business"]
    elif fields.get("deal_type", Field("")).sql == "{deal_type}":
        fields = {**fields, "deal_type": Field("COALESCE({deal_type}, 'new')", "deal_type")}
        rules = [*rules, f"deal_type: a blank or unrecognised {inputs['deal_type'].label!r} counts as new business"]
    m = Mapping(source, label, "deals", inputs, fields, file_status=file_status,
                stage_input=stage_input if stage_input in inputs else None, rules=tuple(rules), **extra)
    return replace(m, notes=m.notes + _deal_notes(m))


def _currency_refine(m: Mapping, facts: dict) -> Mapping:
    currencies = facts.get("currencies")
    if currencies and "," in currencies:
        counts = _currency_counts(facts.get("currency_counts"))
        said = ", ".join(f"{c} {n:,} row(s)" for c, n in counts) if counts else currencies
        return replace(m, cautions=m.cautions + (
            f"amounts are in several currencies ({said}) and are added as they are, with no exchange rate, so "
            "totals such as ARR mix them: export amounts in one currency (the company currency) for exact totals",))
    return m


def _currency_counts(text: str | None) -> list[tuple[str, int]]:
    """`{EUR=60, USD=1946}` (DuckDB's histogram as text) → [('USD', 1946), ('EUR', 60)], most rows first."""
    pairs = re.findall(r"([^{}=,\s][^{}=,]*)=(\d+)", text or "")
    return sorted(((c.strip(), int(n)) for c, n in pairs), key=lambda p: (-p[1], p[0]))


_CURRENCY_FACTS = {"currencies": "string_agg(DISTINCT upper({currency.text}), ', ')",
                   "currency_counts": "CAST(histogram(upper({currency.text})) AS VARCHAR)"}


def _with_currencies(m: Mapping) -> Mapping:
    """A layout with a currency column says, with row counts, when its amounts mix currencies (no FX here)."""
    if "currency" not in m.inputs:
        return m
    return replace(m, facts={**m.facts, **_CURRENCY_FACTS}, refine=_currency_refine)


# --- what billing layouts share ------------------------------------------------------------------


def _trial_skip(word: str = "canceled") -> tuple[str, str]:
    """Rows that ended before their trial did never paid (the layout's trial-end input is `trial_end`)."""
    return ("{=end_date} <= {=start_date} AND {trial_end} IS NOT NULL", f"{word} during its trial: never paid")


def _subscriptions(source: str, label: str, inputs: dict[str, Input], fields: dict[str, Field], rules: list[str],
                   skip: Iterable[tuple[str, str]],
                   always: tuple[str, ...] = ("customer_id", "start_date", "mrr", "end_date")) -> Mapping:
    """A billing export's subscriptions, as every billing layout makes them: a column the export does not have
    is left out (not loaded as a column of blanks), rows are keyed by subscription id, and amounts in several
    currencies are said with their row counts."""
    fields = {k: f for k, f in fields.items() if k in always or f.input in inputs}
    return _with_currencies(Mapping(source, label, "subscriptions", inputs, fields, skip=tuple(skip),
                                    rules=tuple(rules), key="subscription_id"))


def _months_named(code: str, name: str) -> str:
    """Months one bill covers, where the export has no interval: a plan whose code or name says annual / yearly
    is 12, quarterly 3, any other 1 (inference, stated in each layout's rules)."""
    text = f"lower(concat_ws(' ', {{{code}.text}}, {{{name}.text}}))"
    return (f"(CASE WHEN regexp_matches({text}, 'annual|yearly|year|12[ -]?month') THEN 12.0 "
            f"WHEN regexp_matches({text}, 'quarter') THEN 3.0 ELSE 1.0 END)")


def _months_of(length: str, unit: str) -> str:
    """Months one bill covers, from an interval length in months or days (a blank unit reads as months)."""
    return (f"(CASE WHEN lower({{{unit}.text}}) LIKE 'day%' THEN 12.0 / 365 ELSE 1.0 END "
            f"* COALESCE(NULLIF({{{length}}}, 0), 1))")


# --- HubSpot ---------------------------------------------------------------------------------


def _is_hubspot(h: Headers) -> bool:
    """HubSpot only when HubSpot's own headers are there: 'Record ID' and 'Deal Name' are also Zoho's
    (and anyone's), so the deal stage under HubSpot's name ('Deal Stage', `dealstage`) or its won flag
    must be present too."""
    return h.has("Record ID", "hs_object_id") and h.has("Deal Stage", "dealstage", "Is Closed Won", "hs_is_closed_won")


def _hubspot(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "deal_id": (Kind.TEXT, ("Record ID", "hs_object_id", "Deal ID"), {"required": True}),
        "account": (Kind.TEXT, ("Associated Company (Primary)", "Associated Company IDs", "Associated Company",
                                "Associated Company ID", "Company name", "Company")),
        "owner": (Kind.TEXT, ("Deal owner", "hubspot_owner_id", "Owner")),
        "created": (Kind.DATE, ("Create Date", "createdate", "Created Date"), {"required": True}),
        "closed": (Kind.DATE, ("Close Date", "closedate")),
        "stage": (Kind.TEXT, ("Deal Stage", "dealstage")),
        "is_won": (Kind.BOOL, ("Is Closed Won", "hs_is_closed_won")),
        "is_lost": (Kind.BOOL, ("Is closed lost", "hs_is_closed_lost")),
        "amount": (Kind.NUMBER, ("Annual recurring revenue", "hs_arr", "Amount in company currency",
                                 "amount_in_home_currency", "Amount", "amount")),
        "deal_type": (Kind.ENUM, ("Deal Type", "dealtype"), _DEAL_TYPE),
        "channel": (Kind.TEXT, ("Original Traffic Source", "hs_analytics_source", "Original Source Type",
                                "Original Source", "Lead Source", "Source")),
        "segment": (Kind.TEXT, _SEGMENT),
        "currency": (Kind.TEXT, ("Currency", "deal_currency_code")),
    }
    fields = {
        "deal_id": Field("{deal_id}", "deal_id"),
        # Associated IDs come semicolon-joined: the first (primary) company is the account.
        "account_id": Field("NULLIF(trim(split_part({account}, ';', 1)), '')", "account"),
        "owner": Field("{owner}", "owner"),
        "created_date": Field("{created}", "created"),
        "close_date": Field("{closed}", "closed"),
        "stage": Field("{stage}", "stage"),
        "amount": Field("{amount}", "amount"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
    }
    inputs = _inputs(h, spec)
    rules = []
    if "amount" in inputs and len(inputs["amount"].columns) > 1:
        rules.append(f"amount: the first filled of {inputs['amount'].label}"
                     + (" (the annual value first)" if "recurring" in inputs["amount"].columns[0].lower() else ""))
    flags = None
    if "is_won" in inputs or "is_lost" in inputs:
        flags = ("CASE WHEN {is_won} THEN 'won' WHEN {is_lost} THEN 'lost' "
                 "WHEN {is_won} = false AND {is_lost} = false THEN 'open' END")
        rules.append("status: HubSpot's own 'Is Closed Won' / 'Is closed lost' flags where filled, else the stage map")
    m = _vendor_deals("hubspot", "HubSpot deals export", h, spec, fields, rules, file_status=flags)
    if "currency" in m.inputs and "Amount in company currency" not in m.inputs.get("amount", Input(())).columns:
        m = _with_currencies(m)
    return m


# --- Zoho CRM ----------------------------------------------------------------------------------

# Zoho CRM's Deals export (Modules > Deals > Export, or a Deals report) writes its field labels:
# Record Id, Deal Owner, Deal Name, Amount, Closing Date, Account Name, Stage, Type (New Business /
# Existing Business), Probability (%), Expected Revenue, Next Step, Lead Source, Campaign Source,
# Contact Name, Created Time, Modified Time, Description, Reason For Loss, Currency, Exchange Rate;
# API exports write the same fields as `Deal_Name`, `Closing_Date`, `Created_Time` (normalised alike).
# No status column: open / won / lost is the stage's, by Zoho's default stages (Closed Won, Closed
# Lost, Closed-Lost to Competition; the rest open).


def _is_zoho(h: Headers) -> bool:
    """'Closing Date' and 'Deal Name' with a 'Stage' are Zoho's labels (HubSpot writes 'Close Date' and
    'Deal Stage', Salesforce 'Opportunity Name')."""
    return (h.has("Closing Date", "Closing_Date") and h.has("Deal Name", "Deal_Name") and h.has("Stage")
            and not h.has("Opportunity Name", "Deal Stage", "dealstage"))


def _zoho(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "deal_id": (Kind.TEXT, ("Record Id", "Deal Id", "Id", "zcrm_id")),
        "deal_name": (Kind.TEXT, ("Deal Name", "Deal_Name")),
        "account": (Kind.TEXT, ("Account Name", "Account_Name", "Account Name.id", "Account Id")),
        "owner": (Kind.TEXT, ("Deal Owner", "Owner", "Deal_Owner")),
        "created": (Kind.DATE, ("Created Time", "Created_Time", "Created Date"), {"required": True}),
        "closed": (Kind.DATE, ("Closing Date", "Closing_Date")),
        "stage": (Kind.TEXT, ("Stage",)),
        "amount": (Kind.NUMBER, ("Amount",)),
        "deal_type": (Kind.ENUM, ("Type", "Deal Type"), _DEAL_TYPE),
        "channel": (Kind.TEXT, ("Lead Source", "Lead_Source")),
        "segment": (Kind.TEXT, _SEGMENT),
        "currency": (Kind.TEXT, ("Currency",)),
    }
    inputs = _inputs(h, spec)
    rules = ["status: from the Stage by Zoho's default stages (Closed Won → won; Closed Lost and Closed-Lost to "
             "Competition → lost; every other stage open); custom stages go through the stage map",
             "close_date: the Closing Date (for an open deal, the expected one)",
             "type 'Existing Business' is read as expansion, 'New Business' as new"]
    if "deal_id" in inputs:
        deal_id = Field("{deal_id}", "deal_id")
    else:
        deal_id = Field("concat_ws(' / ', {account}, {deal_name})", "deal_name")
        rules.append("no 'Record Id' column: a deal is identified by 'Account Name / Deal Name'")
    fields = {
        "deal_id": deal_id,
        "account_id": Field("{account}", "account"),
        "owner": Field("{owner}", "owner"),
        "created_date": Field("{created}", "created"),
        "close_date": Field("{closed}", "closed"),
        "stage": Field("{stage}", "stage"),
        "amount": Field("{amount}", "amount"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
    }
    m = _vendor_deals("zoho", "Zoho CRM deals export", h, spec, fields, rules)
    return _with_currencies(m)


# --- Freshsales (Freshworks CRM) ---------------------------------------------------------------

# Freshsales' Deals export (Deals > Export, CSV) writes its field labels: Id, Name, Deal value, Currency,
# Base currency amount (the value in the account's base currency), Deal stage, Deal pipeline, Expected
# close date, Closed date, Sales owner, Account name, Type, Source, Campaign, Probability (%), Lost reason,
# Territory, Created at, Updated at, Age, then custom fields by label. Dates follow the account's date
# format (often day-first: 19-10-2021, 19-10-2021 07:48:37). Integrations (Zapier, webhooks) write the same
# fields as `deal_name`, `deal_amount`, `deal_base_currency_amount`, `deal_deal_stage_name`, `deal_owner_name`,
# `deal_expected_close`, `deal_closed_date`, `deal_created_at`. No status column: every stage has a forecast
# type (open / won / lost) the export does not write, so the stage's name decides (the default closed
# stages are 'Won' and 'Lost'; custom ones go through the stage map).


def _is_freshsales(h: Headers) -> bool:
    """'Sales owner' beside a 'Deal stage' is Freshsales' pair of labels (HubSpot writes 'Deal owner', Zoho
    'Deal Owner' beside 'Stage'); the integration names carry Freshsales' doubled `deal_deal_` prefix."""
    labels = h.has("Sales owner") and h.has("Deal stage") and h.has(
        "Deal value", "Base currency amount", "Expected close date", "Closed date")
    api = h.has("deal_deal_stage_name") and h.has("deal_owner_name", "deal_amount", "deal_expected_close")
    return (labels or api) and not h.has("Record ID", "hs_object_id", "Opportunity Name")


def _freshsales(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "deal_id": (Kind.TEXT, ("Id", "Deal ID", "deal_id")),
        "deal_name": (Kind.TEXT, ("Name", "Deal name", "deal_name")),
        "account": (Kind.TEXT, ("Account name", "Account", "Sales account", "deal_sales_account_name")),
        "owner": (Kind.TEXT, ("Sales owner", "Owner", "deal_owner_name")),
        "created": (Kind.DATE, ("Created at", "Created date", "deal_created_at"), {"required": True}),
        "closed": (Kind.DATE, ("Closed date", "deal_closed_date")),
        "expected": (Kind.DATE, ("Expected close date", "Expected close", "deal_expected_close")),
        "stage": (Kind.TEXT, ("Deal stage", "deal_deal_stage_name", "Stage")),
        "amount": (Kind.NUMBER, ("Base currency amount", "Deal value in base currency", "deal_base_currency_amount",
                                 "Deal value", "Amount", "deal_amount")),
        "deal_type": (Kind.ENUM, ("Type", "Deal type", "deal_deal_type_name"), _DEAL_TYPE),
        "channel": (Kind.TEXT, ("Source", "Lead source", "deal_source_name")),
        "segment": (Kind.TEXT, (*_SEGMENT, "cf_segment")),
        "currency": (Kind.TEXT, ("Currency", "deal_currency_name")),
    }
    inputs = _inputs(h, spec)
    in_base = bool(inputs.get("amount")) and "base" in inputs["amount"].columns[0].lower()
    rules = ["status: from the Deal stage by name (Freshsales' default closed stages Won → won, Lost → lost; "
             "every other stage open); custom closed stages go through the stage map",
             "close_date: the Closed date of won and lost deals (the Expected close date where it is blank), the "
             "Expected close date of open ones",
             "type 'Existing Business' is read as expansion, 'New Business' as new"]
    if in_base:
        rules.append(f"amount: {inputs['amount'].columns[0]!r}, the deal value in the account's base currency "
                     "(one currency, so totals add up)")
    if "deal_id" in inputs:
        deal_id = Field("{deal_id}", "deal_id")
    else:
        deal_id = Field("concat_ws(' / ', {account}, {deal_name})", "deal_name")
        rules.append("no 'Id' column: a deal is identified by 'Account name / Name'")
    fields = {
        "deal_id": deal_id,
        "account_id": Field("{account}", "account"),
        "owner": Field("{owner}", "owner"),
        "created_date": Field("{created}", "created"),
        "stage": Field("{stage}", "stage"),
        "amount": Field("{amount}", "amount"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
    }
    m = _vendor_deals("freshsales", "Freshsales (Freshworks CRM) deals export", h, spec, fields, rules)
    fields = dict(m.fields)
    fields["close_date"] = Field("CASE WHEN {=status} IN ('won', 'lost') THEN COALESCE({closed}, {expected}) "
                                 "ELSE COALESCE({expected}, {closed}) END",
                                 "closed" if "closed" in inputs else "expected",
                                 note="Closed date (won / lost), Expected close date (open)")
    m = replace(m, fields=fields)
    return m if in_base else _with_currencies(m)


# --- Microsoft Dynamics 365 Sales ----------------------------------------------------------------

# Dynamics 365's "Export to Excel" of an Opportunities view (saved as CSV, or opened and re-saved by Excel in the
# user's locale: `;` and 9.300,00 $) writes the view's column labels after three hidden `(Do Not Modify)`
# columns: (Do Not Modify) Opportunity (the record's GUID), (Do Not Modify) Row Checksum, (Do Not Modify)
# Modified On, then e.g. Topic, Potential Customer, Status (Open / Won / Lost), Status Reason (In Progress,
# On Hold, Won, Canceled, Out-Sold …), Pipeline Phase (1-Qualify … 4-Close), Probability, Est. Revenue,
# Actual Revenue (set when the opportunity is closed as won), Currency (its name: US Dollar, Euro), Est. Close
# Date, Actual Close Date, Owner, Created On, Rating, and related-entity columns as 'Segment (Potential
# Customer) (Account)'. Dates follow the user's locale (19/12/2024 11:11).


def _is_dynamics(h: Headers) -> bool:
    return (h.has("(Do Not Modify) Opportunity") or
            (h.has("Topic") and h.has("Est. Revenue", "Estimated Revenue") and h.has("Est. Close Date",
                                                                                   "Estimated Close Date")))


def _dynamics(h: Headers, sides: set[str]) -> Mapping:
    segment = [x for x in h.headers if normalise_header(x).startswith("segment")]
    spec = {
        "deal_id": (Kind.TEXT, ("(Do Not Modify) Opportunity", "Opportunity", "Opportunity ID")),
        "topic": (Kind.TEXT, ("Topic",)),
        "account": (Kind.TEXT, ("Potential Customer", "Account", "Account Name")),
        "owner": (Kind.TEXT, ("Owner",)),
        "created": (Kind.DATE, ("Created On",), {"required": True}),
        "status": (Kind.TEXT, ("Status",), {"required": True}),
        "stage": (Kind.TEXT, ("Pipeline Phase", "Sales Stage", "Process Stage")),
        # read, not loaded: the reason a record reached its status, the export's own bookkeeping
        "status_reason": (Kind.TEXT, ("Status Reason",)),
        "checksum": (Kind.TEXT, ("(Do Not Modify) Row Checksum",)),
        "modified": (Kind.TEXT, ("(Do Not Modify) Modified On",)),
        "est_revenue": (Kind.NUMBER, ("Est. Revenue", "Estimated Revenue")),
        "actual_revenue": (Kind.NUMBER, ("Actual Revenue",)),
        "est_close": (Kind.DATE, ("Est. Close Date", "Estimated Close Date")),
        "actual_close": (Kind.DATE, ("Actual Close Date",)),
        "deal_type": (Kind.ENUM, ("Opportunity Type", "Type", "Deal Type"), _DEAL_TYPE),
        "segment": (Kind.TEXT, (*segment, *_SEGMENT)),
        "channel": (Kind.TEXT, ("Lead Source", "Source Campaign", "Source")),
        "currency": (Kind.TEXT, ("Currency",)),
    }
    inputs = _inputs(h, spec)
    status = "lower(trim({status.text}))"
    rules = ["status: Dynamics' own Status (Open, Won, Lost); Status Reason and Pipeline Phase are where a record "
             "is in its life, shown, never a split",
             "close_date: the Actual Close Date of won and lost opportunities (the Est. Close Date where it is "
             "blank), the Est. Close Date of open ones",
             "amount: the Actual Revenue of a won opportunity (its Est. Revenue where blank), the Est. Revenue of "
             "the others"]
    if "deal_id" in inputs:
        deal_id = Field("{deal_id}", "deal_id")
    else:
        deal_id = Field("concat_ws(' / ', {account}, {topic})", "topic")
        rules.append("no '(Do Not Modify) Opportunity' column: an opportunity is identified by "
                     "'Potential Customer / Topic'")
    fields = {
        "deal_id": deal_id,
        "account_id": Field("{account}", "account"),
        "owner": Field("{owner}", "owner"),
        "created_date": Field("{created}", "created"),
        "stage": Field("{stage}", "stage"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
    }
    fields = {k: f for k, f in fields.items() if f.input is None or f.input in inputs}  # absent: not loaded
    m = _vendor_deals("dynamics", "Dynamics 365 Sales opportunities export", h, spec, fields, rules,
                      file_status=f"CASE {status} WHEN 'open' THEN 'open' WHEN 'won' THEN 'won' "
                                  "WHEN 'lost' THEN 'lost' END")
    fields = dict(m.fields)
    fields["close_date"] = Field("CASE WHEN {=status} IN ('won', 'lost') THEN COALESCE({actual_close}, {est_close}) "
                                 "ELSE {est_close} END", "actual_close" if "actual_close" in inputs else "est_close",
                                 note="Actual Close Date (won / lost), Est. Close Date (open)")
    fields["amount"] = Field("CASE WHEN {=status} = 'won' THEN COALESCE({actual_revenue}, {est_revenue}) "
                             "ELSE {est_revenue} END", "est_revenue" if "est_revenue" in inputs else "actual_revenue",
                             note="Actual Revenue (won), Est. Revenue (open, lost)")
    m = replace(m, fields=fields)
    return _with_currencies(m)


# --- Salesforce ------------------------------------------------------------------------------


def _is_salesforce(h: Headers) -> bool:
    report = h.has("Opportunity ID", "Opportunity Name", "Opportunity Id") and h.has("Stage", "StageName")
    # An Opportunity object export (Data Loader, Workbench, `sf data export`) carries API field names.
    api = h.has("Id") and h.has("StageName") and h.has("CloseDate") and not h.has("OpportunityId")
    return report or api


def _salesforce(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "opp_id": (Kind.TEXT, ("Opportunity ID", "Opportunity Id", "OpportunityId", "Id")),
        "opp_name": (Kind.TEXT, ("Opportunity Name", "Name")),
        "account": (Kind.TEXT, ("Account ID", "AccountId", "Account Name")),
        "account_name": (Kind.TEXT, ("Account Name",)),
        "owner": (Kind.TEXT, ("Opportunity Owner", "Owner Name", "Owner Full Name", "Owner", "OwnerId")),
        "created": (Kind.DATE, ("Created Date", "CreatedDate", "Create Date"), {"required": True}),
        "closed": (Kind.DATE, ("Close Date", "CloseDate")),
        "stage": (Kind.TEXT, ("Stage", "StageName")),
        "won": (Kind.BOOL, ("Won", "IsWon")),
        "closed_flag": (Kind.BOOL, ("Closed", "IsClosed")),
        "amount": (Kind.NUMBER, ("Amount (converted)", "Amount", "Total Amount", "Amount (Converted)")),
        "deal_type": (Kind.ENUM, ("Type", "Opportunity Type"), _DEAL_TYPE),
        "channel": (Kind.TEXT, ("Lead Source", "LeadSource", "Primary Campaign Source")),
        "segment": (Kind.TEXT, _SEGMENT),
        "currency": (Kind.TEXT, ("Opportunity Currency", "Amount Currency", "Total Amount Currency", "Currency",
                                  "CurrencyIsoCode")),
    }
    inputs = _inputs(h, spec)
    rules = ["type 'Existing Customer - Replacement' / '- Downgrade' is read as renewal (inference)"]
    if "opp_id" in inputs:
        deal_id = Field("{opp_id}", "opp_id")
    else:
        # Report exports often omit the id; the account plus opportunity name identifies a deal.
        deal_id = Field("concat_ws(' / ', {account_name}, {opp_name})", "opp_name")
        rules.append("no 'Opportunity ID' column: a deal is identified by 'Account Name / Opportunity Name'")
    fields = {
        "deal_id": deal_id,
        "account_id": Field("{account}", "account"),
        "owner": Field("{owner}", "owner"),
        "created_date": Field("{created}", "created"),
        "close_date": Field("{closed}", "closed"),
        "stage": Field("{stage}", "stage"),
        "amount": Field("{amount}", "amount"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
    }
    flags = None
    if "won" in inputs:
        flags = ("CASE WHEN {won} THEN 'won' WHEN {won} = false AND {closed_flag} THEN 'lost' "
                 "WHEN {closed_flag} = false THEN 'open' END")
        rules.append("status: Salesforce's own 'Won' / 'Closed' flags where filled, else the stage map")
    joins, api = _salesforce_joins(inputs, fields, rules, sides)
    label = "Salesforce Opportunity export (API field names)" if api else "Salesforce opportunities report"
    m = _vendor_deals("salesforce", label, h, spec, fields, rules, file_status=flags, joins=joins)
    if "currency" in m.inputs and not any("converted" in c.lower() for c in m.inputs.get("amount", Input(())).columns):
        m = _with_currencies(m)
    return m


def _owner_names(inputs: dict[str, Input], fields: dict[str, Field], sides: set[str], name: str,
                 managers: bool = False) -> tuple[Join, ...]:
    """OwnerId → the user's name in field `name` (and the owner's manager), when a User export is in the load."""
    if "owner" not in inputs or "users" not in sides:
        return ()
    fields[name] = Field("COALESCE(u.user_name, {owner})", "owner", note="OwnerId → the user's name (User file)")
    joins = [Join("users", "u", "u.user_id = {owner.text}")]
    if managers:
        joins.append(Join("users", "mu", "mu.user_id = u.manager_id"))
        fields["manager"] = Field("mu.user_name", "owner", note="the owner's manager (User file's ManagerId)")
    return tuple(joins)


def _salesforce_joins(inputs: dict[str, Input], fields: dict[str, Field], rules: list[str],
                      sides: set[str], segment: bool = True) -> tuple[tuple[Join, ...], bool]:
    """Owner names and managers from a User export, segments from an Account export, when loaded alongside."""
    api = "owner" in inputs and inputs["owner"].columns[0].lower() == "ownerid"
    joins = list(_owner_names(inputs, fields, sides, "owner", managers=True)) if api else []
    if joins:
        rules.append("owner: OwnerId turned into the user's name, and manager from the User file's ManagerId")
    elif api:
        rules.append("owner: Salesforce user ids (OwnerId) — load the User export with it to see names")
    if segment and "account" in inputs and "accounts" in sides:
        joins.append(Join("accounts", "a", "a.account_id = {account.text}"))
        fields["segment"] = Field("COALESCE({segment}, a.segment)", "segment" if "segment" in inputs else "account",
                                  note=None if "segment" in inputs else "the account's segment (Account file)")
        fields["industry"] = Field("a.industry", "account", note="the account's industry (Account file)")
        rules.append("segment and industry: from the Account file (company size by NumberOfEmployees)")
    return tuple(joins), api


# --- Salesforce object exports (API field names) -----------------------------------------------


def _is_sf_history(h: Headers) -> bool:
    return h.has("OpportunityId") and h.has("StageName") and h.has("CreatedDate", "CreatedById", "Probability")


def _is_sf_lead(h: Headers) -> bool:
    return h.has("Id") and h.has("IsConverted", "ConvertedOpportunityId", "ConvertedDate") and h.has("CreatedDate")


def _is_sf_account(h: Headers) -> bool:
    return (h.has("Id") and h.has("Name") and not h.has("AccountId", "StageName", "IsConverted")
            and h.has("NumberOfEmployees", "AnnualRevenue", "BillingCountry", "BillingCity", "Industry"))


def _is_sf_user(h: Headers) -> bool:
    return (h.has("Id") and h.has("Username", "ManagerId", "UserRoleId", "ProfileId")
            and not h.has("AccountId", "StageName"))


def _is_sf_contact(h: Headers) -> bool:
    return h.has("Id") and h.has("AccountId") and h.has("Email", "FirstName", "LastName") and not h.has("StageName")


def _is_sf_campaign(h: Headers) -> bool:
    return h.has("Id") and h.has("Name") and h.has("ActualCost", "BudgetedCost") and h.has("StartDate", "Type")


def _is_sf_campaign_member(h: Headers) -> bool:
    return h.has("CampaignId") and h.has("LeadId", "ContactId")


def _sf_segment(h: Headers) -> tuple[str, str | None]:
    """Segment from head count where the export has it (the same bands as the CRM sample)."""
    if h.has("NumberOfEmployees"):
        return _SIZE_BAND, "segment: company size by NumberOfEmployees (< 1,000 SMB, < 5,000 Mid-Market, else Enterprise)"
    return "NULL", None


def _sf_lead(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "lead_id": (Kind.TEXT, ("Id",), {"required": True}),
        "created": (Kind.DATE, ("CreatedDate",), {"required": True}),
        "source": (Kind.TEXT, ("LeadSource",)),
        "owner": (Kind.TEXT, ("OwnerId", "Owner")),
        "employees": (Kind.NUMBER, ("NumberOfEmployees",)),
        "converted": (Kind.DATE, ("ConvertedDate",)),
        "opportunity": (Kind.TEXT, ("ConvertedOpportunityId",)),
        "status": (Kind.TEXT, ("Status",)),
    }
    inputs = _inputs(h, spec)
    segment, segment_rule = _sf_segment(h)
    fields = {
        "lead_id": Field("{lead_id}", "lead_id"), "created_date": Field("{created}", "created"),
        "channel": Field("{source}", "source"), "owner": Field("{owner}", "owner"),
        "segment": Field(segment, "employees"), "sql_date": Field("{converted}", "converted"),
        "deal_id": Field("NULLIF({opportunity}, '')", "opportunity"), "lead_status": Field("{status}", "status"),
    }
    rules = ["channel: LeadSource", "sql_date: ConvertedDate (a converted lead became an opportunity); the Lead "
             "object has no MQL date, so MQL → SQL needs a mql_date column", "deal_id: ConvertedOpportunityId"]
    if segment_rule:
        rules.append(segment_rule)
    joins, _ = _salesforce_joins(inputs, fields, rules, sides, segment=False)
    return Mapping("salesforce", "Salesforce Lead export (API field names)", "leads", inputs, fields,
                   rules=tuple(rules), joins=joins)


def _sf_account(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "account": (Kind.TEXT, ("Id",), {"required": True}),
        "name": (Kind.TEXT, ("Name",)),
        "employees": (Kind.NUMBER, ("NumberOfEmployees",)),
        "industry": (Kind.TEXT, ("Industry",)),
        "created": (Kind.DATE, ("CreatedDate",)),
        "owner": (Kind.TEXT, ("OwnerId",)),
    }
    inputs = _inputs(h, spec)
    segment, segment_rule = _sf_segment(h)
    fields = {
        "account_id": Field("{account}", "account"), "name": Field("{name}", "name"),
        "segment": Field(segment, "employees"), "industry": Field("{industry}", "industry"),
        "created_date": Field("{created}", "created"), "account_owner": Field("{owner}", "owner"),
    }
    rules = [segment_rule] if segment_rule else []
    joins = _owner_names(inputs, fields, sides, "account_owner")
    return Mapping("salesforce", "Salesforce Account export (API field names)", "accounts", inputs, fields,
                   side="accounts", rules=tuple(rules), joins=joins)


def _sf_user(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "user_id": (Kind.TEXT, ("Id",), {"required": True}),
        "name": (Kind.TEXT, ("Name",)), "first": (Kind.TEXT, ("FirstName",)), "last": (Kind.TEXT, ("LastName",)),
        "username": (Kind.TEXT, ("Username", "Email")), "manager": (Kind.TEXT, ("ManagerId",)),
    }
    fields = {"user_id": Field("{user_id}", "user_id"),
              "user_name": Field("COALESCE({name}, NULLIF(concat_ws(' ', {first}, {last}), ''), {username}, {user_id})",
                                 "name"),
              "manager_id": Field("NULLIF({manager}, '')", "manager")}
    return Mapping("salesforce", "Salesforce User export (side file: owner names)", "", _inputs(h, spec), fields,
                   side="users", key="user_id",
                   rules=("joined into opportunities, leads and accounts of this load: OwnerId → name, manager",))


def _sf_campaign(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "campaign": (Kind.TEXT, ("Id",)), "name": (Kind.TEXT, ("Name",)), "type": (Kind.TEXT, ("Type",)),
        "start": (Kind.DATE, ("StartDate",)), "cost": (Kind.NUMBER, ("ActualCost",)),
    }
    fields = {"month": Field("CAST(date_trunc('month', {start}) AS DATE)", "start"),
              "channel": Field("COALESCE({type}, {name})", "type"), "amount": Field("{cost}", "cost"),
              "campaign": Field("{name}", "name")}
    return Mapping("salesforce", "Salesforce Campaign export → spend", "spend", _inputs(h, spec), fields,
                   skip=(("{cost} IS NULL", "campaign without an actual cost"),
                         ("{start} IS NULL", "campaign without a start date")),
                   rules=("a campaign's ActualCost is spend in the month of its StartDate; channel is the campaign "
                          "Type (else its name)",))


def _recognised(label: str, why: str, source: str = "salesforce") -> Callable[[Headers, set[str]], Mapping]:
    def build(h: Headers, sides: set[str]) -> Mapping:
        return Mapping(source, f"{label} (recognised, not needed: {why})", "", {}, {}, ignore=True)
    return build


# --- Pipedrive -------------------------------------------------------------------------------


def _is_pipedrive(h: Headers) -> bool:
    return h.count_prefix(r"^deal\s+-\s+") >= 2 and h.has("Deal - ID", "Deal - Title", "Deal - Value")


def _pipedrive(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "deal_id": (Kind.TEXT, ("Deal - ID", "Deal - Pipedrive System ID"), {"required": True}),
        "account": (Kind.TEXT, ("Deal - Organization ID", "Deal - Organisation ID", "Deal - Organization",
                                "Deal - Organisation", "Organization - Name", "Organisation - Name", "Organization")),
        "owner": (Kind.TEXT, ("Deal - Owner", "Deal - Owner name", "Deal - User")),
        "created": (Kind.DATE, ("Deal - Deal created", "Deal - Creation date", "Deal - Deal created on",
                                "Deal - Add time", "Deal - Created"), {"required": True}),
        "won_time": (Kind.DATE, ("Deal - Won time",)),
        "lost_time": (Kind.DATE, ("Deal - Lost time",)),
        "closed_on": (Kind.DATE, ("Deal - Deal closed on", "Deal - Closed on", "Deal - Close time")),
        "expected": (Kind.DATE, ("Deal - Expected close date",)),
        "stage": (Kind.TEXT, ("Deal - Stage", "Deal - Stage (pipeline)")),
        "status": (Kind.TEXT, ("Deal - Status",)),
        "amount": (Kind.NUMBER, ("Deal - Value", "Deal - Value in default currency")),
        "deal_type": (Kind.ENUM, ("Deal - Deal type", "Deal - Type"), _DEAL_TYPE),
        "channel": (Kind.TEXT, ("Deal - Source channel", "Deal - Lead Source", "Deal - Source origin",
                                "Deal - Channel", "Deal - Source")),
        "segment": (Kind.TEXT, ("Deal - Segment", "Organization - Segment", "Organisation - Segment")),
        "currency": (Kind.TEXT, ("Deal - Currency of Value", "Deal - Currency of value", "Deal - Currency")),
    }
    status = "lower(trim({status.text}))"
    fields = {
        "deal_id": Field("{deal_id}", "deal_id"),
        "account_id": Field("{account}", "account"),
        "owner": Field("{owner}", "owner"),
        "created_date": Field("{created}", "created"),
        "stage": Field("{stage}", "stage"),
        "amount": Field("{amount}", "amount"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
    }
    rules = ["status: Pipedrive's own 'Deal - Status' (Open/Won/Lost); deleted deals are left out",
             "close_date: won time for won deals, lost time for lost deals ('Deal closed on' if those are "
             "missing), expected close date for open deals"]
    m = _vendor_deals("pipedrive", "Pipedrive deals export", h, spec, fields, rules,
                      file_status=f"CASE WHEN {status} IN ('open', 'won', 'lost') THEN {status} END")
    closing = Field("CASE {=status} WHEN 'won' THEN COALESCE({won_time}, {closed_on}) "
                    "WHEN 'lost' THEN COALESCE({lost_time}, {closed_on}) ELSE {expected} END", "closed_on")
    fields = dict(m.fields)
    fields["close_date"] = closing
    return _with_currencies(replace(m, fields=fields, skip=((f"{status} = 'deleted'", "deleted in Pipedrive"),)))


# --- Stripe ----------------------------------------------------------------------------------


def _is_stripe(h: Headers) -> bool:
    return (h.has("Customer ID", "customer", "Customer") and h.has("Interval", "plan.interval", "plan_interval",
                                                                   "price.recurring.interval")
            and h.has("Status") and h.has("Amount", "plan.amount", "plan_amount", "price.unit_amount", "unit_amount"))


def _stripe(h: Headers, sides: set[str]) -> Mapping:
    utc = lambda *names: tuple(f"{n} (UTC)" for n in names)  # noqa: E731 - Dashboard date labels
    spec = {
        "sub_id": (Kind.TEXT, ("id", "Subscription ID")),
        "customer": (Kind.TEXT, ("Customer ID", "customer", "Customer"), {"required": True}),
        "start": (Kind.DATE, (*utc("Start Date", "Start"), "start_date", "Start Date", "Start")),
        "created": (Kind.DATE, (*utc("Created"), "created", "Created")),
        "trial_end": (Kind.DATE, (*utc("Trial End"), "trial_end", "Trial End")),
        "ended_at": (Kind.DATE, (*utc("Ended At"), "ended_at", "Ended At")),
        "canceled_at": (Kind.DATE, (*utc("Canceled At"), "canceled_at", "Canceled At")),
        "cancel_at": (Kind.DATE, (*utc("Cancel At"), "cancel_at", "Cancel At")),
        "period_end": (Kind.DATE, (*utc("Current Period End"), "current_period_end", "Current Period End")),
        "cancel_at_period_end": (Kind.BOOL, ("Cancel At Period End", "cancel_at_period_end")),
        "status": (Kind.TEXT, ("Status", "status")),
        "amount": (Kind.NUMBER, ("Amount", "plan.amount", "plan_amount", "price.unit_amount", "unit_amount"),
                   {"required": True}),
        "quantity": (Kind.NUMBER, ("Quantity", "quantity")),
        "interval": (Kind.ENUM, ("Interval", "plan.interval", "plan_interval", "price.recurring.interval"),
                     {"required": True, "synonyms": tuple(INTERVAL_SYNONYMS.items()),
                      "allowed": ("day", "week", "month", "year")}),
        "interval_count": (Kind.NUMBER, ("Interval Count", "plan.interval_count", "plan_interval_count",
                                         "price.recurring.interval_count")),
        "currency": (Kind.TEXT, ("Currency", "currency", "plan.currency")),
        "plan": (Kind.TEXT, ("Product", "Product Name", "Plan Nickname", "plan.nickname", "Plan", "plan.id",
                             "Plan price ID", "Price ID")),
        "segment": (Kind.TEXT, ("segment (metadata)", "Segment", "metadata.segment")),
        "channel": (Kind.TEXT, ("channel (metadata)", "Channel", "metadata.channel", "source (metadata)")),
    }
    inputs = _inputs(h, spec)
    # API-style files carry Stripe's field names (customer, plan.amount); Dashboard files carry labels.
    api_style = not h.has("Customer ID", "Amount") or h.has("plan.amount", "plan_amount", "unit_amount")
    status = "lower(trim({status.text}))"
    per_month = ("(CASE {interval} WHEN 'month' THEN 1.0 WHEN 'year' THEN 1.0 / 12 "
                 "WHEN 'week' THEN 52.0 / 12 WHEN 'day' THEN 365.0 / 12 END)")
    zero_decimal = ", ".join(f"'{c}'" for c in ZERO_DECIMAL_CURRENCIES)
    fields = {
        "customer_id": Field("{customer}", "customer"),
        # Trials pay nothing: MRR starts when the trial ends.
        "start_date": Field("CASE WHEN {trial_end} > COALESCE({start}, {created}) THEN {trial_end} "
                            "ELSE COALESCE({start}, {created}) END", "start" if "start" in inputs else "created"),
        "end_date": Field(f"COALESCE({{ended_at}}, CASE WHEN {status} IN ('canceled', 'cancelled', "
                          "'incomplete_expired') THEN COALESCE({canceled_at}, {period_end}) "
                          "WHEN {cancel_at_period_end} THEN COALESCE({cancel_at}, {period_end}) END)", "ended_at"),
        "mrr": Field(f"{{amount}} / {{cents}} * COALESCE({{quantity}}, 1) * {per_month} "
                     "/ COALESCE(NULLIF({interval_count}, 0), 1)", "amount"),
        "plan": Field("{plan}", "plan"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
        "subscription_id": Field("{sub_id}", "sub_id"),
    }
    rules = [
        "mrr = amount × quantity per month: yearly ÷ 12, weekly × 52/12, daily × 365/12"
        + (", divided by the interval count" if "interval_count" in inputs else
           " (the export has no interval count: a 3-month plan exported as 'month' would be overstated)"),
        "end_date: 'Ended At'; for canceled subscriptions 'Canceled At' (else the current period end); "
        "for 'cancel at period end' the period end",
        "a subscription in trial starts counting when its trial ends",
        "subscriptions with status incomplete / incomplete_expired never started and are left out",
    ]
    skip = ((f"{status} IN ('incomplete', 'incomplete_expired')", "never became active (status incomplete)"),
            ("{=end_date} <= {=start_date} AND {trial_end} IS NOT NULL", "canceled during its trial: never paid"))

    def cents_rule(m: Mapping, facts: dict) -> Mapping:
        whole = bool(facts.get("whole_amounts"))
        if api_style and whole:
            divisor = f"(CASE WHEN lower({{currency.text}}) IN ({zero_decimal}) THEN 1 ELSE 100 END)"
            rule = ("amounts are whole numbers in an API-style export: read as cents (3300 = 33.00), "
                    "except zero-decimal currencies (JPY, KRW, …)")
        else:
            divisor = "1"
            rule = ("amounts read as currency units (Dashboard exports write 33.00 for 33.00; only an API-style "
                    "export whose amounts are all whole numbers is read as cents)")
        out = {k: (replace(f, sql=f.sql.replace("{cents}", divisor)) if k == "mrr" else f) for k, f in m.fields.items()}
        m = replace(m, fields=out, rules=m.rules + (rule,))
        return _currency_refine(m, facts) if "currency" in m.inputs else m

    facts = {"whole_amounts": "bool_and(regexp_full_match(trim({amount.text}), '-?[0-9]+')) "
                              "FILTER (WHERE {amount.text} IS NOT NULL)"}
    if "currency" in inputs:
        facts["currencies"] = "string_agg(DISTINCT upper({currency.text}), ', ')"
    return Mapping("stripe", "Stripe subscriptions export" + (" (API fields)" if api_style else ""),
                   "subscriptions", inputs, fields, skip=skip, rules=tuple(rules), key="subscription_id",
                   facts=facts, refine=cents_rule)


# --- Chargebee --------------------------------------------------------------------------------

# Chargebee's data export (Settings > Import & Export Data) names each column `<object>.<attribute>`
# after its API: `subscriptions.customer_id`, `subscriptions.mrr`, `customers.company`, custom fields
# `customers.cf_<name>`. Statuses: future, in_trial, active, non_renewing, paused, cancelled.
_CB_PREFIXES = ("subscriptions", "subscription")


def _cb(*names: str, objects: tuple[str, ...] = _CB_PREFIXES) -> tuple[str, ...]:
    """`mrr` → `subscriptions.mrr`, `subscription.mrr` (the export's `object.attribute` headers)."""
    return tuple(f"{o}.{n}" for n in names for o in objects)


_CB_CUSTOM = ("customers", "customer", *_CB_PREFIXES)


def _is_chargebee(h: Headers) -> bool:
    return (h.has(*_cb("customer_id")) and h.has(*_cb("status"))
            and h.has(*_cb("mrr", "plan_amount", "plan_unit_price")))


def _chargebee(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "sub_id": (Kind.TEXT, _cb("id")),
        "customer": (Kind.TEXT, (*_cb("customer_id"), "customers.id"), {"required": True}),
        "started": (Kind.DATE, _cb("started_at")),
        "activated": (Kind.DATE, _cb("activated_at")),
        "created": (Kind.DATE, _cb("created_at")),
        "trial_end": (Kind.DATE, _cb("trial_end")),
        "cancelled_at": (Kind.DATE, _cb("cancelled_at")),
        "status": (Kind.TEXT, _cb("status")),
        "mrr": (Kind.NUMBER, _cb("mrr")),
        "plan_amount": (Kind.NUMBER, _cb("plan_amount")),
        "unit_price": (Kind.NUMBER, _cb("plan_unit_price")),
        "quantity": (Kind.NUMBER, _cb("plan_quantity")),
        "period": (Kind.NUMBER, _cb("billing_period")),
        "period_unit": (Kind.ENUM, _cb("billing_period_unit"),
                        {"synonyms": tuple(INTERVAL_SYNONYMS.items()), "allowed": ("day", "week", "month", "year")}),
        "currency": (Kind.TEXT, _cb("currency_code")),
        "plan": (Kind.TEXT, _cb("plan_id", "item_price_id", "plan_name")),
        "segment": (Kind.TEXT, _cb("cf_segment", "cf_customer_segment", "cf_market_segment",
                                   objects=_CB_CUSTOM)),
        "channel": (Kind.TEXT, _cb("cf_channel", "cf_acquisition_channel", "cf_lead_source", "cf_source",
                                   objects=_CB_CUSTOM)),
    }
    inputs = _inputs(h, spec)
    status = "lower(trim({status.text}))"
    per_month = ("(CASE {period_unit} WHEN 'month' THEN 1.0 WHEN 'year' THEN 1.0 / 12 "
                 "WHEN 'week' THEN 52.0 / 12 WHEN 'day' THEN 365.0 / 12 END)")
    billed = "COALESCE({plan_amount}, {unit_price} * COALESCE({quantity}, 1))"
    start = "COALESCE({started}, {activated}, {created})"
    fields = {
        "customer_id": Field("{customer}", "customer"),
        # A trial pays nothing: MRR starts when the trial ends.
        "start_date": Field(f"CASE WHEN {{trial_end}} > {start} THEN {{trial_end}} ELSE {start} END",
                            next((n for n in ("started", "activated", "created") if n in inputs), None)),
        "end_date": Field("{cancelled_at}", "cancelled_at"),
        "mrr": Field(f"COALESCE({{mrr}}, {billed} * {per_month} / COALESCE(NULLIF({{period}}, 0), 1))",
                     "mrr" if "mrr" in inputs else "plan_amount" if "plan_amount" in inputs else "unit_price"),
        "plan": Field("{plan}", "plan"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
        "subscription_id": Field("{sub_id}", "sub_id"),
    }
    rules = [
        ("mrr: Chargebee's 'subscriptions.mrr'" + (", else the plan amount per month" if "plan_amount" in inputs
                                                    or "unit_price" in inputs else "")
         + " (read as currency units, as the export writes them: 2808.00 is 2,808.00)")
        if "mrr" in inputs else
        "mrr = plan amount per month: yearly ÷ 12, weekly × 52/12, daily × 365/12, divided by the billing period",
        "start_date: 'subscriptions.started_at' (else activated_at, else created_at); a subscription in trial "
        "starts counting when its trial ends",
        "end_date: 'subscriptions.cancelled_at' (a non-renewing subscription ends on its scheduled cancellation)",
        "subscriptions with status future have not started and are left out",
    ]
    skip = ((f"{status} = 'future'", "not started yet (status future)"), _trial_skip("cancelled"))
    return _subscriptions("chargebee", "Chargebee subscriptions export", inputs, fields, rules, skip,
                          always=("customer_id", "start_date", "mrr"))


# --- Recurly ----------------------------------------------------------------------------------

# Recurly's Subscriptions export (docs.recurly.com, "Subscriptions - export"): uuid, account_code,
# plan_code, plan_name, state (active, canceled, expired, future, paused, in trial), quantity,
# unit_amount, currency, activated_at, canceled_at, expires_at, current_period_started_at,
# current_period_ends_at, trial_started_at, trial_ends_at, then `custom_field_<api name>` columns.
# A canceled subscription keeps running (and paying) until the end of its term: `expires_at` is when
# it stops, `canceled_at` only when the customer asked.


def _is_recurly(h: Headers) -> bool:
    return (h.has("account_code") and h.has("plan_code")
            and h.has("unit_amount", "unit_amount_in_cents", "subscription_unit_amount")
            and h.has("state", "subscription_state") and h.has("activated_at", "subscription_activated_at"))


def _recurly(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "sub_id": (Kind.TEXT, ("uuid", "subscription_uuid", "subscription_id")),
        "customer": (Kind.TEXT, ("account_code",), {"required": True}),
        "activated": (Kind.DATE, ("activated_at", "subscription_activated_at")),
        "created": (Kind.DATE, ("created_at", "subscription_created_at")),
        "trial_end": (Kind.DATE, ("trial_ends_at",)),
        "canceled_at": (Kind.DATE, ("canceled_at", "subscription_canceled_at")),
        "expires_at": (Kind.DATE, ("expires_at", "subscription_expires_at")),
        "period_end": (Kind.DATE, ("current_period_ends_at",)),
        "state": (Kind.TEXT, ("state", "subscription_state")),
        "unit_amount": (Kind.NUMBER, ("unit_amount", "subscription_unit_amount")),
        "unit_cents": (Kind.NUMBER, ("unit_amount_in_cents",)),
        "quantity": (Kind.NUMBER, ("quantity", "subscription_quantity")),
        "interval_length": (Kind.NUMBER, ("plan_interval_length", "interval_length", "billing_interval_length")),
        "interval_unit": (Kind.TEXT, ("plan_interval_unit", "interval_unit", "billing_interval_unit")),
        "currency": (Kind.TEXT, ("currency",)),
        "plan_name": (Kind.TEXT, ("plan_name",)),
        "plan_code": (Kind.TEXT, ("plan_code",)),
        "segment": (Kind.TEXT, ("custom_field_segment", "custom_field_customer_segment", "custom_field_market_segment",
                                "segment")),
        "channel": (Kind.TEXT, ("custom_field_channel", "custom_field_lead_source", "custom_field_acquisition_channel",
                                "custom_field_source", "channel")),
    }
    inputs = _inputs(h, spec)
    state = "lower(trim({state.text}))"
    start = "COALESCE({activated}, {created})"
    unit = "COALESCE({unit_amount}, {unit_cents} / 100.0)"
    if "interval_unit" in inputs:
        months = _months_of("interval_length", "interval_unit")  # Recurly plan intervals: months or days
        per = "divided by the plan's billing interval in months (interval length and unit)"
    else:
        months = _months_named("plan_code", "plan_name")
        per = ("the export has no plan interval, so a plan whose code or name says annual / yearly is divided by "
               "12, quarterly by 3, and every other plan read as monthly")
    fields = {
        "customer_id": Field("{customer}", "customer"),
        # A trial pays nothing: MRR starts when the trial ends.
        "start_date": Field(f"CASE WHEN {{trial_end}} > {start} THEN {{trial_end}} ELSE {start} END",
                            "activated" if "activated" in inputs else "created"),
        # A canceled subscription runs to the end of its term: expires_at, not canceled_at.
        "end_date": Field(f"COALESCE({{expires_at}}, CASE WHEN {state} = 'expired' "
                          "THEN COALESCE({canceled_at}, {period_end}) END)", "expires_at",
                          note="expires_at (an expired subscription without it: canceled_at)"),
        "mrr": Field(f"{unit} * COALESCE({{quantity}}, 1) / {months}",
                     "unit_amount" if "unit_amount" in inputs else "unit_cents",
                     note="unit_amount × quantity, per month of the plan's interval"),
        "plan": Field("COALESCE({plan_name}, {plan_code})", "plan_name" if "plan_name" in inputs else "plan_code"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
        "subscription_id": Field("{sub_id}", "sub_id"),
    }
    rules = [
        f"mrr = unit_amount × quantity, {per}"
        + (" (unit_amount_in_cents ÷ 100)" if "unit_cents" in inputs and "unit_amount" not in inputs else ""),
        "start_date: activated_at (else created_at); a subscription in trial starts counting when its trial ends",
        "end_date: expires_at — a canceled subscription keeps running until its term expires (canceled_at is only "
        "when the customer asked); an expired one without expires_at ends at canceled_at",
        "subscriptions in state future (not started) or failed (never created) are left out",
    ]
    skip = ((f"{state} IN ('future', 'failed')", "not started (state future or failed)"), _trial_skip())
    return _subscriptions("recurly", "Recurly subscriptions export", inputs, fields, rules, skip)


# --- Close ------------------------------------------------------------------------------------

# Close's opportunities export (developer.close.com, Opportunity object; the app's CSV export writes the
# same field names): id, lead_id, lead_name, status_id, status_label, status_type (active / won / lost),
# value (an integer in CENTS: 50000 is "$500", as value_formatted shows), value_period (one_time /
# monthly / annual), value_currency, confidence, date_won (for an active opportunity the expected close
# date), date_lost, date_created, date_updated, user_id, user_name, note, then custom fields as
# `custom.<Field Name>`. One opportunity per row; a lead (the company) has many.


def _is_close(h: Headers) -> bool:
    return (h.has("status_type") and h.has("value_period") and h.has("lead_id", "lead_name")
            and h.has("date_won") and h.has("value"))


_CLOSE_SEGMENT = tuple(f"custom.{s}" for s in _SEGMENT) + _SEGMENT
_CLOSE_CHANNEL = ("custom.Lead Source", "custom.Source", "custom.Channel", "custom.Acquisition Channel",
                  "Lead Source", "Channel", "Source")


def _close(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "deal_id": (Kind.TEXT, ("id", "opportunity_id"), {"required": True}),
        "account": (Kind.TEXT, ("lead_id", "lead_name")),
        "owner": (Kind.TEXT, ("user_name",)),  # user_id is an id, not a person anyone reads
        "created": (Kind.DATE, ("date_created",), {"required": True}),
        "won": (Kind.DATE, ("date_won",)),
        "lost": (Kind.DATE, ("date_lost",)),
        "updated": (Kind.DATE, ("date_updated",)),
        "status": (Kind.TEXT, ("status_type",), {"required": True}),
        "stage": (Kind.TEXT, ("status_label",)),
        # read, not loaded: the label's id (a lifecycle) and value's display copy ("$31,300") — never a split
        "status_id": (Kind.TEXT, ("status_id",)),
        "value_formatted": (Kind.TEXT, ("value_formatted",)),
        "value": (Kind.NUMBER, ("value",)),
        "period": (Kind.TEXT, ("value_period",)),
        "currency": (Kind.TEXT, ("value_currency",)),
        "deal_type": (Kind.ENUM, ("custom.Opportunity Type", "custom.Deal Type", "custom.Type", "Opportunity Type"),
                      _DEAL_TYPE),
        "segment": (Kind.TEXT, _CLOSE_SEGMENT),
        "channel": (Kind.TEXT, _CLOSE_CHANNEL),
    }
    status = "lower(trim({status.text}))"
    period = "lower(trim({period.text}))"
    # Cents → units, then a year of it: a monthly value × 12; annual and one-time as they are. A value of
    # 0 is Close's empty value field, not a free deal.
    amount = (f"NULLIF({{value}}, 0) / 100.0 * (CASE WHEN {period} IN ('monthly', 'month') THEN 12 "
              f"WHEN {period} IN ('quarterly', 'quarter') THEN 4 ELSE 1 END)")
    fields = {
        "deal_id": Field("{deal_id}", "deal_id"),
        "account_id": Field("{account}", "account"),
        "owner": Field("{owner}", "owner"),
        "created_date": Field("{created}", "created"),
        "stage": Field("{stage}", "stage"),
        "amount": Field(amount, "value", note="value ÷ 100 (cents), × 12 when value_period is monthly"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
    }
    rules = ["status: Close's status_type (active → open, won, lost); status_label is the stage, shown, never a split",
             "close_date: date_won for won opportunities, date_lost for lost ones (date_updated when that is "
             "blank), the expected date_won for active ones",
             "amount: value is in cents (÷ 100); a monthly value_period is annualised (× 12), annual and one_time "
             "values are taken as they are; a value of 0 is Close's empty value field and loads as no amount"]
    m = _vendor_deals("close", "Close opportunities export", h, spec, fields, rules,
                      file_status=f"CASE {status} WHEN 'active' THEN 'open' WHEN 'won' THEN 'won' "
                                  "WHEN 'lost' THEN 'lost' END")
    fields = dict(m.fields)
    fields["close_date"] = Field("CASE {=status} WHEN 'won' THEN COALESCE({won}, {updated}) "
                                 "WHEN 'lost' THEN COALESCE({lost}, {updated}) ELSE {won} END", "won",
                                 note="date_won (won) / date_lost (lost), by status_type")
    m = replace(m, fields=fields)
    return _with_currencies(m)


# --- Chargify / Maxio Advanced Billing ---------------------------------------------------------

# Chargify's Subscriptions export (help.chargify.com "Exporting Data"; Maxio Advanced Billing keeps it):
# id, state, customer_id, customer_reference, customer_organization, product_name, product_handle,
# product_price_in_cents, total_revenue_in_cents, balance_in_cents, created_at, activated_at,
# current_period_ends_at, canceled_at, expires_at, cancel_at_end_of_period, cancellation_message …,
# timestamps written "2016-06-03 12:43:50 -0400" (the local date is kept). States (Chargify
# "Subscription States"): live trialing / active / past_due / soft_failure …, end of life canceled /
# unpaid / expired / trial_ended. `activated_at` is when it first went active (at signup or at trial
# end); `canceled_at` is set when it is canceled, by request or by dunning; `expires_at` when it
# expires (ceases billing); "cancel at end of period" keeps it running to current_period_ends_at.


def _is_chargify(h: Headers) -> bool:
    return (h.has("state") and h.has("product_price_in_cents", "product_handle")
            and h.has("customer_id", "customer_reference") and h.has("current_period_ends_at", "activated_at")
            and not h.has("account_code"))


def _chargify(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "sub_id": (Kind.TEXT, ("id", "subscription_id")),
        "customer": (Kind.TEXT, ("customer_id", "customer_reference"), {"required": True}),
        "activated": (Kind.DATE, ("activated_at",)),
        "created": (Kind.DATE, ("created_at",)),
        "canceled_at": (Kind.DATE, ("canceled_at", "cancelled_at")),
        "expires_at": (Kind.DATE, ("expires_at",)),
        "period_end": (Kind.DATE, ("current_period_ends_at",)),
        "at_period_end": (Kind.BOOL, ("cancel_at_end_of_period",)),
        "state": (Kind.TEXT, ("state",)),
        "price_cents": (Kind.NUMBER, ("product_price_in_cents",),
                        {"required": not h.has("product_price", "product_price_in_dollars")}),
        "price": (Kind.NUMBER, ("product_price", "product_price_in_dollars")),
        "interval": (Kind.NUMBER, ("product_interval", "interval")),
        "interval_unit": (Kind.TEXT, ("product_interval_unit", "interval_unit")),
        "currency": (Kind.TEXT, ("currency", "product_currency")),
        "product_name": (Kind.TEXT, ("product_name",)),
        "product_handle": (Kind.TEXT, ("product_handle",)),
        "segment": (Kind.TEXT, _SEGMENT),
        "channel": (Kind.TEXT, ("Lead Source", "Channel", "Source", "Acquisition Channel")),
    }
    inputs = _inputs(h, spec)
    state = "lower(trim({state.text}))"
    start = "COALESCE({activated}, {created})" if "activated" not in inputs else "{activated}"
    price = "COALESCE({price_cents} / 100.0, {price})"
    if "interval" in inputs:
        months, per = _months_of("interval", "interval_unit"), "divided by the product's interval in months"
    else:
        months = _months_named("product_handle", "product_name")
        per = ("the export has no product interval, so a product whose name or handle says annual / yearly is "
               "divided by 12, quarterly by 3, and every other product read as monthly")
    at_end = "COALESCE({at_period_end}, false)"
    end = (f"CASE WHEN {state} IN ('canceled', 'cancelled', 'unpaid') THEN CASE WHEN {at_end} "
           "THEN COALESCE({period_end}, {canceled_at}, {expires_at}) ELSE COALESCE({canceled_at}, {expires_at}, "
           f"{{period_end}}) END WHEN {state} = 'expired' THEN COALESCE({{expires_at}}, {{canceled_at}}, "
           f"{{period_end}}) WHEN {at_end} THEN COALESCE({{period_end}}, {{expires_at}}) ELSE {{expires_at}} END")
    fields = {
        "customer_id": Field("{customer}", "customer"),
        "start_date": Field(start, "activated" if "activated" in inputs else "created"),
        "end_date": Field(end, "canceled_at", note="canceled_at (canceled), expires_at (expired), "
                                                    "current_period_ends_at (cancel at end of period)"),
        "mrr": Field(f"{price} / {months}", "price_cents" if "price_cents" in inputs else "price",
                     note="product_price_in_cents ÷ 100, per month of the product's interval"),
        "plan": Field("COALESCE({product_name}, {product_handle})",
                      "product_name" if "product_name" in inputs else "product_handle"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
        "subscription_id": Field("{sub_id}", "sub_id"),
    }
    rules = [
        f"mrr = product_price_in_cents ÷ 100 (the export writes cents: 556800 is 5,568.00), {per}; "
        "components and usage are not in this export",
        "start_date: activated_at (when it first went active, at signup or when its trial ended)",
        "end_date: a canceled (or unpaid) subscription ends at canceled_at — at current_period_ends_at when it "
        "was canceled at the end of its period; an expired one at expires_at; a live one set to cancel at the "
        "end of its period at current_period_ends_at",
        "subscriptions never activated (in trial, trial ended unpaid, pending) are left out",
    ]
    skip = []
    if "activated" in inputs:
        skip.append(("{activated} IS NULL", "never activated (in trial, or its trial ended unpaid)"))
    skip.append((f"{state} IN ('pending', 'failed_to_create', 'trialing')", "not started (pending or in trial)"))
    return _subscriptions("chargify", "Chargify (Maxio) subscriptions export", inputs, fields, rules, skip)


# --- Paddle Billing ---------------------------------------------------------------------------

# Paddle Billing has no subscriptions report (its reports are transactions, adjustments, products and
# discounts): a subscriptions file is the API's subscription list written out as CSV by a script or a
# pipeline (pandas json_normalize, Fivetran, ingestr, Sling), with the entity's fields (developer.paddle.com
# "Subscriptions"): id (sub_…), status (active, canceled, past_due, paused, trialing), customer_id (ctm_…),
# address_id, business_id, currency_code, created_at, updated_at, started_at, first_billed_at, next_billed_at,
# paused_at, canceled_at, collection_mode, billing_cycle {interval: day / week / month / year, frequency},
# current_billing_period {starts_at, ends_at}, scheduled_change {action: cancel / pause / resume,
# effective_at, resume_at}, items [{status, quantity, price {id, description, name, unit_price {amount,
# currency_code}}}], custom_data. Nested fields come dotted (`billing_cycle.interval`,
# `items[0].price.unit_price.amount`) or joined by underscores (`billing_cycle_interval`); both normalise
# alike. Amounts are strings in the currency's lowest unit ("4900" is 49.00 USD; JPY and KRW have none
# smaller, so "5000" is ¥5,000). Timestamps are RFC 3339 (2024-10-12T07:20:50.52Z).
_PADDLE_ITEM = re.compile(r"^items_(\d+)_(?:price_)?unit_price_amount$")


def _is_paddle(h: Headers) -> bool:
    return (h.has("customer_id") and h.has("status")
            and h.has("billing_cycle.interval", "price.billing_cycle.interval", "billing_cycle")
            and h.has("first_billed_at", "next_billed_at", "current_billing_period.ends_at", "scheduled_change.action"))


def _is_paddle_transactions(h: Headers) -> bool:
    """Paddle's transactions report (or its API's transaction list): one row per bill, linked to its subscription."""
    return (h.has("subscription_id") and h.has("customer_id") and h.has("billed_at")
            and h.has("invoice_number", "origin") and not h.has("billing_cycle.interval", "billing_cycle_interval"))


def _paddle_items(h: Headers) -> list[tuple[str, str, str | None, str | None]]:
    """(index, amount header, quantity header, item status header) of every item the file writes out; a file
    of one item per row may write its price without an index (`price.unit_price.amount`)."""
    found = sorted((int(m.group(1)), header) for key, header in h.by_key.items() if (m := _PADDLE_ITEM.match(key)))
    out = [(str(i), amount, next(iter(h.find(f"items_{i}_quantity")), None),
            next(iter(h.find(f"items_{i}_status")), None)) for i, amount in found]
    if not out:
        amount = h.find("price.unit_price.amount", "items.price.unit_price.amount", "unit_price.amount",
                        "unit_price_amount")
        if amount:
            out.append(("0", amount[0], next(iter(h.find("quantity", "items.quantity")), None),
                        next(iter(h.find("items.status", "item_status")), None)))
    return out


def _paddle(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "sub_id": (Kind.TEXT, ("id", "subscription_id")),
        "customer": (Kind.TEXT, ("customer_id",), {"required": True}),
        "status": (Kind.TEXT, ("status",)),
        "created": (Kind.DATE, ("created_at",)),
        "started": (Kind.DATE, ("started_at",)),
        "first_billed": (Kind.DATE, ("first_billed_at",)),
        "paused_at": (Kind.DATE, ("paused_at",)),
        "canceled_at": (Kind.DATE, ("canceled_at",)),
        "period_end": (Kind.DATE, ("current_billing_period.ends_at",)),
        "change": (Kind.TEXT, ("scheduled_change.action",)),
        "change_at": (Kind.DATE, ("scheduled_change.effective_at",)),
        "interval": (Kind.ENUM, ("billing_cycle.interval", "price.billing_cycle.interval"),
                     {"required": True, "synonyms": tuple(INTERVAL_SYNONYMS.items()),
                      "allowed": ("day", "week", "month", "year")}),
        "frequency": (Kind.NUMBER, ("billing_cycle.frequency", "price.billing_cycle.frequency")),
        "currency": (Kind.TEXT, ("currency_code", "items[0].price.unit_price.currency_code")),
        "plan": (Kind.TEXT, ("items[0].price.name", "items[0].price.description", "items[0].product.name",
                             "items[0].price.id", "price.name", "price.description", "price.id")),
        "segment": (Kind.TEXT, ("custom_data.segment", "custom_data.customer_segment", "custom_data.market_segment",
                                "segment")),
        "channel": (Kind.TEXT, ("custom_data.channel", "custom_data.acquisition_channel", "custom_data.lead_source",
                                "custom_data.source", "channel")),
    }
    inputs = _inputs(h, spec)
    # No item written out column by column (a script that kept `items` as one nested cell): no amount to read,
    # and the load says the file lacks the mrr this layout makes.
    items = _paddle_items(h) or [("0", None, None, None)]
    parts = []
    for i, amount, quantity, item_status in items:
        if amount:
            inputs[f"amount_{i}"] = Input((amount,), Kind.NUMBER)
        part = f"{{amount_{i}}} * " + (f"COALESCE({{quantity_{i}}}, 1)" if quantity else "1")
        if quantity:
            inputs[f"quantity_{i}"] = Input((quantity,), Kind.NUMBER)
        if item_status:  # an item taken off the subscription bills nothing
            inputs[f"item_status_{i}"] = Input((item_status,))
            part = f"CASE WHEN lower(trim({{item_status_{i}.text}})) = 'inactive' THEN 0 ELSE {part} END"
        parts.append(f"COALESCE({part}, 0)")
    status = "lower(trim({status.text}))"
    zero_decimal = ", ".join(f"'{c}'" for c in ZERO_DECIMAL_CURRENCIES)
    minor = (f"(CASE WHEN lower({{currency.text}}) IN ({zero_decimal}) THEN 1 ELSE 100 END)"
             if "currency" in inputs else "100")
    months = ("(CASE {interval} WHEN 'month' THEN 1.0 WHEN 'year' THEN 12.0 WHEN 'week' THEN 12.0 / 52 "
              "WHEN 'day' THEN 12.0 / 365 END * COALESCE(NULLIF({frequency}, 0), 1))")
    billed = " + ".join(parts)
    start = "COALESCE({first_billed}, {started}, {created})"
    end = (f"CASE WHEN {status} = 'canceled' THEN COALESCE({{canceled_at}}, {{period_end}}) "
           f"WHEN {status} = 'paused' THEN COALESCE({{paused_at}}, {{period_end}}) "
           "WHEN lower(trim({change.text})) IN ('cancel', 'pause') THEN {change_at} END")
    fields = {
        "customer_id": Field("{customer}", "customer"),
        "start_date": Field(start, "first_billed" if "first_billed" in inputs else "started",
                            note="first_billed_at (else started_at)"),
        "end_date": Field(end, "canceled_at", note="canceled_at (canceled), paused_at (paused), "
                                                    "scheduled_change.effective_at (a cancel or pause scheduled)"),
        "mrr": Field(f"({billed}) / {{minor}} / {months}" if items[0][1] else "{amount_0}", f"amount_{items[0][0]}",
                     note="unit_price.amount (lowest currency unit) ÷ 100 × quantity, per month of the billing cycle"),
        "plan": Field("{plan}", "plan"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
        "subscription_id": Field("{sub_id}", "sub_id"),
    }
    rules = [
        "mrr = unit_price.amount × quantity" + (f", summed over the {len(items)} items written out" if len(items) > 1
                                                else "")
        + ", in the currency's lowest unit (÷ 100: '4900' is 49.00; JPY and KRW as they are), per month of the "
        "billing cycle (year ÷ 12, week × 52/12, day × 365/12, divided by its frequency); discounts and one-off "
        "charges are not in the subscription, so MRR is at the price",
        "start_date: first_billed_at (when it first paid: a trial does not count), else started_at",
        "end_date: a canceled subscription ends at canceled_at; a paused one bills nothing from paused_at and "
        "counts as ended there (resumed, it is active again in the next export); a cancel or pause scheduled "
        "for the end of the period ends it at scheduled_change.effective_at",
        "past_due subscriptions still count (Paddle is retrying their payment)",
    ]
    skip = []
    if "first_billed" in inputs:
        skip.append(("{first_billed} IS NULL AND " + f"{status} IN ('trialing', 'canceled')",
                     "never billed (in trial, or canceled in its trial)"))
    else:
        skip.append((f"{status} = 'trialing'", "in trial: not paying yet"))
    m = _subscriptions("paddle", "Paddle Billing subscriptions export", inputs, fields, rules, skip)
    amounts = [f"{{amount_{i}.text}}" for i, amount, _, _ in items if amount]
    if not amounts:
        return m

    def units(m: Mapping, facts: dict) -> Mapping:
        """Paddle writes amounts as whole numbers of the lowest unit; a pipeline that turned them into currency
        units (49.00) wrote decimals, and dividing those by 100 would make MRR a hundred times too small."""
        decimals = bool(facts.get("decimal_amounts"))
        divisor = "1" if decimals else minor
        out = {k: (replace(f, sql=f.sql.replace("{minor}", divisor)) if k == "mrr" else f) for k, f in m.fields.items()}
        said = ("amounts carry decimals (49.00), so the file holds currency units, not Paddle's lowest unit: read as "
                "they are, not divided by 100",) if decimals else ()
        m = replace(m, fields=out, rules=m.rules + said)
        return _currency_refine(m, facts) if "currency" in m.inputs else m

    decimal = " OR ".join(f"contains({a}, '.')" for a in amounts)
    return replace(m, facts={**m.facts, "decimal_amounts": f"bool_or({decimal})"}, refine=units)


# --- Zuora ------------------------------------------------------------------------------------

# Zuora's Data Source exports (Reporting > Data Sources, "Rate Plan Charge") name each column `Object.Field`
# (Account.AccountNumber, Account.Currency, Subscription.Name, Subscription.Status, Subscription.TermEndDate,
# Subscription.CancelledDate, RatePlan.Name, RatePlanCharge.ChargeNumber, RatePlanCharge.Segment,
# RatePlanCharge.ChargeType, RatePlanCharge.BillingPeriod, RatePlanCharge.EffectiveStartDate,
# RatePlanCharge.EffectiveEndDate, RatePlanCharge.MRR …). One row per charge SEGMENT: an amendment (an
# upsell, a price change) ends the charge's current segment and starts the next, numbered 1, 2, … in
# RatePlanCharge.Segment — a version counter, not a customer segment. A segment counts from its effective
# start to its effective end; RatePlanCharge.MRR is already monthly. Subscription statuses: Draft, Pending
# Activation, Pending Acceptance, Active, Suspended, Cancelled, Expired.


def _is_zuora(h: Headers) -> bool:
    return (h.has("RatePlanCharge.MRR", "RatePlanCharge.EffectiveStartDate")
            and h.has("Account.AccountNumber", "Subscription.Name", "Subscription.Status"))


def _zuora(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "customer": (Kind.TEXT, ("Account.AccountNumber", "Account.Id", "Account.Name"), {"required": True}),
        "sub_name": (Kind.TEXT, ("Subscription.Name", "Subscription.Id")),
        "version": (Kind.NUMBER, ("Subscription.Version",)),
        "status": (Kind.TEXT, ("Subscription.Status",)),
        "sub_start": (Kind.DATE, ("Subscription.SubscriptionStartDate", "Subscription.ContractEffectiveDate")),
        "term_end": (Kind.DATE, ("Subscription.TermEndDate",)),
        "term_start": (Kind.TEXT, ("Subscription.TermStartDate",)),  # read, not loaded: the current term's start
        "cancelled": (Kind.DATE, ("Subscription.CancelledDate",)),
        "auto_renew": (Kind.BOOL, ("Subscription.AutoRenew",)),
        "charge": (Kind.TEXT, ("RatePlanCharge.ChargeNumber", "RatePlanCharge.Id")),
        "charge_segment": (Kind.TEXT, ("RatePlanCharge.Segment",)),
        "charge_type": (Kind.TEXT, ("RatePlanCharge.ChargeType",)),
        "billing_period": (Kind.TEXT, ("RatePlanCharge.BillingPeriod",)),
        "eff_start": (Kind.DATE, ("RatePlanCharge.EffectiveStartDate",)),
        "eff_end": (Kind.DATE, ("RatePlanCharge.EffectiveEndDate",)),
        "mrr": (Kind.NUMBER, ("RatePlanCharge.MRR",), {"required": True}),
        "tcv": (Kind.NUMBER, ("RatePlanCharge.TCV",)),
        "plan": (Kind.TEXT, ("RatePlan.Name", "ProductRatePlan.Name", "Product.Name")),
        "currency": (Kind.TEXT, ("Account.Currency", "RatePlanCharge.Currency", "Subscription.Currency")),
        "segment": (Kind.TEXT, ("Account.Segment__c", "Account.Segment", "Account.CustomerSegment__c",
                                "Subscription.Segment__c")),
        "channel": (Kind.TEXT, ("Account.Channel__c", "Account.LeadSource__c", "Account.Source__c")),
    }
    inputs = _inputs(h, spec)
    status = "lower(trim({status.text}))"
    # An active, auto-renewing subscription's last segment "ends" at its term end only to renew: it does not end.
    end = (f"CASE WHEN {status} = 'active' AND {{auto_renew}} AND {{eff_end}} >= {{term_end}} THEN NULL "
           f"ELSE COALESCE({{eff_end}}, CASE WHEN {status} = 'cancelled' THEN {{cancelled}} "
           f"WHEN {status} = 'expired' THEN {{term_end}} END) END")
    key = "concat_ws('#', {charge}, {charge_segment})" if "charge" in inputs else \
        "concat_ws('#', {sub_name}, {plan}, {eff_start.text})"
    fields = {
        "customer_id": Field("{customer}", "customer"),
        "start_date": Field("COALESCE({eff_start}, {sub_start})", "eff_start" if "eff_start" in inputs else "sub_start"),
        "end_date": Field(end, "eff_end" if "eff_end" in inputs else "cancelled",
                          note="RatePlanCharge.EffectiveEndDate (none for an active auto-renewing one at its term end)"),
        "mrr": Field("{mrr}", "mrr"),
        "plan": Field("{plan}", "plan"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
        "subscription_id": Field(key, "charge" if "charge" in inputs else "sub_name",
                                 note="ChargeNumber # its segment number (one row per charge segment)"),
    }
    rules = [
        "each row is one segment of a rate plan charge, counting from RatePlanCharge.EffectiveStartDate to its "
        "EffectiveEndDate; an amendment ends one segment and starts the next, so a customer's segments never "
        "overlap and an upsell shows as expansion",
        "mrr: RatePlanCharge.MRR (already monthly; read in the account's currency)",
        "end_date: EffectiveEndDate (else CancelledDate for a cancelled subscription, TermEndDate for an expired "
        "one); an active auto-renewing subscription's last segment does not end at its term end, it renews",
        "RatePlanCharge.Segment is the charge's version number (1, 2, …), never a customer segment: the segment "
        "is the account's (Account.Segment__c)",
        "charges that are not recurring (one-time, usage) and subscriptions not yet active (draft, pending) are "
        "left out",
    ]
    skip = [(f"{status} IN ('draft', 'pending activation', 'pending acceptance', 'pendingactivation', "
             "'pendingacceptance')", "not active yet (draft or pending)")]
    if "charge_type" in inputs:
        skip.append(("lower(trim({charge_type.text})) IN ('onetime', 'one-time', 'one time', 'usage')",
                     "not a recurring charge (one-time or usage)"))
    if "version" in inputs and "sub_name" in inputs:
        # An amendment makes a new version of the subscription, with every charge again: the earlier versions'
        # rows would count the same charge twice (and keep an end date the amendment changed).
        skip.insert(0, ("{version} < max({version}) OVER (PARTITION BY {sub_name.text})",
                        "an earlier version of an amended subscription (its latest version is in the file)"))
        rules.append("Subscription.Version: only each subscription's latest version is read")
    return _subscriptions("zuora", "Zuora rate plan charges export", inputs, fields, rules, skip)


# --- Braintree ----------------------------------------------------------------------------------

# Braintree's subscription search (Control Panel > Subscriptions, search, Download), and scripts that write the
# API's Subscription object out, give one row per subscription (developer.paypal.com/braintree, Subscription and
# RecurringBillingSubscriptionTimeline): Subscription ID, Plan ID, Status (Active, Canceled, Expired, Past Due,
# Pending), Price, Currency ISO Code, Billing Day of Month, First Billing Date (when billing starts: after any
# trial; in the future for a Pending one), Next Billing Date, Paid Through Date (the billing period end at the
# last successful payment; blank if it never paid), Billing Period Start Date / End Date (the current cycle),
# Days Past Due, Number Of Billing Cycles, Current Billing Cycle, Balance, Failure Count, Merchant Account ID,
# Customer ID, Created At, Updated At. Price is PER BILLING CYCLE: the plan's billingFrequency is "the billing
# interval of the plan in months" (1 to 24), and the subscription export does not write it — a yearly plan's
# Price is a year's. Braintree cancels at once (no cancel-at-period-end) and writes no cancellation date.


def _is_braintree(h: Headers) -> bool:
    """'Plan ID' and 'Price' beside Braintree's own timeline dates ('Paid Through Date', 'First Billing Date',
    'Billing Day of Month'): no other billing export writes those names."""
    return (h.has("Subscription ID", "subscription_id", "id") and h.has("Plan ID", "plan_id")
            and h.has("Price") and h.has("Paid Through Date", "First Billing Date", "Billing Day of Month")
            and h.has("Status"))


def _braintree(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "sub_id": (Kind.TEXT, ("Subscription ID", "subscription_id", "id")),
        "customer": (Kind.TEXT, ("Customer ID", "customer_id", "customer.id")),
        "email": (Kind.TEXT, ("Customer Email", "customer_email", "customer.email")),
        "status": (Kind.TEXT, ("Status",)),
        "price": (Kind.NUMBER, ("Price",), {"required": True}),
        # the plan's billing frequency, as a script or a custom report writes it: months (12) or a word (Yearly)
        "frequency": (Kind.TEXT, ("Billing Frequency", "Plan Billing Frequency", "plan.billing_frequency",
                                  "billingFrequency", "Billing Frequency (months)", "Billing Period", "Billing Cycle",
                                  "Plan Billing Period", "Billing Interval")),
        "first_billing": (Kind.DATE, ("First Billing Date",)),
        "created": (Kind.DATE, ("Created At", "Created", "Creation Date")),
        "paid_through": (Kind.DATE, ("Paid Through Date",)),
        "period_start": (Kind.DATE, ("Billing Period Start Date",)),
        "period_end": (Kind.DATE, ("Billing Period End Date",)),
        "updated": (Kind.DATE, ("Updated At", "Updated")),
        "currency": (Kind.TEXT, ("Currency ISO Code", "Currency Code", "Currency", "currency_iso_code")),
        "plan": (Kind.TEXT, ("Plan ID", "plan_id")),
        "plan_name": (Kind.TEXT, ("Plan Name", "plan_name", "plan.name")),
        "segment": (Kind.TEXT, _SEGMENT),
        "channel": (Kind.TEXT, ("Channel", "Source", "Lead Source", "Acquisition Channel")),
        "merchant": (Kind.TEXT, ("Merchant Account ID", "merchant_account_id", "Merchant Account")),
        # read, not loaded: the billing machinery's own bookkeeping, one value per row or per cycle — never a split
        "billing_day": (Kind.TEXT, ("Billing Day of Month",)),
        "next_billing": (Kind.TEXT, ("Next Billing Date",)),
        "days_past_due": (Kind.TEXT, ("Days Past Due",)),
        "cycles": (Kind.TEXT, ("Number Of Billing Cycles",)),
        "current_cycle": (Kind.TEXT, ("Current Billing Cycle",)),
        "balance": (Kind.TEXT, ("Balance",)),
        "failures": (Kind.TEXT, ("Failure Count",)),
        "next_amount": (Kind.TEXT, ("Next Bill Amount", "Next Billing Period Amount")),
        "token": (Kind.TEXT, ("Payment Method Token",)),
        "never_expires": (Kind.TEXT, ("Never Expires",)),
        "trial": (Kind.TEXT, ("Trial Period",)),
        "trial_duration": (Kind.TEXT, ("Trial Duration",)),
        "trial_unit": (Kind.TEXT, ("Trial Duration Unit",)),
    }
    inputs = _inputs(h, spec)
    status = "lower(trim({status.text}))"
    ended = f"{status} IN ('canceled', 'cancelled', 'expired')"
    # Months one bill covers: the plan's billing frequency where the file has it; else the current billing
    # period's length (Braintree's own dates: 10/29 → 11/28 is 1, 1/20/2026 → 1/20/2027 is 12); else the
    # plan's name (annual / yearly → 12, quarterly → 3); else 1.
    dated = "period_start" in inputs and "period_end" in inputs
    period = ("(CASE WHEN round((date_diff('day', {period_start}, {period_end}) + 1) / 30.44) BETWEEN 1 AND 24 "
              "THEN round((date_diff('day', {period_start}, {period_end}) + 1) / 30.44) END)") if dated else "NULL"
    named = _months_named("plan", "plan_name")
    given = _CYCLE_GIVEN.replace("{billing_months.text}", "{frequency.text}")
    months = f"COALESCE({given}, {period}, {named})"
    how = []
    if "frequency" in inputs:
        how.append(f"the plan's billing frequency in months ({inputs['frequency'].columns[0]!r})")
    if dated:
        how.append("the length of the current billing period (Billing Period Start Date to End Date: a month, "
                   "a quarter, a year)")
    how.append("the plan's name (a Plan ID that says annual / yearly is 12 months, quarterly 3, any other 1)")
    rules = [
        "mrr = Price ÷ the months one bill covers: Braintree's Price is per billing cycle (a yearly plan's Price is "
        "a year's), and its subscription export does not write the plan's billing frequency; the months come "
        "from " + ", else ".join(how) + "; add-ons and discounts are not in this export, so MRR is at the Price",
        "start_date: First Billing Date (when it first bills: a trial does not count), else Created At",
        "end_date: a Canceled or Expired subscription ends at its Paid Through Date (Braintree cancels at once and "
        "writes no cancellation date: it stopped paying after the period it paid for); Active and Past Due ones "
        "run on (Braintree is retrying a Past Due one's payment)",
        "Pending subscriptions (not started), $0 ones (a free trial or free plan: no revenue) and Canceled or "
        "Expired ones that never paid (no Paid Through Date) are left out",
    ]
    if "customer" in inputs:
        customer = Field("{customer}", "customer")
    elif "email" in inputs:
        customer = Field("lower(trim({email.text}))", "email")
        rules.append("no 'Customer ID' column: a customer is identified by its Customer Email")
    else:
        customer = Field("{sub_id}", "sub_id", note="the Subscription ID (no customer column)")
        rules.append("no 'Customer ID' column: each subscription counts as its own customer")
    end = (f"CASE WHEN {ended} THEN COALESCE({{paid_through}}, {{period_end}}, {{updated}}) END"
           if "paid_through" not in inputs else f"CASE WHEN {ended} THEN {{paid_through}} END")
    fields = {
        "customer_id": customer,
        "start_date": Field("COALESCE({first_billing}, {created})",
                            "first_billing" if "first_billing" in inputs else "created",
                            note="First Billing Date (else Created At)"),
        "end_date": Field(end, "paid_through" if "paid_through" in inputs else "status",
                          note="Paid Through Date, for Canceled and Expired subscriptions"),
        "mrr": Field(f"{{price}} / {months}", "price", note="Price ÷ months per billing cycle"),
        "plan": Field("COALESCE({plan_name}, {plan})", "plan_name" if "plan_name" in inputs else "plan"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
        "subscription_id": Field("{sub_id}", "sub_id"),
        # A merchant account is how a Braintree business splits its billing (by currency, region or brand): a
        # split of its own, under a name that does not end in `_id` (an id column is never offered as a split).
        "merchant_account": Field("{merchant}", "merchant"),
    }
    skip = [(f"{status} = 'pending'", "not started yet (status Pending)"),
            ("{price} = 0", "a $0 subscription (a free trial or free plan): no recurring revenue")]
    if "paid_through" in inputs:
        skip.append((f"{ended} AND {{paid_through}} IS NULL", "canceled or expired before it ever paid"))
    notes = []
    if dated:
        # Where the plan's name and Braintree's own billing period disagree (a plan called 'annual' billed monthly),
        # the period wins; the rows are said, so a plan named the wrong way is seen, not silently read.
        notes.append(Note(f"{period} IS NOT NULL AND {named} <> 1 AND {period} <> {named}",
                          "{n} subscription(s) on a plan whose name says annual or quarterly bill over a different "
                          "period by their Billing Period dates (first on line {line}): their MRR follows the "
                          "billing period — check those plans"))
        notes.append(Note(f"{{price}} <> 0 AND NOT ({ended}) AND {period} IS NULL AND "
                          + (f"{given} IS NULL" if "frequency" in inputs else "true"),
                          "{n} subscription(s) have no billing period dates: the months one bill covers were "
                          "guessed from the Plan ID (annual / yearly 12, quarterly 3, else 1) (first on line {line})"))
    else:
        notes.append(Note(f"{{price}} <> 0 AND {named} = 1" + (f" AND {given} IS NULL" if "frequency" in inputs
                                                                else ""),
                          "{n} subscription(s) are read as billed monthly only because their Plan ID says nothing "
                          "else (the file has no billing period dates nor billing frequency): if a plan bills yearly, "
                          "its MRR is 12 times too high (first on line {line})"))
    m = _subscriptions("braintree", "Braintree subscriptions export", inputs, fields, rules, skip)
    return replace(m, notes=tuple(notes))


# --- Copper CRM ---------------------------------------------------------------------------------

# Copper's opportunities export (Opportunities list > Export, CSV) writes its field labels: Copper ID, Name,
# Company, Primary Contact, Pipeline, Stage, Status, Value, Currency, Close Date, Owner, Loss Reason, Priority,
# Win Probability, Source, Date Created, Date Modified, Tags, then custom fields by label. The API's names
# (developer.copper.com Opportunity: id, name, company_name, primary_contact_id, pipeline_id, pipeline_stage_id,
# status, monetary_value, monetary_unit, close_date, assignee_id, loss_reason_id, customer_source_id,
# win_probability, date_created, tags) normalise alike where they are labels. Status is one of Open, Won, Lost
# and Abandoned — closed without a sale and without a loss recorded: a deal that went nowhere.


def _is_copper(h: Headers) -> bool:
    """'Copper ID' names it; without it, Copper's own set: a Status beside 'Primary Contact', 'Win Probability'
    and a 'Pipeline' (no other CRM export writes the three together)."""
    return h.has("Copper ID") or (h.has("Status") and h.has("Primary Contact", "primary_contact_id")
                                  and h.has("Win Probability", "win_probability")
                                  and h.has("Pipeline", "pipeline_id") and h.has("Close Date"))


def _copper(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "deal_id": (Kind.TEXT, ("Copper ID", "ID", "Opportunity ID"), {"required": True}),
        "account": (Kind.TEXT, ("Company", "Company Name", "company_name")),
        "owner": (Kind.TEXT, ("Owner", "Assignee", "Assigned To")),
        "created": (Kind.DATE, ("Date Created", "Created", "Created At"), {"required": True}),
        "closed": (Kind.DATE, ("Close Date",)),
        "stage": (Kind.TEXT, ("Stage", "Pipeline Stage")),
        "status": (Kind.TEXT, ("Status",), {"required": True}),
        "amount": (Kind.NUMBER, ("Value", "monetary_value", "Amount")),
        "deal_type": (Kind.ENUM, ("Type", "Opportunity Type", "Deal Type"), _DEAL_TYPE),
        "channel": (Kind.TEXT, ("Source", "Customer Source", "customer_source", "Lead Source")),
        "segment": (Kind.TEXT, _SEGMENT),
        "currency": (Kind.TEXT, ("Currency", "monetary_unit")),
        # read, not loaded: a person, free tags, a typed probability, the last edit — one per row, never a split
        "contact": (Kind.TEXT, ("Primary Contact", "primary_contact_id")),
        "tags": (Kind.TEXT, ("Tags",)),
        "probability": (Kind.TEXT, ("Win Probability", "win_probability")),
        "modified": (Kind.TEXT, ("Date Modified", "date_modified")),
    }
    status = "lower(trim({status.text}))"
    fields = {
        "deal_id": Field("{deal_id}", "deal_id"),
        "account_id": Field("{account}", "account"),
        "owner": Field("{owner}", "owner"),
        "created_date": Field("{created}", "created"),
        "close_date": Field("{closed}", "closed"),
        "stage": Field("{stage}", "stage"),
        "amount": Field("{amount}", "amount"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
    }
    rules = ["status: Copper's own Status (Open, Won, Lost); Abandoned — closed without a sale — is read as lost, "
             "so win rates count it as a loss and a created-date count keeps it",
             "close_date: the Close Date (for an open opportunity, the expected one)",
             "channel: Source (Copper's customer source)",
             "Primary Contact, Tags, Win Probability and Date Modified are read, not loaded: a person, free tags, a "
             "typed guess and the last edit are no segment"]
    m = _vendor_deals("copper", "Copper CRM opportunities export", h, spec, fields, rules,
                      file_status=f"CASE {status} WHEN 'open' THEN 'open' WHEN 'won' THEN 'won' WHEN 'lost' "
                                  "THEN 'lost' WHEN 'abandoned' THEN 'lost' END")
    abandoned = Note(f"{status} = 'abandoned'",
                     "{n} opportunity(ies) have Status 'Abandoned' (closed without a sale): counted as lost, so win "
                     "rates count them as losses (first on line {line})")
    return _with_currencies(replace(m, notes=(abandoned, *m.notes)))


# --- Lemon Squeezy --------------------------------------------------------------------------------

# Lemon Squeezy's subscriptions (Dashboard > Subscriptions > Export, or the API's Subscription object written out):
# id, store_id, customer_id, order_id, order_item_id, product_id, variant_id, product_name, variant_name, user_name,
# user_email, status (on_trial, active, paused, past_due, unpaid, cancelled, expired), status_formatted, card_brand,
# card_last_four, pause, cancelled, trial_ends_at, billing_anchor, renews_at, ends_at (set once it is cancelled or
# expired: when it stops), created_at, updated_at, test_mode. It carries no price: that is the variant's (the
# Variant object: id, product_id, name, price in cents, interval day / week / month / year, interval_count), so a
# variants export loaded beside it is joined by variant_id; an `mrr` column added to the file wins.


def _is_lemon_squeezy(h: Headers) -> bool:
    return (h.has("variant_id", "variant_name") and h.has("renews_at") and h.has("ends_at") and h.has("status")
            and h.has("customer_id") and h.has("billing_anchor", "status_formatted", "order_item_id", "card_brand"))


def _is_lemon_squeezy_variants(h: Headers) -> bool:
    return (h.has("id") and h.has("product_id") and h.has("price") and h.has("interval") and h.has("interval_count")
            and not h.has("customer_id"))


def _ls_months(interval: str, count: str) -> str:
    """Months one bill of a variant covers: its interval (day / week / month / year) × interval_count."""
    unit = f"lower(trim(CAST({interval} AS VARCHAR)))"
    return (f"(CASE WHEN {unit} LIKE 'year%' THEN 12.0 WHEN {unit} LIKE 'week%' THEN 12.0 / 52 "
            f"WHEN {unit} LIKE 'day%' THEN 12.0 / 365 ELSE 1.0 END * COALESCE(NULLIF({count}, 0), 1))")


def _lemon_squeezy_variants(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "variant": (Kind.TEXT, ("id", "variant_id"), {"required": True}),
        "name": (Kind.TEXT, ("name", "variant_name")),
        "price": (Kind.NUMBER, ("price",), {"required": True}),
        "interval": (Kind.TEXT, ("interval",)),
        "interval_count": (Kind.NUMBER, ("interval_count",)),
    }
    fields = {"variant_id": Field("{variant}", "variant"), "price_cents": Field("{price}", "price"),
              "interval": Field("{interval}", "interval"), "interval_count": Field("{interval_count}", "interval_count"),
              "variant_name": Field("{name}", "name")}
    return Mapping("lemon_squeezy", "Lemon Squeezy variants (side file)", "", _inputs(h, spec), fields,
                   side="variants", key="variant_id",
                   rules=("joined into Lemon Squeezy subscriptions by variant_id: price (cents) per interval",))


def _lemon_squeezy(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "sub_id": (Kind.TEXT, ("id", "subscription_id")),
        "customer": (Kind.TEXT, ("customer_id",), {"required": True}),
        "created": (Kind.DATE, ("created_at",), {"required": True}),
        "trial_end": (Kind.DATE, ("trial_ends_at",)),
        "ends_at": (Kind.DATE, ("ends_at",)),
        "updated": (Kind.DATE, ("updated_at",)),
        "status": (Kind.TEXT, ("status",), {"required": True}),
        "variant": (Kind.TEXT, ("variant_id",)),
        "plan": (Kind.TEXT, ("variant_name", "product_name")),
        "mrr": (Kind.NUMBER, ("mrr", "MRR")),
        "price": (Kind.NUMBER, ("price", "variant_price")),
        "interval": (Kind.TEXT, ("interval", "variant_interval")),
        "interval_count": (Kind.NUMBER, ("interval_count", "variant_interval_count")),
        "test_mode": (Kind.BOOL, ("test_mode",)),
        "segment": (Kind.TEXT, _SEGMENT),
        # read, not loaded: people, ids of the order and store, a display copy of status, payment details
        "people": (Kind.TEXT, ("user_name", "user_email")),
        "order": (Kind.TEXT, ("order_id", "order_item_id", "store_id", "product_id")),
        "shown": (Kind.TEXT, ("status_formatted", "billing_anchor", "renews_at", "pause", "cancelled")),
        "card": (Kind.TEXT, ("card_brand", "card_last_four")),
    }
    inputs = _inputs(h, spec)
    status = "lower(trim({status.text}))"
    joins: tuple[Join, ...] = ()
    refuse = None
    if "mrr" in inputs:
        mrr, how = "{mrr}", "the file's mrr column, read as a monthly amount in units"
    elif "price" in inputs:
        months = _ls_months("{interval.text}", "{interval_count}") if "interval" in inputs else "1.0"
        mrr, how = f"{{price}} / 100.0 / {months}", "price ÷ 100 (cents), per month of its interval"
    else:
        joins = (Join("variants", "v", "v.variant_id = {variant.text}"),)
        mrr = (f"CASE WHEN {{variant.text}} IS NOT NULL THEN v.price_cents / 100.0 / "
               f"{_ls_months('v.interval', 'v.interval_count')} END")
        how = "the variant's price (variants export, joined by variant_id) ÷ 100, per month of its interval"
        if "variants" not in sides or "variant" not in inputs:
            refuse = ("a Lemon Squeezy subscriptions export carries no price, so it gives no MRR or ARR: load "
                      "Lemon Squeezy's variants export (id, price in cents, interval, interval_count) together with "
                      "it — its price is joined by variant_id — or add an 'mrr' column (the monthly amount) to this "
                      "file")
    fields = {
        "customer_id": Field("{customer}", "customer"),
        "start_date": Field("CASE WHEN {trial_end} > {created} THEN {trial_end} ELSE {created} END"
                            if "trial_end" in inputs else "{created}", "created",
                            note="created_at, or trial_ends_at for one that began with a trial"),
        "end_date": Field(f"CASE WHEN {status} IN ('cancelled', 'canceled', 'expired') "
                          "THEN COALESCE({ends_at}, {updated}) END", "ends_at",
                          note="ends_at of a cancelled or expired subscription"),
        "mrr": Field(mrr, "mrr" if "mrr" in inputs else "price" if "price" in inputs else "variant", note=how),
        "plan": Field("{plan}", "plan"),
        "segment": Field("{segment}", "segment"),
        "subscription_id": Field("{sub_id}", "sub_id"),
    }
    rules = [f"mrr: {how}",
             "start_date: created_at; a subscription that began with a free trial starts paying at trial_ends_at",
             "end_date: a cancelled or expired subscription ends at ends_at (a cancelled one runs to the end of the "
             "period it paid for)",
             "subscriptions on_trial are left out (not paying yet); past_due, unpaid and paused ones still count "
             "(Lemon Squeezy is retrying their payment, or they resume)",
             "a subscription is identified by its id: the same id twice is a duplicate"]
    skip = [(f"{status} = 'on_trial'", "in its free trial (on_trial): not paying yet")]
    if "trial_end" in inputs:
        skip.append(("{=end_date} <= {=start_date} AND {trial_end} IS NOT NULL", "cancelled during its trial: never paid"))
    if "test_mode" in inputs:
        skip.append(("COALESCE({test_mode}, false)", "a test-mode subscription (not a real customer)"))
    m = _subscriptions("lemon_squeezy", "Lemon Squeezy subscriptions export", inputs, fields, rules, skip)
    return replace(m, joins=joins, refuse=refuse)


# --- Insightly ----------------------------------------------------------------------------------

# Insightly's opportunities export (Opportunities > Export, CSV; the API's field names, upper case): OPPORTUNITY_ID,
# OPPORTUNITY_NAME, OPPORTUNITY_STATE (OPEN, WON, LOST, ABANDONED, SUSPENDED), BID_AMOUNT, BID_CURRENCY, BID_TYPE
# (Fixed Bid, Per Hour, Per Day, Per Month, Per Year), BID_DURATION (how many hours / days / months the bid runs),
# FORECAST_CLOSE_DATE, ACTUAL_CLOSE_DATE, PROBABILITY, RESPONSIBLE_USER / OWNER_USER (names, or ids written
# RESPONSIBLE_USER_ID / OWNER_USER_ID), PIPELINE, STAGE, CATEGORY, DATE_CREATED_UTC, DATE_UPDATED_UTC,
# ORGANISATION_ID, then custom fields (`Industry__c`). Its OPPORTUNITY_ID and STAGE also satisfy the Salesforce
# report test, so it is recognised before Salesforce.


def _is_insightly(h: Headers) -> bool:
    """OPPORTUNITY_STATE beside BID_AMOUNT: no other CRM export writes the two."""
    return h.has("OPPORTUNITY_STATE") and h.has("BID_AMOUNT") and h.has("OPPORTUNITY_ID")


def _insightly(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "deal_id": (Kind.TEXT, ("OPPORTUNITY_ID",), {"required": True}),
        "account": (Kind.TEXT, ("ORGANISATION_ID", "ORGANIZATION_ID")),
        "owner": (Kind.TEXT, ("RESPONSIBLE_USER", "OWNER_USER", "RESPONSIBLE_USER_ID", "OWNER_USER_ID")),
        "created": (Kind.DATE, ("DATE_CREATED_UTC", "DATE_CREATED"), {"required": True}),
        "actual_close": (Kind.DATE, ("ACTUAL_CLOSE_DATE",)),
        "forecast_close": (Kind.DATE, ("FORECAST_CLOSE_DATE",)),
        "stage": (Kind.TEXT, ("STAGE", "STAGE_ID")),
        "status": (Kind.TEXT, ("OPPORTUNITY_STATE",), {"required": True}),
        "bid": (Kind.NUMBER, ("BID_AMOUNT",)),
        "bid_type": (Kind.TEXT, ("BID_TYPE",)),
        "bid_duration": (Kind.NUMBER, ("BID_DURATION",)),
        "currency": (Kind.TEXT, ("BID_CURRENCY",)),
        "deal_type": (Kind.ENUM, ("CATEGORY", "CATEGORY_ID"), _DEAL_TYPE),
        "segment": (Kind.TEXT, _SEGMENT),
        # read, not loaded: a name, a typed probability, the last edit and activity — one per row, never a split
        "opp_name": (Kind.TEXT, ("OPPORTUNITY_NAME",)),
        "probability": (Kind.TEXT, ("PROBABILITY",)),
        "updated": (Kind.TEXT, ("DATE_UPDATED_UTC",)),
        "activity": (Kind.TEXT, ("LAST_ACTIVITY_DATE_UTC",)),
    }
    state = "upper(trim({status.text}))"
    bid_type = "lower(trim({bid_type.text}))"
    duration = "COALESCE(NULLIF({bid_duration}, 0), 1)" if h.has("BID_DURATION") else "1"
    # A year of the bid: per month × 12; per year and fixed as they are; per hour / per day × the bid's duration.
    amount = (f"{{bid}} * (CASE WHEN {bid_type} = 'per month' THEN 12 "
              f"WHEN {bid_type} IN ('per hour', 'per day') THEN {duration} ELSE 1 END)") if h.has("BID_TYPE") \
        else "{bid}"
    fields = {
        "deal_id": Field("{deal_id}", "deal_id"),
        "account_id": Field("{account}", "account"),
        "owner": Field("{owner}", "owner"),
        "created_date": Field("{created}", "created"),
        "stage": Field("{stage}", "stage"),
        "amount": Field(amount, "bid", note="BID_AMOUNT by BID_TYPE: Per Month × 12, Per Hour / Per Day × "
                                            "BID_DURATION, Fixed Bid and Per Year as they are"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
    }
    hourly = ("× BID_DURATION (the hours or days bid; a blank duration leaves the bid as it is)"
              if h.has("BID_DURATION") else "left as the bid (the export has no BID_DURATION)")
    rules = ["status: Insightly's OPPORTUNITY_STATE (OPEN, WON, LOST); ABANDONED is read as lost (closed without a "
             "sale), SUSPENDED as open (on hold, it can still be won: it stays in the pipeline, out of win rates)",
             "close_date: ACTUAL_CLOSE_DATE, else (an open opportunity) the FORECAST_CLOSE_DATE",
             f"amount: BID_AMOUNT as a year's value by BID_TYPE: Per Month × 12, Per Year and Fixed Bid as they are, "
             f"Per Hour / Per Day {hourly}",
             "deal_type: CATEGORY (New Business, Upsell, Renewal …)",
             "OPPORTUNITY_NAME, PROBABILITY, BID_TYPE, BID_DURATION and the update / activity dates are read, not "
             "loaded: names, typed guesses and edit times are no segment; PIPELINE is kept as a split"]
    m = _vendor_deals("insightly", "Insightly opportunities export", h, spec, fields, rules,
                      file_status=f"CASE {state} WHEN 'OPEN' THEN 'open' WHEN 'WON' THEN 'won' WHEN 'LOST' THEN "
                                  "'lost' WHEN 'ABANDONED' THEN 'lost' WHEN 'SUSPENDED' THEN 'open' END")
    fields = dict(m.fields)
    fields["close_date"] = Field("COALESCE({actual_close}, CASE WHEN {=status} = 'open' THEN {forecast_close} END)",
                                 "actual_close", note="ACTUAL_CLOSE_DATE, else FORECAST_CLOSE_DATE for open ones")
    ordered = {c: fields[c] for c in TABLES["deals"].column_names if c in fields} | fields
    abandoned = Note(f"{state} IN ('ABANDONED', 'SUSPENDED')",
                     "{n} opportunity(ies) are ABANDONED (read as lost) or SUSPENDED (read as open) "
                     "(first on line {line})")
    return _with_currencies(replace(m, fields=ordered, notes=(abandoned, *m.notes)))


# --- "CRM Sales Opportunities" sample layout -------------------------------------------------

_SECTOR_FIXES = "CASE lower(trim({sector.text})) WHEN 'technolgy' THEN 'technology' ELSE lower(trim({sector.text})) END"
# Company size bands (inference: the usual SMB / Mid-Market / Enterprise cut by head count).
_SIZE_BAND = ("CASE WHEN {employees} IS NULL THEN NULL WHEN {employees} < 1000 THEN 'SMB' "
              "WHEN {employees} < 5000 THEN 'Mid-Market' ELSE 'Enterprise' END")
_PRODUCT_KEY = "lower(replace({product.text}, ' ', ''))"  # `GTXPro` in the pipeline is `GTX Pro` in products


def _is_crm_pipeline(h: Headers) -> bool:
    return h.has("opportunity_id") and h.has("deal_stage") and h.has("sales_agent") and h.has("close_value")


def _crm_pipeline(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "deal_id": (Kind.TEXT, ("opportunity_id",), {"required": True}),
        "sales_agent": (Kind.TEXT, ("sales_agent",)),
        "product": (Kind.TEXT, ("product",)),
        "account": (Kind.TEXT, ("account",)),
        "stage": (Kind.TEXT, ("deal_stage",)),
        "engaged": (Kind.DATE, ("engage_date",), {"required": True}),
        "closed": (Kind.DATE, ("close_date",)),
        "close_value": (Kind.NUMBER, ("close_value",)),
    }
    fields = {
        "deal_id": Field("{deal_id}", "deal_id"),
        "account_id": Field("{account}", "account"),
        "owner": Field("{sales_agent}", "sales_agent"),
        "created_date": Field("{engaged}", "engaged"),
        "close_date": Field("{closed}", "closed"),
        "stage": Field("{stage}", "stage"),
        # Only won deals carry a value; open and lost ones are priced at their product's list price.
        "amount": Field("CASE WHEN {=status} = 'won' THEN {close_value} "
                        "ELSE COALESCE(p.list_price, {close_value}) END", "close_value"),
        "deal_type": Field("'new'"),
        "segment": Field("a.segment"),
        "industry": Field("a.industry"),
        "product": Field("{product}", "product"),
        "product_series": Field("p.series"),
        "manager": Field("t.manager"),
        "regional_office": Field("t.regional_office"),
    }
    rules = ["created_date is engage_date; deals still prospecting have none and are rejected",
             "the layout has no deal type: every deal is counted as new business",
             "amount: close_value of won deals; open and lost deals at their product's list price "
             "(products.csv sales_price; 'GTXPro' matches 'GTX Pro')",
             "segment: company size of the account (accounts.csv employees: < 1,000 SMB, < 5,000 Mid-Market, "
             "else Enterprise); industry: its sector",
             "manager and regional_office (sales_teams.csv) are kept as extra dimensions"]
    for side, file in (("products", "products.csv"), ("accounts", "accounts.csv"), ("sales_teams", "sales_teams.csv")):
        if side not in sides:
            rules.append(f"{file} was not in this load: the columns it provides are empty")
    joins = (Join("products", "p", f"p.product_key = {_PRODUCT_KEY}"),
             Join("accounts", "a", "a.account_id = {account.text}"),
             Join("sales_teams", "t", "t.sales_agent = {sales_agent.text}"))
    return Mapping("crm_sample", "CRM Sales Opportunities: sales_pipeline", "deals", _inputs(h, spec), fields,
                   stage_input="stage", joins=joins, rules=tuple(rules),
                   notes=(Note("{=amount} = 0 AND {=status} <> 'won'",
                               "{n} open or lost deal(s) have no list price (product not in products.csv): "
                               "amount 0 (first on line {line})"),))


def _is_crm_accounts(h: Headers) -> bool:
    return h.has("account") and h.has("sector") and h.has("employees") and not h.has("opportunity_id")


def _crm_accounts(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "account": (Kind.TEXT, ("account",), {"required": True}),
        "sector": (Kind.TEXT, ("sector",)),
        "employees": (Kind.NUMBER, ("employees",)),
        "year_established": (Kind.INTEGER, ("year_established",)),
        "revenue": (Kind.NUMBER, ("revenue",)),
    }
    fields = {
        "account_id": Field("{account}", "account"),
        "name": Field("{account}", "account"),
        "segment": Field(_SIZE_BAND, "employees"),
        "industry": Field(_SECTOR_FIXES, "sector"),
        "employees": Field("{employees}", "employees"),
        "year_established": Field("{year_established}", "year_established"),
        "revenue_musd": Field("{revenue}", "revenue"),
    }
    return Mapping("crm_sample", "CRM Sales Opportunities: accounts", "accounts", _inputs(h, spec), fields,
                   side="accounts",
                   rules=("segment from head count (< 1,000 SMB, < 5,000 Mid-Market, else Enterprise; inference)",
                          "industry from sector ('technolgy' read as 'technology')",
                          "revenue is in millions of USD (revenue_musd)"))


def _is_crm_products(h: Headers) -> bool:
    return h.has("product") and h.has("sales_price") and h.has("series")


def _crm_products(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "product": (Kind.TEXT, ("product",), {"required": True}),
        "series": (Kind.TEXT, ("series",)),
        "sales_price": (Kind.NUMBER, ("sales_price",)),
    }
    fields = {"product_key": Field(_PRODUCT_KEY, "product"), "list_price": Field("{sales_price}", "sales_price"),
              "series": Field("{series}", "series")}
    return Mapping("crm_sample", "CRM Sales Opportunities: products (side file)", "", _inputs(h, spec), fields,
                   side="products", key="product_key",
                   rules=("joined into sales_pipeline deals: list price and series per product",))


def _is_crm_teams(h: Headers) -> bool:
    return h.has("sales_agent") and h.has("manager") and h.has("regional_office") and not h.has("opportunity_id")


def _crm_teams(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "sales_agent": (Kind.TEXT, ("sales_agent",), {"required": True}),
        "manager": (Kind.TEXT, ("manager",)),
        "regional_office": (Kind.TEXT, ("regional_office",)),
    }
    fields = {"sales_agent": Field("{sales_agent}", "sales_agent"), "manager": Field("{manager}", "manager"),
              "regional_office": Field("{regional_office}", "regional_office")}
    return Mapping("crm_sample", "CRM Sales Opportunities: sales_teams (side file)", "", _inputs(h, spec), fields,
                   side="sales_teams", key="sales_agent",
                   rules=("joined into sales_pipeline deals: manager and regional_office per sales agent",))


def _is_crm_metadata(h: Headers) -> bool:
    return len(h.headers) == 3 and h.has("table") and h.has("field") and h.has("description")


def _crm_metadata(h: Headers, sides: set[str]) -> Mapping:
    return Mapping("not_data", "not data: a data dictionary (it describes columns; it holds no records)", "", {}, {},
                   ignore=True)


# Most specific first: the CRM sample's side files share column names with each other.
VENDORS: tuple[tuple[str, Callable[[Headers], bool], Callable[[Headers, set[str]], Mapping]], ...] = (
    ("crm_pipeline", _is_crm_pipeline, _crm_pipeline),
    ("crm_accounts", _is_crm_accounts, _crm_accounts),
    ("crm_products", _is_crm_products, _crm_products),
    ("crm_teams", _is_crm_teams, _crm_teams),
    ("crm_metadata", _is_crm_metadata, _crm_metadata),
    ("lemon_squeezy_variants", _is_lemon_squeezy_variants, _lemon_squeezy_variants),
    ("lemon_squeezy", _is_lemon_squeezy, _lemon_squeezy),
    ("paddle", _is_paddle, _paddle),
    ("zuora", _is_zuora, _zuora),
    ("paddle_transactions", _is_paddle_transactions, _recognised(
        "Paddle transactions", "MRR, new and churned ARR come from the subscriptions: export Paddle's subscription "
        "list with its items (billing_cycle, items[0].price.unit_price.amount) and load that", source="paddle")),
    ("stripe", _is_stripe, _stripe),
    ("chargebee", _is_chargebee, _chargebee),
    ("recurly", _is_recurly, _recurly),
    ("chargify", _is_chargify, _chargify),
    ("braintree", _is_braintree, _braintree),
    ("pipedrive", _is_pipedrive, _pipedrive),
    ("copper", _is_copper, _copper),
    ("insightly", _is_insightly, _insightly),
    ("hubspot", _is_hubspot, _hubspot),
    ("zoho", _is_zoho, _zoho),
    ("freshsales", _is_freshsales, _freshsales),
    ("dynamics", _is_dynamics, _dynamics),
    ("close", _is_close, _close),
    ("sf_history", _is_sf_history, _recognised("Salesforce OpportunityHistory export",
                                               "the current stage and amount are in the Opportunity export")),
    ("salesforce", _is_salesforce, _salesforce),
    ("sf_lead", _is_sf_lead, _sf_lead),
    ("sf_campaign_member", _is_sf_campaign_member, _recognised(
        "Salesforce CampaignMember export", "a lead's channel is its LeadSource")),
    ("sf_campaign", _is_sf_campaign, _sf_campaign),
    ("sf_contact", _is_sf_contact, _recognised("Salesforce Contact export", "no metric counts contacts")),
    ("sf_user", _is_sf_user, _sf_user),
    ("sf_account", _is_sf_account, _sf_account),
)
# Layouts that are side files: joined into other files' rows, so they are read first.
VENDOR_SIDES = {"lemon_squeezy_variants": "variants", "crm_products": "products", "crm_teams": "sales_teams", "crm_accounts": "accounts",
                "sf_user": "users", "sf_account": "accounts"}


# The exports recognised by their headers, as a user names them (the Upload page and the README list these).
EXPORT_NAMES = ("HubSpot", "Salesforce", "Pipedrive", "Zoho CRM", "Close", "Freshsales", "Dynamics 365 Sales", "Copper", "Insightly",
                "Stripe", "Chargebee", "Recurly", "Chargify/Maxio", "Paddle", "Zuora", "Braintree", "Lemon Squeezy")


def detect_vendor(headers: list[str]) -> str | None:
    """The known export layout these headers belong to, if any."""
    h = Headers(headers)
    for name, test, _ in VENDORS:
        if test(h):
            return name
    return None


def vendor_mapping(vendor: str, headers: list[str], sides: set[str] = frozenset()) -> Mapping:
    """The mapping of a detected layout; `sides` names the side tables present in the same load."""
    for name, _, build in VENDORS:
        if name == vendor:
            return build(Headers(headers), set(sides))
    raise KeyError(f"unknown export layout {vendor!r}")


# --- canonical and saved mappings ------------------------------------------------------------


# A mapping's `columns` entry `omit:<header>` → `<header>` leaves that file column out of the load: not
# loaded, not kept as an extra text column (which a drill dimension could be made of). Stored in the
# saved mapping like any other entry, so the choice is remembered with it.
OMIT = "omit:"


# Money written in cents (`product_price_in_cents`, `amount_cents`, `value (cents)`): a header that says so.
CENTS_HEADER = re.compile(r"(^|[^a-z])(in_?)?cents?([^a-z]|$)", re.IGNORECASE)
UNITS = ("cents", "units")  # a mapping's `units` entry: {column: "cents" | "units"} for money columns


def money_columns(table: str) -> tuple[str, ...]:
    """The columns of `table` that hold money (a `units` entry may say they are in cents)."""
    return tuple(c.name for c in TABLES[table].columns if c.type is ColumnType.MONEY)


def canonical_mapping(table: str, columns: dict[str, str], *, source: str = "canonical",
                      label: str | None = None, fill: dict[str, str] | None = None,
                      derive: dict[str, str] | None = None, rules: tuple[str, ...] = (),
                      units: dict[str, str] | None = None) -> Mapping:
    """Canonical column → file header, for files that use canonical names, a guess or a user's saved choice.

    `fill` gives a column a constant where the file has no such column, and a default for its blank
    cells where it has (a file of won deals: status 'won'; a blank deal type: 'new'). `derive` names
    how a column missing from the file is computed from another (`DERIVATIONS`); `columns` may then
    carry the extra inputs a derivation reads (`lead_link`). `units` says a money column is in cents
    (divided by 100) or in units; without it, a header that says cents (`price_in_cents`) is read as cents.
    """
    t = TABLES[table]
    fill = {k: str(v) for k, v in (fill or {}).items() if k in t.column_names and str(v).strip()}
    layout = _layout(columns)
    if layout is not None:
        return _overlay(table, layout[0], layout[1], columns, fill, source=source, label=label, rules=rules)
    derive = {k: v for k, v in (derive or {}).items() if (table, k, v) in DERIVATIONS}
    taken = {h for k, h in columns.items() if not k.startswith(OMIT)}
    columns = {k: h for k, h in columns.items() if not (k.startswith(OMIT) and h in taken)}  # mapped wins
    rules = list(rules)
    inputs: dict[str, Input] = {}
    fields: dict[str, Field] = {}
    for col in t.columns:
        header = columns.get(col.name)
        if not header:
            continue
        if derive.get(col.name) == "arr":
            inputs["mrr"] = Input((header,), Kind.NUMBER)
            fields["mrr"] = Field("{mrr} / 12", "mrr")
            continue
        if derive.get(col.name) == "per_cycle":
            # What one bill charges (a billing export's Price): ÷ the months a bill covers, per row.
            inputs["mrr"] = Input((header,), Kind.NUMBER)
            if columns.get("billing_months"):
                inputs["billing_months"] = Input((columns["billing_months"],))
            fields["mrr"] = Field(f"{{mrr}} / {_CYCLE_MONTHS}", "mrr", note=f"{header} ÷ months per billing cycle")
            rules.append(f"mrr: {header!r} is what one bill charges, divided by the months a bill covers: "
                         + (f"{columns['billing_months']!r} (a number of months, or month / quarter / year), else "
                            if columns.get("billing_months") else "")
                         + "the plan's name (annual / yearly 12, quarterly 3, semi-annual 6, any other 1)")
            continue
        inputs[col.name] = _column_input(table, col.name, header)
        if not (col.name == "status" and table == "deals"):
            fields[col.name] = Field(f"{{{col.name}}}", col.name)
    file_status = "{status}" if "status" in inputs and table == "deals" else None
    stage = "stage" if table == "deals" and "stage" in inputs and "status" not in inputs else None
    checks: tuple[Check, ...] = ()
    joins: tuple[Join, ...] = ()
    for name, value in fill.items():
        lit = "'" + value.replace("'", "''") + "'"
        if name in inputs:
            if name == "status" and table == "deals":
                file_status = f"COALESCE({{status}}, {lit})"
            else:
                fields[name] = Field(f"COALESCE({{{name}}}, {lit})", name)
        elif name == "status" and table == "deals" and stage:
            continue  # the stage map decides; a constant would override every stage
        else:
            fields[name] = Field(lit, note=f"constant {value!r}")
    if table == "deals" and columns.get("lead_link"):
        # The lead a deal came from: its channel, its date, and (in ingest) the lead's deal_id.
        inputs["lead_link"] = Input((columns["lead_link"],))
        joins = (Join("leads", "ld", "ld.lead_id = {lead_link.text}"),)
        fields["lead_id"] = Field("{lead_link}", "lead_link")
        fields["channel"] = Field("COALESCE({channel}, ld.channel)", "channel" if "channel" in inputs else None,
                                  note=None if "channel" in inputs else "the linked lead's channel")
    if derive.get("created_date") in ("lead", "close") and "created_date" not in inputs:
        if derive["created_date"] == "lead" and joins:
            fields["created_date"] = Field("COALESCE(ld.created_date, {close_date})", "close_date",
                                           note="the linked lead's created date, else the close date")
        else:
            fields["created_date"] = Field("{close_date}", "close_date", note="the close date")
    if stage:
        rules.append("no status column: open/won/lost comes from the stage map")
    rules += _cents(table, columns, fields, units or {})
    if table == "spend" and "month" in fields:
        fields["month"] = Field("CAST(date_trunc('month', {month}) AS DATE)", "month")
    if table == "quotas" and "period" in inputs:
        # `@period_start` / `@period_end` are expanded by ingest (2026-10, 2026-Q4, 2026 or a date).
        fields["period_start"] = Field("{@period_start:period}", "period")
        fields["period_end"] = Field("{@period_end:period}", "period")
        checks = (Check("{=period_start} IS NULL AND {period.text} IS NOT NULL", "period",
                        "'period ' || {period.text} || ' is not 2026-10, 2026-Q4, 2026 or a date'"),)
    dropped = left_out(columns)
    for i, header in enumerate(dropped):
        # Read as an input no field uses: neither loaded nor kept as an extra column (so never a split).
        inputs[f"left_out_{i}"] = Input((header,))
    if dropped:
        rules.append(f"left out on purpose (not loaded): {', '.join(dropped)}")
    ordered = {c: fields[c] for c in t.column_names if c in fields} | fields
    notes: tuple[Note, ...] = ()
    facts: dict[str, str] = {}
    if table == "subscriptions" and "plan" in inputs and fields.get("mrr", Field("")).sql == "{mrr}":
        # Trial E mapped Braintree's Price (a year's, for yearly plans) as MRR: ARR came out 11 times too high
        # and nothing said so. Trial F's 'Pro yearly' mrr was already monthly (40.83 beside 49 for Pro monthly)
        # and the same words were a false alarm: `_annual_refine` keeps them only where the amounts say so.
        notes = (Note(f"regexp_matches(lower({{plan.text}}), '{_YEARLY}')",
                      f"{{n}} subscription(s) are on a plan whose name says annual or yearly (first on line {{line}}): "
                      f"their {columns['mrr']!r} is read as a MONTHLY amount — if it is what one bill charges (a "
                      "year's price, as billing exports write it), ARR comes out 12 times too high: load it as a "
                      "price per billing cycle (a mapping that derives mrr per_cycle), or load the "
                      "billing tool's own export, which is read per billing cycle"),)
        facts = dict(_ANNUAL_FACTS)
    return Mapping(source, label or f"canonical {table}", table, inputs, ordered, file_status=file_status,
                   stage_input=stage, rules=tuple(rules), checks=checks, joins=joins, notes=notes, facts=facts,
                   refine=_annual_refine if facts else None)


_YEARLY = "annual|yearly|year"
_AMOUNT = "TRY_CAST(regexp_replace({mrr.text}, '[^0-9.eE+-]', '', 'g') AS DOUBLE)"
_ANNUAL_FACTS = {
    "yearly_mrr": f"median({_AMOUNT}) FILTER (WHERE regexp_matches(lower({{plan.text}}), '{_YEARLY}'))",
    "other_mrr": f"median({_AMOUNT}) FILTER (WHERE NOT regexp_matches(lower({{plan.text}}), '{_YEARLY}'))",
}


def _annual_refine(m: Mapping, facts: dict) -> Mapping:
    """The "12 times too high" warning, as the amounts say: kept where a yearly plan's typical amount is 6 or more
    times the other plans' (a year's price beside monthly ones); dropped where it is of the same size (already
    monthly: trial F's Pro yearly 40.83 beside Pro monthly 49); asked as a question where nothing compares."""
    yearly, other = facts.get("yearly_mrr"), facts.get("other_mrr")
    said = [n for n in m.notes if "12 times too high" in n.message]
    rest = tuple(n for n in m.notes if n not in said)
    if not said or (other is not None and other > 0 and yearly is not None and yearly >= 6 * other):
        return m
    if yearly is None or (other is not None and other > 0):
        return replace(m, notes=rest)  # no yearly plan has an amount, or its amounts are monthly-sized
    asked = Note(said[0].sql,
                 "{n} subscription(s) are on a plan whose name says annual or yearly (first on line {line}) and no "
                 "other plan to compare their amounts with: is their amount per MONTH? It is read so — if it is a "
                 "year's price (what one bill charges), ARR comes out 12 times too high: load it as a price per "
                 "billing cycle (a mapping that derives mrr per_cycle)")
    return replace(m, notes=(*rest, asked))


def _cents(table: str, columns: dict[str, str], fields: dict[str, Field], units: dict[str, str]) -> list[str]:
    """Money columns in cents become units (÷ 100) in `fields`; the rules that say which and why."""
    out = []
    for name in money_columns(table):
        f, header = fields.get(name), columns.get(name)
        if f is None or not header or f.input is None:
            continue
        unit = str(units.get(name) or "").strip().lower()
        if unit not in UNITS:
            unit = "cents" if CENTS_HEADER.search(header) else ""
            why = f"its header {header!r} says cents"
        else:
            why = "the mapping says so"
        if unit == "cents":
            fields[name] = replace(f, sql=f"({f.sql}) / 100.0")
            out.append(f"{name}: {header!r} is in cents ({why}): divided by 100 (3300 = 33.00)")
    return out


def _column_input(table: str, name: str, header: str) -> Input:
    """The input reading canonical column `name` of `table` from one file column, with its synonyms."""
    kind = Kind.of(TABLES[table].column(name).type)
    opts: dict = {}
    if name == "deal_type":
        opts = {"synonyms": tuple(DEAL_TYPE_SYNONYMS.items())}
        kind = Kind.ENUM
    elif name == "type" and table == "activities":
        opts = {"synonyms": tuple(ACTIVITY_SYNONYMS.items())}
        kind = Kind.ENUM
    elif name == "status" and table == "deals":
        opts = {"synonyms": tuple(STATUS_SYNONYMS.items())}
        kind = Kind.ENUM
    return Input((header,), kind, **opts)


# --- a recognised layout, as the user changed it ---------------------------------------------
#
# "Change the mapping" on a recognised export starts from what the layout reads, and a mapping saved
# from there is that layout with the user's changes, not a generic one: a Pipedrive deal's close date
# (won time, lost time or expected date, by its status), its deleted deals left out, HubSpot's first
# associated company stay as they were unless the user picks another column. The saved `columns` hold
# it in entries whose values are file headers, as every mapping entry is (a saved mapping names only
# columns of the file): `layout:<vendor>:<i>` → every header of the file (the layout is rebuilt from
# them), `derived:<column>` → a header it reads, for a column made by the layout and kept as made.
LAYOUT = "layout:"
DERIVED = "derived:"


def layout_entries(vendor: str, headers: list[str]) -> dict[str, str]:
    """The `columns` entries that make a saved mapping start from `vendor`'s layout of these headers."""
    return {f"{LAYOUT}{vendor}:{i}": h for i, h in enumerate(headers)}


def _layout(columns: dict[str, str]) -> tuple[str, list[str]] | None:
    """(vendor, headers) of a mapping's `layout:` entries, or None."""
    found = [(k[len(LAYOUT):].rpartition(":"), h) for k, h in columns.items() if k.startswith(LAYOUT)]
    if not found:
        return None
    vendor = found[0][0][0]
    if vendor not in {name for name, _, _ in VENDORS}:
        raise LoadError(f"the mapping starts from an export layout this version does not know ({vendor!r}): "
                        "delete it under 'Saved mappings' and map the file again")
    return vendor, [h for _, h in found]


def _single(m: Mapping, name: str | None) -> str | None:
    """The one file column an input reads (None for several, or none)."""
    i = m.inputs.get(name) if name else None
    return i.columns[0] if i is not None and len(i.columns) == 1 else None


def _status_column(m: Mapping) -> str | None:
    """The one file column a deals layout reads its open/won/lost from, if it is one column."""
    refs = set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.text)?\}", m.file_status or ""))
    return _single(m, next(iter(refs))) if len(refs) == 1 else None


@dataclass(frozen=True)
class FormDefaults:
    """What a mapping screen starts from: canonical column → file header, the columns the layout makes
    in a way no one column shows (column → how, in words), and constants/defaults."""

    columns: dict[str, str]
    derived: dict[str, str]
    fill: dict[str, str]


def layout_defaults(vendor: str, headers: list[str]) -> FormDefaults:
    """The mapping screen's start for a recognised export: exactly what `vendor`'s layout reads.

    A column read from one file column shows that column (HubSpot's account_id: 'Associated Company',
    first of its semicolon-joined IDs, as the layout reads it); one made from several (Pipedrive's
    close_date from won, lost or expected date by the deal's status; HubSpot's status from its won/lost
    flags) is shown as derived and kept as made (a `derived:` entry) unless the user picks a column; a
    constant (no deal type column: every deal new) is the screen's default for blanks."""
    m = vendor_mapping(vendor, headers)
    columns = layout_entries(vendor, headers)
    derived: dict[str, str] = {}
    fill: dict[str, str] = {}
    names = TABLES[m.table].column_names if m.table else ()
    for name in names:
        f = m.fields.get(name)
        if name == "status" and m.table == "deals" and f is None:
            header = _status_column(m)
            if header:
                columns[name] = header
            elif m.file_status:
                derived[name] = m.describe().get(name, "derived")
            continue
        refs = _sql_refs(f.sql) if f is not None else set()
        if f is None or (refs and not refs & set(m.inputs)):
            continue  # the layout would read a column this file does not have: nothing to show or keep
        header = _single(m, f.input) if not f.note else None
        constant = re.fullmatch(r"'([^']*)'", f.sql)
        if header:
            columns[name] = header
        elif constant:
            fill[name] = constant.group(1)
        else:
            derived[name] = next((r.split(": ", 1)[1] for r in m.rules if r.startswith(f"{name}: ")),
                                 f.note or m.describe().get(name, "derived"))
    for name in derived:
        read = sorted(set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.text)?\}",
                                     m.file_status if name == "status" and name not in m.fields
                                     else m.fields[name].sql)) & set(m.inputs))
        columns[DERIVED + name] = m.inputs[read[0]].columns[0] if read else headers[0]
    return FormDefaults(columns, derived, fill)


def form_start(headers: list[str], table: str, saved: dict | None = None) -> FormDefaults | None:
    """Where the mapping screen of a file starts for `table`: the saved mapping if it is for `table`,
    else what the recognised layout reads (`layout_defaults`); None for a file of no known layout."""
    if saved and saved.get("table") == table:
        columns = dict(saved.get("columns") or {})
        try:
            layout = _layout(columns)
            made = layout_defaults(*layout).derived if layout else {}
        except LoadError:  # a layout this version does not know: the load says so; the screen shows the rest
            made = {}
        derived = {k[len(DERIVED):]: made.get(k[len(DERIVED):], "as the recognised layout makes it")
                   for k in columns if k.startswith(DERIVED)}
        return FormDefaults(columns, derived, dict(saved.get("fill") or {}))
    vendor = detect_vendor(headers)
    if vendor and vendor_mapping(vendor, headers).table == table:
        return layout_defaults(vendor, headers)
    return None


def mapped_headers(columns: dict[str, str]) -> set[str]:
    """The file columns a mapping's entries map to a column (not its `layout:` or `omit:` entries), and those a
    recognised layout it starts from reads to make its rows: its status (Lemon Squeezy's status decides which
    rows end and which are trials; trial F saw Insightly's OPPORTUNITY_STATE offered to leave out), the columns
    its derived values and row rules read. Leaving such a column out would change nothing the layout makes,
    so it is not offered."""
    out = {h for k, h in columns.items() if h and not k.startswith((LAYOUT, OMIT))}
    try:
        layout = _layout(columns)
    except LoadError:
        return out
    if layout is None:
        return out
    m = vendor_mapping(*layout)
    sqls = [f.sql for f in m.fields.values()] + [m.file_status or ""] + [c.sql for c in m.checks] + \
        [sql for sql, _ in m.skip]
    used = set().union(*map(_sql_refs, sqls)) | {m.stage_input} | {c.input for c in m.checks}
    return out | {c for name, i in m.inputs.items() if name in used for c in i.columns}


def _sql_refs(sql: str) -> set[str]:
    return set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.text)?\}", sql or ""))


def _overlay(table: str, vendor: str, headers: list[str], columns: dict[str, str], fill: dict[str, str], *,
             source: str, label: str | None, rules: tuple[str, ...]) -> Mapping:
    """`vendor`'s layout of `headers` with the user's choices in `columns` (see `LAYOUT`): a column
    mapped to what the layout reads keeps the layout's field; one mapped elsewhere reads that column;
    a `derived:` one keeps the layout's field; any other is not loaded (or is `fill`'s constant).
    An input only the fields the user changed read is dropped, so a column the user moved away from is
    kept as extra text like any unmapped one."""
    vm = vendor_mapping(vendor, headers)
    if vm.table != table:
        raise LoadError(f"the mapping starts from the {vm.label} layout, which makes {vm.table or 'a side file'}, "
                        f"not {table}: delete it under 'Saved mappings' and map the file again")
    t = TABLES[table]
    inputs = dict(vm.inputs)
    fields: dict[str, Field] = {}
    changed: list[str] = []
    file_status, stage_input = vm.file_status, vm.stage_input
    for col in t.columns:
        name, chosen, vf = col.name, columns.get(col.name), vm.fields.get(col.name)
        lit = "'" + fill[name].replace("'", "''") + "'" if name in fill else None
        if name == "status" and table == "deals":
            own = _status_column(vm)
            if chosen and chosen != own:
                inputs["mapped_status"] = _column_input(table, name, chosen)
                file_status = "{mapped_status}"
                changed.append(f"status ← {chosen}")
            elif not chosen and DERIVED + name not in columns:
                file_status = None
            if file_status and lit:
                file_status = f"COALESCE({file_status}, {lit})"
            elif not file_status and lit and not stage_input:
                file_status = lit
            continue
        if chosen and vf is not None and not vf.note and _single(vm, vf.input) == chosen:
            field_ = vf
        elif chosen:
            inputs[f"mapped_{name}"] = _column_input(table, name, chosen)
            field_ = Field(f"{{mapped_{name}}}", f"mapped_{name}")
            changed.append(f"{name} ← {chosen}")
            if name == "stage" and table == "deals":
                stage_input = f"mapped_{name}"
        elif DERIVED + name in columns and vf is not None:
            field_ = vf
        else:
            if lit:
                fields[name] = Field(lit, note=f"constant {fill[name]!r}")
            elif vf is not None:
                changed.append(f"{name} not loaded")
            if name == "stage" and table == "deals":
                stage_input = None
            continue
        if lit and field_.input:
            field_ = replace(field_, sql=f"COALESCE({field_.sql}, {lit})")
            if chosen:
                changed.append(f"a blank {chosen!r} is read as {fill[name]!r}")
        fields[name] = field_
    fields |= {k: f for k, f in vm.fields.items() if k not in t.column_names}  # the layout's own extras
    sqls = [f.sql for f in fields.values()] + [file_status or ""] + [c.sql for c in vm.checks] + \
        [n.sql for n in vm.notes] + [sql for sql, _ in vm.skip] + list(vm.facts.values()) + [j.on for j in vm.joins]
    used = set().union(*map(_sql_refs, sqls)) | {stage_input} | {c.input for c in vm.checks}
    # Only what a field the user changed read is let go; an input the layout reads and loads nowhere
    # (Salesforce's Opportunity Name) stays read, as it was, so it does not turn into an extra column.
    was = set().union(*(_sql_refs(f.sql) for f in vm.fields.values())) | _sql_refs(vm.file_status or "") | \
        {vm.stage_input}
    inputs = {k: i for k, i in inputs.items() if k in used or (k in vm.inputs and k not in was)}
    read = {c for i in inputs.values() for c in i.columns}
    for i, header in enumerate(h for h in left_out(columns) if h not in read):
        inputs[f"left_out_{i}"] = Input((header,))
        changed.append(f"{header} left out")
    kept = tuple(r for r in vm.rules if not any(r.startswith(f"{c.split(' ')[0]}: ") for c in changed))
    note = (f"{vm.label}, with your changes: {'; '.join(changed)}",) if changed else (f"{vm.label} as recognised",)
    ordered = {c: fields[c] for c in t.column_names if c in fields} | fields
    return replace(vm, source=source, label=label or f"{vm.label} (your mapping)", inputs=inputs, fields=ordered,
                   file_status=file_status, stage_input=stage_input if stage_input in inputs else None,
                   rules=(*note, *kept, *rules))


def left_out(columns: dict[str, str]) -> list[str]:
    """The file columns a mapping leaves out on purpose: its `omit:<header>` entries (`OMIT`)."""
    return [h for k, h in columns.items() if k.startswith(OMIT) and h]


def leave_out(columns: dict[str, str], headers: Iterable[str]) -> dict[str, str]:
    """`columns` with `headers` left out on purpose (their `omit:` entries replaced)."""
    kept = {k: v for k, v in columns.items() if not k.startswith(OMIT)}
    return kept | {OMIT + h: h for h in headers}


# (table, column, how): the derivations a mapping may ask for when the file lacks the column.
DERIVATIONS = {("subscriptions", "mrr", "arr"), ("subscriptions", "mrr", "per_cycle"), ("deals", "created_date", "lead"),
               ("deals", "created_date", "close")}
# Months one bill covers, for a price per billing cycle (`per_cycle`): the `billing_months` column's number or interval
# where the mapping names one ("12", "3 months", "1 year", "Yearly", "Quarterly"), else the plan's name; 1 where
# nothing says. A cell's number counts in its unit (months unless it says days, weeks, quarters or years).
_CYCLE_TEXT = "lower(trim({billing_months.text}))"
_CYCLE_NUMBER = f"TRY_CAST(NULLIF(regexp_extract({_CYCLE_TEXT}, '[0-9]+([.][0-9]+)?'), '') AS DOUBLE)"
_CYCLE_UNIT = (f"(CASE WHEN regexp_matches({_CYCLE_TEXT}, 'day') THEN 12.0 / 365 "
               f"WHEN regexp_matches({_CYCLE_TEXT}, 'week') THEN 12.0 / 52 "
               f"WHEN regexp_matches({_CYCLE_TEXT}, 'semi|half|biannual') THEN 6.0 "
               f"WHEN regexp_matches({_CYCLE_TEXT}, 'quarter') THEN 3.0 "
               f"WHEN regexp_matches({_CYCLE_TEXT}, 'year|annual') THEN 12.0 "
               f"WHEN regexp_matches({_CYCLE_TEXT}, 'month') THEN 1.0 END)")
_CYCLE_GIVEN = (f"(CASE WHEN {_CYCLE_NUMBER} > 0 AND {_CYCLE_NUMBER} * COALESCE({_CYCLE_UNIT}, 1.0) <= 24 "
                f"THEN {_CYCLE_NUMBER} * COALESCE({_CYCLE_UNIT}, 1.0) WHEN {_CYCLE_NUMBER} IS NULL THEN {_CYCLE_UNIT} END)")
_CYCLE_MONTHS = (f"COALESCE({_CYCLE_GIVEN}, "
                 "CASE WHEN regexp_matches(lower({plan.text}), 'semi|half[ -]?year|biannual') THEN 6.0 "
                 "WHEN regexp_matches(lower({plan.text}), 'annual|yearly|year|12[ -]?month') THEN 12.0 "
                 "WHEN regexp_matches(lower({plan.text}), 'quarter') THEN 3.0 ELSE 1.0 END)")


def snapshot_mapping(columns: dict[str, str]) -> Mapping:
    """Monthly MRR snapshots (`customer_id, month, mrr`) → one subscription row per customer and month."""
    optional = {k: v for k, v in columns.items() if k in ("plan", "segment", "channel")}
    m = canonical_mapping("subscriptions", {"customer_id": columns["customer_id"], "mrr": columns["mrr"], **optional},
                          source="snapshots", label="monthly MRR snapshots")
    inputs = {**m.inputs, "month": Input((columns["month"],), Kind.DATE, required=True)}
    fields = dict(m.fields)
    fields["start_date"] = Field("CAST(date_trunc('month', {month}) AS DATE)", "month")
    fields["end_date"] = Field("CAST(date_trunc('month', {month}) + INTERVAL 1 MONTH AS DATE)", "month")
    ordered = {c: fields[c] for c in TABLES["subscriptions"].column_names if c in fields}
    return replace(m, inputs=inputs, fields=ordered,
                   rules=("each row is the customer's MRR for that month: start on its first day, end a month later",))


SNAPSHOT_COLUMNS = ("customer_id", "month", "mrr")


def canonical_columns(headers: list[str]) -> dict[str, str]:
    """Normalised header → first header carrying it."""
    return Headers(headers).by_key
