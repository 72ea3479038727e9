"""Partner-started consent: OAuth 2.0 authorization code with pushed requests, PKCE and rich authorization
requests (RFC 6749, RFC 9126, RFC 7636, RFC 9396, RFC 9207), the way FAPI 2.0 profiles them.

A partner pushes what it asks for (`push_authorization_request`, behind `POST /v1/oauth/par`) and gets a
single-use `request_uri`; the citizen opens the consent page with it (`pending_consent` shows what is asked),
approves (`approve_consent`: the authorization is created `authorized`, with a signed consent receipt and a
ledger entry) or refuses (`refuse_consent`); the partner exchanges the code it was sent back
(`exchange_code`, behind the token endpoint) for an access token bound to that one authorization.

Everything between the push and the exchange lives in the shared store only, for minutes: pushed requests for
at most `REQUEST_URI_TTL_SECONDS`, codes for at most `CODE_TTL_SECONDS`. Each is single use through an atomic
store operation (`take`, `set_if_absent`), so two concurrent approvals make one authorization and two
concurrent exchanges one token. A code presented again ends the authorization its first use created
(RFC 6749 §4.1.2), through credit's usual termination (partners, webhooks and the ledger see it as usual).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import msgspec
import segno

from accounts.context import AccountsContext
from accounts.schemas import DETAILS_TYPE, CreditScoreDetail, GrantedDetail, PushedAuthorization
from accounts.sessions import AUTHORIZE_PATH, ClientAuthentication, authenticate_client
from core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidAuthorizationDetails,
    InvalidGrant,
    InvalidRequest,
    UnauthorizedClient,
    Unprocessable,
)
from core.settings import Settings
from core.store import Store
from credit import authorizations as authz
from credit.catalog import DATA_SCOPES, PURPOSES
from credit.ledger import AccessEvent, LedgerWriter
from credit.my_credit import CONSENT_RECEIPT_TYP
from credit.services import person_public_id
from partners.services import PartnerRecord, find_partner

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
# RFC 9126 §2.2: a short lifetime; FAPI 2.0 asks for under 600 s. Module constants so tests can shorten them.
REQUEST_URI_TTL_SECONDS = 600
CODE_TTL_SECONDS = 60  # FAPI 2.0 §5.3.2.1: at most 60 s
# A spent code is remembered longer than it lived, so a replay after expiry is still recognised as one.
SPENT_CODE_TTL_SECONDS = 3600
# The partner token scopes a bound token may carry: what reads a score under an authorization.
BOUND_TOKEN_SCOPES = frozenset({"scores:read", "scores:check"})
STORE_DOMAIN = "oauth"

_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # BASE64URL(SHA-256), RFC 7636 §4.2
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1


class InvalidRequestUri(DomainError):
    """The consent page's `request_uri` is unknown, expired, already used or pushed by another client."""

    status, code, title = 400, "invalid_request_uri", "The authorization request is unknown or no longer valid"


class DocumentSigner(Protocol):
    def sign_document(self, claims: dict[str, object], *, typ: str) -> str: ...


# ---------------------------------------------------------------- wire and stored types


class PendingConsent(msgspec.Struct, frozen=True):
    """What the consent page shows: who asks, why, exactly what, for how long and how often."""

    request_uri: str
    client_id: str
    partner_name: str
    partner_kind: str
    purpose_code: str
    purpose_name: str
    purpose_text: str
    scopes: list[str]  # our scope codes (credit.catalog.DATA_SCOPES); the page renders each in plain words
    validity_days: int
    daily_cap: int | None
    redirect_uri: str
    state: str | None
    expires_at: datetime


class _Pushed(msgspec.Struct, frozen=True):
    client_id: str
    partner_name: str
    partner_kind: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    detail: CreditScoreDetail
    expires_at: int  # epoch seconds


class _Code(msgspec.Struct, frozen=True):
    client_id: str
    redirect_uri: str
    code_challenge: str
    authorization_id: str
    open_id: str
    consent_receipt: str
    expires_at: int


class _Spent(msgspec.Struct, frozen=True):
    client_id: str
    authorization_id: str


_pushed = msgspec.json.Decoder(_Pushed)
_code = msgspec.json.Decoder(_Code)
_spent = msgspec.json.Decoder(_Spent)
_encode = msgspec.json.encode


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ---------------------------------------------------------------- push (RFC 9126)


def _parse_details(raw: str | list[dict[str, Any]] | None, partner: PartnerRecord) -> CreditScoreDetail:
    if not raw:
        raise InvalidRequest("authorization_details is required", code="missing_authorization_details")
    try:
        # A form carries the JSON array as a string; a JSON body may carry the array itself.
        decoded = msgspec.json.decode(raw.encode() if isinstance(raw, str) else msgspec.json.encode(raw),
                                      type=list[CreditScoreDetail])
    except (msgspec.MsgspecError, RecursionError) as exc:
        raise InvalidAuthorizationDetails(
            f"authorization_details must be a JSON array of one {DETAILS_TYPE!r} object: {exc}") from None
    if len(decoded) != 1:
        raise InvalidAuthorizationDetails(f"authorization_details must hold exactly one {DETAILS_TYPE!r} object")
    detail = decoded[0]
    try:
        authz.check_request(purpose_code=detail.purpose, subject_kind="person", scopes=list(detail.scopes),
                            validity_days=detail.validity_days, daily_cap=detail.daily_cap)
    except Unprocessable as exc:
        raise InvalidAuthorizationDetails(exc.detail, code=exc.code) from None
    if not partner.scopes & BOUND_TOKEN_SCOPES:
        raise UnauthorizedClient("the partner holds neither scores:read nor scores:check", code="unauthorized_client")
    return msgspec.structs.replace(detail, scopes=sorted(set(detail.scopes)))


def consent_url(*, settings: Settings, client_id: str, request_uri: str) -> str:
    return f"{settings.public_url}{AUTHORIZE_PATH}?" + urlencode({"client_id": client_id, "request_uri": request_uri})


def qr_svg(text: str) -> str:
    """An SVG QR code of `text` (error correction M: readable off a counter display or a printed slip)."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="svg", scale=4, xmldecl=False, svgns=True)
    return buffer.getvalue().decode()


async def push_authorization_request(
    *, ctx: AccountsContext, client: ClientAuthentication, response_type: str | None, redirect_uri: str | None,
    state: str | None, code_challenge: str | None, code_challenge_method: str | None,
    authorization_details: str | list[dict[str, Any]] | None, request_client_id: str | None = None,
) -> PushedAuthorization:
    """Authenticate the partner, check what it asks, and keep it for the citizen under a new `request_uri`.

    Raises OAuth errors (problem+json with `error`): `invalid_client`, `invalid_request`,
    `unauthorized_client`, `invalid_authorization_details`.
    """
    # As at the token endpoint (an unsupported grant_type before client authentication), a request that is
    # not one we serve at all is refused before the client is authenticated.
    if response_type != "code":
        raise InvalidRequest("response_type must be code", code="unsupported_response_type")
    partner = await authenticate_client(ctx=ctx, client=client)
    if request_client_id is not None and request_client_id != partner.client_id:
        raise InvalidRequest("client_id is not the authenticated client", code="client_id_mismatch")
    if "authorizations:write" not in partner.scopes:
        raise UnauthorizedClient("the partner may not ask for authorizations (scope authorizations:write)")
    if not redirect_uri:
        raise InvalidRequest("redirect_uri is required", code="missing_redirect_uri")
    if redirect_uri not in partner.redirect_uris:  # exact string comparison (RFC 9700 §4.1.3)
        raise InvalidRequest("redirect_uri is not registered for this client", code="unregistered_redirect_uri")
    if code_challenge_method != "S256":
        raise InvalidRequest("code_challenge_method must be S256", code="unsupported_code_challenge_method")
    if not code_challenge or not _CHALLENGE.fullmatch(code_challenge):
        raise InvalidRequest("code_challenge must be the base64url SHA-256 of the code verifier (43 characters)",
                             code="invalid_code_challenge")
    if state is not None and len(state) > 512:
        raise InvalidRequest("state may have at most 512 characters", code="invalid_state")
    detail = _parse_details(authorization_details, partner)
    ttl = REQUEST_URI_TTL_SECONDS
    request_id = secrets.token_urlsafe(32)
    pushed = _Pushed(client_id=partner.client_id, partner_name=partner.name, partner_kind=partner.kind,
                     redirect_uri=redirect_uri, state=state, code_challenge=code_challenge, detail=detail,
                     expires_at=int(time.time()) + ttl)
    await ctx.store.set(STORE_DOMAIN, f"par:{request_id}", _encode(pushed), ttl_seconds=ttl)
    request_uri = REQUEST_URI_PREFIX + request_id
    url = consent_url(settings=ctx.settings, client_id=partner.client_id, request_uri=request_uri)
    return PushedAuthorization(request_uri=request_uri, expires_in=ttl, consent_url=url, consent_qr_svg=qr_svg(url))


# ---------------------------------------------------------------- the citizen's decision


def _request_key(request_uri: str) -> str:
    request_id = request_uri.removeprefix(REQUEST_URI_PREFIX)
    if not request_uri.startswith(REQUEST_URI_PREFIX) or not _REQUEST_ID.fullmatch(request_id):
        raise InvalidRequestUri()
    return f"par:{request_id}"


def _check_pushed(raw: bytes | None, client_id: str) -> _Pushed:
    if raw is None:
        raise InvalidRequestUri()
    pushed = _pushed.decode(raw)
    # Another client's request looks exactly like an unknown one (a forged client_id learns nothing).
    if not hmac.compare_digest(pushed.client_id, client_id) or pushed.expires_at <= int(time.time()):
        raise InvalidRequestUri()
    return pushed


async def _load(store: Store, *, client_id: str, request_uri: str) -> tuple[str, _Pushed]:
    key = _request_key(request_uri)
    return key, _check_pushed(await store.get(STORE_DOMAIN, key), client_id)


async def _consume(store: Store, *, client_id: str, request_uri: str) -> _Pushed:
    """Check, then take the pushed request atomically: of two concurrent decisions only one gets it."""
    key, _ = await _load(store, client_id=client_id, request_uri=request_uri)
    return _check_pushed(await store.take(STORE_DOMAIN, key), client_id)


async def pending_consent(*, store: Store, client_id: str, request_uri: str) -> PendingConsent:
    """What `client_id` pushed under `request_uri`, for the consent page (nothing is consumed).

    Raises:
        InvalidRequestUri: unknown, expired, already decided, or pushed by another client.
    """
    _, pushed = await _load(store, client_id=client_id, request_uri=request_uri)
    detail = pushed.detail
    purpose = PURPOSES[detail.purpose]
    return PendingConsent(
        request_uri=request_uri, client_id=pushed.client_id, partner_name=pushed.partner_name,
        partner_kind=pushed.partner_kind, purpose_code=purpose.code, purpose_name=purpose.name,
        purpose_text=f"{pushed.partner_name}申请查询您的信用信息，用于{purpose.name}。",
        scopes=[s for s in detail.scopes if s in DATA_SCOPES], validity_days=detail.validity_days,
        daily_cap=detail.daily_cap if detail.daily_cap is not None else purpose.daily_cap,
        redirect_uri=pushed.redirect_uri, state=pushed.state,
        expires_at=datetime.fromtimestamp(pushed.expires_at, UTC))


def _redirect(pushed: _Pushed, settings: Settings, **params: str) -> str:
    """The registered redirect URI with the answer's parameters, `state` and `iss` (RFC 9207) added."""
    query = {**params, **({"state": pushed.state} if pushed.state is not None else {}), "iss": settings.jwt_issuer}
    separator = "&" if urlsplit(pushed.redirect_uri).query else "?"
    return f"{pushed.redirect_uri}{separator}{urlencode(query)}"


async def approve_consent(*, store: Store, ledger: LedgerWriter, cipher: object, tokens: DocumentSigner,
                          settings: Settings, client_id: str, request_uri: str, account_id: str,
                          person_id: int) -> str:
    """The citizen (`account_id`, bound to `person_id`) approves: the request is consumed, the authorization
    created `authorized` with a signed consent receipt and a ledger entry, and a single-use code issued.
    Returns the redirect URL `redirect_uri?code=…&state=…&iss=…`.

    `cipher` is accepted for the consent page's convenience and not used: the person is already resolved.

    Raises:
        InvalidRequestUri: unknown, expired, already decided (also by a concurrent approval), another client's.
        Forbidden: the partner was suspended since it pushed the request (`partner_suspended`).
    """
    del cipher
    pushed = await _consume(store, client_id=client_id, request_uri=request_uri)
    partner = await find_partner(pushed.client_id)
    if partner is None or partner.status != "active":
        raise Forbidden("the partner asking is no longer active", code="partner_suspended")
    detail = pushed.detail
    view = await authz.grant_for_person(
        person_id=person_id, partner_client_id=partner.client_id, partner_name=partner.name,
        partner_kind=partner.kind, purpose_code=detail.purpose, scopes=list(detail.scopes),
        validity_days=detail.validity_days, daily_cap=detail.daily_cap)
    subject = await person_public_id(person_id)
    receipt = tokens.sign_document({
        "jti": view.id, "authorization_id": view.id, "subject": subject, "account": account_id,
        "partner": {"client_id": view.partner_client_id, "name": view.partner_name, "kind": view.partner_kind},
        "purpose": view.purpose, "scopes": list(view.scopes), "daily_cap": view.daily_cap,
        "granted_at": int(view.decided_at.timestamp()) if view.decided_at else None,
        "valid_until": int(view.valid_until.timestamp()) if view.valid_until else None,
        "channel": "oauth_authorization_code",
    }, typ=CONSENT_RECEIPT_TYP)
    await ledger.append(AccessEvent(
        actor_kind="partner", actor_id=view.partner_client_id, actor_name=view.partner_name,
        actor_type=view.partner_kind, subject_kind="person", subject_id=subject, action="consent.granted",
        outcome="allowed", purpose=view.purpose, authorization_id=view.id, fields=view.scopes,
        result_digest=hashlib.sha256(receipt.encode()).hexdigest()))
    code = secrets.token_urlsafe(32)
    oid = authz.open_id(consent_key=settings.consent_key, partner_client_id=view.partner_client_id,
                        subject_public_id=subject)
    record = _Code(client_id=pushed.client_id, redirect_uri=pushed.redirect_uri, code_challenge=pushed.code_challenge,
                   authorization_id=view.id, open_id=oid, consent_receipt=receipt,
                   expires_at=int(time.time()) + CODE_TTL_SECONDS)
    await store.set(STORE_DOMAIN, f"code:{_sha256(code)}", _encode(record), ttl_seconds=CODE_TTL_SECONDS)
    return _redirect(pushed, settings, code=code)


async def refuse_consent(*, store: Store, settings: Settings, client_id: str, request_uri: str,
                         account_id: str) -> str:
    """The citizen refuses: the request is consumed and nothing is created. Returns
    `redirect_uri?error=access_denied&state=…&iss=…`.

    Raises:
        InvalidRequestUri: unknown, expired, already decided, or another client's.
    """
    del account_id  # nothing is recorded of a refusal: no authorization was ever created
    pushed = await _consume(store, client_id=client_id, request_uri=request_uri)
    return _redirect(pushed, settings, error="access_denied",
                     error_description="the citizen refused the request")


# ---------------------------------------------------------------- the code exchange (token endpoint)


def _pkce_matches(verifier: str, challenge: str) -> bool:
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return hmac.compare_digest(digest, challenge)


class IssuedBoundToken(msgspec.Struct, frozen=True):
    access_token: str
    expires_in: int
    scope: str
    authorization_details: list[GrantedDetail]


async def _end_on_reuse(ctx: AccountsContext, spent: _Spent) -> None:
    """A code used twice: end the authorization the first use created (the partner's termination path, so
    partners, webhooks and the ledger see it as usual)."""
    with contextlib.suppress(Conflict):  # already ended: nothing left to end
        await authz.terminate(public_id=spent.authorization_id, partner_client_id=spent.client_id,
                              reason="authorization code used twice", store=ctx.store)


async def exchange_code(*, ctx: AccountsContext, client: ClientAuthentication, code: str, redirect_uri: str | None,
                        code_verifier: str | None) -> IssuedBoundToken:
    """RFC 6749 §4.1.3 with PKCE: a code for an access token bound to the authorization it stands for.

    The code must be the authenticated client's, for the same redirect URI, with the verifier of its challenge;
    a failed check leaves it usable (a wrong guess cannot burn the partner's code), the first success spends it,
    and a second use of a spent code ends the authorization.
    """
    partner = await authenticate_client(ctx=ctx, client=client)
    store = ctx.store
    digest = _sha256(code)
    raw = await store.get(STORE_DOMAIN, f"code:{digest}")
    if raw is None:
        spent_raw = await store.get(STORE_DOMAIN, f"spent:{digest}")
        if spent_raw is not None and (spent := _spent.decode(spent_raw)).client_id == partner.client_id:
            await _end_on_reuse(ctx, spent)
            raise InvalidGrant("the authorization code was already used; the authorization it gave is ended",
                               code="authorization_code_reused")
        raise InvalidGrant("the authorization code is invalid or expired", code="invalid_authorization_code")
    record = _code.decode(raw)
    if not hmac.compare_digest(record.client_id, partner.client_id):
        raise InvalidGrant("the authorization code is invalid or expired", code="invalid_authorization_code")
    if record.expires_at <= int(time.time()):
        raise InvalidGrant("the authorization code is invalid or expired", code="invalid_authorization_code")
    if redirect_uri != record.redirect_uri:
        raise InvalidGrant("redirect_uri is not the one the code was issued for", code="redirect_uri_mismatch")
    if not code_verifier or not _VERIFIER.fullmatch(code_verifier) or not _pkce_matches(code_verifier,
                                                                                         record.code_challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge", code="invalid_code_verifier")
    spent = _Spent(client_id=record.client_id, authorization_id=record.authorization_id)
    if not await store.set_if_absent(STORE_DOMAIN, f"spent:{digest}", _encode(spent),
                                     ttl_seconds=SPENT_CODE_TTL_SECONDS):
        await _end_on_reuse(ctx, spent)
        raise InvalidGrant("the authorization code was already used; the authorization it gave is ended",
                           code="authorization_code_reused")
    await store.delete(STORE_DOMAIN, f"code:{digest}")
    loaded = await authz.load_for_use(record.authorization_id)
    view = loaded[0] if loaded is not None else None
    if view is None or view.status != authz.AUTHORIZED or view.valid_until is None:
        raise InvalidGrant("the authorization is no longer active", code="authorization_not_active")
    valid_until = view.valid_until
    remaining = int((valid_until - datetime.now(UTC)).total_seconds())
    ttl = max(1, min(ctx.settings.partner_token_ttl_seconds, remaining))
    scopes = partner.scopes & BOUND_TOKEN_SCOPES
    access, _ = ctx.tokens.issue(kind="partner", subject=partner.client_id, ttl_seconds=ttl, scopes=scopes,
                                         partner_kind=partner.kind, authorization_id=view.id)
    granted = GrantedDetail(type=DETAILS_TYPE, purpose=view.purpose, scopes=list(view.scopes),
                            validity_days=view.validity_days, daily_cap=view.daily_cap, authorization_id=view.id,
                            open_id=record.open_id, valid_until=valid_until,
                            consent_receipt=record.consent_receipt)
    return IssuedBoundToken(access_token=access, expires_in=ttl, scope=" ".join(sorted(scopes)),
                            authorization_details=[granted])


__all__ = [
    "REQUEST_URI_PREFIX", "InvalidRequestUri", "IssuedBoundToken", "PendingConsent",
    "approve_consent", "exchange_code", "pending_consent", "push_authorization_request", "refuse_consent",
]
