"""The one working-day calendar of the service: every deadline counted in working days goes through here.

China's working days are not simply Monday to Friday: the State Council's yearly notice moves days
around statutory holidays (Spring Festival, National Day, ...) and makes some Saturdays and Sundays
working days (调休). Those come from the maintained `chinese-calendar` package (`chinese_calendar`), which
knows the years whose notice was out when it was released. For a year it does not know yet, operators
configure the notice's days themselves (`XINYI_CALENDAR_HOLIDAYS`, `XINYI_CALENDAR_WORKDAYS`); an
override also wins over the package for the days it names (a local holiday, a correction).

A year neither knows is refused with `CalendarYearUnknown` (503 `calendar_year_unknown`), never guessed
as plain Monday to Friday: a deadline counted that way would be wrong around every holiday. The
background job logs an error ahead of time when the coming weeks fall in such a year.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import chinese_calendar

from core.clock import CITY_TZ  # working days are counted on the city's calendar
from core.errors import ServiceUnavailable

PACKAGE_YEARS: frozenset[int] = frozenset(day.year for day in (*chinese_calendar.holidays,
                                                               *chinese_calendar.workdays))
"""Years the installed `chinese-calendar` release has the State Council's notice for."""


class CalendarYearUnknown(ServiceUnavailable):
    """A deadline needs a year whose holidays neither the package nor the operators' overrides know."""

    code, title = "calendar_year_unknown", "The working-day calendar does not cover this year yet"

    def __init__(self, year: int) -> None:
        super().__init__(f"the working-day calendar does not know the holidays of {year}: the operators must "
                         f"configure them (XINYI_CALENDAR_HOLIDAYS and XINYI_CALENDAR_WORKDAYS) or upgrade "
                         f"chinesecalendar")
        self.year = year


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Statutory holidays and make-up working days: the package's, overridden by the operators' days.

    A year counts as known to the overrides once any override day falls in it: operators enter the whole
    notice of a year (its days off and its make-up working days), not a part of it.
    """

    holidays: frozenset[date] = frozenset()
    """Operator-configured days off (on top of, or instead of, the package's view of that day)."""
    workdays: frozenset[date] = frozenset()
    """Operator-configured working days (make-up Saturdays and Sundays, 调休)."""
    override_years: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        if both := self.holidays & self.workdays:
            raise ValueError(f"a day cannot be both a holiday and a working day: {min(both).isoformat()}")
        object.__setattr__(self, "override_years", frozenset(d.year for d in self.holidays | self.workdays))

    def knows(self, year: int) -> bool:
        return year in PACKAGE_YEARS or year in self.override_years

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is a working day.

        Raises:
            CalendarYearUnknown: neither the package nor the overrides know `day`'s year.
        """
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if day.year in PACKAGE_YEARS:
            return bool(chinese_calendar.is_workday(day))
        if day.year in self.override_years:
            return day.weekday() < 5  # the operators listed this year's exceptions; the rest is the normal week
        raise CalendarYearUnknown(day.year)

    def add_working_days(self, start: date, count: int, *, last_day: date | None = None) -> date:
        """The `count`-th working day after `start` (which itself never counts), or `last_day` if that
        comes first.

        Raises:
            ValueError: `count` is not positive.
            CalendarYearUnknown: a day to count lies in a year the calendar does not know.
        """
        if count < 1:
            raise ValueError("working_days must be at least 1")
        day, counted = start, 0
        while counted < count and (last_day is None or day < last_day):
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day

    def deadline(self, at: datetime, *, working_days: int, at_most: timedelta | None = None) -> datetime:
        """End (local midnight, returned in UTC) of the `working_days`-th working day after the city day of
        `at`; never later than `at + at_most` when given.

        Raises:
            ValueError: `working_days` is not positive.
            CalendarYearUnknown: the count runs into a year the calendar does not know.
        """
        moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        ceiling = moment + at_most if at_most is not None else None
        day = self.add_working_days(moment.astimezone(CITY_TZ).date(), working_days,
                                    last_day=ceiling.astimezone(CITY_TZ).date() if ceiling is not None else None)
        end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=CITY_TZ).astimezone(UTC)
        return min(end_of_day, ceiling) if ceiling is not None else end_of_day

    def unknown_years(self, start: date, days: int) -> list[int]:
        """Years of the `days` days from `start` on that the calendar does not know (for early warnings)."""
        years = {(start + timedelta(days=n)).year for n in range(days + 1)}
        return sorted(y for y in years if not self.knows(y))


@functools.lru_cache(maxsize=8)
def _calendar(holidays: frozenset[date], workdays: frozenset[date]) -> WorkingCalendar:
    return WorkingCalendar(holidays=holidays, workdays=workdays)


def working_calendar(*, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> WorkingCalendar:
    """The calendar with these overrides (built once per distinct configuration)."""
    return _calendar(frozenset(holidays), frozenset(workdays))


__all__ = ["PACKAGE_YEARS", "CalendarYearUnknown", "WorkingCalendar", "working_calendar"]
