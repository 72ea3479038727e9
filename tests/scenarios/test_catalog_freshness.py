"""An operator's change to the 信易+ catalog reaches every server process within the stated bound.

Two real `xinyi serve` processes warm their catalogs, an operator changes the catalog through a third
(the in-process app), and after `CATALOG_MAX_AGE_SECONDS` the first request on each process acts on the
changed catalog: the removed merchant's redemptions and credit orders are refused, verifications list the
new benefit. Each process issues, verifies and redeems its own codes, so the test needs no shared store and
runs on SQLite + the in-process store as well as on PostgreSQL + Redis.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from scenarios.catalog import CATALOG, CATALOG_MAX_AGE_SECONDS, CatalogCache
from scenarios.tables import Benefit
from tests.factories import Citizen, bound_citizen, operator_session
from tests.scenario_factories import Merchant, admin_benefit, benefit_code, merchant_session, verify_code
from tests.servers import xinyi_server

MARGIN = 0.5
"""Slack on top of the bound for the request itself to reach the server."""


@pytest.fixture
def two_servers(app) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Two more `xinyi serve` processes on the same database (and Redis, when configured)."""
    with ExitStack() as stack:
        yield [stack.enter_context(xinyi_server(["serve"], ready_path="/health/ready")) for _ in range(2)]


async def _own_scenario(client: Any, officer: Any) -> str:
    code = f"t{secrets.token_hex(4)}"
    r = await client.post("/v1/admin/scenarios", headers=officer.headers,
                          json={"code": code, "name": "测试场景", "description": "仅供测试"})
    assert r.status_code == 201, r.text
    return code


async def _verification(server: httpx.AsyncClient, merchant: Merchant, citizen: Citizen) -> dict[str, Any]:
    """The citizen shows a code issued by `server` and the merchant verifies it there (one process's store)."""
    return await verify_code(server, merchant, await benefit_code(server, citizen))


async def _redeem(server: httpx.AsyncClient, merchant: Merchant, verification_id: str, benefit_id: str) -> Any:
    return await server.post("/v1/benefits/redeem", json={"verification_id": verification_id, "benefit_id": benefit_id},
                             headers={**merchant.headers, "Idempotency-Key": secrets.token_hex(8)})


async def _open_order(server: httpx.AsyncClient, merchant: Merchant, verification_id: str) -> Any:
    return await server.post("/v1/credit-orders", headers=merchant.headers, json={
        "verification_id": verification_id, "kind": "deposit_free", "amount_fen": 10_000,
        "merchant_order_no": f"NO-{secrets.token_hex(6)}",
        "due_at": (datetime.now(UTC) + timedelta(days=7)).isoformat()})


async def _wait_out_the_bound(since: float) -> None:
    await asyncio.sleep(max(0.0, since + CATALOG_MAX_AGE_SECONDS + MARGIN - time.monotonic()))


def _ids(answer: dict[str, Any]) -> list[str]:
    return [b["benefit_id"] for b in answer["benefits"]]


async def test_a_catalog_change_reaches_both_processes_within_the_bound(client, ctx, two_servers) -> None:
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    kept = await merchant_session(client, scenario)
    removed = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="温十七")
    waiver = await admin_benefit(client, officer=officer, scenario=scenario, kind="deposit_waiver", value=50_000,
                                 merchants=[kept.client_id, removed.client_id])
    async with httpx.AsyncClient(base_url=two_servers[0], timeout=10) as first, \
            httpx.AsyncClient(base_url=two_servers[1], timeout=10) as second:
        servers = (first, second)
        # Both processes read the catalog: each has a snapshot in which `removed` takes part in the waiver.
        held = [[await _verification(server, removed, citizen) for _ in range(3)] for server in servers]
        assert all(_ids(answer) == [waiver["id"]] for answers in held for answer in answers)

        # The operator takes the merchant off the benefit (through a process neither server is).
        taken_off = await client.patch(f"/v1/admin/benefits/{waiver['id']}", headers=officer.headers,
                                       json={"merchants": [kept.client_id]})
        assert taken_off.status_code == 200, taken_off.text
        await _wait_out_the_bound(time.monotonic())
        for index, (server, answers) in enumerate(zip(servers, held, strict=True)):
            # The first request each process serves after the bound is a redemption on one, an order on the other.
            attempts = [("order", answers[0]), ("redeem", answers[1]), ("order", answers[2])] if index else \
                       [("redeem", answers[0]), ("order", answers[1]), ("redeem", answers[2])]
            for what, answer in attempts:
                if what == "redeem":
                    r = await _redeem(server, removed, answer["verification_id"], waiver["id"])
                    assert (r.status_code, r.json().get("code")) == (422, "benefit_not_applicable"), (index, r.text)
                else:
                    r = await _open_order(server, removed, answer["verification_id"])
                    assert (r.status_code, r.json().get("code")) == (422, "credit_order_not_offered"), (index, r.text)

        # The operator adds a benefit every merchant of the scenario gives.
        added = await admin_benefit(client, officer=officer, scenario=scenario)
        await _wait_out_the_bound(time.monotonic())
        for index, server in enumerate(servers):
            for _ in range(3):
                answer = await _verification(server, kept, citizen)
                assert added["id"] in _ids(answer), (index, answer)


async def test_a_cache_never_hands_out_a_snapshot_older_than_its_bound(client, ctx) -> None:
    """What another process's write looks like to this one: the row changes and nobody calls `invalidate`."""
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario)
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, merchants=[merchant.client_id])
    cache = CatalogCache(max_age_seconds=0.3)
    assert (await cache.get()).benefits[benefit["id"]].merchants == (merchant.client_id,)
    await Benefit.update({Benefit.merchants: ""}).where(Benefit.public_id == benefit["id"])
    await asyncio.sleep(0.4)
    assert (await cache.get()).benefits[benefit["id"]].merchants == ()

    # The same after a long idle spell: the first caller waits for the database instead of getting old news.
    await Benefit.update({Benefit.status: "paused"}).where(Benefit.public_id == benefit["id"])
    await asyncio.sleep(0.4)
    assert (await cache.get()).benefits[benefit["id"]].status == "paused"


async def test_a_change_shows_on_the_next_redeem_and_verification(client, ctx) -> None:
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    kept = await merchant_session(client, scenario)
    removed = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="温十八")
    benefit = await admin_benefit(client, officer=officer, scenario=scenario,
                                  merchants=[kept.client_id, removed.client_id])
    held = await verify_code(client, removed, await benefit_code(client, citizen))
    kept_held = await verify_code(client, kept, await benefit_code(client, citizen))

    # Changed through this process: the very next redemption and verification see it.
    r = await client.patch(f"/v1/admin/benefits/{benefit['id']}", headers=officer.headers,
                           json={"merchants": [kept.client_id]})
    assert r.status_code == 200, r.text
    refused = await _redeem(client, removed, held["verification_id"], benefit["id"])
    assert (refused.status_code, refused.json().get("code")) == (422, "benefit_not_applicable")
    added = await admin_benefit(client, officer=officer, scenario=scenario)
    assert added["id"] in _ids(await verify_code(client, kept, await benefit_code(client, citizen)))

    # Changed by another process (the row changes, this process is not told): seen once the bound has passed.
    await Benefit.update({Benefit.merchants: removed.client_id}).where(Benefit.public_id == benefit["id"])
    await _wait_out_the_bound(time.monotonic())
    late = await _redeem(client, kept, kept_held["verification_id"], benefit["id"])
    assert (late.status_code, late.json().get("code")) == (422, "benefit_not_applicable"), late.text


async def test_a_read_after_a_moment_is_made_only_when_the_cached_one_is_older(client) -> None:
    """A merchant retrying with a verification made before it was taken off a benefit costs no catalog reads."""
    cache = CatalogCache()
    before = time.time()
    first = await cache.get()
    assert await cache.get(read_after=before) is first  # read after `before`: nothing to do
    after = time.time()
    second = await cache.get(read_after=after)
    assert second is not first
    assert await cache.get(read_after=after) is second
    assert await cache.get() is second


async def test_a_merchant_just_added_elsewhere_opens_an_order_on_a_worker_with_an_older_catalog(
        client, ctx, monkeypatch) -> None:
    """Verified where the new participating list is known, the order opened where the cache is seconds older."""
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario)
    other = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="温十九")
    waiver = await admin_benefit(client, officer=officer, scenario=scenario, kind="deposit_waiver", value=50_000,
                                 merchants=[other.client_id])
    read_before = time.time()
    older = await CATALOG.get()
    joined = await client.patch(f"/v1/admin/benefits/{waiver['id']}", headers=officer.headers,
                                json={"merchants": [other.client_id, merchant.client_id]})
    assert joined.status_code == 200, joined.text
    answer = await verify_code(client, merchant, await benefit_code(client, citizen))
    assert _ids(answer) == [waiver["id"]]
    monkeypatch.setattr(CATALOG, "_snapshot", older)  # what another worker still holds: within the bound,
    monkeypatch.setattr(CATALOG, "_read_at", time.monotonic())
    monkeypatch.setattr(CATALOG, "_read_at_wall", read_before)  # but read before the verification was made
    r = await _open_order(client, merchant, answer["verification_id"])
    assert r.status_code == 201, r.text
