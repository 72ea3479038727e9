"""The limits every paged list shares, whatever serves it: one cap on page size for the whole API (DESIGN §4:
cursor pagination with a capped page size), so a new list cannot pick a larger one by accident, and one cursor
format. The query-parameter declarations built from them are the web layer's (api/pagination.py)."""

from __future__ import annotations

MAX_PAGE = 100
MAX_SEQUENCE = 2**62  # the largest ledger sequence number a cursor may name
# Opaque: the `next_cursor` of the previous page (base64url, or a public id).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+={0,2}$"
CURSOR_MAX_LENGTH = 256
