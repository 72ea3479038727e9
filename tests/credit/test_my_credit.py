"""The citizen's own score, its history, their records; recomputation and background expiry."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime, timedelta

from api.background import run_once
from credit.tables import Authorization, CurrentScore, Person
from tests.factories import add_record, authorization_for, bound_citizen, partner_session
from tests.servers import XINYI


async def test_score_is_explained_and_history_follows_changes(client, ctx) -> None:
    from credit.scores import recompute_person

    citizen = await bound_citizen(client, ctx, name="尤一")
    first = (await client.get("/v1/me/score", headers=citizen.headers)).json()
    assert first["total"] == 650
    assert first["tier"] == "A"
    assert [d["code"] for d in first["dimensions"]] == ["identity", "fulfilment", "history", "contribution",
                                                         "compliance"]
    assert first["dimensions"][0]["name"] == "身份特质"
    await add_record(ctx, citizen.person, category="dishonest_executee", severity="serious", days_ago=5)
    pid = (await Person.select(Person._meta.primary_key).where(Person.public_id == citizen.person.public_id)
           .first())["id"]
    await recompute_person(store=ctx.store, person_id=pid, trigger="record_change")
    after = (await client.get("/v1/me/score", headers=citizen.headers)).json()
    assert after["total"] < first["total"]
    assert after["reasons"][0]["code"] == "NEG_DISHONEST_EXECUTEE"
    assert after["reasons"][0]["impact"] < 0
    history = (await client.get("/v1/me/score/history", headers=citizen.headers)).json()["items"]
    assert [h["total"] for h in history[:2]] == [after["total"], first["total"]]


async def test_records_are_listed_newest_first_with_periods_and_paging(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="许二")
    await add_record(ctx, citizen.person, category="volunteer_service", days_ago=30)
    await add_record(ctx, citizen.person, category="utility_arrears", severity="general", days_ago=400)
    await add_record(ctx, citizen.person, category="contract_default", severity="general", days_ago=10)
    first = (await client.get("/v1/me/records", headers=citizen.headers, params={"limit": 2})).json()
    assert [r["category"] for r in first["items"]] == ["contract_default", "volunteer_service"]
    assert first["items"][0]["counts_towards_score"] is True
    assert "display_until" in first["items"][0]
    assert "display_until" not in first["items"][1]  # positive records have no disclosure limit
    second = (await client.get("/v1/me/records", headers=citizen.headers,
                               params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [r["category"] for r in second["items"]] == ["utility_arrears"]
    assert second["items"][0]["counts_towards_score"] is False  # past its 1-year display period
    assert second["next_cursor"] is None
    bad = await client.get("/v1/me/records", headers=citizen.headers, params={"cursor": "%%%"})
    assert bad.status_code == 422


async def test_recompute_command_scores_everyone(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="何三")
    await add_record(ctx, citizen.person, category="blood_donation", days_ago=3)
    done = await asyncio.to_thread(subprocess.run, [XINYI, "scores", "recompute"], env=dict(os.environ),
                                   capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "recomputed" in done.stdout
    pid = (await Person.select(Person._meta.primary_key).where(Person.public_id == citizen.person.public_id)
           .first())["id"]
    row = await CurrentScore.select(CurrentScore.total).where(CurrentScore.person == pid).first()
    assert row["total"] > 650


async def test_background_pass_expires_due_authorizations_and_signs_a_checkpoint(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="吕四")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, scopes=["tier"])
    await client.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": authorization_id})
    await Authorization.update({Authorization.valid_until: datetime.now(UTC) - timedelta(minutes=1)}).where(
        Authorization.public_id == authorization_id)
    report = await run_once(ctx)
    assert report["expired_authorizations"] >= 1
    assert report["checkpoint_seq"] > 0
    status = (await client.get(f"/v1/authorizations/{authorization_id}", headers=bank.headers)).json()["status"]
    assert status == "expired"


async def test_purpose_catalog_is_public(client) -> None:
    purposes = (await client.get("/v1/purposes")).json()
    codes = {p["code"]: p for p in purposes}
    assert codes["deposit_waiver"]["allowed_scopes"] == ["score_band", "tier"]
    assert codes["loan_pre_approval"]["daily_cap"] == 10


async def test_full_recompute_snapshots_only_moved_scores_and_tells_their_partners(client, ctx) -> None:
    from credit.scores import recompute_all
    from credit.tables import OutboxEvent, ScoreSnapshot

    citizen = await bound_citizen(client, ctx, name="钱五")
    _, _, bank = await partner_session(client, kind="bank")
    authorization_id = await authorization_for(client, bank, citizen, scopes=["tier"])
    pid = (await Person.select(Person._meta.primary_key).where(Person.public_id == citizen.person.public_id)
           .first())["id"]
    await recompute_all(store=ctx.store)
    snapshots = await ScoreSnapshot.count().where(ScoreSnapshot.person == pid)
    await recompute_all(store=ctx.store)  # nothing moved: no new history, no events
    assert await ScoreSnapshot.count().where(ScoreSnapshot.person == pid) == snapshots
    events = await OutboxEvent.count().where(OutboxEvent.aggregate_id == authorization_id,
                                            OutboxEvent.topic == "score.changed")

    await add_record(ctx, citizen.person, category="dishonest_executee", severity="serious", days_ago=2)
    await recompute_all(store=ctx.store)
    latest = await ScoreSnapshot.select(ScoreSnapshot.total, ScoreSnapshot.trigger).where(
        ScoreSnapshot.person == pid).order_by(ScoreSnapshot.as_of, ascending=False).first()
    assert latest["trigger"] == "recompute"
    assert latest["total"] < 650
    assert await OutboxEvent.count().where(OutboxEvent.aggregate_id == authorization_id,
                                           OutboxEvent.topic == "score.changed") == events + 1
    mine = (await client.get("/v1/me/score", headers=citizen.headers)).json()
    assert mine["total"] == latest["total"]  # the cached score was invalidated
