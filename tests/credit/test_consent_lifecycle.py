"""The consent lifecycle through HTTP: ask, approve, query, check, revoke — and the access log shows it all."""

from __future__ import annotations

import asyncio

import jwt

from credit.tables import OutboxEvent
from tests.factories import add_record, authorization_for, bound_citizen, id_number, partner_session


async def test_whole_lifecycle(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="林一")
    await add_record(ctx, citizen.person, category="volunteer_service")
    _, _, bank = await partner_session(client, kind="bank", name="嘉兴银行")

    asked = await client.post("/v1/authorizations", headers=bank.headers, json={
        "subject": {"kind": "person", "id_number": citizen.person.id_number, "name": "林一"},
        "purpose": "loan_pre_approval", "scopes": ["tier", "score", "reasons"], "validity_days": 30})
    assert asked.status_code == 201, asked.text
    authorization = asked.json()
    assert authorization["status"] == "awaiting_authorization"
    assert "open_id" not in authorization
    assert citizen.person.id_number not in asked.text

    mine = (await client.get("/v1/me/authorizations", headers=citizen.headers)).json()["items"]
    assert mine[0]["id"] == authorization["id"]
    assert mine[0]["partner"]["name"] == "嘉兴银行"
    assert mine[0]["purpose"]["name"] == "贷前审查"

    approved = await client.post(f"/v1/me/authorizations/{authorization['id']}/approve", headers=citizen.headers)
    assert approved.status_code == 200, approved.text
    receipt = approved.json()["consent_receipt"]
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    claims = jwt.decode(receipt, jwt.PyJWK(keys[0]).key, algorithms=["EdDSA"], options={"verify_aud": False})
    assert claims["authorization_id"] == authorization["id"]
    assert claims["scopes"] == ["reasons", "score", "tier"]

    status = (await client.get(f"/v1/authorizations/{authorization['id']}", headers=bank.headers)).json()
    assert status["status"] == "authorized"
    assert status["open_id"].startswith("oid_")

    answer = await client.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": authorization["id"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"authorization_id", "open_id", "as_of", "ledger_seq", "tier", "score", "reasons"}
    assert body["open_id"] == status["open_id"]
    my_score = (await client.get("/v1/me/score", headers=citizen.headers)).json()
    assert body["score"] == my_score["total"]

    revoked = await client.post(f"/v1/me/authorizations/{authorization['id']}/revoke", headers=citizen.headers,
                                json={"reason": "不再需要"})
    assert revoked.json()["status"] == "revoked"
    refused = await client.post("/v1/scores/query", headers=bank.headers,
                                json={"authorization_id": authorization["id"]})
    assert refused.status_code == 403
    assert refused.json()["code"] == "authorization_not_active"

    log = (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]
    assert [e["outcome"] for e in log[:2]] == ["authorization_not_active", "allowed"]
    assert log[1]["actor_name"] == "嘉兴银行"
    assert log[1]["fields"] == ["tier", "score", "reasons"]
    assert log[1]["seq"] == body["ledger_seq"]

    topics = [e["topic"] for e in await OutboxEvent.select(OutboxEvent.topic).where(
        (OutboxEvent.aggregate_id == authorization["id"]) & OutboxEvent.recipient.not_like("person:%")).order_by(
        OutboxEvent.created_at)]
    assert topics == ["authorization.authorized", "authorization.revoked"]
    # The citizen was told of the request and got a receipt of the revocation (notices, partners/notices.py).
    told = [e["topic"] for e in await OutboxEvent.select(OutboxEvent.topic).where(
        (OutboxEvent.aggregate_id == authorization["id"]) & OutboxEvent.recipient.like("person:%")).order_by(
        OutboxEvent.created_at)]
    assert told == ["authorization.requested", "authorization.revoked"]


async def test_unknown_subject_gets_the_same_answer(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="周二")
    _, _, bank = await partner_session(client, kind="bank")
    known = await client.post("/v1/authorizations", headers=bank.headers, json={
        "subject": {"kind": "person", "id_number": citizen.person.id_number, "name": "周二"},
        "purpose": "loan_pre_approval", "scopes": ["tier"], "validity_days": 30})
    unknown = await client.post("/v1/authorizations", headers=bank.headers, json={
        "subject": {"kind": "person", "id_number": id_number(birth="19900202"), "name": "无此人"},
        "purpose": "loan_pre_approval", "scopes": ["tier"], "validity_days": 30})
    assert known.status_code == unknown.status_code == 201
    assert set(known.json()) == set(unknown.json())
    assert known.json()["status"] == unknown.json()["status"]


async def test_scopes_never_leak_extra_fields(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="吴三")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, purpose="deposit_waiver", scopes=["tier"])
    body = (await client.post("/v1/scores/query", headers=bank.headers,
                              json={"authorization_id": authorization_id})).json()
    assert set(body) == {"authorization_id", "open_id", "as_of", "ledger_seq", "tier"}


async def test_purpose_must_justify_scopes_and_validity(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="郑四")
    _, _, bank = await partner_session(client, kind="bank")
    base = {"subject": {"kind": "person", "id_number": citizen.person.id_number, "name": "郑四"}}
    too_much = await client.post("/v1/authorizations", headers=bank.headers, json={
        **base, "purpose": "deposit_waiver", "scopes": ["score"], "validity_days": 30})
    assert too_much.json()["code"] == "scope_not_allowed_for_purpose"
    too_long = await client.post("/v1/authorizations", headers=bank.headers, json={
        **base, "purpose": "rental_screening", "scopes": ["tier"], "validity_days": 365})
    assert too_long.json()["code"] == "validity_too_long"
    unknown = await client.post("/v1/authorizations", headers=bank.headers, json={
        **base, "purpose": "curiosity", "scopes": ["tier"], "validity_days": 3})
    assert unknown.json()["code"] == "unknown_purpose"


async def test_wrong_purpose_and_rejected_are_refused_and_logged(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="冯五")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, purpose="loan_pre_approval")
    wrong = await client.post("/v1/scores/query", headers=bank.headers,
                              json={"authorization_id": authorization_id, "purpose": "loan_post_management"})
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "purpose_mismatch"
    pending = await authorization_for(client, bank, citizen, approve=False)
    await client.post(f"/v1/me/authorizations/{pending}/reject", headers=citizen.headers)
    rejected = await client.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": pending})
    assert rejected.json()["code"] == "authorization_not_active"
    outcomes = [e["outcome"] for e in (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]]
    assert outcomes[:2] == ["authorization_not_active", "purpose_mismatch"]


async def test_daily_cap_is_enforced_atomically(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="褚六")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, purpose="loan_post_management",
                                               scopes=["tier"])  # cap 2 per day
    results = await asyncio.gather(*(client.post("/v1/scores/query", headers=bank.headers,
                                                 json={"authorization_id": authorization_id}) for _ in range(5)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 429, 429, 429]
    assert {r.json()["code"] for r in results if r.status_code == 429} == {"authorization_daily_cap"}


async def test_score_check_is_yes_no_and_idempotent(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫七")
    _, _, merchant = await partner_session(client, kind="merchant")
    authorization_id = await authorization_for(client, merchant, citizen, purpose="deposit_waiver", scopes=["tier"])
    body = {"authorization_id": authorization_id, "threshold": 600, "transaction_id": "tx-1"}
    first = await client.post("/v1/scores/check", headers=merchant.headers, json=body)
    assert first.status_code == 200, first.text
    assert set(first.json()) == {"transaction_id", "authorization_id", "admitted", "checked_at", "ledger_seq"}
    again = await client.post("/v1/scores/check", headers=merchant.headers, json=body)
    assert again.json() == first.json()
    other = await client.post("/v1/scores/check", headers=merchant.headers, json={**body, "threshold": 10})
    assert other.status_code == 422
    assert other.json()["code"] == "transaction_id_reused"
    log = (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]
    assert [e["action"] for e in log] == ["score.check"]  # counted (and logged) once


async def test_a_merchant_cannot_read_full_scores(client, ctx) -> None:
    _, _, merchant = await partner_session(client, kind="merchant")
    r = await client.post("/v1/scores/query", headers=merchant.headers, json={"authorization_id": "authz_x"})
    assert r.status_code == 403
    assert r.json()["code"] == "insufficient_scope"


async def test_an_authorization_the_partner_terminated_stops_at_once_even_after_recent_use(client, ctx) -> None:
    """Workers keep recently used authorized views in memory (with Redis); ending one must still apply to
    the very next request, whoever ends it."""
    from tests.factories import authorization_for, bound_citizen, partner_session

    citizen = await bound_citizen(client, ctx, name="柏七")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, scopes=["tier"])
    for _ in range(2):  # the second use is served from the worker's memory when the store is shared
        ok = await client.post("/v1/scores/check", headers=bank.headers, json={
            "authorization_id": authorization_id, "threshold": 500, "transaction_id": f"tx-{_}-{authorization_id}"})
        assert ok.status_code == 200, ok.text
    ended = await client.delete(f"/v1/authorizations/{authorization_id}", headers=bank.headers)
    assert ended.json()["status"] == "terminated"
    refused = await client.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": authorization_id})
    assert refused.status_code == 403
    assert refused.json()["code"] == "authorization_not_active"
