"""The public lending statistics (信易贷 figures by month, for everyone)."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from api.routes.lending.banks import BankQuery
from lending import stats
from lending.schemas import LendingStats

Months = Annotated[int, QueryParameter(ge=1, le=stats.MAX_MONTHS)]


@get("/v1/lending/stats", tags=["lending"],
     summary="Lending statistics: demands, applications, approval rate, disbursed, unsecured, first loans, by month")
async def lending_stats(months: Months = 12, bank: BankQuery = None) -> LendingStats:
    return await stats.lending_stats(months=months, bank=bank)
