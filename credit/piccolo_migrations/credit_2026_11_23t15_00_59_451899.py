"""enterprises.registered_capital_fen becomes BigInt: capital above 2000万元 does not fit 32 bits.

SQLite cannot ALTER a column's type and needs no change (its INTEGER is already 64-bit), so the
column change is skipped there while still being recorded for Piccolo's schema history.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import BigInt, Integer
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

ID = "2026-11-23T15:00:59:451899"
VERSION = "1.38.0"
DESCRIPTION = "enterprises.registered_capital_fen as BigInt"


class _Manager(MigrationManager):
    async def _run_alter_columns(self, backwards: bool = False) -> None:
        if isinstance(engine_finder(), SQLiteEngine):
            return
        await super()._run_alter_columns(backwards=backwards)


async def forwards() -> MigrationManager:
    manager = _Manager(migration_id=ID, app_name="credit", description=DESCRIPTION)
    manager.alter_column(
        table_class_name="Enterprise",
        tablename="enterprises",
        column_name="registered_capital_fen",
        db_column_name="registered_capital_fen",
        params={},
        old_params={},
        column_class=BigInt,
        old_column_class=Integer,
        schema=None,
    )
    return manager
