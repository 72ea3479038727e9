"""Schemathesis against the app in this event loop, with a caller of the right kind for every operation.

Schemathesis' own ASGI transport runs the app on a portal thread with an event loop of its own (and
its lifespan), which the session's database pool cannot follow. Here Hypothesis runs in a worker thread
instead, and every request it makes (including those checks replay, such as `ignored_auth`) goes through a
`requests` adapter that hands it to the tests' `httpx` client on the session's loop and waits for the answer.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any

import httpx
import requests
import requests.adapters
import schemathesis
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from requests.structures import CaseInsensitiveDict
from schemathesis import BaseSchema
from schemathesis.transport.requests import REQUESTS_TRANSPORT, RequestsTransport
from urllib3 import HTTPHeaderDict, HTTPResponse

from api import guards

BASE_URL = "http://testserver.local"
_REQUEST_TIMEOUT = 60.0


class LoopAdapter(requests.adapters.BaseAdapter):
    """A `requests` transport that sends through an `httpx.AsyncClient` running on another thread's loop."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._client = client
        self._loop = loop

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Send `request` on the loop (stream, timeout, TLS and proxy settings mean nothing in-process)."""
        body = request.body.encode() if isinstance(request.body, str) else request.body
        sent = self._client.request(str(request.method), str(request.url), headers=dict(request.headers),
                                    content=body)
        answer = asyncio.run_coroutine_threadsafe(sent, self._loop).result(_REQUEST_TIMEOUT)
        headers = HTTPHeaderDict()
        for name, value in answer.headers.multi_items():
            headers.add(name, value)
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.reason_phrase
        response.headers = CaseInsensitiveDict(headers)
        # Schemathesis reads the headers (every value of each) from the urllib3 response underneath.
        response.raw = HTTPResponse(body=b"", headers=headers, status=answer.status_code, version=11,
                                    preload_content=False)
        response._content = answer.content
        response.encoding = answer.encoding
        response.url = str(request.url)
        response.request = request
        return response

    def close(self) -> None:
        return


def loop_session(client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> requests.Session:
    session = requests.Session()
    session.mount(BASE_URL, LoopAdapter(client, loop))
    return session


class _SessionTransport(RequestsTransport):
    """Schemathesis' `requests` transport, defaulting to one session (checks' probes are sent without one)."""

    def __init__(self, session: requests.Session) -> None:
        super().__init__()
        self._copy_serializers_from(REQUESTS_TRANSPORT)
        self._session = session

    def send(self, case: Any, *, session: requests.Session | None = None, **kwargs: Any) -> Any:
        return super().send(case, session=session or self._session, **kwargs)


def load_schema(raw: dict[str, Any], session: requests.Session) -> BaseSchema:
    """Our OpenAPI document as a Schemathesis schema whose every request, probes included, goes to `session`.

    A schema picks its transport from its `app` (none: plain `requests`, which would look the test host up
    on the network); a subclass that returns ours instead is the one seam Schemathesis 4 leaves for that.
    """
    schema = schemathesis.openapi.from_dict(raw)
    # Bearer tokens come from the fixtures, not the generator. Query parameters the schema does not name
    # are ignored by the API (as HTTP APIs commonly do), so they are no "invalid input" to expect a 4xx for.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    transport = _SessionTransport(session)

    class BoundSchema(type(schema)):  # type: ignore[misc]
        @property
        def transport(self) -> RequestsTransport:
            return transport

    schema.__class__ = BoundSchema
    return schema


# ------------------------------------------------------------------ who may call each operation


@dataclass(frozen=True)
class Caller:
    """The principal an operation's guard admits: kind plus the partner scope or operator role it needs."""

    kind: str  # "citizen", "partner", "operator"
    need: str | None = None  # partner scope or operator role


def _caller_of(handler: HTTPRouteHandler) -> Caller | None:
    """Read the guards of `handler`: `citizen`, `any_partner`, `partner(scope)` or `operator(*roles)`."""
    for guard in handler.resolve_guards():
        if guard is guards.citizen:
            return Caller("citizen")
        if guard is guards.any_partner:
            return Caller("partner")
        owner = getattr(guard, "__qualname__", "").split(".<locals>")[0]
        captured = inspect.getclosurevars(guard).nonlocals  # type: ignore[arg-type]
        if owner == guards.partner.__qualname__:
            return Caller("partner", str(captured["scope"]))
        if owner == guards.operator.__qualname__:
            return Caller("operator", str(captured["roles"][0]))
    return None


def callers_by_operation(app: Litestar) -> dict[tuple[str, str], Caller | None]:
    """(METHOD, path template) → the caller its guard admits (None for public operations)."""
    callers: dict[tuple[str, str], Caller | None] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                callers[(method.upper(), route.path_format)] = _caller_of(handler)
    return callers
