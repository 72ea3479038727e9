"""HTTP for partners about themselves (`/v1/partners/me`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from api.auth import guards
from api.errors import NotFound
from partners.schemas import PartnerView
from partners.services import PartnerRecord, find_partner


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
