"""WeChat mini-program subscribe messages (订阅消息): how notices reach a citizen inside WeChat.

The API wants an access token on every call. It is fetched with the mini-program's appid and secret
(`GET /cgi-bin/token?grant_type=client_credential`), kept until shortly before it expires, shared by every
send of this process (one fetch at a time), and fetched again when WeChat says it is invalid or expired
(errcode 40001 / 42001, e.g. because another process fetched a new one): that send is then retried once.

`POST /cgi-bin/message/subscribe/send` answers HTTP 200 with an `errcode`; anything but 0 is a failed send
(`WechatDeliveryError`), retried by the notice worker with backoff. Neither the open id nor the message text
is ever logged; the secret and the token never leave this module.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from core.net import ResponseTooLarge, bounded_request

logger = logging.getLogger("xinyi.wechat")

TOKEN_EXPIRED = frozenset({40001, 42001})
"""errcodes that mean the access token is not (or no longer) valid: fetch a new one and retry."""
_MAX_ANSWER_BYTES = 16 * 1024
_EXPIRY_MARGIN_SECONDS = 300  # refresh well before WeChat's expiry, so a send never races it


class WechatDeliveryError(Exception):
    """WeChat did not accept the message (unreachable, HTTP error or a non-zero errcode)."""


@dataclass(frozen=True, slots=True)
class SubscribeMessage:
    openid: str
    template_id: str
    data: dict[str, str]  # template field → value; WeChat wraps each as {"value": …}
    page: str | None = None


class WechatSubscribeClient:
    """Sends subscribe messages with a cached access token. `transport` lets tests talk to the simulated
    WeChat in-process; otherwise it is plain HTTPS to `base_url`."""

    def __init__(self, *, base_url: str, appid: str, secret: str, timeout_seconds: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._appid = appid
        self._secret = secret
        self._timeout = timeout_seconds
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_seconds,
                                         follow_redirects=False, transport=transport)
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = asyncio.Lock()
        self.token_fetches = 0  # how often a token was fetched (observability and tests)

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = await bounded_request(self._client, method, path, deadline_seconds=self._timeout,
                                           max_bytes=_MAX_ANSWER_BYTES, **kwargs)
        except (httpx.HTTPError, TimeoutError, ResponseTooLarge) as exc:
            logger.warning("wechat unreachable (%s)", type(exc).__name__)
            raise WechatDeliveryError("wechat unreachable") from exc
        if answer.status_code != 200:
            logger.warning("wechat answered HTTP %s", answer.status_code)
            raise WechatDeliveryError(f"wechat answered HTTP {answer.status_code}")
        try:
            body = json.loads(answer.body)
        except ValueError as exc:
            raise WechatDeliveryError("wechat answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise WechatDeliveryError("wechat answered something that is not an object")
        return body

    async def _access_token(self, *, stale: str | None = None) -> str:
        async with self._lock:
            # Another send may have refreshed it while this one waited for the lock.
            if self._token is not None and self._token != stale and time.monotonic() < self._token_expires:
                return self._token
            body = await self._call("GET", "/cgi-bin/token", params={
                "grant_type": "client_credential", "appid": self._appid, "secret": self._secret})
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                logger.warning("wechat refused an access token (errcode %s)", body.get("errcode"))
                raise WechatDeliveryError(f"no access token (errcode {body.get('errcode')})")
            expires_in = body.get("expires_in")
            lifetime = float(expires_in) if isinstance(expires_in, int | float) else 7200.0
            self._token = token
            self._token_expires = time.monotonic() + max(30.0, lifetime - _EXPIRY_MARGIN_SECONDS)
            self.token_fetches += 1
            return token

    async def send(self, message: SubscribeMessage) -> None:
        """Send one subscribe message; raises WechatDeliveryError when WeChat did not take it."""
        payload: dict[str, Any] = {"touser": message.openid, "template_id": message.template_id,
                                   "data": {k: {"value": v} for k, v in message.data.items()}}
        if message.page:
            payload["page"] = message.page
        token = await self._access_token()
        for attempt in (1, 2):
            body = await self._call("POST", "/cgi-bin/message/subscribe/send", params={"access_token": token},
                                    json=payload)
            errcode = body.get("errcode", 0)
            if errcode == 0:
                return
            if errcode in TOKEN_EXPIRED and attempt == 1:
                token = await self._access_token(stale=token)
                continue
            logger.warning("wechat refused a subscribe message (errcode %s)", errcode)
            raise WechatDeliveryError(f"wechat errcode {errcode}")

    async def close(self) -> None:
        await self._client.aclose()
