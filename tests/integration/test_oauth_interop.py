"""The token endpoint as off-the-shelf OAuth 2.0 clients use it (RFC 6749, RFC 7009, RFC 8414).

The client is authlib's own `OAuth2Client` (in-process through an ASGI transport, and against a real
`xinyi serve` process), not requests written to fit the server.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from accounts.operators import create_operator
from accounts.tables import Operator
from partners.scopes import SCOPES
from partners.services import create_partner
from tests.conftest import ApiClient
from tests.factories import address, citizen_login, operator_session, phone
from tests.servers import free_port, xinyi_server

TOKEN, REVOKE, METADATA = "/v1/auth/token", "/v1/auth/revoke", "/.well-known/oauth-authorization-server"
FORM = {"content-type": "application/x-www-form-urlencoded"}
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]


async def _bank(name: str | None = None) -> tuple[str, str]:
    issued = await create_partner(name=name or f"OAuth 银行 {secrets.token_hex(3)}", kind="bank")
    assert issued.client_secret is not None
    return issued.client_id, issued.client_secret


def _oauth_client(client: ApiClient, client_id: str, secret: str, method: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(client_id, secret, token_endpoint_auth_method=method,
                             revocation_endpoint_auth_method=method, base_url=str(client.base_url),
                             transport=httpx.ASGITransport(app=client.app))


def _oauth_problem(r: httpx.Response, status: int, error: str, code: str | None = None) -> dict[str, Any]:
    """An RFC 6749 §5.2 error inside the usual problem+json body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    assert body["error"] == error, body
    assert body["code"] == (code or error), body
    assert body["status"] == status
    return body


def _basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded, joined with ':', then base64-encoded."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}


# ------------------------------------------------------------------ authlib drives the token endpoint


@pytest.mark.parametrize("method", SECRET_METHODS)
async def test_authlib_client_credentials_then_a_partner_call_then_revocation(client: ApiClient, method: str) -> None:
    client_id, secret = await _bank()
    async with _oauth_client(client, client_id, secret, method) as oauth:
        token = await oauth.fetch_token(TOKEN, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 3600
        assert set(token["scope"].split()) == {"authorizations:write", "scores:read", "scores:check",
                                                "portraits:read", "lending:write", "webhooks:read"}
        me = await oauth.get("/v1/partners/me")  # authlib sends the token as a Bearer header
        assert me.status_code == 200, me.text
        assert me.json()["client_id"] == client_id

        revoked = await oauth.revoke_token(REVOKE, token=token["access_token"], token_type_hint="access_token")
        assert revoked.status_code == 200, revoked.text
        after = await oauth.get("/v1/partners/me")
        assert (after.status_code, after.json()["code"]) == (401, "token_revoked")


async def test_authlib_narrower_scope_and_its_error_for_a_scope_not_held(client: ApiClient) -> None:
    client_id, secret = await _bank()
    async with _oauth_client(client, client_id, secret, "client_secret_basic") as oauth:
        token = await oauth.fetch_token(TOKEN, grant_type="client_credentials", scope="scores:check")
        assert token["scope"] == "scores:check"
        with pytest.raises(OAuthError) as refused:
            await oauth.fetch_token(TOKEN, grant_type="client_credentials", scope="records:write")
        assert refused.value.error == "invalid_scope"


@pytest.mark.parametrize("method", SECRET_METHODS)
async def test_authlib_understands_a_wrong_secret(client: ApiClient, method: str) -> None:
    client_id, _ = await _bank()
    async with _oauth_client(client, client_id, "not-the-secret", method) as oauth:
        with pytest.raises(OAuthError) as refused:
            await oauth.fetch_token(TOKEN, grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib signs assertions valid for an hour by default; this server takes at most 5 minutes, so the
    partner's client sets `exp` (a fresh claims dict each time: authlib adds its jti to the one it is given)."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        self.claims = {"exp": int(time.time()) + 120}
        return str(super().sign(auth, token_endpoint))


async def test_authlib_private_key_jwt(client: ApiClient, ctx: Any) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_jwk = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    public_jwk["kid"] = "bank-key-1"
    issued = await create_partner(name="私钥银行", kind="bank", jwks=[public_jwk], with_secret=False)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    # authlib's assertion names the endpoint it is sent to as its audience (RFC 7523 §3).
    signer = ShortLivedPrivateKeyJWT(alg="ES256", headers={"kid": "bank-key-1"})
    async with AsyncOAuth2Client(issued.client_id, ECKey.import_key(pem), token_endpoint_auth_method=signer,
                                 revocation_endpoint_auth_method=signer, base_url=str(client.base_url),
                                 transport=httpx.ASGITransport(app=client.app)) as oauth:
        endpoint = f"{ctx.settings.public_url}{TOKEN}"
        token = await oauth.fetch_token(endpoint, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert (await oauth.get("/v1/partners/me")).status_code == 200
        revoked = await oauth.revoke_token(f"{ctx.settings.public_url}{REVOKE}", token=token["access_token"])
        assert revoked.status_code == 200, revoked.text
        assert (await oauth.get("/v1/partners/me")).status_code == 401


# ------------------------------------------------------------------ the answers themselves


async def test_json_token_answers_carry_token_type_expires_in_and_scope(client: ApiClient) -> None:
    client_id, secret = await _bank()
    r = await client.post(TOKEN, json={"grant_type": "client_credentials", "client_id": client_id,
                                       "client_secret": secret, "scope": "scores:read scores:check"})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "scores:check scores:read"
    citizen = await citizen_login(client)  # JSON clients of the other grants work as before
    assert (await client.get("/v1/me", headers=citizen.headers)).status_code == 200
    refreshed = await client.post(TOKEN, json={"grant_type": "refresh_token", "refresh_token": citizen.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "Bearer"
    assert "scope" not in refreshed.json()  # a citizen session carries no OAuth scope


async def test_form_encoded_user_grants(client: ApiClient) -> None:
    number, addr = phone(), {"X-Forwarded-For": address()}
    sent = await client.post("/v1/auth/otp", json={"phone": number}, headers=addr)
    code = sent.json()["dev_code"]
    login = await client.post(TOKEN, data={"grant_type": "otp", "phone": number, "code": code}, headers=addr)
    assert login.status_code == 200, login.text
    assert login.json()["token_type"] == "Bearer"
    refreshed = await client.post(TOKEN, data={"grant_type": "refresh_token",
                                               "refresh_token": login.json()["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text


async def test_form_parameters_per_rfc6749_section_3_2(client: ApiClient) -> None:
    client_id, secret = await _bank()
    # Unrecognised parameters are ignored; one sent without a value counts as not sent (all scopes).
    r = await client.post(TOKEN, content=f"grant_type=client_credentials&scope=&audience=x&foo=bar"
                          f"&client_id={client_id}&client_secret={secret}".encode(), headers=FORM)
    assert r.status_code == 200, r.text
    assert len(r.json()["scope"].split()) == 6
    # A charset parameter on the media type is fine.
    r = await client.post(TOKEN, content=b"grant_type=client_credentials",
                          headers={**_basic(client_id, secret),
                                   "content-type": "application/x-www-form-urlencoded; charset=UTF-8"})
    assert r.status_code == 200, r.text
    # Parameters must not be included more than once (even with the same value).
    r = await client.post(TOKEN, content=f"grant_type=client_credentials&client_id={client_id}&client_secret="
                          f"{secret}&scope=scores:read&scope=scores:read".encode(), headers=FORM)
    _oauth_problem(r, 400, "invalid_request", "duplicate_parameter")


async def test_basic_credentials_are_form_urlencoded_first(client: ApiClient) -> None:
    """RFC 6749 §2.3.1: a client whose id or secret holds reserved characters sends them percent-encoded."""
    client_id, secret = await _bank()
    encoded = {"Authorization": "Basic " + base64.b64encode(
        f"{client_id}:{secret}".replace("_", "%5F").replace("-", "%2D").encode()).decode()}
    r = await client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=encoded)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ every RFC 6749 §5.2 error, form-encoded


async def test_invalid_request_answers(client: ApiClient) -> None:
    client_id, secret = await _bank()
    cases: list[tuple[bytes, dict[str, str], str]] = [
        (b"", {}, "missing_grant_type"),
        (b"scope=scores:read", {}, "missing_grant_type"),
        (b"grant_type=otp&phone=13800138000", {}, "validation_failed"),  # no code
        (b"grant_type=otp&phone=13800138000&code=12345x", {}, "validation_failed"),
        (b"grant_type=client_credentials&client_id=%FF%FE&client_secret=x", {}, "malformed_form"),  # not UTF-8
        (b"grant_type=client_credentials&client_id=a%00b&client_secret=x", {}, "validation_failed"),  # NUL
        (b"grant_type=password&username=op&password=" + b"x" * 300, {}, "validation_failed"),
        ("&".join(f"p{i}=1" for i in range(40)).encode() + b"&grant_type=client_credentials", {}, "malformed_form"),
        # two client authentication methods at once (RFC 6749 §2.3)
        (f"grant_type=client_credentials&client_secret={secret}".encode(), _basic(client_id, secret),
         "multiple_client_authentication"),
        (f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}&client_assertion_type="
         f"urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=a.b.c".encode(), {},
         "multiple_client_authentication"),
        (b"grant_type=client_credentials&client_id=bank_other", _basic(client_id, secret), "client_id_mismatch"),
    ]
    for body, headers, code in cases:
        r = await client.post(TOKEN, content=body, headers={**FORM, **headers})
        _oauth_problem(r, 400, "invalid_request", code)


async def test_invalid_client_answers(client: ApiClient) -> None:
    client_id, secret = await _bank()
    # Basic was used: 401 with a Basic challenge (RFC 6749 §5.2).
    r = await client.post(TOKEN, data={"grant_type": "client_credentials"}, headers=_basic(client_id, "wrong"))
    _oauth_problem(r, 401, "invalid_client")
    assert r.headers["www-authenticate"].startswith("Basic realm=")
    for body in ({"grant_type": "client_credentials", "client_id": client_id, "client_secret": "wrong"},
                 {"grant_type": "client_credentials", "client_id": "bank_unknown", "client_secret": secret},
                 {"grant_type": "client_credentials", "client_id": client_id}):  # no authentication at all
        r = await client.post(TOKEN, data=body)
        _oauth_problem(r, 401, "invalid_client")
        assert r.headers["www-authenticate"].startswith("Basic")
    malformed = await client.post(TOKEN, data={"grant_type": "client_credentials"},
                                  headers={"Authorization": "Basic !!!not-base64"})
    _oauth_problem(malformed, 401, "invalid_client", "malformed_basic_credentials")


async def test_invalid_grant_answers(client: ApiClient) -> None:
    number = phone()
    sent = await client.post("/v1/auth/otp", json={"phone": number}, headers={"X-Forwarded-For": address()})
    wrong = "000000" if sent.json()["dev_code"] != "000000" else "111111"
    r = await client.post(TOKEN, data={"grant_type": "otp", "phone": number, "code": wrong})
    _oauth_problem(r, 400, "invalid_grant", "invalid_otp")
    r = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": "no-such-token"})
    _oauth_problem(r, 400, "invalid_grant", "invalid_refresh_token")
    r = await client.post(TOKEN, data={"grant_type": "password", "username": "nobody", "password": "x"})
    _oauth_problem(r, 400, "invalid_grant", "invalid_credentials")
    # a disabled operator's right password: the grant's account may not log in (was 403 before RFC statuses)
    username, password = f"op-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    operator_id = await create_operator(username=username, password=password, role="officer")
    await Operator.update({Operator.status: "disabled"}).where(Operator.public_id == operator_id)
    r = await client.post(TOKEN, data={"grant_type": "password", "username": username, "password": password})
    _oauth_problem(r, 400, "invalid_grant", "account_suspended")


async def test_unauthorized_client_answers(client: ApiClient) -> None:
    """A partner authenticating on a grant of the city's own apps is told it may not use that grant."""
    client_id, secret = await _bank()
    operator = await operator_session(client)
    r = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": operator.refresh_token},
                          headers=_basic(client_id, secret))
    _oauth_problem(r, 400, "unauthorized_client")
    r = await client.post(TOKEN, data={"grant_type": "password", "username": "x", "password": "y",
                                       "client_id": client_id, "client_secret": secret})
    _oauth_problem(r, 400, "unauthorized_client")
    # ... after its credentials are checked: a wrong secret is still invalid_client.
    r = await client.post(TOKEN, data={"grant_type": "password", "username": "x", "password": "y"},
                          headers=_basic(client_id, "wrong"))
    _oauth_problem(r, 401, "invalid_client")
    # The refused partner did not spend the operator's refresh token.
    again = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": operator.refresh_token})
    assert again.status_code == 200, again.text


async def test_unsupported_grant_type_answers(client: ApiClient) -> None:
    client_id, secret = await _bank()
    for grant_type in ("urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer",
                       "implicit"):
        r = await client.post(TOKEN, data={"grant_type": grant_type, "code": "x"}, headers=_basic(client_id, secret))
        _oauth_problem(r, 400, "unsupported_grant_type")
    r = await client.post(TOKEN, json={"grant_type": "implicit", "code": "x"})
    _oauth_problem(r, 400, "unsupported_grant_type")
    # authorization_code is supported (partner-started consent, tests/accounts/test_par.py), for partners only.
    r = await client.post(TOKEN, json={"grant_type": "authorization_code", "code": "x"})
    _oauth_problem(r, 401, "invalid_client")


async def test_invalid_scope_answers(client: ApiClient) -> None:
    client_id, secret = await _bank()
    for scope in ("records:write", "scores:read nonexistent", "scores:read  scores:check", "scores:read\"x"):
        r = await client.post(TOKEN, data={"grant_type": "client_credentials", "scope": scope},
                              headers=_basic(client_id, secret))
        _oauth_problem(r, 400, "invalid_scope")


async def test_body_limits_and_media_types_stay(client: ApiClient, override_settings: Any) -> None:
    big = b"grant_type=client_credentials&client_assertion=" + b"a" * (1024 * 1024)
    r = await client.post(TOKEN, content=big, headers=FORM)
    _oauth_problem(r, 413, "invalid_request", "payload_too_large")
    r = await client.post(TOKEN, content=b"grant_type=client_credentials", headers={"content-type": "text/plain"})
    _oauth_problem(r, 415, "invalid_request", "unsupported_media_type")
    deep = b"[" * 5000 + b"]" * 5000
    for media_type in ("application/json", "application/x-www-form-urlencoded"):
        r = await client.post(TOKEN, content=deep, headers={"content-type": media_type})
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_request"
    nested = b'{"grant_type":"client_credentials","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    r = await client.post(TOKEN, content=nested, headers={"content-type": "application/json"})
    _oauth_problem(r, 400, "invalid_request", "validation_failed")


async def test_throttled_logins_keep_their_429(client: ApiClient, override_settings: Any) -> None:
    number = phone()
    await client.post("/v1/auth/otp", json={"phone": number}, headers={"X-Forwarded-For": address()})
    with override_settings(otp_max_attempts=1):
        await client.post(TOKEN, data={"grant_type": "otp", "phone": number, "code": "000000"})
        r = await client.post(TOKEN, data={"grant_type": "otp", "phone": number, "code": "000000"})
    assert (r.status_code, r.json()["code"]) == (429, "otp_attempts_exceeded")
    assert "retry-after" in r.headers


# ------------------------------------------------------------------ revocation (RFC 7009)


async def test_revocation_is_form_encoded_and_always_200_for_unknown_tokens(client: ApiClient, ctx: Any) -> None:
    expired, _ = ctx.tokens.issue(kind="citizen", subject="acc_x", ttl_seconds=-3600)
    for token in ("no-such-token", "a.b.c", expired):
        r = await client.post(REVOKE, data={"token": token, "token_type_hint": "refresh_token"})
        assert r.status_code == 200, r.text
    citizen = await citizen_login(client)
    r = await client.post(REVOKE, data={"token": citizen.refresh_token, "token_type_hint": "refresh_token"})
    assert r.status_code == 200, r.text
    refreshed = await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": citizen.refresh_token})
    _oauth_problem(refreshed, 400, "invalid_grant", "invalid_refresh_token")
    # Revoking again, or a token already revoked, is still a 200.
    assert (await client.post(REVOKE, data={"token": citizen.refresh_token})).status_code == 200
    _oauth_problem(await client.post(REVOKE, content=b"token=x&token=y", headers=FORM), 400, "invalid_request",
                   "duplicate_parameter")
    _oauth_problem(await client.post(REVOKE, data={"token_type_hint": "access_token"}), 400, "invalid_request",
                   "validation_failed")


async def test_a_partner_token_is_revoked_only_by_that_partner(client: ApiClient) -> None:
    client_id, secret = await _bank()
    other_id, other_secret = await _bank()
    token = (await client.post(TOKEN, data={"grant_type": "client_credentials"},
                               headers=_basic(client_id, secret))).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    # a confidential client must authenticate ...
    anonymous = await client.post(REVOKE, data={"token": token})
    _oauth_problem(anonymous, 401, "invalid_client")
    # ... as the client the token was issued to (RFC 7009 §2.1) ...
    _oauth_problem(await client.post(REVOKE, data={"token": token}, headers=_basic(other_id, other_secret)),
                   400, "invalid_grant", "token_of_another_client")
    # ... with the right secret.
    _oauth_problem(await client.post(REVOKE, data={"token": token}, headers=_basic(client_id, "wrong")),
                   401, "invalid_client")
    assert (await client.get("/v1/partners/me", headers=bearer)).status_code == 200
    r = await client.post(REVOKE, data={"token": token, "client_id": client_id, "client_secret": secret})
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/partners/me", headers=bearer)).status_code == 401
    # A partner may not revoke a citizen's session either; the citizen's app may, with the token alone.
    citizen = await citizen_login(client)
    _oauth_problem(await client.post(REVOKE, data={"token": citizen.access_token}, headers=_basic(client_id, secret)),
                   400, "invalid_grant", "token_of_another_client")
    assert (await client.get("/v1/me", headers=citizen.headers)).status_code == 200
    assert (await client.post(REVOKE, json={"token": citizen.access_token})).status_code == 200
    assert (await client.get("/v1/me", headers=citizen.headers)).status_code == 401


# ------------------------------------------------------------------ discovery (RFC 8414)


def _validate_rfc8414(metadata: dict[str, Any]) -> None:
    """Every RFC 8414 §2 field authlib knows how to check: the authorization endpoint is the consent page, which
    answers the `code` response type only."""
    document = AuthorizationServerMetadata(metadata)
    for key in AuthorizationServerMetadata.REGISTRY_KEYS:
        getattr(document, f"validate_{key}")()
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["authorization_endpoint"].endswith("/authorize")
    for required in ("issuer", "token_endpoint", "jwks_uri", "scopes_supported", "grant_types_supported",
                     "token_endpoint_auth_methods_supported", "revocation_endpoint"):
        assert metadata[required], required


async def test_metadata_document(client: ApiClient, ctx: Any, override_settings: Any) -> None:
    public = "https://credit.jiaxing.example"
    with override_settings(public_url=public):
        # The URLs come from the configured public URL, never from the Host header.
        r = await client.get(METADATA, headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert r.status_code == 200, r.text
    metadata = r.json()
    _validate_rfc8414(metadata)
    assert metadata["issuer"] == ctx.settings.jwt_issuer
    assert metadata["token_endpoint"] == f"{public}/v1/auth/token"
    assert metadata["revocation_endpoint"] == f"{public}/v1/auth/revoke"
    assert metadata["jwks_uri"] == f"{public}/.well-known/jwks.json"
    assert "evil.example" not in r.text
    assert set(metadata["scopes_supported"]) == set(SCOPES)
    assert set(metadata["grant_types_supported"]) == {"authorization_code", "client_credentials", "refresh_token",
                                                      "password", "otp"}
    assert metadata["pushed_authorization_request_endpoint"] == f"{public}/v1/oauth/par"
    assert metadata["authorization_endpoint"] == f"{public}/authorize"
    methods = {"client_secret_basic", "client_secret_post", "private_key_jwt"}
    assert methods <= set(metadata["token_endpoint_auth_methods_supported"])
    assert methods <= set(metadata["revocation_endpoint_auth_methods_supported"])
    assert set(metadata["token_endpoint_auth_signing_alg_values_supported"]) == {"ES256", "EdDSA"}


async def test_openapi_documents_both_encodings_of_the_token_endpoint(client: ApiClient) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    for path in (TOKEN, REVOKE):
        operation = document["paths"][path]["post"]
        assert set(operation["requestBody"]["content"]) == {"application/json", "application/x-www-form-urlencoded"}
        assert "422" not in operation["responses"]
        assert {"400", "401"} <= set(operation["responses"])
        assert {"ClientSecretBasic": []} in operation["security"]
    grants = document["paths"][TOKEN]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert {option["properties"]["grant_type"]["enum"][0] for option in grants["schema"]["anyOf"]} == {
        "otp", "refresh_token", "client_credentials", "password", "authorization_code"}
    assert "error" in document["components"]["schemas"]["Problem"]["properties"]
    assert METADATA in document["paths"]


# ------------------------------------------------------------------ a real server and authlib's sync client


@pytest.fixture(scope="module")
async def served(client: ApiClient) -> AsyncIterator[str]:  # the database is migrated first
    port = free_port()
    env = {**os.environ, "XINYI_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with xinyi_server(["serve"], ready_path="/health/ready", port=port, env=env) as base:
        yield base


@pytest.mark.parametrize("method", SECRET_METHODS)
async def test_a_real_server_through_its_metadata(served: str, method: str) -> None:
    client_id, secret = await _bank()
    await asyncio.to_thread(_partner_integration, served, client_id, secret, method)


def _partner_integration(served: str, client_id: str, secret: str, method: str) -> None:
    """What a bank's integration does with authlib's sync client, knowing only the server's base URL."""
    with httpx.Client(timeout=10) as plain:
        metadata = plain.get(f"{served}{METADATA}").json()
        # http on loopback is what this test serves; production refuses anything but https.
        assert metadata["token_endpoint"] == f"{served}{TOKEN}"
        keys = plain.get(metadata["jwks_uri"]).json()
        assert plain.get(metadata["service_documentation"]).status_code == 200
    with OAuth2Client(client_id, secret, token_endpoint_auth_method=method, revocation_endpoint_auth_method=method,
                      timeout=10) as oauth:
        token = oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", scope="scores:read")
        assert (token["token_type"], token["scope"]) == ("Bearer", "scores:read")
        # The access token verifies with the published key and names the published issuer.
        public = jwt.PyJWK(keys["keys"][0]).key
        claims = jwt.decode(token["access_token"], public, algorithms=["EdDSA"], audience="xinyi-api",
                            issuer=metadata["issuer"])
        assert claims["sub"] == client_id
        assert claims["exp"] - time.time() <= token["expires_in"]
        me = oauth.get(f"{served}/v1/partners/me")
        assert me.status_code == 200, me.text
        assert oauth.revoke_token(metadata["revocation_endpoint"], token=token["access_token"]).status_code == 200
        assert oauth.get(f"{served}/v1/partners/me").status_code == 401
        assert oauth.revoke_token(metadata["revocation_endpoint"], token=str(uuid.uuid4())).status_code == 200
