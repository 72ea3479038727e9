"""Benefit codes and merchant verifications: short-lived, single-use state in the shared store.

A citizen's app asks for a code (valid at most 60 s) and shows it as a QR. The first merchant to
verify it consumes it atomically (GETDEL), so a code answers once however many merchants race for it.
The verification it yields lives a few minutes: long enough for the merchant to redeem a benefit or
open a credit order for the same citizen, and names the merchant and scenario it was made for.
"""

from __future__ import annotations

import secrets
import time

import msgspec

from core.store import Store

CODE_DOMAIN = "bcode"
VERIFICATION_DOMAIN = "bverify"
# Crockford-style alphabet without look-alikes (no I, L, O, U): easy to read aloud if a scan fails.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16  # 80 bits: unguessable within a 60 s lifetime, still a small QR (version 2)


class CodeState(msgspec.Struct, frozen=True):
    """What a code stands for (never leaves the server)."""

    person_id: int
    person_public_id: str
    account_id: str
    issued_at: float
    masked_name: str = ""  # what the merchant may greet the citizen with (e.g. *三)
    scenario: str | None = None  # the citizen may bind a code to one scenario


class Verification(msgspec.Struct, frozen=True):
    """A merchant's successful verification of a citizen's code."""

    id: str
    person_id: int
    person_public_id: str
    scenario: str
    merchant_client_id: str
    merchant_name: str
    tier: str
    total: int
    benefit_ids: tuple[str, ...]
    verified_at: float


_code_encoder = msgspec.json.Encoder()
_code_decoder = msgspec.json.Decoder(CodeState)
_verification_decoder = msgspec.json.Decoder(Verification)


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(value: str) -> str:
    """Codes are case-insensitive and may be typed with spaces or dashes."""
    return value.replace("-", "").replace(" ", "").upper()


async def issue_code(*, store: Store, state: CodeState, ttl_seconds: int) -> str:
    code = new_code()
    await store.set(CODE_DOMAIN, code, _code_encoder.encode(state), ttl_seconds=ttl_seconds)
    return code


async def take_code(*, store: Store, code: str) -> CodeState | None:
    """Consume a code: the first caller gets its state, every later one None."""
    raw = await store.take(CODE_DOMAIN, normalize_code(code))
    return _code_decoder.decode(raw) if raw is not None else None


async def restore_code(*, store: Store, code: str, state: CodeState, ttl_seconds: int) -> None:
    """Put back a code taken by a merchant it was not meant for, for the rest of its lifetime."""
    remaining = int(state.issued_at + ttl_seconds - time.time())
    if remaining > 0:
        await store.set_if_absent(CODE_DOMAIN, normalize_code(code), _code_encoder.encode(state),
                                  ttl_seconds=remaining)


async def save_verification(*, store: Store, verification: Verification, ttl_seconds: int) -> None:
    await store.set(VERIFICATION_DOMAIN, verification.id, _code_encoder.encode(verification), ttl_seconds=ttl_seconds)


async def load_verification(*, store: Store, verification_id: str) -> Verification | None:
    raw = await store.get(VERIFICATION_DOMAIN, verification_id)
    return _verification_decoder.decode(raw) if raw is not None else None

