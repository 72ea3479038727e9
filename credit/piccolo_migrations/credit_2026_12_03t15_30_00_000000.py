"""Indexes the daily statistics need: credit records by ingest time (records ingested per day, and how many
of them in time) and credit checks by feedback time (measures applied per day). Without them each day
counted would scan the whole table."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-03T15:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "credit_records by created_at; credit_checks by feedback_at"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="credit", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("CREATE INDEX IF NOT EXISTS credit_records_created_at_idx ON credit_records (created_at)")
        await engine.run_ddl("CREATE INDEX IF NOT EXISTS credit_checks_feedback_at_idx ON credit_checks (feedback_at)")

    async def drop_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS credit_records_created_at_idx")
        await engine.run_ddl("DROP INDEX IF EXISTS credit_checks_feedback_at_idx")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
