"""OWASP API8 (security misconfiguration): production refuses unsafe settings, errors leak nothing,
every answer carries the security headers, and CORS admits only the configured mini-program / H5 origins."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, get

from api import domains
from api.app import create_app
from core.errors import ConfigurationError
from core.settings import Settings, dev_secret, generate_secret
from tests.factories import citizen_login

MINI_PROGRAM = "https://servicewechat.com"
H5 = "https://h5.xinyi.example"
PRODUCTION = {
    "XINYI_ENV": "production",
    "DATABASE_URL": "postgresql://xinyi@127.0.0.1:1/never_opened",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "XINYI_SMS_GATEWAY_URL": "https://sms.example/send",
    "XINYI_JWT_PRIVATE_KEY": generate_secret(),
    "XINYI_DATA_KEY": generate_secret(),
    "XINYI_HASH_KEY": generate_secret(),
    "XINYI_CONSENT_KEY": generate_secret(),
    "XINYI_CORS_ORIGINS": f"{MINI_PROGRAM},{H5}",
}
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}
_LEAK = "password=hunter2 SELECT id_number FROM persons"


def assert_security_headers(r: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, (r.request.url.path, r.status_code, name)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("secret", ["jwt_private_key", "data_key", "hash_key", "consent_key"])
def test_production_refuses_each_development_placeholder(secret: str) -> None:
    var = f"XINYI_{secret.upper()}"
    with pytest.raises(ConfigurationError, match="placeholder"):
        Settings.from_env({**PRODUCTION, var: base64.b64encode(dev_secret(secret)).decode()})


@pytest.mark.parametrize("origins", ["*", f"{H5},*", "null", "http://h5.xinyi.example", "https://*",
                                     "https://*.xinyi.example"])
def test_production_refuses_open_or_plain_http_cors(origins: str) -> None:
    with pytest.raises(ConfigurationError, match="XINYI_CORS_ORIGINS"):
        Settings.from_env({**PRODUCTION, "XINYI_CORS_ORIGINS": origins})


def test_development_may_name_a_local_origin() -> None:
    assert Settings.from_env({"XINYI_CORS_ORIGINS": "http://localhost:5173"}).cors_origins == ("http://localhost:5173",)


# ---------------------------------------------------------------- a production app


@get("/v1/owasp-boom", include_in_schema=False)
async def _boom() -> None:
    raise RuntimeError(_LEAK)


@pytest.fixture
async def production(app: Litestar, ctx: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An app built from production settings (its database and store are never opened), with a route that
    fails unexpectedly. Building it rebinds the tables, so the test app's engine is bound back after."""
    built = create_app(Settings.from_env(PRODUCTION))
    built.register(_boom)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=built, raise_app_exceptions=False),
                                     base_url="https://api.xinyi.example") as c:
            yield c
    finally:
        await built.state.ctx.close()
        domains.bind_tables(ctx.engine)


async def test_production_app_runs_without_debug(production: httpx.AsyncClient) -> None:
    app: Litestar = production._transport.app  # type: ignore[attr-defined]
    assert app.debug is False
    assert app.state.ctx.settings.is_production


async def test_an_unexpected_error_is_a_bare_problem_500(production: httpx.AsyncClient, caplog: Any) -> None:
    r = await production.get("/v1/owasp-boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json() == {"type": "https://xinyi.local/problems/internal_error", "title": "Internal error",
                        "status": 500, "code": "internal_error", "instance": "/v1/owasp-boom"}
    for fragment in ("Traceback", "RuntimeError", "hunter2", "SELECT", "owasp_misconfiguration.py"):
        assert fragment not in r.text
    assert_security_headers(r)
    # The log names the failure's class, not its message (which may carry personal data or SQL).
    assert "hunter2" not in caplog.text
    assert "RuntimeError" in caplog.text


# ---------------------------------------------------------------- security headers


async def test_security_headers_on_success_error_and_docs_answers(client, override_settings) -> None:
    citizen = await citizen_login(client)
    answers = [
        await client.get("/health/live"),  # success
        await client.get("/v1/me", headers=citizen.headers),  # authenticated success
        await client.get("/v1/me"),  # 401
        await client.get("/v1/admin/partners", headers=citizen.headers),  # 403
        await client.get("/v1/no-such-route"),  # 404 from the router, not a handler
        await client.delete("/v1/auth/otp"),  # 405
        await client.post("/v1/auth/otp", json={"phone": 1}),  # 422
        await client.post("/v1/auth/otp", content=b"{", headers={"content-type": "application/json"}),  # 400
        await client.post("/v1/auth/otp", content=b"x", headers={"content-type": "text/plain"}),  # 415
        await client.get("/schema/openapi.json"),  # docs
        await client.get("/schema/swagger"),
    ]
    with override_settings(otp_per_address_per_hour=0):
        answers.append(await client.post("/v1/auth/otp", json={"phone": "13800000000"}))  # 429
    assert sorted({r.status_code for r in answers}) == [200, 400, 401, 403, 404, 405, 415, 422, 429]
    for r in answers:
        assert_security_headers(r)


async def test_security_headers_on_a_production_500_and_404(production: httpx.AsyncClient) -> None:
    for r in (await production.get("/v1/owasp-boom"), await production.get("/v1/nothing")):
        assert_security_headers(r)


# ---------------------------------------------------------------- CORS


async def test_preflight_from_the_mini_program_and_h5_is_allowed(production: httpx.AsyncClient) -> None:
    for origin in (MINI_PROGRAM, H5):
        r = await production.options("/v1/me", headers={
            "Origin": origin, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, idempotency-key"})
        assert r.status_code == 204, r.text  # a preflight carries no token: never a 401
        assert r.headers["access-control-allow-origin"] == origin
        assert {"authorization", "idempotency-key"} <= {
            h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
        # Bearer tokens, not cookies: browsers are never told to send credentials along.
        assert "access-control-allow-credentials" not in r.headers
        assert_security_headers(r)


async def test_any_other_origin_gets_no_cors_grant(production: httpx.AsyncClient) -> None:
    lookalikes = ("https://evil.example", "https://h5.xinyi.example.evil.example", "null", H5.replace("https", "http"))
    for origin in lookalikes:
        preflight = await production.options("/v1/me", headers={"Origin": origin,
                                                                 "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in preflight.headers, origin
        simple = await production.get("/health/live", headers={"Origin": origin})
        assert simple.status_code == 200
        assert "access-control-allow-origin" not in simple.headers, origin
        assert "access-control-allow-credentials" not in simple.headers


async def test_actual_requests_from_allowed_origins_are_granted_and_vary(production: httpx.AsyncClient) -> None:
    r = await production.get("/health/live", headers={"Origin": H5})
    assert r.headers["access-control-allow-origin"] == H5
    assert "origin" in r.headers["vary"].lower()  # shared caches keep one answer per origin


async def test_without_configured_origins_nothing_is_granted(client) -> None:
    r = await client.get("/health/live", headers={"Origin": H5})
    assert "access-control-allow-origin" not in r.headers
