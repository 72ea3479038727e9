"""Operational endpoints: liveness, readiness (database and store) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, get
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from api import db
from api.auth.guards import app_context
from api.errors import ServiceUnavailable

_CHECK_TIMEOUT = 2.0


@get("/health/live", tags=["ops"], summary="The process is up", cache=False)
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", tags=["ops"], summary="Database and store answer; 503 names what is down")
async def ready(request: Request[Any, Any, Any]) -> dict[str, Any]:
    ctx = app_context(request)

    async def check(name: str, probe: Any) -> tuple[str, str]:
        try:
            await asyncio.wait_for(probe, timeout=_CHECK_TIMEOUT)
        except Exception as exc:
            return name, f"down: {type(exc).__name__}"
        return name, "ok"

    results = dict(await asyncio.gather(check("database", db.ping(ctx.engine)), check("store", ctx.store.ping())))
    if any(v != "ok" for v in results.values()):
        down = ", ".join(k for k, v in results.items() if v != "ok")
        raise ServiceUnavailable(f"not ready: {down} unavailable", code="not_ready", checks=results)
    return {"status": "ready", "checks": results}


def prometheus_config() -> PrometheusConfig:
    """Requests and latency by route template (not raw path, so ids never become labels) and status."""
    return PrometheusConfig(app_name="xinyi", prefix="xinyi", group_path=True,
                            exclude=["/metrics", "/health/live"])


class MetricsController(PrometheusController):
    path = "/metrics"
    tags = ["ops"]
