"""Wire types for authentication (msgspec Structs; inputs forbid unknown fields)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from api.identifiers import Phone

OtpCode = Annotated[str, Meta(pattern=r"^\d{6}$", description="The 6-digit code received by SMS")]
Opaque = Annotated[str, Meta(min_length=1, max_length=4096)]
ShortText = Annotated[str, Meta(min_length=1, max_length=128)]


class OtpRequest(msgspec.Struct, forbid_unknown_fields=True):
    phone: Phone


class OtpSent(msgspec.Struct, omit_defaults=True):
    expires_in: int
    resend_after: int
    dev_code: str | None = None  # only from the dev SMS adapter outside production


class OtpGrant(msgspec.Struct, forbid_unknown_fields=True, tag_field="grant_type", tag="otp"):
    phone: Phone
    code: OtpCode


class RefreshGrant(msgspec.Struct, forbid_unknown_fields=True, tag_field="grant_type", tag="refresh_token"):
    refresh_token: Opaque


class ClientCredentialsGrant(
    msgspec.Struct, forbid_unknown_fields=True, tag_field="grant_type", tag="client_credentials"
):
    client_id: ShortText | None = None
    client_secret: Opaque | None = None
    client_assertion_type: ShortText | None = None
    client_assertion: Opaque | None = None
    scope: Annotated[str, Meta(max_length=1024)] | None = None


class PasswordGrant(msgspec.Struct, forbid_unknown_fields=True, tag_field="grant_type", tag="password"):
    """Operators only (credit office staff)."""

    username: ShortText
    password: Annotated[str, Meta(min_length=1, max_length=256)]


TokenRequest = OtpGrant | RefreshGrant | ClientCredentialsGrant | PasswordGrant


class TokenResponse(msgspec.Struct, omit_defaults=True):
    access_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    scope: str = ""
    refresh_token: str | None = None


class RevokeRequest(msgspec.Struct, forbid_unknown_fields=True):
    token: Opaque
    token_type_hint: Annotated[str, Meta(max_length=32)] | None = None
