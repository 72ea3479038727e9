"""HTTP for enterprise portraits: members read their own; banks read under an authorization (JSON or JWE)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from api.auth import guards
from api.pagination import PageSize
from core.errors import DomainError, NotFound
from credit.queries import Caller
from lending import encryption, enterprises, portraits
from lending.inputs import SAFE_ID, decode_version_cursor
from lending.portrait_schemas import BankPortraitAnswer, PortraitOut, PortraitVersion, PortraitVersionPage
from partners.services import find_partner

_encoder = msgspec.json.Encoder()
# A portrait version cursor is a plain version number (ASCII digits; a bad one is a 422 `invalid_cursor`).
VersionCursor = Annotated[str | None, QueryParameter(
    pattern=r"^[0-9]{1,9}$", description="The next_cursor of the previous page (a version number)")]


class NotAcceptable(DomainError):
    status, code, title = 406, "not_acceptable", "The requested representation is not available"


class EnterprisePortraitController(Controller):
    path = "/v1/enterprises/{uscc:str}/portrait"
    tags = ["enterprise"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("", summary="The enterprise's current credit portrait (members)")
    async def current(self, request: Request[Any, Any, Any], uscc: FromPath[str]) -> PortraitOut:
        ctx = guards.app_context(request)
        ref = await enterprises.require_member(account_id=guards.principal_of(request).subject, uscc=uscc,
                                               cipher=ctx.cipher)
        view = await portraits.current_portrait(store=ctx.store, enterprise_id=ref.enterprise_id)
        return msgspec.convert(portraits.portrait_document(view), PortraitOut)

    @get("/versions", summary="Snapshot versions of the portrait, newest first (a version per content change)")
    async def versions(self, request: Request[Any, Any, Any], uscc: FromPath[str],
                       cursor: VersionCursor = None, limit: PageSize = 20) -> PortraitVersionPage:
        ctx = guards.app_context(request)
        ref = await enterprises.require_member(account_id=guards.principal_of(request).subject, uscc=uscc,
                                               cipher=ctx.cipher)
        before = decode_version_cursor(cursor) if cursor is not None else None
        rows = await portraits.portrait_history(enterprise_id=ref.enterprise_id, limit=limit + 1,
                                                before_version=before)
        page = rows[:limit]
        return PortraitVersionPage(
            items=[PortraitVersion(id=r["public_id"], version=int(r["version"]), score=int(r["score"]),
                                   grade=r["grade"], digest=r["digest"], as_of=r["as_of"]) for r in page],
            next_cursor=str(page[-1]["version"]) if len(rows) > limit and page else None)


async def _caller(client_id: str) -> Caller:
    partner = await find_partner(client_id)
    if partner is None:
        raise NotFound("partner not found", code="partner_not_found")
    return Caller(client_id=partner.client_id, name=partner.name, kind=partner.kind)


_BANK_DESCRIPTION = """\
Name the authorization the enterprise gave you (scope `portrait`) with `?authorization_id=`; optionally
state the purpose (`?purpose=`), which must be the authorization's. Every answer and every refusal is
written to the access ledger first. Uses count against the purpose's daily cap.

Send `Accept: application/jose` to receive the same JSON as a compact JWE (alg `RSA-OAEP-256`, enc
`A256GCM`, `kid` of your key) encrypted to the RSA public key registered in your JWKs; without such a
key the answer is 406 `no_encryption_key`.
"""


@get("/v1/portraits/{uscc:str}", tags=["partner"], security=[{"BearerAuth": []}],
     guards=[guards.partner("portraits:read")], opt={"deferred_admission": True},
     summary="Read an enterprise's portrait under its authorization",
     description=_BANK_DESCRIPTION,
     responses={200: ResponseSpec(data_container=BankPortraitAnswer,
                                  description="The portrait (application/json), or the same JSON as a compact "
                                              "JWE (application/jose)")})
async def bank_portrait(
    request: Request[Any, Any, Any], uscc: FromPath[str],
    authorization_id: Annotated[str, QueryParameter(min_length=1, max_length=40, pattern=SAFE_ID)],
    purpose: Annotated[str | None, QueryParameter(max_length=40)] = None,
) -> Response[bytes]:
    ctx = guards.app_context(request)
    client_id = guards.principal_of(request).subject
    key: dict[str, Any] | None = None
    if encryption.wants_jose(request.headers.get("accept")):
        # Checked before anything is read: no key, no data, nothing to ledger.
        record = await ctx.partners.get(client_id)
        key = encryption.encryption_key(record.jwks) if record is not None else None
        if key is None:
            await guards.admission_of(request).run(ctx.store)  # a revoked token hears 401, not 406
            raise NotAcceptable("register an RSA encryption key (JWK, use enc) to receive JWE answers",
                                code="no_encryption_key")
    answer = await portraits.read_for_bank(
        store=ctx.store, ledger=ctx.ledger, cipher=ctx.cipher, client_id=client_id,
        resolve_caller=lambda: _caller(client_id), uscc=uscc, authorization_id=authorization_id, purpose=purpose,
        admission=guards.admission_of(request))
    body = _encoder.encode({**answer.data, "ledger_seq": answer.receipt.seq})
    if key is not None:
        return Response(encryption.encrypt(body, key), media_type=encryption.JOSE_MEDIA_TYPE)
    return Response(body, media_type="application/json")
