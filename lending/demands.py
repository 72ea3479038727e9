"""Financing demands: an enterprise member posts one, it is matched at once against the active products
using the enterprise's current portrait, and the demand keeps what it was matched with (the portrait id,
the ranked matches with their reasons, the excluded products with theirs). No HTTP objects here.

Only active members of the enterprise see or act on its demands; for anyone else a demand does not exist
(404 `demand_not_found`), so demand ids cannot be probed. The members act for the enterprise, so their
reads are not third-party accesses and are not ledgered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from core import clock, db
from core.calendar import WorkingCalendar
from core.db import as_utc
from core.errors import NotFound, Unprocessable
from core.store import Store
from credit.identity import FieldCipher, new_public_id
from credit.tables import Enterprise
from lending import applications, matching, products
from lending.enterprises import EnterpriseRef, enterprise_of_member, require_member
from lending.inputs import plausible_id
from lending.portraits import PortraitView, current_portrait
from lending.schemas import (
    BankOut,
    DemandOut,
    DemandPage,
    DemandSummary,
    EnterpriseBrief,
    ExcludedOut,
    MatchOut,
    PortraitUsed,
    ProductBrief,
    ReasonOut,
)
from lending.tables import FinancingDemand, LoanApplication

OPEN = "open"
SUBMITTED = "submitted"

_ENTERPRISE_PK = Enterprise._meta.primary_key
_DEMAND_PK = FinancingDemand._meta.primary_key
_DEMAND_COLUMNS = (
    _DEMAND_PK, FinancingDemand.public_id, FinancingDemand.enterprise, FinancingDemand.created_by,
    FinancingDemand.amount_fen, FinancingDemand.term_months, FinancingDemand.purpose,
    FinancingDemand.guarantee_offered, FinancingDemand.max_rate_bp, FinancingDemand.status,
    FinancingDemand.portrait_id, FinancingDemand.matches, FinancingDemand.created_at, FinancingDemand.submitted_at,
)


def _json(value: Any) -> Any:
    # Piccolo returns JSON columns as text on some backends and decoded on others.
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


# ---------------------------------------------------------------- the enterprise as matching sees it


def profile(portrait: PortraitView, *, first_loan: bool) -> matching.EnterpriseProfile:
    """The matching profile of a portrait. A dishonest-executee fact counts as the hard stop even if a
    portrait model forgot to raise the flag."""
    facts = portrait.facts
    flags = list(portrait.risk_flags)
    if facts.get("dishonest_executee") and matching.HARD_STOP not in flags:
        flags.append(matching.HARD_STOP)
    tax_grade = facts.get("tax_grade")
    return matching.EnterpriseProfile(
        grade=portrait.grade, score=int(portrait.score), industry=str(facts.get("industry") or ""),
        region_code=str(facts.get("region_code") or ""), years_in_business=float(facts.get("years_in_business") or 0),
        open_penalties=int(facts.get("open_penalties") or 0), tax_grade=str(tax_grade) if tax_grade else None,
        risk_flags=tuple(flags), first_loan=first_loan)


def _brief(p: matching.ProductRules) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "guarantee_kind": p.guarantee_kind, "amount_min_fen": p.amount_min_fen,
            "amount_max_fen": p.amount_max_fen, "term_min_months": p.term_min_months,
            "term_max_months": p.term_max_months, "rate_min_bp": p.rate_min_bp, "rate_max_bp": p.rate_max_bp,
            "first_loan_friendly": p.first_loan_friendly}


def _reason(r: matching.Reason) -> dict[str, str]:
    return {"code": r.code, "text": r.text}


def _stored_matches(result: matching.MatchResult, *, portrait: PortraitView, first_loan: bool) -> dict[str, Any]:
    """What the demand keeps of its matching (product terms as they were when matched)."""
    return {
        "first_loan": first_loan,
        "portrait": {"id": portrait.id, "version": portrait.version, "score": portrait.score,
                     "grade": portrait.grade, "as_of": as_utc(portrait.as_of).isoformat()},
        "hard_stop": _reason(result.hard_stop) if result.hard_stop else None,
        "matches": [{"rank": m.rank, "score": m.score, "product": _brief(m.product),
                     "bank": {"id": m.product.bank_client_id, "name": m.product.bank_name},
                     "reasons": [_reason(r) for r in m.reasons]} for m in result.matches],
        "excluded": [{"product": _brief(e.product), "bank": {"id": e.product.bank_client_id,
                                                               "name": e.product.bank_name},
                      "main_reason": _reason(e.main_reason), "reasons": [_reason(r) for r in e.reasons]}
                     for e in result.excluded],
    }


def matched_product_ids(stored: Mapping[str, Any]) -> set[str]:
    return {str(m["product"]["id"]) for m in stored.get("matches", [])}


# ---------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class DemandRow:
    pk: int
    id: str
    enterprise_pk: int
    created_by: str
    amount_fen: int
    term_months: int
    purpose: str
    guarantee_offered: str
    max_rate_bp: int | None
    status: str
    portrait_id: str | None
    stored: dict[str, Any]
    created_at: datetime
    submitted_at: datetime | None


def _row(r: Mapping[str, Any]) -> DemandRow:
    return DemandRow(pk=int(r["id"]), id=r["public_id"], enterprise_pk=int(r["enterprise"]),
                     created_by=r["created_by"], amount_fen=int(r["amount_fen"]), term_months=int(r["term_months"]),
                     purpose=r["purpose"], guarantee_offered=r["guarantee_offered"], max_rate_bp=r["max_rate_bp"],
                     status=r["status"], portrait_id=r["portrait_id"], stored=_json(r["matches"]) or {},
                     created_at=as_utc(r["created_at"]),
                     submitted_at=as_utc(r["submitted_at"]) if r["submitted_at"] else None)


async def load_for_member(*, account_id: str, demand_id: str) -> tuple[DemandRow, EnterpriseRef]:
    """The demand and its enterprise, if `account_id` is an active member of that enterprise.

    Raises:
        NotFound: `demand_not_found` — no such demand, or the caller is not a member of its enterprise.
    """
    if not plausible_id(demand_id):
        raise NotFound("demand not found", code="demand_not_found")
    found = await FinancingDemand.select(*_DEMAND_COLUMNS).where(FinancingDemand.public_id == demand_id).first()
    if found is None:
        raise NotFound("demand not found", code="demand_not_found")
    row = _row(found)
    owner = await Enterprise.select(Enterprise.public_id).where(_ENTERPRISE_PK.is_in([row.enterprise_pk])).first()
    if owner is None:
        raise NotFound("demand not found", code="demand_not_found")
    try:
        ref = await enterprise_of_member(account_id=account_id, enterprise_public_id=owner["public_id"])
    except NotFound:
        raise NotFound("demand not found", code="demand_not_found") from None
    return row, ref


def _out(row: DemandRow, ref: EnterpriseRef, *, now: datetime,
         apps: list[applications.ApplicationRecord]) -> DemandOut:
    stored = row.stored
    portrait = stored.get("portrait")
    hard = stored.get("hard_stop")
    return DemandOut(
        id=row.id, enterprise=EnterpriseBrief(id=ref.public_id, name=ref.name), amount_fen=row.amount_fen,
        term_months=row.term_months, purpose=row.purpose, guarantee_offered=row.guarantee_offered,
        max_rate_bp=row.max_rate_bp, status=row.status, first_loan=bool(stored.get("first_loan")),
        portrait=msgspec.convert(portrait, PortraitUsed) if portrait else None,
        hard_stop=ReasonOut(**hard) if hard else None,
        matches=[MatchOut(rank=m["rank"], score=m["score"], product=msgspec.convert(m["product"], ProductBrief),
                          bank=BankOut(**m["bank"]), reasons=[ReasonOut(**r) for r in m["reasons"]])
                 for m in stored.get("matches", [])],
        excluded=[ExcludedOut(product=msgspec.convert(e["product"], ProductBrief), bank=BankOut(**e["bank"]),
                              main_reason=ReasonOut(**e["main_reason"]),
                              reasons=[ReasonOut(**r) for r in e["reasons"]])
                  for e in stored.get("excluded", [])],
        applications=[applications.for_enterprise(a, now=now) for a in apps],
        created_at=row.created_at, submitted_at=row.submitted_at)


async def get_demand(*, account_id: str, demand_id: str) -> DemandOut:
    """The demand with its matches and, per bank it went to, the application's timeline and deadline."""
    row, ref = await load_for_member(account_id=account_id, demand_id=demand_id)
    apps = await applications.records_for_demand(demand_pk=row.pk)
    return _out(row, ref, now=clock.now(), apps=apps)


async def list_demands(*, cipher: FieldCipher, account_id: str, uscc: str, limit: int, cursor: str | None
                       ) -> DemandPage:
    """The enterprise's demands, newest first (members only; anyone else gets 404 enterprise_not_found)."""
    ref = await require_member(account_id=account_id, uscc=uscc, cipher=cipher)
    query = FinancingDemand.select(*_DEMAND_COLUMNS).where(FinancingDemand.enterprise == ref.enterprise_id)
    found, next_cursor = await db.newest_first(query, at=FinancingDemand.created_at, key=FinancingDemand.public_id,
                                               limit=limit, cursor=cursor)
    page = [_row(r) for r in found]
    items = [DemandSummary(id=r.id, amount_fen=r.amount_fen, term_months=r.term_months, purpose=r.purpose,
                           guarantee_offered=r.guarantee_offered, status=r.status,
                           matched=len(r.stored.get("matches", [])), created_at=r.created_at,
                           submitted_at=r.submitted_at) for r in page]
    return DemandPage(items=items, next_cursor=next_cursor)


# ---------------------------------------------------------------- creating a demand


async def create_demand(*, store: Store, cipher: FieldCipher, account_id: str, uscc: str, amount_fen: int,
                        term_months: int, purpose: str, guarantee_offered: str, max_rate_bp: int | None
                        ) -> DemandOut:
    """Record a demand of the enterprise `uscc` and match it against every active product.

    Raises:
        NotFound: `enterprise_not_found` — no such enterprise, or the caller is not its member.
        Unprocessable: `invalid_uscc`, `unknown_guarantee_kind`, `purpose_required`.
    """
    if guarantee_offered not in matching.GUARANTEE_KINDS:
        raise Unprocessable(f"unknown guarantee kind {guarantee_offered!r}", code="unknown_guarantee_kind")
    clean_purpose = purpose.strip()
    if not clean_purpose:
        raise Unprocessable("say what the money is for", code="purpose_required")
    ref = await require_member(account_id=account_id, uscc=uscc, cipher=cipher)
    portrait = await current_portrait(store=store, enterprise_id=ref.enterprise_id)
    first_loan = await applications.is_first_loan(enterprise_pk=ref.enterprise_id)
    terms = matching.DemandTerms(amount_fen=amount_fen, term_months=term_months, guarantee_offered=guarantee_offered,
                                 max_rate_bp=max_rate_bp)
    result = matching.match(demand=terms, enterprise=profile(portrait, first_loan=first_loan),
                            products=await products.active_products())
    stored = _stored_matches(result, portrait=portrait, first_loan=first_loan)
    now = clock.now()
    public_id = new_public_id("dmd")
    await FinancingDemand.insert(FinancingDemand(
        public_id=public_id, enterprise=ref.enterprise_id, created_by=account_id, amount_fen=amount_fen,
        term_months=term_months, purpose=clean_purpose, guarantee_offered=guarantee_offered, max_rate_bp=max_rate_bp,
        status=OPEN, portrait_id=portrait.id, matches=stored, created_at=now))
    row = DemandRow(pk=0, id=public_id, enterprise_pk=ref.enterprise_id, created_by=account_id, amount_fen=amount_fen,
                    term_months=term_months, purpose=clean_purpose, guarantee_offered=guarantee_offered,
                    max_rate_bp=max_rate_bp, status=OPEN, portrait_id=portrait.id, stored=stored, created_at=now,
                    submitted_at=None)
    return _out(row, ref, now=now, apps=[])


# ---------------------------------------------------------------- submitting to banks


async def _check_still_fits(row: DemandRow, *, portrait: PortraitView, chosen: list[str]) -> None:
    """Matching used the products and the portrait of its day; a product the bank has since changed (a
    lower maximum, a higher grade floor…) or a portrait that has since dropped below its floors must not
    send the bank an application it never offered to take. Products already applied for are left alone
    (re-submitting them changes nothing)."""
    applied = {r["product_id"] for r in await LoanApplication.select(
        LoanApplication.product.public_id.as_alias("product_id")).where(LoanApplication.demand == row.pk)}
    current = {p.id: p for p in await products.get_active(product_ids=[p for p in chosen if p not in applied])}
    terms = matching.DemandTerms(amount_fen=row.amount_fen, term_months=row.term_months,
                                 guarantee_offered=row.guarantee_offered, max_rate_bp=row.max_rate_bp)
    enterprise = profile(portrait, first_loan=bool(row.stored.get("first_loan")))
    unfit = [(pid, failed[0]) for pid, product in current.items()
             if (failed := matching.failures(product, terms, enterprise))]
    if unfit:
        raise Unprocessable("a chosen product no longer fits this demand; post the demand again to see why",
                            code="product_no_longer_matches",
                            errors=[{"field": "product_ids", "message": f"{pid}: {reason.text}"}
                                    for pid, reason in unfit])


async def submit_demand(*, store: Store, cipher: FieldCipher, account_id: str, demand_id: str,
                        product_ids: list[str], consent: object, calendar: WorkingCalendar, working_days: int
                        ) -> DemandOut:
    """Send the demand to the banks of the chosen matched products, with the enterprise's authorization.

    Raises:
        Unprocessable: `consent_required` (consent is not literally true), `product_not_matched`,
            `product_not_available` (paused or withdrawn since matching), `hard_risk_flag` (the enterprise's
            current portrait carries a hard risk flag), `product_no_longer_matches` (the product or the
            portrait changed since matching so that the product no longer fits).
        NotFound: `demand_not_found`.
        CalendarYearUnknown: the banks' answer deadline falls in a year the calendar does not know.
    """
    if consent is not True:
        raise Unprocessable("the enterprise must consent (consent: true) to authorize the chosen banks",
                            code="consent_required")
    row, ref = await load_for_member(account_id=account_id, demand_id=demand_id)
    chosen = list(dict.fromkeys(product_ids))
    if not_matched := [p for p in chosen if p not in matched_product_ids(row.stored)]:
        raise Unprocessable("only matched products can be chosen", code="product_not_matched",
                            errors=[{"field": "product_ids", "message": f"{p} was not matched for this demand"}
                                    for p in not_matched])
    # Matching used the portrait of its day; a hard stop raised since then still stops the submission.
    portrait = await current_portrait(store=store, enterprise_id=ref.enterprise_id)
    flags = matching.hard_flags(profile(portrait, first_loan=False).risk_flags)
    if flags:
        raise Unprocessable(matching.HARD_RISK_FLAGS[flags[0]], code="hard_risk_flag")
    await _check_still_fits(row, portrait=portrait, chosen=chosen)
    await applications.submit(demand_pk=row.pk, demand_id=row.id, enterprise=ref, cipher=cipher,
                              account_id=account_id, product_ids=chosen, calendar=calendar,
                              working_days=working_days,
                              terms={"amount_fen": row.amount_fen, "term_months": row.term_months,
                                     "purpose": row.purpose, "guarantee_offered": row.guarantee_offered,
                                     "max_rate_bp": row.max_rate_bp})
    return await get_demand(account_id=account_id, demand_id=demand_id)


__all__ = ["OPEN", "SUBMITTED", "DemandRow", "create_demand", "get_demand", "list_demands", "load_for_member",
           "matched_product_ids", "profile", "submit_demand"]
