"""Redis killed under a running production server: every request that needs the shared store fails closed with
503 `store_unavailable` (no revocation, nonce, single-use code or rate-limit check is skipped, nothing
half-done is left behind), /health/ready says the store is down and why, and once Redis is back on the
same port the same requests succeed again without touching the API process."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from accounts.operators import create_operator
from partners.services import create_partner
from scenarios.tables import CreditOrder, Redemption
from tests.factories import WebhookReceiver, citizen_login, phone
from tests.faults.conftest import Services, World, wait_until_ready

PROBLEM_JSON = "application/problem+json"


@dataclass
class Probe:
    """One request of an endpoint class that depends on Redis, and its status when Redis is up."""

    name: str
    send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
    ok: int
    after: Callable[[], Awaitable[None]] | None = None  # what a success must have done (checked in phase "up")


def _otp_sent_to(gateway: WebhookReceiver, number: str) -> str:
    """The code the server asked the SMS gateway to deliver to `number`."""
    for request in reversed(gateway.requests):
        body = json.loads(request.body)
        if body["phone"] == number:
            match = re.search(r"验证码 (\d{6})", body["text"])
            assert match is not None, body
            return match.group(1)
    raise AssertionError("no SMS was sent to the phone")


@dataclass
class Callers:
    """Credentials beyond the seeded world that the auth probes need."""

    operator_username: str
    operator_password: str
    assertion_client_id: str
    assertion_key: Any
    audience: str


async def _callers(ctx: Any) -> Callers:
    username, password = f"op-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    await create_operator(username=username, password=password, role="officer")
    key = ec.generate_private_key(ec.SECP256R1())
    public_jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public_jwk["kid"] = "fault-k1"
    issued = await create_partner(name="断言银行", kind="bank", jwks=[public_jwk], with_secret=False)
    return Callers(operator_username=username, operator_password=password, assertion_client_id=issued.client_id,
                   assertion_key=key, audience=f"{ctx.settings.jwt_issuer}/v1/auth/token")


async def _probes(http: httpx.AsyncClient, client: Any, world: World, callers: Callers,
                  gateway: WebhookReceiver) -> list[Probe]:
    """Fresh single-use material (codes, verifications, an OTP, an assertion) made while Redis is up, and
    the requests that use it."""
    citizen, bank = world.citizens[0], world.bank

    async def fresh_code() -> str:
        r = await http.post("/v1/me/benefit-codes", headers=citizen.headers, json={})
        assert r.status_code == 201, r.text
        return str(r.json()["code"])

    async def verification(merchant: Any) -> str:
        r = await http.post("/v1/benefits/verify", headers=merchant.headers,
                            json={"code": await fresh_code(), "scenario": merchant.scenario})
        assert r.status_code == 200, r.text
        return str(r.json()["verification_id"])

    code = await fresh_code()
    redeem_verification = await verification(world.travel)
    order_verification = await verification(world.rental)
    order_no = f"FAULT-{secrets.token_hex(6)}"
    login_phone, otp_phone = phone(), phone()
    sent = await http.post("/v1/auth/otp", json={"phone": login_phone})
    assert sent.status_code == 202, sent.text
    otp = _otp_sent_to(gateway, login_phone)
    now = int(time.time())
    assertion = jwt.encode({"iss": callers.assertion_client_id, "sub": callers.assertion_client_id,
                            "aud": callers.audience, "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())},
                           callers.assertion_key, algorithm="ES256", headers={"kid": "fault-k1"})
    doomed = await citizen_login(client)  # a session whose access token the revoke probe revokes
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat()

    async def redeemed() -> None:
        assert await Redemption.exists().where(Redemption.verification_id == redeem_verification)

    async def ordered() -> None:
        assert await CreditOrder.exists().where(CreditOrder.merchant_order_no == order_no)

    async def revoked() -> None:
        r = await http.get("/v1/me", headers=doomed.headers)
        assert (r.status_code, r.json().get("code")) == (401, "token_revoked"), r.text

    return [
        Probe("token revocation probe (citizen route)", lambda h: h.get("/v1/me", headers=citizen.headers), 200),
        Probe("token revocation probe (operator route)",
              lambda h: h.get("/v1/admin/partners", headers=world.officer.headers), 200),
        Probe("score query (revocation, rate limit, daily cap)", lambda h: h.post(
            "/v1/scores/query", headers=bank.headers, json={"authorization_id": world.authorization_ids[0]}), 200),
        Probe("score check", lambda h: h.post("/v1/scores/check", headers=bank.headers, json={
            "authorization_id": world.authorization_ids[0], "threshold": 500,
            "transaction_id": f"tx-{secrets.token_hex(6)}"}), 200),
        Probe("benefit code (per-hour limit)", lambda h: h.post("/v1/me/benefit-codes", headers=citizen.headers,
                                                                 json={}), 201),
        Probe("benefit verify (single-use code)", lambda h: h.post(
            "/v1/benefits/verify", headers=world.travel.headers, json={"code": code, "scenario": "travel"}), 200),
        Probe("benefit redeem (Idempotency-Key)", lambda h: h.post(
            "/v1/benefits/redeem", headers={**world.travel.headers, "Idempotency-Key": secrets.token_hex(8)},
            json={"verification_id": redeem_verification, "benefit_id": world.travel_benefit}), 201, redeemed),
        Probe("credit order (Idempotency-Key)", lambda h: h.post(
            "/v1/credit-orders", headers={**world.rental.headers, "Idempotency-Key": secrets.token_hex(8)},
            json={"verification_id": order_verification, "kind": "deposit_free", "amount_fen": 1_000,
                  "merchant_order_no": order_no, "due_at": due}), 201, ordered),
        Probe("OTP send (per-address and per-phone limits)", lambda h: h.post(
            "/v1/auth/otp", json={"phone": otp_phone}), 202),
        Probe("OTP verify (single-use code, guess limit)", lambda h: h.post(
            "/v1/auth/token", json={"grant_type": "otp", "phone": login_phone, "code": otp}), 200),
        Probe("operator login (attempt limit)", lambda h: h.post("/v1/auth/token", json={
            "grant_type": "password", "username": callers.operator_username,
            "password": callers.operator_password}), 200),
        Probe("client assertion (jti replay check)", lambda h: h.post("/v1/auth/token", json={
            "grant_type": "client_credentials", "client_id": callers.assertion_client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}), 200),
        Probe("token revocation", lambda h: h.post("/v1/auth/revoke", json={"token": doomed.access_token}), 200,
              revoked),
    ]


def _store_unavailable(r: httpx.Response) -> bool:
    return (r.status_code == 503 and r.headers.get("content-type", "").startswith(PROBLEM_JSON)
            and r.json().get("code") == "store_unavailable")


async def test_redis_down_fails_closed_and_service_resumes_by_itself(
        *, services: Services, server: str, http: httpx.AsyncClient, client: Any, ctx: Any, world: World,
        sms_gateway: WebhookReceiver) -> None:
    callers = await _callers(ctx)
    # Everything the outage probes use is made while Redis is up: a 200 during the outage could only mean
    # a check was skipped.
    during = await _probes(http, client, world, callers, sms_gateway)
    services.redis.kill()
    try:
        answers = {p.name: await p.send(http) for p in during}
        ready = await http.get("/health/ready")
        # What does not need the store keeps working: the outage is scoped, not a blanket failure.
        live = await http.get("/health/live")
        catalog = await http.get("/v1/scenarios")
    finally:
        services.redis.start()

    wrong = {name: (r.status_code, r.text[:200]) for name, r in answers.items() if not _store_unavailable(r)}
    assert not wrong, f"expected 503 store_unavailable problem+json, got: {wrong}"
    assert all(r.headers.get("retry-after") for r in answers.values())
    assert ready.status_code == 503, ready.text
    problem = ready.json()
    assert problem["code"] == "not_ready"
    assert problem["checks"]["database"] == "ok"
    assert problem["checks"]["store"].startswith("down: redis unreachable"), problem
    assert (live.status_code, catalog.status_code) == (200, 200)
    # Nothing the refused requests would have written exists.
    for probe in during:
        if probe.after is not None:
            try:
                await probe.after()
            except AssertionError:
                continue
            raise AssertionError(f"{probe.name}: answered 503 but its effect exists")

    # Same port, same API process: it resumes by itself. Not even the first request after Redis accepts
    # connections again fails (pooled connections Redis closed are replaced, not used and answered 503).
    first = await http.get("/v1/me", headers=world.citizens[0].headers)
    assert first.status_code == 200, first.text
    await wait_until_ready(http)
    after = await _probes(http, client, world, callers, sms_gateway)
    answers = {p.name: await p.send(http) for p in after}
    wrong = {name: (r.status_code, r.text[:200]) for (name, r), p in zip(answers.items(), after, strict=True)
             if r.status_code != p.ok}
    assert not wrong, f"after Redis returned: {wrong}"
    for probe in after:
        if probe.after is not None:
            await probe.after()
