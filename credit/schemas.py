"""Wire types of the credit core (msgspec Structs; inputs forbid unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from core.identifiers import IdNumber
from core.pagination import Page

PublicId = Annotated[str, Meta(min_length=1, max_length=40)]
Reason = Annotated[str, Meta(max_length=500)]
ScopeName = Literal["tier", "score_band", "score", "dimensions", "reasons", "portrait"]


class PersonSubject(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", tag="person"):
    id_number: IdNumber
    name: Annotated[str, Meta(min_length=1, max_length=64)]


class EnterpriseSubject(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", tag="enterprise"):
    uscc: Annotated[str, Meta(min_length=18, max_length=18)]


class AuthorizationRequest(msgspec.Struct, forbid_unknown_fields=True):
    subject: PersonSubject | EnterpriseSubject
    purpose: Annotated[str, Meta(min_length=1, max_length=40)]
    scopes: Annotated[list[ScopeName], Meta(min_length=1, max_length=6)]
    validity_days: Annotated[int, Meta(ge=1, le=3650)]


class PartnerAuthorization(msgspec.Struct, omit_defaults=True):
    """What the partner sees: never the subject's identity, only a partner-scoped open id once authorized."""

    id: str
    status: str
    subject_kind: str
    purpose: str
    scopes: list[str]
    daily_cap: int
    created_at: datetime
    request_expires_at: datetime
    valid_until: datetime | None = None
    decided_at: datetime | None = None
    ended_at: datetime | None = None
    ended_reason: str | None = None
    open_id: str | None = None


class PurposeOut(msgspec.Struct):
    """A purpose of the catalog (`GET /v1/purposes`): what an authorization for it may grant."""

    code: str
    name: str
    subject_kind: str
    allowed_scopes: list[str]
    max_validity_days: int
    daily_cap: int


class PartnerInfo(msgspec.Struct):
    client_id: str
    name: str
    kind: str


class PurposeInfo(msgspec.Struct):
    code: str
    name: str


class ScopeInfo(msgspec.Struct):
    code: str
    description: str


class CitizenAuthorization(msgspec.Struct, omit_defaults=True):
    id: str
    status: str
    partner: PartnerInfo
    purpose: PurposeInfo
    scopes: list[ScopeInfo]
    daily_cap: int
    validity_days: int
    created_at: datetime
    request_expires_at: datetime
    valid_until: datetime | None = None
    decided_at: datetime | None = None
    ended_at: datetime | None = None
    ended_reason: str | None = None


class CitizenAuthorizationPage(Page[CitizenAuthorization]):
    pass


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason | None = None


class ApprovedAuthorization(msgspec.Struct):
    authorization: CitizenAuthorization
    consent_receipt: str  # compact JWS (EdDSA), verifiable with /.well-known/jwks.json


class ScoreQuery(msgspec.Struct, forbid_unknown_fields=True):
    # Optional with a token from the authorization code grant, which is bound to its authorization.
    authorization_id: PublicId | None = None
    purpose: Annotated[str, Meta(max_length=40)] | None = None


class ReasonOut(msgspec.Struct):
    code: str
    text: str
    impact: int


class ScoreQueryAnswer(msgspec.Struct, omit_defaults=True):
    authorization_id: str
    open_id: str
    as_of: str
    ledger_seq: int
    tier: str | None = None
    score_band: str | None = None
    score: int | None = None
    dimensions: dict[str, int] | None = None
    reasons: list[ReasonOut] | None = None


class ScoreCheck(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Optional with a token from the authorization code grant, which is bound to its authorization.
    authorization_id: PublicId | None = None
    threshold: Annotated[int, Meta(ge=0, le=1000)]
    transaction_id: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    purpose: Annotated[str, Meta(max_length=40)] | None = None


class ScoreCheckAnswer(msgspec.Struct):
    transaction_id: str
    authorization_id: str
    admitted: bool
    checked_at: str
    ledger_seq: int


class DimensionOut(msgspec.Struct):
    code: str
    name: str
    score: int
    max: int


class MyReason(msgspec.Struct):
    code: str
    text: str
    dimension: str
    impact: int
    records: int


class MyScore(msgspec.Struct):
    total: int
    tier: str
    score_band: str
    dimensions: list[DimensionOut]
    reasons: list[MyReason]
    objected_records: int
    as_of: datetime
    model_version: str


class ScorePoint(msgspec.Struct):
    total: int
    tier: str
    trigger: str
    as_of: datetime


class ScoreHistoryPage(Page[ScorePoint]):
    pass


class RecordOut(msgspec.Struct, omit_defaults=True):
    id: str
    category: str
    category_name: str
    polarity: int
    severity: str
    dimension: str
    title: str
    source: str
    occurred_at: datetime
    status: str
    counts_towards_score: bool
    display_until: datetime | None = None
    repairable_from: datetime | None = None


class RecordPage(Page[RecordOut]):
    pass


class AccessLogEntry(msgspec.Struct, omit_defaults=True):
    seq: int
    at: datetime
    actor_name: str
    actor_type: str
    action: str
    outcome: str
    fields: list[str]
    hash: str
    purpose: str | None = None
    authorization_id: str | None = None


class AccessLogPage(Page[AccessLogEntry]):
    pass


class Checkpoint(msgspec.Struct):
    seq: int
    hash: str
    signature: str
    created_at: datetime


# ---------------------------------------------------------------- objections (异议) and credit repair (信用修复)

# Free text from citizens and officers: at least one non-blank character.
LongText = Annotated[str, Meta(min_length=1, max_length=2000, pattern=r"\S")]
SeverityName = Literal["minor", "general", "serious"]


class ObjectionCreate(msgspec.Struct, forbid_unknown_fields=True):
    record_id: PublicId
    reason: LongText


class RecordCorrection(msgspec.Struct, forbid_unknown_fields=True):
    """What an upheld objection corrects; the record then stays active with these values."""

    severity: SeverityName | None = None
    title: Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")] | None = None


class ObjectionDecision(msgspec.Struct, forbid_unknown_fields=True):
    """upheld → the record is withdrawn (or corrected, with `correction`); rejected → it is restored."""

    outcome: Literal["upheld", "rejected"]
    note: LongText
    correction: RecordCorrection | None = None


class RecordBrief(msgspec.Struct):
    """The record an objection or repair is about, as it is now."""

    id: str
    category: str
    category_name: str
    polarity: int
    severity: str
    title: str
    source: str
    occurred_at: datetime
    status: str


class MyObjection(msgspec.Struct, omit_defaults=True):
    id: str
    record_id: str
    status: str
    reason: str
    due_at: datetime
    created_at: datetime
    record: RecordBrief
    decided_at: datetime | None = None
    decision_note: str | None = None


class MyObjectionPage(Page[MyObjection]):
    pass


class AdminObjection(msgspec.Struct, omit_defaults=True):
    id: str
    record_id: str
    person_id: str
    status: str
    overdue: bool
    reason: str
    due_at: datetime
    created_at: datetime
    record_status_before: str
    record: RecordBrief
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_note: str | None = None


class AdminObjectionPage(Page[AdminObjection]):
    pass


class RepairCreate(msgspec.Struct, forbid_unknown_fields=True):
    record_id: PublicId
    statement: LongText


class RepairDecision(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Literal["approved", "rejected"]
    note: LongText


class MyRepair(msgspec.Struct, omit_defaults=True):
    id: str
    record_id: str
    status: str
    statement: str
    created_at: datetime
    record: RecordBrief
    decided_at: datetime | None = None
    decision_note: str | None = None


class MyRepairPage(Page[MyRepair]):
    pass


class AdminRepair(msgspec.Struct, omit_defaults=True):
    id: str
    record_id: str
    person_id: str
    status: str
    statement: str
    created_at: datetime
    record: RecordBrief
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_note: str | None = None


class AdminRepairPage(Page[AdminRepair]):
    pass


# ---------------------------------------------------------------- the subject's data export

IsoDate = Annotated[str, Meta(extra_json_schema={"format": "date"})]


class ExportProfile(msgspec.Struct, omit_defaults=True):
    """The registry entry, unmasked: only the subject ever receives it."""

    person_id: str
    name: str
    id_number: str
    gender: str
    birth_date: IsoDate
    region_code: str
    registry_phone: str | None = None


class ExportAccount(msgspec.Struct, omit_defaults=True):
    account_id: str
    phone: str
    bound_at: datetime | None = None


class ExportRecords(msgspec.Struct):
    items: list[RecordOut]
    truncated: bool


class ExportScoreHistory(msgspec.Struct):
    items: list[ScorePoint]
    truncated: bool


class ExportAuthorizations(msgspec.Struct):
    items: list[CitizenAuthorization]
    truncated: bool


class ExportAccessLog(msgspec.Struct):
    items: list[AccessLogEntry]
    truncated: bool


class ExportObjections(msgspec.Struct):
    items: list[MyObjection]
    truncated: bool


class ExportRepairs(msgspec.Struct):
    items: list[MyRepair]
    truncated: bool


class PersonalDataExport(msgspec.Struct):
    """Everything held about the subject. Each list holds at most `section_limit` items, newest first;
    `truncated` says a section had more."""

    format: str
    exported_at: datetime
    section_limit: int
    profile: ExportProfile
    account: ExportAccount
    score: MyScore
    score_history: ExportScoreHistory
    records: ExportRecords
    authorizations: ExportAuthorizations
    access_log: ExportAccessLog
    objections: ExportObjections
    repairs: ExportRepairs
