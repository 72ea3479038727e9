"""One redemption per (verification, benefit): a unique key Piccolo cannot declare, so a second redemption
of the same verified benefit meets the first in the database (`ON CONFLICT DO NOTHING`), not in the app."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "benefit_redemptions unique (verification_id, benefit)"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scenarios", description=DESCRIPTION)

    async def create_index() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS benefit_redemptions_verification_uq "
                             "ON benefit_redemptions (verification_id, benefit)")

    async def drop_index() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS benefit_redemptions_verification_uq")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
