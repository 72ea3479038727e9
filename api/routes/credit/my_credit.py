"""The citizen's own credit data (`/v1/me`): score and history, records, the authorizations asked of them
and their decisions, and the access log. Every handler works on the person bound to the logged-in account
(`person_id`; 403 `identity_not_bound` before binding)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from api import guards
from api.context import AppContext
from api.dependencies import Injected
from api.pagination import Cursor, PageSize, SeqCursor
from core.store import Store
from credit import my_credit
from credit.schemas import (
    AccessLogPage,
    ApprovedAuthorization,
    CitizenAuthorization,
    CitizenAuthorizationPage,
    Decision,
    MyScore,
    PartnerRevocation,
    RecordPage,
    ScoreHistoryPage,
)


class MyCreditController(Controller):
    path = "/v1/me"
    tags = ["citizen"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("/score", summary="My score, its dimensions and the main reasons")
    async def score(self, *, person_id: Injected[int], store: Injected[Store]) -> MyScore:
        return await my_credit.current_score(store=store, person_id=person_id)

    @get("/score/history", summary="How my score changed")
    async def score_history(self, *, person_id: Injected[int], cursor: Cursor = None,
                            limit: PageSize = 30) -> ScoreHistoryPage:
        return await my_credit.score_history(person_id=person_id, limit=limit, cursor=cursor)

    @get("/records", summary="My credit records, newest first")
    async def records(self, *, person_id: Injected[int], cursor: Cursor = None, limit: PageSize = 50) -> RecordPage:
        return await my_credit.records(person_id=person_id, limit=limit, cursor=cursor)

    @get("/authorizations", summary="Every authorization asked of me, newest first")
    async def authorizations(self, *, person_id: Injected[int], cursor: Cursor = None,
                             limit: PageSize = 50) -> CitizenAuthorizationPage:
        return await my_credit.authorizations(person_id=person_id, limit=limit, cursor=cursor)

    @post("/authorizations/{authorization_id:str}/approve", status_code=HTTP_200_OK,
          summary="Approve; returns a signed consent receipt")
    async def approve(self, *, authorization_id: FromPath[str], person_id: Injected[int],
                      ctx: Injected[AppContext]) -> ApprovedAuthorization:
        # The context for its token service, which signs the consent receipt (no dependency of its own yet).
        return await my_credit.approve(public_id=authorization_id, person_id=person_id, signer=ctx.tokens)

    @post("/authorizations/{authorization_id:str}/reject", status_code=HTTP_200_OK, summary="Refuse a request")
    async def reject(self, *, authorization_id: FromPath[str], person_id: Injected[int],
                     data: JSONBody[Decision | None] = None) -> CitizenAuthorization:
        return await my_credit.reject(public_id=authorization_id, person_id=person_id,
                                      reason=data.reason if data else None)

    @post("/authorizations/{authorization_id:str}/revoke", status_code=HTTP_200_OK,
          summary="Revoke; effective for the very next request")
    async def revoke(self, *, authorization_id: FromPath[str], person_id: Injected[int], store: Injected[Store],
                     data: JSONBody[Decision | None] = None) -> CitizenAuthorization:
        return await my_credit.revoke(public_id=authorization_id, person_id=person_id,
                                      reason=data.reason if data else None, store=store)

    @post("/partners/{client_id:str}/revoke-all", status_code=HTTP_200_OK,
          summary="Revoke everything one partner holds about me (and refuse its waiting requests)")
    async def revoke_partner(self, *, client_id: FromPath[str], person_id: Injected[int], store: Injected[Store],
                             data: JSONBody[Decision | None] = None) -> PartnerRevocation:
        return await my_credit.revoke_partner(partner_client_id=client_id, person_id=person_id,
                                              reason=data.reason if data else None, store=store)

    @get("/access-log", summary="Every access to my credit data (tamper-evident ledger)")
    async def access_log(self, *, person_id: Injected[int], cursor: SeqCursor = None,
                         limit: PageSize = 50) -> AccessLogPage:
        return await my_credit.access_log(person_id=person_id, limit=limit, cursor=cursor)
