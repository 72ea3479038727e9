"""Property tests for the score engine: bounded, deterministic, monotone, explainable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from credit.catalog import CATEGORIES
from credit.scoring import DIMENSION_MAX, TIERS, RecordFact, base_total, compute_score, tier_for

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

records = st.builds(
    lambda i, code, severity, days, status: RecordFact(
        record_id=f"r{i}", category=code, polarity=CATEGORIES[code].polarity, severity=severity,
        dimension=CATEGORIES[code].dimension, occurred_at=AS_OF - timedelta(days=days), status=status),
    st.integers(0, 10**6), st.sampled_from(sorted(CATEGORIES)), st.sampled_from(["minor", "general", "serious"]),
    st.integers(0, 5 * 365), st.sampled_from(["active", "active", "active", "objected", "repaired", "withdrawn"]),
)
record_lists = st.lists(records, max_size=40, unique_by=lambda r: r.record_id)


def _negative(i: int, code: str = "contract_default", days: int = 10, severity: str = "general") -> RecordFact:
    return RecordFact(record_id=f"neg{i}", category=code, polarity=-1, severity=severity,
                      dimension=CATEGORIES[code].dimension, occurred_at=AS_OF - timedelta(days=days))


def test_no_records_is_the_documented_baseline() -> None:
    score = compute_score([], as_of=AS_OF)
    assert score.total == base_total() == 650
    assert score.tier == "A"
    assert score.reasons == []


@settings(max_examples=200)
@given(record_lists)
def test_bounded(rs: list[RecordFact]) -> None:
    score = compute_score(rs, as_of=AS_OF)
    assert 0 <= score.total <= 1000
    for dimension, value in score.dimensions.items():
        assert 0 <= value <= DIMENSION_MAX[dimension]
    assert score.tier == tier_for(score.total)


@settings(max_examples=100)
@given(record_lists, st.randoms())
def test_deterministic_and_order_independent(rs: list[RecordFact], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(rs)
    rnd.shuffle(shuffled)
    assert compute_score(rs, as_of=AS_OF) == compute_score(shuffled, as_of=AS_OF)


@settings(max_examples=200)
@given(record_lists, st.sampled_from([c for c in sorted(CATEGORIES) if CATEGORIES[c].polarity < 0]),
       st.sampled_from(["minor", "general", "serious"]), st.integers(0, 4 * 365))
def test_a_new_negative_record_never_raises_the_score(rs: list[RecordFact], code: str, severity: str,
                                                     days: int) -> None:
    before = compute_score(rs, as_of=AS_OF)
    after = compute_score([*rs, _negative(10**7, code, days, severity)], as_of=AS_OF)
    assert after.total <= before.total
    for dimension in DIMENSION_MAX:
        assert after.dimensions[dimension] <= before.dimensions[dimension]


@settings(max_examples=200)
@given(record_lists)
def test_removing_a_negative_record_never_lowers_the_score(rs: list[RecordFact]) -> None:
    negatives = [r for r in rs if r.polarity < 0]
    if not negatives:
        return
    without = [r for r in rs if r is not negatives[0]]
    assert compute_score(without, as_of=AS_OF).total >= compute_score(rs, as_of=AS_OF).total


@settings(max_examples=100)
@given(record_lists)
def test_a_new_positive_record_never_lowers_the_score(rs: list[RecordFact]) -> None:
    extra = RecordFact(record_id="pos-new", category="volunteer_service", polarity=1, severity="minor",
                       dimension="contribution", occurred_at=AS_OF - timedelta(days=3))
    assert compute_score([*rs, extra], as_of=AS_OF).total >= compute_score(rs, as_of=AS_OF).total


@settings(max_examples=200)
@given(record_lists)
def test_explained_reasons_account_for_the_change(rs: list[RecordFact]) -> None:
    score = compute_score(rs, as_of=AS_OF)
    assert len(score.reasons) <= 5
    impacts = [abs(r.impact) for r in score.reasons]
    assert impacts == sorted(impacts, reverse=True)
    for reason in score.reasons:
        assert reason.text  # Chinese text for the citizen
        assert reason.code.startswith(("POS_", "NEG_"))
        assert (reason.impact > 0) == reason.code.startswith("POS_")
    if score.counted_records and abs(score.total - base_total()) > 10:
        assert score.reasons


def test_repaired_withdrawn_and_expired_records_do_not_count() -> None:
    base = compute_score([], as_of=AS_OF).total
    repaired = _negative(1)
    assert compute_score([RecordFact(**{**_as_dict(repaired), "status": "repaired"})], as_of=AS_OF).total == base
    assert compute_score([RecordFact(**{**_as_dict(repaired), "status": "withdrawn"})], as_of=AS_OF).total == base
    # a general negative stops counting after its one-year display period
    old = _negative(2, days=400)
    assert compute_score([old], as_of=AS_OF).total == base
    assert compute_score([_negative(3, days=300)], as_of=AS_OF).total < base


def test_objected_records_count_but_are_flagged() -> None:
    objected = RecordFact(**{**_as_dict(_negative(1)), "status": "objected"})
    score = compute_score([objected], as_of=AS_OF)
    assert score.objected_records == 1
    assert score.total < base_total()


def test_dishonest_executee_weighs_heavily_and_is_explained() -> None:
    score = compute_score([_negative(1, "dishonest_executee", days=30, severity="serious")], as_of=AS_OF)
    assert score.total < 600
    assert score.reasons[0].code == "NEG_DISHONEST_EXECUTEE"
    assert "失信被执行人" in score.reasons[0].text
    assert score.reasons[0].impact < -80


def test_tier_cut_offs() -> None:
    assert [tier_for(t) for t, in [(1000,), (900,), (899,), (800,), (650,), (649,), (500,), (499,), (0,)]] == [
        "AAA", "AAA", "AA", "AA", "A", "B", "B", "C", "C"]
    assert TIERS[0] == ("AAA", 900)


def _as_dict(r: RecordFact) -> dict[str, object]:
    return {f: getattr(r, f) for f in RecordFact.__slots__}


def test_threshold_checks_reveal_no_more_than_the_consent() -> None:
    from credit.queries import comparable_score

    assert comparable_score(733, ("score",)) == 733
    assert comparable_score(733, ("tier", "score_band")) == 700
    assert comparable_score(733, ("tier",)) == 650  # tier A's floor
    assert comparable_score(1000, ("score_band",)) == 950
