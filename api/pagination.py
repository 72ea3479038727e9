"""Query parameters every paged list shares, declared once from the kernel's limits (core/pagination.py):
the capped page size and the cursor format are published in the schema and checked before any route decodes
a cursor. They are Litestar parameter declarations, hence here and not in the kernel."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from core.pagination import CURSOR_MAX_LENGTH, CURSOR_PATTERN, MAX_PAGE, MAX_SEQUENCE

PageSize = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)]
SeqCursor = Annotated[int | None, QueryParameter(ge=1, le=MAX_SEQUENCE)]  # a ledger sequence number
# A query parameter named `cursor` that does not fit is a 422 `invalid_cursor` (api/problems.py), like a
# well-formed cursor that is not one of ours.
Cursor = Annotated[str | None, QueryParameter(
    min_length=1, max_length=CURSOR_MAX_LENGTH, pattern=CURSOR_PATTERN,
    description="The next_cursor of the previous page (opaque); leave out for the first page")]
