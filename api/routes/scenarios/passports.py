"""HTTP for a citizen's own credit passport (`/v1/me/credit-passport`): a signed, pseudonymous statement of
their tier to show in another city."""

from __future__ import annotations

from litestar import Controller, get
from litestar.datastructures import CacheControlHeader

from accounts.tokens import Principal, TokenService
from api import guards
from api.dependencies import Injected
from core.settings import Settings
from core.store import Store
from credit import services as credit_services
from scenarios import passports
from scenarios.passport_schemas import CreditPassport

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
    async def credit_passport(self, store: Injected[Store], tokens: Injected[TokenService],
                              settings: Injected[Settings], principal: Injected[Principal],
                              person_id: Injected[int]) -> CreditPassport:
        return await passports.issue_passport(
            store=store, tokens=tokens, consent_key=settings.consent_key, account_id=principal.subject,
            person_id=person_id, person_public_id=await credit_services.person_public_id(person_id),
            ttl_seconds=settings.passport_ttl_seconds)


__all__ = ["MyPassportController"]
