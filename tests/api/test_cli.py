"""The `xinyi` command as a user runs it: up (migrate + seed + serve), seed, admin and partner create.

These run the real console script in a subprocess on the embedded default (a fresh SQLite file and
the in-process store), which is what the README's quick start promises.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import XINYI, free_port, printed_exports, throwaway_database, xinyi_up


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "XINYI_SMS_ADAPTER")}
    env.update({"XINYI_ENV": "dev", "XINYI_SQLITE_PATH": str(tmp_path / "cli.sqlite"), "XINYI_LOG_LEVEL": "WARNING"})
    return env


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([XINYI, *args], env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout




@pytest.fixture
def running_up(embedded_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen([XINYI, "up", "--port", str(port), "--persons", "60", "--enterprises", "6"],
                               env=embedded_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.3)
        else:
            pytest.fail("xinyi up did not become ready within 120 s")
        yield base, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_up_serves_a_seeded_city_with_docs(running_up: tuple[str, subprocess.Popen[str]]) -> None:
    base, _ = running_up
    assert httpx.get(f"{base}/schema/swagger", timeout=5).status_code == 200
    assert "/v1/auth/token" in httpx.get(f"{base}/schema/openapi.json", timeout=5).json()["paths"]
    sent = httpx.post(f"{base}/v1/auth/otp", json={"phone": "13900139000"}, timeout=5)
    assert sent.status_code == 202
    token = httpx.post(f"{base}/v1/auth/token", timeout=5,
                       json={"grant_type": "otp", "phone": "13900139000", "code": sent.json()["dev_code"]})
    assert token.status_code == 200
    me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=5)
    assert me.json()["phone"] == "13900139000"


def test_seed_admin_and_partner_commands(embedded_env: dict[str, str]) -> None:
    _run(embedded_env, "migrate")
    first = _run(embedded_env, "seed", "--persons", "40", "--enterprises", "4", "--seed", "7")
    assert "client_secret" in first or "secret" in first
    again = _run(embedded_env, "seed", "--persons", "40", "--enterprises", "4", "--seed", "7")
    assert again  # a second run does not fail
    created = _run(embedded_env, "admin", "create", "--username", "auditor1", "--role", "auditor")
    assert "auditor1" in created
    assert "password (shown once)" in created
    partner = _run(embedded_env, "partner", "create", "--name", "测试银行", "--kind", "bank")
    assert "client_id:" in partner
    assert "client_secret:" in partner
    refused = subprocess.run([XINYI, "partner", "create", "--name", "x", "--kind", "bank", "--scopes", "records:write"],
                             env=embedded_env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0
    assert "cannot hold" in refused.stderr


def test_serve_refuses_unsafe_production_settings(embedded_env: dict[str, str]) -> None:
    env = {**embedded_env, "XINYI_ENV": "production"}
    done = subprocess.run([XINYI, "serve", "--port", str(free_port())], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    assert "required" in done.stderr


def test_partner_rotation_and_suspension_commands(embedded_env: dict[str, str]) -> None:
    _run(embedded_env, "migrate")
    created = _run(embedded_env, "partner", "create", "--name", "轮换银行", "--kind", "bank")
    client_id = created.split("client_id:")[1].split()[0]
    rotated = _run(embedded_env, "partner", "rotate-secret", "--client-id", client_id, "--overlap-hours", "2")
    assert "client_secret:" in rotated
    assert f"{client_id}: suspended" in _run(embedded_env, "partner", "status", "--client-id", client_id, "suspended")
    assert f"{client_id}: active" in _run(embedded_env, "partner", "status", "--client-id", client_id, "active")


def test_up_on_a_seeded_database_prints_no_secret_and_no_person_it_did_not_seed(tmp_path: Path) -> None:
    """Secrets are shown once, by the run that issued them. The demo citizen (a phone, a name, an id number) is
    printed from the embedded SQLite file, the demo's own, but never from a PostgreSQL database this run did not
    seed, which may hold real people."""
    with throwaway_database("xinyi_up_again") as database_url:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "XINYI_SMS_ADAPTER")}
        env.update({"XINYI_ENV": "dev", "XINYI_SQLITE_PATH": str(tmp_path / "again.sqlite"),
                    "XINYI_LOG_LEVEL": "WARNING"})
        if database_url:
            env["DATABASE_URL"] = database_url
        _run(env, "migrate")
        _run(env, "seed", "--persons", "200", "--enterprises", "20")
        with xinyi_up([], env=env, workdir=tmp_path) as (base, printed):
            exported = printed_exports(printed)
    assert exported["API"] == base
    assert not [name for name in exported if name.endswith(("_SECRET", "_PASSWORD"))]
    assert "shown only when the database is first seeded" in printed
    if database_url:
        assert not {"CITIZEN_PHONE", "CITIZEN_NAME", "CITIZEN_ID_NUMBER"} & set(exported)
    else:
        assert {"CITIZEN_PHONE", "CITIZEN_NAME", "CITIZEN_ID_NUMBER", "USCC"} <= set(exported)


def test_a_dev_server_advertises_the_port_it_listens_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """`xinyi serve --port 8100` (or `up`) without XINYI_PUBLIC_URL: the OAuth metadata names port 8100, not 8000."""
    from api import serving
    from core.settings import Settings

    started: list[str] = []

    class FakeServer:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def serve(self) -> None:
            started.append(os.environ["XINYI_PUBLIC_URL"])

    monkeypatch.setenv("XINYI_PUBLIC_URL", "")  # unset, and restored after the test (serve() sets it)
    monkeypatch.setenv("XINYI_ENV", "dev")
    monkeypatch.setattr("granian.server.Server", FakeServer)
    serving.serve(host="0.0.0.0", port=8100, workers=1)  # noqa: S104 - not bound: the server is a fake
    assert started == ["http://127.0.0.1:8100"]
    assert Settings.from_env().public_url == "http://127.0.0.1:8100"
    assert serving.listening_url(host="::", port=9000) == "http://[::1]:9000"
    assert serving.listening_url(host="10.0.0.5", port=80) == "http://10.0.0.5:80"
