from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-23T15:06:54:297947"
VERSION = "1.38.0"
DESCRIPTION = "partners.issuer: the passport issuer of a city_peer partner"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="partners", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Partner",
        tablename="partners",
        column_name="issuer",
        db_column_name="issuer",
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

    return manager
