"""A database made before the accounts domain was split out of api (commit fdf27b7) upgrades with its data.

The accounts tables were the Piccolo app `api`; now they are the app `accounts`. Piccolo knows applied
migrations by app name, so `xinyi migrate` carries the old name's rows over before it runs anything (else it
would create the accounts tables again and fail). The fixtures were written by fdf27b7's own code
(`fixtures/build_fdf27b7.py`): a small demo city plus a citizen who logged in, bound their identity and
approved a bank's authorization, and the demo operator. The test runs on the backend the suite runs on
(SQLite, or PostgreSQL when DATABASE_URL is set: a scratch database loaded from the dump with psql), migrates
it with the CLI, twice, and then shows through HTTP that accounts, sessions, operators and partners still work.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from litestar.testing import TestClient

import accounts
from api import domains
from api.app import create_app
from core.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
BACKEND = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"


def _psql(dsn: str, *args: str, stdin: bytes | None = None) -> str:
    psql = shutil.which("psql")
    assert psql, "the PostgreSQL run needs the psql client to load the fdf27b7 dump"
    done = subprocess.run([psql, "-v", "ON_ERROR_STOP=1", "-q", "-X", "-At", dsn, *args], input=stdin,
                          capture_output=True, check=True)
    return done.stdout.decode()


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def old_database(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a process that serves the fdf27b7 database (a copy: the fixture stays as it is)."""
    env = {k: v for k, v in os.environ.items() if k != "XINYI_SQLITE_PATH"}
    env["XINYI_REDIS_NAMESPACE"] = f"{os.environ.get('XINYI_REDIS_NAMESPACE', 'xinyi-test')}-upgrade"
    if BACKEND == "sqlite":
        path = tmp_path / "fdf27b7.sqlite"
        with gzip.open(FIXTURES / "fdf27b7.sqlite.gz") as packed, path.open("wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
        env["XINYI_SQLITE_PATH"] = str(path)
        yield env
        return
    server = os.environ["DATABASE_URL"]
    name = f"xinyi_fdf27b7_{secrets.token_hex(4)}"
    _psql(server, "-c", f"CREATE DATABASE {name}")
    try:
        scratch = _with_database(server, name)
        _psql(scratch, "-f", "-", stdin=gzip.decompress((FIXTURES / "fdf27b7-postgresql.sql.gz").read_bytes()))
        env["DATABASE_URL"] = scratch
        yield env
    finally:
        _psql(server, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _migration_apps(env: dict[str, str]) -> dict[str, int]:
    query = "SELECT app_name, count(*) FROM migration GROUP BY app_name"
    if BACKEND == "sqlite":
        with sqlite3.connect(env["XINYI_SQLITE_PATH"]) as connection:
            rows = connection.execute(query).fetchall()
        return {str(app): int(n) for app, n in rows}
    lines = _psql(env["DATABASE_URL"], "-F", "\t", "-c", query).split()
    return {lines[i]: int(lines[i + 1]) for i in range(0, len(lines), 2)}


def _migrate(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "api.cli", "migrate"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "migrations applied" in done.stdout


@pytest.fixture
def restore_table_binding() -> Iterator[None]:
    """Serving the old database binds every table to its engine; the rest of the suite keeps its own."""
    # `_db`, not `db`: reading `db` of a table nothing bound yet would go looking for a piccolo_conf.
    before = [(table, table._meta._db) for table in domains.all_tables()]
    yield
    for table, engine in before:
        table._meta._db = engine


def _bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_an_fdf27b7_database_upgrades_with_its_accounts(old_database: dict[str, str],
                                                        restore_table_binding: None) -> None:
    fixture = json.loads((FIXTURES / f"fdf27b7-{BACKEND}.json").read_text())
    # fdf27b7 recorded the accounts tables' first migration under `api`; revoked_tokens came after it.
    assert _migration_apps(old_database).get("api") == 1

    _migrate(old_database)
    _migrate(old_database)  # the rename is idempotent, and nothing is left to run

    apps = _migration_apps(old_database)
    assert "api" not in apps
    # The carried-over one and every later accounts migration (revoked_tokens, …), run under the new name.
    assert apps["accounts"] == len(list((Path(accounts.__file__).parent / "piccolo_migrations").glob("accounts_*.py")))

    citizen = fixture["citizen"]
    with TestClient(app=create_app(Settings.from_env(old_database))) as client:
        # The citizen logs in again (dev SMS code) and lands in the same account, still bound.
        sent = client.post("/v1/auth/otp", json={"phone": citizen["phone"]})
        assert sent.status_code == 202, sent.text
        token = client.post("/v1/auth/token", json={"grant_type": "otp", "phone": citizen["phone"],
                                                    "code": sent.json()["dev_code"]})
        assert token.status_code == 200, token.text
        me = client.get("/v1/me", headers=_bearer(token.json()))
        assert me.status_code == 200, me.text
        assert me.json()["account_id"] == citizen["account_id"]
        assert me.json()["identity"]["person_id"] == citizen["person_id"]
        mine = client.get("/v1/me/authorizations", headers=_bearer(token.json()))
        assert mine.status_code == 200, mine.text
        assert fixture["authorization_id"] in [a["id"] for a in mine.json()["items"]]
        score = client.get("/v1/me/score", headers=_bearer(token.json()))
        assert score.status_code == 200, score.text
        assert [d["code"] for d in score.json()["dimensions"]] == [
            d["code"] for d in citizen["my_score"]["dimensions"]]
        assert isinstance(score.json()["total"], int)

        # The refresh token issued before the upgrade still rotates (refresh_tokens kept).
        refreshed = client.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                        "refresh_token": citizen["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        assert client.get("/v1/me", headers=_bearer(refreshed.json())).json()["account_id"] == citizen["account_id"]

        # The demo operator logs in with the password the seed issued, and sees the partner registry.
        operator = client.post("/v1/auth/token", json={"grant_type": "password", **{
            k: fixture["operator"][k] for k in ("username", "password")}})
        assert operator.status_code == 200, operator.text
        bank = client.get(f"/v1/admin/partners/{fixture['bank_client_id']}", headers=_bearer(operator.json()))
        assert bank.status_code == 200, bank.text

        # The bank gets a token with its seeded secret and still sees the authorization it asked for.
        secret = next(p["client_secret"] for p in fixture["partners"] if p["client_id"] == fixture["bank_client_id"])
        partner = client.post("/v1/auth/token", json={"grant_type": "client_credentials",
                                                      "client_id": fixture["bank_client_id"], "client_secret": secret})
        assert partner.status_code == 200, partner.text
        asked = client.get(f"/v1/authorizations/{fixture['authorization_id']}", headers=_bearer(partner.json()))
        assert asked.status_code == 200, asked.text
        assert asked.json()["id"] == fixture["authorization_id"]
