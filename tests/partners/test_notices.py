"""Citizen notices: each kind from its real trigger through HTTP, the notice worker's delivery (SMS, simulated
WeChat with failures and retries), opt-out except mandatory kinds, quiet hours, pagination, and isolation."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from accounts.citizens import citizen_account_id
from api.background import notice_channels, notice_directory
from api.context import AppContext
from core.clock import CITY_TZ
from credit.tables import OutboxEvent
from partners.notice_delivery import Channels, deliver_notices, quiet_until
from partners.simulate import WechatState, wechat_app
from partners.wechat import WechatSubscribeClient
from scenarios.orders import notify_grace_ending
from tests.factories import (
    Citizen,
    add_record,
    authorization_for,
    bound_citizen,
    operator_session,
    partner_session,
    push_records,
    record_row,
)

NOTICES = "/v1/me/notices"
PREFERENCES = "/v1/me/notice-preferences"


async def _deliver(ctx: AppContext, *, now: datetime | None = None, channels: Channels | None = None
                   ) -> dict[str, int]:
    """Pass after pass until nothing is due, as the background loop does: the other tests of the run leave their
    own citizen events pending too, and one pass takes at most 100."""
    total: dict[str, int] = {}
    while outcomes := await deliver_notices(settings=ctx.settings, channels=channels or notice_channels(ctx),
                                            directory=notice_directory(ctx), now=now):
        for outcome, count in outcomes.items():
            total[outcome] = total.get(outcome, 0) + count
    return total


async def _notices(client: Any, citizen: Citizen, **params: Any) -> dict[str, Any]:
    r = await client.get(NOTICES, headers=citizen.headers, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _sms(ctx: AppContext, citizen: Citizen) -> list[Any]:
    return [m for m in ctx.sms.sent if m.phone == citizen.session.phone and m.template.startswith("notice.")]


async def test_an_authorization_request_is_noticed_listed_paged_and_read(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="通知甲")
    _, _, bank = await partner_session(client, name="嘉兴银行")
    first = await authorization_for(client, bank, citizen, approve=False)
    second = await authorization_for(client, bank, citizen, approve=False)
    # Written in the request's transaction, addressed to the person (credit knows no accounts).
    events = await OutboxEvent.select(OutboxEvent.recipient).where(
        (OutboxEvent.aggregate_id == first) & (OutboxEvent.topic == "authorization.requested"))
    assert events == [{"recipient": f"person:{citizen.person.public_id}"}]
    await _deliver(ctx)
    page = await _notices(client, citizen, limit=1)
    assert len(page["items"]) == 1
    assert page["next_cursor"]
    newest = page["items"][0]
    assert newest["kind"] == "authorization_request"
    assert newest["payload"]["authorization_id"] == second
    assert "嘉兴银行" in newest["body"]
    assert newest["read_at"] is None
    assert newest["delivery_status"] == "sent"
    rest = await _notices(client, citizen, limit=1, cursor=page["next_cursor"])
    assert rest["items"][0]["payload"]["authorization_id"] == first
    assert rest["next_cursor"] is None
    # Delivered once by SMS per notice, with no id number in it.
    sent = _sms(ctx, citizen)
    assert len(sent) == 2
    assert all(citizen.person.id_number not in m.text for m in sent)
    # A second pass sends nothing again.
    await _deliver(ctx)
    assert len(_sms(ctx, citizen)) == 2

    read = await client.post(f"{NOTICES}/{newest['id']}/read", headers=citizen.headers)
    assert read.status_code == 200
    assert read.json()["read_at"]
    unread = await _notices(client, citizen, unread="true")
    assert [n["id"] for n in unread["items"]] == [rest["items"][0]["id"]]
    marked = await client.post(f"{NOTICES}/read-all", headers=citizen.headers)
    assert marked.json() == {"marked": 1}
    assert (await _notices(client, citizen, unread="true"))["items"] == []

    # Another citizen can neither see nor mark them.
    other = await bound_citizen(client, ctx, name="通知乙")
    assert (await _notices(client, other))["items"] == []
    r = await client.post(f"{NOTICES}/{newest['id']}/read", headers=other.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "notice_not_found"
    bad = await client.get(NOTICES, headers=citizen.headers, params={"cursor": "bm90LWEtY3Vyc29y"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"
    assert (await client.get(NOTICES)).status_code == 401


async def test_a_revocation_sends_a_receipt(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="通知丙")
    _, _, bank = await partner_session(client, name="回执银行")
    authorization_id = await authorization_for(client, bank, citizen)
    r = await client.post(f"/v1/me/authorizations/{authorization_id}/revoke", headers=citizen.headers, json={})
    assert r.status_code == 200, r.text
    await _deliver(ctx)
    kinds = [n["kind"] for n in (await _notices(client, citizen))["items"]]
    assert kinds[0] == "authorization_revoked"
    receipt = (await _notices(client, citizen))["items"][0]
    assert receipt["payload"]["authorization_id"] == authorization_id
    assert "回执银行" in receipt["body"]


async def test_a_negative_record_is_told_and_cannot_be_turned_off(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="通知丁")
    # Mandatory kinds refuse being turned off (or pushed nowhere); others accept it.
    for change in ({"kind": "negative_record", "enabled": False}, {"kind": "negative_record", "channel": "none"}):
        r = await client.put(PREFERENCES, headers=citizen.headers, json={"items": [change]})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "notice_kind_mandatory"
    r = await client.put(PREFERENCES, headers=citizen.headers, json={"items": [
        {"kind": "authorization_request", "enabled": False}]})
    assert r.status_code == 200, r.text
    prefs = {p["kind"]: p for p in r.json()["items"]}
    assert prefs["authorization_request"]["enabled"] is False
    assert prefs["negative_record"]["mandatory"] is True

    _, _, source = await partner_session(client, kind="data_source")
    pushed = await push_records(client, source, [record_row(citizen.person, title="拖欠货款")])
    assert pushed.status_code == 200, pushed.text
    _, _, bank = await partner_session(client)
    await authorization_for(client, bank, citizen, approve=False)  # opted out: no notice
    await _deliver(ctx)
    items = (await _notices(client, citizen))["items"]
    assert [n["kind"] for n in items] == ["negative_record"]
    told = items[0]
    assert told["mandatory"] is True
    assert "拖欠货款" in told["body"]
    assert "异议" in told["body"]
    assert told["payload"]["repair"]["repairable_from"]
    assert told["payload"]["objection"]["decision_working_days"] == 5
    assert [m.template for m in _sms(ctx, citizen)] == ["notice.negative_record"]


async def test_objection_and_repair_decisions_are_told(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="通知戊")
    record_id = await add_record(ctx, citizen.person)
    filed = await client.post("/v1/me/objections", headers=citizen.headers,
                              json={"record_id": record_id, "reason": "我已按时履约"})
    assert filed.status_code == 201, filed.text
    officer = await operator_session(client)
    decided = await client.post(f"/v1/admin/objections/{filed.json()['id']}/decide", headers=officer.headers,
                                json={"outcome": "rejected", "note": "材料不足"})
    assert decided.status_code == 200, decided.text
    await _deliver(ctx)
    notice = (await _notices(client, citizen))["items"][0]
    assert notice["kind"] == "objection_decision"
    assert "材料不足" in notice["body"]
    assert notice["payload"]["record_id"] == record_id


async def test_a_grace_period_ending_is_told_once_and_urgently(client, ctx) -> None:
    from tests.scenarios.test_credit_orders import _merchant, _opened, _verify

    citizen = await bound_citizen(client, ctx, name="通知己")
    merchant = await _merchant(client)
    order = await _opened(client, merchant, await _verify(client, merchant, citizen), amount_fen=12_000)
    r = await client.post(f"/v1/credit-orders/{order['id']}/default", headers=merchant.headers,
                          json={"amount_fen": 12_000})
    assert r.status_code == 200, r.text
    grace_until = datetime.fromisoformat(r.json()["grace_until"].replace("Z", "+00:00"))
    soon = grace_until - timedelta(hours=12)
    assert await notify_grace_ending(citizen_account=citizen_account_id, now=soon) >= 1
    assert await notify_grace_ending(citizen_account=citizen_account_id, now=soon) == 0  # once per order
    # Quiet hours all day long do not hold an urgent notice.
    local = datetime.now(UTC).astimezone(CITY_TZ)
    await client.put(PREFERENCES, headers=citizen.headers, json={"items": [{
        "kind": "credit_order", "quiet_start": (local - timedelta(hours=1)).strftime("%H:%M"),
        "quiet_end": (local + timedelta(hours=1)).strftime("%H:%M")}]})
    await _deliver(ctx, now=soon)
    items = (await _notices(client, citizen))["items"]
    ending = [n for n in items if n["payload"].get("type") == "credit_order.grace_ending"]
    assert len(ending) == 1
    assert ending[0]["urgent"] is True
    assert ending[0]["delivery_status"] == "sent"
    assert {n["kind"] for n in items} == {"credit_order"}


async def test_quiet_hours_delay_what_is_not_urgent(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="通知庚")
    now = datetime.now(UTC)
    local = now.astimezone(CITY_TZ)
    start, end = (local - timedelta(hours=1)).strftime("%H:%M"), (local + timedelta(hours=1)).strftime("%H:%M")
    r = await client.put(PREFERENCES, headers=citizen.headers, json={"items": [
        {"kind": "authorization_request", "quiet_start": start, "quiet_end": end}]})
    assert r.status_code == 200, r.text
    _, _, bank = await partner_session(client)
    authorization_id = await authorization_for(client, bank, citizen, approve=False)
    await _deliver(ctx, now=now + timedelta(seconds=1))
    # In the app at once, pushed only when the quiet hours end.
    notice = (await _notices(client, citizen))["items"][0]
    assert notice["delivery_status"] == "pending"
    assert _sms(ctx, citizen) == []
    event = await OutboxEvent.select(OutboxEvent.status, OutboxEvent.attempts, OutboxEvent.next_attempt_at).where(
        (OutboxEvent.aggregate_id == authorization_id) & (OutboxEvent.topic == "authorization.requested")).first()
    assert event["status"] == "pending"
    assert event["attempts"] == 0
    await _deliver(ctx, now=now + timedelta(hours=2))
    assert (await _notices(client, citizen))["items"][0]["delivery_status"] == "sent"
    assert len(_sms(ctx, citizen)) == 1


def test_quiet_hours_wrap_midnight() -> None:
    at = datetime(2026, 1, 5, 23, 30, tzinfo=CITY_TZ)
    assert quiet_until(at, start="22:00", end="08:00") == datetime(2026, 1, 6, 8, 0, tzinfo=CITY_TZ)
    assert quiet_until(at.replace(hour=7), start="22:00", end="08:00") == datetime(2026, 1, 5, 8, 0, tzinfo=CITY_TZ)
    assert quiet_until(at.replace(hour=12), start="22:00", end="08:00") is None
    assert quiet_until(at, start=None, end=None) is None


async def test_wechat_delivery_is_retried_after_the_gateway_fails(client, ctx, override_settings) -> None:
    simulated = wechat_app(appid="wx-test", secret="s3cret", fail_next=2)
    state: WechatState = simulated.state.wechat
    wechat = WechatSubscribeClient(base_url="http://wechat.test", appid="wx-test", secret="s3cret",
                                   transport=httpx.ASGITransport(app=simulated))
    channels = Channels(sms=ctx.sms, wechat=wechat, wechat_template_id="tmpl-notice")
    citizen = await bound_citizen(client, ctx, name="通知辛")
    openid = f"o{secrets.token_hex(8)}"
    r = await client.put(PREFERENCES, headers=citizen.headers, json={
        "wechat_openid": openid, "items": [{"kind": "authorization_request", "channel": "wechat"}]})
    assert r.status_code == 200, r.text
    assert r.json()["wechat_bound"] is True
    _, _, bank = await partner_session(client)
    authorization_id = await authorization_for(client, bank, citizen, approve=False)

    async def event() -> dict[str, Any]:
        row = await OutboxEvent.select(OutboxEvent.status, OutboxEvent.attempts, OutboxEvent.next_attempt_at).where(
            (OutboxEvent.aggregate_id == authorization_id) & (OutboxEvent.topic == "authorization.requested")).first()
        assert row is not None
        return dict(row)

    try:
        moment = datetime.now(UTC)
        await _deliver(ctx, now=moment, channels=channels)
        first = await event()
        assert first["status"] == "failed"
        assert first["attempts"] == 1
        assert state.refused == 1
        assert (await _notices(client, citizen))["items"][0]["delivery_status"] == "pending"
        # Not due yet: nothing happens before the backoff ends.
        await _deliver(ctx, now=moment + timedelta(seconds=1), channels=channels)
        assert (await event())["attempts"] == 1
        # WeChat says the token expired (another process fetched one): one refresh, then the send.
        state.expire_tokens()
        for _ in range(2):
            moment = (await event())["next_attempt_at"]
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) + timedelta(seconds=1)
            await _deliver(ctx, now=moment, channels=channels)
        done = await event()
        assert done["status"] == "delivered"
        assert done["attempts"] == 2
        assert state.refused == 2
        assert len(state.sent) == 1
        assert state.sent[0]["touser"] == openid
        assert state.sent[0]["template_id"] == "tmpl-notice"
        assert wechat.token_fetches == 2
        assert (await _notices(client, citizen))["items"][0]["delivery_status"] == "sent"
        assert _sms(ctx, citizen) == []
    finally:
        await wechat.close()


async def test_preferences_refuse_bad_input(client, ctx) -> None:
    citizen = await bound_citizen(client, ctx, name="通知壬")
    cases = [
        ({"items": [{"kind": "nope"}]}, "unknown_notice_kind"),
        ({"items": [{"kind": "other", "quiet_start": "22:00"}]}, "quiet_hours_incomplete"),
        ({"items": [{"kind": "other", "channel": "wechat"}]}, "wechat_not_bound"),
    ]
    for body, code in cases:
        r = await client.put(PREFERENCES, headers=citizen.headers, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == code
    for body in ({"items": [{"kind": "other", "quiet_start": "25:00", "quiet_end": "07:00"}]},
                 {"items": [{"kind": "other", "channel": "fax"}]}, {"items": "x"}, {"extra": 1, "items": []}):
        r = await client.put(PREFERENCES, headers=citizen.headers, json=body)
        assert r.status_code in (400, 422), r.text
    got = await client.get(PREFERENCES, headers=citizen.headers)
    assert got.status_code == 200
    assert {p["kind"] for p in got.json()["items"]} >= {"negative_record", "other"}
