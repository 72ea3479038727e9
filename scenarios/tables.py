"""Storage for 信易+: scenarios, benefits, redemptions with their per-period quota counters, and
deposit-free / pay-later credit orders with the per-person credit line they reserve against.

Benefit codes and verifications are short-lived and live in the shared store, not here: a code is
valid for at most 60 s and a verification only for the few minutes a merchant needs to redeem.
"""

from __future__ import annotations

from piccolo.columns import BigInt, ForeignKey, Integer, SmallInt, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from credit.tables import Person


class Scenario(Table, tablename="scenarios"):
    """One 信易+ scenario (信易游, 信易行, ...); merchants serve exactly one (`partners.scenario`)."""

    code = Varchar(length=16, unique=True, index=True)  # travel | transit | rental | medical | lodging | reading
    name = Varchar(length=32)  # 信易游
    description = Text(default="")
    status = Varchar(length=12, default="active")  # active | paused
    sort_order = SmallInt(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Benefit(Table, tablename="benefits"):
    """A benefit with its rule: who qualifies (tier / score floor), what it gives, how often.

    `value` by kind: percent_discount → percent off (1–100); fixed_discount, deposit_waiver and
    pay_later_limit → fen; extra_quota → extra items (e.g. library loans). `quota_per_period` counts
    redemptions per citizen per `period` (0 = unlimited). `merchants` is a space-separated list of
    participating merchant client ids; empty means every merchant of the scenario.
    """

    public_id = Varchar(length=32, unique=True, index=True)
    scenario = Varchar(length=16, index=True)
    name = Varchar(length=128)
    description = Text(default="")
    kind = Varchar(length=20)  # percent_discount | fixed_discount | deposit_waiver | pay_later_limit | extra_quota
    value = BigInt()
    min_tier = Varchar(length=3, null=True, default=None)
    min_score = SmallInt(null=True, default=None)
    quota_per_period = Integer(default=0)
    period = Varchar(length=8, default="day")  # day | week | month | year | once
    merchants = Text(default="")
    valid_from = Timestamptz(default=TimestamptzNow())
    valid_until = Timestamptz(null=True, default=None)
    status = Varchar(length=12, default="active", index=True)  # active | paused | retired
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class BenefitUsage(Table, tablename="benefit_usages"):
    """How many times a citizen used a benefit in one period; the atomic quota counter.

    Unique on (benefit, person, period_key) (raw DDL migration), so a redemption is a single
    `INSERT ... ON CONFLICT DO UPDATE ... WHERE used < quota`, safe under any concurrency.
    """

    benefit = ForeignKey(references=Benefit, index=True)
    person = ForeignKey(references=Person, index=True)
    period_key = Varchar(length=16)  # 2026-11-23 | 2026-W48 | 2026-11 | 2026 | once
    used = Integer(default=0)
    updated_at = Timestamptz(default=TimestamptzNow())


class Redemption(Table, tablename="benefit_redemptions"):
    """One redemption of a benefit by a merchant for a citizen; cancelling gives the quota back."""

    public_id = Varchar(length=32, unique=True, index=True)
    benefit = ForeignKey(references=Benefit, index=True)
    person = ForeignKey(references=Person, index=True)
    scenario = Varchar(length=16)
    merchant_client_id = Varchar(length=40, index=True)
    merchant_name = Varchar(length=128)
    verification_id = Varchar(length=32, index=True)
    period_key = Varchar(length=16)
    order_ref = Varchar(length=64, null=True, default=None)  # the merchant's own order / ticket number
    status = Varchar(length=12, default="redeemed")  # redeemed | cancelled
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    cancelled_at = Timestamptz(null=True, default=None)
    # The merchant's Idempotency-Key (unique per merchant) and the remaining quota its first answer gave, so a
    # retry whose first answer was lost (a crash after the commit) answers the same redemption the same way.
    idempotency_key = Varchar(length=200, null=True, default=None)
    remaining_quota = Integer(null=True, default=None)


class CreditLineUsage(Table, tablename="credit_line_usages"):
    """The part of a citizen's credit line held by open credit orders (one row per person).

    Reserving is a conditional upsert (`reserved_fen + amount <= line`), so concurrent orders can
    never take more than the line.
    """

    person = ForeignKey(references=Person, unique=True, index=True)
    reserved_fen = BigInt(default=0)
    updated_at = Timestamptz(default=TimestamptzNow())


class CreditOrder(Table, tablename="credit_orders"):
    """A deposit-free or pay-later order (modelled on pre-authorization; DESIGN §3).

    `authorized → finished | cancelled | defaulted`; `defaulted → settled | recorded` (a default not
    settled within the grace period becomes a negative fulfilment record in the credit core).
    (merchant_client_id, merchant_order_no) is unique (raw DDL migration).
    """

    public_id = Varchar(length=32, unique=True, index=True)
    person = ForeignKey(references=Person, index=True)
    merchant_client_id = Varchar(length=40, index=True)
    merchant_name = Varchar(length=128)
    scenario = Varchar(length=16)
    kind = Varchar(length=16)  # deposit_free | pay_later
    amount_fen = BigInt()
    merchant_order_no = Varchar(length=64)
    description = Varchar(length=200, default="")
    status = Varchar(length=12, default="authorized", index=True)
    due_at = Timestamptz()
    grace_until = Timestamptz(null=True, default=None, index=True)
    default_amount_fen = BigInt(null=True, default=None)
    record_public_id = Varchar(length=32, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    updated_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
    defaulted_at = Timestamptz(null=True, default=None)
    settled_at = Timestamptz(null=True, default=None)
    cancelled_at = Timestamptz(null=True, default=None)
    recorded_at = Timestamptz(null=True, default=None)
