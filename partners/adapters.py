"""Adapter interfaces to the outside world, with default implementations chosen by settings.

- SMS: `partners.sms` (dev recorder or HTTP gateway).
- Identity verification (实名核验): confirm that a name and 公民身份号码 belong together. The default,
  `RegistryIdentityVerifier`, trusts the city's own citizen registry; `HttpIdentityVerifier` asks an
  external verification service (e.g. the public security identity gateway) and is used when
  `XINYI_IDENTITY_VERIFIER_URL` is set.
- Partner notifications (banks, merchants, peer cities): signed webhooks from the transactional
  outbox (`partners.delivery`), so nothing is lost while a partner is down.
- Peer cities: credit passports (compact EdDSA JWS) signed by mutually recognised cities verify
  against keys from a chain of sources: peer cities registered as `city_peer` partners with their
  issuer and JWKs (`RegistryPeerKeys`, checked first), then the configured `issuer=jwks-url` pairs
  fetched through the SSRF guard (`JwksPeerCities`, `XINYI_PEER_CITIES`).

Every adapter is a Protocol so tests and the simulators can stand in real HTTP peers on loopback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from cachetools import TTLCache

from core.net import ResponseTooLarge, bounded_request
from partners.ssrf import SafeHttpClient
from partners.tables import Partner

logger = logging.getLogger("xinyi.adapters")


class IdentityVerificationUnavailable(Exception):
    """The external identity service could not answer; callers fail closed."""


# A verdict is a few bytes of JSON; anything much larger is not one.
_MAX_VERDICT_BYTES = 16 * 1024


class IdentityVerifier(Protocol):
    async def verify(self, *, name: str, id_number: str) -> bool: ...

    async def close(self) -> None: ...


class RegistryIdentityVerifier:
    """Trusts the city registry: a registry match is the verification (the default)."""

    async def verify(self, *, name: str, id_number: str) -> bool:
        return True

    async def close(self) -> None:
        return None


class HttpIdentityVerifier:
    """Asks an external service `POST {url}` with {name, id_number}; expects {"match": bool}."""

    def __init__(self, *, url: str, token: str | None, timeout_seconds: float = 3.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._url = url
        self._timeout = timeout_seconds
        self._client = httpx.AsyncClient(timeout=timeout_seconds, headers=headers, follow_redirects=False)

    async def verify(self, *, name: str, id_number: str) -> bool:
        try:
            answer = await bounded_request(self._client, "POST", self._url, deadline_seconds=self._timeout,
                                           max_bytes=_MAX_VERDICT_BYTES, json={"name": name, "id_number": id_number})
            body = json.loads(answer.body) if 200 <= answer.status_code < 300 else None
        # RecursionError: a few KB of `[[[[…` nest deeper than the JSON parser goes (a 500 otherwise).
        except (httpx.HTTPError, TimeoutError, ResponseTooLarge, ValueError, RecursionError) as exc:
            # Never log the name or number; the class of failure is enough to investigate.
            logger.warning("identity verification failed: %s", type(exc).__name__)
            raise IdentityVerificationUnavailable(type(exc).__name__) from exc
        # Only a literal boolean is a verdict: an error status, `"false"` or a list must not read as a match.
        match = body.get("match") if isinstance(body, dict) else None
        if not isinstance(match, bool):
            logger.warning("identity verification failed: HTTP %s without a verdict", answer.status_code)
            raise IdentityVerificationUnavailable("no verdict")
        return match

    async def close(self) -> None:
        await self._client.aclose()


def build_identity_verifier(*, url: str | None, token: str | None) -> IdentityVerifier:
    if url:
        return HttpIdentityVerifier(url=url, token=token)
    return RegistryIdentityVerifier()


# ---------------------------------------------------------------- peer cities (mutual recognition)

PASSPORT_TYP = "credit-passport+jwt"
PASSPORT_ALGORITHM = "EdDSA"
PASSPORT_LEEWAY_SECONDS = 30
# A passport lives at most a day: a peer signing longer-lived ones is refused rather than trusted longer.
PASSPORT_MAX_LIFETIME_SECONDS = 24 * 3600
_REQUIRED_CLAIMS = ["iss", "sub", "exp", "iat"]
_JWKS_TTL_SECONDS = 300.0
# A `kid` we do not know makes a source look again, but not more often than this per issuer, so a
# stream of made-up key ids cannot turn into a stream of fetches (of a peer's JWKS or our registry).
_REFRESH_INTERVAL_SECONDS = 10.0
# Peer keys registered in the partner registry are cached per process this long: a new, re-keyed or
# suspended peer takes effect within 30 s on every worker (at once on the one that took the change).
REGISTRY_TTL_SECONDS = 30.0

PeerKeys = dict[str, dict[str, Any]]  # kid -> public JWK


class PassportRejected(Exception):
    """A presented credit passport did not verify; `reason` is a stable short word.

    Reasons: malformed, unsupported_format, unknown_issuer, unknown_key, bad_signature, expired,
    not_yet_valid, lifetime_too_long, issuer_keys_unavailable.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedPassport:
    issuer: str
    subject: str
    tier: str
    expires_at: int
    issued_at: int = 0
    token_id: str | None = None


class PeerKeySource(Protocol):
    """Where the public keys of one or more passport issuers come from."""

    async def issuer_keys(self, issuer: str, *, refresh: bool) -> PeerKeys | None:
        """The issuer's Ed25519 signing keys by kid; None when this source does not know the issuer.

        Raises:
            PassportRejected: `issuer_keys_unavailable` when the source knows the issuer but cannot
                produce its keys right now.
        """
        ...


class PeerCities(PeerKeySource, Protocol):
    async def verify_passport(self, token: str) -> VerifiedPassport: ...


def _signing_keys(keys: Iterable[Any]) -> PeerKeys:
    """Only public Ed25519 keys meant for signatures count; anything else is ignored.

    A key must also load: a peer's JWKS is fetched from the network, and one malformed key (a short `x`)
    must make its passports `unknown_key`, not crash the verification.
    """
    usable: PeerKeys = {}
    for key in keys:
        if not isinstance(key, dict) or "d" in key or not key.get("kid"):
            continue
        if key.get("kty") != "OKP" or key.get("crv") != "Ed25519":
            continue
        if key.get("alg", PASSPORT_ALGORITHM) != PASSPORT_ALGORITHM or key.get("use", "sig") != "sig":
            continue
        try:
            jwt.PyJWK(key, algorithm=PASSPORT_ALGORITHM)
        except jwt.PyJWTError:
            continue
        usable[str(key["kid"])] = key
    return usable


def read_passport(token: str) -> tuple[str, str]:
    """The claimed issuer and key id of a passport, before anything is trusted.

    The format is checked first so nothing but a compact EdDSA JWS of our type reaches a key look-up:
    `alg: none`, HS256 (key confusion) and every other algorithm are refused here.
    """
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise PassportRejected("malformed") from None
    typ = header.get("typ")
    if (header.get("alg") != PASSPORT_ALGORITHM or not isinstance(typ, str) or typ.lower() != PASSPORT_TYP
            or "crit" in header):
        # RFC 7515 §4.1.11: we understand no extensions, so a critical one is refused too.
        raise PassportRejected("unsupported_format")
    issuer, kid = unverified.get("iss"), header.get("kid")
    if not isinstance(issuer, str) or not issuer or not isinstance(kid, str) or not kid:
        raise PassportRejected("malformed")
    return issuer, kid


def verify_with_key(token: str, *, issuer: str, jwk: dict[str, Any],
                    max_lifetime_seconds: int = PASSPORT_MAX_LIFETIME_SECONDS) -> VerifiedPassport:
    """Check signature (EdDSA only), issuer, expiry, required claims and lifetime against one key."""
    try:
        key = jwt.PyJWK(jwk, algorithm=PASSPORT_ALGORITHM).key
    except jwt.PyJWTError:  # PyJWKError, and InvalidKeyError for a key whose parameters do not load
        raise PassportRejected("unknown_key") from None
    try:
        claims = jwt.decode(token, key, algorithms=[PASSPORT_ALGORITHM], issuer=issuer,
                            leeway=PASSPORT_LEEWAY_SECONDS,
                            options={"require": _REQUIRED_CLAIMS, "verify_aud": False})
    except jwt.ExpiredSignatureError:
        raise PassportRejected("expired") from None
    except jwt.ImmatureSignatureError:
        raise PassportRejected("not_yet_valid") from None
    except jwt.InvalidSignatureError:
        raise PassportRejected("bad_signature") from None
    except jwt.PyJWTError:
        # Signed by the issuer's key but missing or mistyping a required claim.
        raise PassportRejected("malformed") from None
    subject, tier, jti = claims.get("sub"), claims.get("tier"), claims.get("jti")
    if not isinstance(subject, str) or not subject or not isinstance(tier, str) or not tier or len(tier) > 16:
        raise PassportRejected("malformed")
    issued_at, expires_at = int(claims["iat"]), int(claims["exp"])
    if expires_at - issued_at > max_lifetime_seconds + PASSPORT_LEEWAY_SECONDS:
        raise PassportRejected("lifetime_too_long")
    return VerifiedPassport(issuer=issuer, subject=subject, tier=tier, expires_at=expires_at, issued_at=issued_at,
                            token_id=jti if isinstance(jti, str) else None)


class _RefreshGate:
    """Allows a forced re-read of an issuer's keys at most once per interval."""

    def __init__(self, interval: float = _REFRESH_INTERVAL_SECONDS) -> None:
        self._recent: TTLCache[str, bool] = TTLCache(10_000, interval)  # issuers re-read within the interval

    def allow(self, issuer: str) -> bool:
        if issuer in self._recent:
            return False
        self._recent[issuer] = True
        return True


async def verify_passport_from(sources: Sequence[PeerKeySource], token: str, *,
                               max_lifetime_seconds: int = PASSPORT_MAX_LIFETIME_SECONDS) -> VerifiedPassport:
    """Verify a passport against the first source that knows its issuer (earlier sources win)."""
    issuer, kid = read_passport(token)
    for source in sources:
        keys = await source.issuer_keys(issuer, refresh=False)
        if keys is None:
            continue
        if kid not in keys:
            # Perhaps the issuer rotated its key since we cached its set: look once more.
            keys = await source.issuer_keys(issuer, refresh=True) or {}
        if kid not in keys:
            raise PassportRejected("unknown_key")
        return verify_with_key(token, issuer=issuer, jwk=keys[kid], max_lifetime_seconds=max_lifetime_seconds)
    raise PassportRejected("unknown_issuer")


class StaticPeerKeys:
    """One issuer with keys known in process (our own city: the tokens service's published keys)."""

    def __init__(self, *, issuer: str, keys: Iterable[Any]) -> None:
        self._issuer = issuer
        self._keys = _signing_keys(keys)

    async def issuer_keys(self, issuer: str, *, refresh: bool) -> PeerKeys | None:
        return self._keys if issuer == self._issuer else None


class RegistryPeerKeys:
    """Peer cities registered as `city_peer` partners: their issuer and the Ed25519 keys in their JWKs.

    Only active partners count. Answers (including "no such issuer") are cached per process for
    `ttl_seconds`; operators' changes call `forget()` so the worker that took them applies them at once.
    """

    def __init__(self, *, ttl_seconds: float = REGISTRY_TTL_SECONDS) -> None:
        self._entries: TTLCache[str, PeerKeys | None] = TTLCache(10_000, ttl_seconds)
        self._refresh = _RefreshGate()

    async def issuer_keys(self, issuer: str, *, refresh: bool) -> PeerKeys | None:
        if issuer in self._entries and not (refresh and self._refresh.allow(issuer)):
            return self._entries[issuer]
        row = await Partner.select(Partner.jwks).where(
            (Partner.issuer == issuer) & (Partner.kind == "city_peer") & (Partner.status == "active")).first()
        keys: PeerKeys | None = None
        if row is not None:
            raw = row["jwks"]
            registered = json.loads(raw) if isinstance(raw, str) and raw else (raw or [])
            keys = _signing_keys(registered if isinstance(registered, list) else [])
        self._entries[issuer] = keys
        return keys

    def forget(self) -> None:
        """Drop every cached answer (after an operator registers, re-keys or suspends a peer)."""
        self._entries.clear()


# The process's registry view. One per process rather than per app context: the cache is only of
# database rows, and operators' routes reach it to drop it after a change.
peer_registry = RegistryPeerKeys()


class JwksPeerCities:
    """Verifies passports signed by mutually recognised cities against their published JWKS.

    `peers` maps each city's issuer to its JWKS URL (configuration, e.g. `XINYI_PEER_CITIES`). Keys are
    fetched through the SSRF-guarded client and cached for a few minutes; an unknown `kid` triggers
    one refetch (at most every few seconds) so a peer's key rotation is picked up without a restart.
    """

    def __init__(self, *, peers: dict[str, str], allow_loopback: bool, timeout_seconds: float = 3.0,
                 max_jwks_bytes: int = 64 * 1024) -> None:
        self._peers = dict(peers)
        self._allow_loopback = allow_loopback
        self._timeout = timeout_seconds
        self._max_bytes = max_jwks_bytes
        self._keys: TTLCache[str, PeerKeys] = TTLCache(max(1, len(self._peers)), _JWKS_TTL_SECONDS)
        self._refresh = _RefreshGate()

    async def issuer_keys(self, issuer: str, *, refresh: bool) -> PeerKeys | None:
        if issuer not in self._peers:
            return None
        cached = self._keys.get(issuer)
        if cached is not None and not (refresh and self._refresh.allow(issuer)):
            return cached
        async with SafeHttpClient(allow_loopback=self._allow_loopback, timeout_seconds=self._timeout,
                                  max_response_bytes=self._max_bytes) as client:
            outcome, document = await client.get_json(self._peers[issuer])
        if not outcome.ok or not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            logger.warning("peer city keys unavailable (%s)", outcome.error or "malformed")
            raise PassportRejected("issuer_keys_unavailable")
        keys = _signing_keys(document["keys"])
        self._keys[issuer] = keys
        return keys

    async def verify_passport(self, token: str) -> VerifiedPassport:
        return await verify_passport_from([self], token)


def parse_peer_cities(value: str | None) -> dict[str, str]:
    """`issuer=jwks-url` pairs separated by `;` (e.g. `https://hz.example=https://hz.example/jwks.json`)."""
    peers: dict[str, str] = {}
    for part in (value or "").split(";"):
        if "=" in part:
            issuer, url = part.split("=", 1)
            peers[issuer.strip()] = url.strip()
    return peers
