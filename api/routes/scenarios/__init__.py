"""HTTP for 信易+ (the `scenarios` domain): the catalog, the citizen's benefits, codes, redemptions, credit line,
credit orders and credit passport, the merchant's verification, redemption and credit orders, and passport
verification for peer cities. ONE router for the domain, mounted by the app factory; paths are absolute."""

from __future__ import annotations

from litestar import Router

from api.routes.scenarios.benefits import MyBenefitsController
from api.routes.scenarios.catalog import AdminBenefitsController, AdminScenariosController, public_scenarios
from api.routes.scenarios.credit_orders import CreditOrdersController, MyCreditOrdersController
from api.routes.scenarios.federation import FederationController
from api.routes.scenarios.merchants import MerchantBenefitsController
from api.routes.scenarios.passports import MyPassportController

router = Router(path="/", route_handlers=[
    MyPassportController, FederationController,
    CreditOrdersController, MyCreditOrdersController,
    public_scenarios, AdminScenariosController, AdminBenefitsController, MyBenefitsController,
    MerchantBenefitsController,
])

__all__ = ["router"]
