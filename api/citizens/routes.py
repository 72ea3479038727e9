"""HTTP for the citizen's own account (`/v1/me`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from accounts import citizens as services
from accounts.citizen_schemas import Identity, IdentityBindRequest, Me
from api.auth import guards
from credit.identity import mask_id_number


def _to_wire(view: services.AccountView) -> Me:
    identity = None
    if view.person is not None:
        identity = Identity(person_id=view.person.public_id, name=view.person.name,
                            id_number_masked=mask_id_number(view.person.id_number), bound_at=view.bound_at)
    return Me(account_id=view.account_id, phone=view.phone, identity=identity)


class MeController(Controller):
    path = "/v1/me"
    tags = ["citizen"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("", summary="The citizen's own account")
    async def me(self, request: Request[Any, Any, Any]) -> Me:
        principal = guards.principal_of(request)
        return _to_wire(await services.account_view(ctx=guards.app_context(request), account_id=principal.subject))

    @post("/identity", status_code=HTTP_200_OK, summary="Bind the account to a registry identity (实名)")
    async def bind_identity(self, request: Request[Any, Any, Any], data: JSONBody[IdentityBindRequest]) -> Me:
        principal = guards.principal_of(request)
        view = await services.bind_identity(ctx=guards.app_context(request), account_id=principal.subject,
                                            name=data.name, id_number=data.id_number)
        return _to_wire(view)
