"""Adapter interfaces to the outside world, with default implementations chosen by settings.

- SMS: `partners.sms` (dev recorder or HTTP gateway).
- Identity verification (实名核验): confirm that a name and 公民身份号码 belong together. The default,
  `RegistryIdentityVerifier`, trusts the city's own citizen registry; `HttpIdentityVerifier` asks an
  external verification service (e.g. the public security identity gateway) and is used when
  `XINYI_IDENTITY_VERIFIER_URL` is set.
- Partner notifications (banks, merchants, peer cities): signed webhooks from the transactional
  outbox (`partners.delivery`), so nothing is lost while a partner is down.
- Peer cities: `JwksPeerCities` verifies credit passports signed by mutually recognised cities
  against their published keys (`XINYI_PEER_CITIES`).

Every adapter is a Protocol so tests and the simulators can stand in real HTTP peers on loopback.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt

from partners.ssrf import SafeHttpClient

logger = logging.getLogger("xinyi.adapters")


class IdentityVerificationUnavailable(Exception):
    """The external identity service could not answer; callers fail closed."""


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
        self._client = httpx.AsyncClient(timeout=timeout_seconds, headers=headers, follow_redirects=False)

    async def verify(self, *, name: str, id_number: str) -> bool:
        try:
            response = await self._client.post(self._url, json={"name": name, "id_number": id_number})
            response.raise_for_status()
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # Never log the name or number; the class of failure is enough to investigate.
            logger.warning("identity verification failed: %s", type(exc).__name__)
            raise IdentityVerificationUnavailable(type(exc).__name__) from exc
        return bool(body.get("match"))

    async def close(self) -> None:
        await self._client.aclose()


def build_identity_verifier(*, url: str | None, token: str | None) -> IdentityVerifier:
    if url:
        return HttpIdentityVerifier(url=url, token=token)
    return RegistryIdentityVerifier()


# ---------------------------------------------------------------- peer cities (mutual recognition)

PASSPORT_TYP = "credit-passport+jwt"
_JWKS_TTL_SECONDS = 300.0


class PassportRejected(Exception):
    """A presented credit passport did not verify; `reason` is a stable short word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedPassport:
    issuer: str
    subject: str
    tier: str
    expires_at: int


class PeerCities(Protocol):
    async def verify_passport(self, token: str) -> VerifiedPassport: ...


class JwksPeerCities:
    """Verifies passports signed by mutually recognised cities against their published JWKS.

    `peers` maps each city's issuer to its JWKS URL (configuration, e.g. `XINYI_PEER_CITIES`). Keys are
    fetched through the SSRF-guarded client and cached for a few minutes; an unknown `kid` triggers
    one refetch so a peer's key rotation is picked up without a restart.
    """

    def __init__(self, *, peers: dict[str, str], allow_loopback: bool, timeout_seconds: float = 3.0,
                 max_jwks_bytes: int = 64 * 1024) -> None:
        self._peers = dict(peers)
        self._allow_loopback = allow_loopback
        self._timeout = timeout_seconds
        self._max_bytes = max_jwks_bytes
        self._keys: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}

    async def _jwks(self, issuer: str, *, refresh: bool) -> dict[str, dict[str, Any]]:
        cached = self._keys.get(issuer)
        if cached is not None and not refresh and cached[0] > time.monotonic():
            return cached[1]
        async with SafeHttpClient(allow_loopback=self._allow_loopback, timeout_seconds=self._timeout,
                                  max_response_bytes=self._max_bytes) as client:
            outcome, document = await client.get_json(self._peers[issuer])
        if not outcome.ok or not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            logger.warning("peer city keys unavailable (%s)", outcome.error or "malformed")
            raise PassportRejected("issuer_keys_unavailable")
        keys = {str(k.get("kid")): k for k in document["keys"] if isinstance(k, dict) and "d" not in k}
        self._keys[issuer] = (time.monotonic() + _JWKS_TTL_SECONDS, keys)
        return keys

    async def verify_passport(self, token: str) -> VerifiedPassport:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise PassportRejected("malformed") from None
        issuer = unverified.get("iss")
        if header.get("alg") != "EdDSA" or header.get("typ") != PASSPORT_TYP:
            raise PassportRejected("unsupported_format")
        if not isinstance(issuer, str) or issuer not in self._peers:
            raise PassportRejected("unknown_issuer")
        kid = str(header.get("kid"))
        keys = await self._jwks(issuer, refresh=False)
        if kid not in keys:
            keys = await self._jwks(issuer, refresh=True)
        if kid not in keys:
            raise PassportRejected("unknown_key")
        try:
            claims = jwt.decode(token, jwt.PyJWK(keys[kid], algorithm="EdDSA").key, algorithms=["EdDSA"],
                                issuer=issuer, leeway=30, options={"require": ["iss", "sub", "exp", "iat"]})
        except jwt.ExpiredSignatureError:
            raise PassportRejected("expired") from None
        except jwt.PyJWTError:
            raise PassportRejected("bad_signature") from None
        return VerifiedPassport(issuer=issuer, subject=str(claims["sub"]), tier=str(claims.get("tier", "")),
                                expires_at=int(claims["exp"]))


def parse_peer_cities(value: str | None) -> dict[str, str]:
    """`issuer=jwks-url` pairs separated by `;` (e.g. `https://hz.example=https://hz.example/jwks.json`)."""
    peers: dict[str, str] = {}
    for part in (value or "").split(";"):
        if "=" in part:
            issuer, url = part.split("=", 1)
            peers[issuer.strip()] = url.strip()
    return peers
