"""Query parameters every paged list shares: one cap on page size for the whole API (DESIGN §4: cursor
pagination with a capped page size), so a new list route cannot pick a larger one by accident."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

MAX_PAGE = 100
PageSize = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)]
SeqCursor = Annotated[int | None, QueryParameter(ge=1, le=2**62)]  # a ledger sequence number
