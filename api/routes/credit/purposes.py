"""The purpose catalog partners consult before asking for an authorization (public, cached)."""

from __future__ import annotations

from litestar import get

from credit import catalog
from credit.schemas import PurposeOut


@get("/v1/purposes", tags=["partner"], summary="The purpose catalog: what each purpose allows", cache=300)
async def purpose_catalog() -> list[PurposeOut]:
    return catalog.purpose_catalog()
