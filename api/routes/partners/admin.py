"""HTTP for credit office operators (`/v1/admin/partners`): the partner registry."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from litestar import Controller, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api import guards
from api.dependencies import Injected
from api.pagination import PageSize
from core.settings import Settings
from core.store import Store
from credit.identity import FieldCipher
from partners import services as partner_services
from partners.adapters import peer_registry
from partners.limits import PartnerDirectory, PartnerLimiter
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
from partners.webhooks import clear_webhook_endpoint, set_webhook_endpoint

_READERS = guards.operator("partner_admin", "officer", "auditor")
_WRITERS = guards.operator("partner_admin")


class AdminPartnersController(Controller):
    path = "/v1/admin/partners"
    tags = ["admin"]
    security = [{"BearerAuth": []}]

    @post("", status_code=HTTP_201_CREATED, guards=[_WRITERS],
          summary="Register a partner; its client secret is shown once")
    async def create(self, data: JSONBody[PartnerCreate], settings: Injected[Settings]) -> PartnerCredentials:
        issued = await partner_services.create_partner(
            name=data.name, kind=data.kind, scopes=data.scopes, jwks=data.jwks, with_secret=data.with_secret,
            scenario=data.scenario, issuer=data.issuer, redirect_uris=data.redirect_uris,
            production=settings.is_production)
        peer_registry.forget()  # a new peer city's passports verify on this worker at once
        return issued

    @get("", guards=[_READERS], summary="List partners")
    async def list(
        self,
        kind: FromQuery[str | None] = None,
        # A client id (the last one of the previous page): anything else is a 422, not a page.
        cursor: Annotated[str | None, QueryParameter(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")] = None,
        limit: PageSize = 50,
    ) -> PartnerPage:
        return await partner_services.partner_page(kind=kind, limit=limit, after=cursor)

    @get("/{client_id:str}", guards=[_READERS], summary="One partner's registration")
    async def read(self, client_id: FromPath[str], settings: Injected[Settings]) -> PartnerDetail:
        return await partner_services.describe_partner(client_id=client_id, settings=settings)

    @patch("/{client_id:str}", guards=[_WRITERS],
           summary="Change name, scopes, status (suspend / reactivate), limits, address allowlist or "
                   "a peer city's passport issuer, or OAuth redirect URIs")
    async def update(self, *, client_id: FromPath[str], data: JSONBody[PartnerUpdate], settings: Injected[Settings],
                     store: Injected[Store], cipher: Injected[FieldCipher],
                     partner_directory: Injected[PartnerDirectory]) -> PartnerDetail:
        # The registration's own fields first: one that does not validate is a 422 before anything changed.
        partner = await partner_services.update_partner(
            client_id=client_id, name=data.name, scopes=data.scopes,
            rate_limit_per_second=data.rate_limit_per_second, daily_quota=data.daily_quota,
            allowed_addresses=data.allowed_addresses, issuer=data.issuer, redirect_uris=data.redirect_uris,
            production=settings.is_production)
        if data.status is not None:
            partner = await partner_services.set_partner_status(store=store, client_id=client_id,
                                                                status=data.status)
        peer_registry.forget()  # a changed issuer or status applies to passports on this worker at once
        secret = None
        if data.webhook_url == "":
            await clear_webhook_endpoint(client_id=client_id)
        elif data.webhook_url is not None:
            # A new endpoint gets a new signing secret, shown in this answer only.
            secret = await set_webhook_endpoint(cipher=cipher, settings=settings, client_id=client_id,
                                                url=data.webhook_url)
        if data.webhook_url is not None:
            partner = await partner_services.require_partner(client_id)
        partner_directory.forget(client_id)  # limits, scopes and status apply on this worker at once
        return partner_services.partner_detail(partner, settings=settings, webhook_secret=secret)

    @post("/{client_id:str}/rotate-secret", status_code=HTTP_200_OK, guards=[_WRITERS],
          summary="Issue a new client secret; the old one works for the overlap window")
    async def rotate_secret(self, client_id: FromPath[str],
                            data: JSONBody[SecretRotation | None] = None) -> PartnerCredentials:
        rotation = data or SecretRotation()
        return await partner_services.rotate_secret(client_id=client_id,
                                                    overlap=timedelta(hours=rotation.overlap_hours))

    @put("/{client_id:str}/jwks", guards=[_WRITERS], summary="Replace the partner's registered public keys")
    async def replace_jwks(self, client_id: FromPath[str], data: JSONBody[Jwks],
                           settings: Injected[Settings]) -> PartnerDetail:
        partner = await partner_services.replace_jwks(client_id=client_id, jwks=data.keys)
        peer_registry.forget()  # a peer city's new keys verify passports on this worker at once
        return partner_services.partner_detail(partner, settings=settings)

    @get("/{client_id:str}/usage", guards=[_READERS], summary="The partner's current rate and quota usage")
    async def usage(self, client_id: FromPath[str], limiter: Injected[PartnerLimiter]) -> UsageView:
        return await limiter.usage(await partner_services.require_partner(client_id))
