"""The shared key-value store: Redis when `REDIS_URL` is set, otherwise an in-process store.

One small interface used by every domain: get/set with TTL, set-if-absent, an atomic counter with a
limit, delete, and an "any of these keys exists" probe (one round trip for revocation checks).
Keys are namespaced as `<namespace>:<domain>:<key>` so domains never collide.

When Redis is configured and unreachable, operations raise `StoreUnavailable` (mapped to 503): a
check that needs the store fails closed, it is never silently skipped.

The store is a cache of what matters, never its only copy. Revocation markers (tokens, partner suspensions,
ended authorizations) are written to PostgreSQL too, and a store that lost its data (a Redis restart without
persistence, a failover to an empty replica, a flush) is detected and seeded again from there before any
check trusts it: seeding ends by writing an *epoch* key, which `probe_and_count` reads in the same atomic
round trip as the markers it probes. No epoch means "emptied": the caller seeds the store again (one process
at a time, under a lock in the store; the others wait for the new epoch) from the registered
`MarkerSource`s, and only then probes. A new epoch tells each process to drop the in-memory views it built
on the old store's data (`on_reseed` listeners); the probe that saw it says so (`ProbeResult.reseeded`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis import asyncio as redis_asyncio
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig


class StoreUnavailable(Exception):
    """The store could not be reached; callers must fail closed."""


@dataclass(frozen=True, slots=True)
class CounterResult:
    """Outcome of `incr_with_limit`: the value after incrementing and whether it is within the limit."""

    value: int
    allowed: bool
    ttl_seconds: int


@dataclass(frozen=True, slots=True)
class Count:
    """A counter for `probe_and_count` to bump: `key` in `domain`, allowed up to `limit`, reset after `ttl_seconds`."""

    domain: str
    key: str
    limit: int
    ttl_seconds: int


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Outcome of `probe_and_count`.

    `found`: one of the probed keys exists, and then nothing was counted or read. `counts`: the counters
    bumped, in order; counting stops after the first one over its limit, so a refused request does not
    also use up the later (longer) windows. `values`: the keys read, in order (None when absent).
    """

    found: bool
    counts: tuple[CounterResult, ...]
    values: tuple[bytes | None, ...]
    # This process had not seen the store's current epoch before this call: the store lost its data and
    # was seeded again since (or this is the process's first call). What it keeps in memory is stale.
    reseeded: bool = False

    @property
    def over_limit(self) -> CounterResult | None:
        return next((c for c in self.counts if not c.allowed), None)


@dataclass(frozen=True, slots=True)
class Marker:
    """A key that seeding writes back into an emptied store: `domain`, `key`, living `ttl_seconds` (None: until
    deleted)."""

    domain: str
    key: str
    ttl_seconds: int | None
    value: bytes = b"1"


# Reads the source of truth (the database) and returns the markers that must be in the store.
MarkerSource = Callable[[], Awaitable[Iterable[Marker]]]

_SEED_DOMAIN = "store"
_EPOCH_KEY = "epoch"
_SEED_LOCK_KEY = "seeding"
_SEED_LOCK_SECONDS = 15  # a seeder that died frees the lock after this long
_SEED_WAIT_SECONDS = 10.0  # how long a process waits for another one's seeding before answering 503
_SEED_POLL_SECONDS = 0.02
_SEED_CHUNK = 1000


class _Seeding:
    """What both stores share about seeding: the marker sources, the reseed listeners, the epoch last seen."""

    def __init__(self) -> None:
        self.sources: list[MarkerSource] = []
        self.listeners: list[Callable[[], None]] = []
        self.seen: bytes | None = None
        self.lock = asyncio.Lock()

    def observe(self, epoch: bytes) -> bool:
        """Note the epoch a probe read; True (after telling the listeners) when it is not the one last seen."""
        if epoch == self.seen:
            return False
        self.seen = epoch
        for listener in self.listeners:
            listener()
        return True

    async def markers(self) -> list[Marker]:
        found: list[Marker] = []
        for source in self.sources:
            found.extend(m for m in await source() if m.ttl_seconds is None or m.ttl_seconds > 0)
        return found


class Store(Protocol):
    # True when every process sees the same data (Redis); the in-process store is one process's own.
    shared: bool

    async def get(self, domain: str, key: str) -> bytes | None: ...

    async def set(self, domain: str, key: str, value: bytes, *, ttl_seconds: int | None = None) -> None: ...

    async def set_if_absent(self, domain: str, key: str, value: bytes, *, ttl_seconds: int) -> bool: ...

    async def incr_with_limit(self, domain: str, key: str, *, limit: int, ttl_seconds: int) -> CounterResult: ...

    async def delete(self, domain: str, key: str) -> bool: ...

    async def delete_many(self, domain: str, keys: Sequence[str]) -> None:
        """Delete many keys with few round trips (bulk cache invalidation)."""
        ...

    async def take(self, domain: str, key: str) -> bytes | None:
        """Return the value and delete it in one atomic step (single-use codes)."""
        ...

    async def exists_any(self, domain: str, keys: list[str]) -> bool: ...

    async def probe_and_count(self, *, probe: Sequence[tuple[str, str]] = (), count: Sequence[Count] = (),
                              read: Sequence[tuple[str, str]] = ()) -> ProbeResult:
        """In one atomic round trip: stop if any `probe` key exists, else bump each `count` counter and
        read each `read` key. Hot paths use it to fold revocation checks, rate limits, usage caps and
        cache reads into a single call."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    def add_marker_source(self, source: MarkerSource) -> None:
        """Register what seeding an emptied store writes back (read from the database)."""
        ...

    def on_reseed(self, listener: Callable[[], None]) -> None:
        """Call `listener` when this process sees that the store was emptied and seeded again (drop caches)."""
        ...


class MemoryStore:
    """In-process store for the embedded single-process mode and unit tests."""

    shared = False

    def __init__(self, namespace: str = "xinyi") -> None:
        self._namespace = namespace
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._now = time.monotonic
        self._seeding = _Seeding()

    def add_marker_source(self, source: MarkerSource) -> None:
        self._seeding.sources.append(source)

    def on_reseed(self, listener: Callable[[], None]) -> None:
        self._seeding.listeners.append(listener)

    def clear(self) -> None:
        """Forget everything, as a restarted Redis without persistence does."""
        self._data.clear()

    async def _epoch(self) -> bytes:
        """The current epoch, after seeding the store if it has none (at start, or after `clear`)."""
        full = self._key(_SEED_DOMAIN, _EPOCH_KEY)
        if (epoch := self._live(full)) is not None:
            return epoch
        async with self._seeding.lock:
            epoch = self._live(full)
            if epoch is None:
                for m in await self._seeding.markers():
                    await self.set(m.domain, m.key, m.value, ttl_seconds=m.ttl_seconds)
                epoch = secrets.token_hex(16).encode()
                self._data[full] = (epoch, None)
            return epoch

    def _key(self, domain: str, key: str) -> str:
        return f"{self._namespace}:{domain}:{key}"

    def _live(self, full_key: str) -> bytes | None:
        item = self._data.get(full_key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._now():
            del self._data[full_key]
            return None
        return value

    def _sweep(self) -> None:
        # Bounded housekeeping so an idle dev server does not grow without limit.
        if len(self._data) > 100_000:
            now = self._now()
            for k in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
                del self._data[k]

    async def get(self, domain: str, key: str) -> bytes | None:
        return self._live(self._key(domain, key))

    async def set(self, domain: str, key: str, value: bytes, *, ttl_seconds: int | None = None) -> None:
        self._sweep()
        expires = self._now() + ttl_seconds if ttl_seconds else None
        self._data[self._key(domain, key)] = (value, expires)

    async def set_if_absent(self, domain: str, key: str, value: bytes, *, ttl_seconds: int) -> bool:
        full = self._key(domain, key)
        if self._live(full) is not None:
            return False
        self._sweep()
        self._data[full] = (value, self._now() + ttl_seconds)
        return True

    async def incr_with_limit(self, domain: str, key: str, *, limit: int, ttl_seconds: int) -> CounterResult:
        full = self._key(domain, key)
        current = self._live(full)
        now = self._now()
        if current is None:
            value, expires = 1, now + ttl_seconds
        else:
            value = int(current) + 1
            expires = self._data[full][1] or now + ttl_seconds
        self._data[full] = (str(value).encode(), expires)
        return CounterResult(value=value, allowed=value <= limit, ttl_seconds=max(1, int(expires - now)))

    async def delete(self, domain: str, key: str) -> bool:
        full = self._key(domain, key)
        existed = self._live(full) is not None
        self._data.pop(full, None)
        return existed

    async def delete_many(self, domain: str, keys: Sequence[str]) -> None:
        for key in keys:
            self._data.pop(self._key(domain, key), None)

    async def take(self, domain: str, key: str) -> bytes | None:
        full = self._key(domain, key)
        value = self._live(full)
        self._data.pop(full, None)
        return value

    async def exists_any(self, domain: str, keys: list[str]) -> bool:
        return (await self.probe_and_count(probe=[(domain, k) for k in keys])).found

    async def probe_and_count(self, *, probe: Sequence[tuple[str, str]] = (), count: Sequence[Count] = (),
                              read: Sequence[tuple[str, str]] = ()) -> ProbeResult:
        reseeded = self._seeding.observe(await self._epoch())
        if any(self._live(self._key(d, k)) is not None for d, k in probe):
            return ProbeResult(found=True, counts=(), values=(), reseeded=reseeded)
        counts: list[CounterResult] = []
        for c in count:
            result = await self.incr_with_limit(c.domain, c.key, limit=c.limit, ttl_seconds=c.ttl_seconds)
            counts.append(result)
            if not result.allowed:
                break
        return ProbeResult(found=False, counts=tuple(counts),
                           values=tuple(self._live(self._key(d, k)) for d, k in read), reseeded=reseeded)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self.clear()


# INCR and set the expiry on first use in one atomic step; returns value and remaining TTL.
_INCR_WITH_LIMIT = """
local v = redis.call('INCR', KEYS[1])
if v == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {v, ttl}
"""


# probe_and_count in one step. KEYS = the epoch, probes, counters, reads; ARGV = #probes, #counters, then
# limit and ttl per counter. Returns {2} when the epoch is missing (the store was emptied: nothing is probed
# or counted), else {found, epoch, #counted, value1, ttl1, ..., read1, ...} (false for a missing read).
_PROBE_AND_COUNT = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {2} end
local np, nc = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 2, np + 1 do
  if redis.call('EXISTS', KEYS[i]) == 1 then return {1, epoch} end
end
local out = {0, epoch, 0}
for i = 1, nc do
  local k, limit, ttl = KEYS[np + 1 + i], tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local v = redis.call('INCR', k)
  if v == 1 then redis.call('EXPIRE', k, ttl) end
  local t = redis.call('TTL', k)
  if t < 0 then redis.call('EXPIRE', k, ttl); t = ttl end
  out[3] = i
  table.insert(out, v)
  table.insert(out, t)
  if v > limit then break end
end
for j = np + nc + 2, #KEYS do
  local value = redis.call('GET', KEYS[j])
  table.insert(out, value)
end
return out
"""


# Delete the seeding lock only if it is still ours (it may have expired and been taken by another process).
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_DELETE_CHUNK = 1000


class RedisStore:
    """Redis-backed store shared by every worker and process."""

    shared = True

    def __init__(self, url: str, namespace: str = "xinyi") -> None:
        self._namespace = namespace
        # A blocking pool: a burst of more concurrent commands than connections waits (up to the timeout)
        # for a free connection instead of failing at once with MaxConnectionsError.
        # Maintenance notifications (a Redis Enterprise feature) off: while on ("auto" by default), redis-py
        # skips its check for connections the server closed, so after a Redis restart the first command on
        # each pooled connection failed (503) although Redis was back.
        pool = redis_asyncio.BlockingConnectionPool.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=15,
            max_connections=128, timeout=2.0, maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._pool = pool
        self._redis = redis_asyncio.Redis(connection_pool=pool)
        self._incr = self._redis.register_script(_INCR_WITH_LIMIT)
        self._probe_and_count = self._redis.register_script(_PROBE_AND_COUNT)
        self._release_lock = self._redis.register_script(_RELEASE_LOCK)
        self._seeding = _Seeding()

    def add_marker_source(self, source: MarkerSource) -> None:
        self._seeding.sources.append(source)

    def on_reseed(self, listener: Callable[[], None]) -> None:
        self._seeding.listeners.append(listener)

    def _key(self, domain: str, key: str) -> str:
        return f"{self._namespace}:{domain}:{key}"

    async def get(self, domain: str, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._key(domain, key))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return value.encode() if isinstance(value, str) else value

    async def set(self, domain: str, key: str, value: bytes, *, ttl_seconds: int | None = None) -> None:
        try:
            await self._redis.set(self._key(domain, key), value, ex=ttl_seconds)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def set_if_absent(self, domain: str, key: str, value: bytes, *, ttl_seconds: int) -> bool:
        try:
            return bool(await self._redis.set(self._key(domain, key), value, ex=ttl_seconds, nx=True))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def incr_with_limit(self, domain: str, key: str, *, limit: int, ttl_seconds: int) -> CounterResult:
        try:
            value, ttl = await self._incr(keys=[self._key(domain, key)], args=[ttl_seconds])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return CounterResult(value=int(value), allowed=int(value) <= limit, ttl_seconds=max(1, int(ttl)))

    async def delete(self, domain: str, key: str) -> bool:
        try:
            return bool(await self._redis.delete(self._key(domain, key)))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def delete_many(self, domain: str, keys: Sequence[str]) -> None:
        try:
            for start in range(0, len(keys), _DELETE_CHUNK):
                await self._redis.delete(*(self._key(domain, k) for k in keys[start:start + _DELETE_CHUNK]))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    async def take(self, domain: str, key: str) -> bytes | None:
        try:
            value = await self._redis.getdel(self._key(domain, key))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return value.encode() if isinstance(value, str) else value

    async def exists_any(self, domain: str, keys: list[str]) -> bool:
        # Through the epoch check: a revocation probe never trusts an emptied store.
        return (await self.probe_and_count(probe=[(domain, k) for k in keys])).found

    async def probe_and_count(self, *, probe: Sequence[tuple[str, str]] = (), count: Sequence[Count] = (),
                              read: Sequence[tuple[str, str]] = ()) -> ProbeResult:
        keys = [self._key(_SEED_DOMAIN, _EPOCH_KEY)] + [self._key(d, k) for d, k in probe] \
            + [self._key(c.domain, c.key) for c in count] + [self._key(d, k) for d, k in read]
        args: list[int] = [len(probe), len(count)]
        for c in count:
            args += [c.limit, c.ttl_seconds]
        try:
            reply = await self._probe_and_count(keys=keys, args=args)
            if int(reply[0]) == 2:  # emptied: seed it again from the database, then probe the seeded store
                await self._seed()
                reply = await self._probe_and_count(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        if int(reply[0]) == 2:
            raise StoreUnavailable("the store was emptied again while it was being seeded")
        epoch = reply[1].encode() if isinstance(reply[1], str) else bytes(reply[1])
        reseeded = self._seeding.observe(epoch)
        if int(reply[0]):
            return ProbeResult(found=True, counts=(), values=(), reseeded=reseeded)
        counted = int(reply[2])
        counts = tuple(CounterResult(value=int(reply[3 + 2 * i]), allowed=int(reply[3 + 2 * i]) <= count[i].limit,
                                     ttl_seconds=max(1, int(reply[4 + 2 * i]))) for i in range(counted))
        # A missing key is a Lua false, which arrives as None.
        values = tuple(v.encode() if isinstance(v, str) else v for v in reply[3 + 2 * counted:])
        return ProbeResult(found=False, counts=counts, values=values, reseeded=reseeded)

    async def _seed(self) -> None:
        """Seed the emptied store from the marker sources, then write a new epoch; or wait for the process
        that is doing it. Raises `StoreUnavailable` when that takes too long (the caller answers 503)."""
        epoch_key, lock_key = self._key(_SEED_DOMAIN, _EPOCH_KEY), self._key(_SEED_DOMAIN, _SEED_LOCK_KEY)
        if not self._seeding.sources:
            # A process that knows no marker sources (a tool, not the app) must never vouch for an empty store:
            # every worker would trust its epoch.
            raise StoreUnavailable("the store was emptied and this process cannot seed it")
        async with self._seeding.lock:  # one seeding (or wait) per process; the others find the epoch back
            if await self._redis.exists(epoch_key):
                return
            token = secrets.token_hex(16)
            if await self._redis.set(lock_key, token, nx=True, ex=_SEED_LOCK_SECONDS):
                try:
                    markers = await self._seeding.markers()
                    for start in range(0, len(markers), _SEED_CHUNK):
                        pipe = self._redis.pipeline(transaction=False)
                        for m in markers[start:start + _SEED_CHUNK]:
                            pipe.set(self._key(m.domain, m.key), m.value, ex=m.ttl_seconds)
                        await pipe.execute()
                    # Last: a probe that reads this epoch reads every marker written above (Lua is atomic).
                    await self._redis.set(epoch_key, secrets.token_hex(16))
                finally:
                    await self._release_lock(keys=[lock_key], args=[token])
                return
            deadline = time.monotonic() + _SEED_WAIT_SECONDS
            while not await self._redis.exists(epoch_key):
                if time.monotonic() > deadline:
                    raise StoreUnavailable("the store is being seeded from the database")
                await asyncio.sleep(_SEED_POLL_SECONDS)

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            # Readiness shows this text: say which store and how it failed (never the URL, which may hold a password).
            raise StoreUnavailable(f"redis unreachable ({type(exc).__name__})") from exc

    async def close(self) -> None:
        await self._redis.aclose()
        await self._pool.disconnect()  # a pool passed in is not closed by the client itself


def build_store(redis_url: str | None, namespace: str) -> Store:
    """Redis when a URL is configured, else the in-process store."""
    if redis_url:
        return RedisStore(redis_url, namespace)
    return MemoryStore(namespace)
