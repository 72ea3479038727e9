"""HTTP for verifying credit passports (`/v1/federation/passports/verify`): merchants and peer cities check a
passport of this city or of a recognised one and learn what its tier counts as here."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from accounts.tokens import Principal, TokenService
from api import guards
from api.dependencies import Injected
from core.errors import NotFound
from core.settings import Settings
from core.store import Store
from credit.ledger import LedgerWriter
from credit.queries import Caller
from partners.adapters import PeerCities
from partners.limits import PartnerDirectory
from scenarios import passports
from scenarios.passport_schemas import PassportVerification, PassportVerify


class FederationController(Controller):
    path = "/v1/federation"
    tags = ["partner"]
    security = [{"BearerAuth": []}]
    guards = [guards.partner("federation:verify")]

    @post("/passports/verify", status_code=HTTP_200_OK,
          summary="Verify a credit passport (ours or a recognised city's) and map its tier to ours",
          description="Refusals are 422 problems with a stable code: passport_malformed, "
                      "passport_unsupported_format, passport_unknown_issuer, passport_unknown_key, "
                      "passport_bad_signature, passport_expired, passport_not_yet_valid, "
                      "passport_lifetime_too_long, passport_tier_unmapped, passport_not_recognised. "
                      "When a recognised city's keys cannot be fetched the answer is 503 "
                      "passport_issuer_keys_unavailable (retry later).")
    async def verify(self, *, data: JSONBody[PassportVerify], store: Injected[Store], ledger: Injected[LedgerWriter],
                     settings: Injected[Settings], tokens: Injected[TokenService], peers: Injected[PeerCities],
                     principal: Injected[Principal],
                     partner_directory: Injected[PartnerDirectory]) -> PassportVerification:
        # From the per-worker directory the guard just filled (the `caller` dependency would read the database).
        partner = await partner_directory.get(principal.subject)
        if partner is None:
            raise NotFound("partner not found", code="partner_not_found")
        return await passports.verify_passport(
            token=data.passport, tokens=tokens, peers=peers, store=store, ledger=ledger,
            consent_key=settings.consent_key, peer_tier=settings.peer_tier,
            caller=Caller(client_id=partner.client_id, name=partner.name, kind=partner.kind))


__all__ = ["FederationController"]
