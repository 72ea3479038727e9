"""Unique keys Piccolo cannot declare: one quota counter per (benefit, person, period) and one credit
order per merchant order number, so concurrent requests meet in the database, not in the app."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-23T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "benefit_usages unique (benefit, person, period_key); credit_orders unique per merchant order"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="scenarios", description=DESCRIPTION)

    async def create_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS benefit_usages_period_uq "
                             "ON benefit_usages (benefit, person, period_key)")
        await engine.run_ddl("CREATE UNIQUE INDEX IF NOT EXISTS credit_orders_merchant_order_uq "
                             "ON credit_orders (merchant_client_id, merchant_order_no)")

    async def drop_indexes() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl("DROP INDEX IF EXISTS benefit_usages_period_uq")
        await engine.run_ddl("DROP INDEX IF EXISTS credit_orders_merchant_order_uq")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
