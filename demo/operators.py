"""The demo operators: an officer and a partner_admin, with random passwords printed once."""

from __future__ import annotations

import secrets
import string

from accounts.operators import create_operator
from accounts.tables import Operator

OPERATOR_USERNAME = "operator"
PARTNER_ADMIN_USERNAME = "partner-admin"
# The demo operators: an officer (lists, objections, scenarios, statistics) and a partner_admin (partners and
# their webhooks), so every operator route of the README can be walked.
DEMO_OPERATORS: tuple[tuple[str, str, str], ...] = (
    (OPERATOR_USERNAME, "officer", "信用办演示账号"),
    (PARTNER_ADMIN_USERNAME, "partner_admin", "合作机构管理演示账号"),
)
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


async def ensure_operators() -> list[dict[str, str | None]]:
    """Create the demo operators that do not exist yet; report each (password only for those created now)."""
    report: list[dict[str, str | None]] = []
    for username, role, display_name in DEMO_OPERATORS:
        password: str | None = None
        if not await Operator.exists().where(Operator.username == username):
            password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(20))
            await create_operator(username=username, password=password, role=role, display_name=display_name)
        report.append({"username": username, "password": password, "role": role})
    return report
