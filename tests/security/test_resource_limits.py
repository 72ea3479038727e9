"""Resource limits: request bodies, page sizes, batch sizes and list filters are capped, and partners'
services that answer slowly or without end are cut off.

- A body over `XINYI_MAX_BODY_BYTES` (1 MB) is 413 problem+json. With `Content-Length` the answer is
  decided before a byte of the body is read; a chunked body is read only up to the limit. Both are
  proven with an ASGI `receive` that counts the chunks it handed out.
- Every list route is found from the app's routes: it takes a `limit` capped at 100 (or is named below
  as bounded by nature), refuses a larger one with 422, and refuses garbage filters with 4xx, never 5xx.
- Every request body type is bounded (lists, strings), found from the handlers' signatures.
- Every outbound client (SMS gateway, identity verifier, peer-city JWKS, webhook delivery) gives up on a
  local server that dribbles its answer or never ends it, and maps that to its problem or failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from api.context import AppContext
from core import pagination
from credit.tables import CreditRecord, OutboxEvent
from partners.adapters import HttpIdentityVerifier, JwksPeerCities
from partners.delivery import deliver_due
from partners.simulate import CityKeys
from partners.sms import HttpSmsGateway
from partners.ssrf import SafeHttpClient
from partners.tables import WebhookAttempt
from partners.webhooks import clear_webhook_endpoint, set_webhook_endpoint
from tests.factories import (
    Session,
    address,
    citizen_login,
    operator_session,
    partner_session,
    phone,
    record_row,
    registry_person,
)
from tests.lending_factories import data_source, owned_enterprise
from tests.scenario_factories import merchant_session

MAX_PAGE = pagination.MAX_PAGE  # the one cap every list route must keep
CHUNK = 64 * 1024
# Collections that are not paged because they cannot grow without bound, and why.
BOUNDED_BY_NATURE = {
    "/v1/purposes": "the fixed catalog of purposes",
    "/v1/credit-checks/business-types": "the fixed catalog of business types",
    "/v1/scenarios": "the six scenarios and their benefits (operators' catalog)",
    "/v1/admin/scenarios": "the scenario catalog",
    "/v1/admin/benefits": "the benefit catalog (operators' rules)",
    "/v1/admin/measures": "the joint reward and punishment catalog (operators' rules)",
    "/v1/me/benefits": "the active benefit catalog as it applies to one citizen",
    "/v1/enterprises": "the caller's own enterprises",
    "/v1/enterprises/{uscc}/members": "members the owner added to one enterprise",
    "/v1/me/notice-preferences": "one row per notice kind (the fixed catalog of kinds)",
}
# JWKs are dicts by nature (RFC 7517); each key is loaded and checked by the partner service.
FREE_FORM_BODY_FIELDS = {".jwks[]", ".keys[]"}


# ------------------------------------------------------------------ request bodies


class CountingBody:
    """An ASGI `receive` handing out `CHUNK`-byte pieces of an endless body; counts what was taken."""

    def __init__(self) -> None:
        self.taken = 0

    async def __call__(self) -> dict[str, Any]:
        self.taken += 1
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": True}


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def problem(self) -> dict[str, Any]:
        assert self.headers.get("content-type", "").startswith("application/problem+json"), self.headers
        decoded: dict[str, Any] = msgspec.json.decode(self.body)
        return decoded


async def _post_endless(app: Litestar, path: str, *, announce: int | None, headers: dict[str, str] | None = None
                        ) -> tuple[Answer, CountingBody]:
    """POST an endless body straight into the ASGI app, announced as `announce` bytes or chunked."""
    raw = [(b"host", b"testserver.local"), (b"content-type", b"application/json"),
           (b"x-forwarded-for", b"10.9.8.7")]
    raw.append((b"content-length", str(announce).encode()) if announce is not None
               else (b"transfer-encoding", b"chunked"))
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": raw,
             "client": ("10.9.8.7", 50000), "server": ("testserver.local", 80), "state": {}}
    body = CountingBody()
    answer = Answer()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    await app(scope, body, send)  # type: ignore[arg-type]
    return answer, body


@pytest.fixture(scope="module")
async def source(client: Any) -> Session:
    return await data_source(client)


def _limit(ctx: AppContext) -> int:
    return ctx.settings.max_body_bytes


@pytest.mark.parametrize("idempotency_key", [None, "limits-body-1"])
@pytest.mark.parametrize("path", ["/v1/auth/otp", "/v1/records/batch"])
async def test_an_announced_body_over_the_limit_is_refused_before_it_is_read(
        client: Any, ctx: AppContext, source: Session, path: str, idempotency_key: str | None) -> None:
    headers = {"Authorization": f"Bearer {source.access_token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = f"{idempotency_key}-{secrets.token_hex(4)}"
    answer, body = await _post_endless(client.app, path, announce=_limit(ctx) + 1, headers=headers)
    assert answer.status == 413
    assert answer.problem()["code"] == "payload_too_large"
    assert body.taken == 0


@pytest.mark.parametrize("idempotency_key", [None, "limits-body-2"])
@pytest.mark.parametrize("path", ["/v1/auth/otp", "/v1/records/batch"])
async def test_a_chunked_body_is_read_only_up_to_the_limit(
        client: Any, ctx: AppContext, source: Session, path: str, idempotency_key: str | None) -> None:
    before = await CreditRecord.count()
    headers = {"Authorization": f"Bearer {source.access_token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = f"{idempotency_key}-{secrets.token_hex(4)}"
    answer, body = await _post_endless(client.app, path, announce=None, headers=headers)
    assert answer.status == 413
    assert answer.problem()["code"] == "payload_too_large"
    # The chunk that crossed the limit is the last one taken.
    assert body.taken == _limit(ctx) // CHUNK + 1
    assert await CreditRecord.count() == before


async def test_a_body_within_the_limit_still_gets_through(client: Any, ctx: AppContext) -> None:
    # Just under 1 MB of valid JSON: the limit refuses size, not content.
    padding = " " * (_limit(ctx) - 100)
    r = await client.post("/v1/auth/otp", content=f'{{"phone": "{phone()}"{padding}}}'.encode(),
                          headers={"content-type": "application/json", "X-Forwarded-For": address()})
    assert r.status_code == 202, r.text


async def test_too_many_rows_in_a_batch_are_refused_and_nothing_lands(client: Any, ctx: AppContext,
                                                                     source: Session, override_settings: Any) -> None:
    person = await registry_person(ctx)
    rows = [record_row(person) for _ in range(4)]
    before = await CreditRecord.count()
    with override_settings(ingest_max_rows=3):
        for ndjson in (False, True):
            if ndjson:
                body = "\n".join(msgspec.json.encode(r).decode() for r in rows).encode()
                r = await client.post("/v1/records/batch", content=body,
                                      headers={**source.headers, "content-type": "application/x-ndjson"})
            else:
                r = await client.post("/v1/records/batch", headers=source.headers, json=rows)
            assert r.status_code == 422, r.text
            assert r.json()["code"] == "too_many_rows"
    assert await CreditRecord.count() == before


def _unbounded(t: mi.Type, where: str, seen: frozenset[type], found: list[str]) -> None:
    """Every list and string reachable from a request body type that declares no maximum."""
    if isinstance(t, mi.StructType):
        if t.cls not in seen:
            for f in t.fields:
                _unbounded(f.type, f"{where}.{f.name}", seen | {t.cls}, found)
    elif isinstance(t, mi.UnionType):
        for member in t.types:
            _unbounded(member, where, seen, found)
    elif isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        if t.max_length is None:
            found.append(f"{where} (list)")
        _unbounded(t.item_type, f"{where}[]", seen, found)
    elif isinstance(t, mi.DictType):
        if where not in FREE_FORM_BODY_FIELDS:
            found.append(f"{where} (dict)")
    elif isinstance(t, mi.StrType) and t.max_length is None and t.pattern is None:
        found.append(f"{where} (str)")
    elif isinstance(t, mi.AnyType) and not any(where.startswith(f) for f in FREE_FORM_BODY_FIELDS):
        found.append(f"{where} (any)")


def test_every_request_body_is_bounded(app: Litestar) -> None:
    """Batch sizes and string lengths are declared on every body type, so msgspec refuses more with 422."""
    unbounded: list[str] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is not None:
                found: list[str] = []
                _unbounded(mi.type_info(data.annotation), "", frozenset(), found)
                unbounded += [f"{sorted(handler.http_methods)} {route.path}: {f}" for f in found]
    assert unbounded == []


async def test_a_list_in_a_body_beyond_its_cap_is_422(client: Any) -> None:
    officer = await operator_session(client, role="officer")
    r = await client.post("/v1/admin/measures", headers=officer.headers, json={
        "code": f"m{secrets.token_hex(3)}", "name": "测试", "kind": "punishment", "list_code": "dishonest_executee",
        "mandatory": False, "business_types": [f"t{i}" for i in range(21)], "basis": "测试"})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"


# ------------------------------------------------------------------ list routes: page sizes and filters


@dataclass(frozen=True)
class ListRoute:
    path: str
    params: dict[str, dict[str, Any]]  # query parameter -> schema
    required: tuple[str, ...]

    @property
    def limit(self) -> dict[str, Any] | None:
        return self.params.get("limit")


def _schema_of(app: Litestar) -> dict[str, Any]:
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def _list_routes(app: Litestar) -> list[ListRoute]:
    """GET routes answering a collection: a top-level array, or an object whose `items` is one."""
    schema = _schema_of(app)
    components = schema["components"]["schemas"]
    routes = []
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        content = operation["responses"].get("200", {}).get("content", {})
        answer = next(iter(content.values()), {}).get("schema", {}) if content else {}
        if "$ref" in answer:
            answer = components[answer["$ref"].rsplit("/", 1)[-1]]
        items = answer.get("properties", {}).get("items", {})
        if answer.get("type") != "array" and "items" not in answer.get("required", []) and not items:
            continue
        query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        routes.append(ListRoute(path=path, params={p["name"]: p.get("schema", {}) for p in query},
                                required=tuple(p["name"] for p in query if p.get("required"))))
    return routes


def test_every_list_route_caps_its_page_size(app: Litestar) -> None:
    uncapped = []
    for route in _list_routes(app):
        if route.path in BOUNDED_BY_NATURE:
            continue
        limit = route.limit
        if limit is None or limit.get("minimum", 0) < 1 or not limit.get("maximum", 10**9) <= MAX_PAGE:
            uncapped.append(route.path)
    assert uncapped == [], "list routes without a capped `limit` (page them, or explain in BOUNDED_BY_NATURE)"
    assert len(_list_routes(app)) >= 30  # the discovery itself still finds the routes


@dataclass
class Callers:
    sessions: dict[str, dict[str, str]]
    uscc: str


@pytest.fixture(scope="module")
async def callers(client: Any, ctx: AppContext) -> Callers:
    owned = await owned_enterprise(client, ctx)
    _, _, bank = await partner_session(client, kind="bank")
    merchant = await merchant_session(client)
    source = await data_source(client)
    _, _, government = await partner_session(client, kind="government")
    sessions = {"anonymous": {}, "citizen": owned.headers, "bank": bank.headers, "merchant": merchant.headers,
                "data_source": source.headers, "government": government.headers}
    for role in ("officer", "partner_admin", "auditor"):
        sessions[role] = (await operator_session(client, role=role)).headers
    return Callers(sessions=sessions, uscc=owned.uscc)


async def _caller_for(client: Any, callers: Callers, route: ListRoute) -> tuple[str, dict[str, str], dict[str, str]]:
    """Someone who may read `route` (with a page of 1), the URL to read, and its required parameters."""
    url = route.path.replace("{uscc}", callers.uscc)
    base = {name: callers.uscc for name in route.required if name == "uscc"}
    tried = []
    for name, headers in callers.sessions.items():
        r = await client.get(url, headers=headers, params={**base, **({"limit": 1} if route.limit else {})})
        if r.status_code == 200:
            return url, headers, base
        tried.append(f"{name}: {r.status_code}")
    raise AssertionError(f"nobody may read {route.path} ({', '.join(tried)}): add a caller to the pool")


def _garbage_for(schema: dict[str, Any]) -> tuple[list[str], bool]:
    """Values a filter must refuse, and whether it is free text (where a miss may be an empty page)."""
    variants = [schema, *schema.get("oneOf", [])]
    types = {t for v in variants for t in (v.get("type") if isinstance(v.get("type"), list) else [v.get("type")])}
    if "integer" in types:
        return ["ten", "1.5", "-1", str(10**30), "\x00"], False
    if "boolean" in types:
        return ["maybe"], False
    if schema.get("enum") is not None:
        return ["not-a-value", "x" * 5000], False
    if any(v.get("format") == "date" for v in variants):
        return ["2026-13-45", "yesterday"], False
    return ["x" * 5000, "\x00", "' OR 1=1 --", "../../etc/passwd"], True


def _items(answer: Any) -> list[Any]:
    items: list[Any] = answer if isinstance(answer, list) else answer.get("items", [])
    return items


async def test_every_list_route_refuses_pages_over_the_cap_and_garbage_filters(client: Any, app: Litestar,
                                                                               callers: Callers) -> None:
    failures = []
    for route in _list_routes(app):
        url, headers, base = await _caller_for(client, callers, route)
        if route.limit is not None:
            for value in (str(route.limit["maximum"] + 1), "0", "-5", "lots", str(10**30)):
                r = await client.get(url, headers=headers, params={**base, "limit": value})
                if r.status_code != 422 or r.json().get("code") != "validation_failed":
                    failures.append(f"{route.path}?limit={value[:20]}: {r.status_code}")
        for name, schema in route.params.items():
            if name == "limit" or name in base:
                continue
            values, free_text = _garbage_for(schema)
            for value in values:
                r = await client.get(url, headers=headers, params={**base, name: value})
                # A free-text filter that matches nothing is an empty page; a cursor or a typed filter is 422.
                empty_page = r.status_code == 200 and free_text and name != "cursor" and not _items(r.json())
                if not (empty_page or r.status_code == 422):
                    failures.append(f"{route.path}?{name}={value[:20]!r}: {r.status_code}")
                elif r.status_code == 422:
                    assert r.headers["content-type"].startswith("application/problem+json")
    assert failures == [], "\n".join(failures)


# ------------------------------------------------------------------ partners' services that never finish


class MisbehavingServer:
    """A partner's HTTP service on 127.0.0.1 (asyncio, in the test's loop) that answers 200 and then:

    - `dribble`: one body byte every 20 ms, for ever (each read succeeds, so only a total deadline ends it);
    - `endless`: 64 KiB body chunks as fast as the client takes them, for ever (chunked);
    - `announced`: announces a 1 GiB `Content-Length` and sends 64 KiB chunks for ever;
    - `nested`: a complete, small JSON answer nested deeper than Python's parser goes (`[[[[…`).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> MisbehavingServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self.requests += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            if self.mode == "nested":
                body = b"[" * 8000
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
                await writer.drain()
                writer.close()
                return
            if self.mode == "announced":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            while True:
                if self.mode == "dribble":
                    writer.write(b"1\r\n \r\n")
                    await writer.drain()
                    await asyncio.sleep(0.02)
                elif self.mode == "endless":
                    writer.write(b"%x\r\n%s\r\n" % (CHUNK, b" " * CHUNK))
                    await writer.drain()
                else:
                    writer.write(b" " * CHUNK)
                    await writer.drain()
        writer.close()


@pytest.fixture
async def misbehaving(request: pytest.FixtureRequest) -> AsyncIterator[MisbehavingServer]:
    async with MisbehavingServer(request.param) as server:
        # A hang guard, not a timing assertion: every client below has a deadline far shorter than this.
        async with asyncio.timeout(60):
            yield server


MODES = ["dribble", "endless", "announced"]


async def _otp_through(client: Any, ctx: AppContext, monkeypatch: pytest.MonkeyPatch, *, url: str,
                       token: str | None) -> Any:
    """Ask for a login code while the app's SMS gateway is an HTTP gateway at `url`."""
    gateway = HttpSmsGateway(url=url, token=token, timeout_seconds=1.0)
    monkeypatch.setattr(ctx, "sms", gateway)
    try:
        return await client.post("/v1/auth/otp", json={"phone": phone()}, headers={"X-Forwarded-For": address()})
    finally:
        await gateway.close()


@pytest.mark.parametrize("misbehaving", MODES, indirect=True)
async def test_a_stalling_sms_gateway_is_a_503(client: Any, ctx: AppContext, misbehaving: MisbehavingServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    r = await _otp_through(client, ctx, monkeypatch, url=misbehaving.url("/sms"), token="t")
    assert misbehaving.requests == 1
    if misbehaving.mode == "dribble":
        # The status came, the body never ends: the deadline decides.
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "sms_unavailable"
    else:
        # A 200 followed by an endless body: the status is all we need, and reading stopped at the cap.
        assert r.status_code == 202, r.text


@pytest.mark.parametrize("misbehaving", MODES, indirect=True)
async def test_a_stalling_identity_verifier_is_a_503_and_nothing_is_bound(
        client: Any, ctx: AppContext, misbehaving: MisbehavingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = HttpIdentityVerifier(url=misbehaving.url("/verify"), token=None, timeout_seconds=1.0)
    monkeypatch.setattr(ctx, "identity", verifier)
    person = await registry_person(ctx, name="周慢")
    citizen = await citizen_login(client)
    try:
        r = await client.post("/v1/me/identity", headers=citizen.headers,
                              json={"name": person.name, "id_number": person.id_number})
    finally:
        await verifier.close()
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "identity_verifier_unavailable"
    me = await client.get("/v1/me", headers=citizen.headers)
    assert me.json()["identity"] is None


@pytest.mark.parametrize("misbehaving", MODES, indirect=True)
async def test_a_stalling_peer_city_jwks_is_a_503(client: Any, ctx: AppContext, misbehaving: MisbehavingServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import jwt

    from partners.adapters import PASSPORT_TYP

    issuer = f"https://slow-{secrets.token_hex(3)}.example"
    keys = CityKeys.generate()
    now = int(datetime.now(UTC).timestamp())
    passport = jwt.encode({"iss": issuer, "sub": "oid_x", "iat": now, "exp": now + 600, "tier": "AA"}, keys.private,
                          algorithm="EdDSA", headers={"kid": keys.kid, "typ": PASSPORT_TYP})
    monkeypatch.setattr(ctx, "peers", JwksPeerCities(peers={issuer: misbehaving.url("/jwks.json")},
                                                     allow_loopback=True, timeout_seconds=1.0))
    merchant = await merchant_session(client)
    r = await client.post("/v1/federation/passports/verify", headers=merchant.headers, json={"passport": passport})
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "passport_issuer_keys_unavailable"
    assert misbehaving.requests == 1


@pytest.mark.parametrize("misbehaving", MODES, indirect=True)
async def test_a_stalling_webhook_receiver_is_a_recorded_failure(client: Any, ctx: AppContext,
                                                                 misbehaving: MisbehavingServer,
                                                                 override_settings: Any) -> None:
    client_id, _, _ = await partner_session(client, kind="bank")
    with override_settings(webhook_allow_loopback=True, webhook_timeout_seconds=1.0):
        await set_webhook_endpoint(cipher=ctx.cipher, settings=ctx.settings, client_id=client_id,
                                   url=misbehaving.url("/hooks"))
        event = OutboxEvent(public_id=f"evt_limits{secrets.token_hex(8)}", topic="authorization.revoked",
                            aggregate_id="authz_limits", recipient=client_id,
                            payload={"type": "authorization.revoked"})
        await OutboxEvent.insert(event)
        try:
            await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
        finally:
            await clear_webhook_endpoint(client_id=client_id)
    attempt = await WebhookAttempt.select().where(WebhookAttempt.event_id == event.public_id).first()
    assert attempt is not None
    row = await OutboxEvent.select(OutboxEvent.status).where(OutboxEvent.public_id == event.public_id).first()
    assert row is not None
    if misbehaving.mode == "dribble":
        assert (attempt["status_code"], attempt["error"]) == (None, "timeout")
        assert row["status"] == "failed"
    else:
        # The receiver said 200; its endless answer was read up to the cap and no further.
        assert (attempt["status_code"], attempt["error"]) == (200, None)
        assert row["status"] == "delivered"


@pytest.mark.parametrize("misbehaving", MODES, indirect=True)
async def test_the_guarded_client_bounds_every_answer(misbehaving: MisbehavingServer) -> None:
    async with SafeHttpClient(allow_loopback=True, timeout_seconds=1.0, max_response_bytes=CHUNK) as http:
        posted = await http.post(misbehaving.url(), content=b"{}", headers={})
        fetched, document = await http.get_json(misbehaving.url())
    assert document is None
    if misbehaving.mode == "dribble":
        assert (posted.error, fetched.error) == ("timeout", "timeout")
    else:
        assert posted.ok
        assert fetched.error == "response_too_large"


async def test_an_answer_nested_too_deep_is_no_answer_not_a_500(client: Any, ctx: AppContext,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A few KB of `[[[[…` make `json.loads` raise RecursionError, not ValueError: still no verdict, no keys."""
    person = await registry_person(ctx, name="周深")
    citizen = await citizen_login(client)
    async with MisbehavingServer("nested") as server:
        async with SafeHttpClient(allow_loopback=True, timeout_seconds=1.0, max_response_bytes=CHUNK) as http:
            fetched, document = await http.get_json(server.url("/jwks.json"))
        verifier = HttpIdentityVerifier(url=server.url("/verify"), token=None, timeout_seconds=1.0)
        monkeypatch.setattr(ctx, "identity", verifier)
        try:
            r = await client.post("/v1/me/identity", headers=citizen.headers,
                                  json={"name": person.name, "id_number": person.id_number})
        finally:
            await verifier.close()
    assert (fetched.status_code, fetched.error, document) == (200, "invalid_json", None)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "identity_verifier_unavailable"
    assert (await client.get("/v1/me", headers=citizen.headers)).json()["identity"] is None


async def test_a_refused_connection_is_a_failure_not_a_hang(client: Any, ctx: AppContext,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    async with MisbehavingServer("dribble") as server:
        url = server.url("/sms")
    r = await _otp_through(client, ctx, monkeypatch, url=url, token=None)  # nothing listens there any more
    assert r.status_code == 503
    assert r.json()["code"] == "sms_unavailable"

