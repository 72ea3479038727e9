"""Piccolo app for `scenarios`: 信易+ scenarios, benefits, redemptions and credit orders."""

import os

from piccolo.conf.apps import AppConfig

from scenarios.tables import Benefit, BenefitUsage, CreditLineUsage, CreditOrder, Redemption, Scenario

APP_CONFIG = AppConfig(
    app_name="scenarios",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Scenario, Benefit, BenefitUsage, Redemption, CreditLineUsage, CreditOrder],
    migration_dependencies=["credit.piccolo_app"],
    commands=[],
)
