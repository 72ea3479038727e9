"""Wire types for credit passports (cross-city mutual recognition)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

# A compact EdDSA JWS with a handful of short claims is a few hundred characters; anything far larger
# is not a passport and is refused before it is parsed.
MAX_PASSPORT_LENGTH = 4096


class CreditPassport(msgspec.Struct):
    """A citizen's credit passport: a JWS to show in another city, and what it says."""

    passport: str  # compact JWS (typ credit-passport+jwt, alg EdDSA), signed with the city's key
    expires_at: datetime
    tier: str
    issuer: str


class PassportVerify(msgspec.Struct, forbid_unknown_fields=True):
    passport: Annotated[str, Meta(min_length=1, max_length=MAX_PASSPORT_LENGTH)]


class PassportVerification(msgspec.Struct):
    """A passport that verified. Refusals are problems with a `passport_*` code instead."""

    valid: bool
    issuer: str
    issuer_tier: str  # the tier as the issuing city states it
    local_tier: str  # the tier it counts as here (the configured table for the issuer)
    subject: str  # the passport's pseudonym: unlinkable across passports, never an id
    expires_at: datetime
