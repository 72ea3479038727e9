"""The personal credit score: 0–1000 over five dimensions, deterministic, bounded, monotone, explainable.

How a score is made (documented here because citizens and auditors will ask):

1. Every dimension starts at 65 % of its maximum (a person with no records is tier A).
2. Each counted record weighs `SEVERITY_WEIGHT[severity]`, decayed by half every `HALF_LIFE_DAYS`
   (shorter for minor negatives, so small lapses fade fast). Records that are repaired, expired or
   withdrawn do not count; negatives stop counting when their disclosure period ends; records under
   objection still count but are flagged.
3. Per dimension, positive weight P lifts the score towards the maximum and negative weight N pulls it
   towards zero, each with diminishing returns:
   `score = base + (max − base)·(1 − e^(−P/K_POS)) − base·(1 − e^(−N/K_NEG))`.
   This is increasing in P and decreasing in N, so a new negative record never raises a score and
   removing one never lowers it; the result stays within [0, max].
4. Total = sum of the rounded dimension scores; tier by `TIERS` cut-offs.
5. Reasons: each dimension's lift (or pull) is shared among its records in proportion to their
   weight, grouped by category; the largest absolute impacts are the top reasons.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from credit.catalog import CATEGORIES, DIMENSIONS
from credit.policy import PolicyBook

MODEL_VERSION = "xinyi-score-1"

DIMENSION_MAX: dict[str, int] = {
    "identity": 140,
    "fulfilment": 300,
    "history": 200,
    "contribution": 160,
    "compliance": 200,
}
BASE_FRACTION = 0.65
SEVERITY_WEIGHT: dict[str, float] = {"minor": 1.0, "general": 3.0, "serious": 8.0}
SEVERITY_TEXT: dict[str, str] = {"minor": "轻微", "general": "一般", "serious": "严重"}
HALF_LIFE_DAYS: dict[tuple[int, str], float] = {
    (+1, "minor"): 365.0, (+1, "general"): 540.0, (+1, "serious"): 730.0,
    (-1, "minor"): 90.0, (-1, "general"): 180.0, (-1, "serious"): 365.0,
}
K_POS = 6.0
K_NEG = 4.0
# Lowest total for each tier, best first.
TIERS: tuple[tuple[str, int], ...] = (("AAA", 900), ("AA", 800), ("A", 650), ("B", 500), ("C", 0))
COUNTED_STATUSES = frozenset({"active", "objected"})
TOP_REASONS = 5


@dataclass(frozen=True, slots=True)
class RecordFact:
    """The parts of a credit record the score depends on."""

    record_id: str
    category: str
    polarity: int
    severity: str
    dimension: str
    occurred_at: datetime
    status: str = "active"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: str
    dimension: str
    impact: int  # points, negative when the reason lowers the score
    records: int


@dataclass(frozen=True, slots=True)
class Score:
    total: int
    tier: str
    dimensions: dict[str, int]
    reasons: list[Reason]
    objected_records: int
    as_of: datetime
    model_version: str = MODEL_VERSION
    counted_records: int = 0
    details: dict[str, float] = field(default_factory=dict, compare=False)


def tier_for(total: int) -> str:
    for tier, floor in TIERS:
        if total >= floor:
            return tier
    return TIERS[-1][0]


def base_total() -> int:
    return sum(round(m * BASE_FRACTION) for m in DIMENSION_MAX.values())


def counts(record: RecordFact, *, as_of: datetime, policy: PolicyBook) -> bool:
    """Whether `record` counts towards a score computed at `as_of` (and is shown to partners)."""
    if record.status not in COUNTED_STATUSES or record.occurred_at > as_of:
        return False
    if record.polarity < 0:
        return as_of < policy.display_until(severity=record.severity, occurred_at=record.occurred_at)
    return True


def record_weight(record: RecordFact, *, as_of: datetime) -> float:
    age_days = max(0.0, (as_of - record.occurred_at).total_seconds() / 86400.0)
    half_life = HALF_LIFE_DAYS[(1 if record.polarity > 0 else -1, record.severity)]
    return SEVERITY_WEIGHT[record.severity] * math.pow(0.5, age_days / half_life)


def compute_score(records: Iterable[RecordFact], *, as_of: datetime, policy: PolicyBook | None = None) -> Score:
    """Score a subject from their records as of a moment. Pure: same inputs, same score."""
    book = policy or PolicyBook()
    positive: dict[str, list[tuple[RecordFact, float]]] = defaultdict(list)
    negative: dict[str, list[tuple[RecordFact, float]]] = defaultdict(list)
    objected = counted = 0
    # Sorting makes float sums independent of the order records arrive in.
    for record in sorted(records, key=lambda r: (r.occurred_at, r.record_id)):
        if record.dimension not in DIMENSION_MAX or not counts(record, as_of=as_of, policy=book):
            continue
        counted += 1
        objected += record.status == "objected"
        weight = record_weight(record, as_of=as_of)
        (positive if record.polarity > 0 else negative)[record.dimension].append((record, weight))

    dimensions: dict[str, int] = {}
    impacts: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    details: dict[str, float] = {}
    for dimension, maximum in DIMENSION_MAX.items():
        base = maximum * BASE_FRACTION
        pos_weight = sum(w for _, w in positive[dimension])
        neg_weight = sum(w for _, w in negative[dimension])
        lift = (maximum - base) * (1.0 - math.exp(-pos_weight / K_POS))
        pull = base * (1.0 - math.exp(-neg_weight / K_NEG))
        value = min(float(maximum), max(0.0, base + lift - pull))
        dimensions[dimension] = round(value)
        details[dimension] = value
        for record, weight in positive[dimension]:
            impacts[(record.category, +1, dimension)].append(lift * weight / pos_weight)
        for record, weight in negative[dimension]:
            impacts[(record.category, -1, dimension)].append(-pull * weight / neg_weight)

    reasons = [
        _reason(category, polarity, dimension, shares)
        for (category, polarity, dimension), shares in impacts.items()
    ]
    reasons = [r for r in reasons if r.impact != 0]
    reasons.sort(key=lambda r: (-abs(r.impact), r.code))
    total = sum(dimensions.values())
    return Score(total=total, tier=tier_for(total), dimensions=dimensions, reasons=reasons[:TOP_REASONS],
                 objected_records=objected, as_of=as_of, counted_records=counted, details=details)


def _reason(category: str, polarity: int, dimension: str, shares: list[float]) -> Reason:
    entry = CATEGORIES.get(category)
    name = entry.name if entry else category
    direction = "提升" if polarity > 0 else "拉低"
    prefix = "POS" if polarity > 0 else "NEG"
    text = f"{name}记录{len(shares)}条，{direction}{DIMENSIONS[dimension]}"
    return Reason(code=f"{prefix}_{category.upper()}", text=text, dimension=dimension,
                  impact=round(sum(shares)), records=len(shares))
