"""Financing demands through HTTP: ranked matches with reasons, membership (X cannot act for Y), the
dishonest-executee hard stop, submission with the enterprise's authorization, bank decisions (transitions,
concurrency, isolation between banks), response deadlines over weekends and overdue flags, first loans,
and the simulated bank deciding from the portrait."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.calendar import WorkingCalendar, working_calendar
from credit.tables import Authorization, LedgerEntry, OutboxEvent
from lending.applications import respond_by
from lending.tables import ApplicationEvent, LoanApplication
from partners.simulate import BANK_HANDLERS, BankState
from tests.factories import bound_citizen
from tests.lending_factories import (
    WAN_FEN,
    OwnedEnterprise,
    account_id_of,
    add_operator,
    bank_session,
    data_source,
    demand_body,
    enterprise_row,
    grade_a_enterprise,
    owned_enterprise,
    post_demand,
    publish_product,
    push_enterprise_records,
)


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["product"]["id"]: item for item in items}


async def _submit(client, owned: OwnedEnterprise, demand_id: str, product_ids: list[str], **extra: Any):  # type: ignore[no-untyped-def]
    return await client.post(f"/v1/lending/demands/{demand_id}/submit", headers=owned.headers,
                             json={"product_ids": product_ids, "consent": True, **extra})


async def _submitted(client, owned: OwnedEnterprise, demand_id: str, product_ids: list[str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await _submit(client, owned, demand_id, product_ids)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _decide(client, bank, application_id: str, **decision: Any):  # type: ignore[no-untyped-def]
    return await client.post(f"/v1/lending/applications/{application_id}/decisions", headers=bank.headers,
                             json=decision)


# ---------------------------------------------------------------- matching


async def test_a_demand_gets_ranked_matches_with_reasons_and_main_reasons_for_the_rest(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, industry="C", region_code="330402")
    _, bank = await bank_session(client, name="嘉兴银行")
    _, other = await bank_session(client, name="浙商银行")
    cheap = await publish_product(client, bank, name="科创信用贷", rate_min_bp=345, min_grade="A",
                                  industries=["C", "I"], regions=["3304"], first_loan_friendly=True)
    dear = await publish_product(client, other, name="普惠信用贷", rate_min_bp=480)
    secured = await publish_product(client, bank, name="厂房抵押贷", guarantee_kind="collateral", rate_min_bp=330)
    small = await publish_product(client, other, name="小额快贷", amount_max_fen=50 * WAN_FEN)
    pricey = await publish_product(client, other, name="高息贷", rate_min_bp=900, rate_max_bp=1200)
    trade = await publish_product(client, bank, name="商贸贷", industries=["F"])
    remote = await publish_product(client, bank, name="汉中专项", regions=["6107"])
    paused = await publish_product(client, bank, name="暂停产品", status="paused")

    demand = await post_demand(client, owned, amount_fen=100 * WAN_FEN, term_months=12, guarantee_offered="credit",
                               max_rate_bp=600)
    assert demand["id"].startswith("dmd_")
    assert demand["status"] == "open"
    assert demand["enterprise"]["id"] == owned.public_id
    assert demand["portrait"]["grade"] == "A"
    assert demand["portrait"]["id"].startswith("prt_")
    assert demand["first_loan"] is True
    assert demand["hard_stop"] is None
    assert demand["applications"] == []
    matches = _by_id(demand["matches"])
    excluded = _by_id(demand["excluded"])

    assert cheap["id"] in matches
    assert dear["id"] in matches
    assert matches[cheap["id"]]["rank"] < matches[dear["id"]]["rank"]
    assert matches[cheap["id"]]["score"] > matches[dear["id"]]["score"]
    assert matches[cheap["id"]]["bank"]["name"] == "嘉兴银行"
    cheap_reasons = {r["code"]: r["text"] for r in matches[cheap["id"]]["reasons"]}
    assert {"unsecured", "first_loan_friendly", "grade_met", "industry_allowed", "region_allowed",
            "amount_in_range", "term_in_range", "rate_within_max"} <= set(cheap_reasons)
    assert cheap_reasons["rate_within_max"] == "年利率3.45%起，不高于您可接受的6.00%"
    ranks = [m["rank"] for m in demand["matches"]]
    assert ranks == list(range(1, len(ranks) + 1))

    assert excluded[secured["id"]]["main_reason"]["code"] == "guarantee_incompatible"
    assert excluded[small["id"]]["main_reason"] == {"code": "amount_above_max",
                                                   "text": "申请金额100万元高于产品最高额度50万元"}
    assert excluded[pricey["id"]]["main_reason"]["code"] == "rate_above_max"
    assert excluded[trade["id"]]["main_reason"]["code"] == "industry_not_allowed"
    assert excluded[remote["id"]]["main_reason"]["code"] == "region_not_allowed"
    assert paused["id"] not in matches
    assert paused["id"] not in excluded

    # the demand keeps what it was matched with, and reads back the same
    again = (await client.get(f"/v1/lending/demands/{demand['id']}", headers=owned.headers)).json()
    assert again["matches"] == demand["matches"]
    assert again["excluded"] == demand["excluded"]
    assert again["portrait"] == demand["portrait"]

    # offering collateral also fits the credit products
    secured_demand = await post_demand(client, owned, guarantee_offered="collateral", max_rate_bp=600)
    assert {cheap["id"], dear["id"], secured["id"]} <= set(_by_id(secured_demand["matches"]))

    listed = (await client.get("/v1/lending/demands", headers=owned.headers, params={"uscc": owned.uscc})).json()
    assert [d["id"] for d in listed["items"]][:2] == [secured_demand["id"], demand["id"]]
    assert listed["items"][1]["matched"] == len(demand["matches"])


async def test_demand_input_is_validated(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx)
    for overrides in ({"amount_fen": 0}, {"term_months": 0}, {"guarantee_offered": "friendship"},
                      {"max_rate_bp": 0}, {"purpose": ""}, {"uscc": "123"}, {"extra": 1}):
        r = await client.post("/v1/lending/demands", headers=owned.headers, json=demand_body(owned, **overrides))
        assert r.status_code == 422, overrides
    r = await client.post("/v1/lending/demands", headers=owned.headers,
                          json=demand_body(owned, uscc="91330402MA00000000"))
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_uscc"


async def test_a_member_of_x_cannot_act_for_y(client, ctx) -> None:
    x = await owned_enterprise(client, ctx, owner_name="许甲")
    y = await owned_enterprise(client, ctx, owner_name="叶乙")
    operator, _ = await add_operator(client, ctx, x, name="徐经办")
    _, bank = await bank_session(client)
    product = await publish_product(client, bank, amount_max_fen=1000 * WAN_FEN)
    y_demand = await post_demand(client, y)

    r = await client.post("/v1/lending/demands", headers=x.headers, json=demand_body(y))
    assert r.status_code == 404
    assert r.json()["code"] == "enterprise_not_found"
    r = await client.post("/v1/lending/demands", headers=operator.headers, json=demand_body(y))
    assert r.status_code == 404
    for who in (x.owner, operator):
        read = await client.get(f"/v1/lending/demands/{y_demand['id']}", headers=who.headers)
        assert read.status_code == 404
        assert read.json()["code"] == "demand_not_found"
        submit = await client.post(f"/v1/lending/demands/{y_demand['id']}/submit", headers=who.headers,
                                   json={"product_ids": [product["id"]], "consent": True})
        assert submit.status_code == 404
        listed = await client.get("/v1/lending/demands", headers=who.headers, params={"uscc": y.uscc})
        assert listed.status_code == 404
    stranger = await bound_citizen(client, ctx, name="路人丙")
    assert (await client.get(f"/v1/lending/demands/{y_demand['id']}", headers=stranger.headers)).status_code == 404
    assert await LoanApplication.count().where(LoanApplication.demand.public_id == y_demand["id"]) == 0

    # the operator acts for X: posts, reads and lists X's demands
    mine = await post_demand(client, x, who=operator)
    assert (await client.get(f"/v1/lending/demands/{mine['id']}", headers=x.headers)).status_code == 200
    assert (await client.get(f"/v1/lending/demands/{mine['id']}", headers=operator.headers)).status_code == 200
    # a partner token is not a citizen's
    assert (await client.get(f"/v1/lending/demands/{mine['id']}", headers=bank.headers)).status_code == 403


async def test_a_dishonest_executee_is_never_matched(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, owner_name="失信企业主")
    _, bank = await bank_session(client)
    lenient = await publish_product(client, bank, amount_min_fen=1, amount_max_fen=10**12, term_min_months=1,
                                    term_max_months=360, rate_min_bp=1, rate_max_bp=3600, first_loan_friendly=True)
    before = await post_demand(client, owned)
    assert lenient["id"] in _by_id(before["matches"])

    court = await data_source(client)
    await push_enterprise_records(client, court, [enterprise_row(owned.uscc, "dishonest_executee",
                                                                 title="失信被执行人（拒不履行生效判决）")])
    for offered in ("credit", "collateral", "xinyidan"):
        demand = await post_demand(client, owned, guarantee_offered=offered)
        assert demand["matches"] == []
        assert demand["hard_stop"]["code"] == "dishonest_executee"
        assert "失信被执行人" in demand["hard_stop"]["text"]
        assert demand["excluded"], "every active product is listed with the reason"
        assert {e["main_reason"]["code"] for e in demand["excluded"]} == {"dishonest_executee"}

    # nothing can be submitted for it, neither from the new demand nor from the one matched before the record
    r = await _submit(client, owned, demand["id"], [lenient["id"]])
    assert r.status_code == 422
    assert r.json()["code"] == "product_not_matched"
    r = await _submit(client, owned, before["id"], [lenient["id"]])
    assert r.status_code == 422
    assert r.json()["code"] == "hard_risk_flag"
    assert await LoanApplication.count().where(LoanApplication.enterprise.public_id == owned.public_id) == 0


# ---------------------------------------------------------------- submission


async def _check_submitted(app: dict[str, Any], *, bank_id: str, owned: OwnedEnterprise, demand: dict[str, Any]
                           ) -> None:
    """A fresh application: its authorization for the bank, its timeline, and the webhook to the bank."""
    assert app["status"] == "submitted"
    assert app["bank"]["id"] == bank_id
    assert app["first_loan"] is True
    assert app["overdue"] is False
    assert [e["status"] for e in app["timeline"]] == ["submitted"]
    grant = await Authorization.select().where(Authorization.public_id == app["authorization_id"]).first()
    assert (grant["status"], grant["partner_client_id"], grant["purpose"], grant["scopes"], grant["subject_kind"],
            grant["validity_days"]) == ("authorized", bank_id, "loan_application", "portrait", "enterprise", 90)
    events = await OutboxEvent.select().where(OutboxEvent.aggregate_id == app["id"])
    assert [(e["topic"], e["recipient"]) for e in events] == [("lending.application.submitted", bank_id)]
    payload = events[0]["payload"]
    payload = payload if isinstance(payload, dict) else json.loads(payload)
    assert payload["application_id"] == app["id"]
    assert payload["authorization_id"] == app["authorization_id"]
    assert payload["enterprise"] == {"id": owned.public_id, "name": owned.enterprise.name, "uscc": owned.uscc}
    assert (payload["demand"]["amount_fen"], payload["demand"]["term_months"]) == (demand["amount_fen"],
                                                                                   demand["term_months"])


async def test_submission_authorizes_each_bank_creates_applications_and_notifies(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, owner_name="提交企业主")
    bank_a_id, bank_a = await bank_session(client, name="甲银行")
    bank_b_id, bank_b = await bank_session(client, name="乙银行")
    pa1 = await publish_product(client, bank_a, name="甲一")
    pa2 = await publish_product(client, bank_a, name="甲二", rate_min_bp=395)
    pb = await publish_product(client, bank_b, name="乙一")
    unmatched = await publish_product(client, bank_b, name="乙小额", amount_max_fen=10 * WAN_FEN)
    demand = await post_demand(client, owned)

    for consent in (None, False, "true", 1, "yes"):
        body: dict[str, Any] = {"product_ids": [pa1["id"]]}
        if consent is not None:
            body["consent"] = consent
        r = await client.post(f"/v1/lending/demands/{demand['id']}/submit", headers=owned.headers, json=body)
        assert r.status_code == 422, consent
        assert r.json()["code"] == "consent_required"
    r = await _submit(client, owned, demand["id"], [pa1["id"], unmatched["id"]])
    assert r.status_code == 422
    assert r.json()["code"] == "product_not_matched"
    assert await LoanApplication.count().where(LoanApplication.demand.public_id == demand["id"]) == 0

    submitted = await _submitted(client, owned, demand["id"], [pa1["id"], pb["id"]])
    assert submitted["status"] == "submitted"
    assert submitted["submitted_at"] is not None
    apps = {a["product"]["id"]: a for a in submitted["applications"]}
    assert set(apps) == {pa1["id"], pb["id"]}
    for app, bank_id in ((apps[pa1["id"]], bank_a_id), (apps[pb["id"]], bank_b_id)):
        await _check_submitted(app, bank_id=bank_id, owned=owned, demand=demand)

    # the bank pulls the portrait with the authorization it was given
    portrait = await client.get(f"/v1/portraits/{owned.uscc}", headers=bank_a.headers,
                                params={"authorization_id": apps[pa1["id"]]["authorization_id"]})
    assert portrait.status_code == 200, portrait.text
    assert portrait.json()["portrait"]["grade"] == "A"

    # re-submitting is harmless; a second product of the same bank reuses that bank's authorization
    again = await _submitted(client, owned, demand["id"], [pa1["id"], pb["id"], pa2["id"]])
    apps_again = {a["product"]["id"]: a for a in again["applications"]}
    assert set(apps_again) == {pa1["id"], pb["id"], pa2["id"]}
    assert apps_again[pa1["id"]]["id"] == apps[pa1["id"]]["id"]
    assert apps_again[pa2["id"]]["authorization_id"] == apps[pa1["id"]]["authorization_id"]
    assert await LoanApplication.count().where(LoanApplication.demand.public_id == demand["id"]) == 3
    assert await OutboxEvent.count().where(OutboxEvent.aggregate_id == apps[pa1["id"]]["id"]) == 1


async def test_concurrent_submissions_create_one_application_per_product(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, owner_name="并发企业主")
    bank_id, bank = await bank_session(client)
    product = await publish_product(client, bank)
    demand = await post_demand(client, owned)
    answers = await asyncio.gather(*(_submit(client, owned, demand["id"], [product["id"]]) for _ in range(10)))
    assert {a.status_code for a in answers} <= {200, 409}
    assert any(a.status_code == 200 for a in answers)
    assert await LoanApplication.count().where(LoanApplication.demand.public_id == demand["id"]) == 1
    grants = await Authorization.count().where((Authorization.enterprise.public_id == owned.public_id)
                                               & (Authorization.partner_client_id == bank_id))
    assert grants == 1
    listed = (await client.get("/v1/lending/applications", headers=bank.headers)).json()["items"]
    assert len([a for a in listed if a["demand"]["id"] == demand["id"]]) == 1


# ---------------------------------------------------------------- bank decisions


async def _one_application(client, ctx, *, owner_name: str = "审批企业主"):  # type: ignore[no-untyped-def]
    owned = await grade_a_enterprise(client, ctx, owner_name=owner_name)
    bank_id, bank = await bank_session(client, name=f"{owner_name}的银行")
    product = await publish_product(client, bank)
    demand = await post_demand(client, owned)
    submitted = await _submitted(client, owned, demand["id"], [product["id"]])
    return owned, bank_id, bank, product, demand, submitted["applications"][0]


async def test_bank_decisions_follow_the_transition_table_and_notify_the_owner(client, ctx) -> None:
    owned, bank_id, bank, product, demand, app = await _one_application(client, ctx)
    aid = app["id"]

    seen = await client.get(f"/v1/lending/applications/{aid}", headers=bank.headers)
    assert seen.status_code == 200
    view = seen.json()
    assert view["enterprise"] == {"id": owned.public_id, "name": owned.enterprise.name, "uscc": owned.uscc,
                                  "industry": "C", "region_code": "330402"}
    assert view["demand"]["id"] == demand["id"]
    assert view["product"]["id"] == product["id"]
    assert view["status"] == "submitted"
    assert view["first_response_at"] is None
    # the bank's read is an access to the enterprise's data: ledgered
    reads = await LedgerEntry.select(LedgerEntry.action, LedgerEntry.actor_id, LedgerEntry.authorization_id).where(
        (LedgerEntry.subject_id == owned.public_id) & (LedgerEntry.action == "lending.application.read"))
    assert reads == [{"action": "lending.application.read", "actor_id": bank_id,
                      "authorization_id": app["authorization_id"]}]

    # required fields and invalid steps
    checks = [
        ({"status": "approved", "amount_fen": 80 * WAN_FEN}, 422, "approval_terms_required"),
        ({"status": "rejected"}, 422, "rejection_reason_required"),
        ({"status": "rejected", "reason": "   "}, 422, "rejection_reason_required"),
        ({"status": "accepted", "amount_fen": 1}, 422, "decision_field_not_allowed"),
        ({"status": "disbursed", "amount_fen": 1}, 409, "invalid_transition"),
        ({"status": "submitted"}, 422, "validation_failed"),
        ({"status": "approved", "amount_fen": 1, "rate_bp": 400, "term_months": 12, "bonus": 1}, 422,
         "validation_failed"),
    ]
    for decision, status, code in checks:
        r = await _decide(client, bank, aid, **decision)
        assert (r.status_code, r.json()["code"]) == (status, code), decision

    accepted = await _decide(client, bank, aid, status="accepted", note="已受理，客户经理将联系您")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    first_response = accepted.json()["first_response_at"]
    assert first_response is not None
    r = await _decide(client, bank, aid, status="accepted")
    assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")

    approved = await _decide(client, bank, aid, status="approved", amount_fen=80 * WAN_FEN, rate_bp=395,
                             term_months=12)
    assert approved.status_code == 200
    assert approved.json()["decision"]["approved_amount_fen"] == 80 * WAN_FEN
    assert approved.json()["first_response_at"] == first_response  # set once, by the first decision
    r = await _decide(client, bank, aid, status="disbursed", amount_fen=81 * WAN_FEN)
    assert (r.status_code, r.json()["code"]) == (422, "disbursed_exceeds_approved")
    disbursed = await _decide(client, bank, aid, status="disbursed", amount_fen=80 * WAN_FEN)
    assert disbursed.status_code == 200
    assert disbursed.json()["decision"]["disbursed_amount_fen"] == 80 * WAN_FEN
    assert disbursed.json()["first_loan"] is True
    for decision in ({"status": "rejected", "reason": "太晚了"}, {"status": "approved", "amount_fen": 1,
                                                                  "rate_bp": 1, "term_months": 1}):
        r = await _decide(client, bank, aid, **decision)
        assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")

    # the enterprise follows it: timeline with the bank's terms, and a notice per decision to the owner
    followed = (await client.get(f"/v1/lending/demands/{demand['id']}", headers=owned.headers)).json()
    (mine,) = followed["applications"]
    assert [e["status"] for e in mine["timeline"]] == ["submitted", "accepted", "approved", "disbursed"]
    assert mine["timeline"][1]["note"] == "已受理，客户经理将联系您"
    assert (mine["timeline"][2]["amount_fen"], mine["timeline"][2]["rate_bp"],
            mine["timeline"][2]["term_months"]) == (80 * WAN_FEN, 395, 12)
    assert mine["decision"] == {"approved_amount_fen": 80 * WAN_FEN, "approved_rate_bp": 395,
                                "approved_term_months": 12, "disbursed_amount_fen": 80 * WAN_FEN,
                                "rejection_reason": None}
    notices = await OutboxEvent.select(OutboxEvent.topic, OutboxEvent.recipient).where(
        (OutboxEvent.aggregate_id == aid) & OutboxEvent.recipient.like("citizen:%")).order_by(OutboxEvent.created_at)
    owner = f"citizen:{account_id_of(owned.owner)}"
    assert [(n["topic"], n["recipient"]) for n in notices] == [
        ("lending.application.accepted", owner), ("lending.application.approved", owner),
        ("lending.application.disbursed", owner)]

    # this enterprise has now had a loan here: the next demand and application are not first loans
    later = await post_demand(client, owned)
    assert later["first_loan"] is False
    resubmitted = await _submitted(client, owned, later["id"], [product["id"]])
    assert resubmitted["applications"][0]["first_loan"] is False


async def test_a_rejection_carries_its_reason(client, ctx) -> None:
    owned, _, bank, _, demand, app = await _one_application(client, ctx, owner_name="被拒企业主")
    r = await _decide(client, bank, app["id"], status="rejected", reason="经营流水不足")
    assert r.status_code == 200
    assert r.json()["decision"]["rejection_reason"] == "经营流水不足"
    followed = (await client.get(f"/v1/lending/demands/{demand['id']}", headers=owned.headers)).json()
    assert followed["applications"][0]["status"] == "rejected"
    assert followed["applications"][0]["timeline"][-1] == {"status": "rejected", "at": followed["applications"][0][
        "timeline"][-1]["at"], "note": "经营流水不足"}


async def test_concurrent_decisions_cannot_both_win(client, ctx) -> None:
    _, _, bank, _, _, app = await _one_application(client, ctx, owner_name="并发审批企业主")
    decisions = [{"status": "approved", "amount_fen": 50 * WAN_FEN, "rate_bp": 400, "term_months": 12}] * 6 + [
        {"status": "rejected", "reason": "并发拒绝"}] * 6
    answers = await asyncio.gather(*(_decide(client, bank, app["id"], **d) for d in decisions))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) == 1, [a.text for a in answers]
    assert set(codes) == {200, 409}
    events = await ApplicationEvent.select(ApplicationEvent.status).where(
        ApplicationEvent.application.public_id == app["id"])
    assert len(events) == 2  # submitted + exactly one decision
    notices = await OutboxEvent.count().where((OutboxEvent.aggregate_id == app["id"])
                                              & OutboxEvent.recipient.like("citizen:%"))
    assert notices == 1


async def test_bank_a_never_sees_or_touches_bank_b_applications(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, owner_name="两行企业主")
    _, bank_a = await bank_session(client, name="A行")
    _, bank_b = await bank_session(client, name="B行")
    pa = await publish_product(client, bank_a)
    pb = await publish_product(client, bank_b)
    demand = await post_demand(client, owned)
    submitted = await _submitted(client, owned, demand["id"], [pa["id"], pb["id"]])
    b_app = next(a for a in submitted["applications"] if a["product"]["id"] == pb["id"])
    a_app = next(a for a in submitted["applications"] if a["product"]["id"] == pa["id"])

    r = await client.get(f"/v1/lending/applications/{b_app['id']}", headers=bank_a.headers)
    assert (r.status_code, r.json()["code"]) == (404, "application_not_found")
    r = await _decide(client, bank_a, b_app["id"], status="rejected", reason="抢先拒绝")
    assert (r.status_code, r.json()["code"]) == (404, "application_not_found")
    listed = (await client.get("/v1/lending/applications", headers=bank_a.headers, params={"limit": 100})).json()
    ids = {a["id"] for a in listed["items"]}
    assert a_app["id"] in ids
    assert b_app["id"] not in ids
    # bank A's portrait authorization is not bank B's
    portrait = await client.get(f"/v1/portraits/{owned.uscc}", headers=bank_a.headers,
                                params={"authorization_id": b_app["authorization_id"]})
    assert portrait.status_code == 404
    still = (await client.get(f"/v1/lending/applications/{b_app['id']}", headers=bank_b.headers)).json()
    assert still["status"] == "submitted"


# ---------------------------------------------------------------- deadlines and overdue flags


def test_the_response_deadline_counts_working_days_on_the_city_calendar() -> None:
    cst = "+08:00"
    calendar = working_calendar()

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text + cst)

    def due(text: str, working_days: int = 3, on: WorkingCalendar = calendar) -> datetime:
        return respond_by(at(text), calendar=on, working_days=working_days)

    due_wednesday = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # end of Wed 2 Dec, China time
    # Friday 10:00: Monday, Tuesday, Wednesday count; the weekend does not
    assert due("2026-11-27T10:00:00") == due_wednesday
    # Friday 23:59 China time is still Friday (it is Friday afternoon in UTC)
    assert due("2026-11-27T23:59:00") == due_wednesday
    # Saturday and Sunday submissions wait for Monday too
    assert due("2026-11-28T00:30:00") == due_wednesday
    assert due("2026-11-29T18:00:00") == due_wednesday
    # Monday: Tuesday, Wednesday, Thursday
    assert due("2026-11-30T09:00:00") == datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    # one working day from a Friday is the end of Monday
    assert due("2026-11-27T10:00:00", 1) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    # an operator-configured day off is skipped like a weekend
    assert due("2026-11-27T10:00:00", on=working_calendar(holidays=[date(2026, 11, 30)])) == datetime(
        2026, 12, 3, 16, 0, tzinfo=UTC)
    # Spring Festival 2026: Fri 13 and the make-up Saturday 14 Feb count, 15-23 Feb are off, Tue 24 is the third
    assert due("2026-02-12T10:00:00") == datetime(2026, 2, 24, 16, 0, tzinfo=UTC)
    # Spring Festival 2025: the make-up Sunday 26 Jan and Mon 27 count, 28 Jan-4 Feb are off, Wed 5 Feb is third
    assert due("2025-01-24T10:00:00") == datetime(2025, 2, 5, 16, 0, tzinfo=UTC)
    # National Day 2026: 1-7 Oct off; Thu 8, Fri 9 and the make-up Saturday 10 Oct count
    assert due("2026-09-30T10:00:00") == datetime(2026, 10, 10, 16, 0, tzinfo=UTC)


async def test_applications_carry_their_deadline_and_overdue_flags(client, ctx, override_settings) -> None:
    owned, _, bank, product, demand, app = await _one_application(client, ctx, owner_name="逾期企业主")
    created = datetime.fromisoformat(app["created_at"])
    assert datetime.fromisoformat(app["respond_by"]) == respond_by(created, calendar=working_calendar(), working_days=3)
    assert app["overdue"] is False

    # the number of working days is configurable
    with override_settings(lending_response_working_days=1):
        other = await post_demand(client, owned)
        quick = (await _submitted(client, owned, other["id"], [product["id"]]))["applications"][0]
    assert datetime.fromisoformat(quick["respond_by"]) == respond_by(datetime.fromisoformat(quick["created_at"]),
                                                                     calendar=working_calendar(), working_days=1)

    # the deadline passes without an answer
    await LoanApplication.update({LoanApplication.respond_by: datetime.now(UTC) - timedelta(minutes=1)}).where(
        LoanApplication.public_id == app["id"])
    followed = (await client.get(f"/v1/lending/demands/{demand['id']}", headers=owned.headers)).json()
    assert followed["applications"][0]["overdue"] is True
    assert followed["applications"][0]["answered_late"] is False
    overdue = (await client.get("/v1/lending/applications", headers=bank.headers, params={"overdue": "true"})).json()
    assert [a["id"] for a in overdue["items"]] == [app["id"]]
    assert overdue["items"][0]["overdue"] is True
    on_time = (await client.get("/v1/lending/applications", headers=bank.headers, params={"overdue": "false"})).json()
    assert app["id"] not in {a["id"] for a in on_time["items"]}
    assert quick["id"] in {a["id"] for a in on_time["items"]}

    # a late first answer ends the overdue state but is remembered as late
    assert (await _decide(client, bank, app["id"], status="accepted")).status_code == 200
    followed = (await client.get(f"/v1/lending/demands/{demand['id']}", headers=owned.headers)).json()
    assert followed["applications"][0]["overdue"] is False
    assert followed["applications"][0]["answered_late"] is True
    overdue = (await client.get("/v1/lending/applications", headers=bank.headers, params={"overdue": "true"})).json()
    assert overdue["items"] == []
    by_status = (await client.get("/v1/lending/applications", headers=bank.headers,
                                  params={"status": "accepted"})).json()
    assert [a["id"] for a in by_status["items"]] == [app["id"]]


# ---------------------------------------------------------------- the simulated bank


class _InProcessApi:
    """Stands in for the simulated bank's HTTP client of this API, through the test client."""

    def __init__(self, client: Any, headers: dict[str, str]) -> None:
        self._client = client
        self._headers = headers

    async def call(self, method: str, path: str, *, json_body: Any = None) -> Any:
        return await self._client.request(method, path, json=json_body, headers=self._headers)


async def _event_for(application_id: str) -> dict[str, Any]:
    row = await OutboxEvent.select().where((OutboxEvent.aggregate_id == application_id)
                                           & (OutboxEvent.topic == "lending.application.submitted")).first()
    payload = row["payload"] if isinstance(row["payload"], dict) else json.loads(row["payload"])
    return {"id": row["public_id"], "type": row["topic"], "data": payload}


async def test_the_simulated_bank_decides_from_the_portrait(client, ctx) -> None:
    good = await grade_a_enterprise(client, ctx, owner_name="优质企业主")
    weak = await owned_enterprise(client, ctx, owner_name="一般企业主")
    source = await data_source(client)
    await push_enterprise_records(client, source, [
        enterprise_row(weak.uscc, "court_judgment", title="未履行判决"),
        enterprise_row(weak.uscc, "contract_default", title="合同违约"),
        enterprise_row(weak.uscc, "administrative_penalty", title="行政处罚"),
        enterprise_row(weak.uscc, "social_insurance_arrears", title="欠缴社保")])
    _, bank = await bank_session(client, name="嘉兴银行")
    product = await publish_product(client, bank, rate_min_bp=385)
    state = BankState(webhook_secret="whsec_test", api=_InProcessApi(client, bank.headers))  # type: ignore[arg-type]
    handler = BANK_HANDLERS["lending.application.submitted"]

    demand = await post_demand(client, good, amount_fen=120 * WAN_FEN, term_months=24)
    app = (await _submitted(client, good, demand["id"], [product["id"]]))["applications"][0]
    await handler(state, await _event_for(app["id"]))
    decided = (await client.get(f"/v1/lending/applications/{app['id']}", headers=bank.headers)).json()
    assert decided["status"] == "approved"
    assert decided["decision"]["approved_amount_fen"] == 120 * WAN_FEN
    assert decided["decision"]["approved_term_months"] == 24
    assert decided["decision"]["approved_rate_bp"] == 385

    # a weak enterprise (no hard risk flag, so its demand matches) gets a reasoned refusal
    weak_portrait = (await client.get(f"/v1/enterprises/{weak.uscc}/portrait", headers=weak.headers)).json()
    assert weak_portrait["grade"] in ("C", "D"), weak_portrait["score"]
    weak_demand = await post_demand(client, weak)
    assert product["id"] in _by_id(weak_demand["matches"])
    weak_app = (await _submitted(client, weak, weak_demand["id"], [product["id"]]))["applications"][0]
    await handler(state, await _event_for(weak_app["id"]))
    refused = (await client.get(f"/v1/lending/applications/{weak_app['id']}", headers=bank.headers)).json()
    assert refused["status"] == "rejected"
    assert f"{weak_portrait['grade']}级" in refused["decision"]["rejection_reason"]


async def test_the_simulated_bank_takes_part_end_to_end(client, ctx, override_settings) -> None:
    """Real processes on loopback: the API (`xinyi serve`), the simulated bank (`xinyi simulate bank`) with its
    client credentials; the submitted application reaches the bank by signed webhook, the bank pulls the
    portrait under the enterprise's authorization and posts its decision."""
    import os

    from partners.delivery import deliver_due
    from partners.services import create_partner
    from tests.factories import Session, operator_session
    from tests.servers import free_port, xinyi_server

    owned = await grade_a_enterprise(client, ctx, owner_name="演示企业主")
    issued = await create_partner(name="嘉兴银行（模拟）", kind="bank")
    assert issued.client_secret is not None
    token = await client.post("/v1/auth/token", json={"grant_type": "client_credentials",
                                                      "client_id": issued.client_id,
                                                      "client_secret": issued.client_secret})
    bank = Session(phone="", access_token=token.json()["access_token"], refresh_token=None)
    product = await publish_product(client, bank, name="模拟银行信用贷", rate_min_bp=365)
    admin = await operator_session(client, role="partner_admin")
    port = free_port()
    with override_settings(webhook_allow_loopback=True):
        configured = await client.patch(f"/v1/admin/partners/{issued.client_id}", headers=admin.headers,
                                        json={"webhook_url": f"http://127.0.0.1:{port}/webhooks"})
        assert configured.status_code == 200, configured.text
        env = {**os.environ, "XINYI_SIM_WEBHOOK_SECRET": configured.json()["webhook_secret"],
               "XINYI_SIM_CLIENT_SECRET": issued.client_secret}
        with xinyi_server(["serve"], ready_path="/health/ready") as api, \
                xinyi_server(["simulate", "bank", "--api", api, "--client-id", issued.client_id], ready_path="/health",
                             port=port, env=env):
            demand = await post_demand(client, owned, amount_fen=150 * WAN_FEN, term_months=36)
            app = (await _submitted(client, owned, demand["id"], [product["id"]]))["applications"][0]
            status = app["status"]
            for _ in range(100):
                await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
                view = (await client.get(f"/v1/lending/demands/{demand['id']}", headers=owned.headers)).json()
                status = view["applications"][0]["status"]
                if status != "submitted":
                    break
                await asyncio.sleep(0.2)
    assert status == "approved", view
    decided = view["applications"][0]
    assert decided["decision"]["approved_amount_fen"] == 150 * WAN_FEN
    assert decided["decision"]["approved_term_months"] == 36
    assert decided["decision"]["approved_rate_bp"] == 365
    assert [e["status"] for e in decided["timeline"]] == ["submitted", "approved"]
    reads = await LedgerEntry.count().where((LedgerEntry.subject_id == owned.public_id)
                                            & (LedgerEntry.action == "portrait.read")
                                            & (LedgerEntry.actor_id == issued.client_id))
    assert reads == 1


async def test_a_revoked_authorization_is_not_reused_by_a_later_submission(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, owner_name="撤回企业主")
    _, bank = await bank_session(client)
    first = await publish_product(client, bank, name="一号")
    second = await publish_product(client, bank, name="二号")
    demand = await post_demand(client, owned)
    app = (await _submitted(client, owned, demand["id"], [first["id"]]))["applications"][0]
    revoked = await client.post(f"/v1/enterprises/{owned.uscc}/authorizations/{app['authorization_id']}/revoke",
                                headers=owned.headers)
    assert revoked.status_code == 200, revoked.text
    later = {a["product"]["id"]: a for a in (await _submitted(client, owned, demand["id"],
                                                              [second["id"]]))["applications"]}
    assert later[second["id"]]["authorization_id"] != app["authorization_id"]
    portrait = await client.get(f"/v1/portraits/{owned.uscc}", headers=bank.headers,
                                params={"authorization_id": later[second["id"]]["authorization_id"]})
    assert portrait.status_code == 200


# ---------------------------------------------------------------- review fixes


async def test_an_approval_stays_within_the_products_published_ranges(client, ctx) -> None:
    # the product: 10万–300万元, 6–36 months, 3.85%–6.00%
    _, _, bank, _, _, app = await _one_application(client, ctx, owner_name="范围企业主")
    for decision, code in (
        ({"rate_bp": 4}, "rate_outside_product_range"),  # "4" meant as 4 %: 0.04 %
        ({"rate_bp": 384}, "rate_outside_product_range"),
        ({"rate_bp": 601}, "rate_outside_product_range"),
        ({"term_months": 5}, "term_outside_product_range"),
        ({"term_months": 37}, "term_outside_product_range"),
        ({"amount_fen": 300 * WAN_FEN + 1}, "amount_above_product_max"),
    ):
        body = {"status": "approved", "amount_fen": 80 * WAN_FEN, "rate_bp": 395, "term_months": 12, **decision}
        r = await _decide(client, bank, app["id"], **body)
        assert (r.status_code, r.json()["code"]) == (422, code), decision
    still = (await client.get(f"/v1/lending/applications/{app['id']}", headers=bank.headers)).json()
    assert (still["status"], still["first_response_at"]) == ("submitted", None)
    edge = await _decide(client, bank, app["id"], status="approved", amount_fen=300 * WAN_FEN, rate_bp=600,
                         term_months=36)
    assert edge.status_code == 200, edge.text


async def test_concurrent_disbursements_make_one_first_loan(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, owner_name="并发放款企业主")
    _, bank = await bank_session(client, name="放款银行")
    products = [await publish_product(client, bank, name=f"放款产品{i}") for i in range(8)]
    demand = await post_demand(client, owned)
    apps = (await _submitted(client, owned, demand["id"], [p["id"] for p in products]))["applications"]
    assert all(a["first_loan"] for a in apps)
    for a in apps:
        r = await _decide(client, bank, a["id"], status="approved", amount_fen=50 * WAN_FEN, rate_bp=400,
                          term_months=12)
        assert r.status_code == 200, r.text
    answers = await asyncio.gather(*(_decide(client, bank, a["id"], status="disbursed", amount_fen=50 * WAN_FEN)
                                     for a in apps))
    assert [a.status_code for a in answers] == [200] * len(apps), [a.text for a in answers]
    assert sorted(a.json()["first_loan"] for a in answers) == [False] * (len(apps) - 1) + [True]
    stats = (await client.get("/v1/lending/stats", params={"bank": apps[0]["bank"]["id"]})).json()["totals"]
    assert (stats["disbursed_count"], stats["first_loans"], stats["first_loan_amount_fen"]) == (
        len(apps), 1, 50 * WAN_FEN)


async def test_concurrent_submissions_to_one_bank_share_one_authorization(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, owner_name="同行并发企业主")
    bank_id, bank = await bank_session(client)
    products = [await publish_product(client, bank, name=f"同行产品{i}") for i in range(6)]
    demand = await post_demand(client, owned)
    answers = await asyncio.gather(*(_submit(client, owned, demand["id"], [p["id"]]) for p in products))
    assert [a.status_code for a in answers] == [200] * len(products), [a.text for a in answers]
    followed = (await client.get(f"/v1/lending/demands/{demand['id']}", headers=owned.headers)).json()
    assert len(followed["applications"]) == len(products)
    assert len({a["authorization_id"] for a in followed["applications"]}) == 1
    grants = await Authorization.count().where((Authorization.enterprise.public_id == owned.public_id)
                                               & (Authorization.partner_client_id == bank_id))
    assert grants == 1


def test_the_response_deadline_setting_is_checked_at_start_up() -> None:
    import pytest

    from core.errors import ConfigurationError
    from core.settings import Settings

    assert Settings.from_env({"XINYI_LENDING_RESPONSE_WORKING_DAYS": "5"}).lending_response_working_days == 5
    for bad in ("0", "-3", "31"):
        with pytest.raises(ConfigurationError):
            Settings.from_env({"XINYI_LENDING_RESPONSE_WORKING_DAYS": bad})


async def test_no_approval_or_disbursement_once_the_enterprise_is_a_dishonest_executee(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, owner_name="后失信企业主")
    _, bank = await bank_session(client)
    products = [await publish_product(client, bank, name=f"后失信产品{i}") for i in range(3)]
    demand = await post_demand(client, owned)
    approved, pending, other = (await _submitted(client, owned, demand["id"],
                                                 [p["id"] for p in products]))["applications"]
    terms = {"amount_fen": 80 * WAN_FEN, "rate_bp": 400, "term_months": 12}
    assert (await _decide(client, bank, approved["id"], status="approved", **terms)).status_code == 200

    court = await data_source(client)
    await push_enterprise_records(client, court, [enterprise_row(owned.uscc, "dishonest_executee",
                                                                 title="失信被执行人（提交后列入）")])
    for app_id, decision in ((approved["id"], {"status": "disbursed", "amount_fen": 80 * WAN_FEN}),
                             (pending["id"], {"status": "approved", **terms})):
        r = await _decide(client, bank, app_id, **decision)
        assert (r.status_code, r.json()["code"]) == (422, "hard_risk_flag"), r.text
        assert "失信被执行人" in r.json()["detail"]
    # the bank may still acknowledge or refuse
    assert (await _decide(client, bank, other["id"], status="accepted")).status_code == 200
    assert (await _decide(client, bank, pending["id"], status="rejected", reason="失信被执行人")).status_code == 200
    followed = (await client.get(f"/v1/lending/demands/{demand['id']}", headers=owned.headers)).json()
    assert {a["id"]: a["status"] for a in followed["applications"]} == {
        approved["id"]: "approved", pending["id"]: "rejected", other["id"]: "accepted"}
    assert all(a["decision"]["disbursed_amount_fen"] is None for a in followed["applications"])


async def test_submission_rechecks_that_the_chosen_products_still_fit(client, ctx) -> None:
    owned = await grade_a_enterprise(client, ctx, owner_name="复核企业主")
    _, bank = await bank_session(client)
    shrunk = await publish_product(client, bank, name="缩额产品")
    stricter = await publish_product(client, bank, name="提门槛产品")
    steady = await publish_product(client, bank, name="不变产品")
    demand = await post_demand(client, owned, amount_fen=100 * WAN_FEN)
    assert {shrunk["id"], stricter["id"], steady["id"]} <= set(_by_id(demand["matches"]))
    applied = await _submitted(client, owned, demand["id"], [steady["id"]])

    # after matching, the bank lowers one product's maximum and raises another's score floor
    for product, change in ((shrunk, {"amount_max_fen": 50 * WAN_FEN}), (stricter, {"min_score": 100})):
        r = await client.patch(f"/v1/lending/products/{product['id']}", headers=bank.headers, json=change)
        assert r.status_code == 200, r.text
    r = await _submit(client, owned, demand["id"], [steady["id"], shrunk["id"], stricter["id"]])
    assert (r.status_code, r.json()["code"]) == (422, "product_no_longer_matches"), r.text
    messages = " ".join(e["message"] for e in r.json()["errors"])
    assert shrunk["id"] in messages
    assert "高于产品最高额度50万元" in messages
    assert stricter["id"] in messages
    assert steady["id"] not in messages
    assert await LoanApplication.count().where(LoanApplication.demand.public_id == demand["id"]) == 1

    # a product already applied for is not re-checked: re-submitting it stays harmless
    await client.patch(f"/v1/lending/products/{steady['id']}", headers=bank.headers, json={"min_score": 100})
    again = await _submitted(client, owned, demand["id"], [steady["id"]])
    assert [a["id"] for a in again["applications"]] == [a["id"] for a in applied["applications"]]
