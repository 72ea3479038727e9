"""A citizen's own account: profile and binding to a registry person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from accounts.context import AccountsContext
from accounts.tables import CitizenAccount
from core.errors import Conflict, Forbidden, NotFound, RateLimited, ServiceUnavailable, Unprocessable
from credit.identity import FieldCipher, InvalidIdentifier
from credit.services import PersonIdentity, match_person, person_identity
from credit.tables import Person
from partners.adapters import IdentityVerificationUnavailable


@dataclass(frozen=True, slots=True)
class AccountView:
    account_id: str
    phone: str
    person: PersonIdentity | None
    bound_at: datetime | None


async def account_view(*, ctx: AccountsContext, account_id: str) -> AccountView:
    row = await CitizenAccount.select(
        CitizenAccount.public_id, CitizenAccount.phone_enc, CitizenAccount.person, CitizenAccount.bound_at,
        CitizenAccount.status).where(CitizenAccount.public_id == account_id).first()
    if row is None or row["status"] == "closed":  # a closed account is a tombstone without a phone
        raise NotFound("account not found", code="account_not_found")
    person = await person_identity(cipher=ctx.cipher, person_id=row["person"]) if row["person"] else None
    return AccountView(account_id=row["public_id"], phone=ctx.cipher.decrypt("phone", row["phone_enc"]),
                       person=person, bound_at=row["bound_at"])


async def bind_identity(*, ctx: AccountsContext, account_id: str, name: str, id_number: str) -> AccountView:
    """Bind the account to the registry person with this name and id number.

    A wrong name and an unknown id number get the same answer, and attempts are limited per
    account per day, so the endpoint cannot be used to probe the registry.
    """
    attempts = await ctx.store.incr_with_limit("identity", f"bind:{account_id}",
                                               limit=ctx.settings.identity_bind_attempts_per_day,
                                               ttl_seconds=24 * 3600)
    if not attempts.allowed:
        raise RateLimited("too many identity attempts today", code="identity_attempts_exceeded",
                          retry_after=attempts.ttl_seconds)
    try:
        person = await match_person(cipher=ctx.cipher, name=name, id_number=id_number)
    except InvalidIdentifier as exc:
        raise Unprocessable(f"invalid id number: {exc.reason}", code="invalid_id_number",
                            errors=[{"field": "id_number", "message": exc.reason}]) from None
    if person is None:
        raise Unprocessable("name and id number do not match the registry", code="identity_mismatch")
    try:
        verified = await ctx.identity.verify(name=person.name, id_number=person.id_number)
    except IdentityVerificationUnavailable:
        raise ServiceUnavailable("identity verification is unavailable", code="identity_verifier_unavailable") from None
    if not verified:
        raise Unprocessable("name and id number do not match the registry", code="identity_mismatch")
    account = await CitizenAccount.select(CitizenAccount.person).where(
        CitizenAccount.public_id == account_id).first()
    if account is None:
        raise NotFound("account not found", code="account_not_found")
    if account["person"] == person.id:
        return await account_view(ctx=ctx, account_id=account_id)
    if account["person"] is not None:
        raise Conflict("this account is already bound to another identity", code="account_already_bound")
    if await CitizenAccount.exists().where(CitizenAccount.person == person.id):
        raise Conflict("this identity is bound to another account", code="identity_already_bound")
    # The conditional update plus the unique index on person make concurrent binds safe.
    try:
        updated = await CitizenAccount.update(
            {CitizenAccount.person: person.id, CitizenAccount.bound_at: datetime.now(UTC)}
        ).where((CitizenAccount.public_id == account_id) & CitizenAccount.person.is_null()).returning(
            CitizenAccount._meta.primary_key)
    except Exception as exc:
        if "unique" in str(exc).lower():
            raise Conflict("this identity is bound to another account", code="identity_already_bound") from None
        raise
    if not updated:
        raise Conflict("this account is already bound to another identity", code="account_already_bound")
    return await account_view(ctx=ctx, account_id=account_id)


async def bound_person_id(*, account_id: str) -> int:
    """The registry person behind a citizen account; credit data needs a bound identity."""
    row = await CitizenAccount.select(CitizenAccount.person).where(CitizenAccount.public_id == account_id).first()
    if row is None or row["person"] is None:
        raise Forbidden("bind your identity first (POST /v1/me/identity)", code="identity_not_bound")
    return int(row["person"])


async def citizen_account_id(person_id: int) -> str | None:
    """The public id of the person's citizen account (None: nobody bound this identity), for notices to the
    citizen from domains that know only the registry person (scenarios' credit orders)."""
    row = await CitizenAccount.select(CitizenAccount.public_id).where(CitizenAccount.person == person_id).first()
    return None if row is None else str(row["public_id"])


async def accounts_of_person(person_public_id: str) -> list[str]:
    """The active citizen account bound to the registry person `person_public_id` (at most one), for notices
    that the credit domain addresses to a person (`person:<public id>`): it knows no accounts."""
    person = await Person.select(Person._meta.primary_key).where(Person.public_id == person_public_id).first()
    if person is None:
        return []
    row = await CitizenAccount.select(CitizenAccount.public_id).where(
        (CitizenAccount.person == int(person["id"])) & (CitizenAccount.status == "active")).first()
    return [] if row is None else [str(row["public_id"])]


async def account_phone(*, cipher: FieldCipher, account_id: str) -> str | None:
    """The account's phone, decrypted, for an SMS notice (never logged); None for an unknown or closed one."""
    row = await CitizenAccount.select(CitizenAccount.phone_enc).where(
        (CitizenAccount.public_id == account_id) & (CitizenAccount.status == "active")).first()
    return None if row is None else cipher.decrypt("phone", row["phone_enc"])
