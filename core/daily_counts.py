"""Daily counts that domains contribute to the policy statistics, without the statistics importing them.

The statistics (credit/stats.py) count what the credit core owns; redemptions and credit orders belong to
scenarios, financing demands and loan approvals to lending. Each of those domains offers a contributor
(an async function counting its events in one time window), and the composition (api/context.py) puts them
in a `DailyCountRegistry`, which the statistics read. A metric nobody contributes is reported as not
available, never as 0.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

DailyCounter = Callable[[datetime, datetime], Awaitable[dict[str, int]]]
"""Counts events in [start, end) (UTC instants) and returns them by metric name."""


@dataclass(frozen=True, slots=True)
class Contributor:
    name: str
    metrics: tuple[str, ...]
    count: DailyCounter


@dataclass(slots=True)
class DailyCountRegistry:
    """Contributors of daily counts, by the metrics they count (each metric from exactly one)."""

    _contributors: list[Contributor] = field(default_factory=list)

    def register(self, *, name: str, metrics: tuple[str, ...], count: DailyCounter) -> None:
        """Add a contributor; registering the same name again replaces it.

        Raises:
            ValueError: another contributor already counts one of `metrics`.
        """
        others = [c for c in self._contributors if c.name != name]
        if taken := sorted({m for c in others for m in c.metrics} & set(metrics)):
            raise ValueError(f"metrics already contributed by another domain: {', '.join(taken)}")
        self._contributors = [*others, Contributor(name=name, metrics=metrics, count=count)]

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(m for c in self._contributors for m in c.metrics)

    async def count(self, start: datetime, end: datetime) -> dict[str, int]:
        """Every contributed metric for [start, end).

        Raises:
            KeyError: a contributor left out one of the metrics it registered (a bug, not a zero).
        """
        counts: dict[str, int] = {}
        for contributor in self._contributors:
            got = await contributor.count(start, end)
            counts.update({m: int(got[m]) for m in contributor.metrics})
        return counts


__all__ = ["Contributor", "DailyCountRegistry", "DailyCounter"]
