"""The consent page (`GET /authorize`) over HTTP, in-process: each step, its headers and cookie, CSRF, and the
requests it must refuse (unknown or another partner's `request_uri`). The real-browser run is
test_consent_browser.py."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import msgspec
import pytest

from accounts import web_sessions
from accounts.consent import push_authorization_request
from accounts.sessions import ClientAuthentication
from api.routes.pages.wording import PARTNER_KIND_WORDS, SCOPE_WORDS
from credit.catalog import DATA_SCOPES, PURPOSES
from credit.tables import Authorization
from partners.scopes import PARTNER_KINDS
from partners.services import create_partner
from tests.conftest import ApiClient
from tests.factories import phone, registry_person

REDIRECT = "https://bank.example/callback"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B
FORM = {"content-type": "application/x-www-form-urlencoded"}


@dataclass
class Pushed:
    client_id: str
    request_uri: str
    state: str

    @property
    def page(self) -> str:
        return "/authorize?" + urlencode({"client_id": self.client_id, "request_uri": self.request_uri})


async def _bank(name: str) -> tuple[str, str]:
    issued = await create_partner(name=name, kind="bank", redirect_uris=[REDIRECT])
    assert issued.client_secret is not None
    return issued.client_id, issued.client_secret


async def _push(ctx, client_id: str, secret: str, *, scopes: list[str] | None = None) -> Pushed:
    state = secrets.token_urlsafe(12)
    details = [{"type": "xinyi_credit_score", "purpose": "loan_pre_approval",
                "scopes": scopes or ["tier", "score_band", "reasons"], "validity_days": 30, "daily_cap": 3}]
    pushed = await push_authorization_request(
        ctx=ctx, client=ClientAuthentication(method="client_secret_post", client_id=client_id, client_secret=secret),
        response_type="code", redirect_uri=REDIRECT, state=state, code_challenge=CHALLENGE,
        code_challenge_method="S256", authorization_details=msgspec.json.encode(details).decode())
    return Pushed(client_id=client_id, request_uri=pushed.request_uri, state=state)


@pytest.fixture
async def browser(client: ApiClient) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own (its own cookie jar), on the test app."""
    address = f"10.9.{secrets.randbelow(256)}.{secrets.randbelow(250) + 1}"  # its own OTP throttle
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://testserver.local",
                                 headers={"X-Forwarded-For": address}) as b:
        yield b


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return unescape(found.group(1))


def _form(html: str, **values: str) -> dict[str, str]:
    return {"csrf_token": _field(html, "csrf_token"), "client_id": _field(html, "client_id"),
            "request_uri": _field(html, "request_uri"), **values}


def _assert_page_headers(r: httpx.Response) -> None:
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


async def _log_in_and_bind(browser: httpx.AsyncClient, ctx, pushed: Pushed) -> str:
    """Through the page's own steps: phone, dev SMS code, identity. Returns the consent step's HTML."""
    person = await registry_person(ctx, name="林小雨")
    page = await browser.get(pushed.page)
    assert page.status_code == 200, page.text
    assert 'name="phone"' in page.text
    number = phone()
    sent = await browser.post("/authorize/code", data=_form(page.text, phone=number), headers=FORM)
    assert sent.status_code == 303, sent.text
    page = await browser.get(pushed.page)
    assert "验证码已发送至" in page.text
    assert number not in page.text
    code = re.search(r'id="dev-code">(\d{6})<', page.text)
    assert code, "the dev SMS code is shown in dev and test"
    logged = await browser.post("/authorize/login", data=_form(page.text, code=code.group(1)), headers=FORM)
    assert logged.status_code == 303, logged.text
    page = await browser.get(pushed.page)
    assert "实名认证" in page.text
    bound = await browser.post("/authorize/identity", headers=FORM,
                               data=_form(page.text, name=person.name, id_number=person.id_number))
    assert bound.status_code == 303, bound.text
    page = await browser.get(pushed.page)
    assert page.status_code == 200
    return page.text


async def _authorizations(client_id: str) -> int:
    return await Authorization.count().where(Authorization.partner_client_id == client_id)


async def test_login_bind_and_approve_through_the_page(client: ApiClient, ctx, browser: httpx.AsyncClient) -> None:
    client_id, secret = await _bank("城东农商银行")
    pushed = await _push(ctx, client_id, secret)
    first = await browser.get(pushed.page)
    _assert_page_headers(first)
    assert first.headers["content-type"].startswith("text/html")
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Path=/authorize" in cookie
    assert "Secure" not in cookie  # test env on plain http; production sets it

    html = await _log_in_and_bind(browser, ctx, pushed)
    # who asks, why, exactly what, how long, how often, and how to take it back
    for words in ("城东农商银行", "银行", PURPOSES["loan_pre_approval"].name, SCOPE_WORDS["tier"],
                  SCOPE_WORDS["score_band"], SCOPE_WORDS["reasons"], "30 天", "每天最多查询 3 次", "一键撤销"):
        assert words in html, words
    assert SCOPE_WORDS["score"] not in html  # not asked, not shown

    approved = await browser.post("/authorize/approve", data=_form(html), headers=FORM)
    assert approved.status_code == 303, approved.text
    _assert_page_headers(approved)
    location = urlsplit(approved.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == [pushed.state]
    assert query["code"]
    assert query["iss"] == [ctx.settings.jwt_issuer]
    assert await _authorizations(client_id) == 1
    # single use: the same request_uri is refused now, with a page, not a redirect
    again = await browser.get(pushed.page)
    assert again.status_code == 400
    assert "location" not in again.headers
    assert "授权链接无效或已过期" in again.text


async def test_the_session_cookie_holds_nothing_personal_and_changes_at_login(client: ApiClient, ctx,
                                                                            browser: httpx.AsyncClient) -> None:
    client_id, secret = await _bank("城西银行")
    pushed = await _push(ctx, client_id, secret)
    page = await browser.get(pushed.page)
    before = browser.cookies["xinyi_consent"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", before)
    await _log_in_and_bind(browser, ctx, pushed)
    after = browser.cookies["xinyi_consent"]
    assert after != before
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", after)
    # the anonymous session's id is dead after the login (no fixation): its forms get 403
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://testserver.local",
                                 cookies={"xinyi_consent": before}) as stale:
        refused = await stale.post("/authorize/refuse", data=_form(page.text), headers=FORM)
    assert refused.status_code == 403


async def test_refusing_sends_access_denied_and_the_state(client: ApiClient, ctx, browser: httpx.AsyncClient) -> None:
    client_id, secret = await _bank("城南银行")
    pushed = await _push(ctx, client_id, secret)
    html = await _log_in_and_bind(browser, ctx, pushed)
    refused = await browser.post("/authorize/refuse", data=_form(html), headers=FORM)
    assert refused.status_code == 303, refused.text
    location = urlsplit(refused.headers["location"])
    query = parse_qs(location.query)
    assert location.netloc == "bank.example"
    assert query["error"] == ["access_denied"]
    assert query["state"] == [pushed.state]
    assert "code" not in query
    assert await _authorizations(client_id) == 0


@pytest.mark.parametrize("token", [None, "", "wrong"])
async def test_a_form_without_this_sessions_csrf_token_gets_403_and_changes_nothing(
        client: ApiClient, ctx, browser: httpx.AsyncClient, token: str | None) -> None:
    client_id, secret = await _bank("城北银行")
    pushed = await _push(ctx, client_id, secret)
    html = await _log_in_and_bind(browser, ctx, pushed)
    form = _form(html)
    if token is None:
        del form["csrf_token"]
    else:
        form["csrf_token"] = token
    for action in ("approve", "refuse"):
        r = await browser.post(f"/authorize/{action}", data=form, headers=FORM)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert "location" not in r.headers
        assert "页面已过期或来源不明" in r.text
        _assert_page_headers(r)
    assert await _authorizations(client_id) == 0
    # the request is still there, and still the citizen's to decide
    assert "同意授权" in (await browser.get(pushed.page)).text


async def test_a_form_posted_without_the_cookie_gets_403(client: ApiClient, ctx, browser: httpx.AsyncClient) -> None:
    client_id, secret = await _bank("城中银行")
    pushed = await _push(ctx, client_id, secret)
    html = await _log_in_and_bind(browser, ctx, pushed)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app),
                                 base_url="http://testserver.local") as other_site:
        r = await other_site.post("/authorize/approve", data=_form(html), headers=FORM)
    assert r.status_code == 403
    assert await _authorizations(client_id) == 0


async def test_a_forged_client_id_gets_a_400_page_and_no_redirect(client: ApiClient, ctx,
                                                                   browser: httpx.AsyncClient) -> None:
    client_id, secret = await _bank("真银行")
    forger, _ = await _bank("冒名银行")
    pushed = await _push(ctx, client_id, secret)
    forged = Pushed(client_id=forger, request_uri=pushed.request_uri, state=pushed.state)
    r = await browser.get(forged.page)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert "location" not in r.headers
    assert "bank.example" not in r.text
    assert "无法完成授权" in r.text
    assert "invalid_request_uri" in r.text
    _assert_page_headers(r)
    # the forged id cannot decide it either, even with a valid session and token of the right request's page
    html = await _log_in_and_bind(browser, ctx, pushed)
    form = _form(html)
    form["client_id"] = forger
    r = await browser.post("/authorize/approve", data=form, headers=FORM)
    assert r.status_code == 400
    assert "location" not in r.headers
    assert await _authorizations(client_id) == 0
    assert await _authorizations(forger) == 0


@pytest.mark.parametrize("query", [
    "", "?client_id=x", "?request_uri=urn:ietf:params:oauth:request_uri:x",
    "?client_id=x&request_uri=urn:ietf:params:oauth:request_uri:" + "A" * 43,
    "?client_id=x&request_uri=https://evil.example/", "?client_id=" + "x" * 5000 + "&request_uri=y",
])
async def test_unknown_or_malformed_requests_get_a_400_page(browser: httpx.AsyncClient, query: str) -> None:
    r = await browser.get(f"/authorize{query}")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "无法完成授权" in r.text
    assert "location" not in r.headers
    _assert_page_headers(r)


async def test_a_wrong_code_shows_the_step_again_in_chinese(client: ApiClient, ctx, browser: httpx.AsyncClient) -> None:
    client_id, secret = await _bank("城关银行")
    pushed = await _push(ctx, client_id, secret)
    page = await browser.get(pushed.page)
    bad = await browser.post("/authorize/code", data=_form(page.text, phone="123"), headers=FORM)
    assert bad.status_code == 422
    assert "请输入正确的 11 位手机号码" in bad.text
    await browser.post("/authorize/code", data=_form(page.text, phone=phone()), headers=FORM)
    page = await browser.get(pushed.page)
    wrong = await browser.post("/authorize/login", data=_form(page.text, code="000000x"), headers=FORM)
    assert wrong.status_code == 400
    assert "验证码不正确或已过期" in wrong.text
    _assert_page_headers(wrong)


async def test_the_stylesheet_is_served_by_the_app(browser: httpx.AsyncClient) -> None:
    css = await browser.get("/authorize/assets/consent.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    # nothing fetched from anywhere: no font, no image, no import
    assert "url(" not in css.text
    assert "@import" not in css.text
    assert "@font-face" not in css.text


def test_every_scope_and_partner_kind_has_plain_words() -> None:
    assert set(SCOPE_WORDS) == set(DATA_SCOPES)
    assert set(PARTNER_KIND_WORDS) == set(PARTNER_KINDS)


async def test_the_pages_are_not_in_the_openapi_document(client: ApiClient) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/authorize")]


async def test_the_store_keys_sessions_by_a_digest_and_forgets_ended_ones(ctx) -> None:
    session = await web_sessions.start_session(store=ctx.store)
    assert await ctx.store.get("websession", session.session_id) is None  # a store dump yields no cookie
    assert await web_sessions.load_session(store=ctx.store, session_id=session.session_id) == session
    assert await web_sessions.load_session(store=ctx.store, session_id="x" * 500) is None
    await web_sessions.end_session(store=ctx.store, session_id=session.session_id)
    assert await web_sessions.load_session(store=ctx.store, session_id=session.session_id) is None
