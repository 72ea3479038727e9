"""The Litestar app factory: reads settings once, wires every domain, returns the ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders, State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.types import Message, Scope

from api import domains
from api.background import run_forever
from api.bodies import StrictBodies, StrictBodyRequest
from api.context import build_context
from api.dependencies import DEPENDENCIES
from api.docs import SCHEMA_PATH, assets_router, render_plugins
from api.idempotency import idempotency_middleware, refuse_invalid_key
from api.openapi import ProblemResponses, StrictStructSchemas
from api.ops import MetricsController, live, mark_worker_stopped, metrics_middleware, ready
from api.problems import exception_handlers
from api.routes.accounts import router as accounts_router
from api.routes.credit import router as credit_router
from api.routes.lending import router as lending_router
from api.routes.pages import assets_router as page_assets_router
from api.routes.pages import router as pages_router
from api.routes.pages import template_config
from api.routes.partners import router as partners_router
from api.routes.scenarios import router as scenarios_router
from core import db
from core.errors import DomainError
from core.settings import Settings

_JSON_TYPES = ("application/json",)
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

TAGS = [
    Tag(name="auth", description="Logins, tokens and keys"),
    Tag(name="citizen", description="A citizen's own data (/v1/me)"),
    Tag(name="partner", description="Banks, merchants, data sources, departments and peer cities"),
    Tag(name="admin", description="Credit office operators"),
    Tag(name="ledger", description="The tamper-evident access ledger"),
    Tag(name="enterprise", description="Enterprise members (法人/经办人): binding, portraits, consent"),
    Tag(name="lending", description="信易贷: loan products, financing demands, applications and decisions"),
    Tag(name="scenarios", description="信易+: scenarios, benefits, benefit codes, verification and redemption"),
    Tag(name="ops", description="Health and metrics"),
]


class UnsupportedMediaType(DomainError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


async def _require_json_body(request: Request[Any, Any, Any]) -> None:
    """Bodies must be JSON (routes may widen this with `opt={"media_types": (...)}`)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers:
        return
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    allowed = request.route_handler.opt.get("media_types", _JSON_TYPES)
    if media_type not in allowed and not (media_type.endswith("+json") and "application/json" in allowed):
        raise UnsupportedMediaType(f"send the body as {' or '.join(allowed)}")


async def _before_handler(request: Request[Any, Any, Any]) -> None:
    """What every handler needs of a request once its guards have passed (so a caller without credentials
    gets 401 before any complaint about its body or headers)."""
    await _require_json_body(request)
    await refuse_invalid_key(request)


async def _security_headers(message: Message, scope: Scope) -> None:
    """On every answer: a `before_send` hook also sees problem+json errors, unknown routes and CORS
    preflights, which never pass an `after_request` hook."""
    if message["type"] == "http.response.start":
        message.setdefault("headers", [])
        headers = MutableScopeHeaders.from_message(message)
        for name, value in _SECURITY_HEADERS.items():
            headers.setdefault(name, value)


def _openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="xinyi — city credit service API (信易+ / 信易贷)",
        version="0.1.0",
        description="Credit-score authorization, incentive scenarios, SME credit portraits and partner adapters.",
        path=SCHEMA_PATH,
        tags=TAGS,
        components=Components(security_schemes={
            "BearerAuth": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT",
                                         description="Access token from POST /v1/auth/token"),
            "ClientSecretBasic": SecurityScheme(
                type="http", scheme="basic",
                description="Partner client authentication at the token and revocation endpoints (RFC 6749 §2.3.1: "
                            "form-urlencoded client id and secret)"),
        }),
        render_plugins=render_plugins(),  # assets served by this app: the docs work offline
    )


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app. Settings are read here (from the environment unless given), never at import."""
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs full request URLs at INFO; partner webhook URLs may carry tokens in their query.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    engine = db.build_engine(settings)
    domains.bind_tables(engine)
    ctx = build_context(settings, engine)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await db.open_engine(engine, settings)
        worker = asyncio.create_task(run_forever(ctx), name="background") if settings.background_in_app else None
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await ctx.close()
            await db.close_engine(engine)

    cors = CORSConfig(allow_origins=list(settings.cors_origins), allow_credentials=False,
                      allow_headers=["Authorization", "Content-Type", "Idempotency-Key"]) \
        if settings.cors_origins else None
    return Litestar(
        route_handlers=[accounts_router, credit_router, partners_router, scenarios_router, lending_router,
                        live, ready, MetricsController, assets_router(), pages_router, page_assets_router()],
        template_config=template_config(),
        state=State({"ctx": ctx}),
        dependencies=DEPENDENCIES,
        lifespan=[lifespan],
        on_shutdown=[mark_worker_stopped],
        exception_handlers=exception_handlers(),
        before_request=_before_handler,
        before_send=[_security_headers],
        middleware=[metrics_middleware, idempotency_middleware],
        cors_config=cors,
        openapi_config=_openapi_config(),
        plugins=[ProblemResponses(), StrictBodies(), StrictStructSchemas()],
        request_class=StrictBodyRequest,
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
