"""HTTP for the citizen's own account (`/v1/me`)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from accounts import citizens as services
from accounts import closure
from accounts.citizen_schemas import AccountCloseRequest, AccountClosure, Identity, IdentityBindRequest, Me
from accounts.closure import ClosingAccount, ClosureStep
from accounts.schemas import OtpSent
from accounts.tokens import Principal
from api import guards
from api.context import AppContext
from api.dependencies import Injected
from credit.identity import mask_id_number
from lending.enterprises import end_memberships
from partners.notices import forget_account


async def _end_enterprise_memberships(account: ClosingAccount) -> int:
    return await end_memberships(account_id=account.account_id)


async def _forget_notice_settings(account: ClosingAccount) -> int:
    return await forget_account(account_id=account.account_id)


CLOSURE_STEPS: tuple[ClosureStep, ...] = (
    ClosureStep(key="enterprise_memberships", section="ended", what="enterprise memberships ended (owner or 经办人)",
                why=("Nobody may act for an enterprise through a closed account; a legal representative binds "
                     "the enterprise again from a new account."),
                run=_end_enterprise_memberships),
    ClosureStep(key="notice_preferences", section="deleted",
                what="notice preferences and the WeChat contact notices were pushed to",
                why="Settings of the account itself; nothing is sent to a closed account.",
                run=_forget_notice_settings),
)
"""What closing an account does in the domains accounts does not import (accounts.closure.ClosureStep)."""


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

    @post("/account/close/code", status_code=HTTP_202_ACCEPTED,
          summary="Send a code for closing the account to its phone")
    async def closure_code(self, *, principal: Injected[Principal], ctx: Injected[AppContext],
                           client_ip: Injected[str]) -> OtpSent:
        issued = await closure.request_closure_code(ctx=ctx, account_id=principal.subject, client_address=client_ip)
        return OtpSent(expires_in=issued.expires_in, resend_after=issued.resend_after, dev_code=issued.dev_code)

    @post("/account/close", status_code=HTTP_200_OK,
          summary="Close the account (PIPL Art. 47): says what was deleted, ended and kept, and why")
    async def close(self, *, data: JSONBody[AccountCloseRequest], principal: Injected[Principal],
                    ctx: Injected[AppContext]) -> AccountClosure:
        return await closure.close_account(ctx=ctx, account_id=principal.subject, code=data.code,
                                           steps=CLOSURE_STEPS)
