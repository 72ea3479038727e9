"""Credit passports: our citizens' tier, signed for other cities, and verification of any city's passport.

A passport is a compact JWS (EdDSA, `typ: credit-passport+jwt`, the city's key id) valid for at most a
day. It says only who issued it and the tier; its subject is a pseudonym derived from the person and the
passport's own id (HMAC with the consent key), so two passports of one citizen cannot be linked and no
id leaves. While a passport lives, the store maps its `jti` to the person, so that a partner verifying
one of our passports is written to that citizen's access ledger.

Verification accepts EdDSA only and checks, in order of trust: our own key for our own issuer, then peer
cities registered as `city_peer` partners (issuer + JWKs), then the configured `XINYI_PEER_CITIES`
JWKS URLs. A peer's tier is mapped to ours through the configured table; an unmapped tier is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from core.errors import RateLimited, ServiceUnavailable, Unprocessable
from core.store import Store
from credit.ledger import AccessEvent, LedgerWriter, result_digest
from credit.queries import Caller
from credit.scores import current_score
from partners.adapters import (
    PASSPORT_LEEWAY_SECONDS,
    PASSPORT_MAX_LIFETIME_SECONDS,
    PASSPORT_TYP,
    PassportRejected,
    PeerKeySource,
    StaticPeerKeys,
    VerifiedPassport,
    peer_registry,
    verify_passport_from,
)
from scenarios.passport_schemas import CreditPassport, PassportVerification

STORE_DOMAIN = "passport"
# Each passport costs a store entry for its lifetime; a citizen needs a handful a day at most.
ISSUE_LIMIT_PER_DAY = 50
_encoder = msgspec.json.Encoder()


class CitySigner(Protocol):
    """What passports need of the city's token service (the accounts domain's): its issuer name, its public
    keys and a signature. Declared here, so this domain takes any signer and imports no accounts code."""

    @property
    def issuer(self) -> str: ...

    @property
    def jwks(self) -> dict[str, Any]: ...

    def sign_document(self, claims: dict[str, Any], *, typ: str) -> str: ...


class PassportRefused(Unprocessable):
    """The passport did not verify; `code` says why (passport_malformed, passport_expired, ...)."""

    code, title = "passport_rejected", "The credit passport is not accepted"


class PassportKeysUnavailable(ServiceUnavailable):
    """The issuer is recognised but its keys cannot be fetched now: not the passport's fault, retry later."""

    code, title = "passport_issuer_keys_unavailable", "The issuing city's keys are unavailable"


_DETAILS = {
    "malformed": "the passport is not a well-formed credit passport",
    "unsupported_format": "only EdDSA-signed credit-passport+jwt tokens are accepted",
    "unknown_issuer": "the issuing city is not recognised here",
    "unknown_key": "the passport names a key its issuer does not publish",
    "bad_signature": "the signature does not match the issuer's key",
    "expired": "the passport has expired",
    "not_yet_valid": "the passport is issued in the future",
    "lifetime_too_long": "the passport is valid for longer than a day",
}


@dataclass(frozen=True, slots=True)
class PassportCheck:
    """What a verification found; the ledger's digest is of exactly these fields."""

    issuer: str
    issuer_tier: str
    local_tier: str
    subject: str
    expires_at: datetime


def pseudonym(*, consent_key: bytes, person_public_id: str, token_id: str) -> str:
    """The passport-scoped subject: keyed on the passport id, so every passport gets a new one."""
    digest = hmac.new(consent_key, f"credit-passport:{person_public_id}:{token_id}".encode(), hashlib.sha256).digest()
    return "ppn_" + base64.urlsafe_b64encode(digest[:18]).decode()


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


async def issue_passport(*, store: Store, tokens: CitySigner, consent_key: bytes, account_id: str,
                         person_id: int, person_public_id: str, ttl_seconds: int) -> CreditPassport:
    """Sign a passport carrying the citizen's current tier and a fresh pseudonym."""
    used = await store.incr_with_limit(STORE_DOMAIN, f"issued:{account_id}:{datetime.now(UTC):%Y%m%d}",
                                       limit=ISSUE_LIMIT_PER_DAY, ttl_seconds=26 * 3600)
    if not used.allowed:
        raise RateLimited(f"at most {ISSUE_LIMIT_PER_DAY} passports a day", code="passport_issue_limit",
                          retry_after=used.ttl_seconds)
    score = await current_score(store=store, person_id=person_id)
    ttl = max(60, min(ttl_seconds, PASSPORT_MAX_LIFETIME_SECONDS))
    now = int(time.time())
    jti = secrets.token_urlsafe(16)
    # Remembered before the passport exists, so no verification can arrive before the mapping does;
    # kept a little past expiry so a verification within the leeway still finds its citizen.
    await store.set(STORE_DOMAIN, f"jti:{jti}", person_public_id.encode(),
                    ttl_seconds=ttl + PASSPORT_LEEWAY_SECONDS + 60)
    token = tokens.sign_document({
        "iat": now, "exp": now + ttl, "jti": jti, "tier": score.tier,
        "sub": pseudonym(consent_key=consent_key, person_public_id=person_public_id, token_id=jti),
    }, typ=PASSPORT_TYP)
    return CreditPassport(passport=token, expires_at=_at(now + ttl), tier=score.tier, issuer=tokens.issuer)


async def _verified(token: str, *, tokens: CitySigner, peers: PeerKeySource) -> VerifiedPassport:
    own = StaticPeerKeys(issuer=tokens.issuer, keys=tokens.jwks["keys"])
    try:
        return await verify_passport_from([own, peer_registry, peers], token)
    except PassportRejected as refused:
        if refused.reason == "issuer_keys_unavailable":
            raise PassportKeysUnavailable("the issuing city's keys cannot be fetched now; try again shortly") \
                from None
        raise PassportRefused(_DETAILS.get(refused.reason, "the passport is not accepted"),
                              code=f"passport_{refused.reason}") from None


async def verify_passport(*, token: str, tokens: CitySigner, peers: PeerKeySource, store: Store,
                          ledger: LedgerWriter, consent_key: bytes, peer_tier: Callable[[str, str], str | None],
                          caller: Caller) -> PassportVerification:
    """Verify a passport of ours or of a recognised city and say what its tier counts as here.

    Verifying one of our own passports is a read of that citizen's credit data: it is written to their
    access ledger before the answer leaves. Peer passports have no local subject and no ledger entry.
    """
    passport = await _verified(token, tokens=tokens, peers=peers)
    own = passport.issuer == tokens.issuer
    local_tier = passport.tier if own else peer_tier(passport.issuer, passport.tier)
    if local_tier is None:
        raise PassportRefused(f"no tier here corresponds to {passport.issuer}'s tier {passport.tier}",
                              code="passport_tier_unmapped")
    check = PassportCheck(issuer=passport.issuer, issuer_tier=passport.tier, local_tier=local_tier,
                          subject=passport.subject, expires_at=_at(passport.expires_at))
    if own:
        stored = await store.get(STORE_DOMAIN, f"jti:{passport.token_id}") if passport.token_id else None
        person_public_id = stored.decode() if stored is not None else None
        if person_public_id is None or not hmac.compare_digest(passport.subject, pseudonym(
                consent_key=consent_key, person_public_id=person_public_id, token_id=str(passport.token_id))):
            # Signed by us but no longer known (the store lost it): without a subject the access cannot
            # be ledgered, so the passport is refused rather than answered unrecorded.
            raise PassportRefused("this city has no record of the passport; ask the citizen for a new one",
                                  code="passport_not_recognised")
        await ledger.append(AccessEvent(
            actor_kind="partner", actor_id=caller.client_id, actor_name=caller.name, actor_type=caller.kind,
            subject_kind="person", subject_id=person_public_id, action="passport.verify", outcome="allowed",
            fields=("tier",), result_digest=result_digest(_encoder.encode(check))))
    return PassportVerification(valid=True, issuer=check.issuer, issuer_tier=check.issuer_tier,
                                local_tier=check.local_tier, subject=check.subject, expires_at=check.expires_at)


__all__ = ["CitySigner", "PassportCheck", "PassportKeysUnavailable", "PassportRefused", "issue_passport",
           "pseudonym", "verify_passport"]
