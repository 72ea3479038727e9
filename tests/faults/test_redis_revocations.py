"""Redis killed and started again empty (it runs without persistence) right after something was revoked, under
a two-worker `xinyi serve` on PostgreSQL: nothing revoked works again, not even for a moment. Revocations live
in PostgreSQL; Redis only caches them, and each worker notices the emptied store in the round trip it already
makes (no epoch key), seeds it again from PostgreSQL and drops what it kept in memory before answering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from credit.tables import Authorization, LedgerEntry
from tests.factories import (
    WebhookReceiver,
    authorization_for,
    bound_citizen,
    operator_session,
    partner_session,
    revoke_three_tokens,
)
from tests.faults.conftest import UNLIMITED, Services, World, server_env
from tests.servers import xinyi_server

ROUNDS, CONCURRENCY = 6, 8  # concurrent requests, so that each of the two workers answers some


@pytest.fixture(scope="module")
def two_workers(client: Any, services: Services, sms_gateway: WebhookReceiver) -> Iterator[str]:
    with xinyi_server(["serve", "--host", "127.0.0.1", "--workers", "2"], ready_path="/health/ready",
                      env=server_env(sms_gateway)) as base:
        yield base


@pytest.fixture(scope="module")
async def served(two_workers: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=two_workers, timeout=30) as c:
        yield c


async def _on_both_workers(send: Any) -> None:
    """Send the request ROUNDS × CONCURRENCY times, CONCURRENCY at once; every answer must be 200."""
    for _ in range(ROUNDS):
        answers = await asyncio.gather(*(send() for _ in range(CONCURRENCY)))
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]


def _restart_empty(services: Services) -> None:
    services.redis.kill()
    services.redis.start()


async def test_revoked_authorization_stays_refused_after_redis_restarts_empty(
        services: Services, served: httpx.AsyncClient, client: Any, ctx: Any, world: World) -> None:
    citizen = await bound_citizen(client, ctx, name="重启撤回")
    authorization_id = await authorization_for(client, world.bank, citizen, purpose="deposit_waiver",
                                               scopes=["tier", "score_band"])
    await Authorization.update({Authorization.daily_cap: UNLIMITED}).where(
        Authorization.public_id == authorization_id)

    def query() -> Any:
        return served.post("/v1/scores/query", headers=world.bank.headers, json={"authorization_id": authorization_id})

    await _on_both_workers(query)  # each worker now keeps the authorized view in memory
    revoked = await served.post(f"/v1/me/authorizations/{authorization_id}/revoke", headers=citizen.headers,
                                json={})
    assert revoked.status_code == 200, revoked.text
    last_seq = await LedgerEntry.select(LedgerEntry.seq).order_by(LedgerEntry.seq, ascending=False).first()
    await asyncio.sleep(0.1)
    _restart_empty(services)

    answers = await asyncio.gather(*(query() for _ in range(10)))  # at once: both workers answer some

    assert [(r.status_code, r.json().get("code")) for r in answers] == [(403, "authorization_not_active")] * 10, \
        [r.text[:120] for r in answers]
    outcomes = await LedgerEntry.select(LedgerEntry.outcome).where(
        (LedgerEntry.authorization_id == authorization_id) & (LedgerEntry.seq > last_seq["seq"]))
    assert [row["outcome"] for row in outcomes] == ["authorization_not_active"] * 10


async def test_revoked_tokens_and_a_suspended_partner_stay_refused_after_redis_restarts_empty(
        services: Services, served: httpx.AsyncClient, client: Any) -> None:
    tokens = await revoke_three_tokens(client, via=served)
    # A suspended partner whose record both workers had just read (they keep it for a few seconds).
    suspended_id, _, suspended = await partner_session(client, kind="bank")
    await _on_both_workers(lambda: served.get("/v1/partners/me", headers=suspended.headers))
    admin = await operator_session(client, role="partner_admin")
    r = await served.patch(f"/v1/admin/partners/{suspended_id}", headers=admin.headers, json={"status": "suspended"})
    assert r.status_code == 200, r.text
    calls = {**tokens.calls(), "suspended partner": ("GET", "/v1/partners/me", suspended.headers)}

    async def answers() -> dict[str, list[int]]:
        """Each call CONCURRENCY times at once, so that both workers answer it."""
        out = {}
        for name, (method, path, headers) in calls.items():
            sent = await asyncio.gather(*(served.request(method, path, headers=headers) for _ in range(CONCURRENCY)))
            out[name] = [r.status_code for r in sent]
        return out

    refused = dict.fromkeys(calls, [401] * CONCURRENCY)
    assert await answers() == refused
    _restart_empty(services)
    assert await answers() == refused
    # The seeded store serves again: tokens nobody revoked work on both workers.
    _, _, bank = await partner_session(client, kind="bank")
    await _on_both_workers(lambda: served.get("/v1/partners/me", headers=bank.headers))
