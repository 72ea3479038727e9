"""Piccolo app for `partners`: Partner registry, webhook attempts, citizen notices."""

import os

from piccolo.conf.apps import AppConfig

from partners.tables import Notice, NoticeContact, NoticePreference, Partner, WebhookAttempt

APP_CONFIG = AppConfig(
    app_name="partners",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Partner, WebhookAttempt, Notice, NoticePreference, NoticeContact],
    migration_dependencies=[],
    commands=[],
)
