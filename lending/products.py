"""Loan products of the 金融超市: banks publish and edit their own; everyone may browse the active ones.
No HTTP objects here.

A product belongs to the bank (partner client id) that created it. Another bank's product looks exactly
like a missing one (404 `product_not_found`), for reads and edits alike. Status `active` products are
listed publicly and matched against demands; `paused` ones are hidden until resumed; `withdrawn` is final.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core import clock, db
from core.db import as_utc
from core.errors import Conflict, NotFound, Unprocessable
from credit.identity import new_public_id
from lending.inputs import plausible_id
from lending.matching import GUARANTEE_KINDS, ProductRules
from lending.schemas import BankOut, ProductOut, ProductPage
from lending.tables import LoanApplication, LoanProduct

ACTIVE = "active"
PAUSED = "paused"
WITHDRAWN = "withdrawn"
STATUSES = (ACTIVE, PAUSED, WITHDRAWN)
_PRODUCT_PK = LoanProduct._meta.primary_key

_COLUMNS = (
    LoanProduct.public_id, LoanProduct.bank_client_id, LoanProduct.bank_name, LoanProduct.name,
    LoanProduct.description, LoanProduct.amount_min_fen, LoanProduct.amount_max_fen, LoanProduct.term_min_months,
    LoanProduct.term_max_months, LoanProduct.rate_min_bp, LoanProduct.rate_max_bp, LoanProduct.guarantee_kind,
    LoanProduct.min_grade, LoanProduct.min_score, LoanProduct.industries, LoanProduct.regions,
    LoanProduct.min_years_in_business, LoanProduct.max_open_penalties, LoanProduct.tax_grade_floor,
    LoanProduct.first_loan_friendly, LoanProduct.status, LoanProduct.created_at, LoanProduct.updated_at,
)

EDITABLE = ("name", "description", "amount_min_fen", "amount_max_fen", "term_min_months", "term_max_months",
            "rate_min_bp", "rate_max_bp", "guarantee_kind", "min_grade", "min_score", "industries", "regions",
            "min_years_in_business", "max_open_penalties", "tax_grade_floor", "first_loan_friendly", "status")
"""Fields a bank may change with PATCH (everything but the id, the owner and the timestamps)."""


def _industries(row: Mapping[str, Any]) -> list[str]:
    return str(row["industries"]).split()


def _regions(row: Mapping[str, Any]) -> list[str]:
    return str(row["regions"]).split()


def _out(row: Mapping[str, Any]) -> ProductOut:
    """The product as banks and the catalog see it, straight from its row (lists are stored space-separated)."""
    return ProductOut(
        id=row["public_id"], bank=BankOut(id=row["bank_client_id"], name=row["bank_name"]), name=row["name"],
        description=row["description"], amount_min_fen=int(row["amount_min_fen"]),
        amount_max_fen=int(row["amount_max_fen"]), term_min_months=int(row["term_min_months"]),
        term_max_months=int(row["term_max_months"]), rate_min_bp=int(row["rate_min_bp"]),
        rate_max_bp=int(row["rate_max_bp"]), guarantee_kind=row["guarantee_kind"], min_grade=row["min_grade"],
        min_score=row["min_score"], industries=_industries(row), regions=_regions(row),
        min_years_in_business=int(row["min_years_in_business"]), max_open_penalties=row["max_open_penalties"],
        tax_grade_floor=row["tax_grade_floor"], first_loan_friendly=bool(row["first_loan_friendly"]),
        status=row["status"], created_at=as_utc(row["created_at"]), updated_at=as_utc(row["updated_at"]))


def _rules(row: Mapping[str, Any]) -> ProductRules:
    """The product as matching sees it, straight from its row."""
    return ProductRules(
        id=row["public_id"], bank_client_id=row["bank_client_id"], bank_name=row["bank_name"], name=row["name"],
        amount_min_fen=int(row["amount_min_fen"]), amount_max_fen=int(row["amount_max_fen"]),
        term_min_months=int(row["term_min_months"]), term_max_months=int(row["term_max_months"]),
        rate_min_bp=int(row["rate_min_bp"]), rate_max_bp=int(row["rate_max_bp"]),
        guarantee_kind=row["guarantee_kind"], min_grade=row["min_grade"], min_score=row["min_score"],
        industries=tuple(_industries(row)), regions=tuple(_regions(row)),
        min_years_in_business=int(row["min_years_in_business"]), max_open_penalties=row["max_open_penalties"],
        tax_grade_floor=row["tax_grade_floor"], first_loan_friendly=bool(row["first_loan_friendly"]))


def validate(fields: Mapping[str, Any]) -> None:
    """Cross-field rules `Meta` cannot express; each failure is a 422 with its own stable code.

    Raises:
        Unprocessable: `amount_range_invalid`, `term_range_invalid`, `rate_range_invalid`,
            `unknown_guarantee_kind`, `duplicate_industry`, `duplicate_region`.
    """
    if fields["amount_min_fen"] > fields["amount_max_fen"]:
        raise Unprocessable("amount_min_fen must not exceed amount_max_fen", code="amount_range_invalid",
                            errors=[{"field": "amount_min_fen", "message": "greater than amount_max_fen"}])
    if fields["term_min_months"] > fields["term_max_months"]:
        raise Unprocessable("term_min_months must not exceed term_max_months", code="term_range_invalid",
                            errors=[{"field": "term_min_months", "message": "greater than term_max_months"}])
    if fields["rate_min_bp"] > fields["rate_max_bp"]:
        raise Unprocessable("rate_min_bp must not exceed rate_max_bp", code="rate_range_invalid",
                            errors=[{"field": "rate_min_bp", "message": "greater than rate_max_bp"}])
    if fields["guarantee_kind"] not in GUARANTEE_KINDS:
        raise Unprocessable(f"unknown guarantee kind {fields['guarantee_kind']!r}", code="unknown_guarantee_kind")
    if len(set(fields["industries"])) != len(fields["industries"]):
        raise Unprocessable("industries lists a section twice", code="duplicate_industry")
    if len(set(fields["regions"])) != len(fields["regions"]):
        raise Unprocessable("regions lists a prefix twice", code="duplicate_region")


def _columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Wire values → column values (lists are stored space-separated)."""
    out = dict(fields)
    if "industries" in out:
        out["industries"] = " ".join(out["industries"])
    if "regions" in out:
        out["regions"] = " ".join(out["regions"])
    return out


async def _get(public_id: str) -> ProductOut | None:
    if not plausible_id(public_id):
        return None
    row = await LoanProduct.select(*_COLUMNS).where(LoanProduct.public_id == public_id).first()
    return None if row is None else _out(row)


async def get_public(*, product_id: str) -> ProductOut:
    """An active product, for anyone (paused and withdrawn ones are not shown)."""
    view = await _get(product_id)
    if view is None or view.status != ACTIVE:
        raise NotFound("product not found", code="product_not_found")
    return view


async def get_own(*, bank_client_id: str, product_id: str) -> ProductOut:
    """The bank's own product in any status; another bank's is a 404."""
    view = await _get(product_id)
    if view is None or view.bank.id != bank_client_id:
        raise NotFound("product not found", code="product_not_found")
    return view


async def create_product(*, bank_client_id: str, bank_name: str, fields: Mapping[str, Any]) -> ProductOut:
    """Publish a product for the bank `bank_client_id`.

    Args:
        fields: every field of `ProductCreate` (name, ranges, guarantee kind, eligibility rules, status).

    Raises:
        Unprocessable: see `validate`.
    """
    validate(fields)
    now = clock.now()
    public_id = new_public_id("lprd")
    values = _columns({k: fields[k] for k in EDITABLE if k in fields})
    await LoanProduct.insert(LoanProduct(public_id=public_id, bank_client_id=bank_client_id, bank_name=bank_name,
                                         created_at=now, updated_at=now, **values))
    view = await _get(public_id)
    assert view is not None
    return view


async def update_product(*, bank_client_id: str, product_id: str, changes: Mapping[str, Any]) -> ProductOut:
    """Change the bank's own product; the merged result is validated as a whole.

    Applications already made keep going whatever happens to the product; a paused or withdrawn product
    is no longer matched or offered for submission.

    Raises:
        NotFound: `product_not_found` — no such product, or another bank's.
        Conflict: `product_withdrawn` — a withdrawn product cannot change any more; `guarantee_kind_locked`
            — the guarantee kind of a product that has applications.
        Unprocessable: `empty_patch`, and see `validate`.
    """
    if not changes:
        raise Unprocessable("nothing to change", code="empty_patch")
    if unknown := set(changes) - set(EDITABLE):
        raise Unprocessable(f"cannot change {', '.join(sorted(unknown))}", code="field_not_editable")
    async with db.transaction(LoanProduct):
        # One edit of a product at a time: two edits each valid alone (a higher minimum, a lower maximum)
        # must not merge into an invalid product. FOR UPDATE also waits for a submission in flight, so the
        # guarantee-kind check below sees its application.
        found = await LoanProduct.select(_PRODUCT_PK).where(
            (LoanProduct.public_id == product_id) & (LoanProduct.bank_client_id == bank_client_id)).first() \
            if plausible_id(product_id) else None
        if found is None:
            raise NotFound("product not found", code="product_not_found")
        await db.lock_row(LoanProduct, int(found["id"]), strength="UPDATE")
        current = await get_own(bank_client_id=bank_client_id, product_id=product_id)
        if current.status == WITHDRAWN:
            raise Conflict("the product was withdrawn", code="product_withdrawn")
        # Applications and the statistics (unsecured = pure credit) read the product's guarantee kind; changing
        # it under existing applications would rewrite what was lent and how. A new kind is a new product.
        if changes.get("guarantee_kind", current.guarantee_kind) != current.guarantee_kind and \
                await LoanApplication.exists().where(LoanApplication.product == int(found["id"])):
            raise Conflict("the product already has applications; publish a new product for another guarantee "
                           "kind", code="guarantee_kind_locked")
        merged = {name: getattr(current, name) for name in EDITABLE}
        merged.update(changes)
        validate(merged)
        values = _columns(changes)
        values["updated_at"] = clock.now()
        # Conditional on the status read above, so a concurrent withdrawal is never undone by a late edit.
        updated = await LoanProduct.update({getattr(LoanProduct, k): v for k, v in values.items()}).where(
            (LoanProduct.public_id == product_id) & (LoanProduct.bank_client_id == bank_client_id)
            & (LoanProduct.status == current.status)).returning(LoanProduct.public_id)
        if not updated:
            raise Conflict("the product changed meanwhile; read it again", code="product_state_conflict")
    return await get_own(bank_client_id=bank_client_id, product_id=product_id)


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """Public catalog filters (all optional; they combine with AND)."""

    guarantee_kind: str | None = None
    bank: str | None = None  # bank client id
    amount_fen: int | None = None  # products whose range includes this amount
    term_months: int | None = None  # products whose range includes this term
    industry: str | None = None  # products open to this GB/T 4754 section
    max_rate_bp: int | None = None  # products whose lowest rate is at most this


async def list_public(*, filters: ProductFilter, limit: int, cursor: str | None) -> ProductPage:
    """Active products, newest first, with an opaque cursor over (created_at, id)."""
    query = LoanProduct.select(*_COLUMNS).where(LoanProduct.status == ACTIVE)
    if filters.guarantee_kind is not None:
        query = query.where(LoanProduct.guarantee_kind == filters.guarantee_kind)
    if filters.bank is not None:
        query = query.where(LoanProduct.bank_client_id == filters.bank)
    if filters.amount_fen is not None:
        query = query.where((LoanProduct.amount_min_fen <= filters.amount_fen)
                            & (LoanProduct.amount_max_fen >= filters.amount_fen))
    if filters.term_months is not None:
        query = query.where((LoanProduct.term_min_months <= filters.term_months)
                            & (LoanProduct.term_max_months >= filters.term_months))
    if filters.industry is not None:
        # Sections are single letters stored space-separated, so a LIKE on the letter is exact.
        query = query.where((LoanProduct.industries == "") | LoanProduct.industries.like(f"%{filters.industry}%"))
    if filters.max_rate_bp is not None:
        query = query.where(LoanProduct.rate_min_bp <= filters.max_rate_bp)
    rows, next_cursor = await db.newest_first(query, at=LoanProduct.created_at, key=LoanProduct.public_id,
                                              limit=limit, cursor=cursor)
    return ProductPage(items=[_out(r) for r in rows], next_cursor=next_cursor)


async def list_own(*, bank_client_id: str, status: str | None, limit: int, cursor: str | None) -> ProductPage:
    """The bank's own products in every status (or one), newest first."""
    query = LoanProduct.select(*_COLUMNS).where(LoanProduct.bank_client_id == bank_client_id)
    if status is not None:
        query = query.where(LoanProduct.status == status)
    rows, next_cursor = await db.newest_first(query, at=LoanProduct.created_at, key=LoanProduct.public_id,
                                              limit=limit, cursor=cursor)
    return ProductPage(items=[_out(r) for r in rows], next_cursor=next_cursor)


async def get_active(*, product_ids: list[str]) -> list[ProductRules]:
    """The active products among `product_ids`, as matching sees them (others are simply left out)."""
    wanted = [p for p in product_ids if plausible_id(p)]
    if not wanted:
        return []
    return [_rules(r) for r in await LoanProduct.select(*_COLUMNS).where(
        LoanProduct.public_id.is_in(wanted) & (LoanProduct.status == ACTIVE))]


async def active_products() -> list[ProductRules]:
    """Every active product as matching sees it (what a demand is matched against)."""
    return [_rules(r) for r in await LoanProduct.select(*_COLUMNS).where(LoanProduct.status == ACTIVE).order_by(
        LoanProduct.public_id)]


__all__ = ["ACTIVE", "EDITABLE", "PAUSED", "STATUSES", "WITHDRAWN", "ProductFilter",
           "active_products", "create_product", "get_active", "get_own", "get_public", "list_own", "list_public",
           "update_product", "validate"]
