"""Enterprise members: binding (法人), operators (经办人), the enterprise's access log and consent decisions.

Every route is a bound citizen acting for an enterprise they are an active member of; any other
enterprise — unknown or not theirs — answers 404 `enterprise_not_found`.
"""

from __future__ import annotations

from litestar import Controller, Response, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.tables import CitizenAccount
from accounts.tokens import Principal
from api import guards
from api.context import AppContext
from api.dependencies import Injected
from api.pagination import Cursor, PageSize, SeqCursor
from credit import authorizations as authz
from credit import services
from credit.export import citizen_authorization
from credit.identity import FieldCipher
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


async def _account_of_person(person_id: int) -> str | None:
    """The active citizen account a registry person has bound: what lending needs of the accounts domain to
    add an operator, handed to it from here so lending imports nothing of `api`."""
    row = await CitizenAccount.select(CitizenAccount.public_id).where(
        (CitizenAccount.person == person_id) & (CitizenAccount.status == "active")).first()
    return None if row is None else str(row["public_id"])


class EnterpriseController(Controller):
    path = "/v1/enterprises"
    tags = ["enterprise"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @post("", status_code=HTTP_201_CREATED,
          summary="Bind an enterprise you are the legal representative of (201 new, 200 already bound)")
    async def bind(self, *, data: JSONBody[EnterpriseBind], cipher: Injected[FieldCipher],
                   principal: Injected[Principal], person_id: Injected[int]) -> Response[EnterpriseOut]:
        item, created = await enterprises.bind(cipher=cipher, account_id=principal.subject, person_id=person_id,
                                               uscc=data.uscc)
        return Response(item, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("", summary="The enterprises I act for, with my role")
    async def mine(self, *, cipher: Injected[FieldCipher], principal: Injected[Principal]) -> EnterpriseList:
        return EnterpriseList(items=await enterprises.my_enterprises(cipher=cipher, account_id=principal.subject))

    @get("/{uscc:str}/members", summary="The enterprise's members (names masked)")
    async def members(self, *, uscc: FromPath[str], cipher: Injected[FieldCipher],
                      principal: Injected[Principal]) -> MemberList:
        return MemberList(items=await enterprises.list_members(cipher=cipher, account_id=principal.subject,
                                                               uscc=uscc))

    @post("/{uscc:str}/members", status_code=HTTP_201_CREATED,
          summary="Owner: add an operator (经办人) — a registry person with a bound account")
    async def add_member(self, *, uscc: FromPath[str], data: JSONBody[MemberAdd], cipher: Injected[FieldCipher],
                         principal: Injected[Principal]) -> Response[MemberOut]:
        member, created = await enterprises.add_operator(
            cipher=cipher, account_id=principal.subject, uscc=uscc, name=data.name, id_number=data.id_number,
            account_of_person=_account_of_person)
        return Response(member, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @delete("/{uscc:str}/members/{member_id:str}", status_code=HTTP_200_OK, summary="Owner: remove an operator")
    async def remove_member(self, *, uscc: FromPath[str], member_id: FromPath[str], cipher: Injected[FieldCipher],
                            principal: Injected[Principal]) -> MemberOut:
        return await enterprises.remove_member(cipher=cipher, account_id=principal.subject, uscc=uscc,
                                               member_public_id=member_id)

    @get("/{uscc:str}/access-log",
         summary="Every access to the enterprise's credit data by a bank or anyone else (tamper-evident ledger)")
    async def access_log(self, *, uscc: FromPath[str], cipher: Injected[FieldCipher], principal: Injected[Principal],
                         cursor: SeqCursor = None, limit: PageSize = 50) -> AccessLogPage:
        # The enterprise sees who read its portrait and applications, as a citizen sees their own
        # (DESIGN §3); members act for the enterprise, so this read is not itself ledgered.
        ref = await enterprises.require_member(account_id=principal.subject, uscc=uscc, cipher=cipher)
        rows = await services.access_log(subject_id=ref.public_id, limit=limit + 1, before_seq=cursor)
        page = rows[:limit]
        items = [AccessLogEntry(seq=r["seq"], at=r["at"], actor_name=r["actor_name"], actor_type=r["actor_type"],
                                action=r["action"], outcome=r["outcome"], fields=r["fields"].split(),
                                hash=r["hash"], purpose=r["purpose"], authorization_id=r["authorization_id"])
                 for r in page]
        return AccessLogPage(items=items, next_cursor=str(page[-1]["seq"]) if len(rows) > limit and page else None)

    # ------------------------------------------------------------ the enterprise's consent

    @get("/{uscc:str}/authorizations", summary="Every authorization asked of the enterprise, newest first")
    async def authorizations(self, *, uscc: FromPath[str], cipher: Injected[FieldCipher],
                             principal: Injected[Principal], cursor: Cursor = None,
                             limit: PageSize = 50) -> CitizenAuthorizationPage:
        ref = await enterprises.require_member(account_id=principal.subject, uscc=uscc, cipher=cipher)
        views = await authz.list_for_enterprise(enterprise_id=ref.enterprise_id, limit=limit + 1, before=cursor)
        page = views[:limit]
        return CitizenAuthorizationPage(items=[citizen_authorization(v) for v in page],
                                        next_cursor=page[-1].id if len(views) > limit and page else None)

    @post("/{uscc:str}/authorizations/{authorization_id:str}/approve", status_code=HTTP_200_OK,
          summary="Approve for the enterprise; returns a signed consent receipt")
    async def approve(self, *, uscc: FromPath[str], authorization_id: FromPath[str], ctx: Injected[AppContext],
                      principal: Injected[Principal]) -> ApprovedAuthorization:
        # `ctx` for its token service, which signs the consent receipt (no narrower dependency provides it).
        account_id = principal.subject
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
    async def reject(self, *, uscc: FromPath[str], authorization_id: FromPath[str], cipher: Injected[FieldCipher],
                     principal: Injected[Principal], data: JSONBody[Decision | None] = None) -> CitizenAuthorization:
        ref = await enterprises.require_member(account_id=principal.subject, uscc=uscc, cipher=cipher)
        view = await authz.reject_for_enterprise(public_id=authorization_id, enterprise_id=ref.enterprise_id,
                                                 reason=data.reason if data else None)
        return citizen_authorization(view)

    @post("/{uscc:str}/authorizations/{authorization_id:str}/revoke", status_code=HTTP_200_OK,
          summary="Revoke for the enterprise; effective for the very next request")
    async def revoke(self, *, uscc: FromPath[str], authorization_id: FromPath[str], cipher: Injected[FieldCipher],
                     principal: Injected[Principal], data: JSONBody[Decision | None] = None) -> CitizenAuthorization:
        ref = await enterprises.require_member(account_id=principal.subject, uscc=uscc, cipher=cipher)
        view = await authz.revoke_for_enterprise(public_id=authorization_id, enterprise_id=ref.enterprise_id,
                                                 reason=data.reason if data else None)
        return citizen_authorization(view)
