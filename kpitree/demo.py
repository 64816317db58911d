"""A deterministic demo data set: a growing SaaS business with five planted problems.

Why this exists: the product promises "click the red node, see why". A demo only proves that
if the *why* is known in advance. So this module simulates a revenue engine — leads by channel
→ MQL → SQL → deals → subscriptions → expansion, contraction, churn, renewals — with the noise
a real CRM has (growth, seasonality, quarter-end pushes, December slips, a new hire, channel
mix drift), plants four problems with known owners, segments and start dates, and reports them
in `DemoData.problems`, together with the plan the business would have hit without them
(`scenario()["plan"]`), so targets can be set from it and the tree turns red for the right
reasons.

How it stays fast and reproducible:
- Every table has its own random stream, `np.random.default_rng([seed, stream])`. The commercial
  core (leads → deals → accounts → subscription lifecycle) is always simulated (it is cheap and
  everything depends on it); other tables are only built when asked. So the same seed gives the
  same deals whatever subset of tables is asked for.
- Everything is vectorised numpy. The only Python loops run over months, reps, channels and
  segments, never over rows: scale 1 (~18k deals, ~59k leads, all tables) takes about a second,
  scale 50 deals + subscriptions (~0.93M deals) under ten seconds.
- Time is an integer day index from an internal origin twelve months before `start`. That
  pre-history is simulated so the pipeline is already warm on `start` (as if the company had
  moved to this CRM that day): deals opened earlier and still open on `start` are imported with
  `created_date = start`, and the customers won earlier form the initial base whose
  subscriptions all start on `start`. No output date is before `start`.

The plan is computed, not sampled: the same parameters are pushed through their expectations
(lead volumes → lag and cycle-length convolutions → close-date shifts → win rates and sizes, then a
customer recursion by contract anniversary), so a run without problems lands on the plan up to
noise, and targets set from the plan are fair.

Subscription changes are represented by *replacing rows*: an expansion or contraction ends the
current row on the change date and starts a new row with the new MRR on the same date; a churn
ends the row with no follow-up row; a reactivation starts a new row later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_START = date(2024, 10, 1)
DEFAULT_AS_OF = date(2026, 11, 20)  # last day with data; Nov 2026 runs, Oct 2026 is complete

TABLES: tuple[str, ...] = (
    "accounts",
    "deals",
    "subscriptions",
    "leads",
    "activities",
    "spend",
    "quotas",
    "tickets",
    "events",
    "nps",
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id", "name", "segment", "industry", "csm", "created_date"),
    "deals": (
        "deal_id",
        "account_id",
        "owner",
        "created_date",
        "close_date",
        "stage",
        "status",
        "amount",
        "deal_type",
        "segment",
        "channel",
        "services_amount",
    ),
    "subscriptions": ("customer_id", "start_date", "end_date", "mrr", "plan", "segment", "channel"),
    "leads": ("lead_id", "created_date", "channel", "owner", "segment", "mql_date", "sql_date", "deal_id"),
    "activities": ("activity_id", "date", "owner", "type", "account_id"),
    "spend": ("month", "channel", "amount"),
    "quotas": ("owner", "period", "quota"),
    "tickets": ("ticket_id", "account_id", "opened_at", "resolved_at", "first_response_at"),
    "events": ("user_id", "account_id", "timestamp", "feature"),
    "nps": ("account_id", "date", "score"),
}

# Optional tables, built only when asked for by name (the default demo stays the ten above).
EXTRA_TABLES: tuple[str, ...] = ("timesheets",)
COLUMNS["timesheets"] = ("entry_id", "date", "owner", "hours", "billable", "account_id", "project")

# Random streams. Table streams use the table's position in TABLES (as the brief suggests);
# the core simulation has its own streams so asking for fewer tables never shifts them.
_STREAM = {name: i for i, name in enumerate(TABLES)} | {
    "core_leads": 101,
    "core_deals": 102,
    "core_accounts": 103,
    "core_lifecycle": 104,
    "timesheets": 201,
}

SUBSCRIPTION_CHANGES = "replace"  # see module docstring: a change ends a row and starts a new one


@dataclass(frozen=True)
class PlantedProblem:
    """One problem deliberately planted in the demo, so the explanation can be checked against it."""

    id: str
    what: str
    node: str
    dimension: str
    segment: str
    table: str
    since: str


@dataclass
class DemoData:
    """The generated canonical tables, the planted problems and what the business expected."""

    tables: dict[str, pd.DataFrame]
    problems: list[PlantedProblem]
    as_of: date
    seed: int = 7
    scale: float = 1.0
    start: date = DEFAULT_START
    plan: dict[str, dict[str, float]] = field(default_factory=dict)
    plan_by_segment: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    reps: dict[str, object] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def scenario(self) -> dict:
        """A JSON-able description: seed, scale, dates, problems, people, plan and row counts."""
        latest = _latest_complete_month(self.as_of)
        return {
            "seed": self.seed,
            "scale": self.scale,
            "start": self.start.isoformat(),
            "as_of": self.as_of.isoformat(),
            "latest_complete_month": latest,
            "running_month": self.as_of.strftime("%Y-%m"),
            "problems": [asdict(p) for p in self.problems],
            "reps": self.reps,
            "segments": [s.name for s in _SEGMENTS],
            "channels": [c.name for c in _CHANNELS],
            "subscription_changes": SUBSCRIPTION_CHANGES,
            "notes": self.notes,
            "plan": self.plan,
            "plan_by_segment": self.plan_by_segment,
            "row_counts": {name: int(len(frame)) for name, frame in self.tables.items()},
        }


# --------------------------------------------------------------------------------------------
# The business: segments, channels and people. Numbers are per month at scale 1.


@dataclass(frozen=True)
class _Segment:
    """How one customer segment buys, pays, grows and leaves."""

    name: str
    arr_median: float  # list ARR of a new deal
    arr_sigma: float  # lognormal spread of deal size
    cycle_median: float  # days from created to close
    cycle_sigma: float
    win_rate: float
    annual: bool  # annual contracts churn/contract at renewal; monthly plans any month
    churn: float  # monthly hazard (monthly plans) or probability per renewal (annual)
    contraction: float  # same timing as churn
    keep: tuple[float, float]  # a contraction keeps U(lo, hi) of the MRR
    expansion: float  # monthly probability of a won expansion
    uplift: float  # median MRR uplift of an expansion
    lost_expansion: float  # monthly probability of a lost expansion opportunity
    expansion_cycle: float
    renewal_lead: tuple[int, int]  # renewal deal opened this many days before the anniversary
    services_attach: float
    initial_share: float  # share of the initial customer base
    users: tuple[int, int]
    events_per_month: float
    tickets_per_month: float
    health_checks_per_month: float
    extra_meetings: float  # AE meetings per new deal beyond discovery/demo/proposal
    response_hours: float
    resolve_hours: float
    nps: tuple[float, float]  # share of promoters, passives


@dataclass(frozen=True)
class _Channel:
    """Where leads come from, how they convert and what they cost."""

    name: str
    leads: float  # leads in the start month
    growth: float  # monthly growth of lead volume
    segment_mix: tuple[float, float, float]
    p_mql: float
    p_sql: float  # of MQLs
    p_opp: float  # of SQLs
    win_factor: float
    size_factor: float
    cost_per_lead: float
    sdr_touches: float
    season: tuple[float, ...] = (1.0,) * 12  # on top of the business-wide season


@dataclass(frozen=True)
class _Person:
    """A named owner. AEs own new deals, SDRs own leads, CSMs own accounts, renewals and upsells."""

    name: str
    role: str  # "ae" | "sdr" | "csm"
    segment: str = ""
    weight: float = 1.0  # share of the segment's deals (AE) or of leads (SDR)
    skill: float = 1.0  # win-rate factor (AE)
    joins_after_months: int | None = None  # None: there from the beginning


_SEGMENTS: tuple[_Segment, ...] = (
    _Segment(
        "SMB", 9_000, 0.35, 28, 0.35, 0.20, annual=False, churn=0.022, contraction=0.008,
        keep=(0.50, 0.85), expansion=0.025, uplift=0.25, lost_expansion=0.03, expansion_cycle=21,
        renewal_lead=(0, 0), services_attach=0.10, initial_share=0.45, users=(2, 6),
        events_per_month=4.5, tickets_per_month=0.25, health_checks_per_month=0.25,
        extra_meetings=0.4, response_hours=4.0, resolve_hours=20.0, nps=(0.42, 0.33),
    ),
    _Segment(
        "Mid-Market", 36_000, 0.35, 60, 0.33, 0.25, annual=True, churn=0.13, contraction=0.10,
        keep=(0.60, 0.90), expansion=0.045, uplift=0.20, lost_expansion=0.05, expansion_cycle=40,
        renewal_lead=(45, 75), services_attach=0.40, initial_share=0.35, users=(6, 16),
        events_per_month=5.5, tickets_per_month=0.5, health_checks_per_month=0.6,
        extra_meetings=1.2, response_hours=2.5, resolve_hours=28.0, nps=(0.48, 0.32),
    ),
    _Segment(
        "Enterprise", 110_000, 0.30, 115, 0.25, 0.30, annual=True, churn=0.07, contraction=0.12,
        keep=(0.60, 0.90), expansion=0.012, uplift=0.7, lost_expansion=0.04, expansion_cycle=60,
        renewal_lead=(80, 120), services_attach=0.75, initial_share=0.20, users=(15, 40),
        events_per_month=9.0, tickets_per_month=1.2, health_checks_per_month=1.5,
        extra_meetings=2.5, response_hours=1.0, resolve_hours=36.0, nps=(0.52, 0.30),
    ),
)  # fmt: skip

_SEASON = (1.05, 1.0, 1.05, 1.0, 1.0, 0.97, 0.9, 0.88, 1.03, 1.05, 1.0, 0.8)  # Jan..Dec

_CHANNELS: tuple[_Channel, ...] = (
    _Channel("Organic", 325, 0.045, (0.62, 0.26, 0.12), 0.55, 0.52, 0.90, 1.05, 1.00, 35, 1.4),
    _Channel("Paid Search", 315, 0.045, (0.60, 0.28, 0.12), 0.50, 0.50, 0.90, 1.00, 0.95, 160, 1.5),
    _Channel("Paid Social", 210, 0.040, (0.78, 0.17, 0.05), 0.40, 0.38, 0.85, 0.80, 0.85, 110, 1.3),
    _Channel("Outbound", 245, 0.040, (0.25, 0.40, 0.35), 0.45, 0.60, 0.90, 0.85, 1.10, 70, 3.5),
    _Channel("Partner", 95, 0.060, (0.30, 0.35, 0.35), 0.75, 0.65, 0.95, 1.30, 1.15, 260, 1.2),
    _Channel(
        "Events", 140, 0.040, (0.30, 0.38, 0.32), 0.50, 0.45, 0.85, 0.95, 1.05, 320, 1.6,
        season=(0.8, 0.9, 1.6, 1.0, 1.0, 1.3, 0.5, 0.5, 1.0, 1.7, 1.1, 0.4),
    ),
)  # fmt: skip

_PEOPLE: tuple[_Person, ...] = (
    _Person("Priya Raman", "ae", "SMB", 1.0, 1.05),
    _Person("Jake Morrison", "ae", "SMB", 1.0, 0.95),
    _Person("Sofia Alvarez", "ae", "SMB", 1.0, 1.00),
    _Person("Tom Becker", "ae", "SMB", 1.0, 0.90, joins_after_months=6),
    _Person("Marcus Chen", "ae", "Mid-Market", 1.0, 1.05),
    _Person("Olivia Grant", "ae", "Mid-Market", 1.0, 1.00),
    _Person("Ethan Brooks", "ae", "Mid-Market", 1.0, 0.95),
    _Person("Dana Whitfield", "ae", "Enterprise", 2.5, 1.15),
    _Person("Rafael Ortiz", "ae", "Enterprise", 1.0, 1.05),
    _Person("Hannah Lindqvist", "ae", "Enterprise", 1.0, 0.95),
    _Person("Chloe Park", "sdr"),
    _Person("Liam O'Connor", "sdr"),
    _Person("Nina Patel", "sdr"),
    _Person("Sam Whitaker", "sdr", joins_after_months=11),
    _Person("Grace Okafor", "csm"),
    _Person("Ben Harper", "csm"),
    _Person("Maya Goldberg", "csm"),
    _Person("Victor Nguyen", "csm"),
)

# Which CSM looks after a customer of each segment (weights over the CSMs in _PEOPLE order).
_CSM_WEIGHTS: dict[str, tuple[float, ...]] = {
    "SMB": (0.0, 0.0, 0.55, 0.45),
    "Mid-Market": (0.15, 0.60, 0.0, 0.25),
    "Enterprise": (0.75, 0.25, 0.0, 0.0),
}

_INITIAL_CUSTOMERS = 560  # at scale 1, customers already paying on `start`
_INITIAL_MATURITY = 1.8  # older customers: they have expanded since they were won
_DISCOUNT_A, _DISCOUNT_B = 2.0, 16.0  # Beta discount on won deals, mean 11 %
_QUARTER_END_DISCOUNT = 0.95  # deals closed in a quarter's last 10 days get 5 % more off
_PULL, _PULL_JANUARY, _SLIP = 0.45, 0.15, 0.5  # quarter-end pull-ins, December slips
_PULL_MIN_CYCLE = 40  # only deals this long can be pulled into the previous quarter
_MAX_CYCLE = 365
_ATTACH = 0.9  # a loss is an earlier try at an account won within a year
_REUSE = 0.92  # a deal on a prospect re-approaches an earlier lost prospect
_REACTIVATION = 0.10  # share of churned customers who come back 3..12 months later
_STAGES_OPEN = ("Discovery", "Demo", "Proposal", "Negotiation")
_TYPES = ("new", "expansion", "renewal")
_INDUSTRIES = (
    "Software", "Fintech", "Healthcare", "Retail", "Manufacturing", "Logistics", "Education",
    "Media", "Professional Services", "Real Estate", "Energy", "Hospitality",
)  # fmt: skip
_NAME_A = (
    "North", "Blue", "Silver", "Bright", "Cedar", "Iron", "Summit", "Harbor", "Maple", "Granite",
    "Atlas", "Nova", "Pioneer", "Crescent", "Evergreen", "Falcon", "Golden", "Horizon", "Juniper",
    "Keystone", "Lumen", "Meridian", "Oak", "Orbit", "Pine", "Quantum", "Red", "River", "Sage",
    "Sterling", "Stone", "Sun", "Tidal", "Vertex", "West", "Willow", "Zenith", "Apex", "Beacon",
    "Cobalt",
)  # fmt: skip
_NAME_B = (
    "Analytics", "Labs", "Logistics", "Health", "Systems", "Foods", "Capital", "Works", "Media",
    "Retail", "Energy", "Robotics", "Software", "Partners", "Dynamics", "Networks", "Studios",
    "Supply", "Learning", "Clinics", "Freight", "Bank", "Insurance", "Realty", "Motors",
)  # fmt: skip
_NAME_C = ("", "", "", " Inc", " Ltd", " GmbH", " Group", " Co")
_FEATURES = ("dashboards", "reports", "alerts", "integrations", "forecasting", "api", "exports", "sharing")
_FEATURE_WEIGHTS = {
    "SMB": (0.34, 0.22, 0.14, 0.06, 0.04, 0.02, 0.12, 0.06),
    "Mid-Market": (0.26, 0.22, 0.12, 0.12, 0.10, 0.05, 0.07, 0.06),
    "Enterprise": (0.18, 0.20, 0.10, 0.16, 0.14, 0.12, 0.05, 0.05),
}
# Where a session goes next after each feature, half of the time (the rest follows the segment's taste).
_NEXT_FEATURE = {
    "dashboards": "reports", "reports": "sharing", "alerts": "dashboards", "integrations": "api",
    "forecasting": "reports", "api": "integrations", "exports": "sharing", "sharing": "dashboards",
}  # fmt: skip
_EVENTS_PER_SESSION = 2.2
# In the ~10 weeks before a churn an account goes quiet, files more tickets and answers NPS
# surveys more often (and badly): the signals a health score reads.
_AT_RISK_USAGE, _AT_RISK_TICKETS, _AT_RISK_NPS_ANSWERS = 0.1, 3.0, 2.5
_ADOPTION_DROP_FEATURE, _ADOPTION_DROP = "reports", 0.8  # planted: SMB stops using reports
_PLANS = (("Starter", 0.0), ("Growth", 600.0), ("Business", 2_500.0), ("Enterprise", 8_000.0))

_SEG_INDEX = {s.name: i for i, s in enumerate(_SEGMENTS)}
_CHAN_INDEX = {c.name: i for i, c in enumerate(_CHANNELS)}
_AES = [p for p in _PEOPLE if p.role == "ae"]
_SDRS = [p for p in _PEOPLE if p.role == "sdr"]
_CSMS = [p for p in _PEOPLE if p.role == "csm"]
_NAMES = np.array([p.name for p in _PEOPLE], dtype=object)
_AE_IDX = np.array([i for i, p in enumerate(_PEOPLE) if p.role == "ae"])
_SDR_IDX = np.array([i for i, p in enumerate(_PEOPLE) if p.role == "sdr"])
_CSM_IDX = np.array([i for i, p in enumerate(_PEOPLE) if p.role == "csm"])


def _seg_array(attr: str) -> np.ndarray:
    return np.array([getattr(s, attr) for s in _SEGMENTS], dtype=float)


def _chan_array(attr: str) -> np.ndarray:
    return np.array([getattr(c, attr) for c in _CHANNELS], dtype=float)


# --------------------------------------------------------------------------------------------
# Calendar: integer days from an origin twelve months before start.


@dataclass(frozen=True)
class _Calendar:
    """Day and month lookups on the internal integer day grid."""

    origin: np.datetime64
    start: int  # day index of `start`
    as_of: int  # day index of `as_of`
    month_start: np.ndarray  # day index of each month's first day, plus one sentinel
    month_label: tuple[str, ...]
    month_of_day: np.ndarray
    dom: np.ndarray  # 1-based day of month
    cmonth: np.ndarray  # 1..12 per day
    weekday: np.ndarray  # 0 = Monday
    start_month: int
    as_of_month: int

    @classmethod
    def build(cls, start: date, as_of: date) -> _Calendar:
        first = np.datetime64(start, "M") - 12
        last = np.datetime64(as_of, "M") + 21
        months = np.arange(first, last + 1)
        origin = first.astype("datetime64[D]")
        month_start = (months.astype("datetime64[D]") - origin).astype(np.int64)
        n_days = int(month_start[-1])
        month_of_day = np.repeat(np.arange(len(months) - 1), np.diff(month_start))
        days = np.arange(n_days)
        cal_months = months.astype(np.int64) % 12 + 1
        return cls(
            origin=origin,
            start=int((np.datetime64(start) - origin).astype(np.int64)),
            as_of=int((np.datetime64(as_of) - origin).astype(np.int64)),
            month_start=month_start,
            month_label=tuple(str(m) for m in months[:-1]),
            month_of_day=month_of_day,
            dom=days - month_start[month_of_day] + 1,
            cmonth=cal_months[month_of_day],
            weekday=(origin.astype(np.int64) + days + 3) % 7,
            start_month=12,
            as_of_month=int(month_of_day[int((np.datetime64(as_of) - origin).astype(np.int64))]),
        )

    @property
    def n_days(self) -> int:
        return int(self.month_start[-1])

    @property
    def n_months(self) -> int:
        return len(self.month_start) - 1

    def days_in(self, month: np.ndarray | int) -> np.ndarray:
        return self.month_start[np.asarray(month) + 1] - self.month_start[month]

    def month_index(self, label: str) -> int:
        return self.month_label.index(label)

    def add_months(self, day: np.ndarray, k: int) -> np.ndarray:
        """The same day of month k months later (clipped to the month's length)."""
        m = np.minimum(self.month_of_day[day] + k, self.n_months - 1)
        return self.month_start[m] + np.minimum(self.dom[day] - 1, self.days_in(m) - 1)

    def quarter_end_factor(self, day: np.ndarray) -> np.ndarray:
        """The extra discount factor for deals closed in the last ten days of a quarter."""
        m = self.month_of_day[day]
        last10 = (self.cmonth[day] % 3 == 0) & (self.dom[day] > self.days_in(m) - 10)
        return np.where(last10, _QUARTER_END_DISCOUNT, 1.0)

    def iso(self, day: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
        """ISO date strings (object array), None where `missing`."""
        out = (self.origin + np.asarray(day, dtype=np.int64).astype("timedelta64[D]")).astype(str).astype(object)
        if missing is not None:
            out[missing] = None
        return out

    def iso_seconds(self, seconds: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
        """`YYYY-MM-DD HH:MM:SS` strings (object array) from seconds since the origin."""
        stamps = self.origin.astype("datetime64[s]") + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]")
        out = np.char.replace(stamps.astype(str), "T", " ").astype(object)
        if missing is not None:
            out[missing] = None
        return out


def _latest_complete_month(as_of: date) -> str:
    nxt = np.datetime64(as_of, "D") + 1
    month = np.datetime64(as_of, "M")
    if np.datetime64(nxt, "M") == month:  # as_of is not the month's last day: that month still runs
        month = month - 1
    return str(month)


# --------------------------------------------------------------------------------------------
# Planted problems.


@dataclass(frozen=True)
class _Schedule:
    """When and how hard each planted problem hits (or nothing, for the plan)."""

    on: bool
    rep: int = -1  # person index
    rep_since: int = 0  # close day from which the rep's win rate collapses
    rep_factor: float = 1.0
    channel: int = -1
    channel_since: int = 0  # month index from which the channel's leads collapse
    channel_factor: float = 1.0
    churn_segment: int = -1
    churn_since: int = 0  # month index
    churn_factor: float = 1.0
    warning_since: int = 0  # day: SMB tickets up, NPS and reports use down a month before the churn
    discount_segment: int = -1
    discount_since: int = 0  # close day
    discount_factor: float = 1.0

    def lead_factor(self, n_months: int) -> np.ndarray:
        out = np.ones((n_months, len(_CHANNELS)))
        if self.on:
            out[self.channel_since :, self.channel] = self.channel_factor
        return out


def _problems(cal: _Calendar, as_of: date, on: bool) -> tuple[_Schedule, list[PlantedProblem]]:
    """The schedule of the five planted problems, dated relative to the latest complete month."""
    if not on:
        return _Schedule(on=False), []
    latest = cal.month_index(_latest_complete_month(as_of))
    early, late = latest - 2, latest - 1
    early_day, late_day = int(cal.month_start[early]), int(cal.month_start[late])
    early_iso, late_iso = str(cal.iso(np.array([early_day]))[0]), str(cal.iso(np.array([late_day]))[0])
    rep = next(i for i, p in enumerate(_PEOPLE) if p.name == "Dana Whitfield")
    schedule = _Schedule(
        on=True,
        rep=rep,
        rep_since=early_day,
        rep_factor=0.2,
        channel=_CHAN_INDEX["Paid Search"],
        channel_since=late,
        channel_factor=0.35,
        churn_segment=_SEG_INDEX["SMB"],
        churn_since=late,
        churn_factor=3.0,
        warning_since=early_day,
        discount_segment=_SEG_INDEX["Mid-Market"],
        discount_since=early_day,
        discount_factor=0.7,
    )
    problems = [
        PlantedProblem(
            id="enterprise_rep_win_rate",
            what="Win rate of Dana Whitfield's Enterprise deals (she carries over half of them) falls "
            "from ~35% to ~7%, cutting Enterprise new business ARR",
            node="win_rate",
            dimension="owner",
            segment="Dana Whitfield",
            table="deals",
            since=early_iso,
        ),
        PlantedProblem(
            id="paid_search_lead_collapse",
            what="Paid Search leads fall by ~65% while its spend stays flat, so Paid Search "
            "pipeline and new business follow weeks later and its CAC balloons",
            node="leads",
            dimension="channel",
            segment="Paid Search",
            table="leads",
            since=late_iso,
        ),
        PlantedProblem(
            id="smb_churn_spike",
            what="SMB logo churn triples (~2% to ~6% a month), hitting churned MRR, GRR and NRR; "
            "SMB tickets rise and SMB NPS drops a month earlier",
            node="logo_churn_rate",
            dimension="segment",
            segment="SMB",
            table="subscriptions",
            since=late_iso,
        ),
        PlantedProblem(
            id="smb_feature_adoption_drop",
            what="SMB accounts stop using reports (~80% fewer reports events) a month before the SMB "
            "churn spike, so SMB adoption of reports, usage and health fall first",
            node="feature_adoption",
            dimension="segment",
            segment="SMB",
            table="events",
            since=early_iso,
        ),
        PlantedProblem(
            id="mid_market_discounting",
            what="Mid-Market new and upsell deals close ~30% smaller (deeper discounting), so "
            "Mid-Market average deal size, new business ARR and expansion ARR drop",
            node="avg_deal_size",
            dimension="segment",
            segment="Mid-Market",
            table="deals",
            since=early_iso,
        ),
    ]
    return schedule, problems


# --------------------------------------------------------------------------------------------
# Shared model pieces, used both by the sampler and by the plan (its expectation).


def _lead_means(cal: _Calendar, scale: float, schedule: _Schedule) -> np.ndarray:
    """Expected leads per (month, channel, segment) for whole months."""
    k = np.arange(cal.n_months) - cal.start_month
    cal_month = cal.cmonth[cal.month_start[:-1]] - 1
    season = np.array(_SEASON)[cal_month]
    out = np.zeros((cal.n_months, len(_CHANNELS), len(_SEGMENTS)))
    for c, ch in enumerate(_CHANNELS):
        volume = ch.leads * scale * (1.0 + ch.growth) ** k * season * np.array(ch.season)[cal_month]
        out[:, c, :] = volume[:, None] * np.array(ch.segment_mix)[None, :]
    return out * schedule.lead_factor(cal.n_months)[:, :, None]


def _lag_pmf() -> np.ndarray:
    """Days from lead creation to deal creation: U{0..10} to MQL, U{2..25} to SQL, U{0..7} to deal."""
    mql = np.full(11, 1 / 11)
    sql = np.r_[np.zeros(2), np.full(24, 1 / 24)]
    opp = np.full(8, 1 / 8)
    return np.convolve(np.convolve(mql, sql), opp)


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.array([math.erf(v / math.sqrt(2.0)) for v in np.ravel(x)]).reshape(np.shape(x)))


def _cycle_pmf(median: float, sigma: float) -> np.ndarray:
    """P(cycle = k days) for k = 0.._MAX_CYCLE of clip(rint(lognormal), 1, _MAX_CYCLE)."""
    k = np.arange(_MAX_CYCLE + 1, dtype=float)
    edges = np.log(np.maximum(k[1:] + 0.5, 1e-9))
    cdf = _norm_cdf((edges - math.log(median)) / sigma)
    pmf = np.zeros(_MAX_CYCLE + 1)
    pmf[1:] = np.diff(np.r_[0.0, cdf])
    pmf[_MAX_CYCLE] += 1.0 - cdf[-1]
    return pmf


def _draw_cycle(median: np.ndarray, sigma: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.exp(np.log(median) + sigma * z)), 1, _MAX_CYCLE).astype(np.int64)


def _shift_parts(cal: _Calendar, day: np.ndarray, eligible: bool | np.ndarray) -> tuple[np.ndarray, ...]:
    cm, dom = cal.cmonth[day], cal.dom[day]
    pull = np.where(np.isin(cm, (1, 4, 7, 10)) & (dom <= 21), np.where(cm == 1, _PULL_JANUARY, _PULL), 0.0)
    pull = pull * eligible
    slip = np.where((cm == 12) & (dom >= 15), _SLIP, 0.0)
    m = cal.month_of_day[day]
    return pull, slip, cal.month_start[m], cal.month_start[m + 1]


def _weekend_move(cal: _Calendar, day: np.ndarray, eligible: bool | np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """Weekend closes move to weekday k (0..4) of the week before (long deals: the rep books them
    early) or after (short ones). Spreading them keeps Mondays and Fridays ordinary."""
    wd = cal.weekday[day]
    weekend = wd >= 5
    back = np.where(weekend, wd - 4 + k, 0)  # Sat -> Fri..Mon, Sun -> Fri..Mon (1..6 days)
    fwd = np.where(weekend, 7 - wd + k, 0)  # Sat -> Mon..Fri, Sun -> Mon..Fri (1..6 days)
    return np.clip(np.where(eligible, day - back, day + fwd), 0, cal.n_days - 1)


def _shift_closes(cal: _Calendar, natural: np.ndarray, eligible: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Final close days: quarter-end pull-ins, December slips into January, few weekends.

    `u` holds three uniforms per deal: whether to move, where to, which weekday.
    """
    day = np.clip(natural, 0, cal.n_days - 1)
    pull, slip, first, nxt = _shift_parts(cal, day, eligible)
    pulled = u[0] < pull
    slipped = ~pulled & (u[0] < pull + slip)
    out = np.where(pulled, first - 1 - (u[1] * 12).astype(np.int64), day)
    out = np.where(slipped, nxt + 4 + (u[1] * 21).astype(np.int64), out)
    out = np.where(out < 0, day, np.minimum(out, cal.n_days - 1))
    return _weekend_move(cal, out, eligible, (u[2] * 5).astype(np.int64))


def _shift_mass(cal: _Calendar, mass: np.ndarray, eligible: bool) -> np.ndarray:
    """The expectation of `_shift_closes` applied to a mass of natural closes per day."""
    n = cal.n_days
    day = np.arange(n)
    pull, slip, first, nxt = _shift_parts(cal, day, eligible)
    out = mass * (1.0 - pull - slip)
    for k in range(12):
        dest = first - 1 - k
        dest = np.where(dest < 0, day, dest)
        out += np.bincount(dest, weights=mass * pull / 12, minlength=n)[:n]
    for k in range(21):
        dest = np.minimum(nxt + 4 + k, n - 1)
        out += np.bincount(dest, weights=mass * slip / 21, minlength=n)[:n]
    moved = np.zeros(n)
    for k in range(5):
        moved += np.bincount(_weekend_move(cal, day, eligible, k), weights=out / 5, minlength=n)[:n]
    return moved


def _rep_weights(seg: np.ndarray, day: np.ndarray, cal: _Calendar) -> np.ndarray:
    """Weights (rows × AEs) of the AEs who could own a deal of that segment created that day."""
    w = np.zeros((len(seg), len(_AES)))
    for r, p in enumerate(_AES):
        joined = 0 if p.joins_after_months is None else int(cal.month_start[cal.start_month + p.joins_after_months])
        w[:, r] = p.weight * (seg == _SEG_INDEX[p.segment]) * (day >= joined)
    return w


def _pick(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw from unnormalised weights."""
    cum = np.cumsum(weights, axis=1)
    return np.minimum((cum < (u * cum[:, -1])[:, None]).sum(axis=1), weights.shape[1] - 1)


def _mean_list_arr() -> np.ndarray:
    """E[list ARR] per (segment, channel)."""
    base = _seg_array("arr_median") * np.exp(_seg_array("arr_sigma") ** 2 / 2)
    return base[:, None] * _chan_array("size_factor")[None, :]


_MEAN_KEEP_AFTER_DISCOUNT = 1.0 - _DISCOUNT_A / (_DISCOUNT_A + _DISCOUNT_B)


def _initial_channel_mix() -> np.ndarray:
    """P(channel | segment) of the initial base: where the deals of that segment come from."""
    conv = _chan_array("p_mql") * _chan_array("p_sql") * _chan_array("p_opp")
    mix = np.array([c.segment_mix for c in _CHANNELS]) * (_chan_array("leads") * conv)[:, None]
    return (mix / mix.sum(axis=0)).T


# --------------------------------------------------------------------------------------------
# The plan: what the business expects each month without the planted problems.


def _plan(cal: _Calendar, scale: float, months_to: int) -> tuple[dict, dict, np.ndarray]:
    """Expected monthly values without problems: totals, per segment, and new ARR per AE."""
    n = cal.n_days
    no_problems = _Schedule(on=False)
    lam = _lead_means(cal, scale, no_problems)
    per_day = lam[cal.month_of_day] / cal.days_in(cal.month_of_day)[:, None, None]
    lag = _lag_pmf()
    conv = _chan_array("p_mql") * _chan_array("p_sql") * _chan_array("p_opp")
    wf, mean_list = _chan_array("win_factor"), _mean_list_arr()
    qe = cal.quarter_end_factor(np.arange(n))
    weights = _rep_weights(np.repeat(np.arange(3), n), np.tile(np.arange(n), 3), cal).reshape(3, n, -1)
    months = cal.month_of_day

    def monthly(x: np.ndarray) -> np.ndarray:
        return np.bincount(months, weights=x, minlength=cal.n_months)

    closes, won, won_amt, opps = (np.zeros((3, cal.n_months)) for _ in range(4))
    rep_amt = np.zeros((len(_AES), cal.n_months))
    for s, seg in enumerate(_SEGMENTS):
        opp = np.stack([conv[c] * np.convolve(per_day[:, c, s], lag)[:n] for c in range(len(_CHANNELS))])
        share = weights[s] / np.maximum(weights[s].sum(axis=1, keepdims=True), 1e-12)
        skill = share @ np.array([p.skill for p in _AES])
        won_by_day = seg.win_rate * (wf @ opp)
        amt_by_rep = share * (seg.win_rate * ((wf * mean_list[s]) @ opp) * _MEAN_KEEP_AFTER_DISCOUNT)[:, None]
        amt_by_rep *= np.array([p.skill for p in _AES])[None, :]
        pmf = _cycle_pmf(seg.cycle_median, seg.cycle_sigma)
        pmf_long = np.where(np.arange(len(pmf)) >= _PULL_MIN_CYCLE, pmf, 0.0)
        pmf_short = pmf - pmf_long

        def to_close(x: np.ndarray, pmf_long: np.ndarray = pmf_long, pmf_short: np.ndarray = pmf_short) -> np.ndarray:
            return _shift_mass(cal, np.convolve(x, pmf_long)[:n], True) + _shift_mass(
                cal, np.convolve(x, pmf_short)[:n], False
            )

        opps[s] = monthly(opp.sum(axis=0))
        closes[s] = monthly(to_close(opp.sum(axis=0)))
        won[s] = monthly(to_close(won_by_day * skill))
        for r, p in enumerate(_AES):
            if p.segment == seg.name:
                rep_amt[r] = monthly(to_close(amt_by_rep[:, r]) * qe)
        won_amt[s] = rep_amt[[r for r, p in enumerate(_AES) if p.segment == seg.name]].sum(axis=0)

    life = _expected_lifecycle(cal, scale, won, won_amt, months_to)
    plan: dict[str, dict[str, float]] = {}
    by_segment: dict[str, dict[str, dict[str, float]]] = {}
    for m in range(cal.start_month, months_to + 1):
        parts = []
        for s in range(len(_SEGMENTS)):
            flows = dict(life[m][s])
            flows.update(
                leads=lam[m, :, s].sum(), opps=opps[s, m], closes=closes[s, m], won=won[s, m], won_amt=won_amt[s, m]
            )
            parts.append(flows)
        label = cal.month_label[m]
        plan[label] = _plan_values({k: sum(p[k] for p in parts) for k in parts[0]})
        by_segment[label] = {seg.name: _plan_values(p) for seg, p in zip(_SEGMENTS, parts, strict=True)}
    return plan, by_segment, rep_amt


def _plan_values(x: dict[str, float]) -> dict[str, float]:
    """Catalogue-named plan values from the expected additive flows of a month."""
    won_new = x["won"] + x["react_cnt"]
    arr_new = x["won_amt"] + 12 * x["react_mrr"]
    closed_new = x["closes"] + x["react_cnt"]
    won_all = won_new + x["exp_cnt"] + x["renew_won"]
    closed_all = closed_new + x["exp_cnt"] + x["lost_exp"] + x["renew_won"] + x["renew_lost"]
    arr_all = arr_new + 12 * x["exp_mrr"] + x["renew_arr"]
    values = {
        "leads": x["leads"],
        "opportunities_created": x["opps"],
        "new_business_arr": arr_new,
        "expansion_arr": 12 * x["exp_mrr"],
        "new_arr": arr_new + 12 * x["exp_mrr"],
        "win_rate": won_all / closed_all if closed_all else 0.0,
        "win_rate_new": won_new / closed_new if closed_new else 0.0,
        "avg_deal_size": arr_all / won_all if won_all else 0.0,
        "avg_deal_size_new": arr_new / won_new if won_new else 0.0,
        "new_customers": won_new,
        "mrr_churn": x["churn_mrr"],
        "mrr_contraction": x["contr_mrr"],
        "mrr_expansion": x["exp_mrr"],
        "logo_churn_rate": x["churn_cnt"] / x["eligible"] if x["eligible"] else 0.0,
        "mrr": x["mrr"],
        "arr": 12 * x["mrr"],
        "active_customers": x["customers"],
    }
    return {k: round(float(v), 4 if k.endswith("rate") else 2) for k, v in values.items()}


def _expected_lifecycle(
    cal: _Calendar, scale: float, won: np.ndarray, won_amt: np.ndarray, months_to: int
) -> dict[int, list[dict[str, float]]]:
    """The expectation of `_simulate_lifecycle`, per month and segment, as a recursion on counts and MRR.

    Customers are tracked by the calendar month of their contract anniversary (annual plans
    renew, churn or contract only then); monthly plans all sit in slot 0.
    """
    s_n = len(_SEGMENTS)
    n_cnt, n_mrr = np.zeros((s_n, 12)), np.zeros((s_n, 12))  # eligible customers by anniversary month
    init_mrr = _initial_mean_mrr()
    churn_hist = np.zeros((cal.n_months + 13, s_n, 2))
    out: dict[int, list[dict[str, float]]] = {}
    for m in range(cal.start_month, months_to + 1):
        slot = int(cal.cmonth[cal.month_start[m]]) - 1
        out[m] = []
        for s, seg in enumerate(_SEGMENTS):
            cnt, mrr = n_cnt[s].copy(), n_mrr[s].copy()
            acc = dict.fromkeys(("exp_cnt", "renew_won", "renew_lost", "renew_arr"), 0.0)
            acc["eligible"] = cnt.sum()
            acc["lost_exp"] = seg.lost_expansion * cnt.sum()
            mean_loss = 1.0 - sum(seg.keep) / 2
            mean_uplift = seg.uplift * math.exp(0.4**2 / 2)
            if not seg.annual:
                h, c = seg.churn, seg.contraction
                churn_c, churn_m = h * cnt.sum(), h * mrr.sum()
                contr = c * mrr.sum() * mean_loss
                grow = seg.expansion * (1 - h - c)
                acc["exp_cnt"] = grow * cnt.sum()
                exp = grow * mrr.sum() * mean_uplift
                n_mrr[s, 0] = mrr.sum() - churn_m - contr + exp  # monthly plans live in slot 0
                n_cnt[s, 0] = cnt.sum() * (1 - h)
            else:
                a, rc = seg.churn, seg.contraction
                churn_c, churn_m = a * cnt[slot], a * mrr[slot]
                contr = rc * mrr[slot] * mean_loss
                others = np.arange(12) != slot
                acc["exp_cnt"] = seg.expansion * cnt[others].sum()
                exp = seg.expansion * mrr[others].sum() * mean_uplift
                acc["renew_won"] = (1 - a) * cnt[slot]
                acc["renew_lost"] = churn_c
                acc["renew_arr"] = 12 * ((1 - a) * mrr[slot] - contr)
                n_mrr[s, others] = mrr[others] * (1 + seg.expansion * mean_uplift)
                n_mrr[s, slot] = mrr[slot] - churn_m - contr
                n_cnt[s, slot] = cnt[slot] - churn_c
            acc.update(churn_cnt=churn_c, churn_mrr=churn_m, contr_mrr=contr, exp_mrr=exp)
            churn_hist[m, s] = churn_c, churn_m
            past = churn_hist[max(m - 12, 0) : max(m - 2, 0), s]  # churned 3..12 months ago
            acc["react_cnt"] = past[:, 0].sum() * _REACTIVATION / 10
            acc["react_mrr"] = past[:, 1].sum() * _REACTIVATION / 10 * 0.9
            joiners_c = won[s, m] + acc["react_cnt"]
            joiners_m = won_amt[s, m] / 12 + acc["react_mrr"]
            if m == cal.start_month:
                base = _INITIAL_CUSTOMERS * scale * seg.initial_share
                if seg.annual:  # first anniversaries spread over the next twelve months
                    n_cnt[s] += base / 12
                    n_mrr[s] += base / 12 * init_mrr[s]
                else:
                    joiners_c += base
                    joiners_m += base * init_mrr[s]
            target = slot if seg.annual else 0
            n_cnt[s, target] += joiners_c
            n_mrr[s, target] += joiners_m
            acc["mrr"] = n_mrr[s].sum()
            acc["customers"] = n_cnt[s].sum()
            out[m].append(acc)
    return out


def _initial_mean_mrr() -> np.ndarray:
    mean_arr = (_mean_list_arr() * _initial_channel_mix()).sum(axis=1)
    return mean_arr * _MEAN_KEEP_AFTER_DISCOUNT * _INITIAL_MATURITY / 12


# --------------------------------------------------------------------------------------------
# The simulation.


@dataclass
class _Leads:
    """Every lead from the origin to as_of (pre-history included), as parallel arrays."""

    created: np.ndarray
    chan: np.ndarray
    seg: np.ndarray
    mql: np.ndarray
    mql_day: np.ndarray
    sql: np.ndarray
    sql_day: np.ndarray
    opp: np.ndarray
    opp_day: np.ndarray


def _simulate_leads(rng: np.random.Generator, cal: _Calendar, scale: float, schedule: _Schedule) -> _Leads:
    """Leads per month, channel and segment (Poisson around the plan, ~5 % monthly wobble), with the
    funnel step each one reaches and when. Deals are born from these, so a channel that stops
    producing leads starves its pipeline a few weeks later, as in life."""
    k = cal.as_of_month + 1
    means = _lead_means(cal, scale, schedule)[:k]
    noise = rng.gamma(400.0, 1 / 400.0, size=means.shape[:2])  # ~5 % month-to-month wobble
    days = cal.days_in(np.arange(k)).astype(float)
    days_open = days.copy()
    days_open[-1] = cal.dom[cal.as_of]
    counts = rng.poisson(means * noise[:, :, None] * (days_open / days)[:, None, None])
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    month, chan, seg = np.unravel_index(cell, counts.shape)
    n = len(cell)
    created = cal.month_start[month] + (rng.random(n) * days_open[month]).astype(np.int64)
    u = rng.random((3, n))
    mql = u[0] < _chan_array("p_mql")[chan]
    sql = mql & (u[1] < _chan_array("p_sql")[chan])
    opp = sql & (u[2] < _chan_array("p_opp")[chan])
    mql_day = created + rng.integers(0, 11, n)
    sql_day = mql_day + rng.integers(2, 26, n)
    opp_day = sql_day + rng.integers(0, 8, n)
    return _Leads(created, chan, seg, mql, mql_day, sql, sql_day, opp, opp_day)


@dataclass
class _Deals:
    """Deals as parallel arrays (internal indices for people, segments, channels, accounts)."""

    created: np.ndarray  # unclipped: imported deals may start before `start`
    close: np.ndarray
    won: np.ndarray  # outcome (meaningful when close <= as_of)
    amount: np.ndarray
    services: np.ndarray
    owner: np.ndarray
    seg: np.ndarray
    chan: np.ndarray
    dtype: np.ndarray  # index into _TYPES
    account: np.ndarray
    lead: np.ndarray  # lead index or -1

    @staticmethod
    def concat(parts: Sequence[_Deals]) -> _Deals:
        return _Deals(*(np.concatenate([getattr(p, f) for p in parts]) for f in _Deals.__dataclass_fields__))

    def take(self, idx: np.ndarray) -> _Deals:
        return _Deals(*(getattr(self, f)[idx] for f in _Deals.__dataclass_fields__))


def _simulate_new_deals(rng: np.random.Generator, cal: _Calendar, leads: _Leads, schedule: _Schedule) -> _Deals:
    """One deal per lead that reaches opportunity by as_of; outcome, size, owner and dates."""
    lead = np.flatnonzero(leads.opp & (leads.opp_day <= cal.as_of))
    n = len(lead)
    seg, chan, created = leads.seg[lead], leads.chan[lead], leads.opp_day[lead]
    ae = _pick(_rep_weights(seg, created, cal), rng.random(n))
    owner = _AE_IDX[ae]
    cycle = _draw_cycle(_seg_array("cycle_median")[seg], _seg_array("cycle_sigma")[seg], rng.standard_normal(n))
    long = cycle >= _PULL_MIN_CYCLE
    close = _shift_closes(cal, created + cycle, long, rng.random((3, n)))
    p_win = _seg_array("win_rate")[seg] * _chan_array("win_factor")[chan] * np.array([p.skill for p in _AES])[ae]
    if schedule.on:
        p_win = np.where((owner == schedule.rep) & (close >= schedule.rep_since), p_win * schedule.rep_factor, p_win)
    won = rng.random(n) < p_win
    list_arr = _seg_array("arr_median")[seg] * np.exp(_seg_array("arr_sigma")[seg] * rng.standard_normal(n))
    list_arr = list_arr * _chan_array("size_factor")[chan]
    keep = (1.0 - rng.beta(_DISCOUNT_A, _DISCOUNT_B, n)) * cal.quarter_end_factor(close)
    if schedule.on:
        hit = (seg == schedule.discount_segment) & (close >= schedule.discount_since)
        keep = np.where(hit, keep * schedule.discount_factor, keep)
    won_mrr = np.round(list_arr * keep / 12, 2)
    amount = np.where(won, np.round(won_mrr * 12, 2), np.round(list_arr, 0))
    attach = rng.random(n) < _seg_array("services_attach")[seg]
    services = np.where(attach, np.round(list_arr * rng.uniform(0.08, 0.2, n), -2), 0.0)
    deals = _Deals(created, close, won, amount, services, owner, seg, chan, np.zeros(n, np.int64), np.full(n, -1), lead)
    return deals.take(np.flatnonzero(close >= cal.start))


def _assign_accounts(
    rng: np.random.Generator, deals: _Deals, cal: _Calendar, first_account: int
) -> tuple[np.ndarray, int]:
    """Accounts of new deals: each win is a new customer; losses are earlier tries or prospects.

    A lost deal is, with some probability, an earlier failed attempt at an account won later
    (same segment, won deal opened within a year after the loss); the rest go to prospect
    accounts, which are often re-approached (a later deal reuses an earlier lost prospect).
    That keeps a realistic number of accounts per deal without any per-row loop, and never gives
    an account two wins.
    """
    n = len(deals.close)
    account = np.full(n, -1, dtype=np.int64)
    done = (deals.close <= cal.as_of) & deals.won
    won_idx = np.flatnonzero(done)
    account[won_idx] = first_account + np.arange(len(won_idx))
    next_account = first_account + len(won_idx)
    lost = (deals.close <= cal.as_of) & ~deals.won
    u = rng.random((4, n))
    pool_deals: list[np.ndarray] = []
    for s in range(len(_SEGMENTS)):
        wins = won_idx[deals.seg[won_idx] == s]
        wins = wins[np.argsort(deals.created[wins], kind="stable")]
        win_created = deals.created[wins]
        losers = np.flatnonzero(lost & (deals.seg == s))
        lo = np.searchsorted(win_created, deals.close[losers], side="right")
        hi = np.searchsorted(win_created, deals.close[losers] + 365, side="right")
        attach = (hi > lo) & (u[0, losers] < _ATTACH)
        pick = lo + (u[1, losers] * (hi - lo)).astype(np.int64)
        account[losers[attach]] = account[wins[pick[attach]]]
        pool_deals.append(np.flatnonzero((deals.seg == s) & ~done & (account < 0)))
    for pool in pool_deals:
        pool = pool[np.argsort(deals.created[pool], kind="stable")]
        closed = pool[deals.close[pool] <= cal.as_of]
        closed = closed[np.argsort(deals.close[closed], kind="stable")]
        avail = np.searchsorted(deals.close[closed], deals.created[pool], side="left")
        reuse = (avail > 0) & (u[2, pool] < _REUSE)
        ptr = np.arange(n)
        ptr[pool[reuse]] = closed[(u[3, pool[reuse]] * avail[reuse]).astype(np.int64)]
        while True:  # pointer jumping: each reused deal points at an earlier one; find the root
            nxt = ptr[ptr]
            if np.array_equal(nxt, ptr):
                break
            ptr = nxt
        roots = np.unique(ptr[pool])
        ids = np.full(n, -1, dtype=np.int64)
        ids[roots] = next_account + np.arange(len(roots))
        next_account += len(roots)
        account[pool] = ids[ptr[pool]]
    return account, next_account


@dataclass
class _Customers:
    """Paying accounts (initial base first, then one per won new deal)."""

    seg: np.ndarray
    chan: np.ndarray
    start: np.ndarray  # first subscription day
    mrr0: np.ndarray
    ann_first: np.ndarray  # first anniversary day (annual contracts)
    csm: np.ndarray  # person index


@dataclass
class _Lifecycle:
    """Subscription change events and the deals they imply."""

    ev_cust: np.ndarray
    ev_day: np.ndarray
    ev_mrr: np.ndarray  # 0 = churn
    deals: _Deals


def _initial_customers(rng: np.random.Generator, cal: _Calendar, scale: float) -> _Customers:
    """The customers won before `start`: their contract anniversaries are spread over the first year."""
    n = round(_INITIAL_CUSTOMERS * scale)
    seg = rng.choice(len(_SEGMENTS), size=n, p=_seg_array("initial_share") / _seg_array("initial_share").sum())
    mix = _initial_channel_mix()
    chan = _pick(mix[seg], rng.random(n))
    list_arr = _seg_array("arr_median")[seg] * np.exp(_seg_array("arr_sigma")[seg] * rng.standard_normal(n))
    keep = 1.0 - rng.beta(_DISCOUNT_A, _DISCOUNT_B, n)
    mrr = np.round(list_arr * _chan_array("size_factor")[chan] * keep * _INITIAL_MATURITY / 12, 2)
    ann_month = cal.start_month + 1 + rng.integers(0, 12, n)
    ann_first = cal.month_start[ann_month] + rng.integers(0, 28, n)
    start = np.full(n, cal.start)
    return _Customers(seg, chan, start, mrr, ann_first, np.zeros(n, np.int64))


def _simulate_lifecycle(rng: np.random.Generator, cal: _Calendar, cust: _Customers, schedule: _Schedule) -> _Lifecycle:
    """Month by month, for all customers at once: churn, contraction, expansion, renewal, return."""
    c_n = len(cust.seg)
    seg = cust.seg
    prof = {
        attr: _seg_array(attr)[seg]
        for attr in (
            "churn",
            "contraction",
            "expansion",
            "uplift",
            "lost_expansion",
            "expansion_cycle",
            "cycle_median",
            "annual",
        )
    }
    annual = prof["annual"].astype(bool)
    keep_lo, keep_hi = (np.array([s.keep[i] for s in _SEGMENTS])[seg] for i in (0, 1))
    lead_lo, lead_hi = (np.array([s.renewal_lead[i] for s in _SEGMENTS])[seg] for i in (0, 1))
    status = np.zeros(c_n, np.int8)  # 0 not yet a customer, 1 paying, 2 churned
    start = cust.start.copy()
    mrr = np.zeros(c_n)
    ann_next = cust.ann_first.copy()
    react_month = np.full(c_n, -1)
    last_mrr = np.zeros(c_n)
    churned_on = np.zeros(c_n, np.int64)
    events: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    deals: list[dict[str, np.ndarray]] = []

    def add_deals(
        who: np.ndarray,
        created: np.ndarray,
        close: np.ndarray,
        won: np.ndarray,
        amount: np.ndarray,
        dtype: int,
        owner: np.ndarray,
    ) -> None:
        deals.append(
            {
                "who": who,
                "created": np.maximum(created, cal.start),
                "close": close,
                "won": won,
                "amount": np.round(amount, 2),
                "dtype": np.full(len(who), dtype),
                "owner": owner,
            }
        )

    last_month = min(cal.as_of_month + 5, cal.n_months - 2)
    for m in range(cal.start_month, last_month + 1):
        ms, me = int(cal.month_start[m]), int(cal.month_start[m + 1])
        nd = me - ms
        u = rng.random((7, c_n))
        z = rng.standard_normal((2, c_n))
        joining = (status == 0) & (start < me)
        status[joining] = 1
        mrr[joining] = cust.mrr0[joining]
        eligible = (status == 1) & (start < ms)
        h = prof["churn"] * np.where(
            schedule.on & (seg == schedule.churn_segment) & (m >= schedule.churn_since), schedule.churn_factor, 1.0
        )
        day = ms + (u[3] * nd).astype(np.int64)
        # monthly plans: churn or contraction any month
        churn_m = eligible & ~annual & (u[0] < h)
        contr_m = eligible & ~annual & ~churn_m & (u[0] < h + prof["contraction"])
        # annual contracts: renewal on the anniversary
        renew = eligible & annual & (ann_next >= ms) & (ann_next < me)
        churn_a = renew & (u[0] < prof["churn"])
        contr_a = renew & ~churn_a & (u[0] < prof["churn"] + prof["contraction"])
        expand = eligible & ~churn_m & ~contr_m & ~renew & (u[1] < prof["expansion"])
        lost_exp = eligible & (u[2] < prof["lost_expansion"])
        keep = keep_lo + (keep_hi - keep_lo) * u[4]
        uplift = np.exp(np.log(prof["uplift"]) + 0.4 * z[0])
        if schedule.on and ms >= schedule.discount_since:  # the discounting reaches upsells too
            uplift = np.where(seg == schedule.discount_segment, uplift * schedule.discount_factor, uplift)

        # renewal deals (won unless churned; a contraction renews at the lower price)
        ren = np.flatnonzero(renew)
        renewal_day = ann_next.copy()
        new_mrr = np.where(contr_a, np.round(mrr * keep, 2), mrr)
        opened = ann_next[ren] - (lead_lo[ren] + u[5, ren] * (lead_hi[ren] - lead_lo[ren])).astype(np.int64)
        add_deals(ren, opened, ann_next[ren], ~churn_a[ren], 12 * new_mrr[ren], 2, cust.csm[ren])
        idx = np.flatnonzero(contr_a)
        events.append((idx, ann_next[idx], new_mrr[idx]))
        ann_next[ren] = cal.add_months(ann_next[ren], 12)

        idx = np.flatnonzero(contr_m)
        new_mrr = np.round(mrr * keep, 2)
        events.append((idx, day[idx], new_mrr[idx]))
        mrr[idx] = new_mrr[idx]
        mrr[contr_a] = np.round(mrr[contr_a] * keep[contr_a], 2)

        idx = np.flatnonzero(expand)
        new_mrr = np.round(mrr * (1 + uplift), 2)
        cycle = _draw_cycle(prof["expansion_cycle"][idx], 0.35, z[1, idx])
        opened = np.maximum(day[idx] - cycle, start[idx])  # upsells are opened with paying customers
        add_deals(idx, opened, day[idx], np.ones(len(idx), bool), 12 * (new_mrr[idx] - mrr[idx]), 1, cust.csm[idx])
        events.append((idx, day[idx], new_mrr[idx]))
        mrr[idx] = new_mrr[idx]

        idx = np.flatnonzero(lost_exp)
        close = ms + (u[2, idx] / prof["lost_expansion"][idx] * nd).astype(np.int64)
        cycle = _draw_cycle(prof["expansion_cycle"][idx], 0.35, z[0, idx])
        opened = np.maximum(close - cycle, start[idx])
        add_deals(idx, opened, close, np.zeros(len(idx), bool), 12 * mrr[idx] * uplift[idx], 1, cust.csm[idx])

        churned = churn_m | churn_a
        idx = np.flatnonzero(churned)
        churn_day = np.where(annual, renewal_day, day)
        events.append((idx, churn_day[idx], np.zeros(len(idx))))
        last_mrr[idx] = mrr[idx]
        churned_on[idx] = churn_day[idx]
        mrr[idx] = 0.0
        status[idx] = 2
        comes_back = churned & (u[6] < _REACTIVATION)
        react_month[comes_back] = m + 3 + (u[1, comes_back] * 10).astype(np.int64)

        # reactivations: a won "new" deal on the old account, a new row, a new contract year
        back = np.flatnonzero((status == 2) & (react_month == m))
        if len(back):
            new_mrr = np.round(last_mrr[back] * (0.7 + 0.4 * u[4, back]), 2)
            cycle = _draw_cycle(prof["cycle_median"][back] * 0.5, 0.35, z[1, back])
            opened = np.maximum(day[back] - cycle, churned_on[back] + 1)  # the win-back starts after the loss
            ae = _AE_IDX[_pick(_rep_weights(seg[back], opened, cal), u[5, back])]
            add_deals(back, opened, day[back], np.ones(len(back), bool), 12 * new_mrr, 0, ae)
            events.append((back, day[back], new_mrr))
            status[back] = 1
            start[back] = day[back]
            mrr[back] = new_mrr
            ann_next[back] = cal.add_months(day[back], 12)
            react_month[back] = -1

    ev_cust = np.concatenate([e[0] for e in events])
    ev_day = np.concatenate([e[1] for e in events])
    ev_mrr = np.concatenate([e[2] for e in events])
    d = {k: np.concatenate([x[k] for x in deals]) for k in deals[0]}
    who = d["who"]
    out = _Deals(
        created=d["created"],
        close=d["close"],
        won=d["won"],
        amount=d["amount"],
        services=np.zeros(len(who)),
        owner=d["owner"],
        seg=seg[who],
        chan=cust.chan[who],
        dtype=d["dtype"],
        account=who,
        lead=np.full(len(who), -1),
    )
    return _Lifecycle(ev_cust, ev_day, ev_mrr, out.take(np.flatnonzero(out.created <= cal.as_of)))


@dataclass
class _World:
    """The commercial core, always simulated; tables are views of it."""

    cal: _Calendar
    scale: float
    schedule: _Schedule
    leads: _Leads
    deals: _Deals  # final order (deal ids follow it)
    deal_ids: np.ndarray
    lead_deal: np.ndarray  # per lead: final deal position or -1
    n_accounts: int
    account_created: np.ndarray
    account_ids: np.ndarray  # per internal account
    account_seg: np.ndarray
    customers: _Customers
    rows: pd.DataFrame  # subscription rows (internal ints)
    rep_plan: np.ndarray  # expected new ARR per AE and month


def _simulate(seed: int, scale: float, cal: _Calendar, schedule: _Schedule, rep_plan: np.ndarray) -> _World:
    leads = _simulate_leads(np.random.default_rng([seed, _STREAM["core_leads"]]), cal, scale, schedule)
    new = _simulate_new_deals(np.random.default_rng([seed, _STREAM["core_deals"]]), cal, leads, schedule)
    life_rng = np.random.default_rng([seed, _STREAM["core_lifecycle"]])
    base = _initial_customers(life_rng, cal, scale)
    acct_rng = np.random.default_rng([seed, _STREAM["core_accounts"]])
    new.account, n_accounts = _assign_accounts(acct_rng, new, cal, len(base.seg))

    won = np.flatnonzero((new.close <= cal.as_of) & new.won)
    won = won[np.argsort(new.account[won])]
    cust = _Customers(
        seg=np.r_[base.seg, new.seg[won]],
        chan=np.r_[base.chan, new.chan[won]],
        start=np.r_[base.start, new.close[won]],
        mrr0=np.r_[base.mrr0, np.round(new.amount[won] / 12, 2)],
        ann_first=np.r_[base.ann_first, cal.add_months(new.close[won], 12)],
        csm=np.zeros(len(base.seg) + len(won), np.int64),
    )
    csm_w = np.array([_CSM_WEIGHTS[s.name] for s in _SEGMENTS])[cust.seg]
    cust.csm = _CSM_IDX[_pick(csm_w, life_rng.random(len(cust.seg)))]
    life = _simulate_lifecycle(life_rng, cal, cust, schedule)

    deals = _Deals.concat([new, life.deals])
    created_out = np.maximum(deals.created, cal.start)
    order = np.lexsort((deals.dtype, deals.close, created_out))
    deals = deals.take(order)
    width = max(6, len(str(len(order))))
    deal_ids = _ids("D", len(order), width)
    lead_deal = np.full(len(leads.created), -1)
    has_lead = deals.lead >= 0
    lead_deal[deals.lead[has_lead]] = np.flatnonzero(has_lead)

    # Accounts: created when first seen (lead or deal), the initial base on `start`.
    origin = np.where(deals.lead >= 0, leads.created[np.maximum(deals.lead, 0)], deals.created)
    first_seen = np.full(n_accounts, cal.start + 10**6)
    np.minimum.at(first_seen, deals.account, np.maximum(origin, cal.start))
    first_seen[: len(base.seg)] = cal.start
    first_seen = np.minimum(first_seen, cal.as_of)
    acct_order = np.lexsort((np.arange(n_accounts), first_seen))
    account_ids = np.empty(n_accounts, dtype=object)
    account_ids[acct_order] = _ids("A", n_accounts, max(5, len(str(n_accounts))))
    account_seg = np.full(n_accounts, -1)
    account_seg[deals.account] = deals.seg
    account_seg[: len(cust.seg)] = cust.seg

    rows = _subscription_rows(cal, cust, life)
    return _World(
        cal,
        scale,
        schedule,
        leads,
        deals,
        deal_ids,
        lead_deal,
        n_accounts,
        first_seen,
        account_ids,
        account_seg,
        cust,
        rows,
        rep_plan,
    )


def _subscription_rows(cal: _Calendar, cust: _Customers, life: _Lifecycle) -> pd.DataFrame:
    """Rows from change events: each non-churn event starts a row that the next event ends.

    Events after as_of are dropped, so a row whose next change is in the future stays open.
    """
    c_n = len(cust.seg)
    cust_ix = np.r_[np.arange(c_n), life.ev_cust]
    day = np.r_[cust.start, life.ev_day]
    mrr = np.r_[cust.mrr0, life.ev_mrr]
    keep = day <= cal.as_of
    cust_ix, day, mrr = cust_ix[keep], day[keep], mrr[keep]
    order = np.lexsort((day, cust_ix))
    cust_ix, day, mrr = cust_ix[order], day[order], mrr[order]
    same_next = np.r_[cust_ix[1:] == cust_ix[:-1], False]
    end = np.where(same_next, np.r_[day[1:], -1], -1)
    ends_in_churn = same_next & (np.r_[mrr[1:], 1.0] == 0)
    row = mrr > 0
    return pd.DataFrame(
        {"cust": cust_ix[row], "start": day[row], "end": end[row], "mrr": mrr[row], "churn": ends_in_churn[row]}
    )


# --------------------------------------------------------------------------------------------
# Tables.


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    nums = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    return np.char.add(prefix, nums).astype(object)


def _stage(elapsed: np.ndarray) -> np.ndarray:
    return np.array(_STAGES_OPEN, dtype=object)[np.clip((elapsed * 4).astype(np.int64), 0, 3)]


def _deals_frame(w: _World) -> pd.DataFrame:
    """Deals as of as_of: outcomes after it are hidden (open, staged by how far the cycle has run)."""
    cal, d = w.cal, w.deals
    open_ = d.close > cal.as_of
    status = np.where(open_, "open", np.where(d.won, "won", "lost")).astype(object)
    created = np.maximum(d.created, cal.start)
    elapsed = (cal.as_of - d.created) / np.maximum(d.close - d.created, 1)
    stage = np.where(open_, _stage(elapsed), np.where(d.won, "Closed Won", "Closed Lost"))
    return pd.DataFrame(
        {
            "deal_id": w.deal_ids,
            "account_id": w.account_ids[d.account],
            "owner": _NAMES[d.owner],
            "created_date": cal.iso(created),
            "close_date": cal.iso(d.close),
            "stage": stage,
            "status": status,
            "amount": d.amount,
            "deal_type": np.array(_TYPES, dtype=object)[d.dtype],
            "segment": _seg_names()[d.seg],
            "channel": _chan_names()[d.chan],
            "services_amount": d.services,
        }
    )


def _seg_names() -> np.ndarray:
    return np.array([s.name for s in _SEGMENTS], dtype=object)


def _chan_names() -> np.ndarray:
    return np.array([c.name for c in _CHANNELS], dtype=object)


def _plan_name(mrr: np.ndarray) -> np.ndarray:
    cuts = np.array([lo for _, lo in _PLANS])
    return np.array([name for name, _ in _PLANS], dtype=object)[np.searchsorted(cuts, mrr, side="right") - 1]


def _subscriptions_frame(w: _World) -> pd.DataFrame:
    r, cust = w.rows, w.customers
    ix = r["cust"].to_numpy()
    end = r["end"].to_numpy()
    return pd.DataFrame(
        {
            "customer_id": w.account_ids[ix],
            "start_date": w.cal.iso(r["start"].to_numpy()),
            "end_date": w.cal.iso(np.maximum(end, 0), missing=end < 0),
            "mrr": r["mrr"].to_numpy(),
            "plan": _plan_name(r["mrr"].to_numpy()),
            "segment": _seg_names()[cust.seg[ix]],
            "channel": _chan_names()[cust.chan[ix]],
        }
    )


def _accounts_frame(w: _World, rng: np.random.Generator) -> pd.DataFrame:
    n = w.n_accounts
    combos = len(_NAME_A) * len(_NAME_B) * len(_NAME_C)
    pick = rng.permutation(combos)[:n] if n <= combos else rng.integers(0, combos, n)
    a, rest = np.divmod(pick, len(_NAME_B) * len(_NAME_C))
    b, c = np.divmod(rest, len(_NAME_C))
    names = np.char.add(np.char.add(np.char.add(np.array(_NAME_A)[a], " "), np.array(_NAME_B)[b]), np.array(_NAME_C)[c])
    industry = np.array(_INDUSTRIES, dtype=object)[rng.integers(0, len(_INDUSTRIES), n)]
    csm = np.full(n, None, dtype=object)
    csm[: len(w.customers.seg)] = _NAMES[w.customers.csm]
    order = np.argsort(w.account_ids)
    frame = pd.DataFrame(
        {
            "account_id": w.account_ids,
            "name": names.astype(object),
            "segment": _seg_names()[w.account_seg],
            "industry": industry,
            "csm": csm,
            "created_date": w.cal.iso(w.account_created),
        }
    )
    return frame.iloc[order].reset_index(drop=True)


def _lead_rows(w: _World) -> np.ndarray:
    """Leads shown: those created on or after start, in creation order."""
    idx = np.flatnonzero(w.leads.created >= w.cal.start)
    return idx[np.argsort(w.leads.created[idx], kind="stable")]


def _lead_owner(w: _World, rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
    weights = np.zeros((len(idx), len(_SDRS)))
    for r, p in enumerate(_SDRS):
        joined = 0 if p.joins_after_months is None else w.cal.month_start[w.cal.start_month + p.joins_after_months]
        weights[:, r] = p.weight * (w.leads.created[idx] >= joined)
    return _SDR_IDX[_pick(weights, rng.random(len(idx)))]


def _leads_frame(w: _World, idx: np.ndarray, owner: np.ndarray) -> pd.DataFrame:
    cal, lead = w.cal, w.leads
    mql = lead.mql[idx] & (lead.mql_day[idx] <= cal.as_of)
    sql = lead.sql[idx] & (lead.sql_day[idx] <= cal.as_of)
    deal = w.lead_deal[idx]
    deal_id = np.where(deal >= 0, w.deal_ids[np.maximum(deal, 0)], None)
    return pd.DataFrame(
        {
            "lead_id": _ids("L", len(idx), max(6, len(str(len(idx))))),
            "created_date": cal.iso(lead.created[idx]),
            "channel": _chan_names()[lead.chan[idx]],
            "owner": _NAMES[owner],
            "segment": _seg_names()[lead.seg[idx]],
            "mql_date": cal.iso(lead.mql_day[idx], missing=~mql),
            "sql_date": cal.iso(lead.sql_day[idx], missing=~sql),
            "deal_id": deal_id,
        }
    )


def _exposures(w: _World) -> pd.DataFrame:
    """Subscription rows cut by month up to as_of: who paid, when, for how many days."""
    cal, r = w.cal, w.rows
    start, end = r["start"].to_numpy(), r["end"].to_numpy()
    end = np.where(end < 0, cal.as_of + 1, end)
    parts = []
    for m in range(cal.start_month, cal.as_of_month + 1):
        lo = np.maximum(start, cal.month_start[m])
        hi = np.minimum(np.minimum(end, cal.month_start[m + 1]), cal.as_of + 1)
        ok = np.flatnonzero(hi > lo)
        parts.append(pd.DataFrame({"row": ok, "month": m, "lo": lo[ok], "hi": hi[ok]}))
    ex = pd.concat(parts, ignore_index=True)
    ex["cust"] = r["cust"].to_numpy()[ex["row"]]
    ex["seg"] = w.customers.seg[ex["cust"]]
    # usage fades, tickets rise and NPS sours in the ~10 weeks before a churn
    ex["at_risk"] = r["churn"].to_numpy()[ex["row"]] & (end[ex["row"]] - ex["lo"] <= 75)
    return ex


def _spread(rng: np.random.Generator, ex: pd.DataFrame, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts per exposure at `rate` per 30 days; returns (exposure index, day) per item."""
    days = (ex["hi"] - ex["lo"]).to_numpy()
    count = rng.poisson(rate * days / 30.0)
    item = np.repeat(np.arange(len(ex)), count)
    day = ex["lo"].to_numpy()[item] + (rng.random(len(item)) * days[item]).astype(np.int64)
    return item, day


def _weekday(cal: _Calendar, day: np.ndarray, u: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Most work happens on weekdays: move 85 % of weekend days to the nearest weekday in range."""
    wd = cal.weekday[np.clip(day, 0, cal.n_days - 1)]
    shift = np.where(wd == 5, -1, np.where(wd == 6, 1, 0))
    moved = np.where((shift != 0) & (u < 0.85), day + shift, day)
    return np.where((moved >= lo) & (moved < hi), moved, day)


def _activities_frame(
    w: _World, rng: np.random.Generator, lead_idx: np.ndarray, lead_owner: np.ndarray, ex: pd.DataFrame
) -> pd.DataFrame:
    """Work logged by role: SDRs call and email leads, AEs meet, demo and propose on their new deals,
    CSMs run health checks with paying accounts — so activity levers move with the funnel."""
    cal, lead, d = w.cal, w.leads, w.deals
    acct = w.account_ids
    parts: list[tuple[np.ndarray, ...]] = []  # (day, owner, type, account id)
    types = np.array(("call", "email", "meeting", "demo", "proposal", "health_check"), dtype=object)

    # SDRs: calls and emails while working a lead, until it becomes an SQL (or ~3 weeks)
    touches = rng.poisson(_chan_array("sdr_touches")[lead.chan[lead_idx]])
    item = np.repeat(np.arange(len(lead_idx)), touches)
    li = lead_idx[item]
    window = np.where(lead.sql[li], lead.sql_day[li] - lead.created[li], 21)
    day = lead.created[li] + (rng.random(len(li)) * np.maximum(window, 1)).astype(np.int64)
    day = _weekday(cal, day, rng.random(len(li)), lead.created[li], cal.as_of + 1)
    deal = w.lead_deal[li]
    account = np.where(deal >= 0, acct[d.account[np.maximum(deal, 0)]], None)
    kind = np.where(rng.random(len(li)) < 0.4, 0, 1)
    parts.append((day, lead_owner[item], kind, account))

    # AEs: discovery meeting, demo, proposal and follow-up meetings on their new deals
    new = np.flatnonzero(d.dtype == 0)
    created = np.maximum(d.created[new], cal.start)
    dur = np.maximum(d.close[new] - created, 1)
    open_ = d.close[new] > cal.as_of
    elapsed = (cal.as_of - created) / dur
    extra = rng.poisson(_seg_array("extra_meetings")[d.seg[new]])
    u = rng.random((3, len(new)))
    demo = u[0] < 0.85
    proposal = np.where(open_, elapsed > 0.6, np.where(d.won[new], True, u[1] < 0.45))
    xi = np.repeat(np.arange(len(new)), extra)
    x_day = created[xi] + (rng.random(len(xi)) * dur[xi]).astype(np.int64)
    days = np.r_[
        created,
        created[demo] + (0.3 * dur[demo]).astype(np.int64),
        created[proposal] + (0.75 * dur[proposal]).astype(np.int64),
        x_day,
    ]
    which = np.r_[np.arange(len(new)), np.flatnonzero(demo), np.flatnonzero(proposal), xi]
    kind = np.r_[np.full(len(new), 2), np.full(demo.sum(), 3), np.full(proposal.sum(), 4), np.full(len(xi), 2)]
    deal_ix = new[which]
    days = _weekday(cal, days, rng.random(len(days)), created[which], d.close[deal_ix] + 1)
    parts.append((days, d.owner[deal_ix], kind, acct[d.account[deal_ix]]))

    # CSMs: health checks with paying customers
    item, day = _spread(rng, ex, _seg_array("health_checks_per_month")[ex["seg"].to_numpy()])
    cust = ex["cust"].to_numpy()[item]
    day = _weekday(cal, day, rng.random(len(item)), ex["lo"].to_numpy()[item], ex["hi"].to_numpy()[item])
    parts.append((day, w.customers.csm[cust], np.full(len(item), 5), acct[cust]))

    day = np.concatenate([p[0] for p in parts])
    owner = np.concatenate([p[1] for p in parts])
    kind = np.concatenate([p[2] for p in parts])
    account = np.concatenate([p[3] for p in parts])
    ok = np.flatnonzero((day <= cal.as_of) & (day >= cal.start))
    ok = ok[np.lexsort((owner[ok], day[ok]))]
    return pd.DataFrame(
        {
            "activity_id": _ids("AC", len(ok), max(7, len(str(len(ok))))),
            "date": cal.iso(day[ok]),
            "owner": _NAMES[owner[ok]],
            "type": types[kind[ok]],
            "account_id": account[ok],
        }
    )


def _spend_frame(w: _World, rng: np.random.Generator) -> pd.DataFrame:
    """Spend follows the *planned* lead volume: a channel that stops delivering keeps costing."""
    cal = w.cal
    months = np.arange(cal.start_month, cal.as_of_month + 1)
    lam = _lead_means(cal, w.scale, _Schedule(on=False))[months].sum(axis=2)
    frac = np.ones(len(months))
    frac[-1] = cal.dom[cal.as_of] / cal.days_in(cal.as_of_month)
    amount = lam * _chan_array("cost_per_lead")[None, :] * frac[:, None] * rng.uniform(0.92, 1.08, lam.shape)
    return pd.DataFrame(
        {
            "month": np.repeat(cal.iso(cal.month_start[months]), len(_CHANNELS)),
            "channel": np.tile(_chan_names(), len(months)),
            "amount": np.round(amount.ravel(), 2),
        }
    )


def _quotas_frame(w: _World, rng: np.random.Generator) -> pd.DataFrame:
    """Monthly new-ARR quota per AE: their planned bookings plus a little stretch."""
    cal = w.cal
    last = cal.as_of_month + (2 - (int(cal.cmonth[cal.as_of]) - 1) % 3)  # end of the running quarter
    rows = []
    for r, p in enumerate(_AES):
        joined = cal.start_month + (p.joins_after_months or 0)
        months = np.arange(max(cal.start_month, joined), last + 1)
        quota = np.round(w.rep_plan[r, months] * rng.uniform(1.0, 1.1, len(months)), -3).astype(np.int64)
        rows.append(pd.DataFrame({"owner": p.name, "period": [cal.month_label[m] for m in months], "quota": quota}))
    return pd.concat(rows, ignore_index=True).sort_values(["period", "owner"], kind="stable").reset_index(drop=True)


def _events_frame(w: _World, rng: np.random.Generator, ex: pd.DataFrame) -> pd.DataFrame:
    """Product usage of paying accounts only, as sessions: a user opens the product and uses a few
    features minutes apart (so time in product and journeys can be measured). Usage fades in the
    weeks before an account churns and, when planted, SMB accounts stop using reports a month
    before the SMB churn spike."""
    cal, sch = w.cal, w.schedule
    seg = ex["seg"].to_numpy()
    fade = np.where(ex["at_risk"].to_numpy(), _AT_RISK_USAGE, 1.0)
    rate = _seg_array("events_per_month")[seg] / _EVENTS_PER_SESSION * fade
    item, day = _spread(rng, ex, rate)
    day = _weekday(cal, day, rng.random(len(item)), ex["lo"].to_numpy()[item], ex["hi"].to_numpy()[item])
    cust = ex["cust"].to_numpy()[item]
    lo_users, hi_users = (np.array([s.users[i] for s in _SEGMENTS]) for i in (0, 1))
    users = rng.integers(lo_users[w.customers.seg], hi_users[w.customers.seg] + 1)
    user = (rng.random(len(item)) ** 1.7 * users[cust]).astype(np.int64)  # a few power users
    start = _work_seconds(rng, day)
    # events of each session: the first at its start, the next ones 45 s + ~5 min apart
    size = 1 + rng.poisson(_EVENTS_PER_SESSION - 1, len(item))
    session = np.repeat(np.arange(len(item)), size)
    first = np.repeat(np.cumsum(size) - size, size)
    pos = np.arange(len(session)) - first
    gap = np.where(pos == 0, 0, 45 + np.minimum(rng.exponential(300.0, len(session)), 1_200)).astype(np.int64)
    elapsed = np.cumsum(gap)
    elapsed = elapsed - elapsed[first]
    seconds = np.minimum(start[session] + elapsed, day[session] * 86_400 + 86_399)
    # features: drawn by segment taste, with common paths (dashboards → reports → sharing …)
    weights = np.array([_FEATURE_WEIGHTS[s.name] for s in _SEGMENTS])[w.customers.seg[cust[session]]]
    u = rng.random((2, len(session)))
    feature = _pick(weights, u[0])
    follow = np.array([_FEATURES.index(_NEXT_FEATURE[f]) for f in _FEATURES])
    for k in range(1, int(size.max(initial=1))):
        at = np.flatnonzero((pos == k) & (u[1] < 0.5))
        feature[at] = follow[feature[at - 1]]
    keep = np.ones(len(session), dtype=bool)
    if sch.on:
        planted = ((w.customers.seg[cust[session]] == sch.churn_segment) & (day[session] >= sch.warning_since)
                   & (feature == _FEATURES.index(_ADOPTION_DROP_FEATURE)))
        keep = ~planted | (rng.random(len(session)) >= _ADOPTION_DROP)
    cust_e = cust[session][keep]
    user_ids = np.char.add("U", np.char.zfill((cust_e * 100 + user[session][keep] + 1).astype(str), 8)).astype(object)
    seconds = seconds[keep]
    order = np.argsort(seconds, kind="stable")
    return pd.DataFrame(
        {
            "user_id": user_ids[order],
            "account_id": w.account_ids[cust_e][order],
            "timestamp": cal.iso_seconds(seconds[order]),
            "feature": np.array(_FEATURES, dtype=object)[feature[keep]][order],
        }
    )


def _work_seconds(rng: np.random.Generator, day: np.ndarray) -> np.ndarray:
    hour = np.clip(rng.normal(13.0, 3.0, len(day)), 0, 23.99)
    return day * 86_400 + (hour * 3_600).astype(np.int64)


def _tickets_frame(w: _World, rng: np.random.Generator, ex: pd.DataFrame) -> pd.DataFrame:
    """Support tickets of paying accounts; more before a churn and, when planted, in SMB early."""
    cal, sch = w.cal, w.schedule
    seg = ex["seg"].to_numpy()
    rate = _seg_array("tickets_per_month")[seg] * np.where(ex["at_risk"].to_numpy(), _AT_RISK_TICKETS, 1.0)
    if sch.on:
        rate = rate * np.where((seg == sch.churn_segment) & (ex["lo"].to_numpy() >= sch.warning_since), 1.8, 1.0)
    item, day = _spread(rng, ex, rate)
    cust = ex["cust"].to_numpy()[item]
    s = w.customers.seg[cust]
    opened = _work_seconds(rng, day)
    respond = np.exp(np.log(_seg_array("response_hours")[s]) + 0.8 * rng.standard_normal(len(item)))
    resolve = np.exp(np.log(_seg_array("resolve_hours")[s]) + 0.9 * rng.standard_normal(len(item)))
    first = opened + (respond * 3_600).astype(np.int64) + 60
    resolved = first + (resolve * 3_600).astype(np.int64)
    end = (cal.as_of + 1) * 86_400
    order = np.argsort(opened, kind="stable")
    return pd.DataFrame(
        {
            "ticket_id": _ids("T", len(item), max(6, len(str(len(item))))),
            "account_id": w.account_ids[cust][order],
            "opened_at": cal.iso_seconds(opened[order]),
            "resolved_at": cal.iso_seconds(resolved[order], missing=resolved[order] >= end),
            "first_response_at": cal.iso_seconds(first[order], missing=first[order] >= end),
        }
    )


def _nps_frame(w: _World, rng: np.random.Generator, ex: pd.DataFrame) -> pd.DataFrame:
    """NPS answers (~12 % of paying accounts a month); at-risk accounts answer like detractors."""
    cal, sch = w.cal, w.schedule
    seg = ex["seg"].to_numpy()
    item, day = _spread(rng, ex, np.where(ex["at_risk"].to_numpy(), 0.12 * _AT_RISK_NPS_ANSWERS, 0.12))
    s = seg[item]
    promoters = np.array([x.nps[0] for x in _SEGMENTS])[s]
    passives = np.array([x.nps[1] for x in _SEGMENTS])[s]
    risky = ex["at_risk"].to_numpy()[item]
    if sch.on:
        risky = risky | ((s == sch.churn_segment) & (day >= sch.warning_since) & (rng.random(len(item)) < 0.35))
    promoters = np.where(risky, 0.15, promoters)
    passives = np.where(risky, 0.30, passives)
    u = rng.random((3, len(item)))
    detractor_weights = np.tile([1.0, 1, 2, 3, 5, 7, 9], (len(item), 1))  # most detractors give 5-6
    detractor = _pick(detractor_weights, u[1])
    upper = (u[2] < 0.5).astype(np.int64)
    score = np.where(u[0] < promoters, 9 + upper, np.where(u[0] < promoters + passives, 7 + upper, detractor))
    cust = ex["cust"].to_numpy()[item]
    order = np.lexsort((cust, day))
    return pd.DataFrame(
        {"account_id": w.account_ids[cust][order], "date": cal.iso(day[order]), "score": score[order].astype(np.int64)}
    )


_CONSULTANTS = (("Iris Cole", 0.78), ("Noah Fischer", 0.72), ("Leila Haddad", 0.66), ("Owen Price", 0.58))


def _timesheets_frame(w: _World, rng: np.random.Generator) -> pd.DataFrame:
    """Professional-services time: each consultant logs 8 hours a weekday, part billable to a
    customer that bought services, the rest internal; December is slow."""
    cal, d = w.cal, w.deals
    days = np.arange(cal.start, cal.as_of + 1)
    days = days[cal.weekday[days] < 5]
    base = np.array([u for _, u in _CONSULTANTS])
    share = base[:, None] * np.where(cal.cmonth[days] == 12, 0.7, 1.0)[None, :]
    share = np.clip(share + rng.normal(0.0, 0.12, share.shape), 0.0, 1.0)
    billable = np.round(8 * share * 2) / 2
    who = np.repeat(np.arange(len(_CONSULTANTS)), len(days))
    day = np.tile(days, len(_CONSULTANTS))
    billable = billable.ravel()
    buyers = np.flatnonzero(d.won & (d.services > 0) & (d.close <= cal.as_of))
    client = buyers[rng.integers(0, len(buyers), len(day))] if len(buyers) else np.zeros(len(day), np.int64)
    rows = pd.DataFrame({
        "date": np.r_[day, day], "owner": np.r_[who, who], "hours": np.r_[billable, 8 - billable],
        "billable": np.r_[np.full(len(day), "yes"), np.full(len(day), "no")].astype(object),
        "account_id": np.r_[w.account_ids[d.account[client]], np.full(len(day), None)],
        "project": np.r_[np.full(len(day), "Implementation"), np.full(len(day), "Internal")].astype(object),
    })
    rows = rows[rows["hours"] > 0].sort_values(["date", "owner", "billable"], kind="stable", ascending=[True, True, False])
    names = np.array([n for n, _ in _CONSULTANTS], dtype=object)
    return pd.DataFrame({
        "entry_id": _ids("TS", len(rows), 6),
        "date": cal.iso(rows["date"].to_numpy()),
        "owner": names[rows["owner"].to_numpy()],
        "hours": rows["hours"].to_numpy(),
        "billable": rows["billable"].to_numpy(),
        "account_id": rows["account_id"].to_numpy(),
        "project": rows["project"].to_numpy(),
    })


# --------------------------------------------------------------------------------------------
# Public API.


def generate(
    seed: int = 7,
    scale: float = 1.0,
    *,
    start: date = DEFAULT_START,
    as_of: date = DEFAULT_AS_OF,
    tables: Iterable[str] | None = None,
    plant_problems: bool = True,
) -> DemoData:
    """A demo data set: canonical tables (the ten of TABLES, or the ones named, which may include
    the optional EXTRA_TABLES), the planted problems and the plan.

    `plant_problems=False` gives the business as planned (useful to check that the plan is the
    expectation of the data, and as a control in tests).
    """
    wanted = list(TABLES) if tables is None else list(dict.fromkeys(tables))
    unknown = [t for t in wanted if t not in TABLES + EXTRA_TABLES]
    if unknown:
        raise ValueError(f"unknown demo table(s) {unknown} (known: {', '.join(TABLES + EXTRA_TABLES)})")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale!r} (e.g. 1 or 0.2)")
    if (as_of - start).days < 183:
        raise ValueError(
            f"as_of {as_of} must be at least six months after start {start} (e.g. start 2024-10-01, "
            "as_of 2026-11-20), so the planted problems have a history to stand out from"
        )
    cal = _Calendar.build(start, as_of)
    schedule, problems = _problems(cal, as_of, plant_problems)
    plan_to = cal.month_index(f"{as_of.year}-12")
    plan, plan_by_segment, rep_plan = _plan(cal, scale, plan_to)
    world = _simulate(seed, scale, cal, schedule, rep_plan)

    def rng(name: str) -> np.random.Generator:
        return np.random.default_rng([seed, _STREAM[name]])

    out: dict[str, pd.DataFrame] = {}
    lead_idx = _lead_rows(world)
    lead_owner = _lead_owner(world, rng("leads"), lead_idx) if {"leads", "activities"} & set(wanted) else None
    ex = _exposures(world) if {"activities", "events", "tickets", "nps"} & set(wanted) else None
    for name in TABLES + EXTRA_TABLES:
        if name not in wanted:
            continue
        if name == "accounts":
            out[name] = _accounts_frame(world, rng(name))
        elif name == "deals":
            out[name] = _deals_frame(world)
        elif name == "subscriptions":
            out[name] = _subscriptions_frame(world)
        elif name == "leads":
            out[name] = _leads_frame(world, lead_idx, lead_owner)
        elif name == "activities":
            out[name] = _activities_frame(world, rng(name), lead_idx, lead_owner, ex)
        elif name == "spend":
            out[name] = _spend_frame(world, rng(name))
        elif name == "quotas":
            out[name] = _quotas_frame(world, rng(name))
        elif name == "tickets":
            out[name] = _tickets_frame(world, rng(name), ex)
        elif name == "events":
            out[name] = _events_frame(world, rng(name), ex)
        elif name == "nps":
            out[name] = _nps_frame(world, rng(name), ex)
        elif name == "timesheets":
            out[name] = _timesheets_frame(world, rng(name))
        else:  # pragma: no cover - TABLES and this switch must list the same names
            raise AssertionError(f"no builder for table {name!r}")
    reps = {
        "ae": {p.name: p.segment for p in _AES},
        "sdr": [p.name for p in _SDRS],
        "csm": [p.name for p in _CSMS],
        "joined": {
            p.name: cal.month_label[cal.start_month + p.joins_after_months]
            for p in _PEOPLE
            if p.joins_after_months is not None
        },
    }
    notes = {
        "subscriptions": "an expansion or contraction ends the current row and starts a new row "
        "with the new mrr on the same date; churn ends the row; reactivation starts a new row later",
        "history": f"customers won before {start.isoformat()} start on that date (initial base); "
        "deals still open on it are imported with created_date on it",
        "owners": "AEs own new deals, CSMs own renewal and expansion deals, SDRs own leads",
        "renewals": "Mid-Market and Enterprise customers sign annual contracts and churn or contract "
        "at renewal; SMB customers pay monthly and churn any month",
    }
    return DemoData(
        out,
        problems,
        as_of,
        seed=seed,
        scale=scale,
        start=start,
        plan=plan,
        plan_by_segment=plan_by_segment,
        reps=reps,
        notes=notes,
    )


def write_demo(data: DemoData, out_dir: Path, *, compress: bool = False) -> list[Path]:
    """Writes <table>.csv (or .csv.gz when compress) per table plus scenario.json; returns paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in data.tables.items():
        path = out_dir / (f"{name}.csv.gz" if compress else f"{name}.csv")
        # mtime 0 keeps gzip output byte-identical between runs
        compression = {"method": "gzip", "mtime": 0} if compress else None
        frame.to_csv(path, index=False, compression=compression)
        paths.append(path)
    scenario = out_dir / "scenario.json"
    scenario.write_text(json.dumps(data.scenario(), indent=2) + "\n", encoding="utf-8")
    paths.append(scenario)
    return paths
