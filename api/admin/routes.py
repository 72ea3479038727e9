"""HTTP for credit office operators (`/v1/admin`): the partner registry."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.auth import guards
from api.context import AppContext
from api.pagination import PageSize
from core.errors import NotFound
from partners import services as partner_services
from partners.adapters import peer_registry
from partners.routes import partner_detail, partner_view, usage_view
from partners.schemas import (
    Jwks,
    PartnerCreate,
    PartnerCredentials,
    PartnerDetail,
    PartnerPage,
    PartnerUpdate,
    SecretRotation,
    UsageView,
)
from partners.services import PartnerRecord
from partners.webhooks import clear_webhook_endpoint, set_webhook_endpoint

_READERS = guards.operator("partner_admin", "officer", "auditor")
_WRITERS = guards.operator("partner_admin")


def _detail(ctx: AppContext, partner: PartnerRecord) -> PartnerDetail:
    return partner_detail(partner, settings_rate=ctx.settings.default_rate_limit_per_second,
                          settings_quota=ctx.settings.default_daily_quota)


async def _apply_status(ctx: AppContext, partner: PartnerRecord) -> None:
    """Suspension is enforced through the shared store so every worker refuses the next request."""
    if partner.status == "active":
        await ctx.store.delete("auth", f"pdis:{partner.client_id}")
    else:
        await ctx.store.set("auth", f"pdis:{partner.client_id}", b"1")
    ctx.partners.forget(partner.client_id)


class AdminPartnersController(Controller):
    path = "/v1/admin/partners"
    tags = ["admin"]
    security = [{"BearerAuth": []}]

    @post("", status_code=HTTP_201_CREATED, guards=[_WRITERS],
          summary="Register a partner; its client secret is shown once")
    async def create(self, data: JSONBody[PartnerCreate]) -> PartnerCredentials:
        issued = await partner_services.create_partner(
            name=data.name, kind=data.kind, scopes=data.scopes, jwks=data.jwks, with_secret=data.with_secret,
            scenario=data.scenario, issuer=data.issuer)
        peer_registry.forget()  # a new peer city's passports verify on this worker at once
        return PartnerCredentials(client_id=issued.client_id, client_secret=issued.client_secret)

    @get("", guards=[_READERS], summary="List partners")
    async def list(
        self,
        kind: FromQuery[str | None] = None,
        # A client id (the last one of the previous page): anything else is a 422, not a page.
        cursor: Annotated[str | None, QueryParameter(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")] = None,
        limit: PageSize = 50,
    ) -> PartnerPage:
        partners = await partner_services.list_partners(kind=kind, limit=limit + 1, after=cursor)
        page = partners[:limit]
        next_cursor = page[-1].client_id if len(partners) > limit else None
        return PartnerPage(items=[partner_view(p) for p in page], next_cursor=next_cursor)

    @get("/{client_id:str}", guards=[_READERS], summary="One partner's registration")
    async def read(self, request: Request[Any, Any, Any], client_id: FromPath[str]) -> PartnerDetail:
        partner = await partner_services.find_partner(client_id)
        if partner is None:
            raise NotFound("partner not found", code="partner_not_found")
        return _detail(guards.app_context(request), partner)

    @patch("/{client_id:str}", guards=[_WRITERS],
           summary="Change name, scopes, status (suspend / reactivate), limits, address allowlist or "
                   "a peer city's passport issuer")
    async def update(self, request: Request[Any, Any, Any], client_id: FromPath[str],
                     data: JSONBody[PartnerUpdate]) -> PartnerDetail:
        ctx = guards.app_context(request)
        partner = await partner_services.update_partner(
            client_id=client_id, name=data.name, scopes=data.scopes, status=data.status,
            rate_limit_per_second=data.rate_limit_per_second, daily_quota=data.daily_quota,
            allowed_addresses=data.allowed_addresses, issuer=data.issuer)
        peer_registry.forget()  # a changed issuer or status applies to passports on this worker at once
        secret = None
        if data.webhook_url == "":
            await clear_webhook_endpoint(client_id=client_id)
        elif data.webhook_url is not None:
            # A new endpoint gets a new signing secret, shown in this answer only.
            secret = await set_webhook_endpoint(cipher=ctx.cipher, settings=ctx.settings, client_id=client_id,
                                                url=data.webhook_url)
        if data.webhook_url is not None:
            partner = await partner_services.find_partner(client_id) or partner
        await _apply_status(ctx, partner)
        detail = _detail(ctx, partner)
        return msgspec.structs.replace(detail, webhook_secret=secret) if secret else detail

    @post("/{client_id:str}/rotate-secret", status_code=HTTP_200_OK, guards=[_WRITERS],
          summary="Issue a new client secret; the old one works for the overlap window")
    async def rotate_secret(self, client_id: FromPath[str],
                            data: JSONBody[SecretRotation | None] = None) -> PartnerCredentials:
        rotation = data or SecretRotation()
        issued = await partner_services.rotate_secret(client_id=client_id,
                                                      overlap=timedelta(hours=rotation.overlap_hours))
        return PartnerCredentials(client_id=issued.client_id, client_secret=issued.client_secret)

    @put("/{client_id:str}/jwks", guards=[_WRITERS], summary="Replace the partner's registered public keys")
    async def replace_jwks(self, request: Request[Any, Any, Any], client_id: FromPath[str],
                           data: JSONBody[Jwks]) -> PartnerDetail:
        partner = await partner_services.replace_jwks(client_id=client_id, jwks=data.keys)
        peer_registry.forget()  # a peer city's new keys verify passports on this worker at once
        return _detail(guards.app_context(request), partner)

    @get("/{client_id:str}/usage", guards=[_READERS], summary="The partner's current rate and quota usage")
    async def usage(self, request: Request[Any, Any, Any], client_id: FromPath[str]) -> UsageView:
        ctx = guards.app_context(request)
        partner = await partner_services.find_partner(client_id)
        if partner is None:
            raise NotFound("partner not found", code="partner_not_found")
        return usage_view(await ctx.limiter.usage(partner))
