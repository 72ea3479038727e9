"""Reading OAuth 2.0 requests the way standard clients send them (RFC 6749 §2.3, §3.2; RFC 7009 §2.1).

Token and revocation requests come as `application/x-www-form-urlencoded` (the standard) or JSON, with the
client authenticated by HTTP Basic (`client_secret_basic`), by `client_id` + `client_secret` in the body
(`client_secret_post`) or by a signed assertion (`private_key_jwt`, RFC 7523). Both encodings end in the same
msgspec Structs and the same constraints. Everything here is pure: bytes and header values in, plain values
or an `OAuthError` out.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import msgspec

from accounts.schemas import (
    GRANT_TYPES,
    ClientParameters,
    PushedAuthorizationRequest,
    RevokeRequest,
    TokenRequest,
)
from accounts.sessions import ClientAuthentication, ClientAuthMethod
from core.errors import (
    DomainError,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    RateLimited,
    UnsupportedGrantType,
)

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
CLIENT_PARAMETERS = ("client_id", "client_secret", "client_assertion_type", "client_assertion")
# A token request has at most a handful of parameters; more is not a client we serve.
_MAX_FORM_PARAMETERS = 32
_VSCHARS = re.compile(r"[\x20-\x7e]+")
_ERROR_PATH = re.compile(r" - at `\$\.?([^`]*)`$")

def media_type_of(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == JSON or media_type.endswith("+json")


def decode_form(body: bytes) -> dict[str, str]:
    """UTF-8 form parameters per RFC 6749 §3.2: one sent twice is an error, one sent without a value counts as
    not sent (unrecognised ones are left for the caller to ignore)."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=_MAX_FORM_PARAMETERS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the body is not UTF-8 application/x-www-form-urlencoded with at most "
                             f"{_MAX_FORM_PARAMETERS} parameters", code="malformed_form") from None
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise InvalidRequest(f"parameter {name!r} is included more than once" if _printable(name)
                                 else "a parameter is included more than once", code="duplicate_parameter")
        seen.add(name)
        if value:
            params[name] = value
    return params


def _printable(text: str) -> bool:
    return len(text) <= 64 and _VSCHARS.fullmatch(text) is not None


def _convert(params: dict[str, str], into: Any) -> Any:
    try:
        return msgspec.convert(params, type=into)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None


def _decode_json(body: bytes, into: Any) -> Any:
    try:
        return msgspec.json.decode(body, type=into)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    except (msgspec.DecodeError, RecursionError):
        raise InvalidRequest("the body is not valid JSON", code="malformed_json") from None


def _invalid(exc: msgspec.ValidationError) -> OAuthError:
    message = str(exc)
    match = _ERROR_PATH.search(message)
    field = match.group(1) if match else "body"
    if field == "scope":
        return InvalidScope("the scope is malformed: space-separated scope names expected")
    return InvalidRequest("a parameter is missing or invalid", code="validation_failed",
                          errors=[{"field": field or "body", "message": message}])


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """Client id and secret from an `Authorization: Basic` header (RFC 6749 §2.3.1: each was form-urlencoded
    before being joined with `:` and base64-encoded). None when the request has no Basic credentials."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        raw_id, colon, raw_secret = decoded.partition(":")
        client_id, secret = unquote_plus(raw_id, errors="strict"), unquote_plus(raw_secret, errors="strict")
    except (binascii.Error, ValueError):
        colon, client_id, secret = "", "", ""
    if not colon or not _bounded(client_id, 128) or not _bounded(secret, 4096):
        raise InvalidClient("the Basic credentials are not base64 of client_id:client_secret",
                            code="malformed_basic_credentials")
    return client_id, secret


def _bounded(value: str, limit: int) -> bool:
    return len(value) <= limit and _VSCHARS.fullmatch(value) is not None


def client_authentication(*, basic: tuple[str, str] | None, client_id: str | None, client_secret: str | None,
                          assertion_type: str | None, assertion: str | None) -> ClientAuthentication:
    """The one client authentication method a request used (RFC 6749 §2.3: never more than one)."""
    methods: list[ClientAuthMethod] = []
    if basic is not None:
        methods.append("client_secret_basic")
    if client_secret is not None:
        methods.append("client_secret_post")
    if assertion is not None or assertion_type is not None:
        methods.append("private_key_jwt")
    if len(methods) > 1:
        raise InvalidRequest(f"the client authenticated in more than one way ({', '.join(methods)}); use one",
                             code="multiple_client_authentication")
    if basic is not None:
        if client_id is not None and client_id != basic[0]:
            raise InvalidRequest("client_id in the body is not the client of the Basic credentials",
                                 code="client_id_mismatch")
        return ClientAuthentication(method="client_secret_basic", client_id=basic[0], client_secret=basic[1])
    if client_secret is not None:
        return ClientAuthentication(method="client_secret_post", client_id=client_id, client_secret=client_secret)
    if methods:
        return ClientAuthentication(method="private_key_jwt", client_id=client_id, assertion_type=assertion_type,
                                    assertion=assertion or "")
    return ClientAuthentication(method="none", client_id=client_id)


def parse_token_request(*, body: bytes, media_type: str, authorization: str | None
                        ) -> tuple[TokenRequest, ClientAuthentication]:
    """A token request from either encoding, with its client authentication taken apart from the grant."""
    basic = basic_credentials(authorization)
    if _is_json(media_type):
        try:
            grant: TokenRequest = _decode_json(body, TokenRequest)
        except InvalidRequest as error:
            raise _grant_type_named_in(body) or error from None
        client: ClientParameters = ClientParameters(**{name: getattr(grant, name, None) for name in CLIENT_PARAMETERS})
    else:
        params = decode_form(body)
        grant_type = params.get("grant_type")
        grant_struct = GRANT_TYPES.get(grant_type or "")
        if grant_struct is None:
            raise _grant_type_error(grant_type)
        # RFC 6749 §3.2: unrecognised parameters are ignored; the client's are read whatever the grant.
        known = {"grant_type", *grant_struct.__struct_fields__} - set(CLIENT_PARAMETERS)
        grant = _convert({name: value for name, value in params.items() if name in known}, TokenRequest)
        client = _convert({name: params[name] for name in CLIENT_PARAMETERS if name in params}, ClientParameters)
    return grant, client_authentication(basic=basic, client_id=client.client_id,
                                        client_secret=client.client_secret,
                                        assertion_type=client.client_assertion_type,
                                        assertion=client.client_assertion)


def _grant_type_named_in(body: bytes) -> OAuthError | None:
    """Only on the error path of a JSON body: its grant_type, when that is what is wrong with it."""
    try:
        grant_type = msgspec.json.decode(body, type=_GrantTypeOnly).grant_type
    except (msgspec.MsgspecError, RecursionError):
        return None
    return None if grant_type in GRANT_TYPES else _grant_type_error(grant_type)


def _grant_type_error(grant_type: str | None) -> OAuthError:
    if not grant_type:
        return InvalidRequest("grant_type is required", code="missing_grant_type")
    shown = repr(grant_type) if _printable(grant_type) else "this grant type"
    return UnsupportedGrantType(f"grant_type {shown} is not supported; use one of {', '.join(GRANT_TYPES)}")


def parse_revocation_request(*, body: bytes, media_type: str, authorization: str | None
                             ) -> tuple[RevokeRequest, ClientAuthentication]:
    """An RFC 7009 revocation request from either encoding."""
    basic = basic_credentials(authorization)
    if _is_json(media_type):
        request: RevokeRequest = _decode_json(body, RevokeRequest)
    else:
        params = decode_form(body)
        request = _convert({name: params[name] for name in RevokeRequest.__struct_fields__ if name in params},
                           RevokeRequest)
    return request, client_authentication(basic=basic, client_id=request.client_id,
                                          client_secret=request.client_secret,
                                          assertion_type=request.client_assertion_type,
                                          assertion=request.client_assertion)


def parse_par_request(*, body: bytes, media_type: str, authorization: str | None
                      ) -> tuple[PushedAuthorizationRequest, ClientAuthentication]:
    """An RFC 9126 pushed authorization request from either encoding (form: unrecognised parameters ignored;
    JSON: unknown fields refused), with its client authentication as the token endpoint reads it."""
    basic = basic_credentials(authorization)
    if _is_json(media_type):
        pushed: PushedAuthorizationRequest = _decode_json(body, PushedAuthorizationRequest)
    else:
        params = decode_form(body)
        pushed = _convert({name: params[name] for name in PushedAuthorizationRequest.__struct_fields__
                           if name in params}, PushedAuthorizationRequest)
    return pushed, client_authentication(basic=basic, client_id=pushed.client_id, client_secret=pushed.client_secret,
                                         assertion_type=pushed.client_assertion_type,
                                         assertion=pushed.client_assertion)


def as_oauth_error(exc: Exception) -> OAuthError | None:
    """What a token or revocation endpoint answers for `exc`: an RFC 6749 §5.2 error, or None where the app's
    usual answer stands (429 limits, 5xx outages).

    Statuses follow RFC 6749 (400, or 401 for invalid_client), except 413 and 415, which keep their HTTP status
    and carry `invalid_request`. Stable problem codes are kept.
    """
    if isinstance(exc, OAuthError):
        return exc
    if isinstance(exc, RateLimited):
        return None
    if isinstance(exc, DomainError):
        status, code, title, detail, extra = exc.status, exc.code, exc.title, exc.detail, exc.extra
    else:
        status = int(getattr(exc, "status_code", 500))
        code, title = _HTTP_PROBLEMS.get(status, ("invalid_request", InvalidRequest.title))
        detail, extra = str(getattr(exc, "detail", "") or ""), {}
    if status >= 500 or status == 429 or status < 400:
        return None
    converted: OAuthError
    if status == 403 and code == "account_suspended":
        converted = InvalidGrant(detail, code=code)  # the grant's account is suspended
    else:
        converted = InvalidRequest(detail or None, code=code, **extra)
        if status in (413, 415):
            converted.status = status
    converted.title = title
    return converted


_HTTP_PROBLEMS = {413: ("payload_too_large", "Request body too large"),
                  415: ("unsupported_media_type", "Unsupported media type")}


class _GrantTypeOnly(msgspec.Struct):
    grant_type: str | None = None
