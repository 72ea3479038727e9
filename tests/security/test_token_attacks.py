"""Forged, expired, mis-addressed and tampered tokens are all refused with 401 problem+json."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from accounts.tables import RefreshToken
from credit.tables import CreditRecord
from partners.services import create_partner
from tests.factories import bound_citizen, citizen_login, operator_session, partner_session, record_row, registry_person


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


# ================================================================== every kind of token, every attack
#
# Access tokens of all three kinds (citizen, partner, operator) are forged from a real token's claims, so
# each forgery differs from an accepted token only by the attack. Refresh tokens, private_key_jwt client
# assertions and peer-city passports follow. Nothing that names a key location (`jku`, `x5u`, `jwk`) is
# ever fetched or trusted: a local server counts the connections it gets.


class KeyServer:
    """An HTTP server on 127.0.0.1 that would serve `jwks` to anyone who asked; counts who asks."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.connections = 0
        self._server: asyncio.Server | None = None

    def url(self, path: str = "/jwks.json") -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}{path}"

    async def __aenter__(self) -> KeyServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        body = json.dumps(self.jwks).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        writer.close()


@dataclass
class Attacker:
    """The attacker's own Ed25519 key, published on a server the attacker controls."""

    key: Ed25519PrivateKey
    jwk: dict[str, Any]
    server: KeyServer


@pytest.fixture
async def attacker() -> AsyncIterator[Attacker]:
    key = Ed25519PrivateKey.generate()
    jwk = {**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key())), "kid": "xinyi-1", "use": "sig",
           "alg": "EdDSA"}
    async with KeyServer({"keys": [jwk]}) as server:
        yield Attacker(key=key, jwk=jwk, server=server)


def _segments(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return _b64(header) + "." + _b64(claims)


def _hs256(secret: bytes, claims: dict[str, Any], header: dict[str, Any]) -> str:
    signing_input = _segments(claims, {**header, "alg": "HS256"})
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _public_forms(public: Any) -> list[bytes]:
    """Every form of a public key an HS256 confusion attack might use as the HMAC secret."""
    forms = [public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
             public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)]
    if isinstance(public, Ed25519PublicKey):
        forms.append(public.public_bytes(Encoding.Raw, PublicFormat.Raw))
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
    return [*forms, json.dumps(jwk).encode(), str(jwk["x"]).encode()]


def _attacks(ctx: Any, good: dict[str, Any], header: dict[str, Any], *, attacker: Attacker,
             sign: Any, public: Any) -> dict[str, str]:
    """Forgeries of one token: name → token. `sign(claims, header)` signs with the legitimate key."""
    now = int(time.time())
    leeway = ctx.settings.jwt_leeway_seconds
    forged = {
        "alg_none": _segments(good, {**header, "alg": "none"}) + ".",
        "alg_none_upper": _segments(good, {**header, "alg": "None"}) + ".",
        "other_key_same_kid": jwt.encode(good, attacker.key, algorithm="EdDSA", headers=header),
        "jku_to_attacker": jwt.encode(good, attacker.key, algorithm="EdDSA",
                                      headers={**header, "jku": attacker.server.url()}),
        "x5u_to_attacker": jwt.encode(good, attacker.key, algorithm="EdDSA",
                                      headers={**header, "x5u": attacker.server.url("/cert.pem")}),
        "embedded_jwk": jwt.encode(good, attacker.key, algorithm="EdDSA", headers={**header, "jwk": attacker.jwk}),
        "kid_path_traversal": jwt.encode(good, attacker.key, algorithm="EdDSA",
                                         headers={**header, "kid": "../../../../dev/null"}),
        "kid_sql": jwt.encode(good, attacker.key, algorithm="EdDSA", headers={**header, "kid": "x' OR '1'='1"}),
        "kid_url": jwt.encode(good, attacker.key, algorithm="EdDSA", headers={**header, "kid": attacker.server.url()}),
        "crit_unknown": sign(good, {**header, "crit": ["exp-ext"], "exp-ext": 1}),
        "crit_empty": sign(good, {**header, "crit": []}),
        "expired": sign({**good, "iat": now - 4000, "nbf": now - 4000, "exp": now - leeway - 60}, header),
        "not_yet_valid_nbf": sign({**good, "nbf": now + leeway + 120}, header),
        "not_yet_valid_iat": sign({**good, "iat": now + leeway + 120}, header),
        "no_exp": sign({k: v for k, v in good.items() if k != "exp"}, header),
    }
    for i, secret in enumerate(_public_forms(public)):
        forged[f"hs256_public_key_{i}"] = _hs256(secret, good, header)
    real = sign(good, header)
    head, payload, signature = real.split(".")
    for name, change in (("tampered_sub", {"sub": "someone_else"}), ("tampered_exp", {"exp": now + 10**6}),
                         ("tampered_scope", {"scope": "records:write scores:read", "role": "partner_admin"})):
        forged[name] = f"{head}.{_b64({**good, **change})}.{signature}"
    forged["tampered_header"] = f"{_b64({**header, 'kid': 'other'})}.{payload}.{signature}"
    forged["signature_stripped"] = f"{head}.{payload}."
    return forged


ACCESS_ROUTES = {"citizen": "/v1/me", "partner": "/v1/partners/me", "operator": "/v1/admin/partners"}


async def _access_token(client: Any, kind: str) -> str:
    if kind == "citizen":
        return (await citizen_login(client)).access_token
    if kind == "partner":
        return (await partner_session(client, kind="bank"))[2].access_token
    return (await operator_session(client, role="officer")).access_token


def _refused_with_problem(r: Any, codes: set[str], *, bearer: bool, status: int = 401) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] in codes, r.text
    if bearer:
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("kind", list(ACCESS_ROUTES))
async def test_every_forgery_of_every_access_token_kind_is_401(client, ctx, attacker: Attacker, kind: str) -> None:
    route = ACCESS_ROUTES[kind]
    real = await _access_token(client, kind)
    good = jwt.decode(real, options={"verify_signature": False})
    header = jwt.get_unverified_header(real)

    def sign(claims: dict[str, Any], headers: dict[str, Any]) -> str:
        return _sign(ctx, claims, {k: v for k, v in headers.items() if k != "alg"})

    # The control: our own key over the same claims and header is accepted, so each refusal below is the attack's.
    control = sign({**good, "jti": "control"}, header)
    assert (await client.get(route, headers={"Authorization": f"Bearer {control}"})).status_code == 200
    for name, token in _attacks(ctx, good, header, attacker=attacker, sign=sign, public=ctx.tokens._public).items():
        r = await client.get(route, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, f"{kind} {name}: {r.status_code} {r.text}"
        _refused_with_problem(r, {"invalid_token", "token_expired"}, bearer=True)
    assert attacker.server.connections == 0


@pytest.mark.parametrize("kind", list(ACCESS_ROUTES))
async def test_a_revoked_access_token_of_every_kind_is_401(client, kind: str) -> None:
    if kind == "partner":  # a confidential client: it revokes its token with its own credentials (RFC 7009 §2.1)
        client_id, secret, session = await partner_session(client, kind="bank")
        token, revoke = session.access_token, {"token": session.access_token, "client_id": client_id,
                                               "client_secret": secret}
    else:
        token = await _access_token(client, kind)
        revoke = {"token": token}
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get(ACCESS_ROUTES[kind], headers=headers)).status_code == 200
    assert (await client.post("/v1/auth/revoke", json=revoke)).status_code == 200
    _refused_with_problem(await client.get(ACCESS_ROUTES[kind], headers=headers), {"token_revoked"}, bearer=True)


async def test_a_partner_suspended_by_an_operator_is_401_everywhere(client, ctx) -> None:
    private, public_jwk = _ec_key()
    issued = await create_partner(name="停用银行", kind="bank", jwks=[public_jwk])
    token = await client.post("/v1/auth/token", json={"grant_type": "client_credentials",
                                                      "client_id": issued.client_id,
                                                      "client_secret": issued.client_secret})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert (await client.get("/v1/partners/me", headers=headers)).status_code == 200
    admin = await operator_session(client, role="partner_admin")
    r = await client.patch(f"/v1/admin/partners/{issued.client_id}", headers=admin.headers,
                           json={"status": "suspended"})
    assert r.status_code == 200, r.text
    # Its live token, its secret and its signing key all stop working at once.
    _refused_with_problem(await client.get("/v1/partners/me", headers=headers), {"partner_suspended", "token_revoked"},
                          bearer=True)
    r = await client.post("/v1/auth/token", json={"grant_type": "client_credentials", "client_id": issued.client_id,
                                                  "client_secret": issued.client_secret})
    _refused_with_problem(r, {"partner_suspended"}, bearer=False)
    r = await client.post("/v1/auth/token", json=_assertion_grant(
        issued.client_id, _client_assertion(private, issued.client_id, ctx.settings.jwt_issuer)))
    _refused_with_problem(r, {"partner_suspended"}, bearer=False)


async def test_forged_tokens_write_nothing(client, ctx, attacker: Attacker) -> None:
    source = (await partner_session(client, kind="data_source", scopes=["records:write"]))[2]
    person = await registry_person(ctx)
    good = jwt.decode(source.access_token, options={"verify_signature": False})
    forged = jwt.encode(good, attacker.key, algorithm="EdDSA", headers={"kid": "xinyi-1", "jku": attacker.server.url()})
    before = await CreditRecord.count()
    r = await client.post("/v1/records/batch", headers={"Authorization": f"Bearer {forged}"},
                          json=[record_row(person)])
    _refused_with_problem(r, {"invalid_token"}, bearer=True)
    assert await CreditRecord.count() == before
    citizen = await citizen_login(client)
    claims = jwt.decode(citizen.access_token, options={"verify_signature": False})
    r = await client.post("/v1/me/identity", headers={"Authorization": "Bearer " + _segments(claims, {"alg": "none"})
                                                      + "."}, json={"name": person.name, "id_number": person.id_number})
    _refused_with_problem(r, {"invalid_token"}, bearer=True)
    assert (await client.get("/v1/me", headers=citizen.headers)).json()["identity"] is None
    assert attacker.server.connections == 0


# ------------------------------------------------------------------ refresh tokens (opaque, at POST /v1/auth/token)


async def test_refresh_token_attacks_are_invalid_grant_and_issue_nothing(client) -> None:
    session = await citizen_login(client)
    operator = await operator_session(client)
    assert session.refresh_token
    assert operator.refresh_token

    async def refresh(token: str) -> Any:
        return await client.post("/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": token})

    flipped = session.refresh_token[:-1] + ("A" if session.refresh_token[-1] != "A" else "B")
    expired_session = await citizen_login(client)
    assert expired_session.refresh_token
    await RefreshToken.update({RefreshToken.expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        RefreshToken.token_hash == hashlib.sha256(expired_session.refresh_token.encode()).hexdigest())
    revoked_session = await citizen_login(client)
    assert revoked_session.refresh_token
    assert (await client.post("/v1/auth/revoke", json={"token": revoked_session.refresh_token})).status_code == 200
    before = await RefreshToken.count()
    for name, token in {
        "access_token_as_refresh": session.access_token,
        "tampered": flipped,
        "expired": expired_session.refresh_token,
        "revoked": revoked_session.refresh_token,
        "forged_jwt": jwt.encode({"sub": "acc_x", "exp": int(time.time()) + 60}, "x" * 32, algorithm="HS256"),
        "empty_like": "A",
    }.items():
        r = await refresh(token)
        assert r.status_code == 400, f"{name}: {r.text}"  # RFC 6749 §5.2 invalid_grant
        _refused_with_problem(r, {"invalid_refresh_token"}, bearer=False, status=400)
        assert r.json()["error"] == "invalid_grant"
    assert await RefreshToken.count() == before
    # The genuine ones still work: the refusals above were about the attacks, not the grant.
    assert (await refresh(session.refresh_token)).status_code == 200
    assert (await refresh(operator.refresh_token)).status_code == 200


# ------------------------------------------------------------------ private_key_jwt client assertions


def _ec_key() -> tuple[Any, dict[str, Any]]:
    private = ec.generate_private_key(ec.SECP256R1())
    public_jwk = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    public_jwk["kid"] = "k1"
    return private, public_jwk


def _assertion_claims(client_id: str, audience: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 120,
            "jti": secrets.token_hex(8)}


def _client_assertion(private: Any, client_id: str, audience: str) -> str:
    return jwt.encode(_assertion_claims(client_id, audience), private, algorithm="ES256", headers={"kid": "k1"})


def _assertion_grant(client_id: str, assertion: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}


async def test_every_forgery_of_a_client_assertion_is_401(client, ctx, attacker: Attacker) -> None:
    private, public_jwk = _ec_key()
    issued = await create_partner(name="私钥银行", kind="bank", jwks=[public_jwk], with_secret=False)
    client_id, audience = issued.client_id, f"{ctx.settings.jwt_issuer}/v1/auth/token"
    header = {"kid": "k1", "typ": "JWT"}

    def sign(claims: dict[str, Any], headers: dict[str, Any]) -> str:
        fresh = {**claims, "jti": secrets.token_hex(8)}  # every assertion is single use
        return jwt.encode(fresh, private, algorithm="ES256", headers={k: v for k, v in headers.items() if k != "alg"})

    good = _assertion_claims(client_id, audience)
    attacks = _attacks(ctx, good, header, attacker=attacker, sign=sign, public=private.public_key())
    attacks["wrong_issuer"] = sign({**good, "iss": "bank_someone_else"}, header)
    attacks["wrong_audience"] = sign({**good, "aud": "https://elsewhere.example"}, header)
    attacks["lives_too_long"] = sign({**good, "exp": good["iat"] + 3600}, header)
    attacks["crit_b64"] = sign(good, {**header, "crit": ["b64"], "b64": False})
    attacks["rsa_kty_confusion"] = _hs256(json.dumps(public_jwk).encode(), good, {**header, "alg": "RS256"})
    for name, assertion in attacks.items():
        r = await client.post("/v1/auth/token", json=_assertion_grant(client_id, assertion))
        assert r.status_code == 401, f"{name}: {r.status_code} {r.text}"
        _refused_with_problem(r, {"invalid_client"}, bearer=False)
    assert attacker.server.connections == 0
    # Control: a genuine assertion over the same claims is accepted.
    r = await client.post("/v1/auth/token", json=_assertion_grant(client_id, sign(good, header)))
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ peer-city passports
#
# A passport is not the caller's credential but a document the caller (a merchant, a peer city) asks us
# to check: a bad one is the documented 422 `passport_*` problem, while the caller's own token decides 401.


async def test_passport_forgeries_are_refused_and_name_no_key_location(client, ctx, attacker: Attacker) -> None:
    from partners.adapters import PASSPORT_TYP
    from tests.scenario_factories import merchant_session

    merchant = await merchant_session(client)
    citizen = await bound_citizen(client, ctx, name="林护照")
    real = (await client.get("/v1/me/credit-passport", headers=citizen.headers)).json()["passport"]
    claims = jwt.decode(real, options={"verify_signature": False})
    header = jwt.get_unverified_header(real)
    assert header["typ"] == PASSPORT_TYP

    def sign(body: dict[str, Any], headers: dict[str, Any]) -> str:
        return jwt.encode(body, ctx.tokens._private, algorithm="EdDSA",
                          headers={k: v for k, v in headers.items() if k != "alg"})

    attacks = _attacks(ctx, claims, header, attacker=attacker, sign=sign, public=ctx.tokens._public)
    attacks["unknown_issuer"] = jwt.encode({**claims, "iss": "https://evil.example"}, attacker.key,
                                           algorithm="EdDSA", headers={**header, "jku": attacker.server.url()})
    for name, passport in attacks.items():
        r = await client.post("/v1/federation/passports/verify", headers=merchant.headers, json={"passport": passport})
        assert r.status_code == 422, f"{name}: {r.status_code} {r.text}"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"].startswith("passport_"), f"{name}: {r.text}"
    assert attacker.server.connections == 0
    r = await client.post("/v1/federation/passports/verify", headers=merchant.headers,
                          json={"passport": sign(claims, header)})
    assert r.status_code == 200, r.text
