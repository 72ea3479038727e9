"""Operator (credit office staff) accounts and their roles."""

from __future__ import annotations

from typing import Literal

from accounts.tables import Operator
from core.errors import Conflict, Unprocessable
from credit.identity import new_public_id
from partners.credentials import hash_secret

OperatorRole = Literal["officer", "partner_admin", "auditor"]
OPERATOR_ROLES: tuple[str, ...] = ("officer", "partner_admin", "auditor")
MIN_PASSWORD_LENGTH = 12


async def create_operator(*, username: str, password: str, role: str, display_name: str | None = None) -> str:
    """Create an operator account and return its public id.

    Raises:
        Unprocessable: unknown role or a password shorter than 12 characters.
        Conflict: the username is taken.
    """
    if role not in OPERATOR_ROLES:
        raise Unprocessable(f"role must be one of {', '.join(OPERATOR_ROLES)}", code="unknown_role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Unprocessable(
            f"passwords need at least {MIN_PASSWORD_LENGTH} characters", code="weak_password"
        )
    if await Operator.exists().where(Operator.username == username):
        raise Conflict("username already taken", code="operator_exists")
    public_id = new_public_id("op")
    await Operator.insert(
        Operator(
            public_id=public_id,
            username=username,
            display_name=display_name or username,
            password_hash=hash_secret(password),
            role=role,
            status="active",
        )
    )
    return public_id
