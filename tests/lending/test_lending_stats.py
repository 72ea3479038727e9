"""Lending statistics through HTTP: the figures match the demands, applications and decisions made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lending.stats import last_months, month_of
from lending.tables import ApplicationEvent, LoanApplication
from tests.lending_factories import (
    WAN_FEN,
    bank_session,
    grade_a_enterprise,
    post_demand,
    publish_product,
)


async def _apply(client, owned, product_ids: list[str], **demand: Any) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    d = await post_demand(client, owned, **demand)
    r = await client.post(f"/v1/lending/demands/{d['id']}/submit", headers=owned.headers,
                          json={"product_ids": product_ids, "consent": True})
    assert r.status_code == 200, r.text
    apps: list[dict[str, Any]] = r.json()["applications"]
    return apps


async def _decide(client, bank, application_id: str, **decision: Any) -> None:  # type: ignore[no-untyped-def]
    r = await client.post(f"/v1/lending/applications/{application_id}/decisions", headers=bank.headers,
                          json=decision)
    assert r.status_code == 200, r.text


async def _backdate(application_id: str, *, created: datetime, events: dict[str, datetime]) -> None:
    """Move an application's submission and decision times (so days-to-decision are known)."""
    row = await LoanApplication.select(LoanApplication._meta.primary_key).where(
        LoanApplication.public_id == application_id).first()
    pk = row["id"]
    await LoanApplication.update({LoanApplication.created_at: created}).where(
        LoanApplication._meta.primary_key.is_in([pk]))
    for status, at in events.items():
        await ApplicationEvent.update({ApplicationEvent.at: at}).where(
            (ApplicationEvent.application == pk) & (ApplicationEvent.status == status))


async def _stats(client, **params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.get("/v1/lending/stats", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_statistics_match_the_events(client, ctx) -> None:
    before = await _stats(client)
    bank_id, bank = await bank_session(client, name="统计银行")
    credit = await publish_product(client, bank, name="信用贷")
    secured = await publish_product(client, bank, name="抵押贷", guarantee_kind="collateral")
    first = await grade_a_enterprise(client, ctx, owner_name="统计甲")
    second = await grade_a_enterprise(client, ctx, owner_name="统计乙")

    # first enterprise: a credit loan approved and disbursed (its first loan), then a secured one (not first)
    (a1,) = await _apply(client, first, [credit["id"]])
    await _decide(client, bank, a1["id"], status="approved", amount_fen=100 * WAN_FEN, rate_bp=400, term_months=12)
    await _decide(client, bank, a1["id"], status="disbursed", amount_fen=90 * WAN_FEN)
    (a2,) = await _apply(client, first, [secured["id"]], guarantee_offered="collateral")
    await _decide(client, bank, a2["id"], status="accepted")
    await _decide(client, bank, a2["id"], status="approved", amount_fen=200 * WAN_FEN, rate_bp=390, term_months=24)
    await _decide(client, bank, a2["id"], status="disbursed", amount_fen=200 * WAN_FEN)
    # second enterprise: one rejected, one only accepted (no decision yet)
    apps = await _apply(client, second, [credit["id"], secured["id"]], guarantee_offered="collateral")
    b_credit = next(a for a in apps if a["product"]["id"] == credit["id"])
    b_secured = next(a for a in apps if a["product"]["id"] == secured["id"])
    await _decide(client, bank, b_credit["id"], status="rejected", reason="资料不全")
    await _decide(client, bank, b_secured["id"], status="accepted")

    # known days to decision: 1, 2 and 4 days → median 2
    now = datetime.now(UTC)
    start = now - timedelta(days=6)
    await _backdate(a1["id"], created=start, events={"approved": start + timedelta(days=1),
                                                     "disbursed": start + timedelta(days=2)})
    await _backdate(a2["id"], created=start, events={"accepted": start + timedelta(hours=2),
                                                     "approved": start + timedelta(days=2),
                                                     "disbursed": start + timedelta(days=3)})
    await _backdate(b_credit["id"], created=start, events={"rejected": start + timedelta(days=4)})

    mine = await _stats(client, bank=bank_id)
    assert mine["timezone"] == "Asia/Shanghai"
    assert mine["totals"] == {
        "demands": 3, "applications": 4, "decisions": 3, "approvals": 2, "rejections": 1,
        "approval_rate": round(2 / 3, 4), "disbursed_count": 2, "disbursed_amount_fen": 290 * WAN_FEN,
        "unsecured_disbursed_count": 1, "unsecured_disbursed_amount_fen": 90 * WAN_FEN,
        "first_loans": 1, "first_loan_amount_fen": 90 * WAN_FEN, "median_days_to_decision": 2.0,
    }

    # by month: each figure lands in the month of its event, and the months add up to the totals
    assert [m["month"] for m in mine["by_month"]] == last_months(now, 12)
    expected: dict[str, dict[str, int]] = {}

    def add(at: datetime, **figures: int) -> None:
        month = expected.setdefault(month_of(at), {})
        for key, value in figures.items():
            month[key] = month.get(key, 0) + value

    add(start, applications=3)
    add(now, applications=1, demands=3)  # b_secured keeps its real submission time; demands were posted now
    add(start + timedelta(days=1), approvals=1)
    add(start + timedelta(days=2), approvals=1, disbursed_amount_fen=90 * WAN_FEN, first_loans=1)
    add(start + timedelta(days=3), disbursed_amount_fen=200 * WAN_FEN)
    add(start + timedelta(days=4), rejections=1)
    for month in mine["by_month"]:
        for key in ("demands", "applications", "approvals", "rejections", "disbursed_amount_fen", "first_loans"):
            assert month[key] == expected.get(month["month"], {}).get(key, 0), (month["month"], key)
    for key in ("demands", "applications", "decisions", "approvals", "rejections", "disbursed_count",
                "disbursed_amount_fen", "unsecured_disbursed_amount_fen", "first_loans", "first_loan_amount_fen"):
        assert sum(m[key] for m in mine["by_month"]) == mine["totals"][key], key

    # the city-wide figures moved by exactly these events
    after = await _stats(client)
    for key in ("applications", "decisions", "approvals", "rejections", "disbursed_count", "disbursed_amount_fen",
                "unsecured_disbursed_amount_fen", "first_loans", "first_loan_amount_fen"):
        assert after["totals"][key] - before["totals"][key] == mine["totals"][key], key
    assert after["totals"]["demands"] - before["totals"]["demands"] == 3


async def test_statistics_are_public_and_bounded(client) -> None:
    body = await _stats(client, months=3)
    assert len(body["by_month"]) == 3
    assert set(body["totals"]) >= {"demands", "applications", "approval_rate", "disbursed_amount_fen",
                                   "unsecured_disbursed_amount_fen", "first_loans", "first_loan_amount_fen",
                                   "median_days_to_decision"}
    for months in (0, 37, "x"):
        r = await client.get("/v1/lending/stats", params={"months": months})
        assert r.status_code in (400, 422), months
    empty = await _stats(client, bank="bank_nobody")
    assert empty["totals"]["applications"] == 0
    assert empty["totals"]["approval_rate"] is None
    assert empty["totals"]["median_days_to_decision"] is None


async def test_a_product_edit_cannot_rewrite_the_unsecured_figures(client, ctx) -> None:
    bank_id, bank = await bank_session(client, name="改产品银行")
    credit = await publish_product(client, bank, name="纯信用贷")
    unused = await publish_product(client, bank, name="未申请的产品")
    owned = await grade_a_enterprise(client, ctx, owner_name="改产品企业主")
    (app,) = await _apply(client, owned, [credit["id"]])
    await _decide(client, bank, app["id"], status="approved", amount_fen=60 * WAN_FEN, rate_bp=400, term_months=12)
    await _decide(client, bank, app["id"], status="disbursed", amount_fen=60 * WAN_FEN)
    before = (await _stats(client, bank=bank_id))["totals"]
    assert (before["unsecured_disbursed_count"], before["unsecured_disbursed_amount_fen"]) == (1, 60 * WAN_FEN)

    # the loan was lent without security; making the product a collateral one afterwards is refused
    r = await client.patch(f"/v1/lending/products/{credit['id']}", headers=bank.headers,
                           json={"guarantee_kind": "collateral"})
    assert (r.status_code, r.json()["code"]) == (409, "guarantee_kind_locked")
    assert (await _stats(client, bank=bank_id))["totals"] == before
    # other edits stay possible, and a product nobody applied for may still change kind
    r = await client.patch(f"/v1/lending/products/{credit['id']}", headers=bank.headers,
                           json={"guarantee_kind": "credit", "rate_min_bp": 390})
    assert r.status_code == 200, r.text
    r = await client.patch(f"/v1/lending/products/{unused['id']}", headers=bank.headers,
                           json={"guarantee_kind": "collateral"})
    assert (r.status_code, r.json()["guarantee_kind"]) == (200, "collateral")
