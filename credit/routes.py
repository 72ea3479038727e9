"""HTTP for the credit core: partner authorizations and score reads, the citizen's own credit data,
and the public ledger checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from accounts.citizens import bound_person_id
from accounts.tokens import Principal
from api.auth import guards
from api.dependencies import Injected
from api.pagination import Cursor, PageSize, SeqCursor
from core.admission import Admission
from core.errors import NotFound, Unprocessable
from core.settings import Settings
from core.store import Store
from credit import authorizations as authz
from credit import queries, scores, services
from credit.catalog import PURPOSES
from credit.export import citizen_authorization, my_score, record_out
from credit.ledger import LedgerWriter, latest_checkpoint
from credit.schemas import (
    AccessLogEntry,
    AccessLogPage,
    ApprovedAuthorization,
    AuthorizationRequest,
    Checkpoint,
    CitizenAuthorization,
    CitizenAuthorizationPage,
    Decision,
    MyScore,
    PartnerAuthorization,
    PersonSubject,
    ReasonOut,
    RecordPage,
    ScoreCheck,
    ScoreCheckAnswer,
    ScoreHistoryPage,
    ScorePoint,
    ScoreQuery,
    ScoreQueryAnswer,
)
from partners.services import find_partner


async def _caller(request: Request[Any, Any, Any]) -> queries.Caller:
    principal = guards.principal_of(request)
    partner = await find_partner(principal.subject)
    if partner is None:
        raise NotFound("partner not found", code="partner_not_found")
    return queries.Caller(client_id=partner.client_id, name=partner.name, kind=partner.kind)


def _partner_view(view: authz.AuthorizationView, *, consent_key: bytes, subject_public_id: str | None
                  ) -> PartnerAuthorization:
    oid = None
    if subject_public_id and view.status == authz.AUTHORIZED:
        oid = authz.open_id(consent_key=consent_key, partner_client_id=view.partner_client_id,
                            subject_public_id=subject_public_id)
    return PartnerAuthorization(
        id=view.id, status=view.status, subject_kind=view.subject_kind, purpose=view.purpose,
        scopes=list(view.scopes), daily_cap=view.daily_cap, created_at=view.created_at,
        request_expires_at=view.request_expires_at, valid_until=view.valid_until, decided_at=view.decided_at,
        ended_at=view.ended_at, ended_reason=view.ended_reason, open_id=oid)


async def _subject_public_id(view: authz.AuthorizationView) -> str | None:
    return await services.person_public_id(view.person_id) if view.person_id is not None else None


class PartnerAuthorizationController(Controller):
    path = "/v1/authorizations"
    tags = ["partner"]
    security = [{"BearerAuth": []}]
    guards = [guards.partner("authorizations:write")]

    @post("", status_code=HTTP_201_CREATED, summary="Ask a citizen or enterprise for authorization")
    async def create(self, request: Request[Any, Any, Any], data: JSONBody[AuthorizationRequest]
                     ) -> PartnerAuthorization:
        caller = await _caller(request)
        ctx = guards.app_context(request)
        subject = data.subject
        view = await authz.request_authorization(
            cipher=ctx.cipher, partner_client_id=caller.client_id, partner_name=caller.name,
            partner_kind=caller.kind, subject_kind="person" if isinstance(subject, PersonSubject) else "enterprise",
            purpose_code=data.purpose, scopes=list(data.scopes), validity_days=data.validity_days,
            id_number=getattr(subject, "id_number", None), name=getattr(subject, "name", None),
            uscc=getattr(subject, "uscc", None))
        return _partner_view(view, consent_key=ctx.settings.consent_key, subject_public_id=None)

    @get("/{authorization_id:str}", summary="Status of one of the partner's authorizations")
    async def read(self, request: Request[Any, Any, Any], authorization_id: FromPath[str]) -> PartnerAuthorization:
        principal = guards.principal_of(request)
        view = await authz.for_partner(public_id=authorization_id, partner_client_id=principal.subject)
        return _partner_view(view, consent_key=guards.app_context(request).settings.consent_key,
                             subject_public_id=await _subject_public_id(view))

    @delete("/{authorization_id:str}", status_code=HTTP_200_OK, summary="Terminate (partner side)")
    async def terminate(self, request: Request[Any, Any, Any], authorization_id: FromPath[str]) -> PartnerAuthorization:
        principal = guards.principal_of(request)
        view = await authz.terminate(public_id=authorization_id, partner_client_id=principal.subject,
                                     reason="terminated by the partner", store=guards.app_context(request).store)
        return _partner_view(view, consent_key=guards.app_context(request).settings.consent_key,
                             subject_public_id=None)


class ScoresController(Controller):
    path = "/v1/scores"
    tags = ["partner"]
    security = [{"BearerAuth": []}]

    @post("/query", status_code=HTTP_200_OK, guards=[guards.partner("scores:read")],
          opt={"deferred_admission": True},
          summary="Read a person's score under an authorization (fields limited by its scopes)")
    async def query(self, *, data: JSONBody[ScoreQuery], store: Injected[Store], ledger: Injected[LedgerWriter],
                    settings: Injected[Settings], principal: Injected[Principal], admission: Injected[Admission],
                    resolve_caller: Injected[queries.CallerResolver]) -> ScoreQueryAnswer:
        answer = await queries.query_score(
            store=store, ledger=ledger, consent_key=settings.consent_key, client_id=principal.subject,
            resolve_caller=resolve_caller, authorization_id=data.authorization_id, purpose=data.purpose,
            admission=admission)
        body = answer.data
        return ScoreQueryAnswer(
            authorization_id=body["authorization_id"], open_id=body["open_id"], as_of=body["as_of"],
            ledger_seq=answer.receipt.seq, tier=body.get("tier"), score_band=body.get("score_band"),
            score=body.get("score"), dimensions=body.get("dimensions"),
            reasons=[ReasonOut(**r) for r in body["reasons"]] if "reasons" in body else None)

    @post("/check", status_code=HTTP_200_OK, guards=[guards.partner("scores:check")],
          opt={"deferred_admission": True},
          summary="Yes/no against a threshold (idempotent per transaction id for 24 h)")
    async def check(self, request: Request[Any, Any, Any], data: JSONBody[ScoreCheck]) -> ScoreCheckAnswer:
        ctx = guards.app_context(request)
        answer = await queries.check_score(
            store=ctx.store, ledger=ctx.ledger, client_id=guards.principal_of(request).subject,
            resolve_caller=lambda: _caller(request), authorization_id=data.authorization_id,
            threshold=data.threshold, transaction_id=data.transaction_id, purpose=data.purpose,
            admission=guards.admission_of(request))
        return ScoreCheckAnswer(ledger_seq=answer.receipt.seq, **answer.data)


class MyCreditController(Controller):
    path = "/v1/me"
    tags = ["citizen"]
    guards = [guards.citizen]
    security = [{"BearerAuth": []}]

    @get("/score", summary="My score, its dimensions and the main reasons")
    async def score(self, request: Request[Any, Any, Any]) -> MyScore:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        score = await scores.current_score(store=guards.app_context(request).store, person_id=person_id)
        return my_score(score)

    @get("/score/history", summary="How my score changed")
    async def score_history(self, request: Request[Any, Any, Any], cursor: Cursor = None,
                            limit: PageSize = 30) -> ScoreHistoryPage:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        before = None
        if cursor:
            (text,) = services.decode_cursor(cursor, 1)
            try:
                before = datetime.fromisoformat(text)
            except ValueError:
                raise Unprocessable("invalid cursor", code="invalid_cursor") from None
        rows = await scores.score_history(person_id=person_id, limit=limit + 1, before=before)
        page = rows[:limit]
        next_cursor = services.encode_cursor(page[-1]["as_of"].isoformat()) if len(rows) > limit and page else None
        return ScoreHistoryPage(items=[ScorePoint(total=r["total"], tier=r["tier"], trigger=r["trigger"],
                                                  as_of=r["as_of"]) for r in page], next_cursor=next_cursor)

    @get("/records", summary="My credit records, newest first")
    async def records(self, request: Request[Any, Any, Any], cursor: Cursor = None,
                      limit: PageSize = 50) -> RecordPage:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        rows, next_cursor = await services.person_records(person_id=person_id, limit=limit, cursor=cursor)
        now = datetime.now(UTC)
        items = [record_out(r, now=now) for r in rows]
        return RecordPage(items=items, next_cursor=next_cursor)

    @get("/authorizations", summary="Every authorization asked of me, newest first")
    async def authorizations(self, request: Request[Any, Any, Any], cursor: Cursor = None,
                             limit: PageSize = 50) -> CitizenAuthorizationPage:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        views = await authz.list_for_person(person_id=person_id, limit=limit + 1, before=cursor)
        page = views[:limit]
        return CitizenAuthorizationPage(items=[citizen_authorization(v) for v in page],
                                        next_cursor=page[-1].id if len(views) > limit and page else None)

    @post("/authorizations/{authorization_id:str}/approve", status_code=HTTP_200_OK,
          summary="Approve; returns a signed consent receipt")
    async def approve(self, request: Request[Any, Any, Any], authorization_id: FromPath[str]) -> ApprovedAuthorization:
        ctx = guards.app_context(request)
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        view = await authz.approve(public_id=authorization_id, person_id=person_id)
        receipt = ctx.tokens.sign_document({
            "jti": view.id, "authorization_id": view.id, "subject": await services.person_public_id(person_id),
            "partner": {"client_id": view.partner_client_id, "name": view.partner_name, "kind": view.partner_kind},
            "purpose": view.purpose, "scopes": list(view.scopes), "daily_cap": view.daily_cap,
            "granted_at": int(view.decided_at.timestamp()) if view.decided_at else None,
            "valid_until": int(view.valid_until.timestamp()) if view.valid_until else None,
        }, typ="consent-receipt+jwt")
        return ApprovedAuthorization(authorization=citizen_authorization(view), consent_receipt=receipt)

    @post("/authorizations/{authorization_id:str}/reject", status_code=HTTP_200_OK, summary="Refuse a request")
    async def reject(self, request: Request[Any, Any, Any], authorization_id: FromPath[str],
                     data: JSONBody[Decision | None] = None) -> CitizenAuthorization:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        view = await authz.reject(public_id=authorization_id, person_id=person_id,
                                  reason=data.reason if data else None)
        return citizen_authorization(view)

    @post("/authorizations/{authorization_id:str}/revoke", status_code=HTTP_200_OK,
          summary="Revoke; effective for the very next request")
    async def revoke(self, request: Request[Any, Any, Any], authorization_id: FromPath[str],
                     data: JSONBody[Decision | None] = None) -> CitizenAuthorization:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        view = await authz.revoke(public_id=authorization_id, person_id=person_id,
                                  reason=data.reason if data else None, store=guards.app_context(request).store)
        return citizen_authorization(view)

    @get("/access-log", summary="Every access to my credit data (tamper-evident ledger)")
    async def access_log(self, request: Request[Any, Any, Any], cursor: SeqCursor = None,
                         limit: PageSize = 50) -> AccessLogPage:
        person_id = await bound_person_id(account_id=guards.principal_of(request).subject)
        rows = await services.access_log(subject_id=await services.person_public_id(person_id), limit=limit + 1,
                                         before_seq=cursor)
        page = rows[:limit]
        items = [AccessLogEntry(seq=r["seq"], at=r["at"], actor_name=r["actor_name"], actor_type=r["actor_type"],
                                action=r["action"], outcome=r["outcome"], fields=r["fields"].split(),
                                hash=r["hash"], purpose=r["purpose"], authorization_id=r["authorization_id"])
                 for r in page]
        return AccessLogPage(items=items, next_cursor=str(page[-1]["seq"]) if len(rows) > limit and page else None)


@get("/v1/ledger/checkpoints/latest", tags=["ledger"], summary="The latest signed checkpoint of the access ledger",
     opt={"problem_statuses": (404,)})
async def latest_ledger_checkpoint() -> Checkpoint:
    row = await latest_checkpoint()
    if row is None:
        raise NotFound("no checkpoint yet", code="no_checkpoint")
    return Checkpoint(seq=int(row["seq"]), hash=row["hash"], signature=row["signature"], created_at=row["created_at"])


class PurposeOut(msgspec.Struct):
    code: str
    name: str
    subject_kind: str
    allowed_scopes: list[str]
    max_validity_days: int
    daily_cap: int


@get("/v1/purposes", tags=["partner"], summary="The purpose catalog: what each purpose allows", cache=300)
async def purpose_catalog() -> list[PurposeOut]:
    return [PurposeOut(code=p.code, name=p.name, subject_kind=p.subject_kind, allowed_scopes=sorted(p.allowed_scopes),
                       max_validity_days=p.max_validity_days, daily_cap=p.daily_cap) for p in PURPOSES.values()]
