"""Query parameters every paged list shares: one cap on page size for the whole API (DESIGN §4: cursor
pagination with a capped page size), so a new list route cannot pick a larger one by accident, and one cursor
format, published in the schema and checked before any route decodes it."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

MAX_PAGE = 100
PageSize = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)]
SeqCursor = Annotated[int | None, QueryParameter(ge=1, le=2**62)]  # a ledger sequence number
# Opaque: the `next_cursor` of the previous page (base64url, or a public id). A query parameter named `cursor`
# that does not fit is a 422 `invalid_cursor` (api.errors), like a well-formed cursor that is not one of ours.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+={0,2}$"
Cursor = Annotated[str | None, QueryParameter(
    min_length=1, max_length=256, pattern=CURSOR_PATTERN,
    description="The next_cursor of the previous page (opaque); leave out for the first page")]
