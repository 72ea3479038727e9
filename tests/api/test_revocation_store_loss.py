"""A store that loses its data (a Redis restart without persistence, a failover to an empty replica, a flush)
never makes anything revoked usable again: revocations live in the database, the store only caches them.

Here the store of the in-process app is emptied (its namespace's keys deleted on Redis, the in-process store
cleared); tests/faults/test_redis_revocations.py kills a real Redis under a two-worker server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from accounts.revocations import purge_expired_revocations
from accounts.tables import RevokedToken
from api.context import AppContext
from tests.factories import authorization_for, bound_citizen, empty_store, partner_session, revoke_three_tokens


async def _answers(client: Any, calls: dict[str, tuple[str, str, dict[str, str]]]) -> dict[str, tuple[int, str]]:
    out = {}
    for name, (method, path, headers) in calls.items():
        r = await client.request(method, path, headers=headers)
        out[name] = (r.status_code, r.json().get("code", ""))
    return out


async def test_revoked_access_tokens_stay_revoked_when_the_store_is_emptied(client: Any, ctx: AppContext) -> None:
    tokens = await revoke_three_tokens(client)
    revoked = dict.fromkeys(tokens.calls(), (401, "token_revoked"))
    assert await _answers(client, tokens.calls()) == revoked

    await empty_store(ctx)

    assert await _answers(client, tokens.calls()) == revoked
    # ... and the emptied store serves again: an unrevoked token works.
    _, _, bank = await partner_session(client, kind="bank")
    assert (await client.get("/v1/partners/me", headers=bank.headers)).status_code == 200


async def test_revoked_authorization_stays_refused_when_the_store_is_emptied(client: Any, ctx: AppContext) -> None:
    _, _, bank = await partner_session(client, kind="bank")
    citizen = await bound_citizen(client, ctx, name="库失")
    authorization_id = await authorization_for(client, bank, citizen, scopes=["tier", "score"])
    body = {"authorization_id": authorization_id}
    for _ in range(2):  # used, so the worker keeps the authorized view in memory (with a shared store)
        used = await client.post("/v1/scores/query", headers=bank.headers, json=body)
        assert used.status_code == 200, used.text
    revoked = await client.post(f"/v1/me/authorizations/{authorization_id}/revoke", headers=citizen.headers,
                                json={})
    assert revoked.status_code == 200, revoked.text

    await empty_store(ctx)

    for _ in range(3):
        refused = await client.post("/v1/scores/query", headers=bank.headers, json=body)
        assert (refused.status_code, refused.json().get("code")) == (403, "authorization_not_active"), refused.text


async def test_revocations_are_kept_until_their_tokens_expire_then_purged(client: Any) -> None:
    tokens = await revoke_three_tokens(client)
    claims = [jwt.decode(s.access_token, options={"verify_signature": False}) for s in (tokens.citizen, tokens.bank,
                                                                                          tokens.family)]
    live = {f"jti:{claims[0]['jti']}", f"jti:{claims[1]['jti']}", f"fam:{claims[2]['fam']}"}
    assert live <= {row["marker"] for row in await RevokedToken.select(RevokedToken.marker)}
    await RevokedToken.insert(RevokedToken(marker="jti:long-expired",
                                           expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    await purge_expired_revocations()

    kept = {row["marker"] for row in await RevokedToken.select(RevokedToken.marker)}
    assert "jti:long-expired" not in kept
    assert live <= kept
