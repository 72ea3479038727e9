"""Partner-started consent at the API level: a partner using authlib's OAuth 2.0 client pushes its request
(RFC 9126), the citizen approves (the consent page's service called directly; the browser test drives the
page), authlib exchanges the code with PKCE, and the bound token reads the score without naming the
authorization. Also the registry's redirect URIs and the RFC 8414 metadata."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from accounts import consent
from api.context import AppContext
from credit.tables import Authorization, LedgerEntry, OutboxEvent
from tests.conftest import ApiClient
from tests.factories import add_record, bound_citizen, operator_session, partner_session
from tests.oauth_factories import (
    CALLBACK,
    PAR,
    TOKEN,
    approve,
    details,
    oauth_bank,
    pkce,
    pushed_request_uri,
    query_of,
    subject_of,
)


def _authlib(client: ApiClient, client_id: str, secret: str, method: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(client_id, secret, token_endpoint_auth_method=method, redirect_uri=CALLBACK,
                             code_challenge_method="S256", base_url=str(client.base_url),
                             transport=httpx.ASGITransport(app=client.app))


async def _granted_as_usual(client: ApiClient, citizen_headers: dict[str, str], authorization_id: str) -> None:
    """The authorization the consent created is an ordinary one: authorized, its event in the outbox, the grant
    and both reads in the ledger, in the citizen's list."""
    granted = {"authorization_id": authorization_id}
    row = await Authorization.select().where(Authorization.public_id == granted["authorization_id"]).first()
    assert row is not None
    assert row["status"] == "authorized"
    assert row["daily_cap"] == 5
    events = await OutboxEvent.select(OutboxEvent.topic).where(
        OutboxEvent.aggregate_id == granted["authorization_id"])
    assert [e["topic"] for e in events] == ["authorization.authorized"]
    ledgered = await LedgerEntry.select(LedgerEntry.action).where(
        LedgerEntry.authorization_id == granted["authorization_id"]).order_by(LedgerEntry.seq)
    assert [e["action"] for e in ledgered] == ["consent.granted", "score.query", "score.query"]
    # The citizen sees it among their authorizations.
    mine = await client.get("/v1/me/authorizations", headers=citizen_headers)
    assert granted["authorization_id"] in [a["id"] for a in mine.json()["items"]]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_par_consent_code_exchange_and_a_bound_score_read(client: ApiClient, ctx: AppContext,
                                                                        method: str) -> None:
    bank = await oauth_bank()
    citizen = await bound_citizen(client, ctx, name="林授权")
    await add_record(ctx, citizen.person, category="volunteer_service")
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(12)
    async with _authlib(client, bank.client_id, bank.secret, method) as oauth:
        # The pushed request is an ordinary client-authenticated form post, authenticated the way the token
        # endpoint is (authlib's own client authentication for the configured method).
        pushed = await oauth.request("POST", PAR, withhold_token=True, auth=oauth.client_auth(method), data={
            "response_type": "code", "redirect_uri": CALLBACK, "state": state,
            "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
            "authorization_details": details(scopes=["tier", "score", "reasons"]),
            # client_secret_post puts client_id in the body itself; with Basic it may be sent as well.
            **({"client_id": bank.client_id} if method == "client_secret_basic" else {})})
        assert pushed.status_code == 201, pushed.text
        assert pushed.headers["cache-control"] == "no-store"
        body = pushed.json()
        assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
        assert 0 < body["expires_in"] <= 600
        assert body["consent_url"].startswith(f"{ctx.settings.public_url}/authorize?client_id={bank.client_id}&")
        assert body["consent_qr_svg"].lstrip().startswith("<svg")

        # What the consent page shows.
        pending = await consent.pending_consent(store=ctx.store, client_id=bank.client_id,
                                                request_uri=body["request_uri"])
        assert (pending.purpose_code, pending.purpose_name) == ("loan_pre_approval", "贷前审查")
        assert pending.scopes == ["reasons", "score", "tier"]
        assert (pending.validity_days, pending.daily_cap, pending.state) == (30, 5, state)
        assert pending.partner_kind == "bank"
        assert pending.redirect_uri == CALLBACK

        redirect = await approve(ctx, bank, body["request_uri"], citizen)
        assert redirect.startswith(CALLBACK + "?")
        params = query_of(redirect)
        assert params["state"] == state
        assert params["iss"] == ctx.settings.jwt_issuer

        token = await oauth.fetch_token(TOKEN, authorization_response=redirect, state=state, code_verifier=verifier)
        assert token["token_type"] == "Bearer"
        assert set(token["scope"].split()) == {"scores:read", "scores:check"}
        (granted,) = token["authorization_details"]
        assert granted["type"] == "xinyi_credit_score"
        assert granted["purpose"] == "loan_pre_approval"
        assert granted["scopes"] == ["reasons", "score", "tier"]
        assert granted["daily_cap"] == 5
        assert granted["authorization_id"].startswith("authz_")
        assert granted["open_id"].startswith("oid_")
        receipt = ctx.tokens.verify_document(granted["consent_receipt"], typ="consent-receipt+jwt")
        assert receipt["authorization_id"] == granted["authorization_id"]
        assert jwt.decode(token["access_token"], options={"verify_signature": False})["authz"] == \
            granted["authorization_id"]

        # The bound token reads the score without naming the authorization.
        read = await oauth.post("/v1/scores/query", json={})
        assert read.status_code == 200, read.text
        answer = read.json()
        assert answer["authorization_id"] == granted["authorization_id"]
        assert answer["open_id"] == granted["open_id"]
        assert {"tier", "score", "reasons"} <= answer.keys()
        # Naming its own authorization is fine too.
        again = await oauth.post("/v1/scores/query", json={"authorization_id": granted["authorization_id"]})
        assert again.status_code == 200, again.text

    await _granted_as_usual(client, citizen.headers, granted["authorization_id"])


async def test_refusal_redirects_with_access_denied_and_creates_nothing(client: ApiClient, ctx: AppContext) -> None:
    bank = await oauth_bank()
    citizen = await bound_citizen(client, ctx, name="林拒绝")
    _, challenge = pkce()
    request_uri = await pushed_request_uri(client, bank, challenge, state="s-1")
    account_id, _ = await subject_of(ctx, citizen)
    before = await Authorization.count().where(Authorization.partner_client_id == bank.client_id)
    redirect = await consent.refuse_consent(store=ctx.store, settings=ctx.settings, client_id=bank.client_id,
                                            request_uri=request_uri, account_id=account_id)
    params = query_of(redirect)
    assert (params["error"], params["state"], params["iss"]) == ("access_denied", "s-1", ctx.settings.jwt_issuer)
    assert await Authorization.count().where(Authorization.partner_client_id == bank.client_id) == before
    with pytest.raises(consent.InvalidRequestUri):  # decided: the request is gone
        await consent.pending_consent(store=ctx.store, client_id=bank.client_id, request_uri=request_uri)


async def test_par_takes_json_and_private_key_jwt_style_errors_are_oauth_errors(client: ApiClient) -> None:
    bank = await oauth_bank()
    _, challenge = pkce()
    r = await client.post(PAR, auth=httpx.BasicAuth(bank.client_id, bank.secret), json={
        "response_type": "code", "redirect_uri": CALLBACK, "code_challenge": challenge,
        "code_challenge_method": "S256", "authorization_details": json.loads(details())})
    assert r.status_code == 201, r.text
    wrong = await client.post(PAR, auth=httpx.BasicAuth(bank.client_id, "nope"), data={"response_type": "code"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


async def test_existing_query_with_authorization_id_is_unchanged_and_required_without_a_bound_token(
        client: ApiClient, ctx: AppContext) -> None:
    from tests.factories import authorization_for

    _, _, partner = await partner_session(client)
    citizen = await bound_citizen(client, ctx, name="林旧路")
    authorization_id = await authorization_for(client, partner, citizen)
    ok = await client.post("/v1/scores/query", headers=partner.headers, json={"authorization_id": authorization_id})
    assert ok.status_code == 200, ok.text
    missing = await client.post("/v1/scores/query", headers=partner.headers, json={})
    assert (missing.status_code, missing.json()["code"]) == (422, "authorization_id_required")


# ------------------------------------------------------------------ the registry's redirect URIs


async def test_admin_registers_redirect_uris_on_create_and_patch(client: ApiClient) -> None:
    admin = await operator_session(client, role="partner_admin")
    created = await client.post("/v1/admin/partners", headers=admin.headers, json={
        "name": "重定向银行", "kind": "bank", "redirect_uris": ["https://bank.example/cb", "http://127.0.0.1:9/cb"]})
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    shown = await client.get(f"/v1/admin/partners/{client_id}", headers=admin.headers)
    assert shown.json()["redirect_uris"] == ["https://bank.example/cb", "http://127.0.0.1:9/cb"]

    changed = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers,
                                 json={"redirect_uris": ["https://bank.example/oauth/cb"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["redirect_uris"] == ["https://bank.example/oauth/cb"]
    untouched = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"name": "改名"})
    assert untouched.json()["redirect_uris"] == ["https://bank.example/oauth/cb"]
    cleared = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers, json={"redirect_uris": []})
    assert "redirect_uris" not in cleared.json() or cleared.json()["redirect_uris"] == []


@pytest.mark.parametrize("uri", ["http://bank.example/cb", "https://bank.example/cb#frag", "bank.example/cb",
                                 "https://user:pw@bank.example/cb", "javascript:alert(1)", "https:///cb",
                                 "https://bank.example/c b"])
async def test_admin_refuses_unacceptable_redirect_uris(client: ApiClient, uri: str) -> None:
    admin = await operator_session(client, role="partner_admin")
    r = await client.post("/v1/admin/partners", headers=admin.headers,
                          json={"name": "坏重定向", "kind": "bank", "redirect_uris": [uri]})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_redirect_uri"), r.text


async def test_loopback_http_is_refused_in_production() -> None:
    from partners.services import redirect_uri_acceptable

    assert redirect_uri_acceptable("http://127.0.0.1:8765/cb", production=False)
    assert not redirect_uri_acceptable("http://127.0.0.1:8765/cb", production=True)
    assert redirect_uri_acceptable("https://bank.example/cb?x=1", production=True)


# ------------------------------------------------------------------ discovery


async def test_metadata_lists_par_pkce_and_the_details_type(client: ApiClient, ctx: AppContext) -> None:
    r = await client.get("/.well-known/oauth-authorization-server")
    metadata: dict[str, Any] = r.json()
    base = ctx.settings.public_url
    assert metadata["pushed_authorization_request_endpoint"] == f"{base}/v1/oauth/par"
    assert metadata["authorization_endpoint"] == f"{base}/authorize"
    assert metadata["require_pushed_authorization_requests"] is True
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert "authorization_code" in metadata["grant_types_supported"]
    assert metadata["authorization_details_types_supported"] == ["xinyi_credit_score"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
