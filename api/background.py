"""Background work: expire due authorizations, sign ledger checkpoints, finish re-scoring that a failed
request left undone (marks past their writer's lease), tell citizens whose credit order's grace period is
ending, turn citizens' outbox events into notices and push them (SMS, WeChat), refresh statistics, purge
expired revocations and warn about a working-day calendar that runs out, on a fixed interval.

Runs inside the app's lifespan in single-process mode and as `xinyi worker` in production. Every step
is idempotent and safe to run from several processes at once (conditional updates; a checkpoint of an
already checkpointed head is a no-op), so an extra worker never corrupts anything.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime

from accounts.citizens import account_phone, accounts_of_person, citizen_account_id
from accounts.revocations import purge_expired_revocations
from api.context import AppContext
from core import clock
from core.calendar import WorkingCalendar
from credit import authorizations
from credit.ledger import CHECKPOINT_TYP, create_checkpoint
from credit.scores import rescore_due
from credit.stats import refresh_current_stats
from lending.enterprises import enterprise_audience
from partners.delivery import deliver_due, emit_expiring_soon
from partners.notice_delivery import Audience, Channels, NoticeDirectory, deliver_notices
from scenarios.orders import notify_grace_ending, record_unsettled_defaults

logger = logging.getLogger("xinyi.background")

CALENDAR_LOOKAHEAD_DAYS = 60
"""Longer than any working-day deadline the service counts (30 working days around Spring Festival)."""
_calendar_warned: dict[int, date] = {}
"""Year → the city day this process last logged it unknown (once a day, not every pass)."""


def check_calendar_ahead(calendar: WorkingCalendar, *, now: datetime | None = None) -> list[int]:
    """Log an error for each year of the coming weeks the working-day calendar does not know.

    Deadlines that run into such a year are refused (503 `calendar_year_unknown`); this says so in the
    log weeks before the first refusal, so the operators can configure the year's holidays in time.
    """
    today = clock.city_today(now)
    unknown = calendar.unknown_years(today, CALENDAR_LOOKAHEAD_DAYS)
    for year in unknown:
        if _calendar_warned.get(year) == today:
            continue
        _calendar_warned[year] = today
        logger.error("the working-day calendar does not know the holidays of %d: deadlines that reach it are "
                     "refused until XINYI_CALENDAR_HOLIDAYS / XINYI_CALENDAR_WORKDAYS cover it or chinesecalendar "
                     "is upgraded", year)
    return unknown


def notice_directory(ctx: AppContext) -> NoticeDirectory:
    """What the notice worker needs of accounts and lending, composed here (partners imports neither)."""

    async def enterprise(public_id: str) -> Audience | None:
        found = await enterprise_audience(cipher=ctx.cipher, enterprise_public_id=public_id)
        if found is None:
            return None
        return Audience(account_ids=found.account_ids,
                        extra={"enterprise": {"id": public_id, "name": found.name, "uscc": found.uscc}})

    async def phone(account_id: str) -> str | None:
        return await account_phone(cipher=ctx.cipher, account_id=account_id)

    return NoticeDirectory(accounts_of_person=accounts_of_person, enterprise_audience=enterprise, phone_of=phone)


def notice_channels(ctx: AppContext) -> Channels:
    return Channels(sms=ctx.sms, wechat=ctx.wechat, wechat_template_id=ctx.settings.wechat_notice_template_id)


async def deliver_citizen_notices(ctx: AppContext) -> dict[str, int]:
    """One pass of the notice worker (also run by tests and `xinyi worker` through `run_once`)."""
    return await deliver_notices(settings=ctx.settings, channels=notice_channels(ctx),
                                 directory=notice_directory(ctx))


async def run_once(ctx: AppContext) -> dict[str, int]:
    """One pass of every periodic job; returns what it did."""
    expired = await authorizations.expire_due()
    checkpoint = await create_checkpoint(sign=lambda claims: ctx.tokens.sign_document(claims, typ=CHECKPOINT_TYP))
    await emit_expiring_soon()
    # Before delivery, so the merchants' and citizens' events of new records go out in the same pass.
    recorded = await record_unsettled_defaults(store=ctx.store, citizen_account=citizen_account_id)
    rescored = await rescore_due(store=ctx.store)  # after the defaults: a re-scoring they failed is retried now
    grace_ending = await notify_grace_ending(citizen_account=citizen_account_id)
    await deliver_due(settings=ctx.settings, cipher=ctx.cipher)
    notices = await deliver_citizen_notices(ctx)
    # Today's (and a just-ended yesterday's) policy indicators.
    await refresh_current_stats(counters=ctx.daily_counts, calendar=ctx.settings.calendar)
    unknown_years = check_calendar_ahead(ctx.settings.calendar)
    purged = await purge_expired_revocations()
    return {"expired_authorizations": expired, "checkpoint_seq": int(checkpoint["seq"]) if checkpoint else 0,
            "recorded_credit_order_defaults": recorded, "rescored_persons": rescored,
            "calendar_unknown_years": len(unknown_years), "purged_revocations": purged,
            "credit_order_grace_ending_notices": grace_ending, "notice_events": sum(notices.values())}


async def run_forever(ctx: AppContext) -> None:
    while True:
        try:
            await run_once(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("background pass failed: %s", type(exc).__name__)
        await asyncio.sleep(ctx.settings.background_interval_seconds)
