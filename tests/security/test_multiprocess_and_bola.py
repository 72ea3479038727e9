"""Revocation is seen by another server process on the very next request; nobody reaches others' data."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.factories import authorization_for, bound_citizen, partner_session
from tests.servers import xinyi_server


@pytest.fixture
def second_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Another `xinyi serve` process on the same database (and Redis, when configured)."""
    with xinyi_server(["serve"], ready_path="/health/ready") as base:
        yield base


async def test_revocation_is_seen_by_another_process_on_the_next_request(client, ctx, second_server) -> None:
    citizen = await bound_citizen(client, ctx, name="沈九")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, purpose="deposit_waiver", scopes=["tier"])
    async with httpx.AsyncClient(base_url=second_server, timeout=10) as other:
        before = await other.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": authorization_id})
        assert before.status_code == 200, before.text
        revoked = await client.post(f"/v1/me/authorizations/{authorization_id}/revoke", headers=citizen.headers)
        assert revoked.status_code == 200
        after = await other.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": authorization_id})
        assert after.status_code == 403
        assert after.json()["code"] == "authorization_not_active"
        if os.environ.get("REDIS_URL"):
            # Token revocations live in the shared store: with Redis every process sees them at once.
            # (The embedded in-process store serves a single process by design.)
            await client.post("/v1/auth/revoke", json={"token": citizen.session.access_token})
            me = await other.get("/v1/me", headers=citizen.headers)
            assert me.status_code == 401


async def test_citizens_cannot_touch_each_others_authorizations(client, ctx) -> None:
    alice = await bound_citizen(client, ctx, name="韩甲")
    bob = await bound_citizen(client, ctx, name="杨乙")
    _, _, bank = await partner_session(client, kind="bank")
    alices = await authorization_for(client, bank, alice, approve=False)
    for action in ("approve", "reject", "revoke"):
        r = await client.post(f"/v1/me/authorizations/{alices}/{action}", headers=bob.headers)
        assert r.status_code == 404, (action, r.text)
        assert r.json()["code"] == "authorization_not_found"
    assert alices not in (await client.get("/v1/me/authorizations", headers=bob.headers)).text
    assert (await client.post(f"/v1/me/authorizations/{alices}/approve", headers=alice.headers)).status_code == 200


async def test_a_partner_cannot_use_another_partners_authorization(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="朱丙")
    _, _, bank_x = await partner_session(client, kind="bank", name="银行X")
    _, _, bank_y = await partner_session(client, kind="bank", name="银行Y")
    authorization_id = await authorization_for(client, bank_x, citizen, scopes=["tier"])
    for call in (client.get(f"/v1/authorizations/{authorization_id}", headers=bank_y.headers),
                 client.delete(f"/v1/authorizations/{authorization_id}", headers=bank_y.headers),
                 client.post("/v1/scores/query", headers=bank_y.headers, json={"authorization_id": authorization_id})):
        r = await call
        assert r.status_code == 404
        assert r.json()["code"] == "authorization_not_found"
    log = (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]
    assert log[0]["outcome"] == "not_your_authorization"
    assert log[0]["actor_name"] == "银行Y"  # the attempt is visible to the citizen


async def test_credit_data_needs_a_bound_identity(client) -> None:
    from tests.factories import citizen_login

    session = await citizen_login(client)
    for path in ("/v1/me/score", "/v1/me/records", "/v1/me/authorizations", "/v1/me/access-log"):
        r = await client.get(path, headers=session.headers)
        assert r.status_code == 403
        assert r.json()["code"] == "identity_not_bound"


async def test_expired_request_and_authorization_are_refused(client, ctx) -> None:
    from datetime import UTC, datetime, timedelta

    from credit.tables import Authorization

    citizen = await bound_citizen(client, ctx, name="秦丁")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, scopes=["tier"])
    await Authorization.update({Authorization.valid_until: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Authorization.public_id == authorization_id)
    r = await client.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": authorization_id})
    assert r.status_code == 403
    status = (await client.get(f"/v1/authorizations/{authorization_id}", headers=bank.headers)).json()["status"]
    assert status == "expired"
    pending = await authorization_for(client, bank, citizen, approve=False)
    await Authorization.update({Authorization.request_expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Authorization.public_id == pending)
    late = await client.post(f"/v1/me/authorizations/{pending}/approve", headers=citizen.headers)
    assert late.status_code == 409
    assert late.json()["code"] == "authorization_state_conflict"
    outcomes = [e["outcome"] for e in (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]]
    assert outcomes[0] == "authorization_not_active"
