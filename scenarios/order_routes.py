"""HTTP for credit orders: merchants open and move their orders (`/v1/credit-orders`), citizens see their
orders and credit line (`/v1/me/credit-orders`, `/v1/me/credit-line`)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.citizens import bound_person_id
from api.auth import guards
from api.pagination import Cursor, PageSize
from core.errors import NotFound
from scenarios import orders
from scenarios.order_schemas import (
    MERCHANT_ORDER_NO_PATTERN,
    CreditOrderCreate,
    CreditOrderDefault,
    MerchantCreditOrder,
    MerchantCreditOrderPage,
    MyCreditLine,
    MyCreditOrder,
    MyCreditOrderPage,
    OrderStatus,
)

OrderNoFilter = Annotated[str | None, QueryParameter(pattern=MERCHANT_ORDER_NO_PATTERN)]


def merchant_order(view: orders.OrderView) -> MerchantCreditOrder:
    return MerchantCreditOrder(
        id=view.id, merchant_order_no=view.merchant_order_no, scenario=view.scenario, kind=view.kind,
        amount_fen=view.amount_fen, description=view.description, status=view.status, due_at=view.due_at,
        created_at=view.created_at, updated_at=view.updated_at, grace_until=view.grace_until,
        default_amount_fen=view.default_amount_fen, record_id=view.record_id, finished_at=view.finished_at,
        cancelled_at=view.cancelled_at, defaulted_at=view.defaulted_at, settled_at=view.settled_at,
        recorded_at=view.recorded_at)


def my_order(view: orders.OrderView) -> MyCreditOrder:
    return MyCreditOrder(
        id=view.id, merchant_name=view.merchant_name, scenario=view.scenario, kind=view.kind,
        amount_fen=view.amount_fen, description=view.description, status=view.status, due_at=view.due_at,
        created_at=view.created_at, updated_at=view.updated_at, merchant_order_no=view.merchant_order_no,
        grace_until=view.grace_until, default_amount_fen=view.default_amount_fen, record_id=view.record_id)


async def _merchant(request: Request[Any, Any, Any]) -> orders.Merchant:
    client_id = guards.principal_of(request).subject
    record = await guards.app_context(request).partners.get(client_id)
    if record is None:
        raise NotFound("partner not found", code="partner_not_found")
    return orders.Merchant(client_id=record.client_id, name=record.name, kind=record.kind)


def _client_id(request: Request[Any, Any, Any]) -> str:
    return guards.principal_of(request).subject


class CreditOrdersController(Controller):
    path = "/v1/credit-orders"
    tags = ["partner"]
    security = [{"BearerAuth": []}]
    guards = [guards.partner("credit_orders:write")]

    @post("", status_code=HTTP_201_CREATED,
          summary="Open a deposit-free or pay-later order against the citizen's credit line",
          description="The citizen is the one a benefit-code verification (`POST /v1/benefits/verify`) by this "
                      "merchant identified; the verification must have offered a `deposit_waiver` benefit for a "
                      "`deposit_free` order or a `pay_later_limit` one for a `pay_later` order (else 422 "
                      "`credit_order_not_offered`), and the scenario and that benefit must still be active (409 "
                      "`scenario_not_active`, `benefit_not_active`). The amount is held on the citizen's credit "
                      "line atomically; over the line → 409 `credit_line_exceeded`, which says no amounts (the "
                      "merchant learns eligibility only). The same `merchant_order_no` with the same terms answers "
                      "the same order (200); with other terms, 409 `merchant_order_no_reused`.")
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[CreditOrderCreate]
                     ) -> Response[MerchantCreditOrder]:
        ctx = guards.app_context(request)
        view, created = await orders.open_order(
            store=ctx.store, ledger=ctx.ledger, merchant=await _merchant(request),
            verification_id=data.verification_id, kind=data.kind, amount_fen=data.amount_fen,
            merchant_order_no=data.merchant_order_no, due_at=data.due_at, description=data.description,
            credit_lines=dict(ctx.settings.credit_lines_fen))
        return Response(merchant_order(view), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("", summary="My orders, newest first (filter by my order number or status)")
    async def list(self, request: Request[Any, Any, Any],
                   merchant_order_no: OrderNoFilter = None,
                   status: FromQuery[OrderStatus | None] = None, cursor: Cursor = None,
                   limit: PageSize = 50) -> MerchantCreditOrderPage:
        views, next_cursor = await orders.merchant_orders(
            merchant_client_id=_client_id(request), merchant_order_no=merchant_order_no, status=status,
            limit=limit, cursor=cursor)
        return MerchantCreditOrderPage(items=[merchant_order(v) for v in views], next_cursor=next_cursor)

    @get("/{order_id:str}", summary="One of my orders")
    async def read(self, request: Request[Any, Any, Any], order_id: FromPath[str]) -> MerchantCreditOrder:
        return merchant_order(await orders.get_order(order_id=order_id, merchant_client_id=_client_id(request)))

    @post("/{order_id:str}/complete", status_code=HTTP_200_OK,
          summary="authorized → finished; frees the line (on time: a small positive credit record, at most one per "
                  "merchant and citizen per calendar month)")
    async def complete(self, request: Request[Any, Any, Any], order_id: FromPath[str]) -> MerchantCreditOrder:
        view = await orders.complete_order(store=guards.app_context(request).store, order_id=order_id,
                                           merchant_client_id=_client_id(request))
        return merchant_order(view)

    @post("/{order_id:str}/cancel", status_code=HTTP_200_OK, summary="authorized → cancelled; frees the line")
    async def cancel(self, request: Request[Any, Any, Any], order_id: FromPath[str]) -> MerchantCreditOrder:
        return merchant_order(await orders.cancel_order(order_id=order_id, merchant_client_id=_client_id(request)))

    @post("/{order_id:str}/default", status_code=HTTP_200_OK,
          summary="authorized → defaulted: the citizen owes `amount_fen` and has the grace period to settle",
          description="Not settled within the grace period, the default becomes a negative credit record "
                      "(source: this merchant) that the citizen can object to. A pay-later order defaults only "
                      "once due (409 `order_not_yet_due` before).")
    async def default(self, request: Request[Any, Any, Any], order_id: FromPath[str],
                      data: JSONBody[CreditOrderDefault]) -> MerchantCreditOrder:
        view = await orders.default_order(
            order_id=order_id, merchant_client_id=_client_id(request), amount_fen=data.amount_fen,
            reason=data.reason, grace_days=guards.app_context(request).settings.credit_order_grace_days)
        return merchant_order(view)

    @post("/{order_id:str}/settle", status_code=HTTP_200_OK,
          summary="defaulted → settled (paid within the grace period); frees the line")
    async def settle(self, request: Request[Any, Any, Any], order_id: FromPath[str]) -> MerchantCreditOrder:
        return merchant_order(await orders.settle_order(order_id=order_id, merchant_client_id=_client_id(request)))


class MyCreditOrdersController(Controller):
    path = "/v1/me"
    tags = ["citizen"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("/credit-line", summary="My credit line for deposit-free and pay-later orders, and what is held")
    async def credit_line(self, request: Request[Any, Any, Any]) -> MyCreditLine:
        ctx = guards.app_context(request)
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        view = await orders.credit_line(store=ctx.store, person_id=person_id,
                                        credit_lines=dict(ctx.settings.credit_lines_fen))
        return MyCreditLine(tier=view.tier, line_fen=view.line_fen, reserved_fen=view.reserved_fen,
                            available_fen=view.available_fen, open_orders=view.open_orders)

    @get("/credit-orders", summary="My deposit-free and pay-later orders, newest first")
    async def credit_orders(self, request: Request[Any, Any, Any], status: FromQuery[OrderStatus | None] = None,
                            cursor: Cursor = None, limit: PageSize = 50) -> MyCreditOrderPage:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        views, next_cursor = await orders.person_orders(person_id=person_id, status=status, limit=limit,
                                                        cursor=cursor)
        return MyCreditOrderPage(items=[my_order(v) for v in views], next_cursor=next_cursor)
