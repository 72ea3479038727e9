"""Database engine selection, the connection pool, write transactions and row locks, and hand-written queries
for hot paths.

SQLite file by default (embedded, zero set-up); PostgreSQL when `DATABASE_URL` is set. The schema is
created and changed only by Piccolo migrations (`xinyi migrate`); nothing creates tables at start-up.
Which tables the engine serves is the composition's business (api/domains.py binds every domain's tables).

Check-then-write steps run in `transaction(...)`: on SQLite an IMMEDIATE transaction takes the database's write
lock up front, so concurrent writers queue instead of failing on a lock upgrade (two deferred writers deadlock);
on PostgreSQL a plain transaction, where `lock_row` (`SELECT … FOR [NO KEY] UPDATE`) and the conditional
statements' row locks serialize the steps that need it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from piccolo.columns import Column
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString
from piccolo.table import Table

from core.pagination import decode_time_cursor, encode_time_cursor
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


def transaction(on: Engine[Any] | type[Table]) -> Any:
    """A write transaction on an engine (or a table's engine): IMMEDIATE on SQLite, plain on PostgreSQL."""
    engine = on._meta.db if isinstance(on, type) else on
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


async def lock_row(table: type[Table], pk: int, *, strength: Literal["UPDATE", "NO KEY UPDATE"] = "NO KEY UPDATE"
                   ) -> None:
    """Hold the lock of `table`'s row `pk` until the transaction ends (PostgreSQL; SQLite's IMMEDIATE transaction
    already holds the whole database).

    `NO KEY UPDATE` serializes the steps that take it without blocking inserts that merely reference the row;
    `UPDATE` also waits for (and holds off) transactions inserting rows that reference this one.
    """
    if isinstance(table._meta.db, PostgresEngine):
        primary_key = table._meta.primary_key
        await table.select(primary_key).where(primary_key == pk).lock_rows(strength)


async def newest_first(query: Any, *, at: Column, key: Column, limit: int, cursor: str | None
                       ) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a Piccolo select, newest first over (`at`, `key`: a time and a unique public id), after the
    row an opaque time cursor names (core.pagination); the next page's cursor, or None on the last page."""
    query = query.order_by(at, key, ascending=False).limit(limit + 1)
    if cursor:
        after, last_key = decode_time_cursor(cursor)
        query = query.where((at < after) | ((at == after) & (key < last_key)))
    rows: list[dict[str, Any]] = list(await query)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit and page:
        next_cursor = encode_time_cursor(page[-1][at._meta.name], page[-1][key._meta.name])
    return page, next_cursor


_PLACEHOLDER = re.compile(r"\$(\d+)")


def _querystring(sql: str, args: tuple[Any, ...]) -> QueryString:
    """`sql` with PostgreSQL placeholders as a Piccolo query: Piccolo numbers `{}` in order of appearance, so a
    `$n` is passed once per use, in the order the uses appear."""
    order = [int(n) - 1 for n in _PLACEHOLDER.findall(sql)]
    return QueryString(_PLACEHOLDER.sub("{}", sql), *(args[i] for i in order))


class Sql:
    """Runs hand-written SQL (PostgreSQL `$n` placeholders) inside the transaction `sql_transaction` opened."""

    def __init__(self, *, connection: Any = None, engine: Engine[Any] | None = None) -> None:
        self._connection = connection  # an asyncpg connection, or None to go through Piccolo
        self._engine = engine

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        if self._connection is not None:
            return [dict(row) for row in await self._connection.fetch(sql, *args)]
        assert self._engine is not None  # one of the two, by construction
        return [dict(row) for row in await self._engine.run_querystring(_querystring(sql, args)) or []]

    async def fetch_one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


@asynccontextmanager
async def sql_transaction(on: Engine[Any] | type[Table]) -> AsyncIterator[Sql]:
    """A write transaction (see `transaction`) for hand-written SQL on hot paths: on PostgreSQL on a pooled
    asyncpg connection (prepared statements, no ORM), on SQLite through Piccolo."""
    engine = on._meta.db if isinstance(on, type) else on
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        async with engine.pool.acquire() as connection, connection.transaction():
            yield Sql(connection=connection)
        return
    async with transaction(engine):
        yield Sql(engine=engine)


async def fetch_one(engine: Engine[Any], sql: str, *args: Any) -> dict[str, Any] | None:
    """One row of a hand-written query, for hot paths where building ORM queries costs too much.

    Write `sql` with PostgreSQL placeholders ($1, $2…). On PostgreSQL it runs as a prepared statement
    on a pooled connection (asyncpg caches the plan per connection); on SQLite placeholders become `?`.
    """
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        async with engine.pool.acquire() as connection:
            row = await connection.fetchrow(sql, *args)
        return dict(row) if row is not None else None
    rows = await engine.run_querystring(_querystring(sql, args))
    return dict(rows[0]) if rows else None


async def fetch_all(engine: Engine[Any], sql: str, *args: Any) -> list[dict[str, Any]]:
    """Every row of a hand-written query; same placeholders and execution as `fetch_one`."""
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        async with engine.pool.acquire() as connection:
            rows = await connection.fetch(sql, *args)
        return [dict(row) for row in rows]
    return [dict(row) for row in await engine.run_querystring(_querystring(sql, args)) or []]


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
