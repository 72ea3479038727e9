"""Unique keys Piccolo cannot declare: one membership per (enterprise, account) and one application
per (demand, product), so concurrent requests meet in the database."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T15:01:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "enterprise_members unique (enterprise, account_id); loan_applications unique (demand, product)"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="lending", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS enterprise_members_account_uq "
                             "ON enterprise_members (enterprise, account_id)")
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS loan_applications_demand_product_uq "
                             "ON loan_applications (demand, product)")

    async def drop_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS enterprise_members_account_uq")
        await engine.run_ddl("DROP INDEX IF EXISTS loan_applications_demand_product_uq")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
