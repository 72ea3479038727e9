"""Locust suite: a realistic day of xinyi traffic from every kind of user (DESIGN §6, issue 7).

Run it through `xinyi loadtest` (which prepares the fixtures, starts the server with production settings
and writes the report). By hand, against a server running with the same keys as the fixtures:

    XINYI_LOADTEST_FIXTURES=/path/fixtures.json locust -f loadtests/locustfile.py -H http://127.0.0.1:8000

User classes, their share of requests and their tasks are defined once in `loadtests.fixtures.TRAFFIC`;
with a plan in the fixtures file, each class runs exactly `plan.users` users paced by `constant_throughput`
so that together they send the target rate. Requests are named by route template (`/v1/portraits/{uscc}`)
so statistics group per endpoint. Any answer other than the expected one is a failure, named by status
and problem `code`; the only 4xx accepted is the one a real client expects (an order over the citizen's
credit line: `409 credit_line_exceeded`).
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust import FastHttpUser, constant_throughput, events, task
from locust.contrib.fasthttp import FastResponse

from loadtests.fixtures import (
    FIXTURES_ENV,
    ORDER_LIMIT_FEN,
    RECORD_BATCH_ROWS,
    TRAFFIC,
    WORKER_ENV,
    Citizen,
    Fixtures,
    MerchantFixture,
    load_fixtures,
)

logger = logging.getLogger(__name__)

if not os.environ.get(FIXTURES_ENV):
    raise RuntimeError(f"set {FIXTURES_ENV} to a fixtures file (`xinyi loadtest` prepares one and runs this suite)")
FIXTURES: Fixtures = load_fixtures(os.environ[FIXTURES_ENV])
WORKER = int(os.environ.get(WORKER_ENV, "0"))
# Unique per process: transaction ids, source refs, order numbers and idempotency keys never collide
# between workers or runs.
RUN = secrets.token_hex(4)
_serial = itertools.count(1)

# The bank's authorization requests waiting for their citizen (approved by a CitizenApp user of this
# process); bounded: requests nobody gets to simply expire, as in life.
_pending_approvals: collections.deque[tuple[str, Citizen]] = collections.deque(maxlen=10_000)

_POSITIVE = ("volunteer_service", "blood_donation", "contract_fulfilment", "administrative_permit", "honour")
_TITLES = {"volunteer_service": "社区志愿服务", "blood_donation": "无偿献血", "contract_fulfilment": "按时履约",
           "administrative_permit": "行政许可", "honour": "见义勇为表彰", "utility_arrears": "水费欠缴"}


def _serial_id(prefix: str) -> str:
    return f"{prefix}-{RUN}-{WORKER}-{next(_serial)}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _fail(kind: str, name: str, message: str) -> None:
    """A failure that is not one HTTP answer (a check on an answer's content, a fixture running out)."""
    events.request.fire(request_type=kind, name=name, response_time=0,  # type: ignore[no-untyped-call]
                        response_length=0, exception=RuntimeError(message), context={})


def _problem_code(response: FastResponse) -> str:
    try:
        body = response.json()
    except Exception:  # not JSON (e.g. a proxy's HTML page): the status says enough
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


class _Supply:
    """This worker's single-use benefit codes; running out is reported once as a failure, never hidden."""

    def __init__(self, merchant: MerchantFixture) -> None:
        self.codes = list(merchant.codes[WORKER % len(merchant.codes)]) if merchant.codes else []
        self.scenario = merchant.scenario
        self.reported = False

    def take(self) -> str | None:
        if self.codes:
            return self.codes.pop()
        if not self.reported:
            self.reported = True
            logger.error("the %s benefit code supply of worker %d ran out", self.scenario, WORKER)
            _fail("FIXTURE", f"{self.scenario} benefit code supply", "supply exhausted: size it larger")
        return None


_TRAVEL_CODES = _Supply(FIXTURES.travel)
_RENTAL_CODES = _Supply(FIXTURES.rental)


class _Base(FastHttpUser):
    abstract = True
    # FastHttpUser retries nothing and keeps one connection per user: each user is one client.
    period = 1.0  # seconds between the starts of two task runs (set from the plan)

    def on_start(self) -> None:
        # Locust starts a batch of users at the same instant and constant_throughput keeps each user's phase,
        # so without this the requests would arrive in synchronized bursts instead of spread over time.
        gevent.sleep(random.uniform(0, self.period))

    def call(self, method: str, path: str, *, name: str, token: str | None = None, json: Any = None,
             ok: tuple[int, ...] = (200,), accept: tuple[tuple[int, str], ...] = (),
             headers: dict[str, str] | None = None) -> Any:
        """Send one request; return the JSON body of an `ok` answer (None otherwise).

        `accept` lists (status, problem code) answers a real client expects and handles: counted as
        successes, answered None. Anything else is a failure named by status and problem code.
        """
        sent = dict(headers or {})
        if token:
            sent.update(_bearer(token))
        with self.client.request(method, path, name=name, json=json, headers=sent, catch_response=True) as response:
            status = response.status_code
            if status in ok:
                response.success()
                return response.json() if response.content else {}
            code = _problem_code(response)
            if (status, code) in accept:
                response.success()
                return None
            response.failure(f"{status} {code}".strip())
            return None


def _paced(cls: type[_Base]) -> type[_Base]:
    """Set a user class's weight and, from the plan, its exact user count and pacing."""
    name = cls.__name__
    cls.weight = max(1, round(TRAFFIC[name].share))
    planned = FIXTURES.plan.get(name)
    if planned is None:
        cls.wait_time = constant_throughput(1)
    else:
        cls.fixed_count = planned.users
        cls.wait_time = constant_throughput(planned.iterations_per_second)
        cls.period = 1 / planned.iterations_per_second
    return cls


def _weight(user: str, name: str) -> int:
    return TRAFFIC[user].tasks[name].weight


@_paced
class CitizenApp(_Base):
    """The city app: a citizen looks at their score and benefits, shows a benefit code, reviews and approves
    authorizations and reads who accessed their data. Each run is a random citizen of the fixtures."""


    def citizen(self) -> Citizen:
        return random.choice(FIXTURES.citizens)

    @task(_weight("CitizenApp", "score"))
    def score(self) -> None:
        self.call("GET", "/v1/me/score", name="/v1/me/score", token=self.citizen().token)

    @task(_weight("CitizenApp", "benefits"))
    def benefits(self) -> None:
        self.call("GET", "/v1/me/benefits", name="/v1/me/benefits", token=self.citizen().token)

    @task(_weight("CitizenApp", "benefit_code"))
    def benefit_code(self) -> None:
        self.call("POST", "/v1/me/benefit-codes", name="/v1/me/benefit-codes", token=self.citizen().token, json={},
                  ok=(201,))

    @task(_weight("CitizenApp", "authorizations"))
    def authorizations(self) -> None:
        self.call("GET", "/v1/me/authorizations?limit=20", name="/v1/me/authorizations", token=self.citizen().token)

    @task(_weight("CitizenApp", "access_log"))
    def access_log(self) -> None:
        self.call("GET", "/v1/me/access-log?limit=20", name="/v1/me/access-log", token=self.citizen().token)

    @task(_weight("CitizenApp", "approve"))
    def approve(self) -> None:
        """Approve a bank's pending request for this citizen (or, with none waiting, just look at the list)."""
        if not _pending_approvals:
            self.authorizations()
            return
        authorization_id, citizen = _pending_approvals.popleft()
        self.call("POST", f"/v1/me/authorizations/{authorization_id}/approve",
                  name="/v1/me/authorizations/{id}/approve", token=citizen.token)


@_paced
class PartnerBank(_Base):
    """A bank's back end: score queries and threshold checks under citizens' authorizations, new
    authorization requests, enterprise portrait pulls and its loan applications."""


    @task(_weight("PartnerBank", "score_query"))
    def score_query(self) -> None:
        self.call("POST", "/v1/scores/query", name="/v1/scores/query", token=FIXTURES.bank_token,
                  json={"authorization_id": random.choice(FIXTURES.score_authorizations)})

    @task(_weight("PartnerBank", "score_check"))
    def score_check(self) -> None:
        self.call("POST", "/v1/scores/check", name="/v1/scores/check", token=FIXTURES.bank_token,
                  json={"authorization_id": random.choice(FIXTURES.score_authorizations),
                        "threshold": random.choice((500, 600, 700)), "transaction_id": _serial_id("txn")})

    @task(_weight("PartnerBank", "ask_authorization"))
    def ask_authorization(self) -> None:
        citizen = random.choice(FIXTURES.citizens)
        body = self.call("POST", "/v1/authorizations", name="/v1/authorizations", token=FIXTURES.bank_token, ok=(201,),
                         json={"subject": {"kind": "person", "id_number": citizen.id_number, "name": citizen.name},
                               "purpose": "loan_pre_approval", "scopes": ["tier", "score"], "validity_days": 30})
        if body:
            _pending_approvals.append((body["id"], citizen))

    @task(_weight("PartnerBank", "portrait"))
    def portrait(self) -> None:
        grant = random.choice(FIXTURES.portraits)
        self.call("GET", f"/v1/portraits/{grant.uscc}?authorization_id={grant.authorization_id}",
                  name="/v1/portraits/{uscc}", token=FIXTURES.bank_token)

    @task(_weight("PartnerBank", "applications"))
    def applications(self) -> None:
        self.call("GET", "/v1/lending/applications?limit=20", name="/v1/lending/applications",
                  token=FIXTURES.bank_token)


@_paced
class Merchant(_Base):
    """Merchants at work: a scenic spot scans a benefit code and redeems the discount; a rental shop scans,
    opens a deposit-free / pay-later order against the citizen's credit line and completes it on return."""


    def verify(self, merchant: MerchantFixture, supply: _Supply) -> dict[str, Any] | None:
        code = supply.take()
        if code is None:
            return None
        answer: dict[str, Any] | None = self.call(
            "POST", "/v1/benefits/verify", name="/v1/benefits/verify", token=merchant.token,
            json={"code": code, "scenario": merchant.scenario})
        return answer

    @task(_weight("Merchant", "verify_and_redeem"))
    def verify_and_redeem(self) -> None:
        merchant = FIXTURES.travel
        verified = self.verify(merchant, _TRAVEL_CODES)
        if not verified:
            return
        if merchant.benefit_id not in {b["benefit_id"] for b in verified["benefits"]}:
            # Our benefit applies to everyone: its absence is a wrong answer, not a quiet skip.
            _fail("CHECK", "/v1/benefits/verify lists the benefit", "the load-test benefit is missing")
            return
        ticket = _serial_id("T")
        self.call("POST", "/v1/benefits/redeem", name="/v1/benefits/redeem", token=merchant.token, ok=(201,),
                  headers={"Idempotency-Key": ticket},
                  json={"verification_id": verified["verification_id"], "benefit_id": merchant.benefit_id,
                        "order_ref": ticket})

    @task(_weight("Merchant", "credit_order"))
    def credit_order(self) -> None:
        merchant = FIXTURES.rental
        verified = self.verify(merchant, _RENTAL_CODES)
        if not verified:
            return
        offered = {b["benefit_id"] for b in verified["benefits"]}
        kinds = [kind for kind, benefit in merchant.order_benefits.items() if benefit in offered]
        if not kinds:
            # Our rental benefits apply to everyone: an order the verification does not allow is a wrong answer.
            _fail("CHECK", "/v1/benefits/verify offers a credit order", "no deposit-free or pay-later benefit")
            return
        number = _serial_id("RENT")
        due = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        order = self.call(
            "POST", "/v1/credit-orders", name="/v1/credit-orders", token=merchant.token, ok=(201,),
            headers={"Idempotency-Key": number},
            # A citizen whose tier has no line (or whose line is held) is told so: the merchant takes a deposit.
            accept=((409, "credit_line_exceeded"),),
            json={"verification_id": verified["verification_id"],
                  "kind": random.choice(kinds), "amount_fen": random.randrange(5_000, ORDER_LIMIT_FEN),
                  "merchant_order_no": number, "due_at": due, "description": "充电宝免押租借"})
        if order:
            self.call("POST", f"/v1/credit-orders/{order['id']}/complete", name="/v1/credit-orders/{id}/complete",
                      token=merchant.token)


@_paced
class Department(_Base):
    """Government departments: a credit check (联合奖惩核查) before a business step."""


    @task(_weight("Department", "check_person"))
    def check_person(self) -> None:
        citizen = random.choice(FIXTURES.citizens)
        self.call("POST", "/v1/credit-checks", name="/v1/credit-checks", token=FIXTURES.department_token, ok=(201,),
                  json={"subject": {"kind": "person", "id_number": citizen.id_number, "name": citizen.name},
                        "business_type": random.choice(FIXTURES.business_types)})

    @task(_weight("Department", "check_enterprise"))
    def check_enterprise(self) -> None:
        self.call("POST", "/v1/credit-checks", name="/v1/credit-checks", token=FIXTURES.department_token, ok=(201,),
                  json={"subject": {"kind": "enterprise", "uscc": random.choice(FIXTURES.portraits).uscc},
                        "business_type": random.choice(FIXTURES.business_types)})


@_paced
class DataSource(_Base):
    """A data source's batch job: small batches of records about persons, mostly positive (a day brings
    far more fulfilments and volunteering than arrears)."""


    @task(_weight("DataSource", "record_batch"))
    def record_batch(self) -> None:
        rows = []
        for citizen in random.sample(FIXTURES.citizens, min(RECORD_BATCH_ROWS, len(FIXTURES.citizens))):
            category = random.choice(_POSITIVE) if random.random() < 0.9 else "utility_arrears"
            occurred = datetime.now(UTC) - timedelta(days=random.randrange(1, 300))
            rows.append({"source_ref": _serial_id("rec"), "category": category, "title": _TITLES[category],
                         "subject": {"kind": "person", "id_number": citizen.id_number, "name": citizen.name},
                         "occurred_at": occurred.replace(microsecond=0).isoformat()})
        with self.client.post("/v1/records/batch", name="/v1/records/batch", json=rows,
                              headers=_bearer(FIXTURES.source_token), catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {_problem_code(response)}".strip())
                return
            answer = response.json()
            if answer["summary"]["rejected"]:
                codes = sorted({r["code"] for r in answer["rejected_rows"]})
                response.failure(f"rows rejected: {', '.join(codes)}")
            else:
                response.success()


@_paced
class PublicAndEnterprise(_Base):
    """The public catalogs, and enterprise owners looking at their portrait and posting a financing demand
    (submitted to the load-test bank's product when it matches)."""


    @task(_weight("PublicAndEnterprise", "scenarios"))
    def scenarios(self) -> None:
        self.call("GET", "/v1/scenarios", name="/v1/scenarios")

    @task(_weight("PublicAndEnterprise", "products"))
    def products(self) -> None:
        self.call("GET", "/v1/lending/products?limit=20", name="/v1/lending/products")

    @task(_weight("PublicAndEnterprise", "enterprise_portrait"))
    def enterprise_portrait(self) -> None:
        if FIXTURES.owners:
            owner = random.choice(FIXTURES.owners)
            self.call("GET", f"/v1/enterprises/{owner.uscc}/portrait", name="/v1/enterprises/{uscc}/portrait",
                      token=owner.token)

    @task(_weight("PublicAndEnterprise", "demand"))
    def demand(self) -> None:
        if not FIXTURES.owners:
            return
        owner = random.choice(FIXTURES.owners)
        demand = self.call("POST", "/v1/lending/demands", name="/v1/lending/demands", token=owner.token, ok=(201,),
                           json={"uscc": owner.uscc, "amount_fen": random.choice((20, 50, 100, 300)) * 1_000_000,
                                 "term_months": random.choice((6, 12, 24)), "purpose": "采购原材料",
                                 "guarantee_offered": "credit", "max_rate_bp": 600})
        if not demand:
            return
        if any(m["product"]["id"] == FIXTURES.bank_product_id for m in demand.get("matches", [])):
            self.call("POST", f"/v1/lending/demands/{demand['id']}/submit", name="/v1/lending/demands/{id}/submit",
                      token=owner.token, json={"product_ids": [FIXTURES.bank_product_id], "consent": True})
