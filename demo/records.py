"""The demo city's credit records and the data sources that report them.

Pure: the same random stream and sequence of subjects always yields the same records (references included).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import NamedTuple

from credit.catalog import CATEGORIES, RecordCategory
from demo.enterprises import EnterpriseSeed
from demo.people import PersonSeed
from demo.reference import RECORD_WINDOW_START, REFERENCE_TIME, public_id

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_WINDOW_START_DAY = RECORD_WINDOW_START.date().toordinal()
_WINDOW_END_DAY = REFERENCE_TIME.date().toordinal()  # exclusive
_WINDOW_DAYS = _WINDOW_END_DAY - _WINDOW_START_DAY
_REFERENCE_TS = int(REFERENCE_TIME.timestamp())
_DAY = 86_400

# Maximum display periods of negative records (DESIGN §5): past them a record is shown as expired.
_MAX_DISPLAY_DAYS = {"minor": 90, "general": 365, "serious": 3 * 365}
_SEVERITY_ORDER = ("minor", "general", "serious")

@dataclass(frozen=True, slots=True)
class DataSource:
    """A demo data-source partner and the reference format of the records it pushes."""

    key: str
    name: str


DATA_SOURCES: dict[str, DataSource] = {
    s.key: s
    for s in (
        DataSource("tax", "国家税务总局嘉兴市税务局"),
        DataSource("court", "嘉兴市中级人民法院"),
        DataSource("market", "嘉兴市市场监督管理局"),
        DataSource("utilities", "嘉兴市水电燃气公用事业缴费中心"),
        DataSource("civil", "嘉兴市民政局"),
        DataSource("blood", "嘉兴市中心血站"),
        DataSource("fund", "嘉兴市住房公积金管理中心"),
        DataSource("trading", "嘉兴市公共资源交易中心"),
        DataSource("hrss", "嘉兴市人力资源和社会保障局"),
        DataSource("environment", "嘉兴市生态环境局"),
        DataSource("economy", "嘉兴市经济和信息化局"),
        DataSource("science", "嘉兴市科学技术局"),
    )
}


@dataclass(frozen=True, slots=True)
class _RecordKind:
    """Who reports a category for a kind of subject, how it numbers its records and what it calls them."""

    source: str
    ref: str  # format with {y} (year) and {n} (the source's running number)
    titles: tuple[str, ...]


_COURTS = ("浙0402", "浙0411", "浙0421", "浙0424", "浙0481", "浙0482", "浙0483")
_HOURS = (4, 6, 8, 10, 12, 16, 20, 24, 40)


def _volunteer_titles() -> tuple[str, ...]:
    kinds = ("红船志愿服务", "社区志愿服务", "文明城市创建志愿服务", "垃圾分类志愿服务", "助老志愿服务",
             "交通劝导志愿服务")
    return tuple(f"{k}{h}小时" for k in kinds for h in _HOURS)


_RECORD_KINDS: dict[tuple[str, str], _RecordKind] = {
    ("person", "administrative_permit"): _RecordKind("market", "嘉市监许〔{y}〕{n}号", (
        "个体工商户营业执照核发", "食品经营许可证核发（个体）", "小餐饮登记证核发", "特种设备作业人员证核发",
        "食品小作坊登记证核发", "个体工商户变更登记")),
    ("person", "administrative_penalty"): _RecordKind("market", "嘉市监处罚〔{y}〕{n}号", (
        "无照经营被处以罚款", "销售过期食品被处以罚款", "未明码标价被处以罚款", "计量作弊（短斤缺两）被处以罚款",
        "销售不合格商品被处以罚款", "违规发布广告被处以罚款")),
    ("person", "court_judgment"): _RecordKind("court", "({y}){court}民初{n}号", (
        "民间借贷纠纷判决未履行", "买卖合同纠纷判决未履行", "房屋租赁合同纠纷判决未履行", "劳务合同纠纷判决未履行",
        "信用卡纠纷判决未履行")),
    ("person", "dishonest_executee"): _RecordKind("court", "({y}){court}执{n}号", (
        "被列入失信被执行人名单（有履行能力而拒不履行）", "被列入失信被执行人名单（规避执行）")),
    ("person", "tax_arrears"): _RecordKind("tax", "嘉税欠{y}{n:08d}", (
        "个人所得税（经营所得）欠缴", "房产税欠缴", "城镇土地使用税欠缴", "契税欠缴")),
    ("person", "utility_arrears"): _RecordKind("utilities", "JXGY{y}{n:08d}", (
        "水费欠缴超过3个月", "电费逾期未缴超过3个月", "燃气费欠缴超过3个月", "水费欠缴累计6个月")),
    ("person", "contract_default"): _RecordKind("fund", "JXGJJ{y}{n:08d}", (
        "住房公积金贷款逾期还款", "住房公积金贷款连续逾期3期")),
    ("person", "contract_fulfilment"): _RecordKind("fund", "JXGJJ{y}{n:08d}", (
        "住房公积金贷款按期还款（12期）", "住房公积金按时足额缴存（12个月）", "住房公积金贷款提前结清")),
    ("person", "honour"): _RecordKind("civil", "嘉民表〔{y}〕{n}号", (
        "嘉兴市最美家庭", "嘉兴好人", "见义勇为先进个人", "嘉兴市道德模范", "优秀社区工作者", "嘉兴市五星级志愿者")),
    ("person", "volunteer_service"): _RecordKind("civil", "ZYFW{y}{n:08d}", _volunteer_titles()),
    ("person", "blood_donation"): _RecordKind("blood", "JXXZ{y}{n:08d}", (
        "无偿献血200毫升", "无偿献血300毫升", "无偿献血400毫升", "无偿捐献机采血小板1个治疗量",
        "无偿捐献机采血小板2个治疗量")),
    ("enterprise", "administrative_permit"): _RecordKind("market", "嘉市监许〔{y}〕{n}号", (
        "食品经营许可证核发", "工业产品生产许可证核发", "特种设备使用登记", "营业执照变更登记", "药品经营许可证核发",
        "计量器具型式批准")),
    ("enterprise", "administrative_penalty"): _RecordKind("market", "嘉市监处罚〔{y}〕{n}号", (
        "生产销售不合格产品被处以罚款", "虚假宣传被处以罚款", "食品安全违法行为被处以罚款", "价格违法行为被处以罚款",
        "无证生产被处以罚款", "特种设备未按规定检验被处以罚款", "侵犯注册商标专用权被处以罚款")),
    ("enterprise", "court_judgment"): _RecordKind("court", "({y}){court}民初{n}号", (
        "买卖合同纠纷判决未履行", "建设工程施工合同纠纷判决未履行", "劳动争议判决未履行", "借款合同纠纷判决未履行")),
    ("enterprise", "dishonest_executee"): _RecordKind("court", "({y}){court}执{n}号", (
        "被列入失信被执行人名单（有履行能力而拒不履行）", "被列入失信被执行人名单（违反财产报告制度）")),
    ("enterprise", "tax_arrears"): _RecordKind("tax", "嘉税欠{y}{n:08d}", (
        "增值税欠缴", "企业所得税欠缴", "城市维护建设税欠缴", "房产税欠缴")),
    ("enterprise", "utility_arrears"): _RecordKind("utilities", "JXGY{y}{n:08d}", (
        "工业用电电费逾期未缴", "非居民用水水费欠缴超过3个月", "工业燃气费欠缴超过3个月")),
    ("enterprise", "contract_default"): _RecordKind("trading", "JXGGZY{y}{n:08d}", (
        "政府采购合同逾期交付", "工程施工合同违约（工期延误）", "政府采购合同履约验收不合格")),
    ("enterprise", "contract_fulfilment"): _RecordKind("trading", "JXGGZY{y}{n:08d}", (
        "政府采购合同按期履约", "工程项目按期竣工验收", "政府采购合同履约验收合格")),
    ("enterprise", "honour"): _RecordKind("market", "嘉市监信〔{y}〕{n}号", (
        "浙江省守合同重信用AA级企业", "浙江省守合同重信用A级企业", "嘉兴市诚信示范企业", "嘉兴市消费者满意单位")),
    ("enterprise", "tax_grade_a"): _RecordKind("tax", "嘉税信A{y}{n:08d}", ()),  # title carries the year
    ("enterprise", "tax_grade_b"): _RecordKind("tax", "嘉税信B{y}{n:08d}", ()),
    ("enterprise", "tax_grade_m"): _RecordKind("tax", "嘉税信M{y}{n:08d}", ()),
    ("enterprise", "tax_grade_c"): _RecordKind("tax", "嘉税信C{y}{n:08d}", ()),
    ("enterprise", "tax_grade_d"): _RecordKind("tax", "嘉税信D{y}{n:08d}", ()),
    ("enterprise", "social_insurance_paid"): _RecordKind("hrss", "JXSB{y}{n:08d}", ()),  # title carries the month
    ("enterprise", "social_insurance_arrears"): _RecordKind("hrss", "嘉人社欠〔{y}〕{n}号", (
        "欠缴职工基本养老保险费", "欠缴失业保险费", "欠缴工伤保险费", "欠缴职工基本医疗保险费")),
    ("enterprise", "environmental_rating_good"): _RecordKind("environment", "嘉环信〔{y}〕{n}号", (
        "企业环境信用评价绿牌", "企业环境信用评价蓝牌")),
    ("enterprise", "environmental_rating_poor"): _RecordKind("environment", "嘉环信〔{y}〕{n}号", (
        "企业环境信用评价黄牌", "企业环境信用评价红牌", "企业环境信用评价黑牌")),
    ("enterprise", "honour_specialized"): _RecordKind("economy", "嘉经信〔{y}〕{n}号", (
        "浙江省专精特新中小企业", "国家级专精特新“小巨人”企业", "嘉兴市专精特新中小企业")),
    ("enterprise", "honour_high_tech"): _RecordKind("science", "GR{y}33{n:06d}", (
        "高新技术企业证书", "浙江省科技型中小企业")),
    ("enterprise", "patent"): _RecordKind("market", "ZL{y}1{n:07d}", (
        "发明专利授权", "实用新型专利授权", "外观设计专利授权")),
}

# Relative frequency of each category, per subject kind and per risk class (most subjects are low risk:
# their records are almost all positive; a few high-risk subjects collect most of the negatives).
_PERSON_WEIGHTS: dict[str, tuple[float, float, float]] = {  # low, medium, high risk
    "contract_fulfilment": (26, 22, 10),
    "volunteer_service": (20, 12, 3),
    "administrative_permit": (14, 14, 10),
    "blood_donation": (6, 4, 1),
    "honour": (2, 0.8, 0),
    "utility_arrears": (3, 12, 30),
    "administrative_penalty": (1, 5, 12),
    "contract_default": (0.8, 5, 14),
    "tax_arrears": (0.3, 2, 6),
    "court_judgment": (0.1, 1.5, 8),
    "dishonest_executee": (0, 0.3, 5),
}
_ENTERPRISE_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "administrative_permit": (22, 18, 12),
    "contract_fulfilment": (18, 12, 5),
    "patent": (4, 2, 0.5),
    "honour": (3, 0.5, 0),
    "environmental_rating_good": (2, 1, 0.2),
    "honour_high_tech": (0.6, 0.2, 0),
    "honour_specialized": (0.4, 0.1, 0),
    "environmental_rating_poor": (0.2, 1, 3),
    "social_insurance_arrears": (0.3, 2, 6),
    "administrative_penalty": (3, 10, 20),
    "utility_arrears": (1, 4, 8),
    "tax_arrears": (0.8, 4, 10),
    "contract_default": (0.8, 4, 10),
    "court_judgment": (0.3, 2, 8),
    "dishonest_executee": (0, 0.3, 4),
}
_RISK_SHARES = (0.8, 0.17, 0.03)
_RISK_CUM = tuple(itertools.accumulate(_RISK_SHARES))
# The yearly 纳税信用 grade of a firm with a full year behind it, per risk class ("" = not graded).
_TAX_GRADES = ("A", "B", "C", "D", "")
_TAX_GRADE_CUM: tuple[tuple[float, ...], ...] = tuple(tuple(itertools.accumulate(w)) for w in (
    (0.30, 0.50, 0.04, 0.01, 0.15), (0.08, 0.50, 0.15, 0.05, 0.22), (0.0, 0.25, 0.25, 0.20, 0.30)))
# Chance of monthly social insurance records over the last year (one record per month paid), per risk class.
_SOCIAL_INSURANCE_CHANCE = (0.35, 0.2, 0.05)


def _cumulative(weights: dict[str, tuple[float, float, float]], risk: int) -> tuple[tuple[str, ...], tuple[float, ...]]:
    codes = tuple(code for code, w in weights.items() if w[risk] > 0)
    return codes, tuple(itertools.accumulate(weights[c][risk] for c in codes))


_CATEGORY_TABLES: dict[str, tuple[tuple[tuple[str, ...], tuple[float, ...]], ...]] = {
    "person": tuple(_cumulative(_PERSON_WEIGHTS, r) for r in range(3)),
    "enterprise": tuple(_cumulative(_ENTERPRISE_WEIGHTS, r) for r in range(3)),
}


class RecordSeed(NamedTuple):
    """A generated credit record; `subject` indexes the generated persons or enterprises of its kind.

    `source` is a key of `DATA_SOURCES`; the seed maps it to the data-source partner's client id.
    """

    public_id: str
    subject_kind: str  # "person" | "enterprise"
    subject: int
    category: str
    polarity: int
    severity: str
    dimension: str
    title: str
    source: str
    source_ref: str
    occurred_at: datetime
    status: str
    created_at: datetime
    updated_at: datetime


class RecordGenerator:
    """Credit records for one subject at a time, numbering each source's references consecutively.

    Deterministic for the same rng state and the same sequence of calls.
    """

    def __init__(self, rng: random.Random, *, reference_base: int = 0) -> None:
        """`reference_base` starts each source's reference numbers there, so generators working on
        different shards of one city never issue the same (source, reference)."""
        self._rng = rng
        self._counters: dict[str, int] = dict.fromkeys(DATA_SOURCES, reference_base)

    def for_person(self, index: int, person: PersonSeed) -> list[RecordSeed]:
        """Records of the person at `index`, all after their 18th birthday (about 7 over five years)."""
        adult_day = person.birth_date.toordinal() + 6575  # 18 years
        return self._records("person", index, max(_WINDOW_START_DAY, adult_day), mean=7.2, tax_grade=False)

    def for_enterprise(self, index: int, enterprise: EnterpriseSeed) -> list[RecordSeed]:
        """Records of the enterprise at `index`, all after its registration (about 8 over five years)."""
        start = max(_WINDOW_START_DAY, enterprise.registered_on.toordinal() + 1)
        return self._records("enterprise", index, start, mean=8.0, tax_grade=True,
                             registered_on=enterprise.registered_on)

    def _records(self, kind: str, index: int, start_day: int, *, mean: float, tax_grade: bool,
                 registered_on: date | None = None) -> list[RecordSeed]:
        rng = self._rng
        risk = bisect.bisect_right(_RISK_CUM, rng.random() * _RISK_CUM[-1])
        risk = min(risk, 2)
        span = _WINDOW_END_DAY - start_day
        out: list[RecordSeed] = []
        if span <= 0:
            return out
        # Gamma-distributed activity (some people do much more than others), scaled to the part of the
        # window the subject was around for, with stochastic rounding.
        count = int(rng.gammavariate(2.0, mean / 2.0) * span / _WINDOW_DAYS + rng.random())
        if count:
            codes, cum = _CATEGORY_TABLES[kind][risk]
            for code in rng.choices(codes, cum_weights=cum, k=count):
                day = start_day + rng.randrange(span)
                out.append(self._record(kind, index, CATEGORIES[code], day, _RECORD_KINDS[(kind, code)]))
        if tax_grade and registered_on is not None:
            out.extend(self._enterprise_yearly(index, risk, registered_on))
        return out

    def _enterprise_yearly(self, index: int, risk: int, registered_on: date) -> list[RecordSeed]:
        """Yearly tax grades and, for some firms, the last twelve months of social insurance."""
        rng = self._rng
        out: list[RecordSeed] = []
        # Grades are published each April for the previous year: M for a firm new in that year, A–D for one
        # with a full year behind it.
        for year in range(RECORD_WINDOW_START.year + 1, REFERENCE_TIME.year + 1):
            day = date(year, 4, 15).toordinal() + rng.randrange(16)
            if day <= registered_on.toordinal():
                continue
            if registered_on < date(year - 1, 1, 1):
                grade = _TAX_GRADES[bisect.bisect_right(_TAX_GRADE_CUM[risk], rng.random() * _TAX_GRADE_CUM[risk][-1])]
            elif registered_on < date(year, 1, 1):
                grade = "M" if rng.random() < 0.6 else ""
            else:
                continue
            if grade:
                code = f"tax_grade_{grade.lower()}"
                out.append(self._record("enterprise", index, CATEGORIES[code], day, _RECORD_KINDS[("enterprise", code)],
                                        title=f"{year - 1}年度纳税信用{grade}级纳税人"))
        if rng.random() < _SOCIAL_INSURANCE_CHANCE[risk]:
            end = REFERENCE_TIME.date().replace(day=10)
            for back in range(1, 13):
                month_index = end.year * 12 + end.month - 1 - back
                paid_on = date(month_index // 12, month_index % 12 + 1, 10)
                if paid_on > registered_on and rng.random() < 0.95:
                    out.append(self._record("enterprise", index, CATEGORIES["social_insurance_paid"],
                                            paid_on.toordinal(), _RECORD_KINDS[("enterprise", "social_insurance_paid")],
                                            title=f"{paid_on.year}年{paid_on.month}月社会保险费足额缴纳"))
        return out

    def _record(self, kind: str, index: int, category: RecordCategory, day: int, spec: _RecordKind, *,
                title: str | None = None) -> RecordSeed:
        rng = self._rng
        # Office hours in China (08:30–17:00 CST = 00:30–09:00 UTC).
        occurred_ts = (day - _EPOCH_ORDINAL) * _DAY + rng.randrange(1_800, 32_400)
        # Data sources push in batches: a record arrives an hour to two weeks after the fact.
        created_ts = min(occurred_ts + rng.randrange(3_600, 14 * _DAY), _REFERENCE_TS)
        severity = self._severity(category)
        status, updated_ts = "active", created_ts
        if category.polarity < 0:
            expires_ts = occurred_ts + _MAX_DISPLAY_DAYS[severity] * _DAY
            if expires_ts <= _REFERENCE_TS:
                status, updated_ts = "expired", max(expires_ts, created_ts)
        self._counters[spec.source] += 1
        year = date.fromordinal(day).year
        court = rng.choice(_COURTS) if "{court}" in spec.ref else ""
        ref = spec.ref.format(y=year, n=self._counters[spec.source], court=court)
        return RecordSeed(
            public_id=public_id(rng, "rec"),
            subject_kind=kind,
            subject=index,
            category=category.code,
            polarity=category.polarity,
            severity=severity,
            dimension=category.dimension,
            title=title if title is not None else rng.choice(spec.titles),
            source=spec.source,
            source_ref=ref,
            occurred_at=datetime.fromtimestamp(occurred_ts, UTC),
            status=status,
            created_at=datetime.fromtimestamp(created_ts, UTC),
            updated_at=datetime.fromtimestamp(updated_ts, UTC),
        )

    def _severity(self, category: RecordCategory) -> str:
        default = category.default_severity
        if category.code == "dishonest_executee" or category.code.startswith("tax_grade_"):
            return default
        r = self._rng.random()
        if r < 0.8:
            return default
        i = _SEVERITY_ORDER.index(default) + (-1 if r < 0.9 else 1)
        return _SEVERITY_ORDER[min(max(i, 0), 2)]


def generate_records(
    rng: random.Random, persons: Sequence[PersonSeed], enterprises: Sequence[EnterpriseSeed]
) -> Iterator[RecordSeed]:
    """Records of every person, then of every enterprise (the order `seed_demo_city` uses)."""
    generator = RecordGenerator(rng)
    for i, person in enumerate(persons):
        yield from generator.for_person(i, person)
    for i, enterprise in enumerate(enterprises):
        yield from generator.for_enterprise(i, enterprise)
