"""Credit checks (联合奖惩核查) through HTTP: lists kept in step with ingested records, measures by business
type, feedback rules, the subject's access log, and the operators' list and measure catalogs."""

from __future__ import annotations

import pytest

from credit.checks import DEFAULT_MEASURES, seed_default_measures
from credit.tables import CreditCheck, LedgerEntry
from tests.factories import (
    bound_citizen,
    id_number,
    operator_session,
    partner_session,
    push_records,
    record_row,
    registry_enterprise,
    registry_person,
)


@pytest.fixture(autouse=True)
async def _measures(client) -> None:
    await seed_default_measures()


def _person(p) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {"kind": "person", "id_number": p.id_number, "name": p.name}


async def _check(client, department, subject: dict, business_type: str = "government_procurement"):  # type: ignore[no-untyped-def,type-arg]
    r = await client.post("/v1/credit-checks", headers=department.headers,
                          json={"subject": subject, "business_type": business_type})
    assert r.status_code == 201, r.text
    return r


async def test_seeding_is_idempotent(client) -> None:
    assert await seed_default_measures() == 0
    officer = await operator_session(client, role="auditor")
    codes = {m["code"] for m in (await client.get("/v1/admin/measures", headers=officer.headers)).json()}
    assert {m.code for m in DEFAULT_MEASURES} <= codes


async def test_dishonest_executee_from_ingest_is_listed_with_measures(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="蒋一")
    _, _, court = await partner_session(client, kind="data_source", name="嘉兴市中级人民法院")
    _, _, department = await partner_session(client, kind="government", name="嘉兴市财政局")
    row = record_row(citizen.person, source_ref="(2025)浙0402执100号", category="dishonest_executee",
                     title="失信被执行人（拒不履行生效判决）")
    assert (await push_records(client, court, [row])).json()["summary"]["accepted"] == 1

    r = await _check(client, department, _person(citizen.person))
    body = r.json()
    assert set(body) == {"id", "subject_kind", "business_type", "listed", "lists", "measures", "checked_at"}
    assert body["listed"] is True
    assert [(x["list_kind"], x["list_code"], x["list_name"]) for x in body["lists"]] == [
        ("black", "dishonest_executee", "失信被执行人名单")]
    codes = [m["code"] for m in body["measures"]]
    assert "restrict_government_procurement" in codes
    assert "restrict_honours" in codes  # no business types: applies to every check
    assert "restrict_high_consumption" not in codes
    assert codes.index("restrict_government_procurement") < codes.index("restrict_honours")  # mandatory first
    procurement = next(m for m in body["measures"] if m["code"] == "restrict_government_procurement")
    assert procurement["kind"] == "punishment"
    assert procurement["mandatory"] is True
    assert procurement["basis"]
    assert citizen.person.id_number not in r.text

    consumption = (await _check(client, department, _person(citizen.person), "high_consumption")).json()
    assert "restrict_high_consumption" in [m["code"] for m in consumption["measures"]]

    log = (await client.get("/v1/me/access-log", headers=citizen.headers)).json()["items"]
    assert log[0]["action"] == "credit.check"
    assert log[0]["actor_name"] == "嘉兴市财政局"
    assert log[0]["outcome"] == "allowed"
    assert log[0]["fields"] == ["lists", "measures"]
    assert log[0]["purpose"] == "high_consumption"
    assert [e["purpose"] for e in log if e["action"] == "credit.check"] == ["high_consumption",
                                                                            "government_procurement"]

    # Sending the record again keeps the subject listed once; withdrawing it takes them off the list.
    await push_records(client, court, [row])
    officer = await operator_session(client, role="officer")
    entries = (await client.get("/v1/admin/lists", headers=officer.headers,
                                params={"list_code": "dishonest_executee"})).json()["items"]
    mine = [e for e in entries if e["subject_id"] == citizen.person.public_id]
    assert len(mine) == 1
    assert mine[0]["subject_name"] == "*一"
    assert citizen.person.id_number not in str(entries)
    await push_records(client, court, [{**row, "status": "withdrawn"}])
    cleared = (await _check(client, department, _person(citizen.person))).json()
    assert (cleared["listed"], cleared["lists"], cleared["measures"]) == (False, [], [])


async def test_clean_and_unknown_subjects_get_the_same_not_listed_answer(client, ctx) -> None:
    clean = await registry_person(ctx, name="沈二")
    _, _, department = await partner_session(client, kind="government")
    known = (await _check(client, department, _person(clean))).json()
    unknown = (await _check(client, department, {"kind": "person", "id_number": id_number(birth="19900303"),
                                                 "name": "无此人"})).json()
    wrong_name = (await _check(client, department, {**_person(clean), "name": "沈三"})).json()
    enterprise = (await _check(client, department, {"kind": "enterprise", "uscc": (await registry_enterprise(ctx)).uscc}
                               )).json()
    for answer in (known, unknown, wrong_name, enterprise):
        assert answer["listed"] is False
        assert answer["lists"] == []
        assert answer["measures"] == []
    assert set(known) == set(unknown)
    assert await CreditCheck.exists().where(CreditCheck.public_id == unknown["id"])


async def test_every_check_is_ledgered_whether_or_not_the_registry_knows_the_subject(client, ctx) -> None:
    """The same work for a registered and an unknown subject (timing must not tell membership): each check
    writes one ledger entry; an unknown number is recorded under a keyed pseudonym, never in the clear."""
    clean = await registry_person(ctx, name="沈五")
    department_id, _, department = await partner_session(client, kind="government")
    unknown_number = id_number(birth="19910404")
    unknown = {"kind": "person", "id_number": unknown_number, "name": "无此人"}
    for subject in (_person(clean), unknown, unknown, {**_person(clean), "name": "沈六"},
                    {"kind": "enterprise", "uscc": "91330402MA2B8TQ532"}):
        await _check(client, department, subject)

    entries = await LedgerEntry.select(LedgerEntry.subject_kind, LedgerEntry.subject_id, LedgerEntry.action,
                                       LedgerEntry.outcome).where(
        LedgerEntry.actor_id == department_id).order_by(LedgerEntry.seq)
    assert len(entries) == 5
    assert {(e["action"], e["outcome"]) for e in entries} == {("credit.check", "allowed")}
    ids = [e["subject_id"] for e in entries]
    assert ids[0] == clean.public_id
    assert ids[1] == ids[2] != ids[3]  # the same unknown number, the same pseudonym
    assert all(i.startswith("unreg_") and len(i) == 32 for i in ids[1:])
    assert entries[4]["subject_kind"] == "enterprise"
    assert unknown_number not in str(entries)


async def test_feedback_rules(client, ctx) -> None:
    person = await registry_person(ctx, name="韩四")
    _, _, court = await partner_session(client, kind="data_source")
    _, _, department = await partner_session(client, kind="government")
    _, _, other_department = await partner_session(client, kind="government")
    await push_records(client, court, [record_row(person, category="dishonest_executee", title="失信被执行人")])
    check = (await _check(client, department, _person(person), "permit_issue")).json()
    assert "strict_permit_review" in [m["code"] for m in check["measures"]]
    url = f"/v1/credit-checks/{check['id']}/feedback"

    other = await client.post(url, headers=other_department.headers, json={"measure_code": "strict_permit_review"})
    assert other.status_code == 404
    assert other.json()["code"] == "credit_check_not_found"
    missing = await client.post("/v1/credit-checks/chk_nothing/feedback", headers=department.headers,
                                json={"measure_code": "strict_permit_review"})
    assert missing.json()["code"] == "credit_check_not_found"
    not_returned = await client.post(url, headers=department.headers,
                                     json={"measure_code": "restrict_government_procurement"})
    assert not_returned.status_code == 422
    assert not_returned.json()["code"] == "measure_not_returned"

    given = await client.post(url, headers=department.headers,
                              json={"measure_code": "strict_permit_review", "note": "已暂缓办理许可"})
    assert given.status_code == 200, given.text
    assert given.json()["measure_code"] == "strict_permit_review"
    assert given.json()["note"] == "已暂缓办理许可"
    twice = await client.post(url, headers=department.headers, json={"measure_code": "strict_permit_review"})
    assert twice.status_code == 409
    assert twice.json()["code"] == "feedback_already_given"
    stored = await CreditCheck.select(CreditCheck.applied_measure).where(CreditCheck.public_id == check["id"]).first()
    assert stored == {"applied_measure": "strict_permit_review"}


async def test_bad_check_requests(client, ctx) -> None:
    person = await registry_person(ctx, name="杨五")
    _, _, department = await partner_session(client, kind="government")
    _, _, bank = await partner_session(client, kind="bank")

    async def post(body: dict, headers: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
        return await client.post("/v1/credit-checks", headers=headers or department.headers, json=body)

    r = await post({"subject": _person(person), "business_type": "fishing_licence"})
    assert (r.status_code, r.json()["code"]) == (422, "unknown_business_type")
    bad = person.id_number[:-1] + ("0" if person.id_number[-1] != "0" else "1")
    r = await post({"subject": {**_person(person), "id_number": bad}, "business_type": "permit_issue"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_id_number")
    assert bad not in r.text
    r = await post({"subject": {"kind": "enterprise", "uscc": "91330402MA2ABCDEF0"}, "business_type": "permit_issue"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_uscc")
    r = await post({"subject": _person(person), "business_type": "permit_issue", "extra": True})
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
    r = await post({"subject": _person(person), "business_type": "permit_issue"}, headers=bank.headers)
    assert (r.status_code, r.json()["code"]) == (403, "insufficient_scope")
    types = await client.get("/v1/credit-checks/business-types", headers=department.headers)
    assert {"code": "permit_issue", "name": "行政许可审批"} in types.json()


async def test_operators_manage_lists_and_red_list_rewards(client, ctx) -> None:
    enterprise = await registry_enterprise(ctx, name="嘉兴诚信示范有限公司")
    person = await registry_person(ctx, name="朱六")
    officer = await operator_session(client, role="officer")
    auditor = await operator_session(client, role="auditor")
    _, _, department = await partner_session(client, kind="government")

    listed = await client.post("/v1/admin/lists", headers=officer.headers, json={
        "list_code": "credit_red_list", "subject": {"kind": "enterprise", "uscc": enterprise.uscc},
        "reason": "2025年度诚信典型"})
    assert listed.status_code == 201, listed.text
    entry = listed.json()
    assert (entry["list_kind"], entry["subject_id"], entry["subject_name"]) == ("red", enterprise.public_id,
                                                                                "嘉兴诚信示范有限公司")
    assert entry["source"].startswith("operator:")
    again = await client.post("/v1/admin/lists", headers=officer.headers, json={
        "list_code": "credit_red_list", "subject": {"kind": "enterprise", "uscc": enterprise.uscc}, "reason": "重复"})
    assert (again.status_code, again.json()["code"]) == (409, "already_listed")

    answer = (await _check(client, department, {"kind": "enterprise", "uscc": enterprise.uscc}, "permit_issue")).json()
    assert answer["listed"] is True
    assert {m["code"]: m["kind"] for m in answer["measures"]} == {"green_channel": "reward",
                                                                  "tolerance_acceptance": "reward"}

    for body, status, code in (
        ({"list_code": "nobody_list", "subject": {"kind": "enterprise", "uscc": enterprise.uscc}, "reason": "x"},
         422, "unknown_list"),
        ({"list_code": "major_tax_violation", "subject": {**_person(person), "name": "朱七"}, "reason": "x"},
         422, "subject_not_found"),
    ):
        r = await client.post("/v1/admin/lists", headers=officer.headers, json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    by_auditor = await client.post("/v1/admin/lists", headers=auditor.headers, json={
        "list_code": "major_tax_violation", "subject": _person(person), "reason": "x"})
    assert (by_auditor.status_code, by_auditor.json()["code"]) == (403, "insufficient_role")

    delisted = await client.post(f"/v1/admin/lists/{entry['id']}/delist", headers=officer.headers,
                                 json={"reason": "称号到期"})
    assert delisted.status_code == 200, delisted.text
    assert delisted.json()["delisted_at"]
    assert "称号到期" in delisted.json()["reason"]
    twice = await client.post(f"/v1/admin/lists/{entry['id']}/delist", headers=officer.headers)
    assert (twice.status_code, twice.json()["code"]) == (409, "already_delisted")
    unknown = await client.post("/v1/admin/lists/lst_nothing/delist", headers=officer.headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "list_entry_not_found")
    after = (await _check(client, department, {"kind": "enterprise", "uscc": enterprise.uscc}, "permit_issue")).json()
    assert after["listed"] is False
    history = (await client.get("/v1/admin/lists", headers=auditor.headers,
                                params={"active": "false", "list_code": "credit_red_list"})).json()["items"]
    assert entry["id"] in [e["id"] for e in history]


async def test_operators_manage_measures(client, ctx) -> None:
    officer = await operator_session(client, role="officer")
    auditor = await operator_session(client, role="auditor")
    person = await registry_person(ctx, name="秦八")
    _, _, court = await partner_session(client, kind="data_source")
    _, _, department = await partner_session(client, kind="government")
    await push_records(client, court, [record_row(person, category="dishonest_executee", title="失信被执行人")])

    body = {"code": "restrict_bidding_agency", "name": "限制担任招标代理机构负责人", "kind": "punishment",
            "list_code": "dishonest_executee", "mandatory": False, "business_types": ["bidding"],
            "basis": "发改财金〔2016〕141号"}
    created = await client.post("/v1/admin/measures", headers=officer.headers, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["business_types"] == ["bidding"]
    assert created.json()["list_name"] == "失信被执行人名单"
    for change, code, status in (({}, "measure_exists", 409),
                                 ({"code": "reward_for_black", "kind": "reward"}, "measure_kind_mismatch", 422),
                                 ({"code": "on_no_list", "list_code": "nobody_list"}, "unknown_list", 422),
                                 ({"code": "odd_business", "business_types": ["fishing"]}, "unknown_business_type",
                                  422)):
        r = await client.post("/v1/admin/measures", headers=officer.headers, json={**body, **change})
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    denied = await client.post("/v1/admin/measures", headers=auditor.headers, json={**body, "code": "by_auditor"})
    assert denied.status_code == 403

    codes = [m["code"] for m in (await _check(client, department, _person(person), "bidding")).json()["measures"]]
    assert "restrict_bidding_agency" in codes

    patched = await client.patch("/v1/admin/measures/restrict_bidding_agency", headers=officer.headers,
                                 json={"mandatory": True, "status": "retired"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["mandatory"], patched.json()["status"]) == (True, "retired")
    codes = [m["code"] for m in (await _check(client, department, _person(person), "bidding")).json()["measures"]]
    assert "restrict_bidding_agency" not in codes
    retired = (await client.get("/v1/admin/measures", headers=auditor.headers, params={"status": "retired"})).json()
    assert "restrict_bidding_agency" in [m["code"] for m in retired]

    empty = await client.patch("/v1/admin/measures/restrict_bidding_agency", headers=officer.headers, json={})
    assert (empty.status_code, empty.json()["code"]) == (422, "empty_patch")
    missing = await client.patch("/v1/admin/measures/no_such_measure", headers=officer.headers, json={"name": "x"})
    assert (missing.status_code, missing.json()["code"]) == (404, "measure_not_found")
    fixed = await client.patch("/v1/admin/measures/restrict_bidding_agency", headers=officer.headers,
                               json={"kind": "reward"})
    assert (fixed.status_code, fixed.json()["code"]) == (422, "validation_failed")
