"""Loan applications: a demand submitted to one bank's product, and the bank's decisions on it.
No HTTP objects here.

State machine (DESIGN §3): `submitted → accepted → approved → disbursed`, or `→ rejected (reason)`:

    from        to
    submitted   accepted, approved, rejected
    accepted    approved, rejected
    approved    disbursed, rejected

Every decision is a conditional `UPDATE … WHERE status = <the status it was decided from>` in one
transaction with its timeline event and the outbox notice to the enterprise's owner, so of two concurrent
decisions exactly one wins and the other gets 409. The first decision sets `first_response_at`.

Deadlines: a bank answers within `settings.lending_response_working_days` working days (the service's
calendar, core/calendar.py: statutory holidays off, make-up working days on). The submission day does not
count; the application is due at the end of the last working day (local midnight). It is overdue while
there is no first response and that time has passed.

首贷 (first loan): an application is a first loan when the enterprise had no disbursed loan here when it
applied; on disbursement this is checked again, so of two loans disbursed to one enterprise only the
first counts as its first loan.

A bank only ever sees its own applications; another bank's look exactly like missing ones. Every bank
read of an application (it carries the enterprise's demand and 首贷 status) is written to the access
ledger under the enterprise's loan_application authorization before the bank gets the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from piccolo.query.mixins import OnConflictAction

from core import clock, db
from core.calendar import WorkingCalendar
from core.db import as_utc, as_utc_or_none
from core.errors import Conflict, NotFound, Unprocessable
from core.store import Store
from credit import authorizations as authz
from credit.identity import FieldCipher, new_public_id
from credit.ledger import AccessEvent, LedgerWriter
from credit.tables import Authorization, Enterprise, OutboxEvent
from lending import matching
from lending.enterprises import EnterpriseRef, current_owner_account, is_active_member
from lending.inputs import plausible_id
from lending.portraits import current_portrait
from lending.schemas import (
    ApplicantOut,
    ApplicationForEnterprise,
    BankApplication,
    BankApplicationPage,
    BankOut,
    DecisionOut,
    DemandTermsOut,
    ProductBrief,
    TimelineEvent,
)
from lending.tables import ApplicationEvent, FinancingDemand, LoanApplication, LoanProduct

SUBMITTED = "submitted"
ACCEPTED = "accepted"
APPROVED = "approved"
DISBURSED = "disbursed"
REJECTED = "rejected"
STATUSES = (SUBMITTED, ACCEPTED, APPROVED, DISBURSED, REJECTED)

TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({ACCEPTED, APPROVED, REJECTED}),
    ACCEPTED: frozenset({APPROVED, REJECTED}),
    APPROVED: frozenset({DISBURSED, REJECTED}),
}
"""Allowed decisions from each status (disbursed and rejected are final)."""

PURPOSE = "loan_application"
AUTHORIZATION_SCOPES = ["portrait"]
AUTHORIZATION_DAYS = 90
SUBMITTED_TOPIC = "lending.application.submitted"

_APP_PK = LoanApplication._meta.primary_key
_PRODUCT_PK = LoanProduct._meta.primary_key
_ENCODER = msgspec.json.Encoder()


# ---------------------------------------------------------------- the response deadline


def respond_by(submitted_at: datetime, *, calendar: WorkingCalendar, working_days: int) -> datetime:
    """When a bank must first answer an application submitted at `submitted_at` (UTC).

    The submission day does not count; then `working_days` working days of the service's calendar
    (statutory holidays off, make-up working days on) are counted on the city's calendar, and the answer
    is due at the end of the last one.

    Raises:
        ValueError: `working_days` is not positive.
        CalendarYearUnknown: the count runs into a year the calendar does not know.
    """
    return calendar.deadline(submitted_at, working_days=working_days)


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class ApplicationRecord:
    """An application with what its views need: product, bank, demand terms, enterprise, timeline."""

    pk: int
    id: str
    status: str
    bank_client_id: str
    bank_name: str
    product: dict[str, Any]
    demand: dict[str, Any]
    enterprise_pk: int
    enterprise_public_id: str
    enterprise_name: str
    enterprise_industry: str
    enterprise_region: str
    uscc_enc: str
    authorization_id: str
    first_loan: bool
    respond_by: datetime
    approved_amount_fen: int | None
    approved_rate_bp: int | None
    approved_term_months: int | None
    disbursed_amount_fen: int | None
    rejection_reason: str | None
    created_at: datetime
    first_response_at: datetime | None
    updated_at: datetime
    events: tuple[TimelineEvent, ...]

    def overdue(self, now: datetime) -> bool:
        return self.first_response_at is None and now >= self.respond_by

    def answered_late(self) -> bool:
        return self.first_response_at is not None and self.first_response_at > self.respond_by


_P = LoanApplication.product
_D = LoanApplication.demand
_E = LoanApplication.enterprise
_RECORD_COLUMNS = (
    _APP_PK, LoanApplication.public_id, LoanApplication.status, LoanApplication.bank_client_id,
    LoanApplication.authorization_id, LoanApplication.first_loan, LoanApplication.respond_by,
    LoanApplication.approved_amount_fen, LoanApplication.approved_rate_bp, LoanApplication.approved_term_months,
    LoanApplication.disbursed_amount_fen, LoanApplication.rejection_reason, LoanApplication.created_at,
    LoanApplication.first_response_at, LoanApplication.updated_at, LoanApplication.enterprise,
    _P.public_id.as_alias("p_id"), _P.name.as_alias("p_name"), _P.bank_name.as_alias("p_bank_name"),
    _P.guarantee_kind.as_alias("p_guarantee_kind"), _P.amount_min_fen.as_alias("p_amount_min_fen"),
    _P.amount_max_fen.as_alias("p_amount_max_fen"), _P.term_min_months.as_alias("p_term_min_months"),
    _P.term_max_months.as_alias("p_term_max_months"), _P.rate_min_bp.as_alias("p_rate_min_bp"),
    _P.rate_max_bp.as_alias("p_rate_max_bp"), _P.first_loan_friendly.as_alias("p_first_loan_friendly"),
    _D.public_id.as_alias("d_id"), _D.amount_fen.as_alias("d_amount_fen"), _D.term_months.as_alias("d_term_months"),
    _D.purpose.as_alias("d_purpose"), _D.guarantee_offered.as_alias("d_guarantee_offered"),
    _D.max_rate_bp.as_alias("d_max_rate_bp"),
    _E.public_id.as_alias("e_id"), _E.name.as_alias("e_name"), _E.industry.as_alias("e_industry"),
    _E.region_code.as_alias("e_region_code"), _E.uscc_enc.as_alias("e_uscc_enc"),
)


def _product_brief(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["p_id"], "name": row["p_name"], "guarantee_kind": row["p_guarantee_kind"],
            "amount_min_fen": int(row["p_amount_min_fen"]), "amount_max_fen": int(row["p_amount_max_fen"]),
            "term_min_months": int(row["p_term_min_months"]), "term_max_months": int(row["p_term_max_months"]),
            "rate_min_bp": int(row["p_rate_min_bp"]), "rate_max_bp": int(row["p_rate_max_bp"]),
            "first_loan_friendly": bool(row["p_first_loan_friendly"])}


async def _events(pks: list[int]) -> dict[int, list[TimelineEvent]]:
    out: dict[int, list[TimelineEvent]] = {pk: [] for pk in pks}
    if not pks:
        return out
    rows = await ApplicationEvent.select(
        ApplicationEvent.application, ApplicationEvent.status, ApplicationEvent.note, ApplicationEvent.amount_fen,
        ApplicationEvent.rate_bp, ApplicationEvent.term_months, ApplicationEvent.at,
        ApplicationEvent._meta.primary_key).where(ApplicationEvent.application.is_in(pks)).order_by(
        ApplicationEvent.at, ApplicationEvent._meta.primary_key)
    for r in rows:
        out[int(r["application"])].append(TimelineEvent(
            status=r["status"], at=as_utc(r["at"]), note=r["note"] or None, amount_fen=r["amount_fen"],
            rate_bp=r["rate_bp"], term_months=r["term_months"]))
    return out


async def _records(rows: list[dict[str, Any]]) -> list[ApplicationRecord]:
    events = await _events([int(r["id"]) for r in rows])
    return [ApplicationRecord(
        pk=int(r["id"]), id=r["public_id"], status=r["status"], bank_client_id=r["bank_client_id"],
        bank_name=r["p_bank_name"], product=_product_brief(r),
        demand={"id": r["d_id"], "amount_fen": int(r["d_amount_fen"]), "term_months": int(r["d_term_months"]),
                "purpose": r["d_purpose"], "guarantee_offered": r["d_guarantee_offered"],
                "max_rate_bp": r["d_max_rate_bp"]},
        enterprise_pk=int(r["enterprise"]), enterprise_public_id=r["e_id"], enterprise_name=r["e_name"],
        enterprise_industry=r["e_industry"], enterprise_region=r["e_region_code"], uscc_enc=r["e_uscc_enc"],
        authorization_id=r["authorization_id"], first_loan=bool(r["first_loan"]), respond_by=as_utc(r["respond_by"]),
        approved_amount_fen=r["approved_amount_fen"], approved_rate_bp=r["approved_rate_bp"],
        approved_term_months=r["approved_term_months"], disbursed_amount_fen=r["disbursed_amount_fen"],
        rejection_reason=r["rejection_reason"], created_at=as_utc(r["created_at"]),
        first_response_at=as_utc_or_none(r["first_response_at"]), updated_at=as_utc(r["updated_at"]),
        events=tuple(events[int(r["id"])])) for r in rows]


async def records_for_demand(*, demand_pk: int) -> list[ApplicationRecord]:
    rows = await LoanApplication.select(*_RECORD_COLUMNS).where(LoanApplication.demand == demand_pk).order_by(
        LoanApplication.created_at, LoanApplication.public_id)
    return await _records(list(rows))


def _decision(record: ApplicationRecord) -> DecisionOut:
    return DecisionOut(approved_amount_fen=record.approved_amount_fen, approved_rate_bp=record.approved_rate_bp,
                       approved_term_months=record.approved_term_months,
                       disbursed_amount_fen=record.disbursed_amount_fen, rejection_reason=record.rejection_reason)


def for_enterprise(record: ApplicationRecord, *, now: datetime) -> ApplicationForEnterprise:
    return ApplicationForEnterprise(
        id=record.id, bank=BankOut(id=record.bank_client_id, name=record.bank_name),
        product=msgspec.convert(record.product, ProductBrief), status=record.status,
        authorization_id=record.authorization_id, first_loan=record.first_loan, respond_by=record.respond_by,
        overdue=record.overdue(now), answered_late=record.answered_late(), first_response_at=record.first_response_at,
        decision=_decision(record), timeline=list(record.events), created_at=record.created_at)


def for_bank(record: ApplicationRecord, *, cipher: FieldCipher, now: datetime) -> BankApplication:
    return BankApplication(
        id=record.id, status=record.status, product=msgspec.convert(record.product, ProductBrief),
        demand=msgspec.convert(record.demand, DemandTermsOut),
        enterprise=ApplicantOut(id=record.enterprise_public_id, name=record.enterprise_name,
                                uscc=cipher.decrypt("uscc", record.uscc_enc), industry=record.enterprise_industry,
                                region_code=record.enterprise_region),
        authorization_id=record.authorization_id, first_loan=record.first_loan, respond_by=record.respond_by,
        overdue=record.overdue(now), answered_late=record.answered_late(), first_response_at=record.first_response_at,
        decision=_decision(record), timeline=list(record.events), created_at=record.created_at,
        updated_at=record.updated_at)


async def is_first_loan(*, enterprise_pk: int, excluding: int | None = None) -> bool:
    """True when the enterprise has no disbursed loan here (other than application `excluding`)."""
    condition = (LoanApplication.enterprise == enterprise_pk) & LoanApplication.disbursed_amount_fen.is_not_null()
    if excluding is not None:
        condition &= _APP_PK.not_in([excluding])
    return not await LoanApplication.exists().where(condition)


# ---------------------------------------------------------------- submission


def _submitted_event(*, application_id: str, demand_id: str, terms: Mapping[str, Any], product: Mapping[str, Any],
                     enterprise: EnterpriseRef, uscc: str, authorization_id: str, first_loan: bool,
                     due: datetime, bank_client_id: str) -> OutboxEvent:
    payload = {
        "type": SUBMITTED_TOPIC, "application_id": application_id, "authorization_id": authorization_id,
        "demand": {"id": demand_id, **terms},
        "product": {"id": product["public_id"], "name": product["name"], "rate_min_bp": product["rate_min_bp"],
                    "rate_max_bp": product["rate_max_bp"]},
        "enterprise": {"id": enterprise.public_id, "name": enterprise.name, "uscc": uscc},
        "first_loan": first_loan, "respond_by": due.isoformat(),
    }
    return OutboxEvent(public_id=f"evt_{secrets.token_hex(12)}", topic=SUBMITTED_TOPIC, aggregate_id=application_id,
                       recipient=bank_client_id, payload=payload)


async def _usable_grants(grants: dict[str, str], *, now: datetime) -> dict[str, str]:
    """The authorizations of earlier submissions of this demand that are still in force, per bank (one the
    enterprise revoked, or that expired, is not reused: the new application gets a new one)."""
    if not grants:
        return {}
    rows = await Authorization.select(Authorization.public_id).where(
        Authorization.public_id.is_in(list(grants.values())) & (Authorization.status == authz.AUTHORIZED)
        & (Authorization.valid_until > now))
    live = {r["public_id"] for r in rows}
    return {bank: grant for bank, grant in grants.items() if grant in live}


async def submit(*, demand_pk: int, demand_id: str, enterprise: EnterpriseRef, cipher: FieldCipher, account_id: str,
                 product_ids: list[str], calendar: WorkingCalendar, working_days: int, terms: Mapping[str, Any]
                 ) -> list[str]:
    """Create one application per chosen product (skipping those already submitted), in one transaction.

    Each chosen bank gets the enterprise's authorization (purpose loan_application, scope portrait, 90 days)
    — one per bank per demand, reused when the demand already went to that bank — and a
    `lending.application.submitted` webhook. Returns the ids of the applications created now.

    Raises:
        Unprocessable: `product_not_available` — a chosen product is no longer active.
    """
    rows = await LoanProduct.select(_PRODUCT_PK, LoanProduct.public_id, LoanProduct.name, LoanProduct.bank_client_id,
                                    LoanProduct.bank_name, LoanProduct.status, LoanProduct.rate_min_bp,
                                    LoanProduct.rate_max_bp).where(
        LoanProduct.public_id.is_in(product_ids))
    found = {r["public_id"]: r for r in rows}
    if unavailable := [p for p in product_ids if p not in found or found[p]["status"] != "active"]:
        raise Unprocessable("a chosen product is no longer offered", code="product_not_available",
                            errors=[{"field": "product_ids", "message": f"{p} is not available"} for p in unavailable])
    uscc_row = await Enterprise.select(Enterprise.uscc_enc).where(
        Enterprise._meta.primary_key == enterprise.enterprise_id).first()
    assert uscc_row is not None
    uscc = cipher.decrypt("uscc", uscc_row["uscc_enc"])
    now = clock.now()
    due = respond_by(now, calendar=calendar, working_days=working_days)
    created: list[str] = []
    async with db.transaction(LoanApplication):
        # Concurrent submissions of this demand queue here, so the second sees the first's applications and
        # reuses its authorization for the same bank instead of granting another.
        await db.lock_row(FinancingDemand, demand_pk)
        first_loan = await is_first_loan(enterprise_pk=enterprise.enterprise_id)
        existing = await LoanApplication.select(LoanApplication.bank_client_id, LoanApplication.authorization_id).where(
            LoanApplication.demand == demand_pk)
        grants = await _usable_grants({r["bank_client_id"]: r["authorization_id"] for r in existing
                                       if r["authorization_id"]}, now=now)
        for product_id in product_ids:
            product = found[product_id]
            bank = product["bank_client_id"]
            application_id = new_public_id("lapp")
            # The unique (demand, product) index makes a repeated or concurrent submission a no-op here.
            inserted = await LoanApplication.insert(LoanApplication(
                public_id=application_id, demand=demand_pk, product=product["id"], enterprise=enterprise.enterprise_id,
                bank_client_id=bank, authorization_id="", status=SUBMITTED, respond_by=due, first_loan=first_loan,
                created_at=now, updated_at=now)).on_conflict(
                target=(LoanApplication.demand, LoanApplication.product),
                action=OnConflictAction.do_nothing).returning(_APP_PK)
            if not inserted:
                continue
            pk = int(inserted[0]["id"])
            authorization_id = grants.get(bank)
            if authorization_id is None:
                grant = await authz.grant_for_enterprise(
                    enterprise_id=enterprise.enterprise_id, partner_client_id=bank,
                    partner_name=product["bank_name"], partner_kind="bank", purpose_code=PURPOSE,
                    scopes=AUTHORIZATION_SCOPES, validity_days=AUTHORIZATION_DAYS)
                authorization_id = grants[bank] = grant.id
            await LoanApplication.update({LoanApplication.authorization_id: authorization_id}).where(
                _APP_PK.is_in([pk]))
            await ApplicationEvent.insert(ApplicationEvent(application=pk, status=SUBMITTED, actor=account_id,
                                                           note="", at=now))
            await OutboxEvent.insert(_submitted_event(
                application_id=application_id, demand_id=demand_id, terms=terms, product=product,
                enterprise=enterprise, uscc=uscc, authorization_id=authorization_id, first_loan=first_loan, due=due,
                bank_client_id=bank))
            created.append(application_id)
        await FinancingDemand.update({FinancingDemand.status: "submitted"}).where(
            FinancingDemand._meta.primary_key == demand_pk)
        await FinancingDemand.update({FinancingDemand.submitted_at: now}).where(
            (FinancingDemand._meta.primary_key == demand_pk) & FinancingDemand.submitted_at.is_null())
    return created


# ---------------------------------------------------------------- the bank's side


async def _ledger_reads(ledger: LedgerWriter, records: list[ApplicationRecord], *, bank_client_id: str,
                        bank_name: str, action: str) -> None:
    # Appended together, so a page of applications costs one group commit, not one per entry.
    await asyncio.gather(*(ledger.append(AccessEvent(
        actor_kind="partner", actor_id=bank_client_id, actor_name=bank_name, actor_type="bank",
        subject_kind="enterprise", subject_id=record.enterprise_public_id, action=action, outcome="allowed",
        purpose=PURPOSE, authorization_id=record.authorization_id or None,
        fields=("demand", "enterprise", "first_loan", "status"),
        result_digest=hashlib.sha256(_ENCODER.encode([record.id, record.status, record.updated_at])).hexdigest()))
        for record in records))


async def _own_record(*, bank_client_id: str, application_id: str) -> ApplicationRecord:
    if not plausible_id(application_id):
        raise NotFound("application not found", code="application_not_found")
    rows = await LoanApplication.select(*_RECORD_COLUMNS).where(
        (LoanApplication.public_id == application_id) & (LoanApplication.bank_client_id == bank_client_id))
    if not rows:
        raise NotFound("application not found", code="application_not_found")
    return (await _records(list(rows)))[0]


async def get_for_bank(*, ledger: LedgerWriter, cipher: FieldCipher, bank_client_id: str, bank_name: str,
                       application_id: str) -> BankApplication:
    """The bank's own application (another bank's is a 404), ledgered as a read of the enterprise's data."""
    record = await _own_record(bank_client_id=bank_client_id, application_id=application_id)
    await _ledger_reads(ledger, [record], bank_client_id=bank_client_id, bank_name=bank_name,
                        action="lending.application.read")
    return for_bank(record, cipher=cipher, now=clock.now())


async def list_for_bank(*, ledger: LedgerWriter, cipher: FieldCipher, bank_client_id: str, bank_name: str,
                        status: str | None, overdue: bool | None, limit: int, cursor: str | None
                        ) -> BankApplicationPage:
    """The bank's applications, newest first, optionally by status and overdue-ness."""
    now = clock.now()
    query = LoanApplication.select(*_RECORD_COLUMNS).where(LoanApplication.bank_client_id == bank_client_id)
    if status is not None:
        query = query.where(LoanApplication.status == status)
    if overdue is True:
        query = query.where(LoanApplication.first_response_at.is_null() & (LoanApplication.respond_by <= now))
    elif overdue is False:
        query = query.where(LoanApplication.first_response_at.is_not_null() | (LoanApplication.respond_by > now))
    rows, next_cursor = await db.newest_first(query, at=LoanApplication.created_at, key=LoanApplication.public_id,
                                              limit=limit, cursor=cursor)
    records = await _records(rows)
    await _ledger_reads(ledger, records, bank_client_id=bank_client_id, bank_name=bank_name,
                        action="lending.application.list")
    return BankApplicationPage(items=[for_bank(r, cipher=cipher, now=now) for r in records], next_cursor=next_cursor)


def _check_decision(*, status: str, amount_fen: int | None, rate_bp: int | None, term_months: int | None,
                    reason: str | None) -> None:
    if status == APPROVED:
        missing = [name for name, value in (("amount_fen", amount_fen), ("rate_bp", rate_bp),
                                            ("term_months", term_months)) if value is None]
        if missing:
            raise Unprocessable("an approval states the amount, rate and term", code="approval_terms_required",
                                errors=[{"field": m, "message": "required for approved"} for m in missing])
    elif status == DISBURSED:
        if amount_fen is None:
            raise Unprocessable("a disbursement states the amount", code="disbursed_amount_required",
                                errors=[{"field": "amount_fen", "message": "required for disbursed"}])
    elif status == REJECTED and (reason is None or not reason.strip()):
        raise Unprocessable("a rejection gives its reason", code="rejection_reason_required",
                            errors=[{"field": "reason", "message": "required for rejected"}])
    if status != APPROVED and (rate_bp is not None or term_months is not None):
        raise Unprocessable("rate_bp and term_months belong to an approval", code="decision_field_not_allowed")
    if status in (ACCEPTED, REJECTED) and amount_fen is not None:
        raise Unprocessable("amount_fen belongs to an approval or disbursement", code="decision_field_not_allowed")


def _check_within_product(product: Mapping[str, Any], *, amount_fen: int | None, rate_bp: int | None,
                          term_months: int | None) -> None:
    """An approval is an offer of the product the enterprise applied for: its rate and term lie within the
    product's published ranges and its amount within the product's maximum. This also catches unit slips
    (a rate of `4` meant as 4 % is 0.04 %, a yuan amount is a hundredth of the fen amount meant).

    Raises:
        Unprocessable: `rate_outside_product_range`, `term_outside_product_range`, `amount_above_product_max`.
    """
    low, high = product["rate_min_bp"], product["rate_max_bp"]
    if rate_bp is not None and not low <= rate_bp <= high:
        raise Unprocessable(f"the product's annual rate is {low}–{high} bp", code="rate_outside_product_range",
                            errors=[{"field": "rate_bp", "message": f"must be within {low}..{high} basis points"}])
    shortest, longest = product["term_min_months"], product["term_max_months"]
    if term_months is not None and not shortest <= term_months <= longest:
        raise Unprocessable(f"the product's term is {shortest}–{longest} months", code="term_outside_product_range",
                            errors=[{"field": "term_months", "message": f"must be within {shortest}..{longest}"}])
    if amount_fen is not None and amount_fen > product["amount_max_fen"]:
        raise Unprocessable("the amount exceeds the product's maximum", code="amount_above_product_max",
                            errors=[{"field": "amount_fen", "message": f"at most {product['amount_max_fen']} fen"}])


async def _hard_flags_now(*, store: Store, enterprise_pk: int) -> list[str]:
    """The hard risk flags on the enterprise's current portrait (a dishonest-executee fact counts even if a
    portrait model forgot the flag), the hard stop first."""
    portrait = await current_portrait(store=store, enterprise_id=enterprise_pk)
    flags = list(portrait.risk_flags)
    if portrait.facts.get("dishonest_executee"):
        flags.append(matching.HARD_STOP)
    return matching.hard_flags(flags)


async def decide(*, store: Store, ledger: LedgerWriter, cipher: FieldCipher, bank_client_id: str, bank_name: str,
                 application_id: str, status: str, amount_fen: int | None = None, rate_bp: int | None = None,
                 term_months: int | None = None, reason: str | None = None, note: str | None = None
                 ) -> BankApplication:
    """Record the bank's decision on its own application.

    Approval and disbursement re-check the enterprise's current portrait: a hard risk flag raised since the
    submission (失信被执行人 above all) stops them, as it stops matching and submission; the bank may still
    reject.

    Raises:
        NotFound: `application_not_found` — no such application, or another bank's.
        Conflict: `invalid_transition` (not allowed from the current status), `application_state_conflict`
            (another decision won meanwhile).
        Unprocessable: `approval_terms_required`, `disbursed_amount_required`, `rejection_reason_required`,
            `decision_field_not_allowed`, `disbursed_exceeds_approved`, `rate_outside_product_range`,
            `term_outside_product_range`, `amount_above_product_max`, `hard_risk_flag`.
    """
    _check_decision(status=status, amount_fen=amount_fen, rate_bp=rate_bp, term_months=term_months, reason=reason)
    record = await _own_record(bank_client_id=bank_client_id, application_id=application_id)
    current = record.status
    if status not in TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"cannot go from {current} to {status}", code="invalid_transition", status_now=current)
    if status == DISBURSED and amount_fen is not None and record.approved_amount_fen is not None \
            and amount_fen > record.approved_amount_fen:
        raise Unprocessable("the disbursed amount exceeds the approved amount", code="disbursed_exceeds_approved")
    if status == APPROVED:
        _check_within_product(record.product, amount_fen=amount_fen, rate_bp=rate_bp, term_months=term_months)
    if status in (APPROVED, DISBURSED) and (flags := await _hard_flags_now(store=store,
                                                                          enterprise_pk=record.enterprise_pk)):
        raise Unprocessable(matching.HARD_RISK_FLAGS[flags[0]], code="hard_risk_flag")
    now = clock.now()
    changes: dict[Any, Any] = {LoanApplication.status: status, LoanApplication.updated_at: now}
    if current == SUBMITTED:
        changes[LoanApplication.first_response_at] = now
    if status == APPROVED:
        changes.update({LoanApplication.approved_amount_fen: amount_fen, LoanApplication.approved_rate_bp: rate_bp,
                        LoanApplication.approved_term_months: term_months})
    elif status == DISBURSED:
        changes[LoanApplication.disbursed_amount_fen] = amount_fen
    elif status == REJECTED:
        changes[LoanApplication.rejection_reason] = (reason or "").strip()
    clean_note = (note or "").strip()
    async with db.transaction(LoanApplication):
        if status == DISBURSED:
            # Two disbursements to one enterprise at once must not both see "no loan yet": the second
            # waits for the first's commit on the enterprise's row lock, then finds its loan.
            await db.lock_row(Enterprise, record.enterprise_pk)
            changes[LoanApplication.first_loan] = await is_first_loan(enterprise_pk=record.enterprise_pk,
                                                                      excluding=record.pk)
        updated = await LoanApplication.update(changes).where(
            _APP_PK.is_in([record.pk]) & (LoanApplication.status == current)).returning(LoanApplication.public_id)
        if not updated:
            raise Conflict("another decision was recorded meanwhile; read the application again",
                           code="application_state_conflict")
        await ApplicationEvent.insert(ApplicationEvent(
            application=record.pk, status=status, actor=bank_client_id,
            note=(reason or "").strip() if status == REJECTED else clean_note,
            amount_fen=amount_fen, rate_bp=rate_bp, term_months=term_months, at=now))
        owner = await current_owner_account(record.enterprise_pk)
        if owner is None:
            # No bound legal representative: tell the member who posted the demand, if they still are one
            # (a removed operator must not go on hearing about the enterprise's loans).
            demand = await FinancingDemand.select(FinancingDemand.created_by).where(
                FinancingDemand.public_id == record.demand["id"]).first()
            creator = str(demand["created_by"]) if demand else None
            owner = creator if creator and await is_active_member(
                enterprise_id=record.enterprise_pk, account_id=creator) else None
        if owner is not None:
            payload = {"type": f"lending.application.{status}", "application_id": record.id,
                       "demand_id": record.demand["id"], "status": status,
                       "enterprise": {"id": record.enterprise_public_id, "name": record.enterprise_name,
                                      "uscc": cipher.decrypt("uscc", record.uscc_enc)},
                       "bank": {"id": bank_client_id, "name": record.bank_name},
                       "product": {"id": record.product["id"], "name": record.product["name"]},
                       "amount_fen": amount_fen, "rate_bp": rate_bp, "term_months": term_months,
                       "reason": (reason or "").strip() or None}
            await OutboxEvent.insert(OutboxEvent(
                public_id=f"evt_{secrets.token_hex(12)}", topic=f"lending.application.{status}",
                aggregate_id=record.id, recipient=f"citizen:{owner}", payload=payload))
    after = await _own_record(bank_client_id=bank_client_id, application_id=application_id)
    await _ledger_reads(ledger, [after], bank_client_id=bank_client_id, bank_name=bank_name,
                        action="lending.application.decide")
    return for_bank(after, cipher=cipher, now=clock.now())


__all__ = ["ACCEPTED", "APPROVED", "DISBURSED", "REJECTED", "STATUSES", "SUBMITTED", "TRANSITIONS",
           "ApplicationRecord", "decide", "for_bank", "for_enterprise", "get_for_bank", "is_first_loan",
           "list_for_bank", "records_for_demand", "respond_by", "submit"]
