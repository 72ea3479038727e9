"""Bad input to every 信易贷 endpoint is a 4xx problem with a stable code, never a 500 — on SQLite and on
PostgreSQL, which refuses text holding a NUL character (so an id or a cursor carrying `%00` must never
reach it), and whose integers overflow on a hundred-digit cursor."""

from __future__ import annotations

import base64
from typing import Any

from tests.lending_factories import bank_session, grade_a_enterprise, post_demand, publish_product

PROBLEM = "application/problem+json"


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _problem(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, (r.request.url, r.text)
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == code, (r.request.url, r.text)


async def test_portrait_version_cursors_are_plain_numbers(client, ctx) -> None:  # type: ignore[no-untyped-def]
    owned = await grade_a_enterprise(client, ctx, owner_name="游标企业主")
    url = f"/v1/enterprises/{owned.uscc}/portrait/versions"
    for cursor in ("²", "٣", "9" * 30, "-1", "1.5", "abc"):
        _problem(await client.get(url, headers=owned.headers, params={"cursor": cursor}), 422, "invalid_cursor")
    ok = await client.get(url, headers=owned.headers, params={"cursor": "99"})
    assert ok.status_code == 200, ok.text


async def test_nul_bytes_and_foreign_ids_are_refused_cleanly(client, ctx) -> None:  # type: ignore[no-untyped-def]
    owned = await grade_a_enterprise(client, ctx, owner_name="零字节企业主")
    _, bank = await bank_session(client)
    product = await publish_product(client, bank)
    demand = await post_demand(client, owned)
    submitted = await client.post(f"/v1/lending/demands/{demand['id']}/submit", headers=owned.headers,
                                  json={"product_ids": [product["id"]], "consent": True})
    assert submitted.status_code == 200, submitted.text
    app = submitted.json()["applications"][0]
    oh, bh = owned.headers, bank.headers

    # ids in the path: simply not found
    _problem(await client.get("/v1/lending/products/lprd_%00x"), 404, "product_not_found")
    _problem(await client.patch("/v1/lending/products/lprd_%00x", headers=bh, json={"name": "x"}),
             404, "product_not_found")
    _problem(await client.get("/v1/lending/demands/dmd_%00", headers=oh), 404, "demand_not_found")
    _problem(await client.post("/v1/lending/demands/dmd_%00/submit", headers=oh,
                               json={"product_ids": [product["id"]], "consent": True}), 404, "demand_not_found")
    _problem(await client.get("/v1/lending/applications/lapp_%00", headers=bh), 404, "application_not_found")
    _problem(await client.post("/v1/lending/applications/lapp_%00/decisions", headers=bh,
                               json={"status": "accepted"}), 404, "application_not_found")
    for action in ("approve", "reject", "revoke"):
        _problem(await client.post(f"/v1/enterprises/{owned.uscc}/authorizations/authz_%00/{action}", headers=oh),
                 404, "authorization_not_found")
    _problem(await client.get(f"/v1/portraits/{owned.uscc}", headers=bh, params={"authorization_id": "authz_\x00"}),
             422, "validation_failed")

    # query filters and cursors
    _problem(await client.get("/v1/lending/products", params={"bank": "bank_\x00"}), 422, "validation_failed")
    _problem(await client.get("/v1/lending/stats", params={"bank": "bank_\x00"}), 422, "validation_failed")
    for cursor in (_cursor("2026-01-01T00:00:00+00:00|lprd_\x00"), _cursor("not a time|lprd_1"), _cursor("x"),
                   _cursor("9999-12-31T23:59:59-23:59|lprd_1"),
                   "\x00", "%%%"):
        for url, headers, params in (("/v1/lending/products", {}, {}), ("/v1/lending/products/mine", bh, {}),
                                     ("/v1/lending/applications", bh, {}),
                                     ("/v1/lending/demands", oh, {"uscc": owned.uscc})):
            _problem(await client.get(url, headers=headers, params={**params, "cursor": cursor}),
                     422, "invalid_cursor")
    _problem(await client.get(f"/v1/enterprises/{owned.uscc}/authorizations", headers=oh, params={"cursor": "a\x00"}),
             422, "invalid_cursor")

    # free text in bodies
    bodies: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
        ("POST", "/v1/lending/demands", {"uscc": owned.uscc, "amount_fen": 100_000_00, "term_months": 12,
                                         "purpose": "采购\x00原材料", "guarantee_offered": "credit"}, oh),
        ("POST", "/v1/lending/products", {"name": "信用贷\x00", "amount_min_fen": 1, "amount_max_fen": 2,
                                          "term_min_months": 1, "term_max_months": 2, "rate_min_bp": 1,
                                          "rate_max_bp": 2, "guarantee_kind": "credit"}, bh),
        ("PATCH", f"/v1/lending/products/{product['id']}", {"description": "\x00"}, bh),
        ("POST", f"/v1/lending/applications/{app['id']}/decisions", {"status": "rejected", "reason": "不\x00行"}, bh),
        ("POST", f"/v1/lending/applications/{app['id']}/decisions", {"status": "accepted", "note": "\x07"}, bh),
    ]
    for method, url, body, headers in bodies:
        _problem(await client.request(method, url, json=body, headers=headers), 422, "validation_failed")

    # nothing above changed anything
    after = (await client.get(f"/v1/lending/applications/{app['id']}", headers=bh)).json()
    assert after["status"] == "submitted"
    # ordinary multi-line text is still fine
    note = await client.post(f"/v1/lending/applications/{app['id']}/decisions", headers=bh,
                             json={"status": "accepted", "note": "已受理。\n客户经理将联系您\t谢谢"})
    assert note.status_code == 200, note.text
