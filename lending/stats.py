"""Lending statistics (信易贷 policy indicators): public, aggregate only. No HTTP objects here.

Figures, in total and per calendar month of the city (Asia/Shanghai):

- demands: demands posted in the month; applications: applications submitted in the month;
- decisions: applications whose first decision (approved or rejected — `accepted` is only an
  acknowledgement) falls in the month; approvals / rejections split them; approval_rate = approvals /
  decisions; median_days_to_decision: submission → that first decision, in days;
- disbursed (count, amount), of which unsecured (pure credit products, guarantee kind `credit`) and
  first loans (首贷: the enterprise's first disbursed loan here), in the month of disbursement.

With `bank`, every figure is restricted to that bank's applications (demands: those submitted to it).
Everything is computed from the applications and their timeline events, so the figures always agree
with what the banks recorded.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core import clock
from core.clock import CITY_TZ
from core.db import as_utc
from lending.applications import APPROVED, DISBURSED, REJECTED
from lending.schemas import LendingFigures, LendingMonth, LendingStats
from lending.tables import ApplicationEvent, FinancingDemand, LoanApplication

TIMEZONE_NAME = "Asia/Shanghai"
MAX_MONTHS = 36

_APP_PK = LoanApplication._meta.primary_key


def month_of(moment: datetime) -> str:
    """`YYYY-MM` of `moment` on the city's calendar."""
    return as_utc(moment).astimezone(CITY_TZ).strftime("%Y-%m")


def last_months(now: datetime, count: int) -> list[str]:
    """The `count` city-calendar months ending with the current one, oldest first."""
    local = clock.city_today(now)
    year, month = local.year, local.month
    out: list[str] = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


@dataclass
class _Bucket:
    demands: int = 0
    applications: int = 0
    approvals: int = 0
    rejections: int = 0
    disbursed_count: int = 0
    disbursed_amount_fen: int = 0
    unsecured_disbursed_count: int = 0
    unsecured_disbursed_amount_fen: int = 0
    first_loans: int = 0
    first_loan_amount_fen: int = 0
    days_to_decision: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        decisions = self.approvals + self.rejections
        return {
            "demands": self.demands, "applications": self.applications, "decisions": decisions,
            "approvals": self.approvals, "rejections": self.rejections,
            "approval_rate": round(self.approvals / decisions, 4) if decisions else None,
            "disbursed_count": self.disbursed_count, "disbursed_amount_fen": self.disbursed_amount_fen,
            "unsecured_disbursed_count": self.unsecured_disbursed_count,
            "unsecured_disbursed_amount_fen": self.unsecured_disbursed_amount_fen,
            "first_loans": self.first_loans, "first_loan_amount_fen": self.first_loan_amount_fen,
            "median_days_to_decision": round(statistics.median(self.days_to_decision), 2)
            if self.days_to_decision else None,
        }


async def lending_stats(*, months: int = 12, bank: str | None = None, now: datetime | None = None) -> LendingStats:
    """Totals since the start and the last `months` months (1–36), optionally for one bank."""
    now = now or datetime.now(UTC)
    months = max(1, min(MAX_MONTHS, months))
    apps_query = LoanApplication.select(_APP_PK, LoanApplication.demand, LoanApplication.created_at,
                                        LoanApplication.first_loan,
                                        LoanApplication.product.guarantee_kind.as_alias("guarantee_kind"))
    events_query = ApplicationEvent.select(ApplicationEvent.application, ApplicationEvent.status,
                                           ApplicationEvent.amount_fen, ApplicationEvent.at).where(
        ApplicationEvent.status.is_in([APPROVED, REJECTED, DISBURSED]))
    if bank is not None:
        apps_query = apps_query.where(LoanApplication.bank_client_id == bank)
        events_query = events_query.where(ApplicationEvent.application.bank_client_id == bank)
    apps = {int(r["id"]): r for r in await apps_query}
    if bank is None:
        demand_rows = await FinancingDemand.select(FinancingDemand.created_at)
    else:
        demand_pks = list({int(r["demand"]) for r in apps.values()})
        demand_rows = await FinancingDemand.select(FinancingDemand.created_at).where(
            FinancingDemand._meta.primary_key.is_in(demand_pks)) if demand_pks else []

    total = _Bucket()
    per_month: dict[str, _Bucket] = defaultdict(_Bucket)
    for row in demand_rows:
        for bucket in (total, per_month[month_of(row["created_at"])]):
            bucket.demands += 1
    for row in apps.values():
        for bucket in (total, per_month[month_of(row["created_at"])]):
            bucket.applications += 1

    first_decision: dict[int, tuple[datetime, str]] = {}
    for event in await events_query.order_by(ApplicationEvent.at, ApplicationEvent._meta.primary_key):
        pk = int(event["application"])
        app = apps.get(pk)
        if app is None:
            continue
        at = as_utc(event["at"])
        if event["status"] in (APPROVED, REJECTED) and pk not in first_decision:
            first_decision[pk] = (at, event["status"])
        elif event["status"] == DISBURSED:
            amount = int(event["amount_fen"] or 0)
            for bucket in (total, per_month[month_of(at)]):
                bucket.disbursed_count += 1
                bucket.disbursed_amount_fen += amount
                if app["guarantee_kind"] == "credit":
                    bucket.unsecured_disbursed_count += 1
                    bucket.unsecured_disbursed_amount_fen += amount
                if app["first_loan"]:
                    bucket.first_loans += 1
                    bucket.first_loan_amount_fen += amount
    for pk, (at, status) in first_decision.items():
        days = (at - as_utc(apps[pk]["created_at"])).total_seconds() / 86_400
        for bucket in (total, per_month[month_of(at)]):
            if status == APPROVED:
                bucket.approvals += 1
            else:
                bucket.rejections += 1
            bucket.days_to_decision.append(days)

    return LendingStats(
        totals=LendingFigures(**total.figures()),
        by_month=[LendingMonth(month=m, **per_month[m].figures()) if m in per_month
                  else LendingMonth(month=m, **_Bucket().figures()) for m in last_months(now, months)],
        timezone=TIMEZONE_NAME, generated_at=now)


DAILY_METRICS = ("demands", "approvals")
"""What lending contributes to the operators' daily statistics (core/daily_counts.py; wired by the app)."""


async def count_window(start: datetime, end: datetime) -> dict[str, int]:
    """Financing demands posted and applications approved in [start, end).

    An application is approved at most once (its state machine never returns to a decision), so counting
    `approved` timeline events counts approvals.
    """
    return {
        "demands": await FinancingDemand.count().where(
            (FinancingDemand.created_at >= start) & (FinancingDemand.created_at < end)),
        "approvals": await ApplicationEvent.count().where(
            (ApplicationEvent.status == APPROVED) & (ApplicationEvent.at >= start) & (ApplicationEvent.at < end)),
    }


__all__ = ["DAILY_METRICS", "MAX_MONTHS", "TIMEZONE_NAME", "count_window", "last_months", "lending_stats",
           "month_of"]
