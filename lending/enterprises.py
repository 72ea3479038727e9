"""Enterprise binding and members: who may act for an enterprise in 信易贷.

A bound citizen binds an enterprise by its 统一社会信用代码 when the registry names their person as the
enterprise's legal representative (法定代表人); they become its owner. The owner adds operators (经办人),
who must be registry persons with a bound citizen account, and removes them.

Membership is the only key to an enterprise's data: an enterprise that does not exist and one the caller
is not a member of give the same 404 `enterprise_not_found`, so membership cannot be probed.

Ownership follows the registry: an owner acts for the enterprise only while the registry still names
their person its legal representative. When the registry names someone else (法定代表人变更), the former
owner loses the enterprise at once, and the new representative's binding removes the old owner's
membership (the new owner may add them back as an operator). Member ids
shown to owners are keyed hashes of (enterprise, account), so no internal id or account id leaves here.

Citizen accounts belong to the accounts domain: what is needed of them — the caller's bound person, the
account a registry person has bound — arrives as a parameter from the route, never by importing `api`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from piccolo.query.mixins import OnConflictAction

from core.db import as_utc
from core.errors import Forbidden, NotFound, Unprocessable
from credit.identity import FieldCipher, InvalidIdentifier, mask_name, normalize_uscc
from credit.services import match_person
from credit.tables import Enterprise, Person
from lending.portrait_schemas import EnterpriseOut, MemberOut
from lending.tables import EnterpriseMember

OWNER = "owner"
OPERATOR = "operator"
ACTIVE = "active"
REMOVED = "removed"

_ENTERPRISE_PK = Enterprise._meta.primary_key
_MEMBER_PK = EnterpriseMember._meta.primary_key


@dataclass(frozen=True)
class EnterpriseRef:
    """An enterprise as seen by one of its active members."""

    enterprise_id: int
    public_id: str
    name: str
    industry: str
    region_code: str
    registered_on: date
    role: str  # owner | operator


AccountOfPerson = Callable[[int], Awaitable[str | None]]
"""The id of the active citizen account a registry person has bound, or None (the accounts domain's lookup)."""


def _not_found() -> NotFound:
    return NotFound("enterprise not found", code="enterprise_not_found")


def _uscc_or_422(uscc: str) -> str:
    try:
        return normalize_uscc(uscc)
    except InvalidIdentifier as exc:
        raise Unprocessable(f"invalid uscc: {exc.reason}", code="invalid_uscc",
                            errors=[{"field": "uscc", "message": exc.reason}]) from None


def member_id(*, cipher: FieldCipher, enterprise_id: int, account_id: str) -> str:
    """Opaque, stable id of a membership: the same (enterprise, account) always gets the same id."""
    return "mem_" + cipher.lookup_hash("enterprise_member", f"{enterprise_id}:{account_id}")[:24]


def _enterprise_out(ref: EnterpriseRef, *, uscc: str, member_since: datetime) -> EnterpriseOut:
    """One of the caller's enterprises, with its USCC in full (the member acts for it)."""
    return EnterpriseOut(id=ref.public_id, uscc=uscc, name=ref.name, industry=ref.industry,
                         region_code=ref.region_code, registered_on=ref.registered_on, role=ref.role,
                         member_since=member_since)


def _ref(row: dict[str, Any], role: str) -> EnterpriseRef:
    return EnterpriseRef(enterprise_id=int(row["id"]), public_id=row["public_id"], name=row["name"],
                         industry=row["industry"], region_code=row["region_code"],
                         registered_on=row["registered_on"], role=role)


_ENTERPRISE_COLUMNS = (_ENTERPRISE_PK, Enterprise.public_id, Enterprise.name, Enterprise.industry,
                       Enterprise.region_code, Enterprise.registered_on)


async def _enterprise_by_uscc(cipher: FieldCipher, uscc: str) -> dict[str, Any] | None:
    code = _uscc_or_422(uscc)
    row: dict[str, Any] | None = await Enterprise.select(*_ENTERPRISE_COLUMNS, Enterprise.legal_representative).where(
        Enterprise.uscc_hash == cipher.lookup_hash("uscc", code)).first()
    return row


def _still_owner(legal_representative: Any, member_person: Any) -> bool:
    """An owner is one only while the registry names their person as the legal representative."""
    return legal_representative is not None and int(legal_representative) == int(member_person)


async def _active_role(enterprise: dict[str, Any], account_id: str) -> str | None:
    """The account's role in `enterprise` (a row with `id` and `legal_representative`), or None when it is
    not an active member — or is an owner the registry no longer names as legal representative."""
    row = await EnterpriseMember.select(EnterpriseMember.role, EnterpriseMember.person).where(
        (EnterpriseMember.enterprise == int(enterprise["id"])) & (EnterpriseMember.account_id == account_id)
        & (EnterpriseMember.status == ACTIVE)).first()
    if row is None:
        return None
    if row["role"] == OWNER and not _still_owner(enterprise["legal_representative"], row["person"]):
        return None
    return str(row["role"])


async def is_active_member(*, enterprise_id: int, account_id: str) -> bool:
    """Whether the account acts for the enterprise now (as `require_member` would decide)."""
    row = await Enterprise.select(_ENTERPRISE_PK, Enterprise.legal_representative).where(
        _ENTERPRISE_PK.is_in([enterprise_id])).first()
    return row is not None and await _active_role(row, account_id) is not None


async def current_owner_account(enterprise_id: int) -> str | None:
    """The account id of the enterprise's current owner (the bound legal representative), if any."""
    enterprise = await Enterprise.select(Enterprise.legal_representative).where(
        _ENTERPRISE_PK.is_in([enterprise_id])).first()
    if enterprise is None or enterprise["legal_representative"] is None:
        return None
    row = await EnterpriseMember.select(EnterpriseMember.account_id).where(
        (EnterpriseMember.enterprise == enterprise_id) & (EnterpriseMember.role == OWNER)
        & (EnterpriseMember.status == ACTIVE)
        & (EnterpriseMember.person == int(enterprise["legal_representative"]))).first()
    return None if row is None else str(row["account_id"])


@dataclass(frozen=True, slots=True)
class EnterpriseAudience:
    """Who hears about an enterprise: its name, its USCC (for the notice text) and its active members' accounts."""

    name: str
    uscc: str
    account_ids: list[str]


async def enterprise_audience(*, cipher: FieldCipher, enterprise_public_id: str) -> EnterpriseAudience | None:
    """The accounts that act for the enterprise now (the owner only while still its legal representative), for
    notices about it; None when no such enterprise exists."""
    enterprise = await Enterprise.select(_ENTERPRISE_PK, Enterprise.name, Enterprise.uscc_enc,
                                         Enterprise.legal_representative).where(
        Enterprise.public_id == enterprise_public_id).first()
    if enterprise is None:
        return None
    members = await EnterpriseMember.select(EnterpriseMember.account_id, EnterpriseMember.role,
                                            EnterpriseMember.person).where(
        (EnterpriseMember.enterprise == int(enterprise["id"])) & (EnterpriseMember.status == ACTIVE)).order_by(
        _MEMBER_PK)
    accounts = [str(m["account_id"]) for m in members
                if m["role"] != OWNER or _still_owner(enterprise["legal_representative"], m["person"])]
    return EnterpriseAudience(name=str(enterprise["name"]), uscc=cipher.decrypt("uscc", enterprise["uscc_enc"]),
                              account_ids=accounts)


async def require_member(*, account_id: str, uscc: str, cipher: FieldCipher) -> EnterpriseRef:
    """The enterprise named by `uscc` if `account_id` is an active member of it.

    `cipher` is needed because USCCs are stored encrypted and found by keyed hash.

    Raises:
        Unprocessable: `invalid_uscc`.
        NotFound: `enterprise_not_found` — unknown, or the caller is not a member (the same answer).
    """
    row = await _enterprise_by_uscc(cipher, uscc)
    if row is None:
        raise _not_found()
    role = await _active_role(row, account_id)
    if role is None:
        raise _not_found()
    return _ref(row, role)


async def require_owner(*, account_id: str, uscc: str, cipher: FieldCipher) -> EnterpriseRef:
    """As `require_member`, and the member must be the owner (403 `owner_only` for an operator)."""
    ref = await require_member(account_id=account_id, uscc=uscc, cipher=cipher)
    if ref.role != OWNER:
        raise Forbidden("only the enterprise's legal representative may manage its members", code="owner_only")
    return ref


async def enterprise_of_member(*, account_id: str, enterprise_public_id: str) -> EnterpriseRef:
    """The enterprise by public id if `account_id` is an active member (404 `enterprise_not_found` otherwise)."""
    row = await Enterprise.select(*_ENTERPRISE_COLUMNS, Enterprise.legal_representative).where(
        Enterprise.public_id == enterprise_public_id).first()
    if row is None:
        raise _not_found()
    role = await _active_role(row, account_id)
    if role is None:
        raise _not_found()
    return _ref(row, role)


async def _upsert_member(*, enterprise_id: int, account_id: str, person_id: int, role: str, added_by: str,
                         now: datetime) -> bool:
    """Make `account_id` an active member with `role`; True if it was not an active member before.

    The unique (enterprise, account_id) index makes concurrent binds meet in the database: the insert
    does nothing when the row exists, and the conditional update then revives a removed membership.
    """
    inserted = await EnterpriseMember.insert(EnterpriseMember(
        enterprise=enterprise_id, account_id=account_id, person=person_id, role=role, status=ACTIVE,
        added_by=added_by, created_at=now)).on_conflict(action=OnConflictAction.do_nothing).returning(_MEMBER_PK)
    if inserted:
        return True
    where = (EnterpriseMember.enterprise == enterprise_id) & (EnterpriseMember.account_id == account_id)
    revived = await EnterpriseMember.update({
        EnterpriseMember.status: ACTIVE, EnterpriseMember.role: role, EnterpriseMember.person: person_id,
        EnterpriseMember.added_by: added_by, EnterpriseMember.created_at: now, EnterpriseMember.removed_at: None,
    }).where(where & (EnterpriseMember.status != ACTIVE)).returning(_MEMBER_PK)
    if revived:
        return True
    if role == OWNER:
        # The legal representative may have been added as an operator before binding: promote them.
        await EnterpriseMember.update({EnterpriseMember.role: OWNER}).where(where & (EnterpriseMember.role != OWNER))
    return False


async def bind(*, cipher: FieldCipher, account_id: str, person_id: int, uscc: str) -> tuple[EnterpriseOut, bool]:
    """Bind the enterprise `uscc` to its legal representative's account as owner; idempotent.

    `person_id` is the registry person the account has bound (the route refuses an unbound account).
    Returns the enterprise and whether the membership was created now.

    Raises:
        Forbidden: `not_legal_representative`.
        Unprocessable: `invalid_uscc`.
        NotFound: `enterprise_not_found` — no enterprise in the registry has this USCC.
    """
    row = await _enterprise_by_uscc(cipher, uscc)
    if row is None:
        raise _not_found()
    if row["legal_representative"] is None or int(row["legal_representative"]) != person_id:
        raise Forbidden("the registry does not name you as this enterprise's legal representative",
                        code="not_legal_representative")
    now = datetime.now(UTC)
    created = await _upsert_member(enterprise_id=int(row["id"]), account_id=account_id, person_id=person_id,
                                   role=OWNER, added_by=account_id, now=now)
    # A former legal representative's owner membership ends with the new one's binding.
    await EnterpriseMember.update({EnterpriseMember.status: REMOVED, EnterpriseMember.removed_at: now}).where(
        (EnterpriseMember.enterprise == int(row["id"])) & (EnterpriseMember.role == OWNER)
        & (EnterpriseMember.status == ACTIVE) & (EnterpriseMember.person != person_id))
    since = await EnterpriseMember.select(EnterpriseMember.created_at).where(
        (EnterpriseMember.enterprise == row["id"]) & (EnterpriseMember.account_id == account_id)).first()
    return _enterprise_out(_ref(row, OWNER), uscc=normalize_uscc(uscc),
                           member_since=as_utc(since["created_at"]) if since else now), created


async def my_enterprises(*, cipher: FieldCipher, account_id: str) -> list[EnterpriseOut]:
    """Every enterprise the account is an active member of, oldest membership first."""
    members = await EnterpriseMember.select(EnterpriseMember.enterprise, EnterpriseMember.role,
                                            EnterpriseMember.person, EnterpriseMember.created_at).where(
        (EnterpriseMember.account_id == account_id) & (EnterpriseMember.status == ACTIVE)).order_by(
        EnterpriseMember.created_at)
    if not members:
        return []
    rows = {int(r["id"]): r for r in await Enterprise.select(
        *_ENTERPRISE_COLUMNS, Enterprise.uscc_enc, Enterprise.legal_representative).where(
        _ENTERPRISE_PK.is_in([int(m["enterprise"]) for m in members]))}
    out: list[EnterpriseOut] = []
    for m in members:
        row = rows.get(int(m["enterprise"]))
        if m["role"] == OWNER and row is not None and not _still_owner(row["legal_representative"], m["person"]):
            continue
        if row is not None:
            out.append(_enterprise_out(_ref(row, m["role"]), uscc=cipher.decrypt("uscc", row["uscc_enc"]),
                                       member_since=as_utc(m["created_at"])))
    return out


async def list_members(*, cipher: FieldCipher, account_id: str, uscc: str, include_removed: bool = False
                       ) -> list[MemberOut]:
    """The enterprise's members (names masked) for any of its members."""
    ref = await require_member(account_id=account_id, uscc=uscc, cipher=cipher)
    query = EnterpriseMember.select(EnterpriseMember.account_id, EnterpriseMember.person, EnterpriseMember.role,
                                    EnterpriseMember.status, EnterpriseMember.created_at,
                                    EnterpriseMember.removed_at).where(
        EnterpriseMember.enterprise == ref.enterprise_id).order_by(EnterpriseMember.created_at)
    if not include_removed:
        query = query.where(EnterpriseMember.status == ACTIVE)
    rows = await query
    names = {int(r["id"]): r["name"] for r in await Person.select(Person._meta.primary_key, Person.name).where(
        Person._meta.primary_key.is_in([int(r["person"]) for r in rows] or [0]))}
    return [MemberOut(id=member_id(cipher=cipher, enterprise_id=ref.enterprise_id, account_id=r["account_id"]),
                      name=mask_name(names.get(int(r["person"]), "")), role=r["role"], status=r["status"],
                      added_at=as_utc(r["created_at"]), is_me=r["account_id"] == account_id,
                      removed_at=as_utc(r["removed_at"]) if r["removed_at"] is not None else None) for r in rows]


async def add_operator(*, cipher: FieldCipher, account_id: str, uscc: str, name: str, id_number: str,
                       account_of_person: AccountOfPerson) -> tuple[MemberOut, bool]:
    """The owner adds a 经办人: a registry person (name and id number must match) with a bound account
    (`account_of_person` finds it).

    Returns the member and whether they were added now (adding an active member again changes nothing).

    Raises:
        Forbidden: `owner_only`.
        Unprocessable: `invalid_id_number`; `person_not_found` (no such registry person, or the name does
            not match — the same answer); `person_not_bound` (the person has no citizen account yet).
    """
    ref = await require_owner(account_id=account_id, uscc=uscc, cipher=cipher)
    try:
        person = await match_person(cipher=cipher, name=name, id_number=id_number)
    except InvalidIdentifier as exc:
        raise Unprocessable(f"invalid id_number: {exc.reason}", code="invalid_id_number",
                            errors=[{"field": "id_number", "message": exc.reason}]) from None
    if person is None:
        raise Unprocessable("no registry person has this name and id number", code="person_not_found")
    operator_account = await account_of_person(person.id)
    if operator_account is None:
        raise Unprocessable("this person has not bound a citizen account yet", code="person_not_bound")
    created = await _upsert_member(enterprise_id=ref.enterprise_id, account_id=operator_account,
                                   person_id=person.id, role=OPERATOR, added_by=account_id, now=datetime.now(UTC))
    wanted = member_id(cipher=cipher, enterprise_id=ref.enterprise_id, account_id=operator_account)
    members = await list_members(cipher=cipher, account_id=account_id, uscc=uscc)
    return next(m for m in members if m.id == wanted), created


async def remove_member(*, cipher: FieldCipher, account_id: str, uscc: str, member_public_id: str) -> MemberOut:
    """The owner removes an operator. The owner cannot be removed (the registry decides who that is).

    Raises:
        Forbidden: `owner_only`.
        NotFound: `member_not_found`.
        Unprocessable: `cannot_remove_owner`.
    """
    ref = await require_owner(account_id=account_id, uscc=uscc, cipher=cipher)
    rows = await EnterpriseMember.select(_MEMBER_PK, EnterpriseMember.account_id, EnterpriseMember.role).where(
        (EnterpriseMember.enterprise == ref.enterprise_id) & (EnterpriseMember.status == ACTIVE))
    target = next((r for r in rows if member_id(cipher=cipher, enterprise_id=ref.enterprise_id,
                                               account_id=r["account_id"]) == member_public_id), None)
    if target is None:
        raise NotFound("member not found", code="member_not_found")
    if target["role"] == OWNER:
        raise Unprocessable("the legal representative cannot be removed", code="cannot_remove_owner")
    now = datetime.now(UTC)
    await EnterpriseMember.update({EnterpriseMember.status: REMOVED, EnterpriseMember.removed_at: now}).where(
        (_MEMBER_PK.is_in([int(target["id"])])) & (EnterpriseMember.status == ACTIVE))
    members = await list_members(cipher=cipher, account_id=account_id, uscc=uscc, include_removed=True)
    return next(m for m in members if m.id == member_public_id)


async def end_memberships(*, account_id: str) -> int:
    """End every membership of a citizen account being closed (owner or operator); how many were active.

    An owner's membership ends too, even when it is the enterprise's only owner: ownership follows the
    registry, not the account, so the enterprise is not left without a way back: its legal representative
    binds it again from a new account (`bind`) and becomes the owner; its operators keep acting for it meanwhile.
    The enterprise's own authorizations (given by the enterprise, not by the person) stay as they are.
    """
    ended = await EnterpriseMember.update({EnterpriseMember.status: REMOVED,
                                           EnterpriseMember.removed_at: datetime.now(UTC)}).where(
        (EnterpriseMember.account_id == account_id) & (EnterpriseMember.status == ACTIVE)).returning(_MEMBER_PK)
    return len(ended)


__all__ = ["AccountOfPerson", "EnterpriseRef", "add_operator", "bind", "current_owner_account",
           "end_memberships", "enterprise_of_member", "is_active_member",
           "list_members", "member_id", "my_enterprises", "remove_member", "require_member", "require_owner"]
