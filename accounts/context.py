"""What the accounts services need from the process-wide collaborators, as a Protocol.

The app factory and the CLI build one context for every domain (`api.context.AppContext`); the accounts
services take it whole (`ctx=`) but must not import api, so they name only the members they use here and
the composition's context satisfies this structurally.
"""

from __future__ import annotations

from typing import Protocol

from accounts.tokens import TokenService
from core.settings import Settings
from core.store import Store
from credit.identity import FieldCipher
from partners.adapters import IdentityVerifier
from partners.sms import SmsSender


class AccountsContext(Protocol):
    """The collaborators of the accounts services (read-only members)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def tokens(self) -> TokenService: ...

    @property
    def cipher(self) -> FieldCipher: ...

    @property
    def sms(self) -> SmsSender: ...

    @property
    def identity(self) -> IdentityVerifier: ...
