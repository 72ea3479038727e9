"""信易+ benefits through HTTP: the catalog, the citizen's benefits and codes, eligibility-only verification,
exactly-once redemption under concurrency, cancellation, and the merchant-facing schemas."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from core.clock import CITY_TZ
from scenarios.catalog import CATALOG, DEFAULT_BENEFITS, DEFAULT_SCENARIOS, seed_default_scenarios
from scenarios.codes import CODE_DOMAIN
from scenarios.tables import BenefitUsage, Redemption
from tests.factories import bound_citizen, citizen_login, operator_session, partner_session
from tests.scenario_factories import (
    Merchant,
    admin_benefit,
    benefit_code,
    merchant_session,
    verification_for,
    verify_code,
    verify_response,
)

FORBIDDEN_PROPERTIES = {"score", "tier", "total", "id_number", "phone", "person_id"}


async def _own_scenario(client: Any, officer: Any) -> str:
    """A scenario of the test's own, so benefits made here never show at other tests' merchants."""
    code = f"t{secrets.token_hex(4)}"
    r = await client.post("/v1/admin/scenarios", headers=officer.headers,
                          json={"code": code, "name": "测试场景", "description": "仅供测试"})
    assert r.status_code == 201, r.text
    return code


async def _redeem(client: Any, merchant: Merchant, verification_id: str, benefit_id: str, *,
                  key: str | None = None, order_ref: str | None = None) -> Any:
    body: dict[str, Any] = {"verification_id": verification_id, "benefit_id": benefit_id}
    if order_ref is not None:
        body["order_ref"] = order_ref
    return await client.post("/v1/benefits/redeem", json=body,
                             headers={**merchant.headers, "Idempotency-Key": key or secrets.token_hex(8)})


def _ids(answer: dict[str, Any]) -> list[str]:
    return [b["benefit_id"] for b in answer["benefits"]]


# ---------------------------------------------------------------- catalog


async def test_seeding_is_idempotent_and_the_catalog_is_public(client) -> None:
    await seed_default_scenarios()
    assert await seed_default_scenarios() == (0, 0)
    r = await client.get("/v1/scenarios")  # no token
    assert r.status_code == 200
    scenarios = {s["code"]: s for s in r.json()}
    assert {s.code for s in DEFAULT_SCENARIOS} <= set(scenarios)
    assert scenarios["travel"]["name"] == "信易游"
    assert scenarios["reading"]["name"] == "信易阅"
    travel = {b["id"]: b for b in scenarios["travel"]["benefits"]}
    ticket = travel["bnf_travel_ticket_20off"]
    assert (ticket["kind"], ticket["value"], ticket["min_tier"], ticket["quota_per_period"], ticket["period"]) == (
        "percent_discount", 20, "AA", 1, "day")
    every_default = {b["id"] for s in scenarios.values() for b in s["benefits"]}
    assert {b.id for b in DEFAULT_BENEFITS} <= every_default


async def test_operators_manage_scenarios_and_benefits_with_validated_rules(client) -> None:
    officer = await operator_session(client)
    auditor = await operator_session(client, role="auditor")
    citizen = await citizen_login(client)
    scenario = await _own_scenario(client, officer)
    again = await client.post("/v1/admin/scenarios", headers=officer.headers, json={"code": scenario, "name": "x"})
    assert again.status_code == 409
    assert again.json()["code"] == "scenario_exists"

    assert (await client.get("/v1/admin/benefits", headers=auditor.headers)).status_code == 200
    denied = await client.post("/v1/admin/benefits", headers=auditor.headers,
                               json={"scenario": scenario, "name": "x", "kind": "percent_discount", "value": 5})
    assert denied.status_code == 403
    assert (await client.get("/v1/admin/scenarios", headers=citizen.headers)).status_code == 403

    def bad(**rule: Any) -> dict[str, Any]:
        return {"scenario": scenario, "name": "坏规则", "kind": "percent_discount", "value": 10, **rule}

    now = datetime.now(UTC)
    for body, code in [
        (bad(value=150), "invalid_benefit_rule"),
        (bad(kind="fixed_discount", value=0), "validation_failed"),
        (bad(min_tier="AAAA"), "validation_failed"),
        (bad(valid_from=now.isoformat(), valid_until=(now - timedelta(days=1)).isoformat()), "invalid_benefit_rule"),
        (bad(merchants=["merchant_doesnotexist"]), "unknown_merchant"),
        (bad(scenario="nosuchscenario"), "unknown_scenario"),
        (bad(colour="red"), "validation_failed"),
    ]:
        r = await client.post("/v1/admin/benefits", headers=officer.headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == code, (body, r.text)

    merchant = await merchant_session(client, scenario)
    other_scenario_merchant = await merchant_session(client, "travel")
    wrong = await client.post("/v1/admin/benefits", headers=officer.headers,
                              json=bad(merchants=[other_scenario_merchant.client_id]))
    assert wrong.json()["code"] == "unknown_merchant"

    created = await admin_benefit(client, officer=officer, scenario=scenario, name="会员九折", value=10,
                                  min_tier="A", quota_per_period=2, period="week", merchants=[merchant.client_id])
    assert created["merchants"] == [merchant.client_id]
    assert created["status"] == "active"
    patched = await client.patch(f"/v1/admin/benefits/{created['id']}", headers=officer.headers,
                                 json={"min_tier": None, "min_score": 600, "value": 15})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["min_tier"], patched.json()["min_score"], patched.json()["value"]) == (None, 600, 15)
    assert patched.json()["period"] == "week"  # untouched fields stay
    bad_patch = await client.patch(f"/v1/admin/benefits/{created['id']}", headers=officer.headers,
                                   json={"value": 101})
    assert bad_patch.json()["code"] == "invalid_benefit_rule"
    retired = await client.patch(f"/v1/admin/benefits/{created['id']}", headers=officer.headers,
                                 json={"status": "retired"})
    assert retired.json()["status"] == "retired"
    revived = await client.patch(f"/v1/admin/benefits/{created['id']}", headers=officer.headers,
                                 json={"status": "active"})
    assert revived.status_code == 409
    assert revived.json()["code"] == "benefit_retired"
    missing = await client.patch("/v1/admin/benefits/bnf_nope", headers=officer.headers, json={"value": 3})
    assert missing.status_code == 404

    renamed = await client.patch(f"/v1/admin/scenarios/{scenario}", headers=officer.headers,
                                 json={"name": "测试场景二", "status": "paused"})
    assert (renamed.json()["name"], renamed.json()["status"]) == ("测试场景二", "paused")
    assert scenario not in {s["code"] for s in (await client.get("/v1/scenarios")).json()}
    listed = (await client.get("/v1/admin/scenarios", headers=auditor.headers)).json()
    assert scenario in {s["code"] for s in listed}


# ---------------------------------------------------------------- citizens


async def test_my_benefits_say_what_applies_and_why_not(client, ctx) -> None:
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="卫一")  # no records: 650, tier A
    now = datetime.now(UTC)
    later = await admin_benefit(client, officer=officer, scenario=scenario, name="将来",
                                valid_from=(now + timedelta(days=3)).isoformat())
    over = await admin_benefit(client, officer=officer, scenario=scenario, name="过去",
                               valid_from=(now - timedelta(days=30)).isoformat(),
                               valid_until=(now - timedelta(days=1)).isoformat())
    once = await admin_benefit(client, officer=officer, scenario=scenario, name="一次", quota_per_period=1,
                               period="once", merchants=[merchant.client_id])

    answer = await verification_for(client, merchant, citizen)
    assert once["id"] in _ids(answer)
    assert (await _redeem(client, merchant, answer["verification_id"], once["id"])).status_code == 201

    r = await client.get("/v1/me/benefits", headers=citizen.headers)
    assert r.status_code == 200, r.text
    items = {b["id"]: b for b in r.json()["items"]}
    aa = items["bnf_travel_ticket_20off"]
    assert (aa["applies"], aa["reason_code"], aa["reason"]) == (False, "tier_too_low", "需要AA级，您目前是A级")
    assert aa["remaining_quota"] == 1
    boat = items["bnf_travel_boat_half"]
    assert (boat["reason_code"], boat["reason"]) == ("score_too_low", "需要信用分750分，您目前是650分")
    ticket = items["bnf_travel_ticket_2000"]
    assert (ticket["applies"], ticket["reason_code"], ticket["reason"]) == (True, None, None)
    bike = items["bnf_transit_bike_deposit"]
    assert bike["applies"] is True
    assert bike["remaining_quota"] is None  # unlimited
    assert items[later["id"]]["reason_code"] == "not_yet_valid"
    assert items[later["id"]]["reason"].endswith("起可用")
    assert items[over["id"]]["reason_code"] == "expired"
    used = items[once["id"]]
    assert (used["applies"], used["reason_code"], used["remaining_quota"]) == (False, "quota_used", 0)
    assert used["reason"] == "该权益可用1次，已用完"
    assert used["merchants"] == [merchant.name]
    assert citizen.person.id_number not in r.text

    public = {s["code"]: s for s in (await client.get("/v1/scenarios")).json()}[scenario]
    assert {b["id"] for b in public["benefits"]} == {later["id"], once["id"]}  # the expired one is gone


async def test_benefit_codes_need_a_bound_identity_and_are_rate_limited(client, ctx, override_settings) -> None:
    unbound = await citizen_login(client)
    r = await client.post("/v1/me/benefit-codes", headers=unbound.headers)
    assert r.status_code == 403
    assert r.json()["code"] == "identity_not_bound"

    citizen = await bound_citizen(client, ctx, name="蒋二")
    r = await client.post("/v1/me/benefit-codes", headers=citizen.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["code"]) == 16
    assert body["ttl_seconds"] == 60
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(seconds=0) < expires - datetime.now(UTC) <= timedelta(seconds=60)
    assert body["qr_svg"].startswith("<svg")
    bound = await client.post("/v1/me/benefit-codes", headers=citizen.headers, json={"scenario": "medical"})
    assert bound.json()["scenario"] == "medical"
    unknown = await client.post("/v1/me/benefit-codes", headers=citizen.headers, json={"scenario": "nowhere"})
    assert unknown.json()["code"] == "unknown_scenario"

    with override_settings(benefit_codes_per_hour=3):
        limited = await client.post("/v1/me/benefit-codes", headers=citizen.headers)
    assert limited.status_code == 429
    assert limited.json()["code"] == "benefit_code_rate_limited"
    assert int(limited.headers["retry-after"]) > 0


# ---------------------------------------------------------------- verification


async def test_verification_answers_eligibility_only_and_is_ledgered(client, ctx) -> None:
    merchant = await merchant_session(client, "travel", name="嘉兴南湖景区售票处")
    citizen = await bound_citizen(client, ctx, name="陈小一")
    code = await benefit_code(client, citizen)
    r = await verify_response(client, merchant, code.lower()[:8] + "-" + code.lower()[8:])  # typed by hand
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"verification_id", "expires_at", "scenario", "masked_name", "benefits"}
    assert body["masked_name"] == "*小一"
    assert body["scenario"] == "travel"
    ids = _ids(body)
    assert "bnf_travel_ticket_2000" in ids  # tier A
    assert "bnf_travel_ticket_20off" not in ids  # needs AA
    assert "bnf_travel_boat_half" not in ids  # needs 750
    ticket = next(b for b in body["benefits"] if b["benefit_id"] == "bnf_travel_ticket_2000")
    assert set(ticket) == {"benefit_id", "name", "kind", "value", "remaining_quota", "period"}
    assert (ticket["kind"], ticket["value"], ticket["remaining_quota"], ticket["period"]) == (
        "fixed_discount", 2000, 1, "month")
    for secret in (citizen.person.id_number, citizen.session.phone, citizen.person.public_id, "陈小一"):
        assert secret not in r.text

    log = (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]
    entry = log[0]
    assert (entry["action"], entry["actor_name"], entry["actor_type"], entry["outcome"], entry["fields"]) == (
        "benefit.verify", "嘉兴南湖景区售票处", "merchant", "allowed", ["eligibility"])


async def test_a_reused_expired_or_unknown_code_is_refused_alike(client, ctx) -> None:
    merchant = await merchant_session(client, "rental")
    citizen = await bound_citizen(client, ctx, name="沈三")
    code = await benefit_code(client, citizen)
    await verify_code(client, merchant, code)
    reused = await verify_response(client, merchant, code)
    expired_code = await benefit_code(client, citizen)
    assert await ctx.store.delete(CODE_DOMAIN, expired_code)  # what its 60 s TTL does
    expired = await verify_response(client, merchant, expired_code)
    unknown = await verify_response(client, merchant, "0123456789ABCDEF")
    for r in (reused, expired, unknown):
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "benefit_code_invalid"
    assert reused.json()["detail"] == expired.json()["detail"] == unknown.json()["detail"]


async def test_concurrent_verifications_of_one_code_consume_it_once(client, ctx) -> None:
    merchant = await merchant_session(client, "lodging", rate_limit_per_second=10_000)
    citizen = await bound_citizen(client, ctx, name="韩四")
    code = await benefit_code(client, citizen)
    results = await asyncio.gather(*(verify_response(client, merchant, code) for _ in range(20)))
    assert sorted(r.status_code for r in results) == [200] + [422] * 19


async def test_a_verification_that_fails_gives_the_code_back_for_one_more_use(client, ctx, monkeypatch) -> None:
    """The database goes away after the code was taken: the merchant gets a 503 and the citizen's code is not
    spent. It is given back once: of the merchants that race for it afterwards, exactly one gets an answer."""
    merchant = await merchant_session(client, "lodging", rate_limit_per_second=10_000)
    citizen = await bound_citizen(client, ctx, name="韩六")
    code = await benefit_code(client, citizen)
    real_append = ctx.ledger.append

    async def database_gone(event: Any) -> None:
        raise ConnectionResetError("the database went away while the verification was ledgered")

    monkeypatch.setattr(ctx.ledger, "append", database_gone)
    failed = await verify_response(client, merchant, code)
    assert failed.status_code == 503, failed.text
    assert failed.json()["code"] == "database_unavailable"
    monkeypatch.setattr(ctx.ledger, "append", real_append)

    results = await asyncio.gather(*(verify_response(client, merchant, code) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200] + [422] * 4


async def test_a_merchant_outside_the_scenario_is_refused_and_the_code_stays_usable(client, ctx) -> None:
    travel = await merchant_session(client, "travel")
    bikes = await merchant_session(client, "transit")
    citizen = await bound_citizen(client, ctx, name="杨五")
    code = await benefit_code(client, citizen)
    refused = await verify_response(client, bikes, code, scenario="travel")
    assert refused.status_code == 403
    assert refused.json()["code"] == "scenario_not_allowed"
    assert (await verify_response(client, bikes, code, scenario="nowhere")).status_code == 403
    assert (await verify_code(client, travel, code))["scenario"] == "travel"  # not burnt by the refusal

    # A bank holds no benefits scope at all.
    _, _, bank = await partner_session(client, kind="bank")
    other = await client.post("/v1/benefits/verify", headers=bank.headers,
                              json={"code": await benefit_code(client, citizen), "scenario": "travel"})
    assert other.status_code == 403


async def test_a_code_bound_to_a_scenario_only_works_there(client, ctx) -> None:
    travel = await merchant_session(client, "travel")
    hospital = await merchant_session(client, "medical", name="嘉兴市第二医院")
    citizen = await bound_citizen(client, ctx, name="朱六")
    code = await benefit_code(client, citizen, scenario="travel")
    wrong = await verify_response(client, hospital, code)
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "benefit_code_other_scenario"
    log = (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]
    assert (log[0]["actor_name"], log[0]["outcome"], log[0]["fields"]) == (
        "嘉兴市第二医院", "benefit_code_other_scenario", [])
    assert (await verify_code(client, travel, code))["scenario"] == "travel"


async def test_a_paused_scenario_or_benefit_stops_applying_at_once(client, ctx) -> None:
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="秦七")
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, merchants=[merchant.client_id])
    first = await verification_for(client, merchant, citizen)
    assert _ids(first) == [benefit["id"]]

    paused = await client.patch(f"/v1/admin/benefits/{benefit['id']}", headers=officer.headers,
                                json={"status": "paused"})
    assert paused.status_code == 200
    assert _ids(await verification_for(client, merchant, citizen)) == []
    late = await _redeem(client, merchant, first["verification_id"], benefit["id"])
    assert late.status_code == 409
    assert late.json()["code"] == "benefit_not_active"
    mine = {b["id"] for b in (await client.get("/v1/me/benefits", headers=citizen.headers)).json()["items"]}
    assert benefit["id"] not in mine

    await client.patch(f"/v1/admin/benefits/{benefit['id']}", headers=officer.headers, json={"status": "active"})
    await client.patch(f"/v1/admin/scenarios/{scenario}", headers=officer.headers, json={"status": "paused"})
    code = await benefit_code(client, citizen)
    refused = await verify_response(client, merchant, code)
    assert refused.status_code == 403
    assert refused.json()["code"] == "scenario_not_allowed"


# ---------------------------------------------------------------- redemption


async def test_redeem_once_with_idempotent_replay(client, ctx) -> None:
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario)
    other = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="尤八")
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, kind="deposit_waiver", value=20000,
                                  quota_per_period=3, period="day", merchants=[merchant.client_id])
    excluded = await admin_benefit(client, officer=officer, scenario=scenario, merchants=[other.client_id])
    answer = await verification_for(client, merchant, citizen)
    assert _ids(answer) == [benefit["id"]]
    assert answer["benefits"][0]["remaining_quota"] == 3

    no_key = await client.post("/v1/benefits/redeem", headers=merchant.headers,
                               json={"verification_id": answer["verification_id"], "benefit_id": benefit["id"]})
    assert no_key.status_code == 400
    assert no_key.json()["code"] == "idempotency_key_required"

    first = await _redeem(client, merchant, answer["verification_id"], benefit["id"], key="pos-1", order_ref="T-001")
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["status"], body["order_ref"], body["remaining_quota"], body["kind"], body["value"]) == (
        "redeemed", "T-001", 2, "deposit_waiver", 20000)
    assert body["period_key"] == datetime.now(UTC).astimezone(CITY_TZ).strftime("%Y-%m-%d")
    replay = await _redeem(client, merchant, answer["verification_id"], benefit["id"], key="pos-1",
                           order_ref="T-001")
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == body
    twice = await _redeem(client, merchant, answer["verification_id"], benefit["id"], key="pos-2", order_ref="T-001")
    assert twice.status_code == 409
    assert twice.json()["code"] == "already_redeemed"
    assert await Redemption.count().where(Redemption.verification_id == answer["verification_id"]) == 1

    not_listed = await _redeem(client, merchant, answer["verification_id"], excluded["id"])
    assert not_listed.status_code == 422
    assert not_listed.json()["code"] == "benefit_not_applicable"
    stolen = await _redeem(client, other, answer["verification_id"], benefit["id"])
    assert stolen.status_code == 404
    assert stolen.json()["code"] == "verification_not_found"
    unknown = await _redeem(client, merchant, "vrf_nope", benefit["id"])
    assert unknown.status_code == 404

    mine = (await client.get("/v1/me/redemptions", headers=citizen.headers)).json()
    assert [(r["id"], r["benefit_id"], r["merchant_name"], r["order_ref"], r["status"]) for r in mine["items"]] == [
        (body["id"], benefit["id"], merchant.name, "T-001", "redeemed")]
    assert mine["next_cursor"] is None


async def test_a_quota_of_one_yields_one_redemption_among_200_concurrent(client, ctx, override_settings) -> None:
    """200 distinct verifications of the same citizen, each redeemed at once with its own key: the quota,
    not the per-verification rule, is what stops all but one."""
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario, rate_limit_per_second=100_000)
    citizen = await bound_citizen(client, ctx, name="许九")
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, quota_per_period=1, period="day",
                                  merchants=[merchant.client_id])
    n = 200
    with override_settings(benefit_codes_per_hour=10 * n):
        answers: list[dict[str, Any]] = []
        for start in range(0, n, 50):
            answers += await asyncio.gather(*(verification_for(client, merchant, citizen)
                                              for _ in range(min(50, n - start))))
    assert all(_ids(a) == [benefit["id"]] for a in answers)
    assert len({a["verification_id"] for a in answers}) == n

    results = await asyncio.gather(*(_redeem(client, merchant, a["verification_id"], benefit["id"])
                                     for a in answers))
    statuses = [r.status_code for r in results]
    assert statuses.count(201) == 1, sorted(set(statuses))
    refused = [r.json()["code"] for r in results if r.status_code != 201]
    assert set(refused) == {"benefit_quota_exhausted"}
    assert await Redemption.count().where(Redemption.verification_id.is_in(
        [a["verification_id"] for a in answers])) == 1
    usage = await BenefitUsage.select(BenefitUsage.used).where(BenefitUsage.benefit.public_id == benefit["id"])
    assert [u["used"] for u in usage] == [1]


async def test_cancel_restores_the_quota_exactly_once(client, ctx) -> None:
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario, rate_limit_per_second=10_000)
    other = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="何十")
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, quota_per_period=1, period="month",
                                  merchants=[merchant.client_id])
    answer = await verification_for(client, merchant, citizen)
    redeemed = (await _redeem(client, merchant, answer["verification_id"], benefit["id"])).json()
    assert redeemed["remaining_quota"] == 0
    assert _ids(await verification_for(client, merchant, citizen)) == []  # quota used

    path = f"/v1/benefits/redemptions/{redeemed['id']}/cancel"
    assert (await client.post(path, headers=other.headers)).status_code == 404
    results = await asyncio.gather(*(client.post(path, headers=merchant.headers) for _ in range(10)))
    assert {r.status_code for r in results} == {200}
    assert {(r.json()["status"], r.json()["remaining_quota"]) for r in results} == {("cancelled", 1)}
    usage = await BenefitUsage.select(BenefitUsage.used).where(BenefitUsage.benefit.public_id == benefit["id"])
    assert [u["used"] for u in usage] == [0]  # restored once, not ten times
    again = await client.post(path, headers=merchant.headers)
    assert again.json()["cancelled_at"] == results[0].json()["cancelled_at"]

    fresh = await verification_for(client, merchant, citizen)
    assert fresh["benefits"][0]["remaining_quota"] == 1
    assert (await _redeem(client, merchant, fresh["verification_id"], benefit["id"])).status_code == 201
    mine = (await client.get("/v1/me/redemptions", headers=citizen.headers, params={"limit": 1})).json()
    assert mine["items"][0]["status"] == "redeemed"
    rest = (await client.get("/v1/me/redemptions", headers=citizen.headers,
                             params={"limit": 1, "cursor": mine["next_cursor"]})).json()
    assert [(r["id"], r["status"]) for r in rest["items"]] == [(redeemed["id"], "cancelled")]
    assert rest["next_cursor"] is None
    bad = await client.get("/v1/me/redemptions", headers=citizen.headers, params={"cursor": "%%%"})
    assert bad.status_code == 422


async def test_a_quota_of_five_yields_five_among_40_concurrent(client, ctx) -> None:
    """A quota of 5 across 40 concurrent redemptions: exactly 5 succeed and the counter says 5."""
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario, rate_limit_per_second=100_000)
    citizen = await bound_citizen(client, ctx, name="吕十一")
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, quota_per_period=5, period="week",
                                  merchants=[merchant.client_id])
    answers = await asyncio.gather(*(verification_for(client, merchant, citizen) for _ in range(40)))
    results = await asyncio.gather(*(_redeem(client, merchant, a["verification_id"], benefit["id"])
                                     for a in answers))
    assert [r.status_code for r in results].count(201) == 5
    assert sorted(r.json()["remaining_quota"] for r in results if r.status_code == 201) == [0, 1, 2, 3, 4]
    usage = await BenefitUsage.select(BenefitUsage.used).where(BenefitUsage.benefit.public_id == benefit["id"])
    assert [u["used"] for u in usage] == [5]


async def test_redemption_stops_at_once_when_the_scenario_pauses_the_window_ends_or_the_merchant_leaves(
        client, ctx) -> None:
    """A verification is good for minutes; what the operator changes meanwhile counts at redemption."""
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario)
    other = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="孔十二")
    now = datetime.now(UTC)
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, quota_per_period=1, period="day",
                                  valid_from=(now - timedelta(days=2)).isoformat(),
                                  merchants=[merchant.client_id])
    answer = await verification_for(client, merchant, citizen)
    assert _ids(answer) == [benefit["id"]]
    path = f"/v1/admin/benefits/{benefit['id']}"

    await client.patch(f"/v1/admin/scenarios/{scenario}", headers=officer.headers, json={"status": "paused"})
    paused = await _redeem(client, merchant, answer["verification_id"], benefit["id"])
    assert (paused.status_code, paused.json()["code"]) == (409, "scenario_not_active")
    await client.patch(f"/v1/admin/scenarios/{scenario}", headers=officer.headers, json={"status": "active"})

    ended = await client.patch(path, headers=officer.headers,
                               json={"valid_until": (now - timedelta(days=1)).isoformat()})
    assert ended.status_code == 200, ended.text
    late = await _redeem(client, merchant, answer["verification_id"], benefit["id"])
    assert (late.status_code, late.json()["code"]) == (409, "benefit_not_valid_now")
    await client.patch(path, headers=officer.headers, json={"valid_until": None})

    await client.patch(path, headers=officer.headers, json={"merchants": [other.client_id]})
    left = await _redeem(client, merchant, answer["verification_id"], benefit["id"])
    assert (left.status_code, left.json()["code"]) == (422, "benefit_not_applicable")
    await client.patch(path, headers=officer.headers, json={"merchants": [merchant.client_id]})

    # None of the refusals spent the quota or the verification.
    assert await Redemption.count().where(Redemption.verification_id == answer["verification_id"]) == 0
    done = await _redeem(client, merchant, answer["verification_id"], benefit["id"])
    assert done.status_code == 201, done.text
    assert done.json()["remaining_quota"] == 0


async def test_a_merchant_just_added_elsewhere_redeems_on_a_worker_with_an_older_catalog(
        client, ctx, monkeypatch) -> None:
    """Verified where the new participating list is known, redeemed where the cache is seconds older."""
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario)
    other = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="金十六")
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, merchants=[other.client_id])
    read_before = time.time()
    older = await CATALOG.get()
    joined = await client.patch(f"/v1/admin/benefits/{benefit['id']}", headers=officer.headers,
                                json={"merchants": [other.client_id, merchant.client_id]})
    assert joined.status_code == 200, joined.text
    answer = await verification_for(client, merchant, citizen)
    assert _ids(answer) == [benefit["id"]]
    monkeypatch.setattr(CATALOG, "_snapshot", older)  # what another worker still holds
    monkeypatch.setattr(CATALOG, "_read_at", time.monotonic())  # within the bound,
    monkeypatch.setattr(CATALOG, "_read_at_wall", read_before)  # but read before the verification was made
    r = await _redeem(client, merchant, answer["verification_id"], benefit["id"])
    assert r.status_code == 201, r.text


# ---------------------------------------------------------------- bad input is a 4xx, never a 500


async def test_far_off_validity_dates_are_refused_and_never_break_my_benefits(client, ctx) -> None:
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    citizen = await bound_citizen(client, ctx, name="曹十三")
    for body in ({"valid_from": "9999-12-31T20:00:00Z"}, {"valid_from": "0001-01-01T00:00:00Z"},
                 {"valid_until": "9999-12-31T23:59:59Z"}):
        r = await client.post("/v1/admin/benefits", headers=officer.headers, json={
            "scenario": scenario, "name": "远期", "kind": "percent_discount", "value": 5, **body})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_benefit_rule"), r.text
        assert r.json()["errors"][0]["field"] == next(iter(body))
    created = await admin_benefit(client, officer=officer, scenario=scenario)
    patched = await client.patch(f"/v1/admin/benefits/{created['id']}", headers=officer.headers,
                                 json={"valid_from": "9999-12-31T20:00:00+00:00"})
    assert (patched.status_code, patched.json()["code"]) == (422, "invalid_benefit_rule")
    mine = await client.get("/v1/me/benefits", headers=citizen.headers)
    assert mine.status_code == 200, mine.text


async def test_ids_cursors_and_control_characters_are_refused_as_4xx(client, ctx) -> None:
    """What PostgreSQL refuses (a NUL byte) or `datetime` cannot hold never reaches it as a 500."""
    officer = await operator_session(client)
    scenario = await _own_scenario(client, officer)
    merchant = await merchant_session(client, scenario)
    citizen = await bound_citizen(client, ctx, name="严十四")
    benefit = await admin_benefit(client, officer=officer, scenario=scenario)

    def rule(**changes: Any) -> dict[str, Any]:
        return {"scenario": scenario, "name": "规则", "kind": "percent_discount", "value": 5, **changes}

    checks: list[tuple[Any, int, str]] = [
        (await client.post("/v1/benefits/redemptions/rdm%00x/cancel", headers=merchant.headers),
         404, "redemption_not_found"),
        (await client.patch("/v1/admin/benefits/bnf%00x", headers=officer.headers, json={"value": 3}),
         404, "benefit_not_found"),
        (await client.patch("/v1/admin/scenarios/t%00x", headers=officer.headers, json={"name": "y"}),
         404, "scenario_not_found"),
        (await client.post("/v1/admin/benefits", headers=officer.headers, json=rule(name="x\u0000y")),
         422, "validation_failed"),
        (await client.post("/v1/admin/benefits", headers=officer.headers, json=rule(description="a\u0000")),
         422, "validation_failed"),
        (await client.post("/v1/admin/benefits", headers=officer.headers, json=rule(merchants=["m\u0000"])),
         422, "validation_failed"),
        (await client.patch(f"/v1/admin/benefits/{benefit['id']}", headers=officer.headers,
                            json={"name": "\u0000"}), 422, "validation_failed"),
        (await client.post("/v1/admin/scenarios", headers=officer.headers,
                           json={"code": f"t{secrets.token_hex(4)}", "name": "场景\u0000"}), 422, "validation_failed"),
        (await client.post("/v1/benefits/redeem", json={"verification_id": "vrf\u0000", "benefit_id": benefit["id"]},
                           headers={**merchant.headers, "Idempotency-Key": secrets.token_hex(8)}),
         422, "validation_failed"),
    ]
    for raw in ("0001-01-01T00:00:00+14:00|rdm_x", "9999-12-31T23:59:59-14:00|rdm_x", "2026-01-01T00:00:00|rdm_x",
                "2026-01-01T00:00:00+00:00|rdm\u0000"):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode()
        checks.append((await client.get("/v1/me/redemptions", headers=citizen.headers, params={"cursor": cursor}),
                       422, "invalid_cursor"))
    for response, status, code in checks:
        assert (response.status_code, response.json()["code"]) == (status, code), (response.url, response.text)
    listed = await client.get("/v1/admin/benefits", headers=officer.headers, params={"scenario": "t\u0000"})
    assert (listed.status_code, listed.json()) == (200, [])
    # Tabs and line breaks stay allowed in a description.
    assert (await admin_benefit(client, officer=officer, scenario=scenario, description="第一行\n第二行\t完"))[
        "description"] == "第一行\n第二行\t完"


async def test_codes_never_live_longer_than_60_seconds_whatever_the_settings(client, ctx, override_settings) -> None:
    citizen = await bound_citizen(client, ctx, name="华十五")
    for configured, expected in ((600, 60), (0, 1), (-5, 1), (30, 30)):
        with override_settings(benefit_code_ttl_seconds=configured):
            r = await client.post("/v1/me/benefit-codes", headers=citizen.headers)
        assert r.status_code == 201, r.text
        assert r.json()["ttl_seconds"] == expected
        left = datetime.fromisoformat(r.json()["expires_at"]) - datetime.now(UTC)
        assert left <= timedelta(seconds=expected)


# ---------------------------------------------------------------- what merchants can see


def _resolve(spec: dict[str, Any], node: Any, seen: set[str]) -> set[str]:
    """Every property name reachable from `node` in the OpenAPI document (following $refs)."""
    names: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return names
            seen.add(ref)
            target: Any = spec
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(spec, target, seen)
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names |= set(value)
            names |= _resolve(spec, value, seen)
    elif isinstance(node, list):
        for item in node:
            names |= _resolve(spec, item, seen)
    return names


async def test_no_merchant_facing_response_schema_carries_credit_or_identity_fields(client) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    merchant_paths = {p: ops for p, ops in spec["paths"].items()
                      if p.startswith(("/v1/benefits/", "/v1/credit-orders", "/v1/federation/"))}
    assert "/v1/benefits/verify" in merchant_paths
    assert "/v1/benefits/redeem" in merchant_paths
    checked = 0
    for path, operations in merchant_paths.items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                names = _resolve(spec, response, set())
                leaked = names & FORBIDDEN_PROPERTIES
                assert not leaked, f"{method.upper()} {path} {status} returns {sorted(leaked)}"
                checked += 1
    assert checked >= 3
