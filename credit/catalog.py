"""Catalogs the credit core is built on: score dimensions, severities and record categories.

Categories follow the city plans (双公示 permits and penalties, judgments, dishonest executees,
arrears, contract fulfilment, honours, volunteering, blood donation). Each carries its polarity, the
dimension it feeds and its usual severity; a data source may send a different severity per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    )
}
