"""Registry look-ups of the credit core (persons, enterprises). No HTTP objects here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import db
from core.errors import Unprocessable
from credit.identity import FieldCipher, normalize_id_number
from credit.tables import CreditRecord, LedgerEntry, Person

# Piccolo adds the `id` primary key implicitly; reach it through the table's meta for typing.
_PERSON_PK = Person._meta.primary_key


@dataclass(frozen=True, slots=True)
class PersonIdentity:
    id: int
    public_id: str
    name: str
    id_number: str


async def match_person(*, cipher: FieldCipher, name: str, id_number: str) -> PersonIdentity | None:
    """The registry person with exactly this name and id number, or None.

    Raises:
        InvalidIdentifier: the id number itself is not a valid 公民身份号码.
    """
    number = normalize_id_number(id_number)
    row = await Person.select(_PERSON_PK, Person.public_id, Person.name).where(
        Person.id_number_hash == cipher.lookup_hash("id_number", number)).first()
    if row is None or row["name"] != name.strip():
        return None
    return PersonIdentity(id=row["id"], public_id=row["public_id"], name=row["name"], id_number=number)


async def person_identity(*, cipher: FieldCipher, person_id: int) -> PersonIdentity | None:
    row = await Person.select(_PERSON_PK, Person.public_id, Person.name, Person.id_number_enc).where(
        _PERSON_PK.is_in([person_id])).first()
    if row is None:
        return None
    return PersonIdentity(id=row["id"], public_id=row["public_id"], name=row["name"],
                          id_number=cipher.decrypt("id_number", row["id_number_enc"]))




# ---------------------------------------------------------------- the subject's own view


_RECORD_VIEW = (CreditRecord.public_id, CreditRecord.category, CreditRecord.polarity, CreditRecord.severity,
                CreditRecord.dimension, CreditRecord.title, CreditRecord.source, CreditRecord.occurred_at,
                CreditRecord.status)


async def person_records(*, person_id: int, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The person's records, newest first, with a cursor over (occurred_at, public_id)."""
    query = CreditRecord.select(*_RECORD_VIEW).where(CreditRecord.person == person_id)
    return await db.newest_first(query, at=CreditRecord.occurred_at, key=CreditRecord.public_id, limit=limit,
                                 cursor=cursor)


async def access_log(*, subject_id: str, limit: int, before_seq: int | None) -> list[dict[str, Any]]:
    """Ledger entries about this subject, newest first."""
    query = LedgerEntry.select(LedgerEntry.seq, LedgerEntry.at, LedgerEntry.actor_name, LedgerEntry.actor_type,
                               LedgerEntry.action, LedgerEntry.outcome, LedgerEntry.fields, LedgerEntry.hash,
                               LedgerEntry.purpose, LedgerEntry.authorization_id).where(
        LedgerEntry.subject_id == subject_id).order_by(LedgerEntry.seq, ascending=False).limit(limit)
    if before_seq is not None:
        query = query.where(LedgerEntry.seq < before_seq)
    return list(await query)


async def person_public_id(person_id: int) -> str:
    row = await Person.select(Person.public_id).where(_PERSON_PK.is_in([person_id])).first()
    if row is None:
        raise Unprocessable("person not found", code="person_not_found")
    return str(row["public_id"])
