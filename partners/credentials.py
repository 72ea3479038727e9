"""Client secrets and operator passwords: generated with `secrets`, kept only as scrypt hashes.

scrypt (memory-hard, in the standard library) with a per-secret salt; parameters are stored in the
hash string so they can be raised later without invalidating existing secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

_N, _R, _P = 2**14, 8, 1


def new_client_secret() -> str:
    """A 256-bit client secret, shown once to the partner."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Constant-time check of `secret` against a stored scrypt hash (False for any malformed hash)."""
    if not stored:
        # Spend comparable time so a missing partner is not told apart by timing.
        hashlib.scrypt(secret.encode(), salt=b"0" * 16, n=_N, r=_R, p=_P, dklen=32)
        return False
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest_b64)
        actual = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
