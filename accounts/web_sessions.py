"""Browser sessions of the consent page (`GET /authorize`): who is logged in, in which browser.

The browser holds only a random session id (an HttpOnly cookie set by the page's routes); everything else lives
here, in the shared store under a keyed digest of that id, for `SESSION_TTL_SECONDS` after the last step (so a
dump of the store yields no usable cookie). No token and no personal data ever reaches the cookie; the phone a
code was sent to is kept encrypted until the login step consumes it.

Each session carries its own CSRF token, which every form of the page posts back: a form posted from another
site carries the cookie (a top-level POST with SameSite=Lax does not, but older web-views ignore SameSite) and
never the token. Logging in starts a new session id and CSRF token (no session fixation).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import msgspec

from core.store import Store

SESSION_TTL_SECONDS = 30 * 60
_DOMAIN = "websession"


class WebSession(msgspec.Struct, frozen=True, kw_only=True):
    """One browser's state. `session_id` is what the cookie holds; it is not stored, only its digest."""

    session_id: str
    csrf_token: str
    account_id: str | None = None
    phone_enc: str | None = None  # the phone (FieldCipher "phone") a login code was sent to, until the login
    dev_code: str | None = None  # the code itself, only where the dev SMS adapter echoes it (never production)


class _Stored(msgspec.Struct, frozen=True, kw_only=True):
    csrf_token: str
    account_id: str | None = None
    phone_enc: str | None = None
    dev_code: str | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Stored)


def _key(session_id: str) -> str:
    return hashlib.sha256(f"websession:{session_id}".encode()).hexdigest()


async def _save(store: Store, session: WebSession) -> WebSession:
    stored = _Stored(csrf_token=session.csrf_token, account_id=session.account_id, phone_enc=session.phone_enc,
                     dev_code=session.dev_code)
    await store.set(_DOMAIN, _key(session.session_id), _encoder.encode(stored), ttl_seconds=SESSION_TTL_SECONDS)
    return session


async def start_session(*, store: Store) -> WebSession:
    """A new anonymous session (the page's first visit, or the cookie's session expired)."""
    return await _save(store, WebSession(session_id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32)))


async def load_session(*, store: Store, session_id: str | None) -> WebSession | None:
    """The session this cookie value names, or None (no cookie, expired, or never issued)."""
    if not session_id or len(session_id) > 128:
        return None
    raw = await store.get(_DOMAIN, _key(session_id))
    if raw is None:
        return None
    try:
        stored = _decoder.decode(raw)
    except msgspec.DecodeError:
        return None
    return WebSession(session_id=session_id, csrf_token=stored.csrf_token, account_id=stored.account_id,
                      phone_enc=stored.phone_enc, dev_code=stored.dev_code)


def csrf_matches(session: WebSession, token: str | None) -> bool:
    """Whether a form's CSRF token is this session's (constant-time)."""
    return bool(token) and hmac.compare_digest(session.csrf_token.encode(), (token or "").encode())


async def code_sent(*, store: Store, session: WebSession, phone_enc: str, dev_code: str | None) -> WebSession:
    """Remember where the login code went, for the step that checks it."""
    return await _save(store, msgspec.structs.replace(session, phone_enc=phone_enc, dev_code=dev_code))


async def logged_in(*, store: Store, session: WebSession, account_id: str) -> WebSession:
    """The session after a successful login: a new id and CSRF token, the old id forgotten."""
    await store.delete(_DOMAIN, _key(session.session_id))
    fresh = WebSession(session_id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32),
                       account_id=account_id)
    return await _save(store, fresh)


async def touch(*, store: Store, session: WebSession) -> WebSession:
    """Keep an active session alive for another `SESSION_TTL_SECONDS`."""
    return await _save(store, session)


async def end_session(*, store: Store, session_id: str) -> None:
    await store.delete(_DOMAIN, _key(session_id))
