"""`xinyi loadtest` end to end at a low rate: it seeds, prepares fixtures, serves with production settings,
runs the Locust suite and writes a well-formed report with every request answered as expected.

The runner drives real processes (granian, Locust) against PostgreSQL and Redis, so this runs only when
the suite itself runs on them; it uses a database of its own on the same server (dropped afterwards) and
a Redis namespace of its own, so nothing it writes touches the other tests' data.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import BACKEND, STORE

pytestmark = pytest.mark.skipif(BACKEND != "postgresql" or STORE != "redis",
                                reason="the load-test runner needs PostgreSQL and Redis")

REPORT_FILES = ("summary.json", "summary.md", "locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv",
                "locust.html", "prepare.log", "server.log", "locust.log")


async def _drop_database(url: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    connection = await asyncpg.connect(parts._replace(path="/postgres").geturl())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')
    finally:
        await connection.close()


async def _drop_namespace(redis_url: str, namespace: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start:start + 1000])
    finally:
        await client.aclose()


def test_loadtest_runner_writes_a_report_with_no_failures(tmp_path: Path) -> None:
    database_url = urlsplit(os.environ["DATABASE_URL"])._replace(
        path=f"/xy_loadtest_smoke_{secrets.token_hex(4)}").geturl()
    namespace = f"xinyi-test-loadtest-{secrets.token_hex(4)}"
    # The runner configures production itself; the test run's own settings (XINYI_ENV=test, ...) stay out.
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINYI_")}
    env.update(DATABASE_URL=database_url, REDIS_URL=os.environ["REDIS_URL"], XINYI_REDIS_NAMESPACE=namespace)
    out = tmp_path / "report"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", "loadtest", "--rate", "20", "--duration", "10", "--warmup", "2",
             "--server-workers", "1", "--locust-workers", "1", "--persons", "200", "--out", str(out),
             "--state-dir", str(tmp_path / "state")],
            env=env, capture_output=True, text=True, timeout=180, check=False)
    finally:
        asyncio.run(_drop_database(database_url))
        asyncio.run(_drop_namespace(os.environ["REDIS_URL"], namespace))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    for name in REPORT_FILES:
        assert (out / name).is_file(), f"{name} missing from the report"
    summary = json.loads((out / "summary.json").read_text())
    total = summary["total"]
    assert total["requests"] > 100
    assert total["failures"] == 0, summary["failures"]
    assert summary["failures"] == []
    assert 0 < total["p50_ms"] <= total["p95_ms"] <= total["p99_ms"] <= total["max_ms"]
    # Every kind of user took part, each endpoint named by its route template.
    names = {e["name"] for e in summary["endpoints"]}
    assert {"GET /v1/me/score", "POST /v1/scores/query", "POST /v1/scores/check", "POST /v1/benefits/verify",
            "POST /v1/benefits/redeem", "POST /v1/credit-checks", "POST /v1/records/batch", "GET /v1/portraits/{uscc}",
            "GET /v1/scenarios"} <= names
    assert all(e["failures"] == 0 and e["requests"] > 0 for e in summary["endpoints"])
    credit = summary["credit_queries"]
    assert credit["per_second"] > 0
    assert credit["per_day"] == round(credit["per_second"] * 86_400)
    assert credit["multiple_of_target"] == round(credit["per_day"] / 3_000, 1)
    targets = {t["name"]: t for t in summary["targets"]}
    assert set(targets) == {"errors", "p99_ms", "rate_rps", "worker_rss_mb"}
    assert targets["errors"]["pass"] is True
    assert summary["pass"] == all(t["pass"] for t in targets.values())
    workers = summary["server"]["workers"]
    assert len(workers) == 1
    assert workers[0]["rss_mb"] > 0
    assert (summary["config"]["server_workers"], summary["config"]["target_rps"]) == (1, 20)
    markdown = (out / "summary.md").read_text()
    assert "## Targets" in markdown
    assert "x** the public target" in markdown
