"""HTTP for enterprise members: binding (法人), operators (经办人) and the enterprise's consent decisions.

Every route is a bound citizen acting for an enterprise they are an active member of; any other
enterprise — unknown or not theirs — answers 404 `enterprise_not_found`.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.auth import guards
from api.pagination import Cursor, PageSize, SeqCursor
from credit import authorizations as authz
from credit import services
from credit.export import citizen_authorization
from credit.schemas import (
    AccessLogEntry,
    AccessLogPage,
    ApprovedAuthorization,
    CitizenAuthorization,
    CitizenAuthorizationPage,
    Decision,
)
from lending import enterprises
from lending.portrait_schemas import EnterpriseBind, EnterpriseList, EnterpriseOut, MemberAdd, MemberList, MemberOut


def _enterprise_out(item: enterprises.MyEnterprise) -> EnterpriseOut:
    ref = item.ref
    return EnterpriseOut(id=ref.public_id, uscc=item.uscc, name=ref.name, industry=ref.industry,
                         region_code=ref.region_code, registered_on=ref.registered_on, role=ref.role,
                         member_since=item.member_since)


def _member_out(member: enterprises.MemberView) -> MemberOut:
    return MemberOut(id=member.id, name=member.name_masked, role=member.role, status=member.status,
                     added_at=member.added_at, is_me=member.is_me, removed_at=member.removed_at)


class EnterpriseController(Controller):
    path = "/v1/enterprises"
    tags = ["enterprise"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @post("", status_code=HTTP_201_CREATED,
          summary="Bind an enterprise you are the legal representative of (201 new, 200 already bound)")
    async def bind(self, request: Request[Any, Any, Any], data: JSONBody[EnterpriseBind]) -> Response[EnterpriseOut]:
        ctx = guards.app_context(request)
        item, created = await enterprises.bind(cipher=ctx.cipher, account_id=guards.principal_of(request).subject,
                                               uscc=data.uscc)
        return Response(_enterprise_out(item), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("", summary="The enterprises I act for, with my role")
    async def mine(self, request: Request[Any, Any, Any]) -> EnterpriseList:
        ctx = guards.app_context(request)
        items = await enterprises.my_enterprises(cipher=ctx.cipher, account_id=guards.principal_of(request).subject)
        return EnterpriseList(items=[_enterprise_out(i) for i in items])

    @get("/{uscc:str}/members", summary="The enterprise's members (names masked)")
    async def members(self, request: Request[Any, Any, Any], uscc: FromPath[str]) -> MemberList:
        ctx = guards.app_context(request)
        items = await enterprises.list_members(cipher=ctx.cipher, account_id=guards.principal_of(request).subject,
                                               uscc=uscc)
        return MemberList(items=[_member_out(m) for m in items])

    @post("/{uscc:str}/members", status_code=HTTP_201_CREATED,
          summary="Owner: add an operator (经办人) — a registry person with a bound account")
    async def add_member(self, request: Request[Any, Any, Any], uscc: FromPath[str],
                         data: JSONBody[MemberAdd]) -> Response[MemberOut]:
        ctx = guards.app_context(request)
        member, created = await enterprises.add_operator(
            cipher=ctx.cipher, account_id=guards.principal_of(request).subject, uscc=uscc, name=data.name,
            id_number=data.id_number)
        return Response(_member_out(member), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @delete("/{uscc:str}/members/{member_id:str}", status_code=HTTP_200_OK, summary="Owner: remove an operator")
    async def remove_member(self, request: Request[Any, Any, Any], uscc: FromPath[str],
                            member_id: FromPath[str]) -> MemberOut:
        ctx = guards.app_context(request)
        member = await enterprises.remove_member(cipher=ctx.cipher, account_id=guards.principal_of(request).subject,
                                                 uscc=uscc, member_public_id=member_id)
        return _member_out(member)

    @get("/{uscc:str}/access-log",
         summary="Every access to the enterprise's credit data by a bank or anyone else (tamper-evident ledger)")
    async def access_log(self, request: Request[Any, Any, Any], uscc: FromPath[str], cursor: SeqCursor = None,
                         limit: PageSize = 50) -> AccessLogPage:
        # The enterprise sees who read its portrait and applications, as a citizen sees their own
        # (DESIGN §3); members act for the enterprise, so this read is not itself ledgered.
        ctx = guards.app_context(request)
        ref = await enterprises.require_member(account_id=guards.principal_of(request).subject, uscc=uscc,
                                               cipher=ctx.cipher)
        rows = await services.access_log(subject_id=ref.public_id, limit=limit + 1, before_seq=cursor)
        page = rows[:limit]
        items = [AccessLogEntry(seq=r["seq"], at=r["at"], actor_name=r["actor_name"], actor_type=r["actor_type"],
                                action=r["action"], outcome=r["outcome"], fields=r["fields"].split(),
                                hash=r["hash"], purpose=r["purpose"], authorization_id=r["authorization_id"])
                 for r in page]
        return AccessLogPage(items=items, next_cursor=str(page[-1]["seq"]) if len(rows) > limit and page else None)

    # ------------------------------------------------------------ the enterprise's consent

    @get("/{uscc:str}/authorizations", summary="Every authorization asked of the enterprise, newest first")
    async def authorizations(self, request: Request[Any, Any, Any], uscc: FromPath[str],
                             cursor: Cursor = None, limit: PageSize = 50) -> CitizenAuthorizationPage:
        ctx = guards.app_context(request)
        ref = await enterprises.require_member(account_id=guards.principal_of(request).subject, uscc=uscc,
                                               cipher=ctx.cipher)
        views = await authz.list_for_enterprise(enterprise_id=ref.enterprise_id, limit=limit + 1, before=cursor)
        page = views[:limit]
        return CitizenAuthorizationPage(items=[citizen_authorization(v) for v in page],
                                        next_cursor=page[-1].id if len(views) > limit and page else None)

    @post("/{uscc:str}/authorizations/{authorization_id:str}/approve", status_code=HTTP_200_OK,
          summary="Approve for the enterprise; returns a signed consent receipt")
    async def approve(self, request: Request[Any, Any, Any], uscc: FromPath[str],
                      authorization_id: FromPath[str]) -> ApprovedAuthorization:
        ctx = guards.app_context(request)
        account_id = guards.principal_of(request).subject
        ref = await enterprises.require_member(account_id=account_id, uscc=uscc, cipher=ctx.cipher)
        view = await authz.approve_for_enterprise(public_id=authorization_id, enterprise_id=ref.enterprise_id)
        receipt = ctx.tokens.sign_document({
            "jti": view.id, "authorization_id": view.id, "subject": ref.public_id, "subject_kind": "enterprise",
            "approved_by": enterprises.member_id(cipher=ctx.cipher, enterprise_id=ref.enterprise_id,
                                                 account_id=account_id),
            "partner": {"client_id": view.partner_client_id, "name": view.partner_name, "kind": view.partner_kind},
            "purpose": view.purpose, "scopes": list(view.scopes), "daily_cap": view.daily_cap,
            "granted_at": int(view.decided_at.timestamp()) if view.decided_at else None,
            "valid_until": int(view.valid_until.timestamp()) if view.valid_until else None,
        }, typ="consent-receipt+jwt")
        return ApprovedAuthorization(authorization=citizen_authorization(view), consent_receipt=receipt)

    @post("/{uscc:str}/authorizations/{authorization_id:str}/reject", status_code=HTTP_200_OK,
          summary="Refuse a request made to the enterprise")
    async def reject(self, request: Request[Any, Any, Any], uscc: FromPath[str], authorization_id: FromPath[str],
                     data: JSONBody[Decision | None] = None) -> CitizenAuthorization:
        ctx = guards.app_context(request)
        ref = await enterprises.require_member(account_id=guards.principal_of(request).subject, uscc=uscc,
                                               cipher=ctx.cipher)
        view = await authz.reject_for_enterprise(public_id=authorization_id, enterprise_id=ref.enterprise_id,
                                                 reason=data.reason if data else None)
        return citizen_authorization(view)

    @post("/{uscc:str}/authorizations/{authorization_id:str}/revoke", status_code=HTTP_200_OK,
          summary="Revoke for the enterprise; effective for the very next request")
    async def revoke(self, request: Request[Any, Any, Any], uscc: FromPath[str], authorization_id: FromPath[str],
                     data: JSONBody[Decision | None] = None) -> CitizenAuthorization:
        ctx = guards.app_context(request)
        ref = await enterprises.require_member(account_id=guards.principal_of(request).subject, uscc=uscc,
                                               cipher=ctx.cipher)
        view = await authz.revoke_for_enterprise(public_id=authorization_id, enterprise_id=ref.enterprise_id,
                                                 reason=data.reason if data else None)
        return citizen_authorization(view)
