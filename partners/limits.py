"""Per-partner rate limits and daily quotas, shared by every worker through the store (Redis).

Fixed windows: one second for the rate, one UTC day for the quota. The counters are plain store
counters rather than the `limits` library's, because the partner guard folds them, together with the
token revocation check, into ONE store round trip (`Store.probe_and_count`); with `limits` each window
was its own round trip, and the three calls cost about a third of the score-query hot path.
Counter keys name the window, not the limit, so changing a partner's quota mid-day keeps its count.

Partner settings (their limits and address allowlist) are cached per process for a few seconds;
suspension is enforced separately through the shared store (`partners.services.set_partner_status`), so it
applies on the very next request everywhere.
"""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime, timedelta

from cachetools import TTLCache

from core.errors import Forbidden, RateLimited
from core.store import Count, ProbeResult, Store
from partners.schemas import UsageView
from partners.services import PartnerRecord, find_partner

_DIRECTORY_TTL_SECONDS = 10.0
_DOMAIN = "limits"
_RATE_TTL_SECONDS = 2
_QUOTA_TTL_SECONDS = 26 * 3600


class PartnerDirectory:
    """A short-lived in-process cache of partner records (limits and allowlists change rarely)."""

    def __init__(self, ttl_seconds: float = _DIRECTORY_TTL_SECONDS) -> None:
        # "No such partner" is cached too, so unknown client ids do not reach the database on every request.
        self._entries: TTLCache[str, PartnerRecord | None] = TTLCache(10_000, ttl_seconds)

    async def get(self, client_id: str) -> PartnerRecord | None:
        if client_id in self._entries:
            return self._entries[client_id]
        record = await find_partner(client_id)
        self._entries[client_id] = record
        return record

    def forget(self, client_id: str) -> None:
        self._entries.pop(client_id, None)

    def clear(self) -> None:
        self._entries.clear()


def _day_end(now: float) -> int:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((day + timedelta(days=1)).timestamp())


class PartnerLimiter:
    """Enforces each partner's requests-per-second and requests-per-day."""

    def __init__(self, *, store: Store, default_per_second: int, default_per_day: int) -> None:
        self._store = store
        self._default_per_second = default_per_second
        self._default_per_day = default_per_day

    def _limits(self, partner: PartnerRecord) -> tuple[int, int]:
        return (partner.rate_limit_per_second or self._default_per_second,
                partner.daily_quota or self._default_per_day)

    @staticmethod
    def _keys(partner: PartnerRecord, now: float) -> tuple[str, str]:
        day = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
        return f"rate:{partner.client_id}:{int(now)}", f"quota:{partner.client_id}:{day}"

    def counters(self, partner: PartnerRecord, *, now: float | None = None) -> list[Count]:
        """The two counters one request bumps (for `Store.probe_and_count`)."""
        per_second, per_day = self._limits(partner)
        rate_key, quota_key = self._keys(partner, time.time() if now is None else now)
        return [Count(_DOMAIN, rate_key, per_second, _RATE_TTL_SECONDS),
                Count(_DOMAIN, quota_key, per_day, _QUOTA_TTL_SECONDS)]

    def enforce(self, partner: PartnerRecord, result: ProbeResult) -> None:
        """Raise `RateLimited` (with Retry-After) when the request went over the rate or the quota."""
        over = result.over_limit
        if over is None:
            return
        per_second, per_day = self._limits(partner)
        if len(result.counts) == 1:
            raise RateLimited(f"more than {per_second} requests per second", code="partner_rate_limited",
                              retry_after=1)
        raise RateLimited(f"daily quota of {per_day} requests used up", code="partner_quota_exhausted",
                          retry_after=max(1, _day_end(time.time()) - int(time.time())))

    async def hit(self, partner: PartnerRecord) -> None:
        """Count one request on its own (the partner guard folds this into its revocation check)."""
        self.enforce(partner, await self._store.probe_and_count(count=self.counters(partner)))

    async def usage(self, partner: PartnerRecord) -> UsageView:
        """The partner's current second and day: limits, what is left, when the day's count resets."""
        per_second, per_day = self._limits(partner)
        now = time.time()
        rate_key, quota_key = self._keys(partner, now)
        second = int(await self._store.get(_DOMAIN, rate_key) or 0)
        day = int(await self._store.get(_DOMAIN, quota_key) or 0)
        return UsageView(per_second_limit=per_second, per_second_remaining=max(0, per_second - second),
                     daily_quota=per_day, daily_used=min(day, per_day), daily_resets_at=_day_end(now))


def check_address(partner: PartnerRecord, address: str) -> None:
    """Refuse callers outside the partner's address allowlist (when it has one)."""
    if not partner.allowed_networks:
        return
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise Forbidden("the client address is not allowed for this partner", code="address_not_allowed") from None
    if not any(ip in network for network in partner.allowed_networks):
        raise Forbidden("the client address is not allowed for this partner", code="address_not_allowed")
