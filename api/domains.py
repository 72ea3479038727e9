"""The domains the service is composed of, as Piccolo apps: the one place that names them all.

Each domain is a Piccolo app with its own tables and migrations; the app factory, the CLI and the load tests
bind every table to the engine they built (instead of Piccolo's import-time engine lookup).
"""

from __future__ import annotations

from typing import Any

from piccolo.engine.base import Engine
from piccolo.table import Table

MIGRATION_APPS = ("credit", "accounts", "partners", "scenarios", "lending")
# Apps renamed since databases were first migrated, (old, new) in order: `xinyi migrate` moves the old name's
# applied migrations to the new one before running any (issue 14: the accounts domain was the `api` app).
RENAMED_APPS: tuple[tuple[str, str], ...] = (("api", "accounts"),)


def all_tables() -> list[type[Table]]:
    """Every table of every domain app, in dependency order."""
    from accounts.piccolo_app import APP_CONFIG as accounts_app
    from credit.piccolo_app import APP_CONFIG as credit_app
    from lending.piccolo_app import APP_CONFIG as lending_app
    from partners.piccolo_app import APP_CONFIG as partners_app
    from scenarios.piccolo_app import APP_CONFIG as scenarios_app

    tables: list[type[Table]] = []
    for app in (credit_app, accounts_app, partners_app, scenarios_app, lending_app):
        tables.extend(app.table_classes)
    return tables


def bind_tables(engine: Engine[Any]) -> None:
    """Point every table at `engine` (instead of Piccolo's import-time engine lookup)."""
    for table in all_tables():
        table._meta.db = engine
