"""The access ledger: every read of a subject's credit data by someone else, hash-chained and durable.

Writers call `LedgerWriter.append()` and get the entry's sequence number and hash back only after the
entry is committed. Appends from concurrent requests are written together (group commit): one
transaction, one chain-head read and one multi-row insert per batch, so throughput does not collapse
to one commit per query. Across processes the chain head is serialised with a PostgreSQL advisory lock
(SQLite: an immediate transaction). Rows are never updated or deleted by any code path.

`verify_chain()` recomputes every hash and names the first bad sequence number; signed checkpoints
(EdDSA JWS over seq + hash) let anyone holding the public key detect a rewritten or truncated chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from core import db
from credit.schemas import Checkpoint
from credit.tables import LedgerCheckpoint, LedgerEntry

logger = logging.getLogger("xinyi.ledger")

GENESIS_HASH = "0" * 64
CHECKPOINT_TYP = "ledger-checkpoint+jwt"  # JWS "typ" of signed checkpoints
_ADVISORY_LOCK_KEY = 0x78696E79  # "xiny"
_MAX_BATCH = 512
_COPY_COLUMNS = ("seq", "at", "actor_kind", "actor_id", "actor_name", "actor_type", "subject_kind", "subject_id",
                 "action", "purpose", "authorization_id", "outcome", "fields", "result_digest", "prev_hash", "hash")


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """What happened: who read whose data, why, under which authorization, and what they got."""

    actor_kind: str  # partner | operator | merchant | department
    actor_id: str
    actor_name: str
    actor_type: str  # partner kind or operator role
    subject_kind: str  # person | enterprise
    subject_id: str  # the subject's public id
    action: str  # e.g. score.query, score.check
    outcome: str  # "allowed" or the refusal code
    purpose: str | None = None
    authorization_id: str | None = None
    fields: tuple[str, ...] = ()
    result_digest: str = ""


@dataclass(frozen=True, slots=True)
class LedgerReceipt:
    seq: int
    hash: str
    at: datetime


def result_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(*, seq: int, at: datetime, prev_hash: str, event: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the entry (sorted keys, no spaces) including prev_hash."""
    canonical = {
        "seq": seq, "at": _iso(at), "prev_hash": prev_hash,
        "actor_kind": event["actor_kind"], "actor_id": event["actor_id"], "actor_name": event["actor_name"],
        "actor_type": event["actor_type"], "subject_kind": event["subject_kind"],
        "subject_id": event["subject_id"], "action": event["action"], "purpose": event["purpose"],
        "authorization_id": event["authorization_id"], "outcome": event["outcome"], "fields": event["fields"],
        "result_digest": event["result_digest"],
    }
    data = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()


def _event_fields(event: AccessEvent) -> dict[str, Any]:
    return {
        "actor_kind": event.actor_kind, "actor_id": event.actor_id, "actor_name": event.actor_name,
        "actor_type": event.actor_type, "subject_kind": event.subject_kind, "subject_id": event.subject_id,
        "action": event.action, "purpose": event.purpose, "authorization_id": event.authorization_id,
        "outcome": event.outcome, "fields": " ".join(event.fields), "result_digest": event.result_digest,
    }


class LedgerWriter:
    """Group-committing appender. One per process; safe with many processes on PostgreSQL."""

    def __init__(self, engine: Engine[Any], *, max_batch: int = _MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[AccessEvent, asyncio.Future[LedgerReceipt]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def append(self, event: AccessEvent) -> LedgerReceipt:
        """Append and wait until the entry is committed."""
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            # A context of its own: the task would otherwise copy its first caller's, and with it Piccolo's
            # current-transaction variable, so a first append made inside a transaction would have every later
            # batch join that long-finished transaction (on SQLite: OperationalError from then on).
            self._task = asyncio.create_task(self._run(self._queue), name="ledger-writer",
                                             context=contextvars.Context())
        future: asyncio.Future[LedgerReceipt] = asyncio.get_running_loop().create_future()
        await self._queue.put((event, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, queue: asyncio.Queue[tuple[AccessEvent, asyncio.Future[LedgerReceipt]]]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            live = [(e, f) for e, f in batch if not f.done()]
            if not live:
                continue
            try:
                receipts = await self._write([e for e, _ in live])
            except Exception as exc:
                # The class only: a traceback could carry row values into the log.
                logger.error("ledger batch of %d failed: %s", len(live), type(exc).__name__)  # noqa: TRY400
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), receipt in zip(live, receipts, strict=True):
                if not future.done():
                    future.set_result(receipt)

    @staticmethod
    def _chain(events: list[AccessEvent], seq: int, prev: str) -> tuple[list[dict[str, Any]], list[LedgerReceipt]]:
        at = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        receipts: list[LedgerReceipt] = []
        for event in events:
            seq += 1
            fields = _event_fields(event)
            digest = entry_hash(seq=seq, at=at, prev_hash=prev, event=fields)
            rows.append({"seq": seq, "at": at, "prev_hash": prev, "hash": digest, **fields})
            receipts.append(LedgerReceipt(seq=seq, hash=digest, at=at))
            prev = digest
        return rows, receipts

    async def _write(self, events: list[AccessEvent]) -> list[LedgerReceipt]:
        if isinstance(self._engine, PostgresEngine) and self._engine.pool is not None:
            return await self._write_postgres(events, self._engine.pool)
        async with db.transaction(self._engine):
            head = await LedgerEntry.select(LedgerEntry.seq, LedgerEntry.hash).order_by(
                LedgerEntry.seq, ascending=False).first()
            rows, receipts = self._chain(events, *_head(head))
            await LedgerEntry.insert(*(LedgerEntry(**row) for row in rows))
        return receipts

    async def _write_postgres(self, events: list[AccessEvent], pool: Any) -> list[LedgerReceipt]:
        """One transaction per batch on a raw pooled connection: lock the head, read it, COPY the rows.

        The advisory lock serialises writers across processes, so sequence numbers stay gap-free.
        """
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _ADVISORY_LOCK_KEY)
            head = await connection.fetchrow("SELECT seq, hash FROM access_ledger ORDER BY seq DESC LIMIT 1")
            rows, receipts = self._chain(events, *_head(head))
            await connection.copy_records_to_table(
                "access_ledger", columns=_COPY_COLUMNS, records=[tuple(r[c] for c in _COPY_COLUMNS) for r in rows])
        return receipts


def _head(row: Any) -> tuple[int, str]:
    """(seq, hash) of the chain head row, or the genesis values for an empty chain."""
    return (int(row["seq"]), str(row["hash"])) if row else (0, GENESIS_HASH)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    entries: int
    first_bad_seq: int | None
    problem: str | None
    checkpoints: int


async def verify_chain(*, verify_checkpoint: Callable[[str], dict[str, Any]], batch: int = 10_000) -> VerifyReport:
    """Recompute the whole chain and check every checkpoint; report the first bad sequence number."""
    expected_seq, prev = 1, GENESIS_HASH
    hashes: dict[int, str] = {}
    count = 0
    last_seen = 0
    columns = [c for c in LedgerEntry._meta.columns if c._meta.name != "id"]
    while True:
        rows = await LedgerEntry.select(*columns).where(LedgerEntry.seq > last_seen).order_by(
            LedgerEntry.seq).limit(batch)
        if not rows:
            break
        for row in rows:
            seq = int(row["seq"])
            if seq != expected_seq:
                return VerifyReport(False, count, expected_seq, f"entry {expected_seq} is missing or out of order",
                                    0)
            if row["prev_hash"] != prev:
                return VerifyReport(False, count, seq, "prev_hash does not match the previous entry", 0)
            fields = {k: row[k] for k in ("actor_kind", "actor_id", "actor_name", "actor_type", "subject_kind",
                                          "subject_id", "action", "purpose", "authorization_id", "outcome",
                                          "fields", "result_digest")}
            if entry_hash(seq=seq, at=row["at"], prev_hash=prev, event=fields) != row["hash"]:
                return VerifyReport(False, count, seq, "entry content does not match its hash", 0)
            hashes[seq] = row["hash"]
            prev = row["hash"]
            expected_seq += 1
            count += 1
        last_seen = int(rows[-1]["seq"])
    checkpoints = await LedgerCheckpoint.select(LedgerCheckpoint.seq, LedgerCheckpoint.hash,
                                                LedgerCheckpoint.signature).order_by(LedgerCheckpoint.seq)
    for checkpoint in checkpoints:
        seq = int(checkpoint["seq"])
        try:
            claims = verify_checkpoint(checkpoint["signature"])
        except Exception:
            return VerifyReport(False, count, seq, "checkpoint signature is invalid", len(checkpoints))
        if claims.get("seq") != seq or claims.get("hash") != checkpoint["hash"]:
            return VerifyReport(False, count, seq, "checkpoint does not match its signed content", len(checkpoints))
        if seq not in hashes:
            return VerifyReport(False, count, seq, f"checkpointed entry {seq} is missing", len(checkpoints))
        if hashes[seq] != checkpoint["hash"]:
            return VerifyReport(False, count, seq, "entry differs from its signed checkpoint", len(checkpoints))
    return VerifyReport(True, count, None, None, len(checkpoints))


async def create_checkpoint(*, sign: Callable[[dict[str, Any]], str]) -> dict[str, Any] | None:
    """Sign the current chain head (no-op when the head is already checkpointed or the chain is empty)."""
    head = await LedgerEntry.select(LedgerEntry.seq, LedgerEntry.hash).order_by(
        LedgerEntry.seq, ascending=False).first()
    if head is None:
        return None
    last = await LedgerCheckpoint.select(LedgerCheckpoint.seq).order_by(
        LedgerCheckpoint.seq, ascending=False).first()
    if last is not None and int(last["seq"]) >= int(head["seq"]):
        return await _latest_checkpoint_row()
    now = datetime.now(UTC)
    signature = sign({"seq": int(head["seq"]), "hash": head["hash"], "at": _iso(now)})
    await LedgerCheckpoint.insert(LedgerCheckpoint(seq=int(head["seq"]), hash=head["hash"], signature=signature,
                                                   created_at=now))
    return {"seq": int(head["seq"]), "hash": head["hash"], "signature": signature, "created_at": now}


async def _latest_checkpoint_row() -> dict[str, Any] | None:
    row = await LedgerCheckpoint.select(LedgerCheckpoint.seq, LedgerCheckpoint.hash, LedgerCheckpoint.signature,
                                        LedgerCheckpoint.created_at).order_by(
        LedgerCheckpoint.seq, ascending=False).first()
    return dict(row) if row else None


async def latest_checkpoint() -> Checkpoint | None:
    """The latest signed checkpoint, as published (None before the first one)."""
    row = await _latest_checkpoint_row()
    if row is None:
        return None
    return Checkpoint(seq=int(row["seq"]), hash=row["hash"], signature=row["signature"], created_at=row["created_at"])
