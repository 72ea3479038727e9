"""Citizens log in by SMS code; refresh tokens rotate; reuse ends the session; revocation is immediate."""

from __future__ import annotations

import asyncio

from tests.factories import address, citizen_login, phone


async def _send_code(client, number: str, addr: str | None = None):  # type: ignore[no-untyped-def]
    response = await client.post("/v1/auth/otp", json={"phone": number},
                                 headers={"X-Forwarded-For": addr or address()})
    assert response.status_code == 202, response.text
    return response.json()["dev_code"]


async def test_login_with_sms_code_gives_working_tokens(client) -> None:
    session = await citizen_login(client)
    me = await client.get("/v1/me", headers=session.headers)
    assert me.status_code == 200
    assert me.json()["phone"] == session.phone  # the subject sees their own phone
    assert me.json()["identity"] is None


async def test_same_phone_logs_into_the_same_account(client) -> None:
    number = phone()
    first = await citizen_login(client, number=number)
    await asyncio.sleep(0)
    client.app.state.ctx.settings  # noqa: B018 - same app
    second_code_wait = await client.post("/v1/auth/otp", json={"phone": number},
                                         headers={"X-Forwarded-For": address()})
    assert second_code_wait.status_code == 429  # resend throttled per phone
    assert second_code_wait.json()["code"] == "otp_resend_throttled"
    assert int(second_code_wait.headers["retry-after"]) > 0
    me1 = (await client.get("/v1/me", headers=first.headers)).json()
    assert me1["account_id"].startswith("acc_")


async def test_wrong_code_is_refused_and_attempts_are_capped(client) -> None:
    number = phone()
    code = await _send_code(client, number)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        r = await client.post("/v1/auth/token", json={"grant_type": "otp", "phone": number, "code": wrong})
        assert r.status_code == 400  # RFC 6749 §5.2
        assert (r.json()["code"], r.json()["error"]) == ("invalid_otp", "invalid_grant")
        assert r.headers["content-type"].startswith("application/problem+json")
    # the sixth attempt is refused even with the right code, and the code is burnt
    r = await client.post("/v1/auth/token", json={"grant_type": "otp", "phone": number, "code": code})
    assert r.status_code == 429
    assert r.json()["code"] == "otp_attempts_exceeded"
    assert "retry-after" in r.headers


async def test_code_is_single_use_even_under_concurrency(client) -> None:
    number = phone()
    code = await _send_code(client, number)
    body = {"grant_type": "otp", "phone": number, "code": code}
    results = await asyncio.gather(*(client.post("/v1/auth/token", json=body) for _ in range(5)))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) == 1, statuses
    assert all(s == 400 for s in statuses if s != 200)


async def test_codes_are_throttled_per_client_address(client, override_settings) -> None:
    addr = address()
    with override_settings(otp_per_address_per_hour=3):
        for _ in range(3):
            await _send_code(client, phone(), addr)
        r = await client.post("/v1/auth/otp", json={"phone": phone()}, headers={"X-Forwarded-For": addr})
    assert r.status_code == 429
    assert r.json()["code"] == "otp_address_throttled"


async def test_invalid_phone_is_a_clear_422(client) -> None:
    # The phone pattern is part of the published schema and checked as the body is decoded.
    r = await client.post("/v1/auth/otp", json={"phone": "12345678901"})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"
    assert r.json()["errors"][0]["field"] == "phone"


async def test_production_never_returns_the_code(client, override_settings) -> None:
    with override_settings(env="production"):
        r = await client.post("/v1/auth/otp", json={"phone": phone()}, headers={"X-Forwarded-For": address()})
    assert r.status_code == 202
    assert "dev_code" not in r.json()


async def test_refresh_rotates_and_reuse_revokes_the_family(client) -> None:
    session = await citizen_login(client)
    r1 = await client.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                   "refresh_token": session.refresh_token})
    assert r1.status_code == 200
    rotated = r1.json()
    assert rotated["refresh_token"] != session.refresh_token
    # the old refresh token is spent: presenting it again is treated as theft
    reuse = await client.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                      "refresh_token": session.refresh_token})
    assert reuse.status_code == 400
    assert (reuse.json()["code"], reuse.json()["error"]) == ("refresh_token_reused", "invalid_grant")
    # ... which ends the whole session: the rotated refresh token and every access token die with it
    after = await client.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                      "refresh_token": rotated["refresh_token"]})
    assert after.status_code == 400
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert me.status_code == 401
    assert me.json()["code"] == "token_revoked"


async def test_concurrent_refresh_with_one_token_succeeds_once(client) -> None:
    session = await citizen_login(client)
    body = {"grant_type": "refresh_token", "refresh_token": session.refresh_token}
    results = await asyncio.gather(*(client.post("/v1/auth/token", json=body) for _ in range(6)))
    assert sorted(r.status_code for r in results).count(200) == 1


async def test_revoked_access_token_is_denied_at_once(client) -> None:
    session = await citizen_login(client)
    assert (await client.get("/v1/me", headers=session.headers)).status_code == 200
    r = await client.post("/v1/auth/revoke", json={"token": session.access_token})
    assert r.status_code == 200
    denied = await client.get("/v1/me", headers=session.headers)
    assert denied.status_code == 401
    assert denied.json()["code"] == "token_revoked"


async def test_revoking_a_refresh_token_ends_the_session(client) -> None:
    session = await citizen_login(client)
    await client.post("/v1/auth/revoke", json={"token": session.refresh_token})
    r = await client.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                  "refresh_token": session.refresh_token})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    assert (await client.get("/v1/me", headers=session.headers)).status_code == 401


async def test_token_response_is_not_cacheable(client) -> None:
    number = phone()
    code = await _send_code(client, number)
    r = await client.post("/v1/auth/token", json={"grant_type": "otp", "phone": number, "code": code})
    assert r.headers["cache-control"] == "no-store"


async def test_codes_per_phone_per_day_are_capped(client, override_settings) -> None:
    number = phone()
    with override_settings(otp_per_phone_per_day=2, otp_resend_seconds=1):
        statuses = []
        for _ in range(3):
            r = await client.post("/v1/auth/otp", json={"phone": number}, headers={"X-Forwarded-For": address()})
            statuses.append((r.status_code, r.json().get("code")))
            await asyncio.sleep(1.1)
    assert statuses[:2] == [(202, None), (202, None)]
    assert statuses[2] == (429, "otp_daily_limit")
