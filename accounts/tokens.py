"""Access tokens: EdDSA (Ed25519) JWTs signed and verified with PyJWT.

One algorithm, pinned: tokens are signed with EdDSA and verification accepts nothing else (`alg: none`,
HS256 "confusion" with the public key, and any other algorithm fail). exp, iat, aud, iss, sub and jti
are required; leeway is at most 60 s. The public key is published at `/.well-known/jwks.json`.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cachetools import TLRUCache
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from core.errors import InvalidToken

ALGORITHM = "EdDSA"
PrincipalKind = Literal["citizen", "partner", "operator"]
_REQUIRED_CLAIMS = ["exp", "iat", "aud", "iss", "sub", "jti"]
_VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: decoded from a verified access token."""

    kind: PrincipalKind
    subject: str  # citizen account / partner client / operator public id
    scopes: frozenset[str]
    token_id: str
    expires_at: int
    partner_kind: str | None = None
    role: str | None = None
    family_id: str | None = None
    # Partner tokens from the authorization code grant: the one authorization they read under (claim `authz`).
    authorization_id: str | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """Signs and verifies this platform's access tokens."""

    def __init__(self, *, private_seed: bytes, key_id: str, issuer: str, audience: str, leeway: int) -> None:
        self._private = Ed25519PrivateKey.from_private_bytes(private_seed)
        self._public: Ed25519PublicKey = self._private.public_key()
        self._key_id = key_id
        self.issuer = issuer
        self.audience = audience
        self._leeway = min(60, max(0, leeway))
        # Verified tokens, so a partner's repeated calls skip signature checks; revocation is still
        # checked on every request (in the guard). Each is kept until it expires (plus the leeway), on the
        # wall clock its `exp` claim is on; when full, the least recently used goes first.
        self._verified: TLRUCache[str, Principal] = TLRUCache(
            _VERIFIED_CACHE_SIZE, lambda _token, principal, now: principal.expires_at + self._leeway, timer=time.time)
        raw_public = self._public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.jwks: dict[str, Any] = {
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw_public), "kid": key_id,
                      "alg": ALGORITHM, "use": "sig"}]
        }

    def issue(
        self,
        *,
        kind: PrincipalKind,
        subject: str,
        ttl_seconds: int,
        scopes: frozenset[str] = frozenset(),
        partner_kind: str | None = None,
        role: str | None = None,
        family_id: str | None = None,
        authorization_id: str | None = None,
    ) -> tuple[str, Principal]:
        """Sign a new access token and return it with the principal it stands for."""
        now = int(time.time())
        jti = secrets.token_urlsafe(12)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            "jti": jti,
            "typ": kind,
            "scope": " ".join(sorted(scopes)),
        }
        if partner_kind:
            claims["ptype"] = partner_kind
        if role:
            claims["role"] = role
        if family_id:
            claims["fam"] = family_id
        if authorization_id:
            claims["authz"] = authorization_id
        token = jwt.encode(claims, self._private, algorithm=ALGORITHM, headers={"kid": self._key_id, "typ": "at+jwt"})
        principal = Principal(kind=kind, subject=subject, scopes=scopes, token_id=jti, expires_at=now + ttl_seconds,
                              partner_kind=partner_kind, role=role, family_id=family_id,
                              authorization_id=authorization_id)
        return token, principal

    def verify(self, token: str) -> Principal:
        """Verify signature, algorithm and registered claims; raise `InvalidToken` on any failure."""
        cached = self._verified.get(token)
        if cached is not None:
            return cached
        principal = self._verify_uncached(token)
        self._verified[token] = principal
        return principal

    def _verify_uncached(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("token algorithm not accepted")
        if "crit" in header:
            # RFC 7515 §4.1.11: we understand no extensions, so any critical one must be refused.
            raise InvalidToken("unsupported critical header")
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("token rejected") from None
        kind = claims.get("typ")
        if kind not in ("citizen", "partner", "operator"):
            raise InvalidToken("unknown token type")
        scope = claims.get("scope", "")
        return Principal(
            kind=kind,
            subject=str(claims["sub"]),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            partner_kind=claims.get("ptype"),
            role=claims.get("role"),
            family_id=claims.get("fam"),
            authorization_id=authorization if isinstance(authorization := claims.get("authz"), str) else None,
        )

    def sign_document(self, claims: dict[str, Any], *, typ: str) -> str:
        """Sign a statement (consent receipt, ledger checkpoint) as a compact EdDSA JWS."""
        body = {"iss": self.issuer, "iat": int(time.time()), **claims}
        return jwt.encode(body, self._private, algorithm=ALGORITHM, headers={"kid": self._key_id, "typ": typ})

    def verify_document(self, token: str, *, typ: str) -> dict[str, Any]:
        """Verify a statement signed by `sign_document` (raises `jwt.PyJWTError` when it does not verify)."""
        if jwt.get_unverified_header(token).get("typ") != typ:
            raise jwt.InvalidTokenError("unexpected document type")
        claims: dict[str, Any] = jwt.decode(token, self._public, algorithms=[ALGORITHM], issuer=self.issuer,
                                            options={"require": ["iss", "iat"], "verify_aud": False})
        return claims
