"""HTTP for the 信易+ catalog: the public list (`/v1/scenarios`) and the operators' scenarios and benefits
(`/v1/admin/scenarios`, `/v1/admin/benefits`)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED

from api import guards
from scenarios import catalog
from scenarios.schemas import (
    AdminBenefit,
    AdminScenario,
    BenefitCreate,
    BenefitPatch,
    BenefitStatus,
    CatalogScenario,
    ScenarioCreate,
    ScenarioPatch,
)


def _changes(patch_body: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually sent (an explicit null is a change; an absent field is not)."""
    return {name: value for name, value in msgspec.structs.asdict(patch_body).items() if value is not msgspec.UNSET}


@get("/v1/scenarios", tags=["scenarios"], summary="The 信易+ scenarios and their benefits (public)",
     description="Active scenarios with their active, unexpired benefits and rules. Served from a per-worker "
                 "cache: operators' changes show within 5 s (the catalog's bound).")
async def public_scenarios() -> list[CatalogScenario]:
    return await catalog.public_catalog()


class AdminScenariosController(Controller):
    path = "/v1/admin/scenarios"
    tags = ["admin", "scenarios"]
    security = [{"BearerAuth": []}]

    @get("", guards=[guards.operator("officer", "auditor")], summary="Every 信易+ scenario, active or paused")
    async def list(self) -> list[AdminScenario]:
        return await catalog.list_scenarios()

    @post("", status_code=HTTP_201_CREATED, guards=[guards.operator("officer")], summary="Add a scenario")
    async def create(self, data: JSONBody[ScenarioCreate]) -> AdminScenario:
        return await catalog.create_scenario(code=data.code, name=data.name, description=data.description,
                                             status=data.status, sort_order=data.sort_order)

    @patch("/{code:str}", guards=[guards.operator("officer")],
           summary="Rename, describe, reorder, pause or resume a scenario")
    async def update(self, code: FromPath[str], data: JSONBody[ScenarioPatch]) -> AdminScenario:
        return await catalog.update_scenario(code=code, changes=_changes(data))


class AdminBenefitsController(Controller):
    path = "/v1/admin/benefits"
    tags = ["admin", "scenarios"]
    security = [{"BearerAuth": []}]

    @get("", guards=[guards.operator("officer", "auditor")], summary="Benefits and their rules")
    async def list(self, scenario: FromQuery[str | None] = None,
                   status: FromQuery[BenefitStatus | None] = None) -> list[AdminBenefit]:
        return await catalog.list_benefits(scenario=scenario, status=status)

    @post("", status_code=HTTP_201_CREATED, guards=[guards.operator("officer")], summary="Add a benefit")
    async def create(self, data: JSONBody[BenefitCreate]) -> AdminBenefit:
        return await catalog.create_benefit(
            scenario=data.scenario, name=data.name, description=data.description, kind=data.kind, value=data.value,
            min_tier=data.min_tier, min_score=data.min_score, quota_per_period=data.quota_per_period,
            period=data.period, merchants=data.merchants, valid_from=data.valid_from, valid_until=data.valid_until,
            status=data.status)

    @patch("/{benefit_id:str}", guards=[guards.operator("officer")],
           summary="Change a benefit's rule, pause or retire it (takes effect at once)")
    async def update(self, benefit_id: FromPath[str], data: JSONBody[BenefitPatch]) -> AdminBenefit:
        return await catalog.update_benefit(benefit_id=benefit_id, changes=_changes(data))


__all__ = ["AdminBenefitsController", "AdminScenariosController", "public_scenarios"]
