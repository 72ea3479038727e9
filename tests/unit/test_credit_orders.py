"""Credit order wire types and helpers: what a merchant can ever receive, and what inputs are refused."""

from __future__ import annotations

import msgspec
import pytest

from scenarios.order_schemas import (
    CreditOrderCreate,
    CreditOrderDefault,
    MerchantCreditOrder,
    MerchantCreditOrderPage,
    MyCreditLine,
)
from scenarios.orders import yuan

PERSONAL = {"score", "total", "tier", "score_band", "dimensions", "reasons", "id_number", "phone", "name",
            "person_id", "person_public_id"}
_VALID = {"verification_id": "ver_1", "kind": "deposit_free", "amount_fen": 100, "merchant_order_no": "A-1",
          "due_at": "2030-01-01T00:00:00Z"}


def test_no_merchant_type_can_carry_score_tier_or_identity() -> None:
    for struct in (MerchantCreditOrder, MerchantCreditOrderPage):
        assert not PERSONAL & set(struct.__struct_fields__), struct
    # The citizen's own view of the line does carry the tier: it is theirs.
    assert "tier" in MyCreditLine.__struct_fields__


def test_order_input_is_strict() -> None:
    decoded = msgspec.json.decode(msgspec.json.encode(_VALID), type=CreditOrderCreate)
    assert decoded.description == ""
    for bad in ({"surprise": 1}, {"kind": "loan"}, {"amount_fen": 0}, {"merchant_order_no": "有 空格"},
                {"due_at": "2030-01-01T00:00:00"}, {"merchant_order_no": "x" * 65}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(msgspec.json.encode({**_VALID, **bad}), type=CreditOrderCreate)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"amount_fen": 1, "note": "x"}', type=CreditOrderDefault)


@pytest.mark.parametrize(("fen", "text"), [(0, "0.00"), (5, "0.05"), (30_000, "300.00"), (123_456, "1234.56")])
def test_yuan(fen: int, text: str) -> None:
    assert yuan(fen) == text
