"""Forged, expired, mis-addressed and tampered tokens are all refused with 401 problem+json."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.factories import citizen_login


def _claims(ctx: Any, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ctx.tokens.issuer, "aud": ctx.tokens.audience, "sub": "acc_x", "iat": now, "nbf": now,
              "exp": now + 300, "jti": "j1", "typ": "citizen", "scope": ""}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(ctx: Any, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(claims, ctx.tokens._private, algorithm="EdDSA", headers=headers)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _assert_refused(client: Any, token: str, code: str | None = None) -> None:
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if code:
        assert r.json()["code"] == code


async def test_alg_none_is_refused(client, ctx) -> None:
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims(ctx)) + "."
    await _assert_refused(client, token, "invalid_token")


async def test_hs256_signed_with_the_public_key_is_refused(client, ctx) -> None:
    public = ctx.tokens._public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64(_claims(ctx))
    import hashlib
    import hmac
    signature = base64.urlsafe_b64encode(
        hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    await _assert_refused(client, f"{header}.{payload}.{signature}", "invalid_token")


async def test_token_signed_by_another_key_is_refused(client, ctx) -> None:
    token = jwt.encode(_claims(ctx), Ed25519PrivateKey.generate(), algorithm="EdDSA")
    await _assert_refused(client, token, "invalid_token")


@pytest.mark.parametrize(("field", "value", "code"), [
    ("aud", "someone-else", "invalid_token"),
    ("iss", "https://evil.example", "invalid_token"),
    ("exp", 1_000_000, "token_expired"),
    ("nbf", 4_000_000_000, "invalid_token"),
    ("iat", None, "invalid_token"),
    ("jti", None, "invalid_token"),
])
async def test_wrong_registered_claims_are_refused(client, ctx, field, value, code) -> None:
    await _assert_refused(client, _sign(ctx, _claims(ctx, **{field: value})), code)


async def test_expiry_within_leeway_is_tolerated_but_not_beyond(client, ctx) -> None:
    session = await citizen_login(client)
    principal = ctx.tokens.verify(session.access_token)
    base = _claims(ctx, sub=principal.subject)
    ok = _sign(ctx, {**base, "exp": int(time.time()) - 5})
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {ok}"})).status_code == 200
    late = _sign(ctx, {**base, "exp": int(time.time()) - 120})
    await _assert_refused(client, late, "token_expired")


async def test_unknown_critical_header_is_refused(client, ctx) -> None:
    token = _sign(ctx, _claims(ctx), headers={"crit": ["exp-ext"], "exp-ext": 1})
    await _assert_refused(client, token, "invalid_token")


async def test_tampered_payload_is_refused(client, ctx) -> None:
    session = await citizen_login(client)
    header, payload, signature = session.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["typ"] = "operator"
    claims["role"] = "partner_admin"
    await _assert_refused(client, f"{header}.{_b64(claims)}.{signature}", "invalid_token")


async def test_garbage_and_missing_tokens(client) -> None:
    await _assert_refused(client, "not-a-token", "invalid_token")
    r = await client.get("/v1/me")
    assert r.status_code == 401
    assert r.json()["code"] == "missing_token"
    r = await client.get("/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.json()["code"] == "missing_token"


async def test_jwks_publishes_the_verification_key(client, ctx) -> None:
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys[0]["kty"] == "OKP"
    assert keys[0]["alg"] == "EdDSA"
    assert "d" not in keys[0]
    session = await citizen_login(client)
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(session.access_token, key, algorithms=["EdDSA"], audience=ctx.tokens.audience)
    assert claims["typ"] == "citizen"
