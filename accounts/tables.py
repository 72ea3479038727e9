"""Storage for authentication: citizen accounts, refresh tokens, revoked access tokens and operator accounts."""

from __future__ import annotations

from piccolo.columns import ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from credit.tables import Person


class CitizenAccount(Table, tablename="citizen_accounts"):
    """A citizen's login (by phone), bound to at most one registry person.

    A closed account (`status` closed, PIPL Art. 47) stays as a tombstone: its phone and identity binding are
    gone (`phone_hash` becomes `closed:<account id>`, which no phone hashes to, so the phone can register again
    as a new account), and `closure` keeps what the closure did (JSON), so that a retry answers the same.
    """

    public_id = Varchar(length=32, unique=True, index=True)
    phone_hash = Varchar(length=64, unique=True, index=True)
    phone_enc = Text()
    person = ForeignKey(references=Person, null=True, unique=True)
    status = Varchar(length=16, default="active")  # active | suspended | closing | closed
    created_at = Timestamptz(default=TimestamptzNow())
    bound_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    closure = Text(null=True, default=None)


class RefreshToken(Table, tablename="refresh_tokens"):
    """A rotating refresh token, stored only as a hash. One family per login; reuse kills the family."""

    token_hash = Varchar(length=64, unique=True, index=True)
    family_id = Varchar(length=32, index=True)
    subject_kind = Varchar(length=10)  # "citizen" | "operator"
    subject_id = Varchar(length=32, index=True)
    issued_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class RevokedToken(Table, tablename="revoked_tokens"):
    """An access-token revocation, kept until the last token it denies has expired.

    `marker` is the store key the revocation check probes (`jti:<token id>` or `fam:<refresh family>`): the
    store holds these markers for the hot path, and an emptied store is seeded again from this table.
    """

    marker = Varchar(length=64, unique=True, index=True)
    expires_at = Timestamptz(index=True)


class Operator(Table, tablename="operators"):
    """A credit office operator (admin console user)."""

    public_id = Varchar(length=32, unique=True, index=True)
    username = Varchar(length=64, unique=True, index=True)
    display_name = Varchar(length=64)
    password_hash = Text()
    role = Varchar(length=16)  # officer | partner_admin | auditor
    status = Varchar(length=16, default="active")
    created_at = Timestamptz(default=TimestamptzNow())
