"""Joint rewards and punishments (联合奖惩): red and black lists, the measure catalog, and the credit check a
government department runs before a business step. No HTTP objects here.

- Lists: membership rows in `credit_list_entries` (one row per listing; delisting sets `delisted_at`).
  Operators list and delist subjects by hand; lists that follow from credit records (a
  `dishonest_executee` record puts its subject on the 失信被执行人 black list) are kept in step with
  the records by `sync_record_lists`, which the ingest calls in the same transaction as the records.
- Measures: the operator-managed catalog in `measures`. A measure applies to a check when the subject is
  on the measure's list and the check's business type is one of the measure's (none listed = all).
- Checks: stored in `credit_checks` with the answer given, written to the access ledger before the
  department hears it; the department later reports which measure it applied (once).

A subject the registry does not know gets the same answer as a clean one (`listed: false`, nothing
returned), after the same lookups and the same ledger write: a department learns whether someone is
listed, never whether they are in the registry, neither from the answer nor from its timing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
from piccolo.columns import ForeignKey
from piccolo.query.mixins import OnConflictAction

from core import clock, db
from core.db import as_utc
from core.errors import Conflict, NotFound, Unprocessable
from credit.identity import (
    FieldCipher,
    InvalidIdentifier,
    mask_name,
    new_public_id,
    normalize_id_number,
    normalize_uscc,
)
from credit.ledger import AccessEvent, LedgerWriter
from credit.tables import CreditCheck, CreditListEntry, CreditRecord, Enterprise, Measure, Person

SubjectKind = Literal["person", "enterprise"]
ListKind = Literal["red", "black"]
MeasureKind = Literal["reward", "punishment"]

ACTIVE = "active"
RETIRED = "retired"
OPERATOR_SOURCE_PREFIX = "operator:"
"""`source` of list entries made by hand; record-driven syncing never delists those."""
LISTING_RECORD_STATUSES = ("active", "objected")
"""A record keeps its subject listed while it counts (an objected record still counts, flagged)."""

_ENCODER = msgspec.json.Encoder()
_PERSON_PK = Person._meta.primary_key
_ENTERPRISE_PK = Enterprise._meta.primary_key


# ---------------------------------------------------------------- catalogs


@dataclass(frozen=True, slots=True)
class ListSpec:
    code: str
    kind: ListKind
    name: str


LISTS: dict[str, ListSpec] = {
    spec.code: spec
    for spec in (
        ListSpec("dishonest_executee", "black", "失信被执行人名单"),
        ListSpec("major_tax_violation", "black", "重大税收违法失信主体名单"),
        ListSpec("safety_production_violation", "black", "安全生产严重失信主体名单"),
        ListSpec("credit_red_list", "red", "诚信典型红名单"),
        ListSpec("tax_a_grade", "red", "纳税信用A级纳税人名单"),
    )
}

RECORD_LISTS: dict[str, str] = {
    "dishonest_executee": "dishonest_executee",
    "tax_grade_a": "tax_a_grade",
}
"""Record categories that put their subject on a list while such a record counts: category → list code."""

BUSINESS_TYPES: dict[str, str] = {
    "government_procurement": "政府采购",
    "bidding": "招标投标",
    "permit_issue": "行政许可审批",
    "subsidy_application": "财政补贴与专项资金申请",
    "public_recruitment": "公职人员招录",
    "honour_review": "评优评先",
    "high_consumption": "高消费行为核查",
    "financing": "融资授信",
    "market_access": "市场准入与登记",
}
"""Business steps a department checks before (short codes sent as `business_type`)."""

_KIND_FOR_LIST: dict[str, MeasureKind] = {"black": "punishment", "red": "reward"}


@dataclass(frozen=True, slots=True)
class MeasureSpec:
    code: str
    name: str
    kind: MeasureKind
    list_code: str
    mandatory: bool
    business_types: tuple[str, ...]
    basis: str


_DISHONEST_BASIS = "《关于对失信被执行人实施联合惩戒的合作备忘录》（发改财金〔2016〕141号）"
_RED_BASIS = "《关于建立完善守信联合激励和失信联合惩戒制度加快推进社会诚信建设的指导意见》（国发〔2016〕33号）"

DEFAULT_MEASURES: tuple[MeasureSpec, ...] = (
    MeasureSpec("restrict_government_procurement", "限制参与政府采购活动", "punishment", "dishonest_executee", True,
                ("government_procurement", "bidding"), _DISHONEST_BASIS),
    MeasureSpec("restrict_high_consumption", "限制高消费及非生活和工作必需的消费行为", "punishment",
                "dishonest_executee", True, ("high_consumption",),
                "《最高人民法院关于限制被执行人高消费及有关消费的若干规定》（法释〔2015〕17号）"),
    MeasureSpec("strict_permit_review", "从严审核行政许可审批项目", "punishment", "dishonest_executee", True,
                ("permit_issue", "market_access"), _DISHONEST_BASIS),
    MeasureSpec("restrict_subsidies", "限制申请财政性资金项目和政策性补贴", "punishment", "dishonest_executee", True,
                ("subsidy_application",), _DISHONEST_BASIS),
    MeasureSpec("restrict_public_office", "限制招录（聘）为公务员或事业单位工作人员", "punishment",
                "dishonest_executee", True, ("public_recruitment",), _DISHONEST_BASIS),
    MeasureSpec("restrict_honours", "限制参加评优评先", "punishment", "dishonest_executee", False, (),
                _DISHONEST_BASIS),
    MeasureSpec("tax_violation_strict_review", "从严审核行政许可和财政补贴", "punishment", "major_tax_violation", True,
                ("permit_issue", "subsidy_application", "government_procurement"),
                "《关于对重大税收违法案件当事人实施联合惩戒措施的合作备忘录》（发改财金〔2014〕3062号）"),
    MeasureSpec("green_channel", "行政审批“绿色通道”", "reward", "credit_red_list", False,
                ("permit_issue", "market_access"), _RED_BASIS),
    MeasureSpec("tolerance_acceptance", "容缺受理", "reward", "credit_red_list", False,
                ("permit_issue", "subsidy_application"), _RED_BASIS),
    MeasureSpec("priority_support", "同等条件下优先安排财政性资金支持", "reward", "credit_red_list", False,
                ("subsidy_application",), _RED_BASIS),
    MeasureSpec("tax_a_green_channel", "行政审批“绿色通道”和容缺受理", "reward", "tax_a_grade", False,
                ("permit_issue", "market_access"),
                "《关于对纳税信用A级纳税人实施联合激励措施的合作备忘录》（发改财金〔2016〕1467号）"),
    MeasureSpec("tax_a_financing", "银行授信融资优先支持", "reward", "tax_a_grade", False, ("financing",),
                "《关于对纳税信用A级纳税人实施联合激励措施的合作备忘录》（发改财金〔2016〕1467号）"),
)
"""The default catalog `seed_default_measures` writes (operators change it afterwards)."""


def _check_business_types(codes: Iterable[str]) -> None:
    if unknown := sorted(set(codes) - BUSINESS_TYPES.keys()):
        raise Unprocessable(f"unknown business type: {', '.join(unknown)}", code="unknown_business_type")


def _list_spec(code: str) -> ListSpec:
    spec = LISTS.get(code)
    if spec is None:
        raise Unprocessable(f"unknown list {code!r}", code="unknown_list")
    return spec


# ---------------------------------------------------------------- subjects


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """A registry subject found by its identifier."""

    kind: SubjectKind
    pk: int
    public_id: str
    name: str


async def find_subject(*, cipher: FieldCipher, subject_kind: SubjectKind, id_number: str | None = None,
                       name: str | None = None, uscc: str | None = None) -> SubjectRef | None:
    """The registry person (id number and exact name) or enterprise (USCC), or None.

    Raises:
        Unprocessable: `invalid_id_number` / `invalid_uscc` when the identifier itself is invalid.
    """
    try:
        if subject_kind == "person":
            number = normalize_id_number(id_number or "")
            row = await Person.select(_PERSON_PK, Person.public_id, Person.name).where(
                Person.id_number_hash == cipher.lookup_hash("id_number", number)).first()
            # A wrong name is treated like an unknown person, as everywhere else in the registry.
            if row is None or row["name"] != (name or "").strip():
                return None
            return SubjectRef(kind="person", pk=int(row["id"]), public_id=row["public_id"], name=row["name"])
        code = normalize_uscc(uscc or "")
        row = await Enterprise.select(_ENTERPRISE_PK, Enterprise.public_id, Enterprise.name).where(
            Enterprise.uscc_hash == cipher.lookup_hash("uscc", code)).first()
    except InvalidIdentifier as exc:
        raise Unprocessable(f"invalid {exc.kind}: {exc.reason}", code=f"invalid_{exc.kind}",
                            errors=[{"field": exc.kind, "message": exc.reason}]) from None
    if row is None:
        return None
    return SubjectRef(kind="enterprise", pk=int(row["id"]), public_id=row["public_id"], name=row["name"])


def _subject_column(kind: str) -> ForeignKey[Any]:
    return CreditListEntry.person if kind == "person" else CreditListEntry.enterprise


# ---------------------------------------------------------------- measures


@dataclass(frozen=True, slots=True)
class MeasureView:
    code: str
    name: str
    kind: str
    mandatory: bool
    list_code: str
    list_name: str
    business_types: tuple[str, ...]
    basis: str
    status: str
    created_at: datetime

    def applies_to(self, business_type: str) -> bool:
        return not self.business_types or business_type in self.business_types


_MEASURE_COLUMNS = (Measure.code, Measure.name, Measure.kind, Measure.mandatory, Measure.list_code,
                    Measure.business_types, Measure.basis, Measure.status, Measure.created_at)


def _measure_view(row: dict[str, Any]) -> MeasureView:
    spec = LISTS.get(row["list_code"])
    return MeasureView(code=row["code"], name=row["name"], kind=row["kind"], mandatory=row["mandatory"] == "Y",
                       list_code=row["list_code"], list_name=spec.name if spec else row["list_code"],
                       business_types=tuple(row["business_types"].split()), basis=row["basis"],
                       status=row["status"], created_at=as_utc(row["created_at"]))


def _measure_row(spec: MeasureSpec, *, now: datetime) -> Measure:
    return Measure(code=spec.code, name=spec.name, kind=spec.kind, mandatory="Y" if spec.mandatory else "N",
                   list_code=spec.list_code, business_types=" ".join(spec.business_types), basis=spec.basis,
                   status=ACTIVE, created_at=now)


async def seed_default_measures() -> int:
    """Write the default measure catalog; measures already present (by code) are left as operators set them.

    Idempotent and safe to run concurrently (INSERT … ON CONFLICT DO NOTHING). Returns how many were new.
    """
    now = clock.now()
    inserted = await Measure.insert(*(_measure_row(spec, now=now) for spec in DEFAULT_MEASURES)).on_conflict(
        target=Measure.code, action=OnConflictAction.do_nothing).returning(Measure.code)
    return len(inserted)


async def list_measures(*, list_code: str | None = None, status: str | None = None) -> list[MeasureView]:
    query = Measure.select(*_MEASURE_COLUMNS).order_by(Measure.list_code, Measure.code)
    if list_code is not None:
        query = query.where(Measure.list_code == list_code)
    if status is not None:
        query = query.where(Measure.status == status)
    return [_measure_view(row) for row in await query]


async def get_measure(*, code: str) -> MeasureView:
    row = await Measure.select(*_MEASURE_COLUMNS).where(Measure.code == code).first()
    if row is None:
        raise NotFound("measure not found", code="measure_not_found")
    return _measure_view(row)


async def create_measure(*, code: str, name: str, kind: MeasureKind, list_code: str, mandatory: bool,
                         business_types: Sequence[str], basis: str) -> MeasureView:
    """Add a measure to the catalog.

    Raises:
        Unprocessable: `unknown_list`, `measure_kind_mismatch` (rewards go with red lists, punishments
            with black lists), `unknown_business_type`.
        Conflict: `measure_exists`.
    """
    spec = _list_spec(list_code)
    if _KIND_FOR_LIST[spec.kind] != kind:
        raise Unprocessable(f"a {spec.kind} list carries {_KIND_FOR_LIST[spec.kind]} measures, not {kind}",
                            code="measure_kind_mismatch")
    _check_business_types(business_types)
    row = _measure_row(MeasureSpec(code=code, name=name.strip(), kind=kind, list_code=list_code, mandatory=mandatory,
                                   business_types=tuple(dict.fromkeys(business_types)), basis=basis.strip()),
                       now=clock.now())
    inserted = await Measure.insert(row).on_conflict(target=Measure.code, action=OnConflictAction.do_nothing
                                                     ).returning(Measure.code)
    if not inserted:
        raise Conflict(f"measure {code} already exists", code="measure_exists")
    return await get_measure(code=code)


async def update_measure(*, code: str, name: str | None = None, mandatory: bool | None = None,
                         business_types: Sequence[str] | None = None, basis: str | None = None,
                         status: str | None = None) -> MeasureView:
    """Change a measure's name, mandatory flag, business types, basis or status (active | retired).

    Raises:
        NotFound: `measure_not_found`.
        Unprocessable: `empty_patch`, `unknown_business_type`.
    """
    changes: dict[Any, Any] = {}
    if name is not None:
        changes[Measure.name] = name.strip()
    if mandatory is not None:
        changes[Measure.mandatory] = "Y" if mandatory else "N"
    if business_types is not None:
        _check_business_types(business_types)
        changes[Measure.business_types] = " ".join(dict.fromkeys(business_types))
    if basis is not None:
        changes[Measure.basis] = basis.strip()
    if status is not None:
        changes[Measure.status] = status
    if not changes:
        raise Unprocessable("name, mandatory, business_types, basis or status must change", code="empty_patch")
    updated = await Measure.update(changes).where(Measure.code == code).returning(Measure.code)
    if not updated:
        raise NotFound("measure not found", code="measure_not_found")
    return await get_measure(code=code)


# ---------------------------------------------------------------- lists


@dataclass(frozen=True, slots=True)
class ListEntryView:
    id: str
    list_kind: str
    list_code: str
    list_name: str
    subject_kind: str
    subject_id: str
    subject_name: str  # masked for persons
    reason: str
    source: str
    listed_at: datetime
    delisted_at: datetime | None


_ENTRY_COLUMNS = (CreditListEntry.public_id, CreditListEntry.list_kind, CreditListEntry.list_code,
                  CreditListEntry.list_name, CreditListEntry.subject_kind, CreditListEntry.person,
                  CreditListEntry.enterprise, CreditListEntry.reason, CreditListEntry.source,
                  CreditListEntry.listed_at, CreditListEntry.delisted_at)


async def _entry_views(rows: list[dict[str, Any]]) -> list[ListEntryView]:
    person_pks = [r["person"] for r in rows if r["person"] is not None]
    enterprise_pks = [r["enterprise"] for r in rows if r["enterprise"] is not None]
    persons = {r["id"]: (r["public_id"], mask_name(r["name"])) for r in await Person.select(
        _PERSON_PK, Person.public_id, Person.name).where(_PERSON_PK.is_in(person_pks))} if person_pks else {}
    enterprises = {r["id"]: (r["public_id"], r["name"]) for r in await Enterprise.select(
        _ENTERPRISE_PK, Enterprise.public_id, Enterprise.name).where(_ENTERPRISE_PK.is_in(enterprise_pks))
    } if enterprise_pks else {}
    views = []
    for r in rows:
        public_id, subject_name = (persons.get(r["person"]) if r["person"] is not None
                                   else enterprises.get(r["enterprise"])) or ("", "")
        views.append(ListEntryView(
            id=r["public_id"], list_kind=r["list_kind"], list_code=r["list_code"], list_name=r["list_name"],
            subject_kind=r["subject_kind"], subject_id=public_id, subject_name=subject_name, reason=r["reason"],
            source=r["source"], listed_at=as_utc(r["listed_at"]),
            delisted_at=as_utc(r["delisted_at"]) if r["delisted_at"] is not None else None))
    return views


async def get_list_entry(*, entry_id: str) -> ListEntryView:
    row = await CreditListEntry.select(*_ENTRY_COLUMNS).where(CreditListEntry.public_id == entry_id).first()
    if row is None:
        raise NotFound("list entry not found", code="list_entry_not_found")
    return (await _entry_views([row]))[0]


async def list_entries(*, list_code: str | None, subject_kind: str | None, active: bool | None, limit: int,
                       cursor: str | None) -> tuple[list[ListEntryView], str | None]:
    """List memberships, newest listing first, with an opaque cursor over (listed_at, id)."""
    query = CreditListEntry.select(*_ENTRY_COLUMNS)
    if list_code is not None:
        query = query.where(CreditListEntry.list_code == list_code)
    if subject_kind is not None:
        query = query.where(CreditListEntry.subject_kind == subject_kind)
    if active is True:
        query = query.where(CreditListEntry.delisted_at.is_null())
    elif active is False:
        query = query.where(CreditListEntry.delisted_at.is_not_null())
    page, next_cursor = await db.newest_first(query, at=CreditListEntry.listed_at, key=CreditListEntry.public_id,
                                              limit=limit, cursor=cursor)
    return await _entry_views(page), next_cursor


async def _active_entries(*, subject_kind: str, subject_pk: int, list_code: str | None = None
                          ) -> list[dict[str, Any]]:
    query = CreditListEntry.select(CreditListEntry.public_id, CreditListEntry.list_kind, CreditListEntry.list_code,
                                   CreditListEntry.list_name, CreditListEntry.source, CreditListEntry.listed_at).where(
        (_subject_column(subject_kind) == subject_pk) & CreditListEntry.delisted_at.is_null()
    ).order_by(CreditListEntry.listed_at)
    if list_code is not None:
        query = query.where(CreditListEntry.list_code == list_code)
    return list(await query)


def _entry(*, spec: ListSpec, subject_kind: str, subject_pk: int, reason: str, source: str,
           now: datetime) -> CreditListEntry:
    return CreditListEntry(
        public_id=new_public_id("lst"), list_kind=spec.kind, list_code=spec.code, list_name=spec.name,
        subject_kind=subject_kind, person=subject_pk if subject_kind == "person" else None,
        enterprise=subject_pk if subject_kind == "enterprise" else None, reason=reason, source=source,
        listed_at=now)


async def add_to_list(*, cipher: FieldCipher, operator_id: str, list_code: str, subject_kind: SubjectKind,
                      reason: str, id_number: str | None = None, name: str | None = None,
                      uscc: str | None = None) -> ListEntryView:
    """An officer puts a person (id number and name) or an enterprise (USCC) on a list.

    Raises:
        Unprocessable: `unknown_list`, `invalid_id_number`, `invalid_uscc`, `subject_not_found`.
        Conflict: `already_listed` — the subject is already on this list.
    """
    spec = _list_spec(list_code)
    subject = await find_subject(cipher=cipher, subject_kind=subject_kind, id_number=id_number, name=name, uscc=uscc)
    if subject is None:
        what = "id number and name" if subject_kind == "person" else "USCC"
        raise Unprocessable(f"no {subject_kind} in the registry matches this {what}", code="subject_not_found")
    if await _active_entries(subject_kind=subject.kind, subject_pk=subject.pk, list_code=spec.code):
        raise Conflict(f"the {subject_kind} is already on {spec.name}", code="already_listed")
    row = _entry(spec=spec, subject_kind=subject.kind, subject_pk=subject.pk, reason=reason.strip(),
                 source=f"{OPERATOR_SOURCE_PREFIX}{operator_id}", now=clock.now())
    await CreditListEntry.insert(row)
    return await get_list_entry(entry_id=row.public_id)


async def delist(*, entry_id: str, operator_id: str, reason: str | None) -> ListEntryView:
    """An officer ends a list membership (once; of two concurrent delistings one gets 409).

    There is no column for who delisted and why, so both are appended to the entry's reason.

    Raises:
        NotFound: `list_entry_not_found`.
        Conflict: `already_delisted`.
    """
    view = await get_list_entry(entry_id=entry_id)
    note = f"[delisted by {OPERATOR_SOURCE_PREFIX}{operator_id}" + (f": {reason.strip()}]" if reason else "]")
    updated = await CreditListEntry.update({
        CreditListEntry.delisted_at: clock.now(), CreditListEntry.reason: f"{view.reason} {note}".strip()}).where(
        (CreditListEntry.public_id == entry_id) & CreditListEntry.delisted_at.is_null()).returning(
        CreditListEntry.public_id)
    if not updated:
        raise Conflict("this list entry has already been delisted", code="already_delisted")
    return await get_list_entry(entry_id=entry_id)


async def sync_record_lists(*, subjects: Iterable[tuple[str, int]], list_codes: Iterable[str], source: str,
                            now: datetime | None = None) -> None:
    """Put each subject on, or take it off, the record-driven lists `list_codes`, as its records say.

    A subject belongs on a record-driven list while it has a counting record (active or under objection) of
    a category that leads to that list. Entries made by operators are never delisted here. Call it inside
    the transaction that changed the records.
    """
    moment = now or clock.now()
    categories_for: dict[str, list[str]] = {}
    for category, code in RECORD_LISTS.items():
        categories_for.setdefault(code, []).append(category)
    codes = [c for c in dict.fromkeys(list_codes) if c in categories_for]
    for subject_kind, subject_pk in dict.fromkeys(subjects):
        record_subject = CreditRecord.person if subject_kind == "person" else CreditRecord.enterprise
        for code in codes:
            should = await CreditRecord.exists().where(
                (record_subject == subject_pk) & CreditRecord.category.is_in(categories_for[code])
                & CreditRecord.status.is_in(list(LISTING_RECORD_STATUSES)))
            entries = await _active_entries(subject_kind=subject_kind, subject_pk=subject_pk, list_code=code)
            if should and not entries:
                await CreditListEntry.insert(_entry(spec=LISTS[code], subject_kind=subject_kind, subject_pk=subject_pk,
                                                    reason="由数据源信用记录列入", source=source, now=moment))
            elif not should:
                automatic = [e["public_id"] for e in entries
                             if not e["source"].startswith(OPERATOR_SOURCE_PREFIX)]
                if automatic:
                    await CreditListEntry.update({CreditListEntry.delisted_at: moment}).where(
                        CreditListEntry.public_id.is_in(automatic) & CreditListEntry.delisted_at.is_null())


# ---------------------------------------------------------------- credit checks


@dataclass(frozen=True, slots=True)
class Department:
    """The government department running a check (a partner)."""

    client_id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class Membership:
    list_kind: str
    list_code: str
    list_name: str
    listed_at: datetime


@dataclass(frozen=True, slots=True)
class CheckView:
    id: str
    subject_kind: str
    business_type: str
    lists: tuple[Membership, ...]
    measures: tuple[MeasureView, ...]
    checked_at: datetime

    @property
    def listed(self) -> bool:
        return bool(self.lists)


@dataclass(frozen=True, slots=True)
class FeedbackView:
    id: str
    measure_code: str
    note: str | None
    feedback_at: datetime


async def subject_standing(*, subject_kind: str, subject_pk: int, business_type: str
                           ) -> tuple[tuple[Membership, ...], tuple[MeasureView, ...]]:
    """The subject's current list memberships (one per list) and the active measures they trigger.

    Always the same two queries, listed or not (see `run_check`: the work must not depend on the subject).
    """
    memberships: dict[str, Membership] = {}
    for row in await _active_entries(subject_kind=subject_kind, subject_pk=subject_pk):
        # Rows are ordered by listed_at: the first per list is when the subject went on it.
        memberships.setdefault(row["list_code"], Membership(
            list_kind=row["list_kind"], list_code=row["list_code"], list_name=row["list_name"],
            listed_at=as_utc(row["listed_at"])))
    active = [_measure_view(r) for r in await Measure.select(*_MEASURE_COLUMNS).where(Measure.status == ACTIVE)]
    measures = [m for m in active if m.list_code in memberships and m.applies_to(business_type)]
    # Mandatory measures first, then punishments before rewards, then by code: a stable, useful order.
    measures.sort(key=lambda m: (not m.mandatory, m.kind != "punishment", m.code))
    return tuple(memberships.values()), tuple(measures)


def _result_json(*, lists: Sequence[Membership], measures: Sequence[MeasureView]) -> dict[str, Any]:
    return {
        "lists": [{"list_kind": m.list_kind, "list_code": m.list_code, "list_name": m.list_name,
                   "listed_at": m.listed_at.isoformat()} for m in lists],
        "measures": [{"code": m.code, "name": m.name, "kind": m.kind, "mandatory": m.mandatory, "basis": m.basis}
                     for m in measures],
    }


_NO_SUBJECT_PK = -1
"""Primary key no registry row has: a subject the registry does not know is looked up under it."""
UNREGISTERED_PREFIX = "unreg_"
"""Ledger `subject_id` of a check whose subject the registry does not know (followed by a keyed hash)."""


def unregistered_subject_id(*, cipher: FieldCipher, subject_kind: SubjectKind, id_number: str | None,
                            uscc: str | None) -> str:
    """The ledger's pseudonym for a checked identifier: a keyed hash, never the number itself.

    Checks of the same unknown number share it, so an auditor can follow them without reading the number.
    """
    identifier = normalize_id_number(id_number or "") if subject_kind == "person" else normalize_uscc(uscc or "")
    digest = cipher.lookup_hash(f"checked_{subject_kind}", identifier)
    return UNREGISTERED_PREFIX + digest[:32 - len(UNREGISTERED_PREFIX)]


async def run_check(*, cipher: FieldCipher, ledger: LedgerWriter, department: Department, subject_kind: SubjectKind,
                    business_type: str, id_number: str | None = None, name: str | None = None,
                    uscc: str | None = None) -> CheckView:
    """Check a subject's lists and the measures that apply to `business_type`; store and ledger the check.

    A subject the registry does not know (or a person whose name does not match) gets the same answer as a
    clean subject, and the same work is done for it: the same list and measure lookups (under a key no row
    has) and a ledger entry (under `unregistered_subject_id`), so neither the answer nor its timing tells
    whether someone is in the registry. Every check is an access a department made, so every check is
    ledgered, durably, before this returns.

    Raises:
        Unprocessable: `unknown_business_type`, `invalid_id_number`, `invalid_uscc`.
    """
    _check_business_types([business_type])
    subject = await find_subject(cipher=cipher, subject_kind=subject_kind, id_number=id_number, name=name, uscc=uscc)
    # Computed for every check (not only unknown subjects) so both paths cost the same.
    pseudonym = unregistered_subject_id(cipher=cipher, subject_kind=subject_kind, id_number=id_number, uscc=uscc)
    lists, measures = await subject_standing(subject_kind=subject_kind,
                                             subject_pk=subject.pk if subject is not None else _NO_SUBJECT_PK,
                                             business_type=business_type)
    result = _result_json(lists=lists, measures=measures)
    encoded = _ENCODER.encode(result)
    await ledger.append(AccessEvent(
        actor_kind="department", actor_id=department.client_id, actor_name=department.name,
        actor_type=department.kind, subject_kind=subject_kind,
        subject_id=subject.public_id if subject is not None else pseudonym,
        action="credit.check", outcome="allowed", purpose=business_type, fields=("lists", "measures"),
        result_digest=hashlib.sha256(encoded).hexdigest()))
    now = clock.now()
    public_id = new_public_id("chk")
    await CreditCheck.insert(CreditCheck(
        public_id=public_id, department_client_id=department.client_id, subject_kind=subject_kind,
        person=subject.pk if subject is not None and subject.kind == "person" else None,
        enterprise=subject.pk if subject is not None and subject.kind == "enterprise" else None,
        business_type=business_type, result=encoded.decode(), created_at=now))
    return CheckView(id=public_id, subject_kind=subject_kind, business_type=business_type, lists=lists,
                     measures=measures, checked_at=now)


async def give_feedback(*, check_id: str, department_client_id: str, measure_code: str, note: str | None
                        ) -> FeedbackView:
    """The department that ran a check reports which of the returned measures it applied (once).

    Raises:
        NotFound: `credit_check_not_found` — no such check, or another department's.
        Conflict: `feedback_already_given`.
        Unprocessable: `measure_not_returned` — the measure was not part of the check's answer.
    """
    row = await CreditCheck.select(CreditCheck.result, CreditCheck.applied_measure).where(
        (CreditCheck.public_id == check_id) & (CreditCheck.department_client_id == department_client_id)).first()
    if row is None:
        raise NotFound("credit check not found", code="credit_check_not_found")
    if row["applied_measure"] is not None:
        raise Conflict("feedback for this check has already been given", code="feedback_already_given")
    result = row["result"]
    returned = msgspec.json.decode(result) if isinstance(result, str | bytes) else result
    if measure_code not in {m["code"] for m in returned.get("measures", [])}:
        raise Unprocessable("the measure was not among those this check returned", code="measure_not_returned")
    now = clock.now()
    clean_note = note.strip() if note else None
    updated = await CreditCheck.update({
        CreditCheck.applied_measure: measure_code, CreditCheck.feedback_note: clean_note,
        CreditCheck.feedback_at: now}).where(
        (CreditCheck.public_id == check_id) & CreditCheck.applied_measure.is_null()).returning(CreditCheck.public_id)
    if not updated:
        raise Conflict("feedback for this check has already been given", code="feedback_already_given")
    return FeedbackView(id=check_id, measure_code=measure_code, note=clean_note, feedback_at=now)


__all__ = ["BUSINESS_TYPES", "DEFAULT_MEASURES", "LISTS", "RECORD_LISTS", "UNREGISTERED_PREFIX", "CheckView",
           "Department", "FeedbackView", "ListEntryView", "MeasureView", "Membership", "SubjectRef", "add_to_list",
           "create_measure", "delist", "find_subject", "get_measure", "give_feedback", "list_entries",
           "list_measures", "run_check", "seed_default_measures", "subject_standing", "sync_record_lists",
           "unregistered_subject_id", "update_measure"]
