"""Operators log in with a password; roles decide what they may do."""

from __future__ import annotations

import secrets
from typing import Any

from tests.factories import create_operator, operator_session


async def test_partner_admin_registers_a_partner_and_sees_the_secret_once(client) -> None:
    op = await operator_session(client, role="partner_admin")
    r = await client.post("/v1/admin/partners", headers=op.headers,
                          json={"name": "嘉兴银行", "kind": "bank"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["client_secret"]
    token = await client.post("/v1/auth/token", json={"grant_type": "client_credentials", **created})
    assert token.status_code == 200
    listed = await client.get("/v1/admin/partners", headers=op.headers, params={"kind": "bank", "limit": 100})
    assert listed.status_code == 200
    body = listed.text
    assert created["client_id"] in body
    assert created["client_secret"] not in body


async def test_roles_are_enforced(client) -> None:
    auditor = await operator_session(client, role="auditor")
    r = await client.post("/v1/admin/partners", headers=auditor.headers, json={"name": "x", "kind": "bank"})
    assert r.status_code == 403
    assert r.json()["code"] == "insufficient_role"
    assert (await client.get("/v1/admin/partners", headers=auditor.headers)).status_code == 200


async def test_admin_listing_pages_with_a_cursor(client) -> None:
    op = await operator_session(client, role="partner_admin")
    for i in range(3):
        await client.post("/v1/admin/partners", headers=op.headers, json={"name": f"city {i}", "kind": "city_peer"})
    first = (await client.get("/v1/admin/partners", headers=op.headers,
                              params={"kind": "city_peer", "limit": 2})).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = (await client.get("/v1/admin/partners", headers=op.headers,
                               params={"kind": "city_peer", "limit": 2, "cursor": first["next_cursor"]})).json()
    assert {p["client_id"] for p in first["items"]}.isdisjoint({p["client_id"] for p in second["items"]})
    too_big = await client.get("/v1/admin/partners", headers=op.headers, params={"limit": 1000})
    assert too_big.status_code == 422


async def test_wrong_password_and_login_throttle(client, override_settings) -> None:
    op = await operator_session(client, role="officer")
    assert op.refresh_token
    with override_settings(operator_login_attempts_per_hour=3):
        codes = []
        for _ in range(4):
            r = await client.post("/v1/auth/token", json={"grant_type": "password", "username": "ghost-user",
                                                          "password": "wrong-password"})
            codes.append(r.json()["code"])
    assert codes == ["invalid_credentials"] * 3 + ["login_throttled"]


async def test_only_failed_logins_count_towards_the_throttle(client, override_settings) -> None:
    username, password = f"op-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    await create_operator(username=username, password=password, role="auditor")

    async def login(secret: str) -> Any:
        return await client.post("/v1/auth/token", json={"grant_type": "password", "username": username,
                                                         "password": secret})

    with override_settings(operator_login_attempts_per_hour=3):
        for _ in range(5):  # an operator who logs in all day long is never locked out by their own logins
            assert (await login("wrong-password")).json()["code"] == "invalid_credentials"
            assert (await login(password)).status_code == 200
        for _ in range(3):
            await login("wrong-password")
        locked = await login(password)  # after the hour's allowance of failures, even the right password waits
        assert locked.status_code == 429
        assert locked.json()["code"] == "login_throttled"


async def test_operator_refresh_keeps_the_role(client, ctx) -> None:
    op = await operator_session(client, role="partner_admin")
    r = await client.post("/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": op.refresh_token})
    assert r.status_code == 200
    assert ctx.tokens.verify(r.json()["access_token"]).role == "partner_admin"
