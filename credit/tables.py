"""Storage for the credit core: the citizen and enterprise registries and credit records.

Identity numbers (公民身份号码, 统一社会信用代码) and phones are stored encrypted (AES-GCM, see
`credit.identity.FieldCipher`) and found through a keyed hash; they never appear in plain text.
"""

from __future__ import annotations

from piccolo.columns import Date, ForeignKey, Integer, SmallInt, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Person(Table, tablename="persons"):
    """A natural person in the city's citizen registry (fed by the identity data source)."""

    public_id = Varchar(length=32, unique=True, index=True)
    name = Varchar(length=64)
    id_number_hash = Varchar(length=64, unique=True, index=True)
    id_number_enc = Text()
    gender = Varchar(length=1)
    birth_date = Date()
    region_code = Varchar(length=6, index=True)
    phone_hash = Varchar(length=64, null=True, index=True)
    phone_enc = Text(null=True)
    created_at = Timestamptz(default=TimestamptzNow())


class Enterprise(Table, tablename="enterprises"):
    """A market entity in the registry, identified by its 统一社会信用代码 (USCC)."""

    public_id = Varchar(length=32, unique=True, index=True)
    name = Varchar(length=128)
    uscc_hash = Varchar(length=64, unique=True, index=True)
    uscc_enc = Text()
    industry = Varchar(length=1)  # GB/T 4754 section letter
    region_code = Varchar(length=6, index=True)
    registered_on = Date()
    registered_capital_fen = Integer(default=0)
    legal_representative = ForeignKey(references=Person, null=True, index=True)
    status = Varchar(length=16, default="active")
    created_at = Timestamptz(default=TimestamptzNow())


class CreditRecord(Table, tablename="credit_records"):
    """One credit fact about a person or an enterprise, pushed by a data source.

    `source` is the data source's partner client id (the credit core does not depend on the
    partner registry); (`source`, `source_ref`) is unique so that re-sending corrects, never duplicates.
    """

    public_id = Varchar(length=32, unique=True, index=True)
    subject_kind = Varchar(length=10)  # "person" | "enterprise"
    person = ForeignKey(references=Person, null=True, index=True)
    enterprise = ForeignKey(references=Enterprise, null=True, index=True)
    category = Varchar(length=40)
    polarity = SmallInt()  # +1 positive, -1 negative
    severity = Varchar(length=10)  # minor | general | serious
    dimension = Varchar(length=16)
    title = Varchar(length=200)
    source = Varchar(length=64)
    source_ref = Varchar(length=128)
    occurred_at = Timestamptz()
    status = Varchar(length=12, default="active")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
