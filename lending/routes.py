"""HTTP for 信易贷's market: the loan product catalog (金融超市), enterprises' financing demands with their
matches and submissions, the banks' applications and decisions, and the public lending statistics."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.auth import guards
from api.pagination import Cursor, PageSize
from core.errors import Forbidden, NotFound
from lending import applications, demands, products, stats
from lending.inputs import SAFE_ID
from lending.schemas import (
    BankApplication,
    BankApplicationPage,
    BankOut,
    DecisionIn,
    DemandCreate,
    DemandOut,
    DemandPage,
    DemandSubmit,
    GuaranteeKind,
    LendingStats,
    ProductCreate,
    ProductOut,
    ProductPage,
    ProductPatch,
)

Amount = Annotated[int | None, QueryParameter(ge=1, le=1_000_000_000_000)]
Term = Annotated[int | None, QueryParameter(ge=1, le=360)]
Rate = Annotated[int | None, QueryParameter(ge=1, le=3600)]
SectionQuery = Annotated[str | None, QueryParameter(pattern=r"^[A-T]$")]
Months = Annotated[int, QueryParameter(ge=1, le=stats.MAX_MONTHS)]
BankQuery = Annotated[str | None, QueryParameter(pattern=SAFE_ID, description="the bank's client id")]


def _product_out(view: products.ProductView) -> ProductOut:
    return ProductOut(
        id=view.id, bank=BankOut(id=view.bank_client_id, name=view.bank_name), name=view.name,
        description=view.description, amount_min_fen=view.amount_min_fen, amount_max_fen=view.amount_max_fen,
        term_min_months=view.term_min_months, term_max_months=view.term_max_months, rate_min_bp=view.rate_min_bp,
        rate_max_bp=view.rate_max_bp, guarantee_kind=view.guarantee_kind, min_grade=view.min_grade,
        min_score=view.min_score, industries=list(view.industries), regions=list(view.regions),
        min_years_in_business=view.min_years_in_business, max_open_penalties=view.max_open_penalties,
        tax_grade_floor=view.tax_grade_floor, first_loan_friendly=view.first_loan_friendly, status=view.status,
        created_at=view.created_at, updated_at=view.updated_at)


async def _bank(request: Request[Any, Any, Any]) -> BankOut:
    """The calling bank (the guard has admitted it; the directory caches its record)."""
    record = await guards.app_context(request).partners.get(guards.principal_of(request).subject)
    if record is None:
        raise NotFound("partner not found", code="partner_not_found")
    if record.kind != "bank":
        raise Forbidden("only banks take part in the lending market", code="wrong_partner_kind")
    return BankOut(id=record.client_id, name=record.name)


class LoanProductsController(Controller):
    path = "/v1/lending/products"
    tags = ["lending"]

    @post("", status_code=HTTP_201_CREATED, guards=[guards.partner("lending:write")],
          security=[{"BearerAuth": []}], summary="Publish a loan product (banks)")
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[ProductCreate]) -> ProductOut:
        bank = await _bank(request)
        view = await products.create_product(bank_client_id=bank.id, bank_name=bank.name,
                                             fields=msgspec.structs.asdict(data))
        return _product_out(view)

    @patch("/{product_id:str}", guards=[guards.partner("lending:write")], security=[{"BearerAuth": []}],
           summary="Change one of the bank's own products (another bank's is a 404)")
    async def update(self, request: Request[Any, Any, Any], product_id: FromPath[str],
                     data: JSONBody[ProductPatch]) -> ProductOut:
        bank = await _bank(request)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        view = await products.update_product(bank_client_id=bank.id, product_id=product_id, changes=changes)
        return _product_out(view)

    @get("/mine", guards=[guards.partner("lending:write")], security=[{"BearerAuth": []}],
         summary="The bank's own products in every status, newest first")
    async def mine(self, request: Request[Any, Any, Any],
                   status: FromQuery[Literal["active", "paused", "withdrawn"] | None] = None,
                   cursor: Cursor = None, limit: PageSize = 50) -> ProductPage:
        bank = await _bank(request)
        views, next_cursor = await products.list_own(bank_client_id=bank.id, status=status, limit=limit,
                                                     cursor=cursor)
        return ProductPage(items=[_product_out(v) for v in views], next_cursor=next_cursor)

    @get("", summary="The loan product catalog (金融超市): active products, newest first",
         description="Filters combine: `amount_fen` / `term_months` within the product's range, `industry` "
                     "(GB/T 4754 section letter) allowed, `max_rate_bp` at least the product's lowest rate.")
    async def catalog(self, *, guarantee_kind: FromQuery[GuaranteeKind | None] = None,
                      bank: BankQuery = None, amount_fen: Amount = None, term_months: Term = None,
                      industry: SectionQuery = None, max_rate_bp: Rate = None, cursor: Cursor = None,
                      limit: PageSize = 20) -> ProductPage:
        filters = products.ProductFilter(guarantee_kind=guarantee_kind, bank=bank, amount_fen=amount_fen,
                                         term_months=term_months, industry=industry, max_rate_bp=max_rate_bp)
        views, next_cursor = await products.list_public(filters=filters, limit=limit, cursor=cursor)
        return ProductPage(items=[_product_out(v) for v in views], next_cursor=next_cursor)

    @get("/{product_id:str}", summary="One active product of the catalog")
    async def read(self, product_id: FromPath[str]) -> ProductOut:
        return _product_out(await products.get_public(product_id=product_id))


class FinancingDemandsController(Controller):
    path = "/v1/lending/demands"
    tags = ["lending"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @post("", status_code=HTTP_201_CREATED,
          summary="Post a financing demand for an enterprise you are a member of; get ranked matches with reasons")
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[DemandCreate]) -> DemandOut:
        ctx = guards.app_context(request)
        return await demands.create_demand(
            store=ctx.store, cipher=ctx.cipher, account_id=guards.principal_of(request).subject, uscc=data.uscc,
            amount_fen=data.amount_fen, term_months=data.term_months, purpose=data.purpose,
            guarantee_offered=data.guarantee_offered, max_rate_bp=data.max_rate_bp)

    @get("", summary="The demands of an enterprise you are a member of, newest first")
    async def list(self, request: Request[Any, Any, Any], uscc: FromQuery[str], cursor: Cursor = None,
                   limit: PageSize = 20) -> DemandPage:
        ctx = guards.app_context(request)
        items, next_cursor = await demands.list_demands(
            cipher=ctx.cipher, account_id=guards.principal_of(request).subject, uscc=uscc, limit=limit, cursor=cursor)
        return DemandPage(items=items, next_cursor=next_cursor)

    @get("/{demand_id:str}",
         summary="A demand: its matches, and per bank the application's timeline, deadline and overdue flag")
    async def read(self, request: Request[Any, Any, Any], demand_id: FromPath[str]) -> DemandOut:
        return await demands.get_demand(account_id=guards.principal_of(request).subject, demand_id=demand_id)

    @post("/{demand_id:str}/submit", status_code=HTTP_200_OK,
          summary="Submit to the banks of chosen matched products, authorizing each (consent must be true)")
    async def submit(self, request: Request[Any, Any, Any], demand_id: FromPath[str],
                     data: JSONBody[DemandSubmit]) -> DemandOut:
        ctx = guards.app_context(request)
        return await demands.submit_demand(
            store=ctx.store, cipher=ctx.cipher, account_id=guards.principal_of(request).subject, demand_id=demand_id,
            product_ids=data.product_ids, consent=data.consent, calendar=ctx.settings.calendar,
            working_days=ctx.settings.lending_response_working_days)


class LoanApplicationsController(Controller):
    path = "/v1/lending/applications"
    tags = ["lending"]
    guards = [guards.partner("lending:write")]
    security = [{"BearerAuth": []}]

    @get("", summary="The bank's own applications, newest first (filter by status, overdue)")
    async def list(self, request: Request[Any, Any, Any],
                   status: FromQuery[Literal["submitted", "accepted", "approved", "disbursed", "rejected"] | None]
                   = None, overdue: FromQuery[bool | None] = None, cursor: Cursor = None,
                   limit: PageSize = 50) -> BankApplicationPage:
        ctx = guards.app_context(request)
        bank = await _bank(request)
        items, next_cursor = await applications.list_for_bank(
            ledger=ctx.ledger, cipher=ctx.cipher, bank_client_id=bank.id, bank_name=bank.name, status=status,
            overdue=overdue, limit=limit, cursor=cursor)
        return BankApplicationPage(items=items, next_cursor=next_cursor)

    @get("/{application_id:str}", summary="One of the bank's applications (another bank's is a 404)")
    async def read(self, request: Request[Any, Any, Any], application_id: FromPath[str]) -> BankApplication:
        ctx = guards.app_context(request)
        bank = await _bank(request)
        return await applications.get_for_bank(ledger=ctx.ledger, cipher=ctx.cipher, bank_client_id=bank.id,
                                               bank_name=bank.name, application_id=application_id)

    @post("/{application_id:str}/decisions", status_code=HTTP_200_OK,
          summary="Decide: accepted | approved (amount, rate, term) | disbursed (amount) | rejected (reason)")
    async def decide(self, request: Request[Any, Any, Any], application_id: FromPath[str],
                     data: JSONBody[DecisionIn]) -> BankApplication:
        ctx = guards.app_context(request)
        bank = await _bank(request)
        return await applications.decide(
            store=ctx.store, ledger=ctx.ledger, cipher=ctx.cipher, bank_client_id=bank.id, bank_name=bank.name,
            application_id=application_id, status=data.status, amount_fen=data.amount_fen, rate_bp=data.rate_bp,
            term_months=data.term_months, reason=data.reason, note=data.note)


@get("/v1/lending/stats", tags=["lending"],
     summary="Lending statistics: demands, applications, approval rate, disbursed, unsecured, first loans, by month")
async def lending_stats(months: Months = 12, bank: BankQuery = None) -> LendingStats:
    return await stats.lending_stats(months=months, bank=bank)
