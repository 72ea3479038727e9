"""Piccolo configuration for the migration runner (`xinyi migrate`) and the piccolo CLI.

Only migration tooling imports this module (via PICCOLO_CONF=api.piccolo_conf); the running app
binds its own engine in the app factory, so settings are still never read at import time by the app.
"""

from piccolo.conf.apps import AppRegistry

from core.db import build_engine
from core.settings import Settings

DB = build_engine(Settings.from_env(), for_migrations=True)

APP_REGISTRY = AppRegistry(
    apps=[
        "credit.piccolo_app",
        "accounts.piccolo_app",
        "partners.piccolo_app",
        "scenarios.piccolo_app",
        "lending.piccolo_app",
    ]
)
