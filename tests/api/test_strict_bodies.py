"""Request bodies are decoded strictly against their schema, whatever their nesting, and the published schema says
what the server enforces (api.bodies, api.openapi)."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from credit.checks import seed_default_measures
from tests.factories import (
    bound_citizen,
    citizen_login,
    operator_session,
    partner_session,
    registry_enterprise,
)
from tests.lending_factories import bank_session, publish_product
from tests.servers import xinyi_server

PROBLEM = "application/problem+json"
PHONE_PATTERN = r"^(\+86)?1[3-9][0-9]{9}$"
ID_NUMBER_PATTERN = r"^[0-9]{17}[0-9Xx]$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+={0,2}$"
JSON = {"content-type": "application/json"}
DEPTHS = (5_000, 100_000)


def _nested(depth: int, opener: bytes, *, closed: bool) -> bytes:
    closer = {b"[": b"]", b'{"a":': b"}"}[opener]
    return opener * depth + ((b"1" if opener != b"[" else b"") + closer * depth if closed else b"")


def _deep_bodies() -> Iterator[bytes]:
    for depth in DEPTHS:
        for opener in (b"[", b'{"a":'):
            for closed in (False, True):
                yield _nested(depth, opener, closed=closed)


def _assert_4xx_problem(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (400, 422), (r.request.method, r.request.url, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] in {"malformed_json", "json_too_deep", "validation_failed", "batch_not_array"}, body
    return body


async def _deep_targets(client: Any, ctx: Any) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, headers) on anonymous and authenticated routes, citizen, partner and operator."""
    citizen = await citizen_login(client)
    _, bank = await bank_session(client)
    product = await publish_product(client, bank)
    _, _, source = await partner_session(client, kind="data_source")
    admin = await operator_session(client, role="partner_admin")
    return [
        ("POST", "/v1/auth/otp", {}),
        ("POST", "/v1/auth/token", {}),
        ("POST", "/v1/auth/revoke", {}),
        ("POST", "/v1/me/benefit-codes", citizen.headers),
        ("POST", "/v1/me/identity", citizen.headers),
        ("PATCH", f"/v1/lending/products/{product['id']}", bank.headers),
        ("POST", "/v1/records/batch", source.headers),
        ("POST", "/v1/admin/partners", admin.headers),
    ]


async def test_any_nesting_depth_is_a_4xx_problem_on_every_kind_of_route(client, ctx) -> None:
    targets = await _deep_targets(client, ctx)
    for method, path, headers in targets:
        # Every JSON media type the app takes (application/json and any +json; NDJSON for record batches).
        for media_type in ("application/json", "application/merge-patch+json"):
            for body in _deep_bodies():
                r = await client.request(method, path, content=body, headers={**headers, "content-type": media_type})
                _assert_4xx_problem(r)
    assert (await client.get("/health/live")).status_code == 200


async def test_deep_nesting_inside_a_free_form_member_is_400_json_too_deep(client) -> None:
    """A JWKS's key parameters are free-form JSON: the only place the schema lets nesting go on."""
    admin = await operator_session(client, role="partner_admin")
    for depth in DEPTHS:
        deep_key = b'{"kty":' + b"[" * depth + b"]" * depth + b"}"
        body = b'{"name":"deep","kind":"bank","jwks":[' + deep_key + b"]}"
        r = await client.post("/v1/admin/partners", content=body, headers={**admin.headers, **JSON})
        assert _assert_4xx_problem(r)["code"] == "json_too_deep"
        put = await client.put("/v1/admin/partners/nobody/jwks", content=b'{"keys":[' + deep_key + b"]}",
                               headers={**admin.headers, **JSON})
        assert _assert_4xx_problem(put)["code"] == "json_too_deep"


async def test_deep_rows_in_a_record_batch_are_refused_not_500(client) -> None:
    _, _, source = await partner_session(client, kind="data_source")
    deep = b"[" * 5_000 + b"]" * 5_000
    array = await client.post("/v1/records/batch", content=b"[" + deep + b"]", headers={**source.headers, **JSON})
    assert _assert_4xx_problem(array)["code"] == "json_too_deep"
    ndjson = await client.post("/v1/records/batch", content=deep + b"\n" + b'{"a":' * 5_000,
                               headers={**source.headers, "content-type": "application/x-ndjson"})
    assert ndjson.status_code == 200, ndjson.text
    assert [row["code"] for row in ndjson.json()["rejected_rows"]] == ["invalid_row", "invalid_row"]


@pytest.fixture
def served() -> Iterator[str]:
    with xinyi_server(["serve"], ready_path="/health/ready") as base:
        yield base


async def test_a_served_worker_answers_deep_bodies_with_4xx_and_stays_healthy(client, ctx, served) -> None:
    targets = await _deep_targets(client, ctx)
    async with httpx.AsyncClient(base_url=served, timeout=30) as http:
        for method, path, headers in targets:
            for body in _deep_bodies():
                _assert_4xx_problem(await http.request(method, path, content=body, headers={**headers, **JSON}))
        assert (await http.get("/health/live")).status_code == 200
        assert (await http.post("/v1/auth/otp", json={"phone": "13800138000"},
                                headers={"X-Forwarded-For": "10.9.8.7"})).status_code == 202


# ---------------------------------------------------------------- strict types


def _field_error(r: httpx.Response, field: str) -> None:
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), r.text
    assert field in {e["field"] for e in r.json()["errors"]}, r.text


async def test_numbers_and_booleans_are_not_taken_from_strings_or_integers(client) -> None:
    _, bank = await bank_session(client)
    product = await publish_product(client, bank, rate_max_bp=600)
    url = f"/v1/lending/products/{product['id']}"
    _field_error(await client.patch(url, headers=bank.headers, json={"rate_max_bp": "900"}), "rate_max_bp")
    _field_error(await client.patch(url, headers=bank.headers, json={"first_loan_friendly": "true"}),
                 "first_loan_friendly")
    _field_error(await client.patch(url, headers=bank.headers, json={"first_loan_friendly": 0}),
                 "first_loan_friendly")
    _field_error(await client.post("/v1/lending/products", headers=bank.headers,
                                   json={**{k: v for k, v in product.items() if k in _PRODUCT_FIELDS},
                                         "amount_min_fen": "1000000"}), "amount_min_fen")
    unchanged = await client.patch(url, headers=bank.headers, json={"rate_max_bp": 900, "first_loan_friendly": True})
    assert unchanged.status_code == 200, unchanged.text
    assert (unchanged.json()["rate_max_bp"], unchanged.json()["first_loan_friendly"]) == (900, True)


_PRODUCT_FIELDS = {"name", "amount_min_fen", "amount_max_fen", "term_min_months", "term_max_months", "rate_min_bp",
                   "rate_max_bp", "guarantee_kind"}


async def test_a_measure_is_not_made_mandatory_by_a_zero(client) -> None:
    await seed_default_measures()
    officer = await operator_session(client, role="officer")
    code = (await client.get("/v1/admin/measures", headers=officer.headers)).json()[0]["code"]
    for value in (0, 1, "true", "false", "1"):
        _field_error(await client.patch(f"/v1/admin/measures/{code}", headers=officer.headers,
                                        json={"mandatory": value}), "mandatory")


async def test_a_null_body_is_not_an_absent_one(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx)
    null = await client.post("/v1/me/benefit-codes", headers={**citizen.headers, **JSON}, content=b"null")
    assert (null.status_code, null.json()["code"]) == (422, "validation_failed"), null.text
    for body in (b"[]", b'"x"', b"0"):
        r = await client.post("/v1/me/benefit-codes", headers={**citizen.headers, **JSON}, content=body)
        assert (r.status_code, r.json()["code"]) == (422, "validation_failed"), r.text
    assert (await client.post("/v1/me/benefit-codes", headers=citizen.headers)).status_code == 201

    officer = await operator_session(client, role="officer")
    enterprise = await registry_enterprise(ctx)
    listed = await client.post("/v1/admin/lists", headers=officer.headers, json={
        "list_code": "credit_red_list", "subject": {"kind": "enterprise", "uscc": enterprise.uscc}, "reason": "示范"})
    assert listed.status_code == 201, listed.text
    url = f"/v1/admin/lists/{listed.json()['id']}/delist"
    refused = await client.post(url, headers={**officer.headers, **JSON}, content=b"null")
    assert (refused.status_code, refused.json()["code"]) == (422, "validation_failed"), refused.text
    still = (await client.get("/v1/admin/lists", headers=officer.headers,
                              params={"list_code": "credit_red_list"})).json()["items"]
    assert listed.json()["id"] in [e["id"] for e in still]
    assert (await client.post(url, headers=officer.headers)).status_code == 200


async def test_identifiers_must_match_their_published_patterns(client) -> None:
    for number in ("13８00138000", "138-0013-8000", "+86 13800138000", "12345678901"):
        _field_error(await client.post("/v1/auth/otp", json={"phone": number}), "phone")
    session = await citizen_login(client)
    for number in ("33040219900101123", "３３0402199001011234", "33040219900101123Y", " 330402199001011234"):
        _field_error(await client.post("/v1/me/identity", headers=session.headers,
                                       json={"name": "张三", "id_number": number}), "id_number")


# ---------------------------------------------------------------- authentication before the Idempotency-Key


@pytest.mark.parametrize("path", ["/v1/authorizations", "/v1/benefits/redeem", "/v1/credit-checks",
                                  "/v1/me/benefit-codes", "/v1/lending/products"])
async def test_a_bad_idempotency_key_without_credentials_is_401_first(client, path: str) -> None:
    for key in ("", "k" * 201):
        r = await client.post(path, headers={"Idempotency-Key": key}, json={})
        assert (r.status_code, r.json()["code"]) == (401, "missing_token"), (key, r.text)
        bad_token = await client.post(path, headers={"Idempotency-Key": key, "Authorization": "Bearer nope"},
                                      json={})
        assert (bad_token.status_code, bad_token.json()["code"]) == (401, "invalid_token"), (key, bad_token.text)


async def test_a_bad_idempotency_key_with_credentials_is_still_refused_and_nothing_runs(client) -> None:
    citizen = await citizen_login(client)
    for key in ("", "k" * 201):
        r = await client.post("/v1/me/benefit-codes", headers={**citizen.headers, "Idempotency-Key": key})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_idempotency_key"), r.text


# ---------------------------------------------------------------- the published schema


def _structs(info: msgspec.inspect.Type) -> Iterator[msgspec.inspect.StructType]:
    """Every Struct a body of this type may hold, nested ones included."""
    if isinstance(info, msgspec.inspect.StructType):
        yield info
        for field in info.fields:
            yield from _structs(field.type)
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            yield from _structs(member)
    elif isinstance(info, msgspec.inspect.ListType | msgspec.inspect.SetType | msgspec.inspect.FrozenSetType
                    | msgspec.inspect.VarTupleType):
        yield from _structs(info.item_type)
    elif isinstance(info, msgspec.inspect.DictType):
        yield from _structs(info.value_type)
    elif isinstance(info, msgspec.inspect.TupleType):
        for item in info.item_types:
            yield from _structs(item)


def _refs(schema: dict[str, Any]) -> set[str]:
    if "$ref" in schema:
        return {schema["$ref"].rsplit("/", 1)[1]}
    return {name for member in schema.get("oneOf", []) + schema.get("anyOf", []) for name in _refs(member)}


async def test_every_request_body_schema_refuses_unknown_fields_as_the_server_does(client, app) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    components = doc["components"]["schemas"]
    checked = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None:
                continue
            # A body that may be left out is still the object when it is sent.
            target = functools.reduce(operator.or_, [t.annotation for t in data.inner_types if not t.is_none_type]) \
                if data.is_optional else data.annotation
            for method in handler.http_methods:
                operation = doc["paths"][route.path_format][method.lower()]
                body = operation["requestBody"]
                assert body["required"] is not data.is_optional, (method, route.path_format)
                schema = body["content"]["application/json"]["schema"]
                assert "null" not in str(schema), (method, route.path_format, schema)
                top = {s.cls.__name__ for s in _structs(msgspec.inspect.type_info(target))
                       if s.cls in _top_level(target)}
                assert _refs(schema) == top, (method, route.path_format, schema)
                for struct in _structs(msgspec.inspect.type_info(target)):
                    published = components[struct.cls.__name__]
                    if struct.forbid_unknown_fields:
                        assert published.get("additionalProperties") is False, struct.cls.__name__
                    else:
                        assert published.get("additionalProperties") is not False, struct.cls.__name__
                checked += 1
    bodies = sum("requestBody" in op for item in doc["paths"].values() for op in item.values() if isinstance(op, dict))
    assert checked == bodies - _raw_body_operations(app, doc)
    assert checked >= 40  # the walk really found the bodies


def _top_level(target: Any) -> set[type]:
    info = msgspec.inspect.type_info(target)
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    return {m.cls for m in members if isinstance(m, msgspec.inspect.StructType)}


def _raw_body_operations(app: Any, doc: dict[str, Any]) -> int:
    """Operations that read their body raw (no `data` parameter) but still publish a request body (the ingest
    batch in its own media types, the OAuth token and revocation endpoints in JSON and form encoding)."""
    return sum(1 for route in app.routes for handler in getattr(route, "route_handlers", [])
               if "data" not in handler.parsed_fn_signature.parameters
               for method in handler.http_methods
               if "requestBody" in doc["paths"].get(route.path_format, {}).get(method.lower(), {}))


async def test_the_schema_publishes_identifier_and_cursor_formats(client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert schemas["OtpRequest"]["properties"]["phone"]["pattern"] == PHONE_PATTERN
    assert schemas["IdentityBindRequest"]["properties"]["id_number"]["pattern"] == ID_NUMBER_PATTERN
    cursors = [p for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)
               for p in op.get("parameters", []) if p["name"] == "cursor" and p["in"] == "query"]
    assert len(cursors) > 15
    for parameter in cursors:
        schema = parameter["schema"]
        assert schema.get("pattern") or {"type": "integer"} in schema.get("oneOf", [schema]), parameter


async def test_a_cursor_outside_the_published_format_is_invalid_cursor(client) -> None:
    _, bank = await bank_session(client)
    for _ in range(2):
        await publish_product(client, bank)
    first = (await client.get("/v1/lending/products", params={"limit": 1})).json()
    cursor = first["next_cursor"]
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert (await client.get("/v1/lending/products", params={"limit": 1, "cursor": cursor})).status_code == 200
    # base64 decoding skips characters outside its alphabet: the cursor with junk around it used to be taken.
    for bad in (f"{cursor}%%", f"..{cursor}", f"{cursor}\n", "x" * 300):
        r = await client.get("/v1/lending/products", params={"limit": 1, "cursor": bad})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor"), (bad, r.text)
