"""Financing demands: a member of an enterprise posts one, sees its ranked matches, and submits it to banks."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from core.settings import Settings
from core.store import Store
from credit.identity import FieldCipher
from lending import demands
from lending.schemas import DemandCreate, DemandOut, DemandPage, DemandSubmit


class FinancingDemandsController(Controller):
    path = "/v1/lending/demands"
    tags = ["lending"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @post("", status_code=HTTP_201_CREATED,
          summary="Post a financing demand for an enterprise you are a member of; get ranked matches with reasons")
    async def create(self, *, data: JSONBody[DemandCreate], store: Injected[Store], cipher: Injected[FieldCipher],
                     principal: Injected[Principal]) -> DemandOut:
        return await demands.create_demand(
            store=store, cipher=cipher, account_id=principal.subject, uscc=data.uscc, amount_fen=data.amount_fen,
            term_months=data.term_months, purpose=data.purpose, guarantee_offered=data.guarantee_offered,
            max_rate_bp=data.max_rate_bp)

    @get("", summary="The demands of an enterprise you are a member of, newest first")
    async def list(self, *, uscc: FromQuery[str], cipher: Injected[FieldCipher], principal: Injected[Principal],
                   cursor: Cursor = None, limit: PageSize = 20) -> DemandPage:
        return await demands.list_demands(cipher=cipher, account_id=principal.subject, uscc=uscc, limit=limit,
                                          cursor=cursor)

    @get("/{demand_id:str}",
         summary="A demand: its matches, and per bank the application's timeline, deadline and overdue flag")
    async def read(self, *, demand_id: FromPath[str], principal: Injected[Principal]) -> DemandOut:
        return await demands.get_demand(account_id=principal.subject, demand_id=demand_id)

    @post("/{demand_id:str}/submit", status_code=HTTP_200_OK,
          summary="Submit to the banks of chosen matched products, authorizing each (consent must be true)")
    async def submit(self, *, demand_id: FromPath[str], data: JSONBody[DemandSubmit], store: Injected[Store],
                     cipher: Injected[FieldCipher], settings: Injected[Settings],
                     principal: Injected[Principal]) -> DemandOut:
        return await demands.submit_demand(
            store=store, cipher=cipher, account_id=principal.subject, demand_id=demand_id,
            product_ids=data.product_ids, consent=data.consent, calendar=settings.calendar,
            working_days=settings.lending_response_working_days)
