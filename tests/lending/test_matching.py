"""Matching tables: which products fit which demands and why, the main reason each other product does
not, the guarantee compatibility table, the hard stop, and the ranking."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lending.matching import (
    GUARANTEE_FITS,
    GUARANTEE_KINDS,
    DemandTerms,
    EnterpriseProfile,
    ProductRules,
    failures,
    match,
    percent,
    yuan,
)

WAN = 10_000 * 100  # 1万元 in fen


def product(pid: str, **rules: object) -> ProductRules:
    base = ProductRules(id=pid, bank_client_id="bank_a", bank_name="嘉兴银行", name=f"产品{pid}",
                        amount_min_fen=10 * WAN, amount_max_fen=300 * WAN, term_min_months=6, term_max_months=36,
                        rate_min_bp=385, rate_max_bp=600, guarantee_kind="credit")
    return replace(base, **rules)  # type: ignore[arg-type]


DEMAND = DemandTerms(amount_fen=100 * WAN, term_months=12, guarantee_offered="credit", max_rate_bp=500)
ENTERPRISE = EnterpriseProfile(grade="B", score=72, industry="C", region_code="330402", years_in_business=5.2,
                               open_penalties=1, tax_grade="B", risk_flags=(), first_loan=True)

# (product rules, demand changes, enterprise changes, main reason code or None when it fits)
TABLE: list[tuple[dict[str, object], dict[str, object], dict[str, object], str | None]] = [
    ({}, {}, {}, None),
    ({"amount_min_fen": 200 * WAN}, {}, {}, "amount_below_min"),
    ({"amount_max_fen": 50 * WAN}, {}, {}, "amount_above_max"),
    ({}, {"amount_fen": 10 * WAN}, {}, None),  # inclusive bounds
    ({}, {"amount_fen": 300 * WAN}, {}, None),
    ({"term_min_months": 24}, {}, {}, "term_below_min"),
    ({"term_max_months": 6}, {}, {}, "term_above_max"),
    ({"rate_min_bp": 520}, {}, {}, "rate_above_max"),
    ({"rate_min_bp": 520}, {"max_rate_bp": None}, {}, None),  # no maximum given: any rate
    ({"rate_min_bp": 500}, {}, {}, None),
    ({"min_grade": "A"}, {}, {}, "grade_below_min"),
    ({"min_grade": "B"}, {}, {}, None),
    ({"min_grade": "C"}, {}, {}, None),
    ({"min_score": 80}, {}, {}, "score_below_min"),
    ({"min_score": 72}, {}, {}, None),
    ({"industries": ("F", "G")}, {}, {}, "industry_not_allowed"),
    ({"industries": ("C", "F")}, {}, {}, None),
    ({"regions": ("3301",)}, {}, {}, "region_not_allowed"),
    ({"regions": ("3301", "3304")}, {}, {}, None),
    ({"min_years_in_business": 6}, {}, {}, "years_below_min"),
    ({"min_years_in_business": 5}, {}, {}, None),
    ({"max_open_penalties": 0}, {}, {}, "too_many_open_penalties"),
    ({"max_open_penalties": 1}, {}, {}, None),
    ({"tax_grade_floor": "A"}, {}, {}, "tax_grade_below_floor"),
    ({"tax_grade_floor": "B"}, {}, {}, None),
    ({"tax_grade_floor": "M"}, {}, {}, None),
    ({"tax_grade_floor": "B"}, {}, {"tax_grade": "M"}, "tax_grade_below_floor"),
    ({"tax_grade_floor": "C"}, {}, {"tax_grade": None}, "tax_grade_missing"),
    ({"guarantee_kind": "collateral"}, {}, {}, "guarantee_incompatible"),
    ({"guarantee_kind": "collateral"}, {"guarantee_offered": "collateral"}, {}, None),
    ({"guarantee_kind": "credit"}, {"guarantee_offered": "collateral"}, {}, None),
    ({"guarantee_kind": "guarantee"}, {"guarantee_offered": "xinyidan"}, {}, None),
    ({"guarantee_kind": "xinyidan"}, {"guarantee_offered": "guarantee"}, {}, "guarantee_incompatible"),
    ({"guarantee_kind": "pledge"}, {"guarantee_offered": "collateral"}, {}, "guarantee_incompatible"),
    # several failures: the main reason is the first in priority order
    ({"guarantee_kind": "pledge", "amount_max_fen": 50 * WAN, "min_grade": "A"}, {}, {}, "guarantee_incompatible"),
    ({"amount_max_fen": 50 * WAN, "min_grade": "A", "industries": ("F",)}, {}, {}, "amount_above_max"),
    ({"min_grade": "A", "industries": ("F",)}, {}, {}, "grade_below_min"),
    # hard risk flags beat everything, even a product the enterprise would otherwise fit
    ({}, {}, {"risk_flags": ("dishonest_executee",)}, "dishonest_executee"),
    ({}, {}, {"risk_flags": ("major_tax_violation",)}, "major_tax_violation"),
    ({}, {}, {"risk_flags": ("major_tax_violation", "dishonest_executee")}, "dishonest_executee"),
    ({}, {}, {"risk_flags": ("registry_status_abnormal",)}, "registry_status_abnormal"),
    ({}, {}, {"risk_flags": ("tax_grade_d",)}, "tax_grade_d"),
    ({}, {}, {"risk_flags": ("open_court_judgment",)}, None),  # a soft flag does not stop matching
    ({"min_grade": "A"}, {}, {"risk_flags": ("open_court_judgment",)}, "grade_below_min"),
]


@pytest.mark.parametrize(("rules", "demand_changes", "enterprise_changes", "main"), TABLE)
def test_matching_table(rules: dict[str, object], demand_changes: dict[str, object],
                        enterprise_changes: dict[str, object], main: str | None) -> None:
    demand = replace(DEMAND, **demand_changes)  # type: ignore[arg-type]
    enterprise = replace(ENTERPRISE, **enterprise_changes)  # type: ignore[arg-type]
    result = match(demand=demand, enterprise=enterprise, products=[product("p1", **rules)])
    if main is None:
        assert [m.product.id for m in result.matches] == ["p1"]
        assert result.excluded == ()
        assert result.matches[0].reasons, "a match always says why"
    else:
        assert result.matches == ()
        (excluded,) = result.excluded
        assert excluded.main_reason.code == main
        assert excluded.reasons[0] == excluded.main_reason
        assert excluded.main_reason.text


@pytest.mark.parametrize("offered", sorted(GUARANTEE_KINDS))
@pytest.mark.parametrize("kind", sorted(GUARANTEE_KINDS))
def test_guarantee_compatibility_table(offered: str, kind: str) -> None:
    expected = {
        "credit": {"credit"},
        "guarantee": {"guarantee", "credit"},
        "xinyidan": {"xinyidan", "guarantee", "credit"},
        "xinyixian": {"xinyixian", "credit"},
        "pledge": {"pledge", "credit"},
        "collateral": {"collateral", "credit"},
    }
    assert GUARANTEE_FITS[offered] == expected[offered]
    codes = [r.code for r in failures(product("p", guarantee_kind=kind), replace(DEMAND, guarantee_offered=offered),
                                      ENTERPRISE)]
    assert ("guarantee_incompatible" not in codes) == (kind in expected[offered])


def test_all_failures_are_listed_in_priority_order() -> None:
    p = product("p", amount_max_fen=50 * WAN, term_max_months=6, rate_min_bp=900, min_grade="A", min_score=90,
                industries=("F",), regions=("11",), min_years_in_business=10, max_open_penalties=0,
                tax_grade_floor="A", guarantee_kind="pledge")
    codes = [r.code for r in failures(p, DEMAND, replace(ENTERPRISE, risk_flags=("dishonest_executee",)))]
    assert codes == ["dishonest_executee", "guarantee_incompatible", "amount_above_max", "term_above_max",
                     "rate_above_max", "grade_below_min", "score_below_min", "industry_not_allowed",
                     "region_not_allowed", "years_below_min", "too_many_open_penalties", "tax_grade_below_floor"]


def test_a_dishonest_executee_is_never_matched() -> None:
    lenient = [product(f"p{i}", guarantee_kind=kind, amount_min_fen=1, amount_max_fen=10**12, term_min_months=1,
                       term_max_months=360, rate_min_bp=1, first_loan_friendly=True)
               for i, kind in enumerate(sorted(GUARANTEE_KINDS))]
    for offered in GUARANTEE_KINDS:
        for grade in ("A", "B", "C", "D"):
            enterprise = replace(ENTERPRISE, grade=grade, score=100, risk_flags=("dishonest_executee",))
            result = match(demand=replace(DEMAND, guarantee_offered=offered, max_rate_bp=None),
                           enterprise=enterprise, products=lenient)
            assert result.matches == ()
            assert {e.main_reason.code for e in result.excluded} == {"dishonest_executee"}
            assert result.hard_stop is not None
            assert result.hard_stop.code == "dishonest_executee"
            assert "失信被执行人" in result.hard_stop.text


def test_ranking_prefers_low_rate_credit_first_loan_friendly_and_headroom() -> None:
    products = [
        product("cheap", rate_min_bp=330),
        product("dear", rate_min_bp=480),
        product("friendly", rate_min_bp=480, first_loan_friendly=True),
        product("tight", rate_min_bp=330, amount_max_fen=100 * WAN),
        product("secured", rate_min_bp=330, guarantee_kind="collateral"),
    ]
    demand = replace(DEMAND, guarantee_offered="collateral")
    result = match(demand=demand, enterprise=ENTERPRISE, products=products)
    order = [m.product.id for m in result.matches]
    # for a first loan, first-loan friendliness (+10) outweighs 1.5 points of rate (-5)
    assert order[:2] == ["friendly", "cheap"]
    assert order.index("friendly") < order.index("dear")
    assert order.index("cheap") < order.index("tight")  # same rate, more headroom
    assert order.index("cheap") < order.index("secured")  # same rate, no security needed
    assert [m.rank for m in result.matches] == [1, 2, 3, 4, 5]
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= s <= 100 for s in scores)
    cheap = result.matches[1]
    assert {r.code for r in cheap.reasons} >= {"unsecured", "rate_within_max", "amount_in_range", "term_in_range",
                                                "amount_headroom"}
    friendly = next(m for m in result.matches if m.product.id == "friendly")
    assert "first_loan_friendly" in {r.code for r in friendly.reasons}

    # not a first loan: the first-loan bonus no longer applies, so the tie goes to the lower rate
    again = match(demand=demand, enterprise=replace(ENTERPRISE, first_loan=False), products=products)
    friendly_again = next(m for m in again.matches if m.product.id == "friendly")
    assert friendly_again.score == friendly.score - 10
    assert "first_loan_friendly" not in {r.code for r in friendly_again.reasons}


def test_order_is_deterministic_for_ties() -> None:
    products = [product("b"), product("a"), product("c")]
    first = [m.product.id for m in match(demand=DEMAND, enterprise=ENTERPRISE, products=products).matches]
    second = [m.product.id for m in match(demand=DEMAND, enterprise=ENTERPRISE, products=products[::-1]).matches]
    assert first == second == ["a", "b", "c"]


def test_several_demands_against_one_catalog() -> None:
    catalog = [
        product("credit_small", amount_max_fen=100 * WAN, rate_min_bp=395, min_grade="B", first_loan_friendly=True),
        product("credit_big", amount_min_fen=100 * WAN, amount_max_fen=1000 * WAN, rate_min_bp=365, min_grade="A"),
        product("mortgage", guarantee_kind="collateral", amount_max_fen=2000 * WAN, term_max_months=60,
                rate_min_bp=345),
        product("xyd", guarantee_kind="xinyidan", amount_max_fen=500 * WAN, rate_min_bp=375,
                industries=("C", "I")),
    ]
    cases = [
        # (demand, enterprise, matched ids in rank order, {excluded id: main reason})
        (DEMAND, ENTERPRISE, ["credit_small"],
         {"credit_big": "grade_below_min", "mortgage": "guarantee_incompatible", "xyd": "guarantee_incompatible"}),
        (replace(DEMAND, guarantee_offered="collateral", term_months=48), ENTERPRISE, ["mortgage"],
         {"credit_small": "term_above_max", "credit_big": "term_above_max", "xyd": "guarantee_incompatible"}),
        (replace(DEMAND, guarantee_offered="xinyidan", amount_fen=200 * WAN), replace(ENTERPRISE, grade="A"),
         ["credit_big", "xyd"], {"credit_small": "amount_above_max", "mortgage": "guarantee_incompatible"}),
        (replace(DEMAND, guarantee_offered="xinyidan", amount_fen=200 * WAN),
         replace(ENTERPRISE, grade="A", industry="F"), ["credit_big"],
         {"credit_small": "amount_above_max", "mortgage": "guarantee_incompatible", "xyd": "industry_not_allowed"}),
    ]
    for demand, enterprise, matched, excluded in cases:
        result = match(demand=demand, enterprise=enterprise, products=catalog)
        assert [m.product.id for m in result.matches] == matched
        assert {e.product.id: e.main_reason.code for e in result.excluded} == excluded


def test_texts() -> None:
    assert yuan(500 * WAN) == "500万元"
    assert yuan(123_456) == "1,234.56元"
    assert yuan(5_000_00) == "5,000元"
    assert percent(435) == "4.35%"
    (excluded,) = match(demand=DEMAND, enterprise=ENTERPRISE, products=[product("p", amount_max_fen=50 * WAN)]).excluded
    assert excluded.main_reason.text == "申请金额100万元高于产品最高额度50万元"
