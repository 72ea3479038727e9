"""信易+ benefits at work: rule evaluation, the citizen's view, benefit codes, merchant verification and
exactly-once redemption. No HTTP objects here.

- Rules are evaluated against the citizen's current score (store-cached) and per-period use counters
  (`benefit_usages`). Periods are counted on the city's calendar (China time, UTC+08:00, no DST): the
  key of a period is `2026-11-23` (day), `2026-W48` (ISO week), `2026-11` (month), `2026` (year) or
  `once`.
- Verification is a hot path: the catalog comes from the in-process cache (`scenarios.catalog.CATALOG`,
  never older than `CATALOG_MAX_AGE_SECONDS`; redemption's participating-merchant check uses the same bound),
  the score from the store and the remaining quotas from one hand-written query. The merchant learns
  which benefits apply and a masked name, never the score, tier or identity; the read is ledgered.
- Redemption is one short transaction of hand-written SQL: claim the (verification, benefit) slot
  (unique index), then the conditional upsert of the period counter
  (`ON CONFLICT … DO UPDATE SET used = used + 1 WHERE used < quota`), which re-reads the benefit's status,
  validity window and quota and its scenario's status from the database. Whatever the concurrency, a quota
  of N yields at most N redemptions, and a pause stops redemptions at once on every worker.
- Cancelling is a conditional update (`WHERE status = 'redeemed'`) followed by the counter decrement in the
  same transaction, so the quota comes back exactly once however many cancels race.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from core import clock, db
from core.clock import CITY_TZ
from core.db import as_utc
from core.errors import BadRequest, Conflict, DomainError, Forbidden, NotFound, RateLimited, Unprocessable
from core.store import Store, StoreUnavailable
from credit.identity import mask_name, new_public_id
from credit.ledger import AccessEvent, LedgerWriter, result_digest
from credit.scores import current_score
from credit.scoring import TIERS
from credit.tables import Person
from scenarios import codes
from scenarios.catalog import CATALOG, PUBLIC_ID, BenefitRule
from scenarios.schemas import (
    ApplicableBenefit,
    BenefitCodeOut,
    MyBenefit,
    MyBenefits,
    MyRedemption,
    MyRedemptionPage,
    RedemptionOut,
    RedemptionPage,
    VerifyAnswer,
)
from scenarios.tables import Benefit, Redemption

"""Benefit periods turn over at midnight city time (China has one offset and no DST)."""

PERIOD_TEXT: Final = {"day": "今日", "week": "本周", "month": "本月", "year": "今年", "once": "该权益"}
CODE_RATE_DOMAIN: Final = "bcode-rate"
MAX_CODE_TTL_SECONDS: Final = 60
"""A benefit code lives at most this long whatever the settings say (the issue's promise to citizens)."""
MAX_VERIFICATION_TTL_SECONDS: Final = 3600
VERIFY_PURPOSE: Final = "benefit_verification"
_TIER_RANK: Final = {name: rank for rank, (name, _) in enumerate(reversed(TIERS))}  # C=0 … AAA=4
_PERSON_PK = Person._meta.primary_key
_encoder = msgspec.json.Encoder()


class BenefitCodeInvalid(DomainError):
    """Reused, expired and unknown codes get this same answer, so codes cannot be probed."""

    status, code, title = 422, "benefit_code_invalid", "The benefit code is invalid, expired or already used"


# ---------------------------------------------------------------- rules


def period_key(period: str, at: datetime) -> str:
    """The key of the period `at` falls in, on the city's calendar.

    Raises:
        ValueError: `period` is not day, week, month, year or once.
    """
    local = as_utc(at).astimezone(CITY_TZ)
    if period == "day":
        return local.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return local.strftime("%Y-%m")
    if period == "year":
        return local.strftime("%Y")
    if period == "once":
        return "once"
    raise ValueError(f"unknown period {period!r}")


def period_keys(at: datetime) -> dict[str, str]:
    """Every period's key at `at` (the five values a person's current counters can have)."""
    return {p: period_key(p, at) for p in ("day", "week", "month", "year", "once")}


@dataclass(frozen=True, slots=True)
class Eligibility:
    applies: bool
    code: str | None  # why not: not_yet_valid | expired | tier_too_low | score_too_low | quota_used
    reason: str | None  # the same in Chinese, for the citizen
    remaining: int | None  # uses left this period (before using it now); None = unlimited


def _local_text(at: datetime) -> str:
    try:
        return as_utc(at).astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")
    except OverflowError:  # the last hours of year 9999 have no city time; never fail a citizen's list on it
        return as_utc(at).strftime("%Y-%m-%d %H:%M UTC")


def evaluate(rule: BenefitRule, *, tier: str, total: int, used: int, now: datetime) -> Eligibility:
    """Whether `rule` applies now to someone with `tier` / `total` who used it `used` times this period.

    Checked in the order a citizen can act on: the validity window, then the tier and score floors, then
    the quota. Merchant participation and the benefit's status are the caller's concern.
    """
    remaining = None if rule.quota_per_period == 0 else max(0, rule.quota_per_period - used)
    if now < rule.valid_from:
        return Eligibility(False, "not_yet_valid", f"{_local_text(rule.valid_from)}起可用", remaining)
    if rule.valid_until is not None and now >= rule.valid_until:
        return Eligibility(False, "expired", f"已于{_local_text(rule.valid_until)}结束", remaining)
    if rule.min_tier is not None and _TIER_RANK.get(tier, -1) < _TIER_RANK[rule.min_tier]:
        return Eligibility(False, "tier_too_low", f"需要{rule.min_tier}级，您目前是{tier}级", remaining)
    if rule.min_score is not None and total < rule.min_score:
        return Eligibility(False, "score_too_low", f"需要信用分{rule.min_score}分，您目前是{total}分", remaining)
    if remaining == 0:
        text = PERIOD_TEXT[rule.period]
        return Eligibility(False, "quota_used", f"{text}可用{rule.quota_per_period}次，已用完", remaining)
    return Eligibility(True, None, None, remaining)


# ---------------------------------------------------------------- hand-written SQL

_USAGE_SQL = ("SELECT benefit, period_key, used FROM benefit_usages "
              "WHERE person = $1 AND period_key IN ($2, $3, $4, $5, $6)")


async def usage_counts(*, person_id: int, at: datetime) -> dict[tuple[int, str], int]:
    """How often the person used each benefit in the periods `at` falls in: ONE indexed query."""
    keys = period_keys(at)
    rows = await db.fetch_all(Benefit._meta.db, _USAGE_SQL, person_id, keys["day"], keys["week"], keys["month"],
                              keys["year"], keys["once"])
    return {(int(r["benefit"]), r["period_key"]): int(r["used"]) for r in rows}


def _used(used: Mapping[tuple[int, str], int], rule: BenefitRule, keys: Mapping[str, str]) -> int:
    return used.get((rule.pk, keys[rule.period]), 0)


# ---------------------------------------------------------------- citizens


async def my_benefits(*, store: Store, person_id: int) -> MyBenefits:
    """Every active benefit of every active scenario, and whether (or why not) it applies to the person now."""
    catalog = await CATALOG.get()
    now = clock.now()
    score = await current_score(store=store, person_id=person_id)
    used = await usage_counts(person_id=person_id, at=now)
    keys = period_keys(now)
    items: list[MyBenefit] = []
    for scenario in catalog.ordered_scenarios():
        if scenario.status != "active":
            continue
        for rule in catalog.active.get(scenario.code, ()):
            verdict = evaluate(rule, tier=score.tier, total=score.total, used=_used(used, rule, keys), now=now)
            items.append(MyBenefit(
                id=rule.id, scenario=scenario.code, scenario_name=scenario.name, name=rule.name,
                description=rule.description, kind=rule.kind, value=rule.value, period=rule.period,
                quota_per_period=rule.quota_per_period, remaining_quota=verdict.remaining, applies=verdict.applies,
                reason_code=verdict.code, reason=verdict.reason, merchants=list(catalog.merchant_names_of(rule)),
                valid_until=rule.valid_until))
    return MyBenefits(as_of=now, items=items)


async def issue_code(*, store: Store, account_id: str, person_id: int, scenario: str | None, ttl_seconds: int,
                     per_hour: int) -> BenefitCodeOut:
    """A single-use code bound to the citizen (and optionally to one scenario), valid `ttl_seconds`, with its
    QR image.

    The lifetime is held to 1-60 s here, not only in the settings: a code that never expires (a TTL of 0
    means "keep" to the store) or lives for minutes is a bearer token for the citizen's benefits.

    Raises:
        RateLimited: `benefit_code_rate_limited` — more than `per_hour` codes this hour.
        Unprocessable: `unknown_scenario` — the scenario does not exist or is paused.
    """
    limit = await store.incr_with_limit(CODE_RATE_DOMAIN, account_id, limit=per_hour, ttl_seconds=3600)
    if not limit.allowed:
        raise RateLimited(f"at most {per_hour} benefit codes an hour", code="benefit_code_rate_limited",
                          retry_after=limit.ttl_seconds)
    if scenario is not None and not (await CATALOG.get()).scenario_active(scenario):
        raise Unprocessable(f"no active scenario {scenario!r}", code="unknown_scenario")
    row = await Person.select(Person.public_id, Person.name).where(_PERSON_PK.is_in([person_id])).first()
    if row is None:
        raise NotFound("person not found", code="person_not_found")
    ttl_seconds = code_ttl(ttl_seconds)
    issued = time.time()
    state = codes.CodeState(person_id=person_id, person_public_id=row["public_id"], account_id=account_id,
                            issued_at=issued, masked_name=mask_name(row["name"]), scenario=scenario)
    code = await codes.issue_code(store=store, state=state, ttl_seconds=ttl_seconds)
    return BenefitCodeOut(code=code, expires_at=datetime.fromtimestamp(issued + ttl_seconds, UTC),
                          ttl_seconds=ttl_seconds, scenario=scenario, qr_svg=qr_svg(code))


def code_ttl(configured: int) -> int:
    """The lifetime codes actually get: the configured one, within 1-60 s."""
    return max(1, min(MAX_CODE_TTL_SECONDS, configured))


def qr_svg(code: str) -> str:
    """The code as a small inline SVG QR (version 1-2: 16 alphanumerics)."""
    import segno  # noqa: PLC0415 - only citizens asking for codes pay for the import

    return str(segno.make_qr(code, error="m").svg_inline(scale=4, border=2))


# ---------------------------------------------------------------- merchants: verification


@dataclass(frozen=True, slots=True)
class Merchant:
    """The calling partner, as the partner directory knows it."""

    client_id: str
    name: str
    kind: str
    scenario: str | None


async def _ledger(ledger: LedgerWriter, *, merchant: Merchant, state: codes.CodeState, outcome: str,
                  digest: str = "") -> None:
    await ledger.append(AccessEvent(
        actor_kind="merchant", actor_id=merchant.client_id, actor_name=merchant.name, actor_type=merchant.kind,
        subject_kind="person", subject_id=state.person_public_id, action="benefit.verify", outcome=outcome,
        purpose=VERIFY_PURPOSE, fields=("eligibility",) if outcome == "allowed" else (),
        result_digest=digest or result_digest(b"")))


async def verify(*, store: Store, ledger: LedgerWriter, merchant: Merchant, code: str, scenario: str,
                 code_ttl_seconds: int, verification_ttl_seconds: int) -> VerifyAnswer:
    """Consume a citizen's code and answer which benefits apply now at this merchant.

    The merchant's right to the scenario is checked before the code is touched, so a merchant of another
    scenario cannot burn a citizen's code. The answer is ledgered (durably) before it is returned, and
    kept as a verification the same merchant may redeem against for `verification_ttl_seconds`.

    Raises:
        Forbidden: `scenario_not_allowed` — not a merchant of this scenario, or the scenario is paused.
        BenefitCodeInvalid: reused, expired or unknown code.
        Unprocessable: `benefit_code_other_scenario` — the citizen bound the code to another scenario
            (the code is put back for the rest of its lifetime; the refusal is ledgered).
    """
    verification_ttl_seconds = max(1, min(MAX_VERIFICATION_TTL_SECONDS, verification_ttl_seconds))
    catalog = await CATALOG.get()
    if merchant.kind != "merchant" or merchant.scenario != scenario or not catalog.scenario_active(scenario):
        raise Forbidden(f"this merchant does not serve an active scenario {scenario!r}", code="scenario_not_allowed")
    state = await codes.take_code(store=store, code=code)
    if state is None:
        raise BenefitCodeInvalid
    if state.scenario is not None and state.scenario != scenario:
        await codes.restore_code(store=store, code=code, state=state, ttl_seconds=code_ttl(code_ttl_seconds))
        await _ledger(ledger, merchant=merchant, state=state, outcome="benefit_code_other_scenario")
        raise Unprocessable("the citizen's code is for another scenario", code="benefit_code_other_scenario")
    # Past this point the code is taken: if the answer cannot be made (the database or the store is away: 503),
    # the code is given back for the rest of its lifetime, so a failed verification never spends it.
    try:
        now = clock.now()
        score = await current_score(store=store, person_id=state.person_id)
        # Everything but the quota first: the counters are read only if a benefit that otherwise applies has one.
        candidates = [r for r in catalog.active.get(scenario, ())
                      if r.serves(merchant.client_id)
                      and evaluate(r, tier=score.tier, total=score.total, used=0, now=now).applies]
        used = (await usage_counts(person_id=state.person_id, at=now)
                if any(r.quota_per_period for r in candidates) else {})
        keys = period_keys(now)
        applicable: list[tuple[BenefitRule, int | None]] = []
        for rule in candidates:
            verdict = evaluate(rule, tier=score.tier, total=score.total, used=_used(used, rule, keys), now=now)
            if verdict.applies:
                applicable.append((rule, verdict.remaining))
        verification = codes.Verification(
            id=new_public_id("vrf"), person_id=state.person_id, person_public_id=state.person_public_id,
            scenario=scenario, merchant_client_id=merchant.client_id, merchant_name=merchant.name, tier=score.tier,
            total=score.total, benefit_ids=tuple(r.id for r, _ in applicable), verified_at=now.timestamp())
        expires_at = now + timedelta(seconds=verification_ttl_seconds)
        digest = result_digest(_encoder.encode({
            "verification_id": verification.id, "scenario": scenario, "masked_name": state.masked_name,
            "benefits": [[r.id, remaining] for r, remaining in applicable]}))
        # Both must be durable before the merchant hears anything; they do not depend on each other.
        await asyncio.gather(
            _ledger(ledger, merchant=merchant, state=state, outcome="allowed", digest=digest),
            codes.save_verification(store=store, verification=verification, ttl_seconds=verification_ttl_seconds))
    except Exception:
        with contextlib.suppress(StoreUnavailable):
            await codes.restore_code(store=store, code=code, state=state, ttl_seconds=code_ttl(code_ttl_seconds))
        raise
    return VerifyAnswer(
        verification_id=verification.id, expires_at=expires_at, scenario=scenario, masked_name=state.masked_name,
        benefits=[ApplicableBenefit(benefit_id=r.id, name=r.name, kind=r.kind, value=r.value,
                                    remaining_quota=remaining, period=r.period) for r, remaining in applicable])


# ---------------------------------------------------------------- merchants: redemption


def _remaining(quota: int, used: int) -> int | None:
    return None if quota == 0 else max(0, quota - used)


# No conflict target: the slot is taken if (verification, benefit) or (merchant, Idempotency-Key) is.
_CLAIM_SQL = (
    "INSERT INTO benefit_redemptions (public_id, benefit, person, scenario, merchant_client_id, merchant_name, "
    "verification_id, period_key, order_ref, status, created_at, idempotency_key) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'redeemed', $10, $11) "
    "ON CONFLICT DO NOTHING RETURNING id")
# What the first answer said of the quota, kept for a retry that must say it again.
_ANSWERED_SQL = "UPDATE benefit_redemptions SET remaining_quota = $1 WHERE id = $2"
# The benefit's status, validity window and quota and its scenario's status are read here, in the
# statement that counts, never from a cache: a pause or retirement stops redemptions at once on every worker.
_COUNT_SQL = (
    "INSERT INTO benefit_usages (benefit, person, period_key, used, updated_at) "
    "SELECT b.id, $2, $3, 1, $4 FROM benefits b WHERE b.id = $1 AND b.status = 'active' "
    "AND b.valid_from <= $4 AND (b.valid_until IS NULL OR b.valid_until > $4) "
    "AND EXISTS (SELECT 1 FROM scenarios s WHERE s.code = b.scenario AND s.status = 'active') "
    "ON CONFLICT (benefit, person, period_key) DO UPDATE "
    "SET used = benefit_usages.used + 1, updated_at = excluded.updated_at "
    "WHERE benefit_usages.used < (SELECT CASE WHEN q.quota_per_period > 0 THEN q.quota_per_period "
    "ELSE 2147483647 END FROM benefits q WHERE q.id = excluded.benefit) "  # quota 0 = unlimited
    "RETURNING used")
# Only after the count refused: why (a paused scenario, a paused or retired benefit, its window, else the quota).
_TAKEN_SQL = "SELECT public_id FROM benefit_redemptions WHERE verification_id = $1 AND benefit = $2"
_STATUS_SQL = (
    "SELECT b.status, s.status AS scenario_status, "
    "CASE WHEN b.valid_from <= $2 AND (b.valid_until IS NULL OR b.valid_until > $2) THEN 1 ELSE 0 END AS in_window "
    "FROM benefits b LEFT JOIN scenarios s ON s.code = b.scenario WHERE b.id = $1")


async def redeem(*, store: Store, merchant_client_id: str, verification_id: str, benefit_id: str,
                 order_ref: str | None, idempotency_key: str | None) -> RedemptionOut:
    """Redeem one benefit of a verification, exactly once and within the citizen's quota.

    The redemption keeps the merchant's `idempotency_key` (unique per merchant): the same key with the same
    verification, benefit and order_ref answers the redemption it made, as first answered, whatever happened
    since (a retry after a lost answer), and never redeems again.

    Raises:
        BadRequest: `idempotency_key_required`.
        NotFound: `verification_not_found` — unknown, expired, or another merchant's verification.
        Unprocessable: `benefit_not_applicable` — the benefit was not in the verification's answer,
            or the merchant no longer takes part in it.
        Unprocessable: `idempotency_key_reused` — the key already redeemed another verification, benefit
            or order_ref.
        Conflict: `already_redeemed` (this verification already redeemed this benefit under another key),
            `benefit_quota_exhausted`, `benefit_not_active` (paused or retired since the verification),
            `scenario_not_active` (the scenario was paused since), `benefit_not_valid_now` (outside its
            validity window now).
    """
    if not idempotency_key:
        raise BadRequest("redeeming needs an Idempotency-Key header", code="idempotency_key_required")
    try:
        verification, rule = await _redeemable(store=store, merchant_client_id=merchant_client_id,
                                               verification_id=verification_id, benefit_id=benefit_id)
    except DomainError:
        # A retry whose first attempt redeemed (its answer lost to a crash) may come after the verification
        # expired or the merchant was taken off the benefit: the redemption it made is still its answer.
        first = await _first_answer(merchant_client_id=merchant_client_id, idempotency_key=idempotency_key,
                                    verification_id=verification_id, benefit_id=benefit_id, order_ref=order_ref)
        if first is None:
            raise
        return first
    now = clock.now()
    key = period_key(rule.period, now)
    public_id = new_public_id("rdm")
    remaining: int | None = None
    async with db.sql_transaction(Benefit) as sql:
        claimed = await sql.fetch_one(
            _CLAIM_SQL, public_id, rule.pk, verification.person_id, verification.scenario, merchant_client_id,
            verification.merchant_name, verification.id, key, order_ref, now, idempotency_key)
        if claimed is not None:
            counted = await sql.fetch_one(_COUNT_SQL, rule.pk, verification.person_id, key, now)
            if counted is None:
                state = await sql.fetch_one(_STATUS_SQL, rule.pk, now)
                if state is None or state["status"] != "active":
                    raise Conflict("the benefit is no longer active", code="benefit_not_active")
                if state["scenario_status"] != "active":
                    raise Conflict("the benefit's scenario is paused", code="scenario_not_active")
                if not state["in_window"]:
                    raise Conflict("the benefit is not valid now", code="benefit_not_valid_now")
                raise Conflict(f"the citizen's quota of {rule.quota_per_period} per {rule.period} is used up",
                               code="benefit_quota_exhausted")
            remaining = _remaining(rule.quota_per_period, int(counted["used"]))
            if remaining is not None:
                await sql.fetch(_ANSWERED_SQL, remaining, int(claimed["id"]))
    if claimed is None:
        # The slot is taken by a committed redemption (ON CONFLICT waited for it): this key's own first attempt,
        # whose answer was lost, or another request for the same verification and benefit. Looked up after the
        # transaction, so no request ever holds two pooled connections at once.
        first = await _first_answer(merchant_client_id=merchant_client_id, idempotency_key=idempotency_key,
                                    verification_id=verification_id, benefit_id=benefit_id, order_ref=order_ref)
        if first is not None:
            return first
        taken = await db.fetch_one(Benefit._meta.db, _TAKEN_SQL, verification.id, rule.pk)
        raise Conflict("this verification already redeemed this benefit"
                       + (f" (redemption {taken['public_id']})" if taken else ""), code="already_redeemed")
    return RedemptionOut(
        id=public_id, verification_id=verification.id, benefit_id=rule.id, benefit_name=rule.name, kind=rule.kind,
        value=rule.value, scenario=verification.scenario, order_ref=order_ref, status="redeemed", period_key=key,
        remaining_quota=remaining, redeemed_at=now, cancelled_at=None)


async def _redeemable(*, store: Store, merchant_client_id: str, verification_id: str, benefit_id: str
                      ) -> tuple[codes.Verification, BenefitRule]:
    """The merchant's verification and the benefit it may redeem under it, or the refusal why not."""
    verification = await codes.load_verification(store=store, verification_id=verification_id)
    if verification is None or verification.merchant_client_id != merchant_client_id:
        raise NotFound("verification not found or expired", code="verification_not_found")
    if benefit_id not in verification.benefit_ids:
        raise Unprocessable("this benefit did not apply when the code was verified", code="benefit_not_applicable")
    rule = (await CATALOG.get()).benefits.get(benefit_id)
    if rule is None or not rule.serves(merchant_client_id):
        # Verified on a worker that may have known a benefit (or its new participating merchant) this worker's
        # cache has not caught up with: before refusing, look at a catalog read after the verification (the
        # cached one if it already is, so a merchant taken off the benefit cannot make every retry a read).
        rule = (await CATALOG.get(read_after=verification.verified_at)).benefits.get(benefit_id)
    if rule is None:
        raise NotFound("benefit not found", code="benefit_not_found")
    if not rule.serves(merchant_client_id):
        # Taken off the benefit's participating merchants since the verification.
        raise Unprocessable("this merchant no longer takes part in the benefit", code="benefit_not_applicable")
    return verification, rule


async def _first_answer(*, merchant_client_id: str, idempotency_key: str, verification_id: str, benefit_id: str,
                        order_ref: str | None) -> RedemptionOut | None:
    """What the first request with this merchant's Idempotency-Key was answered, if it redeemed: the same
    redemption as it was then (status `redeemed`, the remaining quota it gave), whatever happened to it since.
    None when the key redeemed nothing.

    Raises:
        Unprocessable: `idempotency_key_reused` — the key redeemed something else (another verification,
            benefit or order_ref), as the Idempotency-Key layer answers a key reused with another body.
    """
    row = await Redemption.select(*_REDEMPTION_COLUMNS, Redemption.remaining_quota).where(
        (Redemption.merchant_client_id == merchant_client_id)
        & (Redemption.idempotency_key == idempotency_key)).first()
    if row is None:
        return None
    if (row["verification_id"], row["benefit_id"], row["order_ref"]) != (verification_id, benefit_id, order_ref):
        raise Unprocessable("this Idempotency-Key was used with a different request", code="idempotency_key_reused")
    view = _redemption_view(row, remaining=row["remaining_quota"])
    return msgspec.structs.replace(view, status="redeemed", cancelled_at=None)


_CANCEL_SQL = (
    "UPDATE benefit_redemptions SET status = 'cancelled', cancelled_at = $1 "
    "WHERE public_id = $2 AND merchant_client_id = $3 AND status = 'redeemed' "
    "RETURNING benefit, person, period_key")
_RESTORE_SQL = (
    "UPDATE benefit_usages SET used = used - 1, updated_at = $1 "
    "WHERE benefit = $2 AND person = $3 AND period_key = $4 AND used > 0 RETURNING used")

_REDEMPTION_COLUMNS = (Redemption.public_id, Redemption.verification_id, Redemption.scenario,
                       Redemption.merchant_name, Redemption.order_ref, Redemption.status, Redemption.period_key,
                       Redemption.created_at, Redemption.cancelled_at, Redemption.person, Redemption.benefit,
                       Redemption.benefit.public_id.as_alias("benefit_id"),
                       Redemption.benefit.name.as_alias("benefit_name"),
                       Redemption.benefit.kind.as_alias("benefit_kind"),
                       Redemption.benefit.value.as_alias("benefit_value"),
                       Redemption.benefit.quota_per_period.as_alias("benefit_quota"))


async def cancel_redemption(*, merchant_client_id: str, redemption_id: str) -> RedemptionOut:
    """Cancel a redemption (only the merchant that made it) and give the quota back, exactly once.

    Cancelling a cancelled redemption returns it unchanged.

    Raises:
        NotFound: `redemption_not_found` — unknown, or another merchant's.
    """
    if not PUBLIC_ID.match(redemption_id):
        raise NotFound("redemption not found", code="redemption_not_found")
    now = clock.now()
    used: int | None = None
    async with db.sql_transaction(Benefit) as sql:
        cancelled = await sql.fetch_one(_CANCEL_SQL, now, redemption_id, merchant_client_id)
        if cancelled is not None:
            restored = await sql.fetch_one(_RESTORE_SQL, now, cancelled["benefit"], cancelled["person"],
                                           cancelled["period_key"])
            used = int(restored["used"]) if restored is not None else 0
    return await _own_redemption(merchant_client_id=merchant_client_id, redemption_id=redemption_id, used=used)


async def get_redemption(*, merchant_client_id: str, redemption_id: str) -> RedemptionOut:
    """One of the merchant's redemptions as it is now, with the citizen's remaining quota in its period.

    Raises:
        NotFound: `redemption_not_found` — unknown, or another merchant's (the same answer).
    """
    if not PUBLIC_ID.match(redemption_id):
        raise NotFound("redemption not found", code="redemption_not_found")
    return await _own_redemption(merchant_client_id=merchant_client_id, redemption_id=redemption_id)


async def _own_redemption(*, merchant_client_id: str, redemption_id: str, used: int | None = None) -> RedemptionOut:
    row = await Redemption.select(*_REDEMPTION_COLUMNS).where(
        (Redemption.public_id == redemption_id) & (Redemption.merchant_client_id == merchant_client_id)).first()
    if row is None:
        raise NotFound("redemption not found", code="redemption_not_found")
    return await _current_view(row, used=used)


async def _current_view(row: Mapping[str, Any], *, used: int | None = None) -> RedemptionOut:
    if used is None:
        counter = await db.fetch_one(
            Benefit._meta.db, "SELECT used FROM benefit_usages WHERE benefit = $1 AND person = $2 AND period_key = $3",
            int(row["benefit"]), int(row["person"]), row["period_key"])
        used = int(counter["used"]) if counter is not None else 0
    return _redemption_view(row, remaining=_remaining(int(row["benefit_quota"]), used))


async def merchant_redemptions(*, merchant_client_id: str, idempotency_key: str | None = None,
                               order_ref: str | None = None, limit: int, cursor: str | None) -> RedemptionPage:
    """The merchant's own redemptions as they are now, newest first, optionally only the one its
    Idempotency-Key made or those with its `order_ref` (how a merchant whose answer was lost finds them)."""
    query = Redemption.select(*_REDEMPTION_COLUMNS).where(Redemption.merchant_client_id == merchant_client_id)
    if idempotency_key is not None:
        query = query.where(Redemption.idempotency_key == idempotency_key)
    if order_ref is not None:
        query = query.where(Redemption.order_ref == order_ref)
    rows, next_cursor = await db.newest_first(query, at=Redemption.created_at, key=Redemption.public_id,
                                              limit=limit, cursor=cursor)
    return RedemptionPage(items=[await _current_view(r) for r in rows], next_cursor=next_cursor)


def _redemption_view(row: Mapping[str, Any], *, remaining: int | None) -> RedemptionOut:
    return RedemptionOut(
        id=row["public_id"], verification_id=row["verification_id"], benefit_id=row["benefit_id"],
        benefit_name=row["benefit_name"], kind=row["benefit_kind"], value=int(row["benefit_value"]),
        scenario=row["scenario"], order_ref=row["order_ref"], status=row["status"], period_key=row["period_key"],
        remaining_quota=remaining, redeemed_at=as_utc(row["created_at"]),
        cancelled_at=None if row["cancelled_at"] is None else as_utc(row["cancelled_at"]))


async def my_redemptions(*, person_id: int, limit: int, cursor: str | None) -> MyRedemptionPage:
    """The person's redemptions, newest first, over (created_at, public_id) with an opaque cursor."""
    query = Redemption.select(*_REDEMPTION_COLUMNS).where(Redemption.person == person_id)
    page, next_cursor = await db.newest_first(query, at=Redemption.created_at, key=Redemption.public_id,
                                              limit=limit, cursor=cursor)
    return MyRedemptionPage(items=[MyRedemption(
        id=r["public_id"], benefit_id=r["benefit_id"], benefit_name=r["benefit_name"], kind=r["benefit_kind"],
        value=int(r["benefit_value"]), scenario=r["scenario"], merchant_name=r["merchant_name"],
        order_ref=r["order_ref"], status=r["status"], redeemed_at=as_utc(r["created_at"]),
        cancelled_at=None if r["cancelled_at"] is None else as_utc(r["cancelled_at"])) for r in page],
        next_cursor=next_cursor)


__all__ = ["BenefitCodeInvalid", "Eligibility", "Merchant", "cancel_redemption", "evaluate",
           "get_redemption", "issue_code", "merchant_redemptions", "my_benefits", "my_redemptions", "period_key",
           "period_keys", "qr_svg", "redeem", "usage_counts", "verify"]
