"""One redemption per merchant and Idempotency-Key: a unique key Piccolo cannot declare, so the same key can
name only one redemption (a merchant looks its redemption up by it). Rows from before keep a NULL key, which
never collides (NULLs are distinct in unique indexes on SQLite and PostgreSQL)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-03T15:11:12:000000"
VERSION = "1.38.0"
DESCRIPTION = "benefit_redemptions unique (merchant_client_id, idempotency_key)"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scenarios", description=DESCRIPTION)

    async def create_index() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS benefit_redemptions_idempotency_key_uq "
                             "ON benefit_redemptions (merchant_client_id, idempotency_key)")

    async def drop_index() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS benefit_redemptions_idempotency_key_uq")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
