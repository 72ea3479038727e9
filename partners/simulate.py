"""Simulated partners for the demo and for manual testing, talking real HTTP on loopback.

- A bank: receives this API's webhooks, verifies their Standard Webhooks signatures with the signing
  secret the operator gave it (bad or missing signatures are a 401), acknowledges duplicates without
  acting twice (deliveries are at least once), and prints each verified event type. Reactions to events
  are looked up in `BANK_HANDLERS`: a submitted loan application is decided from the applicant's portrait.
- WeChat: the access-token and subscribe-message endpoints of the mini-program API, told to refuse the next N
  sends when a test or the demo wants to watch notices being retried.
- A peer city: its own Ed25519 key, published at `/.well-known/jwks.json`, and a stub that signs a
  credit passport (a JWS) for any open id, so mutual recognition can be exercised against real keys.

All are small Litestar apps; `xinyi simulate bank|city` serves them with granian (`serve_wechat` the
WeChat one). Granian imports its target in the worker, so the command line's settings reach the app
through `XINYI_SIM_*` variables of this process (never printed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from granian.constants import Interfaces
from granian.server import Server
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter, QueryParameter

from partners.webhooks import WebhookVerificationError, verify

PASSPORT_TYP = "credit-passport+jwt"
PASSPORT_TTL_SECONDS = 3600
_SEEN_CAPACITY = 10_000


# ------------------------------------------------------------------ bank


class PartnerApi:
    """The simulated bank's client of this API (client_credentials), for handlers that call back."""

    def __init__(self, *, base_url: str, client_id: str, client_secret: str) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=10.0)
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: str | None = None
        self._token_expires = 0.0

    async def token(self) -> str:
        if self._token is None or time.monotonic() >= self._token_expires:
            answer = await self._client.post("/v1/auth/token", json={
                "grant_type": "client_credentials", "client_id": self._client_id,
                "client_secret": self._client_secret})
            answer.raise_for_status()
            body = answer.json()
            self._token = str(body["access_token"])
            self._token_expires = time.monotonic() + float(body.get("expires_in", 300)) - 30
        return self._token

    async def call(self, method: str, path: str, *, json_body: Any = None) -> httpx.Response:
        return await self._client.request(method, path, json=json_body,
                                          headers={"Authorization": f"Bearer {await self.token()}"})

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass
class BankState:
    webhook_secret: str
    api: PartnerApi | None = None
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    received: list[dict[str, Any]] = field(default_factory=list)  # verified events, for tests and the demo

    def first_time(self, event_id: str) -> bool:
        if event_id in self.seen:
            return False
        self.seen[event_id] = None
        if len(self.seen) > _SEEN_CAPACITY:
            self.seen.popitem(last=False)
        return True


EventHandler = Callable[[BankState, dict[str, Any]], Awaitable[None]]


async def _print_event(state: BankState, event: dict[str, Any]) -> None:
    data = event.get("data") or {}
    print(f"bank: {event.get('type')} {event.get('id')} authorization={data.get('authorization_id')}", flush=True)


async def decide_loan_application(state: BankState, event: dict[str, Any]) -> None:
    """信易贷: pull the applicant's portrait under the authorization the enterprise gave with its application,
    then approve grade A/B (the demand's amount and term; A at the product's lowest rate, B 0.5 % above,
    within the product's range) and reject anything else with a reason. Without API credentials it only
    prints the event."""
    data = event.get("data") or {}
    application_id = str(data.get("application_id") or "")
    if state.api is None or not application_id:
        return
    enterprise = data.get("enterprise") or {}
    demand = data.get("demand") or {}
    product = data.get("product") or {}
    answer = await state.api.call(
        "GET", f"/v1/portraits/{enterprise.get('uscc')}?authorization_id={data.get('authorization_id')}"
               "&purpose=loan_application")
    grade = answer.json().get("portrait", {}).get("grade") if answer.status_code == 200 else None
    decision: dict[str, Any]
    if grade in ("A", "B"):
        rate = int(product.get("rate_min_bp") or 435) + (0 if grade == "A" else 50)
        rate = min(rate, int(product.get("rate_max_bp") or rate))
        decision = {"status": "approved", "amount_fen": demand.get("amount_fen"),
                    "term_months": demand.get("term_months"), "rate_bp": rate,
                    "note": f"企业信用画像{grade}级，自动审批通过"}
    elif grade is None:
        decision = {"status": "rejected", "reason": f"未能读取企业信用画像（HTTP {answer.status_code}）"}
    else:
        decision = {"status": "rejected", "reason": f"企业信用画像{grade}级，未达到本行审批要求（A/B级）"}
    posted = await state.api.call("POST", f"/v1/lending/applications/{application_id}/decisions",
                                  json_body=decision)
    print(f"bank: decided {application_id} {decision['status']} grade={grade} http={posted.status_code}",
          flush=True)


# Extension point: what the bank does per event type. Types without a handler are only printed.
BANK_HANDLERS: dict[str, EventHandler] = {
    "lending.application.submitted": decide_loan_application,
}


def bank_app(*, webhook_secret: str, api: PartnerApi | None = None,
             handlers: Mapping[str, EventHandler] | None = None) -> Litestar:
    """The simulated bank's webhook receiver (POST /webhooks)."""
    state = BankState(webhook_secret=webhook_secret, api=api)
    table = dict(BANK_HANDLERS if handlers is None else handlers)

    @post("/webhooks", status_code=200)
    async def receive(request: Request[Any, Any, Any]) -> Response[Any]:
        body = await request.body()
        try:
            event = verify(secret=state.webhook_secret, body=body, headers=dict(request.headers))
        except WebhookVerificationError:
            print("bank: refused a delivery with a bad signature", flush=True)
            return Response({"error": "invalid signature"}, status_code=401)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            return Response({"error": "not an event"}, status_code=400)
        if state.first_time(event["id"]):
            state.received.append(event)
            await _print_event(state, event)
            handler = table.get(str(event.get("type")))
            if handler is not None:
                await handler(state, event)
        return Response(None, status_code=204)

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def close_api() -> None:
        if state.api is not None:
            await state.api.aclose()

    return Litestar(route_handlers=[receive, health], state=State({"bank": state}), on_shutdown=[close_api],
                    request_max_body_size=1024 * 1024, debug=False)


def bank_app_from_env() -> Litestar:
    """Granian factory: the bank configured by `serve_bank` through the environment."""
    api_url = os.environ.get("XINYI_SIM_API")
    client_id = os.environ.get("XINYI_SIM_CLIENT_ID")
    client_secret = os.environ.get("XINYI_SIM_CLIENT_SECRET")
    api = PartnerApi(base_url=api_url, client_id=client_id, client_secret=client_secret) \
        if api_url and client_id and client_secret else None
    return bank_app(webhook_secret=os.environ["XINYI_SIM_WEBHOOK_SECRET"], api=api)


# ------------------------------------------------------------------ peer city


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class CityKeys:
    private: Ed25519PrivateKey
    kid: str
    jwk: dict[str, str]

    @classmethod
    def generate(cls) -> CityKeys:
        private = Ed25519PrivateKey.generate()
        x = _b64url(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        # RFC 7638 thumbprint as the key id: stable for the key, meaningless otherwise.
        thumbprint = _b64url(hashlib.sha256(
            json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True).encode()
        ).digest())
        return cls(private=private, kid=thumbprint,
                   jwk={"kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint, "alg": "EdDSA", "use": "sig"})


_TIERS = ("AAA", "AA", "A", "B", "C")
OpenId = Annotated[str, Parameter(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def city_app(*, issuer: str, keys: CityKeys | None = None) -> Litestar:
    """The simulated peer city: JWKS and a credit passport stub."""
    city = keys or CityKeys.generate()

    @get("/.well-known/jwks.json")
    async def jwks() -> dict[str, list[dict[str, str]]]:
        return {"keys": [city.jwk]}

    @get("/passports/{open_id:str}")
    async def passport(open_id: OpenId) -> dict[str, str]:
        # Stub: a deterministic tier per open id stands in for the peer city's own scoring.
        tier = _TIERS[hashlib.sha256(open_id.encode()).digest()[0] % len(_TIERS)]
        now = int(time.time())
        claims = {"iss": issuer, "sub": open_id, "iat": now, "nbf": now, "exp": now + PASSPORT_TTL_SECONDS,
                  "jti": secrets.token_hex(12), "tier": tier}
        token = jwt.encode(claims, city.private, algorithm="EdDSA", headers={"kid": city.kid, "typ": PASSPORT_TYP})
        return {"passport": token}

    return Litestar(route_handlers=[jwks, passport], debug=False)


async def fetch_city_jwks(base_url: str, *, timeout_seconds: float = 5.0) -> list[dict[str, Any]]:
    """The simulated city's public keys over HTTP, ready for `create_partner(kind="city_peer", jwks=...)`."""
    async with httpx.AsyncClient(timeout=timeout_seconds) as http:
        answer = await http.get(f"{base_url.rstrip('/')}/.well-known/jwks.json")
        answer.raise_for_status()
        keys: list[dict[str, Any]] = answer.json()["keys"]
    return keys


def city_app_from_env() -> Litestar:
    """Granian factory: the peer city configured by `serve_city`."""
    return city_app(issuer=os.environ["XINYI_SIM_CITY_ISSUER"])


# ------------------------------------------------------------------ WeChat


@dataclass
class WechatState:
    """The simulated WeChat's memory: the access tokens it issued, the messages it accepted, and how many of the
    next sends it is told to refuse (errcode -1, "system busy"), so retries can be exercised."""

    appid: str
    secret: str
    fail_next: int = 0
    tokens: set[str] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0

    def expire_tokens(self) -> None:
        """Every issued token becomes invalid (as when another process fetched a new one)."""
        self.tokens.clear()


Query = Annotated[str, QueryParameter(max_length=512)]


def wechat_app(*, appid: str, secret: str, fail_next: int = 0) -> Litestar:
    """A simulated WeChat API: `GET /cgi-bin/token` and `POST /cgi-bin/message/subscribe/send`, answering like
    the real one (HTTP 200 with an errcode). Its state is `app.state.wechat` (a `WechatState`)."""
    state = WechatState(appid=appid, secret=secret, fail_next=fail_next)

    @get("/cgi-bin/token")
    async def token(grant_type: Query, appid: Query, secret: Query) -> dict[str, Any]:
        if grant_type != "client_credential" or appid != state.appid or secret != state.secret:
            return {"errcode": 40013, "errmsg": "invalid appid or secret"}
        issued = secrets.token_urlsafe(24)
        state.tokens.add(issued)
        return {"access_token": issued, "expires_in": 7200}

    @post("/cgi-bin/message/subscribe/send", status_code=200)
    async def send(access_token: Query, data: dict[str, Any]) -> dict[str, Any]:
        if access_token not in state.tokens:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        if not isinstance(data.get("touser"), str) or not isinstance(data.get("template_id"), str):
            return {"errcode": 47003, "errmsg": "argument invalid"}
        if state.fail_next > 0:
            state.fail_next -= 1
            state.refused += 1
            return {"errcode": -1, "errmsg": "system error"}
        state.sent.append(data)
        print(f"wechat: subscribe message {data.get('template_id')} accepted", flush=True)
        return {"errcode": 0, "errmsg": "ok", "msgid": len(state.sent)}

    return Litestar(route_handlers=[token, send], state=State({"wechat": state}),
                    request_max_body_size=64 * 1024, debug=False)


def wechat_app_from_env() -> Litestar:
    """Granian factory: the simulated WeChat configured by `serve_wechat`."""
    return wechat_app(appid=os.environ["XINYI_SIM_WECHAT_APPID"], secret=os.environ["XINYI_SIM_WECHAT_SECRET"],
                      fail_next=int(os.environ.get("XINYI_SIM_WECHAT_FAIL_NEXT", "0")))


# ------------------------------------------------------------------ serving


def _serve(target: str, *, host: str, port: int) -> None:
    # One worker: the simulated partners keep their state (seen ids, the city's key) in memory.
    Server(target, address=host, port=port, workers=1, interface=Interfaces.ASGI, factory=True,
           log_access=False).serve()


def serve_bank(*, webhook_secret: str, host: str, port: int, api: str | None = None, client_id: str | None = None,
               client_secret: str | None = None) -> None:
    """Serve the simulated bank until interrupted; its webhook URL is http://host:port/webhooks."""
    os.environ["XINYI_SIM_WEBHOOK_SECRET"] = webhook_secret
    for name, value in (("XINYI_SIM_API", api), ("XINYI_SIM_CLIENT_ID", client_id),
                        ("XINYI_SIM_CLIENT_SECRET", client_secret)):
        if value:
            os.environ[name] = value
    print(f"simulated bank: webhooks at http://{host}:{port}/webhooks", flush=True)
    _serve("partners.simulate:bank_app_from_env", host=host, port=port)


def serve_city(*, host: str, port: int, issuer: str | None = None) -> None:
    """Serve the simulated peer city until interrupted."""
    issuer = issuer or f"http://{host}:{port}"
    os.environ["XINYI_SIM_CITY_ISSUER"] = issuer
    jwks_url = f"http://{host}:{port}/.well-known/jwks.json"
    print(f"simulated city: issuer {issuer}, JWKS at {jwks_url}, passports at http://{host}:{port}/passports/<open id>",
          flush=True)
    # The key is generated when the server starts, so the registration fetches it once it is up.
    print("register it as a recognised peer city (once it is up):\n"
          f"  curl -s {jwks_url} > sim-city-jwks.json\n"
          f"  xinyi partner create --kind city_peer --name 'simulated city' --issuer {issuer} "
          "--jwks-file sim-city-jwks.json --no-secret\n"
          f"or configure its JWKS instead: XINYI_PEER_CITIES='{issuer}={jwks_url}' "
          "(loopback also needs XINYI_WEBHOOK_ALLOW_LOOPBACK=1)",
          flush=True)
    _serve("partners.simulate:city_app_from_env", host=host, port=port)


def serve_wechat(*, appid: str, secret: str, host: str, port: int, fail_next: int = 0) -> None:
    """Serve the simulated WeChat until interrupted (for `xinyi up` and the demo). Point the service at it with
    XINYI_WECHAT_API_BASE_URL=http://host:port and the same appid and secret."""
    os.environ["XINYI_SIM_WECHAT_APPID"] = appid
    os.environ["XINYI_SIM_WECHAT_SECRET"] = secret
    os.environ["XINYI_SIM_WECHAT_FAIL_NEXT"] = str(fail_next)
    print(f"simulated wechat: API at http://{host}:{port} (appid {appid})", flush=True)
    _serve("partners.simulate:wechat_app_from_env", host=host, port=port)
