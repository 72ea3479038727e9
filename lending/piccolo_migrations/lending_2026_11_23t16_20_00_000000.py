"""One portrait version per (enterprise, version): two workers refreshing the same enterprise at once
meet in the database, and the loser reuses the winner's snapshot instead of writing a duplicate version."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T16:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "portrait_snapshots unique (enterprise, version)"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="lending", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS portrait_snapshots_version_uq "
                             "ON portrait_snapshots (enterprise, version)")

    async def drop_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS portrait_snapshots_version_uq")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
