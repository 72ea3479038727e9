"""Webhook delivery from the transactional outbox (at least once, stable event ids).

An outbox event addressed to a partner moves through:

    pending ─claim→ delivering ─2xx→ delivered
                        └─failure→ failed (retried at next_attempt_at, exponential backoff)
                                     └─after webhook_max_attempts→ dead (manual replay only)
    pending/failed ─partner has no webhook_url→ no_endpoint (manual replay only)

Claiming is one conditional UPDATE that turns due rows into `delivering` with a lease (their
`next_attempt_at` becomes the lease's end), so any number of workers can run this at once: a row is
claimed by exactly one of them, and a worker that dies mid-delivery only delays the row until its lease
runs out, when another worker claims it again (hence at least once; receivers de-duplicate on
`webhook-id`). On PostgreSQL the claim skips rows another worker is claiming (`FOR UPDATE SKIP LOCKED`)
instead of queueing behind them; SQLite serialises writers, so the plain conditional UPDATE suffices.

Events addressed to `citizen:…` are notices for another adapter: nothing here touches them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from piccolo.columns.combination import WhereRaw
from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString

from core.db import as_utc_or_none
from core.errors import Conflict, NotFound, Unprocessable
from credit.tables import Authorization, OutboxEvent
from partners.schemas import Delivery, DeliveryPage, LastAttempt
from partners.ssrf import Outcome, SafeHttpClient
from partners.tables import WebhookAttempt
from partners.webhooks import Endpoint, endpoint_for, event_body, sign

if TYPE_CHECKING:
    from core.settings import Settings
    from credit.identity import FieldCipher

logger = logging.getLogger("xinyi.webhooks")

PENDING = "pending"
DELIVERING = "delivering"
DELIVERED = "delivered"
FAILED = "failed"
DEAD = "dead"
NO_ENDPOINT = "no_endpoint"
STATUSES = (PENDING, DELIVERING, DELIVERED, FAILED, DEAD, NO_ENDPOINT)
# What a partner may replay by hand; `pending` too, which just makes it due now.
REPLAYABLE = (DEAD, NO_ENDPOINT, FAILED, PENDING)

EXPIRING_SOON = "authorization.expiring_soon"
CONCURRENCY = 8  # deliveries in flight per pass: one slow receiver must not stall the others
MAX_BACKOFF = timedelta(days=1)
_jitter = secrets.SystemRandom()
_outbox_id = OutboxEvent._meta.primary_key
_attempt_id = WebhookAttempt._meta.primary_key

# Due rows of partners that have an endpoint (`delivering` rows are due again once their lease ran out),
# turned into `delivering` with a lease. The status and time test is repeated outside the sub-select:
# the row must still be due when this statement updates it. PostgreSQL skips rows another worker is
# claiming instead of queueing behind its lock.
_CLAIM_POSTGRES = (
    "UPDATE outbox_events SET status = 'delivering', next_attempt_at = {}"
    " WHERE id IN (SELECT o.id FROM outbox_events o"
    " WHERE o.status IN ('pending', 'failed', 'delivering') AND o.next_attempt_at <= {}"
    " AND o.recipient IN (SELECT p.client_id FROM partners p WHERE p.webhook_url IS NOT NULL)"
    " ORDER BY o.next_attempt_at LIMIT {} FOR UPDATE OF o SKIP LOCKED)"
    " AND status IN ('pending', 'failed', 'delivering') AND next_attempt_at <= {}"
    " RETURNING id"
)
_CLAIM_SQLITE = (
    "UPDATE outbox_events SET status = 'delivering', next_attempt_at = {}"
    " WHERE id IN (SELECT o.id FROM outbox_events o"
    " WHERE o.status IN ('pending', 'failed', 'delivering') AND o.next_attempt_at <= {}"
    " AND o.recipient IN (SELECT p.client_id FROM partners p WHERE p.webhook_url IS NOT NULL)"
    " ORDER BY o.next_attempt_at LIMIT {})"
    " AND status IN ('pending', 'failed', 'delivering') AND next_attempt_at <= {}"
    " RETURNING id"
)
# Events of known partners without an endpoint park as no_endpoint (citizen notices never match).
_PARK = (
    "UPDATE outbox_events SET status = 'no_endpoint'"
    " WHERE status IN ('pending', 'failed')"
    " AND recipient IN (SELECT p.client_id FROM partners p WHERE p.webhook_url IS NULL)"
)


def backoff(*, attempts: int, base_seconds: int) -> timedelta:
    """Delay after the `attempts`-th failure: base · 2^(attempts-1), plus up to 10 % jitter (so
    receivers that failed together are not retried in lockstep), capped at a day."""
    seconds = base_seconds * 2 ** max(0, attempts - 1) * (1 + _jitter.uniform(0, 0.1))
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


@dataclass(frozen=True, slots=True)
class _Claimed:
    event_id: str
    topic: str
    recipient: str
    payload: Any
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
        OutboxEvent.public_id, OutboxEvent.topic, OutboxEvent.recipient, OutboxEvent.payload,
        OutboxEvent.attempts, OutboxEvent.created_at,
    ).where(_outbox_id.is_in(ids)).output(load_json=True)
    return [_Claimed(event_id=r["public_id"], topic=r["topic"], recipient=r["recipient"],
                     payload=r["payload"], attempts=int(r["attempts"]), created_at=r["created_at"])
            for r in selected]


async def _finish(event: _Claimed, changes: dict[Any, Any]) -> None:
    # Conditional on our claim still standing: if our lease ran out and another worker took the row,
    # its outcome wins and ours is only in the attempt log.
    await OutboxEvent.update(changes).where(
        (OutboxEvent.public_id == event.event_id) & (OutboxEvent.status == DELIVERING)
        & (OutboxEvent.attempts == event.attempts))


async def _deliver_one(event: _Claimed, *, endpoint: Endpoint | None, http: SafeHttpClient,
                       settings: Settings) -> Outcome | None:
    if endpoint is None:
        # The endpoint was removed between the claim and now.
        await _finish(event, {OutboxEvent.status: NO_ENDPOINT, OutboxEvent.next_attempt_at: datetime.now(UTC)})
        return None
    body = event_body(event_id=event.event_id, topic=event.topic, created_at=event.created_at, data=event.payload)
    headers = {"Content-Type": "application/json",
               **sign(secret=endpoint.secret, event_id=event.event_id, body=body)}
    outcome = await http.post(endpoint.url, content=body, headers=headers)
    attempt = event.attempts + 1
    now = datetime.now(UTC)
    await WebhookAttempt.insert(WebhookAttempt(
        event_id=event.event_id, partner_client_id=event.recipient, attempt=attempt, attempted_at=now,
        status_code=outcome.status_code, error=outcome.error[:200] if outcome.error else None,
        duration_ms=outcome.duration_ms))
    await _record(event, outcome, attempt=attempt, now=now, settings=settings)
    return outcome


async def _record(event: _Claimed, outcome: Outcome, *, attempt: int, now: datetime, settings: Settings) -> None:
    # Event and partner ids only: never the payload, the URL's secrets or the signing secret.
    if outcome.ok:
        await _finish(event, {OutboxEvent.status: DELIVERED, OutboxEvent.attempts: attempt,
                              OutboxEvent.delivered_at: now, OutboxEvent.next_attempt_at: now})
        logger.info("webhook %s delivered to %s (attempt %d)", event.event_id, event.recipient, attempt)
    elif attempt >= settings.webhook_max_attempts:
        await _finish(event, {OutboxEvent.status: DEAD, OutboxEvent.attempts: attempt,
                              OutboxEvent.next_attempt_at: now})
        logger.warning("webhook %s to %s is dead after %d attempts (last: %s)", event.event_id, event.recipient,
                       attempt, outcome.error)
    else:
        retry_at = now + backoff(attempts=attempt, base_seconds=settings.webhook_base_delay_seconds)
        await _finish(event, {OutboxEvent.status: FAILED, OutboxEvent.attempts: attempt,
                              OutboxEvent.next_attempt_at: retry_at})
        logger.info("webhook %s to %s failed (attempt %d: %s); retry at %s", event.event_id, event.recipient,
                    attempt, outcome.error, retry_at.isoformat())


async def _endpoints(cipher: FieldCipher, client_ids: set[str]) -> dict[str, Endpoint | Exception | None]:
    found: dict[str, Endpoint | Exception | None] = {}
    for client_id in client_ids:
        try:
            found[client_id] = await endpoint_for(cipher=cipher, client_id=client_id)
        except ValueError as exc:
            found[client_id] = exc
    return found


async def deliver_due(*, settings: Settings, cipher: FieldCipher, limit: int = 100) -> int:
    """Deliver up to `limit` due webhook events; returns how many were attempted.

    Safe to run from several workers at once (see the module docstring). `settings` gives the delivery
    policy (timeouts, attempts, backoff, loopback), `cipher` opens the partners' signing secrets.
    """
    engine = OutboxEvent._meta.db
    await engine.run_querystring(QueryString(_PARK))
    now = datetime.now(UTC)
    # The lease must outlast the whole pass, or a slow pass would see its rows claimed again under it.
    lease = timedelta(seconds=settings.webhook_timeout_seconds * math.ceil(limit / CONCURRENCY) + 60)
    claimed = await _claim(now=now, lease_until=now + lease, limit=limit)
    if not claimed:
        return 0
    endpoints = await _endpoints(cipher, {e.recipient for e in claimed})
    gate = asyncio.Semaphore(CONCURRENCY)

    async with SafeHttpClient(allow_loopback=settings.webhook_allow_loopback,
                              timeout_seconds=settings.webhook_timeout_seconds,
                              max_response_bytes=settings.webhook_max_response_bytes) as http:

        async def one(event: _Claimed) -> None:
            endpoint = endpoints.get(event.recipient)
            async with gate:
                if isinstance(endpoint, Exception):
                    # A secret that no longer decrypts (rotated data key): counted as a failed attempt so
                    # the event still ends dead-lettered and visible rather than stuck.
                    failed = Outcome(status_code=None, error="secret_unreadable", duration_ms=0)
                    attempt = event.attempts + 1
                    now = datetime.now(UTC)
                    await WebhookAttempt.insert(WebhookAttempt(
                        event_id=event.event_id, partner_client_id=event.recipient, attempt=attempt,
                        attempted_at=now, error=failed.error, duration_ms=0))
                    await _record(event, failed, attempt=attempt, now=now, settings=settings)
                    return
                await _deliver_one(event, endpoint=endpoint, http=http, settings=settings)

        await asyncio.gather(*(one(e) for e in claimed))
    return len(claimed)


# ------------------------------------------------------------------ expiring soon


_NOT_ANNOUNCED = ("NOT EXISTS (SELECT 1 FROM outbox_events o"
                  " WHERE o.aggregate_id = authorizations.public_id AND o.topic = {})")


def _expiring_event_id(authorization_id: str) -> str:
    # Derived from the authorization: two workers emitting at once produce the same id, and the unique
    # public id lets only one row in ("once per authorization" without a lock).
    return "evt_" + hashlib.sha256(f"{authorization_id}:{EXPIRING_SOON}".encode()).hexdigest()[:24]


async def emit_expiring_soon(*, days: int = 3, now: datetime | None = None) -> int:
    """Write one `authorization.expiring_soon` event per authorized authorization whose valid_until falls
    within `days`; returns how many were written (each authorization gets at most one, ever)."""
    moment = now or datetime.now(UTC)
    # Authorizations already announced are left out by the query itself (a probe of the indexed
    # aggregate_id per candidate), so a backlog of announced ones never crowds new ones out of the batch.
    rows = await Authorization.select(
        Authorization.public_id, Authorization.partner_client_id, Authorization.purpose, Authorization.valid_until,
    ).where((Authorization.status == "authorized") & (Authorization.valid_until > moment)
            & (Authorization.valid_until <= moment + timedelta(days=days))
            & WhereRaw(_NOT_ANNOUNCED, EXPIRING_SOON)).order_by(Authorization.valid_until).limit(1000)
    written = 0
    for row in rows:
        valid_until = row["valid_until"] if row["valid_until"].tzinfo else row["valid_until"].replace(tzinfo=UTC)
        inserted = await OutboxEvent.insert(OutboxEvent(
            public_id=_expiring_event_id(row["public_id"]), topic=EXPIRING_SOON, aggregate_id=row["public_id"],
            recipient=row["partner_client_id"], payload={
                "type": EXPIRING_SOON, "authorization_id": row["public_id"], "purpose": row["purpose"],
                "status": "authorized", "valid_until": valid_until.isoformat()},
        )).on_conflict(action="DO NOTHING").returning(OutboxEvent.public_id)
        written += len(inserted)
    return written


# ------------------------------------------------------------------ the partner's view


_VIEW_COLUMNS = (_outbox_id, OutboxEvent.public_id, OutboxEvent.topic, OutboxEvent.status, OutboxEvent.attempts,
                 OutboxEvent.created_at, OutboxEvent.next_attempt_at, OutboxEvent.delivered_at)


async def _views(rows: list[dict[str, Any]]) -> list[Delivery]:
    last: dict[str, LastAttempt] = {}
    if rows:
        attempts = await WebhookAttempt.select(
            WebhookAttempt.event_id, WebhookAttempt.attempted_at, WebhookAttempt.status_code, WebhookAttempt.error,
            WebhookAttempt.duration_ms,
        ).where(WebhookAttempt.event_id.is_in([r["public_id"] for r in rows])).order_by(
            _attempt_id, ascending=False)
        for a in attempts:
            last.setdefault(a["event_id"], LastAttempt(
                at=as_utc_or_none(a["attempted_at"]) or datetime.now(UTC), status_code=a["status_code"],
                error=a["error"], duration_ms=int(a["duration_ms"])))
    return [Delivery(
        id=r["public_id"], type=r["topic"], status=r["status"], attempts=int(r["attempts"]),
        created_at=as_utc_or_none(r["created_at"]) or datetime.now(UTC),
        # Only a scheduled (or leased) event has a meaningful next attempt.
        next_attempt_at=as_utc_or_none(r["next_attempt_at"]) if r["status"] in (PENDING, FAILED, DELIVERING) else None,
        delivered_at=as_utc_or_none(r["delivered_at"]), last_attempt=last.get(r["public_id"])) for r in rows]


async def list_deliveries(*, client_id: str, limit: int, status: str | None = None, cursor: str | None = None
                          ) -> DeliveryPage:
    """The partner's own events, newest first, one page after `cursor` (the last id of the previous page).

    Raises:
        Unprocessable: the cursor is not one of the partner's events (`invalid_cursor`).
    """
    query = OutboxEvent.select(*_VIEW_COLUMNS).where(OutboxEvent.recipient == client_id).order_by(
        _outbox_id, ascending=False).limit(limit + 1)
    if status is not None:
        query = query.where(OutboxEvent.status == status)
    if cursor:
        anchor = await OutboxEvent.select(_outbox_id).where(
            (OutboxEvent.public_id == cursor) & (OutboxEvent.recipient == client_id)).first()
        if anchor is None:
            raise Unprocessable("invalid cursor", code="invalid_cursor")
        query = query.where(_outbox_id < anchor["id"])
    rows = await query
    page = rows[:limit]
    next_cursor = page[-1]["public_id"] if len(rows) > limit and page else None
    return DeliveryPage(items=await _views(page), next_cursor=next_cursor)


async def _own(*, client_id: str, event_id: str) -> dict[str, Any]:
    row = await OutboxEvent.select(*_VIEW_COLUMNS).where(
        (OutboxEvent.public_id == event_id) & (OutboxEvent.recipient == client_id)).first()
    if row is None:
        # Another partner's event looks exactly like a missing one.
        raise NotFound("delivery not found", code="delivery_not_found")
    return row


async def get_delivery(*, client_id: str, event_id: str) -> Delivery:
    return (await _views([await _own(client_id=client_id, event_id=event_id)]))[0]


async def retry_delivery(*, client_id: str, event_id: str) -> Delivery:
    """Replay one of the partner's events: back to pending, due now, with a fresh attempt budget.

    Raises:
        NotFound: not one of the partner's events (`delivery_not_found`).
        Conflict: already delivered (`delivery_already_delivered`) or being delivered right now
            (`delivery_in_progress`).
    """
    row = await _own(client_id=client_id, event_id=event_id)
    if row["status"] == DELIVERED:
        raise Conflict("the event was already delivered", code="delivery_already_delivered")
    updated = await OutboxEvent.update({
        OutboxEvent.status: PENDING, OutboxEvent.attempts: 0, OutboxEvent.next_attempt_at: datetime.now(UTC),
    }).where((_outbox_id == row["id"]) & OutboxEvent.status.is_in(list(REPLAYABLE))).returning(_outbox_id)
    if not updated:
        current = await _own(client_id=client_id, event_id=event_id)
        if current["status"] == DELIVERED:
            raise Conflict("the event was already delivered", code="delivery_already_delivered")
        raise Conflict("the event is being delivered right now", code="delivery_in_progress")
    return await get_delivery(client_id=client_id, event_id=event_id)
