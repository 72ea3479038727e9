"""The 信易+ catalog: scenarios and their benefit rules, seeded with defaults and managed by operators.

No HTTP objects here. Operators create and change scenarios and benefits (`/v1/admin/...`); every rule
is validated as a whole on each write. Reads on hot paths (merchant verification, redemption, credit orders,
the citizen's own list) go through `CATALOG`, a small in-process cache, so a verification never builds ORM
objects for the catalog.

Freshness, the bound: no worker ever acts on a catalog read more than `CATALOG_MAX_AGE_SECONDS` (5 s) before
the request arrived. An operator's change therefore applies on every worker of every process within 5 s of
its commit, and at once on the worker that made it (a write here drops that worker's cache). A snapshot is
re-read in the background once it is 4 s old, so a busy worker does not wait for it; a worker that was
idle longer than the bound makes its next caller wait for a fresh read (three small queries) rather than
answer from an old one. The bound holds for every path alike: verification, redemption, credit orders and
the listings. A redemption or order whose verification (made on another worker) names a benefit or merchant
this worker's snapshot lacks looks at a catalog read after that verification before refusing: at most one
read, however often a merchant that was taken off the benefit retries. Redemption and credit orders do
not depend on the cache for the benefit's status, validity window and quota or for its scenario's status
at all (they re-read them in their own transaction), so a paused or retired benefit, or one of a paused
scenario, stops at once on every worker.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from piccolo.query.mixins import OnConflictAction

from core import clock
from core.db import as_utc
from core.errors import Conflict, NotFound, Unprocessable
from credit.identity import new_public_id
from credit.scoring import TIERS
from partners.tables import Partner
from scenarios.schemas import AdminBenefit, AdminScenario, CatalogBenefit, CatalogScenario
from scenarios.tables import Benefit, Scenario

CATALOG_MAX_AGE_SECONDS: Final = 5.0
"""The bound: no request acts on a catalog read longer ago than this (changes reach every worker within it)."""

KINDS: Final = ("percent_discount", "fixed_discount", "deposit_waiver", "pay_later_limit", "extra_quota")
PERIODS: Final = ("day", "week", "month", "year", "once")
SCENARIO_STATUSES: Final = ("active", "paused")
BENEFIT_STATUSES: Final = ("active", "paused", "retired")
TIER_NAMES: Final = tuple(name for name, _ in TIERS)  # best first: AAA, AA, A, B, C

MAX_FEN: Final = 100_000_000  # 1,000,000 yuan: far above any discount, deposit or pay-later line
MAX_EXTRA: Final = 1_000
MAX_QUOTA: Final = 10_000
# A validity window lies within these bounds: far-off dates are typing mistakes, and the year-9999 end of
# `datetime` would overflow when shown in city time (a 500 for every citizen listing their benefits).
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC)
SCENARIO_CODE = re.compile(r"^[a-z][a-z0-9_]{1,15}$")
PUBLIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What a benefit or redemption id can look like; anything else (a NUL byte, a 10 kB path) is simply unknown."""

_BENEFIT_PK = Benefit._meta.primary_key


# ---------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    code: str
    name: str
    description: str
    status: str
    sort_order: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BenefitRule:
    """One benefit and the rule deciding who gets it. `value` is read by `kind` (see scenarios.tables)."""

    pk: int
    id: str
    scenario: str
    name: str
    description: str
    kind: str
    value: int
    min_tier: str | None
    min_score: int | None
    quota_per_period: int  # 0 = unlimited
    period: str
    merchants: tuple[str, ...]  # participating merchant client ids; empty = every merchant of the scenario
    valid_from: datetime
    valid_until: datetime | None
    status: str
    created_at: datetime
    updated_at: datetime

    def serves(self, merchant_client_id: str) -> bool:
        return not self.merchants or merchant_client_id in self.merchants


_SCENARIO_COLUMNS = (Scenario.code, Scenario.name, Scenario.description, Scenario.status, Scenario.sort_order,
                     Scenario.created_at, Scenario.updated_at)
_BENEFIT_COLUMNS = (_BENEFIT_PK, Benefit.public_id, Benefit.scenario, Benefit.name, Benefit.description,
                    Benefit.kind, Benefit.value, Benefit.min_tier, Benefit.min_score, Benefit.quota_per_period,
                    Benefit.period, Benefit.merchants, Benefit.valid_from, Benefit.valid_until, Benefit.status,
                    Benefit.created_at, Benefit.updated_at)


def _scenario(row: Mapping[str, Any]) -> ScenarioInfo:
    return ScenarioInfo(code=row["code"], name=row["name"], description=row["description"], status=row["status"],
                        sort_order=int(row["sort_order"]), created_at=as_utc(row["created_at"]),
                        updated_at=as_utc(row["updated_at"]))


def _rule(row: Mapping[str, Any]) -> BenefitRule:
    return BenefitRule(
        pk=int(row["id"]), id=row["public_id"], scenario=row["scenario"], name=row["name"],
        description=row["description"], kind=row["kind"], value=int(row["value"]), min_tier=row["min_tier"],
        min_score=None if row["min_score"] is None else int(row["min_score"]),
        quota_per_period=int(row["quota_per_period"]), period=row["period"],
        merchants=tuple(row["merchants"].split()), valid_from=as_utc(row["valid_from"]),
        valid_until=None if row["valid_until"] is None else as_utc(row["valid_until"]), status=row["status"],
        created_at=as_utc(row["created_at"]), updated_at=as_utc(row["updated_at"]))


# ---------------------------------------------------------------- the in-process cache


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """Everything the hot paths need about the catalog, read in one go."""

    scenarios: dict[str, ScenarioInfo]
    benefits: dict[str, BenefitRule]  # by public id, every status
    merchant_names: dict[str, str]  # participating merchants named by any benefit: client id → name
    active: dict[str, tuple[BenefitRule, ...]] = field(default_factory=dict)  # scenario → active benefits

    def scenario_active(self, code: str) -> bool:
        info = self.scenarios.get(code)
        return info is not None and info.status == "active"

    def ordered_scenarios(self) -> list[ScenarioInfo]:
        return sorted(self.scenarios.values(), key=lambda s: (s.sort_order, s.code))

    def merchant_names_of(self, rule: BenefitRule) -> tuple[str, ...]:
        """The rule's participating merchants by name (the client id for one the directory lacks)."""
        return tuple(self.merchant_names.get(m, m) for m in rule.merchants)


async def load_snapshot() -> CatalogSnapshot:
    scenarios = {row["code"]: _scenario(row) for row in await Scenario.select(*_SCENARIO_COLUMNS)}
    rules = [_rule(row) for row in await Benefit.select(*_BENEFIT_COLUMNS).order_by(Benefit.created_at,
                                                                                      Benefit.public_id)]
    merchant_ids = sorted({m for rule in rules for m in rule.merchants})
    names: dict[str, str] = {}
    if merchant_ids:
        names = {row["client_id"]: row["name"] for row in await Partner.select(Partner.client_id, Partner.name).where(
            Partner.client_id.is_in(merchant_ids))}
    active: dict[str, list[BenefitRule]] = {}
    for rule in rules:
        if rule.status == "active":
            active.setdefault(rule.scenario, []).append(rule)
    return CatalogSnapshot(scenarios=scenarios, benefits={r.id: r for r in rules}, merchant_names=names,
                           active={code: tuple(items) for code, items in active.items()})


class CatalogCache:
    """The catalog as this worker last read it, never used once it is older than `max_age_seconds`.

    The age of a snapshot counts from the moment its read started, so whatever was committed before then
    is in it. A caller gets the cached snapshot while it is younger than the bound; from `REFRESH_AT` of the
    bound on, the first caller also starts one re-read in the background for those who come next. A caller
    arriving when the snapshot is older than the bound (an idle worker, or a re-read that failed) waits for
    a read that started no earlier than the bound before it arrived: the one in flight if it is recent
    enough, else a new one. A failed read reaches the callers waiting for it; nobody falls back to an old
    snapshot.
    """

    REFRESH_AT: Final = 0.8

    def __init__(self, max_age_seconds: float = CATALOG_MAX_AGE_SECONDS) -> None:
        self._max_age = max_age_seconds
        self._snapshot: CatalogSnapshot | None = None
        self._read_at = 0.0  # time.monotonic() when the cached snapshot's read started
        self._read_at_wall = 0.0  # the same moment as time.time(), to compare with other workers' timestamps
        self._generation = 0
        self._loading: asyncio.Task[CatalogSnapshot] | None = None
        self._loading_since = 0.0
        self._loading_since_wall = 0.0

    async def get(self, *, read_after: float | None = None) -> CatalogSnapshot:
        """The catalog, read at most `max_age_seconds` ago.

        Args:
            read_after: a wall-clock timestamp (`time.time()`) the read must have started after, when the
                caller knows another worker saw a later catalog (a verification made there); waits for such
                a read unless the cached snapshot already is one.
        """
        arrived = time.monotonic()
        oldest = arrived - self._max_age
        snapshot = self._snapshot
        recent_enough = read_after is None or self._read_at_wall > read_after
        if snapshot is not None and self._read_at > oldest and recent_enough:
            if self._read_at <= arrived - self._max_age * self.REFRESH_AT and not self._reading():
                self._start_read(arrived)
            return snapshot
        task = self._loading
        if (task is None or task.done() or self._loading_since <= oldest
                or (read_after is not None and self._loading_since_wall <= read_after)):
            task = self._start_read(arrived)
        return await asyncio.shield(task)

    def _reading(self) -> bool:
        return self._loading is not None and not self._loading.done()

    def _start_read(self, now: float) -> asyncio.Task[CatalogSnapshot]:
        self._loading_since, self._loading_since_wall = now, time.time()
        task = self._loading = asyncio.ensure_future(self._load(self._generation, now, self._loading_since_wall))
        task.add_done_callback(_consume_exception)
        return task

    async def _load(self, generation: int, started: float, started_wall: float) -> CatalogSnapshot:
        snapshot = await load_snapshot()
        # A read that started before an invalidation may hold what the write replaced: do not keep it;
        # nor replace a snapshot read later than this one.
        if generation == self._generation and started >= self._read_at:
            self._snapshot = snapshot
            self._read_at, self._read_at_wall = started, started_wall
        return snapshot

    def invalidate(self) -> None:
        """Forget the snapshot: the next read on this worker sees the database."""
        self._generation += 1
        self._snapshot = None
        self._read_at = self._read_at_wall = 0.0
        self._loading = None


def _consume_exception(task: asyncio.Future[CatalogSnapshot]) -> None:
    # A failed background re-read is retried by the next caller; only waiting callers see the error.
    if not task.cancelled():
        task.exception()


CATALOG = CatalogCache()


# ---------------------------------------------------------------- defaults


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    code: str
    name: str
    description: str
    sort_order: int


@dataclass(frozen=True, slots=True)
class BenefitSpec:
    id: str
    scenario: str
    name: str
    description: str
    kind: str
    value: int
    min_tier: str | None = None
    min_score: int | None = None
    quota_per_period: int = 0
    period: str = "day"


DEFAULT_SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec("travel", "信易游", "守信游客在景区享受门票折扣、游船优惠等信用礼遇。", 10),
    ScenarioSpec("transit", "信易行", "信用良好市民免押金借用公共自行车，公共交通先乘后付。", 20),
    ScenarioSpec("rental", "信易租", "汽车、充电宝、雨具等租赁免押金。", 30),
    ScenarioSpec("medical", "信易医", "凭信用额度先诊疗后付费，减少排队缴费。", 40),
    ScenarioSpec("lodging", "信易住", "酒店住宿折扣，免押金入住。", 50),
    ScenarioSpec("reading", "信易阅", "图书馆免押金办证，借书册数增加、借阅期限延长。", 60),
)
"""The six 信易+ scenarios of the city plan (个人信用“南湖分”惠民应用场景)."""

DEFAULT_BENEFITS: tuple[BenefitSpec, ...] = (
    BenefitSpec("bnf_travel_ticket_20off", "travel", "景区门票八折", "AA级及以上市民购买合作景区门票享八折优惠。",
                "percent_discount", 20, min_tier="AA", quota_per_period=1, period="day"),
    BenefitSpec("bnf_travel_ticket_2000", "travel", "景区门票立减20元", "A级及以上市民每月一次门票立减20元。",
                "fixed_discount", 2000, min_tier="A", quota_per_period=1, period="month"),
    BenefitSpec("bnf_travel_boat_half", "travel", "南湖游船半价", "信用分750分及以上市民每年一次游船票半价。",
                "percent_discount", 50, min_score=750, quota_per_period=1, period="year"),
    BenefitSpec("bnf_transit_bike_deposit", "transit", "公共自行车免押金", "A级及以上市民免交200元押金借车。",
                "deposit_waiver", 20000, min_tier="A"),
    BenefitSpec("bnf_transit_pay_later", "transit", "公交地铁先乘后付", "AA级及以上市民乘车先乘后付，额度50元。",
                "pay_later_limit", 5000, min_tier="AA"),
    BenefitSpec("bnf_rental_car_deposit", "rental", "租车免押金", "AA级及以上市民租车免交3000元押金，每月2次。",
                "deposit_waiver", 300000, min_tier="AA", quota_per_period=2, period="month"),
    BenefitSpec("bnf_rental_small_deposit", "rental", "充电宝雨伞免押借用", "A级及以上市民免押借用充电宝、雨伞。",
                "deposit_waiver", 9900, min_tier="A"),
    BenefitSpec("bnf_rental_pay_later", "rental", "租金先用后付", "A级及以上市民租充电宝、雨具先用后付，额度500元。",
                "pay_later_limit", 50000, min_tier="A"),
    BenefitSpec("bnf_medical_pay_later", "medical", "先诊疗后付费", "AA级及以上市民就诊先诊疗后付费，额度2000元。",
                "pay_later_limit", 200000, min_tier="AA", quota_per_period=4, period="month"),
    BenefitSpec("bnf_medical_aaa_line", "medical", "AAA级诊疗信用额度", "AAA级市民诊疗信用额度5000元。",
                "pay_later_limit", 500000, min_tier="AAA"),
    BenefitSpec("bnf_lodging_10off", "lodging", "酒店住宿九折", "AA级及以上市民入住合作酒店享九折，每月3次。",
                "percent_discount", 10, min_tier="AA", quota_per_period=3, period="month"),
    BenefitSpec("bnf_lodging_deposit", "lodging", "免押金入住", "A级及以上市民入住免交500元押金。",
                "deposit_waiver", 50000, min_tier="A"),
    BenefitSpec("bnf_reading_more_books", "reading", "借书册数增加", "A级及以上市民每次可多借10册。",
                "extra_quota", 10, min_tier="A"),
    BenefitSpec("bnf_reading_longer_term", "reading", "借阅期限延长", "AA级及以上市民每次借阅期限延长30天。",
                "extra_quota", 30, min_tier="AA"),
    BenefitSpec("bnf_reading_card_deposit", "reading", "免押金办理借书证", "A级及以上市民免交100元押金办证，限一次。",
                "deposit_waiver", 10000, min_tier="A", quota_per_period=1, period="once"),
)
"""The default benefits `seed_default_scenarios` writes (operators change them afterwards)."""

_SEED_VALID_FROM = datetime(2025, 1, 1, tzinfo=UTC)


async def seed_default_scenarios() -> tuple[int, int]:
    """Write the default scenarios and benefits; rows already present (by code / id) are left as operators set them.

    Idempotent and safe to run concurrently (INSERT … ON CONFLICT DO NOTHING).

    Returns:
        How many scenarios and benefits were new.
    """
    now = clock.now()
    scenarios = await Scenario.insert(*(
        Scenario(code=s.code, name=s.name, description=s.description, status="active", sort_order=s.sort_order,
                 created_at=now, updated_at=now) for s in DEFAULT_SCENARIOS)).on_conflict(
        target=Scenario.code, action=OnConflictAction.do_nothing).returning(Scenario.code)
    benefits = await Benefit.insert(*(
        Benefit(public_id=b.id, scenario=b.scenario, name=b.name, description=b.description, kind=b.kind,
                value=b.value, min_tier=b.min_tier, min_score=b.min_score, quota_per_period=b.quota_per_period,
                period=b.period, merchants="", valid_from=_SEED_VALID_FROM, valid_until=None, status="active",
                created_at=now, updated_at=now) for b in DEFAULT_BENEFITS)).on_conflict(
        target=Benefit.public_id, action=OnConflictAction.do_nothing).returning(Benefit.public_id)
    if scenarios or benefits:
        CATALOG.invalidate()
    return len(scenarios), len(benefits)


# ---------------------------------------------------------------- the public catalog


async def public_catalog() -> list[CatalogScenario]:
    """Active scenarios with their active, unexpired benefits, from the cache (within the catalog's bound)."""
    snapshot = await CATALOG.get()
    now = clock.now()
    return [
        CatalogScenario(code=s.code, name=s.name, description=s.description, benefits=[
            CatalogBenefit(id=r.id, name=r.name, description=r.description, kind=r.kind, value=r.value,
                           min_tier=r.min_tier, min_score=r.min_score, quota_per_period=r.quota_per_period,
                           period=r.period, merchants=list(snapshot.merchant_names_of(r)),
                           valid_from=r.valid_from, valid_until=r.valid_until)
            for r in snapshot.active.get(s.code, ()) if r.valid_until is None or r.valid_until > now])
        for s in snapshot.ordered_scenarios() if s.status == "active"]


# ---------------------------------------------------------------- scenarios (operators)


def _admin_scenario(info: ScenarioInfo) -> AdminScenario:
    return AdminScenario(code=info.code, name=info.name, description=info.description, status=info.status,
                         sort_order=info.sort_order, created_at=info.created_at, updated_at=info.updated_at)


async def list_scenarios() -> list[AdminScenario]:
    rows = await Scenario.select(*_SCENARIO_COLUMNS).order_by(Scenario.sort_order, Scenario.code)
    return [_admin_scenario(_scenario(row)) for row in rows]


async def get_scenario(*, code: str) -> ScenarioInfo:
    if not SCENARIO_CODE.match(code):
        raise NotFound("scenario not found", code="scenario_not_found")
    row = await Scenario.select(*_SCENARIO_COLUMNS).where(Scenario.code == code).first()
    if row is None:
        raise NotFound("scenario not found", code="scenario_not_found")
    return _scenario(row)


async def create_scenario(*, code: str, name: str, description: str, status: str, sort_order: int) -> AdminScenario:
    """Add a scenario. Merchants serve it once their `scenario` names it.

    Raises:
        Unprocessable: `invalid_scenario` — a bad code, empty name or unknown status.
        Conflict: `scenario_exists`.
    """
    if not SCENARIO_CODE.match(code):
        raise Unprocessable("a scenario code is 2-16 lowercase letters, digits or _", code="invalid_scenario")
    if status not in SCENARIO_STATUSES or not name.strip():
        raise Unprocessable("a scenario needs a name and a status of active or paused", code="invalid_scenario")
    now = clock.now()
    inserted = await Scenario.insert(Scenario(
        code=code, name=name.strip(), description=description.strip(), status=status, sort_order=sort_order,
        created_at=now, updated_at=now)).on_conflict(target=Scenario.code, action=OnConflictAction.do_nothing
                                                     ).returning(Scenario.code)
    if not inserted:
        raise Conflict(f"scenario {code} already exists", code="scenario_exists")
    CATALOG.invalidate()
    return _admin_scenario(await get_scenario(code=code))


async def update_scenario(*, code: str, changes: Mapping[str, Any]) -> AdminScenario:
    """Change a scenario's name, description, status (active | paused) or sort order.

    Raises:
        NotFound: `scenario_not_found`.
        Unprocessable: `empty_patch`, `invalid_scenario`.
    """
    if not SCENARIO_CODE.match(code):
        raise NotFound("scenario not found", code="scenario_not_found")
    values: dict[Any, Any] = {}
    if "name" in changes:
        if not str(changes["name"]).strip():
            raise Unprocessable("a scenario needs a name", code="invalid_scenario")
        values[Scenario.name] = str(changes["name"]).strip()
    if "description" in changes:
        values[Scenario.description] = str(changes["description"]).strip()
    if "status" in changes:
        if changes["status"] not in SCENARIO_STATUSES:
            raise Unprocessable("status is active or paused", code="invalid_scenario")
        values[Scenario.status] = changes["status"]
    if "sort_order" in changes:
        values[Scenario.sort_order] = int(changes["sort_order"])
    if not values:
        raise Unprocessable("name, description, status or sort_order must change", code="empty_patch")
    values[Scenario.updated_at] = clock.now()
    updated = await Scenario.update(values).where(Scenario.code == code).returning(Scenario.code)
    if not updated:
        raise NotFound("scenario not found", code="scenario_not_found")
    CATALOG.invalidate()
    return _admin_scenario(await get_scenario(code=code))


# ---------------------------------------------------------------- benefits (operators)


RULE_FIELDS: Final = ("name", "description", "value", "min_tier", "min_score", "quota_per_period", "period",
                      "merchants", "valid_from", "valid_until", "status")
"""What an operator may change on an existing benefit (its scenario and kind are fixed)."""


def _admin_benefit(rule: BenefitRule) -> AdminBenefit:
    return AdminBenefit(
        id=rule.id, scenario=rule.scenario, name=rule.name, description=rule.description, kind=rule.kind,
        value=rule.value, min_tier=rule.min_tier, min_score=rule.min_score, quota_per_period=rule.quota_per_period,
        period=rule.period, merchants=list(rule.merchants), valid_from=rule.valid_from, valid_until=rule.valid_until,
        status=rule.status, created_at=rule.created_at, updated_at=rule.updated_at)


def _reject(message: str, field_name: str, code: str = "invalid_benefit_rule") -> Unprocessable:
    return Unprocessable(message, code=code, errors=[{"field": field_name, "message": message}])


def validate_rule(rule: Mapping[str, Any]) -> None:
    """Check a whole benefit rule (kind, value, thresholds, quota, period, validity window, status).

    Raises:
        Unprocessable: `invalid_benefit_rule`, naming the field in `errors`.
    """
    kind, value = rule["kind"], rule["value"]
    if kind not in KINDS:
        raise _reject(f"kind is one of {', '.join(KINDS)}", "kind")
    if kind == "percent_discount" and not 1 <= value <= 100:
        raise _reject("a percent discount is 1-100 (percent off)", "value")
    if kind in ("fixed_discount", "deposit_waiver", "pay_later_limit") and not 1 <= value <= MAX_FEN:
        raise _reject(f"{kind} is an amount in fen, 1-{MAX_FEN}", "value")
    if kind == "extra_quota" and not 1 <= value <= MAX_EXTRA:
        raise _reject(f"extra_quota is a count, 1-{MAX_EXTRA}", "value")
    if not str(rule["name"]).strip():
        raise _reject("a benefit needs a name", "name")
    if rule["min_tier"] is not None and rule["min_tier"] not in TIER_NAMES:
        raise _reject(f"min_tier is one of {', '.join(TIER_NAMES)}", "min_tier")
    if rule["min_score"] is not None and not 0 <= rule["min_score"] <= 1000:
        raise _reject("min_score is 0-1000", "min_score")
    if not 0 <= rule["quota_per_period"] <= MAX_QUOTA:
        raise _reject(f"quota_per_period is 0 (unlimited) to {MAX_QUOTA}", "quota_per_period")
    if rule["period"] not in PERIODS:
        raise _reject(f"period is one of {', '.join(PERIODS)}", "period")
    if rule["status"] not in BENEFIT_STATUSES:
        raise _reject(f"status is one of {', '.join(BENEFIT_STATUSES)}", "status")
    valid_from, valid_until = rule["valid_from"], rule["valid_until"]
    if valid_from.tzinfo is None or (valid_until is not None and valid_until.tzinfo is None):
        raise _reject("times need a timezone (UTC ISO 8601)", "valid_from")
    if valid_until is not None and valid_until <= valid_from:
        raise _reject("valid_until must be after valid_from", "valid_until")
    for name, moment in (("valid_from", valid_from), ("valid_until", valid_until)):
        if moment is not None and not EARLIEST <= moment <= LATEST:
            raise _reject(f"{name} must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}", name)


async def _check_merchants(*, scenario: str, merchants: Sequence[str]) -> tuple[str, ...]:
    """Participating merchants must be merchant partners serving the benefit's scenario."""
    wanted = tuple(dict.fromkeys(m.strip() for m in merchants if m.strip()))
    if not wanted:
        return ()
    rows = await Partner.select(Partner.client_id).where(
        Partner.client_id.is_in(list(wanted)) & (Partner.kind == "merchant") & (Partner.scenario == scenario))
    unknown = sorted(set(wanted) - {row["client_id"] for row in rows})
    if unknown:
        raise _reject(f"not merchants of {scenario}: {', '.join(unknown)}", "merchants", code="unknown_merchant")
    return wanted


async def list_benefits(*, scenario: str | None = None, status: str | None = None) -> list[AdminBenefit]:
    if scenario is not None and not SCENARIO_CODE.match(scenario):
        return []  # no scenario has such a code (and a NUL byte must never reach PostgreSQL)
    query = Benefit.select(*_BENEFIT_COLUMNS).order_by(Benefit.scenario).order_by(Benefit.created_at)
    if scenario is not None:
        query = query.where(Benefit.scenario == scenario)
    if status is not None:
        query = query.where(Benefit.status == status)
    return [_admin_benefit(_rule(row)) for row in await query]


async def get_benefit(*, benefit_id: str) -> BenefitRule:
    if not PUBLIC_ID.match(benefit_id):
        raise NotFound("benefit not found", code="benefit_not_found")
    row = await Benefit.select(*_BENEFIT_COLUMNS).where(Benefit.public_id == benefit_id).first()
    if row is None:
        raise NotFound("benefit not found", code="benefit_not_found")
    return _rule(row)


async def create_benefit(*, scenario: str, name: str, description: str, kind: str, value: int,
                         min_tier: str | None, min_score: int | None, quota_per_period: int, period: str,
                         merchants: Sequence[str], valid_from: datetime | None, valid_until: datetime | None,
                         status: str) -> AdminBenefit:
    """Add a benefit to a scenario.

    Raises:
        Unprocessable: `unknown_scenario`, `invalid_benefit_rule`, `unknown_merchant`.
    """
    if not await Scenario.exists().where(Scenario.code == scenario):
        raise _reject(f"unknown scenario {scenario!r}", "scenario", code="unknown_scenario")
    now = clock.now()
    rule = {"kind": kind, "value": value, "name": name, "min_tier": min_tier, "min_score": min_score,
            "quota_per_period": quota_per_period, "period": period, "status": status,
            "valid_from": valid_from or now, "valid_until": valid_until}
    validate_rule(rule)
    participating = await _check_merchants(scenario=scenario, merchants=merchants)
    public_id = new_public_id("bnf")
    await Benefit.insert(Benefit(
        public_id=public_id, scenario=scenario, name=name.strip(), description=description.strip(), kind=kind,
        value=value, min_tier=min_tier, min_score=min_score, quota_per_period=quota_per_period, period=period,
        merchants=" ".join(participating), valid_from=rule["valid_from"], valid_until=valid_until, status=status,
        created_at=now, updated_at=now))
    CATALOG.invalidate()
    return _admin_benefit(await get_benefit(benefit_id=public_id))


async def update_benefit(*, benefit_id: str, changes: Mapping[str, Any]) -> AdminBenefit:
    """Change a benefit's rule; the merged rule is validated as a whole. Pausing or retiring takes effect at once.

    A retired benefit stays retired (its history keeps pointing at it); make a new one instead.

    Raises:
        NotFound: `benefit_not_found`.
        Conflict: `benefit_retired`.
        Unprocessable: `empty_patch`, `invalid_benefit_rule`, `unknown_merchant`.
    """
    unknown = sorted(set(changes) - set(RULE_FIELDS))
    if unknown:
        raise Unprocessable(f"cannot change {', '.join(unknown)}", code="invalid_benefit_rule")
    if not changes:
        raise Unprocessable(f"one of {', '.join(RULE_FIELDS)} must change", code="empty_patch")
    current = await get_benefit(benefit_id=benefit_id)
    if current.status == "retired":
        raise Conflict("a retired benefit cannot change; create a new one", code="benefit_retired")
    merged = {"kind": current.kind, "value": current.value, "name": current.name, "min_tier": current.min_tier,
              "min_score": current.min_score, "quota_per_period": current.quota_per_period,
              "period": current.period, "status": current.status, "valid_from": current.valid_from,
              "valid_until": current.valid_until, **changes}
    validate_rule(merged)
    values: dict[Any, Any] = {}
    for name in changes:
        if name == "merchants":
            values[Benefit.merchants] = " ".join(await _check_merchants(scenario=current.scenario,
                                                                        merchants=changes["merchants"]))
        elif name in ("name", "description"):
            values[getattr(Benefit, name)] = str(changes[name]).strip()
        else:
            values[getattr(Benefit, name)] = changes[name]
    values[Benefit.updated_at] = clock.now()
    # The status condition keeps a concurrent retirement from being undone by this write.
    updated = await Benefit.update(values).where(
        (Benefit.public_id == benefit_id) & (Benefit.status != "retired")).returning(Benefit.public_id)
    if not updated:
        raise Conflict("a retired benefit cannot change; create a new one", code="benefit_retired")
    CATALOG.invalidate()
    return _admin_benefit(await get_benefit(benefit_id=benefit_id))


__all__ = ["BENEFIT_STATUSES", "CATALOG", "CATALOG_MAX_AGE_SECONDS", "DEFAULT_BENEFITS", "DEFAULT_SCENARIOS",
           "EARLIEST", "KINDS", "LATEST", "PERIODS", "PUBLIC_ID", "SCENARIO_CODE", "SCENARIO_STATUSES", "TIER_NAMES",
           "BenefitRule", "CatalogCache", "CatalogSnapshot", "ScenarioInfo", "create_benefit", "create_scenario",
           "get_benefit", "get_scenario", "list_benefits", "list_scenarios", "load_snapshot",
           "public_catalog",
           "seed_default_scenarios", "update_benefit", "update_scenario", "validate_rule"]
