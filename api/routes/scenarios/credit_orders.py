"""HTTP for credit orders: merchants open and move their deposit-free and pay-later orders
(`/v1/credit-orders`), citizens see their orders and credit line (`/v1/me/credit-orders`, `/v1/me/credit-line`)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.citizens import citizen_account_id
from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from core.errors import NotFound
from core.settings import Settings
from core.store import Store
from credit.ledger import LedgerWriter
from partners.limits import PartnerDirectory
from scenarios import orders
from scenarios.order_schemas import (
    MERCHANT_ORDER_NO_PATTERN,
    CreditOrderCreate,
    CreditOrderDefault,
    MerchantCreditOrder,
    MerchantCreditOrderPage,
    MyCreditLine,
    MyCreditOrderPage,
    OrderStatus,
)

OrderNoFilter = Annotated[str | None, QueryParameter(pattern=MERCHANT_ORDER_NO_PATTERN)]


async def provide_order_merchant(principal: Injected[Principal],
                                 partner_directory: Injected[PartnerDirectory]) -> orders.Merchant:
    """The merchant opening an order, from the per-worker partner directory its guard just filled."""
    record = await partner_directory.get(principal.subject)
    if record is None:
        raise NotFound("partner not found", code="partner_not_found")
    return orders.Merchant(client_id=record.client_id, name=record.name, kind=record.kind)


class CreditOrdersController(Controller):
    path = "/v1/credit-orders"
    tags = ["partner"]
    security = [{"BearerAuth": []}]
    guards = [guards.partner("credit_orders:write")]
    dependencies = {"merchant": Provide(provide_order_merchant)}

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
    async def create(self, data: JSONBody[CreditOrderCreate], store: Injected[Store], ledger: Injected[LedgerWriter],
                     settings: Injected[Settings], merchant: Injected[orders.Merchant]
                     ) -> Response[MerchantCreditOrder]:
        order, created = await orders.open_order(
            store=store, ledger=ledger, merchant=merchant, verification_id=data.verification_id, kind=data.kind,
            amount_fen=data.amount_fen, merchant_order_no=data.merchant_order_no, due_at=data.due_at,
            description=data.description, credit_lines=dict(settings.credit_lines_fen))
        return Response(order, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("", summary="My orders, newest first (filter by my order number or status)")
    async def list(self, principal: Injected[Principal], merchant_order_no: OrderNoFilter = None,
                   status: FromQuery[OrderStatus | None] = None, cursor: Cursor = None,
                   limit: PageSize = 50) -> MerchantCreditOrderPage:
        return await orders.merchant_orders(
            merchant_client_id=principal.subject, merchant_order_no=merchant_order_no, status=status, limit=limit,
            cursor=cursor)

    @get("/{order_id:str}", summary="One of my orders")
    async def read(self, principal: Injected[Principal], order_id: FromPath[str]) -> MerchantCreditOrder:
        return await orders.get_order(order_id=order_id, merchant_client_id=principal.subject)

    @post("/{order_id:str}/complete", status_code=HTTP_200_OK,
          summary="authorized → finished; frees the line (on time: a small positive credit record, at most one per "
                  "merchant and citizen per calendar month)")
    async def complete(self, store: Injected[Store], principal: Injected[Principal],
                       order_id: FromPath[str]) -> MerchantCreditOrder:
        return await orders.complete_order(store=store, order_id=order_id, merchant_client_id=principal.subject)

    @post("/{order_id:str}/cancel", status_code=HTTP_200_OK, summary="authorized → cancelled; frees the line")
    async def cancel(self, principal: Injected[Principal], order_id: FromPath[str]) -> MerchantCreditOrder:
        return await orders.cancel_order(order_id=order_id, merchant_client_id=principal.subject)

    @post("/{order_id:str}/default", status_code=HTTP_200_OK,
          summary="authorized → defaulted: the citizen owes `amount_fen` and has the grace period to settle",
          description="Not settled within the grace period, the default becomes a negative credit record "
                      "(source: this merchant) that the citizen can object to. A pay-later order defaults only "
                      "once due (409 `order_not_yet_due` before).")
    async def default(self, principal: Injected[Principal], settings: Injected[Settings], order_id: FromPath[str],
                      data: JSONBody[CreditOrderDefault]) -> MerchantCreditOrder:
        return await orders.default_order(
            order_id=order_id, merchant_client_id=principal.subject, amount_fen=data.amount_fen, reason=data.reason,
            grace_days=settings.credit_order_grace_days, citizen_account=citizen_account_id)

    @post("/{order_id:str}/settle", status_code=HTTP_200_OK,
          summary="defaulted → settled (paid within the grace period); frees the line")
    async def settle(self, principal: Injected[Principal], order_id: FromPath[str]) -> MerchantCreditOrder:
        return await orders.settle_order(order_id=order_id, merchant_client_id=principal.subject)


class MyCreditOrdersController(Controller):
    path = "/v1/me"
    tags = ["citizen"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("/credit-line", summary="My credit line for deposit-free and pay-later orders, and what is held")
    async def credit_line(self, store: Injected[Store], settings: Injected[Settings],
                          person_id: Injected[int]) -> MyCreditLine:
        return await orders.credit_line(store=store, person_id=person_id,
                                        credit_lines=dict(settings.credit_lines_fen))

    @get("/credit-orders", summary="My deposit-free and pay-later orders, newest first")
    async def credit_orders(self, person_id: Injected[int], status: FromQuery[OrderStatus | None] = None,
                            cursor: Cursor = None, limit: PageSize = 50) -> MyCreditOrderPage:
        return await orders.person_orders(person_id=person_id, status=status, limit=limit, cursor=cursor)


__all__ = ["CreditOrdersController", "MyCreditOrdersController", "provide_order_merchant"]
