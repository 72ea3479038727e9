"""Does `POST /v1/credit-checks` take longer for a person the registry knows than for one it does not?

A department must learn whether someone is listed, never whether they are in the registry: not from the
answer, and not from how long it takes. This script serves the app the way production runs it
(`xinyi serve --workers 2` on PostgreSQL + Redis), registers clean persons, and then times checks of
registered and unregistered id numbers, interleaved (each pair in random order, one keep-alive client,
one request at a time). It prints both medians and P(slower): the chance that a random registered check
took longer than a random unregistered one (0.5 = timing tells nothing; ties count half).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/xinyi_x REDIS_URL=redis://127.0.0.1:6379/0 \\
        python -m loadtests.check_timing --tries 60 --workers 2

Set-up (migrations, persons, the department's token) happens before and outside the timed requests.
No test asserts on these figures: speed claims are measured, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
from stdnum.cn import ric

from api import domains
from api.context import build_cipher
from api.migrations import migrate_async
from core import db
from core.settings import Settings
from credit.identity import new_public_id
from credit.tables import Person
from loadtests.bench import _free_port, _lifted_partner, _stop, _wait_ready, bench_settings

XINYI = shutil.which("xinyi") or str(Path(sys.executable).with_name("xinyi"))
_rng = random.SystemRandom()


def _id_number() -> str:
    body = f"330402{_rng.randrange(1984, 2006)}{_rng.randrange(1, 13):02d}{_rng.randrange(1, 29):02d}" \
           f"{_rng.randrange(1000):03d}"
    return body + ric.calc_check_digit(body + "0")


async def _prepare(settings: Settings, *, count: int) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """A department token, `count` registered (id number, name) pairs and `count` unregistered ones."""
    with contextlib.redirect_stdout(sys.stderr):
        await migrate_async()
    engine = db.build_engine(settings)
    domains.bind_tables(engine)
    await db.open_engine(engine, settings)
    try:
        cipher = build_cipher(settings)
        _, _, token = await _lifted_partner(settings, kind="government")
        registered: list[tuple[str, str]] = []
        unregistered: list[tuple[str, str]] = []
        while len(registered) < count or len(unregistered) < count:
            number = _id_number()
            lookup = cipher.lookup_hash("id_number", number)
            if await Person.exists().where(Person.id_number_hash == lookup):
                continue
            name = "计时" + secrets.choice("甲乙丙丁戊己庚辛壬癸")
            if len(registered) < count:
                await Person.insert(Person(public_id=new_public_id("psn"), name=name, id_number_hash=lookup,
                                           id_number_enc=cipher.encrypt("id_number", number), gender="F",
                                           birth_date=date(1990, 1, 1), region_code=number[:6]))
                registered.append((number, name))
            else:
                unregistered.append((number, name))
        return token, registered, unregistered
    finally:
        await db.close_engine(engine)


def p_slower(slow_candidates: list[float], others: list[float]) -> float:
    """P(a random value of `slow_candidates` > a random value of `others`), ties counting half."""
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in slow_candidates for b in others)
    return wins / (len(slow_candidates) * len(others))


async def _time_checks(base: str, token: str, registered: list[tuple[str, str]],
                       unregistered: list[tuple[str, str]], *, warmup: int) -> tuple[list[float], list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:

        async def check(number: str, name: str) -> float:
            body = {"subject": {"kind": "person", "id_number": number, "name": name},
                    "business_type": "government_procurement"}
            started = time.perf_counter()
            response = await client.post("/v1/credit-checks", json=body)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 201 or response.json()["listed"]:
                raise SystemExit(f"unexpected answer {response.status_code}: {response.text[:200]}")
            return elapsed

        for i in range(warmup):  # connections, worker caches and the database's plans warm up
            await check(*registered[i % len(registered)])
            await check(*unregistered[i % len(unregistered)])
        known: list[float] = []
        unknown: list[float] = []
        for pair in zip(registered, unregistered, strict=True):
            order = [(0, pair[0]), (1, pair[1])]
            _rng.shuffle(order)
            for which, (number, name) in order:
                (known if which == 0 else unknown).append(await check(number, name))
    return known, unknown


def run(*, tries: int, workers: int, warmup: int) -> dict[str, object]:
    env = bench_settings(dict(os.environ))
    env["XINYI_REDIS_NAMESPACE"] = f"xinyi-check-timing-{secrets.token_hex(3)}"
    settings = Settings.from_env(env)
    token, registered, unregistered = asyncio.run(_prepare(settings, count=tries))
    port = _free_port()
    server = subprocess.Popen([XINYI, "serve", "--workers", str(workers), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/health/ready")
        known, unknown = asyncio.run(_time_checks(f"http://127.0.0.1:{port}", token, registered, unregistered,
                                                  warmup=warmup))
    finally:
        with contextlib.suppress(ProcessLookupError):
            _stop(server)
    return {"tries_each": tries, "workers": workers,
            "median_registered_ms": round(statistics.median(known), 2),
            "median_unregistered_ms": round(statistics.median(unknown), 2),
            "p_registered_slower": round(p_slower(known, unknown), 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tries", type=int, default=60, help="timed checks per kind of subject")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--warmup", type=int, default=10, help="untimed checks of each kind first")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = run(tries=args.tries, workers=args.workers, warmup=args.warmup)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.tries} checks each, interleaved, `xinyi serve --workers {args.workers}`")
    print(f"median registered:   {result['median_registered_ms']} ms")
    print(f"median unregistered: {result['median_unregistered_ms']} ms")
    print(f"P(registered slower): {result['p_registered_slower']}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        main()
