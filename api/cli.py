"""The `xinyi` command (click): serve, migrate, seed, up, admin, partner, scores, ledger, worker, simulate, keys,
bench, loadtest.

Every command imports what it needs in its body, so `xinyi --help` stays instant and no command pays for
another's imports. `bench` and `loadtest` hand their arguments, unparsed, to the load tests' own parsers
(`loadtests.bench.main`, `loadtests.runner.main`), imported only when they run: the load tests never import
this module (an import-linter contract), so there is no cycle.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from api import domains
from core import db
from core.settings import Settings, generate_secret

if TYPE_CHECKING:
    from demo import DemoCitizen, SeedReport

_DEMO_PERSONS = 1000
_DEMO_ENTERPRISES = 100


def _settings() -> Settings:
    return Settings.from_env()


async def _with_engine(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    engine = db.build_engine(settings)
    domains.bind_tables(engine)
    await db.open_engine(engine, settings)
    try:
        return await work(engine)
    finally:
        await db.close_engine(engine)


def _context(settings: Settings, engine: Any) -> Any:
    from api.context import build_context

    return build_context(settings, engine)


class _Group(click.Group):
    """Lists its commands in the order they are declared (as the argparse version did), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


# Command help is shown in full in `xinyi --help` (click would cut it at 45 characters), as argparse did.
def _command(group: click.Group, name: str, help_text: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    return group.command(name, help=help_text, short_help=help_text, **kwargs)


def _group(parent: click.Group, name: str, help_text: str) -> click.Group:
    group: click.Group = parent.group(name, cls=_Group, help=help_text, short_help=help_text)(lambda: None)
    return group


@click.group(name="xinyi", cls=_Group, help="City credit service API (信易+ / 信易贷)",
             context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    pass


def _server_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--workers", type=int, default=1)(function)
    function = click.option("--port", type=int, default=8000)(function)
    return click.option("--host", default="127.0.0.1")(function)


def _seed_options(persons: int, enterprises: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option("--seed", type=int, default=2026)(function)
        function = click.option("--enterprises", type=int, default=enterprises)(function)
        return click.option("--persons", type=int, default=persons)(function)
    return decorate


# ------------------------------------------------------------------ serve / migrate


@_command(cli, "serve", "serve the API with granian")
@_server_options
def serve_command(host: str, port: int, workers: int) -> None:
    from api.serving import serve

    _settings()  # refuse to start with unsafe settings before any worker spawns
    serve(host=host, port=port, workers=workers)


@_command(cli, "migrate", "apply database migrations")
def migrate_command() -> None:
    from api.migrations import migrate_async

    asyncio.run(migrate_async())
    print("migrations applied")


# ------------------------------------------------------------------ seed


async def _database_is_empty(settings: Settings) -> bool:
    from credit.tables import Person

    async def count(_: Any) -> int:
        return int(await Person.count())

    return int(await _with_engine(settings, count)) == 0


def _seed(settings: Settings, *, persons: int, enterprises: int, seed: int) -> SeedReport:
    from api.context import build_cipher
    from demo import seed_demo_city

    async def work(engine: Any) -> Any:
        return await seed_demo_city(persons=persons, enterprises=enterprises, seed=seed,
                                    cipher=build_cipher(settings), engine=engine)

    report: SeedReport = asyncio.run(_with_engine(settings, work))
    print(report.render())
    return report


@_command(cli, "seed", "seed a deterministic demo city")
@_seed_options(_DEMO_PERSONS, _DEMO_ENTERPRISES)
@click.option("--scale", type=click.Choice(["demo", "city"]), default="demo",
              help="city: 4 million persons and 250 thousand enterprises through parallel COPY (PostgreSQL)")
@click.option("--jobs", type=int, default=max(1, os.cpu_count() or 1), help="loader processes for --scale city")
def seed_command(persons: int, enterprises: int, seed: int, scale: str, jobs: int) -> None:
    settings = _settings()
    if scale == "city":
        _seed_city(settings, persons=persons, enterprises=enterprises, seed=seed, jobs=jobs)
        return
    _seed(settings, persons=persons, enterprises=enterprises, seed=seed)


def _seed_city(settings: Settings, *, persons: int, enterprises: int, seed: int, jobs: int) -> None:
    """4 million persons and 250 thousand enterprises (unless --persons/--enterprises say otherwise),
    loaded by several processes with indexes rebuilt afterwards (PostgreSQL only)."""
    from api.context import build_cipher
    from demo.city_scale import CITY_ENTERPRISES, CITY_PERSONS, seed_city

    if not settings.database_url:
        raise SystemExit("xinyi: --scale city needs PostgreSQL (set DATABASE_URL)")
    persons = persons if persons != _DEMO_PERSONS else CITY_PERSONS
    enterprises = enterprises if enterprises != _DEMO_ENTERPRISES else CITY_ENTERPRISES
    dsn = settings.database_url

    async def work(_: Any) -> Any:
        return await seed_city(dsn=dsn, cipher=build_cipher(settings), data_key=settings.data_key,
                               hash_key=settings.hash_key, persons=persons, enterprises=enterprises, seed=seed,
                               jobs=jobs)

    report = asyncio.run(_with_engine(settings, work))
    print(report.render())


# ------------------------------------------------------------------ up


def _demo_citizen(settings: Settings) -> DemoCitizen | None:
    from api.context import build_cipher
    from demo import demo_citizen

    async def work(_: Any) -> DemoCitizen | None:
        return await demo_citizen(cipher=build_cipher(settings))

    result: DemoCitizen | None = asyncio.run(_with_engine(settings, work))
    return result


@_command(cli, "up", "migrate, seed an empty database, and serve")
@_server_options
@_seed_options(2000, 200)
def up_command(*, host: str, port: int, workers: int, persons: int, enterprises: int, seed: int) -> None:
    from api.migrations import migrate_async
    from api.serving import serve
    from demo.tour import tour_exports

    settings = _settings()
    asyncio.run(migrate_async())
    report: SeedReport | None = None
    if asyncio.run(_database_is_empty(settings)):
        report = _seed(settings, persons=persons, enterprises=enterprises, seed=seed)
    else:
        print("database already seeded; skipping the demo seed (credentials were shown when it was seeded)")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - mapping, not binding
    api_url = f"http://{shown_host}:{port}"
    if settings.env != "production":
        # Synthetic demo data: a registry person of the demo city, printed so the README tour can be walked. Only
        # from a registry this run seeded, or the embedded SQLite file (the demo's own): a PostgreSQL database
        # seeded otherwise may hold real people.
        seeded_now = report is not None and report.skipped is None
        citizen = _demo_citizen(settings) if seeded_now or not settings.database_url else None
        print("\nThe README tour: in a second shell at the repository root, run `. .venv/bin/activate` and paste")
        print("\n".join(tour_exports(api_url=api_url, report=report, citizen=citizen)))
        if citizen is not None:
            print(f"(the citizen is {citizen.name}, legal representative of {citizen.enterprise_name})")
        if report is None:
            print("(secrets and passwords are shown only when the database is first seeded: "
                  "`xinyi partner rotate-secret` and `xinyi admin create` issue new ones)")
        print()
    print(f"docs: {api_url}/schema/swagger  (OpenAPI: /schema/openapi.json)")
    serve(host=host, port=port, workers=workers)


# ------------------------------------------------------------------ admin


admin = _group(cli, "admin", "operator accounts")


@_command(admin, "create", "create an operator account")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(["officer", "partner_admin", "auditor"]))
@click.option("--display-name")
@click.option("--password", help="default: prompt, $XINYI_ADMIN_PASSWORD, or generate")
def admin_create(username: str, role: str, display_name: str | None, password: str | None) -> None:
    from accounts.operators import create_operator

    password = password or os.environ.get("XINYI_ADMIN_PASSWORD")
    generated = False
    if not password:
        if sys.stdin.isatty():
            password = getpass.getpass("password (empty: generate one): ")
        if not password:
            password, generated = secrets.token_urlsafe(15), True
    chosen = password

    async def work(_: Any) -> str:
        return await create_operator(username=username, password=chosen, role=role, display_name=display_name)

    public_id = asyncio.run(_with_engine(_settings(), work))
    print(f"operator {username} ({role}) created: {public_id}")
    if generated:
        print(f"password (shown once): {password}")


# ------------------------------------------------------------------ partner


partner = _group(cli, "partner", "partners")


@_command(partner, "create", "register a partner and print its credentials once")
@click.option("--name", required=True)
@click.option("--kind", required=True, type=click.Choice(["bank", "merchant", "data_source", "government",
                                                          "city_peer"]))
@click.option("--scopes", help="comma-separated; default: all the kind may hold")
@click.option("--scenario", help="merchants: travel, transit, rental, medical, lodging, reading")
@click.option("--jwks-file", help="JWKS with the partner's public keys (private_key_jwt)")
@click.option("--no-secret", is_flag=True, help="private_key_jwt only")
@click.option("--issuer", help="city_peer: the `iss` of its credit passports (verified with --jwks-file keys)")
def partner_create(*, name: str, kind: str, scopes: str | None, scenario: str | None, jwks_file: str | None,
                   no_secret: bool, issuer: str | None) -> None:
    from partners.services import create_partner

    jwks = json.loads(Path(jwks_file).read_text())["keys"] if jwks_file else None
    scope_list = scopes.split(",") if scopes else None

    async def work(_: Any) -> Any:
        return await create_partner(name=name, kind=kind, scopes=scope_list, jwks=jwks, with_secret=not no_secret,
                                    scenario=scenario, issuer=issuer)

    issued = asyncio.run(_with_engine(_settings(), work))
    print(f"client_id:     {issued.client_id}")
    if issued.client_secret:
        print(f"client_secret: {issued.client_secret}   (shown once; store it now)")


@_command(partner, "rotate-secret", "issue a new client secret (the old one works for the overlap)")
@click.option("--client-id", required=True)
@click.option("--overlap-hours", type=int, default=24)
def partner_rotate_secret(client_id: str, overlap_hours: int) -> None:
    from datetime import timedelta

    from partners.services import rotate_secret

    async def work(_: Any) -> Any:
        return await rotate_secret(client_id=client_id, overlap=timedelta(hours=overlap_hours))

    issued = asyncio.run(_with_engine(_settings(), work))
    print(f"client_secret: {issued.client_secret}   (shown once; the old secret works for {overlap_hours} h)")


@_command(partner, "status", "suspend or reactivate a partner (takes effect at once)")
@click.option("--client-id", required=True)
@click.argument("status", type=click.Choice(["active", "suspended"]))
def partner_status(client_id: str, status: str) -> None:
    """Suspend or reactivate a partner; suspension reaches every worker through the shared store."""
    from partners.services import set_partner_status

    settings = _settings()

    async def work(engine: Any) -> Any:
        ctx = _context(settings, engine)
        try:
            return await set_partner_status(store=ctx.store, client_id=client_id, status=status)
        finally:
            await ctx.close()

    updated = asyncio.run(_with_engine(settings, work))
    print(f"{updated.client_id}: {updated.status}")


# ------------------------------------------------------------------ scores


scores = _group(cli, "scores", "credit scores")


@_command(scores, "recompute", "recompute everyone's score (set-based, in batches)")
@click.option("--batch-size", type=int, default=5000)
@click.option("--jobs", type=int, default=1, help="processes, each recomputing a range of persons")
def scores_recompute(batch_size: int, jobs: int) -> None:
    from credit.scores import recompute_all

    settings = _settings()
    started = time.perf_counter()
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        from datetime import UTC, datetime
        from multiprocessing import get_context

        from credit.scores import person_id_ranges

        ranges = asyncio.run(_with_engine(settings, lambda _: person_id_ranges(jobs)))
        as_of = datetime.now(UTC)  # one as-of for the whole population
        with ProcessPoolExecutor(max_workers=len(ranges) or 1, mp_context=get_context("spawn")) as pool:
            reports = list(pool.map(_recompute_range, [(r, batch_size, as_of) for r in ranges]))
        persons, records = sum(r.persons for r in reports), sum(r.records for r in reports)
    else:
        async def work(engine: Any) -> Any:
            ctx = _context(settings, engine)
            try:
                return await recompute_all(store=ctx.store, batch_size=batch_size)
            finally:
                await ctx.close()

        report = asyncio.run(_with_engine(settings, work))
        persons, records = report.persons, report.records
    print(f"recomputed {persons:,} persons from {records:,} records in {time.perf_counter() - started:.1f} s "
          f"({jobs} job{'s' if jobs > 1 else ''})")


def _recompute_range(task: tuple[tuple[int, int], int, Any]) -> Any:
    """One process's share of `xinyi scores recompute --jobs N` (runs in a spawned process)."""
    from credit.scores import recompute_all

    id_range, batch_size, as_of = task
    settings = _settings()

    async def work(engine: Any) -> Any:
        ctx = _context(settings, engine)
        try:
            return await recompute_all(store=ctx.store, batch_size=batch_size, id_range=id_range, as_of=as_of)
        finally:
            await ctx.close()

    return asyncio.run(_with_engine(settings, work))


# ------------------------------------------------------------------ ledger / worker


ledger = _group(cli, "ledger", "the access ledger")


@_command(ledger, "verify", "check the whole hash chain and every signed checkpoint")
def ledger_verify() -> None:
    from api.context import build_tokens
    from credit.ledger import CHECKPOINT_TYP, verify_chain

    settings = _settings()
    tokens = build_tokens(settings)

    async def work(_: Any) -> Any:
        return await verify_chain(verify_checkpoint=lambda s: tokens.verify_document(s, typ=CHECKPOINT_TYP))

    report = asyncio.run(_with_engine(settings, work))
    if report.ok:
        print(f"ledger OK: {report.entries:,} entries, {report.checkpoints} checkpoints verified")
        return
    print(f"ledger BROKEN at seq {report.first_bad_seq}: {report.problem} "
          f"({report.entries:,} entries verified before it)")
    raise SystemExit(1)


@_command(ledger, "checkpoint", "sign the current chain head")
def ledger_checkpoint() -> None:
    from api.context import build_tokens
    from credit.ledger import CHECKPOINT_TYP, create_checkpoint

    settings = _settings()
    tokens = build_tokens(settings)

    async def work(_: Any) -> Any:
        return await create_checkpoint(sign=lambda c: tokens.sign_document(c, typ=CHECKPOINT_TYP))

    checkpoint = asyncio.run(_with_engine(settings, work))
    print(f"checkpoint at seq {checkpoint['seq']}" if checkpoint else "ledger is empty; nothing to sign")


@_command(cli, "worker", "run background jobs (expiries, ledger checkpoints)")
@click.option("--once", is_flag=True, help="one pass, then exit")
def worker_command(once: bool) -> None:
    """Background jobs for production (where the app itself runs none)."""
    from api.background import run_forever, run_once

    settings = _settings()

    async def work(engine: Any) -> Any:
        ctx = _context(settings, engine)
        try:
            if once:
                print(await run_once(ctx))
            else:
                await run_forever(ctx)
        finally:
            await ctx.close()

    asyncio.run(_with_engine(settings, work))


# ------------------------------------------------------------------ simulate


simulate = _group(cli, "simulate", "simulated partners on loopback (demo, manual tests)")


@_command(simulate, "bank", "a bank receiving signed webhooks at http://HOST:PORT/webhooks")
@click.option("--api", "api_url", default="http://127.0.0.1:8000", help="this API's base URL")
@click.option("--client-id")
@click.option("--client-secret", help="default: $XINYI_SIM_CLIENT_SECRET")
@click.option("--webhook-secret", help="the whsec_ signing secret; default: $XINYI_SIM_WEBHOOK_SECRET")
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=9001)
def simulate_bank(*, api_url: str, client_id: str | None, client_secret: str | None,
                  webhook_secret: str | None, host: str, port: int) -> None:
    """A simulated bank receiving (and verifying) this API's webhooks on loopback."""
    from partners.simulate import serve_bank

    webhook_secret = webhook_secret or os.environ.get("XINYI_SIM_WEBHOOK_SECRET")
    if not webhook_secret:
        raise SystemExit("xinyi: --webhook-secret (or $XINYI_SIM_WEBHOOK_SECRET) is required")
    serve_bank(webhook_secret=webhook_secret, host=host, port=port, api=api_url, client_id=client_id,
               client_secret=client_secret or os.environ.get("XINYI_SIM_CLIENT_SECRET"))


@_command(simulate, "city", "a peer city: JWKS and signed credit passports")
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=9002)
@click.option("--issuer", help="default: http://HOST:PORT")
def simulate_city(host: str, port: int, issuer: str | None) -> None:
    """A simulated peer city with its own keys (JWKS and signed credit passports)."""
    from partners.simulate import serve_city

    serve_city(host=host, port=port, issuer=issuer)


@_command(simulate, "wechat", "WeChat's access-token and subscribe-message API, for citizen notices")
@click.option("--appid", default="wx_demo_xinyi")
@click.option("--secret", help="default: $XINYI_SIM_WECHAT_SECRET, or a fresh one (printed)")
@click.option("--fail-next", type=int, default=0, help="refuse this many sends first (retries, by hand)")
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=9003)
def simulate_wechat(*, appid: str, secret: str | None, fail_next: int, host: str, port: int) -> None:
    """A simulated WeChat API: point the service at it with XINYI_WECHAT_API_BASE_URL=http://HOST:PORT and the same
    XINYI_WECHAT_APPID and XINYI_WECHAT_SECRET (and any XINYI_WECHAT_NOTICE_TEMPLATE_ID)."""
    from partners.simulate import serve_wechat

    secret = secret or os.environ.get("XINYI_SIM_WECHAT_SECRET")
    if not secret:
        secret = generate_secret()
        print(f"XINYI_WECHAT_SECRET={secret}")
    serve_wechat(appid=appid, secret=secret, host=host, port=port, fail_next=fail_next)


# ------------------------------------------------------------------ keys


@_command(cli, "keys", "print fresh production secrets")
def keys_command() -> None:
    """Print fresh production secrets as environment assignments."""
    for var in ("XINYI_JWT_PRIVATE_KEY", "XINYI_DATA_KEY", "XINYI_HASH_KEY", "XINYI_CONSENT_KEY"):
        print(f"{var}={generate_secret()}")


# ------------------------------------------------------------------ bench / loadtest

# Their arguments (`--help` included) go unparsed to the load tests' own argparse parsers.
_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@_command(cli, "bench", "hot paths as ratios of a bare hello endpoint (xinyi bench --quick --json)",
          context_settings=_PASS_THROUGH)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def bench_command(arguments: tuple[str, ...]) -> None:
    from loadtests.bench import main as bench_main

    bench_main(list(arguments))


@_command(cli, "loadtest", "Locust suite against a production-configured server, with a report "
                           "(xinyi loadtest --rate 300 --duration 60)", context_settings=_PASS_THROUGH)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def loadtest_command(arguments: tuple[str, ...]) -> None:
    from loadtests.runner import main as loadtest_main

    loadtest_main(list(arguments))


def main(argv: Sequence[str] | None = None) -> None:
    """Run `xinyi` (the console script); a configuration or domain error ends it with `xinyi: <message>`."""
    try:
        cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="xinyi")
    except Exception as exc:
        from core.errors import ConfigurationError, DomainError

        if isinstance(exc, ConfigurationError | DomainError):
            raise SystemExit(f"xinyi: {exc}") from None
        raise


if __name__ == "__main__":
    main()
