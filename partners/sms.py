"""SMS adapters: how one-time codes reach citizens' phones.

`DevSmsSender` keeps messages in memory so tests and the demo can read them (never in production);
`HttpSmsGateway` posts to the city's SMS gateway. Neither logs the phone number or the text.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import httpx

from core.net import bounded_request

logger = logging.getLogger("xinyi.sms")
_MAX_ANSWER_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class SmsMessage:
    phone: str
    text: str
    template: str


class SmsDeliveryError(Exception):
    """The gateway did not accept the message."""


class SmsSender(Protocol):
    async def send(self, message: SmsMessage) -> None: ...

    async def close(self) -> None: ...


class DevSmsSender:
    """Records messages in memory (bounded) for tests and the local demo."""

    def __init__(self, capacity: int = 1000) -> None:
        self.sent: deque[SmsMessage] = deque(maxlen=capacity)

    async def send(self, message: SmsMessage) -> None:
        self.sent.append(message)
        logger.info("dev sms recorded (template=%s)", message.template)

    def last_to(self, phone: str) -> SmsMessage | None:
        """The newest message to `phone`, for tests and the demo."""
        for message in reversed(self.sent):
            if message.phone == phone:
                return message
        return None

    async def close(self) -> None:
        return None


class HttpSmsGateway:
    """Sends through an HTTP SMS gateway: JSON {phone, template, text}, bearer token, short timeout."""

    def __init__(self, *, url: str, token: str | None, timeout_seconds: float = 3.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._url = url
        self._timeout = timeout_seconds
        self._client = httpx.AsyncClient(timeout=timeout_seconds, headers=headers, follow_redirects=False)

    async def send(self, message: SmsMessage) -> None:
        try:
            # Only the status is used; the gateway's answer is read up to a small cap and no further.
            answer = await bounded_request(
                self._client, "POST", self._url, deadline_seconds=self._timeout, max_bytes=_MAX_ANSWER_BYTES,
                cut_off=True, json={"phone": message.phone, "template": message.template, "text": message.text})
        except (httpx.HTTPError, TimeoutError) as exc:
            logger.warning("sms gateway unreachable (%s)", type(exc).__name__)
            raise SmsDeliveryError("gateway unreachable") from exc
        if answer.status_code >= 300:
            logger.warning("sms gateway refused message: HTTP %s", answer.status_code)
            raise SmsDeliveryError(f"gateway answered {answer.status_code}")

    async def close(self) -> None:
        await self._client.aclose()
