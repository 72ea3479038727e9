"""Test data builders: valid identities, registry persons, partners, operators and logged-in callers."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from redis import asyncio as redis_asyncio
from stdnum.cn import ric, uscc

from accounts.operators import create_operator
from api.context import AppContext
from core.store import MemoryStore, StoreUnavailable
from credit.identity import new_public_id
from credit.tables import Person
from partners.services import create_partner

_rng = random.Random()


def id_number(*, region: str = "330402", birth: str = "19900101") -> str:
    """A valid 18-digit 公民身份号码 (unique enough for tests)."""
    body = region + birth + f"{_rng.randrange(1000):03d}"
    return body + ric.calc_check_digit(body + "0")


def uscc_number(region: str = "330402") -> str:
    body = "91" + region + "".join(_rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + uscc.calc_check_digit(body + "0")


def phone() -> str:
    return "1" + _rng.choice("3456789") + f"{_rng.randrange(10**9):09d}"


def address() -> str:
    return f"10.{_rng.randrange(256)}.{_rng.randrange(256)}.{_rng.randrange(1, 255)}"


@dataclass
class RegistryPerson:
    public_id: str
    name: str
    id_number: str


async def registry_person(ctx: AppContext, *, name: str = "张三") -> RegistryPerson:
    """Insert a person into the citizen registry (as the identity data source would)."""
    while True:
        # Vary the birth date too: one date alone allows only 1,000 distinct numbers.
        # (Region 330402 exists from 1983 on, so birth years start there.)
        number = id_number(birth=f"{_rng.randrange(1984, 2006)}{_rng.randrange(1, 13):02d}{_rng.randrange(1, 29):02d}")
        h = ctx.cipher.lookup_hash("id_number", number)
        if not await Person.exists().where(Person.id_number_hash == h):
            break
    public_id = new_public_id("psn")
    await Person.insert(Person(public_id=public_id, name=name, id_number_hash=h,
                               id_number_enc=ctx.cipher.encrypt("id_number", number), gender="M",
                               birth_date=date(1990, 1, 1), region_code=number[:6]))
    return RegistryPerson(public_id=public_id, name=name, id_number=number)


@dataclass
class Session:
    phone: str
    access_token: str
    refresh_token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def citizen_login(client: Any, *, number: str | None = None) -> Session:
    """OTP login through HTTP, reading the code from the dev SMS adapter."""
    number = number or phone()
    addr = {"X-Forwarded-For": address()}
    sent = await client.post("/v1/auth/otp", json={"phone": number}, headers=addr)
    assert sent.status_code == 202, sent.text
    sms = client.app.state.ctx.sms
    message = sms.last_to(number)
    code = message.text.split("验证码 ")[1][:6]
    assert sent.json()["dev_code"] == code
    token = await client.post("/v1/auth/token", json={"grant_type": "otp", "phone": number, "code": code},
                              headers=addr)
    assert token.status_code == 200, token.text
    body = token.json()
    return Session(phone=number, access_token=body["access_token"], refresh_token=body.get("refresh_token"))


async def partner_session(client: Any, *, kind: str = "bank", scopes: list[str] | None = None,
                          name: str | None = None) -> tuple[str, str, Session]:
    issued = await create_partner(name=name or f"partner {secrets.token_hex(3)}", kind=kind, scopes=scopes)
    token = await client.post("/v1/auth/token", json={
        "grant_type": "client_credentials", "client_id": issued.client_id, "client_secret": issued.client_secret})
    assert token.status_code == 200, token.text
    assert issued.client_secret is not None
    return issued.client_id, issued.client_secret, Session(phone="", access_token=token.json()["access_token"],
                                                           refresh_token=None)


async def operator_session(client: Any, *, role: str = "officer") -> Session:
    username, password = f"op-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    await create_operator(username=username, password=password, role=role)
    token = await client.post("/v1/auth/token", json={"grant_type": "password", "username": username,
                                                      "password": password})
    assert token.status_code == 200, token.text
    body = token.json()
    return Session(phone="", access_token=body["access_token"], refresh_token=body["refresh_token"])


async def add_record(ctx: AppContext, person: RegistryPerson, *, category: str = "contract_default",
                     severity: str | None = None, days_ago: int = 10, status: str = "active") -> str:
    """Insert a credit record for `person` as a data source would."""
    from datetime import UTC, datetime, timedelta

    from credit.catalog import CATEGORIES
    from credit.tables import CreditRecord

    entry = CATEGORIES[category]
    pid = (await Person.select(Person._meta.primary_key).where(Person.public_id == person.public_id).first())["id"]
    public_id = new_public_id("rec")
    await CreditRecord.insert(CreditRecord(
        public_id=public_id, subject_kind="person", person=pid, category=category, polarity=entry.polarity,
        severity=severity or entry.default_severity, dimension=entry.dimension, title=entry.name,
        source="test-source", source_ref=public_id, occurred_at=datetime.now(UTC) - timedelta(days=days_ago),
        status=status))
    return public_id


@dataclass
class Citizen:
    person: RegistryPerson
    session: Session

    @property
    def headers(self) -> dict[str, str]:
        return self.session.headers


async def bound_citizen(client: Any, ctx: AppContext, *, name: str = "陈一") -> Citizen:
    """A registry person who has logged in and bound their identity."""
    person = await registry_person(ctx, name=name)
    session = await citizen_login(client)
    bound = await client.post("/v1/me/identity", headers=session.headers,
                              json={"name": name, "id_number": person.id_number})
    assert bound.status_code == 200, bound.text
    return Citizen(person=person, session=session)


async def authorization_for(client: Any, partner: Session, citizen: Citizen, *, purpose: str = "loan_pre_approval",
                            scopes: list[str] | None = None, approve: bool = True, validity_days: int = 30) -> str:
    """A partner asks; the citizen approves (unless told not to). Returns the authorization id."""
    r = await client.post("/v1/authorizations", headers=partner.headers, json={
        "subject": {"kind": "person", "id_number": citizen.person.id_number, "name": citizen.person.name},
        "purpose": purpose, "scopes": scopes or ["tier", "score"], "validity_days": validity_days})
    assert r.status_code == 201, r.text
    authorization_id = str(r.json()["id"])
    if approve:
        a = await client.post(f"/v1/me/authorizations/{authorization_id}/approve", headers=citizen.headers)
        assert a.status_code == 200, a.text
    return authorization_id


# ---------------------------------------------------------------- data-source ingest and credit checks


@dataclass
class RegistryEnterprise:
    public_id: str
    name: str
    uscc: str


async def registry_enterprise(ctx: AppContext, *, name: str | None = None) -> RegistryEnterprise:
    """Insert an enterprise into the registry (as the market regulator's data source would)."""
    from credit.tables import Enterprise

    while True:
        code = uscc_number()
        h = ctx.cipher.lookup_hash("uscc", code)
        if not await Enterprise.exists().where(Enterprise.uscc_hash == h):
            break
    public_id = new_public_id("ent")
    name = name or f"嘉兴{secrets.token_hex(3)}有限公司"
    await Enterprise.insert(Enterprise(public_id=public_id, name=name, uscc_hash=h,
                                       uscc_enc=ctx.cipher.encrypt("uscc", code), industry="C",
                                       region_code=code[2:8], registered_on=date(2015, 6, 1)))
    return RegistryEnterprise(public_id=public_id, name=name, uscc=code)


def record_row(subject: RegistryPerson | RegistryEnterprise, *, source_ref: str | None = None,
               category: str = "contract_default", title: str = "合同违约", days_ago: int = 10,
               **extra: Any) -> dict[str, Any]:
    """One ingest row about `subject` (a person by id number and name, an enterprise by USCC)."""
    from datetime import UTC, datetime, timedelta

    subj: dict[str, Any] = ({"kind": "person", "id_number": subject.id_number, "name": subject.name}
                            if isinstance(subject, RegistryPerson) else {"kind": "enterprise", "uscc": subject.uscc})
    occurred = (datetime.now(UTC) - timedelta(days=days_ago)).replace(microsecond=0).isoformat()
    return {"source_ref": source_ref or f"ref-{secrets.token_hex(6)}", "subject": subj, "category": category,
            "title": title, "occurred_at": occurred, **extra}


async def push_records(client: Any, source: Session, rows: list[Any], *, ndjson: bool = False) -> Any:
    """POST /v1/records/batch as a JSON array, or as NDJSON (rows given as str are sent verbatim)."""
    import json

    if not ndjson:
        return await client.post("/v1/records/batch", headers=source.headers, json=rows)
    body = "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    return await client.post("/v1/records/batch", content=body.encode(),
                             headers={**source.headers, "content-type": "application/x-ndjson"})


# ------------------------------------------------------------------ webhook receivers (real HTTP on loopback)


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1, in a background thread, standing in for a partner's endpoint.

    Answers POSTs with the scripted `statuses` in turn (then `default`), optionally with a `location`
    header (redirects), a `delay` before answering, or `body_bytes` of response body; records every request.
    """

    def __init__(self, *, statuses: list[int] | None = None, default: int = 204, location: str | None = None,
                 delay: float = 0.0, body_bytes: int = 0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses = list(statuses or [])
        self.default = default
        self.location = location
        self.delay = delay
        self.body_bytes = body_bytes
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import time

                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append(ReceivedRequest(path=self.path, headers=headers, body=body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", str(receiver.body_bytes))
                self.end_headers()
                try:
                    for _ in range(receiver.body_bytes // 65536):
                        self.wfile.write(b"x" * 65536)
                    self.wfile.write(b"x" * (receiver.body_bytes % 65536))
                except OSError:
                    pass  # the client stopped reading (response cap): expected

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook", *, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------- losing the store


async def empty_store(ctx: AppContext) -> None:
    """Make the store lose everything, as a Redis restarted without persistence (or flushed) does: every key of
    this run's namespace is deleted (the shared Redis also serves other runs, so no FLUSHALL)."""
    store = ctx.store
    if isinstance(store, MemoryStore):
        store.clear()
        return
    assert ctx.settings.redis_url is not None
    redis = redis_asyncio.from_url(ctx.settings.redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{ctx.settings.redis_namespace}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@dataclass
class RevokedTokens:
    """Three access tokens revoked three ways, each refused with 401 `token_revoked`; `route` is where each is
    presented (a citizen route for citizens, a partner route for the bank)."""

    citizen: Session  # revoked by POST /v1/auth/revoke
    bank: Session  # a partner token revoked by POST /v1/auth/revoke
    family: Session  # the access token of a refresh family revoked because its refresh token was reused

    def calls(self) -> dict[str, tuple[str, str, dict[str, str]]]:
        """name: (method, path, headers) of a request each token would be answered 200 on, were it not revoked."""
        return {"citizen": ("GET", "/v1/me", self.citizen.headers),
                "bank": ("GET", "/v1/partners/me", self.bank.headers),
                "refresh family": ("GET", "/v1/me", self.family.headers)}


async def revoke_three_tokens(client: Any, *, via: Any | None = None) -> RevokedTokens:
    """Log in a citizen twice and a bank once (through `client`), then revoke the three ways (through `via`, the
    server under test, or `client`)."""
    via = via or client
    citizen = await citizen_login(client)
    bank_id, bank_secret, bank = await partner_session(client, kind="bank")
    session = await citizen_login(client)
    rotated = await via.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                     "refresh_token": session.refresh_token})
    assert rotated.status_code == 200, rotated.text
    family = Session(phone=session.phone, access_token=rotated.json()["access_token"],
                     refresh_token=rotated.json()["refresh_token"])
    r = await via.post("/v1/auth/revoke", json={"token": citizen.access_token})
    assert r.status_code == 200, r.text
    # A partner's token is revoked with the partner's own client authentication (RFC 7009 §2.1).
    r = await via.post("/v1/auth/revoke", json={"token": bank.access_token}, auth=(bank_id, bank_secret))
    assert r.status_code == 200, r.text
    reuse = await via.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                   "refresh_token": session.refresh_token})
    assert reuse.json().get("code") == "refresh_token_reused", reuse.text
    return RevokedTokens(citizen=citizen, bank=bank, family=family)


@contextmanager
def score_cache_lost(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While open, writing a score to the store fails as it does when Redis is lost (`StoreUnavailable`).

    A fault for the instant between a commit and the re-scoring after it: the change is committed, the cached
    score every reader sees stays the old one and the caller is answered 503. A real Redis outage cannot be
    timed to fall exactly there, hence this hook on the one call; everything else runs for real.
    """
    real_set = ctx.store.set

    async def failing_set(domain: str, key: str, value: bytes, *, ttl_seconds: int | None = None) -> None:
        if domain == "score":
            raise StoreUnavailable("redis connection lost")
        await real_set(domain, key, value, ttl_seconds=ttl_seconds)

    with monkeypatch.context() as patch:
        patch.setattr(ctx.store, "set", failing_set)
        yield
