"""Identity numbers, phones and how they are protected.

- Validation of 公民身份号码 (GB 11643-1999) and 统一社会信用代码 (GB 32100-2015) is python-stdnum's.
- `FieldCipher` encrypts sensitive values at rest with AES-256-GCM and finds them by keyed hash
  (HMAC-SHA256), so equal values can be looked up without storing them in plain text.
- `mask_*` helpers are used by every response that shows such a value to anyone but its subject.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumValidationError

_PHONE = re.compile(r"^1[3-9][0-9]{9}$")  # ASCII digits: `\d` also takes full-width ones
_CIPHER_VERSION = b"\x01"


class InvalidIdentifier(ValueError):
    """An identity number, USCC or phone failed validation. `kind` names which."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"invalid {kind}: {reason}")
        self.kind = kind
        self.reason = reason


def normalize_id_number(value: str) -> str:
    """Validate a 18-digit 公民身份号码 (checksum, birth date, region) and return it upper-cased."""
    try:
        return str(ric.validate(value.strip().upper()))
    except StdnumValidationError as exc:
        raise InvalidIdentifier("id_number", str(exc)) from None


def normalize_uscc(value: str) -> str:
    """Validate a 统一社会信用代码 (format and check character) and return it upper-cased."""
    try:
        return str(uscc.validate(value.strip().upper()))
    except StdnumValidationError as exc:
        raise InvalidIdentifier("uscc", str(exc)) from None


def normalize_phone(value: str) -> str:
    """Validate a mainland mobile number (11 digits, optional +86 prefix) and return the 11 digits."""
    digits = re.sub(r"[\s-]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    if not _PHONE.match(digits):
        raise InvalidIdentifier("phone", "expected an 11-digit mainland mobile number")
    return digits


def mask_id_number(value: str) -> str:
    """`330402199001011234` → `3304**********1234` (region prefix and last four)."""
    return value[:4] + "*" * (len(value) - 8) + value[-4:] if len(value) > 8 else "*" * len(value)


def mask_uscc(value: str) -> str:
    """USCCs are public, but partners see them masked unless they already hold them."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_phone(value: str) -> str:
    """`13812345678` → `138****5678`."""
    return value[:3] + "****" + value[-4:] if len(value) >= 7 else "*" * len(value)


def mask_name(value: str) -> str:
    """`张三` → `*三`, `欧阳娜娜` → `**娜娜`... keeps only the given-name tail a merchant may greet."""
    if len(value) <= 1:
        return "*"
    if len(value) == 2:
        return "*" + value[1]
    return "*" * (len(value) - 2) + value[-2:]


def new_public_id(prefix: str) -> str:
    """An opaque, unguessable public id such as `psn_4f9c1b2a7d3e8f60a1b2`."""
    return f"{prefix}_{secrets.token_hex(10)}"


class FieldCipher:
    """AES-256-GCM for sensitive fields, and HMAC-SHA256 keyed hashes to look them up."""

    def __init__(self, *, data_key: bytes, hash_key: bytes) -> None:
        if len(data_key) != 32 or len(hash_key) != 32:
            raise ValueError("data and hash keys must be 32 bytes")
        self._aead = AESGCM(data_key)
        self._hash_key = hash_key

    def lookup_hash(self, kind: str, value: str) -> str:
        """Keyed hash of `value`, domain-separated by `kind` (so a phone hash never equals an id hash)."""
        return hmac.new(self._hash_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def encrypt(self, kind: str, value: str) -> str:
        """Encrypt with a random nonce; `kind` is bound as associated data so fields cannot be swapped."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), kind.encode())
        return base64.urlsafe_b64encode(_CIPHER_VERSION + nonce + sealed).decode()

    def decrypt(self, kind: str, token: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode())
        if raw[:1] != _CIPHER_VERSION:
            raise ValueError("unknown cipher version")
        try:
            return self._aead.decrypt(raw[1:13], raw[13:], kind.encode()).decode()
        except InvalidTag:
            raise ValueError("ciphertext does not authenticate") from None
