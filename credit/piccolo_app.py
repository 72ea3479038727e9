"""Piccolo app for `credit`: Credit core: registries and credit records."""

import os

from piccolo.conf.apps import AppConfig

from credit.tables import (
    Authorization,
    CreditCheck,
    CreditListEntry,
    CreditRecord,
    CurrentScore,
    DailyStat,
    Enterprise,
    LedgerCheckpoint,
    LedgerEntry,
    Measure,
    Objection,
    OutboxEvent,
    PendingRescore,
    Person,
    Repair,
    ScoreSnapshot,
)

APP_CONFIG = AppConfig(
    app_name="credit",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[
        Person, Enterprise, CreditRecord, CurrentScore, ScoreSnapshot, Authorization, OutboxEvent,
        LedgerEntry, LedgerCheckpoint, Objection, Repair, CreditListEntry, Measure, CreditCheck, DailyStat,
        PendingRescore,
    ],
    migration_dependencies=[],
    commands=[],
)
