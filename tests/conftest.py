"""Test set-up: one migrated database per run (SQLite file, or PostgreSQL when DATABASE_URL is set),
the in-process store or Redis (REDIS_URL, with a namespace of its own), and the app driven over HTTP."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar

_tmp = tempfile.mkdtemp(prefix="xinyi-test-")
os.environ.setdefault("XINYI_SQLITE_PATH", os.path.join(_tmp, "test.sqlite"))
os.environ["XINYI_ENV"] = "test"
os.environ["XINYI_SMS_ADAPTER"] = "dev"
os.environ["XINYI_TRUST_FORWARDED_FOR"] = "1"
os.environ["XINYI_BACKGROUND_IN_APP"] = "0"
os.environ["XINYI_REDIS_NAMESPACE"] = f"xinyi-test-{secrets.token_hex(4)}"
os.environ.setdefault("XINYI_LOG_LEVEL", "WARNING")

from api.app import create_app  # noqa: E402
from api.context import AppContext  # noqa: E402
from api.migrations import migrate_async  # noqa: E402
from core import db  # noqa: E402
from core.settings import Settings  # noqa: E402

BACKEND = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
STORE = "redis" if os.environ.get("REDIS_URL") else "memory"


def pytest_report_header() -> str:
    return f"xinyi backends: database={BACKEND} store={STORE}"


_FAULTS = Path(__file__).parent / "faults"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/faults stops and restarts services of its own: collected only when asked for (`.ci/faults`)."""
    if collection_path != _FAULTS:
        return None
    asked = [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]
    return not any(p == _FAULTS or _FAULTS in p.parents for p in asked)


@pytest.fixture(scope="session")
async def app() -> Litestar:
    await migrate_async()
    return create_app(Settings.from_env())


class ApiClient(httpx.AsyncClient):
    """HTTP client bound to the app in this event loop (so tests and app share one database pool)."""

    def __init__(self, app: Litestar) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local")
        self.app = app


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[ApiClient]:
    # The app's own lifespan runs in a task group that cannot span fixture set-up and tear-down,
    # so the same start and stop steps are taken here, in the tests' event loop.
    context: AppContext = app.state.ctx
    await db.open_engine(context.engine, context.settings)
    try:
        async with ApiClient(app) as c:
            yield c
    finally:
        await context.close()
        await db.close_engine(context.engine)


@pytest.fixture(scope="session")
def ctx(app: Litestar, client: ApiClient) -> AppContext:
    context: AppContext = app.state.ctx
    return context


@pytest.fixture
def override_settings(ctx: AppContext) -> Iterator[Any]:
    """Temporarily change settings of the running app (e.g. tighter limits)."""
    original = ctx.settings

    @contextmanager
    def apply(**changes: Any) -> Iterator[None]:
        ctx.settings = msgspec.structs.replace(original, **changes)
        try:
            yield
        finally:
            ctx.settings = original

    yield apply
    ctx.settings = original
