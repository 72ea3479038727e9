"""The citizen's own credit data as the citizen sees it (`/v1/me`): the score and its history, records,
authorizations and the decisions on them, and the access log. Each function answers with the wire type,
one page at a time; the routes only pass the bound person and the paging parameters through."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from piccolo.query.functions.aggregate import Count, Max

from core.db import as_utc
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
    PartnerRevocation,
    RecordPage,
    ScoreHistoryPage,
    ScorePoint,
)
from credit.tables import LedgerEntry

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
    """A page of the person's authorizations, each with how it has been used (the consent dashboard)."""
    views = await authz.list_for_person(person_id=person_id, limit=limit + 1, before=cursor)
    page = views[:limit]
    subject_id = await services.person_public_id(person_id)
    used = await ledger_usage(subject_id=subject_id, authorization_ids=[v.id for v in page])
    items = []
    for view in page:
        usage = used.get(view.id, _UNUSED)
        items.append(msgspec.structs.replace(citizen_authorization(view), last_used_at=usage.last_used_at,
                                             uses_today=usage.today, uses_total=usage.total))
    return CitizenAuthorizationPage(items=items, next_cursor=page[-1].id if len(views) > limit and page else None)


@dataclass(frozen=True, slots=True)
class Usage:
    last_used_at: datetime | None
    today: int
    total: int


_UNUSED = Usage(last_used_at=None, today=0, total=0)


async def ledger_usage(*, subject_id: str, authorization_ids: list[str]) -> dict[str, Usage]:
    """How often each authorization was used to read the subject's data: the access ledger's `allowed` entries.

    The ledger, not the daily-cap counters in the store: an entry is committed before the partner hears its
    answer (so concurrent reads on any worker are all counted, exactly), it survives a store that loses its data,
    and it covers every kind of read (score query, threshold check, scenario and lending reads). Two grouped
    queries over the subject's entries (indexed by subject) for one page of authorizations. "Today" is the UTC
    day, the day the daily cap counts.
    """
    if not authorization_ids:
        return {}
    mine = ((LedgerEntry.subject_id == subject_id) & (LedgerEntry.outcome == "allowed")
            & LedgerEntry.authorization_id.is_in(authorization_ids))
    start_of_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    totals = await LedgerEntry.select(LedgerEntry.authorization_id, Count(), Max(LedgerEntry.at, alias="last")
                                      ).where(mine).group_by(LedgerEntry.authorization_id)
    today = {r["authorization_id"]: int(r["count"]) for r in await LedgerEntry.select(
        LedgerEntry.authorization_id, Count()).where(mine & (LedgerEntry.at >= start_of_day)).group_by(
        LedgerEntry.authorization_id)}
    return {r["authorization_id"]: Usage(last_used_at=_as_datetime(r["last"]), total=int(r["count"]),
                                         today=today.get(r["authorization_id"], 0)) for r in totals}


def _as_datetime(value: Any) -> datetime | None:
    """An aggregate's timestamp: PostgreSQL hands a datetime, SQLite the stored text."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return as_utc(moment)


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


# Client ids are printable ASCII; anything else (a NUL byte above all, which PostgreSQL refuses as text) is
# looked up nowhere.
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,64}")


async def revoke_partner(*, partner_client_id: str, person_id: int, reason: str | None, store: Store
                         ) -> PartnerRevocation:
    """Revoke every authorization one partner holds about me and refuse its waiting requests, in one call.

    A partner that holds nothing (or does not exist) gets an empty answer, the same as one whose
    authorizations were all ended before: the call is safe to repeat and says nothing about other partners.
    """
    if not _CLIENT_ID.fullmatch(partner_client_id):
        return PartnerRevocation(partner_client_id=partner_client_id, ended=[])  # no partner has such an id
    ended = await authz.end_all_for_person(person_id=person_id, partner_client_id=partner_client_id, store=store,
                                           reason=reason or "revoked with everything else of this partner")
    return PartnerRevocation(partner_client_id=partner_client_id, ended=[citizen_authorization(v) for v in ended])


async def access_log(*, person_id: int, limit: int, cursor: int | None) -> AccessLogPage:
    """Ledger entries about the person, newest first; the cursor is the last entry's sequence number."""
    rows = await services.access_log(subject_id=await services.person_public_id(person_id), limit=limit + 1,
                                     before_seq=cursor)
    page = rows[:limit]
    items = [AccessLogEntry(seq=r["seq"], at=r["at"], actor_name=r["actor_name"], actor_type=r["actor_type"],
                            action=r["action"], outcome=r["outcome"], fields=r["fields"].split(), hash=r["hash"],
                            purpose=r["purpose"], authorization_id=r["authorization_id"]) for r in page]
    return AccessLogPage(items=items, next_cursor=str(page[-1]["seq"]) if len(rows) > limit and page else None)
