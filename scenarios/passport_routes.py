"""HTTP for credit passports: a citizen's own passport (`/v1/me/credit-passport`) and verification by
merchants and peer cities (`/v1/federation/passports/verify`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import CacheControlHeader
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from accounts.citizens import bound_person_id
from api.auth import guards
from core.errors import NotFound
from credit import services as credit_services
from credit.queries import Caller
from scenarios import passports
from scenarios.passport_schemas import CreditPassport, PassportVerification, PassportVerify

# A passport is a bearer credential for a day: never kept by a shared cache or the browser's.
_NO_STORE = CacheControlHeader(no_store=True)


class MyPassportController(Controller):
    path = "/v1/me"
    tags = ["citizen"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("/credit-passport", cache_control=_NO_STORE,
         summary="A credit passport to show in another city: my tier, signed by this city, valid 24 h",
         description="Each call signs a new passport with a new pseudonymous subject, so passports shown "
                     "to different parties cannot be linked. It carries only the issuer and the tier; "
                     "every verification of it appears in my access log.")
    async def credit_passport(self, request: Request[Any, Any, Any]) -> CreditPassport:
        ctx = guards.app_context(request)
        account_id = guards.principal_of(request).subject
        person_id = await bound_person_id(account_id=account_id)
        issued = await passports.issue_passport(
            store=ctx.store, tokens=ctx.tokens, consent_key=ctx.settings.consent_key, account_id=account_id,
            person_id=person_id, person_public_id=await credit_services.person_public_id(person_id),
            ttl_seconds=ctx.settings.passport_ttl_seconds)
        return CreditPassport(passport=issued.token, expires_at=issued.expires_at, tier=issued.tier,
                              issuer=issued.issuer)


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
    async def verify(self, request: Request[Any, Any, Any], data: JSONBody[PassportVerify]) -> PassportVerification:
        ctx = guards.app_context(request)
        partner = await ctx.partners.get(guards.principal_of(request).subject)
        if partner is None:
            raise NotFound("partner not found", code="partner_not_found")
        check = await passports.verify_passport(
            token=data.passport, tokens=ctx.tokens, peers=ctx.peers, store=ctx.store, ledger=ctx.ledger,
            consent_key=ctx.settings.consent_key, peer_tier=ctx.settings.peer_tier,
            caller=Caller(client_id=partner.client_id, name=partner.name, kind=partner.kind))
        return PassportVerification(valid=True, issuer=check.issuer, issuer_tier=check.issuer_tier,
                                    local_tier=check.local_tier, subject=check.subject,
                                    expires_at=check.expires_at)
