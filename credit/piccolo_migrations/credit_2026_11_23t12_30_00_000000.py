"""Unique (source, source_ref) on credit records: re-sending a record corrects it, never duplicates.

Piccolo has no composite unique constraint, so this is raw DDL valid on both SQLite and PostgreSQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique source reference on credit records"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="credit", description=DESCRIPTION)

    async def create_index() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(
            "CREATE UNIQUE INDEX IF NOT EXISTS credit_records_source_ref_uq ON credit_records (source, source_ref)"
        )

    async def drop_index() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS credit_records_source_ref_uq")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
