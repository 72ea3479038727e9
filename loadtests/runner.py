"""`xinyi loadtest`: the Locust suite against a production-configured server, with a report folder.

    xinyi loadtest --rate 300 --duration 60                 # a minute at 300 req/s, 2 server workers
    xinyi loadtest --rate 1000 --duration 600               # the soak of DESIGN §6

Steps: use `DATABASE_URL` / `REDIS_URL` (default: the local PostgreSQL database `xinyi_loadtest`, created
if missing, and the local Redis under the namespace `xinyi-loadtest`); migrate; seed a demo city into an
empty registry; build the fixtures (`loadtests.fixtures`); start the server as production would run it
(`xinyi serve --workers N`: granian, XINYI_ENV=production with real secrets, the http SMS adapter pointed at a
gateway that is never called, no background jobs in the app); run Locust headless (a master and
`--locust-workers` worker processes) for the ramp-up plus the duration; stop everything; and write the report
folder (`loadtests.report`): Locust's CSVs and HTML, `summary.json`, `summary.md`, and the server's and
Locust's logs.

Secrets: production refuses placeholders, and the registry's id numbers are encrypted under the data key,
so a database seeded under one set of keys is only usable with the same keys. The runner generates fresh
secrets when it seeds a database and keeps them (mode 0600) in its state folder
(`~/.local/state/xinyi/loadtest/`, one file per database) for later runs; keys given in the environment win.
`--reset-db` drops and recreates a load-test database (its name must contain "loadtest").

Ctrl-C (or SIGTERM) stops the server and every Locust process before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from core.errors import ConfigurationError
from core.settings import Settings, generate_secret
from loadtests import fixtures as fx
from loadtests import report
from loadtests.bench import _free_port, prepare_database

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/xinyi_loadtest"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_NAMESPACE = "xinyi-loadtest"
SECRET_VARS = ("XINYI_JWT_PRIVATE_KEY", "XINYI_DATA_KEY", "XINYI_HASH_KEY", "XINYI_CONSENT_KEY")
# Production needs an SMS gateway; nothing in the suite sends a code. Port 9 (discard) is never listened on.
UNUSED_SMS_GATEWAY = "http://127.0.0.1:9/sms-gateway-not-used-by-the-load-test"
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _say(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ database, keys, settings


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "xinyi" / "loadtest"


def _keys_file(state_dir: Path, database_url: str) -> Path:
    parts = urlsplit(database_url)
    return state_dir / f"{parts.hostname}_{parts.port or 5432}_{_database_name(database_url)}.json"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _secrets(env: dict[str, str], *, keys_file: Path, fresh: bool) -> tuple[dict[str, str], str]:
    """The production secrets and where they came from: the environment, the kept file, or fresh ones."""
    if all(env.get(var) for var in SECRET_VARS):
        return {var: env[var] for var in SECRET_VARS}, "environment"
    if not fresh and keys_file.exists():
        return json.loads(keys_file.read_text()), f"kept ({keys_file})"
    # Written to `keys_file` by the caller once the database is known to hold nothing under other keys.
    return {var: generate_secret() for var in SECRET_VARS}, "generated"


def production_env(env: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """The environment of a production deployment (Settings refuses anything unsafe)."""
    return {**env, **secrets,
            "XINYI_ENV": "production",
            "XINYI_SMS_ADAPTER": "http",
            "XINYI_SMS_GATEWAY_URL": UNUSED_SMS_GATEWAY,
            "XINYI_BACKGROUND_IN_APP": "0",  # production runs `xinyi worker` beside the API
            "XINYI_LOG_LEVEL": env.get("XINYI_LOG_LEVEL", "WARNING")}


# ------------------------------------------------------------------ processes


@dataclass
class _Children:
    """Every process the run started (each in its own session), stopped together however the run ends."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("ab")
        self.logs.append(handle)
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for handle in self.logs:
            handle.close()


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM interrupt the run and the `finally` blocks stop every child. SIGINT is set
    explicitly: a runner started in the background by a shell inherits it ignored."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_ready(url: str, process: subprocess.Popen[bytes], *, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited while starting: see server.log")
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the server did not become ready at {url}")


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree = _children_of()
    found: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += tree.get(child, [])
    return sorted(found)


@dataclass
class _Sample:
    cpu_s: float
    wait_s: float  # time its threads were runnable but waited for a CPU (contention)
    rss_mb: float
    peak_rss_mb: float


def _schedstat(pid: int) -> tuple[float, float]:
    """Seconds on a CPU and seconds waiting for one, summed over the process's threads."""
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(OSError, ValueError, IndexError):
            fields = (task / "schedstat").read_text().split()
            run += int(fields[0])
            wait += int(fields[1])
    return run / 1e9, wait / 1e9


def _sample(pid: int) -> _Sample | None:
    """CPU seconds, resident and peak resident memory of `pid` (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    memory = {k: float(v.split()[0]) / 1024 for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(.+)$", status, re.M)}
    if "VmRSS" not in memory:
        return None  # exited, not yet reaped (a zombie has no memory to report)
    try:
        run, wait = _schedstat(pid)
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3 (state).
    cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return _Sample(cpu_s=run or cpu, wait_s=wait, rss_mb=round(memory.get("VmRSS", 0), 1),
                   peak_rss_mb=round(memory.get("VmHWM", 0), 1))


def _is_granian_worker(pid: int) -> bool:
    """Granian's workers are spawned Python processes; multiprocessing's resource tracker is not one."""
    command = _cmdline(pid)
    return bool(command) and "resource_tracker" not in command


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


@dataclass
class _Watch:
    """Samples processes during the run: CPU over the run, memory at the end and at its peak. Besides the
    processes the run started it finds the PostgreSQL backends serving the database and the Redis server,
    and the machine's overall CPU use, so the report can say where the cores went."""

    database: str = ""
    roles: dict[int, str] = field(default_factory=dict)
    first: dict[int, _Sample] = field(default_factory=dict)
    last: dict[int, _Sample] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    machine_first: tuple[float, float] = (0.0, 0.0)
    machine_last: tuple[float, float] = (0.0, 0.0)

    def track(self, pid: int, role: str) -> None:
        self.roles.setdefault(pid, role)

    def _discover(self) -> None:
        backend = f" {self.database} " if self.database else None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in self.roles:
                continue
            command = _cmdline(int(entry.name))
            if backend and command.startswith("postgres: ") and backend in f"{command} ":
                self.roles[int(entry.name)] = "postgres"
            elif command.startswith("redis-server"):
                self.roles[int(entry.name)] = "redis"

    def tick(self) -> None:
        self._discover()
        now = time.monotonic()
        for pid in self.roles:
            sample = _sample(pid)
            if sample is None:
                continue
            self.first.setdefault(pid, sample)
            self.last[pid] = sample
        with suppress(OSError):
            self.machine_last = _machine_cpu()
            if not self.started:
                self.machine_first = self.machine_last
        self.started = self.started or now
        self.ended = now

    def _share(self, pids: list[int], attribute: str) -> float:
        span = self.ended - self.started
        used = sum(getattr(self.last[p], attribute) - getattr(self.first[p], attribute) for p in pids)
        return round(used / span, 2) if span > 0 else 0.0

    def view(self, pid: int) -> dict[str, Any]:
        last = self.last[pid]
        return {"pid": pid, "role": self.roles[pid], "rss_mb": last.rss_mb, "peak_rss_mb": last.peak_rss_mb,
                "cpu_share": self._share([pid], "cpu_s"), "cpu_wait_share": self._share([pid], "wait_s")}

    def views(self, *roles: str) -> list[dict[str, Any]]:
        return [self.view(pid) for pid, role in self.roles.items() if role in roles and pid in self.last]

    def group(self, role: str) -> dict[str, Any]:
        """CPU of every process with `role` together (PostgreSQL backends come and go with the pool)."""
        pids = [p for p, r in self.roles.items() if r == role and p in self.last]
        return {"processes": len(pids), "cpu_share": self._share(pids, "cpu_s"),
                "cpu_wait_share": self._share(pids, "wait_s")}

    def machine(self) -> dict[str, Any]:
        busy = self.machine_last[0] - self.machine_first[0]
        total = self.machine_last[1] - self.machine_first[1]
        cores = os.cpu_count() or 1
        return {"cores": cores, "busy_cores": round(cores * busy / total, 2) if total else 0.0}


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _machine() -> str:
    model = ""
    with suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        model = found.group(1).strip() if found else ""
    memory = ""
    with suppress(OSError):
        found = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        memory = f", {int(found.group(1)) / 1024 / 1024:.0f} GB RAM" if found else ""
    return f"{os.cpu_count()} CPUs ({model or platform.machine()}){memory}, Linux {platform.release()}"


# ------------------------------------------------------------------ the run


@dataclass(frozen=True, slots=True)
class Options:
    rate: float
    duration: int
    warmup: int
    server_workers: int
    locust_workers: int
    persons: int
    out: Path
    state_dir: Path
    reset_db: bool
    users: int | None
    strict: bool
    command: str


def _locust_commands(options: Options, *, host: str, users: int, master_port: int) -> tuple[list[str], list[str]]:
    out = options.out
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING"]
    # Users spawn over the ramp-up, which doubles as the warm-up: statistics restart once all are running.
    spawn_rate = users / options.warmup if options.warmup else users
    reset = ["--reset-stats"] if options.warmup else []
    master = [*base, "--master", "--headless", "--master-bind-host", "127.0.0.1", "--master-bind-port",
              str(master_port), "--expect-workers", str(options.locust_workers), "--expect-workers-max-wait", "60",
              "--users", str(users), "--spawn-rate", f"{spawn_rate:.3f}",
              "--run-time", f"{options.warmup + options.duration}s", "--stop-timeout", "5", "--host", host,
              "--csv", str(out / "locust"), "--html", str(out / "locust.html"), "--only-summary", *reset]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port), *reset]
    return master, worker


def _run_load(options: Options, *, children: _Children, env: dict[str, str], fixtures_path: Path, users: int,
              watch: _Watch) -> None:
    """Start the server and Locust, wait for Locust to finish, sampling processes meanwhile."""
    port = _free_port()
    host = f"http://127.0.0.1:{port}"
    _say(f"server: granian, {options.server_workers} worker(s), production settings, {host}")
    started = children.start([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                              "--workers", str(options.server_workers)], env=env, log=options.out / "server.log")
    _wait_ready(f"{host}/health/ready", started)
    watch.track(started.pid, "server main")
    for pid in _descendants(started.pid):
        if _is_granian_worker(pid):
            watch.track(pid, "server worker")
    master_cmd, worker_cmd = _locust_commands(options, host=host, users=users, master_port=_free_port())
    # Locust needs no secret: the fixtures file carries the tokens it sends.
    locust_env = {**{k: v for k, v in os.environ.items() if k not in SECRET_VARS},
                  fx.FIXTURES_ENV: str(fixtures_path), "PYTHONUNBUFFERED": "1"}
    _say(f"locust: {users} users in {options.locust_workers} worker process(es), "
         f"{options.warmup} s ramp-up + {options.duration} s at {options.rate:g} req/s")
    master = children.start(master_cmd, env=locust_env, log=options.out / "locust.log")
    watch.track(master.pid, "master")
    for index in range(options.locust_workers):
        worker = children.start(worker_cmd, env={**locust_env, fx.WORKER_ENV: str(index)},
                                log=options.out / f"locust-worker-{index}.log")
        watch.track(worker.pid, "worker")
    deadline = time.monotonic() + options.warmup + options.duration + 120
    while master.poll() is None:
        if time.monotonic() > deadline:
            raise RuntimeError("Locust did not finish in time: see locust.log")
        watch.tick()
        time.sleep(1)
    watch.tick()  # the server's memory once the load is over
    if not (options.out / "locust_stats.csv").exists():
        raise RuntimeError("Locust wrote no statistics: see locust.log")


def run(options: Options) -> dict[str, Any]:
    """One load test; returns the summary (also written to the report folder)."""
    started_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env.setdefault("XINYI_REDIS_NAMESPACE", DEFAULT_NAMESPACE)
    database_url = env["DATABASE_URL"]
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("xinyi loadtest: DATABASE_URL must be a PostgreSQL URL (the figures are about PostgreSQL)")
    created = asyncio.run(prepare_database(database_url, reset=options.reset_db, tool="xinyi loadtest"))
    keys_file = _keys_file(options.state_dir, database_url)
    secrets, origin = _secrets(env, keys_file=keys_file, fresh=created)
    env = production_env(env, secrets)
    settings = Settings.from_env(env)
    if asyncio.run(fx.check_keys(settings)) is False:
        raise SystemExit(f"xinyi loadtest: the database {_database_name(database_url)!r} holds personal data "
                         f"encrypted under other keys than the {origin} ones; point DATABASE_URL at another "
                         "database or pass --reset-db to start it afresh")
    if origin == "generated":
        _write_private(keys_file, json.dumps(secrets))
        origin = f"generated (kept in {keys_file})"
    os.environ.update(env)  # migrations read the database from the environment
    options.out.mkdir(parents=True, exist_ok=True)
    _say(f"database {_database_name(database_url)} ({'new' if created else 'existing'}), secrets {origin}")
    plans = fx.plan(options.rate)
    if options.users:
        scale = options.users / sum(p.users for p in plans.values())
        plans = {name: fx.ClassPlan(users=max(1, round(p.users * scale)),
                                    iterations_per_second=p.users * p.iterations_per_second
                                    / max(1, round(p.users * scale)))
                 for name, p in plans.items()}
    users = sum(p.users for p in plans.values())
    private = Path(tempfile.mkdtemp(prefix="xinyi-loadtest-"))  # mode 0700: tokens and id numbers
    loadavg_before = _loadavg()
    children = _Children()
    watch = _Watch(database=_database_name(database_url))
    try:
        _say(f"migrations and fixtures (log: {options.out / 'prepare.log'})")
        with (options.out / "prepare.log").open("w") as log, redirect_stdout(log):
            prepared = asyncio.run(fx.prepare(
                settings, persons=options.persons, rate=options.rate, duration_s=options.duration,
                warmup_s=options.warmup, locust_workers=options.locust_workers, path=private / "fixtures.json",
                say=_say, plans=plans))
        _say(f"fixtures ready in {prepared.seconds:.1f} s: {prepared.citizens:,} citizens, "
             f"{prepared.score_authorizations:,} score authorizations, {prepared.portraits} portrait grants")
        _run_load(options, children=children, env=env, fixtures_path=private / "fixtures.json", users=users,
                  watch=watch)
    finally:
        children.stop()
        shutil.rmtree(private, ignore_errors=True)
    config = {
        "started_at": started_at, "loadavg_before": loadavg_before, "loadavg_after": _loadavg(),
        "command": options.command, "target_rps": options.rate, "duration_s": options.duration,
        "warmup_s": options.warmup, "server_workers": options.server_workers,
        "locust_workers": options.locust_workers, "users": users, "persons": options.persons,
        "database": "postgresql", "store": "redis" if settings.redis_url else "memory", "machine": _machine(),
        "plan": {name: {"users": p.users, "iterations_per_second_per_user": round(p.iterations_per_second, 3),
                        "share_percent": fx.TRAFFIC[name].share,
                        "planned_rps": round(fx.planned_rate(plans)[name], 1)} for name, p in plans.items()},
    }
    workers = watch.views("server worker")
    generator_processes = watch.views("master", "worker")
    summary = report.build_summary(
        stats_csv=options.out / "locust_stats.csv", failures_csv=options.out / "locust_failures.csv",
        target_rate=options.rate, config=config, fixtures=prepared.as_dict(),
        server={"workers": workers, "main": watch.views("server main"),
                "max_worker_rss_mb": max((w["rss_mb"] for w in workers), default=0.0),
                "postgres_backends": watch.group("postgres"), "redis": watch.group("redis"),
                "machine": watch.machine()},
        generator={"tool": "locust (FastHttpUser)", "processes": generator_processes,
                   "max_worker_cpu_share": max((g["cpu_share"] for g in generator_processes
                                                if g["role"] == "worker"), default=0.0)})
    report.write_report(options.out, summary)
    return summary


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    total, credit = summary["total"], summary["credit_queries"]
    print(f"{'PASS' if summary['pass'] else 'FAIL'}: {total['rps']:g} req/s, p50 {total['p50_ms']:g} ms, "
          f"p99 {total['p99_ms']:g} ms, {total['failures']} failed of {total['requests']:,}; credit queries "
          f"{credit['per_day']:,}/day = {credit['multiple_of_target']:g} x 3,000; worker RSS "
          f"{summary['server']['max_worker_rss_mb']} MB")
    for target in summary["targets"]:
        print(f"  {target['name']:<14} {target['target']:<22} {target['measured']!s:<10} "
              f"{'pass' if target['pass'] else 'FAIL'}")
    print(f"report: {out}/summary.md")


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="xinyi loadtest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300, help="target requests per second in total (default 300)")
    parser.add_argument("--duration", type=int, default=60, help="measured seconds (default 60)")
    parser.add_argument("--warmup", type=int, default=5,
                        help="ramp-up seconds before the measurement, excluded from the statistics (default 5)")
    parser.add_argument("--server-workers", type=int, default=2, help="granian worker processes (default 2)")
    parser.add_argument("--locust-workers", type=int, default=2, help="Locust worker processes (default 2)")
    parser.add_argument("--persons", type=int, default=2000,
                        help="demo city size when seeding, and the most citizens the users act as (default 2000)")
    parser.add_argument("--users", type=int, default=None,
                        help="simulated users in total (default: planned from the rate, at most 5 task runs/s each)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default reports/loadtest-<UTC time>)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help=f"where the generated secrets are kept per database (default {default_state_dir()})")
    parser.add_argument("--reset-db", action="store_true",
                        help="drop and recreate the load-test database first (its name must contain 'loadtest')")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or args.server_workers < 1 or args.locust_workers < 1:
        parser.error("--rate, --duration, --server-workers and --locust-workers must be positive")
    if args.persons < 10:
        parser.error("--persons must be at least 10")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Options(rate=args.rate, duration=args.duration, warmup=args.warmup, server_workers=args.server_workers,
                   locust_workers=args.locust_workers, persons=args.persons,
                   out=(args.out or Path("reports") / f"loadtest-{stamp}").resolve(),
                   state_dir=args.state_dir or default_state_dir(), reset_db=args.reset_db, users=args.users,
                   strict=args.strict, command=shlex.join(["xinyi", "loadtest", *argv]))


def main(argv: list[str] | None = None, *, exit_with: Callable[[int], None] = sys.exit) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(arguments)
    try:
        with _interruptible():
            summary = run(options)
    except ConfigurationError as exc:
        raise SystemExit(f"xinyi loadtest: {exc}") from None
    except KeyboardInterrupt:
        print("xinyi loadtest: interrupted; the server and Locust were stopped", file=sys.stderr)
        exit_with(130)
        return
    _print_summary(summary, options.out)
    if options.strict and not summary["pass"]:
        exit_with(1)


if __name__ == "__main__":
    main()
