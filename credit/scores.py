"""Score service: current scores (cached in the store), history snapshots and recomputation.

A person's current score lives in `current_scores` and in the store (`score:p:<person id>`). Any change
to their records calls `recompute_person`, which rewrites both and appends a history snapshot when the
total or tier moved. `recompute_all` does the same for everyone in set-sized batches.

Re-scoring survives crashes: the transaction that changes a person's records also marks the person
(`mark_for_rescoring`, table `pending_rescores`); the request re-scores the marked persons right after its
commit (`rescore_marked`), and a mark its writer did not clear (a crash, a lost database or store between
the commit and the re-scoring) is taken by the next request about the same records (a data source's retry)
or by the background job (`rescore_due`) once the writer's lease is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from piccolo.engine.postgres import PostgresEngine
from piccolo.query.mixins import OnConflictAction

from core import clock, db
from core.store import Store
from credit.policy import PolicyBook
from credit.scoring import Reason, RecordFact, Score, compute_score
from credit.tables import Authorization, CreditRecord, CurrentScore, OutboxEvent, PendingRescore, Person, ScoreSnapshot

CACHE_TTL_SECONDS = 6 * 3600
_INSERT_CHUNK = 1000
RESCORE_LEASE = timedelta(seconds=60)
"""How long the writer of a mark (or a background pass that took it) has to re-score before the background
job may take the mark: a writer re-scores right after its commit, so this matters only once it has died."""
_RESCORE_CONCURRENCY = 8
_RESCORE_BATCH = 1000
_CACHE_DOMAIN = "score"
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Score)
_POLICY = PolicyBook()
_RECORD_COLUMNS = (CreditRecord.public_id, CreditRecord.category, CreditRecord.polarity, CreditRecord.severity,
                   CreditRecord.dimension, CreditRecord.occurred_at, CreditRecord.status)


def _fact(row: dict[str, Any]) -> RecordFact:
    occurred = row["occurred_at"]
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    return RecordFact(record_id=row["public_id"], category=row["category"], polarity=int(row["polarity"]),
                      severity=row["severity"], dimension=row["dimension"], occurred_at=occurred,
                      status=row["status"])


async def person_facts(person_id: int) -> list[RecordFact]:
    rows = await CreditRecord.select(*_RECORD_COLUMNS).where(CreditRecord.person == person_id)
    return [_fact(r) for r in rows]


def _reasons_json(score: Score) -> list[dict[str, Any]]:
    return [{"code": r.code, "text": r.text, "dimension": r.dimension, "impact": r.impact, "records": r.records}
            for r in score.reasons]


_STAGING_COLUMNS = ("person", "total", "tier", "dimensions", "reasons", "objected_records", "model_version", "as_of")
_STAGE_SQL = (
    "CREATE TEMP TABLE score_staging (person integer PRIMARY KEY, total smallint, tier varchar(3), dimensions json,"
    " reasons json, objected_records smallint, model_version varchar(24), as_of timestamptz) ON COMMIT DROP")
_CHANGED_SQL = (
    "SELECT s.person, c.person IS NOT NULL AS existed FROM score_staging s"
    " LEFT JOIN current_scores c ON c.person = s.person"
    " WHERE c.person IS NULL OR c.total <> s.total OR c.tier <> s.tier")
_SNAPSHOT_SQL = (
    "INSERT INTO score_snapshots (person, total, tier, dimensions, reasons, model_version, trigger, as_of)"
    " SELECT s.person, s.total, s.tier, s.dimensions, s.reasons, s.model_version, $1, s.as_of"
    " FROM score_staging s LEFT JOIN current_scores c ON c.person = s.person"
    " WHERE c.person IS NULL OR c.total <> s.total OR c.tier <> s.tier")
_UPSERT_SQL = (
    "INSERT INTO current_scores (person, total, tier, dimensions, reasons, objected_records, model_version, as_of)"
    " SELECT person, total, tier, dimensions, reasons, objected_records, model_version, as_of FROM score_staging"
    " ON CONFLICT (person) DO UPDATE SET total = EXCLUDED.total, tier = EXCLUDED.tier,"
    " dimensions = EXCLUDED.dimensions, reasons = EXCLUDED.reasons, objected_records = EXCLUDED.objected_records,"
    " model_version = EXCLUDED.model_version, as_of = EXCLUDED.as_of")


async def _store_scores_postgres(scores: dict[int, Score], *, trigger: str, pool: Any) -> list[int]:
    """The set-based write: COPY the batch into a staging table, then snapshot what moved and upsert
    current scores with two statements. Returns the persons whose earlier score moved."""
    staged = [(pid, s.total, s.tier, _encoder.encode(s.dimensions).decode(), _encoder.encode(_reasons_json(s)).decode(),
               s.objected_records, s.model_version, s.as_of) for pid, s in scores.items()]
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(_STAGE_SQL)
        await connection.copy_records_to_table("score_staging", columns=_STAGING_COLUMNS, records=staged)
        changed = await connection.fetch(_CHANGED_SQL)
        await connection.execute(_SNAPSHOT_SQL, trigger)
        await connection.execute(_UPSERT_SQL)
    return [int(row["person"]) for row in changed if row["existed"]]


async def _store_scores(scores: dict[int, Score], *, trigger: str) -> None:
    """Upsert current scores and append history rows where the total or tier changed."""
    if not scores:
        return
    engine = CurrentScore._meta.db
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        moved = await _store_scores_postgres(scores, trigger=trigger, pool=engine.pool)
        if moved:
            await _notify_partners(moved, trigger=trigger)
        return
    previous = {
        row["person"]: (row["total"], row["tier"])
        for row in await CurrentScore.select(CurrentScore.person, CurrentScore.total, CurrentScore.tier).where(
            CurrentScore.person.is_in(list(scores)))
    }
    current_rows = [
        CurrentScore(person=pid, total=s.total, tier=s.tier, dimensions=_encoder.encode(s.dimensions).decode(),
                     reasons=_encoder.encode(_reasons_json(s)).decode(), objected_records=s.objected_records,
                     model_version=s.model_version, as_of=s.as_of)
        for pid, s in scores.items()
    ]
    # Chunks keep every statement under PostgreSQL's 32,767 bind-parameter limit.
    for start in range(0, len(current_rows), _INSERT_CHUNK):
        await CurrentScore.insert(*current_rows[start:start + _INSERT_CHUNK]).on_conflict(
            target=CurrentScore.person, action=OnConflictAction.do_update,
            values=[CurrentScore.total, CurrentScore.tier, CurrentScore.dimensions, CurrentScore.reasons,
                    CurrentScore.objected_records, CurrentScore.model_version, CurrentScore.as_of])
    changed = [
        ScoreSnapshot(person=pid, total=s.total, tier=s.tier, dimensions=_encoder.encode(s.dimensions).decode(),
                      reasons=_encoder.encode(_reasons_json(s)).decode(), model_version=s.model_version,
                      trigger=trigger, as_of=s.as_of)
        for pid, s in scores.items() if previous.get(pid) != (s.total, s.tier)
    ]
    for start in range(0, len(changed), _INSERT_CHUNK):
        await ScoreSnapshot.insert(*changed[start:start + _INSERT_CHUNK])
    moved = [pid for pid, s in scores.items() if pid in previous and previous[pid] != (s.total, s.tier)]
    if moved:
        await _notify_partners(moved, trigger=trigger)


async def _notify_partners(person_ids: list[int], *, trigger: str) -> None:
    """Tell each partner holding a live authorization that the subject's score changed.

    The event carries no score: the partner learns the new value only by querying under its
    authorization, which is ledgered like any other read.
    """
    now = clock.now()
    events: list[OutboxEvent] = []
    for start in range(0, len(person_ids), _INSERT_CHUNK):
        rows = await Authorization.select(Authorization.public_id, Authorization.partner_client_id,
                                          Authorization.purpose).where(
            Authorization.person.is_in(person_ids[start:start + _INSERT_CHUNK])
            & (Authorization.status == "authorized") & (Authorization.valid_until > now))
        events.extend(
            OutboxEvent(public_id=f"evt_{secrets.token_hex(12)}", topic="score.changed",
                        aggregate_id=row["public_id"], recipient=row["partner_client_id"],
                        payload={"type": "score.changed", "authorization_id": row["public_id"],
                                 "purpose": row["purpose"], "cause": trigger})
            for row in rows)
    for start in range(0, len(events), _INSERT_CHUNK):
        await OutboxEvent.insert(*events[start:start + _INSERT_CHUNK])


async def recompute_person(*, store: Store, person_id: int, trigger: str) -> Score:
    """Recompute one person's score now, persist it, and refresh the cache (every worker sees it)."""
    score = compute_score(await person_facts(person_id), as_of=clock.now(), policy=_POLICY)
    await _store_scores({person_id: score}, trigger=trigger)
    await store.set(_CACHE_DOMAIN, f"p:{person_id}", _encoder.encode(score), ttl_seconds=CACHE_TTL_SECONDS)
    return score


async def mark_for_rescoring(person_ids: Iterable[int], *, trigger: str, now: datetime) -> None:
    """Mark persons whose score must be recomputed. Call it inside the transaction that changes their records,
    so the mark commits (or rolls back) with the change; then `rescore_marked` after the commit."""
    ids = sorted(set(person_ids))  # one lock order for every writer: concurrent batches cannot deadlock here
    due = now + RESCORE_LEASE
    for start in range(0, len(ids), _INSERT_CHUNK):
        await PendingRescore.insert(*(
            PendingRescore(person=pid, token=secrets.token_hex(8), trigger=trigger, marked_at=now, due_at=due)
            for pid in ids[start:start + _INSERT_CHUNK])).on_conflict(
            target=PendingRescore.person, action=OnConflictAction.do_update,
            values=[PendingRescore.token, PendingRescore.trigger, PendingRescore.marked_at, PendingRescore.due_at])


async def _consume(store: Store, marks: list[dict[str, Any]]) -> int:
    """Recompute each marked person and delete the mark read (a newer mark, with another token, stays)."""
    gate = asyncio.Semaphore(_RESCORE_CONCURRENCY)

    async def one(mark: dict[str, Any]) -> None:
        async with gate:
            person_id = int(mark["person"])
            await recompute_person(store=store, person_id=person_id, trigger=mark["trigger"])
            await PendingRescore.delete().where(
                (PendingRescore.person == person_id) & (PendingRescore.token == mark["token"]))

    outcomes = await asyncio.gather(*(one(m) for m in marks), return_exceptions=True)
    failed = [int(m["person"]) for m, outcome in zip(marks, outcomes, strict=True)
              if isinstance(outcome, BaseException)]
    if failed:
        # Hand what is left to the next background pass at once rather than after the lease (best effort: the
        # database may be what failed; the lease then runs out on its own).
        with contextlib.suppress(Exception):
            for start in range(0, len(failed), _INSERT_CHUNK):
                await PendingRescore.update({PendingRescore.due_at: clock.now()}).where(
                    PendingRescore.person.is_in(failed[start:start + _INSERT_CHUNK]))
        raise next(o for o in outcomes if isinstance(o, BaseException))
    return len(marks)


async def rescore_marked(*, store: Store, person_ids: Iterable[int]) -> int:
    """Recompute the score of each of `person_ids` that carries a mark, whoever wrote it, and clear the mark;
    returns how many were recomputed. Persons without a mark cost one indexed read, so a retry can ask for
    every person it names and so complete whatever an earlier attempt left undone.

    Raises whatever the re-scoring raised (the database or the store is away); the marks left stay for a retry
    or the background job.
    """
    ids = sorted(set(person_ids))
    marks: list[dict[str, Any]] = []
    for start in range(0, len(ids), _INSERT_CHUNK):
        marks.extend(await PendingRescore.select(PendingRescore.person, PendingRescore.token,
                                                 PendingRescore.trigger).where(
            PendingRescore.person.is_in(ids[start:start + _INSERT_CHUNK])))
    return await _consume(store, marks) if marks else 0


async def rescore_due(*, store: Store, now: datetime | None = None, limit: int = _RESCORE_BATCH) -> int:
    """The background job's part: re-score up to `limit` marks whose writer's lease is over (the writer died
    or failed); returns how many. Each mark is first taken for a new lease by a conditional update, so several
    workers never re-score the same person at once."""
    moment = now or clock.now()
    due = [int(r["person"]) for r in await PendingRescore.select(PendingRescore.person).where(
        PendingRescore.due_at <= moment).order_by(PendingRescore.due_at).limit(limit)]
    if not due:
        return 0
    taken = await PendingRescore.update({PendingRescore.due_at: moment + RESCORE_LEASE}).where(
        PendingRescore.person.is_in(due) & (PendingRescore.due_at <= moment)).returning(
        PendingRescore.person, PendingRescore.token, PendingRescore.trigger)
    return await _consume(store, list(taken)) if taken else 0


def cache_key(person_id: int) -> tuple[str, str]:
    """Where the person's score is cached (domain, key), for callers that fold the read into another
    store round trip (`Store.probe_and_count(read=...)`)."""
    return _CACHE_DOMAIN, f"p:{person_id}"


async def current_score(*, store: Store, person_id: int, cached: bytes | None = None) -> Score:
    """The person's current score: `cached` (already read by the caller), else from the store, else
    recomputed (and cached)."""
    if cached is None:
        cached = await store.get(*cache_key(person_id))
    if cached is not None:
        return _decoder.decode(cached)
    return await recompute_person(store=store, person_id=person_id, trigger="cache_miss")


async def invalidate(*, store: Store, person_ids: Iterable[int]) -> None:
    await store.delete_many(_CACHE_DOMAIN, [f"p:{pid}" for pid in set(person_ids)])


@dataclass(frozen=True, slots=True)
class RecomputeReport:
    persons: int
    records: int
    seconds: float


_BATCH_IDS_SQL = "SELECT id FROM persons WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3"
_ID_RANGE_SQL = "SELECT coalesce(min(id), 0) AS low, coalesce(max(id), 0) AS high FROM persons"
_BATCH_RECORDS_SQL = (
    "SELECT person, public_id, category, polarity, severity, dimension, occurred_at, status"
    " FROM credit_records WHERE person >= $1 AND person <= $2")


async def _batch_facts(ids: list[int]) -> tuple[dict[int, list[RecordFact]], int]:
    """Every record of the persons `ids` (ascending), grouped by person, in one range query."""
    grouped: dict[int, list[RecordFact]] = defaultdict(list)
    wanted = set(ids)
    rows = await db.fetch_all(CreditRecord._meta.db, _BATCH_RECORDS_SQL, ids[0], ids[-1])
    count = 0
    for row in rows:
        if row["person"] in wanted:  # the id range may span persons deleted from the registry
            grouped[row["person"]].append(_fact(row))
            count += 1
    return grouped, count


async def person_id_ranges(parts: int) -> list[tuple[int, int]]:
    """Split the persons' ids into `parts` contiguous ranges (low exclusive, high inclusive), for
    recomputing in several processes at once."""
    row = await db.fetch_one(Person._meta.db, _ID_RANGE_SQL)
    low, high = (int(row["low"]), int(row["high"])) if row else (0, 0)
    if high == 0:
        return []
    step = -(-(high - low + 1) // parts)
    return [(low - 1 + i * step, min(high, low - 1 + (i + 1) * step)) for i in range(parts)
            if low - 1 + i * step < high]


async def recompute_all(*, store: Store, batch_size: int = 5000, id_range: tuple[int, int] | None = None,
                        as_of: datetime | None = None) -> RecomputeReport:
    """Recompute every person's score (or those with ids in `id_range`, low exclusive, high inclusive) in
    batches of consecutive ids: one range query for their records, the scores computed in process, and
    one set-based write (COPY into a staging table, then INSERT ... SELECT on PostgreSQL) per batch."""
    started = time.perf_counter()
    as_of = as_of or clock.now()
    persons = records = 0
    last_id, high = id_range if id_range is not None else (0, 2**31 - 1)  # persons.id is a 32-bit serial
    engine = Person._meta.db
    while True:
        ids = [int(r["id"]) for r in await db.fetch_all(engine, _BATCH_IDS_SQL, last_id, high, batch_size)]
        if not ids:
            break
        last_id = ids[-1]
        grouped, count = await _batch_facts(ids)
        records += count
        scores = {pid: compute_score(grouped.get(pid, []), as_of=as_of, policy=_POLICY) for pid in ids}
        await _store_scores(scores, trigger="recompute")
        await invalidate(store=store, person_ids=ids)
        persons += len(ids)
    return RecomputeReport(persons=persons, records=records, seconds=time.perf_counter() - started)


async def score_history(*, person_id: int, limit: int, before: datetime | None = None) -> list[dict[str, Any]]:
    query = ScoreSnapshot.select(ScoreSnapshot.total, ScoreSnapshot.tier, ScoreSnapshot.dimensions,
                                 ScoreSnapshot.trigger, ScoreSnapshot.as_of).where(
        ScoreSnapshot.person == person_id).order_by(ScoreSnapshot.as_of, ascending=False).limit(limit)
    if before is not None:
        query = query.where(ScoreSnapshot.as_of < before)
    return list(await query)


def score_band(total: int) -> str:
    """A 50-point band, e.g. 700-749 (what partners with scope `score_band` see)."""
    low = min(950, (total // 50) * 50)
    return f"{low}-{low + 49 if low < 950 else 1000}"


__all__ = ["RESCORE_LEASE", "Reason", "RecomputeReport", "Score", "current_score", "invalidate",
           "mark_for_rescoring", "person_facts", "recompute_all", "recompute_person", "rescore_due", "rescore_marked",
           "score_band", "score_history"]
