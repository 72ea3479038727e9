"""HTTP for partners about themselves (`/v1/partners/me`)."""

from __future__ import annotations

from litestar import Controller, get

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from core.errors import NotFound
from partners.limits import PartnerDirectory, PartnerLimiter
from partners.schemas import PartnerView, UsageView
from partners.services import partner_view, require_partner


class PartnerSelfController(Controller):
    path = "/v1/partners"
    tags = ["partner"]
    security = [{"BearerAuth": []}]

    @get("/me", guards=[guards.any_partner], summary="The calling partner's registration and scopes")
    async def me(self, principal: Injected[Principal]) -> PartnerView:
        return partner_view(await require_partner(principal.subject))

    @get("/me/usage", guards=[guards.any_partner], summary="The calling partner's rate and quota usage")
    async def usage(self, principal: Injected[Principal], partner_directory: Injected[PartnerDirectory],
                    limiter: Injected[PartnerLimiter]) -> UsageView:
        # The guard has just read this record through the same per-process cache: no second database read.
        partner = await partner_directory.get(principal.subject)
        if partner is None:
            raise NotFound("partner not found", code="partner_not_found")
        return await limiter.usage(partner)
