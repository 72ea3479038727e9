"""Answers from partners' services, read under one deadline and a size cap."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx


class ResponseTooLarge(Exception):
    """A partner's answer grew past the size cap we read (it was not read further)."""


@dataclass(frozen=True, slots=True)
class BoundedAnswer:
    """A partner's answer: its status and at most the capped number of body bytes."""

    status_code: int
    body: bytes


async def read_capped(response: httpx.Response, *, max_bytes: int, cut_off: bool) -> bytes:
    """At most `max_bytes` of `response`'s body, then stop reading.

    With `cut_off` the answer is simply truncated (callers that need only the status); without it a
    larger answer raises `ResponseTooLarge`, decided from `Content-Length` when the peer announces one,
    because half a document is no document. Raw bytes are counted (we ask for `identity` encoding):
    counting decompressed bytes would let a small compressed answer expand without bound first.
    """
    announced = response.headers.get("content-length", "")
    if not cut_off and announced.isdigit() and int(announced) > max_bytes:
        raise ResponseTooLarge(f"{announced} bytes announced")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body.extend(chunk)
        if len(body) > max_bytes:
            if not cut_off:
                raise ResponseTooLarge(f"more than {max_bytes} bytes")
            del body[max_bytes:]
            break
    return bytes(body)


async def bounded_request(client: httpx.AsyncClient, method: str, url: str | httpx.URL, *, deadline_seconds: float,
                          max_bytes: int, cut_off: bool = False, **request: Any) -> BoundedAnswer:
    """One exchange with a partner's service under a single deadline and a cap on the answer's size.

    httpx's timeouts apply to each read separately, so a peer dribbling a byte now and then would hold
    the caller for ever; here one deadline covers connecting, sending and every byte of the answer.

    Raises:
        TimeoutError: the deadline passed.
        ResponseTooLarge: the answer is larger than `max_bytes` (unless `cut_off`).
        httpx.HTTPError: the exchange failed (connection refused, protocol error...).
    """
    headers = {"Accept-Encoding": "identity", **dict(request.pop("headers", None) or {})}
    async with asyncio.timeout(deadline_seconds):
        async with client.stream(method, url, headers=headers, **request) as response:
            body = await read_capped(response, max_bytes=max_bytes, cut_off=cut_off)
            return BoundedAnswer(status_code=response.status_code, body=body)
