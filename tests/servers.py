"""Real processes for tests: the `xinyi` console script and servers started from it on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

XINYI = shutil.which("xinyi") or str(Path(sys.executable).with_name("xinyi"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def xinyi_process(args: Sequence[str], *, ready_path: str, port: int | None = None, env: dict[str, str] | None = None,
                  timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `xinyi <args> --port P` until `ready_path` answers 200; yield its base URL and the process (whose
    group a test may kill itself); stop it after, unless it is gone already."""
    port = port or free_port()
    process = subprocess.Popen([XINYI, *args, "--port", str(port)], env=env or dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
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
