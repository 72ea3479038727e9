"""Bulk writing of the registry tables inside one transaction: `COPY` on PostgreSQL, batched `executemany`
on SQLite (the demo seed), plus the row shapes the city-scale loader copies as well."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from demo.records import RecordSeed

# Rows are generated, encrypted and written this many persons at a time (bounded memory at city scale).
CHUNK_SIZE = 10_000

PERSON_COLUMNS = ("public_id", "name", "id_number_enc", "id_number_hash", "gender", "birth_date",
                  "region_code", "phone_hash", "phone_enc", "created_at")
ENTERPRISE_COLUMNS = ("public_id", "name", "uscc_enc", "uscc_hash", "industry", "region_code",
                      "registered_on", "registered_capital_fen", "legal_representative", "status",
                      "created_at")
RECORD_COLUMNS = ("public_id", "subject_kind", "person", "enterprise", "category", "polarity", "severity",
                  "dimension", "title", "source", "source_ref", "occurred_at", "status", "created_at",
                  "updated_at")
SEEDED_TABLES = ("persons", "enterprises", "credit_records")

Row = tuple[Any, ...]


class BulkWriter(ABC):
    """Writes rows of the seeded tables inside the one open transaction."""

    # Generate the next batch in a thread while this one is written. Pays off when the database works
    # in another process (PostgreSQL: about a quarter faster); SQLite writes in-process under the same
    # GIL, where it measured no gain.
    prefetch = False

    @abstractmethod
    def day(self, value: date) -> Any:
        """A Date column value as the driver wants it."""

    @abstractmethod
    def moment(self, value: datetime) -> Any:
        """A Timestamptz column value (an aware UTC datetime) as the driver wants it."""

    @abstractmethod
    async def insert(self, table: str, columns: Sequence[str], rows: list[Row]) -> None: ...

    @abstractmethod
    async def insert_returning_ids(self, table: str, columns: Sequence[str], rows: list[Row]) -> dict[str, int]:
        """Insert rows whose first column is `public_id`; return their database ids by public id."""


class PostgresWriter(BulkWriter):
    prefetch = True

    def __init__(self, connection: Any) -> None:
        self._conn = connection

    def day(self, value: date) -> Any:
        return value

    def moment(self, value: datetime) -> Any:
        return value

    async def insert(self, table: str, columns: Sequence[str], rows: list[Row]) -> None:
        await self._conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def insert_returning_ids(self, table: str, columns: Sequence[str], rows: list[Row]) -> dict[str, int]:
        await self.insert(table, columns, rows)
        # Table names come from this module, never from input.
        found = await self._conn.fetch(
            f"SELECT public_id, id FROM {table} WHERE public_id = ANY($1::varchar[])",  # noqa: S608
            [row[0] for row in rows],
        )
        return {r["public_id"]: r["id"] for r in found}


class SQLiteWriter(BulkWriter):
    def __init__(self, connection: Any) -> None:
        self._conn = connection

    def day(self, value: date) -> Any:
        return value.isoformat()

    def moment(self, value: datetime) -> Any:
        # The text Piccolo's SQLite adapter writes for an aware datetime: UTC, "YYYY-MM-DD HH:MM:SS+00:00".
        return str(value.astimezone(UTC))

    async def insert(self, table: str, columns: Sequence[str], rows: list[Row]) -> None:
        # Table and column names come from this module; values are bound parameters.
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
        await self._conn.executemany(sql, rows)

    async def insert_returning_ids(self, table: str, columns: Sequence[str], rows: list[Row]) -> dict[str, int]:
        # The transaction holds SQLite's write lock (BEGIN IMMEDIATE), so every row above the previous
        # maximum id is one of ours: no need to look thousands of public ids up one by one.
        async with self._conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}") as cursor:  # noqa: S608
            (before,) = await cursor.fetchone()
        await self.insert(table, columns, rows)
        async with self._conn.execute(f"SELECT public_id, id FROM {table} WHERE id > ?", (before,)) as cursor:  # noqa: S608
            return dict(await cursor.fetchall())


@asynccontextmanager
async def open_writer(engine: Engine[Any]) -> AsyncIterator[BulkWriter]:
    """A dedicated connection in one transaction: committed if the body succeeds, rolled back if not."""
    if isinstance(engine, PostgresEngine):
        # A connection of its own rather than one of the pool: COPY holds it for the whole seed.
        conn = await engine.get_new_connection()
        try:
            async with conn.transaction():
                yield PostgresWriter(conn)
        finally:
            await conn.close()
    elif isinstance(engine, SQLiteEngine):
        # Autocommit mode (no implicit transactions) so that the explicit BEGIN IMMEDIATE below rules.
        conn = await aiosqlite.connect(**{**engine.connection_kwargs, "isolation_level": None})
        try:
            await conn.execute("PRAGMA foreign_keys = 1")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield SQLiteWriter(conn)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
        finally:
            await conn.close()
    else:
        raise TypeError(f"cannot bulk-load into {type(engine).__name__}")


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def record_row(writer: BulkWriter, record: RecordSeed, person_id: int | None, enterprise_id: int | None,
                sources: dict[str, str]) -> Row:
    return (record.public_id, record.subject_kind, person_id, enterprise_id, record.category,
            record.polarity, record.severity, record.dimension, record.title, sources[record.source],
            record.source_ref, writer.moment(record.occurred_at), record.status,
            writer.moment(record.created_at), writer.moment(record.updated_at))
