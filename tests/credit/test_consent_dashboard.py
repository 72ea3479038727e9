"""The consent dashboard: each authorization shows when and how often it was used (from the access ledger), and
one call revokes everything one partner holds about me, and only that partner's."""

from __future__ import annotations

import asyncio
from typing import Any

from credit.tables import OutboxEvent
from tests.factories import authorization_for, bound_citizen, partner_session


async def _listed(client: Any, citizen: Any) -> dict[str, dict[str, Any]]:
    r = await client.get("/v1/me/authorizations", headers=citizen.headers)
    assert r.status_code == 200, r.text
    return {a["id"]: a for a in r.json()["items"]}


async def test_each_authorization_shows_its_last_use_and_counts(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="仪一")
    _, _, bank = await partner_session(client, kind="bank")
    used = await authorization_for(client, bank, citizen)
    unused = await authorization_for(client, bank, citizen, purpose="deposit_waiver", scopes=["tier"])
    before = await _listed(client, citizen)
    assert (before[used]["uses_total"], before[used]["uses_today"], before[used].get("last_used_at")) == (0, 0, None)

    # Concurrent reads: every answered one is counted, exactly.
    answers = await asyncio.gather(*(client.post("/v1/scores/query", headers=bank.headers,
                                                 json={"authorization_id": used}) for _ in range(5)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    # A refused read (wrong purpose) is not a use.
    refused = await client.post("/v1/scores/query", headers=bank.headers,
                                json={"authorization_id": used, "purpose": "deposit_waiver"})
    assert refused.status_code == 403

    after = await _listed(client, citizen)
    assert (after[used]["uses_total"], after[used]["uses_today"]) == (5, 5)
    assert after[used]["last_used_at"] is not None
    assert (after[unused]["uses_total"], after[unused]["uses_today"]) == (0, 0)


async def test_revoke_all_ends_everything_of_one_partner_and_nothing_else(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="仪二")
    other = await bound_citizen(client, ctx, name="仪三")
    bank_id, _, bank = await partner_session(client, kind="bank")
    _, _, lender = await partner_session(client, kind="bank")
    banks = [await authorization_for(client, bank, citizen),
             await authorization_for(client, bank, citizen, purpose="deposit_waiver", scopes=["tier"])]
    waiting = await authorization_for(client, bank, citizen, approve=False)
    lenders = await authorization_for(client, lender, citizen)
    someone_elses = await authorization_for(client, bank, other)

    r = await client.post(f"/v1/me/partners/{bank_id}/revoke-all", headers=citizen.headers, json={})
    assert r.status_code == 200, r.text
    ended = {a["id"]: a["status"] for a in r.json()["ended"]}
    assert ended == {banks[0]: "revoked", banks[1]: "revoked", waiting: "rejected"}

    listed = await _listed(client, citizen)
    assert listed[lenders]["status"] == "authorized"
    assert (await _listed(client, other))[someone_elses]["status"] == "authorized"
    for authorization_id in banks:
        q = await client.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": authorization_id})
        assert (q.status_code, q.json()["code"]) == (403, "authorization_not_active")
    assert (await client.post("/v1/scores/query", headers=lender.headers,
                              json={"authorization_id": lenders})).status_code == 200
    topics = {(r["aggregate_id"], r["topic"]) for r in await OutboxEvent.select(
        OutboxEvent.aggregate_id, OutboxEvent.topic).where(OutboxEvent.recipient == bank_id)}
    assert {(banks[0], "authorization.revoked"), (banks[1], "authorization.revoked"),
            (waiting, "authorization.rejected")} <= topics

    # Again: nothing left, the same empty answer as a partner id nobody has.
    again = await client.post(f"/v1/me/partners/{bank_id}/revoke-all", headers=citizen.headers)
    assert (again.status_code, again.json()["ended"]) == (200, [])
    unknown = await client.post("/v1/me/partners/nobody%00here/revoke-all", headers=citizen.headers)
    assert (unknown.status_code, unknown.json()["ended"]) == (200, [])
