"""Wire types of the partners domain: the registry, usage, and the webhook deliveries a partner sees."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from core.pagination import Page
from partners.scopes import PartnerKind


class PartnerCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    kind: PartnerKind
    scopes: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=32)] | None = None
    jwks: Annotated[list[dict[str, Any]], Meta(max_length=8)] | None = None
    with_secret: bool = True
    scenario: Annotated[str, Meta(max_length=16)] | None = None
    issuer: Annotated[str, Meta(min_length=1, max_length=200)] | None = None  # city_peer: its passports' `iss`
    # OAuth redirect URIs for partner-started consent: https (loopback http outside production), exact match.
    redirect_uris: Annotated[list[Annotated[str, Meta(max_length=500)]], Meta(max_length=5)] | None = None


class PartnerCredentials(msgspec.Struct, omit_defaults=True):
    """Returned once, on creation: the secret is never shown again."""

    client_id: str
    client_secret: str | None = None


class PartnerView(msgspec.Struct):
    client_id: str
    name: str
    kind: str
    scopes: list[str]
    status: str
    scenario: str | None
    auth_methods: list[str]


class PartnerPage(Page[PartnerView]):
    pass


class PartnerUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Fields an operator may change; omitted fields stay as they are."""

    name: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    scopes: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=32)] | None = None
    status: Literal["active", "suspended"] | None = None
    rate_limit_per_second: Annotated[int, Meta(ge=0, le=100_000)] | None = None
    daily_quota: Annotated[int, Meta(ge=0, le=1_000_000_000)] | None = None
    allowed_addresses: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=64)] | None = None
    webhook_url: Annotated[str, Meta(max_length=500)] | None = None  # "" removes the endpoint
    issuer: Annotated[str, Meta(max_length=200)] | None = None  # city_peer passport issuer; "" removes it
    # OAuth redirect URIs (replacing those registered; [] removes them all).
    redirect_uris: Annotated[list[Annotated[str, Meta(max_length=500)]], Meta(max_length=5)] | None = None


class SecretRotation(msgspec.Struct, forbid_unknown_fields=True):
    overlap_hours: Annotated[int, Meta(ge=0, le=168)] = 24


class Jwks(msgspec.Struct, forbid_unknown_fields=True):
    keys: Annotated[list[dict[str, Any]], Meta(max_length=8)]


class PartnerDetail(msgspec.Struct, omit_defaults=True):
    client_id: str
    name: str
    kind: str
    scopes: list[str]
    status: str
    auth_methods: list[str]
    rate_limit_per_second: int
    daily_quota: int
    allowed_addresses: list[str]
    scenario: str | None = None
    webhook_url: str | None = None
    previous_secret_valid_until: datetime | None = None
    webhook_secret: str | None = None  # only in the answer that configured a new endpoint, once
    issuer: str | None = None  # peer cities: the `iss` of the credit passports they sign
    redirect_uris: list[str] = msgspec.field(default_factory=list)  # OAuth redirect URIs (exact match)


class UsageView(msgspec.Struct):
    per_second_limit: int
    per_second_remaining: int
    daily_quota: int
    daily_used: int
    daily_resets_at: int


DeliveryStatus = Literal["pending", "delivering", "delivered", "failed", "dead", "no_endpoint"]


class LastAttempt(msgspec.Struct, omit_defaults=True):
    at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None


class Delivery(msgspec.Struct, omit_defaults=True):
    """One event addressed to the partner; `id` is the `webhook-id` header its deliveries carry."""

    id: str
    type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_attempt: LastAttempt | None = None


class DeliveryPage(Page[Delivery]):
    pass
