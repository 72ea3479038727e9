"""The limits every paged list shares, whatever serves it: one cap on page size for the whole API (DESIGN §4:
cursor pagination with a capped page size), so a new list cannot pick a larger one by accident, and one cursor
codec. The query-parameter declarations built from them are the web layer's (api/pagination.py).

A cursor is opaque to clients: base64url of `|`-joined parts. Lists ordered newest first over (a time, a public
id) use the time cursor: the time in UTC with its offset, then the id. Decoding is strict, so a hand-made cursor
(a naive time, an offset at the edge of `datetime`, a NUL byte in the id) is a 422 `invalid_cursor`, never a
value sent to the database.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Generic, TypeVar

import msgspec

from core.errors import Unprocessable

T = TypeVar("T")

MAX_PAGE = 100
MAX_SEQUENCE = 2**62  # the largest ledger sequence number a cursor may name
# Opaque: the `next_cursor` of the previous page (base64url, or a public id).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+={0,2}$"
CURSOR_MAX_LENGTH = 256

_CURSOR_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # any of our public ids


def invalid_cursor() -> Unprocessable:
    return Unprocessable("invalid cursor", code="invalid_cursor")


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int) -> list[str]:
    """The `parts` parts of an opaque cursor; a malformed one is a 422 `invalid_cursor`, never a 500."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise invalid_cursor() from None
    values = raw.split("|")
    if len(values) != parts:
        raise invalid_cursor()
    return values


def encode_time_cursor(at: datetime, public_id: str) -> str:
    """The cursor after the row (`at`, `public_id`); a naive `at` is UTC, as the database hands it back."""
    return encode_cursor((at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat(), public_id)


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time in UTC, public id) of an `encode_time_cursor` cursor.

    Raises:
        Unprocessable: `invalid_cursor` — not one of ours: undecodable, a naive time, a time that does not fit
            in UTC (year 9999 minus a negative offset overflows), an id none of ours looks like.
    """
    at_text, public_id = decode_cursor(cursor, 2)
    try:
        parsed = datetime.fromisoformat(at_text)
        at = parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        at = None
    if at is None or _CURSOR_ID.fullmatch(public_id) is None:
        raise invalid_cursor()
    return at, public_id


class Page(msgspec.Struct, Generic[T]):
    """One page of a list, newest first: the items and the cursor of the next page (None on the last one).

    A list declares its page as a subclass, `class RecordPage(Page[RecordOut]): pass`, so the OpenAPI component
    keeps the list's own name (api/openapi.py binds the item type in its schema)."""

    items: list[T]
    next_cursor: str | None
