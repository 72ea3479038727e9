"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from tests.factories import citizen_login

CONTRACT_PATHS = ["/v1/auth/otp", "/v1/auth/token", "/v1/auth/revoke", "/v1/me/identity",
                  "/.well-known/jwks.json", "/health/live", "/health/ready", "/metrics"]


async def test_live_and_ready(client) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "store": "ok"}


async def test_ready_names_what_is_down(client, ctx) -> None:
    class BrokenStore:
        async def ping(self) -> None:
            raise ConnectionError("store gone")

    original = ctx.store
    ctx.store = BrokenStore()
    try:
        r = await client.get("/health/ready")
    finally:
        ctx.store = original
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "not_ready"
    assert r.json()["checks"]["store"].startswith("down")
    assert r.json()["checks"]["database"] == "ok"


async def test_metrics_by_route_template(client) -> None:
    session = await citizen_login(client)
    await client.get("/v1/me", headers=session.headers)
    text = (await client.get("/metrics")).text
    assert "xinyi_requests_total" in text
    assert 'path="/v1/me"' in text
    assert "xinyi_request_duration_seconds" in text
    assert session.phone not in text


async def test_openapi_lists_every_route_with_tags_and_security(client) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    for path in CONTRACT_PATHS:
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/me"]["get"]["security"] == [{"BearerAuth": []}]
    assert {t["name"] for t in spec["tags"]} >= {"auth", "citizen", "partner", "admin", "ops"}
    docs = await client.get("/schema/swagger")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
