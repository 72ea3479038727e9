"""Piccolo app for `credit`: Credit core: registries and credit records."""

import os

from piccolo.conf.apps import AppConfig

from credit.tables import (
    Authorization,
    CreditRecord,
    CurrentScore,
    Enterprise,
    LedgerCheckpoint,
    LedgerEntry,
    Objection,
    OutboxEvent,
    Person,
    Repair,
    ScoreSnapshot,
)

APP_CONFIG = AppConfig(
    app_name="credit",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[
        Person, Enterprise, CreditRecord, CurrentScore, ScoreSnapshot, Authorization, OutboxEvent,
        LedgerEntry, LedgerCheckpoint, Objection, Repair,
    ],
    migration_dependencies=[],
    commands=[],
)
