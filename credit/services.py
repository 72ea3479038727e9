"""Registry look-ups of the credit core (persons, enterprises). No HTTP objects here."""

from __future__ import annotations

from dataclasses import dataclass

from credit.identity import FieldCipher, InvalidIdentifier, normalize_id_number
from credit.tables import Person

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


__all__ = ["InvalidIdentifier", "PersonIdentity", "match_person", "person_identity"]
