"""A deferred partner admission as the domains see it: something to run, alone or folded into their own
store round trip.

The partner guard (in `api`) decides what an admission checks — token revocation, rate and quota
counters — and, on hot paths, defers running it to the service that needs the store anyway, so the
admission and the service's own counters share one round trip. The domains only run it; this Protocol is
all they need to know of it, so they import nothing of `api`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.store import Count, ProbeResult, Store


class Admission(Protocol):
    """What a deferred admission offers its service (both raise as the guard would have: 401 / 429)."""

    async def run(self, store: Store) -> None:
        """Run the admission on its own (paths that end before their fused store call)."""
        ...

    async def run_with(self, store: Store, *, count: Sequence[Count] = (), read: Sequence[tuple[str, str]] = ()
                       ) -> ProbeResult:
        """The admission and the caller's own counters and reads in one round trip; returns the caller's part."""
        ...


async def admit(store: Store, admission: Admission | None) -> None:
    """Run a deferred admission on its own (paths that end before their fused store call); no-op without one."""
    if admission is not None:
        await admission.run(store)


async def admit_with(store: Store, admission: Admission | None, *, count: Sequence[Count] = (),
                     read: Sequence[tuple[str, str]] = ()) -> ProbeResult:
    """The caller's counters and reads, with the deferred admission folded in when there is one."""
    if admission is not None:
        return await admission.run_with(store, count=count, read=read)
    return await store.probe_and_count(count=count, read=read)
