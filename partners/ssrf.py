"""Outbound HTTP to partner-chosen URLs without Server-Side Request Forgery.

A partner decides where its webhooks go, so a webhook URL is attacker-controlled input pointing our
own network at whatever it names. The guard therefore:

- accepts only `https` (plain `http` only to loopback, and only when loopback is allowed for local
  testing), no credentials in the URL;
- resolves the host and refuses the URL if ANY address is not a public unicast address: private,
  loopback, link-local (cloud metadata lives there), CGNAT, multicast, reserved, unspecified, and the
  same ranges smuggled inside IPv6 (IPv4-mapped, 6to4, Teredo, NAT64);
- connects to the address it vetted (the URL's host is replaced by the IP; `Host` and TLS SNI keep the
  name, and the certificate is still checked against the name), so a DNS answer that changes between
  the check and the connection (DNS rebinding) cannot redirect the request;
- never follows redirects, bounds the whole exchange by a deadline and reads at most a capped number
  of response bytes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from core.errors import Unprocessable
from core.net import ResponseTooLarge, read_capped

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata endpoints (AWS/GCP/Azure/Alibaba v4, AWS v6): named apart from the generic
# link-local refusal so an operator reading the attempt log sees what was tried.
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
                       ipaddress.ip_address("100.100.100.200")})
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix embeds an IPv4 address

USER_AGENT = "xinyi-webhooks/1"


class UnsafeDestination(Unprocessable):
    """A URL the guard refuses; `reason` is a short stable word (safe to store and show)."""

    code, title = "unsafe_webhook_url", "The webhook URL is not allowed"

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _plain_problem(address: IPAddress) -> str | None:
    """Why `address` itself is not a public unicast destination (None when it is)."""
    if address in _METADATA:
        return "metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not_global"
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo server and client, NAT64)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def address_problem(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why the guard refuses to connect to `address`, or None when it may.

    Loopback is allowed only as a plain loopback address when `allow_loopback` is set; an IPv4 address
    smuggled inside IPv6 (e.g. `::ffff:127.0.0.1`) is refused whatever it is, because no legitimate
    endpoint is published that way and it is the classic way around naive filters.
    """
    if isinstance(address, ipaddress.IPv6Address):
        for inner in _embedded_v4(address):
            if (problem := _plain_problem(inner)) is not None:
                return f"embedded_{problem}"
    problem = _plain_problem(address)
    if problem == "loopback" and allow_loopback:
        return None
    return problem


async def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (literal,)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeDestination("the webhook host does not resolve", reason="unresolvable") from None
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # Strip an IPv6 zone id ("fe80::1%eth0"): the address decides, the zone does not matter here.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeDestination("the webhook host does not resolve", reason="unresolvable")
    return tuple(addresses)


@dataclass(frozen=True, slots=True)
class Destination:
    """A vetted URL and the address to connect to."""

    url: httpx.URL
    host: str  # the URL's host, ASCII (IDNA) form, without brackets
    address: IPAddress  # the vetted address the connection must go to
    addresses: tuple[IPAddress, ...]

    @property
    def host_is_literal(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def pinned_url(self) -> httpx.URL:
        """The URL with its host replaced by the vetted address (so no second DNS lookup happens)."""
        return self.url.copy_with(host=str(self.address))

    def host_header(self) -> str:
        return self.url.netloc.decode("ascii")


async def vet_url(url: str, *, allow_loopback: bool) -> Destination:
    """Parse, resolve and check a webhook URL.

    Raises:
        UnsafeDestination: the URL is malformed, not https (outside the loopback exception), carries
            credentials, does not resolve, or any address it resolves to is not allowed.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UnsafeDestination("the webhook URL is not a valid URL", reason="malformed") from None
    if parsed.scheme not in ("https", "http"):
        raise UnsafeDestination("the webhook URL must use https", reason="scheme_not_allowed")
    if parsed.userinfo:
        raise UnsafeDestination("the webhook URL must not carry credentials", reason="credentials_in_url")
    host = parsed.raw_host.decode("ascii").strip("[]")
    if not host:
        raise UnsafeDestination("the webhook URL has no host", reason="no_host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await resolve(host, port)
    for address in addresses:
        if (problem := address_problem(address, allow_loopback=allow_loopback)) is not None:
            raise UnsafeDestination(f"the webhook host resolves to a {problem.replace('_', ' ')} address",
                                    reason=problem)
    # Plain http crosses the network unencrypted and unauthenticated: only for a local receiver.
    if parsed.scheme == "http" and not all(a.is_loopback for a in addresses):
        raise UnsafeDestination("the webhook URL must use https", reason="scheme_not_allowed")
    return Destination(url=parsed, host=host, address=addresses[0], addresses=addresses)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one outbound POST came to. `error` is a short class word, never a message or a body."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


class SafeHttpClient:
    """POSTs to partner URLs through the SSRF guard (one instance per delivery pass)."""

    def __init__(self, *, allow_loopback: bool, timeout_seconds: float, max_response_bytes: int) -> None:
        self._allow_loopback = allow_loopback
        self._timeout = timeout_seconds
        self._max_response_bytes = max_response_bytes
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            # Proxies from the environment would resolve the name themselves and defeat the pinning.
            trust_env=False,
            # No keep-alive: connections are pooled by (scheme, IP, port), so a kept connection whose TLS
            # session was checked for one name could otherwise carry a request for another name served
            # from the same IP.
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=0),
            headers={"User-Agent": USER_AGENT},
        )

    async def __aenter__(self) -> SafeHttpClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> Outcome:
        """POST `content` to `url`: vetted, pinned, no redirects, bounded in time and response size."""
        started = time.perf_counter()

        def done(status_code: int | None, error: str | None) -> Outcome:
            return Outcome(status_code=status_code, error=error,
                           duration_ms=int((time.perf_counter() - started) * 1000))

        try:
            # One deadline for everything (resolution, connect, TLS, upload, answer): httpx timeouts
            # apply per operation, so a receiver trickling bytes could otherwise hold a worker forever.
            async with asyncio.timeout(self._timeout):
                destination = await vet_url(url, allow_loopback=self._allow_loopback)
                extensions = {} if destination.url.scheme != "https" or destination.host_is_literal \
                    else {"sni_hostname": destination.host}
                request_headers = {**headers, "Host": destination.host_header()}
                async with self._client.stream("POST", destination.pinned_url(), content=content,
                                               headers=request_headers, extensions=extensions) as response:
                    # Only the status matters: the body is read up to the cap (so the exchange ends
                    # cleanly) and no further.
                    await read_capped(response, max_bytes=self._max_response_bytes, cut_off=True)
                    status = response.status_code
        except UnsafeDestination as exc:
            return done(None, f"unsafe_destination:{exc.reason}")
        except (TimeoutError, httpx.TimeoutException):
            return done(None, "timeout")
        except httpx.ConnectError:
            return done(None, "connect_error")
        except httpx.HTTPError as exc:
            return done(None, type(exc).__name__)
        except OSError as exc:
            return done(None, type(exc).__name__)
        if 300 <= status < 400:
            return done(status, "redirect_not_followed")
        if not 200 <= status < 300:
            return done(status, "http_status")
        return done(status, None)


    async def get_json(self, url: str) -> tuple[Outcome, Any]:
        """GET a small JSON document (e.g. a peer city's JWKS) under the same guard; None unless it parsed.

        A body larger than the response cap is refused rather than cut: half a document is no document.
        """
        started = time.perf_counter()

        def done(status_code: int | None, error: str | None) -> Outcome:
            return Outcome(status_code=status_code, error=error,
                           duration_ms=int((time.perf_counter() - started) * 1000))

        try:
            async with asyncio.timeout(self._timeout):
                destination = await vet_url(url, allow_loopback=self._allow_loopback)
                extensions = {} if destination.url.scheme != "https" or destination.host_is_literal \
                    else {"sni_hostname": destination.host}
                async with self._client.stream("GET", destination.pinned_url(),
                                               headers={"Host": destination.host_header(),
                                                        "Accept": "application/json",
                                                        "Accept-Encoding": "identity"},
                                               extensions=extensions) as response:
                    status = response.status_code
                    try:
                        body = await read_capped(response, max_bytes=self._max_response_bytes, cut_off=False)
                    except ResponseTooLarge:
                        return done(status, "response_too_large"), None
        except UnsafeDestination as exc:
            return done(None, f"unsafe_destination:{exc.reason}"), None
        except (TimeoutError, httpx.TimeoutException):
            return done(None, "timeout"), None
        except (httpx.HTTPError, OSError) as exc:
            return done(None, type(exc).__name__), None
        if not 200 <= status < 300:
            return done(status, "redirect_not_followed" if 300 <= status < 400 else "http_status"), None
        try:
            return done(status, None), json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return done(status, "invalid_json"), None
