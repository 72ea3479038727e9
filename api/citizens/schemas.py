"""Wire types for the citizen's own account."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta


class IdentityBindRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=64, description="Name exactly as in the registry")]
    id_number: Annotated[str, Meta(min_length=15, max_length=18, description="18-digit 公民身份号码")]


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
