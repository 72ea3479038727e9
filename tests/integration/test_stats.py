"""Operator statistics through HTTP: today's score queries, credit checks and authorizations are counted,
figures are kept in daily_stats, and the range is capped."""

from __future__ import annotations

from datetime import date, timedelta

from credit.stats import COMPUTED_METRICS, city_today, refresh_current_stats, refresh_daily_stats
from credit.tables import DailyStat
from tests.factories import (
    authorization_for,
    bound_citizen,
    citizen_login,
    operator_session,
    partner_session,
)


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
    assert {k: after[k] for k in ("redemptions", "credit_orders", "demands", "approvals")} == dict.fromkeys(
        ("redemptions", "credit_orders", "demands", "approvals"), 0)
    assert body["targets"] == {"score_queries_per_day": 3000, "credit_checks_per_year": 1500000}
    assert body["timezone"] == "Asia/Shanghai"
    assert body["totals"]["score_queries"] == after["score_queries"]

    revoked = await client.post(f"/v1/me/authorizations/{authorization_id}/revoke", headers=citizen.headers)
    assert revoked.status_code == 200
    again = (await _today(client, auditor))["days"][0]
    assert again["authorizations_active"] == after["authorizations_active"] - 1
    assert again["authorizations_granted"] == after["authorizations_granted"]  # granted today stays granted


async def test_figures_live_in_daily_stats(client) -> None:
    day = date(2021, 3, 14)
    first = await refresh_daily_stats(day)
    second = await refresh_daily_stats(day)
    assert first == second
    assert set(first) == set(COMPUTED_METRICS)
    assert await DailyStat.count().where(DailyStat.day == day) == len(COMPUTED_METRICS)
    assert await refresh_current_stats() >= 1
    assert await DailyStat.count().where(DailyStat.day == city_today()) == len(COMPUTED_METRICS)


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
