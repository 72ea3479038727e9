"""HTTP for merchants at the 信易+ counter (`/v1/benefits/...`): verify a citizen's benefit code, redeem a
verified benefit exactly once, and find, read and cancel their own redemptions."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import Provide
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from core.errors import NotFound
from core.settings import Settings
from core.store import Store
from credit.ledger import LedgerWriter
from partners.limits import PartnerDirectory
from scenarios import benefits
from scenarios.schemas import RedeemRequest, RedemptionOut, RedemptionPage, VerifyAnswer, VerifyRequest

# The merchant's Idempotency-Key as the redemption service sees it. The same header is what the idempotency
# middleware (api/idempotency.py) keys remembered answers on; declaring it here documents it on this operation and
# hands it to the service, which also keeps it with the redemption (recovery after a lost answer).
IdempotencyKey = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key", required=False,
    description="Required: the same key and body get the first answer again (retries never redeem twice)")]
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # no control characters (a NUL byte never reaches PostgreSQL)
IdempotencyKeyFilter = Annotated[str | None, QueryParameter(
    min_length=1, max_length=200, pattern=_PRINTABLE,
    description="Only the redemption made with this Idempotency-Key (by you)")]
OrderRefFilter = Annotated[str | None, QueryParameter(
    min_length=1, max_length=64, pattern=_PRINTABLE, description="Only redemptions with this order_ref")]


async def provide_merchant(principal: Injected[Principal],
                           partner_directory: Injected[PartnerDirectory]) -> benefits.Merchant:
    """The calling merchant. The guard just loaded its record into the per-worker partner directory: no
    database read here (verification is a hot path)."""
    record = await partner_directory.get(principal.subject)
    if record is None:
        raise NotFound("partner not found", code="partner_not_found")
    return benefits.Merchant(client_id=record.client_id, name=record.name, kind=record.kind,
                             scenario=record.scenario)


class MerchantBenefitsController(Controller):
    path = "/v1/benefits"
    tags = ["partner", "scenarios"]
    security = [{"BearerAuth": []}]
    dependencies = {"merchant": Provide(provide_merchant)}

    @post("/verify", status_code=HTTP_200_OK, guards=[guards.partner("benefits:verify")],
          summary="Verify a citizen's benefit code: which benefits apply here now (eligibility only)",
          description="Consumes the code. The answer names the applicable benefits with the remaining quota and a "
                      "masked name, never a score, tier or identity; the check appears in the citizen's access log.")
    async def verify(self, data: JSONBody[VerifyRequest], store: Injected[Store], ledger: Injected[LedgerWriter],
                     settings: Injected[Settings], merchant: Injected[benefits.Merchant]) -> VerifyAnswer:
        return await benefits.verify(
            store=store, ledger=ledger, merchant=merchant, code=data.code, scenario=data.scenario,
            code_ttl_seconds=settings.benefit_code_ttl_seconds,
            verification_ttl_seconds=settings.verification_ttl_seconds)

    @post("/redeem", status_code=HTTP_201_CREATED, guards=[guards.partner("benefits:redeem")],
          summary="Redeem a verified benefit (exactly once; Idempotency-Key required)",
          description="The same Idempotency-Key and body answer the first redemption again, with the status and "
                      "body of the first answer, even when that answer was lost to a crash and the verification "
                      "has expired since; the same key with another verification, benefit or order_ref is 422 "
                      "`idempotency_key_reused`; another key for a benefit this verification already redeemed is "
                      "409 `already_redeemed`. Find a redemption later with `GET /v1/benefits/redemptions"
                      "?idempotency_key=` or `?order_ref=`.")
    async def redeem(self, data: JSONBody[RedeemRequest], store: Injected[Store], principal: Injected[Principal],
                     idempotency_key: IdempotencyKey = None) -> RedemptionOut:
        return await benefits.redeem(
            store=store, merchant_client_id=principal.subject, verification_id=data.verification_id,
            benefit_id=data.benefit_id, order_ref=data.order_ref, idempotency_key=idempotency_key)

    @get("/redemptions", guards=[guards.partner("benefits:redeem")],
         summary="My redemptions, newest first (find one by my Idempotency-Key or order_ref)",
         description="Your own redemptions as they are now (`status` redeemed or cancelled, the citizen's remaining "
                     "quota in that period). `idempotency_key` finds the redemption a `POST /v1/benefits/redeem` "
                     "with that key made, `order_ref` those carrying your reference: how you find (and can cancel) "
                     "a redemption whose answer you never received. Other merchants' redemptions are never listed.")
    async def redemptions(self, principal: Injected[Principal], idempotency_key: IdempotencyKeyFilter = None,
                          order_ref: OrderRefFilter = None, cursor: Cursor = None,
                          limit: PageSize = 50) -> RedemptionPage:
        return await benefits.merchant_redemptions(
            merchant_client_id=principal.subject, idempotency_key=idempotency_key, order_ref=order_ref, limit=limit,
            cursor=cursor)

    @get("/redemptions/{redemption_id:str}", guards=[guards.partner("benefits:redeem")],
         summary="One of my redemptions, as it is now",
         description="404 `redemption_not_found` for an unknown id and for another merchant's redemption alike.")
    async def redemption(self, principal: Injected[Principal], redemption_id: FromPath[str]) -> RedemptionOut:
        return await benefits.get_redemption(merchant_client_id=principal.subject, redemption_id=redemption_id)

    @post("/redemptions/{redemption_id:str}/cancel", status_code=HTTP_200_OK,
          guards=[guards.partner("benefits:redeem")],
          summary="Cancel a redemption and give the citizen's quota back (idempotent)")
    async def cancel(self, principal: Injected[Principal], redemption_id: FromPath[str]) -> RedemptionOut:
        return await benefits.cancel_redemption(merchant_client_id=principal.subject, redemption_id=redemption_id)


__all__ = ["MerchantBenefitsController", "provide_merchant"]
