"""One synthetic registry person `xinyi up` prints for the README tour (outside production only)."""

from __future__ import annotations

from dataclasses import dataclass

from credit.identity import FieldCipher
from credit.tables import CreditRecord, Enterprise


@dataclass(frozen=True, slots=True)
class DemoCitizen:
    """A registry person of the demo city a newcomer can log in as and bind (synthetic data, dev only)."""

    phone: str
    name: str
    id_number: str
    enterprise_uscc: str  # an enterprise whose legal representative (法定代表人) this person is
    enterprise_name: str


async def demo_citizen(*, cipher: FieldCipher) -> DemoCitizen | None:
    """The same person every time for a given registry: the legal representative of the first active enterprise
    who has a phone and no record that bars them (失信被执行人, serious negative records). None for a registry
    without one (e.g. seeded with no enterprises)."""
    candidates = await Enterprise.select(
        Enterprise.name, Enterprise.uscc_enc, Enterprise.legal_representative.id,
        Enterprise.legal_representative.name, Enterprise.legal_representative.id_number_enc,
        Enterprise.legal_representative.phone_enc,
    ).where(
        Enterprise.legal_representative.is_not_null() & (Enterprise.status == "active")
        & Enterprise.legal_representative.phone_enc.is_not_null()
    ).order_by(Enterprise._meta.primary_key).limit(50)
    for row in candidates:
        person = row["legal_representative.id"]
        barred = await CreditRecord.exists().where(
            (CreditRecord.subject_kind == "person") & (CreditRecord.person == person)
            & ((CreditRecord.category == "dishonest_executee") | (CreditRecord.severity == "serious")))
        if barred:
            continue
        return DemoCitizen(
            phone=cipher.decrypt("phone", row["legal_representative.phone_enc"]),
            name=row["legal_representative.name"],
            id_number=cipher.decrypt("id_number", row["legal_representative.id_number_enc"]),
            enterprise_uscc=cipher.decrypt("uscc", row["uscc_enc"]), enterprise_name=row["name"])
    return None
