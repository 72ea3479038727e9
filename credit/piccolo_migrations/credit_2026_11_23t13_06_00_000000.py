"""Indexes Piccolo cannot declare: one row per (day, metric) in daily_stats, and the ledger by time
(daily statistics count ledger entries per day)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T13:06:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "daily_stats unique (day, metric); access_ledger by time"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="credit", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS daily_stats_day_metric_uq ON daily_stats (day, metric)")
        await engine.run_ddl("CREATE INDEX IF NOT EXISTS access_ledger_at_idx ON access_ledger (at)")

    async def drop_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS daily_stats_day_metric_uq")
        await engine.run_ddl("DROP INDEX IF EXISTS access_ledger_at_idx")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
