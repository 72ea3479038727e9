"""Attacks on partner-started consent: PKCE (wrong, missing, `plain`), redirect URIs (unregistered, altered),
replays (request_uri and code, used twice or expired), another partner's request_uri or code, concurrent
approvals, and what a bound token may read."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from accounts import consent
from api.context import AppContext
from credit.tables import Authorization, OutboxEvent
from tests.conftest import ApiClient
from tests.factories import authorization_for, bound_citizen, partner_session
from tests.oauth_factories import (
    CALLBACK,
    OAuthBank,
    approve,
    details,
    exchange,
    oauth_bank,
    pkce,
    push,
    pushed_request_uri,
    query_of,
)


def _oauth_error(response: httpx.Response, status: int, error: str, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    if code is not None:
        assert body["code"] == code, body


async def _approved(client: ApiClient, ctx: AppContext, name: str) -> tuple[OAuthBank, str, str]:
    """A bank, the verifier of its pushed request and the code the citizen's approval sent back."""
    bank = await oauth_bank()
    citizen = await bound_citizen(client, ctx, name=name)
    verifier, challenge = pkce()
    request_uri = await pushed_request_uri(client, bank, challenge)
    code = query_of(await approve(ctx, bank, request_uri, citizen))["code"]
    return bank, verifier, code


# ------------------------------------------------------------------ PKCE


async def test_wrong_or_missing_code_verifier_is_invalid_grant_and_leaves_the_code_usable(
        client: ApiClient, ctx: AppContext) -> None:
    bank, verifier, code = await _approved(client, ctx, "攻一")
    other, _ = pkce()
    _oauth_error(await exchange(client, bank, code, other), 400, "invalid_grant", "invalid_code_verifier")
    _oauth_error(await exchange(client, bank, code, None), 400, "invalid_grant", "invalid_code_verifier")
    ok = await exchange(client, bank, code, verifier)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(("method", "code"), [("plain", "unsupported_code_challenge_method"),
                                              ("", "unsupported_code_challenge_method"),
                                              ("S512", "unsupported_code_challenge_method")])
async def test_only_s256_challenges_are_accepted(client: ApiClient, method: str, code: str) -> None:
    bank = await oauth_bank()
    verifier, challenge = pkce()
    r = await push(client, bank, verifier if method == "plain" else challenge, code_challenge_method=method)
    _oauth_error(r, 400, "invalid_request", code)


async def test_missing_challenge_is_refused(client: ApiClient) -> None:
    bank = await oauth_bank()
    _oauth_error(await push(client, bank, "", code_challenge=""), 400, "invalid_request", "invalid_code_challenge")


# ------------------------------------------------------------------ redirect URIs


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8765/callback/", "http://127.0.0.1:8765/callback?x=1",
                                 "http://127.0.0.1:8766/callback", "https://evil.example/callback",
                                 "HTTP://127.0.0.1:8765/callback"])
async def test_unregistered_or_altered_redirect_uri_is_refused_at_push(client: ApiClient, uri: str) -> None:
    bank = await oauth_bank()
    _, challenge = pkce()
    _oauth_error(await push(client, bank, challenge, redirect_uri=uri), 400, "invalid_request",
                 "unregistered_redirect_uri")


async def test_a_partner_without_redirect_uris_cannot_push(client: ApiClient) -> None:
    bank = await oauth_bank(redirect_uris=[])
    _, challenge = pkce()
    _oauth_error(await push(client, bank, challenge), 400, "invalid_request", "unregistered_redirect_uri")


async def test_altered_redirect_uri_at_the_token_endpoint_is_invalid_grant(client: ApiClient, ctx: AppContext) -> None:
    bank, verifier, code = await _approved(client, ctx, "攻二")
    for uri in (CALLBACK + "/", "https://evil.example/callback", None):
        _oauth_error(await exchange(client, bank, code, verifier, redirect_uri=uri), 400, "invalid_grant",
                     "redirect_uri_mismatch")


# ------------------------------------------------------------------ what may be asked


@pytest.mark.parametrize(("raw", "code"), [
    (details(purpose="no_such_purpose"), "unknown_purpose"),
    (details(scopes=["portrait"]), "scope_not_allowed_for_purpose"),
    (details(scopes=["tier", "secret_sauce"]), "unknown_scope"),
    (details(validity_days=3650), "validity_too_long"),
    (details(daily_cap=9999), "daily_cap_too_high"),
    (details(purpose="enterprise_financing", scopes=["tier"]), "purpose_subject_mismatch"),
    (details(type="payment_initiation"), "invalid_authorization_details"),
    ('[{"type":"xinyi_credit_score"}]', "invalid_authorization_details"),
    ("not json", "invalid_authorization_details"),
    ("[]", "invalid_authorization_details"),
    ('{"type":"xinyi_credit_score"}', "invalid_authorization_details"),
])
async def test_authorization_details_are_checked_against_the_catalog(client: ApiClient, raw: str, code: str) -> None:
    bank = await oauth_bank()
    _, challenge = pkce()
    _oauth_error(await push(client, bank, challenge, authorization_details=raw), 400,
                 "invalid_authorization_details", code)


async def test_a_partner_that_may_not_ask_or_read_is_unauthorized_client(client: ApiClient) -> None:
    _, challenge = pkce()
    no_ask = await oauth_bank(scopes=["scores:read"])
    _oauth_error(await push(client, no_ask, challenge), 400, "unauthorized_client")
    no_read = await oauth_bank(scopes=["authorizations:write", "lending:write"])
    _oauth_error(await push(client, no_read, challenge), 400, "unauthorized_client")


async def test_response_type_other_than_code_is_refused(client: ApiClient) -> None:
    bank = await oauth_bank()
    _, challenge = pkce()
    _oauth_error(await push(client, bank, challenge, response_type="token"), 400, "invalid_request",
                 "unsupported_response_type")


# ------------------------------------------------------------------ request_uri: single use, short-lived, bound


async def test_request_uri_is_single_use(client: ApiClient, ctx: AppContext) -> None:
    bank = await oauth_bank()
    citizen = await bound_citizen(client, ctx, name="攻三")
    _, challenge = pkce()
    request_uri = await pushed_request_uri(client, bank, challenge)
    await approve(ctx, bank, request_uri, citizen)
    with pytest.raises(consent.InvalidRequestUri):
        await approve(ctx, bank, request_uri, citizen)
    with pytest.raises(consent.InvalidRequestUri):
        await consent.pending_consent(store=ctx.store, client_id=bank.client_id, request_uri=request_uri)


async def test_expired_request_uri_is_refused(client: ApiClient, ctx: AppContext,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consent, "REQUEST_URI_TTL_SECONDS", 1)
    bank = await oauth_bank()
    citizen = await bound_citizen(client, ctx, name="攻四")
    _, challenge = pkce()
    r = await push(client, bank, challenge)
    assert r.json()["expires_in"] == 1
    await asyncio.sleep(1.2)  # the store's own expiry (Redis TTL or the in-process clock)
    with pytest.raises(consent.InvalidRequestUri):
        await approve(ctx, bank, r.json()["request_uri"], citizen)


async def test_another_partners_request_uri_is_refused_and_stays_usable(client: ApiClient, ctx: AppContext) -> None:
    bank, thief = await oauth_bank(), await oauth_bank()
    citizen = await bound_citizen(client, ctx, name="攻五")
    _, challenge = pkce()
    request_uri = await pushed_request_uri(client, bank, challenge)
    with pytest.raises(consent.InvalidRequestUri):  # a page asked with a forged client_id
        await consent.pending_consent(store=ctx.store, client_id=thief.client_id, request_uri=request_uri)
    with pytest.raises(consent.InvalidRequestUri):
        await approve(ctx, thief, request_uri, citizen)
    # The owner's request was not consumed by the attempt.
    assert query_of(await approve(ctx, bank, request_uri, citizen))["code"]


@pytest.mark.parametrize("request_uri", ["", "urn:ietf:params:oauth:request_uri:short",
                                         "urn:example:abcdefghijklmnopqrstuvwxyz0123456789",
                                         "urn:ietf:params:oauth:request_uri:" + "a" * 43 + "\x00"])
async def test_malformed_request_uri_is_invalid_request_uri(ctx: AppContext, request_uri: str) -> None:
    with pytest.raises(consent.InvalidRequestUri):
        await consent.pending_consent(store=ctx.store, client_id="bank_x", request_uri=request_uri)


async def test_approving_twice_concurrently_makes_one_authorization(client: ApiClient, ctx: AppContext) -> None:
    bank = await oauth_bank()
    citizen = await bound_citizen(client, ctx, name="攻六")
    _, challenge = pkce()
    request_uri = await pushed_request_uri(client, bank, challenge)
    outcomes = await asyncio.gather(*(approve(ctx, bank, request_uri, citizen) for _ in range(5)),
                                    return_exceptions=True)
    redirects = [o for o in outcomes if isinstance(o, str)]
    assert len(redirects) == 1, outcomes
    assert all(isinstance(o, consent.InvalidRequestUri) for o in outcomes if not isinstance(o, str))
    assert await Authorization.count().where(Authorization.partner_client_id == bank.client_id) == 1


# ------------------------------------------------------------------ codes: single use, short-lived, bound


async def test_second_use_of_a_code_is_invalid_grant_and_ends_the_authorization(client: ApiClient,
                                                                                ctx: AppContext) -> None:
    bank, verifier, code = await _approved(client, ctx, "攻七")
    first = await exchange(client, bank, code, verifier)
    assert first.status_code == 200, first.text
    token = first.json()["access_token"]
    authorization_id = first.json()["authorization_details"][0]["authorization_id"]
    assert (await client.post("/v1/scores/query", headers={"Authorization": f"Bearer {token}"}, json={})
            ).status_code == 200
    _oauth_error(await exchange(client, bank, code, verifier), 400, "invalid_grant", "authorization_code_reused")
    row = await Authorization.select(Authorization.status, Authorization.ended_reason).where(
        Authorization.public_id == authorization_id).first()
    assert row is not None
    assert row["status"] == "terminated"
    topics = [e["topic"] for e in await OutboxEvent.select(OutboxEvent.topic).where(
        OutboxEvent.aggregate_id == authorization_id).order_by(OutboxEvent.id)]
    assert topics == ["authorization.authorized", "authorization.terminated"]
    # The token the first use gave reads nothing any more.
    after = await client.post("/v1/scores/query", headers={"Authorization": f"Bearer {token}"}, json={})
    assert (after.status_code, after.json()["code"]) == (403, "authorization_not_active")


async def test_concurrent_exchanges_give_one_token(client: ApiClient, ctx: AppContext) -> None:
    bank, verifier, code = await _approved(client, ctx, "攻八")
    answers = await asyncio.gather(*(exchange(client, bank, code, verifier) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400]


async def test_expired_code_is_invalid_grant(client: ApiClient, ctx: AppContext,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consent, "CODE_TTL_SECONDS", 1)
    bank, verifier, code = await _approved(client, ctx, "攻九")
    await asyncio.sleep(1.2)
    _oauth_error(await exchange(client, bank, code, verifier), 400, "invalid_grant", "invalid_authorization_code")


async def test_another_partners_code_is_invalid_grant_and_stays_usable(client: ApiClient, ctx: AppContext) -> None:
    bank, verifier, code = await _approved(client, ctx, "攻十")
    thief = await oauth_bank()
    _oauth_error(await exchange(client, thief, code, verifier), 400, "invalid_grant", "invalid_authorization_code")
    assert (await exchange(client, bank, code, verifier)).status_code == 200
    # A spent code presented by another client ends nothing.
    _oauth_error(await exchange(client, thief, code, verifier), 400, "invalid_grant", "invalid_authorization_code")


async def test_unknown_code_and_wrong_client_secret(client: ApiClient) -> None:
    bank = await oauth_bank()
    verifier, _ = pkce()
    _oauth_error(await exchange(client, bank, "not-a-code", verifier), 400, "invalid_grant",
                 "invalid_authorization_code")
    bank.secret = "wrong"
    _oauth_error(await exchange(client, bank, "not-a-code", verifier), 401, "invalid_client")


# ------------------------------------------------------------------ the bound token


async def test_bound_token_reads_only_its_own_authorization(client: ApiClient, ctx: AppContext) -> None:
    bank, verifier, code = await _approved(client, ctx, "攻十一")
    bound = (await exchange(client, bank, code, verifier)).json()
    headers = {"Authorization": f"Bearer {bound['access_token']}"}
    own = bound["authorization_details"][0]["authorization_id"]
    assert (await client.post("/v1/scores/query", headers=headers, json={"authorization_id": own})).status_code == 200
    # Another authorization, even one of the same partner obtained the id-number way, is not this token's.
    _, _, partner = await partner_session(client)
    citizen = await bound_citizen(client, ctx, name="攻十二")
    other = await authorization_for(client, partner, citizen)
    r = await client.post("/v1/scores/query", headers=headers, json={"authorization_id": other})
    assert (r.status_code, r.json()["code"]) == (403, "token_bound_elsewhere")
    check = await client.post("/v1/scores/check", headers=headers,
                              json={"threshold": 300, "transaction_id": "tx-bound-1"})
    assert check.status_code == 200, check.text
    assert check.json()["authorization_id"] == own
    # The bound token carries only the score scopes.
    me = await client.post("/v1/authorizations", headers=headers, json={})
    assert me.status_code == 403
