"""The subject's rights over their data: objections (异议), credit repair (信用修复) and the data
export, and the operators' review of objections and repairs (`/v1/admin`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from litestar import Controller, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.citizens import account_view
from accounts.tokens import Principal
from api import guards
from api.context import AppContext
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from core.settings import Settings
from core.store import Store
from credit import export, objections
from credit.schemas import (
    AdminObjection,
    AdminObjectionPage,
    AdminRepair,
    AdminRepairPage,
    MyObjection,
    MyObjectionPage,
    MyRepair,
    MyRepairPage,
    ObjectionCreate,
    ObjectionDecision,
    PersonalDataExport,
    RepairCreate,
    RepairDecision,
)

_NO_STORE = [ResponseHeader(name="Cache-Control", value="no-store"), ResponseHeader(name="Pragma", value="no-cache")]


def _admin_objection(view: objections.ObjectionView, *, now: datetime) -> AdminObjection:
    return AdminObjection(
        id=view.id, record_id=view.record.id, person_id=view.person_public_id, status=view.status,
        overdue=view.overdue_at(now), reason=view.reason, due_at=view.due_at, created_at=view.created_at,
        record_status_before=view.record_status_before, record=export.record_brief(view.record),
        decided_at=view.decided_at, decided_by=view.decided_by, decision_note=view.decision_note)


def _admin_repair(view: objections.RepairView) -> AdminRepair:
    return AdminRepair(
        id=view.id, record_id=view.record.id, person_id=view.person_public_id, status=view.status,
        statement=view.statement, created_at=view.created_at, record=export.record_brief(view.record),
        decided_at=view.decided_at, decided_by=view.decided_by, decision_note=view.decision_note)


class MyRightsController(Controller):
    path = "/v1/me"
    tags = ["citizen"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @post("/objections", status_code=HTTP_201_CREATED,
          summary="Object to one of my records (异议); it is flagged at once and decided within the time limit")
    async def file_objection(self, *, data: JSONBody[ObjectionCreate], person_id: Injected[int],
                             store: Injected[Store], settings: Injected[Settings]) -> MyObjection:
        view = await objections.file_objection(store=store, calendar=settings.calendar, person_id=person_id,
                                               record_id=data.record_id, reason=data.reason)
        return export.my_objection(view)

    @get("/objections", summary="My objections, newest first")
    async def list_objections(self, *, person_id: Injected[int], cursor: Cursor = None,
                              limit: PageSize = 50) -> MyObjectionPage:
        views, next_cursor = await objections.objections_of_person(person_id=person_id, limit=limit, cursor=cursor)
        return MyObjectionPage(items=[export.my_objection(v) for v in views], next_cursor=next_cursor)

    @post("/repairs", status_code=HTTP_201_CREATED, summary="Apply for credit repair (信用修复) of a negative record")
    async def file_repair(self, *, data: JSONBody[RepairCreate], person_id: Injected[int]) -> MyRepair:
        view = await objections.file_repair(person_id=person_id, record_id=data.record_id, statement=data.statement)
        return export.my_repair(view)

    @get("/repairs", summary="My credit repair applications, newest first")
    async def list_repairs(self, *, person_id: Injected[int], cursor: Cursor = None,
                           limit: PageSize = 50) -> MyRepairPage:
        views, next_cursor = await objections.repairs_of_person(person_id=person_id, limit=limit, cursor=cursor)
        return MyRepairPage(items=[export.my_repair(v) for v in views], next_cursor=next_cursor)

    @get("/export", response_headers=_NO_STORE,
         summary="Everything held about me in one document (unmasked: for the subject only)")
    async def export_data(self, *, person_id: Injected[int], principal: Injected[Principal],
                          ctx: Injected[AppContext]) -> PersonalDataExport:
        # The context because the account's view (phone, binding) is read through it (accounts service).
        account = await account_view(ctx=ctx, account_id=principal.subject)
        return await export.export_person(store=ctx.store, cipher=ctx.cipher, person_id=person_id,
                                          account_id=account.account_id, account_phone=account.phone,
                                          bound_at=account.bound_at)


class AdminObjectionsController(Controller):
    path = "/v1/admin/objections"
    tags = ["admin"]
    security = [{"BearerAuth": []}]

    @get("", guards=[guards.operator("officer", "auditor")],
         summary="Objections, newest first; `overdue=true` lists open ones past their due date")
    async def list(self, status: FromQuery[Literal["open", "upheld", "rejected"] | None] = None,
                   overdue: FromQuery[bool | None] = None, cursor: Cursor = None,
                   limit: PageSize = 50) -> AdminObjectionPage:
        now = datetime.now(UTC)
        views, next_cursor = await objections.list_objections(status=status, overdue=overdue, limit=limit,
                                                              cursor=cursor, now=now)
        return AdminObjectionPage(items=[_admin_objection(v, now=now) for v in views], next_cursor=next_cursor)

    @post("/{objection_id:str}/decide", status_code=HTTP_200_OK, guards=[guards.operator("officer")],
          summary="Uphold (withdraw or correct the record) or reject (restore it); decided once")
    async def decide(self, *, objection_id: FromPath[str], data: JSONBody[ObjectionDecision],
                     store: Injected[Store], principal: Injected[Principal]) -> AdminObjection:
        correction = None
        if data.correction is not None:
            correction = objections.Correction(severity=data.correction.severity, title=data.correction.title)
        view = await objections.decide_objection(
            store=store, objection_id=objection_id, operator_id=principal.subject, outcome=data.outcome,
            note=data.note, correction=correction)
        return _admin_objection(view, now=datetime.now(UTC))


class AdminRepairsController(Controller):
    path = "/v1/admin/repairs"
    tags = ["admin"]
    security = [{"BearerAuth": []}]

    @get("", guards=[guards.operator("officer", "auditor")], summary="Credit repair applications, newest first")
    async def list(self, status: FromQuery[Literal["pending", "approved", "rejected"] | None] = None,
                   cursor: Cursor = None, limit: PageSize = 50) -> AdminRepairPage:
        views, next_cursor = await objections.list_repairs(status=status, limit=limit, cursor=cursor)
        return AdminRepairPage(items=[_admin_repair(v) for v in views], next_cursor=next_cursor)

    @post("/{repair_id:str}/decide", status_code=HTTP_200_OK, guards=[guards.operator("officer")],
          summary="Approve (the record becomes repaired and stops counting) or reject; decided once")
    async def decide(self, *, repair_id: FromPath[str], data: JSONBody[RepairDecision], store: Injected[Store],
                     principal: Injected[Principal]) -> AdminRepair:
        view = await objections.decide_repair(store=store, repair_id=repair_id, operator_id=principal.subject,
                                              outcome=data.outcome, note=data.note)
        return _admin_repair(view)
