"""The canonical tables every input is mapped onto, with their types and drill dimensions.

Everything downstream (metrics, explanations, charts) is written against these names only, so
a new data source is a mapping problem, never a metrics problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ColumnType(StrEnum):
    ID = "id"  # text key, kept verbatim
    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    MONEY = "money"
    NUMBER = "number"
    INTEGER = "integer"

    @property
    def sql_type(self) -> str:
        return {
            ColumnType.ID: "VARCHAR",
            ColumnType.TEXT: "VARCHAR",
            ColumnType.DATE: "DATE",
            ColumnType.TIMESTAMP: "TIMESTAMP",
            ColumnType.MONEY: "DOUBLE",
            ColumnType.NUMBER: "DOUBLE",
            ColumnType.INTEGER: "BIGINT",
        }[self]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    # Allowed values after normalisation (lower-cased); None means free text.
    allowed: tuple[str, ...] | None = None
    non_negative: bool = False


@dataclass(frozen=True)
class Table:
    """A canonical table: its columns, its key, and which columns a node may be split by."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    date_column: str | None = None

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


T = ColumnType
DEAL_STATUSES = ("open", "won", "lost")
DEAL_TYPES = ("new", "expansion", "renewal")
ACTIVITY_TYPES = ("call", "email", "meeting", "demo", "proposal", "health_check")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "deals",
            (
                Column("deal_id", T.ID, required=True),
                Column("account_id", T.ID),
                Column("owner", T.TEXT),
                Column("created_date", T.DATE, required=True),
                Column("close_date", T.DATE),
                Column("stage", T.TEXT),
                Column("status", T.TEXT, required=True, allowed=DEAL_STATUSES),
                # Not required: a funnel export without amounts still gives counts and rates.
                Column("amount", T.MONEY, non_negative=True),
                Column("deal_type", T.TEXT, allowed=DEAL_TYPES),
                Column("segment", T.TEXT),
                Column("channel", T.TEXT),
                Column("services_amount", T.MONEY, non_negative=True),
            ),
            key=("deal_id",),
            dimensions=("owner", "segment", "channel", "deal_type"),
            date_column="close_date",
        ),
        Table(
            "subscriptions",
            (
                Column("customer_id", T.ID, required=True),
                Column("start_date", T.DATE, required=True),
                Column("end_date", T.DATE),
                Column("mrr", T.MONEY, required=True, non_negative=True),
                Column("plan", T.TEXT),
                Column("segment", T.TEXT),
                Column("channel", T.TEXT),
            ),
            dimensions=("segment", "channel", "plan"),
            date_column="start_date",
        ),
        Table(
            "leads",
            (
                Column("lead_id", T.ID, required=True),
                Column("created_date", T.DATE, required=True),
                Column("channel", T.TEXT),
                Column("owner", T.TEXT),
                Column("segment", T.TEXT),
                Column("mql_date", T.DATE),
                Column("sql_date", T.DATE),
                Column("deal_id", T.ID),
            ),
            key=("lead_id",),
            dimensions=("channel", "owner", "segment"),
            date_column="created_date",
        ),
        Table(
            "activities",
            (
                Column("activity_id", T.ID, required=True),
                Column("date", T.DATE, required=True),
                Column("owner", T.TEXT),
                Column("type", T.TEXT, allowed=ACTIVITY_TYPES),
                Column("account_id", T.ID),
            ),
            key=("activity_id",),
            dimensions=("owner", "type"),
            date_column="date",
        ),
        Table(
            "spend",
            (
                Column("month", T.DATE, required=True),
                Column("channel", T.TEXT, required=True),
                Column("amount", T.MONEY, required=True, non_negative=True),
            ),
            dimensions=("channel",),
            date_column="month",
        ),
        Table(
            "quotas",
            (
                Column("owner", T.TEXT, required=True),
                Column("period", T.TEXT, required=True),
                Column("quota", T.MONEY, required=True, non_negative=True),
            ),
            dimensions=("owner",),
        ),
        Table(
            "tickets",
            (
                Column("ticket_id", T.ID, required=True),
                Column("account_id", T.ID),
                Column("opened_at", T.TIMESTAMP, required=True),
                Column("resolved_at", T.TIMESTAMP),
                Column("first_response_at", T.TIMESTAMP),
            ),
            key=("ticket_id",),
            date_column="opened_at",
        ),
        Table(
            "events",
            (
                Column("user_id", T.ID, required=True),
                Column("account_id", T.ID),
                Column("timestamp", T.TIMESTAMP, required=True),
                Column("feature", T.TEXT),
            ),
            dimensions=("feature",),
            date_column="timestamp",
        ),
        Table(
            "nps",
            (
                Column("account_id", T.ID),
                Column("date", T.DATE, required=True),
                Column("score", T.INTEGER, required=True),
            ),
            date_column="date",
        ),
        Table(
            "accounts",
            (
                Column("account_id", T.ID, required=True),
                Column("name", T.TEXT),
                Column("segment", T.TEXT),
                Column("industry", T.TEXT),
                Column("csm", T.TEXT),
                Column("created_date", T.DATE),
            ),
            key=("account_id",),
            dimensions=("segment", "industry", "csm"),
            date_column="created_date",
        ),
        Table(
            # Optional time tracking of the professional-services team (PS utilization): one row per
            # entry, billable or not (yes/no, true/false, 1/0); all available time is logged.
            "timesheets",
            (
                Column("entry_id", T.ID),
                Column("date", T.DATE, required=True),
                Column("owner", T.TEXT, required=True),
                Column("hours", T.NUMBER, required=True, non_negative=True),
                Column("billable", T.TEXT),
                Column("account_id", T.ID),
                Column("project", T.TEXT),
            ),
            dimensions=("owner", "project"),
            date_column="date",
        ),
    )
}


def table(name: str) -> Table:
    """The canonical table of that name, or a KeyError listing the valid names."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r} (known: {', '.join(TABLES)})") from None
