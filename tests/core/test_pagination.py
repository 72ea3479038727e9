"""The kernel's one cursor codec and page shape (core/pagination.py), and their OpenAPI schema."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from litestar import Litestar, get

from api.openapi import StrictStructSchemas
from core.errors import Unprocessable
from core.pagination import Page, decode_cursor, decode_time_cursor, encode_cursor, encode_time_cursor


class Item(msgspec.Struct):
    name: str


class ItemPage(Page[Item]):
    pass


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_time_cursor_round_trips_in_utc() -> None:
    at = datetime(2026, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    assert decode_time_cursor(encode_time_cursor(at, "ord_abc")) == (at.astimezone(UTC), "ord_abc")
    naive = datetime(2026, 5, 1, 1, 30, tzinfo=UTC).replace(tzinfo=None)  # as SQLite hands timestamps back
    assert decode_time_cursor(encode_time_cursor(naive, "ord_abc"))[0] == naive.replace(tzinfo=UTC)
    assert decode_cursor(encode_cursor("a", "b", "c"), 3) == ["a", "b", "c"]


@pytest.mark.parametrize("cursor", [
    _raw("2026-01-01T00:00:00|ord_x"),  # naive: not one we made
    _raw("0001-01-01T00:00:00+14:00|ord_x"), _raw("9999-12-31T23:59:59-14:00|ord_x"),  # overflow in UTC
    _raw("2026-01-01T00:00:00+00:00|ord_\x00"), _raw("2026-01-01T00:00:00+00:00"), _raw("yesterday|ord_x"),
    "%%%", base64.urlsafe_b64encode(b"\xff\xfe").decode()])
def test_hand_made_cursors_are_invalid_cursor(cursor: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        decode_time_cursor(cursor)
    assert refused.value.code == "invalid_cursor"


def test_a_page_subclass_keeps_its_name_and_item_type_on_the_wire_and_in_the_schema() -> None:
    page = ItemPage(items=[Item(name="a")], next_cursor=None)
    assert msgspec.json.decode(msgspec.json.encode(page), type=ItemPage) == page

    @get("/items", sync_to_thread=False)
    def items() -> ItemPage:
        return page

    schemas = Litestar([items], plugins=[StrictStructSchemas()]).openapi_schema.to_schema()["components"]["schemas"]
    assert schemas["ItemPage"]["properties"]["items"] == {"items": {"$ref": "#/components/schemas/Item"},
                                                           "type": "array"}
