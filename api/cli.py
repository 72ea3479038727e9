"""The `xinyi` command: serve, migrate, seed, up, admin create, partner create, keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api import domains
from core import db
from core.settings import Settings, generate_secret

if TYPE_CHECKING:
    from api.demo import DemoCitizen, SeedReport

PICCOLO_CONF = "api.piccolo_conf"
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


# ------------------------------------------------------------------ migrate


async def migrate_async() -> None:
    """Apply every pending Piccolo migration of every domain app, in dependency order (after carrying the
    applied migrations of renamed apps over to their new names)."""
    os.environ.setdefault("PICCOLO_CONF", PICCOLO_CONF)
    from piccolo.apps.migrations.commands.forwards import run_forwards

    for old, new in domains.RENAMED_APPS:
        await db.rename_migration_app(old=old, new=new)
    result = await run_forwards(app_name="all", migration_id="all")
    if not result.success:
        raise SystemExit(f"migration failed: {result.message}")


def cmd_migrate(_: argparse.Namespace) -> None:
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
    from api.demo import seed_demo_city

    async def work(engine: Any) -> Any:
        return await seed_demo_city(persons=persons, enterprises=enterprises, seed=seed,
                                    cipher=build_cipher(settings), engine=engine)

    report: SeedReport = asyncio.run(_with_engine(settings, work))
    print(report.render())
    return report


def cmd_seed(args: argparse.Namespace) -> None:
    settings = _settings()
    if args.scale == "city":
        _seed_city(settings, args)
        return
    _seed(settings, persons=args.persons, enterprises=args.enterprises, seed=args.seed)


def _seed_city(settings: Settings, args: argparse.Namespace) -> None:
    """4 million persons and 250 thousand enterprises (unless --persons/--enterprises say otherwise),
    loaded by several processes with indexes rebuilt afterwards (PostgreSQL only)."""
    from api.city_seed import CITY_ENTERPRISES, CITY_PERSONS, seed_city
    from api.context import build_cipher

    if not settings.database_url:
        raise SystemExit("xinyi: --scale city needs PostgreSQL (set DATABASE_URL)")
    persons = args.persons if args.persons != _DEMO_PERSONS else CITY_PERSONS
    enterprises = args.enterprises if args.enterprises != _DEMO_ENTERPRISES else CITY_ENTERPRISES
    dsn = settings.database_url

    async def work(_: Any) -> Any:
        return await seed_city(dsn=dsn, cipher=build_cipher(settings), data_key=settings.data_key,
                               hash_key=settings.hash_key, persons=persons, enterprises=enterprises, seed=args.seed,
                               jobs=args.jobs)

    report = asyncio.run(_with_engine(settings, work))
    print(report.render())


# ------------------------------------------------------------------ serve / up


# Named here, not imported from api.ops: importing that module would import prometheus_client in this process
# before the variable is set (see `shared_metrics_directory`).
_PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_metrics_directory() -> Iterator[Path]:
    """A fresh, private directory (mode 0700, empty) for prometheus_client's multiprocess mode, named in
    `PROMETHEUS_MULTIPROC_DIR` for the workers this process starts, and removed with everything in it after.

    Each worker writes its counts there and `/metrics` sums them all. It must be set before a worker imports
    prometheus_client (which chooses in-memory or file-backed values at import), so this process never imports
    it. A directory of its own per server: files left by another server, or an earlier run, would be counted.
    """
    path = Path(tempfile.mkdtemp(prefix="xinyi-metrics-"))  # under $TMPDIR
    previous = os.environ.get(_PROMETHEUS_MULTIPROC_DIR)
    os.environ[_PROMETHEUS_MULTIPROC_DIR] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(_PROMETHEUS_MULTIPROC_DIR, None)
        else:
            os.environ[_PROMETHEUS_MULTIPROC_DIR] = previous
        shutil.rmtree(path, ignore_errors=True)


def serve(*, host: str, port: int, workers: int) -> None:
    """Serve the app with granian (ASGI, app factory: settings are read in each worker). Several workers share
    their Prometheus counts through a directory of their own; one worker keeps them in memory."""
    from granian.constants import Interfaces
    from granian.server import Server

    server = Server(
        "api.app:create_app", address=host, port=port, workers=workers, interface=Interfaces.ASGI,
        factory=True, log_access=False, backlog=2048,
    )
    with shared_metrics_directory() if workers > 1 else contextlib.nullcontext():
        server.serve()


def cmd_serve(args: argparse.Namespace) -> None:
    _settings()  # refuse to start with unsafe settings before any worker spawns
    serve(host=args.host, port=args.port, workers=args.workers)


# The demo partners whose credentials the README tour uses, by (kind, name) → shell variable prefix.
_TOUR_PARTNERS = {("bank", "嘉兴银行"): "BANK", ("data_source", "嘉兴市中级人民法院"): "SOURCE",
                  ("merchant", "嘉兴南湖旅游区"): "MERCHANT"}
_TOUR_OPERATORS = {"officer": "OFFICER", "partner_admin": "PARTNER_ADMIN"}


def tour_exports(*, api_url: str, report: SeedReport | None, citizen: DemoCitizen | None) -> list[str]:
    """`export NAME=value` lines for the README tour: the API's address, the demo partners' and operators'
    credentials (secrets only when this run issued them) and a demo citizen to log in as and bind."""
    values: dict[str, str] = {"API": api_url}
    for partner in report.partners if report else []:
        prefix = _TOUR_PARTNERS.get((str(partner["kind"]), str(partner["name"])))
        if prefix:
            values[f"{prefix}_ID"] = str(partner["client_id"])
            if partner["client_secret"]:
                values[f"{prefix}_SECRET"] = partner["client_secret"]
    for op in report.operators if report else []:
        prefix = _TOUR_OPERATORS.get(str(op["role"]))
        if prefix:
            values[f"{prefix}_USER"] = str(op["username"])
            if op["password"]:
                values[f"{prefix}_PASSWORD"] = op["password"]
    if citizen is not None:
        values.update(CITIZEN_PHONE=citizen.phone, CITIZEN_NAME=citizen.name, CITIZEN_ID_NUMBER=citizen.id_number,
                      USCC=citizen.enterprise_uscc)
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def _demo_citizen(settings: Settings) -> DemoCitizen | None:
    from api.context import build_cipher
    from api.demo import demo_citizen

    async def work(_: Any) -> DemoCitizen | None:
        return await demo_citizen(cipher=build_cipher(settings))

    result: DemoCitizen | None = asyncio.run(_with_engine(settings, work))
    return result


def cmd_up(args: argparse.Namespace) -> None:
    settings = _settings()
    asyncio.run(migrate_async())
    report: SeedReport | None = None
    if asyncio.run(_database_is_empty(settings)):
        report = _seed(settings, persons=args.persons, enterprises=args.enterprises, seed=args.seed)
    else:
        print("database already seeded; skipping the demo seed (credentials were shown when it was seeded)")
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # noqa: S104 - mapping, not binding
    api_url = f"http://{host}:{args.port}"
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
    serve(host=args.host, port=args.port, workers=args.workers)


# ------------------------------------------------------------------ admin / partner


def cmd_admin_create(args: argparse.Namespace) -> None:
    from accounts.operators import create_operator

    password = args.password or os.environ.get("XINYI_ADMIN_PASSWORD")
    generated = False
    if not password:
        if sys.stdin.isatty():
            password = getpass.getpass("password (empty: generate one): ")
        if not password:
            password, generated = secrets.token_urlsafe(15), True

    async def work(_: Any) -> str:
        return await create_operator(username=args.username, password=password, role=args.role,
                                     display_name=args.display_name)

    public_id = asyncio.run(_with_engine(_settings(), work))
    print(f"operator {args.username} ({args.role}) created: {public_id}")
    if generated:
        print(f"password (shown once): {password}")


def cmd_partner_rotate_secret(args: argparse.Namespace) -> None:
    from datetime import timedelta

    from partners.services import rotate_secret

    async def work(_: Any) -> Any:
        return await rotate_secret(client_id=args.client_id, overlap=timedelta(hours=args.overlap_hours))

    issued = asyncio.run(_with_engine(_settings(), work))
    print(f"client_secret: {issued.client_secret}   (shown once; the old secret works for {args.overlap_hours} h)")


def cmd_partner_status(args: argparse.Namespace) -> None:
    """Suspend or reactivate a partner; suspension reaches every worker through the shared store."""
    from partners.services import set_partner_status

    settings = _settings()

    async def work(engine: Any) -> Any:
        ctx = _context(settings, engine)
        try:
            return await set_partner_status(store=ctx.store, client_id=args.client_id, status=args.status)
        finally:
            await ctx.close()

    partner = asyncio.run(_with_engine(settings, work))
    print(f"{partner.client_id}: {partner.status}")


def cmd_partner_create(args: argparse.Namespace) -> None:
    from partners.services import create_partner

    jwks = json.loads(Path(args.jwks_file).read_text())["keys"] if args.jwks_file else None
    scopes = args.scopes.split(",") if args.scopes else None

    async def work(_: Any) -> Any:
        return await create_partner(name=args.name, kind=args.kind, scopes=scopes, jwks=jwks,
                                    with_secret=not args.no_secret, scenario=args.scenario, issuer=args.issuer)

    issued = asyncio.run(_with_engine(_settings(), work))
    print(f"client_id:     {issued.client_id}")
    if issued.client_secret:
        print(f"client_secret: {issued.client_secret}   (shown once; store it now)")


def cmd_keys(_: argparse.Namespace) -> None:
    """Print fresh production secrets as environment assignments."""
    for var in ("XINYI_JWT_PRIVATE_KEY", "XINYI_DATA_KEY", "XINYI_HASH_KEY", "XINYI_CONSENT_KEY"):
        print(f"{var}={generate_secret()}")


# ------------------------------------------------------------------ scores / ledger / worker


def _context(settings: Settings, engine: Any) -> Any:
    from api.context import build_context

    return build_context(settings, engine)


def cmd_scores_recompute(args: argparse.Namespace) -> None:
    from credit.scores import recompute_all

    settings = _settings()
    started = time.perf_counter()
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        from datetime import UTC, datetime
        from multiprocessing import get_context

        from credit.scores import person_id_ranges

        ranges = asyncio.run(_with_engine(settings, lambda _: person_id_ranges(args.jobs)))
        as_of = datetime.now(UTC)  # one as-of for the whole population
        with ProcessPoolExecutor(max_workers=len(ranges) or 1, mp_context=get_context("spawn")) as pool:
            reports = list(pool.map(_recompute_range, [(r, args.batch_size, as_of) for r in ranges]))
        persons, records = sum(r.persons for r in reports), sum(r.records for r in reports)
    else:
        async def work(engine: Any) -> Any:
            ctx = _context(settings, engine)
            try:
                return await recompute_all(store=ctx.store, batch_size=args.batch_size)
            finally:
                await ctx.close()

        report = asyncio.run(_with_engine(settings, work))
        persons, records = report.persons, report.records
    print(f"recomputed {persons:,} persons from {records:,} records in {time.perf_counter() - started:.1f} s "
          f"({args.jobs} job{'s' if args.jobs > 1 else ''})")


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


def cmd_ledger_verify(_: argparse.Namespace) -> None:
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


def cmd_ledger_checkpoint(_: argparse.Namespace) -> None:
    from api.context import build_tokens
    from credit.ledger import CHECKPOINT_TYP, create_checkpoint

    settings = _settings()
    tokens = build_tokens(settings)

    async def work(_: Any) -> Any:
        return await create_checkpoint(sign=lambda c: tokens.sign_document(c, typ=CHECKPOINT_TYP))

    checkpoint = asyncio.run(_with_engine(settings, work))
    print(f"checkpoint at seq {checkpoint['seq']}" if checkpoint else "ledger is empty; nothing to sign")


def cmd_worker(args: argparse.Namespace) -> None:
    """Background jobs for production (where the app itself runs none)."""
    from api.background import run_forever, run_once

    settings = _settings()

    async def work(engine: Any) -> Any:
        ctx = _context(settings, engine)
        try:
            if args.once:
                print(await run_once(ctx))
            else:
                await run_forever(ctx)
        finally:
            await ctx.close()

    asyncio.run(_with_engine(settings, work))


# ------------------------------------------------------------------ simulate


def cmd_simulate_bank(args: argparse.Namespace) -> None:
    """A simulated bank receiving (and verifying) this API's webhooks on loopback."""
    from partners.simulate import serve_bank

    webhook_secret = args.webhook_secret or os.environ.get("XINYI_SIM_WEBHOOK_SECRET")
    if not webhook_secret:
        raise SystemExit("xinyi: --webhook-secret (or $XINYI_SIM_WEBHOOK_SECRET) is required")
    serve_bank(webhook_secret=webhook_secret, host=args.host, port=args.port, api=args.api,
               client_id=args.client_id,
               client_secret=args.client_secret or os.environ.get("XINYI_SIM_CLIENT_SECRET"))


def cmd_simulate_city(args: argparse.Namespace) -> None:
    """A simulated peer city with its own keys (JWKS and signed credit passports)."""
    from partners.simulate import serve_city

    serve_city(host=args.host, port=args.port, issuer=args.issuer)


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xinyi", description="City credit service API (信易+ / 信易贷)")
    sub = parser.add_subparsers(dest="command", required=True)

    def server_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--workers", type=int, default=1)

    def seed_args(p: argparse.ArgumentParser, persons: int, enterprises: int) -> None:
        p.add_argument("--persons", type=int, default=persons)
        p.add_argument("--enterprises", type=int, default=enterprises)
        p.add_argument("--seed", type=int, default=2026)

    p = sub.add_parser("serve", help="serve the API with granian")
    server_args(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("seed", help="seed a deterministic demo city")
    seed_args(p, _DEMO_PERSONS, _DEMO_ENTERPRISES)
    p.add_argument("--scale", choices=("demo", "city"), default="demo",
                   help="city: 4 million persons and 250 thousand enterprises through parallel COPY (PostgreSQL)")
    p.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1), help="loader processes for --scale city")
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("up", help="migrate, seed an empty database, and serve")
    server_args(p)
    seed_args(p, 2000, 200)
    p.set_defaults(func=cmd_up)

    admin = sub.add_parser("admin", help="operator accounts").add_subparsers(dest="admin_command", required=True)
    p = admin.add_parser("create", help="create an operator account")
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True, choices=["officer", "partner_admin", "auditor"])
    p.add_argument("--display-name")
    p.add_argument("--password", help="default: prompt, $XINYI_ADMIN_PASSWORD, or generate")
    p.set_defaults(func=cmd_admin_create)

    partner = sub.add_parser("partner", help="partners").add_subparsers(dest="partner_command", required=True)
    p = partner.add_parser("create", help="register a partner and print its credentials once")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", required=True, choices=["bank", "merchant", "data_source", "government", "city_peer"])
    p.add_argument("--scopes", help="comma-separated; default: all the kind may hold")
    p.add_argument("--scenario", help="merchants: travel, transit, rental, medical, lodging, reading")
    p.add_argument("--jwks-file", help="JWKS with the partner's public keys (private_key_jwt)")
    p.add_argument("--no-secret", action="store_true", help="private_key_jwt only")
    p.add_argument("--issuer", help="city_peer: the `iss` of its credit passports (verified with --jwks-file keys)")
    p.set_defaults(func=cmd_partner_create)
    p = partner.add_parser("rotate-secret", help="issue a new client secret (the old one works for the overlap)")
    p.add_argument("--client-id", required=True)
    p.add_argument("--overlap-hours", type=int, default=24)
    p.set_defaults(func=cmd_partner_rotate_secret)
    p = partner.add_parser("status", help="suspend or reactivate a partner (takes effect at once)")
    p.add_argument("--client-id", required=True)
    p.add_argument("status", choices=["active", "suspended"])
    p.set_defaults(func=cmd_partner_status)

    scores = sub.add_parser("scores", help="credit scores").add_subparsers(dest="scores_command", required=True)
    p = scores.add_parser("recompute", help="recompute everyone's score (set-based, in batches)")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--jobs", type=int, default=1, help="processes, each recomputing a range of persons")
    p.set_defaults(func=cmd_scores_recompute)

    ledger = sub.add_parser("ledger", help="the access ledger").add_subparsers(dest="ledger_command", required=True)
    p = ledger.add_parser("verify", help="check the whole hash chain and every signed checkpoint")
    p.set_defaults(func=cmd_ledger_verify)
    p = ledger.add_parser("checkpoint", help="sign the current chain head")
    p.set_defaults(func=cmd_ledger_checkpoint)

    p = sub.add_parser("worker", help="run background jobs (expiries, ledger checkpoints)")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.set_defaults(func=cmd_worker)

    simulate = sub.add_parser("simulate", help="simulated partners on loopback (demo, manual tests)")
    sims = simulate.add_subparsers(dest="simulate_command", required=True)
    p = sims.add_parser("bank", help="a bank receiving signed webhooks at http://HOST:PORT/webhooks")
    p.add_argument("--api", default="http://127.0.0.1:8000", help="this API's base URL")
    p.add_argument("--client-id")
    p.add_argument("--client-secret", help="default: $XINYI_SIM_CLIENT_SECRET")
    p.add_argument("--webhook-secret", help="the whsec_ signing secret; default: $XINYI_SIM_WEBHOOK_SECRET")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9001)
    p.set_defaults(func=cmd_simulate_bank)
    p = sims.add_parser("city", help="a peer city: JWKS and signed credit passports")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9002)
    p.add_argument("--issuer", help="default: http://HOST:PORT")
    p.set_defaults(func=cmd_simulate_city)

    p = sub.add_parser("keys", help="print fresh production secrets")
    p.set_defaults(func=cmd_keys)

    # Listed for --help only: main() hands `xinyi bench ...` to the benchmark's own parser.
    sub.add_parser("bench", help="hot paths as ratios of a bare hello endpoint (xinyi bench --quick --json)")
    # Likewise `xinyi loadtest ...` goes to the load-test runner's own parser.
    sub.add_parser("loadtest", help="Locust suite against a production-configured server, with a report "
                                    "(xinyi loadtest --rate 300 --duration 60)")
    return parser


def cmd_bench(argv: list[str]) -> None:
    from loadtests.bench import main as bench_main

    bench_main(argv)


def cmd_loadtest(argv: list[str]) -> None:
    from loadtests.runner import main as loadtest_main

    loadtest_main(argv)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        cmd_bench(arguments[1:])
        return
    if arguments[:1] == ["loadtest"]:
        cmd_loadtest(arguments[1:])
        return
    args = build_parser().parse_args(arguments)
    try:
        args.func(args)
    except Exception as exc:
        from core.errors import ConfigurationError, DomainError

        if isinstance(exc, ConfigurationError | DomainError):
            raise SystemExit(f"xinyi: {exc}") from None
        raise


if __name__ == "__main__":
    main()
