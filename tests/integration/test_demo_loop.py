"""The full loop, over real HTTP on loopback: a data source pushes a record → the score changes → the
partner bank holding an authorization is notified by a signed webhook, received and verified by the
simulated bank (`xinyi simulate bank`)."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx

from partners.delivery import deliver_due
from tests.factories import authorization_for, bound_citizen, operator_session, partner_session
from tests.servers import XINYI, free_port


async def _port_open(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise AssertionError("the simulated bank did not start listening")


async def _wait_for(lines: queue.Queue[str], seen: list[str], needle: str) -> str:
    """The first line the simulated bank printed containing `needle` (waiting up to 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        for line in seen:
            if needle in line:
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"the simulated bank never printed {needle!r}; it printed {seen}")
        try:
            seen.append(lines.get_nowait())
        except queue.Empty:
            await asyncio.sleep(0.1)


async def test_record_push_changes_the_score_and_the_bank_hears_about_it(client, ctx, override_settings) -> None:
    citizen = await bound_citizen(client, ctx, name="欧阳明")
    bank_id, _, bank = await partner_session(client, kind="bank", name="嘉兴银行")
    _, _, court = await partner_session(client, kind="data_source", name="嘉兴市中级人民法院")
    admin = await operator_session(client, role="partner_admin")
    port = free_port()
    with override_settings(webhook_allow_loopback=True):
        configured = await client.patch(f"/v1/admin/partners/{bank_id}", headers=admin.headers,
                                        json={"webhook_url": f"http://127.0.0.1:{port}/webhooks"})
        assert configured.status_code == 200, configured.text
        secret = configured.json()["webhook_secret"]
        env = {**os.environ, "XINYI_SIM_WEBHOOK_SECRET": secret}
        process = subprocess.Popen(  # noqa: ASYNC220 - started once; the test then only awaits
            [XINYI, "simulate", "bank", "--port", str(port)], env=env, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        lines: queue.Queue[str] = queue.Queue()
        seen: list[str] = []
        assert process.stdout is not None
        threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()  # type: ignore[union-attr]
        try:
            await _wait_for(lines, seen, "simulated bank: webhooks at")
            await _port_open(port)
            authorization_id = await authorization_for(client, bank, citizen, scopes=["tier", "score"])
            before = (await client.post("/v1/scores/query", headers=bank.headers,
                                        json={"authorization_id": authorization_id})).json()["score"]

            pushed = await client.post("/v1/records/batch", headers=court.headers, json=[{
                "source_ref": "(2026)浙0402执1号", "category": "dishonest_executee", "severity": "serious",
                "title": "失信被执行人", "occurred_at": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
                "subject": {"kind": "person", "id_number": citizen.person.id_number}}])
            assert pushed.status_code == 200, pushed.text
            assert pushed.json()["summary"]["accepted"] == 1

            after = (await client.post("/v1/scores/query", headers=bank.headers,
                                       json={"authorization_id": authorization_id})).json()["score"]
            assert after < before

            for _ in range(3):
                await deliver_due(ctx=ctx)
            authorized = await _wait_for(lines, seen, "authorization.authorized")
            changed = await _wait_for(lines, seen, "score.changed")
            assert authorization_id in authorized
            assert authorization_id in changed

            deliveries = (await client.get("/v1/webhooks/deliveries", headers=bank.headers)).json()["items"]
            assert {d["type"] for d in deliveries if d["status"] == "delivered"} >= {
                "authorization.authorized", "score.changed"}
            # a forged delivery is refused by the bank
            async with httpx.AsyncClient(timeout=5) as outsider:
                forged = await outsider.post(
                    f"http://127.0.0.1:{port}/webhooks", json={"type": "score.changed"},
                    headers={"webhook-id": "evt_x", "webhook-timestamp": str(int(time.time())),
                             "webhook-signature": "v1,bm9wZQ=="})
            assert forged.status_code == 401
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
