"""Authentication services: one-time codes, token grants, refresh rotation and revocation.

No HTTP objects here: routes pass plain values in and get plain values (or a `DomainError`) out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from piccolo.query.mixins import OnConflictAction

from accounts.context import AccountsContext
from accounts.revocations import mark_again, record_revocation
from accounts.schemas import DETAILS_TYPE, AuthorizationServerMetadata
from accounts.tables import CitizenAccount, Operator, RefreshToken
from accounts.tokens import Principal, PrincipalKind
from core import clock
from core.errors import (
    Forbidden,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnauthorizedClient,
    Unprocessable,
)
from core.settings import Settings
from credit.identity import InvalidIdentifier, new_public_id, normalize_phone
from partners.credentials import verify_secret
from partners.scopes import SCOPES
from partners.services import PartnerRecord, find_partner, suspension_marker
from partners.sms import DevSmsSender, SmsDeliveryError, SmsMessage

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = {"EC": "ES256", "OKP": "EdDSA"}
_MAX_ASSERTION_LIFETIME = 300
TOKEN_PATH = "/v1/auth/token"  # noqa: S105 - a path, not a secret
REVOCATION_PATH = "/v1/auth/revoke"
PAR_PATH = "/v1/oauth/par"  # RFC 9126 pushed authorization requests (accounts.consent)
AUTHORIZE_PATH = "/authorize"  # the consent page a pushed request is opened with

ClientAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


@dataclass(frozen=True, slots=True)
class ClientAuthentication:
    """How a request authenticated its client. `none`: a client id alone, or nothing (public clients).

    Read off the request by `api.routes.accounts.oauth` (HTTP Basic, form or JSON body); the grants below only need
    the values.
    """

    method: ClientAuthMethod
    client_id: str | None = None
    client_secret: str | None = None
    assertion_type: str | None = None
    assertion: str | None = None

    @property
    def authenticates(self) -> bool:
        return self.method != "none"


@dataclass(frozen=True, slots=True)
class OtpIssued:
    expires_in: int
    resend_after: int
    dev_code: str | None


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None
    principal: Principal


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ---------------------------------------------------------------- one-time codes (citizens)


OtpPurpose = Literal["login", "close_account"]
"""What a code is for. Each purpose has its own code slot and digest, so a code sent to log in can never close
the account (nor the other way round)."""

_OTP_TEXTS: dict[OtpPurpose, str] = {
    "login": "【信易+】验证码 {code}，{minutes} 分钟内有效，请勿告诉他人。",
    "close_account": ("【信易+】验证码 {code}，用于注销您的信易+账户，{minutes} 分钟内有效。"
                      "如非本人操作，请勿告诉他人。"),
}


def _otp_key(purpose: OtpPurpose, kind: str, phone_hash: str) -> str:
    # Login keys keep their names from before purposes existed: codes sent before an upgrade still work.
    return f"{kind}:{phone_hash}" if purpose == "login" else f"{kind}:{purpose}:{phone_hash}"


def _otp_digest(ctx: AccountsContext, phone_hash: str, code: str, purpose: OtpPurpose = "login") -> bytes:
    scope = f"otp:{phone_hash}:{code}" if purpose == "login" else f"otp:{purpose}:{phone_hash}:{code}"
    return hmac.new(ctx.settings.hash_key, scope.encode(), hashlib.sha256).digest()


def _phone_or_422(phone: str) -> str:
    try:
        return normalize_phone(phone)
    except InvalidIdentifier as exc:
        raise Unprocessable(exc.reason, code="invalid_phone") from None


async def request_otp(*, ctx: AccountsContext, phone: str, client_address: str,
                      purpose: OtpPurpose = "login") -> OtpIssued:
    """Send a 6-digit code by SMS for `purpose`, throttled per phone and per client address.

    The answer is the same whether or not the phone has an account (no existence oracle). The daily cap per
    phone is shared by every purpose: it bounds the SMS one phone can be sent, whatever they are for.
    """
    settings, store = ctx.settings, ctx.store
    number = _phone_or_422(phone)
    phone_hash = ctx.cipher.lookup_hash("phone", number)
    address_hash = _sha256(f"addr:{client_address}")[:24]
    per_address = await store.incr_with_limit(
        "otp", f"addr:{address_hash}", limit=settings.otp_per_address_per_hour, ttl_seconds=3600
    )
    if not per_address.allowed:
        raise RateLimited("too many codes requested from this address", code="otp_address_throttled",
                          retry_after=per_address.ttl_seconds)
    cool_key = _otp_key(purpose, "cool", phone_hash)
    if not await store.set_if_absent("otp", cool_key, b"1", ttl_seconds=settings.otp_resend_seconds):
        raise RateLimited("a code was sent recently; wait before asking again", code="otp_resend_throttled",
                          retry_after=settings.otp_resend_seconds)
    # Each code gets its own guess allowance (so a stranger's wrong guesses cannot lock the owner out);
    # the daily cap on codes per phone bounds the total guesses to a negligible share of the code space.
    per_phone = await store.incr_with_limit("otp", f"daily:{phone_hash}", limit=settings.otp_per_phone_per_day,
                                            ttl_seconds=24 * 3600)
    if not per_phone.allowed:
        raise RateLimited("too many codes for this phone today", code="otp_daily_limit",
                          retry_after=per_phone.ttl_seconds)
    code = f"{secrets.randbelow(1_000_000):06d}"
    code_key = _otp_key(purpose, "code", phone_hash)
    await store.set("otp", code_key, _otp_digest(ctx, phone_hash, code, purpose),
                    ttl_seconds=settings.otp_ttl_seconds)
    await store.delete("otp", _otp_key(purpose, "tries", phone_hash))
    try:
        text = _OTP_TEXTS[purpose].format(code=code, minutes=settings.otp_ttl_seconds // 60)
        template = "login_otp" if purpose == "login" else f"{purpose}_otp"
        await ctx.sms.send(SmsMessage(phone=number, template=template, text=text))
    except SmsDeliveryError:
        await store.delete("otp", code_key)
        await store.delete("otp", cool_key)
        raise ServiceUnavailable("the SMS gateway is unavailable", code="sms_unavailable") from None
    # Only the in-memory dev adapter outside production ever echoes the code (for the local demo).
    echo = not settings.is_production and isinstance(ctx.sms, DevSmsSender)
    return OtpIssued(expires_in=settings.otp_ttl_seconds, resend_after=settings.otp_resend_seconds,
                     dev_code=code if echo else None)


async def consume_otp(*, ctx: AccountsContext, phone_hash: str, code: str, purpose: OtpPurpose) -> None:
    """Spend the code sent for `purpose` to the phone with this keyed hash, or raise.

    At most `otp_max_attempts` guesses per code lifetime; a code lives `otp_ttl_seconds` (so a code that
    checks out was sent within that time) and serves once: of two concurrent uses only the one that deletes
    it wins.

    Raises:
        RateLimited: `otp_attempts_exceeded`.
        InvalidGrant: `invalid_otp` (wrong, expired, spent, or sent for another purpose).
    """
    settings, store = ctx.settings, ctx.store
    tries_key, code_key = _otp_key(purpose, "tries", phone_hash), _otp_key(purpose, "code", phone_hash)
    tries = await store.incr_with_limit("otp", tries_key, limit=settings.otp_max_attempts,
                                        ttl_seconds=settings.otp_ttl_seconds)
    if not tries.allowed:
        await store.delete("otp", code_key)
        raise RateLimited("too many wrong codes; request a new code later", code="otp_attempts_exceeded",
                          retry_after=tries.ttl_seconds)
    stored = await store.get("otp", code_key)
    if stored is None or not hmac.compare_digest(stored, _otp_digest(ctx, phone_hash, code, purpose)):
        raise InvalidGrant("the code is wrong or expired", code="invalid_otp")
    if not await store.delete("otp", code_key):
        raise InvalidGrant("the code is wrong or expired", code="invalid_otp")
    await store.delete("otp", tries_key)


async def account_for_otp(*, ctx: AccountsContext, phone: str, code: str) -> str:
    """Check a phone + login code (single use, same guess allowance) and return the citizen's account id, creating
    the account on first login. The consent page logs in with this: its browser session needs the account, not
    tokens (a refresh token nobody holds would only be one more credential to leak)."""
    number = _phone_or_422(phone)
    phone_hash = ctx.cipher.lookup_hash("phone", number)
    await consume_otp(ctx=ctx, phone_hash=phone_hash, code=code, purpose="login")
    return await _get_or_create_account(ctx, phone_hash=phone_hash, phone=number)


async def login_with_otp(*, ctx: AccountsContext, phone: str, code: str) -> IssuedTokens:
    """Exchange a phone + code for tokens. At most `otp_max_attempts` guesses per code lifetime."""
    account_id = await account_for_otp(ctx=ctx, phone=phone, code=code)
    return await _issue_session(ctx, kind="citizen", subject=account_id, family_id=None)


async def _get_or_create_account(ctx: AccountsContext, *, phone_hash: str, phone: str) -> str:
    row = await CitizenAccount.select(CitizenAccount.public_id, CitizenAccount.status).where(
        CitizenAccount.phone_hash == phone_hash).first()
    if row is None:
        await CitizenAccount.insert(
            CitizenAccount(public_id=new_public_id("acc"), phone_hash=phone_hash,
                           phone_enc=ctx.cipher.encrypt("phone", phone))
        ).on_conflict(target=CitizenAccount.phone_hash, action=OnConflictAction.do_nothing)
        row = await CitizenAccount.select(CitizenAccount.public_id, CitizenAccount.status).where(
            CitizenAccount.phone_hash == phone_hash).first()
    assert row is not None
    # A closing account may log in again: a closure interrupted after it ended the sessions is finished by
    # calling close once more (accounts.closure), and only the phone's holder can get that far.
    if row["status"] not in ("active", "closing"):
        raise Forbidden("this account is suspended", code="account_suspended")
    return str(row["public_id"])


# ---------------------------------------------------------------- sessions and refresh rotation


async def _issue_session(ctx: AccountsContext, *, kind: PrincipalKind, subject: str, family_id: str | None,
                         role: str | None = None) -> IssuedTokens:
    """Access token plus a new refresh token in `family_id` (a new family for a new login)."""
    settings = ctx.settings
    family = family_id or secrets.token_hex(12)
    access, principal = ctx.tokens.issue(kind=kind, subject=subject, ttl_seconds=settings.access_token_ttl_seconds,
                                         role=role, family_id=family)
    refresh = secrets.token_urlsafe(32)
    await RefreshToken.insert(
        RefreshToken(token_hash=_sha256(refresh), family_id=family, subject_kind=kind, subject_id=subject,
                     expires_at=clock.now() + timedelta(seconds=settings.refresh_token_ttl_seconds))
    )
    return IssuedTokens(access_token=access, expires_in=settings.access_token_ttl_seconds, scope="",
                        refresh_token=refresh, principal=principal)


async def _revoke_family(ctx: AccountsContext, family_id: str) -> None:
    # Access tokens of the family stay denied until the longest of them has expired.
    ttl = ctx.settings.access_token_ttl_seconds + 60
    marker = f"fam:{family_id}"
    await ctx.store.set("auth", marker, b"1", ttl_seconds=ttl)  # store down: 503 before anything changed
    async with RefreshToken._meta.db.transaction():
        await RefreshToken.update({RefreshToken.revoked_at: clock.now()}).where(
            (RefreshToken.family_id == family_id) & RefreshToken.revoked_at.is_null())
        await record_revocation(marker, ttl_seconds=ttl)
    await mark_again(ctx.store, marker, ttl_seconds=ttl)


async def end_sessions(*, ctx: AccountsContext, subject_id: str) -> int:
    """End every session of a citizen or operator: no refresh token of theirs rotates again, and every access
    token still alive is denied (a revoked-family marker in the store and in `revoked_tokens`, so it survives a
    store that loses its data). Returns how many sessions were still open; safe to run again.

    Only families that issued a token within the access-token lifetime can have a live access token, so only
    they need a marker; every family's refresh tokens are revoked in the database.
    """
    since = clock.now() - timedelta(seconds=ctx.settings.access_token_ttl_seconds + ctx.settings.jwt_leeway_seconds
                                    + 60)
    rows = await RefreshToken.select(RefreshToken.family_id).where(
        (RefreshToken.subject_id == subject_id) & (RefreshToken.issued_at > since)).distinct()
    open_families = {str(r["family_id"]) for r in await RefreshToken.select(RefreshToken.family_id).where(
        (RefreshToken.subject_id == subject_id) & RefreshToken.revoked_at.is_null()
        & (RefreshToken.expires_at > clock.now())).distinct()}
    for family in sorted({str(r["family_id"]) for r in rows}):
        await _revoke_family(ctx, family)
    # Families too old for a live access token (not marked above) lose their refresh tokens too.
    await RefreshToken.update({RefreshToken.revoked_at: clock.now()}).where(
        (RefreshToken.subject_id == subject_id) & RefreshToken.revoked_at.is_null())
    return len(open_families)


async def refresh_session(*, ctx: AccountsContext, refresh_token: str) -> IssuedTokens:
    """Rotate a refresh token. Presenting an already used one revokes its whole family."""
    token_hash = _sha256(refresh_token)
    now = clock.now()
    spent = await RefreshToken.update({RefreshToken.used_at: now}).where(
        (RefreshToken.token_hash == token_hash)
        & RefreshToken.used_at.is_null()
        & RefreshToken.revoked_at.is_null()
        & (RefreshToken.expires_at > now)
    ).returning(RefreshToken.subject_kind, RefreshToken.subject_id, RefreshToken.family_id)
    if not spent:
        known = await RefreshToken.select(RefreshToken.family_id, RefreshToken.used_at, RefreshToken.revoked_at
                                          ).where(RefreshToken.token_hash == token_hash).first()
        if known is not None and known["used_at"] is not None and known["revoked_at"] is None:
            await _revoke_family(ctx, known["family_id"])
            raise InvalidGrant("refresh token reuse detected; the session was ended", code="refresh_token_reused")
        raise InvalidGrant("refresh token is invalid, expired or revoked", code="invalid_refresh_token")
    row = spent[0]
    kind, subject, family = row["subject_kind"], row["subject_id"], row["family_id"]
    role: str | None = None
    if kind == "citizen":
        account = await CitizenAccount.select(CitizenAccount.status).where(
            CitizenAccount.public_id == subject).first()
        active = account is not None and account["status"] == "active"
    else:
        operator = await Operator.select(Operator.status, Operator.role).where(Operator.public_id == subject).first()
        active = operator is not None and operator["status"] == "active"
        role = operator["role"] if operator else None
    if not active:
        await _revoke_family(ctx, family)
        raise InvalidGrant("the account is no longer active", code="account_suspended")
    return await _issue_session(ctx, kind=kind, subject=subject, family_id=family, role=role)


# ---------------------------------------------------------------- partners (client credentials)


def _granted_scopes(partner: PartnerRecord, requested: str | None) -> frozenset[str]:
    if not requested:
        return partner.scopes
    wanted = frozenset(requested.split())
    if not wanted <= partner.scopes:
        raise InvalidScope("requested scope exceeds what the partner holds")
    return wanted


async def authenticate_client(*, ctx: AccountsContext, client: ClientAuthentication) -> PartnerRecord:
    """The active partner that `client` authenticates as: by client secret (Basic or in the body) or by a
    private_key_jwt assertion (RFC 7523). Raises `InvalidClient` otherwise."""
    if client.method == "private_key_jwt":
        partner = await _partner_from_assertion(ctx, client_id=client.client_id, assertion_type=client.assertion_type,
                                                assertion=client.assertion or "")
    elif client.method == "none" or not client.client_id or not client.client_secret:
        raise InvalidClient("client authentication is required: a client secret (HTTP Basic or client_id + "
                            "client_secret) or a client assertion")
    else:
        found = await find_partner(client.client_id)
        # verify_secret runs (and costs the same) even for an unknown client: no timing oracle.
        hashes: list[str | None] = list(found.secret_hashes(datetime.now(UTC))) if found else []
        if not any(verify_secret(client.client_secret, h) for h in hashes or [None]) or found is None:
            raise InvalidClient()
        partner = found
    if partner.status != "active":
        raise InvalidClient("the partner is not active", code="partner_suspended")
    return partner


async def client_credentials(*, ctx: AccountsContext, client: ClientAuthentication, scope: str | None) -> IssuedTokens:
    """Authenticate a partner and issue it an access token (RFC 6749 §4.4)."""
    partner = await authenticate_client(ctx=ctx, client=client)
    scopes = _granted_scopes(partner, scope)
    ttl = ctx.settings.partner_token_ttl_seconds
    access, principal = ctx.tokens.issue(kind="partner", subject=partner.client_id, ttl_seconds=ttl,
                                         scopes=scopes, partner_kind=partner.kind)
    return IssuedTokens(access_token=access, expires_in=ttl, scope=" ".join(sorted(scopes)),
                        refresh_token=None, principal=principal)


async def refuse_authenticated_client(*, ctx: AccountsContext, client: ClientAuthentication, grant_type: str) -> None:
    """Citizen and operator grants are for the city's own (public) apps. A partner that authenticates with one
    is told it may not use it (after its credentials are checked, so a wrong secret is still invalid_client)."""
    if not client.authenticates:
        return
    await authenticate_client(ctx=ctx, client=client)
    raise UnauthorizedClient(f"partners may use grant_type client_credentials or authorization_code only, "
                             f"not {grant_type}")


async def _partner_from_assertion(ctx: AccountsContext, *, client_id: str | None, assertion_type: str | None,
                                  assertion: str) -> PartnerRecord:
    if assertion_type != CLIENT_ASSERTION_TYPE:
        raise InvalidClient("unsupported client_assertion_type")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidClient("malformed client assertion") from None
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or (client_id and client_id != issuer):
        raise InvalidClient("assertion issuer does not match the client")
    partner = await find_partner(issuer)
    if partner is None:
        raise InvalidClient()
    # Only signing keys: a partner's RSA key is registered for encrypting portraits to it, never to verify.
    key = next((k for k in partner.jwks if k.get("kid") == header.get("kid") and k.get("kty") in ASSERTION_ALGORITHMS),
               None)
    if key is None:
        raise InvalidClient("no registered key matches the assertion's kid")
    algorithm = ASSERTION_ALGORITHMS[key["kty"]]
    if header.get("alg") != algorithm:
        raise InvalidClient("assertion algorithm does not match the registered key")
    # RFC 7523 §3: the audience is this authorization server: its issuer, or the endpoint the assertion is for.
    settings = ctx.settings
    audiences = [settings.jwt_issuer, f"{settings.jwt_issuer}{TOKEN_PATH}", f"{settings.public_url}{TOKEN_PATH}",
                 f"{settings.public_url}{REVOCATION_PATH}", f"{settings.public_url}{PAR_PATH}"]
    try:
        claims = jwt.decode(
            assertion, jwt.PyJWK(key, algorithm=algorithm).key, algorithms=[algorithm], audience=audiences,
            issuer=partner.client_id, leeway=ctx.settings.jwt_leeway_seconds,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
        )
    except jwt.PyJWTError:
        raise InvalidClient("client assertion rejected") from None
    if claims["sub"] != partner.client_id:
        raise InvalidClient("assertion subject must be the client id")
    lifetime = int(claims["exp"]) - int(time.time())
    if lifetime > _MAX_ASSERTION_LIFETIME:
        raise InvalidClient("client assertions may live at most 5 minutes")
    # Each assertion is single use (RFC 7523 §3 jti): remember it until it could no longer verify.
    ttl = max(1, lifetime + ctx.settings.jwt_leeway_seconds)
    if not await ctx.store.set_if_absent("auth", f"assertion:{partner.client_id}:{claims['jti']}", b"1",
                                         ttl_seconds=ttl):
        raise InvalidClient("client assertion already used", code="assertion_replayed")
    return partner


# ---------------------------------------------------------------- operators


async def operator_login(*, ctx: AccountsContext, username: str, password: str) -> IssuedTokens:
    """Username + password for credit office operators, throttled per username.

    Every attempt counts against the hour's allowance up front (so parallel guesses cannot slip past it), and a
    successful login clears the count: only failed attempts lock an account, not an operator's own logins.
    """
    throttle_key = f"oplogin:{_sha256(username.lower())[:24]}"
    attempts = await ctx.store.incr_with_limit(
        "auth", throttle_key, limit=ctx.settings.operator_login_attempts_per_hour, ttl_seconds=3600)
    if not attempts.allowed:
        raise RateLimited("too many login attempts", code="login_throttled", retry_after=attempts.ttl_seconds)
    row = await Operator.select(Operator.public_id, Operator.password_hash, Operator.role, Operator.status).where(
        Operator.username == username).first()
    if not verify_secret(password, row["password_hash"] if row else None) or row is None:
        raise InvalidGrant("wrong username or password", code="invalid_credentials")
    if row["status"] != "active":
        raise Forbidden("this operator account is disabled", code="account_suspended")
    await ctx.store.delete("auth", throttle_key)
    return await _issue_session(ctx, kind="operator", subject=row["public_id"], family_id=None, role=row["role"])


# ---------------------------------------------------------------- revocation


async def revoke_token(*, ctx: AccountsContext, token: str, client: ClientAuthentication) -> None:
    """RFC 7009: revoke an access or refresh token.

    Partners are confidential clients: a partner's token is revoked only with that partner's client
    authentication. Citizen and operator tokens belong to the city's public apps and are revoked with the token
    alone. Unknown, expired or already invalid tokens are accepted silently.
    """
    partner = await authenticate_client(ctx=ctx, client=client) if client.authenticates else None
    if token.count(".") == 2:
        try:
            principal = ctx.tokens.verify(token)
        except Unauthorized:
            return
        _require_issued_to(partner, principal.subject if principal.kind == "partner" else None)
        remaining = principal.expires_at - int(time.time()) + ctx.settings.jwt_leeway_seconds
        if remaining > 0:
            marker = f"jti:{principal.token_id}"
            await ctx.store.set("auth", marker, b"1", ttl_seconds=remaining)  # store down: 503, nothing changed
            await record_revocation(marker, ttl_seconds=remaining)
            await mark_again(ctx.store, marker, ttl_seconds=remaining)
        return
    row = await RefreshToken.select(RefreshToken.family_id).where(
        RefreshToken.token_hash == _sha256(token)).first()
    if row is not None:
        _require_issued_to(partner, None)  # refresh tokens go to citizen and operator sessions only
        await _revoke_family(ctx, row["family_id"])


def _require_issued_to(partner: PartnerRecord | None, owner: str | None) -> None:
    """RFC 7009 §2.1: the token must have been issued to the client that asks (`owner` None: a public app)."""
    if owner is not None and partner is None:
        raise InvalidClient("a partner's token is revoked with that partner's client authentication")
    if (partner.client_id if partner else None) != owner:
        raise InvalidGrant("the token was not issued to this client", code="token_of_another_client")


def revocation_keys(principal: Principal) -> list[tuple[str, str]]:
    """The store (domain, key) pairs whose presence means this token may no longer be used."""
    keys = [("auth", f"jti:{principal.token_id}")]
    if principal.family_id:
        keys.append(("auth", f"fam:{principal.family_id}"))
    if principal.kind == "partner":
        # A suspended partner's tokens stop working on the next request, on every worker.
        keys.append(suspension_marker(principal.subject))
    return keys


async def is_revoked(*, ctx: AccountsContext, principal: Principal) -> bool:
    """One store round trip: is this token, or its session family, revoked?"""
    return (await ctx.store.probe_and_count(probe=revocation_keys(principal))).found


# ---------------------------------------------------------------- discovery (RFC 8414)

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


def authorization_server_metadata(*, settings: Settings) -> AuthorizationServerMetadata:
    """What is true of this authorization server today, with absolute URLs from the configured public URL.

    The authorization endpoint is the consent page, opened only with a request the partner pushed first
    (RFC 9126, `require_pushed_authorization_requests`), with PKCE S256 and our authorization details type
    (RFC 9396); the redirect back carries `iss` (RFC 9207). `none` is the city's own public apps (citizen OTP,
    operator password, refresh); partners use one of the three others.
    """
    base = settings.public_url
    algorithms = sorted(set(ASSERTION_ALGORITHMS.values()))
    return AuthorizationServerMetadata(
        issuer=settings.jwt_issuer,
        token_endpoint=f"{base}{TOKEN_PATH}",
        revocation_endpoint=f"{base}{REVOCATION_PATH}",
        jwks_uri=f"{base}/.well-known/jwks.json",
        scopes_supported=sorted(SCOPES),
        response_types_supported=["code"],
        grant_types_supported=["authorization_code", "client_credentials", "refresh_token", "password", "otp"],
        token_endpoint_auth_methods_supported=CLIENT_AUTH_METHODS,
        token_endpoint_auth_signing_alg_values_supported=algorithms,
        revocation_endpoint_auth_methods_supported=CLIENT_AUTH_METHODS,
        revocation_endpoint_auth_signing_alg_values_supported=algorithms,
        service_documentation=f"{base}/schema/swagger",
        authorization_endpoint=f"{base}{AUTHORIZE_PATH}",
        pushed_authorization_request_endpoint=f"{base}{PAR_PATH}",
        require_pushed_authorization_requests=True,
        code_challenge_methods_supported=["S256"],
        authorization_details_types_supported=[DETAILS_TYPE],
        authorization_response_iss_parameter_supported=True,
    )
