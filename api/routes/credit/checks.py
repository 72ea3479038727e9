"""Joint rewards and punishments (联合奖惩): departments' credit checks (`/v1/credit-checks`) and the
operators' measure and list catalogs (`/v1/admin/measures`, `/v1/admin/lists`)."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize
from credit import checks
from credit.identity import FieldCipher
from credit.ledger import LedgerWriter
from credit.partner_schemas import (
    AdminListEntry,
    AdminListEntryPage,
    AdminMeasure,
    BusinessTypeOut,
    CheckFeedback,
    CheckFeedbackAnswer,
    CreditCheckAnswer,
    CreditCheckRequest,
    Delisting,
    ListCreate,
    ListMembership,
    MeasureCreate,
    MeasureOut,
    MeasurePatch,
)
from credit.queries import Caller
from credit.schemas import PersonSubject


def _check_answer(view: checks.CheckView) -> CreditCheckAnswer:
    return CreditCheckAnswer(
        id=view.id, subject_kind=view.subject_kind, business_type=view.business_type, listed=view.listed,
        lists=[ListMembership(list_kind=m.list_kind, list_code=m.list_code, list_name=m.list_name,
                              listed_at=m.listed_at) for m in view.lists],
        measures=[MeasureOut(code=m.code, name=m.name, kind=m.kind, mandatory=m.mandatory, basis=m.basis)
                  for m in view.measures],
        checked_at=view.checked_at)


def _admin_measure(view: checks.MeasureView) -> AdminMeasure:
    return AdminMeasure(code=view.code, name=view.name, kind=view.kind, mandatory=view.mandatory,
                        list_code=view.list_code, list_name=view.list_name, business_types=list(view.business_types),
                        basis=view.basis, status=view.status, created_at=view.created_at)


def _admin_entry(view: checks.ListEntryView) -> AdminListEntry:
    return AdminListEntry(
        id=view.id, list_kind=view.list_kind, list_code=view.list_code, list_name=view.list_name,
        subject_kind=view.subject_kind, subject_id=view.subject_id, subject_name=view.subject_name,
        reason=view.reason, source=view.source, listed_at=view.listed_at, delisted_at=view.delisted_at)


class CreditChecksController(Controller):
    path = "/v1/credit-checks"
    tags = ["partner"]
    security = [{"BearerAuth": []}]
    guards = [guards.partner("credit_checks:write")]

    @post("", status_code=HTTP_201_CREATED,
          summary="Credit check before a business step (联合奖惩核查): lists and the measures that apply",
          description="A subject that is not listed, or not known to the registry, gets `listed: false` "
                      "and no lists or measures. Checks of registry subjects appear in their access log.")
    async def create(self, *, data: JSONBody[CreditCheckRequest], caller: Injected[Caller],
                     cipher: Injected[FieldCipher], ledger: Injected[LedgerWriter]) -> CreditCheckAnswer:
        subject = data.subject
        view = await checks.run_check(
            cipher=cipher, ledger=ledger,
            department=checks.Department(client_id=caller.client_id, name=caller.name, kind=caller.kind),
            subject_kind="person" if isinstance(subject, PersonSubject) else "enterprise",
            business_type=data.business_type, id_number=getattr(subject, "id_number", None),
            name=getattr(subject, "name", None), uscc=getattr(subject, "uscc", None))
        return _check_answer(view)

    @post("/{check_id:str}/feedback", status_code=HTTP_200_OK,
          summary="Report which of the returned measures was applied (once, by the department that checked)")
    async def feedback(self, *, check_id: FromPath[str], data: JSONBody[CheckFeedback],
                       principal: Injected[Principal]) -> CheckFeedbackAnswer:
        view = await checks.give_feedback(check_id=check_id, department_client_id=principal.subject,
                                          measure_code=data.measure_code, note=data.note)
        return CheckFeedbackAnswer(id=view.id, measure_code=view.measure_code, feedback_at=view.feedback_at,
                                   note=view.note)

    @get("/business-types", summary="Business types a credit check may name", cache=300)
    async def business_types(self) -> list[BusinessTypeOut]:
        return [BusinessTypeOut(code=code, name=name) for code, name in checks.BUSINESS_TYPES.items()]


class AdminMeasuresController(Controller):
    path = "/v1/admin/measures"
    tags = ["admin"]
    security = [{"BearerAuth": []}]

    @get("", guards=[guards.operator("officer", "auditor")], summary="The joint reward and punishment measures")
    async def list(self, list_code: FromQuery[str | None] = None,
                   status: FromQuery[Literal["active", "retired"] | None] = None) -> list[AdminMeasure]:
        return [_admin_measure(v) for v in await checks.list_measures(list_code=list_code, status=status)]

    @post("", status_code=HTTP_201_CREATED, guards=[guards.operator("officer")], summary="Add a measure")
    async def create(self, data: JSONBody[MeasureCreate]) -> AdminMeasure:
        view = await checks.create_measure(code=data.code, name=data.name, kind=data.kind, list_code=data.list_code,
                                           mandatory=data.mandatory, business_types=data.business_types,
                                           basis=data.basis)
        return _admin_measure(view)

    @patch("/{code:str}", guards=[guards.operator("officer")],
           summary="Change a measure (name, mandatory, business types, basis, or retire it)")
    async def update(self, code: FromPath[str], data: JSONBody[MeasurePatch]) -> AdminMeasure:
        view = await checks.update_measure(code=code, name=data.name, mandatory=data.mandatory,
                                           business_types=data.business_types, basis=data.basis, status=data.status)
        return _admin_measure(view)


class AdminListsController(Controller):
    path = "/v1/admin/lists"
    tags = ["admin"]
    security = [{"BearerAuth": []}]

    @get("", guards=[guards.operator("officer", "auditor")],
         summary="Red and black list memberships, newest first (`active=false` for delisted ones)")
    async def list(self, list_code: FromQuery[str | None] = None,
                   subject_kind: FromQuery[Literal["person", "enterprise"] | None] = None,
                   active: FromQuery[bool | None] = True, cursor: Cursor = None,
                   limit: PageSize = 50) -> AdminListEntryPage:
        views, next_cursor = await checks.list_entries(list_code=list_code, subject_kind=subject_kind, active=active,
                                                       limit=limit, cursor=cursor)
        return AdminListEntryPage(items=[_admin_entry(v) for v in views], next_cursor=next_cursor)

    @post("", status_code=HTTP_201_CREATED, guards=[guards.operator("officer")],
          summary="Put a person (id number and name) or an enterprise (USCC) on a list")
    async def create(self, *, data: JSONBody[ListCreate], cipher: Injected[FieldCipher],
                     principal: Injected[Principal]) -> AdminListEntry:
        subject = data.subject
        view = await checks.add_to_list(
            cipher=cipher, operator_id=principal.subject,
            list_code=data.list_code, subject_kind="person" if isinstance(subject, PersonSubject) else "enterprise",
            reason=data.reason, id_number=getattr(subject, "id_number", None), name=getattr(subject, "name", None),
            uscc=getattr(subject, "uscc", None))
        return _admin_entry(view)

    @post("/{entry_id:str}/delist", status_code=HTTP_200_OK, guards=[guards.operator("officer")],
          summary="Take a subject off a list")
    async def delist(self, *, entry_id: FromPath[str], principal: Injected[Principal],
                     data: JSONBody[Delisting | None] = None) -> AdminListEntry:
        view = await checks.delist(entry_id=entry_id, operator_id=principal.subject,
                                   reason=data.reason if data else None)
        return _admin_entry(view)
