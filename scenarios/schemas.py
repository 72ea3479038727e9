"""Wire types of 信易+ benefits: the public catalog, the operators' admin catalog, the citizen's benefits,
codes and redemptions, and the merchant's verification and redemption.

Inputs forbid unknown fields and carry their constraints in `Meta`. What a merchant receives never carries
a score, tier, id number, phone or internal id: only which benefits apply, with a masked name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from core.pagination import Page

ScenarioCode = Annotated[str, Meta(min_length=2, max_length=16, pattern=r"^[a-z][a-z0-9_]{1,15}$")]
# No control characters in names (none in descriptions but tab and line breaks): PostgreSQL refuses a NUL
# byte outright, and nothing an operator types for citizens to read needs the others.
Name = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
ScenarioName = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f\x7f]+$")]
Description = Annotated[str, Meta(max_length=1000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
Kind = Literal["percent_discount", "fixed_discount", "deposit_waiver", "pay_later_limit", "extra_quota"]
Period = Literal["day", "week", "month", "year", "once"]
Tier = Literal["AAA", "AA", "A", "B", "C"]
BenefitStatus = Literal["active", "paused", "retired"]
ScenarioStatus = Literal["active", "paused"]
Value = Annotated[int, Meta(ge=1, le=100_000_000)]
MinScore = Annotated[int, Meta(ge=0, le=1000)]
Quota = Annotated[int, Meta(ge=0, le=10_000)]
# Participating merchants are stored space-separated: a client id has no whitespace or control characters.
ClientId = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[^\x00-\x20\x7f]+$")]
PublicId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
# Codes are shown as 16 characters and may be typed with spaces or dashes.
CodeText = Annotated[str, Meta(min_length=4, max_length=40, pattern=r"^[0-9A-Za-z -]+$")]
OrderRef = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]

# ---------------------------------------------------------------- public catalog (GET /v1/scenarios)


class CatalogBenefit(msgspec.Struct):
    """A benefit's rule as anyone may read it. `value`: percent off, fen, or extra items by `kind`."""

    id: str
    name: str
    description: str
    kind: str
    value: int
    min_tier: str | None
    min_score: int | None
    quota_per_period: int  # 0 = unlimited
    period: str
    merchants: list[str]  # names of participating merchants; empty = every merchant of the scenario
    valid_from: datetime
    valid_until: datetime | None


class CatalogScenario(msgspec.Struct):
    code: str
    name: str
    description: str
    benefits: list[CatalogBenefit]


# ---------------------------------------------------------------- operators (/v1/admin/scenarios, /benefits)


class ScenarioCreate(msgspec.Struct, forbid_unknown_fields=True):
    code: ScenarioCode
    name: ScenarioName
    description: Description = ""
    status: ScenarioStatus = "active"
    sort_order: Annotated[int, Meta(ge=0, le=32_000)] = 0


class ScenarioPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: ScenarioName | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    status: ScenarioStatus | UnsetType = UNSET
    sort_order: Annotated[int, Meta(ge=0, le=32_000)] | UnsetType = UNSET


class AdminScenario(msgspec.Struct):
    code: str
    name: str
    description: str
    status: str
    sort_order: int
    created_at: datetime
    updated_at: datetime


class BenefitCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new benefit. `valid_from` defaults to now; `merchants` empty = every merchant of the scenario."""

    scenario: ScenarioCode
    name: Name
    kind: Kind
    value: Value
    description: Description = ""
    min_tier: Tier | None = None
    min_score: MinScore | None = None
    quota_per_period: Quota = 0
    period: Period = "day"
    merchants: Annotated[list[ClientId], Meta(max_length=200)] = []
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    status: BenefitStatus = "active"


class BenefitPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change; send `null` to clear min_tier, min_score or valid_until."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    value: Value | UnsetType = UNSET
    min_tier: Tier | UnsetType | None = UNSET
    min_score: MinScore | UnsetType | None = UNSET
    quota_per_period: Quota | UnsetType = UNSET
    period: Period | UnsetType = UNSET
    merchants: Annotated[list[ClientId], Meta(max_length=200)] | UnsetType = UNSET
    valid_from: datetime | UnsetType = UNSET
    valid_until: datetime | UnsetType | None = UNSET
    status: BenefitStatus | UnsetType = UNSET


class AdminBenefit(msgspec.Struct):
    id: str
    scenario: str
    name: str
    description: str
    kind: str
    value: int
    min_tier: str | None
    min_score: int | None
    quota_per_period: int
    period: str
    merchants: list[str]  # participating merchant client ids; empty = every merchant of the scenario
    valid_from: datetime
    valid_until: datetime | None
    status: str
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------- citizens (/v1/me/benefits, benefit-codes)


class MyBenefit(msgspec.Struct):
    """One active benefit and whether it applies to me now; if not, why (`reason_code` and Chinese text)."""

    id: str
    scenario: str
    scenario_name: str
    name: str
    description: str
    kind: str
    value: int
    period: str
    quota_per_period: int  # 0 = unlimited
    remaining_quota: int | None  # this period; null when unlimited
    applies: bool
    reason_code: str | None  # tier_too_low | score_too_low | quota_used | not_yet_valid | expired
    reason: str | None  # e.g. 需要AA级，您目前是A级
    merchants: list[str]  # names of participating merchants; empty = every merchant of the scenario
    valid_until: datetime | None


class MyBenefits(msgspec.Struct):
    as_of: datetime
    items: list[MyBenefit]


class BenefitCodeRequest(msgspec.Struct, forbid_unknown_fields=True):
    scenario: ScenarioCode | None = None  # bind the code to one scenario (optional)


class BenefitCodeOut(msgspec.Struct, omit_defaults=True):
    """A single-use code to show as a QR; valid until `expires_at` (at most 60 s)."""

    code: str
    expires_at: datetime
    ttl_seconds: int
    scenario: str | None = None
    qr_svg: str | None = None  # the code as an inline SVG QR image


class MyRedemption(msgspec.Struct):
    id: str
    benefit_id: str
    benefit_name: str
    kind: str
    value: int
    scenario: str
    merchant_name: str
    order_ref: str | None
    status: str  # redeemed | cancelled
    redeemed_at: datetime
    cancelled_at: datetime | None


class MyRedemptionPage(Page[MyRedemption]):
    pass


# ---------------------------------------------------------------- merchants (/v1/benefits/...)


class VerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    code: CodeText
    scenario: ScenarioCode


class ApplicableBenefit(msgspec.Struct):
    benefit_id: str
    name: str
    kind: str
    value: int
    remaining_quota: int | None  # this period; null when unlimited
    period: str


class VerifyAnswer(msgspec.Struct):
    """Which benefits apply now at this merchant — nothing about the citizen's credit beyond that."""

    verification_id: str
    expires_at: datetime
    scenario: str
    masked_name: str
    benefits: list[ApplicableBenefit]


class RedeemRequest(msgspec.Struct, forbid_unknown_fields=True):
    verification_id: PublicId
    benefit_id: PublicId
    order_ref: OrderRef | None = None  # the merchant's own order / ticket number


class RedemptionOut(msgspec.Struct):
    id: str
    verification_id: str
    benefit_id: str
    benefit_name: str
    kind: str
    value: int
    scenario: str
    order_ref: str | None
    status: str  # redeemed | cancelled
    period_key: str
    remaining_quota: int | None  # this citizen's remaining uses in that period; null when unlimited
    redeemed_at: datetime
    cancelled_at: datetime | None


class RedemptionPage(Page[RedemptionOut]):
    pass
