"""Litestar dependency injection: what a handler may ask for by name, each built from the app's context or
from what the route's guard left on the connection.

A handler declares the parameters it needs (`store: Injected[Store]`, `principal: Injected[Principal]`, …) and
Litestar resolves only those, per request. Handlers never take `Request` to dig the same things out by hand,
so the collaborators a route uses are visible in its signature and checked by mypy.

Guards still authenticate (they run before dependencies and decide 401/403/429 before any body is read);
the `principal` and `admission` dependencies only read what the guard already established.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeAlias, TypeVar

from litestar.connection import ASGIConnection
from litestar.di import Dependency, Provide
from litestar.params import SkipValidationMarker
from piccolo.engine.base import Engine

from accounts.citizens import bound_person_id
from accounts.tokens import Principal, TokenService
from api import guards
from api.client_address import client_address
from api.context import AppContext
from core.admission import Admission
from core.daily_counts import DailyCountRegistry
from core.errors import NotFound
from core.settings import Settings
from core.store import Store
from credit.identity import FieldCipher
from credit.ledger import LedgerWriter
from credit.queries import Caller, CallerResolver
from partners.adapters import PeerCities
from partners.limits import PartnerDirectory, PartnerLimiter
from partners.services import find_partner

T = TypeVar("T")

# How a handler asks for one: `store: Injected[Store]`. Injected by name, and not validated by the handler's
# signature model: these are our own objects (built here, already typed), and converting them per request
# would cost time on the hot paths and fail on types msgspec cannot convert (Settings holds IP networks).
Injected: TypeAlias = Annotated[T, Dependency(kind="named"), SkipValidationMarker()]


def provide_context(request: ASGIConnection[Any, Any, Any, Any]) -> AppContext:
    return guards.app_context(request)


def provide_settings(ctx: Injected[AppContext]) -> Settings:
    return ctx.settings


def provide_store(ctx: Injected[AppContext]) -> Store:
    return ctx.store


def provide_engine(ctx: Injected[AppContext]) -> Engine[Any]:
    return ctx.engine


def provide_ledger(ctx: Injected[AppContext]) -> LedgerWriter:
    return ctx.ledger


def provide_cipher(ctx: Injected[AppContext]) -> FieldCipher:
    return ctx.cipher


def provide_tokens(ctx: Injected[AppContext]) -> TokenService:
    return ctx.tokens


def provide_peers(ctx: Injected[AppContext]) -> PeerCities:
    return ctx.peers


def provide_limiter(ctx: Injected[AppContext]) -> PartnerLimiter:
    return ctx.limiter


def provide_partner_directory(ctx: Injected[AppContext]) -> PartnerDirectory:
    return ctx.partners


def provide_daily_counts(ctx: Injected[AppContext]) -> DailyCountRegistry:
    return ctx.daily_counts


def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller the route's guard authenticated (401 `missing_token` on a route without such a guard)."""
    return guards.principal_of(request)


def provide_admission(request: ASGIConnection[Any, Any, Any, Any]) -> Admission:
    """The partner admission a guard deferred to the handler (routes with `opt={"deferred_admission": True}`)."""
    return guards.admission_of(request)


def provide_client_ip(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    return client_address(request)


async def provide_person_id(principal: Injected[Principal]) -> int:
    """The registry person behind the logged-in citizen (403 `identity_not_bound` before binding)."""
    return await bound_person_id(account_id=principal.subject)


def provide_resolve_caller(principal: Injected[Principal]) -> CallerResolver:
    """The calling partner's name and kind, looked up only if the service needs them (the hot paths answer
    from the cache without)."""

    async def resolve() -> Caller:
        partner = await find_partner(principal.subject)
        if partner is None:
            raise NotFound("partner not found", code="partner_not_found")
        return Caller(client_id=partner.client_id, name=partner.name, kind=partner.kind)

    return resolve


async def provide_caller(resolve_caller: Injected[CallerResolver]) -> Caller:
    return await resolve_caller()


def _sync(fn: Callable[..., Any]) -> Provide:
    return Provide(fn, sync_to_thread=False)


# Registered on the app; a handler gets one only by naming it as a parameter.
DEPENDENCIES: dict[str, Provide] = {
    "ctx": _sync(provide_context),
    "settings": _sync(provide_settings),
    "store": _sync(provide_store),
    "engine": _sync(provide_engine),
    "ledger": _sync(provide_ledger),
    "cipher": _sync(provide_cipher),
    "tokens": _sync(provide_tokens),
    "peers": _sync(provide_peers),
    "limiter": _sync(provide_limiter),
    "partner_directory": _sync(provide_partner_directory),
    "daily_counts": _sync(provide_daily_counts),
    "principal": _sync(provide_principal),
    "admission": _sync(provide_admission),
    "client_ip": _sync(provide_client_ip),
    "person_id": Provide(provide_person_id),
    "resolve_caller": _sync(provide_resolve_caller),
    "caller": Provide(provide_caller),
}
