"""Wire types for the citizen's own account."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from core.identifiers import IdNumber


class IdentityBindRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=64, description="Name exactly as in the registry")]
    id_number: IdNumber


class Identity(msgspec.Struct):
    person_id: str
    name: str
    id_number_masked: str
    bound_at: datetime | None


class Me(msgspec.Struct):
    """The citizen's own account. The phone is shown in full: the caller is its subject."""

    account_id: str
    phone: str
    identity: Identity | None


class AccountCloseRequest(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, Meta(pattern=r"^[0-9]{6}$", description=(
        "The code sent by POST /v1/me/account/close/code (a login code does not close an account); may be "
        "left out only to finish a closure that was interrupted"))] | None = None


class ClosureItem(msgspec.Struct, omit_defaults=True):
    """One thing a closure deleted, ended or kept."""

    what: str
    why: str
    count: int | None = None


class AccountClosure(msgspec.Struct):
    """What closing the account did (PIPL Art. 47), and what is kept and why. A retry answers the same."""

    account_id: str
    status: str  # closed
    closed_at: datetime
    deleted: list[ClosureItem]
    ended: list[ClosureItem]
    kept: list[ClosureItem]
