"""Deposit-free and pay-later credit orders (信用免押 / 先享后付), modelled on Alipay pre-authorization and
WeChat Pay Score. No HTTP objects here.

A merchant identifies the citizen with a benefit-code verification, then opens an order that holds part of
the citizen's credit line (configured per tier). The verification must have offered the order's kind — a
`deposit_waiver` benefit for a deposit-free order, a `pay_later_limit` one for a pay-later order — and the
scenario and that benefit must still be active. State machine (DESIGN §3):

    authorized → finished | cancelled | defaulted
    defaulted  → settled (within the grace period) | recorded (by the background step, after it)

- The line is held by one row per person in `credit_line_usages`. Reserving is a single conditional upsert
  (`... ON CONFLICT (person) DO UPDATE ... WHERE reserved + amount <= line`), in the same transaction as the
  order insert, so concurrent orders can never hold more than the line on any number of workers.
- Every transition is a conditional update (`WHERE status = <from>`) in one transaction with what it implies
  (releasing the line, a credit record, outbox events), so of two concurrent transitions exactly one acts.
  Repeating a transition that already happened answers the order unchanged.
- A finished-on-time order adds a small positive `contract_fulfilment` record, at most one per merchant and
  citizen per calendar month (China time): otherwise a merchant could open and complete tiny orders to pump
  the citizen's fulfilment dimension. The check runs in the completing transaction after it has locked the
  citizen's line row, so concurrent completions cannot both pass it. A default not settled within the grace
  period becomes a negative `contract_default` record whose source is the merchant, so the citizen's
  objection (异议) goes to the merchant like any data source's.
- A pay-later order can be reported defaulted only once it is due (the citizen has until then to pay); a
  deposit-free one at any time (a bike lost, a room damaged).
- What a merchant learns is eligibility: an order over the line is refused without saying how much is left
  (the line is per tier, so the amount would give the tier away).
- The merchant hears of every change by webhook (outbox, recipient = its client id); the citizen is told of
  a default and of its record by a notice (recipient `citizen:<account id>`). Neither carries a score, tier,
  id number or phone.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.query.mixins import OnConflictAction

from core import clock, db
from core.clock import CITY_TZ
from core.db import as_utc, as_utc_or_none
from core.errors import Conflict, NotFound, Unprocessable
from core.store import Store
from credit.catalog import CATEGORIES
from credit.identity import new_public_id
from credit.ledger import AccessEvent, LedgerWriter
from credit.scores import current_score, mark_for_rescoring, rescore_marked
from credit.tables import CreditRecord, LedgerEntry, OutboxEvent, Person
from scenarios.catalog import CATALOG, PUBLIC_ID, CatalogSnapshot
from scenarios.codes import Verification, load_verification
from scenarios.order_schemas import (
    MerchantCreditOrder,
    MerchantCreditOrderPage,
    MyCreditLine,
    MyCreditOrder,
    MyCreditOrderPage,
)
from scenarios.tables import Benefit, CreditLineUsage, CreditOrder, Scenario

logger = logging.getLogger("xinyi.orders")

AUTHORIZED = "authorized"
FINISHED = "finished"
CANCELLED = "cancelled"
DEFAULTED = "defaulted"
SETTLED = "settled"
RECORDED = "recorded"
OPEN_STATUSES = (AUTHORIZED, DEFAULTED)
"""Orders that hold part of the credit line."""
KINDS = ("deposit_free", "pay_later")
LEDGER_PURPOSE = {"deposit_free": "deposit_waiver", "pay_later": "pay_later"}
"""The purpose (credit.catalog.PURPOSES code) a credit-line check serves, as the access log names it."""
ORDER_BENEFIT_KIND = {"deposit_free": "deposit_waiver", "pay_later": "pay_later_limit"}
"""The benefit kind (scenarios.catalog.KINDS) a verification must have offered for an order of each kind."""
MAX_GRACE_DAYS = 365
"""The longest grace period honoured, whatever the settings say (start-up refuses more)."""

MAX_TERM = timedelta(days=90)
"""The latest due date an order may have: a pre-authorization is for a stay, a ride, a treatment."""
FULFILMENT_CATEGORY = "contract_fulfilment"
FULFILMENT_SEVERITY = "minor"
DEFAULT_CATEGORY = "contract_default"
DEFAULT_SEVERITY = "general"

CitizenAccountOf = Callable[[int], Awaitable[str | None]]
"""The public id of a registry person's citizen account, None when the person has none. Accounts are not this
domain's: whoever calls a step that notifies the citizen passes the lookup (the accounts domain's)."""

_ORDER_PK = CreditOrder._meta.primary_key
_COLUMNS = (_ORDER_PK, CreditOrder.public_id, CreditOrder.person, CreditOrder.merchant_client_id,
            CreditOrder.merchant_name, CreditOrder.scenario, CreditOrder.kind, CreditOrder.amount_fen,
            CreditOrder.merchant_order_no, CreditOrder.description, CreditOrder.status, CreditOrder.due_at,
            CreditOrder.grace_until, CreditOrder.default_amount_fen, CreditOrder.record_public_id,
            CreditOrder.created_at, CreditOrder.updated_at, CreditOrder.finished_at, CreditOrder.cancelled_at,
            CreditOrder.defaulted_at, CreditOrder.settled_at, CreditOrder.recorded_at)
# One statement reserves or refuses: concurrent reservations serialize on the person's row, and the WHERE
# is evaluated against the latest committed amount, so the line is never exceeded.
_RESERVE_SQL = (
    "INSERT INTO credit_line_usages (person, reserved_fen, updated_at) VALUES ({}, {}, {}) "
    "ON CONFLICT (person) DO UPDATE SET reserved_fen = credit_line_usages.reserved_fen + excluded.reserved_fen, "
    "updated_at = excluded.updated_at "
    "WHERE credit_line_usages.reserved_fen + excluded.reserved_fen <= {} "
    "RETURNING reserved_fen")


def yuan(fen: int) -> str:
    """Fen as a yuan amount for people, e.g. 30000 → "300.00"."""
    return f"{fen // 100}.{fen % 100:02d}"


# ---------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class Merchant:
    """The partner acting on orders."""

    client_id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class OrderView:
    id: str
    person_id: int
    merchant_client_id: str
    merchant_name: str
    scenario: str
    kind: str
    amount_fen: int
    merchant_order_no: str
    description: str
    status: str
    due_at: datetime
    grace_until: datetime | None
    default_amount_fen: int | None
    record_id: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    cancelled_at: datetime | None
    defaulted_at: datetime | None
    settled_at: datetime | None
    recorded_at: datetime | None


def _view(row: dict[str, Any]) -> OrderView:
    default_amount = row["default_amount_fen"]
    return OrderView(
        id=row["public_id"], person_id=int(row["person"]), merchant_client_id=row["merchant_client_id"],
        merchant_name=row["merchant_name"], scenario=row["scenario"], kind=row["kind"],
        amount_fen=int(row["amount_fen"]), merchant_order_no=row["merchant_order_no"],
        description=row["description"], status=row["status"], due_at=as_utc(row["due_at"]),
        grace_until=as_utc_or_none(row["grace_until"]),
        default_amount_fen=None if default_amount is None else int(default_amount),
        record_id=row["record_public_id"], created_at=as_utc(row["created_at"]), updated_at=as_utc(row["updated_at"]),
        finished_at=as_utc_or_none(row["finished_at"]), cancelled_at=as_utc_or_none(row["cancelled_at"]),
        defaulted_at=as_utc_or_none(row["defaulted_at"]), settled_at=as_utc_or_none(row["settled_at"]),
        recorded_at=as_utc_or_none(row["recorded_at"]))


def _merchant_order(view: OrderView) -> MerchantCreditOrder:
    """The order as its merchant sees it."""
    return MerchantCreditOrder(
        id=view.id, merchant_order_no=view.merchant_order_no, scenario=view.scenario, kind=view.kind,
        amount_fen=view.amount_fen, description=view.description, status=view.status, due_at=view.due_at,
        created_at=view.created_at, updated_at=view.updated_at, grace_until=view.grace_until,
        default_amount_fen=view.default_amount_fen, record_id=view.record_id, finished_at=view.finished_at,
        cancelled_at=view.cancelled_at, defaulted_at=view.defaulted_at, settled_at=view.settled_at,
        recorded_at=view.recorded_at)


def _my_order(view: OrderView) -> MyCreditOrder:
    """The order as its citizen sees it."""
    return MyCreditOrder(
        id=view.id, merchant_name=view.merchant_name, scenario=view.scenario, kind=view.kind,
        amount_fen=view.amount_fen, description=view.description, status=view.status, due_at=view.due_at,
        created_at=view.created_at, updated_at=view.updated_at, merchant_order_no=view.merchant_order_no,
        grace_until=view.grace_until, default_amount_fen=view.default_amount_fen, record_id=view.record_id)


async def _row(order_id: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = await CreditOrder.select(*_COLUMNS).where(CreditOrder.public_id == order_id).first()
    return row


async def _own_row(*, order_id: str, merchant_client_id: str) -> dict[str, Any]:
    """The merchant's own order; another merchant's looks exactly like a missing one."""
    if not PUBLIC_ID.match(order_id):  # a NUL byte or a 10 kB path names no order (and never reaches the database)
        raise NotFound("credit order not found", code="credit_order_not_found")
    row = await CreditOrder.select(*_COLUMNS).where(
        (CreditOrder.public_id == order_id) & (CreditOrder.merchant_client_id == merchant_client_id)).first()
    if row is None:
        raise NotFound("credit order not found", code="credit_order_not_found")
    return dict(row)


async def get_order(*, order_id: str, merchant_client_id: str) -> MerchantCreditOrder:
    """One of the merchant's own orders.

    Raises:
        NotFound: `credit_order_not_found` — no such order, or another merchant's.
    """
    return _merchant_order(_view(await _own_row(order_id=order_id, merchant_client_id=merchant_client_id)))


async def _page(query: Any, *, limit: int, cursor: str | None) -> tuple[list[OrderView], str | None]:
    """Newest first over (created_at, public_id), with an opaque cursor."""
    rows, next_cursor = await db.newest_first(query, at=CreditOrder.created_at, key=CreditOrder.public_id,
                                              limit=limit, cursor=cursor)
    return [_view(r) for r in rows], next_cursor


async def merchant_orders(*, merchant_client_id: str, merchant_order_no: str | None = None,
                          status: str | None = None, limit: int, cursor: str | None
                          ) -> MerchantCreditOrderPage:
    """The merchant's own orders, newest first (optionally one merchant order number, or one status)."""
    query = CreditOrder.select(*_COLUMNS).where(CreditOrder.merchant_client_id == merchant_client_id)
    if merchant_order_no is not None:
        query = query.where(CreditOrder.merchant_order_no == merchant_order_no)
    if status is not None:
        query = query.where(CreditOrder.status == status)
    views, next_cursor = await _page(query, limit=limit, cursor=cursor)
    return MerchantCreditOrderPage(items=[_merchant_order(v) for v in views], next_cursor=next_cursor)


async def person_orders(*, person_id: int, status: str | None = None, limit: int, cursor: str | None
                        ) -> MyCreditOrderPage:
    """The citizen's own orders at every merchant, newest first."""
    query = CreditOrder.select(*_COLUMNS).where(CreditOrder.person == person_id)
    if status is not None:
        query = query.where(CreditOrder.status == status)
    views, next_cursor = await _page(query, limit=limit, cursor=cursor)
    return MyCreditOrderPage(items=[_my_order(v) for v in views], next_cursor=next_cursor)


async def _reserved(person_id: int) -> int:
    row = await CreditLineUsage.select(CreditLineUsage.reserved_fen).where(
        CreditLineUsage.person == person_id).first()
    return int(row["reserved_fen"]) if row else 0


async def credit_line(*, store: Store, person_id: int, credit_lines: Mapping[str, int]) -> MyCreditLine:
    """The citizen's line for their current tier, what open orders hold of it and what is left."""
    tier = (await current_score(store=store, person_id=person_id)).tier
    line = int(credit_lines.get(tier, 0))
    reserved = await _reserved(person_id)
    open_orders = await CreditOrder.count().where(
        (CreditOrder.person == person_id) & CreditOrder.status.is_in(list(OPEN_STATUSES)))
    # A tier that dropped after orders were opened can leave more held than the new line: nothing is left.
    return MyCreditLine(tier=tier, line_fen=line, reserved_fen=reserved, available_fen=max(0, line - reserved),
                        open_orders=int(open_orders))


# ---------------------------------------------------------------- events and records


def _merchant_event(order: OrderView | dict[str, Any], *, status: str, extra: dict[str, Any] | None = None
                    ) -> OutboxEvent:
    """A webhook to the merchant: the order by our id and its own number, never the customer's data."""
    view = order if isinstance(order, OrderView) else _view(order)
    topic = f"credit_order.{status}"
    payload: dict[str, Any] = {
        "type": topic, "order_id": view.id, "merchant_order_no": view.merchant_order_no, "status": status,
        "kind": view.kind, "amount_fen": view.amount_fen, "due_at": view.due_at.isoformat(), **(extra or {})}
    return OutboxEvent(public_id=f"evt_{secrets.token_hex(12)}", topic=topic, aggregate_id=view.id,
                       recipient=view.merchant_client_id, payload=payload)


async def _citizen_notice(view: OrderView, *, topic: str, payload: dict[str, Any],
                          citizen_account: CitizenAccountOf) -> OutboxEvent | None:
    """A notice for the citizen's app; None when the person has no account (nobody to tell)."""
    account_id = await citizen_account(view.person_id)
    if account_id is None:
        return None
    body = {"type": topic, "order_id": view.id, "merchant_name": view.merchant_name, "kind": view.kind,
            "amount_fen": view.amount_fen, **payload}
    return OutboxEvent(public_id=f"evt_{secrets.token_hex(12)}", topic=topic, aggregate_id=view.id,
                       recipient=f"citizen:{account_id}", payload=body)


def _credit_record(view: OrderView, *, record_id: str, category: str, severity: str, title: str,
                   occurred_at: datetime, now: datetime) -> CreditRecord:
    """A credit record about the order's citizen, sent (like a data source's) by the merchant.

    (source, source_ref) = (merchant, order id) is unique: one order yields at most one record.
    """
    entry = CATEGORIES[category]
    return CreditRecord(
        public_id=record_id, subject_kind="person", person=view.person_id, enterprise=None, category=category,
        polarity=entry.polarity, severity=severity, dimension=entry.dimension, title=title[:200],
        source=view.merchant_client_id, source_ref=view.id, occurred_at=occurred_at, status="active",
        created_at=now, updated_at=now)


async def _release(view: OrderView, *, now: datetime) -> None:
    """Give the order's hold back to the line (called once per order, by the transition that closes it)."""
    await CreditLineUsage.update({
        CreditLineUsage.reserved_fen: CreditLineUsage.reserved_fen - view.amount_fen,
        CreditLineUsage.updated_at: now}).where(CreditLineUsage.person == view.person_id)


# ---------------------------------------------------------------- opening an order


class _LineExceeded(Exception):
    """The conditional reservation did not fit (rolls the transaction back)."""


class _OrderNoTaken(Exception):
    """Another request inserted this merchant order number first (rolls the reservation back)."""


def _open_event(*, merchant: Merchant, person_public_id: str, kind: str, order_public_id: str,
                outcome: str) -> AccessEvent:
    """The ledger entry for a merchant checking the citizen's credit line to open an order."""
    return AccessEvent(
        actor_kind="merchant", actor_id=merchant.client_id, actor_name=merchant.name, actor_type=merchant.kind,
        subject_kind="person", subject_id=person_public_id, action="credit_order.open",
        outcome=outcome, purpose=LEDGER_PURPOSE.get(kind), fields=("credit_line",),
        result_digest=hashlib.sha256(f"{outcome}:{order_public_id}".encode()).hexdigest())


async def _ensure_logged(ledger: LedgerWriter, *, merchant: Merchant, view: OrderView, kind: str,
                         person_public_id: str | None) -> None:
    """On a retry of an opened order, write its ledger entry if the first attempt never did.

    The order commits before its entry is appended; if the process or the database died in between, the merchant
    got a 503 and retries with the same order number. That retry is where the missing entry is made good (found by
    the subject index; a retry racing the first attempt may at worst log the same check twice, never zero times).
    """
    if person_public_id is None:  # the verification expired since: the order names the person
        person = await Person.select(Person.public_id).where(Person._meta.primary_key == view.person_id).first()
        if person is None:
            return
        person_public_id = str(person["public_id"])
    event = _open_event(merchant=merchant, person_public_id=person_public_id, kind=kind, order_public_id=view.id,
                        outcome="allowed")
    logged = await LedgerEntry.exists().where(
        (LedgerEntry.subject_id == event.subject_id) & (LedgerEntry.action == event.action)
        & (LedgerEntry.result_digest == event.result_digest))
    if not logged:
        await ledger.append(event)


def _same_order(row: dict[str, Any], *, person_id: int | None, kind: str, amount_fen: int, due_at: datetime,
                description: str) -> OrderView:
    """A retry of an order already opened: the same order back, or 409 if the terms differ (the person too, when
    the verification is still there to tell who it is)."""
    view = _view(row)
    if (view.kind, view.amount_fen, view.due_at, view.description) != (kind, amount_fen, due_at, description) or (
            person_id is not None and view.person_id != person_id):
        raise Conflict("this merchant order number was already used for another order",
                       code="merchant_order_no_reused")
    return view


async def _reserve_and_insert(order: CreditOrder, *, line: int, now: datetime) -> dict[str, Any]:
    """Hold the amount on the line and insert the order with its webhook, all or nothing.

    Raises:
        _LineExceeded: the amount does not fit the line (nothing was written).
        _OrderNoTaken: the merchant order number is already used (the hold was rolled back).
    """
    amount = int(order.amount_fen)
    if amount > line:
        raise _LineExceeded  # the upsert's first insert is unconditional: refuse before it
    async with db.transaction(CreditOrder):
        held = await CreditLineUsage.raw(_RESERVE_SQL, order.person, amount, now, line)
        if not held:
            raise _LineExceeded
        inserted = await CreditOrder.insert(order).on_conflict(
            target=(CreditOrder.merchant_client_id, CreditOrder.merchant_order_no),
            action=OnConflictAction.do_nothing).returning(CreditOrder.public_id)
        if not inserted:
            raise _OrderNoTaken
        row = await _row(str(order.public_id))
        assert row is not None
        await OutboxEvent.insert(_merchant_event(row, status=AUTHORIZED))
    return row


def _offering(catalog: CatalogSnapshot, verification: Verification, *, wanted: str,
              merchant_client_id: str) -> list[str]:
    """The verification's benefits of kind `wanted` the merchant takes part in, as `catalog` has them."""
    return [rule.id for rule in (catalog.benefits.get(b) for b in verification.benefit_ids)
            if rule is not None and rule.kind == wanted and rule.serves(merchant_client_id)]


async def _check_offered(*, verification: Verification, kind: str, merchant_client_id: str, now: datetime) -> None:
    """The verification offered a benefit for this kind of order, and it and its scenario are still active.

    Kinds and participating merchants come from the catalog cache (never older than the catalog's bound,
    `CATALOG_MAX_AGE_SECONDS`); statuses are read from the database, as redemption does, so a pause stops
    new orders at once on every worker.

    Raises:
        Conflict: `scenario_not_active`; `benefit_not_active` (paused, retired or out of its window since).
        Unprocessable: `credit_order_not_offered`.
    """
    wanted = ORDER_BENEFIT_KIND[kind]
    catalog = await CATALOG.get()
    matching = _offering(catalog, verification, wanted=wanted, merchant_client_id=merchant_client_id)
    if not matching or any(b not in catalog.benefits for b in verification.benefit_ids):
        # Verified on a worker that may have known a benefit (or its new participating merchant) this worker's
        # cache has not caught up with: look at a catalog read after the verification before refusing.
        catalog = await CATALOG.get(read_after=verification.verified_at)
        matching = _offering(catalog, verification, wanted=wanted, merchant_client_id=merchant_client_id)
    scenario = await Scenario.select(Scenario.status).where(Scenario.code == verification.scenario).first()
    if scenario is None or scenario["status"] != "active":
        raise Conflict("the scenario is paused; no new credit orders", code="scenario_not_active")
    if not matching:
        noun = "deposit waiver" if kind == "deposit_free" else "pay-later"
        raise Unprocessable(f"the verification offered no {noun} benefit for a {kind} order",
                            code="credit_order_not_offered")
    still = await Benefit.exists().where(
        Benefit.public_id.is_in(matching) & (Benefit.status == "active") & (Benefit.valid_from <= now)
        & (Benefit.valid_until.is_null() | (Benefit.valid_until > now)))
    if not still:
        raise Conflict("the benefit offering this order is no longer active", code="benefit_not_active")


async def open_order(*, store: Store, ledger: LedgerWriter, merchant: Merchant, verification_id: str, kind: str,
                     amount_fen: int, merchant_order_no: str, due_at: datetime, description: str,
                     credit_lines: Mapping[str, int], now: datetime | None = None
                     ) -> tuple[MerchantCreditOrder, bool]:
    """Open an order for the citizen `verification_id` identified, holding `amount_fen` of their line.

    Returns the order and whether it was created now (False: the same order number and terms again).
    Checking the line is a use of the citizen's credit data by the merchant: it is written to the access
    ledger (allowed or refused) before the merchant hears the answer.

    Raises:
        NotFound: `verification_not_found` — unknown, expired, or made by another merchant.
        Unprocessable: `invalid_due_at` — not in the future, or more than `MAX_TERM` ahead;
            `credit_order_not_offered` — the verification offered no benefit of the order's kind.
        Conflict: `merchant_order_no_reused` (same number, other terms); `scenario_not_active`,
            `benefit_not_active` (paused since the verification); `credit_line_exceeded` (without amounts:
            the merchant learns only that the order does not fit).
    """
    moment = now or clock.now()
    try:
        due = as_utc(due_at).astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 has no UTC time
        raise Unprocessable(f"due_at must be in the future and at most {MAX_TERM.days} days ahead",
                            code="invalid_due_at", errors=[{"field": "due_at", "message": "out of range"}]) from None
    existing = await CreditOrder.select(*_COLUMNS).where(
        (CreditOrder.merchant_client_id == merchant.client_id)
        & (CreditOrder.merchant_order_no == merchant_order_no)).first()
    verification = await load_verification(store=store, verification_id=verification_id)
    if verification is not None and verification.merchant_client_id != merchant.client_id:
        verification = None
    terms: dict[str, Any] = {"kind": kind, "amount_fen": amount_fen, "due_at": due, "description": description.strip()}
    if existing is not None:
        # A retry, perhaps of a request whose answer was lost to a crash after its commit: the order is answered
        # even once the verification has expired (the person is then known from the order itself).
        view = _same_order(existing, person_id=verification.person_id if verification else None, **terms)
        await _ensure_logged(ledger, merchant=merchant, view=view, kind=kind,
                             person_public_id=verification.person_public_id if verification else None)
        return _merchant_order(view), False
    if verification is None:
        raise NotFound("verification not found or expired; verify the citizen's benefit code again",
                       code="verification_not_found")
    person_id = verification.person_id
    terms["person_id"] = person_id
    if due <= moment or due > moment + MAX_TERM:
        raise Unprocessable(f"due_at must be in the future and at most {MAX_TERM.days} days ahead",
                            code="invalid_due_at", errors=[{"field": "due_at", "message": "out of range"}])
    await _check_offered(verification=verification, kind=kind, merchant_client_id=merchant.client_id, now=moment)
    tier = (await current_score(store=store, person_id=person_id)).tier
    line = int(credit_lines.get(tier, 0))
    public_id = new_public_id("cor")

    async def ledger_entry(outcome: str) -> None:
        await ledger.append(_open_event(merchant=merchant, person_public_id=verification.person_public_id, kind=kind,
                                        order_public_id=public_id, outcome=outcome))

    order = CreditOrder(
        public_id=public_id, person=person_id, merchant_client_id=merchant.client_id, merchant_name=merchant.name,
        scenario=verification.scenario, kind=kind, amount_fen=amount_fen, merchant_order_no=merchant_order_no,
        description=terms["description"], status=AUTHORIZED, due_at=due, created_at=moment, updated_at=moment)
    try:
        row = await _reserve_and_insert(order, line=line, now=moment)
    except _LineExceeded:
        await ledger_entry("credit_line_exceeded")
        # No amounts: with no open orders what is left is the line of the citizen's tier, so a figure here
        # would tell the merchant the tier. The citizen sees their own line at GET /v1/me/credit-line.
        raise Conflict("the amount exceeds the citizen's available credit line", code="credit_line_exceeded") from None
    except _OrderNoTaken:
        raced = await CreditOrder.select(*_COLUMNS).where(
            (CreditOrder.merchant_client_id == merchant.client_id)
            & (CreditOrder.merchant_order_no == merchant_order_no)).first()
        if raced is None:  # inserted and rolled back meanwhile: the caller may simply retry
            raise Conflict("this merchant order number is being used by another request; retry",
                           code="merchant_order_no_in_use") from None
        view = _same_order(raced, **terms)
        # Usually the winner is logging it right now and this logs the same check a second time (the merchant did
        # send it twice); but if the winner dies before its entry, this answer must not go out with none.
        await _ensure_logged(ledger, merchant=merchant, view=view, kind=kind,
                             person_public_id=verification.person_public_id)
        return _merchant_order(view), False
    await ledger_entry("allowed")
    return _merchant_order(_view(row)), True


# ---------------------------------------------------------------- transitions


class _Raced(Exception):
    """The conditional update found the order no longer in the expected status."""


def _invalid(view: OrderView, action: str, hint: str = "") -> Conflict:
    return Conflict(f"cannot {action} an order that is {view.status}{hint}", code="invalid_order_transition")


async def _move(view: OrderView, *, source: str, target: str, now: datetime, values: dict[Any, Any] | None = None,
                extra: Any = None) -> None:
    """The conditional update every transition is: only from `source`, so concurrent transitions cannot both win."""
    where = (CreditOrder.public_id == view.id) & (CreditOrder.status == source)
    if extra is not None:
        where = where & extra
    done = await CreditOrder.update({CreditOrder.status: target, CreditOrder.updated_at: now, **(values or {})}
                                    ).where(where).returning(CreditOrder.public_id)
    if not done:
        raise _Raced


async def _after_race(*, order_id: str, merchant_client_id: str, target: str, action: str
                      ) -> MerchantCreditOrder:
    """A concurrent request moved the order first: the same transition is a repeat, any other a conflict."""
    view = _view(await _own_row(order_id=order_id, merchant_client_id=merchant_client_id))
    if view.status == target:
        return _merchant_order(view)
    raise _invalid(view, action)


def fulfilment_month(at: datetime) -> tuple[datetime, datetime]:
    """The calendar month (China time) `at` falls in, as a UTC [start, end) window."""
    local = as_utc(at).astimezone(CITY_TZ)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start.astimezone(UTC), end.astimezone(UTC)


async def _fulfilment_recorded(view: OrderView, *, at: datetime) -> bool:
    """Whether this merchant already gave this citizen an on-time record in `at`'s month (any status)."""
    start, end = fulfilment_month(at)
    return bool(await CreditRecord.exists().where(
        (CreditRecord.person == view.person_id) & (CreditRecord.source == view.merchant_client_id)
        & (CreditRecord.category == FULFILMENT_CATEGORY) & (CreditRecord.occurred_at >= start)
        & (CreditRecord.occurred_at < end)))


async def complete_order(*, store: Store, order_id: str, merchant_client_id: str, now: datetime | None = None
                         ) -> MerchantCreditOrder:
    """authorized → finished; frees the line. Finished on or before the due date: a positive record, at most
    one per merchant and citizen per calendar month (China time), so tiny orders cannot farm the score.

    Raises:
        NotFound: `credit_order_not_found`.
        Conflict: `invalid_order_transition`.
    """
    moment = now or clock.now()
    view = _view(await _own_row(order_id=order_id, merchant_client_id=merchant_client_id))
    if view.status == FINISHED:
        # A retry: if the first attempt's re-scoring never happened (a crash after its commit), do it now.
        await rescore_marked(store=store, person_ids=[view.person_id])
        return _merchant_order(view)
    if view.status != AUTHORIZED:
        raise _invalid(view, "complete")
    on_time = moment <= view.due_at
    record_id: str | None = None
    try:
        async with db.transaction(CreditOrder):
            await _move(view, source=AUTHORIZED, target=FINISHED, now=moment,
                        values={CreditOrder.finished_at: moment})
            # Releasing updates the citizen's line row, which locks it until commit: concurrent completions for
            # the same citizen queue here (on SQLite the IMMEDIATE transaction already does), so the monthly
            # check below sees any record another completion just committed. Same lock order as every other
            # transition (order row, then line row): no deadlock.
            await _release(view, now=moment)
            if on_time and not await _fulfilment_recorded(view, at=moment):
                record_id = new_public_id("rec")
                await CreditRecord.insert(_credit_record(
                    view, record_id=record_id, category=FULFILMENT_CATEGORY, severity=FULFILMENT_SEVERITY,
                    title=f"{view.merchant_name} 信用订单按时履约 {yuan(view.amount_fen)}元", occurred_at=moment,
                    now=moment))
                await CreditOrder.update({CreditOrder.record_public_id: record_id}).where(
                    CreditOrder.public_id == view.id)
                await mark_for_rescoring([view.person_id], trigger="record_change", now=moment)
            await OutboxEvent.insert(_merchant_event(view, status=FINISHED, extra={
                "finished_at": moment.isoformat(), "on_time": on_time}))
    except _Raced:
        return await _after_race(order_id=order_id, merchant_client_id=merchant_client_id, target=FINISHED,
                                 action="complete")
    if record_id is not None:
        await rescore_marked(store=store, person_ids=[view.person_id])
    return await get_order(order_id=order_id, merchant_client_id=merchant_client_id)


async def cancel_order(*, order_id: str, merchant_client_id: str, now: datetime | None = None
                       ) -> MerchantCreditOrder:
    """authorized → cancelled (nothing was provided); frees the line.

    Raises:
        NotFound: `credit_order_not_found`.
        Conflict: `invalid_order_transition`.
    """
    moment = now or clock.now()
    view = _view(await _own_row(order_id=order_id, merchant_client_id=merchant_client_id))
    if view.status == CANCELLED:
        return _merchant_order(view)
    if view.status != AUTHORIZED:
        raise _invalid(view, "cancel")
    try:
        async with db.transaction(CreditOrder):
            await _move(view, source=AUTHORIZED, target=CANCELLED, now=moment,
                        values={CreditOrder.cancelled_at: moment})
            await _release(view, now=moment)
            await OutboxEvent.insert(_merchant_event(view, status=CANCELLED,
                                                     extra={"cancelled_at": moment.isoformat()}))
    except _Raced:
        return await _after_race(order_id=order_id, merchant_client_id=merchant_client_id, target=CANCELLED,
                                 action="cancel")
    return await get_order(order_id=order_id, merchant_client_id=merchant_client_id)


async def default_order(*, order_id: str, merchant_client_id: str, amount_fen: int, reason: str | None,
                        grace_days: int, citizen_account: CitizenAccountOf, now: datetime | None = None
                        ) -> MerchantCreditOrder:
    """authorized → defaulted: the citizen owes `amount_fen` and has `grace_days` (at most `MAX_GRACE_DAYS`)
    to settle; `citizen_account` finds the account the citizen's notice goes to.

    The line stays held until the default is settled or recorded. The citizen is told at once. A pay-later
    order defaults only once due: until then the citizen has not failed to pay, and an early default would
    start the grace period (and so the negative record) before the term the merchant agreed to.

    Raises:
        NotFound: `credit_order_not_found`.
        Unprocessable: `default_amount_too_high` — more than the order amount.
        Conflict: `invalid_order_transition`; `default_amount_mismatch` — already defaulted with another amount;
            `order_not_yet_due` — a pay-later order before its due date.
    """
    moment = now or clock.now()
    view = _view(await _own_row(order_id=order_id, merchant_client_id=merchant_client_id))
    if amount_fen > view.amount_fen:
        raise Unprocessable(f"a default cannot exceed the order amount ({view.amount_fen} fen)",
                            code="default_amount_too_high", errors=[{"field": "amount_fen",
                                                                    "message": "above the order amount"}])
    if view.status == DEFAULTED:
        if view.default_amount_fen != amount_fen:
            raise Conflict(f"the order was already defaulted with amount_fen={view.default_amount_fen}",
                           code="default_amount_mismatch")
        return _merchant_order(view)
    if view.status != AUTHORIZED:
        raise _invalid(view, "default")
    if view.kind == "pay_later" and moment < view.due_at:
        raise Conflict(f"a pay-later order cannot default before it is due ({view.due_at.isoformat()})",
                       code="order_not_yet_due")
    grace_until = moment + timedelta(days=min(max(0, grace_days), MAX_GRACE_DAYS))
    clean_reason = reason.strip() if reason else None
    details: dict[str, Any] = {"default_amount_fen": amount_fen, "grace_until": grace_until.isoformat()}
    if clean_reason:
        details["reason"] = clean_reason
    try:
        async with db.transaction(CreditOrder):
            await _move(view, source=AUTHORIZED, target=DEFAULTED, now=moment, values={
                CreditOrder.defaulted_at: moment, CreditOrder.grace_until: grace_until,
                CreditOrder.default_amount_fen: amount_fen})
            await OutboxEvent.insert(_merchant_event(view, status=DEFAULTED, extra=details))
            notice = await _citizen_notice(view, topic="credit_order.defaulted", payload={
                **details, "status": DEFAULTED,
                "message": (f"您在{view.merchant_name}的信用订单未按约结清 {yuan(amount_fen)}元，请在宽限期内结清，"
                            "逾期将记入信用记录")}, citizen_account=citizen_account)
            if notice is not None:
                await OutboxEvent.insert(notice)
    except _Raced:
        return await _after_race(order_id=order_id, merchant_client_id=merchant_client_id, target=DEFAULTED,
                                 action="default")
    return await get_order(order_id=order_id, merchant_client_id=merchant_client_id)


async def settle_order(*, order_id: str, merchant_client_id: str, now: datetime | None = None
                       ) -> MerchantCreditOrder:
    """defaulted → settled: the citizen paid within the grace period; frees the line, no record.

    Raises:
        NotFound: `credit_order_not_found`.
        Conflict: `invalid_order_transition` (also once the grace period is over).
    """
    moment = now or clock.now()
    view = _view(await _own_row(order_id=order_id, merchant_client_id=merchant_client_id))
    if view.status == SETTLED:
        return _merchant_order(view)
    if view.status != DEFAULTED:
        raise _invalid(view, "settle")
    if view.grace_until is not None and moment > view.grace_until:
        raise _invalid(view, "settle", f" past its grace period (ended {view.grace_until.isoformat()})")
    try:
        async with db.transaction(CreditOrder):
            # Bounded by the grace period in the same statement: the background step records with the opposite
            # condition, so a settlement and a recording of one order can never both happen.
            await _move(view, source=DEFAULTED, target=SETTLED, now=moment, values={CreditOrder.settled_at: moment},
                        extra=CreditOrder.grace_until >= moment)
            await _release(view, now=moment)
            await OutboxEvent.insert(_merchant_event(view, status=SETTLED, extra={
                "settled_at": moment.isoformat(), "default_amount_fen": view.default_amount_fen}))
    except _Raced:
        return await _after_race(order_id=order_id, merchant_client_id=merchant_client_id, target=SETTLED,
                                 action="settle")
    return await get_order(order_id=order_id, merchant_client_id=merchant_client_id)


# ---------------------------------------------------------------- the background step


async def _record_one(row: dict[str, Any], *, now: datetime, citizen_account: CitizenAccountOf) -> bool:
    """Turn one unsettled default into a negative record; False if another worker claimed it first."""
    view = _view(row)
    record_id = new_public_id("rec")
    owed = view.default_amount_fen if view.default_amount_fen is not None else view.amount_fen
    try:
        async with db.transaction(CreditOrder):
            await _move(view, source=DEFAULTED, target=RECORDED, now=now, values={
                CreditOrder.recorded_at: now, CreditOrder.record_public_id: record_id},
                extra=CreditOrder.grace_until < now)
            await CreditRecord.insert(_credit_record(
                view, record_id=record_id, category=DEFAULT_CATEGORY, severity=DEFAULT_SEVERITY,
                title=f"{view.merchant_name} 信用订单违约逾期未结清 {yuan(owed)}元",
                occurred_at=view.defaulted_at or now, now=now))
            await _release(view, now=now)
            await mark_for_rescoring([view.person_id], trigger="record_change", now=now)
            details = {"record_id": record_id, "default_amount_fen": owed, "recorded_at": now.isoformat()}
            await OutboxEvent.insert(_merchant_event(view, status=RECORDED, extra=details))
            notice = await _citizen_notice(view, topic="credit_order.recorded", payload={
                **details, "status": RECORDED,
                "message": (f"您在{view.merchant_name}的信用订单宽限期内未结清，已记入信用记录；"
                            "如有异议，可在“我的信用记录”中提出异议")}, citizen_account=citizen_account)
            if notice is not None:
                await OutboxEvent.insert(notice)
    except _Raced:
        return False
    return True


async def record_unsettled_defaults(*, store: Store, citizen_account: CitizenAccountOf, now: datetime | None = None,
                                    limit: int = 500) -> int:
    """Defaults past their grace period become negative `contract_default` records; returns how many.
    `citizen_account` finds the account each citizen's notice goes to.

    Safe with several workers at once: each order is claimed by a conditional update, and only the
    claimant writes its record, releases its line and tells the merchant and the citizen.
    """
    moment = now or clock.now()
    rows = await CreditOrder.select(*_COLUMNS).where(
        (CreditOrder.status == DEFAULTED) & (CreditOrder.grace_until < moment)).order_by(
        CreditOrder.grace_until).limit(limit)
    recorded = 0
    persons: set[int] = set()
    for row in rows:
        try:
            if await _record_one(row, now=moment, citizen_account=citizen_account):
                recorded += 1
                persons.add(int(row["person"]))
        except Exception as exc:
            # One bad row must not hold up the others; it is retried on the next pass.
            logger.warning("recording credit order default failed: %s", type(exc).__name__)
    await rescore_marked(store=store, person_ids=persons)
    return recorded


GRACE_ENDING = "credit_order.grace_ending"


def _grace_ending_event_id(order_id: str) -> str:
    # Derived from the order: two workers announcing at once produce one id, and the unique public id lets only
    # one row in (once per order, without a lock).
    return "evt_" + hashlib.sha256(f"{order_id}:{GRACE_ENDING}".encode()).hexdigest()[:24]


async def notify_grace_ending(*, citizen_account: CitizenAccountOf, within: timedelta = timedelta(days=1),
                              now: datetime | None = None, limit: int = 500) -> int:
    """Tell each citizen whose defaulted order's grace period ends within `within` that it is about to become
    a negative record (once per order); returns how many notices were written. Background step."""
    moment = now or clock.now()
    rows = await CreditOrder.select(*_COLUMNS).where(
        (CreditOrder.status == DEFAULTED) & (CreditOrder.grace_until >= moment)
        & (CreditOrder.grace_until <= moment + within)).order_by(CreditOrder.grace_until).limit(limit)
    written = 0
    for row in rows:
        view = _view(row)
        if view.grace_until is None:
            continue
        owed = view.default_amount_fen if view.default_amount_fen is not None else view.amount_fen
        ends = view.grace_until.astimezone(CITY_TZ)
        notice = await _citizen_notice(view, topic=GRACE_ENDING, payload={
            "status": DEFAULTED, "default_amount_fen": owed, "grace_until": view.grace_until.isoformat(),
            "message": (f"您在{view.merchant_name}的信用订单尚有 {yuan(owed)}元未结清，宽限期将于"
                        f"{ends:%m月%d日%H:%M}结束，逾期将记入信用记录，请尽快结清")}, citizen_account=citizen_account)
        if notice is None:
            continue
        notice.public_id = _grace_ending_event_id(view.id)
        inserted = await OutboxEvent.insert(notice).on_conflict(
            target=OutboxEvent.public_id, action=OnConflictAction.do_nothing).returning(OutboxEvent.public_id)
        written += len(inserted)
    return written


__all__ = ["AUTHORIZED", "CANCELLED", "DEFAULTED", "FINISHED", "GRACE_ENDING", "KINDS", "MAX_GRACE_DAYS", "MAX_TERM",
           "OPEN_STATUSES", "ORDER_BENEFIT_KIND", "RECORDED", "SETTLED", "CitizenAccountOf", "Merchant", "OrderView",
           "cancel_order", "complete_order", "credit_line", "default_order", "fulfilment_month", "get_order",
           "merchant_orders", "notify_grace_ending", "open_order", "person_orders", "record_unsettled_defaults",
           "settle_order", "yuan"]
