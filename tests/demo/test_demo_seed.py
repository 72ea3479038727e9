"""The demo-city generators: valid identifiers, uniqueness, determinism and realistic records (no database)."""

from __future__ import annotations

import random
import shlex
from collections import Counter
from datetime import UTC, date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from credit.catalog import CATEGORIES, RECORD_STATUSES, SEVERITIES
from demo.city import DemoCity, generate_city
from demo.enterprises import generate_enterprises
from demo.partners import DEMO_PARTNERS
from demo.people import generate_persons
from demo.records import DATA_SOURCES, generate_records
from demo.reference import REFERENCE_TIME
from demo.seed import SeedReport
from partners.scopes import PARTNER_KINDS

AGE_DAY = date(2026, 1, 1)
WINDOW_START = REFERENCE_TIME.replace(year=REFERENCE_TIME.year - 5)


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate_city(seed=7, persons=3000, enterprises=300)


def _age(birth: date) -> int:
    return AGE_DAY.year - birth.year - ((AGE_DAY.month, AGE_DAY.day) < (birth.month, birth.day))


def test_every_id_number_is_valid_and_consistent(city: DemoCity) -> None:
    for p in city.persons:
        assert ric.validate(p.id_number) == p.id_number
        assert ric.get_birth_date(p.id_number) == p.birth_date
        assert p.region_code == p.id_number[:6]
        assert p.region_code[:4] in ("3304", "3321", "6107", "6123")  # 嘉兴 and 汉中, current and pre-reform
        # Odd order code for men, even for women.
        assert (int(p.id_number[14:17]) % 2 == 1) == (p.gender == "M")
        assert 18 <= _age(p.birth_date) <= 80


def test_identifiers_and_phones_are_unique(city: DemoCity) -> None:
    assert len({p.id_number for p in city.persons}) == len(city.persons)
    phones = [p.phone for p in city.persons if p.phone is not None]
    assert len(set(phones)) == len(phones)
    assert all(len(ph) == 11 and ph.isdigit() and ph[0] == "1" and ph[1] in "3456789" for ph in phones)
    assert len({e.uscc for e in city.enterprises}) == len(city.enterprises)
    assert len({e.name for e in city.enterprises}) == len(city.enterprises)
    public_ids = [p.public_id for p in city.persons] + [e.public_id for e in city.enterprises]
    public_ids += [r.public_id for r in city.records]
    assert len(set(public_ids)) == len(public_ids)
    assert all(len(pid) <= 32 for pid in public_ids)


def test_names_look_chinese(city: DemoCity) -> None:
    assert all(2 <= len(p.name) <= 4 and all("\u4e00" <= ch <= "\u9fff" for ch in p.name) for p in city.persons)
    assert all(e.name.endswith("公司") for e in city.enterprises)
    assert len({p.name[0] for p in city.persons}) > 50  # a realistic spread of surnames


def test_every_uscc_is_valid_and_plausible(city: DemoCity) -> None:
    for e in city.enterprises:
        assert uscc.validate(e.uscc) == e.uscc
        assert e.uscc.startswith("91")
        assert e.uscc[2:8] == e.region_code
        assert e.region_code.startswith("3304")
        assert e.uscc[8:10] == "MA" or e.registered_on < date(2015, 10, 1)
        assert e.industry in "ACEFGHIKLMO"
        assert 0 < e.registered_capital_fen <= 1_000_000_000 * 100  # BIGINT column; the demo declares up to 10亿元
        assert REFERENCE_TIME.date() - timedelta(days=26 * 366) < e.registered_on < REFERENCE_TIME.date()
        assert e.representative is not None
        assert 0 <= e.representative < len(city.persons)
    industries = Counter(e.industry for e in city.enterprises)
    assert industries.most_common(1)[0][0] == "C"  # manufacturing dominates in 嘉兴


def test_records_respect_the_catalog(city: DemoCity) -> None:
    sources: dict[str, set[str]] = {}
    for r in city.records:
        category = CATEGORIES[r.category]
        assert r.subject_kind in category.subjects
        assert r.polarity == category.polarity
        assert r.dimension == category.dimension
        assert r.severity in SEVERITIES
        assert r.status in RECORD_STATUSES
        assert r.source in DATA_SOURCES
        assert r.source_ref not in sources.setdefault(r.source, set())
        sources[r.source].add(r.source_ref)
        assert r.title
        assert len(r.title) <= 200
        assert len(r.source_ref) <= 128
        assert r.occurred_at.tzinfo == UTC
        assert r.created_at.tzinfo == UTC
        assert WINDOW_START <= r.occurred_at < REFERENCE_TIME
        assert r.occurred_at <= r.created_at <= r.updated_at <= REFERENCE_TIME
        if r.status != "active":
            assert r.status == "expired"
            assert r.polarity < 0
        if r.category == "dishonest_executee":
            assert r.severity == "serious"
        subjects = city.persons if r.subject_kind == "person" else city.enterprises
        assert 0 <= r.subject < len(subjects)
        if r.subject_kind == "person":
            # Only adults have records: at least 18 years (6574 days at the fewest) after birth.
            assert (r.occurred_at.date() - city.persons[r.subject].birth_date).days >= 6574
        else:
            assert r.occurred_at.date() > city.enterprises[r.subject].registered_on


def test_records_spread_is_realistic(city: DemoCity) -> None:
    person_records = [r for r in city.records if r.subject_kind == "person"]
    assert 5 <= len(person_records) / len(city.persons) <= 10
    negative = sum(r.polarity < 0 for r in city.records)
    assert 0.05 < negative / len(city.records) < 0.3  # mostly positive, a minority negative
    categories = Counter(r.category for r in city.records)
    assert set(categories) == set(CATEGORIES)  # every category appears at this size
    assert categories["dishonest_executee"] < categories["utility_arrears"] < categories["contract_fulfilment"]
    years = Counter(r.occurred_at.year for r in city.records)
    assert len(years) >= 5


def test_data_sources_are_demo_partners() -> None:
    data_sources = {p.source for p in DEMO_PARTNERS if p.kind == "data_source"}
    assert data_sources == set(DATA_SOURCES)
    assert all(p.kind in PARTNER_KINDS for p in DEMO_PARTNERS)
    scenarios = {p.scenario for p in DEMO_PARTNERS if p.kind == "merchant"}
    assert scenarios == {"travel", "transit", "rental", "medical", "lodging", "reading"}
    assert {"bank", "government", "city_peer"} <= {p.kind for p in DEMO_PARTNERS}


def test_same_seed_same_city_other_seed_other_city() -> None:
    a = generate_city(seed=3, persons=200, enterprises=20)
    b = generate_city(seed=3, persons=200, enterprises=20)
    c = generate_city(seed=4, persons=200, enterprises=20)
    assert a == b
    assert [p.id_number for p in a.persons] != [p.id_number for p in c.persons]
    assert [e.uscc for e in a.enterprises] != [e.uscc for e in c.enterprises]
    assert [r.public_id for r in a.records] != [r.public_id for r in c.records]


def test_a_larger_city_starts_with_the_smaller_one() -> None:
    """Each kind of row has its own stream: more enterprises does not change the persons, and so on."""
    small = generate_city(seed=5, persons=100, enterprises=10)
    large = generate_city(seed=5, persons=100, enterprises=30)
    assert small.persons == large.persons
    assert small.enterprises == large.enterprises[:10]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**63), n=st.integers(min_value=1, max_value=40))
def test_generators_are_valid_and_deterministic_for_any_seed(seed: int, n: int) -> None:
    persons = list(generate_persons(random.Random(seed), n))
    assert persons == list(generate_persons(random.Random(seed), n))
    assert all(ric.is_valid(p.id_number) for p in persons)
    assert len({p.id_number for p in persons}) == n
    years = [p.birth_date.year for p in persons]
    firms = list(generate_enterprises(random.Random(seed), n, person_birth_years=years))
    assert firms == list(generate_enterprises(random.Random(seed), n, person_birth_years=years))
    assert all(uscc.is_valid(e.uscc) for e in firms)
    records = list(generate_records(random.Random(seed), persons, firms))
    assert records == list(generate_records(random.Random(seed), persons, firms))
    assert all(r.subject_kind in CATEGORIES[r.category].subjects for r in records)


def test_enterprises_without_persons_have_no_representative() -> None:
    firms = list(generate_enterprises(random.Random(1), 5, person_birth_years=[]))
    assert all(e.representative is None for e in firms)


def test_report_shows_new_secrets_only() -> None:
    report = SeedReport(
        persons=10, enterprises=2, records=70, seconds=1.25,
        partners=[
            {"name": "嘉兴银行", "kind": "bank", "client_id": "bank_1", "client_secret": "s3cr3t", "scenario": None},
            {"name": "嘉兴市图书馆", "kind": "merchant", "client_id": "merchant_2", "client_secret": None,
             "scenario": "reading"},
        ],
        operators=[{"username": "operator", "password": "p" * 20, "role": "officer"},
                   {"username": "partner-admin", "password": "q" * 20, "role": "partner_admin"}],
        seed=1,
    )
    text = report.render()
    assert "s3cr3t" in text
    assert "p" * 20 in text
    assert "q" * 20 in text
    assert "partner_admin" in text
    assert "merchant/reading" in text
    assert "secret not shown" in text
    assert "10 persons" in text
    skipped = SeedReport(0, 0, 0, 0.1, [], [{"username": "operator", "password": None, "role": "officer"}],
                         skipped="the registry already holds data")
    assert "unchanged" in skipped.render()
    assert "password not shown" in skipped.render()


def test_tour_exports_hold_only_what_this_run_issued() -> None:
    from demo import DemoCitizen
    from demo.tour import tour_exports

    report = SeedReport(
        persons=1, enterprises=1, records=0, seconds=0.1,
        partners=[{"name": "嘉兴银行", "kind": "bank", "client_id": "bank_1", "client_secret": "s3cr3t",
                   "scenario": None},
                  {"name": "嘉兴市中级人民法院", "kind": "data_source", "client_id": "ds_2", "client_secret": None,
                   "scenario": None}],
        operators=[{"username": "partner-admin", "password": "pw d'x", "role": "partner_admin"}])
    citizen = DemoCitizen(phone="13800138000", name="欧阳 明", id_number="11010519491231002X",
                          enterprise_uscc="91330402MA2B8TQ532", enterprise_name="演示公司")
    lines = tour_exports(api_url="http://127.0.0.1:8000", report=report, citizen=citizen)
    exported = dict(shlex.split(line)[1].split("=", 1) for line in lines)
    assert all(line.startswith("export ") for line in lines)
    assert exported["API"] == "http://127.0.0.1:8000"
    assert exported["BANK_SECRET"] == "s3cr3t"
    assert exported["SOURCE_ID"] == "ds_2"
    assert "SOURCE_SECRET" not in exported  # an existing partner's secret is never known again
    assert exported["PARTNER_ADMIN_PASSWORD"] == "pw d'x"  # quoted for the shell
    assert exported["CITIZEN_NAME"] == "欧阳 明"
    assert exported["USCC"] == "91330402MA2B8TQ532"
    rerun = dict(shlex.split(line)[1].split("=", 1)
                 for line in tour_exports(api_url="http://127.0.0.1:8000", report=None, citizen=citizen))
    assert not any(name.endswith(("_SECRET", "_PASSWORD")) for name in rerun)
