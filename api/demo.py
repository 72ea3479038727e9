"""Deterministic demo city: a 嘉兴 registry (with migrants from 汉中), its credit records, partners, operators.

The generators (`generate_persons`, `generate_enterprises`, `RecordGenerator`, `generate_city`) are pure:
for one seed they always yield the same people, enterprises and records, including public ids, so two
seeded databases can be compared row by row. Only credentials (partner secrets, the operators' passwords)
and ciphertexts (AES-GCM nonces) differ between runs.

`seed_demo_city` writes the rows in bulk: `COPY` on PostgreSQL, batched `executemany` on SQLite, inside
one transaction, so a failed seed leaves nothing behind and a re-run only ever sees an empty or a fully
seeded registry. Identity numbers and phones never reach a log or the printed report; `demo_citizen` gives
`xinyi up` one synthetic person to print for the README tour, outside production only.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import random
import secrets
import string
import time
from abc import ABC, abstractmethod
from array import array
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, NamedTuple

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from stdnum.cn import ric, uscc

from accounts.operators import create_operator
from accounts.tables import Operator
from credit.catalog import CATEGORIES, RecordCategory
from credit.checks import LISTING_RECORD_STATUSES, RECORD_LISTS, seed_default_measures, sync_record_lists
from credit.identity import FieldCipher
from credit.tables import CreditRecord, Enterprise, Person
from lending.products import seed_demo_products
from partners.services import create_partner
from partners.tables import Partner
from scenarios.catalog import seed_default_scenarios

logger = logging.getLogger(__name__)

# A fixed "now" for everything generated, so output does not depend on the day the seed runs.
REFERENCE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
# Ages (18–80) are counted on this day.
AGE_REFERENCE = date(2026, 1, 1)
# Credit records span the five years before REFERENCE_TIME; the registry is loaded at the start.
RECORD_WINDOW_START = REFERENCE_TIME.replace(year=REFERENCE_TIME.year - 5)
REGISTRY_LOADED_AT = RECORD_WINDOW_START

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_WINDOW_START_DAY = RECORD_WINDOW_START.date().toordinal()
_WINDOW_END_DAY = REFERENCE_TIME.date().toordinal()  # exclusive
_WINDOW_DAYS = _WINDOW_END_DAY - _WINDOW_START_DAY
_REFERENCE_TS = int(REFERENCE_TIME.timestamp())
_DAY = 86_400

# Rows are generated, encrypted and written this many persons at a time (bounded memory at city scale).
CHUNK_SIZE = 10_000

# registered_capital_fen is a BIGINT column; the cap is only the largest capital the demo declares (10亿元).
_MAX_CAPITAL_YUAN = 1_000_000_000

# Maximum display periods of negative records (DESIGN §5): past them a record is shown as expired.
_MAX_DISPLAY_DAYS = {"minor": 90, "general": 365, "serious": 3 * 365}
_SEVERITY_ORDER = ("minor", "general", "serious")


# --------------------------------------------------------------------------- regions and people

JIAXING = "jiaxing"
HANZHONG = "hanzhong"
# Most residents are registered in 嘉兴 itself; a share are migrants from the partner city 汉中.
_CITY_SHARES = ((JIAXING, 0.82), (HANZHONG, 0.18))

# County codes of both cities, current and pre-reform, weighted roughly by county population. An id
# number keeps the code in force when it was first issued, and python-stdnum checks the code against the
# birth year, so both generations of codes are needed (3321xx/6123xx for people born before the 1983 and
# 1996 reforms). Which code is valid for which year is taken from stdnum itself (`_region_table`).
_REGION_WEIGHTS: dict[str, dict[str, float]] = {
    JIAXING: {
        "330402": 6, "330411": 7, "330421": 6.5, "330422": 7, "330423": 11, "330424": 4.5, "330425": 10,
        "330481": 11, "330482": 7, "330483": 10,
        "332102": 6, "332121": 7, "332122": 6.5, "332123": 7, "332124": 11, "332125": 4.5, "332126": 10,
    },
    HANZHONG: {
        "610702": 5.5, "610703": 5, "610721": 5, "610722": 5, "610723": 4, "610724": 4, "610725": 4,
        "610726": 3, "610727": 2, "610728": 2.5, "610729": 0.5, "610730": 0.3,
        "612301": 5.5, "612321": 5, "612322": 5, "612323": 4, "612324": 4, "612325": 4, "612326": 3,
        "612327": 2, "612328": 2.5, "612329": 0.5, "612330": 0.3,
    },
}

def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Birth years of adults aged 18–80 on AGE_REFERENCE, weighted after the shape of China's population
# pyramid (thin post-war and famine cohorts, the 1962–75 and 1985–91 baby booms).
_BIRTH_YEARS: tuple[int, ...] = tuple(range(1946, 2008))


def _birth_year_weight(year: int) -> float:
    if year < 1950:
        return 0.8
    if year < 1960:
        return 1.05
    if year < 1962:
        return 0.8
    if year < 1976:
        return 1.6
    if year < 1985:
        return 1.2
    if year < 1992:
        return 1.5
    if year < 2000:
        return 1.1
    return 1.0


_BIRTH_YEAR_CUM: tuple[float, ...] = tuple(itertools.accumulate(_birth_year_weight(y) for y in _BIRTH_YEARS))

_SURNAME_WEIGHTS: dict[str, float] = {
    "王": 7.1, "李": 6.5, "张": 6.5, "刘": 5.0, "陈": 7.0, "杨": 3.1, "黄": 2.4, "赵": 2.2, "吴": 3.0,
    "周": 2.5, "徐": 3.0, "孙": 1.3, "马": 1.1, "朱": 2.0, "胡": 1.3, "郭": 1.0, "何": 1.0, "高": 1.0,
    "林": 0.9, "罗": 0.8, "郑": 0.9, "梁": 0.7, "谢": 0.7, "宋": 0.7, "唐": 0.7, "许": 0.8, "韩": 0.6,
    "冯": 0.6, "邓": 0.5, "曹": 0.6, "彭": 0.5, "曾": 0.4, "肖": 0.5, "田": 0.5, "董": 0.5, "袁": 0.5,
    "潘": 0.6, "于": 0.4, "蒋": 0.6, "蔡": 0.5, "余": 0.5, "杜": 0.4, "叶": 0.6, "程": 0.5, "苏": 0.4,
    "魏": 0.4, "吕": 0.4, "丁": 0.4, "任": 0.4, "沈": 2.5, "姚": 1.0, "卢": 0.3, "姜": 0.3, "崔": 0.2,
    "钟": 0.3, "谭": 0.3, "陆": 1.5, "汪": 0.4, "范": 0.4, "金": 1.2, "石": 0.3, "廖": 0.2, "贾": 0.3,
    "夏": 0.4, "方": 0.4, "邹": 0.2, "孟": 0.2, "熊": 0.2, "秦": 0.2, "邱": 0.2, "江": 0.3, "尹": 0.2,
    "薛": 0.2, "段": 0.2, "雷": 0.2, "侯": 0.2, "史": 0.2, "陶": 0.3, "贺": 0.2, "顾": 1.2, "毛": 0.3,
    "郝": 0.1, "龚": 0.3, "邵": 0.4, "万": 0.2, "钱": 1.0, "严": 0.3, "戴": 0.4, "莫": 0.2, "孔": 0.2,
    "汤": 0.3, "褚": 0.2, "屠": 0.2, "俞": 0.5, "费": 0.2, "施": 0.5, "计": 0.1, "凌": 0.2, "闻": 0.1,
    "欧阳": 0.05, "司马": 0.02, "诸葛": 0.01, "上官": 0.02, "司徒": 0.02,
}
_SURNAMES: tuple[str, ...] = tuple(_SURNAME_WEIGHTS)
_SURNAME_CUM: tuple[float, ...] = tuple(itertools.accumulate(_SURNAME_WEIGHTS.values()))

# Given names follow naming fashions: (born before 1970, 1970–1989, from 1990) x (male, female).
_GIVEN_NAMES: dict[tuple[int, bool], tuple[str, ...]] = {
    (0, True): _words("建国 建华 建军 国平 国庆 国强 志明 志强 德明 德华 福林 金林 根林 水根 荣根 金根 永康 "
                      "永明 卫东 卫国 伟民 新民 学军 海林 明华 荣华 林 明 华 强 军 平 忠 勇 刚 兴 福 荣"),
    (0, False): _words("秀英 桂英 玉兰 秀兰 凤英 月英 美华 丽华 素珍 秀珍 金凤 玉珍 彩娥 美娟 红英 建英 根娣 "
                       "杏娣 招娣 小妹 芳 英 珍 兰 梅 霞 华 萍 琴 娟"),
    (1, True): _words("伟 磊 军 勇 杰 涛 斌 超 明 刚 平 辉 鹏 华 飞 健 峰 强 俊 波 剑 锋 亮 建峰 海峰 志刚 "
                      "晓东 晓明 建伟 立新 卫华 文斌 国栋 永强 海涛 志勇 振华 建平 晓峰 俊杰 伟强 红兵"),
    (1, False): _words("芳 娜 敏 静 丽 艳 娟 霞 燕 玲 萍 红 琴 丹 晶 洁 莉 婷 倩 慧 颖 琳 丽萍 晓燕 海燕 "
                       "丽娟 秀梅 春燕 雪梅 晓红 美玲 小燕 佳 丽芳 建芬 雪芬 燕萍"),
    (2, True): _words("浩 宇 轩 杰 鑫 磊 晨 博 昊 帆 睿 子轩 浩然 宇轩 俊杰 梓豪 子豪 宇航 皓轩 一鸣 思远 "
                      "博文 天宇 俊熙 嘉豪 子墨 明轩 浩宇 奕辰 晨阳 家豪 志豪 文博 泽宇 逸飞 嘉诚"),
    (2, False): _words("婷 雪 琳 颖 倩 洁 欣怡 梓涵 诗涵 雨桐 子涵 可馨 佳怡 思琪 雨欣 梦琪 欣然 诗琪 紫涵 "
                       "怡然 心怡 晓雯 佳琪 雨涵 一诺 语嫣 若曦 安琪 雅婷 静雯 思彤 嘉怡"),
}
# Share of single-character given names per era.
_SINGLE_NAME_SHARE = (0.35, 0.45, 0.2)

# Mainland mobile prefixes of the three carriers.
_PHONE_PREFIXES: tuple[str, ...] = _words(
    "134 135 136 137 138 139 147 150 151 152 157 158 159 172 178 182 183 184 187 188 195 197 198 "
    "130 131 132 145 155 156 166 175 176 185 186 196 133 149 153 173 177 180 181 189 190 191 193 199"
)


class PersonSeed(NamedTuple):
    """A generated citizen before encryption (the id number and phone are plain text here)."""

    public_id: str
    name: str
    id_number: str
    gender: str  # "M" | "F"
    birth_date: date
    region_code: str  # first six digits of the id number
    phone: str | None


@cache
def _region_table() -> dict[str, dict[int, tuple[tuple[str, ...], tuple[float, ...]]]]:
    """Per city and birth year: the county codes stdnum accepts for that year, with cumulative weights."""
    table: dict[str, dict[int, tuple[tuple[str, ...], tuple[float, ...]]]] = {}
    for city, weights in _REGION_WEIGHTS.items():
        per_year: dict[int, tuple[tuple[str, ...], tuple[float, ...]]] = {}
        for year in _BIRTH_YEARS:
            valid = [code for code in weights if ric.is_valid(_id_number(code, date(year, 7, 1), 1))]
            if not valid:
                raise RuntimeError(f"no {city} region code is valid for birth year {year}")
            per_year[year] = (tuple(valid), tuple(itertools.accumulate(weights[c] for c in valid)))
        table[city] = per_year
    return table


def _id_number(region: str, birth: date, sequence: int) -> str:
    body = f"{region}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence:03d}"
    # calc_check_digit expects the full 18 characters and ignores the last one.
    return body + ric.calc_check_digit(body + "0")


def _public_id(rng: random.Random, prefix: str) -> str:
    # Same shape as credit.identity.new_public_id, but drawn from the seeded stream so reruns compare.
    return f"{prefix}_{rng.getrandbits(80):020x}"


def _era(year: int) -> int:
    return 0 if year < 1970 else 1 if year < 1990 else 2


def generate_persons(rng: random.Random, n: int, *, shard: tuple[int, int] = (0, 1)) -> Iterator[PersonSeed]:
    """Yield `n` adult citizens with valid, unique 公民身份号码 and unique mobile numbers.

    Args:
        rng: the stream to draw from; the same stream state always yields the same persons.
        n: how many persons.
        shard: (k, of) when several processes generate one city: shard k only draws order codes and phone
            numbers from its own k-th of each space, so shards never collide without talking to each other.
    """
    part, parts = shard
    regions = _region_table()
    cities = tuple(c for c, _ in _CITY_SHARES)
    city_cum = tuple(itertools.accumulate(s for _, s in _CITY_SHARES))
    seen_ids: set[int] = set()
    seen_phones: set[int] = set()
    for _ in range(n):
        male = rng.random() < 0.51
        city = rng.choices(cities, cum_weights=city_cum)[0]
        year = rng.choices(_BIRTH_YEARS, cum_weights=_BIRTH_YEAR_CUM)[0]
        first = date(year, 1, 1).toordinal()
        birth = date.fromordinal(first + rng.randrange(date(year + 1, 1, 1).toordinal() - first))
        codes, code_cum = regions[city][year]
        while True:
            region = rng.choices(codes, cum_weights=code_cum)[0]
            # The order code is odd for men and even for women; 000 is never issued.
            sequence = rng.randrange(1 if male else 2, 1000, 2)
            if (sequence // 2) % parts != part:
                continue
            number = _id_number(region, birth, sequence)
            key = int(number[:17])
            if key not in seen_ids:
                seen_ids.add(key)
                break
        surname = rng.choices(_SURNAMES, cum_weights=_SURNAME_CUM)[0]
        era = _era(year)
        pool = _GIVEN_NAMES[(era, male)]
        given = rng.choice(pool)
        if len(given) == 1 and rng.random() > _SINGLE_NAME_SHARE[era]:
            # Make a two-character name from two single characters of the same fashion.
            second = rng.choice(pool)
            given = given + second[-1] if second[-1] != given else given
        # Some of the elderly have no mobile on record.
        no_phone = rng.random() < (0.3 if year < 1951 else 0.03)
        phone: str | None = None
        if not no_phone:
            while True:
                phone = rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
                if int(phone) % parts == part and int(phone) not in seen_phones:
                    seen_phones.add(int(phone))
                    break
        yield PersonSeed(
            public_id=_public_id(rng, "psn"),
            name=surname + given,
            id_number=number,
            gender="M" if male else "F",
            birth_date=birth,
            region_code=region,
            phone=phone,
        )


# --------------------------------------------------------------------------- enterprises

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
            public_id=_public_id(rng, "ent"),
            name=name,
            uscc=code,
            industry=industry,
            region_code=region,
            registered_on=registered_on,
            registered_capital_fen=capital * 100,
            representative=representative,
        )


# --------------------------------------------------------------------------- credit records


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
            public_id=_public_id(rng, "rec"),
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


class Streams(NamedTuple):
    """Independent random streams per kind of row, so chunked writing cannot change what is drawn."""

    persons: random.Random
    enterprises: random.Random
    records: random.Random
    partners: random.Random


def streams(seed: int) -> Streams:
    """The random streams of a demo city, all derived from `seed`."""
    return Streams(*(random.Random(f"xinyi-demo:{seed}:{part}") for part in Streams._fields))


@dataclass(frozen=True, slots=True)
class DemoCity:
    persons: list[PersonSeed]
    enterprises: list[EnterpriseSeed]
    records: list[RecordSeed]


def generate_city(*, seed: int, persons: int, enterprises: int) -> DemoCity:
    """The whole demo city in memory (what `seed_demo_city` writes for the same arguments)."""
    rngs = streams(seed)
    people = list(generate_persons(rngs.persons, persons))
    firms = list(generate_enterprises(rngs.enterprises, enterprises,
                                      person_birth_years=[p.birth_date.year for p in people]))
    return DemoCity(people, firms, list(generate_records(rngs.records, people, firms)))


# --------------------------------------------------------------------------- partners and operator


@dataclass(frozen=True, slots=True)
class PartnerSpec:
    name: str
    kind: str
    scenario: str | None = None
    source: str | None = None  # DATA_SOURCES key for data sources


DEMO_PARTNERS: tuple[PartnerSpec, ...] = (
    PartnerSpec("嘉兴银行", "bank"),
    PartnerSpec("嘉兴南湖旅游区", "merchant", scenario="travel"),  # 信易游
    PartnerSpec("嘉兴市公共自行车服务中心", "merchant", scenario="transit"),  # 信易行
    PartnerSpec("嘉兴禾城汽车租赁有限公司", "merchant", scenario="rental"),  # 信易租
    PartnerSpec("嘉兴市第一医院", "merchant", scenario="medical"),  # 信易医
    PartnerSpec("嘉兴月河客栈", "merchant", scenario="lodging"),  # 信易住
    PartnerSpec("嘉兴市图书馆", "merchant", scenario="reading"),  # 信易阅
    *(PartnerSpec(s.name, "data_source", source=s.key) for s in DATA_SOURCES.values()),
    PartnerSpec("嘉兴市住房和城乡建设局", "government"),
    PartnerSpec("汉中市公共信用信息平台", "city_peer"),
)

OPERATOR_USERNAME = "operator"
PARTNER_ADMIN_USERNAME = "partner-admin"
# The demo operators: an officer (lists, objections, scenarios, statistics) and a partner_admin (partners and
# their webhooks), so every operator route of the README can be walked.
DEMO_OPERATORS: tuple[tuple[str, str, str], ...] = (
    (OPERATOR_USERNAME, "officer", "信用办演示账号"),
    (PARTNER_ADMIN_USERNAME, "partner_admin", "合作机构管理演示账号"),
)
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


class _PlannedPartner(NamedTuple):
    spec: PartnerSpec
    client_id: str
    exists: bool


async def _plan_partners(rng: random.Random) -> list[_PlannedPartner]:
    """The client id of every demo partner: the existing partner's, or the one the seed will give it.

    Known before anything is created, so records can name their data sources while partners are only
    created once the registry load has succeeded (a failed seed never swallows a one-time secret).
    """
    planned: list[_PlannedPartner] = []
    for spec in DEMO_PARTNERS:
        # Drawn for every partner, whether it exists or not, so client ids do not depend on what exists.
        client_id = f"{spec.kind.replace('_', '')[:8]}_{rng.getrandbits(64):016x}"
        row = await Partner.select(Partner.client_id).where(
            ((Partner.name == spec.name) & (Partner.kind == spec.kind)) | (Partner.client_id == client_id)
        ).first()
        planned.append(_PlannedPartner(spec, row["client_id"] if row else client_id, row is not None))
    return planned


async def _create_partners(planned: list[_PlannedPartner], *, create: bool) -> list[dict[str, str | None]]:
    """Create the planned partners that do not exist yet (if `create`); report rows for the CLI.

    Returns:
        One row per partner that exists now, with the client secret of those created by this call
        (None for partners that already existed).
    """
    report: list[dict[str, str | None]] = []
    for spec, client_id, exists in planned:
        secret: str | None = None
        if not exists:
            if not create:
                continue
            issued = await create_partner(name=spec.name, kind=spec.kind, scenario=spec.scenario,
                                          client_id=client_id)
            secret = issued.client_secret
        report.append({"name": spec.name, "kind": spec.kind, "client_id": client_id,
                       "client_secret": secret, "scenario": spec.scenario})
    return report


async def _ensure_operators() -> list[dict[str, str | None]]:
    """Create the demo operators that do not exist yet; report each (password only for those created now)."""
    report: list[dict[str, str | None]] = []
    for username, role, display_name in DEMO_OPERATORS:
        password: str | None = None
        if not await Operator.exists().where(Operator.username == username):
            password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(20))
            await create_operator(username=username, password=password, role=role, display_name=display_name)
        report.append({"username": username, "password": password, "role": role})
    return report


@dataclass(frozen=True, slots=True)
class DemoCitizen:
    """A registry person of the demo city a newcomer can log in as and bind (synthetic data, dev only)."""

    phone: str
    name: str
    id_number: str
    enterprise_uscc: str  # an enterprise whose legal representative (法定代表人) this person is
    enterprise_name: str


async def demo_citizen(*, cipher: FieldCipher) -> DemoCitizen | None:
    """The same person every time for a given registry: the legal representative of the first active enterprise
    who has a phone and no record that bars them (失信被执行人, serious negative records). None for a registry
    without one (e.g. seeded with no enterprises)."""
    candidates = await Enterprise.select(
        Enterprise.name, Enterprise.uscc_enc, Enterprise.legal_representative.id,
        Enterprise.legal_representative.name, Enterprise.legal_representative.id_number_enc,
        Enterprise.legal_representative.phone_enc,
    ).where(
        Enterprise.legal_representative.is_not_null() & (Enterprise.status == "active")
        & Enterprise.legal_representative.phone_enc.is_not_null()
    ).order_by(Enterprise._meta.primary_key).limit(50)
    for row in candidates:
        person = row["legal_representative.id"]
        barred = await CreditRecord.exists().where(
            (CreditRecord.subject_kind == "person") & (CreditRecord.person == person)
            & ((CreditRecord.category == "dishonest_executee") | (CreditRecord.severity == "serious")))
        if barred:
            continue
        return DemoCitizen(
            phone=cipher.decrypt("phone", row["legal_representative.phone_enc"]),
            name=row["legal_representative.name"],
            id_number=cipher.decrypt("id_number", row["legal_representative.id_number_enc"]),
            enterprise_uscc=cipher.decrypt("uscc", row["uscc_enc"]), enterprise_name=row["name"])
    return None


# --------------------------------------------------------------------------- bulk writing

_PERSON_COLUMNS = ("public_id", "name", "id_number_enc", "id_number_hash", "gender", "birth_date",
                   "region_code", "phone_hash", "phone_enc", "created_at")
_ENTERPRISE_COLUMNS = ("public_id", "name", "uscc_enc", "uscc_hash", "industry", "region_code",
                       "registered_on", "registered_capital_fen", "legal_representative", "status",
                       "created_at")
_RECORD_COLUMNS = ("public_id", "subject_kind", "person", "enterprise", "category", "polarity", "severity",
                   "dimension", "title", "source", "source_ref", "occurred_at", "status", "created_at",
                   "updated_at")
_SEEDED_TABLES = ("persons", "enterprises", "credit_records")

Row = tuple[Any, ...]


class _BulkWriter(ABC):
    """Writes rows of the seeded tables inside the one open transaction."""

    # Generate the next batch in a thread while this one is written. Pays off when the database works
    # in another process (PostgreSQL: about a quarter faster); SQLite writes in-process under the same
    # GIL, where it measured no gain.
    prefetch = False

    @abstractmethod
    def day(self, value: date) -> Any:
        """A Date column value as the driver wants it."""

    @abstractmethod
    def moment(self, value: datetime) -> Any:
        """A Timestamptz column value (an aware UTC datetime) as the driver wants it."""

    @abstractmethod
    async def insert(self, table: str, columns: Sequence[str], rows: list[Row]) -> None: ...

    @abstractmethod
    async def insert_returning_ids(self, table: str, columns: Sequence[str], rows: list[Row]) -> dict[str, int]:
        """Insert rows whose first column is `public_id`; return their database ids by public id."""


class _PostgresWriter(_BulkWriter):
    prefetch = True

    def __init__(self, connection: Any) -> None:
        self._conn = connection

    def day(self, value: date) -> Any:
        return value

    def moment(self, value: datetime) -> Any:
        return value

    async def insert(self, table: str, columns: Sequence[str], rows: list[Row]) -> None:
        await self._conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def insert_returning_ids(self, table: str, columns: Sequence[str], rows: list[Row]) -> dict[str, int]:
        await self.insert(table, columns, rows)
        # Table names come from this module, never from input.
        found = await self._conn.fetch(
            f"SELECT public_id, id FROM {table} WHERE public_id = ANY($1::varchar[])",  # noqa: S608
            [row[0] for row in rows],
        )
        return {r["public_id"]: r["id"] for r in found}


class _SQLiteWriter(_BulkWriter):
    def __init__(self, connection: Any) -> None:
        self._conn = connection

    def day(self, value: date) -> Any:
        return value.isoformat()

    def moment(self, value: datetime) -> Any:
        # The text Piccolo's SQLite adapter writes for an aware datetime: UTC, "YYYY-MM-DD HH:MM:SS+00:00".
        return str(value.astimezone(UTC))

    async def insert(self, table: str, columns: Sequence[str], rows: list[Row]) -> None:
        # Table and column names come from this module; values are bound parameters.
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
        await self._conn.executemany(sql, rows)

    async def insert_returning_ids(self, table: str, columns: Sequence[str], rows: list[Row]) -> dict[str, int]:
        # The transaction holds SQLite's write lock (BEGIN IMMEDIATE), so every row above the previous
        # maximum id is one of ours: no need to look thousands of public ids up one by one.
        async with self._conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}") as cursor:  # noqa: S608
            (before,) = await cursor.fetchone()
        await self.insert(table, columns, rows)
        async with self._conn.execute(f"SELECT public_id, id FROM {table} WHERE id > ?", (before,)) as cursor:  # noqa: S608
            return dict(await cursor.fetchall())


@asynccontextmanager
async def _open_writer(engine: Engine[Any]) -> AsyncIterator[_BulkWriter]:
    """A dedicated connection in one transaction: committed if the body succeeds, rolled back if not."""
    if isinstance(engine, PostgresEngine):
        # A connection of its own rather than one of the pool: COPY holds it for the whole seed.
        conn = await engine.get_new_connection()
        try:
            async with conn.transaction():
                yield _PostgresWriter(conn)
        finally:
            await conn.close()
    elif isinstance(engine, SQLiteEngine):
        # Autocommit mode (no implicit transactions) so that the explicit BEGIN IMMEDIATE below rules.
        conn = await aiosqlite.connect(**{**engine.connection_kwargs, "isolation_level": None})
        try:
            await conn.execute("PRAGMA foreign_keys = 1")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteWriter(conn)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
        finally:
            await conn.close()
    else:
        raise TypeError(f"cannot bulk-load into {type(engine).__name__}")


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


async def _registry_is_empty() -> bool:
    for table in (Person, Enterprise, CreditRecord):
        if await table.exists():
            return False
    return True


def _record_row(writer: _BulkWriter, record: RecordSeed, person_id: int | None, enterprise_id: int | None,
                sources: dict[str, str]) -> Row:
    return (record.public_id, record.subject_kind, person_id, enterprise_id, record.category,
            record.polarity, record.severity, record.dimension, record.title, sources[record.source],
            record.source_ref, writer.moment(record.occurred_at), record.status,
            writer.moment(record.created_at), writer.moment(record.updated_at))


class _PersonBatch(NamedTuple):
    persons: list[PersonSeed]
    rows: list[Row]  # persons rows, encrypted, ready to insert
    records: list[RecordSeed]


async def _load_registry(
    writer: _BulkWriter, rngs: Streams, *, persons: int, enterprises: int, cipher: FieldCipher,
    sources: dict[str, str],
) -> tuple[int, int, int]:
    """Generate and write persons (with their records), then enterprises (with theirs)."""
    loaded_at = writer.moment(REGISTRY_LOADED_AT)
    records = RecordGenerator(rngs.records)
    people = generate_persons(rngs.persons, persons)

    def produce(start: int) -> _PersonBatch | None:
        # With `writer.prefetch` this runs in a worker thread while the database writes the previous
        # batch; calls never overlap and come in order, so the streams are drawn exactly as inline.
        chunk = list(itertools.islice(people, CHUNK_SIZE))
        if not chunk:
            return None
        rows: list[Row] = []
        for p in chunk:
            phone_hash = cipher.lookup_hash("phone", p.phone) if p.phone else None
            phone_enc = cipher.encrypt("phone", p.phone) if p.phone else None
            rows.append((p.public_id, p.name, cipher.encrypt("id_number", p.id_number),
                         cipher.lookup_hash("id_number", p.id_number), p.gender, writer.day(p.birth_date),
                         p.region_code, phone_hash, phone_enc, loaded_at))
        seeds = [r for i, p in enumerate(chunk, start=start) for r in records.for_person(i, p)]
        return _PersonBatch(chunk, rows, seeds)

    person_ids: array[int] = array("q")
    birth_years: array[int] = array("H")
    n_records = 0
    pending: asyncio.Future[_PersonBatch | None] | None = None
    batch = produce(0)
    try:
        while batch is not None:
            start = len(person_ids) + len(batch.persons)
            if writer.prefetch:
                pending = asyncio.ensure_future(asyncio.to_thread(produce, start))
            ids = await writer.insert_returning_ids("persons", _PERSON_COLUMNS, batch.rows)
            person_ids.extend(ids[p.public_id] for p in batch.persons)
            birth_years.extend(p.birth_date.year for p in batch.persons)
            record_rows = [_record_row(writer, r, person_ids[r.subject], None, sources) for r in batch.records]
            await writer.insert("credit_records", _RECORD_COLUMNS, record_rows)
            n_records += len(record_rows)
            logger.info("demo seed: %d persons, %d records written", len(person_ids), n_records)
            batch = await pending if pending is not None else produce(start)
            pending = None
    finally:
        # A worker thread cannot be cancelled: let a batch in progress finish before unwinding.
        if pending is not None and not pending.done():
            await asyncio.wait([pending])

    n_enterprises = 0
    firms = generate_enterprises(rngs.enterprises, enterprises, person_birth_years=birth_years)
    for firm_batch in _batched(firms, CHUNK_SIZE):
        rows = [
            (e.public_id, e.name, cipher.encrypt("uscc", e.uscc), cipher.lookup_hash("uscc", e.uscc), e.industry,
             e.region_code, writer.day(e.registered_on), e.registered_capital_fen,
             None if e.representative is None else person_ids[e.representative], "active", loaded_at)
            for e in firm_batch
        ]
        ids = await writer.insert_returning_ids("enterprises", _ENTERPRISE_COLUMNS, rows)
        record_rows = [
            _record_row(writer, r, None, ids[e.public_id], sources)
            for i, e in enumerate(firm_batch, start=n_enterprises)
            for r in records.for_enterprise(i, e)
        ]
        await writer.insert("credit_records", _RECORD_COLUMNS, record_rows)
        n_enterprises += len(firm_batch)
        n_records += len(record_rows)
        logger.info("demo seed: %d enterprises, %d records written", n_enterprises, n_records)
    return len(person_ids), n_enterprises, n_records


# --------------------------------------------------------------------------- entry point


@dataclass
class SeedReport:
    """What a seed run did, with the credentials it issued (shown once, never stored in clear)."""

    persons: int
    enterprises: int
    records: int
    seconds: float
    partners: list[dict[str, str | None]]  # name, kind, client_id, client_secret, scenario
    operators: list[dict[str, str | None]]  # username, password (None if it already existed), role
    seed: int | None = None
    skipped: str | None = None  # why the registry was left as it was
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        """Human-readable summary for the CLI. Prints secrets created by this run, nothing else sensitive."""
        lines: list[str] = []
        if self.skipped:
            lines.append(f"demo city: registry left unchanged ({self.skipped})")
        else:
            lines.append(
                f"demo city (seed {self.seed}): {self.persons:,} persons, {self.enterprises:,} enterprises, "
                f"{self.records:,} credit records in {self.seconds:.1f} s"
            )
        if self.partners:
            lines += ["", "partners:"]
            width = max(len(p["name"] or "") for p in self.partners)
            for p in self.partners:
                kind = p["kind"] or ""
                if p["scenario"]:
                    kind += f"/{p['scenario']}"
                secret = p["client_secret"] or "(existing partner, secret not shown)"
                # Pad by display width: CJK characters take two columns.
                name = p["name"] or ""
                lines.append(f"  {name}{' ' * 2 * (width - len(name))}  {kind:<20} {p['client_id'] or '':<26} {secret}")
        if self.operators:
            lines += ["", "operators:"]
            for op in self.operators:
                password = op.get("password") or "(existing account, password not shown)"
                lines.append(f"  {op['username']:<14} {op['role']:<14} {password}")
        if any(p["client_secret"] for p in self.partners) or any(op.get("password") for op in self.operators):
            lines += ["", "secrets and passwords are shown only once: store them now."]
        lines += self.notes
        return "\n".join(lines)


async def _sync_lists() -> None:
    """Put subjects whose seeded records call for it (e.g. 失信被执行人) on the matching credit lists."""
    rows = await CreditRecord.select(CreditRecord.subject_kind, CreditRecord.person, CreditRecord.enterprise,
                                     CreditRecord.source).where(
        CreditRecord.category.is_in(list(RECORD_LISTS)) & CreditRecord.status.is_in(list(LISTING_RECORD_STATUSES)))
    for row in rows:
        subject = row["person"] if row["subject_kind"] == "person" else row["enterprise"]
        await sync_record_lists(subjects=[(row["subject_kind"], subject)], list_codes=RECORD_LISTS.values(),
                                source=row["source"])


async def plan_partners(seed: int) -> list[_PlannedPartner]:
    """The demo partners (and their client ids) a seed will create; data-source records name them."""
    return await _plan_partners(streams(seed).partners)


async def finish_seed(planned: list[_PlannedPartner], *, with_accounts: bool
                      ) -> tuple[list[dict[str, str | None]], list[dict[str, str | None]]]:
    """What every seed ends with: catalogs (measures, scenarios), the demo partners and their products,
    the demo operators. Idempotent."""
    await seed_default_measures()
    await seed_default_scenarios()
    partners = await _create_partners(planned, create=with_accounts)
    for bank in (p for p in partners if p["kind"] == "bank"):  # the demo bank's products (金融超市)
        await seed_demo_products(bank_client_id=str(bank["client_id"]), bank_name=str(bank["name"]))
    operators = await _ensure_operators() if with_accounts else []
    return partners, operators


async def sync_lists() -> None:
    """Credit-list memberships called for by the seeded records (e.g. 失信被执行人)."""
    await _sync_lists()


async def seed_demo_city(
    *, persons: int, enterprises: int, seed: int, cipher: FieldCipher, engine: Engine[Any],
    with_accounts: bool = True,
) -> SeedReport:
    """Fill an empty registry with a deterministic demo city and create the demo partners and operator.

    Args:
        persons: citizens to generate (each with about seven credit records).
        enterprises: enterprises to generate (each with about eight credit records).
        seed: the same seed always gives the same persons, enterprises and records (public ids included).
        cipher: encrypts id numbers, USCCs and phones and computes their lookup hashes.
        engine: the Piccolo engine the tables are bound to (PostgreSQL or SQLite), already migrated.
        with_accounts: also create the demo partners and the operator (after the registry load, so a
            failed load issues no secret). Partners and the operator that already exist (same name and
            kind / same username) are kept and reported without secrets. Records always name the data
            sources' client ids: the existing partners', or the ids the seed gives them.

    Returns:
        Counts, duration and the credentials issued by this run. If the registry already holds persons,
        enterprises or records, nothing is generated and `skipped` says so.
    """
    started = time.perf_counter()
    rngs = streams(seed)
    planned = await _plan_partners(rngs.partners)
    sources = {p.spec.source: p.client_id for p in planned if p.spec.source}
    counts: tuple[int, int, int] | None = None
    if await _registry_is_empty():
        async with _open_writer(engine) as writer:
            counts = await _load_registry(writer, rngs, persons=persons, enterprises=enterprises,
                                          cipher=cipher, sources=sources)
        if isinstance(engine, PostgresEngine):
            # Fresh statistics so the planner uses the new indexes right away, not after autovacuum.
            await engine.run_ddl(f"ANALYZE {', '.join(_SEEDED_TABLES)}")
        await _sync_lists()
    partners, operators = await finish_seed(planned, with_accounts=with_accounts)
    if counts is None:
        logger.info("demo seed skipped: the registry is not empty")
        return SeedReport(0, 0, 0, time.perf_counter() - started, partners, operators, seed=seed,
                          skipped="the registry already holds data; the demo city is only seeded into an "
                                  "empty database")
    seconds = time.perf_counter() - started
    logger.info("demo seed done: %d persons, %d enterprises, %d records in %.1f s", *counts, seconds)
    return SeedReport(*counts, seconds, partners, operators, seed=seed)


__all__ = [
    "DATA_SOURCES",
    "DEMO_OPERATORS",
    "DEMO_PARTNERS",
    "REFERENCE_TIME",
    "DemoCitizen",
    "DemoCity",
    "EnterpriseSeed",
    "PersonSeed",
    "RecordGenerator",
    "RecordSeed",
    "SeedReport",
    "demo_citizen",
    "generate_city",
    "generate_enterprises",
    "generate_persons",
    "generate_records",
    "seed_demo_city",
    "streams",
]
