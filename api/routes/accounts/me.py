"""HTTP for the citizen's own account (`/v1/me`)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from accounts import citizens as services
from accounts.citizen_schemas import Identity, IdentityBindRequest, Me
from accounts.tokens import Principal
from api import guards
from api.context import AppContext
from api.dependencies import Injected
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
    async def me(self, *, principal: Injected[Principal], ctx: Injected[AppContext]) -> Me:
        # The whole context: the account's services read the cipher and the identity verifier through it.
        return _to_wire(await services.account_view(ctx=ctx, account_id=principal.subject))

    @post("/identity", status_code=HTTP_200_OK, summary="Bind the account to a registry identity (实名)")
    async def bind_identity(self, *, data: JSONBody[IdentityBindRequest], principal: Injected[Principal],
                            ctx: Injected[AppContext]) -> Me:
        view = await services.bind_identity(ctx=ctx, account_id=principal.subject, name=data.name,
                                            id_number=data.id_number)
        return _to_wire(view)
