"""The loan product catalog (金融超市) through HTTP: banks publish and edit only their own products, ranges
are validated with stable codes, and the public catalog filters and pages active products."""

from __future__ import annotations

import secrets

from tests.factories import citizen_login, partner_session
from tests.lending_factories import WAN_FEN, bank_session, product_body, publish_product


async def test_a_bank_publishes_a_product_and_everyone_sees_it(client) -> None:
    bank_id, bank = await bank_session(client, name="嘉兴银行")
    body = product_body(name="科创信用贷", description="面向科技型中小企业", min_grade="B", min_score=60,
                        industries=["C", "I"], regions=["3304"], min_years_in_business=2, max_open_penalties=1,
                        tax_grade_floor="B", first_loan_friendly=True)
    r = await client.post("/v1/lending/products", headers=bank.headers, json=body)
    assert r.status_code == 201, r.text
    product = r.json()
    assert product["id"].startswith("lprd_")
    assert product["bank"] == {"id": bank_id, "name": "嘉兴银行"}
    assert product["status"] == "active"
    for key, value in body.items():
        assert product[key] == value, key

    public = await client.get(f"/v1/lending/products/{product['id']}")
    assert public.status_code == 200
    assert public.json() == product
    catalog = (await client.get("/v1/lending/products", params={"bank": bank_id})).json()
    assert [p["id"] for p in catalog["items"]] == [product["id"]]
    assert catalog["next_cursor"] is None


async def test_ranges_and_rules_are_validated_with_stable_codes(client) -> None:
    _, bank = await bank_session(client)
    cases = [
        ({"amount_min_fen": 500 * WAN_FEN, "amount_max_fen": 100 * WAN_FEN}, "amount_range_invalid"),
        ({"term_min_months": 24, "term_max_months": 12}, "term_range_invalid"),
        ({"rate_min_bp": 700, "rate_max_bp": 600}, "rate_range_invalid"),
        ({"industries": ["C", "C"]}, "duplicate_industry"),
        ({"regions": ["3304", "3304"]}, "duplicate_region"),
        ({"amount_min_fen": 0}, "validation_failed"),
        ({"rate_max_bp": 10_000}, "validation_failed"),
        ({"industries": ["Z"]}, "validation_failed"),
        ({"regions": ["33a"]}, "validation_failed"),
        ({"guarantee_kind": "friendship"}, "validation_failed"),
        ({"min_grade": "E"}, "validation_failed"),
        ({"tax_grade_floor": "AA"}, "validation_failed"),
        ({"status": "withdrawn"}, "validation_failed"),  # a product starts active or paused
        ({"bank_client_id": "someone_else"}, "validation_failed"),  # unknown field: the owner is the caller
    ]
    for overrides, code in cases:
        r = await client.post("/v1/lending/products", headers=bank.headers, json=product_body(**overrides))
        assert r.status_code == 422, (overrides, r.text)
        assert r.json()["code"] == code, overrides
    mine = (await client.get("/v1/lending/products/mine", headers=bank.headers)).json()
    assert mine["items"] == []


async def test_only_banks_with_lending_scope_publish(client) -> None:
    _, _, merchant = await partner_session(client, kind="merchant")
    r = await client.post("/v1/lending/products", headers=merchant.headers, json=product_body())
    assert r.status_code == 403
    assert r.json()["code"] == "insufficient_scope"
    citizen = await citizen_login(client)
    r = await client.post("/v1/lending/products", headers=citizen.headers, json=product_body())
    assert r.status_code == 403
    anonymous = await client.post("/v1/lending/products", json=product_body())
    assert anonymous.status_code == 401


async def test_bank_a_cannot_see_or_edit_bank_b_products(client) -> None:
    _, bank_a = await bank_session(client, name="A银行")
    b_id, bank_b = await bank_session(client, name="B银行")
    b_product = await publish_product(client, bank_b, name="B产品")

    edit = await client.patch(f"/v1/lending/products/{b_product['id']}", headers=bank_a.headers,
                              json={"rate_min_bp": 100})
    assert edit.status_code == 404
    assert edit.json()["code"] == "product_not_found"
    withdraw = await client.patch(f"/v1/lending/products/{b_product['id']}", headers=bank_a.headers,
                                  json={"status": "withdrawn"})
    assert withdraw.status_code == 404
    mine_a = (await client.get("/v1/lending/products/mine", headers=bank_a.headers)).json()
    assert b_product["id"] not in [p["id"] for p in mine_a["items"]]
    # unchanged for everyone
    public = (await client.get(f"/v1/lending/products/{b_product['id']}")).json()
    assert public["rate_min_bp"] == b_product["rate_min_bp"]
    assert public["status"] == "active"
    mine_b = (await client.get("/v1/lending/products/mine", headers=bank_b.headers)).json()
    assert [p["id"] for p in mine_b["items"]] == [b_product["id"]]
    assert mine_b["items"][0]["bank"]["id"] == b_id


async def test_patch_merges_validates_pauses_and_withdraws(client) -> None:
    bank_id, bank = await bank_session(client)
    product = await publish_product(client, bank)
    pid = product["id"]

    r = await client.patch(f"/v1/lending/products/{pid}", headers=bank.headers,
                           json={"rate_min_bp": 365, "min_grade": "A", "industries": ["C"]})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["rate_min_bp"], changed["min_grade"], changed["industries"]) == (365, "A", ["C"])
    assert changed["amount_max_fen"] == product["amount_max_fen"]  # untouched fields stay
    assert changed["updated_at"] >= product["updated_at"]

    # the merged product is validated as a whole
    r = await client.patch(f"/v1/lending/products/{pid}", headers=bank.headers,
                           json={"amount_min_fen": product["amount_max_fen"] + 1})
    assert r.status_code == 422
    assert r.json()["code"] == "amount_range_invalid"
    # null clears an optional rule
    r = await client.patch(f"/v1/lending/products/{pid}", headers=bank.headers, json={"min_grade": None})
    assert r.json()["min_grade"] is None
    r = await client.patch(f"/v1/lending/products/{pid}", headers=bank.headers, json={})
    assert r.status_code == 422
    assert r.json()["code"] == "empty_patch"

    # paused: gone from the public catalog, still in the bank's own list
    r = await client.patch(f"/v1/lending/products/{pid}", headers=bank.headers, json={"status": "paused"})
    assert r.json()["status"] == "paused"
    assert (await client.get(f"/v1/lending/products/{pid}")).status_code == 404
    assert (await client.get("/v1/lending/products", params={"bank": bank_id})).json()["items"] == []
    paused = (await client.get("/v1/lending/products/mine", headers=bank.headers, params={"status": "paused"})).json()
    assert [p["id"] for p in paused["items"]] == [pid]
    r = await client.patch(f"/v1/lending/products/{pid}", headers=bank.headers, json={"status": "active"})
    assert r.json()["status"] == "active"

    # withdrawn is final
    r = await client.patch(f"/v1/lending/products/{pid}", headers=bank.headers, json={"status": "withdrawn"})
    assert r.json()["status"] == "withdrawn"
    r = await client.patch(f"/v1/lending/products/{pid}", headers=bank.headers, json={"status": "active"})
    assert r.status_code == 409
    assert r.json()["code"] == "product_withdrawn"


async def test_public_catalog_filters(client) -> None:
    bank_id, bank = await bank_session(client)
    credit = await publish_product(client, bank, name="纯信用", amount_min_fen=10 * WAN_FEN,
                                   amount_max_fen=100 * WAN_FEN, term_max_months=12, rate_min_bp=400)
    secured = await publish_product(client, bank, name="抵押贷", guarantee_kind="collateral",
                                    amount_min_fen=50 * WAN_FEN, amount_max_fen=1000 * WAN_FEN, term_max_months=60,
                                    rate_min_bp=345, industries=["F"])
    xyd = await publish_product(client, bank, name="信易担", guarantee_kind="xinyidan", rate_min_bp=380,
                                industries=["C", "I"])

    async def ids(**params: object) -> set[str]:
        r = await client.get("/v1/lending/products", params={"bank": bank_id, **params})
        assert r.status_code == 200, r.text
        return {p["id"] for p in r.json()["items"]}

    assert await ids() == {credit["id"], secured["id"], xyd["id"]}
    assert await ids(guarantee_kind="collateral") == {secured["id"]}
    assert await ids(amount_fen=30 * WAN_FEN) == {credit["id"], xyd["id"]}
    assert await ids(amount_fen=500 * WAN_FEN) == {secured["id"]}
    assert await ids(term_months=24) == {secured["id"], xyd["id"]}
    assert await ids(industry="C") == {credit["id"], xyd["id"]}  # no restriction, or C allowed
    assert await ids(industry="F") == {credit["id"], secured["id"]}
    assert await ids(max_rate_bp=380) == {secured["id"], xyd["id"]}
    assert await ids(guarantee_kind="credit", max_rate_bp=380) == set()
    assert await ids(bank=f"bank_{secrets.token_hex(4)}") == set()
    bad = await client.get("/v1/lending/products", params={"industry": "CC"})
    assert bad.status_code in (400, 422)
    assert (await client.get("/v1/lending/products", params={"guarantee_kind": "friendship"})).status_code in (400,
                                                                                                              422)


async def test_catalog_pages_with_a_capped_cursor(client) -> None:
    bank_id, bank = await bank_session(client)
    created = [(await publish_product(client, bank, name=f"产品{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"bank": bank_id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/lending/products", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created[::-1]  # newest first, each once
    too_big = await client.get("/v1/lending/products", params={"limit": 101})
    assert too_big.status_code in (400, 422)
    broken = await client.get("/v1/lending/products", params={"cursor": "not-a-cursor"})
    assert broken.status_code == 422
    assert broken.json()["code"] == "invalid_cursor"


async def test_concurrent_edits_never_merge_into_an_invalid_product(client) -> None:
    import asyncio

    _, bank = await bank_session(client)
    product = await publish_product(client, bank, amount_min_fen=10 * WAN_FEN, amount_max_fen=300 * WAN_FEN,
                                    rate_min_bp=385, rate_max_bp=600)
    url = f"/v1/lending/products/{product['id']}"
    # each edit is valid against the product as it was; a higher minimum and a lower maximum together are not
    edits = [{"amount_min_fen": 250 * WAN_FEN}, {"amount_max_fen": 200 * WAN_FEN},
             {"rate_min_bp": 550}, {"rate_max_bp": 500}] * 4
    answers = await asyncio.gather(*(client.patch(url, headers=bank.headers, json=e) for e in edits))
    assert {a.status_code for a in answers} <= {200, 422}, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 422} <= {"amount_range_invalid",
                                                                          "rate_range_invalid"}
    final = (await client.get("/v1/lending/products/mine", headers=bank.headers)).json()["items"][0]
    assert final["amount_min_fen"] <= final["amount_max_fen"], final
    assert final["rate_min_bp"] <= final["rate_max_bp"], final
