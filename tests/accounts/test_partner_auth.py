"""Partners authenticate with a client secret or private_key_jwt; scopes are enforced per route."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from partners.services import create_partner
from tests.factories import citizen_login, operator_session, partner_session


async def test_client_secret_grant_carries_partner_kind_and_scopes(client, ctx) -> None:
    client_id, _, session = await partner_session(client, kind="bank")
    principal = ctx.tokens.verify(session.access_token)
    assert principal.kind == "partner"
    assert principal.partner_kind == "bank"
    assert "scores:read" in principal.scopes
    me = await client.get("/v1/partners/me", headers=session.headers)
    assert me.status_code == 200
    assert me.json()["client_id"] == client_id
    assert me.json()["auth_methods"] == ["client_secret"]


async def test_wrong_secret_and_unknown_client_look_the_same(client) -> None:
    client_id, _, _ = await partner_session(client)
    wrong = await client.post("/v1/auth/token", json={"grant_type": "client_credentials", "client_id": client_id,
                                                      "client_secret": "nope"})
    unknown = await client.post("/v1/auth/token", json={"grant_type": "client_credentials",
                                                        "client_id": "bank_doesnotexist", "client_secret": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_client"


async def test_requested_scope_must_be_held(client) -> None:
    client_id, secret, _ = await partner_session(client, kind="data_source")
    narrow = await client.post("/v1/auth/token", json={"grant_type": "client_credentials", "client_id": client_id,
                                                       "client_secret": secret, "scope": "records:write"})
    assert narrow.status_code == 200
    assert narrow.json()["scope"] == "records:write"
    wider = await client.post("/v1/auth/token", json={"grant_type": "client_credentials", "client_id": client_id,
                                                      "client_secret": secret, "scope": "scores:read"})
    assert wider.status_code == 400
    assert wider.json()["code"] == "invalid_scope"


async def test_a_kind_cannot_be_given_another_kinds_scopes(client) -> None:
    op = await operator_session(client, role="partner_admin")
    r = await client.post("/v1/admin/partners", headers=op.headers,
                          json={"name": "数据源", "kind": "data_source", "scopes": ["scores:read"]})
    assert r.status_code == 422
    assert r.json()["code"] == "scope_not_allowed_for_kind"


def _ec_key() -> tuple[Any, dict[str, Any]]:
    private = ec.generate_private_key(ec.SECP256R1())
    public_jwk = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    public_jwk["kid"] = "k1"
    return private, public_jwk


def _assertion(private: Any, client_id: str, audience: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 120,
              "jti": str(uuid.uuid4())}
    claims.update(overrides)
    return jwt.encode(claims, private, algorithm="ES256", headers={"kid": "k1"})


async def _jwt_partner() -> tuple[str, Any]:
    private, public_jwk = _ec_key()
    issued = await create_partner(name="private key bank", kind="bank", jwks=[public_jwk], with_secret=False)
    return issued.client_id, private


def _grant(client_id: str, assertion: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}


async def test_private_key_jwt_grant(client, ctx) -> None:
    client_id, private = await _jwt_partner()
    audience = f"{ctx.settings.jwt_issuer}/v1/auth/token"
    r = await client.post("/v1/auth/token", json=_grant(client_id, _assertion(private, client_id, audience)))
    assert r.status_code == 200, r.text
    assert ctx.tokens.verify(r.json()["access_token"]).subject == client_id


async def test_private_key_jwt_assertion_is_single_use(client, ctx) -> None:
    client_id, private = await _jwt_partner()
    assertion = _assertion(private, client_id, ctx.settings.jwt_issuer)
    results = await asyncio.gather(*(client.post("/v1/auth/token", json=_grant(client_id, assertion))
                                     for _ in range(4)))
    assert sorted(r.status_code for r in results) == [200, 401, 401, 401]
    assert {r.json().get("code") for r in results if r.status_code == 401} == {"assertion_replayed"}


async def test_private_key_jwt_refusals(client, ctx) -> None:
    client_id, private = await _jwt_partner()
    other, _ = _ec_key()
    aud = ctx.settings.jwt_issuer
    bad = [
        _assertion(other, client_id, aud),  # signed by a key that is not registered
        _assertion(private, client_id, "https://elsewhere"),  # wrong audience
        _assertion(private, client_id, aud, exp=int(time.time()) - 300),  # expired
        _assertion(private, client_id, aud, exp=int(time.time()) + 3600),  # lives too long
        _assertion(private, client_id, aud, sub="someone-else"),
    ]
    for assertion in bad:
        r = await client.post("/v1/auth/token", json=_grant(client_id, assertion))
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "invalid_client"


async def test_scope_guard_and_principal_kinds(client) -> None:
    _, _, bank = await partner_session(client, kind="bank")
    citizen = await citizen_login(client)
    assert (await client.get("/v1/me", headers=bank.headers)).json()["code"] == "wrong_principal"
    r = await client.get("/v1/partners/me", headers=citizen.headers)
    assert r.status_code == 403
    assert r.json()["code"] == "wrong_principal"
    r = await client.get("/v1/admin/partners", headers=bank.headers)
    assert r.status_code == 403
