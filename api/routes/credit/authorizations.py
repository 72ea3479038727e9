"""Partner side of an authorization: ask a citizen or enterprise, read its status, terminate it
(`/v1/authorizations`)."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from core.settings import Settings
from core.store import Store
from credit import authorizations as authz
from credit.identity import FieldCipher
from credit.queries import Caller
from credit.schemas import AuthorizationRequest, PartnerAuthorization, PersonSubject


class PartnerAuthorizationController(Controller):
    path = "/v1/authorizations"
    tags = ["partner"]
    security = [{"BearerAuth": []}]
    guards = [guards.partner("authorizations:write")]

    @post("", status_code=HTTP_201_CREATED, summary="Ask a citizen or enterprise for authorization")
    async def create(self, *, data: JSONBody[AuthorizationRequest], caller: Injected[Caller],
                     cipher: Injected[FieldCipher], settings: Injected[Settings]) -> PartnerAuthorization:
        subject = data.subject
        return await authz.request_for_partner(
            cipher=cipher, consent_key=settings.consent_key, partner_client_id=caller.client_id,
            partner_name=caller.name, partner_kind=caller.kind,
            subject_kind="person" if isinstance(subject, PersonSubject) else "enterprise",
            purpose_code=data.purpose, scopes=list(data.scopes), validity_days=data.validity_days,
            id_number=getattr(subject, "id_number", None), name=getattr(subject, "name", None),
            uscc=getattr(subject, "uscc", None))

    @get("/{authorization_id:str}", summary="Status of one of the partner's authorizations")
    async def read(self, *, authorization_id: FromPath[str], principal: Injected[Principal],
                   settings: Injected[Settings]) -> PartnerAuthorization:
        return await authz.partner_status(public_id=authorization_id, partner_client_id=principal.subject,
                                          consent_key=settings.consent_key)

    @delete("/{authorization_id:str}", status_code=HTTP_200_OK, summary="Terminate (partner side)")
    async def terminate(self, *, authorization_id: FromPath[str], principal: Injected[Principal],
                        store: Injected[Store], settings: Injected[Settings]) -> PartnerAuthorization:
        return await authz.terminate_for_partner(public_id=authorization_id, partner_client_id=principal.subject,
                                                 store=store, consent_key=settings.consent_key)
