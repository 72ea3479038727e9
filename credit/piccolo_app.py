"""Piccolo app for `credit`: Credit core: registries and credit records."""

import os

from piccolo.conf.apps import AppConfig

from credit.tables import CreditRecord, Enterprise, Person

APP_CONFIG = AppConfig(
    app_name="credit",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Person, Enterprise, CreditRecord],
    migration_dependencies=[],
    commands=[],
)
