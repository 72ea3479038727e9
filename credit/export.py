"""The subject's data export (`GET /v1/me/export`, PIPL Art. 45): one document with everything held
about a person, plus the wire views of records, objections and repairs that the citizen routes share.

The export is for the subject only, so the id number and phones are unmasked. Each section is read in
pages and capped at `SECTION_LIMIT` items (newest first) with a `truncated` flag, so one request stays
bounded however long a person's history grows. Exports are limited per account per hour because each
one reads every section.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from core.db import as_utc
from core.errors import NotFound, RateLimited
from core.store import Store
from credit import authorizations as authz
from credit import objections, scores, services
from credit.catalog import CATEGORIES, DATA_SCOPES, DIMENSIONS, PURPOSES
from credit.identity import FieldCipher
from credit.policy import PolicyBook
from credit.schemas import (
    AccessLogEntry,
    CitizenAuthorization,
    DimensionOut,
    ExportAccessLog,
    ExportAccount,
    ExportAuthorizations,
    ExportObjections,
    ExportProfile,
    ExportRecords,
    ExportRepairs,
    ExportScoreHistory,
    MyObjection,
    MyReason,
    MyRepair,
    MyScore,
    PartnerInfo,
    PersonalDataExport,
    PurposeInfo,
    RecordBrief,
    RecordOut,
    ScopeInfo,
    ScorePoint,
)
from credit.scoring import DIMENSION_MAX, RecordFact, counts
from credit.tables import Person, ScoreSnapshot

EXPORT_FORMAT = "xinyi-export-1"
SECTION_LIMIT = 10_000
PAGE_SIZE = 500
EXPORTS_PER_HOUR = 10

_POLICY = PolicyBook()
_PERSON_PK = Person._meta.primary_key

T = TypeVar("T")
C = TypeVar("C")


# ---------------------------------------------------------------- wire views (shared with the routes)


def category_name(code: str) -> str:
    entry = CATEGORIES.get(code)
    return entry.name if entry else code


def record_brief(record: objections.RecordSummary) -> RecordBrief:
    return RecordBrief(id=record.id, category=record.category, category_name=category_name(record.category),
                       polarity=record.polarity, severity=record.severity, title=record.title, source=record.source,
                       occurred_at=record.occurred_at, status=record.status)


def my_objection(view: objections.ObjectionView) -> MyObjection:
    return MyObjection(id=view.id, record_id=view.record.id, status=view.status, reason=view.reason,
                       due_at=view.due_at, created_at=view.created_at, record=record_brief(view.record),
                       decided_at=view.decided_at, decision_note=view.decision_note)


def my_repair(view: objections.RepairView) -> MyRepair:
    return MyRepair(id=view.id, record_id=view.record.id, status=view.status, statement=view.statement,
                    created_at=view.created_at, record=record_brief(view.record), decided_at=view.decided_at,
                    decision_note=view.decision_note)


def record_out(row: dict[str, Any], *, now: datetime) -> RecordOut:
    """A row of `services.person_records` as the subject sees it."""
    occurred = as_utc(row["occurred_at"])
    fact = RecordFact(record_id=row["public_id"], category=row["category"], polarity=int(row["polarity"]),
                      severity=row["severity"], dimension=row["dimension"], occurred_at=occurred, status=row["status"])
    negative = int(row["polarity"]) < 0
    return RecordOut(
        id=row["public_id"], category=row["category"], category_name=category_name(row["category"]),
        polarity=int(row["polarity"]), severity=row["severity"], dimension=row["dimension"], title=row["title"],
        source=row["source"], occurred_at=occurred, status=row["status"],
        counts_towards_score=counts(fact, as_of=now, policy=_POLICY),
        display_until=_POLICY.display_until(severity=row["severity"], occurred_at=occurred) if negative else None,
        repairable_from=_POLICY.repairable_from(severity=row["severity"], occurred_at=occurred) if negative else None)


def citizen_authorization(view: authz.AuthorizationView) -> CitizenAuthorization:
    purpose = PURPOSES.get(view.purpose)
    return CitizenAuthorization(
        id=view.id, status=view.status,
        partner=PartnerInfo(client_id=view.partner_client_id, name=view.partner_name, kind=view.partner_kind),
        purpose=PurposeInfo(code=view.purpose, name=purpose.name if purpose else view.purpose),
        scopes=[ScopeInfo(code=s, description=DATA_SCOPES.get(s, s)) for s in view.scopes],
        daily_cap=view.daily_cap, validity_days=view.validity_days, created_at=view.created_at,
        request_expires_at=view.request_expires_at, valid_until=view.valid_until, decided_at=view.decided_at,
        ended_at=view.ended_at, ended_reason=view.ended_reason)


def my_score(score: scores.Score) -> MyScore:
    return MyScore(
        total=score.total, tier=score.tier, score_band=scores.score_band(score.total),
        dimensions=[DimensionOut(code=c, name=DIMENSIONS[c], score=score.dimensions[c], max=DIMENSION_MAX[c])
                    for c in DIMENSION_MAX],
        reasons=[MyReason(code=r.code, text=r.text, dimension=r.dimension, impact=r.impact, records=r.records)
                 for r in score.reasons],
        objected_records=score.objected_records, as_of=score.as_of, model_version=score.model_version)


# ---------------------------------------------------------------- reading every section in pages


async def _collect(fetch: Callable[[C | None, int], Awaitable[tuple[list[T], C | None]]], *, limit: int,
                   page_size: int) -> tuple[list[T], bool]:
    """Follow `fetch(cursor, n) -> (items, next cursor or None)` until the end or `limit` items.

    Returns the items and whether more existed beyond `limit`.
    """
    items: list[T] = []
    cursor: C | None = None
    while True:
        batch, cursor = await fetch(cursor, min(page_size, limit - len(items)))
        items.extend(batch)
        if cursor is None:
            return items, False
        if len(items) >= limit:
            return items, True


async def _profile(*, cipher: FieldCipher, person_id: int) -> ExportProfile:
    row = await Person.select(Person.public_id, Person.name, Person.id_number_enc, Person.gender, Person.birth_date,
                              Person.region_code, Person.phone_enc).where(_PERSON_PK.is_in([person_id])).first()
    if row is None:
        raise NotFound("person not found", code="person_not_found")
    return ExportProfile(
        person_id=row["public_id"], name=row["name"], id_number=cipher.decrypt("id_number", row["id_number_enc"]),
        gender=row["gender"], birth_date=row["birth_date"].isoformat(), region_code=row["region_code"],
        registry_phone=cipher.decrypt("phone", row["phone_enc"]) if row["phone_enc"] else None)


async def export_person(*, store: Store, cipher: FieldCipher, person_id: int, account_id: str, account_phone: str,
                        bound_at: datetime | None, section_limit: int = SECTION_LIMIT, page_size: int = PAGE_SIZE,
                        now: datetime | None = None) -> PersonalDataExport:
    """Everything held about the person bound to `account_id`, for that account only.

    Raises:
        RateLimited: `export_rate_limited` — more than `EXPORTS_PER_HOUR` exports by this account.
    """
    allowance = await store.incr_with_limit("export", f"acct:{account_id}", limit=EXPORTS_PER_HOUR,
                                            ttl_seconds=3600)
    if not allowance.allowed:
        raise RateLimited("too many exports this hour", code="export_rate_limited",
                          retry_after=allowance.ttl_seconds)
    moment = now or datetime.now(UTC)
    profile = await _profile(cipher=cipher, person_id=person_id)
    score = await scores.current_score(store=store, person_id=person_id)

    async def records_page(cursor: str | None, n: int) -> tuple[list[RecordOut], str | None]:
        rows, next_cursor = await services.person_records(person_id=person_id, limit=n, cursor=cursor)
        return [record_out(r, now=moment) for r in rows], next_cursor

    async def history_page(cursor: int | None, n: int) -> tuple[list[ScorePoint], int | None]:
        # The internal key orders snapshots as written; it never leaves this function.
        pk = ScoreSnapshot._meta.primary_key
        query = ScoreSnapshot.select(pk, ScoreSnapshot.total, ScoreSnapshot.tier, ScoreSnapshot.trigger,
                                     ScoreSnapshot.as_of).where(ScoreSnapshot.person == person_id).order_by(
            pk, ascending=False).limit(n + 1)
        if cursor is not None:
            query = query.where(pk < cursor)
        rows = list(await query)
        page = rows[:n]
        return ([ScorePoint(total=r["total"], tier=r["tier"], trigger=r["trigger"], as_of=as_utc(r["as_of"]))
                 for r in page], int(page[-1]["id"]) if len(rows) > n and page else None)

    async def authorizations_page(cursor: str | None, n: int) -> tuple[list[CitizenAuthorization], str | None]:
        views = await authz.list_for_person(person_id=person_id, limit=n + 1, before=cursor)
        page = views[:n]
        return [citizen_authorization(v) for v in page], page[-1].id if len(views) > n and page else None

    async def access_page(cursor: int | None, n: int) -> tuple[list[AccessLogEntry], int | None]:
        rows = await services.access_log(subject_id=profile.person_id, limit=n + 1, before_seq=cursor)
        page = rows[:n]
        items = [AccessLogEntry(seq=r["seq"], at=as_utc(r["at"]), actor_name=r["actor_name"],
                                actor_type=r["actor_type"], action=r["action"], outcome=r["outcome"],
                                fields=r["fields"].split(), hash=r["hash"], purpose=r["purpose"],
                                authorization_id=r["authorization_id"]) for r in page]
        return items, int(page[-1]["seq"]) if len(rows) > n and page else None

    async def objections_page(cursor: str | None, n: int) -> tuple[list[MyObjection], str | None]:
        views, next_cursor = await objections.objections_of_person(person_id=person_id, limit=n, cursor=cursor)
        return [my_objection(v) for v in views], next_cursor

    async def repairs_page(cursor: str | None, n: int) -> tuple[list[MyRepair], str | None]:
        views, next_cursor = await objections.repairs_of_person(person_id=person_id, limit=n, cursor=cursor)
        return [my_repair(v) for v in views], next_cursor

    sized = {"limit": section_limit, "page_size": page_size}
    records, records_cut = await _collect(records_page, **sized)
    history, history_cut = await _collect(history_page, **sized)
    authorizations, authorizations_cut = await _collect(authorizations_page, **sized)
    access, access_cut = await _collect(access_page, **sized)
    objection_items, objections_cut = await _collect(objections_page, **sized)
    repair_items, repairs_cut = await _collect(repairs_page, **sized)
    return PersonalDataExport(
        format=EXPORT_FORMAT, exported_at=moment, section_limit=section_limit, profile=profile,
        account=ExportAccount(account_id=account_id, phone=account_phone, bound_at=bound_at),
        score=my_score(score),
        score_history=ExportScoreHistory(items=history, truncated=history_cut),
        records=ExportRecords(items=records, truncated=records_cut),
        authorizations=ExportAuthorizations(items=authorizations, truncated=authorizations_cut),
        access_log=ExportAccessLog(items=access, truncated=access_cut),
        objections=ExportObjections(items=objection_items, truncated=objections_cut),
        repairs=ExportRepairs(items=repair_items, truncated=repairs_cut))
