"""revoked_tokens: access-token revocations in the database, so losing the store never un-revokes a token."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-03T15:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "revoked_tokens"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="accounts", description=DESCRIPTION)
    manager.add_table(class_name="RevokedToken", tablename="revoked_tokens", schema=None, columns=None)
    manager.add_column(
        table_class_name="RevokedToken",
        tablename="revoked_tokens",
        column_name="marker",
        db_column_name="marker",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 64,
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": True,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="RevokedToken",
        tablename="revoked_tokens",
        column_name="expires_at",
        db_column_name="expires_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params={
            "default": TimestamptzNow(),
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    return manager
