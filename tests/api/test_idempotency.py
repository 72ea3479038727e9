"""Idempotency-Key: a retried POST gets the first answer; a reused key with another body is refused."""

from __future__ import annotations

import asyncio

from credit.tables import Authorization
from tests.factories import bound_citizen, partner_session


def _ask(citizen, validity: int = 30) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {"subject": {"kind": "person", "id_number": citizen.person.id_number, "name": citizen.person.name},
            "purpose": "deposit_waiver", "scopes": ["tier"], "validity_days": validity}


async def test_retry_with_the_same_key_returns_the_first_answer(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="孔一")
    _, _, bank = await partner_session(client, kind="bank")
    headers = {**bank.headers, "Idempotency-Key": "req-001"}
    first = await client.post("/v1/authorizations", headers=headers, json=_ask(citizen))
    again = await client.post("/v1/authorizations", headers=headers, json=_ask(citizen))
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    person_auths = await Authorization.count().where(Authorization.partner_client_id == ctx.tokens.verify(
        bank.access_token).subject)
    assert person_auths == 1


async def test_same_key_with_another_body_is_refused(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="曹二")
    _, _, bank = await partner_session(client, kind="bank")
    headers = {**bank.headers, "Idempotency-Key": "req-002"}
    await client.post("/v1/authorizations", headers=headers, json=_ask(citizen))
    other = await client.post("/v1/authorizations", headers=headers, json=_ask(citizen, validity=10))
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


async def test_concurrent_retries_run_the_handler_once(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="严三")
    _, _, bank = await partner_session(client, kind="bank")
    headers = {**bank.headers, "Idempotency-Key": "req-003"}
    results = await asyncio.gather(*(client.post("/v1/authorizations", headers=headers, json=_ask(citizen))
                                     for _ in range(4)))
    created = {r.json()["id"] for r in results if r.status_code == 201}
    assert len(created) == 1
    assert all(r.status_code in (201, 409) for r in results)
    busy = [r for r in results if r.status_code == 409]
    assert all(r.json()["code"] == "idempotency_request_in_progress" for r in busy)


async def test_keys_are_scoped_to_the_caller(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="华四")
    _, _, bank_a = await partner_session(client, kind="bank")
    _, _, bank_b = await partner_session(client, kind="bank")
    a = await client.post("/v1/authorizations", headers={**bank_a.headers, "Idempotency-Key": "same"},
                          json=_ask(citizen))
    b = await client.post("/v1/authorizations", headers={**bank_b.headers, "Idempotency-Key": "same"},
                          json=_ask(citizen))
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_a_failed_request_is_not_remembered(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="金五")
    _, _, bank = await partner_session(client, kind="bank")
    headers = {**bank.headers, "Idempotency-Key": "req-005"}
    bad = {**_ask(citizen), "purpose": "nonsense"}
    first = await client.post("/v1/authorizations", headers=headers, json=bad)
    assert first.status_code == 422
    replay = await client.post("/v1/authorizations", headers=headers, json=bad)
    assert replay.json() == first.json()  # 4xx answers are remembered too: the same request, the same answer
    too_long = await client.post("/v1/authorizations", headers={**bank.headers, "Idempotency-Key": "x" * 300},
                                 json=_ask(citizen))
    assert too_long.json()["code"] == "invalid_idempotency_key"


async def test_an_oversized_body_is_refused_before_it_is_buffered(client, ctx) -> None:
    _, _, bank = await partner_session(client, kind="bank")
    big = b'{"x": "' + b"1" * (1024 * 1024 + 10) + b'"}'
    r = await client.post("/v1/authorizations", content=big,
                          headers={**bank.headers, "Idempotency-Key": "big", "content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


async def test_token_answers_are_never_stored_or_replayed(client) -> None:
    from tests.factories import address, phone

    number = phone()
    sent = await client.post("/v1/auth/otp", json={"phone": number}, headers={"X-Forwarded-For": address()})
    body = {"grant_type": "otp", "phone": number, "code": sent.json()["dev_code"]}
    first = await client.post("/v1/auth/token", json=body, headers={"Idempotency-Key": "login-1"})
    again = await client.post("/v1/auth/token", json=body, headers={"Idempotency-Key": "login-1"})
    assert first.status_code == 200
    assert again.status_code == 400  # invalid_grant: the code is single use; no stored tokens come back
    assert "idempotent-replayed" not in again.headers


async def test_limit_and_auth_refusals_are_not_remembered(client, ctx) -> None:
    from tests.factories import operator_session

    client_id, _, bank = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    headers = {**bank.headers, "Idempotency-Key": "req-403"}
    await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers,
                       json={"allowed_addresses": ["203.0.113.0/24"]})
    refused = await client.post("/v1/scores/query", headers=headers, json={"authorization_id": "authz_x"})
    assert refused.status_code == 403
    await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"allowed_addresses": []})
    ctx.partners.forget(client_id)
    retried = await client.post("/v1/scores/query", headers=headers, json={"authorization_id": "authz_x"})
    assert retried.status_code == 404  # ran for real this time
    assert "idempotent-replayed" not in retried.headers
