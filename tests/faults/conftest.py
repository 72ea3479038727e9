"""Fault tests: a private PostgreSQL and Redis (tests/faults/services.py), migrated and seeded through our own
factories, and the API served by `xinyi serve` (granian, XINYI_ENV=production) pointed at them.

These tests stop and restart services, so they never run in the plain `pytest` (tests/conftest.py leaves
this folder out unless it is asked for): `.ci/faults` runs `pytest tests/faults`.

The in-process app of tests/conftest.py (`client`, `ctx`) is pointed at the same private services, so the
factories seed exactly the database and store the server uses; both share one set of fresh secrets, so a
token the factories obtain in-process is valid on the server.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from api.app import create_app
from api.migrations import migrate_async
from core.settings import Settings, generate_secret
from credit.tables import Authorization
from loadtests.runner import SECRET_VARS, production_env
from partners.services import update_partner
from tests.factories import (
    Citizen,
    Session,
    WebhookReceiver,
    authorization_for,
    bound_citizen,
    operator_session,
    partner_session,
)
from tests.faults.services import PrivatePostgres, PrivateRedis, private_workdir
from tests.scenario_factories import Merchant, admin_benefit, merchant_session
from tests.servers import xinyi_server

# One set of real secrets for the in-process app and the production server alike.
_SECRETS = {var: os.environ.get(var) or generate_secret() for var in SECRET_VARS}
os.environ.update(_SECRETS)

UNLIMITED = 1_000_000_000
READY_TIMEOUT_SECONDS = 60.0


@dataclass
class Services:
    postgres: PrivatePostgres
    redis: PrivateRedis
    workdir: Path


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    workdir = private_workdir()
    postgres, redis = PrivatePostgres(workdir), PrivateRedis(workdir)
    try:
        postgres.init()
        redis.start()
        yield Services(postgres=postgres, redis=redis, workdir=workdir)
    finally:
        redis.kill()
        postgres.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
async def app(services: Services) -> Litestar:
    """tests/conftest.py's app, on the private services (whatever DATABASE_URL / REDIS_URL said before)."""
    os.environ["DATABASE_URL"] = services.postgres.url
    os.environ["REDIS_URL"] = services.redis.url
    await migrate_async()
    return create_app(Settings.from_env())


@pytest.fixture(scope="session")
def sms_gateway() -> Iterator[WebhookReceiver]:
    """The SMS gateway the production server posts codes to (a real HTTP server on loopback)."""
    gateway = WebhookReceiver(default=200)
    yield gateway
    gateway.close()


def server_env(sms_gateway: WebhookReceiver) -> dict[str, str]:
    """The environment of `xinyi serve` with production settings on the private services."""
    env = production_env(dict(os.environ), _SECRETS)
    env["XINYI_SMS_GATEWAY_URL"] = sms_gateway.url("/sms")
    env.pop("XINYI_TRUST_FORWARDED_FOR", None)  # production default: the peer address is the client
    env["XINYI_BENEFIT_CODES_PER_HOUR"] = str(UNLIMITED)  # the load asks for codes faster than any citizen
    return env


@pytest.fixture(scope="session")
def server(client: Any, services: Services, sms_gateway: WebhookReceiver) -> Iterator[str]:
    """`xinyi serve` with production settings on the private services; yields its base URL."""
    with xinyi_server(["serve", "--host", "127.0.0.1", "--workers", "1"], ready_path="/health/ready",
                      env=server_env(sms_gateway)) as base:
        yield base


@pytest.fixture(scope="session")
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=30) as c:
        yield c


@dataclass
class World:
    """What the fault tests act with: callers of every kind and what they act on."""

    citizens: list[Citizen]
    officer: Session
    bank: Session
    authorization_ids: list[str]
    travel: Merchant  # redeems `travel_benefit` (unlimited)
    travel_benefit: str
    rental: Merchant  # opens deposit-free credit orders in a scenario of its own


@pytest.fixture(scope="session")
async def world(client: Any, ctx: Any) -> World:
    officer = await operator_session(client)
    bank_id, _, bank = await partner_session(client, kind="bank")
    citizens = [await bound_citizen(client, ctx, name=f"故障{n}") for n in range(6)]
    authorization_ids = [await authorization_for(client, bank, c, purpose="deposit_waiver",
                                                 scopes=["tier", "score_band"]) for c in citizens]
    travel = await merchant_session(client, "travel")
    benefit = await admin_benefit(client, officer=officer, scenario="travel", name="故障测试优惠")
    code = f"f{secrets.token_hex(4)}"
    r = await client.post("/v1/admin/scenarios", headers=officer.headers, json={"code": code, "name": "故障场景"})
    assert r.status_code == 201, r.text
    rental = await merchant_session(client, code)
    await admin_benefit(client, officer=officer, scenario=code, kind="deposit_waiver", value=50_000)
    # The load measures fault handling, not contractual limits: lift them (as the load tests do).
    for client_id in (bank_id, travel.client_id, rental.client_id):
        await update_partner(client_id=client_id, rate_limit_per_second=UNLIMITED, daily_quota=UNLIMITED)
    await Authorization.update({Authorization.daily_cap: UNLIMITED}).where(
        Authorization.partner_client_id == bank_id)
    return World(citizens=citizens, officer=officer, bank=bank, authorization_ids=authorization_ids, travel=travel,
                 travel_benefit=str(benefit["id"]), rental=rental)


async def wait_until_ready(http: httpx.AsyncClient) -> None:
    """Poll /health/ready until it answers 200 (the server recovers by itself; nothing is restarted)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            r = await http.get("/health/ready", timeout=5)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not become ready again by itself"
        await asyncio.sleep(0.2)
