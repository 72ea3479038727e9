"""HTTP for credit office operators (`/v1/admin`)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from api.auth import guards
from partners import services as partner_services
from partners.routes import partner_view
from partners.schemas import PartnerCreate, PartnerCredentials, PartnerPage

MAX_PAGE = 100


class AdminPartnersController(Controller):
    path = "/v1/admin/partners"
    tags = ["admin"]
    security = [{"BearerAuth": []}]

    @post("", status_code=HTTP_201_CREATED, guards=[guards.operator("partner_admin")],
          summary="Register a partner; its client secret is shown once")
    async def create(self, data: JSONBody[PartnerCreate]) -> PartnerCredentials:
        issued = await partner_services.create_partner(
            name=data.name, kind=data.kind, scopes=data.scopes, jwks=data.jwks, with_secret=data.with_secret,
            scenario=data.scenario)
        return PartnerCredentials(client_id=issued.client_id, client_secret=issued.client_secret)

    @get("", guards=[guards.operator("partner_admin", "officer", "auditor")], summary="List partners")
    async def list(
        self,
        kind: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
    ) -> PartnerPage:
        partners = await partner_services.list_partners(kind=kind, limit=limit + 1, after=cursor)
        page = partners[:limit]
        next_cursor = page[-1].client_id if len(partners) > limit else None
        return PartnerPage(items=[partner_view(p) for p in page], next_cursor=next_cursor)
