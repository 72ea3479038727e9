"""Citizen notices (站内信) and the citizens' choices of how they reach them. No HTTP objects here.

A notice is written by the notice worker (partners/notice_delivery.py) from an outbox event addressed to a
citizen, in the transaction of the change it tells of. Each outbox topic maps to a notice kind; a kind says
whether the rules require it (`mandatory`: 失信告知 cannot be turned off, PIPL and the credit rules require the
subject be told) and whether it may wake someone (`urgent`: sent even in quiet hours, because a deadline runs).

Preferences are per (account, kind): off (no notice at all, except mandatory kinds), the push channel (sms,
wechat, or none: in the app only) and quiet hours (city time) during which non-urgent pushes wait.
Another citizen's notice looks exactly like a missing one (404 `notice_not_found`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from piccolo.columns.combination import Or
from piccolo.query.mixins import OnConflictAction

from core import clock
from core.db import as_utc, as_utc_or_none
from core.errors import NotFound, Unprocessable
from core.pagination import decode_time_cursor, encode_time_cursor
from partners.schemas import (
    NoticeOut,
    NoticePage,
    NoticePreferenceIn,
    NoticePreferenceOut,
    NoticePreferences,
    NoticesMarked,
)
from partners.tables import Notice, NoticeContact, NoticePreference

SMS = "sms"
WECHAT = "wechat"
NONE = "none"
CHANNELS = (SMS, WECHAT, NONE)


@dataclass(frozen=True, slots=True)
class NoticeKind:
    code: str
    name: str  # in Chinese, as the app and the preference page show it
    mandatory: bool = False
    urgent: bool = False


KINDS: dict[str, NoticeKind] = {k.code: k for k in (
    NoticeKind("authorization_request", "授权请求待处理"),
    NoticeKind("authorization_revoked", "授权撤销回执"),
    NoticeKind("negative_record", "失信告知", mandatory=True),
    NoticeKind("objection_decision", "异议处理结果"),
    NoticeKind("repair_decision", "信用修复结果"),
    # A grace period about to end is money and a record at stake within hours: not held for quiet hours.
    NoticeKind("credit_order", "信用订单提醒", urgent=True),
    NoticeKind("lending_decision", "融资申请进展"),
    NoticeKind("other", "其他通知"),
)}

TOPIC_KINDS = {
    "authorization.requested": "authorization_request",
    "authorization.revoked": "authorization_revoked",
    "record.negative": "negative_record",
    "credit_order.recorded": "negative_record",  # a default became a negative record: 失信告知 too
    "objection.decided": "objection_decision",
    "repair.decided": "repair_decision",
    "credit_order.defaulted": "credit_order",
    "credit_order.grace_ending": "credit_order",
}


def kind_of(topic: str) -> NoticeKind:
    """The notice kind of an outbox topic (every lending application step is a lending decision notice)."""
    if topic.startswith("lending.application."):
        return KINDS["lending_decision"]
    return KINDS[TOPIC_KINDS.get(topic, "other")]


_FALLBACK_BODY = {
    "authorization_request": "有机构请求查询您的信用信息，请在“我的授权”中同意或拒绝。",
    "authorization_revoked": "您已撤销一项授权，该机构将无法再查询您的信用信息。",
    "negative_record": "您有一条新的失信记录，如有异议可在“我的信用记录”中提出异议或申请信用修复。",
    "objection_decision": "您的异议已有处理结果，请在“我的信用记录”中查看。",
    "repair_decision": "您的信用修复申请已有处理结果，请在“我的信用记录”中查看。",
    "credit_order": "您有一笔信用订单需要处理，请在“我的信用订单”中查看。",
    "lending_decision": "您企业的融资申请有新进展，请在“信易贷”中查看。",
    "other": "您有一条新通知。",
}


def render(kind: NoticeKind, payload: dict[str, Any]) -> tuple[str, str]:
    """(title, body) of a notice: the kind's name, and the event's own sentence when it wrote one."""
    message = payload.get("message")
    body = message if isinstance(message, str) and message.strip() else _FALLBACK_BODY[kind.code]
    enterprise = payload.get("enterprise")
    title = kind.name
    if isinstance(enterprise, dict) and isinstance(enterprise.get("name"), str):
        title = f"{kind.name}（{enterprise['name']}）"
    return title[:100], body


# ---------------------------------------------------------------- reading and marking


_COLUMNS = (Notice.public_id, Notice.kind, Notice.title, Notice.body, Notice.payload, Notice.urgent,
            Notice.mandatory, Notice.created_at, Notice.read_at, Notice.channel, Notice.delivery_status)


def _out(row: dict[str, Any]) -> NoticeOut:
    payload = row["payload"]
    return NoticeOut(id=row["public_id"], kind=row["kind"], title=row["title"], body=row["body"],
                     payload=payload if isinstance(payload, dict) else {}, urgent=bool(row["urgent"]),
                     mandatory=bool(row["mandatory"]), created_at=as_utc(row["created_at"]),
                     read_at=as_utc_or_none(row["read_at"]), channel=row["channel"],
                     delivery_status=row["delivery_status"])


async def list_notices(*, account_id: str, limit: int, cursor: str | None = None, unread: bool = False
                       ) -> NoticePage:
    """The account's notices, newest first; `unread` keeps those not read yet.

    Raises:
        Unprocessable: `invalid_cursor`.
    """
    query = Notice.select(*_COLUMNS).where(Notice.account_id == account_id).order_by(
        Notice.created_at, Notice.public_id, ascending=False).limit(limit + 1).output(load_json=True)
    if unread:
        query = query.where(Notice.read_at.is_null())
    if cursor:
        at, public_id = decode_time_cursor(cursor)
        query = query.where(Or(Notice.created_at < at, (Notice.created_at == at) & (Notice.public_id < public_id)))
    rows = await query
    page = rows[:limit]
    next_cursor = (encode_time_cursor(page[-1]["created_at"], page[-1]["public_id"])
                   if len(rows) > limit and page else None)
    return NoticePage(items=[_out(r) for r in page], next_cursor=next_cursor)


async def mark_read(*, account_id: str, notice_id: str, now: datetime | None = None) -> NoticeOut:
    """Mark one of the account's notices read (again: unchanged, the first reading time stays).

    Raises:
        NotFound: `notice_not_found` — not the account's notice.
    """
    await Notice.update({Notice.read_at: now or clock.now()}).where(
        (Notice.public_id == notice_id) & (Notice.account_id == account_id) & Notice.read_at.is_null())
    row = await Notice.select(*_COLUMNS).where(
        (Notice.public_id == notice_id) & (Notice.account_id == account_id)).output(load_json=True).first()
    if row is None:
        raise NotFound("notice not found", code="notice_not_found")
    return _out(row)


async def mark_all_read(*, account_id: str, now: datetime | None = None) -> NoticesMarked:
    marked = await Notice.update({Notice.read_at: now or clock.now()}).where(
        (Notice.account_id == account_id) & Notice.read_at.is_null()).returning(Notice.public_id)
    return NoticesMarked(marked=len(marked))


# ---------------------------------------------------------------- preferences


@dataclass(frozen=True, slots=True)
class Preference:
    enabled: bool = True
    channel: str = SMS
    quiet_start: str | None = None
    quiet_end: str | None = None


async def preference(*, account_id: str, kind: str) -> Preference:
    row = await NoticePreference.select().where(
        (NoticePreference.account_id == account_id) & (NoticePreference.kind == kind)).first()
    if row is None:
        return Preference()
    return Preference(enabled=bool(row["enabled"]), channel=row["channel"], quiet_start=row["quiet_start"],
                      quiet_end=row["quiet_end"])


async def wechat_openid(account_id: str) -> str | None:
    row = await NoticeContact.select(NoticeContact.wechat_openid).where(NoticeContact.account_id == account_id).first()
    return None if row is None else row["wechat_openid"]


async def preferences(*, account_id: str) -> NoticePreferences:
    """Every kind with the account's choice (the default where it made none)."""
    rows = {r["kind"]: r for r in await NoticePreference.select().where(NoticePreference.account_id == account_id)}
    items = []
    for kind in KINDS.values():
        row = rows.get(kind.code)
        chosen = Preference() if row is None else Preference(
            enabled=bool(row["enabled"]), channel=row["channel"], quiet_start=row["quiet_start"],
            quiet_end=row["quiet_end"])
        items.append(NoticePreferenceOut(kind=kind.code, name=kind.name, mandatory=kind.mandatory,
                                         urgent=kind.urgent, enabled=chosen.enabled or kind.mandatory,
                                         channel=chosen.channel, quiet_start=chosen.quiet_start,
                                         quiet_end=chosen.quiet_end))
    return NoticePreferences(items=items, wechat_bound=await wechat_openid(account_id) is not None)


def _check(item: NoticePreferenceIn, *, has_wechat: bool) -> NoticeKind:
    kind = KINDS.get(item.kind)
    if kind is None:
        raise Unprocessable(f"unknown notice kind {item.kind!r}", code="unknown_notice_kind",
                            errors=[{"field": "kind", "message": "not a notice kind"}])
    if kind.mandatory and (not item.enabled or item.channel == NONE):
        # 失信告知: the subject must be told, and told outside the app.
        raise Unprocessable(f"{kind.name} is required by the rules and cannot be turned off",
                            code="notice_kind_mandatory", errors=[{"field": "enabled", "message": kind.code}])
    if (item.quiet_start is None) != (item.quiet_end is None):
        raise Unprocessable("quiet hours need both a start and an end", code="quiet_hours_incomplete")
    if item.channel == WECHAT and not has_wechat:
        raise Unprocessable("bind the mini-program (wechat_openid) before choosing WeChat", code="wechat_not_bound")
    return kind


async def update_preferences(*, account_id: str, items: list[NoticePreferenceIn], wechat_openid_value: str | None
                             ) -> NoticePreferences:
    """Set the account's choices for the kinds named (others unchanged) and, when given, its mini-program open id.

    Raises:
        Unprocessable: `unknown_notice_kind`, `notice_kind_mandatory`, `quiet_hours_incomplete`, `wechat_not_bound`.
    """
    now = clock.now()
    has_wechat = wechat_openid_value is not None or await wechat_openid(account_id) is not None
    for item in items:
        _check(item, has_wechat=has_wechat)
    if wechat_openid_value is not None:
        await NoticeContact.insert(NoticeContact(account_id=account_id, wechat_openid=wechat_openid_value,
                                                 updated_at=now)).on_conflict(
            target=NoticeContact.account_id, action=OnConflictAction.do_update,
            values=[NoticeContact.wechat_openid, NoticeContact.updated_at])
    for item in items:
        await NoticePreference.insert(NoticePreference(
            account_id=account_id, kind=item.kind, enabled=item.enabled, channel=item.channel,
            quiet_start=item.quiet_start, quiet_end=item.quiet_end, updated_at=now)).on_conflict(
            target=(NoticePreference.account_id, NoticePreference.kind), action=OnConflictAction.do_update,
            values=[NoticePreference.enabled, NoticePreference.channel, NoticePreference.quiet_start,
                    NoticePreference.quiet_end, NoticePreference.updated_at])
    return await preferences(account_id=account_id)


__all__ = ["CHANNELS", "KINDS", "NONE", "SMS", "TOPIC_KINDS", "WECHAT", "NoticeKind", "Preference", "kind_of",
           "list_notices", "mark_all_read", "mark_read", "preference", "preferences", "render",
           "update_preferences", "wechat_openid"]


async def forget_account(*, account_id: str) -> int:
    """What closing an account deletes of its notice settings: its preferences and its WeChat contact (the
    notices already written stay in the tombstone's list, unreachable: nobody can log in to it). Safe to run
    again; returns how many rows went."""
    removed = 0
    for table in (NoticePreference, NoticeContact):
        removed += await table.count().where(table.account_id == account_id)
        await table.delete().where(table.account_id == account_id)
    return removed
