"""Load-test fixtures and the traffic model of "a realistic day" (Locust suite, `xinyi loadtest`).

Two things live here:

- `TRAFFIC`: who sends what, and how much of it. Each Locust user class has a share of all requests and
  weighted tasks; `plan()` turns a target rate into users and per-user pacing per class. The runner
  (sizing, user counts) and the locustfile (weights, pacing) both read it, so they cannot disagree.
- `prepare()`: everything the measured requests need, made before and outside them, from a seeded
  dataset (`demo.seed_demo_city`): partners with their limits lifted, their access tokens, citizen
  accounts bound to registry persons with citizen tokens, approved authorizations for the bank,
  enterprise authorizations (purpose loan_application, scope portrait), enterprise owners, the load-test
  merchants' benefits (a discount; a deposit waiver and a pay-later limit that allow credit orders), a loan
  product, and supplies of single-use benefit codes sized for rate x duration. The result is one
  JSON file (`Fixtures`) the Locust processes read (path in `$XINYI_LOADTEST_FIXTURES`).

The fixtures are reused across runs where they can be (partners have fixed client ids, authorizations
and accounts stay valid) and topped up where they cannot (benefit codes are single use; counters the
run would trip over are reset). The file holds bearer tokens and synthetic id numbers: the runner keeps
it in a private temporary folder and deletes it after the run.

This module's top level imports no database code: the Locust processes import it for the traffic model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from piccolo.engine.base import Engine

    from core.settings import Settings
    from core.store import Store
    from credit.identity import FieldCipher

FIXTURES_ENV = "XINYI_LOADTEST_FIXTURES"
"""Environment variable naming the fixtures file for the Locust processes."""
WORKER_ENV = "XINYI_LOADTEST_WORKER"
"""Environment variable with the Locust worker's index (0-based): which slice of single-use codes it spends."""

# ------------------------------------------------------------------ the traffic model


@dataclass(frozen=True, slots=True)
class TaskMix:
    weight: int  # Locust task weight within its user class
    requests: float  # HTTP requests one run of the task makes (mean)


@dataclass(frozen=True, slots=True)
class UserMix:
    share: float  # percent of all requests this user class sends
    tasks: dict[str, TaskMix]
    description: str

    @property
    def requests_per_iteration(self) -> float:
        total = sum(t.weight for t in self.tasks.values())
        return sum(t.weight * t.requests for t in self.tasks.values()) / total

    def task_share(self, name: str) -> float:
        """The share of this class's task runs that run `name`."""
        return self.tasks[name].weight / sum(t.weight for t in self.tasks.values())


# A day of a mid-sized city: citizens open the app far more often than anything else happens; banks read
# scores in bulk (pre-approval sweeps, checks at the point of sale); merchants verify codes at gates and
# counters; departments check before business steps; data sources push in small, steady batches.
TRAFFIC: dict[str, UserMix] = {
    "CitizenApp": UserMix(34, {
        "score": TaskMix(10, 1), "benefits": TaskMix(6, 1), "benefit_code": TaskMix(4, 1),
        "authorizations": TaskMix(3, 1), "access_log": TaskMix(3, 1), "approve": TaskMix(2, 1),
    }, "the citizen app: my score, my benefits, a benefit code (QR), my authorizations (and approving a "
       "bank's request), my access log"),
    "PartnerBank": UserMix(26, {
        "score_query": TaskMix(10, 1), "score_check": TaskMix(7, 1), "ask_authorization": TaskMix(3, 1),
        "portrait": TaskMix(4, 1), "applications": TaskMix(2, 1),
    }, "a bank: score queries and threshold checks under authorizations, asking citizens for authorization, "
       "enterprise portrait pulls, its loan applications"),
    "Merchant": UserMix(20, {
        "verify_and_redeem": TaskMix(3, 2), "credit_order": TaskMix(1, 3),
    }, "merchants: a scenic spot verifies a benefit code and redeems (Idempotency-Key); a rental shop verifies, "
       "opens a deposit-free / pay-later order and completes it"),
    "Department": UserMix(10, {
        "check_person": TaskMix(7, 1), "check_enterprise": TaskMix(3, 1),
    }, "government departments: credit checks (联合奖惩核查) on persons and enterprises"),
    "DataSource": UserMix(3, {
        "record_batch": TaskMix(1, 1),
    }, "data sources: small record batches (10 rows) about persons"),
    "PublicAndEnterprise": UserMix(7, {
        "scenarios": TaskMix(3, 1), "products": TaskMix(3, 1), "enterprise_portrait": TaskMix(1, 1),
        "demand": TaskMix(1, 2),
    }, "the public catalogs (scenarios, loan products) and enterprise owners: their portrait, a financing "
       "demand submitted to a matched product"),
}

RECORD_BATCH_ROWS = 10
"""Rows per `POST /v1/records/batch` of the DataSource user."""
MAX_ITERATIONS_PER_USER = 5.0
"""Task runs per second one simulated user (one keep-alive connection) makes at most. In production the
API workers sit behind a gateway / load balancer that carries many clients over a pool of busy upstream
connections, so a few busy connections are closer to what granian sees than one idle connection per
citizen; and on this machine the server answers a connection used once a second markedly slower than a
busy one (same load: 46 users at 2 runs/s gave p99 1.2 s, 20 users at 5 runs/s 230 ms). A run of at most
three requests still fits easily in the 200 ms between two runs."""


class ClassPlan(msgspec.Struct, frozen=True):
    users: int
    iterations_per_second: float  # per user (Locust constant_throughput)


def plan(rate: float, *, max_iterations_per_user: float = MAX_ITERATIONS_PER_USER) -> dict[str, ClassPlan]:
    """Users and per-user pacing per class so that, together, they send `rate` requests per second."""
    total_share = sum(m.share for m in TRAFFIC.values())
    plans: dict[str, ClassPlan] = {}
    for name, mix in TRAFFIC.items():
        iterations = rate * mix.share / total_share / mix.requests_per_iteration
        users = max(1, math.ceil(iterations / max_iterations_per_user))
        plans[name] = ClassPlan(users=users, iterations_per_second=iterations / users)
    return plans


def planned_rate(plans: dict[str, ClassPlan]) -> dict[str, float]:
    """Requests per second each class sends when it keeps its pace."""
    return {name: p.users * p.iterations_per_second * TRAFFIC[name].requests_per_iteration
            for name, p in plans.items()}


# ------------------------------------------------------------------ the fixtures file


class Citizen(msgspec.Struct, frozen=True):
    account_id: str
    token: str
    name: str
    id_number: str  # synthetic (seeded registry); banks and departments name subjects by it


class PortraitGrant(msgspec.Struct, frozen=True):
    uscc: str
    authorization_id: str


class Owner(msgspec.Struct, frozen=True):
    token: str
    uscc: str


class MerchantFixture(msgspec.Struct, frozen=True):
    client_id: str
    token: str
    scenario: str
    benefit_id: str | None  # what a redemption redeems
    codes: list[list[str]]  # one list per Locust worker: single-use codes are never shared
    order_benefits: dict[str, str] = msgspec.field(default_factory=dict)  # order kind → benefit offering it


class Fixtures(msgspec.Struct):
    created_at: float
    duration_s: int
    plan: dict[str, ClassPlan]
    bank_token: str
    bank_product_id: str
    score_authorizations: list[str]
    portraits: list[PortraitGrant]
    citizens: list[Citizen]
    travel: MerchantFixture
    rental: MerchantFixture
    department_token: str
    business_types: list[str]
    source_token: str
    owners: list[Owner]


def load_fixtures(path: str | os.PathLike[str]) -> Fixtures:
    return msgspec.json.decode(Path(path).read_bytes(), type=Fixtures)


def write_fixtures(path: Path, fixtures: Fixtures) -> None:
    """Write with mode 0600: the file holds bearer tokens."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(msgspec.json.encode(fixtures))


# ------------------------------------------------------------------ preparing them

# Fixed client ids: reruns find the same partners (and their authorizations) instead of piling up new ones.
BANK_ID = "loadtest-bank"
TRAVEL_MERCHANT_ID = "loadtest-merchant-travel"
RENTAL_MERCHANT_ID = "loadtest-merchant-rental"
DEPARTMENT_ID = "loadtest-department"
SOURCE_ID = "loadtest-source"
TRAVEL_BENEFIT_ID = "bnf_loadtest_travel"
ORDER_BENEFITS = {"deposit_free": ("bnf_loadtest_rental_deposit", "deposit_waiver", "压测充电宝免押"),
                  "pay_later": ("bnf_loadtest_rental_later", "pay_later_limit", "压测租金先用后付")}
"""Order kind → the rental benefit (id, benefit kind, name) that offers it: an order needs its verification to
have offered a benefit of the matching kind."""
ORDER_LIMIT_FEN = 50_000
SCORE_PURPOSE = "loan_pre_approval"
SCORE_SCOPES = ["dimensions", "reasons", "score", "tier"]
LIFTED_CAP = 1_000_000_000
"""Daily use cap of the load test's own authorizations: a day is compressed into minutes here, and the run
measures the server, not the contractual caps (exactly like the partners' lifted rate limits)."""
_CODE_MARGIN = 1.3  # single-use supply over the planned need (pacing jitter, users unevenly spread)
_CREDIT_LINE_TIERS = ("AAA", "AA", "A")  # tiers with a credit line by default (orders need one)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What `prepare` made, for the report (counts only: no token or id number)."""

    persons_in_registry: int
    seeded_now: bool
    citizens: int
    score_authorizations: int
    portraits: int
    owners: int
    codes: dict[str, int]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"persons_in_registry": self.persons_in_registry, "seeded_now": self.seeded_now,
                "citizens": self.citizens, "score_authorizations": self.score_authorizations,
                "portraits": self.portraits, "enterprise_owners": self.owners, "benefit_codes": self.codes,
                "seconds": round(self.seconds, 1)}


async def _partner(settings: Settings, *, store: Store, client_id: str, name: str, kind: str, scenario: str | None,
                   ttl_seconds: int) -> str:
    """The load test's partner `client_id` (created once), active, limits lifted; returns a fresh access token."""
    from api.context import build_tokens  # noqa: PLC0415 - keep the module light for Locust
    from partners.services import create_partner, find_partner, set_partner_status, update_partner  # noqa: PLC0415

    if await find_partner(client_id) is None:
        await create_partner(name=name, kind=kind, scenario=scenario, client_id=client_id)
    await set_partner_status(store=store, client_id=client_id, status="active")
    # We measure the server: the partner's contractual rate limit and daily quota are out of the way.
    await update_partner(client_id=client_id, rate_limit_per_second=1_000_000, daily_quota=1_000_000_000)
    partner = await find_partner(client_id)
    assert partner is not None
    token, _ = build_tokens(settings).issue(kind="partner", subject=partner.client_id, ttl_seconds=ttl_seconds,
                                           scopes=partner.scopes, partner_kind=kind)
    return token


async def _clear_namespace(redis_url: str | None, namespace: str) -> None:
    """Drop the namespace's keys: a freshly seeded database reuses integer ids, and stale per-person caches
    from an earlier database of the same name must not answer for the new persons."""
    if not redis_url:
        return
    from redis.asyncio import Redis  # noqa: PLC0415

    client = Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.delete(*batch)
                batch.clear()
        if batch:
            await client.delete(*batch)
    finally:
        await client.aclose()


async def _seed_if_needed(settings: Settings, *, engine: Engine[Any], cipher: FieldCipher, persons: int,
                          say: Callable[[str], None]) -> tuple[int, bool]:
    from credit.scores import recompute_all  # noqa: PLC0415
    from credit.tables import Person  # noqa: PLC0415
    from demo import seed_demo_city  # noqa: PLC0415

    present = int(await Person.count())
    if present:
        return present, False
    say(f"seeding a demo city of {persons:,} persons")
    await _clear_namespace(settings.redis_url, settings.redis_namespace)
    await seed_demo_city(persons=persons, enterprises=max(50, persons // 10), seed=4242, cipher=cipher,
                         engine=engine, with_accounts=False)
    from core.store import build_store  # noqa: PLC0415

    store = build_store(settings.redis_url, settings.redis_namespace)
    try:
        # Scores as a nightly recompute leaves them: current rows and warm caches.
        await recompute_all(store=store)
    finally:
        await store.close()
    return int(await Person.count()), True


def _phone_for(person_id: int) -> str:
    # 170 is a virtual-operator prefix no seeded person has; one number per registry person.
    return f"170{person_id:08d}"


async def _citizens(*, cipher: FieldCipher, store: Store, count: int) -> list[dict[str, Any]]:
    """`count` registry persons with a bound citizen account each (accounts made once, then reused)."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from accounts.tables import CitizenAccount  # noqa: PLC0415
    from credit.identity import new_public_id  # noqa: PLC0415
    from credit.tables import Person  # noqa: PLC0415

    pk = Person._meta.primary_key
    rows = await Person.select(pk, Person.name, Person.id_number_enc).order_by(pk).limit(count)
    ids = [int(r["id"]) for r in rows]
    accounts = {int(a["person"]): str(a["public_id"]) for a in await CitizenAccount.select(
        CitizenAccount.person, CitizenAccount.public_id).where(CitizenAccount.person.is_in(ids or [0]))}
    missing = [pid for pid in ids if pid not in accounts]
    now = datetime.now(UTC)
    for start in range(0, len(missing), 500):
        new = [CitizenAccount(public_id=new_public_id("acc"), phone_hash=cipher.lookup_hash("phone", _phone_for(pid)),
                              phone_enc=cipher.encrypt("phone", _phone_for(pid)), person=pid, bound_at=now)
               for pid in missing[start:start + 500]]
        await CitizenAccount.insert(*new)
        accounts.update({int(a.person): str(a.public_id) for a in new})  # type: ignore[arg-type]
    out = []
    for row in rows:
        out.append({"person_id": int(row["id"]), "account_id": accounts[int(row["id"])], "name": row["name"],
                    "id_number": cipher.decrypt("id_number", row["id_number_enc"])})
    # The run asks for many codes per account within the hour; earlier runs' counters must not refuse it.
    from scenarios.benefits import CODE_RATE_DOMAIN  # noqa: PLC0415

    await store.delete_many(CODE_RATE_DOMAIN, [c["account_id"] for c in out])
    return out


async def _score_authorizations(*, cipher: FieldCipher, citizens: Sequence[dict[str, Any]], valid_past: Any,
                                say: Callable[[str], None]) -> list[str]:
    """One authorized score authorization of the bank per citizen (made once, approved by the citizen)."""
    import asyncio  # noqa: PLC0415

    from credit import authorizations as authz  # noqa: PLC0415
    from credit.tables import Authorization  # noqa: PLC0415

    person_ids = [c["person_id"] for c in citizens]
    existing: dict[int, str] = {}
    for row in await Authorization.select(Authorization.person, Authorization.public_id).where(
            (Authorization.partner_client_id == BANK_ID) & (Authorization.status == authz.AUTHORIZED)
            & (Authorization.purpose == SCORE_PURPOSE) & (Authorization.valid_until > valid_past)
            & Authorization.person.is_in(person_ids or [0])):
        existing.setdefault(int(row["person"]), str(row["public_id"]))
    todo = [c for c in citizens if c["person_id"] not in existing]
    if todo:
        say(f"asking {len(todo):,} citizens for authorization (once; later runs reuse them)")
    gate = asyncio.Semaphore(8)

    async def grant(citizen: dict[str, Any]) -> None:
        async with gate:
            view = await authz.request_authorization(
                cipher=cipher, partner_client_id=BANK_ID, partner_name="压测银行", partner_kind="bank",
                subject_kind="person", purpose_code=SCORE_PURPOSE, scopes=SCORE_SCOPES, validity_days=90,
                id_number=citizen["id_number"], name=citizen["name"])
            await authz.approve(public_id=view.id, person_id=citizen["person_id"])
            existing[citizen["person_id"]] = view.id

    await asyncio.gather(*(grant(c) for c in todo))
    return [existing[pid] for pid in person_ids]


async def _portrait_grants(*, cipher: FieldCipher, count: int, valid_past: Any) -> list[PortraitGrant]:
    """The bank's portrait authorizations (loan_application, scope portrait), one per enterprise."""
    from credit import authorizations as authz  # noqa: PLC0415
    from credit.tables import Authorization, Enterprise  # noqa: PLC0415

    pk = Enterprise._meta.primary_key
    rows = await Enterprise.select(pk, Enterprise.uscc_enc).where(Enterprise.status == "active").order_by(pk).limit(
        count)
    ids = [int(r["id"]) for r in rows]
    existing: dict[int, str] = {}
    for row in await Authorization.select(Authorization.enterprise, Authorization.public_id).where(
            (Authorization.partner_client_id == BANK_ID) & (Authorization.status == authz.AUTHORIZED)
            & (Authorization.purpose == "loan_application") & (Authorization.valid_until > valid_past)
            & Authorization.enterprise.is_in(ids or [0])):
        existing.setdefault(int(row["enterprise"]), str(row["public_id"]))
    grants: list[PortraitGrant] = []
    for row in rows:
        authorization_id = existing.get(int(row["id"]))
        if authorization_id is None:
            view = await authz.grant_for_enterprise(
                enterprise_id=int(row["id"]), partner_client_id=BANK_ID, partner_name="压测银行",
                partner_kind="bank", purpose_code="loan_application", scopes=["portrait"], validity_days=90)
            authorization_id = view.id
        grants.append(PortraitGrant(uscc=cipher.decrypt("uscc", row["uscc_enc"]), authorization_id=authorization_id))
    return grants


async def _owners(*, settings: Settings, cipher: FieldCipher, citizens: Sequence[dict[str, Any]], limit: int,
                  ttl_seconds: int) -> list[Owner]:
    """Citizens who are an enterprise's legal representative, bound to it as owners (idempotent)."""
    from api.context import build_tokens  # noqa: PLC0415
    from credit.tables import Enterprise  # noqa: PLC0415
    from lending.enterprises import bind  # noqa: PLC0415

    by_person = {c["person_id"]: c for c in citizens}
    rows = await Enterprise.select(Enterprise.legal_representative, Enterprise.uscc_enc).where(
        Enterprise.legal_representative.is_in(list(by_person) or [0]) & (Enterprise.status == "active")).limit(limit)
    tokens = build_tokens(settings)
    owners: list[Owner] = []
    for row in rows:
        citizen = by_person[int(row["legal_representative"])]
        uscc = cipher.decrypt("uscc", row["uscc_enc"])
        await bind(cipher=cipher, account_id=citizen["account_id"], person_id=int(row["legal_representative"]),
                   uscc=uscc)
        token, _ = tokens.issue(kind="citizen", subject=citizen["account_id"], ttl_seconds=ttl_seconds)
        owners.append(Owner(token=token, uscc=uscc))
    return owners


async def _warm_scores(*, store: Store, person_ids: Sequence[int], say: Callable[[str], None]) -> None:
    """Cache the citizens' scores, as a server that has been running a while has them (a cold cache costs
    each person's first read a recompute; a seeded or recomputed registry starts with none cached)."""
    import asyncio  # noqa: PLC0415

    from credit.scores import cache_key, current_score  # noqa: PLC0415

    cold: list[int] = []
    for start in range(0, len(person_ids), 100):  # within the store's connection pool
        chunk = person_ids[start:start + 100]
        cached = await asyncio.gather(*(store.get(*cache_key(pid)) for pid in chunk))
        cold += [pid for pid, value in zip(chunk, cached, strict=True) if value is None]
    if not cold:
        return
    say(f"warming {len(cold):,} score caches")
    gate = asyncio.Semaphore(8)

    async def warm(person_id: int) -> None:
        async with gate:
            await current_score(store=store, person_id=person_id)

    await asyncio.gather(*(warm(pid) for pid in cold))


async def _benefit(*, public_id: str, scenario: str, name: str, kind: str, value: int, merchant: str) -> str:
    """An unlimited benefit for everyone, of the load test's own merchant only (made once, kept active)."""
    from scenarios.tables import Benefit  # noqa: PLC0415

    if not await Benefit.exists().where(Benefit.public_id == public_id):
        await Benefit.insert(Benefit(public_id=public_id, scenario=scenario, name=name, kind=kind, value=value,
                                     quota_per_period=0, period="day", merchants=merchant))
    await Benefit.update({Benefit.status: "active", Benefit.valid_until: None}).where(Benefit.public_id == public_id)
    return public_id


async def _load_test_benefits() -> tuple[str, dict[str, str]]:
    """The scenic spot's discount and the rental shop's deposit waiver and pay-later limit. Unlimited and for
    every tier: redemptions measure the write path (claim, counter upsert) and orders the credit line, not a
    citizen's quota running out during a day compressed into minutes."""
    travel = await _benefit(public_id=TRAVEL_BENEFIT_ID, scenario="travel", name="压测景区门票9折",
                            kind="percent_discount", value=10, merchant=TRAVEL_MERCHANT_ID)
    orders = {order_kind: await _benefit(public_id=public_id, scenario="rental", name=name, kind=kind,
                                         value=ORDER_LIMIT_FEN, merchant=RENTAL_MERCHANT_ID)
              for order_kind, (public_id, kind, name) in ORDER_BENEFITS.items()}
    return travel, orders


async def _bank_product() -> str:
    """The bank's pure-credit product most demands match (so owners' demands reach the bank's applications)."""
    from lending.products import create_product  # noqa: PLC0415
    from lending.schemas import ProductCreate  # noqa: PLC0415
    from lending.tables import LoanProduct  # noqa: PLC0415

    row = await LoanProduct.select(LoanProduct.public_id).where(
        (LoanProduct.bank_client_id == BANK_ID) & (LoanProduct.status == "active")).first()
    if row is not None:
        return str(row["public_id"])
    fields = msgspec.structs.asdict(ProductCreate(
        name="压测·普惠信用贷", description="load test product", amount_min_fen=1_000_000, amount_max_fen=500_000_000,
        term_min_months=3, term_max_months=36, rate_min_bp=380, rate_max_bp=600, guarantee_kind="credit"))
    return (await create_product(bank_client_id=BANK_ID, bank_name="压测银行", fields=fields)).id


async def _codes(*, store: Store, scenario: str, holders: Sequence[dict[str, Any]], per_worker: int, workers: int,
                 ttl_seconds: int) -> list[list[str]]:
    """Single-use benefit codes straight into the store (as `POST /v1/me/benefit-codes` would leave them),
    `per_worker` for each Locust worker."""
    import asyncio  # noqa: PLC0415
    import time  # noqa: PLC0415

    from credit.identity import mask_name  # noqa: PLC0415
    from scenarios import codes  # noqa: PLC0415

    now = time.time()
    states = [codes.CodeState(person_id=h["person_id"], person_public_id=h["person_public_id"],
                              account_id=h["account_id"], issued_at=now, masked_name=mask_name(h["name"]),
                              scenario=scenario) for h in holders]
    out: list[list[str]] = []
    for _ in range(workers):
        issued: list[str] = []
        # Small concurrent batches: fast, and within the store's connection pool.
        for start in range(0, per_worker, 64):
            batch = [states[(start + i) % len(states)] for i in range(min(64, per_worker - start))]
            issued += await asyncio.gather(*(codes.issue_code(store=store, state=s, ttl_seconds=ttl_seconds)
                                             for s in batch))
        out.append(issued)
    return out


_PARTNERS = (  # client id, name, kind, scenario
    (BANK_ID, "压测银行", "bank", None),
    (TRAVEL_MERCHANT_ID, "压测景区", "merchant", "travel"),
    (RENTAL_MERCHANT_ID, "压测租赁", "merchant", "rental"),
    (DEPARTMENT_ID, "压测审批局", "government", None),
    (SOURCE_ID, "压测数据源", "data_source", None),
)


async def _partners(settings: Settings, *, store: Store, ttl_seconds: int) -> dict[str, str]:
    """Every partner of the load test, limits lifted; client id → fresh access token."""
    return {client_id: await _partner(settings, store=store, client_id=client_id, name=name, kind=kind,
                                      scenario=scenario, ttl_seconds=ttl_seconds)
            for client_id, name, kind, scenario in _PARTNERS}


async def _code_supplies(*, store: Store, citizens: Sequence[dict[str, Any]], renters: Sequence[dict[str, Any]],
                         merchant_plan: ClassPlan, seconds: int, workers: int, ttl_seconds: int
                         ) -> tuple[list[list[str]], list[list[str]]]:
    """Travel and rental codes per Locust worker, sized for the planned merchant pace over `seconds`."""
    merchant = TRAFFIC["Merchant"]
    # Each worker gets enough for all the merchant users: Locust does not promise to spread one class's users
    # over its workers (both of two merchants may land on the same one), and codes are cheap to make.
    pace = merchant_plan.users * merchant_plan.iterations_per_second
    travel = math.ceil(pace * merchant.task_share("verify_and_redeem") * seconds * _CODE_MARGIN) + 20
    rental = math.ceil(pace * merchant.task_share("credit_order") * seconds * _CODE_MARGIN) + 20
    return (await _codes(store=store, scenario="travel", holders=citizens, per_worker=travel, workers=workers,
                         ttl_seconds=ttl_seconds),
            await _codes(store=store, scenario="rental", holders=renters, per_worker=rental, workers=workers,
                         ttl_seconds=ttl_seconds))


async def prepare(settings: Settings, *, persons: int, rate: float, duration_s: int, warmup_s: int,
                  locust_workers: int, path: Path, say: Callable[[str], None] = lambda _: None,
                  plans: dict[str, ClassPlan] | None = None) -> Prepared:
    """Migrate, seed if the registry is empty, build every fixture and write them to `path`.

    Args:
        settings: the settings the server will run with (same keys: tokens must verify, ids must decrypt).
        persons: size of the demo city seeded into an empty registry; also the most citizens used.
        rate: target requests per second of the whole run (sizes the single-use supplies).
        duration_s: measured seconds; warmup_s: ramp-up seconds before them (codes are spent there too).
        locust_workers: Locust worker processes (each gets its own slice of single-use codes).
        path: where to write the fixtures file (mode 0600).
        plans: users and pacing per class (default: `plan(rate)`).
    """
    import time  # noqa: PLC0415
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from api import domains  # noqa: PLC0415
    from api.context import build_cipher, build_tokens  # noqa: PLC0415
    from api.migrations import migrate_async  # noqa: PLC0415
    from core import db  # noqa: PLC0415
    from core.store import build_store  # noqa: PLC0415
    from credit.checks import BUSINESS_TYPES  # noqa: PLC0415
    from credit.tables import Authorization, CurrentScore, Person  # noqa: PLC0415

    started = time.perf_counter()
    plans = plans or plan(rate)
    await migrate_async()
    engine = db.build_engine(settings)
    domains.bind_tables(engine)
    await db.open_engine(engine, settings)
    store = build_store(settings.redis_url, settings.redis_namespace)
    try:
        cipher = build_cipher(settings)
        present, seeded = await _seed_if_needed(settings, engine=engine, cipher=cipher, persons=persons, say=say)
        say("partners, accounts, authorizations and benefit codes")
        ttl = duration_s + warmup_s + 1800
        tokens_by_partner = await _partners(settings, store=store, ttl_seconds=ttl)
        benefit_id, order_benefits = await _load_test_benefits()
        product_id = await _bank_product()

        citizens = await _citizens(cipher=cipher, store=store, count=persons)
        if not citizens:
            raise RuntimeError("the registry holds no persons")
        valid_past = datetime.now(UTC) + timedelta(seconds=ttl)
        score_ids = await _score_authorizations(cipher=cipher, citizens=citizens, valid_past=valid_past, say=say)
        portraits = await _portrait_grants(cipher=cipher, count=max(50, persons // 10), valid_past=valid_past)
        await Authorization.update({Authorization.daily_cap: LIFTED_CAP}).where(
            (Authorization.partner_client_id == BANK_ID) & (Authorization.daily_cap < LIFTED_CAP))
        owners = await _owners(settings=settings, cipher=cipher, citizens=citizens, limit=200, ttl_seconds=ttl)

        await _warm_scores(store=store, person_ids=[c["person_id"] for c in citizens], say=say)
        tokens = build_tokens(settings)
        publics = {int(r["id"]): str(r["public_id"]) for r in await Person.select(
            Person._meta.primary_key, Person.public_id).where(
            Person._meta.primary_key.is_in([c["person_id"] for c in citizens]))}
        for c in citizens:
            c["person_public_id"] = publics[c["person_id"]]
        # Orders hold part of a credit line, which only the upper tiers have: rental codes go to them.
        upper = {int(r["person"]) for r in await CurrentScore.select(CurrentScore.person).where(
            CurrentScore.tier.is_in(list(_CREDIT_LINE_TIERS)))}
        renters = [c for c in citizens if c["person_id"] in upper] or citizens
        travel_codes, rental_codes = await _code_supplies(
            store=store, citizens=citizens, renters=renters, merchant_plan=plans["Merchant"],
            seconds=duration_s + warmup_s, workers=locust_workers, ttl_seconds=ttl)
        fixtures = Fixtures(
            created_at=time.time(), duration_s=duration_s, plan=plans, bank_token=tokens_by_partner[BANK_ID],
            bank_product_id=product_id, score_authorizations=score_ids, portraits=portraits,
            citizens=[Citizen(account_id=c["account_id"], name=c["name"], id_number=c["id_number"],
                              token=tokens.issue(kind="citizen", subject=c["account_id"], ttl_seconds=ttl)[0])
                      for c in citizens],
            travel=MerchantFixture(client_id=TRAVEL_MERCHANT_ID, token=tokens_by_partner[TRAVEL_MERCHANT_ID],
                                   scenario="travel", benefit_id=benefit_id, codes=travel_codes),
            rental=MerchantFixture(client_id=RENTAL_MERCHANT_ID, token=tokens_by_partner[RENTAL_MERCHANT_ID],
                                   scenario="rental", benefit_id=None, codes=rental_codes,
                                   order_benefits=order_benefits),
            department_token=tokens_by_partner[DEPARTMENT_ID], business_types=sorted(BUSINESS_TYPES),
            source_token=tokens_by_partner[SOURCE_ID],
            owners=owners)
        write_fixtures(path, fixtures)
        return Prepared(persons_in_registry=present, seeded_now=seeded, citizens=len(citizens),
                        score_authorizations=len(score_ids), portraits=len(portraits), owners=len(owners),
                        codes={"travel": sum(map(len, travel_codes)), "rental": sum(map(len, rental_codes))},
                        seconds=time.perf_counter() - started)
    finally:
        await store.close()
        await db.close_engine(engine)


async def check_keys(settings: Settings) -> bool | None:
    """Whether the registry's personal data opens with these settings' keys (None: the registry is empty).

    Data encrypted under other keys cannot be used: tokens would verify but no id number would decrypt.
    """
    from api import domains  # noqa: PLC0415
    from api.context import build_cipher  # noqa: PLC0415
    from core import db  # noqa: PLC0415
    from credit.tables import Person  # noqa: PLC0415

    engine = db.build_engine(settings)
    domains.bind_tables(engine)
    await db.open_engine(engine, settings)
    try:
        try:
            row = await Person.select(Person.id_number_enc).first()
        except Exception:  # not migrated yet: nothing is encrypted under any key
            return None
        if row is None:
            return None
        try:
            build_cipher(settings).decrypt("id_number", row["id_number_enc"])
        except Exception:  # any failure to open means other keys
            return False
        return True
    finally:
        await db.close_engine(engine)
