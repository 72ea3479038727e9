"""The caller's network address, behind a trusted proxy or not."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The caller's address; X-Forwarded-For is honoured only when a trusted proxy is configured.

    Only the rightmost entry counts: it is the one our proxy appended. Entries to its left are written
    by the client and would let anyone pick the address their limits and allowlists see.
    """
    if connection.app.state.ctx.settings.trust_forwarded_for:
        forwarded = connection.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    client = connection.client
    return client.host if client else "unknown"
