"""The interactive docs work on a network without internet: every docs page the app exposes loads its script,
stylesheet and icon from this app, each of those answers with the right content type, and Swagger UI renders
every operation in a real browser (Chromium, driven by Playwright) that can reach nothing but the server."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from litestar.openapi.plugins import OpenAPIRenderPlugin
from playwright.async_api import Route, async_playwright

from tests.servers import xinyi_server

_URL = re.compile(r"""(?:https?:)?//[^\s"'<>\\)]+""")
_EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Assets(HTMLParser):
    """Every URL the page makes the browser fetch: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src", "iframe": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _docs_pages(client) -> list[str]:
    config = client.app.openapi_config
    assert config is not None
    plugins: list[OpenAPIRenderPlugin] = list(config.render_plugins)
    pages = [config.path] + [f"{config.path}{path}" for plugin in plugins for path in plugin.paths]
    return sorted(set(pages))


async def test_every_docs_page_names_no_other_host_and_its_assets_are_served(client) -> None:
    pages = _docs_pages(client)
    assert "/schema/swagger" in pages
    for page in pages:
        answer = await client.get(page)
        assert answer.status_code == 200, page
        assert answer.headers["content-type"].startswith("text/html"), page
        html = answer.text
        foreign = [url for url in _URL.findall(html) if urlsplit(url).hostname
                   not in (None, "testserver.local")]
        assert foreign == [], f"{page} refers to other hosts: {foreign[:5]}"

        parser = _Assets()
        parser.feed(html)
        assert len(parser.urls) >= 3, f"{page} loads no script or stylesheet: {parser.urls}"
        for url in parser.urls:
            assert urlsplit(url).netloc == "", f"{page} loads {url} from another host"
            asset = await client.get(urljoin(f"http://testserver.local{page}", url))
            assert asset.status_code == 200, url
            suffix = url[url.rfind("."):]
            assert _EXPECTED_TYPES[suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
            assert len(asset.content) > 1000, url


async def test_the_swagger_page_loads_swagger_ui_with_its_preset_and_stylesheet(client) -> None:
    html = (await client.get("/schema/swagger")).text
    parser = _Assets()
    parser.feed(html)
    names = {url.rsplit("/", 1)[-1] for url in parser.urls}
    assert {"swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"} <= names
    bundle = await client.get("/schema/assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content
    # OpenAPI 3.1 needs Swagger UI 5 (4.x shows "Unable to render this definition")
    assert b"isOAS31" in bundle.content


async def test_only_pages_that_work_offline_are_exposed(client) -> None:
    for page in ("/schema/scalar", "/schema/redoc", "/schema/elements", "/schema/rapidoc"):
        assert (await client.get(page)).status_code == 404, page


CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/tools.sh installs it); Playwright drives it


@pytest.fixture(scope="module")
def served_docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server process (`xinyi serve`): what a browser on the city's network would open."""
    assert Path(CHROMIUM).is_file(), "chromium is needed for the browser test (.ci/tools.sh installs it)"
    workdir = tmp_path_factory.mktemp("docs-browser")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"XINYI_ENV": "dev", "XINYI_SQLITE_PATH": str(workdir / "docs.sqlite"), "XINYI_LOG_LEVEL": "WARNING",
                "XINYI_BACKGROUND_IN_APP": "0"})
    with xinyi_server(["serve", "--host", "127.0.0.1"], ready_path="/health/live", env=env) as base:
        yield base


async def test_swagger_ui_renders_in_a_browser_without_internet(served_docs: str) -> None:
    own_host = urlsplit(served_docs).netloc
    elsewhere: list[str] = []

    async def no_internet(route: Route) -> None:
        """Only this server is reachable, as on a network without internet: anything else fails."""
        if urlsplit(route.request.url).netloc == own_host:
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            page = await browser.new_page()
            await page.route("**/*", no_internet)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{served_docs}/schema/swagger", wait_until="load")
            await page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
            title = await page.inner_text(".swagger-ui .info .title")
            operations = await page.locator(".swagger-ui .opblock").count()
            rendering_errors = await page.locator(".swagger-ui .errors-wrapper").count()
        finally:
            await browser.close()
    assert "xinyi" in title
    assert operations > 50, f"only {operations} operations rendered"
    assert rendering_errors == 0
    assert errors == []
    assert elsewhere == [], f"the page tried to reach other hosts: {elsewhere}"
