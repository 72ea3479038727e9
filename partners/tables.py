"""Storage for the partner registry."""

from __future__ import annotations

from piccolo.columns import JSON, Integer, SmallInt, Text, Timestamptz, Varchar
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
    # Secret rotation: the previous secret keeps working until `previous_secret_expires_at`.
    previous_secret_hash = Text(null=True, default=None)
    previous_secret_expires_at = Timestamptz(null=True, default=None)
    # Webhooks: where events go and the (encrypted) Standard Webhooks signing secret.
    webhook_url = Varchar(length=500, null=True, default=None)
    webhook_secret_enc = Text(null=True, default=None)
    # Limits: requests per second (burst over one second) and requests per day; 0 = kind default.
    rate_limit_per_second = Integer(default=0)
    daily_quota = Integer(default=0)
    # Optional comma-separated CIDR allowlist of client addresses.
    allowed_addresses = Text(null=True, default=None)
    # Peer cities: the `iss` their credit passports carry (unique; verified against `jwks`).
    issuer = Varchar(length=200, null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())
    # OAuth redirect URIs (partner-started consent), space-separated, compared exactly; NULL: none registered.
    redirect_uris = Text(null=True, default=None)


class WebhookAttempt(Table, tablename="webhook_attempts"):
    """One delivery attempt of an outbox event to a partner's webhook endpoint."""

    event_id = Varchar(length=32, index=True)  # the outbox event's public id (stable across retries)
    partner_client_id = Varchar(length=40, index=True)
    attempt = SmallInt()
    attempted_at = Timestamptz(default=TimestamptzNow())
    status_code = SmallInt(null=True, default=None)
    error = Varchar(length=200, null=True, default=None)
    duration_ms = Integer(default=0)
