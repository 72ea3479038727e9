"""Piccolo app for `partners`: Partner registry."""

import os

from piccolo.conf.apps import AppConfig

from partners.tables import Partner, WebhookAttempt

APP_CONFIG = AppConfig(
    app_name="partners",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Partner, WebhookAttempt],
    migration_dependencies=[],
    commands=[],
)
