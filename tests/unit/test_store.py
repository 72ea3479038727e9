"""The store contract holds for the in-process store and for Redis (when REDIS_URL is set)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest

from api.store import MemoryStore, RedisStore, Store, StoreUnavailable

BACKENDS = ["memory"] + (["redis"] if os.environ.get("REDIS_URL") else [])


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    namespace = f"xinyi-unit-{secrets.token_hex(4)}"
    if request.param == "redis":
        s: Store = RedisStore(os.environ["REDIS_URL"], namespace)
    else:
        s = MemoryStore(namespace)
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
