"""OWASP API5 (broken function-level authorization): every route × every role, as one reviewed table.

The route list comes from the running app, so a route added without a row here fails
`test_every_route_has_a_row` and cannot ship unreviewed; a row left behind for a route that is gone
fails it too. Each cell is what the guard must answer that caller:

    ok   allowed: the guard lets the call through (any answer but 401/403; the request is otherwise
         built to do nothing: unknown ids, empty or invalid bodies)
    401  no token: 401 `missing_token`
    wp   403 `wrong_principal` (a citizen on a partner route, a partner on an operator route, …)
    sc   403 `insufficient_scope` (a partner whose kind is not granted the route's scope)
    ro   403 `insufficient_role` (an operator without the route's role)
    idn  403 `identity_not_bound` (a citizen who has not bound an identity asking for credit data)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar

from tests.factories import bound_citizen, citizen_login, operator_session, partner_session, uscc_number
from tests.scenario_factories import merchant_session

ROLES = ("anon", "unbound", "citizen", "bank", "merchant", "gov", "source", "peer", "padmin", "officer", "auditor")

# Columns: anonymous; citizen without a bound identity; bound citizen; partners by kind (bank, merchant,
# government department, data source, peer city), each with every scope its kind may hold; operators by
# role (partner_admin, officer, auditor).
MATRIX: dict[tuple[str, str], str] = {
    #                                                          anon unb cit bank mer gov src peer padm off aud
    ("GET", "/.well-known/jwks.json"):                         "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/.well-known/oauth-authorization-server"):        "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/health/live"):                                   "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/health/ready"):                                  "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/metrics"):                                       "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/schema"):                                        "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/schema/assets/{file_path}"):                     "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/schema/oauth2-redirect.html"):                   "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/schema/openapi.json"):                           "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/schema/swagger"):                                "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/schema/{path}"):                                 "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    # the consent page (HTML): no bearer token at all; its own cookie session and CSRF token (test_consent_page.py)
    ("GET", "/authorize"):                                     "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/authorize/assets/{file_path}"):                  "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/authorize/code"):                               "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/authorize/change-phone"):                       "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/authorize/login"):                              "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/authorize/logout"):                             "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/authorize/identity"):                           "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/authorize/approve"):                            "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/authorize/refuse"):                             "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    # auth and the public catalogs
    ("POST", "/v1/auth/otp"):                                  "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/v1/auth/token"):                                "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/v1/auth/revoke"):                               "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("POST", "/v1/oauth/par"):                                 "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/v1/ledger/checkpoints/latest"):                  "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/v1/purposes"):                                   "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/v1/scenarios"):                                  "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/v1/lending/products"):                           "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/v1/lending/products/{product_id}"):              "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    ("GET", "/v1/lending/stats"):                              "ok  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok",
    # the citizen's own account and credit data
    ("GET", "/v1/me"):                                         "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/identity"):                               "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    # the account itself, bound or not: notices and how they reach me, closing the account (a body without the
    # closing code is refused before anything happens: 422 `code_required`)
    ("GET", "/v1/me/notices"):                                 "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/notices/{notice_id}/read"):               "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/notices/read-all"):                       "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/notice-preferences"):                      "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("PUT", "/v1/me/notice-preferences"):                      "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/account/close/code"):                     "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/account/close"):                          "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/partners/{client_id}/revoke-all"):        "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/score"):                                   "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/score/history"):                           "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/records"):                                 "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/access-log"):                              "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/export"):                                  "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/authorizations"):                          "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/authorizations/{authorization_id}/approve"): "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/authorizations/{authorization_id}/reject"): "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/authorizations/{authorization_id}/revoke"): "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/objections"):                              "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/objections"):                             "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/repairs"):                                 "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/repairs"):                                "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/benefits"):                                "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/me/benefit-codes"):                          "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/redemptions"):                             "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/credit-line"):                             "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/credit-orders"):                           "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/me/credit-passport"):                         "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    # enterprise members (a citizen acting for an enterprise; not being a member is a 404, not a 403)
    ("GET", "/v1/enterprises"):                                "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/enterprises"):                               "401 idn ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/enterprises/{uscc}/members"):                 "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/enterprises/{uscc}/members"):                "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("DELETE", "/v1/enterprises/{uscc}/members/{member_id}"):  "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/enterprises/{uscc}/access-log"):              "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/enterprises/{uscc}/authorizations"):          "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/enterprises/{uscc}/authorizations/{authorization_id}/approve"):
                                                               "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/enterprises/{uscc}/authorizations/{authorization_id}/reject"):
                                                               "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/enterprises/{uscc}/authorizations/{authorization_id}/revoke"):
                                                               "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/enterprises/{uscc}/portrait"):                "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/enterprises/{uscc}/portrait/versions"):       "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/lending/demands"):                            "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/lending/demands"):                           "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("GET", "/v1/lending/demands/{demand_id}"):                "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    ("POST", "/v1/lending/demands/{demand_id}/submit"):        "401 ok  ok  wp  wp  wp  wp  wp  wp  wp  wp",
    # partners, by scope
    ("GET", "/v1/partners/me"):                                "401 wp  wp  ok  ok  ok  ok  ok  wp  wp  wp",
    ("GET", "/v1/partners/me/usage"):                          "401 wp  wp  ok  ok  ok  ok  ok  wp  wp  wp",
    ("POST", "/v1/authorizations"):                            "401 wp  wp  ok  ok  ok  sc  sc  wp  wp  wp",
    ("GET", "/v1/authorizations/{authorization_id}"):          "401 wp  wp  ok  ok  ok  sc  sc  wp  wp  wp",
    ("DELETE", "/v1/authorizations/{authorization_id}"):       "401 wp  wp  ok  ok  ok  sc  sc  wp  wp  wp",
    ("POST", "/v1/scores/query"):                              "401 wp  wp  ok  sc  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/scores/check"):                              "401 wp  wp  ok  ok  ok  sc  sc  wp  wp  wp",
    ("GET", "/v1/portraits/{uscc}"):                           "401 wp  wp  ok  sc  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/lending/products"):                          "401 wp  wp  ok  sc  sc  sc  sc  wp  wp  wp",
    ("GET", "/v1/lending/products/mine"):                      "401 wp  wp  ok  sc  sc  sc  sc  wp  wp  wp",
    ("PATCH", "/v1/lending/products/{product_id}"):            "401 wp  wp  ok  sc  sc  sc  sc  wp  wp  wp",
    ("GET", "/v1/lending/applications"):                       "401 wp  wp  ok  sc  sc  sc  sc  wp  wp  wp",
    ("GET", "/v1/lending/applications/{application_id}"):      "401 wp  wp  ok  sc  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/lending/applications/{application_id}/decisions"): "401 wp  wp  ok  sc  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/benefits/verify"):                           "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/benefits/redeem"):                           "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/benefits/redemptions/{redemption_id}/cancel"): "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("GET", "/v1/benefits/redemptions"):                       "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("GET", "/v1/benefits/redemptions/{redemption_id}"):       "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("GET", "/v1/credit-orders"):                              "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/credit-orders"):                             "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("GET", "/v1/credit-orders/{order_id}"):                   "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/credit-orders/{order_id}/complete"):         "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/credit-orders/{order_id}/cancel"):           "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/credit-orders/{order_id}/default"):          "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/credit-orders/{order_id}/settle"):           "401 wp  wp  sc  ok  sc  sc  sc  wp  wp  wp",
    ("POST", "/v1/federation/passports/verify"):               "401 wp  wp  sc  ok  sc  sc  ok  wp  wp  wp",
    ("POST", "/v1/credit-checks"):                             "401 wp  wp  sc  sc  ok  sc  sc  wp  wp  wp",
    ("GET", "/v1/credit-checks/business-types"):               "401 wp  wp  sc  sc  ok  sc  sc  wp  wp  wp",
    ("POST", "/v1/credit-checks/{check_id}/feedback"):         "401 wp  wp  sc  sc  ok  sc  sc  wp  wp  wp",
    ("POST", "/v1/records/batch"):                             "401 wp  wp  sc  sc  sc  ok  sc  wp  wp  wp",
    ("GET", "/v1/webhooks/deliveries"):                        "401 wp  wp  ok  ok  ok  ok  ok  wp  wp  wp",
    ("POST", "/v1/webhooks/deliveries/{event_id}/retry"):      "401 wp  wp  ok  ok  ok  ok  ok  wp  wp  wp",
    # operators, by role: the partner registry is partner_admin's; the rest officer's; auditors only read
    ("GET", "/v1/admin/partners"):                             "401 wp  wp  wp  wp  wp  wp  wp  ok  ok  ok",
    ("POST", "/v1/admin/partners"):                            "401 wp  wp  wp  wp  wp  wp  wp  ok  ro  ro",
    ("GET", "/v1/admin/partners/{client_id}"):                 "401 wp  wp  wp  wp  wp  wp  wp  ok  ok  ok",
    ("PATCH", "/v1/admin/partners/{client_id}"):               "401 wp  wp  wp  wp  wp  wp  wp  ok  ro  ro",
    ("PUT", "/v1/admin/partners/{client_id}/jwks"):            "401 wp  wp  wp  wp  wp  wp  wp  ok  ro  ro",
    ("POST", "/v1/admin/partners/{client_id}/rotate-secret"):  "401 wp  wp  wp  wp  wp  wp  wp  ok  ro  ro",
    ("GET", "/v1/admin/partners/{client_id}/usage"):           "401 wp  wp  wp  wp  wp  wp  wp  ok  ok  ok",
    ("GET", "/v1/admin/objections"):                           "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ok",
    ("POST", "/v1/admin/objections/{objection_id}/decide"):    "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("GET", "/v1/admin/repairs"):                              "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ok",
    ("POST", "/v1/admin/repairs/{repair_id}/decide"):          "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("GET", "/v1/admin/measures"):                             "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ok",
    ("POST", "/v1/admin/measures"):                            "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("PATCH", "/v1/admin/measures/{code}"):                    "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("GET", "/v1/admin/lists"):                                "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ok",
    ("POST", "/v1/admin/lists"):                               "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("POST", "/v1/admin/lists/{entry_id}/delist"):             "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("GET", "/v1/admin/scenarios"):                            "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ok",
    ("POST", "/v1/admin/scenarios"):                           "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("PATCH", "/v1/admin/scenarios/{code}"):                   "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("GET", "/v1/admin/benefits"):                             "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ok",
    ("POST", "/v1/admin/benefits"):                            "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("PATCH", "/v1/admin/benefits/{benefit_id}"):              "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ro",
    ("GET", "/v1/admin/stats/daily"):                          "401 wp  wp  wp  wp  wp  wp  wp  ro  ok  ok",
}

DENIALS = {"401": (401, "missing_token"), "wp": (403, "wrong_principal"), "sc": (403, "insufficient_scope"),
           "ro": (403, "insufficient_role"), "idn": (403, "identity_not_bound")}

# Bodies valid enough to reach the handler's own checks (so an unbound citizen meets `identity_not_bound`
# rather than a 422), yet naming nothing that exists: an allowed call changes nothing. Other writes get `{}`.
_RECORD = {"record_id": "rec_owasp_nothing", "reason": "这条记录不属于我", "statement": "已按期履行"}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/me/objections"): {k: _RECORD[k] for k in ("record_id", "reason")},
    ("POST", "/v1/me/repairs"): {k: _RECORD[k] for k in ("record_id", "statement")},
    ("POST", "/v1/me/benefit-codes"): None,
    ("POST", "/v1/enterprises"): {"uscc": uscc_number()},
    ("POST", "/v1/me/authorizations/{authorization_id}/approve"): None,
}
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/v1/lending/demands"): {"uscc": uscc_number()},
    ("GET", "/v1/portraits/{uscc}"): {"authorization_id": "authz_owasp_nothing"},
}
_WRITES = ("POST", "PUT", "PATCH")


def app_routes(app: Litestar) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves (automatic OPTIONS/HEAD answers aside)."""
    return {(method, route.path_format)
            for route in app.routes for handler in getattr(route, "route_handlers", ())
            for method in handler.http_methods if method not in ("OPTIONS", "HEAD")}


def _concrete(path: str) -> str:
    path = path.replace("{uscc}", uscc_number()).replace("{path}", "openapi.yaml")
    return re.sub(r"\{[a-z_]+\}", "owasp_nothing", path)


@dataclass
class Callers:
    headers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
async def callers(client, ctx) -> Callers:  # type: ignore[no-untyped-def]
    headers: dict[str, dict[str, str]] = {"anon": {}, "unbound": (await citizen_login(client)).headers,
                                          "citizen": (await bound_citizen(client, ctx, name="矩阵")).headers}
    for role, kind in (("bank", "bank"), ("gov", "government"), ("source", "data_source"), ("peer", "city_peer")):
        headers[role] = (await partner_session(client, kind=kind))[2].headers
    headers["merchant"] = (await merchant_session(client)).headers
    for role, operator_role in (("padmin", "partner_admin"), ("officer", "officer"), ("auditor", "auditor")):
        headers[role] = (await operator_session(client, role=operator_role)).headers
    return Callers(headers=headers)


def test_every_route_has_a_row(app: Litestar) -> None:
    served = app_routes(app)
    assert sorted(served - MATRIX.keys()) == [], "routes without a reviewed row in MATRIX"
    assert sorted(MATRIX.keys() - served) == [], "rows for routes the app no longer serves"
    for key, row in MATRIX.items():
        cells = row.split()
        assert len(cells) == len(ROLES), key
        assert set(cells) <= {"ok", *DENIALS}, key


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX, key=lambda k: (k[1], k[0])),
                         ids=[f"{m} {p}" for m, p in sorted(MATRIX, key=lambda k: (k[1], k[0]))])
async def test_route_answers_each_role_as_the_matrix_says(client, callers: Callers, method: str, path: str) -> None:
    key = (method, path)
    body = BODIES.get(key, {}) if method in _WRITES else None
    url = _concrete(path)
    wrong = []
    for role, expected in zip(ROLES, MATRIX[key].split(), strict=True):
        kwargs: dict[str, Any] = {"headers": callers.headers[role], "params": QUERIES.get(key)}
        if body is not None:
            kwargs["json"] = body
        r = await client.request(method, url, **kwargs)
        problem = r.headers.get("content-type", "").startswith("application/problem+json")
        code = r.json().get("code") if problem else None
        if expected == "ok":
            if r.status_code in (401, 403) or r.status_code >= 500:
                wrong.append(f"{role}: expected the guard to allow, got {r.status_code} {code}")
        elif (r.status_code, code) != DENIALS[expected] or not problem:
            wrong.append(f"{role}: expected {DENIALS[expected]}, got {r.status_code} {code}")
    assert wrong == [], f"{method} {path}"
