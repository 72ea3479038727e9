"""OWASP API1 (broken object-level authorization): every route that names a subject's object by id.

Another subject of the same role — a second citizen, enterprise member, bank, merchant or department —
gets 404 with the object's own `*_not_found` code, exactly what a made-up id gets (no existence
oracle), and the owner's view of the object is unchanged afterwards. `test_every_id_route_is_covered`
takes the list of id-bearing routes from the running app (path parameters, and `*_id` / `uscc` fields
of request bodies), so a new one fails until it has a probe here or a stated reason why it names
nothing a subject owns.
"""

from __future__ import annotations

import secrets
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar import Litestar

from credit.tables import CreditCheck
from tests.factories import (
    Citizen,
    Session,
    add_record,
    authorization_for,
    bound_citizen,
    operator_session,
    partner_session,
)
from tests.lending_factories import (
    OwnedEnterprise,
    add_operator,
    bank_session,
    enterprise_authorization,
    grade_a_enterprise,
    owned_enterprise,
    post_demand,
    publish_product,
)
from tests.scenario_factories import Merchant, admin_benefit, merchant_session, verification_for

Headers = dict[str, str]


def _in_a_week() -> str:
    return (datetime.now(UTC) + timedelta(days=7)).isoformat()


@dataclass
class World:
    """Two of each kind of subject; every object below belongs to the first ("x") of its kind."""

    alice: Citizen  # owns a record, a pending and an active authorization from bank_x
    bob: Citizen  # another citizen; also owns enterprise `ent_y`
    carol: Citizen  # merchant_x's customer: a redemption and a credit order
    ent_x: OwnedEnterprise
    ent_y: OwnedEnterprise
    bank_x: Session
    bank_y: Session
    merchant_x: Merchant
    merchant_y: Merchant
    gov_x: Session
    gov_y: Session
    ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def world(client, ctx) -> World:  # type: ignore[no-untyped-def]
    alice = await bound_citizen(client, ctx, name="甲某")
    carol = await bound_citizen(client, ctx, name="丙某")
    ent_x = await grade_a_enterprise(client, ctx, owner_name="企甲")
    ent_y = await owned_enterprise(client, ctx, owner_name="乙某")
    _, bank_x = await bank_session(client, name="X行")
    _, bank_y = await bank_session(client, name="Y行")
    _, _, gov_x = await partner_session(client, kind="government", name="X局")
    _, _, gov_y = await partner_session(client, kind="government", name="Y局")
    officer = await operator_session(client)
    scenario = f"b{secrets.token_hex(4)}"
    r = await client.post("/v1/admin/scenarios", headers=officer.headers, json={"code": scenario, "name": "越权测试"})
    assert r.status_code == 201, r.text
    merchant_x = await merchant_session(client, scenario, name="X店")
    merchant_y = await merchant_session(client, scenario, name="Y店")
    world = World(alice=alice, bob=ent_y.owner, carol=carol, ent_x=ent_x, ent_y=ent_y, bank_x=bank_x,
                  bank_y=bank_y, merchant_x=merchant_x, merchant_y=merchant_y, gov_x=gov_x, gov_y=gov_y)
    ids = world.ids

    ids["record"] = await add_record(ctx, alice.person)
    ids["pending"] = await authorization_for(client, bank_x, alice, approve=False)
    ids["active"] = await authorization_for(client, bank_x, alice, scopes=["tier", "score"])
    _, ids["member"] = await add_operator(client, ctx, ent_x, name="甲经办")
    ids["ent_pending"] = await enterprise_authorization(client, bank_x, ent_x, approve=False)
    ids["product"] = (await publish_product(client, bank_x))["id"]
    ids["demand"] = (await post_demand(client, ent_x))["id"]
    submitted = await client.post(f"/v1/lending/demands/{ids['demand']}/submit", headers=ent_x.headers,
                                  json={"product_ids": [ids["product"]], "consent": True})
    assert submitted.status_code == 200, submitted.text
    application = submitted.json()["applications"][0]
    ids["application"], ids["portrait_authorization"] = application["id"], application["authorization_id"]

    discount = await admin_benefit(client, officer=officer, scenario=scenario)
    await admin_benefit(client, officer=officer, scenario=scenario, kind="deposit_waiver", value=50_000)
    ids["verification_spare"] = (await verification_for(client, merchant_x, carol))["verification_id"]
    redeemed_with = (await verification_for(client, merchant_x, carol))["verification_id"]
    ids["redeem_key"], ids["benefit"], ids["redeemed_with"] = f"k-{secrets.token_hex(6)}", discount["id"], redeemed_with
    r = await client.post("/v1/benefits/redeem", headers={**merchant_x.headers, "Idempotency-Key": ids["redeem_key"]},
                          json={"verification_id": redeemed_with, "benefit_id": discount["id"]})
    assert r.status_code == 201, r.text
    ids["redemption"] = r.json()["id"]
    order_with = (await verification_for(client, merchant_x, carol))["verification_id"]
    r = await client.post("/v1/credit-orders", headers=merchant_x.headers, json={
        "verification_id": order_with, "kind": "deposit_free", "amount_fen": 10_000,
        "merchant_order_no": f"X{secrets.token_hex(4)}", "due_at": _in_a_week()})
    assert r.status_code == 201, r.text
    ids["order"] = r.json()["id"]

    r = await client.post("/v1/credit-checks", headers=gov_x.headers, json={
        "subject": {"kind": "person", "id_number": alice.person.id_number, "name": alice.person.name},
        "business_type": "permit_issue"})
    assert r.status_code == 201, r.text
    ids["check"] = r.json()["id"]
    ids["score_transaction"] = f"tx-{secrets.token_hex(6)}"
    r = await client.post("/v1/scores/check", headers=bank_x.headers, json={
        "authorization_id": ids["active"], "threshold": 1, "transaction_id": ids["score_transaction"]})
    assert r.status_code == 200, r.text
    deliveries = (await client.get("/v1/webhooks/deliveries", headers=bank_x.headers)).json()["items"]
    assert deliveries, "bank X should have been notified of the authorization decisions"
    ids["event"] = deliveries[0]["id"]
    return world


@dataclass(frozen=True)
class Probe:
    """One attempt on an object of "x" by its "y" peer, and where the owner looks to see it untouched."""

    attacker: Headers
    method: str
    url: str
    code: str
    json: Any = None
    params: dict[str, str] | None = None
    owner_view: tuple[Headers, str] | None = None
    headers: Headers = field(default_factory=dict)


def _me(w: World) -> tuple[Headers, str]:
    return w.alice.headers, "/v1/me/authorizations"


def _consent(w: World) -> tuple[Headers, str]:
    return w.ent_x.headers, f"/v1/enterprises/{w.ent_x.uscc}/authorizations"


def _members(w: World) -> tuple[Headers, str]:
    return w.ent_x.headers, f"/v1/enterprises/{w.ent_x.uscc}/members"


def _order(w: World) -> tuple[Headers, str]:
    return w.merchant_x.headers, f"/v1/credit-orders/{w.ids['order']}"


def _redemptions(w: World) -> tuple[Headers, str]:
    return w.carol.headers, "/v1/me/redemptions"


def _ent(w: World, tail: str = "") -> str:
    return f"/v1/enterprises/{w.ent_x.uscc}{tail}"


_GONE = "enterprise_not_found"
_DEMAND = {"amount_fen": 100_000_000, "term_months": 12, "purpose": "采购", "guarantee_offered": "credit"}

# One probe per (route, way in); the name starts with the route ("METHOD /template") it covers.
PROBES: dict[str, Callable[[World], Probe]] = {
    # a citizen's consent and records
    "POST /v1/me/authorizations/{authorization_id}/approve": lambda w: Probe(
        w.bob.headers, "POST", f"/v1/me/authorizations/{w.ids['pending']}/approve", "authorization_not_found",
        owner_view=_me(w)),
    "POST /v1/me/authorizations/{authorization_id}/reject": lambda w: Probe(
        w.bob.headers, "POST", f"/v1/me/authorizations/{w.ids['pending']}/reject", "authorization_not_found",
        json={}, owner_view=_me(w)),
    "POST /v1/me/authorizations/{authorization_id}/revoke": lambda w: Probe(
        w.bob.headers, "POST", f"/v1/me/authorizations/{w.ids['active']}/revoke", "authorization_not_found",
        json={}, owner_view=_me(w)),
    "POST /v1/me/objections": lambda w: Probe(
        w.bob.headers, "POST", "/v1/me/objections", "record_not_found",
        json={"record_id": w.ids["record"], "reason": "这条记录与我无关"},
        owner_view=(w.alice.headers, "/v1/me/records")),
    "POST /v1/me/repairs": lambda w: Probe(
        w.bob.headers, "POST", "/v1/me/repairs", "record_not_found",
        json={"record_id": w.ids["record"], "statement": "已经履行完毕"},
        owner_view=(w.alice.headers, "/v1/me/records")),
    # an enterprise's members, consent, portrait and demands (bob owns enterprise y, not x)
    "GET /v1/enterprises/{uscc}/members": lambda w: Probe(w.bob.headers, "GET", _ent(w, "/members"), _GONE),
    "POST /v1/enterprises/{uscc}/members": lambda w: Probe(
        w.bob.headers, "POST", _ent(w, "/members"), _GONE, owner_view=_members(w),
        json={"name": w.alice.person.name, "id_number": w.alice.person.id_number}),
    "DELETE /v1/enterprises/{uscc}/members/{member_id}": lambda w: Probe(
        w.bob.headers, "DELETE", _ent(w, f"/members/{w.ids['member']}"), _GONE, owner_view=_members(w)),
    "DELETE /v1/enterprises/{uscc}/members/{member_id} (x's member through y)": lambda w: Probe(
        w.bob.headers, "DELETE", f"/v1/enterprises/{w.ent_y.uscc}/members/{w.ids['member']}", "member_not_found",
        owner_view=_members(w)),
    "GET /v1/enterprises/{uscc}/access-log": lambda w: Probe(w.bob.headers, "GET", _ent(w, "/access-log"), _GONE),
    "GET /v1/enterprises/{uscc}/authorizations": lambda w: Probe(
        w.bob.headers, "GET", _ent(w, "/authorizations"), _GONE),
    "GET /v1/enterprises/{uscc}/portrait": lambda w: Probe(w.bob.headers, "GET", _ent(w, "/portrait"), _GONE),
    "GET /v1/enterprises/{uscc}/portrait/versions": lambda w: Probe(
        w.bob.headers, "GET", _ent(w, "/portrait/versions"), _GONE),
    "POST /v1/enterprises/{uscc}/authorizations/{authorization_id}/approve": lambda w: Probe(
        w.bob.headers, "POST", _ent(w, f"/authorizations/{w.ids['ent_pending']}/approve"), _GONE,
        owner_view=_consent(w)),
    "POST /v1/enterprises/{uscc}/authorizations/{authorization_id}/reject": lambda w: Probe(
        w.bob.headers, "POST", _ent(w, f"/authorizations/{w.ids['ent_pending']}/reject"), _GONE, json={},
        owner_view=_consent(w)),
    "POST /v1/enterprises/{uscc}/authorizations/{authorization_id}/revoke": lambda w: Probe(
        w.bob.headers, "POST", _ent(w, f"/authorizations/{w.ids['ent_pending']}/revoke"), _GONE, json={},
        owner_view=_consent(w)),
    "POST /v1/enterprises/{uscc}/authorizations/{authorization_id}/approve (x's request through y)": lambda w: Probe(
        w.bob.headers, "POST", f"/v1/enterprises/{w.ent_y.uscc}/authorizations/{w.ids['ent_pending']}/approve",
        "authorization_not_found", owner_view=_consent(w)),
    "GET /v1/lending/demands": lambda w: Probe(
        w.bob.headers, "GET", "/v1/lending/demands", _GONE, params={"uscc": w.ent_x.uscc}),
    "POST /v1/lending/demands": lambda w: Probe(
        w.bob.headers, "POST", "/v1/lending/demands", _GONE, json={"uscc": w.ent_x.uscc, **_DEMAND},
        owner_view=(w.ent_x.headers, f"/v1/lending/demands?uscc={w.ent_x.uscc}")),
    "GET /v1/lending/demands/{demand_id}": lambda w: Probe(
        w.bob.headers, "GET", f"/v1/lending/demands/{w.ids['demand']}", "demand_not_found"),
    "POST /v1/lending/demands/{demand_id}/submit": lambda w: Probe(
        w.bob.headers, "POST", f"/v1/lending/demands/{w.ids['demand']}/submit", "demand_not_found",
        json={"product_ids": [w.ids["product"]], "consent": True},
        owner_view=(w.ent_x.headers, f"/v1/lending/demands/{w.ids['demand']}")),
    # banks
    "GET /v1/authorizations/{authorization_id}": lambda w: Probe(
        w.bank_y.headers, "GET", f"/v1/authorizations/{w.ids['active']}", "authorization_not_found"),
    "DELETE /v1/authorizations/{authorization_id}": lambda w: Probe(
        w.bank_y.headers, "DELETE", f"/v1/authorizations/{w.ids['active']}", "authorization_not_found",
        owner_view=(w.bank_x.headers, f"/v1/authorizations/{w.ids['active']}")),
    "POST /v1/scores/query": lambda w: Probe(
        w.bank_y.headers, "POST", "/v1/scores/query", "authorization_not_found",
        json={"authorization_id": w.ids["active"]}),
    "POST /v1/scores/check": lambda w: Probe(
        w.bank_y.headers, "POST", "/v1/scores/check", "authorization_not_found",
        json={"authorization_id": w.ids["active"], "threshold": 1, "transaction_id": f"tx-{secrets.token_hex(4)}"}),
    "POST /v1/scores/check (replaying x's transaction id)": lambda w: Probe(
        w.bank_y.headers, "POST", "/v1/scores/check", "authorization_not_found",
        json={"authorization_id": w.ids["active"], "threshold": 1, "transaction_id": w.ids["score_transaction"]}),
    "GET /v1/portraits/{uscc}": lambda w: Probe(
        w.bank_y.headers, "GET", f"/v1/portraits/{w.ent_x.uscc}", "authorization_not_found",
        params={"authorization_id": w.ids["portrait_authorization"]}),
    "PATCH /v1/lending/products/{product_id}": lambda w: Probe(
        w.bank_y.headers, "PATCH", f"/v1/lending/products/{w.ids['product']}", "product_not_found",
        json={"status": "paused"}, owner_view=(w.bank_x.headers, f"/v1/lending/products/{w.ids['product']}")),
    "GET /v1/lending/applications/{application_id}": lambda w: Probe(
        w.bank_y.headers, "GET", f"/v1/lending/applications/{w.ids['application']}", "application_not_found"),
    "POST /v1/lending/applications/{application_id}/decisions": lambda w: Probe(
        w.bank_y.headers, "POST", f"/v1/lending/applications/{w.ids['application']}/decisions",
        "application_not_found", json={"status": "rejected", "reason": "抢先拒绝"},
        owner_view=(w.bank_x.headers, f"/v1/lending/applications/{w.ids['application']}")),
    "POST /v1/webhooks/deliveries/{event_id}/retry": lambda w: Probe(
        w.bank_y.headers, "POST", f"/v1/webhooks/deliveries/{w.ids['event']}/retry", "delivery_not_found",
        owner_view=(w.bank_x.headers, "/v1/webhooks/deliveries")),
    # merchants
    "POST /v1/benefits/redeem": lambda w: Probe(
        w.merchant_y.headers, "POST", "/v1/benefits/redeem", "verification_not_found", owner_view=_redemptions(w),
        json={"verification_id": w.ids["verification_spare"], "benefit_id": w.ids["benefit"]},
        headers={"Idempotency-Key": f"k-{secrets.token_hex(6)}"}),
    "POST /v1/benefits/redeem (replaying x's Idempotency-Key and body)": lambda w: Probe(
        w.merchant_y.headers, "POST", "/v1/benefits/redeem", "verification_not_found", owner_view=_redemptions(w),
        json={"verification_id": w.ids["redeemed_with"], "benefit_id": w.ids["benefit"]},
        headers={"Idempotency-Key": w.ids["redeem_key"]}),
    "GET /v1/benefits/redemptions/{redemption_id}": lambda w: Probe(
        w.merchant_y.headers, "GET", f"/v1/benefits/redemptions/{w.ids['redemption']}", "redemption_not_found"),
    "POST /v1/benefits/redemptions/{redemption_id}/cancel": lambda w: Probe(
        w.merchant_y.headers, "POST", f"/v1/benefits/redemptions/{w.ids['redemption']}/cancel",
        "redemption_not_found", owner_view=_redemptions(w)),
    "POST /v1/credit-orders": lambda w: Probe(
        w.merchant_y.headers, "POST", "/v1/credit-orders", "verification_not_found",
        owner_view=(w.carol.headers, "/v1/me/credit-orders"),
        json={"verification_id": w.ids["verification_spare"], "kind": "deposit_free", "amount_fen": 10_000,
              "merchant_order_no": f"Y{secrets.token_hex(4)}", "due_at": _in_a_week()}),
    "GET /v1/credit-orders/{order_id}": lambda w: Probe(
        w.merchant_y.headers, "GET", f"/v1/credit-orders/{w.ids['order']}", "credit_order_not_found"),
    **{f"POST /v1/credit-orders/{{order_id}}/{action}": (lambda w, action=action, body=body: Probe(
        w.merchant_y.headers, "POST", f"/v1/credit-orders/{w.ids['order']}/{action}", "credit_order_not_found",
        json=body, owner_view=_order(w)))
       for action, body in (("complete", None), ("cancel", None), ("settle", None),
                            ("default", {"amount_fen": 10_000, "reason": "未归还"}))},
    # departments
    "POST /v1/credit-checks/{check_id}/feedback": lambda w: Probe(
        w.gov_y.headers, "POST", f"/v1/credit-checks/{w.ids['check']}/feedback", "credit_check_not_found",
        json={"measure_code": "anything"}),
}

# Routes whose ids name nothing a subject owns, and why (reviewed like the probes above).
NOT_SUBJECT_OWNED = {
    "GET /schema/{path}": "documentation files",
    "GET /schema/assets/{file_path}": "Swagger UI's static files, the same for everyone",
    "GET /authorize/assets/{file_path}": "the consent page's stylesheet, the same for everyone",
    "POST /v1/auth/token client_id": "the caller's own credentials (a wrong secret and an unknown client look alike)",
    "GET /v1/lending/products/{product_id}": "the public catalog (金融超市)",
    "POST /v1/lending/demands/{demand_id}/submit product_ids": "products are the public catalog",
    "POST /v1/benefits/redeem benefit_id": "benefits are the public catalog (GET /v1/scenarios)",
    "POST /v1/enterprises uscc": "binding is checked against the registry's legal representative",
    "POST /v1/scores/check transaction_id": "the partner's own idempotency id, scoped to the partner (probed above)",
    "POST /v1/me/notices/{notice_id}/read": ("looked up within the caller's own notices only; another citizen's notice "
                                             "is 404 and stays unread (tests/partners/test_notices.py)"),
    "POST /v1/me/partners/{client_id}/revoke-all": ("a partner's id names no citizen's data: the caller's own "
                                                    "authorizations with that partner are ended, nobody else's "
                                                    "(tests/credit/test_consent_dashboard.py)"),
}
_ADMIN = "/v1/admin/"  # operators act on every subject by role (function-level matrix), not by ownership


def _id_fields(annotation: Any) -> list[str]:
    """`*_id`, `*_ids` and `uscc` fields of the request body's Structs (top level)."""
    names: list[str] = []
    for tp in (annotation, *typing.get_args(annotation)):
        inner = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp
        for candidate in (inner, *typing.get_args(inner)):
            if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
                names += [f.name for f in msgspec.structs.fields(candidate)
                          if f.name.endswith(("_id", "_ids")) or f.name == "uscc"]
    return sorted(set(names))


def id_routes(app: Litestar) -> set[str]:
    """Every way an id comes in: "METHOD /template" for path parameters, "METHOD /template field" for bodies."""
    found: set[str] = set()
    for route in app.routes:
        if route.path_format.startswith(_ADMIN):
            continue
        for handler in getattr(route, "route_handlers", ()):
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                key = f"{method} {route.path_format}"
                if "{" in route.path_format:
                    found.add(key)
                data = handler.parsed_fn_signature.parameters.get("data")
                found.update(f"{key} {name}" for name in (_id_fields(data.annotation) if data is not None else ()))
    return found


def test_every_id_route_is_covered(app: Litestar) -> None:
    probed = {name.split(" (")[0] for name in PROBES}
    uncovered = sorted(key for key in id_routes(app)
                       if key not in NOT_SUBJECT_OWNED and key not in probed
                       and " ".join(key.split(" ")[:2]) not in probed)
    assert uncovered == [], "id-bearing routes without a BOLA probe or a reason in NOT_SUBJECT_OWNED"


async def _view(client: Any, view: tuple[Headers, str] | None) -> Any:
    if view is None:
        return None
    r = await client.get(view[1], headers=view[0])
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("name", list(PROBES))
async def test_another_subject_gets_404_and_changes_nothing(client, world: World, name: str) -> None:
    probe = PROBES[name](world)
    before = await _view(client, probe.owner_view)
    kwargs: dict[str, Any] = {"headers": {**probe.attacker, **probe.headers}, "params": probe.params}
    if probe.json is not None:
        kwargs["json"] = probe.json
    r = await client.request(probe.method, probe.url, **kwargs)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == probe.code
    if probe.owner_view is not None:
        assert await _view(client, probe.owner_view) == before


async def test_a_made_up_id_reads_exactly_like_someone_elses(client, world: World) -> None:
    """No existence oracle: swapping the real id for one that never existed changes nothing in the answer."""
    for name, build in PROBES.items():
        probe = build(world)
        if probe.method != "GET":
            continue
        for real in (v for v in world.ids.values() if v in probe.url or v in (probe.params or {}).values()):
            fake_url = probe.url.replace(real, real[:5] + "zzzzzzzzzz")
            fake_params = {k: v.replace(real, real[:5] + "zzzzzzzzzz") for k, v in (probe.params or {}).items()}
            a = await client.get(probe.url, headers=probe.attacker, params=probe.params)
            b = await client.get(fake_url, headers=probe.attacker, params=fake_params)
            assert (a.status_code, a.json()["code"]) == (b.status_code, b.json()["code"]), name


async def test_credit_check_feedback_by_another_department_records_nothing(client, world: World) -> None:
    row = await CreditCheck.select(CreditCheck.applied_measure).where(
        CreditCheck.public_id == world.ids["check"]).first()
    assert row is not None
    assert row["applied_measure"] is None
