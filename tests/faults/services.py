"""Private PostgreSQL and Redis instances the fault tests own and may stop, kill and restart.

They are the same servers as the shared ones (the machine's `redis-server` and PostgreSQL binaries), started
on free loopback ports with their data in a temporary directory, so stopping them never disturbs anything
else running on the machine (other test runs, CI) that uses the shared services on 5432 / 6379.

PostgreSQL runs as the `postgres` OS user when the tests run as root (initdb refuses root). `fsync=off`
only gives up durability against an operating-system crash, which no test here simulates: a killed or
restarted server keeps every committed transaction (the WAL is in the page cache either way).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import free_port

_WAIT_SECONDS = 30.0


def _wait_for_port(port: int, *, up: bool, timeout: float = _WAIT_SECONDS) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (or, with `up=False`, nothing does)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                accepting = True
        except OSError:
            accepting = False
        if accepting == up:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} still {'closed' if up else 'open'} after {timeout:.0f} s")
        time.sleep(0.05)


class PrivateRedis:
    """`redis-server` on a free port without persistence; `kill` and `start` again on the same port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (bash .ci/services.sh installs it)")
        self._binary = binary
        self._workdir = workdir
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self._workdir), "--logfile", str(self._workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_for_port(self.port, up=True)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: clients see connections reset, then refused."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self._process = None
        _wait_for_port(self.port, up=False)


def _postgres_bin() -> Path:
    """The newest installed PostgreSQL's binaries (Debian layout first, then whatever is on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (bash .ci/services.sh installs it)")
    return Path(initdb).parent


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary directory, trust auth on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        self._bin = _postgres_bin()
        self._workdir = workdir
        self._data = workdir / "pgdata"
        self.port = free_port()
        # initdb and the server refuse to run as root: run them as the postgres user then.
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            self._as_owner = ["runuser", "-u", "postgres", "--"]
            owner = pwd.getpwnam("postgres")
            os.chown(workdir, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([*self._as_owner, str(self._bin / tool), *args], capture_output=True, text=True,
                                check=False, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self._workdir / "postgres.log"), "-w", "-t", "60", *args)

    def init(self) -> None:
        self._run("initdb", "-D", str(self._data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
                  "--no-sync")
        self.start()

    def restart_fast(self) -> None:
        """`pg_ctl restart -m fast`: sessions are terminated (admin shutdown), then the server starts again."""
        self._pg_ctl("-m", "fast", "restart")

    def stop(self, mode: str = "immediate") -> None:
        """`pg_ctl stop -m immediate` is a crash as far as clients and recovery are concerned."""
        self._pg_ctl("-m", mode, "stop")

    def start(self) -> None:
        """Start (again) on the same port and socket directory."""
        self._pg_ctl("-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self._workdir} -c fsync=off "
                     "-c max_connections=100 -c shared_buffers=32MB", "start")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self._pg_ctl("-m", "immediate", "stop")


def private_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="xinyi-faults-"))
