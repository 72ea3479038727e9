"""The citizen's own credit data as the citizen sees it (`/v1/me`): the score and its history, records,
authorizations and the decisions on them, and the access log. Each function answers with the wire type,
one page at a time; the routes only pass the bound person and the paging parameters through."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from core.errors import Unprocessable
from core.pagination import decode_cursor, encode_cursor
from core.store import Store
from credit import authorizations as authz
from credit import scores, services
from credit.export import citizen_authorization, my_score, record_out
from credit.schemas import (
    AccessLogEntry,
    AccessLogPage,
    ApprovedAuthorization,
    CitizenAuthorization,
    CitizenAuthorizationPage,
    MyScore,
    RecordPage,
    ScoreHistoryPage,
    ScorePoint,
)

CONSENT_RECEIPT_TYP = "consent-receipt+jwt"


class DocumentSigner(Protocol):
    """Signs a statement as a compact JWS (the service's token keys; see /.well-known/jwks.json)."""

    def sign_document(self, claims: dict[str, Any], *, typ: str) -> str: ...


async def current_score(*, store: Store, person_id: int) -> MyScore:
    return my_score(await scores.current_score(store=store, person_id=person_id))


async def score_history(*, person_id: int, limit: int, cursor: str | None) -> ScoreHistoryPage:
    """Snapshots newest first; the cursor is the last snapshot's time (opaque to the client)."""
    before = None
    if cursor:
        (text,) = decode_cursor(cursor, 1)
        try:
            before = datetime.fromisoformat(text)
        except ValueError:
            raise Unprocessable("invalid cursor", code="invalid_cursor") from None
    rows = await scores.score_history(person_id=person_id, limit=limit + 1, before=before)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]["as_of"].isoformat()) if len(rows) > limit and page else None
    return ScoreHistoryPage(items=[ScorePoint(total=r["total"], tier=r["tier"], trigger=r["trigger"],
                                              as_of=r["as_of"]) for r in page], next_cursor=next_cursor)


async def records(*, person_id: int, limit: int, cursor: str | None) -> RecordPage:
    rows, next_cursor = await services.person_records(person_id=person_id, limit=limit, cursor=cursor)
    now = datetime.now(UTC)
    return RecordPage(items=[record_out(r, now=now) for r in rows], next_cursor=next_cursor)


async def authorizations(*, person_id: int, limit: int, cursor: str | None) -> CitizenAuthorizationPage:
    views = await authz.list_for_person(person_id=person_id, limit=limit + 1, before=cursor)
    page = views[:limit]
    return CitizenAuthorizationPage(items=[citizen_authorization(v) for v in page],
                                    next_cursor=page[-1].id if len(views) > limit and page else None)


async def approve(*, public_id: str, person_id: int, signer: DocumentSigner) -> ApprovedAuthorization:
    """Approve, and hand the citizen a signed consent receipt of what was granted to whom."""
    view = await authz.approve(public_id=public_id, person_id=person_id)
    receipt = signer.sign_document({
        "jti": view.id, "authorization_id": view.id, "subject": await services.person_public_id(person_id),
        "partner": {"client_id": view.partner_client_id, "name": view.partner_name, "kind": view.partner_kind},
        "purpose": view.purpose, "scopes": list(view.scopes), "daily_cap": view.daily_cap,
        "granted_at": int(view.decided_at.timestamp()) if view.decided_at else None,
        "valid_until": int(view.valid_until.timestamp()) if view.valid_until else None,
    }, typ=CONSENT_RECEIPT_TYP)
    return ApprovedAuthorization(authorization=citizen_authorization(view), consent_receipt=receipt)


async def reject(*, public_id: str, person_id: int, reason: str | None) -> CitizenAuthorization:
    return citizen_authorization(await authz.reject(public_id=public_id, person_id=person_id, reason=reason))


async def revoke(*, public_id: str, person_id: int, reason: str | None, store: Store) -> CitizenAuthorization:
    return citizen_authorization(await authz.revoke(public_id=public_id, person_id=person_id, reason=reason,
                                                    store=store))


async def access_log(*, person_id: int, limit: int, cursor: int | None) -> AccessLogPage:
    """Ledger entries about the person, newest first; the cursor is the last entry's sequence number."""
    rows = await services.access_log(subject_id=await services.person_public_id(person_id), limit=limit + 1,
                                     before_seq=cursor)
    page = rows[:limit]
    items = [AccessLogEntry(seq=r["seq"], at=r["at"], actor_name=r["actor_name"], actor_type=r["actor_type"],
                            action=r["action"], outcome=r["outcome"], fields=r["fields"].split(), hash=r["hash"],
                            purpose=r["purpose"], authorization_id=r["authorization_id"]) for r in page]
    return AccessLogPage(items=items, next_cursor=str(page[-1]["seq"]) if len(rows) > limit and page else None)
