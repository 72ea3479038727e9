"""Per-partner rate limits and daily quotas, shared by every worker through Redis.

The `limits` library keeps the counters (fixed windows: one second for the rate, one UTC day for the
quota) in Redis when configured, else in process memory. Partner settings (their limits and address
allowlist) are cached per process for a few seconds; suspension is enforced separately through the
shared store, so it applies on the very next request everywhere.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from limits import RateLimitItemPerDay, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from api.errors import Forbidden, RateLimited
from api.store import StoreUnavailable
from partners.services import PartnerRecord, find_partner

_DIRECTORY_TTL_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Usage:
    per_second_limit: int
    per_second_remaining: int
    daily_quota: int
    daily_used: int
    daily_resets_at: int


class PartnerDirectory:
    """A short-lived in-process cache of partner records (limits and allowlists change rarely)."""

    def __init__(self, ttl_seconds: float = _DIRECTORY_TTL_SECONDS) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, PartnerRecord | None]] = {}

    async def get(self, client_id: str) -> PartnerRecord | None:
        cached = self._entries.get(client_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await find_partner(client_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[client_id] = (now + self._ttl, record)
        return record

    def forget(self, client_id: str) -> None:
        self._entries.pop(client_id, None)


class PartnerLimiter:
    """Enforces each partner's requests-per-second and requests-per-day."""

    def __init__(self, *, redis_url: str | None, namespace: str, default_per_second: int,
                 default_per_day: int) -> None:
        storage: Storage
        if redis_url:
            uri = "async+" + redis_url if redis_url.startswith(("redis://", "rediss://")) else redis_url
            storage = RedisStorage(uri, implementation="redispy", key_prefix=f"{namespace}:limits",
                                   wrap_exceptions=True)
        else:
            storage = MemoryStorage()
        self._limiter = FixedWindowRateLimiter(storage)
        self._default_per_second = default_per_second
        self._default_per_day = default_per_day

    def _items(self, partner: PartnerRecord) -> tuple[RateLimitItemPerSecond, RateLimitItemPerDay]:
        per_second = partner.rate_limit_per_second or self._default_per_second
        per_day = partner.daily_quota or self._default_per_day
        return RateLimitItemPerSecond(per_second), RateLimitItemPerDay(per_day)

    async def hit(self, partner: PartnerRecord) -> None:
        """Count one request; raise `RateLimited` (with Retry-After) when over the rate or the quota."""
        rate, quota = self._items(partner)
        try:
            if not await self._limiter.hit(rate, "rate", partner.client_id):
                raise RateLimited(f"more than {rate.amount} requests per second", code="partner_rate_limited",
                                  retry_after=1)
            if not await self._limiter.hit(quota, "quota", partner.client_id):
                stats = await self._limiter.get_window_stats(quota, "quota", partner.client_id)
                raise RateLimited(f"daily quota of {quota.amount} requests used up", code="partner_quota_exhausted",
                                  retry_after=max(1, int(stats.reset_time - time.time())))
        except StorageError as exc:
            raise StoreUnavailable("rate limit storage unavailable") from exc

    async def usage(self, partner: PartnerRecord) -> Usage:
        rate, quota = self._items(partner)
        try:
            second = await self._limiter.get_window_stats(rate, "rate", partner.client_id)
            day = await self._limiter.get_window_stats(quota, "quota", partner.client_id)
        except StorageError as exc:
            raise StoreUnavailable("rate limit storage unavailable") from exc
        return Usage(per_second_limit=rate.amount, per_second_remaining=second.remaining, daily_quota=quota.amount,
                     daily_used=quota.amount - day.remaining, daily_resets_at=int(day.reset_time))


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
