"""Piccolo app for `accounts`: citizen accounts, refresh tokens, revoked access tokens, operators."""

import os

from piccolo.conf.apps import AppConfig

from accounts.tables import CitizenAccount, Operator, RefreshToken, RevokedToken

APP_CONFIG = AppConfig(
    app_name="accounts",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[CitizenAccount, RefreshToken, Operator, RevokedToken],
    migration_dependencies=["credit.piccolo_app"],
    commands=[],
)
