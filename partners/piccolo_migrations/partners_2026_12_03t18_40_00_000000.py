"""Unique keys Piccolo cannot declare on a column pair: one notice per (outbox event, account), so a notice
worker that retries an event (or two workers racing on it) never writes a notice twice, and one preference
row per (account, kind), so a preference PUT is an upsert."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-03T18:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notices unique (event_id, account_id); notice_preferences unique (account_id, kind)"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="partners", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS notices_event_account_uq"
                             " ON notices (event_id, account_id)")
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS notice_preferences_account_kind_uq"
                             " ON notice_preferences (account_id, kind)")
        await engine.run_ddl("CREATE INDEX IF NOT EXISTS notices_account_created"
                             " ON notices (account_id, created_at, public_id)")

    async def drop_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        for name in ("notices_event_account_uq", "notice_preferences_account_kind_uq", "notices_account_created"):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
