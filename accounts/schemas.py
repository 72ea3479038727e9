"""Wire types for authentication (msgspec Structs; inputs forbid unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from core.identifiers import Phone

OtpCode = Annotated[str, Meta(pattern=r"^\d{6}$", description="The 6-digit code received by SMS")]
# RFC 6749 Appendix A: client ids, secrets, codes and tokens are VSCHARs (printable ASCII), a scope is
# space-separated NQCHAR tokens, a username or password is any Unicode text without CR, LF or controls.
_VSCHARS = r"^[\x20-\x7e]+$"
_NQCHARS = r"[\x21\x23-\x5b\x5d-\x7e]+"
_UNICODE_NO_CRLF = r"^[\t\x20-\x7e\x80-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+$"
Opaque = Annotated[str, Meta(min_length=1, max_length=4096, pattern=_VSCHARS)]
ShortText = Annotated[str, Meta(min_length=1, max_length=128, pattern=_VSCHARS)]
Scope = Annotated[str, Meta(max_length=1024, pattern=f"^{_NQCHARS}( {_NQCHARS})*$",
                            description="Space-separated scopes (default: every scope the partner holds)")]


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
    scope: Scope | None = None


class ClientParameters(msgspec.Struct, forbid_unknown_fields=True):
    """Client authentication in a request body (RFC 6749 §2.3.1 client_secret_post; RFC 7523 private_key_jwt)."""

    client_id: ShortText | None = None
    client_secret: Opaque | None = None
    client_assertion_type: ShortText | None = None
    client_assertion: Opaque | None = None


class PasswordGrant(msgspec.Struct, forbid_unknown_fields=True, tag_field="grant_type", tag="password"):
    """Operators only (credit office staff)."""

    username: Annotated[str, Meta(min_length=1, max_length=128, pattern=_UNICODE_NO_CRLF)]
    password: Annotated[str, Meta(min_length=1, max_length=256, pattern=_UNICODE_NO_CRLF)]


RedirectUri = Annotated[str, Meta(min_length=1, max_length=500, pattern=_VSCHARS)]


class AuthorizationCodeGrant(
    msgspec.Struct, forbid_unknown_fields=True, tag_field="grant_type", tag="authorization_code"
):
    """Partners (RFC 6749 §4.1.3 with PKCE, RFC 7636 §4.5): the code the citizen's approval sent back."""

    code: Opaque
    redirect_uri: RedirectUri | None = None
    code_verifier: Annotated[str, Meta(min_length=1, max_length=128, pattern=_VSCHARS)] | None = None
    client_id: ShortText | None = None
    client_secret: Opaque | None = None
    client_assertion_type: ShortText | None = None
    client_assertion: Opaque | None = None


TokenRequest = OtpGrant | RefreshGrant | ClientCredentialsGrant | PasswordGrant | AuthorizationCodeGrant


GRANT_TYPES: dict[str, type[TokenRequest]] = {
    "otp": OtpGrant, "refresh_token": RefreshGrant, "client_credentials": ClientCredentialsGrant,
    "password": PasswordGrant, "authorization_code": AuthorizationCodeGrant}

DETAILS_TYPE = "xinyi_credit_score"  # our RFC 9396 authorization details type


class CreditScoreDetail(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One RFC 9396 authorization details object of our type: what the partner asks to read (`scopes`, data
    scopes of the purpose catalog), why (`purpose`, a catalog code), how long and how often."""

    type: Literal["xinyi_credit_score"]
    purpose: Annotated[str, Meta(min_length=1, max_length=40)]
    scopes: Annotated[list[Annotated[str, Meta(max_length=40)]], Meta(min_length=1, max_length=8)]
    validity_days: Annotated[int, Meta(ge=1, le=3650)]
    daily_cap: Annotated[int, Meta(ge=1, le=10_000)] | None = None


class GrantedDetail(msgspec.Struct):
    """What was granted, as the token response echoes it (RFC 9396 §7): the detail asked for, with the
    authorization id, the partner-scoped open id, the end of the validity and the signed consent receipt."""

    type: str
    purpose: str
    scopes: list[str]
    validity_days: int
    daily_cap: int
    authorization_id: str
    open_id: str
    valid_until: datetime
    consent_receipt: str


class PushedAuthorizationRequest(msgspec.Struct, forbid_unknown_fields=True):
    """RFC 9126 §2.1: the authorization request a partner pushes, with its client authentication.
    `authorization_details` is the RFC 9396 JSON array (a string in a form; an array or a string in JSON)."""

    response_type: Annotated[str, Meta(max_length=32, pattern=_VSCHARS)] | None = None
    redirect_uri: RedirectUri | None = None
    state: Annotated[str, Meta(min_length=1, max_length=512, pattern=_VSCHARS)] | None = None
    code_challenge: Annotated[str, Meta(max_length=128, pattern=_VSCHARS)] | None = None
    code_challenge_method: Annotated[str, Meta(max_length=16, pattern=_VSCHARS)] | None = None
    authorization_details: Annotated[str, Meta(max_length=4096)] | list[dict[str, Any]] | None = None
    scope: Scope | None = None  # ignored: what is asked is in authorization_details
    client_id: ShortText | None = None
    client_secret: Opaque | None = None
    client_assertion_type: ShortText | None = None
    client_assertion: Opaque | None = None


class PushedAuthorization(msgspec.Struct):
    """RFC 9126 §2.2 answer, plus the consent URL and an SVG QR code of it for a counter or a web page."""

    request_uri: str
    expires_in: int
    consent_url: str
    consent_qr_svg: str


class TokenResponse(msgspec.Struct, omit_defaults=True):
    """RFC 6749 §5.1. `scope` is left out for citizen and operator sessions, which carry no OAuth scope."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str | None = None
    refresh_token: str | None = None
    # authorization_code grant: what was granted (RFC 9396 §7), with the authorization id and open id.
    authorization_details: list[GrantedDetail] | None = None


class RevokeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """RFC 7009 §2.1, plus the client authentication of a confidential client (partners)."""

    token: Opaque
    token_type_hint: Annotated[str, Meta(max_length=32, pattern=_VSCHARS)] | None = None
    client_id: ShortText | None = None
    client_secret: Opaque | None = None
    client_assertion_type: ShortText | None = None
    client_assertion: Opaque | None = None


class AuthorizationServerMetadata(msgspec.Struct):
    """RFC 8414 §2: what an OAuth client needs to know to talk to this authorization server."""

    issuer: str
    token_endpoint: str
    revocation_endpoint: str
    jwks_uri: str
    scopes_supported: list[str]
    response_types_supported: list[str]
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_signing_alg_values_supported: list[str]
    service_documentation: str
    authorization_endpoint: str
    pushed_authorization_request_endpoint: str
    require_pushed_authorization_requests: bool
    code_challenge_methods_supported: list[str]
    authorization_details_types_supported: list[str]
    authorization_response_iss_parameter_supported: bool
