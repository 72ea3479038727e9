"""Transactions and row locks for check-then-write steps in 信易贷 (one product edit, one demand's
submission, one enterprise's disbursement at a time).

On PostgreSQL a `SELECT … FOR NO KEY UPDATE` on the row serializes the steps that take it, without
blocking inserts that merely reference the row. SQLite has no row locks; an IMMEDIATE transaction takes
the database's write lock up front, so concurrent writers queue instead of failing on a lock upgrade.
"""

from __future__ import annotations

from typing import Any, Literal

from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table


def transaction(table: type[Table]) -> Any:
    """A transaction on `table`'s engine (IMMEDIATE on SQLite)."""
    engine = table._meta.db
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


async def lock_row(table: type[Table], pk: int, *, strength: Literal["UPDATE", "NO KEY UPDATE"] = "NO KEY UPDATE"
                   ) -> None:
    """Hold the lock of `table`'s row `pk` until the transaction ends (a no-op on SQLite, see above).

    `UPDATE` also waits for (and holds off) transactions inserting rows that reference this one.
    """
    if isinstance(table._meta.db, PostgresEngine):
        primary_key = table._meta.primary_key
        await table.select(primary_key).where(primary_key == pk).lock_rows(strength)


__all__ = ["lock_row", "transaction"]
