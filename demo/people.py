"""The demo city's citizens: a 嘉兴 registry with migrants from 汉中, valid 公民身份号码 and unique mobiles.

Pure: the same random stream always yields the same persons (public ids included).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import date
from functools import cache
from typing import NamedTuple

from stdnum.cn import ric

from demo.reference import public_id

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
            public_id=public_id(rng, "psn"),
            name=surname + given,
            id_number=number,
            gender="M" if male else "F",
            birth_date=birth,
            region_code=region,
            phone=phone,
        )
