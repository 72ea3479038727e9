"""Partner-started consent in a real browser: Debian's Chromium driven by Playwright, against a served app
(`xinyi serve`, a process of its own on loopback).

A bank's integration (authlib's OAuth 2.0 client) pushes its request (RFC 9126); the browser, 375 px wide like a
mini-program web-view, opens the consent URL, logs in with the dev SMS code shown on the page, binds the
citizen's identity, and approves (or refuses); it lands on the bank's loopback callback (a small HTTP server
here); authlib exchanges the code with PKCE and the bound token reads the score without naming the
authorization. Each page is screenshotted into test-artifacts/consent/ (gitignored; the names are printed), the
time from the push to the score read is printed, every request the browser makes goes to the app's own origin
(but the final navigation to the callback), no Content-Security-Policy violation is reported, and axe-core
(fetched from npm by `bash .ci/tools.sh`) finds nothing serious or critical on any page of ours.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from playwright.async_api import BrowserContext, Page, async_playwright

from partners.services import create_partner
from tests.conftest import ApiClient
from tests.factories import add_record, phone, registry_person
from tests.oauth_factories import PAR, TOKEN, details
from tests.servers import free_port, xinyi_server

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".cache" / "axe-core" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "consent"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 375, "height": 812}


# ------------------------------------------------------------------ the bank's callback and the served app


@dataclass
class Callback:
    url: str
    hits: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def callback() -> Iterator[Callback]:
    """The bank's redirect URI: a loopback HTTP server that records each query it is sent."""
    port = free_port()
    seen = Callback(url=f"http://127.0.0.1:{port}/callback")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.hits.append(self.path)
            body = "<!doctype html><html lang='zh-CN'><title>银行</title><h1>已回到银行页面</h1></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
async def served(client: ApiClient) -> AsyncIterator[str]:  # the database is migrated first
    """`xinyi serve` on the tests' database, with a store namespace of its own (its cache is its own)."""
    port = free_port()
    env = {**os.environ, "XINYI_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "XINYI_REDIS_NAMESPACE": f"{os.environ['XINYI_REDIS_NAMESPACE']}-consent-{secrets.token_hex(3)}"}
    with xinyi_server(["serve"], ready_path="/health/ready", port=port, env=env) as base:
        yield base


# ------------------------------------------------------------------ the browser


@dataclass
class Run:
    """One browser session: what it requested, what CSP violations it saw, which screenshots it kept."""

    name: str
    requests: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    checking: float = 0.0  # seconds spent on screenshots and axe-core (inside the measured PAR → score time)


async def _screenshot(page: Page, run: Run, step: str) -> None:
    began = time.perf_counter()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{run.name}-{len(run.screenshots) + 1}-{step}.png"
    await page.screenshot(path=str(path), full_page=True)
    run.screenshots.append(path)
    run.checking += time.perf_counter() - began


async def _axe(run: Run, browser_context: BrowserContext, axe_context: BrowserContext, url: str) -> None:
    """axe-core on the page `url` shows to this session: the same cookies, in a context that bypasses our CSP
    (the script is injected inline, which the page's `script-src 'none'` rightly refuses)."""
    began = time.perf_counter()
    await axe_context.clear_cookies()
    await axe_context.add_cookies(await browser_context.cookies())  # type: ignore[arg-type]
    page = await axe_context.new_page()
    try:
        await page.goto(url)
        await page.add_script_tag(path=str(AXE))
        result = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    finally:
        await page.close()
        run.checking += time.perf_counter() - began
    assert result["testEngine"]["name"] == "axe-core"
    assert len(result["passes"]) >= 10, "axe-core ran hardly any rule"
    grave = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
             for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert grave == [], f"axe-core on {urlsplit(url).path}: {grave}"


@pytest.fixture(scope="module")
def axe_script() -> Path:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE.relative_to(ROOT)}): run `bash .ci/tools.sh` first")
    return AXE


async def _bank(callback: Callback) -> tuple[str, str, str]:
    name = f"城东农商银行{secrets.token_hex(2)}"
    issued = await create_partner(name=name, kind="bank", redirect_uris=[callback.url], production=False)
    assert issued.client_secret is not None
    return issued.client_id, issued.client_secret, name


@dataclass
class Browse:
    """The browser tab the citizen uses, the context axe-core runs in, and what the run recorded."""

    page: Page
    context: BrowserContext
    axe_context: BrowserContext
    run: Run

    async def keep(self, step: str, *, axe: bool = True) -> None:
        """A screenshot of this step, and axe-core on it (pages of ours only)."""
        await _screenshot(self.page, self.run, step)
        if axe:
            await _axe(self.run, self.context, self.axe_context, self.page.url)


async def _push(oauth: AsyncOAuth2Client, callback: Callback, *, state: str, verifier: str) -> str:
    """The bank pushes its request (RFC 9126, authenticated like the token endpoint); the consent URL."""
    pushed = await oauth.request(
        "POST", PAR, withhold_token=True, auth=oauth.client_auth("client_secret_basic"),
        data={"response_type": "code", "redirect_uri": callback.url, "state": state,
              "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
              "authorization_details": details(scopes=["tier", "score", "reasons"])})
    assert pushed.status_code == 201, pushed.text
    return str(pushed.json()["consent_url"])


async def _log_in_and_bind(b: Browse, *, consent_url: str, bank_name: str, person: Any) -> None:
    page = b.page
    # 1. no session: the phone
    await page.goto(consent_url)
    await page.get_by_label("手机号").wait_for()
    assert bank_name in await page.content()
    await b.keep("phone")
    await page.get_by_label("手机号").fill(phone())
    await page.get_by_role("button", name="获取验证码").click()
    # 2. the SMS code (shown on the page by the dev SMS adapter)
    await page.get_by_label("短信验证码").wait_for()
    code = (await page.locator("#dev-code").inner_text()).strip()
    assert re.fullmatch(r"\d{6}", code)
    await b.keep("code")
    await page.get_by_label("短信验证码").fill(code)
    await page.get_by_role("button", name="登录").click()
    # 3. a new account: identity binding
    await page.get_by_label("身份证号码").wait_for()
    await b.keep("identity")
    await page.get_by_label("姓名").fill(person.name)
    await page.get_by_label("身份证号码").fill(person.id_number)
    await page.get_by_role("button", name="认证并继续").click()


async def _decide(b: Browse, *, bank_name: str, decision: str, callback: Callback) -> dict[str, str]:
    """4. the request: who, why, what, how long, how often, that revoking is one tap; then 5. back at the bank.
    The callback's query."""
    page = b.page
    await page.get_by_role("button", name="同意授权").wait_for()
    text = await page.locator("main").inner_text()
    for words in (bank_name, "银行", "贷前审查", "信用等级", "具体信用分", "主要因素", "30 天", "每天最多查询 5 次",
                  "一键撤销"):
        assert words in text, words
    await b.keep("consent")
    await page.get_by_role("button", name="同意授权" if decision == "approve" else "拒绝", exact=True).click()
    await page.wait_for_url(f"{callback.url}?**")
    await b.keep("callback", axe=False)  # the bank's page, not ours
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


async def _consent_in_browser(*, ctx: Any, served: str, callback: Callback, decision: str) -> None:
    client_id, secret, bank_name = await _bank(callback)
    person = await registry_person(ctx, name="周晓雯")
    await add_record(ctx, person, category="volunteer_service")
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
    run = Run(name=decision)
    async with AsyncOAuth2Client(client_id, secret, token_endpoint_auth_method="client_secret_basic",
                                 redirect_uri=callback.url, code_challenge_method="S256", base_url=served,
                                 timeout=20) as oauth, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = await browser.new_context(viewport=VIEWPORT, locale="zh-CN", is_mobile=True, has_touch=True)
            b = Browse(page=await context.new_page(), context=context, run=run,
                       axe_context=await browser.new_context(viewport=VIEWPORT, locale="zh-CN", bypass_csp=True))
            b.page.on("request", lambda request: run.requests.append(request.url))
            b.page.on("console", lambda message: run.csp_violations.append(message.text)
                      if "Content Security Policy" in message.text else None)

            started = time.perf_counter()
            consent_url = await _push(oauth, callback, state=state, verifier=verifier)
            assert consent_url.startswith(f"{served}/authorize?")
            await _log_in_and_bind(b, consent_url=consent_url, bank_name=bank_name, person=person)
            params = await _decide(b, bank_name=bank_name, decision=decision, callback=callback)
            landed = b.page.url
            assert params["state"] == state
            assert params["iss"]
            if decision == "approve":
                token = await oauth.fetch_token(f"{served}{TOKEN}", authorization_response=landed, state=state,
                                                code_verifier=verifier)
                (granted,) = token["authorization_details"]
                read = await oauth.post(f"{served}/v1/scores/query", json={})  # no authorization_id: the token's
                elapsed = time.perf_counter() - started
                assert read.status_code == 200, read.text
                assert read.json()["authorization_id"] == granted["authorization_id"]
                assert {"tier", "score", "reasons"} <= read.json().keys()
                print(f"\nconsent browser run: PAR → score read in {elapsed:.2f} s "
                      f"({run.checking:.2f} s of it screenshots and axe-core, {elapsed - run.checking:.2f} s without)")
            else:
                assert params["error"] == "access_denied"
                assert "code" not in params

            # a page of ours that refuses: axe-core on the error page too
            await b.page.goto(f"{served}/authorize?client_id={client_id}&request_uri=urn%3Aunknown")
            assert "无法完成授权" in await b.page.content()
            await b.keep("error")
        finally:
            await browser.close()

    print(f"consent browser run ({decision}) screenshots: " + ", ".join(
        str(p.relative_to(ROOT)) for p in run.screenshots))
    ours = urlsplit(served).netloc
    elsewhere = [url for url in run.requests if urlsplit(url).netloc != ours]
    assert elsewhere == [landed], f"requests to other origins: {elsewhere}"
    assert callback.hits.count(urlsplit(landed).path + "?" + urlsplit(landed).query) == 1
    assert run.csp_violations == []
    assert len(run.requests) >= 8


@pytest.mark.usefixtures("axe_script")
@pytest.mark.parametrize("decision", ["approve", "refuse"])
async def test_consent_in_a_real_browser(ctx: Any, served: str, callback: Callback, decision: str) -> None:
    await _consent_in_browser(ctx=ctx, served=served, callback=callback, decision=decision)
