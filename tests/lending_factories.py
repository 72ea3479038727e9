"""Test builders for 信易贷: registry enterprises with a legal representative, bound owners and operators,
data sources pushing enterprise records, and banks with an RSA encryption key.

Shared by the enterprise/portrait tests and the lending-market tests (append new helpers at the end).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from api.context import AppContext
from credit.identity import new_public_id
from credit.tables import Enterprise, Person
from tests.factories import (
    Citizen,
    RegistryEnterprise,
    Session,
    bound_citizen,
    partner_session,
    push_records,
    uscc_number,
)


async def registry_enterprise_of(ctx: AppContext, representative: Citizen | None, *, name: str | None = None,
                                 industry: str = "C", region_code: str = "330402",
                                 registered_on: date = date(2015, 6, 1),
                                 registered_capital_fen: int = 500_000_000) -> RegistryEnterprise:
    """Insert an enterprise into the registry with `representative` (a bound citizen) as 法定代表人."""
    while True:
        code = uscc_number(region_code)
        h = ctx.cipher.lookup_hash("uscc", code)
        if not await Enterprise.exists().where(Enterprise.uscc_hash == h):
            break
    person_pk = None
    if representative is not None:
        row = await Person.select(Person._meta.primary_key).where(
            Person.public_id == representative.person.public_id).first()
        assert row is not None
        person_pk = row["id"]
    public_id = new_public_id("ent")
    name = name or f"嘉兴{secrets.token_hex(3)}科技有限公司"
    await Enterprise.insert(Enterprise(
        public_id=public_id, name=name, uscc_hash=h, uscc_enc=ctx.cipher.encrypt("uscc", code), industry=industry,
        region_code=region_code, registered_on=registered_on, registered_capital_fen=registered_capital_fen,
        legal_representative=person_pk))
    return RegistryEnterprise(public_id=public_id, name=name, uscc=code)


@dataclass
class OwnedEnterprise:
    """An enterprise bound through `POST /v1/enterprises` by its legal representative (the owner)."""

    enterprise: RegistryEnterprise
    owner: Citizen

    @property
    def uscc(self) -> str:
        return self.enterprise.uscc

    @property
    def public_id(self) -> str:
        return self.enterprise.public_id

    @property
    def headers(self) -> dict[str, str]:
        return self.owner.headers


async def owned_enterprise(client: Any, ctx: AppContext, *, owner_name: str = "王法人", **registry: Any
                           ) -> OwnedEnterprise:
    """A bound citizen, an enterprise they represent, bound to them as owner (keyword args go to the registry)."""
    owner = await bound_citizen(client, ctx, name=owner_name)
    enterprise = await registry_enterprise_of(ctx, owner, **registry)
    r = await client.post("/v1/enterprises", headers=owner.headers, json={"uscc": enterprise.uscc})
    assert r.status_code == 201, r.text
    return OwnedEnterprise(enterprise=enterprise, owner=owner)


async def add_operator(client: Any, ctx: AppContext, owned: OwnedEnterprise, *, name: str = "李经办"
                       ) -> tuple[Citizen, str]:
    """A bound citizen added by the owner as 经办人; returns the citizen and the member id."""
    operator = await bound_citizen(client, ctx, name=name)
    r = await client.post(f"/v1/enterprises/{owned.uscc}/members", headers=owned.headers,
                          json={"name": name, "id_number": operator.person.id_number})
    assert r.status_code == 201, r.text
    return operator, str(r.json()["id"])


async def data_source(client: Any) -> Session:
    """A data source partner allowed to push records."""
    _, _, session = await partner_session(client, kind="data_source", scopes=["records:write"])
    return session


def enterprise_row(uscc: str, category: str, *, title: str | None = None, days_ago: int = 10,
                   source_ref: str | None = None, **extra: Any) -> dict[str, Any]:
    """One ingest row about the enterprise `uscc`."""
    occurred = (datetime.now(UTC) - timedelta(days=days_ago)).replace(microsecond=0).isoformat()
    return {"source_ref": source_ref or f"ref-{secrets.token_hex(6)}", "subject": {"kind": "enterprise", "uscc": uscc},
            "category": category, "title": title or category, "occurred_at": occurred, **extra}


async def push_enterprise_records(client: Any, source: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Push rows and insist that every one landed (accepted, updated or duplicate)."""
    r = await push_records(client, source, rows)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["summary"]["rejected"] == 0, body
    return body


def rsa_encryption_key(*, kid: str | None = None, bits: int = 2048) -> tuple[dict[str, Any], Any]:
    """A bank's RSA key pair: (public JWK with use "enc" to register, private key to decrypt with)."""
    import base64

    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    numbers = private.public_key().public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    jwk = {"kty": "RSA", "kid": kid or f"enc-{secrets.token_hex(4)}", "use": "enc", "alg": "RSA-OAEP-256",
           "n": b64(numbers.n), "e": b64(numbers.e)}
    return jwk, private


async def bank_session(client: Any, *, jwks: list[dict[str, Any]] | None = None, name: str | None = None
                       ) -> tuple[str, Session]:
    """A bank partner (client secret, plus `jwks` if given) with a token for its default scopes."""
    from partners.services import create_partner

    issued = await create_partner(name=name or f"银行 {secrets.token_hex(3)}", kind="bank", jwks=jwks)
    token = await client.post("/v1/auth/token", json={
        "grant_type": "client_credentials", "client_id": issued.client_id, "client_secret": issued.client_secret})
    assert token.status_code == 200, token.text
    return issued.client_id, Session(phone="", access_token=token.json()["access_token"], refresh_token=None)


async def enterprise_authorization(client: Any, bank: Session, owned: OwnedEnterprise, *,
                                   purpose: str = "loan_application", scopes: list[str] | None = None,
                                   validity_days: int = 30, approve: bool = True,
                                   member: Citizen | None = None) -> str:
    """The bank asks the enterprise; a member approves (unless told not to). Returns the authorization id."""
    r = await client.post("/v1/authorizations", headers=bank.headers, json={
        "subject": {"kind": "enterprise", "uscc": owned.uscc}, "purpose": purpose,
        "scopes": scopes or ["portrait"], "validity_days": validity_days})
    assert r.status_code == 201, r.text
    authorization_id = str(r.json()["id"])
    if approve:
        who = member or owned.owner
        a = await client.post(f"/v1/enterprises/{owned.uscc}/authorizations/{authorization_id}/approve",
                              headers=who.headers)
        assert a.status_code == 200, a.text
    return authorization_id


# ------------------------------------------------------------------ lending market (products, demands)

WAN_FEN = 10_000 * 100  # 1万元 in fen


def product_body(**overrides: Any) -> dict[str, Any]:
    """A valid POST /v1/lending/products body: a pure credit product, 10万–300万元, 6–36 months, 3.85%–6%."""
    body: dict[str, Any] = {
        "name": f"信易贷产品{secrets.token_hex(2)}", "amount_min_fen": 10 * WAN_FEN, "amount_max_fen": 300 * WAN_FEN,
        "term_min_months": 6, "term_max_months": 36, "rate_min_bp": 385, "rate_max_bp": 600,
        "guarantee_kind": "credit"}
    body.update(overrides)
    return body


async def publish_product(client: Any, bank: Session, **overrides: Any) -> dict[str, Any]:
    """A bank publishes a product; returns the product as answered."""
    r = await client.post("/v1/lending/products", headers=bank.headers, json=product_body(**overrides))
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


def demand_body(owned: OwnedEnterprise, **overrides: Any) -> dict[str, Any]:
    """A valid POST /v1/lending/demands body: 100万元 for 12 months, pure credit."""
    body: dict[str, Any] = {"uscc": owned.uscc, "amount_fen": 100 * WAN_FEN, "term_months": 12,
                            "purpose": "采购原材料", "guarantee_offered": "credit"}
    body.update(overrides)
    return body


async def post_demand(client: Any, owned: OwnedEnterprise, *, who: Citizen | None = None, **overrides: Any
                      ) -> dict[str, Any]:
    """A member posts a demand; returns the demand with its matches."""
    r = await client.post("/v1/lending/demands", headers=(who or owned.owner).headers,
                          json=demand_body(owned, **overrides))
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def grade_a_enterprise(client: Any, ctx: AppContext, *, owner_name: str = "林优秀", **registry: Any
                             ) -> OwnedEnterprise:
    """An owned enterprise whose records give it a grade-A portrait (tax A, honours, full social insurance)."""
    owned = await owned_enterprise(client, ctx, owner_name=owner_name, registered_capital_fen=30_000_000_00,
                                   **registry)
    source = await data_source(client)
    rows = [enterprise_row(owned.uscc, "tax_grade_a", title="2025年度纳税信用A级", days_ago=200),
            enterprise_row(owned.uscc, "honour_specialized", title="省级专精特新中小企业", days_ago=300),
            enterprise_row(owned.uscc, "honour_high_tech", title="高新技术企业证书", days_ago=400),
            enterprise_row(owned.uscc, "patent", title="发明专利授权", days_ago=100),
            enterprise_row(owned.uscc, "environmental_rating_good", title="环保信用评价绿牌", days_ago=50),
            enterprise_row(owned.uscc, "contract_fulfilment", title="政府采购合同按期履约", days_ago=30)]
    rows += [enterprise_row(owned.uscc, "social_insurance_paid", title=f"社保足额缴纳（第{m}月）",
                            days_ago=15 + 30 * m) for m in range(12)]
    await push_enterprise_records(client, source, rows)
    return owned


def account_id_of(citizen: Citizen) -> str:
    """The citizen account's public id (the `sub` of its access token)."""
    import jwt

    return str(jwt.decode(citizen.session.access_token, options={"verify_signature": False})["sub"])
