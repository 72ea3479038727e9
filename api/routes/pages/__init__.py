"""HTML pages a citizen's browser opens (today the consent page, `GET /authorize`): one Router with its own error
pages (Chinese HTML instead of problem+json), the templates' configuration and the pages' stylesheet. None of it is
in the OpenAPI document: these are not API operations."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from api.routes.pages.authorize import (
    ASSETS_PATH,
    PAGE_EXCEPTION_HANDLERS,
    approve,
    authorize_page,
    bind_identity,
    change_phone,
    log_in,
    log_out,
    refuse,
    send_code,
)

_API = Path(__file__).resolve().parents[2]
TEMPLATES = _API / "templates"
STATIC = _API / "static"

router = Router(path="/", route_handlers=[authorize_page, send_code, change_phone, log_in, log_out, bind_identity,
                                          approve, refuse],
                exception_handlers=PAGE_EXCEPTION_HANDLERS, include_in_schema=False)


def assets_router() -> Router:
    """The pages' stylesheet (no other asset: no script, no web font, no image)."""
    return create_static_files_router(path=ASSETS_PATH, directories=[STATIC], name="page_assets",
                                      include_in_schema=False,
                                      cache_control=CacheControlHeader(max_age=3600, public=True))


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    # Litestar's Jinja engine turns autoescaping on: every value a partner pushed (its name, the state) is escaped.
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
