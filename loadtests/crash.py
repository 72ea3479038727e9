"""Crash safety: `kill -9` the server under score-query load, restart it, and prove that every query
answered 200 has its ledger entry and that the chain still verifies (DESIGN §6).

A score query is answered only after its ledger entry is committed (group commit), so a crash may
lose requests in flight but never an entry of an answer already sent. The script checks exactly that:
it records the `ledger_seq` of every 200, kills the whole server process group with SIGKILL in the
middle of the load, restarts the server, and looks each answered entry up (same authorization, same
action, outcome allowed), then runs the full chain verification.

    python -m loadtests.crash --rounds 3 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from api import domains
from core import db
from core.settings import Settings
from loadtests.bench import _free_port, _serve, _wait_ready, bench_settings, prepare, prepare_database


@dataclass
class RoundReport:
    answered: int = 0
    failed: int = 0
    killed_after_s: float = 0.0
    missing: list[int] = field(default_factory=list)


async def _load(base: str, token: str, ids: list[str], *, until: float, answered: dict[int, str],
                concurrency: int) -> int:
    """Send score queries until `until` (or until the server dies); remember every 200's ledger seq."""
    failures = 0
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=5, headers=headers) as client:

        async def worker() -> None:
            nonlocal failures
            while time.monotonic() < until:
                authorization_id = random.choice(ids)
                try:
                    response = await client.post("/v1/scores/query", json={"authorization_id": authorization_id})
                except httpx.HTTPError:
                    failures += 1
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code == 200:
                    answered[int(response.json()["ledger_seq"])] = authorization_id
                else:
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


async def _load_and_kill(*, base: str, server: subprocess.Popen[bytes], token: str, ids: list[str], until: float,
                         kill_at: float, answered: dict[int, str], concurrency: int) -> int:
    task = asyncio.create_task(_load(base, token, ids, until=until, answered=answered, concurrency=concurrency))
    await asyncio.sleep(kill_at)
    os.killpg(server.pid, signal.SIGKILL)  # the whole group: granian's main process and its workers
    return await task


async def entries_missing(engine: Any, answered: dict[int, str]) -> list[int]:
    """Sequence numbers answered 200 whose entry is absent or is not that authorization's allowed query
    (`answered`: ledger seq → authorization id; `engine`: an open PostgreSQL engine)."""
    missing: list[int] = []
    seqs = sorted(answered)
    for start in range(0, len(seqs), 5000):
        chunk = seqs[start:start + 5000]
        rows = await db.fetch_all(
            engine, "SELECT seq, authorization_id, action, outcome FROM access_ledger WHERE seq = ANY($1)", chunk)
        found = {int(r["seq"]): r for r in rows}
        for seq in chunk:
            row = found.get(seq)
            if row is None or row["authorization_id"] != answered[seq] or row["action"] != "score.query" \
                    or row["outcome"] != "allowed":
                missing.append(seq)
    return missing


async def _missing_entries(settings: Settings, answered: dict[int, str]) -> list[int]:
    engine = db.build_engine(settings)
    domains.bind_tables(engine)
    await db.open_engine(engine, settings)
    try:
        return await entries_missing(engine, answered)
    finally:
        await db.close_engine(engine)


def run(*, rounds: int, seconds: float, concurrency: int, workers: int) -> dict[str, Any]:
    env = bench_settings(dict(os.environ))
    os.environ.update(env)
    settings = Settings.from_env(env)
    assert settings.database_url is not None
    asyncio.run(prepare_database(settings.database_url, tool="loadtests.crash"))
    fixtures = asyncio.run(prepare(settings, persons=300, supply=0))
    reports: list[RoundReport] = []
    for _ in range(rounds):
        port = _free_port()
        server = _serve("api.app:create_app", port, env) if workers == 1 else subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        _wait_ready(f"http://127.0.0.1:{port}/health/live")
        answered: dict[int, str] = {}
        kill_at = random.uniform(seconds * 0.4, seconds * 0.8)
        started = time.monotonic()

        report = RoundReport(killed_after_s=round(kill_at, 2))
        report.failed = asyncio.run(_load_and_kill(
            base=f"http://127.0.0.1:{port}", server=server, token=fixtures.bank_token, ids=fixtures.authorization_ids,
            until=started + seconds, kill_at=kill_at, answered=answered, concurrency=concurrency))
        server.wait()
        report.answered = len(answered)
        # Restart (as an operator would) and check from a fresh process that nothing answered was lost.
        port = _free_port()
        restarted = _serve("api.app:create_app", port, env)
        try:
            _wait_ready(f"http://127.0.0.1:{port}/health/live")
        finally:
            os.killpg(restarted.pid, signal.SIGTERM)
            restarted.wait()
        report.missing = asyncio.run(_missing_entries(settings, answered))
        reports.append(report)
    verify = subprocess.run([sys.executable, "-m", "api.cli", "ledger", "verify"], env=env, capture_output=True,
                            text=True, check=False)
    return {
        "rounds": [{"answered_200": r.answered, "failed_or_cut_off": r.failed, "killed_after_s": r.killed_after_s,
                    "answered_without_entry": len(r.missing)} for r in reports],
        "answered_200": sum(r.answered for r in reports),
        "answered_without_entry": sum(len(r.missing) for r in reports),
        "chain_verifies": verify.returncode == 0,
        "verify_output": verify.stdout.strip() or verify.stderr.strip()[-300:],
        "ok": verify.returncode == 0 and not any(r.missing for r in reports) and all(r.answered for r in reports),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="load per round; the kill lands at 40-80 %%")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="granian workers")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(rounds=args.rounds, seconds=args.seconds, concurrency=args.concurrency, workers=args.workers)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    if not result["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
