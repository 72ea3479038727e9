"""Citizens bind their account to their registry identity; the registry cannot be probed."""

from __future__ import annotations

import asyncio

from accounts.tables import CitizenAccount
from credit.tables import Person
from tests.factories import citizen_login, id_number, registry_person


async def test_binding_with_matching_name_and_id_number(client, ctx) -> None:
    person = await registry_person(ctx, name="李四")
    session = await citizen_login(client)
    r = await client.post("/v1/me/identity", headers=session.headers,
                          json={"name": "李四", "id_number": person.id_number})
    assert r.status_code == 200, r.text
    identity = r.json()["identity"]
    assert identity["person_id"] == person.public_id
    assert identity["id_number_masked"] == person.id_number[:4] + "**********" + person.id_number[-4:]
    assert person.id_number not in r.text
    # idempotent: binding again to the same person is fine
    again = await client.post("/v1/me/identity", headers=session.headers,
                              json={"name": "李四", "id_number": person.id_number})
    assert again.status_code == 200


async def test_wrong_name_and_unknown_person_get_the_same_answer(client, ctx) -> None:
    person = await registry_person(ctx, name="王五")
    session = await citizen_login(client)
    wrong_name = await client.post("/v1/me/identity", headers=session.headers,
                                   json={"name": "王六", "id_number": person.id_number})
    unknown = await client.post("/v1/me/identity", headers=session.headers,
                                json={"name": "王五", "id_number": id_number(birth="19850505")})
    assert wrong_name.status_code == unknown.status_code == 422
    assert wrong_name.json()["code"] == unknown.json()["code"] == "identity_mismatch"
    assert wrong_name.json()["detail"] == unknown.json()["detail"]


async def test_invalid_id_number_is_rejected_with_the_field(client) -> None:
    session = await citizen_login(client)
    valid = id_number()
    broken = valid[:-1] + ("0" if valid[-1] != "0" else "1")
    r = await client.post("/v1/me/identity", headers=session.headers, json={"name": "张三", "id_number": broken})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_id_number"
    assert r.json()["errors"][0]["field"] == "id_number"


async def test_one_identity_binds_to_one_account_even_concurrently(client, ctx) -> None:
    person = await registry_person(ctx, name="赵六")
    sessions = await asyncio.gather(*(citizen_login(client) for _ in range(4)))
    results = await asyncio.gather(*(
        client.post("/v1/me/identity", headers=s.headers, json={"name": "赵六", "id_number": person.id_number})
        for s in sessions))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 409, 409, 409], [r.text for r in results]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"identity_already_bound"}
    person_id = (await Person.select(Person.id).where(Person.public_id == person.public_id).first())["id"]
    assert await CitizenAccount.count().where(CitizenAccount.person == person_id) == 1


async def test_bound_account_cannot_switch_identity(client, ctx) -> None:
    first, second = await registry_person(ctx, name="孙七"), await registry_person(ctx, name="周八")
    session = await citizen_login(client)
    await client.post("/v1/me/identity", headers=session.headers, json={"name": "孙七", "id_number": first.id_number})
    r = await client.post("/v1/me/identity", headers=session.headers,
                          json={"name": "周八", "id_number": second.id_number})
    assert r.status_code == 409
    assert r.json()["code"] == "account_already_bound"


async def test_identity_attempts_are_limited(client, override_settings) -> None:
    session = await citizen_login(client)
    with override_settings(identity_bind_attempts_per_day=2):
        codes = [(await client.post("/v1/me/identity", headers=session.headers,
                                    json={"name": "某某", "id_number": id_number()})).json()["code"]
                 for _ in range(3)]
    assert codes == ["identity_mismatch", "identity_mismatch", "identity_attempts_exceeded"]


async def test_identity_numbers_and_phones_are_encrypted_at_rest(client, ctx) -> None:
    person = await registry_person(ctx, name="吴九")
    session = await citizen_login(client)
    await client.post("/v1/me/identity", headers=session.headers, json={"name": "吴九", "id_number": person.id_number})
    row = await Person.select().where(Person.public_id == person.public_id).first()
    assert person.id_number not in str(row)
    account = await CitizenAccount.select().where(
        CitizenAccount.phone_hash == ctx.cipher.lookup_hash("phone", session.phone)).first()
    assert session.phone not in str(account)
    assert ctx.cipher.decrypt("phone", account["phone_enc"]) == session.phone
