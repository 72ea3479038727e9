"""Storage for the partner registry."""

from __future__ import annotations

from piccolo.columns import JSON, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Partner(Table, tablename="partners"):
    """A bank, merchant, data source, government department or peer city calling the API.

    `client_id` is the public identifier; the client secret is kept only as a slow (scrypt) hash;
    `jwks` holds the public keys registered for private_key_jwt client authentication.
    """

    client_id = Varchar(length=40, unique=True, index=True)
    name = Varchar(length=128)
    kind = Varchar(length=16)  # bank | merchant | data_source | government | city_peer
    scopes = Text(default="")  # space-separated, a subset of the kind's allowed scopes
    status = Varchar(length=16, default="active")
    secret_hash = Text(null=True, default=None)
    jwks = JSON(null=True, default=None)
    scenario = Varchar(length=16, null=True, default=None)  # merchants: the 信易+ scenario they serve
    created_at = Timestamptz(default=TimestamptzNow())
