"""Wire types of 信易贷's market: loan products (金融超市), financing demands with their matches, applications
and bank decisions, and the public lending statistics.

Inputs forbid unknown fields and carry their constraints in `Meta`; outputs never carry an internal id,
id number or phone. Money is integer fen, annual rates are basis points (4.35 % = 435), times UTC ISO 8601.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from core.pagination import Page
from lending.inputs import SAFE_TEXT

GuaranteeKind = Literal["credit", "guarantee", "collateral", "pledge", "xinyidan", "xinyixian"]
Grade = Literal["A", "B", "C", "D"]
TaxGrade = Literal["A", "B", "M", "C", "D"]
ProductStatus = Literal["active", "paused", "withdrawn"]
ApplicationStatus = Literal["submitted", "accepted", "approved", "disbursed", "rejected"]

Fen = Annotated[int, Meta(ge=1, le=1_000_000_000_000, description="amount in fen (1 yuan = 100 fen)")]
Months = Annotated[int, Meta(ge=1, le=360)]
RateBp = Annotated[int, Meta(ge=1, le=3600, description="annual rate in basis points (4.35 % = 435)")]
Section = Annotated[str, Meta(pattern=r"^[A-T]$", description="GB/T 4754-2017 section letter")]
RegionPrefix = Annotated[str, Meta(pattern=r"^[0-9]{2,6}$", description="administrative division code prefix")]
ProductName = Annotated[str, Meta(min_length=1, max_length=128, pattern=SAFE_TEXT)]
Description = Annotated[str, Meta(max_length=2000, pattern=SAFE_TEXT)]
Score = Annotated[int, Meta(ge=0, le=100)]
Years = Annotated[int, Meta(ge=0, le=100)]
Penalties = Annotated[int, Meta(ge=0, le=1000)]
Industries = Annotated[list[Section], Meta(max_length=20)]
Regions = Annotated[list[RegionPrefix], Meta(max_length=50)]
PublicId = Annotated[str, Meta(min_length=1, max_length=40)]
Uscc = Annotated[str, Meta(min_length=18, max_length=18)]
Text = Annotated[str, Meta(min_length=1, max_length=500, pattern=SAFE_TEXT)]


# ---------------------------------------------------------------- products


class ProductCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A loan product. Ranges are inclusive; `industries` / `regions` empty means no restriction."""

    name: ProductName
    amount_min_fen: Fen
    amount_max_fen: Fen
    term_min_months: Months
    term_max_months: Months
    rate_min_bp: RateBp
    rate_max_bp: RateBp
    guarantee_kind: GuaranteeKind
    description: Description = ""
    min_grade: Grade | None = None
    min_score: Score | None = None
    industries: Industries = msgspec.field(default_factory=list)
    regions: Regions = msgspec.field(default_factory=list)
    min_years_in_business: Years = 0
    max_open_penalties: Penalties | None = None
    tax_grade_floor: TaxGrade | None = None
    first_loan_friendly: bool = False
    status: Literal["active", "paused"] = "active"


class ProductPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Fields to change; absent fields stay as they are, `null` clears an optional rule."""

    name: ProductName | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    amount_min_fen: Fen | UnsetType = UNSET
    amount_max_fen: Fen | UnsetType = UNSET
    term_min_months: Months | UnsetType = UNSET
    term_max_months: Months | UnsetType = UNSET
    rate_min_bp: RateBp | UnsetType = UNSET
    rate_max_bp: RateBp | UnsetType = UNSET
    guarantee_kind: GuaranteeKind | UnsetType = UNSET
    min_grade: Grade | UnsetType | None = UNSET
    min_score: Score | UnsetType | None = UNSET
    industries: Industries | UnsetType = UNSET
    regions: Regions | UnsetType = UNSET
    min_years_in_business: Years | UnsetType = UNSET
    max_open_penalties: Penalties | UnsetType | None = UNSET
    tax_grade_floor: TaxGrade | UnsetType | None = UNSET
    first_loan_friendly: bool | UnsetType = UNSET
    status: ProductStatus | UnsetType = UNSET


class BankOut(msgspec.Struct):
    id: str  # the bank's partner client id
    name: str


class ProductOut(msgspec.Struct, kw_only=True):
    id: str
    bank: BankOut
    name: str
    description: str
    amount_min_fen: int
    amount_max_fen: int
    term_min_months: int
    term_max_months: int
    rate_min_bp: int
    rate_max_bp: int
    guarantee_kind: str
    min_grade: str | None
    min_score: int | None
    industries: list[str]
    regions: list[str]
    min_years_in_business: int
    max_open_penalties: int | None
    tax_grade_floor: str | None
    first_loan_friendly: bool
    status: str
    created_at: datetime
    updated_at: datetime


class ProductPage(Page[ProductOut]):
    pass


# ---------------------------------------------------------------- demands and matches


class DemandCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A financing demand of the enterprise `uscc` (the caller must be one of its members)."""

    uscc: Uscc
    amount_fen: Fen
    term_months: Months
    purpose: Annotated[str, Meta(min_length=1, max_length=200, pattern=SAFE_TEXT)]
    guarantee_offered: GuaranteeKind
    max_rate_bp: RateBp | None = None


class DemandSubmit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Submit the demand to the banks of `product_ids` (each must be among the demand's matches).

    `consent` must be literally `true`: the enterprise authorizes each chosen bank to read its portrait
    (purpose loan_application, 90 days) in the same step.
    """

    product_ids: Annotated[list[PublicId], Meta(min_length=1, max_length=20)]
    consent: Annotated[Any, Meta(description="must be literally true")] = None


class ReasonOut(msgspec.Struct):
    code: str
    text: str


class ProductBrief(msgspec.Struct, kw_only=True):
    id: str
    name: str
    guarantee_kind: str
    amount_min_fen: int
    amount_max_fen: int
    term_min_months: int
    term_max_months: int
    rate_min_bp: int
    rate_max_bp: int
    first_loan_friendly: bool


class MatchOut(msgspec.Struct, kw_only=True):
    rank: int
    score: int  # fit score 0–100
    product: ProductBrief
    bank: BankOut
    reasons: list[ReasonOut]


class ExcludedOut(msgspec.Struct, kw_only=True):
    product: ProductBrief
    bank: BankOut
    main_reason: ReasonOut
    reasons: list[ReasonOut]


class PortraitUsed(msgspec.Struct, kw_only=True):
    id: str
    version: int
    score: int
    grade: str
    as_of: datetime


class EnterpriseBrief(msgspec.Struct):
    id: str
    name: str


class TimelineEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    status: str
    at: datetime
    note: str | None = None
    amount_fen: int | None = None
    rate_bp: int | None = None
    term_months: int | None = None


class DecisionOut(msgspec.Struct, kw_only=True):
    approved_amount_fen: int | None
    approved_rate_bp: int | None
    approved_term_months: int | None
    disbursed_amount_fen: int | None
    rejection_reason: str | None


class ApplicationForEnterprise(msgspec.Struct, kw_only=True):
    """One bank's handling of the demand, as the enterprise follows it."""

    id: str
    bank: BankOut
    product: ProductBrief
    status: str
    authorization_id: str
    first_loan: bool
    respond_by: datetime
    overdue: bool  # no first response, and respond_by has passed
    answered_late: bool  # the first response came after respond_by
    first_response_at: datetime | None
    decision: DecisionOut
    timeline: list[TimelineEvent]
    created_at: datetime


class DemandOut(msgspec.Struct, kw_only=True):
    id: str
    enterprise: EnterpriseBrief
    amount_fen: int
    term_months: int
    purpose: str
    guarantee_offered: str
    max_rate_bp: int | None
    status: str
    first_loan: bool  # the enterprise had no disbursed loan here when the demand was matched
    portrait: PortraitUsed | None
    hard_stop: ReasonOut | None
    matches: list[MatchOut]
    excluded: list[ExcludedOut]
    applications: list[ApplicationForEnterprise]
    created_at: datetime
    submitted_at: datetime | None


class DemandSummary(msgspec.Struct, kw_only=True):
    id: str
    amount_fen: int
    term_months: int
    purpose: str
    guarantee_offered: str
    status: str
    matched: int
    created_at: datetime
    submitted_at: datetime | None


class DemandPage(Page[DemandSummary]):
    pass


# ---------------------------------------------------------------- bank side


class ApplicantOut(msgspec.Struct, kw_only=True):
    id: str  # the enterprise's public id
    name: str
    uscc: str  # given by the enterprise when it applied; the key of GET /v1/portraits/{uscc}
    industry: str
    region_code: str


class DemandTermsOut(msgspec.Struct, kw_only=True):
    id: str
    amount_fen: int
    term_months: int
    purpose: str
    guarantee_offered: str
    max_rate_bp: int | None


class BankApplication(msgspec.Struct, kw_only=True):
    id: str
    status: str
    product: ProductBrief
    demand: DemandTermsOut
    enterprise: ApplicantOut
    authorization_id: str
    first_loan: bool
    respond_by: datetime
    overdue: bool
    answered_late: bool
    first_response_at: datetime | None
    decision: DecisionOut
    timeline: list[TimelineEvent]
    created_at: datetime
    updated_at: datetime


class BankApplicationPage(Page[BankApplication]):
    pass


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A bank's decision. `approved` needs amount_fen, rate_bp and term_months; `disbursed` needs amount_fen
    (at most the approved amount); `rejected` needs a reason. Allowed steps: submitted → accepted | approved |
    rejected; accepted → approved | rejected; approved → disbursed | rejected."""

    status: Literal["accepted", "approved", "disbursed", "rejected"]
    amount_fen: Fen | None = None
    rate_bp: RateBp | None = None
    term_months: Months | None = None
    reason: Text | None = None
    note: Text | None = None


# ---------------------------------------------------------------- statistics


class LendingFigures(msgspec.Struct, kw_only=True):
    demands: int
    applications: int
    decisions: int  # applications whose first decision (approved or rejected) falls in the period
    approvals: int
    rejections: int
    approval_rate: float | None  # approvals / decisions
    disbursed_count: int
    disbursed_amount_fen: int
    unsecured_disbursed_count: int  # disbursed under pure credit (guarantee kind `credit`) products
    unsecured_disbursed_amount_fen: int
    first_loans: int  # disbursements that were the enterprise's first loan here (首贷)
    first_loan_amount_fen: int
    median_days_to_decision: float | None  # submission → first approved/rejected, in days


class LendingMonth(LendingFigures, kw_only=True):
    month: str  # YYYY-MM, city calendar


class LendingStats(msgspec.Struct, kw_only=True):
    totals: LendingFigures
    by_month: list[LendingMonth]
    timezone: str
    generated_at: datetime
