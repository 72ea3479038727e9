"""The one place where errors become RFC 9457 problem+json.

`exception_handlers()` turns the domain's `DomainError`s (core/errors.py) and Litestar's own HTTP exceptions
into `application/problem+json` bodies carrying a stable machine `code`. Bodies never carry stack traces, SQL
or secrets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from core.errors import DomainError, InvalidClient, OAuthError, RateLimited, Unauthorized
from core.store import StoreUnavailable

logger = logging.getLogger("xinyi.errors")

PROBLEM_JSON = "application/problem+json"


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, plus a stable `code` and optional per-field `errors`."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, str]] | None = None
    retry_after: int | None = None
    checks: dict[str, str] | None = None
    error: str | None = None  # RFC 6749 §5.2, token and revocation endpoints only
    error_description: str | None = None


_STATUS_DEFAULTS: Mapping[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "Conflict with the current state"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_failed", "The request is invalid"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Internal error"),
    503: ("service_unavailable", "A dependency is unavailable"),
}

_problem_encoder = msgspec.json.Encoder()
_OAUTH_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
BASIC_CHALLENGE = 'Basic realm="xinyi", charset="UTF-8"'


def problem_response(
    problem: Problem, *, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    """Encode a problem as an `application/problem+json` response."""
    return Response(
        content=_problem_encoder.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def _problem(status: int, *, code: str | None = None, title: str | None = None, **fields: Any) -> Problem:
    default_code, default_title = _STATUS_DEFAULTS.get(status, ("error", "Error"))
    code = code or default_code
    return Problem(
        type=f"https://xinyi.local/problems/{code}",
        title=title or default_title,
        status=status,
        code=code,
        **fields,
    )


def _domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[bytes]:
    headers: dict[str, str] = {}
    retry_after: int | None = None
    if isinstance(exc, RateLimited):
        retry_after = exc.retry_after
        headers["Retry-After"] = str(retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    oauth_error: str | None = None
    if isinstance(exc, OAuthError):
        oauth_error = exc.error
        headers["Cache-Control"] = "no-store"
        if isinstance(exc, InvalidClient):
            # RFC 6749 §5.2 / RFC 7235: a 401 names the scheme the client may authenticate with.
            headers["WWW-Authenticate"] = BASIC_CHALLENGE
    checks = exc.extra.get("checks")
    errors = exc.extra.get("errors")
    problem = _problem(
        exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        retry_after=retry_after,
        checks=checks,
        errors=errors,
        error=oauth_error,
        error_description=_oauth_description(exc.detail) if oauth_error else None,
    )
    return problem_response(problem, headers=headers)


def domain_error_response(request: Request[Any, Any, Any], exc: DomainError) -> Response[bytes]:
    """The problem+json answer for `exc` (what the app-wide handler sends)."""
    return _domain_error_handler(request, exc)


def _oauth_description(detail: str) -> str | None:
    """`error_description` may only hold printable ASCII without `"` and `\\` (RFC 6749 §5.2)."""
    return detail if _OAUTH_DESCRIPTION.fullmatch(detail) else None


def _validation_errors(exc: ValidationException) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    if isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                field = str(item.get("key") or item.get("source") or "body")
                errors.append({"field": field, "message": str(item.get("message", "invalid"))})
    return errors


def _only_the_cursor(exc: ValidationException) -> bool:
    items = exc.extra if isinstance(exc.extra, list) else []
    return bool(items) and all(isinstance(item, dict) and item.get("key") == "cursor" and item.get("source") == "query"
                               for item in items)


def _http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException):
        errors = _validation_errors(exc)
        malformed = any("malformed" in e["message"].lower() or "json is malformed" in e["message"].lower()
                        for e in errors) or "malformed" in str(exc.detail).lower()
        if malformed:
            return problem_response(
                _problem(400, code="malformed_json", title="The body is not valid JSON",
                         detail="The request body could not be parsed as JSON.", instance=request.url.path),
                headers=headers,
            )
        if _only_the_cursor(exc):
            # The published cursor format (api.pagination) is checked by Litestar; answer as the routes do for
            # a well-formed cursor that is not one of ours.
            return problem_response(
                _problem(422, code="invalid_cursor", title="The request cannot be processed",
                         detail="invalid cursor", instance=request.url.path), headers=headers)
        return problem_response(
            _problem(422, code="validation_failed", title="The request is invalid",
                     detail="One or more fields are invalid.", instance=request.url.path,
                     errors=errors or [{"field": "body", "message": "invalid"}]),
            headers=headers,
        )
    if status >= 500:
        logger.error("http exception %s on %s", status, request.url.path)
        detail = None
    else:
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else None
    # Litestar raises a bare 400 ClientException when the body cannot be decoded at all.
    if status == 400 and type(exc) is ClientException:
        return problem_response(
            _problem(400, code="malformed_json", title="The body is not valid JSON", instance=request.url.path),
            headers=headers,
        )
    return problem_response(_problem(status, detail=detail, instance=request.url.path), headers=headers)


def _unhandled_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, StoreUnavailable):
        return problem_response(
            _problem(503, code="store_unavailable", title="The shared store is unavailable",
                     detail="Try again shortly.", instance=request.url.path),
            headers={"Retry-After": "5"},
        )
    if _is_database_outage(exc):
        return problem_response(
            _problem(503, code="database_unavailable", title="The database is unavailable",
                     detail="Try again shortly.", instance=request.url.path),
            headers={"Retry-After": "5"},
        )
    if _is_rejected_value(exc):
        # A value the database cannot store or compare (a NUL byte in text, an integer beyond its column):
        # the request's fault, whichever route let it through.
        return problem_response(
            _problem(422, code="invalid_value", title="A value in the request cannot be used",
                     detail="A value is out of range or contains characters that are not allowed.",
                     instance=request.url.path))
    # Log the class only: exception messages can carry SQL parameters (personal data).
    logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem_response(_problem(500, instance=request.url.path))


def _is_rejected_value(exc: Exception) -> bool:
    """asyncpg's DataError family (invalid text encoding, numeric out of range, bad argument value) and
    the OverflowError it raises while encoding an argument that does not fit its column."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "DataError" in names and type(exc).__module__.startswith("asyncpg"):
        return True
    cause = exc.__cause__ or exc.__context__
    return isinstance(exc, OverflowError) or (cause is not None and isinstance(cause, OverflowError))


def _is_database_outage(exc: Exception) -> bool:
    """What asyncpg raises while PostgreSQL restarts or is away. Besides its connection errors: the server's
    shutdown and start-up refusals (OperatorInterventionError: admin shutdown, crash shutdown, "cannot connect
    now"), the socket's own errors (reset, refused: builtin ConnectionError; Redis errors never get here, the
    store wraps them), and the protocol state errors of a pooled connection the server dropped while it sat idle
    (InternalClientError). Found by tests/faults, which restart a real PostgreSQL under load."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionRefusedError",
                         "InterfaceError", "TooManyConnectionsError", "PostgresConnectionError",
                         "OperatorInterventionError", "ConnectionError", "InternalClientError"})


def exception_handlers() -> ExceptionHandlersMap:
    """The handler map installed on the app: every error leaves as problem+json."""
    return {
        DomainError: _domain_error_handler,
        HTTPException: _http_exception_handler,
        Exception: _unhandled_handler,
    }
