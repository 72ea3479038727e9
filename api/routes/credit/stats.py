"""The operators' policy statistics: `GET /v1/admin/stats/daily`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from api import guards
from api.dependencies import Injected
from core.daily_counts import DailyCountRegistry
from core.settings import Settings
from credit import stats
from credit.partner_schemas import DailyStatsReport


@get("/v1/admin/stats/daily", tags=["admin"], security=[{"BearerAuth": []}],
     guards=[guards.operator("officer", "auditor")],
     summary="Policy indicators per city calendar day (at most 366 days; default the last 7)")
async def daily_stats(
    *,
    daily_counts: Injected[DailyCountRegistry],
    settings: Injected[Settings],
    from_: Annotated[date | None, QueryParameter(name="from", description="first day, YYYY-MM-DD")] = None,
    to: Annotated[date | None, QueryParameter(description="last day, YYYY-MM-DD (default today)")] = None,
) -> DailyStatsReport:
    return await stats.daily_stats_report(start=from_, end=to, counters=daily_counts, calendar=settings.calendar)
