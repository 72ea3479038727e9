"""Durable revocations: each marker the store holds for the hot path is also in the database.

Access-token revocations are rows of `revoked_tokens` (`jti:` per token, `fam:` per refresh family) kept
until the last token they deny has expired; partner suspensions are the partner's status (their markers are
`partners.services`'). An emptied store is seeded again from both (`core.store`) before any revocation check
trusts it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import timedelta

from piccolo.query.mixins import OnConflictAction

from accounts.tables import RevokedToken
from core import clock
from core.db import as_utc
from core.store import Marker, Store, StoreUnavailable


async def record_revocation(marker: str, *, ttl_seconds: int) -> None:
    expires_at = clock.now() + timedelta(seconds=ttl_seconds)
    await RevokedToken.insert(RevokedToken(marker=marker, expires_at=expires_at)).on_conflict(
        target=RevokedToken.marker, action=OnConflictAction.do_update, values=[RevokedToken.expires_at])


async def mark_again(store: Store, marker: str, *, ttl_seconds: int) -> None:
    """Set the marker once more now the row is committed: a store emptied and seeded again between the first
    write and the commit missed both. If the store is down now, the revocation still holds: the marker
    written first survives a store that comes back with its data, and one that comes back empty is seeded
    from the committed row."""
    with contextlib.suppress(StoreUnavailable):
        await store.set("auth", marker, b"1", ttl_seconds=ttl_seconds)


async def token_revocation_markers() -> Iterable[Marker]:
    """The `jti:` and `fam:` markers of revocations whose tokens may still be alive (for seeding the store)."""
    now = clock.now()
    rows = await RevokedToken.select(RevokedToken.marker, RevokedToken.expires_at).where(
        RevokedToken.expires_at > now)
    return [Marker("auth", row["marker"], max(1, int((as_utc(row["expires_at"]) - now).total_seconds()) + 1))
            for row in rows]


async def purge_expired_revocations() -> int:
    """Delete revocations whose tokens have all expired (background job); returns how many."""
    gone = await RevokedToken.delete().where(RevokedToken.expires_at <= clock.now()).returning(RevokedToken.marker)
    return len(gone)
