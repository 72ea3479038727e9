"""The service's one working-day calendar: statutory holidays and make-up days from chinese-calendar,
operator overrides for years it does not know, and a refusal (never a guess) for a year neither knows."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from api.background import check_calendar_ahead
from core.calendar import PACKAGE_YEARS, CalendarYearUnknown, working_calendar
from core.clock import CITY_TZ
from core.errors import ConfigurationError
from core.settings import Settings

FIRST_UNKNOWN_YEAR = max(PACKAGE_YEARS) + 1


def _due(calendar, at: datetime, working_days: int) -> datetime:  # type: ignore[no-untyped-def]
    return calendar.deadline(at, working_days=working_days).astimezone(CITY_TZ)  # type: ignore[no-any-return]


def test_statutory_holidays_and_make_up_days_of_2025_and_2026() -> None:
    calendar = working_calendar()
    assert calendar.knows(2025)
    assert calendar.knows(2026)
    # 调休: make-up working days on a weekend, and weekday holidays.
    for make_up in (date(2025, 1, 26), date(2025, 2, 8), date(2025, 9, 28), date(2025, 10, 11),
                    date(2026, 2, 14), date(2026, 2, 28), date(2026, 9, 20), date(2026, 10, 10)):
        assert make_up.weekday() >= 5, make_up
        assert calendar.is_working_day(make_up), make_up
    for day_off in (date(2025, 1, 28), date(2025, 2, 4), date(2025, 10, 8), date(2026, 2, 16), date(2026, 2, 23),
                    date(2026, 10, 1), date(2026, 10, 7)):
        assert day_off.weekday() < 5, day_off
        assert not calendar.is_working_day(day_off), day_off
    # Spring Festival 2026, 5 working days from Fri 13 Feb: Sat 14, then Tue 24 .. Fri 27.
    assert _due(calendar, datetime(2026, 2, 13, 9, tzinfo=CITY_TZ), 5) == datetime(2026, 2, 28, tzinfo=CITY_TZ)
    # National Day 2026, 3 working days from Wed 30 Sep: Thu 8, Fri 9, Sat 10 Oct.
    assert _due(calendar, datetime(2026, 9, 30, 9, tzinfo=CITY_TZ), 3) == datetime(2026, 10, 11, tzinfo=CITY_TZ)
    # National Day 2025, 5 working days from Fri 26 Sep: Sun 28, Mon 29, Tue 30 Sep, Thu 9, Fri 10 Oct.
    assert _due(calendar, datetime(2025, 9, 26, 9, tzinfo=CITY_TZ), 5) == datetime(2025, 10, 11, tzinfo=CITY_TZ)


def test_a_deadline_in_a_year_nobody_knows_is_refused_not_guessed() -> None:
    calendar = working_calendar()
    late_december = datetime(FIRST_UNKNOWN_YEAR - 1, 12, 28, 10, tzinfo=CITY_TZ)
    with pytest.raises(CalendarYearUnknown) as refused:
        calendar.deadline(late_december, working_days=5)
    assert refused.value.year == FIRST_UNKNOWN_YEAR
    assert (refused.value.status, refused.value.code) == (503, "calendar_year_unknown")
    assert "XINYI_CALENDAR_HOLIDAYS" in refused.value.detail
    with pytest.raises(CalendarYearUnknown):
        calendar.is_working_day(date(FIRST_UNKNOWN_YEAR, 3, 3))


def test_operator_overrides_make_a_new_year_known_and_win_over_the_package() -> None:
    year = FIRST_UNKNOWN_YEAR
    new_year_week = [date(year, 2, 5) + timedelta(days=n) for n in range(7)]  # a (made-up) Spring Festival
    make_up_sunday = next(d for d in (date(year, 2, 14) + timedelta(days=n) for n in range(7)) if d.weekday() == 6)
    calendar = working_calendar(holidays=[date(year, 1, 1), *new_year_week], workdays=[make_up_sunday])
    assert calendar.knows(year)
    assert calendar.is_working_day(make_up_sunday)
    assert not any(calendar.is_working_day(d) for d in new_year_week)
    assert calendar.is_working_day(date(year, 3, 2)) is (date(year, 3, 2).weekday() < 5)  # the rest: the normal week
    start = datetime.combine(date(year, 2, 4), datetime.min.time(), tzinfo=CITY_TZ)
    expected, counted, day = None, 0, date(year, 2, 4)
    while counted < 3:
        day += timedelta(days=1)
        if (day.weekday() < 5 and day not in new_year_week) or day == make_up_sunday:
            counted += 1
    expected = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=CITY_TZ)
    assert _due(calendar, start, 3) == expected
    # An override also corrects a known year: a local day off on an ordinary Monday.
    local = working_calendar(holidays=[date(2026, 11, 30)])
    assert not local.is_working_day(date(2026, 11, 30))
    assert working_calendar().is_working_day(date(2026, 11, 30))
    with pytest.raises(ValueError, match="both"):
        working_calendar(holidays=[date(year, 5, 1)], workdays=[date(year, 5, 1)])


def test_overrides_are_configured_in_the_environment() -> None:
    settings = Settings.from_env({"XINYI_CALENDAR_HOLIDAYS": f"{FIRST_UNKNOWN_YEAR}-01-01, "
                                                             f"{FIRST_UNKNOWN_YEAR}-02-05..{FIRST_UNKNOWN_YEAR}-02-07",
                                  "XINYI_CALENDAR_WORKDAYS": f"{FIRST_UNKNOWN_YEAR}-02-14"})
    assert settings.calendar_holidays == (date(FIRST_UNKNOWN_YEAR, 1, 1), date(FIRST_UNKNOWN_YEAR, 2, 5),
                                          date(FIRST_UNKNOWN_YEAR, 2, 6), date(FIRST_UNKNOWN_YEAR, 2, 7))
    assert settings.calendar.knows(FIRST_UNKNOWN_YEAR)
    assert settings.calendar.is_working_day(date(FIRST_UNKNOWN_YEAR, 2, 14))
    assert not Settings.from_env({}).calendar.knows(FIRST_UNKNOWN_YEAR)
    for bad in ("2027-02-30", "tomorrow", "2027-02-10..2027-02-01", "2027-01-01..2028-06-01"):
        with pytest.raises(ConfigurationError, match="XINYI_CALENDAR_HOLIDAYS"):
            Settings.from_env({"XINYI_CALENDAR_HOLIDAYS": bad})
    with pytest.raises(ConfigurationError, match="both"):
        Settings.from_env({"XINYI_CALENDAR_HOLIDAYS": "2027-10-01", "XINYI_CALENDAR_WORKDAYS": "2027-10-01"})


def test_the_background_job_logs_an_error_weeks_before_the_calendar_runs_out(caplog) -> None:  # type: ignore[no-untyped-def]
    early_december = datetime(FIRST_UNKNOWN_YEAR - 1, 12, 1, 2, tzinfo=UTC)
    with caplog.at_level(logging.ERROR, logger="xinyi.background"):
        assert check_calendar_ahead(working_calendar(), now=early_december) == [FIRST_UNKNOWN_YEAR]
    assert any(str(FIRST_UNKNOWN_YEAR) in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    covered = working_calendar(holidays=[date(FIRST_UNKNOWN_YEAR, 1, 1)])
    assert check_calendar_ahead(covered, now=early_december) == []
    assert check_calendar_ahead(working_calendar(), now=datetime(FIRST_UNKNOWN_YEAR - 1, 6, 1, tzinfo=UTC)) == []
