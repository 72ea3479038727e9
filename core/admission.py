"""A partner request's admission as the domains see it: something to run, alone or folded into their own
store round trip.

The partner guard (api) builds the admission (token revocation probe, the partner's rate and quota counters;
the concrete one is `partners.admission.PartnerAdmission`). Hot-path handlers that need the store anyway
(score queries and checks, bank portraits) declare `opt={"deferred_admission": True}`; their guard then only
stashes the admission and the handler's service folds it into its own round trip. Credit and lending see it
through this Protocol alone, so they depend on neither partners nor api. Either way nothing is answered
before the admission has run: a revoked token gets 401 and an exhausted quota 429, and a refused admission
counts nothing further.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.store import Count, CounterResult, ProbeResult, Store


class Admission(Protocol):
    """A deferred partner admission (see the module docstring)."""

    def settle(self, result: ProbeResult) -> tuple[CounterResult, ...]:
        """Raise for a revoked token or a partner over its limits; return the counts that follow the
        admission's own (the caller's counters, in order)."""
        ...

    async def run(self, store: Store) -> None:
        """Run the admission on its own (paths that end before their fused store call)."""
        ...

    async def run_with(self, store: Store, *, count: Sequence[Count] = (), read: Sequence[tuple[str, str]] = ()
                       ) -> ProbeResult:
        """The admission and the caller's own counters and reads in one round trip. Raises as `settle`;
        returns the caller's part (its counts, in order, and its reads)."""
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
