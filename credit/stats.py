"""Policy indicators per day (DESIGN §5): score queries, credit checks, authorizations.

`refresh_daily_stats(day)` counts one day with a handful of COUNT queries over indexed time columns and
upserts one `daily_stats` row per metric; reads only ever look at `daily_stats`. A day's numbers are
final once they were refreshed after the day ended (every count is by event time), so a read refreshes
only days that are still open (today), never refreshed, or last refreshed before their end; the
background job keeps today and yesterday fresh. Days are calendar days in the city's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from piccolo.custom_types import Combinable
from piccolo.query.mixins import OnConflictAction

from api.calendar import CITY_TZ
from api.db import as_utc
from api.errors import Unprocessable
from credit.tables import Authorization, CreditCheck, DailyStat, LedgerEntry

SCORE_QUERIES_TARGET_PER_DAY = 3_000
CREDIT_CHECKS_TARGET_PER_YEAR = 1_500_000
MAX_RANGE_DAYS = 366
TIMEZONE_NAME = "Asia/Shanghai"

SCORE_ACTIONS = ("score.query", "score.check")
COMPUTED_METRICS = ("score_queries", "credit_checks", "authorizations_granted", "authorizations_active",
                    "authorized_citizens")
PENDING_METRICS = ("redemptions", "credit_orders", "demands", "approvals")
"""Reported as 0 until the tables behind them exist (later issues add them to `_count_day`)."""


def _now() -> datetime:
    return datetime.now(UTC)


def city_today(now: datetime | None = None) -> date:
    return (now or _now()).astimezone(CITY_TZ).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a city calendar day, in UTC (stored times are UTC; compare like with like)."""
    start = datetime.combine(day, time(0), tzinfo=CITY_TZ).astimezone(UTC)
    return start, start + timedelta(days=1)


def _active_at(moment: datetime) -> Combinable:
    """Authorizations in force at `moment`: approved before it, not yet past valid_until, not ended."""
    # valid_until is set only on approval, so it separates granted authorizations from rejected ones.
    condition: Combinable = (Authorization.valid_until.is_not_null() & (Authorization.decided_at <= moment)
                        & (Authorization.valid_until > moment)
                        & (Authorization.ended_at.is_null() | (Authorization.ended_at > moment)))
    return condition


async def _count_day(day: date, *, now: datetime) -> dict[str, int]:
    start, end = day_bounds(day)
    # "End of day" for a day still running is now: an authorization counts if it is in force at the time.
    state_at = min(end, now)
    return {
        "score_queries": await LedgerEntry.count().where(
            (LedgerEntry.at >= start) & (LedgerEntry.at < end) & LedgerEntry.action.is_in(list(SCORE_ACTIONS))
            & (LedgerEntry.outcome == "allowed")),
        "credit_checks": await CreditCheck.count().where(
            (CreditCheck.created_at >= start) & (CreditCheck.created_at < end)),
        "authorizations_granted": await Authorization.count().where(
            Authorization.valid_until.is_not_null() & (Authorization.decided_at >= start)
            & (Authorization.decided_at < end)),
        "authorizations_active": await Authorization.count().where(_active_at(state_at)),
        "authorized_citizens": await Authorization.count(distinct=[Authorization.person]).where(
            _active_at(state_at) & Authorization.person.is_not_null()),
    }


async def refresh_daily_stats(day: date, *, now: datetime | None = None) -> dict[str, int]:
    """Count `day` (a city calendar day) and upsert its rows in `daily_stats`; returns the counts."""
    moment = now or _now()
    counts = await _count_day(day, now=moment)
    await DailyStat.insert(*(DailyStat(day=day, metric=metric, value=value, updated_at=moment)
                             for metric, value in counts.items())).on_conflict(
        target=(DailyStat.day, DailyStat.metric), action=OnConflictAction.do_update,
        values=[DailyStat.value, DailyStat.updated_at])
    return counts


async def refresh_current_stats(*, now: datetime | None = None) -> int:
    """Background pass: refresh today, and yesterday until it has been refreshed after it ended."""
    moment = now or _now()
    today = city_today(moment)
    days = [today]
    yesterday = today - timedelta(days=1)
    if _needs_refresh(yesterday, await _stored(yesterday, yesterday)):
        days.append(yesterday)
    for day in days:
        await refresh_daily_stats(day, now=moment)
    return len(days)


async def _stored(start: date, end: date) -> dict[date, dict[str, tuple[int, datetime]]]:
    rows = await DailyStat.select(DailyStat.day, DailyStat.metric, DailyStat.value, DailyStat.updated_at).where(
        (DailyStat.day >= start) & (DailyStat.day <= end))
    stored: dict[date, dict[str, tuple[int, datetime]]] = defaultdict(dict)
    for r in rows:
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
        stored[day][r["metric"]] = (int(r["value"]), as_utc(r["updated_at"]))
    return stored


def _needs_refresh(day: date, stored: dict[date, dict[str, tuple[int, datetime]]]) -> bool:
    metrics = stored.get(day, {})
    if set(COMPUTED_METRICS) - metrics.keys():
        return True
    _, end = day_bounds(day)
    return min(updated for _, updated in metrics.values()) < end


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    values: dict[str, int]
    refreshed_at: datetime | None

    def __getitem__(self, metric: str) -> int:
        return self.values.get(metric, 0)

    @property
    def score_queries_vs_target(self) -> float:
        return round(self["score_queries"] / SCORE_QUERIES_TARGET_PER_DAY, 4)


@dataclass(frozen=True, slots=True)
class DailyReport:
    start: date
    end: date
    days: list[DayFigures]

    def total(self, metric: str) -> int:
        return sum(d[metric] for d in self.days)

    @property
    def score_queries_per_day_vs_target(self) -> float:
        return round(self.total("score_queries") / len(self.days) / SCORE_QUERIES_TARGET_PER_DAY, 4)

    @property
    def credit_checks_annualized_vs_target(self) -> float:
        return round(self.total("credit_checks") / len(self.days) * 365 / CREDIT_CHECKS_TARGET_PER_YEAR, 6)


async def daily_report(*, start: date | None, end: date | None, now: datetime | None = None) -> DailyReport:
    """Figures for the city days `start`..`end` (inclusive; default: the last 7 days up to today).

    Days after today are left out. Only days whose stored figures may be stale are recounted.

    Raises:
        Unprocessable: `invalid_range` (start after end), `range_too_long` (more than 366 days),
            `range_in_future` (the range starts after today).
    """
    moment = now or _now()
    today = city_today(moment)
    last = end or today
    first = start or (last - timedelta(days=6))
    if first > today:
        raise Unprocessable("the range starts after today", code="range_in_future")
    if first > last:
        raise Unprocessable("`from` must not be after `to`", code="invalid_range")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise Unprocessable(f"a range covers at most {MAX_RANGE_DAYS} days", code="range_too_long")
    last = min(last, today)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    stored = await _stored(first, last)
    for day in days:
        if _needs_refresh(day, stored):
            counts = await refresh_daily_stats(day, now=moment)
            stored[day] = {metric: (value, moment) for metric, value in counts.items()}
    figures: list[DayFigures] = []
    for day in days:
        metrics = stored.get(day, {})
        values: dict[str, Any] = {m: v for m, (v, _) in metrics.items()}
        values.update(dict.fromkeys(PENDING_METRICS, 0))
        refreshed = max((u for _, u in metrics.values()), default=None)
        figures.append(DayFigures(day=day, values=values, refreshed_at=refreshed))
    return DailyReport(start=first, end=last, days=figures)


__all__ = ["COMPUTED_METRICS", "CREDIT_CHECKS_TARGET_PER_YEAR", "MAX_RANGE_DAYS", "PENDING_METRICS",
           "SCORE_QUERIES_TARGET_PER_DAY", "DailyReport", "DayFigures", "city_today", "daily_report", "day_bounds",
           "refresh_current_stats", "refresh_daily_stats"]
