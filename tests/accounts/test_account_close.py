"""Closing an account (PIPL Art. 47): a fresh code for this purpose only; partners stop getting data at once on
every process; the ledger still verifies; the export before closure holds the data; the phone registers again
as a new account; a closure is safe to repeat and to finish after an interruption."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import jwt
import pytest

from accounts import closure
from accounts.closure import ClosingAccount, ClosureStep
from accounts.tables import CitizenAccount, RevokedToken
from api.context import AppContext
from credit.ledger import CHECKPOINT_TYP, verify_chain
from credit.tables import Authorization, Enterprise, OutboxEvent, Person
from lending.tables import EnterpriseMember
from partners.tables import NoticeContact, NoticePreference
from tests.factories import (
    Citizen,
    address,
    authorization_for,
    bound_citizen,
    citizen_login,
    partner_session,
    registry_enterprise,
)
from tests.servers import xinyi_server


@pytest.fixture
def two_servers(app) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Two more `xinyi serve` processes on the same database (and Redis, when configured)."""
    with ExitStack() as stack:
        yield [stack.enter_context(xinyi_server(["serve"], ready_path="/health/ready")) for _ in range(2)]


async def _closure_code(client: Any, citizen: Citizen) -> str:
    sent = await client.post("/v1/me/account/close/code", headers={**citizen.headers, "X-Forwarded-For": address()})
    assert sent.status_code == 202, sent.text
    code = str(sent.json()["dev_code"])
    assert "注销" in client.app.state.ctx.sms.last_to(citizen.session.phone).text
    return code


async def _resend_allowed(ctx: AppContext, phone: str) -> None:
    """Skip the wait before another login code to the same phone (the test logs in with it again)."""
    phone_hash = ctx.cipher.lookup_hash("phone", phone)
    await ctx.store.delete("otp", f"cool:{phone_hash}")
    await ctx.store.delete("otp", f"cool:close_account:{phone_hash}")


async def _close(client: Any, citizen: Citizen, code: str | None) -> httpx.Response:
    return await client.post("/v1/me/account/close", headers=citizen.headers,
                             json={} if code is None else {"code": code})


async def _account_id(client: Any, citizen: Citizen) -> str:
    me = await client.get("/v1/me", headers=citizen.headers)
    assert me.status_code == 200, me.text
    return str(me.json()["account_id"])


async def test_only_a_fresh_closure_code_closes_the_account(client, ctx, override_settings) -> None:
    citizen = await bound_citizen(client, ctx, name="销一")
    # No code, a login code, a wrong code: refused, nothing changed.
    assert (await _close(client, citizen, None)).json()["code"] == "code_required"
    await _resend_allowed(ctx, citizen.session.phone)
    sent = await client.post("/v1/auth/otp", json={"phone": citizen.session.phone},
                             headers={"X-Forwarded-For": address()})
    assert sent.status_code == 202, sent.text
    login_code = sent.json()["dev_code"]
    refused = await _close(client, citizen, login_code)
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_otp"), refused.text
    code = await _closure_code(client, citizen)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert (await _close(client, citizen, wrong)).json()["code"] == "invalid_otp"
    # The closure code does not log in either.
    token = await client.post("/v1/auth/token", json={"grant_type": "otp", "phone": citizen.session.phone,
                                                      "code": code}, headers={"X-Forwarded-For": address()})
    assert token.status_code == 400, token.text
    # A stale code (sent longer ago than a code lives) is refused.
    await _resend_allowed(ctx, citizen.session.phone)
    with override_settings(otp_ttl_seconds=1):
        stale = await _closure_code(client, citizen)
        await asyncio.sleep(1.5)
        assert (await _close(client, citizen, stale)).json()["code"] == "invalid_otp"
    assert (await client.get("/v1/me", headers=citizen.headers)).status_code == 200
    row = await CitizenAccount.select(CitizenAccount.status).where(
        CitizenAccount.public_id == await _account_id(client, citizen)).first()
    assert row is not None
    assert row["status"] == "active"


async def _told_kept_and_verified(ctx: AppContext, *, account_id: str, ended: list[str], waiting: str) -> None:
    """After a closure: partners told, the tombstone holds nothing personal, records kept, the chain verifies."""
    held = [a for a in ended if a != waiting]
    # Partners were told, as for any revocation or refusal.
    events = {(r["aggregate_id"], r["topic"]) for r in await OutboxEvent.select(
        OutboxEvent.aggregate_id, OutboxEvent.topic).where(OutboxEvent.aggregate_id.is_in(ended))}
    assert {(a, "authorization.revoked") for a in held} | {(waiting, "authorization.rejected")} <= events
    # The tombstone: no phone, no identity; authorizations and ledger kept, and the chain verifies.
    tomb = await CitizenAccount.select().where(CitizenAccount.public_id == account_id).first()
    assert tomb is not None
    assert (tomb["phone_enc"], tomb["person"], tomb["status"]) == ("", None, "closed")
    assert await Authorization.count().where(Authorization.public_id.is_in(ended)) == 3
    member = await EnterpriseMember.select(EnterpriseMember.status).where(
        EnterpriseMember.account_id == account_id).first()
    assert member is not None
    assert member["status"] == "removed"
    report = await verify_chain(verify_checkpoint=lambda s: ctx.tokens.verify_document(s, typ=CHECKPOINT_TYP))
    assert report.ok, report



async def test_closing_ends_everything_keeps_the_records_and_answers_what_and_why(  # noqa: PLR0915 - one closure, end to end
        client, ctx, two_servers) -> None:
    citizen = await bound_citizen(client, ctx, name="销二")
    account_id = await _account_id(client, citizen)
    _, _, bank = await partner_session(client, kind="bank")
    _, _, lender = await partner_session(client, kind="bank")
    held = [await authorization_for(client, bank, citizen), await authorization_for(client, lender, citizen)]
    waiting = await authorization_for(client, bank, citizen, approve=False)
    enterprise = await registry_enterprise(ctx)
    enterprise_id = (await Enterprise.select(Enterprise._meta.primary_key).where(
        Enterprise.public_id == enterprise.public_id).first())["id"]
    person_id = (await Person.select(Person._meta.primary_key).where(
        Person.public_id == citizen.person.public_id).first())["id"]
    await EnterpriseMember.insert(EnterpriseMember(enterprise=enterprise_id, account_id=account_id, person=person_id,
                                                   role="operator", status="active"))
    preferences = await client.put("/v1/me/notice-preferences", headers=citizen.headers, json={
        "items": [{"kind": "authorization_request", "channel": "wechat"}],
        "wechat_openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"})
    assert preferences.status_code == 200, preferences.text
    await _resend_allowed(ctx, citizen.session.phone)
    second_login = await citizen_login(client, number=citizen.session.phone)

    async with httpx.AsyncClient(base_url=two_servers[0], timeout=10) as first, \
            httpx.AsyncClient(base_url=two_servers[1], timeout=10) as second:
        servers = (first, second)
        for server in servers:  # both processes have served reads under the authorizations
            for authorization_id, partner in zip(held, (bank, lender), strict=True):
                r = await server.post("/v1/scores/query", headers=partner.headers,
                                      json={"authorization_id": authorization_id})
                assert r.status_code == 200, r.text
        exported = await client.get("/v1/me/export", headers=citizen.headers)
        assert exported.status_code == 200, exported.text
        assert {a["id"] for a in exported.json()["authorizations"]["items"]} == {*held, waiting}
        assert len(exported.json()["access_log"]["items"]) == 4

        closed = await _close(client, citizen, await _closure_code(client, citizen))
        assert closed.status_code == 200, closed.text
        summary = closed.json()

        for server in servers:  # at once, on both processes
            for authorization_id, partner in zip(held, (bank, lender), strict=True):
                r = await server.post("/v1/scores/query", headers=partner.headers,
                                      json={"authorization_id": authorization_id})
                assert (r.status_code, r.json()["code"]) == (403, "authorization_not_active"), r.text
            if os.environ.get("REDIS_URL"):  # token revocations are shared across processes through Redis
                for session in (citizen.session, second_login):
                    assert (await server.get("/v1/me", headers=session.headers)).status_code == 401

    counts = {item["what"]: item.get("count") for item in summary["ended"]}
    assert counts == {"authorizations revoked (each partner told by webhook)": 2,
                      "authorization requests refused": 1,
                      "enterprise memberships ended (owner or 经办人)": 1,
                      "sessions ended (every access and refresh token of the account)": 2}
    assert [(item["what"], item.get("count")) for item in summary["deleted"]] == [
        ("notice preferences and the WeChat contact notices were pushed to", 2),
        ("your phone number", None), ("the binding of the account to your identity (实名)", None)]
    assert await NoticePreference.count().where(NoticePreference.account_id == account_id) == 0
    assert await NoticeContact.count().where(NoticeContact.account_id == account_id) == 0
    assert all(item["why"] for item in summary["kept"] + summary["deleted"] + summary["ended"])
    assert summary["account_id"] == account_id
    assert summary["status"] == "closed"

    # Every session is over, durably (the revocations survive a store that loses its data).
    for session in (citizen.session, second_login):
        assert (await client.get("/v1/me", headers=session.headers)).status_code == 401
    refreshed = await client.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                          "refresh_token": second_login.refresh_token})
    assert refreshed.status_code == 400
    markers = {r["marker"] for r in await RevokedToken.select(RevokedToken.marker)}
    assert {f"fam:{jwt.decode(s.access_token, options={'verify_signature': False})['fam']}"
            for s in (citizen.session, second_login)} <= markers
    await _told_kept_and_verified(ctx, account_id=account_id, ended=[*held, waiting], waiting=waiting)

    # Closing again answers the same summary (a retry whose first answer was lost).
    again = await closure.close_account(ctx=ctx, account_id=account_id, code=None)
    assert {"account_id": again.account_id, "status": again.status, "deleted": len(again.deleted),
            "ended": [(e.what, e.count) for e in again.ended]} == {
        "account_id": account_id, "status": "closed", "deleted": 3,
        "ended": [(e["what"], e.get("count")) for e in summary["ended"]]}
    # ... and the same phone registers again as a new account, which may bind the same identity.
    await _resend_allowed(ctx, citizen.session.phone)
    fresh = await citizen_login(client, number=citizen.session.phone)
    me = await client.get("/v1/me", headers=fresh.headers)
    assert me.json()["account_id"] != account_id
    assert me.json()["identity"] is None
    bound = await client.post("/v1/me/identity", headers=fresh.headers,
                              json={"name": citizen.person.name, "id_number": citizen.person.id_number})
    assert bound.status_code == 200, bound.text
    # The new account sees the old authorizations (they are the person's), all ended.
    listed = (await client.get("/v1/me/authorizations", headers=fresh.headers)).json()["items"]
    assert {a["status"] for a in listed} == {"revoked", "rejected"}


async def test_an_interrupted_closure_is_finished_by_closing_again(client, ctx: AppContext) -> None:
    citizen = await bound_citizen(client, ctx, name="销三")
    account_id = await _account_id(client, citizen)
    _, _, bank = await partner_session(client, kind="bank")
    await authorization_for(client, bank, citizen)
    code = await _closure_code(client, citizen)
    calls: list[str] = []

    async def flaky(account: ClosingAccount) -> int:
        calls.append(account.account_id)
        if len(calls) == 1:
            raise RuntimeError("the notices database went away")
        return 3

    steps = (ClosureStep(key="flaky", section="deleted", what="things", why="test", run=flaky),)
    with pytest.raises(RuntimeError):
        await closure.close_account(ctx=ctx, account_id=account_id, code=code, steps=steps)
    # Half-way: authorizations ended, the account closing, the session still usable; no code needed now.
    assert (await client.get("/v1/me", headers=citizen.headers)).status_code == 200
    done = await closure.close_account(ctx=ctx, account_id=account_id, code=None, steps=steps)
    assert {e.what: e.count for e in done.ended}["authorizations revoked (each partner told by webhook)"] == 1
    assert {e.what: e.count for e in done.deleted}["things"] == 3
    assert (await client.get("/v1/me", headers=citizen.headers)).status_code == 401
