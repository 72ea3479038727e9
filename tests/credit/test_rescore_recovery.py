"""Re-scoring follows every committed record, even when the request fails between its commit and the
re-scoring: the data source's retry completes it, and so does the background job on its own.

The fault is the store going away at exactly that instant (`tests.factories.score_cache_lost`): the records
are committed by then, but the cached score every reader sees is the old one and the data source is answered
503."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from datetime import date
from typing import Any

import httpx
import pytest

from api.background import run_once
from api.context import AppContext
from credit.identity import new_public_id
from credit.scores import recompute_person
from credit.tables import CreditRecord, CurrentScore, PendingRescore, Person
from tests.factories import (
    RegistryPerson,
    add_record,
    bound_citizen,
    id_number,
    partner_session,
    push_records,
    record_row,
    score_cache_lost,
)
from tests.servers import xinyi_process, xinyi_server


async def _score(client: Any, citizen: Any) -> dict[str, Any]:
    r = await client.get("/v1/me/score", headers=citizen.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _total(client: Any, citizen: Any) -> int:
    return int((await _score(client, citizen))["total"])


async def _pk(citizen: Any) -> int:
    row = await Person.select(Person._meta.primary_key).where(Person.public_id == citizen.person.public_id).first()
    assert row is not None
    return int(row["id"])


async def _fail_after_commit(client: Any, ctx: AppContext, monkeypatch: pytest.MonkeyPatch, *, name: str
                             ) -> tuple[Any, Any, list[dict[str, Any]], int]:
    """A batch whose records commit and whose re-scoring then fails; returns (citizen, source, rows, score)."""
    citizen = await bound_citizen(client, ctx, name=name)
    source_id, _, source = await partner_session(client, kind="data_source")
    before = await _total(client, citizen)  # now cached: what every reader sees until it is rewritten
    rows = [record_row(citizen.person, category="court_judgment", title="判决未履行", severity="serious")]
    with score_cache_lost(ctx, monkeypatch):
        failed = await push_records(client, source, rows)
    assert failed.status_code == 503, failed.text
    # Written all the same, and the citizen's score is now stale.
    assert await CreditRecord.count().where((CreditRecord.source == source_id)
                                            & (CreditRecord.source_ref == rows[0]["source_ref"])) == 1
    assert await _total(client, citizen) == before
    return citizen, source, rows, before


async def test_the_retry_of_a_batch_that_failed_after_its_commit_rescores(client, ctx, monkeypatch) -> None:
    citizen, source, rows, before = await _fail_after_commit(client, ctx, monkeypatch, name="沈一")

    retry = await push_records(client, source, rows)
    assert retry.status_code == 200, retry.text
    assert retry.json()["summary"] == {"accepted": 0, "updated": 0, "duplicate": 1, "rejected": 0}
    assert retry.json()["rescored_persons"] == 1
    assert await _total(client, citizen) < before
    history = (await client.get("/v1/me/score/history", headers=citizen.headers)).json()["items"]
    assert history[0]["trigger"] == "record_change"

    # Done once: the next retry has nothing left to do.
    again = await push_records(client, source, rows)
    assert again.json()["rescored_persons"] == 0


async def test_the_background_job_alone_rescores_a_batch_that_failed_after_its_commit(client, ctx,
                                                                                       monkeypatch) -> None:
    citizen, _, _, before = await _fail_after_commit(client, ctx, monkeypatch, name="沈二")

    report = await run_once(ctx)  # what `xinyi worker` (or the app's lifespan) runs on its interval
    assert report["rescored_persons"] >= 1
    assert await _total(client, citizen) < before
    assert not await PendingRescore.exists().where(PendingRescore.person == await _pk(citizen))


async def test_an_objection_whose_rescoring_failed_is_rescored_by_the_background_job(client, ctx,
                                                                                      monkeypatch) -> None:
    citizen = await bound_citizen(client, ctx, name="沈三")
    record_id = await add_record(ctx, citizen.person, category="court_judgment", severity="serious")
    await recompute_person(store=ctx.store, person_id=await _pk(citizen), trigger="record_change")
    assert (await _score(client, citizen))["objected_records"] == 0
    with score_cache_lost(ctx, monkeypatch):
        failed = await client.post("/v1/me/objections", headers=citizen.headers,
                                   json={"record_id": record_id, "reason": "这条判决已经履行完毕"})
    assert failed.status_code == 503, failed.text
    assert await CreditRecord.select(CreditRecord.status).where(CreditRecord.public_id == record_id).first() == {
        "status": "objected"}
    assert (await _score(client, citizen))["objected_records"] == 0  # stale

    assert (await run_once(ctx))["rescored_persons"] >= 1
    assert (await _score(client, citizen))["objected_records"] == 1


async def _many_persons(ctx: AppContext, count: int) -> list[RegistryPerson]:
    """`count` new registry persons, inserted in bulk (as the identity data source's import would)."""
    numbers: dict[str, str] = {}
    while len(numbers) < count:
        number = id_number(birth=f"{random.randrange(1984, 2006)}{random.randrange(1, 13):02d}"
                                 f"{random.randrange(1, 29):02d}")
        numbers[ctx.cipher.lookup_hash("id_number", number)] = number
    hashes = list(numbers)
    taken = {r["id_number_hash"] for start in range(0, count, 500) for r in await Person.select(
        Person.id_number_hash).where(Person.id_number_hash.is_in(hashes[start:start + 500]))}
    persons = [RegistryPerson(public_id=new_public_id("psn"), name=f"批量{i}", id_number=numbers[h])
               for i, h in enumerate(hashes) if h not in taken]
    for start in range(0, len(persons), 500):
        await Person.insert(*(Person(
            public_id=p.public_id, name=p.name, id_number_hash=ctx.cipher.lookup_hash("id_number", p.id_number),
            id_number_enc=ctx.cipher.encrypt("id_number", p.id_number), gender="F", birth_date=date(1990, 1, 1),
            region_code=p.id_number[:6]) for p in persons[start:start + 500]))
    return persons


async def test_a_server_killed_between_the_commit_and_the_rescoring_is_completed_by_the_retry(client, ctx) -> None:
    """A real `xinyi serve` is SIGKILLed as soon as a big batch's records are committed, while it re-scores
    their persons: the marks of those it had not reached survive the crash, and the data source's retry, on a
    new server, re-scores exactly those."""
    persons = await _many_persons(ctx, 1500)
    pks = [int(r["id"]) for start in range(0, len(persons), 500) for r in await Person.select(
        Person._meta.primary_key).where(Person.public_id.is_in([p.public_id for p in persons[start:start + 500]]))]
    source_id, _, source = await partner_session(client, kind="data_source")
    rows = [record_row(p, category="utility_arrears", title="水费欠缴") for p in persons]

    with xinyi_process(["serve"], ready_path="/health/ready") as (base, process):
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            sending = asyncio.create_task(http.post("/v1/records/batch", json=rows, headers=source.headers))
            deadline = time.monotonic() + 120
            while await CreditRecord.count().where(CreditRecord.source == source_id) < len(rows):
                assert not sending.done(), "the batch was answered before its commit was seen"
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)
            os.killpg(process.pid, signal.SIGKILL)
            with pytest.raises(httpx.HTTPError):
                await sending  # the data source never hears back

    left = await PendingRescore.count().where(PendingRescore.person.is_in(pks))
    unscored = len(pks) - await CurrentScore.count().where(CurrentScore.person.is_in(pks))
    assert 0 < unscored <= left  # the records are there; some of their persons were never re-scored

    with xinyi_server(["serve"], ready_path="/health/ready") as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            retry = await http.post("/v1/records/batch", json=rows, headers=source.headers)
    assert retry.status_code == 200, retry.text
    assert retry.json()["summary"] == {"accepted": 0, "updated": 0, "duplicate": len(rows), "rejected": 0}
    assert retry.json()["rescored_persons"] == left
    assert await PendingRescore.count().where(PendingRescore.person.is_in(pks)) == 0
    assert await CurrentScore.count().where(CurrentScore.person.is_in(pks)) == len(pks)
