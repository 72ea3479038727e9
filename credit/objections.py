"""Objections (异议) and credit repair (信用修复): the subject disputes or asks to repair one of their
records, a credit office officer decides. No HTTP objects here.

State machines (DESIGN §3, §5):

- Objection `open → upheld | rejected`. Filing flags the record at once (`active → objected`; an
  objected record still counts but is flagged). Upheld: the record is withdrawn, or — when the officer
  gives a correction — it goes back to `active` with the corrected severity/title. Rejected: the record
  goes back to the status it had before. The decision is due within a configurable number of working
  days (default 5), never more than 20 calendar days after filing.
- Repair `pending → approved | rejected`, only for the subject's own negative record, only from
  `PolicyBook.repairable_from`. Approved: the record becomes `repaired` and stops counting.

Every transition is a conditional update (`UPDATE … WHERE status = …`) inside one transaction with the
other writes it needs (record status, record-driven lists such as 失信被执行人) and its outbox event for the
record's data source, so of two concurrent deciders exactly one wins and the other gets a 409. The person is
marked for re-scoring in that transaction and re-scored after the commit (`credit.scores.rescore_marked`); a
re-scoring that failed or never ran is finished by the background job.

An objection and a repair never move the same record at once: a repair cannot be filed for a record under
objection, and approving one waits (409 `record_under_objection`) until the objection is decided.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from core import clock, db
from core.calendar import WorkingCalendar
from core.db import as_utc, as_utc_or_none
from core.errors import Conflict, NotFound, Unprocessable
from core.store import Store
from credit.authorizations import subject_notice, subject_recipient
from credit.checks import RECORD_LISTS, sync_record_lists
from credit.identity import new_public_id
from credit.policy import PolicyBook
from credit.scores import mark_for_rescoring, rescore_marked
from credit.tables import CreditRecord, Objection, OutboxEvent, Person, Repair

# ---------------------------------------------------------------- configuration

DEFAULT_DECISION_WORKING_DAYS = 5
"""Working days an officer has to decide an objection (the city plans' default)."""
MAX_DECISION_CALENDAR_DAYS = 20
"""Hard ceiling on the decision period, whatever the working-day count and holidays."""

OBJECTION_OPEN = "open"
REPAIR_PENDING = "pending"
OBJECTABLE_STATUS = "active"
SEVERITY_RANK: dict[str, int] = {"minor": 0, "general": 1, "serious": 2}

ObjectionOutcome = Literal["upheld", "rejected"]
RepairOutcome = Literal["approved", "rejected"]

_RECORD_PK = CreditRecord._meta.primary_key
_PERSON_PK = Person._meta.primary_key
_POLICY = PolicyBook()
# OutboxEvent.recipient is shorter than CreditRecord.source; sources are partner client ids (≤ 40).
_RECIPIENT_MAX = 40


async def _sync_lists(record: dict[str, Any], *, now: datetime) -> None:
    """Lists that follow from records (e.g. 失信被执行人) drop a subject whose record stopped counting."""
    code = RECORD_LISTS.get(record["category"])
    if code is not None and record["person"] is not None:
        await sync_record_lists(subjects=[("person", int(record["person"]))], list_codes=[code],
                                source=record["source"], now=now)


# ---------------------------------------------------------------- the decision deadline


def decision_due_at(filed_at: datetime, *, calendar: WorkingCalendar,
                    working_days: int = DEFAULT_DECISION_WORKING_DAYS) -> datetime:
    """When an objection filed at `filed_at` must be decided by (UTC).

    The filing day itself does not count; then `working_days` working days of the service's calendar
    (statutory holidays off, make-up working days on) are counted on the city's calendar, and the
    objection is due at the end of the last one (local midnight). It is never due later than
    `MAX_DECISION_CALENDAR_DAYS` after filing.

    Raises:
        ValueError: `working_days` is not positive.
        CalendarYearUnknown: the count runs into a year the calendar does not know.
    """
    return calendar.deadline(filed_at, working_days=working_days,
                             at_most=timedelta(days=MAX_DECISION_CALENDAR_DAYS))


# ---------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class RecordSummary:
    id: str
    category: str
    polarity: int
    severity: str
    dimension: str
    title: str
    source: str
    occurred_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class ObjectionView:
    id: str
    record: RecordSummary
    person_public_id: str
    reason: str
    status: str
    record_status_before: str
    due_at: datetime
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None

    def overdue_at(self, now: datetime) -> bool:
        """Open and past its due date."""
        return self.status == OBJECTION_OPEN and self.due_at < now


@dataclass(frozen=True, slots=True)
class RepairView:
    id: str
    record: RecordSummary
    person_public_id: str
    statement: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None


@dataclass(frozen=True, slots=True)
class Correction:
    """What an upheld objection corrects on the record (at least one field)."""

    severity: str | None = None
    title: str | None = None


_RECORD_COLUMNS = (_RECORD_PK, CreditRecord.public_id, CreditRecord.person, CreditRecord.subject_kind,
                   CreditRecord.category, CreditRecord.polarity, CreditRecord.severity, CreditRecord.dimension,
                   CreditRecord.title, CreditRecord.source, CreditRecord.source_ref, CreditRecord.occurred_at,
                   CreditRecord.status)
_OBJECTION_COLUMNS = (Objection.public_id, Objection.record, Objection.person, Objection.reason, Objection.status,
                      Objection.record_status_before, Objection.due_at, Objection.created_at,
                      Objection.decided_at, Objection.decided_by, Objection.decision_note)
_REPAIR_COLUMNS = (Repair.public_id, Repair.record, Repair.person, Repair.statement, Repair.status,
                   Repair.created_at, Repair.decided_at, Repair.decided_by, Repair.decision_note)


def _summary(row: dict[str, Any]) -> RecordSummary:
    return RecordSummary(id=row["public_id"], category=row["category"], polarity=int(row["polarity"]),
                         severity=row["severity"], dimension=row["dimension"], title=row["title"],
                         source=row["source"], occurred_at=as_utc(row["occurred_at"]), status=row["status"])


async def _records_by_pk(pks: set[int]) -> dict[int, dict[str, Any]]:
    if not pks:
        return {}
    return {r["id"]: r for r in await CreditRecord.select(*_RECORD_COLUMNS).where(_RECORD_PK.is_in(list(pks)))}


async def _person_public_ids(pks: set[int]) -> dict[int, str]:
    if not pks:
        return {}
    return {r["id"]: r["public_id"]
            for r in await Person.select(_PERSON_PK, Person.public_id).where(_PERSON_PK.is_in(list(pks)))}


async def _objection_views(rows: list[dict[str, Any]]) -> list[ObjectionView]:
    records = await _records_by_pk({r["record"] for r in rows})
    persons = await _person_public_ids({r["person"] for r in rows})
    return [ObjectionView(
        id=r["public_id"], record=_summary(records[r["record"]]), person_public_id=persons[r["person"]],
        reason=r["reason"], status=r["status"], record_status_before=r["record_status_before"],
        due_at=as_utc(r["due_at"]), created_at=as_utc(r["created_at"]), decided_at=as_utc_or_none(r["decided_at"]),
        decided_by=r["decided_by"], decision_note=r["decision_note"]) for r in rows]


async def _repair_views(rows: list[dict[str, Any]]) -> list[RepairView]:
    records = await _records_by_pk({r["record"] for r in rows})
    persons = await _person_public_ids({r["person"] for r in rows})
    return [RepairView(
        id=r["public_id"], record=_summary(records[r["record"]]), person_public_id=persons[r["person"]],
        statement=r["statement"], status=r["status"], created_at=as_utc(r["created_at"]),
        decided_at=as_utc_or_none(r["decided_at"]), decided_by=r["decided_by"], decision_note=r["decision_note"])
        for r in rows]


async def get_objection(*, objection_id: str) -> ObjectionView:
    row = await Objection.select(*_OBJECTION_COLUMNS).where(Objection.public_id == objection_id).first()
    if row is None:
        raise NotFound("objection not found", code="objection_not_found")
    return (await _objection_views([row]))[0]


async def get_repair(*, repair_id: str) -> RepairView:
    row = await Repair.select(*_REPAIR_COLUMNS).where(Repair.public_id == repair_id).first()
    if row is None:
        raise NotFound("repair application not found", code="repair_not_found")
    return (await _repair_views([row]))[0]


# ---------------------------------------------------------------- shared helpers


async def _own_record(*, person_id: int, record_id: str) -> dict[str, Any]:
    """The subject's own record; anyone else's looks exactly like a missing one."""
    row = await CreditRecord.select(*_RECORD_COLUMNS).where(
        (CreditRecord.public_id == record_id) & (CreditRecord.person == person_id)).first()
    if row is None or row["subject_kind"] != "person":
        raise NotFound("record not found", code="record_not_found")
    return row


async def _record_status(record_pk: int) -> str:
    row = await CreditRecord.select(CreditRecord.status).where(_RECORD_PK.is_in([record_pk])).first()
    return str(row["status"]) if row else "missing"


def _recipient(source: str) -> str:
    return source if len(source) <= _RECIPIENT_MAX else "source:unresolved"


def _event(*, topic: str, aggregate_id: str, record: dict[str, Any], payload: dict[str, Any]) -> OutboxEvent:
    """An event for the record's data source: it learns about disputes and repairs of what it sent.

    The payload names the record by our id and the source's own reference, never the person.
    """
    body = {"type": topic, "record_id": record["public_id"], "source_ref": record["source_ref"], **payload}
    return OutboxEvent(public_id=f"evt_{secrets.token_hex(12)}", topic=topic, aggregate_id=aggregate_id,
                       recipient=_recipient(record["source"]), payload=body)


async def _subject_notice(record: dict[str, Any], *, topic: str, aggregate_id: str, payload: dict[str, Any]) -> None:
    """The decision told to the record's subject, in the deciding transaction (a notice through the outbox)."""
    recipient = await subject_recipient(person_id=record.get("person"), enterprise_id=record.get("enterprise"))
    if recipient is not None:
        await OutboxEvent.insert(subject_notice(recipient=recipient, topic=topic, aggregate_id=aggregate_id,
                                                payload={"record_id": record["public_id"], **payload}))


# ---------------------------------------------------------------- objections (异议)


async def file_objection(*, store: Store, calendar: WorkingCalendar, person_id: int, record_id: str, reason: str,
                         working_days: int = DEFAULT_DECISION_WORKING_DAYS, now: datetime | None = None
                         ) -> ObjectionView:
    """The subject disputes one of their active records; it is flagged at once.

    Raises:
        NotFound: `record_not_found` — no such record, or not the subject's.
        Conflict: `objection_already_open` — the record is already under objection.
        Unprocessable: `record_not_objectable` — the record is not active (repaired, withdrawn, expired).
        CalendarYearUnknown: the decision deadline falls in a year the calendar does not know (nothing
            is filed).
    """
    record = await _own_record(person_id=person_id, record_id=record_id)
    moment = now or clock.now()
    public_id = new_public_id("obj")
    due_at = decision_due_at(moment, calendar=calendar, working_days=working_days)
    async with db.transaction(CreditRecord):  # concurrent deciders queue
        # The conditional update is the lock: of two concurrent filings only one flags the record.
        flagged = await CreditRecord.update({CreditRecord.status: "objected", CreditRecord.updated_at: moment}).where(
            _RECORD_PK.is_in([record["id"]]) & (CreditRecord.status == OBJECTABLE_STATUS)).returning(_RECORD_PK)
        if not flagged:
            current = await _record_status(record["id"])
            if current == "objected":
                raise Conflict("this record already has an open objection", code="objection_already_open")
            raise Unprocessable(f"only active records can be objected to; this one is {current}",
                                code="record_not_objectable")
        await Objection.insert(Objection(
            public_id=public_id, record=record["id"], person=person_id, reason=reason.strip(),
            status=OBJECTION_OPEN, record_status_before=OBJECTABLE_STATUS, due_at=due_at, created_at=moment))
        await OutboxEvent.insert(_event(topic="objection.filed", aggregate_id=public_id, record=record,
                                        payload={"objection_id": public_id, "status": OBJECTION_OPEN,
                                                 "due_at": due_at.isoformat()}))
        await mark_for_rescoring([person_id], trigger="objection", now=moment)
    await rescore_marked(store=store, person_ids=[person_id])
    return await get_objection(objection_id=public_id)


async def objections_of_person(*, person_id: int, limit: int, cursor: str | None
                               ) -> tuple[list[ObjectionView], str | None]:
    """The subject's own objections, newest first."""
    query = Objection.select(*_OBJECTION_COLUMNS).where(Objection.person == person_id)
    rows, next_cursor = await db.newest_first(query, at=Objection.created_at, key=Objection.public_id,
                                           limit=limit, cursor=cursor)
    return await _objection_views(rows), next_cursor


async def list_objections(*, status: str | None, overdue: bool | None, limit: int, cursor: str | None,
                          now: datetime | None = None) -> tuple[list[ObjectionView], str | None]:
    """Every objection (operators), newest first; `overdue=True` means open and past its due date."""
    moment = now or clock.now()
    query = Objection.select(*_OBJECTION_COLUMNS)
    if status is not None:
        query = query.where(Objection.status == status)
    if overdue is True:
        query = query.where((Objection.status == OBJECTION_OPEN) & (Objection.due_at < moment))
    elif overdue is False:
        query = query.where((Objection.status != OBJECTION_OPEN) | (Objection.due_at >= moment))
    rows, next_cursor = await db.newest_first(query, at=Objection.created_at, key=Objection.public_id,
                                           limit=limit, cursor=cursor)
    return await _objection_views(rows), next_cursor


def _check_correction(record: RecordSummary, correction: Correction) -> None:
    """An upheld objection never leaves the subject worse off than the record it corrects."""
    if correction.severity is None and correction.title is None:
        raise Unprocessable("a correction changes the severity, the title or both", code="empty_correction")
    if correction.severity is None:
        return
    if correction.severity not in SEVERITY_RANK:
        raise Unprocessable(f"unknown severity {correction.severity!r}", code="unknown_severity")
    change = SEVERITY_RANK[correction.severity] - SEVERITY_RANK[record.severity]
    if (record.polarity < 0 and change > 0) or (record.polarity > 0 and change < 0):
        raise Unprocessable("an upheld objection cannot make the record weigh more against the subject",
                            code="correction_not_favourable")


async def decide_objection(*, store: Store, objection_id: str, operator_id: str, outcome: ObjectionOutcome,
                           note: str, correction: Correction | None = None, now: datetime | None = None
                           ) -> ObjectionView:
    """An officer decides an open objection; exactly one of concurrent deciders wins.

    upheld → the record is withdrawn, or with `correction` stays active with the corrected fields;
    rejected → the record returns to its status before the objection.

    Raises:
        NotFound: `objection_not_found`.
        Conflict: `objection_already_decided`; `record_state_conflict` if the record left `objected`.
        Unprocessable: `correction_requires_upheld`, `empty_correction`, `correction_not_favourable`.
    """
    view = await get_objection(objection_id=objection_id)
    if correction is not None:
        if outcome != "upheld":
            raise Unprocessable("only an upheld objection corrects the record", code="correction_requires_upheld")
        _check_correction(view.record, correction)
    moment = now or clock.now()
    changes: dict[Any, Any] = {CreditRecord.updated_at: moment}
    if outcome == "rejected":
        changes[CreditRecord.status] = view.record_status_before
    elif correction is None:
        changes[CreditRecord.status] = "withdrawn"
    else:
        changes[CreditRecord.status] = "active"
        if correction.severity is not None:
            changes[CreditRecord.severity] = correction.severity
        if correction.title is not None:
            changes[CreditRecord.title] = correction.title.strip()
    async with db.transaction(CreditRecord):  # concurrent deciders queue
        decided = await Objection.update({
            Objection.status: outcome, Objection.decided_at: moment, Objection.decided_by: operator_id,
            Objection.decision_note: note.strip()}).where(
            (Objection.public_id == objection_id) & (Objection.status == OBJECTION_OPEN)).returning(Objection.public_id)
        if not decided:
            raise Conflict("this objection has already been decided", code="objection_already_decided")
        record = await CreditRecord.select(*_RECORD_COLUMNS).where(CreditRecord.public_id == view.record.id).first()
        updated = await CreditRecord.update(changes).where(
            (CreditRecord.public_id == view.record.id) & (CreditRecord.status == "objected")).returning(_RECORD_PK)
        if not updated or record is None:
            raise Conflict("the record is no longer under objection", code="record_state_conflict")
        await _sync_lists(record, now=moment)
        payload: dict[str, Any] = {"objection_id": objection_id, "status": outcome,
                                   "record_status": changes[CreditRecord.status]}
        if correction is not None:
            payload["correction"] = {k: v for k, v in (("severity", correction.severity),
                                                       ("title", correction.title)) if v is not None}
        await OutboxEvent.insert(_event(topic="objection.decided", aggregate_id=objection_id, record=record,
                                        payload=payload))
        verdict = ("异议成立，该记录已撤销" if changes[CreditRecord.status] == "withdrawn" else "异议成立，该记录已更正"
                   ) if outcome == "upheld" else "异议未被采纳，该记录维持原状"
        await _subject_notice(record, topic="objection.decided", aggregate_id=objection_id, payload={
            **payload, "note": note.strip(),
            "message": f"您对“{record['title']}”提出的异议已处理：{verdict}。处理说明：{note.strip()}"})
        await mark_for_rescoring([int(record["person"])], trigger="objection", now=moment)
    await rescore_marked(store=store, person_ids=[int(record["person"])])
    return await get_objection(objection_id=objection_id)


# ---------------------------------------------------------------- credit repair (信用修复)

NOT_REPAIRABLE_STATUSES = frozenset({"repaired", "withdrawn", "expired"})


async def file_repair(*, person_id: int, record_id: str, statement: str, policy: PolicyBook = _POLICY,
                      now: datetime | None = None) -> RepairView:
    """The subject applies for credit repair of one of their negative records.

    Raises:
        NotFound: `record_not_found` — no such record, or not the subject's.
        Unprocessable: `record_not_repairable` (positive, repaired, withdrawn, expired or no longer shown),
            `repair_too_early` (before `PolicyBook.repairable_from`; the detail names the moment).
        Conflict: `record_under_objection`, `repair_already_pending`.
    """
    record = await _own_record(person_id=person_id, record_id=record_id)
    moment = now or clock.now()
    occurred_at = as_utc(record["occurred_at"])
    if record["polarity"] >= 0:
        raise Unprocessable("only negative records can be repaired", code="record_not_repairable")
    if record["status"] in NOT_REPAIRABLE_STATUSES:
        raise Unprocessable(f"this record is {record['status']} and cannot be repaired", code="record_not_repairable")
    if moment >= policy.display_until(severity=record["severity"], occurred_at=occurred_at):
        raise Unprocessable("this record is past its display period and no longer counts",
                            code="record_not_repairable")
    if record["status"] == "objected":
        raise Conflict("this record is under objection; apply for repair after the decision",
                       code="record_under_objection")
    earliest = policy.repairable_from(severity=record["severity"], occurred_at=occurred_at)
    if moment < earliest:
        raise Unprocessable(f"this record can be repaired from {earliest.isoformat()}", code="repair_too_early")
    public_id = new_public_id("rep")
    async with db.transaction(CreditRecord):  # concurrent deciders queue
        # A no-op conditional update locks the record row (PostgreSQL) or the database (SQLite) until commit,
        # so two concurrent applications for one record cannot both pass the "none pending" check.
        locked = await CreditRecord.update({CreditRecord.status: CreditRecord.status}).where(
            _RECORD_PK.is_in([record["id"]]) & (CreditRecord.status == "active")).returning(_RECORD_PK)
        if not locked:
            current = await _record_status(record["id"])
            if current == "objected":
                raise Conflict("this record is under objection; apply for repair after the decision",
                               code="record_under_objection")
            raise Unprocessable(f"this record is {current} and cannot be repaired", code="record_not_repairable")
        if await Repair.exists().where((Repair.record == record["id"]) & (Repair.status == REPAIR_PENDING)):
            raise Conflict("a repair application for this record is already pending", code="repair_already_pending")
        await Repair.insert(Repair(public_id=public_id, record=record["id"], person=person_id,
                                   statement=statement.strip(), status=REPAIR_PENDING, created_at=moment))
        await OutboxEvent.insert(_event(topic="repair.filed", aggregate_id=public_id, record=record,
                                        payload={"repair_id": public_id, "status": REPAIR_PENDING}))
    return await get_repair(repair_id=public_id)


async def repairs_of_person(*, person_id: int, limit: int, cursor: str | None) -> tuple[list[RepairView], str | None]:
    """The subject's own repair applications, newest first."""
    query = Repair.select(*_REPAIR_COLUMNS).where(Repair.person == person_id)
    rows, next_cursor = await db.newest_first(query, at=Repair.created_at, key=Repair.public_id, limit=limit,
                                           cursor=cursor)
    return await _repair_views(rows), next_cursor


async def list_repairs(*, status: str | None, limit: int, cursor: str | None) -> tuple[list[RepairView], str | None]:
    """Every repair application (operators), newest first."""
    query = Repair.select(*_REPAIR_COLUMNS)
    if status is not None:
        query = query.where(Repair.status == status)
    rows, next_cursor = await db.newest_first(query, at=Repair.created_at, key=Repair.public_id, limit=limit,
                                           cursor=cursor)
    return await _repair_views(rows), next_cursor


async def decide_repair(*, store: Store, repair_id: str, operator_id: str, outcome: RepairOutcome, note: str,
                        now: datetime | None = None) -> RepairView:
    """An officer decides a pending repair application; exactly one of concurrent deciders wins.

    Raises:
        NotFound: `repair_not_found`.
        Conflict: `repair_already_decided`; `record_under_objection` or `record_state_conflict` when an
            approval finds the record no longer active (the application stays pending).
    """
    view = await get_repair(repair_id=repair_id)
    moment = now or clock.now()
    async with db.transaction(CreditRecord):  # concurrent deciders queue
        decided = await Repair.update({
            Repair.status: outcome, Repair.decided_at: moment, Repair.decided_by: operator_id,
            Repair.decision_note: note.strip()}).where(
            (Repair.public_id == repair_id) & (Repair.status == REPAIR_PENDING)).returning(Repair.public_id)
        if not decided:
            raise Conflict("this repair application has already been decided", code="repair_already_decided")
        record = await CreditRecord.select(*_RECORD_COLUMNS).where(CreditRecord.public_id == view.record.id).first()
        if record is None:
            raise Conflict("the record no longer exists", code="record_state_conflict")
        if outcome == "approved":
            repaired = await CreditRecord.update({CreditRecord.status: "repaired", CreditRecord.updated_at: moment}
                                                 ).where(_RECORD_PK.is_in([record["id"]])
                                                         & (CreditRecord.status == "active")).returning(_RECORD_PK)
            if not repaired:
                current = await _record_status(record["id"])
                if current == "objected":
                    raise Conflict("the record is under objection; decide the objection first",
                                   code="record_under_objection")
                raise Conflict(f"the record is {current} and cannot be repaired", code="record_state_conflict")
            await _sync_lists(record, now=moment)
        repair_payload: dict[str, Any] = {
            "repair_id": repair_id, "status": outcome,
            "record_status": "repaired" if outcome == "approved" else record["status"]}
        await OutboxEvent.insert(_event(topic="repair.decided", aggregate_id=repair_id, record=record,
                                        payload=repair_payload))
        verdict = "已通过，该记录不再计入信用评价" if outcome == "approved" else "未通过"
        await _subject_notice(record, topic="repair.decided", aggregate_id=repair_id, payload={
            **repair_payload, "note": note.strip(),
            "message": f"您对“{record['title']}”的信用修复申请{verdict}。处理说明：{note.strip()}"})
        if outcome == "approved":
            await mark_for_rescoring([int(record["person"])], trigger="repair", now=moment)
    if outcome == "approved":
        await rescore_marked(store=store, person_ids=[int(record["person"])])
    return await get_repair(repair_id=repair_id)
