"""Property tests for the portrait engine: bounded, deterministic, a new negative never helps, a dishonest
executee is always D, every dimension explained, and the digest follows the content."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from credit.catalog import CATEGORIES
from lending.portrait import (
    DIMENSIONS,
    RISK_FLAGS,
    EnterpriseFacts,
    EnterpriseRecord,
    compute_portrait,
    grade_for,
)

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
ENTERPRISE_CATEGORIES = sorted(c.code for c in CATEGORIES.values() if "enterprise" in c.subjects)
NEGATIVE = [c for c in ENTERPRISE_CATEGORIES if CATEGORIES[c].polarity < 0]
GRADE_RANK = {"A": 0, "B": 1, "C": 2, "D": 3}

facts_strategy = st.builds(
    EnterpriseFacts,
    industry=st.sampled_from("ABCDEFGHIJKLMNOPQRST"),
    region_code=st.sampled_from(["330402", "330411", "610702"]),
    registered_on=st.dates(min_value=date(1990, 1, 1), max_value=date(2026, 10, 31)),
    registered_capital_fen=st.integers(0, 10**13),
    status=st.sampled_from(["active", "active", "active", "revoked"]),
)

records = st.builds(
    lambda i, code, severity, days, status, source: EnterpriseRecord(
        record_id=f"r{i}", category=code, polarity=CATEGORIES[code].polarity, severity=severity,
        occurred_at=AS_OF - timedelta(days=days), source=source, received_at=AS_OF - timedelta(days=days // 2),
        status=status),
    st.integers(0, 10**6), st.sampled_from(ENTERPRISE_CATEGORIES), st.sampled_from(["minor", "general", "serious"]),
    st.integers(0, 6 * 365), st.sampled_from(["active", "active", "active", "objected", "repaired", "withdrawn"]),
    st.sampled_from(["tax", "court", "market"]),
)
record_lists = st.lists(records, max_size=40, unique_by=lambda r: r.record_id)
FACTS = EnterpriseFacts(industry="C", region_code="330402", registered_on=date(2016, 3, 1),
                        registered_capital_fen=500_000_000)


def _record(i: int, code: str, *, days: int = 10, severity: str | None = None, source: str = "src") -> EnterpriseRecord:
    entry = CATEGORIES[code]
    return EnterpriseRecord(record_id=f"x{i}", category=code, polarity=entry.polarity,
                            severity=severity or entry.default_severity, occurred_at=AS_OF - timedelta(days=days),
                            source=source, received_at=AS_OF - timedelta(days=days))


def test_no_records_is_a_documented_neutral_portrait() -> None:
    portrait = compute_portrait(FACTS, [], as_of=AS_OF)
    scores = {d.code: d.score for d in portrait.dimensions}
    assert scores == {"stability": 14, "tax": 10, "employment_social_insurance": 6, "judicial_risk": 20,
                      "regulatory": 7, "innovation": 0, "fulfilment": 7}
    assert portrait.score == 64
    assert portrait.grade == "C"
    assert portrait.risk_flags == ()
    assert portrait.sources == ()
    assert portrait.facts["tax_grade"] is None


@settings(max_examples=200)
@given(facts_strategy, record_lists)
def test_bounded_and_explained(facts: EnterpriseFacts, rs: list[EnterpriseRecord]) -> None:
    portrait = compute_portrait(facts, rs, as_of=AS_OF)
    assert 0 <= portrait.score <= 100
    assert [d.code for d in portrait.dimensions] == list(DIMENSIONS)
    for d in portrait.dimensions:
        assert 0 <= d.score <= d.max == DIMENSIONS[d.code][1]
        assert d.explanation
        assert d.facts
    assert portrait.score == sum(d.score for d in portrait.dimensions)
    assert GRADE_RANK[portrait.grade] >= GRADE_RANK[grade_for(portrait.score)]
    assert set(portrait.risk_flags) <= RISK_FLAGS.keys()
    for flag in portrait.risk_flags:
        assert GRADE_RANK[portrait.grade] >= GRADE_RANK[RISK_FLAGS[flag][1]]
    assert {"industry", "region_code", "years_in_business", "open_penalties", "tax_grade",
            "dishonest_executee"} <= portrait.facts.keys()
    assert portrait.facts["tax_grade"] in (None, "A", "B", "M", "C", "D")
    for source in portrait.sources:
        assert source["age_days"] >= 0


@settings(max_examples=100)
@given(facts_strategy, record_lists, st.randoms())
def test_deterministic_and_order_independent(facts: EnterpriseFacts, rs: list[EnterpriseRecord],
                                             rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(rs)
    rnd.shuffle(shuffled)
    first, second = compute_portrait(facts, rs, as_of=AS_OF), compute_portrait(facts, shuffled, as_of=AS_OF)
    assert first == second
    assert first.digest == second.digest


@settings(max_examples=300)
@given(facts_strategy, record_lists, st.sampled_from(NEGATIVE), st.sampled_from(["minor", "general", "serious"]),
       st.integers(0, 4 * 365))
def test_a_new_negative_record_never_helps(facts: EnterpriseFacts, rs: list[EnterpriseRecord], code: str,
                                           severity: str, days: int) -> None:
    before = compute_portrait(facts, rs, as_of=AS_OF)
    after = compute_portrait(facts, [*rs, _record(10**7, code, days=days, severity=severity)], as_of=AS_OF)
    assert after.score <= before.score
    assert GRADE_RANK[after.grade] >= GRADE_RANK[before.grade]
    for b, a in zip(before.dimensions, after.dimensions, strict=True):
        assert a.score <= b.score, (a, b)
    assert set(before.risk_flags) <= set(after.risk_flags)


@settings(max_examples=200)
@given(facts_strategy, record_lists, st.integers(0, 3 * 365 - 1))
def test_a_dishonest_executee_is_always_grade_d(facts: EnterpriseFacts, rs: list[EnterpriseRecord],
                                                days: int) -> None:
    portrait = compute_portrait(facts, [*rs, _record(10**7, "dishonest_executee", days=days)], as_of=AS_OF)
    assert portrait.grade == "D"
    assert "dishonest_executee" in portrait.risk_flags
    assert portrait.facts["dishonest_executee"] is True
    assert next(d for d in portrait.dimensions if d.code == "judicial_risk").score == 0


def test_the_best_enterprise_is_a_with_tags() -> None:
    rs = [_record(1, "tax_grade_a", days=200), _record(2, "honour_specialized", days=300),
          _record(3, "honour_high_tech", days=400), *(_record(10 + i, "patent", days=100 + i) for i in range(8)),
          *(_record(30 + m, "social_insurance_paid", days=15 + 30 * m) for m in range(12)),
          *(_record(50 + i, "contract_fulfilment", days=20 + i) for i in range(6)),
          _record(60, "environmental_rating_good", days=40), _record(61, "administrative_permit", days=60)]
    portrait = compute_portrait(FACTS, rs, as_of=AS_OF)
    assert portrait.grade == "A"
    assert portrait.score >= 85
    assert {"专精特新", "高新技术企业", "纳税A级", "社保连续缴纳", "成立十年以上", "拥有专利"} == set(portrait.tags)


def test_hard_flags_cap_the_grade() -> None:
    good = [_record(1, "tax_grade_a", days=200), _record(2, "honour_specialized", days=300),
            *(_record(30 + m, "social_insurance_paid", days=15 + 30 * m) for m in range(12))]
    assert compute_portrait(FACTS, good, as_of=AS_OF).grade == "A"
    judgment = compute_portrait(FACTS, [*good, _record(9, "court_judgment", days=30, severity="minor")], as_of=AS_OF)
    assert "open_court_judgment" in judgment.risk_flags
    assert GRADE_RANK[judgment.grade] >= GRADE_RANK["B"]
    serious = compute_portrait(FACTS, [*good, _record(9, "administrative_penalty", days=30, severity="serious")],
                               as_of=AS_OF)
    assert "serious_penalty" in serious.risk_flags
    assert GRADE_RANK[serious.grade] >= GRADE_RANK["C"]
    revoked = compute_portrait(EnterpriseFacts(industry="C", region_code="330402", registered_on=date(2016, 3, 1),
                                               registered_capital_fen=0, status="revoked"), good, as_of=AS_OF)
    assert (revoked.grade, "registry_status_abnormal" in revoked.risk_flags) == ("D", True)


def test_tax_grade_is_the_latest_but_a_disclosed_d_still_weighs() -> None:
    assert compute_portrait(FACTS, [_record(1, "tax_grade_b", days=500), _record(2, "tax_grade_a", days=100)],
                            as_of=AS_OF).facts["tax_grade"] == "A"
    # A newer A does not erase a D year that is still disclosed (serious: three years).
    with_d = compute_portrait(FACTS, [_record(1, "tax_grade_d", days=500), _record(2, "tax_grade_a", days=100)],
                              as_of=AS_OF)
    assert with_d.facts["tax_grade"] == "D"
    assert "tax_grade_d" in with_d.risk_flags
    # Grades older than two years say nothing about today.
    assert compute_portrait(FACTS, [_record(1, "tax_grade_a", days=800)], as_of=AS_OF).facts["tax_grade"] is None
    # Repaired or withdrawn records do not count.
    withdrawn = EnterpriseRecord(record_id="w", category="dishonest_executee", polarity=-1, severity="serious",
                                 occurred_at=AS_OF - timedelta(days=10), source="court",
                                 received_at=AS_OF - timedelta(days=1), status="withdrawn")
    assert compute_portrait(FACTS, [withdrawn], as_of=AS_OF).facts["dishonest_executee"] is False


def test_digest_follows_the_content_not_the_moment() -> None:
    rs = [_record(1, "patent", days=100), _record(2, "administrative_permit", days=50, source="market")]
    first = compute_portrait(FACTS, rs, as_of=AS_OF)
    # An hour later nothing visible changed: same digest although the sources' ages are recomputed.
    later = compute_portrait(FACTS, rs, as_of=AS_OF + timedelta(hours=1))
    assert later.digest == first.digest
    assert later.as_of != first.as_of
    changed = compute_portrait(FACTS, [*rs, _record(3, "contract_default", days=5)], as_of=AS_OF)
    assert changed.digest != first.digest
    assert len(first.digest) == 64
    assert [s["source"] for s in first.sources] == ["market", "src"]
    assert first.sources[1]["age_days"] == 100
