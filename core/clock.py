"""The city's clock: what time it is (UTC, timezone-aware) and what day it is in the city.

One place instead of a `_now()` in every module, so every timestamp the service writes is aware UTC, and every
"today" (daily statistics, benefit periods, deadlines) is the city's day, whatever the server's time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

CITY_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
"""The city's time zone: China has one offset and no DST, so a fixed offset needs no tz database."""


def now() -> datetime:
    """The current moment, timezone-aware UTC (what the database stores)."""
    return datetime.now(UTC)


def city_today(at: datetime | None = None) -> date:
    """The city's calendar day at `at` (default: now); a naive `at` is read as UTC, as the database hands it."""
    moment = now() if at is None else at if at.tzinfo else at.replace(tzinfo=UTC)
    return moment.astimezone(CITY_TZ).date()


__all__ = ["CITY_TZ", "city_today", "now"]
