"""Portrait service: computing, versioning, caching and reading enterprise portraits.

Freshness (the choice, and why): the credit core must not depend on 信易贷, so ingest cannot call us
when an enterprise's records change. Instead every read compares a cheap watermark — the number of the
enterprise's records, the latest `updated_at` among them (ingest stamps it on every insert and
correction) and the registry facts the portrait uses — with the one stored next to the cached portrait.
The watermark comes from the same prepared query that loads the authorization on the bank hot path, so
freshness costs no extra round trip there. A changed watermark, a missing cache entry or an entry older
than `CACHE_TTL_SECONDS` (decay and disclosure periods move with time) recomputes the portrait.

Versions: a recomputed portrait whose digest equals the latest snapshot's reuses that snapshot (same id
and version); a different digest appends version n+1. The unique (enterprise, version) index makes two
workers refreshing at once meet in the database; the loser re-reads and reuses the winner's row.

Bank reads (`read_for_bank`) mirror `credit.queries`: the authorization is read from the database on
every use (a revocation applies to the very next request), purpose and scope are checked, uses are
counted against the daily cap, and every outcome — answered or refused — is ledgered (subject_kind
`enterprise`) before the bank hears it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from piccolo.query.mixins import OnConflictAction

from core import db
from core.admission import Admission, admit, admit_with
from core.errors import Conflict, DomainError, NotFound, RateLimited, Unprocessable
from core.store import Store
from credit import authorizations as authz
from credit.identity import FieldCipher, InvalidIdentifier, new_public_id, normalize_uscc
from credit.ledger import AccessEvent, LedgerReceipt, LedgerWriter, result_digest
from credit.queries import AuthorizationRefused, Caller, CallerResolver, use_refusal
from credit.tables import CreditRecord, Enterprise
from lending.inputs import plausible_id
from lending.portrait import (
    RISK_FLAGS,
    EnterpriseFacts,
    EnterpriseRecord,
    compute_portrait,
)
from lending.portrait_schemas import EnterpriseInfo, PortraitOut, PortraitVersion, PortraitVersionPage
from lending.tables import PortraitSnapshot

CACHE_TTL_SECONDS = 3600
PORTRAIT_SCOPE = "portrait"
_CACHE_DOMAIN = "portrait"
_SNAPSHOT_ATTEMPTS = 3
_EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()
_encoder = msgspec.json.Encoder()

_RECORD_COLUMNS = (CreditRecord.public_id, CreditRecord.category, CreditRecord.polarity, CreditRecord.severity,
                   CreditRecord.occurred_at, CreditRecord.status, CreditRecord.source, CreditRecord.updated_at)

# The registry facts and the record watermark of one enterprise (aliases shared by both queries below,
# so the watermark is built from identically typed values on either path).
_ENTERPRISE_SELECT = (
    "e.id AS enterprise_pk, e.public_id AS enterprise_public_id, e.name AS enterprise_name,"
    " e.uscc_hash AS enterprise_uscc_hash, e.industry AS enterprise_industry,"
    " e.region_code AS enterprise_region_code, e.registered_on AS enterprise_registered_on,"
    " e.registered_capital_fen AS enterprise_capital_fen, e.status AS enterprise_status,"
    # One index range scan gives both the number of records and the latest change.
    " (SELECT count(*) || '|' || coalesce(CAST(max(r.updated_at) AS TEXT), '')"
    "  FROM credit_records r WHERE r.enterprise = e.id) AS records_mark"
)
_WATERMARK_SQL = f"SELECT {_ENTERPRISE_SELECT} FROM enterprises e WHERE e.id = $1"  # noqa: S608 - constant text
_AUTHORIZATION_COLUMNS = (
    "a.public_id, a.partner_client_id, a.partner_name, a.partner_kind, a.subject_kind, a.person,"
    " a.enterprise, a.purpose, a.scopes, a.status, a.daily_cap, a.validity_days, a.request_expires_at,"
    " a.valid_until, a.created_at, a.decided_at, a.ended_at, a.ended_reason"
)
_AUTHORIZATION_FROM = "authorizations a LEFT JOIN enterprises e ON e.id = a.enterprise WHERE a.public_id = $1"
# Constant text; the only parameter is bound.
_BANK_READ_SQL = f"SELECT {_AUTHORIZATION_COLUMNS}, {_ENTERPRISE_SELECT} FROM {_AUTHORIZATION_FROM}"  # noqa: S608


@dataclass(frozen=True)
class PortraitView:
    id: str
    enterprise_id: int
    enterprise_public_id: str
    version: int
    score: int
    grade: str
    dimensions: list[dict[str, Any]]
    tags: list[str]
    risk_flags: list[str]
    sources: list[dict[str, Any]]
    facts: dict[str, Any]  # industry, region_code, years_in_business, open_penalties, tax_grade, dishonest_executee…
    digest: str
    as_of: datetime
    model_version: str


class _Cached(msgspec.Struct):
    """The store entry: the watermark it was computed at, the view, and the document banks receive, both
    kept as raw JSON so the hot path decodes only the watermark and splices the document in unparsed."""

    mark: str
    view: msgspec.Raw
    document: msgspec.Raw


_cache_decoder = msgspec.json.Decoder(_Cached)
_view_decoder = msgspec.json.Decoder(PortraitView)
_document_decoder = msgspec.json.Decoder(PortraitOut)


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _mark(row: dict[str, Any]) -> str:
    """What the portrait depends on, cheaply: record count, last record change and the registry facts."""
    return "|".join(str(row[k]) for k in ("records_mark", "enterprise_registered_on",
                                          "enterprise_capital_fen", "enterprise_status", "enterprise_industry",
                                          "enterprise_region_code"))


def _facts(row: dict[str, Any]) -> EnterpriseFacts:
    return EnterpriseFacts(industry=row["enterprise_industry"], region_code=row["enterprise_region_code"],
                           registered_on=_date(row["enterprise_registered_on"]),
                           registered_capital_fen=int(row["enterprise_capital_fen"] or 0),
                           status=row["enterprise_status"] or "active")


async def _records(enterprise_id: int) -> list[EnterpriseRecord]:
    rows = await CreditRecord.select(*_RECORD_COLUMNS).where(CreditRecord.enterprise == enterprise_id)
    return [EnterpriseRecord(record_id=r["public_id"], category=r["category"], polarity=int(r["polarity"]),
                             severity=r["severity"], occurred_at=_utc(r["occurred_at"]), source=r["source"],
                             received_at=_utc(r["updated_at"]), status=r["status"]) for r in rows]


async def _snapshot(*, enterprise_id: int, enterprise_public_id: str, row: dict[str, Any], now: datetime
                    ) -> PortraitView:
    """Compute the portrait and find or append its snapshot version."""
    portrait = compute_portrait(_facts(row), await _records(enterprise_id), as_of=now)
    content = portrait.content()
    digest = portrait.digest
    dimensions, sources = content["dimensions"], list(portrait.sources)

    def view(public_id: str, version: int) -> PortraitView:
        return PortraitView(id=public_id, enterprise_id=enterprise_id, enterprise_public_id=enterprise_public_id,
                            version=version, score=portrait.score, grade=portrait.grade, dimensions=dimensions,
                            tags=list(portrait.tags), risk_flags=list(portrait.risk_flags), sources=sources,
                            facts=portrait.facts, digest=digest, as_of=now, model_version=portrait.model_version)

    for _ in range(_SNAPSHOT_ATTEMPTS):
        latest = await PortraitSnapshot.select(PortraitSnapshot.public_id, PortraitSnapshot.version,
                                               PortraitSnapshot.digest).where(
            PortraitSnapshot.enterprise == enterprise_id).order_by(PortraitSnapshot.version, ascending=False).first()
        if latest is not None and latest["digest"] == digest:
            return view(latest["public_id"], int(latest["version"]))
        version = int(latest["version"]) + 1 if latest is not None else 1
        public_id = new_public_id("prt")
        inserted = await PortraitSnapshot.insert(PortraitSnapshot(
            public_id=public_id, enterprise=enterprise_id, version=version, score=portrait.score,
            grade=portrait.grade, dimensions=_encoder.encode(dimensions).decode(),
            tags=_encoder.encode(list(portrait.tags)).decode(),
            risk_flags=_encoder.encode(list(portrait.risk_flags)).decode(),
            sources=_encoder.encode(sources).decode(), facts=_encoder.encode(portrait.facts).decode(),
            model_version=portrait.model_version, digest=digest, as_of=now,
        )).on_conflict(action=OnConflictAction.do_nothing).returning(PortraitSnapshot.public_id)
        if inserted:
            return view(public_id, version)
        # Another worker wrote this version meanwhile: look again (it is probably the same content).
    raise Conflict("the portrait is being updated; retry shortly", code="portrait_busy")


async def _fresh(*, store: Store, row: dict[str, Any]) -> _Cached:
    """The cached portrait if its watermark still matches, otherwise a recomputed (and cached) one."""
    enterprise_id = int(row["enterprise_pk"])
    mark = _mark(row)
    raw = await store.get(_CACHE_DOMAIN, f"e:{enterprise_id}")
    if raw is not None:
        try:
            cached = _cache_decoder.decode(raw)
        except msgspec.DecodeError:
            cached = None  # an entry from an older model: recompute
        if cached is not None and cached.mark == mark:
            return cached
    view = await _snapshot(enterprise_id=enterprise_id, enterprise_public_id=row["enterprise_public_id"], row=row,
                           now=datetime.now(UTC))
    fresh = _Cached(mark=mark, view=msgspec.Raw(_encoder.encode(view)),
                    document=msgspec.Raw(_encoder.encode(portrait_document(view))))
    await store.set(_CACHE_DOMAIN, f"e:{enterprise_id}", _encoder.encode(fresh), ttl_seconds=CACHE_TTL_SECONDS)
    return fresh


async def current_portrait(*, store: Store, enterprise_id: int) -> PortraitView:
    """The enterprise's current portrait (computed and snapshotted if missing or stale; store-cached).

    Raises:
        NotFound: `enterprise_not_found`.
    """
    row = await db.fetch_one(Enterprise._meta.db, _WATERMARK_SQL, enterprise_id)
    if row is None:
        raise NotFound("enterprise not found", code="enterprise_not_found")
    return _view_decoder.decode((await _fresh(store=store, row=row)).view)


async def member_portrait(*, store: Store, enterprise_id: int) -> PortraitOut:
    """The enterprise's current portrait as its members receive it (the cached document, decoded once).

    Raises:
        NotFound: `enterprise_not_found`.
    """
    row = await db.fetch_one(Enterprise._meta.db, _WATERMARK_SQL, enterprise_id)
    if row is None:
        raise NotFound("enterprise not found", code="enterprise_not_found")
    return _document_decoder.decode((await _fresh(store=store, row=row)).document)


async def portrait_versions(*, enterprise_id: int, limit: int, before_version: int | None = None
                            ) -> PortraitVersionPage:
    """Snapshot versions of an enterprise, newest first; the cursor is the last version shown."""
    query = PortraitSnapshot.select(PortraitSnapshot.public_id, PortraitSnapshot.version, PortraitSnapshot.score,
                                    PortraitSnapshot.grade, PortraitSnapshot.digest, PortraitSnapshot.as_of).where(
        PortraitSnapshot.enterprise == enterprise_id).order_by(PortraitSnapshot.version, ascending=False).limit(
        limit + 1)
    if before_version is not None:
        query = query.where(PortraitSnapshot.version < before_version)
    rows: list[dict[str, Any]] = await query
    page = rows[:limit]
    return PortraitVersionPage(
        items=[PortraitVersion(id=r["public_id"], version=int(r["version"]), score=int(r["score"]),
                               grade=r["grade"], digest=r["digest"], as_of=r["as_of"]) for r in page],
        next_cursor=str(page[-1]["version"]) if len(rows) > limit and page else None)


def portrait_document(view: PortraitView) -> dict[str, Any]:
    """The portrait as members and banks receive it (risk flags with their text)."""
    return {
        "id": view.id, "version": view.version, "score": view.score, "grade": view.grade,
        "dimensions": view.dimensions, "tags": view.tags,
        "risk_flags": [{"code": f, "text": RISK_FLAGS[f][0] if f in RISK_FLAGS else f} for f in view.risk_flags],
        "sources": view.sources, "facts": view.facts, "digest": view.digest,
        "as_of": view.as_of.astimezone(UTC), "model_version": view.model_version,
    }


# ---------------------------------------------------------------- bank reads (hot path)


class BankRead(msgspec.Struct):
    """What the bank is answered, as the ledger digests it (before the ledger has numbered the read).
    `portrait` is the cached document, raw JSON: encoding the answer copies it in unparsed."""

    authorization_id: str
    enterprise: EnterpriseInfo
    portrait: msgspec.Raw


class BankAnswer(msgspec.Struct):
    """`GET /v1/portraits/{uscc}` on the hot path: `BankPortraitAnswer` with the portrait left as raw JSON."""

    authorization_id: str
    enterprise: EnterpriseInfo
    portrait: msgspec.Raw
    ledger_seq: int


async def _ledger(ledger: LedgerWriter, *, caller: Caller, view: authz.AuthorizationView, subject_id: str,
                  outcome: str, fields: tuple[str, ...] = (), digest: str = "") -> LedgerReceipt:
    return await ledger.append(AccessEvent(
        actor_kind="partner", actor_id=caller.client_id, actor_name=caller.name, actor_type=caller.kind,
        subject_kind="enterprise", subject_id=subject_id, action="portrait.read", outcome=outcome,
        purpose=view.purpose, authorization_id=view.id, fields=fields, result_digest=digest or _EMPTY_DIGEST))


def _bank_refusal(view: authz.AuthorizationView, *, same_enterprise: bool, now: datetime, purpose: str | None
                  ) -> DomainError | None:
    """Why this authorization cannot serve the bank's portrait read now (None if it can)."""
    if not same_enterprise:
        return AuthorizationRefused("the authorization is for another enterprise",
                                    code="authorization_subject_mismatch")
    if (refusal := use_refusal(view, purpose=purpose, now=now)) is not None:
        return refusal
    if PORTRAIT_SCOPE not in view.scopes:
        return AuthorizationRefused("the authorization does not grant the portrait", code="scope_not_granted")
    return None


async def read_for_bank(*, store: Store, ledger: LedgerWriter, cipher: FieldCipher, client_id: str,
                        resolve_caller: CallerResolver, uscc: str, authorization_id: str, purpose: str | None,
                        admission: Admission | None = None) -> BankAnswer:
    """A bank's read of the portrait of `uscc` under its authorization; refusals are ledgered, then raised.

    `admission` (deferred by the route's guard) shares the store round trip that counts the use; paths that
    end earlier run it on their own first, so a revoked token is always refused before anything else.

    Raises:
        Unprocessable: `invalid_uscc`.
        NotFound: `authorization_not_found` (unknown, or another partner's).
        AuthorizationRefused (403): `authorization_wrong_subject`, `authorization_not_active`,
            `authorization_subject_mismatch` (it is for another enterprise), `purpose_mismatch`,
            `scope_not_granted`.
        RateLimited: `authorization_daily_cap`.
    """
    try:
        code = normalize_uscc(uscc)
    except InvalidIdentifier as exc:
        await admit(store, admission)
        raise Unprocessable(f"invalid uscc: {exc.reason}", code="invalid_uscc",
                            errors=[{"field": "uscc", "message": exc.reason}]) from None
    row = await db.fetch_one(Enterprise._meta.db, _BANK_READ_SQL, authorization_id) \
        if plausible_id(authorization_id) else None
    if row is None:
        await admit(store, admission)
        raise NotFound("authorization not found", code="authorization_not_found")
    view = authz.view_of(row)
    now = datetime.now(UTC)
    if (view.status == authz.AWAITING and now >= view.request_expires_at) or (
            view.status == authz.AUTHORIZED and view.valid_until is not None and now >= view.valid_until):
        view = await authz.expire_if_due(view)
    subject_id: str | None = row["enterprise_public_id"]
    if view.partner_client_id != client_id:
        await admit(store, admission)
        # Another partner's authorization: record the attempt against its subject, answer "not found".
        if view.subject_kind == "enterprise" and subject_id is not None:
            await _ledger(ledger, caller=await resolve_caller(), view=view, subject_id=subject_id,
                          outcome="not_your_authorization")
        raise NotFound("authorization not found", code="authorization_not_found")
    caller = Caller(client_id=client_id, name=view.partner_name, kind=view.partner_kind)
    if view.subject_kind != "enterprise":
        await admit(store, admission)
        raise AuthorizationRefused("this authorization is not for an enterprise", code="authorization_wrong_subject")
    if subject_id is None:
        await admit(store, admission)
        raise AuthorizationRefused(f"the authorization is {view.status}", code="authorization_not_active")
    refusal = _bank_refusal(view, same_enterprise=row["enterprise_uscc_hash"] == cipher.lookup_hash("uscc", code),
                            now=now, purpose=purpose)
    if refusal is not None:
        await admit(store, admission)
    else:
        counted = await admit_with(store, admission, count=[authz.daily_use(view)])
        if (over := counted.over_limit) is not None:
            refusal = RateLimited(f"daily cap of {view.daily_cap} uses reached", code="authorization_daily_cap",
                                  retry_after=over.ttl_seconds)
    if refusal is not None:
        await _ledger(ledger, caller=caller, view=view, subject_id=subject_id, outcome=refusal.code)
        raise refusal
    cached = await _fresh(store=store, row=row)
    read = BankRead(authorization_id=view.id, enterprise=EnterpriseInfo(id=subject_id, name=row["enterprise_name"],
                                                                         uscc=code), portrait=cached.document)
    receipt = await _ledger(ledger, caller=caller, view=view, subject_id=subject_id, outcome="allowed",
                            fields=(PORTRAIT_SCOPE,), digest=result_digest(_encoder.encode(read)))
    return BankAnswer(authorization_id=read.authorization_id, enterprise=read.enterprise, portrait=read.portrait,
                      ledger_seq=receipt.seq)


__all__ = ["CACHE_TTL_SECONDS", "BankAnswer", "BankRead", "PortraitView", "current_portrait", "member_portrait",
           "portrait_document", "portrait_versions", "read_for_bank"]
