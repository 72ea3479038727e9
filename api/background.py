"""Background work: expire due authorizations, sign ledger checkpoints and finish re-scoring that a failed
request left undone (marks past their writer's lease), on a fixed interval.

Runs inside the app's lifespan in single-process mode and as `xinyi worker` in production. Every step
is idempotent and safe to run from several processes at once (conditional updates; a checkpoint of an
already checkpointed head is a no-op), so an extra worker never corrupts anything.
"""

from __future__ import annotations

import asyncio
import logging

from api.context import AppContext
from credit import authorizations
from credit.ledger import CHECKPOINT_TYP, create_checkpoint
from credit.scores import rescore_due
from credit.stats import refresh_current_stats
from partners.delivery import deliver_due, emit_expiring_soon
from scenarios.orders import record_unsettled_defaults

logger = logging.getLogger("xinyi.background")


async def run_once(ctx: AppContext) -> dict[str, int]:
    """One pass of every periodic job; returns what it did."""
    expired = await authorizations.expire_due()
    checkpoint = await create_checkpoint(sign=lambda claims: ctx.tokens.sign_document(claims, typ=CHECKPOINT_TYP))
    await emit_expiring_soon()
    # Before delivery, so the merchants' and citizens' events of new records go out in the same pass.
    recorded = await record_unsettled_defaults(store=ctx.store)
    rescored = await rescore_due(store=ctx.store)  # after the defaults: a re-scoring they failed is retried now
    await deliver_due(ctx=ctx)
    await refresh_current_stats()  # today's (and a just-ended yesterday's) policy indicators
    return {"expired_authorizations": expired, "checkpoint_seq": int(checkpoint["seq"]) if checkpoint else 0,
            "recorded_credit_order_defaults": recorded, "rescored_persons": rescored}


async def run_forever(ctx: AppContext) -> None:
    while True:
        try:
            await run_once(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("background pass failed: %s", type(exc).__name__)
        await asyncio.sleep(ctx.settings.background_interval_seconds)
