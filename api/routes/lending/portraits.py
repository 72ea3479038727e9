"""Enterprise portraits: members read their own; banks read under an authorization (JSON or JWE)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, QueryParameter

from accounts.tokens import Principal
from api import guards
from api.dependencies import Injected
from api.pagination import PageSize
from core.admission import Admission
from core.errors import DomainError
from core.store import Store
from credit.identity import FieldCipher
from credit.ledger import LedgerWriter
from credit.queries import CallerResolver
from lending import encryption, enterprises, portraits
from lending.inputs import SAFE_ID, decode_version_cursor
from lending.portrait_schemas import BankPortraitAnswer, PortraitOut, PortraitVersionPage
from partners.limits import PartnerDirectory

_encoder = msgspec.json.Encoder()
# A portrait version cursor is a plain version number (ASCII digits; a bad one is a 422 `invalid_cursor`).
VersionCursor = Annotated[str | None, QueryParameter(
    pattern=r"^[0-9]{1,9}$", description="The next_cursor of the previous page (a version number)")]
# The bank's content negotiation (JSON or JWE), read as a header parameter; left out of the OpenAPI document,
# which states the negotiation in the operation's description and response instead.
Accept = Annotated[str | None, HeaderParameter(name="accept", include_in_schema=False)]


class NotAcceptable(DomainError):
    status, code, title = 406, "not_acceptable", "The requested representation is not available"


class EnterprisePortraitController(Controller):
    path = "/v1/enterprises/{uscc:str}/portrait"
    tags = ["enterprise"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("", summary="The enterprise's current credit portrait (members)")
    async def current(self, *, uscc: FromPath[str], store: Injected[Store], cipher: Injected[FieldCipher],
                      principal: Injected[Principal]) -> PortraitOut:
        ref = await enterprises.require_member(account_id=principal.subject, uscc=uscc, cipher=cipher)
        return await portraits.member_portrait(store=store, enterprise_id=ref.enterprise_id)

    @get("/versions", summary="Snapshot versions of the portrait, newest first (a version per content change)")
    async def versions(self, *, uscc: FromPath[str], cipher: Injected[FieldCipher], principal: Injected[Principal],
                       cursor: VersionCursor = None, limit: PageSize = 20) -> PortraitVersionPage:
        ref = await enterprises.require_member(account_id=principal.subject, uscc=uscc, cipher=cipher)
        before = decode_version_cursor(cursor) if cursor is not None else None
        return await portraits.portrait_versions(enterprise_id=ref.enterprise_id, limit=limit, before_version=before)


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
    *, uscc: FromPath[str],
    authorization_id: Annotated[str, QueryParameter(min_length=1, max_length=40, pattern=SAFE_ID)],
    store: Injected[Store], ledger: Injected[LedgerWriter], cipher: Injected[FieldCipher],
    partner_directory: Injected[PartnerDirectory], principal: Injected[Principal], admission: Injected[Admission],
    resolve_caller: Injected[CallerResolver],
    purpose: Annotated[str | None, QueryParameter(max_length=40)] = None, accept: Accept = None,
) -> Response[bytes]:
    client_id = principal.subject
    key: dict[str, Any] | None = None
    if encryption.wants_jose(accept):
        # Checked before anything is read: no key, no data, nothing to ledger.
        record = await partner_directory.get(client_id)
        key = encryption.encryption_key(record.jwks) if record is not None else None
        if key is None:
            await admission.run(store)  # a revoked token hears 401, not 406
            raise NotAcceptable("register an RSA encryption key (JWK, use enc) to receive JWE answers",
                                code="no_encryption_key")
    answer = await portraits.read_for_bank(
        store=store, ledger=ledger, cipher=cipher, client_id=client_id, resolve_caller=resolve_caller, uscc=uscc,
        authorization_id=authorization_id, purpose=purpose, admission=admission)
    body = _encoder.encode(answer)
    if key is not None:
        return Response(encryption.encrypt(body, key), media_type=encryption.JOSE_MEDIA_TYPE)
    return Response(body, media_type="application/json")
