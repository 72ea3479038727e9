"""PostgreSQL restarted under load (score queries, benefit redemptions, credit orders) against a production
server: while it is away every answer is a clean 503 `database_unavailable`, the pool recovers by itself,
and afterwards the database holds every answered write completely and nothing half-done, every score
query answered 200 has its ledger entry, and `xinyi ledger verify` passes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core import db
from loadtests.crash import entries_missing
from scenarios import codes
from tests.faults.conftest import Services, World, wait_until_ready
from tests.servers import XINYI

PROBLEM_JSON = "application/problem+json"
RECOVERY_TIMEOUT_SECONDS = 60.0
SCORE, CODE, VERIFY, REDEEM, ORDER = "score query", "benefit code", "benefit verify", "redeem", "credit order"


@dataclass
class Answer:
    kind: str
    at: float
    status: int | None  # None: no HTTP answer at all (connection reset, timeout)
    code: str | None = None
    problem_json: bool = False
    body: dict[str, Any] = field(default_factory=dict)
    ref: str = ""  # what the request was about: authorization id, verification id, merchant order number


@dataclass
class Load:
    """Concurrent callers against the server, each recording every answer it gets."""

    http: httpx.AsyncClient
    world: World
    answers: list[Answer] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _send(self, kind: str, ref: str, method: str, path: str, **kwargs: Any) -> Answer:
        try:
            r = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError:
            answer = Answer(kind=kind, at=time.monotonic(), status=None, ref=ref)
        else:
            body = r.json() if r.headers.get("content-type", "").endswith("json") else {}
            answer = Answer(kind=kind, at=time.monotonic(), status=r.status_code, code=body.get("code"),
                            problem_json=r.headers.get("content-type", "").startswith(PROBLEM_JSON), body=body,
                            ref=ref)
        self.answers.append(answer)
        if answer.status is None or answer.status >= 500:
            await asyncio.sleep(0.02)  # a client backing off a little, not hammering a down service
        return answer

    async def _scores(self) -> None:
        while not self.stop.is_set():
            authorization_id = random.choice(self.world.authorization_ids)
            await self._send(SCORE, authorization_id, "POST", "/v1/scores/query", headers=self.world.bank.headers,
                             json={"authorization_id": authorization_id})

    async def _verification(self, merchant: Any) -> str | None:
        """A citizen shows a fresh code and `merchant` verifies it (both may meet the outage)."""
        citizen = random.choice(self.world.citizens)
        code = await self._send(CODE, "", "POST", "/v1/me/benefit-codes", headers=citizen.headers, json={})
        if code.status != 201:
            return None
        verified = await self._send(VERIFY, str(code.body["code"]), "POST", "/v1/benefits/verify",
                                    headers=merchant.headers,
                                    json={"code": code.body["code"], "scenario": merchant.scenario})
        return str(verified.body["verification_id"]) if verified.status == 200 else None

    async def _redemptions(self) -> None:
        while not self.stop.is_set():
            verification_id = await self._verification(self.world.travel)
            if verification_id is not None:
                await self._send(REDEEM, verification_id, "POST", "/v1/benefits/redeem",
                                 headers={**self.world.travel.headers, "Idempotency-Key": secrets.token_hex(8)},
                                 json={"verification_id": verification_id, "benefit_id": self.world.travel_benefit})

    async def _orders(self) -> None:
        due = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        while not self.stop.is_set():
            verification_id = await self._verification(self.world.rental)
            if verification_id is not None:
                number = f"LOAD-{secrets.token_hex(6)}"
                await self._send(ORDER, number, "POST", "/v1/credit-orders", headers=self.world.rental.headers,
                                 json={"verification_id": verification_id, "kind": "deposit_free",
                                       "amount_fen": 100, "merchant_order_no": number, "due_at": due})

    def start(self) -> list[asyncio.Task[None]]:
        workers = [self._scores] * 3 + [self._redemptions] * 2 + [self._orders] * 2
        return [asyncio.create_task(w()) for w in workers]

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Keep the load running until `condition` holds (bounded: the load itself is the clock)."""
        deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
        while not condition():
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            await asyncio.sleep(0.05)

    def seen(self, kinds: tuple[str, ...], *, since: float, ok: bool) -> bool:
        """Whether each of `kinds` got a 2xx (ok) or a 5xx (not ok) answer after `since`."""
        got = {a.kind for a in self.answers if a.at >= since and a.status is not None
               and (200 <= a.status < 300 if ok else a.status >= 500)}
        return set(kinds) <= got


def _clean(answer: Answer) -> bool:
    return answer.status is not None and (200 <= answer.status < 300 or (
        answer.status == 503 and answer.problem_json and answer.code == "database_unavailable"))


async def _database_consistent(ctx: Any, world: World, answers: list[Answer], services: Services) -> None:
    engine = ctx.engine
    ok = [a for a in answers if a.status is not None and 200 <= a.status < 300]

    # Every score query answered 200 has its ledger entry (same authorization, allowed).
    answered = {int(a.body["ledger_seq"]): a.ref for a in ok if a.kind == SCORE}
    assert answered, "no score query was answered"
    assert await entries_missing(engine, answered) == []

    # Redemptions: every 201 exists; for every (person, period) the quota counter equals the redemptions
    # that exist — a redemption without its count, or a count without its redemption, is half-done.
    redeemed = {str(a.body["id"]) for a in ok if a.kind == REDEEM}
    assert redeemed, "no redemption was answered"
    rows = await db.fetch_all(engine, "SELECT public_id FROM benefit_redemptions WHERE public_id = ANY($1) "
                                      "AND status = 'redeemed'", sorted(redeemed))
    assert {r["public_id"] for r in rows} == redeemed
    counts = await db.fetch_all(engine, """
        SELECT r.person, r.period_key, count(*) AS redemptions, min(u.used) AS used
        FROM benefit_redemptions r JOIN benefits b ON b.id = r.benefit
        LEFT JOIN benefit_usages u ON u.benefit = r.benefit AND u.person = r.person AND u.period_key = r.period_key
        WHERE b.public_id = $1 AND r.status = 'redeemed' GROUP BY r.person, r.period_key""", world.travel_benefit)
    assert all(c["used"] == c["redemptions"] for c in counts), counts
    counters = await db.fetch_one(engine, "SELECT coalesce(sum(u.used), 0) AS used FROM benefit_usages u "
                                          "JOIN benefits b ON b.id = u.benefit WHERE b.public_id = $1",
                                  world.travel_benefit)
    assert counters is not None
    assert counters["used"] == sum(c["redemptions"] for c in counts)

    # Credit orders: every 201 exists with its hold, its webhook and its ledger entry; no order of the merchant
    # (answered or not) lacks its webhook, and every citizen's hold is exactly the sum of their open orders.
    opened = {str(a.body["id"]) for a in ok if a.kind == ORDER}
    assert opened, "no credit order was answered"
    orders = await db.fetch_all(engine, """
        SELECT o.public_id, o.status, o.merchant_order_no,
               EXISTS (SELECT 1 FROM outbox_events e WHERE e.aggregate_id = o.public_id
                       AND e.topic = 'credit_order.authorized') AS has_event
        FROM credit_orders o WHERE o.merchant_client_id = $1""", world.rental.client_id)
    assert opened <= {o["public_id"] for o in orders}
    assert all(o["has_event"] for o in orders), [o for o in orders if not o["has_event"]]
    digests = [hashlib.sha256(f"allowed:{order_id}".encode()).hexdigest() for order_id in sorted(opened)]
    ledgered = await db.fetch_all(engine, "SELECT result_digest FROM access_ledger WHERE action = 'credit_order.open' "
                                          "AND outcome = 'allowed' AND result_digest = ANY($1)", digests)
    assert len({r["result_digest"] for r in ledgered}) == len(opened)
    holds = await db.fetch_all(engine, """
        SELECT u.person, u.reserved_fen, coalesce((SELECT sum(o.amount_fen) FROM credit_orders o
            WHERE o.person = u.person AND o.status IN ('authorized', 'defaulted')), 0) AS open_fen
        FROM credit_line_usages u""")
    assert all(h["reserved_fen"] == h["open_fen"] for h in holds), holds

    # A verification the merchant did not get never spends the citizen's code: it can be shown again.
    recent = time.monotonic() - 45  # codes live 60 s; older ones may have expired by themselves since
    refused = [a.ref for a in answers if a.kind == VERIFY and a.status != 200 and a.at > recent]
    spent = [c for c in refused if await ctx.store.get(codes.CODE_DOMAIN, c) is None]
    assert not spent, f"{len(spent)} of {len(refused)} codes spent by a verification that answered 503"

    # The whole chain still verifies (a fresh process, as an operator would run it).
    env = {**os.environ, "DATABASE_URL": services.postgres.url, "REDIS_URL": services.redis.url}
    verify = await asyncio.to_thread(subprocess.run, [XINYI, "ledger", "verify"], env=env, capture_output=True,
                                     text=True, check=False, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize("fault", ["pg_ctl restart -m fast", "pg_ctl stop -m immediate, then start"])
async def test_postgres_restart_under_load(*, fault: str, services: Services, server: str,
                                           http: httpx.AsyncClient, ctx: Any, world: World) -> None:
    load = Load(http=http, world=world)
    tasks = load.start()
    try:
        began = time.monotonic()
        await load.until(lambda: load.seen((SCORE, REDEEM, ORDER), since=began, ok=True), "the load to get going")
        struck = time.monotonic()
        if fault.startswith("pg_ctl restart"):
            await asyncio.to_thread(services.postgres.restart_fast)
        else:
            await asyncio.to_thread(services.postgres.stop, "immediate")
            # Stay down until every kind of caller has met the outage, so its answers are put to the test.
            await load.until(lambda: load.seen((SCORE, CODE), since=struck, ok=False), "503s during the outage")
            await asyncio.to_thread(services.postgres.start)
        await wait_until_ready(http)
        recovered = time.monotonic()
        # The pool recovers by itself: every kind of write succeeds again, with no restart of the API.
        await load.until(lambda: load.seen((SCORE, REDEEM, ORDER), since=recovered, ok=True),
                         "every kind of request to succeed again")
    finally:
        load.stop.set()
        await asyncio.gather(*tasks)

    # The fault was felt: without an answer it failed, the checks below would pass without testing anything.
    assert any(a.status is not None and a.status >= 500 for a in load.answers if struck <= a.at < recovered), \
        "no request met the outage"
    unclean = [(a.kind, a.status, a.code) for a in load.answers if not _clean(a)]
    assert not unclean, f"answers other than 2xx or 503 database_unavailable: {unclean[:20]}"
    await _database_consistent(ctx, world, load.answers, services)
