"""benefit_redemptions keeps the merchant's Idempotency-Key and the remaining quota its first answer gave, so a
retry after a lost answer (a crash after the commit) answers the same redemption. Existing rows keep NULLs."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-03T15:11:11:259196"
VERSION = "1.38.0"
DESCRIPTION = "benefit_redemptions.idempotency_key and remaining_quota"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="scenarios", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Redemption",
        tablename="benefit_redemptions",
        column_name="idempotency_key",
        db_column_name="idempotency_key",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 200,
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="Redemption",
        tablename="benefit_redemptions",
        column_name="remaining_quota",
        db_column_name="remaining_quota",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
