"""The interactive API docs (Swagger UI at `/schema/swagger`), working without internet access.

Litestar's render plugins load Swagger UI's script and stylesheet (and a favicon) from a public CDN by default,
so on a network without internet (as government networks often are) the docs page stays blank. Here the
page points at copies served by this app under `/schema/assets/`, taken from the installed `swagger-ui-py`
package (a PyPI distribution of the official `swagger-ui-dist` files). Swagger UI is the only docs page: no
Python package ships Scalar's or ReDoc's standalone bundles without pulling in another web framework, and a
page that needs the internet to render is worse than none.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

SCHEMA_PATH = "/schema"
ASSETS_PATH = f"{SCHEMA_PATH}/assets"


def swagger_ui_directory() -> Path:
    """Where the installed `swagger-ui-py` package keeps the Swagger UI distribution files.

    Located without importing the package (its `__init__` loads framework adapters the app does not need).
    """
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed (it serves the API docs' assets)")
    directory = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (directory / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"swagger-ui-py holds no Swagger UI bundle in {directory}")
    return directory


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI with every asset served by this app (no URL of another host in the page)."""
    return [SwaggerRenderPlugin(
        path="/swagger",
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )]


def assets_router() -> Router:
    """The Swagger UI files, read from the installed package; cached by browsers for a day."""
    return create_static_files_router(
        path=ASSETS_PATH, directories=[swagger_ui_directory()], name="docs_assets", include_in_schema=False,
        cache_control=CacheControlHeader(max_age=86_400, public=True),
    )
