"""Builders for partner-started consent tests (PAR, the citizen's decision, the code exchange): a bank with a
registered loopback redirect URI, PKCE pairs, authorization details, and the approval step called directly
(the consent page drives it in the browser tests)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from accounts import consent
from api.context import AppContext
from credit.tables import Person
from partners.services import create_partner
from tests.factories import Citizen

PAR, TOKEN = "/v1/oauth/par", "/v1/auth/token"
CALLBACK = "http://127.0.0.1:8765/callback"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@dataclass
class OAuthBank:
    client_id: str
    secret: str

    @property
    def basic(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.client_id, self.secret)


async def oauth_bank(*, kind: str = "bank", redirect_uris: list[str] | None = None,
                     scopes: list[str] | None = None) -> OAuthBank:
    issued = await create_partner(name=f"授权银行 {secrets.token_hex(3)}", kind=kind, scopes=scopes,
                                  redirect_uris=[CALLBACK] if redirect_uris is None else redirect_uris,
                                  production=False)
    assert issued.client_secret is not None
    return OAuthBank(issued.client_id, issued.client_secret)


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def details(**overrides: Any) -> str:
    detail = {"type": "xinyi_credit_score", "purpose": "loan_pre_approval", "scopes": ["tier", "score"],
              "validity_days": 30, "daily_cap": 5, **overrides}
    return json.dumps([detail])


def par_form(challenge: str, **overrides: str) -> dict[str, str]:
    form = {"response_type": "code", "redirect_uri": CALLBACK, "state": secrets.token_urlsafe(12),
            "code_challenge": challenge, "code_challenge_method": "S256", "authorization_details": details()}
    form.update(overrides)
    return {k: v for k, v in form.items() if v != ""}


async def push(client: httpx.AsyncClient, bank: OAuthBank, challenge: str, **overrides: str) -> httpx.Response:
    return await client.post(PAR, data=par_form(challenge, **overrides), auth=bank.basic)


async def pushed_request_uri(client: httpx.AsyncClient, bank: OAuthBank, challenge: str, **overrides: str) -> str:
    r = await push(client, bank, challenge, **overrides)
    assert r.status_code == 201, r.text
    return str(r.json()["request_uri"])


async def subject_of(ctx: AppContext, citizen: Citizen) -> tuple[str, int]:
    """The citizen's account id and bound person id (what the consent page knows from the session)."""
    account_id = ctx.tokens.verify(citizen.session.access_token).subject
    row = await Person.select(Person._meta.primary_key).where(Person.public_id == citizen.person.public_id).first()
    assert row is not None
    return account_id, int(row["id"])


async def approve(ctx: AppContext, bank: OAuthBank, request_uri: str, citizen: Citizen) -> str:
    account_id, person_id = await subject_of(ctx, citizen)
    return await consent.approve_consent(store=ctx.store, ledger=ctx.ledger, cipher=ctx.cipher, tokens=ctx.tokens,
                                         settings=ctx.settings, client_id=bank.client_id, request_uri=request_uri,
                                         account_id=account_id, person_id=person_id)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def exchange(client: httpx.AsyncClient, bank: OAuthBank, code: str, verifier: str | None,
                   redirect_uri: str | None = CALLBACK) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code}
    if verifier is not None:
        form["code_verifier"] = verifier
    if redirect_uri is not None:
        form["redirect_uri"] = redirect_uri
    return await client.post(TOKEN, data=form, auth=bank.basic)
