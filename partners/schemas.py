"""Wire types for the partner registry."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from partners.scopes import PartnerKind


class PartnerCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    kind: PartnerKind
    scopes: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=32)] | None = None
    jwks: Annotated[list[dict[str, Any]], Meta(max_length=8)] | None = None
    with_secret: bool = True
    scenario: Annotated[str, Meta(max_length=16)] | None = None


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


class PartnerPage(msgspec.Struct):
    items: list[PartnerView]
    next_cursor: str | None
