"""HTTP of the partners domain as one Router: partners about themselves (`/v1/partners/me`), their webhook
deliveries (`/v1/webhooks/deliveries`), the citizens' notices (`/v1/me/notices`,
`/v1/me/notice-preferences`) and the operators' partner registry (`/v1/admin/partners`).

The controllers keep their full paths, so the Router adds none.
"""

from __future__ import annotations

from litestar import Router

from api.routes.partners.admin import AdminPartnersController
from api.routes.partners.deliveries import WebhookDeliveriesController
from api.routes.partners.me import PartnerSelfController
from api.routes.partners.notices import NoticesController

router = Router(path="/", route_handlers=[PartnerSelfController, AdminPartnersController,
                                          WebhookDeliveriesController, NoticesController])
