"""Which tool exported a file, and how its columns become canonical columns.

A `Mapping` says, for one file layout, which of the file's columns are read as what (`Input`)
and how each output column is computed from them (`Field`, a small SQL template). `ingest`
turns a mapping into SQL; nothing here touches data. Layouts known by their headers:

- HubSpot deals export, Salesforce opportunities report, Pipedrive deals export → `deals`;
- Stripe subscriptions export (Dashboard labels or API field names) → `subscriptions`;
- the "CRM Sales Opportunities" sample (`sales_pipeline.csv` → `deals`, `accounts.csv` →
  `accounts`, with `products.csv` and `sales_teams.csv` as side files joined into deals).

Header text is a display label that users rename and that varies by vendor version
(/work/notes/vendor_exports.md), so headers are matched by `normalise_header` against alias
lists, and missing optional columns are fine. Anything else maps by canonical names, or by a
mapping a user saved for that exact header set (`header_key`).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from .schema import TABLES, ColumnType

# --- value vocabularies ----------------------------------------------------------------------

# Lower-cased synonyms of the enumerated canonical columns, as CRM exports write them.
STATUS_SYNONYMS = {
    "won": "won", "closed won": "won", "closedwon": "won", "closed-won": "won", "win": "won",
    "lost": "lost", "closed lost": "lost", "closedlost": "lost", "closed-lost": "lost",
    "open": "open", "in progress": "open", "active": "open", "pending": "open",
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
    )},
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
}


@dataclass(frozen=True)
class Mapping:
    """How one file layout becomes rows of a canonical table (or of a side table)."""

    source: str  # canonical, snapshots, saved, hubspot, salesforce, pipedrive, stripe, crm_sample
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
    facts: dict[str, str] = field(default_factory=dict)  # SQL aggregates over inputs, for `refine`
    refine: Callable[[Mapping, dict], Mapping] | None = None
    ignore: bool = False  # documentation that travels with the data (a data dictionary): not loaded

    @property
    def used_columns(self) -> set[str]:
        return {c for i in self.inputs.values() for c in i.columns}

    def describe(self) -> dict[str, str]:
        """Output column → the file column(s) it comes from, for the report and the UI."""
        out = {}
        for name, f in self.fields.items():
            refs = set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.text)?\}", f.sql))
            src = self.inputs.get(f.input) if f.input else None
            if src is not None:
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
                          f"{{n}} deal(s) have no value in {m.inputs['amount'].label!r}: counted with amount 0 "
                          "(first on line {line})"))
    return tuple(notes)


def _vendor_deals(source: str, label: str, h: Headers, spec: dict[str, tuple], fields: dict[str, Field],
                  rules: list[str], file_status: str | None = None, stage_input: str | None = "stage",
                  **extra) -> Mapping:
    inputs = _inputs(h, spec)
    if "deal_type" not in inputs:
        fields = {**fields, "deal_type": Field("'new'")}
        rules = [*rules, "the export has no deal type column: every deal is counted as new business"]
    m = Mapping(source, label, "deals", inputs, fields, file_status=file_status,
                stage_input=stage_input if stage_input in inputs else None, rules=tuple(rules), **extra)
    return replace(m, notes=m.notes + _deal_notes(m))


def _currency_refine(m: Mapping, facts: dict) -> Mapping:
    currencies = facts.get("currencies")
    if currencies and "," in currencies:
        return replace(m, rules=m.rules + (
            f"amounts are in several currencies ({currencies}) and are added as they are: "
            "export amounts in one currency (company currency) for exact totals",))
    return m


# --- HubSpot ---------------------------------------------------------------------------------


def _is_hubspot(h: Headers) -> bool:
    return h.has("Record ID", "hs_object_id") and h.has("Deal Name", "Deal Stage", "dealname", "dealstage")


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
        "amount": Field("COALESCE({amount}, 0)", "amount"),
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
        m = replace(m, facts={"currencies": "string_agg(DISTINCT upper({currency.text}), ', ')"},
                    refine=_currency_refine)
    return m


# --- Salesforce ------------------------------------------------------------------------------


def _is_salesforce(h: Headers) -> bool:
    return h.has("Opportunity ID", "Opportunity Name", "Opportunity Id") and h.has("Stage", "StageName")


def _salesforce(h: Headers, sides: set[str]) -> Mapping:
    spec = {
        "opp_id": (Kind.TEXT, ("Opportunity ID", "Opportunity Id", "OpportunityId", "Id")),
        "opp_name": (Kind.TEXT, ("Opportunity Name", "Name")),
        "account": (Kind.TEXT, ("Account ID", "AccountId", "Account Name")),
        "account_name": (Kind.TEXT, ("Account Name",)),
        "owner": (Kind.TEXT, ("Opportunity Owner", "Owner Name", "Owner Full Name", "Owner")),
        "created": (Kind.DATE, ("Created Date", "CreatedDate", "Create Date"), {"required": True}),
        "closed": (Kind.DATE, ("Close Date", "CloseDate")),
        "stage": (Kind.TEXT, ("Stage", "StageName")),
        "won": (Kind.BOOL, ("Won", "IsWon")),
        "closed_flag": (Kind.BOOL, ("Closed", "IsClosed")),
        "amount": (Kind.NUMBER, ("Amount (converted)", "Amount", "Total Amount", "Amount (Converted)")),
        "deal_type": (Kind.ENUM, ("Type", "Opportunity Type"), _DEAL_TYPE),
        "channel": (Kind.TEXT, ("Lead Source", "LeadSource", "Primary Campaign Source")),
        "segment": (Kind.TEXT, _SEGMENT),
        "currency": (Kind.TEXT, ("Opportunity Currency", "Amount Currency", "Total Amount Currency", "Currency")),
    }
    inputs = _inputs(h, spec)
    rules = ["footer rows ('Grand Totals', 'Confidential Information', 'Copyright') are dropped",
             "type 'Existing Customer - Replacement' / '- Downgrade' is read as renewal (inference)"]
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
        "amount": Field("COALESCE({amount}, 0)", "amount"),
        "deal_type": Field("{deal_type}", "deal_type"),
        "segment": Field("{segment}", "segment"),
        "channel": Field("{channel}", "channel"),
    }
    flags = None
    if "won" in inputs:
        flags = ("CASE WHEN {won} THEN 'won' WHEN {won} = false AND {closed_flag} THEN 'lost' "
                 "WHEN {closed_flag} = false THEN 'open' END")
        rules.append("status: Salesforce's own 'Won' / 'Closed' flags where filled, else the stage map")
    m = _vendor_deals("salesforce", "Salesforce opportunities report", h, spec, fields, rules, file_status=flags)
    if "currency" in m.inputs and not any("converted" in c.lower() for c in m.inputs.get("amount", Input(())).columns):
        m = replace(m, facts={"currencies": "string_agg(DISTINCT upper({currency.text}), ', ')"},
                    refine=_currency_refine)
    return m


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
        "amount": Field("COALESCE({amount}, 0)", "amount"),
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
    return replace(m, fields=fields, skip=((f"{status} = 'deleted'", "deleted in Pipedrive"),),
                   **({"facts": {"currencies": "string_agg(DISTINCT upper({currency.text}), ', ')"},
                       "refine": _currency_refine} if "currency" in m.inputs else {}))


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
        "amount": Field("CASE WHEN {=status} = 'won' THEN COALESCE({close_value}, 0) "
                        "ELSE COALESCE(p.list_price, {close_value}, 0) END", "close_value"),
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
    return Mapping("crm_sample", "CRM Sales Opportunities: data dictionary (documentation, not loaded)", "", {}, {},
                   ignore=True)


# Most specific first: the CRM sample's side files share column names with each other.
VENDORS: tuple[tuple[str, Callable[[Headers], bool], Callable[[Headers, set[str]], Mapping]], ...] = (
    ("crm_pipeline", _is_crm_pipeline, _crm_pipeline),
    ("crm_accounts", _is_crm_accounts, _crm_accounts),
    ("crm_products", _is_crm_products, _crm_products),
    ("crm_teams", _is_crm_teams, _crm_teams),
    ("crm_metadata", _is_crm_metadata, _crm_metadata),
    ("stripe", _is_stripe, _stripe),
    ("pipedrive", _is_pipedrive, _pipedrive),
    ("hubspot", _is_hubspot, _hubspot),
    ("salesforce", _is_salesforce, _salesforce),
)


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


def canonical_mapping(table: str, columns: dict[str, str], *, source: str = "canonical",
                      label: str | None = None) -> Mapping:
    """Canonical column → file header, for files that use canonical names or a user's saved choice."""
    t = TABLES[table]
    inputs: dict[str, Input] = {}
    fields: dict[str, Field] = {}
    for col in t.columns:
        header = columns.get(col.name)
        if not header:
            continue
        kind = Kind.of(col.type)
        opts: dict = {}
        if col.name == "deal_type":
            opts = {"synonyms": tuple(DEAL_TYPE_SYNONYMS.items())}
            kind = Kind.ENUM
        elif col.name == "type" and table == "activities":
            opts = {"synonyms": tuple(ACTIVITY_SYNONYMS.items())}
            kind = Kind.ENUM
        elif col.name == "status" and table == "deals":
            opts = {"synonyms": tuple(STATUS_SYNONYMS.items())}
            kind = Kind.ENUM
        inputs[col.name] = Input((header,), kind, **opts)
        if not (col.name == "status" and table == "deals"):
            fields[col.name] = Field(f"{{{col.name}}}", col.name)
    file_status = "{status}" if "status" in inputs and table == "deals" else None
    stage = "stage" if table == "deals" and "stage" in inputs and "status" not in inputs else None
    rules: list[str] = []
    checks: tuple[Check, ...] = ()
    if stage:
        rules.append("no status column: open/won/lost comes from the stage map")
    if table == "spend" and "month" in fields:
        fields["month"] = Field("CAST(date_trunc('month', {month}) AS DATE)", "month")
    if table == "quotas" and "period" in inputs:
        # `@period_start` / `@period_end` are expanded by ingest (2026-10, 2026-Q4, 2026 or a date).
        fields["period_start"] = Field("{@period_start:period}", "period")
        fields["period_end"] = Field("{@period_end:period}", "period")
        checks = (Check("{=period_start} IS NULL AND {period.text} IS NOT NULL", "period",
                        "'period ' || {period.text} || ' is not 2026-10, 2026-Q4, 2026 or a date'"),)
    return Mapping(source, label or f"canonical {table}", table, inputs, fields, file_status=file_status,
                   stage_input=stage, rules=tuple(rules), checks=checks)


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


def guess_canonical(headers: list[str], file_name: str = "") -> str | None:
    """The canonical table whose required columns the headers carry (a stage stands in for status)."""
    from .schema import guess_table

    present = set(canonical_columns(headers))
    if "stage" in present and "status" not in present:
        present.add("status")
    return guess_table(sorted(present), file_name)


# --- suggestions for the mapping screen ------------------------------------------------------

# Aliases a person would recognise, per canonical column (the vendor lists above, flattened).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "deal_id": ("id", "record id", "opportunity id", "deal id", "opp id", "opp", "opp no", "opportunity", "deal",
                "deal number", "opportunity number"),
    "account_id": ("account", "company", "account name", "organization", "customer", "client"),
    "customer_id": ("customer", "account", "account id", "company", "client", "customer id"),
    "owner": ("rep", "sales rep", "sales agent", "deal owner", "opportunity owner", "user", "assigned to"),
    "created_date": ("created", "create date", "created at", "creation date", "engage date", "opened"),
    "close_date": ("closed", "closed date", "close", "closed at", "won date", "expected close date"),
    "stage": ("deal stage", "pipeline stage", "stage name", "phase"),
    "status": ("state", "outcome", "result", "won lost"),
    "amount": ("value", "deal value", "arr", "acv", "price", "revenue", "total", "close value"),
    "deal_type": ("type", "deal type", "opportunity type", "kind"),
    "segment": ("tier", "size", "market", "customer segment"),
    "channel": ("source", "lead source", "origin", "campaign", "traffic source"),
    "start_date": ("start", "started", "since", "subscription start", "from"),
    "end_date": ("end", "ended", "canceled", "cancelled", "churn date", "until", "to"),
    "mrr": ("monthly recurring revenue", "monthly amount", "monthly value"),
    "plan": ("product", "tier", "package", "price"),
    "lead_id": ("id", "lead", "contact id"),
    "activity_id": ("id", "activity"),
    "date": ("day", "when", "activity date", "timestamp"),
    "type": ("activity type", "kind", "category"),
}


def suggest_mapping(headers: list[str], table: str) -> dict[str, str | None]:
    """For each canonical column of `table`, the file header that most likely holds it (or None)."""
    by_key = {normalise_header(h): h for h in headers}
    taken: set[str] = set()
    out: dict[str, str | None] = {}
    for col in TABLES[table].columns:
        candidates = [col.name, *(normalise_header(a) for a in FIELD_ALIASES.get(col.name, ()))]
        found = next((by_key[c] for c in candidates if c in by_key and by_key[c] not in taken), None)
        if found is None:
            close = difflib.get_close_matches(col.name, [k for k, h in by_key.items() if h not in taken], n=1,
                                              cutoff=0.75)
            found = by_key[close[0]] if close else None
        if found:
            taken.add(found)
        out[col.name] = found
    return out


def suggest_table(headers: list[str]) -> str:
    """The canonical table most of these headers seem to belong to (for an unrecognised file)."""
    def score(table: str) -> tuple[int, int]:
        guess = suggest_mapping(headers, table)
        required = TABLES[table].required
        return (sum(1 for c in required if guess.get(c)) - len(required), sum(1 for v in guess.values() if v))
    return max(TABLES, key=score)
