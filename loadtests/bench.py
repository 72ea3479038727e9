"""Hot-path benchmark: req/s of `POST /v1/scores/query` as a ratio of a bare hello endpoint.

Both are served the same way (granian, one worker, the same settings: PostgreSQL + Redis when
configured) and loaded by wrk from Debian's packages, which is far cheaper per request than the
server. Set-up (partner token, persons, approved authorizations) happens before and outside the
measured requests.

    DATABASE_URL=... REDIS_URL=... python -m loadtests.bench --duration 15 --connections 32 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from api import db
from api.cli import migrate_async
from api.context import build_cipher, build_tokens
from api.demo import seed_demo_city
from api.settings import Settings
from credit import authorizations as authz
from credit.tables import Person
from partners.services import create_partner, find_partner, update_partner


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def prepare(settings: Settings, *, authorizations: int) -> tuple[str, list[str]]:
    """A bank token and `authorizations` approved authorizations (deposit_waiver: 50 uses a day each)."""
    await migrate_async()
    engine = db.build_engine(settings)
    db.bind_tables(engine)
    await db.open_engine(engine, settings)
    try:
        cipher = build_cipher(settings)
        if await Person.count() < authorizations:
            await seed_demo_city(persons=authorizations, enterprises=10, seed=4242, cipher=cipher, engine=engine)
        issued = await create_partner(name=f"bench bank {time.time_ns()}", kind="bank")
        # The benchmark measures the server, not the partner's contractual limits.
        await update_partner(client_id=issued.client_id, rate_limit_per_second=100_000, daily_quota=1_000_000_000)
        partner = await find_partner(issued.client_id)
        assert partner is not None
        token, _ = build_tokens(settings).issue(kind="partner", subject=partner.client_id, ttl_seconds=3600,
                                               scopes=partner.scopes, partner_kind="bank")
        rows = await Person.select(Person._meta.primary_key, Person.name, Person.id_number_enc).limit(authorizations)
        ids: list[str] = []
        for row in rows:
            view = await authz.request_authorization(
                cipher=cipher, partner_client_id=partner.client_id, partner_name=partner.name, partner_kind="bank",
                subject_kind="person", purpose_code="deposit_waiver", scopes=["tier", "score_band"], validity_days=30,
                id_number=cipher.decrypt("id_number", row["id_number_enc"]), name=row["name"])
            await authz.approve(public_id=view.id, person_id=row["id"])
            ids.append(view.id)
        return token, ids
    finally:
        await db.close_engine(engine)


def _serve(target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = ("from granian.constants import Interfaces; from granian.server import Server; "
            f"Server({target!r}, address='127.0.0.1', port={port}, workers=1, interface=Interfaces.ASGI, "
            "factory=True, log_access=False, backlog=2048).serve()")
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, *, duration: int, connections: int, threads: int, script: str | None) -> dict[str, Any]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        command += ["-s", script]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": round(rps, 1), "p50_ms": round(_ms(latency["50"]), 2), "p99_ms": round(_ms(latency["99"]), 2),
            "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1).strip() if socket_errors else ""}


def _lua(token: str, ids: list[str]) -> str:
    listing = ",".join(f'"{i}"' for i in ids)
    return f"""
local ids = {{{listing}}}
local n = 0
local headers = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {token}"}}
request = function()
  n = n + 1
  local id = ids[(n % #ids) + 1]
  return wrk.format("POST", "/v1/scores/query", headers, '{{"authorization_id":"' .. id .. '"}}')
end
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--authorizations", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required (apt-get install wrk)")
    settings = Settings.from_env()
    token, ids = asyncio.run(prepare(settings, authorizations=args.authorizations))
    env = {**os.environ, "XINYI_LOG_LEVEL": "WARNING", "XINYI_BACKGROUND_IN_APP": "0"}
    results: dict[str, Any] = {"config": {"database": "postgresql" if settings.database_url else "sqlite",
                                          "store": "redis" if settings.redis_url else "memory", "workers": 1,
                                          "duration_s": args.duration, "connections": args.connections}}
    port = _free_port()
    hello = _serve("loadtests.hello:create_hello_app", port, env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/hello")
        run_wrk(f"http://127.0.0.1:{port}/hello", duration=2, connections=args.connections, threads=args.threads,
                script=None)  # warm-up
        results["hello"] = run_wrk(f"http://127.0.0.1:{port}/hello", duration=args.duration,
                                   connections=args.connections, threads=args.threads, script=None)
    finally:
        _stop(hello)
    port = _free_port()
    app = _serve("api.app:create_app", port, env)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(token, ids))
    try:
        _wait_ready(f"http://127.0.0.1:{port}/health/live")
        run_wrk(f"http://127.0.0.1:{port}", duration=2, connections=args.connections, threads=args.threads,
                script=script.name)  # warm-up: caches and pools
        query = run_wrk(f"http://127.0.0.1:{port}", duration=args.duration, connections=args.connections,
                        threads=args.threads, script=script.name)
    finally:
        _stop(app)
        Path(script.name).unlink(missing_ok=True)
    query["ratio"] = round(query["rps"] / results["hello"]["rps"], 3)
    results["paths"] = {"POST /v1/scores/query": query}
    if args.json:
        print(json.dumps(results))
    else:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
