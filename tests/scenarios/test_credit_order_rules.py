"""Credit order wire types and helpers: what a merchant can ever receive, and what inputs are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from core.errors import ConfigurationError
from core.settings import Settings
from scenarios.catalog import DEFAULT_BENEFITS
from scenarios.order_schemas import (
    CreditOrderCreate,
    CreditOrderDefault,
    MerchantCreditOrder,
    MerchantCreditOrderPage,
    MyCreditLine,
)
from scenarios.orders import KINDS, MAX_GRACE_DAYS, ORDER_BENEFIT_KIND, fulfilment_month, yuan

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


def test_text_with_control_characters_is_refused() -> None:
    for field in ("description", "verification_id"):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(msgspec.json.encode({**_VALID, field: "a\x00b"}), type=CreditOrderCreate)
    for reason in ("a\x00b", "\x1b[2J", "\x7f"):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(msgspec.json.encode({"amount_fen": 1, "reason": reason}), type=CreditOrderDefault)
    ok = msgspec.json.decode(msgspec.json.encode({**_VALID, "description": "第一行\n第二行\t备注"}),
                             type=CreditOrderCreate)
    assert ok.description == "第一行\n第二行\t备注"


def test_the_default_catalog_offers_credit_orders_where_they_make_sense() -> None:
    """信易行 bikes, 信易租 rentals and 信易住 check-in deposit-free; 信易医 and 信易租 pay later."""
    offered = {(b.scenario, b.kind) for b in DEFAULT_BENEFITS}
    for scenario in ("transit", "rental", "lodging"):
        assert (scenario, ORDER_BENEFIT_KIND["deposit_free"]) in offered, scenario
    for scenario in ("medical", "rental"):
        assert (scenario, ORDER_BENEFIT_KIND["pay_later"]) in offered, scenario
    assert set(ORDER_BENEFIT_KIND) == set(KINDS)


def test_month_window_is_the_city_calendar_month() -> None:
    start, end = fulfilment_month(datetime(2026, 1, 31, 16, 0, tzinfo=UTC))  # 2026-02-01 00:00 China time
    assert (start, end) == (datetime(2026, 1, 31, 16, 0, tzinfo=UTC), datetime(2026, 2, 28, 16, 0, tzinfo=UTC))
    start, end = fulfilment_month(datetime(2026, 12, 31, 15, 59, tzinfo=UTC))  # still December in China
    assert (start, end) == (datetime(2026, 11, 30, 16, 0, tzinfo=UTC), datetime(2026, 12, 31, 16, 0, tzinfo=UTC))


@pytest.mark.parametrize("days", ["-1", str(MAX_GRACE_DAYS + 1), "1000000000"])
def test_an_unusable_grace_period_is_refused_at_start_up(days: str) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env({"XINYI_ENV": "test", "XINYI_CREDIT_ORDER_GRACE_DAYS": days})
    assert Settings.from_env({"XINYI_ENV": "test", "XINYI_CREDIT_ORDER_GRACE_DAYS": "0"}).credit_order_grace_days == 0
