"""Enterprise binding, members and the enterprise's consent, through HTTP: only the legal representative
binds, the owner manages operators, a member of one enterprise can never act for another, data sources
push enterprise records, and members decide authorizations asked of the enterprise."""

from __future__ import annotations

import asyncio

from credit.tables import Authorization, Enterprise, OutboxEvent
from lending.tables import EnterpriseMember
from tests.factories import bound_citizen, partner_session, record_row, registry_person, uscc_number
from tests.lending_factories import (
    add_operator,
    bank_session,
    data_source,
    enterprise_authorization,
    enterprise_row,
    owned_enterprise,
    push_enterprise_records,
    registry_enterprise_of,
)

PROBLEM = "application/problem+json"


def _problem(r, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == code, r.text


async def test_the_legal_representative_binds_as_owner_idempotently(client, ctx) -> None:
    owner = await bound_citizen(client, ctx, name="王建国")
    enterprise = await registry_enterprise_of(ctx, owner, name="嘉兴绿禾农业科技有限公司", industry="A")

    first = await client.post("/v1/enterprises", headers=owner.headers, json={"uscc": enterprise.uscc.lower()})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"] == enterprise.public_id
    assert body["uscc"] == enterprise.uscc  # members see it in full
    assert (body["name"], body["industry"], body["role"]) == ("嘉兴绿禾农业科技有限公司", "A", "owner")
    assert "enterprise_id" not in body

    again = await client.post("/v1/enterprises", headers=owner.headers, json={"uscc": enterprise.uscc})
    assert again.status_code == 200, again.text
    assert again.json() == body

    mine = await client.get("/v1/enterprises", headers=owner.headers)
    assert mine.status_code == 200
    assert [e["id"] for e in mine.json()["items"]] == [enterprise.public_id]


async def test_concurrent_binds_make_one_membership(client, ctx) -> None:
    owner = await bound_citizen(client, ctx, name="周并发")
    enterprise = await registry_enterprise_of(ctx, owner)
    answers = await asyncio.gather(*(client.post("/v1/enterprises", headers=owner.headers,
                                                 json={"uscc": enterprise.uscc}) for _ in range(12)))
    assert sorted(r.status_code for r in answers) == [200] * 11 + [201], [r.text for r in answers]
    rows = await EnterpriseMember.select(EnterpriseMember.role).where(
        EnterpriseMember.account_id == (await client.get("/v1/me", headers=owner.headers)).json()["account_id"])
    assert [r["role"] for r in rows] == ["owner"]


async def test_only_the_legal_representative_may_bind(client, ctx) -> None:
    owner = await bound_citizen(client, ctx, name="吴法人")
    stranger = await bound_citizen(client, ctx, name="郑路人")
    enterprise = await registry_enterprise_of(ctx, owner)

    _problem(await client.post("/v1/enterprises", headers=stranger.headers, json={"uscc": enterprise.uscc}),
             403, "not_legal_representative")
    _problem(await client.post("/v1/enterprises", headers=stranger.headers, json={"uscc": uscc_number()}),
             404, "enterprise_not_found")
    _problem(await client.post("/v1/enterprises", headers=stranger.headers,
                               json={"uscc": enterprise.uscc[:-1] + ("0" if enterprise.uscc[-1] != "0" else "1")}),
             422, "invalid_uscc")
    r = await client.post("/v1/enterprises", headers=stranger.headers, json={"uscc": "9133"})
    assert r.status_code in (400, 422), r.text
    r = await client.post("/v1/enterprises", headers=stranger.headers, json={"uscc": enterprise.uscc, "x": 1})
    assert r.status_code in (400, 422), r.text
    assert (await client.get("/v1/enterprises", headers=stranger.headers)).json() == {"items": []}

    from tests.factories import citizen_login

    unbound = await citizen_login(client)
    _problem(await client.post("/v1/enterprises", headers=unbound.headers, json={"uscc": enterprise.uscc}),
             403, "identity_not_bound")
    _, _, bank = await partner_session(client, kind="bank")
    _problem(await client.post("/v1/enterprises", headers=bank.headers, json={"uscc": enterprise.uscc}),
             403, "wrong_principal")


async def test_the_owner_manages_operators(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="冯老板")
    operator, member_id = await add_operator(client, ctx, owned, name="陈小经")
    assert member_id.startswith("mem_")

    listed = await client.get(f"/v1/enterprises/{owned.uscc}/members", headers=operator.headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(m["role"], m["name"]) for m in items] == [("owner", "*老板"), ("operator", "*小经")]
    assert [m.get("is_me", False) for m in items] == [False, True]
    assert all(owned.owner.person.id_number not in str(m) and "person" not in m for m in items)

    # Adding the same person again changes nothing.
    again = await client.post(f"/v1/enterprises/{owned.uscc}/members", headers=owned.headers,
                              json={"name": "陈小经", "id_number": operator.person.id_number})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == member_id

    mine = (await client.get("/v1/enterprises", headers=operator.headers)).json()["items"]
    assert [(e["id"], e["role"]) for e in mine] == [(owned.public_id, "operator")]

    # Operators cannot manage members.
    third = await bound_citizen(client, ctx, name="褚三")
    _problem(await client.post(f"/v1/enterprises/{owned.uscc}/members", headers=operator.headers,
                               json={"name": "褚三", "id_number": third.person.id_number}), 403, "owner_only")
    owner_id = items[0]["id"]
    _problem(await client.delete(f"/v1/enterprises/{owned.uscc}/members/{owner_id}", headers=operator.headers),
             403, "owner_only")
    _problem(await client.delete(f"/v1/enterprises/{owned.uscc}/members/{owner_id}", headers=owned.headers),
             422, "cannot_remove_owner")

    # Only registry persons (name and number matching) with a bound account can be added.
    unbound = await registry_person(ctx, name="卫未绑")
    _problem(await client.post(f"/v1/enterprises/{owned.uscc}/members", headers=owned.headers,
                               json={"name": "卫未绑", "id_number": unbound.id_number}), 422, "person_not_bound")
    _problem(await client.post(f"/v1/enterprises/{owned.uscc}/members", headers=owned.headers,
                               json={"name": "错名字", "id_number": third.person.id_number}), 422, "person_not_found")

    removed = await client.delete(f"/v1/enterprises/{owned.uscc}/members/{member_id}", headers=owned.headers)
    assert removed.status_code == 200, removed.text
    assert (removed.json()["status"], removed.json()["id"]) == ("removed", member_id)
    _problem(await client.delete(f"/v1/enterprises/{owned.uscc}/members/{member_id}", headers=owned.headers),
             404, "member_not_found")
    # A removed operator has lost the enterprise at once.
    _problem(await client.get(f"/v1/enterprises/{owned.uscc}/members", headers=operator.headers),
             404, "enterprise_not_found")
    _problem(await client.get(f"/v1/enterprises/{owned.uscc}/portrait", headers=operator.headers),
             404, "enterprise_not_found")
    assert (await client.get("/v1/enterprises", headers=operator.headers)).json() == {"items": []}

    # ...and may be added back.
    back = await client.post(f"/v1/enterprises/{owned.uscc}/members", headers=owned.headers,
                             json={"name": "陈小经", "id_number": operator.person.id_number})
    assert back.status_code == 201, back.text
    assert back.json()["id"] == member_id


async def test_a_member_of_x_can_never_act_for_y(client, ctx) -> None:
    x = await owned_enterprise(client, ctx, owner_name="蒋某甲")
    y = await owned_enterprise(client, ctx, owner_name="沈某乙")
    x_operator, _ = await add_operator(client, ctx, x, name="韩经办")
    _, y_member_id = await add_operator(client, ctx, y, name="杨经办")
    _, bank = await bank_session(client)
    y_authz = await enterprise_authorization(client, bank, y, approve=False)
    y_granted = await enterprise_authorization(client, bank, y)
    x_authz = await enterprise_authorization(client, bank, x, approve=False)
    newcomer = await bound_citizen(client, ctx, name="朱新人")

    for member in (x.owner, x_operator):
        h = member.headers
        for r in (
            await client.get(f"/v1/enterprises/{y.uscc}/members", headers=h),
            await client.post(f"/v1/enterprises/{y.uscc}/members", headers=h,
                              json={"name": "朱新人", "id_number": newcomer.person.id_number}),
            await client.delete(f"/v1/enterprises/{y.uscc}/members/{y_member_id}", headers=h),
            await client.get(f"/v1/enterprises/{y.uscc}/portrait", headers=h),
            await client.get(f"/v1/enterprises/{y.uscc}/portrait/versions", headers=h),
            await client.get(f"/v1/enterprises/{y.uscc}/authorizations", headers=h),
            await client.post(f"/v1/enterprises/{y.uscc}/authorizations/{y_authz}/approve", headers=h),
            await client.post(f"/v1/enterprises/{y.uscc}/authorizations/{y_authz}/reject", headers=h),
            await client.post(f"/v1/enterprises/{y.uscc}/authorizations/{y_granted}/revoke", headers=h),
        ):
            _problem(r, 404, "enterprise_not_found")
        # Y's authorizations through X's own path are not found either.
        for action, target in (("approve", y_authz), ("reject", y_authz), ("revoke", y_granted)):
            _problem(await client.post(f"/v1/enterprises/{x.uscc}/authorizations/{target}/{action}", headers=h),
                     404, "authorization_not_found")
        listed = (await client.get(f"/v1/enterprises/{x.uscc}/authorizations", headers=h)).json()["items"]
        assert [a["id"] for a in listed] == [x_authz]
        # Nor as a citizen: an enterprise's authorization is not a person's to decide.
        _problem(await client.post(f"/v1/me/authorizations/{y_authz}/approve", headers=h),
                 404, "authorization_not_found")

    statuses = {r["public_id"]: r["status"] for r in await Authorization.select(
        Authorization.public_id, Authorization.status).where(Authorization.public_id.is_in([y_authz, y_granted]))}
    assert statuses == {y_authz: "awaiting_authorization", y_granted: "authorized"}
    assert len((await client.get(f"/v1/enterprises/{y.uscc}/members", headers=y.headers)).json()["items"]) == 2


async def test_data_sources_push_enterprise_records_of_every_new_category(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="秦数据")
    source = await data_source(client)
    categories = ["tax_grade_a", "tax_grade_b", "tax_grade_m", "tax_grade_c", "tax_grade_d",
                  "social_insurance_paid", "social_insurance_arrears", "administrative_permit",
                  "administrative_penalty", "court_judgment", "dishonest_executee", "environmental_rating_good",
                  "environmental_rating_poor", "honour_specialized", "honour_high_tech", "patent", "utility_arrears"]
    body = await push_enterprise_records(client, source, [enterprise_row(owned.uscc, c, days_ago=20 + i)
                                                          for i, c in enumerate(categories)])
    assert body["summary"] == {"accepted": len(categories), "updated": 0, "duplicate": 0, "rejected": 0}
    assert body["rescored_persons"] == 0

    # Enterprise-only categories are refused for a person.
    person = await registry_person(ctx, name="许个人")
    from tests.factories import push_records

    r = await push_records(client, source, [record_row(person, category="honour_specialized", title="专精特新")])
    assert r.status_code == 200, r.text
    assert [x["code"] for x in r.json()["rejected_rows"]] == ["category_not_for_subject"]


async def test_members_decide_the_enterprise_authorizations(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="何老总")
    operator, _ = await add_operator(client, ctx, owned, name="吕经办")
    bank_id, bank = await bank_session(client, name="嘉兴银行")

    asked = await client.post("/v1/authorizations", headers=bank.headers, json={
        "subject": {"kind": "enterprise", "uscc": owned.uscc}, "purpose": "loan_application",
        "scopes": ["portrait"], "validity_days": 90})
    assert asked.status_code == 201, asked.text
    authorization_id = asked.json()["id"]

    listed = await client.get(f"/v1/enterprises/{owned.uscc}/authorizations", headers=operator.headers)
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert (item["id"], item["status"], item["purpose"]["code"], item["purpose"]["name"]) == (
        authorization_id, "awaiting_authorization", "loan_application", "申请贷款")
    assert item["partner"]["name"] == "嘉兴银行"

    approved = await client.post(f"/v1/enterprises/{owned.uscc}/authorizations/{authorization_id}/approve",
                                 headers=operator.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["authorization"]["status"] == "authorized"
    receipt = ctx.tokens.verify_document(approved.json()["consent_receipt"], typ="consent-receipt+jwt")
    assert (receipt["subject"], receipt["subject_kind"], receipt["purpose"]) == (
        owned.public_id, "enterprise", "loan_application")
    assert receipt["approved_by"].startswith("mem_")
    seen = await client.get(f"/v1/authorizations/{authorization_id}", headers=bank.headers)
    assert seen.json()["status"] == "authorized"
    # Deciding twice is a conflict, not a second approval.
    _problem(await client.post(f"/v1/enterprises/{owned.uscc}/authorizations/{authorization_id}/approve",
                               headers=owned.headers), 409, "authorization_state_conflict")

    revoked = await client.post(f"/v1/enterprises/{owned.uscc}/authorizations/{authorization_id}/revoke",
                                headers=owned.headers, json={"reason": "不再申请"})
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["status"], revoked.json()["ended_reason"]) == ("revoked", "不再申请")
    topics = [r["topic"] for r in await OutboxEvent.select(OutboxEvent.topic).where(
        (OutboxEvent.aggregate_id == authorization_id) & (OutboxEvent.recipient == bank_id)).order_by(
        OutboxEvent.created_at)]
    assert topics == ["authorization.authorized", "authorization.revoked"]

    other = await enterprise_authorization(client, bank, owned, approve=False)
    rejected = await client.post(f"/v1/enterprises/{owned.uscc}/authorizations/{other}/reject",
                                 headers=operator.headers)
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"


async def test_the_loan_application_purpose_limits_scopes_and_validity(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="孔申请")
    _, bank = await bank_session(client)
    base = {"subject": {"kind": "enterprise", "uscc": owned.uscc}, "purpose": "loan_application"}
    _problem(await client.post("/v1/authorizations", headers=bank.headers,
                               json={**base, "scopes": ["dimensions"], "validity_days": 30}),
             422, "scope_not_allowed_for_purpose")
    _problem(await client.post("/v1/authorizations", headers=bank.headers,
                               json={**base, "scopes": ["portrait"], "validity_days": 91}), 422, "validity_too_long")
    purposes = {p["code"]: p for p in (await client.get("/v1/purposes")).json()}
    assert purposes["loan_application"]["subject_kind"] == "enterprise"
    assert purposes["loan_application"]["max_validity_days"] == 90
    assert set(purposes["loan_application"]["allowed_scopes"]) == {"portrait", "tier", "score"}


async def test_granting_in_one_step_for_the_enterprise(client, ctx) -> None:
    from credit import authorizations as authz

    owned = await owned_enterprise(client, ctx, owner_name="曹一步")
    bank_id, bank = await bank_session(client, name="一步银行")
    ent = await Enterprise.select(Enterprise._meta.primary_key).where(Enterprise.public_id == owned.public_id).first()
    assert ent is not None
    view = await authz.grant_for_enterprise(
        enterprise_id=ent["id"], partner_client_id=bank_id, partner_name="一步银行", partner_kind="bank",
        purpose_code="loan_application", scopes=["portrait"], validity_days=90)
    assert (view.status, view.subject_kind, view.enterprise_id) == ("authorized", "enterprise", ent["id"])
    assert view.decided_at is not None
    assert view.valid_until is not None
    listed = (await client.get(f"/v1/enterprises/{owned.uscc}/authorizations", headers=owned.headers)).json()
    assert [a["id"] for a in listed["items"]] == [view.id]
    seen = await client.get(f"/v1/authorizations/{view.id}", headers=bank.headers)
    assert seen.json()["status"] == "authorized"
    assert await OutboxEvent.exists().where((OutboxEvent.aggregate_id == view.id)
                                            & (OutboxEvent.topic == "authorization.authorized"))


async def test_a_former_legal_representative_loses_the_enterprise(client, ctx) -> None:
    from credit.tables import Person
    from tests.lending_factories import account_id_of, post_demand, publish_product

    owned = await owned_enterprise(client, ctx, owner_name="旧法人")
    operator, _ = await add_operator(client, ctx, owned, name="留任经办")
    successor = await bound_citizen(client, ctx, name="新法人")
    _, bank = await bank_session(client)
    product = await publish_product(client, bank)
    pending = await enterprise_authorization(client, bank, owned, approve=False)

    # The registry names a new legal representative (法定代表人变更).
    person = await Person.select(Person._meta.primary_key).where(
        Person.public_id == successor.person.public_id).first()
    assert person is not None
    await Enterprise.update({Enterprise.legal_representative: person["id"]}).where(
        Enterprise.public_id == owned.public_id)

    old = owned.owner.headers
    for r in (
        await client.get(f"/v1/enterprises/{owned.uscc}/members", headers=old),
        await client.get(f"/v1/enterprises/{owned.uscc}/portrait", headers=old),
        await client.get(f"/v1/enterprises/{owned.uscc}/authorizations", headers=old),
        await client.post(f"/v1/enterprises/{owned.uscc}/authorizations/{pending}/approve", headers=old),
        await client.post(f"/v1/enterprises/{owned.uscc}/members", headers=old,
                          json={"name": "新法人", "id_number": successor.person.id_number}),
        await client.post("/v1/lending/demands", headers=old, json={
            "uscc": owned.uscc, "amount_fen": 100_000_00, "term_months": 12, "purpose": "周转",
            "guarantee_offered": "credit"}),
    ):
        _problem(r, 404, "enterprise_not_found")
    assert (await client.get("/v1/enterprises", headers=old)).json() == {"items": []}
    assert (await Authorization.select(Authorization.status).where(
        Authorization.public_id == pending).first()) == {"status": "awaiting_authorization"}

    # The operator keeps acting for the enterprise; the bank's decisions no longer reach the former owner.
    demand = await post_demand(client, owned, who=operator)
    submitted = await client.post(f"/v1/lending/demands/{demand['id']}/submit", headers=operator.headers,
                                  json={"product_ids": [product["id"]], "consent": True})
    assert submitted.status_code == 200, submitted.text
    app_id = submitted.json()["applications"][0]["id"]
    decided = await client.post(f"/v1/lending/applications/{app_id}/decisions", headers=bank.headers,
                                json={"status": "accepted"})
    assert decided.status_code == 200, decided.text
    recipients = [r["recipient"] for r in await OutboxEvent.select(OutboxEvent.recipient).where(
        (OutboxEvent.aggregate_id == app_id) & OutboxEvent.recipient.like("citizen:%"))]
    assert recipients == [f"citizen:{account_id_of(operator)}"]

    # The new representative binds as owner; the former owner's membership ends with it...
    bound = await client.post("/v1/enterprises", headers=successor.headers, json={"uscc": owned.uscc})
    assert bound.status_code == 201, bound.text
    assert bound.json()["role"] == "owner"
    members = (await client.get(f"/v1/enterprises/{owned.uscc}/members", headers=successor.headers)).json()
    assert sorted((m["role"], m["name"]) for m in members["items"]) == [("operator", "**经办"), ("owner", "*法人")]
    assert (await client.get(f"/v1/enterprises/{owned.uscc}/members", headers=old)).status_code == 404

    # ...and they may be added back, as an operator.
    back = await client.post(f"/v1/enterprises/{owned.uscc}/members", headers=successor.headers,
                             json={"name": "旧法人", "id_number": owned.owner.person.id_number})
    assert back.status_code == 201, back.text
    assert back.json()["role"] == "operator"
    mine = (await client.get("/v1/enterprises", headers=old)).json()["items"]
    assert [(e["id"], e["role"]) for e in mine] == [(owned.public_id, "operator")]


async def test_a_removed_operator_hears_nothing_more_of_the_enterprise_loans(client, ctx) -> None:
    from credit.tables import Person
    from tests.lending_factories import post_demand, publish_product

    owned = await owned_enterprise(client, ctx, owner_name="甲法人")
    operator, member_id = await add_operator(client, ctx, owned, name="乙经办")
    _, bank = await bank_session(client)
    product = await publish_product(client, bank)
    demand = await post_demand(client, owned, who=operator)
    submitted = await client.post(f"/v1/lending/demands/{demand['id']}/submit", headers=operator.headers,
                                  json={"product_ids": [product["id"]], "consent": True})
    assert submitted.status_code == 200, submitted.text
    app_id = submitted.json()["applications"][0]["id"]
    removed = await client.delete(f"/v1/enterprises/{owned.uscc}/members/{member_id}", headers=owned.headers)
    assert removed.status_code == 200, removed.text
    # The registry then names a legal representative who has not bound the enterprise yet: no owner to tell.
    successor = await registry_person(ctx, name="丙新任")
    person = await Person.select(Person._meta.primary_key).where(Person.public_id == successor.public_id).first()
    assert person is not None
    await Enterprise.update({Enterprise.legal_representative: person["id"]}).where(
        Enterprise.public_id == owned.public_id)

    decided = await client.post(f"/v1/lending/applications/{app_id}/decisions", headers=bank.headers,
                                json={"status": "rejected", "reason": "资料不全"})
    assert decided.status_code == 200, decided.text
    assert not await OutboxEvent.exists().where(
        (OutboxEvent.aggregate_id == app_id) & OutboxEvent.recipient.like("citizen:%"))
