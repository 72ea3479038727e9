"""Test helpers for 信易+: merchants of a scenario, benefit codes, verifications and operator-made benefits.

Used by the benefit tests and the credit-order tests. Everything goes through HTTP except creating the
merchant partner itself (as `xinyi partner create` would).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from partners.services import create_partner
from partners.tables import Partner
from scenarios.catalog import seed_default_scenarios
from tests.factories import Citizen, Session, operator_session


@dataclass
class Merchant:
    client_id: str
    name: str
    scenario: str
    session: Session

    @property
    def headers(self) -> dict[str, str]:
        return self.session.headers


async def merchant_session(client: Any, scenario: str = "travel", *, name: str | None = None,
                           scopes: list[str] | None = None, rate_limit_per_second: int = 0) -> Merchant:
    """A merchant partner serving `scenario`, logged in with client credentials.

    The default scenarios are seeded first (idempotent), so `scenario` may be any of travel, transit,
    rental, medical, lodging, reading. `rate_limit_per_second` lifts the partner's limit for load-like tests.
    """
    await seed_default_scenarios()
    name = name or f"商户{secrets.token_hex(3)}"
    issued = await create_partner(name=name, kind="merchant", scopes=scopes, scenario=scenario)
    if rate_limit_per_second:
        await Partner.update({Partner.rate_limit_per_second: rate_limit_per_second}).where(
            Partner.client_id == issued.client_id)
    token = await client.post("/v1/auth/token", json={
        "grant_type": "client_credentials", "client_id": issued.client_id, "client_secret": issued.client_secret})
    assert token.status_code == 200, token.text
    return Merchant(client_id=issued.client_id, name=name, scenario=scenario,
                    session=Session(phone="", access_token=token.json()["access_token"], refresh_token=None))


async def benefit_code(client: Any, citizen: Citizen, *, scenario: str | None = None) -> str:
    """A fresh single-use benefit code of a bound citizen (POST /v1/me/benefit-codes)."""
    r = await client.post("/v1/me/benefit-codes", headers=citizen.headers,
                          json={"scenario": scenario} if scenario else {})
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


async def verify_response(client: Any, merchant: Merchant, code: str, scenario: str | None = None) -> Any:
    """POST /v1/benefits/verify as `merchant`, returning the raw response (for refusal tests)."""
    return await client.post("/v1/benefits/verify", headers=merchant.headers,
                             json={"code": code, "scenario": scenario or merchant.scenario})


async def verify_code(client: Any, merchant: Merchant, code: str, scenario: str | None = None) -> dict[str, Any]:
    """Verify `code` at `merchant` (for its own scenario unless told otherwise); asserts success.

    Returns the answer: verification_id, expires_at, scenario, masked_name, benefits.
    """
    r = await verify_response(client, merchant, code, scenario)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def verification_for(client: Any, merchant: Merchant, citizen: Citizen) -> dict[str, Any]:
    """A new code of `citizen` verified at `merchant` in one step."""
    return await verify_code(client, merchant, await benefit_code(client, citizen))


async def admin_benefit(client: Any, *, officer: Session | None = None, scenario: str = "travel",
                        **rule: Any) -> dict[str, Any]:
    """Create a benefit through POST /v1/admin/benefits (defaults: 5% off, no threshold, unlimited)."""
    officer = officer or await operator_session(client)
    body = {"scenario": scenario, "name": rule.pop("name", f"测试权益{secrets.token_hex(2)}"),
            "kind": rule.pop("kind", "percent_discount"), "value": rule.pop("value", 5), **rule}
    r = await client.post("/v1/admin/benefits", headers=officer.headers, json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created
