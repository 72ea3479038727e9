"""Wire types for enterprise binding, members and portraits (members' and banks' views)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from core.identifiers import IdNumber
from core.pagination import Page

Uscc = Annotated[str, Meta(min_length=18, max_length=18, description="统一社会信用代码 (GB 32100-2015)")]
PersonName = Annotated[str, Meta(min_length=1, max_length=64)]


class EnterpriseBind(msgspec.Struct, forbid_unknown_fields=True):
    uscc: Uscc


class EnterpriseOut(msgspec.Struct):
    id: str
    uscc: str  # in full: members act for the enterprise
    name: str
    industry: str  # GB/T 4754 section letter
    region_code: str
    registered_on: date
    role: str  # owner | operator
    member_since: datetime


class EnterpriseList(msgspec.Struct):
    items: list[EnterpriseOut]


class MemberAdd(msgspec.Struct, forbid_unknown_fields=True):
    name: PersonName
    id_number: IdNumber


class MemberOut(msgspec.Struct, omit_defaults=True):
    id: str
    name: str  # masked
    role: str
    status: str
    added_at: datetime
    is_me: bool = False
    removed_at: datetime | None = None


class MemberList(msgspec.Struct):
    items: list[MemberOut]


class PortraitDimension(msgspec.Struct):
    code: str
    name: str
    score: int
    max: int
    explanation: str
    facts: dict[str, Any]


class RiskFlag(msgspec.Struct):
    code: str
    text: str


class PortraitSource(msgspec.Struct):
    source: str
    records: int
    categories: list[str]
    last_received_at: datetime
    age_days: int


class PortraitFacts(msgspec.Struct):
    """The inputs matching and banks read most: registry facts and counts of open negatives."""

    industry: str
    region_code: str
    years_in_business: float
    registered_capital_fen: int
    open_penalties: int
    serious_penalties: int
    tax_grade: str | None
    dishonest_executee: bool
    open_court_judgments: int
    social_insurance_months: int
    specialized: bool
    high_tech: bool
    patents: int


class PortraitOut(msgspec.Struct):
    id: str
    version: int
    score: int  # 0–100
    grade: str  # A | B | C | D
    dimensions: list[PortraitDimension]
    tags: list[str]
    risk_flags: list[RiskFlag]
    sources: list[PortraitSource]
    facts: PortraitFacts
    digest: str  # SHA-256 of the canonical JSON of the content
    as_of: datetime
    model_version: str


class PortraitVersion(msgspec.Struct):
    id: str
    version: int
    score: int
    grade: str
    digest: str
    as_of: datetime


class PortraitVersionPage(Page[PortraitVersion]):
    pass


class EnterpriseInfo(msgspec.Struct):
    id: str
    name: str
    uscc: str


class BankPortraitAnswer(msgspec.Struct):
    """`GET /v1/portraits/{uscc}` as JSON; with `Accept: application/jose` the same JSON, as a compact JWE."""

    authorization_id: str
    enterprise: EnterpriseInfo
    portrait: PortraitOut
    ledger_seq: int
