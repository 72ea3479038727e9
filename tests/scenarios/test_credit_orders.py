"""Deposit-free and pay-later credit orders through HTTP: the credit line held atomically under concurrency,
idempotent opening by merchant order number, the transitions and their conflicts, on-time completion, and
default → grace → negative record → objection end to end, with the merchants' webhooks and the citizen's
notices in the outbox."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from accounts.citizens import citizen_account_id
from credit.scores import recompute_person
from credit.tables import CreditRecord, LedgerEntry, OutboxEvent, Person
from scenarios.orders import MAX_GRACE_DAYS, complete_order, record_unsettled_defaults
from scenarios.tables import CreditLineUsage, CreditOrder
from tests.factories import (
    Citizen,
    Session,
    add_record,
    bound_citizen,
    citizen_login,
    operator_session,
    partner_session,
    score_cache_lost,
)
from tests.scenario_factories import Merchant, admin_benefit, merchant_session, verification_for

ORDERS = "/v1/credit-orders"
FORBIDDEN_KEYS = {"score", "total", "tier", "id_number", "phone", "person_id", "dimensions"}
PROBLEM_KEYS = {"type", "title", "status", "code", "detail", "instance"}


async def _merchant(client: Any, *, scenario: str = "rental", name: str | None = None) -> Merchant:
    return await merchant_session(client, scenario, name=name or f"信易租门店{secrets.token_hex(2)}")


@dataclass
class OwnScenario:
    """A scenario of the test's own (so pausing it or its benefits touches no other test) and its merchant."""

    code: str
    officer: Session
    merchant: Merchant
    benefits: dict[str, str]  # benefit kind → id


async def _scenario_merchant(client: Any, *, kinds: tuple[str, ...] = ("deposit_waiver",)) -> OwnScenario:
    """A new scenario whose benefits of `kinds` apply to everyone (no tier floor, no quota)."""
    officer = await operator_session(client)
    code = f"t{secrets.token_hex(4)}"
    r = await client.post("/v1/admin/scenarios", headers=officer.headers, json={"code": code, "name": "测试场景"})
    assert r.status_code == 201, r.text
    merchant = await merchant_session(client, code, name=f"测试商户{secrets.token_hex(2)}")
    benefits = {kind: str((await admin_benefit(client, officer=officer, scenario=code, kind=kind,
                                               value=50_000))["id"]) for kind in kinds}
    return OwnScenario(code=code, officer=officer, merchant=merchant, benefits=benefits)


async def _verify(client: Any, merchant: Merchant, citizen: Citizen) -> str:
    """The citizen shows a fresh benefit code and the merchant verifies it (both through HTTP)."""
    return str((await verification_for(client, merchant, citizen))["verification_id"])


def _due(days: float = 7) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _open(client: Any, merchant: Merchant, verification_id: str, *, amount_fen: int = 30_000,
                order_no: str | None = None, kind: str = "deposit_free", due_at: str | None = None,
                **extra: Any) -> Any:
    return await client.post(ORDERS, headers=merchant.headers, json={
        "verification_id": verification_id, "kind": kind, "amount_fen": amount_fen,
        "merchant_order_no": order_no or f"NO-{secrets.token_hex(6)}", "due_at": due_at or _due(), **extra})


async def _opened(client: Any, merchant: Merchant, verification_id: str, **kwargs: Any) -> dict[str, Any]:
    r = await _open(client, merchant, verification_id, **kwargs)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _line(client: Any, citizen: Citizen) -> dict[str, Any]:
    r = await client.get("/v1/me/credit-line", headers=citizen.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _score(client: Any, citizen: Citizen) -> dict[str, Any]:
    r = await client.get("/v1/me/score", headers=citizen.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _records(client: Any, citizen: Citizen) -> list[dict[str, Any]]:
    r = await client.get("/v1/me/records", headers=citizen.headers, params={"limit": 100})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _my_orders(client: Any, citizen: Citizen, **params: Any) -> dict[str, Any]:
    r = await client.get("/v1/me/credit-orders", headers=citizen.headers, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _account_id(client: Any, citizen: Citizen) -> str:
    r = await client.get("/v1/me", headers=citizen.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["account_id"])


async def _events(aggregate_id: str) -> list[dict[str, Any]]:
    return list(await OutboxEvent.select(OutboxEvent.topic, OutboxEvent.recipient, OutboxEvent.payload).where(
        OutboxEvent.aggregate_id == aggregate_id).order_by(OutboxEvent.created_at))


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    body = event["payload"]
    return dict(json.loads(body) if isinstance(body, str) else body)


def _no_personal_data(body: Any, citizen: Citizen) -> None:
    text = str(body)
    assert citizen.person.id_number not in text
    assert citizen.session.phone not in text
    if isinstance(body, dict):
        assert not FORBIDDEN_KEYS & set(body), body


def _eligibility_only(problem: dict[str, Any]) -> None:
    """A refusal over the line says that the amount does not fit, never how much is left (which gives the tier)."""
    assert problem["code"] == "credit_line_exceeded"
    assert set(problem) <= PROBLEM_KEYS, problem
    assert not re.search(r"\d", problem["detail"]), problem["detail"]
    assert "available_fen" not in problem["detail"]


async def _reserved_of(citizen: Citizen) -> int:
    pk = (await Person.select(Person._meta.primary_key).where(Person.public_id == citizen.person.public_id)
          .first())["id"]
    row = await CreditLineUsage.select(CreditLineUsage.reserved_fen).where(CreditLineUsage.person == pk).first()
    return int(row["reserved_fen"]) if row else 0


# ---------------------------------------------------------------- the line and opening orders


async def test_an_order_holds_part_of_the_line_and_the_citizen_sees_it(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫一")
    merchant = await _merchant(client, name="西湖共享充电宝")
    line = await _line(client, citizen)
    assert line == {"tier": "A", "line_fen": 200_000, "reserved_fen": 0, "available_fen": 200_000, "open_orders": 0}

    order = await _opened(client, merchant, await _verify(client, merchant, citizen), amount_fen=30_000,
                          order_no="PB-0001", kind="pay_later", description="充电宝先用后付")
    assert order["status"] == "authorized"
    assert order["merchant_order_no"] == "PB-0001"
    assert order["kind"] == "pay_later"
    assert order["amount_fen"] == 30_000
    assert order["scenario"] == "rental"
    _no_personal_data(order, citizen)
    assert await _line(client, citizen) == {"tier": "A", "line_fen": 200_000, "reserved_fen": 30_000,
                                            "available_fen": 170_000, "open_orders": 1}

    mine = await _my_orders(client, citizen)
    assert [o["id"] for o in mine["items"]] == [order["id"]]
    item = mine["items"][0]
    assert item["merchant_name"] == "西湖共享充电宝"
    assert (item["kind"], item["amount_fen"], item["status"]) == ("pay_later", 30_000, "authorized")
    assert _at(item["due_at"]) == _at(order["due_at"])
    assert "record_id" not in item

    read = await client.get(f"{ORDERS}/{order['id']}", headers=merchant.headers)
    assert read.status_code == 200
    assert read.json() == order
    listed = await client.get(ORDERS, headers=merchant.headers, params={"merchant_order_no": "PB-0001"})
    assert [o["id"] for o in listed.json()["items"]] == [order["id"]]

    # Checking the line is a use of the citizen's credit data: it is in their access log.
    log = (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]
    entry = next(e for e in log if e["action"] == "credit_order.open")
    assert (entry["actor_name"], entry["outcome"], entry["purpose"]) == ("西湖共享充电宝", "allowed", "pay_later")

    events = await _events(order["id"])
    assert [(e["topic"], e["recipient"]) for e in events] == [("credit_order.authorized", merchant.client_id)]
    _no_personal_data(_payload(events[0]), citizen)


async def test_concurrent_orders_never_exceed_the_credit_line(client, ctx) -> None:
    """50 concurrent orders of 300元 against a 2,000元 line: exactly 6 are opened, 1,800元 held."""
    citizen = await bound_citizen(client, ctx, name="卫二")
    merchant = await _merchant(client)
    assert (await _line(client, citizen))["line_fen"] == 200_000  # tier A
    verification_id = await _verify(client, merchant, citizen)

    answers = await asyncio.gather(*(_open(client, merchant, verification_id, amount_fen=30_000,
                                           order_no=f"RACE-{i:03d}") for i in range(50)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 6, statuses
    assert statuses.count(409) == 44, statuses
    refusals = [a.json() for a in answers if a.status_code == 409]
    assert {p["code"] for p in refusals} == {"credit_line_exceeded"}
    for problem in refusals:
        _eligibility_only(problem)

    line = await _line(client, citizen)
    assert (line["reserved_fen"], line["available_fen"], line["open_orders"]) == (180_000, 20_000, 6)
    assert await _reserved_of(citizen) == 180_000
    opened = {a.json()["id"] for a in answers if a.status_code == 201}
    rows = await CreditOrder.select(CreditOrder.public_id).where(CreditOrder.merchant_client_id == merchant.client_id)
    assert {r["public_id"] for r in rows} == opened

    # What is left is exactly what the line minus the holds leaves; the refusal says only "does not fit".
    last = await _open(client, merchant, verification_id, amount_fen=20_001)
    assert last.status_code == 409
    _eligibility_only(last.json())
    assert (await _open(client, merchant, verification_id, amount_fen=20_000)).status_code == 201
    assert (await _line(client, citizen))["available_fen"] == 0


async def test_reopening_by_merchant_order_number_is_idempotent(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫三")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)
    due = _due(3)
    first = await _opened(client, merchant, verification_id, amount_fen=50_000, order_no="HOTEL-77", due_at=due)

    again = await _open(client, merchant, verification_id, amount_fen=50_000, order_no="HOTEL-77", due_at=due)
    assert again.status_code == 200
    assert again.json() == first
    concurrent = await asyncio.gather(*(_open(client, merchant, verification_id, amount_fen=50_000,
                                              order_no="HOTEL-78", due_at=due) for _ in range(8)))
    assert sorted(r.status_code for r in concurrent) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in concurrent}) == 1
    assert await _reserved_of(citizen) == 100_000  # each order held once, however often it was sent

    other_terms = await _open(client, merchant, verification_id, amount_fen=60_000, order_no="HOTEL-77", due_at=due)
    assert other_terms.status_code == 409
    assert other_terms.json()["code"] == "merchant_order_no_reused"
    someone_else = await bound_citizen(client, ctx, name="卫三乙")
    other_person = await _open(client, merchant, await _verify(client, merchant, someone_else), amount_fen=50_000,
                               order_no="HOTEL-77", due_at=due)
    assert other_person.status_code == 409
    assert other_person.json()["code"] == "merchant_order_no_reused"

    # Order numbers belong to their merchant: another merchant may use the same one.
    other_merchant = await _merchant(client)
    theirs = await _opened(client, other_merchant, await _verify(client, other_merchant, citizen), amount_fen=50_000,
                           order_no="HOTEL-77", due_at=due)
    assert theirs["id"] != first["id"]


async def test_bad_input_and_unusable_verifications_are_refused(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫四")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)

    past = await _open(client, merchant, verification_id, due_at=_due(-1))
    assert (past.status_code, past.json()["code"]) == (422, "invalid_due_at")
    too_far = await _open(client, merchant, verification_id, due_at=_due(91))
    assert (too_far.status_code, too_far.json()["code"]) == (422, "invalid_due_at")
    for bad in ({"amount_fen": 0}, {"amount_fen": -5}, {"kind": "loan"}, {"surprise": 1},
                {"merchant_order_no": ""}, {"due_at": "2030-01-01T00:00:00"}, {"description": "x" * 201}):
        r = await _open(client, merchant, verification_id, **bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["code"] == "validation_failed"

    unknown = await _open(client, merchant, "ver_doesnotexist")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "verification_not_found")
    other_merchant = await _merchant(client)
    stolen = await _open(client, other_merchant, verification_id)
    assert (stolen.status_code, stolen.json()["code"]) == (404, "verification_not_found")

    # Tier B or C has no line: any amount is over it (at a merchant whose deposit waiver has no tier floor).
    weak = await bound_citizen(client, ctx, name="卫四乙")
    await add_record(ctx, weak.person, category="contract_default", severity="serious", days_ago=5)
    pk = (await Person.select(Person._meta.primary_key).where(Person.public_id == weak.person.public_id).first())["id"]
    await recompute_person(store=ctx.store, person_id=int(pk), trigger="record_change")
    assert (await _line(client, weak))["line_fen"] == 0
    anyone = await _scenario_merchant(client)
    refused = await _open(client, anyone.merchant, await _verify(client, anyone.merchant, weak), amount_fen=100)
    assert refused.status_code == 409
    assert refused.json()["code"] == "credit_line_exceeded"
    _eligibility_only(refused.json())
    log = (await client.get("/v1/me/access-log", headers=weak.headers)).json()["items"]
    assert [e["outcome"] for e in log if e["action"] == "credit_order.open"] == ["credit_line_exceeded"]


async def test_only_merchants_with_the_scope_and_citizens_for_their_own(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫五")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)
    _, _, bank = await partner_session(client, kind="bank")
    r = await _open(client, Merchant(client_id="", name="", scenario="rental", session=bank), verification_id)
    assert (r.status_code, r.json()["code"]) == (403, "insufficient_scope")
    r = await client.post(ORDERS, headers=citizen.headers, json={})
    assert r.status_code == 403
    unbound = await citizen_login(client)
    r = await client.get("/v1/me/credit-line", headers=unbound.headers)
    assert (r.status_code, r.json()["code"]) == (403, "identity_not_bound")
    r = await client.get("/v1/me/credit-orders", headers=merchant.headers)
    assert r.status_code == 403


# ---------------------------------------------------------------- transitions


async def test_completing_on_time_adds_a_positive_record_and_frees_the_line(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫六")
    merchant = await _merchant(client, name="南湖民宿")
    before = await _score(client, citizen)
    order = await _opened(client, merchant, await _verify(client, merchant, citizen), amount_fen=80_000)
    assert (await _line(client, citizen))["reserved_fen"] == 80_000

    done = await client.post(f"{ORDERS}/{order['id']}/complete", headers=merchant.headers)
    assert done.status_code == 200, done.text
    finished = done.json()
    assert finished["status"] == "finished"
    assert finished["record_id"]
    line = await _line(client, citizen)
    assert (line["reserved_fen"], line["available_fen"], line["open_orders"]) == (0, 200_000, 0)

    record = next(r for r in await _records(client, citizen) if r["id"] == finished["record_id"])
    assert (record["category"], record["polarity"], record["severity"]) == ("contract_fulfilment", 1, "minor")
    assert record["source"] == merchant.client_id
    assert "南湖民宿" in record["title"]
    assert (await _score(client, citizen))["total"] > before["total"]

    # Completing again answers the order unchanged and adds nothing.
    again = await client.post(f"{ORDERS}/{order['id']}/complete", headers=merchant.headers)
    assert again.status_code == 200
    assert again.json() == finished
    assert await CreditRecord.count().where(CreditRecord.source_ref == order["id"]) == 1
    assert await _reserved_of(citizen) == 0
    events = await _events(order["id"])
    assert [(e["topic"], e["recipient"]) for e in events] == [
        ("credit_order.authorized", merchant.client_id), ("credit_order.finished", merchant.client_id)]
    assert _payload(events[1])["on_time"] is True
    for e in events:
        _no_personal_data(_payload(e), citizen)


async def test_completing_late_adds_no_record(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫七")
    merchant = await _merchant(client)
    order = await _opened(client, merchant, await _verify(client, merchant, citizen))
    # The due date passed (moved back in the database rather than waiting).
    await CreditOrder.update({CreditOrder.due_at: datetime.now(UTC) - timedelta(hours=1)}).where(
        CreditOrder.public_id == order["id"])
    done = await client.post(f"{ORDERS}/{order['id']}/complete", headers=merchant.headers)
    assert done.status_code == 200
    assert done.json()["status"] == "finished"
    assert "record_id" not in done.json()
    assert await CreditRecord.count().where(CreditRecord.source_ref == order["id"]) == 0
    assert await _reserved_of(citizen) == 0


async def test_impossible_transitions_are_409_and_repeats_are_harmless(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫八")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)

    async def act(order_id: str, action: str, body: dict[str, Any] | None = None) -> Any:
        return await client.post(f"{ORDERS}/{order_id}/{action}", headers=merchant.headers, json=body)

    cancelled = await _opened(client, merchant, verification_id, amount_fen=10_000)
    assert (await act(cancelled["id"], "settle")).json()["code"] == "invalid_order_transition"
    first = await act(cancelled["id"], "cancel")
    assert first.json()["status"] == "cancelled"
    repeat = await act(cancelled["id"], "cancel")
    assert (repeat.status_code, repeat.json()) == (200, first.json())
    for action, body in (("complete", None), ("default", {"amount_fen": 100}), ("settle", None)):
        r = await act(cancelled["id"], action, body)
        assert r.status_code == 409, (action, r.text)
        assert r.json()["code"] == "invalid_order_transition"

    owed = await _opened(client, merchant, verification_id, amount_fen=20_000)
    too_much = await act(owed["id"], "default", {"amount_fen": 20_001})
    assert (too_much.status_code, too_much.json()["code"]) == (422, "default_amount_too_high")
    assert (await act(owed["id"], "default", {"surprise": 1})).status_code == 422
    defaulted = await act(owed["id"], "default", {"amount_fen": 15_000, "reason": "押金车辆损坏未赔付"})
    assert defaulted.status_code == 200
    body = defaulted.json()
    assert (body["status"], body["default_amount_fen"]) == ("defaulted", 15_000)
    grace = _at(body["grace_until"]) - _at(body["defaulted_at"])
    assert grace == timedelta(days=ctx.settings.credit_order_grace_days)
    assert (await act(owed["id"], "default", {"amount_fen": 15_000})).json() == body
    mismatch = await act(owed["id"], "default", {"amount_fen": 14_000})
    assert (mismatch.status_code, mismatch.json()["code"]) == (409, "default_amount_mismatch")
    for action in ("complete", "cancel"):
        r = await act(owed["id"], action)
        assert (r.status_code, r.json()["code"]) == (409, "invalid_order_transition")
    assert await _reserved_of(citizen) == 20_000  # a default keeps its hold until settled or recorded

    settled = await act(owed["id"], "settle")
    assert settled.json()["status"] == "settled"
    assert (await act(owed["id"], "settle")).json() == settled.json()
    assert (await act(owed["id"], "default", {"amount_fen": 15_000})).status_code == 409
    assert await _reserved_of(citizen) == 0
    assert await CreditRecord.count().where(CreditRecord.source_ref == owed["id"]) == 0
    assert [e["topic"] for e in await _events(owed["id"]) if e["recipient"] == merchant.client_id] == [
        "credit_order.authorized", "credit_order.defaulted", "credit_order.settled"]

    missing = await act("cor_doesnotexist", "complete")
    assert (missing.status_code, missing.json()["code"]) == (404, "credit_order_not_found")


async def test_concurrent_transitions_have_exactly_one_winner(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫九")
    merchant = await _merchant(client)
    order = await _opened(client, merchant, await _verify(client, merchant, citizen), amount_fen=40_000)
    actions = ["complete", "cancel"] * 10
    answers = await asyncio.gather(*(client.post(f"{ORDERS}/{order['id']}/{a}", headers=merchant.headers)
                                     for a in actions))
    assert {a.status_code for a in answers} <= {200, 409}
    final = (await client.get(f"{ORDERS}/{order['id']}", headers=merchant.headers)).json()["status"]
    assert final in ("finished", "cancelled")
    winner = "complete" if final == "finished" else "cancel"
    loser = "cancel" if winner == "complete" else "complete"
    assert all(a.status_code == 200 for a, action in zip(answers, actions, strict=True) if action == winner)
    assert all(a.status_code == 409 for a, action in zip(answers, actions, strict=True) if action == loser)
    assert await _reserved_of(citizen) == 0  # released exactly once
    topics = [e["topic"] for e in await _events(order["id"])]
    assert topics == ["credit_order.authorized", f"credit_order.{final}"]
    assert await CreditRecord.count().where(CreditRecord.source_ref == order["id"]) == (1 if winner == "complete"
                                                                                        else 0)


async def test_another_merchant_cannot_see_or_touch_the_order(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫十")
    owner = await _merchant(client)
    intruder = await _merchant(client)
    order = await _opened(client, owner, await _verify(client, owner, citizen))

    r = await client.get(f"{ORDERS}/{order['id']}", headers=intruder.headers)
    assert (r.status_code, r.json()["code"]) == (404, "credit_order_not_found")
    for action, body in (("complete", None), ("cancel", None), ("default", {"amount_fen": 100}), ("settle", None)):
        r = await client.post(f"{ORDERS}/{order['id']}/{action}", headers=intruder.headers, json=body)
        assert (r.status_code, r.json()["code"]) == (404, "credit_order_not_found"), action
    listed = await client.get(ORDERS, headers=intruder.headers)
    assert order["id"] not in {o["id"] for o in listed.json()["items"]}
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=owner.headers)).json()["status"] == "authorized"
    assert await _reserved_of(citizen) == 30_000


async def test_my_orders_are_paginated_newest_first(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫十一")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)
    ids = [(await _opened(client, merchant, verification_id, amount_fen=1_000))["id"] for _ in range(3)]
    first = await _my_orders(client, citizen, limit=2)
    assert [o["id"] for o in first["items"]] == ids[::-1][:2]
    second = await _my_orders(client, citizen, limit=2, cursor=first["next_cursor"])
    assert [o["id"] for o in second["items"]] == ids[:1]
    assert second["next_cursor"] is None
    bad = await client.get("/v1/me/credit-orders", headers=citizen.headers, params={"cursor": "%%%"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")
    assert (await client.get("/v1/me/credit-orders", headers=citizen.headers,
                             params={"limit": 1000})).status_code == 422


# ---------------------------------------------------------------- default → grace → record → objection


async def test_unsettled_default_becomes_a_record_the_citizen_can_object_to(client, ctx, override_settings) -> None:
    citizen = await bound_citizen(client, ctx, name="卫十二")
    account_id = await _account_id(client, citizen)
    merchant = await _merchant(client, name="鸳湖租车")
    before = await _score(client, citizen)
    assert before["tier"] == "A"
    order = await _opened(client, merchant, await _verify(client, merchant, citizen), amount_fen=30_000,
                          order_no="CAR-2026-001")

    # The merchant reports a default; with no grace at all the default is due for recording at once.
    with override_settings(credit_order_grace_days=0):
        r = await client.post(f"{ORDERS}/{order['id']}/default", headers=merchant.headers,
                              json={"amount_fen": 25_000, "reason": "租车费用逾期未付"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "defaulted"
    notice = next(e for e in await _events(order["id"]) if e["topic"] == "credit_order.defaulted"
                  and e["recipient"].startswith("citizen:"))
    assert notice["recipient"] == f"citizen:{account_id}"
    assert _payload(notice)["default_amount_fen"] == 25_000
    assert "鸳湖租车" in _payload(notice)["message"]
    await asyncio.sleep(0.01)  # strictly past grace_until on any clock resolution

    # Past the grace period the merchant can no longer settle; the background step records the default,
    # and two workers running it at once record it once.
    late = await client.post(f"{ORDERS}/{order['id']}/settle", headers=merchant.headers)
    assert (late.status_code, late.json()["code"]) == (409, "invalid_order_transition")
    counts = await asyncio.gather(*(record_unsettled_defaults(store=ctx.store, citizen_account=citizen_account_id)
                                    for _ in range(4)))
    assert sum(counts) >= 1
    assert await CreditRecord.count().where(CreditRecord.source_ref == order["id"]) == 1
    assert await record_unsettled_defaults(store=ctx.store, citizen_account=citizen_account_id) == 0

    recorded = (await client.get(f"{ORDERS}/{order['id']}", headers=merchant.headers)).json()
    assert recorded["status"] == "recorded"
    record_id = recorded["record_id"]
    record = next(r for r in await _records(client, citizen) if r["id"] == record_id)
    assert (record["category"], record["polarity"], record["severity"], record["dimension"]) == (
        "contract_default", -1, "general", "fulfilment")
    assert record["source"] == merchant.client_id
    assert "鸳湖租车" in record["title"]
    assert "250.00" in record["title"]
    assert record["status"] == "active"
    after = await _score(client, citizen)
    assert after["total"] < before["total"]
    assert after["tier"] == "B"
    # The hold is released; the lower tier now has no line at all.
    assert await _line(client, citizen) == {"tier": "B", "line_fen": 0, "reserved_fen": 0, "available_fen": 0,
                                            "open_orders": 0}
    mine = (await _my_orders(client, citizen))["items"][0]
    assert (mine["status"], mine["record_id"], mine["default_amount_fen"]) == ("recorded", record_id, 25_000)

    # The citizen objects: the record is flagged at once and the merchant (its source) is told.
    objection = await client.post("/v1/me/objections", headers=citizen.headers,
                                  json={"record_id": record_id, "reason": "车辆已按时归还，费用已线下结清"})
    assert objection.status_code == 201, objection.text
    flagged = next(r for r in await _records(client, citizen) if r["id"] == record_id)
    assert flagged["status"] == "objected"
    assert (await _score(client, citizen))["objected_records"] == 1
    objection_events = await _events(objection.json()["id"])
    assert [(e["topic"], e["recipient"]) for e in objection_events] == [("objection.filed", merchant.client_id)]
    assert _payload(objection_events[0])["source_ref"] == order["id"]

    await _assert_order_events(order["id"], merchant=merchant, citizen=citizen, account_id=account_id,
                               record_id=record_id)


async def _assert_order_events(order_id: str, *, merchant: Merchant, citizen: Citizen, account_id: str,
                               record_id: str) -> None:
    """The merchant heard of every change, the citizen of the default and its record; nothing personal leaked."""
    events = await _events(order_id)
    assert [(e["topic"], e["recipient"]) for e in events if e["recipient"] == merchant.client_id] == [
        ("credit_order.authorized", merchant.client_id), ("credit_order.defaulted", merchant.client_id),
        ("credit_order.recorded", merchant.client_id)]
    assert [e["topic"] for e in events if e["recipient"] == f"citizen:{account_id}"] == [
        "credit_order.defaulted", "credit_order.recorded"]
    assert _payload(events[-1])["record_id"] == record_id
    for e in events:
        if e["recipient"] == merchant.client_id:
            _no_personal_data(_payload(e), citizen)
    entries = await LedgerEntry.count().where((LedgerEntry.subject_id == citizen.person.public_id)
                                              & (LedgerEntry.action == "credit_order.open"))
    assert entries == 1


async def test_a_default_settled_within_grace_is_never_recorded(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫十三")
    merchant = await _merchant(client)
    order = await _opened(client, merchant, await _verify(client, merchant, citizen), amount_fen=12_000)
    r = await client.post(f"{ORDERS}/{order['id']}/default", headers=merchant.headers, json={"amount_fen": 12_000})
    assert _at(r.json()["grace_until"]) > datetime.now(UTC) + timedelta(days=6)
    # within grace: nothing to record
    await record_unsettled_defaults(store=ctx.store, citizen_account=citizen_account_id)
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=merchant.headers)).json()["status"] == "defaulted"
    settled = await client.post(f"{ORDERS}/{order['id']}/settle", headers=merchant.headers)
    assert settled.json()["status"] == "settled"
    # Even with the clock well past the old grace period, a settled default stays off the record.
    await record_unsettled_defaults(store=ctx.store, citizen_account=citizen_account_id,
                                    now=datetime.now(UTC) + timedelta(days=30))
    assert await CreditRecord.count().where(CreditRecord.source_ref == order["id"]) == 0
    assert await _reserved_of(citizen) == 0


# ---------------------------------------------------------------- review fixes


async def test_an_order_needs_an_active_scenario_and_a_benefit_of_its_kind(client, ctx) -> None:
    """The verification must have offered a deposit waiver (deposit_free) or a pay-later limit (pay_later)."""
    own = await _scenario_merchant(client, kinds=("deposit_waiver",))
    citizen = await bound_citizen(client, ctx, name="卫二十")
    verification_id = await _verify(client, own.merchant, citizen)

    not_offered = await _open(client, own.merchant, verification_id, kind="pay_later")
    assert (not_offered.status_code, not_offered.json()["code"]) == (422, "credit_order_not_offered")
    assert (await _open(client, own.merchant, verification_id, kind="deposit_free")).status_code == 201

    # The benefit paused since the verification: no new order on it.
    paused = await client.patch(f"/v1/admin/benefits/{own.benefits['deposit_waiver']}", headers=own.officer.headers,
                                json={"status": "paused"})
    assert paused.status_code == 200, paused.text
    r = await _open(client, own.merchant, verification_id, kind="deposit_free")
    assert (r.status_code, r.json()["code"]) == (409, "benefit_not_active")
    await client.patch(f"/v1/admin/benefits/{own.benefits['deposit_waiver']}", headers=own.officer.headers,
                       json={"status": "active"})
    assert (await _open(client, own.merchant, verification_id, kind="deposit_free")).status_code == 201

    # The scenario paused since the verification: no new order in it.
    r = await client.patch(f"/v1/admin/scenarios/{own.code}", headers=own.officer.headers, json={"status": "paused"})
    assert r.status_code == 200, r.text
    r = await _open(client, own.merchant, verification_id, kind="deposit_free")
    assert (r.status_code, r.json()["code"]) == (409, "scenario_not_active")
    assert await _reserved_of(citizen) == 2 * 30_000  # the refusals held nothing

    # A verification that offered nothing at all (a scenario without benefits for orders).
    scenic = await _merchant(client, scenario="travel")
    r = await _open(client, scenic, await _verify(client, scenic, citizen), kind="deposit_free")
    assert (r.status_code, r.json()["code"]) == (422, "credit_order_not_offered")


async def test_the_default_catalog_offers_orders_where_they_make_sense(client, ctx) -> None:
    """Through the real verify flow with the seeded catalog, for a tier-A citizen."""
    citizen = await bound_citizen(client, ctx, name="卫二十一")
    assert (await _line(client, citizen))["tier"] == "A"
    allowed = {("transit", "deposit_free"), ("rental", "deposit_free"), ("rental", "pay_later"),
               ("lodging", "deposit_free")}
    # 信易医's pay after treatment needs AA: a tier-A citizen is told so by the verification, not by a line.
    refused = {("transit", "pay_later"), ("medical", "pay_later"), ("medical", "deposit_free"),
               ("lodging", "pay_later")}
    for scenario, kind in sorted(allowed | refused):
        merchant = await _merchant(client, scenario=scenario)
        r = await _open(client, merchant, await _verify(client, merchant, citizen), kind=kind, amount_fen=1_000)
        if (scenario, kind) in allowed:
            assert r.status_code == 201, (scenario, kind, r.text)
        else:
            assert (r.status_code, r.json()["code"]) == (422, "credit_order_not_offered"), (scenario, kind)


async def test_control_characters_are_refused_not_500(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫二十二")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)
    order = await _opened(client, merchant, verification_id, amount_fen=1_000)

    for action in ("complete", "cancel", "settle"):
        r = await client.post(f"{ORDERS}/cor_%00x/{action}", headers=merchant.headers)
        assert (r.status_code, r.json()["code"]) == (404, "credit_order_not_found"), action
    r = await client.post(f"{ORDERS}/cor_%00x/default", headers=merchant.headers, json={"amount_fen": 1})
    assert (r.status_code, r.json()["code"]) == (404, "credit_order_not_found")
    r = await client.get(f"{ORDERS}/{order['id']}%00", headers=merchant.headers)
    assert (r.status_code, r.json()["code"]) == (404, "credit_order_not_found")

    for bad in ({"description": "免押\x00租借"}, {"description": "\x1b[31m"}):
        r = await _open(client, merchant, verification_id, **bad)
        assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), bad
    r = await _open(client, merchant, "vrf_\x00")
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
    # Tab and line breaks are fine in text for people.
    assert (await _open(client, merchant, verification_id, amount_fen=1_000,
                        description="第一行\n第二行\t备注")).status_code == 201
    for reason in ("逾期\x00未付", "\x07"):
        r = await client.post(f"{ORDERS}/{order['id']}/default", headers=merchant.headers,
                              json={"amount_fen": 1_000, "reason": reason})
        assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), reason

    r = await client.get(ORDERS, headers=merchant.headers, params={"merchant_order_no": "A\x00B"})
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
    for raw in ("2026-01-01T00:00:00+00:00|cor_\x00", "0001-01-01T00:00:00+14:00|cor_x",
                "9999-12-31T23:59:59-14:00|cor_x", "2026-01-01T00:00:00|cor_x"):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        for path, headers in ((ORDERS, merchant.headers), ("/v1/me/credit-orders", citizen.headers)):
            r = await client.get(path, headers=headers, params={"cursor": cursor})
            assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor"), (raw, path)
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=merchant.headers)).json()["status"] == "authorized"


async def test_due_dates_at_the_edge_of_time_are_refused_not_500(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="卫二十三")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)
    for due in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        r = await _open(client, merchant, verification_id, due_at=due)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_due_at"), due


async def test_tiny_orders_cannot_farm_positive_records(client, ctx) -> None:
    """At most one on-time positive record per merchant and citizen per calendar month, whatever the concurrency."""
    citizen = await bound_citizen(client, ctx, name="卫二十四")
    merchant = await _merchant(client, name="刷单租赁")
    verification_id = await _verify(client, merchant, citizen)
    orders = [await _opened(client, merchant, verification_id, amount_fen=1) for _ in range(8)]
    done = await asyncio.gather(*(client.post(f"{ORDERS}/{o['id']}/complete", headers=merchant.headers)
                                  for o in orders))
    assert [d.status_code for d in done] == [200] * 8, [d.text for d in done]
    assert {d.json()["status"] for d in done} == {"finished"}
    assert sum(1 for d in done if "record_id" in d.json()) == 1
    assert await _reserved_of(citizen) == 0  # every order still freed its hold

    records = [r for r in await _records(client, citizen) if r["category"] == "contract_fulfilment"]
    assert len(records) == 1
    assert records[0]["source"] == merchant.client_id
    # Every completion still told the merchant it was on time.
    for order in orders:
        finished = [e for e in await _events(order["id"]) if e["topic"] == "credit_order.finished"]
        assert [_payload(e)["on_time"] for e in finished] == [True]

    # Another merchant's on-time order is its own fulfilment this month.
    other = await _merchant(client, name="另一家租赁")
    theirs = await _opened(client, other, await _verify(client, other, citizen), amount_fen=1)
    completed = (await client.post(f"{ORDERS}/{theirs['id']}/complete", headers=other.headers)).json()
    assert completed["record_id"]
    assert len([r for r in await _records(client, citizen) if r["category"] == "contract_fulfilment"]) == 2


async def test_the_positive_record_month_is_the_city_calendar_month(client, ctx) -> None:
    """2026-01-31T23:59 and 2026-02-01T00:00 China time are two months, though one UTC month."""
    citizen = await bound_citizen(client, ctx, name="卫二十五")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)
    orders = [await _opened(client, merchant, verification_id, amount_fen=100) for _ in range(4)]
    moments = [datetime(2026, 1, 31, 15, 59, 59, tzinfo=UTC),  # 2026-01-31 23:59:59 +08:00
               datetime(2026, 1, 31, 16, 0, 0, tzinfo=UTC),  # 2026-02-01 00:00:00 +08:00
               datetime(2026, 2, 28, 15, 59, 59, tzinfo=UTC),  # still February in China
               datetime(2026, 2, 28, 16, 0, 0, tzinfo=UTC)]  # 2026-03-01 00:00:00 +08:00
    views = [await complete_order(store=ctx.store, order_id=o["id"], merchant_client_id=merchant.client_id, now=at)
             for o, at in zip(orders, moments, strict=True)]
    assert [v.record_id is not None for v in views] == [True, True, False, True]


async def test_a_pay_later_order_cannot_default_before_it_is_due(client, ctx) -> None:
    """Pay later means paying by the due date: reporting a default earlier would start the grace period early."""
    citizen = await bound_citizen(client, ctx, name="卫二十六")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)
    later = await _opened(client, merchant, verification_id, kind="pay_later", amount_fen=5_000)
    early = await client.post(f"{ORDERS}/{later['id']}/default", headers=merchant.headers, json={"amount_fen": 5_000})
    assert (early.status_code, early.json()["code"]) == (409, "order_not_yet_due")
    assert (await client.get(f"{ORDERS}/{later['id']}", headers=merchant.headers)).json()["status"] == "authorized"
    assert [e["topic"] for e in await _events(later["id"])] == ["credit_order.authorized"]

    await CreditOrder.update({CreditOrder.due_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        CreditOrder.public_id == later["id"])
    due = await client.post(f"{ORDERS}/{later['id']}/default", headers=merchant.headers, json={"amount_fen": 5_000})
    assert (due.status_code, due.json()["status"]) == (200, "defaulted")

    # A deposit-free order may default at any time (a bike lost, a room damaged).
    deposit = await _opened(client, merchant, verification_id, kind="deposit_free", amount_fen=5_000)
    lost = await client.post(f"{ORDERS}/{deposit['id']}/default", headers=merchant.headers, json={"amount_fen": 5_000})
    assert (lost.status_code, lost.json()["status"]) == (200, "defaulted")


async def test_an_absurd_grace_setting_is_capped_not_500(client, ctx, override_settings) -> None:
    citizen = await bound_citizen(client, ctx, name="卫二十七")
    merchant = await _merchant(client)
    order = await _opened(client, merchant, await _verify(client, merchant, citizen), amount_fen=1_000)
    with override_settings(credit_order_grace_days=10**9):
        r = await client.post(f"{ORDERS}/{order['id']}/default", headers=merchant.headers, json={"amount_fen": 1_000})
    assert r.status_code == 200, r.text
    body = r.json()
    assert _at(body["grace_until"]) - _at(body["defaulted_at"]) == timedelta(days=MAX_GRACE_DAYS)


async def test_concurrent_completions_for_one_citizen_at_many_merchants_do_not_deadlock(client, ctx) -> None:
    """Completions, cancels and opens for one citizen at once: every request answered, holds released exactly."""
    citizen = await bound_citizen(client, ctx, name="卫二十八")
    merchants = [await _merchant(client) for _ in range(3)]
    opened: list[tuple[Merchant, dict[str, Any]]] = []
    for merchant in merchants:
        verification_id = await _verify(client, merchant, citizen)
        opened += [(merchant, await _opened(client, merchant, verification_id, amount_fen=1_000)) for _ in range(4)]
    calls = [client.post(f"{ORDERS}/{o['id']}/{'complete' if i % 2 else 'cancel'}", headers=m.headers)
             for i, (m, o) in enumerate(opened)]
    answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [200] * len(calls), [a.text for a in answers if a.status_code != 200]
    assert await _reserved_of(citizen) == 0
    records = [r for r in await _records(client, citizen) if r["category"] == "contract_fulfilment"]
    assert sorted(r["source"] for r in records) == sorted(m.client_id for m in merchants)


async def test_a_retry_writes_the_ledger_entry_a_crash_left_out(client, ctx, monkeypatch) -> None:
    """The order commits before its ledger entry is appended: when the database goes away in between, the merchant
    gets a 503 and retries, and the retry makes the entry good so no opened order is missing from the access log."""
    citizen = await bound_citizen(client, ctx, name="卫四")
    merchant = await _merchant(client)
    verification_id = await _verify(client, merchant, citizen)
    real_append = ctx.ledger.append

    async def database_gone(event: Any) -> None:
        raise ConnectionResetError("the database went away after the order committed")

    monkeypatch.setattr(ctx.ledger, "append", database_gone)
    due = _due(3)
    failed = await _open(client, merchant, verification_id, order_no="CRASH-1", due_at=due)
    assert failed.status_code == 503, failed.text
    monkeypatch.setattr(ctx.ledger, "append", real_append)

    retried = await _open(client, merchant, verification_id, order_no="CRASH-1", due_at=due)
    assert retried.status_code == 200, retried.text
    digest = hashlib.sha256(f"allowed:{retried.json()['id']}".encode()).hexdigest()
    entries = await LedgerEntry.count().where(
        (LedgerEntry.action == "credit_order.open") & (LedgerEntry.result_digest == digest))
    assert entries == 1
    again = await _open(client, merchant, verification_id, order_no="CRASH-1", due_at=due)
    assert again.status_code == 200
    assert await LedgerEntry.count().where(LedgerEntry.result_digest == digest) == 1  # logged once, not per retry


async def test_a_retry_after_the_verification_expired_answers_the_order_a_crash_left_unanswered(
        client, ctx, monkeypatch, override_settings) -> None:
    """The merchant never heard of its order (the worker died after the commit) and retries once the verification
    is gone: the same number and terms still answer the order, and its ledger entry is made good."""
    citizen = await bound_citizen(client, ctx, name="卫七")
    merchant = await _merchant(client)
    with override_settings(verification_ttl_seconds=1):
        verification_id = await _verify(client, merchant, citizen)

    async def died(event: Any) -> None:
        raise ConnectionResetError("the worker died after the order committed")

    due = _due(3)
    with monkeypatch.context() as patch:
        patch.setattr(ctx.ledger, "append", died)
        lost = await _open(client, merchant, verification_id, order_no="LOST-1", due_at=due)
    assert lost.status_code == 503, lost.text
    await asyncio.sleep(1.5)  # the verification expires; the order stays

    other_terms = await _open(client, merchant, verification_id, order_no="LOST-1", due_at=due, amount_fen=1)
    assert (other_terms.status_code, other_terms.json()["code"]) == (409, "merchant_order_no_reused")
    retried = await _open(client, merchant, verification_id, order_no="LOST-1", due_at=due)
    assert retried.status_code == 200, retried.text
    (order,) = await CreditOrder.select(CreditOrder.public_id).where(
        (CreditOrder.merchant_client_id == merchant.client_id) & (CreditOrder.merchant_order_no == "LOST-1"))
    assert (retried.json()["id"], retried.json()["status"]) == (order["public_id"], "authorized")
    digest = hashlib.sha256(f"allowed:{order['public_id']}".encode()).hexdigest()
    assert await LedgerEntry.count().where(LedgerEntry.result_digest == digest) == 1
    new_number = await _open(client, merchant, verification_id, order_no="LOST-2", due_at=due)
    assert (new_number.status_code, new_number.json()["code"]) == (404, "verification_not_found")


async def test_a_retried_completion_rescores_what_a_failure_after_its_commit_left(client, ctx, monkeypatch) -> None:
    """The positive record of an on-time completion commits, then re-scoring fails (the store is lost): the
    merchant's retry of `complete` makes the citizen's score follow the record."""
    citizen = await bound_citizen(client, ctx, name="卫八")
    merchant = await _merchant(client)
    before = (await _score(client, citizen))["total"]  # cached: what readers see until it is rewritten
    order = await _opened(client, merchant, await _verify(client, merchant, citizen))
    with score_cache_lost(ctx, monkeypatch):
        failed = await client.post(f"{ORDERS}/{order['id']}/complete", headers=merchant.headers)
    assert failed.status_code == 503, failed.text
    assert await CreditRecord.count().where(CreditRecord.source_ref == order["id"]) == 1
    assert (await _score(client, citizen))["total"] == before

    retried = await client.post(f"{ORDERS}/{order['id']}/complete", headers=merchant.headers)
    assert (retried.status_code, retried.json()["status"]) == (200, "finished")
    assert (await _score(client, citizen))["total"] > before
