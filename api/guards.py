"""Route guards: who may call what.

Authentication happens lazily in the guard of a protected route (public routes never pay for it):
the bearer token is verified (signature, algorithm, claims), checked against the revocation list in
the shared store, and the resulting `Principal` is kept on the connection for the handler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from accounts.sessions import is_revoked, revocation_keys
from accounts.tokens import Principal
from api.client_address import client_address
from api.context import AppContext
from core.admission import Admission
from core.errors import Forbidden, InvalidToken, Unauthorized
from partners.admission import PartnerAdmission
from partners.limits import check_address

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]

_PRINCIPAL_KEY = "xinyi.principal"
_ADMISSION_KEY = "xinyi.admission"


def app_context(connection: ASGIConnection[Any, Any, Any, Any]) -> AppContext:
    ctx: AppContext = connection.app.state.ctx
    return ctx


def _bearer_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Verify the bearer token's signature and claims (not yet its revocation)."""
    header = connection.headers.get("authorization")
    if not header:
        raise Unauthorized("a bearer token is required", code="missing_token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use the Bearer scheme", code="missing_token")
    return app_context(connection).tokens.verify(token.strip())


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The verified, unrevoked caller of this request (cached on the connection)."""
    cached = connection.scope.get(_PRINCIPAL_KEY)  # type: ignore[misc]
    if isinstance(cached, Principal):
        return cached
    principal = _bearer_principal(connection)
    if await is_revoked(ctx=app_context(connection), principal=principal):
        raise InvalidToken("token has been revoked", code="token_revoked")
    connection.scope[_PRINCIPAL_KEY] = principal  # type: ignore[literal-required]
    return principal


def admission_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Admission:
    """The admission a guard left to this handler (routes with `opt={"deferred_admission": True}`)."""
    admission = connection.scope.get(_ADMISSION_KEY)  # type: ignore[misc]
    if not isinstance(admission, PartnerAdmission):
        raise TypeError("this route's guard did not defer its admission")
    return admission


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal a guard already authenticated (handlers call this)."""
    principal = connection.scope.get(_PRINCIPAL_KEY)  # type: ignore[misc]
    if not isinstance(principal, Principal):
        raise Unauthorized("a bearer token is required", code="missing_token")
    return principal


async def citizen(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Only a logged-in citizen."""
    principal = await authenticate(connection)
    if principal.kind != "citizen":
        raise Forbidden("this route is for citizens", code="wrong_principal")


async def _admit_partner(connection: ASGIConnection[Any, Any, Any, Any], *, deferred: bool = False) -> Principal:
    """Authenticate a partner and apply its policy: active, allowed address, within rate and quota.

    The revocation check and both limit counters share one store round trip (the hottest routes are
    partners'); a revoked token is refused before anything is counted. With `deferred`, that round
    trip is left to the handler (see `core.admission`), which must run it before answering.
    """
    cached = connection.scope.get(_PRINCIPAL_KEY)  # type: ignore[misc]
    if isinstance(cached, Principal) and cached.kind == "partner":
        return cached
    principal = _bearer_principal(connection)
    if principal.kind != "partner":
        raise Forbidden("this route is for partners", code="wrong_principal")
    ctx = app_context(connection)
    record = await ctx.partners.get(principal.subject)
    if record is None or record.status != "active":
        raise InvalidToken("the partner is not active", code="partner_suspended")
    check_address(record, client_address(connection))
    admission = PartnerAdmission(record=record, limiter=ctx.limiter,
                                 probe=tuple(revocation_keys(principal)),
                                 count=tuple(ctx.limiter.counters(record)))
    if deferred:
        connection.scope[_ADMISSION_KEY] = admission  # type: ignore[literal-required]
    else:
        await admission.run(ctx.store)
    connection.scope[_PRINCIPAL_KEY] = principal  # type: ignore[literal-required]
    # Scopes withdrawn from the partner apply at once, not when its current token expires.
    if not principal.scopes <= record.scopes:
        principal = dataclasses.replace(principal, scopes=principal.scopes & record.scopes)
        connection.scope[_PRINCIPAL_KEY] = principal  # type: ignore[literal-required]
    return principal


def partner(scope: str) -> Guard:
    """Only a partner whose token carries `scope` (and who is within its limits)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        principal = await _admit_partner(connection, deferred=bool(handler.opt.get("deferred_admission")))
        if not principal.has_scope(scope):
            raise Forbidden(f"the token lacks scope {scope}", code="insufficient_scope")

    return guard


async def any_partner(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    await _admit_partner(connection)


def operator(*roles: str) -> Guard:
    """Only an operator holding one of `roles`."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await authenticate(connection)
        if principal.kind != "operator":
            raise Forbidden("this route is for operators", code="wrong_principal")
        if principal.role not in roles:
            raise Forbidden(f"requires role {' or '.join(roles)}", code="insufficient_role")

    return guard
