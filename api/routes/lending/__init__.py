"""信易贷 over HTTP: the loan market (products, demands, applications, statistics) and enterprises (members,
consent, portraits), as the one router the app composes. Paths are the handlers' own (the router adds none)."""

from __future__ import annotations

from litestar import Router

from api.routes.lending.applications import LoanApplicationsController
from api.routes.lending.demands import FinancingDemandsController
from api.routes.lending.enterprises import EnterpriseController
from api.routes.lending.portraits import EnterprisePortraitController, bank_portrait
from api.routes.lending.products import LoanProductsController
from api.routes.lending.stats import lending_stats

router = Router(path="/", route_handlers=[
    LoanProductsController, FinancingDemandsController, LoanApplicationsController, lending_stats,
    EnterpriseController, EnterprisePortraitController, bank_portrait,
])

__all__ = ["router"]
