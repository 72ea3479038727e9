"""OWASP API6 (unrestricted access to sensitive business flows): bulk scoring and redemption are limited.

Every limit answers the same way — 429 problem+json with a stable code and a `Retry-After` header that
agrees with the body — and a refused call spends nothing: no score read, no ledger entry, no redemption.
Covered here: the partner's daily quota and per-second rate on the deferred-admission hot paths (score
query and check, portraits) and on credit checks; the per-citizen daily use cap on threshold checks;
redemption refused at the merchant's quota with the citizen's benefit untouched; and the operator login
throttle holding even against the right password. (OTP resend/address/attempt limits, identity-binding
attempts, benefit-code minting and per-period benefit quotas are in their own domain tests.)
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from tests.factories import authorization_for, bound_citizen, operator_session, partner_session
from tests.scenario_factories import admin_benefit, merchant_session, verification_for


def assert_limited(r: Any, code: str) -> int:
    """A 429 problem with `code`, whose Retry-After header and body agree; returns the wait in seconds."""
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code
    wait = int(r.headers["retry-after"])
    assert wait >= 1
    assert body.get("retry_after", wait) == wait
    return wait


async def _limit(client: Any, client_id: str, **limits: int) -> None:
    admin = await operator_session(client, role="partner_admin")
    r = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json=limits)
    assert r.status_code == 200, r.text


async def _allowed_reads(client: Any, citizen_headers: dict[str, str]) -> int:
    log = (await client.get("/v1/me/access-log", headers=citizen_headers, params={"limit": 100})).json()["items"]
    return sum(e["outcome"] == "allowed" for e in log)


async def test_bulk_scoring_stops_at_the_partners_daily_quota_across_every_scoring_route(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="批量")
    client_id, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, purpose="loan_pre_approval", scopes=["tier"])
    await _limit(client, client_id, daily_quota=4)  # one was spent asking for the authorization

    def query() -> Any:
        return client.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": authorization_id})

    def check() -> Any:
        return client.post("/v1/scores/check", headers=bank.headers, json={
            "authorization_id": authorization_id, "threshold": 1, "transaction_id": f"t-{secrets.token_hex(4)}"})

    assert [(await call()).status_code for call in (query, check, query)] == [200, 200, 200]
    for call in (query, check):
        refused = await call()
        wait = assert_limited(refused, "partner_quota_exhausted")
        assert wait <= 24 * 3600
        assert "tier" not in refused.json()
    portrait = await client.get("/v1/portraits/91330402MA00000000", headers=bank.headers,
                                params={"authorization_id": authorization_id})
    assert_limited(portrait, "partner_quota_exhausted")
    assert await _allowed_reads(client, citizen.headers) == 3  # refused calls read and ledgered nothing


async def test_bulk_scoring_is_held_to_the_partners_rate(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="限速")
    client_id, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, purpose="loan_pre_approval", scopes=["tier"])
    await _limit(client, client_id, rate_limit_per_second=2)
    answers = await asyncio.gather(*(client.post("/v1/scores/query", headers=bank.headers,
                                                 json={"authorization_id": authorization_id}) for _ in range(10)))
    served = [r for r in answers if r.status_code == 200]
    # Ten calls may straddle a window boundary (and the setup's calls may share the first window):
    # at most two windows' worth get through.
    assert len(served) <= 4
    for r in answers:
        if r.status_code != 200:
            assert assert_limited(r, "partner_rate_limited") == 1
    assert await _allowed_reads(client, citizen.headers) == len(served)


async def test_bulk_credit_checks_stop_at_the_departments_quota(client, ctx) -> None:
    client_id, _, department = await partner_session(client, kind="government")
    await _limit(client, client_id, daily_quota=2)
    citizens = [await bound_citizen(client, ctx, name=f"核查{i}") for i in range(3)]
    answers = []
    for citizen in citizens:
        answers.append(await client.post("/v1/credit-checks", headers=department.headers, json={
            "subject": {"kind": "person", "id_number": citizen.person.id_number, "name": citizen.person.name},
            "business_type": "permit_issue"}))
    assert [r.status_code for r in answers[:2]] == [201, 201]
    assert_limited(answers[2], "partner_quota_exhausted")
    log = (await client.get("/v1/me/access-log", headers=citizens[2].headers)).json()["items"]
    assert log == []  # the refused check never looked the third citizen up


async def test_a_citizens_daily_use_cap_holds_for_threshold_checks_with_new_transaction_ids(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="每日")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, purpose="loan_post_management",
                                               scopes=["tier"])  # cap: 2 uses a day

    def check(transaction_id: str) -> Any:
        return client.post("/v1/scores/check", headers=bank.headers, json={
            "authorization_id": authorization_id, "threshold": 1, "transaction_id": transaction_id})

    first = await check("t-first")
    assert first.status_code == 200
    assert (await check("t-second")).status_code == 200
    assert_limited(await check("t-third"), "authorization_daily_cap")  # bisecting with fresh ids is capped
    again = await check("t-first")  # a retry of an answered transaction is the same answer, not a new use
    assert again.status_code == 200
    assert again.json() == first.json()


async def _merchant_with_benefit(client: Any) -> tuple[Any, str]:
    officer = await operator_session(client)
    scenario = f"f{secrets.token_hex(4)}"
    r = await client.post("/v1/admin/scenarios", headers=officer.headers, json={"code": scenario, "name": "限流"})
    assert r.status_code == 201, r.text
    merchant = await merchant_session(client, scenario)
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, quota_per_period=3, period="day")
    return merchant, str(benefit["id"])


async def test_redemption_refused_at_the_merchants_quota_spends_nothing(client, ctx) -> None:
    merchant, benefit_id = await _merchant_with_benefit(client)
    citizen = await bound_citizen(client, ctx, name="兑换")
    verified = await verification_for(client, merchant, citizen)
    await _limit(client, merchant.client_id, daily_quota=1)  # the verification used it up
    r = await client.post("/v1/benefits/redeem", headers={**merchant.headers, "Idempotency-Key": "k-quota"},
                          json={"verification_id": verified["verification_id"], "benefit_id": benefit_id})
    assert_limited(r, "partner_quota_exhausted")
    assert (await client.get("/v1/me/redemptions", headers=citizen.headers)).json()["items"] == []
    mine = (await client.get("/v1/me/benefits", headers=citizen.headers)).json()["items"]
    assert next(b for b in mine if b["id"] == benefit_id)["remaining_quota"] == 3


async def test_redemption_bursts_are_held_to_the_merchants_rate(client, ctx) -> None:
    merchant, benefit_id = await _merchant_with_benefit(client)
    citizens = [await bound_citizen(client, ctx, name=f"抢购{i}") for i in range(6)]
    verifications = [await verification_for(client, merchant, c) for c in citizens]
    await _limit(client, merchant.client_id, rate_limit_per_second=2)
    answers = await asyncio.gather(*(client.post(
        "/v1/benefits/redeem", headers={**merchant.headers, "Idempotency-Key": f"k-{i}"},
        json={"verification_id": v["verification_id"], "benefit_id": benefit_id})
        for i, v in enumerate(verifications)))
    redeemed = [r for r in answers if r.status_code == 201]
    assert len(redeemed) <= 4  # as for scoring: at most two windows' worth
    for r in answers:
        if r.status_code != 201:
            assert_limited(r, "partner_rate_limited")
    held = [len((await client.get("/v1/me/redemptions", headers=c.headers)).json()["items"]) for c in citizens]
    assert sum(held) == len(redeemed)  # exactly the answered redemptions exist


async def test_operator_login_throttle_holds_against_the_right_password(client, override_settings) -> None:
    from accounts.operators import create_operator

    username, password = f"op-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    await create_operator(username=username, password=password, role="auditor")
    with override_settings(operator_login_attempts_per_hour=3):
        for _ in range(3):
            r = await client.post("/v1/auth/token", json={"grant_type": "password", "username": username,
                                                          "password": "guess-" + secrets.token_hex(4)})
            assert r.json()["code"] == "invalid_credentials"
        right = await client.post("/v1/auth/token", json={"grant_type": "password", "username": username,
                                                          "password": password})
    assert_limited(right, "login_throttled")
    assert "access_token" not in right.json()
