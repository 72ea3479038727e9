"""HTTP for partners about their webhook deliveries: what was sent, how it went, replay."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_200_OK

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from partners import delivery
from partners.schemas import Delivery, DeliveryPage, DeliveryStatus


class WebhookDeliveriesController(Controller):
    path = "/v1/webhooks/deliveries"
    tags = ["partner"]
    security = [{"BearerAuth": []}]
    guards = [guards.partner("webhooks:read")]

    @get("", summary="The calling partner's webhook events and how their delivery went, newest first")
    async def deliveries(self, principal: Injected[Principal], status: FromQuery[DeliveryStatus | None] = None,
                         cursor: Cursor = None, limit: PageSize = 50) -> DeliveryPage:
        return await delivery.list_deliveries(client_id=principal.subject, limit=limit, status=status, cursor=cursor)

    @post("/{event_id:str}/retry", status_code=HTTP_200_OK,
          summary="Replay a dead, failed or undeliverable event now (a delivered one is a 409)")
    async def retry(self, principal: Injected[Principal], event_id: FromPath[str]) -> Delivery:
        return await delivery.retry_delivery(client_id=principal.subject, event_id=event_id)
