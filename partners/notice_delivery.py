"""The notice worker: outbox events addressed to citizens become notices, pushed by SMS or WeChat.

Recipients: `citizen:<account id>` (scenarios, lending), `person:<person public id>` and
`enterprise:<enterprise public id>` (credit, which knows no accounts: the person's bound account and the
enterprise's active members are looked up here, through the `NoticeDirectory` the composition root gives).
Enterprise notices carry the enterprise's name and USCC in their payload.

One event moves like a webhook (partners/delivery.py, same outbox columns and backoff):

    pending ─claim→ delivering ─every push done→ delivered
                        ├─a push failed→ failed (retried at next_attempt_at, exponential backoff)
                        │                  └─after notice_max_attempts→ dead (the notices stay in the app)
                        └─only quiet hours left→ pending (next_attempt_at = when the quiet hours end)

The notice rows are written on the first claim (one per event and account: a unique key, so a retry or a
second worker never writes two), whatever the push does: the app shows them at once. A kind the citizen
turned off gets no row, except mandatory kinds. Pushes already sent are not sent again on a retry. Nothing
logged names a person: event ids, kinds and channels only.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from piccolo.engine.postgres import PostgresEngine
from piccolo.query.mixins import OnConflictAction
from piccolo.querystring import QueryString

from core import clock
from core.clock import CITY_TZ
from core.db import as_utc
from core.settings import Settings
from credit.identity import new_public_id
from credit.tables import OutboxEvent
from partners import notices
from partners.delivery import DEAD, DELIVERED, DELIVERING, FAILED, PENDING, backoff
from partners.sms import SmsDeliveryError, SmsMessage, SmsSender
from partners.tables import Notice
from partners.wechat import SubscribeMessage, WechatDeliveryError, WechatSubscribeClient

logger = logging.getLogger("xinyi.notices")

CITIZEN = "citizen:"
PERSON = "person:"
ENTERPRISE = "enterprise:"
_CLAIM_POSTGRES = (
    "UPDATE outbox_events SET status = 'delivering', next_attempt_at = {}"
    " WHERE id IN (SELECT o.id FROM outbox_events o"
    " WHERE o.status IN ('pending', 'failed', 'delivering') AND o.next_attempt_at <= {}"
    " AND (o.recipient LIKE 'citizen:%' OR o.recipient LIKE 'person:%' OR o.recipient LIKE 'enterprise:%')"
    " ORDER BY o.next_attempt_at LIMIT {} FOR UPDATE OF o SKIP LOCKED)"
    " AND status IN ('pending', 'failed', 'delivering') AND next_attempt_at <= {}"
    " RETURNING id"
)
_CLAIM_SQLITE = _CLAIM_POSTGRES.replace(" FOR UPDATE OF o SKIP LOCKED", "")
_outbox_id = OutboxEvent._meta.primary_key
SEND_TIMEOUT_SECONDS = 10


@dataclass(frozen=True, slots=True)
class Audience:
    account_ids: list[str]
    extra: dict[str, Any] = field(default_factory=dict)  # merged into the payload (the enterprise's name, USCC)


@dataclass(frozen=True, slots=True)
class NoticeDirectory:
    """What the worker needs from other domains, given by the composition root (partners imports none of them):
    the account bound to a registry person, the accounts acting for an enterprise, an account's phone."""

    accounts_of_person: Callable[[str], Awaitable[list[str]]]
    enterprise_audience: Callable[[str], Awaitable[Audience | None]]
    phone_of: Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Channels:
    sms: SmsSender
    wechat: WechatSubscribeClient | None = None
    wechat_template_id: str | None = None


def quiet_until(now: datetime, *, start: str | None, end: str | None) -> datetime | None:
    """When the quiet hours `start`–`end` (city time, HH:MM; may wrap midnight) around `now` end; None when
    `now` is outside them (or none are set)."""
    if not start or not end or start == end:
        return None
    local = now.astimezone(CITY_TZ)
    begin, finish = time.fromisoformat(start), time.fromisoformat(end)
    at = local.time()
    inside = begin <= at < finish if begin < finish else (at >= begin or at < finish)
    if not inside:
        return None
    ends = datetime.combine(local.date(), finish, tzinfo=CITY_TZ)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Claimed:
    event_id: str
    topic: str
    recipient: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


async def _claim(*, now: datetime, lease_until: datetime, limit: int) -> list[_Claimed]:
    engine = OutboxEvent._meta.db
    sql = _CLAIM_POSTGRES if isinstance(engine, PostgresEngine) else _CLAIM_SQLITE
    rows = await engine.run_querystring(QueryString(sql, lease_until, now, limit, now))
    ids = [int(r["id"]) for r in rows]
    if not ids:
        return []
    selected = await OutboxEvent.select(
        OutboxEvent.public_id, OutboxEvent.topic, OutboxEvent.recipient, OutboxEvent.payload, OutboxEvent.attempts,
        OutboxEvent.created_at,
    ).where(_outbox_id.is_in(ids)).output(load_json=True)
    return [_Claimed(event_id=r["public_id"], topic=r["topic"], recipient=r["recipient"],
                     payload=r["payload"] if isinstance(r["payload"], dict) else {}, attempts=int(r["attempts"]),
                     created_at=as_utc(r["created_at"]))
            for r in selected]


async def _finish(event: _Claimed, changes: dict[Any, Any]) -> None:
    # Conditional on our claim still standing (see partners/delivery.py).
    await OutboxEvent.update(changes).where(
        (OutboxEvent.public_id == event.event_id) & (OutboxEvent.status == DELIVERING)
        & (OutboxEvent.attempts == event.attempts))


async def _audience(recipient: str, directory: NoticeDirectory) -> Audience:
    if recipient.startswith(CITIZEN):
        return Audience(account_ids=[recipient.removeprefix(CITIZEN)])
    if recipient.startswith(PERSON):
        return Audience(account_ids=await directory.accounts_of_person(recipient.removeprefix(PERSON)))
    found = await directory.enterprise_audience(recipient.removeprefix(ENTERPRISE))
    return found or Audience(account_ids=[])


async def _write_notices(event: _Claimed, audience: Audience) -> None:
    """One notice per account that wants this kind (or must get it), once per event whatever the retries."""
    kind = notices.kind_of(event.topic)
    payload = {**event.payload, **audience.extra}
    title, body = notices.render(kind, payload)
    for account_id in audience.account_ids:
        chosen = await notices.preference(account_id=account_id, kind=kind.code)
        if not chosen.enabled and not kind.mandatory:
            continue
        channel = chosen.channel
        if kind.mandatory and channel == notices.NONE:
            channel = notices.SMS
        await Notice.insert(Notice(
            public_id=new_public_id("ntc"), event_id=event.event_id, account_id=account_id, kind=kind.code,
            title=title, body=body, payload=payload, urgent=kind.urgent, mandatory=kind.mandatory,
            created_at=event.created_at,  # when it happened: the list's order is the order of events
            channel=channel, delivery_status="in_app" if channel == notices.NONE else PENDING,
        )).on_conflict(target=(Notice.event_id, Notice.account_id), action=OnConflictAction.do_nothing)


async def _push(row: dict[str, Any], *, channels: Channels, directory: NoticeDirectory, now: datetime) -> None:
    """Send one notice over its channel; raises SmsDeliveryError / WechatDeliveryError on failure."""
    text = f"【信易】{row['title']}：{row['body']}"
    if row["channel"] == notices.WECHAT:
        openid = await notices.wechat_openid(row["account_id"])
        if channels.wechat is None or not channels.wechat_template_id or openid is None:
            # No WeChat configured (or the citizen unbound the mini-program): SMS rather than nothing.
            row = {**row, "channel": notices.SMS}
        else:
            local = now.astimezone(CITY_TZ)
            await channels.wechat.send(SubscribeMessage(
                openid=openid, template_id=channels.wechat_template_id,
                page=f"pages/notices/detail?id={row['public_id']}",
                data={"thing1": row["title"][:20], "thing2": row["body"][:20],
                      "time3": local.strftime("%Y-%m-%d %H:%M")}))
            return
    phone = await directory.phone_of(row["account_id"])
    if phone is None:
        return  # a closed account: nothing to send to, the notice stays in the app
    await channels.sms.send(SmsMessage(phone=phone, text=text, template=f"notice.{row['kind']}"))


async def _deliver(event: _Claimed, *, settings: Settings, channels: Channels, directory: NoticeDirectory,
                   now: datetime) -> str:
    await _write_notices(event, await _audience(event.recipient, directory))
    waiting = await Notice.select(Notice.public_id, Notice.account_id, Notice.kind, Notice.title, Notice.body,
                                  Notice.urgent, Notice.channel).where(
        (Notice.event_id == event.event_id) & (Notice.delivery_status == PENDING))
    failed = 0
    resume: datetime | None = None
    for row in waiting:
        chosen = await notices.preference(account_id=row["account_id"], kind=row["kind"])
        quiet = None if row["urgent"] else quiet_until(now, start=chosen.quiet_start, end=chosen.quiet_end)
        if quiet is not None:
            resume = quiet if resume is None else min(resume, quiet)
            continue
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await _push(row, channels=channels, directory=directory, now=now)
        except (SmsDeliveryError, WechatDeliveryError, TimeoutError) as exc:
            failed += 1
            logger.info("notice %s (%s) push by %s failed: %s", row["public_id"], row["kind"], row["channel"],
                        type(exc).__name__)
            continue
        await Notice.update({Notice.delivery_status: "sent", Notice.delivered_at: now}).where(
            Notice.public_id == row["public_id"])
    if failed:
        attempt = event.attempts + 1
        if attempt >= settings.notice_max_attempts:
            await Notice.update({Notice.delivery_status: DEAD}).where(
                (Notice.event_id == event.event_id) & (Notice.delivery_status == PENDING))
            await _finish(event, {OutboxEvent.status: DEAD, OutboxEvent.attempts: attempt,
                                  OutboxEvent.next_attempt_at: now})
            logger.warning("notice event %s is dead after %d attempts", event.event_id, attempt)
            return DEAD
        retry_at = now + backoff(attempts=attempt, base_seconds=settings.notice_base_delay_seconds)
        if resume is not None:
            retry_at = min(retry_at, resume)
        await _finish(event, {OutboxEvent.status: FAILED, OutboxEvent.attempts: attempt,
                              OutboxEvent.next_attempt_at: retry_at})
        return FAILED
    if resume is not None:
        # Only quiet hours hold it: not a failure, no attempt spent.
        await _finish(event, {OutboxEvent.status: PENDING, OutboxEvent.next_attempt_at: resume})
        return PENDING
    await _finish(event, {OutboxEvent.status: DELIVERED, OutboxEvent.delivered_at: now,
                          OutboxEvent.next_attempt_at: now})
    return DELIVERED


async def deliver_notices(*, settings: Settings, channels: Channels, directory: NoticeDirectory,
                          now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Turn up to `limit` due citizen events into notices and push them; returns how many ended in each state.

    Safe from several workers at once: claims are conditional updates with a lease, notices are unique per
    event and account. Events are handled one after another: a pass is bounded by `limit` sends.
    """
    moment = now or clock.now()
    lease = timedelta(seconds=SEND_TIMEOUT_SECONDS * math.ceil(limit) + 60)
    claimed = await _claim(now=moment, lease_until=moment + lease, limit=limit)
    outcomes: dict[str, int] = {}
    for event in claimed:
        try:
            outcome = await _deliver(event, settings=settings, channels=channels, directory=directory, now=moment)
        except Exception as exc:
            # One bad event must not hold up the others; its lease runs out and it is claimed again.
            logger.warning("notice event %s failed: %s", event.event_id, type(exc).__name__)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


__all__ = ["Audience", "Channels", "NoticeDirectory", "deliver_notices", "quiet_until"]
