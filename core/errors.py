"""One domain exception hierarchy.

Services raise `DomainError` subclasses and never touch HTTP objects; each class carries the HTTP status, a
stable machine `code` and a title. The composition maps them (and the framework's own exceptions) to RFC 9457
problem+json in one place, api/problems.py.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base for every error a service raises on purpose. Carries status, stable code and detail."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.extra = extra


class ConfigurationError(Exception):
    """Settings are missing or unsafe; raised at start-up, never inside a request."""


class BadRequest(DomainError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(DomainError):
    status, code, title = 401, "unauthorized", "Authentication required"


class InvalidToken(Unauthorized):
    code, title = "invalid_token", "The access token is invalid"


class OAuthError(DomainError):
    """An error of the token or revocation endpoint: `error` is its RFC 6749 §5.2 code, sent beside the stable
    problem `code` so that OAuth clients and problem+json clients both understand the answer."""

    status, code, title = 400, "invalid_request", "The token request is invalid"
    error: str = "invalid_request"


class InvalidRequest(OAuthError):
    pass


class InvalidClient(OAuthError):
    status, code, title, error = 401, "invalid_client", "Client authentication failed", "invalid_client"


class InvalidGrant(OAuthError):
    status, code, title, error = 400, "invalid_grant", "The grant is invalid, expired or already used", "invalid_grant"


class UnauthorizedClient(OAuthError):
    status, code, title = 400, "unauthorized_client", "The client may not use this grant type"
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    status, code, title = 400, "unsupported_grant_type", "Unsupported grant type"
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    status, code, title, error = 400, "invalid_scope", "The requested scope is invalid", "invalid_scope"


class InvalidAuthorizationDetails(OAuthError):
    """RFC 9396 §5: the `authorization_details` are malformed, of an unknown type or ask what cannot be given."""

    status, code, title = 400, "invalid_authorization_details", "The authorization details are invalid"
    error = "invalid_authorization_details"


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict with the current state"


class Unprocessable(DomainError):
    status, code, title = 422, "unprocessable", "The request cannot be processed"


class RateLimited(DomainError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = max(1, int(retry_after))


class MalformedBody(DomainError):
    status, code, title = 400, "malformed_json", "The body is not valid JSON"


class BodyTooDeep(DomainError):
    status, code, title = 400, "json_too_deep", "The body nests deeper than the parser goes"


class InvalidBody(DomainError):
    """The body is JSON but not of the operation's schema (carries per-field `errors`)."""

    status, code, title = 422, "validation_failed", "The request is invalid"


class ServiceUnavailable(DomainError):
    status, code, title = 503, "service_unavailable", "A dependency is unavailable"
