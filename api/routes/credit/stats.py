"""The operators' policy statistics: `GET /v1/admin/stats/daily`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from api.auth import guards
from api.dependencies import Injected
from core.daily_counts import DailyCountRegistry
from core.settings import Settings
from credit import stats
from credit.partner_schemas import DailyStatsReport, DayStats, Rate, StatsTargets, StatsTotals


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
    report = await stats.daily_report(start=from_, end=to, counters=daily_counts, calendar=settings.calendar)
    return DailyStatsReport(
        from_=report.start, to=report.end, timezone=stats.TIMEZONE_NAME,
        targets=StatsTargets(score_queries_per_day=stats.SCORE_QUERIES_TARGET_PER_DAY,
                             credit_checks_per_year=stats.CREDIT_CHECKS_TARGET_PER_YEAR),
        days=[_day(d) for d in report.days],
        totals=StatsTotals(
            score_queries=report.total("score_queries"), credit_checks=report.total("credit_checks"),
            authorizations_granted=report.total("authorizations_granted"),
            score_queries_per_day_vs_target=report.score_queries_per_day_vs_target,
            credit_checks_annualized_vs_target=report.credit_checks_annualized_vs_target,
            redemptions=report.known_total("redemptions"), credit_orders=report.known_total("credit_orders"),
            demands=report.known_total("demands"), approvals=report.known_total("approvals"),
            **_rates(report.rates)))


def _rates(rates: dict[str, stats.Ratio]) -> dict[str, Rate]:
    return {name: Rate(value=r.value, numerator=r.numerator, denominator=r.denominator, unavailable=r.unavailable)
            for name, r in rates.items()}


def _day(d: stats.DayFigures) -> DayStats:
    return DayStats(
        day=d.day, score_queries=d["score_queries"], score_queries_vs_target=d.score_queries_vs_target,
        credit_checks=d["credit_checks"], authorizations_granted=d["authorizations_granted"],
        authorizations_active=d["authorizations_active"], authorized_citizens=d["authorized_citizens"],
        redemptions=d.get("redemptions"), credit_orders=d.get("credit_orders"), demands=d.get("demands"),
        approvals=d.get("approvals"), checks_with_measures=d["checks_with_measures"],
        measures_applied=d["measures_applied"], repairs_requested=d["repairs_requested"],
        repairs_approved=d["repairs_approved"], records_ingested=d["records_ingested"],
        records_timely=d.get("records_timely"), refreshed_at=d.refreshed_at, **_rates(d.rates))
