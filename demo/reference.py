"""What every demo generator shares: the fixed "now" the city is generated at, and the shape of public ids.

A fixed reference time makes the demo city independent of the day it is seeded, so two seeds with the same
arguments give the same rows (see `demo.city`).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

# A fixed "now" for everything generated, so output does not depend on the day the seed runs.
REFERENCE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
# Ages (18–80) are counted on this day.
AGE_REFERENCE = date(2026, 1, 1)
# Credit records span the five years before REFERENCE_TIME; the registry is loaded at the start.
RECORD_WINDOW_START = REFERENCE_TIME.replace(year=REFERENCE_TIME.year - 5)
REGISTRY_LOADED_AT = RECORD_WINDOW_START


def public_id(rng: random.Random, prefix: str) -> str:
    """A public id (`prefix_` and 20 hex digits)."""
    # Same shape as credit.identity.new_public_id, but drawn from the seeded stream so reruns compare.
    return f"{prefix}_{rng.getrandbits(80):020x}"
