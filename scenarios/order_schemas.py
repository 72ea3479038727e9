"""Wire types of credit orders (msgspec Structs; inputs forbid unknown fields).

What a merchant sees of an order never carries the citizen's score, tier, id number or phone: the order
is the merchant's own business with a customer it already identified through a benefit code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from core.pagination import Page

MAX_ORDER_FEN = 100_000_000  # 100万元: far above any credit line, a sanity bound on input
OrderKind = Literal["deposit_free", "pay_later"]
OrderStatus = Literal["authorized", "finished", "cancelled", "defaulted", "settled", "recorded"]
AmountFen = Annotated[int, Meta(ge=1, le=MAX_ORDER_FEN, description="amount in fen (1元 = 100 fen)")]
MerchantOrderNo = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$",
                                      description="the merchant's own order number (printable ASCII)")]
MERCHANT_ORDER_NO_PATTERN = r"^[\x21-\x7e]{1,64}$"
"""The same rule as a query parameter: anything else names no order (and a NUL byte never reaches PostgreSQL)."""
# Ids we issue (vrf_…, cor_…): letters, digits, _ and -.
PublicId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
# Free text a merchant writes for people to read: no control characters but tab and line breaks. PostgreSQL
# refuses a NUL byte outright (a 500 instead of a 422), and nothing shown to a citizen needs the others.
FreeText = Annotated[str, Meta(max_length=200, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]


class CreditOrderCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Open a deposit-free or pay-later order for the citizen a verification identified."""

    verification_id: PublicId
    kind: OrderKind
    amount_fen: AmountFen
    merchant_order_no: MerchantOrderNo
    due_at: Annotated[datetime, Meta(tz=True, description="when the order must be completed (UTC ISO 8601)")]
    description: FreeText = ""


class CreditOrderDefault(msgspec.Struct, forbid_unknown_fields=True):
    """The citizen did not pay: `amount_fen` is what is owed (at most the order amount)."""

    amount_fen: AmountFen
    reason: FreeText | None = None


class MerchantCreditOrder(msgspec.Struct, omit_defaults=True):
    """An order as its merchant sees it."""

    id: str
    merchant_order_no: str
    scenario: str
    kind: str
    amount_fen: int
    description: str
    status: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    grace_until: datetime | None = None
    default_amount_fen: int | None = None
    record_id: str | None = None
    finished_at: datetime | None = None
    cancelled_at: datetime | None = None
    defaulted_at: datetime | None = None
    settled_at: datetime | None = None
    recorded_at: datetime | None = None


class MerchantCreditOrderPage(Page[MerchantCreditOrder]):
    pass


class MyCreditOrder(msgspec.Struct, omit_defaults=True):
    """An order as the citizen sees it; `record_id` names the credit record it produced, if any."""

    id: str
    merchant_name: str
    scenario: str
    kind: str
    amount_fen: int
    description: str
    status: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    merchant_order_no: str
    grace_until: datetime | None = None
    default_amount_fen: int | None = None
    record_id: str | None = None


class MyCreditOrderPage(Page[MyCreditOrder]):
    pass


class MyCreditLine(msgspec.Struct):
    """The citizen's credit line for their current tier, and how much open orders hold."""

    tier: str
    line_fen: int
    reserved_fen: int
    available_fen: int
    open_orders: int
