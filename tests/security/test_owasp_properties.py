"""OWASP API3 (broken object property level authorization): what goes in and what comes out.

In: every request body is a msgspec Struct that refuses unknown fields (checked over the running app's
routes, nested Structs included), so mass assignment (`role`, `status`, `source`, `person_id` …) is a 422.
Out: a merchant's verification never carries a score, a threshold check says yes/no only, a score query
returns exactly the fields its authorization's scopes allow, and no answer to anyone but the subject
carries the subject's id number or phone, or an internal numeric id.
"""

from __future__ import annotations

import re
import secrets
import typing
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar

from accounts.schemas import PushedAuthorizationRequest, RevokeRequest, TokenRequest
from credit.partner_schemas import IngestRow
from tests.factories import (
    Citizen,
    authorization_for,
    bound_citizen,
    operator_session,
    partner_session,
    push_records,
    record_row,
)
from tests.scenario_factories import admin_benefit, merchant_session, verification_for

# Write routes that take no JSON body at all (their handlers declare no `data`), reviewed one by one.
NO_JSON_BODY = {
    ("POST", "/v1/me/authorizations/{authorization_id}/approve"),
    ("POST", "/v1/enterprises/{uscc}/authorizations/{authorization_id}/approve"),
    ("POST", "/v1/benefits/redemptions/{redemption_id}/cancel"),
    ("POST", "/v1/credit-orders/{order_id}/complete"),
    ("POST", "/v1/credit-orders/{order_id}/cancel"),
    ("POST", "/v1/credit-orders/{order_id}/settle"),
    ("POST", "/v1/webhooks/deliveries/{event_id}/retry"),
    ("POST", "/v1/me/notices/{notice_id}/read"),
    ("POST", "/v1/me/notices/read-all"),
    ("POST", "/v1/me/account/close/code"),
}
# The consent page's HTML forms (form-encoded, never JSON): each handler reads its few fields by name and ignores
# any other, as HTML forms are read (tests/accounts/test_consent_page.py).
PAGE_FORMS = {("POST", f"/authorize/{step}") for step in
              ("code", "change-phone", "login", "logout", "identity", "approve", "refuse")}
# Write routes that decode their body themselves, with the Struct they decode each row into.
SELF_DECODED: dict[tuple[str, str], Any] = {
    ("POST", "/v1/records/batch"): IngestRow,
    # The OAuth endpoints read JSON or form-encoded bodies (RFC 6749 §3.2 has unknown form parameters ignored;
    # in JSON they are refused like everywhere else).
    ("POST", "/v1/auth/token"): TokenRequest,
    ("POST", "/v1/auth/revoke"): RevokeRequest,
    ("POST", "/v1/oauth/par"): PushedAuthorizationRequest,
}
SCORE_KEYS = {"score", "total", "tier", "score_band", "dimensions", "reasons", "grade"}


def _structs(annotation: Any, seen: set[type[msgspec.Struct]]) -> None:
    """Every Struct reachable from a type (through Annotated, unions, containers and Struct fields)."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        if annotation not in seen:
            seen.add(annotation)
            for f in msgspec.structs.fields(annotation):
                _structs(f.type, seen)
        return
    for argument in typing.get_args(annotation):
        _structs(argument, seen)


def request_body_structs(app: Litestar) -> dict[tuple[str, str], set[type[msgspec.Struct]]]:
    bodies: dict[tuple[str, str], set[type[msgspec.Struct]]] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            for method in handler.http_methods & {"POST", "PUT", "PATCH"}:
                key = (method, route.path_format)
                data = handler.parsed_fn_signature.parameters.get("data")
                found: set[type[msgspec.Struct]] = set()
                if data is not None:
                    _structs(data.annotation, found)
                elif key in SELF_DECODED:
                    _structs(SELF_DECODED[key], found)
                bodies[key] = found
    return bodies


def test_every_request_body_refuses_unknown_fields(app: Litestar) -> None:
    bodies = request_body_structs(app)
    unexplained = sorted(k for k, structs in bodies.items() if not structs and k not in NO_JSON_BODY | PAGE_FORMS)
    assert unexplained == [], "write routes without a Struct body: add a Struct, or review them into NO_JSON_BODY"
    lax = sorted({s.__qualname__ for structs in bodies.values() for s in structs
                  if not s.__struct_config__.forbid_unknown_fields})
    assert lax == [], "request Structs that would accept unknown fields"
    assert len({s for structs in bodies.values() for s in structs}) > 40  # the walk really found the bodies


async def _unknown_field_refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "validation_failed"
    assert field in r.text


async def test_mass_assignment_is_refused_on_every_kind_of_route(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="属性")
    _, _, bank = await partner_session(client, kind="bank")
    admin = await operator_session(client, role="partner_admin")
    client_id, _, _ = await partner_session(client, kind="merchant")
    await _unknown_field_refused(await client.post(
        "/v1/me/identity", headers=citizen.headers,
        json={"name": "属性", "id_number": citizen.person.id_number, "person_id": "psn_someone_else"}), "person_id")
    await _unknown_field_refused(await client.post(
        "/v1/authorizations", headers=bank.headers,
        json={"subject": {"kind": "person", "id_number": citizen.person.id_number, "name": "属性", "status": "x"},
              "purpose": "loan_pre_approval", "scopes": ["tier"], "validity_days": 30}), "status")
    await _unknown_field_refused(await client.post(
        "/v1/scores/query", headers=bank.headers, json={"authorization_id": "authz_x", "scopes": ["score"]}), "scopes")
    r = await client.patch(f"/v1/admin/partners/{client_id}", headers=admin.headers,
                           json={"name": "改名", "kind": "bank"})
    await _unknown_field_refused(r, "kind")
    detail = (await client.get(f"/v1/admin/partners/{client_id}", headers=admin.headers)).json()
    assert detail["kind"] == "merchant"
    assert detail["name"] != "改名"  # the refused body changed nothing


async def test_an_ingest_row_cannot_name_its_own_source(client, ctx) -> None:
    from tests.factories import registry_person

    _, _, source = await partner_session(client, kind="data_source")
    person = await registry_person(ctx, name="来源")
    r = await push_records(client, source, [record_row(person, source="court"), record_row(person)])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"]["accepted"] == 1
    assert [(row["line"], row["code"]) for row in body["rejected_rows"]] == [(1, "invalid_row")]
    assert "source" in body["rejected_rows"][0]["reason"]


# ---------------------------------------------------------------- what answers carry


def _walk(value: Any, path: str = "$") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every member of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}", key, item
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def assert_nothing_the_caller_may_not_see(label: str, body: Any, citizen: Citizen) -> None:
    text = msgspec.json.encode(body).decode()
    assert citizen.person.id_number not in text, f"{label}: id number of the subject"
    assert citizen.session.phone not in text, f"{label}: phone of the subject"
    assert not re.search(r"(?<!\d)\d{17}[\dX](?!\d)", text), f"{label}: something shaped like an id number"
    for path, key, value in _walk(body):
        if key == "id" or key.endswith("_id"):
            assert isinstance(value, str | None), f"{label}: internal numeric id at {path}"
            assert value is None or not value.isdigit(), f"{label}: internal numeric id at {path}"


async def _answers_to_others(client: Any, ctx: Any) -> tuple[Citizen, dict[str, Any]]:
    """One citizen's data as every kind of non-subject sees it: bank, merchant, department, operator."""
    citizen = await bound_citizen(client, ctx, name="看客")
    _, _, bank = await partner_session(client, kind="bank")
    _, _, gov = await partner_session(client, kind="government")
    officer = await operator_session(client)
    merchant = await merchant_session(client)
    await admin_benefit(client, officer=officer, scenario=merchant.scenario, merchants=[merchant.client_id])
    tier_only = await authorization_for(client, bank, citizen, purpose="deposit_waiver", scopes=["tier"])
    everything = await authorization_for(client, bank, citizen, purpose="loan_pre_approval",
                                         scopes=["tier", "score_band", "score", "dimensions", "reasons"])
    subject = {"kind": "person", "id_number": citizen.person.id_number, "name": citizen.person.name}
    answers: dict[str, Any] = {}

    async def keep(label: str, response: Any) -> None:
        assert response.status_code in (200, 201), (label, response.text)
        answers[label] = response.json()

    await keep("bank: authorization", await client.get(f"/v1/authorizations/{everything}", headers=bank.headers))
    await keep("bank: tier-only query", await client.post("/v1/scores/query", headers=bank.headers,
                                                          json={"authorization_id": tier_only}))
    await keep("bank: full query", await client.post("/v1/scores/query", headers=bank.headers,
                                                     json={"authorization_id": everything}))
    await keep("bank: threshold check", await client.post("/v1/scores/check", headers=bank.headers, json={
        "authorization_id": everything, "threshold": 500, "transaction_id": f"t-{secrets.token_hex(4)}"}))
    answers["merchant: verify"] = await verification_for(client, merchant, citizen)
    await keep("department: credit check", await client.post("/v1/credit-checks", headers=gov.headers, json={
        "subject": subject, "business_type": "permit_issue"}))
    await keep("officer: list entry", await client.post("/v1/admin/lists", headers=officer.headers, json={
        "list_code": "dishonest_executee", "subject": subject, "reason": "测试"}))
    await keep("officer: lists", await client.get("/v1/admin/lists", headers=officer.headers))
    return citizen, answers


async def test_answers_to_non_subjects_carry_no_identifier_or_internal_id(client, ctx) -> None:
    citizen, answers = await _answers_to_others(client, ctx)
    for label, body in answers.items():
        assert_nothing_the_caller_may_not_see(label, body, citizen)
    # … while the subject's own export does carry them, unmasked (the control: the walk would see them)
    export = (await client.get("/v1/me/export", headers=citizen.headers)).text
    assert citizen.person.id_number in export


async def test_partners_see_exactly_what_their_scopes_allow(client, ctx) -> None:
    _, answers = await _answers_to_others(client, ctx)
    envelope = {"authorization_id", "open_id", "as_of", "ledger_seq"}
    assert set(answers["bank: tier-only query"]) == envelope | {"tier"}
    assert set(answers["bank: full query"]) == envelope | {"tier", "score_band", "score", "dimensions", "reasons"}
    assert set(answers["bank: threshold check"]) == {"transaction_id", "authorization_id", "admitted", "checked_at",
                                                     "ledger_seq"}
    verify = answers["merchant: verify"]
    assert not SCORE_KEYS & {key for _, key, _ in _walk(verify)}, verify
    assert verify["masked_name"] != "看客"
    check = answers["department: credit check"]
    assert not SCORE_KEYS & {key for _, key, _ in _walk(check)}, check
