"""HTTP for the subject's rights over their data: objections (异议), credit repair (信用修复) and the data
export, and the operators' review of objections and repairs (`/v1/admin`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from litestar import Controller, Request, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.citizens import account_view, bound_person_id
from api.auth import guards
from api.pagination import Cursor, PageSize
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


async def _person_id(request: Request[Any, Any, Any]) -> int:
    return await bound_person_id(account_id=guards.principal_of(request).subject)


class MyRightsController(Controller):
    path = "/v1/me"
    tags = ["citizen"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @post("/objections", status_code=HTTP_201_CREATED,
          summary="Object to one of my records (异议); it is flagged at once and decided within the time limit")
    async def file_objection(self, request: Request[Any, Any, Any], data: JSONBody[ObjectionCreate]) -> MyObjection:
        ctx = guards.app_context(request)
        view = await objections.file_objection(store=ctx.store, calendar=ctx.settings.calendar,
                                               person_id=await _person_id(request), record_id=data.record_id,
                                               reason=data.reason)
        return export.my_objection(view)

    @get("/objections", summary="My objections, newest first")
    async def list_objections(self, request: Request[Any, Any, Any], cursor: Cursor = None,
                              limit: PageSize = 50) -> MyObjectionPage:
        views, next_cursor = await objections.objections_of_person(person_id=await _person_id(request), limit=limit,
                                                                   cursor=cursor)
        return MyObjectionPage(items=[export.my_objection(v) for v in views], next_cursor=next_cursor)

    @post("/repairs", status_code=HTTP_201_CREATED, summary="Apply for credit repair (信用修复) of a negative record")
    async def file_repair(self, request: Request[Any, Any, Any], data: JSONBody[RepairCreate]) -> MyRepair:
        view = await objections.file_repair(person_id=await _person_id(request), record_id=data.record_id,
                                            statement=data.statement)
        return export.my_repair(view)

    @get("/repairs", summary="My credit repair applications, newest first")
    async def list_repairs(self, request: Request[Any, Any, Any], cursor: Cursor = None,
                           limit: PageSize = 50) -> MyRepairPage:
        views, next_cursor = await objections.repairs_of_person(person_id=await _person_id(request), limit=limit,
                                                                cursor=cursor)
        return MyRepairPage(items=[export.my_repair(v) for v in views], next_cursor=next_cursor)

    @get("/export", response_headers=_NO_STORE,
         summary="Everything held about me in one document (unmasked: for the subject only)")
    async def export_data(self, request: Request[Any, Any, Any]) -> PersonalDataExport:
        ctx = guards.app_context(request)
        principal = guards.principal_of(request)
        person_id = await bound_person_id(account_id=principal.subject)
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
    async def decide(self, request: Request[Any, Any, Any], objection_id: FromPath[str],
                     data: JSONBody[ObjectionDecision]) -> AdminObjection:
        correction = None
        if data.correction is not None:
            correction = objections.Correction(severity=data.correction.severity, title=data.correction.title)
        view = await objections.decide_objection(
            store=guards.app_context(request).store, objection_id=objection_id,
            operator_id=guards.principal_of(request).subject, outcome=data.outcome, note=data.note,
            correction=correction)
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
    async def decide(self, request: Request[Any, Any, Any], repair_id: FromPath[str],
                     data: JSONBody[RepairDecision]) -> AdminRepair:
        view = await objections.decide_repair(
            store=guards.app_context(request).store, repair_id=repair_id,
            operator_id=guards.principal_of(request).subject, outcome=data.outcome, note=data.note)
        return _admin_repair(view)
