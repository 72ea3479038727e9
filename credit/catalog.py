"""Catalogs the credit core is built on: score dimensions, severities and record categories.

Categories follow the city plans (双公示 permits and penalties, judgments, dishonest executees,
arrears, contract fulfilment, honours, volunteering, blood donation). Each carries its polarity, the
dimension it feeds and its usual severity; a data source may send a different severity per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from credit.schemas import PurposeOut

Dimension = Literal["identity", "fulfilment", "history", "contribution", "compliance"]
Severity = Literal["minor", "general", "serious"]
SubjectKind = Literal["person", "enterprise"]

DIMENSIONS: dict[str, str] = {
    "identity": "身份特质",
    "fulfilment": "履约能力",
    "history": "信用历史",
    "contribution": "社会贡献",
    "compliance": "遵纪守法",
}

SEVERITIES: tuple[str, ...] = ("minor", "general", "serious")
RECORD_STATUSES: tuple[str, ...] = ("active", "objected", "repaired", "expired", "withdrawn")


@dataclass(frozen=True, slots=True)
class RecordCategory:
    code: str
    name: str
    polarity: int  # +1 positive, -1 negative
    dimension: Dimension
    default_severity: Severity
    subjects: tuple[SubjectKind, ...]


CATEGORIES: dict[str, RecordCategory] = {
    c.code: c
    for c in (
        RecordCategory("administrative_penalty", "行政处罚", -1, "compliance", "general", ("person", "enterprise")),
        RecordCategory("administrative_permit", "行政许可", +1, "identity", "minor", ("person", "enterprise")),
        RecordCategory("court_judgment", "法院判决未履行", -1, "compliance", "general", ("person", "enterprise")),
        RecordCategory("dishonest_executee", "失信被执行人", -1, "compliance", "serious", ("person", "enterprise")),
        RecordCategory("tax_arrears", "欠缴税款", -1, "fulfilment", "general", ("person", "enterprise")),
        RecordCategory("utility_arrears", "水电燃气欠费", -1, "fulfilment", "minor", ("person", "enterprise")),
        RecordCategory("contract_default", "合同违约", -1, "fulfilment", "general", ("person", "enterprise")),
        RecordCategory("contract_fulfilment", "按时履约", +1, "fulfilment", "minor", ("person", "enterprise")),
        RecordCategory("honour", "表彰荣誉", +1, "contribution", "general", ("person", "enterprise")),
        RecordCategory("volunteer_service", "志愿服务", +1, "contribution", "minor", ("person",)),
        RecordCategory("blood_donation", "无偿献血", +1, "contribution", "general", ("person",)),
        RecordCategory("tax_grade_a", "纳税信用A级", +1, "history", "general", ("enterprise",)),
        # Enterprise-only records the 信易贷 portrait reads (lending/portrait.py). The yearly tax credit
        # grade is one record per year; the latest counted one is the enterprise's grade.
        RecordCategory("tax_grade_b", "纳税信用B级", +1, "history", "minor", ("enterprise",)),
        RecordCategory("tax_grade_m", "纳税信用M级", +1, "history", "minor", ("enterprise",)),
        RecordCategory("tax_grade_c", "纳税信用C级", -1, "history", "general", ("enterprise",)),
        RecordCategory("tax_grade_d", "纳税信用D级", -1, "history", "serious", ("enterprise",)),
        RecordCategory("social_insurance_paid", "社保按时缴纳", +1, "fulfilment", "minor", ("enterprise",)),
        RecordCategory("social_insurance_arrears", "欠缴社保", -1, "fulfilment", "general", ("enterprise",)),
        RecordCategory("environmental_rating_good", "环保信用评价良好", +1, "compliance", "minor", ("enterprise",)),
        RecordCategory("environmental_rating_poor", "环保信用评价较差", -1, "compliance", "general", ("enterprise",)),
        RecordCategory("honour_specialized", "专精特新企业", +1, "contribution", "general", ("enterprise",)),
        RecordCategory("honour_high_tech", "高新技术企业", +1, "contribution", "general", ("enterprise",)),
        RecordCategory("patent", "专利授权", +1, "contribution", "minor", ("enterprise",)),
    )
}


# What a partner may receive about a subject under an authorization (DESIGN §3).
DATA_SCOPES: dict[str, str] = {
    "tier": "信用等级 (AAA/AA/A/B/C)",
    "score_band": "信用分区间 (e.g. 700-749)",
    "score": "信用分",
    "dimensions": "五维度得分",
    "reasons": "主要影响因素",
    "portrait": "企业信用画像",
}


@dataclass(frozen=True, slots=True)
class Purpose:
    """Why a partner asks: each purpose caps validity, daily uses and the scopes it can justify."""

    code: str
    name: str
    subject_kind: SubjectKind
    allowed_scopes: frozenset[str]
    max_validity_days: int
    daily_cap: int


PURPOSES: dict[str, Purpose] = {
    p.code: p
    for p in (
        Purpose("loan_pre_approval", "贷前审查", "person",
                frozenset({"tier", "score_band", "score", "dimensions", "reasons"}), 90, 10),
        Purpose("loan_post_management", "贷后管理", "person", frozenset({"tier", "score_band", "score"}), 365, 2),
        Purpose("deposit_waiver", "信用免押", "person", frozenset({"tier", "score_band"}), 365, 50),
        Purpose("pay_later", "先享后付", "person", frozenset({"tier", "score_band"}), 365, 50),
        Purpose("rental_screening", "租赁资信审查", "person", frozenset({"tier", "score_band", "reasons"}), 30, 5),
        Purpose("public_service_check", "公共服务信用核查", "person", frozenset({"tier"}), 30, 20),
        Purpose("enterprise_financing", "企业融资", "enterprise", frozenset({"portrait", "tier", "score"}), 180, 20),
        # A bank reviewing an enterprise's loan application (信易贷); a few reads a day cover the review.
        Purpose("loan_application", "申请贷款", "enterprise", frozenset({"portrait", "tier", "score"}), 90, 20),
    )
}


def purpose_catalog() -> list[PurposeOut]:
    """The purpose catalog as partners read it."""
    return [PurposeOut(code=p.code, name=p.name, subject_kind=p.subject_kind, allowed_scopes=sorted(p.allowed_scopes),
                       max_validity_days=p.max_validity_days, daily_cap=p.daily_cap) for p in PURPOSES.values()]
