"""HTTP for 信易+ benefits: the public catalog (`/v1/scenarios`), the operators' catalog
(`/v1/admin/scenarios`, `/v1/admin/benefits`), the citizen's benefits, codes and redemptions (`/v1/me/...`)
and the merchant's verification and redemption (`/v1/benefits/...`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.citizens import bound_person_id
from api.auth import guards
from api.pagination import Cursor, PageSize
from core.errors import NotFound
from scenarios import benefits, catalog
from scenarios.schemas import (
    AdminBenefit,
    AdminScenario,
    ApplicableBenefit,
    BenefitCodeOut,
    BenefitCodeRequest,
    BenefitCreate,
    BenefitPatch,
    BenefitStatus,
    CatalogBenefit,
    CatalogScenario,
    MyBenefit,
    MyBenefits,
    MyRedemption,
    MyRedemptionPage,
    RedeemRequest,
    RedemptionOut,
    RedemptionPage,
    ScenarioCreate,
    ScenarioPatch,
    VerifyAnswer,
    VerifyRequest,
)

IdempotencyKey = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key", required=False,
    description="Required: the same key and body get the first answer again (retries never redeem twice)")]
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # no control characters (a NUL byte never reaches PostgreSQL)
IdempotencyKeyFilter = Annotated[str | None, QueryParameter(
    min_length=1, max_length=200, pattern=_PRINTABLE,
    description="Only the redemption made with this Idempotency-Key (by you)")]
OrderRefFilter = Annotated[str | None, QueryParameter(
    min_length=1, max_length=64, pattern=_PRINTABLE, description="Only redemptions with this order_ref")]


def _changes(patch_body: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually sent (an explicit null is a change; an absent field is not)."""
    return {name: value for name, value in msgspec.structs.asdict(patch_body).items() if value is not msgspec.UNSET}


def _admin_scenario(info: catalog.ScenarioInfo) -> AdminScenario:
    return AdminScenario(code=info.code, name=info.name, description=info.description, status=info.status,
                         sort_order=info.sort_order, created_at=info.created_at, updated_at=info.updated_at)


def _admin_benefit(rule: catalog.BenefitRule) -> AdminBenefit:
    return AdminBenefit(
        id=rule.id, scenario=rule.scenario, name=rule.name, description=rule.description, kind=rule.kind,
        value=rule.value, min_tier=rule.min_tier, min_score=rule.min_score, quota_per_period=rule.quota_per_period,
        period=rule.period, merchants=list(rule.merchants), valid_from=rule.valid_from, valid_until=rule.valid_until,
        status=rule.status, created_at=rule.created_at, updated_at=rule.updated_at)


def _redemption(view: benefits.RedemptionView) -> RedemptionOut:
    return RedemptionOut(
        id=view.id, verification_id=view.verification_id, benefit_id=view.benefit_id, benefit_name=view.benefit_name,
        kind=view.kind, value=view.value, scenario=view.scenario, order_ref=view.order_ref, status=view.status,
        period_key=view.period_key, remaining_quota=view.remaining_quota, redeemed_at=view.redeemed_at,
        cancelled_at=view.cancelled_at)


# ---------------------------------------------------------------- public


@get("/v1/scenarios", tags=["scenarios"], summary="The 信易+ scenarios and their benefits (public)",
     description="Active scenarios with their active, unexpired benefits and rules. Served from a per-worker "
                 "cache: operators' changes show within 5 s (the catalog's bound).")
async def public_scenarios() -> list[CatalogScenario]:
    snapshot = await catalog.CATALOG.get()
    now = datetime.now(UTC)
    return [
        CatalogScenario(code=s.code, name=s.name, description=s.description, benefits=[
            CatalogBenefit(id=r.id, name=r.name, description=r.description, kind=r.kind, value=r.value,
                           min_tier=r.min_tier, min_score=r.min_score, quota_per_period=r.quota_per_period,
                           period=r.period, merchants=list(benefits.merchant_names(snapshot, r)),
                           valid_from=r.valid_from, valid_until=r.valid_until)
            for r in snapshot.active.get(s.code, ()) if r.valid_until is None or r.valid_until > now])
        for s in snapshot.ordered_scenarios() if s.status == "active"]


# ---------------------------------------------------------------- operators


class AdminScenariosController(Controller):
    path = "/v1/admin/scenarios"
    tags = ["admin", "scenarios"]
    security = [{"BearerAuth": []}]

    @get("", guards=[guards.operator("officer", "auditor")], summary="Every 信易+ scenario, active or paused")
    async def list(self) -> list[AdminScenario]:
        return [_admin_scenario(s) for s in await catalog.list_scenarios()]

    @post("", status_code=HTTP_201_CREATED, guards=[guards.operator("officer")], summary="Add a scenario")
    async def create(self, data: JSONBody[ScenarioCreate]) -> AdminScenario:
        info = await catalog.create_scenario(code=data.code, name=data.name, description=data.description,
                                             status=data.status, sort_order=data.sort_order)
        return _admin_scenario(info)

    @patch("/{code:str}", guards=[guards.operator("officer")],
           summary="Rename, describe, reorder, pause or resume a scenario")
    async def update(self, code: FromPath[str], data: JSONBody[ScenarioPatch]) -> AdminScenario:
        return _admin_scenario(await catalog.update_scenario(code=code, changes=_changes(data)))


class AdminBenefitsController(Controller):
    path = "/v1/admin/benefits"
    tags = ["admin", "scenarios"]
    security = [{"BearerAuth": []}]

    @get("", guards=[guards.operator("officer", "auditor")], summary="Benefits and their rules")
    async def list(self, scenario: FromQuery[str | None] = None,
                   status: FromQuery[BenefitStatus | None] = None) -> list[AdminBenefit]:
        return [_admin_benefit(r) for r in await catalog.list_benefits(scenario=scenario, status=status)]

    @post("", status_code=HTTP_201_CREATED, guards=[guards.operator("officer")], summary="Add a benefit")
    async def create(self, data: JSONBody[BenefitCreate]) -> AdminBenefit:
        rule = await catalog.create_benefit(
            scenario=data.scenario, name=data.name, description=data.description, kind=data.kind, value=data.value,
            min_tier=data.min_tier, min_score=data.min_score, quota_per_period=data.quota_per_period,
            period=data.period, merchants=data.merchants, valid_from=data.valid_from, valid_until=data.valid_until,
            status=data.status)
        return _admin_benefit(rule)

    @patch("/{benefit_id:str}", guards=[guards.operator("officer")],
           summary="Change a benefit's rule, pause or retire it (takes effect at once)")
    async def update(self, benefit_id: FromPath[str], data: JSONBody[BenefitPatch]) -> AdminBenefit:
        return _admin_benefit(await catalog.update_benefit(benefit_id=benefit_id, changes=_changes(data)))


# ---------------------------------------------------------------- citizens


class MyBenefitsController(Controller):
    path = "/v1/me"
    tags = ["citizen", "scenarios"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("/benefits", summary="My 信易+ benefits: what applies now and, for what does not, why")
    async def benefits(self, request: Request[Any, Any, Any]) -> MyBenefits:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        as_of, views = await benefits.my_benefits(store=guards.app_context(request).store, person_id=person_id)
        return MyBenefits(as_of=as_of, items=[MyBenefit(
            id=v.rule.id, scenario=v.scenario.code, scenario_name=v.scenario.name, name=v.rule.name,
            description=v.rule.description, kind=v.rule.kind, value=v.rule.value, period=v.rule.period,
            quota_per_period=v.rule.quota_per_period, remaining_quota=v.eligibility.remaining,
            applies=v.eligibility.applies, reason_code=v.eligibility.code, reason=v.eligibility.reason,
            merchants=list(v.merchant_names), valid_until=v.rule.valid_until) for v in views])

    @post("/benefit-codes", status_code=HTTP_201_CREATED,
          summary="A single-use benefit code to show a merchant (QR; valid at most 60 s)")
    async def benefit_code(self, request: Request[Any, Any, Any],
                           data: JSONBody[BenefitCodeRequest | None] = None) -> BenefitCodeOut:
        ctx = guards.app_context(request)
        account_id = guards.principal_of(request).subject
        person_id = await bound_person_id(account_id=account_id)
        issued = await benefits.issue_code(
            store=ctx.store, account_id=account_id, person_id=person_id, scenario=data.scenario if data else None,
            ttl_seconds=ctx.settings.benefit_code_ttl_seconds, per_hour=ctx.settings.benefit_codes_per_hour)
        return BenefitCodeOut(code=issued.code, expires_at=issued.expires_at, ttl_seconds=issued.ttl_seconds,
                              scenario=issued.scenario, qr_svg=benefits.qr_svg(issued.code))

    @get("/redemptions", summary="Where I used my benefits, newest first")
    async def redemptions(self, request: Request[Any, Any, Any], cursor: Cursor = None,
                          limit: PageSize = 50) -> MyRedemptionPage:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        views, next_cursor = await benefits.my_redemptions(person_id=person_id, limit=limit, cursor=cursor)
        return MyRedemptionPage(items=[MyRedemption(
            id=v.id, benefit_id=v.benefit_id, benefit_name=v.benefit_name, kind=v.kind, value=v.value,
            scenario=v.scenario, merchant_name=v.merchant_name, order_ref=v.order_ref, status=v.status,
            redeemed_at=v.redeemed_at, cancelled_at=v.cancelled_at) for v in views], next_cursor=next_cursor)


# ---------------------------------------------------------------- merchants


async def _merchant(request: Request[Any, Any, Any]) -> benefits.Merchant:
    # The guard just loaded this record into the per-worker partner directory: no database read here.
    record = await guards.app_context(request).partners.get(guards.principal_of(request).subject)
    if record is None:
        raise NotFound("partner not found", code="partner_not_found")
    return benefits.Merchant(client_id=record.client_id, name=record.name, kind=record.kind,
                             scenario=record.scenario)


class MerchantBenefitsController(Controller):
    path = "/v1/benefits"
    tags = ["partner", "scenarios"]
    security = [{"BearerAuth": []}]

    @post("/verify", status_code=HTTP_200_OK, guards=[guards.partner("benefits:verify")],
          summary="Verify a citizen's benefit code: which benefits apply here now (eligibility only)",
          description="Consumes the code. The answer names the applicable benefits with the remaining quota and a "
                      "masked name, never a score, tier or identity; the check appears in the citizen's access log.")
    async def verify(self, request: Request[Any, Any, Any], data: JSONBody[VerifyRequest]) -> VerifyAnswer:
        ctx = guards.app_context(request)
        result = await benefits.verify(
            store=ctx.store, ledger=ctx.ledger, merchant=await _merchant(request), code=data.code,
            scenario=data.scenario, code_ttl_seconds=ctx.settings.benefit_code_ttl_seconds,
            verification_ttl_seconds=ctx.settings.verification_ttl_seconds)
        return VerifyAnswer(
            verification_id=result.verification.id, expires_at=result.expires_at,
            scenario=result.verification.scenario, masked_name=result.masked_name,
            benefits=[ApplicableBenefit(benefit_id=r.id, name=r.name, kind=r.kind, value=r.value,
                                        remaining_quota=remaining, period=r.period)
                      for r, remaining in result.benefits])

    @post("/redeem", status_code=HTTP_201_CREATED, guards=[guards.partner("benefits:redeem")],
          summary="Redeem a verified benefit (exactly once; Idempotency-Key required)",
          description="The same Idempotency-Key and body answer the first redemption again, with the status and "
                      "body of the first answer, even when that answer was lost to a crash and the verification "
                      "has expired since; the same key with another verification, benefit or order_ref is 422 "
                      "`idempotency_key_reused`; another key for a benefit this verification already redeemed is "
                      "409 `already_redeemed`. Find a redemption later with `GET /v1/benefits/redemptions"
                      "?idempotency_key=` or `?order_ref=`.")
    async def redeem(self, request: Request[Any, Any, Any], data: JSONBody[RedeemRequest],
                     idempotency_key: IdempotencyKey = None) -> RedemptionOut:
        view = await benefits.redeem(
            store=guards.app_context(request).store, merchant_client_id=guards.principal_of(request).subject,
            verification_id=data.verification_id, benefit_id=data.benefit_id, order_ref=data.order_ref,
            idempotency_key=idempotency_key)
        return _redemption(view)

    @get("/redemptions", guards=[guards.partner("benefits:redeem")],
         summary="My redemptions, newest first (find one by my Idempotency-Key or order_ref)",
         description="Your own redemptions as they are now (`status` redeemed or cancelled, the citizen's remaining "
                     "quota in that period). `idempotency_key` finds the redemption a `POST /v1/benefits/redeem` "
                     "with that key made, `order_ref` those carrying your reference: how you find (and can cancel) "
                     "a redemption whose answer you never received. Other merchants' redemptions are never listed.")
    async def redemptions(self, request: Request[Any, Any, Any], idempotency_key: IdempotencyKeyFilter = None,
                          order_ref: OrderRefFilter = None, cursor: Cursor = None,
                          limit: PageSize = 50) -> RedemptionPage:
        views, next_cursor = await benefits.merchant_redemptions(
            merchant_client_id=guards.principal_of(request).subject, idempotency_key=idempotency_key,
            order_ref=order_ref, limit=limit, cursor=cursor)
        return RedemptionPage(items=[_redemption(v) for v in views], next_cursor=next_cursor)

    @get("/redemptions/{redemption_id:str}", guards=[guards.partner("benefits:redeem")],
         summary="One of my redemptions, as it is now",
         description="404 `redemption_not_found` for an unknown id and for another merchant's redemption alike.")
    async def redemption(self, request: Request[Any, Any, Any], redemption_id: FromPath[str]) -> RedemptionOut:
        return _redemption(await benefits.get_redemption(merchant_client_id=guards.principal_of(request).subject,
                                                         redemption_id=redemption_id))

    @post("/redemptions/{redemption_id:str}/cancel", status_code=HTTP_200_OK,
          guards=[guards.partner("benefits:redeem")],
          summary="Cancel a redemption and give the citizen's quota back (idempotent)")
    async def cancel(self, request: Request[Any, Any, Any], redemption_id: FromPath[str]) -> RedemptionOut:
        view = await benefits.cancel_redemption(merchant_client_id=guards.principal_of(request).subject,
                                                redemption_id=redemption_id)
        return _redemption(view)


__all__ = ["AdminBenefitsController", "AdminScenariosController", "MerchantBenefitsController",
           "MyBenefitsController", "public_scenarios"]
