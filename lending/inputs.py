"""Checks on identifiers, cursors and free text from the wire, before they reach SQL as parameters.

PostgreSQL refuses text holding a NUL character (asyncpg raises `CharacterNotInRepertoireError`), and
SQLite would happily store it, so an id, a cursor or a note carrying `%00` / `\\u0000` must be turned away
here: an unknown-looking id is simply not found, a malformed cursor is 422 `invalid_cursor`, and wire text
is limited by `SAFE_TEXT` (no C0 control characters but tab, newline and carriage return).
"""

from __future__ import annotations

import re

from core.pagination import invalid_cursor

# Every id this API issues is `prefix_hex` (credit.identity.new_public_id, authz_…, mem_…); partner
# client ids are similar. Anything outside this alphabet can only be a miss.
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

SAFE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""`Meta(pattern=…)` for free text: no control characters except tab, newline and carriage return."""

SAFE_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
"""`QueryParameter(pattern=…)` for ids and client ids given as query parameters."""


def plausible_id(value: str) -> bool:
    """Whether `value` could be one of our ids (so it is safe to look up)."""
    return _ID.fullmatch(value) is not None


def decode_version_cursor(cursor: str) -> int:
    """A portrait version cursor: a plain positive number (ASCII digits only; `int()` would also take `²`
    or Arabic-Indic digits, and a hundred digits overflow the database's integer)."""
    if not re.fullmatch(r"[0-9]{1,9}", cursor):
        raise invalid_cursor()
    return int(cursor)


__all__ = ["SAFE_ID", "SAFE_TEXT", "decode_version_cursor", "plausible_id"]
