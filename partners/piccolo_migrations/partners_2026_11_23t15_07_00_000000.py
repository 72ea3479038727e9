"""A unique key Piccolo cannot add to an existing SQLite table: one partner per passport issuer, so a
peer city's passports always verify against exactly one set of registered keys."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T15:07:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partners unique (issuer)"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="partners", description=DESCRIPTION)

    async def create_index() -> None:
        engine = engine_finder()
        assert engine is not None
        # NULLs never collide, so partners without an issuer (every other kind) are unaffected.
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS partners_issuer_uq ON partners (issuer)")

    async def drop_index() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS partners_issuer_uq")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
