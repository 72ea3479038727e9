"""A partner request's admission (token revocation check, rate and quota counters) as data.

The partner guard normally runs the admission itself: one store round trip. Hot-path handlers that
need the store anyway (score queries and checks count a use against the authorization's daily cap and
read the cached score) declare `opt={"deferred_admission": True}`; their guard then only stashes the
admission, and the handler's service folds it into its own round trip. The services see it as
`core.admission.Admission` (a Protocol this class satisfies), so credit and lending need nothing from
partners. Either way nothing is answered before the admission has run: a revoked token gets 401 and an
exhausted quota 429, and a refused admission counts nothing further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import InvalidToken
from core.store import Count, CounterResult, ProbeResult, Store
from partners.limits import PartnerLimiter
from partners.services import PartnerRecord


@dataclass(frozen=True, slots=True)
class PartnerAdmission:
    record: PartnerRecord
    limiter: PartnerLimiter
    probe: tuple[tuple[str, str], ...]  # revocation keys: any present refuses the token
    count: tuple[Count, ...]  # the partner's rate and quota counters

    def settle(self, result: ProbeResult) -> tuple[CounterResult, ...]:
        """Raise for a revoked token or a partner over its limits; return the counts that follow the
        admission's own (the caller's counters, in order)."""
        if result.found:
            raise InvalidToken("token has been revoked", code="token_revoked")
        own = ProbeResult(found=False, counts=result.counts[:len(self.count)], values=())
        self.limiter.enforce(self.record, own)
        return result.counts[len(self.count):]

    async def run(self, store: Store) -> None:
        """Run the admission on its own (paths that end before their fused store call)."""
        self.settle(await store.probe_and_count(probe=self.probe, count=self.count))

    async def run_with(self, store: Store, *, count: Sequence[Count] = (), read: Sequence[tuple[str, str]] = ()
                       ) -> ProbeResult:
        """The admission and the caller's own counters and reads in one round trip. Raises as `settle`;
        returns the caller's part (its counts, in order, and its reads)."""
        result = await store.probe_and_count(probe=self.probe, count=(*self.count, *count), read=read)
        mine = self.settle(result)
        return ProbeResult(found=False, counts=mine, values=result.values, reseeded=result.reseeded)

