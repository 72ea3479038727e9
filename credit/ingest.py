"""Data-source ingest: credit records pushed in batches (a JSON array, or NDJSON one record per line).

Each row is validated on its own and answered with its 1-based position (array index or line number),
so one bad row never fails the batch. Records are keyed by (source, source_ref), where the source is
always the calling partner: the same row again is a `duplicate`, the same reference with other content
is a correction (`updated`). Two batches racing on one reference cannot create two records: inserts
are `INSERT … ON CONFLICT (source, source_ref) DO NOTHING` and a row that lost the race is re-read
and treated as the correction or duplicate it then is.

Rules for corrections (the subject's own processes win over the source):

- a record under objection (`objected`) or repaired (`repaired`) is not changed: `record_under_objection`
  / `record_repaired`;
- a record whose objection was upheld (withdrawn, or corrected by the officer) may only be withdrawn by the
  source, never changed back: `record_corrected_by_objection`;
- a record may not move to another subject (`subject_changed`): withdraw it and send a new reference;
- `expired` is derived from the display period, so re-sending such a record as `active` changes nothing.

Lists that follow from records (失信被执行人) are synced in the same transaction, and the persons whose
records changed are marked for re-scoring in it too; their scores are recomputed once each after the
commit. A batch whose re-scoring did not happen (the process died, the store or the database failed after
the commit) is completed by the source's retry, which re-scores every marked person the batch names even
though its rows are now duplicates, or else by the background job. No HTTP objects here; nothing from a
row's identity ever reaches a log or an answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
from piccolo.query.mixins import OnConflictAction

from core import db
from core.clock import CITY_TZ
from core.db import as_utc
from core.errors import BadRequest, BodyTooDeep, DomainError, Unprocessable
from core.store import Store
from credit.authorizations import subject_notice, subject_recipient
from credit.catalog import CATEGORIES, RecordCategory
from credit.checks import RECORD_LISTS, sync_record_lists
from credit.identity import FieldCipher, InvalidIdentifier, new_public_id, normalize_id_number, normalize_uscc
from credit.partner_schemas import IngestAnswer, IngestPersonSubject, IngestRow, IngestSummary, RowRejection
from credit.policy import PolicyBook
from credit.scores import mark_for_rescoring, rescore_marked
from credit.tables import CreditRecord, Enterprise, Objection, OutboxEvent, Person

logger = logging.getLogger("xinyi.ingest")

BodyFormat = Literal["json", "ndjson"]

FUTURE_SKEW = timedelta(minutes=5)
"""How far in the future `occurred_at` may lie (clock skew between the source and us)."""
_CHUNK = 500  # rows per IN (...) look-up and per multi-row INSERT (well under bind-parameter limits)
_WRITE_ATTEMPTS = 3
_PERSON_PK = Person._meta.primary_key
_ENTERPRISE_PK = Enterprise._meta.primary_key
_RECORD_PK = CreditRecord._meta.primary_key
_RECORD_COLUMNS = (_RECORD_PK, CreditRecord.source_ref, CreditRecord.subject_kind, CreditRecord.person,
                   CreditRecord.enterprise, CreditRecord.category, CreditRecord.severity, CreditRecord.title,
                   CreditRecord.occurred_at, CreditRecord.status)
# Names of exceptions a retry of the whole write phase cures (deadlock between two batches, busy SQLite).
_TRANSIENT = frozenset({"DeadlockDetectedError", "SerializationError", "OperationalError"})


class TooManyRows(DomainError):
    # 422, not 413: the body fits the size limit; it is the number of rows the batch contract caps.
    status, code, title = 422, "too_many_rows", "The batch has too many rows"


class _Rejected(Exception):
    """A row is not taken; `code` is stable, `reason` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    source_ref: str | None
    code: str
    reason: str


@dataclass(slots=True)
class IngestReport:
    accepted: int = 0
    updated: int = 0
    duplicate: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    rescored_persons: int = 0

    @property
    def rejected(self) -> int:
        return len(self.rejections)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A row that passed validation, with its subject resolved to a registry key."""

    line: int
    source_ref: str
    subject_kind: str
    subject_pk: int
    category: RecordCategory
    severity: str
    title: str
    occurred_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A row that passed validation but whose subject is not resolved yet."""

    line: int
    row: IngestRow
    lookup_hash: str
    occurred_at: datetime


# ---------------------------------------------------------------- parsing


def split_rows(*, body: bytes, body_format: BodyFormat) -> list[tuple[int, bytes]]:
    """The batch's rows as (1-based line, raw JSON) pairs.

    Raises:
        BadRequest: `malformed_json` — a JSON batch is not JSON at all; `json_too_deep` — a row nests deeper
            than the parser goes.
        Unprocessable: `empty_batch`, `batch_not_array`.
    """
    if not body.strip():
        raise Unprocessable("the batch has no rows", code="empty_batch")
    if body_format == "ndjson":
        # Blank lines are skipped but still counted, so line numbers match the source's file.
        rows = [(n, line.strip()) for n, line in enumerate(body.split(b"\n"), start=1) if line.strip()]
    else:
        try:
            items = msgspec.json.decode(body, type=list[msgspec.Raw])
        except msgspec.ValidationError:
            raise Unprocessable("send a JSON array of rows (or NDJSON as application/x-ndjson)",
                                code="batch_not_array") from None
        except msgspec.DecodeError:
            raise BadRequest("the body is not valid JSON", code="malformed_json") from None
        except RecursionError:  # a row nested deeper than the parser goes (its end cannot be found)
            raise BodyTooDeep("a row is nested too deeply to be read") from None
        rows = [(n, bytes(item)) for n, item in enumerate(items, start=1)]
    if not rows:
        raise Unprocessable("the batch has no rows", code="empty_batch")
    return rows


def _best_effort_ref(raw: bytes) -> str | None:
    """The row's source_ref if it can be read at all (to help the source find the row)."""
    try:
        obj = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return None
    ref = obj.get("source_ref") if isinstance(obj, dict) else None
    return ref if isinstance(ref, str) and 0 < len(ref) <= 128 else None


def _decode(raw: bytes) -> IngestRow:
    try:
        return msgspec.json.decode(raw, type=IngestRow)
    except msgspec.ValidationError as exc:
        # msgspec names the field and the rule, never an identifier's value (lengths, not contents).
        raise _Rejected("invalid_row", str(exc)) from None
    except msgspec.DecodeError:
        raise _Rejected("malformed_line", "the line is not valid JSON") from None
    except RecursionError:
        raise _Rejected("malformed_line", "the line is nested too deeply to be read") from None


def _validate(row: IngestRow, *, cipher: FieldCipher, now: datetime, seen: set[str]) -> tuple[str, datetime]:
    """Check one decoded row; returns the subject's lookup hash and occurred_at in UTC."""
    if row.source_ref in seen:
        raise _Rejected("duplicate_in_batch", "this source_ref already appeared earlier in the batch")
    category = CATEGORIES.get(row.category)
    if category is None:
        raise _Rejected("unknown_category", f"unknown category {row.category!r}")
    kind = "person" if isinstance(row.subject, IngestPersonSubject) else "enterprise"
    if kind not in category.subjects:
        raise _Rejected("category_not_for_subject", f"category {row.category} does not apply to a {kind}")
    try:
        if isinstance(row.subject, IngestPersonSubject):
            lookup = cipher.lookup_hash("id_number", normalize_id_number(row.subject.id_number))
        else:
            lookup = cipher.lookup_hash("uscc", normalize_uscc(row.subject.uscc))
    except InvalidIdentifier as exc:
        raise _Rejected(f"invalid_{exc.kind}", f"invalid {exc.kind}: {exc.reason}") from None
    if row.occurred_at.tzinfo is None:
        raise _Rejected("occurred_at_without_timezone", "occurred_at must carry a timezone (e.g. +08:00 or Z)")
    occurred = row.occurred_at.astimezone(UTC)
    if occurred > now + FUTURE_SKEW:
        raise _Rejected("occurred_at_in_future", "occurred_at lies in the future")
    if not row.title.strip():
        raise _Rejected("invalid_row", "title is blank")
    return lookup, occurred


# ---------------------------------------------------------------- registry look-ups


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


async def _persons(hashes: set[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(sorted(hashes)):
        for r in await Person.select(_PERSON_PK, Person.id_number_hash, Person.name).where(
                Person.id_number_hash.is_in(chunk)):
            found[r["id_number_hash"]] = (int(r["id"]), r["name"])
    return found


async def _enterprises(hashes: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(hashes)):
        for r in await Enterprise.select(_ENTERPRISE_PK, Enterprise.uscc_hash).where(Enterprise.uscc_hash.is_in(chunk)):
            found[r["uscc_hash"]] = int(r["id"])
    return found


async def _resolve(parsed: list[_Parsed], report: IngestReport) -> list[_Candidate]:
    persons = await _persons({p.lookup_hash for p in parsed if isinstance(p.row.subject, IngestPersonSubject)})
    enterprises = await _enterprises({p.lookup_hash for p in parsed
                                      if not isinstance(p.row.subject, IngestPersonSubject)})
    candidates: list[_Candidate] = []
    for p in parsed:
        row = p.row
        pk: int | None
        if isinstance(row.subject, IngestPersonSubject):
            match = persons.get(p.lookup_hash)
            name = row.subject.name
            # A name that does not match reads exactly like an unknown id number (no registry probing).
            pk = match[0] if match and (name is None or name.strip() == match[1]) else None
            reason = "no person in the registry matches this id number" + (" and name" if name else "")
        else:
            pk = enterprises.get(p.lookup_hash)
            reason = "no enterprise in the registry has this USCC"
        if pk is None:
            report.rejections.append(Rejection(p.line, row.source_ref, "subject_not_found", reason))
            continue
        category = CATEGORIES[row.category]
        candidates.append(_Candidate(
            line=p.line, source_ref=row.source_ref,
            subject_kind="person" if isinstance(row.subject, IngestPersonSubject) else "enterprise", subject_pk=pk,
            category=category, severity=row.severity or category.default_severity, title=row.title.strip(),
            occurred_at=p.occurred_at, status=row.status))
    return candidates


# ---------------------------------------------------------------- classification


def _subject_of(record: dict[str, Any]) -> tuple[str, int]:
    kind = record["subject_kind"]
    return kind, int(record["person"] if kind == "person" else record["enterprise"])


def _changes(record: dict[str, Any], c: _Candidate) -> dict[str, Any]:
    """What the candidate would change on the stored record (column name → new value)."""
    changes: dict[str, Any] = {}
    if record["category"] != c.category.code:
        changes.update(category=c.category.code, polarity=c.category.polarity, dimension=c.category.dimension)
    if record["severity"] != c.severity:
        changes["severity"] = c.severity
    if record["title"] != c.title:
        changes["title"] = c.title
    if as_utc(record["occurred_at"]) != c.occurred_at:
        changes["occurred_at"] = c.occurred_at
    # A source knows only active and withdrawn: "active" means "not withdrawn". Expiry (display period),
    # objection and repair are our states on top of it, so re-sending such a record unchanged is a duplicate.
    stored = "withdrawn" if record["status"] == "withdrawn" else "active"
    if stored != c.status:
        changes["status"] = c.status
    return changes


@dataclass(frozen=True, slots=True)
class _Update:
    candidate: _Candidate
    record_pk: int
    expected_status: str
    changes: dict[str, Any]
    old_category: str


def _classify(record: dict[str, Any], c: _Candidate, *, upheld: bool) -> _Update | None:
    """None for a duplicate, an update for a correction; raises `_Rejected` for a correction not allowed."""
    if _subject_of(record) != (c.subject_kind, c.subject_pk):
        raise _Rejected("subject_changed", "this source_ref belongs to another subject; withdraw it and send a new one")
    changes = _changes(record, c)
    if not changes:
        return None
    if record["status"] == "objected":
        raise _Rejected("record_under_objection", "the subject's objection to this record is being decided")
    if record["status"] == "repaired":
        raise _Rejected("record_repaired", "the record was repaired on the subject's application")
    if upheld:
        # The officer's decision stands; the only change left to the source is a withdrawal.
        if c.status != "withdrawn":
            raise _Rejected("record_corrected_by_objection",
                            "the subject's objection to this record was upheld; only a withdrawal is accepted")
        if record["status"] == "withdrawn":
            return None
        changes = {"status": "withdrawn"}
    return _Update(candidate=c, record_pk=int(record["id"]), expected_status=record["status"], changes=changes,
                   old_category=record["category"])


# ---------------------------------------------------------------- writing


@dataclass(slots=True)
class _Outcome:
    accepted: list[_Candidate] = field(default_factory=list)
    updated: list[_Update] = field(default_factory=list)
    duplicate: int = 0
    rejections: list[Rejection] = field(default_factory=list)


async def _existing(source: str, refs: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(refs)):
        for r in await CreditRecord.select(*_RECORD_COLUMNS).where(
                (CreditRecord.source == source) & CreditRecord.source_ref.is_in(chunk)):
            found[r["source_ref"]] = r
    return found


async def _upheld(record_pks: list[int]) -> set[int]:
    upheld: set[int] = set()
    for start in range(0, len(record_pks), _CHUNK):
        chunk = record_pks[start:start + _CHUNK]
        upheld.update(int(r["record"]) for r in await Objection.select(Objection.record).where(
            Objection.record.is_in(chunk) & (Objection.status == "upheld")))
    return upheld


async def _classify_existing(source: str, candidates: list[_Candidate], outcome: _Outcome
                             ) -> list[_Candidate]:
    """Sort candidates whose reference is stored into updates, duplicates or rejections; return the new ones."""
    existing = await _existing(source, [c.source_ref for c in candidates])
    upheld = await _upheld([int(r["id"]) for r in existing.values()])
    fresh: list[_Candidate] = []
    for c in candidates:
        record = existing.get(c.source_ref)
        if record is None:
            fresh.append(c)
            continue
        try:
            update = _classify(record, c, upheld=int(record["id"]) in upheld)
        except _Rejected as exc:
            outcome.rejections.append(Rejection(c.line, c.source_ref, exc.code, exc.reason))
            continue
        if update is None:
            outcome.duplicate += 1
        else:
            outcome.updated.append(update)
    return fresh


def _new_record(c: _Candidate, *, source: str, now: datetime) -> CreditRecord:
    return CreditRecord(
        public_id=new_public_id("rec"), subject_kind=c.subject_kind,
        person=c.subject_pk if c.subject_kind == "person" else None,
        enterprise=c.subject_pk if c.subject_kind == "enterprise" else None, category=c.category.code,
        polarity=c.category.polarity, severity=c.severity, dimension=c.category.dimension, title=c.title,
        source=source, source_ref=c.source_ref, occurred_at=c.occurred_at, status=c.status, created_at=now,
        updated_at=now)


async def _insert(source: str, fresh: list[_Candidate], outcome: _Outcome, now: datetime) -> list[_Candidate]:
    """Insert new records; return the candidates another batch inserted first (to be re-classified)."""
    # A fixed order keeps two concurrent batches from taking index locks in opposite orders (deadlock).
    fresh = sorted(fresh, key=lambda c: c.source_ref)
    lost: list[_Candidate] = []
    for start in range(0, len(fresh), _CHUNK):
        chunk = fresh[start:start + _CHUNK]
        inserted = {r["source_ref"] for r in await CreditRecord.insert(
            *(_new_record(c, source=source, now=now) for c in chunk)).on_conflict(
            target=(CreditRecord.source, CreditRecord.source_ref), action=OnConflictAction.do_nothing,
        ).returning(CreditRecord.source_ref)}
        for c in chunk:
            (outcome.accepted if c.source_ref in inserted else lost).append(c)
    return lost


async def _apply_updates(updates: list[_Update], outcome: _Outcome, now: datetime) -> list[_Candidate]:
    """Apply corrections; return those whose record changed status meanwhile (to be re-classified)."""
    changed_meanwhile: list[_Candidate] = []
    for u in sorted(updates, key=lambda u: u.record_pk):
        values: dict[Any, Any] = {getattr(CreditRecord, name): value for name, value in u.changes.items()}
        values[CreditRecord.updated_at] = now
        # Conditional on the status we read: an objection filed meanwhile wins over the correction.
        done = await CreditRecord.update(values).where(
            _RECORD_PK.is_in([u.record_pk]) & (CreditRecord.status == u.expected_status)).returning(_RECORD_PK)
        if done:
            outcome.updated.append(u)
        else:
            changed_meanwhile.append(u.candidate)
    return changed_meanwhile


async def _write(source: str, candidates: list[_Candidate], now: datetime) -> _Outcome:
    """One transaction: classify against what is stored, insert, correct, and sync record-driven lists."""
    outcome = _Outcome()
    async with db.transaction(CreditRecord):
        pending = _Outcome()
        fresh = await _classify_existing(source, candidates, pending)
        outcome.duplicate, outcome.rejections = pending.duplicate, pending.rejections
        lost = await _insert(source, fresh, outcome, now)
        retry = lost + await _apply_updates(pending.updated, outcome, now)
        if retry:
            # Rows another writer touched first: re-read once, now that its insert or update is visible.
            second = _Outcome()
            for c in await _classify_existing(source, retry, second):
                outcome.rejections.append(Rejection(c.line, c.source_ref, "record_changed_concurrently",
                                                    "the record changed while this batch ran; send it again"))
            outcome.duplicate += second.duplicate
            outcome.rejections.extend(second.rejections)
            for c in await _apply_updates(second.updated, outcome, now):
                outcome.rejections.append(Rejection(c.line, c.source_ref, "record_changed_concurrently",
                                                    "the record changed while this batch ran; send it again"))
        subjects: list[tuple[str, int]] = []
        list_codes: set[str] = set()
        for c in outcome.accepted:
            if c.category.code in RECORD_LISTS:
                subjects.append((c.subject_kind, c.subject_pk))
                list_codes.add(RECORD_LISTS[c.category.code])
        for u in outcome.updated:
            touched = {RECORD_LISTS[cat] for cat in (u.old_category, u.candidate.category.code) if cat in RECORD_LISTS}
            if touched:
                subjects.append((u.candidate.subject_kind, u.candidate.subject_pk))
                list_codes.update(touched)
        if subjects:
            await sync_record_lists(subjects=subjects, list_codes=list_codes, source=source, now=now)
        await _tell_subjects(source, outcome.accepted)
        persons = {c.subject_pk for c in outcome.accepted if c.subject_kind == "person"}
        persons.update(u.candidate.subject_pk for u in outcome.updated if u.candidate.subject_kind == "person")
        # With the records, not after them: a crash past the commit leaves the mark for a retry or the background.
        await mark_for_rescoring(persons, trigger="record_change", now=now)
    return outcome


_POLICY = PolicyBook()


async def _tell_subjects(source: str, accepted: list[_Candidate]) -> None:
    """失信告知: each new active negative record is told to its subject, in the transaction that stores it, with
    how to object or apply for repair and from when (a mandatory notice, see partners/notices.py)."""
    negative = [c for c in accepted if c.category.polarity < 0 and c.status == "active"]
    for chunk in _chunks([c.source_ref for c in negative]):
        rows = await CreditRecord.select(
            CreditRecord.public_id, CreditRecord.person, CreditRecord.enterprise, CreditRecord.category,
            CreditRecord.severity, CreditRecord.title, CreditRecord.occurred_at).where(
            (CreditRecord.source == source) & CreditRecord.source_ref.is_in(chunk))
        for row in rows:
            recipient = await subject_recipient(person_id=row["person"], enterprise_id=row["enterprise"])
            if recipient is None:
                continue
            occurred = as_utc(row["occurred_at"])
            repairable = _POLICY.repairable_from(severity=row["severity"], occurred_at=occurred)
            shown_until = _POLICY.display_until(severity=row["severity"], occurred_at=occurred)
            await OutboxEvent.insert(subject_notice(
                recipient=recipient, topic="record.negative", aggregate_id=row["public_id"], payload={
                    "record_id": row["public_id"], "category": row["category"], "severity": row["severity"],
                    "title": row["title"], "source": source, "occurred_at": occurred.isoformat(),
                    "objection": {"how": "在“我的信用记录”中对该记录提出异议，信用办在5个工作日内答复",
                                  "decision_working_days": 5},
                    "repair": {"how": "在“我的信用记录”中申请信用修复", "repairable_from": repairable.isoformat()},
                    "display_until": shown_until.isoformat(),
                    "message": (f"您有一条新的失信记录：“{row['title']}”。如有异议，可在“我的信用记录”中提出异议"
                                f"（5个工作日内答复）；自{repairable.astimezone(CITY_TZ):%Y年%m月%d日}起可申请信用修复；"
                                f"该记录公示至{shown_until.astimezone(CITY_TZ):%Y年%m月%d日}")}))


async def _write_with_retry(source: str, candidates: list[_Candidate], now: datetime) -> _Outcome:
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            return await _write(source, candidates, now)
        except Exception as exc:
            if type(exc).__name__ not in _TRANSIENT or attempt == _WRITE_ATTEMPTS:
                raise
            # The class only: a driver message can carry row values.
            logger.warning("ingest write attempt %d failed (%s); retrying", attempt, type(exc).__name__)
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- the batch


async def ingest_batch(*, cipher: FieldCipher, store: Store, source: str, body: bytes, body_format: BodyFormat,
                       max_rows: int, now: datetime | None = None) -> IngestAnswer:
    """Validate, store and answer one batch from the data source `source` (the caller's client id).

    Raises:
        BadRequest: `malformed_json` (a JSON batch that is not JSON).
        Unprocessable: `empty_batch`, `batch_not_array`.
        TooManyRows: `too_many_rows` — more rows than `max_rows`.
    """
    moment = now or datetime.now(UTC)
    rows = split_rows(body=body, body_format=body_format)
    if len(rows) > max_rows:
        raise TooManyRows(f"a batch holds at most {max_rows} rows; this one has {len(rows)}")
    report = IngestReport()
    parsed: list[_Parsed] = []
    seen: set[str] = set()
    for line, raw in rows:
        try:
            row = _decode(raw)
            lookup, occurred = _validate(row, cipher=cipher, now=moment, seen=seen)
        except _Rejected as exc:
            ref = None if exc.code == "malformed_line" else _best_effort_ref(raw)
            report.rejections.append(Rejection(line, ref, exc.code, exc.reason))
            continue
        seen.add(row.source_ref)
        parsed.append(_Parsed(line=line, row=row, lookup_hash=lookup, occurred_at=occurred))
    candidates = await _resolve(parsed, report)
    if candidates:
        outcome = await _write_with_retry(source, candidates, moment)
        report.accepted, report.updated, report.duplicate = (len(outcome.accepted), len(outcome.updated),
                                                             outcome.duplicate)
        report.rejections.extend(outcome.rejections)
        # Every person the batch names, not only those whose records changed now: a retry of a batch whose
        # first attempt committed but did not re-score finds its rows duplicate and its marks still there.
        report.rescored_persons = await rescore_marked(
            store=store, person_ids={c.subject_pk for c in candidates if c.subject_kind == "person"})
    report.rejections.sort(key=lambda r: r.line)
    logger.info("ingest from %s: %d accepted, %d updated, %d duplicate, %d rejected", source, report.accepted,
                report.updated, report.duplicate, report.rejected)
    return IngestAnswer(
        summary=IngestSummary(accepted=report.accepted, updated=report.updated, duplicate=report.duplicate,
                              rejected=report.rejected),
        rejected_rows=[RowRejection(line=r.line, code=r.code, reason=r.reason, source_ref=r.source_ref)
                       for r in report.rejections],
        rescored_persons=report.rescored_persons)


__all__ = ["FUTURE_SKEW", "IngestReport", "Rejection", "TooManyRows", "ingest_batch", "split_rows"]
