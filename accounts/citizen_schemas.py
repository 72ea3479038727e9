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
