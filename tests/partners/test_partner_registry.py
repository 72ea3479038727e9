"""The partner registry: suspension, secret rotation, keys, limits and quotas, address allowlists."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import httpx
import pytest

from core.errors import Unprocessable
from partners.services import set_partner_status, suspension_marker, suspension_markers, update_partner
from tests.factories import operator_session, partner_session
from tests.servers import xinyi_server


async def _token(client, client_id: str, secret: str):  # type: ignore[no-untyped-def]
    return await client.post("/v1/auth/token", json={"grant_type": "client_credentials", "client_id": client_id,
                                                     "client_secret": secret})


async def test_suspended_partner_tokens_stop_working_at_once(client) -> None:
    client_id, secret, bank = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    assert (await client.get("/v1/partners/me", headers=bank.headers)).status_code == 200
    r = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"status": "suspended"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended"
    refused = await client.get("/v1/partners/me", headers=bank.headers)
    assert refused.status_code == 401
    assert (await _token(client, client_id, secret)).json()["code"] == "partner_suspended"
    await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"status": "active"})
    assert (await client.get("/v1/partners/me", headers=bank.headers)).status_code == 200


async def test_the_suspension_marker_follows_the_status(client, ctx) -> None:  # type: ignore[no-untyped-def]
    """One writer of the status (admin PATCH and `xinyi partner status` both call it): the store marker the
    partner guard probes is set and cleared with the row, and seeded back from the rows after a store loss."""
    client_id, _, _ = await partner_session(client, kind="bank")
    await set_partner_status(store=ctx.store, client_id=client_id, status="suspended")
    assert await ctx.store.get(*suspension_marker(client_id)) == b"1"
    assert suspension_marker(client_id) in [(m.domain, m.key) for m in await suspension_markers()]
    await set_partner_status(store=ctx.store, client_id=client_id, status="active")
    assert await ctx.store.get(*suspension_marker(client_id)) is None
    assert suspension_marker(client_id) not in [(m.domain, m.key) for m in await suspension_markers()]
    with pytest.raises(Unprocessable):
        await set_partner_status(store=ctx.store, client_id=client_id, status="paused")


async def test_secret_rotation_keeps_the_old_secret_for_the_overlap(client) -> None:
    client_id, old, _ = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    rotated = await client.post(f"/v1/admin/partners/{client_id}/rotate-secret", headers=admin.headers,
                                json={"overlap_hours": 1})
    new = rotated.json()["client_secret"]
    assert new != old
    assert (await _token(client, client_id, new)).status_code == 200
    assert (await _token(client, client_id, old)).status_code == 200  # still inside the overlap
    await client.post(f"/v1/admin/partners/{client_id}/rotate-secret", headers=admin.headers,
                      json={"overlap_hours": 0})
    assert (await _token(client, client_id, new)).status_code == 401  # no overlap this time
    detail = (await client.get(f"/v1/admin/partners/{client_id}", headers=admin.headers)).text
    assert new not in detail
    assert old not in detail


async def test_jwks_are_validated_and_replaced(client) -> None:
    client_id, _, _ = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    private = {"kty": "EC", "crv": "P-256", "kid": "k", "x": "a", "y": "b", "d": "secret"}
    r = await client.put(f"/v1/admin/partners/{client_id}/jwks", headers=admin.headers, json={"keys": [private]})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_jwk"


async def test_daily_quota_and_usage_are_visible(client) -> None:
    client_id, _, bank = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"daily_quota": 3})
    results = await asyncio.gather(*(client.get("/v1/partners/me", headers=bank.headers) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200, 200, 200, 429, 429]
    limited = next(r for r in results if r.status_code == 429)
    assert limited.json()["code"] == "partner_quota_exhausted"
    assert int(limited.headers["retry-after"]) > 0
    usage = (await client.get(f"/v1/admin/partners/{client_id}/usage", headers=admin.headers)).json()
    assert usage["daily_quota"] == 3
    assert usage["daily_used"] == 3


async def test_rate_limit_per_second(client) -> None:
    client_id, _, bank = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"rate_limit_per_second": 4})
    results = await asyncio.gather(*(client.get("/v1/partners/me", headers=bank.headers) for _ in range(12)))
    ok = [r for r in results if r.status_code == 200]
    limited = [r for r in results if r.status_code == 429]
    # The 12 requests may straddle a one-second window boundary: at most two windows' worth pass.
    assert 4 <= len(ok) <= 8
    assert {r.json()["code"] for r in limited} == {"partner_rate_limited"}


async def test_address_allowlist(client) -> None:
    client_id, _, bank = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    bad = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers,
                             json={"allowed_addresses": ["not-an-ip"]})
    assert bad.json()["code"] == "invalid_address_allowlist"
    await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers,
                       json={"allowed_addresses": ["203.0.113.0/24"]})
    inside = await client.get("/v1/partners/me", headers={**bank.headers, "X-Forwarded-For": "203.0.113.7"})
    outside = await client.get("/v1/partners/me", headers={**bank.headers, "X-Forwarded-For": "198.51.100.7"})
    assert inside.status_code == 200
    assert outside.status_code == 403
    assert outside.json()["code"] == "address_not_allowed"




@pytest.fixture
def second_worker(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with xinyi_server(["serve"], ready_path="/health/ready") as base:
        yield base


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="limits are shared across processes only through Redis")
async def test_quota_of_n_holds_at_n_across_two_workers(client, second_worker) -> None:
    client_id, _, bank = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"daily_quota": 6})
    async with httpx.AsyncClient(base_url=second_worker, timeout=10) as other:
        calls = [client.get("/v1/partners/me", headers=bank.headers) for _ in range(6)]
        calls += [other.get("/v1/partners/me", headers=bank.headers) for _ in range(6)]
        results = await asyncio.gather(*calls)
    assert sum(r.status_code == 200 for r in results) == 6
    assert sum(r.status_code == 429 for r in results) == 6


async def test_operator_configures_a_webhook_endpoint(client, override_settings) -> None:
    client_id, _, _ = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    unsafe = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers,
                                json={"webhook_url": "http://169.254.169.254/latest/meta-data"})
    assert unsafe.status_code == 422
    assert unsafe.json()["code"] == "unsafe_webhook_url"
    with override_settings(webhook_allow_loopback=True):
        configured = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers,
                                        json={"webhook_url": "http://127.0.0.1:9/hooks"})
    assert configured.status_code == 200, configured.text
    assert configured.json()["webhook_secret"].startswith("whsec_")
    detail = (await client.get(f"/v1/admin/partners/{client_id}", headers=admin.headers)).json()
    assert detail["webhook_url"] == "http://127.0.0.1:9/hooks"
    assert "webhook_secret" not in detail
    cleared = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"webhook_url": ""})
    assert "webhook_url" not in cleared.json()


async def test_withdrawn_scopes_apply_to_tokens_already_issued(client) -> None:
    client_id, _, bank = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"scopes": ["webhooks:read"]})
    r = await client.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": "authz_x"})
    assert r.status_code == 403
    assert r.json()["code"] == "insufficient_scope"


async def test_only_the_proxy_appended_forwarded_address_counts(client) -> None:
    client_id, _, bank = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers,
                       json={"allowed_addresses": ["203.0.113.0/24"]})
    spoofed = await client.get("/v1/partners/me",
                               headers={**bank.headers, "X-Forwarded-For": "203.0.113.7, 198.51.100.7"})
    assert spoofed.status_code == 403


async def test_hot_score_routes_still_refuse_revoked_tokens_and_count_limits(client, ctx) -> None:
    """The score routes fold the partner's admission into their own store round trip: a revoked token is
    still refused (before any ledger entry), a replayed check too, and the rate limit still applies."""
    from credit.tables import LedgerEntry
    from tests.factories import authorization_for, bound_citizen

    citizen = await bound_citizen(client, ctx, name="孔六")
    client_id, secret, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, scopes=["tier"])
    check = {"authorization_id": authorization_id, "threshold": 600, "transaction_id": "tx-admission-1"}
    assert (await client.post("/v1/scores/check", headers=bank.headers, json=check)).status_code == 200
    entries = await LedgerEntry.count()
    await update_partner(client_id=client_id, rate_limit_per_second=1)
    ctx.partners.forget(client_id)
    statuses = [(await client.post("/v1/scores/query", headers=bank.headers,
                                   json={"authorization_id": authorization_id})).status_code for _ in range(3)]
    assert 429 in statuses
    await asyncio.sleep(1.1)  # past the one-second rate window
    revoked = await client.post("/v1/auth/revoke", data={"token": bank.access_token}, auth=(client_id, secret))
    assert revoked.status_code == 200, revoked.text
    for path, body in (("/v1/scores/query", {"authorization_id": authorization_id}), ("/v1/scores/check", check),
                       ("/v1/scores/query", {"authorization_id": "authz_unknown"})):
        r = await client.post(path, headers=bank.headers, json=body)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["code"] == "token_revoked"
    assert await LedgerEntry.count() <= entries + statuses.count(200)  # refused tokens leave no entries
