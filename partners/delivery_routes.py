"""HTTP for partners about their webhook deliveries: what was sent, how it went, replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_200_OK

from api.auth import guards
from api.pagination import Cursor, PageSize
from core.pagination import Page
from partners import delivery

DeliveryStatus = Literal["pending", "delivering", "delivered", "failed", "dead", "no_endpoint"]


class LastAttempt(msgspec.Struct, omit_defaults=True):
    at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None


class Delivery(msgspec.Struct, omit_defaults=True):
    """One event addressed to the partner; `id` is the `webhook-id` header its deliveries carry."""

    id: str
    type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_attempt: LastAttempt | None = None


class DeliveryPage(Page[Delivery]):
    pass


def _delivery(view: delivery.DeliveryView) -> Delivery:
    last = view.last_attempt
    return Delivery(
        id=view.id, type=view.topic, status=view.status, attempts=view.attempts, created_at=view.created_at,
        next_attempt_at=view.next_attempt_at, delivered_at=view.delivered_at,
        last_attempt=LastAttempt(at=last.at, duration_ms=last.duration_ms, status_code=last.status_code,
                                 error=last.error) if last else None)


class WebhookDeliveriesController(Controller):
    path = "/v1/webhooks/deliveries"
    tags = ["partner"]
    security = [{"BearerAuth": []}]
    guards = [guards.partner("webhooks:read")]

    @get("", summary="The calling partner's webhook events and how their delivery went, newest first")
    async def deliveries(self, request: Request[Any, Any, Any], status: FromQuery[DeliveryStatus | None] = None,
                         cursor: Cursor = None, limit: PageSize = 50) -> DeliveryPage:
        views, next_cursor = await delivery.list_deliveries(
            client_id=guards.principal_of(request).subject, limit=limit, status=status, cursor=cursor)
        return DeliveryPage(items=[_delivery(v) for v in views], next_cursor=next_cursor)

    @post("/{event_id:str}/retry", status_code=HTTP_200_OK,
          summary="Replay a dead, failed or undeliverable event now (a delivered one is a 409)")
    async def retry(self, request: Request[Any, Any, Any], event_id: FromPath[str]) -> Delivery:
        view = await delivery.retry_delivery(client_id=guards.principal_of(request).subject, event_id=event_id)
        return _delivery(view)
