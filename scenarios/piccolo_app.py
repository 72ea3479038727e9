"""Piccolo app for `scenarios`: 信易+ scenarios (tables arrive with the scenarios issue)."""

import os

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="scenarios",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[],
    migration_dependencies=[],
    commands=[],
)
