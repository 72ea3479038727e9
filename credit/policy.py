"""Disclosure and repair periods per severity, as configuration with effective dates.

The city plans set how long a negative record is shown and how soon its subject may apply for credit
repair (信用修复). These periods change by decree, so each policy has the date it takes effect; a record
is governed by the policy in force on the day it occurred.

Defaults (effective 2021-01-01) follow the plans: minor — shown at most 3 months, repairable at once;
general — repairable after 3 months, shown at most 1 year; serious — repairable after 1 year, shown at
most 3 years. Display stops automatically at the maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Periods:
    min_before_repair_days: int
    max_display_days: int


@dataclass(frozen=True, slots=True)
class DisclosurePolicy:
    effective_from: date
    periods: dict[str, Periods]


DEFAULT_POLICIES: tuple[DisclosurePolicy, ...] = (
    DisclosurePolicy(
        effective_from=date(2021, 1, 1),
        periods={
            "minor": Periods(min_before_repair_days=0, max_display_days=90),
            "general": Periods(min_before_repair_days=90, max_display_days=365),
            "serious": Periods(min_before_repair_days=365, max_display_days=3 * 365),
        },
    ),
)


class PolicyBook:
    """Looks up the periods that govern a record, by its severity and the day it occurred."""

    def __init__(self, policies: tuple[DisclosurePolicy, ...] = DEFAULT_POLICIES) -> None:
        if not policies:
            raise ValueError("at least one disclosure policy is required")
        self._policies = tuple(sorted(policies, key=lambda p: p.effective_from))

    def periods(self, *, severity: str, occurred_at: datetime) -> Periods:
        day = occurred_at.date()
        chosen = self._policies[0]
        for policy in self._policies:
            if policy.effective_from <= day:
                chosen = policy
        return chosen.periods[severity]

    def display_until(self, *, severity: str, occurred_at: datetime) -> datetime:
        """Negative records stop being shown (and counted) at this moment."""
        return occurred_at + timedelta(days=self.periods(severity=severity, occurred_at=occurred_at).max_display_days)

    def repairable_from(self, *, severity: str, occurred_at: datetime) -> datetime:
        """The earliest moment the subject may apply for credit repair."""
        periods = self.periods(severity=severity, occurred_at=occurred_at)
        return occurred_at + timedelta(days=periods.min_before_repair_days)
