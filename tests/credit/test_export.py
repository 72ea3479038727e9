"""The subject's data export: everything about them, unmasked for them, nothing about anyone else."""

from __future__ import annotations

from typing import Any

from api.context import AppContext
from credit import export
from credit.tables import Person
from tests.factories import (
    add_record,
    authorization_for,
    bound_citizen,
    citizen_login,
    operator_session,
    partner_session,
)

SECTIONS = ("score_history", "records", "authorizations", "access_log", "objections", "repairs")


async def _export(client: Any, citizen: Any) -> dict[str, Any]:
    r = await client.get("/v1/me/export", headers=citizen.headers)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return dict(r.json())


async def test_export_holds_every_section_of_the_subject_and_nothing_else(client, ctx) -> None:
    alice = await bound_citizen(client, ctx, name="施一")
    bob = await bound_citizen(client, ctx, name="施二")
    penalty = await add_record(ctx, alice.person, category="administrative_penalty", days_ago=30)
    arrears = await add_record(ctx, alice.person, category="tax_arrears", days_ago=120)
    volunteer = await add_record(ctx, alice.person, category="volunteer_service")
    withdrawn = await add_record(ctx, alice.person, status="withdrawn")
    bobs_record = await add_record(ctx, bob.person, days_ago=120)

    _, _, bank = await partner_session(client, kind="bank", name="施氏测试银行")
    authorization_id = await authorization_for(client, bank, alice)
    queried = await client.post("/v1/scores/query", headers=bank.headers, json={"authorization_id": authorization_id})
    assert queried.status_code == 200, queried.text
    objection = (await client.post("/v1/me/objections", headers=alice.headers,
                                   json={"record_id": penalty, "reason": "非本人行为"})).json()
    repair = (await client.post("/v1/me/repairs", headers=alice.headers,
                                json={"record_id": arrears, "statement": "已补缴"})).json()
    bobs_objection = (await client.post("/v1/me/objections", headers=bob.headers,
                                        json={"record_id": bobs_record, "reason": "有误"})).json()
    bobs_repair = (await client.post("/v1/me/repairs", headers=bob.headers,
                                     json={"record_id": bobs_record, "statement": "x"})).json()
    assert bobs_repair["code"] == "record_under_objection"  # Bob's record is under objection

    body = await _export(client, alice)
    assert body["format"] == export.EXPORT_FORMAT
    assert body["exported_at"]
    assert body["section_limit"] == export.SECTION_LIMIT

    profile = body["profile"]
    assert profile["id_number"] == alice.person.id_number  # unmasked: the caller is the subject
    assert profile["person_id"] == alice.person.public_id
    assert (profile["name"], profile["gender"], profile["birth_date"]) == ("施一", "M", "1990-01-01")
    assert profile["region_code"] == alice.person.id_number[:6]
    assert body["account"]["phone"] == alice.session.phone
    assert body["account"]["bound_at"]

    for section in SECTIONS:
        assert body[section]["truncated"] is False, section
    records = {r["id"]: r for r in body["records"]["items"]}
    assert set(records) == {penalty, arrears, volunteer, withdrawn}  # every status
    assert records[penalty]["status"] == "objected"
    assert records[withdrawn]["counts_towards_score"] is False
    assert [a["id"] for a in body["authorizations"]["items"]] == [authorization_id]
    assert body["authorizations"]["items"][0]["partner"]["name"] == "施氏测试银行"
    log = body["access_log"]["items"]
    assert [e["seq"] for e in log] == [queried.json()["ledger_seq"]]
    assert log[0]["actor_name"] == "施氏测试银行"
    assert [o["id"] for o in body["objections"]["items"]] == [objection["id"]]
    assert [r["id"] for r in body["repairs"]["items"]] == [repair["id"]]
    me = await client.get("/v1/me/score", headers=alice.headers)
    assert body["score"]["total"] == me.json()["total"]
    assert body["score"]["objected_records"] == 1
    assert body["score_history"]["items"]
    assert body["score_history"]["items"][0]["total"] == body["score"]["total"]

    text = str(body)
    for foreign in (bob.person.id_number, bob.person.public_id, bob.session.phone, bobs_record,
                    bobs_objection["id"]):
        assert foreign not in text

    # Bob's export is his own, and shows his id number, not Alice's.
    bobs = await _export(client, bob)
    assert bobs["profile"]["id_number"] == bob.person.id_number
    assert alice.person.id_number not in str(bobs)
    assert [o["id"] for o in bobs["objections"]["items"]] == [bobs_objection["id"]]


async def test_export_is_for_bound_citizens_only(client, ctx) -> None:
    assert (await client.get("/v1/me/export")).status_code == 401
    officer = await operator_session(client, role="officer")
    r = await client.get("/v1/me/export", headers=officer.headers)
    assert r.status_code == 403
    assert r.json()["code"] == "wrong_principal"
    _, _, bank = await partner_session(client, kind="bank")
    assert (await client.get("/v1/me/export", headers=bank.headers)).status_code == 403
    unbound = await citizen_login(client)
    r = await client.get("/v1/me/export", headers=unbound.headers)
    assert r.status_code == 403
    assert r.json()["code"] == "identity_not_bound"


async def test_exports_are_rate_limited_per_account(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="施三")
    for _ in range(export.EXPORTS_PER_HOUR):
        await _export(client, citizen)
    r = await client.get("/v1/me/export", headers=citizen.headers)
    assert r.status_code == 429
    assert r.json()["code"] == "export_rate_limited"
    assert int(r.headers["retry-after"]) > 0


async def test_sections_are_read_in_pages_and_capped(client, ctx: AppContext) -> None:
    citizen = await bound_citizen(client, ctx, name="施四")
    records = [await add_record(ctx, citizen.person, days_ago=days) for days in (1, 2, 3)]
    row = await Person.select(Person._meta.primary_key).where(Person.public_id == citizen.person.public_id).first()
    assert row is not None

    async def run(limit: int) -> Any:
        return await export.export_person(store=ctx.store, cipher=ctx.cipher, person_id=row["id"],
                                          account_id=f"acct-cap-{limit}", account_phone=citizen.session.phone,
                                          bound_at=None, section_limit=limit, page_size=1)

    capped = await run(2)
    assert [r.id for r in capped.records.items] == records[:2]  # newest first
    assert capped.records.truncated is True
    assert capped.objections.items == []
    assert capped.objections.truncated is False
    whole = await run(3)
    assert [r.id for r in whole.records.items] == records
    assert whole.records.truncated is False
