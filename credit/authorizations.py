"""Authorizations (consent): partners ask, subjects decide, every transition leaves an outbox event.

States (DESIGN §3): awaiting_authorization → authorized → revoked | expired | terminated, and
awaiting_authorization → rejected | expired. Transitions are conditional updates (`WHERE status = …`),
so two concurrent decisions cannot both win. Status is read from the database on every use, which is
what makes a revocation effective for the very next request on every worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core import db
from core.db import as_utc_or_none
from core.errors import Conflict, NotFound, Unprocessable
from core.store import Count, Marker, Store, StoreUnavailable
from credit.catalog import DATA_SCOPES, PURPOSES, Purpose
from credit.identity import FieldCipher, InvalidIdentifier, normalize_id_number, normalize_uscc
from credit.schemas import PartnerAuthorization
from credit.services import person_public_id
from credit.tables import Authorization, Enterprise, OutboxEvent, Person

REQUEST_TTL = timedelta(days=7)
AWAITING = "awaiting_authorization"
AUTHORIZED = "authorized"
TERMINAL = frozenset({"rejected", "revoked", "expired", "terminated"})

_COLUMNS = (
    Authorization.public_id, Authorization.partner_client_id, Authorization.partner_name,
    Authorization.partner_kind, Authorization.subject_kind, Authorization.person, Authorization.enterprise,
    Authorization.purpose, Authorization.scopes, Authorization.status, Authorization.daily_cap,
    Authorization.validity_days, Authorization.request_expires_at, Authorization.valid_until,
    Authorization.created_at, Authorization.decided_at, Authorization.ended_at, Authorization.ended_reason,
)


@dataclass(frozen=True, slots=True)
class AuthorizationView:
    id: str
    partner_client_id: str
    partner_name: str
    partner_kind: str
    subject_kind: str
    person_id: int | None
    enterprise_id: int | None
    purpose: str
    scopes: tuple[str, ...]
    status: str
    daily_cap: int
    validity_days: int
    request_expires_at: datetime
    valid_until: datetime | None
    created_at: datetime
    decided_at: datetime | None
    ended_at: datetime | None
    ended_reason: str | None

    def usable_at(self, now: datetime) -> bool:
        return self.status == AUTHORIZED and self.valid_until is not None and now < self.valid_until


def _view(row: dict[str, Any]) -> AuthorizationView:
    return AuthorizationView(
        id=row["public_id"], partner_client_id=row["partner_client_id"], partner_name=row["partner_name"],
        partner_kind=row["partner_kind"], subject_kind=row["subject_kind"], person_id=row["person"],
        enterprise_id=row["enterprise"], purpose=row["purpose"], scopes=tuple(row["scopes"].split()),
        status=row["status"], daily_cap=int(row["daily_cap"]), validity_days=int(row["validity_days"]),
        request_expires_at=as_utc_or_none(row["request_expires_at"]) or datetime.now(UTC),
        valid_until=as_utc_or_none(row["valid_until"]),
        created_at=as_utc_or_none(row["created_at"]) or datetime.now(UTC),
        decided_at=as_utc_or_none(row["decided_at"]),
        ended_at=as_utc_or_none(row["ended_at"]), ended_reason=row["ended_reason"],
    )


def view_of(row: dict[str, Any]) -> AuthorizationView:
    """The view of a row holding every authorization column (for hot paths with their own prepared query)."""
    return _view(row)


def open_id(*, consent_key: bytes, partner_client_id: str, subject_public_id: str) -> str:
    """Partner-scoped subject id: the same person has unrelated open ids at two partners."""
    digest = hmac.new(consent_key, f"{partner_client_id}:{subject_public_id}".encode(), hashlib.sha256).hexdigest()
    return f"oid_{digest[:32]}"


def _outbox(*, topic: str, authorization: AuthorizationView, extra: dict[str, Any] | None = None) -> OutboxEvent:
    payload = {"type": topic, "authorization_id": authorization.id, "purpose": authorization.purpose,
               "status": authorization.status, **(extra or {})}
    return OutboxEvent(public_id=f"evt_{secrets.token_hex(12)}", topic=topic, aggregate_id=authorization.id,
                       recipient=authorization.partner_client_id, payload=payload)


def _purpose_or_422(code: str, subject_kind: str) -> Purpose:
    purpose = PURPOSES.get(code)
    if purpose is None:
        raise Unprocessable(f"unknown purpose {code!r}", code="unknown_purpose")
    if purpose.subject_kind != subject_kind:
        raise Unprocessable(f"purpose {code!r} is for {purpose.subject_kind} subjects", code="purpose_subject_mismatch")
    return purpose


def _checked_request(*, purpose_code: str, subject_kind: str, scopes: list[str], validity_days: int
                     ) -> tuple[Purpose, frozenset[str]]:
    """The purpose and scopes of a request, if the purpose justifies the scopes and the validity."""
    purpose = _purpose_or_422(purpose_code, subject_kind)
    wanted = frozenset(scopes)
    if not wanted:
        raise Unprocessable("at least one scope is required", code="scopes_required")
    if unknown := wanted - DATA_SCOPES.keys():
        raise Unprocessable(f"unknown scopes: {', '.join(sorted(unknown))}", code="unknown_scope")
    if extra := wanted - purpose.allowed_scopes:
        raise Unprocessable(f"purpose {purpose.code} does not justify: {', '.join(sorted(extra))}",
                            code="scope_not_allowed_for_purpose")
    if not 1 <= validity_days <= purpose.max_validity_days:
        raise Unprocessable(f"validity must be 1..{purpose.max_validity_days} days for {purpose.code}",
                            code="validity_too_long")
    return purpose, wanted


async def request_authorization(
    *,
    cipher: FieldCipher,
    partner_client_id: str,
    partner_name: str,
    partner_kind: str,
    subject_kind: str,
    purpose_code: str,
    scopes: list[str],
    validity_days: int,
    id_number: str | None = None,
    name: str | None = None,
    uscc: str | None = None,
) -> AuthorizationView:
    """Create an authorization request. The answer is identical whether or not the subject exists."""
    purpose, wanted = _checked_request(purpose_code=purpose_code, subject_kind=subject_kind, scopes=scopes,
                                       validity_days=validity_days)
    person_id: int | None = None
    enterprise_id: int | None = None
    try:
        if subject_kind == "person":
            if not id_number or not name:
                raise Unprocessable("a person is named by id_number and name", code="subject_required")
            number = normalize_id_number(id_number)
            row = await Person.select(Person._meta.primary_key, Person.name).where(
                Person.id_number_hash == cipher.lookup_hash("id_number", number)).first()
            # A wrong name is treated exactly like an unknown person: stored unmatched, never approvable.
            person_id = row["id"] if row and row["name"] == name.strip() else None
        else:
            if not uscc:
                raise Unprocessable("an enterprise is named by its uscc", code="subject_required")
            code = normalize_uscc(uscc)
            row = await Enterprise.select(Enterprise._meta.primary_key).where(
                Enterprise.uscc_hash == cipher.lookup_hash("uscc", code)).first()
            enterprise_id = row["id"] if row else None
    except InvalidIdentifier as exc:
        raise Unprocessable(f"invalid {exc.kind}: {exc.reason}", code=f"invalid_{exc.kind}",
                            errors=[{"field": exc.kind, "message": exc.reason}]) from None
    now = datetime.now(UTC)
    public_id = f"authz_{secrets.token_hex(12)}"
    await Authorization.insert(Authorization(
        public_id=public_id, partner_client_id=partner_client_id, partner_name=partner_name,
        partner_kind=partner_kind, subject_kind=subject_kind, person=person_id, enterprise=enterprise_id,
        purpose=purpose.code, scopes=" ".join(sorted(wanted)), status=AWAITING, daily_cap=purpose.daily_cap,
        validity_days=validity_days, request_expires_at=now + REQUEST_TTL, created_at=now))
    return await _get(public_id)


_FOR_USE_SQL = (
    "SELECT a.public_id, a.partner_client_id, a.partner_name, a.partner_kind, a.subject_kind, a.person,"
    " a.enterprise, a.purpose, a.scopes, a.status, a.daily_cap, a.validity_days, a.request_expires_at,"
    " a.valid_until, a.created_at, a.decided_at, a.ended_at, a.ended_reason, p.public_id AS person_public_id"
    " FROM authorizations a LEFT JOIN persons p ON p.id = a.person WHERE a.public_id = $1"
)


async def load_for_use(public_id: str) -> tuple[AuthorizationView, str | None] | None:
    """Hot path: the authorization and its subject's public id in one prepared query, read from the
    database on every use so that a revocation committed anywhere applies to the very next request."""
    row = await db.fetch_one(Authorization._meta.db, _FOR_USE_SQL, public_id)
    if row is None:
        return None
    view = _view(row)
    if (view.status == AWAITING and datetime.now(UTC) >= view.request_expires_at) or (
            view.status == AUTHORIZED and view.valid_until is not None and datetime.now(UTC) >= view.valid_until):
        view = await _expire_if_due(view)
    return view, row["person_public_id"]


async def _get(public_id: str) -> AuthorizationView:
    row = await Authorization.select(*_COLUMNS).where(Authorization.public_id == public_id).first()
    if row is None:
        raise NotFound("authorization not found", code="authorization_not_found")
    return _view(row)


async def for_partner(*, public_id: str, partner_client_id: str) -> AuthorizationView:
    """The partner's own authorization; another partner's looks exactly like a missing one."""
    view = await _expire_if_due(await _get(public_id))
    if view.partner_client_id != partner_client_id:
        raise NotFound("authorization not found", code="authorization_not_found")
    return view


async def for_person(*, public_id: str, person_id: int) -> AuthorizationView:
    """The subject's own authorization (anyone else's is a 404)."""
    view = await _expire_if_due(await _get(public_id))
    if view.person_id != person_id:
        raise NotFound("authorization not found", code="authorization_not_found")
    return view


async def list_for_person(*, person_id: int, limit: int, before: str | None = None) -> list[AuthorizationView]:
    """The person's authorizations, newest first, after the cursor `before` (an authorization id).

    Raises:
        Unprocessable: the cursor is not an authorization id (`invalid_cursor`).
    """
    if before is not None and not _AUTHORIZATION_ID.fullmatch(before):
        raise Unprocessable("invalid cursor", code="invalid_cursor")
    query = Authorization.select(*_COLUMNS).where(Authorization.person == person_id).order_by(
        Authorization.public_id, ascending=False).limit(limit)
    if before:
        query = query.where(Authorization.public_id < before)
    return [await _expire_if_due(_view(r)) for r in await query]


STORE_DOMAIN = "authz"  # authorization state in the shared store: use counters, ended markers
_USE_TTL_SECONDS = 26 * 3600  # a UTC day plus margin


def daily_use(view: AuthorizationView) -> Count:
    """The counter one use spends against the authorization's daily cap (today, UTC)."""
    day = datetime.now(UTC).strftime("%Y%m%d")
    return Count(STORE_DOMAIN, f"uses:{view.id}:{day}", view.daily_cap, _USE_TTL_SECONDS)
# Longer than any worker keeps an authorized view in memory (credit.queries), with a wide margin.
ENDED_MARKER_TTL_SECONDS = 3600


def ended_marker(public_id: str) -> tuple[str, str]:
    """Store key (domain, key) that says an authorization has left `authorized` (revoked, terminated)."""
    return STORE_DOMAIN, f"ended:{public_id}"


async def _transition(view: AuthorizationView, *, to: str, from_states: frozenset[str], topic: str,
                      now: datetime, reason: str | None = None, values: dict[Any, Any] | None = None,
                      store: Store | None = None) -> AuthorizationView:
    """Move `view` to `to` if it is still in one of `from_states`; write the outbox event in the same step.

    Leaving `authorized` first sets the ended marker in the shared store (`store`), before the database
    changes: workers that keep the authorized view in memory see the marker on their very next use,
    so a revocation applies everywhere at once. If the store is down the revocation fails (503) rather
    than half-apply. The row is the durable record: a store that loses its data is seeded again with the
    markers of recently ended authorizations (`ended_markers`), and the marker is set once more after the
    commit, for a store emptied and seeded between the first write and the commit.
    """
    ends_use = AUTHORIZED in from_states and to != AUTHORIZED and store is not None
    if ends_use:
        assert store is not None
        await store.set(*ended_marker(view.id), b"1", ttl_seconds=ENDED_MARKER_TTL_SECONDS)
    changes: dict[Any, Any] = {Authorization.status: to, **(values or {})}
    if to in TERMINAL:
        changes[Authorization.ended_at] = now
        changes[Authorization.ended_reason] = reason
    async with Authorization._meta.db.transaction():
        updated = await Authorization.update(changes).where(
            (Authorization.public_id == view.id) & Authorization.status.is_in(list(from_states))).returning(
            Authorization.public_id)
        if not updated:
            current = await _get(view.id)
            raise Conflict(f"the authorization is {current.status}", code="authorization_state_conflict",
                           status_now=current.status)
        after = await _get(view.id)
        await OutboxEvent.insert(_outbox(topic=topic, authorization=after,
                                         extra={"reason": reason} if reason else None))
    if ends_use:
        assert store is not None
        # Committed: a store that is down now comes back either with the first marker or empty (then seeded).
        with contextlib.suppress(StoreUnavailable):
            await store.set(*ended_marker(view.id), b"1", ttl_seconds=ENDED_MARKER_TTL_SECONDS)
    return after


async def ended_markers() -> Iterable[Marker]:
    """Ended markers of authorizations revoked or terminated within the marker lifetime (seeding the store)."""
    now = datetime.now(UTC)
    since = now - timedelta(seconds=ENDED_MARKER_TTL_SECONDS)
    rows = await Authorization.select(Authorization.public_id, Authorization.ended_at).where(
        Authorization.status.is_in(["revoked", "terminated"]) & (Authorization.ended_at > since))
    markers = []
    for row in rows:
        ended_at = as_utc_or_none(row["ended_at"]) or now
        left = ENDED_MARKER_TTL_SECONDS - int((now - ended_at).total_seconds())
        markers.append(Marker(*ended_marker(row["public_id"]), max(1, left)))
    return markers


async def _expire_if_due(view: AuthorizationView) -> AuthorizationView:
    now = datetime.now(UTC)
    if view.status == AWAITING and now >= view.request_expires_at:
        return await _try_expire(view, now, "the request was not answered in time")
    if view.status == AUTHORIZED and view.valid_until is not None and now >= view.valid_until:
        return await _try_expire(view, now, "the authorization reached valid_until")
    return view


async def expire_if_due(view: AuthorizationView) -> AuthorizationView:
    """`view`, expired first if its request or its validity has run out (a conditional update)."""
    return await _expire_if_due(view)


async def _try_expire(view: AuthorizationView, now: datetime, reason: str) -> AuthorizationView:
    try:
        return await _transition(view, to="expired", from_states=frozenset({view.status}),
                                 topic="authorization.expired", now=now, reason=reason)
    except Conflict:
        return await _get(view.id)


async def approve(*, public_id: str, person_id: int) -> AuthorizationView:
    view = await for_person(public_id=public_id, person_id=person_id)
    now = datetime.now(UTC)
    return await _transition(view, to=AUTHORIZED, from_states=frozenset({AWAITING}),
                             topic="authorization.authorized", now=now,
                             values={Authorization.decided_at: now,
                                     Authorization.valid_until: now + timedelta(days=view.validity_days)})


async def reject(*, public_id: str, person_id: int, reason: str | None) -> AuthorizationView:
    view = await for_person(public_id=public_id, person_id=person_id)
    now = datetime.now(UTC)
    return await _transition(view, to="rejected", from_states=frozenset({AWAITING}),
                             topic="authorization.rejected", now=now, reason=reason,
                             values={Authorization.decided_at: now})


async def revoke(*, public_id: str, person_id: int, reason: str | None, store: Store) -> AuthorizationView:
    view = await for_person(public_id=public_id, person_id=person_id)
    return await _transition(view, to="revoked", from_states=frozenset({AUTHORIZED}),
                             topic="authorization.revoked", now=datetime.now(UTC), reason=reason, store=store)


async def terminate(*, public_id: str, partner_client_id: str, reason: str | None, store: Store
                    ) -> AuthorizationView:
    """The partner withdraws its own request or ends an authorization it no longer needs."""
    view = await for_partner(public_id=public_id, partner_client_id=partner_client_id)
    if view.status == AWAITING:
        return await _transition(view, to="terminated", from_states=frozenset({AWAITING}),
                                 topic="authorization.terminated", now=datetime.now(UTC), reason=reason)
    return await _transition(view, to="terminated", from_states=frozenset({AUTHORIZED}),
                             topic="authorization.terminated", now=datetime.now(UTC), reason=reason, store=store)


async def grant_for_person(*, person_id: int, partner_client_id: str, partner_name: str, partner_kind: str,
                           purpose_code: str, scopes: list[str], validity_days: int, daily_cap: int | None = None
                           ) -> AuthorizationView:
    """An authorization the citizen gives on the partner-started consent page (OAuth authorization code):
    asked and decided in one step, created `authorized` with the usual `authorization.authorized` event.

    `daily_cap` may lower the purpose's cap, never raise it.

    Raises:
        Unprocessable: the purpose does not justify the scopes or the validity, or the cap exceeds the purpose's.
    """
    purpose, wanted = _checked_request(purpose_code=purpose_code, subject_kind="person", scopes=scopes,
                                       validity_days=validity_days)
    cap = purpose.daily_cap if daily_cap is None else daily_cap
    if not 1 <= cap <= purpose.daily_cap:
        raise Unprocessable(f"daily_cap must be 1..{purpose.daily_cap} for {purpose.code}", code="daily_cap_too_high")
    now = datetime.now(UTC)
    public_id = f"authz_{secrets.token_hex(12)}"
    async with Authorization._meta.db.transaction():
        await Authorization.insert(Authorization(
            public_id=public_id, partner_client_id=partner_client_id, partner_name=partner_name,
            partner_kind=partner_kind, subject_kind="person", person=person_id, enterprise=None,
            purpose=purpose.code, scopes=" ".join(sorted(wanted)), status=AUTHORIZED, daily_cap=cap,
            validity_days=validity_days, request_expires_at=now, created_at=now, decided_at=now,
            valid_until=now + timedelta(days=validity_days)))
        view = await _get(public_id)
        await OutboxEvent.insert(_outbox(topic="authorization.authorized", authorization=view))
    return view


def check_request(*, purpose_code: str, subject_kind: str, scopes: list[str], validity_days: int,
                  daily_cap: int | None = None) -> Purpose:
    """The purpose of a request if it justifies the scopes, the validity and the daily cap (raises
    `Unprocessable` with a stable code otherwise): what a pushed authorization request is checked against
    before anyone is asked."""
    purpose, _ = _checked_request(purpose_code=purpose_code, subject_kind=subject_kind, scopes=scopes,
                                  validity_days=validity_days)
    if daily_cap is not None and not 1 <= daily_cap <= purpose.daily_cap:
        raise Unprocessable(f"daily_cap must be 1..{purpose.daily_cap} for {purpose.code}", code="daily_cap_too_high")
    return purpose


# ---------------------------------------------------------------- the partner's view (wire type)


def partner_authorization(view: AuthorizationView, *, consent_key: bytes, subject_public_id: str | None
                          ) -> PartnerAuthorization:
    """What the partner sees: never the subject's identity; the partner-scoped open id only once authorized
    and only when the subject is named (`subject_public_id`)."""
    oid = None
    if subject_public_id and view.status == AUTHORIZED:
        oid = open_id(consent_key=consent_key, partner_client_id=view.partner_client_id,
                      subject_public_id=subject_public_id)
    return PartnerAuthorization(
        id=view.id, status=view.status, subject_kind=view.subject_kind, purpose=view.purpose,
        scopes=list(view.scopes), daily_cap=view.daily_cap, created_at=view.created_at,
        request_expires_at=view.request_expires_at, valid_until=view.valid_until, decided_at=view.decided_at,
        ended_at=view.ended_at, ended_reason=view.ended_reason, open_id=oid)


async def request_for_partner(*, cipher: FieldCipher, consent_key: bytes, partner_client_id: str, partner_name: str,
                              partner_kind: str, subject_kind: str, purpose_code: str, scopes: list[str],
                              validity_days: int, id_number: str | None = None, name: str | None = None,
                              uscc: str | None = None) -> PartnerAuthorization:
    """`request_authorization` as the asking partner sees its answer (no open id: nothing is authorized yet)."""
    view = await request_authorization(
        cipher=cipher, partner_client_id=partner_client_id, partner_name=partner_name, partner_kind=partner_kind,
        subject_kind=subject_kind, purpose_code=purpose_code, scopes=scopes, validity_days=validity_days,
        id_number=id_number, name=name, uscc=uscc)
    return partner_authorization(view, consent_key=consent_key, subject_public_id=None)


async def partner_status(*, public_id: str, partner_client_id: str, consent_key: bytes) -> PartnerAuthorization:
    """The partner's own authorization, with the subject's open id once authorized."""
    view = await for_partner(public_id=public_id, partner_client_id=partner_client_id)
    subject = await person_public_id(view.person_id) if view.person_id is not None else None
    return partner_authorization(view, consent_key=consent_key, subject_public_id=subject)


async def terminate_for_partner(*, public_id: str, partner_client_id: str, store: Store, consent_key: bytes
                                ) -> PartnerAuthorization:
    view = await terminate(public_id=public_id, partner_client_id=partner_client_id,
                           reason="terminated by the partner", store=store)
    return partner_authorization(view, consent_key=consent_key, subject_public_id=None)


async def expire_due(*, now: datetime | None = None) -> int:
    """Sweep: expire unanswered requests and authorizations past valid_until (background job)."""
    moment = now or datetime.now(UTC)
    rows = await Authorization.select(*_COLUMNS).where(
        ((Authorization.status == AWAITING) & (Authorization.request_expires_at <= moment))
        | ((Authorization.status == AUTHORIZED) & (Authorization.valid_until <= moment))).limit(1000)
    expired = 0
    for row in rows:
        if (await _expire_if_due(_view(row))).status == "expired":
            expired += 1
    return expired


# ---------------------------------------------------------------- enterprise subjects
# An enterprise decides through its members (法人 or 经办人); the caller has already checked membership,
# so these functions take the enterprise's key and treat anyone else's authorization as missing.


async def grant_for_enterprise(*, enterprise_id: int, partner_client_id: str, partner_name: str, partner_kind: str,
                               purpose_code: str, scopes: list[str], validity_days: int) -> AuthorizationView:
    """An authorization the enterprise gives in the same step as asking (e.g. submitting a loan demand to a
    bank): created `authorized`, decided now, with the usual `authorization.authorized` event."""
    purpose, wanted = _checked_request(purpose_code=purpose_code, subject_kind="enterprise", scopes=scopes,
                                       validity_days=validity_days)
    now = datetime.now(UTC)
    public_id = f"authz_{secrets.token_hex(12)}"
    async with Authorization._meta.db.transaction():
        await Authorization.insert(Authorization(
            public_id=public_id, partner_client_id=partner_client_id, partner_name=partner_name,
            partner_kind=partner_kind, subject_kind="enterprise", person=None, enterprise=enterprise_id,
            purpose=purpose.code, scopes=" ".join(sorted(wanted)), status=AUTHORIZED, daily_cap=purpose.daily_cap,
            validity_days=validity_days, request_expires_at=now + REQUEST_TTL, created_at=now, decided_at=now,
            valid_until=now + timedelta(days=validity_days)))
        view = await _get(public_id)
        await OutboxEvent.insert(_outbox(topic="authorization.authorized", authorization=view))
    return view


# Authorization ids are `authz_` + hex; anything else (a NUL byte above all, which PostgreSQL refuses as
# text) is not looked up at all.
_AUTHORIZATION_ID = re.compile(r"[A-Za-z0-9_]{1,40}")


async def for_enterprise(*, public_id: str, enterprise_id: int) -> AuthorizationView:
    """The enterprise's own authorization (anyone else's is a 404)."""
    if not _AUTHORIZATION_ID.fullmatch(public_id):
        raise NotFound("authorization not found", code="authorization_not_found")
    view = await _expire_if_due(await _get(public_id))
    if view.subject_kind != "enterprise" or view.enterprise_id != enterprise_id:
        raise NotFound("authorization not found", code="authorization_not_found")
    return view


async def list_for_enterprise(*, enterprise_id: int, limit: int, before: str | None = None
                              ) -> list[AuthorizationView]:
    query = Authorization.select(*_COLUMNS).where(
        (Authorization.enterprise == enterprise_id) & (Authorization.subject_kind == "enterprise")).order_by(
        Authorization.public_id, ascending=False).limit(limit)
    if before is not None and not _AUTHORIZATION_ID.fullmatch(before):
        raise Unprocessable("invalid cursor", code="invalid_cursor")
    if before:
        query = query.where(Authorization.public_id < before)
    return [await _expire_if_due(_view(r)) for r in await query]


async def approve_for_enterprise(*, public_id: str, enterprise_id: int) -> AuthorizationView:
    view = await for_enterprise(public_id=public_id, enterprise_id=enterprise_id)
    now = datetime.now(UTC)
    return await _transition(view, to=AUTHORIZED, from_states=frozenset({AWAITING}),
                             topic="authorization.authorized", now=now,
                             values={Authorization.decided_at: now,
                                     Authorization.valid_until: now + timedelta(days=view.validity_days)})


async def reject_for_enterprise(*, public_id: str, enterprise_id: int, reason: str | None = None
                                ) -> AuthorizationView:
    view = await for_enterprise(public_id=public_id, enterprise_id=enterprise_id)
    now = datetime.now(UTC)
    return await _transition(view, to="rejected", from_states=frozenset({AWAITING}),
                             topic="authorization.rejected", now=now, reason=reason,
                             values={Authorization.decided_at: now})


async def revoke_for_enterprise(*, public_id: str, enterprise_id: int, reason: str | None = None,
                                store: Store | None = None) -> AuthorizationView:
    view = await for_enterprise(public_id=public_id, enterprise_id=enterprise_id)
    return await _transition(view, to="revoked", from_states=frozenset({AUTHORIZED}),
                             topic="authorization.revoked", now=datetime.now(UTC), reason=reason, store=store)
