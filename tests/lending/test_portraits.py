"""Enterprise portraits through HTTP: members read their own, banks read under an authorization (JSON or
JWE), every bank outcome is ledgered, versions change only with content, a dishonest executee is D."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from jose import jwe

from credit.tables import LedgerEntry
from lending.tables import PortraitSnapshot
from tests.factories import partner_session
from tests.lending_factories import (
    OwnedEnterprise,
    add_operator,
    bank_session,
    data_source,
    enterprise_authorization,
    enterprise_row,
    owned_enterprise,
    push_enterprise_records,
    rsa_encryption_key,
)

PROBLEM = "application/problem+json"


def _problem(r, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == code, r.text


async def _portrait(client, owned: OwnedEnterprise) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.get(f"/v1/enterprises/{owned.uscc}/portrait", headers=owned.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _ledger(subject_id: str) -> list[dict[str, Any]]:
    return await LedgerEntry.select(LedgerEntry.seq, LedgerEntry.actor_id, LedgerEntry.subject_kind,
                                    LedgerEntry.action, LedgerEntry.outcome, LedgerEntry.authorization_id,
                                    LedgerEntry.fields, LedgerEntry.purpose, LedgerEntry.result_digest).where(
        LedgerEntry.subject_id == subject_id).order_by(LedgerEntry.seq)


def _months_ago(n: int) -> int:
    return 15 + 30 * n


async def _good_enterprise(client, ctx) -> OwnedEnterprise:  # type: ignore[no-untyped-def]
    owned = await owned_enterprise(client, ctx, owner_name="林优秀", industry="C",
                                   registered_capital_fen=30_000_000_00)
    source = await data_source(client)
    rows = [enterprise_row(owned.uscc, "tax_grade_a", title="2025年度纳税信用A级", days_ago=200),
            enterprise_row(owned.uscc, "honour_specialized", title="省级专精特新中小企业", days_ago=300),
            enterprise_row(owned.uscc, "honour_high_tech", title="高新技术企业证书", days_ago=400),
            enterprise_row(owned.uscc, "patent", title="发明专利授权", days_ago=100),
            enterprise_row(owned.uscc, "environmental_rating_good", title="环保信用评价绿牌", days_ago=50),
            enterprise_row(owned.uscc, "contract_fulfilment", title="政府采购合同按期履约", days_ago=30)]
    rows += [enterprise_row(owned.uscc, "social_insurance_paid", title=f"社保足额缴纳（第{m}月）",
                            days_ago=_months_ago(m)) for m in range(12)]
    await push_enterprise_records(client, source, rows)
    return owned


async def test_members_read_an_explained_portrait(client, ctx) -> None:
    owned = await _good_enterprise(client, ctx)
    operator, _ = await add_operator(client, ctx, owned, name="邱经办")
    body = await _portrait(client, owned)

    assert 0 <= body["score"] <= 100
    assert body["grade"] == "A", body
    assert body["version"] == 1
    assert body["id"].startswith("prt_")
    assert len(body["digest"]) == 64
    assert {"专精特新", "高新技术企业", "纳税A级", "社保连续缴纳", "拥有专利"} <= set(body["tags"])
    assert body["risk_flags"] == []
    assert [d["code"] for d in body["dimensions"]] == [
        "stability", "tax", "employment_social_insurance", "judicial_risk", "regulatory", "innovation", "fulfilment"]
    assert sum(d["max"] for d in body["dimensions"]) == 100
    assert sum(d["score"] for d in body["dimensions"]) == body["score"]
    for d in body["dimensions"]:
        assert d["explanation"]
        assert d["facts"]
        assert 0 <= d["score"] <= d["max"]
    tax = next(d for d in body["dimensions"] if d["code"] == "tax")
    assert "纳税信用A级" in tax["explanation"]
    facts = body["facts"]
    assert (facts["industry"], facts["tax_grade"], facts["dishonest_executee"], facts["open_penalties"]) == (
        "C", "A", False, 0)
    assert facts["years_in_business"] > 10
    assert facts["social_insurance_months"] == 12
    (source,) = body["sources"]
    assert source["records"] == 18
    assert source["age_days"] == 0
    assert "tax_grade_a" in source["categories"]

    # Any member reads the same portrait.
    r = await client.get(f"/v1/enterprises/{owned.uscc}/portrait", headers=operator.headers)
    assert r.status_code == 200
    assert (r.json()["id"], r.json()["digest"]) == (body["id"], body["digest"])


async def test_a_dishonest_executee_is_grade_d_with_the_hard_flag(client, ctx) -> None:
    owned = await _good_enterprise(client, ctx)
    assert (await _portrait(client, owned))["grade"] == "A"
    source = await data_source(client)
    await push_enterprise_records(client, source, [
        enterprise_row(owned.uscc, "dishonest_executee", title="(2026)浙0402执123号 失信被执行人", days_ago=5)])
    body = await _portrait(client, owned)
    assert body["grade"] == "D"
    assert {"code": "dishonest_executee", "text": "失信被执行人"} in body["risk_flags"]
    assert body["facts"]["dishonest_executee"] is True
    judicial = next(d for d in body["dimensions"] if d["code"] == "judicial_risk")
    assert judicial["score"] == 0
    assert "失信被执行人" in judicial["explanation"]
    assert body["version"] == 2


async def test_the_version_changes_only_when_the_content_does(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="钟版本")
    source = await data_source(client)
    row = enterprise_row(owned.uscc, "administrative_permit", title="食品经营许可", days_ago=40)
    await push_enterprise_records(client, source, [row])

    first = await _portrait(client, owned)
    again = await _portrait(client, owned)
    assert (again["version"], again["id"], again["digest"]) == (first["version"], first["id"], first["digest"])

    # The same row again is a duplicate: nothing changed, no new version.
    assert (await push_enterprise_records(client, source, [row]))["summary"]["duplicate"] == 1
    assert (await _portrait(client, owned))["version"] == first["version"]

    # A forced recomputation (cache gone) with the same content still reuses the snapshot.
    await ctx.store.delete("portrait", f"e:{await _enterprise_pk(owned)}")
    recomputed = await _portrait(client, owned)
    assert (recomputed["version"], recomputed["id"], recomputed["digest"]) == (
        first["version"], first["id"], first["digest"])

    # New content: a new version, once.
    await push_enterprise_records(client, source, [
        enterprise_row(owned.uscc, "administrative_penalty", title="未按规定公示年报", days_ago=3)])
    second = await _portrait(client, owned)
    assert second["version"] == first["version"] + 1
    assert second["digest"] != first["digest"]
    assert second["facts"]["open_penalties"] == 1
    assert (await _portrait(client, owned))["version"] == second["version"]

    # Concurrent readers after a change write one new version between them.
    await push_enterprise_records(client, source, [
        enterprise_row(owned.uscc, "patent", title="实用新型专利", days_ago=2)])
    answers = await asyncio.gather(*(client.get(f"/v1/enterprises/{owned.uscc}/portrait", headers=owned.headers)
                                     for _ in range(10)))
    assert {r.status_code for r in answers} == {200}
    assert {r.json()["version"] for r in answers} == {second["version"] + 1}

    versions = await client.get(f"/v1/enterprises/{owned.uscc}/portrait/versions", headers=owned.headers)
    assert versions.status_code == 200
    assert [v["version"] for v in versions.json()["items"]] == [3, 2, 1]
    assert await PortraitSnapshot.count().where(PortraitSnapshot.enterprise == await _enterprise_pk(owned)) == 3


async def _enterprise_pk(owned: OwnedEnterprise) -> int:
    from credit.tables import Enterprise

    row = await Enterprise.select(Enterprise._meta.primary_key).where(Enterprise.public_id == owned.public_id).first()
    assert row is not None
    return int(row["id"])


async def test_a_bank_reads_under_the_authorization_and_it_is_ledgered(client, ctx) -> None:
    owned = await _good_enterprise(client, ctx)
    bank_id, bank = await bank_session(client, name="嘉兴农商银行")
    authorization_id = await enterprise_authorization(client, bank, owned)

    r = await client.get(f"/v1/portraits/{owned.uscc}", headers=bank.headers,
                         params={"authorization_id": authorization_id, "purpose": "loan_application"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"authorization_id", "enterprise", "portrait", "ledger_seq"}
    assert body["enterprise"] == {"id": owned.public_id, "name": owned.enterprise.name, "uscc": owned.uscc}
    member_view = await _portrait(client, owned)
    assert body["portrait"] == member_view

    entries = await _ledger(owned.public_id)
    assert [(e["actor_id"], e["subject_kind"], e["action"], e["outcome"], e["fields"], e["purpose"])
            for e in entries] == [(bank_id, "enterprise", "portrait.read", "allowed", "portrait", "loan_application")]
    assert entries[0]["seq"] == body["ledger_seq"]
    assert entries[0]["authorization_id"] == authorization_id


async def test_refusals_are_ledgered(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="毛拒绝")
    other = await owned_enterprise(client, ctx, owner_name="狄别家")
    bank_id, bank = await bank_session(client)
    other_bank_id, other_bank = await bank_session(client)

    def get(session, uscc: str, authorization_id: str, **params: str):  # type: ignore[no-untyped-def]
        return client.get(f"/v1/portraits/{uscc}", headers=session.headers,
                          params={"authorization_id": authorization_id, **params})

    # No authorization at all: nothing to ledger against, and nothing learned.
    _problem(await get(bank, owned.uscc, "authz_doesnotexist"), 404, "authorization_not_found")
    awaiting = await enterprise_authorization(client, bank, owned, approve=False)
    _problem(await get(bank, owned.uscc, awaiting), 403, "authorization_not_active")
    granted = await enterprise_authorization(client, bank, owned)
    _problem(await get(other_bank, owned.uscc, granted), 404, "authorization_not_found")
    _problem(await get(bank, other.uscc, granted), 403, "authorization_subject_mismatch")
    _problem(await get(bank, owned.uscc, granted, purpose="enterprise_financing"), 403, "purpose_mismatch")
    tier_only = await enterprise_authorization(client, bank, owned, scopes=["tier"])
    _problem(await get(bank, owned.uscc, tier_only), 403, "scope_not_granted")
    assert (await get(bank, owned.uscc, granted)).status_code == 200
    revoked = await client.post(f"/v1/enterprises/{owned.uscc}/authorizations/{granted}/revoke",
                                headers=owned.headers)
    assert revoked.status_code == 200
    # Revocation applies to the very next request.
    _problem(await get(bank, owned.uscc, granted), 403, "authorization_not_active")
    _problem(await get(bank, "91330402MA2B3C4D5X", granted), 422, "invalid_uscc")

    entries = await _ledger(owned.public_id)
    assert [(e["actor_id"], e["authorization_id"], e["outcome"]) for e in entries] == [
        (bank_id, awaiting, "authorization_not_active"),
        (other_bank_id, granted, "not_your_authorization"),
        (bank_id, granted, "authorization_subject_mismatch"),
        (bank_id, granted, "purpose_mismatch"),
        (bank_id, tier_only, "scope_not_granted"),
        (bank_id, granted, "allowed"),
        (bank_id, granted, "authorization_not_active"),
    ]
    assert all(e["subject_kind"] == "enterprise" and e["action"] == "portrait.read" for e in entries)
    assert await _ledger(other.public_id) == []


async def test_the_daily_cap_holds_under_concurrency(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="姚并发")
    _, bank = await bank_session(client)
    authorization_id = await enterprise_authorization(client, bank, owned)  # loan_application: 20 a day
    answers = await asyncio.gather(*(client.get(f"/v1/portraits/{owned.uscc}", headers=bank.headers,
                                                params={"authorization_id": authorization_id}) for _ in range(30)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 20 + [429] * 10, statuses
    assert {r.json()["code"] for r in answers if r.status_code == 429} == {"authorization_daily_cap"}
    outcomes = [e["outcome"] for e in await _ledger(owned.public_id)]
    assert sorted(outcomes) == ["allowed"] * 20 + ["authorization_daily_cap"] * 10
    # All twenty answers carry the same portrait version.
    assert len({r.json()["portrait"]["id"] for r in answers if r.status_code == 200}) == 1


async def test_the_jwe_decrypts_to_the_same_portrait_with_the_banks_private_key(client, ctx) -> None:
    owned = await _good_enterprise(client, ctx)
    public_jwk, private_key = rsa_encryption_key()
    _, bank = await bank_session(client, jwks=[public_jwk], name="加密银行")
    authorization_id = await enterprise_authorization(client, bank, owned)
    params = {"authorization_id": authorization_id}

    plain = await client.get(f"/v1/portraits/{owned.uscc}", headers=bank.headers, params=params)
    assert plain.status_code == 200, plain.text
    sealed = await client.get(f"/v1/portraits/{owned.uscc}", params=params,
                              headers={**bank.headers, "Accept": "application/jose"})
    assert sealed.status_code == 200, sealed.text
    assert sealed.headers["content-type"].startswith("application/jose")
    token = sealed.content
    assert token.count(b".") == 4  # compact JWE: header.key.iv.ciphertext.tag
    header = jwe.get_unverified_header(token)
    assert (header["alg"], header["enc"], header["kid"]) == ("RSA-OAEP-256", "A256GCM", public_jwk["kid"])

    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    opened = json.loads(jwe.decrypt(token, pem))
    expected = plain.json()
    assert opened["ledger_seq"] > expected.pop("ledger_seq")
    opened.pop("ledger_seq")
    assert opened == expected

    # Another private key cannot open it.
    _, stranger_key = rsa_encryption_key()
    stranger_pem = stranger_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    try:
        jwe.decrypt(token, stranger_pem)
        opened_by_stranger = True
    except Exception:
        opened_by_stranger = False
    assert not opened_by_stranger

    outcomes = [(e["outcome"], e["fields"]) for e in await _ledger(owned.public_id)]
    assert outcomes == [("allowed", "portrait"), ("allowed", "portrait")]


async def test_jose_without_an_encryption_key_is_406_and_reads_nothing(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="尹无钥")
    _, bank = await bank_session(client)
    authorization_id = await enterprise_authorization(client, bank, owned)
    r = await client.get(f"/v1/portraits/{owned.uscc}", params={"authorization_id": authorization_id},
                         headers={**bank.headers, "Accept": "application/jose"})
    _problem(r, 406, "no_encryption_key")
    assert await _ledger(owned.public_id) == []


async def test_only_banks_with_portraits_read_may_call(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="段范围")
    _, _, merchant = await partner_session(client, kind="merchant")
    r = await client.get(f"/v1/portraits/{owned.uscc}", headers=merchant.headers,
                         params={"authorization_id": "authz_x"})
    _problem(r, 403, "insufficient_scope")
    _problem(await client.get(f"/v1/portraits/{owned.uscc}", headers=owned.headers,
                              params={"authorization_id": "authz_x"}), 403, "wrong_principal")
    _, _, bank = await partner_session(client, kind="bank")
    _problem(await client.get(f"/v1/portraits/{owned.uscc}", headers=bank.headers), 422, "validation_failed")


async def test_banks_register_only_sound_rsa_encryption_keys(client, ctx) -> None:
    import jwt as pyjwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from core.errors import Unprocessable
    from partners.services import create_partner

    weak, _ = rsa_encryption_key(bits=1024)
    signing, _ = rsa_encryption_key()
    signing["use"] = "sig"
    private, _ = rsa_encryption_key()
    private["d"] = "AQAB"
    for bad in (weak, signing, private, {**rsa_encryption_key()[0], "kid": ""}):
        try:
            await create_partner(name="坏钥银行", kind="bank", jwks=[bad])
            refused = False
        except Unprocessable as exc:
            refused = exc.code == "invalid_jwk"
        assert refused, bad

    # An encryption key never verifies a client assertion (no 500, no login).
    good, key = rsa_encryption_key()
    issued = await create_partner(name="加密银行二", kind="bank", jwks=[good])
    import time

    now = int(time.time())
    assertion = pyjwt.encode({"iss": issued.client_id, "sub": issued.client_id, "aud": ctx.settings.jwt_issuer,
                              "iat": now, "exp": now + 60, "jti": f"j{now}"}, key, algorithm="RS256",
                             headers={"kid": good["kid"]})
    assert isinstance(key, rsa.RSAPrivateKey)
    r = await client.post("/v1/auth/token", json={
        "grant_type": "client_credentials", "client_id": issued.client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})
    assert r.status_code == 401, r.text


async def test_members_see_every_bank_access_in_the_enterprise_access_log(client, ctx) -> None:
    owned = await owned_enterprise(client, ctx, owner_name="查日志")
    operator, _ = await add_operator(client, ctx, owned, name="柳经办")
    stranger = await owned_enterprise(client, ctx, owner_name="外人")
    _, bank = await bank_session(client, name="日志银行")
    _, other_bank = await bank_session(client, name="窥探银行")
    granted = await enterprise_authorization(client, bank, owned)
    params = {"authorization_id": granted}
    assert (await client.get(f"/v1/portraits/{owned.uscc}", headers=bank.headers, params=params)).status_code == 200
    assert (await client.get(f"/v1/portraits/{owned.uscc}", headers=other_bank.headers,
                             params=params)).status_code == 404
    assert (await client.get(f"/v1/portraits/{owned.uscc}", headers=bank.headers, params=params)).status_code == 200

    url = f"/v1/enterprises/{owned.uscc}/access-log"
    r = await client.get(url, headers=operator.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(e["actor_name"], e["action"], e["outcome"]) for e in items] == [
        ("日志银行", "portrait.read", "allowed"), ("窥探银行", "portrait.read", "not_your_authorization"),
        ("日志银行", "portrait.read", "allowed")]
    assert items[0]["authorization_id"] == granted
    assert items[0]["fields"] == ["portrait"]
    assert [e["seq"] for e in items] == [e["seq"] for e in await _ledger(owned.public_id)][::-1]

    first = await client.get(url, headers=owned.headers, params={"limit": 2})
    assert len(first.json()["items"]) == 2
    rest = await client.get(url, headers=owned.headers, params={"cursor": first.json()["next_cursor"]})
    assert [e["seq"] for e in rest.json()["items"]] == [items[2]["seq"]]
    assert rest.json()["next_cursor"] is None

    _problem(await client.get(url, headers=stranger.headers), 404, "enterprise_not_found")
    for cursor in ("9" * 30, "x", "0"):
        r = await client.get(url, headers=owned.headers, params={"cursor": cursor})
        assert r.status_code in (400, 422), (cursor, r.text)


async def test_a_revoked_bank_token_is_refused_first_on_every_portrait_path(client, ctx) -> None:
    """The portrait route runs the bank's admission in its own store round trip; every way out of it must
    still refuse a revoked token (401) before answering anything else, and leave no ledger entry."""
    owned = await _good_enterprise(client, ctx)
    client_id, secret, bank = await partner_session(client, kind="bank", name="嘉兴撤销银行")
    authorization_id = await enterprise_authorization(client, bank, owned)
    ok = await client.get(f"/v1/portraits/{owned.uscc}", headers=bank.headers,
                          params={"authorization_id": authorization_id})
    assert ok.status_code == 200, ok.text
    before = len(await _ledger(owned.public_id))
    assert (await client.post("/v1/auth/revoke", json={"token": bank.access_token}, auth=(client_id, secret))
            ).status_code == 200
    attempts = [
        ({"authorization_id": authorization_id}, {}, owned.uscc),
        ({"authorization_id": "authz_unknown"}, {}, owned.uscc),
        ({"authorization_id": authorization_id}, {}, "not-a-uscc"),
        ({"authorization_id": authorization_id}, {"Accept": "application/jose"}, owned.uscc),
    ]
    for params, extra, uscc in attempts:
        r = await client.get(f"/v1/portraits/{uscc}", headers={**bank.headers, **extra}, params=params)
        assert r.status_code == 401, (params, extra, uscc, r.text)
        assert r.json()["code"] == "token_revoked"
    assert len(await _ledger(owned.public_id)) == before
