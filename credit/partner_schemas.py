"""Wire types of the partner adapters on the credit core: data-source ingest, credit checks (联合奖惩核查),
the operators' list and measure catalogs, and the daily policy statistics.

Inputs forbid unknown fields and carry their constraints in `Meta`; outputs never carry an id number,
phone or internal id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from core.identifiers import IdNumber
from core.pagination import Page
from credit.schemas import EnterpriseSubject, PersonSubject

Code = Annotated[str, Meta(min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
Note = Annotated[str, Meta(min_length=1, max_length=500)]
SeverityName = Literal["minor", "general", "serious"]

# ---------------------------------------------------------------- ingest (POST /v1/records/batch)


class IngestPersonSubject(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", tag="person"):
    id_number: IdNumber
    name: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class IngestEnterpriseSubject(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", tag="enterprise"):
    uscc: Annotated[str, Meta(min_length=18, max_length=18)]


class IngestRow(msgspec.Struct, forbid_unknown_fields=True):
    """One credit record as a data source sends it (one array element, or one NDJSON line).

    There is deliberately no `source` field: the source is always the calling partner.
    """

    # The source's own reference (e.g. a court case number); unique per source. No control characters.
    source_ref: Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
    subject: IngestPersonSubject | IngestEnterpriseSubject
    category: Annotated[str, Meta(min_length=1, max_length=40)]
    title: Annotated[str, Meta(min_length=1, max_length=200)]
    occurred_at: datetime  # ISO 8601 with a timezone; checked by the service so it can say why
    severity: SeverityName | None = None  # default: the category's usual severity
    status: Literal["active", "withdrawn"] = "active"


class RowRejection(msgspec.Struct, omit_defaults=True):
    """Why one row was not taken. `line` is the 1-based array index (JSON) or line number (NDJSON)."""

    line: int
    code: str
    reason: str
    source_ref: str | None = None


class IngestSummary(msgspec.Struct):
    accepted: int
    updated: int
    duplicate: int
    rejected: int


class IngestAnswer(msgspec.Struct):
    summary: IngestSummary
    rejected_rows: list[RowRejection]
    rescored_persons: int


# ---------------------------------------------------------------- credit checks (联合奖惩核查)


class CreditCheckRequest(msgspec.Struct, forbid_unknown_fields=True):
    subject: PersonSubject | EnterpriseSubject
    business_type: Code


class ListMembership(msgspec.Struct):
    list_kind: str  # red | black
    list_code: str
    list_name: str
    listed_at: datetime


class MeasureOut(msgspec.Struct):
    code: str
    name: str
    kind: str  # reward | punishment
    mandatory: bool
    basis: str


class CreditCheckAnswer(msgspec.Struct):
    """The same shape whether or not the subject is in the registry: a subject we do not know is simply
    not listed (`listed: false`)."""

    id: str
    subject_kind: str
    business_type: str
    listed: bool
    lists: list[ListMembership]
    measures: list[MeasureOut]
    checked_at: datetime


class CheckFeedback(msgspec.Struct, forbid_unknown_fields=True):
    measure_code: Code
    note: Note | None = None


class CheckFeedbackAnswer(msgspec.Struct, omit_defaults=True):
    id: str
    measure_code: str
    feedback_at: datetime
    note: str | None = None


class BusinessTypeOut(msgspec.Struct):
    code: str
    name: str


# ---------------------------------------------------------------- operator catalogs: measures and lists


class MeasureCreate(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    kind: Literal["reward", "punishment"]
    list_code: Code
    mandatory: bool = False
    business_types: Annotated[list[Code], Meta(max_length=20)] = msgspec.field(default_factory=list)
    basis: Annotated[str, Meta(max_length=1000)] = ""


class MeasurePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Fields to change; omitted fields stay. `kind` and `list_code` are fixed: retire and create anew."""

    name: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    mandatory: bool | None = None
    business_types: Annotated[list[Code], Meta(max_length=20)] | None = None
    basis: Annotated[str, Meta(max_length=1000)] | None = None
    status: Literal["active", "retired"] | None = None


class AdminMeasure(msgspec.Struct):
    code: str
    name: str
    kind: str
    mandatory: bool
    list_code: str
    list_name: str
    business_types: list[str]  # empty: every business type
    basis: str
    status: str
    created_at: datetime


class ListCreate(msgspec.Struct, forbid_unknown_fields=True):
    list_code: Code
    subject: PersonSubject | EnterpriseSubject
    reason: Note


class Delisting(msgspec.Struct, forbid_unknown_fields=True):
    reason: Note | None = None


class AdminListEntry(msgspec.Struct, omit_defaults=True):
    """A list membership as operators see it: the subject by public id and (for persons) masked name."""

    id: str
    list_kind: str
    list_code: str
    list_name: str
    subject_kind: str
    subject_id: str
    subject_name: str
    reason: str
    source: str
    listed_at: datetime
    delisted_at: datetime | None = None


class AdminListEntryPage(Page[AdminListEntry]):
    pass


# ---------------------------------------------------------------- statistics


class StatsTargets(msgspec.Struct):
    score_queries_per_day: int
    credit_checks_per_year: int


class Rate(msgspec.Struct):
    """A rate and what it is made of; `value` is null, with the reason in `unavailable`, when it cannot be
    computed (e.g. nothing to divide by), never 0."""

    value: float | None
    numerator: int | None
    denominator: int | None
    unavailable: str | None  # no_check_returned_a_measure | no_repair_requested | no_record_ingested |
    #                          calendar_year_unknown | not_counted


class DayStats(msgspec.Struct):
    day: date
    score_queries: int
    score_queries_vs_target: float
    credit_checks: int
    authorizations_granted: int
    authorizations_active: int
    authorized_citizens: int
    redemptions: int | None  # null: not counted (no contributor wired)
    credit_orders: int | None
    demands: int | None
    approvals: int | None
    checks_with_measures: int  # credit checks answered with at least one measure
    measures_applied: int  # feedback given that day (the department applied a returned measure)
    repairs_requested: int
    repairs_approved: int
    records_ingested: int
    records_timely: int | None  # ingested within 7 working days of their decision date; null: calendar unknown
    feedback_rate: Rate  # 联合奖惩 feedback: measures_applied / checks_with_measures
    repair_rate: Rate  # repairs_approved / repairs_requested
    timeliness_rate: Rate  # 双公示-style: records_timely / records_ingested
    refreshed_at: datetime | None


class StatsTotals(msgspec.Struct):
    score_queries: int
    credit_checks: int
    authorizations_granted: int
    score_queries_per_day_vs_target: float
    credit_checks_annualized_vs_target: float
    redemptions: int | None
    credit_orders: int | None
    demands: int | None
    approvals: int | None
    feedback_rate: Rate
    repair_rate: Rate
    timeliness_rate: Rate


class DailyStatsReport(msgspec.Struct):
    from_: date = msgspec.field(name="from")
    to: date
    timezone: str  # days are calendar days in the city's time zone
    targets: StatsTargets
    days: list[DayStats]
    totals: StatsTotals
