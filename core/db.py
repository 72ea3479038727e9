"""Database engine selection, the connection pool, and hand-written queries for hot paths.

SQLite file by default (embedded, zero set-up); PostgreSQL when `DATABASE_URL` is set. The schema is
created and changed only by Piccolo migrations (`xinyi migrate`); nothing creates tables at start-up.
Which tables the engine serves is the composition's business (api/domains.py binds every domain's tables).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.querystring import QueryString

from core.settings import Settings


def build_engine(settings: Settings, *, for_migrations: bool = False) -> Engine[Any]:
    """The Piccolo engine the settings ask for."""
    if settings.database_url:
        return PostgresEngine(config={"dsn": settings.database_url}, log_queries=False)
    # A busy timeout lets the CLI and the dev server share the file without "database is locked".
    return SQLiteEngine(path=settings.sqlite_path, timeout=30)


async def _reset_connection(connection: Any) -> None:
    """Return a pooled connection in a clean state without a round trip when it already is one.

    asyncpg's default reset runs `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every
    release: a round trip per pooled query, a large share of a hot path that holds a connection for one
    prepared statement. Nothing here leaves session state behind (advisory locks are transaction-scoped,
    no LISTEN, no SET outside a transaction), so only an unfinished transaction needs undoing.
    """
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def open_engine(engine: Engine[Any], settings: Settings) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=2, max_size=settings.db_pool_max, reset=_reset_connection)


async def close_engine(engine: Engine[Any]) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()


async def ping(engine: Engine[Any]) -> None:
    await engine.run_ddl("SELECT 1")


_PLACEHOLDER = re.compile(r"\$\d+")


async def fetch_one(engine: Engine[Any], sql: str, *args: Any) -> dict[str, Any] | None:
    """One row of a hand-written query, for hot paths where building ORM queries costs too much.

    Write `sql` with PostgreSQL placeholders ($1, $2…). On PostgreSQL it runs as a prepared statement
    on a pooled connection (asyncpg caches the plan per connection); on SQLite placeholders become `?`.
    """
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        async with engine.pool.acquire() as connection:
            row = await connection.fetchrow(sql, *args)
        return dict(row) if row is not None else None
    rows = await engine.run_querystring(QueryString(_PLACEHOLDER.sub("{}", sql), *args))
    return dict(rows[0]) if rows else None


async def fetch_all(engine: Engine[Any], sql: str, *args: Any) -> list[dict[str, Any]]:
    """Every row of a hand-written query; same placeholders and execution as `fetch_one`."""
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        async with engine.pool.acquire() as connection:
            rows = await connection.fetch(sql, *args)
        return [dict(row) for row in rows]
    return [dict(row) for row in await engine.run_querystring(QueryString(_PLACEHOLDER.sub("{}", sql), *args)) or []]


def as_utc(value: datetime) -> datetime:
    """A timestamp read from the database as an aware UTC datetime (SQLite hands timestamps back naive)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


async def rename_migration_app(*, old: str, new: str) -> int:
    """Record the migrations applied under app `old` as applied under `new`; the number of rows renamed.

    Piccolo remembers applied migrations in its `migration` table by `app_name`: after a domain's app is
    renamed, a database migrated under the old name would otherwise run the app's first migration again
    (and fail on its existing tables). Idempotent: once renamed nothing matches `old`; a database without a
    `migration` table (never migrated) has nothing to rename. Runs on the engine Piccolo's migration commands
    use (PICCOLO_CONF), like `run_forwards` after it.
    """
    from piccolo.apps.migrations.tables import Migration  # noqa: PLC0415 - only migration tooling needs it

    if not await Migration.table_exists():
        return 0
    count = int(await Migration.count().where(Migration.app_name == old))
    if count:
        await Migration.update({Migration.app_name: new}).where(Migration.app_name == old)
    return count
