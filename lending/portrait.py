"""The enterprise credit portrait (企业信用画像): 0–100 over seven dimensions, grade A/B/C/D, tags, hard
risk flags, data sources with freshness. Pure: the same registry facts, records and moment always give
the same portrait (and the same digest).

How a portrait is made (documented here because enterprises, banks and auditors will ask):

1. Records count as for persons (`credit.scoring.counts`): withdrawn, repaired and expired records do
   not; negatives stop counting when their disclosure period ends. Each counted record weighs
   `SEVERITY_WEIGHT[severity]`, halved every `HALF_LIFE_DAYS` (the person score's decay).
2. Dimensions (maximum points):
   - stability 经营稳定性 (15): years in business (10 × (1 − e^(−years/4))) and registered capital
     (5 × log10(1 + 万元) / 3, at most 5). From the registry only.
   - tax 纳税信用 (20): points of the effective yearly grade (A 20, B 15, M 12, C 6, D 0, unknown 10),
     pulled down by tax arrears. The effective grade is the latest grade of the last two years, but a C or
     D year keeps weighing while it is disclosed: the worse of the two counts.
   - employment_social_insurance 用工与社保 (15): 6 + 9 × (months paid in the last 12) / 12 (one
     `social_insurance_paid` record per month), pulled down by social insurance arrears.
   - judicial_risk 司法风险 (20): 20 pulled down by unperformed court judgments; 0 for a dishonest
     executee (失信被执行人).
   - regulatory 行政监管 (10): 7 lifted by permits, honours and good environmental ratings, pulled down by
     administrative penalties and poor environmental ratings.
   - innovation 创新能力 (10): 专精特新 +4 and 高新技术企业 +3 (each for three years from recognition),
     patents 3 × (1 − e^(−n/5)).
   - fulfilment 履约情况 (10): 7 lifted by on-time contract fulfilment, pulled down by contract defaults
     and utility arrears.
   A pull is `value × (1 − e^(−N/K_NEG))` for negative weight N and a lift `room × (1 − e^(−P/K_POS))`,
   so a new negative record never raises a dimension and every dimension stays within [0, max].
3. Score = sum of the rounded dimensions (0–100); grade A ≥ 80, B ≥ 65, C ≥ 50, else D.
4. Hard risk flags cap the grade whatever the score: a dishonest executee is a hard stop (D), as is an
   abnormal registry status; tax grade D and serious penalties cap at C; unperformed judgments at B.
   Flags only ever come from negative facts, so they too never improve with a new negative record.
5. Every dimension carries a Chinese explanation and the facts it used; `sources` lists each data
   source's records with the time we last received one and its age in days.

The digest is SHA-256 over the canonical JSON (sorted keys, no spaces) of everything except the moment
of computation and the sources' ages, so it changes exactly when the content does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.db import as_utc
from credit.policy import PolicyBook
from credit.scoring import HALF_LIFE_DAYS, SEVERITY_WEIGHT, RecordFact, counts

MODEL_VERSION = "xinyi-portrait-1"

DIMENSIONS: dict[str, tuple[str, int]] = {
    "stability": ("经营稳定性", 15),
    "tax": ("纳税信用", 20),
    "employment_social_insurance": ("用工与社保", 15),
    "judicial_risk": ("司法风险", 20),
    "regulatory": ("行政监管", 10),
    "innovation": ("创新能力", 10),
    "fulfilment": ("履约情况", 10),
}
GRADES: tuple[tuple[str, int], ...] = (("A", 80), ("B", 65), ("C", 50), ("D", 0))
_GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3}

TAX_GRADE_POINTS: dict[str | None, float] = {"A": 20.0, "B": 15.0, "M": 12.0, "C": 6.0, "D": 0.0, None: 10.0}
TAX_GRADE_CATEGORIES: dict[str, str] = {"tax_grade_a": "A", "tax_grade_b": "B", "tax_grade_m": "M",
                                        "tax_grade_c": "C", "tax_grade_d": "D"}
_TAX_ORDER = {"A": 0, "B": 1, "M": 2, "C": 3, "D": 4}
TAX_GRADE_VALID_DAYS = 2 * 365  # a yearly grade older than this says nothing about today
HONOUR_VALID_DAYS = 3 * 365  # 专精特新 and 高新技术企业 recognitions run three years
K_POS = 6.0
K_NEG = 4.0

# code → (text, the best grade the flag allows)
RISK_FLAGS: dict[str, tuple[str, str]] = {
    "dishonest_executee": ("失信被执行人", "D"),
    "registry_status_abnormal": ("登记状态异常（吊销、注销或经营异常）", "D"),
    "tax_grade_d": ("纳税信用D级", "C"),
    "serious_penalty": ("严重行政处罚", "C"),
    "open_court_judgment": ("存在未履行的法院判决", "B"),
}

TAGS: dict[str, str] = {
    "specialized": "专精特新",
    "high_tech": "高新技术企业",
    "tax_a": "纳税A级",
    "social_insurance_full_year": "社保连续缴纳",
    "decade": "成立十年以上",
    "patents": "拥有专利",
}


@dataclass(frozen=True, slots=True)
class EnterpriseFacts:
    """What the registry says about the enterprise."""

    industry: str  # GB/T 4754 section letter
    region_code: str
    registered_on: date
    registered_capital_fen: int
    status: str = "active"


@dataclass(frozen=True, slots=True)
class EnterpriseRecord:
    """The parts of an enterprise's credit record the portrait depends on."""

    record_id: str
    category: str
    polarity: int
    severity: str
    occurred_at: datetime
    source: str
    received_at: datetime
    status: str = "active"


@dataclass(frozen=True, slots=True)
class DimensionResult:
    code: str
    name: str
    score: int
    max: int
    explanation: str
    facts: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "score": self.score, "max": self.max,
                "explanation": self.explanation, "facts": self.facts}


@dataclass(frozen=True, slots=True)
class Portrait:
    score: int
    grade: str
    dimensions: tuple[DimensionResult, ...]
    tags: tuple[str, ...]
    risk_flags: tuple[str, ...]
    facts: dict[str, Any]
    sources: tuple[dict[str, Any], ...]
    as_of: datetime
    model_version: str = MODEL_VERSION
    details: dict[str, float] = field(default_factory=dict, compare=False)

    def content(self) -> dict[str, Any]:
        """Everything the digest covers: the portrait without its moment and the sources' ages."""
        return {
            "model_version": self.model_version, "score": self.score, "grade": self.grade,
            "dimensions": [d.as_dict() for d in self.dimensions], "tags": list(self.tags),
            "risk_flags": list(self.risk_flags), "facts": self.facts,
            "sources": [{k: v for k, v in s.items() if k != "age_days"} for s in self.sources],
        }

    @property
    def digest(self) -> str:
        return content_digest(self.content())


def content_digest(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def grade_for(score: int) -> str:
    for grade, floor in GRADES:
        if score >= floor:
            return grade
    return GRADES[-1][0]


def _worse(a: str, b: str) -> str:
    return a if _GRADE_ORDER[a] >= _GRADE_ORDER[b] else b


def _weight(record: EnterpriseRecord, as_of: datetime) -> float:
    age_days = max(0.0, (as_of - record.occurred_at).total_seconds() / 86400.0)
    half_life = HALF_LIFE_DAYS[(1 if record.polarity > 0 else -1, record.severity)]
    return SEVERITY_WEIGHT[record.severity] * math.pow(0.5, age_days / half_life)


def _lift(room: float, weight: float) -> float:
    return room * (1.0 - math.exp(-weight / K_POS))


def _pull(value: float, weight: float) -> float:
    return value * (1.0 - math.exp(-weight / K_NEG))


class _Counted:
    """The counted records of one portrait, grouped by category, with their decayed weights."""

    def __init__(self, records: Iterable[EnterpriseRecord], *, as_of: datetime, policy: PolicyBook) -> None:
        self.as_of = as_of
        self.by_category: dict[str, list[tuple[EnterpriseRecord, float]]] = defaultdict(list)
        # Sorting makes float sums independent of the order records arrive in.
        for r in sorted(records, key=lambda r: (r.occurred_at, r.record_id)):
            fact = RecordFact(record_id=r.record_id, category=r.category, polarity=r.polarity, severity=r.severity,
                              dimension="compliance", occurred_at=r.occurred_at, status=r.status)
            if r.severity in SEVERITY_WEIGHT and counts(fact, as_of=as_of, policy=policy):
                self.by_category[r.category].append((r, _weight(r, as_of)))

    def n(self, *categories: str, within_days: int | None = None) -> int:
        return len(self.of(*categories, within_days=within_days))

    def of(self, *categories: str, within_days: int | None = None) -> list[tuple[EnterpriseRecord, float]]:
        found = [item for c in categories for item in self.by_category.get(c, [])]
        if within_days is not None:
            since = self.as_of - timedelta(days=within_days)
            found = [item for item in found if item[0].occurred_at >= since]
        return sorted(found, key=lambda item: (item[0].occurred_at, item[0].record_id))

    def weight(self, *categories: str) -> float:
        return sum(w for _, w in self.of(*categories))


def _years_in_business(facts: EnterpriseFacts, as_of: datetime) -> float:
    return max(0.0, (as_of.date() - facts.registered_on).days / 365.25)


def _stability(facts: EnterpriseFacts, as_of: datetime) -> tuple[float, str, dict[str, Any]]:
    years = _years_in_business(facts, as_of)
    capital_wan = max(0, facts.registered_capital_fen) / 1_000_000
    value = 10.0 * (1.0 - math.exp(-years / 4.0)) + min(5.0, 5.0 * math.log10(1.0 + capital_wan) / 3.0)
    text = f"成立{years:.1f}年，注册资本{capital_wan:,.0f}万元"
    if facts.status != "active":
        value = 0.0
        text += "；登记状态异常，稳定性不计分"
    return value, text, {"years_in_business": round(years, 1), "registered_capital_fen": facts.registered_capital_fen,
                         "registry_status": facts.status}


def _tax_grade(counted: _Counted) -> tuple[str | None, int | None]:
    """The effective grade and the year it is for (see the module docstring)."""
    graded = counted.of(*TAX_GRADE_CATEGORIES, within_days=TAX_GRADE_VALID_DAYS)
    if not graded:
        return None, None
    latest = graded[-1][0]
    grade, year = TAX_GRADE_CATEGORIES[latest.category], latest.occurred_at.year
    for record, _ in counted.of("tax_grade_c", "tax_grade_d"):  # disclosed C/D years, however old
        other = TAX_GRADE_CATEGORIES[record.category]
        if _TAX_ORDER[other] > _TAX_ORDER[grade]:
            grade, year = other, record.occurred_at.year
    return grade, year


def _tax(counted: _Counted) -> tuple[float, str, dict[str, Any]]:
    grade, year = _tax_grade(counted)
    points = TAX_GRADE_POINTS[grade]
    arrears = counted.n("tax_arrears")
    value = points - _pull(points, counted.weight("tax_arrears"))
    text = f"纳税信用{grade}级（{year}年度评价）" if grade else "近两年无纳税信用评价，按中性计分"
    text += f"；欠缴税款记录{arrears}条" if arrears else "；无欠缴税款记录"
    return value, text, {"tax_grade": grade, "tax_grade_year": year, "tax_arrears": arrears}


def _social_insurance(counted: _Counted) -> tuple[float, str, dict[str, Any]]:
    paid = counted.of("social_insurance_paid", within_days=365)
    months = min(12, len({(r.occurred_at.year, r.occurred_at.month) for r, _ in paid}))
    arrears = counted.n("social_insurance_arrears")
    before = 6.0 + 9.0 * months / 12.0
    value = before - _pull(before, counted.weight("social_insurance_arrears"))
    text = f"近12个月按时缴纳社保{months}个月" + (f"；欠缴社保记录{arrears}条" if arrears else "；无欠缴记录")
    return value, text, {"social_insurance_months": months, "social_insurance_arrears": arrears}


def _judicial(counted: _Counted) -> tuple[float, str, dict[str, Any]]:
    judgments = counted.n("court_judgment")
    dishonest = counted.n("dishonest_executee") > 0
    value = 0.0 if dishonest else 20.0 - _pull(20.0, counted.weight("court_judgment"))
    if dishonest:
        text = "被列为失信被执行人，司法风险不计分"
    elif judgments:
        text = f"存在未履行的法院判决{judgments}件"
    else:
        text = "无未履行的法院判决，未被列为失信被执行人"
    return value, text, {"open_court_judgments": judgments, "dishonest_executee": dishonest}


_REGULATORY_POSITIVE = ("administrative_permit", "honour", "environmental_rating_good")
_REGULATORY_NEGATIVE = ("administrative_penalty", "environmental_rating_poor")


def _regulatory(counted: _Counted) -> tuple[float, str, dict[str, Any]]:
    penalties = counted.of("administrative_penalty")
    serious = sum(1 for r, _ in penalties if r.severity == "serious")
    permits = counted.n("administrative_permit")
    env = counted.of("environmental_rating_good", "environmental_rating_poor")
    env_rating = ("good" if env[-1][0].category == "environmental_rating_good" else "poor") if env else None
    before = 7.0 + _lift(3.0, counted.weight(*_REGULATORY_POSITIVE))
    value = before - _pull(before, counted.weight(*_REGULATORY_NEGATIVE))
    parts = [f"行政处罚{len(penalties)}件" + (f"（其中严重{serious}件）" if serious else ""), f"行政许可{permits}项"]
    if env_rating:
        parts.append("环保信用评价良好" if env_rating == "good" else "环保信用评价较差")
    honours = counted.n("honour")
    if honours:
        parts.append(f"表彰荣誉{honours}项")
    return value, "；".join(parts), {"open_penalties": len(penalties), "serious_penalties": serious,
                                     "permits": permits, "environmental_rating": env_rating, "honours": honours}


def _innovation(counted: _Counted) -> tuple[float, str, dict[str, Any]]:
    specialized = counted.n("honour_specialized", within_days=HONOUR_VALID_DAYS) > 0
    high_tech = counted.n("honour_high_tech", within_days=HONOUR_VALID_DAYS) > 0
    patents = counted.n("patent")
    value = 4.0 * specialized + 3.0 * high_tech + 3.0 * (1.0 - math.exp(-patents / 5.0))
    parts = [name for flag, name in ((specialized, "专精特新企业"), (high_tech, "高新技术企业")) if flag]
    parts.append(f"授权专利{patents}项")
    return value, "；".join(parts), {"specialized": specialized, "high_tech": high_tech, "patents": patents}


def _fulfilment(counted: _Counted) -> tuple[float, str, dict[str, Any]]:
    kept = counted.n("contract_fulfilment")
    defaults = counted.n("contract_default")
    utility = counted.n("utility_arrears")
    before = 7.0 + _lift(3.0, counted.weight("contract_fulfilment"))
    value = before - _pull(before, counted.weight("contract_default", "utility_arrears"))
    text = f"按时履约{kept}次；合同违约{defaults}次；水电燃气欠费{utility}次"
    return value, text, {"contract_fulfilments": kept, "contract_defaults": defaults, "utility_arrears": utility}


def _sources(records: Iterable[EnterpriseRecord], as_of: datetime) -> tuple[dict[str, Any], ...]:
    grouped: dict[str, list[EnterpriseRecord]] = defaultdict(list)
    for r in records:
        grouped[r.source].append(r)
    out = []
    for source in sorted(grouped):
        items = grouped[source]
        latest = max(as_utc(r.received_at) for r in items)
        out.append({"source": source, "records": len(items), "categories": sorted({r.category for r in items}),
                    "last_received_at": latest.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "age_days": max(0, (as_of - latest).days)})
    return tuple(out)


def compute_portrait(facts: EnterpriseFacts, records: Iterable[EnterpriseRecord], *, as_of: datetime,
                     policy: PolicyBook | None = None) -> Portrait:
    """The enterprise's portrait at `as_of`. Pure: same inputs, same portrait."""
    all_records = list(records)
    counted = _Counted(all_records, as_of=as_of, policy=policy or PolicyBook())
    parts = {
        "stability": _stability(facts, as_of),
        "tax": _tax(counted),
        "employment_social_insurance": _social_insurance(counted),
        "judicial_risk": _judicial(counted),
        "regulatory": _regulatory(counted),
        "innovation": _innovation(counted),
        "fulfilment": _fulfilment(counted),
    }
    dimensions: list[DimensionResult] = []
    details: dict[str, float] = {}
    merged: dict[str, Any] = {}
    for code, (value, text, used) in parts.items():
        name, maximum = DIMENSIONS[code]
        bounded = min(float(maximum), max(0.0, value))
        details[code] = bounded
        dimensions.append(DimensionResult(code=code, name=name, score=round(bounded), max=maximum,
                                          explanation=text, facts=used))
        merged.update(used)
    score = sum(d.score for d in dimensions)

    flags = []
    if merged["dishonest_executee"]:
        flags.append("dishonest_executee")
    if facts.status != "active":
        flags.append("registry_status_abnormal")
    if merged["tax_grade"] == "D":
        flags.append("tax_grade_d")
    if merged["serious_penalties"]:
        flags.append("serious_penalty")
    if merged["open_court_judgments"]:
        flags.append("open_court_judgment")
    grade = grade_for(score)
    for flag in flags:
        grade = _worse(grade, RISK_FLAGS[flag][1])

    tags = []
    if merged["specialized"]:
        tags.append(TAGS["specialized"])
    if merged["high_tech"]:
        tags.append(TAGS["high_tech"])
    if merged["tax_grade"] == "A":
        tags.append(TAGS["tax_a"])
    if merged["social_insurance_months"] >= 12:
        tags.append(TAGS["social_insurance_full_year"])
    if merged["years_in_business"] >= 10:
        tags.append(TAGS["decade"])
    if merged["patents"]:
        tags.append(TAGS["patents"])

    portrait_facts = {
        "industry": facts.industry, "region_code": facts.region_code,
        "years_in_business": merged["years_in_business"], "registered_capital_fen": facts.registered_capital_fen,
        "open_penalties": merged["open_penalties"], "serious_penalties": merged["serious_penalties"],
        "tax_grade": merged["tax_grade"], "dishonest_executee": merged["dishonest_executee"],
        "open_court_judgments": merged["open_court_judgments"],
        "social_insurance_months": merged["social_insurance_months"],
        "specialized": merged["specialized"], "high_tech": merged["high_tech"], "patents": merged["patents"],
    }
    return Portrait(score=score, grade=grade, dimensions=tuple(dimensions), tags=tuple(tags), risk_flags=tuple(flags),
                    facts=portrait_facts, sources=_sources(all_records, as_of), as_of=as_of, details=details)


__all__ = ["DIMENSIONS", "GRADES", "MODEL_VERSION", "RISK_FLAGS", "TAGS", "DimensionResult", "EnterpriseFacts",
           "EnterpriseRecord", "Portrait", "compute_portrait", "content_digest", "grade_for"]
