"""The credit domain's HTTP surface as one Litestar `Router`: partner authorizations and score reads, the
citizen's own credit data and rights, departments' credit checks, data-source ingest, the operators' review,
catalogs and statistics, and the public ledger checkpoint. Paths are absolute in each controller, so the
router sits at `/`."""

from __future__ import annotations

from litestar import Router

from api.routes.credit.authorizations import PartnerAuthorizationController
from api.routes.credit.checks import AdminListsController, AdminMeasuresController, CreditChecksController
from api.routes.credit.ingest import RecordIngestController
from api.routes.credit.ledger import latest_ledger_checkpoint
from api.routes.credit.my_credit import MyCreditController
from api.routes.credit.objections import AdminObjectionsController, AdminRepairsController, MyRightsController
from api.routes.credit.purposes import purpose_catalog
from api.routes.credit.scores import ScoresController
from api.routes.credit.stats import daily_stats

router = Router(path="/", route_handlers=[
    MyCreditController, PartnerAuthorizationController, ScoresController, latest_ledger_checkpoint, purpose_catalog,
    MyRightsController, AdminObjectionsController, AdminRepairsController,
    RecordIngestController, CreditChecksController, AdminMeasuresController, AdminListsController, daily_stats,
])
