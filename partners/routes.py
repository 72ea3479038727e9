"""HTTP for partners about themselves (`/v1/partners/me`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from api.auth import guards
from core.errors import NotFound
from partners.limits import Usage
from partners.schemas import PartnerDetail, PartnerView, UsageView
from partners.services import PartnerRecord, find_partner


def partner_detail(partner: PartnerRecord, *, settings_rate: int, settings_quota: int) -> PartnerDetail:
    """The registration as operators see it (never a secret)."""
    methods = (["client_secret"] if partner.secret_hash else []) + (["private_key_jwt"] if partner.jwks else [])
    return PartnerDetail(
        client_id=partner.client_id, name=partner.name, kind=partner.kind, scopes=sorted(partner.scopes),
        status=partner.status, auth_methods=methods,
        rate_limit_per_second=partner.rate_limit_per_second or settings_rate,
        daily_quota=partner.daily_quota or settings_quota,
        allowed_addresses=[str(n) for n in partner.allowed_networks], scenario=partner.scenario,
        webhook_url=partner.webhook_url, previous_secret_valid_until=partner.previous_secret_expires_at,
        issuer=partner.issuer)


def usage_view(usage: Usage) -> UsageView:
    return UsageView(per_second_limit=usage.per_second_limit, per_second_remaining=usage.per_second_remaining,
                     daily_quota=usage.daily_quota, daily_used=usage.daily_used,
                     daily_resets_at=usage.daily_resets_at)


def partner_view(partner: PartnerRecord) -> PartnerView:
    methods = (["client_secret"] if partner.secret_hash else []) + (["private_key_jwt"] if partner.jwks else [])
    return PartnerView(client_id=partner.client_id, name=partner.name, kind=partner.kind,
                       scopes=sorted(partner.scopes), status=partner.status, scenario=partner.scenario,
                       auth_methods=methods)


class PartnerSelfController(Controller):
    path = "/v1/partners"
    tags = ["partner"]
    security = [{"BearerAuth": []}]

    @get("/me", guards=[guards.any_partner], summary="The calling partner's registration and scopes")
    async def me(self, request: Request[Any, Any, Any]) -> PartnerView:
        partner = await find_partner(guards.principal_of(request).subject)
        if partner is None:
            raise NotFound("partner not found", code="partner_not_found")
        return partner_view(partner)

    @get("/me/usage", guards=[guards.any_partner], summary="The calling partner's rate and quota usage")
    async def usage(self, request: Request[Any, Any, Any]) -> UsageView:
        ctx = guards.app_context(request)
        partner = await ctx.partners.get(guards.principal_of(request).subject)
        if partner is None:
            raise NotFound("partner not found", code="partner_not_found")
        return usage_view(await ctx.limiter.usage(partner))
