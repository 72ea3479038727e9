"""Hot-path benchmark: each hot path's req/s as a ratio of a bare Litestar hello endpoint (DESIGN §6).

Every server runs the same way (granian, one worker, the same settings: PostgreSQL + Redis) and is
loaded by wrk (Debian's package, C, far cheaper per request than the server) with one Lua script per
path. Set-up (partner tokens, persons, approved authorizations, a supply of single-use benefit codes
and verifications) happens before and outside the measured requests.

    xinyi bench --quick --json        # about a minute: 5 s per path
    xinyi bench --duration 30         # the full run

The report shows the generator was not the bottleneck: the same wrk set-up drove hello at many times
any path's rate, and its own CPU share is reported per run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from api import domains
from api.context import build_cipher, build_tokens
from api.migrations import migrate_async
from core import db
from core.settings import Settings
from core.store import build_store
from credit import authorizations as authz
from credit.catalog import PURPOSES
from credit.tables import Enterprise, Person
from demo import seed_demo_city
from partners.services import create_partner, find_partner, update_partner
from scenarios import codes
from scenarios.catalog import seed_default_scenarios
from scenarios.tables import Benefit

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/xinyi_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SCORE_QUERY = "POST /v1/scores/query"
SCORE_CHECK = "POST /v1/scores/check"
BENEFIT_VERIFY = "POST /v1/benefits/verify"
BENEFIT_REDEEM = "POST /v1/benefits/redeem"
PORTRAIT = "GET /v1/portraits/{uscc}"
PATHS = (SCORE_QUERY, SCORE_CHECK, BENEFIT_VERIFY, BENEFIT_REDEEM, PORTRAIT)
# Single-use items (codes, verifications) are supplied for this rate at most; more than any path reaches here.
_SUPPLY_RPS = 4000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fixtures:
    """What the Lua scripts send: tokens and the ids each request picks from."""

    bank_token: str
    merchant_token: str
    authorization_ids: list[str]
    codes: list[str]
    verification_ids: list[str]
    benefit_id: str
    portraits: list[tuple[str, str]]  # (uscc, authorization id)


async def _lifted_partner(settings: Settings, *, kind: str, scenario: str | None = None) -> tuple[str, str, str]:
    """A partner whose contractual limits are out of the way (we measure the server). Returns
    (client id, name, access token)."""
    issued = await create_partner(name=f"bench {kind} {time.time_ns()}", kind=kind, scenario=scenario)
    await update_partner(client_id=issued.client_id, rate_limit_per_second=1_000_000, daily_quota=1_000_000_000)
    partner = await find_partner(issued.client_id)
    assert partner is not None
    token, _ = build_tokens(settings).issue(kind="partner", subject=partner.client_id, ttl_seconds=7200,
                                           scopes=partner.scopes, partner_kind=kind)
    return partner.client_id, partner.name, token


async def prepare(settings: Settings, *, persons: int, supply: int) -> Fixtures:
    """Seed if needed and build every fixture the paths need (nothing here is measured)."""
    # Piccolo reports migrations with print(); stdout is kept for the one-line `--json` answer.
    with contextlib.redirect_stdout(sys.stderr):
        await migrate_async()
    engine = db.build_engine(settings)
    domains.bind_tables(engine)
    await db.open_engine(engine, settings)
    store = build_store(settings.redis_url, settings.redis_namespace)
    try:
        cipher = build_cipher(settings)
        if await Person.count() < persons:
            await seed_demo_city(persons=persons, enterprises=max(50, persons // 10), seed=4242, cipher=cipher,
                                 engine=engine)
        await seed_default_scenarios()
        bank_id, bank_name, bank_token = await _lifted_partner(settings, kind="bank")
        merchant_id, merchant_name, merchant_token = await _lifted_partner(settings, kind="merchant",
                                                                           scenario="travel")
        rows = await Person.select(Person._meta.primary_key, Person.public_id, Person.name,
                                   Person.id_number_enc).limit(persons)
        async def approved(row: dict[str, Any]) -> str:
            view = await authz.request_authorization(
                cipher=cipher, partner_client_id=bank_id, partner_name=bank_name, partner_kind="bank",
                subject_kind="person", purpose_code="deposit_waiver", scopes=["tier", "score_band"], validity_days=30,
                id_number=cipher.decrypt("id_number", row["id_number_enc"]), name=row["name"])
            await authz.approve(public_id=view.id, person_id=row["id"])
            return view.id

        # Each authorization allows its purpose's daily cap of uses, and the score query and check runs
        # both count against it: grant enough (cycling over the persons) that the runs never meet a cap.
        wanted = max(len(rows), -(-2 * supply // PURPOSES["deposit_waiver"].daily_cap))
        authorization_ids: list[str] = []
        for start in range(0, wanted, 20):
            authorization_ids += await asyncio.gather(*(approved(rows[i % len(rows)])
                                                        for i in range(start, min(wanted, start + 20))))
        # An unlimited benefit of the merchant's scenario: redemptions measure the write path, not quotas.
        benefit_id = f"bnf_bench{secrets.token_hex(6)}"
        await Benefit.insert(Benefit(public_id=benefit_id, scenario="travel", name="基准测试优惠",
                                     kind="percent_discount", value=10, quota_per_period=0, period="day"))
        now = time.time()

        async def code_for(row: dict[str, Any]) -> str:
            return await codes.issue_code(store=store, state=codes.CodeState(
                person_id=row["id"], person_public_id=row["public_id"], account_id="bench", issued_at=now,
                masked_name="*" + row["name"][-1:]), ttl_seconds=3600)

        async def verification_for(row: dict[str, Any]) -> str:
            verification = codes.Verification(
                id=f"vrf_bench{secrets.token_hex(8)}", person_id=row["id"], person_public_id=row["public_id"],
                scenario="travel", merchant_client_id=merchant_id, merchant_name=merchant_name, tier="A", total=700,
                benefit_ids=(benefit_id,), verified_at=now)
            await codes.save_verification(store=store, verification=verification, ttl_seconds=3600)
            return verification.id

        code_list: list[str] = []
        verification_ids: list[str] = []
        for start in range(0, supply, 500):  # many in flight at a time: the supply is ready in seconds
            chunk = [rows[i % len(rows)] for i in range(start, min(supply, start + 500))]
            code_list += await asyncio.gather(*(code_for(row) for row in chunk))
            verification_ids += await asyncio.gather(*(verification_for(row) for row in chunk))
        # A loan-application authorization allows PURPOSES[...].daily_cap reads a day; grant enough of them
        # (cycling over the enterprises) that the measured reads never meet the cap.
        enterprises = await Enterprise.select(Enterprise._meta.primary_key, Enterprise.uscc_enc).limit(
            max(50, persons // 10))
        cap = PURPOSES["loan_application"].daily_cap
        grants = max(len(enterprises), -(-supply // cap))

        async def granted(enterprise: dict[str, Any]) -> tuple[str, str]:
            view = await authz.grant_for_enterprise(
                enterprise_id=enterprise["id"], partner_client_id=bank_id, partner_name=bank_name, partner_kind="bank",
                purpose_code="loan_application", scopes=["portrait"], validity_days=30)
            return cipher.decrypt("uscc", enterprise["uscc_enc"]), view.id

        portraits: list[tuple[str, str]] = []
        for start in range(0, grants, 50):
            portraits += await asyncio.gather(*(granted(enterprises[i % len(enterprises)])
                                                for i in range(start, min(grants, start + 50))))
        return Fixtures(bank_token=bank_token, merchant_token=merchant_token, authorization_ids=authorization_ids,
                        codes=code_list, verification_ids=verification_ids, benefit_id=benefit_id,
                        portraits=portraits)
    finally:
        await store.close()
        await db.close_engine(engine)


# ------------------------------------------------------------------ wrk scripts (one per path)


def _lua_list(values: list[str]) -> str:
    return "{" + ",".join(f'"{v}"' for v in values) + "}"


def _lua_post(token: str, path: str, items: list[str], body: str, *, threads: int, single_use: bool = False,
              idempotent: bool = False) -> str:
    """A wrk script POSTing `body` (a Lua expression over `item` and `n`) for each request.

    Single-use items are taken in order and never reused: each wrk thread takes every k-th item from
    its own offset, so threads never send the same one, and each run starts where it is told (the
    script's argument) so a measured run never resends what its warm-up spent.
    """
    pick = "items[base + (n - 1) * threads + id]" if single_use else "items[((n * threads + id) % #items) + 1]"
    key = 'headers["Idempotency-Key"] = "bench-" .. item' if idempotent else ""
    return f"""
local items = {_lua_list(items)}
local run = "{secrets.token_hex(4)}"
local counter, threads, id, n, base = 0, {threads}, 1, 0, 0
setup = function(thread)
  counter = counter + 1
  thread:set("id", counter)
end
init = function(args)
  base = tonumber(args[1] or "0")
end
local headers = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {token}"}}
request = function()
  n = n + 1
  local item = {pick} or "exhausted"
  {key}
  return wrk.format("POST", "{path}", headers, {body})
end
"""


def scripts(f: Fixtures, *, threads: int) -> dict[str, str]:
    portrait_paths = [f"/v1/portraits/{uscc}?authorization_id={authorization}" for uscc, authorization in f.portraits]
    return {
        SCORE_QUERY: _lua_post(f.bank_token, "/v1/scores/query", f.authorization_ids,
                               "'{\"authorization_id\":\"' .. item .. '\"}'", threads=threads),
        SCORE_CHECK: _lua_post(f.bank_token, "/v1/scores/check", f.authorization_ids,
                               "'{\"authorization_id\":\"' .. item .. '\",\"threshold\":600,"
                               "\"transaction_id\":\"bench-' .. run .. '-' .. id .. '-' .. n .. '\"}'",
                               threads=threads),
        BENEFIT_VERIFY: _lua_post(f.merchant_token, "/v1/benefits/verify", f.codes,
                                  "'{\"code\":\"' .. item .. '\",\"scenario\":\"travel\"}'", threads=threads,
                                  single_use=True),
        BENEFIT_REDEEM: _lua_post(f.merchant_token, "/v1/benefits/redeem", f.verification_ids,
                                  "'{\"verification_id\":\"' .. item .. '\",\"benefit_id\":\"" + f.benefit_id
                                  + "\"}'", threads=threads, single_use=True, idempotent=True),
        # Each authorization is read at most its daily cap times, in order (a single-use supply of reads).
        PORTRAIT: f"""
local items = {_lua_list(portrait_paths)}
local cap, threads, counter, id, n, base = {PURPOSES["loan_application"].daily_cap}, {threads}, 0, 1, 0, 0
setup = function(thread)
  counter = counter + 1
  thread:set("id", counter)
end
init = function(args)
  base = tonumber(args[1] or "0")
end
local headers = {{["Authorization"] = "Bearer {f.bank_token}"}}
request = function()
  n = n + 1
  local k = base + (n - 1) * threads + id - 1
  return wrk.format("GET", items[math.floor(k / cap) + 1] or items[1], headers)
end
""",
    }


# ------------------------------------------------------------------ running servers and wrk


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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url: str, *, duration: int, connections: int, threads: int, script: str | None,
            offset: int = 0) -> dict[str, Any]:
    """One wrk run; also reports wrk's own CPU use as a share of one core (the generator's load).
    `offset` tells a single-use script where its supply starts."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        command += ["-s", script]
    cpu_before = _children_cpu()
    out = subprocess.run([*command, url, "--", str(offset)], capture_output=True, text=True, check=True).stdout
    generator_cpu = (_children_cpu() - cpu_before) / duration
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": round(rps, 1), "p50_ms": round(_ms(latency["50"]), 2), "p99_ms": round(_ms(latency["99"]), 2),
            "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1).strip() if socket_errors else "",
            "generator_cpu": round(generator_cpu, 2)}


def _measure(target: str, ready_path: str, env: dict[str, str], runs: list[tuple[str, str | None, str]], *,
             duration: int, warmup: int, connections: int, threads: int) -> dict[str, dict[str, Any]]:
    """Start one server, then for each (name, script, url path) warm up and measure."""
    port = _free_port()
    server = _serve(target, port, env)
    results: dict[str, dict[str, Any]] = {}
    try:
        _wait_ready(f"http://127.0.0.1:{port}{ready_path}")
        for name, script, path in runs:
            url = f"http://127.0.0.1:{port}{path}"
            run_wrk(url, duration=warmup, connections=connections, threads=threads, script=script)
            # The warm-up spent at most _SUPPLY_RPS per second of the single-use supply; measure past it.
            results[name] = run_wrk(url, duration=duration, connections=connections, threads=threads, script=script,
                                    offset=_SUPPLY_RPS * warmup)
    finally:
        _stop(server)
    return results


def bench_settings(env: dict[str, str]) -> dict[str, str]:
    """PostgreSQL + Redis are what the figures are about: default to local ones when none are set."""
    env = dict(env)
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env.setdefault("XINYI_REDIS_NAMESPACE", "xinyi-bench")
    env["XINYI_LOG_LEVEL"] = "WARNING"
    env["XINYI_BACKGROUND_IN_APP"] = "0"
    return env


async def prepare_database(url: str, *, reset: bool = False, tool: str = "xinyi bench") -> bool:
    """Create the database at `url` if it is missing (a fresh checkout); with `reset`, drop it first (only a
    load-test database). Returns whether it is new. `tool` names the command in error messages."""
    import asyncpg  # noqa: PLC0415 - only the load tools need a raw admin connection

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise SystemExit(f"{tool}: unsupported database name {name!r}")
    try:
        connection = await asyncpg.connect(parts._replace(path="/postgres").geturl())
    except (OSError, asyncpg.PostgresError) as exc:
        raise SystemExit(f"{tool}: PostgreSQL is not reachable at {parts.hostname}:{parts.port}: {exc}") from exc
    try:
        exists = bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
        if exists and reset:
            if "loadtest" not in name:
                raise SystemExit(f"{tool}: --reset-db only drops load-test databases, not {name!r}")
            await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
        return not exists
    finally:
        await connection.close()


def run(*, duration: int, warmup: int, connections: int, threads: int, persons: int,
        paths: tuple[str, ...] = PATHS, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = progress or (lambda _: None)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required (apt-get install wrk)")
    env = bench_settings(dict(os.environ))
    os.environ.update(env)
    settings = Settings.from_env(env)
    assert settings.database_url is not None
    asyncio.run(prepare_database(settings.database_url))
    say("preparing fixtures")
    supply = _SUPPLY_RPS * (duration + warmup)
    fixtures = asyncio.run(prepare(settings, persons=persons, supply=supply))
    with tempfile.TemporaryDirectory(prefix="xinyi-bench-") as folder:
        lua: dict[str, str] = {}
        for name, text in scripts(fixtures, threads=threads).items():
            lua[name] = str(Path(folder) / f"{len(lua)}.lua")
            Path(lua[name]).write_text(text)
        say("hello")
        hello = _measure("loadtests.hello:create_hello_app", "/hello", env, [("hello", None, "/hello")],
                         duration=duration, warmup=warmup, connections=connections, threads=threads)["hello"]
        say(", ".join(paths))
        # Verify and redeem come last: they spend their single-use supply.
        measured = _measure("api.app:create_app", "/health/live", env, [(p, lua[p], "") for p in paths],
                            duration=duration, warmup=warmup, connections=connections, threads=threads)
    for result in measured.values():
        result["ratio"] = round(result["rps"] / hello["rps"], 3)
    fastest = max((r["rps"] for r in measured.values()), default=1.0)
    generator = {
        "tool": "wrk", "threads": threads, "connections": connections,
        "max_cpu_share_of_one_core": max(r["generator_cpu"] for r in [hello, *measured.values()]),
        "hello_rps": hello["rps"],
        # The same generator drove hello this many times faster than the fastest path: it had room to spare.
        "headroom_over_fastest_path": round(hello["rps"] / fastest, 1),
    }
    return {"config": {"database": "postgresql", "store": "redis", "server": "granian, 1 worker",
                       "duration_s": duration, "connections": connections, "persons": persons},
            "hello": {k: hello[k] for k in ("rps", "p50_ms", "p99_ms", "non_2xx")},
            "paths": {name: {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "ratio", "non_2xx")}
                      for name, r in measured.items()},
            "generator": generator}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="xinyi bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s per path (finishes in about a minute)")
    parser.add_argument("--duration", type=int, default=None, help="seconds per path (default 20; quick: 5)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--persons", type=int, default=None, help="persons with authorizations (default 2000)")
    parser.add_argument("--path", action="append", choices=PATHS, help="only these paths (repeatable)")
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    args = parser.parse_args(argv)
    duration = args.duration or (5 if args.quick else 20)
    persons = args.persons or (500 if args.quick else 2000)
    results = run(duration=duration, warmup=1 if args.quick else 3, connections=args.connections,
                  threads=args.threads, persons=persons, paths=tuple(args.path or PATHS),
                  progress=None if args.json else lambda step: print(f"... {step}", file=sys.stderr, flush=True))
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
