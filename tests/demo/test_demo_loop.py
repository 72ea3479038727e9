"""The full loop, over real HTTP on loopback, between real processes: a server started by `xinyi up` (on a
database of its own: a fresh SQLite file, or a throwaway PostgreSQL database plus Redis on that leg), the
simulated bank (`xinyi simulate bank`), and this test acting as the partner admin, the citizen's app, the bank
and a court. A data source pushes a record → the score changes → the bank holding an authorization is told
by a signed webhook, delivered by the server's own background job and verified by the simulated bank."""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.servers import XINYI, free_port, printed_exports, throwaway_database, xinyi_up

# How long to wait for an event at most (not a speed claim: a loaded CI machine may need most of it).
_WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """`xinyi up` with loopback webhooks allowed and background jobs every second; its URL and tour exports."""
    workdir = tmp_path_factory.mktemp("demo-loop")
    with throwaway_database("xinyi_demo_loop") as database_url:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XINYI_TRUST_FORWARDED_FOR")}
        env.update({"XINYI_ENV": "dev", "XINYI_SMS_ADAPTER": "dev", "XINYI_SQLITE_PATH": str(workdir / "loop.sqlite"),
                    "XINYI_BACKGROUND_IN_APP": "1", "XINYI_BACKGROUND_INTERVAL_SECONDS": "1",
                    "XINYI_WEBHOOK_ALLOW_LOOPBACK": "1", "XINYI_LOG_LEVEL": "WARNING",
                    # A delivery that times out on a loaded machine is retried within seconds, not 680 s later.
                    "XINYI_WEBHOOK_BASE_DELAY_SECONDS": "1"})
        if database_url:
            env["DATABASE_URL"] = database_url
            # REDIS_URL is inherited, but not this run's namespace: the store caches by database ids (scores,
            # authorizations), so a server on a database of its own needs a namespace of its own too.
            env["XINYI_REDIS_NAMESPACE"] = f"xinyi-demo-loop-{secrets.token_hex(4)}"
        with xinyi_up(["--persons", "200", "--enterprises", "20"], env=env, workdir=workdir) as (base, printed):
            yield base, printed_exports(printed)


def _token(api: httpx.Client, body: dict[str, str]) -> dict[str, str]:
    answer = api.post("/v1/auth/token", json=body)
    assert answer.status_code == 200, answer.text
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


def _wait_for(lines: queue.Queue[str], seen: list[str], needle: str) -> str:
    """The first line the simulated bank printed containing `needle` (waiting up to 30 s)."""
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        for line in seen:
            if needle in line:
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"the simulated bank never printed {needle!r}; it printed {seen}")
        with contextlib.suppress(queue.Empty):
            seen.append(lines.get(timeout=0.2))


def _listening(url: str) -> None:
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing answers at {url}")
        time.sleep(0.2)


def _delivered(api: httpx.Client, bank: dict[str, str]) -> set[str]:
    """Event types of the bank's deliveries the server records as delivered, once both are (up to 30 s)."""
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        answer = api.get("/v1/webhooks/deliveries", headers=bank)
        assert answer.status_code == 200, answer.text
        delivered = {d["type"] for d in answer.json()["items"] if d["status"] == "delivered"}
        if {"authorization.authorized", "score.changed"} <= delivered or time.monotonic() > deadline:
            return delivered
        time.sleep(0.3)


def test_record_push_changes_the_score_and_the_bank_hears_about_it(server: tuple[str, dict[str, str]],
                                                                   tmp_path: Path) -> None:
    base, demo = server
    with httpx.Client(base_url=base, timeout=10) as api:
        # the partner admin points the bank's webhook at the simulated bank
        admin = _token(api, {"grant_type": "password", "username": demo["PARTNER_ADMIN_USER"],
                             "password": demo["PARTNER_ADMIN_PASSWORD"]})
        port = free_port()
        configured = api.patch(f"/v1/admin/partners/{demo['BANK_ID']}", headers=admin,
                               json={"webhook_url": f"http://127.0.0.1:{port}/webhooks"})
        assert configured.status_code == 200, configured.text
        secret = configured.json()["webhook_secret"]

        bank_process = subprocess.Popen(
            [XINYI, "simulate", "bank", "--port", str(port)], env={**os.environ, "XINYI_SIM_WEBHOOK_SECRET": secret},
            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
        lines: queue.Queue[str] = queue.Queue()
        seen: list[str] = []
        stdout = bank_process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        try:
            _listening(f"http://127.0.0.1:{port}/health")

            # the citizen logs in with the SMS code and binds the demo identity
            sent = api.post("/v1/auth/otp", json={"phone": demo["CITIZEN_PHONE"]})
            assert sent.status_code == 202, sent.text
            citizen = _token(api, {"grant_type": "otp", "phone": demo["CITIZEN_PHONE"],
                                   "code": sent.json()["dev_code"]})
            bound = api.post("/v1/me/identity", headers=citizen,
                             json={"name": demo["CITIZEN_NAME"], "id_number": demo["CITIZEN_ID_NUMBER"]})
            assert bound.status_code == 200, bound.text

            # the bank asks, the citizen approves, the bank reads the score
            bank = _token(api, {"grant_type": "client_credentials", "client_id": demo["BANK_ID"],
                                "client_secret": demo["BANK_SECRET"]})
            asked = api.post("/v1/authorizations", headers=bank, json={
                "subject": {"kind": "person", "name": demo["CITIZEN_NAME"], "id_number": demo["CITIZEN_ID_NUMBER"]},
                "purpose": "loan_pre_approval", "scopes": ["tier", "score"], "validity_days": 30})
            assert asked.status_code == 201, asked.text
            authorization_id = asked.json()["id"]
            approved = api.post(f"/v1/me/authorizations/{authorization_id}/approve", headers=citizen)
            assert approved.status_code == 200, approved.text
            before = api.post("/v1/scores/query", headers=bank, json={"authorization_id": authorization_id})
            assert before.status_code == 200, before.text

            # the court pushes a serious negative record about the citizen
            court = _token(api, {"grant_type": "client_credentials", "client_id": demo["SOURCE_ID"],
                                 "client_secret": demo["SOURCE_SECRET"]})
            pushed = api.post("/v1/records/batch", headers=court, json=[{
                "source_ref": "(2026)浙0402执1号", "category": "dishonest_executee", "severity": "serious",
                "title": "失信被执行人", "occurred_at": datetime.now(UTC).isoformat(),
                "subject": {"kind": "person", "id_number": demo["CITIZEN_ID_NUMBER"]}}])
            assert pushed.status_code == 200, pushed.text
            assert pushed.json()["summary"]["accepted"] == 1

            after = api.post("/v1/scores/query", headers=bank, json={"authorization_id": authorization_id})
            assert after.status_code == 200, after.text
            assert after.json()["score"] < before.json()["score"]

            # the server's background job delivers both events; the simulated bank verifies and prints them
            assert authorization_id in _wait_for(lines, seen, "authorization.authorized")
            assert authorization_id in _wait_for(lines, seen, "score.changed")
            # the bank's own view: both deliveries recorded as delivered (once the server has seen the answers)
            assert _delivered(api, bank) >= {"authorization.authorized", "score.changed"}

            # a forged delivery is refused by the bank
            forged = httpx.post(f"http://127.0.0.1:{port}/webhooks", json={"type": "score.changed"}, timeout=5,
                                headers={"webhook-id": "evt_x", "webhook-timestamp": str(int(time.time())),
                                         "webhook-signature": "v1,bm9wZQ=="})
            assert forged.status_code == 401
            assert _wait_for(lines, seen, "refused a delivery with a bad signature")
        finally:
            os.killpg(bank_process.pid, signal.SIGTERM)
            bank_process.wait(timeout=15)
