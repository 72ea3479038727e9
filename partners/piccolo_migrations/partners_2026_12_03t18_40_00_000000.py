"""partners.redirect_uris: the OAuth redirect URIs a partner registered for partner-started consent
(space-separated, compared exactly). Existing partners get NULL: none registered, every other flow unchanged."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-03T18:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partners.redirect_uris: OAuth redirect URIs (partner-started consent)"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="partners", description=DESCRIPTION)

    manager.add_column(
        table_class_name="Partner",
        tablename="partners",
        column_name="redirect_uris",
        db_column_name="redirect_uris",
        column_class_name="Text",
        column_class=Text,
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
