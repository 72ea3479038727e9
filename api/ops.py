"""Operational endpoints: liveness, readiness (database and store) and Prometheus metrics.

Metrics have two homes. One process (in-process tests, `xinyi serve --workers 1`): prometheus_client's default
registry in memory. Several granian workers: prometheus_client's multiprocess mode, in which every worker writes
its values to files in the directory named by `PROMETHEUS_MULTIPROC_DIR` (`xinyi serve` makes a private one for
its workers, see `api.serving`), and `/metrics` sums the files of all workers, whichever worker answers the scrape.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from litestar import Controller, Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from piccolo.engine.base import Engine
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    generate_latest,
    multiprocess,
    values,
)

from api.dependencies import Injected
from core import db
from core.errors import ServiceUnavailable
from core.store import Store, StoreUnavailable

_CHECK_TIMEOUT = 2.0


@get("/health/live", tags=["ops"], summary="The process is up", cache=False)
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", tags=["ops"], summary="Database and store answer; 503 names what is down")
async def ready(engine: Injected[Engine[Any]], store: Injected[Store]) -> dict[str, Any]:

    async def check(name: str, probe: Any) -> tuple[str, str]:
        try:
            await asyncio.wait_for(probe, timeout=_CHECK_TIMEOUT)
        except StoreUnavailable as exc:
            return name, f"down: {exc}"  # names the store and the failure (e.g. "redis unreachable (…)")
        except Exception as exc:
            return name, f"down: {type(exc).__name__}"
        return name, "ok"

    results = dict(await asyncio.gather(check("database", db.ping(engine)), check("store", store.ping())))
    if any(v != "ok" for v in results.values()):
        down = ", ".join(k for k, v in results.items() if v != "ok")
        raise ServiceUnavailable(f"not ready: {down} unavailable", code="not_ready", checks=results)
    return {"status": "ready", "checks": results}


_APP_NAME = "xinyi"
_UNMETERED = frozenset({"/metrics", "/health/live"})
_LABELS = ("method", "path", "status_code", "app_name")
_REQUESTS = Counter("xinyi_requests_total", "Requests by route template and status", _LABELS)
_ERRORS = Counter("xinyi_requests_error_total", "Requests answered with a 5xx", _LABELS)
_DURATION = Histogram("xinyi_request_duration_seconds", "Time to the last byte of the answer", _LABELS,
                      buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
# Summed over the workers alive (a stopped worker's last value is dropped, see `mark_worker_stopped`); without a
# mode, multiprocess gauges would get one series per worker pid, another label set than one process exposes.
_IN_PROGRESS = Gauge("xinyi_requests_in_progress", "Requests being handled", ("app_name",),
                     multiprocess_mode="livesum")

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


def _check_multiprocess_mode() -> None:
    """prometheus_client picks in-memory or file-backed values once, when it is first imported: a process that
    imported it before the directory was named would count in memory and every scrape would miss its requests."""
    if _multiprocess_dir() and values.ValueClass is values.MutexValue:
        raise RuntimeError(f"{MULTIPROCESS_DIR_ENV} was set after prometheus_client was imported in this process; "
                           "set it before the workers start")


def mark_worker_stopped() -> None:
    """On a worker's graceful stop (granian's SIGTERM, a SIGHUP reload, a lifetime or memory respawn): drop its
    live gauges from the shared directory; its counters and histograms stay, they counted real requests.

    Granian offers hooks in the main process only for start-up, reload and shutdown, none when one worker exits,
    so each worker does this for itself. A worker that dies without stopping makes `xinyi serve` stop altogether
    (granian does not respawn failed workers unless told to), and the directory goes with it.
    """
    if directory := _multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Requests and latency by route template (not raw path, so ids never become labels) and status.

    Same metric names and labels as Litestar's Prometheus plugin, at a fraction of its cost per request
    (no Request object, no per-call `functools.wraps`, label children looked up once per route and
    status), which matters on the hot paths measured against a bare hello endpoint.
    """
    _check_multiprocess_mode()
    children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
    in_progress = _IN_PROGRESS.labels(_APP_NAME)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in _UNMETERED:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress.inc()
        try:
            await app(scope, receive, timed_send)
        finally:
            in_progress.dec()
            key = (str(scope.get("method", "")), scope.get("path_template") or scope["path"], status)
            child = children.get(key)
            if child is None:
                values = (*key, _APP_NAME)
                child = children[key] = (_REQUESTS.labels(*values), _DURATION.labels(*values),
                                         _ERRORS.labels(*values) if status >= 500 else None)
            child[0].inc()
            child[1].observe(time.perf_counter() - started)
            if child[2] is not None:
                child[2].inc()

    return middleware


class MetricsController(Controller):
    path = "/metrics"
    tags = ["ops"]

    # The media type named on the handler, or the schema would say JSON.
    @get(media_type=CONTENT_TYPE_LATEST, summary="Prometheus metrics (text exposition format)")
    async def get(self) -> Response[bytes]:
        registry = REGISTRY
        if directory := _multiprocess_dir():
            # A fresh registry per scrape, reading every worker's files. The default registry's process_* and
            # python_gc_* collectors describe the one worker answering, not the service, so they are left out;
            # python_info is the same in every worker.
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
            PlatformCollector(registry=registry)
        return Response(generate_latest(registry), status_code=200, headers={"Content-Type": CONTENT_TYPE_LATEST})
