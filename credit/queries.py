"""Partner reads of a person's score under an authorization: full query and threshold check.

Every outcome — answered or refused — is written to the access ledger before the partner hears it,
except a request naming an authorization that does not exist (there is no subject to record it for).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from cachetools import TTLCache

from core.admission import Admission, admit, admit_with
from core.errors import Conflict, DomainError, NotFound, RateLimited, Unprocessable
from core.store import ProbeResult, Store
from credit import authorizations as authz
from credit.ledger import AccessEvent, LedgerReceipt, LedgerWriter, result_digest
from credit.schemas import ReasonOut, ScoreCheckAnswer, ScoreQueryAnswer
from credit.scores import cache_key, current_score, score_band
from credit.scoring import TIERS, tier_for

SCORE_SCOPES = ("tier", "score_band", "score", "dimensions", "reasons")
CHECK_TTL_SECONDS = 24 * 3600
_PENDING = b"pending"
_PENDING_TTL_SECONDS = 60
_encoder = msgspec.json.Encoder()


_EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()


class AuthorizationRefused(DomainError):
    status, code, title = 403, "authorization_not_usable", "The authorization does not allow this"


@dataclass(frozen=True, slots=True)
class Caller:
    """The partner making the request."""

    client_id: str
    name: str
    kind: str


CallerResolver = Callable[[], Awaitable[Caller]]


class _ScoreFields(msgspec.Struct, omit_defaults=True):
    """The fields a score query answers, as digested into the ledger: encodes to the same bytes as the
    dict earlier versions digested (same keys, same order, ungranted ones left out)."""

    authorization_id: str
    open_id: str
    as_of: str
    tier: str | None = None
    score_band: str | None = None
    score: int | None = None
    dimensions: dict[str, int] | None = None
    reasons: list[ReasonOut] | None = None


class _CheckOutcome(msgspec.Struct):
    """A threshold check's answer without its ledger sequence: what is digested and kept for replays."""

    transaction_id: str
    authorization_id: str
    admitted: bool
    checked_at: str


class _CheckRequest(msgspec.Struct):
    authorization_id: str
    threshold: int


class _StoredCheck(msgspec.Struct):
    """A check kept for replays under its transaction id. The same JSON (field names and order) as the
    dict earlier versions wrote, so values written before or after a rolling deploy read either way."""

    request: _CheckRequest
    answer: _CheckOutcome
    seq: int
    hash: str
    at: str


_stored_check = msgspec.json.Decoder(_StoredCheck)


async def _ledger(ledger: LedgerWriter, *, caller: Caller, view: authz.AuthorizationView, subject_id: str,
                  action: str, outcome: str, fields: tuple[str, ...] = (), digest: str = "") -> LedgerReceipt:
    return await ledger.append(AccessEvent(
        actor_kind="partner", actor_id=caller.client_id, actor_name=caller.name, actor_type=caller.kind,
        subject_kind="person", subject_id=subject_id, action=action, outcome=outcome, purpose=view.purpose,
        authorization_id=view.id, fields=fields, result_digest=digest or _EMPTY_DIGEST))


@dataclass(frozen=True, slots=True)
class _Usable:
    view: authz.AuthorizationView
    subject_id: str
    caller: Caller
    cached_score: bytes | None  # read in the same store round trip that counted the use


class RecentAuthorizations:
    """Authorized views this worker used in the last few seconds, so a busy partner's repeated reads
    do not go to the database each time.

    Only `authorized` views are kept. Whatever can end them is still checked on every use: the time
    (`valid_until`) locally, and a revocation or termination through the ended marker that
    `credit.authorizations` sets in the shared store before changing the row, read in the same round
    trip as the use count. A view whose marker is set is dropped and the row read again.

    The views are only as good as the store's markers: when the store lost its data (seen in that same
    round trip as a new epoch, `ProbeResult.reseeded`), every view is dropped (`clear`, an `on_reseed`
    listener) and the one in use is read again from the database.
    """

    def __init__(self, *, ttl_seconds: float = 30.0, max_entries: int = 50_000) -> None:
        self._entries: TTLCache[str, tuple[authz.AuthorizationView, str]] = TTLCache(max_entries, ttl_seconds)

    def get(self, public_id: str) -> tuple[authz.AuthorizationView, str] | None:
        return self._entries.get(public_id)

    def put(self, view: authz.AuthorizationView, subject_id: str) -> None:
        if view.status != authz.AUTHORIZED:
            return
        self._entries[view.id] = (view, subject_id)

    def forget(self, public_id: str) -> None:
        self._entries.pop(public_id, None)

    def clear(self) -> None:
        self._entries.clear()


RECENT = RecentAuthorizations()


def authorization_to_use(*, requested: str | None, bound: str | None) -> str:
    """The authorization a read is under: the one named in the body, or the one the partner's token is bound to
    (authorization code grant). A bound token reads under its own authorization only.

    Raises:
        AuthorizationRefused: the body names another authorization than the token's (`token_bound_elsewhere`).
        Unprocessable: neither names one (`authorization_id_required`).
    """
    if bound is not None:
        if requested is not None and requested != bound:
            raise AuthorizationRefused("this token is bound to another authorization; leave authorization_id out "
                                       "or name the token's own", code="token_bound_elsewhere")
        return bound
    if requested is None:
        raise Unprocessable("authorization_id is required (or a token bound to an authorization)",
                            code="authorization_id_required",
                            errors=[{"field": "authorization_id", "message": "required"}])
    return requested


def use_refusal(view: authz.AuthorizationView, *, purpose: str | None, now: datetime) -> DomainError | None:
    """Why `view` cannot be used now for `purpose`, whatever is read under it (None if it can)."""
    if not view.usable_at(now):
        return AuthorizationRefused(f"the authorization is {view.status}", code="authorization_not_active")
    if purpose is not None and purpose != view.purpose:
        return AuthorizationRefused(
            f"authorized for {view.purpose}, not {purpose}; a new purpose needs a new authorization",
            code="purpose_mismatch")
    return None


def _refusal(view: authz.AuthorizationView, purpose: str | None) -> DomainError | None:
    """Why `view` cannot serve a score read now (None if it can)."""
    if (refusal := use_refusal(view, purpose=purpose, now=datetime.now(UTC))) is not None:
        return refusal
    if not set(view.scopes) & set(SCORE_SCOPES):
        return AuthorizationRefused("the authorization grants no score fields", code="scope_not_granted")
    return None


async def _count_use(store: Store, view: authz.AuthorizationView, admission: Admission | None, *,
                     ended_check: bool) -> ProbeResult:
    """One round trip: the deferred admission, the use against the daily cap, the cached score and
    (for a view kept in memory) the ended marker. Values: (score, marker if asked)."""
    assert view.person_id is not None
    read = [cache_key(view.person_id)] + ([authz.ended_marker(view.id)] if ended_check else [])
    return await admit_with(store, admission, count=[authz.daily_use(view)], read=read)


async def _use_recent(*, store: Store, ledger: LedgerWriter, client_id: str, view: authz.AuthorizationView,
                      subject_id: str, purpose: str | None, action: str, admission: Admission | None
                      ) -> _Usable | None:
    """Use an authorized view kept in memory; None when its ended marker says it is stale, or the store
    was emptied since the view was kept (the admission has run by then, the caller reads the row again)."""
    caller = Caller(client_id=client_id, name=view.partner_name, kind=view.partner_kind)
    refusal = _refusal(view, purpose)
    if refusal is not None:
        await admit(store, admission)
        await _ledger(ledger, caller=caller, view=view, subject_id=subject_id, action=action, outcome=refusal.code)
        raise refusal
    counted = await _count_use(store, view, admission, ended_check=True)
    if counted.values[1] is not None or counted.reseeded:
        RECENT.forget(view.id)
        return None
    if (over := counted.over_limit) is not None:
        refusal = RateLimited(f"daily cap of {view.daily_cap} uses reached", code="authorization_daily_cap",
                              retry_after=over.ttl_seconds)
        await _ledger(ledger, caller=caller, view=view, subject_id=subject_id, action=action, outcome=refusal.code)
        raise refusal
    return _Usable(view=view, subject_id=subject_id, caller=caller, cached_score=counted.values[0])


async def _usable_authorization(*, store: Store, ledger: LedgerWriter, client_id: str,
                                resolve_caller: CallerResolver, authorization_id: str, purpose: str | None,
                                action: str, admission: Admission | None) -> _Usable:
    """Load and check an authorization for `action`; refusals are ledgered, then raised.

    The partner's admission (revocation, rate, quota; deferred by its guard), counting the use against
    the daily cap and reading the cached score share one store round trip. Every other path runs the
    admission on its own before it answers, so a revoked token is always refused first.
    """
    # Views kept in memory need the ended marker to be seen by every process: only with a shared store.
    recent = RECENT.get(authorization_id) if store.shared else None
    if recent is not None and recent[0].partner_client_id == client_id:
        usable = await _use_recent(store=store, ledger=ledger, client_id=client_id, view=recent[0],
                                   subject_id=recent[1], purpose=purpose, action=action, admission=admission)
        if usable is not None:
            return usable
        admission = None  # it ran in that round trip; the row is read again below
    loaded = await authz.load_for_use(authorization_id)
    if loaded is None:
        await admit(store, admission)
        raise NotFound("authorization not found", code="authorization_not_found")
    view, subject_id = loaded
    if view.partner_client_id != client_id:
        await admit(store, admission)
        # Another partner's authorization: record the attempt against its subject, answer "not found".
        if subject_id is not None:
            await _ledger(ledger, caller=await resolve_caller(), view=view, subject_id=subject_id, action=action,
                          outcome="not_your_authorization")
        raise NotFound("authorization not found", code="authorization_not_found")
    # The authorization names the calling partner, so its stored name and kind are the caller's.
    caller = Caller(client_id=client_id, name=view.partner_name, kind=view.partner_kind)
    if view.subject_kind != "person":
        await admit(store, admission)
        raise AuthorizationRefused("this authorization is not for a person", code="authorization_wrong_subject")
    if subject_id is None:
        await admit(store, admission)
        raise AuthorizationRefused(f"the authorization is {view.status}", code="authorization_not_active")
    cached_score: bytes | None = None
    refusal = _refusal(view, purpose)
    if refusal is not None:
        await admit(store, admission)
    else:
        assert view.person_id is not None
        counted = await _count_use(store, view, admission, ended_check=False)
        if (over := counted.over_limit) is not None:
            refusal = RateLimited(f"daily cap of {view.daily_cap} uses reached", code="authorization_daily_cap",
                                  retry_after=over.ttl_seconds)
        cached_score = counted.values[0]
    if refusal is not None:
        await _ledger(ledger, caller=caller, view=view, subject_id=subject_id, action=action, outcome=refusal.code)
        raise refusal
    if store.shared:
        RECENT.put(view, subject_id)
    return _Usable(view=view, subject_id=subject_id, caller=caller, cached_score=cached_score)


async def query_score(*, store: Store, ledger: LedgerWriter, consent_key: bytes, client_id: str,
                      resolve_caller: CallerResolver, authorization_id: str, purpose: str | None,
                      admission: Admission | None = None) -> ScoreQueryAnswer:
    """Return exactly the fields the authorization's scopes allow, after the ledger entry is durable."""
    usable = await _usable_authorization(
        store=store, ledger=ledger, client_id=client_id, resolve_caller=resolve_caller,
        authorization_id=authorization_id, purpose=purpose, action="score.query", admission=admission)
    view, subject_id, caller = usable.view, usable.subject_id, usable.caller
    assert view.person_id is not None
    score = await current_score(store=store, person_id=view.person_id, cached=usable.cached_score)
    granted = [s for s in SCORE_SCOPES if s in view.scopes]
    fields = _ScoreFields(
        authorization_id=view.id,
        open_id=authz.open_id(consent_key=consent_key, partner_client_id=client_id, subject_public_id=subject_id),
        as_of=score.as_of.isoformat(),
        tier=score.tier if "tier" in granted else None,
        score_band=score_band(score.total) if "score_band" in granted else None,
        score=score.total if "score" in granted else None,
        dimensions=score.dimensions if "dimensions" in granted else None,
        reasons=[ReasonOut(code=r.code, text=r.text, impact=r.impact) for r in score.reasons]
        if "reasons" in granted else None)
    receipt = await _ledger(ledger, caller=caller, view=view, subject_id=subject_id, action="score.query",
                            outcome="allowed", fields=tuple(granted), digest=result_digest(_encoder.encode(fields)))
    return ScoreQueryAnswer(
        authorization_id=fields.authorization_id, open_id=fields.open_id, as_of=fields.as_of,
        ledger_seq=receipt.seq, tier=fields.tier, score_band=fields.score_band, score=fields.score,
        dimensions=fields.dimensions, reasons=fields.reasons)


def comparable_score(total: int, scopes: tuple[str, ...]) -> int:
    """The score a threshold is compared with, no finer than the consent allows.

    With only `tier` (or `score_band`) granted, comparing the exact score would let a partner find it by
    bisecting thresholds with new transaction ids; comparing the tier's (band's) floor reveals no more
    than the tier (band) itself.
    """
    if "score" in scopes:
        return total
    if "score_band" in scopes:
        return min(950, (total // 50) * 50)
    tier = tier_for(total)
    return next(floor for name, floor in TIERS if name == tier)


async def check_score(*, store: Store, ledger: LedgerWriter, client_id: str, resolve_caller: CallerResolver,
                      authorization_id: str, threshold: int, transaction_id: str, purpose: str | None,
                      admission: Admission | None = None) -> ScoreCheckAnswer:
    """Yes/no against a threshold. One transaction id answers once for 24 h and counts once."""
    key = f"{client_id}:{transaction_id}"
    fingerprint = _CheckRequest(authorization_id=authorization_id, threshold=threshold)
    # The in-flight marker is short-lived: a crash mid-check must not lock the transaction id for a day.
    if not await store.set_if_absent("check", key, _PENDING, ttl_seconds=_PENDING_TTL_SECONDS):
        await admit(store, admission)  # a replay is still an admitted request
        stored = await store.get("check", key)
        if stored is None or stored == _PENDING:
            raise Conflict("this transaction is being checked; retry shortly", code="check_in_progress")
        first = _stored_check.decode(stored)
        if first.request != fingerprint:
            raise Unprocessable("transaction_id was already used for a different check", code="transaction_id_reused")
        return _check_answer(first.answer, seq=first.seq)
    try:
        usable = await _usable_authorization(
            store=store, ledger=ledger, client_id=client_id, resolve_caller=resolve_caller,
            authorization_id=authorization_id, purpose=purpose, action="score.check", admission=admission)
        view, subject_id, caller = usable.view, usable.subject_id, usable.caller
        assert view.person_id is not None
        score = await current_score(store=store, person_id=view.person_id, cached=usable.cached_score)
        answer = _CheckOutcome(transaction_id=transaction_id, authorization_id=view.id,
                               admitted=comparable_score(score.total, view.scopes) >= threshold,
                               checked_at=datetime.now(UTC).isoformat())
        receipt = await _ledger(ledger, caller=caller, view=view, subject_id=subject_id, action="score.check",
                                outcome="allowed", fields=("admitted",),
                                digest=result_digest(_encoder.encode(answer)))
    except BaseException:
        await store.delete("check", key)  # a refused or failed check may be retried with the same id
        raise
    await store.set("check", key, _encoder.encode(_StoredCheck(request=fingerprint, answer=answer, seq=receipt.seq,
                                                               hash=receipt.hash, at=receipt.at.isoformat())),
                    ttl_seconds=CHECK_TTL_SECONDS)
    return _check_answer(answer, seq=receipt.seq)


def _check_answer(outcome: _CheckOutcome, *, seq: int) -> ScoreCheckAnswer:
    return ScoreCheckAnswer(transaction_id=outcome.transaction_id, authorization_id=outcome.authorization_id,
                            admitted=outcome.admitted, checked_at=outcome.checked_at, ledger_seq=seq)


__all__ = ["AuthorizationRefused", "Caller", "authorization_to_use", "check_score", "query_score"]
