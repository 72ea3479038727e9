"""A redemption whose answer was lost (the worker died after the commit) is recovered by its retry, and the
merchant can read its redemptions by id, by its Idempotency-Key and by its order_ref.

The crash is reproduced on the real code path: the redemption commits, then the answer is never made (a
test-only hook wraps `scenarios.benefits.redeem`: the real service runs and commits, then the step between its
return and the answer fails). The merchant gets a 500 without an id and, as after a crash, no answer is
remembered under the key; that is the state a worker killed between its commit and its answer leaves."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from scenarios import benefits
from scenarios.tables import Redemption
from tests.factories import bound_citizen, operator_session
from tests.scenario_factories import Merchant, admin_benefit, merchant_session, verification_for


@contextmanager
def answer_lost(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While open, a redemption commits but its answer is never made."""

    redeem = benefits.redeem

    async def die(**kwargs: Any) -> Any:
        await redeem(**kwargs)
        raise RuntimeError("worker died after the commit")

    with monkeypatch.context() as patch:
        patch.setattr(benefits, "redeem", die)
        yield


async def _redeem(client: Any, merchant: Merchant, key: str, verification_id: str, benefit_id: str, *,
                  order_ref: str | None = None) -> Any:
    body: dict[str, Any] = {"verification_id": verification_id, "benefit_id": benefit_id}
    if order_ref is not None:
        body["order_ref"] = order_ref
    return await client.post("/v1/benefits/redeem", json=body, headers={**merchant.headers, "Idempotency-Key": key})


async def _world(client: Any) -> tuple[Any, Merchant, Merchant, dict[str, Any]]:
    officer = await operator_session(client)
    scenario = f"t{secrets.token_hex(4)}"
    r = await client.post("/v1/admin/scenarios", headers=officer.headers,
                          json={"code": scenario, "name": "测试场景", "description": "仅供测试"})
    assert r.status_code == 201, r.text
    merchant = await merchant_session(client, scenario)
    other = await merchant_session(client, scenario)
    benefit = await admin_benefit(client, officer=officer, scenario=scenario, kind="deposit_waiver", value=20000,
                                  quota_per_period=3, period="day", merchants=[merchant.client_id, other.client_id])
    return officer, merchant, other, benefit


async def test_a_retry_after_a_lost_answer_gets_the_original_redemption(client, ctx, monkeypatch) -> None:
    _, merchant, _, benefit = await _world(client)
    citizen = await bound_citizen(client, ctx, name="冯一")
    verified = await verification_for(client, merchant, citizen)
    key, args = "ticket-20261203-0001", (verified["verification_id"], benefit["id"])

    with answer_lost(monkeypatch):
        lost = await _redeem(client, merchant, key, *args, order_ref="T-0001")
    assert lost.status_code == 500
    (row,) = await Redemption.select(Redemption.public_id, Redemption.created_at).where(
        Redemption.verification_id == verified["verification_id"])

    retry = await _redeem(client, merchant, key, *args, order_ref="T-0001")
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers  # answered from the database, not a remembered answer
    original = retry.json()
    assert original["id"] == row["public_id"]
    assert (original["status"], original["remaining_quota"], original["order_ref"], original["cancelled_at"]) == (
        "redeemed", 2, "T-0001", None)
    # Counted once: the citizen has two uses left, not one.
    mine = (await client.get("/v1/me/benefits", headers=citizen.headers)).json()["items"]
    assert next(b for b in mine if b["id"] == benefit["id"])["remaining_quota"] == 2
    # From now on the answer is remembered under the key, as for any redemption.
    again = await _redeem(client, merchant, key, *args, order_ref="T-0001")
    assert (again.status_code, again.headers["idempotent-replayed"], again.json()) == (201, "true", original)

    # Another key for the same verification and benefit is refused, and says which redemption it is.
    other_key = await _redeem(client, merchant, "ticket-20261203-0002", *args, order_ref="T-0001")
    assert other_key.status_code == 409
    assert other_key.json()["code"] == "already_redeemed"
    assert original["id"] in other_key.json()["detail"]


async def test_the_merchant_reads_its_redemption_by_id_key_and_order_ref(client, ctx, monkeypatch) -> None:
    _, merchant, other, benefit = await _world(client)
    citizen = await bound_citizen(client, ctx, name="冯二")
    verified = await verification_for(client, merchant, citizen)
    key = f"pos-{secrets.token_hex(4)}"
    with answer_lost(monkeypatch):
        assert (await _redeem(client, merchant, key, verified["verification_id"], benefit["id"],
                               order_ref="T-0002")).status_code == 500

    found = await client.get("/v1/benefits/redemptions", params={"idempotency_key": key}, headers=merchant.headers)
    assert found.status_code == 200, found.text
    (item,) = found.json()["items"]
    assert (item["verification_id"], item["benefit_id"], item["order_ref"], item["status"]) == (
        verified["verification_id"], benefit["id"], "T-0002", "redeemed")
    by_ref = await client.get("/v1/benefits/redemptions", params={"order_ref": "T-0002"}, headers=merchant.headers)
    assert [r["id"] for r in by_ref.json()["items"]] == [item["id"]]
    by_id = await client.get(f"/v1/benefits/redemptions/{item['id']}", headers=merchant.headers)
    assert (by_id.status_code, by_id.json()) == (200, item)

    # Now the merchant can cancel it, and reading it shows so.
    cancelled = await client.post(f"/v1/benefits/redemptions/{item['id']}/cancel", headers=merchant.headers)
    assert cancelled.status_code == 200, cancelled.text
    now = (await client.get(f"/v1/benefits/redemptions/{item['id']}", headers=merchant.headers)).json()
    assert (now["status"], now["remaining_quota"]) == ("cancelled", 3)

    # Another merchant of the same scenario sees none of it.
    theirs = await client.get(f"/v1/benefits/redemptions/{item['id']}", headers=other.headers)
    assert (theirs.status_code, theirs.json()["code"]) == (404, "redemption_not_found")
    for params in ({"idempotency_key": key}, {"order_ref": "T-0002"}, {}):
        listed = await client.get("/v1/benefits/redemptions", params=params, headers=other.headers)
        assert (listed.status_code, listed.json()["items"]) == (200, [])
    unknown = await client.get("/v1/benefits/redemptions/rdm_nope", headers=merchant.headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "redemption_not_found")


async def test_a_lost_answer_is_recovered_after_the_verification_expired(client, ctx, monkeypatch,
                                                                        override_settings) -> None:
    _, merchant, _, benefit = await _world(client)
    citizen = await bound_citizen(client, ctx, name="冯三")
    with override_settings(verification_ttl_seconds=1):
        verified = await verification_for(client, merchant, citizen)
    key = f"pos-{secrets.token_hex(4)}"
    with answer_lost(monkeypatch):
        assert (await _redeem(client, merchant, key, verified["verification_id"], benefit["id"])).status_code == 500
    await asyncio.sleep(1.5)  # the verification is gone; its redemption stays

    # The same key with another body is what the key layer calls a reused key, not the original redemption.
    reused = await _redeem(client, merchant, key, verified["verification_id"], benefit["id"], order_ref="T-other")
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    retry = await _redeem(client, merchant, key, verified["verification_id"], benefit["id"])
    assert retry.status_code == 201, retry.text
    assert (retry.json()["verification_id"], retry.json()["remaining_quota"]) == (verified["verification_id"], 2)
    fresh_key = await _redeem(client, merchant, f"pos-{secrets.token_hex(4)}", verified["verification_id"],
                              benefit["id"])
    assert (fresh_key.status_code, fresh_key.json()["code"]) == (404, "verification_not_found")
