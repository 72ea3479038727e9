"""Piccolo app for `lending`: 信易贷 members, portraits, products, demands and applications."""

import os

from piccolo.conf.apps import AppConfig

from lending.tables import (
    ApplicationEvent,
    EnterpriseMember,
    FinancingDemand,
    LoanApplication,
    LoanProduct,
    PortraitSnapshot,
)

APP_CONFIG = AppConfig(
    app_name="lending",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[EnterpriseMember, PortraitSnapshot, LoanProduct, FinancingDemand, LoanApplication,
                   ApplicationEvent],
    migration_dependencies=["credit.piccolo_app"],
    commands=[],
)
