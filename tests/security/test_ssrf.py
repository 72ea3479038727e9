"""The SSRF guard on webhook URLs: at configuration time, again at every delivery, and no redirects."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from core.errors import Unprocessable
from credit.tables import OutboxEvent
from partners.delivery import deliver_due
from partners.ssrf import SafeHttpClient, UnsafeDestination, address_problem, vet_url
from partners.tables import WebhookAttempt
from partners.webhooks import clear_webhook_endpoint, set_webhook_endpoint
from tests.factories import WebhookReceiver, partner_session

REFUSED_ALWAYS = [
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://10.0.0.1/hook", "private"),
    ("https://192.168.1.10/hook", "private"),
    ("https://172.16.0.1/hook", "private"),
    ("https://100.64.0.1/hook", "shared"),
    ("https://169.254.10.1/hook", "link_local"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://[::]/hook", "unspecified"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://240.0.0.1/hook", "reserved"),
    ("https://[::ffff:127.0.0.1]/hook", "embedded_loopback"),
    ("https://[::ffff:10.0.0.1]/hook", "embedded_private"),
    ("https://[::ffff:169.254.169.254]/hook", "embedded_metadata"),
    ("https://[2002:a00:1::1]/hook", "embedded_private"),  # 6to4 around 10.0.0.1
    ("https://[fe80::1]/hook", "link_local"),
    ("https://[fc00::1]/hook", "private"),
    ("http://8.8.8.8/hook", "scheme_not_allowed"),
    ("ftp://8.8.8.8/hook", "scheme_not_allowed"),
    ("https://user:pw@8.8.8.8/hook", "credentials_in_url"),
    ("not a url", "scheme_not_allowed"),
]
LOOPBACK = [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://127.1.2.3/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://localhost/hook", "loopback"),  # a name resolving to a non-public address
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_ALWAYS + LOOPBACK)
async def test_refused_destinations(url: str, reason: str) -> None:
    with pytest.raises(UnsafeDestination) as refused:
        await vet_url(url, allow_loopback=False)
    assert refused.value.reason == reason


@pytest.mark.parametrize(("url", "reason"), REFUSED_ALWAYS)
async def test_allowing_loopback_allows_nothing_else(url: str, reason: str) -> None:
    with pytest.raises(UnsafeDestination) as refused:
        await vet_url(url, allow_loopback=True)
    assert refused.value.reason == reason


async def test_loopback_when_allowed_and_public_addresses() -> None:
    for url, _ in LOOPBACK:
        await vet_url(url, allow_loopback=True)
    await vet_url("http://127.0.0.1:9001/webhooks", allow_loopback=True)
    public = await vet_url("https://8.8.8.8/hook", allow_loopback=False)
    assert str(public.address) == "8.8.8.8"
    assert address_problem(ipaddress.ip_address("2001:4860:4860::8888"), allow_loopback=False) is None
    assert address_problem(ipaddress.ip_address("2002:808:808::1"), allow_loopback=False) is None  # 6to4 of 8.8.8.8


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Answers for made-up names (everything else resolves normally)."""
    answers: dict[str, list[str]] = {}
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                    for a in answers[host]]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return answers


async def test_any_private_address_among_the_answers_refuses_the_name(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["mixed.partner.test"] = ["8.8.8.8", "10.1.2.3"]
    with pytest.raises(UnsafeDestination) as refused:
        await vet_url("https://mixed.partner.test/hook", allow_loopback=False)
    assert refused.value.reason == "private"
    fake_dns["v6.partner.test"] = ["2001:4860:4860::8888", "::ffff:192.168.0.1"]
    with pytest.raises(UnsafeDestination):
        await vet_url("https://v6.partner.test/hook", allow_loopback=False)
    with pytest.raises(UnsafeDestination) as refused:
        await vet_url("https://no-such-host.invalid/hook", allow_loopback=False)
    assert refused.value.reason == "unresolvable"


async def test_configuration_refuses_unsafe_urls(client, ctx, override_settings) -> None:
    client_id, _, _ = await partner_session(client, kind="bank")
    for url in ("https://127.0.0.1/hook", "https://169.254.169.254/", "https://10.0.0.1/", "https://[::1]/",
                "https://[::ffff:127.0.0.1]/", "https://localhost/hook", "http://8.8.8.8/",
                "https://8.8.8.8/" + "x" * 500):
        with pytest.raises(Unprocessable) as refused:
            await set_webhook_endpoint(cipher=ctx.cipher, settings=ctx.settings, client_id=client_id, url=url)
        assert refused.value.code in ("unsafe_webhook_url", "webhook_url_too_long")
    with override_settings(webhook_allow_loopback=True):
        secret = await set_webhook_endpoint(cipher=ctx.cipher, settings=ctx.settings, client_id=client_id,
                                            url="http://127.0.0.1:9/hook")
        assert secret.startswith("whsec_")
        with pytest.raises(UnsafeDestination):
            await set_webhook_endpoint(cipher=ctx.cipher, settings=ctx.settings, client_id=client_id,
                                       url="https://[::ffff:127.0.0.1]/hook")
    await clear_webhook_endpoint(client_id=client_id)


class Endpoints:
    def __init__(self) -> None:
        self.receivers: list[WebhookReceiver] = []
        self.partners: list[str] = []

    def receiver(self, **kwargs: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(**kwargs)
        self.receivers.append(receiver)
        return receiver


@pytest.fixture
async def endpoints() -> AsyncIterator[Endpoints]:
    made = Endpoints()
    yield made
    for client_id in made.partners:
        await clear_webhook_endpoint(client_id=client_id)
    for receiver in made.receivers:
        receiver.close()


async def _event_for(client_id: str) -> str:
    event = OutboxEvent(public_id=f"evt_ssrf{datetime.now(UTC).strftime('%H%M%S%f')}", topic="authorization.revoked",
                        aggregate_id="authz_ssrf", recipient=client_id, payload={"type": "authorization.revoked"})
    await OutboxEvent.insert(event)
    return event.public_id


async def _last_attempt(event_id: str) -> dict[str, Any]:
    row = await WebhookAttempt.select().where(WebhookAttempt.event_id == event_id).order_by(
        WebhookAttempt.attempt, ascending=False).first()
    assert row is not None
    return dict(row)


async def test_delivery_checks_again_and_never_follows_redirects(client, ctx, override_settings,
                                                                  endpoints: Endpoints) -> None:
    internal = endpoints.receiver()
    redirecting = endpoints.receiver(default=302, location=internal.url("/internal"))
    client_id, _, _ = await partner_session(client, kind="bank")
    endpoints.partners.append(client_id)
    with override_settings(webhook_allow_loopback=True):
        await set_webhook_endpoint(cipher=ctx.cipher, settings=ctx.settings, client_id=client_id,
                                   url=redirecting.url())
        event_id = await _event_for(client_id)
        await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
    attempt = await _last_attempt(event_id)
    assert (attempt["status_code"], attempt["error"]) == (302, "redirect_not_followed")
    assert len(redirecting.requests) == 1
    assert internal.requests == []  # the redirect target was never contacted

    # Loopback no longer allowed (think: the name now resolves somewhere internal): checked at delivery.
    await OutboxEvent.update({OutboxEvent.next_attempt_at: datetime.now(UTC)}).where(
        OutboxEvent.public_id == event_id)
    await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
    attempt = await _last_attempt(event_id)
    assert (attempt["status_code"], attempt["error"]) == (None, "unsafe_destination:loopback")
    assert len(redirecting.requests) == 1


async def test_the_connection_goes_to_the_vetted_address_with_the_original_host(
        fake_dns: dict[str, list[str]]) -> None:
    receiver = WebhookReceiver()
    try:
        fake_dns["hooks.partner.test"] = ["127.0.0.1"]
        async with SafeHttpClient(allow_loopback=True, timeout_seconds=2, max_response_bytes=1024) as http:
            outcome = await http.post(receiver.url(host="hooks.partner.test"), content=b"{}", headers={})
            assert outcome.ok, outcome
            assert receiver.requests[0].headers["host"] == f"hooks.partner.test:{receiver.port}"
            # After the check, the name "rebinds" to an internal address: the next request is checked again.
            fake_dns["hooks.partner.test"] = ["10.0.0.7"]
            refused = await http.post(receiver.url(host="hooks.partner.test"), content=b"{}", headers={})
            assert refused.error == "unsafe_destination:private"
            assert len(receiver.requests) == 1
    finally:
        receiver.close()


async def test_slow_and_oversized_answers_are_bounded() -> None:
    slow = WebhookReceiver(delay=2.0)
    big = WebhookReceiver(default=200, body_bytes=5 * 1024 * 1024)
    try:
        async with SafeHttpClient(allow_loopback=True, timeout_seconds=0.5, max_response_bytes=64 * 1024) as http:
            timed_out = await http.post(slow.url(), content=b"{}", headers={})
            assert (timed_out.status_code, timed_out.error) == (None, "timeout")
            assert timed_out.duration_ms < 1500
        async with SafeHttpClient(allow_loopback=True, timeout_seconds=5, max_response_bytes=64 * 1024) as http:
            answered = await http.post(big.url(), content=b"{}", headers={})
            assert answered.ok
    finally:
        slow.close()
        big.close()
