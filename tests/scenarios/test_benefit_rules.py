"""Benefit rules without a database: period keys on the city's calendar, eligibility and its reasons,
rule validation, and the catalog defaults."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import Unprocessable
from scenarios.benefits import code_ttl, evaluate, period_key, period_keys
from scenarios.catalog import DEFAULT_BENEFITS, DEFAULT_SCENARIOS, TIER_NAMES, BenefitRule, validate_rule

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in the city


def _rule(**changes: Any) -> BenefitRule:
    base = BenefitRule(
        pk=1, id="bnf_test", scenario="travel", name="测试", description="", kind="percent_discount", value=20,
        min_tier=None, min_score=None, quota_per_period=0, period="day", merchants=(),
        valid_from=NOW - timedelta(days=10), valid_until=None, status="active", created_at=NOW, updated_at=NOW)
    return replace(base, **changes)


# ---------------------------------------------------------------- period keys


@pytest.mark.parametrize(("at", "period", "key"), [
    (datetime(2026, 11, 23, 4, 0, tzinfo=UTC), "day", "2026-11-23"),
    (datetime(2026, 11, 22, 15, 59, 59, tzinfo=UTC), "day", "2026-11-22"),  # 23:59:59 in the city
    (datetime(2026, 11, 22, 16, 0, tzinfo=UTC), "day", "2026-11-23"),  # city midnight is 16:00 UTC
    (datetime(2026, 11, 23, 4, 0, tzinfo=UTC), "week", "2026-W48"),
    (datetime(2026, 11, 22, 15, 59, tzinfo=UTC), "week", "2026-W47"),  # Sunday night in the city
    (datetime(2026, 11, 22, 16, 0, tzinfo=UTC), "week", "2026-W48"),  # Monday 00:00 in the city
    (datetime(2027, 1, 1, 4, 0, tzinfo=UTC), "week", "2026-W53"),  # ISO year differs from the calendar year
    (datetime(2026, 1, 5, 4, 0, tzinfo=UTC), "week", "2026-W02"),
    (datetime(2026, 11, 30, 16, 0, tzinfo=UTC), "month", "2026-12"),
    (datetime(2026, 12, 31, 15, 59, tzinfo=UTC), "year", "2026"),
    (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "year", "2027"),
    (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "once", "once"),
])
def test_period_keys_follow_the_city_calendar(at: datetime, period: str, key: str) -> None:
    assert period_key(period, at) == key


def test_a_naive_time_is_taken_as_utc_and_unknown_periods_are_refused() -> None:
    assert period_key("day", datetime(2026, 11, 22, 16, 0)) == "2026-11-23"  # noqa: DTZ001
    with pytest.raises(ValueError, match="period"):
        period_key("fortnight", NOW)


# Hypothesis takes naive bounds and attaches `timezones` to what it draws.
_BOUNDS = {"min_value": datetime(2000, 1, 1), "max_value": datetime(2100, 1, 1)}  # noqa: DTZ001


@given(st.datetimes(**_BOUNDS, timezones=st.just(UTC)))
def test_period_keys_nest(at: datetime) -> None:
    keys = period_keys(at)
    assert keys["day"].startswith(keys["month"])
    assert keys["month"].startswith(keys["year"])
    assert len(keys["day"]) == 10
    assert len(keys["week"]) == 8
    assert keys["once"] == "once"
    # The same key for every instant of the same city day.
    day_start = datetime.fromisoformat(keys["day"] + "T00:00:00+08:00")
    assert period_key("day", day_start) == period_key("day", day_start + timedelta(hours=23, minutes=59)) == keys["day"]


# ---------------------------------------------------------------- eligibility


def test_a_rule_without_thresholds_applies_with_unlimited_quota() -> None:
    verdict = evaluate(_rule(), tier="C", total=300, used=99, now=NOW)
    assert (verdict.applies, verdict.code, verdict.reason, verdict.remaining) == (True, None, None, None)


@pytest.mark.parametrize(("tier", "min_tier", "applies"), [
    ("AAA", "AA", True), ("AA", "AA", True), ("A", "AA", False), ("B", "A", False), ("C", "B", False),
    ("C", "C", True), ("A", "AAA", False),
])
def test_tier_floor(tier: str, min_tier: str, applies: bool) -> None:
    verdict = evaluate(_rule(min_tier=min_tier), tier=tier, total=700, used=0, now=NOW)
    assert verdict.applies is applies
    if not applies:
        assert verdict.code == "tier_too_low"
        assert verdict.reason == f"需要{min_tier}级，您目前是{tier}级"


def test_score_floor() -> None:
    assert evaluate(_rule(min_score=750), tier="AA", total=750, used=0, now=NOW).applies
    below = evaluate(_rule(min_score=750), tier="AA", total=749, used=0, now=NOW)
    assert (below.applies, below.code, below.reason) == (False, "score_too_low", "需要信用分750分，您目前是749分")


def test_quota_counts_down_and_then_stops() -> None:
    rule = _rule(quota_per_period=3, period="week")
    assert [evaluate(rule, tier="A", total=700, used=u, now=NOW).remaining for u in range(5)] == [3, 2, 1, 0, 0]
    spent = evaluate(rule, tier="A", total=700, used=3, now=NOW)
    assert (spent.applies, spent.code, spent.reason) == (False, "quota_used", "本周可用3次，已用完")


def test_validity_window_in_city_time() -> None:
    later = evaluate(_rule(valid_from=datetime(2026, 12, 1, 16, 0, tzinfo=UTC)), tier="A", total=700, used=0,
                     now=NOW)
    assert (later.applies, later.code, later.reason) == (False, "not_yet_valid", "2026-12-02 00:00起可用")
    ended = evaluate(_rule(valid_until=NOW), tier="A", total=700, used=0, now=NOW)  # the end is exclusive
    assert (ended.code, ended.reason) == ("expired", "已于2026-11-23 12:00结束")
    assert evaluate(_rule(valid_from=NOW, valid_until=NOW + timedelta(seconds=1)), tier="A", total=700, used=0,
                    now=NOW).applies


def test_a_date_at_the_end_of_time_still_gets_a_reason() -> None:
    # Refused by validation now, but a reason is text for a citizen: it must never raise (it did: a 500).
    far = evaluate(_rule(valid_from=datetime(9999, 12, 31, 20, tzinfo=UTC)), tier="A", total=700, used=0, now=NOW)
    assert (far.applies, far.code, far.reason) == (False, "not_yet_valid", "9999-12-31 20:00 UTC起可用")


@pytest.mark.parametrize(("configured", "ttl"), [(60, 60), (30, 30), (600, 60), (0, 1), (-1, 1)])
def test_codes_live_one_to_sixty_seconds(configured: int, ttl: int) -> None:
    assert code_ttl(configured) == ttl


def test_reasons_come_in_the_order_a_citizen_can_act_on() -> None:
    rule = _rule(min_tier="AA", min_score=900, quota_per_period=1, valid_until=NOW - timedelta(days=1))
    assert evaluate(rule, tier="A", total=650, used=1, now=NOW).code == "expired"
    rule = replace(rule, valid_until=None)
    assert evaluate(rule, tier="A", total=650, used=1, now=NOW).code == "tier_too_low"
    assert evaluate(rule, tier="AA", total=850, used=1, now=NOW).code == "score_too_low"
    assert evaluate(rule, tier="AAA", total=950, used=1, now=NOW).code == "quota_used"
    assert evaluate(rule, tier="AAA", total=950, used=0, now=NOW).applies


def test_participating_merchants() -> None:
    assert _rule().serves("merchant_a")
    assert _rule(merchants=("merchant_a",)).serves("merchant_a")
    assert not _rule(merchants=("merchant_a",)).serves("merchant_b")


# ---------------------------------------------------------------- validation and defaults


def _valid(**changes: Any) -> dict[str, Any]:
    return {"kind": "percent_discount", "value": 20, "name": "x", "min_tier": None, "min_score": None,
            "quota_per_period": 0, "period": "day", "status": "active", "valid_from": NOW, "valid_until": None,
            **changes}


@pytest.mark.parametrize("changes", [
    {"value": 0}, {"value": 101}, {"kind": "fixed_discount", "value": 0}, {"kind": "extra_quota", "value": 5000},
    {"kind": "free_lunch"}, {"min_tier": "D"}, {"min_score": 1001}, {"quota_per_period": -1},
    {"period": "fortnight"}, {"status": "deleted"}, {"valid_until": NOW}, {"valid_from": NOW.replace(tzinfo=None)},
    {"name": "  "}, {"valid_from": datetime(1999, 12, 31, tzinfo=UTC)},
    {"valid_from": datetime(9999, 12, 31, 20, tzinfo=UTC)}, {"valid_until": datetime(2200, 1, 2, tzinfo=UTC)},
])
def test_invalid_rules_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(Unprocessable) as caught:
        validate_rule(_valid(**changes))
    assert caught.value.code == "invalid_benefit_rule"


def test_valid_rules_pass() -> None:
    validate_rule(_valid())
    validate_rule(_valid(kind="pay_later_limit", value=500_000, min_tier="AAA", quota_per_period=4, period="month",
                         valid_until=NOW + timedelta(days=30)))


def test_the_defaults_cover_the_six_scenarios_with_valid_rules() -> None:
    assert [s.code for s in DEFAULT_SCENARIOS] == ["travel", "transit", "rental", "medical", "lodging", "reading"]
    assert [s.name for s in DEFAULT_SCENARIOS] == ["信易游", "信易行", "信易租", "信易医", "信易住", "信易阅"]
    for spec in DEFAULT_BENEFITS:
        assert spec.scenario in {s.code for s in DEFAULT_SCENARIOS}
        assert len(spec.id) <= 32
        assert spec.id.startswith("bnf_")
        assert spec.min_tier is None or spec.min_tier in TIER_NAMES
        validate_rule(_valid(kind=spec.kind, value=spec.value, min_tier=spec.min_tier, min_score=spec.min_score,
                             quota_per_period=spec.quota_per_period, period=spec.period))
    assert {s.scenario for s in DEFAULT_BENEFITS} == {s.code for s in DEFAULT_SCENARIOS}
    assert len({s.id for s in DEFAULT_BENEFITS}) == len(DEFAULT_BENEFITS)
