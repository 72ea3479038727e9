"""Wire types of the credit core (msgspec Structs; inputs forbid unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

PublicId = Annotated[str, Meta(min_length=1, max_length=40)]
Reason = Annotated[str, Meta(max_length=500)]
ScopeName = Literal["tier", "score_band", "score", "dimensions", "reasons", "portrait"]


class PersonSubject(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", tag="person"):
    id_number: Annotated[str, Meta(min_length=15, max_length=18)]
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


class CitizenAuthorizationPage(msgspec.Struct):
    items: list[CitizenAuthorization]
    next_cursor: str | None


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason | None = None


class ApprovedAuthorization(msgspec.Struct):
    authorization: CitizenAuthorization
    consent_receipt: str  # compact JWS (EdDSA), verifiable with /.well-known/jwks.json


class ScoreQuery(msgspec.Struct, forbid_unknown_fields=True):
    authorization_id: PublicId
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


class ScoreCheck(msgspec.Struct, forbid_unknown_fields=True):
    authorization_id: PublicId
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


class ScoreHistoryPage(msgspec.Struct):
    items: list[ScorePoint]
    next_cursor: str | None


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


class RecordPage(msgspec.Struct):
    items: list[RecordOut]
    next_cursor: str | None


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


class AccessLogPage(msgspec.Struct):
    items: list[AccessLogEntry]
    next_cursor: str | None


class Checkpoint(msgspec.Struct):
    seq: int
    hash: str
    signature: str
    created_at: datetime
