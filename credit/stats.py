"""Policy indicators per day (DESIGN §5): score queries, credit checks, authorizations; redemptions, credit
orders, demands and approvals (contributed by scenarios and lending through `core.daily_counts`, so this
module imports neither); and the plans' rates: 联合奖惩 feedback (measures applied ÷ checks that returned a
measure), credit repair (repairs approved ÷ requested) and 双公示-style timeliness (records ingested within
7 working days of their decision date ÷ records ingested).

`refresh_daily_stats(day)` counts one day with a handful of COUNT queries over indexed time columns and
upserts one `daily_stats` row per metric; reads only ever look at `daily_stats`. A day's numbers are
final once they were refreshed after the day ended (every count is by event time), so a read refreshes
only days that are still open (today), never refreshed, or last refreshed before their end; the
background job keeps today and yesterday fresh. Days are calendar days in the city's time zone.

Rates are flows of the same day (measures applied that day ÷ checks with measures answered that day, and
so on), and over a range the ratio of the totals. A figure that cannot be computed (nothing to divide by,
a metric no domain contributes, a decision date in a year the working-day calendar does not know) is
reported as null with a reason, never as 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from piccolo.custom_types import Combinable
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.query.mixins import OnConflictAction

from core import clock
from core.calendar import CalendarYearUnknown, WorkingCalendar
from core.clock import CITY_TZ
from core.daily_counts import DailyCountRegistry
from core.db import as_utc
from core.errors import Unprocessable
from credit.partner_schemas import DailyStatsReport, DayStats, Rate, StatsTargets, StatsTotals
from credit.tables import Authorization, CreditCheck, CreditRecord, DailyStat, LedgerEntry, Repair

SCORE_QUERIES_TARGET_PER_DAY = 3_000
CREDIT_CHECKS_TARGET_PER_YEAR = 1_500_000
MAX_RANGE_DAYS = 366
TIMEZONE_NAME = "Asia/Shanghai"

SCORE_ACTIONS = ("score.query", "score.check")
COMPUTED_METRICS = ("score_queries", "credit_checks", "authorizations_granted", "authorizations_active",
                    "authorized_citizens", "checks_with_measures", "measures_applied", "repairs_requested",
                    "repairs_approved", "records_ingested", "records_timely")
"""What this module counts itself (`records_timely` is left out of a day whose count needs a year the
working-day calendar does not know)."""
CONTRIBUTED_METRICS = ("redemptions", "credit_orders", "demands", "approvals")
"""Counted by other domains through the `DailyCountRegistry` the composition wires."""
TIMELY_WORKING_DAYS = 7
"""双公示: a record is timely when it reaches the registry within 7 working days of its decision date."""
CALENDAR_UNKNOWN = "calendar_year_unknown"
NOT_COUNTED = "not_counted"


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


def earliest_timely_decision_day(day: date, *, calendar: WorkingCalendar,
                                 working_days: int = TIMELY_WORKING_DAYS) -> date:
    """The earliest decision date a record ingested on `day` may have and still be timely.

    A record decided on `d` is timely on `day` when `day` is at most the `working_days`-th working day
    after `d`, i.e. fewer than `working_days` working days lie strictly between `d` and `day`. Only days
    before `day` are looked at, so the count never needs a future year.

    Raises:
        CalendarYearUnknown: a day to look at lies in a year the calendar does not know.
    """
    candidate, working_between = day - timedelta(days=1), 0
    while True:
        # Moving the decision date one day earlier puts `candidate` between it and `day`.
        working_between += calendar.is_working_day(candidate)
        if working_between >= working_days:
            return candidate
        candidate -= timedelta(days=1)


_CHECKS_WITH_MEASURES_PG = ("SELECT count(*) AS n FROM credit_checks WHERE created_at >= {} AND created_at < {} "
                            "AND json_array_length(result -> 'measures') > 0")
_CHECKS_WITH_MEASURES_SQLITE = ("SELECT count(*) AS n FROM credit_checks WHERE created_at >= {} AND created_at < {} "
                                "AND json_array_length(result, '$.measures') > 0")


async def _checks_with_measures(start: datetime, end: datetime) -> int:
    """Checks answered in [start, end) that returned at least one measure (the ones feedback can follow)."""
    # The answer is stored as JSON; both engines can measure its `measures` array, each in its own words.
    sql = _CHECKS_WITH_MEASURES_SQLITE if isinstance(CreditCheck._meta.db, SQLiteEngine) else _CHECKS_WITH_MEASURES_PG
    rows = await CreditCheck.raw(sql, start, end)
    return int(rows[0]["n"])


async def _records_timely(day: date, start: datetime, end: datetime, *, calendar: WorkingCalendar) -> int | None:
    """Records ingested on `day` within TIMELY_WORKING_DAYS of their decision date (None: not computable)."""
    try:
        earliest = earliest_timely_decision_day(day, calendar=calendar)
    except CalendarYearUnknown:
        return None
    decided_from = datetime.combine(earliest, time(0), tzinfo=CITY_TZ).astimezone(UTC)
    timely: int = await CreditRecord.count().where(
        (CreditRecord.created_at >= start) & (CreditRecord.created_at < end)
        & (CreditRecord.occurred_at >= decided_from))
    return timely


async def _count_day(day: date, *, now: datetime, counters: DailyCountRegistry, calendar: WorkingCalendar
                     ) -> dict[str, int]:
    start, end = day_bounds(day)
    # "End of day" for a day still running is now: an authorization counts if it is in force at the time.
    state_at = min(end, now)
    counts = {
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
        "checks_with_measures": await _checks_with_measures(start, end),
        "measures_applied": await CreditCheck.count().where(
            CreditCheck.applied_measure.is_not_null() & (CreditCheck.feedback_at >= start)
            & (CreditCheck.feedback_at < end)),
        "repairs_requested": await Repair.count().where((Repair.created_at >= start) & (Repair.created_at < end)),
        "repairs_approved": await Repair.count().where(
            (Repair.status == "approved") & (Repair.decided_at >= start) & (Repair.decided_at < end)),
        "records_ingested": await CreditRecord.count().where(
            (CreditRecord.created_at >= start) & (CreditRecord.created_at < end)),
    }
    timely = await _records_timely(day, start, end, calendar=calendar)
    if timely is not None:
        counts["records_timely"] = timely
    counts.update(await counters.count(start, end))
    return counts


async def refresh_daily_stats(day: date, *, counters: DailyCountRegistry, calendar: WorkingCalendar,
                              now: datetime | None = None) -> dict[str, int]:
    """Count `day` (a city calendar day) and upsert its rows in `daily_stats`; returns the counts."""
    moment = now or clock.now()
    counts = await _count_day(day, now=moment, counters=counters, calendar=calendar)
    await DailyStat.insert(*(DailyStat(day=day, metric=metric, value=value, updated_at=moment)
                             for metric, value in counts.items())).on_conflict(
        target=(DailyStat.day, DailyStat.metric), action=OnConflictAction.do_update,
        values=[DailyStat.value, DailyStat.updated_at])
    return counts


async def refresh_current_stats(*, counters: DailyCountRegistry, calendar: WorkingCalendar,
                                now: datetime | None = None) -> int:
    """Background pass: refresh today, and yesterday until it has been refreshed after it ended."""
    moment = now or clock.now()
    today = clock.city_today(moment)
    days = [today]
    yesterday = today - timedelta(days=1)
    if _needs_refresh(yesterday, await _stored(yesterday, yesterday), expected=_expected(counters)):
        days.append(yesterday)
    for day in days:
        await refresh_daily_stats(day, counters=counters, calendar=calendar, now=moment)
    return len(days)


def _expected(counters: DailyCountRegistry) -> frozenset[str]:
    return frozenset(COMPUTED_METRICS) | frozenset(counters.metrics)


async def _stored(start: date, end: date) -> dict[date, dict[str, tuple[int, datetime]]]:
    rows = await DailyStat.select(DailyStat.day, DailyStat.metric, DailyStat.value, DailyStat.updated_at).where(
        (DailyStat.day >= start) & (DailyStat.day <= end))
    stored: dict[date, dict[str, tuple[int, datetime]]] = defaultdict(dict)
    for r in rows:
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
        stored[day][r["metric"]] = (int(r["value"]), as_utc(r["updated_at"]))
    return stored


def _needs_refresh(day: date, stored: dict[date, dict[str, tuple[int, datetime]]], *,
                   expected: frozenset[str]) -> bool:
    """Whether `day` must be counted (again): a metric is missing (new since the day was counted, or
    not computable then) or the day was last counted before it ended."""
    metrics = stored.get(day, {})
    if expected - metrics.keys():
        return True
    _, end = day_bounds(day)
    return min(updated for _, updated in metrics.values()) < end


@dataclass(frozen=True, slots=True)
class Ratio:
    """A rate with what it is made of; `value` is None (and `unavailable` says why) when not computable."""

    value: float | None
    numerator: int | None
    denominator: int | None
    unavailable: str | None = None


def ratio(numerator: int | None, denominator: int | None, *, missing: str, empty: str) -> Ratio:
    """`numerator / denominator` (4 decimals); `missing` names why when a part is unknown, `empty` when the
    denominator is 0."""
    if numerator is None or denominator is None:
        return Ratio(value=None, numerator=numerator, denominator=denominator, unavailable=missing)
    if denominator == 0:
        return Ratio(value=None, numerator=numerator, denominator=0, unavailable=empty)
    return Ratio(value=round(numerator / denominator, 4), numerator=numerator, denominator=denominator)


def _rates(get: Callable[[str], int | None]) -> dict[str, Ratio]:
    return {
        "feedback_rate": ratio(get("measures_applied"), get("checks_with_measures"), missing=NOT_COUNTED,
                               empty="no_check_returned_a_measure"),
        "repair_rate": ratio(get("repairs_approved"), get("repairs_requested"), missing=NOT_COUNTED,
                             empty="no_repair_requested"),
        "timeliness_rate": ratio(get("records_timely"), get("records_ingested"), missing=CALENDAR_UNKNOWN,
                                 empty="no_record_ingested"),
    }


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    values: dict[str, int]
    refreshed_at: datetime | None

    def __getitem__(self, metric: str) -> int:
        return self.values.get(metric, 0)

    def get(self, metric: str) -> int | None:
        """The figure, or None when it was not counted (no contributor, or not computable)."""
        return self.values.get(metric)

    @property
    def score_queries_vs_target(self) -> float:
        return round(self["score_queries"] / SCORE_QUERIES_TARGET_PER_DAY, 4)

    @property
    def rates(self) -> dict[str, Ratio]:
        return _rates(self.get)


@dataclass(frozen=True, slots=True)
class DailyReport:
    start: date
    end: date
    days: list[DayFigures]

    def total(self, metric: str) -> int:
        return sum(d[metric] for d in self.days)

    def known_total(self, metric: str) -> int | None:
        """The total over the range, or None when any day lacks the figure."""
        values = [d.get(metric) for d in self.days]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    @property
    def rates(self) -> dict[str, Ratio]:
        return _rates(self.known_total)

    @property
    def score_queries_per_day_vs_target(self) -> float:
        return round(self.total("score_queries") / len(self.days) / SCORE_QUERIES_TARGET_PER_DAY, 4)

    @property
    def credit_checks_annualized_vs_target(self) -> float:
        return round(self.total("credit_checks") / len(self.days) * 365 / CREDIT_CHECKS_TARGET_PER_YEAR, 6)


async def daily_report(*, start: date | None, end: date | None, counters: DailyCountRegistry,
                       calendar: WorkingCalendar, now: datetime | None = None) -> DailyReport:
    """Figures for the city days `start`..`end` (inclusive; default: the last 7 days up to today).

    Days after today are left out. Only days whose stored figures may be stale are recounted.

    Raises:
        Unprocessable: `invalid_range` (start after end), `range_too_long` (more than 366 days),
            `range_in_future` (the range starts after today).
    """
    moment = now or clock.now()
    today = clock.city_today(moment)
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
    expected = _expected(counters)
    for day in days:
        if _needs_refresh(day, stored, expected=expected):
            counts = await refresh_daily_stats(day, counters=counters, calendar=calendar, now=moment)
            stored[day] = {metric: (value, moment) for metric, value in counts.items()}
    figures: list[DayFigures] = []
    for day in days:
        metrics = stored.get(day, {})
        # Only what is counted now: a metric no longer contributed is not shown from old rows.
        values: dict[str, int] = {m: v for m, (v, _) in metrics.items() if m in expected}
        refreshed = max((u for _, u in metrics.values()), default=None)
        figures.append(DayFigures(day=day, values=values, refreshed_at=refreshed))
    return DailyReport(start=first, end=last, days=figures)



async def daily_stats_report(*, start: date | None, end: date | None, counters: DailyCountRegistry,
                             calendar: WorkingCalendar, now: datetime | None = None) -> DailyStatsReport:
    """`daily_report` as operators read it (`GET /v1/admin/stats/daily`): each day, the totals and the targets."""
    report = await daily_report(start=start, end=end, counters=counters, calendar=calendar, now=now)
    return DailyStatsReport(
        from_=report.start, to=report.end, timezone=TIMEZONE_NAME,
        targets=StatsTargets(score_queries_per_day=SCORE_QUERIES_TARGET_PER_DAY,
                             credit_checks_per_year=CREDIT_CHECKS_TARGET_PER_YEAR),
        days=[_day_stats(d) for d in report.days],
        totals=StatsTotals(
            score_queries=report.total("score_queries"), credit_checks=report.total("credit_checks"),
            authorizations_granted=report.total("authorizations_granted"),
            score_queries_per_day_vs_target=report.score_queries_per_day_vs_target,
            credit_checks_annualized_vs_target=report.credit_checks_annualized_vs_target,
            redemptions=report.known_total("redemptions"), credit_orders=report.known_total("credit_orders"),
            demands=report.known_total("demands"), approvals=report.known_total("approvals"),
            **_wire_rates(report.rates)))


def _wire_rates(rates: dict[str, Ratio]) -> dict[str, Rate]:
    return {name: Rate(value=r.value, numerator=r.numerator, denominator=r.denominator, unavailable=r.unavailable)
            for name, r in rates.items()}


def _day_stats(d: DayFigures) -> DayStats:
    return DayStats(
        day=d.day, score_queries=d["score_queries"], score_queries_vs_target=d.score_queries_vs_target,
        credit_checks=d["credit_checks"], authorizations_granted=d["authorizations_granted"],
        authorizations_active=d["authorizations_active"], authorized_citizens=d["authorized_citizens"],
        redemptions=d.get("redemptions"), credit_orders=d.get("credit_orders"), demands=d.get("demands"),
        approvals=d.get("approvals"), checks_with_measures=d["checks_with_measures"],
        measures_applied=d["measures_applied"], repairs_requested=d["repairs_requested"],
        repairs_approved=d["repairs_approved"], records_ingested=d["records_ingested"],
        records_timely=d.get("records_timely"), refreshed_at=d.refreshed_at, **_wire_rates(d.rates))

__all__ = ["COMPUTED_METRICS", "CONTRIBUTED_METRICS", "CREDIT_CHECKS_TARGET_PER_YEAR", "MAX_RANGE_DAYS",
           "SCORE_QUERIES_TARGET_PER_DAY", "TIMELY_WORKING_DAYS", "DailyReport", "DayFigures", "Ratio",
           "daily_report", "daily_stats_report", "day_bounds", "earliest_timely_decision_day", "ratio",
           "refresh_current_stats", "refresh_daily_stats"]
