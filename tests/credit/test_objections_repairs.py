"""Objections (异议) and credit repair (信用修复) through HTTP: filing, deadlines, decisions, concurrency, BOLA."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from core.calendar import PACKAGE_YEARS, CalendarYearUnknown, working_calendar
from core.clock import CITY_TZ
from credit.checks import sync_record_lists
from credit.objections import MAX_DECISION_CALENDAR_DAYS, decision_due_at, file_objection
from credit.scoring import base_total
from credit.tables import CreditListEntry, CreditRecord, Objection, OutboxEvent, Person
from tests.factories import add_record, bound_citizen, operator_session


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _record(client: Any, citizen: Any, record_id: str) -> dict[str, Any]:
    items = (await client.get("/v1/me/records", headers=citizen.headers, params={"limit": 100})).json()["items"]
    return next(r for r in items if r["id"] == record_id)


async def _score(client: Any, citizen: Any) -> dict[str, Any]:
    r = await client.get("/v1/me/score", headers=citizen.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _object(client: Any, citizen: Any, record_id: str, reason: str = "这条记录不是我的") -> dict[str, Any]:
    r = await client.post("/v1/me/objections", headers=citizen.headers, json={"record_id": record_id, "reason": reason})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _all_admin(client: Any, op: Any, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of an admin listing, following the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
        r = await client.get(path, headers=op.headers, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items


# ---------------------------------------------------------------- the deadline


CALENDAR = working_calendar()


def test_deadline_counts_working_days_on_the_city_calendar() -> None:
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=CITY_TZ)
    # Mon..Fri of the next week are the five working days; due at the end of that Friday (local midnight).
    assert decision_due_at(friday, calendar=CALENDAR) == datetime(2026, 12, 5, 0, 0, tzinfo=CITY_TZ)
    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=CITY_TZ)
    assert decision_due_at(saturday, calendar=CALENDAR) == datetime(2026, 12, 5, 0, 0, tzinfo=CITY_TZ)
    monday = datetime(2026, 11, 23, 23, 30, tzinfo=CITY_TZ)  # the filing day itself never counts
    assert decision_due_at(monday, calendar=CALENDAR) == datetime(2026, 12, 1, 0, 0, tzinfo=CITY_TZ)
    assert decision_due_at(monday, calendar=CALENDAR, working_days=1) == datetime(2026, 11, 25, 0, 0, tzinfo=CITY_TZ)
    local_days_off = working_calendar(holidays=[date(2026, 11, 30), date(2026, 12, 1)])
    assert decision_due_at(friday, calendar=local_days_off) == datetime(2026, 12, 9, 0, 0, tzinfo=CITY_TZ)
    assert decision_due_at(friday, calendar=CALENDAR).tzinfo is not None


def test_deadline_skips_statutory_holidays_and_counts_make_up_saturdays() -> None:
    # Spring Festival 2026: Sat 14 Feb is a make-up working day (调休), 15-23 Feb are off.
    before_spring_festival = datetime(2026, 2, 13, 10, 0, tzinfo=CITY_TZ)
    assert decision_due_at(before_spring_festival, calendar=CALENDAR) == datetime(2026, 2, 28, 0, 0, tzinfo=CITY_TZ)
    # National Day 2025: Sun 28 Sep works, 1-8 Oct are off.
    before_national_day = datetime(2025, 9, 26, 15, 0, tzinfo=CITY_TZ)
    assert decision_due_at(before_national_day, calendar=CALENDAR) == datetime(2025, 10, 11, 0, 0, tzinfo=CITY_TZ)


def test_deadline_never_exceeds_twenty_calendar_days() -> None:
    filed = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert decision_due_at(filed, calendar=CALENDAR, working_days=30) == filed + timedelta(
        days=MAX_DECISION_CALENDAR_DAYS)
    a_month_off = working_calendar(holidays=[date(2026, 11, 28) + timedelta(days=i) for i in range(40)])
    assert decision_due_at(filed, calendar=a_month_off) == filed + timedelta(days=MAX_DECISION_CALENDAR_DAYS)
    with pytest.raises(ValueError, match="working_days"):
        decision_due_at(filed, calendar=CALENDAR, working_days=0)


async def test_an_operator_configured_day_off_moves_the_deadline_of_a_filed_objection(client, ctx,
                                                                                      override_settings) -> None:
    citizen = await bound_citizen(client, ctx, name="秦九")
    first = await add_record(ctx, citizen.person, category="contract_default", days_ago=20)
    second = await add_record(ctx, citizen.person, category="contract_default", days_ago=21)
    usual = await _object(client, citizen, first)
    filed_day = _at(usual["created_at"]).astimezone(CITY_TZ).date()
    next_two_weeks = [filed_day + timedelta(days=n) for n in range(1, 15)]
    with override_settings(calendar_holidays=tuple(next_two_weeks[:7])):
        moved = await _object(client, citizen, second)
    assert _at(moved["due_at"]) == decision_due_at(_at(moved["created_at"]),
                                                   calendar=working_calendar(holidays=next_two_weeks[:7]))
    assert _at(moved["due_at"]) > _at(usual["due_at"])


async def test_an_objection_whose_deadline_no_calendar_knows_is_refused_and_not_filed(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="秦十")
    record_id = await add_record(ctx, citizen.person, category="contract_default", days_ago=20)
    person_pk = (await Person.select(Person._meta.primary_key).where(
        Person.public_id == citizen.person.public_id).first())["id"]  # type: ignore[index]
    late_december = datetime(max(PACKAGE_YEARS), 12, 28, 10, 0, tzinfo=CITY_TZ)
    with pytest.raises(CalendarYearUnknown):
        await file_objection(store=ctx.store, calendar=CALENDAR, person_id=person_pk, record_id=record_id,
                             reason="这条记录不是我的", now=late_december)
    assert (await _record(client, citizen, record_id))["status"] == "active"
    assert not await Objection.exists().where(Objection.person == person_pk)
    # Once the operators configure the year, the same filing goes through.
    next_year = max(PACKAGE_YEARS) + 1
    configured = working_calendar(holidays=[date(next_year, 1, 1)])
    view = await file_objection(store=ctx.store, calendar=configured, person_id=person_pk, record_id=record_id,
                                reason="这条记录不是我的", now=late_december)
    assert view.due_at == decision_due_at(late_december, calendar=configured)


# ---------------------------------------------------------------- filing


async def test_filing_flags_the_record_at_once(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="秦一")
    record_id = await add_record(ctx, citizen.person, category="contract_default", days_ago=20)
    before = await _score(client, citizen)
    assert before["objected_records"] == 0

    objection = await _object(client, citizen, record_id)
    assert objection["record_id"] == record_id
    assert objection["status"] == "open"
    assert objection["record"]["status"] == "objected"
    assert _at(objection["due_at"]) == decision_due_at(_at(objection["created_at"]), calendar=CALENDAR)
    assert set(objection) >= {"id", "record_id", "status", "due_at", "created_at", "reason"}

    record = await _record(client, citizen, record_id)
    assert record["status"] == "objected"
    assert record["counts_towards_score"] is True  # flagged, still counted until decided
    after = await _score(client, citizen)
    assert after["objected_records"] == 1
    assert after["total"] == before["total"]

    mine = (await client.get("/v1/me/objections", headers=citizen.headers)).json()
    assert [o["id"] for o in mine["items"]] == [objection["id"]]

    again = await client.post("/v1/me/objections", headers=citizen.headers,
                              json={"record_id": record_id, "reason": "再次异议"})
    assert again.status_code == 409
    assert again.json()["code"] == "objection_already_open"
    assert again.headers["content-type"].startswith("application/problem+json")

    events = await OutboxEvent.select(OutboxEvent.topic, OutboxEvent.recipient, OutboxEvent.payload).where(
        OutboxEvent.aggregate_id == objection["id"])
    assert [(e["topic"], e["recipient"]) for e in events] == [("objection.filed", "test-source")]
    assert citizen.person.id_number not in str(events[0]["payload"])


async def test_only_active_records_can_be_objected_and_input_is_checked(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="秦二")
    withdrawn = await add_record(ctx, citizen.person, status="withdrawn")
    r = await client.post("/v1/me/objections", headers=citizen.headers, json={"record_id": withdrawn, "reason": "x"})
    assert r.status_code == 422
    assert r.json()["code"] == "record_not_objectable"
    active = await add_record(ctx, citizen.person)
    for body in ({"record_id": active, "reason": "   "}, {"record_id": active},
                 {"record_id": active, "reason": "ok", "status": "upheld"},
                 {"record_id": active, "reason": "x" * 2001}):
        bad = await client.post("/v1/me/objections", headers=citizen.headers, json=body)
        assert bad.status_code == 422, body
        assert bad.json()["code"] == "validation_failed"
    missing = await client.post("/v1/me/objections", headers=citizen.headers,
                                json={"record_id": "rec_doesnotexist", "reason": "x"})
    assert missing.status_code == 404
    assert missing.json()["code"] == "record_not_found"


async def test_concurrent_filings_flag_once(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="秦三")
    record_id = await add_record(ctx, citizen.person)
    results = await asyncio.gather(*(client.post("/v1/me/objections", headers=citizen.headers,
                                                 json={"record_id": record_id, "reason": f"第{i}次"})
                                     for i in range(3)))
    assert sorted(r.status_code for r in results) == [201, 409, 409]
    assert await Objection.count().where(Objection.status == "open").where(
        Objection.record.is_in(await _record_pks(record_id))) == 1


async def _record_pks(record_id: str) -> list[int]:
    return [r["id"] for r in await CreditRecord.select(CreditRecord._meta.primary_key).where(
        CreditRecord.public_id == record_id)]


async def test_my_objections_page_with_a_cursor(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="秦四")
    filed = [(await _object(client, citizen, await add_record(ctx, citizen.person)))["id"] for _ in range(3)]
    first = (await client.get("/v1/me/objections", headers=citizen.headers, params={"limit": 2})).json()
    assert [o["id"] for o in first["items"]] == filed[::-1][:2]
    second = (await client.get("/v1/me/objections", headers=citizen.headers,
                               params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [o["id"] for o in second["items"]] == filed[:1]
    assert second["next_cursor"] is None
    too_big = await client.get("/v1/me/objections", headers=citizen.headers, params={"limit": 101})
    assert too_big.status_code == 422
    bad_cursor = await client.get("/v1/me/objections", headers=citizen.headers, params={"cursor": "%%%"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["code"] == "invalid_cursor"


# ---------------------------------------------------------------- who may do what (BOLA)


async def test_a_citizen_cannot_touch_another_persons_records(client, ctx) -> None:
    alice = await bound_citizen(client, ctx, name="韩甲")
    bob = await bound_citizen(client, ctx, name="韩乙")
    bobs_record = await add_record(ctx, bob.person, days_ago=200)
    bobs_objection = await _object(client, bob, bobs_record)

    steal = await client.post("/v1/me/objections", headers=alice.headers,
                              json={"record_id": bobs_record, "reason": "x"})
    missing = await client.post("/v1/me/objections", headers=alice.headers,
                                json={"record_id": "rec_0000000000000000", "reason": "x"})
    assert steal.status_code == missing.status_code == 404
    assert steal.json()["code"] == missing.json()["code"] == "record_not_found"
    repair = await client.post("/v1/me/repairs", headers=alice.headers,
                               json={"record_id": bobs_record, "statement": "x"})
    assert repair.status_code == 404
    assert repair.json()["code"] == "record_not_found"
    assert (await client.get("/v1/me/objections", headers=alice.headers)).json()["items"] == []
    assert bobs_record not in (await client.get("/v1/me/records", headers=alice.headers)).text

    # A citizen token opens no admin route, not even for their own objection.
    for method, path, body in (
        ("GET", "/v1/admin/objections", None),
        ("POST", f"/v1/admin/objections/{bobs_objection['id']}/decide", {"outcome": "upheld", "note": "x"}),
        ("GET", "/v1/admin/repairs", None),
        ("POST", "/v1/admin/repairs/rep_x/decide", {"outcome": "approved", "note": "x"}),
    ):
        for caller in (alice, bob):
            r = await client.request(method, path, headers=caller.headers, json=body)
            assert r.status_code == 403, (method, path)
            assert r.json()["code"] == "wrong_principal"
    assert (await _record(client, bob, bobs_record))["status"] == "objected"

    # Operators: an auditor reads but may not decide; an officer decides.
    auditor = await operator_session(client, role="auditor")
    assert (await client.get("/v1/admin/objections", headers=auditor.headers)).status_code == 200
    denied = await client.post(f"/v1/admin/objections/{bobs_objection['id']}/decide", headers=auditor.headers,
                               json={"outcome": "upheld", "note": "x"})
    assert denied.status_code == 403
    assert denied.json()["code"] == "insufficient_role"
    partner_admin = await operator_session(client, role="partner_admin")
    assert (await client.get("/v1/admin/objections", headers=partner_admin.headers)).status_code == 403
    officer = await operator_session(client, role="officer")
    decided = await client.post(f"/v1/admin/objections/{bobs_objection['id']}/decide", headers=officer.headers,
                                json={"outcome": "rejected", "note": "来源核实无误"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["person_id"] == bob.person.public_id
    unauthenticated = await client.get("/v1/me/objections")
    assert unauthenticated.status_code == 401


# ---------------------------------------------------------------- decisions


async def test_upheld_withdraws_the_record_and_the_score_recovers(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="杨一")
    record_id = await add_record(ctx, citizen.person, category="contract_default", severity="serious", days_ago=30)
    with_record = await _score(client, citizen)
    assert with_record["total"] < base_total()
    objection = await _object(client, citizen, record_id)

    officer = await operator_session(client, role="officer")
    r = await client.post(f"/v1/admin/objections/{objection['id']}/decide", headers=officer.headers,
                          json={"outcome": "upheld", "note": "数据源确认登记错误"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "upheld"
    assert body["record"]["status"] == "withdrawn"
    assert body["decision_note"] == "数据源确认登记错误"
    assert body["decided_by"]
    assert body["overdue"] is False

    record = await _record(client, citizen, record_id)
    assert record["status"] == "withdrawn"
    assert record["counts_towards_score"] is False
    after = await _score(client, citizen)
    assert after["total"] > with_record["total"]
    assert after["total"] == base_total()
    assert after["objected_records"] == 0
    history = (await client.get("/v1/me/score/history", headers=citizen.headers)).json()["items"]
    assert history[0]["trigger"] == "objection"
    assert history[0]["total"] == after["total"]

    mine = (await client.get("/v1/me/objections", headers=citizen.headers)).json()["items"][0]
    assert mine["status"] == "upheld"
    assert mine["decision_note"] == "数据源确认登记错误"
    assert "decided_by" not in mine  # the citizen does not see which operator decided

    again = await client.post(f"/v1/admin/objections/{objection['id']}/decide", headers=officer.headers,
                              json={"outcome": "rejected", "note": "改判"})
    assert again.status_code == 409
    assert again.json()["code"] == "objection_already_decided"
    topics = [e["topic"] for e in await OutboxEvent.select(OutboxEvent.topic).where(
        (OutboxEvent.aggregate_id == objection["id"]) & (OutboxEvent.recipient == "test-source")).order_by(
        OutboxEvent.created_at)]
    assert topics == ["objection.filed", "objection.decided"]
    # The citizen is told the decision once too (a notice through the outbox, partners/notice_delivery.py).
    assert await OutboxEvent.count().where((OutboxEvent.aggregate_id == objection["id"])
                                           & (OutboxEvent.recipient == f"person:{citizen.person.public_id}")) == 1


async def test_rejected_restores_the_record(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="杨二")
    record_id = await add_record(ctx, citizen.person)
    before = await _score(client, citizen)
    objection = await _object(client, citizen, record_id)
    officer = await operator_session(client, role="officer")
    r = await client.post(f"/v1/admin/objections/{objection['id']}/decide", headers=officer.headers,
                          json={"outcome": "rejected", "note": "记录属实"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert (await _record(client, citizen, record_id))["status"] == "active"
    after = await _score(client, citizen)
    assert after["total"] == before["total"]
    assert after["objected_records"] == 0


async def test_upheld_with_a_correction_keeps_the_record_active_and_never_worse(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="杨四")
    record_id = await add_record(ctx, citizen.person, category="administrative_penalty", severity="general")
    before = await _score(client, citizen)
    objection = await _object(client, citizen, record_id, reason="处罚等级登记错误，应为轻微")
    officer = await operator_session(client, role="officer")
    url = f"/v1/admin/objections/{objection['id']}/decide"
    cases = [
        ({"outcome": "upheld", "note": "x", "correction": {"severity": "serious"}}, "correction_not_favourable"),
        ({"outcome": "rejected", "note": "x", "correction": {"severity": "minor"}}, "correction_requires_upheld"),
        ({"outcome": "upheld", "note": "x", "correction": {}}, "empty_correction"),
        ({"outcome": "upheld", "note": "x", "correction": {"severity": "huge"}}, "validation_failed"),
        ({"outcome": "maybe", "note": "x"}, "validation_failed"),
        ({"outcome": "upheld"}, "validation_failed"),
    ]
    for body, code in cases:
        r = await client.post(url, headers=officer.headers, json=body)
        assert r.status_code == 422, body
        assert r.json()["code"] == code, body
    assert (await _record(client, citizen, record_id))["status"] == "objected"  # nothing changed

    correction = {"severity": "minor", "title": "行政处罚（更正）"}
    r = await client.post(url, headers=officer.headers,
                          json={"outcome": "upheld", "note": "按轻微处罚更正", "correction": correction})
    assert r.status_code == 200, r.text
    assert r.json()["record"]["status"] == "active"
    record = await _record(client, citizen, record_id)
    assert (record["status"], record["severity"], record["title"]) == ("active", "minor", "行政处罚（更正）")
    after = await _score(client, citizen)
    assert after["total"] >= before["total"]
    assert after["objected_records"] == 0
    payload = (await OutboxEvent.select(OutboxEvent.payload).where(
        (OutboxEvent.aggregate_id == objection["id"]) & (OutboxEvent.topic == "objection.decided")).first())
    assert payload is not None
    assert "minor" in str(payload["payload"])


async def test_concurrent_decisions_one_wins(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="朱一")
    record_id = await add_record(ctx, citizen.person)
    objection = await _object(client, citizen, record_id)
    first, second = await operator_session(client, role="officer"), await operator_session(client, role="officer")
    url = f"/v1/admin/objections/{objection['id']}/decide"
    results = await asyncio.gather(
        client.post(url, headers=first.headers, json={"outcome": "upheld", "note": "撤销"}),
        client.post(url, headers=second.headers, json={"outcome": "rejected", "note": "维持"}))
    assert sorted(r.status_code for r in results) == [200, 409]
    winner = next(r for r in results if r.status_code == 200).json()
    loser = next(r for r in results if r.status_code == 409).json()
    assert loser["code"] == "objection_already_decided"
    expected = "withdrawn" if winner["status"] == "upheld" else "active"
    assert (await _record(client, citizen, record_id))["status"] == expected
    assert await OutboxEvent.count().where((OutboxEvent.aggregate_id == objection["id"])
                                           & (OutboxEvent.topic == "objection.decided")
                                           & (OutboxEvent.recipient == "test-source")) == 1


async def test_overdue_objections_are_visible_to_operators(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="许一")
    late = await _object(client, citizen, await add_record(ctx, citizen.person))
    fresh = await _object(client, citizen, await add_record(ctx, citizen.person))
    await Objection.update({Objection.due_at: datetime.now(UTC) - timedelta(hours=1)}).where(
        Objection.public_id == late["id"])

    auditor = await operator_session(client, role="auditor")
    overdue = await _all_admin(client, auditor, "/v1/admin/objections", status="open", overdue="true")
    overdue_ids = {o["id"] for o in overdue}
    assert late["id"] in overdue_ids
    assert fresh["id"] not in overdue_ids
    assert all(o["overdue"] is True and o["status"] == "open" for o in overdue)
    not_overdue = await _all_admin(client, auditor, "/v1/admin/objections", overdue="false")
    assert fresh["id"] in {o["id"] for o in not_overdue}
    assert late["id"] not in {o["id"] for o in not_overdue}
    everything = {o["id"]: o for o in await _all_admin(client, auditor, "/v1/admin/objections", status="open")}
    assert everything[late["id"]]["overdue"] is True
    assert everything[fresh["id"]]["overdue"] is False
    assert everything[late["id"]]["person_id"] == citizen.person.public_id
    assert citizen.person.id_number not in str(everything)
    bad = await client.get("/v1/admin/objections", headers=auditor.headers, params={"status": "bogus"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["code"] == "validation_failed"

    # The citizen sees their own objection without the operators' overdue flag.
    assert "overdue" not in (await client.get("/v1/me/objections", headers=citizen.headers)).json()["items"][0]

    officer = await operator_session(client, role="officer")
    decided = await client.post(f"/v1/admin/objections/{late['id']}/decide", headers=officer.headers,
                                json={"outcome": "upheld", "note": "逾期处理"})
    assert decided.json()["overdue"] is False  # decided objections are never overdue


# ---------------------------------------------------------------- repairs


async def test_repair_too_early_names_the_date(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="何一")
    record_id = await add_record(ctx, citizen.person, category="dishonest_executee", severity="serious", days_ago=10)
    record = await _record(client, citizen, record_id)
    r = await client.post("/v1/me/repairs", headers=citizen.headers,
                          json={"record_id": record_id, "statement": "已全部履行"})
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "repair_too_early"
    assert _at(record["repairable_from"]).date().isoformat() in problem["detail"]
    assert (await client.get("/v1/me/repairs", headers=citizen.headers)).json()["items"] == []


async def test_approved_repair_stops_counting(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="何二")
    record_id = await add_record(ctx, citizen.person, category="tax_arrears", severity="general", days_ago=100)
    before = await _score(client, citizen)
    r = await client.post("/v1/me/repairs", headers=citizen.headers,
                          json={"record_id": record_id, "statement": "已补缴税款及滞纳金"})
    assert r.status_code == 201, r.text
    repair = r.json()
    assert (repair["status"], repair["record_id"]) == ("pending", record_id)
    again = await client.post("/v1/me/repairs", headers=citizen.headers,
                              json={"record_id": record_id, "statement": "再申请"})
    assert again.status_code == 409
    assert again.json()["code"] == "repair_already_pending"
    assert [x["id"] for x in (await client.get("/v1/me/repairs", headers=citizen.headers)).json()["items"]] \
        == [repair["id"]]

    officer = await operator_session(client, role="officer")
    pending = await _all_admin(client, officer, "/v1/admin/repairs", status="pending")
    assert repair["id"] in {x["id"] for x in pending}
    decided = await client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=officer.headers,
                                json={"outcome": "approved", "note": "材料齐全，准予修复"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert decided.json()["record"]["status"] == "repaired"

    record = await _record(client, citizen, record_id)
    assert record["status"] == "repaired"
    assert record["counts_towards_score"] is False
    after = await _score(client, citizen)
    assert after["total"] >= before["total"]
    assert after["total"] == base_total()
    history = (await client.get("/v1/me/score/history", headers=citizen.headers)).json()["items"]
    assert history[0]["trigger"] == "repair"

    twice = await client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=officer.headers,
                              json={"outcome": "rejected", "note": "x"})
    assert twice.status_code == 409
    assert twice.json()["code"] == "repair_already_decided"
    events = await OutboxEvent.select(OutboxEvent.topic, OutboxEvent.recipient).where(
        (OutboxEvent.aggregate_id == repair["id"]) & OutboxEvent.recipient.not_like("person:%")).order_by(
        OutboxEvent.created_at)
    assert [(e["topic"], e["recipient"]) for e in events] == [("repair.filed", "test-source"),
                                                              ("repair.decided", "test-source")]
    repaired_again = await client.post("/v1/me/repairs", headers=citizen.headers,
                                       json={"record_id": record_id, "statement": "x"})
    assert repaired_again.json()["code"] == "record_not_repairable"
    objected_repaired = await client.post("/v1/me/objections", headers=citizen.headers,
                                          json={"record_id": record_id, "reason": "x"})
    assert objected_repaired.json()["code"] == "record_not_objectable"


async def test_rejected_repair_leaves_the_record(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="何三")
    record_id = await add_record(ctx, citizen.person, category="utility_arrears", severity="minor", days_ago=5)
    repair = (await client.post("/v1/me/repairs", headers=citizen.headers,
                                json={"record_id": record_id, "statement": "已缴清"})).json()
    officer = await operator_session(client, role="officer")
    r = await client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=officer.headers,
                          json={"outcome": "rejected", "note": "未提供缴费凭证"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert (await _record(client, citizen, record_id))["status"] == "active"
    retry = await client.post("/v1/me/repairs", headers=citizen.headers,
                              json={"record_id": record_id, "statement": "补充凭证"})
    assert retry.status_code == 201  # a rejected application does not block a new one


async def test_repair_rules(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="何四")
    positive = await add_record(ctx, citizen.person, category="volunteer_service")
    withdrawn = await add_record(ctx, citizen.person, status="withdrawn", days_ago=200)
    too_old = await add_record(ctx, citizen.person, category="utility_arrears", severity="minor", days_ago=120)
    for record_id in (positive, withdrawn, too_old):
        r = await client.post("/v1/me/repairs", headers=citizen.headers,
                              json={"record_id": record_id, "statement": "x"})
        assert r.status_code == 422, record_id
        assert r.json()["code"] == "record_not_repairable"
    under_objection = await add_record(ctx, citizen.person, days_ago=200)
    objection = await _object(client, citizen, under_objection)
    r = await client.post("/v1/me/repairs", headers=citizen.headers,
                          json={"record_id": under_objection, "statement": "x"})
    assert r.status_code == 409
    assert r.json()["code"] == "record_under_objection"
    assert objection["status"] == "open"


async def test_repair_pending_then_objection_blocks_approval(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="何五")
    record_id = await add_record(ctx, citizen.person, days_ago=200)
    repair = (await client.post("/v1/me/repairs", headers=citizen.headers,
                                json={"record_id": record_id, "statement": "已履行"})).json()
    objection = await _object(client, citizen, record_id)
    officer = await operator_session(client, role="officer")
    blocked = await client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=officer.headers,
                                json={"outcome": "approved", "note": "x"})
    assert blocked.status_code == 409
    assert blocked.json()["code"] == "record_under_objection"
    assert (await client.get("/v1/me/repairs", headers=citizen.headers)).json()["items"][0]["status"] == "pending"
    await client.post(f"/v1/admin/objections/{objection['id']}/decide", headers=officer.headers,
                      json={"outcome": "rejected", "note": "记录属实"})
    approved = await client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=officer.headers,
                                 json={"outcome": "approved", "note": "准予修复"})
    assert approved.status_code == 200, approved.text
    assert (await _record(client, citizen, record_id))["status"] == "repaired"


async def test_concurrent_repair_filings_and_decisions(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="吕一")
    record_id = await add_record(ctx, citizen.person, days_ago=200)
    filings = await asyncio.gather(*(client.post("/v1/me/repairs", headers=citizen.headers,
                                                 json={"record_id": record_id, "statement": f"申请{i}"})
                                     for i in range(3)))
    assert sorted(r.status_code for r in filings) == [201, 409, 409]
    repair_id = next(r for r in filings if r.status_code == 201).json()["id"]
    first, second = await operator_session(client, role="officer"), await operator_session(client, role="officer")
    url = f"/v1/admin/repairs/{repair_id}/decide"
    results = await asyncio.gather(
        client.post(url, headers=first.headers, json={"outcome": "approved", "note": "准予"}),
        client.post(url, headers=second.headers, json={"outcome": "rejected", "note": "不予"}))
    assert sorted(r.status_code for r in results) == [200, 409]
    winner = next(r for r in results if r.status_code == 200).json()
    expected = "repaired" if winner["status"] == "approved" else "active"
    assert (await _record(client, citizen, record_id))["status"] == expected
    assert await OutboxEvent.count().where((OutboxEvent.aggregate_id == repair_id)
                                           & (OutboxEvent.topic == "repair.decided")
                                           & OutboxEvent.recipient.not_like("person:%")) == 1


# ---------------------------------------------------------------- lists that follow from records


async def _listed(ctx: Any, citizen: Any, record_days_ago: int) -> tuple[str, int]:
    """A 失信被执行人 record and the list entry the ingest would have made for it."""
    record_id = await add_record(ctx, citizen.person, category="dishonest_executee", days_ago=record_days_ago)
    row = await Person.select(Person._meta.primary_key).where(Person.public_id == citizen.person.public_id).first()
    assert row is not None
    await sync_record_lists(subjects=[("person", row["id"])], list_codes=["dishonest_executee"], source="test-source")
    return record_id, int(row["id"])


async def _on_list(person_pk: int) -> bool:
    return bool(await CreditListEntry.exists().where(
        (CreditListEntry.person == person_pk) & (CreditListEntry.list_code == "dishonest_executee")
        & CreditListEntry.delisted_at.is_null()))


async def test_an_upheld_objection_takes_the_subject_off_record_driven_lists(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="孔一")
    record_id, person_pk = await _listed(ctx, citizen, record_days_ago=30)
    assert await _on_list(person_pk)
    objection = await _object(client, citizen, record_id, reason="案件已撤销")
    assert await _on_list(person_pk)  # still listed while the objection is open
    officer = await operator_session(client, role="officer")
    r = await client.post(f"/v1/admin/objections/{objection['id']}/decide", headers=officer.headers,
                          json={"outcome": "upheld", "note": "法院已撤销"})
    assert r.status_code == 200, r.text
    assert not await _on_list(person_pk)


async def test_an_approved_repair_takes_the_subject_off_record_driven_lists(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="孔二")
    record_id, person_pk = await _listed(ctx, citizen, record_days_ago=400)
    repair = (await client.post("/v1/me/repairs", headers=citizen.headers,
                                json={"record_id": record_id, "statement": "已履行全部义务"})).json()
    officer = await operator_session(client, role="officer")
    r = await client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=officer.headers,
                          json={"outcome": "approved", "note": "准予修复"})
    assert r.status_code == 200, r.text
    assert not await _on_list(person_pk)
