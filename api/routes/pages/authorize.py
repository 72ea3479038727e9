"""The consent page: `GET /authorize?client_id=…&request_uri=…`, where a partner sends a citizen after pushing its
request (`POST /v1/oauth/par`), and the forms it posts.

Server-rendered HTML (Jinja templates in api/templates/, one stylesheet served under /authorize/assets/), in
Chinese, without JavaScript, sized for a 375 px mini-program web-view. The steps, each a page of its own:

1. no session: the phone, then the SMS code (`accounts.sessions.request_otp` / `account_for_otp`);
2. an account without identity binding: name and id number (`accounts.citizens.bind_identity`);
3. the request itself: who asks, why, exactly what is shared, for how long and how often; approve or refuse
   (`accounts.consent.approve_consent` / `refuse_consent`), each answered by a 303 to the URL they return.

The browser session is a random id in an HttpOnly, SameSite=Lax cookie (Secure outside dev and test), its state
server-side (accounts/web_sessions.py). Every form carries the session's CSRF token; a form without it (or
with another) gets a 403 page and changes nothing. A request the service does not know, that expired, was used
or was pushed by another client gets a 400 page: the page never redirects anywhere but to the URL the consent
service built from the partner's registered redirect URI.

Handlers take the raw `Request` only to read the form body; the session cookie arrives as a parameter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.params import CookieParameter, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ExceptionHandlersMap

from accounts import citizens, consent, web_sessions
from accounts.sessions import AUTHORIZE_PATH, account_for_otp, request_otp
from accounts.web_sessions import WebSession
from api.context import AppContext
from api.dependencies import Injected
from api.routes.pages.wording import SCOPE_WORDS, error_words, partner_kind_words, scope_words
from core.errors import DomainError, NotFound
from core.store import StoreUnavailable
from credit.catalog import PURPOSES

logger = logging.getLogger("xinyi.pages")

PAGE_PATH = AUTHORIZE_PATH  # what the metadata's authorization_endpoint and the PAR answer's consent_url name
ASSETS_PATH = f"{PAGE_PATH}/assets"
COOKIE = "xinyi_consent"
FORM = "application/x-www-form-urlencoded"
_FORM_OPT = {"media_types": (FORM,)}
_MAX_FORM_BYTES = 8 * 1024

# No script at all, styles only from our stylesheet, no framing, nothing sent to the partner in a Referer.
# `form-action` is left out on purpose: Chromium applies it to the redirect after a form post, and approving ends
# in a 303 to the partner's registered redirect URI on another origin.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


class CsrfRejected(DomainError):
    status, code, title = 403, "csrf", "The form's CSRF token is missing or not this session's"


class MissingField(DomainError):
    status, code, title = 400, "missing_field", "A form field is missing"


@dataclass(frozen=True, slots=True)
class _Form:
    values: dict[str, str]

    def get(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def required(self, name: str) -> str:
        value = self.get(name)
        if not value or len(value) > 512:
            raise MissingField(f"`{name}` is required")
        return value


async def _read_form(request: Request[Any, Any, Any]) -> _Form:
    form = await request.form()
    # One value per name (the first); every field of these forms is a short string.
    return _Form({key: str(value) for key, value in form.items() if isinstance(value, str)})


def _page_url(client_id: str, request_uri: str) -> str:
    return f"{PAGE_PATH}?{urlencode({'client_id': client_id, 'request_uri': request_uri})}"


def _cookie(ctx: AppContext, session: WebSession) -> Cookie:
    settings = ctx.settings
    secure = settings.env not in ("dev", "test") or settings.public_url.startswith("https://")
    return Cookie(key=COOKIE, value=session.session_id, path=PAGE_PATH, httponly=True, samesite="lax",
                  secure=secure, max_age=web_sessions.SESSION_TTL_SECONDS)


def _render(template: str, *, status: int = 200, session: WebSession | None = None, ctx: AppContext | None = None,
            **context: Any) -> Template:
    cookies = [_cookie(ctx, session)] if session is not None and ctx is not None else []
    return Template(template_name=template, context={"assets": ASSETS_PATH, "page_path": PAGE_PATH, **context},
                    status_code=status, headers=dict(PAGE_HEADERS), cookies=cookies, media_type="text/html")


def _error_page(status: int, code: str) -> Template:
    return _render("consent_error.html", status=status, message=error_words(code), code=code)


def _see_other(url: str, *, ctx: AppContext | None = None, session: WebSession | None = None) -> Redirect:
    cookies = [_cookie(ctx, session)] if session is not None and ctx is not None else []
    return Redirect(path=url, status_code=HTTP_303_SEE_OTHER, headers=dict(PAGE_HEADERS), cookies=cookies)


def _masked_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****"


def _masked_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)


def _scope_order(scope: str) -> int:
    """Least revealing first (the wording table's order), so the list reads as a growing disclosure."""
    order = list(SCOPE_WORDS)
    return order.index(scope) if scope in SCOPE_WORDS else len(order)


def _request_view(pending: consent.PendingConsent) -> dict[str, Any]:
    """The request as the templates show it: plain words for every code."""
    purpose = PURPOSES.get(pending.purpose_code)
    daily_cap = pending.daily_cap if pending.daily_cap is not None else (purpose.daily_cap if purpose else None)
    return {
        "client_id": pending.client_id,
        "request_uri": pending.request_uri,
        "partner_name": pending.partner_name,
        "partner_kind": partner_kind_words(pending.partner_kind),
        "purpose_name": pending.purpose_name,
        "purpose_text": pending.purpose_text,
        "scopes": [scope_words(scope) for scope in sorted(pending.scopes, key=_scope_order)],
        "validity_days": pending.validity_days,
        "daily_cap": daily_cap,
    }


async def _pending(ctx: AppContext, client_id: str | None, request_uri: str | None) -> consent.PendingConsent:
    if not client_id or not request_uri or len(client_id) > 256 or len(request_uri) > 512:
        raise MissingField("client_id and request_uri are required", code="invalid_request")
    return await consent.pending_consent(store=ctx.store, client_id=client_id, request_uri=request_uri)


async def _session_for_post(ctx: AppContext, session_id: str | None, form: _Form) -> WebSession:
    """The session a form belongs to: its cookie names a live session and its CSRF token is that session's."""
    session = await web_sessions.load_session(store=ctx.store, session_id=session_id)
    if session is None or not web_sessions.csrf_matches(session, form.get("csrf_token")):
        raise CsrfRejected
    return session


SessionCookie = Annotated[str | None, CookieParameter(name=COOKIE, required=False)]
Query = Annotated[str | None, QueryParameter(required=False)]


@get(PAGE_PATH, include_in_schema=False)
async def authorize_page(*, ctx: Injected[AppContext], session_id: SessionCookie = None,
                         client_id: Query = None, request_uri: Query = None) -> Template:
    pending = await _pending(ctx, client_id, request_uri)
    ask = _request_view(pending)
    session = await web_sessions.load_session(store=ctx.store, session_id=session_id)
    if session is None:
        session = await web_sessions.start_session(store=ctx.store)
    if session.account_id is None:
        if session.phone_enc is None:
            return _render("consent_login.html", step="phone", session=session, ctx=ctx, ask=ask,
                           csrf=session.csrf_token)
        return _render("consent_login.html", step="code", session=session, ctx=ctx, ask=ask,
                       csrf=session.csrf_token, dev_code=session.dev_code,
                       phone=_masked_phone(ctx.cipher.decrypt("phone", session.phone_enc)))
    try:
        account = await citizens.account_view(ctx=ctx, account_id=session.account_id)
    except NotFound:  # the account was closed since: log in again
        await web_sessions.end_session(store=ctx.store, session_id=session.session_id)
        session = await web_sessions.start_session(store=ctx.store)
        return _render("consent_login.html", step="phone", session=session, ctx=ctx, ask=ask,
                       csrf=session.csrf_token)
    session = await web_sessions.touch(store=ctx.store, session=session)
    who = {"phone": _masked_phone(account.phone),
           "name": _masked_name(account.person.name) if account.person else None}
    if account.person is None:
        return _render("consent_identity.html", session=session, ctx=ctx, ask=ask, who=who,
                       csrf=session.csrf_token)
    return _render("consent_request.html", session=session, ctx=ctx, ask=ask, who=who,
                   csrf=session.csrf_token)


async def _form_step(ctx: AppContext, request: Request[Any, Any, Any], session_id: str | None
                     ) -> tuple[_Form, WebSession, consent.PendingConsent]:
    form = await _read_form(request)
    session = await _session_for_post(ctx, session_id, form)
    pending = await _pending(ctx, form.get("client_id"), form.get("request_uri"))
    return form, session, pending


def _again(template: str, exc: DomainError, *, ctx: AppContext, session: WebSession,
           pending: consent.PendingConsent, **context: Any) -> Template:
    """The same step once more, saying what went wrong (with the service's status: 422, 429, 503…)."""
    return _render(template, status=exc.status, session=session, ctx=ctx, ask=_request_view(pending),
                   csrf=session.csrf_token, error=error_words(exc.code), **context)


@post(f"{PAGE_PATH}/code", include_in_schema=False, opt=_FORM_OPT, request_max_body_size=_MAX_FORM_BYTES)
async def send_code(*, request: Request[Any, Any, Any], ctx: Injected[AppContext], client_ip: Injected[str],
                    session_id: SessionCookie = None) -> Response[Any]:
    form, session, pending = await _form_step(ctx, request, session_id)
    phone = form.get("phone")
    try:
        issued = await request_otp(ctx=ctx, phone=phone, client_address=client_ip)
    except DomainError as exc:
        return _again("consent_login.html", exc, ctx=ctx, session=session, pending=pending, step="phone",
                      entered_phone=phone[:20])
    # `request_otp` accepted the number, so it normalises; the login step sends it back as given.
    session = await web_sessions.code_sent(store=ctx.store, session=session,
                                           phone_enc=ctx.cipher.encrypt("phone", phone), dev_code=issued.dev_code)
    return _see_other(_page_url(pending.client_id, pending.request_uri), ctx=ctx, session=session)


@post(f"{PAGE_PATH}/change-phone", include_in_schema=False, opt=_FORM_OPT, request_max_body_size=_MAX_FORM_BYTES)
async def change_phone(*, request: Request[Any, Any, Any], ctx: Injected[AppContext],
                       session_id: SessionCookie = None) -> Response[Any]:
    _, session, pending = await _form_step(ctx, request, session_id)
    await web_sessions.end_session(store=ctx.store, session_id=session.session_id)
    session = await web_sessions.start_session(store=ctx.store)
    return _see_other(_page_url(pending.client_id, pending.request_uri), ctx=ctx, session=session)


@post(f"{PAGE_PATH}/login", include_in_schema=False, opt=_FORM_OPT, request_max_body_size=_MAX_FORM_BYTES)
async def log_in(*, request: Request[Any, Any, Any], ctx: Injected[AppContext],
                 session_id: SessionCookie = None) -> Response[Any]:
    form, session, pending = await _form_step(ctx, request, session_id)
    if session.phone_enc is None:  # no code was sent in this session: start with the phone
        return _see_other(_page_url(pending.client_id, pending.request_uri))
    phone = ctx.cipher.decrypt("phone", session.phone_enc)
    try:
        account_id = await account_for_otp(ctx=ctx, phone=phone, code=form.get("code")[:12])
    except DomainError as exc:
        return _again("consent_login.html", exc, ctx=ctx, session=session, pending=pending, step="code",
                      phone=_masked_phone(phone), dev_code=session.dev_code)
    session = await web_sessions.logged_in(store=ctx.store, session=session, account_id=account_id)
    return _see_other(_page_url(pending.client_id, pending.request_uri), ctx=ctx, session=session)


@post(f"{PAGE_PATH}/logout", include_in_schema=False, opt=_FORM_OPT, request_max_body_size=_MAX_FORM_BYTES)
async def log_out(*, request: Request[Any, Any, Any], ctx: Injected[AppContext],
                  session_id: SessionCookie = None) -> Response[Any]:
    _, session, pending = await _form_step(ctx, request, session_id)
    await web_sessions.end_session(store=ctx.store, session_id=session.session_id)
    session = await web_sessions.start_session(store=ctx.store)
    return _see_other(_page_url(pending.client_id, pending.request_uri), ctx=ctx, session=session)


async def _logged_in(ctx: AppContext, session: WebSession) -> str:
    if session.account_id is None:
        raise CsrfRejected("this session is not logged in")
    return session.account_id


@post(f"{PAGE_PATH}/identity", include_in_schema=False, opt=_FORM_OPT, request_max_body_size=_MAX_FORM_BYTES)
async def bind_identity(*, request: Request[Any, Any, Any], ctx: Injected[AppContext],
                        session_id: SessionCookie = None) -> Response[Any]:
    form, session, pending = await _form_step(ctx, request, session_id)
    account_id = await _logged_in(ctx, session)
    name, id_number = form.get("name")[:64], form.get("id_number")[:32]
    try:
        if not name or not id_number:
            raise MissingField("name and id number are required")
        await citizens.bind_identity(ctx=ctx, account_id=account_id, name=name, id_number=id_number)
    except DomainError as exc:
        account = await citizens.account_view(ctx=ctx, account_id=account_id)
        return _again("consent_identity.html", exc, ctx=ctx, session=session, pending=pending,
                      who={"phone": _masked_phone(account.phone), "name": None}, entered_name=name)
    return _see_other(_page_url(pending.client_id, pending.request_uri), ctx=ctx, session=session)


@post(f"{PAGE_PATH}/approve", include_in_schema=False, opt=_FORM_OPT, request_max_body_size=_MAX_FORM_BYTES)
async def approve(*, request: Request[Any, Any, Any], ctx: Injected[AppContext],
                  session_id: SessionCookie = None) -> Response[Any]:
    _, session, pending = await _form_step(ctx, request, session_id)
    account_id = await _logged_in(ctx, session)
    person_id = await citizens.bound_person_id(account_id=account_id)
    url = await consent.approve_consent(store=ctx.store, ledger=ctx.ledger, cipher=ctx.cipher, tokens=ctx.tokens,
                                        settings=ctx.settings, client_id=pending.client_id,
                                        request_uri=pending.request_uri, account_id=account_id, person_id=person_id)
    return _see_other(url)


@post(f"{PAGE_PATH}/refuse", include_in_schema=False, opt=_FORM_OPT, request_max_body_size=_MAX_FORM_BYTES)
async def refuse(*, request: Request[Any, Any, Any], ctx: Injected[AppContext],
                 session_id: SessionCookie = None) -> Response[Any]:
    _, session, pending = await _form_step(ctx, request, session_id)
    account_id = await _logged_in(ctx, session)
    url = await consent.refuse_consent(store=ctx.store, settings=ctx.settings, client_id=pending.client_id,
                                       request_uri=pending.request_uri, account_id=account_id)
    return _see_other(url)


# ------------------------------------------------------------------ errors: a page in Chinese, never problem+json


def _domain_error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, DomainError)
    # A request the consent service refuses (unknown, expired, used, another client's) is the caller's mistake
    # whatever status the service gives it: 400, and no redirect.
    status = exc.status if exc.status in (403, 429) or exc.status >= 500 else 400
    return _error_page(status, exc.code)


def _http_error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code if 400 <= exc.status_code < 500 else 500
    return _error_page(status, "invalid_request" if status == 400 else f"http_{status}")


def _store_down_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _error_page(503, "store_unavailable")


def _unexpected_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.error("consent page failed", exc_info=exc)
    return _error_page(500, "internal_error")


PAGE_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: _domain_error_page,
    HTTPException: _http_error_page,
    StoreUnavailable: _store_down_page,
    Exception: _unexpected_page,
}
