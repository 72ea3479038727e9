"""`Idempotency-Key` on POST requests (DESIGN §4 conventions).

An empty or over-long key is a 422 `invalid_idempotency_key`, decided after the route's guards (authentication
first). Same key + same body → the first answer again (status, body and content type), without running the
handler twice. Same key + another body → 422 `idempotency_key_reused`. Same key while the first
request is still running → 409 `idempotency_request_in_progress`. Keys are scoped to the caller (the
token's subject, or the client address for anonymous calls) and the route, and live 24 hours in the
shared store, so a retry that lands on another worker gets the same answer.

Only answers the request itself earned are remembered: not a 5xx (a failed dependency), nor a
401/403/409/429 (authentication, limits, contention), which a retry may rightly get past, nor a handler's
own 422 `idempotency_key_reused` (a service that found the key already used by another request, e.g. a
redemption whose first answer was lost): remembering it would lock the key's true request out of its answer. Token
endpoints (`/v1/auth/…`) are left out entirely: their answers are secrets that must never be stored
or replayed, and their grants are single-use by design.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from api.problems import PROBLEM_JSON, Problem
from core.errors import DomainError
from core.store import Store, StoreUnavailable

TTL_SECONDS = 24 * 3600
IN_FLIGHT_TTL_SECONDS = 60
MAX_KEY_LENGTH = 200
_IN_FLIGHT = b"in-flight"
_NOT_REMEMBERED = frozenset({401, 403, 409, 429})
_EXCLUDED_PREFIXES = ("/v1/auth/",)
_INVALID_KEY = "invalid_idempotency_key"
KEY_REUSED = "idempotency_key_reused"


class _Stored(msgspec.Struct):
    fingerprint: str
    status: int
    content_type: str
    body: bytes


_encoder = msgspec.json.Encoder()


async def _send_problem(send: Send, *, status: int, code: str, title: str, retry_after: int | None = None) -> None:
    body = _encoder.encode(Problem(type=f"https://xinyi.local/problems/{code}", title=title, status=status,
                                   code=code))
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)


def _caller(scope: Scope, headers: dict[bytes, bytes]) -> str:
    authorization = headers.get(b"authorization", b"")
    if authorization:
        ctx = scope["app"].state.ctx
        try:
            principal = ctx.tokens.verify(authorization.decode().partition(" ")[2].strip())
        except Exception:
            return "invalid"
        return f"{principal.kind}:{principal.subject}"
    client = scope.get("client")
    return f"anon:{client[0] if client else 'unknown'}"


async def _read_body(receive: Receive, *, limit: int) -> bytes | None:
    """The whole request body, or None once it grows past `limit` (never buffer more than that)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _replay(send: Send, stored: _Stored) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start", "status": stored.status,
        "headers": [(b"content-type", stored.content_type.encode()),
                    (b"content-length", str(len(stored.body)).encode()), (b"idempotent-replayed", b"true")]}
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": stored.body, "more_body": False}
    await send(start)
    await send(end)


class _ProblemCode(msgspec.Struct):
    code: str = ""


def _is_key_reused(content_type: str, body: bytes) -> bool:
    if not content_type.startswith(PROBLEM_JSON):
        return False
    try:
        return msgspec.json.decode(body, type=_ProblemCode).code == KEY_REUSED
    except msgspec.DecodeError:
        return False


async def _run_and_remember(app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, body: bytes,
                            store: Store, slot: str, fingerprint: str) -> None:
    """Run the request once, passing the answer through, then remember it under `slot`."""
    delivered = False

    async def replay_receive() -> ReceiveMessage:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    status, content_type, parts = 500, "application/json", []

    async def capture_send(message: Message) -> None:
        nonlocal status, content_type
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    content_type = value.decode()
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
        await send(message)

    try:
        await app(scope, replay_receive, capture_send)
    except BaseException:
        await store.delete("idem", slot)
        raise
    body = b"".join(parts)
    if status >= 500 or status in _NOT_REMEMBERED or (status == 422 and _is_key_reused(content_type, body)):
        await store.delete("idem", slot)
        return
    stored = _Stored(fingerprint=fingerprint, status=status, content_type=content_type, body=body)
    await store.set("idem", slot, _encoder.encode(stored), ttl_seconds=TTL_SECONDS)


class InvalidIdempotencyKey(DomainError):
    status, code, title = 422, "invalid_idempotency_key", "Idempotency-Key must be 1-200 characters"


async def refuse_invalid_key(request: Request[Any, Any, Any]) -> None:
    """A `before_request` step (it runs after the guards): refuse the request whose Idempotency-Key the
    middleware found empty or too long."""
    if request.scope.get("state", {}).get(_INVALID_KEY):
        raise InvalidIdempotencyKey


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware factory (Litestar `middleware=[...]`)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        is_post = (scope["type"] == ScopeType.HTTP and scope.get("method") == "POST"
                   and not scope["path"].startswith(_EXCLUDED_PREFIXES))
        headers = dict(scope["headers"]) if is_post else {}
        key = headers.get(b"idempotency-key")
        if key is None:
            await app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            # Refused by `refuse_invalid_key` once the route's guards have passed: a caller without credentials
            # learns that first (401), whatever its headers.
            scope.setdefault("state", {})[_INVALID_KEY] = True
            await app(scope, receive, send)
            return
        ctx = scope["app"].state.ctx
        limit = ctx.settings.max_body_bytes
        announced = headers.get(b"content-length", b"")
        # An announced size over the limit is refused before a byte is read; an unannounced (chunked)
        # body is read only up to the limit.
        body = None if announced.isdigit() and int(announced) > limit else await _read_body(receive, limit=limit)
        if body is None:
            await _send_problem(send, status=413, code="payload_too_large", title="Request body too large")
            return
        fingerprint = hashlib.sha256(scope["path"].encode() + b"\0" + body).hexdigest()
        store: Store = ctx.store
        slot = hashlib.sha256(f"{_caller(scope, headers)}\0{scope['path']}\0".encode() + key).hexdigest()
        try:
            claimed = await store.set_if_absent("idem", slot, _IN_FLIGHT, ttl_seconds=IN_FLIGHT_TTL_SECONDS)
            existing = None if claimed else await store.get("idem", slot)
        except StoreUnavailable:
            # Without the store a retry could run twice: fail closed.
            await _send_problem(send, status=503, code="store_unavailable",
                                title="The shared store is unavailable", retry_after=5)
            return
        if claimed:
            await _run_and_remember(app, scope, receive, send, body=body, store=store, slot=slot,
                                    fingerprint=fingerprint)
        elif existing is None or existing == _IN_FLIGHT:
            await _send_problem(send, status=409, code="idempotency_request_in_progress",
                                title="A request with this Idempotency-Key is still running", retry_after=1)
        else:
            stored = msgspec.json.decode(existing, type=_Stored)
            if stored.fingerprint != fingerprint:
                await _send_problem(send, status=422, code=KEY_REUSED,
                                    title="This Idempotency-Key was used with a different request")
            else:
                await _replay(send, stored)

    return middleware
