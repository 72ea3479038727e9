"""HTTP for a citizen's 信易+ benefits (`/v1/me/...`): what applies and why not, single-use benefit codes, and
where they were used."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from core.settings import Settings
from core.store import Store
from scenarios import benefits
from scenarios.schemas import BenefitCodeOut, BenefitCodeRequest, MyBenefits, MyRedemptionPage


class MyBenefitsController(Controller):
    path = "/v1/me"
    tags = ["citizen", "scenarios"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("/benefits", summary="My 信易+ benefits: what applies now and, for what does not, why")
    async def benefits(self, store: Injected[Store], person_id: Injected[int]) -> MyBenefits:
        return await benefits.my_benefits(store=store, person_id=person_id)

    @post("/benefit-codes", status_code=HTTP_201_CREATED,
          summary="A single-use benefit code to show a merchant (QR; valid at most 60 s)")
    async def benefit_code(self, store: Injected[Store], settings: Injected[Settings],
                           principal: Injected[Principal], person_id: Injected[int],
                           data: JSONBody[BenefitCodeRequest | None] = None) -> BenefitCodeOut:
        return await benefits.issue_code(
            store=store, account_id=principal.subject, person_id=person_id, scenario=data.scenario if data else None,
            ttl_seconds=settings.benefit_code_ttl_seconds, per_hour=settings.benefit_codes_per_hour)

    @get("/redemptions", summary="Where I used my benefits, newest first")
    async def redemptions(self, person_id: Injected[int], cursor: Cursor = None,
                          limit: PageSize = 50) -> MyRedemptionPage:
        return await benefits.my_redemptions(person_id=person_id, limit=limit, cursor=cursor)


__all__ = ["MyBenefitsController"]
