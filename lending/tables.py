"""Storage for 信易贷: enterprise members, portrait snapshots, loan products (金融超市), financing
demands, applications to banks and each application's timeline.

Money is integer fen; annual rates are basis points (4.35 % = 435).
"""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Boolean, ForeignKey, Integer, SmallInt, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from credit.tables import Enterprise, Person


class EnterpriseMember(Table, tablename="enterprise_members"):
    """A citizen account acting for an enterprise: its legal representative (owner) or an operator (经办人).

    Unique on (enterprise, account_id) (raw DDL migration).
    """

    enterprise = ForeignKey(references=Enterprise, index=True)
    account_id = Varchar(length=32, index=True)  # the citizen account's public id (token subject)
    person = ForeignKey(references=Person, index=True)
    role = Varchar(length=12)  # owner | operator
    status = Varchar(length=12, default="active")  # active | removed
    added_by = Varchar(length=32, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    removed_at = Timestamptz(null=True, default=None)


class PortraitSnapshot(Table, tablename="portrait_snapshots"):
    """A versioned enterprise credit portrait; `digest` is SHA-256 over its canonical JSON."""

    public_id = Varchar(length=32, unique=True, index=True)
    enterprise = ForeignKey(references=Enterprise, index=True)
    version = Integer()
    score = SmallInt()  # 0–100
    grade = Varchar(length=1)  # A | B | C | D
    dimensions = JSON()
    tags = JSON()
    risk_flags = JSON()
    sources = JSON()
    facts = JSON()  # the inputs matching reads: years in business, open penalties, tax grade, ...
    model_version = Varchar(length=24)
    digest = Varchar(length=64)
    as_of = Timestamptz(index=True)


class LoanProduct(Table, tablename="loan_products"):
    """A bank's loan product in the 金融超市 with its eligibility rules."""

    public_id = Varchar(length=32, unique=True, index=True)
    bank_client_id = Varchar(length=40, index=True)
    bank_name = Varchar(length=128)
    name = Varchar(length=128)
    description = Text(default="")
    amount_min_fen = BigInt()
    amount_max_fen = BigInt()
    term_min_months = SmallInt()
    term_max_months = SmallInt()
    rate_min_bp = Integer()
    rate_max_bp = Integer()
    guarantee_kind = Varchar(length=16)  # credit | guarantee | collateral | pledge | xinyidan | xinyixian
    min_grade = Varchar(length=1, null=True, default=None)
    min_score = SmallInt(null=True, default=None)
    industries = Text(default="")  # GB/T 4754 section letters, space-separated; empty = all
    regions = Text(default="")  # region code prefixes, space-separated; empty = all
    min_years_in_business = SmallInt(default=0)
    max_open_penalties = SmallInt(null=True, default=None)
    tax_grade_floor = Varchar(length=1, null=True, default=None)  # A | B | M | C | D
    first_loan_friendly = Boolean(default=False)
    status = Varchar(length=12, default="active", index=True)  # active | paused | withdrawn
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    updated_at = Timestamptz(default=TimestamptzNow())


class FinancingDemand(Table, tablename="financing_demands"):
    """An enterprise's financing demand and the ranked matches computed for it."""

    public_id = Varchar(length=32, unique=True, index=True)
    enterprise = ForeignKey(references=Enterprise, index=True)
    created_by = Varchar(length=32)  # member account public id
    amount_fen = BigInt()
    term_months = SmallInt()
    purpose = Varchar(length=200)
    guarantee_offered = Varchar(length=16)
    max_rate_bp = Integer(null=True, default=None)
    status = Varchar(length=12, default="open", index=True)  # open | submitted | closed
    portrait_id = Varchar(length=32, null=True, default=None)  # the snapshot matching used
    matches = JSON()
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    submitted_at = Timestamptz(null=True, default=None)


class LoanApplication(Table, tablename="loan_applications"):
    """A demand submitted to one bank's product: `submitted → accepted → approved → disbursed` or
    `→ rejected`. Unique on (demand, product) (raw DDL migration)."""

    public_id = Varchar(length=32, unique=True, index=True)
    demand = ForeignKey(references=FinancingDemand, index=True)
    product = ForeignKey(references=LoanProduct, index=True)
    enterprise = ForeignKey(references=Enterprise, index=True)
    bank_client_id = Varchar(length=40, index=True)
    authorization_id = Varchar(length=32)  # the enterprise's authorization for this bank (scope portrait)
    status = Varchar(length=12, default="submitted", index=True)
    respond_by = Timestamptz()
    first_loan = Boolean(default=False)
    approved_amount_fen = BigInt(null=True, default=None)
    approved_rate_bp = Integer(null=True, default=None)
    approved_term_months = SmallInt(null=True, default=None)
    disbursed_amount_fen = BigInt(null=True, default=None)
    rejection_reason = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    first_response_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


class ApplicationEvent(Table, tablename="loan_application_events"):
    """One step of an application's timeline (submitted, accepted, approved, disbursed, rejected)."""

    application = ForeignKey(references=LoanApplication, index=True)
    status = Varchar(length=12)
    actor = Varchar(length=40)
    note = Text(default="")
    amount_fen = BigInt(null=True, default=None)
    rate_bp = Integer(null=True, default=None)
    term_months = SmallInt(null=True, default=None)
    at = Timestamptz(default=TimestamptzNow())
