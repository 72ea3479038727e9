"""Re-scoring follows every committed record, even when the request fails between its commit and the
re-scoring: the data source's retry completes it, and so does the background job on its own.

The fault is the store going away at exactly that instant (`tests.factories.score_cache_lost`): the records
are committed by then, but the cached score every reader sees is the old one and the data source is answered
503."""

from __future__ import annotations

from typing import Any

import pytest

from api.background import run_once
from api.context import AppContext
from credit.scores import recompute_person
from credit.tables import CreditRecord, PendingRescore, Person
from tests.factories import add_record, bound_citizen, partner_session, push_records, record_row, score_cache_lost


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
