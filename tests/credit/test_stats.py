"""Operator statistics through HTTP: today's score queries, credit checks, authorizations, redemptions,
credit orders, demands and approvals are counted, with the feedback, repair and timeliness rates; a figure
that cannot be computed is null with a reason; figures are kept in daily_stats, and the range is capped."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

import pytest

from core.clock import city_today
from core.daily_counts import DailyCountRegistry
from credit.checks import seed_default_measures
from credit.stats import (
    COMPUTED_METRICS,
    daily_report,
    earliest_timely_decision_day,
    refresh_current_stats,
    refresh_daily_stats,
)
from credit.tables import DailyStat
from tests.factories import (
    add_record,
    authorization_for,
    bound_citizen,
    citizen_login,
    operator_session,
    partner_session,
    push_records,
    record_row,
)
from tests.lending_factories import bank_session, grade_a_enterprise, post_demand, publish_product
from tests.scenario_factories import admin_benefit, merchant_session, verification_for

DAY_METRICS = ("redemptions", "credit_orders", "demands", "approvals", "checks_with_measures", "measures_applied",
               "repairs_requested", "repairs_approved", "records_ingested", "records_timely")


async def _today(client, session) -> dict:  # type: ignore[no-untyped-def,type-arg]
    today = city_today().isoformat()
    r = await client.get("/v1/admin/stats/daily", headers=session.headers, params={"from": today, "to": today})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["day"] for d in body["days"]] == [today]
    return body  # type: ignore[no-any-return]


async def test_todays_queries_checks_and_authorizations_are_counted(client, ctx) -> None:
    auditor = await operator_session(client, role="auditor")
    before = (await _today(client, auditor))["days"][0]

    citizen = await bound_citizen(client, ctx, name="统计一")
    _, _, bank = await partner_session(client, kind="bank")
    _, _, department = await partner_session(client, kind="government")
    authorization_id = await authorization_for(client, bank, citizen, scopes=["tier"])
    for _ in range(2):
        answer = await client.post("/v1/scores/query", headers=bank.headers,
                                   json={"authorization_id": authorization_id})
        assert answer.status_code == 200, answer.text
    refused = await client.post("/v1/scores/query", headers=bank.headers,
                                json={"authorization_id": authorization_id, "purpose": "deposit_waiver"})
    assert refused.status_code == 403  # refusals are ledgered but are not answered queries
    check = await client.post("/v1/credit-checks", headers=department.headers, json={
        "subject": {"kind": "person", "id_number": citizen.person.id_number, "name": citizen.person.name},
        "business_type": "permit_issue"})
    assert check.status_code == 201, check.text

    body = await _today(client, auditor)
    after = body["days"][0]
    assert after["score_queries"] - before["score_queries"] == 2
    assert after["credit_checks"] - before["credit_checks"] == 1
    assert after["authorizations_granted"] - before["authorizations_granted"] == 1
    assert after["authorizations_active"] - before["authorizations_active"] == 1
    assert after["authorized_citizens"] - before["authorized_citizens"] == 1
    assert after["score_queries_vs_target"] == round(after["score_queries"] / 3000, 4)
    assert body["targets"] == {"score_queries_per_day": 3000, "credit_checks_per_year": 1500000}
    assert body["timezone"] == "Asia/Shanghai"
    assert body["totals"]["score_queries"] == after["score_queries"]

    revoked = await client.post(f"/v1/me/authorizations/{authorization_id}/revoke", headers=citizen.headers)
    assert revoked.status_code == 200
    again = (await _today(client, auditor))["days"][0]
    assert again["authorizations_active"] == after["authorizations_active"] - 1
    assert again["authorizations_granted"] == after["authorizations_granted"]  # granted today stays granted


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in DAY_METRICS}


async def test_redemptions_credit_orders_demands_and_approvals_are_counted(client, ctx) -> None:
    auditor = await operator_session(client, role="auditor")
    before = (await _today(client, auditor))["days"][0]

    # 信易+: a redemption at a merchant of the operator's own scenario, and a pay-later credit order.
    officer = await operator_session(client)
    scenario = f"t{secrets.token_hex(4)}"
    made = await client.post("/v1/admin/scenarios", headers=officer.headers,
                             json={"code": scenario, "name": "统计场景", "description": "仅供测试"})
    assert made.status_code == 201, made.text
    merchant = await merchant_session(client, scenario)
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, merchants=[merchant.client_id])
    citizen = await bound_citizen(client, ctx, name="统计二")
    verification = await verification_for(client, merchant, citizen)
    redeemed = await client.post("/v1/benefits/redeem", headers={**merchant.headers, "Idempotency-Key": "stats-1"},
                                 json={"verification_id": verification["verification_id"],
                                       "benefit_id": benefit["id"]})
    assert redeemed.status_code == 201, redeemed.text
    renter = await merchant_session(client, "rental", name=f"统计租赁{secrets.token_hex(2)}")
    order = await client.post("/v1/credit-orders", headers=renter.headers, json={
        "verification_id": (await verification_for(client, renter, citizen))["verification_id"],
        "kind": "pay_later", "amount_fen": 10_000, "merchant_order_no": f"ST-{secrets.token_hex(4)}",
        "due_at": (city_today() + timedelta(days=7)).isoformat() + "T12:00:00+08:00"})
    assert order.status_code == 201, order.text

    # 信易贷: a demand sent to a bank, which approves it.
    owned = await grade_a_enterprise(client, ctx, owner_name="统计企业主")
    _, bank = await bank_session(client, name="统计银行")
    product = await publish_product(client, bank)
    demand = await post_demand(client, owned)
    submitted = await client.post(f"/v1/lending/demands/{demand['id']}/submit", headers=owned.headers,
                                  json={"product_ids": [product["id"]], "consent": True})
    assert submitted.status_code == 200, submitted.text
    application = submitted.json()["applications"][0]["id"]
    approved = await client.post(f"/v1/lending/applications/{application}/decisions", headers=bank.headers,
                                 json={"status": "approved", "amount_fen": 500_000, "rate_bp": 395,
                                       "term_months": 12})
    assert approved.status_code == 200, approved.text

    body = await _today(client, auditor)
    after = body["days"][0]
    changed = _delta(before, after)
    assert {k: changed[k] for k in ("redemptions", "credit_orders", "demands", "approvals")} == {
        "redemptions": 1, "credit_orders": 1, "demands": 1, "approvals": 1}
    assert {k: body["totals"][k] for k in ("redemptions", "credit_orders", "demands", "approvals")} == {
        k: after[k] for k in ("redemptions", "credit_orders", "demands", "approvals")}


async def test_feedback_repair_and_timeliness_rates_follow_what_happened(client, ctx) -> None:
    await seed_default_measures()
    auditor = await operator_session(client, role="auditor")
    before = (await _today(client, auditor))["days"][0]

    listed = await bound_citizen(client, ctx, name="统计三")
    _, _, court = await partner_session(client, kind="data_source", name="统计法院")
    _, _, department = await partner_session(client, kind="government", name="统计财政局")
    rows = [record_row(listed.person, category="dishonest_executee", title="失信被执行人", days_ago=0),
            record_row(listed.person, title="合同违约（昨日决定）", days_ago=1),
            record_row(listed.person, title="合同违约（两个月前决定）", days_ago=60)]
    assert (await push_records(client, court, rows)).json()["summary"]["accepted"] == 3
    subject = {"kind": "person", "id_number": listed.person.id_number, "name": listed.person.name}
    checks = []
    for business_type in ("government_procurement", "high_consumption"):
        r = await client.post("/v1/credit-checks", headers=department.headers,
                              json={"subject": subject, "business_type": business_type})
        assert r.status_code == 201, r.text
        assert r.json()["measures"]
        checks.append(r.json())
    clean = await bound_citizen(client, ctx, name="统计四")
    r = await client.post("/v1/credit-checks", headers=department.headers, json={
        "subject": {"kind": "person", "id_number": clean.person.id_number, "name": clean.person.name},
        "business_type": "government_procurement"})
    assert (r.status_code, r.json()["measures"]) == (201, [])
    feedback = await client.post(f"/v1/credit-checks/{checks[0]['id']}/feedback", headers=department.headers,
                                 json={"measure_code": checks[0]["measures"][0]["code"]})
    assert feedback.status_code == 200, feedback.text

    repaired = await add_record(ctx, clean.person, category="tax_arrears", severity="general", days_ago=100)
    refused = await add_record(ctx, clean.person, category="tax_arrears", severity="general", days_ago=120)
    officer = await operator_session(client, role="officer")
    for record_id, outcome in ((repaired, "approved"), (refused, "rejected")):
        asked = await client.post("/v1/me/repairs", headers=clean.headers,
                                  json={"record_id": record_id, "statement": "已补缴税款及滞纳金"})
        assert asked.status_code == 201, asked.text
        decided = await client.post(f"/v1/admin/repairs/{asked.json()['id']}/decide", headers=officer.headers,
                                    json={"outcome": outcome, "note": "统计"})
        assert decided.status_code == 200, decided.text

    after = (await _today(client, auditor))["days"][0]
    assert _delta(before, after) == {
        "redemptions": 0, "credit_orders": 0, "demands": 0, "approvals": 0,
        "checks_with_measures": 2, "measures_applied": 1, "repairs_requested": 2, "repairs_approved": 1,
        "records_ingested": 5, "records_timely": 2}  # the two repaired-by-hand records are old decisions
    assert after["credit_checks"] - before["credit_checks"] == 3
    for rate, numerator, denominator in (("feedback_rate", "measures_applied", "checks_with_measures"),
                                         ("repair_rate", "repairs_approved", "repairs_requested"),
                                         ("timeliness_rate", "records_timely", "records_ingested")):
        assert after[rate] == {"value": round(after[numerator] / after[denominator], 4),
                               "numerator": after[numerator], "denominator": after[denominator],
                               "unavailable": None}, rate


async def test_a_rate_that_cannot_be_computed_is_null_with_a_reason_never_zero(client, ctx) -> None:
    auditor = await operator_session(client, role="auditor")
    quiet = (await client.get("/v1/admin/stats/daily", headers=auditor.headers,
                              params={"from": "2021-03-14", "to": "2021-03-14"})).json()
    day = quiet["days"][0]
    assert (day["redemptions"], day["checks_with_measures"], day["records_ingested"]) == (0, 0, 0)
    assert day["feedback_rate"] == {"value": None, "numerator": 0, "denominator": 0,
                                    "unavailable": "no_check_returned_a_measure"}
    assert day["repair_rate"]["unavailable"] == "no_repair_requested"
    assert day["timeliness_rate"]["unavailable"] == "no_record_ingested"
    assert quiet["totals"]["feedback_rate"]["value"] is None

    # 2003 is before any year the working-day calendar knows: timeliness cannot be judged there.
    old = (await client.get("/v1/admin/stats/daily", headers=auditor.headers,
                            params={"from": "2003-06-02", "to": "2003-06-02"})).json()
    assert old["days"][0]["records_timely"] is None
    assert old["days"][0]["timeliness_rate"] == {"value": None, "numerator": None, "denominator": 0,
                                                 "unavailable": "calendar_year_unknown"}

    # Without the domains' contributions the figures are not known, not 0.
    alone = await daily_report(start=date(2021, 3, 14), end=date(2021, 3, 14), counters=DailyCountRegistry(),
                               calendar=ctx.settings.calendar)
    assert [alone.days[0].get(m) for m in ("redemptions", "credit_orders", "demands", "approvals")] == [None] * 4
    assert alone.known_total("redemptions") is None


def test_a_metric_is_contributed_by_one_domain_only() -> None:
    registry = DailyCountRegistry()

    async def count(start: Any, end: Any) -> dict[str, int]:
        return {"redemptions": 0}

    registry.register(name="scenarios", metrics=("redemptions",), count=count)
    registry.register(name="scenarios", metrics=("redemptions",), count=count)  # the same domain again: replaced
    with pytest.raises(ValueError, match="redemptions"):
        registry.register(name="lending", metrics=("redemptions",), count=count)
    assert registry.metrics == ("redemptions",)


def test_timeliness_counts_seven_working_days_on_the_service_calendar(ctx) -> None:
    calendar = ctx.settings.calendar
    # Ingested Wed 2 Dec 2026: 7 working days strictly between decision and ingest reach back to Mon 23 Nov.
    assert earliest_timely_decision_day(date(2026, 12, 2), calendar=calendar) == date(2026, 11, 23)
    # Ingested Wed 25 Feb 2026, after Spring Festival (15-23 Feb off, Sat 14 Feb worked): back to Mon 9 Feb
    # (10, 11, 12, 13, 14 and 24 Feb lie between: six working days).
    assert earliest_timely_decision_day(date(2026, 2, 25), calendar=calendar) == date(2026, 2, 9)


async def test_figures_live_in_daily_stats(client, ctx) -> None:
    day = date(2021, 3, 14)
    sources = {"counters": ctx.daily_counts, "calendar": ctx.settings.calendar}
    first = await refresh_daily_stats(day, **sources)
    second = await refresh_daily_stats(day, **sources)
    assert first == second
    expected = set(COMPUTED_METRICS) | set(ctx.daily_counts.metrics)
    assert set(first) == expected
    assert await DailyStat.count().where(DailyStat.day == day) == len(expected)
    assert await refresh_current_stats(**sources) >= 1
    assert await DailyStat.count().where(DailyStat.day == city_today()) == len(expected)


async def test_range_is_capped_and_checked(client) -> None:
    officer = await operator_session(client, role="officer")

    async def get(params: dict):  # type: ignore[no-untyped-def,type-arg]
        return await client.get("/v1/admin/stats/daily", headers=officer.headers, params=params)

    start = date(2020, 1, 1)
    full = await get({"from": start.isoformat(), "to": (start + timedelta(days=365)).isoformat()})
    assert full.status_code == 200, full.text
    assert len(full.json()["days"]) == 366
    too_long = await get({"from": start.isoformat(), "to": (start + timedelta(days=366)).isoformat()})
    assert (too_long.status_code, too_long.json()["code"]) == (422, "range_too_long")
    backwards = await get({"from": "2020-02-01", "to": "2020-01-01"})
    assert (backwards.status_code, backwards.json()["code"]) == (422, "invalid_range")
    future = await get({"from": (city_today() + timedelta(days=2)).isoformat()})
    assert (future.status_code, future.json()["code"]) == (422, "range_in_future")
    garbage = await get({"from": "yesterday"})
    assert garbage.status_code in (400, 422)
    assert garbage.headers["content-type"].startswith("application/problem+json")

    default = await get({})
    assert default.status_code == 200
    assert len(default.json()["days"]) == 7
    assert default.json()["to"] == city_today().isoformat()
    clamped = await get({"from": city_today().isoformat(), "to": (city_today() + timedelta(days=30)).isoformat()})
    assert [d["day"] for d in clamped.json()["days"]] == [city_today().isoformat()]


async def test_only_operators_read_statistics(client) -> None:
    citizen = await citizen_login(client)
    _, _, bank = await partner_session(client, kind="bank")
    for session in (citizen, bank):
        r = await client.get("/v1/admin/stats/daily", headers=session.headers)
        assert (r.status_code, r.json()["code"]) == (403, "wrong_principal")
    partner_admin = await operator_session(client, role="partner_admin")
    r = await client.get("/v1/admin/stats/daily", headers=partner_admin.headers)
    assert (r.status_code, r.json()["code"]) == (403, "insufficient_role")
