"""Piccolo app for `lending`: 信易贷 lending (tables arrive with the lending issue)."""

import os

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name="lending",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[],
    migration_dependencies=[],
    commands=[],
)
