"""Real processes for tests: the `xinyi` console script and servers started from it on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

XINYI = shutil.which("xinyi") or str(Path(sys.executable).with_name("xinyi"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def xinyi_process(args: Sequence[str], *, ready_path: str, port: int | None = None, env: dict[str, str] | None = None,
                  timeout: float = 60, log: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `xinyi <args> --port P` until `ready_path` answers 200; yield its base URL and the process (whose
    group a test may kill itself); stop it after, unless it is gone already. What it prints goes to `log`."""
    port = port or free_port()
    with log.open("wb") if log else contextlib.nullcontext() as out:
        process = subprocess.Popen([XINYI, *args, "--port", str(port)], env=env or dict(os.environ),
                                   stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`xinyi {' '.join(args)}` did not become ready")
            time.sleep(0.2)
        yield base, process
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed by the test already
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def xinyi_server(args: Sequence[str], *, ready_path: str, port: int | None = None,
                 env: dict[str, str] | None = None, timeout: float = 60) -> Iterator[str]:
    """Run `xinyi <args> --port P` until `ready_path` answers 200; yield its base URL; stop it after."""
    with xinyi_process(args, ready_path=ready_path, port=port, env=env, timeout=timeout) as (base, _):
        yield base


@contextmanager
def xinyi_up(args: Sequence[str], *, env: dict[str, str], workdir: Path, port: int | None = None,
             timeout: float = 180) -> Iterator[tuple[str, str]]:
    """Run `xinyi up <args> --port P` in `workdir` until it is ready; yield its base URL and all it printed
    (the seed report and the README tour's `export` lines); stop it after."""
    port = port or free_port()
    log = workdir / f"up-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen([XINYI, "up", *args, "--port", str(port)], env=env, cwd=workdir, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`xinyi up` did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def printed_exports(printed: str) -> dict[str, str]:
    """The `export NAME=value` lines `xinyi up` printed, as the shell would read them."""
    return dict(shlex.split(line)[1].split("=", 1) for line in printed.splitlines() if line.startswith("export "))


@contextmanager
def throwaway_database(name_prefix: str) -> Iterator[str | None]:
    """A fresh, empty PostgreSQL database on `$DATABASE_URL`'s server, dropped afterwards (its URL), or None
    when the tests run on SQLite. For servers that must seed an empty database of their own."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield None
        return
    import asyncpg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    name = f"{name_prefix}_{secrets.token_hex(4)}"

    def run(statement: str) -> None:
        async def work() -> None:
            connection = await asyncpg.connect(admin)
            try:
                await connection.execute(statement)
            finally:
                await connection.close()
        # In a thread of its own: the tests' event loop may be running in this one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, work()).result()

    run(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
