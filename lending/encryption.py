"""JWE for banks: portraits encrypted to the bank's registered RSA public key (python-jose, encrypt only).

A bank registers an RSA public JWK (`use` "enc" or unspecified, at least 2048 bits) next to its signing
keys; answers asked for with `Accept: application/jose` are compact JWEs (alg RSA-OAEP-256, enc A256GCM)
that only the bank's private key opens. python-jose never decrypts or verifies anything here: the only
input it sees is our own plaintext and a key our validation (`partners.services.validate_jwks`) accepted.
"""

from __future__ import annotations

from typing import Any

from jose import jwe

JOSE_MEDIA_TYPE = "application/jose"
ALGORITHM = "RSA-OAEP-256"
ENCRYPTION = "A256GCM"


def encryption_key(jwks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The partner's registered RSA encryption key (the first one), or None."""
    return next((k for k in jwks if k.get("kty") == "RSA" and k.get("use", "enc") == "enc"), None)


def wants_jose(accept: str | None) -> bool:
    """Whether the Accept header asks for a JWE (`application/jose`, with or without parameters)."""
    if not accept:
        return False
    return any(part.split(";", 1)[0].strip().lower() == JOSE_MEDIA_TYPE for part in accept.split(","))


def encrypt(payload: bytes, key: dict[str, Any]) -> bytes:
    """A compact JWE of `payload` (JSON) to `key`; `kid` names the key so the bank can pick its private key."""
    token = jwe.encrypt(payload, key, encryption=ENCRYPTION, algorithm=ALGORITHM, cty="application/json",
                        kid=key.get("kid"))
    return token if isinstance(token, bytes) else str(token).encode()


__all__ = ["ALGORITHM", "ENCRYPTION", "JOSE_MEDIA_TYPE", "encrypt", "encryption_key", "wants_jose"]
