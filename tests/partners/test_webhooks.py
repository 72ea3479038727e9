"""Webhooks end to end: outbox → signed delivery over real HTTP → retries with backoff → dead letter →
manual replay; the partner's delivery log; expiring-soon events; the simulated partners."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from litestar.testing import AsyncTestClient
from standardwebhooks import Webhook

from api.background import run_once
from credit.tables import Authorization, OutboxEvent
from partners.delivery import deliver_due, emit_expiring_soon
from partners.simulate import CityKeys, bank_app, city_app
from partners.tables import WebhookAttempt
from partners.webhooks import clear_webhook_endpoint, event_body, set_webhook_endpoint, sign
from tests.factories import WebhookReceiver, authorization_for, bound_citizen, partner_session


class Hooks:
    """Receivers and partner endpoints made by a test, torn down after it (so no later delivery pass
    tries a closed port)."""

    def __init__(self) -> None:
        self.receivers: list[WebhookReceiver] = []
        self.partners: list[str] = []

    def receiver(self, **kwargs: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(**kwargs)
        self.receivers.append(receiver)
        return receiver

    async def bank(self, client: Any, ctx: Any, url: str, **kwargs: Any) -> tuple[str, str, Any]:
        """A bank partner whose webhooks go to `url`; returns (client_id, signing secret, session)."""
        client_id, _, session = await partner_session(client, kind="bank", **kwargs)
        secret = await set_webhook_endpoint(cipher=ctx.cipher, settings=ctx.settings, client_id=client_id, url=url)
        self.partners.append(client_id)
        return client_id, secret, session


@pytest.fixture
async def hooks(override_settings: Any) -> AsyncIterator[Hooks]:
    made = Hooks()
    with override_settings(webhook_allow_loopback=True):
        yield made
    for client_id in made.partners:
        await clear_webhook_endpoint(client_id=client_id)
    for receiver in made.receivers:
        receiver.close()


async def _event(authorization_id: str, topic: str = "authorization.authorized") -> dict[str, Any]:
    row = await OutboxEvent.select().where((OutboxEvent.aggregate_id == authorization_id)
                                           & (OutboxEvent.topic == topic)).first()
    assert row is not None
    return dict(row)


async def _reload(event_id: str) -> dict[str, Any]:
    row = await OutboxEvent.select().where(OutboxEvent.public_id == event_id).first()
    assert row is not None
    return dict(row)


async def _fast_forward(event_id: str) -> None:
    """Make a scheduled retry due now instead of waiting for it."""
    await OutboxEvent.update({OutboxEvent.next_attempt_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        OutboxEvent.public_id == event_id)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_signed_delivery_is_retried_with_growing_backoff_until_it_succeeds(client, ctx, hooks) -> None:
    receiver = hooks.receiver(statuses=[500, 503], default=204)
    client_id, secret, bank = await hooks.bank(client, ctx, receiver.url())
    assert secret.startswith("whsec_")
    citizen = await bound_citizen(client, ctx, name="韩一")
    authorization_id = await authorization_for(client, bank, citizen)
    event = await _event(authorization_id)
    assert event["status"] == "pending"

    delays = []
    for attempt in (1, 2):
        assert await deliver_due(settings=ctx.settings, cipher=ctx.cipher) >= 1
        row = await _reload(event["public_id"])
        assert (row["status"], row["attempts"]) == ("failed", attempt)
        last = await WebhookAttempt.select().where(WebhookAttempt.event_id == event["public_id"]).order_by(
            WebhookAttempt.attempt, ascending=False).first()
        assert last["status_code"] == (500 if attempt == 1 else 503)
        assert last["error"] == "http_status"
        delay = (_utc(row["next_attempt_at"]) - _utc(last["attempted_at"])).total_seconds()
        base = ctx.settings.webhook_base_delay_seconds * 2 ** (attempt - 1)
        assert base <= delay <= base * 1.1 + 1  # exponential, with at most 10 % jitter
        delays.append(delay)
        # Not due yet: another pass leaves it alone.
        await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
        assert len(receiver.requests) == attempt
        await _fast_forward(event["public_id"])
    assert delays[1] > delays[0]

    await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
    row = await _reload(event["public_id"])
    assert (row["status"], row["attempts"]) == ("delivered", 3)
    assert row["delivered_at"] is not None

    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event["public_id"]}
    for request in receiver.requests:
        body = Webhook(secret).verify(request.body, request.headers)
        assert body["id"] == event["public_id"]
        assert body["type"] == "authorization.authorized"
        assert body["data"]["authorization_id"] == authorization_id
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43).verify(receiver.requests[0].body, receiver.requests[0].headers)

    listed = await client.get("/v1/webhooks/deliveries", headers=bank.headers)
    assert listed.status_code == 200, listed.text
    (item,) = [i for i in listed.json()["items"] if i["id"] == event["public_id"]]
    assert (item["type"], item["status"], item["attempts"]) == ("authorization.authorized", "delivered", 3)
    assert item["last_attempt"]["status_code"] == 204
    assert "next_attempt_at" not in item
    assert secret not in listed.text
    assert client_id


async def test_dead_letter_after_max_attempts_then_manual_replay(client, ctx, hooks, override_settings) -> None:
    receiver = hooks.receiver(default=500)
    _, secret, bank = await hooks.bank(client, ctx, receiver.url())
    citizen = await bound_citizen(client, ctx, name="韩二")
    authorization_id = await authorization_for(client, bank, citizen)
    event_id = (await _event(authorization_id))["public_id"]

    with override_settings(webhook_allow_loopback=True, webhook_max_attempts=3):
        for _ in range(3):
            await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
            await _fast_forward(event_id)
        row = await _reload(event_id)
        assert (row["status"], row["attempts"]) == ("dead", 3)
        await deliver_due(settings=ctx.settings, cipher=ctx.cipher)  # dead letters are never retried on their own
        assert len(receiver.requests) == 3

        dead = await client.get("/v1/webhooks/deliveries", params={"status": "dead"}, headers=bank.headers)
        assert [i["id"] for i in dead.json()["items"]] == [event_id]
        assert dead.json()["items"][0]["last_attempt"]["error"] == "http_status"

        receiver.default = 200
        replay = await client.post(f"/v1/webhooks/deliveries/{event_id}/retry", headers=bank.headers)
        assert replay.status_code == 200, replay.text
        assert (replay.json()["status"], replay.json()["attempts"]) == ("pending", 0)
        await deliver_due(settings=ctx.settings, cipher=ctx.cipher)

    row = await _reload(event_id)
    assert row["status"] == "delivered"
    assert len(receiver.requests) == 4
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event_id}
    Webhook(secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)

    again = await client.post(f"/v1/webhooks/deliveries/{event_id}/retry", headers=bank.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "delivery_already_delivered"


async def test_authorization_approved_by_a_citizen_reaches_the_simulated_bank(client, ctx, hooks) -> None:
    """The real `xinyi simulate bank` process receives and verifies the webhook the background pass sends."""
    port = _free_port()
    client_id, secret, bank = await hooks.bank(client, ctx, f"http://127.0.0.1:{port}/webhooks")
    with _simulated_bank(port, secret) as process:
        citizen = await bound_citizen(client, ctx, name="韩三")
        authorization_id = await authorization_for(client, bank, citizen)
        event_id = (await _event(authorization_id))["public_id"]

        await run_once(ctx)  # what the app's lifespan (or `xinyi worker`) runs on its interval

        row = await _reload(event_id)
        assert row["status"] == "delivered", await WebhookAttempt.select().where(WebhookAttempt.event_id == event_id)
        forged_body = event_body(event_id="evt_forged", topic="authorization.authorized",
                                 created_at=datetime.now(UTC), data={})
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as other:
            forged = await other.post("/webhooks", content=forged_body, headers=sign(
                secret="whsec_" + "B" * 43, event_id="evt_forged", body=forged_body))
            assert forged.status_code == 401
            unsigned = await other.post("/webhooks", content=forged_body)
            assert unsigned.status_code == 401
    output = process.stdout.read() if process.stdout else ""
    assert f"bank: authorization.authorized {event_id} authorization={authorization_id}" in output
    assert "bad signature" in output
    assert secret not in output
    assert client_id


async def test_events_of_partners_without_an_endpoint_park_until_replayed(client, ctx, hooks) -> None:
    client_id, _, bank = await partner_session(client, kind="bank")
    citizen = await bound_citizen(client, ctx, name="韩四")
    authorization_id = await authorization_for(client, bank, citizen)
    event_id = (await _event(authorization_id))["public_id"]
    await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
    assert (await _reload(event_id))["status"] == "no_endpoint"

    receiver = hooks.receiver()
    await set_webhook_endpoint(cipher=ctx.cipher, settings=ctx.settings, client_id=client_id, url=receiver.url())
    hooks.partners.append(client_id)
    await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
    assert (await _reload(event_id))["status"] == "no_endpoint"  # not retried until asked
    assert receiver.requests == []

    replay = await client.post(f"/v1/webhooks/deliveries/{event_id}/retry", headers=bank.headers)
    assert replay.status_code == 200, replay.text
    await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
    assert (await _reload(event_id))["status"] == "delivered"
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event_id]


async def test_citizen_notices_are_left_to_their_own_adapter(client, ctx, hooks) -> None:
    notice = OutboxEvent(public_id=f"evt_notice{time.time_ns() % 10**12}", topic="objection.decided",
                         aggregate_id="obj_x", recipient="citizen:acc_x", payload={"type": "objection.decided"})
    await OutboxEvent.insert(notice)
    await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
    row = await _reload(notice.public_id)
    assert (row["status"], row["attempts"]) == ("pending", 0)
    await OutboxEvent.delete().where(OutboxEvent.public_id == notice.public_id)


async def test_concurrent_passes_deliver_an_event_once(client, ctx, hooks) -> None:
    receiver = hooks.receiver(delay=0.2)
    _, _, bank = await hooks.bank(client, ctx, receiver.url())
    citizen = await bound_citizen(client, ctx, name="韩五")
    authorization_id = await authorization_for(client, bank, citizen)
    event_id = (await _event(authorization_id))["public_id"]
    await asyncio.gather(*(deliver_due(settings=ctx.settings, cipher=ctx.cipher) for _ in range(4)))
    assert (await _reload(event_id))["status"] == "delivered"
    assert len(receiver.requests) == 1
    assert await WebhookAttempt.count().where(WebhookAttempt.event_id == event_id) == 1


async def test_a_partner_sees_and_replays_only_its_own_deliveries(client, ctx, hooks) -> None:
    receiver = hooks.receiver(default=500)
    _, _, bank_a = await hooks.bank(client, ctx, receiver.url())
    _, _, bank_b = await partner_session(client, kind="bank")
    citizen = await bound_citizen(client, ctx, name="韩六")
    authorization_id = await authorization_for(client, bank_a, citizen)
    event_id = (await _event(authorization_id))["public_id"]
    await deliver_due(settings=ctx.settings, cipher=ctx.cipher)

    mine = await client.get("/v1/webhooks/deliveries", headers=bank_a.headers)
    assert event_id in [i["id"] for i in mine.json()["items"]]
    theirs = await client.get("/v1/webhooks/deliveries", headers=bank_b.headers)
    assert theirs.status_code == 200
    assert event_id not in [i["id"] for i in theirs.json()["items"]]
    stolen = await client.post(f"/v1/webhooks/deliveries/{event_id}/retry", headers=bank_b.headers)
    assert stolen.status_code == 404
    assert stolen.json()["code"] == "delivery_not_found"
    assert (await client.post("/v1/webhooks/deliveries/evt_nope/retry", headers=bank_b.headers)).status_code == 404
    peek = await client.get("/v1/webhooks/deliveries", params={"cursor": event_id}, headers=bank_b.headers)
    assert peek.status_code == 422

    _, _, narrow = await partner_session(client, kind="bank", scopes=["scores:read"])
    refused = await client.get("/v1/webhooks/deliveries", headers=narrow.headers)
    assert refused.status_code == 403
    assert (await client.get("/v1/webhooks/deliveries")).status_code == 401


async def test_delivery_log_pages_newest_first_with_a_capped_page_size(client, ctx, hooks) -> None:
    client_id, _, bank = await partner_session(client, kind="bank")
    ids = []
    for n in range(5):
        event = OutboxEvent(public_id=f"evt_page{n}{time.time_ns() % 10**10}", topic="authorization.revoked",
                            aggregate_id="authz_x", recipient=client_id, payload={"n": n}, status="dead")
        await OutboxEvent.insert(event)
        ids.append(event.public_id)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/webhooks/deliveries", params=params, headers=bank.headers)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert (await client.get("/v1/webhooks/deliveries", params={"limit": 101}, headers=bank.headers)).status_code == 422
    assert (await client.get("/v1/webhooks/deliveries", params={"status": "bogus"},
                             headers=bank.headers)).status_code == 422
    assert (await client.get("/v1/webhooks/deliveries", params={"cursor": "evt_unknown"},
                             headers=bank.headers)).json()["code"] == "invalid_cursor"
    delivered = (await client.get("/v1/webhooks/deliveries", params={"status": "delivered"},
                                  headers=bank.headers)).json()
    assert delivered["items"] == []


async def test_expiring_soon_is_announced_once_per_authorization(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="韩七")
    _, _, bank = await partner_session(client, kind="bank")
    soon = await authorization_for(client, bank, citizen, validity_days=2)
    later = await authorization_for(client, bank, citizen, validity_days=30)
    await emit_expiring_soon(days=3)
    await emit_expiring_soon(days=3)
    rows = await OutboxEvent.select().where(OutboxEvent.topic == "authorization.expiring_soon").where(
        OutboxEvent.aggregate_id.is_in([soon, later])).output(load_json=True)
    assert [r["aggregate_id"] for r in rows] == [soon]
    assert rows[0]["payload"]["authorization_id"] == soon
    assert rows[0]["payload"]["valid_until"]

    # Pulled closer still (or a second worker racing): still one event.
    await Authorization.update({Authorization.valid_until: datetime.now(UTC) + timedelta(hours=1)}).where(
        Authorization.public_id == soon)
    await asyncio.gather(emit_expiring_soon(days=3), emit_expiring_soon(days=3))
    assert await OutboxEvent.count().where((OutboxEvent.topic == "authorization.expiring_soon")
                                           & (OutboxEvent.aggregate_id == soon)) == 1


async def test_simulated_bank_and_city_apps() -> None:
    secret = "whsec_" + "C" * 43
    body = event_body(event_id="evt_sim1", topic="authorization.revoked", created_at=datetime.now(UTC),
                      data={"authorization_id": "authz_1"})
    seen: list[str] = []

    async def handler(_: Any, event: dict[str, Any]) -> None:
        seen.append(event["id"])

    app = bank_app(webhook_secret=secret, handlers={"authorization.revoked": handler})
    async with AsyncTestClient(app=app) as bank:
        for _ in range(2):  # a redelivery is acknowledged but acted on once
            ok = await bank.post("/webhooks", content=body, headers=sign(secret=secret, event_id="evt_sim1", body=body))
            assert ok.status_code == 204
        tampered = await bank.post("/webhooks", content=body.replace(b"revoked", b"authorized"),
                                   headers=sign(secret=secret, event_id="evt_sim1", body=body))
        assert tampered.status_code == 401
        stale = await bank.post("/webhooks", content=body, headers=sign(
            secret=secret, event_id="evt_sim1", body=body, timestamp=datetime.now(UTC) - timedelta(minutes=10)))
        assert stale.status_code == 401
    assert seen == ["evt_sim1"]

    keys = CityKeys.generate()
    async with AsyncTestClient(app=city_app(issuer="http://city.test", keys=keys)) as city:
        jwks = (await city.get("/.well-known/jwks.json")).json()
        token = (await city.get("/passports/oid_abc")).json()["passport"]
        assert (await city.get("/passports/bad%20id")).status_code == 400
    key = jwt.PyJWK(jwks["keys"][0])
    assert jwt.get_unverified_header(token)["kid"] == key.key_id == keys.kid
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"])
    assert (claims["iss"], claims["sub"]) == ("http://city.test", "oid_abc")
    assert claims["tier"] in ("AAA", "AA", "A", "B", "C")


# ------------------------------------------------------------------ helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _simulated_bank(port: int, secret: str) -> Iterator[subprocess.Popen[str]]:
    """`xinyi simulate bank` in a subprocess, interrupted on exit (its output stays readable)."""
    xinyi = shutil.which("xinyi") or str(Path(sys.executable).with_name("xinyi"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["XINYI_SIM_WEBHOOK_SECRET"] = secret  # not on the command line, where ps would show it
    process = subprocess.Popen([xinyi, "simulate", "bank", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the simulated bank did not start"
            time.sleep(0.2)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
