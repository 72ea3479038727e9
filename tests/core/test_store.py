"""The store contract holds for the in-process store and for Redis (when REDIS_URL is set)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis import asyncio as redis_asyncio

from core.store import Marker, MemoryStore, RedisStore, Store, StoreUnavailable

BACKENDS = ["memory"] + (["redis"] if os.environ.get("REDIS_URL") else [])


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    namespace = f"xinyi-unit-{secrets.token_hex(4)}"
    if request.param == "redis":
        s: Store = RedisStore(os.environ["REDIS_URL"], namespace)
    else:
        s = MemoryStore(namespace)

    async def nothing_revoked() -> list[Marker]:
        return []

    s.add_marker_source(nothing_revoked)
    yield s
    await s.close()


async def test_get_set_delete(store: Store) -> None:
    assert await store.get("d", "k") is None
    await store.set("d", "k", b"v", ttl_seconds=60)
    assert await store.get("d", "k") == b"v"
    assert await store.get("other-domain", "k") is None  # domains are namespaced
    assert await store.delete("d", "k") is True
    assert await store.delete("d", "k") is False


async def test_ttl_expires(store: Store) -> None:
    await store.set("d", "short", b"v", ttl_seconds=1)
    await asyncio.sleep(1.2)
    assert await store.get("d", "short") is None


async def test_set_if_absent_is_exclusive_under_concurrency(store: Store) -> None:
    results = await asyncio.gather(*(store.set_if_absent("d", "once", b"x", ttl_seconds=60) for _ in range(20)))
    assert results.count(True) == 1


async def test_counter_with_limit(store: Store) -> None:
    results = await asyncio.gather(*(store.incr_with_limit("d", "c", limit=5, ttl_seconds=60) for _ in range(8)))
    assert sorted(r.value for r in results) == list(range(1, 9))
    assert sum(r.allowed for r in results) == 5
    assert all(0 < r.ttl_seconds <= 60 for r in results)


async def test_exists_any(store: Store) -> None:
    assert await store.exists_any("d", ["a", "b"]) is False
    await store.set("d", "b", b"1")
    assert await store.exists_any("d", ["a", "b"]) is True
    assert await store.exists_any("d", []) is False


async def test_unreachable_redis_fails_closed() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", "x")
    with pytest.raises(StoreUnavailable):
        await store.get("d", "k")
    with pytest.raises(StoreUnavailable):
        await store.incr_with_limit("d", "k", limit=1, ttl_seconds=1)
    await store.close()


def _emptied(store: Store) -> Callable[[], Awaitable[None]]:
    """How to make `store` lose everything (a Redis restarted without persistence, a flush)."""
    async def empty() -> None:
        if isinstance(store, MemoryStore):
            store.clear()
            return
        redis = redis_asyncio.from_url(os.environ["REDIS_URL"])
        keys = [k async for k in redis.scan_iter(match=f"{store._namespace}:*")]  # type: ignore[attr-defined]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    return empty


async def test_an_emptied_store_is_seeded_again_before_any_probe_trusts_it(store: Store) -> None:
    revoked = [Marker("auth", "jti:gone", 60), Marker("auth", "pdis:p1", None)]
    seedings: list[int] = []

    async def source() -> list[Marker]:
        seedings.append(1)
        return revoked

    dropped: list[int] = []
    store.add_marker_source(source)  # after the fixture's own, which has nothing to seed
    store.on_reseed(lambda: dropped.append(1))
    first = await store.probe_and_count(probe=[("auth", "jti:gone")])
    assert (first.found, first.reseeded) == (True, True)  # the first probe of a process sees a new epoch
    assert (await store.probe_and_count(read=[("auth", "pdis:p1")])).reseeded is False

    await _emptied(store)()

    # Probes at once: the store is seeded once, and none of them answers from the empty store.
    results = await asyncio.gather(*(store.probe_and_count(probe=[("auth", "jti:gone")]) for _ in range(20)))
    assert all(r.found for r in results)
    assert len(seedings) == 2
    assert dropped == [1, 1]
    assert await store.exists_any("auth", ["pdis:p1"]) is True
    assert await store.exists_any("auth", ["jti:other"]) is False


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="two processes share only Redis")
async def test_two_processes_seed_an_emptied_redis_once_and_both_drop_their_views() -> None:
    namespace = f"xinyi-unit-{secrets.token_hex(4)}"
    processes = [RedisStore(os.environ["REDIS_URL"], namespace) for _ in range(2)]
    seedings: list[int] = []
    dropped: list[int] = []

    async def slow_source() -> list[Marker]:
        seedings.append(1)
        await asyncio.sleep(0.3)  # the other process waits for this seeding, it does not answer meanwhile
        return [Marker("authz", "ended:a1", 60)]

    for p in processes:
        p.add_marker_source(slow_source)
        p.on_reseed(lambda: dropped.append(1))
    try:
        results = await asyncio.gather(*(p.probe_and_count(read=[("authz", "ended:a1")])
                                         for p in processes for _ in range(5)))
        assert all(r.values == (b"1",) for r in results)
        assert len(seedings) == 1
        assert dropped == [1, 1]  # each process noticed the new epoch once
    finally:
        for p in processes:
            await p.close()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="only a shared store is trusted by other processes")
async def test_a_process_with_nothing_to_seed_from_never_vouches_for_an_emptied_redis() -> None:
    tool = RedisStore(os.environ["REDIS_URL"], f"xinyi-unit-{secrets.token_hex(4)}")
    try:
        with pytest.raises(StoreUnavailable):
            await tool.exists_any("auth", ["jti:x"])
    finally:
        await tool.close()
