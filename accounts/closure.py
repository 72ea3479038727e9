"""Closing a citizen account (PIPL Art. 47: 删除 when the person withdraws and closes the account).

The holder asks with a fresh SMS code sent for this purpose only (`request_closure_code`; a login code does not
close an account). Then, in this order, each step safe to run again:

1. the account is marked `closing` (from then on no code is asked again: a closure interrupted half-way is
   finished by calling close once more, after logging in again if the sessions were already ended);
2. every authorization of the person revoked and every waiting request refused, through credit's own
   transitions (ended markers, then the row and its webhook event: partners are told as usual, and stop
   getting data on the very next request on every worker);
3. the steps other domains own, injected by the composition (`ClosureStep`: enterprise memberships in
   lending, notice preferences in partners): accounts imports neither;
4. every session ended (refresh tokens revoked, revoked-family markers in the store and in `revoked_tokens`);
5. the phone and the identity binding deleted in one update that also marks the account `closed`.

The account row stays as a tombstone, not deleted: its id is what refresh tokens, outbox recipients
(`citizen:<account id>`) and enterprise memberships name, and a tombstone keeps a retry from answering
"not found" and the id from ever meaning someone else. It holds no personal data: no phone (its `phone_hash`
becomes `closed:<account id>`, which no phone hashes to, so the same phone registers again as a new account
with a new id), no identity, only when it was closed and what the closure did.

Kept, because the rules require it: the person's credit records (信用信息 are the registry's, kept for their
disclosure periods whoever holds an account), the access ledger (query records kept at least 5 years with who
authorized and the proof; the hash chain must still verify), and the authorizations themselves as the consent
proof of the reads made under them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

from accounts.citizen_schemas import AccountClosure, ClosureItem
from accounts.context import AccountsContext
from accounts.sessions import OtpIssued, consume_otp, end_sessions, request_otp
from accounts.tables import CitizenAccount
from core import clock
from core.db import as_utc
from core.errors import Forbidden, NotFound, Unprocessable
from credit import authorizations as authz

CLOSURE_REASON = "the citizen closed their account"
ACTIVE, CLOSING, CLOSED = "active", "closing", "closed"

Section = Literal["deleted", "ended"]


@dataclass(frozen=True, slots=True)
class ClosingAccount:
    """The account a closure step works on: its id and the registry person it was bound to (None: unbound)."""

    account_id: str
    person_id: int | None


@dataclass(frozen=True, slots=True)
class ClosureStep:
    """A step of a closure that another domain owns, wired in by the composition.

    `run` must be safe to run again (a closure may be finished in a second attempt) and returns how many
    things it deleted or ended in this run; the counts of all runs are added up in the answer under `what`.
    """

    key: str  # stable name, e.g. "enterprise_memberships"
    section: Section  # deleted (personal data gone) or ended (a relation that stops)
    what: str  # what it deletes or ends, in the answer
    why: str  # why, in the answer
    run: Callable[[ClosingAccount], Awaitable[int]]


class _Entry(msgspec.Struct):
    section: Section
    what: str
    why: str
    count: int | None = None


class _Progress(msgspec.Struct):
    """The `closure` column: what the closure did so far (then all of it), by step key, in order."""

    entries: dict[str, _Entry] = msgspec.field(default_factory=dict)


_decode_progress = msgspec.json.Decoder(_Progress)

_KEPT = [
    ClosureItem(what="credit records about you (信用信息)", why=(
        "They are the credit registry's records, not the account's: the rules fix how long each is disclosed "
        "and kept (征信业管理条例 Art. 16; the city's disclosure periods), whether or not you hold an account.")),
    ClosureItem(what="the access ledger entries about you", why=(
        "Every read of your credit data is kept at least 5 years with who read it, why and under which "
        "authorization: it is your audit trail, and its hash chain must still verify.")),
    ClosureItem(what="your authorizations, now revoked", why=(
        "They are the proof of consent for the reads made under them while they were valid.")),
    ClosureItem(what="the account id, as a closed tombstone without phone or identity", why=(
        "So the id never names anyone else and a repeated close answers this summary; the phone may register "
        "again as a new account.")),
]


async def request_closure_code(*, ctx: AccountsContext, account_id: str, client_address: str) -> OtpIssued:
    """Send a code for closing the account to the account's own phone (throttled like login codes).

    Raises:
        NotFound: `account_not_found` (closed already, or unknown).
    """
    row = await CitizenAccount.select(CitizenAccount.phone_enc, CitizenAccount.status).where(
        CitizenAccount.public_id == account_id).first()
    if row is None or row["status"] == CLOSED:
        raise NotFound("account not found", code="account_not_found")
    phone = ctx.cipher.decrypt("phone", row["phone_enc"])
    return await request_otp(ctx=ctx, phone=phone, client_address=client_address, purpose="close_account")


async def close_account(*, ctx: AccountsContext, account_id: str, code: str | None,
                        steps: Sequence[ClosureStep] = ()) -> AccountClosure:
    """Close the account (see the module docstring for what happens in which order).

    Raises:
        Unprocessable: `code_required` (an active account and no code).
        InvalidGrant: `invalid_otp` (wrong, expired or spent code, or a login code).
        RateLimited: `otp_attempts_exceeded`.
        Forbidden: `account_suspended`.
        NotFound: `account_not_found`.
        ServiceUnavailable: the store is down (nothing half-applied; call again).
    """
    row = await CitizenAccount.select(
        CitizenAccount.status, CitizenAccount.phone_hash, CitizenAccount.person, CitizenAccount.closure,
        CitizenAccount.closed_at).where(CitizenAccount.public_id == account_id).first()
    if row is None:
        raise NotFound("account not found", code="account_not_found")
    if row["status"] == CLOSED:
        return _answer(account_id, _progress(row["closure"]), as_utc(row["closed_at"]))
    if row["status"] == ACTIVE:
        if code is None:
            raise Unprocessable("send the code from POST /v1/me/account/close/code", code="code_required")
        await consume_otp(ctx=ctx, phone_hash=row["phone_hash"], code=code, purpose="close_account")
        await CitizenAccount.update({CitizenAccount.status: CLOSING}).where(
            (CitizenAccount.public_id == account_id) & (CitizenAccount.status == ACTIVE))
    elif row["status"] != CLOSING:
        raise Forbidden("this account is suspended", code="account_suspended")
    progress = _progress(row["closure"])
    person_id = int(row["person"]) if row["person"] is not None else None
    closing = ClosingAccount(account_id=account_id, person_id=person_id)

    if person_id is not None:
        await authz.end_all_for_person(person_id=person_id, reason=CLOSURE_REASON, store=ctx.store)
        counts = await authz.count_ended_for_person(person_id=person_id, reason=CLOSURE_REASON)
        progress.entries["authorizations"] = _Entry(
            section="ended", what="authorizations revoked (each partner told by webhook)",
            why="Closing the account withdraws every consent (PIPL Art. 15); partners stop getting data at once.",
            count=counts.get("revoked", 0))
        progress.entries["requests"] = _Entry(
            section="ended", what="authorization requests refused", why="Nobody is left to answer them.",
            count=counts.get("rejected", 0))
        await _save(account_id, progress)
    for step in steps:
        done = await step.run(closing)
        before = progress.entries.get(step.key)
        progress.entries[step.key] = _Entry(section=step.section, what=step.what, why=step.why,
                                            count=(before.count or 0 if before else 0) + done)
        await _save(account_id, progress)
    ended_sessions = await end_sessions(ctx=ctx, subject_id=account_id)
    before = progress.entries.get("sessions")
    progress.entries["sessions"] = _Entry(
        section="ended", what="sessions ended (every access and refresh token of the account)",
        why="Nobody may act as the closed account, on any device.",
        count=(before.count or 0 if before else 0) + ended_sessions)
    progress.entries["phone"] = _Entry(section="deleted", what="your phone number",
                                       why="Personal data the service no longer needs (PIPL Art. 47).")
    if person_id is not None:
        progress.entries["identity"] = _Entry(
            section="deleted", what="the binding of the account to your identity (实名)",
            why="Personal data the service no longer needs (PIPL Art. 47); you may bind a new account.")
    closed_at = clock.now()
    await CitizenAccount.update({
        CitizenAccount.status: CLOSED, CitizenAccount.closed_at: closed_at,
        CitizenAccount.phone_hash: f"closed:{account_id}", CitizenAccount.phone_enc: "",
        CitizenAccount.person: None, CitizenAccount.bound_at: None,
        CitizenAccount.closure: msgspec.json.encode(progress).decode(),
    }).where((CitizenAccount.public_id == account_id) & (CitizenAccount.status == CLOSING))
    final = await CitizenAccount.select(CitizenAccount.closure, CitizenAccount.closed_at).where(
        CitizenAccount.public_id == account_id).first()
    assert final is not None
    # Of two concurrent closures both may get here; the summary is the one the database kept.
    return _answer(account_id, _progress(final["closure"]), as_utc(final["closed_at"] or closed_at))


def _progress(raw: str | None) -> _Progress:
    return _decode_progress.decode(raw) if raw else _Progress()


async def _save(account_id: str, progress: _Progress) -> None:
    await CitizenAccount.update({CitizenAccount.closure: msgspec.json.encode(progress).decode()}).where(
        (CitizenAccount.public_id == account_id) & (CitizenAccount.status == CLOSING))


def _answer(account_id: str, progress: _Progress, closed_at: datetime) -> AccountClosure:
    def items(section: Section) -> list[ClosureItem]:
        return [ClosureItem(what=e.what, why=e.why, count=e.count) for e in progress.entries.values()
                if e.section == section]

    return AccountClosure(account_id=account_id, status=CLOSED, closed_at=closed_at, deleted=items("deleted"),
                          ended=items("ended"), kept=list(_KEPT))


__all__ = ["CLOSURE_REASON", "ClosingAccount", "ClosureStep", "close_account", "request_closure_code"]
