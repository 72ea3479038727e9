"""Matching a financing demand with the loan products of the 金融超市 (pure: no I/O, no clock).

`match()` takes the demand's terms, what the enterprise's portrait says about it, and the active products,
and returns the products that fit — ranked, each with the reasons it fits — and every other product with
the main reason it does not (plus all its other failures). Reasons carry a stable `code` and Chinese text.

Eligibility, checked in this order (the first failure is the main reason):

1. hard risk flags: an enterprise with a hard risk flag (失信被执行人 above all) is never matched;
2. guarantee compatibility (`GUARANTEE_FITS` below);
3. amount within the product's range, then term within its range;
4. the product's lowest rate ≤ the demand's maximum rate (when the demand gives one);
5. portrait grade and score floors;
6. industry (GB/T 4754 section letters) and region (code prefixes), when the product restricts them;
7. years in business, open administrative penalties, tax credit grade floor.

Guarantee compatibility — what the enterprise offers decides which kinds of product it can take. Every
demand fits pure credit products (信用贷: security is never required there); beyond that a demand fits
products asking for exactly the security it offers, and 信易担 (a policy financing guarantee) is also a
third-party guarantee, so it fits guarantee products too:

    offered      fits products of kind
    credit       credit
    guarantee    guarantee, credit
    xinyidan     xinyidan, guarantee, credit
    xinyixian    xinyixian, credit
    pledge       pledge, credit
    collateral   collateral, credit

Ranking — a fit score of 0–100 (higher is better), from parts that are each explained by a reason:
40 for fitting at all; up to 30 for a low rate (30 at ≤ 3.00 %, 0 at ≥ 12.00 %, linear between); 10 for
a pure credit product (5 for 信易担/信易险, whose guarantee or insurance is subsidised); 10 for a
first-loan-friendly product when this would be the enterprise's first loan (首贷); up to 10 for amount
headroom (10 when the product's maximum is at least twice the amount asked). Ties go to the lower rate,
then the larger maximum, then the product id, so the order is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

GUARANTEE_KINDS: dict[str, str] = {
    "credit": "纯信用",
    "guarantee": "第三方保证担保",
    "collateral": "抵押",
    "pledge": "质押",
    "xinyidan": "信易担（政策性融资担保）",
    "xinyixian": "信易险（信用保证保险）",
}

GUARANTEE_FITS: dict[str, frozenset[str]] = {
    "credit": frozenset({"credit"}),
    "guarantee": frozenset({"guarantee", "credit"}),
    "xinyidan": frozenset({"xinyidan", "guarantee", "credit"}),
    "xinyixian": frozenset({"xinyixian", "credit"}),
    "pledge": frozenset({"pledge", "credit"}),
    "collateral": frozenset({"collateral", "credit"}),
}
"""Offered security → the product guarantee kinds a demand offering it fits (see the module docstring)."""

GRADES: tuple[str, ...] = ("A", "B", "C", "D")
"""Portrait grades, best first."""
TAX_GRADES: tuple[str, ...] = ("A", "B", "M", "C", "D")
"""纳税信用等级, best first (M: newly established or without a full assessment year)."""

INDUSTRY_SECTIONS: dict[str, str] = {
    "A": "农、林、牧、渔业", "B": "采矿业", "C": "制造业", "D": "电力、热力、燃气及水生产和供应业",
    "E": "建筑业", "F": "批发和零售业", "G": "交通运输、仓储和邮政业", "H": "住宿和餐饮业",
    "I": "信息传输、软件和信息技术服务业", "J": "金融业", "K": "房地产业", "L": "租赁和商务服务业",
    "M": "科学研究和技术服务业", "N": "水利、环境和公共设施管理业", "O": "居民服务、修理和其他服务业",
    "P": "教育", "Q": "卫生和社会工作", "R": "文化、体育和娱乐业", "S": "公共管理、社会保障和社会组织",
    "T": "国际组织",
}
"""GB/T 4754-2017 门类 (section letters)."""

HARD_RISK_FLAGS: dict[str, str] = {
    "dishonest_executee": "企业为失信被执行人，依规不予匹配贷款产品",
    "registry_status_abnormal": "企业登记状态异常（吊销、注销或经营异常），暂不予匹配贷款产品",
    "tax_grade_d": "企业纳税信用为D级，依规限制融资授信，不予匹配贷款产品",
    "major_tax_violation": "企业列入重大税收违法失信主体名单，不予匹配贷款产品",
}
"""Risk flags (portrait codes) that stop matching altogether, with the text shown to the enterprise. The
portrait's other flags (`serious_penalty`, `open_court_judgment`) are soft here: they already cap the
portrait grade, and products set grade floors."""

HARD_STOP = "dishonest_executee"
"""The flag no product, rule or ranking can ever override."""

_RATE_BEST_BP = 300
_RATE_WORST_BP = 1200


# ---------------------------------------------------------------- inputs and outputs


@dataclass(frozen=True, slots=True)
class ProductRules:
    """A loan product as matching sees it."""

    id: str
    bank_client_id: str
    bank_name: str
    name: str
    amount_min_fen: int
    amount_max_fen: int
    term_min_months: int
    term_max_months: int
    rate_min_bp: int
    rate_max_bp: int
    guarantee_kind: str
    min_grade: str | None = None
    min_score: int | None = None
    industries: tuple[str, ...] = ()  # empty: every industry
    regions: tuple[str, ...] = ()  # region code prefixes; empty: every region
    min_years_in_business: int = 0
    max_open_penalties: int | None = None
    tax_grade_floor: str | None = None
    first_loan_friendly: bool = False


@dataclass(frozen=True, slots=True)
class DemandTerms:
    amount_fen: int
    term_months: int
    guarantee_offered: str
    max_rate_bp: int | None = None


@dataclass(frozen=True, slots=True)
class EnterpriseProfile:
    """What the enterprise's portrait says, plus whether this would be its first loan here."""

    grade: str
    score: int
    industry: str
    region_code: str
    years_in_business: float
    open_penalties: int
    tax_grade: str | None
    risk_flags: tuple[str, ...] = ()
    first_loan: bool = True


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class Match:
    product: ProductRules
    rank: int  # 1 = best
    score: int  # fit score 0–100
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Exclusion:
    product: ProductRules
    main_reason: Reason
    reasons: tuple[Reason, ...]  # every failed rule, the main one first


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: tuple[Match, ...]
    excluded: tuple[Exclusion, ...]
    hard_stop: Reason | None = None  # set when a hard risk flag excluded every product


# ---------------------------------------------------------------- text helpers


def yuan(fen: int) -> str:
    """`5_000_000_00` → `500万元`; `123_456` → `1,234.56元`."""
    whole, cents = divmod(fen, 100)
    if cents:
        return f"{whole:,}.{cents:02d}元"
    if whole and whole % 10_000 == 0:
        return f"{whole // 10_000:,}万元"
    return f"{whole:,}元"


def percent(bp: int) -> str:
    """Basis points as an annual rate: `435` → `4.35%`."""
    return f"{bp / 100:.2f}%"


def _years(value: float) -> str:
    return f"{value:g}"


def _rank(order: Sequence[str], value: str | None) -> int:
    """Position in a best-first order (lower is better); unknown values rank below everything."""
    return order.index(value) if value in order else len(order)


def hard_flags(flags: Iterable[str]) -> list[str]:
    """The hard risk flags among `flags`, the hard stop first."""
    found = [f for f in dict.fromkeys(flags) if f in HARD_RISK_FLAGS]
    return sorted(found, key=lambda f: (f != HARD_STOP, list(HARD_RISK_FLAGS).index(f)))


# ---------------------------------------------------------------- rules


def failures(product: ProductRules, demand: DemandTerms, enterprise: EnterpriseProfile) -> list[Reason]:
    """Every rule of `product` this demand and enterprise fail, in priority order (empty: it fits)."""
    out = [Reason(flag, HARD_RISK_FLAGS[flag]) for flag in hard_flags(enterprise.risk_flags)]
    fits = GUARANTEE_FITS.get(demand.guarantee_offered, frozenset())
    if product.guarantee_kind not in fits:
        out.append(Reason("guarantee_incompatible",
                          f"产品要求{GUARANTEE_KINDS.get(product.guarantee_kind, product.guarantee_kind)}，"
                          f"您提供的是{GUARANTEE_KINDS.get(demand.guarantee_offered, demand.guarantee_offered)}"))
    if demand.amount_fen < product.amount_min_fen:
        out.append(Reason("amount_below_min",
                          f"申请金额{yuan(demand.amount_fen)}低于产品最低额度{yuan(product.amount_min_fen)}"))
    elif demand.amount_fen > product.amount_max_fen:
        out.append(Reason("amount_above_max",
                          f"申请金额{yuan(demand.amount_fen)}高于产品最高额度{yuan(product.amount_max_fen)}"))
    if demand.term_months < product.term_min_months:
        out.append(Reason("term_below_min",
                          f"申请期限{demand.term_months}个月短于产品最短期限{product.term_min_months}个月"))
    elif demand.term_months > product.term_max_months:
        out.append(Reason("term_above_max",
                          f"申请期限{demand.term_months}个月长于产品最长期限{product.term_max_months}个月"))
    if demand.max_rate_bp is not None and product.rate_min_bp > demand.max_rate_bp:
        out.append(Reason("rate_above_max",
                          f"产品最低年利率{percent(product.rate_min_bp)}高于您可接受的{percent(demand.max_rate_bp)}"))
    if product.min_grade is not None and _rank(GRADES, enterprise.grade) > _rank(GRADES, product.min_grade):
        out.append(Reason("grade_below_min",
                          f"企业画像等级{enterprise.grade}低于产品要求的{product.min_grade}级"))
    if product.min_score is not None and enterprise.score < product.min_score:
        out.append(Reason("score_below_min", f"企业画像评分{enterprise.score}低于产品要求的{product.min_score}分"))
    if product.industries and enterprise.industry not in product.industries:
        allowed = "、".join(INDUSTRY_SECTIONS.get(s, s) for s in product.industries)
        out.append(Reason("industry_not_allowed",
                          f"产品不支持所属行业（{INDUSTRY_SECTIONS.get(enterprise.industry, enterprise.industry)}），"
                          f"仅支持{allowed}"))
    if product.regions and not any(enterprise.region_code.startswith(p) for p in product.regions):
        out.append(Reason("region_not_allowed",
                          f"企业所在地区（{enterprise.region_code}）不在产品服务区域（{'、'.join(product.regions)}）内"))
    if enterprise.years_in_business < product.min_years_in_business:
        out.append(Reason("years_below_min",
                          f"企业成立{_years(enterprise.years_in_business)}年，产品要求至少经营"
                          f"{product.min_years_in_business}年"))
    if product.max_open_penalties is not None and enterprise.open_penalties > product.max_open_penalties:
        out.append(Reason("too_many_open_penalties",
                          f"企业有{enterprise.open_penalties}条未结行政处罚，产品要求不超过"
                          f"{product.max_open_penalties}条"))
    if product.tax_grade_floor is not None:
        if enterprise.tax_grade is None:
            out.append(Reason("tax_grade_missing", f"暂无纳税信用等级，产品要求{product.tax_grade_floor}级及以上"))
        elif _rank(TAX_GRADES, enterprise.tax_grade) > _rank(TAX_GRADES, product.tax_grade_floor):
            out.append(Reason("tax_grade_below_floor",
                              f"纳税信用等级{enterprise.tax_grade}低于产品要求的{product.tax_grade_floor}级"))
    return out


def _headroom_points(product: ProductRules, demand: DemandTerms) -> int:
    # 0 when the amount sits at the product's maximum, 10 when the maximum is at least twice the amount.
    ratio = product.amount_max_fen / demand.amount_fen if demand.amount_fen > 0 else 2.0
    return max(0, min(10, round((ratio - 1) * 10)))


def _rate_points(product: ProductRules) -> int:
    span = _RATE_WORST_BP - _RATE_BEST_BP
    return max(0, min(30, round(30 * (_RATE_WORST_BP - product.rate_min_bp) / span)))


def fit(product: ProductRules, demand: DemandTerms, enterprise: EnterpriseProfile) -> tuple[int, list[Reason]]:
    """The fit score (0–100) of a product that passed every rule, and the reasons it fits, strongest first."""
    reasons: list[Reason] = []
    score = 40 + _rate_points(product)
    if demand.max_rate_bp is not None:
        reasons.append(Reason("rate_within_max", f"年利率{percent(product.rate_min_bp)}起，不高于您可接受的"
                                                  f"{percent(demand.max_rate_bp)}"))
    else:
        reasons.append(Reason("rate_from", f"年利率{percent(product.rate_min_bp)}起"))
    if product.guarantee_kind == "credit":
        score += 10
        reasons.append(Reason("unsecured", "纯信用贷款，无需抵押或担保"))
    else:
        if product.guarantee_kind in ("xinyidan", "xinyixian"):
            score += 5
        reasons.append(Reason("guarantee_compatible",
                              f"您提供的{GUARANTEE_KINDS[demand.guarantee_offered]}满足产品的"
                              f"{GUARANTEE_KINDS.get(product.guarantee_kind, product.guarantee_kind)}要求"))
    if enterprise.first_loan and product.first_loan_friendly:
        score += 10
        reasons.append(Reason("first_loan_friendly", "首贷友好：适合首次申请贷款的企业"))
    headroom = _headroom_points(product, demand)
    score += headroom
    reasons.append(Reason("amount_in_range", f"申请金额{yuan(demand.amount_fen)}在产品额度"
                                             f"{yuan(product.amount_min_fen)}–{yuan(product.amount_max_fen)}内"))
    if headroom == 10:
        reasons.append(Reason("amount_headroom", "额度充足：产品最高额度不低于申请金额的两倍"))
    reasons.append(Reason("term_in_range", f"申请期限{demand.term_months}个月在产品期限"
                                           f"{product.term_min_months}–{product.term_max_months}个月内"))
    if product.min_grade is not None:
        reasons.append(Reason("grade_met", f"企业画像等级{enterprise.grade}达到产品要求的{product.min_grade}级"))
    if product.min_score is not None:
        reasons.append(Reason("score_met", f"企业画像评分{enterprise.score}达到产品要求的{product.min_score}分"))
    if product.industries:
        section = INDUSTRY_SECTIONS.get(enterprise.industry, enterprise.industry)
        reasons.append(Reason("industry_allowed", f"所属行业（{section}）在产品支持范围内"))
    if product.regions:
        reasons.append(Reason("region_allowed", "企业所在地区在产品服务区域内"))
    if product.min_years_in_business:
        reasons.append(Reason("years_met", f"企业成立{_years(enterprise.years_in_business)}年，满足至少"
                                           f"{product.min_years_in_business}年的要求"))
    if product.max_open_penalties is not None:
        reasons.append(Reason("open_penalties_ok", f"未结行政处罚{enterprise.open_penalties}条，不超过产品要求的"
                                                   f"{product.max_open_penalties}条"))
    if product.tax_grade_floor is not None:
        reasons.append(Reason("tax_grade_met", f"纳税信用等级{enterprise.tax_grade}达到产品要求的"
                                               f"{product.tax_grade_floor}级"))
    return min(100, score), reasons


def match(*, demand: DemandTerms, enterprise: EnterpriseProfile, products: Iterable[ProductRules]) -> MatchResult:
    """Rank the products that fit `demand` for `enterprise` and explain the others.

    A hard risk flag excludes every product (with that flag as the main reason) and is reported as
    `hard_stop`; nothing else can make such an enterprise match.
    """
    fitting: list[tuple[int, list[Reason], ProductRules]] = []
    excluded: list[Exclusion] = []
    for product in products:
        failed = failures(product, demand, enterprise)
        if failed:
            excluded.append(Exclusion(product=product, main_reason=failed[0], reasons=tuple(failed)))
            continue
        score, reasons = fit(product, demand, enterprise)
        fitting.append((score, reasons, product))
    fitting.sort(key=lambda item: (-item[0], item[2].rate_min_bp, -item[2].amount_max_fen, item[2].id))
    matches = tuple(Match(product=p, rank=i, score=s, reasons=tuple(r)) for i, (s, r, p) in enumerate(fitting, 1))
    excluded.sort(key=lambda e: (e.product.bank_name, e.product.name, e.product.id))
    flags = hard_flags(enterprise.risk_flags)
    hard = Reason(flags[0], HARD_RISK_FLAGS[flags[0]]) if flags else None
    return MatchResult(matches=matches, excluded=tuple(excluded), hard_stop=hard)


__all__ = ["GRADES", "GUARANTEE_FITS", "GUARANTEE_KINDS", "HARD_RISK_FLAGS", "HARD_STOP", "INDUSTRY_SECTIONS",
           "TAX_GRADES", "DemandTerms", "EnterpriseProfile", "Exclusion", "Match", "MatchResult", "ProductRules",
           "Reason", "failures", "fit", "hard_flags", "match", "percent", "yuan"]
