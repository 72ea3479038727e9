"""HTTP of the citizen's notices (`/v1/me/notices`) and of how they reach them (`/v1/me/notice-preferences`).

Citizen bearer token; every operation acts on the caller's own account only (another citizen's notice is a 404).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post, put
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from partners import notices
from partners.schemas import NoticeOut, NoticePage, NoticePreferences, NoticePreferencesUpdate, NoticesMarked

NoticeId = Annotated[str, Parameter(pattern=r"^[A-Za-z0-9_]{1,32}$", description="the notice's id")]


class NoticesController(Controller):
    path = "/v1/me"
    tags = ["citizen"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("/notices", summary="My notices, newest first")
    async def list_notices(self, *, principal: Injected[Principal], limit: PageSize = 20, cursor: Cursor = None,
                           unread: Annotated[bool, QueryParameter(
                               description="only notices not read yet")] = False) -> NoticePage:
        return await notices.list_notices(account_id=principal.subject, limit=limit, cursor=cursor, unread=unread)

    @post("/notices/{notice_id:str}/read", status_code=HTTP_200_OK, summary="Mark one of my notices read")
    async def mark_read(self, *, notice_id: NoticeId, principal: Injected[Principal]) -> NoticeOut:
        return await notices.mark_read(account_id=principal.subject, notice_id=notice_id)

    @post("/notices/read-all", status_code=HTTP_200_OK, summary="Mark all my notices read")
    async def mark_all_read(self, *, principal: Injected[Principal]) -> NoticesMarked:
        return await notices.mark_all_read(account_id=principal.subject)

    @get("/notice-preferences", summary="How my notices reach me, per kind")
    async def preferences(self, *, principal: Injected[Principal]) -> NoticePreferences:
        return await notices.preferences(account_id=principal.subject)

    @put("/notice-preferences", summary="Choose, per kind, whether and how my notices reach me")
    async def update_preferences(self, *, data: JSONBody[NoticePreferencesUpdate], principal: Injected[Principal]
                                 ) -> NoticePreferences:
        return await notices.update_preferences(account_id=principal.subject, items=data.items,
                                                wechat_openid_value=data.wechat_openid)
