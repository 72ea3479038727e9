"""The demo city's enterprises: registered in 嘉兴, with valid, unique 统一社会信用代码 and names.

Pure: the same random stream (and the same persons' birth years) always yields the same enterprises.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from datetime import date
from typing import NamedTuple

from stdnum.cn import uscc

from demo.reference import REFERENCE_TIME, public_id

# registered_capital_fen is a BIGINT column; the cap is only the largest capital the demo declares (10亿元).
_MAX_CAPITAL_YUAN = 1_000_000_000

# Registration authorities (市本级 and the counties), weighted by how many firms each registers, and the
# name prefix firms there usually carry.
_ENTERPRISE_REGIONS: dict[str, tuple[float, str]] = {
    "330400": (8, "嘉兴"), "330402": (8, "嘉兴市"), "330411": (9, "嘉兴市"), "330421": (9, "嘉善县"),
    "330424": (6, "海盐县"), "330481": (14, "海宁市"), "330482": (10, "平湖市"), "330483": (13, "桐乡市"),
}
_ENTERPRISE_REGION_CODES: tuple[str, ...] = tuple(_ENTERPRISE_REGIONS)
_ENTERPRISE_REGION_CUM: tuple[float, ...] = tuple(
    itertools.accumulate(w for w, _ in _ENTERPRISE_REGIONS.values())
)

# GB/T 4754-2017 sections: weight, capital range in yuan, business words for the name.
_INDUSTRIES: dict[str, tuple[float, int, int, tuple[str, ...]]] = {
    "C": (35, 500_000, 100_000_000, ("机械", "电器", "塑业", "包装", "精密机械", "化工", "纺织", "食品", "印染",
                                    "机电", "五金")),
    "F": (22, 100_000, 5_000_000, ("贸易", "商贸", "进出口", "超市", "食品贸易", "建材")),
    "L": (8, 100_000, 5_000_000, ("企业管理咨询", "人力资源", "广告", "会展服务", "商务咨询")),
    "M": (8, 500_000, 10_000_000, ("检测技术", "工程设计", "环境科技", "生物科技", "科技")),
    "I": (6, 100_000, 10_000_000, ("信息技术", "网络科技", "软件", "数字科技", "智能科技")),
    "E": (6, 2_000_000, 200_000_000, ("建设工程", "建筑装饰工程", "市政园林工程", "建筑劳务")),
    "G": (5, 500_000, 10_000_000, ("物流", "运输", "供应链管理", "货运代理")),
    "H": (4, 100_000, 2_000_000, ("餐饮管理", "酒店管理", "餐饮")),
    "K": (2, 10_000_000, _MAX_CAPITAL_YUAN, ("房地产开发", "物业服务", "置业")),
    "A": (2, 100_000, 5_000_000, ("农业开发", "生态农业", "水产养殖", "粮油", "农业科技")),
    "O": (2, 30_000, 1_000_000, ("家政服务", "汽车维修", "保洁服务")),
}
_INDUSTRY_CODES: tuple[str, ...] = tuple(_INDUSTRIES)
_INDUSTRY_CUM: tuple[float, ...] = tuple(itertools.accumulate(v[0] for v in _INDUSTRIES.values()))

# The manufacturing each county is known for (海宁 leather and warp knitting, 桐乡 sweaters and chemical
# fibre, 嘉善 wood and furniture, 平湖 garments and luggage, 海盐 fasteners, 秀洲 photovoltaics...).
_LOCAL_MANUFACTURING: dict[str, tuple[str, ...]] = {
    "330481": ("皮革", "经编", "家纺", "时装"),
    "330483": ("毛衫", "化纤", "羊毛衫", "玻纤"),
    "330421": ("木业", "家具", "五金", "电子"),
    "330482": ("服装", "箱包", "童车", "光机电"),
    "330424": ("紧固件", "标准件", "核电设备"),
    "330411": ("光伏", "织造", "新能源"),
    "330402": ("电子", "新材料", "智能装备", "汽车零部件"),
    "330400": ("电子", "新材料", "智能装备", "汽车零部件"),
}

_TRADE_CHARS = (
    "恒瑞华鑫盛达宏嘉禾润丰泰新源隆兴信诚通力佳和美锦永昌远凯博汇晟启明宇卓越科诺腾辉众欣云海天金"
    "东南湖秀洲星航联创祥福荣安康乐晨铭益升顺弘伟豪"
)

# Organization-code letters must also be legal in a USCC (no I, O, S, V, Z).
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Codes issued after the 2015 reform start with "MA"; older firms kept their GB 11714 organization code.
_USCC_REFORM = date(2015, 10, 1)


class EnterpriseSeed(NamedTuple):
    """A generated enterprise before encryption; `representative` indexes the generated persons."""

    public_id: str
    name: str
    uscc: str
    industry: str  # GB/T 4754 section letter
    region_code: str
    registered_on: date
    registered_capital_fen: int
    representative: int | None


def _organization_code(body: str) -> str:
    """Append the GB 11714 check character to an 8-character organization code body."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def _uscc(rng: random.Random, region: str, registered_on: date) -> str:
    if registered_on >= _USCC_REFORM:
        body = "MA" + "".join(rng.choice(_USCC_ALPHABET) for _ in range(6))
    else:
        body = f"{rng.randrange(10_000_000, 100_000_000)}"
    number = "91" + region + _organization_code(body)
    return number + uscc.calc_check_digit(number + "0")


def _capital_yuan(rng: random.Random, low: int, high: int) -> int:
    # Log-uniform, then rounded the way registered capital is usually declared (whole 万元, 10万 above 100万).
    value = low * (high / low) ** rng.random()
    step = 100_000 if value >= 1_000_000 else 10_000
    return int(min(max(round(value / step) * step, step), _MAX_CAPITAL_YUAN))


def generate_enterprises(
    rng: random.Random, n: int, *, person_birth_years: Sequence[int]
) -> Iterator[EnterpriseSeed]:
    """Yield `n` enterprises registered in 嘉兴 with valid, unique 统一社会信用代码 and unique names.

    Args:
        rng: the stream to draw from.
        n: how many enterprises.
        person_birth_years: birth years of the generated persons, in generation order; legal
            representatives are picked among them (an adult of working age at registration when possible).
    """
    first_day = REFERENCE_TIME.date().replace(year=REFERENCE_TIME.year - 25).toordinal()
    last_day = REFERENCE_TIME.date().toordinal() - 30
    seen_codes: set[str] = set()
    seen_names: set[str] = set()
    for _ in range(n):
        # More firms were registered in recent years than 25 years ago.
        registered_on = date.fromordinal(first_day + int((last_day - first_day) * rng.random() ** 0.7))
        region = rng.choices(_ENTERPRISE_REGION_CODES, cum_weights=_ENTERPRISE_REGION_CUM)[0]
        industry = rng.choices(_INDUSTRY_CODES, cum_weights=_INDUSTRY_CUM)[0]
        _, low, high, words = _INDUSTRIES[industry]
        capital = _capital_yuan(rng, low, high)
        while True:
            code = _uscc(rng, region, registered_on)
            if code not in seen_codes:
                seen_codes.add(code)
                break
        if industry == "C" and rng.random() < 0.6:
            words = _LOCAL_MANUFACTURING[region]
        prefix = _ENTERPRISE_REGIONS[region][1]
        if capital >= 10_000_000 and rng.random() < 0.3:
            prefix, suffix = "浙江", "股份有限公司"
        else:
            suffix = "有限责任公司" if rng.random() < 0.05 else "有限公司"
        while True:
            trade = "".join(rng.sample(_TRADE_CHARS, 3 if rng.random() < 0.15 else 2))
            name = f"{prefix}{trade}{rng.choice(words)}{suffix}"
            if name not in seen_names:
                seen_names.add(name)
                break
        representative: int | None = None
        if person_birth_years:
            for _attempt in range(8):
                representative = rng.randrange(len(person_birth_years))
                if 22 <= registered_on.year - person_birth_years[representative] <= 65:
                    break
        yield EnterpriseSeed(
            public_id=public_id(rng, "ent"),
            name=name,
            uscc=code,
            industry=industry,
            region_code=region,
            registered_on=registered_on,
            registered_capital_fen=capital * 100,
            representative=representative,
        )
