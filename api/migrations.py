"""Applying every domain's Piccolo migrations, for the CLI (`xinyi migrate`, `xinyi up`), the load tests and the
test fixtures alike.

Its own module, not the CLI's: the load tests migrate their databases too, and the CLI dispatches into the
load tests, so a helper living in `api.cli` made the two import each other.
"""

from __future__ import annotations

import os

from api import domains
from core import db

PICCOLO_CONF = "api.piccolo_conf"


async def migrate_async() -> None:
    """Apply every pending Piccolo migration of every domain app, in dependency order (after carrying the
    applied migrations of renamed apps over to their new names)."""
    os.environ.setdefault("PICCOLO_CONF", PICCOLO_CONF)
    from piccolo.apps.migrations.commands.forwards import run_forwards  # noqa: PLC0415 - reads PICCOLO_CONF

    for old, new in domains.RENAMED_APPS:
        await db.rename_migration_app(old=old, new=new)
    result = await run_forwards(app_name="all", migration_id="all")
    if not result.success:
        raise SystemExit(f"migration failed: {result.message}")
