"""HTTP for authentication: one-time codes, the token endpoint, revocation, the public keys and the OAuth 2.0
authorization server metadata (RFC 8414)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED
from litestar.types import ExceptionHandlersMap

from accounts import consent
from accounts import sessions as services
from accounts.schemas import (
    AuthorizationCodeGrant,
    AuthorizationServerMetadata,
    ClientCredentialsGrant,
    OtpGrant,
    OtpRequest,
    OtpSent,
    PasswordGrant,
    PushedAuthorization,
    PushedAuthorizationRequest,
    RefreshGrant,
    RevokeRequest,
    TokenRequest,
    TokenResponse,
)
from accounts.tokens import TokenService
from api.context import AppContext
from api.dependencies import Injected
from api.openapi import inline_schema, with_request_body
from api.problems import PROBLEM_JSON, Problem, domain_error_response, exception_handlers
from api.routes.accounts.oauth import (
    FORM,
    JSON,
    as_oauth_error,
    media_type_of,
    parse_par_request,
    parse_revocation_request,
    parse_token_request,
)
from core.errors import DomainError
from core.settings import Settings

_NO_STORE = [ResponseHeader(name="Cache-Control", value="no-store"), ResponseHeader(name="Pragma", value="no-cache")]
_APP_HANDLERS = exception_handlers()


def _oauth_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Errors of the token and revocation endpoints carry an RFC 6749 §5.2 `error` (limits and outages keep the
    app's usual answer)."""
    converted = as_oauth_error(exc)
    if converted is not None:
        return domain_error_response(request, converted)
    handler = _APP_HANDLERS[DomainError if isinstance(exc, DomainError) else HTTPException]
    return handler(request, exc)  # type: ignore[arg-type]


_OAUTH_HANDLERS: ExceptionHandlersMap = {DomainError: _oauth_problem, HTTPException: _oauth_problem}
_OAUTH_STATUSES = (400, 401, 413, 415, 429, 503)
_OAUTH_RESPONSES = {
    400: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False, description=(
        "An OAuth error (RFC 6749 §5.2): `error` is invalid_request, invalid_grant, unauthorized_client, "
        "unsupported_grant_type or invalid_scope; `code` is the stable problem code")),
    401: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False, description=(
        "`error: invalid_client`: client authentication failed (WWW-Authenticate: Basic)")),
}
_CLIENT_SECURITY: list[dict[str, list[str]]] = [{}, {"ClientSecretBasic": []}]

_GRANTS_DESCRIPTION = """\
The OAuth 2.0 token endpoint (RFC 6749). Send the parameters as `application/x-www-form-urlencoded` (the
standard; unrecognised parameters are ignored, a parameter sent twice is `invalid_request`) or as a JSON object
(unknown fields refused).

Grants: `client_credentials` (partners), `authorization_code` (partners: the code a citizen's consent sent back,
with `redirect_uri` and the PKCE `code_verifier`; single use, 60 s; the token is bound to that authorization and
the answer echoes `authorization_details`), `otp` (citizens: phone + SMS code), `password` (operators),
`refresh_token` (citizen and operator sessions; rotating, reuse revokes the session).

Partners authenticate with exactly one of: HTTP Basic with the form-urlencoded client id and secret
(`client_secret_basic`), `client_id` + `client_secret` in the body (`client_secret_post`), or
`client_assertion_type` + `client_assertion` (`private_key_jwt`, RFC 7523; ES256 or EdDSA, at most 5 minutes,
single use). The answer carries `token_type: Bearer`, `expires_in` and (partners) `scope`, with
`Cache-Control: no-store`. Errors are problem+json with a stable `code` and the RFC 6749 §5.2 `error`.
Discovery: `GET /.well-known/oauth-authorization-server`.
"""

_REVOKE_DESCRIPTION = """\
Token revocation (RFC 7009): `token` and an optional `token_type_hint`, form-encoded or JSON. A partner's token
is revoked with that partner's client authentication (any method the token endpoint takes); citizen and operator
tokens with the token alone. Revoking a refresh token ends its whole session. An unknown, expired or already
revoked token also answers 200.
"""


def _request_body(wire_type: Any) -> dict[str, Any]:
    return {"required": True, "content": {FORM: {"schema": inline_schema(wire_type, form=True)},
                                          JSON: {"schema": inline_schema(wire_type)}}}


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]

    @post("/otp", status_code=HTTP_202_ACCEPTED, summary="Send a login code by SMS")
    async def send_otp(self, *, data: JSONBody[OtpRequest], ctx: Injected[AppContext], client_ip: Injected[str]
                       ) -> OtpSent:
        issued = await services.request_otp(ctx=ctx, phone=data.phone, client_address=client_ip)
        return OtpSent(expires_in=issued.expires_in, resend_after=issued.resend_after, dev_code=issued.dev_code)

    @post("/token", status_code=HTTP_200_OK, response_headers=_NO_STORE, exception_handlers=_OAUTH_HANDLERS,
          opt={"media_types": (FORM, JSON), "problem_statuses_only": _OAUTH_STATUSES},
          responses=_OAUTH_RESPONSES, security=_CLIENT_SECURITY,
          operation_class=with_request_body(_request_body(TokenRequest)),
          summary="Issue tokens (OAuth 2.0: client_credentials, otp, password, refresh_token)",
          description=_GRANTS_DESCRIPTION)
    async def token(self, *, request: Request[Any, Any, Any], ctx: Injected[AppContext]) -> TokenResponse:
        # The raw request: the body is form-encoded or JSON (RFC 6749 §4.4.2) and client authentication may be
        # in the Authorization header or the body (api/routes/accounts/oauth.py reads them all).
        grant, client = parse_token_request(body=await request.body(),
                                            media_type=media_type_of(request.headers.get("content-type", "")),
                                            authorization=request.headers.get("authorization"))
        if isinstance(grant, AuthorizationCodeGrant):
            bound = await consent.exchange_code(ctx=ctx, client=client, code=grant.code,
                                                redirect_uri=grant.redirect_uri, code_verifier=grant.code_verifier)
            return TokenResponse(access_token=bound.access_token, token_type="Bearer",  # noqa: S106 - a type
                                 expires_in=bound.expires_in, scope=bound.scope or None,
                                 authorization_details=bound.authorization_details)
        if isinstance(grant, ClientCredentialsGrant):
            issued = await services.client_credentials(ctx=ctx, client=client, scope=grant.scope)
        else:
            await services.refuse_authenticated_client(ctx=ctx, client=client,
                                                       grant_type=str(grant.__struct_config__.tag))
            match grant:
                case OtpGrant():
                    issued = await services.login_with_otp(ctx=ctx, phone=grant.phone, code=grant.code)
                case RefreshGrant():
                    issued = await services.refresh_session(ctx=ctx, refresh_token=grant.refresh_token)
                case PasswordGrant():
                    issued = await services.operator_login(ctx=ctx, username=grant.username,
                                                           password=grant.password)
        return TokenResponse(access_token=issued.access_token, token_type="Bearer",  # noqa: S106 - a type
                             expires_in=issued.expires_in,
                             scope=issued.scope or None, refresh_token=issued.refresh_token)

    @post("/revoke", status_code=HTTP_200_OK, response_headers=_NO_STORE, exception_handlers=_OAUTH_HANDLERS,
          opt={"media_types": (FORM, JSON), "problem_statuses_only": _OAUTH_STATUSES},
          responses=_OAUTH_RESPONSES, security=_CLIENT_SECURITY,
          operation_class=with_request_body(_request_body(RevokeRequest)),
          summary="Revoke an access or refresh token (RFC 7009)", description=_REVOKE_DESCRIPTION)
    async def revoke(self, *, request: Request[Any, Any, Any], ctx: Injected[AppContext]) -> dict[str, str]:
        # The raw request, as for the token endpoint (RFC 7009 §2.1: form-encoded, client authentication).
        revocation, client = parse_revocation_request(
            body=await request.body(), media_type=media_type_of(request.headers.get("content-type", "")),
            authorization=request.headers.get("authorization"))
        await services.revoke_token(ctx=ctx, token=revocation.token, client=client)
        return {"status": "revoked"}


_PAR_DESCRIPTION = """\
Pushed authorization request (RFC 9126), the first step of partner-started consent. Form-encoded (or JSON),
partner-authenticated exactly like the token endpoint. Parameters: `response_type=code`, `redirect_uri` (one
registered for the partner, compared exactly), `state`, `code_challenge` with `code_challenge_method=S256`
(RFC 7636; `plain` is refused) and `authorization_details` (RFC 9396): a JSON array of one object
`{"type": "xinyi_credit_score", "purpose": <catalog code>, "scopes": [...], "validity_days": n, "daily_cap": n}`
checked against the purpose catalog. The answer (201) carries the single-use `request_uri`, `expires_in`
(600 s), the consent URL the citizen opens (`/authorize?client_id=…&request_uri=…`) and an SVG QR code of it.
Errors are problem+json with `error`: invalid_request, invalid_client, unauthorized_client,
invalid_authorization_details.
"""


class OAuthController(Controller):
    path = "/v1/oauth"
    tags = ["auth"]

    @post("/par", status_code=HTTP_201_CREATED, response_headers=_NO_STORE, exception_handlers=_OAUTH_HANDLERS,
          opt={"media_types": (FORM, JSON), "problem_statuses_only": _OAUTH_STATUSES},
          responses=_OAUTH_RESPONSES, security=_CLIENT_SECURITY,
          operation_class=with_request_body(_request_body(PushedAuthorizationRequest)),
          summary="Push an authorization request (RFC 9126) for a citizen's consent",
          description=_PAR_DESCRIPTION)
    async def par(self, *, request: Request[Any, Any, Any], ctx: Injected[AppContext]) -> PushedAuthorization:
        # The raw request, as for the token endpoint: form-encoded or JSON, client authentication in the
        # Authorization header or the body.
        pushed, client = parse_par_request(body=await request.body(),
                                           media_type=media_type_of(request.headers.get("content-type", "")),
                                           authorization=request.headers.get("authorization"))
        return await consent.push_authorization_request(
            ctx=ctx, client=client, response_type=pushed.response_type, redirect_uri=pushed.redirect_uri,
            state=pushed.state, code_challenge=pushed.code_challenge,
            code_challenge_method=pushed.code_challenge_method,
            authorization_details=pushed.authorization_details, request_client_id=pushed.client_id)


@get("/.well-known/jwks.json", tags=["auth"], summary="Public keys that verify this platform's tokens",
     cache=300)
async def jwks(tokens: Injected[TokenService]) -> dict[str, Any]:
    return tokens.jwks


@get("/.well-known/oauth-authorization-server", tags=["auth"], cache_control=CacheControlHeader(max_age=300),
     summary="OAuth 2.0 authorization server metadata (RFC 8414)")
async def authorization_server_metadata(settings: Injected[Settings]) -> AuthorizationServerMetadata:
    return services.authorization_server_metadata(settings=settings)
