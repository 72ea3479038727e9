"""Serving the app with granian (`xinyi serve`, `xinyi up`), with the shared metrics directory several workers
need.

Nothing here imports prometheus_client: this process sets `PROMETHEUS_MULTIPROC_DIR` for the workers it starts,
and prometheus_client reads it at import (see `shared_metrics_directory`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

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


def listening_url(*, host: str, port: int) -> str:
    """The URL a client on this machine reaches a server bound to `host:port` at."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - mapping, not binding
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


def serve(*, host: str, port: int, workers: int) -> None:
    """Serve the app with granian (ASGI, app factory: settings are read in each worker). Several workers share
    their Prometheus counts through a directory of their own; one worker keeps them in memory.

    Outside production, an unset `XINYI_PUBLIC_URL` becomes the address this server listens on, so the OAuth
    metadata names endpoints that answer (`xinyi up --port 8100` would otherwise advertise port 8000).
    """
    if os.environ.get("XINYI_ENV", "dev") != "production" and not os.environ.get("XINYI_PUBLIC_URL"):
        os.environ["XINYI_PUBLIC_URL"] = listening_url(host=host, port=port)
    if workers > 1 and not os.environ.get("REDIS_URL"):
        # Production refuses to start without Redis; in dev, say what several workers without it cannot share.
        print("warning: several workers without REDIS_URL each keep their own in-process store: a token revoked, "
              "an SMS or benefit code used, or a rate limit counted on one worker is unknown to the others",
              file=sys.stderr)
    from granian.constants import Interfaces  # noqa: PLC0415 - keep `xinyi --help` instant
    from granian.server import Server  # noqa: PLC0415

    server = Server(
        "api.app:create_app", address=host, port=port, workers=workers, interface=Interfaces.ASGI,
        factory=True, log_access=False, backlog=2048,
    )
    with shared_metrics_directory() if workers > 1 else contextlib.nullcontext():
        server.serve()
